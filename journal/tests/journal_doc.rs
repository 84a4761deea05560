//! `docs/JOURNAL.md` against the code: the constants it quotes, and the byte layouts of
//! its tables checked on files the crate really writes.

mod common;

use common::*;
use fincore_journal::record::{RECORD_ALIGN, RECORD_HEADER_LEN, record_len};
use fincore_journal::*;

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/JOURNAL.md");
    std::fs::read_to_string(path).expect("docs/JOURNAL.md")
}

/// `n` with its digits grouped by three with spaces, as the document writes numbers.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(digit);
    }
    out
}

#[test]
fn quoted_constants_match_the_code() {
    let doc = doc();
    let record_max = record_len(PAYLOAD_LEN_MAX) as u64;
    let expected = [
        format!("| `SEGMENT_HEADER_LEN` | {SEGMENT_HEADER_LEN} bytes |"),
        format!("| record header | {RECORD_HEADER_LEN} bytes |"),
        format!("| record alignment | {RECORD_ALIGN} bytes |"),
        format!("| `PAYLOAD_LEN_MAX` | {} bytes |", grouped(PAYLOAD_LEN_MAX as u64)),
        format!("| largest record | {} bytes |", grouped(record_max)),
        format!("| `SEGMENT_SIZE_DEFAULT` | {} bytes (256 MiB) |", grouped(SEGMENT_SIZE_DEFAULT)),
        format!("| `SEGMENT_SIZE_MIN` | {} bytes |", grouped(SEGMENT_SIZE_MIN)),
        format!("from X + {} to the end of the file", grouped(record_max)),
        format!("from X + {} up to X + {}", record_len(1), grouped(record_max)),
        format!("at most {} past", grouped(record_max / record_len(1) as u64 + 1)),
        format!("a 64-byte payload takes {} bytes, a", record_len(64)),
        format!("100-byte payload {} (4 bytes of padding)", record_len(100)),
    ];
    for line in expected {
        assert!(doc.contains(&line), "docs/JOURNAL.md should say: {line}");
    }
    assert_eq!(SEGMENT_SIZE_MIN, 4_096 + 2 * PAYLOAD_LEN_MAX as u64);
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

#[test]
fn segment_and_record_layout_is_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let lens = [100, 64];
    let positions = build(dir.path(), &lens, SEGMENT_SIZE_MIN);
    let bytes = read(&segment(dir.path(), 1));
    assert_eq!(bytes.len() as u64, SEGMENT_SIZE_MIN);
    assert_eq!(&bytes[0..8], b"FCJRNL\x00\x01");
    assert_eq!(u32_at(&bytes, 8), 2, "version");
    let header_crc = record::record_crc(0, &bytes[0..12], &bytes[16..64]);
    assert_eq!(u32_at(&bytes, 12), header_crc, "CRC32C of 0..12 then 16..64");
    assert_eq!(u64_at(&bytes, 16), 1, "first_seq");
    assert_eq!(u64_at(&bytes, 24), SEGMENT_SIZE_MIN, "size");
    assert_eq!(u32_at(&bytes, 32), 0, "chain_crc of the first segment");
    assert_eq!(u32_at(&bytes, 36), 0, "payload_format (build's default)");
    assert!(bytes[40..64].iter().all(|b| *b == 0), "reserved");
    let mut previous = 0;
    for (i, at) in positions.iter().enumerate() {
        let (o, seq, n) = (at.offset, i as u64 + 1, lens[i]);
        assert_eq!(u32_at(&bytes, o) as usize, n, "payload_len");
        assert_eq!(u64_at(&bytes, o + 8), seq);
        let m = meta(seq);
        assert_eq!(u64_at(&bytes, o + 16), m.time_ns);
        assert_eq!(u32_at(&bytes, o + 24), m.user);
        assert_eq!(u32_at(&bytes, o + 28), m.session);
        assert_eq!(u64_at(&bytes, o + 32), m.peer);
        assert_eq!(&bytes[o + 40..o + 40 + n], &payload(seq, n, 0)[..]);
        assert!(bytes[o + 40 + n..o + at.len].iter().all(|b| *b == 0), "padding");
        // Chained: CRC32C continued from the previous record's crc over bytes 8..40+n.
        let crc = record::record_crc(previous, &bytes[o + 8..o + 40], &bytes[o + 40..o + 40 + n]);
        assert_eq!(u32_at(&bytes, o + 4), crc);
        previous = crc;
    }
    let end = positions[1].offset + positions[1].len;
    assert!(bytes[end..].iter().all(|b| *b == 0), "zero after the last record");
    // A later segment's chain_crc is the checksum of the record before its first.
    let dir = tempfile::tempdir().unwrap();
    let lens = [PAYLOAD_LEN_MAX, PAYLOAD_LEN_MAX, PAYLOAD_LEN_MAX];
    let positions = build(dir.path(), &lens, SEGMENT_SIZE_MIN);
    let last = positions[2];
    let first = read(&segment(dir.path(), 1));
    let second = read(&segment(dir.path(), last.segment));
    assert_eq!(u64_at(&second, 16), last.segment);
    assert_eq!(u32_at(&second, 32), u32_at(&first, positions[1].offset + 4));
    // The writer's payload format is in every header it writes.
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig { payload_format: 0xC0DE, ..config(dir.path(), SEGMENT_SIZE_MIN) };
    drop(Journal::open(config).unwrap());
    assert_eq!(u32_at(&read(&segment(dir.path(), 1)), 36), 0xC0DE, "payload_format");
}

#[test]
fn snapshot_layout_is_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path(), 2).unwrap();
    let path = store.write(77, 0xABCD, 0x1234_5678, b"state image").unwrap();
    let bytes = read(&path);
    assert_eq!(path.file_name().unwrap(), "snapshot-00000000000000000077.snap");
    assert_eq!(&bytes[0..8], b"FCSNAP\x00\x01");
    assert_eq!(u32_at(&bytes, 8), 2, "version");
    assert_eq!(u32_at(&bytes, 12), 0x1234_5678, "journal_crc");
    assert_eq!(u64_at(&bytes, 16), 77, "seq");
    assert_eq!(u64_at(&bytes, 24), 0xABCD, "state_hash");
    assert_eq!(u64_at(&bytes, 32), 11, "payload_len");
    assert_eq!(u32_at(&bytes, 40), record::record_crc(0, b"state image", &[]), "payload_crc");
    assert_eq!(u32_at(&bytes, 44), record::record_crc(0, &bytes[0..44], &[]), "header_crc");
    assert_eq!(&bytes[48..], b"state image");
}
