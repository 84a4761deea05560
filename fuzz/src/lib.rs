//! Fuzz target bodies for fincore, shared by the libFuzzer wrappers in `fuzz_targets/`
//! and by the corpus replay test (`tools/tests/fuzz_corpus.rs`, which includes
//! `targets.rs` by path so that it runs on stable Rust without this crate).

pub mod targets;
