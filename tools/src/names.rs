//! The engine's enums as the command line prints them: lowercase words, the same in text
//! and in `--json`, chosen here rather than taken from `Debug`, whose output is for
//! programmers and would change with a rename.

use fincore_engine::{
    AccountStatus, InstrumentStatus, OrderType, PaymentAction, Role, Side, StpMode, StpScope,
    TimeInForce,
};
use fincore_gateway::pipeline::WaitMode;
use fincore_journal::Durability;

/// `buy` or `sell`, as typed in `fincore client order`.
pub fn side(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

/// A book side: `bid` or `ask`.
pub fn book_side(side: Side) -> &'static str {
    match side {
        Side::Buy => "bid",
        Side::Sell => "ask",
    }
}

pub fn order_type(order_type: OrderType) -> &'static str {
    match order_type {
        OrderType::Limit => "limit",
        OrderType::Market => "market",
    }
}

pub fn time_in_force(time_in_force: TimeInForce) -> &'static str {
    match time_in_force {
        TimeInForce::Gtc => "gtc",
        TimeInForce::Ioc => "ioc",
        TimeInForce::Fok => "fok",
    }
}

/// A journal durability mode, as `--durability` takes it.
pub fn durability(mode: Durability) -> &'static str {
    match mode {
        Durability::Process => "process",
        Durability::Fsync => "fsync",
    }
}

/// The pipeline's wait strategy, as `--busy-spin` selects it.
pub fn wait_mode(mode: WaitMode) -> &'static str {
    match mode {
        WaitMode::Adaptive => "adaptive",
        WaitMode::BusySpin => "busy_spin",
    }
}

pub fn stp_mode(mode: StpMode) -> &'static str {
    match mode {
        StpMode::Allow => "allow",
        StpMode::CancelNewest => "cancel_newest",
        StpMode::CancelOldest => "cancel_oldest",
        StpMode::CancelBoth => "cancel_both",
    }
}

pub fn stp_scope(scope: StpScope) -> &'static str {
    match scope {
        StpScope::Account => "account",
        StpScope::Owner => "owner",
    }
}

pub fn account_status(status: AccountStatus) -> &'static str {
    match status {
        AccountStatus::Active => "active",
        AccountStatus::Frozen => "frozen",
        AccountStatus::Closed => "closed",
    }
}

pub fn instrument_status(status: InstrumentStatus) -> &'static str {
    match status {
        InstrumentStatus::Trading => "trading",
        InstrumentStatus::Halted => "halted",
    }
}

pub fn role(role: Role) -> &'static str {
    match role {
        Role::Trader => "trader",
        Role::Admin => "admin",
        Role::Operator => "operator",
    }
}

pub fn payment_action(action: PaymentAction) -> &'static str {
    match action {
        PaymentAction::Created => "created",
        PaymentAction::Captured => "captured",
        PaymentAction::Voided => "voided",
        PaymentAction::Expired => "expired",
        PaymentAction::Duplicate => "duplicate",
    }
}
