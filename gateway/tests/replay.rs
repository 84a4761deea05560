//! Live vs replay: a seeded workload of a million commands goes through the runner
//! (journal-then-apply); replaying the journal, with and without the snapshot taken
//! halfway, must reach the live state hash, also as of past sequence numbers.

use fincore_engine::testkit::{TradingMix, trading_workload};
use fincore_engine::{
    Command, CommandBody, Engine, EngineLimits, Event, SNAPSHOT_FORMAT_VERSION, SYSTEM_USER,
    UserId, Wire,
};
use fincore_gateway::{
    Origin, PAYLOAD_BODY, PAYLOAD_COMMAND, ReplayBounds, Runner, RunnerConfig, decode_record,
    encode_payload, journal_dir, replay, snapshot_dir,
};
use fincore_journal::{
    Journal, JournalConfig, JournalReader, RecordMeta, Snapshot, SnapshotStore, list_segments,
    segment_path,
};
use std::collections::BTreeMap;

const COMMANDS: usize = 1_000_000;

#[test]
fn replay_reaches_the_live_state_hash_with_and_without_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let workload =
        trading_workload(TradingMix { instruments: 2, traders: 32, commands: COMMANDS, seed: 5 });
    let setup: Vec<CommandBody> = workload.setup.iter().map(|c| c.body).collect();
    let config = RunnerConfig::new(dir.path());
    let (mut runner, report) = Runner::open(&config, &setup).unwrap();
    assert_eq!(report.setup_applied, setup.len());
    let mut live_hashes = BTreeMap::new();
    let mut events: Vec<Event> = Vec::new();
    let mut snapshot_seq = 0;
    for (i, command) in workload.commands.iter().enumerate() {
        events.clear();
        let origin = Origin { user: command.user, session: 9, peer: 42 };
        let seq = runner.submit(origin, command.time_ns, command.body, &mut events).unwrap();
        assert!(!events.is_empty());
        if i % 99_991 == 0 {
            live_hashes.insert(seq, runner.engine().state_hash());
        }
        if i == COMMANDS / 2 {
            snapshot_seq = runner.snapshot().unwrap().seq;
            assert_eq!(snapshot_seq, seq);
        }
    }
    let final_seq = runner.engine().last_seq();
    let live_hash = runner.engine().state_hash();
    runner.close().unwrap();

    let full =
        replay(dir.path(), ReplayBounds { no_snapshot: true, ..Default::default() }).unwrap();
    assert_eq!(full.engine.state_hash(), live_hash);
    assert_eq!(full.records, final_seq);
    assert!(full.snapshot.is_none());
    full.engine.check_invariants().unwrap();

    let from_snapshot = replay(dir.path(), ReplayBounds::default()).unwrap();
    assert_eq!(from_snapshot.engine.state_hash(), live_hash);
    assert_eq!(from_snapshot.snapshot.as_ref().map(|(seq, _)| *seq), Some(snapshot_seq));
    assert_eq!(from_snapshot.records, final_seq - snapshot_seq);

    // Past states: before the snapshot (it must be skipped) and after it.
    for (seq, hash) in &live_hashes {
        let bounds = ReplayBounds { until_seq: Some(*seq), ..Default::default() };
        let past = replay(dir.path(), bounds).unwrap();
        assert_eq!(past.engine.last_seq(), *seq);
        assert_eq!(past.engine.state_hash(), *hash, "state as of seq {seq}");
    }
}

#[test]
fn reopening_continues_the_journal_and_a_corrupt_snapshot_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let workload =
        trading_workload(TradingMix { instruments: 1, traders: 8, commands: 30_000, seed: 8 });
    let setup: Vec<CommandBody> = workload.setup.iter().map(|c| c.body).collect();
    let config = RunnerConfig::new(dir.path());
    let (first, second) = workload.commands.split_at(20_000);
    let mut events = Vec::new();
    let mut submit_all = |runner: &mut Runner, commands: &[fincore_engine::Command]| {
        for command in commands {
            events.clear();
            let origin = Origin { user: command.user, session: 1, peer: 0 };
            runner.submit(origin, command.time_ns, command.body, &mut events).unwrap();
        }
    };
    let (mut runner, _) = Runner::open(&config, &setup).unwrap();
    submit_all(&mut runner, &first[..10_000]);
    runner.snapshot().unwrap();
    submit_all(&mut runner, &first[10_000..]);
    let fincore_gateway::SnapshotDone { seq: newest_seq, path: newest, .. } =
        runner.snapshot().unwrap();
    runner.close().unwrap();

    // Reopen: rebuilt from the newest snapshot with nothing left to replay; no setup.
    let (mut runner, report) = Runner::open(&config, &setup).unwrap();
    assert_eq!(report.snapshot_seq, Some(newest_seq));
    assert_eq!((report.replayed, report.setup_applied), (0, 0));
    submit_all(&mut runner, second);
    let live_hash = runner.engine().state_hash();
    runner.close().unwrap();

    // Damage the newest snapshot's payload: replay falls back to the older one.
    let mut bytes = std::fs::read(&newest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&newest, bytes).unwrap();
    let replayed = replay(dir.path(), ReplayBounds::default()).unwrap();
    assert_eq!(replayed.engine.state_hash(), live_hash);
    assert_eq!(replayed.skipped_snapshots.len(), 1);
    assert!(
        replayed.skipped_snapshots[0].1.contains("checksum"),
        "{:?}",
        replayed.skipped_snapshots
    );
    assert!(replayed.snapshot.as_ref().is_some_and(|(seq, _)| *seq < newest_seq));

    // A sound file holding another engine snapshot format (as a build before an upgrade
    // wrote it) is skipped with that reason, like a damaged one.
    let store = SnapshotStore::open(snapshot_dir(dir.path()), usize::MAX).unwrap();
    let (older, _) = store.load_newest(|_: &Snapshot| Ok(())).unwrap();
    let older = older.expect("the older snapshot is sound");
    let mut payload = older.payload.clone();
    payload[4..8].copy_from_slice(&(SNAPSHOT_FORMAT_VERSION - 1).to_le_bytes());
    let mut reader = JournalReader::open(&journal_dir(dir.path()), newest_seq).unwrap();
    let record_crc = reader.next().unwrap().expect("the journal reaches it").crc;
    store.write(newest_seq, older.state_hash, record_crc, &payload).unwrap();
    let replayed = replay(dir.path(), ReplayBounds::default()).unwrap();
    assert_eq!(replayed.engine.state_hash(), live_hash);
    let reason = &replayed.skipped_snapshots[0].1;
    assert!(reason.contains("snapshot format version"), "{reason}");
    assert_eq!(replayed.snapshot.as_ref().map(|(seq, _)| *seq), Some(older.seq));

    // Damage every snapshot: a full replay, same state.
    for entry in std::fs::read_dir(snapshot_dir(dir.path())).unwrap() {
        std::fs::write(entry.unwrap().path(), b"not a snapshot").unwrap();
    }
    let replayed = replay(dir.path(), ReplayBounds::default()).unwrap();
    assert!(replayed.snapshot.is_none());
    assert_eq!(replayed.engine.state_hash(), live_hash);
}

/// The payload formats of a journal's records, in order, with how many records each
/// run of one format holds.
fn format_runs(data: &std::path::Path) -> Vec<(u32, u64)> {
    let mut reader = JournalReader::open_strict(&journal_dir(data)).unwrap();
    let mut runs: Vec<(u32, u64)> = Vec::new();
    while let Some(record) = reader.next().unwrap() {
        let found = record.payload_format.expect("read from a segment");
        match runs.last_mut() {
            Some((format, count)) if *format == found => *count += 1,
            _ => runs.push((found, 1)),
        }
    }
    runs
}

#[test]
fn a_journal_of_whole_commands_is_read_and_continued_in_the_body_format() {
    // A data directory as fincore wrote it before segment version 2: every payload a
    // whole `Command` (payload format 0), here with the setup and the first half.
    let dir = tempfile::tempdir().unwrap();
    let workload =
        trading_workload(TradingMix { instruments: 1, traders: 8, commands: 20_000, seed: 3 });
    let setup: Vec<CommandBody> = workload.setup.iter().map(|c| c.body).collect();
    let (first, second) = workload.commands.split_at(10_000);
    let mut reference = Engine::new(EngineLimits::default());
    // A first start with no setup writes the limits file and an empty journal; a
    // writer of format 0 then replaces its empty segment with one of its own.
    let runner_config = RunnerConfig::new(dir.path());
    Runner::open(&runner_config, &[]).unwrap().0.close().unwrap();
    let config = JournalConfig::new(journal_dir(dir.path()));
    assert_eq!(config.payload_format, PAYLOAD_COMMAND);
    let (mut journal, _) = Journal::open(config).unwrap();
    let old = setup
        .iter()
        .map(|body| (SYSTEM_USER, 0, *body))
        .chain(first.iter().map(|c| (c.user, c.time_ns, c.body)));
    for (i, (user, time_ns, body)) in old.enumerate() {
        let command = Command { seq: i as u64 + 1, time_ns, user, body };
        let meta = RecordMeta { seq: command.seq, time_ns, user: user.0, session: 1, peer: 0 };
        journal.append(&meta, &command.encode()).unwrap();
        reference.apply(&command, &mut Vec::new());
    }
    journal.close().unwrap();
    let old_records = (setup.len() + first.len()) as u64;
    // Such a writer wrote version 1 headers: make this one exactly that (bytes 36..64
    // were reserved and zero; format 0 is zero there too).
    let first_segment = segment_path(&journal_dir(dir.path()), 1);
    let mut bytes = std::fs::read(&first_segment).unwrap();
    assert!(bytes[36..64].iter().all(|b| *b == 0));
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    let header_crc = fincore_journal::record::record_crc(0, &bytes[0..12], &bytes[16..64]);
    bytes[12..16].copy_from_slice(&header_crc.to_le_bytes());
    std::fs::write(&first_segment, bytes).unwrap();

    // The runner reads it (no setup journaled again) and continues in a new segment.
    let (mut runner, report) = Runner::open(&runner_config, &setup).unwrap();
    assert_eq!((report.replayed, report.setup_applied), (old_records, 0));
    assert_eq!(runner.engine().state_hash(), reference.state_hash());
    let mut events = Vec::new();
    for command in second {
        let origin = Origin { user: command.user, session: 1, peer: 0 };
        runner.submit(origin, command.time_ns, command.body, &mut events).unwrap();
        let seq = reference.last_seq() + 1;
        reference.apply(&Command { seq, ..*command }, &mut Vec::new());
    }
    let live_hash = runner.engine().state_hash();
    assert_eq!(live_hash, reference.state_hash());
    runner.close().unwrap();
    let runs = format_runs(dir.path());
    assert_eq!(runs, vec![(PAYLOAD_COMMAND, old_records), (PAYLOAD_BODY, second.len() as u64)]);
    assert_eq!(list_segments(&journal_dir(dir.path())).unwrap().len(), 2);

    // Replaying the mixed journal reaches the live state.
    let bounds = ReplayBounds { no_snapshot: true, ..Default::default() };
    let replayed = replay(dir.path(), bounds).unwrap();
    assert_eq!(replayed.engine.state_hash(), live_hash);
    assert_eq!(replayed.records, old_records + second.len() as u64);
}

#[test]
fn a_whole_command_that_disagrees_with_its_record_header_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = Journal::open(JournalConfig::new(dir.path())).unwrap();
    let body = CommandBody::Tick;
    let command = Command { seq: 1, time_ns: 5, user: UserId(3), body };
    // The header says user 4.
    let meta = RecordMeta { seq: 1, time_ns: 5, user: 4, session: 0, peer: 0 };
    journal.append(&meta, &command.encode()).unwrap();
    journal.close().unwrap();
    let mut reader = JournalReader::open(dir.path(), 1).unwrap();
    let record = reader.next().unwrap().unwrap();
    assert_eq!(record.payload_format, Some(PAYLOAD_COMMAND));
    let error = decode_record(&record).unwrap_err().to_string();
    assert!(
        error.contains("record 1 (time 5, user 4) holds command 1 (time 5, user 3)"),
        "{error}"
    );
}

#[test]
fn a_record_of_an_unknown_payload_format_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig { payload_format: 7, ..JournalConfig::new(dir.path()) };
    let (mut journal, _) = Journal::open(config).unwrap();
    journal.append(&RecordMeta { seq: 1, ..Default::default() }, b"\x00\x00\x00\x00").unwrap();
    journal.close().unwrap();
    let mut reader = JournalReader::open(dir.path(), 1).unwrap();
    let record = reader.next().unwrap().unwrap();
    let error = decode_record(&record).unwrap_err().to_string();
    assert!(error.contains("record 1: unknown payload format 7"), "{error}");
}

/// docs/JOURNAL.md section 3a quotes the record sizes of the two payload formats for a
/// new order and a cancel; they are checked here against the encoder.
#[test]
fn record_sizes_of_the_payload_formats_are_as_documented() {
    let workload =
        trading_workload(TradingMix { instruments: 1, traders: 8, commands: 2_000, seed: 3 });
    let record_len = |payload: usize| fincore_journal::record::record_len(payload);
    let mut sizes = BTreeMap::new();
    for command in &workload.commands {
        let mut body = Vec::new();
        encode_payload(command, &mut body);
        let whole = command.encode();
        assert_eq!(whole.len(), body.len() + 20, "{command:?}");
        assert_eq!(&whole[20..], &body[..], "the body is the whole command's tail");
        let kind = command.body.kind().name();
        sizes.insert(kind, (record_len(body.len()), record_len(whole.len())));
    }
    assert_eq!(sizes.get("new_order"), Some(&(96, 120)));
    assert_eq!(sizes.get("cancel"), Some(&(64, 80)));
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/JOURNAL.md"))
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let quoted = "a new order's record is 96 bytes instead of 120, a cancel's 64 instead of 80";
    assert!(doc.contains(quoted), "docs/JOURNAL.md should say: {quoted}");
}
