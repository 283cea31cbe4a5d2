//! `cargo fuzz run stored`: see `callbackd::fuzzing::stored` for the input and what is checked.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| callbackd::fuzzing::stored(data));
