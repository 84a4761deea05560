//! Why a command was refused. Rejections are data, not errors: every refused command
//! produces exactly one [`crate::Event::Rejected`] carrying one of these codes and
//! leaves the engine state (and so its state hash) unchanged.
//!
//! The numbers are part of the wire protocol and never change meaning. They are grouped
//! by the order in which the checks run (precedence): a command that is wrong in two
//! ways is rejected with the lower-numbered group's reason.

/// Declares the enum with explicit numbers, makes those numbers the wire tags (a u32 in
/// the bincode format, equal to the code), and lists every variant in `ALL`.
macro_rules! reject_reasons {
    ($($(#[$doc:meta])* $name:ident = $code:literal,)*) => {
        /// A stable, numbered reason for refusing a command.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[derive(wincode::SchemaWrite, wincode::SchemaRead)]
        #[repr(u16)]
        pub enum RejectReason {
            $($(#[$doc])* #[wincode(tag = $code)] $name = $code,)*
        }

        impl RejectReason {
            /// Every reason, in number order; used by docs and tests.
            pub const ALL: &'static [RejectReason] = &[$(RejectReason::$name,)*];
        }
    };
}

reject_reasons! {
    // 1xx: who is acting.
    /// The acting user does not exist.
    UnknownUser = 100,
    /// The command needs the admin role (deposits and withdrawals: admin or payment
    /// operator).
    NotAdmin = 101,

    // 2xx: the account.
    /// No account with this id.
    UnknownAccount = 200,
    /// The account is closed.
    AccountClosed = 201,
    /// The account belongs to another user.
    AccountNotOwned = 202,
    /// The account is frozen: no new risk (cancels are still allowed).
    AccountFrozen = 203,
    /// The account is on the compliance deny-list: it can neither send nor receive
    /// payments.
    AccountBlocked = 204,

    // 3xx: the instrument.
    /// No instrument with this id.
    UnknownInstrument = 300,
    /// The instrument is halted.
    InstrumentHalted = 301,

    // 4xx: the order's own fields.
    /// A combination the engine does not support (market + GTC, post-only + IOC, ...).
    InvalidOrderType = 400,
    /// Price is zero or negative.
    PriceNotPositive = 401,
    /// Price is not a whole number of ticks (raised where decimals become ticks).
    PriceOffTick = 402,
    /// Quantity is zero or negative.
    QtyNotPositive = 403,
    /// Quantity is not a whole number of lots (raised where decimals become lots).
    QtyOffLot = 404,
    /// Quantity above the instrument's maximum order quantity.
    QtyAboveMax = 405,
    /// Price outside the band around the reference price (fat-finger check).
    PriceOutsideBand = 406,
    /// Price x quantity above the instrument's maximum notional.
    NotionalAboveMax = 407,
    /// A product or sum of input-derived values does not fit the engine's integers.
    ArithmeticOverflow = 408,

    // 5xx: the account's state.
    /// The client order id is already used by a live order of this account.
    DuplicateClientOrderId = 500,
    /// The account has the maximum number of open orders.
    TooManyOpenOrders = 501,
    /// Not enough available balance to hold what the order could cost.
    InsufficientBalance = 502,

    // 6xx: the book.
    /// A post-only order (or an amend of one) would trade on arrival.
    PostOnlyWouldCross = 600,
    /// The order book or order table is at its configured capacity.
    BookFull = 601,

    // 7xx: cancel and amend.
    /// No live order with this id (or client order id) on this account.
    UnknownOrder = 700,
    /// The amend changes nothing.
    AmendNoChange = 701,

    // 8xx: admin and setup.
    /// An asset, instrument, user or account with this id already exists.
    AlreadyExists = 800,
    /// No asset with this id.
    UnknownAsset = 801,
    /// An instrument, asset or account definition is inconsistent (see the docs).
    InvalidDefinition = 802,
    /// An amount is zero or negative.
    AmountNotPositive = 803,
    /// An id is beyond the engine's configured capacity.
    IdOutOfRange = 804,
    /// The instrument or account is already in the requested status.
    StatusUnchanged = 805,
    /// An account cannot be closed while it has live orders or non-zero balances.
    AccountNotEmpty = 806,
    /// An account cannot be closed while an instrument collects its fees into it.
    AccountInUse = 807,

    // 10xx: payments (after the acting account's checks above). The 9xx range is left
    // to the gateway's session-layer codes, so that no number means two things.
    /// The client payment id is zero; every payment needs an idempotency key.
    PaymentIdZero = 1000,
    /// The debit and credit accounts are the same.
    SameAccount = 1001,
    /// No credit account with this id.
    UnknownCreditAccount = 1002,
    /// The credit account is closed.
    CreditAccountClosed = 1003,
    /// The credit account is on the compliance deny-list.
    CreditAccountBlocked = 1004,
    /// The amount is above the asset's per-payment maximum.
    AboveTransferMax = 1005,
    /// The debit account's rolling 24-hour outgoing limit would be exceeded.
    VelocityLimitExceeded = 1006,
    /// The client payment id was already used on this debit account for a payment with
    /// different fields (an exact repeat is answered as a duplicate instead).
    PaymentIdConflict = 1007,
    /// No payment with this id involves this account.
    UnknownPayment = 1008,
    /// The payment is not a pending authorization (it is a transfer, deposit or
    /// withdrawal, or was already captured, voided or expired).
    PaymentNotPending = 1009,
    /// The capture amount is above the authorized amount.
    CaptureAboveAuthorized = 1010,
    /// The payment table is at its configured capacity (`payments_max`).
    PaymentsFull = 1011,
    /// A credit limit cannot be set below what the account already owes.
    CreditLimitBelowUsage = 1012,
}

impl RejectReason {
    /// The stable wire number of this reason.
    pub fn code(self) -> u16 {
        self as u16
    }

    /// The reason with this wire number, if any.
    pub fn from_code(code: u16) -> Option<RejectReason> {
        RejectReason::ALL.iter().copied().find(|r| r.code() == code)
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} ({})", self, self.code())
    }
}
