//! The state hash: xxh3-64 over a canonical walk of the whole state. Two engines that
//! applied the same commands have the same hash; any difference in balances, holds,
//! resting orders (in priority order), statuses, counters, limits, payments or payment
//! limits changes it.

use crate::book::{Ladder, NIL};
use crate::engine::Engine;
use xxhash_rust::xxh3::Xxh3;

/// Feeds integers into the hasher in one fixed byte order.
struct Canonical(Xxh3);

impl Canonical {
    fn u64(&mut self, value: u64) {
        self.0.update(&value.to_le_bytes());
    }
    fn i64(&mut self, value: i64) {
        self.0.update(&value.to_le_bytes());
    }
    fn bytes(&mut self, value: &[u8]) {
        self.0.update(value);
    }
}

impl Engine {
    /// A stable 64-bit hash of the whole state (see the module docs).
    pub fn state_hash(&self) -> u64 {
        let mut h = Canonical(Xxh3::new());
        let limits = self.limits;
        for value in [
            limits.users_max,
            limits.accounts_max,
            limits.orders_max,
            limits.levels_per_side_max,
            limits.open_orders_per_account_max,
            limits.payments_max,
        ] {
            h.u64(value.into());
        }
        h.u64(self.last_seq);
        h.u64(self.last_time_ns);
        h.u64(self.next_order_id);
        h.u64(self.next_trade_id);
        for (id, role) in self.users.iter().enumerate() {
            if let Some(role) = role {
                h.u64(id as u64);
                h.u64(*role as u64);
            }
        }
        for (id, asset) in self.assets.iter().enumerate() {
            if let Some(asset) = asset {
                h.u64(id as u64);
                h.bytes(&asset.symbol.0);
                h.u64(asset.scale.into());
                h.i64(asset.supply);
            }
        }
        self.hash_accounts(&mut h);
        self.hash_instruments(&mut h);
        self.hash_payments(&mut h);
        h.0.digest()
    }

    fn hash_accounts(&self, h: &mut Canonical) {
        for (id, account) in self.accounts.iter().enumerate() {
            let Some(account) = account else { continue };
            h.u64(id as u64);
            h.u64(account.owner.0.into());
            h.u64(account.status as u64);
            h.u64(account.blocked.into());
            h.u64(account.open_orders.into());
            for balance in &account.balances {
                h.i64(balance.available);
                h.i64(balance.held);
                h.i64(balance.pending);
            }
            // The account's order list order is observable (open-orders query).
            let mut slot = account.orders_head;
            while slot != NIL {
                let order = self.orders.get(slot);
                h.u64(order.id.0);
                slot = order.account_next;
            }
        }
    }

    /// Policies, then outgoing entries in key order (their limits; the window sums are
    /// derived from the log), then the velocity log oldest first, then every payment in
    /// id order (the indexes are derived from the records, so they are not hashed).
    fn hash_payments(&self, h: &mut Canonical) {
        let option = |h: &mut Canonical, value: Option<i64>| match value {
            None => h.u64(0),
            Some(v) => {
                h.u64(1);
                h.i64(v);
            }
        };
        for policy in &self.payments.policies {
            option(h, policy.transfer_max);
            option(h, policy.velocity_24h);
        }
        for (key, o) in self.payments.outgoing.iter() {
            h.u64(key.0.0.into());
            h.u64(key.1.0.into());
            h.i64(o.credit_limit);
            option(h, o.velocity_24h);
        }
        // The window sums are derived from the log.
        h.u64(self.payments.velocity.len() as u64);
        for debit in self.payments.velocity.iter() {
            h.u64(debit.time_ns);
            h.i64(debit.amount);
            h.u64(u64::from(debit.account.0) | u64::from(debit.asset.0) << 32);
        }
        h.u64(self.payments.records.len() as u64);
        for (index, payment) in self.payments.records.iter().enumerate() {
            let p = payment.info(index as u32);
            for value in [p.payment_id.0, p.client_payment_id.0, p.created_ns, p.deadline_ns] {
                h.u64(value);
            }
            h.u64(p.resolved_ns);
            h.u64(u64::from(p.kind as u8) | u64::from(p.status as u8) << 8);
            h.u64(u64::from(p.debit.0) | u64::from(p.credit.0) << 32);
            h.u64(p.asset.0.into());
            h.i64(p.amount);
            h.i64(p.captured);
            h.u64(payment.timeout_s.into());
        }
    }

    fn hash_instruments(&self, h: &mut Canonical) {
        for (id, instrument) in self.instruments.iter().enumerate() {
            let Some(instrument) = instrument else { continue };
            h.u64(id as u64);
            hash_spec(h, &instrument.spec);
            h.u64(instrument.status as u64);
            h.i64(instrument.last_price.map_or(0, |p| p.0));
            let e = instrument.economics;
            for value in [
                e.base_per_lot,
                e.quote_per_tick_lot,
                e.maker_fee_bps.into(),
                e.taker_fee_bps.into(),
            ] {
                h.i64(value);
            }
            self.hash_ladder(h, &instrument.book.bids);
            self.hash_ladder(h, &instrument.book.asks);
        }
    }

    fn hash_ladder(&self, h: &mut Canonical, ladder: &Ladder) {
        h.u64(ladder.len() as u64);
        for level in ladder.iter_best_first() {
            h.i64(level.price.0);
            h.i64(level.qty.0);
            let mut slot = level.head;
            while slot != NIL {
                let o = self.orders.get(slot);
                h.u64(o.id.0);
                h.u64(o.account.0.into());
                h.u64(o.client_order_id.0);
                h.i64(o.remaining.0);
                h.i64(o.filled.0);
                // The hold and the flags are hashed as they were when orders stored them.
                h.i64(self.order_hold(o));
                let flags = o.flags;
                h.u64(
                    u64::from(flags.post_only())
                        | (flags.stp_mode() as u64) << 8
                        | (flags.stp_scope() as u64) << 16,
                );
                slot = o.next;
            }
        }
    }
}

/// Every field of an instrument's definition: each one changes which orders pass.
fn hash_spec(h: &mut Canonical, spec: &crate::command::InstrumentSpec) {
    h.bytes(&spec.symbol.0);
    for value in [spec.base.0, spec.quote.0] {
        h.u64(value.into());
    }
    for dec in [spec.tick_size, spec.lot_size] {
        h.i64(dec.mantissa);
        h.u64(dec.scale.into());
    }
    h.i64(spec.reference_price.0);
    h.u64(spec.band_bps.into());
    h.i64(spec.qty_max.0);
    h.i64(spec.notional_max);
    h.i64(spec.maker_fee_bps.into());
    h.i64(spec.taker_fee_bps.into());
    h.u64(spec.fee_account.0.into());
}
