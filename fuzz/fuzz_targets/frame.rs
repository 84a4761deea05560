//! libFuzzer entry point; the body is [`fincore_fuzz::targets::frame`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fincore_fuzz::targets::frame(data));
