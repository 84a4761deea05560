//! `fincore bench tcp`: the whole server over TCP on 127.0.0.1 with one pipelined
//! client (the open-loop load tool with many sessions is `fincore load`). The client
//! keeps `--window` requests in flight: each is a resting buy far below the market,
//! then its cancel (by client order id), so the book stays small. A request's round
//! trip is from its send to the first execution report carrying its request id.
//! Without `--addr` a server is started in-process on an ephemeral port with the demo
//! configuration and a temporary data directory.

use anyhow::{Context, Result, bail};
use clap::Args;
use fincore_engine::{AccountId, OrderRef, Side};
use fincore_gateway::client::{Client, LoginOptions};
use fincore_gateway::config::ServerConfig;
use fincore_gateway::server::{self, ServerOptions};
use fincore_gateway::wire::{self, ClientMsg, ServerMsg};
use std::collections::HashMap;
use std::time::Instant;

#[derive(Args)]
pub struct TcpArgs {
    /// Requests to send (orders and cancels, alternating).
    #[arg(long, default_value_t = 200_000)]
    requests: u64,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 64)]
    window: usize,
    /// A running server (default: start one in-process).
    #[arg(long)]
    addr: Option<String>,
    /// User (demo: `load0`, account 10).
    #[arg(long, default_value = "load0")]
    user: String,
    /// Its account.
    #[arg(long, default_value_t = 10)]
    account: u32,
    /// Journal durability of the in-process server.
    #[arg(long, value_parser = ["process", "fsync"], default_value = "process")]
    durability: String,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
    /// Draw round-trip time by percentile as an SVG chart to this file.
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
}

pub fn run(args: &TcpArgs) -> Result<()> {
    if args.requests == 0 || args.window == 0 {
        bail!("--requests and --window must be positive");
    }
    let scratch = crate::bench_journal::scratch(None, "tcp")?;
    let mut in_process = None;
    let addr = match &args.addr {
        Some(addr) => addr.clone(),
        None => {
            let mut config = ServerConfig::demo();
            config.listen = "127.0.0.1:0".parse()?;
            config.data_dir = scratch.0.clone();
            // Measure the server, not its per-session rate limit.
            config.session.rate_per_sec = u32::MAX;
            config.session.burst = u32::MAX;
            if args.durability == "fsync" {
                config.durability = fincore_journal::Durability::Fsync;
            }
            let (handle, _) = server::start(&config, ServerOptions::default())?;
            let addr = handle.local_addr().to_string();
            in_process = Some(handle);
            addr
        }
    };
    let secret = format!("{}-secret", args.user);
    let options = LoginOptions { heartbeat_ms: 30_000, cancel_on_disconnect: true };
    let mut client = Client::connect(addr.as_str(), &args.user, &secret, options)
        .with_context(|| format!("logging in to {addr}"))?;
    let account = AccountId(args.account);
    // The lowest price the demo's band allows on BTC-USD (reference 60 000, 10 %):
    // far from any other order, so nothing trades.
    let order = client.limit_order(
        account,
        "BTC-USD",
        Side::Buy,
        "54000".parse()?,
        "0.0001".parse()?,
        1,
    )?;

    let mut histogram = crate::report::latency_histogram()?;
    // Replies come in request order, except the gateway's own refusals (rate limit),
    // which overtake the engine's: look requests up by id.
    let mut in_flight: HashMap<u64, Instant> = HashMap::with_capacity(args.window * 2);
    let (mut sent, mut answered, mut rejected) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    while answered < args.requests {
        while sent < args.requests && in_flight.len() < args.window {
            // Even requests place client order id k, odd ones cancel it.
            let coid = sent / 2 + 1;
            let message = if sent % 2 == 0 {
                let mut order = order;
                order.client_order_id = fincore_engine::ClientOrderId(coid);
                ClientMsg::NewOrder(order)
            } else {
                ClientMsg::Cancel(wire::Cancel {
                    account,
                    order: OrderRef::Client(fincore_engine::ClientOrderId(coid)),
                })
            };
            let request = client.queue(&message);
            in_flight.insert(request, Instant::now());
            sent += 1;
        }
        client.flush()?;
        let mut next = Some(client.recv()?);
        while let Some(received) = next.take() {
            next = client.recv_buffered()?;
            let request_id = match received.msg {
                ServerMsg::ExecReport(report) => {
                    if matches!(report.event, fincore_engine::Event::Rejected(_)) {
                        rejected += 1;
                    }
                    report.request_id
                }
                ServerMsg::SessionReject(reject) => {
                    rejected += 1;
                    reject.ref_request_id
                }
                _ => continue,
            };
            if let Some(sent_at) = in_flight.remove(&request_id) {
                histogram.saturating_record(sent_at.elapsed().as_nanos() as u64);
                answered += 1;
            }
        }
    }
    let elapsed = start.elapsed();
    client.logout()?;
    if let Some(handle) = in_process {
        handle.stop()?;
    }
    let rate = args.requests as f64 / elapsed.as_secs_f64();
    let p = |q: f64| histogram.value_at_quantile(q);
    println!(
        "tcp bench: {} requests, window {}, one session, durability {}",
        args.requests, args.window, args.durability
    );
    println!("  throughput   {rate:>12.0} requests/s, {rejected} rejected");
    println!(
        "  round trip ns p50={} p99={} p99.9={} max={}",
        p(0.5),
        p(0.99),
        p(0.999),
        histogram.max()
    );
    if let Some(path) = &args.plot {
        let title = format!(
            "fincore bench tcp: one session, window {}, {} requests, round trip",
            args.window, args.requests
        );
        crate::report::write_svg(&histogram, path, &title, "ns")?;
    }
    if args.json {
        println!(
            "{{\"requests\":{},\"window\":{},\"durability\":\"{}\",\"requests_per_sec\":{rate:.0},\"rejected\":{rejected},\"p50_ns\":{},\"p99_ns\":{},\"p999_ns\":{},\"max_ns\":{}}}",
            args.requests,
            args.window,
            args.durability,
            p(0.5),
            p(0.99),
            p(0.999),
            histogram.max()
        );
    }
    Ok(())
}
