//! Engine snapshots: `Engine::snapshot` and `Engine::from_snapshot`.
//!
//! A restored engine must be indistinguishable from the one that wrote the snapshot:
//! same state hash, same answers to every query, and — what recovery relies on — the
//! same events for every command that follows, to the end of the stream. Damaged bytes
//! must be refused (or, where the damage happens to describe another consistent state,
//! give an engine that passes every invariant); nothing may panic.

use fincore_engine::testkit::*;
use fincore_engine::*;
use std::collections::HashMap;
use std::time::Instant;

// ---- helpers -------------------------------------------------------------------------

/// Everything a client could observe: balances and open orders of accounts
/// `0..accounts`, full depth of instruments `0..instruments`.
fn observe(engine: &Engine, accounts: u32, instruments: u16) -> Vec<Event> {
    let mut all = Vec::new();
    for id in 0..accounts {
        let account = AccountId(id);
        engine.query(SYSTEM_USER, &Query::Balances { account }, &mut all);
        engine.query(SYSTEM_USER, &Query::OpenOrders { account }, &mut all);
        engine.query(SYSTEM_USER, &Query::Payments { account, limit: PAYMENTS_PAGE_MAX }, &mut all);
    }
    for id in 0..instruments {
        let depth = Query::Depth { instrument: InstrumentId(id), levels: DEPTH_LEVELS_MAX };
        engine.query(SYSTEM_USER, &depth, &mut all);
    }
    all
}

/// Snapshots `engine`, restores it, and checks the copy: same hash, same bytes when
/// snapshotted again, same query answers; then applies `rest` to the copy and to a
/// clone of the original and requires identical events at every step and the same
/// final state.
fn check_round_trip(engine: &Engine, rest: &[Command], accounts: u32, instruments: u16) {
    let bytes = engine.snapshot();
    let restored = Engine::from_snapshot(&bytes).unwrap_or_else(|e| panic!("restore: {e}"));
    let seq = engine.last_seq();
    assert_eq!(restored.state_hash(), engine.state_hash(), "hash at seq {seq}");
    assert_eq!(restored.snapshot(), bytes, "snapshot of the copy at seq {seq}");
    assert_eq!(restored.last_seq(), seq);
    assert_eq!(restored.live_orders(), engine.live_orders());
    assert_eq!(
        observe(&restored, accounts, instruments),
        observe(engine, accounts, instruments),
        "queries at seq {seq}"
    );
    let (mut original, mut copy) = (engine.clone(), restored);
    let (mut expected, mut actual) = (Vec::new(), Vec::new());
    for command in rest {
        expected.clear();
        actual.clear();
        original.apply(command, &mut expected);
        copy.apply(command, &mut actual);
        assert_eq!(actual, expected, "events of seq {} after a restore at {seq}", command.seq);
    }
    assert_eq!(copy.state_hash(), original.state_hash(), "final hash, restored at {seq}");
    assert_eq!(copy.snapshot(), original.snapshot(), "final state, restored at {seq}");
    copy.check_invariants().unwrap();
}

/// Applies `commands` to `engine`, discarding events.
fn apply_all(engine: &mut Engine, commands: &[Command]) {
    let mut events = Vec::new();
    for command in commands {
        events.clear();
        engine.apply(command, &mut events);
    }
}

// ---- round trips ---------------------------------------------------------------------

#[test]
fn realistic_workload_round_trips_at_every_checkpoint() {
    const TRADERS: u32 = 100;
    const INSTRUMENTS: u16 = 2;
    const EVERY: usize = 20_000;
    let mix = TradingMix { instruments: INSTRUMENTS, traders: TRADERS, commands: 200_000, seed: 7 };
    let workload = trading_workload(mix);
    let mut engine = Engine::new(EngineLimits::default());
    apply_all(&mut engine, &workload.setup);
    let mut live_max = 0;
    for start in (0..=workload.commands.len()).step_by(EVERY) {
        if start > 0 {
            apply_all(&mut engine, &workload.commands[start - EVERY..start]);
        }
        live_max = live_max.max(engine.live_orders());
        check_round_trip(&engine, &workload.commands[start..], TRADERS + 1, INSTRUMENTS);
    }
    // The checkpoints must have seen a real book, not an empty one.
    assert!(live_max > 1_000, "only {live_max} live orders");
}

/// A universe that exercises what the plain workload does not: owner-scoped STP across
/// two accounts of one user, every STP mode, post-only, IOC/FOK/market orders,
/// priority-losing and priority-keeping amends, mass cancels, freezes, halts with and
/// without cancelling the book, withdrawals, and a closed account; and payments:
/// transfers, authorizations that are captured (wholly or partly), voided or left to
/// expire across time jumps, retries, credit and velocity limits and the deny-list.
struct RichStream {
    rng: Rng,
    sequencer: Sequencer,
    engine: Engine,
    live: Vec<(AccountId, OrderId, ClientOrderId)>,
    live_index: HashMap<OrderId, usize>,
    next_client: u64,
    /// Every payment created: (debit, client id, the command that made it).
    payments: Vec<(AccountId, ClientPaymentId, CommandBody)>,
    /// Authorizations: (debit, payment id).
    authorizations: Vec<(AccountId, PaymentId)>,
    commands: Vec<Command>,
    coverage: RichCoverage,
}

/// What a rich stream did, to keep the test honest.
#[derive(Debug, Default)]
struct RichCoverage {
    amends_losing_priority: u32,
    amends_keeping_priority: u32,
    self_trade_cancels: u32,
    halts: u32,
    freezes: u32,
    fills: u32,
    rejects: u32,
    payments: u32,
    captures: u32,
    voids: u32,
    expiries: u32,
    duplicates: u32,
}

const RICH_TRADERS: u32 = 6;
const RICH_INSTRUMENTS: u16 = 2;
/// Second accounts of users 1 and 2, so that owner-scoped STP spans accounts.
const SECOND_ACCOUNTS: [(AccountId, UserId); 2] =
    [(AccountId(7), UserId(1)), (AccountId(8), UserId(2))];
/// Owned by user 3, never funded, closed during setup.
const CLOSED_ACCOUNT: AccountId = AccountId(9);
const RICH_ACCOUNTS: u32 = 10;
const STP_MODES: [StpMode; 4] =
    [StpMode::Allow, StpMode::CancelNewest, StpMode::CancelOldest, StpMode::CancelBoth];

fn rich_limits() -> EngineLimits {
    EngineLimits {
        users_max: 16,
        accounts_max: 16,
        orders_max: 1_024,
        levels_per_side_max: 128,
        open_orders_per_account_max: 64,
        payments_max: 1 << 20,
        payments_expected: 256,
        orders_expected: 256,
    }
}

impl RichStream {
    fn new(seed: u64, limits: EngineLimits) -> RichStream {
        let mut stream = RichStream {
            rng: Rng::new(seed),
            sequencer: Sequencer::default(),
            engine: Engine::new(limits),
            live: Vec::new(),
            live_index: HashMap::new(),
            next_client: 1,
            payments: Vec::new(),
            authorizations: Vec::new(),
            commands: Vec::new(),
            coverage: RichCoverage::default(),
        };
        let mut setup = universe(RICH_INSTRUMENTS, RICH_TRADERS);
        for (account, owner) in SECOND_ACCOUNTS {
            setup.push(CommandBody::CreateAccount { account, owner });
            let id = ClientPaymentId(1_000 + u64::from(account.0));
            let amount = START_QUOTE;
            setup.push(CommandBody::Deposit { account, asset: USD, amount, client_payment_id: id });
            for i in 0..RICH_INSTRUMENTS {
                let asset = base_asset(i);
                let id = ClientPaymentId(2_000 + u64::from(account.0) * 10 + u64::from(i));
                let amount = START_BASE;
                setup.push(CommandBody::Deposit { account, asset, amount, client_payment_id: id });
            }
        }
        setup.push(CommandBody::CreateAccount { account: CLOSED_ACCOUNT, owner: UserId(3) });
        let status = AccountStatus::Closed;
        setup.push(CommandBody::SetAccountStatus { account: CLOSED_ACCOUNT, status });
        for body in setup {
            let events = stream.push(SYSTEM_USER, body);
            assert!(!matches!(events[0], Event::Rejected(_)), "setup: {events:?}");
        }
        stream
    }

    /// The trading accounts with their owners.
    fn accounts() -> Vec<(AccountId, UserId)> {
        let traders = (1..=RICH_TRADERS).map(|k| (trader_account(k), UserId(k)));
        traders.chain(SECOND_ACCOUNTS).collect()
    }

    fn push(&mut self, user: UserId, body: CommandBody) -> Vec<Event> {
        // Now and then time jumps, by up to two seconds (authorizations expire) or,
        // rarely, by half a day (velocity windows roll over).
        if self.rng.percent(2) {
            self.sequencer.time_ns += self.rng.range(1, 2_000_000_000) as u64;
        }
        if self.rng.below(2_000) == 0 {
            self.sequencer.time_ns += 12 * 3_600 * 1_000_000_000;
        }
        let command = self.sequencer.stamp(user, body);
        let mut events = Vec::new();
        self.engine.apply(&command, &mut events);
        self.observe(&events);
        let created = events.iter().find_map(|event| match event {
            Event::Payment { action: PaymentAction::Created, info } => Some(info),
            _ => None,
        });
        if let Some(info) = created {
            self.payments.push((info.debit, info.client_payment_id, body));
        }
        self.commands.push(command);
        events
    }

    fn step(&mut self) {
        let (user, body) = match self.rng.below(100) {
            0..=44 => self.new_order(),
            45..=52 => self.cancel(),
            53..=77 => self.amend(),
            78 => self.mass_cancel(),
            79..=85 => self.account_status(),
            86..=87 if self.rng.percent(30) => self.instrument_status(),
            86..=87 => self.money(),
            _ => self.payment(),
        };
        self.push(user, body);
    }

    fn owner_of(account: AccountId) -> UserId {
        let accounts = RichStream::accounts();
        accounts.iter().find(|a| a.0 == account).map_or(SYSTEM_USER, |a| a.1)
    }

    fn pick_account(&mut self) -> (AccountId, UserId) {
        let accounts = RichStream::accounts();
        accounts[self.rng.below(accounts.len() as u64) as usize]
    }

    fn new_order(&mut self) -> (UserId, CommandBody) {
        let (account, owner) = self.pick_account();
        let instrument = InstrumentId(self.rng.below(u64::from(RICH_INSTRUMENTS)) as u16);
        let side = if self.rng.percent(50) { Side::Buy } else { Side::Sell };
        let passive = if side == Side::Buy { -1 } else { 1 };
        let price = REFERENCE_PRICE.0 + passive * self.rng.range(-3, 30);
        let (order_type, time_in_force, post_only) = match self.rng.below(100) {
            0..=64 => (OrderType::Limit, TimeInForce::Gtc, false),
            65..=74 => (OrderType::Limit, TimeInForce::Gtc, true),
            75..=84 => (OrderType::Limit, TimeInForce::Ioc, false),
            85..=92 => (OrderType::Limit, TimeInForce::Fok, false),
            _ => (OrderType::Market, TimeInForce::Ioc, false),
        };
        let stp_mode = STP_MODES[self.rng.below(STP_MODES.len() as u64) as usize];
        let stp_scope = if self.rng.percent(50) { StpScope::Account } else { StpScope::Owner };
        self.next_client += 1;
        let order = NewOrder {
            account,
            instrument,
            client_order_id: ClientOrderId(self.next_client),
            side,
            order_type,
            time_in_force,
            price: Price(price),
            qty: Qty(self.rng.range(1, 60)),
            stp_mode,
            stp_scope,
            post_only,
        };
        (owner, CommandBody::NewOrder(order))
    }

    fn live_order(&mut self) -> Option<(AccountId, OrderId, ClientOrderId)> {
        let count = self.live.len() as u64;
        (count > 0).then(|| self.live[self.rng.below(count) as usize])
    }

    fn owner(account: AccountId) -> UserId {
        let found = RichStream::accounts().into_iter().find(|(a, _)| *a == account);
        found.expect("a trading account").1
    }

    fn cancel(&mut self) -> (UserId, CommandBody) {
        let Some((account, id, client)) = self.live_order() else { return self.new_order() };
        let order = if self.rng.percent(50) { OrderRef::Id(id) } else { OrderRef::Client(client) };
        (RichStream::owner(account), CommandBody::Cancel { account, order })
    }

    /// Keeps priority (same price, less), loses it (more, or a new price), or trades.
    fn amend(&mut self) -> (UserId, CommandBody) {
        let Some((account, id, _)) = self.live_order() else { return self.new_order() };
        let mut answer = Vec::new();
        let query = Query::Order { account, order: OrderRef::Id(id) };
        self.engine.query(SYSTEM_USER, &query, &mut answer);
        let Some(Event::OrderInfo(info)) = answer.first() else { panic!("{answer:?}") };
        let (price, left) = (info.price.0, info.remaining.0);
        let (price, qty) = match self.rng.below(100) {
            0..=34 if left > 1 => (price, self.rng.range(1, left - 1)),
            0..=59 => (price, left + self.rng.range(1, 20)),
            _ => (price + self.rng.range(-8, 8), self.rng.range(1, 60)),
        };
        let amend = Amend { account, order: OrderRef::Id(id), price: Price(price), qty: Qty(qty) };
        (RichStream::owner(account), CommandBody::Amend(amend))
    }

    fn mass_cancel(&mut self) -> (UserId, CommandBody) {
        let (account, owner) = self.pick_account();
        let instrument = self.rng.percent(50).then_some(InstrumentId(0));
        (owner, CommandBody::MassCancel { account, instrument })
    }

    fn account_status(&mut self) -> (UserId, CommandBody) {
        let (account, _) = self.pick_account();
        let status =
            if self.rng.percent(20) { AccountStatus::Frozen } else { AccountStatus::Active };
        (SYSTEM_USER, CommandBody::SetAccountStatus { account, status })
    }

    fn instrument_status(&mut self) -> (UserId, CommandBody) {
        let instrument = InstrumentId(self.rng.below(u64::from(RICH_INSTRUMENTS)) as u16);
        let status =
            if self.rng.percent(25) { InstrumentStatus::Halted } else { InstrumentStatus::Trading };
        let cancel_resting = self.rng.percent(30);
        (SYSTEM_USER, CommandBody::SetInstrumentStatus { instrument, status, cancel_resting })
    }

    fn money(&mut self) -> (UserId, CommandBody) {
        let (account, _) = self.pick_account();
        let asset = AssetId(self.rng.below(u64::from(RICH_INSTRUMENTS) + 1) as u16);
        let amount = self.rng.range(1, 5_000_000);
        let client_payment_id = self.fresh_payment_id();
        let body = if self.rng.percent(50) {
            CommandBody::Deposit { account, asset, amount, client_payment_id }
        } else {
            CommandBody::Withdraw { account, asset, amount, client_payment_id }
        };
        (SYSTEM_USER, body)
    }

    fn fresh_payment_id(&mut self) -> ClientPaymentId {
        self.next_client += 1;
        ClientPaymentId(self.next_client)
    }

    /// A payment command: new, resolving, a retry, or a limit change.
    fn payment(&mut self) -> (UserId, CommandBody) {
        let (debit, owner) = self.pick_account();
        let (credit, _) = self.pick_account();
        let asset = AssetId(self.rng.below(u64::from(RICH_INSTRUMENTS) + 1) as u16);
        let amount = self.rng.range(1, 50_000_000);
        let client_payment_id = self.fresh_payment_id();
        let pick = self.rng.below(100);
        match pick {
            0..=29 => {
                let t = Transfer { debit, credit, asset, amount, client_payment_id };
                (owner, CommandBody::Transfer(t))
            }
            30..=54 => {
                let timeout_s = [0, 1, 2][self.rng.below(3) as usize];
                let a = Authorize { debit, credit, asset, amount, client_payment_id, timeout_s };
                (owner, CommandBody::Authorize(a))
            }
            55..=74 if !self.authorizations.is_empty() => {
                // Mostly recent ones, which are more likely still pending.
                let recent = self.authorizations.len().min(8) as u64;
                let back = 1 + self.rng.below(recent) as usize;
                let (account, id) = self.authorizations[self.authorizations.len() - back];
                let owner = RichStream::owner_of(account);
                let payment = PaymentRef::Id(id);
                let body = match self.rng.below(3) {
                    0 => CommandBody::Void { account, payment },
                    1 => CommandBody::Capture { account, payment, amount: 0 },
                    _ => CommandBody::Capture { account, payment, amount: amount / 4 + 1 },
                };
                (owner, body)
            }
            75..=84 if !self.payments.is_empty() => {
                // A retry of an earlier payment: usually exact, sometimes altered.
                let (_, _, body) =
                    self.payments[self.rng.below(self.payments.len() as u64) as usize];
                let body = match body {
                    CommandBody::Transfer(mut t) if self.rng.percent(20) => {
                        t.amount += 1;
                        CommandBody::Transfer(t)
                    }
                    other => other,
                };
                let user = match body {
                    CommandBody::Transfer(t) => RichStream::owner_of(t.debit),
                    CommandBody::Authorize(a) => RichStream::owner_of(a.debit),
                    _ => SYSTEM_USER,
                };
                (user, body)
            }
            85..=89 => {
                let credit_limit =
                    if self.rng.percent(50) { 0 } else { self.rng.range(1, 100_000_000) };
                let velocity_24h = self.rng.percent(50).then(|| self.rng.range(1, 500_000_000));
                let body = CommandBody::SetAccountLimits {
                    account: debit,
                    asset,
                    credit_limit,
                    velocity_24h,
                };
                (SYSTEM_USER, body)
            }
            90..=92 => {
                let transfer_max =
                    self.rng.percent(50).then(|| self.rng.range(1_000_000, 100_000_000));
                let velocity_24h =
                    self.rng.percent(30).then(|| self.rng.range(100_000_000, 1_000_000_000));
                let body = CommandBody::SetPaymentLimits { asset, transfer_max, velocity_24h };
                (SYSTEM_USER, body)
            }
            93..=94 => {
                let blocked = self.rng.percent(30);
                (SYSTEM_USER, CommandBody::SetAccountBlocked { account: credit, blocked })
            }
            _ => (SYSTEM_USER, CommandBody::Tick),
        }
    }

    fn observe(&mut self, events: &[Event]) {
        for event in events {
            match event {
                Event::Accepted(a) => self.add(a.account, a.order_id, a.client_order_id),
                Event::Cancelled(c) => {
                    if c.reason == CancelReason::SelfTrade {
                        self.coverage.self_trade_cancels += 1;
                    }
                    self.remove(c.order_id);
                }
                Event::Fill(f) => {
                    self.coverage.fills += 1;
                    if f.maker_remaining.0 == 0 {
                        self.remove(f.maker_order);
                    }
                    if f.taker_remaining.0 == 0 {
                        self.remove(f.taker_order);
                    }
                }
                Event::Amended(a) if a.priority_kept => self.coverage.amends_keeping_priority += 1,
                Event::Amended(_) => self.coverage.amends_losing_priority += 1,
                Event::InstrumentStatusChanged { status: InstrumentStatus::Halted, .. } => {
                    self.coverage.halts += 1;
                }
                Event::AccountStatusChanged { status: AccountStatus::Frozen, .. } => {
                    self.coverage.freezes += 1;
                }
                Event::Rejected(_) => self.coverage.rejects += 1,
                Event::Payment { action, info } => match action {
                    PaymentAction::Created => {
                        self.coverage.payments += 1;
                        if info.kind == PaymentKind::Authorization {
                            self.authorizations.push((info.debit, info.payment_id));
                        }
                    }
                    PaymentAction::Captured => self.coverage.captures += 1,
                    PaymentAction::Voided => self.coverage.voids += 1,
                    PaymentAction::Expired => self.coverage.expiries += 1,
                    PaymentAction::Duplicate => self.coverage.duplicates += 1,
                },
                _ => {}
            }
        }
    }

    fn add(&mut self, account: AccountId, id: OrderId, client: ClientOrderId) {
        self.live_index.insert(id, self.live.len());
        self.live.push((account, id, client));
    }

    fn remove(&mut self, id: OrderId) {
        let Some(index) = self.live_index.remove(&id) else { return };
        self.live.swap_remove(index);
        if let Some((_, moved, _)) = self.live.get(index) {
            self.live_index.insert(*moved, index);
        }
    }
}

/// The commands of a rich stream of `steps` steps after its setup, and how many of
/// them are setup.
fn rich_stream(seed: u64, limits: EngineLimits, steps: usize) -> (Vec<Command>, usize) {
    let mut stream = RichStream::new(seed, limits);
    let setup = stream.commands.len();
    for _ in 0..steps {
        stream.step();
    }
    let c = &stream.coverage;
    // Per thousand steps, well below what the seeds in use produce.
    let per_thousand = (steps / 1_000).max(1) as u32;
    println!("seed {seed:#x}, {steps} steps: {c:?}");
    let exercised = c.amends_losing_priority > 10 * per_thousand
        && c.amends_keeping_priority > 10 * per_thousand
        && c.self_trade_cancels > per_thousand
        && c.halts > per_thousand / 4
        && c.freezes > per_thousand
        && c.fills > 20 * per_thousand
        && c.payments > 10 * per_thousand
        && c.captures > per_thousand
        && c.voids > per_thousand
        && c.expiries > per_thousand / 2
        && c.duplicates > per_thousand;
    assert!(exercised, "seed {seed:#x}: {c:#?}");
    (stream.commands, setup)
}

#[test]
fn rich_universe_round_trips_at_every_checkpoint() {
    const STEPS: usize = 30_000;
    const EVERY: usize = 1_000;
    let (commands, setup) = rich_stream(0x5EED_5A4B, rich_limits(), STEPS);
    let mut engine = Engine::new(rich_limits());
    apply_all(&mut engine, &commands[..setup]);
    let (mut frozen_seen, mut halted_seen) = (false, false);
    for start in (setup..=commands.len()).step_by(EVERY) {
        if start > setup {
            apply_all(&mut engine, &commands[start - EVERY..start]);
        }
        check_round_trip(&engine, &commands[start..], RICH_ACCOUNTS, RICH_INSTRUMENTS);
        // Statuses are visible through rejects only; probe them on a clone.
        frozen_seen |= probe_frozen(&engine);
        halted_seen |= probe_halted(&engine);
    }
    assert!(frozen_seen && halted_seen, "frozen {frozen_seen}, halted {halted_seen}");
}

/// True if some trading account is frozen (a tiny withdrawal is refused as frozen).
fn probe_frozen(engine: &Engine) -> bool {
    RichStream::accounts().into_iter().any(|(account, _)| {
        let client_payment_id = ClientPaymentId(u64::MAX);
        let body = CommandBody::Withdraw { account, asset: USD, amount: 1, client_payment_id };
        probe(engine, body) == Some(RejectReason::AccountFrozen)
    })
}

/// True if some instrument is halted (a mass cancel passes, an order is refused).
fn probe_halted(engine: &Engine) -> bool {
    (0..RICH_INSTRUMENTS).any(|i| {
        let body = CommandBody::SetInstrumentStatus {
            instrument: InstrumentId(i),
            status: InstrumentStatus::Halted,
            cancel_resting: false,
        };
        probe(engine, body) == Some(RejectReason::StatusUnchanged)
    })
}

/// The reject reason `body` gets from an admin on a clone of `engine`, if any.
fn probe(engine: &Engine, body: CommandBody) -> Option<RejectReason> {
    let mut clone = engine.clone();
    let command = Command { seq: engine.last_seq() + 1, time_ns: 0, user: SYSTEM_USER, body };
    let mut events = Vec::new();
    clone.apply(&command, &mut events);
    match events.first() {
        Some(Event::Rejected(r)) => Some(r.reason),
        _ => None,
    }
}

#[test]
fn one_hundred_thousand_resting_orders_snapshot_and_restore() {
    const TRADERS: u32 = 200;
    const ORDERS: u32 = 100_000;
    let mut sequencer = Sequencer::default();
    let mut engine = Engine::new(EngineLimits::default());
    let setup = universe(2, TRADERS).into_iter().map(|b| sequencer.stamp(SYSTEM_USER, b));
    apply_all(&mut engine, &setup.collect::<Vec<_>>());
    let mut rng = Rng::new(11);
    let mut events = Vec::new();
    for n in 0..ORDERS {
        let trader = 1 + n % TRADERS;
        let side = if rng.percent(50) { Side::Buy } else { Side::Sell };
        // Bids below the reference, asks above: nothing trades, everything rests.
        let offset = rng.range(1, 999);
        let price = if side == Side::Buy { 10_000 - offset } else { 10_000 + offset };
        let order = NewOrder {
            account: trader_account(trader),
            instrument: InstrumentId((n % 2) as u16),
            client_order_id: ClientOrderId(u64::from(n)),
            side,
            order_type: OrderType::Limit,
            time_in_force: TimeInForce::Gtc,
            price: Price(price),
            qty: Qty(rng.range(1, 100)),
            stp_mode: StpMode::CancelNewest,
            stp_scope: StpScope::Account,
            post_only: false,
        };
        let command = sequencer.stamp(UserId(trader), CommandBody::NewOrder(order));
        events.clear();
        engine.apply(&command, &mut events);
    }
    assert_eq!(engine.live_orders(), ORDERS as usize);
    let started = Instant::now();
    let bytes = engine.snapshot();
    let written = started.elapsed();
    let started = Instant::now();
    let restored = Engine::from_snapshot(&bytes).unwrap();
    let read = started.elapsed();
    println!("{ORDERS} orders: {} bytes, snapshot {written:?}, restore {read:?}", bytes.len());
    // Times are printed, not asserted: speed is for benchmarks, not for tests.
    assert_eq!(restored.state_hash(), engine.state_hash());
    assert_eq!(restored.live_orders(), ORDERS as usize);
}

// ---- damaged bytes -------------------------------------------------------------------

/// A small but busy state: a few hundred resting orders, amended, frozen and halted
/// along the way, with small limits so that each restore attempt is cheap.
/// Returns the snapshot and the 300 commands that follow it in the stream.
fn small_snapshot() -> (Vec<u8>, Vec<Command>) {
    let (commands, setup) = rich_stream(0xDA_3A6E, rich_limits(), 4_300);
    let split = setup + 4_000;
    let mut engine = Engine::new(rich_limits());
    apply_all(&mut engine, &commands[..split]);
    assert!(engine.live_orders() > 50, "only {} live orders", engine.live_orders());
    (engine.snapshot(), commands[split..].to_vec())
}

/// Restores `bytes`; if that succeeds the engine must pass every invariant and go on
/// applying commands without panicking.
fn restore_or_refuse(bytes: &[u8], then: &[Command]) -> Result<(), SnapshotError> {
    let mut engine = Engine::from_snapshot(bytes)?;
    engine.check_invariants().expect("from_snapshot returned a broken state");
    let mut events = Vec::new();
    for command in then {
        // A damaged counter may have moved the sequence; the sequencer follows the engine.
        let command = Command { seq: engine.last_seq() + 1, ..*command };
        events.clear();
        engine.apply(&command, &mut events);
    }
    engine.check_invariants().expect("a restored engine broke an invariant");
    Ok(())
}

#[test]
fn every_truncation_and_extension_is_refused() {
    let (bytes, _) = small_snapshot();
    println!("snapshot of {} bytes", bytes.len());
    for len in 0..bytes.len() {
        assert!(Engine::from_snapshot(&bytes[..len]).is_err(), "prefix of {len} bytes accepted");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(Engine::from_snapshot(&longer), Err(SnapshotError::Malformed(_))));
    assert!(Engine::from_snapshot(&bytes).is_ok());
    assert!(matches!(Engine::from_snapshot(b"FCSN"), Err(SnapshotError::Malformed(_))));
}

#[test]
fn flipped_bytes_are_refused_or_give_a_consistent_state() {
    let (bytes, then) = small_snapshot();
    let mut rng = Rng::new(5);
    let (mut accepted, mut refused) = (0u32, 0u32);
    let mut reasons: HashMap<String, u32> = HashMap::new();
    for at in 0..bytes.len() {
        for mask in [0x01, 0x80, 0xFF, 1 + rng.below(255) as u8] {
            let mut damaged = bytes.clone();
            damaged[at] ^= mask;
            // Replaying commands after every accepted flip is slow; a sample suffices.
            let then = if at % 16 == 0 { &then[..] } else { &[] };
            match restore_or_refuse(&damaged, then) {
                Ok(()) => accepted += 1,
                Err(error) => {
                    refused += 1;
                    *reasons.entry(error_kind(&error)).or_default() += 1;
                }
            }
        }
    }
    let mut reasons: Vec<_> = reasons.into_iter().collect();
    reasons.sort_by_key(|reason| std::cmp::Reverse(reason.1));
    println!("{accepted} flips accepted, {refused} refused; top reasons: {:#?}", &reasons[..]);
    // Most bytes are ids, quantities, holds and balances: flipping them must be caught.
    assert!(refused > accepted, "{refused} refused, {accepted} accepted");
}

/// The error without its numbers, to group refusals in the report.
fn error_kind(error: &SnapshotError) -> String {
    let text = error.to_string();
    let words = text.split_whitespace().filter(|w| !w.chars().any(|c| c.is_ascii_digit()));
    words.take(8).collect::<Vec<_>>().join(" ")
}

#[test]
fn random_bytes_and_overwritten_fields_never_panic() {
    let (bytes, then) = small_snapshot();
    let mut rng = Rng::new(17);
    // Pure noise, and noise behind a valid preamble and head so it reaches the sections.
    for _ in 0..20_000 {
        let keep = [0, 8, 56][rng.below(3) as usize];
        let len = keep + rng.below(600) as usize;
        let mut noise: Vec<u8> = bytes[..keep].to_vec();
        noise.extend((keep..len).map(|_| rng.next_u64() as u8));
        assert!(restore_or_refuse(&noise, &[]).is_err(), "noise accepted: {noise:?}");
    }
    // Whole fields overwritten with extreme values: counts, ids, lengths, quantities.
    let extremes: [u64; 8] = [0, 1, 2, 0x7F, 0xFFFF, u32::MAX as u64, i64::MAX as u64, u64::MAX];
    let mut accepted = 0;
    for step in 0..30_000 {
        let mut damaged = bytes.clone();
        let width = [1, 2, 4, 8][rng.below(4) as usize];
        let at = rng.below((bytes.len() - width) as u64) as usize;
        let value = if rng.percent(50) { extremes[rng.below(8) as usize] } else { rng.next_u64() };
        damaged[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
        let then = if step % 64 == 0 { &then[..] } else { &[] };
        accepted += u32::from(restore_or_refuse(&damaged, then).is_ok());
    }
    println!("{accepted} of 30000 overwritten snapshots accepted");
}
