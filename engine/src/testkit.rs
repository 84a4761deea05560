//! Test and benchmark support (feature `testkit`): a standard universe of users, assets,
//! instruments and funded accounts, a sequencer that stamps commands, a seeded PRNG, and
//! the "realistic" trading workload used by `fincore bench engine` and the benches.
//!
//! None of this is part of the state machine. The PRNG is seeded and deterministic;
//! the engine itself never sees it, only the commands it produced.

use crate::*;
use std::collections::HashMap;

/// SplitMix64: tiny, fast, seeded; good enough to shuffle workloads.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `low..=high`.
    pub fn range(&mut self, low: i64, high: i64) -> i64 {
        low + self.below((high - low + 1) as u64) as i64
    }

    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Stamps commands with consecutive sequence numbers and a steadily advancing clock.
#[derive(Clone, Debug, Default)]
pub struct Sequencer {
    /// Last sequence number handed out.
    pub seq: u64,
    /// Time of the last command, ns.
    pub time_ns: u64,
}

impl Sequencer {
    /// The next command, one microsecond after the previous one.
    pub fn stamp(&mut self, user: UserId, body: CommandBody) -> Command {
        self.seq += 1;
        self.time_ns += 1_000;
        Command { seq: self.seq, time_ns: self.time_ns, user, body }
    }
}

/// Quote asset of the standard universe: a dollar with 6 decimals.
pub const USD: AssetId = AssetId(0);
/// The fee account of the standard universe (owned by the system user).
pub const FEE_ACCOUNT: AccountId = AccountId(0);
/// Reference price of every standard instrument: 100.00.
pub const REFERENCE_PRICE: Price = Price(10_000);
/// Quote minor units each trader starts with (1 000 000 USD).
pub const START_QUOTE: i64 = 1_000_000_000_000;
/// Base minor units of each coin each trader starts with (100 000 coins).
pub const START_BASE: i64 = 10_000_000_000_000;

/// The base asset of standard instrument `i`.
pub fn base_asset(i: u16) -> AssetId {
    AssetId(1 + i)
}

/// The trading account of trader `k` (1-based): same number as its user id.
pub fn trader_account(k: u32) -> AccountId {
    AccountId(k)
}

/// Definition of standard instrument `i`: `COINi-USD`, tick 0.01, lot 0.001, band
/// 10 %, maker rebate 1 bp, taker fee 5 bp.
pub fn instrument_spec(i: u16) -> InstrumentSpec {
    InstrumentSpec {
        instrument: InstrumentId(i),
        symbol: Symbol::new(&format!("COIN{i}-USD")).expect("short"),
        base: base_asset(i),
        quote: USD,
        tick_size: Dec { mantissa: 1, scale: 2 },
        lot_size: Dec { mantissa: 1, scale: 3 },
        reference_price: REFERENCE_PRICE,
        band_bps: 1_000,
        qty_max: Qty(1_000_000),
        notional_max: 1_000_000_000_000,
        maker_fee_bps: -1,
        taker_fee_bps: 5,
        fee_account: FEE_ACCOUNT,
    }
}

/// Setup commands for a universe of `instruments` instruments and `traders` funded
/// traders (users 1..=traders, each with one account of the same number).
pub fn universe(instruments: u16, traders: u32) -> Vec<CommandBody> {
    let mut setup = vec![CommandBody::CreateAsset {
        asset: USD,
        symbol: Symbol::new("USD").expect("short"),
        scale: 6,
    }];
    setup.push(CommandBody::CreateAccount { account: FEE_ACCOUNT, owner: SYSTEM_USER });
    for i in 0..instruments {
        let symbol = Symbol::new(&format!("COIN{i}")).expect("short");
        setup.push(CommandBody::CreateAsset { asset: base_asset(i), symbol, scale: 8 });
        setup.push(CommandBody::CreateInstrument(instrument_spec(i)));
    }
    // Deposit ids are unique across the external account's namespace, and far above
    // the small ids tests pick for their own deposits.
    let mut deposit_id = 1 << 62;
    let mut deposit = |account, asset, amount| {
        deposit_id += 1;
        CommandBody::Deposit {
            account,
            asset,
            amount,
            client_payment_id: ClientPaymentId(deposit_id),
        }
    };
    for k in 1..=traders {
        let (user, account) = (UserId(k), trader_account(k));
        setup.push(CommandBody::CreateUser { user, role: Role::Trader });
        setup.push(CommandBody::CreateAccount { account, owner: user });
        setup.push(deposit(account, USD, START_QUOTE));
        for i in 0..instruments {
            setup.push(deposit(account, base_asset(i), START_BASE));
        }
    }
    setup
}

/// A command stream ready to apply: the setup, then the measured commands.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Universe setup, applied before measuring.
    pub setup: Vec<Command>,
    /// The workload proper.
    pub commands: Vec<Command>,
}

/// Shape of the realistic trading workload.
#[derive(Clone, Copy, Debug)]
pub struct TradingMix {
    /// Instruments (1 or 16 in the published figures).
    pub instruments: u16,
    /// Traders.
    pub traders: u32,
    /// Commands after setup.
    pub commands: usize,
    /// PRNG seed.
    pub seed: u64,
}

/// Generates the realistic mix: about 55 % passive limit orders around a random-walking
/// mid, 35 % cancels of live orders, 8 % crossing limit orders, 2 % market orders.
///
/// The generator runs the commands through an engine as it goes so that cancels name
/// orders that are really live; the returned stream is then replayed on a fresh engine
/// by whoever measures it.
pub fn trading_workload(mix: TradingMix) -> Workload {
    let mut sequencer = Sequencer::default();
    let setup: Vec<Command> = universe(mix.instruments, mix.traders)
        .into_iter()
        .map(|b| sequencer.stamp(SYSTEM_USER, b))
        .collect();
    let mut engine = Engine::new(EngineLimits::default());
    let mut events = Vec::new();
    for command in &setup {
        engine.apply(command, &mut events);
    }
    let mut state = GeneratorState::new(mix);
    let mut commands = Vec::with_capacity(mix.commands);
    for _ in 0..mix.commands {
        let (user, body) = state.next_body();
        let command = sequencer.stamp(user, body);
        events.clear();
        engine.apply(&command, &mut events);
        state.observe(&events);
        commands.push(command);
    }
    Workload { setup, commands }
}

/// Shape of the payments workload (and of the mixed one, with `trading_percent > 0`).
#[derive(Clone, Copy, Debug)]
pub struct PaymentsMix {
    /// Traders paying each other (and trading, in the mixed stream).
    pub traders: u32,
    /// Instruments of the trading share.
    pub instruments: u16,
    /// Commands after setup.
    pub commands: usize,
    /// Percentage of commands drawn from the trading mix instead (0: payments only).
    pub trading_percent: u32,
    /// Percentage of the payments that are transfers; the rest are authorizations and
    /// their captures (50 in the standard mix, 100 for transfers only).
    pub transfer_percent: u32,
    /// PRNG seed.
    pub seed: u64,
}

/// Generates payments in USD between random traders: `transfer_percent` transfers, the
/// rest authorize/capture pairs (an authorization with a one-hour timeout, captured later in
/// full or, one time in four, in part). The setup gives USD a per-payment maximum and a
/// default 24-hour velocity limit, both high enough to pass, so every payment runs
/// every risk check. With `trading_percent > 0` that share of the commands comes from
/// [`trading_workload`]'s generator instead, interleaved at random.
pub fn payments_workload(mix: PaymentsMix) -> Workload {
    let mut sequencer = Sequencer::default();
    let mut setup_bodies = universe(mix.instruments.max(1), mix.traders);
    setup_bodies.push(CommandBody::SetPaymentLimits {
        asset: USD,
        transfer_max: Some(START_QUOTE),
        velocity_24h: Some(i64::MAX / 2),
    });
    let setup: Vec<Command> =
        setup_bodies.into_iter().map(|b| sequencer.stamp(SYSTEM_USER, b)).collect();
    let mut engine = Engine::new(EngineLimits::default());
    let mut events = Vec::new();
    for command in &setup {
        engine.apply(command, &mut events);
    }
    let trading = TradingMix {
        instruments: mix.instruments.max(1),
        traders: mix.traders,
        commands: mix.commands,
        seed: mix.seed,
    };
    let mut trades = GeneratorState::new(trading);
    let mut payments = PaymentGenerator {
        rng: Rng::new(mix.seed ^ 0x9E37_79B9_7F4A_7C15),
        traders: mix.traders,
        pending: std::collections::VecDeque::new(),
        next_client_id: 1,
        transfer_percent: u64::from(mix.transfer_percent),
    };
    let mut commands = Vec::with_capacity(mix.commands);
    for _ in 0..mix.commands {
        let (user, body) = if payments.rng.below(100) < u64::from(mix.trading_percent) {
            trades.next_body()
        } else {
            payments.next_body()
        };
        let command = sequencer.stamp(user, body);
        events.clear();
        engine.apply(&command, &mut events);
        trades.observe(&events);
        commands.push(command);
    }
    Workload { setup, commands }
}

/// The payment side of [`payments_workload`]: open authorizations, oldest first.
struct PaymentGenerator {
    rng: Rng,
    traders: u32,
    /// (debit account, client payment id, amount) of authorizations not yet captured.
    pending: std::collections::VecDeque<(AccountId, ClientPaymentId, i64)>,
    next_client_id: u64,
    transfer_percent: u64,
}

impl PaymentGenerator {
    fn next_body(&mut self) -> (UserId, CommandBody) {
        let roll = self.rng.below(100);
        // Of the non-transfers, half are authorizations and half captures.
        let capture_from = self.transfer_percent + (100 - self.transfer_percent) / 2;
        let capture =
            !self.pending.is_empty() && (roll >= capture_from || self.pending.len() > 256);
        if capture {
            let (account, client, amount) = self.pending.pop_front().expect("not empty");
            let amount = if self.rng.percent(25) { amount / 2 + 1 } else { 0 };
            let payment = PaymentRef::Client(client);
            return (UserId(account.0), CommandBody::Capture { account, payment, amount });
        }
        let debit = 1 + self.rng.below(u64::from(self.traders)) as u32;
        // Any other trader (a trader never pays itself).
        let other = 1 + self.rng.below(u64::from(self.traders.max(2) - 1)) as u32;
        let credit = if other >= debit { other + 1 } else { other };
        let (debit, credit) = (trader_account(debit), trader_account(credit.min(self.traders)));
        let amount = self.rng.range(1, 1_000_000);
        self.next_client_id += 1;
        let client_payment_id = ClientPaymentId(self.next_client_id);
        let user = UserId(debit.0);
        if roll < self.transfer_percent {
            let t = Transfer { debit, credit, asset: USD, amount, client_payment_id };
            (user, CommandBody::Transfer(t))
        } else {
            self.pending.push_back((debit, client_payment_id, amount));
            let a = Authorize {
                debit,
                credit,
                asset: USD,
                amount,
                client_payment_id,
                timeout_s: 3_600,
            };
            (user, CommandBody::Authorize(a))
        }
    }
}

/// What the generator knows: mids, and which orders are live (from the events).
struct GeneratorState {
    mix: TradingMix,
    rng: Rng,
    mids: Vec<i64>,
    live: Vec<(AccountId, OrderId)>,
    live_index: HashMap<OrderId, usize>,
    next_client_id: u64,
}

impl GeneratorState {
    fn new(mix: TradingMix) -> GeneratorState {
        GeneratorState {
            mix,
            rng: Rng::new(mix.seed),
            mids: vec![REFERENCE_PRICE.0; mix.instruments as usize],
            live: Vec::new(),
            live_index: HashMap::new(),
            next_client_id: 1,
        }
    }

    fn next_body(&mut self) -> (UserId, CommandBody) {
        let roll = self.rng.below(100);
        if (55..90).contains(&roll) && !self.live.is_empty() {
            let (account, id) = self.live[self.rng.below(self.live.len() as u64) as usize];
            let body = CommandBody::Cancel { account, order: OrderRef::Id(id) };
            return (UserId(account.0), body);
        }
        let instrument = self.rng.below(self.mix.instruments as u64) as u16;
        let mid = &mut self.mids[instrument as usize];
        // The mid takes a one-tick step now and then and stays within 3 % of 100.00.
        *mid =
            (*mid + self.rng.range(-1, 1) * i64::from(self.rng.percent(10))).clamp(9_700, 10_300);
        let mid = *mid;
        let side = if self.rng.percent(50) { Side::Buy } else { Side::Sell };
        let toward = |ticks: i64| if side == Side::Buy { mid + ticks } else { mid - ticks };
        let (order_type, time_in_force, price, qty) = match roll {
            0..=89 => (
                OrderType::Limit,
                TimeInForce::Gtc,
                toward(-self.rng.range(1, 20)),
                self.rng.range(1, 100),
            ),
            90..=97 => (
                OrderType::Limit,
                TimeInForce::Gtc,
                toward(self.rng.range(1, 5)),
                self.rng.range(1, 240),
            ),
            _ => (OrderType::Market, TimeInForce::Ioc, 0, self.rng.range(1, 240)),
        };
        let trader = 1 + self.rng.below(self.mix.traders as u64) as u32;
        self.next_client_id += 1;
        let order = NewOrder {
            account: trader_account(trader),
            instrument: InstrumentId(instrument),
            client_order_id: ClientOrderId(self.next_client_id),
            side,
            order_type,
            time_in_force,
            price: Price(price),
            qty: Qty(qty),
            stp_mode: StpMode::CancelNewest,
            stp_scope: StpScope::Account,
            post_only: false,
        };
        (UserId(trader), CommandBody::NewOrder(order))
    }

    fn observe(&mut self, events: &[Event]) {
        for event in events {
            match event {
                Event::Accepted(a) => self.add(a.account, a.order_id),
                Event::Cancelled(c) => self.remove(c.order_id),
                Event::Fill(f) => {
                    if f.maker_remaining.0 == 0 {
                        self.remove(f.maker_order);
                    }
                    if f.taker_remaining.0 == 0 {
                        self.remove(f.taker_order);
                    }
                }
                _ => {}
            }
        }
    }

    fn add(&mut self, account: AccountId, id: OrderId) {
        self.live_index.insert(id, self.live.len());
        self.live.push((account, id));
    }

    fn remove(&mut self, id: OrderId) {
        let Some(index) = self.live_index.remove(&id) else { return };
        self.live.swap_remove(index);
        if let Some((_, moved)) = self.live.get(index) {
            self.live_index.insert(*moved, index);
        }
    }
}
