//! `cargo fuzz run throttle`: see `callbackd::fuzzing::throttle` for the input and what is checked.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| callbackd::fuzzing::throttle(data));
