//! `fincore bench engine`: the engine alone, single-threaded, on a seeded in-memory
//! workload with risk checks and settlement on.
//!
//! Two passes over the same stream on fresh engines: the first times the whole stream
//! (throughput, no per-command clock reads); the second reads the clock around every
//! command for the latency histogram. The cost of the clock reads themselves is
//! measured and printed as the harness baseline, so a reader can subtract it.

use anyhow::{Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use fincore_engine::testkit::{
    PaymentsMix, TradingMix, Workload, payments_workload, trading_workload,
};
use fincore_engine::{Engine, EngineLimits, Event, PaymentAction};
use hdrhistogram::Histogram;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Subcommand)]
pub enum Target {
    /// The engine state machine alone.
    Engine(EngineArgs),
    /// Journal appends, journal reads, and replay (decode + apply) into a fresh engine.
    Journal(crate::bench_journal::JournalArgs),
    /// Ring + journal + engine + outbound queue in one process, no sockets.
    Pipeline(crate::bench_pipeline::PipelineArgs),
    /// The whole server over TCP on 127.0.0.1 with one pipelined client.
    Tcp(crate::bench_tcp::TcpArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Mix {
    /// 55 % passive limits, 35 % cancels, 8 % crossing limits, 2 % market orders.
    Trading,
    /// USD transfers between traders, nothing else.
    Transfers,
    /// USD payments between traders: 50 % transfers, 50 % authorize/capture pairs.
    Payments,
    /// Half trading (the trading mix), half payments (the payments mix), interleaved.
    Mixed,
}

impl Mix {
    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Mix::Trading => "trading",
            Mix::Transfers => "transfers",
            Mix::Payments => "payments",
            Mix::Mixed => "mixed",
        }
    }
}

#[derive(Args)]
pub struct EngineArgs {
    /// Workload mix.
    #[arg(long, value_enum, default_value = "trading")]
    mix: Mix,
    /// Commands to measure (after the setup).
    #[arg(long, default_value_t = 2_000_000)]
    ops: usize,
    /// PRNG seed of the workload.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Instruments the orders spread over.
    #[arg(long, default_value_t = 1)]
    instruments: u16,
    /// Trading accounts.
    #[arg(long, default_value_t = 64)]
    traders: u32,
    /// Do not size the payment table for the run (`payments_expected` = the number of
    /// commands): measure it growing, page faults included, from the default size.
    #[arg(long)]
    no_presize: bool,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
    /// Write the latency percentile distribution (.hgrm text format) to this file.
    #[arg(long)]
    hgrm: Option<PathBuf>,
    /// Draw latency by percentile as an SVG chart to this file.
    #[arg(long)]
    plot: Option<PathBuf>,
}

pub fn run(target: Target) -> Result<()> {
    match target {
        Target::Engine(args) => bench_engine(&args),
        Target::Journal(args) => crate::bench_journal::run(&args),
        Target::Pipeline(args) => crate::bench_pipeline::run(&args),
        Target::Tcp(args) => crate::bench_tcp::run(&args),
    }
}

fn bench_engine(args: &EngineArgs) -> Result<()> {
    if args.ops == 0 || args.instruments == 0 || args.traders < 2 {
        bail!("--ops and --instruments must be positive, --traders at least 2");
    }
    eprintln!(
        "generating {} {} commands (seed {}, {} instrument(s))...",
        args.ops,
        args.mix.name(),
        args.seed,
        args.instruments
    );
    let workload = workload(args.mix, args.ops, args.seed, args.instruments, args.traders);
    // Sized for the run, as a deployment sizes the payment table for its expected
    // volume (the order table is always allocated in full); `--no-presize` measures
    // the table growing from the default size instead.
    let mut limits = EngineLimits::default();
    if !args.no_presize {
        let setup = workload.setup.len() as u32;
        limits.payments_expected = (args.ops as u32).saturating_add(setup).min(limits.payments_max);
    }
    let (elapsed_ns, events, hash) = throughput_pass(&workload, limits);
    let (histogram, timer_ns, counts) = latency_pass(&workload, limits, hash)?;
    let fills = counts.fills;
    let ops_per_sec = args.ops as f64 / (elapsed_ns as f64 / 1e9);
    let p = |q: f64| histogram.value_at_quantile(q);
    println!(
        "engine bench: mix={} instruments={} traders={} ops={} seed={} payments_expected={}",
        args.mix.name(),
        args.instruments,
        args.traders,
        args.ops,
        args.seed,
        limits.payments_expected
    );
    println!(
        "  throughput   {:>12.0} commands/s ({:.1} ns/command)",
        ops_per_sec,
        elapsed_ns as f64 / args.ops as f64
    );
    println!(
        "  events       {events} ({fills} fills, {} payments created, {} captured, {} rejected commands)",
        counts.payments, counts.captures, counts.rejects
    );
    println!(
        "  latency ns   p50={} p99={} p99.9={} max={} (includes ~{timer_ns} ns of clock reads)",
        p(0.5),
        p(0.99),
        p(0.999),
        histogram.max()
    );
    println!("  state_hash   {hash:016x}");
    if let Some(path) = &args.hgrm {
        crate::report::write_hgrm(&histogram, path, "ns")?;
    }
    if let Some(path) = &args.plot {
        let title = format!(
            "fincore bench engine --mix {}: {} instrument(s), {} commands, per-command latency",
            args.mix.name(),
            args.instruments,
            args.ops
        );
        crate::report::write_svg(&histogram, path, &title, "ns")?;
    }
    if args.json {
        println!(
            "{{\"mix\":\"{}\",\"presized\":{},\"ops\":{},\"instruments\":{},\"seed\":{},\"ops_per_sec\":{:.0},\"p50_ns\":{},\"p99_ns\":{},\"p999_ns\":{},\"max_ns\":{},\"timer_overhead_ns\":{},\"fills\":{},\"payments\":{},\"rejects\":{},\"events\":{},\"state_hash\":\"{:016x}\"}}",
            args.mix.name(),
            !args.no_presize,
            args.ops,
            args.instruments,
            args.seed,
            ops_per_sec,
            p(0.5),
            p(0.99),
            p(0.999),
            histogram.max(),
            timer_ns,
            fills,
            counts.payments,
            counts.rejects,
            events,
            hash
        );
    }
    Ok(())
}

/// The seeded command stream of a `--mix` (shared with `bench pipeline`).
pub fn workload(mix: Mix, ops: usize, seed: u64, instruments: u16, traders: u32) -> Workload {
    let payments = |trading_percent, transfer_percent| PaymentsMix {
        traders,
        instruments,
        commands: ops,
        trading_percent,
        transfer_percent,
        seed,
    };
    match mix {
        Mix::Trading => trading_workload(TradingMix { instruments, traders, commands: ops, seed }),
        Mix::Transfers => payments_workload(payments(0, 100)),
        Mix::Payments => payments_workload(payments(0, 50)),
        Mix::Mixed => payments_workload(payments(50, 50)),
    }
}

/// What the measured commands did.
#[derive(Default)]
struct Counts {
    fills: u64,
    payments: u64,
    captures: u64,
    rejects: u64,
}

/// A fresh engine with the workload's setup applied.
fn prepared_engine(workload: &Workload, limits: EngineLimits) -> Engine {
    let mut engine = Engine::new(limits);
    let mut events = Vec::new();
    for command in &workload.setup {
        engine.apply(command, &mut events);
    }
    engine
}

/// Times the whole stream; events go into a reused vector, as the server's runner does.
fn throughput_pass(workload: &Workload, limits: EngineLimits) -> (u64, u64, u64) {
    let mut engine = prepared_engine(workload, limits);
    let mut events: Vec<Event> = Vec::with_capacity(1024);
    let mut total = 0u64;
    let start = Instant::now();
    for command in &workload.commands {
        events.clear();
        engine.apply(command, &mut events);
        total += events.len() as u64;
    }
    let elapsed = start.elapsed().as_nanos() as u64;
    eprintln!("  resting orders at the end: {}", engine.live_orders());
    (elapsed, total, engine.state_hash())
}

/// Times every command separately; checks it reaches the same state as the first pass.
fn latency_pass(
    workload: &Workload,
    limits: EngineLimits,
    expected_hash: u64,
) -> Result<(Histogram<u64>, u64, Counts)> {
    let mut engine = prepared_engine(workload, limits);
    let mut events: Vec<Event> = Vec::with_capacity(1024);
    let mut histogram = crate::report::latency_histogram()?;
    let mut counts = Counts::default();
    for command in &workload.commands {
        events.clear();
        let start = Instant::now();
        engine.apply(command, &mut events);
        histogram.saturating_record(start.elapsed().as_nanos() as u64);
        for event in &events {
            match event {
                Event::Fill(_) => counts.fills += 1,
                Event::Rejected(_) => counts.rejects += 1,
                Event::Payment { action: PaymentAction::Created, .. } => counts.payments += 1,
                Event::Payment { action: PaymentAction::Captured, .. } => counts.captures += 1,
                _ => {}
            }
        }
    }
    if engine.state_hash() != expected_hash {
        bail!("the two passes reached different states: determinism is broken");
    }
    Ok((histogram, timer_overhead_ns(), counts))
}

/// Median cost of one `Instant::now()` pair with nothing between them.
fn timer_overhead_ns() -> u64 {
    let mut samples: Vec<u64> = (0..10_001)
        .map(|_| {
            let start = Instant::now();
            start.elapsed().as_nanos() as u64
        })
        .collect();
    samples.sort_unstable();
    samples[samples.len() / 2]
}
