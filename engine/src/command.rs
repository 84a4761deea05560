//! The engine's inputs. A [`Command`] changes state and is journaled; a [`Query`] only
//! reads state and is answered in sequence but never journaled.

use crate::types::*;
use wincode::{SchemaRead, SchemaWrite};

/// One input to [`crate::Engine::apply`], stamped by the sequencer before it is journaled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct Command {
    /// Position in the journal: starts at 1, monotonic and gap-free.
    pub seq: u64,
    /// Time the gateway received the command, in nanoseconds since the Unix epoch. The
    /// engine's only notion of time.
    pub time_ns: u64,
    /// The authenticated user on whose behalf the command runs.
    pub user: UserId,
    /// What to do.
    pub body: CommandBody,
}

/// What a command asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub enum CommandBody {
    /// Admin: register a user id with a role (secrets never enter the engine).
    CreateUser {
        /// New user id.
        user: UserId,
        /// Its role.
        role: Role,
    },
    /// Admin: register an asset with the number of decimals of its minor unit.
    CreateAsset {
        /// New asset id (below [`crate::ASSETS_MAX`]).
        asset: AssetId,
        /// Human name, e.g. `USD`.
        symbol: Symbol,
        /// Decimal places of one minor unit: 2 for cents, 8 for satoshis.
        scale: u8,
    },
    /// Admin: list an instrument.
    CreateInstrument(InstrumentSpec),
    /// Admin: open an account for a user.
    CreateAccount {
        /// New account id (below the engine's configured account capacity).
        account: AccountId,
        /// The user who owns it.
        owner: UserId,
    },
    /// Admin or operator: a payment from the asset's external account into an account.
    Deposit {
        /// Account credited.
        account: AccountId,
        /// Asset credited.
        asset: AssetId,
        /// Minor units, positive.
        amount: i64,
        /// Idempotency key, in the namespace of the external account (one for all
        /// deposits of every asset).
        client_payment_id: ClientPaymentId,
    },
    /// Admin or operator: a payment from an account's available balance to the asset's
    /// external account.
    Withdraw {
        /// Account debited.
        account: AccountId,
        /// Asset debited.
        asset: AssetId,
        /// Minor units, positive.
        amount: i64,
        /// Idempotency key, in the namespace of the debited account.
        client_payment_id: ClientPaymentId,
    },
    /// Admin: freeze, unfreeze or close an account.
    SetAccountStatus {
        /// The account.
        account: AccountId,
        /// Its new status. Closing needs no resting orders and zero balances.
        status: AccountStatus,
    },
    /// Admin: halt or resume an instrument.
    SetInstrumentStatus {
        /// The instrument.
        instrument: InstrumentId,
        /// Its new status.
        status: InstrumentStatus,
        /// On halt, also cancel every resting order (reason `Halt`).
        cancel_resting: bool,
    },
    /// Trading: a new order.
    NewOrder(NewOrder),
    /// Trading: cancel one live order.
    Cancel {
        /// The account that owns the order.
        account: AccountId,
        /// Which order.
        order: OrderRef,
    },
    /// Trading: change a live order's price and/or remaining quantity.
    Amend(Amend),
    /// Trading: cancel every live order of an account, or of an account on one instrument.
    MassCancel {
        /// The account.
        account: AccountId,
        /// Only this instrument; `None` for all.
        instrument: Option<InstrumentId>,
    },
    /// Payment: move money between two accounts at once (or refuse).
    Transfer(Transfer),
    /// Payment: hold money on the debit account for a later capture or void.
    Authorize(Authorize),
    /// Payment: complete a pending authorization, wholly or in part; the rest of the
    /// hold is released to the debit account.
    Capture {
        /// The acting user's account in the payment (either side; the debit side when
        /// the payment is named by client payment id).
        account: AccountId,
        /// Which payment.
        payment: PaymentRef,
        /// Minor units to move, at most the authorized amount; 0 captures all of it.
        amount: i64,
    },
    /// Payment: release a pending authorization without moving money.
    Void {
        /// The acting user's account in the payment (as for `Capture`).
        account: AccountId,
        /// Which payment.
        payment: PaymentRef,
    },
    /// Admin: an asset's payment policy.
    SetPaymentLimits {
        /// The asset.
        asset: AssetId,
        /// Largest amount of one transfer, authorization or withdrawal; `None` for no
        /// limit.
        transfer_max: Option<i64>,
        /// Default rolling 24-hour outgoing limit per account; `None` for no limit.
        velocity_24h: Option<i64>,
    },
    /// Admin: one account's payment limits in one asset.
    SetAccountLimits {
        /// The account.
        account: AccountId,
        /// The asset.
        asset: AssetId,
        /// How far below zero the available balance may go through payments (0: not at
        /// all). Trading never uses credit.
        credit_limit: i64,
        /// Rolling 24-hour outgoing limit for this account; `None` to follow the
        /// asset's default.
        velocity_24h: Option<i64>,
    },
    /// Admin: put an account on, or take it off, the compliance deny-list. A listed
    /// account can neither send nor receive payments.
    SetAccountBlocked {
        /// The account.
        account: AccountId,
        /// On the list or not.
        blocked: bool,
    },
    /// System: advance engine time with no other effect, so that authorizations whose
    /// deadline has passed expire while no other command arrives. The server journals
    /// one when the next deadline is due and the engine is idle.
    Tick,
}

/// A transfer: `amount` of `asset` from `debit` to `credit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct Transfer {
    /// Account paying; must belong to the acting user.
    pub debit: AccountId,
    /// Account paid.
    pub credit: AccountId,
    /// What moves.
    pub asset: AssetId,
    /// Minor units, positive.
    pub amount: i64,
    /// Idempotency key, unique per debit account for the life of the journal.
    pub client_payment_id: ClientPaymentId,
}

/// An authorization: like a [`Transfer`], but the money is only held until a capture,
/// a void, or the deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct Authorize {
    /// Account paying; must belong to the acting user.
    pub debit: AccountId,
    /// Account to be paid on capture.
    pub credit: AccountId,
    /// What moves.
    pub asset: AssetId,
    /// Minor units held, positive.
    pub amount: i64,
    /// Idempotency key, unique per debit account for the life of the journal.
    pub client_payment_id: ClientPaymentId,
    /// Seconds of engine time after which the hold expires; 0 for never.
    pub timeout_s: u32,
}

/// Names a payment either by the engine's id or by the debit account's client id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, SchemaWrite, SchemaRead)]
pub enum PaymentRef {
    /// By engine payment id.
    Id(PaymentId),
    /// By client payment id (within the debit account).
    Client(ClientPaymentId),
}

/// A decimal number as mantissa x 10^-scale, for definitions that come from people
/// (tick size, lot size). Exact, and `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, SchemaWrite, SchemaRead)]
pub struct Dec {
    /// The digits.
    pub mantissa: i64,
    /// How many of them are decimals.
    pub scale: u8,
}

/// Everything that defines an instrument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct InstrumentSpec {
    /// New instrument id (below [`crate::INSTRUMENTS_MAX`]).
    pub instrument: InstrumentId,
    /// Ticker, e.g. `BTC-USD`.
    pub symbol: Symbol,
    /// What is bought and sold.
    pub base: AssetId,
    /// What it is paid with.
    pub quote: AssetId,
    /// One tick in quote per one base (e.g. 0.01 USD).
    pub tick_size: Dec,
    /// One lot in base (e.g. 0.0001 BTC).
    pub lot_size: Dec,
    /// Reference price before the first trade (ticks); the band is centred on it.
    pub reference_price: Price,
    /// Half-width of the accepted price band around the reference price, in basis points.
    pub band_bps: u32,
    /// Largest quantity one order may have.
    pub qty_max: Qty,
    /// Largest notional one order may have, in quote minor units.
    pub notional_max: i64,
    /// Fee charged to the resting side in basis points of notional; negative is a rebate.
    pub maker_fee_bps: i32,
    /// Fee charged to the incoming side in basis points of notional.
    pub taker_fee_bps: i32,
    /// Account that collects fees (and pays rebates) in the quote asset.
    pub fee_account: AccountId,
}

/// A new order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct NewOrder {
    /// The trading account.
    pub account: AccountId,
    /// What to trade.
    pub instrument: InstrumentId,
    /// The client's id for this order, unique among the account's live orders.
    pub client_order_id: ClientOrderId,
    /// Buy or sell.
    pub side: Side,
    /// Limit or market.
    pub order_type: OrderType,
    /// GTC, IOC or FOK. A market order must be IOC or FOK.
    pub time_in_force: TimeInForce,
    /// Limit price in ticks; ignored for market orders.
    pub price: Price,
    /// Quantity in lots.
    pub qty: Qty,
    /// Self-trade prevention behaviour.
    pub stp_mode: StpMode,
    /// Self-trade prevention scope.
    pub stp_scope: StpScope,
    /// Reject instead of trading on arrival; GTC limit orders only.
    pub post_only: bool,
}

/// Change a live order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct Amend {
    /// The account that owns the order.
    pub account: AccountId,
    /// Which order.
    pub order: OrderRef,
    /// New limit price in ticks (the current one to keep it).
    pub price: Price,
    /// New remaining quantity in lots. Same price and less quantity keeps time priority;
    /// any price change or more quantity loses it (and may trade, like a new order).
    pub qty: Qty,
}

/// Names a live order either by the engine's id or by the client's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, SchemaWrite, SchemaRead)]
pub enum OrderRef {
    /// By engine order id.
    Id(OrderId),
    /// By client order id (within the account).
    Client(ClientOrderId),
}

/// A read-only question, answered in sequence with the commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub enum Query {
    /// Every asset balance of an account.
    Balances {
        /// The account.
        account: AccountId,
    },
    /// One live order.
    Order {
        /// The account that owns it.
        account: AccountId,
        /// Which order.
        order: OrderRef,
    },
    /// Every live order of an account, oldest first.
    OpenOrders {
        /// The account.
        account: AccountId,
    },
    /// The best `levels` price levels of each side (1 = top of book).
    Depth {
        /// The instrument.
        instrument: InstrumentId,
        /// How many levels per side.
        levels: u16,
    },
    /// Reference data: every asset, then every instrument (what a client needs to
    /// convert decimals to ticks, lots and minor units).
    Reference,
    /// One payment.
    Payment {
        /// An account of the asking user in the payment (the debit side when the
        /// payment is named by client payment id).
        account: AccountId,
        /// Which payment.
        payment: PaymentRef,
    },
    /// An account's payments, either side, newest first.
    Payments {
        /// The account.
        account: AccountId,
        /// At most this many (capped at [`crate::PAYMENTS_PAGE_MAX`]).
        limit: u16,
    },
}

impl CommandBody {
    /// The account and client id a `Rejected` event reports for this command: the
    /// account it acts on (0 for commands that act on none) and the client order id or
    /// client payment id it names (0 when it names an order or payment by engine id, or
    /// none).
    pub fn reject_context(&self) -> (AccountId, u64) {
        let order_client = |order: OrderRef| match order {
            OrderRef::Client(client) => client.0,
            OrderRef::Id(_) => 0,
        };
        let payment_client = |payment: PaymentRef| match payment {
            PaymentRef::Client(client) => client.0,
            PaymentRef::Id(_) => 0,
        };
        match *self {
            CommandBody::NewOrder(o) => (o.account, o.client_order_id.0),
            CommandBody::Amend(a) => (a.account, order_client(a.order)),
            CommandBody::Cancel { account, order } => (account, order_client(order)),
            CommandBody::Transfer(t) => (t.debit, t.client_payment_id.0),
            CommandBody::Authorize(a) => (a.debit, a.client_payment_id.0),
            CommandBody::Deposit { account, client_payment_id, .. }
            | CommandBody::Withdraw { account, client_payment_id, .. } => {
                (account, client_payment_id.0)
            }
            CommandBody::Capture { account, payment, .. }
            | CommandBody::Void { account, payment } => (account, payment_client(payment)),
            CommandBody::MassCancel { account, .. }
            | CommandBody::CreateAccount { account, .. }
            | CommandBody::SetAccountStatus { account, .. }
            | CommandBody::SetAccountLimits { account, .. }
            | CommandBody::SetAccountBlocked { account, .. } => (account, 0),
            CommandBody::CreateUser { .. }
            | CommandBody::CreateAsset { .. }
            | CommandBody::CreateInstrument(_)
            | CommandBody::SetInstrumentStatus { .. }
            | CommandBody::SetPaymentLimits { .. }
            | CommandBody::Tick => (AccountId(0), 0),
        }
    }

    /// A short stable name, for logs and reports.
    pub fn kind(&self) -> CommandKind {
        match self {
            CommandBody::CreateUser { .. } => CommandKind::CreateUser,
            CommandBody::CreateAsset { .. } => CommandKind::CreateAsset,
            CommandBody::CreateInstrument(_) => CommandKind::CreateInstrument,
            CommandBody::CreateAccount { .. } => CommandKind::CreateAccount,
            CommandBody::Deposit { .. } => CommandKind::Deposit,
            CommandBody::Withdraw { .. } => CommandKind::Withdraw,
            CommandBody::SetAccountStatus { .. } => CommandKind::SetAccountStatus,
            CommandBody::SetInstrumentStatus { .. } => CommandKind::SetInstrumentStatus,
            CommandBody::NewOrder(_) => CommandKind::NewOrder,
            CommandBody::Cancel { .. } => CommandKind::Cancel,
            CommandBody::Amend(_) => CommandKind::Amend,
            CommandBody::MassCancel { .. } => CommandKind::MassCancel,
            CommandBody::Transfer(_) => CommandKind::Transfer,
            CommandBody::Authorize(_) => CommandKind::Authorize,
            CommandBody::Capture { .. } => CommandKind::Capture,
            CommandBody::Void { .. } => CommandKind::Void,
            CommandBody::SetPaymentLimits { .. } => CommandKind::SetPaymentLimits,
            CommandBody::SetAccountLimits { .. } => CommandKind::SetAccountLimits,
            CommandBody::SetAccountBlocked { .. } => CommandKind::SetAccountBlocked,
            CommandBody::Tick => CommandKind::Tick,
        }
    }
}

/// The kind of a command or query, carried by rejections so a client can tell which of
/// its requests failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, SchemaWrite, SchemaRead)]
pub enum CommandKind {
    /// [`CommandBody::CreateUser`].
    CreateUser,
    /// [`CommandBody::CreateAsset`].
    CreateAsset,
    /// [`CommandBody::CreateInstrument`].
    CreateInstrument,
    /// [`CommandBody::CreateAccount`].
    CreateAccount,
    /// [`CommandBody::Deposit`].
    Deposit,
    /// [`CommandBody::Withdraw`].
    Withdraw,
    /// [`CommandBody::SetAccountStatus`].
    SetAccountStatus,
    /// [`CommandBody::SetInstrumentStatus`].
    SetInstrumentStatus,
    /// [`CommandBody::NewOrder`].
    NewOrder,
    /// [`CommandBody::Cancel`].
    Cancel,
    /// [`CommandBody::Amend`].
    Amend,
    /// [`CommandBody::MassCancel`].
    MassCancel,
    /// Any [`Query`].
    Query,
    /// [`CommandBody::Transfer`].
    Transfer,
    /// [`CommandBody::Authorize`].
    Authorize,
    /// [`CommandBody::Capture`].
    Capture,
    /// [`CommandBody::Void`].
    Void,
    /// [`CommandBody::SetPaymentLimits`].
    SetPaymentLimits,
    /// [`CommandBody::SetAccountLimits`].
    SetAccountLimits,
    /// [`CommandBody::SetAccountBlocked`].
    SetAccountBlocked,
    /// [`CommandBody::Tick`].
    Tick,
}

impl CommandKind {
    /// Every kind, in declaration order (`kind as usize` indexes it).
    pub const ALL: [CommandKind; 21] = [
        CommandKind::CreateUser,
        CommandKind::CreateAsset,
        CommandKind::CreateInstrument,
        CommandKind::CreateAccount,
        CommandKind::Deposit,
        CommandKind::Withdraw,
        CommandKind::SetAccountStatus,
        CommandKind::SetInstrumentStatus,
        CommandKind::NewOrder,
        CommandKind::Cancel,
        CommandKind::Amend,
        CommandKind::MassCancel,
        CommandKind::Query,
        CommandKind::Transfer,
        CommandKind::Authorize,
        CommandKind::Capture,
        CommandKind::Void,
        CommandKind::SetPaymentLimits,
        CommandKind::SetAccountLimits,
        CommandKind::SetAccountBlocked,
        CommandKind::Tick,
    ];

    /// The kind's name in snake case (`new_order`), for logs and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            CommandKind::CreateUser => "create_user",
            CommandKind::CreateAsset => "create_asset",
            CommandKind::CreateInstrument => "create_instrument",
            CommandKind::CreateAccount => "create_account",
            CommandKind::Deposit => "deposit",
            CommandKind::Withdraw => "withdraw",
            CommandKind::SetAccountStatus => "set_account_status",
            CommandKind::SetInstrumentStatus => "set_instrument_status",
            CommandKind::NewOrder => "new_order",
            CommandKind::Cancel => "cancel",
            CommandKind::Amend => "amend",
            CommandKind::MassCancel => "mass_cancel",
            CommandKind::Query => "query",
            CommandKind::Transfer => "transfer",
            CommandKind::Authorize => "authorize",
            CommandKind::Capture => "capture",
            CommandKind::Void => "void",
            CommandKind::SetPaymentLimits => "set_payment_limits",
            CommandKind::SetAccountLimits => "set_account_limits",
            CommandKind::SetAccountBlocked => "set_account_blocked",
            CommandKind::Tick => "tick",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CommandKind;

    #[test]
    fn every_command_kind_is_listed_at_its_index_with_a_distinct_name() {
        for (index, kind) in CommandKind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, index, "{kind:?}");
        }
        let mut names: Vec<&str> = CommandKind::ALL.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CommandKind::ALL.len());
        assert_eq!(CommandKind::NewOrder.name(), "new_order");
    }
}
