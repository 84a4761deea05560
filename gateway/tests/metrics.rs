//! The metrics endpoint (`ServerOptions::metrics`, `fincore serve --metrics ADDR`): after
//! a known workload over TCP every counter has its exact value; the endpoint keeps
//! answering while the server is under load; without the option there is no endpoint.

mod common;

use common::{BTC_USD, limit, request};
use fincore_engine::{
    AccountId, Authorize, ClientOrderId, ClientPaymentId, OrderRef, PaymentRef, Side, Transfer,
};
use fincore_gateway::client::Received;
use fincore_gateway::server::{self, ServerOptions};
use fincore_gateway::wire::{Cancel, ClientMsg, ServerMsg, SetAccountBlocked, Void};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const ALICE: AccountId = AccountId(2);
const BOB: AccountId = AccountId(3);

/// One scrape of `/metrics`: series (`name{labels}`) to value.
fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("application/openmetrics-text"), "{head}");
    assert!(body.ends_with("# EOF\n"), "the exposition is complete");
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            (series.to_string(), value.parse().unwrap())
        })
        .collect()
}

fn start_with_metrics(dir: &std::path::Path) -> (server::ServerHandle, SocketAddr) {
    let options =
        ServerOptions { metrics: Some("127.0.0.1:0".parse().unwrap()), ..Default::default() };
    let (handle, _) = server::start(&common::config(dir), options).unwrap();
    let metrics = handle.metrics_addr().expect("the endpoint is on");
    (handle, metrics)
}

#[test]
fn counters_have_exact_values_after_a_known_workload() {
    let dir = tempfile::tempdir().unwrap();
    let (server, metrics) = start_with_metrics(dir.path());
    let before = scrape(metrics);
    assert_eq!(before["fincore_journal_records_total"], 0.0, "the setup is not counted");
    let setup_seq = before["fincore_journal_seq"];
    assert_eq!(setup_seq, 0.0, "nothing journaled through the pipeline yet");

    let mut alice = common::login(server.local_addr(), "alice");
    let mut bob = common::login(server.local_addr(), "bob");
    // 40 asks at 60 000.00 from alice, each taken by one of 40 bids from bob: 40 fills
    // of 0.0001 BTC; then 20 bids from alice that rest below the market.
    for i in 0..40 {
        request(&mut alice, &limit(2, BTC_USD, Side::Sell, 6_000_000, 1, 1_000 + i).into());
    }
    for i in 0..40 {
        request(&mut bob, &limit(3, BTC_USD, Side::Buy, 6_000_000, 1, 2_000 + i).into());
    }
    for i in 0..20 {
        request(
            &mut alice,
            &limit(2, BTC_USD, Side::Buy, 5_990_000 - i as i64, 1, 3_000 + i).into(),
        );
    }
    // Three rejects: two orders of zero quantity, a cancel of an order that does not
    // exist.
    request(&mut alice, &limit(2, BTC_USD, Side::Buy, 5_990_000, 0, 4_000).into());
    request(&mut bob, &limit(3, BTC_USD, Side::Sell, 6_010_000, 0, 4_001).into());
    let cancel = Cancel { account: BOB, order: OrderRef::Client(ClientOrderId(999_999)) };
    request(&mut bob, &ClientMsg::Cancel(cancel));
    // Two session rejects: admin messages from a trader (refused by the gateway, never
    // journaled, not among the command rejects).
    for blocked in [true, false] {
        let (_, replies) = request(
            &mut alice,
            &ClientMsg::SetAccountBlocked(SetAccountBlocked { account: BOB, blocked }),
        );
        assert!(matches!(replies[..], [Received { msg: ServerMsg::SessionReject(_), .. }]));
    }
    let _ = ALICE;

    let deadline = Instant::now() + Duration::from_secs(10);
    // Resting orders are refreshed, and each thread hands over its latency samples,
    // when the engine thread goes idle or the gateway's 50 ms timer runs.
    let settled = |m: &BTreeMap<String, f64>| {
        let stage =
            |s: &str| m.get(&format!("fincore_stage_latency_seconds_count{{stage=\"{s}\"}}"));
        m.get("fincore_resting_orders{instrument=\"BTC-USD\"}") == Some(&20.0)
            && stage("total") >= stage("engine_apply")
    };
    let after = loop {
        let after = scrape(metrics);
        if settled(&after) || Instant::now() > deadline {
            break after;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let value = |series: &str| after.get(series).copied().unwrap_or(f64::NAN);
    assert_eq!(value("fincore_commands_total{kind=\"new_order\",outcome=\"accepted\"}"), 100.0);
    assert_eq!(value("fincore_commands_total{kind=\"new_order\",outcome=\"rejected\"}"), 2.0);
    assert_eq!(value("fincore_commands_total{kind=\"cancel\",outcome=\"rejected\"}"), 1.0);
    assert_eq!(value("fincore_rejects_total{reason=\"QtyNotPositive\",code=\"403\"}"), 2.0);
    assert_eq!(value("fincore_rejects_total{reason=\"UnknownOrder\",code=\"700\"}"), 1.0);
    let rejects: f64 =
        after.iter().filter(|(k, _)| k.starts_with("fincore_rejects_total")).map(|(_, v)| v).sum();
    assert_eq!(rejects, 3.0);
    let session_rejects = "fincore_session_rejects_total{reason=\"NotAdmin\",code=\"101\"}";
    assert_eq!(value(session_rejects), 2.0);
    assert_eq!(value("fincore_fills_total"), 40.0);
    assert_eq!(value("fincore_traded_lots_total{instrument=\"BTC-USD\"}"), 40.0);
    assert_eq!(value("fincore_resting_orders{instrument=\"BTC-USD\"}"), 20.0);
    assert_eq!(value("fincore_journal_records_total"), 103.0);
    assert_eq!(value("fincore_journal_seq") - setup_seq, 103.0 + common::SETUP_SEQ as f64);
    assert!(value("fincore_journal_bytes_total") >= 103.0 * 48.0);
    assert_eq!(value("fincore_journal_durable_seq"), value("fincore_journal_seq"));
    assert_eq!(value("fincore_logins_total{outcome=\"ok\"}"), 2.0);
    assert_eq!(value("fincore_logins_total{outcome=\"failed\"}"), 0.0);
    assert_eq!(value("fincore_sessions_open"), 2.0);
    assert_eq!(value("fincore_connections_open"), 2.0);
    assert_eq!(value("fincore_inbound_ring_occupancy"), 0.0);
    // One message in 64 is traced: the 103 commands and the test's queries give a
    // few samples, and each sampled command passes every engine-side stage.
    let count =
        |stage: &str| value(&format!("fincore_stage_latency_seconds_count{{stage=\"{stage}\"}}"));
    let sampled = count("engine_apply");
    assert!((1.0..=10.0).contains(&sampled), "sampled {sampled}");
    assert_eq!(count("ring_wait"), sampled);
    assert_eq!(count("journal_append"), sampled);
    assert!(count("total") >= sampled && count("read_to_publish") >= sampled);
    assert!(
        value("fincore_stage_latency_quantile_seconds{stage=\"total\",quantile=\"0.5\"}") > 0.0
    );

    // A failed login and a logout show up as such.
    let wrong = fincore_gateway::client::Client::connect(
        server.local_addr(),
        "carol",
        "not-her-secret",
        Default::default(),
    );
    assert!(wrong.is_err());
    bob.logout().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let last = loop {
        let last = scrape(metrics);
        if last["fincore_disconnects_total{cause=\"logout\"}"] == 1.0 || Instant::now() > deadline {
            break last;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(last["fincore_logins_total{outcome=\"failed\"}"], 1.0);
    assert_eq!(last["fincore_disconnects_total{cause=\"logout\"}"], 1.0);
    assert_eq!(last["fincore_disconnects_total{cause=\"login_refused\"}"], 1.0);
    assert_eq!(last["fincore_sessions_open"], 1.0);
    drop(alice);
    server.stop().unwrap();
}

/// Scrapes until `done` holds (or 10 s pass), and returns the last scrape.
fn scrape_until(
    addr: SocketAddr,
    done: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let values = scrape(addr);
        if done(&values) || Instant::now() > deadline {
            return values;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A counter's value; a series not exported yet (sparse families) counts zero.
fn count(values: &BTreeMap<String, f64>, series: &str) -> f64 {
    values.get(series).copied().unwrap_or(0.0)
}

fn payments(values: &BTreeMap<String, f64>, kind: &str, action: &str) -> f64 {
    count(values, &format!("fincore_payments_total{{kind=\"{kind}\",action=\"{action}\"}}"))
}

/// Fills, lots and payment events are the engine's own counts, published once per
/// batch: they count from this process's start (not the commands replayed at
/// recovery), including the expiry of an authorization that no command asked for.
#[test]
fn engine_counts_are_exact_and_start_at_zero_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (server, metrics) = start_with_metrics(dir.path());
    let mut alice = common::login(server.local_addr(), "alice");
    let mut bob = common::login(server.local_addr(), "bob");
    let transfer = ClientMsg::Transfer(Transfer {
        debit: ALICE,
        credit: BOB,
        asset: common::USD,
        amount: 1_000_000,
        client_payment_id: ClientPaymentId(1),
    });
    let authorize = |id: u64, timeout_s: u32| {
        ClientMsg::Authorize(Authorize {
            debit: ALICE,
            credit: BOB,
            asset: common::USD,
            amount: 1_000_000,
            client_payment_id: ClientPaymentId(id),
            timeout_s,
        })
    };
    request(&mut alice, &transfer);
    request(&mut alice, &transfer); // a retry: a duplicate, nothing moves
    request(&mut alice, &authorize(2, 1)); // expires one second later
    let (_, replies) = request(&mut alice, &authorize(3, 0));
    let (_, held) = common::payment_of(&common::events(&replies)[0].1);
    let void = Void { account: ALICE, payment: PaymentRef::Id(held.payment_id) };
    request(&mut alice, &ClientMsg::Void(void));
    for (i, qty) in [(0, 2), (1, 3)] {
        request(&mut alice, &limit(2, BTC_USD, Side::Sell, 6_000_000, qty, 1_000 + i).into());
        request(&mut bob, &limit(3, BTC_USD, Side::Buy, 6_000_000, qty, 2_000 + i).into());
    }

    // The instrument's label appears when the engine thread first refreshes its gauges.
    let lots = "fincore_traded_lots_total{instrument=\"BTC-USD\"}";
    let after = scrape_until(metrics, |m| {
        payments(m, "authorization", "expired") == 1.0 && m.contains_key(lots)
    });
    assert_eq!(payments(&after, "transfer", "created"), 1.0);
    assert_eq!(payments(&after, "transfer", "duplicate"), 1.0);
    assert_eq!(payments(&after, "authorization", "created"), 2.0);
    assert_eq!(payments(&after, "authorization", "voided"), 1.0);
    assert_eq!(payments(&after, "authorization", "expired"), 1.0);
    assert_eq!(payments(&after, "deposit", "created"), 0.0, "the setup's deposits are not counted");
    let total: f64 =
        after.iter().filter(|(k, _)| k.starts_with("fincore_payments_total")).map(|(_, v)| v).sum();
    assert_eq!(total, 6.0);
    assert_eq!(count(&after, "fincore_fills_total"), 2.0);
    assert_eq!(after[lots], 5.0);
    drop((alice, bob));
    server.stop().unwrap();

    // The restarted engine has replayed or loaded all of the above; none of it is this
    // process's work.
    let (server, metrics) = start_with_metrics(dir.path());
    let mut alice = common::login(server.local_addr(), "alice");
    let mut bob = common::login(server.local_addr(), "bob");
    let fresh = scrape(metrics);
    assert_eq!(count(&fresh, "fincore_fills_total"), 0.0);
    let carried: Vec<_> =
        fresh.keys().filter(|k| k.starts_with("fincore_payments_total")).collect();
    assert!(carried.is_empty(), "{carried:?}");
    request(&mut alice, &limit(2, BTC_USD, Side::Sell, 6_000_000, 7, 3_000).into());
    request(&mut bob, &limit(3, BTC_USD, Side::Buy, 6_000_000, 7, 4_000).into());
    request(
        &mut alice,
        &ClientMsg::Transfer(Transfer {
            debit: ALICE,
            credit: BOB,
            asset: common::USD,
            amount: 1_000_000,
            client_payment_id: ClientPaymentId(4),
        }),
    );
    let after = scrape_until(metrics, |m| {
        m.contains_key(lots)
            && count(m, "fincore_fills_total") == 1.0
            && payments(m, "transfer", "created") == 1.0
    });
    assert_eq!(count(&after, "fincore_fills_total"), 1.0);
    assert_eq!(after[lots], 7.0);
    assert_eq!(payments(&after, "transfer", "created"), 1.0);
    assert_eq!(payments(&after, "authorization", "expired"), 0.0);
    drop((alice, bob));
    server.stop().unwrap();
}

#[test]
fn the_endpoint_answers_while_the_server_is_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let (server, metrics) = start_with_metrics(dir.path());
    let addr = server.local_addr();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let (mut sender, mut receiver) = common::login(addr, "alice").split().unwrap();
            // Replies are read on their own thread, so the server never sees a slow
            // consumer; it ends when the server closes the connection.
            let reader = std::thread::spawn(move || while receiver.recv().is_ok() {});
            let mut sent = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Pairs that cross and fill: the book stays small.
                for (side, id) in [(Side::Sell, 2 * sent), (Side::Buy, 2 * sent + 1)] {
                    sender.queue(&limit(2, BTC_USD, side, 6_000_000, 1, 10_000 + id).into());
                }
                sender.flush().unwrap();
                sent += 1;
                if sent.is_multiple_of(64) {
                    // About 60 000 orders a second: under the session's rate limit.
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            (sent, reader)
        })
    };
    let mut answered = 0;
    let mut slowest = Duration::ZERO;
    let mut last_seq = 0.0;
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(2) {
        let asked = Instant::now();
        let values = scrape(metrics);
        slowest = slowest.max(asked.elapsed());
        let seq = values["fincore_journal_seq"];
        assert!(seq >= last_seq, "the sequence never goes back");
        last_seq = seq;
        answered += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (pairs, reader) = load.join().unwrap();
    eprintln!(
        "metrics under load: {answered} scrapes, slowest {slowest:?}, {pairs} order pairs sent"
    );
    assert!(answered >= 5, "{answered} scrapes in 2 s");
    assert!(last_seq > 100.0, "the load ran: seq {last_seq}");
    assert!(slowest < Duration::from_secs(3), "slowest scrape {slowest:?}");
    server.stop().unwrap();
    reader.join().unwrap();
}

#[test]
fn without_the_option_there_is_no_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(&common::config(dir.path()));
    assert_eq!(server.metrics_addr(), None);
    server.stop().unwrap();
}

/// A first batch that journals nothing (a query, as every `fincore client` command
/// sends first) counts no records: the count once went below zero there, which
/// stopped the engine thread in a build with overflow checks.
#[test]
fn a_query_before_any_command_counts_no_records() {
    let dir = tempfile::tempdir().unwrap();
    let (server, metrics) = start_with_metrics(dir.path());
    let mut alice = common::login(server.local_addr(), "alice");
    assert_eq!(common::fence(&mut alice), Vec::new(), "the query is answered");
    assert_eq!(scrape(metrics)["fincore_journal_records_total"], 0.0);
    request(&mut alice, &limit(2, BTC_USD, Side::Buy, 5_990_000, 1, 1).into());
    let after = scrape_until(metrics, |m| m["fincore_journal_records_total"] == 1.0);
    assert_eq!(after["fincore_journal_records_total"], 1.0);
}
