//! The engine: its state, and [`Engine::apply`], which turns one command into events.
//!
//! Every handler has the same shape: a `check_*` step that only reads state and either
//! rejects or produces a plan, then an execute step that cannot fail. That is how a
//! rejected command is guaranteed to change nothing.

use crate::book::{Book, Ladder, NIL, Order, OrderIndex, OrderStore, Slot};
use crate::command::InstrumentSpec;
use crate::command::{Command, CommandBody, OrderRef};
use crate::event::{BalanceChanged, Event, EventSink, Rejected};
use crate::ledger::{Account, Asset, Balance, Economics};
use crate::limits::{ASSETS_MAX, EngineLimits};
use crate::payments::PaymentBook;
use crate::reject::RejectReason;
use crate::types::*;

/// A listed instrument with its book.
#[derive(Clone, Debug)]
pub struct Instrument {
    /// The definition it was created with.
    pub spec: InstrumentSpec,
    /// Integer multipliers and fees derived from it.
    pub economics: Economics,
    /// Trading or halted.
    pub status: InstrumentStatus,
    /// Price of the last trade; the band is centred on it once there is one.
    pub last_price: Option<Price>,
    /// The order book.
    pub book: Book,
    /// Lots traded on this instrument since this engine value was built: a statistic
    /// for the operator's metrics, not state (not hashed, not in snapshots; an engine
    /// rebuilt from a snapshot counts only what it replays after it). Wraps at 2^64,
    /// which a Prometheus `rate()` reads as a counter reset.
    pub traded_lots: u64,
}

impl Instrument {
    /// The price the band is centred on: the last trade, else the configured reference.
    pub fn reference_price(&self) -> Price {
        self.last_price.unwrap_or(self.spec.reference_price)
    }

    /// The lowest and highest accepted prices (inclusive), never below one tick.
    pub fn band(&self) -> (Price, Price) {
        let reference = self.reference_price().0;
        let band_bps = i64::from(self.spec.band_bps);
        // band_bps <= 10 000, so i128 is needed only for references near i64::MAX.
        let offset = match reference.checked_mul(band_bps) {
            Some(product) => product / crate::ledger::BPS_PER_UNIT as i64,
            None => (reference as i128 * band_bps as i128 / crate::ledger::BPS_PER_UNIT) as i64,
        };
        (Price((reference - offset).max(1)), Price(reference.saturating_add(offset)))
    }

    /// The asset an order of `side` holds: quote for a buy, base for a sell.
    pub fn hold_asset(&self, side: Side) -> AssetId {
        match side {
            Side::Buy => self.spec.quote,
            Side::Sell => self.spec.base,
        }
    }
}

/// The deterministic matching, settlement and risk state machine.
#[derive(Clone, Debug)]
pub struct Engine {
    pub(crate) limits: EngineLimits,
    pub(crate) users: Vec<Option<Role>>,
    pub(crate) assets: [Option<Asset>; ASSETS_MAX],
    pub(crate) instruments: Vec<Option<Instrument>>,
    pub(crate) accounts: Vec<Option<Account>>,
    pub(crate) orders: OrderStore,
    pub(crate) index: OrderIndex,
    pub(crate) payments: PaymentBook,
    pub(crate) next_order_id: u64,
    pub(crate) next_trade_id: u64,
    pub(crate) last_seq: u64,
    pub(crate) last_time_ns: u64,
}

impl Engine {
    /// An empty engine: no assets, instruments or accounts, and one user, the admin
    /// [`SYSTEM_USER`] that setup commands run as. All order memory is allocated here.
    pub fn new(limits: EngineLimits) -> Engine {
        assert!(limits.users_max > 0 && limits.accounts_max > 0);
        assert!(limits.orders_max > 0 && limits.levels_per_side_max > 0);
        // The id indexes are sized for the expected working set, not the maximum: a
        // table sized for a million orders spreads a few thousand live ids over 50 MB
        // and every lookup misses cache (measured: 3-5x slower engine). They grow only
        // when the live orders (or the long-lived ones among them) reach a new high;
        // the steady state does not allocate.
        let index_capacity = limits.orders_expected.min(limits.orders_max) as usize;
        let mut users = vec![None; 1];
        users[SYSTEM_USER.0 as usize] = Some(Role::Admin);
        Engine {
            limits,
            users,
            assets: [None; ASSETS_MAX],
            instruments: Vec::new(),
            accounts: Vec::new(),
            orders: OrderStore::with_capacity(limits.orders_max),
            index: OrderIndex::with_capacity(index_capacity),
            payments: PaymentBook::new(limits.payments_expected.min(limits.payments_max)),
            next_order_id: 1,
            next_trade_id: 1,
            last_seq: 0,
            last_time_ns: 0,
        }
    }

    /// The limits the engine was built with.
    pub fn limits(&self) -> EngineLimits {
        self.limits
    }

    /// Sequence number of the last applied command (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Engine time: the largest command timestamp seen so far.
    pub fn time_ns(&self) -> u64 {
        self.last_time_ns
    }

    /// Live orders across all books.
    pub fn live_orders(&self) -> usize {
        self.orders.len()
    }

    /// Applies one command. `cmd.seq` must be exactly one more than the last applied
    /// sequence (the sequencer's contract; anything else is a bug and panics). Emits the
    /// command's events into `out`; a rejected command emits one `Rejected` and changes
    /// nothing but the sequence number and engine time.
    ///
    /// Engine time is the command's stamp (never moving backwards). Before the command
    /// itself runs, every pending authorization whose deadline that time has reached
    /// expires, whoever sent the command and whether or not it is accepted: expiry is a
    /// consequence of time passing, not of the command. Likewise every debit made 24
    /// hours or more before that time leaves the velocity windows.
    pub fn apply(&mut self, cmd: &Command, out: &mut impl EventSink) {
        assert_eq!(cmd.seq, self.last_seq + 1, "commands are applied in sequence");
        self.last_seq = cmd.seq;
        // Time never runs backwards inside the engine, whatever the stamps say.
        self.last_time_ns = self.last_time_ns.max(cmd.time_ns);
        if self.payments.next_deadline <= self.last_time_ns {
            self.expire_due(out);
        }
        // Debits older than 24 hours stop counting toward velocity limits (no events).
        if self.payments.next_debit_expiry <= self.last_time_ns {
            self.payments.expire_debits(self.last_time_ns);
        }
        let user = cmd.user;
        let result = match &cmd.body {
            CommandBody::CreateUser { user: new, role } => self.create_user(user, *new, *role, out),
            CommandBody::CreateAsset { asset, symbol, scale } => {
                self.create_asset(user, *asset, *symbol, *scale, out)
            }
            CommandBody::CreateInstrument(spec) => self.create_instrument(user, spec, out),
            CommandBody::CreateAccount { account, owner } => {
                self.create_account(user, *account, *owner, out)
            }
            CommandBody::Deposit { account, asset, amount, client_payment_id } => {
                self.deposit(user, *account, *asset, *amount, *client_payment_id, out)
            }
            CommandBody::Withdraw { account, asset, amount, client_payment_id } => {
                self.withdraw(user, *account, *asset, *amount, *client_payment_id, out)
            }
            CommandBody::SetAccountStatus { account, status } => {
                self.set_account_status(user, *account, *status, out)
            }
            CommandBody::SetInstrumentStatus { instrument, status, cancel_resting } => {
                self.set_instrument_status(user, *instrument, *status, *cancel_resting, out)
            }
            CommandBody::NewOrder(order) => self.new_order(user, order, out),
            CommandBody::Cancel { account, order } => self.cancel(user, *account, *order, out),
            CommandBody::Amend(amend) => self.amend(user, amend, out),
            CommandBody::MassCancel { account, instrument } => {
                self.mass_cancel(user, *account, *instrument, out)
            }
            CommandBody::Transfer(transfer) => self.transfer(user, transfer, out),
            CommandBody::Authorize(authorize) => self.authorize(user, authorize, out),
            CommandBody::Capture { account, payment, amount } => {
                self.capture(user, *account, *payment, *amount, out)
            }
            CommandBody::Void { account, payment } => self.void(user, *account, *payment, out),
            CommandBody::SetPaymentLimits { asset, transfer_max, velocity_24h } => {
                self.set_payment_limits(user, *asset, *transfer_max, *velocity_24h, out)
            }
            CommandBody::SetAccountLimits { account, asset, credit_limit, velocity_24h } => {
                self.set_account_limits(user, *account, *asset, *credit_limit, *velocity_24h, out)
            }
            CommandBody::SetAccountBlocked { account, blocked } => {
                self.set_account_blocked(user, *account, *blocked, out)
            }
            CommandBody::Tick => self.tick(user, out),
        };
        if let Err(reason) = result {
            let (account, client_id) = cmd.body.reject_context();
            let kind = cmd.body.kind();
            out.emit(Event::Rejected(Rejected { kind, account, client_id, reason }));
        }
    }

    // ---- lookups shared by the handlers -------------------------------------------

    /// The role of `user`, or `UnknownUser`.
    pub(crate) fn role(&self, user: UserId) -> Result<Role, RejectReason> {
        match self.users.get(user.0 as usize) {
            Some(Some(role)) => Ok(*role),
            _ => Err(RejectReason::UnknownUser),
        }
    }

    /// `Ok` if `user` exists and is an admin.
    pub(crate) fn require_admin(&self, user: UserId) -> Result<(), RejectReason> {
        match self.role(user)? {
            Role::Admin => Ok(()),
            Role::Trader | Role::Operator => Err(RejectReason::NotAdmin),
        }
    }

    /// The account an admin command acts on: the actor is an admin, the account exists
    /// and is not closed (in that order of rejects).
    pub(crate) fn admin_open_account(
        &self,
        actor: UserId,
        id: AccountId,
    ) -> Result<&Account, RejectReason> {
        self.require_admin(actor)?;
        let found = self.account(id).ok_or(RejectReason::UnknownAccount)?;
        if found.status == AccountStatus::Closed {
            return Err(RejectReason::AccountClosed);
        }
        Ok(found)
    }

    /// The account, if it exists.
    pub fn account(&self, id: AccountId) -> Option<&Account> {
        self.accounts.get(id.0 as usize).and_then(Option::as_ref)
    }

    /// The owner of an account that exists (every resting order's does).
    pub(crate) fn owner_of(&self, id: AccountId) -> UserId {
        self.account(id).expect("an order's account exists").owner
    }

    /// What a resting order holds: derived from its side, price and remaining quantity
    /// (`Economics::hold_for`), which every fill, amend and cancel keeps true, so it is
    /// not stored in the order.
    pub(crate) fn order_hold(&self, order: &Order) -> i64 {
        let instrument = self.instrument(order.instrument).expect("a live order's instrument");
        let hold = instrument.economics.hold_for(order.side, order.price, order.remaining);
        hold.expect("no larger than the hold the order was accepted with")
    }

    /// The account, mutably. Only called on ids a check step has resolved.
    #[inline(always)]
    pub(crate) fn account_mut(&mut self, id: AccountId) -> &mut Account {
        self.accounts[id.0 as usize].as_mut().expect("checked account exists")
    }

    /// The instrument, if it exists.
    pub(crate) fn instrument(&self, id: InstrumentId) -> Option<&Instrument> {
        self.instruments.get(id.0 as usize).and_then(Option::as_ref)
    }

    /// The instrument, mutably. Only called on ids a check step has resolved.
    pub(crate) fn instrument_mut(&mut self, id: InstrumentId) -> &mut Instrument {
        self.instruments[id.0 as usize].as_mut().expect("checked instrument exists")
    }

    /// One side of an instrument's book together with the order table, borrowed apart so
    /// that ladder operations can follow queue links.
    #[inline(always)]
    pub(crate) fn ladder_mut(
        &mut self,
        id: InstrumentId,
        side: Side,
    ) -> (&mut Ladder, &mut OrderStore) {
        let instrument =
            self.instruments[id.0 as usize].as_mut().expect("checked instrument exists");
        (instrument.book.side_mut(side), &mut self.orders)
    }

    /// The account an acting user may use: it exists, is not closed, and belongs to the
    /// user (or the user is an admin and `admin_ok`). Frozen accounts pass only with
    /// `frozen_ok` (cancels).
    pub(crate) fn acting_account(
        &self,
        user: UserId,
        id: AccountId,
        frozen_ok: bool,
        admin_ok: bool,
    ) -> Result<&Account, RejectReason> {
        let role = self.role(user)?;
        let account = self.account(id).ok_or(RejectReason::UnknownAccount)?;
        if account.status == AccountStatus::Closed {
            return Err(RejectReason::AccountClosed);
        }
        let admin_override = admin_ok && role == Role::Admin;
        if account.owner != user && !admin_override {
            return Err(RejectReason::AccountNotOwned);
        }
        if account.status == AccountStatus::Frozen && !frozen_ok {
            return Err(RejectReason::AccountFrozen);
        }
        Ok(account)
    }

    /// The slot of a live order of `account`, or `UnknownOrder`.
    #[inline(always)]
    pub(crate) fn find_order(
        &self,
        account: AccountId,
        order: OrderRef,
    ) -> Result<Slot, RejectReason> {
        let slot = match order {
            OrderRef::Id(id) => self.index.find_id(&self.orders, id),
            OrderRef::Client(client) => self.index.find_client(&self.orders, account, client),
        };
        match slot {
            Some(slot) if self.orders.get(slot).account == account => Ok(slot),
            _ => Err(RejectReason::UnknownOrder),
        }
    }

    /// Emits the current balance of one account in one asset.
    pub(crate) fn emit_balance(
        &self,
        account: AccountId,
        asset: AssetId,
        out: &mut impl EventSink,
    ) {
        let balance = self.account(account).expect("exists").balance(asset);
        out.emit(balance_changed(account, asset, balance));
    }

    /// Appends a resting order to its account's order list.
    #[inline(always)]
    pub(crate) fn link_account_order(&mut self, slot: Slot) {
        let account_id = self.orders.get(slot).account;
        let account = self.accounts[account_id.0 as usize].as_mut().expect("exists");
        let tail = account.orders_tail;
        account.orders_tail = slot;
        if tail == NIL {
            account.orders_head = slot;
        } else {
            self.orders.get_mut(tail).account_next = slot;
        }
        account.open_orders += 1;
        let order = self.orders.get_mut(slot);
        order.account_prev = tail;
        order.account_next = NIL;
    }

    /// Removes a resting order from its account's order list.
    #[inline(always)]
    pub(crate) fn unlink_account_order(&mut self, slot: Slot) {
        let order = *self.orders.get(slot);
        let account = self.accounts[order.account.0 as usize].as_mut().expect("exists");
        if order.account_prev == NIL {
            account.orders_head = order.account_next;
        } else {
            self.orders.get_mut(order.account_prev).account_next = order.account_next;
        }
        if order.account_next == NIL {
            account.orders_tail = order.account_prev;
        } else {
            self.orders.get_mut(order.account_next).account_prev = order.account_prev;
        }
        assert!(account.open_orders > 0);
        account.open_orders -= 1;
    }
}

/// The event for `account`'s balance in `asset` (as just computed by the ledger).
pub(crate) fn balance_changed(account: AccountId, asset: AssetId, balance: Balance) -> Event {
    Event::Balance(BalanceChanged {
        account,
        asset,
        available: balance.available,
        held: balance.held,
        pending: balance.pending,
    })
}
