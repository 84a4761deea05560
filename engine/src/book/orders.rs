//! The order table: a preallocated slab of resting orders with a free list, plus the
//! two intrusive lists every order is on (its price level's queue and its account's
//! order list). Nothing here allocates after construction.

use crate::types::*;

/// Index of a slot in the [`OrderStore`]; [`NIL`] ends a list.
pub type Slot = u32;

/// The end-of-list marker.
pub const NIL: Slot = u32::MAX;

/// A resting order, in exactly one 64-byte cache line: cancels reach old orders at
/// random, and a record spanning two lines cost two cache misses instead of one. What
/// can be derived is therefore not stored: the hold is `Economics::hold_for(side,
/// price, remaining)` (`Engine::order_hold`), the owner is the account's, and the
/// post-only flag and self-trade prevention share one byte ([`OrderFlags`]). The book
/// reads only the queue fields and `remaining`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(align(64))]
pub struct Order {
    /// Engine order id.
    pub id: OrderId,
    /// Owner account.
    pub account: AccountId,
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
    /// Post-only (kept when amended) and the self-trade prevention used when an amend
    /// makes the order trade.
    pub flags: OrderFlags,
    /// Previous order in the price level's queue (older).
    pub prev: Slot,
    /// Next order in the price level's queue (newer).
    pub next: Slot,
    /// Previous order of the same account (older).
    pub account_prev: Slot,
    /// Next order of the same account (newer).
    pub account_next: Slot,
}

const _: () = assert!(std::mem::size_of::<Order>() == 64, "an order is one cache line");

impl Order {
    /// An order of zeros on no list: build others with `Order { id, .., ..Order::EMPTY }`.
    pub const EMPTY: Order = Order {
        id: OrderId(0),
        account: AccountId(0),
        instrument: InstrumentId(0),
        client_order_id: ClientOrderId(0),
        side: Side::Buy,
        price: Price(0),
        remaining: Qty(0),
        filled: Qty(0),
        flags: OrderFlags::new(false, StpMode::Allow, StpScope::Account),
        prev: NIL,
        next: NIL,
        account_prev: NIL,
        account_next: NIL,
    };
}

/// An order's post-only flag and self-trade prevention (mode and scope) in one byte:
/// bit 0 post-only, bits 1-2 the mode, bit 3 the scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderFlags(u8);

impl OrderFlags {
    /// Packs the three.
    pub const fn new(post_only: bool, stp_mode: StpMode, stp_scope: StpScope) -> OrderFlags {
        OrderFlags(post_only as u8 | (stp_mode as u8) << 1 | (stp_scope as u8) << 3)
    }

    /// Post-only: never takes liquidity.
    pub fn post_only(self) -> bool {
        self.0 & 1 != 0
    }

    /// Self-trade prevention mode.
    pub fn stp_mode(self) -> StpMode {
        match (self.0 >> 1) & 3 {
            0 => StpMode::Allow,
            1 => StpMode::CancelNewest,
            2 => StpMode::CancelOldest,
            _ => StpMode::CancelBoth,
        }
    }

    /// Self-trade prevention scope.
    pub fn stp_scope(self) -> StpScope {
        if self.0 & 8 == 0 { StpScope::Account } else { StpScope::Owner }
    }
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
