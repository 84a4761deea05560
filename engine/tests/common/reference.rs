//! A naive reference model of the engine, for the differential test.
//!
//! It re-implements the documented semantics of commands, events and queries (the doc
//! comments on the engine's commands, events, reject reasons, ledger and admin
//! commands) in the most direct way available, so that it can be checked by reading:
//! resting orders are one `Vec` scanned linearly for the best price and the earliest
//! arrival, balances live in a `BTreeMap`, and every amount is recomputed here with
//! its own arithmetic. Only the public vocabulary (commands, events, ids, limits) is
//! shared with the engine; nothing here calls engine code.
//!
//! Every handler checks first and changes state only once nothing can be rejected any
//! more, so a rejected command changes nothing here; `apply` asserts that no event was
//! emitted before a rejection.
//!
//! Payments follow the same style: every payment is one record in a `Vec` (payment id
//! `n` is element `n - 1`), the idempotency key is a `BTreeMap` lookup, the velocity
//! window is a plain list of `(time, amount)` debits summed with a filter, and due
//! authorizations are found by scanning the pending ones. Engine time is the largest
//! command stamp seen; expiry runs at the start of every command.
//!
//! Scope: everything the differential stream sends. Instrument definitions are written
//! by the test, so `CreateInstrument` models the existence checks only and panics on a
//! definition it cannot represent exactly rather than guess at its validation.

use fincore_engine::*;
use std::collections::BTreeMap;

/// Basis points in one whole.
const BPS_PER_UNIT: i128 = 10_000;

/// Largest minor-unit scale of an asset (10^18 still fits an i64).
const ASSET_SCALE_MAX: u8 = 18;

/// Nanoseconds in one second of engine time.
const NS_PER_S: u64 = 1_000_000_000;

/// The velocity window: a debit counts while `time + VELOCITY_WINDOW_NS > now`.
const VELOCITY_WINDOW_NS: u64 = 86_400 * NS_PER_S;

/// An account's position in one asset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Money {
    /// Free to use.
    pub available: i64,
    /// Reserved for live orders.
    pub held: i64,
    /// Reserved for pending outgoing authorizations.
    pub pending: i64,
}

/// A live order: resting, or (while it matches) incoming.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefOrder {
    /// Engine order id.
    pub id: OrderId,
    /// Owner account.
    pub account: AccountId,
    /// The account's owner, for owner-scoped self-trade prevention.
    pub owner: UserId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// The client's id.
    pub client: ClientOrderId,
    /// Side.
    pub side: Side,
    /// Limit price in ticks.
    pub price: Price,
    /// Open quantity in lots.
    pub remaining: Qty,
    /// Quantity filled so far.
    pub filled: Qty,
    /// What the order holds for its remaining quantity.
    pub hold: i64,
    /// Post-only orders stay post-only when amended.
    pub post_only: bool,
    /// Self-trade prevention mode when it trades as the incoming order.
    pub stp_mode: StpMode,
    /// Self-trade prevention scope.
    pub stp_scope: StpScope,
    /// Time priority within its price level: lower is older. An amend that loses
    /// priority gives the order a new, newest rank.
    pub queue_rank: u64,
    /// Position in its account's open-order list ("oldest first"): set when the order
    /// first rests and kept by every amend, because the order keeps its identity.
    pub list_rank: u64,
}

/// A listed instrument and its integer economics.
#[derive(Clone, Copy, Debug)]
struct Market {
    spec: InstrumentSpec,
    status: InstrumentStatus,
    last_price: Option<Price>,
    /// Base minor units in one lot.
    base_per_lot: i64,
    /// Quote minor units that one tick times one lot is worth.
    quote_per_tick_lot: i64,
}

impl Market {
    /// Quote minor units of `qty` lots at `price` ticks, if it fits an i64.
    fn notional(&self, price: Price, qty: Qty) -> Option<i64> {
        let exact = i128::from(price.0)
            .checked_mul(i128::from(qty.0))?
            .checked_mul(i128::from(self.quote_per_tick_lot))?;
        i64::try_from(exact).ok()
    }

    /// Base minor units of `qty` lots, if it fits an i64.
    fn base_amount(&self, qty: Qty) -> Option<i64> {
        qty.0.checked_mul(self.base_per_lot)
    }

    /// What an order must hold for `qty` at `limit`: a sell its base; a buy the notional
    /// at its limit plus the largest fee it could pay as maker or taker (never a
    /// negative fee, so a rebate never lowers a hold).
    fn obligation(&self, side: Side, limit: Price, qty: Qty) -> Option<i64> {
        match side {
            Side::Sell => self.base_amount(qty),
            Side::Buy => {
                let notional = self.notional(limit, qty)?;
                let rate = self.spec.maker_fee_bps.max(self.spec.taker_fee_bps).max(0);
                notional.checked_add(fee(notional, rate))
            }
        }
    }

    /// The accepted prices, inclusive: `band_bps` either side of the last trade price
    /// (the configured reference before the first trade), never below one tick.
    fn band(&self) -> (Price, Price) {
        let centre = i128::from(self.last_price.unwrap_or(self.spec.reference_price).0);
        let half = centre * i128::from(self.spec.band_bps) / BPS_PER_UNIT;
        let low = (centre - half).max(1);
        let high = (centre + half).min(i128::from(i64::MAX));
        (Price(low as i64), Price(high as i64))
    }

    /// Quote for a buy, base for a sell.
    fn hold_asset(&self, side: Side) -> AssetId {
        match side {
            Side::Buy => self.spec.quote,
            Side::Sell => self.spec.base,
        }
    }
}

/// A fee of `bps` basis points on `notional`, rounded toward zero (the documented rule:
/// in the client's favour for fees, in the venue's for rebates).
fn fee(notional: i64, bps: i32) -> i64 {
    let exact = i128::from(notional) * i128::from(bps);
    let magnitude = exact.abs() / BPS_PER_UNIT;
    let signed = if exact < 0 { -magnitude } else { magnitude };
    i64::try_from(signed).expect("a fee of at most 100 % fits")
}

/// True if an order of `side` limited at `limit` trades with a resting price `resting`.
fn crosses(side: Side, limit: Price, resting: Price) -> bool {
    match side {
        Side::Buy => limit >= resting,
        Side::Sell => limit <= resting,
    }
}

/// True if `price` is strictly better than `other` for resting orders of `side`.
fn better(side: Side, price: Price, other: Price) -> bool {
    match side {
        Side::Buy => price > other,
        Side::Sell => price < other,
    }
}

/// `mantissa` x 10^`exponent` as an exact i64; the test's definitions are exact.
fn scaled(mantissa: i128, exponent: i32) -> i64 {
    let value = if exponent >= 0 {
        mantissa * 10i128.pow(exponent as u32)
    } else {
        let divisor = 10i128.pow(exponent.unsigned_abs());
        assert_eq!(mantissa % divisor, 0, "reference: inexact instrument definition");
        mantissa / divisor
    };
    i64::try_from(value).expect("reference: instrument multiplier fits an i64")
}

/// Which account checks a command needs: trading (orders, amends) needs an active
/// account of one's own; cancels also work on frozen accounts and for admins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Trade,
    Cancel,
}

#[derive(Clone, Copy, Debug)]
struct RefAccount {
    owner: UserId,
    status: AccountStatus,
    /// On the deny-list: no payment may debit or credit it.
    blocked: bool,
}

#[derive(Clone, Copy, Debug)]
struct RefAsset {
    /// Its symbol.
    symbol: Symbol,
    /// Decimals of the minor unit.
    scale: u8,
    /// Deposits minus withdrawals.
    supply: i64,
    /// Largest single outgoing payment (transfer, authorization, withdrawal).
    transfer_max: Option<i64>,
    /// Default rolling 24-hour outgoing limit of every account.
    velocity_24h: Option<i64>,
}

/// One account's payment limits in one asset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct AccountLimits {
    /// How far below zero payments may take `available`.
    credit_limit: i64,
    /// Overrides the asset's default velocity limit when set.
    velocity_24h: Option<i64>,
}

/// A new payment as its command asks for it: every field an exact repeat must match
/// (the client id is part of the key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaymentRequest {
    /// Transfer, authorization, deposit or withdrawal.
    pub kind: PaymentKind,
    /// Account paying ([`EXTERNAL_ACCOUNT`] for a deposit).
    pub debit: AccountId,
    /// Account paid ([`EXTERNAL_ACCOUNT`] for a withdrawal).
    pub credit: AccountId,
    /// What moves.
    pub asset: AssetId,
    /// Minor units.
    pub amount: i64,
    /// The idempotency key, within the debit account.
    pub client: ClientPaymentId,
    /// Authorization timeout in seconds (0 for everything else).
    pub timeout_s: u32,
}

/// A recorded payment: what was asked, and where it is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefPayment {
    /// The command's request.
    pub request: PaymentRequest,
    /// What clients see.
    pub info: PaymentInfo,
}

/// How an incoming order's matching ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// Filled, or nothing left that crosses.
    Done,
    /// Self-trade prevention cancelled the incoming order's rest.
    SelfTrade,
}

/// The reference state machine.
#[derive(Clone, Debug)]
pub struct Reference {
    limits: EngineLimits,
    users: BTreeMap<UserId, Role>,
    assets: BTreeMap<AssetId, RefAsset>,
    accounts: BTreeMap<AccountId, RefAccount>,
    balances: BTreeMap<(AccountId, AssetId), Money>,
    markets: BTreeMap<InstrumentId, Market>,
    /// Every resting order, in no particular order.
    orders: Vec<RefOrder>,
    next_order_id: u64,
    next_trade_id: u64,
    next_rank: u64,
    /// Engine time: the largest command stamp so far.
    time_ns: u64,
    /// Every payment ever recorded; payment id `n` is `payments[n - 1]`.
    payments: Vec<RefPayment>,
    /// `(debit account, client payment id)` -> index in `payments`.
    payment_keys: BTreeMap<(AccountId, ClientPaymentId), usize>,
    /// Indexes of the authorizations that are still pending, in creation order.
    open_authorizations: Vec<usize>,
    /// Per-account payment limits; absent means no credit and the asset's velocity.
    account_limits: BTreeMap<(AccountId, AssetId), AccountLimits>,
    /// Every completed debit `(engine time, amount)` of an account in an asset.
    debits: BTreeMap<(AccountId, AssetId), Vec<(u64, i64)>>,
}

impl Reference {
    /// An empty model with the engine's limits; the system user is the one admin.
    pub fn new(limits: EngineLimits) -> Reference {
        Reference {
            limits,
            users: BTreeMap::from([(SYSTEM_USER, Role::Admin)]),
            assets: BTreeMap::new(),
            accounts: BTreeMap::new(),
            balances: BTreeMap::new(),
            markets: BTreeMap::new(),
            orders: Vec::new(),
            next_order_id: 1,
            next_trade_id: 1,
            next_rank: 1,
            time_ns: 0,
            payments: Vec::new(),
            payment_keys: BTreeMap::new(),
            open_authorizations: Vec::new(),
            account_limits: BTreeMap::new(),
            debits: BTreeMap::new(),
        }
    }

    /// Applies one command, pushing its events; a rejection is one `Rejected` event.
    /// First, engine time moves to the command's stamp (never backwards) and every
    /// authorization due by then expires, whatever the command turns out to be.
    pub fn apply(&mut self, cmd: &Command, out: &mut Vec<Event>) {
        self.time_ns = self.time_ns.max(cmd.time_ns);
        self.expire_due(out);
        let before = out.len();
        let result = self.dispatch(cmd.user, &cmd.body, out);
        if let Err(reason) = result {
            assert_eq!(out.len(), before, "reference: events emitted before a reject");
            let (account, client_id) = cmd.body.reject_context();
            let kind = cmd.body.kind();
            out.push(Event::Rejected(Rejected { kind, account, client_id, reason }));
        }
    }

    fn dispatch(
        &mut self,
        user: UserId,
        body: &CommandBody,
        out: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        match *body {
            CommandBody::CreateUser { user: new, role } => self.create_user(user, new, role, out),
            CommandBody::CreateAsset { asset, symbol, scale } => {
                self.create_asset(user, asset, symbol, scale, out)
            }
            CommandBody::CreateInstrument(spec) => self.create_instrument(user, spec, out),
            CommandBody::CreateAccount { account, owner } => {
                self.create_account(user, account, owner, out)
            }
            CommandBody::Deposit { account, asset, amount, client_payment_id } => {
                self.deposit(user, account, asset, amount, client_payment_id, out)
            }
            CommandBody::Withdraw { account, asset, amount, client_payment_id } => {
                self.withdraw(user, account, asset, amount, client_payment_id, out)
            }
            CommandBody::SetAccountStatus { account, status } => {
                self.set_account_status(user, account, status, out)
            }
            CommandBody::SetInstrumentStatus { instrument, status, cancel_resting } => {
                self.set_instrument_status(user, instrument, status, cancel_resting, out)
            }
            CommandBody::NewOrder(order) => self.new_order(user, &order, out),
            CommandBody::Cancel { account, order } => self.cancel(user, account, order, out),
            CommandBody::Amend(amend) => self.amend(user, &amend, out),
            CommandBody::MassCancel { account, instrument } => {
                self.mass_cancel(user, account, instrument, out)
            }
            CommandBody::Transfer(t) => {
                let request = PaymentRequest {
                    kind: PaymentKind::Transfer,
                    debit: t.debit,
                    credit: t.credit,
                    asset: t.asset,
                    amount: t.amount,
                    client: t.client_payment_id,
                    timeout_s: 0,
                };
                self.account_payment(user, request, out)
            }
            CommandBody::Authorize(a) => {
                let request = PaymentRequest {
                    kind: PaymentKind::Authorization,
                    debit: a.debit,
                    credit: a.credit,
                    asset: a.asset,
                    amount: a.amount,
                    client: a.client_payment_id,
                    timeout_s: a.timeout_s,
                };
                self.account_payment(user, request, out)
            }
            CommandBody::Capture { account, payment, amount } => {
                self.capture(user, account, payment, amount, out)
            }
            CommandBody::Void { account, payment } => self.void(user, account, payment, out),
            CommandBody::SetPaymentLimits { asset, transfer_max, velocity_24h } => {
                self.set_payment_limits(user, asset, transfer_max, velocity_24h, out)
            }
            CommandBody::SetAccountLimits { account, asset, credit_limit, velocity_24h } => {
                self.set_account_limits(user, account, asset, credit_limit, velocity_24h, out)
            }
            CommandBody::SetAccountBlocked { account, blocked } => {
                self.set_account_blocked(user, account, blocked, out)
            }
            CommandBody::Tick => {
                self.require_admin(user)?;
                out.push(Event::Ticked { time_ns: self.time_ns });
                Ok(())
            }
        }
    }

    // ---- read access, for the generator and the checks -------------------------------

    /// Every resting order.
    pub fn orders(&self) -> &[RefOrder] {
        &self.orders
    }

    /// Every account with its owner and status, by id.
    pub fn accounts(&self) -> impl Iterator<Item = (AccountId, UserId, AccountStatus)> + '_ {
        self.accounts.iter().map(|(id, a)| (*id, a.owner, a.status))
    }

    /// Every listed instrument with its status.
    pub fn instruments(&self) -> impl Iterator<Item = (InstrumentId, InstrumentStatus)> + '_ {
        self.markets.iter().map(|(id, m)| (*id, m.status))
    }

    /// The accepted price band of an instrument.
    pub fn band(&self, instrument: InstrumentId) -> Option<(Price, Price)> {
        self.markets.get(&instrument).map(Market::band)
    }

    /// The best resting price on one side of an instrument.
    pub fn best_price(&self, instrument: InstrumentId, side: Side) -> Option<Price> {
        self.side_orders(instrument, side)
            .map(|o| o.price)
            .reduce(|best, price| if better(side, price, best) { price } else { best })
    }

    /// The balance of one account in one asset.
    pub fn money(&self, account: AccountId, asset: AssetId) -> Money {
        self.balances.get(&(account, asset)).copied().unwrap_or_default()
    }

    /// What an order of `side` for `qty` at `price` must hold, by the model's arithmetic.
    pub fn obligation(&self, instrument: InstrumentId, side: Side, price: Price, qty: Qty) -> i64 {
        let market = self.markets[&instrument];
        market.obligation(side, price, qty).expect("a resting order's hold fits")
    }

    /// The asset an order of `side` on `instrument` holds.
    pub fn hold_asset(&self, instrument: InstrumentId, side: Side) -> AssetId {
        self.markets[&instrument].hold_asset(side)
    }

    /// The status of an account, if it exists.
    pub fn account_status(&self, account: AccountId) -> Option<AccountStatus> {
        self.accounts.get(&account).map(|a| a.status)
    }

    /// The owner of an account, if it exists.
    pub fn owner(&self, account: AccountId) -> Option<UserId> {
        self.accounts.get(&account).map(|a| a.owner)
    }

    /// The payment `account` names with `by`, as a capture, void or query would find it.
    pub fn payment_named(&self, account: AccountId, by: PaymentRef) -> Option<RefPayment> {
        self.find_payment(account, by).map(|index| self.payments[index])
    }

    /// True if the account is on the deny-list.
    pub fn is_blocked(&self, account: AccountId) -> bool {
        self.accounts.get(&account).is_some_and(|a| a.blocked)
    }

    /// Engine time: the largest command stamp so far.
    pub fn time_ns(&self) -> u64 {
        self.time_ns
    }

    /// Every payment, oldest (id 1) first.
    pub fn payments(&self) -> &[RefPayment] {
        &self.payments
    }

    /// The pending authorizations, oldest first.
    pub fn pending_authorizations(&self) -> impl Iterator<Item = &RefPayment> + '_ {
        self.open_authorizations.iter().map(|&index| &self.payments[index])
    }

    /// How far below zero payments may take the account's available balance.
    pub fn credit_limit(&self, account: AccountId, asset: AssetId) -> i64 {
        self.limits_of(account, asset).credit_limit
    }

    /// What `account` could still send in `asset` before its velocity limit, if one
    /// applies, were engine time `at_ns` (for the generator's boundary amounts).
    pub fn velocity_room(&self, account: AccountId, asset: AssetId, at_ns: u64) -> Option<i64> {
        let default = self.assets.get(&asset)?.velocity_24h;
        let limit = self.limits_of(account, asset).velocity_24h.or(default)?;
        let now = at_ns.max(self.time_ns);
        let pending = self.money(account, asset).pending;
        let used = self.counted_debits(account, asset, now) + i128::from(pending);
        i64::try_from(i128::from(limit) - used).ok()
    }

    /// The largest deposit of `asset` that keeps its supply plus every credit limit in
    /// it within an i64 (for the generator's boundary amounts).
    pub fn deposit_room(&self, asset: AssetId) -> Option<i64> {
        let supply = i128::from(self.assets.get(&asset)?.supply);
        i64::try_from(i128::from(i64::MAX) - supply - self.credit_total(asset)).ok()
    }

    /// The largest credit limit `account` could have in `asset` under the same bound.
    pub fn credit_room(&self, account: AccountId, asset: AssetId) -> Option<i64> {
        let own = i128::from(self.credit_limit(account, asset));
        self.deposit_room(asset).and_then(|room| i64::try_from(i128::from(room) + own).ok())
    }

    /// Every completed debit's account, asset and the engine time at which it stops
    /// counting toward the velocity window.
    pub fn window_exits(&self) -> impl Iterator<Item = (AccountId, AssetId, u64)> + '_ {
        self.debits.iter().flat_map(|(&(account, asset), debits)| {
            debits
                .iter()
                .map(move |(time, _)| (account, asset, time.saturating_add(VELOCITY_WINDOW_NS)))
        })
    }

    /// The asset's largest single outgoing payment, if limited.
    pub fn transfer_max(&self, asset: AssetId) -> Option<i64> {
        self.assets.get(&asset).and_then(|a| a.transfer_max)
    }

    // ---- shared lookups ------------------------------------------------------------

    fn role(&self, user: UserId) -> Result<Role, RejectReason> {
        self.users.get(&user).copied().ok_or(RejectReason::UnknownUser)
    }

    fn require_admin(&self, user: UserId) -> Result<(), RejectReason> {
        match self.role(user)? {
            Role::Admin => Ok(()),
            Role::Trader | Role::Operator => Err(RejectReason::NotAdmin),
        }
    }

    /// The documented account checks, in reject-code order.
    fn acting(
        &self,
        user: UserId,
        account: AccountId,
        access: Access,
    ) -> Result<RefAccount, RejectReason> {
        let role = self.role(user)?;
        let found = *self.accounts.get(&account).ok_or(RejectReason::UnknownAccount)?;
        if found.status == AccountStatus::Closed {
            return Err(RejectReason::AccountClosed);
        }
        let admin_may = access == Access::Cancel && role == Role::Admin;
        if found.owner != user && !admin_may {
            return Err(RejectReason::AccountNotOwned);
        }
        if found.status == AccountStatus::Frozen && access == Access::Trade {
            return Err(RejectReason::AccountFrozen);
        }
        Ok(found)
    }

    fn asset_exists(&self, asset: AssetId) -> Result<(), RejectReason> {
        self.assets.get(&asset).map(|_| ()).ok_or(RejectReason::UnknownAsset)
    }

    fn money_mut(&mut self, account: AccountId, asset: AssetId) -> &mut Money {
        self.balances.entry((account, asset)).or_default()
    }

    /// Index of the live order `order` of `account`.
    fn find(&self, account: AccountId, order: OrderRef) -> Option<usize> {
        self.orders.iter().position(|o| {
            o.account == account
                && match order {
                    OrderRef::Id(id) => o.id == id,
                    OrderRef::Client(client) => o.client == client,
                }
        })
    }

    fn side_orders(&self, instrument: InstrumentId, side: Side) -> impl Iterator<Item = &RefOrder> {
        self.orders.iter().filter(move |o| o.instrument == instrument && o.side == side)
    }

    /// Index of the order that trades first on one side: best price, then oldest.
    fn first_in_priority(&self, instrument: InstrumentId, side: Side) -> Option<usize> {
        let best = self.best_price(instrument, side)?;
        self.first_at(instrument, side, best)
    }

    /// Index of the oldest order at one price.
    fn first_at(&self, instrument: InstrumentId, side: Side, price: Price) -> Option<usize> {
        let at_price =
            |o: &&RefOrder| o.instrument == instrument && o.side == side && o.price == price;
        let oldest = self.orders.iter().filter(at_price).min_by_key(|o| o.queue_rank)?;
        self.orders.iter().position(|o| o.id == oldest.id)
    }

    /// Total quantity and order count at one price level.
    fn level(&self, instrument: InstrumentId, side: Side, price: Price) -> (Qty, u32) {
        let at_price = self.side_orders(instrument, side).filter(|o| o.price == price);
        at_price.fold((Qty(0), 0), |(qty, count), o| (Qty(qty.0 + o.remaining.0), count + 1))
    }

    /// Distinct prices on one side, best first.
    fn prices(&self, instrument: InstrumentId, side: Side) -> Vec<Price> {
        let mut prices: Vec<Price> = self.side_orders(instrument, side).map(|o| o.price).collect();
        prices.sort();
        prices.dedup();
        if side == Side::Buy {
            prices.reverse();
        }
        prices
    }

    fn open_orders(&self, account: AccountId) -> u32 {
        self.orders.iter().filter(|o| o.account == account).count() as u32
    }

    fn next_rank(&mut self) -> u64 {
        self.next_rank += 1;
        self.next_rank
    }

    // ---- events -------------------------------------------------------------------

    fn emit_balance(&self, account: AccountId, asset: AssetId, out: &mut Vec<Event>) {
        let Money { available, held, pending } = self.money(account, asset);
        out.push(Event::Balance(BalanceChanged { account, asset, available, held, pending }));
    }

    fn emit_level(&self, instrument: InstrumentId, side: Side, price: Price, out: &mut Vec<Event>) {
        let (qty, orders) = self.level(instrument, side, price);
        out.push(Event::Level(LevelChanged { instrument, side, price, qty, orders }));
    }
}

// ---- admin and setup ---------------------------------------------------------------

impl Reference {
    fn create_user(
        &mut self,
        actor: UserId,
        user: UserId,
        role: Role,
        out: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        self.require_admin(actor)?;
        if user.0 >= self.limits.users_max {
            return Err(RejectReason::IdOutOfRange);
        }
        if self.users.contains_key(&user) {
            return Err(RejectReason::AlreadyExists);
        }
        self.users.insert(user, role);
        out.push(Event::UserCreated { user, role });
        Ok(())
    }

    fn create_asset(
        &mut self,
        actor: UserId,
        asset: AssetId,
        symbol: Symbol,
        scale: u8,
        out: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        self.require_admin(actor)?;
        if usize::from(asset.0) >= ASSETS_MAX {
            return Err(RejectReason::IdOutOfRange);
        }
        if self.assets.contains_key(&asset) {
            return Err(RejectReason::AlreadyExists);
        }
        if !symbol.is_valid() || scale > ASSET_SCALE_MAX {
            return Err(RejectReason::InvalidDefinition);
        }
        let (transfer_max, velocity_24h) = (None, None);
        let created = RefAsset { symbol, scale, supply: 0, transfer_max, velocity_24h };
        self.assets.insert(asset, created);
        out.push(Event::AssetCreated { asset, scale });
        Ok(())
    }

    fn create_instrument(
        &mut self,
        actor: UserId,
        spec: InstrumentSpec,
        out: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        self.require_admin(actor)?;
        if usize::from(spec.instrument.0) >= INSTRUMENTS_MAX {
            return Err(RejectReason::IdOutOfRange);
        }
        if self.markets.contains_key(&spec.instrument) {
            return Err(RejectReason::AlreadyExists);
        }
        let base = *self.assets.get(&spec.base).ok_or(RejectReason::UnknownAsset)?;
        let quote = *self.assets.get(&spec.quote).ok_or(RejectReason::UnknownAsset)?;
        if !self.accounts.contains_key(&spec.fee_account) {
            return Err(RejectReason::UnknownAccount);
        }
        // One lot in base minor units: lot x 10^base_scale. One tick x one lot in quote
        // minor units: tick x lot x 10^quote_scale.
        let (tick, lot) = (spec.tick_size, spec.lot_size);
        let lot_exponent = i32::from(base.scale) - i32::from(lot.scale);
        let base_per_lot = scaled(i128::from(lot.mantissa), lot_exponent);
        let tick_lot = i128::from(tick.mantissa) * i128::from(lot.mantissa);
        let tick_lot_exponent = i32::from(quote.scale) - i32::from(tick.scale + lot.scale);
        let quote_per_tick_lot = scaled(tick_lot, tick_lot_exponent);
        assert!(base_per_lot > 0 && quote_per_tick_lot > 0, "reference: empty lot or tick");
        let market = Market {
            spec,
            status: InstrumentStatus::Trading,
            last_price: None,
            base_per_lot,
            quote_per_tick_lot,
        };
        self.markets.insert(spec.instrument, market);
        out.push(Event::InstrumentCreated { instrument: spec.instrument });
        Ok(())
    }

    fn create_account(
        &mut self,
        actor: UserId,
        account: AccountId,
        owner: UserId,
        out: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        self.require_admin(actor)?;
        if account.0 >= self.limits.accounts_max {
            return Err(RejectReason::IdOutOfRange);
        }
        if self.accounts.contains_key(&account) {
            return Err(RejectReason::AlreadyExists);
        }
        self.role(owner)?;
        let status = AccountStatus::Active;
        self.accounts.insert(account, RefAccount { owner, status, blocked: false });
        out.push(Event::AccountCreated { account, owner });
        Ok(())
    }

    fn set_account_status(
        &mut self,
        actor: UserId,
        account: AccountId,
        status: AccountStatus,
        out: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        self.require_admin(actor)?;
        let found = *self.accounts.get(&account).ok_or(RejectReason::UnknownAccount)?;
        if found.status == AccountStatus::Closed {
            return Err(RejectReason::AccountClosed);
        }
        if found.status == status {
            return Err(RejectReason::StatusUnchanged);
        }
        // Empty: no live order and every part of every balance zero (a pending
        // authorization, or an available balance below zero on credit, is not empty).
        let has_money =
            self.balances.iter().any(|((id, _), m)| *id == account && *m != Money::default());
        let empty = self.open_orders(account) == 0 && !has_money;
        if status == AccountStatus::Closed && !empty {
            return Err(RejectReason::AccountNotEmpty);
        }
        // Fees keep arriving in a fee account, so it stays open.
        let collects_fees = self.markets.values().any(|m| m.spec.fee_account == account);
        if status == AccountStatus::Closed && collects_fees {
            return Err(RejectReason::AccountInUse);
        }
        self.accounts.get_mut(&account).expect("checked").status = status;
        out.push(Event::AccountStatusChanged { account, status });
        Ok(())
    }

    fn set_instrument_status(
        &mut self,
        actor: UserId,
        instrument: InstrumentId,
        status: InstrumentStatus,
        cancel_resting: bool,
        out: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        self.require_admin(actor)?;
        let market = self.markets.get_mut(&instrument).ok_or(RejectReason::UnknownInstrument)?;
        if market.status == status {
            return Err(RejectReason::StatusUnchanged);
        }
        market.status = status;
        out.push(Event::InstrumentStatusChanged { instrument, status });
        if status == InstrumentStatus::Halted && cancel_resting {
            for side in [Side::Buy, Side::Sell] {
                self.cancel_side(instrument, side, out);
            }
        }
        Ok(())
    }

    /// Cancels one side of a halted book in priority order; each level is published
    /// once, when its last order is gone.
    fn cancel_side(&mut self, instrument: InstrumentId, side: Side, out: &mut Vec<Event>) {
        while let Some(index) = self.first_in_priority(instrument, side) {
            let order = self.cancel_at(index, CancelReason::Halt, out);
            if self.level(instrument, side, order.price).1 == 0 {
                self.emit_level(instrument, side, order.price, out);
            }
        }
    }
}

// ---- payments ----------------------------------------------------------------------
//
// The check lists below are the documented precedence, one line per reject code, in
// order; a handler changes state only after its last check.

impl Reference {
    /// Deposit: from the external account into `account`, by an admin or operator.
    fn deposit(
        &mut self,
        actor: UserId,
        account: AccountId,
        asset: AssetId,
        amount: i64,
        client: ClientPaymentId,
        out: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        let request = PaymentRequest {
            kind: PaymentKind::Deposit,
            debit: EXTERNAL_ACCOUNT,
            credit: account,
            asset,
            amount,
            client,
            timeout_s: 0,
        };
        self.require_payment_operator(actor)?;
        let found = *self.accounts.get(&account).ok_or(RejectReason::UnknownAccount)?;
        if client.0 == 0 {
            return Err(RejectReason::PaymentIdZero);
        }
        if let Some(index) = self.earlier_request(&request)? {
            self.emit_duplicate(index, out);
            return Ok(());
        }
        if found.status == AccountStatus::Closed {
            return Err(RejectReason::AccountClosed);
        }
        // Frozen accounts can still receive.
        if found.blocked {
            return Err(RejectReason::AccountBlocked);
        }
        let supply = self.assets.get(&asset).ok_or(RejectReason::UnknownAsset)?.supply;
        if amount <= 0 {
            return Err(RejectReason::AmountNotPositive);
        }
        self.check_payment_room()?;
        // Supply plus every credit limit must stay within an i64.
        let room = i128::from(i64::MAX) - self.credit_total(asset) - i128::from(supply);
        if i128::from(amount) > room {
            return Err(RejectReason::ArithmeticOverflow);
        }
        self.assets.get_mut(&asset).expect("checked").supply += amount;
        self.money_mut(account, asset).available += amount;
        self.record_payment(request, 0, out);
        Ok(())
    }

    /// Withdrawal: from `account` to the external account, by an admin or operator.
    fn withdraw(
        &mut self,
        actor: UserId,
        account: AccountId,
        asset: AssetId,
        amount: i64,
        client: ClientPaymentId,
        out: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        let request = PaymentRequest {
            kind: PaymentKind::Withdrawal,
            debit: account,
            credit: EXTERNAL_ACCOUNT,
            asset,
            amount,
            client,
            timeout_s: 0,
        };
        self.require_payment_operator(actor)?;
        let found = *self.accounts.get(&account).ok_or(RejectReason::UnknownAccount)?;
        if client.0 == 0 {
            return Err(RejectReason::PaymentIdZero);
        }
        if let Some(index) = self.earlier_request(&request)? {
            self.emit_duplicate(index, out);
            return Ok(());
        }
        match found.status {
            AccountStatus::Closed => return Err(RejectReason::AccountClosed),
            AccountStatus::Frozen => return Err(RejectReason::AccountFrozen),
            AccountStatus::Active => {}
        }
        if found.blocked {
            return Err(RejectReason::AccountBlocked);
        }
        let transfer_max = self.assets.get(&asset).ok_or(RejectReason::UnknownAsset)?.transfer_max;
        if amount <= 0 {
            return Err(RejectReason::AmountNotPositive);
        }
        if transfer_max.is_some_and(|max| amount > max) {
            return Err(RejectReason::AboveTransferMax);
        }
        self.check_payment_room()?;
        self.check_funds(account, asset, amount)?;
        self.assets.get_mut(&asset).expect("checked").supply -= amount;
        self.money_mut(account, asset).available -= amount;
        self.record_debit(account, asset, amount);
        self.record_payment(request, 0, out);
        Ok(())
    }

    /// Transfer or authorization: from an account of the acting user to another
    /// account.
    fn account_payment(
        &mut self,
        actor: UserId,
        request: PaymentRequest,
        out: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        let PaymentRequest { debit, credit, asset, amount, .. } = request;
        self.role(actor)?;
        let payer = *self.accounts.get(&debit).ok_or(RejectReason::UnknownAccount)?;
        // No admin override: only the owner pays from an account.
        if payer.owner != actor {
            return Err(RejectReason::AccountNotOwned);
        }
        if request.client.0 == 0 {
            return Err(RejectReason::PaymentIdZero);
        }
        if let Some(index) = self.earlier_request(&request)? {
            self.emit_duplicate(index, out);
            return Ok(());
        }
        match payer.status {
            AccountStatus::Closed => return Err(RejectReason::AccountClosed),
            AccountStatus::Frozen => return Err(RejectReason::AccountFrozen),
            AccountStatus::Active => {}
        }
        if payer.blocked {
            return Err(RejectReason::AccountBlocked);
        }
        if credit == debit {
            return Err(RejectReason::SameAccount);
        }
        // A frozen credit account may receive.
        let payee = *self.accounts.get(&credit).ok_or(RejectReason::UnknownCreditAccount)?;
        if payee.status == AccountStatus::Closed {
            return Err(RejectReason::CreditAccountClosed);
        }
        if payee.blocked {
            return Err(RejectReason::CreditAccountBlocked);
        }
        let transfer_max = self.assets.get(&asset).ok_or(RejectReason::UnknownAsset)?.transfer_max;
        if amount <= 0 {
            return Err(RejectReason::AmountNotPositive);
        }
        if transfer_max.is_some_and(|max| amount > max) {
            return Err(RejectReason::AboveTransferMax);
        }
        self.check_payment_room()?;
        self.check_funds(debit, asset, amount)?;
        let mut deadline_ns = 0;
        if request.kind == PaymentKind::Authorization && request.timeout_s > 0 {
            let timeout_ns = u64::from(request.timeout_s) * NS_PER_S;
            deadline_ns =
                self.time_ns.checked_add(timeout_ns).ok_or(RejectReason::ArithmeticOverflow)?;
        }
        match request.kind {
            PaymentKind::Transfer => {
                self.money_mut(debit, asset).available -= amount;
                self.money_mut(credit, asset).available += amount;
                self.record_debit(debit, asset, amount);
            }
            PaymentKind::Authorization => {
                let money = self.money_mut(debit, asset);
                money.available -= amount;
                money.pending += amount;
            }
            PaymentKind::Deposit | PaymentKind::Withdrawal => unreachable!("operator payments"),
        }
        self.record_payment(request, deadline_ns, out);
        Ok(())
    }

    /// Capture: pays `amount` (0: all) of a pending authorization to its credit account
    /// and releases the rest to the debit account.
    fn capture(
        &mut self,
        actor: UserId,
        account: AccountId,
        by: PaymentRef,
        amount: i64,
        out: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        let index = self.resolvable(actor, account, by)?;
        if amount < 0 {
            return Err(RejectReason::AmountNotPositive);
        }
        let p = self.payments[index].info;
        let captured = if amount > 0 { amount } else { p.amount };
        if p.kind != PaymentKind::Authorization {
            return Err(RejectReason::PaymentNotPending);
        }
        if p.status == PaymentStatus::Completed && p.captured == captured {
            self.emit_duplicate(index, out);
            return Ok(());
        }
        if p.status != PaymentStatus::Pending {
            return Err(RejectReason::PaymentNotPending);
        }
        if captured > p.amount {
            return Err(RejectReason::CaptureAboveAuthorized);
        }
        let (payer, payee) = (self.accounts[&p.debit], self.accounts[&p.credit]);
        if payer.status == AccountStatus::Frozen {
            return Err(RejectReason::AccountFrozen);
        }
        if payee.status == AccountStatus::Closed {
            return Err(RejectReason::CreditAccountClosed);
        }
        if payer.blocked {
            return Err(RejectReason::AccountBlocked);
        }
        if payee.blocked {
            return Err(RejectReason::CreditAccountBlocked);
        }
        let money = self.money_mut(p.debit, p.asset);
        money.pending -= p.amount;
        money.available += p.amount - captured;
        self.money_mut(p.credit, p.asset).available += captured;
        self.record_debit(p.debit, p.asset, captured);
        let info = self.resolve(index, PaymentStatus::Completed, captured);
        out.push(Event::Payment { action: PaymentAction::Captured, info });
        self.emit_balance(p.debit, p.asset, out);
        self.emit_balance(p.credit, p.asset, out);
        Ok(())
    }

    /// Void: releases a pending authorization to its debit account.
    fn void(
        &mut self,
        actor: UserId,
        account: AccountId,
        by: PaymentRef,
        out: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        let index = self.resolvable(actor, account, by)?;
        let status = self.payments[index].info.status;
        if status == PaymentStatus::Voided {
            self.emit_duplicate(index, out);
            return Ok(());
        }
        if status != PaymentStatus::Pending {
            return Err(RejectReason::PaymentNotPending);
        }
        self.release_authorization(index, PaymentStatus::Voided, PaymentAction::Voided, out);
        Ok(())
    }

    /// Expires every pending authorization whose deadline engine time has reached, by
    /// deadline, then payment id.
    fn expire_due(&mut self, out: &mut Vec<Event>) {
        let now = self.time_ns;
        let mut due: Vec<usize> = self
            .open_authorizations
            .iter()
            .copied()
            .filter(|&index| {
                let deadline = self.payments[index].info.deadline_ns;
                deadline != 0 && deadline <= now
            })
            .collect();
        due.sort_by_key(|&index| (self.payments[index].info.deadline_ns, index));
        for index in due {
            self.release_authorization(index, PaymentStatus::Expired, PaymentAction::Expired, out);
        }
    }

    /// Gives a pending authorization's whole amount back to its debit account.
    fn release_authorization(
        &mut self,
        index: usize,
        status: PaymentStatus,
        action: PaymentAction,
        out: &mut Vec<Event>,
    ) {
        let p = self.payments[index].info;
        let money = self.money_mut(p.debit, p.asset);
        money.pending -= p.amount;
        money.available += p.amount;
        let info = self.resolve(index, status, 0);
        out.push(Event::Payment { action, info });
        self.emit_balance(p.debit, p.asset, out);
    }

    /// Moves a pending authorization to a final status; returns it as it is now.
    fn resolve(&mut self, index: usize, status: PaymentStatus, captured: i64) -> PaymentInfo {
        let now = self.time_ns;
        let info = &mut self.payments[index].info;
        assert_eq!(info.status, PaymentStatus::Pending, "reference: resolve a final payment");
        info.status = status;
        info.captured = captured;
        info.resolved_ns = now;
        self.open_authorizations.retain(|&open| open != index);
        self.payments[index].info
    }

    /// Records a new (checked and executed) payment and reports it: `Created`, then the
    /// balance of each real account, debit first.
    fn record_payment(&mut self, request: PaymentRequest, deadline_ns: u64, out: &mut Vec<Event>) {
        let now = self.time_ns;
        let pending = request.kind == PaymentKind::Authorization;
        let info = PaymentInfo {
            payment_id: PaymentId(self.payments.len() as u64 + 1),
            client_payment_id: request.client,
            kind: request.kind,
            debit: request.debit,
            credit: request.credit,
            asset: request.asset,
            amount: request.amount,
            captured: if pending { 0 } else { request.amount },
            status: if pending { PaymentStatus::Pending } else { PaymentStatus::Completed },
            created_ns: now,
            deadline_ns,
            resolved_ns: if pending { 0 } else { now },
        };
        let index = self.payments.len();
        self.payment_keys.insert((request.debit, request.client), index);
        self.payments.push(RefPayment { request, info });
        if pending {
            self.open_authorizations.push(index);
        }
        out.push(Event::Payment { action: PaymentAction::Created, info });
        for account in [request.debit, request.credit] {
            if account != EXTERNAL_ACCOUNT {
                self.emit_balance(account, request.asset, out);
            }
        }
    }

    fn emit_duplicate(&self, index: usize, out: &mut Vec<Event>) {
        let info = self.payments[index].info;
        out.push(Event::Payment { action: PaymentAction::Duplicate, info });
    }

    // ---- payment checks ------------------------------------------------------------

    /// Deposits and withdrawals: admins and payment operators.
    fn require_payment_operator(&self, user: UserId) -> Result<(), RejectReason> {
        match self.role(user)? {
            Role::Admin | Role::Operator => Ok(()),
            Role::Trader => Err(RejectReason::NotAdmin),
        }
    }

    /// Idempotency: the index of the recorded payment this request exactly repeats;
    /// `None` for a fresh key; `PaymentIdConflict` for a used key with other fields.
    fn earlier_request(&self, request: &PaymentRequest) -> Result<Option<usize>, RejectReason> {
        match self.payment_keys.get(&(request.debit, request.client)) {
            None => Ok(None),
            Some(&index) if self.payments[index].request == *request => Ok(Some(index)),
            Some(_) => Err(RejectReason::PaymentIdConflict),
        }
    }

    fn check_payment_room(&self) -> Result<(), RejectReason> {
        if self.payments.len() >= self.limits.payments_max as usize {
            return Err(RejectReason::PaymentsFull);
        }
        Ok(())
    }

    /// The debit side of a new payment: funds (with credit), then velocity.
    fn check_funds(
        &self,
        account: AccountId,
        asset: AssetId,
        amount: i64,
    ) -> Result<(), RejectReason> {
        let money = self.money(account, asset);
        let limits = self.limits_of(account, asset);
        let spendable = i128::from(money.available) + i128::from(limits.credit_limit);
        if spendable < i128::from(amount) {
            return Err(RejectReason::InsufficientBalance);
        }
        let velocity = limits.velocity_24h.or(self.assets[&asset].velocity_24h);
        if let Some(limit) = velocity {
            let used =
                self.counted_debits(account, asset, self.time_ns) + i128::from(money.pending);
            if used + i128::from(amount) > i128::from(limit) {
                return Err(RejectReason::VelocityLimitExceeded);
            }
        }
        Ok(())
    }

    /// Completed debits still inside the 24-hour window at time `now`.
    fn counted_debits(&self, account: AccountId, asset: AssetId, now: u64) -> i128 {
        let now = u128::from(now);
        let window = u128::from(VELOCITY_WINDOW_NS);
        let debits = self.debits.get(&(account, asset)).map_or(&[][..], Vec::as_slice);
        debits
            .iter()
            .filter(|(time, _)| u128::from(*time) + window > now)
            .map(|(_, amount)| i128::from(*amount))
            .sum()
    }

    fn record_debit(&mut self, account: AccountId, asset: AssetId, amount: i64) {
        let now = self.time_ns;
        self.debits.entry((account, asset)).or_default().push((now, amount));
    }

    fn limits_of(&self, account: AccountId, asset: AssetId) -> AccountLimits {
        self.account_limits.get(&(account, asset)).copied().unwrap_or_default()
    }

    /// Sum of the credit limits in `asset` of every account that is not closed (a closed
    /// account's limits are gone with it).
    fn credit_total(&self, asset: AssetId) -> i128 {
        let open = |account: &AccountId| {
            self.accounts.get(account).is_some_and(|a| a.status != AccountStatus::Closed)
        };
        let limits =
            self.account_limits.iter().filter(|((account, a), _)| *a == asset && open(account));
        limits.map(|(_, l)| i128::from(l.credit_limit)).sum()
    }

    /// The payment a capture, void or payment query names, if `account` is a side of it
    /// (the debit side when it is named by client id).
    fn find_payment(&self, account: AccountId, by: PaymentRef) -> Option<usize> {
        match by {
            PaymentRef::Client(client) => self.payment_keys.get(&(account, client)).copied(),
            PaymentRef::Id(id) => {
                let index = usize::try_from(id.0.checked_sub(1)?).ok()?;
                let p = self.payments.get(index)?.info;
                (p.debit == account || p.credit == account).then_some(index)
            }
        }
    }

    /// Capture and void: the acting user owns `account` (no admin override), which is a
    /// side of the named payment.
    fn resolvable(
        &self,
        actor: UserId,
        account: AccountId,
        by: PaymentRef,
    ) -> Result<usize, RejectReason> {
        self.role(actor)?;
        let found = self.accounts.get(&account).ok_or(RejectReason::UnknownAccount)?;
        if found.owner != actor {
            return Err(RejectReason::AccountNotOwned);
        }
        self.find_payment(account, by).ok_or(RejectReason::UnknownPayment)
    }

    // ---- payment administration ----------------------------------------------------

    fn set_payment_limits(
        &mut self,
        actor: UserId,
        asset: AssetId,
        transfer_max: Option<i64>,
        velocity_24h: Option<i64>,
        out: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        self.require_admin(actor)?;
        self.asset_exists(asset)?;
        if transfer_max.is_some_and(|v| v <= 0) || velocity_24h.is_some_and(|v| v <= 0) {
            return Err(RejectReason::InvalidDefinition);
        }
        let policy = self.assets.get_mut(&asset).expect("checked");
        policy.transfer_max = transfer_max;
        policy.velocity_24h = velocity_24h;
        out.push(Event::PaymentLimitsSet { asset, transfer_max, velocity_24h });
        Ok(())
    }

    fn set_account_limits(
        &mut self,
        actor: UserId,
        account: AccountId,
        asset: AssetId,
        credit_limit: i64,
        velocity_24h: Option<i64>,
        out: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        self.require_admin(actor)?;
        let found = self.accounts.get(&account).ok_or(RejectReason::UnknownAccount)?;
        if found.status == AccountStatus::Closed {
            return Err(RejectReason::AccountClosed);
        }
        let supply = self.assets.get(&asset).ok_or(RejectReason::UnknownAsset)?.supply;
        if credit_limit < 0 || velocity_24h.is_some_and(|v| v <= 0) {
            return Err(RejectReason::InvalidDefinition);
        }
        let owed = -self.money(account, asset).available.min(0);
        if credit_limit < owed {
            return Err(RejectReason::CreditLimitBelowUsage);
        }
        let others = self.credit_total(asset) - i128::from(self.credit_limit(account, asset));
        if i128::from(credit_limit) > i128::from(i64::MAX) - i128::from(supply) - others {
            return Err(RejectReason::ArithmeticOverflow);
        }
        let limits = AccountLimits { credit_limit, velocity_24h };
        self.account_limits.insert((account, asset), limits);
        out.push(Event::AccountLimitsSet { account, asset, credit_limit, velocity_24h });
        Ok(())
    }

    fn set_account_blocked(
        &mut self,
        actor: UserId,
        account: AccountId,
        blocked: bool,
        out: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        self.require_admin(actor)?;
        let found = self.accounts.get_mut(&account).ok_or(RejectReason::UnknownAccount)?;
        if found.status == AccountStatus::Closed {
            return Err(RejectReason::AccountClosed);
        }
        if found.blocked == blocked {
            return Err(RejectReason::StatusUnchanged);
        }
        found.blocked = blocked;
        out.push(Event::AccountBlocked { account, blocked });
        Ok(())
    }
}

// ---- trading -----------------------------------------------------------------------

impl Reference {
    fn new_order(
        &mut self,
        user: UserId,
        new: &NewOrder,
        out: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        let (limit, hold) = self.check_new_order(user, new)?;
        let mut taker = RefOrder {
            id: OrderId(self.next_order_id),
            account: new.account,
            owner: self.accounts[&new.account].owner,
            instrument: new.instrument,
            client: new.client_order_id,
            side: new.side,
            price: limit,
            remaining: new.qty,
            filled: Qty(0),
            hold: 0,
            post_only: new.post_only,
            stp_mode: new.stp_mode,
            stp_scope: new.stp_scope,
            queue_rank: 0,
            list_rank: 0,
        };
        self.next_order_id += 1;
        if new.time_in_force == TimeInForce::Fok && !self.fok_fillable(&taker) {
            // Killed before it holds or touches anything.
            out.push(Event::Accepted(accepted(&taker, 0)));
            out.push(Event::Cancelled(cancelled(&taker, CancelReason::FokUnfilled)));
            return Ok(());
        }
        out.push(Event::Accepted(accepted(&taker, hold)));
        let asset = self.markets[&new.instrument].hold_asset(new.side);
        self.reserve(new.account, asset, hold);
        taker.hold = hold;
        self.emit_balance(new.account, asset, out);
        let stop = self.match_taker(&mut taker, out);
        if taker.remaining.0 == 0 {
            assert_eq!(taker.hold, 0, "reference: a filled order holds nothing");
        } else if new.time_in_force == TimeInForce::Gtc && stop == Stop::Done {
            taker.queue_rank = self.next_rank();
            taker.list_rank = self.next_rank();
            self.orders.push(taker);
            self.emit_level(taker.instrument, taker.side, taker.price, out);
        } else {
            let reason = match stop {
                Stop::SelfTrade => CancelReason::SelfTrade,
                Stop::Done => CancelReason::IocRemainder,
            };
            self.drop_taker(&taker, reason, out);
        }
        Ok(())
    }

    /// The documented new-order checks in reject-code order; the effective limit and
    /// the hold.
    fn check_new_order(&self, user: UserId, new: &NewOrder) -> Result<(Price, i64), RejectReason> {
        self.acting(user, new.account, Access::Trade)?;
        let market = self.markets.get(&new.instrument).ok_or(RejectReason::UnknownInstrument)?;
        if market.status == InstrumentStatus::Halted {
            return Err(RejectReason::InstrumentHalted);
        }
        let is_market = new.order_type == OrderType::Market;
        let is_gtc = new.time_in_force == TimeInForce::Gtc;
        let post_only_ok = new.order_type == OrderType::Limit && is_gtc;
        if (is_market && is_gtc) || (new.post_only && !post_only_ok) {
            return Err(RejectReason::InvalidOrderType);
        }
        if !is_market && new.price.0 <= 0 {
            return Err(RejectReason::PriceNotPositive);
        }
        self.check_qty(market, new.qty)?;
        let (low, high) = market.band();
        // A market order is a limit at the edge of the protection band.
        let limit = match (new.order_type, new.side) {
            (OrderType::Limit, _) => new.price,
            (OrderType::Market, Side::Buy) => high,
            (OrderType::Market, Side::Sell) => low,
        };
        if limit < low || limit > high {
            return Err(RejectReason::PriceOutsideBand);
        }
        let notional = market.notional(limit, new.qty).ok_or(RejectReason::ArithmeticOverflow)?;
        if notional > market.spec.notional_max {
            return Err(RejectReason::NotionalAboveMax);
        }
        let hold = market.obligation(new.side, limit, new.qty);
        let hold = hold.ok_or(RejectReason::ArithmeticOverflow)?;
        if self.find(new.account, OrderRef::Client(new.client_order_id)).is_some() {
            return Err(RejectReason::DuplicateClientOrderId);
        }
        let open_max = self.limits.open_orders_per_account_max;
        if is_gtc && self.open_orders(new.account) >= open_max {
            return Err(RejectReason::TooManyOpenOrders);
        }
        if hold > self.money(new.account, market.hold_asset(new.side)).available {
            return Err(RejectReason::InsufficientBalance);
        }
        self.check_book(market, new.side, limit, new.post_only)?;
        let table_full = self.orders.len() >= self.limits.orders_max as usize;
        if is_gtc && (table_full || !self.has_level_room(market, new.side, limit)) {
            return Err(RejectReason::BookFull);
        }
        Ok((limit, hold))
    }

    fn check_qty(&self, market: &Market, qty: Qty) -> Result<(), RejectReason> {
        if qty.0 <= 0 {
            return Err(RejectReason::QtyNotPositive);
        }
        if qty > market.spec.qty_max {
            return Err(RejectReason::QtyAboveMax);
        }
        Ok(())
    }

    /// Post-only: reject an order that would trade on arrival.
    fn check_book(
        &self,
        market: &Market,
        side: Side,
        limit: Price,
        post_only: bool,
    ) -> Result<(), RejectReason> {
        let opposite = self.best_price(market.spec.instrument, side.opposite());
        if post_only && opposite.is_some_and(|best| crosses(side, limit, best)) {
            return Err(RejectReason::PostOnlyWouldCross);
        }
        Ok(())
    }

    /// True if an order at `price` fits the per-side level limit (as the book stands).
    fn has_level_room(&self, market: &Market, side: Side, price: Price) -> bool {
        let prices = self.prices(market.spec.instrument, side);
        prices.contains(&price) || prices.len() < self.limits.levels_per_side_max as usize
    }

    /// True if self-trade prevention forbids `taker` trading with `maker`.
    fn self_trade(taker: &RefOrder, maker: &RefOrder) -> bool {
        match (taker.stp_mode, taker.stp_scope) {
            (StpMode::Allow, _) => false,
            (_, StpScope::Account) => taker.account == maker.account,
            (_, StpScope::Owner) => taker.owner == maker.owner,
        }
    }

    /// Fill-or-kill: would the order fill completely, with self-trade prevention
    /// applied as matching would apply it? Only cancel-oldest lets it pass its own
    /// orders (they would be cancelled); any other mode stops it there.
    fn fok_fillable(&self, taker: &RefOrder) -> bool {
        let side = taker.side.opposite();
        let mut makers: Vec<&RefOrder> = self.side_orders(taker.instrument, side).collect();
        makers.sort_by(|a, b| {
            let price =
                if side == Side::Buy { b.price.cmp(&a.price) } else { a.price.cmp(&b.price) };
            price.then(a.queue_rank.cmp(&b.queue_rank))
        });
        let mut needed = taker.remaining.0;
        for maker in makers {
            if !crosses(taker.side, taker.price, maker.price) {
                return false;
            }
            if !Self::self_trade(taker, maker) {
                needed -= needed.min(maker.remaining.0);
                if needed == 0 {
                    return true;
                }
            } else if taker.stp_mode != StpMode::CancelOldest {
                return false;
            }
        }
        false
    }

    /// Matches the incoming order level by level, best first; each level it reaches is
    /// published once, after its fills and cancels. If anything filled, the taker's base
    /// and quote balances and the fee account's quote balance follow, once.
    fn match_taker(&mut self, taker: &mut RefOrder, out: &mut Vec<Event>) -> Stop {
        let opposite = taker.side.opposite();
        let filled_before = taker.filled;
        let stop = loop {
            let Some(price) = self.best_price(taker.instrument, opposite) else {
                break Stop::Done;
            };
            if !crosses(taker.side, taker.price, price) {
                break Stop::Done;
            }
            let stop = self.match_level(taker, price, out);
            self.emit_level(taker.instrument, opposite, price, out);
            if stop == Stop::SelfTrade || taker.remaining.0 == 0 {
                break stop;
            }
        };
        if taker.filled != filled_before {
            let spec = self.markets[&taker.instrument].spec;
            self.emit_balance(taker.account, spec.base, out);
            self.emit_balance(taker.account, spec.quote, out);
            self.emit_balance(spec.fee_account, spec.quote, out);
        }
        stop
    }

    /// Trades with one level's queue, oldest first, applying self-trade prevention.
    fn match_level(&mut self, taker: &mut RefOrder, price: Price, out: &mut Vec<Event>) -> Stop {
        let opposite = taker.side.opposite();
        while taker.remaining.0 > 0 {
            let Some(index) = self.first_at(taker.instrument, opposite, price) else {
                return Stop::Done;
            };
            let maker = self.orders[index];
            if !Self::self_trade(taker, &maker) {
                self.fill(index, taker, price, out);
                continue;
            }
            if taker.stp_mode != StpMode::CancelNewest {
                self.cancel_at(index, CancelReason::SelfTrade, out);
            }
            if taker.stp_mode != StpMode::CancelOldest {
                return Stop::SelfTrade;
            }
        }
        Stop::Done
    }

    /// One execution at the maker's price, settled at once: each side's hold shrinks to
    /// what its remaining quantity needs; the buyer pays notional plus its fee out of the
    /// freed hold and gets base; the seller's freed hold is the base it delivers and it
    /// gets notional minus its fee; the fee account gets both fees.
    fn fill(&mut self, index: usize, taker: &mut RefOrder, price: Price, out: &mut Vec<Event>) {
        let market = self.markets[&taker.instrument];
        let mut maker = self.orders[index];
        let qty = Qty(taker.remaining.0.min(maker.remaining.0));
        let notional = market.notional(price, qty).expect("reference: fill notional fits");
        let maker_fee = fee(notional, market.spec.maker_fee_bps);
        let taker_fee = fee(notional, market.spec.taker_fee_bps);
        let trade_id = TradeId(self.next_trade_id);
        self.next_trade_id += 1;
        self.settle(&market, &mut maker, qty, notional, maker_fee);
        self.settle(&market, taker, qty, notional, taker_fee);
        let fee_account = market.spec.fee_account;
        self.money_mut(fee_account, market.spec.quote).available += maker_fee + taker_fee;
        self.markets.get_mut(&taker.instrument).expect("listed").last_price = Some(price);
        out.push(Event::Fill(Fill {
            instrument: taker.instrument,
            trade_id,
            price,
            qty,
            taker_side: taker.side,
            maker_order: maker.id,
            taker_order: taker.id,
            maker_account: maker.account,
            taker_account: taker.account,
            maker_client_id: maker.client,
            taker_client_id: taker.client,
            maker_fee,
            taker_fee,
            maker_remaining: maker.remaining,
            taker_remaining: taker.remaining,
        }));
        let (instrument, taker_side) = (taker.instrument, taker.side);
        out.push(Event::Trade(Trade { instrument, trade_id, price, qty, taker_side }));
        self.emit_balance(maker.account, market.spec.base, out);
        self.emit_balance(maker.account, market.spec.quote, out);
        if maker.remaining.0 == 0 {
            self.orders.swap_remove(index);
        } else {
            self.orders[index] = maker;
        }
    }

    /// Moves one side of a fill of `qty` lots through its account and order.
    fn settle(&mut self, market: &Market, order: &mut RefOrder, qty: Qty, notional: i64, fee: i64) {
        let remaining = Qty(order.remaining.0 - qty.0);
        let hold_after = market.obligation(order.side, order.price, remaining).expect("smaller");
        let freed = order.hold - hold_after;
        let base_amount = market.base_amount(qty).expect("reference: base amount fits");
        let (base, quote) = (market.spec.base, market.spec.quote);
        match order.side {
            Side::Buy => {
                let cost = notional + fee;
                assert!(cost <= freed, "reference: the hold covers the fill");
                let paying = self.money_mut(order.account, quote);
                paying.held -= freed;
                paying.available += freed - cost;
                self.money_mut(order.account, base).available += base_amount;
            }
            Side::Sell => {
                assert_eq!(freed, base_amount, "reference: a sell holds exactly its base");
                self.money_mut(order.account, base).held -= freed;
                self.money_mut(order.account, quote).available += notional - fee;
            }
        }
        order.remaining = remaining;
        order.filled.0 += qty.0;
        order.hold = hold_after;
    }

    /// Moves `amount` from available to held.
    fn reserve(&mut self, account: AccountId, asset: AssetId, amount: i64) {
        let money = self.money_mut(account, asset);
        assert!(amount >= 0 && amount <= money.available, "reference: reserve unavailable");
        money.available -= amount;
        money.held += amount;
    }

    /// Moves `amount` from held back to available.
    fn release(&mut self, account: AccountId, asset: AssetId, amount: i64) {
        let money = self.money_mut(account, asset);
        assert!(amount >= 0 && amount <= money.held, "reference: release more than held");
        money.held -= amount;
        money.available += amount;
    }

    /// Removes the resting order at `index`, releases its hold and reports it. The
    /// caller publishes the level.
    fn cancel_at(&mut self, index: usize, reason: CancelReason, out: &mut Vec<Event>) -> RefOrder {
        let order = self.orders.swap_remove(index);
        self.drop_taker(&order, reason, out);
        order
    }

    /// Reports an order (no longer on the book) as cancelled and releases its hold.
    fn drop_taker(&mut self, order: &RefOrder, reason: CancelReason, out: &mut Vec<Event>) {
        let asset = self.markets[&order.instrument].hold_asset(order.side);
        self.release(order.account, asset, order.hold);
        out.push(Event::Cancelled(cancelled(order, reason)));
        self.emit_balance(order.account, asset, out);
    }

    fn cancel(
        &mut self,
        user: UserId,
        account: AccountId,
        order: OrderRef,
        out: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        self.acting(user, account, Access::Cancel)?;
        let index = self.find(account, order).ok_or(RejectReason::UnknownOrder)?;
        let order = self.cancel_at(index, CancelReason::User, out);
        self.emit_level(order.instrument, order.side, order.price, out);
        Ok(())
    }

    fn mass_cancel(
        &mut self,
        user: UserId,
        account: AccountId,
        instrument: Option<InstrumentId>,
        out: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        self.acting(user, account, Access::Cancel)?;
        if let Some(id) = instrument {
            self.markets.get(&id).ok_or(RejectReason::UnknownInstrument)?;
        }
        let mut doomed: Vec<RefOrder> = self
            .orders
            .iter()
            .copied()
            .filter(|o| o.account == account && instrument.is_none_or(|id| id == o.instrument))
            .collect();
        // Oldest first, the account's own order.
        doomed.sort_by_key(|o| o.list_rank);
        for order in &doomed {
            let index = self.find(account, OrderRef::Id(order.id)).expect("live");
            self.cancel_at(index, CancelReason::MassCancel, out);
            self.emit_level(order.instrument, order.side, order.price, out);
        }
        out.push(Event::MassCancelled { account, count: doomed.len() as u32 });
        Ok(())
    }

    fn amend(
        &mut self,
        user: UserId,
        amend: &Amend,
        out: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        let (index, new_hold) = self.check_amend(user, amend)?;
        let order = self.orders[index];
        let asset = self.markets[&order.instrument].hold_asset(order.side);
        if amend.price == order.price && amend.qty < order.remaining {
            // Less at the same price keeps the order's place in the queue.
            let kept = &mut self.orders[index];
            kept.remaining = amend.qty;
            kept.hold = new_hold;
            self.release(order.account, asset, order.hold - new_hold);
            out.push(Event::Amended(amended(&order, amend, true)));
            self.emit_balance(order.account, asset, out);
            self.emit_level(order.instrument, order.side, order.price, out);
            return Ok(());
        }
        // Otherwise: off the book, re-held at the new terms, matched like a new order
        // (keeping its id, filled quantity, account-list place and STP settings), and
        // the rest queued as the newest order at its price.
        let mut taker = self.orders.swap_remove(index);
        self.emit_level(order.instrument, order.side, order.price, out);
        self.release(order.account, asset, order.hold);
        self.reserve(order.account, asset, new_hold);
        out.push(Event::Amended(amended(&order, amend, false)));
        self.emit_balance(order.account, asset, out);
        taker.price = amend.price;
        taker.remaining = amend.qty;
        taker.hold = new_hold;
        let stop = self.match_taker(&mut taker, out);
        if taker.remaining.0 == 0 {
            assert_eq!(taker.hold, 0, "reference: a filled order holds nothing");
        } else if stop == Stop::Done {
            taker.queue_rank = self.next_rank();
            self.orders.push(taker);
            self.emit_level(taker.instrument, taker.side, taker.price, out);
        } else {
            self.drop_taker(&taker, CancelReason::SelfTrade, out);
        }
        Ok(())
    }

    /// The amend checks, in reject-code order within each group; the order's index and
    /// its hold at the new terms. A reduction in place skips the checks it cannot fail
    /// (band, notional, balance, crossing, room), because the order passed them already.
    ///
    /// Follows the engine where the docs leave it open: the level limit is checked with
    /// the order still on the book.
    fn check_amend(&self, user: UserId, amend: &Amend) -> Result<(usize, i64), RejectReason> {
        self.acting(user, amend.account, Access::Trade)?;
        let index = self.find(amend.account, amend.order).ok_or(RejectReason::UnknownOrder)?;
        let order = self.orders[index];
        let market = &self.markets[&order.instrument];
        if market.status == InstrumentStatus::Halted {
            return Err(RejectReason::InstrumentHalted);
        }
        if amend.price.0 <= 0 {
            return Err(RejectReason::PriceNotPositive);
        }
        self.check_qty(market, amend.qty)?;
        if amend.price == order.price && amend.qty == order.remaining {
            return Err(RejectReason::AmendNoChange);
        }
        let in_place = amend.price == order.price && amend.qty < order.remaining;
        if !in_place {
            let (low, high) = market.band();
            if amend.price < low || amend.price > high {
                return Err(RejectReason::PriceOutsideBand);
            }
            let notional = market.notional(amend.price, amend.qty);
            if notional.ok_or(RejectReason::ArithmeticOverflow)? > market.spec.notional_max {
                return Err(RejectReason::NotionalAboveMax);
            }
        }
        let new_hold = market.obligation(order.side, amend.price, amend.qty);
        let new_hold = new_hold.ok_or(RejectReason::ArithmeticOverflow)?;
        if in_place {
            return Ok((index, new_hold));
        }
        let available = self.money(order.account, market.hold_asset(order.side)).available;
        if new_hold - order.hold > available {
            return Err(RejectReason::InsufficientBalance);
        }
        self.check_book(market, order.side, amend.price, order.post_only)?;
        if !self.has_level_room(market, order.side, amend.price) {
            return Err(RejectReason::BookFull);
        }
        Ok((index, new_hold))
    }
}

// ---- queries -----------------------------------------------------------------------

impl Reference {
    /// Answers a query like the engine: the items, then `QueryDone`; or one `Rejected`.
    pub fn query(&self, user: UserId, query: &Query, out: &mut Vec<Event>) {
        let before = out.len();
        let result = match *query {
            Query::Balances { account } => self.query_balances(user, account, out),
            Query::Order { account, order } => self.query_order(user, account, order, out),
            Query::OpenOrders { account } => self.query_open_orders(user, account, out),
            Query::Depth { instrument, levels } => self.query_depth(user, instrument, levels, out),
            Query::Reference => self.query_reference(user, out),
            Query::Payment { account, payment } => self.query_payment(user, account, payment, out),
            Query::Payments { account, limit } => self.query_payments(user, account, limit, out),
        };
        match result {
            Ok(items) => out.push(Event::QueryDone { items }),
            Err(reason) => {
                assert_eq!(out.len(), before, "reference: items before a query reject");
                let account = match *query {
                    Query::Balances { account }
                    | Query::Order { account, .. }
                    | Query::OpenOrders { account }
                    | Query::Payment { account, .. }
                    | Query::Payments { account, .. } => account,
                    Query::Depth { .. } | Query::Reference => AccountId(0),
                };
                let client_id = match *query {
                    Query::Order { order: OrderRef::Client(c), .. } => c.0,
                    Query::Payment { payment: PaymentRef::Client(c), .. } => c.0,
                    _ => 0,
                };
                let kind = CommandKind::Query;
                out.push(Event::Rejected(Rejected { kind, account, client_id, reason }));
            }
        }
    }

    /// Owners read their accounts; admins and payment operators read any.
    fn readable(&self, user: UserId, account: AccountId) -> Result<(), RejectReason> {
        let role = self.role(user)?;
        let found = self.accounts.get(&account).ok_or(RejectReason::UnknownAccount)?;
        if found.owner != user && role == Role::Trader {
            return Err(RejectReason::AccountNotOwned);
        }
        Ok(())
    }

    fn query_balances(
        &self,
        user: UserId,
        account: AccountId,
        out: &mut Vec<Event>,
    ) -> Result<u32, RejectReason> {
        self.readable(user, account)?;
        for &asset in self.assets.keys() {
            let Money { available, held, pending } = self.money(account, asset);
            out.push(Event::BalanceInfo(BalanceChanged {
                account,
                asset,
                available,
                held,
                pending,
            }));
        }
        Ok(self.assets.len() as u32)
    }

    fn query_order(
        &self,
        user: UserId,
        account: AccountId,
        order: OrderRef,
        out: &mut Vec<Event>,
    ) -> Result<u32, RejectReason> {
        self.readable(user, account)?;
        let index = self.find(account, order).ok_or(RejectReason::UnknownOrder)?;
        out.push(Event::OrderInfo(order_info(&self.orders[index])));
        Ok(1)
    }

    fn query_open_orders(
        &self,
        user: UserId,
        account: AccountId,
        out: &mut Vec<Event>,
    ) -> Result<u32, RejectReason> {
        self.readable(user, account)?;
        let mut mine: Vec<&RefOrder> =
            self.orders.iter().filter(|o| o.account == account).collect();
        mine.sort_by_key(|o| o.list_rank);
        out.extend(mine.iter().map(|o| Event::OrderInfo(order_info(o))));
        Ok(mine.len() as u32)
    }

    fn query_depth(
        &self,
        user: UserId,
        instrument: InstrumentId,
        levels: u16,
        out: &mut Vec<Event>,
    ) -> Result<u32, RejectReason> {
        self.role(user)?;
        self.markets.get(&instrument).ok_or(RejectReason::UnknownInstrument)?;
        let take = usize::from(levels.min(DEPTH_LEVELS_MAX));
        let mut items = 0;
        for side in [Side::Buy, Side::Sell] {
            for price in self.prices(instrument, side).into_iter().take(take) {
                let (qty, orders) = self.level(instrument, side, price);
                out.push(Event::DepthLevel(LevelChanged { instrument, side, price, qty, orders }));
                items += 1;
            }
        }
        Ok(items)
    }

    fn query_payment(
        &self,
        user: UserId,
        account: AccountId,
        by: PaymentRef,
        out: &mut Vec<Event>,
    ) -> Result<u32, RejectReason> {
        // Admins and operators find deposits in the external account's namespace.
        if account != EXTERNAL_ACCOUNT || self.role(user)? == Role::Trader {
            self.readable(user, account)?;
        }
        let index = self.find_payment(account, by).ok_or(RejectReason::UnknownPayment)?;
        out.push(Event::PaymentInfo(self.payments[index].info));
        Ok(1)
    }

    /// The account's payments on either side, newest first, at most `limit` (capped).
    fn query_payments(
        &self,
        user: UserId,
        account: AccountId,
        limit: u16,
        out: &mut Vec<Event>,
    ) -> Result<u32, RejectReason> {
        self.readable(user, account)?;
        let take = usize::from(limit.min(PAYMENTS_PAGE_MAX));
        let mine = self
            .payments
            .iter()
            .rev()
            .filter(|p| p.info.debit == account || p.info.credit == account);
        let page: Vec<&RefPayment> = mine.take(take).collect();
        out.extend(page.iter().map(|p| Event::PaymentInfo(p.info)));
        Ok(page.len() as u32)
    }

    fn query_reference(&self, user: UserId, out: &mut Vec<Event>) -> Result<u32, RejectReason> {
        self.role(user)?;
        for (&asset, found) in &self.assets {
            out.push(Event::AssetInfo { asset, symbol: found.symbol, scale: found.scale });
        }
        for market in self.markets.values() {
            out.push(Event::InstrumentInfo { spec: market.spec, status: market.status });
        }
        Ok((self.assets.len() + self.markets.len()) as u32)
    }
}

// ---- invariants --------------------------------------------------------------------

impl Reference {
    /// The model's own invariants: no crossed book, every resting order holds exactly
    /// its remaining obligation, held balances equal the holds of live orders, pending
    /// balances equal the pending authorizations, nothing overdue is still pending, no
    /// available balance below minus its credit limit, per-asset conservation
    /// (available + held + pending summed over accounts equals deposits minus
    /// withdrawals), and the configured capacities.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut held: BTreeMap<(AccountId, AssetId), i64> = BTreeMap::new();
        for order in &self.orders {
            let market = &self.markets[&order.instrument];
            let obligation = market.obligation(order.side, order.price, order.remaining);
            if order.remaining.0 <= 0 || obligation != Some(order.hold) {
                return Err(format!(
                    "order {:?} holds {} for {:?}",
                    order.id, order.hold, obligation
                ));
            }
            *held.entry((order.account, market.hold_asset(order.side))).or_default() += order.hold;
        }
        for (id, market) in &self.markets {
            let bid = self.best_price(*id, Side::Buy);
            let ask = self.best_price(*id, Side::Sell);
            if let (Some(bid), Some(ask)) = (bid, ask)
                && bid >= ask
            {
                return Err(format!("{} crossed: {bid:?} >= {ask:?}", market.spec.symbol));
            }
            for side in [Side::Buy, Side::Sell] {
                if self.prices(*id, side).len() > self.limits.levels_per_side_max as usize {
                    return Err(format!("{} {side:?}: too many levels", market.spec.symbol));
                }
            }
        }
        self.check_money(&held)?;
        if self.orders.len() > self.limits.orders_max as usize {
            return Err(format!("{} live orders", self.orders.len()));
        }
        for (account, ..) in self.accounts() {
            if self.open_orders(account) > self.limits.open_orders_per_account_max {
                return Err(format!("{account:?}: too many open orders"));
            }
        }
        Ok(())
    }

    fn check_money(&self, held: &BTreeMap<(AccountId, AssetId), i64>) -> Result<(), String> {
        for (&(account, asset), amount) in held {
            if self.money(account, asset).held != *amount {
                return Err(format!("{account:?} {asset:?}: orders hold {amount}, none held"));
            }
        }
        let mut pending: BTreeMap<(AccountId, AssetId), i64> = BTreeMap::new();
        for p in self.pending_authorizations() {
            let p = p.info;
            let (kind, status) = (p.kind, p.status);
            if kind != PaymentKind::Authorization || status != PaymentStatus::Pending {
                return Err(format!(
                    "open authorization {:?} is {kind:?} {status:?}",
                    p.payment_id
                ));
            }
            if p.deadline_ns != 0 && p.deadline_ns <= self.time_ns {
                return Err(format!("{:?} overdue at {}", p.payment_id, self.time_ns));
            }
            *pending.entry((p.debit, p.asset)).or_default() += p.amount;
        }
        let mut totals: BTreeMap<AssetId, i128> = BTreeMap::new();
        for (&(account, asset), money) in &self.balances {
            let expected_held = held.get(&(account, asset)).copied().unwrap_or(0);
            let expected_pending = pending.remove(&(account, asset)).unwrap_or(0);
            let floor = -self.credit_limit(account, asset);
            if money.available < floor
                || money.held != expected_held
                || money.pending != expected_pending
            {
                return Err(format!(
                    "{account:?} {asset:?}: {money:?}, orders hold {expected_held}, \
                     authorizations {expected_pending}, credit down to {floor}"
                ));
            }
            *totals.entry(asset).or_default() +=
                i128::from(money.available) + i128::from(money.held) + i128::from(money.pending);
        }
        if let Some((key, amount)) = pending.first_key_value() {
            return Err(format!("{key:?}: authorizations of {amount} without a balance"));
        }
        for (asset, found) in &self.assets {
            let total = totals.get(asset).copied().unwrap_or(0);
            if total != i128::from(found.supply) {
                return Err(format!("{asset:?}: balances {total} vs supply {}", found.supply));
            }
            if i128::from(found.supply) + self.credit_total(*asset) > i128::from(i64::MAX) {
                return Err(format!("{asset:?}: supply plus credit limits overflow"));
            }
        }
        Ok(())
    }
}

// ---- event builders ----------------------------------------------------------------

fn accepted(order: &RefOrder, hold: i64) -> OrderAccepted {
    OrderAccepted {
        order_id: order.id,
        account: order.account,
        instrument: order.instrument,
        client_order_id: order.client,
        side: order.side,
        price: order.price,
        qty: order.remaining,
        hold,
    }
}

fn cancelled(order: &RefOrder, reason: CancelReason) -> OrderCancelled {
    OrderCancelled {
        order_id: order.id,
        account: order.account,
        instrument: order.instrument,
        client_order_id: order.client,
        qty_cancelled: order.remaining,
        reason,
    }
}

fn amended(order: &RefOrder, amend: &Amend, priority_kept: bool) -> OrderAmended {
    OrderAmended {
        order_id: order.id,
        account: order.account,
        instrument: order.instrument,
        client_order_id: order.client,
        price: amend.price,
        qty: amend.qty,
        priority_kept,
    }
}

fn order_info(order: &RefOrder) -> OrderInfo {
    OrderInfo {
        order_id: order.id,
        account: order.account,
        instrument: order.instrument,
        client_order_id: order.client,
        side: order.side,
        price: order.price,
        remaining: order.remaining,
        filled: order.filled,
        hold: order.hold,
    }
}
