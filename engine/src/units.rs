//! The edge between human decimals and engine integers. Clients, configuration and
//! reports speak `rust_decimal::Decimal` (`price = 101.25`); the engine speaks ticks,
//! lots and minor units. Conversion is exact or it fails with the reject reason the
//! engine would give, so a client learns of an off-grid price before sending it.

use crate::command::{Dec, InstrumentSpec};
use crate::reject::RejectReason;
use crate::types::{Price, Qty};
use rust_decimal::Decimal;

/// A [`Dec`] as a `Decimal`, if its scale is representable (at most 28).
pub fn dec_to_decimal(value: Dec) -> Option<Decimal> {
    (value.scale <= 28).then(|| Decimal::new(value.mantissa, u32::from(value.scale)))
}

/// A `Decimal` as a [`Dec`], if its mantissa fits an i64.
pub fn decimal_to_dec(value: Decimal) -> Option<Dec> {
    let value = value.normalize();
    let mantissa = i64::try_from(value.mantissa()).ok()?;
    Some(Dec { mantissa, scale: value.scale() as u8 })
}

/// `value / step` if it is a whole number that fits an i64, else `off_grid`.
fn whole_steps(value: Decimal, step: Dec, off_grid: RejectReason) -> Result<i64, RejectReason> {
    let step = dec_to_decimal(step).filter(|s| *s > Decimal::ZERO);
    let step = step.ok_or(RejectReason::InvalidDefinition)?;
    let steps = value.checked_div(step).ok_or(RejectReason::ArithmeticOverflow)?;
    if !steps.fract().is_zero() {
        return Err(off_grid);
    }
    i64::try_from(steps).map_err(|_| RejectReason::ArithmeticOverflow)
}

/// A human price as ticks of the instrument: `PriceNotPositive` if it is not above
/// zero, `PriceOffTick` if it is not a multiple of the tick size.
pub fn price_to_ticks(spec: &InstrumentSpec, price: Decimal) -> Result<Price, RejectReason> {
    if price <= Decimal::ZERO {
        return Err(RejectReason::PriceNotPositive);
    }
    whole_steps(price, spec.tick_size, RejectReason::PriceOffTick).map(Price)
}

/// A human quantity as lots: `QtyNotPositive` or `QtyOffLot` when it does not fit.
pub fn qty_to_lots(spec: &InstrumentSpec, qty: Decimal) -> Result<Qty, RejectReason> {
    if qty <= Decimal::ZERO {
        return Err(RejectReason::QtyNotPositive);
    }
    whole_steps(qty, spec.lot_size, RejectReason::QtyOffLot).map(Qty)
}

/// Ticks back to a human price.
pub fn ticks_to_price(spec: &InstrumentSpec, price: Price) -> Decimal {
    Decimal::from(price.0) * dec_to_decimal(spec.tick_size).unwrap_or_default()
}

/// Lots back to a human quantity.
pub fn lots_to_qty(spec: &InstrumentSpec, qty: Qty) -> Decimal {
    Decimal::from(qty.0) * dec_to_decimal(spec.lot_size).unwrap_or_default()
}

/// Minor units of an asset with `scale` decimals back to a human amount.
pub fn minor_to_decimal(amount: i64, scale: u8) -> Decimal {
    Decimal::new(amount, u32::from(scale.min(28)))
}

/// A human amount in minor units of an asset with `scale` decimals, if exact.
pub fn decimal_to_minor(amount: Decimal, scale: u8) -> Result<i64, RejectReason> {
    let step = Dec { mantissa: 1, scale };
    whole_steps(amount, step, RejectReason::InvalidDefinition)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::*;
    use std::str::FromStr;

    fn spec() -> InstrumentSpec {
        InstrumentSpec {
            instrument: InstrumentId(1),
            symbol: Symbol::new("BTC-USD").unwrap(),
            base: AssetId(1),
            quote: AssetId(0),
            tick_size: Dec { mantissa: 1, scale: 2 },
            lot_size: Dec { mantissa: 1, scale: 4 },
            reference_price: Price(1_000_000),
            band_bps: 1_000,
            qty_max: Qty(1_000_000),
            notional_max: 1 << 40,
            maker_fee_bps: 0,
            taker_fee_bps: 0,
            fee_account: AccountId(0),
        }
    }

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn exact_prices_convert_and_off_grid_prices_are_refused() {
        let spec = spec();
        assert_eq!(price_to_ticks(&spec, d("101.25")), Ok(Price(10_125)));
        assert_eq!(price_to_ticks(&spec, d("101.255")), Err(RejectReason::PriceOffTick));
        assert_eq!(price_to_ticks(&spec, d("0")), Err(RejectReason::PriceNotPositive));
        assert_eq!(price_to_ticks(&spec, d("-1")), Err(RejectReason::PriceNotPositive));
        assert_eq!(ticks_to_price(&spec, Price(10_125)), d("101.25"));
    }

    #[test]
    fn exact_quantities_convert_and_off_lot_quantities_are_refused() {
        let spec = spec();
        assert_eq!(qty_to_lots(&spec, d("0.5")), Ok(Qty(5_000)));
        assert_eq!(qty_to_lots(&spec, d("0.00005")), Err(RejectReason::QtyOffLot));
        assert_eq!(qty_to_lots(&spec, d("0")), Err(RejectReason::QtyNotPositive));
        assert_eq!(qty_to_lots(&spec, d("1e20")), Err(RejectReason::ArithmeticOverflow));
        assert_eq!(lots_to_qty(&spec, Qty(5_000)), d("0.5"));
    }

    #[test]
    fn minor_units_round_trip() {
        assert_eq!(decimal_to_minor(d("12.34"), 2), Ok(1_234));
        assert_eq!(decimal_to_minor(d("12.345"), 2), Err(RejectReason::InvalidDefinition));
        assert_eq!(minor_to_decimal(1_234, 2), d("12.34"));
        assert_eq!(decimal_to_dec(d("0.0100")), Some(Dec { mantissa: 1, scale: 2 }));
    }
}
