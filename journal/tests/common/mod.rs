//! Helpers shared by the journal's integration tests: deterministic records, building a
//! journal, locating records in segment files, mutating files and reading everything
//! back. Each test binary uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use fincore_journal::record::record_len;
use fincore_journal::*;
use std::path::{Path, PathBuf};

/// The metadata every test record carries (derived from its sequence).
pub fn meta(seq: u64) -> RecordMeta {
    RecordMeta { seq, time_ns: 1_000 + seq * 10, user: 7, session: 3, peer: 0xFEED_0000 + seq }
}

/// A payload of `len` bytes derived from `seq` and `salt`, never ending in a zero byte
/// (so zeroing its last byte always changes the record).
pub fn payload(seq: u64, len: usize, salt: u8) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..len)
        .map(|i| (seq as u8).wrapping_mul(31).wrapping_add(i as u8).wrapping_add(salt))
        .collect();
    if let Some(last) = bytes.last_mut() {
        *last |= 1;
    }
    bytes
}

/// Payload lengths used by `build`: mixed, including lengths that need padding.
pub fn mixed_len(seq: u64) -> usize {
    [1, 7, 8, 100, 64, 255, 33][(seq % 7) as usize]
}

/// Where a record lives: its segment (by first sequence) and byte offset in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// First sequence of the segment (its file name).
    pub segment: u64,
    /// Offset of the record in the segment file.
    pub offset: usize,
    /// Total bytes of the record, padding included.
    pub len: usize,
}

/// The positions the writer gives records with these payload lengths (sequences from
/// 1), following its roll-over rule: a record that does not fit starts a new segment.
pub fn layout(payload_lens: &[usize], segment_size: u64) -> Vec<Position> {
    let mut positions = Vec::with_capacity(payload_lens.len());
    let (mut segment, mut offset) = (1u64, SEGMENT_HEADER_LEN);
    for (i, len) in payload_lens.iter().enumerate() {
        let total = record_len(*len);
        if offset + total > segment_size as usize {
            segment = i as u64 + 1;
            offset = SEGMENT_HEADER_LEN;
        }
        positions.push(Position { segment, offset, len: total });
        offset += total;
    }
    positions
}

/// A journal config for `dir` with the given segment size, process durability.
pub fn config(dir: &Path, segment_size: u64) -> JournalConfig {
    JournalConfig { segment_size, ..JournalConfig::new(dir) }
}

/// Appends records 1..=lens.len() with `payload(seq, lens[seq - 1], 0)` to a new journal
/// in `dir`, closes it, and returns the records' positions.
pub fn build(dir: &Path, lens: &[usize], segment_size: u64) -> Vec<Position> {
    let (mut journal, recovery) = Journal::open(config(dir, segment_size)).unwrap();
    assert_eq!(recovery.last_seq, 0, "build wants an empty directory");
    for (i, len) in lens.iter().enumerate() {
        let seq = i as u64 + 1;
        journal.append(&meta(seq), &payload(seq, *len, 0)).unwrap();
    }
    journal.close().unwrap();
    layout(lens, segment_size)
}

/// A record as read back, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owned {
    /// Header fields.
    pub meta: RecordMeta,
    /// Payload bytes.
    pub payload: Vec<u8>,
}

/// Everything a reader yields from `from`, and the torn tail it stopped at, if any.
pub fn read_all(dir: &Path, from: u64) -> Result<(Vec<Owned>, Option<TornTail>), JournalError> {
    let mut reader = JournalReader::open(dir, from)?;
    let mut records = Vec::new();
    while let Some(record) = reader.next()? {
        records.push(Owned { meta: record.meta, payload: record.payload.to_vec() });
    }
    Ok((records, reader.torn_tail().cloned()))
}

/// Asserts `records` are exactly `first..=last` of the original build (`salt` 0) with
/// the payload lengths `lens` (indexed by seq - 1).
pub fn assert_originals(records: &[Owned], first: u64, last: u64, lens: &[usize]) {
    assert_eq!(records.len() as u64, (last + 1).saturating_sub(first), "record count");
    for (record, seq) in records.iter().zip(first..) {
        assert_eq!(record.meta, meta(seq));
        assert_eq!(record.payload, payload(seq, lens[seq as usize - 1], 0), "payload of {seq}");
    }
}

/// The path of segment `first_seq` in `dir`.
pub fn segment(dir: &Path, first_seq: u64) -> PathBuf {
    segment_path(dir, first_seq)
}

/// Reads a whole file.
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// Overwrites a whole file (same length expected by callers).
pub fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap()
}

/// XORs the byte at `offset` of `path` with `mask`.
pub fn flip(path: &Path, offset: usize, mask: u8) {
    let mut bytes = read(path);
    bytes[offset] ^= mask;
    write(path, &bytes);
}

/// Copies every file of `from` into `to` (created if missing; flat directories only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}

/// The `Corrupt` error's file and offset, or a panic naming what came instead.
pub fn corrupt_at(error: &JournalError) -> (&Path, u64, &str) {
    match error {
        JournalError::Corrupt { path, offset, reason } => (path, *offset, reason),
        other => panic!("expected a Corrupt error, got {other:?}"),
    }
}

/// A small deterministic generator (splitmix64) so tests need no extra dependency.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The error of a result that must be one (`Journal` and `JournalReader` are not
/// `Debug`, so `expect_err` is not available).
pub fn refused<T>(result: Result<T, JournalError>, what: &str) -> JournalError {
    match result {
        Ok(_) => panic!("{what} must fail"),
        Err(error) => error,
    }
}
