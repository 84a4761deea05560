//! `fincore bench engine`: the engine alone, single-threaded, on a seeded in-memory
//! workload with risk checks and settlement on.
//!
//! Two passes over the same stream on fresh engines: the first times the whole stream
//! (throughput, no per-command clock reads); the second reads the clock around every
//! command for the latency histogram. The cost of the clock reads themselves is
//! measured and printed as the harness baseline, so a reader can subtract it.

use crate::report::latency_histogram;
use anyhow::{Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use fincore_engine::testkit::{
    PaymentsMix, TradingMix, Workload, payments_workload, trading_workload,
};
use fincore_engine::{CommandKind, Engine, EngineLimits, Event, PaymentAction};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
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
    /// The machine's own floor: clock stalls on a spinning thread, and a loopback TCP
    /// echo at a fixed rate (no fincore code on the path).
    Floor(crate::bench_floor::FloorArgs),
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
    /// Do not size the payment table and the velocity log for the run
    /// (`payments_expected` = the number of commands): measure them growing, page faults
    /// included, from the default size.
    #[arg(long)]
    no_presize: bool,
    /// Throughput passes, each on a fresh engine: the median is reported, with the
    /// range (on a noisy machine, compare medians of several rounds).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
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
        Target::Floor(args) => crate::bench_floor::run(&args),
    }
}

fn bench_engine(args: &EngineArgs) -> Result<()> {
    if args.ops == 0 || args.instruments == 0 || args.traders < 2 || args.rounds == 0 {
        bail!("--ops, --instruments and --rounds must be positive, --traders at least 2");
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
    let mut rates = Vec::with_capacity(args.rounds);
    let (mut events, mut hash) = (0, None);
    for _ in 0..args.rounds {
        let (elapsed_ns, pass_events, pass_hash) = throughput_pass(&workload, limits);
        if hash.is_some_and(|h| h != pass_hash) {
            bail!("two throughput passes reached different states: determinism is broken");
        }
        (events, hash) = (pass_events, Some(pass_hash));
        rates.push(args.ops as f64 / (elapsed_ns as f64 / 1e9));
    }
    let hash = hash.expect("at least one round");
    rates.sort_by(f64::total_cmp);
    let ops_per_sec = median(&rates);
    let (slowest, fastest) = (rates[0], rates[rates.len() - 1]);
    let (histogram, timer_ns, counts, classes) = latency_pass(&workload, limits, hash)?;
    let fills = counts.fills;
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
        "  throughput   {:>12.0} commands/s ({:.1} ns/command){}",
        ops_per_sec,
        1e9 / ops_per_sec,
        if args.rounds > 1 {
            format!(", median of {} rounds ({slowest:.0} - {fastest:.0})", args.rounds)
        } else {
            String::new()
        }
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
    let rows = class_rows(&classes, p(0.99));
    print_classes(&rows);
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
            "{{\"mix\":\"{}\",\"presized\":{},\"ops\":{},\"instruments\":{},\"seed\":{},\"rounds\":{},\"ops_per_sec\":{:.0},\"ops_per_sec_min\":{slowest:.0},\"ops_per_sec_max\":{fastest:.0},\"p50_ns\":{},\"p99_ns\":{},\"p999_ns\":{},\"max_ns\":{},\"timer_overhead_ns\":{},\"fills\":{},\"payments\":{},\"rejects\":{},\"events\":{},\"classes\":{},\"state_hash\":\"{:016x}\"}}",
            args.mix.name(),
            !args.no_presize,
            args.ops,
            args.instruments,
            args.seed,
            args.rounds,
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
            classes_json(&rows),
            hash
        );
    }
    Ok(())
}

/// The median of sorted values (the mean of the middle two for an even count).
fn median(sorted: &[f64]) -> f64 {
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 { sorted[mid] } else { (sorted[mid - 1] + sorted[mid]) / 2.0 }
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
) -> Result<(Histogram<u64>, u64, Counts, Classes)> {
    let mut engine = prepared_engine(workload, limits);
    let mut events: Vec<Event> = Vec::with_capacity(1024);
    let mut histogram = latency_histogram()?;
    let mut counts = Counts::default();
    let mut classes = Classes::new();
    for command in &workload.commands {
        events.clear();
        let start = Instant::now();
        engine.apply(command, &mut events);
        let took = start.elapsed().as_nanos() as u64;
        histogram.saturating_record(took);
        // One pass over the events for the tallies and the command's class.
        let (mut fills, mut rejected) = (0, false);
        for event in &events {
            match event {
                Event::Fill(_) => fills += 1,
                Event::Rejected(_) => rejected = true,
                Event::Payment { action: PaymentAction::Created, .. } => counts.payments += 1,
                Event::Payment { action: PaymentAction::Captured, .. } => counts.captures += 1,
                _ => {}
            }
        }
        counts.fills += fills as u64;
        counts.rejects += u64::from(rejected);
        let class = Class::new(command.body.kind(), rejected, fills);
        let class_histogram = match classes.entry(class) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => entry.insert(latency_histogram()?),
        };
        class_histogram.saturating_record(took);
    }
    if engine.state_hash() != expected_hash {
        bail!("the two passes reached different states: determinism is broken");
    }
    Ok((histogram, timer_overhead_ns(), counts, classes))
}

/// Per-command latency by [`Class`].
type Classes = BTreeMap<Class, Histogram<u64>>;

/// What a measured command was, for the latency breakdown: its kind (sorted in the
/// order of [`CommandKind`]), whether it was rejected, and for a new order or an amend
/// how many fills it made (bucketed 0, 1, 2-3, 4 or more).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Class {
    kind: CommandKind,
    rejected: bool,
    fills: u8,
}

impl Class {
    fn new(kind: CommandKind, rejected: bool, fills: usize) -> Class {
        let fills = match fills {
            _ if !Class::trades(kind) || rejected => 0,
            0..=1 => fills as u8,
            2..=3 => 2,
            _ => 4,
        };
        Class { kind, rejected, fills }
    }

    /// Commands whose fills are counted.
    fn trades(kind: CommandKind) -> bool {
        matches!(kind, CommandKind::NewOrder | CommandKind::Amend)
    }

    /// E.g. `cancel`, `new_order, 2-3 fills`, `transfer (rejected)`: the command's
    /// name as the journal and `fincore client` print it.
    fn label(self) -> String {
        let outcome = match (self.rejected, self.fills) {
            (true, _) => " (rejected)",
            _ if !Class::trades(self.kind) => "",
            (false, 0) => ", no fill",
            (false, 1) => ", 1 fill",
            (false, 2) => ", 2-3 fills",
            (false, _) => ", 4+ fills",
        };
        format!("{}{outcome}", self.kind.name())
    }
}

/// One row of the latency breakdown.
struct ClassRow {
    label: String,
    count: u64,
    p50: u64,
    p99: u64,
    p999: u64,
    /// Percent of the commands at or above the overall p99 that are of this class.
    tail_percent: f64,
}

/// The breakdown's rows, in class order.
fn class_rows(classes: &Classes, overall_p99: u64) -> Vec<ClassRow> {
    let in_tail = |h: &Histogram<u64>| h.count_between(overall_p99, u64::MAX);
    let tail_total = classes.values().map(in_tail).sum::<u64>().max(1);
    classes
        .iter()
        .map(|(class, h)| ClassRow {
            label: class.label(),
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            tail_percent: 100.0 * in_tail(h) as f64 / tail_total as f64,
        })
        .collect()
}

/// The breakdown as a table: which commands make the tail.
fn print_classes(rows: &[ClassRow]) {
    println!("  latency by command, ns (tail: share of the commands at or above the p99)");
    let (c, n, p50, p99, p999, tail) = ("command", "count", "p50", "p99", "p99.9", "tail");
    println!("    {c:<26} {n:>9} {p50:>7} {p99:>7} {p999:>7} {tail:>7}");
    for row in rows {
        println!(
            "    {:<26} {:>9} {:>7} {:>7} {:>7} {:>6.1}%",
            row.label, row.count, row.p50, row.p99, row.p999, row.tail_percent
        );
    }
}

/// The breakdown as a JSON array (labels are plain ASCII without quotes).
fn classes_json(rows: &[ClassRow]) -> String {
    let items: Vec<String> = rows
        .iter()
        .map(|row| {
            format!(
                "{{\"command\":\"{}\",\"count\":{},\"p50_ns\":{},\"p99_ns\":{},\"p999_ns\":{},\"tail_percent\":{:.1}}}",
                row.label, row.count, row.p50, row.p99, row.p999, row.tail_percent
            )
        })
        .collect();
    format!("[{}]", items.join(","))
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

#[cfg(test)]
mod tests {
    use super::{Class, CommandKind, median};

    #[test]
    fn commands_are_classed_by_kind_outcome_and_fills() {
        let label = |kind, rejected, fills| Class::new(kind, rejected, fills).label();
        assert_eq!(label(CommandKind::NewOrder, false, 0), "new_order, no fill");
        assert_eq!(label(CommandKind::NewOrder, false, 1), "new_order, 1 fill");
        assert_eq!(label(CommandKind::Amend, false, 3), "amend, 2-3 fills");
        assert_eq!(label(CommandKind::NewOrder, false, 4), "new_order, 4+ fills");
        assert_eq!(label(CommandKind::NewOrder, false, 40), "new_order, 4+ fills");
        assert_eq!(label(CommandKind::NewOrder, true, 0), "new_order (rejected)");
        assert_eq!(label(CommandKind::Cancel, false, 0), "cancel");
        assert_eq!(label(CommandKind::Transfer, true, 0), "transfer (rejected)");
        // One class per bucket, whatever the exact count; kinds sort in enum order.
        let order = |kind, fills| Class::new(kind, false, fills);
        assert_eq!(order(CommandKind::NewOrder, 5), order(CommandKind::NewOrder, 9));
        assert_ne!(order(CommandKind::NewOrder, 3), order(CommandKind::NewOrder, 4));
        assert!(order(CommandKind::NewOrder, 9) < order(CommandKind::Cancel, 0));
    }

    #[test]
    fn median_is_the_middle_value_or_the_mean_of_the_middle_two() {
        assert_eq!(median(&[5.0]), 5.0);
        assert_eq!(median(&[1.0, 2.0, 9.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 9.0]), 3.0);
    }
}
