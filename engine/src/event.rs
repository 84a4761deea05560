//! The engine's outputs. Every command produces at least one event; the events of one
//! command are emitted in a fixed, deterministic order (see `docs/PROTOCOL.md`).

use crate::command::{CommandKind, InstrumentSpec};
use crate::reject::RejectReason;
use crate::types::*;
use wincode::{SchemaRead, SchemaWrite};

/// Receives the events of one command (or query), in order.
pub trait EventSink {
    /// Takes one event.
    fn emit(&mut self, event: Event);
}

impl EventSink for Vec<Event> {
    fn emit(&mut self, event: Event) {
        self.push(event);
    }
}

/// A sink that keeps nothing: for applying commands whose events nobody reads (a
/// replay, the validation of a snapshot's records). The state is the same, since
/// events are outputs only, and the compiler can leave out building them.
#[derive(Debug, Default, Clone, Copy)]
pub struct Discard;

impl EventSink for Discard {
    fn emit(&mut self, _event: Event) {}
}

/// A sink that only counts, for benchmarks that must not measure event storage.
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingSink {
    /// Events seen.
    pub events: u64,
    /// Of which fills.
    pub fills: u64,
    /// Of which rejections.
    pub rejects: u64,
}

impl EventSink for CountingSink {
    fn emit(&mut self, event: Event) {
        self.events += 1;
        match event {
            Event::Fill(_) => self.fills += 1,
            Event::Rejected(_) => self.rejects += 1,
            _ => {}
        }
    }
}

/// Why an order left the book without filling completely.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, SchemaWrite, SchemaRead)]
pub enum CancelReason {
    /// The owner asked (cancel command).
    User,
    /// The unfilled rest of an IOC or market order.
    IocRemainder,
    /// A fill-or-kill order that could not fill completely.
    FokUnfilled,
    /// Self-trade prevention.
    SelfTrade,
    /// A mass cancel.
    MassCancel,
    /// The instrument was halted with `cancel_resting`.
    Halt,
}

/// A new order passed every check. For a limit GTC order that does not trade it is now
/// resting; fills (if any) follow in separate events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct OrderAccepted {
    /// Engine order id.
    pub order_id: OrderId,
    /// Owner account.
    pub account: AccountId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// The client's id.
    pub client_order_id: ClientOrderId,
    /// Side.
    pub side: Side,
    /// Effective limit price in ticks (for market orders: the protection price).
    pub price: Price,
    /// Quantity in lots.
    pub qty: Qty,
    /// Amount now held for it (quote minor units for a buy, base for a sell).
    pub hold: i64,
}

/// A command was refused; nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct Rejected {
    /// What kind of command it was.
    pub kind: CommandKind,
    /// Its account, when it names one (else 0).
    pub account: AccountId,
    /// The client order id or client payment id it names, when it has one (else 0).
    pub client_id: u64,
    /// Why.
    pub reason: RejectReason,
}

/// One execution between a resting (maker) and an incoming (taker) order, settled in the
/// same step: balances have already moved when this event is emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct Fill {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Trade id, shared with the public [`Trade`].
    pub trade_id: TradeId,
    /// Execution price (the maker's price) in ticks.
    pub price: Price,
    /// Executed quantity in lots.
    pub qty: Qty,
    /// Side of the incoming order.
    pub taker_side: Side,
    /// Resting order.
    pub maker_order: OrderId,
    /// Incoming order.
    pub taker_order: OrderId,
    /// Resting order's account.
    pub maker_account: AccountId,
    /// Incoming order's account.
    pub taker_account: AccountId,
    /// Resting order's client id.
    pub maker_client_id: ClientOrderId,
    /// Incoming order's client id.
    pub taker_client_id: ClientOrderId,
    /// Fee paid by the maker in quote minor units (negative: rebate received).
    pub maker_fee: i64,
    /// Fee paid by the taker in quote minor units.
    pub taker_fee: i64,
    /// Maker's quantity still open after this fill.
    pub maker_remaining: Qty,
    /// Taker's quantity still open after this fill.
    pub taker_remaining: Qty,
}

/// An order left the book (or an incoming order's rest was dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct OrderCancelled {
    /// Engine order id.
    pub order_id: OrderId,
    /// Owner account.
    pub account: AccountId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// The client's id.
    pub client_order_id: ClientOrderId,
    /// Quantity that will never fill.
    pub qty_cancelled: Qty,
    /// Why.
    pub reason: CancelReason,
}

/// A live order's price or quantity changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct OrderAmended {
    /// Engine order id.
    pub order_id: OrderId,
    /// Owner account.
    pub account: AccountId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// The client's id.
    pub client_order_id: ClientOrderId,
    /// New price in ticks.
    pub price: Price,
    /// New remaining quantity in lots.
    pub qty: Qty,
    /// True if the order kept its place in the queue.
    pub priority_kept: bool,
}

/// An account's balance in one asset after a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct BalanceChanged {
    /// Account.
    pub account: AccountId,
    /// Asset.
    pub asset: AssetId,
    /// Free to use, minor units. Below zero only by payments on a credit limit.
    pub available: i64,
    /// Reserved for resting orders, minor units.
    pub held: i64,
    /// Reserved for pending outgoing authorizations, minor units.
    pub pending: i64,
}

/// Public trade print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct Trade {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Trade id.
    pub trade_id: TradeId,
    /// Price in ticks.
    pub price: Price,
    /// Quantity in lots.
    pub qty: Qty,
    /// Side of the incoming order.
    pub taker_side: Side,
}

/// Public L2 update: the total at one price level after a change (0 = level gone).
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct LevelChanged {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Book side.
    pub side: Side,
    /// Price in ticks.
    pub price: Price,
    /// Total resting quantity in lots.
    pub qty: Qty,
    /// Number of resting orders.
    pub orders: u32,
}

/// A live order, as reported by queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct OrderInfo {
    /// Engine order id.
    pub order_id: OrderId,
    /// Owner account.
    pub account: AccountId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// The client's id.
    pub client_order_id: ClientOrderId,
    /// Side.
    pub side: Side,
    /// Price in ticks.
    pub price: Price,
    /// Remaining quantity in lots.
    pub remaining: Qty,
    /// Quantity filled so far.
    pub filled: Qty,
    /// Amount held for it.
    pub hold: i64,
}

/// The result of one command or query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub enum Event {
    /// The command was refused.
    Rejected(Rejected),
    /// A new order passed its checks.
    Accepted(OrderAccepted),
    /// A fill, already settled.
    Fill(Fill),
    /// An order left the book unfilled.
    Cancelled(OrderCancelled),
    /// An order changed.
    Amended(OrderAmended),
    /// A balance changed.
    Balance(BalanceChanged),
    /// Public trade.
    Trade(Trade),
    /// Public book level change.
    Level(LevelChanged),
    /// A user now exists.
    UserCreated {
        /// Its id.
        user: UserId,
        /// Its role.
        role: Role,
    },
    /// An asset now exists.
    AssetCreated {
        /// Its id.
        asset: AssetId,
        /// Its minor-unit scale.
        scale: u8,
    },
    /// An instrument now exists (and is trading).
    InstrumentCreated {
        /// Its id.
        instrument: InstrumentId,
    },
    /// An account now exists (active, zero balances).
    AccountCreated {
        /// Its id.
        account: AccountId,
        /// Its owner.
        owner: UserId,
    },
    /// A payment was created or changed (or a retry matched an existing one); the
    /// `Balance` events of the accounts it moved follow.
    Payment {
        /// What happened.
        action: PaymentAction,
        /// The payment after it happened.
        info: PaymentInfo,
    },
    /// An account's status changed.
    AccountStatusChanged {
        /// Account.
        account: AccountId,
        /// New status.
        status: AccountStatus,
    },
    /// An instrument's status changed.
    InstrumentStatusChanged {
        /// Instrument.
        instrument: InstrumentId,
        /// New status.
        status: InstrumentStatus,
    },
    /// A mass cancel finished (its `Cancelled` events came before).
    MassCancelled {
        /// Account.
        account: AccountId,
        /// Orders cancelled.
        count: u32,
    },
    /// Query answer: one balance.
    BalanceInfo(BalanceChanged),
    /// Query answer: one live order.
    OrderInfo(OrderInfo),
    /// Query answer: one depth level.
    DepthLevel(LevelChanged),
    /// End of a query's answer, with how many items it had.
    QueryDone {
        /// Items in the answer.
        items: u32,
    },
    /// Query answer: one asset.
    AssetInfo {
        /// Asset.
        asset: AssetId,
        /// Its symbol.
        symbol: Symbol,
        /// Decimals of its minor unit.
        scale: u8,
    },
    /// Query answer: one instrument's definition and status.
    InstrumentInfo {
        /// The definition.
        spec: InstrumentSpec,
        /// Trading or halted.
        status: InstrumentStatus,
    },
    /// Query answer: one payment.
    PaymentInfo(PaymentInfo),
    /// An asset's payment policy changed.
    PaymentLimitsSet {
        /// Asset.
        asset: AssetId,
        /// Largest single outgoing payment, if limited.
        transfer_max: Option<i64>,
        /// Default rolling 24-hour outgoing limit per account, if limited.
        velocity_24h: Option<i64>,
    },
    /// An account's payment limits in one asset changed.
    AccountLimitsSet {
        /// Account.
        account: AccountId,
        /// Asset.
        asset: AssetId,
        /// How far below zero payments may take its available balance.
        credit_limit: i64,
        /// Its own rolling 24-hour outgoing limit, or `None` for the asset's default.
        velocity_24h: Option<i64>,
    },
    /// An account went on or came off the compliance deny-list.
    AccountBlocked {
        /// Account.
        account: AccountId,
        /// On the list now.
        blocked: bool,
    },
    /// A `Tick` advanced engine time (its expiries, if any, came before).
    Ticked {
        /// Engine time now.
        time_ns: u64,
    },
}

/// What happened to a payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, SchemaWrite, SchemaRead)]
pub enum PaymentAction {
    /// A new payment: a transfer, deposit or withdrawal (completed) or an
    /// authorization (pending).
    Created,
    /// A pending authorization was captured (completed).
    Captured,
    /// A pending authorization was voided.
    Voided,
    /// A pending authorization reached its deadline. Emitted first among the events of
    /// the first command whose time reaches the deadline, whoever sent it.
    Expired,
    /// A retry: the command matched this existing payment exactly, so nothing was done
    /// again and no balance moved. `info` is the payment as it is now.
    Duplicate,
}

impl PaymentAction {
    /// Number of actions.
    pub const COUNT: usize = 5;

    /// Position in declaration order, below [`PaymentAction::COUNT`] (a new action
    /// does not compile until it is given one).
    pub const fn index(self) -> usize {
        match self {
            PaymentAction::Created => 0,
            PaymentAction::Captured => 1,
            PaymentAction::Voided => 2,
            PaymentAction::Expired => 3,
            PaymentAction::Duplicate => 4,
        }
    }
}

/// A payment as recorded by the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct PaymentInfo {
    /// Engine id.
    pub payment_id: PaymentId,
    /// The client's id (the idempotency key, per debit account).
    pub client_payment_id: ClientPaymentId,
    /// Transfer, authorization, deposit or withdrawal.
    pub kind: PaymentKind,
    /// Account paying ([`EXTERNAL_ACCOUNT`] for a deposit).
    pub debit: AccountId,
    /// Account paid ([`EXTERNAL_ACCOUNT`] for a withdrawal).
    pub credit: AccountId,
    /// What moves.
    pub asset: AssetId,
    /// Amount requested (authorized), minor units.
    pub amount: i64,
    /// Amount that reached the credit account, minor units.
    pub captured: i64,
    /// Pending, completed, voided or expired.
    pub status: PaymentStatus,
    /// Engine time it was created.
    pub created_ns: u64,
    /// Engine time a pending authorization expires (0: never, or not an authorization).
    pub deadline_ns: u64,
    /// Engine time it reached its final status (0 while pending).
    pub resolved_ns: u64,
}
