//! Lookup of live orders by engine id and by (account, client id), in O(1).
//!
//! Engine ids are sequential, and most orders live briefly, so the id index is first a
//! direct-mapped ring: id `i` sits at position `i % ring.len()` unless an older live
//! order still holds that position, in which case it goes to a small hash table of
//! such long-lived orders. Consecutive orders fill consecutive positions (an insert
//! touches a cache line the previous one touched), and a lookup is one load plus the
//! check against the order table. The (account, client id) index is a hash table of
//! its own kind ([`ClientIdTable`]: one cache line per visit).
//!
//! The tables store only the 4-byte slot (the client-id table also a 4-byte hash); the
//! key is read back from the order table when a probe's hash matches. A table of (key,
//! slot) pairs is 4-6x larger, and at the sizes a busy book needs that is the
//! difference between L2 hits and L3 misses on every cancel (measured with `fincore
//! bench engine`; see BENCHMARKS.md).
//!
//! Hashing is seedless Fx, and nothing here is iterated, so the layout (which id went
//! to the ring and which to the overflow table) cannot influence any output:
//! determinism does not depend on it.

use super::client_ids::ClientIdTable;
use super::orders::{NIL, OrderStore, Slot};
use crate::types::{AccountId, ClientOrderId, OrderId};
use hashbrown::HashTable;
use rustc_hash::FxHasher;
use std::hash::Hasher;

/// Ring positions per expected live order: with the realistic mix most orders are gone
/// before their id comes round again, so few go to the overflow table.
const RING_PER_EXPECTED: usize = 8;

/// The two id indexes of the live orders.
#[derive(Clone, Debug)]
pub struct OrderIndex {
    /// Slot of the live order with id `i` at `i & ring_mask`, or `NIL`.
    ring: Box<[Slot]>,
    ring_mask: u64,
    /// Live orders in the ring (counted, not derived from the client-id index, so that
    /// the invariant check compares two independent counts).
    in_ring: usize,
    /// Live orders whose ring position an older live order held when they came.
    overflow: HashTable<Slot>,
    by_client: ClientIdTable,
}

fn hash_id(id: OrderId) -> u64 {
    let mut h = FxHasher::default();
    h.write_u64(id.0);
    h.finish()
}

fn hash_client(account: AccountId, client: ClientOrderId) -> u64 {
    let mut h = FxHasher::default();
    h.write_u32(account.0);
    h.write_u64(client.0);
    h.finish()
}

impl OrderIndex {
    /// Empty indexes with room for `capacity` orders before they grow.
    pub fn with_capacity(capacity: usize) -> OrderIndex {
        let ring_len = (capacity.max(1) * RING_PER_EXPECTED).next_power_of_two();
        OrderIndex {
            ring: vec![NIL; ring_len].into_boxed_slice(),
            ring_mask: ring_len as u64 - 1,
            in_ring: 0,
            overflow: HashTable::with_capacity(capacity / RING_PER_EXPECTED),
            by_client: ClientIdTable::with_capacity(capacity),
        }
    }

    fn ring_position(&self, id: OrderId) -> usize {
        (id.0 & self.ring_mask) as usize
    }

    /// Indexed orders (by client id; [`OrderIndex::len_by_id`] counts the other index).
    pub fn len(&self) -> usize {
        debug_assert_eq!(self.len_by_id(), self.by_client.len());
        self.by_client.len()
    }

    /// Orders indexed by id: in the ring and in the overflow table.
    pub fn len_by_id(&self) -> usize {
        self.in_ring + self.overflow.len()
    }

    /// True if nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Indexes the order stored in `slot`. Its client id must not be indexed yet.
    #[inline(always)]
    pub fn insert(&mut self, store: &OrderStore, slot: Slot) {
        let order = store.get(slot);
        let position = self.ring_position(order.id);
        if self.ring[position] == NIL {
            self.ring[position] = slot;
            self.in_ring += 1;
        } else {
            let rehash_id = |s: &Slot| hash_id(store.get(*s).id);
            self.overflow.insert_unique(hash_id(order.id), slot, rehash_id);
        }
        self.by_client.insert(hash_client(order.account, order.client_order_id), slot);
    }

    /// Removes the order stored in `slot` (call before the slot is freed).
    #[inline(always)]
    pub fn remove(&mut self, store: &OrderStore, slot: Slot) {
        let order = store.get(slot);
        let position = self.ring_position(order.id);
        if self.ring[position] == slot {
            self.ring[position] = NIL;
            self.in_ring -= 1;
        } else {
            let entry = self.overflow.find_entry(hash_id(order.id), |s| *s == slot);
            entry.expect("a live order is indexed by id").remove();
        }
        let hash = hash_client(order.account, order.client_order_id);
        let removed = self.by_client.remove(hash, slot);
        assert!(removed, "a live order is indexed by client id");
    }

    /// The slot of the live order with engine id `id`.
    #[inline(always)]
    pub fn find_id(&self, store: &OrderStore, id: OrderId) -> Option<Slot> {
        let slot = self.ring[self.ring_position(id)];
        if slot != NIL && store.get(slot).id == id {
            return Some(slot);
        }
        // Not in the ring: in the overflow table, or not live. An empty overflow table
        // (the common case) answers without hashing.
        if self.overflow.is_empty() {
            return None;
        }
        self.overflow.find(hash_id(id), |s| store.get(*s).id == id).copied()
    }

    /// The slot of `account`'s live order with client id `client`.
    #[inline(always)]
    pub fn find_client(
        &self,
        store: &OrderStore,
        account: AccountId,
        client: ClientOrderId,
    ) -> Option<Slot> {
        let matches = |s: Slot| {
            let o = store.get(s);
            o.account == account && o.client_order_id == client
        };
        self.by_client.find(hash_client(account, client), matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::orders::Order;
    use std::collections::BTreeMap;

    /// Sequential ids through a ring of 16 positions, with lifetimes long enough that
    /// many ids find their position taken and go to the overflow table: after every
    /// step each live order is found by id and by client id, and ids that left are not.
    #[test]
    fn ids_that_outlive_their_ring_position_are_found_in_the_overflow_table() {
        let mut store = OrderStore::with_capacity(256);
        let mut index = OrderIndex::with_capacity(2);
        assert_eq!(index.ring.len(), 16);
        let mut live: BTreeMap<u64, Slot> = BTreeMap::new();
        let mut rng = crate::testkit::Rng::new(7);
        let mut overflowed = 0;
        for id in 1..=5_000u64 {
            if live.len() < 40 && rng.below(100) < 60 {
                let account = AccountId(rng.below(4) as u32);
                let order = Order {
                    id: OrderId(id),
                    account,
                    client_order_id: ClientOrderId(id),
                    ..Order::EMPTY
                };
                let slot = store.insert(order).expect("room");
                index.insert(&store, slot);
                live.insert(id, slot);
            } else if !live.is_empty() {
                let nth = rng.below(live.len() as u64) as usize;
                let (&gone, &slot) = live.iter().nth(nth).expect("in range");
                index.remove(&store, slot);
                store.remove(slot);
                live.remove(&gone);
                assert_eq!(index.find_id(&store, OrderId(gone)), None);
            }
            overflowed = overflowed.max(index.overflow.len());
            assert_eq!(index.len(), live.len());
            for (&id, &slot) in &live {
                assert_eq!(index.find_id(&store, OrderId(id)), Some(slot));
                let account = store.get(slot).account;
                let by_client = index.find_client(&store, account, ClientOrderId(id));
                assert_eq!(by_client, Some(slot));
            }
        }
        assert!(overflowed >= 10, "the overflow path ran ({overflowed} at most)");
    }
}
