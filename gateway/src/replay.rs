//! Rebuilding engine state from a data directory: newest valid snapshot, then the
//! journal from the snapshot's sequence + 1. Used by the runner on start and by
//! `fincore replay` (which never modifies the directory).

use crate::RunnerError;
use crate::datadir;
use fincore_engine::{Command, CommandBody, Discard, Engine, Event, UserId, Wire};
use fincore_journal::{JournalReader, Record, Snapshot, SnapshotStore, TornTail};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Where to stop replaying.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayBounds {
    /// Stop after this sequence.
    pub until_seq: Option<u64>,
    /// Stop before the first command stamped later than this (ns since the epoch).
    pub until_time_ns: Option<u64>,
    /// Ignore snapshots: replay the whole journal.
    pub no_snapshot: bool,
}

/// The rebuilt state and how it was obtained.
pub struct Replayed {
    /// The engine at the end of the replay.
    pub engine: Engine,
    /// The snapshot it started from, if any: (sequence, file).
    pub snapshot: Option<(u64, PathBuf)>,
    /// Snapshots that were passed over, with why.
    pub skipped_snapshots: fincore_journal::snapshot::Skipped,
    /// Journal records applied.
    pub records: u64,
    /// Time spent decoding and applying them.
    pub elapsed: Duration,
    /// A torn last record the reader stopped at (a crashed, not yet recovered journal).
    pub torn_tail: Option<TornTail>,
}

/// Rebuilds the state in `data` within `bounds`. Never writes to the directory.
///
/// Nobody looks at the events here, so the engine applies each command into a sink that
/// drops them: the state is the same (events are outputs only), and the compiler leaves
/// out building them.
pub fn replay(data: &Path, bounds: ReplayBounds) -> Result<Replayed, RunnerError> {
    rebuild(data, bounds, |engine, command| engine.apply(command, &mut Discard))
}

/// [`replay`], calling `observe` with every command applied from the journal and the
/// events it produced (what an audit or an acknowledgement check needs).
pub fn replay_observed(
    data: &Path,
    bounds: ReplayBounds,
    mut observe: impl FnMut(&Command, &[Event]),
) -> Result<Replayed, RunnerError> {
    let mut events = Vec::new();
    rebuild(data, bounds, |engine, command| {
        events.clear();
        engine.apply(command, &mut events);
        observe(command, &events);
    })
}

/// Snapshot, then the journal, each command given to `apply` in order.
fn rebuild(
    data: &Path,
    bounds: ReplayBounds,
    mut apply: impl FnMut(&mut Engine, &Command),
) -> Result<Replayed, RunnerError> {
    let limits = datadir::read_limits(data)?.unwrap_or_default();
    let mut replayed = Replayed {
        engine: Engine::new(limits),
        snapshot: None,
        skipped_snapshots: Vec::new(),
        records: 0,
        elapsed: Duration::ZERO,
        torn_tail: None,
    };
    // A directory without snapshots has nothing to start from (and replay must not
    // create the folder: it never writes).
    if !bounds.no_snapshot && datadir::snapshot_dir(data).is_dir() {
        start_from_snapshot(data, bounds, &mut replayed)?;
    }
    apply_journal(data, &mut replayed, bounds, &mut apply)?;
    Ok(replayed)
}

/// The newest snapshot that decodes, reproduces its recorded state hash and lies within
/// the bounds; or a fresh engine when there is none.
fn start_from_snapshot(
    data: &Path,
    bounds: ReplayBounds,
    replayed: &mut Replayed,
) -> Result<(), RunnerError> {
    let store = SnapshotStore::open(datadir::snapshot_dir(data), usize::MAX)?;
    let mut restored = None;
    let (found, skipped) = store.load_newest(|snapshot: &Snapshot| {
        if bounds.until_seq.is_some_and(|until| snapshot.seq > until) {
            return Err(format!("after --until-seq (snapshot at {})", snapshot.seq));
        }
        // A snapshot is only as good as the journal under it: after an OS crash the
        // journal may end before a snapshot that reached the disk; a journal cut back
        // and written again (or restored from elsewhere) may reach its sequence with
        // other records, which the checksum chain tells apart.
        if snapshot.seq > 0 {
            let Some(crc) = journal_crc_at(data, snapshot.seq)? else {
                return Err(format!("the journal ends before seq {}", snapshot.seq));
            };
            match snapshot.journal_crc {
                None => {
                    return Err("a version 1 snapshot, which does not record the journal's \
                        checksum, so nothing ties it to this journal"
                        .into());
                }
                Some(recorded) if recorded != crc => {
                    return Err(format!(
                        "journal record {} is not the one the snapshot was taken after \
                         (checksum {crc:08x}, the snapshot recorded {recorded:08x}): \
                         another history",
                        snapshot.seq
                    ));
                }
                Some(_) => {}
            }
        }
        let engine = Engine::from_snapshot(&snapshot.payload).map_err(|e| e.to_string())?;
        if engine.limits() != replayed.engine.limits() {
            return Err("its engine limits differ from the data directory's".into());
        }
        if bounds.until_time_ns.is_some_and(|until| engine.time_ns() > until) {
            return Err("after --until-time".into());
        }
        if engine.state_hash() != snapshot.state_hash || engine.last_seq() != snapshot.seq {
            return Err("rebuilt state does not match the snapshot's hash or sequence".into());
        }
        restored = Some(engine);
        Ok(())
    })?;
    replayed.skipped_snapshots = skipped;
    if let (Some(snapshot), Some(engine)) = (found, restored) {
        replayed.snapshot = Some((snapshot.seq, store.path(snapshot.seq)));
        replayed.engine = engine;
    }
    Ok(())
}

/// The chained checksum of journal record `seq`, `None` if the journal ends before it.
fn journal_crc_at(data: &Path, seq: u64) -> Result<Option<u32>, String> {
    let mut reader =
        JournalReader::open(&datadir::journal_dir(data), seq).map_err(|e| e.to_string())?;
    match reader.next() {
        Ok(Some(record)) if record.meta.seq == seq => Ok(Some(record.crc)),
        Ok(_) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Commands handed from the reading thread to the applying one at a time.
const READ_AHEAD_BATCH: usize = 256;
/// Batches the reading thread may be ahead by.
const READ_AHEAD_BATCHES: usize = 8;

/// What the reading thread hands over: decoded commands in journal order, or the error
/// that stopped it (after the commands before the faulty record).
type Batch = Result<Vec<Command>, RunnerError>;

/// Applies the journal after the engine's sequence, within the bounds.
///
/// Two threads: this one applies, in journal order, what a reading thread has already
/// read, verified (checksum chain, sequence) and decoded. Reading and decoding are about
/// 45 % of a replay's work (`fincore bench journal`, BENCHMARKS.md session 14), and a
/// replay runs before the server serves, so the second core is free. The engine sees
/// exactly the commands, in exactly the order, that one thread would give it, so the
/// state is the same; an error is reported after the commands before it were applied
/// and observed, as before.
fn apply_journal(
    data: &Path,
    replayed: &mut Replayed,
    bounds: ReplayBounds,
    apply: &mut impl FnMut(&mut Engine, &Command),
) -> Result<(), RunnerError> {
    let started = Instant::now();
    let reader = JournalReader::open(&datadir::journal_dir(data), replayed.engine.last_seq() + 1)?;
    let engine = &mut replayed.engine;
    let mut records = 0;
    let (applied, torn_tail) = std::thread::scope(|scope| {
        // Owned by this closure, so that a panic while applying (an engine assertion,
        // or the observer's) drops the receiving end before the scope waits for the
        // reader, which then stops at its next send instead of waiting forever.
        let (full_tx, full_rx) = mpsc::sync_channel::<Batch>(READ_AHEAD_BATCHES);
        let (empty_tx, empty_rx) = mpsc::channel::<Vec<Command>>();
        let reading = std::thread::Builder::new()
            .name("replay-read".into())
            .spawn_scoped(scope, move || read_ahead(reader, bounds, &full_tx, &empty_rx))
            .map_err(|e| RunnerError::Io("starting the replay reader".into(), e))?;
        // Ends when the reader has sent its last batch (or an error) and hung up.
        let mut apply_all = || -> Result<(), RunnerError> {
            for batch in &full_rx {
                let commands = batch?;
                for command in &commands {
                    let expected = engine.last_seq() + 1;
                    if command.seq != expected {
                        let why = format!(
                            "journal has command {} where {expected} was expected",
                            command.seq
                        );
                        return Err(RunnerError::Data(why));
                    }
                    apply(engine, command);
                    records += 1;
                }
                // Back to the reader for reuse; it may have finished already.
                let _ = empty_tx.send(commands);
            }
            Ok(())
        };
        let applied = apply_all();
        // Stops a reader still reading (its next send fails) before waiting for it.
        drop(full_rx);
        let torn_tail = reading.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        Ok::<_, RunnerError>((applied, torn_tail))
    })?;
    applied?;
    replayed.records += records;
    replayed.torn_tail = torn_tail;
    replayed.elapsed = started.elapsed();
    Ok(())
}

/// The reading thread of [`apply_journal`]: reads, verifies and decodes the journal
/// within the bounds, in batches. Returns the torn tail the reader stopped at, if any.
fn read_ahead(
    mut reader: JournalReader,
    bounds: ReplayBounds,
    full: &mpsc::SyncSender<Batch>,
    empty: &mpsc::Receiver<Vec<Command>>,
) -> Option<TornTail> {
    loop {
        let mut batch = empty.try_recv().unwrap_or_else(|_| Vec::with_capacity(READ_AHEAD_BATCH));
        batch.clear();
        let mut failed = None;
        let mut end = false;
        while batch.len() < READ_AHEAD_BATCH {
            let record = match reader.next() {
                Ok(Some(record)) => record,
                Ok(None) => {
                    end = true;
                    break;
                }
                Err(error) => {
                    failed = Some(RunnerError::from(error));
                    break;
                }
            };
            if bounds.until_seq.is_some_and(|until| record.meta.seq > until)
                || bounds.until_time_ns.is_some_and(|until| record.meta.time_ns > until)
            {
                end = true;
                break;
            }
            match decode_record(&record) {
                Ok(command) => batch.push(command),
                Err(error) => {
                    failed = Some(error);
                    break;
                }
            }
        }
        // A send fails only when the applying thread has stopped: nothing more is wanted.
        if !batch.is_empty() && full.send(Ok(batch)).is_err() {
            return None;
        }
        if let Some(error) = failed {
            let _ = full.send(Err(error));
            return None;
        }
        if end {
            return reader.torn_tail().cloned();
        }
    }
}

/// What a journal record's payload is: the segment header's `payload_format`, which
/// the gateway sets ([`crate::RunnerConfig`] opens every journal with
/// [`PAYLOAD_BODY`]) and [`decode_record`] reads. docs/JOURNAL.md, section 3.
pub const PAYLOAD_COMMAND: u32 = 0;

/// Payload format 1: the encoded `CommandBody` alone. The command's sequence, time and
/// user are the record header's, so they are not repeated (20 bytes of every record).
pub const PAYLOAD_BODY: u32 = 1;

/// Appends the journal payload of `command` in format [`PAYLOAD_BODY`] to `out`.
pub fn encode_payload(command: &Command, out: &mut Vec<u8>) {
    command.body.encode_into(out);
}

/// Decodes a journal record as the command it must be. Format [`PAYLOAD_BODY`] takes
/// the sequence, time and user from the record header; format [`PAYLOAD_COMMAND`]
/// (journals written before segment version 2, which read as format 0) holds a whole
/// command, which must agree with the header. Any other format is refused.
pub fn decode_record(record: &Record<'_>) -> Result<Command, RunnerError> {
    let (meta, payload) = (&record.meta, record.payload);
    let seq = meta.seq;
    let invalid = |e: fincore_engine::CodecError| {
        RunnerError::Data(format!("record {seq}: payload is not a command: {e}"))
    };
    match record.payload_format {
        Some(PAYLOAD_BODY) => {
            let body = CommandBody::decode(payload).map_err(invalid)?;
            Ok(Command { seq, time_ns: meta.time_ns, user: UserId(meta.user), body })
        }
        Some(PAYLOAD_COMMAND) => {
            let command = Command::decode(payload).map_err(invalid)?;
            if command.seq != seq || command.time_ns != meta.time_ns || command.user.0 != meta.user
            {
                let why = format!(
                    "record {seq} (time {}, user {}) holds command {} (time {}, user {})",
                    meta.time_ns, meta.user, command.seq, command.time_ns, command.user.0
                );
                return Err(RunnerError::Data(why));
            }
            Ok(command)
        }
        Some(other) => Err(RunnerError::Data(format!(
            "record {seq}: unknown payload format {other} (written by a newer fincore?)"
        ))),
        None => Err(RunnerError::Data(format!(
            "record {seq}: read without its segment, so its payload format is unknown"
        ))),
    }
}
