//! Deterministic simulation of crashes and recovery (the VOPR idea, in miniature).
//!
//! One thread drives the engine runner (journal, then apply) on a temporary data
//! directory with a simulated clock: a seeded mix of trades and payments, now and then a
//! sync to the device (what the group-commit flusher does), a snapshot, a jump of hours
//! (authorizations expire, through a journaled `Tick`), and a crash. Crashes are of six
//! kinds, drawn at random points:
//!
//! - `Kill`: the process dies between two commands (a kill -9: the page cache survives);
//! - `AfterAppend`: it dies after a command reached the journal but before it was
//!   applied (the runner's step 2 of 3);
//! - `TornWrite`: it dies in the middle of writing a record: a seeded prefix of the record
//!   is in the file, the rest is zero;
//! - `Unpublished`: it dies after a record's body was written but before its length was;
//! - `PowerLoss`: the machine dies (an OS crash or a power loss): everything after the
//!   last sync is lost but for a seeded number of bytes of the next record;
//! - `BadSnapshot`: a kill, and the newest snapshot file is damaged as well;
//!
//! and a first start can die part-way through journaling the configuration's setup.
//!
//! After every recovery the simulation checks that the recovered state:
//!
//! - holds every command that was on the device (and, but for a torn or unfinished
//!   last record, every command of a process crash);
//! - has the state hash the live engine had at that sequence (observed at every sync,
//!   snapshot and crash, where recoveries land);
//! - equals a replay of the surviving journal from its first record, snapshots ignored;
//! - passes every engine invariant.
//!
//! Commands lost with unsynced pages are submitted again, as a client retries what was
//! never acknowledged, and the run goes on. A failing seed is printed; rerun it alone
//! with `FINCORE_SIM_SEED=<seed> cargo test -p fincore --test simulation -- --nocapture`
//! (`FINCORE_SIM_SEEDS=<n>` runs n seeds instead of the default).

mod common;

use common::faults::{lose_unsynced, unpublish_last};
use fincore_engine::testkit::{PaymentsMix, Rng, payments_workload};
use fincore_engine::{Command, CommandBody, Engine, EngineLimits, UserId};
use fincore_gateway::{
    Origin, ReplayBounds, Runner, RunnerConfig, StartReport, journal_dir, replay, snapshot_dir,
};
use fincore_journal::{
    Durability, Journal, JournalConfig, RecordMeta, SEGMENT_SIZE_MIN, list_segments,
};
use std::path::{Path, PathBuf};

/// Seeds run by default (about a fifth of a second each).
const SEEDS_DEFAULT: u64 = 200;
/// Workload steps per seed.
const STEPS: usize = 2_500;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Crash {
    Kill,
    AfterAppend,
    TornWrite,
    Unpublished,
    PowerLoss,
    BadSnapshot,
}

const CRASHES: [Crash; 6] = [
    Crash::Kill,
    Crash::AfterAppend,
    Crash::TornWrite,
    Crash::Unpublished,
    Crash::PowerLoss,
    Crash::BadSnapshot,
];

/// What one seed did, summed over seeds for the report.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    commands: u64,
    recoveries: u64,
    by_kind: [u64; CRASHES.len()],
    setup_crashes: u64,
    lost_and_retried: u64,
    torn_tails_cut: u64,
    snapshots: u64,
    snapshots_skipped: u64,
    /// Recoveries whose state hash was compared with the live engine's at that sequence.
    live_matches: u64,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.commands += other.commands;
        self.recoveries += other.recoveries;
        for (sum, n) in self.by_kind.iter_mut().zip(other.by_kind) {
            *sum += n;
        }
        self.setup_crashes += other.setup_crashes;
        self.lost_and_retried += other.lost_and_retried;
        self.torn_tails_cut += other.torn_tails_cut;
        self.snapshots += other.snapshots;
        self.snapshots_skipped += other.snapshots_skipped;
        self.live_matches += other.live_matches;
    }
}

struct Sim {
    rng: Rng,
    config: RunnerConfig,
    setup: Vec<CommandBody>,
    /// The client commands, submitted in order (again from a lost one after an OS crash).
    workload: Vec<(UserId, CommandBody)>,
    next: usize,
    /// What the live run did, by sequence number (index 0: the empty state).
    history: Vec<Entry>,
    /// The simulated clock, ns.
    now: u64,
    /// Everything through this sequence is on the device.
    synced: u64,
    /// A copy of the live engine at `synced` (None before the first sync).
    at_synced: Option<Engine>,
    tally: Tally,
}

/// One sequence number of the live run.
#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    /// The command, as the simulation sent it (None for the setup, which
    /// `Runner::open` journals).
    command: Option<Command>,
    /// The workload index it carried (None for setup and ticks).
    carried: Option<usize>,
    /// The live state hash after it, where observed: at syncs, snapshots and crashes
    /// (hashing walks the whole state, so not after every command).
    hash: Option<u64>,
}

impl Sim {
    fn new(seed: u64, data: &Path) -> Sim {
        let mut rng = Rng::new(seed);
        let workload = payments_workload(PaymentsMix {
            traders: 6,
            instruments: 2,
            commands: STEPS,
            trading_percent: 50,
            transfer_percent: 50,
            seed: rng.next_u64(),
        });
        let config = RunnerConfig {
            // The smallest segments, so that runs roll over often.
            segment_size: SEGMENT_SIZE_MIN,
            snapshots_kept: 2,
            // The mode whose promise an OS crash tests (its flusher thread syncs in the
            // background; what is on the device is modelled by `synced`).
            durability: Durability::Fsync,
            // Small tables: engines are built, cloned and hashed at every recovery.
            limits: EngineLimits {
                users_max: 64,
                accounts_max: 64,
                orders_max: 4_096,
                levels_per_side_max: 512,
                open_orders_per_account_max: 4_096,
                payments_max: 1 << 16,
                payments_expected: 64,
                orders_expected: 256,
            },
            ..RunnerConfig::new(data)
        };
        let empty_hash = Engine::new(config.limits).state_hash();
        Sim {
            rng,
            config,
            setup: workload.setup.iter().map(|c| c.body).collect(),
            workload: workload.commands.iter().map(|c| (c.user, c.body)).collect(),
            next: 0,
            history: vec![Entry { hash: Some(empty_hash), ..Entry::default() }],
            now: 1_000_000_000,
            synced: 0,
            at_synced: None,
            tally: Tally::default(),
        }
    }

    fn run(&mut self) -> Result<Tally, String> {
        let mut runner = self.first_start()?;
        while self.next < self.workload.len() {
            let roll = self.rng.below(1_000);
            runner = match roll {
                0..6 => {
                    let crash = CRASHES[self.rng.below(CRASHES.len() as u64) as usize];
                    self.crash(runner, crash)?
                }
                6..36 => {
                    // What the flusher's sync would put on the device. Only the model
                    // matters here (an OS crash is simulated by cutting the files), so
                    // the sync itself is not run: the device is slow.
                    self.on_device(runner.engine());
                    runner
                }
                36..41 => {
                    runner.snapshot().map_err(|e| e.to_string())?;
                    self.on_device(runner.engine());
                    self.tally.snapshots += 1;
                    runner
                }
                _ => {
                    self.step(&mut runner)?;
                    runner
                }
            };
        }
        let last = runner.engine().last_seq();
        let engine = runner.close().map_err(|e| e.to_string())?;
        self.check(&engine, last)?;
        Ok(self.tally)
    }

    /// The first start; one time in five it dies part-way through the setup first.
    fn first_start(&mut self) -> Result<Runner, String> {
        if self.rng.percent(20) {
            let done = self.rng.below(self.setup.len() as u64) as usize;
            let (runner, _) =
                Runner::open(&self.config, &self.setup[..done]).map_err(|e| e.to_string())?;
            drop(runner);
            self.tally.setup_crashes += 1;
        }
        let (runner, _) = Runner::open(&self.config, &self.setup).map_err(|e| e.to_string())?;
        self.history.resize(runner.engine().last_seq() as usize + 1, Entry::default());
        self.observe(runner.engine());
        Ok(runner)
    }

    /// The next command: a client's, or a `Tick` after a jump of the clock.
    fn next_command(&mut self) -> Entry {
        let seq = self.history.len() as u64;
        let (user, body, carried) = if self.rng.percent(1) {
            // An idle stretch of 10 minutes to 2 hours: one-hour authorizations expire.
            self.now += 600_000_000_000 + self.rng.below(6_600_000_000_000);
            (fincore_engine::SYSTEM_USER, CommandBody::Tick, None)
        } else {
            self.now += 1 + self.rng.below(2_000_000);
            let (user, body) = self.workload[self.next];
            self.next += 1;
            (user, body, Some(self.next - 1))
        };
        let command = Command { seq, time_ns: self.now, user, body };
        Entry { command: Some(command), carried, hash: None }
    }

    fn step(&mut self, runner: &mut Runner) -> Result<(), String> {
        let entry = self.next_command();
        let command = entry.command.expect("sent");
        let origin = Origin { user: command.user, session: 1, peer: 0 };
        let seq = runner.submit(origin, command.time_ns, command.body, &mut Vec::new());
        assert_eq!(seq.map_err(|e| e.to_string())?, command.seq);
        runner.publish();
        self.history.push(entry);
        self.tally.commands += 1;
        Ok(())
    }

    /// Crashes the runner, damages the files as the crash would, recovers, checks.
    fn crash(&mut self, runner: Runner, crash: Crash) -> Result<Runner, String> {
        let journal = journal_dir(&self.config.data_dir);
        self.observe(runner.engine());
        let live_last = runner.engine().last_seq();
        let mut live = runner.engine().clone();
        drop(runner);
        // The recovered sequence must be in `expected`.
        let expected = match crash {
            Crash::Kill => live_last..=live_last,
            Crash::BadSnapshot => {
                if let Some(newest) = newest_snapshot(&snapshot_dir(&self.config.data_dir)) {
                    let mut bytes = std::fs::read(&newest).unwrap();
                    let at = self.rng.below(bytes.len() as u64) as usize;
                    bytes[at] ^= 1 << self.rng.below(8);
                    std::fs::write(&newest, bytes).unwrap();
                }
                live_last..=live_last
            }
            Crash::AfterAppend => {
                self.append_unapplied(&journal, &mut live)?;
                live_last + 1..=live_last + 1
            }
            Crash::TornWrite => {
                let complete_from = self.append_unapplied(&journal, &mut live)?;
                let torn = self.rng.below(complete_from as u64) as usize;
                lose_unsynced(&journal, live_last, torn);
                live_last..=live_last
            }
            Crash::Unpublished => {
                self.append_unapplied(&journal, &mut live)?;
                unpublish_last(&journal, live_last + 1);
                live_last..=live_last
            }
            Crash::PowerLoss => {
                // Sealed segments were synced at their roll-over (`fsync` mode).
                let segments = list_segments(&journal).unwrap();
                let sealed = segments.last().map_or(0, |(first_seq, _)| first_seq - 1);
                let on_device = self.synced.max(sealed);
                let torn = self.rng.below(600) as usize;
                lose_unsynced(&journal, on_device, torn);
                on_device..=live_last
            }
        };
        self.tally.by_kind[CRASHES.iter().position(|c| *c == crash).unwrap()] += 1;
        let (runner, report) = Runner::open(&self.config, &self.setup)
            .map_err(|e| format!("recovery after {crash:?} failed: {e}"))?;
        self.tally.recoveries += 1;
        self.note(&report);
        // The journal's last record after recovery (before any setup re-journaled).
        let recovered = report.recovery.last_seq;
        if !expected.contains(&recovered) {
            return Err(format!("after {crash:?}: recovered to seq {recovered}, not {expected:?}"));
        }
        self.live_hash_at(recovered);
        // Forget what was lost; its client commands go again, in their order.
        let lost = self.history.drain(recovered as usize + 1..);
        if let Some(first) = lost.filter_map(|entry| entry.carried).next() {
            self.tally.lost_and_retried += (self.next - first) as u64;
            self.next = first;
        }
        let last = runner.engine().last_seq();
        self.check(runner.engine(), last).map_err(|e| format!("after {crash:?}: {e}"))?;
        if last == recovered {
            self.tally.live_matches += u64::from(self.history[last as usize].hash.is_some());
        } else {
            // The recovery journaled the rest of a setup that a crash had cut.
            self.history.resize(last as usize + 1, Entry::default());
            self.observe(runner.engine());
        }
        Ok(runner)
    }

    /// Journals the next command without applying it (as the runner does before its
    /// apply step); `live` applies it to learn the hash it leads to. Returns how many
    /// of the record's bytes must reach the file for it to be complete (up to its last
    /// non-zero byte: a torn write that stops within trailing zeros loses nothing).
    fn append_unapplied(&mut self, journal: &Path, live: &mut Engine) -> Result<usize, String> {
        let mut entry = self.next_command();
        let command = entry.command.expect("sent");
        let (seq, user) = (command.seq, command.user);
        let mut payload = Vec::new();
        fincore_gateway::encode_payload(&command, &mut payload);
        let config = JournalConfig {
            segment_size: self.config.segment_size,
            durability: self.config.durability,
            payload_format: fincore_gateway::PAYLOAD_BODY,
            ..JournalConfig::new(journal)
        };
        let (mut writer, _) = Journal::open(config).map_err(|e| e.to_string())?;
        let meta = RecordMeta { seq, time_ns: self.now, user: user.0, session: 1, peer: 0 };
        writer.append(&meta, &payload).map_err(|e| e.to_string())?;
        drop(writer);
        live.apply(&command, &mut Vec::new());
        entry.hash = Some(live.state_hash());
        self.history.push(entry);
        let nonzero = payload.iter().rposition(|b| *b != 0).expect("commands are not all zero");
        Ok(fincore_journal::record::RECORD_HEADER_LEN + nonzero + 1)
    }

    /// Records the live state hash at the engine's current sequence.
    fn observe(&mut self, engine: &Engine) {
        self.history[engine.last_seq() as usize].hash = Some(engine.state_hash());
    }

    /// The live engine's state is on the device (a sync or a snapshot).
    fn on_device(&mut self, engine: &Engine) {
        self.observe(engine);
        self.synced = engine.last_seq();
        self.at_synced = Some(engine.clone());
    }

    /// Fills in the live hash at `seq` where it was not observed (an OS crash whose
    /// torn fragment held whole records past the last sync): the engine as it was at
    /// the sync, with the commands the simulation sent after it applied again (from its
    /// own record, not from the journal).
    fn live_hash_at(&mut self, seq: u64) {
        let Some(at_synced) = &self.at_synced else { return };
        if self.history[seq as usize].hash.is_some() || seq < at_synced.last_seq() {
            return;
        }
        let mut engine = at_synced.clone();
        for entry in &self.history[at_synced.last_seq() as usize + 1..=seq as usize] {
            engine.apply(&entry.command.expect("sent after the sync"), &mut Vec::new());
        }
        self.history[seq as usize].hash = Some(engine.state_hash());
    }

    fn note(&mut self, report: &StartReport) {
        let recovery = &report.recovery;
        if recovery.torn_tail.is_some() || recovery.cleared_bytes > 0 {
            self.tally.torn_tails_cut += 1;
        }
        self.tally.snapshots_skipped += report.skipped_snapshots.len() as u64;
    }

    /// The recovered (or final) state against the live history, a replay of the whole
    /// journal, and the invariants.
    fn check(&self, engine: &Engine, last: u64) -> Result<(), String> {
        let hash = engine.state_hash();
        if let Some(live) = self.history.get(last as usize).and_then(|entry| entry.hash)
            && live != hash
        {
            return Err(format!("seq {last}: state hash {hash:016x}, live was {live:016x}"));
        }
        let bounds = ReplayBounds { no_snapshot: true, ..ReplayBounds::default() };
        let replayed = replay(&self.config.data_dir, bounds).map_err(|e| e.to_string())?;
        if replayed.engine.last_seq() != last || replayed.engine.state_hash() != hash {
            return Err(format!(
                "replay of the journal: seq {} hash {:016x}; recovered: seq {last} hash {hash:016x}",
                replayed.engine.last_seq(),
                replayed.engine.state_hash()
            ));
        }
        engine.check_invariants().map_err(|e| format!("seq {last}: invariant: {e}"))?;
        engine.check_payments().map_err(|e| format!("seq {last}: payments invariant: {e}"))
    }
}

fn newest_snapshot(dir: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).max()
}

fn run_seed(seed: u64) -> Result<Tally, String> {
    // In memory where there is a tmpfs: the device is simulated (an OS crash is a cut of
    // the files), and real syncs would make the run wait on the disk.
    let shm = Path::new("/dev/shm");
    let data = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() };
    let data = data.unwrap();
    Sim::new(seed, data.path()).run()
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v}")))
}

#[test]
fn crashes_at_random_points_lose_nothing_synced_and_recover_the_live_state() {
    let seeds = match env_u64("FINCORE_SIM_SEED") {
        Some(seed) => seed..seed + 1,
        None => 1..1 + env_u64("FINCORE_SIM_SEEDS").unwrap_or(SEEDS_DEFAULT),
    };
    // Seeds are independent: two threads (the machine's two cores) take turns.
    let results: Vec<(u64, Result<Tally, String>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|worker| {
                let seeds = seeds.clone().skip(worker).step_by(2);
                scope.spawn(move || seeds.map(|seed| (seed, run_seed(seed))).collect::<Vec<_>>())
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let mut total = Tally::default();
    let mut failed = Vec::new();
    for (seed, result) in results {
        match result {
            Ok(tally) => total.add(&tally),
            Err(why) => {
                eprintln!(
                    "simulation: seed {seed} FAILED: {why}\n  rerun: FINCORE_SIM_SEED={seed} \
                     cargo test -p fincore --test simulation -- --nocapture"
                );
                failed.push(seed);
            }
        }
    }
    eprintln!(
        "simulation: {} seeds, {} commands, {} recoveries (kill {}, after append {}, torn \
         write {}, unpublished {}, os crash {}, bad snapshot {}; {} matched the live state \
         hash), {} setup crashes, {} lost unsynced commands retried, {} torn tails cut, {} \
         snapshots ({} skipped as damaged)",
        seeds.end - seeds.start,
        total.commands,
        total.recoveries,
        total.by_kind[0],
        total.by_kind[1],
        total.by_kind[2],
        total.by_kind[3],
        total.by_kind[4],
        total.by_kind[5],
        total.live_matches,
        total.setup_crashes,
        total.lost_and_retried,
        total.torn_tails_cut,
        total.snapshots,
        total.snapshots_skipped,
    );
    assert!(failed.is_empty(), "failing seeds: {failed:?}");
    // The run must have exercised what it claims to (guards against a harness that
    // silently stops crashing).
    if seeds.end - seeds.start >= 50 {
        assert!(total.by_kind.iter().all(|n| *n > 0), "every crash kind ran: {total:?}");
        assert!(total.lost_and_retried > 0 && total.torn_tails_cut > 0, "{total:?}");
        assert!(total.snapshots_skipped > 0 && total.setup_crashes > 0, "{total:?}");
        assert!(total.live_matches * 10 > total.recoveries * 9, "live hash compared: {total:?}");
    }
}
