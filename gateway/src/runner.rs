//! The engine runner: the only way commands reach the live engine. For each command it
//! assigns the next sequence number, appends the encoded command to the journal, and
//! only then applies it, so nothing is ever applied that is not journaled
//! (DESIGN.md section 2, steps 1-3). It runs on the engine thread.

use crate::replay::{ReplayBounds, replay};
use crate::{RunnerError, datadir};
use fincore_engine::{Command, CommandBody, Engine, EngineLimits, EventSink, SYSTEM_USER, UserId};
use fincore_journal::{
    Durability, Journal, JournalConfig, RecordMeta, SEGMENT_SIZE_DEFAULT, SnapshotStore,
};
use std::path::{Path, PathBuf};

/// Snapshots kept by default: enough to survive a corrupt newest one twice.
pub const SNAPSHOTS_KEPT_DEFAULT: usize = 3;

/// How to open a data directory.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// The data directory.
    pub data_dir: PathBuf,
    /// Journal durability mode.
    pub durability: Durability,
    /// Journal segment size.
    pub segment_size: u64,
    /// Snapshots to keep.
    pub snapshots_kept: usize,
    /// Engine capacities for a new directory (an existing one keeps its own).
    pub limits: EngineLimits,
    /// Test aid: see `JournalConfig::synced_log`.
    pub synced_log: Option<PathBuf>,
}

impl RunnerConfig {
    /// Defaults for `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> RunnerConfig {
        RunnerConfig {
            data_dir: data_dir.into(),
            durability: Durability::Process,
            segment_size: SEGMENT_SIZE_DEFAULT,
            snapshots_kept: SNAPSHOTS_KEPT_DEFAULT,
            limits: EngineLimits::default(),
            synced_log: None,
        }
    }
}

/// Who a command came from, for the journal's audit fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// Authenticated user.
    pub user: UserId,
    /// Session id.
    pub session: u32,
    /// Hash of the peer address.
    pub peer: u64,
}

/// What opening the directory found.
#[derive(Debug, Default)]
pub struct StartReport {
    /// The snapshot the state was rebuilt from, if any.
    pub snapshot_seq: Option<u64>,
    /// Snapshots passed over, with why.
    pub skipped_snapshots: Vec<(PathBuf, String)>,
    /// Journal records replayed on top.
    pub replayed: u64,
    /// What journal recovery did (torn tail cut, etc.).
    pub recovery: fincore_journal::Recovery,
    /// Setup commands journaled because the directory was new.
    pub setup_applied: usize,
    /// The configuration's setup differs from the one at the head of this (existing)
    /// journal: assets, instruments, users, accounts, deposits, payment limits or the
    /// deny-list were changed in the configuration after the directory was created.
    /// The journal wins; the server warns.
    pub setup_differs: Option<SetupDiffers>,
}

/// How the head of the journal compares with the configuration's setup.
struct SetupFound {
    /// How much of the setup the journal holds: all of it for a journal that is not a
    /// strict prefix of the setup (an established directory), else the length of that
    /// prefix (0 for an empty journal).
    done: usize,
    /// For an established directory, where the configuration's setup and the
    /// journal's part: the configuration has changed since the directory was created.
    differs: Option<SetupDiffers>,
}

/// The first setup command in which the configuration and an established journal
/// differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetupDiffers {
    /// Its position in the setup (0-based).
    pub index: usize,
    /// What the configuration has there (`None`: the configuration's setup ends
    /// before it, something was removed).
    pub configured: Option<CommandBody>,
    /// What the journal has there (`None`: not a setup command, something was added).
    pub journaled: Option<CommandBody>,
}

fn setup_found(data: &Path, setup: &[CommandBody]) -> Result<SetupFound, RunnerError> {
    let mut reader = fincore_journal::JournalReader::open(&datadir::journal_dir(data), 1)?;
    let mut matched = 0;
    while let Some(record) = reader.next()? {
        let command = crate::replay::decode_record(&record)?;
        // The setup is journaled by the system user; so are the server's own `Tick`s,
        // which are not setup.
        let journaled = (command.user == SYSTEM_USER && command.body != CommandBody::Tick)
            .then_some(command.body);
        let configured = setup.get(matched).copied();
        if configured.is_some() && configured == journaled {
            matched += 1;
            continue;
        }
        if configured.is_none() && journaled.is_none() {
            break;
        }
        let differs = SetupDiffers { index: matched, configured, journaled };
        return Ok(SetupFound { done: setup.len(), differs: Some(differs) });
    }
    Ok(SetupFound { done: matched, differs: None })
}

/// Applies the setup to a copy of the engine first, so that a configuration mistake is
/// reported before anything reaches the journal (a half-applied setup at the head of a
/// journal would be permanent).
fn check_setup(engine: &Engine, setup: &[CommandBody]) -> Result<(), RunnerError> {
    let mut scratch = engine.clone();
    let mut events = Vec::new();
    for body in setup {
        events.clear();
        let command =
            Command { seq: scratch.last_seq() + 1, time_ns: 0, user: SYSTEM_USER, body: *body };
        scratch.apply(&command, &mut events);
        if let Some(fincore_engine::Event::Rejected(rejected)) = events.last() {
            return Err(RunnerError::Data(format!(
                "setup command {body:?} rejected: {}",
                rejected.reason
            )));
        }
    }
    Ok(())
}

/// Journal-then-apply around one engine.
pub struct Runner {
    engine: Engine,
    journal: Journal,
    snapshots: SnapshotStore,
    /// The newest snapshot this runner wrote, or started from if nothing was applied
    /// after it (`written` is true for the one it wrote).
    last_snapshot: Option<SnapshotDone>,
}

/// What [`Runner::snapshot`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotDone {
    /// The sequence the snapshot is at.
    pub seq: u64,
    /// The state hash at that sequence.
    pub state_hash: u64,
    /// Its file.
    pub path: PathBuf,
    /// False if nothing was written: the newest snapshot was already at this sequence.
    pub written: bool,
}

impl Runner {
    /// Opens `config.data_dir`: recovers the journal's tail, rebuilds the state from the
    /// newest valid snapshot plus the journal, and, for a new directory, journals and
    /// applies `setup` (the configuration's assets, instruments, users and accounts) at
    /// the head of the journal.
    pub fn open(
        config: &RunnerConfig,
        setup: &[CommandBody],
    ) -> Result<(Runner, StartReport), RunnerError> {
        let data = &config.data_dir;
        if data.exists() && !data.is_dir() {
            return Err(RunnerError::Data(format!("{} is not a directory", data.display())));
        }
        std::fs::create_dir_all(data)
            .map_err(|e| RunnerError::Io(data.display().to_string(), e))?;
        let journal_exists = datadir::journal_dir(data).is_dir();
        // Snapshots without a journal: the journal was lost or moved. Opening would
        // start a new journal at sequence 1, and every command acknowledged before
        // would be silently gone; the operator must restore it.
        let snapshots = SnapshotStore::open(datadir::snapshot_dir(data), config.snapshots_kept)?;
        let segments = match journal_exists {
            true => fincore_journal::list_segments(&datadir::journal_dir(data))?.len(),
            false => 0,
        };
        if segments == 0
            && let Some((seq, path)) = snapshots.list()?.first()
        {
            return Err(RunnerError::Data(format!(
                "{} has snapshots ({} at seq {seq}) but no journal segments: the journal \
                 was lost or moved; restore it (to start afresh on purpose, move the \
                 snapshots directory, or the whole data directory, aside)",
                data.display(),
                path.display()
            )));
        }
        match datadir::read_limits(data)? {
            Some(_) => {}
            None if journal_exists => {
                return Err(RunnerError::Data(format!(
                    "{} has a journal but no engine-limits file",
                    data.display()
                )));
            }
            None => datadir::write_limits(data, &config.limits)?,
        }
        let journal_config = JournalConfig {
            dir: datadir::journal_dir(data),
            segment_size: config.segment_size,
            durability: config.durability,
            synced_log: config.synced_log.clone(),
            payload_format: crate::replay::PAYLOAD_BODY,
            readable_formats: Some(&[crate::replay::PAYLOAD_COMMAND]),
        };
        // Recover the tail first (it may cut a torn record), then rebuild from it.
        let (journal, recovery) = Journal::open(journal_config)?;
        let replayed = replay(data, ReplayBounds::default())?;
        if replayed.engine.last_seq() != journal.last_seq() {
            let why = format!(
                "state rebuilt to seq {} but the journal ends at {}",
                replayed.engine.last_seq(),
                journal.last_seq()
            );
            return Err(RunnerError::Data(why));
        }
        let mut report = StartReport {
            snapshot_seq: replayed.snapshot.as_ref().map(|(seq, _)| *seq),
            skipped_snapshots: replayed.skipped_snapshots,
            replayed: replayed.records,
            recovery,
            setup_applied: 0,
            setup_differs: None,
        };
        let last_snapshot = match replayed.snapshot {
            Some((seq, path)) if seq == replayed.engine.last_seq() => {
                let state_hash = replayed.engine.state_hash();
                Some(SnapshotDone { seq, state_hash, path, written: false })
            }
            _ => None,
        };
        let mut runner = Runner { engine: replayed.engine, journal, snapshots, last_snapshot };
        // A new directory gets the whole setup; one whose first start stopped part-way
        // through the setup (a crash) gets the rest. Any other journal is left as it is:
        // for an existing directory the journal, not the configuration, is the truth.
        let found = match setup_found(data, setup) {
            // Only a warning depends on the comparison for an established journal: a
            // head that cannot be read here is for the replay, not this, to judge.
            Err(_) if runner.journal.last_seq() >= setup.len() as u64 => {
                SetupFound { done: setup.len(), differs: None }
            }
            found => found?,
        };
        let SetupFound { done, differs } = found;
        report.setup_differs = differs;
        if done < setup.len() {
            check_setup(&runner.engine, &setup[done..])?;
            runner.apply_setup(&setup[done..])?;
            report.setup_applied = setup.len() - done;
        }
        Ok((runner, report))
    }

    /// Journals and applies the setup commands as the system user; any reject is an
    /// error (a configuration mistake), reported with the command.
    fn apply_setup(&mut self, setup: &[CommandBody]) -> Result<(), RunnerError> {
        let mut events = Vec::new();
        let origin = Origin { user: SYSTEM_USER, session: 0, peer: 0 };
        for body in setup {
            events.clear();
            self.submit(origin, 0, *body, &mut events)?;
            if let Some(fincore_engine::Event::Rejected(rejected)) = events.last() {
                return Err(RunnerError::Data(format!(
                    "setup command {body:?} rejected: {}",
                    rejected.reason
                )));
            }
        }
        self.journal.publish();
        Ok(())
    }

    /// Sequences, journals and applies one command; its events go to `out`. Returns the
    /// command's sequence number.
    pub fn submit(
        &mut self,
        origin: Origin,
        time_ns: u64,
        body: CommandBody,
        out: &mut impl EventSink,
    ) -> Result<u64, RunnerError> {
        self.submit_observed(origin, time_ns, body, out, || {})
    }

    /// [`Runner::submit`], calling `journaled` between the journal append and the apply
    /// (the engine thread times the two steps of sampled commands with it).
    pub fn submit_observed(
        &mut self,
        origin: Origin,
        time_ns: u64,
        body: CommandBody,
        out: &mut impl EventSink,
        journaled: impl FnOnce(),
    ) -> Result<u64, RunnerError> {
        let seq = self.journal.next_seq();
        debug_assert_eq!(seq, self.engine.last_seq() + 1);
        let command = Command { seq, time_ns, user: origin.user, body };
        let meta = RecordMeta {
            seq,
            time_ns,
            user: origin.user.0,
            session: origin.session,
            peer: origin.peer,
        };
        self.journal.append_with(&meta, |out| crate::replay::encode_payload(&command, out))?;
        journaled();
        self.engine.apply(&command, out);
        Ok(seq)
    }

    /// End of a batch: makes the batch eligible for durability (see `Journal::publish`).
    pub fn publish(&self) {
        self.journal.publish();
    }

    /// The live engine (for queries and reports).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The journal (durability waits, positions).
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Writes a snapshot of the current state, unless the newest one (written by this
    /// runner or started from) is already at the current sequence and its file is
    /// still there: the state is a function of the sequence, so a second file would
    /// say the same, and a burst of requests must not hold the engine thread for a
    /// write each.
    pub fn snapshot(&mut self) -> Result<SnapshotDone, RunnerError> {
        let seq = self.engine.last_seq();
        if let Some(last) = &self.last_snapshot
            && last.seq == seq
            && last.path.is_file()
        {
            return Ok(SnapshotDone { written: false, ..last.clone() });
        }
        // Never let a snapshot be on the device ahead of the journal it summarises.
        self.journal.sync_to_device()?;
        let state_hash = self.engine.state_hash();
        // The checksum recorded must be record `seq`'s: a wrong one would have every
        // later recovery pass this snapshot over without saying why.
        assert_eq!(self.journal.last_seq(), seq, "the journal is at the engine's seq");
        let journal_crc = self.journal.last_crc();
        let path = self.snapshots.write(seq, state_hash, journal_crc, &self.engine.snapshot())?;
        let done = SnapshotDone { seq, state_hash, path, written: true };
        self.last_snapshot = Some(done.clone());
        Ok(done)
    }

    /// Syncs the journal and closes it.
    pub fn close(self) -> Result<Engine, RunnerError> {
        self.journal.close()?;
        Ok(self.engine)
    }
}
