//! Differential test: the engine against the naive reference model in
//! `common/reference.rs`, on seeded random command streams.
//!
//! Every step generates one command (valid or not, from a mix that keeps a small, tight
//! universe busy: three instruments, a handful of traders, two users with two accounts
//! each, some nearly broke), applies it to both, and requires:
//! - the same events, in the same order;
//! - `check_invariants()` on the engine and on the model;
//! - after a successful command, the same state through every public query (balances
//!   and open orders of every account, full depth), with the published invariants
//!   checked on the engine's answers: no crossed book, strictly sorted levels, every
//!   resting order holding exactly its remaining obligation, held balances equal to
//!   order holds, per-asset conservation against the deposits and withdrawals seen;
//! - after a rejected command, an unchanged state hash (see `check_unchanged`).
//!
//! At the end it compares the final state once more (including per-order queries) and
//! asserts minimum counts of what the stream exercised, so the test cannot silently
//! degrade into one that only checks rejects.
//!
//! `FINCORE_DIFF_STEPS` overrides the number of commands per seed (for longer soaks).

// Each integration-test crate uses its own subset of the shared helpers.
#[allow(dead_code)]
mod common;

use common::reference::{RefOrder, Reference};
use fincore_engine::testkit::{Rng, Sequencer};
use fincore_engine::*;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Commands per seed after the setup.
const STEPS_DEFAULT: usize = 100_000;

#[test]
fn differential_seed_a() {
    run(0xA11C_E5EED);
}

#[test]
fn differential_seed_b() {
    run(0xB0B_5EED);
}

#[test]
fn differential_seed_c() {
    run(0xC0FF_EE5EED);
}

#[test]
fn differential_seed_d() {
    run(0xD1FF_5EED);
}

fn run(seed: u64) {
    let steps = std::env::var("FINCORE_DIFF_STEPS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(STEPS_DEFAULT);
    let mut harness = Harness::new(seed);
    harness.setup();
    for step in 0..steps {
        harness.step(step);
    }
    harness.compare_final();
    let mean = harness.coverage.live_orders_sum / steps.max(1);
    println!("seed {seed:#x}: {steps} commands, {mean} live orders on average");
    println!("{:#?}", harness.coverage);
    harness.coverage.assert_exercised(seed);
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
/// the orders per account all fill up now and then.
fn limits() -> EngineLimits {
    EngineLimits {
        users_max: 12,
        accounts_max: 15,
        orders_max: 64,
        levels_per_side_max: 12,
        open_orders_per_account_max: 10,
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
    let owners = (1..=TRADERS).map(|k| (AccountId(k), UserId(k)));
    let second = [(AccountId(7), UserId(1)), (AccountId(8), UserId(2)), (SPARE, UserId(3))];
    for (account, owner) in owners.chain(second) {
        setup.push(CommandBody::CreateAccount { account, owner });
        setup.extend(funding(account));
    }
    setup
}

/// Rich accounts never run short; poor ones do, so `InsufficientBalance` is common.
fn funding(account: AccountId) -> Vec<CommandBody> {
    let (quote, base) = match account.0 {
        1 | 2 | 3 | 7 => (200_000_000, 2_000_000_000),
        4 | 5 | 6 | 8 => (2_000_000, 20_000_000),
        _ => return Vec::new(),
    };
    let mut deposits = vec![CommandBody::Deposit { account, asset: USD, amount: quote }];
    for asset in COINS {
        deposits.push(CommandBody::Deposit { account, asset, amount: base });
    }
    deposits
}

// ---- the command generator -----------------------------------------------------------

/// Draws commands from a seeded mix, looking at the model for live orders, bands and
/// statuses so that most commands are plausible and many are subtly wrong.
struct Generator {
    rng: Rng,
    next_client: u64,
}

impl Generator {
    fn new(seed: u64) -> Generator {
        // Client ids 1..=5 are drawn at random too; fresh ones start well above them.
        Generator { rng: Rng::new(seed), next_client: 1_000 }
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.rng.percent(percent)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.below(items.len() as u64) as usize]
    }

    fn next(&mut self, model: &Reference) -> (UserId, CommandBody) {
        // Halts are short: a halted instrument only produces rejects.
        let halted = model.instruments().any(|(_, s)| s == InstrumentStatus::Halted);
        if halted && self.chance(4) {
            return self.instrument_status(model);
        }
        match self.rng.below(1_000) {
            0..=89 => self.cancel(model),
            90..=239 => self.amend(model),
            240..=249 => self.mass_cancel(model),
            250..=309 => self.money(model),
            310..=329 => self.account_status(model),
            330..=337 => self.instrument_status(model),
            338..=347 => self.create(),
            _ => self.new_order(model),
        }
    }

    fn admin(&mut self) -> UserId {
        if self.chance(50) { SYSTEM_USER } else { ADMIN }
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
            0..=89 => self.admin(),
            90..=97 => self.some_user(),
            _ => STRANGER,
        };
        let body = if deposit {
            CommandBody::Deposit { account, asset, amount }
        } else {
            CommandBody::Withdraw { account, asset, amount }
        };
        (user, body)
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
        let (mut account, owner) = self.trading_account(model);
        let user = match self.rng.below(100) {
            0..=69 => owner,
            70..=84 => self.admin(),
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
    /// Deposits minus withdrawals per asset, summed from the engine's `External` events.
    external: BTreeMap<AssetId, i128>,
    /// The state queries compared after every successful command.
    state_queries: Vec<Query>,
    history: VecDeque<Command>,
    expected: Vec<Event>,
    actual: Vec<Event>,
}

impl Harness {
    fn new(seed: u64) -> Harness {
        let accounts = (0..=limits().accounts_max).map(AccountId);
        let mut state_queries: Vec<Query> = accounts
            .flat_map(|account| [Query::Balances { account }, Query::OpenOrders { account }])
            .collect();
        for instrument in INSTRUMENTS.into_iter().chain([UNKNOWN_INSTRUMENT]) {
            state_queries.push(Query::Depth { instrument, levels: u16::MAX });
        }
        state_queries.push(Query::Reference);
        Harness {
            seed,
            engine: Engine::new(limits()),
            model: Reference::new(limits()),
            sequencer: Sequencer::default(),
            generator: Generator::new(seed),
            coverage: Coverage::default(),
            external: BTreeMap::new(),
            state_queries,
            history: VecDeque::new(),
            expected: Vec::new(),
            actual: Vec::new(),
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
        let (user, body) = self.generator.next(&self.model);
        let cmd = self.sequencer.stamp(user, body);
        self.apply_both(step, &cmd);
        self.coverage.observe(&cmd, &self.actual, &self.model);
        if !matches!(self.actual.as_slice(), [Event::Rejected(_)]) {
            self.compare_state(step);
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
        // event comparison below reports it first.
        let rejected = matches!(self.expected.as_slice(), [Event::Rejected(_)]);
        let before = rejected.then(|| self.engine.clone());
        self.actual.clear();
        self.engine.apply(cmd, &mut self.actual);
        if self.expected != self.actual {
            let diff = event_diff(&self.expected, &self.actual);
            self.fail(step, "events differ (expected = reference model)", &diff);
        }
        if let Some(before) = before {
            self.check_unchanged(step, before, cmd);
        }
        for event in &self.actual {
            if let Event::External { asset, amount, .. } = event {
                *self.external.entry(*asset).or_default() += i128::from(*amount);
            }
        }
        if let Err(why) = self.engine.check_invariants() {
            self.fail(step, "engine invariants", &why);
        }
        if let Err(why) = self.model.check_invariants() {
            self.fail(step, "reference model invariants", &why);
        }
    }

    /// A rejected command must change nothing but the sequence number and the clock.
    /// The state hash covers both, so the before-image is brought to the same sequence
    /// and time with the most trivial reject there is (an unknown user, refused before
    /// anything is looked at); then the two hashes must agree.
    fn check_unchanged(&mut self, step: usize, mut before: Engine, cmd: &Command) {
        let body = CommandBody::MassCancel { account: AccountId(0), instrument: None };
        let baseline = Command { user: NOBODY, body, ..*cmd };
        let mut events = Vec::new();
        before.apply(&baseline, &mut events);
        let reason = match events.as_slice() {
            [Event::Rejected(r)] => Some(r.reason),
            _ => None,
        };
        assert_eq!(reason, Some(RejectReason::UnknownUser), "the baseline is a plain reject");
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

    fn compare_query(&self, step: usize, user: UserId, query: &Query) {
        let (mut expected, mut actual) = (Vec::new(), Vec::new());
        self.model.query(user, query, &mut expected);
        self.engine.query(user, query, &mut actual);
        if expected != actual {
            let what = format!("query {query:?} by {user:?}\n{}", event_diff(&expected, &actual));
            self.fail(step, "query answers differ", &what);
        }
    }

    /// The invariants, checked on what the engine publishes rather than on its
    /// internals: sorted, uncrossed depth; holds equal to obligations (by the model's
    /// arithmetic); held balances equal to order holds; conservation against the
    /// deposits and withdrawals seen in the events.
    fn check_published(&self, answers: &[Event]) -> Result<(), String> {
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
                    if b.available < 0 || b.held < 0 {
                        return Err(format!("negative balance {b:?}"));
                    }
                    held.insert((b.account, b.asset), b.held);
                    *totals.entry(b.asset).or_default() += i128::from(b.available + b.held);
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
    /// asked by its owner and by someone else.
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
    live_orders_max: usize,
    /// Sum over steps of the live order count, for the mean.
    live_orders_sum: usize,
}

impl Coverage {
    fn observe(&mut self, cmd: &Command, events: &[Event], model: &Reference) {
        for event in events {
            self.observe_event(event, model);
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
            Event::Rejected(r) => *self.rejects.entry(r.reason).or_default() += 1,
            Event::Amended(a) if a.priority_kept => self.amends_kept_priority += 1,
            Event::Amended(_) => self.amends_lost_priority += 1,
            Event::External { amount, .. } if amount > 0 => self.deposits += 1,
            Event::External { .. } => self.withdrawals += 1,
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

    /// Minimum counts per seed: far below what a healthy stream produces, far above
    /// zero, so a generator change that stops exercising something fails loudly.
    fn assert_exercised(&self, seed: u64) {
        let at_least = |name: &str, count: u64, min: u64| {
            assert!(
                count >= min,
                "seed {seed:#x}: {name} = {count}, want >= {min}: the stream stopped exercising it"
            );
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
        at_least("reject hash checks", self.reject_hash_checks, 10_000);
        let full = self.live_orders_max == limits().orders_max as usize;
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
        // Off-grid decimals and bad definitions are refused before integers reach the
        // engine's trading path; the stream has no way to produce them.
        let unreachable =
            [RejectReason::PriceOffTick, RejectReason::QtyOffLot, RejectReason::InvalidDefinition];
        for reason in RejectReason::ALL.iter().filter(|r| !unreachable.contains(r)) {
            let count = self.rejects.get(reason).copied().unwrap_or(0);
            at_least(&format!("rejects {reason:?}"), count, 5);
        }
    }
}
