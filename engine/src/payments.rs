//! Payments: transfers, two-phase authorizations (authorize, capture, void, expiry),
//! deposits and withdrawals, each idempotent by client payment id and checked inline
//! before anything moves.
//!
//! Double entry: every payment debits one account and credits another in one asset.
//! Deposits debit, and withdrawals credit, the asset's external account
//! ([`EXTERNAL_ACCOUNT`]), whose balance is minus the asset's supply; so per asset the
//! ledger always sums to zero. An authorization moves its amount from the debit
//! account's `available` to its `pending` (still the debit account's money); a capture
//! pays the captured part to the credit account and releases the rest; a void or an
//! expiry releases all of it.
//!
//! Every payment is recorded for the life of the journal: that is what makes the client
//! payment id a permanent idempotency key and what the history query walks. A refused
//! payment is not recorded, so its id stays free for a corrected retry.
//!
//! Time is the engine's (the command stamps): an authorization's deadline, its expiry
//! and the 24-hour velocity window are all computed from it, so replay expires the same
//! payments at the same sequence numbers.

use crate::book::NIL;
use crate::command::{Authorize, PaymentRef, Transfer};
use crate::engine::Engine;
use crate::event::{Event, EventSink, PaymentAction, PaymentInfo};
use crate::limits::{ASSETS_MAX, prefaulted_chunks};
use crate::reject::RejectReason;
use crate::types::*;
use crate::velocity::{Debit, VELOCITY_WINDOW_NS, VelocityLog};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

const NS_PER_S: u64 = 1_000_000_000;

/// One recorded payment and its links in the two accounts' histories: one 64-byte cache
/// line, since every payment is kept for good (idempotency and history) and each new one
/// is written to memory never used before. Two fields clients see are derived, not
/// stored: the payment id (index + 1) and an authorization's deadline (creation time +
/// timeout, checked not to overflow when it was accepted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Payment {
    pub client_payment_id: ClientPaymentId,
    pub amount: i64,
    pub captured: i64,
    pub created_ns: u64,
    pub resolved_ns: u64,
    pub debit: AccountId,
    pub credit: AccountId,
    /// Authorization timeout as requested (part of the idempotency comparison).
    pub timeout_s: u32,
    /// The debit account's previous payment (index), or `NIL`.
    pub prev_debit: u32,
    /// The credit account's previous payment (index), or `NIL`.
    pub prev_credit: u32,
    pub asset: AssetId,
    pub kind: PaymentKind,
    pub status: PaymentStatus,
}

const _: () = assert!(std::mem::size_of::<Payment>() == 64);

/// Every payment ever made, by index (payment id - 1). Stored in fixed-size chunks so
/// that growing never copies what is already there: a plain `Vec` reallocating a table
/// of millions of payments cost about a third of the payments benchmark's time (copies
/// plus faulting in each new buffer). Memory is still only taken as payments arrive.
#[derive(Clone, Debug, Default)]
pub(crate) struct PaymentTable {
    chunks: Vec<Vec<Payment>>,
    /// Allocated (and touched) chunks not used yet.
    spare: Vec<Vec<Payment>>,
    len: usize,
}

/// Resolved entries the deadline heap may hold beyond as many as it has pending ones,
/// before it drops them all ([`PaymentBook::deadline_resolved`]).
pub(crate) const DEADLINE_SLACK: usize = 64;

/// Payments per chunk (about 7 MB).
const CHUNK: usize = 1 << 16;

impl PaymentTable {
    /// An empty table with room for `expected` payments already allocated and touched.
    fn prefaulted(expected: usize) -> PaymentTable {
        let spare = prefaulted_chunks(expected, CHUNK, Payment::EMPTY);
        PaymentTable { spare, ..PaymentTable::default() }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    pub fn push(&mut self, payment: Payment) {
        if self.len.is_multiple_of(CHUNK) {
            let chunk = self.spare.pop().unwrap_or_else(|| Vec::with_capacity(CHUNK));
            self.chunks.push(chunk);
        }
        self.chunks.last_mut().expect("a chunk with room").push(payment);
        self.len += 1;
    }

    pub fn get(&self, index: usize) -> Option<&Payment> {
        self.chunks.get(index / CHUNK)?.get(index % CHUNK)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Payment> {
        self.chunks.iter().flatten()
    }
}

impl std::ops::Index<usize> for PaymentTable {
    type Output = Payment;
    fn index(&self, index: usize) -> &Payment {
        &self.chunks[index / CHUNK][index % CHUNK]
    }
}

impl std::ops::IndexMut<usize> for PaymentTable {
    fn index_mut(&mut self, index: usize) -> &mut Payment {
        &mut self.chunks[index / CHUNK][index % CHUNK]
    }
}

/// An asset's payment policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AssetPolicy {
    /// Largest single outgoing payment.
    pub transfer_max: Option<i64>,
    /// Default rolling 24-hour outgoing limit of every account.
    pub velocity_24h: Option<i64>,
    /// Sum of every account's credit limit in this asset (derived, for the overflow
    /// bound: supply + credit_total <= i64::MAX).
    pub credit_total: i64,
}

/// One account's outgoing side in one asset: its limits and what its debits still in
/// the velocity window add up to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Outgoing {
    /// How far below zero payments may take `available`.
    pub credit_limit: i64,
    /// The account's own 24-hour limit; `None` follows the asset's default.
    pub velocity_24h: Option<i64>,
    /// Sum of this account's debits in this asset in the velocity log (the completed
    /// debits of the last 24 hours of engine time).
    /// i128: the same money can move back and forth many times a day, so the sum of a
    /// day's debits is bounded only by `payments_max` x `i64::MAX`.
    pub window_sum: i128,
}

impl Payment {
    /// A placeholder, for touching memory.
    const EMPTY: Payment = Payment {
        client_payment_id: ClientPaymentId(0),
        amount: 0,
        captured: 0,
        created_ns: 0,
        resolved_ns: 0,
        debit: AccountId(0),
        credit: AccountId(0),
        timeout_s: 0,
        prev_debit: NIL,
        prev_credit: NIL,
        asset: AssetId(0),
        kind: PaymentKind::Transfer,
        status: PaymentStatus::Pending,
    };

    /// The record of `info`, not linked into any history yet. The caller has checked
    /// that `info`'s id and deadline are what the record derives.
    pub fn unlinked(info: &PaymentInfo, timeout_s: u32) -> Payment {
        let payment = Payment {
            client_payment_id: info.client_payment_id,
            amount: info.amount,
            captured: info.captured,
            created_ns: info.created_ns,
            resolved_ns: info.resolved_ns,
            debit: info.debit,
            credit: info.credit,
            timeout_s,
            prev_debit: NIL,
            prev_credit: NIL,
            asset: info.asset,
            kind: info.kind,
            status: info.status,
        };
        debug_assert_eq!(payment.deadline_ns(), info.deadline_ns, "a derivable deadline");
        payment
    }

    /// When a pending authorization with a timeout expires; 0 for none.
    pub fn deadline_ns(&self) -> u64 {
        deadline_of(self.kind, self.created_ns, self.timeout_s).expect("checked when accepted")
    }

    /// What clients see of the payment at `index` (this one).
    pub fn info(&self, index: u32) -> PaymentInfo {
        PaymentInfo {
            payment_id: PaymentId(u64::from(index) + 1),
            client_payment_id: self.client_payment_id,
            kind: self.kind,
            debit: self.debit,
            credit: self.credit,
            asset: self.asset,
            amount: self.amount,
            captured: self.captured,
            status: self.status,
            created_ns: self.created_ns,
            deadline_ns: self.deadline_ns(),
            resolved_ns: self.resolved_ns,
        }
    }
}

impl Outgoing {
    /// True if it holds nothing: such entries are removed, so that the map's contents
    /// (hashed and snapshotted) are canonical.
    pub fn is_empty(&self) -> bool {
        // Debits are positive, so a zero sum means none.
        self.credit_limit == 0 && self.velocity_24h.is_none() && self.window_sum == 0
    }
}

/// The deadline of a payment of `kind` created at `created_ns` with `timeout_s`: 0 for
/// none (no timeout). `None` if it can have none: it would overflow, or the payment is
/// not an authorization but has a timeout.
pub(crate) fn deadline_of(kind: PaymentKind, created_ns: u64, timeout_s: u32) -> Option<u64> {
    match (kind, timeout_s) {
        (_, 0) => Some(0),
        (PaymentKind::Authorization, _) => created_ns.checked_add(u64::from(timeout_s) * NS_PER_S),
        _ => None,
    }
}

/// The outgoing state of every (account, asset) that has some: by account id, a short
/// list sorted by asset (an account pays in few assets). A payment looks its entry up
/// twice (check, then record), so this is an index and a scan of one or two entries, not
/// a hash; iteration is in key order, which the state hash and snapshots need.
#[derive(Clone, Debug, Default)]
pub(crate) struct OutgoingTable {
    /// By account id.
    accounts: Vec<Vec<(AssetId, Outgoing)>>,
    /// Entries, over every account.
    len: usize,
}

impl OutgoingTable {
    /// The entry of `account` in `asset`, if it has one.
    #[inline(always)]
    pub fn get(&self, account: AccountId, asset: AssetId) -> Option<&Outgoing> {
        let entries = self.accounts.get(account.0 as usize)?;
        entries.iter().find(|(a, _)| *a == asset).map(|(_, o)| o)
    }

    /// The entry of `account` in `asset`, mutably, if it has one.
    pub fn get_mut(&mut self, account: AccountId, asset: AssetId) -> Option<&mut Outgoing> {
        let entries = self.accounts.get_mut(account.0 as usize)?;
        entries.iter_mut().find(|(a, _)| *a == asset).map(|(_, o)| o)
    }

    /// The entry of `account` in `asset`, created empty if it has none. The caller makes
    /// it non-empty, or removes it again (entries are never left empty).
    #[inline(always)]
    pub fn entry(&mut self, account: AccountId, asset: AssetId) -> &mut Outgoing {
        let at = account.0 as usize;
        if self.accounts.len() <= at {
            self.accounts.resize_with(at + 1, Vec::new);
        }
        let entries = &mut self.accounts[at];
        // Usually there: one or two entries to compare.
        if let Some(found) = entries.iter().position(|(a, _)| *a == asset) {
            return &mut entries[found].1;
        }
        let free = entries.partition_point(|(a, _)| *a < asset);
        entries.insert(free, (asset, Outgoing::default()));
        self.len += 1;
        &mut entries[free].1
    }

    /// Removes and returns the entry of `account` in `asset`.
    pub fn remove(&mut self, account: AccountId, asset: AssetId) -> Option<Outgoing> {
        let entries = self.accounts.get_mut(account.0 as usize)?;
        let at = entries.iter().position(|(a, _)| *a == asset)?;
        self.len -= 1;
        Some(entries.remove(at).1)
    }

    /// Every entry, in (account, asset) order.
    pub fn iter(&self) -> impl Iterator<Item = ((AccountId, AssetId), &Outgoing)> {
        self.accounts.iter().enumerate().flat_map(|(account, entries)| {
            let account = AccountId(account as u32);
            entries.iter().map(move |(asset, o)| ((account, *asset), o))
        })
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.len
    }
}

/// The client payment ids of one debit account. Clients almost always number their
/// payments upwards, so ids above every earlier one are appended to a sorted sequence
/// (inserted in O(1)); an id below the largest so far goes to a B-tree instead. Lookups
/// search the sequence from its newest end outwards (galloping), because the ids looked
/// up are almost always recent ones (a new id, a capture of a recent authorization, a
/// retry), and the newest part stays in cache; an old id costs O(log n). Nothing is ever
/// forgotten. (Measured first: a hash table over every id of every account, and a plain
/// binary search over the vector, both cost cache misses per payment once the ids
/// outgrew the cache.)
///
/// The sequence is kept as full blocks of [`ID_BLOCK`] ids plus the newest, partly
/// filled block, so that an account's millionth payment does not copy the 16 MB of ids
/// before it (a single growing vector did, on the engine thread: a stall of milliseconds
/// whenever a busy account's vector doubled). An account's first block grows like a
/// vector; the later ones come full-size from [`ClientIndex`]'s spare blocks.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClientIds {
    /// Full blocks of strictly increasing ids with their payment index, oldest first;
    /// every id in a block is below every id after it.
    sealed: Vec<Box<[(ClientPaymentId, u32)]>>,
    /// The newest ids (at most `ID_BLOCK`), strictly increasing, above every sealed one.
    /// Never empty once a block is sealed: sealing happens only to make room for an id.
    recent: Vec<(ClientPaymentId, u32)>,
    /// Ids that arrived below the largest one seen.
    others: std::collections::BTreeMap<ClientPaymentId, u32>,
}

/// Ids per sealed block of [`ClientIds`] (64 KiB): the most a block copies while growing.
const ID_BLOCK: usize = 4096;

/// Room for [`ID_BLOCK`] ids.
type IdBlock = Vec<(ClientPaymentId, u32)>;

impl ClientIds {
    #[inline(always)]
    fn find(&self, client: ClientPaymentId) -> Option<u32> {
        if client <= self.newest() {
            let in_recent = self.recent.first().is_some_and(|&(first, _)| first <= client);
            let found = match in_recent {
                true => gallop_from_newest(&self.recent, client),
                false => self.find_sealed(client),
            };
            if found.is_some() {
                return found;
            }
        }
        if self.others.is_empty() { None } else { self.others.get(&client).copied() }
    }

    /// The largest id of the ascending sequence (0 when it is empty).
    fn newest(&self) -> ClientPaymentId {
        self.recent.last().map_or(ClientPaymentId(0), |&(id, _)| id)
    }

    /// An id below the recent block: the first sealed block whose last id is not below
    /// it, then a binary search inside that block.
    fn find_sealed(&self, client: ClientPaymentId) -> Option<u32> {
        let at = self.sealed.partition_point(|block| block[ID_BLOCK - 1].0 < client);
        let block = self.sealed.get(at)?;
        let found = block.binary_search_by_key(&client, |&(id, _)| id).ok()?;
        Some(block[found].1)
    }

    /// Records a new id; a new block comes from `spare` if it has one.
    #[inline(always)]
    fn insert(&mut self, client: ClientPaymentId, index: u32, spare: &mut Vec<IdBlock>) {
        if client <= self.newest() {
            return self.insert_below(client, index);
        }
        if self.recent.len() == ID_BLOCK {
            self.seal_recent(spare);
        }
        self.recent.push((client, index));
    }

    /// Records an id below the newest one. The rare cases of `insert` are kept out of
    /// line, so that the common one (the next id up) stays short (callgrind: a few
    /// instructions per transfer).
    #[cold]
    #[inline(never)]
    fn insert_below(&mut self, client: ClientPaymentId, index: u32) {
        let previous = self.others.insert(client, index);
        assert!(previous.is_none(), "a client payment id is recorded once");
    }

    /// Seals the full recent block and starts the next (once per `ID_BLOCK` ids).
    #[cold]
    #[inline(never)]
    fn seal_recent(&mut self, spare: &mut Vec<IdBlock>) {
        // Later blocks are allocated at full size: they never copy either.
        let next = spare.pop().unwrap_or_else(|| Vec::with_capacity(ID_BLOCK));
        let full = std::mem::replace(&mut self.recent, next);
        self.sealed.push(full.into_boxed_slice());
    }

    fn len(&self) -> usize {
        self.sealed.len() * ID_BLOCK + self.recent.len() + self.others.len()
    }
}

/// Galloping search of strictly increasing `ids` from the newest end: windows of 1, 2,
/// 4, ... entries back until one starts at or below `client`, then a binary search
/// inside that window.
fn gallop_from_newest(ids: &[(ClientPaymentId, u32)], client: ClientPaymentId) -> Option<u32> {
    let (mut low, mut high) = (ids.len(), ids.len());
    let mut step = 1;
    while low > 0 {
        low = low.saturating_sub(step);
        if ids[low].0 <= client {
            break;
        }
        high = low;
        step *= 2;
    }
    let window = &ids[low..high];
    let at = window.binary_search_by_key(&client, |&(id, _)| id).ok()?;
    Some(window[at].1)
}

/// Client payment ids of every debit account (and of the external account, for
/// deposits).
#[derive(Clone, Debug, Default)]
pub(crate) struct ClientIndex {
    /// By account id.
    accounts: Vec<ClientIds>,
    /// The external account's: every deposit.
    external: ClientIds,
    /// Allocated, touched and empty blocks, for accounts whose block fills up.
    spare: Vec<IdBlock>,
}

impl ClientIndex {
    /// An empty index with blocks for `expected` ids allocated and touched, so that they
    /// neither allocate nor fault pages on the command path.
    fn prefaulted(expected: usize) -> ClientIndex {
        let placeholder = (ClientPaymentId(u64::MAX), u32::MAX);
        let spare = prefaulted_chunks(expected, ID_BLOCK, placeholder);
        ClientIndex { spare, ..ClientIndex::default() }
    }

    fn ids(&self, debit: AccountId) -> Option<&ClientIds> {
        match debit {
            EXTERNAL_ACCOUNT => Some(&self.external),
            _ => self.accounts.get(debit.0 as usize),
        }
    }

    /// Index of the payment `debit` made with this client id.
    #[inline(always)]
    pub fn find(&self, debit: AccountId, client: ClientPaymentId) -> Option<u32> {
        self.ids(debit)?.find(client)
    }

    /// Records a new (debit, client id); it must not be there yet.
    #[inline(always)]
    pub fn insert(&mut self, debit: AccountId, client: ClientPaymentId, index: u32) {
        let ids = match debit {
            EXTERNAL_ACCOUNT => &mut self.external,
            _ => {
                let at = debit.0 as usize;
                if self.accounts.len() <= at {
                    self.accounts.resize_with(at + 1, ClientIds::default);
                }
                &mut self.accounts[at]
            }
        };
        ids.insert(client, index, &mut self.spare);
    }

    /// Ids recorded.
    pub fn len(&self) -> usize {
        self.external.len() + self.accounts.iter().map(ClientIds::len).sum::<usize>()
    }
}

/// Every payment and the payment-risk state.
#[derive(Clone, Debug, Default)]
pub(crate) struct PaymentBook {
    /// Payment id `n` is `records[n - 1]`.
    pub records: PaymentTable,
    /// `(debit account, client payment id)` -> index; the debit of a deposit is
    /// [`EXTERNAL_ACCOUNT`].
    pub by_client: ClientIndex,
    /// `(deadline, index)` of authorizations that had a deadline when accepted, earliest
    /// first. Resolving one does not search the heap for its entry: the entry stays
    /// until it reaches the top and is dropped there ([`PaymentBook::deadline_resolved`]),
    /// so the top is always a pending payment; when resolved entries outnumber the
    /// pending ones (plus [`DEADLINE_SLACK`]), they are all dropped at once. A heap,
    /// not an ordered set: pushing allocates nothing while it has room (a B-tree
    /// allocated nodes on the engine thread, and its inserts and removals were 13 % of
    /// the payments mix), and the order is the same, by deadline and then payment id.
    pub deadlines: BinaryHeap<Reverse<(u64, u32)>>,
    /// Pending authorizations with a deadline: the live entries of `deadlines`.
    pub pending_deadlines: usize,
    /// The first pending deadline, `u64::MAX` when none: one comparison per command
    /// decides whether `expire_due` must look at `deadlines`.
    pub next_deadline: u64,
    /// Per asset.
    pub policies: [AssetPolicy; ASSETS_MAX],
    /// Per (account, asset) of an account that is not closed and has limits or debits
    /// in the velocity log.
    pub outgoing: OutgoingTable,
    /// Completed debits of the last 24 hours of engine time, oldest first.
    pub velocity: VelocityLog,
    /// When the oldest debit in `velocity` stops counting (saturating), `u64::MAX` when
    /// there is none: one comparison per command decides whether
    /// [`PaymentBook::expire_debits`] must look at the log.
    pub next_debit_expiry: u64,
    /// Payment events emitted since this book was built, by `[kind][action]`: a
    /// statistic for the operator's metrics, not state (not hashed, not in snapshots;
    /// an engine rebuilt from a snapshot counts only what it replays after it).
    pub events: [[u64; PaymentAction::COUNT]; PaymentKind::COUNT],
}

impl PaymentBook {
    /// No payments, no limits; room for `expected` payments (their records, client ids
    /// and debits in the velocity log) allocated up front.
    pub fn new(expected: u32) -> PaymentBook {
        let records = PaymentTable::prefaulted(expected as usize);
        let by_client = ClientIndex::prefaulted(expected as usize);
        // At most one debit per payment.
        let velocity = VelocityLog::prefaulted(expected as usize);
        // Reserved, not touched: only authorizations with a timeout use it.
        let deadlines = BinaryHeap::with_capacity(expected as usize);
        let (next_deadline, next_debit_expiry) = (u64::MAX, u64::MAX);
        PaymentBook {
            next_deadline,
            next_debit_expiry,
            records,
            by_client,
            deadlines,
            velocity,
            ..PaymentBook::default()
        }
    }

    /// Index of the payment a debit account made with this client id.
    #[inline(always)]
    pub fn find_client(&self, debit: AccountId, client: ClientPaymentId) -> Option<u32> {
        self.by_client.find(debit, client)
    }

    /// What clients see of the payment at `index` (which exists).
    pub fn info(&self, index: u32) -> PaymentInfo {
        self.records[index as usize].info(index)
    }

    /// The payment with this engine id, and its index.
    pub fn get(&self, id: PaymentId) -> Option<(u32, &Payment)> {
        let index = u32::try_from(id.0.checked_sub(1)?).ok()?;
        Some((index, self.records.get(index as usize)?))
    }

    /// The credit limit of `account` in `asset`.
    pub fn credit_limit(&self, account: AccountId, asset: AssetId) -> i64 {
        self.outgoing.get(account, asset).map_or(0, |o| o.credit_limit)
    }

    /// Drops a closed account's outgoing state in every asset.
    pub fn forget_account(&mut self, account: AccountId) {
        for asset in 0..ASSETS_MAX {
            if let Some(gone) = self.outgoing.remove(account, AssetId(asset as u16)) {
                self.policies[asset].credit_total -= gone.credit_limit;
            }
        }
    }

    /// Counts a completed debit in its account's window sum and appends it to the
    /// velocity log.
    #[inline(always)]
    pub fn log_debit(&mut self, debit: Debit) {
        let entry = self.outgoing.entry(debit.account, debit.asset);
        entry.window_sum += i128::from(debit.amount);
        self.append_debit(debit);
    }

    /// Appends a debit to the velocity log without counting it anywhere (a closed
    /// account's, restored from a snapshot).
    #[inline]
    pub fn append_debit(&mut self, debit: Debit) {
        // The newest debit: it is the oldest only in an empty log.
        let expiry = debit.time_ns.saturating_add(VELOCITY_WINDOW_NS);
        self.next_debit_expiry = self.next_debit_expiry.min(expiry);
        self.velocity.push(debit);
    }

    /// Takes the debits that stopped counting at `now` off the log and out of their
    /// accounts' sums (dropping entries left empty). Runs at the start of every command
    /// whose time has reached `next_debit_expiry`.
    pub fn expire_debits(&mut self, now: u64) {
        while let Some(oldest) = self.velocity.front()
            && oldest.expired(now)
        {
            let debit = self.velocity.pop_front().expect("the front debit");
            // A closed account's entries are gone (`forget_account`); its debits just
            // leave the log.
            let (account, asset) = (debit.account, debit.asset);
            if let Some(entry) = self.outgoing.get_mut(account, asset) {
                entry.window_sum -= i128::from(debit.amount);
                if entry.is_empty() {
                    self.outgoing.remove(account, asset);
                }
            }
        }
        self.next_debit_expiry = self.velocity.next_expiry();
    }

    /// Schedules the expiry of the pending authorization at `index`.
    pub fn set_deadline(&mut self, deadline: u64, index: u32) {
        self.deadlines.push(Reverse((deadline, index)));
        self.pending_deadlines += 1;
        self.next_deadline = self.next_deadline.min(deadline);
    }

    /// The earliest deadline of a pending authorization and its index.
    pub fn first_deadline(&self) -> Option<(u64, u32)> {
        self.deadlines.peek().map(|&Reverse(entry)| entry)
    }

    /// Called whenever a payment with a deadline is resolved: drops the entries of
    /// resolved payments from the top of the deadline heap, so that its top is pending
    /// again (entries below the top wait until they come up), and all of them once they
    /// outnumber the pending ones by more than [`DEADLINE_SLACK`] (so it holds at most
    /// twice the pending ones plus [`DEADLINE_SLACK`]; the sweep is paid for by the
    /// resolutions since the last one).
    fn deadline_resolved(&mut self) {
        self.pending_deadlines -= 1;
        let records = &self.records;
        let pending = |&Reverse((_, index)): &Reverse<(u64, u32)>| {
            records[index as usize].status == PaymentStatus::Pending
        };
        while let Some(top) = self.deadlines.peek()
            && !pending(top)
        {
            self.deadlines.pop();
        }
        if self.deadlines.len() > 2 * self.pending_deadlines + DEADLINE_SLACK {
            self.deadlines.retain(pending);
        }
        self.next_deadline = self.first_deadline().map_or(u64::MAX, |(deadline, _)| deadline);
    }
}

/// A new payment as requested, whichever command asked for it.
#[derive(Clone, Copy, Debug)]
struct Draft {
    kind: PaymentKind,
    debit: AccountId,
    credit: AccountId,
    asset: AssetId,
    amount: i64,
    client_payment_id: ClientPaymentId,
    timeout_s: u32,
}

impl Draft {
    /// A request without a timeout.
    fn between(
        kind: PaymentKind,
        debit: AccountId,
        credit: AccountId,
        asset: AssetId,
        amount: i64,
        client_payment_id: ClientPaymentId,
    ) -> Draft {
        Draft { kind, debit, credit, asset, amount, client_payment_id, timeout_s: 0 }
    }

    /// True if `payment` is exactly this request (an idempotent repeat).
    fn matches(&self, p: &Payment) -> bool {
        p.kind == self.kind
            && p.debit == self.debit
            && p.credit == self.credit
            && p.asset == self.asset
            && p.amount == self.amount
            && p.timeout_s == self.timeout_s
    }

    /// The real account it debits, if any (not for a deposit).
    fn debit_account(&self) -> Option<AccountId> {
        (self.kind != PaymentKind::Deposit).then_some(self.debit)
    }

    /// The real account it credits, if any (not for a withdrawal).
    fn credit_account(&self) -> Option<AccountId> {
        (self.kind != PaymentKind::Withdrawal).then_some(self.credit)
    }
}

/// What the checks of a new payment decided.
enum Admission {
    /// An exact repeat of the payment at this index.
    Duplicate(u32),
    /// A new payment; authorizations carry their deadline (0: none).
    New { deadline_ns: u64 },
}

impl Engine {
    pub(crate) fn transfer(
        &mut self,
        actor: UserId,
        t: &Transfer,
        out: &mut impl EventSink,
    ) -> Result<(), RejectReason> {
        let kind = PaymentKind::Transfer;
        let draft = Draft::between(kind, t.debit, t.credit, t.asset, t.amount, t.client_payment_id);
        self.new_payment(actor, draft, out)
    }

    pub(crate) fn authorize(
        &mut self,
        actor: UserId,
        a: &Authorize,
        out: &mut impl EventSink,
    ) -> Result<(), RejectReason> {
        let kind = PaymentKind::Authorization;
        let draft = Draft::between(kind, a.debit, a.credit, a.asset, a.amount, a.client_payment_id);
        self.new_payment(actor, Draft { timeout_s: a.timeout_s, ..draft }, out)
    }

    pub(crate) fn deposit(
        &mut self,
        actor: UserId,
        account: AccountId,
        asset: AssetId,
        amount: i64,
        client_payment_id: ClientPaymentId,
        out: &mut impl EventSink,
    ) -> Result<(), RejectReason> {
        let kind = PaymentKind::Deposit;
        let draft =
            Draft::between(kind, EXTERNAL_ACCOUNT, account, asset, amount, client_payment_id);
        self.new_payment(actor, draft, out)
    }

    pub(crate) fn withdraw(
        &mut self,
        actor: UserId,
        account: AccountId,
        asset: AssetId,
        amount: i64,
        client_payment_id: ClientPaymentId,
        out: &mut impl EventSink,
    ) -> Result<(), RejectReason> {
        let kind = PaymentKind::Withdrawal;
        let draft =
            Draft::between(kind, account, EXTERNAL_ACCOUNT, asset, amount, client_payment_id);
        self.new_payment(actor, draft, out)
    }

    fn new_payment(
        &mut self,
        actor: UserId,
        draft: Draft,
        out: &mut impl EventSink,
    ) -> Result<(), RejectReason> {
        match self.check_new_payment(actor, &draft)? {
            Admission::Duplicate(index) => {
                let info = self.payments.info(index);
                self.emit_payment(PaymentAction::Duplicate, info, out);
            }
            Admission::New { deadline_ns } => self.execute_new_payment(&draft, deadline_ns, out),
        }
        Ok(())
    }

    /// Every check of a new payment, in the documented order; reads only.
    fn check_new_payment(&self, actor: UserId, d: &Draft) -> Result<Admission, RejectReason> {
        let role = self.role(actor)?;
        let external = matches!(d.kind, PaymentKind::Deposit | PaymentKind::Withdrawal);
        if external && !matches!(role, Role::Admin | Role::Operator) {
            return Err(RejectReason::NotAdmin);
        }
        // The account the command names: the one credited by a deposit, else the debit.
        let named = if d.kind == PaymentKind::Deposit { d.credit } else { d.debit };
        let account = self.account(named).ok_or(RejectReason::UnknownAccount)?;
        if !external && account.owner != actor {
            return Err(RejectReason::AccountNotOwned);
        }
        if d.client_payment_id.0 == 0 {
            return Err(RejectReason::PaymentIdZero);
        }
        // Idempotency comes before every check of the ledger's current state: a retry
        // of a payment that went through is a duplicate even if it could not pass now.
        if let Some(index) = self.payments.find_client(d.debit, d.client_payment_id) {
            return match d.matches(&self.payments.records[index as usize]) {
                true => Ok(Admission::Duplicate(index)),
                false => Err(RejectReason::PaymentIdConflict),
            };
        }
        if account.status == AccountStatus::Closed {
            return Err(RejectReason::AccountClosed);
        }
        // Frozen accounts can still receive.
        if account.status == AccountStatus::Frozen && d.kind != PaymentKind::Deposit {
            return Err(RejectReason::AccountFrozen);
        }
        if account.blocked {
            return Err(RejectReason::AccountBlocked);
        }
        if !external {
            if d.credit == d.debit {
                return Err(RejectReason::SameAccount);
            }
            let credit = self.account(d.credit).ok_or(RejectReason::UnknownCreditAccount)?;
            if credit.status == AccountStatus::Closed {
                return Err(RejectReason::CreditAccountClosed);
            }
            if credit.blocked {
                return Err(RejectReason::CreditAccountBlocked);
            }
        }
        let asset = self.asset(d.asset)?;
        if d.amount <= 0 {
            return Err(RejectReason::AmountNotPositive);
        }
        let policy = &self.payments.policies[d.asset.0 as usize];
        if d.kind != PaymentKind::Deposit && policy.transfer_max.is_some_and(|max| d.amount > max) {
            return Err(RejectReason::AboveTransferMax);
        }
        if self.payments.records.len() >= self.limits.payments_max as usize {
            return Err(RejectReason::PaymentsFull);
        }
        if d.kind == PaymentKind::Deposit {
            // Supply plus every credit limit bounds every balance (see `Asset::supply`).
            // Supply may be negative (withdrawals on credit), never below minus the
            // credit total; i128 keeps the bound exact whatever the values.
            let after = i128::from(asset.supply) + i128::from(policy.credit_total);
            if after + i128::from(d.amount) > i128::from(i64::MAX) {
                return Err(RejectReason::ArithmeticOverflow);
            }
        } else {
            self.check_debit(d, account.balance(d.asset))?;
        }
        // Only authorizations carry a timeout (the other drafts have 0).
        let deadline_ns = deadline_of(d.kind, self.last_time_ns, d.timeout_s)
            .ok_or(RejectReason::ArithmeticOverflow)?;
        Ok(Admission::New { deadline_ns })
    }

    /// Funds and velocity of the debit account.
    #[inline(always)]
    fn check_debit(&self, d: &Draft, balance: crate::ledger::Balance) -> Result<(), RejectReason> {
        let outgoing = self.payments.outgoing.get(d.debit, d.asset);
        let credit_limit = outgoing.map_or(0, |o| o.credit_limit);
        // Both are bounded by the supply + credit bound, so the sum fits.
        if balance.available + credit_limit < d.amount {
            return Err(RejectReason::InsufficientBalance);
        }
        // The account's own 24-hour limit, else the asset's default (one map lookup for
        // credit and velocity both).
        let velocity = outgoing.and_then(|o| o.velocity_24h);
        let default = self.payments.policies[d.asset.0 as usize].velocity_24h;
        if let Some(limit) = velocity.or(default) {
            // Pending authorizations count in full until they are resolved; completed
            // debits count for 24 hours from when they completed (the older ones left
            // the sum before this command ran).
            let counted = outgoing.map_or(0, |o| o.window_sum);
            let used = counted + i128::from(balance.pending);
            if used + i128::from(d.amount) > i128::from(limit) {
                return Err(RejectReason::VelocityLimitExceeded);
            }
        }
        Ok(())
    }

    /// Records a checked new payment, moves its money and reports it.
    fn execute_new_payment(&mut self, d: &Draft, deadline_ns: u64, out: &mut impl EventSink) {
        let now = self.last_time_ns;
        let index = u32::try_from(self.payments.records.len()).expect("payments_max is a u32");
        let pending = d.kind == PaymentKind::Authorization;
        let info = PaymentInfo {
            payment_id: PaymentId(u64::from(index) + 1),
            client_payment_id: d.client_payment_id,
            kind: d.kind,
            debit: d.debit,
            credit: d.credit,
            asset: d.asset,
            amount: d.amount,
            captured: if pending { 0 } else { d.amount },
            status: if pending { PaymentStatus::Pending } else { PaymentStatus::Completed },
            created_ns: now,
            deadline_ns,
            resolved_ns: if pending { 0 } else { now },
        };
        let mut payment = Payment::unlinked(&info, d.timeout_s);
        if let Some(debit) = d.debit_account() {
            payment.prev_debit =
                std::mem::replace(&mut self.account_mut(debit).last_payment, index);
        }
        if let Some(credit) = d.credit_account() {
            payment.prev_credit =
                std::mem::replace(&mut self.account_mut(credit).last_payment, index);
        }
        self.payments.records.push(payment);
        self.payments.by_client.insert(d.debit, d.client_payment_id, index);
        if deadline_ns > 0 {
            self.payments.set_deadline(deadline_ns, index);
        }

        let asset = d.asset;
        match d.kind {
            PaymentKind::Transfer => {
                self.debit_available(d.debit, asset, d.amount);
                self.account_mut(d.credit).credit(asset, d.amount);
            }
            PaymentKind::Authorization => {
                let balance = self.account_mut(d.debit).balance_mut(asset);
                balance.available -= d.amount;
                balance.pending += d.amount;
            }
            PaymentKind::Deposit => {
                self.assets[asset.0 as usize].as_mut().expect("checked").supply += d.amount;
                self.account_mut(d.credit).credit(asset, d.amount);
            }
            PaymentKind::Withdrawal => {
                self.assets[asset.0 as usize].as_mut().expect("checked").supply -= d.amount;
                self.debit_available(d.debit, asset, d.amount);
            }
        }
        self.emit_payment(PaymentAction::Created, info, out);
        self.emit_payment_balances(&info, out);
    }

    /// Takes a completed debit from `available` and counts it in the velocity window.
    fn debit_available(&mut self, account: AccountId, asset: AssetId, amount: i64) {
        self.account_mut(account).balance_mut(asset).available -= amount;
        let time_ns = self.last_time_ns;
        self.payments.log_debit(Debit { time_ns, amount, account, asset });
    }

    /// Reports what happened to a payment, and counts it (`PaymentBook::events`).
    fn emit_payment(&mut self, action: PaymentAction, info: PaymentInfo, out: &mut impl EventSink) {
        self.payments.events[info.kind.index()][action.index()] += 1;
        out.emit(Event::Payment { action, info });
    }

    /// The balances of the real accounts of a payment, debit first.
    #[inline(always)]
    fn emit_payment_balances(&self, info: &PaymentInfo, out: &mut impl EventSink) {
        for account in [info.debit, info.credit] {
            if account != EXTERNAL_ACCOUNT {
                self.emit_balance(account, info.asset, out);
            }
        }
    }

    pub(crate) fn capture(
        &mut self,
        actor: UserId,
        account: AccountId,
        payment: PaymentRef,
        amount: i64,
        out: &mut impl EventSink,
    ) -> Result<(), RejectReason> {
        let index = self.resolvable_payment(actor, account, payment)?;
        if amount < 0 {
            return Err(RejectReason::AmountNotPositive);
        }
        let p = self.payments.info(index);
        let captured = if amount == 0 { p.amount } else { amount };
        if p.kind != PaymentKind::Authorization {
            return Err(RejectReason::PaymentNotPending);
        }
        if p.status == PaymentStatus::Completed && p.captured == captured {
            self.emit_payment(PaymentAction::Duplicate, p, out);
            return Ok(());
        }
        if p.status != PaymentStatus::Pending {
            return Err(RejectReason::PaymentNotPending);
        }
        if captured > p.amount {
            return Err(RejectReason::CaptureAboveAuthorized);
        }
        let (debit, credit) = (self.account(p.debit), self.account(p.credit));
        let (debit, credit) = (debit.expect("payment accounts exist"), credit.expect("exist"));
        // A capture sends from the debit account, which a freeze stops: the hold
        // waits (pending) for an unfreeze, a void or its expiry.
        if debit.status == AccountStatus::Frozen {
            return Err(RejectReason::AccountFrozen);
        }
        if credit.status == AccountStatus::Closed {
            return Err(RejectReason::CreditAccountClosed);
        }
        if debit.blocked {
            return Err(RejectReason::AccountBlocked);
        }
        if credit.blocked {
            return Err(RejectReason::CreditAccountBlocked);
        }

        let asset = p.asset;
        let balance = self.account_mut(p.debit).balance_mut(asset);
        balance.pending -= p.amount;
        balance.available += p.amount;
        self.debit_available(p.debit, asset, captured);
        self.account_mut(p.credit).credit(asset, captured);
        let info = self.resolve(index, PaymentStatus::Completed, captured);
        self.emit_payment(PaymentAction::Captured, info, out);
        self.emit_payment_balances(&info, out);
        Ok(())
    }

    pub(crate) fn void(
        &mut self,
        actor: UserId,
        account: AccountId,
        payment: PaymentRef,
        out: &mut impl EventSink,
    ) -> Result<(), RejectReason> {
        let index = self.resolvable_payment(actor, account, payment)?;
        let p = self.payments.info(index);
        if p.status == PaymentStatus::Voided {
            self.emit_payment(PaymentAction::Duplicate, p, out);
            return Ok(());
        }
        if p.status != PaymentStatus::Pending {
            return Err(RejectReason::PaymentNotPending);
        }
        self.release_pending(index, PaymentStatus::Voided, PaymentAction::Voided, out);
        Ok(())
    }

    /// Expires every pending authorization whose deadline engine time has reached, in
    /// deadline order (ties by payment id). Runs at the start of every command.
    pub(crate) fn expire_due(&mut self, out: &mut impl EventSink) {
        // `next_deadline` is only a fast filter (u64::MAX also stands for "none", and a
        // deadline may be exactly u64::MAX): the heap decides. Its top is always pending.
        while let Some((deadline, index)) = self.payments.first_deadline()
            && deadline <= self.last_time_ns
        {
            self.release_pending(index, PaymentStatus::Expired, PaymentAction::Expired, out);
        }
    }

    /// Releases a pending authorization's whole hold to its debit account.
    fn release_pending(
        &mut self,
        index: u32,
        status: PaymentStatus,
        action: PaymentAction,
        out: &mut impl EventSink,
    ) {
        let p = self.payments.info(index);
        let balance = self.account_mut(p.debit).balance_mut(p.asset);
        balance.pending -= p.amount;
        balance.available += p.amount;
        let info = self.resolve(index, status, 0);
        self.emit_payment(action, info, out);
        self.emit_balance(p.debit, p.asset, out);
    }

    /// Moves a pending payment to its final status; returns it as it is now.
    fn resolve(&mut self, index: u32, status: PaymentStatus, captured: i64) -> PaymentInfo {
        let now = self.last_time_ns;
        let payment = &mut self.payments.records[index as usize];
        assert_eq!(payment.status, PaymentStatus::Pending);
        payment.status = status;
        payment.captured = captured;
        payment.resolved_ns = now;
        let info = payment.info(index);
        if info.deadline_ns > 0 {
            self.payments.deadline_resolved();
        }
        info
    }

    /// The payment a capture or void names, if the acting user may resolve it: `account`
    /// exists, belongs to the user, and is a side of the payment (the debit side when it
    /// is named by client id).
    fn resolvable_payment(
        &self,
        actor: UserId,
        account: AccountId,
        payment: PaymentRef,
    ) -> Result<u32, RejectReason> {
        self.role(actor)?;
        let found = self.account(account).ok_or(RejectReason::UnknownAccount)?;
        if found.owner != actor {
            return Err(RejectReason::AccountNotOwned);
        }
        self.find_payment(account, payment).ok_or(RejectReason::UnknownPayment)
    }

    /// Index of the payment `payment` names, if `account` is a side of it.
    pub(crate) fn find_payment(&self, account: AccountId, payment: PaymentRef) -> Option<u32> {
        match payment {
            PaymentRef::Client(client) => self.payments.find_client(account, client),
            PaymentRef::Id(id) => {
                let (index, found) = self.payments.get(id)?;
                let party = found.debit == account || found.credit == account;
                party.then_some(index)
            }
        }
    }

    // ---- admin: limits and the deny-list -----------------------------------------------

    pub(crate) fn set_payment_limits(
        &mut self,
        actor: UserId,
        asset: AssetId,
        transfer_max: Option<i64>,
        velocity_24h: Option<i64>,
        out: &mut impl EventSink,
    ) -> Result<(), RejectReason> {
        self.require_admin(actor)?;
        self.asset(asset)?;
        if transfer_max.is_some_and(|v| v <= 0) || velocity_24h.is_some_and(|v| v <= 0) {
            return Err(RejectReason::InvalidDefinition);
        }
        let policy = &mut self.payments.policies[asset.0 as usize];
        policy.transfer_max = transfer_max;
        policy.velocity_24h = velocity_24h;
        out.emit(Event::PaymentLimitsSet { asset, transfer_max, velocity_24h });
        Ok(())
    }

    pub(crate) fn set_account_limits(
        &mut self,
        actor: UserId,
        account: AccountId,
        asset: AssetId,
        credit_limit: i64,
        velocity_24h: Option<i64>,
        out: &mut impl EventSink,
    ) -> Result<(), RejectReason> {
        let found = self.admin_open_account(actor, account)?;
        let supply = self.asset(asset)?.supply;
        if credit_limit < 0 || velocity_24h.is_some_and(|v| v <= 0) {
            return Err(RejectReason::InvalidDefinition);
        }
        let owed = -found.balance(asset).available.min(0);
        if credit_limit < owed {
            return Err(RejectReason::CreditLimitBelowUsage);
        }
        let old = self.payments.credit_limit(account, asset);
        let credit_total = self.payments.policies[asset.0 as usize].credit_total - old;
        let after = i128::from(supply) + i128::from(credit_total) + i128::from(credit_limit);
        if after > i128::from(i64::MAX) {
            return Err(RejectReason::ArithmeticOverflow);
        }
        self.payments.policies[asset.0 as usize].credit_total = credit_total + credit_limit;
        let entry = self.payments.outgoing.entry(account, asset);
        entry.credit_limit = credit_limit;
        entry.velocity_24h = velocity_24h;
        if entry.is_empty() {
            self.payments.outgoing.remove(account, asset);
        }
        out.emit(Event::AccountLimitsSet { account, asset, credit_limit, velocity_24h });
        Ok(())
    }

    pub(crate) fn set_account_blocked(
        &mut self,
        actor: UserId,
        account: AccountId,
        blocked: bool,
        out: &mut impl EventSink,
    ) -> Result<(), RejectReason> {
        let found = self.admin_open_account(actor, account)?;
        if found.blocked == blocked {
            return Err(RejectReason::StatusUnchanged);
        }
        self.account_mut(account).blocked = blocked;
        out.emit(Event::AccountBlocked { account, blocked });
        Ok(())
    }

    pub(crate) fn tick(
        &mut self,
        actor: UserId,
        out: &mut impl EventSink,
    ) -> Result<(), RejectReason> {
        self.require_admin(actor)?;
        out.emit(Event::Ticked { time_ns: self.last_time_ns });
        Ok(())
    }

    /// Engine time at which the next pending authorization expires, if any. The server
    /// journals a `Tick` when the clock passes it and nothing else arrives.
    pub fn next_deadline(&self) -> Option<u64> {
        self.payments.first_deadline().map(|(deadline, _)| deadline)
    }

    /// Payments recorded so far.
    pub fn payment_count(&self) -> usize {
        self.payments.records.len()
    }

    /// The payment with this engine id, as clients see it.
    pub fn payment(&self, id: PaymentId) -> Option<PaymentInfo> {
        self.payments.get(id).map(|(index, p)| p.info(index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Entries created, changed and removed at pseudo-random (account, asset) keys,
    /// checked after every step against a sorted map: lookups, length and key order.
    #[test]
    fn outgoing_table_matches_a_sorted_map() {
        let mut table = OutgoingTable::default();
        let mut model: BTreeMap<(AccountId, AssetId), i64> = BTreeMap::new();
        let mut rng = crate::testkit::Rng::new(0x2545_f491_4f6c_dd1d_u64);
        let mut next = move |below: u64| rng.below(below);
        for step in 0..5_000i64 {
            let key = (AccountId(next(40) as u32), AssetId(next(6) as u16));
            if next(3) == 0 {
                assert_eq!(table.remove(key.0, key.1).map(|o| o.credit_limit), model.remove(&key));
            } else {
                table.entry(key.0, key.1).credit_limit = step + 1;
                model.insert(key, step + 1);
            }
            assert_eq!(table.len(), model.len(), "step {step}");
            let probe = (AccountId(next(45) as u32), AssetId(next(7) as u16));
            let found = table.get(probe.0, probe.1).map(|o| o.credit_limit);
            assert_eq!(found, model.get(&probe).copied(), "step {step}: {probe:?}");
            if step % 50 == 0 {
                let entries: Vec<_> = table.iter().map(|(k, o)| (k, o.credit_limit)).collect();
                let expected: Vec<_> = model.iter().map(|(k, v)| (*k, *v)).collect();
                assert_eq!(entries, expected, "step {step}");
            }
        }
    }

    /// Ids inserted in long ascending runs (crossing several sealed blocks) with some
    /// lower ones between, checked against a sorted map: every id found with its
    /// index, ids never inserted not found, and the count.
    #[test]
    fn client_ids_match_a_sorted_map_across_blocks() {
        let mut ids = ClientIds::default();
        let mut model: BTreeMap<ClientPaymentId, u32> = BTreeMap::new();
        let mut rng = crate::testkit::Rng::new(0x9e37_79b9_7f4a_7c15_u64);
        let mut top = 0u64;
        // One spare block: the first block to fill takes it, later ones are allocated.
        let mut spare = vec![Vec::with_capacity(ID_BLOCK)];
        for index in 0..(3 * ID_BLOCK as u32 + 777) {
            // Mostly the next id up (with gaps), sometimes a free id below the top.
            let id = if rng.below(10) == 0 && top > 10 {
                (0..)
                    .map(|_| 1 + rng.below(top))
                    .find(|id| !model.contains_key(&ClientPaymentId(*id)))
            } else {
                top += 1 + rng.below(3);
                Some(top)
            };
            let id = ClientPaymentId(id.expect("a free id"));
            ids.insert(id, index, &mut spare);
            model.insert(id, index);
        }
        assert!(ids.sealed.len() >= 2 && spare.is_empty(), "the test crosses sealed blocks");
        assert!(!ids.others.is_empty(), "the test has ids below the top");
        assert_eq!(ids.len(), model.len());
        for probe in 0..=top + 2 {
            let probe = ClientPaymentId(probe);
            assert_eq!(ids.find(probe), model.get(&probe).copied(), "{probe:?}");
        }
    }

    /// A clone keeps a block's ids but not its spare room (`Vec::clone` allocates only
    /// what is used, and a spare block clones empty), so a cloned engine's blocks grow
    /// from wherever the clone left them. Cloned every 300 ids, spare pool included,
    /// the index must still seal blocks of exactly `ID_BLOCK` ids and find every id.
    #[test]
    fn client_ids_keep_their_blocks_across_clones() {
        let mut ids = ClientIds::default();
        let mut spare: Vec<IdBlock> = (0..2).map(|_| Vec::with_capacity(ID_BLOCK)).collect();
        let last = 2 * ID_BLOCK as u64 + 500;
        for n in 1..=last {
            if n % 300 == 0 {
                (ids, spare) = (ids.clone(), spare.clone());
            }
            ids.insert(ClientPaymentId(n), n as u32, &mut spare);
        }
        assert_eq!(ids.sealed.len(), 2);
        assert!(ids.sealed.iter().all(|block| block.len() == ID_BLOCK));
        assert_eq!(ids.recent.len(), 500);
        for n in 0..=last + 1 {
            let expected = (1..=last).contains(&n).then_some(n as u32);
            assert_eq!(ids.find(ClientPaymentId(n)), expected, "{n}");
        }
    }

    /// The record derives the id and deadline it does not store, and gives back
    /// exactly the `PaymentInfo` it was made from.
    #[test]
    fn a_payment_record_round_trips_its_info() {
        let authorization = PaymentInfo {
            payment_id: PaymentId(8),
            client_payment_id: ClientPaymentId(42),
            kind: PaymentKind::Authorization,
            debit: AccountId(3),
            credit: AccountId(4),
            asset: AssetId(1),
            amount: 500,
            captured: 0,
            status: PaymentStatus::Pending,
            created_ns: 7_000,
            deadline_ns: 7_000 + 90 * NS_PER_S,
            resolved_ns: 0,
        };
        let record = Payment::unlinked(&authorization, 90);
        assert_eq!(record.info(7), authorization);
        assert_eq!((record.prev_debit, record.prev_credit), (NIL, NIL));

        let untimed = PaymentInfo { deadline_ns: 0, ..authorization };
        assert_eq!(Payment::unlinked(&untimed, 0).info(7), untimed);

        let transfer = PaymentInfo {
            kind: PaymentKind::Transfer,
            captured: 500,
            status: PaymentStatus::Completed,
            deadline_ns: 0,
            resolved_ns: 7_000,
            ..authorization
        };
        assert_eq!(Payment::unlinked(&transfer, 0).info(7), transfer);
    }
}
