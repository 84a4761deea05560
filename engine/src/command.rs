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
    /// Admin: credit an account from outside the system.
    Deposit {
        /// Account credited.
        account: AccountId,
        /// Asset credited.
        asset: AssetId,
        /// Minor units, positive.
        amount: i64,
    },
    /// Admin: debit an account's available balance to outside the system.
    Withdraw {
        /// Account debited.
        account: AccountId,
        /// Asset debited.
        asset: AssetId,
        /// Minor units, positive.
        amount: i64,
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
}

impl CommandBody {
    /// The account and client order id a `Rejected` event reports for this command: the
    /// account it acts on (0 for commands that act on none) and the client order id it
    /// names (0 when it names an order by engine id, or none).
    pub fn reject_context(&self) -> (AccountId, ClientOrderId) {
        let client_of = |order: OrderRef| match order {
            OrderRef::Client(client) => client,
            OrderRef::Id(_) => ClientOrderId(0),
        };
        match *self {
            CommandBody::NewOrder(o) => (o.account, o.client_order_id),
            CommandBody::Amend(a) => (a.account, client_of(a.order)),
            CommandBody::Cancel { account, order } => (account, client_of(order)),
            CommandBody::MassCancel { account, .. }
            | CommandBody::CreateAccount { account, .. }
            | CommandBody::Deposit { account, .. }
            | CommandBody::Withdraw { account, .. }
            | CommandBody::SetAccountStatus { account, .. } => (account, ClientOrderId(0)),
            CommandBody::CreateUser { .. }
            | CommandBody::CreateAsset { .. }
            | CommandBody::CreateInstrument(_)
            | CommandBody::SetInstrumentStatus { .. } => (AccountId(0), ClientOrderId(0)),
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
        }
    }
}

/// The kind of a command or query, carried by rejections so a client can tell which of
/// its requests failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, SchemaWrite, SchemaRead)]
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
}
