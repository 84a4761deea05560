//! `fincore replay`: rebuild the state of a data directory (newest valid snapshot plus
//! the journal after it), optionally as of a past sequence or time, and report it.
//! Never modifies the directory.

use crate::format;
use crate::names;
use anyhow::{Context, Result, bail};
use clap::Args;
use fincore_engine::units::minor_to_decimal;
use fincore_engine::{AccountId, Engine, Event, Query, SYSTEM_USER};
use fincore_gateway::{ReplayBounds, Replayed, replay};
use std::path::PathBuf;

#[derive(Args)]
pub struct ReplayArgs {
    /// Data directory (as given to `fincore serve --data`).
    #[arg(long, default_value = "./fincore-data")]
    data: PathBuf,
    /// Stop after this sequence number (state as of that command; past the end of the
    /// journal, the state at its end, with a note on stderr).
    #[arg(long)]
    until_seq: Option<u64>,
    /// Stop before the first command received after this time, in nanoseconds since
    /// the Unix epoch.
    #[arg(long)]
    until_time: Option<u64>,
    /// Ignore snapshots and replay the whole journal.
    #[arg(long)]
    no_snapshot: bool,
    /// Print this instrument's book (by symbol) as of the end of the replay.
    #[arg(long)]
    book: Option<String>,
    /// Print this account's balances as of the end of the replay.
    #[arg(long)]
    account: Option<u32>,
    /// Check a `fincore load --ack-log` file against the journal (replays the whole
    /// journal; exits non-zero if any acknowledged command is missing or differs).
    #[arg(long)]
    check_acks: Option<PathBuf>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &ReplayArgs) -> Result<()> {
    if !args.data.is_dir() {
        bail!("{} is not a data directory", args.data.display());
    }
    if let Some(acks) = &args.check_acks {
        if args.until_seq.is_some() || args.until_time.is_some() {
            bail!("--check-acks checks the whole journal: no --until-seq or --until-time");
        }
        let report = crate::check_acks::check(&args.data, acks)?;
        println!(
            "acks: {} checked ({} refused before the journal): every acknowledged command is in the journal with its sequence and outcome",
            report.acks, report.session_refusals
        );
        println!("state_hash={:016x} seq={}", report.state_hash, report.seq);
        if args.json {
            println!(
                "{{\"acks\":{},\"session_refusals\":{},\"seq\":{},\"state_hash\":\"{:016x}\",\"ok\":true}}",
                report.acks, report.session_refusals, report.seq, report.state_hash
            );
        }
        return Ok(());
    }
    let bounds = ReplayBounds {
        until_seq: args.until_seq,
        until_time_ns: args.until_time,
        no_snapshot: args.no_snapshot,
    };
    let replayed =
        replay(&args.data, bounds).with_context(|| format!("replaying {}", args.data.display()))?;
    print_summary(&replayed);
    let last_seq = replayed.engine.last_seq();
    if let Some(until_seq) = args.until_seq.filter(|&until_seq| until_seq > last_seq) {
        // The state printed is the journal's last, not the one asked for: say so, on
        // stderr so that the report's lines stay as they are.
        eprintln!("the journal ends at seq {last_seq} (asked for {until_seq})");
    }
    if let Some(symbol) = &args.book {
        print_book(&replayed.engine, symbol)?;
    }
    if let Some(account) = args.account {
        print_account(&replayed.engine, AccountId(account))?;
    }
    let engine = &replayed.engine;
    let rate = commands_per_sec(&replayed);
    println!("state_hash={:016x} seq={}", engine.state_hash(), engine.last_seq());
    if args.json {
        println!(
            "{{\"records\":{},\"seq\":{},\"time_ns\":{},\"commands_per_sec\":{rate:.0},\"elapsed_ms\":{:.3},\"snapshot_seq\":{},\"open_orders\":{},\"torn_tail\":{},\"state_hash\":\"{:016x}\"}}",
            replayed.records,
            engine.last_seq(),
            engine.time_ns(),
            replayed.elapsed.as_secs_f64() * 1e3,
            replayed.snapshot.as_ref().map_or("null".into(), |(seq, _)| seq.to_string()),
            engine.live_orders(),
            replayed.torn_tail.is_some(),
            engine.state_hash()
        );
    }
    Ok(())
}

fn commands_per_sec(replayed: &Replayed) -> f64 {
    let seconds = replayed.elapsed.as_secs_f64();
    if seconds > 0.0 { replayed.records as f64 / seconds } else { 0.0 }
}

fn print_summary(replayed: &Replayed) {
    match &replayed.snapshot {
        Some((seq, path)) => println!("started from snapshot at seq {seq} ({})", path.display()),
        None => println!("started from an empty state (no usable snapshot)"),
    }
    for (path, why) in &replayed.skipped_snapshots {
        println!("skipped snapshot {}: {why}", path.display());
    }
    let rate = commands_per_sec(replayed);
    let seconds = replayed.elapsed.as_secs_f64();
    println!(
        "replayed {} journal records in {seconds:.3} s ({rate:.0} commands/s)",
        replayed.records
    );
    if let Some(torn) = &replayed.torn_tail {
        println!(
            "stopped at a torn last record: {} at byte {}: {}",
            torn.path.display(),
            torn.offset,
            torn.reason
        );
    }
    let engine = &replayed.engine;
    println!(
        "seq {} time_ns {}; {} open orders",
        engine.last_seq(),
        engine.time_ns(),
        engine.live_orders()
    );
    for totals in engine.asset_totals() {
        let scale = totals.scale;
        let decimal =
            |v: i128| minor_to_decimal(v.clamp(i64::MIN as i128, i64::MAX as i128) as i64, scale);
        println!(
            "  {:<8} supply {}  available {}  held {}  pending {}",
            totals.symbol.as_str(),
            decimal(totals.supply.into()),
            decimal(totals.available),
            decimal(totals.held),
            decimal(totals.pending)
        );
    }
}

fn print_book(engine: &Engine, symbol: &str) -> Result<()> {
    let Some(instrument) = engine.instrument_by_symbol(symbol) else {
        bail!("no instrument with symbol {symbol}");
    };
    let spec = instrument.spec;
    let mut events = Vec::new();
    let query =
        Query::Depth { instrument: spec.instrument, levels: fincore_engine::DEPTH_LEVELS_MAX };
    engine.query(SYSTEM_USER, &query, &mut events);
    let last_price = match instrument.last_price {
        Some(price) => format::price(&spec, price).to_string(),
        None => "none (no trade yet)".to_string(),
    };
    let status = names::instrument_status(instrument.status);
    println!("book {symbol} ({status}), last price {last_price}");
    for event in events {
        if let Event::DepthLevel(level) = event {
            let (price, qty) = (format::price(&spec, level.price), format::qty(&spec, level.qty));
            let side = names::book_side(level.side);
            println!("  {side} {price} x {qty} ({})", format::count(level.orders, "order"));
        }
    }
    Ok(())
}

fn print_account(engine: &Engine, account: AccountId) -> Result<()> {
    let mut events = Vec::new();
    engine.query(SYSTEM_USER, &Query::Balances { account }, &mut events);
    println!("account {}", account.0);
    for event in events {
        match event {
            Event::BalanceInfo(b) => {
                let scale = engine.asset_info(b.asset).map_or(0, |a| a.scale);
                let symbol =
                    engine.asset_info(b.asset).map(|a| a.symbol.to_string()).unwrap_or_default();
                let decimal = |amount| minor_to_decimal(amount, scale);
                let (available, held) = (decimal(b.available), decimal(b.held));
                let pending = decimal(b.pending);
                println!("  {symbol:<8} available {available}  held {held}  pending {pending}");
            }
            Event::Rejected(r) => bail!("account {}: {}", account.0, r.reason),
            _ => {}
        }
    }
    Ok(())
}
