//! Whole commands through `Engine::apply`, with risk checks, settlement and events.
//! Every benchmark leaves the book as it found it (or replays on a fresh engine), so
//! iterations measure the same thing.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use fincore_engine::testkit::*;
use fincore_engine::*;
use std::hint::black_box;

/// Limits small enough that building an engine per batch is cheap.
fn limits() -> EngineLimits {
    EngineLimits { orders_max: 1 << 16, accounts_max: 1 << 10, ..EngineLimits::default() }
}

/// An engine with the standard universe (1 instrument, 4 traders) and a background of
/// 200 resting bids and asks away from the action.
fn prepared() -> Engine {
    let mut engine = Engine::new(limits());
    let mut events = Vec::new();
    let mut sequencer = Sequencer::default();
    for body in universe(1, 4) {
        engine.apply(&sequencer.stamp(SYSTEM_USER, body), &mut events);
    }
    for i in 0..100 {
        for (side, price) in [(Side::Buy, 9_800 - i), (Side::Sell, 10_200 + i)] {
            let body = CommandBody::NewOrder(limit(
                4,
                side,
                price,
                5,
                1_000_000 + i as u64 * 2 + side as u64,
            ));
            engine.apply(&sequencer.stamp(UserId(4), body), &mut events);
        }
    }
    engine
}

fn limit(trader: u32, side: Side, price: i64, qty: i64, client: u64) -> NewOrder {
    NewOrder {
        account: trader_account(trader),
        instrument: InstrumentId(0),
        client_order_id: ClientOrderId(client),
        side,
        order_type: OrderType::Limit,
        time_in_force: TimeInForce::Gtc,
        price: Price(price),
        qty: Qty(qty),
        stp_mode: StpMode::CancelNewest,
        stp_scope: StpScope::Account,
        post_only: false,
    }
}

/// Applies `body` as `user` with the next sequence number.
fn apply(engine: &mut Engine, events: &mut Vec<Event>, user: u32, body: CommandBody) {
    events.clear();
    let command = Command { seq: engine.last_seq() + 1, time_ns: 0, user: UserId(user), body };
    engine.apply(&command, events);
}

fn last_order_id(events: &[Event]) -> OrderId {
    events
        .iter()
        .find_map(|e| if let Event::Accepted(a) = e { Some(a.order_id) } else { None })
        .expect("accepted")
}

fn single_commands(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine");
    let mut engine = prepared();
    let mut events = Vec::with_capacity(256);
    let mut client = 0u64;
    group.bench_function("baseline_build_command", |b| {
        b.iter(|| {
            events.clear();
            client += 1;
            black_box(Command {
                seq: client,
                time_ns: 0,
                user: UserId(1),
                body: CommandBody::NewOrder(limit(1, Side::Buy, 9_950, 1, client)),
            })
        })
    });
    group.bench_function("add_then_cancel_2_commands", |b| {
        b.iter(|| {
            client += 1;
            apply(
                &mut engine,
                &mut events,
                1,
                CommandBody::NewOrder(limit(1, Side::Buy, 9_950, 1, client)),
            );
            let order = OrderRef::Id(last_order_id(&events));
            apply(
                &mut engine,
                &mut events,
                1,
                CommandBody::Cancel { account: trader_account(1), order },
            );
        })
    });
    // The two traders swap roles every iteration, so positions and cash stay level
    // (less fees) however many million iterations criterion runs.
    let mut round = 0u32;
    group.bench_function("rest_then_take_1_level_2_commands", |b| {
        b.iter(|| {
            round += 1;
            let (maker, taker) = if round.is_multiple_of(2) { (1, 2) } else { (2, 1) };
            client += 2;
            let sell = limit(maker, Side::Sell, 10_000, 1, client);
            apply(&mut engine, &mut events, maker, CommandBody::NewOrder(sell));
            let buy = limit(taker, Side::Buy, 10_000, 1, client + 1);
            apply(&mut engine, &mut events, taker, CommandBody::NewOrder(buy));
        })
    });
    group.bench_function("rest_10_levels_then_sweep_11_commands", |b| {
        b.iter(|| {
            round += 1;
            let (maker, taker) = if round.is_multiple_of(2) { (1, 2) } else { (2, 1) };
            for level in 0..10 {
                client += 1;
                let sell = limit(maker, Side::Sell, 10_000 + level, 1, client);
                apply(&mut engine, &mut events, maker, CommandBody::NewOrder(sell));
            }
            client += 1;
            let sweep = limit(taker, Side::Buy, 10_009, 10, client);
            apply(&mut engine, &mut events, taker, CommandBody::NewOrder(sweep));
            assert_eq!(events.iter().filter(|e| matches!(e, Event::Fill(_))).count(), 10);
        })
    });
    group.bench_function("amend_down_then_up_2_commands", |b| {
        client += 1;
        apply(
            &mut engine,
            &mut events,
            3,
            CommandBody::NewOrder(limit(3, Side::Buy, 9_900, 10, client)),
        );
        let order = OrderRef::Id(last_order_id(&events));
        b.iter(|| {
            for qty in [5, 10] {
                let amend =
                    Amend { account: trader_account(3), order, price: Price(9_900), qty: Qty(qty) };
                apply(&mut engine, &mut events, 3, CommandBody::Amend(amend));
            }
        })
    });
    group.finish();
}

fn realistic_mix(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_mix");
    group.sample_size(20);
    for instruments in [1u16, 16] {
        let workload =
            trading_workload(TradingMix { instruments, traders: 64, commands: 200_000, seed: 1 });
        group.throughput(Throughput::Elements(workload.commands.len() as u64));
        group.bench_function(format!("realistic_200k_{instruments}_instruments"), |b| {
            b.iter_batched(
                || {
                    let mut engine = Engine::new(limits());
                    let mut events = Vec::new();
                    for command in &workload.setup {
                        engine.apply(command, &mut events);
                    }
                    (engine, Vec::with_capacity(1_024))
                },
                |(mut engine, mut events): (Engine, Vec<Event>)| {
                    for command in &workload.commands {
                        events.clear();
                        engine.apply(command, &mut events);
                    }
                    black_box(engine.last_seq())
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, single_commands, realistic_mix);
criterion_main!(benches);
