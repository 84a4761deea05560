//! `fincore bench journal`: append throughput of the journal alone, read-back
//! throughput, and replay of a realistic command journal into a fresh engine, all in a
//! temporary directory that is removed afterwards.

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use fincore_engine::testkit::{TradingMix, trading_workload};
use fincore_gateway::{Origin, ReplayBounds, Runner, RunnerConfig, replay};
use fincore_journal::{Durability, Journal, JournalConfig, JournalReader, RecordMeta};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, ValueEnum)]
pub enum Mode {
    /// Appends are durable against a process crash once in the mapped pages.
    Process,
    /// Group commit: a flusher msyncs; the run ends when everything is on the device.
    Fsync,
}

#[derive(Args)]
pub struct JournalArgs {
    /// Records to append.
    #[arg(long, default_value_t = 5_000_000)]
    records: u64,
    /// Payload bytes per record.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Durability mode of the append run.
    #[arg(long, value_enum, default_value = "process")]
    durability: Mode,
    /// Records per published batch (the engine thread publishes once per batch).
    #[arg(long, default_value_t = 256)]
    batch: u64,
    /// Commands of the realistic mix to journal and then replay (0 to skip).
    #[arg(long, default_value_t = 1_000_000)]
    replay_commands: usize,
    /// Directory for the temporary files (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
}

/// A directory removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// Keeps the directory (for a look after a failure) and returns its path.
    pub fn keep(self) -> PathBuf {
        let this = std::mem::ManuallyDrop::new(self);
        this.0.clone()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn scratch(base: Option<&Path>, name: &str) -> Result<Scratch> {
    let base = base.map_or_else(std::env::temp_dir, Path::to_path_buf);
    let dir = base.join(format!("fincore-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(Scratch(dir))
}

pub fn run(args: &JournalArgs) -> Result<()> {
    if args.records == 0 || args.payload == 0 || args.batch == 0 {
        bail!("--records, --payload and --batch must be positive");
    }
    let durability = match args.durability {
        Mode::Process => Durability::Process,
        Mode::Fsync => Durability::Fsync,
    };
    let (append_secs, read_secs) = append_and_read(args, durability)?;
    let records_per_sec = args.records as f64 / append_secs;
    let mode = if durability == Durability::Fsync { "fsync" } else { "process" };
    println!(
        "journal bench: {} records of {} bytes, {mode} mode, publish every {}",
        args.records, args.payload, args.batch
    );
    println!("  append       {records_per_sec:>14.0} records/s ({append_secs:.3} s)");
    let read_per_sec = args.records as f64 / read_secs;
    println!("  read back    {read_per_sec:>14.0} records/s (checksums and chain verified)");
    let (replay_rate, replay_secs) =
        if args.replay_commands > 0 { replay_bench(args)? } else { (0.0, 0.0) };
    if args.replay_commands > 0 {
        println!(
            "  replay       {replay_rate:>14.0} commands/s ({} commands in {replay_secs:.3} s, decode + apply)",
            args.replay_commands
        );
    }
    if args.json {
        println!(
            "{{\"records\":{},\"payload_bytes\":{},\"durability\":\"{mode}\",\"records_per_sec\":{records_per_sec:.0},\"read_records_per_sec\":{read_per_sec:.0},\"replay_commands\":{},\"replay_commands_per_sec\":{replay_rate:.0},\"replay_secs\":{replay_secs:.3}}}",
            args.records, args.payload, args.replay_commands
        );
    }
    Ok(())
}

/// Appends the records (timed, including the final durability wait in fsync mode),
/// then reads them all back (timed).
fn append_and_read(args: &JournalArgs, durability: Durability) -> Result<(f64, f64)> {
    let dir = scratch(args.dir.as_deref(), "journal")?;
    let config = JournalConfig { durability, ..JournalConfig::new(&dir.0) };
    let (mut journal, _) = Journal::open(config)?;
    let payload = vec![0xA5u8; args.payload];
    let started = Instant::now();
    for seq in 1..=args.records {
        let meta = RecordMeta { seq, time_ns: seq, user: 1, session: 1, peer: 7 };
        journal.append(&meta, &payload)?;
        if seq % args.batch == 0 {
            journal.publish();
        }
    }
    journal.publish();
    if !journal.wait_durable(args.records, Duration::from_secs(600)) {
        bail!("records were not durable within 10 minutes");
    }
    let append_secs = started.elapsed().as_secs_f64();
    drop(journal);
    let started = Instant::now();
    let mut reader = JournalReader::open(&dir.0, 1)?;
    let mut count = 0u64;
    while let Some(record) = reader.next()? {
        count += record.payload.len() as u64 / args.payload as u64;
    }
    if count != args.records {
        bail!("read back {count} records, wrote {}", args.records);
    }
    Ok((append_secs, started.elapsed().as_secs_f64()))
}

/// Journals a realistic workload through the runner, then replays it (no snapshot) and
/// checks the rebuilt state hash against the live one.
fn replay_bench(args: &JournalArgs) -> Result<(f64, f64)> {
    let dir = scratch(args.dir.as_deref(), "replay")?;
    let mix = TradingMix { instruments: 1, traders: 64, commands: args.replay_commands, seed: 1 };
    let workload = trading_workload(mix);
    let setup: Vec<_> = workload.setup.iter().map(|c| c.body).collect();
    let (mut runner, _) = Runner::open(&RunnerConfig::new(&dir.0), &setup)?;
    let mut events = Vec::new();
    for command in &workload.commands {
        events.clear();
        let origin = Origin { user: command.user, session: 1, peer: 0 };
        runner.submit(origin, command.time_ns, command.body, &mut events)?;
    }
    let live_hash = runner.engine().state_hash();
    runner.close()?;
    let bounds = ReplayBounds { no_snapshot: true, ..ReplayBounds::default() };
    let replayed = replay(&dir.0, bounds)?;
    if replayed.engine.state_hash() != live_hash {
        bail!("replay reached a different state hash than the live run");
    }
    let seconds = replayed.elapsed.as_secs_f64();
    Ok((replayed.records as f64 / seconds, seconds))
}
