//! libFuzzer entry point; the body is [`fincore_fuzz::targets::snapshot`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fincore_fuzz::targets::snapshot(data));
