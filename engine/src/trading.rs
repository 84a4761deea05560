//! Trading commands: new order, cancel, amend, mass cancel, and the matching loop with
//! settlement of each fill. Risk checks run in the `check_*` functions, before anything
//! touches the book or a balance.

use crate::book::{Book, NIL, Order, OrderFlags, Slot};
use crate::command::{Amend, NewOrder, OrderRef};
use crate::engine::{Engine, balance_changed};
use crate::event::*;
use crate::ledger::Economics;
use crate::reject::RejectReason;
use crate::types::*;

/// An order while it is matching: a new order, or an amended one that lost priority.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Taker {
    pub id: OrderId,
    pub account: AccountId,
    pub owner: UserId,
    pub instrument: InstrumentId,
    pub client_order_id: ClientOrderId,
    pub side: Side,
    pub limit: Price,
    pub remaining: Qty,
    pub filled: Qty,
    pub hold: i64,
    pub post_only: bool,
    pub stp_mode: StpMode,
    pub stp_scope: StpScope,
}

impl Taker {
    /// A resting order taking liquidity again (an amend that lost priority); its owner
    /// and hold are derived, not stored in the order.
    fn from_order(order: &Order, owner: UserId, hold: i64) -> Taker {
        Taker {
            id: order.id,
            account: order.account,
            owner,
            instrument: order.instrument,
            client_order_id: order.client_order_id,
            side: order.side,
            limit: order.price,
            remaining: order.remaining,
            filled: order.filled,
            hold,
            post_only: order.flags.post_only(),
            stp_mode: order.flags.stp_mode(),
            stp_scope: order.flags.stp_scope(),
        }
    }

    /// The order record of what is left to rest (its hold is derived from it).
    fn to_order(self) -> Order {
        Order {
            id: self.id,
            account: self.account,
            instrument: self.instrument,
            client_order_id: self.client_order_id,
            side: self.side,
            price: self.limit,
            remaining: self.remaining,
            filled: self.filled,
            flags: OrderFlags::new(self.post_only, self.stp_mode, self.stp_scope),
            ..Order::EMPTY
        }
    }
}

/// How the matching loop ended for the incoming order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MatchEnd {
    /// Filled completely, or no more crossing liquidity.
    Done,
    /// Self-trade prevention removed the incoming order's rest.
    SelfTradeCancelled,
}

/// What a new order's checks decided.
struct Admission {
    limit: Price,
    hold: i64,
}

impl Engine {
    // ---- new order ------------------------------------------------------------------

    pub(crate) fn new_order(
        &mut self,
        user: UserId,
        order: &NewOrder,
        out: &mut impl EventSink,
    ) -> Result<(), RejectReason> {
        let admission = self.check_new_order(user, order)?;
        let owner = self.account(order.account).expect("checked").owner;
        let id = OrderId(self.next_order_id);
        self.next_order_id += 1;
        let mut taker = Taker {
            id,
            account: order.account,
            owner,
            instrument: order.instrument,
            client_order_id: order.client_order_id,
            side: order.side,
            limit: admission.limit,
            remaining: order.qty,
            filled: Qty(0),
            hold: 0,
            post_only: order.post_only,
            stp_mode: order.stp_mode,
            stp_scope: order.stp_scope,
        };
        if order.time_in_force == TimeInForce::Fok && !self.fok_fillable(&taker) {
            out.emit(Event::Accepted(accepted(&taker, order.qty, 0)));
            out.emit(Event::Cancelled(cancelled(&taker, CancelReason::FokUnfilled)));
            return Ok(());
        }
        out.emit(Event::Accepted(accepted(&taker, order.qty, admission.hold)));
        let hold_asset = self.instrument(order.instrument).expect("checked").hold_asset(order.side);
        let balance = self.account_mut(order.account).hold(hold_asset, admission.hold);
        taker.hold = admission.hold;
        out.emit(balance_changed(order.account, hold_asset, balance));
        let end = self.match_taker(&mut taker, out);
        let rests = order.time_in_force == TimeInForce::Gtc && end == MatchEnd::Done;
        self.finish_taker(taker, rests, end, out);
        Ok(())
    }

    fn check_new_order(&self, user: UserId, order: &NewOrder) -> Result<Admission, RejectReason> {
        let account = self.acting_account(user, order.account, false, false)?;
        let instrument =
            self.instrument(order.instrument).ok_or(RejectReason::UnknownInstrument)?;
        if instrument.status == InstrumentStatus::Halted {
            return Err(RejectReason::InstrumentHalted);
        }
        let is_market = order.order_type == OrderType::Market;
        let is_gtc = order.time_in_force == TimeInForce::Gtc;
        // Market orders never rest, so they cannot be GTC; post-only only makes sense
        // for an order that rests.
        let market_gtc = is_market && is_gtc;
        let post_only_invalid = order.post_only && (is_market || !is_gtc);
        if market_gtc || post_only_invalid {
            return Err(RejectReason::InvalidOrderType);
        }
        if !is_market && order.price.0 <= 0 {
            return Err(RejectReason::PriceNotPositive);
        }
        if order.qty.0 <= 0 {
            return Err(RejectReason::QtyNotPositive);
        }
        if order.qty > instrument.spec.qty_max {
            return Err(RejectReason::QtyAboveMax);
        }
        let (low, high) = instrument.band();
        let limit = match (order.order_type, order.side) {
            (OrderType::Limit, _) => order.price,
            // A market order is an IOC/FOK limit at the edge of the protection band, so
            // it can never sweep the book to an absurd price.
            (OrderType::Market, Side::Buy) => high,
            (OrderType::Market, Side::Sell) => low,
        };
        if limit < low || limit > high {
            return Err(RejectReason::PriceOutsideBand);
        }
        let economics = instrument.economics;
        let notional =
            economics.notional(limit, order.qty).ok_or(RejectReason::ArithmeticOverflow)?;
        if notional > instrument.spec.notional_max {
            return Err(RejectReason::NotionalAboveMax);
        }
        let hold = economics.hold_for(order.side, limit, order.qty);
        let hold = hold.ok_or(RejectReason::ArithmeticOverflow)?;
        let duplicate = self.index.find_client(&self.orders, order.account, order.client_order_id);
        if duplicate.is_some() {
            return Err(RejectReason::DuplicateClientOrderId);
        }
        if is_gtc && account.open_orders >= self.limits.open_orders_per_account_max {
            return Err(RejectReason::TooManyOpenOrders);
        }
        if hold > account.balance(instrument.hold_asset(order.side)).available {
            return Err(RejectReason::InsufficientBalance);
        }
        if order.post_only && instrument.book.would_trade(order.side, limit) {
            return Err(RejectReason::PostOnlyWouldCross);
        }
        let own_side = instrument.book.side(order.side);
        if is_gtc && (!self.orders.has_room() || !own_side.has_room_for(limit)) {
            return Err(RejectReason::BookFull);
        }
        Ok(Admission { limit, hold })
    }

    /// Would a fill-or-kill order fill completely? Walks the book in matching order,
    /// applying self-trade prevention the way matching would, without changing anything.
    fn fok_fillable(&self, taker: &Taker) -> bool {
        let instrument = self.instrument(taker.instrument).expect("checked");
        let mut needed = taker.remaining.0;
        for level in instrument.book.side(taker.side.opposite()).iter_best_first() {
            if !Book::crosses(taker.side, taker.limit, level.price) {
                return false;
            }
            let mut slot = level.head;
            while slot != NIL {
                let maker = self.orders.get(slot);
                if self.self_trade(taker, maker) {
                    if taker.stp_mode != StpMode::CancelOldest {
                        return false;
                    }
                } else {
                    needed -= needed.min(maker.remaining.0);
                    if needed == 0 {
                        return true;
                    }
                }
                slot = maker.next;
            }
        }
        false
    }

    /// After matching: rest the order, or cancel its rest, or (fully filled) forget it.
    fn finish_taker(&mut self, taker: Taker, rests: bool, end: MatchEnd, out: &mut impl EventSink) {
        if taker.remaining.0 == 0 {
            assert_eq!(taker.hold, 0, "a filled order holds nothing");
            return;
        }
        if rests {
            debug_assert_eq!(
                Some(taker.hold),
                self.instrument(taker.instrument).expect("checked").economics.hold_for(
                    taker.side,
                    taker.limit,
                    taker.remaining
                ),
                "what rests holds exactly what its record derives"
            );
            let slot = self.orders.insert(taker.to_order()).expect("checked has_room");
            self.rest(slot, out);
            return;
        }
        let reason = match end {
            MatchEnd::SelfTradeCancelled => CancelReason::SelfTrade,
            MatchEnd::Done => CancelReason::IocRemainder,
        };
        let hold_asset = self.instrument(taker.instrument).expect("checked").hold_asset(taker.side);
        let balance = self.account_mut(taker.account).release(hold_asset, taker.hold);
        out.emit(Event::Cancelled(cancelled(&taker, reason)));
        out.emit(balance_changed(taker.account, hold_asset, balance));
    }

    /// Puts a stored order on its book and indexes, and publishes the level.
    fn rest(&mut self, slot: Slot, out: &mut impl EventSink) {
        let order = *self.orders.get(slot);
        let (ladder, orders) = self.ladder_mut(order.instrument, order.side);
        let level = ladder.push(orders, slot);
        self.link_account_order(slot);
        self.index.insert(&self.orders, slot);
        out.emit(level_changed(&order, level));
    }

    /// Takes a resting order off its book and indexes and frees its slot. Its hold must
    /// already be zero or released by the caller.
    fn unrest(&mut self, slot: Slot) -> (Order, (Qty, u32)) {
        let order = *self.orders.get(slot);
        let (ladder, orders) = self.ladder_mut(order.instrument, order.side);
        let level = ladder.unlink(orders, slot);
        self.unlink_account_order(slot);
        self.index.remove(&self.orders, slot);
        (self.orders.remove(slot), level)
    }

    /// Cancels a resting order: releases its hold and reports it. Returns the level
    /// update for the caller to publish (or to fold into a later one).
    pub(crate) fn cancel_resting(
        &mut self,
        slot: Slot,
        reason: CancelReason,
        out: &mut impl EventSink,
    ) -> Event {
        let (order, level) = self.unrest(slot);
        self.release_cancelled(&order, reason, out);
        level_changed(&order, level)
    }

    /// Releases the hold of an order that is already off the book and reports it.
    fn release_cancelled(&mut self, order: &Order, reason: CancelReason, out: &mut impl EventSink) {
        let hold_asset = self.instrument(order.instrument).expect("exists").hold_asset(order.side);
        let hold = self.order_hold(order);
        let balance = self.account_mut(order.account).release(hold_asset, hold);
        out.emit(Event::Cancelled(OrderCancelled {
            order_id: order.id,
            account: order.account,
            instrument: order.instrument,
            client_order_id: order.client_order_id,
            qty_cancelled: order.remaining,
            reason,
        }));
        out.emit(balance_changed(order.account, hold_asset, balance));
    }

    /// Publishes the current total at one price level (zero if it is gone).
    pub(crate) fn emit_level(
        &self,
        instrument: InstrumentId,
        side: Side,
        price: Price,
        out: &mut impl EventSink,
    ) {
        let book = &self.instrument(instrument).expect("exists").book;
        let (qty, orders) = match book.side(side).level(price) {
            Some(level) => (level.qty, level.orders),
            None => (Qty(0), 0),
        };
        out.emit(Event::Level(LevelChanged { instrument, side, price, qty, orders }));
    }

    // ---- matching and settlement ----------------------------------------------------

    /// True if self-trade prevention forbids `taker` trading with `maker`.
    fn self_trade(&self, taker: &Taker, maker: &Order) -> bool {
        match (taker.stp_mode, taker.stp_scope) {
            (StpMode::Allow, _) => false,
            (_, StpScope::Account) => maker.account == taker.account,
            (_, StpScope::Owner) => self.owner_of(maker.account) == taker.owner,
        }
    }

    /// Matches the incoming order against the opposite side in price-time priority
    /// until it is filled, the book no longer crosses, or self-trade prevention stops it.
    /// Each fill publishes the maker's balances; the taker's and the fee account's,
    /// which every fill of the sweep moves, are published once after the last one.
    fn match_taker(&mut self, taker: &mut Taker, out: &mut impl EventSink) -> MatchEnd {
        let filled_before = taker.filled;
        let end = self.sweep(taker, out);
        if taker.filled != filled_before {
            let instrument = self.instrument(taker.instrument).expect("checked");
            let (base, quote, fee_account) =
                (instrument.spec.base, instrument.spec.quote, instrument.spec.fee_account);
            self.emit_balance(taker.account, base, out);
            self.emit_balance(taker.account, quote, out);
            self.emit_balance(fee_account, quote, out);
        }
        end
    }

    /// The matching loop of [`Self::match_taker`], level by level.
    fn sweep(&mut self, taker: &mut Taker, out: &mut impl EventSink) -> MatchEnd {
        let opposite = taker.side.opposite();
        loop {
            let book = &self.instrument(taker.instrument).expect("checked").book;
            let Some(level) = book.side(opposite).best() else { return MatchEnd::Done };
            if !Book::crosses(taker.side, taker.limit, level.price) {
                return MatchEnd::Done;
            }
            let price = level.price;
            let mut slot = level.head;
            let mut end = MatchEnd::Done;
            while slot != NIL && taker.remaining.0 > 0 {
                let maker = *self.orders.get(slot);
                if self.self_trade(taker, &maker) {
                    if taker.stp_mode != StpMode::CancelNewest {
                        // Published once for the whole level below.
                        let _ = self.cancel_resting(slot, CancelReason::SelfTrade, out);
                    }
                    if taker.stp_mode != StpMode::CancelOldest {
                        end = MatchEnd::SelfTradeCancelled;
                        break;
                    }
                } else {
                    self.fill(slot, taker, price, out);
                }
                slot = maker.next;
            }
            self.emit_level(taker.instrument, opposite, price, out);
            if end == MatchEnd::SelfTradeCancelled || taker.remaining.0 == 0 {
                return end;
            }
        }
    }

    /// Executes one fill between the resting order in `slot` and the taker at the
    /// maker's price, and settles it in the same step.
    fn fill(&mut self, slot: Slot, taker: &mut Taker, price: Price, out: &mut impl EventSink) {
        let mut maker = *self.orders.get(slot);
        let qty = Qty(taker.remaining.0.min(maker.remaining.0));
        let instrument = self.instrument(taker.instrument).expect("checked");
        let economics = instrument.economics;
        let (base, quote, fee_account) =
            (instrument.spec.base, instrument.spec.quote, instrument.spec.fee_account);
        // Every fill's notional is bounded by a buy notional checked at acceptance.
        let notional = economics.notional(price, qty).expect("bounded by an accepted notional");
        let maker_fee = Economics::fee(notional, economics.maker_fee_bps);
        let taker_fee = Economics::fee(notional, economics.taker_fee_bps);
        let trade_id = TradeId(self.next_trade_id);
        self.next_trade_id += 1;

        let (buyer_fee, seller_fee) = match taker.side {
            Side::Buy => (taker_fee, maker_fee),
            Side::Sell => (maker_fee, taker_fee),
        };
        let maker_hold = economics.hold_for(maker.side, maker.price, maker.remaining);
        let maker_hold = maker_hold.expect("the hold it was accepted with");
        let maker_hold_after =
            economics.hold_for(maker.side, maker.price, Qty(maker.remaining.0 - qty.0));
        let taker_hold_after =
            economics.hold_for(taker.side, taker.limit, Qty(taker.remaining.0 - qty.0));
        let maker_hold_after = maker_hold_after.expect("smaller than the accepted hold");
        let taker_hold_after = taker_hold_after.expect("smaller than the accepted hold");
        let (buyer, buyer_hold_drop, seller, seller_hold_drop) = match taker.side {
            Side::Buy => (
                taker.account,
                taker.hold - taker_hold_after,
                maker.account,
                maker_hold - maker_hold_after,
            ),
            Side::Sell => (
                maker.account,
                maker_hold - maker_hold_after,
                taker.account,
                taker.hold - taker_hold_after,
            ),
        };
        let base_amount = economics.base_amount(qty).expect("bounded by an accepted hold");
        assert_eq!(seller_hold_drop, base_amount, "a sell holds exactly its base");
        let buyer_cost = notional + buyer_fee;
        assert!(buyer_cost <= buyer_hold_drop, "the hold covers the fill");

        let buyer_account = self.account_mut(buyer);
        buyer_account.consume_held(quote, buyer_cost);
        buyer_account.release(quote, buyer_hold_drop - buyer_cost);
        buyer_account.credit(base, base_amount);
        let seller_account = self.account_mut(seller);
        seller_account.consume_held(base, base_amount);
        seller_account.credit(quote, notional - seller_fee);
        self.account_mut(fee_account).credit(quote, maker_fee + taker_fee);

        taker.remaining.0 -= qty.0;
        taker.filled.0 += qty.0;
        taker.hold = taker_hold_after;
        maker.remaining.0 -= qty.0;
        maker.filled.0 += qty.0;
        let instrument = self.instrument_mut(taker.instrument);
        instrument.last_price = Some(price);
        // A statistic that wraps like any counter (valid trading can pass 2^64 lots).
        instrument.traded_lots = instrument.traded_lots.wrapping_add(qty.0 as u64);
        out.emit(Event::Fill(Fill {
            instrument: taker.instrument,
            trade_id,
            price,
            qty,
            taker_side: taker.side,
            maker_order: maker.id,
            taker_order: taker.id,
            maker_account: maker.account,
            taker_account: taker.account,
            maker_client_id: maker.client_order_id,
            taker_client_id: taker.client_order_id,
            maker_fee,
            taker_fee,
            maker_remaining: maker.remaining,
            taker_remaining: taker.remaining,
        }));
        let trade =
            Trade { instrument: taker.instrument, trade_id, price, qty, taker_side: taker.side };
        out.emit(Event::Trade(trade));
        self.emit_balance(maker.account, base, out);
        self.emit_balance(maker.account, quote, out);

        if maker.remaining.0 == 0 {
            self.unrest(slot);
        } else {
            let (ladder, orders) = self.ladder_mut(taker.instrument, maker.side);
            // Published once for the whole level by the matching loop.
            let _ = ladder.reduce(orders, slot, qty);
            self.orders.get_mut(slot).filled = maker.filled;
        }
    }

    // ---- cancel ---------------------------------------------------------------------

    pub(crate) fn cancel(
        &mut self,
        user: UserId,
        account: AccountId,
        order: OrderRef,
        out: &mut impl EventSink,
    ) -> Result<(), RejectReason> {
        self.acting_account(user, account, true, true)?;
        let slot = self.find_order(account, order)?;
        let level = self.cancel_resting(slot, CancelReason::User, out);
        out.emit(level);
        Ok(())
    }

    pub(crate) fn mass_cancel(
        &mut self,
        user: UserId,
        account: AccountId,
        instrument: Option<InstrumentId>,
        out: &mut impl EventSink,
    ) -> Result<(), RejectReason> {
        let head = self.acting_account(user, account, true, true)?.orders_head;
        if let Some(id) = instrument {
            self.instrument(id).ok_or(RejectReason::UnknownInstrument)?;
        }
        let mut slot = head;
        let mut count = 0u32;
        while slot != NIL {
            let order = *self.orders.get(slot);
            if instrument.is_none_or(|id| id == order.instrument) {
                let level = self.cancel_resting(slot, CancelReason::MassCancel, out);
                out.emit(level);
                count += 1;
            }
            slot = order.account_next;
        }
        out.emit(Event::MassCancelled { account, count });
        Ok(())
    }

    // ---- amend ----------------------------------------------------------------------

    pub(crate) fn amend(
        &mut self,
        user: UserId,
        amend: &Amend,
        out: &mut impl EventSink,
    ) -> Result<(), RejectReason> {
        let (slot, new_hold) = self.check_amend(user, amend)?;
        let order = *self.orders.get(slot);
        let hold_asset = self.instrument(order.instrument).expect("checked").hold_asset(order.side);
        let keeps_priority = amend.price == order.price && amend.qty < order.remaining;
        if keeps_priority {
            let by = Qty(order.remaining.0 - amend.qty.0);
            let (ladder, orders) = self.ladder_mut(order.instrument, order.side);
            let level = ladder.reduce(orders, slot, by);
            let hold = self.order_hold(&order);
            let balance = self.account_mut(order.account).release(hold_asset, hold - new_hold);
            out.emit(Event::Amended(amended(&order, amend, true)));
            out.emit(balance_changed(order.account, hold_asset, balance));
            out.emit(level_changed(&order, level));
            return Ok(());
        }
        // Losing priority is a cancel/replace that keeps the order id: off the book,
        // re-hold at the new terms, match like a new order, rest the remainder.
        let (ladder, orders) = self.ladder_mut(order.instrument, order.side);
        let level = ladder.unlink(orders, slot);
        out.emit(level_changed(&order, level));
        let (hold, owner) = (self.order_hold(&order), self.owner_of(order.account));
        let account = self.account_mut(order.account);
        account.release(hold_asset, hold);
        let balance = account.hold(hold_asset, new_hold);
        out.emit(Event::Amended(amended(&order, amend, false)));
        out.emit(balance_changed(order.account, hold_asset, balance));
        let mut taker = Taker::from_order(&order, owner, hold);
        taker.limit = amend.price;
        taker.remaining = amend.qty;
        taker.hold = new_hold;
        let end = self.match_taker(&mut taker, out);
        // The slot left the book but not the indexes: finish the replace through them.
        let stored = self.orders.get_mut(slot);
        stored.price = taker.limit;
        stored.remaining = taker.remaining;
        stored.filled = taker.filled;
        self.finish_amended(slot, end, out);
        Ok(())
    }

    /// Completes a priority-losing amend: requeue the rest, or drop the order.
    fn finish_amended(&mut self, slot: Slot, end: MatchEnd, out: &mut impl EventSink) {
        let order = *self.orders.get(slot);
        let fully_filled = order.remaining.0 == 0;
        if !fully_filled && end == MatchEnd::Done {
            let (ladder, orders) = self.ladder_mut(order.instrument, order.side);
            let level = ladder.push(orders, slot);
            out.emit(level_changed(&order, level));
            return;
        }
        // Off the book already; cut it out of the account list and indexes.
        self.unlink_account_order(slot);
        self.index.remove(&self.orders, slot);
        self.orders.remove(slot);
        if fully_filled {
            return;
        }
        self.release_cancelled(&order, CancelReason::SelfTrade, out);
    }

    /// Checks an amend; returns the order's slot and its hold at the new terms.
    fn check_amend(&self, user: UserId, amend: &Amend) -> Result<(Slot, i64), RejectReason> {
        let account = self.acting_account(user, amend.account, false, false)?;
        let slot = self.find_order(amend.account, amend.order)?;
        let order = self.orders.get(slot);
        let instrument =
            self.instrument(order.instrument).expect("a live order's instrument exists");
        if instrument.status == InstrumentStatus::Halted {
            return Err(RejectReason::InstrumentHalted);
        }
        if amend.price.0 <= 0 {
            return Err(RejectReason::PriceNotPositive);
        }
        if amend.qty.0 <= 0 {
            return Err(RejectReason::QtyNotPositive);
        }
        if amend.qty > instrument.spec.qty_max {
            return Err(RejectReason::QtyAboveMax);
        }
        if amend.price == order.price && amend.qty == order.remaining {
            return Err(RejectReason::AmendNoChange);
        }
        let economics = instrument.economics;
        let reduces_in_place = amend.price == order.price && amend.qty < order.remaining;
        // Reducing in place cannot break the band or notional checks the order passed.
        if !reduces_in_place {
            let (low, high) = instrument.band();
            if amend.price < low || amend.price > high {
                return Err(RejectReason::PriceOutsideBand);
            }
            let notional = economics.notional(amend.price, amend.qty);
            let notional = notional.ok_or(RejectReason::ArithmeticOverflow)?;
            if notional > instrument.spec.notional_max {
                return Err(RejectReason::NotionalAboveMax);
            }
        }
        let new_hold = economics.hold_for(order.side, amend.price, amend.qty);
        let new_hold = new_hold.ok_or(RejectReason::ArithmeticOverflow)?;
        if reduces_in_place {
            return Ok((slot, new_hold));
        }
        let available = account.balance(instrument.hold_asset(order.side)).available;
        if new_hold - self.order_hold(order) > available {
            return Err(RejectReason::InsufficientBalance);
        }
        if order.flags.post_only() && instrument.book.would_trade(order.side, amend.price) {
            return Err(RejectReason::PostOnlyWouldCross);
        }
        if !instrument.book.side(order.side).has_room_for(amend.price) {
            return Err(RejectReason::BookFull);
        }
        Ok((slot, new_hold))
    }
}

/// The public update of the level `order` rests (or rested) on.
fn level_changed(order: &Order, (qty, orders): (Qty, u32)) -> Event {
    let (instrument, side, price) = (order.instrument, order.side, order.price);
    Event::Level(LevelChanged { instrument, side, price, qty, orders })
}

fn accepted(taker: &Taker, qty: Qty, hold: i64) -> OrderAccepted {
    OrderAccepted {
        order_id: taker.id,
        account: taker.account,
        instrument: taker.instrument,
        client_order_id: taker.client_order_id,
        side: taker.side,
        price: taker.limit,
        qty,
        hold,
    }
}

fn cancelled(taker: &Taker, reason: CancelReason) -> OrderCancelled {
    OrderCancelled {
        order_id: taker.id,
        account: taker.account,
        instrument: taker.instrument,
        client_order_id: taker.client_order_id,
        qty_cancelled: taker.remaining,
        reason,
    }
}

fn amended(order: &Order, amend: &Amend, priority_kept: bool) -> OrderAmended {
    OrderAmended {
        order_id: order.id,
        account: order.account,
        instrument: order.instrument,
        client_order_id: order.client_order_id,
        price: amend.price,
        qty: amend.qty,
        priority_kept,
    }
}
