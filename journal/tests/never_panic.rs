//! Random garbage over random ranges of a journal's files: opening, recovering and
//! reading must return `Ok` or `Err`, never panic. When the writer does open the
//! damaged journal, its last segment must then read cleanly to the new end.

mod common;

use common::*;
use fincore_journal::*;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

const ITERATIONS: u64 = 400;

/// Overwrites 1 to 4 random ranges of random files with garbage, zeros or a flipped
/// byte; now and then changes a file's length.
fn mutate(files: &[PathBuf], rng: &mut Rng) {
    for _ in 0..1 + rng.below(4) {
        let path = &files[rng.below(files.len() as u64) as usize];
        let mut bytes = read(path);
        if bytes.is_empty() {
            continue;
        }
        // Half the time near the front, where the headers and most records are.
        let span = if rng.below(2) == 0 { bytes.len().min(16 * 1024) } else { bytes.len() };
        let at = rng.below(span as u64) as usize;
        let len = if rng.below(8) == 0 { 1 + rng.below(4_096) } else { 1 + rng.below(64) };
        let end = (at + len as usize).min(bytes.len());
        match rng.below(10) {
            0..=5 => bytes[at..end].iter_mut().for_each(|b| *b = rng.next_u64() as u8),
            6 | 7 => bytes[at..end].fill(0),
            8 => bytes[at] ^= 1 << rng.below(8),
            _ => bytes.resize(rng.below(bytes.len() as u64 * 2) as usize, 0),
        }
        write(path, &bytes);
    }
}

/// Everything the crate does with a directory; returns what it found, for the
/// assertions after the panic check.
fn exercise(dir: &Path, from: u64) -> Option<(u64, u64)> {
    let _ = read_all(dir, from);
    let (mut journal, _) = Journal::open(config(dir, SEGMENT_SIZE_MIN)).ok()?;
    let seq = journal.next_seq();
    journal.append(&meta(seq), b"after recovery").ok()?;
    drop(journal);
    let segments = list_segments(dir).ok()?;
    let (last_first, _) = segments.last()?;
    Some((*last_first, seq))
}

#[test]
fn garbage_never_panics() {
    let original = tempfile::tempdir().unwrap();
    let lens: Vec<usize> = (1..=2_500).map(mixed_len).collect();
    let positions = build(original.path(), &lens, SEGMENT_SIZE_MIN);
    let n = lens.len() as u64;
    assert!(positions.last().unwrap().segment > 1, "several segments");
    let work = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x5EED);
    let (mut opened, mut refused) = (0, 0);
    for iteration in 0..ITERATIONS {
        for entry in std::fs::read_dir(work.path()).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        copy_dir(original.path(), work.path());
        let files: Vec<PathBuf> =
            list_segments(work.path()).unwrap().into_iter().map(|(_, p)| p).collect();
        mutate(&files, &mut rng);
        let from = rng.below(n + 10);
        let outcome = catch_unwind(AssertUnwindSafe(|| exercise(work.path(), from)));
        let Ok(outcome) = outcome else {
            panic!("iteration {iteration} panicked (seed 0x5EED, from {from})");
        };
        let Some((last_first, appended)) = outcome else {
            refused += 1;
            continue;
        };
        opened += 1;
        // The writer recovered the last segment, so from its start everything reads.
        let mut reader = JournalReader::open(work.path(), last_first).unwrap();
        let mut last = None;
        while let Some(record) = reader.next().unwrap() {
            last = Some(record.meta.seq);
        }
        assert_eq!(last, Some(appended), "iteration {iteration}");
        assert_eq!(reader.torn_tail(), None, "iteration {iteration}");
    }
    // Both outcomes occur, so the test exercises recovery and refusal alike.
    assert!(opened > 20 && refused > 20, "opened {opened}, refused {refused}");
}
