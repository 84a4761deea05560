//! Replays the committed fuzz corpus on stable Rust, in the normal test run: every file
//! under `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`, and the generated
//! seeds, goes through the same target body `cargo +nightly fuzz run <target>` runs
//! (`fuzz/src/targets.rs`, included here by path). A crash the fuzzer once found stays
//! fixed because its input is in `fuzz/regressions/`.
//!
//! `cargo test -p fincore --test fuzz_corpus -- --ignored write_seeds` rewrites the seed
//! files (`fuzz/corpus/<target>/seed-*`) after a format change.

#[path = "../../fuzz/src/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted by name (none if it does not exist).
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a readable corpus directory").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every committed input and every seed of one target.
fn replay(name: &str, body: targets::Target) {
    let mut count = 0;
    for kind in ["corpus", "regressions"] {
        for path in inputs(&fuzz_dir().join(kind).join(name)) {
            let bytes = std::fs::read(&path).expect("a readable corpus file");
            let ran = std::panic::catch_unwind(|| body(&bytes));
            assert!(ran.is_ok(), "fuzz target {name} fails on {}", path.display());
            count += 1;
        }
    }
    for seed in targets::seeds(name) {
        body(&seed);
        count += 1;
    }
    assert!(count > targets::seeds(name).len(), "no committed inputs for {name}");
}

#[test]
fn every_target_has_a_committed_corpus() {
    for (name, _) in targets::TARGETS {
        let files = inputs(&fuzz_dir().join("corpus").join(name));
        assert!(!files.is_empty(), "fuzz/corpus/{name} is empty");
        assert!(!targets::seeds(name).is_empty(), "no seeds for {name}");
    }
}

#[test]
fn frame_corpus() {
    replay("frame", targets::frame);
}

#[test]
fn client_msg_corpus() {
    replay("client_msg", targets::client_msg);
}

#[test]
fn server_msg_corpus() {
    replay("server_msg", targets::server_msg);
}

#[test]
fn codec_corpus() {
    replay("codec", targets::codec);
}

#[test]
fn journal_corpus() {
    replay("journal", targets::journal);
}

#[test]
fn snapshot_corpus() {
    replay("snapshot", targets::snapshot);
}

#[test]
fn engine_corpus() {
    replay("engine", targets::engine);
}

/// Rewrites `fuzz/corpus/<target>/seed-<n>` from [`targets::seeds`].
#[test]
#[ignore = "writes files: run by hand after a format change"]
fn write_seeds() {
    for (name, _) in targets::TARGETS {
        let dir = fuzz_dir().join("corpus").join(name);
        std::fs::create_dir_all(&dir).expect("a writable fuzz directory");
        for (n, seed) in targets::seeds(name).iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{n:03}")), seed).expect("writable");
        }
    }
}
