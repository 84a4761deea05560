//! Storage faults a test injects into a stopped server's journal: what an OS crash (or
//! power loss) leaves of the pages that were never synced, and torn record writes.

use fincore_journal::record::record_len;
use fincore_journal::{SEGMENT_HEADER_LEN, list_segments};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// What [`lose_unsynced`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Loss {
    /// Non-zero bytes that were zeroed (records, or parts of records, lost).
    pub bytes_lost: u64,
    /// Bytes of the first unsynced record(s) kept (a write that reached the device
    /// in part).
    pub bytes_kept: u64,
}

/// Leaves the journal in `journal_dir` as an OS crash could have: every record through
/// `synced_seq` intact (it was on the device), everything after it lost, except the
/// first `torn_bytes` bytes after the last synced record, which reached the device (a
/// torn write when they end inside a record). Segments begun after the cut keep their
/// headers, which are synced when a segment is created.
pub fn lose_unsynced(journal_dir: &Path, synced_seq: u64, torn_bytes: usize) -> Loss {
    let segments = list_segments(journal_dir).unwrap();
    let cut_in = segments
        .iter()
        .rposition(|(first_seq, _)| *first_seq <= synced_seq + 1)
        .expect("a segment holds the first unsynced position");
    let mut loss = Loss::default();
    for (i, (first_seq, path)) in segments.iter().enumerate().skip(cut_in) {
        let bytes = std::fs::read(path).unwrap();
        let cut = if i == cut_in {
            record_end(&bytes, synced_seq + 1 - first_seq)
        } else {
            SEGMENT_HEADER_LEN
        };
        let kept_to = if i == cut_in { (cut + torn_bytes).min(bytes.len()) } else { cut };
        loss.bytes_kept += bytes[cut..kept_to].iter().filter(|b| **b != 0).count() as u64;
        // Zero in place up to the last non-zero byte: segments are large sparse files.
        let Some(last) = bytes.iter().rposition(|b| *b != 0).filter(|last| *last >= kept_to) else {
            continue;
        };
        let lost = &bytes[kept_to..=last];
        loss.bytes_lost += lost.iter().filter(|b| **b != 0).count() as u64;
        let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        file.write_all_at(&vec![0; lost.len()], kept_to as u64).unwrap();
    }
    loss
}

/// Offset just after the first `records` records of a segment (walked by their length
/// fields; the test knows they are there).
fn record_end(segment: &[u8], records: u64) -> usize {
    let mut offset = SEGMENT_HEADER_LEN;
    for n in 0..records {
        let len = u32::from_le_bytes(segment[offset..offset + 4].try_into().unwrap()) as usize;
        assert!(len > 0, "the segment ends after {n} records, {records} expected");
        offset += record_len(len);
    }
    offset
}

/// Zeroes the length field of record `seq`, the last one in the journal: a crash after
/// the record's body was written but before its length (which is written last).
pub fn unpublish_last(journal_dir: &Path, seq: u64) {
    let segments = list_segments(journal_dir).unwrap();
    let (first_seq, path) =
        segments.iter().rev().find(|(first_seq, _)| *first_seq <= seq).expect("a segment");
    let bytes = std::fs::read(path).unwrap();
    let at = record_end(&bytes, seq - first_seq);
    let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    assert!(len > 0 && bytes[at + record_len(len)..].iter().all(|b| *b == 0), "not the last");
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(&[0; 4], at as u64).unwrap();
}
