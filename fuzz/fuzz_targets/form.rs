//! `cargo fuzz run form`: see `callbackd::fuzzing::form` for the input and what is checked.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| callbackd::fuzzing::form(data));
