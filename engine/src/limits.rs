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

impl EngineLimits {
    /// The largest limits any engine is built with: 16 times the defaults for users and
    /// orders, 4 times for accounts, 64 times for levels. `Engine::new` allocates the
    /// order table for `orders_max` up front (about 100 bytes an order) and account ids
    /// index a dense table (about half a KiB an account), so neither an operator's typo
    /// nor a corrupted snapshot may ask for an unbounded allocation; these ceilings keep
    /// the worst case near 2 GiB each while leaving room far above any configuration we
    /// run; `payments_expected` (allocated and touched up front, about 100 bytes a
    /// payment) has one too. The open-order and payment-count limits allocate nothing
    /// of their own, so they have no ceiling; `orders_expected` is capped by
    /// `orders_max` where it is used (the id ring takes 32 bytes an order: at most
    /// 512 MiB at the ceiling). The configuration, the data directory's limits file and
    /// the snapshot loader all hold to them, so that every snapshot a server writes, it
    /// can load.
    pub const CEILING: EngineLimits = EngineLimits {
        users_max: 1 << 20,
        accounts_max: 1 << 22,
        orders_max: 1 << 24,
        levels_per_side_max: 1 << 20,
        open_orders_per_account_max: u32::MAX,
        payments_max: u32::MAX,
        payments_expected: 1 << 24,
        orders_expected: u32::MAX,
    };

    /// The capacities (each at least 1), by name.
    fn capacities(&self) -> [(&'static str, u32); 6] {
        [
            ("users_max", self.users_max),
            ("accounts_max", self.accounts_max),
            ("orders_max", self.orders_max),
            ("levels_per_side_max", self.levels_per_side_max),
            ("open_orders_per_account_max", self.open_orders_per_account_max),
            ("payments_max", self.payments_max),
        ]
    }

    /// Every limit by name: the capacities, then the two sizing hints.
    fn named(&self) -> impl Iterator<Item = (&'static str, u32)> {
        let hints = [
            ("payments_expected", self.payments_expected),
            ("orders_expected", self.orders_expected),
        ];
        self.capacities().into_iter().chain(hints)
    }

    /// The first limit above [`EngineLimits::CEILING`], as (name, value, ceiling).
    pub fn above_ceiling(&self) -> Option<(&'static str, u32, u32)> {
        let pairs = self.named().zip(EngineLimits::CEILING.named());
        pairs.map(|((name, value), (_, ceiling))| (name, value, ceiling)).find(|(_, v, c)| v > c)
    }

    /// Checks limits an operator gives (the configuration, a data directory's limits
    /// file): every capacity at least 1 (the two sizing hints may be 0) and none above
    /// [`EngineLimits::CEILING`].
    pub fn check(&self) -> Result<(), LimitsError> {
        if let Some((name, _)) = self.capacities().into_iter().find(|(_, value)| *value == 0) {
            return Err(LimitsError::Zero(name));
        }
        match self.above_ceiling() {
            Some((name, value, ceiling)) => Err(LimitsError::AboveCeiling { name, value, ceiling }),
            None => Ok(()),
        }
    }
}

/// Why [`EngineLimits::check`] refused; displayed with the field's name, e.g.
/// `orders_max must be at least 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitsError {
    /// A capacity is 0.
    Zero(&'static str),
    /// A limit is above [`EngineLimits::CEILING`].
    AboveCeiling {
        /// The field.
        name: &'static str,
        /// Its value.
        value: u32,
        /// Its ceiling.
        ceiling: u32,
    },
}

impl std::fmt::Display for LimitsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitsError::Zero(name) => write!(f, "{name} must be at least 1"),
            LimitsError::AboveCeiling { name, value, ceiling } => {
                write!(f, "{name} {value} is above {ceiling}, the most an engine is built with")
            }
        }
    }
}

impl std::error::Error for LimitsError {}

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
