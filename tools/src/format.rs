//! Numbers as the command line prints them: prices and quantities with as many decimals
//! as the instrument's tick and lot (zero included), and counts with a noun that agrees.

use fincore_engine::units::{dec_to_decimal, lots_to_qty, ticks_to_price};
use fincore_engine::{Dec, InstrumentSpec, Price, Qty};
use rust_decimal::Decimal;

/// A price in ticks as a decimal with the tick size's decimals (`60000.00`, `0.00`).
pub fn price(spec: &InstrumentSpec, price: Price) -> Decimal {
    with_scale_of(ticks_to_price(spec, price), spec.tick_size)
}

/// A quantity in lots as a decimal with the lot size's decimals (`0.0100`, `0.0000`).
pub fn qty(spec: &InstrumentSpec, qty: Qty) -> Decimal {
    with_scale_of(lots_to_qty(spec, qty), spec.lot_size)
}

/// `value` with as many decimals as `unit` has. A product keeps the decimals of its
/// factors, except a zero one, which the decimal library prints as `0`; then `filled 0`
/// stood beside `0.0100`.
fn with_scale_of(mut value: Decimal, unit: Dec) -> Decimal {
    if let Some(unit) = dec_to_decimal(unit) {
        // Exact: the value is a whole number of units, so it has no more decimals.
        value.rescale(unit.scale());
    }
    value
}

/// `count` and `noun`, which gets an `s` unless the count is 1: `1 order`, `2 orders`.
pub fn count(count: impl Into<u64>, noun: &str) -> String {
    let count = count.into();
    if count == 1 { format!("1 {noun}") } else { format!("{count} {noun}s") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fincore_engine::{AccountId, AssetId, InstrumentId, Symbol};

    #[test]
    fn zero_keeps_the_units_decimals() {
        let spec = InstrumentSpec {
            instrument: InstrumentId(0),
            symbol: Symbol::new("BTC-USD").unwrap(),
            base: AssetId(1),
            quote: AssetId(0),
            tick_size: Dec { mantissa: 1, scale: 2 },
            lot_size: Dec { mantissa: 1, scale: 4 },
            reference_price: Price(6_000_000),
            band_bps: 1000,
            qty_max: Qty(1_000_000),
            notional_max: 1,
            maker_fee_bps: 1,
            taker_fee_bps: 5,
            fee_account: AccountId(1),
        };
        assert_eq!(qty(&spec, Qty(0)).to_string(), "0.0000");
        assert_eq!(qty(&spec, Qty(100)).to_string(), "0.0100");
        assert_eq!(price(&spec, Price(0)).to_string(), "0.00");
        assert_eq!(price(&spec, Price(6_000_000)).to_string(), "60000.00");
        assert_eq!(
            (count(1u32, "order"), count(0u32, "order")),
            ("1 order".into(), "0 orders".into())
        );
    }
}
