//! Read-only queries. `Engine::query` takes `&self`: the type system guarantees that
//! answering a query cannot change state, which is why queries need no journaling.

use crate::book::{NIL, Order};
use crate::command::{CommandKind, PaymentRef, Query};
use crate::engine::Engine;
use crate::event::*;
use crate::limits::PAYMENTS_PAGE_MAX;
use crate::reject::RejectReason;
use crate::types::*;

/// Most depth levels per side one query returns.
pub const DEPTH_LEVELS_MAX: u16 = 1_000;

impl Engine {
    /// An order as a query reports it (its hold derived from its terms).
    fn order_info(&self, order: &Order) -> OrderInfo {
        OrderInfo {
            order_id: order.id,
            account: order.account,
            instrument: order.instrument,
            client_order_id: order.client_order_id,
            side: order.side,
            price: order.price,
            remaining: order.remaining,
            filled: order.filled,
            hold: self.order_hold(order),
        }
    }

    /// Answers a query for `user` into `out`: the items, then `QueryDone`; or one
    /// `Rejected`. Balances and orders need the account's owner or an admin; depth is
    /// public.
    pub fn query(&self, user: UserId, query: &Query, out: &mut impl EventSink) {
        let result = match *query {
            Query::Balances { account } => self.query_balances(user, account, out),
            Query::Order { account, order } => self.query_order(user, account, order, out),
            Query::OpenOrders { account } => self.query_open_orders(user, account, out),
            Query::Depth { instrument, levels } => self.query_depth(user, instrument, levels, out),
            Query::Reference => self.query_reference(user, out),
            Query::Payment { account, payment } => self.query_payment(user, account, payment, out),
            Query::Payments { account, limit } => self.query_payments(user, account, limit, out),
        };
        match result {
            Ok(items) => out.emit(Event::QueryDone { items }),
            Err(reason) => {
                let account = match *query {
                    Query::Balances { account }
                    | Query::Order { account, .. }
                    | Query::OpenOrders { account }
                    | Query::Payment { account, .. }
                    | Query::Payments { account, .. } => account,
                    Query::Depth { .. } | Query::Reference => AccountId(0),
                };
                let client_id = match *query {
                    Query::Order { order: crate::command::OrderRef::Client(c), .. } => c.0,
                    Query::Payment { payment: PaymentRef::Client(c), .. } => c.0,
                    _ => 0,
                };
                let kind = CommandKind::Query;
                out.emit(Event::Rejected(Rejected { kind, account, client_id, reason }));
            }
        }
    }

    fn query_balances(
        &self,
        user: UserId,
        account: AccountId,
        out: &mut impl EventSink,
    ) -> Result<u32, RejectReason> {
        let found = self.readable_account(user, account)?;
        let mut items = 0;
        for (index, asset) in self.assets.iter().enumerate() {
            if asset.is_none() {
                continue;
            }
            let asset = AssetId(index as u16);
            let balance = found.balance(asset);
            let (available, held, pending) = (balance.available, balance.held, balance.pending);
            let info = BalanceChanged { account, asset, available, held, pending };
            out.emit(Event::BalanceInfo(info));
            items += 1;
        }
        Ok(items)
    }

    fn query_order(
        &self,
        user: UserId,
        account: AccountId,
        order: crate::command::OrderRef,
        out: &mut impl EventSink,
    ) -> Result<u32, RejectReason> {
        self.readable_account(user, account)?;
        let slot = self.find_order(account, order)?;
        out.emit(Event::OrderInfo(self.order_info(self.orders.get(slot))));
        Ok(1)
    }

    fn query_open_orders(
        &self,
        user: UserId,
        account: AccountId,
        out: &mut impl EventSink,
    ) -> Result<u32, RejectReason> {
        let mut slot = self.readable_account(user, account)?.orders_head;
        let mut items = 0;
        while slot != NIL {
            let order = self.orders.get(slot);
            out.emit(Event::OrderInfo(self.order_info(order)));
            items += 1;
            slot = order.account_next;
        }
        Ok(items)
    }

    fn query_depth(
        &self,
        user: UserId,
        instrument: InstrumentId,
        levels: u16,
        out: &mut impl EventSink,
    ) -> Result<u32, RejectReason> {
        self.role(user)?;
        let found = self.instrument(instrument).ok_or(RejectReason::UnknownInstrument)?;
        let take = levels.min(DEPTH_LEVELS_MAX) as usize;
        let mut items = 0;
        for side in [Side::Buy, Side::Sell] {
            for level in found.book.side(side).iter_best_first().take(take) {
                let (price, qty, orders) = (level.price, level.qty, level.orders);
                out.emit(Event::DepthLevel(LevelChanged { instrument, side, price, qty, orders }));
                items += 1;
            }
        }
        Ok(items)
    }

    fn query_reference(&self, user: UserId, out: &mut impl EventSink) -> Result<u32, RejectReason> {
        self.role(user)?;
        let mut items = 0;
        for (index, asset) in self.assets.iter().enumerate() {
            if let Some(asset) = asset {
                let (symbol, scale) = (asset.symbol, asset.scale);
                out.emit(Event::AssetInfo { asset: AssetId(index as u16), symbol, scale });
                items += 1;
            }
        }
        for instrument in self.instruments.iter().flatten() {
            out.emit(Event::InstrumentInfo { spec: instrument.spec, status: instrument.status });
            items += 1;
        }
        Ok(items)
    }

    fn query_payment(
        &self,
        user: UserId,
        account: AccountId,
        payment: PaymentRef,
        out: &mut impl EventSink,
    ) -> Result<u32, RejectReason> {
        // Deposits are keyed in the external account's namespace: admins and
        // operators, who make them, look them up there.
        if account != EXTERNAL_ACCOUNT || self.role(user)? == Role::Trader {
            self.readable_account(user, account)?;
        }
        let index = self.find_payment(account, payment).ok_or(RejectReason::UnknownPayment)?;
        out.emit(Event::PaymentInfo(self.payments.info(index)));
        Ok(1)
    }

    fn query_payments(
        &self,
        user: UserId,
        account: AccountId,
        limit: u16,
        out: &mut impl EventSink,
    ) -> Result<u32, RejectReason> {
        let mut index = self.readable_account(user, account)?.last_payment;
        let mut items = 0;
        while index != NIL && items < u32::from(limit.min(PAYMENTS_PAGE_MAX)) {
            let payment = &self.payments.records[index as usize];
            out.emit(Event::PaymentInfo(payment.info(index)));
            items += 1;
            // A payment links into the history of each of its two accounts.
            index = match payment.debit == account {
                true => payment.prev_debit,
                false => payment.prev_credit,
            };
        }
        Ok(items)
    }

    /// An account `user` may read: its own, or any if `user` is an admin or a payment
    /// operator. Closed and frozen accounts stay readable.
    fn readable_account(
        &self,
        user: UserId,
        account: AccountId,
    ) -> Result<&crate::ledger::Account, RejectReason> {
        let role = self.role(user)?;
        let found = self.account(account).ok_or(RejectReason::UnknownAccount)?;
        if found.owner != user && role == Role::Trader {
            return Err(RejectReason::AccountNotOwned);
        }
        Ok(found)
    }
}
