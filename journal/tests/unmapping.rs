//! Sealed segments are unmapped once the journal has moved on, in `process` mode also
//! when they are handed to the preparer thread to unmap, and also after a preparation
//! failed (a roll-over then creates its file itself).

mod common;

use common::*;
use fincore_journal::*;
use std::path::Path;
use std::time::{Duration, Instant};

/// Mappings of this process that are files in `dir`.
fn mapped_files_in(dir: &Path) -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("Linux");
    let dir = dir.to_str().expect("a UTF-8 temp path");
    maps.lines().filter(|line| line.contains(dir)).count()
}

/// Appends until the journal has rolled over `rolls` times; returns the last sequence.
fn append_through(journal: &mut Journal, dir: &Path, rolls: usize) -> u64 {
    let mut seq = 0;
    let segments = |dir: &Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".journal"))
            .count()
    };
    while segments(dir) <= rolls {
        seq += 1;
        journal.append(&meta(seq), &payload(seq, 2_000, 0)).unwrap();
        if seq % 16 == 0 {
            journal.publish();
        }
    }
    journal.publish();
    seq
}

fn assert_unmapped_soon(dir: &Path, rolls: usize) {
    // The preparer unmaps asynchronously (at the lowest priority): wait for it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut mapped = mapped_files_in(dir);
    while mapped > 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        mapped = mapped_files_in(dir);
    }
    // The active segment, the one the durability state started on, and a prepared
    // next file at most: never one per roll-over.
    assert!(mapped <= 3, "{mapped} files of the journal mapped after {rolls} roll-overs");
}

#[test]
fn sealed_segments_do_not_stay_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = Journal::open(config(dir.path(), SEGMENT_SIZE_MIN)).unwrap();
    append_through(&mut journal, dir.path(), 12);
    assert_unmapped_soon(dir.path(), 12);
}

#[test]
fn sealed_segments_are_unmapped_after_a_failed_preparation() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), SEGMENT_SIZE_MIN);
    let (mut journal, _) = Journal::open(config.clone()).unwrap();
    // The preparer's first file name, taken by a directory: that preparation fails.
    let taken = dir.path().join(format!(".prepared-{}-1.tmp", std::process::id()));
    std::fs::create_dir(&taken).unwrap();
    let last = append_through(&mut journal, dir.path(), 12);
    assert_unmapped_soon(dir.path(), 12);
    drop(journal);
    std::fs::remove_dir(&taken).unwrap();
    let (_, recovery) = Journal::open(config).unwrap();
    assert_eq!(recovery.last_seq, last, "every record is still there");
}
