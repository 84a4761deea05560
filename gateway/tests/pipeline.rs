//! The pipeline without sockets: what goes in on the inbound ring comes out of the
//! outbound ring whole, once and in order, even when the outbound ring is full and the
//! engine thread has to wait for the reader, and even when one command makes more
//! items than a chunk holds. The reference is the same commands submitted to a second
//! runner directly, on the calling thread.

use fincore_engine::testkit::{self, TradingMix};
use fincore_engine::{
    ClientOrderId, CommandBody, Event, InstrumentId, NewOrder, OrderRef, OrderType, Qty,
    SYSTEM_USER, Side, StpMode, StpScope, TimeInForce, UserId,
};
use fincore_gateway::metrics::Trace;
use fincore_gateway::pipeline::{Inbound, InboundBody, OutboundBody, Pipeline, PipelineConfig};
use fincore_gateway::{Origin, Runner, RunnerConfig};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One command to send: who sends it, when, and what.
type Sent = (UserId, u64, CommandBody);

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
    let mut pipeline = Pipeline::start(runner, config, || {}).expect("pipeline");
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
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered < commands.len() as u64 {
        assert!(Instant::now() < deadline, "no answer to command {} in a minute", answered + 1);
        while sent - answered < drive.in_flight
            && let Some(inbound) = unsent.next()
        {
            pending.push_back(inbound);
            sent += 1;
        }
        // Publishes what fits: the rest stays in `pending`.
        pipeline.publish(&mut pending);
        let drained = pipeline.drain_with(drive.budget, |item| {
            let OutboundBody::Event(event) = item.body else {
                panic!("a command made a non-event item: {item:?}");
            };
            assert_eq!(item.journal_seq - first_seq, item.request_id, "journal order");
            out.push((item.journal_seq, event));
        });
        // A command's items come out together: the last one seen is answered.
        answered = out.last().map_or(0, |&(seq, _)| seq - first_seq + 1);
        if drained > 0 {
            drains.push(drained);
            if drains.len().is_multiple_of(drive.pause_every) {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
    let exit = pipeline.shutdown().expect("clean stop");
    assert_eq!(exit.seq, last_seq);
    // Nothing more came after the last command's items were seen.
    assert!(out.last().is_some_and(|&(seq, _)| seq == last_seq));
    (out, drains, exit.state_hash)
}

#[test]
fn a_full_outbound_ring_delays_items_but_never_loses_or_reorders_them() {
    let workload = testkit::trading_workload(TradingMix {
        instruments: 2,
        traders: 8,
        commands: 20_000,
        seed: 23,
    });
    let setup: Vec<CommandBody> = workload.setup.iter().map(|c| c.body).collect();
    let commands: Vec<Sent> =
        workload.commands.iter().map(|c| (c.user, c.time_ns, c.body)).collect();
    let (expected, expected_hash) = direct(&setup, &commands);
    // Two slots and a reader that takes small bites and naps: the engine thread waits
    // for room again and again.
    let drive = Drive { slots: 2, in_flight: u64::MAX, budget: 16, pause_every: 8 };
    let (got, drains, hash) = piped(&setup, &commands, drive);
    assert!(expected.len() > commands.len(), "every command makes at least one event");
    assert_eq!(got.len(), expected.len(), "as many items as events");
    assert!(got == expected, "the same events in the same order");
    assert_eq!(hash, expected_hash, "the same final state");
    assert!(drains.len() > 100, "the reader drained many times: {}", drains.len());
}

/// One command at a time, as a single client waiting for each answer sends them: every
/// batch is one command, every chunk that command's few items.
#[test]
fn one_command_at_a_time_gets_each_of_its_items() {
    let workload = testkit::trading_workload(TradingMix {
        instruments: 1,
        traders: 4,
        commands: 3_000,
        seed: 7,
    });
    let setup: Vec<CommandBody> = workload.setup.iter().map(|c| c.body).collect();
    let mut commands: Vec<Sent> =
        workload.commands.iter().map(|c| (c.user, c.time_ns, c.body)).collect();
    // Commands of one item each (a reject), among the others.
    let unknown = OrderRef::Client(ClientOrderId(u64::MAX));
    let time_ns = commands.last().map_or(0, |c| c.1);
    for k in 1..=4 {
        let cancel = CommandBody::Cancel { account: testkit::trader_account(k), order: unknown };
        commands.insert(k as usize * 500, (UserId(k), time_ns, cancel));
    }
    let (expected, expected_hash) = direct(&setup, &commands);
    let rejects = expected.iter().filter(|(_, e)| matches!(e, Event::Rejected(_))).count();
    assert!(rejects >= 4, "the unknown-order cancels are rejected: {rejects}");
    let drive = Drive { slots: 4, in_flight: 1, budget: 1, pause_every: 500 };
    let (got, drains, hash) = piped(&setup, &commands, drive);
    assert!(got == expected, "the same events in the same order");
    assert_eq!(hash, expected_hash);
    assert_eq!(drains.len(), commands.len(), "one drain per command");
}

#[test]
fn a_command_that_makes_more_items_than_a_chunk_holds_arrives_whole() {
    let setup = testkit::universe(1, 2);
    let trader = UserId(1);
    let account = testkit::trader_account(1);
    let orders = 1_500;
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
    assert!(got == expected, "the same events in the same order");
    assert_eq!(hash, expected_hash);
    assert!(
        drains.iter().any(|&n| n >= mass_cancel_items),
        "one drain took the mass cancel's items together: largest {:?}",
        drains.iter().max()
    );
}
