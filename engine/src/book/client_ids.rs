//! The index of live orders by (account, client order id): an open-addressing table
//! with linear probing, whose entries are the key's 32-bit hash and the order's slot.
//!
//! Why not a general hash table: every order passes through this index three times
//! (the duplicate check when it arrives, the insert when it rests, the removal when it
//! leaves), and by the time it leaves its entry is no longer in cache. A table that
//! keeps control bytes apart from its entries touches two cache lines per visit (the
//! control group, then the entry); here the hash and the slot sit side by side, so a
//! visit touches one line, usually the home line of the key (8 entries per line, load
//! at most one half). Removal shifts the entries after the removed one back instead of
//! leaving a tombstone, so the table does not degrade with churn. BENCHMARKS.md
//! ("Session 19") has the measurement that justifies it.
//!
//! The key itself is not stored: a probe whose hash matches reads the key back from the
//! order table. Nothing here is iterated, so the layout cannot influence any output.

use super::orders::{NIL, Slot};

/// One position of the table: the low 32 bits of the key's hash and the order's slot,
/// or `slot == NIL` for an empty position.
#[derive(Clone, Copy, Debug)]
struct Entry {
    hash: u32,
    slot: Slot,
}

const EMPTY: Entry = Entry { hash: 0, slot: NIL };

/// Slots of live orders, found by the hash of their (account, client id) key.
#[derive(Clone, Debug)]
pub struct ClientIdTable {
    entries: Box<[Entry]>,
    /// `entries.len() - 1` (the length is a power of two).
    mask: usize,
    len: usize,
}

impl ClientIdTable {
    /// An empty table that takes `capacity` entries before it grows.
    pub fn with_capacity(capacity: usize) -> ClientIdTable {
        let positions = (capacity.max(4) * 2).next_power_of_two();
        ClientIdTable {
            entries: vec![EMPTY; positions].into_boxed_slice(),
            mask: positions - 1,
            len: 0,
        }
    }

    /// Entries in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    fn home(&self, hash: u32) -> usize {
        hash as usize & self.mask
    }

    /// The slot of the entry with this hash for which `is_key` holds, if any.
    #[inline(always)]
    pub fn find(&self, hash: u64, mut is_key: impl FnMut(Slot) -> bool) -> Option<Slot> {
        let hash = hash as u32;
        let at = self.position(hash, |entry| entry.hash == hash && is_key(entry.slot))?;
        Some(self.entries[at].slot)
    }

    /// The position of the first entry of `hash`'s run for which `hit` holds, if any
    /// (a run ends at the first empty position from the home on).
    #[inline(always)]
    fn position(&self, hash: u32, mut hit: impl FnMut(Entry) -> bool) -> Option<usize> {
        let mut at = self.home(hash);
        loop {
            let entry = self.entries[at];
            if entry.slot == NIL {
                return None;
            }
            if hit(entry) {
                return Some(at);
            }
            at = (at + 1) & self.mask;
        }
    }

    /// Adds `slot` under `hash` (its key must not be in the table).
    #[inline(always)]
    pub fn insert(&mut self, hash: u64, slot: Slot) {
        debug_assert_ne!(slot, NIL);
        if 2 * (self.len + 1) > self.entries.len() {
            self.grow();
        }
        self.place(Entry { hash: hash as u32, slot });
        self.len += 1;
    }

    /// Puts `entry` in the first empty position from its home on. (Its own loop: one
    /// probe returning either the hit or the run's end, shared with `find` and `remove`,
    /// cost 5 instructions and 0.5 mispredicted branches more per command in callgrind.)
    fn place(&mut self, entry: Entry) {
        let mut at = self.home(entry.hash);
        while self.entries[at].slot != NIL {
            at = (at + 1) & self.mask;
        }
        self.entries[at] = entry;
    }

    /// Doubles the table (allocates: only when the live orders reach a new high). The
    /// stored hashes place the entries again: no key is read back.
    #[cold]
    fn grow(&mut self) {
        let positions = self.entries.len() * 2;
        let old = std::mem::replace(&mut self.entries, vec![EMPTY; positions].into_boxed_slice());
        self.mask = positions - 1;
        for entry in old.iter().filter(|e| e.slot != NIL) {
            self.place(*entry);
        }
    }

    /// Removes the entry of `slot`, stored under `hash`. Returns false if there is none.
    #[inline(always)]
    pub fn remove(&mut self, hash: u64, slot: Slot) -> bool {
        let Some(mut hole) = self.position(hash as u32, |entry| entry.slot == slot) else {
            return false;
        };
        // Backward shift: every later entry of the run that may sit at the hole (its
        // home is not between the hole and where it sits) moves into it, until the run
        // ends at an empty position. Probes then never meet a gap inside a run.
        let mut at = hole;
        loop {
            at = (at + 1) & self.mask;
            let entry = self.entries[at];
            if entry.slot == NIL {
                break;
            }
            let home = self.home(entry.hash);
            if (at.wrapping_sub(home) & self.mask) >= (at.wrapping_sub(hole) & self.mask) {
                self.entries[hole] = entry;
                hole = at;
            }
        }
        self.entries[hole] = EMPTY;
        self.len -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Keys whose hashes crowd a few home positions (so long runs form and are shifted
    /// back), against a map: after every step each key in the map is found with its
    /// slot, removed keys are not, and the table grows from its smallest size.
    #[test]
    fn the_table_agrees_with_a_map_through_crowded_inserts_and_removes() {
        // The key of slot `s` is `keys[s]`. Only 8 distinct hashes, whose homes are
        // the last positions of the table at every size: runs wrap around its end, and
        // finding a key takes the key check, not just the hash.
        let hash_of = |key: u64| (key << 32) | u64::from(u32::MAX - (key % 8) as u32 * 3);
        let mut keys: Vec<u64> = Vec::new();
        let mut table = ClientIdTable::with_capacity(1);
        let mut model: BTreeMap<u64, Slot> = BTreeMap::new();
        let mut rng = crate::testkit::Rng::new(11);
        let mut most = 0;
        for step in 0..20_000u64 {
            if model.len() < 300 && rng.below(100) < 55 {
                let key = step;
                let slot = keys.len() as Slot;
                keys.push(key);
                table.insert(hash_of(key), slot);
                model.insert(key, slot);
            } else if !model.is_empty() {
                let nth = rng.below(model.len() as u64) as usize;
                let (&key, &slot) = model.iter().nth(nth).expect("in range");
                assert!(table.remove(hash_of(key), slot));
                assert!(!table.remove(hash_of(key), slot), "removed once");
                model.remove(&key);
                assert_eq!(table.find(hash_of(key), |s| keys[s as usize] == key), None);
            }
            most = most.max(model.len());
            assert_eq!(table.len(), model.len());
            if step % 97 == 0 || model.len() < 20 {
                for (&key, &slot) in &model {
                    assert_eq!(table.find(hash_of(key), |s| keys[s as usize] == key), Some(slot));
                }
            }
        }
        assert!(most >= 250, "the table held {most} keys at most");
        assert!(table.entries.len() >= 512, "the table grew to {}", table.entries.len());
    }
}
