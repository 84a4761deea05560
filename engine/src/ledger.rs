//! Money: assets, accounts, balances and the integer arithmetic of notionals, fees and
//! holds. Every function here is pure or touches one account; the order of operations
//! within a command lives in the engine modules.
//!
//! Rounding rule: fees and rebates are rounded toward zero (in the client's favour for
//! fees, in the venue's for rebates). With that rule the hold of a buy order for its
//! remaining quantity, `buy_hold(limit, remaining)`, always covers what the next fill
//! costs, and the difference is released exactly, so holds never drift.

use crate::limits::ASSETS_MAX;
use crate::types::*;

/// Basis points in one whole.
pub const BPS_PER_UNIT: i128 = 10_000;

/// An asset's definition and how much of it exists in the system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Asset {
    /// Name.
    pub symbol: Symbol,
    /// Decimals of the minor unit.
    pub scale: u8,
    /// Deposits minus withdrawals, minor units: minus the balance of the asset's
    /// external account. The sum of every account's available, held and pending
    /// balance equals this (conservation). Supply plus every credit limit in the asset
    /// stays within `i64::MAX` (checked on deposit and on setting a limit), and no
    /// balance can exceed that sum, so no balance arithmetic can overflow.
    pub supply: i64,
}

/// One account's position in one asset. The account owns `available + held +
/// pending`; only `available` can be spent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Balance {
    /// Free to trade, pay or withdraw. Negative only through payments on a credit limit
    /// (never below minus that limit).
    pub available: i64,
    /// Reserved for live orders.
    pub held: i64,
    /// Reserved for pending outgoing authorizations.
    pub pending: i64,
}

impl Balance {
    /// True if all three parts are zero.
    pub fn is_zero(&self) -> bool {
        self.available == 0 && self.held == 0 && self.pending == 0
    }
}

/// An account. Laid out in declaration order, starting on a cache line, so that what
/// every command reads (status, owner, lists: 24 bytes) shares the first line with the
/// first balance: left to the compiler, those fields went after the 768 bytes of
/// balances, a line apart from any balance (BENCHMARKS.md, payments, session 11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Account {
    /// Owner.
    pub owner: UserId,
    /// Active, frozen or closed.
    pub status: AccountStatus,
    /// On the compliance deny-list: no payment may debit or credit it.
    pub blocked: bool,
    /// Live orders.
    pub open_orders: u32,
    /// Oldest live order (slot in the order table).
    pub orders_head: u32,
    /// Newest live order.
    pub orders_tail: u32,
    /// Newest payment on either side (index in the payment table), the head of the
    /// account's payment history.
    pub last_payment: u32,
    /// Balances by asset id.
    pub balances: [Balance; ASSETS_MAX],
}

const _: () = assert!(std::mem::offset_of!(Account, balances) == 24);
const _: () = assert!(std::mem::size_of::<Account>() == 832);

impl Account {
    /// A new, active account with nothing in it.
    pub fn new(owner: UserId) -> Account {
        Account {
            owner,
            status: AccountStatus::Active,
            blocked: false,
            balances: [Balance::default(); ASSETS_MAX],
            open_orders: 0,
            orders_head: crate::book::NIL,
            orders_tail: crate::book::NIL,
            last_payment: crate::book::NIL,
        }
    }

    /// The balance of `asset`.
    pub fn balance(&self, asset: AssetId) -> Balance {
        self.balances[asset.0 as usize]
    }

    /// The balance of `asset`, mutably.
    pub fn balance_mut(&mut self, asset: AssetId) -> &mut Balance {
        &mut self.balances[asset.0 as usize]
    }

    /// Moves `amount` from available to held. The caller has checked it is available.
    /// Returns the balance it leaves, for the balance event: built from the values just
    /// computed rather than read back from memory (see [`Account::release`]).
    #[inline(always)]
    pub fn hold(&mut self, asset: AssetId, amount: i64) -> Balance {
        let balance = self.balance_mut(asset);
        assert!(amount >= 0 && amount <= balance.available);
        balance.available -= amount;
        balance.held += amount;
        *balance
    }

    /// Moves `amount` from held back to available. Returns the balance it leaves.
    ///
    /// Reading a balance back right after writing it costs a store-forwarding stall:
    /// the compiler copies `available` and `held` into the event with one 16-byte load,
    /// which the CPU cannot serve from the two 8-byte stores still in its store buffer,
    /// so the load waits for them to retire (under `perf annotate`, the hottest
    /// instruction of a new order). The returned copy is the values in registers.
    #[inline(always)]
    pub fn release(&mut self, asset: AssetId, amount: i64) -> Balance {
        let balance = self.balance_mut(asset);
        assert!(amount >= 0 && amount <= balance.held);
        balance.held -= amount;
        balance.available += amount;
        *balance
    }

    /// Removes `amount` from held (it is being paid away).
    pub fn consume_held(&mut self, asset: AssetId, amount: i64) {
        let balance = self.balance_mut(asset);
        assert!(amount >= 0 && amount <= balance.held);
        balance.held -= amount;
    }

    /// Adds `amount` (not negative) to available.
    pub fn credit(&mut self, asset: AssetId, amount: i64) {
        assert!(amount >= 0);
        self.balance_mut(asset).available += amount;
    }
}

/// The integer economics of one instrument, derived from its definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Economics {
    /// Base minor units in one lot.
    pub base_per_lot: i64,
    /// Quote minor units that one tick times one lot is worth.
    pub quote_per_tick_lot: i64,
    /// Maker fee in basis points (negative: rebate).
    pub maker_fee_bps: i32,
    /// Taker fee in basis points.
    pub taker_fee_bps: i32,
}

impl Economics {
    /// Quote minor units of `qty` lots at `price` ticks (both positive); `None` if it
    /// does not fit i64. Plain i64 arithmetic is exact here: with positive factors, an
    /// intermediate overflow implies the final product overflows too.
    pub fn notional(&self, price: Price, qty: Qty) -> Option<i64> {
        debug_assert!(price.0 > 0 && qty.0 >= 0);
        price.0.checked_mul(qty.0)?.checked_mul(self.quote_per_tick_lot)
    }

    /// Base minor units of `qty` lots; `None` if it does not fit i64.
    pub fn base_amount(&self, qty: Qty) -> Option<i64> {
        qty.0.checked_mul(self.base_per_lot)
    }

    /// Fee on a notional at `bps`, rounded toward zero. Negative `bps` gives a negative
    /// fee (a rebate). |bps| <= 10 000 keeps it within the notional.
    pub fn fee(notional: i64, bps: i32) -> i64 {
        // The i64 product is the common case; i128 only for notionals near i64::MAX.
        // Both divisions truncate toward zero, so the two paths agree.
        match notional.checked_mul(i64::from(bps)) {
            Some(product) => product / BPS_PER_UNIT as i64,
            None => (notional as i128 * bps as i128 / BPS_PER_UNIT) as i64,
        }
    }

    /// The largest fee rate a buy can be charged, as maker or taker (never below zero).
    pub fn fee_bps_max(&self) -> i32 {
        self.maker_fee_bps.max(self.taker_fee_bps).max(0)
    }

    /// What a buy for `qty` at `limit` must hold: the notional at its limit plus the
    /// largest fee it could pay. `None` on overflow.
    pub fn buy_hold(&self, limit: Price, qty: Qty) -> Option<i64> {
        let notional = self.notional(limit, qty)?;
        notional.checked_add(Economics::fee(notional, self.fee_bps_max()))
    }

    /// What an order must hold for `qty` at `limit`, in its hold asset.
    #[inline(always)]
    pub fn hold_for(&self, side: Side, limit: Price, qty: Qty) -> Option<i64> {
        match side {
            Side::Buy => self.buy_hold(limit, qty),
            Side::Sell => self.base_amount(qty),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn economics(maker: i32, taker: i32) -> Economics {
        Economics {
            base_per_lot: 100,
            quote_per_tick_lot: 3,
            maker_fee_bps: maker,
            taker_fee_bps: taker,
        }
    }

    #[test]
    fn fees_round_toward_zero() {
        assert_eq!(Economics::fee(19_999, 1), 1);
        assert_eq!(Economics::fee(19_999, -1), -1);
        assert_eq!(Economics::fee(9_999, 1), 0);
        assert_eq!(Economics::fee(1_000_000, 25), 2_500);
    }

    #[test]
    fn buy_hold_covers_any_fill_at_or_below_the_limit() {
        // For every split of a remaining quantity, the drop in hold pays for the fill at
        // any price up to the limit, at either fee rate.
        let e = economics(-2, 7);
        let limit = Price(1_234);
        for remaining in 1..60 {
            for fill in 1..=remaining {
                let before = e.buy_hold(limit, Qty(remaining)).unwrap();
                let after = e.buy_hold(limit, Qty(remaining - fill)).unwrap();
                for price in [1, 600, 1_234] {
                    let notional = e.notional(Price(price), Qty(fill)).unwrap();
                    for bps in [e.maker_fee_bps, e.taker_fee_bps] {
                        let cost = notional + Economics::fee(notional, bps);
                        assert!(before - after >= cost, "{remaining} {fill} {price} {bps}");
                    }
                }
            }
        }
    }

    #[test]
    fn overflow_is_none() {
        let e = economics(0, 0);
        assert_eq!(e.notional(Price(i64::MAX), Qty(2)), None);
        assert_eq!(e.base_amount(Qty(i64::MAX)), None);
        assert_eq!(e.notional(Price(10), Qty(10)), Some(300));
        assert_eq!(Economics::fee(i64::MAX, 10_000), i64::MAX);
        assert_eq!(Economics::fee(i64::MAX, -5_000), -(i64::MAX / 2));
    }
}
