//! Order books: price-time priority queues per instrument. The book knows nothing about
//! money; holds and settlement live in the engine's ledger code.

mod client_ids;
mod index;
mod ladder;
mod orders;

pub use index::OrderIndex;
pub use ladder::{Ladder, Level};
pub use orders::{NIL, Order, OrderFlags, OrderStore, Slot};

use crate::types::{Price, Side};

/// Both sides of one instrument's book.
#[derive(Clone, Debug)]
pub struct Book {
    /// Buy orders, best (highest) last.
    pub bids: Ladder,
    /// Sell orders, best (lowest) last.
    pub asks: Ladder,
}

impl Book {
    /// An empty book with room for `levels_max` levels per side.
    pub fn new(levels_max: usize) -> Book {
        Book { bids: Ladder::new(Side::Buy, levels_max), asks: Ladder::new(Side::Sell, levels_max) }
    }

    /// The side orders of `side` rest on.
    pub fn side(&self, side: Side) -> &Ladder {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    /// The side orders of `side` rest on, mutably.
    pub fn side_mut(&mut self, side: Side) -> &mut Ladder {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// True if an order of `side` limited at `limit` would trade on arrival.
    pub fn would_trade(&self, side: Side, limit: Price) -> bool {
        let best = self.side(side.opposite()).best();
        best.is_some_and(|level| Book::crosses(side, limit, level.price))
    }

    /// True if an order of `side` limited at `limit` would trade with a resting order
    /// at `resting` on the other side.
    pub fn crosses(side: Side, limit: Price, resting: Price) -> bool {
        match side {
            Side::Buy => limit >= resting,
            Side::Sell => limit <= resting,
        }
    }
}
