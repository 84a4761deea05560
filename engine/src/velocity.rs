//! The velocity log: every completed debit that still counts toward its account's
//! rolling 24-hour outgoing total, oldest first, in one engine-wide queue.
//!
//! Debits are appended in engine-time order (engine time never runs backwards), so the
//! debits that stop counting are always at the front: [`Engine::apply`] drops them
//! before each command runs, and each account keeps only the running sum of what is
//! left (`Outgoing::window_sum`). A payment's velocity check is then one read of that
//! sum, and recording a debit is one append here, instead of a queue per account.
//!
//! [`Engine::apply`]: crate::Engine::apply

use crate::types::{AccountId, AssetId};
use std::collections::VecDeque;

/// Length of the velocity window: a rolling 24 hours of engine time. A debit made at
/// `t` counts while `now - t < VELOCITY_WINDOW_NS`.
pub const VELOCITY_WINDOW_NS: u64 = 24 * 60 * 60 * 1_000_000_000;

/// One completed debit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Debit {
    /// Engine time it completed at.
    pub time_ns: u64,
    /// Always positive.
    pub amount: i64,
    pub account: AccountId,
    pub asset: AssetId,
}

impl Debit {
    /// A placeholder, for touching memory (not all zeros: see `prefaulted_chunks`).
    const EMPTY: Debit =
        Debit { time_ns: u64::MAX, amount: 0, account: AccountId(0), asset: AssetId(0) };

    /// True if it no longer counts at engine time `now` (which is never before it).
    pub fn expired(&self, now: u64) -> bool {
        // The difference, not `time + window`, which could overflow near u64::MAX.
        now - self.time_ns >= VELOCITY_WINDOW_NS
    }
}

/// Debits oldest first, stored in fixed-size chunks: appending never copies the debits
/// already there (a single growing queue holding a day of a busy venue's debits would
/// copy hundreds of megabytes on the engine thread), and a chunk emptied at the front
/// is kept to be reused at the back (so the log's memory stays at its high-water mark:
/// the larger of what was allocated up front and the most debits a day has held).
#[derive(Clone, Debug, Default)]
pub(crate) struct VelocityLog {
    /// Every chunk has room for `CHUNK` debits; only the last is partly filled.
    chunks: VecDeque<Vec<Debit>>,
    /// Debits of the first chunk already taken off the front.
    head: usize,
    len: usize,
    /// Allocated, touched and empty chunks, for the next ones needed.
    spare: Vec<Vec<Debit>>,
}

/// Debits per chunk (96 KiB).
const CHUNK: usize = 4096;

impl VelocityLog {
    /// An empty log with room for `expected` debits already allocated and touched, so
    /// that they neither allocate nor fault pages on the command path.
    pub fn prefaulted(expected: usize) -> VelocityLog {
        let spare = crate::limits::prefaulted_chunks(expected, CHUNK, Debit::EMPTY);
        VelocityLog { spare, ..VelocityLog::default() }
    }

    /// Appends a debit no older than the newest one. (Inlined: it is on every debit's
    /// path, and out of line it measured 15 instructions more per transfer.)
    #[inline(always)]
    pub fn push(&mut self, debit: Debit) {
        debug_assert!(self.iter().last().is_none_or(|last| last.time_ns <= debit.time_ns));
        match self.chunks.back_mut() {
            Some(chunk) if chunk.len() < CHUNK => chunk.push(debit),
            _ => {
                let mut chunk = self.spare.pop().unwrap_or_else(|| Vec::with_capacity(CHUNK));
                chunk.push(debit);
                self.chunks.push_back(chunk);
            }
        }
        self.len += 1;
    }

    /// The oldest debit.
    pub fn front(&self) -> Option<&Debit> {
        self.chunks.front()?.get(self.head)
    }

    /// When the oldest debit stops counting (saturating), `u64::MAX` for an empty log.
    pub fn next_expiry(&self) -> u64 {
        self.front().map_or(u64::MAX, |d| d.time_ns.saturating_add(VELOCITY_WINDOW_NS))
    }

    /// Takes the oldest debit off.
    pub fn pop_front(&mut self) -> Option<Debit> {
        let chunk = self.chunks.front()?;
        let debit = *chunk.get(self.head)?;
        self.head += 1;
        self.len -= 1;
        // Only the last chunk can be partly filled, so a used-up first chunk is either
        // full or the last one (and the log is now empty).
        if self.head == chunk.len() {
            let mut used = self.chunks.pop_front().expect("the first chunk");
            used.clear();
            self.spare.push(used);
            self.head = 0;
        }
        Some(debit)
    }

    /// Every debit, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Debit> {
        let skip = self.head;
        self.chunks.iter().flatten().skip(skip)
    }

    /// Debits in the log.
    pub fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pushes and pops across several chunks against a plain queue: the same debits
    /// come out in the same order, and iteration and length agree after every step.
    #[test]
    fn the_log_is_a_queue_across_chunks() {
        let mut log = VelocityLog::default();
        let mut model = VecDeque::new();
        let mut rng = crate::testkit::Rng::new(0x5851_f42d_4c95_7f2d_u64);
        let mut time = 0u64;
        // Pushes outnumber pops two to one.
        for step in 0..(8 * CHUNK as u64) {
            if rng.below(3) != 0 {
                time += rng.below(2);
                let debit = Debit {
                    time_ns: time,
                    amount: 1 + step as i64,
                    account: AccountId(rng.below(9) as u32),
                    asset: AssetId(rng.below(3) as u16),
                };
                log.push(debit);
                model.push_back(debit);
            } else {
                assert_eq!(log.pop_front(), model.pop_front(), "step {step}");
            }
            assert_eq!(log.len(), model.len(), "step {step}");
            assert_eq!(log.front(), model.front(), "step {step}");
            if step % 997 == 0 {
                assert!(log.iter().eq(model.iter()), "step {step}");
            }
        }
        assert!(log.chunks.len() > 2, "the test spans several chunks");
        while let Some(debit) = model.pop_front() {
            assert_eq!(log.pop_front(), Some(debit));
        }
        assert_eq!((log.len(), log.pop_front(), log.chunks.len()), (0, None, 0));
    }

    #[test]
    fn a_debit_stops_counting_exactly_24_hours_after_it_completed() {
        let debit = Debit { time_ns: 5, amount: 1, account: AccountId(1), asset: AssetId(0) };
        assert!(!debit.expired(5 + VELOCITY_WINDOW_NS - 1));
        assert!(debit.expired(5 + VELOCITY_WINDOW_NS));
        let late = Debit { time_ns: u64::MAX - 1, ..debit };
        assert!(!late.expired(u64::MAX));
    }
}
