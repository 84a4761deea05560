//! Damage that is not a torn tail is refused with the file and the byte offset: a
//! flipped byte in a record that others follow, a removed, swapped or re-numbered
//! record, a missing segment, a bad header, a foreign file name. `Journal::open` checks
//! the last segment; `JournalReader` checks every segment it reads.

mod common;

use common::*;
use fincore_journal::record::{RECORD_HEADER_LEN, record_crc};
use fincore_journal::*;
use std::path::Path;

/// Records per test journal that fits one smallest segment (104 bytes each).
const RECORDS_ONE_SEGMENT: usize = 1_000;

/// Builds `n` records of 64-byte payloads in `dir`.
fn build_64(dir: &Path, n: usize) -> (Vec<usize>, Vec<Position>) {
    let lens = vec![64; n];
    let positions = build(dir, &lens, SEGMENT_SIZE_MIN);
    (lens, positions)
}

/// Asserts that both `Journal::open` and a reader from sequence 1 refuse the journal
/// with `Corrupt` at `path` and `offset` (the reason containing `why`), and that the
/// refused open changed no file.
fn assert_refused(dir: &Path, path: &Path, offset: usize, why: &str) {
    let before = read(path);
    let error = refused(Journal::open(config(dir, SEGMENT_SIZE_MIN)), "open");
    let (at, found, reason) = corrupt_at(&error);
    assert_eq!((at, found), (path, offset as u64), "open: {error}");
    assert!(reason.contains(why), "open: {error}");
    let text = error.to_string();
    assert!(text.contains(&*path.to_string_lossy()) && text.contains(&format!("byte {offset}")));
    assert_eq!(read(path), before, "a refused open must not touch the file");
    assert_reader_refuses(dir, 1, path, offset);
}

/// Asserts a reader from `from` fails with `Corrupt` at `path` and `offset`.
fn assert_reader_refuses(dir: &Path, from: u64, path: &Path, offset: usize) {
    let error = refused(read_all(dir, from), "the reader");
    let (at, found, _) = corrupt_at(&error);
    assert_eq!((at, found), (path, offset as u64), "reader: {error}");
}

#[test]
fn flipped_byte_in_a_record_that_others_follow_is_refused() {
    let original = tempfile::tempdir().unwrap();
    let (_, positions) = build_64(original.path(), RECORDS_ONE_SEGMENT);
    let pristine = read(&segment(original.path(), 1));
    let dir = tempfile::tempdir().unwrap();
    let path = segment(dir.path(), 1);
    // Far from the tail (followers beyond a torn write's reach), and close to it: the
    // second-to-last record and one a few records before the end. Every byte of the
    // record: length, checksum, header fields, payload.
    for seq in [10, RECORDS_ONE_SEGMENT - 5, RECORDS_ONE_SEGMENT - 1] {
        let at = positions[seq - 1];
        for k in 0..at.len {
            let mut bytes = pristine.clone();
            bytes[at.offset + k] ^= 0xFF;
            write(&path, &bytes);
            assert_refused(dir.path(), &path, at.offset, "follow");
        }
    }
}

#[test]
fn zeroed_length_of_a_record_that_others_follow_is_refused() {
    for seq in [10, RECORDS_ONE_SEGMENT - 1] {
        let dir = tempfile::tempdir().unwrap();
        let (_, positions) = build_64(dir.path(), RECORDS_ONE_SEGMENT);
        let path = segment(dir.path(), 1);
        let at = positions[seq - 1].offset;
        let mut bytes = read(&path);
        bytes[at..at + 4].fill(0);
        write(&path, &bytes);
        assert_refused(dir.path(), &path, at, "beyond the last record");
    }
}

/// Rewrites records `from..` of the single segment in `bytes` with `change` applied to
/// their sequence numbers and the checksum chain recomputed from record `from - 1`:
/// a forgery that only the sequence check can catch.
fn renumber(bytes: &mut [u8], positions: &[Position], from: usize, change: impl Fn(u64) -> u64) {
    let crc_at = |bytes: &[u8], offset: usize| {
        u32::from_le_bytes(bytes[offset + 4..offset + 8].try_into().unwrap())
    };
    let mut previous = crc_at(bytes, positions[from - 2].offset);
    for at in &positions[from - 1..] {
        let o = at.offset;
        let seq = u64::from_le_bytes(bytes[o + 8..o + 16].try_into().unwrap());
        bytes[o + 8..o + 16].copy_from_slice(&change(seq).to_le_bytes());
        let len = u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) as usize;
        let body = o + RECORD_HEADER_LEN;
        previous = record_crc(previous, &bytes[o + 8..body], &bytes[body..body + len]);
        bytes[o + 4..o + 8].copy_from_slice(&previous.to_le_bytes());
    }
}

#[test]
fn sequence_gap_is_refused() {
    let n = RECORDS_ONE_SEGMENT;
    for from in [10, n - 1] {
        let dir = tempfile::tempdir().unwrap();
        let (_, positions) = build_64(dir.path(), n);
        let path = segment(dir.path(), 1);
        let mut bytes = read(&path);
        renumber(&mut bytes, &positions, from, |seq| seq + 1);
        write(&path, &bytes);
        let why = format!("sequence gap: expected {from}, found {}", from + 1);
        assert_refused(dir.path(), &path, positions[from - 1].offset, &why);
    }
}

/// Removes record `seq` from the single segment, shifting the later ones down.
fn remove(bytes: &mut Vec<u8>, at: Position) {
    let size = bytes.len();
    bytes.drain(at.offset..at.offset + at.len);
    bytes.resize(size, 0);
}

#[test]
fn removed_record_is_refused() {
    let n = RECORDS_ONE_SEGMENT;
    for seq in [10, n - 2] {
        let dir = tempfile::tempdir().unwrap();
        let (_, positions) = build_64(dir.path(), n);
        let path = segment(dir.path(), 1);
        let mut bytes = read(&path);
        remove(&mut bytes, positions[seq - 1]);
        write(&path, &bytes);
        // The record now at that offset does not chain from the one before it.
        assert_refused(dir.path(), &path, positions[seq - 1].offset, "checksum");
    }
}

/// The limit of telling damage from a torn tail: with the second-to-last record
/// removed, the last one sits in its place, fails the chain and nothing follows it; that
/// is exactly what a torn last record looks like, so it is cut and reported.
#[test]
fn removed_second_to_last_record_looks_like_a_torn_tail() {
    let n = RECORDS_ONE_SEGMENT;
    let dir = tempfile::tempdir().unwrap();
    let (lens, positions) = build_64(dir.path(), n);
    let path = segment(dir.path(), 1);
    let mut bytes = read(&path);
    remove(&mut bytes, positions[n - 2]);
    write(&path, &bytes);
    let (journal, recovery) = Journal::open(config(dir.path(), SEGMENT_SIZE_MIN)).unwrap();
    let torn = recovery.torn_tail.expect("reported");
    assert_eq!((torn.path, torn.offset), (path, positions[n - 2].offset as u64));
    assert_eq!(recovery.last_seq, n as u64 - 2);
    drop(journal);
    let (records, torn) = read_all(dir.path(), 1).unwrap();
    assert_originals(&records, 1, n as u64 - 2, &lens);
    assert_eq!(torn, None);
}

#[test]
fn swapped_records_are_refused() {
    let n = RECORDS_ONE_SEGMENT;
    for seq in [10, n - 2] {
        let dir = tempfile::tempdir().unwrap();
        let (_, positions) = build_64(dir.path(), n);
        let path = segment(dir.path(), 1);
        let mut bytes = read(&path);
        let (a, b) = (positions[seq - 1], positions[seq]);
        let first = bytes[a.offset..a.offset + a.len].to_vec();
        bytes.copy_within(b.offset..b.offset + b.len, a.offset);
        bytes[a.offset + b.len..a.offset + b.len + a.len].copy_from_slice(&first);
        write(&path, &bytes);
        assert_refused(dir.path(), &path, a.offset, "checksum");
    }
}

/// Three segments of 64-byte records; returns positions.
fn build_three_segments(dir: &Path) -> (Vec<usize>, Vec<Position>) {
    let (lens, positions) = build_64(dir, 3_000);
    let mut segments: Vec<u64> = positions.iter().map(|p| p.segment).collect();
    segments.dedup();
    assert_eq!(segments.len(), 3);
    assert_eq!(list_segments(dir).unwrap().len(), 3);
    (lens, positions)
}

#[test]
fn damage_in_a_sealed_segment_is_refused_by_the_reader() {
    let original = tempfile::tempdir().unwrap();
    let (lens, positions) = build_three_segments(original.path());
    let n = lens.len() as u64;
    let second = positions.iter().position(|p| p.segment != 1).unwrap() + 1;
    // A record in the middle of the first segment, and its last record (which a reader
    // must not take for a torn tail: the journal goes on in the next segment).
    for seq in [100, second - 1] {
        for k in [0, 5, 30, 60, 103] {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(original.path(), dir.path());
            let at = positions[seq - 1];
            let path = segment(dir.path(), 1);
            flip(&path, at.offset + k, 0x01);
            // The writer only scans the last segment, which is intact.
            let (journal, recovery) = Journal::open(config(dir.path(), SEGMENT_SIZE_MIN)).unwrap();
            assert_eq!((recovery.last_seq, recovery.torn_tail), (n, None));
            drop(journal);
            assert_reader_refuses(dir.path(), 1, &path, at.offset);
            assert_reader_refuses(dir.path(), seq as u64, &path, at.offset);
            // Reading from the next segment on never looks at the first.
            let (records, torn) = read_all(dir.path(), second as u64).unwrap();
            assert_originals(&records, second as u64, n, &lens);
            assert_eq!(torn, None);
        }
    }
}

#[test]
fn cut_short_sealed_segment_is_refused_by_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let (_, positions) = build_three_segments(dir.path());
    let second = positions.iter().position(|p| p.segment != 1).unwrap() + 1;
    // The last record of the first segment zeroed: the segment looks cleanly ended,
    // but the next one does not continue it.
    let path = segment(dir.path(), 1);
    let mut bytes = read(&path);
    bytes[positions[second - 2].offset..].fill(0);
    write(&path, &bytes);
    let next = segment(dir.path(), second as u64);
    let error = refused(read_all(dir.path(), 1), "the reader");
    let (at, offset, reason) = corrupt_at(&error);
    assert_eq!((at, offset), (next.as_path(), 0));
    assert!(reason.contains("does not continue"), "{reason}");
}

#[test]
fn missing_middle_segment_is_refused_by_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let (_, positions) = build_three_segments(dir.path());
    let segments = list_segments(dir.path()).unwrap();
    std::fs::remove_file(&segments[1].1).unwrap();
    let error = refused(read_all(dir.path(), 1), "the reader");
    let (at, offset, reason) = corrupt_at(&error);
    assert_eq!((at, offset), (segments[2].1.as_path(), 0));
    let expected = format!("expected seq {}", segments[1].0);
    assert!(reason.contains(&expected), "{reason}");
    // The writer only looks at the last segment.
    let (_, recovery) = Journal::open(config(dir.path(), SEGMENT_SIZE_MIN)).unwrap();
    assert_eq!(recovery.last_seq, positions.len() as u64);
}

#[test]
fn damaged_segment_header_is_refused() {
    let original = tempfile::tempdir().unwrap();
    build_64(original.path(), 100);
    for (k, why) in [(0, "magic"), (8, "version"), (13, "checksum"), (20, "checksum")] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(original.path(), dir.path());
        let path = segment(dir.path(), 1);
        flip(&path, k, 0x04);
        assert_refused(dir.path(), &path, 0, why);
    }
    // A segment whose name disagrees with its header.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(original.path(), dir.path());
    let renamed = segment(dir.path(), 7);
    std::fs::rename(segment(dir.path(), 1), &renamed).unwrap();
    assert_refused(dir.path(), &renamed, 0, "file name");
}

#[test]
fn segment_starting_at_sequence_zero_is_refused() {
    let original = tempfile::tempdir().unwrap();
    build_64(original.path(), 10);
    let mut bytes = read(&segment(original.path(), 1));
    bytes[16..24].copy_from_slice(&0u64.to_le_bytes());
    let crc = record_crc(0, &bytes[0..12], &bytes[16..SEGMENT_HEADER_LEN]);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let path = segment(dir.path(), 0);
    write(&path, &bytes);
    assert_refused(dir.path(), &path, 0, "sequence 0");
}

#[test]
fn foreign_journal_file_names_are_refused() {
    for name in ["1.journal", "abc.journal", "000000000000000000001.journal"] {
        let dir = tempfile::tempdir().unwrap();
        build_64(dir.path(), 10);
        let path = dir.path().join(name);
        write(&path, b"not a segment");
        let error = refused(Journal::open(config(dir.path(), SEGMENT_SIZE_MIN)), "open");
        let (at, offset, reason) = corrupt_at(&error);
        assert_eq!((at, offset), (path.as_path(), 0), "{name}");
        assert!(reason.contains("20-digit"), "{reason}");
        assert_eq!(corrupt_at(&refused(read_all(dir.path(), 1), "the reader")).0, path.as_path());
    }
}

/// Files without the `.journal` suffix are not segments and are left alone.
#[test]
fn other_files_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (lens, _) = build_64(dir.path(), 10);
    write(&dir.path().join("notes.txt"), b"operator notes");
    write(&dir.path().join("00000000000000000001.journal.bak"), b"a backup");
    let (journal, recovery) = Journal::open(config(dir.path(), SEGMENT_SIZE_MIN)).unwrap();
    assert_eq!((recovery.last_seq, recovery.segments), (10, 1));
    drop(journal);
    let (records, _) = read_all(dir.path(), 1).unwrap();
    assert_originals(&records, 1, 10, &lens);
}
