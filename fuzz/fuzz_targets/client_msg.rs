//! libFuzzer entry point; the body is [`fincore_fuzz::targets::client_msg`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fincore_fuzz::targets::client_msg(data));
