//! A full consistency check of the engine state, for tests and fuzzing (it walks every
//! order, so it is far too slow for the hot path). Each rule here is an invariant the
//! engine promises after every command.

use crate::book::{Book, Ladder, NIL};
use crate::engine::Engine;
use crate::limits::ASSETS_MAX;
use crate::types::*;
use crate::velocity::VELOCITY_WINDOW_NS;
use std::collections::BTreeMap;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

impl Engine {
    /// Checks every invariant; the error names the first one broken.
    ///
    /// 1. Ladders are strictly sorted, levels are non-empty and their totals and counts
    ///    equal their queues; queue links are consistent.
    /// 2. No book is crossed: best bid < best ask.
    /// 3. Every resting order has positive remaining quantity and holds exactly what its
    ///    remaining quantity could cost at its limit.
    /// 4. Each account's held balance per asset equals the holds of its live orders;
    ///    its open-order count and order list match the book.
    /// 5. Conservation: per asset, the sum over accounts of available + held + pending
    ///    equals deposits minus withdrawals (minus the external account's balance).
    ///    Held and pending are never negative; available is never below minus the
    ///    account's credit limit; supply plus all credit limits fits an i64.
    /// 6. The id indexes point at exactly the live orders.
    /// 7. Payments: see [`Engine::check_payments`].
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut held = vec![[0i64; ASSETS_MAX]; self.accounts.len()];
        let mut open = vec![0u32; self.accounts.len()];
        let mut live = 0usize;
        for instrument in self.instruments.iter().flatten() {
            let book = &instrument.book;
            for ladder in [&book.bids, &book.asks] {
                live += self.check_ladder(instrument, ladder, &mut held, &mut open)?;
            }
            if let (Some(bid), Some(ask)) = (book.bids.best(), book.asks.best()) {
                ensure!(
                    bid.price < ask.price,
                    "crossed book {}: {:?} >= {:?}",
                    instrument.spec.symbol,
                    bid.price,
                    ask.price
                );
                ensure!(!Book::crosses(Side::Buy, bid.price, ask.price), "crossed");
            }
        }
        ensure!(live == self.orders.len(), "{live} queued orders, {} stored", self.orders.len());
        ensure!(live == self.index.len(), "{live} orders, {} indexed", self.index.len());
        let by_id = self.index.len_by_id();
        ensure!(live == by_id, "{live} orders, {by_id} indexed by id");
        let mut totals = [0i128; ASSETS_MAX];
        for (id, account) in self.accounts.iter().enumerate() {
            let Some(account) = account else { continue };
            ensure!(
                account.open_orders == open[id],
                "account {id}: open_orders {} vs {}",
                account.open_orders,
                open[id]
            );
            let mut listed = 0;
            let mut slot = account.orders_head;
            while slot != NIL {
                ensure!(
                    self.orders.get(slot).account.0 as usize == id,
                    "account list crosses accounts"
                );
                listed += 1;
                slot = self.orders.get(slot).account_next;
            }
            ensure!(listed == open[id], "account {id}: list has {listed}, book has {}", open[id]);
            for (asset, balance) in account.balances.iter().enumerate() {
                let credit =
                    self.payments.credit_limit(AccountId(id as u32), AssetId(asset as u16));
                ensure!(
                    balance.available >= -credit && balance.held >= 0 && balance.pending >= 0,
                    "account {id} asset {asset}: {balance:?} below zero (credit {credit})"
                );
                ensure!(
                    balance.held == held[id][asset],
                    "account {id} asset {asset}: held {} vs orders {}",
                    balance.held,
                    held[id][asset]
                );
                totals[asset] +=
                    balance.available as i128 + balance.held as i128 + balance.pending as i128;
            }
        }
        for (asset, total) in totals.iter().enumerate() {
            let supply = self.assets[asset].map_or(0, |a| a.supply) as i128;
            ensure!(*total == supply, "asset {asset}: balances {total} vs supply {supply}");
        }
        self.check_payments()
    }

    /// The payment invariants:
    ///
    /// 1. Payment ids are 1, 2, 3, ...; the client-id index maps each (debit, client id)
    ///    to exactly its payment.
    /// 2. Each account's pending balance per asset equals the amounts of its pending
    ///    authorizations.
    /// 3. Every pending authorization with a deadline has one entry in the deadline
    ///    heap, later than engine time (anything due has expired); every entry names an
    ///    authorization with that deadline (resolved ones may linger below the top, at
    ///    most as many as the pending ones plus a slack); the top is pending, and
    ///    `next_deadline` is its deadline.
    /// 4. Each account's history head is its newest payment on either side.
    /// 5. Each account's velocity window sum is what its debits in the velocity log add
    ///    up to (see `check_velocity_log`); each asset's credit
    ///    total is the sum of its credit limits, and supply plus that fits an i64.
    /// 6. Each asset's supply is exactly its recorded deposits minus its recorded
    ///    withdrawals (money enters and leaves only as payments).
    pub fn check_payments(&self) -> Result<(), String> {
        let book = &self.payments;
        ensure!(book.by_client.len() == book.records.len(), "client-id index size");
        let mut pending = BTreeMap::<(AccountId, AssetId), i128>::new();
        let mut newest = vec![crate::book::NIL; self.accounts.len()];
        // Heap entries: each names an authorization with that deadline, once; the
        // entries of resolved ones may linger below the top.
        let mut scheduled = std::collections::BTreeSet::new();
        let mut live = 0usize;
        for &std::cmp::Reverse((deadline, index)) in book.deadlines.iter() {
            let p = book.records.get(index as usize).map(|r| r.info(index));
            let names = p.is_some_and(|p| p.deadline_ns == deadline && p.deadline_ns > 0);
            ensure!(names, "deadline entry ({deadline}, {index}) names no such authorization");
            ensure!(scheduled.insert((deadline, index)), "deadline entry {index} twice");
            live += usize::from(p.is_some_and(|p| p.status == PaymentStatus::Pending));
        }
        let mut external = [0i128; ASSETS_MAX];
        for (index, payment) in book.records.iter().enumerate() {
            let p = payment.info(index as u32);
            let found = book.find_client(p.debit, p.client_payment_id);
            ensure!(found == Some(index as u32), "payment {index} not indexed by client id");
            match p.kind {
                PaymentKind::Deposit => external[p.asset.0 as usize] += i128::from(p.amount),
                PaymentKind::Withdrawal => external[p.asset.0 as usize] -= i128::from(p.amount),
                PaymentKind::Transfer | PaymentKind::Authorization => {}
            }
            if p.status == PaymentStatus::Pending {
                *pending.entry((p.debit, p.asset)).or_default() += i128::from(p.amount);
                if p.deadline_ns > 0 {
                    ensure!(
                        scheduled.contains(&(p.deadline_ns, index as u32)),
                        "pending payment {index} has no deadline entry"
                    );
                    ensure!(p.deadline_ns > self.last_time_ns, "payment {index} overdue");
                }
            }
            for account in [p.debit, p.credit] {
                if let Some(slot) = newest.get_mut(account.0 as usize) {
                    *slot = index as u32;
                }
            }
        }
        ensure!(
            live == book.pending_deadlines,
            "{live} live deadline entries, counted {}",
            book.pending_deadlines
        );
        let most = 2 * book.pending_deadlines + crate::payments::DEADLINE_SLACK;
        ensure!(
            book.deadlines.len() <= most,
            "{} deadline entries for {live} pending",
            book.deadlines.len()
        );
        let top = book.first_deadline();
        let top_pending = top.is_none_or(|(_, i)| book.info(i).status == PaymentStatus::Pending);
        ensure!(top_pending, "the first deadline entry is of a resolved payment");
        let first = top.map_or(u64::MAX, |(deadline, _)| deadline);
        ensure!(book.next_deadline == first, "next_deadline {} vs {first}", book.next_deadline);
        for (id, account) in self.accounts.iter().enumerate() {
            let Some(account) = account else { continue };
            ensure!(account.last_payment == newest[id], "account {id}: history head");
            for (asset, balance) in account.balances.iter().enumerate() {
                let key = (AccountId(id as u32), AssetId(asset as u16));
                let expected = pending.get(&key).copied().unwrap_or(0);
                ensure!(
                    i128::from(balance.pending) == expected,
                    "account {id} asset {asset}: pending {} vs authorizations {expected}",
                    balance.pending
                );
            }
        }
        let entries = book.outgoing.iter().count();
        ensure!(book.outgoing.len() == entries, "outgoing entries: {entries} counted");
        let mut window_sums = self.check_velocity_log()?;
        let mut credit_totals = [0i128; ASSETS_MAX];
        for ((account, asset), o) in book.outgoing.iter() {
            let status = self.account(account).map(|a| a.status);
            ensure!(status.is_some(), "outgoing state of a missing account");
            ensure!(status != Some(AccountStatus::Closed), "outgoing state of a closed account");
            ensure!(!o.is_empty(), "empty outgoing entry of account {}", account.0);
            let logged = window_sums.remove(&(account, asset)).unwrap_or(0);
            ensure!(
                logged == o.window_sum,
                "account {} asset {}: velocity window sum {} vs {logged} in the log",
                account.0,
                asset.0,
                o.window_sum
            );
            credit_totals[asset.0 as usize] += i128::from(o.credit_limit);
        }
        if let Some(((account, asset), sum)) = window_sums.pop_first() {
            let (account, asset) = (account.0, asset.0);
            return Err(format!("account {account} asset {asset}: {sum} in the log, no entry"));
        }
        for (asset, total) in credit_totals.iter().enumerate() {
            let policy = book.policies[asset];
            ensure!(i128::from(policy.credit_total) == *total, "asset {asset}: credit total");
            let supply = self.assets[asset].map_or(0, |a| a.supply);
            ensure!(
                i128::from(supply) + total <= i128::from(i64::MAX),
                "asset {asset}: supply plus credit overflows"
            );
            ensure!(
                i128::from(supply) == external[asset],
                "asset {asset}: supply {supply} but deposits - withdrawals {}",
                external[asset]
            );
        }
        Ok(())
    }

    /// The velocity log holds exactly the completed debits of the payment table that
    /// still count at engine time (anything older left before the last command ran), in
    /// time order; `next_debit_expiry` is when its oldest stops counting. Returns what
    /// each account that is not closed has in it, by (account, asset).
    fn check_velocity_log(&self) -> Result<BTreeMap<(AccountId, AssetId), i128>, String> {
        let book = &self.payments;
        let now = self.last_time_ns;
        let mut sums = BTreeMap::new();
        let mut previous = 0;
        // What the log must hold, from the payments themselves: every completed debit
        // less than a day old (transfers and withdrawals when made, captures when
        // captured, for the captured amount). Compared as sorted lists: debits made at
        // the same time may be in any order here.
        let mut expected: Vec<(u64, AccountId, AssetId, i64)> = Vec::new();
        for payment in book.records.iter() {
            let time_ns = match (payment.kind, payment.status) {
                (PaymentKind::Transfer | PaymentKind::Withdrawal, _) => payment.created_ns,
                (PaymentKind::Authorization, PaymentStatus::Completed) => payment.resolved_ns,
                _ => continue,
            };
            // (`checked_sub`: a corrupted snapshot may stamp a payment after `now`.)
            if now.checked_sub(time_ns).is_some_and(|age| age < VELOCITY_WINDOW_NS) {
                expected.push((time_ns, payment.debit, payment.asset, payment.captured));
            }
        }
        let mut logged: Vec<_> =
            book.velocity.iter().map(|d| (d.time_ns, d.account, d.asset, d.amount)).collect();
        expected.sort_unstable();
        logged.sort_unstable();
        ensure!(
            expected == logged,
            "velocity log: {} debits, the payments made {} in the last 24 hours",
            logged.len(),
            expected.len()
        );
        // Equal to the payments' debits, so amounts and ages are right; the order is not.
        for debit in book.velocity.iter() {
            ensure!(previous <= debit.time_ns, "velocity log out of time order at {debit:?}");
            previous = debit.time_ns;
            let Some(account) = self.account(debit.account) else {
                return Err(format!("velocity log: {debit:?} of a missing account"));
            };
            // A closed account's debits stay until they age out; its entries are gone.
            if account.status != AccountStatus::Closed {
                *sums.entry((debit.account, debit.asset)).or_default() += i128::from(debit.amount);
            }
        }
        let expiry = book.velocity.next_expiry();
        ensure!(book.next_debit_expiry == expiry, "next_debit_expiry {}", book.next_debit_expiry);
        Ok(sums)
    }

    fn check_ladder(
        &self,
        instrument: &crate::engine::Instrument,
        ladder: &Ladder,
        held: &mut [[i64; ASSETS_MAX]],
        open: &mut [u32],
    ) -> Result<usize, String> {
        let mut count = 0;
        let mut previous: Option<Price> = None;
        for level in ladder.iter_best_first() {
            if let Some(better) = previous {
                ensure!(
                    ladder.at_least_as_good(better, level.price) && better != level.price,
                    "levels out of order"
                );
            }
            previous = Some(level.price);
            let (mut qty, mut orders, mut slot, mut prev) = (0i64, 0u32, level.head, NIL);
            while slot != NIL {
                let o = self.orders.get(slot);
                ensure!(o.prev == prev, "broken queue link at order {:?}", o.id);
                ensure!(
                    o.side == ladder.side() && o.price == level.price,
                    "order {:?} on the wrong level",
                    o.id
                );
                ensure!(o.remaining.0 > 0, "order {:?} rests with nothing left", o.id);
                // An order's hold is derived from its terms; it must be computable, and
                // the account's `held` must be their sum (checked below).
                let hold = instrument.economics.hold_for(o.side, o.price, o.remaining);
                let Some(hold) = hold else {
                    return Err(format!("order {:?}: its hold overflows", o.id));
                };
                let by_id = self.index.find_id(&self.orders, o.id);
                ensure!(by_id == Some(slot), "order {:?} not indexed", o.id);
                let by_client = self.index.find_client(&self.orders, o.account, o.client_order_id);
                ensure!(by_client == Some(slot), "client id of {:?} not indexed", o.id);
                let asset = instrument.hold_asset(o.side).0 as usize;
                held[o.account.0 as usize][asset] += hold;
                open[o.account.0 as usize] += 1;
                qty += o.remaining.0;
                orders += 1;
                prev = slot;
                slot = o.next;
            }
            ensure!(level.tail == prev, "level {:?} tail is stale", level.price);
            ensure!(
                orders > 0 && orders == level.orders,
                "level {:?} count {} vs {orders}",
                level.price,
                level.orders
            );
            ensure!(qty == level.qty.0, "level {:?} qty {:?} vs {qty}", level.price, level.qty);
            count += orders as usize;
        }
        Ok(count)
    }
}
