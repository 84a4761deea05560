//! A small, readable harness for rule tests: an [`Engine`] on the standard test universe,
//! a [`Sequencer`] that stamps commands, order builders, and the one assertion every
//! rule test leans on, [`Scenario::expect_reject`].
//!
//! Every command applied through a [`Scenario`] is followed by
//! [`Engine::check_invariants`], so a test cannot leave a broken state unnoticed.

use fincore_engine::testkit::{self, Sequencer};
use fincore_engine::*;

/// Trader 1 of the standard universe; owns [`ALICE_ACCOUNT`].
pub const ALICE: UserId = UserId(1);
/// Trader 2; owns [`BOB_ACCOUNT`].
pub const BOB: UserId = UserId(2);
/// Trader 3; owns [`CAROL_ACCOUNT`].
pub const CAROL: UserId = UserId(3);
/// Trader 4; owns [`DAVE_ACCOUNT`].
pub const DAVE: UserId = UserId(4);
/// The admin that setup commands run as.
pub const ADMIN: UserId = SYSTEM_USER;

/// Alice's trading account.
pub const ALICE_ACCOUNT: AccountId = AccountId(1);
/// Bob's trading account.
pub const BOB_ACCOUNT: AccountId = AccountId(2);
/// Carol's trading account.
pub const CAROL_ACCOUNT: AccountId = AccountId(3);
/// Dave's trading account.
pub const DAVE_ACCOUNT: AccountId = AccountId(4);
/// The account that collects fees and pays rebates (owned by the admin).
pub const FEES: AccountId = testkit::FEE_ACCOUNT;

/// The quote asset: USD with 6 decimals.
pub const USD: AssetId = testkit::USD;
/// The base asset of instrument 0: a coin with 8 decimals.
pub const COIN: AssetId = AssetId(1);
/// The base asset of instrument 1 (present when the universe has two instruments).
pub const COIN1: AssetId = AssetId(2);
/// Instrument 0, `COIN0-USD`.
pub const COIN_USD: InstrumentId = InstrumentId(0);
/// Instrument 1, `COIN1-USD`.
pub const COIN1_USD: InstrumentId = InstrumentId(1);

/// USD minor units each trader starts with (1 000 000.000000 USD).
pub const START_QUOTE: i64 = testkit::START_QUOTE;
/// Coin minor units each trader starts with, per coin (100 000.00000000 coins).
pub const START_BASE: i64 = testkit::START_BASE;

/// Traders in every scenario: Alice, Bob, Carol and Dave.
const TRADERS: u32 = 4;

/// Account ids the state snapshot reads. Scenarios create at most a few accounts beyond
/// the four traders; reading a missing id yields a reject, which is part of the snapshot.
const SNAPSHOT_ACCOUNTS: u32 = 16;

/// Instrument ids the state snapshot reads, for the same reason.
const SNAPSHOT_INSTRUMENTS: u16 = 16;

/// Placeholder client order id: [`Scenario::apply`] replaces it with a fresh one, so
/// tests only spell out client ids when the id itself is what they test.
pub const AUTO_CID: ClientOrderId = ClientOrderId(u64::MAX);

/// A client payment id that [`Scenario::apply`] replaces with a fresh one (unique in
/// the scenario, so across every payment namespace).
pub const AUTO_PID: ClientPaymentId = ClientPaymentId(u64::MAX);

/// A user id that is never created; commands from it are rejected by the very first
/// check of every handler.
const NOBODY: UserId = UserId(u32::MAX);

/// An engine on the standard universe plus the sequencer feeding it.
pub struct Scenario {
    /// The engine under test.
    pub engine: Engine,
    sequencer: Sequencer,
    next_cid: u64,
}

impl Scenario {
    /// One instrument (`COIN0-USD`), four funded traders, [`Scenario::limits`].
    pub fn new() -> Scenario {
        Scenario::with(Scenario::limits(), 1)
    }

    /// Limits for rule tests: far above what any scenario uses, but small enough that
    /// building and cloning an engine (which `expect_reject` does) is cheap. The default
    /// limits preallocate about 100 MiB of order memory.
    pub fn limits() -> EngineLimits {
        EngineLimits {
            users_max: 64,
            accounts_max: 64,
            orders_max: 1_024,
            levels_per_side_max: 256,
            open_orders_per_account_max: 256,
            ..EngineLimits::default()
        }
    }

    /// `instruments` standard instruments and four funded traders under `limits`.
    pub fn with(limits: EngineLimits, instruments: u16) -> Scenario {
        let mut scenario =
            Scenario { engine: Engine::new(limits), sequencer: Sequencer::default(), next_cid: 1 };
        for body in testkit::universe(instruments, TRADERS) {
            scenario.admin(body);
        }
        scenario
    }

    /// Id limits small enough to hit: 8 users and 8 accounts.
    pub fn small_limits() -> EngineLimits {
        EngineLimits { users_max: 8, accounts_max: 8, ..Scenario::limits() }
    }

    /// Stamps and applies one command as `user`, checks every invariant, and returns its
    /// events. A `NewOrder` carrying [`AUTO_CID`] gets a fresh client order id first.
    pub fn apply(&mut self, user: UserId, body: CommandBody) -> Vec<Event> {
        let body = self.fill_cid(body);
        let command = self.sequencer.stamp(user, body);
        let mut events = Vec::new();
        self.engine.apply(&command, &mut events);
        if let Err(broken) = self.engine.check_invariants() {
            panic!("invariant broken after {command:?}: {broken}");
        }
        assert!(!events.is_empty(), "every command emits at least one event");
        events
    }

    /// Applies an admin command and asserts it was not rejected.
    pub fn admin(&mut self, body: CommandBody) -> Vec<Event> {
        let events = self.apply(ADMIN, body);
        assert_not_rejected(&events);
        events
    }

    /// Submits a new order as `user` and asserts it was accepted.
    pub fn order(&mut self, user: UserId, order: NewOrder) -> Vec<Event> {
        let events = self.apply(user, CommandBody::NewOrder(order));
        assert!(matches!(events[0], Event::Accepted(_)), "not accepted: {events:?}");
        events
    }

    /// Submits a new order as `user`, asserts it was accepted, and returns its id.
    pub fn place(&mut self, user: UserId, order: NewOrder) -> OrderId {
        accepted(&self.order(user, order)).order_id
    }

    /// Applies a trading command (cancel, amend, mass cancel) and asserts it was not
    /// rejected.
    pub fn trade(&mut self, user: UserId, body: CommandBody) -> Vec<Event> {
        let events = self.apply(user, body);
        assert_not_rejected(&events);
        events
    }

    /// Creates a trader `user` owning `account`, with nothing deposited.
    pub fn add_trader(&mut self, user: UserId, account: AccountId) {
        self.admin(CommandBody::CreateUser { user, role: Role::Trader });
        self.add_account(account, user);
    }

    /// Opens `account` for an existing `owner`, with nothing deposited.
    pub fn add_account(&mut self, account: AccountId, owner: UserId) {
        self.admin(CommandBody::CreateAccount { account, owner });
    }

    /// Credits `amount` of `asset` to `account`.
    pub fn deposit(&mut self, account: AccountId, asset: AssetId, amount: i64) {
        self.admin(CommandBody::Deposit { account, asset, amount, client_payment_id: AUTO_PID });
    }

    /// Lists `spec` (built from [`testkit::instrument_spec`] and then edited).
    pub fn list(&mut self, spec: InstrumentSpec) {
        self.admin(CommandBody::CreateInstrument(spec));
    }

    /// Asserts that `body`, sent by `user`, is refused with exactly one `Rejected` event
    /// carrying `reason`, and that it changed nothing.
    ///
    /// "Changed nothing" is checked two independent ways, because the state hash covers
    /// the sequence number and clock, which every command (rejected or not) advances:
    ///
    /// 1. Hash: a clone of the engine taken before the command is advanced to the same
    ///    sequence number and time by a command from a user that does not exist. That
    ///    command fails the very first lookup of its handler, so the clone differs from
    ///    the "before" state only in `last_seq` and `time_ns` (asserted through the public
    ///    getters). The engine under test must then hash equal to that clone.
    /// 2. Observation: every balance, open order and book level readable through queries
    ///    is identical before and after. This does not rely on the baseline above, so it
    ///    also covers the `UnknownUser` rejection the baseline itself uses.
    pub fn expect_reject(&mut self, user: UserId, body: CommandBody, reason: RejectReason) {
        let body = self.fill_cid(body);
        let before = self.snapshot();
        let mut baseline = self.engine.clone();
        let events = self.apply(user, body);
        let (account, client_id) = body.reject_context();
        let expected = Rejected { kind: body.kind(), account, client_id, reason };
        assert_eq!(events, vec![Event::Rejected(expected)], "for {body:?}");

        let noop = Command {
            seq: self.engine.last_seq(),
            time_ns: self.sequencer.time_ns,
            user: NOBODY,
            body: CommandBody::CreateUser { user: NOBODY, role: Role::Trader },
        };
        let mut noop_events = Vec::new();
        baseline.apply(&noop, &mut noop_events);
        let unknown_user = |r: &Rejected| r.reason == RejectReason::UnknownUser;
        assert!(matches!(&noop_events[..], [Event::Rejected(r)] if unknown_user(r)));
        assert_eq!(baseline.last_seq(), self.engine.last_seq());
        assert_eq!(baseline.time_ns(), self.engine.time_ns());
        assert_eq!(self.engine.state_hash(), baseline.state_hash(), "hash moved: {body:?}");
        assert_eq!(self.snapshot(), before, "observable state moved: {body:?}");
    }

    /// Answers `query` as `user`.
    pub fn query(&self, user: UserId, query: Query) -> Vec<Event> {
        let mut out = Vec::new();
        self.engine.query(user, &query, &mut out);
        out
    }

    /// `(available, held)` of `account` in `asset`, read through the Balances query.
    pub fn balance(&self, account: AccountId, asset: AssetId) -> (i64, i64) {
        let answer = self.query(ADMIN, Query::Balances { account });
        let found = answer.iter().find_map(|event| match event {
            Event::BalanceInfo(b) if b.asset == asset => Some((b.available, b.held)),
            _ => None,
        });
        found.unwrap_or_else(|| panic!("no balance of {asset:?} in {answer:?}"))
    }

    /// Every live order of `account`, oldest first, read through the OpenOrders query.
    pub fn open_orders(&self, account: AccountId) -> Vec<OrderInfo> {
        let answer = self.query(ADMIN, Query::OpenOrders { account });
        answer.iter().filter_map(order_info).collect()
    }

    /// `(price, qty, orders)` of the best `levels` levels of each side: bids best
    /// (highest) first, then asks best (lowest) first.
    pub fn depth(&self, instrument: InstrumentId, levels: u16) -> Depth {
        let mut depth = Depth::default();
        for event in self.query(ADMIN, Query::Depth { instrument, levels }) {
            if let Event::DepthLevel(level) = event {
                let row = (level.price.0, level.qty.0, level.orders);
                match level.side {
                    Side::Buy => depth.bids.push(row),
                    Side::Sell => depth.asks.push(row),
                }
            }
        }
        depth
    }

    /// Everything a client could observe: the answers to every balance, open-orders
    /// and depth query over the ids scenarios use.
    pub fn snapshot(&self) -> Vec<Event> {
        let mut all = Vec::new();
        for id in 0..SNAPSHOT_ACCOUNTS {
            let account = AccountId(id);
            all.extend(self.query(ADMIN, Query::Balances { account }));
            all.extend(self.query(ADMIN, Query::OpenOrders { account }));
        }
        for id in 0..SNAPSHOT_INSTRUMENTS {
            let instrument = InstrumentId(id);
            all.extend(self.query(ADMIN, Query::Depth { instrument, levels: DEPTH_LEVELS_MAX }));
        }
        all
    }

    fn fill_cid(&mut self, body: CommandBody) -> CommandBody {
        let mut fresh = || {
            self.next_cid += 1;
            self.next_cid - 1
        };
        let pid = |id: &mut ClientPaymentId, fresh: &mut dyn FnMut() -> u64| {
            if *id == AUTO_PID {
                *id = ClientPaymentId(fresh());
            }
        };
        match body {
            CommandBody::NewOrder(mut order) if order.client_order_id == AUTO_CID => {
                order.client_order_id = ClientOrderId(fresh());
                CommandBody::NewOrder(order)
            }
            CommandBody::Deposit { account, asset, amount, mut client_payment_id } => {
                pid(&mut client_payment_id, &mut fresh);
                CommandBody::Deposit { account, asset, amount, client_payment_id }
            }
            CommandBody::Withdraw { account, asset, amount, mut client_payment_id } => {
                pid(&mut client_payment_id, &mut fresh);
                CommandBody::Withdraw { account, asset, amount, client_payment_id }
            }
            CommandBody::Transfer(mut t) => {
                pid(&mut t.client_payment_id, &mut fresh);
                CommandBody::Transfer(t)
            }
            CommandBody::Authorize(mut a) => {
                pid(&mut a.client_payment_id, &mut fresh);
                CommandBody::Authorize(a)
            }
            other => other,
        }
    }
}

/// Both sides of a book as `(price ticks, qty lots, orders)` rows, best first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Depth {
    /// Bids, highest first.
    pub bids: Vec<(i64, i64, u32)>,
    /// Asks, lowest first.
    pub asks: Vec<(i64, i64, u32)>,
}

/// A GTC limit buy of `qty` lots at `price` ticks on instrument 0, with self-trade
/// prevention `CancelNewest` by account (the usual exchange default).
pub fn buy(account: AccountId, price: i64, qty: i64) -> NewOrder {
    limit(account, Side::Buy, price, qty)
}

/// A GTC limit sell; see [`buy`].
pub fn sell(account: AccountId, price: i64, qty: i64) -> NewOrder {
    limit(account, Side::Sell, price, qty)
}

fn limit(account: AccountId, side: Side, price: i64, qty: i64) -> NewOrder {
    NewOrder {
        account,
        instrument: COIN_USD,
        client_order_id: AUTO_CID,
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

/// Builder-style edits of a [`NewOrder`], so a test reads as one line per order.
pub trait OrderExt {
    /// With this client order id.
    fn cid(self, cid: u64) -> Self;
    /// On this instrument.
    fn on(self, instrument: InstrumentId) -> Self;
    /// Immediate or cancel.
    fn ioc(self) -> Self;
    /// Fill or kill.
    fn fok(self) -> Self;
    /// A market order (price ignored; the time in force is kept, so add `ioc`/`fok`).
    fn market(self) -> Self;
    /// Post-only.
    fn post_only(self) -> Self;
    /// With this self-trade prevention.
    fn stp(self, mode: StpMode, scope: StpScope) -> Self;
}

impl OrderExt for NewOrder {
    fn cid(self, cid: u64) -> NewOrder {
        NewOrder { client_order_id: ClientOrderId(cid), ..self }
    }
    fn on(self, instrument: InstrumentId) -> NewOrder {
        NewOrder { instrument, ..self }
    }
    fn ioc(self) -> NewOrder {
        NewOrder { time_in_force: TimeInForce::Ioc, ..self }
    }
    fn fok(self) -> NewOrder {
        NewOrder { time_in_force: TimeInForce::Fok, ..self }
    }
    fn market(self) -> NewOrder {
        NewOrder { order_type: OrderType::Market, price: Price(0), ..self }
    }
    fn post_only(self) -> NewOrder {
        NewOrder { post_only: true, ..self }
    }
    fn stp(self, mode: StpMode, scope: StpScope) -> NewOrder {
        NewOrder { stp_mode: mode, stp_scope: scope, ..self }
    }
}

/// An amend command.
pub fn amend(account: AccountId, order: OrderId, price: i64, qty: i64) -> CommandBody {
    let order = OrderRef::Id(order);
    CommandBody::Amend(Amend { account, order, price: Price(price), qty: Qty(qty) })
}

/// A cancel command by engine order id.
pub fn cancel(account: AccountId, order: OrderId) -> CommandBody {
    CommandBody::Cancel { account, order: OrderRef::Id(order) }
}

/// The `Accepted` event of a new order's events.
pub fn accepted(events: &[Event]) -> OrderAccepted {
    match events.first() {
        Some(Event::Accepted(accepted)) => *accepted,
        _ => panic!("no Accepted first: {events:?}"),
    }
}

/// The fills among `events`, in order.
pub fn fills(events: &[Event]) -> Vec<Fill> {
    events.iter().filter_map(|e| if let Event::Fill(f) = e { Some(*f) } else { None }).collect()
}

/// The cancellations among `events`, in order.
pub fn cancels(events: &[Event]) -> Vec<OrderCancelled> {
    let cancelled = |e: &Event| if let Event::Cancelled(c) = e { Some(*c) } else { None };
    events.iter().filter_map(cancelled).collect()
}

/// The amendment among `events`.
pub fn amended(events: &[Event]) -> OrderAmended {
    let found = events.iter().find_map(|e| if let Event::Amended(a) = e { Some(*a) } else { None });
    found.unwrap_or_else(|| panic!("no Amended: {events:?}"))
}

fn order_info(event: &Event) -> Option<OrderInfo> {
    if let Event::OrderInfo(info) = event { Some(*info) } else { None }
}

fn assert_not_rejected(events: &[Event]) {
    let rejected = events.iter().any(|e| matches!(e, Event::Rejected(_)));
    assert!(!rejected, "rejected: {events:?}");
}
