//! Every decoder of the relay protocol on the same input (see checks.rs).

#![no_main]

mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_all(data));
