//! A full consistency check of the engine state, for tests and fuzzing (it walks every
//! order, so it is far too slow for the hot path). Each rule here is an invariant the
//! engine promises after every command.

use crate::book::{Book, Ladder, NIL};
use crate::engine::Engine;
use crate::limits::ASSETS_MAX;
use crate::types::*;

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
    /// 5. Conservation: per asset, the sum over accounts of available + held equals
    ///    deposits minus withdrawals; no balance is negative.
    /// 6. The id indexes point at exactly the live orders.
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
                ensure!(
                    balance.available >= 0 && balance.held >= 0,
                    "account {id} asset {asset}: negative {balance:?}"
                );
                ensure!(
                    balance.held == held[id][asset],
                    "account {id} asset {asset}: held {} vs orders {}",
                    balance.held,
                    held[id][asset]
                );
                totals[asset] += balance.available as i128 + balance.held as i128;
            }
        }
        for (asset, total) in totals.iter().enumerate() {
            let supply = self.assets[asset].map_or(0, |a| a.supply) as i128;
            ensure!(*total == supply, "asset {asset}: balances {total} vs supply {supply}");
        }
        Ok(())
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
                let expected = instrument.economics.hold_for(o.side, o.price, o.remaining);
                ensure!(
                    expected == Some(o.hold),
                    "order {:?} holds {} not {expected:?}",
                    o.id,
                    o.hold
                );
                let by_id = self.index.find_id(&self.orders, o.id);
                ensure!(by_id == Some(slot), "order {:?} not indexed", o.id);
                let by_client = self.index.find_client(&self.orders, o.account, o.client_order_id);
                ensure!(by_client == Some(slot), "client id of {:?} not indexed", o.id);
                let asset = instrument.hold_asset(o.side).0 as usize;
                held[o.account.0 as usize][asset] += o.hold;
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
