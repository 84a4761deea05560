//! Peer comparison: one seeded order stream through fincore's book and through the Rust
//! order-book crates `lobster`, `orderbook-rs` and `matchcore`, each via a small adapter
//! that uses the crate's documented API.
//!
//! Run with `cargo bench -p fincore-benches --bench peers` (options after `--`:
//! `--ops N` per mix (default 500 000), `--rounds N` (default 5), `--seed N`,
//! `--mix realistic|heavy`); about 40 s. Without `--bench` (as `cargo test --benches`
//! runs it) it makes one short smoke pass. Results and findings: BENCHMARKS.md, "Peer
//! comparison".
//!
//! Subjects, and what each does per operation:
//!
//! - `fincore book`: the matching core of the engine built from the public `book`
//!   module (`Book`/`Ladder` price levels, `OrderStore` slab, `OrderIndex` id tables):
//!   the same book operations `Engine::apply` performs for an order (walk the best
//!   levels in price-time order, reduce or unlink each maker, index and rest the
//!   remainder; cancel = index lookup, unlink, unindex, free). No risk, no money, no
//!   events: each fill goes to a callback.
//! - `fincore engine`: whole commands through `Engine::apply` (1 instrument, zero fees,
//!   funded traders): risk checks, holds, settlement of every fill, and the full event
//!   stream (`Accepted`, `Fill`, `Trade`, `Balance`, `Level`, ...) into a `Vec`.
//! - `lobster`: `OrderBook::execute` with `OrderType::{Limit, Market, Cancel}`; fills
//!   read from the returned `OrderEvent`.
//! - `orderbook-rs`: `OrderBook::<()>::add_limit_order_with_result` (GTC),
//!   `submit_market_order`, `cancel_order`; fills read from the returned results.
//! - `matchcore`: `OrderBook::execute` with `Submit` (limit GTC, market) and `Cancel`
//!   commands; fills read from the returned `CommandOutcome`.
//! - `matchcore+fix`: matchcore 0.4.0 with a caller-side workaround for its
//!   trade-through (crossing limit orders sweep past their limit), clearly not the crate
//!   as published; an estimate of a fixed matchcore.
//!
//! Every stream is translated into each crate's types before the clock starts. Each book
//! first runs the stream once untimed, recording every fill (maker, taker, price,
//! quantity) to compare with fincore's; then the timed passes run the subjects
//! alternately, round after round: a throughput pass (one clock around the whole stream)
//! and a latency pass (a clock around each operation, into a histogram).

use fincore_engine as fc;
use fincore_engine::book::{Book, NIL, Order, OrderIndex, OrderStore};
use fincore_engine::testkit::{Rng, Sequencer, trader_account, universe};
use hdrhistogram::Histogram;
use std::hint::black_box;
use std::time::Instant;

// ---- the order stream -------------------------------------------------------------------

/// One operation of the stream. Order ids are the operation's index + 1 (so ids are
/// unique, increasing, and some numbers are skipped where the operation is a cancel).
#[derive(Clone, Copy, Debug)]
enum Op {
    /// Good-till-cancelled limit order: trades what crosses, rests the remainder.
    Limit { id: u64, side: fc::Side, price: i64, qty: i64, trader: u32 },
    /// Market order: trades what it can now, the remainder is dropped (IOC).
    Market { id: u64, side: fc::Side, qty: i64, trader: u32 },
    /// Cancel of an order that is live in fincore's book at that point of the stream.
    Cancel { id: u64, trader: u32 },
}

/// Percentages of each kind of operation, and their price offsets and sizes.
#[derive(Clone, Copy, Debug)]
struct Mix {
    name: &'static str,
    passive: u64,
    cancel: u64,
    crossing: u64,
    // market = the rest of 100
    /// Ticks behind the mid of a passive order (inclusive range).
    passive_ticks: (i64, i64),
    passive_qty: (i64, i64),
    /// Ticks through the mid of a crossing limit order.
    crossing_ticks: (i64, i64),
    crossing_qty: (i64, i64),
    market_qty: (i64, i64),
}

/// The engine's "realistic" trading mix (`fincore_engine::testkit::trading_workload`):
/// 55 % passive limits 1-20 ticks behind a random-walking mid, 35 % cancels of live
/// orders, 8 % limits 1-5 ticks through the mid, 2 % market orders.
const REALISTIC: Mix = Mix {
    name: "realistic",
    passive: 55,
    cancel: 35,
    crossing: 8,
    passive_ticks: (1, 20),
    passive_qty: (1, 100),
    crossing_ticks: (1, 5),
    crossing_qty: (1, 240),
    market_qty: (1, 240),
};

/// Heavy matching: 30 % passive limits 1-5 ticks behind the mid (larger, 1-200 lots),
/// 5 % cancels, 55 % limits 1-5 ticks through the mid (their remainders rest and are
/// taken by later ones), 10 % market orders.
const HEAVY: Mix = Mix {
    name: "heavy-matching",
    passive: 30,
    cancel: 5,
    crossing: 55,
    passive_ticks: (1, 5),
    passive_qty: (1, 200),
    crossing_ticks: (1, 5),
    crossing_qty: (1, 100),
    market_qty: (1, 100),
};

/// Traders in the stream (they matter only to the engine, which needs an account per
/// order; no book here applies self-trade prevention).
const TRADERS: u32 = 8;

/// Generates `count` operations of `mix`. Cancels name orders that are live at that
/// point, which the generator learns by running the stream through fincore's book as
/// it goes (the same way `trading_workload` runs its stream through the engine).
fn generate(mix: Mix, count: usize, seed: u64) -> Vec<Op> {
    let mut rng = Rng::new(seed);
    let mut book = FincoreBook::build(count);
    let mut live: Vec<(u64, u32)> = Vec::new();
    let mut live_at: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    let mut mid = 10_000i64;
    let mut ops = Vec::with_capacity(count);
    let mut fills = Recorder::default();
    for index in 0..count {
        let id = index as u64 + 1;
        let roll = rng.below(100);
        let cancel = (mix.passive..mix.passive + mix.cancel).contains(&roll);
        let op = if cancel && !live.is_empty() {
            let (id, trader) = live[rng.below(live.len() as u64) as usize];
            Op::Cancel { id, trader }
        } else {
            // The mid takes a one-tick step now and then and stays within 3 % of 100.00.
            mid = (mid + rng.range(-1, 1) * i64::from(rng.percent(10))).clamp(9_700, 10_300);
            let side = if rng.percent(50) { fc::Side::Buy } else { fc::Side::Sell };
            let toward = |ticks: i64| if side == fc::Side::Buy { mid + ticks } else { mid - ticks };
            let trader = 1 + rng.below(u64::from(TRADERS)) as u32;
            if roll < mix.passive + mix.cancel {
                let price = toward(-rng.range(mix.passive_ticks.0, mix.passive_ticks.1));
                let qty = rng.range(mix.passive_qty.0, mix.passive_qty.1);
                Op::Limit { id, side, price, qty, trader }
            } else if roll < mix.passive + mix.cancel + mix.crossing {
                let price = toward(rng.range(mix.crossing_ticks.0, mix.crossing_ticks.1));
                let qty = rng.range(mix.crossing_qty.0, mix.crossing_qty.1);
                Op::Limit { id, side, price, qty, trader }
            } else {
                let qty = rng.range(mix.market_qty.0, mix.market_qty.1);
                Op::Market { id, side, qty, trader }
            }
        };
        fills.fills.clear();
        book.apply(&op, &mut fills);
        let mut forget = |id: u64| {
            if let Some(at) = live_at.remove(&id) {
                live.swap_remove(at);
                if let Some(&(moved, _)) = live.get(at) {
                    live_at.insert(moved, at);
                }
            }
        };
        for fill in &fills.fills {
            if !book.is_live(fill.maker) {
                forget(fill.maker);
            }
        }
        match op {
            Op::Cancel { id, .. } => forget(id),
            Op::Limit { id, trader, .. } if book.is_live(id) => {
                live_at.insert(id, live.len());
                live.push((id, trader));
            }
            _ => {}
        }
        ops.push(op);
    }
    ops
}

// ---- what a book reports ----------------------------------------------------------------

/// One fill as every book reports it, in stream ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FillRec {
    maker: u64,
    taker: u64,
    price: i64,
    qty: i64,
}

/// Where an adapter reports fills and refusals.
trait Sink {
    fn fill(&mut self, maker: u64, taker: u64, price: i64, qty: i64);
    /// The book refused or failed an operation (an error, a rejection, an unknown id).
    fn refused(&mut self);
}

/// Counts only: what the timed passes use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tally {
    fills: u64,
    qty: u64,
    refused: u64,
}

impl Sink for Tally {
    #[inline]
    fn fill(&mut self, _maker: u64, _taker: u64, _price: i64, qty: i64) {
        self.fills += 1;
        self.qty += qty as u64;
    }

    #[inline]
    fn refused(&mut self) {
        self.refused += 1;
    }
}

/// Everything, with the index of the operation that produced it: the agreement pass.
#[derive(Clone, Debug, Default)]
struct Recorder {
    op: usize,
    fills: Vec<FillRec>,
    fill_ops: Vec<usize>,
    refused: Vec<usize>,
}

impl Sink for Recorder {
    fn fill(&mut self, maker: u64, taker: u64, price: i64, qty: i64) {
        self.fills.push(FillRec { maker, taker, price, qty });
        self.fill_ops.push(self.op);
    }

    fn refused(&mut self) {
        self.refused.push(self.op);
    }
}

/// A book under test: the stream translated into its own commands, and how to apply one.
trait Subject: Sized {
    const NAME: &'static str;
    type Cmd;
    fn translate(ops: &[Op]) -> Vec<Self::Cmd>;
    /// A fresh book for a stream of `ops` operations (outside the clock).
    fn build(ops: usize) -> Self;
    fn apply(&mut self, cmd: &Self::Cmd, sink: &mut impl Sink);
}

// ---- fincore: the book alone ------------------------------------------------------------

/// fincore's matching core without money: the engine's `match_taker` / `rest` /
/// `cancel_resting` book steps over the public `book` module.
struct FincoreBook {
    book: Book,
    store: OrderStore,
    index: OrderIndex,
}

impl FincoreBook {
    /// The account every order is filed under in the id index (client id = order id).
    const ACCOUNT: fc::AccountId = fc::AccountId(1);

    fn is_live(&self, id: u64) -> bool {
        self.index.find_id(&self.store, fc::OrderId(id)).is_some()
    }

    /// Matches an incoming order against the other side in price-time priority up to
    /// `limit`, then rests the remainder if `rests`.
    #[inline]
    fn submit(
        &mut self,
        id: u64,
        side: fc::Side,
        limit: fc::Price,
        qty: i64,
        rests: bool,
        sink: &mut impl Sink,
    ) {
        let opposite = side.opposite();
        let mut remaining = qty;
        'levels: while let Some(level) = self.book.side(opposite).best() {
            if !Book::crosses(side, limit, level.price) {
                break;
            }
            let price = level.price;
            let mut slot = level.head;
            while slot != NIL {
                let maker = self.store.get(slot);
                let (maker_id, maker_left, next) = (maker.id.0, maker.remaining.0, maker.next);
                let traded = remaining.min(maker_left);
                sink.fill(maker_id, id, price.0, traded);
                remaining -= traded;
                let ladder = self.book.side_mut(opposite);
                if traded == maker_left {
                    ladder.unlink(&mut self.store, slot);
                    self.index.remove(&self.store, slot);
                    self.store.remove(slot);
                } else {
                    ladder.reduce(&mut self.store, slot, fc::Qty(traded));
                }
                if remaining == 0 {
                    break 'levels;
                }
                slot = next;
            }
        }
        if remaining > 0 && rests {
            let order = Order {
                id: fc::OrderId(id),
                account: Self::ACCOUNT,
                client_order_id: fc::ClientOrderId(id),
                side,
                price: limit,
                remaining: fc::Qty(remaining),
                ..Order::EMPTY
            };
            let slot = self.store.insert(order).expect("the store is sized for the stream");
            self.book.side_mut(side).push(&mut self.store, slot);
            self.index.insert(&self.store, slot);
        }
    }

    #[inline]
    fn cancel(&mut self, id: u64, sink: &mut impl Sink) {
        let Some(slot) = self.index.find_id(&self.store, fc::OrderId(id)) else {
            sink.refused();
            return;
        };
        let side = self.store.get(slot).side;
        self.book.side_mut(side).unlink(&mut self.store, slot);
        self.index.remove(&self.store, slot);
        self.store.remove(slot);
    }
}

impl Subject for FincoreBook {
    const NAME: &'static str = "fincore book";
    type Cmd = Op;

    fn translate(ops: &[Op]) -> Vec<Op> {
        ops.to_vec()
    }

    fn build(_ops: usize) -> FincoreBook {
        // The engine's default sizes (levels per side, expected orders); the slab holds
        // a quarter of the engine's default million orders, far more than ever rest here.
        FincoreBook {
            book: Book::new(1 << 14),
            store: OrderStore::with_capacity(1 << 18),
            index: OrderIndex::with_capacity(1 << 14),
        }
    }

    #[inline]
    fn apply(&mut self, op: &Op, sink: &mut impl Sink) {
        match *op {
            Op::Limit { id, side, price, qty, .. } => {
                self.submit(id, side, fc::Price(price), qty, true, sink)
            }
            Op::Market { id, side, qty, .. } => {
                let limit = match side {
                    fc::Side::Buy => fc::Price(i64::MAX),
                    fc::Side::Sell => fc::Price(1),
                };
                self.submit(id, side, limit, qty, false, sink)
            }
            Op::Cancel { id, .. } => self.cancel(id, sink),
        }
    }
}

// ---- fincore: the whole engine ----------------------------------------------------------

/// `Engine::apply` on a one-instrument universe with zero fees and funded traders.
struct FincoreEngine {
    engine: fc::Engine,
    events: Vec<fc::Event>,
}

/// The universe: testkit's standard one (1 instrument, `TRADERS` funded traders) with the
/// instrument's fees set to zero.
fn engine_setup() -> Vec<fc::Command> {
    let mut sequencer = Sequencer::default();
    universe(1, TRADERS)
        .into_iter()
        .map(|body| {
            let body = match body {
                fc::CommandBody::CreateInstrument(mut spec) => {
                    spec.maker_fee_bps = 0;
                    spec.taker_fee_bps = 0;
                    fc::CommandBody::CreateInstrument(spec)
                }
                other => other,
            };
            sequencer.stamp(fc::SYSTEM_USER, body)
        })
        .collect()
}

impl Subject for FincoreEngine {
    const NAME: &'static str = "fincore engine";
    type Cmd = fc::Command;

    fn translate(ops: &[Op]) -> Vec<fc::Command> {
        let setup = engine_setup();
        let last = setup.last().expect("setup");
        let mut sequencer = Sequencer { seq: last.seq, time_ns: last.time_ns };
        let new_order = |id: u64, side, order_type, time_in_force, price, qty, trader| {
            fc::CommandBody::NewOrder(fc::NewOrder {
                account: trader_account(trader),
                instrument: fc::InstrumentId(0),
                client_order_id: fc::ClientOrderId(id),
                side,
                order_type,
                time_in_force,
                price: fc::Price(price),
                qty: fc::Qty(qty),
                // No self-trade prevention: none of the peers applies it.
                stp_mode: fc::StpMode::Allow,
                stp_scope: fc::StpScope::Account,
                post_only: false,
            })
        };
        ops.iter()
            .map(|op| {
                let (trader, body) = match *op {
                    Op::Limit { id, side, price, qty, trader } => (
                        trader,
                        new_order(
                            id,
                            side,
                            fc::OrderType::Limit,
                            fc::TimeInForce::Gtc,
                            price,
                            qty,
                            trader,
                        ),
                    ),
                    Op::Market { id, side, qty, trader } => (
                        trader,
                        new_order(
                            id,
                            side,
                            fc::OrderType::Market,
                            fc::TimeInForce::Ioc,
                            0,
                            qty,
                            trader,
                        ),
                    ),
                    Op::Cancel { id, trader } => (
                        trader,
                        fc::CommandBody::Cancel {
                            account: trader_account(trader),
                            order: fc::OrderRef::Client(fc::ClientOrderId(id)),
                        },
                    ),
                };
                sequencer.stamp(fc::UserId(trader), body)
            })
            .collect()
    }

    fn build(_ops: usize) -> FincoreEngine {
        let mut engine = fc::Engine::new(fc::EngineLimits::default());
        let mut events = Vec::with_capacity(1 << 10);
        for command in engine_setup() {
            events.clear();
            engine.apply(&command, &mut events);
            assert!(!events.iter().any(|e| matches!(e, fc::Event::Rejected(_))), "setup");
        }
        events.clear();
        FincoreEngine { engine, events }
    }

    #[inline]
    fn apply(&mut self, cmd: &fc::Command, sink: &mut impl Sink) {
        self.events.clear();
        self.engine.apply(cmd, &mut self.events);
        for event in &self.events {
            match event {
                fc::Event::Fill(f) => {
                    sink.fill(f.maker_client_id.0, f.taker_client_id.0, f.price.0, f.qty.0)
                }
                fc::Event::Rejected(_) => sink.refused(),
                _ => {}
            }
        }
    }
}

// ---- lobster ----------------------------------------------------------------------------

/// `lobster::OrderBook`, sized like fincore's book (arena of 2^18 orders, no stats).
struct Lobster(lobster::OrderBook);

fn lobster_side(side: fc::Side) -> lobster::Side {
    match side {
        fc::Side::Buy => lobster::Side::Bid,
        fc::Side::Sell => lobster::Side::Ask,
    }
}

impl Subject for Lobster {
    const NAME: &'static str = "lobster";
    type Cmd = lobster::OrderType;

    fn translate(ops: &[Op]) -> Vec<lobster::OrderType> {
        ops.iter()
            .map(|op| match *op {
                Op::Limit { id, side, price, qty, .. } => lobster::OrderType::Limit {
                    id: u128::from(id),
                    side: lobster_side(side),
                    qty: qty as u64,
                    price: price as u64,
                },
                Op::Market { id, side, qty, .. } => lobster::OrderType::Market {
                    id: u128::from(id),
                    side: lobster_side(side),
                    qty: qty as u64,
                },
                Op::Cancel { id, .. } => lobster::OrderType::Cancel { id: u128::from(id) },
            })
            .collect()
    }

    fn build(_ops: usize) -> Lobster {
        Lobster(lobster::OrderBook::new(1 << 18, 10, false))
    }

    #[inline]
    fn apply(&mut self, cmd: &lobster::OrderType, sink: &mut impl Sink) {
        match self.0.execute(*cmd) {
            lobster::OrderEvent::Filled { fills, .. }
            | lobster::OrderEvent::PartiallyFilled { fills, .. } => {
                for f in &fills {
                    // order_1 is the incoming order, order_2 the resting one.
                    sink.fill(f.order_2 as u64, f.order_1 as u64, f.price as i64, f.qty as i64);
                }
            }
            lobster::OrderEvent::Unfilled { .. }
            | lobster::OrderEvent::Placed { .. }
            | lobster::OrderEvent::Canceled { .. } => {}
        }
    }
}

// ---- orderbook-rs -----------------------------------------------------------------------

/// `orderbook_rs::OrderBook<()>` as its own benches build it (`OrderBook::new`).
struct OrderbookRs(orderbook_rs::OrderBook<()>);

#[derive(Clone, Copy, Debug)]
enum ObrsCmd {
    Limit { id: u64, side: orderbook_rs::prelude::Side, price: u128, qty: u64 },
    Market { id: u64, side: orderbook_rs::prelude::Side, qty: u64 },
    Cancel { id: u64 },
}

fn obrs_side(side: fc::Side) -> orderbook_rs::prelude::Side {
    match side {
        fc::Side::Buy => orderbook_rs::prelude::Side::Buy,
        fc::Side::Sell => orderbook_rs::prelude::Side::Sell,
    }
}

fn obrs_id(id: orderbook_rs::prelude::Id) -> u64 {
    id.as_u64().expect("sequential ids only")
}

impl OrderbookRs {
    fn report(result: &pricelevel::MatchResult, sink: &mut impl Sink) {
        for t in result.trades().as_vec() {
            let (maker, taker) = (obrs_id(t.maker_order_id()), obrs_id(t.taker_order_id()));
            sink.fill(maker, taker, t.price().as_u128() as i64, t.quantity().as_u64() as i64);
        }
    }
}

impl Subject for OrderbookRs {
    const NAME: &'static str = "orderbook-rs";
    type Cmd = ObrsCmd;

    fn translate(ops: &[Op]) -> Vec<ObrsCmd> {
        ops.iter()
            .map(|op| match *op {
                Op::Limit { id, side, price, qty, .. } => ObrsCmd::Limit {
                    id,
                    side: obrs_side(side),
                    price: price as u128,
                    qty: qty as u64,
                },
                Op::Market { id, side, qty, .. } => {
                    ObrsCmd::Market { id, side: obrs_side(side), qty: qty as u64 }
                }
                Op::Cancel { id, .. } => ObrsCmd::Cancel { id },
            })
            .collect()
    }

    fn build(_ops: usize) -> OrderbookRs {
        OrderbookRs(orderbook_rs::OrderBook::<()>::new("PEER"))
    }

    #[inline]
    fn apply(&mut self, cmd: &ObrsCmd, sink: &mut impl Sink) {
        use orderbook_rs::prelude::{Id, OrderBookError, TimeInForce};
        match *cmd {
            ObrsCmd::Limit { id, side, price, qty } => {
                let result = self.0.add_limit_order_with_result(
                    Id::sequential(id),
                    price,
                    qty,
                    side,
                    TimeInForce::Gtc,
                    None,
                );
                match result {
                    Ok((_, Some(trades))) => Self::report(&trades.match_result, sink),
                    Ok((_, None)) => {}
                    Err(_) => sink.refused(),
                }
            }
            ObrsCmd::Market { id, side, qty } => {
                match self.0.submit_market_order(Id::sequential(id), qty, side) {
                    Ok(result) => Self::report(&result, sink),
                    // An empty opposite side: nothing to trade, as in the other books.
                    Err(OrderBookError::InsufficientLiquidity { .. }) => {}
                    Err(_) => sink.refused(),
                }
            }
            ObrsCmd::Cancel { id } => match self.0.cancel_order(Id::sequential(id)) {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => sink.refused(),
            },
        }
    }
}

// ---- matchcore --------------------------------------------------------------------------

/// `matchcore::OrderBook` (`OrderBook::new`). Its order ids are the sequence numbers of
/// the submitting commands; every operation is one command with sequence number = its
/// index, so a stream id is the matchcore id + 1.
struct Matchcore(matchcore::OrderBook);

fn mc_side(side: fc::Side) -> matchcore::Side {
    match side {
        fc::Side::Buy => matchcore::Side::Buy,
        fc::Side::Sell => matchcore::Side::Sell,
    }
}

impl Subject for Matchcore {
    const NAME: &'static str = "matchcore";
    type Cmd = matchcore::Command;

    fn translate(ops: &[Op]) -> Vec<matchcore::Command> {
        use matchcore::*;
        ops.iter()
            .enumerate()
            .map(|(index, op)| {
                let meta = CommandMeta {
                    sequence_number: SequenceNumber(index as u64),
                    timestamp: Timestamp(index as u64),
                };
                let kind = match *op {
                    Op::Limit { id, side, price, qty, .. } => {
                        debug_assert_eq!(id, index as u64 + 1);
                        CommandKind::Submit(SubmitCmd {
                            order: NewOrder::Limit(LimitOrder::new(
                                Price(price as u64),
                                QuantityPolicy::Standard { quantity: Quantity(qty as u64) },
                                OrderFlags::new(mc_side(side), false, TimeInForce::Gtc),
                            )),
                        })
                    }
                    Op::Market { side, qty, .. } => CommandKind::Submit(SubmitCmd {
                        order: NewOrder::Market(MarketOrder::new(
                            Quantity(qty as u64),
                            mc_side(side),
                            false,
                        )),
                    }),
                    Op::Cancel { id, .. } => CommandKind::Cancel(CancelCmd {
                        order_id: OrderId(id - 1),
                        order_kind: OrderKind::Limit,
                    }),
                };
                Command { meta, kind }
            })
            .collect()
    }

    fn build(_ops: usize) -> Matchcore {
        Matchcore(matchcore::OrderBook::new("PEER"))
    }

    #[inline]
    fn apply(&mut self, cmd: &matchcore::Command, sink: &mut impl Sink) {
        use matchcore::{CommandOutcome, CommandReport};
        match self.0.execute(cmd) {
            CommandOutcome::Applied(CommandReport::Submit(effects)) => {
                let target = effects.target_order();
                let taker = target.order_id().0 + 1;
                if let Some(result) = target.match_result() {
                    for t in result.trades() {
                        sink.fill(
                            t.maker_order_id().0 + 1,
                            taker,
                            t.price().0 as i64,
                            t.quantity().0 as i64,
                        );
                    }
                }
                assert!(effects.triggered_orders().is_empty(), "no conditional orders here");
            }
            CommandOutcome::Applied(_) => {}
            CommandOutcome::Rejected(_) => sink.refused(),
        }
    }
}

/// `matchcore` with a caller-side workaround for its trade-through (see BENCHMARKS.md):
/// a crossing limit order whose quantity exceeds what rests at or better than its limit
/// is sent as two commands, a limit order for exactly that quantity (which fills within
/// the limit) and a limit order for the rest (which no longer crosses and rests). Every
/// command takes a sequence number, so ids are mapped both ways. Not the crate as
/// published: a labelled estimate of what a fixed `matchcore` would do.
struct MatchcoreWorkaround {
    book: matchcore::OrderBook,
    next_seq: u64,
    /// Stream id -> matchcore id of the order that rests for it.
    to_matchcore: Vec<u64>,
    /// Matchcore id (= sequence number) -> stream id.
    to_stream: Vec<u64>,
}

impl MatchcoreWorkaround {
    /// Quantity resting at prices at or better than `limit` for a taker of `side`,
    /// counted up to `wanted`.
    fn within_limit(&self, side: matchcore::Side, limit: matchcore::Price, wanted: u64) -> u64 {
        let book = self.book.limit();
        let mut total = 0;
        let mut add = |level_id: &usize| {
            total += book.levels()[*level_id].total_quantity().0;
            total >= wanted
        };
        match side {
            matchcore::Side::Buy => {
                book.asks().range(..=limit).any(|(_, level)| add(level));
            }
            matchcore::Side::Sell => {
                book.bids().range(limit..).rev().any(|(_, level)| add(level));
            }
        }
        total.min(wanted)
    }

    /// Executes one command for stream order `stream_id` (`u64::MAX` for a cancel).
    fn execute(&mut self, stream_id: u64, kind: matchcore::CommandKind, sink: &mut impl Sink) {
        use matchcore::{CommandOutcome, CommandReport};
        let seq = self.next_seq;
        self.next_seq += 1;
        let meta = matchcore::CommandMeta {
            sequence_number: matchcore::SequenceNumber(seq),
            timestamp: matchcore::Timestamp(seq),
        };
        self.to_stream.push(stream_id);
        match self.book.execute(&matchcore::Command { meta, kind }) {
            CommandOutcome::Applied(CommandReport::Submit(effects)) => {
                if let Some(result) = effects.target_order().match_result() {
                    for t in result.trades() {
                        let maker = self.to_stream[t.maker_order_id().0 as usize];
                        sink.fill(maker, stream_id, t.price().0 as i64, t.quantity().0 as i64);
                    }
                }
            }
            CommandOutcome::Applied(_) => {}
            CommandOutcome::Rejected(_) => sink.refused(),
        }
        if stream_id != u64::MAX {
            self.to_matchcore[stream_id as usize] = seq;
        }
    }
}

impl Subject for MatchcoreWorkaround {
    const NAME: &'static str = "matchcore+fix";
    type Cmd = Op;

    fn translate(ops: &[Op]) -> Vec<Op> {
        ops.to_vec()
    }

    fn build(ops: usize) -> MatchcoreWorkaround {
        // Both maps sized for the stream, so that none grows inside the clock.
        MatchcoreWorkaround {
            book: matchcore::OrderBook::new("PEER"),
            next_seq: 0,
            to_matchcore: vec![u64::MAX; ops + 1],
            to_stream: Vec::with_capacity(2 * ops),
        }
    }

    #[inline]
    fn apply(&mut self, op: &Op, sink: &mut impl Sink) {
        use matchcore::*;
        let limit = |price: Price, qty: u64, side| {
            CommandKind::Submit(SubmitCmd {
                order: NewOrder::Limit(LimitOrder::new(
                    price,
                    QuantityPolicy::Standard { quantity: Quantity(qty) },
                    OrderFlags::new(side, false, TimeInForce::Gtc),
                )),
            })
        };
        match *op {
            Op::Limit { id, side, price, qty, .. } => {
                let (side, price, qty) = (mc_side(side), Price(price as u64), qty as u64);
                let within = if self.book.has_crossable_order(side, price) {
                    self.within_limit(side, price, qty)
                } else {
                    0
                };
                if within == 0 || within == qty {
                    self.execute(id, limit(price, qty, side), sink);
                } else {
                    self.execute(id, limit(price, within, side), sink);
                    self.execute(id, limit(price, qty - within, side), sink);
                }
            }
            Op::Market { id, side, qty, .. } => {
                let order =
                    NewOrder::Market(MarketOrder::new(Quantity(qty as u64), mc_side(side), false));
                self.execute(id, CommandKind::Submit(SubmitCmd { order }), sink);
            }
            Op::Cancel { id, .. } => {
                let order_id = OrderId(self.to_matchcore[id as usize]);
                let kind =
                    CommandKind::Cancel(CancelCmd { order_id, order_kind: OrderKind::Limit });
                self.execute(u64::MAX, kind, sink);
            }
        }
    }
}

// ---- the harness ------------------------------------------------------------------------

/// One subject with its stream translated, behind a trait object so the rounds can
/// alternate over a list; the loops inside are monomorphic.
trait Runner {
    fn name(&self) -> &'static str;
    /// Untimed pass recording every fill.
    fn record(&self) -> Recorder;
    /// Ops per second over the whole stream (one clock), and what it counted.
    fn throughput(&self) -> (f64, Tally);
    /// One clock per operation into `hist` (nanoseconds).
    fn latency(&self, hist: &mut Histogram<u64>) -> Tally;
}

struct Prepared<S: Subject> {
    cmds: Vec<S::Cmd>,
}

impl<S: Subject> Runner for Prepared<S> {
    fn name(&self) -> &'static str {
        S::NAME
    }

    fn record(&self) -> Recorder {
        let mut book = S::build(self.cmds.len());
        let mut recorder = Recorder::default();
        for (index, cmd) in self.cmds.iter().enumerate() {
            recorder.op = index;
            book.apply(cmd, &mut recorder);
        }
        recorder
    }

    fn throughput(&self) -> (f64, Tally) {
        let mut book = S::build(self.cmds.len());
        let mut tally = Tally::default();
        let start = Instant::now();
        for cmd in &self.cmds {
            book.apply(cmd, &mut tally);
        }
        let seconds = start.elapsed().as_secs_f64();
        // Dropping the book is not part of the measurement.
        drop(black_box(book));
        (self.cmds.len() as f64 / seconds, tally)
    }

    fn latency(&self, hist: &mut Histogram<u64>) -> Tally {
        hist.reset();
        let mut book = S::build(self.cmds.len());
        let mut tally = Tally::default();
        for cmd in &self.cmds {
            let start = Instant::now();
            book.apply(cmd, &mut tally);
            hist.saturating_record(start.elapsed().as_nanos() as u64);
        }
        drop(black_box(book));
        tally
    }
}

fn prepare<S: Subject + 'static>(ops: &[Op]) -> Box<dyn Runner> {
    Box::new(Prepared::<S> { cmds: S::translate(ops) })
}

/// How one book's fills compare with fincore's book on the same stream.
struct Agreement {
    fills: usize,
    qty: u64,
    refused: usize,
    agrees: bool,
    /// First fill that differs: (fill index, op index in this book, op index in fincore).
    first_difference: Option<(usize, Option<usize>, Option<usize>)>,
    /// Fills at a price worse than the incoming limit order's limit.
    trade_throughs: usize,
    /// The first of them: (op index, limit, fill price).
    first_trade_through: Option<(usize, i64, i64)>,
}

fn compare(ops: &[Op], reference: &Recorder, got: &Recorder) -> Agreement {
    let agrees = reference.fills == got.fills;
    let first_difference = if agrees {
        None
    } else {
        let n = reference.fills.len().min(got.fills.len());
        let i = (0..n).find(|&i| reference.fills[i] != got.fills[i]).unwrap_or(n);
        Some((i, got.fill_ops.get(i).copied(), reference.fill_ops.get(i).copied()))
    };
    let mut trade_throughs = 0;
    let mut first_trade_through = None;
    for (fill, &op) in got.fills.iter().zip(&got.fill_ops) {
        if let Op::Limit { side, price, .. } = ops[op] {
            let through = match side {
                fc::Side::Buy => fill.price > price,
                fc::Side::Sell => fill.price < price,
            };
            if through {
                trade_throughs += 1;
                first_trade_through.get_or_insert((op, price, fill.price));
            }
        }
    }
    Agreement {
        fills: got.fills.len(),
        qty: got.fills.iter().map(|f| f.qty as u64).sum(),
        refused: got.refused.len(),
        agrees,
        first_difference,
        trade_throughs,
        first_trade_through,
    }
}

/// Per-round figures of one subject.
#[derive(Default)]
struct Figures {
    throughput: Vec<f64>,
    p50: Vec<u64>,
    p99: Vec<u64>,
    p999: Vec<u64>,
    max: Vec<u64>,
}

fn median<T: Copy + PartialOrd>(values: &[T]) -> T {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    sorted[(sorted.len() - 1) / 2]
}

fn range<T: Copy + PartialOrd>(values: &[T]) -> (T, T) {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    (sorted[0], sorted[sorted.len() - 1])
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds")
}

/// Cost of the per-operation clock: two back-to-back reads as the latency pass makes them.
fn timer_cost() -> (u64, u64) {
    let mut hist = new_histogram();
    for _ in 0..1_000_000 {
        let start = Instant::now();
        hist.saturating_record(black_box(start).elapsed().as_nanos() as u64);
    }
    (hist.value_at_quantile(0.5), hist.value_at_quantile(0.99))
}

struct Options {
    ops: usize,
    rounds: usize,
    seed: u64,
    mixes: Vec<Mix>,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; anything else (`cargo test --benches`) gets a
    // short smoke run.
    let bench = args.iter().any(|a| a == "--bench");
    let mut options = Options {
        ops: if bench { 500_000 } else { 20_000 },
        rounds: if bench { 5 } else { 1 },
        seed: 1,
        mixes: vec![REALISTIC, HEAVY],
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().expect("option needs a value").clone();
        match arg.as_str() {
            "--ops" => options.ops = value().parse().expect("--ops N"),
            "--rounds" => options.rounds = value().parse().expect("--rounds N"),
            "--seed" => options.seed = value().parse().expect("--seed N"),
            "--mix" => {
                let name = value();
                options.mixes.retain(|m| m.name.starts_with(&name));
                assert!(!options.mixes.is_empty(), "--mix realistic|heavy");
            }
            _ => {} // `--bench` and filters cargo may pass
        }
    }
    options
}

fn main() {
    let options = options();
    let (timer_p50, timer_p99) = timer_cost();
    println!(
        "peer comparison: {} ops per mix, {} rounds, seed {}; per-op clock (Instant pair) \
         costs {timer_p50} ns p50 / {timer_p99} ns p99 and is included in the latencies",
        options.ops, options.rounds, options.seed
    );
    trade_through_case();
    let mut summary = Vec::new();
    for mix in &options.mixes {
        summary.push(run_mix(*mix, &options));
    }
    println!("\n== target: fincore book >= 10x the best peer whose fills agree");
    for line in summary {
        println!("{line}");
    }
}

/// Every subject with `ops` translated: fincore's two first, then the peers.
fn subjects(ops: &[Op]) -> Vec<Box<dyn Runner>> {
    vec![
        prepare::<FincoreBook>(ops),
        prepare::<FincoreEngine>(ops),
        prepare::<Lobster>(ops),
        prepare::<OrderbookRs>(ops),
        prepare::<Matchcore>(ops),
        prepare::<MatchcoreWorkaround>(ops),
    ]
}

/// Three orders that show a trade-through: asks of 5 at 100.00 and 5 at 100.01, then a
/// buy of 10 limited at 100.00. Price-time priority fills 5 at 100.00 and rests 5.
fn trade_through_case() {
    let (buy, sell) = (fc::Side::Buy, fc::Side::Sell);
    let ops = [
        Op::Limit { id: 1, side: sell, price: 10_000, qty: 5, trader: 1 },
        Op::Limit { id: 2, side: sell, price: 10_001, qty: 5, trader: 2 },
        Op::Limit { id: 3, side: buy, price: 10_000, qty: 10, trader: 3 },
    ];
    println!(
        "\n== trade-through case: asks 5 @ 10000 (id 1) and 5 @ 10001 (id 2), then buy 10 limit 10000 (id 3)"
    );
    for runner in subjects(&ops) {
        let fills: Vec<String> = runner
            .record()
            .fills
            .iter()
            .map(|f| format!("{} from id {} @ {}", f.qty, f.maker, f.price))
            .collect();
        println!("{:<15} fills: {}", runner.name(), fills.join(", "));
    }
}

/// Runs one mix; returns its line of the target summary.
fn run_mix(mix: Mix, options: &Options) -> String {
    let ops = generate(mix, options.ops, options.seed);
    let (mut limits, mut markets, mut cancels) = (0, 0, 0);
    for op in &ops {
        match op {
            Op::Limit { .. } => limits += 1,
            Op::Market { .. } => markets += 1,
            Op::Cancel { .. } => cancels += 1,
        }
    }
    let runners = subjects(&ops);

    // Agreement: one untimed pass each, every fill recorded.
    let records: Vec<Recorder> = runners.iter().map(|r| r.record()).collect();
    let reference = &records[0];
    let mut trading_ops = reference.fill_ops.clone();
    trading_ops.dedup();
    let pct = |n: usize| 100.0 * n as f64 / ops.len() as f64;
    println!(
        "\n== mix {}: {} ops: {:.1} % limit (GTC), {:.1} % market, {:.1} % cancel; \
         {:.1} % of the ops trade; {} fills in fincore's book",
        mix.name,
        ops.len(),
        pct(limits),
        pct(markets),
        pct(cancels),
        pct(trading_ops.len()),
        reference.fills.len()
    );
    println!(
        "fill agreement with fincore's book (untimed pass, sequence of (maker, taker, price, qty)):"
    );
    println!(
        "{:<15} {:>9} {:>11} {:>8} {:>7} {:>14}  first difference",
        "book", "fills", "qty", "refused", "agrees", "trade-throughs"
    );
    let agreements: Vec<Agreement> =
        records.iter().map(|got| compare(&ops, reference, got)).collect();
    for (runner, (a, got)) in runners.iter().zip(agreements.iter().zip(&records)) {
        let difference = match a.first_difference {
            None => String::from("-"),
            Some((i, op_here, op_ref)) => format!(
                "fill #{i}: {:?} (op {:?}) vs fincore {:?} (op {:?})",
                got.fills.get(i),
                op_here,
                reference.fills.get(i),
                op_ref
            ),
        };
        println!(
            "{:<15} {:>9} {:>11} {:>8} {:>7} {:>14}  {difference}",
            runner.name(),
            a.fills,
            a.qty,
            a.refused,
            if a.agrees { "yes" } else { "NO" },
            a.trade_throughs,
        );
        if let Some((op, limit, price)) = a.first_trade_through {
            println!(
                "{:<15} first trade-through: op {op} {:?}: limit {limit}, filled at {price}",
                "", ops[op]
            );
        }
    }

    // Timing: rounds of alternating throughput passes, then latency passes.
    let mut figures: Vec<Figures> = runners.iter().map(|_| Figures::default()).collect();
    let mut hist = new_histogram();
    for _ in 0..options.rounds {
        for (runner, (fig, a)) in runners.iter().zip(figures.iter_mut().zip(&agreements)) {
            let (rate, tally) = runner.throughput();
            assert_eq!(tally.fills as usize, a.fills, "{}: timed pass differs", runner.name());
            fig.throughput.push(rate);
        }
        for (runner, fig) in runners.iter().zip(figures.iter_mut()) {
            let tally = runner.latency(&mut hist);
            black_box(tally);
            fig.p50.push(hist.value_at_quantile(0.5));
            fig.p99.push(hist.value_at_quantile(0.99));
            fig.p999.push(hist.value_at_quantile(0.999));
            fig.max.push(hist.max());
        }
    }
    println!(
        "timing ({} rounds, subjects alternating; median (min - max)); ratio = fincore book / book:",
        options.rounds
    );
    println!(
        "{:<15} {:>26} {:>10} {:>10} {:>10} {:>10} {:>9}",
        "book", "throughput (M ops/s)", "p50 ns", "p99 ns", "p99.9 ns", "max ns", "ratio"
    );
    let fincore = median(&figures[0].throughput);
    for (runner, fig) in runners.iter().zip(&figures) {
        let (low, high) = range(&fig.throughput);
        let (p99_low, p99_high) = range(&fig.p99);
        println!(
            "{:<15} {:>8.2} ({:>5.2} - {:>5.2}) {:>10} {:>10} {:>10} {:>10} {:>8.1}x   p99 range {p99_low}-{p99_high}",
            runner.name(),
            median(&fig.throughput) / 1e6,
            low / 1e6,
            high / 1e6,
            median(&fig.p50),
            median(&fig.p99),
            median(&fig.p999),
            median(&fig.max),
            fincore / median(&fig.throughput),
        );
    }
    // Peers are the runners after fincore's two; the last one is matchcore with the
    // caller-side workaround, reported on a line of its own.
    let verdict = |rate: f64| {
        let met = if fincore >= 10.0 * rate { "met" } else { "NOT met" };
        format!("{:.2} M ops/s: {:.1}x -> {met}", rate / 1e6, fincore / rate)
    };
    let fixed = runners.len() - 1;
    let best = (2..fixed)
        .filter(|&i| agreements[i].agrees)
        .map(|i| (runners[i].name(), median(&figures[i].throughput)))
        .max_by(|a, b| a.1.partial_cmp(&b.1).expect("no NaN"));
    let mut line = format!("{} (fincore book {:.2} M ops/s):", mix.name, fincore / 1e6);
    match best {
        Some((name, rate)) => {
            line += &format!("\n  best agreeing crate as published: {name} {}", verdict(rate))
        }
        None => line += "\n  no crate as published agrees with fincore",
    }
    line += &format!(
        "\n  {} (agrees: {}): {}",
        runners[fixed].name(),
        if agreements[fixed].agrees { "yes" } else { "NO" },
        verdict(median(&figures[fixed].throughput))
    );
    line
}
