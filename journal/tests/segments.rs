//! Roll-over into many smallest segments, reading across them from any start sequence,
//! and the reader's choice of the segment to start in (it never opens earlier ones).

mod common;

use common::*;
use fincore_journal::*;
use std::path::Path;

/// Payload lengths that fill about twenty smallest segments: mostly command-sized,
/// some large, a few maximal (which must always fit a fresh segment).
fn varied_lens() -> Vec<usize> {
    let mut rng = Rng(42);
    (1..=9_000u64)
        .map(|seq| match seq {
            _ if seq % 2_000 == 0 => PAYLOAD_LEN_MAX,
            _ if seq % 500 == 0 => 20_000 + rng.below(1_000) as usize,
            _ => 1 + rng.below(400) as usize,
        })
        .collect()
}

/// The first sequence of every segment in the layout.
fn segment_starts(positions: &[Position]) -> Vec<u64> {
    let mut starts: Vec<u64> = positions.iter().map(|p| p.segment).collect();
    starts.dedup();
    starts
}

#[test]
fn rolls_over_into_many_segments_named_by_first_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let lens = varied_lens();
    let positions = build(dir.path(), &lens, SEGMENT_SIZE_MIN);
    let starts = segment_starts(&positions);
    assert!(starts.len() >= 15, "{} segments", starts.len());
    let listed = list_segments(dir.path()).unwrap();
    assert_eq!(listed.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), starts);
    for (seq, path) in &listed {
        assert_eq!(*path, segment_path(dir.path(), *seq));
        assert_eq!(std::fs::metadata(path).unwrap().len(), SEGMENT_SIZE_MIN, "preallocated");
    }
    let (journal, recovery) = Journal::open(config(dir.path(), SEGMENT_SIZE_MIN)).unwrap();
    assert_eq!((recovery.segments, recovery.last_seq), (starts.len(), lens.len() as u64));
    assert_eq!(recovery.torn_tail, None);
    drop(journal);
}

#[test]
fn reads_across_segments_from_any_start() {
    let dir = tempfile::tempdir().unwrap();
    let lens = varied_lens();
    let n = lens.len() as u64;
    let positions = build(dir.path(), &lens, SEGMENT_SIZE_MIN);
    let mut starts: Vec<u64> = vec![0, 1, 2, n - 1, n, n + 1, n + 1_000, u64::MAX];
    for first in segment_starts(&positions) {
        starts.extend([first.saturating_sub(1), first, first + 1]);
    }
    let mut rng = Rng(7);
    starts.extend((0..20).map(|_| 1 + rng.below(n)));
    for from in starts {
        let mut reader = JournalReader::open(dir.path(), from).unwrap();
        let mut expected = from.max(1);
        while let Some(record) = reader.next().unwrap() {
            assert_eq!(record.meta, meta(expected), "from {from}");
            assert_eq!(record.payload, payload(expected, lens[expected as usize - 1], 0));
            expected += 1;
        }
        assert_eq!(expected, n.saturating_add(1).max(from), "from {from}");
        assert_eq!(reader.next_seq(), Some(n + 1), "from {from}: the end");
        assert_eq!(reader.torn_tail(), None);
    }
}

/// Damages the header and the first record of segment `first_seq`.
fn damage(dir: &Path, first_seq: u64) {
    let path = segment_path(dir, first_seq);
    flip(&path, 0, 0xFF);
    flip(&path, SEGMENT_HEADER_LEN + 20, 0xFF);
}

#[test]
fn reader_starts_in_the_segment_holding_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let lens = varied_lens();
    let n = lens.len() as u64;
    let starts = segment_starts(&build(dir.path(), &lens, SEGMENT_SIZE_MIN));
    // Damage the segments one after another from the front: reading from the first
    // sequence of the next one still works, so the reader never opened the damaged
    // ones; reading from one sequence earlier opens the damaged one and fails.
    for pair in starts.windows(2) {
        let (damaged, next) = (pair[0], pair[1]);
        damage(dir.path(), damaged);
        let mut reader = JournalReader::open(dir.path(), next).unwrap();
        let first = reader.next().unwrap().unwrap();
        assert_eq!(first.meta, meta(next));
        let (records, _) = read_all(dir.path(), next + 1).unwrap();
        assert_originals(&records, next + 1, n, &lens);
        let error = refused(JournalReader::open(dir.path(), next - 1), "the reader");
        let (path, offset, _) = corrupt_at(&error);
        assert_eq!((path, offset), (segment_path(dir.path(), damaged).as_path(), 0));
    }
}

#[test]
fn maximal_records_fill_smallest_segments() {
    let dir = tempfile::tempdir().unwrap();
    let lens = vec![PAYLOAD_LEN_MAX, 1, PAYLOAD_LEN_MAX, PAYLOAD_LEN_MAX, 3, PAYLOAD_LEN_MAX];
    let positions = build(dir.path(), &lens, SEGMENT_SIZE_MIN);
    assert_eq!(segment_starts(&positions), vec![1, 4]);
    assert_eq!(list_segments(dir.path()).unwrap().len(), 2);
    let (records, torn) = read_all(dir.path(), 1).unwrap();
    assert_originals(&records, 1, lens.len() as u64, &lens);
    assert_eq!(torn, None);
}

#[test]
fn segment_size_applies_to_new_segments() {
    let dir = tempfile::tempdir().unwrap();
    let lens = vec![1_000; 100];
    build(dir.path(), &lens, SEGMENT_SIZE_MIN);
    let error = refused(Journal::open(config(dir.path(), SEGMENT_SIZE_MIN - 8)), "open");
    assert!(matches!(error, JournalError::Config(_)), "{error:?}");
    // Reopened with a larger size: the current segment keeps its own, the next is larger.
    let (mut journal, _) = Journal::open(config(dir.path(), SEGMENT_SIZE_MIN * 2)).unwrap();
    let mut all = lens.clone();
    for seq in 101..=400 {
        journal.append(&meta(seq), &payload(seq, 1_000, 0)).unwrap();
        all.push(1_000);
    }
    drop(journal);
    let sizes: Vec<u64> = list_segments(dir.path())
        .unwrap()
        .iter()
        .map(|(_, path)| std::fs::metadata(path).unwrap().len())
        .collect();
    assert_eq!(sizes, vec![SEGMENT_SIZE_MIN, SEGMENT_SIZE_MIN * 2, SEGMENT_SIZE_MIN * 2]);
    let (records, _) = read_all(dir.path(), 1).unwrap();
    assert_originals(&records, 1, 400, &all);
}

#[test]
fn empty_journals_read_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mut reader = JournalReader::open(dir.path(), 1).unwrap();
    assert!(reader.next().unwrap().is_none());
    assert_eq!(reader.next_seq(), None, "no segment at all");
    let (journal, recovery) = Journal::open(config(dir.path(), SEGMENT_SIZE_MIN)).unwrap();
    assert_eq!((recovery.segments, recovery.last_seq, journal.next_seq()), (1, 0, 1));
    drop(journal);
    let mut reader = JournalReader::open(dir.path(), 1).unwrap();
    assert!(reader.next().unwrap().is_none());
    assert_eq!(reader.next_seq(), Some(1));
    let missing = dir.path().join("missing");
    assert!(matches!(JournalReader::open(&missing, 1), Err(JournalError::Io { .. })));
}

/// Every record read back from `dir` with its payload format.
fn formats(dir: &Path) -> Vec<(u64, u32)> {
    let mut reader = JournalReader::open_strict(dir).unwrap();
    let mut found = Vec::new();
    while let Some(record) = reader.next().unwrap() {
        found.push((record.meta.seq, record.payload_format.expect("read from a segment")));
    }
    found
}

#[test]
fn a_new_payload_format_starts_a_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), &[10; 5], SEGMENT_SIZE_MIN);
    assert_eq!(formats(dir.path()), (1..=5).map(|seq| (seq, 0)).collect::<Vec<_>>());
    // Reopened with format 1: segment 1 keeps format 0, records from 6 go to a new one.
    let config = JournalConfig { payload_format: 1, ..config(dir.path(), SEGMENT_SIZE_MIN) };
    let (mut journal, recovery) = Journal::open(config.clone()).unwrap();
    assert_eq!((recovery.segments, recovery.last_seq, journal.next_seq()), (2, 5, 6));
    for seq in 6..=8 {
        journal.append(&meta(seq), &payload(seq, 10, 0)).unwrap();
    }
    journal.close().unwrap();
    let starts: Vec<u64> = list_segments(dir.path()).unwrap().iter().map(|(s, _)| *s).collect();
    assert_eq!(starts, vec![1, 6]);
    let expected: Vec<(u64, u32)> = (1..=8).map(|seq| (seq, u32::from(seq >= 6))).collect();
    assert_eq!(formats(dir.path()), expected);
    let (records, torn) = read_all(dir.path(), 1).unwrap();
    assert_originals(&records, 1, 8, &[10; 8]);
    assert_eq!(torn, None);
    // The same format again: appends continue in the last segment.
    let (journal, recovery) = Journal::open(config).unwrap();
    assert_eq!((recovery.segments, journal.next_seq()), (2, 9));
}

/// A writer that names the formats it can read refuses a last segment in any other
/// one, full or empty, before adding or replacing a segment; a readable older format
/// is continued as before.
#[test]
fn a_last_segment_in_an_unreadable_format_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let with = |format, readable: &'static [u32]| JournalConfig {
        payload_format: format,
        readable_formats: Some(readable),
        ..config(dir.path(), SEGMENT_SIZE_MIN)
    };
    for records in [0, 5] {
        let _ = std::fs::remove_dir_all(dir.path());
        let (mut journal, _) = Journal::open(with(9, &[])).unwrap();
        for seq in 1..=records {
            journal.append(&meta(seq), &payload(seq, 10, 0)).unwrap();
        }
        journal.close().unwrap();
        let before = read(&segment(dir.path(), 1));
        match Journal::open(with(1, &[0])) {
            Err(JournalError::UnknownFormat { path, format: 9 }) => {
                assert_eq!(path, segment(dir.path(), 1));
            }
            other => panic!("{records} records: {:?}", other.map(|(_, recovery)| recovery)),
        }
        assert_eq!(list_segments(dir.path()).unwrap().len(), 1, "{records} records");
        assert!(read(&segment(dir.path(), 1)) == before, "{records} records: segment changed");
        // Format 9 among the readable ones: continued in a new segment (or replaced).
        let (journal, recovery) = Journal::open(with(1, &[9])).unwrap();
        assert_eq!(recovery.segments, if records == 0 { 1 } else { 2 });
        journal.close().unwrap();
    }
}

#[test]
fn an_empty_last_segment_takes_the_new_payload_format() {
    let dir = tempfile::tempdir().unwrap();
    // A fresh journal (one empty segment, format 0), reopened with format 2: the empty
    // segment is replaced, not followed (a second segment would have the same name).
    drop(Journal::open(config(dir.path(), SEGMENT_SIZE_MIN)).unwrap());
    let config = JournalConfig { payload_format: 2, ..config(dir.path(), SEGMENT_SIZE_MIN) };
    let (mut journal, recovery) = Journal::open(config).unwrap();
    assert_eq!((recovery.segments, recovery.last_seq), (1, 0));
    journal.append(&meta(1), &payload(1, 10, 0)).unwrap();
    journal.close().unwrap();
    assert_eq!(list_segments(dir.path()).unwrap().len(), 1);
    assert_eq!(formats(dir.path()), vec![(1, 2)]);
}

#[test]
fn an_empty_segment_after_others_is_replaced_with_its_chain_kept() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), &[10; 5], SEGMENT_SIZE_MIN);
    // Format 1 rolls to an empty segment 6 (chained to record 5); nothing is appended.
    let with =
        |format| JournalConfig { payload_format: format, ..config(dir.path(), SEGMENT_SIZE_MIN) };
    let (journal, _) = Journal::open(with(1)).unwrap();
    journal.close().unwrap();
    let chain_of_5 = {
        let (records, _) = read_all(dir.path(), 1).unwrap();
        assert_eq!(records.len(), 5);
        let mut reader = JournalReader::open(dir.path(), 5).unwrap();
        reader.next().unwrap().unwrap().crc
    };
    let header_of_6 = read(&segment(dir.path(), 6));
    assert_eq!(u32::from_le_bytes(header_of_6[32..36].try_into().unwrap()), chain_of_5);
    // Back to format 0: segment 6 holds no records, so it is replaced, chain and all.
    let (mut journal, recovery) = Journal::open(with(0)).unwrap();
    assert_eq!((recovery.segments, recovery.last_seq), (2, 5));
    journal.append(&meta(6), &payload(6, 10, 0)).unwrap();
    journal.close().unwrap();
    // The strict audit checks that segment 6 continues segment 1's chain.
    assert_eq!(formats(dir.path()), (1..=6).map(|seq| (seq, 0)).collect::<Vec<_>>());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_new_payload_format_in_fsync_mode_is_durable_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), &[10; 5], SEGMENT_SIZE_MIN);
    let config = JournalConfig {
        payload_format: 1,
        durability: Durability::Fsync,
        ..config(dir.path(), SEGMENT_SIZE_MIN)
    };
    let (mut journal, recovery) = Journal::open(config).unwrap();
    assert_eq!((recovery.segments, journal.durable_seq()), (2, 5));
    journal.append(&meta(6), &payload(6, 10, 0)).unwrap();
    journal.publish();
    assert!(journal.wait_durable(6, std::time::Duration::from_secs(10)));
    journal.close().unwrap();
    let expected: Vec<(u64, u32)> = (1..=6).map(|seq| (seq, u32::from(seq == 6))).collect();
    assert_eq!(formats(dir.path()), expected);
}
