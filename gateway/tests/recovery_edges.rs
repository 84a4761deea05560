//! Edge cases of opening a data directory: a snapshot the journal does not reach, a
//! setup with a mistake, a configuration changed after the directory was made, a data
//! directory that is a file, a damaged limits file, a journal missing its first segment,
//! where a replay stops (a bound, a damaged record), a snapshot asked for again at the
//! same sequence, and a journal a newer build wrote.

use fincore_engine::testkit::{TradingMix, trading_workload};
use fincore_engine::{CommandBody, Role, UserId};
use fincore_gateway::{
    Origin, ReplayBounds, Runner, RunnerConfig, SetupDiffers, journal_dir, replay, replay_observed,
};
use std::os::unix::fs::MetadataExt;

fn setup_and_commands(commands: usize) -> (Vec<CommandBody>, Vec<fincore_engine::Command>) {
    let workload = trading_workload(TradingMix { instruments: 1, traders: 4, commands, seed: 4 });
    (workload.setup.iter().map(|c| c.body).collect(), workload.commands)
}

/// A new data directory opened on the trading setup, with `commands` commands of the
/// mix not yet run.
struct Opened {
    dir: tempfile::TempDir,
    setup: Vec<CommandBody>,
    commands: Vec<fincore_engine::Command>,
    config: RunnerConfig,
    runner: Runner,
}

fn opened(commands: usize) -> Opened {
    let dir = tempfile::tempdir().unwrap();
    let (setup, commands) = setup_and_commands(commands);
    let config = RunnerConfig::new(dir.path());
    let (runner, _) = Runner::open(&config, &setup).unwrap();
    Opened { dir, setup, commands, config, runner }
}

fn run(runner: &mut Runner, commands: &[fincore_engine::Command]) {
    let mut events = Vec::new();
    for command in commands {
        events.clear();
        let origin = Origin { user: command.user, session: 1, peer: 0 };
        runner.submit(origin, command.time_ns, command.body, &mut events).unwrap();
    }
}

/// The first journal segment of a data directory, and the sequence and byte offset of
/// every record in it (found by reading the records in order).
fn record_offsets(data: &std::path::Path) -> (std::path::PathBuf, Vec<(u64, usize)>) {
    let segment = fincore_journal::list_segments(&journal_dir(data)).unwrap()[0].1.clone();
    let mut reader = fincore_journal::JournalReader::open(&journal_dir(data), 1).unwrap();
    let mut offsets = Vec::new();
    let mut offset = fincore_journal::SEGMENT_HEADER_LEN;
    while let Some(record) = reader.next().unwrap() {
        offsets.push((record.meta.seq, offset));
        offset += fincore_journal::record::record_len(record.payload.len());
    }
    (segment, offsets)
}

#[test]
fn a_snapshot_beyond_the_end_of_the_journal_is_passed_over() {
    let Opened { dir, setup, commands, config, mut runner } = opened(2_000);
    run(&mut runner, &commands);
    let snapshot_seq = runner.snapshot().unwrap().seq;
    runner.close().unwrap();
    // Lose the last journal record, as an OS crash before write-back could: zero the
    // segment from that record's start.
    let (segment, offsets) = record_offsets(dir.path());
    let offset = offsets.last().unwrap().1;
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[offset..].fill(0);
    std::fs::write(&segment, bytes).unwrap();

    let replayed = replay(dir.path(), ReplayBounds::default()).unwrap();
    assert!(replayed.snapshot.is_none());
    assert!(
        replayed.skipped_snapshots[0].1.contains("journal ends before"),
        "{:?}",
        replayed.skipped_snapshots
    );
    assert_eq!(replayed.engine.last_seq(), snapshot_seq - 1);
    let (runner, _) = Runner::open(&config, &setup).unwrap();
    assert_eq!(runner.engine().last_seq(), snapshot_seq - 1);
}

#[test]
fn a_setup_with_a_mistake_journals_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut setup, _) = setup_and_commands(1);
    // A duplicate user: rejected, so the whole setup must be refused up front.
    setup.insert(3, CommandBody::CreateUser { user: UserId(0), role: Role::Admin });
    let error = Runner::open(&RunnerConfig::new(dir.path()), &setup).err().expect("refused");
    assert!(error.to_string().contains("AlreadyExists"), "{error}");
    let replayed = replay(dir.path(), ReplayBounds::default()).unwrap();
    assert_eq!(replayed.engine.last_seq(), 0, "nothing of the bad setup was journaled");
}

/// `text` (a limits file) with `name` set to `value`.
fn set_limit(text: &str, name: &str, value: u64) -> String {
    let line = |l: &str| match l.split_once('=') {
        Some((n, _)) if n.trim() == name => format!("{name} = {value}"),
        _ => l.to_string(),
    };
    text.lines().map(line).collect::<Vec<_>>().join("\n") + "\n"
}

#[test]
fn a_damaged_limits_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (setup, _) = setup_and_commands(1);
    let (runner, _) = Runner::open(&RunnerConfig::new(dir.path()), &setup).unwrap();
    runner.close().unwrap();
    let limits = dir.path().join("engine-limits");
    let good = std::fs::read_to_string(&limits).unwrap();
    // A field given twice (another missing), a value above the ceiling (an allocation
    // of hundreds of GiB), a capacity of zero: each refused with what is wrong.
    let damaged = [
        (good.replace("orders_expected", "orders_max"), "orders_max is given twice"),
        (set_limit(&good, "orders_max", 4_000_000_000), "orders_max 4000000000 is above"),
        (set_limit(&good, "open_orders_per_account_max", 0), "must be at least 1"),
    ];
    for (text, expected) in damaged {
        std::fs::write(&limits, text).unwrap();
        let error = replay(dir.path(), ReplayBounds::default()).err().expect("refused");
        assert!(error.to_string().contains(expected), "{error}");
        let error = Runner::open(&RunnerConfig::new(dir.path()), &setup).err().expect("refused");
        assert!(error.to_string().contains(expected), "{error}");
    }
    std::fs::write(dir.path().join("engine-limits"), "orders_max = 5\n").unwrap();
    let error = replay(dir.path(), ReplayBounds::default()).err().expect("refused").to_string();
    assert!(error.contains("expected all 8 limits"), "{error}");
    std::fs::remove_file(dir.path().join("engine-limits")).unwrap();
    let error = Runner::open(&RunnerConfig::new(dir.path()), &setup).err().expect("refused");
    assert!(error.to_string().contains("no engine-limits file"), "{error}");
}

#[test]
fn a_setup_interrupted_by_a_crash_is_completed_on_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let (setup, commands) = setup_and_commands(500);
    let config = RunnerConfig::new(dir.path());
    // First start stops after 5 setup commands (as a crash would leave it).
    let (runner, report) = Runner::open(&config, &setup[..5]).unwrap();
    assert_eq!(report.setup_applied, 5);
    runner.close().unwrap();
    let (mut runner, report) = Runner::open(&config, &setup).unwrap();
    assert_eq!(report.setup_applied, setup.len() - 5);
    assert_eq!(runner.engine().last_seq(), setup.len() as u64);
    run(&mut runner, &commands);
    runner.close().unwrap();
    // From then on the journal is established: nothing more is applied.
    let (runner, report) = Runner::open(&config, &setup).unwrap();
    assert_eq!((report.setup_applied, report.setup_differs), (0, None));
    assert_eq!(runner.engine().last_seq(), (setup.len() + commands.len()) as u64);
    let state_hash = runner.engine().state_hash();
    runner.close().unwrap();

    // A configuration changed since: reported with the first command that differs
    // (the server warns), and still nothing of it is applied.
    let new_user = CommandBody::CreateUser { user: UserId(900), role: Role::Trader };
    let mut added = setup.clone();
    added.push(new_user);
    let mut changed = setup.clone();
    changed.swap(3, 4);
    let removed = setup[..setup.len() - 1].to_vec();
    let last = setup.len() - 1;
    let cases = [
        ("added", &added, setup.len(), Some(new_user), None),
        ("changed", &changed, 3, Some(setup[4]), Some(setup[3])),
        ("removed", &removed, last, None, Some(setup[last])),
    ];
    for (what, other, index, configured, journaled) in cases {
        let (runner, report) = Runner::open(&config, other).unwrap();
        let differs = SetupDiffers { index, configured, journaled };
        assert_eq!(report.setup_differs, Some(differs), "{what}");
        assert_eq!(report.setup_applied, 0, "{what}");
        assert_eq!(runner.engine().state_hash(), state_hash, "{what}");
        runner.close().unwrap();
    }
}

#[test]
fn a_data_directory_that_is_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, b"not a directory").unwrap();
    let (setup, _) = setup_and_commands(1);
    let error = Runner::open(&RunnerConfig::new(&file), &setup).err().expect("refused");
    assert!(error.to_string().ends_with("data is not a directory"), "{error}");
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");
}

/// The engine limits decide which commands are rejected (`payments_max`: 1011
/// `PaymentsFull`), so the data directory keeps all of them from its first start: the
/// engine runs with the configured values, a later start with another configuration
/// keeps the directory's, and a replay uses them too.
#[test]
fn every_engine_limit_is_kept_in_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (setup, _) = setup_and_commands(1);
    let limits = fincore_engine::EngineLimits {
        payments_max: 1_000,
        payments_expected: 99,
        open_orders_per_account_max: 77,
        ..Default::default()
    };
    let config = RunnerConfig { limits, ..RunnerConfig::new(dir.path()) };
    let (runner, _) = Runner::open(&config, &setup).unwrap();
    assert_eq!(runner.engine().limits(), limits, "the first start");
    runner.close().unwrap();
    let (runner, _) = Runner::open(&RunnerConfig::new(dir.path()), &setup).unwrap();
    assert_eq!(runner.engine().limits(), limits, "a restart with the default limits");
    runner.close().unwrap();
    let replayed = replay(dir.path(), ReplayBounds { no_snapshot: true, ..Default::default() });
    assert_eq!(replayed.unwrap().engine.limits(), limits, "a replay");
}

/// A data directory whose journal holds the setup and `commands` trading commands, and
/// its last sequence.
fn journaled(commands: usize) -> (tempfile::TempDir, u64) {
    let dir = tempfile::tempdir().unwrap();
    let (setup, commands) = setup_and_commands(commands);
    let (mut runner, _) = Runner::open(&RunnerConfig::new(dir.path()), &setup).unwrap();
    run(&mut runner, &commands);
    let last = runner.engine().last_seq();
    runner.close().unwrap();
    (dir, last)
}

/// Replay reads and decodes on a second thread, in batches of a few hundred records,
/// ahead of the engine. A bound that falls inside a batch stops it exactly there; a
/// damaged record far past the first batches stops it with that record's error, after
/// the engine has applied (and the observer seen) exactly the commands before it.
#[test]
fn replay_stops_exactly_at_a_bound_or_at_a_damaged_record() {
    use fincore_journal::record::RECORD_HEADER_LEN;
    let (dir, last) = journaled(2_000);

    let bounds = ReplayBounds { until_seq: Some(777), ..Default::default() };
    let bounded = replay(dir.path(), bounds).unwrap();
    assert_eq!((bounded.engine.last_seq(), bounded.records), (777, 777));
    let whole = replay(dir.path(), ReplayBounds::default()).unwrap();
    assert_eq!((whole.engine.last_seq(), whole.records), (last, last));

    // Flip a payload byte of record 1 000.
    let damaged = 1_000;
    let (segment, offsets) = record_offsets(dir.path());
    let offset = offsets.iter().find(|(seq, _)| *seq == damaged).unwrap().1;
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[offset + RECORD_HEADER_LEN + 2] ^= 0x5a;
    std::fs::write(&segment, bytes).unwrap();

    let mut observed = Vec::new();
    let result = replay_observed(dir.path(), ReplayBounds::default(), |command, _| {
        observed.push(command.seq);
    });
    let error = result.err().expect("a damaged record before the tail is an error").to_string();
    assert!(error.contains(&format!("at byte {offset}")), "{error}");
    assert_eq!(observed, (1..damaged).collect::<Vec<u64>>());
}

/// A panic while applying (here the observer's; in real life an engine assertion) ends
/// the replay with that panic. The reading thread, blocked on a full hand-over queue by
/// then, must not be left waiting forever, with the replay waiting for it.
#[test]
fn a_panic_while_applying_ends_the_replay_instead_of_hanging_it() {
    let (dir, _) = journaled(5_000);
    let data = dir.path().to_path_buf();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let outcome = std::panic::catch_unwind(|| {
            replay_observed(&data, ReplayBounds::default(), |command, _| {
                assert!(command.seq < 10, "the observer gives up at command 10 (expected)");
            })
        });
        done_tx.send(outcome.is_err()).unwrap();
    });
    // Far more than the replay needs; a hang would never answer.
    let panicked = done_rx.recv_timeout(std::time::Duration::from_secs(60));
    assert_eq!(panicked, Ok(true), "the replay ends with the observer's panic");
}

/// A snapshot is written once per sequence: asked again with nothing applied since (in
/// the same run, or after a restart from it), the runner answers with the file it has;
/// one more command and it writes a new one.
#[test]
fn a_snapshot_at_the_same_sequence_is_not_written_again() {
    let Opened { dir: _dir, setup, commands, config, mut runner } = opened(300);
    run(&mut runner, &commands[..200]);
    let first = runner.snapshot().unwrap();
    assert!(first.written);
    assert_eq!(first.seq, runner.engine().last_seq());
    assert_eq!(first.state_hash, runner.engine().state_hash());
    // Writing a snapshot renames a new file into place: a new inode.
    let inode = |path: &std::path::Path| std::fs::metadata(path).unwrap().ino();
    let written = inode(&first.path);
    let again = runner.snapshot().unwrap();
    assert_eq!(again, fincore_gateway::SnapshotDone { written: false, ..first.clone() });
    assert_eq!(inode(&first.path), written, "not written again");
    runner.close().unwrap();

    // Restarted from that snapshot, nothing applied: the same file answers.
    let (mut runner, report) = Runner::open(&config, &setup).unwrap();
    assert_eq!(report.snapshot_seq, Some(first.seq));
    assert_eq!(runner.snapshot().unwrap(), again);
    assert_eq!(inode(&first.path), written, "not written again");
    // A file that is gone is written again.
    std::fs::remove_file(&first.path).unwrap();
    let rewritten = runner.snapshot().unwrap();
    assert_eq!(rewritten, first);
    assert!(first.path.is_file());
    // One more command: a new snapshot at the new sequence.
    run(&mut runner, &commands[200..201]);
    let next = runner.snapshot().unwrap();
    assert!(next.written);
    assert_eq!(next.seq, first.seq + 1);
    assert_ne!(next.path, first.path);
    assert_eq!(next.state_hash, runner.engine().state_hash());
    runner.close().unwrap();
}

/// A journal cut back below a snapshot (the operator's procedure for a damaged journal,
/// docs/JOURNAL.md section 9) and written again past the snapshot's sequence reaches
/// that sequence with other records. The snapshot summarises the old history and must
/// not be used with the new one: its recorded journal checksum tells them apart.
#[test]
fn a_snapshot_of_another_history_is_passed_over() {
    let Opened { dir, setup, commands, config, mut runner } = opened(600);
    // As many snapshots as are kept, all of them above the cut below.
    assert_eq!(config.snapshots_kept, 3);
    run(&mut runner, &commands[..250]);
    for end in [300, 350, 400] {
        run(&mut runner, &commands[end - 50..end]);
        runner.snapshot().unwrap();
    }
    let old = runner.snapshot().unwrap();
    runner.close().unwrap();

    // Cut the journal back 200 records below the newest snapshot (the oldest is 100
    // above the cut).
    let cut_after = old.seq - 200;
    let (segment, offsets) = record_offsets(dir.path());
    let offset = offsets.iter().find(|(seq, _)| *seq == cut_after + 1).unwrap().1;
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[offset..].fill(0);
    std::fs::write(&segment, bytes).unwrap();

    // The next start passes the snapshot over (the journal ends before it); then another
    // history is written, past the snapshot's sequence.
    let (mut runner, report) = Runner::open(&config, &setup).unwrap();
    assert_eq!(runner.engine().last_seq(), cut_after);
    assert_ne!(report.snapshot_seq, Some(old.seq));
    let other = trading_workload(TradingMix { instruments: 1, traders: 4, commands: 300, seed: 9 });
    run(&mut runner, &other.commands[..50]);
    // A snapshot of the new history, below the stale ones: they do not count toward
    // the snapshots kept, so it is not pruned as it is written, and it is reused.
    let new = runner.snapshot().unwrap();
    assert!(new.written && new.seq < old.seq - 100 && new.path.is_file(), "{new:?}");
    assert_eq!(runner.snapshot().unwrap(), fincore_gateway::SnapshotDone { written: false, ..new });
    run(&mut runner, &other.commands[50..]);
    assert!(runner.engine().last_seq() > old.seq);
    let live_hash = runner.engine().state_hash();
    runner.close().unwrap();

    let replayed = replay(dir.path(), ReplayBounds::default()).unwrap();
    assert_eq!(replayed.engine.state_hash(), live_hash);
    let reasons: Vec<_> =
        replayed.skipped_snapshots.iter().filter(|(p, _)| *p == old.path).collect();
    assert!(
        reasons.len() == 1 && reasons[0].1.contains("another history"),
        "{:?}",
        replayed.skipped_snapshots
    );
    let (runner, _) = Runner::open(&config, &setup).unwrap();
    assert_eq!(runner.engine().state_hash(), live_hash);
}

/// A data directory whose journal is gone but whose snapshots remain is refused:
/// opening it would start a new journal at sequence 1 and lose every command the old
/// one held. A directory with nothing but its limits file (a first start that stopped
/// before its journal existed) still opens.
#[test]
fn snapshots_without_a_journal_are_refused() {
    let Opened { dir, setup, commands, config, mut runner } = opened(100);
    run(&mut runner, &commands);
    runner.snapshot().unwrap();
    runner.close().unwrap();
    let journal = journal_dir(dir.path());
    for (_, segment) in fincore_journal::list_segments(&journal).unwrap() {
        std::fs::remove_file(segment).unwrap();
    }
    let error = Runner::open(&config, &setup).err().expect("refused").to_string();
    assert!(error.contains("no journal segments"), "{error}");
    std::fs::remove_dir_all(&journal).unwrap();
    let error = Runner::open(&config, &setup).err().expect("refused").to_string();
    assert!(error.contains("no journal segments"), "{error}");
    assert!(!journal.exists(), "a refused open creates no journal");

    let fresh = tempfile::tempdir().unwrap();
    fincore_gateway::write_limits(fresh.path(), &config.limits).unwrap();
    let (runner, report) = Runner::open(&RunnerConfig::new(fresh.path()), &setup).unwrap();
    assert_eq!(report.setup_applied, setup.len());
    runner.close().unwrap();
}

/// A version 1 snapshot (written before snapshots recorded the journal's checksum) is
/// passed over after an upgrade: nothing ties it to the journal, which is replayed.
#[test]
fn a_version_1_snapshot_is_passed_over() {
    let Opened { dir, commands, mut runner, .. } = opened(200);
    run(&mut runner, &commands);
    let snapshot = runner.snapshot().unwrap();
    runner.close().unwrap();
    // The header as version 1 wrote it: version 1, bytes 12..16 zero, its checksum.
    let mut bytes = std::fs::read(&snapshot.path).unwrap();
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    bytes[12..16].fill(0);
    let header_crc = fincore_journal::record::record_crc(0, &bytes[0..44], &[]);
    bytes[44..48].copy_from_slice(&header_crc.to_le_bytes());
    std::fs::write(&snapshot.path, bytes).unwrap();

    let replayed = replay(dir.path(), ReplayBounds::default()).unwrap();
    assert_eq!(replayed.snapshot, None);
    assert_eq!(replayed.records, snapshot.seq, "the whole journal replayed");
    assert_eq!(replayed.engine.state_hash(), snapshot.state_hash);
    let [(path, why)] = &replayed.skipped_snapshots[..] else {
        panic!("{:?}", replayed.skipped_snapshots)
    };
    assert!(*path == snapshot.path && why.contains("a version 1 snapshot"), "{why}");
}

/// Every file under `dir` with its bytes.
fn files(dir: &std::path::Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut found = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.insert(path.clone(), std::fs::read(&path).unwrap());
        }
    }
    found
}

/// A journal whose last segment holds a payload format this build cannot read (a newer
/// build wrote it) is refused by name, and the refusal adds no segment: the directory
/// is byte for byte as it was, so the newer build can still open it.
#[test]
fn a_journal_in_an_unknown_payload_format_is_refused_and_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let (setup, commands) = setup_and_commands(50);
    let config = RunnerConfig {
        segment_size: fincore_journal::SEGMENT_SIZE_MIN,
        ..RunnerConfig::new(dir.path())
    };
    let (mut runner, _) = Runner::open(&config, &setup).unwrap();
    run(&mut runner, &commands);
    let seq = runner.engine().last_seq();
    runner.close().unwrap();
    // The newer build's writer: format 7 starts its own segment.
    let newer = fincore_journal::JournalConfig {
        segment_size: fincore_journal::SEGMENT_SIZE_MIN,
        payload_format: 7,
        ..fincore_journal::JournalConfig::new(journal_dir(dir.path()))
    };
    let (mut journal, _) = fincore_journal::Journal::open(newer).unwrap();
    let meta = fincore_journal::RecordMeta { seq: seq + 1, ..Default::default() };
    journal.append(&meta, b"from a newer build").unwrap();
    journal.close().unwrap();
    let segments = fincore_journal::list_segments(&journal_dir(dir.path())).unwrap();
    let before = files(dir.path());
    let error = Runner::open(&config, &setup).err().expect("refused").to_string();
    assert!(error.contains("payload format 7") && error.contains("cannot read"), "{error}");
    assert_eq!(fincore_journal::list_segments(&journal_dir(dir.path())).unwrap(), segments);
    assert_eq!(files(dir.path()), before, "the refused start changed the data directory");
}
