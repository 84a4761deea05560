//! `fincore bench pipeline`: the server's pipeline in one process, without sockets:
//! this thread plays the gateway (publishes commands into the disruptor ring in
//! batches, drains the outbound queue), the engine thread journals (mmap, `process`
//! durability unless `--durability fsync`) and applies each command and pushes its
//! events back. Latency is measured per command from the moment it was due (its
//! scheduled send time at `--rate N`, or its publish time at `--rate max`) to the
//! moment its first event came out of the outbound queue, so a stalled pipeline is
//! charged for every command that waited (no coordinated omission).

use anyhow::{Context, Result, bail};
use clap::Args;
use fincore_engine::CommandBody;
use fincore_gateway::exporter::Exporter;
use fincore_gateway::metrics::Metrics;
use fincore_gateway::pipeline::{Inbound, InboundBody, Pipeline, PipelineConfig, WaitMode};
use fincore_gateway::{Runner, RunnerConfig};
use fincore_journal::Durability;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(Args)]
pub struct PipelineArgs {
    /// Workload mix (as `bench engine`).
    #[arg(long, value_enum, default_value = "trading")]
    mix: crate::bench::Mix,
    /// Commands to send (after the setup).
    #[arg(long, default_value_t = 2_000_000)]
    ops: usize,
    /// Offered rate in commands/s, or `max` (as fast as the pipeline takes them).
    #[arg(long, default_value = "max")]
    rate: String,
    /// PRNG seed of the workload.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Instruments the orders spread over.
    #[arg(long, default_value_t = 1)]
    instruments: u16,
    /// Trading accounts.
    #[arg(long, default_value_t = 64)]
    traders: u32,
    /// Commands published per ring batch at most.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Journal durability mode.
    #[arg(long, value_parser = ["process", "fsync"], default_value = "process")]
    durability: String,
    /// The engine thread spins instead of parking when idle.
    #[arg(long)]
    busy_spin: bool,
    /// Keep the server's metrics as `serve --metrics` does (counters, sampled stage
    /// latency), serve them on an ephemeral port and scrape them once a second.
    #[arg(long)]
    metrics: bool,
    /// Directory for the temporary data directory (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
    /// Write the latency distribution (.hgrm) to this file.
    #[arg(long)]
    hgrm: Option<PathBuf>,
    /// Draw latency by percentile as an SVG chart to this file.
    #[arg(long)]
    plot: Option<PathBuf>,
}

pub fn run(args: &PipelineArgs) -> Result<()> {
    if args.ops == 0 || args.batch == 0 || args.instruments == 0 || args.traders < 2 {
        bail!("--ops, --batch and --instruments must be positive, --traders at least 2");
    }
    let rate: Option<f64> = match args.rate.as_str() {
        "max" => None,
        text => {
            let rate: f64 = text.parse().with_context(|| format!("--rate {text}"))?;
            if rate.is_nan() || rate <= 0.0 {
                bail!("--rate must be positive or `max`");
            }
            Some(rate)
        }
    };
    eprintln!("generating {} {} commands (seed {})...", args.ops, args.mix.name(), args.seed);
    let workload =
        crate::bench::workload(args.mix, args.ops, args.seed, args.instruments, args.traders);
    let scratch = crate::bench_journal::scratch(args.dir.as_deref(), "pipeline")?;
    let dir = scratch.0.clone();
    let durability =
        if args.durability == "fsync" { Durability::Fsync } else { Durability::Process };
    let setup: Vec<CommandBody> = workload.setup.iter().map(|c| c.body).collect();
    let config = RunnerConfig { durability, ..RunnerConfig::new(&dir) };
    let (runner, _) = Runner::open(&config, &setup)?;
    let first_seq = runner.engine().last_seq() + 1;
    let wait = if args.busy_spin { WaitMode::BusySpin } else { WaitMode::Adaptive };
    let pipeline_config =
        PipelineConfig { wait, snapshot_on_stop: false, ..PipelineConfig::default() };
    let metrics = args.metrics.then(|| Arc::new(Metrics::new()));
    let durability_handle = runner.journal().durability_handle();
    let mut pipeline =
        Pipeline::start_with_metrics(runner, pipeline_config, metrics.clone(), || {})?;
    let scraper = match &metrics {
        Some(metrics) => Some(crate::stats::Scraper::start(Exporter::start(
            std::net::TcpListener::bind("127.0.0.1:0")?,
            Arc::clone(metrics),
            durability_handle,
        )?)?),
        None => None,
    };
    let mut written = Vec::new();

    let n = workload.commands.len();
    let wall_start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // Written now, so that its pages are not faulted in during the measurement.
    let mut due_ns: Vec<u64> = vec![u64::MAX; n];
    let mut histogram = crate::report::latency_histogram()?;
    let mut pending: VecDeque<Inbound> = VecDeque::with_capacity(args.batch);
    let mut sent = 0usize;
    let mut answered = 0usize;
    let mut events = 0u64;
    let start = Instant::now();
    let since = |t: Instant| t.duration_since(start).as_nanos() as u64;
    while answered < n {
        // Offer what is due (all of it at --rate max), one batch at a time. The clock
        // is read only when there is room to offer more.
        let room = sent < n && pending.len() < args.batch;
        let now_ns = if room { since(Instant::now()) } else { 0 };
        while room && sent < n && pending.len() < args.batch {
            let due = match rate {
                Some(rate) => (sent as f64 * 1e9 / rate) as u64,
                None => now_ns,
            };
            if due > now_ns {
                break;
            }
            let command = &workload.commands[sent];
            due_ns[sent] = due;
            pending.push_back(Inbound {
                session: 1,
                user: command.user,
                request_id: sent as u64,
                // The workload's clock starts at 0; the server's is the wall clock,
                // which the engine thread also reads to expire authorizations when
                // idle, so the stamps are moved to now (same spacing).
                time_ns: wall_start + command.time_ns,
                peer: 0,
                body: InboundBody::Command(command.body),
                trace: pipeline.trace_next(),
            });
            sent += 1;
        }
        pipeline.publish(&mut pending);
        // Items are read in place in the ring. One clock read per drain, at its first
        // answer: every command answered in that drain gets that time.
        let mut drained_ns = None;
        let drained = pipeline.drain_with(1024, |item| {
            events += 1;
            if item.trace.sampled() {
                written.push(item.trace);
            }
            let index = (item.journal_seq - first_seq) as usize;
            // The first event of command `index` answers it; events of one command
            // come out together and in order.
            if index == answered {
                let now = *drained_ns.get_or_insert_with(|| since(Instant::now()));
                histogram.saturating_record(now.saturating_sub(due_ns[index]));
                answered += 1;
            }
        }) > 0;
        // As the gateway does once the replies are on their sockets.
        for trace in written.drain(..) {
            pipeline.written(trace);
        }
        if !drained && pending.is_empty() && rate.is_some() {
            std::thread::yield_now();
        }
    }
    let elapsed = start.elapsed();
    if pipeline.failed() {
        bail!("the engine thread could not journal a command");
    }
    let exit = pipeline.shutdown()?;
    let scrapes = scraper.map(crate::stats::Scraper::stop).transpose()?;
    // Live state against replayed state: the whole journal this run wrote (setup
    // included, and no snapshot even if one were there), replayed into a fresh engine,
    // must reach the state the engine thread stopped in (not timed).
    let bounds = fincore_gateway::ReplayBounds { no_snapshot: true, ..Default::default() };
    let replayed = fincore_gateway::replay(&dir, bounds).context("replaying the run's journal")?;
    // Without a snapshot the replay starts at sequence 1, so every record applied means
    // it ended at the live sequence.
    let replay_hash = replayed.engine.state_hash();
    let whole = replayed.records == exit.seq && replayed.torn_tail.is_none();
    if !whole || replay_hash != exit.state_hash {
        let kept = scratch.keep();
        bail!(
            "the live and replayed states differ: the engine thread stopped at seq {} with \
             state hash {:016x}; the replay applied {} records{} and reached \
             {replay_hash:016x}. The run's data directory is kept: {}",
            exit.seq,
            exit.state_hash,
            replayed.records,
            match &replayed.torn_tail {
                Some(torn) => format!(" (stopped at a torn record: {})", torn.reason),
                None => String::new(),
            },
            kept.display()
        );
    }
    let ops_per_sec = n as f64 / elapsed.as_secs_f64();
    let p = |q: f64| histogram.value_at_quantile(q);
    println!(
        "pipeline bench: mix={} ops={} rate={} batch={} durability={} wait={} instruments={}",
        args.mix.name(),
        n,
        args.rate,
        args.batch,
        args.durability,
        crate::names::wait_mode(wait),
        args.instruments
    );
    println!(
        "  throughput   {ops_per_sec:>12.0} commands/s ({:.1} ns/command), {events} events",
        elapsed.as_nanos() as f64 / n as f64
    );
    println!(
        "  latency ns   p50={} p99={} p99.9={} max={} (due -> first event out)",
        p(0.5),
        p(0.99),
        p(0.999),
        histogram.max()
    );
    println!(
        "  state_hash   {:016x} seq={} (the replay of the journal agrees: {} records in {:.2} s)",
        exit.state_hash,
        exit.seq,
        replayed.records,
        replayed.elapsed.as_secs_f64()
    );
    if let Some(scrapes) = scrapes {
        println!("  metrics      on: {scrapes} scrapes of /metrics, one a second");
    }
    if let Some(path) = &args.hgrm {
        crate::report::write_hgrm(&histogram, path, "ns")?;
    }
    if let Some(path) = &args.plot {
        let title =
            format!("fincore bench pipeline: {n} commands, rate {}, due -> first event", args.rate);
        crate::report::write_svg(&histogram, path, &title, "ns")?;
    }
    if args.json {
        println!(
            "{{\"mix\":\"{}\",\"ops\":{n},\"rate\":\"{}\",\"durability\":\"{}\",\"wait\":\"{}\",\"metrics\":{},\"ops_per_sec\":{ops_per_sec:.0},\"p50_ns\":{},\"p99_ns\":{},\"p999_ns\":{},\"max_ns\":{},\"events\":{events},\"state_hash\":\"{:016x}\",\"replay_records\":{}}}",
            args.mix.name(),
            args.rate,
            args.durability,
            crate::names::wait_mode(wait),
            args.metrics,
            p(0.5),
            p(0.99),
            p(0.999),
            histogram.max(),
            exit.state_hash,
            replayed.records
        );
    }
    Ok(())
}
