//! Lookup of live orders by engine id and by (account, client id), in O(1).
//!
//! Both tables store only the 4-byte slot; the key is read back from the order table
//! when a probe's tag matches. A table of (key, slot) pairs is 4-6x larger, and at the
//! sizes a busy book needs that is the difference between L2 hits and L3 misses on
//! every cancel (measured with `fincore bench engine`; see BENCHMARKS.md).
//!
//! Hashing is seedless Fx, and the tables are never iterated, so their internal layout
//! cannot influence any output: determinism does not depend on them.

use super::orders::{OrderStore, Slot};
use crate::types::{AccountId, ClientOrderId, OrderId};
use hashbrown::HashTable;
use rustc_hash::FxHasher;
use std::hash::Hasher;

/// The two id indexes of the live orders.
#[derive(Clone, Debug)]
pub struct OrderIndex {
    by_id: HashTable<Slot>,
    by_client: HashTable<Slot>,
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
        OrderIndex {
            by_id: HashTable::with_capacity(capacity),
            by_client: HashTable::with_capacity(capacity),
        }
    }

    /// Indexed orders.
    pub fn len(&self) -> usize {
        debug_assert_eq!(self.by_id.len(), self.by_client.len());
        self.by_id.len()
    }

    /// True if nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Indexes the order stored in `slot`. Its client id must not be indexed yet.
    pub fn insert(&mut self, store: &OrderStore, slot: Slot) {
        let order = store.get(slot);
        let rehash_id = |s: &Slot| hash_id(store.get(*s).id);
        self.by_id.insert_unique(hash_id(order.id), slot, rehash_id);
        let rehash_client = |s: &Slot| {
            let o = store.get(*s);
            hash_client(o.account, o.client_order_id)
        };
        let hash = hash_client(order.account, order.client_order_id);
        self.by_client.insert_unique(hash, slot, rehash_client);
    }

    /// Removes the order stored in `slot` (call before the slot is freed).
    pub fn remove(&mut self, store: &OrderStore, slot: Slot) {
        let order = store.get(slot);
        let entry = self.by_id.find_entry(hash_id(order.id), |s| *s == slot);
        entry.expect("a live order is indexed by id").remove();
        let hash = hash_client(order.account, order.client_order_id);
        let entry = self.by_client.find_entry(hash, |s| *s == slot);
        entry.expect("a live order is indexed by client id").remove();
    }

    /// The slot of the live order with engine id `id`.
    pub fn find_id(&self, store: &OrderStore, id: OrderId) -> Option<Slot> {
        self.by_id.find(hash_id(id), |s| store.get(*s).id == id).copied()
    }

    /// The slot of `account`'s live order with client id `client`.
    pub fn find_client(
        &self,
        store: &OrderStore,
        account: AccountId,
        client: ClientOrderId,
    ) -> Option<Slot> {
        let matches = |s: &Slot| {
            let o = store.get(*s);
            o.account == account && o.client_order_id == client
        };
        self.by_client.find(hash_client(account, client), matches).copied()
    }
}
