//! A torn or damaged last record: at every byte offset inside it, what a crash that lost
//! the rest would leave (zeros from there to the end of the preallocated file), and a
//! flipped byte there. Recovery keeps exactly the records before it, reports the cut,
//! and the journal accepts appends afterwards. Also: an append that never published its
//! length, and literal truncation of the file (which is damage, not a torn tail).

mod common;

use common::*;
use fincore_journal::record::RECORD_HEADER_LEN;
use fincore_journal::*;
use std::path::Path;

/// How the last record is damaged.
#[derive(Clone, Copy, Debug)]
enum Mutation {
    /// Zeros from the offset to the end of the file.
    ZeroFrom,
    /// The byte at the offset inverted.
    Flip,
}

/// Twenty records of mixed lengths in one segment; the last has a 100-byte payload (so
/// 4 bytes of padding).
fn one_segment_lens() -> Vec<usize> {
    let mut lens: Vec<usize> = (1..20).map(mixed_len).collect();
    lens.push(100);
    lens
}

/// Records filling two smallest segments, then one 100-byte record that is the only
/// record of the third segment (its first record, at offset 64).
fn three_segment_lens() -> Vec<usize> {
    let mut lens = vec![1_000; 200];
    let end = *layout(&lens, SEGMENT_SIZE_MIN).last().unwrap();
    let room = SEGMENT_SIZE_MIN as usize - (end.offset + end.len);
    // A record leaving 8 bytes free: the next one cannot fit and starts a new segment.
    lens.push(room - RECORD_HEADER_LEN - 8);
    lens.push(100);
    let positions = layout(&lens, SEGMENT_SIZE_MIN);
    let last = positions.last().unwrap();
    assert_eq!((last.segment, last.offset), (lens.len() as u64, SEGMENT_HEADER_LEN));
    let mut segments: Vec<u64> = positions.iter().map(|p| p.segment).collect();
    segments.dedup();
    assert_eq!(segments.len(), 3);
    lens
}

/// Applies `mutation` at byte `at` of the file; returns whether the bytes changed.
fn mutate(bytes: &mut [u8], at: usize, mutation: Mutation) -> bool {
    let before = bytes.to_vec();
    match mutation {
        Mutation::ZeroFrom => bytes[at..].fill(0),
        Mutation::Flip => bytes[at] ^= 0xFF,
    }
    before != bytes
}

/// Appends three new records after recovery, then checks the whole journal reads back
/// as the originals before the cut followed by the new ones.
fn append_and_check(dir: &Path, lens: &[usize], kept: u64) {
    let (mut journal, _) = Journal::open(config(dir, SEGMENT_SIZE_MIN)).unwrap();
    assert_eq!(journal.next_seq(), kept + 1);
    for seq in kept + 1..=kept + 3 {
        journal.append(&meta(seq), &payload(seq, 50, 9)).unwrap();
    }
    drop(journal);
    let (records, torn) = read_all(dir, 1).unwrap();
    assert_eq!(torn, None);
    assert_originals(&records[..kept as usize], 1, kept, lens);
    for (record, seq) in records[kept as usize..].iter().zip(kept + 1..) {
        assert_eq!(record.meta, meta(seq));
        assert_eq!(record.payload, payload(seq, 50, 9));
    }
    assert_eq!(records.len() as u64, kept + 3);
    let (_, recovery) = Journal::open(config(dir, SEGMENT_SIZE_MIN)).unwrap();
    assert_eq!(
        (recovery.last_seq, recovery.torn_tail, recovery.cleared_bytes),
        (kept + 3, None, 0)
    );
}

/// Every offset of the last record, both mutations.
fn every_offset_of_the_last_record(lens: &[usize]) {
    let original = tempfile::tempdir().unwrap();
    let positions = build(original.path(), lens, SEGMENT_SIZE_MIN);
    let n = lens.len() as u64;
    let last = positions[n as usize - 1];
    let work = tempfile::tempdir().unwrap();
    copy_dir(original.path(), work.path());
    let path = segment(work.path(), last.segment);
    let pristine = read(&path);
    for k in 0..last.len {
        for mutation in [Mutation::ZeroFrom, Mutation::Flip] {
            let context = format!("{mutation:?} at byte {k} of the last record");
            let mut bytes = pristine.clone();
            let changed = mutate(&mut bytes, last.offset + k, mutation);
            write(&path, &bytes);
            if !changed {
                // Zeroing padding that was already zero: the record is intact.
                let (_, recovery) = Journal::open(config(work.path(), SEGMENT_SIZE_MIN)).unwrap();
                assert_eq!((recovery.last_seq, recovery.torn_tail), (n, None), "{context}");
                continue;
            }
            // Zeroing from the length field on leaves no record at all: nothing to report.
            let absent = k == 0 && matches!(mutation, Mutation::ZeroFrom);
            let (records, torn) = read_all(work.path(), 1).unwrap();
            assert_originals(&records, 1, n - 1, lens);
            assert_eq!(torn.is_none(), absent, "{context}: reader's torn tail {torn:?}");
            let (journal, recovery) = Journal::open(config(work.path(), SEGMENT_SIZE_MIN)).unwrap();
            assert_eq!(recovery.last_seq, n - 1, "{context}");
            assert_eq!(journal.next_seq(), n, "{context}");
            assert_eq!(recovery.cleared_bytes, 0, "{context}");
            assert_eq!(recovery.removed_segment, None, "{context}");
            match recovery.torn_tail {
                None => assert!(absent, "{context}: no torn tail reported"),
                Some(torn) => {
                    assert!(!absent, "{context}");
                    assert_eq!((torn.path, torn.offset), (path.clone(), last.offset as u64));
                }
            }
            drop(journal);
            // The cut bytes are zero again, ready for the next append.
            assert!(read(&path)[last.offset..].iter().all(|b| *b == 0), "{context}");
            append_and_check(work.path(), lens, n - 1);
        }
    }
}

#[test]
fn torn_last_record_in_a_single_segment() {
    every_offset_of_the_last_record(&one_segment_lens());
}

#[test]
fn torn_first_record_of_the_last_segment() {
    every_offset_of_the_last_record(&three_segment_lens());
}

#[test]
fn reader_reports_the_end_sequence_after_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let lens = one_segment_lens();
    let positions = build(dir.path(), &lens, SEGMENT_SIZE_MIN);
    let last = *positions.last().unwrap();
    flip(&segment(dir.path(), 1), last.offset + RECORD_HEADER_LEN + 3, 0x10);
    let mut reader = JournalReader::open(dir.path(), 1).unwrap();
    while reader.next().unwrap().is_some() {}
    assert_eq!(reader.next_seq(), Some(lens.len() as u64));
    assert!(reader.next().unwrap().is_none(), "stays at the end");
    let torn = reader.torn_tail().unwrap();
    assert_eq!(torn.offset, last.offset as u64);
    assert!(torn.reason.contains("checksum"), "{}", torn.reason);
}

#[test]
fn unpublished_append_is_cleared() {
    let lens = one_segment_lens();
    let n = lens.len() as u64;
    for (name, zero_payload_from) in [("whole body", None), ("half the payload", Some(50))] {
        let dir = tempfile::tempdir().unwrap();
        let positions = build(dir.path(), &lens, SEGMENT_SIZE_MIN);
        let last = positions[n as usize - 1];
        let path = segment(dir.path(), 1);
        let mut bytes = read(&path);
        // The writer publishes the length last: a crash before that leaves the body
        // (or, after an OS crash, part of it) behind a zero length field.
        bytes[last.offset..last.offset + 4].fill(0);
        if let Some(from) = zero_payload_from {
            bytes[last.offset + RECORD_HEADER_LEN + from..].fill(0);
        }
        // What is left runs from the record's start to its last non-zero byte.
        let left = bytes.iter().rposition(|b| *b != 0).unwrap() + 1 - last.offset;
        assert!(left > RECORD_HEADER_LEN, "{name}: part of the payload is left");
        write(&path, &bytes);
        let (records, torn) = read_all(dir.path(), 1).unwrap();
        assert_originals(&records, 1, n - 1, &lens);
        let torn = torn.expect("the reader sees leftovers behind the end");
        assert_eq!(torn.offset, last.offset as u64, "{name}");
        let (journal, recovery) = Journal::open(config(dir.path(), SEGMENT_SIZE_MIN)).unwrap();
        assert_eq!(recovery.last_seq, n - 1, "{name}");
        assert_eq!(recovery.torn_tail, None, "{name}");
        assert_eq!(recovery.cleared_bytes, left as u64, "{name}");
        drop(journal);
        assert!(read(&path)[last.offset..].iter().all(|b| *b == 0), "{name}");
        append_and_check(dir.path(), &lens, n - 1);
    }
}

/// A literally shorter file is not what a crash leaves (segments are created at their
/// full size and synced before any record is written): it is refused as damage, with
/// the file and offset 0 (the header's size field disagrees with the file).
#[test]
fn truncated_last_segment_is_corrupt() {
    for lens in [one_segment_lens(), three_segment_lens()] {
        let original = tempfile::tempdir().unwrap();
        let positions = build(original.path(), &lens, SEGMENT_SIZE_MIN);
        let last = *positions.last().unwrap();
        let cuts = [last.offset, last.offset + 1, last.offset + 4, last.offset + 40];
        let cuts = cuts.into_iter().chain([last.offset + last.len - 1, 4096, 10]);
        for cut in cuts {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(original.path(), dir.path());
            let path = segment(dir.path(), last.segment);
            std::fs::File::options().write(true).open(&path).unwrap().set_len(cut as u64).unwrap();
            let before = read(&path);
            let error = refused(Journal::open(config(dir.path(), SEGMENT_SIZE_MIN)), "open");
            let (at, offset, reason) = corrupt_at(&error);
            assert_eq!((at, offset), (path.as_path(), 0), "cut at {cut}");
            let expected = if cut < SEGMENT_HEADER_LEN { "shorter than" } else { "size" };
            assert!(reason.contains(expected), "cut at {cut}: {reason}");
            assert!(error.to_string().contains(&*path.to_string_lossy()), "{error}");
            assert_eq!(read(&path), before, "a refused open changes nothing");
            let error = refused(read_all(dir.path(), 1), "the reader");
            assert_eq!(corrupt_at(&error).0, path.as_path(), "the reader refuses it too");
        }
    }
}

/// An empty last segment is what a crash between creating the file and writing its
/// header leaves: it is removed and reported, whatever it held before.
#[test]
fn empty_last_segment_is_removed_as_unborn() {
    let lens = three_segment_lens();
    let n = lens.len() as u64;
    let dir = tempfile::tempdir().unwrap();
    let positions = build(dir.path(), &lens, SEGMENT_SIZE_MIN);
    let path = segment(dir.path(), positions[n as usize - 1].segment);
    std::fs::File::options().write(true).open(&path).unwrap().set_len(0).unwrap();
    let (journal, recovery) = Journal::open(config(dir.path(), SEGMENT_SIZE_MIN)).unwrap();
    assert_eq!(recovery.removed_segment, Some(path.clone()));
    assert_eq!((recovery.last_seq, recovery.segments, recovery.torn_tail), (n - 1, 2, None));
    assert!(!path.exists());
    drop(journal);
    // The next append does not fit the second segment and recreates the third.
    append_and_check(dir.path(), &lens, n - 1);
    assert!(path.exists());
    // A zero-filled full-size file is unborn as well.
    let dir = tempfile::tempdir().unwrap();
    let path = segment(dir.path(), 1);
    write(&path, &vec![0; SEGMENT_SIZE_MIN as usize]);
    let (_, recovery) = Journal::open(config(dir.path(), SEGMENT_SIZE_MIN)).unwrap();
    assert_eq!((recovery.removed_segment, recovery.last_seq), (Some(path), 0));
}
