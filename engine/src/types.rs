//! Identifiers, integer units and small enums shared by commands, events and state.
//!
//! Every quantity inside the engine is an integer: prices in ticks, quantities in lots,
//! money in minor units of an asset. The newtypes keep them from being mixed up; the
//! conversion to and from human decimals lives in [`crate::units`].

use wincode::{SchemaRead, SchemaWrite};

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[derive(SchemaWrite, SchemaRead)]
        #[repr(transparent)]
        pub struct $name(pub $inner);
    };
}

id_newtype!(
    /// A user (a login): owns accounts, may hold the admin role.
    UserId(u32)
);
id_newtype!(
    /// An account: holds one balance per asset and owns orders.
    AccountId(u32)
);
id_newtype!(
    /// An asset (a currency or a coin) with its own minor unit.
    AssetId(u16)
);
id_newtype!(
    /// A tradable instrument: a base asset priced in a quote asset.
    InstrumentId(u16)
);
id_newtype!(
    /// Engine-assigned order id, unique for the life of the journal (monotonic).
    OrderId(u64)
);
id_newtype!(
    /// Client-assigned order id; unique among an account's live orders.
    ClientOrderId(u64)
);
id_newtype!(
    /// Engine-assigned trade id, monotonic per engine.
    TradeId(u64)
);
id_newtype!(
    /// Engine-assigned payment id: 1, 2, 3, ... in journal order, for the life of the
    /// journal.
    PaymentId(u64)
);
id_newtype!(
    /// Client-assigned payment id, the idempotency key: unique per debit account for the
    /// life of the journal. Zero is refused.
    ClientPaymentId(u64)
);
id_newtype!(
    /// A price in integer ticks of its instrument.
    Price(i64)
);
id_newtype!(
    /// A quantity in integer lots of its instrument.
    Qty(i64)
);

/// The user id the bootstrap/setup commands run as. It always has the admin role.
pub const SYSTEM_USER: UserId = UserId(0);

/// The per-asset external (settlement) account, named in payments: the debit side of
/// every deposit and the credit side of every withdrawal. It is not a real account (no
/// account id reaches it: ids are below the engine's account capacity); its balance in
/// an asset is minus that asset's supply, so every asset's ledger sums to zero.
pub const EXTERNAL_ACCOUNT: AccountId = AccountId(u32::MAX);

/// Buy or sell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, SchemaWrite, SchemaRead)]
#[repr(u8)]
pub enum Side {
    /// Bid side: pays quote, receives base.
    Buy = 0,
    /// Ask side: pays base, receives quote.
    Sell = 1,
}

impl Side {
    /// The side an order of this side trades against.
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

/// How the price of an order is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, SchemaWrite, SchemaRead)]
#[repr(u8)]
pub enum OrderType {
    /// Trades at its limit price or better.
    Limit = 0,
    /// Trades at any price inside the instrument's protection band; never rests.
    Market = 1,
}

/// How long an order stays on the book.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, SchemaWrite, SchemaRead)]
#[repr(u8)]
pub enum TimeInForce {
    /// Good till cancelled: the unfilled rest goes on the book.
    Gtc = 0,
    /// Immediate or cancel: fills what it can, the rest is cancelled.
    Ioc = 1,
    /// Fill or kill: fills completely at once or not at all.
    Fok = 2,
}

/// What happens when an incoming order would trade with a resting order of the same
/// account (or owner, see [`StpScope`]). Decided by the incoming (taker) order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, SchemaWrite, SchemaRead)]
#[repr(u8)]
pub enum StpMode {
    /// No prevention: the two orders trade with each other.
    Allow = 0,
    /// Cancel the incoming order's remainder; the resting order stays.
    CancelNewest = 1,
    /// Cancel the resting order and keep matching the incoming one.
    CancelOldest = 2,
    /// Cancel both.
    CancelBoth = 3,
}

/// Which orders count as "the same party" for self-trade prevention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, SchemaWrite, SchemaRead)]
#[repr(u8)]
pub enum StpScope {
    /// Orders of the same account.
    Account = 0,
    /// Orders of any account owned by the same user.
    Owner = 1,
}

/// Lifecycle of an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, SchemaWrite, SchemaRead)]
#[repr(u8)]
pub enum AccountStatus {
    /// Trades and pays normally.
    Active = 0,
    /// Kill switch: no new risk (orders, amends, withdrawals); cancels still work and
    /// resting orders may still fill.
    Frozen = 1,
    /// Permanently closed: every command on it is rejected.
    Closed = 2,
}

/// Whether an instrument accepts orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, SchemaWrite, SchemaRead)]
#[repr(u8)]
pub enum InstrumentStatus {
    /// Orders are accepted and matched.
    Trading = 0,
    /// New orders and amends are rejected; cancels work.
    Halted = 1,
}

/// What a user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, SchemaWrite, SchemaRead)]
#[repr(u8)]
pub enum Role {
    /// Trades on the accounts it owns.
    Trader = 0,
    /// Creates users, accounts, assets and instruments; deposits, freezes, halts.
    Admin = 1,
    /// Payment operator: deposits and withdrawals on any account, and reads any
    /// account; nothing else an admin may do.
    Operator = 2,
}

/// What a payment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, SchemaWrite, SchemaRead)]
#[repr(u8)]
pub enum PaymentKind {
    /// Account to account, completed at once.
    Transfer = 0,
    /// Account to account in two phases: held now, captured or voided later.
    Authorization = 1,
    /// From the external account into an account.
    Deposit = 2,
    /// From an account to the external account.
    Withdrawal = 3,
}

impl PaymentKind {
    /// Number of kinds.
    pub const COUNT: usize = 4;

    /// Position in declaration order, below [`PaymentKind::COUNT`] (a new kind does
    /// not compile until it is given one).
    pub const fn index(self) -> usize {
        match self {
            PaymentKind::Transfer => 0,
            PaymentKind::Authorization => 1,
            PaymentKind::Deposit => 2,
            PaymentKind::Withdrawal => 3,
        }
    }
}

/// Where a payment is in its life. `Pending` is the only state that changes; the
/// other three are final. Voided and expired payments are the failed ones (a refused
/// payment is never recorded: it gets a `Rejected` event and its id stays unused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, SchemaWrite, SchemaRead)]
#[repr(u8)]
pub enum PaymentStatus {
    /// Authorized: the amount is held on the debit account.
    Pending = 0,
    /// Money moved: `captured` reached the credit account.
    Completed = 1,
    /// Released before capture by a void.
    Voided = 2,
    /// Released before capture because engine time reached its deadline.
    Expired = 3,
}

/// A fixed-width, zero-padded ASCII symbol such as `BTC-USD`. Fixed width keeps commands
/// `Copy` and free of heap allocation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, SchemaWrite, SchemaRead)]
pub struct Symbol(pub [u8; Symbol::LEN]);

impl Symbol {
    /// Maximum symbol length in bytes; 16 fits every exchange ticker we know of.
    pub const LEN: usize = 16;

    /// Builds a symbol from text; `None` if it is empty, too long, or not printable ASCII.
    pub fn new(text: &str) -> Option<Symbol> {
        let bytes = text.as_bytes();
        let printable = bytes.iter().all(|b| b.is_ascii_graphic());
        if bytes.is_empty() || bytes.len() > Symbol::LEN || !printable {
            return None;
        }
        let mut out = [0u8; Symbol::LEN];
        out[..bytes.len()].copy_from_slice(bytes);
        Some(Symbol(out))
    }

    /// The symbol as text (up to the first zero byte).
    pub fn as_str(&self) -> &str {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(Symbol::LEN);
        std::str::from_utf8(&self.0[..end]).unwrap_or("?")
    }

    /// True if the bytes are a valid symbol (what [`Symbol::new`] would build).
    pub fn is_valid(&self) -> bool {
        Symbol::new(self.as_str()).is_some_and(|s| s == *self)
    }
}

impl std::fmt::Debug for Symbol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl std::fmt::Display for Symbol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbol_round_trips_and_rejects_bad_text() {
        let s = Symbol::new("BTC-USD").unwrap();
        assert_eq!(s.as_str(), "BTC-USD");
        assert!(s.is_valid());
        assert!(Symbol::new("").is_none());
        assert!(Symbol::new("ABCDEFGHIJKLMNOPQ").is_none());
        assert!(Symbol::new("BTC USD").is_none());
        assert!(!Symbol([0xff; Symbol::LEN]).is_valid());
    }

    #[test]
    fn opposite_side() {
        assert_eq!(Side::Buy.opposite(), Side::Sell);
        assert_eq!(Side::Sell.opposite(), Side::Buy);
    }
}
