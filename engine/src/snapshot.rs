//! Engine snapshots: the whole state at one sequence number as bytes, and an engine
//! rebuilt from them. Recovery is the newest valid snapshot plus a replay of the journal
//! from the snapshot's `last_seq + 1`; the restored engine behaves exactly like the one
//! that wrote the snapshot (same events for the same commands, same state hash).
//!
//! The byte layout is documented on [`SNAPSHOT_FORMAT_VERSION`] (this module is private,
//! so the public docs carry it).
//!
//! Two orders matter and neither follows from the other: a level's queue (time
//! priority) and an account's order list (what `OpenOrders` answers, and the order mass
//! cancel walks). An amend that loses priority moves an order to the back of its level
//! but not of its account's list. So the orders are written in queue order (section 7)
//! and the lists separately as id sequences (section 8). Today each list happens to be
//! in id order (an order joins it once, when first accepted), but that is a property of
//! the handlers, not of the state, so the lists are written rather than re-derived. Writing levels worst first
//! means the restore appends every level at the best end of its ladder, never shifting
//! the vector. Table slots are not written: the state hash and every output name orders
//! by id, never by slot.
//!
//! # Validation
//!
//! [`Engine::from_snapshot`] never panics and never returns half a state. Users, assets,
//! accounts and instruments are re-created through the same handlers the setup commands
//! use, so every definition passes the checks it passed when it was created; orders,
//! lists and counters are checked field by field (ids in range and unique, quantities
//! positive, canonical order, capacities); and the rebuilt engine must pass
//! [`Engine::check_invariants`] before it is returned. A damaged snapshot that still
//! decodes into a *different* consistent state is not detectable here: the checksum of
//! the file that carries the bytes is what catches that.

use crate::book::{NIL, Order, OrderFlags};
use crate::command::InstrumentSpec;
use crate::engine::Engine;
use crate::event::{Discard, PaymentInfo};
use crate::ledger::{Balance, Economics};
use crate::limits::{ASSETS_MAX, EngineLimits, INSTRUMENTS_MAX};
use crate::payments::{Payment, deadline_of};
use crate::reject::RejectReason;
use crate::types::*;
use crate::velocity::Debit;
use wincode::config::DefaultConfig;
use wincode::{SchemaRead, SchemaWrite};

/// The snapshot format this build writes and reads. Any change to the layout or to
/// what a snapshot must contain bumps it; an older or newer snapshot is refused with
/// [`SnapshotError::UnsupportedVersion`] rather than misread.
///
/// # Layout of version 3
///
/// Everything is encoded through `wincode` in the bincode layout of the wire codec
/// (little-endian fixed-width integers, `u32` enum tags, `u8` 0/1 for `bool` and
/// `Option`). The bytes are a sequence of small fixed-size records; every variable part
/// is a `u32` count followed by that many records, so no decoder ever preallocates from
/// a length it read. In order:
///
/// 1. Preamble: magic `FCSN`, format version (`u32`).
/// 2. Head: the [`EngineLimits`] (eight `u32`, the two sizing hints included), `last_seq`,
///    `last_time_ns`, `next_order_id`, `next_trade_id` (`u64`).
/// 3. Users by ascending id, the system user first: id, role.
/// 4. Assets by ascending id: id, symbol, scale, supply.
/// 5. Accounts by ascending id: id, owner, status, blocked, a `u8` count, then that many
///    non-zero balances by ascending asset id (asset, available, held, pending).
/// 6. Instruments by ascending id: definition, derived economics, status, last price.
/// 7. Resting orders in book order: instruments ascending, bids then asks, each side's
///    levels from the worst price to the best, each level's queue oldest first; every
///    field of the order except its table slot and list links, plus its owner and its
///    hold (derived, not stored, in the engine; a loaded hold must equal the
///    derivation).
/// 8. Account order lists by ascending account id, for accounts with live orders: the
///    account, a count, then the order ids oldest first.
///
/// 9. Asset payment policies by ascending asset id, for assets that have one: asset,
///    transfer maximum, default velocity limit (both `Option<i64>`).
/// 10. Account payment limits by ascending (account, asset), where an account has a
///     credit limit or its own velocity limit: account, asset, credit limit, own
///     velocity limit.
/// 11. The velocity log, oldest first: every completed debit that still counts toward
///     a 24-hour limit at `last_time_ns` (engine time `u64`, amount `i64`, account,
///     asset).
/// 12. Every payment in id order: the [`crate::PaymentInfo`] fields, then the requested
///     timeout (`u32` seconds).
///
/// Sections 3 to 12 each start with their `u32` record count. Nothing follows section 12.
/// (Version 2 kept each account's velocity debits with its limits, in section 10.)
pub const SNAPSHOT_FORMAT_VERSION: u32 = 3;

/// First bytes of every engine snapshot, so that other bytes are told apart early.
const MAGIC: [u8; 4] = *b"FCSN";

/// Why bytes could not be turned back into an engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotError {
    /// Not a well-formed snapshot: wrong magic, cut short, an undecodable value (such
    /// as an unknown enum tag), or bytes left over after the last section.
    Malformed(String),
    /// A well-formed snapshot of a format version this build does not read.
    UnsupportedVersion {
        /// The version in the bytes.
        found: u32,
        /// The version this build reads, [`SNAPSHOT_FORMAT_VERSION`].
        supported: u32,
    },
    /// The bytes decode, but describe a state the engine can never be in.
    Invalid(String),
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotError::Malformed(why) => write!(f, "malformed snapshot: {why}"),
            SnapshotError::UnsupportedVersion { found, supported } => {
                write!(f, "snapshot format version {found}, this build reads {supported}")
            }
            SnapshotError::Invalid(why) => write!(f, "invalid snapshot state: {why}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

fn invalid(why: String) -> SnapshotError {
    SnapshotError::Invalid(why)
}

// ---- records ----------------------------------------------------------------------------

#[derive(SchemaWrite, SchemaRead)]
struct Preamble {
    magic: [u8; 4],
    version: u32,
}

#[derive(SchemaWrite, SchemaRead)]
struct Head {
    users_max: u32,
    accounts_max: u32,
    orders_max: u32,
    levels_per_side_max: u32,
    open_orders_per_account_max: u32,
    payments_max: u32,
    payments_expected: u32,
    orders_expected: u32,
    last_seq: u64,
    last_time_ns: u64,
    next_order_id: u64,
    next_trade_id: u64,
}

#[derive(SchemaWrite, SchemaRead)]
struct UserRecord {
    user: UserId,
    role: Role,
}

#[derive(SchemaWrite, SchemaRead)]
struct AssetRecord {
    asset: AssetId,
    symbol: Symbol,
    scale: u8,
    supply: i64,
}

#[derive(SchemaWrite, SchemaRead)]
struct AccountRecord {
    account: AccountId,
    owner: UserId,
    status: AccountStatus,
    blocked: bool,
    /// Balance records that follow: the non-zero ones only.
    balances: u8,
}

#[derive(SchemaWrite, SchemaRead)]
struct BalanceRecord {
    asset: AssetId,
    available: i64,
    held: i64,
    pending: i64,
}

#[derive(SchemaWrite, SchemaRead)]
struct InstrumentRecord {
    spec: InstrumentSpec,
    base_per_lot: i64,
    quote_per_tick_lot: i64,
    maker_fee_bps: i32,
    taker_fee_bps: i32,
    status: InstrumentStatus,
    last_price: Option<Price>,
}

#[derive(SchemaWrite, SchemaRead)]
struct OrderRecord {
    id: OrderId,
    account: AccountId,
    owner: UserId,
    instrument: InstrumentId,
    client_order_id: ClientOrderId,
    side: Side,
    price: Price,
    remaining: Qty,
    filled: Qty,
    hold: i64,
    post_only: bool,
    stp_mode: StpMode,
    stp_scope: StpScope,
}

#[derive(SchemaWrite, SchemaRead)]
struct PolicyRecord {
    asset: AssetId,
    transfer_max: Option<i64>,
    velocity_24h: Option<i64>,
}

#[derive(SchemaWrite, SchemaRead)]
struct OutgoingRecord {
    account: AccountId,
    asset: AssetId,
    credit_limit: i64,
    velocity_24h: Option<i64>,
}

#[derive(SchemaWrite, SchemaRead)]
struct DebitRecord {
    time_ns: u64,
    amount: i64,
    account: AccountId,
    asset: AssetId,
}

#[derive(SchemaWrite, SchemaRead)]
struct PaymentRecord {
    info: PaymentInfo,
    timeout_s: u32,
}

#[derive(SchemaWrite, SchemaRead)]
struct ListHead {
    account: AccountId,
    /// Order ids that follow, oldest first.
    orders: u32,
}

/// Encoded bytes of one order record plus its id in an account list, for sizing the
/// output buffer (an estimate; the buffer grows if it is wrong).
const ORDER_BYTES_ESTIMATE: usize = 80;

/// Encoded bytes of one account without balances, plus a few balances.
const ACCOUNT_BYTES_ESTIMATE: usize = 64;

// ---- writing ----------------------------------------------------------------------------

/// Appends one record.
fn put<T: SchemaWrite<DefaultConfig, Src = T>>(out: &mut Vec<u8>, record: &T) {
    // Writing into a Vec only fails on allocation failure, which aborts anyway.
    wincode::serialize_into(&mut *out, record).expect("encoding into a Vec cannot fail");
}

/// Appends a section count. Every count is bounded by a `u32` limit of the engine.
fn put_count(out: &mut Vec<u8>, count: usize) {
    put(out, &u32::try_from(count).expect("engine tables are indexed by u32"));
}

impl Engine {
    /// The whole state as bytes (layout: [`SNAPSHOT_FORMAT_VERSION`]). Pure: the
    /// same state always gives the same bytes, and [`Engine::from_snapshot`] of them gives
    /// an engine with the same [`Engine::state_hash`] that answers every future command
    /// with the same events. Takes time and memory linear in the live state (about 80
    /// bytes per resting order).
    pub fn snapshot(&self) -> Vec<u8> {
        let accounts = self.accounts.iter().flatten().count();
        let estimate =
            256 + accounts * ACCOUNT_BYTES_ESTIMATE + self.orders.len() * ORDER_BYTES_ESTIMATE;
        let mut out = Vec::with_capacity(estimate);
        put(&mut out, &Preamble { magic: MAGIC, version: SNAPSHOT_FORMAT_VERSION });
        put(&mut out, &self.head());
        self.write_users(&mut out);
        self.write_assets(&mut out);
        self.write_accounts(&mut out);
        self.write_instruments(&mut out);
        self.write_orders(&mut out);
        self.write_account_lists(&mut out);
        self.write_policies(&mut out);
        self.write_outgoing(&mut out);
        put_count(&mut out, self.payments.velocity.len());
        for d in self.payments.velocity.iter() {
            let (time_ns, amount, account, asset) = (d.time_ns, d.amount, d.account, d.asset);
            put(&mut out, &DebitRecord { time_ns, amount, account, asset });
        }
        put_count(&mut out, self.payments.records.len());
        for (index, payment) in self.payments.records.iter().enumerate() {
            let info = payment.info(index as u32);
            put(&mut out, &PaymentRecord { info, timeout_s: payment.timeout_s });
        }
        out
    }

    /// Section 9: the assets' payment policies.
    fn write_policies(&self, out: &mut Vec<u8>) {
        let policies = self.payments.policies.iter().enumerate();
        let set: Vec<_> = policies
            .filter(|(_, p)| p.transfer_max.is_some() || p.velocity_24h.is_some())
            .collect();
        put_count(out, set.len());
        for (asset, p) in set {
            let (transfer_max, velocity_24h) = (p.transfer_max, p.velocity_24h);
            put(out, &PolicyRecord { asset: AssetId(asset as u16), transfer_max, velocity_24h });
        }
    }

    /// Section 10: credit limits and own velocity limits, in (account, asset) order (the
    /// window sums are derived from the velocity log, section 11).
    fn write_outgoing(&self, out: &mut Vec<u8>) {
        let outgoing = self.payments.outgoing.iter();
        let set: Vec<_> =
            outgoing.filter(|(_, o)| o.credit_limit != 0 || o.velocity_24h.is_some()).collect();
        put_count(out, set.len());
        for ((account, asset), o) in set {
            let (credit_limit, velocity_24h) = (o.credit_limit, o.velocity_24h);
            put(out, &OutgoingRecord { account, asset, credit_limit, velocity_24h });
        }
    }

    fn head(&self) -> Head {
        let limits = self.limits;
        Head {
            users_max: limits.users_max,
            accounts_max: limits.accounts_max,
            orders_max: limits.orders_max,
            levels_per_side_max: limits.levels_per_side_max,
            open_orders_per_account_max: limits.open_orders_per_account_max,
            payments_max: limits.payments_max,
            payments_expected: limits.payments_expected,
            orders_expected: limits.orders_expected,
            last_seq: self.last_seq,
            last_time_ns: self.last_time_ns,
            next_order_id: self.next_order_id,
            next_trade_id: self.next_trade_id,
        }
    }

    fn write_users(&self, out: &mut Vec<u8>) {
        put_count(out, self.users.iter().flatten().count());
        for (id, role) in self.users.iter().enumerate() {
            if let Some(role) = role {
                put(out, &UserRecord { user: UserId(id as u32), role: *role });
            }
        }
    }

    fn write_assets(&self, out: &mut Vec<u8>) {
        put_count(out, self.assets.iter().flatten().count());
        for (id, asset) in self.assets.iter().enumerate() {
            if let Some(a) = asset {
                let asset = AssetId(id as u16);
                put(
                    out,
                    &AssetRecord { asset, symbol: a.symbol, scale: a.scale, supply: a.supply },
                );
            }
        }
    }

    fn write_accounts(&self, out: &mut Vec<u8>) {
        put_count(out, self.accounts.iter().flatten().count());
        for (id, account) in self.accounts.iter().enumerate() {
            let Some(account) = account else { continue };
            let is_used = |b: &Balance| !b.is_zero();
            let balances = account.balances.iter().filter(|b| is_used(b)).count();
            put(
                out,
                &AccountRecord {
                    account: AccountId(id as u32),
                    owner: account.owner,
                    status: account.status,
                    blocked: account.blocked,
                    // At most ASSETS_MAX (32).
                    balances: balances as u8,
                },
            );
            for (asset, balance) in account.balances.iter().enumerate() {
                if is_used(balance) {
                    let (available, held, pending) =
                        (balance.available, balance.held, balance.pending);
                    let asset = AssetId(asset as u16);
                    put(out, &BalanceRecord { asset, available, held, pending });
                }
            }
        }
    }

    fn write_instruments(&self, out: &mut Vec<u8>) {
        put_count(out, self.instruments.iter().flatten().count());
        for instrument in self.instruments.iter().flatten() {
            let e = instrument.economics;
            put(
                out,
                &InstrumentRecord {
                    spec: instrument.spec,
                    base_per_lot: e.base_per_lot,
                    quote_per_tick_lot: e.quote_per_tick_lot,
                    maker_fee_bps: e.maker_fee_bps,
                    taker_fee_bps: e.taker_fee_bps,
                    status: instrument.status,
                    last_price: instrument.last_price,
                },
            );
        }
    }

    /// An order as a snapshot records it: its owner and hold are written out (the
    /// format predates their being derived), and checked against the derivation on
    /// loading.
    fn order_record(&self, order: &Order) -> OrderRecord {
        OrderRecord {
            id: order.id,
            account: order.account,
            owner: self.owner_of(order.account),
            instrument: order.instrument,
            client_order_id: order.client_order_id,
            side: order.side,
            price: order.price,
            remaining: order.remaining,
            filled: order.filled,
            hold: self.order_hold(order),
            post_only: order.flags.post_only(),
            stp_mode: order.flags.stp_mode(),
            stp_scope: order.flags.stp_scope(),
        }
    }

    /// Section 7: every resting order, in book order with levels worst first.
    fn write_orders(&self, out: &mut Vec<u8>) {
        put_count(out, self.orders.len());
        let mut heads = Vec::new();
        for instrument in self.instruments.iter().flatten() {
            for ladder in [&instrument.book.bids, &instrument.book.asks] {
                heads.clear();
                heads.extend(ladder.iter_best_first().map(|level| level.head));
                for &head in heads.iter().rev() {
                    let mut slot = head;
                    while slot != NIL {
                        let order = self.orders.get(slot);
                        put(out, &self.order_record(order));
                        slot = order.next;
                    }
                }
            }
        }
    }

    /// Section 8: each account's order list, as order ids oldest first.
    fn write_account_lists(&self, out: &mut Vec<u8>) {
        let has_orders = |account: &&crate::ledger::Account| account.open_orders > 0;
        put_count(out, self.accounts.iter().flatten().filter(has_orders).count());
        for (id, account) in self.accounts.iter().enumerate() {
            let Some(account) = account.as_ref().filter(has_orders) else { continue };
            let account_id = AccountId(id as u32);
            put(out, &ListHead { account: account_id, orders: account.open_orders });
            let mut slot = account.orders_head;
            while slot != NIL {
                let order = self.orders.get(slot);
                put(out, &order.id);
                slot = order.account_next;
            }
        }
    }
}

/// The order a record describes, on no list yet.
fn unlinked_order(record: &OrderRecord) -> Order {
    Order {
        id: record.id,
        account: record.account,
        instrument: record.instrument,
        client_order_id: record.client_order_id,
        side: record.side,
        price: record.price,
        remaining: record.remaining,
        filled: record.filled,
        flags: OrderFlags::new(record.post_only, record.stp_mode, record.stp_scope),
        ..Order::EMPTY
    }
}

// ---- reading ----------------------------------------------------------------------------

/// A cursor over the snapshot bytes.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Decodes the next record; `what` names it in the error.
    fn take<T>(&mut self, what: &str) -> Result<T, SnapshotError>
    where
        T: SchemaRead<'a, DefaultConfig, Dst = T>,
    {
        T::get(&mut self.rest).map_err(|e| SnapshotError::Malformed(format!("{what}: {e}")))
    }

    /// Decodes a section count and checks it against the most the section can hold.
    fn count(&mut self, what: &str, max: u64) -> Result<u32, SnapshotError> {
        let count: u32 = self.take(what)?;
        if u64::from(count) > max {
            return Err(invalid(format!("{count} {what}, at most {max} fit")));
        }
        Ok(count)
    }

    /// Succeeds if every byte was consumed.
    fn finish(&self) -> Result<(), SnapshotError> {
        match self.rest.len() {
            0 => Ok(()),
            extra => Err(SnapshotError::Malformed(format!("{extra} bytes after the end"))),
        }
    }
}

/// Turns a setup handler's rejection into an error naming the record.
fn refused(what: String) -> impl FnOnce(RejectReason) -> SnapshotError {
    move |reason| invalid(format!("{what}: {reason:?}"))
}

/// `Err` unless `id` is above `previous` (sections are sorted and free of duplicates).
fn ascending(previous: &mut Option<u64>, id: u64, what: &str) -> Result<(), SnapshotError> {
    if previous.is_some_and(|p| id <= p) {
        return Err(invalid(format!("{what} {id} out of order or repeated")));
    }
    *previous = Some(id);
    Ok(())
}

/// The limits in the head, if the engine could have been built with them.
fn check_limits(head: &Head) -> Result<EngineLimits, SnapshotError> {
    let limits = EngineLimits {
        users_max: head.users_max,
        accounts_max: head.accounts_max,
        orders_max: head.orders_max,
        levels_per_side_max: head.levels_per_side_max,
        open_orders_per_account_max: head.open_orders_per_account_max,
        payments_max: head.payments_max,
        payments_expected: head.payments_expected,
        orders_expected: head.orders_expected,
    };
    // The same preconditions `Engine::new` asserts, checked instead, and the ceilings
    // every engine is held to (`EngineLimits::CEILING`).
    let positive = limits.users_max > 0
        && limits.accounts_max > 0
        && limits.orders_max > 0
        && limits.levels_per_side_max > 0;
    if !positive || limits.above_ceiling().is_some() {
        return Err(invalid(format!("limits out of range: {limits:?}")));
    }
    Ok(limits)
}

/// Checks the counters against each other. Each command assigns at most one order id,
/// so `next_order_id - 1 <= last_seq`; `last_seq` must leave room for a next command.
fn check_counters(head: &Head) -> Result<(), SnapshotError> {
    let ids_ok = head.next_order_id >= 1 && head.next_order_id - 1 <= head.last_seq;
    if !ids_ok || head.next_trade_id == 0 || head.last_seq == u64::MAX {
        return Err(invalid(format!(
            "counters: last_seq {}, next_order_id {}, next_trade_id {}",
            head.last_seq, head.next_order_id, head.next_trade_id
        )));
    }
    Ok(())
}

/// True if `price` is strictly better than `other` for orders of `side`.
fn better(side: Side, price: Price, other: Price) -> bool {
    match side {
        Side::Buy => price > other,
        Side::Sell => price < other,
    }
}

/// Where the order section is in the book walk: the last order's instrument, side and
/// price. Orders must come instruments ascending, bids before asks, levels worst first,
/// which makes every level contiguous and every new level the best of its side so far.
#[derive(Default)]
struct BookCursor {
    last: Option<(InstrumentId, Side, Price)>,
}

impl BookCursor {
    fn advance(&mut self, record: &OrderRecord) -> Result<(), SnapshotError> {
        let here = (record.instrument, record.side, record.price);
        let in_order = match self.last {
            None => true,
            Some((instrument, side, price)) => {
                let ladder = (instrument, side as u8);
                match ladder.cmp(&(here.0, here.1 as u8)) {
                    std::cmp::Ordering::Less => true,
                    std::cmp::Ordering::Equal => price == here.2 || better(side, here.2, price),
                    std::cmp::Ordering::Greater => false,
                }
            }
        };
        if !in_order {
            return Err(invalid(format!("order {} out of book order", record.id.0)));
        }
        self.last = Some(here);
        Ok(())
    }
}

impl Engine {
    /// Rebuilds an engine from [`Engine::snapshot`] bytes.
    ///
    /// Never panics: any input that is not the snapshot of a reachable state is an
    /// error, including truncated or trailing bytes, unknown versions, limits above the
    /// loader's ceilings (16 Mi orders, 4 Mi accounts, 1 Mi users and levels per side),
    /// ids out of range or repeated, orders on missing accounts or instruments, and any
    /// state that fails [`Engine::check_invariants`]. Allocates the engine's tables for
    /// the snapshot's limits, exactly as `Engine::new` does.
    pub fn from_snapshot(bytes: &[u8]) -> Result<Engine, SnapshotError> {
        let mut reader = Reader { rest: bytes };
        let preamble: Preamble = reader.take("preamble")?;
        if preamble.magic != MAGIC {
            return Err(SnapshotError::Malformed("not an engine snapshot".to_string()));
        }
        if preamble.version != SNAPSHOT_FORMAT_VERSION {
            let (found, supported) = (preamble.version, SNAPSHOT_FORMAT_VERSION);
            return Err(SnapshotError::UnsupportedVersion { found, supported });
        }
        let head: Head = reader.take("head")?;
        let limits = check_limits(&head)?;
        check_counters(&head)?;
        let mut engine = Engine::new(limits);
        engine.last_seq = head.last_seq;
        engine.last_time_ns = head.last_time_ns;
        engine.next_order_id = head.next_order_id;
        engine.next_trade_id = head.next_trade_id;
        engine.read_users(&mut reader)?;
        engine.read_assets(&mut reader)?;
        engine.read_accounts(&mut reader)?;
        engine.read_instruments(&mut reader)?;
        engine.read_orders(&mut reader)?;
        engine.read_account_lists(&mut reader)?;
        engine.read_policies(&mut reader)?;
        engine.read_outgoing(&mut reader)?;
        engine.read_velocity(&mut reader)?;
        engine.read_payments(&mut reader)?;
        reader.finish()?;
        engine.check_invariants().map_err(invalid)?;
        Ok(engine)
    }

    fn read_users(&mut self, reader: &mut Reader) -> Result<(), SnapshotError> {
        let count = reader.count("users", self.limits.users_max.into())?;
        let mut previous = None;
        for index in 0..count {
            let record: UserRecord = reader.take("user")?;
            let user = record.user;
            ascending(&mut previous, user.0.into(), "user")?;
            // `Engine::new` made the system user; it is always first and an admin.
            if index == 0 {
                if user != SYSTEM_USER || record.role != Role::Admin {
                    return Err(invalid("the system user is missing".to_string()));
                }
                continue;
            }
            let mut out = Discard;
            let created = self.create_user(SYSTEM_USER, user, record.role, &mut out);
            created.map_err(refused(format!("user {}", user.0)))?;
        }
        if count == 0 {
            return Err(invalid("no users".to_string()));
        }
        Ok(())
    }

    fn read_assets(&mut self, reader: &mut Reader) -> Result<(), SnapshotError> {
        let count = reader.count("assets", ASSETS_MAX as u64)?;
        let mut previous = None;
        for _ in 0..count {
            let record: AssetRecord = reader.take("asset")?;
            let (asset, what) = (record.asset, format!("asset {}", record.asset.0));
            ascending(&mut previous, asset.0.into(), "asset")?;
            let mut out = Discard;
            let created =
                self.create_asset(SYSTEM_USER, asset, record.symbol, record.scale, &mut out);
            created.map_err(refused(what.clone()))?;
            // Supply may be negative (withdrawals on credit); conservation and the
            // credit floors, checked by the invariants at the end, bound it.
            // Created just above, so the slot is in range and filled.
            if let Some(created) = self.assets[asset.0 as usize].as_mut() {
                created.supply = record.supply;
            }
        }
        Ok(())
    }

    fn read_accounts(&mut self, reader: &mut Reader) -> Result<(), SnapshotError> {
        let count = reader.count("accounts", self.limits.accounts_max.into())?;
        let mut previous = None;
        for _ in 0..count {
            let record: AccountRecord = reader.take("account")?;
            let (account, what) = (record.account, format!("account {}", record.account.0));
            ascending(&mut previous, account.0.into(), "account")?;
            let mut out = Discard;
            let created = self.create_account(SYSTEM_USER, account, record.owner, &mut out);
            created.map_err(refused(what.clone()))?;
            // Closing needs zero balances and no orders, and nothing reopens an account.
            if record.status == AccountStatus::Closed && record.balances != 0 {
                return Err(invalid(format!("{what}: closed but holds money")));
            }
            self.account_mut(account).status = record.status;
            self.account_mut(account).blocked = record.blocked;
            self.read_balances(reader, account, record.balances, &what)?;
        }
        Ok(())
    }

    fn read_balances(
        &mut self,
        reader: &mut Reader,
        account: AccountId,
        count: u8,
        what: &str,
    ) -> Result<(), SnapshotError> {
        if usize::from(count) > ASSETS_MAX {
            return Err(invalid(format!("{what}: {count} balances")));
        }
        let mut previous = None;
        for _ in 0..count {
            let record: BalanceRecord = reader.take("balance")?;
            let asset = record.asset;
            ascending(&mut previous, asset.0.into(), "balance asset")?;
            self.asset(asset).map_err(refused(format!("{what} balance {}", asset.0)))?;
            let balance =
                Balance { available: record.available, held: record.held, pending: record.pending };
            // Zero balances are not written; only `available` may be negative (credit,
            // checked against the limit by the invariants once limits are read).
            if balance.held < 0 || balance.pending < 0 || balance.is_zero() {
                return Err(invalid(format!("{what} asset {}: {balance:?}", asset.0)));
            }
            *self.account_mut(account).balance_mut(asset) = balance;
        }
        Ok(())
    }

    fn read_instruments(&mut self, reader: &mut Reader) -> Result<(), SnapshotError> {
        let count = reader.count("instruments", INSTRUMENTS_MAX as u64)?;
        let mut previous = None;
        for _ in 0..count {
            let record: InstrumentRecord = reader.take("instrument")?;
            let id = record.spec.instrument;
            let what = format!("instrument {}", id.0);
            ascending(&mut previous, id.0.into(), "instrument")?;
            let mut out = Discard;
            let created = self.create_instrument(SYSTEM_USER, &record.spec, &mut out);
            created.map_err(refused(what.clone()))?;
            let economics = Economics {
                base_per_lot: record.base_per_lot,
                quote_per_tick_lot: record.quote_per_tick_lot,
                maker_fee_bps: record.maker_fee_bps,
                taker_fee_bps: record.taker_fee_bps,
            };
            let instrument = self.instrument_mut(id);
            // Economics are derived from the definition; a mismatch means the bytes or
            // the derivation changed, and either way the state is not the one written.
            if instrument.economics != economics {
                return Err(invalid(format!("{what}: economics {economics:?} not derived")));
            }
            if record.last_price.is_some_and(|price| price.0 <= 0) {
                return Err(invalid(format!("{what}: last price {:?}", record.last_price)));
            }
            instrument.status = record.status;
            instrument.last_price = record.last_price;
        }
        Ok(())
    }

    fn read_orders(&mut self, reader: &mut Reader) -> Result<(), SnapshotError> {
        let count = reader.count("orders", self.limits.orders_max.into())?;
        let mut cursor = BookCursor::default();
        for _ in 0..count {
            let record: OrderRecord = reader.take("order")?;
            cursor.advance(&record)?;
            self.restore_order(&record)?;
        }
        Ok(())
    }

    /// Checks one order record and puts it at the back of its level's queue.
    fn restore_order(&mut self, record: &OrderRecord) -> Result<(), SnapshotError> {
        let what = || format!("order {}", record.id.0);
        let account = self.account(record.account);
        let account = account.ok_or_else(|| invalid(format!("{}: no account", what())))?;
        let instrument = self.instrument(record.instrument);
        let instrument = instrument.ok_or_else(|| invalid(format!("{}: no instrument", what())))?;
        let checks = [
            (record.id.0 > 0 && record.id.0 < self.next_order_id, "id not yet assigned"),
            (account.owner == record.owner, "owner is not the account's"),
            (record.price.0 > 0, "price not positive"),
            (record.remaining.0 > 0, "nothing remaining"),
            (record.remaining <= instrument.spec.qty_max, "remaining above qty_max"),
            (record.filled.0 >= 0, "negative filled"),
        ];
        if let Some((_, why)) = checks.iter().find(|(ok, _)| !ok) {
            return Err(invalid(format!("{}: {why}", what())));
        }
        // Orders do not store their hold; the recorded one must be what their terms
        // derive (price and remaining are positive here, as `hold_for` requires).
        let hold = instrument.economics.hold_for(record.side, record.price, record.remaining);
        if hold != Some(record.hold) {
            return Err(invalid(format!("{}: hold is not what its terms require", what())));
        }
        // Every resting order passed the notional check at its current terms (only a
        // reduction skips it), and the definition never changes. The invariants do not
        // cover a sell's price (its hold is base only), so this is checked here.
        let notional = instrument.economics.notional(record.price, record.remaining);
        if notional.is_none_or(|notional| notional > instrument.spec.notional_max) {
            return Err(invalid(format!("{}: notional above the maximum", what())));
        }
        if self.index.find_id(&self.orders, record.id).is_some() {
            return Err(invalid(format!("{}: id repeated", what())));
        }
        let client = self.index.find_client(&self.orders, record.account, record.client_order_id);
        if client.is_some() {
            return Err(invalid(format!("{}: client id repeated", what())));
        }
        // The preconditions `Ladder::push` asserts: room for the level, and a level
        // total that fits. The side matches because the ladder is chosen by it.
        let ladder = instrument.book.side(record.side);
        if !ladder.has_room_for(record.price) {
            return Err(invalid(format!("{}: more levels than the limit", what())));
        }
        // Levels arrive worst first, so the order's level, if it exists, is the best.
        if let Some(level) = ladder.best()
            && level.price == record.price
            && level.qty.0.checked_add(record.remaining.0).is_none()
        {
            return Err(invalid(format!("{}: level quantity overflows", what())));
        }
        let slot = self.orders.insert(unlinked_order(record));
        // The count was checked against `orders_max`, the store's capacity.
        let slot = slot.ok_or_else(|| invalid(format!("{}: order table full", what())))?;
        let (ladder, orders) = self.ladder_mut(record.instrument, record.side);
        let _ = ladder.push(orders, slot);
        self.index.insert(&self.orders, slot);
        Ok(())
    }

    /// Section 8: links every order into its account's list, in the written order.
    fn read_account_lists(&mut self, reader: &mut Reader) -> Result<(), SnapshotError> {
        let count = reader.count("account lists", self.limits.accounts_max.into())?;
        let mut previous = None;
        let mut linked = 0usize;
        for _ in 0..count {
            let head: ListHead = reader.take("account list")?;
            let (account, what) = (head.account, format!("account {} list", head.account.0));
            ascending(&mut previous, account.0.into(), "account list")?;
            let found = self.account(account).ok_or_else(|| invalid(format!("{what}: none")))?;
            let size_ok = head.orders > 0 && head.orders <= self.limits.open_orders_per_account_max;
            if found.status == AccountStatus::Closed || !size_ok {
                return Err(invalid(format!("{what}: {} orders", head.orders)));
            }
            for _ in 0..head.orders {
                let id: OrderId = reader.take("account list order")?;
                self.link_restored(account, id, &what)?;
                linked += 1;
            }
        }
        if linked != self.orders.len() {
            let missing = self.orders.len() - linked.min(self.orders.len());
            return Err(invalid(format!("{missing} orders on no account list")));
        }
        Ok(())
    }

    /// Appends order `id` to `account`'s list, once.
    fn link_restored(
        &mut self,
        account: AccountId,
        id: OrderId,
        what: &str,
    ) -> Result<(), SnapshotError> {
        let slot = self.index.find_id(&self.orders, id);
        let slot = slot.ok_or_else(|| invalid(format!("{what}: no order {}", id.0)))?;
        let order = self.orders.get(slot);
        // Lists are only ever linked to their own account, so an order is on a list
        // already exactly when it has a predecessor or heads its account's list.
        let head = self.account(account).map_or(NIL, |a| a.orders_head);
        let listed = order.account_prev != NIL || head == slot;
        if order.account != account || listed {
            return Err(invalid(format!("{what}: order {} foreign or repeated", id.0)));
        }
        self.link_account_order(slot);
        Ok(())
    }

    /// Section 9: asset payment policies, through the admin handler that validates them.
    fn read_policies(&mut self, reader: &mut Reader) -> Result<(), SnapshotError> {
        let count = reader.count("payment policies", ASSETS_MAX as u64)?;
        let mut previous = None;
        for _ in 0..count {
            let record: PolicyRecord = reader.take("payment policy")?;
            let what = format!("asset {} policy", record.asset.0);
            ascending(&mut previous, record.asset.0.into(), "payment policy")?;
            let (transfer_max, velocity) = (record.transfer_max, record.velocity_24h);
            if transfer_max.is_none() && velocity.is_none() {
                return Err(invalid(format!("{what}: empty")));
            }
            let set = self.set_payment_limits(
                SYSTEM_USER,
                record.asset,
                transfer_max,
                velocity,
                &mut Discard,
            );
            set.map_err(refused(what))?;
        }
        Ok(())
    }

    /// Section 10: account payment limits, through the admin handler.
    fn read_outgoing(&mut self, reader: &mut Reader) -> Result<(), SnapshotError> {
        // At most one entry per (account, asset).
        let max = u64::from(self.limits.accounts_max) * ASSETS_MAX as u64;
        let count = reader.count("outgoing entries", max)?;
        let mut previous = None;
        for _ in 0..count {
            let record: OutgoingRecord = reader.take("outgoing entry")?;
            let (account, asset) = (record.account, record.asset);
            let what = format!("account {} asset {} limits", account.0, asset.0);
            let key = (u64::from(account.0) << 16) | u64::from(asset.0);
            ascending(&mut previous, key, "outgoing entry")?;
            self.asset(asset).map_err(refused(what.clone()))?;
            self.account(account).ok_or_else(|| invalid(format!("{what}: no account")))?;
            let (credit, velocity) = (record.credit_limit, record.velocity_24h);
            if credit == 0 && velocity.is_none() {
                return Err(invalid(format!("{what}: none set")));
            }
            // Closed accounts cannot get limits; a snapshot cannot either.
            let set = self.set_account_limits(
                SYSTEM_USER,
                account,
                asset,
                credit,
                velocity,
                &mut Discard,
            );
            set.map_err(refused(what))?;
        }
        Ok(())
    }

    /// Section 11: the velocity log, each debit added to its account's window sum (a
    /// closed account's debits stay in the log until they age out, in no sum).
    fn read_velocity(&mut self, reader: &mut Reader) -> Result<(), SnapshotError> {
        // Each debit is a payment's.
        let count = reader.count("velocity debits", self.limits.payments_max.into())?;
        let now = self.last_time_ns;
        let mut last_time = 0;
        for _ in 0..count {
            let d: DebitRecord = reader.take("velocity debit")?;
            let debit =
                Debit { time_ns: d.time_ns, amount: d.amount, account: d.account, asset: d.asset };
            let in_order = last_time <= debit.time_ns && debit.time_ns <= now;
            if !in_order || debit.expired(now) || debit.amount <= 0 {
                return Err(invalid(format!("velocity debit {debit:?} at time {now}")));
            }
            last_time = debit.time_ns;
            self.asset(debit.asset).map_err(refused(format!("velocity debit {debit:?}")))?;
            let account = self.account(debit.account);
            let account = account.ok_or_else(|| invalid(format!("{debit:?}: no account")))?;
            match account.status {
                AccountStatus::Closed => self.payments.append_debit(debit),
                _ => self.payments.log_debit(debit),
            }
        }
        Ok(())
    }

    /// Section 12: every payment, checked field by field and linked into the indexes.
    /// Balances were restored with the accounts; the invariants then check that each
    /// account's pending amount matches its pending authorizations.
    fn read_payments(&mut self, reader: &mut Reader) -> Result<(), SnapshotError> {
        let count = reader.count("payments", self.limits.payments_max.into())?;
        for index in 0..count {
            let record: PaymentRecord = reader.take("payment")?;
            self.restore_payment(index, &record)?;
        }
        Ok(())
    }

    fn restore_payment(&mut self, index: u32, record: &PaymentRecord) -> Result<(), SnapshotError> {
        let p = record.info;
        let what = || format!("payment {}: {p:?}", p.payment_id.0);
        let now = self.last_time_ns;
        let real = |engine: &Engine, id: AccountId| engine.account(id).is_some();
        let accounts_ok = match p.kind {
            PaymentKind::Deposit => p.debit == EXTERNAL_ACCOUNT && real(self, p.credit),
            PaymentKind::Withdrawal => p.credit == EXTERNAL_ACCOUNT && real(self, p.debit),
            PaymentKind::Transfer | PaymentKind::Authorization => {
                p.debit != p.credit && real(self, p.debit) && real(self, p.credit)
            }
        };
        let deadline_ok =
            deadline_of(p.kind, p.created_ns, record.timeout_s) == Some(p.deadline_ns);
        let resolved_ok = p.resolved_ns >= p.created_ns && p.resolved_ns <= now;
        let status_ok = match (p.kind, p.status) {
            (PaymentKind::Authorization, PaymentStatus::Pending) => {
                p.captured == 0 && p.resolved_ns == 0 && (p.deadline_ns == 0 || p.deadline_ns > now)
            }
            (PaymentKind::Authorization, PaymentStatus::Completed) => {
                p.captured > 0 && p.captured <= p.amount && resolved_ok
            }
            (PaymentKind::Authorization, PaymentStatus::Voided) => p.captured == 0 && resolved_ok,
            (PaymentKind::Authorization, PaymentStatus::Expired) => {
                p.captured == 0
                    && p.deadline_ns > 0
                    && p.resolved_ns >= p.deadline_ns
                    && resolved_ok
            }
            (_, PaymentStatus::Completed) => {
                p.captured == p.amount && p.resolved_ns == p.created_ns
            }
            _ => false,
        };
        let fields_ok = p.payment_id.0 == u64::from(index) + 1
            && p.client_payment_id.0 != 0
            && p.amount > 0
            && p.created_ns <= now
            && self.asset(p.asset).is_ok()
            && self.payments.find_client(p.debit, p.client_payment_id).is_none();
        if !(accounts_ok && deadline_ok && status_ok && fields_ok) {
            return Err(invalid(what()));
        }
        let mut payment = Payment::unlinked(&p, record.timeout_s);
        if p.debit != EXTERNAL_ACCOUNT {
            payment.prev_debit =
                std::mem::replace(&mut self.account_mut(p.debit).last_payment, index);
        }
        if p.credit != EXTERNAL_ACCOUNT {
            payment.prev_credit =
                std::mem::replace(&mut self.account_mut(p.credit).last_payment, index);
        }
        self.payments.records.push(payment);
        self.payments.by_client.insert(p.debit, p.client_payment_id, index);
        if p.status == PaymentStatus::Pending && p.deadline_ns > 0 {
            self.payments.set_deadline(p.deadline_ns, index);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_engine_round_trips() {
        let engine = Engine::new(EngineLimits::default());
        let bytes = engine.snapshot();
        let restored = Engine::from_snapshot(&bytes).unwrap();
        assert_eq!(restored.state_hash(), engine.state_hash());
        assert_eq!(restored.limits(), engine.limits());
        assert_eq!(restored.snapshot(), bytes);
    }

    #[test]
    fn other_versions_and_other_bytes_are_refused() {
        let mut bytes = Engine::new(EngineLimits::default()).snapshot();
        bytes[4..8].copy_from_slice(&1u32.to_le_bytes());
        let found = Engine::from_snapshot(&bytes).unwrap_err();
        assert_eq!(found, SnapshotError::UnsupportedVersion { found: 1, supported: 3 });
        bytes[0] = b'X';
        assert!(matches!(Engine::from_snapshot(&bytes), Err(SnapshotError::Malformed(_))));
        assert!(matches!(Engine::from_snapshot(&[]), Err(SnapshotError::Malformed(_))));
    }

    #[test]
    fn limits_above_the_ceiling_are_refused_before_allocating() {
        let limits = EngineLimits { orders_max: 1, ..EngineLimits::default() };
        let mut bytes = Engine::new(limits).snapshot();
        // orders_max is the third u32 of the head, after the 8-byte preamble.
        bytes[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        let error = Engine::from_snapshot(&bytes).unwrap_err();
        assert!(matches!(error, SnapshotError::Invalid(ref why) if why.contains("limits")));
    }
}
