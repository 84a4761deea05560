//! Admin and setup commands: users, assets, instruments, accounts, freezes and halts.
//! All need the admin role. (Deposits, withdrawals and payment limits are in
//! `payments`.)

use crate::book::{Book, NIL};
use crate::command::{Dec, InstrumentSpec};
use crate::engine::{Engine, Instrument};
use crate::event::{CancelReason, Event, EventSink};
use crate::ledger::{Account, Asset, Economics};
use crate::limits::{ASSETS_MAX, INSTRUMENTS_MAX};
use crate::reject::RejectReason;
use crate::types::*;
use rust_decimal::Decimal;

/// Largest minor-unit scale: 10^18 still fits an i64.
const ASSET_SCALE_MAX: u8 = 18;

/// Widest price band, in basis points (plus or minus 100 %).
const BAND_BPS_MAX: u32 = 10_000;

/// Largest fee or rebate magnitude, in basis points (100 % of notional).
const FEE_BPS_MAX: i32 = 10_000;

impl Engine {
    pub(crate) fn create_user(
        &mut self,
        actor: UserId,
        user: UserId,
        role: Role,
        out: &mut impl EventSink,
    ) -> Result<(), RejectReason> {
        self.require_admin(actor)?;
        if user.0 >= self.limits.users_max {
            return Err(RejectReason::IdOutOfRange);
        }
        if self.role(user).is_ok() {
            return Err(RejectReason::AlreadyExists);
        }
        let index = user.0 as usize;
        if self.users.len() <= index {
            self.users.resize(index + 1, None);
        }
        self.users[index] = Some(role);
        out.emit(Event::UserCreated { user, role });
        Ok(())
    }

    pub(crate) fn create_asset(
        &mut self,
        actor: UserId,
        asset: AssetId,
        symbol: Symbol,
        scale: u8,
        out: &mut impl EventSink,
    ) -> Result<(), RejectReason> {
        self.require_admin(actor)?;
        let index = asset.0 as usize;
        if index >= ASSETS_MAX {
            return Err(RejectReason::IdOutOfRange);
        }
        if self.assets[index].is_some() {
            return Err(RejectReason::AlreadyExists);
        }
        if !symbol.is_valid() || scale > ASSET_SCALE_MAX {
            return Err(RejectReason::InvalidDefinition);
        }
        self.assets[index] = Some(Asset { symbol, scale, supply: 0 });
        out.emit(Event::AssetCreated { asset, scale });
        Ok(())
    }

    pub(crate) fn create_instrument(
        &mut self,
        actor: UserId,
        spec: &InstrumentSpec,
        out: &mut impl EventSink,
    ) -> Result<(), RejectReason> {
        self.require_admin(actor)?;
        let index = spec.instrument.0 as usize;
        if index >= INSTRUMENTS_MAX {
            return Err(RejectReason::IdOutOfRange);
        }
        if self.instrument(spec.instrument).is_some() {
            return Err(RejectReason::AlreadyExists);
        }
        let economics = self.check_instrument(spec)?;
        if self.instruments.len() <= index {
            self.instruments.resize(index + 1, None);
        }
        self.instruments[index] = Some(Instrument {
            spec: *spec,
            economics,
            status: InstrumentStatus::Trading,
            last_price: None,
            book: Book::new(self.limits.levels_per_side_max as usize),
            traded_lots: 0,
        });
        out.emit(Event::InstrumentCreated { instrument: spec.instrument });
        Ok(())
    }

    /// Validates a definition and derives its integer economics.
    fn check_instrument(&self, spec: &InstrumentSpec) -> Result<Economics, RejectReason> {
        let asset = |id: AssetId| {
            self.assets.get(id.0 as usize).copied().flatten().ok_or(RejectReason::UnknownAsset)
        };
        let (base, quote) = (asset(spec.base)?, asset(spec.quote)?);
        let fee_account = self.account(spec.fee_account).ok_or(RejectReason::UnknownAccount)?;
        // A closed account can never pay out again: fees collected there would be stuck
        // (and a closed account holding money is not a valid snapshot).
        if fee_account.status == AccountStatus::Closed {
            return Err(RejectReason::AccountClosed);
        }
        let invalid = Err(RejectReason::InvalidDefinition);
        let fees_ok = spec.taker_fee_bps >= 0
            && spec.taker_fee_bps <= FEE_BPS_MAX
            && spec.maker_fee_bps.unsigned_abs() <= FEE_BPS_MAX.unsigned_abs()
            // A rebate is paid out of the taker fee of the same fill.
            && spec.taker_fee_bps + spec.maker_fee_bps >= 0;
        let shape_ok = spec.base != spec.quote
            && spec.symbol.is_valid()
            && spec.reference_price.0 > 0
            && spec.band_bps > 0
            && spec.band_bps <= BAND_BPS_MAX
            && spec.qty_max.0 > 0
            && spec.notional_max > 0;
        if !fees_ok || !shape_ok {
            return invalid;
        }
        let (Some(tick), Some(lot)) = (decimal(spec.tick_size), decimal(spec.lot_size)) else {
            return invalid;
        };
        // One lot in base minor units, and one tick x one lot in quote minor units, must
        // be whole numbers: otherwise the integer engine could not settle exactly.
        let base_per_lot = minor_units(lot, base.scale);
        let quote_per_tick_lot = tick.checked_mul(lot).and_then(|v| minor_units(v, quote.scale));
        let (Some(base_per_lot), Some(quote_per_tick_lot)) = (base_per_lot, quote_per_tick_lot)
        else {
            return invalid;
        };
        Ok(Economics {
            base_per_lot,
            quote_per_tick_lot,
            maker_fee_bps: spec.maker_fee_bps,
            taker_fee_bps: spec.taker_fee_bps,
        })
    }

    pub(crate) fn create_account(
        &mut self,
        actor: UserId,
        account: AccountId,
        owner: UserId,
        out: &mut impl EventSink,
    ) -> Result<(), RejectReason> {
        self.require_admin(actor)?;
        if account.0 >= self.limits.accounts_max {
            return Err(RejectReason::IdOutOfRange);
        }
        if self.account(account).is_some() {
            return Err(RejectReason::AlreadyExists);
        }
        self.role(owner)?;
        let index = account.0 as usize;
        if self.accounts.len() <= index {
            self.accounts.resize(index + 1, None);
        }
        self.accounts[index] = Some(Account::new(owner));
        out.emit(Event::AccountCreated { account, owner });
        Ok(())
    }

    pub(crate) fn set_account_status(
        &mut self,
        actor: UserId,
        account: AccountId,
        status: AccountStatus,
        out: &mut impl EventSink,
    ) -> Result<(), RejectReason> {
        let found = self.admin_open_account(actor, account)?;
        if found.status == status {
            return Err(RejectReason::StatusUnchanged);
        }
        let empty = found.open_orders == 0 && found.balances.iter().all(|b| b.is_zero());
        if status == AccountStatus::Closed && !empty {
            return Err(RejectReason::AccountNotEmpty);
        }
        // Fees keep arriving in a fee account; closed, they could never leave it.
        let collects_fees =
            self.instruments.iter().flatten().any(|i| i.spec.fee_account == account);
        if status == AccountStatus::Closed && collects_fees {
            return Err(RejectReason::AccountInUse);
        }
        self.account_mut(account).status = status;
        if status == AccountStatus::Closed {
            // Nothing can debit a closed account again: its limits and velocity sums go
            // (and its credit limits leave the asset's credit total); its debits stay in
            // the velocity log, counted nowhere, until they are a day old.
            self.payments.forget_account(account);
        }
        out.emit(Event::AccountStatusChanged { account, status });
        Ok(())
    }

    pub(crate) fn set_instrument_status(
        &mut self,
        actor: UserId,
        instrument: InstrumentId,
        status: InstrumentStatus,
        cancel_resting: bool,
        out: &mut impl EventSink,
    ) -> Result<(), RejectReason> {
        self.require_admin(actor)?;
        let found = self.instrument(instrument).ok_or(RejectReason::UnknownInstrument)?;
        if found.status == status {
            return Err(RejectReason::StatusUnchanged);
        }
        self.instrument_mut(instrument).status = status;
        out.emit(Event::InstrumentStatusChanged { instrument, status });
        if status == InstrumentStatus::Halted && cancel_resting {
            self.cancel_book(instrument, out);
        }
        Ok(())
    }

    /// Cancels every resting order of an instrument, bids then asks, each side in
    /// price-time priority.
    fn cancel_book(&mut self, instrument: InstrumentId, out: &mut impl EventSink) {
        for side in [Side::Buy, Side::Sell] {
            loop {
                let book = &self.instrument(instrument).expect("checked").book;
                let Some(level) = book.side(side).best() else { break };
                let head = level.head;
                assert_ne!(head, NIL);
                // One update per level, when it empties.
                let update = self.cancel_resting(head, CancelReason::Halt, out);
                if matches!(update, Event::Level(level) if level.orders == 0) {
                    out.emit(update);
                }
            }
        }
    }

    /// The asset, or `UnknownAsset`.
    pub(crate) fn asset(&self, asset: AssetId) -> Result<&Asset, RejectReason> {
        match self.assets.get(asset.0 as usize) {
            Some(Some(found)) => Ok(found),
            _ => Err(RejectReason::UnknownAsset),
        }
    }
}

/// A positive definition decimal, or `None`.
fn decimal(value: Dec) -> Option<Decimal> {
    let scale = u32::from(value.scale);
    if value.mantissa <= 0 || scale > 28 {
        return None;
    }
    Some(Decimal::new(value.mantissa, scale))
}

/// `value` expressed in minor units of an asset with `scale` decimals, if it is a whole,
/// positive number of them that fits an i64.
fn minor_units(value: Decimal, scale: u8) -> Option<i64> {
    let factor = Decimal::from_i128_with_scale(10i128.pow(u32::from(scale)), 0);
    let units = value.checked_mul(factor)?;
    if !units.fract().is_zero() || units <= Decimal::ZERO {
        return None;
    }
    i64::try_from(units).ok()
}
