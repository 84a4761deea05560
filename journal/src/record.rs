//! The record layout, byte by byte (all integers little-endian). See `docs/JOURNAL.md`.
//!
//! ```text
//! offset  size  field
//!      0     4  payload_len   u32; written last: 0 means "no record here (yet)"
//!      4     4  crc           u32 CRC32C of bytes 8..40+payload_len, chained
//!      8     8  seq           u64, consecutive from the segment's first_seq
//!     16     8  time_ns       u64, receive time stamped by the gateway
//!     24     4  user          u32, the authenticated user
//!     28     4  session       u32, the session it came in on
//!     32     8  peer          u64, the peer's address: IPv4 `ip << 16 | port`
//!     40     n  payload       opaque bytes
//!   40+n     p  zero padding  to the next multiple of 8
//! ```
//!
//! Chaining: `crc = crc32c_append(previous_crc, bytes 8..40+n)`, where `previous_crc`
//! is the previous record's `crc` (across segments too; the segment header carries the
//! value before its first record). Removing, reordering or splicing records therefore
//! breaks the checksum of the next record, not only bit flips.

use crate::checksum::crc32c_append;

/// Bytes before the payload.
pub const RECORD_HEADER_LEN: usize = 40;

/// Records start and end on this boundary, so the length field is always aligned for an
/// atomic 4-byte store.
pub const RECORD_ALIGN: usize = 8;

/// Largest payload accepted. Commands are at most a few hundred bytes; the bound also
/// limits how far a torn write can reach, which recovery relies on (see `scan.rs`).
pub const PAYLOAD_LEN_MAX: usize = 64 * 1024;

/// Who sent a record, and when: the audit trail carried by every record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordMeta {
    /// Sequence number; must be the journal's next.
    pub seq: u64,
    /// Receive time, ns since the Unix epoch.
    pub time_ns: u64,
    /// Authenticated user.
    pub user: u32,
    /// Session id.
    pub session: u32,
    /// Hash of the peer address (0 for records that came from no peer, e.g. setup).
    pub peer: u64,
}

/// A record as read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Its header fields.
    pub meta: RecordMeta,
    /// Its chained checksum.
    pub crc: u32,
    /// Its payload.
    pub payload: &'a [u8],
    /// The payload format of its segment (see [`crate::JournalConfig::payload_format`]),
    /// as [`crate::JournalReader`] reports it; `None` from [`parse`], which looks at one
    /// record without its segment.
    pub payload_format: Option<u32>,
}

/// Total bytes a record with `payload_len` bytes of payload occupies.
pub const fn record_len(payload_len: usize) -> usize {
    (RECORD_HEADER_LEN + payload_len).div_ceil(RECORD_ALIGN) * RECORD_ALIGN
}

/// The 32 header bytes after length and crc (offsets 8..40).
pub fn encode_meta(meta: &RecordMeta) -> [u8; RECORD_HEADER_LEN - 8] {
    let mut out = [0u8; RECORD_HEADER_LEN - 8];
    out[0..8].copy_from_slice(&meta.seq.to_le_bytes());
    out[8..16].copy_from_slice(&meta.time_ns.to_le_bytes());
    out[16..20].copy_from_slice(&meta.user.to_le_bytes());
    out[20..24].copy_from_slice(&meta.session.to_le_bytes());
    out[24..32].copy_from_slice(&meta.peer.to_le_bytes());
    out
}

/// Decodes the 32 header bytes at offsets 8..40.
pub fn decode_meta(bytes: &[u8; RECORD_HEADER_LEN - 8]) -> RecordMeta {
    let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    RecordMeta {
        seq: u64_at(0),
        time_ns: u64_at(8),
        user: u32_at(16),
        session: u32_at(20),
        peer: u64_at(24),
    }
}

/// The chained checksum of a record.
pub fn record_crc(previous_crc: u32, meta: &[u8], payload: &[u8]) -> u32 {
    crc32c_append(crc32c_append(previous_crc, meta), payload)
}

/// Why the bytes at some offset are not a valid record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordFault {
    /// The length field claims more than fits or more than the maximum.
    BadLength(u32),
    /// The checksum does not match (bit flip, torn write, or broken chain).
    BadChecksum {
        /// Stored value.
        stored: u32,
        /// Computed value.
        computed: u32,
    },
    /// The sequence number is not the expected next one.
    SequenceGap {
        /// Expected.
        expected: u64,
        /// Found.
        found: u64,
    },
    /// Non-zero padding after the payload.
    BadPadding,
}

impl std::fmt::Display for RecordFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordFault::BadLength(len) => write!(f, "record length {len} is impossible"),
            RecordFault::BadChecksum { stored, computed } => {
                write!(f, "checksum mismatch (stored {stored:08x}, computed {computed:08x})")
            }
            RecordFault::SequenceGap { expected, found } => {
                write!(f, "sequence gap: expected {expected}, found {found}")
            }
            RecordFault::BadPadding => f.write_str("non-zero padding after the payload"),
        }
    }
}

/// Outcome of parsing the bytes at the start of `bytes` as a record.
#[derive(Debug)]
pub enum Parsed<'a> {
    /// No record: the length field is zero.
    End,
    /// A valid record, and its total length.
    Record(Record<'a>, usize),
    /// Something that is not a valid record.
    Fault(RecordFault),
}

/// Parses and verifies one record at the start of `bytes` (the rest of a segment).
pub fn parse(bytes: &[u8], previous_crc: u32, expected_seq: u64) -> Parsed<'_> {
    if bytes.len() < RECORD_HEADER_LEN {
        return Parsed::End;
    }
    let len = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes"));
    if len == 0 {
        return Parsed::End;
    }
    let total = record_len(len as usize);
    if len as usize > PAYLOAD_LEN_MAX || total > bytes.len() {
        return Parsed::Fault(RecordFault::BadLength(len));
    }
    let stored = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    let meta_bytes: &[u8; RECORD_HEADER_LEN - 8] =
        bytes[8..RECORD_HEADER_LEN].try_into().expect("32");
    let payload = &bytes[RECORD_HEADER_LEN..RECORD_HEADER_LEN + len as usize];
    let computed = record_crc(previous_crc, meta_bytes, payload);
    if computed != stored {
        return Parsed::Fault(RecordFault::BadChecksum { stored, computed });
    }
    if bytes[RECORD_HEADER_LEN + len as usize..total].iter().any(|b| *b != 0) {
        return Parsed::Fault(RecordFault::BadPadding);
    }
    let meta = decode_meta(meta_bytes);
    if meta.seq != expected_seq {
        return Parsed::Fault(RecordFault::SequenceGap { expected: expected_seq, found: meta.seq });
    }
    Parsed::Record(Record { meta, crc: stored, payload, payload_format: None }, total)
}

/// The record at the start of `bytes`, already verified by [`parse`], in a segment of
/// `payload_format`.
pub(crate) fn view(bytes: &[u8], payload_format: u32) -> Record<'_> {
    let len = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    let meta = decode_meta(bytes[8..RECORD_HEADER_LEN].try_into().expect("32 bytes"));
    let payload = &bytes[RECORD_HEADER_LEN..RECORD_HEADER_LEN + len];
    Record { meta, crc, payload, payload_format: Some(payload_format) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_aligned() {
        assert_eq!(record_len(0), 40);
        assert_eq!(record_len(1), 48);
        assert_eq!(record_len(8), 48);
        assert_eq!(record_len(9), 56);
    }

    #[test]
    fn meta_round_trips() {
        let meta = RecordMeta { seq: 7, time_ns: 9, user: 3, session: 4, peer: 0xABCD };
        assert_eq!(decode_meta(&encode_meta(&meta)), meta);
    }

    #[test]
    fn chain_depends_on_the_previous_checksum() {
        let meta = encode_meta(&RecordMeta::default());
        assert_ne!(record_crc(1, &meta, b"x"), record_crc(2, &meta, b"x"));
    }
}
