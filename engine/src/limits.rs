//! Capacities. Every table in the engine has a named maximum, allocated up front, so
//! that the steady state never allocates and an overload is a reject, not an OOM.

/// Asset slots per account. Balances are a fixed array per account; 32 covers every
/// venue we target (a handful of fiat currencies and coins) at 512 bytes per account.
pub const ASSETS_MAX: usize = 32;

/// Most payments one `Payments` query returns.
pub const PAYMENTS_PAGE_MAX: u16 = 1_000;

/// Instrument ids are below this. Books are allocated when an instrument is created.
pub const INSTRUMENTS_MAX: usize = 1024;

/// Sizes chosen when the engine is built. They shape behaviour (a full table rejects),
/// so they are part of the state hash: a replay with other limits is detected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineLimits {
    /// User ids are below this.
    pub users_max: u32,
    /// Account ids are below this.
    pub accounts_max: u32,
    /// Live (resting) orders across all books.
    pub orders_max: u32,
    /// Price levels per side of one book.
    pub levels_per_side_max: u32,
    /// Live orders of one account.
    pub open_orders_per_account_max: u32,
    /// Payments recorded for the life of the journal (every transfer, authorization,
    /// deposit and withdrawal is kept, for idempotency and history). Unlike the order
    /// table, payment memory is not allocated up front: it grows as payments arrive,
    /// about 150 bytes each, and a full table rejects new payments (`PaymentsFull`).
    pub payments_max: u32,
    /// Sizing hint, not a limit: room for this many payments is allocated and touched
    /// (page-faulted) when the engine is built: the payment table and the velocity log
    /// take the first `payments_expected` payments without allocating or faulting
    /// pages on the command path, and client-id blocks after an account's first 4 096
    /// ids come from a pool of the same size (an account's first block, and its
    /// outgoing entry, still grow as they go). Beyond it everything grows as it needs,
    /// never copying what is there. Measured: page faults of growing tables are most
    /// of a payment's p99.9 and about a quarter of its mean cost (BENCHMARKS.md).
    /// 104 bytes each (64 in the payment table, 24 in the velocity log, 16 in the
    /// client-id pool). Not part of the state hash.
    pub payments_expected: u32,
    /// Sizing hint, not a limit: the order-id indexes are allocated for this many live
    /// orders (the id ring takes 32 bytes per expected order) and grow (allocating) only
    /// when the live orders, or the long-lived ones among them, reach a new high. It
    /// does not change behaviour, so it is not part of the state hash.
    pub orders_expected: u32,
}

/// Empty chunks, each with room for `chunk` items, with room for `items` in all already
/// allocated and touched (page-faulted), so that filling them neither allocates nor
/// faults pages on the command path. In the order to be taken with `pop` (the first
/// chunk last). `placeholder` must not be all zero bytes: the compiler may turn an
/// allocation filled with zeros into `calloc`, which leaves fresh pages untouched.
pub(crate) fn prefaulted_chunks<T: Clone>(
    items: usize,
    chunk: usize,
    placeholder: T,
) -> Vec<Vec<T>> {
    let mut chunks: Vec<Vec<T>> = (0..items.div_ceil(chunk))
        .map(|n| {
            let mut room = Vec::with_capacity(chunk);
            // Writing the slots is what makes the kernel map their pages now.
            room.resize(chunk.min(items - n * chunk), placeholder.clone());
            room.clear();
            room
        })
        .collect();
    chunks.reverse();
    chunks
}

impl Default for EngineLimits {
    /// Sized for the demo and the benchmarks: one million resting orders take about
    /// 100 MiB for the order table plus the two id indexes.
    fn default() -> EngineLimits {
        EngineLimits {
            users_max: 1 << 16,
            accounts_max: 1 << 20,
            orders_max: 1 << 20,
            levels_per_side_max: 1 << 14,
            open_orders_per_account_max: 1 << 16,
            payments_max: 1 << 24,
            payments_expected: 1 << 12,
            orders_expected: 1 << 14,
        }
    }
}
