//! The pipeline without sockets: what goes in on the inbound ring comes out of the
//! outbound ring whole, once and in order, even when the outbound ring is full and the
//! engine thread has to wait for the reader, and even when one command makes more
//! items than a chunk holds. The reference is the same commands submitted to a second
//! runner directly, on the calling thread.

use fincore_engine::testkit::{self, TradingMix};
use fincore_engine::{
    ClientOrderId, CommandBody, Event, InstrumentId, NewOrder, OrderRef, OrderType, Qty,
    RejectReason, SYSTEM_USER, Side, StpMode, StpScope, TimeInForce, UserId,
};
use fincore_gateway::metrics::Metrics;
use fincore_gateway::metrics::Trace;
use fincore_gateway::pipeline::{
    Inbound, InboundBody, Outbound, OutboundBody, Pipeline, PipelineConfig,
};
use fincore_gateway::{Origin, Runner, RunnerConfig};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One command to send: who sends it, when, and what.
type Sent = (UserId, u64, CommandBody);

/// The longest a test waits for the next command's answer before it fails.
const STALL_MAX: Duration = Duration::from_secs(30);

/// The events each command makes, applied directly: (journal sequence, event).
fn direct(setup: &[CommandBody], commands: &[Sent]) -> (Vec<(u64, Event)>, u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut runner, _) = Runner::open(&RunnerConfig::new(dir.path()), setup).expect("open");
    let mut out = Vec::new();
    let mut events = Vec::new();
    for &(user, time_ns, body) in commands {
        events.clear();
        let origin = Origin { user, session: 1, peer: 0 };
        let time_ns = time_ns.max(runner.engine().time_ns());
        let seq = runner.submit(origin, time_ns, body, &mut events).expect("journaled");
        out.extend(events.iter().map(|&event| (seq, event)));
    }
    let hash = runner.engine().state_hash();
    (out, hash)
}

/// How [`piped`] drives the pipeline.
struct Drive {
    /// Outbound ring slots.
    slots: usize,
    /// Commands sent and not yet answered, at most.
    in_flight: u64,
    /// Items asked for per drain.
    budget: usize,
    /// The reader sleeps after every this many drains that found something.
    pause_every: usize,
}

/// The same commands through a pipeline driven as `drive` says.
fn piped(
    setup: &[CommandBody],
    commands: &[Sent],
    drive: Drive,
) -> (Vec<(u64, Event)>, Vec<usize>, u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (runner, _) = Runner::open(&RunnerConfig::new(dir.path()), setup).expect("open");
    let first_seq = runner.engine().last_seq() + 1;
    let config = PipelineConfig {
        ring_size: 64,
        outbound_slots: drive.slots,
        snapshot_on_stop: false,
        ..PipelineConfig::default()
    };
    let metrics = Arc::new(Metrics::new());
    let mut pipeline =
        Pipeline::start_with_metrics(runner, config, Some(Arc::clone(&metrics)), || {})
            .expect("pipeline");
    let mut unsent = commands.iter().enumerate().map(|(i, &(user, time_ns, body))| Inbound {
        session: 1,
        user,
        request_id: i as u64,
        time_ns,
        peer: 0,
        body: InboundBody::Command(body),
        trace: Trace::NONE,
    });
    let mut pending = VecDeque::new();
    let mut sent = 0;
    let last_seq = first_seq + commands.len() as u64 - 1;
    let mut out = Vec::new();
    let mut drains = Vec::new();
    let mut answered = 0;
    let mut progress = Instant::now();
    let receive = |item: &Outbound, out: &mut Vec<(u64, Event)>| {
        let OutboundBody::Event(event) = item.body else {
            panic!("a command made a non-event item: {item:?}");
        };
        assert_eq!(item.journal_seq - first_seq, item.request_id, "journal order");
        out.push((item.journal_seq, event));
    };
    while answered < commands.len() as u64 {
        let waited = progress.elapsed();
        assert!(waited < STALL_MAX, "no answer to command {} in {waited:?}", answered + 1);
        while sent - answered < drive.in_flight
            && let Some(inbound) = unsent.next()
        {
            pending.push_back(inbound);
            sent += 1;
        }
        // Publishes what fits: the rest stays in `pending`.
        pipeline.publish(&mut pending);
        let drained = pipeline.drain_with(drive.budget, |item| receive(item, &mut out));
        // A command's items come out together: the last one seen is answered.
        let now_answered = out.last().map_or(0, |&(seq, _)| seq - first_seq + 1);
        if now_answered > answered {
            (answered, progress) = (now_answered, Instant::now());
        }
        if drained > 0 {
            drains.push(drained);
            if drains.len().is_multiple_of(drive.pause_every) {
                std::thread::sleep(Duration::from_millis(2));
            }
        } else {
            std::thread::yield_now();
        }
    }
    // Everything that still comes out until the engine thread has finished is kept:
    // the comparison then also catches an item delivered twice.
    pipeline.close();
    while !pipeline.engine_finished() {
        if pipeline.drain_with(usize::MAX, |item| receive(item, &mut out)) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    pipeline.drain_with(usize::MAX, |item| receive(item, &mut out));
    let exit = pipeline.join().expect("clean stop");
    assert_eq!(exit.seq, last_seq);
    let published = metrics.engine.outbound_published.get();
    let drained = metrics.gateway.outbound_drained.get();
    assert_eq!((published, drained), (out.len() as u64, out.len() as u64), "counted");
    (out, drains, exit.state_hash)
}

/// Where two event lists first differ, for the failure message.
fn first_difference(got: &[(u64, Event)], expected: &[(u64, Event)]) -> String {
    match got.iter().zip(expected).position(|(g, e)| g != e) {
        Some(i) => format!("item {i}: got {:?}, expected {:?}", got[i], expected[i]),
        None => format!("lengths {} and {}", got.len(), expected.len()),
    }
}

/// The realistic trading mix: its setup and its commands.
fn trading(mix: TradingMix) -> (Vec<CommandBody>, Vec<Sent>) {
    let workload = testkit::trading_workload(mix);
    let setup = workload.setup.iter().map(|c| c.body).collect();
    let commands = workload.commands.iter().map(|c| (c.user, c.time_ns, c.body)).collect();
    (setup, commands)
}

#[test]
fn a_full_outbound_ring_delays_items_but_never_loses_or_reorders_them() {
    let (setup, commands) =
        trading(TradingMix { instruments: 2, traders: 8, commands: 20_000, seed: 23 });
    let (expected, expected_hash) = direct(&setup, &commands);
    // Two slots and a reader that takes small bites and naps: the engine thread waits
    // for room again and again.
    let drive = Drive { slots: 2, in_flight: u64::MAX, budget: 16, pause_every: 8 };
    let (got, drains, hash) = piped(&setup, &commands, drive);
    assert!(expected.len() > commands.len(), "every command makes at least one event");
    assert_eq!(got.len(), expected.len(), "as many items as events");
    assert!(got == expected, "not the same: {}", first_difference(&got, &expected));
    assert_eq!(hash, expected_hash, "the same final state");
    assert!(drains.len() > 100, "the reader drained many times: {}", drains.len());
}

/// One command at a time, as a single client waiting for each answer sends them: every
/// batch is one command, every chunk that command's few items.
#[test]
fn one_command_at_a_time_gets_each_of_its_items() {
    let (setup, mut commands) =
        trading(TradingMix { instruments: 1, traders: 4, commands: 3_000, seed: 7 });
    // Commands of one item each (a reject), among the others.
    let unknown = OrderRef::Client(ClientOrderId(u64::MAX));
    let time_ns = commands.last().map_or(0, |c| c.1);
    for k in 1..=4 {
        let cancel = CommandBody::Cancel { account: testkit::trader_account(k), order: unknown };
        commands.insert(k as usize * 500, (UserId(k), time_ns, cancel));
    }
    let (expected, expected_hash) = direct(&setup, &commands);
    let first_seq = expected[0].0;
    for k in 1..=4u64 {
        // The insert at index 500 k is the command with that offset in the journal.
        let seq = first_seq + 500 * k;
        let items: Vec<&Event> =
            expected.iter().filter(|(s, _)| *s == seq).map(|(_, e)| e).collect();
        assert!(
            matches!(items[..], [Event::Rejected(r)] if r.reason == RejectReason::UnknownOrder),
            "the cancel at seq {seq} is one reject: {items:?}"
        );
    }
    let drive = Drive { slots: 4, in_flight: 1, budget: 1, pause_every: 500 };
    let (got, drains, hash) = piped(&setup, &commands, drive);
    assert!(got == expected, "not the same: {}", first_difference(&got, &expected));
    assert_eq!(hash, expected_hash);
    assert_eq!(drains.len(), commands.len(), "one drain per command");
}

#[test]
fn a_command_that_makes_more_items_than_a_chunk_holds_arrives_whole() {
    let setup = testkit::universe(1, 2);
    let trader = UserId(1);
    let account = testkit::trader_account(1);
    // Enough for the mass cancel's chunk to pass the capacity a chunk keeps (4 096
    // items): it is shrunk when it comes back to the engine thread.
    let orders = 2_500;
    let mut commands: Vec<Sent> = (0..orders)
        .map(|i| {
            let order = NewOrder {
                account,
                instrument: InstrumentId(0),
                client_order_id: ClientOrderId(i + 1),
                side: Side::Buy,
                order_type: OrderType::Limit,
                time_in_force: TimeInForce::Gtc,
                price: testkit::REFERENCE_PRICE,
                qty: Qty(1),
                stp_mode: StpMode::Allow,
                stp_scope: StpScope::Account,
                post_only: false,
            };
            (trader, 1_000 + i, CommandBody::NewOrder(order))
        })
        .collect();
    commands.push((trader, 1_000 + orders, CommandBody::MassCancel { account, instrument: None }));
    assert_ne!(trader, SYSTEM_USER);
    let (expected, expected_hash) = direct(&setup, &commands);
    let mass_cancel_seq = expected.last().expect("events").0;
    let mass_cancel_items = expected.iter().filter(|(seq, _)| *seq == mass_cancel_seq).count();
    let cancelled =
        expected.iter().filter(|(_, e)| matches!(e, Event::Cancelled(_))).count() as u64;
    assert_eq!(cancelled, orders, "every order was cancelled");
    assert!(mass_cancel_items > 1_024, "more than a chunk: {mass_cancel_items}");
    // A budget of 10 items per drain: the mass cancel's chunk is still taken whole.
    let drive = Drive { slots: 2, in_flight: u64::MAX, budget: 10, pause_every: 1_000 };
    let (got, drains, hash) = piped(&setup, &commands, drive);
    assert!(got == expected, "not the same: {}", first_difference(&got, &expected));
    assert_eq!(hash, expected_hash);
    assert!(
        drains.iter().any(|&n| n >= mass_cancel_items),
        "one drain took the mass cancel's items together: largest {:?}",
        drains.iter().max()
    );
}
