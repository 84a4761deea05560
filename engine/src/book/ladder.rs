//! One side of a book: price levels in a preallocated vector, sorted so that the best
//! price is the last element. New orders arrive near the touch, so inserting or removing
//! a level moves only the few levels better than it, and finding one looks only at the
//! levels between it and the touch.

use super::orders::{NIL, OrderStore, Slot};
use crate::types::{Price, Qty, Side};

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
    /// Keys are distinct integers in ascending order, so a price `d` ticks worse than
    /// the best level can only be among the last `d + 1` levels: the search never looks
    /// further from the touch than the price itself is. Most orders arrive, cancel and
    /// fill within a few ticks of the touch, where the levels are usually contiguous,
    /// and there the first probe (the exact position in a contiguous run) hits.
    fn find(&self, price: Price) -> Result<usize, usize> {
        let key = self.key(price);
        let Some(best) = self.levels.last() else { return Err(0) };
        let best_key = self.key(best.price);
        let last = self.levels.len() - 1;
        if key >= best_key {
            return if key == best_key { Ok(last) } else { Err(last + 1) };
        }
        // Both keys have the sign of this side, so the difference cannot overflow.
        let below = (best_key - key) as u64;
        let lowest = last - usize::try_from(below).unwrap_or(usize::MAX).min(last);
        let window = &self.levels[lowest..last];
        match window.first().map(|level| self.key(level.price)) {
            Some(first) if first == key => Ok(lowest),
            _ => match window.binary_search_by_key(&key, |level| self.key(level.price)) {
                Ok(i) => Ok(lowest + i),
                Err(i) => Err(lowest + i),
            },
        }
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
    #[inline(always)]
    pub fn has_room_for(&self, price: Price) -> bool {
        self.levels.len() < self.levels_max || self.find(price).is_ok()
    }

    /// True if `price` is at least as good as `other` for this side.
    pub fn at_least_as_good(&self, price: Price, other: Price) -> bool {
        self.key(price) >= self.key(other)
    }

    /// Appends the order in `slot` to the queue at its price (newest, lowest priority).
    /// Returns the level's total quantity and order count afterwards.
    #[inline(always)]
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
    #[inline(always)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::orders::Order;
    use crate::types::OrderId;
    use std::collections::BTreeMap;

    /// Both sides, orders added and removed at pseudo-random prices (dense near a touch
    /// that wanders, sparse far from it), checked after every step against a map of
    /// price -> (qty, orders): `find` for every price in range, and the level order.
    #[test]
    fn ladder_matches_a_sorted_map_through_random_pushes_and_unlinks() {
        for side in [Side::Buy, Side::Sell] {
            let mut store = OrderStore::with_capacity(4_096);
            let mut ladder = Ladder::new(side, 512);
            let mut model: BTreeMap<i64, (i64, u32)> = BTreeMap::new();
            let mut live: Vec<Slot> = Vec::new();
            let mut rng = crate::testkit::Rng::new(0x9e37_79b9_7f4a_7c15_u64);
            let mut next = move |below: u64| rng.below(below);
            let mut touch = 1_000i64;
            for step in 0..20_000u64 {
                touch = (touch + next(3) as i64 - 1).clamp(100, 1_900);
                if live.len() < 8 || next(100) < 55 {
                    // Mostly within 20 ticks of the touch, now and then far away.
                    let offset = if next(10) == 0 { next(900) } else { next(20) } as i64;
                    let price = (touch - offset).max(1);
                    if ladder.len() == 512 && ladder.find(Price(price)).is_err() {
                        continue;
                    }
                    let qty = 1 + next(50) as i64;
                    let order = Order {
                        id: OrderId(step),
                        side,
                        price: Price(price),
                        remaining: Qty(qty),
                        ..Order::EMPTY
                    };
                    let slot = store.insert(order).expect("room");
                    ladder.push(&mut store, slot);
                    let level = model.entry(price).or_default();
                    level.0 += qty;
                    level.1 += 1;
                    live.push(slot);
                } else {
                    let slot = live.swap_remove(next(live.len() as u64) as usize);
                    let order = *store.get(slot);
                    ladder.unlink(&mut store, slot);
                    store.remove(slot);
                    let level = model.get_mut(&order.price.0).expect("modelled");
                    level.0 -= order.remaining.0;
                    level.1 -= 1;
                    if level.1 == 0 {
                        model.remove(&order.price.0);
                    }
                }
                let levels: Vec<(i64, i64, u32)> =
                    ladder.iter_best_first().map(|l| (l.price.0, l.qty.0, l.orders)).collect();
                let expected: Vec<(i64, i64, u32)> = match side {
                    Side::Buy => model.iter().rev().map(|(p, (q, n))| (*p, *q, *n)).collect(),
                    Side::Sell => model.iter().map(|(p, (q, n))| (*p, *q, *n)).collect(),
                };
                assert_eq!(levels, expected, "{side:?} step {step}");
                if step % 97 == 0 {
                    for price in 1..2_000 {
                        let found = ladder.find(Price(price)).is_ok();
                        assert_eq!(found, model.contains_key(&price), "{side:?} price {price}");
                        assert_eq!(
                            ladder.level(Price(price)).map(|l| l.price.0),
                            model.get(&price).map(|_| price)
                        );
                    }
                }
            }
        }
    }
}
