//! Append, reopen, read back, across segment roll-overs.

use fincore_journal::*;

fn meta(seq: u64) -> RecordMeta {
    RecordMeta { seq, time_ns: seq * 10, user: 7, session: 3, peer: 0xFEED }
}

fn payload(seq: u64) -> Vec<u8> {
    (0..(seq % 50 + 1)).map(|i| (seq as u8).wrapping_add(i as u8)).collect()
}

#[test]
fn append_reopen_and_read_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig { segment_size: SEGMENT_SIZE_MIN, ..JournalConfig::new(dir.path()) };
    let (mut journal, recovery) = Journal::open(config.clone()).unwrap();
    assert_eq!(recovery.last_seq, 0);
    for seq in 1..=20_000 {
        journal.append(&meta(seq), &payload(seq)).unwrap();
    }
    journal.publish();
    assert_eq!(journal.durable_seq(), 20_000);
    drop(journal);
    let (mut journal, recovery) = Journal::open(config).unwrap();
    assert_eq!(recovery.last_seq, 20_000);
    assert!(recovery.segments > 3, "rolled over: {} segments", recovery.segments);
    assert_eq!(recovery.torn_tail, None);
    journal.append(&meta(20_001), &payload(20_001)).unwrap();
    drop(journal);
    for from in [1, 2, 5_000, 19_999, 20_001, 30_000] {
        let mut reader = JournalReader::open(dir.path(), from).unwrap();
        let mut expected = from;
        while let Some(record) = reader.next().unwrap() {
            assert_eq!(record.meta, meta(expected));
            assert_eq!(record.payload, &payload(expected)[..]);
            expected += 1;
        }
        assert_eq!(expected, 20_002.max(from));
        assert!(reader.torn_tail().is_none());
    }
}

#[test]
fn fsync_mode_reports_durability() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig {
        segment_size: SEGMENT_SIZE_MIN,
        durability: Durability::Fsync,
        ..JournalConfig::new(dir.path())
    };
    let (mut journal, _) = Journal::open(config).unwrap();
    for seq in 1..=5_000 {
        journal.append(&meta(seq), &payload(seq)).unwrap();
        if seq % 100 == 0 {
            journal.publish();
        }
    }
    journal.publish();
    assert!(journal.wait_durable(5_000, std::time::Duration::from_secs(10)));
    assert_eq!(journal.durable_seq(), 5_000);
    journal.close().unwrap();
}

#[test]
fn wrong_sequence_and_bad_payloads_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = Journal::open(JournalConfig::new(dir.path())).unwrap();
    assert!(journal.append(&meta(2), b"x").is_err());
    assert!(journal.append(&meta(1), b"").is_err());
    assert!(journal.append(&meta(1), &vec![1; PAYLOAD_LEN_MAX + 1]).is_err());
    // The same refusals when the payload is written in place; a wrong sequence is
    // refused before the payload is written.
    let mut called = false;
    assert!(journal.append_with(&meta(2), |_| called = true).is_err());
    assert!(!called, "not asked for the payload of a refused record");
    assert!(journal.append_with(&meta(1), |_| {}).is_err());
    let oversized = |out: &mut Vec<u8>| out.resize(out.len() + PAYLOAD_LEN_MAX + 1, 1);
    assert!(journal.append_with(&meta(1), oversized).is_err());
    journal.append(&meta(1), b"x").unwrap();
    assert_eq!(journal.last_seq(), 1);
    // A payload written in place is the record `append` would have made, even if the
    // writer touched the header fields it was handed.
    journal
        .append_with(&meta(2), |out| {
            out[0] ^= 0xFF;
            out.extend_from_slice(b"in place");
        })
        .unwrap();
    journal.close().unwrap();
    let mut reader = JournalReader::open(dir.path(), 2).unwrap();
    let record = reader.next().unwrap().expect("record 2");
    assert_eq!((record.meta, record.payload), (meta(2), b"in place".as_slice()));
    assert!(reader.next().unwrap().is_none());
    assert_eq!(reader.torn_tail(), None);
}
