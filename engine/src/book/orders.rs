//! The order table: a preallocated slab of resting orders with a free list, plus the
//! two intrusive lists every order is on (its price level's queue and its account's
//! order list). Nothing here allocates after construction.

use crate::types::*;

/// Index of a slot in the [`OrderStore`]; [`NIL`] ends a list.
pub type Slot = u32;

/// The end-of-list marker.
pub const NIL: Slot = u32::MAX;

/// A resting order. The book reads only the queue fields and `remaining`; the money
/// field `hold` belongs to the engine's ledger logic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order {
    /// Engine order id.
    pub id: OrderId,
    /// Owner account.
    pub account: AccountId,
    /// The account's owner, for owner-scoped self-trade prevention.
    pub owner: UserId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// The client's id.
    pub client_order_id: ClientOrderId,
    /// Side.
    pub side: Side,
    /// Limit price in ticks.
    pub price: Price,
    /// Open quantity in lots; always positive while the order rests.
    pub remaining: Qty,
    /// Quantity filled so far.
    pub filled: Qty,
    /// Amount held for the remaining quantity (quote for a buy, base for a sell).
    pub hold: i64,
    /// Post-only orders stay post-only when amended.
    pub post_only: bool,
    /// Self-trade prevention used when an amend makes this order trade.
    pub stp_mode: StpMode,
    /// Scope of that prevention.
    pub stp_scope: StpScope,
    /// Previous order in the price level's queue (older).
    pub prev: Slot,
    /// Next order in the price level's queue (newer).
    pub next: Slot,
    /// Previous order of the same account (older).
    pub account_prev: Slot,
    /// Next order of the same account (newer).
    pub account_next: Slot,
}

impl Order {
    /// An order of zeros on no list: build others with `Order { id, .., ..Order::EMPTY }`.
    pub const EMPTY: Order = Order {
        id: OrderId(0),
        account: AccountId(0),
        owner: UserId(0),
        instrument: InstrumentId(0),
        client_order_id: ClientOrderId(0),
        side: Side::Buy,
        price: Price(0),
        remaining: Qty(0),
        filled: Qty(0),
        hold: 0,
        post_only: false,
        stp_mode: StpMode::Allow,
        stp_scope: StpScope::Account,
        prev: NIL,
        next: NIL,
        account_prev: NIL,
        account_next: NIL,
    };
}

/// Fixed-capacity slab of orders.
#[derive(Clone, Debug)]
pub struct OrderStore {
    slots: Vec<Order>,
    free: Vec<Slot>,
}

impl OrderStore {
    /// A store for at most `capacity` live orders, all memory taken now.
    pub fn with_capacity(capacity: u32) -> OrderStore {
        let slots = vec![Order::EMPTY; capacity as usize];
        // Pop from the end hands out slot 0 first, which keeps fresh engines' memory
        // touched in order.
        let free = (0..capacity).rev().collect();
        OrderStore { slots, free }
    }

    /// Live orders.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// True if no order is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if at least one more order fits.
    pub fn has_room(&self) -> bool {
        !self.free.is_empty()
    }

    /// Stores an order; `None` when full. The caller checks [`OrderStore::has_room`]
    /// before changing anything else, so `None` here is a bug.
    pub fn insert(&mut self, order: Order) -> Option<Slot> {
        let slot = self.free.pop()?;
        self.slots[slot as usize] = order;
        Some(slot)
    }

    /// Frees a slot. Its links must already be cut.
    pub fn remove(&mut self, slot: Slot) -> Order {
        let order = self.slots[slot as usize];
        assert!(order.remaining.0 >= 0);
        self.slots[slot as usize] = Order::EMPTY;
        self.free.push(slot);
        order
    }

    /// The order in a live slot.
    pub fn get(&self, slot: Slot) -> &Order {
        &self.slots[slot as usize]
    }

    /// The order in a live slot, mutably.
    pub fn get_mut(&mut self, slot: Slot) -> &mut Order {
        &mut self.slots[slot as usize]
    }
}
