//! One side of a book: price levels in a preallocated vector, sorted so that the best
//! price is the last element. New orders arrive near the touch, so inserting or removing
//! a level moves only the few levels better than it.

use super::orders::{NIL, OrderStore, Slot};
use crate::types::{Price, Qty, Side};

/// Levels nearest the touch that `Ladder::find` scans before binary searching. Eight
/// 32-byte levels are four cache lines.
const TOUCH_SCAN_LEVELS: usize = 8;

/// One price level: a FIFO queue of orders linked through the order table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    /// Price in ticks.
    pub price: Price,
    /// Sum of the queue's remaining quantities.
    pub qty: Qty,
    /// Orders in the queue.
    pub orders: u32,
    /// Oldest order (first to fill).
    pub head: Slot,
    /// Newest order.
    pub tail: Slot,
}

/// The levels of one side, best last.
#[derive(Clone, Debug)]
pub struct Ladder {
    side: Side,
    /// +1 for bids, -1 for asks: `price * sign` is the sort key, larger is better.
    sign: i64,
    levels: Vec<Level>,
    levels_max: usize,
}

impl Ladder {
    /// An empty side with room for `levels_max` levels, allocated now.
    pub fn new(side: Side, levels_max: usize) -> Ladder {
        let sign = match side {
            Side::Buy => 1,
            Side::Sell => -1,
        };
        Ladder { side, sign, levels: Vec::with_capacity(levels_max), levels_max }
    }

    /// Which side this is.
    pub fn side(&self) -> Side {
        self.side
    }

    /// Sort key: larger is better on both sides, so both sides are ascending vectors.
    /// Multiplying instead of branching on the side keeps the binary search branch-free
    /// in its comparator (prices are positive, so the negation cannot overflow).
    fn key(&self, price: Price) -> i64 {
        price.0 * self.sign
    }

    /// `Ok(index)` of the level at `price`, or `Err(index)` where it would be inserted.
    ///
    /// Most orders arrive, cancel and fill within a few ticks of the touch, i.e. at the
    /// end of the vector, so the last few levels are scanned linearly first (sequential,
    /// predictable loads); only prices deeper in the book pay for a binary search.
    fn find(&self, price: Price) -> Result<usize, usize> {
        let key = self.key(price);
        let len = self.levels.len();
        let deep = len.saturating_sub(TOUCH_SCAN_LEVELS);
        for index in (deep..len).rev() {
            let here = self.key(self.levels[index].price);
            if here == key {
                return Ok(index);
            }
            if here < key {
                return Err(index + 1);
            }
        }
        // Every scanned level is better than `price`: it lies in the deep part.
        self.levels[..deep].binary_search_by_key(&key, |level| self.key(level.price))
    }

    /// The best level, if any.
    pub fn best(&self) -> Option<&Level> {
        self.levels.last()
    }

    /// The level at `price`, if any.
    pub fn level(&self, price: Price) -> Option<&Level> {
        self.find(price).ok().map(|i| &self.levels[i])
    }

    /// Levels from best to worst.
    pub fn iter_best_first(&self) -> impl Iterator<Item = &Level> {
        self.levels.iter().rev()
    }

    /// Number of levels.
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// True if the side has no orders.
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// True if an order at `price` can be added without exceeding the level limit.
    pub fn has_room_for(&self, price: Price) -> bool {
        self.levels.len() < self.levels_max || self.find(price).is_ok()
    }

    /// True if `price` is at least as good as `other` for this side.
    pub fn at_least_as_good(&self, price: Price, other: Price) -> bool {
        self.key(price) >= self.key(other)
    }

    /// Appends the order in `slot` to the queue at its price (newest, lowest priority).
    /// Returns the level's total quantity and order count afterwards.
    pub fn push(&mut self, store: &mut OrderStore, slot: Slot) -> (Qty, u32) {
        let (price, qty) = {
            let order = store.get(slot);
            assert_eq!(order.side, self.side);
            assert!(order.remaining.0 > 0);
            (order.price, order.remaining)
        };
        let index = match self.find(price) {
            Ok(index) => index,
            Err(index) => {
                assert!(self.levels.len() < self.levels_max, "caller checks has_room_for");
                let level = Level { price, qty: Qty(0), orders: 0, head: NIL, tail: NIL };
                self.levels.insert(index, level);
                index
            }
        };
        let level = &mut self.levels[index];
        let tail = level.tail;
        {
            let order = store.get_mut(slot);
            order.prev = tail;
            order.next = NIL;
        }
        if tail == NIL {
            level.head = slot;
        } else {
            store.get_mut(tail).next = slot;
        }
        level.tail = slot;
        level.orders += 1;
        level.qty.0 += qty.0;
        (level.qty, level.orders)
    }

    /// Unlinks the order in `slot` from its queue; drops the level if it empties.
    /// Returns the level's total quantity and order count afterwards (zero if gone).
    pub fn unlink(&mut self, store: &mut OrderStore, slot: Slot) -> (Qty, u32) {
        let order = *store.get(slot);
        let index = self.find(order.price).expect("a resting order's level exists");
        let level = &mut self.levels[index];
        if order.prev == NIL {
            level.head = order.next;
        } else {
            store.get_mut(order.prev).next = order.next;
        }
        if order.next == NIL {
            level.tail = order.prev;
        } else {
            store.get_mut(order.next).prev = order.prev;
        }
        level.orders -= 1;
        level.qty.0 -= order.remaining.0;
        assert!(level.qty.0 >= 0);
        let after = (level.qty, level.orders);
        if level.orders == 0 {
            assert_eq!(level.qty.0, 0);
            self.levels.remove(index);
        }
        let order = store.get_mut(slot);
        order.prev = NIL;
        order.next = NIL;
        after
    }

    /// Lowers the remaining quantity of a queued order in place (a fill or an amend
    /// down), keeping its place. The order must stay positive; a full fill unlinks.
    /// Returns the level's total quantity and order count afterwards.
    pub fn reduce(&mut self, store: &mut OrderStore, slot: Slot, by: Qty) -> (Qty, u32) {
        let order = store.get_mut(slot);
        assert!(by.0 > 0 && by.0 < order.remaining.0);
        order.remaining.0 -= by.0;
        let price = order.price;
        let index = self.find(price).expect("a resting order's level exists");
        let level = &mut self.levels[index];
        level.qty.0 -= by.0;
        (level.qty, level.orders)
    }
}
