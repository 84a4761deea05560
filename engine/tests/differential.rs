//! Differential test: the engine against the naive reference model in
//! `common/reference.rs`, on seeded random command streams.
//!
//! Every step generates one command (valid or not, from a mix that keeps a small, tight
//! universe busy: three instruments, a handful of traders, two users with two accounts
//! each, some nearly broke, an admin and a payment operator), applies it to both, and
//! requires:
//! - the same events, in the same order;
//! - the model's `check_invariants()` after every step, including per-asset
//!   conservation (the sum of available, held and pending over all accounts equals
//!   deposits minus withdrawals), and the engine's (sampled once the payment table is
//!   large, see `Harness::heavy_stride`);
//! - after a successful command, the same state through every public query (balances
//!   and open orders of every account, full depth), with the published invariants
//!   checked on the engine's answers: no crossed book, strictly sorted levels, every
//!   resting order holding exactly its remaining obligation, held balances equal to
//!   order holds, pending balances equal to pending authorizations, no balance below
//!   its credit limit, per-asset conservation against the deposits and withdrawals seen;
//! - after a rejected command, an unchanged state hash (see `check_unchanged`; sampled
//!   like the engine's invariants).
//!
//! About a quarter of the commands are payments: deposits and withdrawals (by admins and
//! the operator), transfers, authorizations with and without timeouts, captures (full,
//! partial, too much), voids, retries of earlier payments (exact repeats and conflicting
//! ones), payment limits, credit limits, the deny-list and ticks. Command stamps jump
//! ahead now and then (seconds, so authorizations expire; hours, so velocity windows
//! roll), land exactly on or one nanosecond before a pending deadline or the moment a
//! debit leaves its velocity window, or lag behind engine time. Payment queries are
//! compared now and then, and in full at the end.
//!
//! At the end it compares the final state once more (including per-order and
//! per-payment queries) and asserts minimum counts of what the stream exercised, so the
//! test cannot silently degrade into one that only checks rejects.
//!
//! `FINCORE_DIFF_STEPS` overrides the number of commands per seed (for longer soaks).

// Each integration-test crate uses its own subset of the shared helpers.
#[allow(dead_code)]
mod common;

use common::reference::{PaymentRequest, RefOrder, RefPayment, Reference};
use fincore_engine::testkit::{Rng, Sequencer};
use fincore_engine::*;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Commands per seed after the setup.
const STEPS_DEFAULT: usize = 100_000;

#[test]
fn differential_seed_a() {
    run(Run::full(0xA11C_E5EED));
}

#[test]
fn differential_seed_b() {
    run(Run::full(0xB0B_5EED));
}

#[test]
fn differential_seed_c() {
    run(Run::full(0xC0FF_EE5EED));
}

#[test]
fn differential_seed_d() {
    run(Run::full(0xD1FF_5EED));
}

/// A short run at the payment edges: a payment table so small that it fills up part-way
/// (`PaymentsFull` from then on), engine time so close to the top of a u64 that long
/// authorization timeouts overflow the deadline (`ArithmeticOverflow`), and deposits and
/// credit limits often exactly at, or one past, the room that keeps an asset's supply
/// plus its credit limits within an i64.
#[test]
fn differential_payment_edges() {
    run(Run {
        seed: 0xED6E_5EED,
        steps: 20_000,
        payments_max: 600,
        start_ns: u64::MAX - (1 << 61),
        edges: true,
    });
}

/// One randomized run.
#[derive(Clone, Copy, Debug)]
struct Run {
    seed: u64,
    /// Commands after the setup.
    steps: usize,
    /// The engine's payment capacity.
    payments_max: u32,
    /// Engine time before the first command.
    start_ns: u64,
    /// The short edge run: checked for the edge rejects, not for full coverage.
    edges: bool,
}

impl Run {
    /// A full-length run with room for every payment, from time zero.
    fn full(seed: u64) -> Run {
        let steps = std::env::var("FINCORE_DIFF_STEPS")
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or(STEPS_DEFAULT);
        Run { seed, steps, payments_max: 1 << 20, start_ns: 0, edges: false }
    }
}

fn run(run: Run) {
    let mut harness = Harness::new(run);
    harness.setup();
    for step in 0..run.steps {
        harness.step(step);
    }
    harness.compare_final();
    let coverage = &harness.coverage;
    let mean = coverage.live_orders_sum / run.steps.max(1);
    let payments = harness.model.payments().len();
    println!(
        "seed {:#x}: {} commands ({} payment commands, {payments} payments recorded), \
         {mean} live orders on average, engine time {} s",
        run.seed,
        run.steps,
        coverage.payment_commands,
        (harness.model.time_ns() - run.start_ns) / 1_000_000_000,
    );
    println!("{coverage:#?}");
    if run.edges {
        coverage.assert_edges(run, payments);
    } else {
        coverage.assert_exercised(run.seed);
    }
}

// ---- the universe --------------------------------------------------------------------

/// Quote asset: a dollar with 6 decimals.
const USD: AssetId = AssetId(0);
/// The base assets, one per instrument.
const COINS: [AssetId; 3] = [AssetId(1), AssetId(2), AssetId(3)];
const INSTRUMENTS: [InstrumentId; 3] = [InstrumentId(0), InstrumentId(1), InstrumentId(2)];
/// Collects fees; owned by the system user, which also trades on it now and then.
const FEE_ACCOUNT: AccountId = AccountId(0);
/// A second admin, so that "admin" is a role and not the system user.
const ADMIN: UserId = UserId(7);
/// The payment operator: deposits, withdrawals and reads on any account, nothing else.
const OPERATOR: UserId = UserId(12);
/// Traders 1..=6; users 1 and 2 own a second account (7, 8) so that owner-scoped
/// self-trade prevention spans accounts.
const TRADERS: u32 = 6;
/// Owned by user 3 and never funded, so that it can be closed.
const SPARE: AccountId = AccountId(9);
/// Instrument 2's fee account. That instrument charges no fees, so the account stays
/// empty and trying to close it reaches `AccountInUse`.
const ZERO_FEE_ACCOUNT: AccountId = AccountId(10);
/// Accounts that never hold money: they only ever reject orders.
const EMPTY_ACCOUNTS: [AccountId; 2] = [SPARE, ZERO_FEE_ACCOUNT];
/// Never created.
const STRANGER: UserId = UserId(90);
const UNKNOWN_ACCOUNT: AccountId = AccountId(50);
const UNKNOWN_INSTRUMENT: InstrumentId = InstrumentId(5);

/// Small capacities so that every "full" reject is reachable: four more users (8..=11)
/// and accounts (11..=14) can be created, and the order table, the levels per side and
/// the orders per account all fill up now and then. The payment table is sized per run.
fn limits(payments_max: u32) -> EngineLimits {
    EngineLimits {
        users_max: 13,
        accounts_max: 15,
        orders_max: 64,
        levels_per_side_max: 12,
        open_orders_per_account_max: 10,
        payments_max,
        ..EngineLimits::default()
    }
}

/// Instrument 0: tick 0.01, lot 0.001 (10 quote units per tick-lot), maker rebate.
/// Instrument 1: tick 0.03 (30 per tick-lot), maker fee above the taker fee, so the buy
/// hold uses the maker rate.
/// Instrument 2: tick 1.00 (1 000 per tick-lot), priced in single-digit ticks with a
/// 100 % band, so the band's floor of one tick is reached; no fees at all, into a fee
/// account of its own.
/// Narrow bands and low maxima keep those rejects reachable.
fn spec(instrument: InstrumentId) -> InstrumentSpec {
    let mut spec = testkit::instrument_spec(instrument.0);
    let (reference, band_bps, qty_max, notional_max, maker, taker) = match instrument.0 {
        0 => (1_000, 500, 400, 3_000_000, -1, 5),
        1 => (500, 800, 300, 3_750_000, 8, 3),
        _ => (6, 10_000, 200, 1_800_000, 0, 0),
    };
    spec.fee_account = if instrument.0 == 2 { ZERO_FEE_ACCOUNT } else { FEE_ACCOUNT };
    spec.tick_size = Dec { mantissa: [1, 3, 100][usize::from(instrument.0)], scale: 2 };
    spec.reference_price = Price(reference);
    spec.band_bps = band_bps;
    spec.qty_max = Qty(qty_max);
    spec.notional_max = notional_max;
    (spec.maker_fee_bps, spec.taker_fee_bps) = (maker, taker);
    assert_eq!(spec.base, COINS[usize::from(instrument.0)]);
    assert_eq!(spec.quote, USD);
    spec
}

/// The setup commands, all run as the system user.
fn setup_bodies() -> Vec<CommandBody> {
    let symbol = |text: &str| Symbol::new(text).expect("short");
    let mut setup = vec![CommandBody::CreateAsset { asset: USD, symbol: symbol("USD"), scale: 6 }];
    for (i, coin) in COINS.iter().enumerate() {
        let name = format!("COIN{i}");
        setup.push(CommandBody::CreateAsset { asset: *coin, symbol: symbol(&name), scale: 8 });
    }
    for account in [FEE_ACCOUNT, ZERO_FEE_ACCOUNT] {
        setup.push(CommandBody::CreateAccount { account, owner: SYSTEM_USER });
    }
    setup.extend(INSTRUMENTS.map(|i| CommandBody::CreateInstrument(spec(i))));
    for k in 1..=TRADERS {
        setup.push(CommandBody::CreateUser { user: UserId(k), role: Role::Trader });
    }
    setup.push(CommandBody::CreateUser { user: ADMIN, role: Role::Admin });
    setup.push(CommandBody::CreateUser { user: OPERATOR, role: Role::Operator });
    let owners = (1..=TRADERS).map(|k| (AccountId(k), UserId(k)));
    let second = [(AccountId(7), UserId(1)), (AccountId(8), UserId(2)), (SPARE, UserId(3))];
    // Deposits share one idempotency namespace: ids 1, 2, 3, ... here (the stream's
    // small random ids collide with them on purpose).
    let mut deposit_id = 0;
    for (account, owner) in owners.chain(second) {
        setup.push(CommandBody::CreateAccount { account, owner });
        for (asset, amount) in funding(account) {
            deposit_id += 1;
            let client_payment_id = ClientPaymentId(deposit_id);
            setup.push(CommandBody::Deposit { account, asset, amount, client_payment_id });
        }
    }
    setup
}

/// Rich accounts never run short; poor ones do, so `InsufficientBalance` is common.
fn funding(account: AccountId) -> Vec<(AssetId, i64)> {
    let (quote, base) = match account.0 {
        1 | 2 | 3 | 7 => (200_000_000, 2_000_000_000),
        4 | 5 | 6 | 8 => (2_000_000, 20_000_000),
        _ => return Vec::new(),
    };
    let mut deposits = vec![(USD, quote)];
    deposits.extend(COINS.map(|asset| (asset, base)));
    deposits
}

/// A typical payment size in `asset`: one dollar, or a tenth of a coin. Rich accounts
/// start with 200 of them in every asset, poor ones with 2.
fn unit(asset: AssetId) -> i64 {
    if asset == USD { 1_000_000 } else { 10_000_000 }
}

/// The command that asks for exactly this payment.
fn payment_body(r: &PaymentRequest) -> CommandBody {
    let client_payment_id = r.client;
    let (debit, credit, asset, amount) = (r.debit, r.credit, r.asset, r.amount);
    match r.kind {
        PaymentKind::Transfer => {
            CommandBody::Transfer(Transfer { debit, credit, asset, amount, client_payment_id })
        }
        PaymentKind::Authorization => CommandBody::Authorize(Authorize {
            debit,
            credit,
            asset,
            amount,
            client_payment_id,
            timeout_s: r.timeout_s,
        }),
        PaymentKind::Deposit => {
            CommandBody::Deposit { account: credit, asset, amount, client_payment_id }
        }
        PaymentKind::Withdrawal => {
            CommandBody::Withdraw { account: debit, asset, amount, client_payment_id }
        }
    }
}

/// The commands that are payments or payment administration.
fn is_payment_command(kind: CommandKind) -> bool {
    matches!(
        kind,
        CommandKind::Deposit
            | CommandKind::Withdraw
            | CommandKind::Transfer
            | CommandKind::Authorize
            | CommandKind::Capture
            | CommandKind::Void
            | CommandKind::SetPaymentLimits
            | CommandKind::SetAccountLimits
            | CommandKind::SetAccountBlocked
            | CommandKind::Tick
    )
}

// ---- the command generator -----------------------------------------------------------

/// Draws commands from a seeded mix, looking at the model for live orders, bands and
/// statuses so that most commands are plausible and many are subtly wrong.
struct Generator {
    rng: Rng,
    next_client: u64,
    next_payment_client: u64,
    /// The edge run: deposits and credit limits often exactly at (or one past) the room
    /// that keeps supply plus credit within an i64.
    edges: bool,
    /// Payment queries made: every 16th looks a deposit up on the external account
    /// (counted, not drawn, so the random stream is the same with or without it).
    payment_queries: u64,
}

/// What the next command's stamp was chosen for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Aim {
    /// Nothing in particular: any command.
    Any,
    /// The next pending deadline: a tick, as the server sends one.
    Tick,
    /// The moment a debit of this account in this asset leaves (or, one nanosecond
    /// earlier, is still in) its velocity window: a payment from it.
    WindowEdge(AccountId, AssetId),
}

impl Generator {
    fn new(seed: u64, edges: bool) -> Generator {
        // Client ids 1..=5 are drawn at random too; fresh ones start well above them.
        let (next_client, next_payment_client) = (1_000, 1_000);
        Generator {
            rng: Rng::new(seed),
            next_client,
            next_payment_client,
            edges,
            payment_queries: 0,
        }
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.rng.percent(percent)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.below(items.len() as u64) as usize]
    }

    /// The next command, to be stamped `time_ns` (which the stamp aimed at `aim`).
    fn next(&mut self, model: &Reference, time_ns: u64, aim: Aim) -> (UserId, CommandBody) {
        match aim {
            Aim::Any => {}
            Aim::Tick => return self.tick(),
            Aim::WindowEdge(account, asset) => {
                return self.payment_from(model, account, asset, time_ns);
            }
        }
        // Halts are short: a halted instrument only produces rejects.
        let halted = model.instruments().any(|(_, s)| s == InstrumentStatus::Halted);
        if halted && self.chance(4) {
            return self.instrument_status(model);
        }
        match self.rng.below(1_000) {
            0..=54 => self.cancel(model),
            55..=180 => self.amend(model),
            181..=188 => self.mass_cancel(model),
            189..=238 => self.money(model),
            239..=258 => self.account_status(model),
            259..=265 => self.instrument_status(model),
            266..=275 => self.create(),
            276..=335 => self.transfer(model, time_ns),
            336..=380 => self.authorize(model, time_ns),
            381..=415 => self.capture(model, time_ns),
            416..=433 => self.void(model, time_ns),
            434..=455 => self.retry(model, time_ns),
            456..=473 => self.payment_admin(model),
            474..=478 => self.tick(),
            _ => self.new_order(model),
        }
    }

    /// The stamp of the next command, given engine time, and what it aims at: mostly
    /// a microsecond later; sometimes seconds later (authorizations expire), hours later
    /// (velocity windows roll), exactly at or one nanosecond before a pending deadline
    /// or the moment a debit leaves its velocity window, or behind engine time (which
    /// then stays where it is). Ticks come at the next deadline, as the server sends
    /// them (and at random times from the mix).
    fn stamp(&mut self, model: &Reference, now: u64) -> (u64, Aim) {
        const SECOND: i64 = 1_000_000_000;
        const HOUR: i64 = 3_600 * SECOND;
        let ahead = |ns: i64| now.saturating_add(ns as u64);
        // Within ten minutes: far deadlines (long timeouts) are not aimed at.
        let soon = |deadline: u64| deadline > now + 1 && deadline - now <= 600 * SECOND as u64;
        let deadlines = || {
            let mut due: Vec<u64> = model
                .pending_authorizations()
                .map(|p| p.info.deadline_ns)
                .filter(|&deadline| soon(deadline))
                .collect();
            due.sort();
            due
        };
        match self.rng.below(1_000) {
            0..=896 => (ahead(1_000), Aim::Any),
            897..=976 => (ahead(self.rng.range(1, 3 * SECOND)), Aim::Any),
            977..=986 => (ahead(self.rng.range(3 * SECOND, 60 * SECOND)), Aim::Any),
            987..=991 => match deadlines().as_slice() {
                [] => (ahead(1_000), Aim::Any),
                some => {
                    let deadline = self.pick(some);
                    (if self.chance(50) { deadline } else { deadline - 1 }, Aim::Any)
                }
            },
            992..=993 => match deadlines().first() {
                Some(&next) => (next, Aim::Tick),
                None => (ahead(1_000), Aim::Any),
            },
            994..=995 => {
                let exits: Vec<(AccountId, AssetId, u64)> =
                    model.window_exits().filter(|(.., exit)| *exit > now + 1).collect();
                if exits.is_empty() {
                    return (ahead(1_000), Aim::Any);
                }
                let (account, asset, exit) = self.pick(&exits);
                let time_ns = if self.chance(50) { exit } else { exit - 1 };
                (time_ns, Aim::WindowEdge(account, asset))
            }
            996..=997 => (ahead(self.rng.range(HOUR, 12 * HOUR)), Aim::Any),
            _ => (now.saturating_sub(self.rng.range(1, 10 * SECOND) as u64), Aim::Any),
        }
    }

    fn admin(&mut self) -> UserId {
        if self.chance(50) { SYSTEM_USER } else { ADMIN }
    }

    /// Who sends an admin-only payment command: mostly an admin, sometimes the
    /// operator or a trader (`NotAdmin`), rarely nobody known.
    fn payment_admin_user(&mut self) -> UserId {
        match self.rng.below(100) {
            0..=89 => self.admin(),
            90..=94 => OPERATOR,
            95..=98 => self.some_user(),
            _ => STRANGER,
        }
    }

    /// Any user id that may exist (1..=11; 8..=11 only once created).
    fn some_user(&mut self) -> UserId {
        UserId(1 + self.rng.below(11) as u32)
    }

    /// An account other than the main fee account, with its owner. The empty accounts
    /// come up less often than the others: they only ever reject.
    fn trading_account(&mut self, model: &Reference) -> (AccountId, UserId) {
        let empty_too = self.chance(20);
        let accounts: Vec<(AccountId, UserId)> = model
            .accounts()
            .filter(|(id, ..)| *id != FEE_ACCOUNT && (!EMPTY_ACCOUNTS.contains(id) || empty_too))
            .map(|(id, owner, _)| (id, owner))
            .collect();
        self.pick(&accounts)
    }

    fn instrument(&mut self) -> InstrumentId {
        if self.chance(3) { UNKNOWN_INSTRUMENT } else { self.pick(&INSTRUMENTS) }
    }

    fn side(&mut self) -> Side {
        if self.chance(50) { Side::Buy } else { Side::Sell }
    }

    /// Who sends a new order, and on which account.
    fn order_actor(&mut self, model: &Reference) -> (UserId, AccountId) {
        let (account, owner) = self.trading_account(model);
        match self.rng.below(100) {
            0..=89 => (owner, account),
            90..=92 => (SYSTEM_USER, FEE_ACCOUNT),
            93..=95 => (self.some_user(), account),
            96..=97 => (owner, UNKNOWN_ACCOUNT),
            98 => (STRANGER, account),
            _ => (ADMIN, account),
        }
    }

    /// Mostly a few ticks around the band's centre (the last trade), biased to the
    /// passive side so that the book builds up; sometimes through the centre, anywhere
    /// in the band, outside it, or not a price at all.
    fn price(&mut self, model: &Reference, instrument: InstrumentId, side: Side) -> Price {
        let (low, high) = model.band(instrument).unwrap_or((Price(950), Price(1_050)));
        let centre = (low.0 + high.0) / 2;
        // Ten ticks on the wide instruments, one on the single-digit one.
        let spread = ((high.0 - low.0) / 10).clamp(1, 10);
        let passive = if side == Side::Buy { -1 } else { 1 };
        Price(match self.rng.below(100) {
            0..=69 => centre + passive * self.rng.range(-spread / 3, spread),
            70..=79 => centre - passive * self.rng.range(0, spread * 8 / 10),
            80..=87 => self.rng.range(low.0, high.0),
            88..=90 => low.0 - self.rng.range(1, 20),
            91..=93 => high.0 + self.rng.range(1, 20),
            94..=95 => 0,
            96..=97 => -self.rng.range(1, 1_000),
            98 => i64::MAX,
            _ => i64::MIN,
        })
    }

    fn qty_max(instrument: InstrumentId) -> i64 {
        let known = INSTRUMENTS.contains(&instrument);
        if known { spec(instrument).qty_max.0 } else { 400 }
    }

    /// Mostly small; sometimes near or above the maxima, zero, negative or absurd.
    fn qty(&mut self, instrument: InstrumentId) -> Qty {
        let max = Self::qty_max(instrument);
        Qty(match self.rng.below(100) {
            0..=74 => self.rng.range(1, 20),
            75..=86 => self.rng.range(21, 120),
            87..=91 => self.rng.range(200, max),
            92..=94 => max + self.rng.range(1, 100),
            95..=96 => 0,
            97..=98 => -self.rng.range(1, 50),
            _ => i64::MAX,
        })
    }

    /// Order type, time in force and post-only, including invalid combinations.
    fn order_kind(&mut self) -> (OrderType, TimeInForce, bool) {
        let (order_type, time_in_force, post_only_percent) = match self.rng.below(100) {
            0..=69 => (OrderType::Limit, TimeInForce::Gtc, 15),
            70..=79 => (OrderType::Limit, TimeInForce::Ioc, 3),
            80..=87 => (OrderType::Limit, TimeInForce::Fok, 3),
            88..=92 => (OrderType::Market, TimeInForce::Ioc, 2),
            93..=97 => (OrderType::Market, TimeInForce::Fok, 2),
            _ => (OrderType::Market, TimeInForce::Gtc, 0),
        };
        (order_type, time_in_force, self.chance(post_only_percent))
    }

    fn stp(&mut self) -> (StpMode, StpScope) {
        let mode = match self.rng.below(10) {
            0..=3 => StpMode::Allow,
            4..=5 => StpMode::CancelNewest,
            6..=7 => StpMode::CancelOldest,
            _ => StpMode::CancelBoth,
        };
        let scope = if self.chance(50) { StpScope::Account } else { StpScope::Owner };
        (mode, scope)
    }

    /// Mostly fresh; sometimes the id of a live order of the account (a duplicate), or
    /// a small id that may or may not be live.
    fn client_id(&mut self, model: &Reference, account: AccountId) -> ClientOrderId {
        let live: Vec<ClientOrderId> =
            model.orders().iter().filter(|o| o.account == account).map(|o| o.client).collect();
        match self.rng.below(100) {
            0..=87 => {
                self.next_client += 1;
                ClientOrderId(self.next_client)
            }
            88..=95 if !live.is_empty() => self.pick(&live),
            _ => ClientOrderId(1 + self.rng.below(5)),
        }
    }

    fn new_order(&mut self, model: &Reference) -> (UserId, CommandBody) {
        let (user, account) = self.order_actor(model);
        let instrument = self.instrument();
        let (order_type, time_in_force, post_only) = self.order_kind();
        let (stp_mode, stp_scope) = self.stp();
        let side = self.side();
        let order = NewOrder {
            account,
            instrument,
            client_order_id: self.client_id(model, account),
            side,
            order_type,
            time_in_force,
            price: self.price(model, instrument, side),
            qty: self.qty(instrument),
            stp_mode,
            stp_scope,
            post_only,
        };
        (user, CommandBody::NewOrder(order))
    }

    /// Names a live order by engine id or by client id.
    fn order_ref(&mut self, id: OrderId, client: ClientOrderId) -> OrderRef {
        if self.chance(50) { OrderRef::Id(id) } else { OrderRef::Client(client) }
    }

    fn cancel(&mut self, model: &Reference) -> (UserId, CommandBody) {
        if model.orders().is_empty() {
            return self.new_order(model);
        }
        let order = self.pick(model.orders());
        let by = self.order_ref(order.id, order.client);
        let (user, account, by) = match self.rng.below(100) {
            0..=79 => (order.owner, order.account, by),
            80..=84 => (self.admin(), order.account, by),
            85..=88 => (self.some_user(), order.account, by),
            89..=93 => {
                // Someone else's order named on one's own account: unknown there.
                let (account, owner) = self.trading_account(model);
                (owner, account, OrderRef::Id(order.id))
            }
            94..=95 => (order.owner, order.account, OrderRef::Id(OrderId(u64::MAX))),
            96..=97 => (order.owner, order.account, OrderRef::Client(ClientOrderId(999))),
            _ => (STRANGER, order.account, by),
        };
        (user, CommandBody::Cancel { account, order: by })
    }

    fn amend(&mut self, model: &Reference) -> (UserId, CommandBody) {
        if model.orders().is_empty() {
            return self.new_order(model);
        }
        let order = self.pick(model.orders());
        let mut by = self.order_ref(order.id, order.client);
        if self.chance(3) {
            by = OrderRef::Id(OrderId(u64::MAX));
        }
        let user = match self.rng.below(100) {
            0..=93 => order.owner,
            94..=96 => self.some_user(),
            _ => self.admin(),
        };
        let (price, qty) = self.amend_terms(model, &order);
        (user, CommandBody::Amend(Amend { account: order.account, order: by, price, qty }))
    }

    /// New terms for a live order: keep-priority reductions, priority-losing increases
    /// and moves (some of which trade), no-ops, and every kind of invalid value.
    fn amend_terms(&mut self, model: &Reference, order: &RefOrder) -> (Price, Qty) {
        let (price, left) = (order.price.0, order.remaining.0);
        let (low, high) = model.band(order.instrument).expect("a live order's instrument");
        let max = Self::qty_max(order.instrument);
        let (price, qty) = match self.rng.below(100) {
            0..=24 => (price, if left > 1 { self.rng.range(1, left - 1) } else { left }),
            25..=39 => (price, left + self.rng.range(1, 20)),
            40..=64 => {
                let qty = if self.chance(50) { left } else { self.rng.range(1, 30) };
                (price + self.rng.range(-6, 6), qty)
            }
            65..=69 => (price, left),
            70..=74 => (self.crossing_price(model, order), self.rng.range(1, 30)),
            75..=79 => (if self.chance(50) { low.0 - 1 } else { high.0 + 1 }, left),
            80..=84 => (price, self.rng.range(200, max)),
            85..=87 => (-self.rng.range(0, 5), left),
            88..=90 => (price, -self.rng.range(0, 5)),
            91..=92 => (price, max + self.rng.range(1, 50)),
            93..=94 => (i64::MAX / self.rng.range(1, 3), left),
            _ => (self.rng.range(low.0, high.0), self.rng.range(1, 40)),
        };
        (Price(price), Qty(qty))
    }

    /// A price at or through the best opposite order, so an amend trades.
    fn crossing_price(&mut self, model: &Reference, order: &RefOrder) -> i64 {
        let opposite = model.best_price(order.instrument, order.side.opposite());
        let best = opposite.map_or(order.price.0, |p| p.0);
        let through = self.rng.range(0, 3);
        if order.side == Side::Buy { best + through } else { best - through }
    }

    fn mass_cancel(&mut self, model: &Reference) -> (UserId, CommandBody) {
        let (mut account, owner) = self.trading_account(model);
        let user = match self.rng.below(100) {
            0..=84 => owner,
            85..=94 => self.admin(),
            _ => self.some_user(),
        };
        if self.chance(3) {
            account = UNKNOWN_ACCOUNT;
        }
        let instrument = match self.rng.below(100) {
            0..=49 => None,
            50..=94 => Some(self.pick(&INSTRUMENTS)),
            _ => Some(UNKNOWN_INSTRUMENT),
        };
        (user, CommandBody::MassCancel { account, instrument })
    }

    /// Deposits and withdrawals, including zero, negative, overflowing and
    /// exactly-everything amounts. The empty accounts are never funded.
    fn money(&mut self, model: &Reference) -> (UserId, CommandBody) {
        let deposit = self.chance(60);
        let (mut account, _) = self.trading_account(model);
        if deposit && EMPTY_ACCOUNTS.contains(&account) || self.chance(5) {
            account = if self.chance(50) { FEE_ACCOUNT } else { UNKNOWN_ACCOUNT };
        }
        let asset = match self.rng.below(100) {
            0..=94 => AssetId(self.rng.below(COINS.len() as u64 + 1) as u16),
            95..=97 => AssetId(7),
            _ => AssetId(40),
        };
        let amount = match self.rng.below(100) {
            0..=84 => self.rng.range(1, 5_000_000),
            85..=89 => model.money(account, asset).available,
            90..=94 => -self.rng.range(0, 5),
            _ => i64::MAX,
        };
        let user = match self.rng.below(100) {
            0..=59 => self.admin(),
            60..=89 => OPERATOR,
            90..=97 => self.some_user(),
            _ => STRANGER,
        };
        let client_payment_id = self.payment_client();
        let room = model.deposit_room(asset);
        let amount = match room {
            Some(room) if deposit && self.edges && self.chance(30) => {
                room.saturating_add(self.rng.range(0, 1)).max(1)
            }
            _ => amount,
        };
        let body = if deposit {
            CommandBody::Deposit { account, asset, amount, client_payment_id }
        } else {
            CommandBody::Withdraw { account, asset, amount, client_payment_id }
        };
        (user, body)
    }

    // ---- payments ----------------------------------------------------------------

    /// Mostly fresh; sometimes zero (`PaymentIdZero`) or a small id that may already be
    /// taken in the namespace (a duplicate or a conflict).
    fn payment_client(&mut self) -> ClientPaymentId {
        match self.rng.below(100) {
            0..=89 => {
                self.next_payment_client += 1;
                ClientPaymentId(self.next_payment_client)
            }
            90..=92 => ClientPaymentId(0),
            _ => ClientPaymentId(1 + self.rng.below(5)),
        }
    }

    /// Mostly a coin or dollars; sometimes an asset that does not exist.
    fn payment_asset(&mut self) -> AssetId {
        match self.rng.below(100) {
            0..=96 => AssetId(self.rng.below(COINS.len() as u64 + 1) as u16),
            97..=98 => AssetId(7),
            _ => AssetId(40),
        }
    }

    /// Who pays from which account: mostly the owner; sometimes an admin or the
    /// operator (no override: `AccountNotOwned`), another user, an unknown account or
    /// user. The system user pays from the fee account now and then.
    fn payer(&mut self, model: &Reference) -> (UserId, AccountId) {
        let (account, owner) =
            if self.chance(5) { (FEE_ACCOUNT, SYSTEM_USER) } else { self.trading_account(model) };
        match self.rng.below(100) {
            0..=90 => (owner, account),
            91..=92 => (self.admin(), account),
            93 => (OPERATOR, account),
            94..=96 => (self.some_user(), account),
            97..=98 => (owner, UNKNOWN_ACCOUNT),
            _ => (STRANGER, account),
        }
    }

    /// The account paid: another known account mostly (frozen, blocked and closed ones
    /// included); sometimes the payer itself or an unknown account. The empty accounts
    /// are never paid while open (they must stay empty to be closed), but authorizations
    /// may name them: such an authorization is never captured while they are open (see
    /// `capture`), and once they are closed its capture meets `CreditAccountClosed`.
    fn payee(&mut self, model: &Reference, debit: AccountId, authorization: bool) -> AccountId {
        let closed = |id: AccountId| model.account_status(id) == Some(AccountStatus::Closed);
        let empty: Vec<AccountId> =
            EMPTY_ACCOUNTS.into_iter().filter(|id| authorization || closed(*id)).collect();
        match self.rng.below(100) {
            0..=2 => debit,
            3..=4 => UNKNOWN_ACCOUNT,
            5..=7 if !empty.is_empty() => self.pick(&empty),
            8..=12 => FEE_ACCOUNT,
            _ => {
                let others: Vec<AccountId> = model
                    .accounts()
                    .map(|(id, ..)| id)
                    .filter(|id| *id != debit && (!EMPTY_ACCOUNTS.contains(id) || closed(*id)))
                    .collect();
                self.pick(&others)
            }
        }
    }

    /// Mostly something the account can pay; sometimes exactly what it has (with or
    /// without its credit), more than that, around the asset's transfer maximum, exactly
    /// its velocity room at `time_ns` or one more, zero, negative or absurd.
    fn payment_amount(
        &mut self,
        model: &Reference,
        account: AccountId,
        asset: AssetId,
        time_ns: u64,
    ) -> i64 {
        let available = model.money(account, asset).available;
        let spendable = available.saturating_add(model.credit_limit(account, asset));
        let max = model.transfer_max(asset);
        let room = model.velocity_room(account, asset, time_ns);
        match self.rng.below(100) {
            0..=44 => self.rng.range(1, (spendable / 20).max(1)),
            45..=59 => self.rng.range(1, 5 * unit(asset)),
            60..=64 => available,
            65..=70 => spendable,
            71..=75 => spendable.saturating_add(self.rng.range(1, 1_000)),
            76..=80 => max.map_or(unit(asset), |max| max.saturating_add(self.rng.range(0, 1))),
            81..=87 => match room {
                Some(room) => room.saturating_add(self.rng.range(0, 1)).max(1),
                None => self.rng.range(1, unit(asset)),
            },
            88..=94 => -self.rng.range(0, 5),
            _ => i64::MAX,
        }
    }

    /// No timeout, a few seconds (expires during the run), minutes, or so long that
    /// near the top of engine time the deadline overflows.
    fn timeout(&mut self) -> u32 {
        match self.rng.below(100) {
            0..=24 => 0,
            25..=79 => self.rng.range(1, 20) as u32,
            80..=94 => self.rng.range(21, 600) as u32,
            95..=97 => self.rng.range(1 << 31, i64::from(u32::MAX)) as u32,
            _ => u32::MAX,
        }
    }

    fn transfer(&mut self, model: &Reference, time_ns: u64) -> (UserId, CommandBody) {
        let (user, debit) = self.payer(model);
        let asset = self.payment_asset();
        let transfer = Transfer {
            debit,
            credit: self.payee(model, debit, false),
            asset,
            amount: self.payment_amount(model, debit, asset, time_ns),
            client_payment_id: self.payment_client(),
        };
        (user, CommandBody::Transfer(transfer))
    }

    fn authorize(&mut self, model: &Reference, time_ns: u64) -> (UserId, CommandBody) {
        let (user, debit) = self.payer(model);
        let asset = self.payment_asset();
        let authorize = Authorize {
            debit,
            credit: self.payee(model, debit, true),
            asset,
            amount: self.payment_amount(model, debit, asset, time_ns),
            client_payment_id: self.payment_client(),
            timeout_s: self.timeout(),
        };
        (user, CommandBody::Authorize(authorize))
    }

    /// A transfer, authorization or withdrawal from `account` in `asset` by its owner
    /// (the operator for a withdrawal), for exactly its velocity room at `time_ns` or
    /// one more.
    fn payment_from(
        &mut self,
        model: &Reference,
        account: AccountId,
        asset: AssetId,
        time_ns: u64,
    ) -> (UserId, CommandBody) {
        let owner = model.owner(account).expect("a debited account exists");
        let room = model.velocity_room(account, asset, time_ns).unwrap_or(unit(asset));
        let amount = room.saturating_add(self.rng.range(0, 1)).max(1);
        let request = PaymentRequest {
            kind: self.pick(&[
                PaymentKind::Transfer,
                PaymentKind::Authorization,
                PaymentKind::Withdrawal,
            ]),
            debit: account,
            credit: self.payee(model, account, false),
            asset,
            amount,
            client: self.payment_client(),
            timeout_s: 0,
        };
        if request.kind == PaymentKind::Withdrawal {
            let request = PaymentRequest { credit: EXTERNAL_ACCOUNT, ..request };
            return (OPERATOR, payment_body(&request));
        }
        (owner, payment_body(&request))
    }

    /// Who names which payment, and how, for a capture, void or payment query: mostly
    /// a pending authorization, named by id or client id by its debit side, or by id
    /// by its credit side; sometimes a recent payment of any kind or status; sometimes
    /// the wrong side, user or id. `None` before the first payment.
    fn resolution(&mut self, model: &Reference) -> Option<(UserId, AccountId, PaymentRef)> {
        let pending: Vec<RefPayment> = model.pending_authorizations().copied().collect();
        let all = model.payments();
        let payment = match self.rng.below(100) {
            0..=74 if !pending.is_empty() => self.pick(&pending),
            _ if !all.is_empty() => self.pick(&all[all.len().saturating_sub(300)..]),
            _ => return None,
        };
        let info = payment.info;
        let debit_side = info.debit != EXTERNAL_ACCOUNT && self.chance(80);
        let on_debit = debit_side || info.credit == EXTERNAL_ACCOUNT;
        let account = if on_debit { info.debit } else { info.credit };
        // By client id from the credit side finds nothing (or the credit account's own
        // payment with that id).
        let by_client = if on_debit { 50 } else { 10 };
        let by = match self.chance(by_client) {
            true => PaymentRef::Client(info.client_payment_id),
            false => PaymentRef::Id(info.payment_id),
        };
        let owner = model.owner(account).expect("a payment's real side exists");
        Some(match self.rng.below(100) {
            0..=89 => (owner, account, by),
            90..=91 => (self.some_user(), account, by),
            92 => (STRANGER, account, by),
            93 => (owner, UNKNOWN_ACCOUNT, by),
            94..=95 => {
                let unknown = [0, all.len() as u64 + 1, u64::MAX];
                (owner, account, PaymentRef::Id(PaymentId(self.pick(&unknown))))
            }
            96..=97 => {
                // A side that is not the payment's: unknown there.
                let (other, other_owner) = self.trading_account(model);
                (other_owner, other, PaymentRef::Id(info.payment_id))
            }
            _ => (if self.chance(50) { ADMIN } else { OPERATOR }, account, by),
        })
    }

    /// Captures: all (amount 0), part, exactly all, the captured amount again (a
    /// retry), more than authorized, negative or absurd.
    fn capture(&mut self, model: &Reference, time_ns: u64) -> (UserId, CommandBody) {
        let Some((user, account, by)) = self.resolution(model) else {
            return self.authorize(model, time_ns);
        };
        let Some(named) = model.payment_named(account, by) else {
            return (user, CommandBody::Capture { account, payment: by, amount: 0 });
        };
        let info = named.info;
        // Keep the empty accounts empty: what would pay one is voided instead.
        let credit_open = model.account_status(info.credit) != Some(AccountStatus::Closed);
        if EMPTY_ACCOUNTS.contains(&info.credit) && credit_open {
            return (user, CommandBody::Void { account, payment: by });
        }
        let amount = match self.rng.below(100) {
            0..=39 => 0,
            40..=69 => self.rng.range(1, info.amount.max(1)),
            70..=77 => info.amount,
            78..=84 if info.captured > 0 => info.captured,
            78..=91 => info.amount.saturating_add(self.rng.range(1, 100)),
            92..=95 => -self.rng.range(1, 5),
            _ => i64::MAX,
        };
        (user, CommandBody::Capture { account, payment: by, amount })
    }

    fn void(&mut self, model: &Reference, time_ns: u64) -> (UserId, CommandBody) {
        let Some((user, account, by)) = self.resolution(model) else {
            return self.authorize(model, time_ns);
        };
        (user, CommandBody::Void { account, payment: by })
    }

    /// An earlier payment sent again: mostly exactly (a duplicate, whatever has
    /// happened to its accounts since), sometimes with one field changed or as another
    /// kind of payment with the same key (a conflict), sometimes by someone not allowed.
    fn retry(&mut self, model: &Reference, time_ns: u64) -> (UserId, CommandBody) {
        let all = model.payments();
        if all.is_empty() {
            return self.transfer(model, time_ns);
        }
        let recent = &all[all.len().saturating_sub(300)..];
        let mut r = if self.chance(70) { self.pick(recent) } else { self.pick(all) }.request;
        match self.rng.below(100) {
            0..=59 => {}
            60..=69 => r.amount = r.amount.saturating_add(self.rng.range(1, 1_000)),
            70..=74 => r.asset = AssetId((r.asset.0 + 1) % (COINS.len() as u16 + 1)),
            75..=79 if r.kind == PaymentKind::Authorization => r.timeout_s ^= 1,
            75..=79 if r.kind == PaymentKind::Transfer => r.credit = UNKNOWN_ACCOUNT,
            80..=89 if r.kind != PaymentKind::Deposit => {
                // The same key in the same namespace, as another kind of payment.
                let kind = match r.kind {
                    PaymentKind::Withdrawal => {
                        self.pick(&[PaymentKind::Transfer, PaymentKind::Authorization])
                    }
                    _ => PaymentKind::Withdrawal,
                };
                let credit = match (kind, r.kind) {
                    (PaymentKind::Withdrawal, _) => EXTERNAL_ACCOUNT,
                    (_, PaymentKind::Withdrawal) => FEE_ACCOUNT,
                    _ => r.credit,
                };
                r = PaymentRequest { kind, credit, timeout_s: 0, ..r };
            }
            _ => r.amount = r.amount.saturating_sub(1),
        }
        let rightful = match r.kind {
            PaymentKind::Deposit | PaymentKind::Withdrawal if self.chance(50) => OPERATOR,
            PaymentKind::Deposit | PaymentKind::Withdrawal => self.admin(),
            _ => model.owner(r.debit).expect("a payer exists"),
        };
        let user = match self.rng.below(100) {
            0..=91 => rightful,
            92..=97 => self.some_user(),
            _ => STRANGER,
        };
        (user, payment_body(&r))
    }

    /// Asset policies, account limits and the deny-list.
    fn payment_admin(&mut self, model: &Reference) -> (UserId, CommandBody) {
        let user = self.payment_admin_user();
        let body = match self.rng.below(100) {
            0..=29 => self.payment_limits(),
            30..=64 => self.account_limits(model),
            _ => self.blocked(model),
        };
        (user, body)
    }

    /// Per-payment maxima and velocity defaults, often none; sometimes invalid.
    fn payment_limits(&mut self) -> CommandBody {
        let asset = self.payment_asset();
        let unit = unit(asset);
        let transfer_max = match self.rng.below(100) {
            0..=49 => None,
            50..=89 => Some(self.rng.range(unit, 40 * unit)),
            90..=94 => Some(-self.rng.range(0, 3)),
            _ => Some(i64::MAX),
        };
        let velocity_24h = match self.rng.below(100) {
            0..=39 => None,
            40..=89 => Some(self.rng.range(20 * unit, 300 * unit)),
            90..=94 => Some(-self.rng.range(0, 3)),
            _ => Some(i64::MAX),
        };
        CommandBody::SetPaymentLimits { asset, transfer_max, velocity_24h }
    }

    /// Credit limits (none, some, exactly what is owed, one below it, negative, absurd;
    /// in the edge run often exactly the room left, or one more) and velocity
    /// overrides, mostly for accounts that owe something. The empty accounts never get
    /// credit, so they stay empty.
    fn account_limits(&mut self, model: &Reference) -> CommandBody {
        let assets = [USD, COINS[0], COINS[1], COINS[2]];
        let owing: Vec<(AccountId, AssetId)> = model
            .accounts()
            .flat_map(|(id, ..)| assets.map(|asset| (id, asset)))
            .filter(|&(id, asset)| model.money(id, asset).available < 0)
            .collect();
        let (mut account, mut asset) = (self.trading_account(model).0, self.payment_asset());
        if !owing.is_empty() && self.chance(40) {
            (account, asset) = self.pick(&owing);
        }
        if self.chance(3) {
            account = UNKNOWN_ACCOUNT;
        }
        let unit = unit(asset);
        let owed = -model.money(account, asset).available.min(0);
        let room = model.credit_room(account, asset);
        let mut credit_limit = match self.rng.below(100) {
            _ if self.edges && room.is_some() && self.chance(30) => {
                room.unwrap_or(0).saturating_add(self.rng.range(0, 1))
            }
            0..=29 => 0,
            30..=64 => self.rng.range(1, 20 * unit),
            65..=74 => owed,
            75..=80 => owed - 1,
            81..=84 => owed - self.rng.range(2, unit),
            85..=89 => -self.rng.range(1, 5),
            _ => i64::MAX,
        };
        if EMPTY_ACCOUNTS.contains(&account) {
            credit_limit = credit_limit.min(0);
        }
        let velocity_24h = match self.rng.below(100) {
            0..=49 => None,
            50..=89 => Some(self.rng.range(unit, 50 * unit)),
            _ => Some(-self.rng.range(0, 3)),
        };
        CommandBody::SetAccountLimits { account, asset, credit_limit, velocity_24h }
    }

    /// Blocks (short-lived: blocked accounts are usually unblocked soon) and no-op
    /// changes.
    fn blocked(&mut self, model: &Reference) -> CommandBody {
        let listed: Vec<AccountId> =
            model.accounts().map(|(id, ..)| id).filter(|id| model.is_blocked(*id)).collect();
        if !listed.is_empty() && self.chance(60) {
            let account = self.pick(&listed);
            return CommandBody::SetAccountBlocked { account, blocked: !self.chance(90) };
        }
        let (mut account, _) = self.trading_account(model);
        if self.chance(5) {
            account = FEE_ACCOUNT;
        }
        if self.chance(3) {
            account = UNKNOWN_ACCOUNT;
        }
        CommandBody::SetAccountBlocked { account, blocked: self.chance(85) }
    }

    fn tick(&mut self) -> (UserId, CommandBody) {
        (self.payment_admin_user(), CommandBody::Tick)
    }

    /// Freezes (short-lived: frozen accounts are usually thawed next), closes (which
    /// only succeeds on empty accounts) and no-op status changes.
    fn account_status(&mut self, model: &Reference) -> (UserId, CommandBody) {
        let frozen: Vec<AccountId> = model
            .accounts()
            .filter(|(.., status)| *status == AccountStatus::Frozen)
            .map(|(id, ..)| id)
            .collect();
        let user = if self.chance(92) { self.admin() } else { self.some_user() };
        if !frozen.is_empty() && self.chance(70) {
            let account = self.pick(&frozen);
            return (
                user,
                CommandBody::SetAccountStatus { account, status: AccountStatus::Active },
            );
        }
        let (mut account, _) = self.trading_account(model);
        let status = match self.rng.below(100) {
            0..=44 => AccountStatus::Frozen,
            45..=64 => AccountStatus::Closed,
            _ => AccountStatus::Active,
        };
        if self.chance(10) {
            // Fee accounts: the main one holds fees (not empty), the other is in use.
            account = if self.chance(50) { FEE_ACCOUNT } else { ZERO_FEE_ACCOUNT };
        }
        if self.chance(5) {
            account = UNKNOWN_ACCOUNT;
        }
        (user, CommandBody::SetAccountStatus { account, status })
    }

    /// Halts (half of them cancelling the book), which are usually lifted soon after,
    /// and no-op status changes.
    fn instrument_status(&mut self, model: &Reference) -> (UserId, CommandBody) {
        let halted: Vec<InstrumentId> = model
            .instruments()
            .filter(|(_, status)| *status == InstrumentStatus::Halted)
            .map(|(id, _)| id)
            .collect();
        let user = if self.chance(95) { self.admin() } else { self.some_user() };
        let cancel_resting = self.chance(50);
        let (instrument, status) = if !halted.is_empty() && self.chance(80) {
            let status =
                if self.chance(90) { InstrumentStatus::Trading } else { InstrumentStatus::Halted };
            (self.pick(&halted), status)
        } else {
            let status =
                if self.chance(25) { InstrumentStatus::Halted } else { InstrumentStatus::Trading };
            (self.instrument(), status)
        };
        (user, CommandBody::SetInstrumentStatus { instrument, status, cancel_resting })
    }

    /// New users and accounts: a few fit the capacities, the rest exist already or
    /// are out of range.
    fn create(&mut self) -> (UserId, CommandBody) {
        let user = if self.chance(90) { self.admin() } else { self.some_user() };
        let body = if self.chance(50) {
            CommandBody::CreateUser { user: UserId(self.rng.below(14) as u32), role: Role::Trader }
        } else {
            let account = AccountId(self.rng.below(17) as u32);
            CommandBody::CreateAccount { account, owner: UserId(1 + self.rng.below(12) as u32) }
        };
        (user, body)
    }

    /// A read-only question from someone who may or may not be allowed to ask it.
    fn query(&mut self, model: &Reference) -> (UserId, Query) {
        if self.chance(40) {
            return self.payment_query(model);
        }
        let (mut account, owner) = self.trading_account(model);
        let user = match self.rng.below(100) {
            0..=69 => owner,
            70..=79 => self.admin(),
            80..=84 => OPERATOR,
            85..=96 => self.some_user(),
            _ => STRANGER,
        };
        if self.chance(5) {
            account = UNKNOWN_ACCOUNT;
        }
        let query = match self.rng.below(4) {
            0 => Query::Balances { account },
            1 => Query::OpenOrders { account },
            2 => Query::Depth {
                instrument: self.instrument(),
                levels: self.pick(&[0, 1, 3, u16::MAX]),
            },
            _ => {
                let mine: Vec<_> = model.orders().iter().filter(|o| o.account == account).collect();
                let order = match mine.is_empty() || self.chance(20) {
                    true => OrderRef::Client(ClientOrderId(999)),
                    false => {
                        let order = mine[self.rng.below(mine.len() as u64) as usize];
                        self.order_ref(order.id, order.client)
                    }
                };
                Query::Order { account, order }
            }
        };
        (user, query)
    }

    /// One payment (named as a capture names it) or an account's payment history; every
    /// 16th, a deposit named on the external account instead (after the same draws).
    fn payment_query(&mut self, model: &Reference) -> (UserId, Query) {
        let drawn = self.drawn_payment_query(model);
        self.payment_queries += 1;
        let turn = self.payment_queries / 16;
        if self.payment_queries.is_multiple_of(16)
            && let Some(deposit) =
                model.payments().iter().rev().find(|p| p.info.kind == PaymentKind::Deposit)
        {
            // A deposit looked up in the external account's namespace: found for admins
            // and operators, an unknown account to its credit side's owner.
            let info = deposit.info;
            let user = match turn % 3 {
                0 => OPERATOR,
                1 => ADMIN,
                _ => model.owner(info.credit).expect("a deposit's credit side exists"),
            };
            let payment = match turn % 4 {
                0 => PaymentRef::Id(info.payment_id),
                _ => PaymentRef::Client(info.client_payment_id),
            };
            return (user, Query::Payment { account: EXTERNAL_ACCOUNT, payment });
        }
        drawn
    }

    fn drawn_payment_query(&mut self, model: &Reference) -> (UserId, Query) {
        if self.chance(30) {
            let (mut account, owner) = self.trading_account(model);
            if self.chance(5) {
                account = UNKNOWN_ACCOUNT;
            }
            let user = match self.rng.below(100) {
                0..=59 => owner,
                60..=74 => self.admin(),
                75..=89 => OPERATOR,
                90..=97 => self.some_user(),
                _ => STRANGER,
            };
            let limit = self.pick(&[0, 1, 3, 20, u16::MAX]);
            return (user, Query::Payments { account, limit });
        }
        let Some((mut user, account, payment)) = self.resolution(model) else {
            return (SYSTEM_USER, Query::Payments { account: FEE_ACCOUNT, limit: 3 });
        };
        if self.chance(20) {
            user = OPERATOR;
        }
        (user, Query::Payment { account, payment })
    }
}

// ---- the harness ---------------------------------------------------------------------

/// A user that never exists: a command from it is rejected at the first check, which
/// is the baseline `check_unchanged` compares against.
const NOBODY: UserId = UserId(u32::MAX);

/// Commands kept for the failure report.
const HISTORY_LEN: usize = 12;

/// The step number of the setup and of the final comparison, which are not random steps.
const NO_STEP: usize = usize::MAX;

struct Harness {
    seed: u64,
    engine: Engine,
    model: Reference,
    sequencer: Sequencer,
    generator: Generator,
    coverage: Coverage,
    /// Deposits minus withdrawals per asset, summed from the engine's `Payment` events.
    external: BTreeMap<AssetId, i128>,
    /// Lots per instrument and payment events by `[kind][action]`, tallied from the
    /// events, for the engine's statistics (`Instrument::traded_lots`,
    /// `Engine::payment_events`).
    traded_lots: BTreeMap<InstrumentId, u64>,
    payment_events: [[u64; PaymentAction::COUNT]; PaymentKind::COUNT],
    /// Every balance as the `Balance` events so far left it (available, held,
    /// pending): what a client that only listens sees. It must equal the queried state
    /// after every command, so no command may leave a changed balance unpublished.
    balance_feed: BTreeMap<(AccountId, AssetId), (i64, i64, i64)>,
    /// The state queries compared after every successful command.
    state_queries: Vec<Query>,
    /// The payment queries compared every `PAYMENT_HISTORY_EVERY` steps.
    payment_queries: Vec<Query>,
    history: VecDeque<Command>,
    expected: Vec<Event>,
    actual: Vec<Event>,
    /// Commands (payment changes counting twice) and predicted rejects so far, for
    /// `heavy_stride`.
    commands_seen: u64,
    rejects_seen: u64,
}

/// How often the recent payment history of every account is compared (the payment
/// events themselves are compared at every step).
const PAYMENT_HISTORY_EVERY: usize = 250;

/// Payments per step of `Harness::heavy_stride`.
const HEAVY_CHECK_PAYMENTS: usize = 100;

impl Harness {
    fn new(run: Run) -> Harness {
        let limits = limits(run.payments_max);
        let accounts = (0..=limits.accounts_max).map(AccountId);
        let mut state_queries: Vec<Query> = accounts
            .clone()
            .flat_map(|account| [Query::Balances { account }, Query::OpenOrders { account }])
            .collect();
        for instrument in INSTRUMENTS.into_iter().chain([UNKNOWN_INSTRUMENT]) {
            state_queries.push(Query::Depth { instrument, levels: u16::MAX });
        }
        state_queries.push(Query::Reference);
        let payment_queries = accounts.map(|account| Query::Payments { account, limit: 4 });
        Harness {
            seed: run.seed,
            engine: Engine::new(limits),
            model: Reference::new(limits),
            sequencer: Sequencer { seq: 0, time_ns: run.start_ns },
            generator: Generator::new(run.seed, run.edges),
            coverage: Coverage::default(),
            external: BTreeMap::new(),
            traded_lots: BTreeMap::new(),
            payment_events: [[0; PaymentAction::COUNT]; PaymentKind::COUNT],
            balance_feed: BTreeMap::new(),
            state_queries,
            payment_queries: payment_queries.collect(),
            history: VecDeque::new(),
            expected: Vec::new(),
            actual: Vec::new(),
            commands_seen: 0,
            rejects_seen: 0,
        }
    }

    fn setup(&mut self) {
        for body in setup_bodies() {
            let cmd = self.sequencer.stamp(SYSTEM_USER, body);
            self.apply_both(NO_STEP, &cmd);
            let rejected = self.actual.iter().any(|e| matches!(e, Event::Rejected(_)));
            assert!(!rejected, "setup command rejected: {cmd:?} -> {:?}", self.actual);
        }
        self.compare_state(NO_STEP);
    }

    /// One random command through both, with every per-step check.
    fn step(&mut self, step: usize) {
        // The sequencer's clock is engine time (the largest stamp so far).
        let now = self.sequencer.time_ns;
        let (time_ns, aim) = self.generator.stamp(&self.model, now);
        let (user, body) = self.generator.next(&self.model, time_ns, aim);
        let cmd = Command { time_ns, ..self.sequencer.stamp(user, body) };
        self.sequencer.time_ns = now.max(time_ns);
        self.coverage.stale_stamps += u64::from(time_ns < now);
        self.apply_both(step, &cmd);
        self.coverage.observe(&cmd, &self.actual, &self.model);
        let next_ns = self.sequencer.time_ns + 1;
        let pending = self.model.pending_authorizations();
        let due_next = pending.filter(|p| p.info.deadline_ns == next_ns).count();
        self.coverage.pending_one_ns_before_deadline += due_next as u64;
        if !matches!(self.actual.as_slice(), [Event::Rejected(_)]) {
            self.compare_state(step);
        }
        if step.is_multiple_of(PAYMENT_HISTORY_EVERY) {
            for query in self.payment_queries.clone() {
                self.compare_query(step, SYSTEM_USER, &query);
            }
        }
        if self.generator.chance(5) {
            let (user, query) = self.generator.query(&self.model);
            self.compare_query(step, user, &query);
        }
        let live = self.model.orders().len();
        self.coverage.live_orders_max = self.coverage.live_orders_max.max(live);
        self.coverage.live_orders_sum += live;
    }

    /// Applies `cmd` to the model and the engine; requires identical events, both sets
    /// of invariants, and an unchanged engine state after a reject.
    fn apply_both(&mut self, step: usize, cmd: &Command) {
        self.history.push_back(*cmd);
        if self.history.len() > HISTORY_LEN {
            self.history.pop_front();
        }
        self.expected.clear();
        self.model.apply(cmd, &mut self.expected);
        // Only a predicted reject needs the before-image; if the engine disagrees, the
        // event comparison below reports it first. (Expiries may come before the
        // `Rejected`: they are time passing, and the baseline repeats them.)
        let rejected = matches!(self.expected.last(), Some(Event::Rejected(_)));
        self.rejects_seen += u64::from(rejected);
        let check_reject = rejected && self.rejects_seen.is_multiple_of(self.heavy_stride());
        let before = check_reject.then(|| self.engine.clone());
        self.actual.clear();
        self.engine.apply(cmd, &mut self.actual);
        if self.expected != self.actual {
            let diff = event_diff(&self.expected, &self.actual);
            self.fail(step, "events differ (expected = reference model)", &diff);
        }
        if let Some(before) = before {
            self.check_unchanged(step, before, cmd);
        }
        let mut payment_changed = false;
        for event in &self.actual {
            match event {
                Event::Fill(fill) => {
                    *self.traded_lots.entry(fill.instrument).or_default() += fill.qty.0 as u64;
                }
                Event::Payment { action, info } => {
                    self.payment_events[info.kind.index()][action.index()] += 1;
                }
                Event::Balance(b) => {
                    self.balance_feed
                        .insert((b.account, b.asset), (b.available, b.held, b.pending));
                }
                _ => {}
            }
            match event {
                Event::Payment { action: PaymentAction::Duplicate, .. } => {}
                Event::Payment { action, info } => {
                    payment_changed = true;
                    let amount = i128::from(info.amount);
                    let external = self.external.entry(info.asset).or_default();
                    match (action, info.kind) {
                        (PaymentAction::Created, PaymentKind::Deposit) => *external += amount,
                        (PaymentAction::Created, PaymentKind::Withdrawal) => *external -= amount,
                        _ => {}
                    }
                }
                Event::PaymentLimitsSet { .. }
                | Event::AccountLimitsSet { .. }
                | Event::AccountBlocked { .. } => payment_changed = true,
                _ => {}
            }
        }
        // Commands that changed a payment or a payment setting count double.
        self.commands_seen += 1 + u64::from(payment_changed);
        if self.commands_seen % self.heavy_stride() <= u64::from(payment_changed) {
            if let Err(why) = self.engine.check_invariants() {
                self.fail(step, "engine invariants", &why);
            }
            self.coverage.engine_invariant_checks += 1;
        }
        if let Err(why) = self.model.check_invariants() {
            self.fail(step, "reference model invariants", &why);
        }
    }

    /// The engine's whole-state checks (`check_invariants`, and the clone and the two
    /// state hashes of `check_unchanged`) walk every payment ever recorded, so their cost
    /// grows with the run. They run on every command (every reject) while the payment
    /// table is small, and on about one in `heavy_stride()` later (twice as often after
    /// commands that changed a payment or a payment setting), which keeps their cost
    /// per step flat. Events, the model's invariants (conservation included) and the
    /// state queries are still checked at every step.
    fn heavy_stride(&self) -> u64 {
        1 + (self.model.payments().len() / HEAVY_CHECK_PAYMENTS) as u64
    }

    /// A rejected command must change nothing but the sequence number and the clock
    /// (and what the clock expires). The state hash covers all of it, so the
    /// before-image is brought to the same sequence and time with the most trivial
    /// reject there is (an unknown user, refused before anything is looked at, after
    /// the same expiries); then the two hashes must agree.
    fn check_unchanged(&mut self, step: usize, mut before: Engine, cmd: &Command) {
        let body = CommandBody::MassCancel { account: AccountId(0), instrument: None };
        let baseline = Command { user: NOBODY, body, ..*cmd };
        let mut events = Vec::new();
        before.apply(&baseline, &mut events);
        let reason = match events.last() {
            Some(Event::Rejected(r)) => Some(r.reason),
            _ => None,
        };
        assert_eq!(reason, Some(RejectReason::UnknownUser), "the baseline is a plain reject");
        let expiries = &events[..events.len() - 1];
        assert_eq!(expiries, &self.actual[..expiries.len()], "the baseline's expiries");
        if before.state_hash() != self.engine.state_hash() {
            self.fail(
                step,
                "a rejected command changed the state hash",
                &format!("{:?}", self.actual),
            );
        }
        self.coverage.reject_hash_checks += 1;
    }

    /// The whole observable state, through the public queries, answered by both.
    fn compare_state(&mut self, step: usize) {
        let (mut expected, mut actual) = (Vec::new(), Vec::new());
        for query in &self.state_queries {
            self.model.query(SYSTEM_USER, query, &mut expected);
            self.engine.query(SYSTEM_USER, query, &mut actual);
        }
        if expected != actual {
            self.fail(step, "state differs after the command", &event_diff(&expected, &actual));
        }
        if let Err(why) = self.check_published(&actual) {
            self.fail(step, "published state breaks an invariant", &why);
        }
    }

    fn compare_query(&mut self, step: usize, user: UserId, query: &Query) {
        let (mut expected, mut actual) = (Vec::new(), Vec::new());
        self.model.query(user, query, &mut expected);
        self.engine.query(user, query, &mut actual);
        if expected != actual {
            let what = format!("query {query:?} by {user:?}\n{}", event_diff(&expected, &actual));
            self.fail(step, "query answers differ", &what);
        }
        self.coverage.observe_query(query, &actual);
    }

    /// The invariants, checked on what the engine publishes rather than on its
    /// internals: sorted, uncrossed depth; holds equal to obligations (by the model's
    /// arithmetic); held balances equal to order holds; pending balances equal to the
    /// pending authorizations (as the agreed events left them); no balance below its
    /// credit limit; conservation against the deposits and withdrawals seen in the
    /// events; every balance equal to the last `Balance` event published for it.
    fn check_published(&self, answers: &[Event]) -> Result<(), String> {
        let mut authorized: BTreeMap<(AccountId, AssetId), i64> = BTreeMap::new();
        for p in self.model.pending_authorizations() {
            *authorized.entry((p.info.debit, p.info.asset)).or_default() += p.info.amount;
        }
        let mut order_holds: BTreeMap<(AccountId, AssetId), i64> = BTreeMap::new();
        let mut held: BTreeMap<(AccountId, AssetId), i64> = BTreeMap::new();
        let mut totals: BTreeMap<AssetId, i128> = BTreeMap::new();
        let mut depth: BTreeMap<(InstrumentId, u8), Vec<Price>> = BTreeMap::new();
        for answer in answers {
            match answer {
                Event::OrderInfo(o) => {
                    let owed = self.model.obligation(o.instrument, o.side, o.price, o.remaining);
                    if o.remaining.0 <= 0 || o.hold != owed {
                        return Err(format!("{o:?} should hold {owed}"));
                    }
                    let asset = self.model.hold_asset(o.instrument, o.side);
                    *order_holds.entry((o.account, asset)).or_default() += o.hold;
                }
                Event::BalanceInfo(b) => {
                    let key = (b.account, b.asset);
                    let heard = self.balance_feed.get(&key).copied().unwrap_or((0, 0, 0));
                    if heard != (b.available, b.held, b.pending) {
                        return Err(format!("{b:?}, but its last Balance event said {heard:?}"));
                    }
                    let floor = -self.model.credit_limit(b.account, b.asset);
                    if b.available < floor || b.held < 0 || b.pending < 0 {
                        return Err(format!("balance below zero (credit down to {floor}): {b:?}"));
                    }
                    let owed = authorized.get(&(b.account, b.asset)).copied().unwrap_or(0);
                    if b.pending != owed {
                        return Err(format!("{b:?}: pending authorizations {owed}"));
                    }
                    held.insert((b.account, b.asset), b.held);
                    let total =
                        i128::from(b.available) + i128::from(b.held) + i128::from(b.pending);
                    *totals.entry(b.asset).or_default() += total;
                }
                Event::DepthLevel(l) if l.qty.0 <= 0 || l.orders == 0 => {
                    return Err(format!("empty level published: {l:?}"));
                }
                Event::DepthLevel(l) => {
                    depth.entry((l.instrument, l.side as u8)).or_default().push(l.price)
                }
                _ => {}
            }
        }
        for (key, amount) in &held {
            let owed = order_holds.get(key).copied().unwrap_or(0);
            if *amount != owed {
                return Err(format!("{key:?}: held {amount}, orders hold {owed}"));
            }
        }
        if totals != self.external {
            return Err(format!("conservation: balances {totals:?}, external {:?}", self.external));
        }
        check_depth(&depth)
    }

    /// The final state once more, plus every live order by engine id and by client id,
    /// asked by its owner and by someone else; every payment by id from each of its
    /// sides and by client id from its debit side, asked by the owner, the operator and
    /// another trader; and every account's whole payment history.
    fn compare_final(&mut self) {
        let step = NO_STEP;
        self.compare_state(step);
        assert_eq!(self.engine.live_orders(), self.model.orders().len());
        let orders = self.model.orders().to_vec();
        for order in orders {
            for by in [OrderRef::Id(order.id), OrderRef::Client(order.client)] {
                let query = Query::Order { account: order.account, order: by };
                for user in [order.owner, SYSTEM_USER, UserId(order.owner.0 % 6 + 1), STRANGER] {
                    self.compare_query(step, user, &query);
                }
            }
        }
        assert_eq!(self.engine.payment_count(), self.model.payments().len());
        // The statistics agree with the events (and, not being state, with nothing else).
        for instrument in self.engine.instruments() {
            let id = instrument.spec.instrument;
            assert_eq!(instrument.traded_lots, self.traded_lots.get(&id).copied().unwrap_or(0));
        }
        assert_eq!(self.engine.payment_events(), &self.payment_events);
        let payments = self.model.payments().to_vec();
        for p in payments {
            let info = p.info;
            let mut named = vec![(info.debit, PaymentRef::Client(info.client_payment_id))];
            for account in [info.debit, info.credit] {
                named.push((account, PaymentRef::Id(info.payment_id)));
            }
            for (account, by) in named {
                let Some(owner) = self.model.owner(account) else { continue };
                for user in [owner, OPERATOR, UserId(owner.0 % 6 + 1)] {
                    self.compare_query(step, user, &Query::Payment { account, payment: by });
                }
            }
            assert_eq!(self.engine.payment(info.payment_id), Some(info), "payment by id");
        }
        for account in (0..=self.engine.limits().accounts_max).map(AccountId) {
            for limit in [1, u16::MAX] {
                self.compare_query(step, SYSTEM_USER, &Query::Payments { account, limit });
            }
        }
    }

    fn fail(&self, step: usize, what: &str, detail: &str) -> ! {
        let cmd = self.history.back().expect("a command ran");
        let recent: Vec<String> = self.history.iter().map(|c| format!("  {c:?}")).collect();
        let step = if step == NO_STEP { "setup or final".to_string() } else { step.to_string() };
        panic!(
            "DIFFERENTIAL MISMATCH: {what}\nseed {:#x}, step {step}, seq {}\ncommand: {cmd:?}\n\
             recent commands (oldest first):\n{}\n{detail}",
            self.seed,
            cmd.seq,
            recent.join("\n"),
        );
    }
}

/// Bids strictly descending, asks strictly ascending, best bid below best ask.
fn check_depth(depth: &BTreeMap<(InstrumentId, u8), Vec<Price>>) -> Result<(), String> {
    let (buy, sell) = (Side::Buy as u8, Side::Sell as u8);
    for ((instrument, side), prices) in depth {
        let sorted =
            prices.windows(2).all(|w| if *side == buy { w[0] > w[1] } else { w[0] < w[1] });
        if !sorted {
            return Err(format!("{instrument:?} side {side}: levels out of order {prices:?}"));
        }
    }
    for instrument in INSTRUMENTS {
        let best = |side: u8| depth.get(&(instrument, side)).and_then(|p| p.first()).copied();
        if let (Some(bid), Some(ask)) = (best(buy), best(sell))
            && bid >= ask
        {
            return Err(format!("{instrument:?} crossed: bid {bid:?} >= ask {ask:?}"));
        }
    }
    Ok(())
}

/// Both event lists with the first difference marked.
fn event_diff(expected: &[Event], actual: &[Event]) -> String {
    let first = expected.iter().zip(actual).position(|(e, a)| e != a);
    let first = first.unwrap_or(expected.len().min(actual.len()));
    let list = |events: &[Event]| -> String {
        let lines = events.iter().enumerate().map(|(i, e)| {
            let mark = if i == first { ">>" } else { "  " };
            format!("{mark} {i:3} {e:?}")
        });
        lines.collect::<Vec<_>>().join("\n")
    };
    format!(
        "first difference at event {first}\nexpected (reference model):\n{}\nactual (engine):\n{}",
        list(expected),
        list(actual),
    )
}

// ---- coverage ------------------------------------------------------------------------

/// What the stream exercised, counted from the (agreed) events.
#[derive(Debug, Default)]
struct Coverage {
    fills: u64,
    /// Fills where both sides are the same account (self-trade prevention `Allow`).
    self_fills: u64,
    /// Fills where the fee account itself traded (its balance moves twice in one fill).
    fee_account_fills: u64,
    /// New orders that traded at two or more prices.
    sweeps: u64,
    market_orders_filled: u64,
    fok_filled: u64,
    post_only_rested: u64,
    cancels: HashMap<CancelReason, u64>,
    rejects: HashMap<RejectReason, u64>,
    /// New orders on which self-trade prevention cancelled something, by mode.
    stp_by_mode: HashMap<StpMode, u64>,
    /// Self-trade cancels of a resting order of another account of the same owner.
    stp_across_accounts: u64,
    /// Amends whose matching hit self-trade prevention.
    stp_on_amend: u64,
    amends_kept_priority: u64,
    amends_lost_priority: u64,
    amends_that_traded: u64,
    fills_of_frozen_makers: u64,
    halts: u64,
    resumes: u64,
    mass_cancelled_orders: u64,
    freezes: u64,
    closes: u64,
    deposits: u64,
    withdrawals: u64,
    accounts_created: u64,
    reject_hash_checks: u64,
    engine_invariant_checks: u64,
    live_orders_max: usize,
    /// Sum over steps of the live order count, for the mean.
    live_orders_sum: usize,
    /// Commands that are payments or payment administration.
    payment_commands: u64,
    /// `Payment` events by action.
    payment_actions: HashMap<PaymentAction, u64>,
    /// New payments by kind.
    payments_created: HashMap<PaymentKind, u64>,
    /// Duplicates by the command that repeated a payment (or a capture or void).
    duplicates: HashMap<CommandKind, u64>,
    partial_captures: u64,
    /// Captures refused because their debit account was frozen.
    captures_from_frozen: u64,
    /// Transfers into a frozen account.
    transfers_to_frozen: u64,
    /// Expiries at exactly their deadline (the command's stamp was the deadline).
    expired_at_deadline: u64,
    /// Authorizations still pending one nanosecond before their deadline.
    pending_one_ns_before_deadline: u64,
    /// Expiries that came before a command's `Rejected`.
    expiries_before_reject: u64,
    /// Expiries emitted by a `Tick`.
    expiries_on_tick: u64,
    /// Commands stamped behind engine time.
    stale_stamps: u64,
    /// Balance events with credit in use (available below zero).
    credit_in_use: u64,
    /// Rejected payment commands by command and reason.
    payment_rejects: HashMap<(CommandKind, RejectReason), u64>,
    /// Payment queries compared, and their rejects by reason.
    payment_queries: u64,
    /// Deposits found by a payment query on the external account.
    deposits_found_externally: u64,
    payment_query_rejects: HashMap<RejectReason, u64>,
}

/// The reject reasons every full run must produce on payment commands (each in at least
/// one of the commands that can raise it).
const PAYMENT_REJECTS: [RejectReason; 25] = [
    RejectReason::UnknownUser,
    RejectReason::NotAdmin,
    RejectReason::UnknownAccount,
    RejectReason::AccountClosed,
    RejectReason::AccountNotOwned,
    RejectReason::AccountFrozen,
    RejectReason::AccountBlocked,
    RejectReason::ArithmeticOverflow,
    RejectReason::InsufficientBalance,
    RejectReason::UnknownAsset,
    RejectReason::InvalidDefinition,
    RejectReason::AmountNotPositive,
    RejectReason::StatusUnchanged,
    RejectReason::PaymentIdZero,
    RejectReason::SameAccount,
    RejectReason::UnknownCreditAccount,
    RejectReason::CreditAccountClosed,
    RejectReason::CreditAccountBlocked,
    RejectReason::AboveTransferMax,
    RejectReason::VelocityLimitExceeded,
    RejectReason::PaymentIdConflict,
    RejectReason::UnknownPayment,
    RejectReason::PaymentNotPending,
    RejectReason::CaptureAboveAuthorized,
    RejectReason::CreditLimitBelowUsage,
];

impl Coverage {
    fn observe(&mut self, cmd: &Command, events: &[Event], model: &Reference) {
        for event in events {
            self.observe_event(event, model);
        }
        let kind = cmd.body.kind();
        self.payment_commands += u64::from(is_payment_command(kind));
        let expiries = events
            .iter()
            .filter(|e| matches!(e, Event::Payment { action: PaymentAction::Expired, .. }))
            .count() as u64;
        match events.last() {
            Some(Event::Rejected(r)) => {
                self.expiries_before_reject += expiries;
                if is_payment_command(kind) {
                    *self.payment_rejects.entry((kind, r.reason)).or_default() += 1;
                }
            }
            Some(Event::Ticked { .. }) => self.expiries_on_tick += expiries,
            Some(Event::Payment { action: PaymentAction::Duplicate, .. }) => {
                *self.duplicates.entry(kind).or_default() += 1
            }
            _ => {}
        }
        let fills =
            || events.iter().filter_map(|e| if let Event::Fill(f) = e { Some(f) } else { None });
        let stp_cancels = events.iter().filter_map(|e| match e {
            Event::Cancelled(c) if c.reason == CancelReason::SelfTrade => Some(c),
            _ => None,
        });
        match &cmd.body {
            CommandBody::NewOrder(order) => {
                let mut prices: Vec<Price> = fills().map(|f| f.price).collect();
                prices.dedup();
                self.sweeps += u64::from(prices.len() >= 2);
                let traded = u64::from(!prices.is_empty());
                if order.order_type == OrderType::Market {
                    self.market_orders_filled += traded;
                }
                let killed = events.iter().any(
                    |e| matches!(e, Event::Cancelled(c) if c.reason == CancelReason::FokUnfilled),
                );
                if order.time_in_force == TimeInForce::Fok && !killed {
                    self.fok_filled += traded;
                }
                let rested = events
                    .last()
                    .is_some_and(|e| matches!(e, Event::Level(l) if l.side == order.side));
                self.post_only_rested += u64::from(order.post_only && rested);
                let stp: Vec<_> = stp_cancels.collect();
                if !stp.is_empty() {
                    *self.stp_by_mode.entry(order.stp_mode).or_default() += 1;
                }
                self.stp_across_accounts +=
                    stp.iter().filter(|c| c.account != order.account).count() as u64;
            }
            CommandBody::Amend(_) => {
                let lost =
                    events.iter().any(|e| matches!(e, Event::Amended(a) if !a.priority_kept));
                self.amends_that_traded += u64::from(lost && fills().next().is_some());
                self.stp_on_amend += u64::from(stp_cancels.count() > 0);
            }
            _ => {}
        }
    }

    fn observe_event(&mut self, event: &Event, model: &Reference) {
        match *event {
            Event::Fill(f) => {
                self.fills += 1;
                self.self_fills += u64::from(f.maker_account == f.taker_account);
                let fee_account = [f.maker_account, f.taker_account].contains(&FEE_ACCOUNT);
                self.fee_account_fills += u64::from(fee_account);
                let frozen = model.account_status(f.maker_account) == Some(AccountStatus::Frozen);
                self.fills_of_frozen_makers += u64::from(frozen);
            }
            Event::Cancelled(c) => *self.cancels.entry(c.reason).or_default() += 1,
            Event::Rejected(r) => {
                *self.rejects.entry(r.reason).or_default() += 1;
                let frozen_debit = r.reason == RejectReason::AccountFrozen;
                self.captures_from_frozen +=
                    u64::from(frozen_debit && r.kind == CommandKind::Capture);
            }
            Event::Amended(a) if a.priority_kept => self.amends_kept_priority += 1,
            Event::Amended(_) => self.amends_lost_priority += 1,
            Event::Payment { action, info } => {
                *self.payment_actions.entry(action).or_default() += 1;
                let frozen = |account| model.account_status(account) == Some(AccountStatus::Frozen);
                match action {
                    PaymentAction::Created => {
                        *self.payments_created.entry(info.kind).or_default() += 1;
                        self.deposits += u64::from(info.kind == PaymentKind::Deposit);
                        self.withdrawals += u64::from(info.kind == PaymentKind::Withdrawal);
                        let transfer = info.kind == PaymentKind::Transfer;
                        self.transfers_to_frozen += u64::from(transfer && frozen(info.credit));
                    }
                    PaymentAction::Captured => {
                        self.partial_captures += u64::from(info.captured < info.amount);
                    }
                    PaymentAction::Expired => {
                        self.expired_at_deadline += u64::from(info.resolved_ns == info.deadline_ns)
                    }
                    PaymentAction::Voided | PaymentAction::Duplicate => {}
                }
            }
            Event::Balance(b) => self.credit_in_use += u64::from(b.available < 0),
            Event::InstrumentStatusChanged { status: InstrumentStatus::Halted, .. } => {
                self.halts += 1
            }
            Event::InstrumentStatusChanged { .. } => self.resumes += 1,
            Event::AccountStatusChanged { status: AccountStatus::Frozen, .. } => self.freezes += 1,
            Event::AccountStatusChanged { status: AccountStatus::Closed, .. } => self.closes += 1,
            Event::AccountCreated { .. } => self.accounts_created += 1,
            Event::MassCancelled { count, .. } => self.mass_cancelled_orders += u64::from(count),
            _ => {}
        }
    }

    fn observe_query(&mut self, query: &Query, answer: &[Event]) {
        if !matches!(query, Query::Payment { .. } | Query::Payments { .. }) {
            return;
        }
        self.payment_queries += 1;
        if let Query::Payment { account: EXTERNAL_ACCOUNT, .. } = query {
            let found = matches!(answer.first(), Some(Event::PaymentInfo(_)));
            self.deposits_found_externally += u64::from(found);
        }
        if let [Event::Rejected(r)] = answer {
            *self.payment_query_rejects.entry(r.reason).or_default() += 1;
        }
    }

    /// Rejects of payment commands with this reason, whatever the command.
    fn payment_rejects_of(&self, reason: RejectReason) -> u64 {
        self.payment_rejects.iter().filter(|((_, r), _)| *r == reason).map(|(_, n)| n).sum()
    }

    /// The edge run: the payment table filled up and was then refused (while duplicates
    /// still answer), and long timeouts overflowed near the top of engine time.
    fn assert_edges(&self, run: Run, payments: usize) {
        let seed = run.seed;
        assert_eq!(payments, run.payments_max as usize, "seed {seed:#x}: the table filled");
        let full = self.payment_rejects_of(RejectReason::PaymentsFull);
        assert!(full >= 100, "seed {seed:#x}: PaymentsFull = {full}");
        let key = (CommandKind::Authorize, RejectReason::ArithmeticOverflow);
        let overflows = self.payment_rejects.get(&key).copied().unwrap_or(0);
        assert!(overflows >= 5, "seed {seed:#x}: deadline overflows = {overflows}");
        let duplicates: u64 = self.duplicates.values().sum();
        assert!(duplicates >= 20, "seed {seed:#x}: duplicates = {duplicates}");
    }

    /// Minimum counts per seed: far below what a healthy stream produces, far above
    /// zero, so a generator change that stops exercising something fails loudly.
    fn assert_exercised(&self, seed: u64) {
        let mut missing = Vec::new();
        let mut at_least = |name: &str, count: u64, min: u64| {
            if count < min {
                missing.push(format!("{name} = {count}, want >= {min}"));
            }
        };
        at_least("fills", self.fills, 5_000);
        at_least("self-fills", self.self_fills, 150);
        at_least("fills of the fee account", self.fee_account_fills, 300);
        at_least("sweeps", self.sweeps, 500);
        at_least("market orders filled", self.market_orders_filled, 1_000);
        at_least("FOK orders filled", self.fok_filled, 500);
        at_least("post-only orders rested", self.post_only_rested, 800);
        at_least("amends that kept priority", self.amends_kept_priority, 1_000);
        at_least("amends that lost priority", self.amends_lost_priority, 2_000);
        at_least("amends that traded", self.amends_that_traded, 300);
        at_least("self-trade cancels across accounts", self.stp_across_accounts, 30);
        at_least("self-trade prevention on amends", self.stp_on_amend, 25);
        at_least("fills of frozen makers", self.fills_of_frozen_makers, 80);
        at_least("halts", self.halts, 50);
        at_least("resumes", self.resumes, 50);
        at_least("freezes", self.freezes, 150);
        at_least("closed accounts", self.closes, 1);
        at_least("accounts created", self.accounts_created, 1);
        at_least("mass-cancelled orders", self.mass_cancelled_orders, 400);
        at_least("deposits", self.deposits, 700);
        at_least("withdrawals", self.withdrawals, 400);
        // Sampled once the payment table grows (see `Harness::heavy_stride`).
        at_least("reject hash checks", self.reject_hash_checks, 2_000);
        at_least("engine invariant checks", self.engine_invariant_checks, 4_000);
        let full = self.live_orders_max == limits(0).orders_max as usize;
        at_least("order table filled up", u64::from(full), 1);
        for mode in [StpMode::CancelNewest, StpMode::CancelOldest, StpMode::CancelBoth] {
            let count = self.stp_by_mode.get(&mode).copied().unwrap_or(0);
            at_least(&format!("self-trade prevention {mode:?}"), count, 80);
        }
        let reasons = [
            CancelReason::User,
            CancelReason::IocRemainder,
            CancelReason::FokUnfilled,
            CancelReason::SelfTrade,
            CancelReason::MassCancel,
            CancelReason::Halt,
        ];
        for reason in reasons {
            let count = self.cancels.get(&reason).copied().unwrap_or(0);
            at_least(&format!("cancels {reason:?}"), count, 300);
        }
        // Off-grid decimals are refused before integers reach the engine's trading path;
        // the stream has no way to produce them. A full payment table is the edge run's.
        let unreachable =
            [RejectReason::PriceOffTick, RejectReason::QtyOffLot, RejectReason::PaymentsFull];
        for reason in RejectReason::ALL.iter().filter(|r| !unreachable.contains(r)) {
            let count = self.rejects.get(reason).copied().unwrap_or(0);
            at_least(&format!("rejects {reason:?}"), count, 5);
        }

        // Payments.
        at_least("payment commands", self.payment_commands, 20_000);
        for reason in PAYMENT_REJECTS {
            let count = self.payment_rejects_of(reason);
            at_least(&format!("payment rejects {reason:?}"), count, 5);
        }
        let actions = [
            PaymentAction::Created,
            PaymentAction::Captured,
            PaymentAction::Voided,
            PaymentAction::Expired,
            PaymentAction::Duplicate,
        ];
        for action in actions {
            let count = self.payment_actions.get(&action).copied().unwrap_or(0);
            at_least(&format!("payment events {action:?}"), count, 100);
        }
        let kinds = [
            PaymentKind::Transfer,
            PaymentKind::Authorization,
            PaymentKind::Deposit,
            PaymentKind::Withdrawal,
        ];
        for kind in kinds {
            let count = self.payments_created.get(&kind).copied().unwrap_or(0);
            at_least(&format!("payments created {kind:?}"), count, 300);
        }
        let repeated = [
            CommandKind::Deposit,
            CommandKind::Withdraw,
            CommandKind::Transfer,
            CommandKind::Authorize,
            CommandKind::Capture,
            CommandKind::Void,
        ];
        for kind in repeated {
            let count = self.duplicates.get(&kind).copied().unwrap_or(0);
            at_least(&format!("duplicates of {kind:?}"), count, 5);
        }
        at_least("partial captures", self.partial_captures, 100);
        at_least("captures refused for a frozen debit", self.captures_from_frozen, 1);
        at_least("transfers to frozen accounts", self.transfers_to_frozen, 5);
        at_least("expiries exactly at the deadline", self.expired_at_deadline, 20);
        at_least("pending 1 ns before the deadline", self.pending_one_ns_before_deadline, 20);
        at_least("expiries before a reject", self.expiries_before_reject, 50);
        at_least("expiries on a tick", self.expiries_on_tick, 5);
        at_least("stamps behind engine time", self.stale_stamps, 50);
        at_least("balances using credit", self.credit_in_use, 100);
        at_least("payment queries", self.payment_queries, 1_000);
        at_least("deposits found on the external account", self.deposits_found_externally, 20);
        let query_rejects = [
            RejectReason::UnknownUser,
            RejectReason::UnknownAccount,
            RejectReason::AccountNotOwned,
            RejectReason::UnknownPayment,
        ];
        for reason in query_rejects {
            let count = self.payment_query_rejects.get(&reason).copied().unwrap_or(0);
            at_least(&format!("payment query rejects {reason:?}"), count, 5);
        }
        assert!(
            missing.is_empty(),
            "seed {seed:#x}: the stream stopped exercising:\n  {}",
            missing.join("\n  ")
        );
    }
}
