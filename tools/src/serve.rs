//! `fincore serve`: run the server until SIGINT or SIGTERM.

use anyhow::Context;
use clap::Args;
use fincore_gateway::config::{DEMO_SECRETS, ServerConfig};
use fincore_gateway::pipeline::{PipelineConfig, WaitMode};
use fincore_gateway::server::{self, ServerError, ServerOptions};
use fincore_journal::Durability;
use signal_hook::consts::{SIGINT, SIGTERM};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Arguments of `fincore serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// Configuration file (TOML); without it, the built-in demo configuration.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Listen address (overrides the configuration's `listen`).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Data directory (overrides the configuration's `data_dir`).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Journal durability (overrides the configuration's `durability`).
    #[arg(long, value_parser = ["process", "fsync"])]
    durability: Option<String>,
    /// The engine thread spins instead of parking when idle (dedicated cores only).
    #[arg(long)]
    busy_spin: bool,
    /// Serve Prometheus metrics over HTTP at ADDR (`GET /metrics`), e.g.
    /// 127.0.0.1:9100; off by default (docs/OPERATIONS.md).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Log format: human-readable `text`, or `json` (one object per line).
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
    /// Same as `--log-format json`.
    #[arg(long, hide = true)]
    log_json: bool,
    /// Log level: `info` (default: lifecycle, admin actions, recovery, snapshots) or
    /// `debug` (also every reject and session message refused), `warn`, `error`.
    #[arg(long, value_parser = ["error", "warn", "info", "debug", "trace"], default_value = "info")]
    log_level: String,
    /// Testing aid: append to FILE each journal sequence known to be on the device,
    /// so that a crash test can cut the journal back to what an OS crash leaves
    /// (docs/TESTING.md).
    #[arg(long, value_name = "FILE")]
    synced_log: Option<PathBuf>,
}

/// Installs the log subscriber: human-readable by default, JSON with `json`, at
/// `level` (`RUST_LOG`-style per-module filtering is not wired).
fn init_logging(json: bool, level: &str) {
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let level = level.parse().unwrap_or(tracing::Level::INFO);
    let builder =
        tracing_subscriber::fmt().with_max_level(level).with_target(false).with_ansi(ansi);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    init_logging(args.log_json || args.log_format == "json", &args.log_level);
    let mut config = match &args.config {
        Some(path) => ServerConfig::load(path)?,
        None => ServerConfig::demo(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(data) = &args.data {
        config.data_dir = data.clone();
    }
    config.synced_log.clone_from(&args.synced_log);
    match args.durability.as_deref() {
        Some("fsync") => config.durability = Durability::Fsync,
        Some(_) => config.durability = Durability::Process,
        None => {}
    }
    if args.config.is_none() {
        tracing::info!("no --config: using the built-in demo configuration");
        for (user, secret) in DEMO_SECRETS {
            tracing::info!(user, secret, "demo user");
        }
    }
    let wait = if args.busy_spin { WaitMode::BusySpin } else { WaitMode::Adaptive };
    let options = ServerOptions {
        pipeline: PipelineConfig { wait, ..PipelineConfig::default() },
        metrics: args.metrics,
    };
    // Handlers first: a SIGINT that arrives while the server starts (or right after it
    // says it is listening) is held and then stops it cleanly, instead of killing it.
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("installing signal handlers")?;
    let (handle, started) = server::start(&config, options).map_err(|e| match e {
        // Nothing was opened: the data directory is beside the point.
        ServerError::Bind(..) => anyhow::Error::new(e),
        _ => anyhow::Error::new(e)
            .context(format!("starting on data directory {}", config.data_dir.display())),
    })?;
    let report = &started.report;
    tracing::info!(
        data = %config.data_dir.display(),
        snapshot_seq = report.snapshot_seq.unwrap_or(0),
        replayed = report.replayed,
        setup_applied = report.setup_applied,
        setup_differs = report.setup_differs.is_some(),
        torn_tail_cut = report.recovery.torn_tail.is_some(),
        elapsed_ms = started.elapsed.as_secs_f64() * 1e3,
        state_hash = %format!("{:016x}", started.state_hash),
        seq = started.seq,
        "recovered"
    );
    for (path, why) in &report.skipped_snapshots {
        tracing::warn!(snapshot = %path.display(), why, "snapshot skipped");
    }
    tracing::info!(
        listen = %handle.local_addr(),
        durability = %crate::names::durability(config.durability),
        wait = %crate::names::wait_mode(wait),
        "listening"
    );
    let stop = handle.stop_signal();
    let signal_handle = signals.handle();
    std::thread::Builder::new()
        .name("fincore-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                tracing::info!(signal, "stopping");
                stop.stop();
            }
        })
        .context("starting the signal thread")?;
    let exit = handle.wait().context("server failed")?;
    signal_handle.close();
    if let Some(error) = &exit.engine.snapshot_error {
        tracing::warn!(error, "no stop snapshot; the next start replays the journal");
    }
    let snapshot = exit.engine.snapshot.as_ref().map(|p| p.display().to_string());
    if exit.journal_failed {
        tracing::error!(
            sessions_served = exit.sessions,
            state_hash = %format!("{:016x}", exit.engine.state_hash),
            seq = exit.engine.seq,
            "stopped: the journal failed; everything up to seq is journaled, later \
             commands were refused (916); fix the device or free space, then start again"
        );
        anyhow::bail!("stopped because the journal failed (see the log above)");
    }
    tracing::info!(
        sessions_served = exit.sessions,
        snapshot = snapshot.as_deref().unwrap_or("none"),
        state_hash = %format!("{:016x}", exit.engine.state_hash),
        seq = exit.engine.seq,
        "stopped cleanly"
    );
    Ok(())
}
