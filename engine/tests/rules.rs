//! Rule tests: one small test per reject reason, order type, self-trade prevention mode
//! and amend rule, with every expected balance computed by hand in the comments.
//!
//! Units of the standard instrument `COIN0-USD` (see `testkit::instrument_spec`): tick
//! 0.01 USD, lot 0.001 coin, USD has 6 decimals and the coin 8. So:
//!
//! - one lot is 0.001 coin = 100_000 coin minor units; 1.000 coin = 100_000_000;
//! - one tick times one lot is 0.00001 USD = 10 USD minor units, so
//!   notional = price_ticks x qty_lots x 10 (100.00 x 1.000 = 10_000 x 1_000 x 10 =
//!   100_000_000 minor = 100 USD);
//! - taker fee 5 bp, maker fee -1 bp (a rebate), each rounded toward zero;
//! - a buy holds its notional at its limit plus 5 bp (the larger of the two fees), a sell
//!   holds its coins;
//! - prices must lie within 10 % of the last trade price (100.00 before the first
//!   trade): [90.00, 110.00] = [9_000, 11_000] ticks at first.
//!
//! Every command goes through `Scenario`, which checks every engine invariant after it;
//! every rejection goes through `Scenario::expect_reject`, which also proves that the
//! rejected command changed nothing.

// Each integration-test crate uses its own subset of the shared helpers.
#[allow(dead_code)]
mod common;

use common::scenario::*;
use fincore_engine::testkit::instrument_spec;
use fincore_engine::*;
use std::collections::HashSet;

/// 1.000 coin, in lots.
const ONE: i64 = 1_000;

/// 1.000 coin, in coin minor units.
const COIN_ONE: i64 = 100_000_000;

fn new_order(order: NewOrder) -> CommandBody {
    CommandBody::NewOrder(order)
}

/// A variant of the standard instrument under another id and symbol, for tests that need
/// different limits. It trades the same coin against USD, so traders are already funded.
fn custom_spec(id: u16, symbol: &str) -> InstrumentSpec {
    let symbol = Symbol::new(symbol).expect("short");
    InstrumentSpec { instrument: InstrumentId(id), symbol, ..instrument_spec(0) }
}

fn status(account: AccountId, status: AccountStatus) -> CommandBody {
    CommandBody::SetAccountStatus { account, status }
}

fn halt(instrument: InstrumentId, cancel_resting: bool) -> CommandBody {
    let status = InstrumentStatus::Halted;
    CommandBody::SetInstrumentStatus { instrument, status, cancel_resting }
}

fn resume(instrument: InstrumentId) -> CommandBody {
    let status = InstrumentStatus::Trading;
    CommandBody::SetInstrumentStatus { instrument, status, cancel_resting: false }
}

fn query_reject(account: AccountId, reason: RejectReason) -> Vec<Event> {
    let kind = CommandKind::Query;
    vec![Event::Rejected(Rejected { kind, account, client_id: 0, reason })]
}

// ==== reject reasons: the catalogue ===================================================

/// The reasons this file has a dedicated test for. `PriceOffTick` and `QtyOffLot` are
/// raised where decimals become integers (`units`), and are tested there below.
const TESTED_REASONS: &[RejectReason] = &[
    RejectReason::UnknownUser,
    RejectReason::NotAdmin,
    RejectReason::UnknownAccount,
    RejectReason::AccountClosed,
    RejectReason::AccountNotOwned,
    RejectReason::AccountFrozen,
    RejectReason::UnknownInstrument,
    RejectReason::InstrumentHalted,
    RejectReason::InvalidOrderType,
    RejectReason::PriceNotPositive,
    RejectReason::PriceOffTick,
    RejectReason::QtyNotPositive,
    RejectReason::QtyOffLot,
    RejectReason::QtyAboveMax,
    RejectReason::PriceOutsideBand,
    RejectReason::NotionalAboveMax,
    RejectReason::ArithmeticOverflow,
    RejectReason::DuplicateClientOrderId,
    RejectReason::TooManyOpenOrders,
    RejectReason::InsufficientBalance,
    RejectReason::PostOnlyWouldCross,
    RejectReason::BookFull,
    RejectReason::UnknownOrder,
    RejectReason::AmendNoChange,
    RejectReason::AlreadyExists,
    RejectReason::UnknownAsset,
    RejectReason::InvalidDefinition,
    RejectReason::AmountNotPositive,
    RejectReason::IdOutOfRange,
    RejectReason::StatusUnchanged,
    RejectReason::AccountNotEmpty,
    RejectReason::AccountInUse,
];

#[test]
fn reject_codes_are_unique_ordered_and_round_trip() {
    let mut codes = HashSet::new();
    for &reason in RejectReason::ALL {
        assert!(codes.insert(reason.code()), "duplicate code {reason}");
        assert_eq!(RejectReason::from_code(reason.code()), Some(reason));
    }
    // ALL is in number order, which is also precedence order.
    assert!(RejectReason::ALL.windows(2).all(|pair| pair[0].code() < pair[1].code()));
    assert_eq!(RejectReason::from_code(0), None);
    assert_eq!(RejectReason::from_code(999), None);
    // A few pinned wire numbers: these may never change meaning.
    assert_eq!(RejectReason::UnknownUser.code(), 100);
    assert_eq!(RejectReason::InsufficientBalance.code(), 502);
    assert_eq!(RejectReason::AccountNotEmpty.code(), 806);
}

#[test]
fn every_reject_reason_has_a_rule_test() {
    // Adding a reason to the enum fails this test until the reason gets a test here.
    // The payment-only reasons (204 and the 10xx group) have theirs in payments.rs,
    // which checks its own list the same way.
    let payment_only = |r: &&RejectReason| **r == RejectReason::AccountBlocked || r.code() >= 1000;
    let expected: Vec<RejectReason> =
        RejectReason::ALL.iter().filter(|r| !payment_only(r)).copied().collect();
    assert_eq!(TESTED_REASONS, expected.as_slice());
}

// ==== 1xx: who is acting ==============================================================

#[test]
fn reject_unknown_user() {
    let mut s = Scenario::new();
    let stranger = UserId(99);
    let order = new_order(buy(ALICE_ACCOUNT, 10_000, ONE));
    s.expect_reject(stranger, order, RejectReason::UnknownUser);
    let create = CommandBody::CreateUser { user: UserId(50), role: Role::Admin };
    s.expect_reject(stranger, create, RejectReason::UnknownUser);
    let answer = s.query(stranger, Query::Balances { account: ALICE_ACCOUNT });
    assert_eq!(answer, query_reject(ALICE_ACCOUNT, RejectReason::UnknownUser));
    s.engine.check_invariants().unwrap();
}

#[test]
fn reject_not_admin() {
    let mut s = Scenario::new();
    let create = CommandBody::CreateUser { user: UserId(50), role: Role::Admin };
    s.expect_reject(ALICE, create, RejectReason::NotAdmin);
    // A trader cannot fund, drain, freeze or open its own account either.
    let deposit = CommandBody::Deposit {
        account: ALICE_ACCOUNT,
        asset: USD,
        amount: 1,
        client_payment_id: AUTO_PID,
    };
    s.expect_reject(ALICE, deposit, RejectReason::NotAdmin);
    let withdraw = CommandBody::Withdraw {
        account: ALICE_ACCOUNT,
        asset: USD,
        amount: 1,
        client_payment_id: AUTO_PID,
    };
    s.expect_reject(ALICE, withdraw, RejectReason::NotAdmin);
    let freeze = status(ALICE_ACCOUNT, AccountStatus::Frozen);
    s.expect_reject(ALICE, freeze, RejectReason::NotAdmin);
    let open = CommandBody::CreateAccount { account: AccountId(6), owner: ALICE };
    s.expect_reject(ALICE, open, RejectReason::NotAdmin);
    s.expect_reject(ALICE, halt(COIN_USD, true), RejectReason::NotAdmin);
    s.engine.check_invariants().unwrap();
}

// ==== 2xx: the account ================================================================

#[test]
fn reject_unknown_account() {
    let mut s = Scenario::new();
    let nowhere = AccountId(9);
    s.expect_reject(ALICE, new_order(buy(nowhere, 10_000, ONE)), RejectReason::UnknownAccount);
    let deposit = CommandBody::Deposit {
        account: nowhere,
        asset: USD,
        amount: 1,
        client_payment_id: AUTO_PID,
    };
    s.expect_reject(ADMIN, deposit, RejectReason::UnknownAccount);
    let freeze = status(nowhere, AccountStatus::Frozen);
    s.expect_reject(ADMIN, freeze, RejectReason::UnknownAccount);
    // An instrument's fee account must exist.
    let spec = InstrumentSpec { fee_account: nowhere, ..custom_spec(5, "TEST-USD") };
    let list = CommandBody::CreateInstrument(spec);
    s.expect_reject(ADMIN, list, RejectReason::UnknownAccount);
    let answer = s.query(ADMIN, Query::Balances { account: nowhere });
    assert_eq!(answer, query_reject(nowhere, RejectReason::UnknownAccount));
    s.engine.check_invariants().unwrap();
}

#[test]
fn reject_account_closed() {
    let mut s = Scenario::new();
    let spare = AccountId(5);
    s.add_account(spare, ALICE);
    s.admin(status(spare, AccountStatus::Closed));
    s.expect_reject(ALICE, new_order(buy(spare, 10_000, ONE)), RejectReason::AccountClosed);
    let mass_cancel = CommandBody::MassCancel { account: spare, instrument: None };
    s.expect_reject(ALICE, mass_cancel, RejectReason::AccountClosed);
    let deposit =
        CommandBody::Deposit { account: spare, asset: USD, amount: 1, client_payment_id: AUTO_PID };
    s.expect_reject(ADMIN, deposit, RejectReason::AccountClosed);
    // Closing is permanent: not even the admin can reopen it.
    let reopen = status(spare, AccountStatus::Active);
    s.expect_reject(ADMIN, reopen, RejectReason::AccountClosed);
    // A closed account stays readable.
    assert_eq!(s.balance(spare, USD), (0, 0));
    // Nor can it collect an instrument's fees: they could never leave it again.
    let listing = InstrumentSpec { fee_account: spare, ..custom_spec(5, "FEE-USD") };
    s.expect_reject(ADMIN, CommandBody::CreateInstrument(listing), RejectReason::AccountClosed);
    s.engine.check_invariants().unwrap();
}

#[test]
fn reject_account_not_owned() {
    let mut s = Scenario::new();
    let alice_bid = s.place(ALICE, buy(ALICE_ACCOUNT, 9_900, ONE));
    let bob_order = new_order(buy(ALICE_ACCOUNT, 9_900, ONE));
    s.expect_reject(BOB, bob_order, RejectReason::AccountNotOwned);
    s.expect_reject(BOB, cancel(ALICE_ACCOUNT, alice_bid), RejectReason::AccountNotOwned);
    let bob_amend = amend(ALICE_ACCOUNT, alice_bid, 9_800, ONE);
    s.expect_reject(BOB, bob_amend, RejectReason::AccountNotOwned);
    let mass_cancel = CommandBody::MassCancel { account: ALICE_ACCOUNT, instrument: None };
    s.expect_reject(BOB, mass_cancel, RejectReason::AccountNotOwned);
    // The admin may not trade on someone else's account...
    let admin_order = new_order(buy(ALICE_ACCOUNT, 9_900, ONE));
    s.expect_reject(ADMIN, admin_order, RejectReason::AccountNotOwned);
    // ...but may cancel on it (operator kill switch).
    let events = s.trade(ADMIN, cancel(ALICE_ACCOUNT, alice_bid));
    assert_eq!(cancels(&events)[0].reason, CancelReason::User);
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE, 0));
    s.engine.check_invariants().unwrap();
}

#[test]
fn reject_account_frozen() {
    let mut s = Scenario::new();
    let resting = s.place(ALICE, buy(ALICE_ACCOUNT, 9_900, ONE));
    s.admin(status(ALICE_ACCOUNT, AccountStatus::Frozen));
    let order = new_order(buy(ALICE_ACCOUNT, 9_900, ONE));
    s.expect_reject(ALICE, order, RejectReason::AccountFrozen);
    let more = amend(ALICE_ACCOUNT, resting, 9_900, 2 * ONE);
    s.expect_reject(ALICE, more, RejectReason::AccountFrozen);
    let withdraw = CommandBody::Withdraw {
        account: ALICE_ACCOUNT,
        asset: USD,
        amount: 1,
        client_payment_id: AUTO_PID,
    };
    s.expect_reject(ADMIN, withdraw, RejectReason::AccountFrozen);
    s.engine.check_invariants().unwrap();
}

// ==== 3xx: the instrument =============================================================

#[test]
fn reject_unknown_instrument() {
    let mut s = Scenario::new();
    let nowhere = InstrumentId(7);
    let order = new_order(buy(ALICE_ACCOUNT, 10_000, ONE).on(nowhere));
    s.expect_reject(ALICE, order, RejectReason::UnknownInstrument);
    let mass_cancel = CommandBody::MassCancel { account: ALICE_ACCOUNT, instrument: Some(nowhere) };
    s.expect_reject(ALICE, mass_cancel, RejectReason::UnknownInstrument);
    s.expect_reject(ADMIN, halt(nowhere, false), RejectReason::UnknownInstrument);
    let depth = s.query(ALICE, Query::Depth { instrument: nowhere, levels: 5 });
    assert_eq!(depth, query_reject(AccountId(0), RejectReason::UnknownInstrument));
    s.engine.check_invariants().unwrap();
}

#[test]
fn reject_instrument_halted() {
    let mut s = Scenario::new();
    let resting = s.place(ALICE, buy(ALICE_ACCOUNT, 9_900, ONE));
    s.admin(halt(COIN_USD, false));
    let order = new_order(sell(BOB_ACCOUNT, 10_100, ONE));
    s.expect_reject(BOB, order, RejectReason::InstrumentHalted);
    let reprice = amend(ALICE_ACCOUNT, resting, 9_800, ONE);
    s.expect_reject(ALICE, reprice, RejectReason::InstrumentHalted);
    s.engine.check_invariants().unwrap();
}

// ==== 4xx: the order's own fields =====================================================

#[test]
fn reject_invalid_order_type() {
    let mut s = Scenario::new();
    let market_gtc = buy(ALICE_ACCOUNT, 0, ONE).market();
    s.expect_reject(ALICE, new_order(market_gtc), RejectReason::InvalidOrderType);
    let post_only_ioc = buy(ALICE_ACCOUNT, 9_900, ONE).post_only().ioc();
    s.expect_reject(ALICE, new_order(post_only_ioc), RejectReason::InvalidOrderType);
    let post_only_fok = buy(ALICE_ACCOUNT, 9_900, ONE).post_only().fok();
    s.expect_reject(ALICE, new_order(post_only_fok), RejectReason::InvalidOrderType);
    let post_only_market = sell(ALICE_ACCOUNT, 0, ONE).market().ioc().post_only();
    s.expect_reject(ALICE, new_order(post_only_market), RejectReason::InvalidOrderType);
    s.engine.check_invariants().unwrap();
}

#[test]
fn reject_price_not_positive() {
    let mut s = Scenario::new();
    let zero = buy(ALICE_ACCOUNT, 0, ONE);
    s.expect_reject(ALICE, new_order(zero), RejectReason::PriceNotPositive);
    let negative = sell(ALICE_ACCOUNT, -10_000, ONE);
    s.expect_reject(ALICE, new_order(negative), RejectReason::PriceNotPositive);
    let resting = s.place(ALICE, buy(ALICE_ACCOUNT, 9_900, ONE));
    let to_zero = amend(ALICE_ACCOUNT, resting, 0, ONE);
    s.expect_reject(ALICE, to_zero, RejectReason::PriceNotPositive);
    s.engine.check_invariants().unwrap();
}

#[test]
fn reject_qty_not_positive() {
    let mut s = Scenario::new();
    let zero = buy(ALICE_ACCOUNT, 10_000, 0);
    s.expect_reject(ALICE, new_order(zero), RejectReason::QtyNotPositive);
    let negative = sell(ALICE_ACCOUNT, 10_000, -1);
    s.expect_reject(ALICE, new_order(negative), RejectReason::QtyNotPositive);
    let resting = s.place(ALICE, buy(ALICE_ACCOUNT, 9_900, ONE));
    // Amending to zero is not a cancel.
    let to_zero = amend(ALICE_ACCOUNT, resting, 9_900, 0);
    s.expect_reject(ALICE, to_zero, RejectReason::QtyNotPositive);
    s.engine.check_invariants().unwrap();
}

#[test]
fn off_tick_and_off_lot_are_rejected_where_decimals_become_integers() {
    use fincore_engine::units::{price_to_ticks, qty_to_lots};
    use rust_decimal::Decimal;
    let spec = instrument_spec(0);
    // Tick 0.01: 100.01 is 10_001 ticks, 100.005 is half a tick.
    assert_eq!(price_to_ticks(&spec, Decimal::new(10_001, 2)), Ok(Price(10_001)));
    assert_eq!(price_to_ticks(&spec, Decimal::new(100_005, 3)), Err(RejectReason::PriceOffTick));
    assert_eq!(price_to_ticks(&spec, Decimal::ZERO), Err(RejectReason::PriceNotPositive));
    // Lot 0.001: 2 coins are 2_000 lots, 0.0005 is half a lot.
    assert_eq!(qty_to_lots(&spec, Decimal::new(2, 0)), Ok(Qty(2_000)));
    assert_eq!(qty_to_lots(&spec, Decimal::new(5, 4)), Err(RejectReason::QtyOffLot));
    assert_eq!(qty_to_lots(&spec, Decimal::new(-1, 0)), Err(RejectReason::QtyNotPositive));
}

#[test]
fn reject_qty_above_max() {
    let mut s = Scenario::new();
    // qty_max is 1_000_000 lots (1 000 coins); at 100.00 that is a notional of
    // 10_000 x 1_000_000 x 10 = 100_000_000_000 (100 000 USD), below notional_max 1e12.
    let too_many = buy(ALICE_ACCOUNT, 10_000, 1_000_001);
    s.expect_reject(ALICE, new_order(too_many), RejectReason::QtyAboveMax);
    let resting = s.place(ALICE, buy(ALICE_ACCOUNT, 10_000, 1_000_000));
    let grow = amend(ALICE_ACCOUNT, resting, 10_000, 1_000_001);
    s.expect_reject(ALICE, grow, RejectReason::QtyAboveMax);
    s.engine.check_invariants().unwrap();
}

#[test]
fn reject_price_outside_band() {
    let mut s = Scenario::new();
    // Before any trade the band is 100.00 +- 10 % = [9_000, 11_000], edges included.
    s.place(ALICE, buy(ALICE_ACCOUNT, 9_000, ONE));
    s.place(BOB, sell(BOB_ACCOUNT, 11_000, ONE));
    let high = buy(ALICE_ACCOUNT, 11_001, ONE);
    s.expect_reject(ALICE, new_order(high), RejectReason::PriceOutsideBand);
    let low = sell(BOB_ACCOUNT, 8_999, ONE);
    s.expect_reject(BOB, new_order(low), RejectReason::PriceOutsideBand);
    // The band follows the last trade: a trade at 105.00 moves it to
    // 10_500 +- 1_050 = [9_450, 11_550].
    s.place(CAROL, sell(CAROL_ACCOUNT, 10_500, ONE));
    s.order(DAVE, buy(DAVE_ACCOUNT, 10_500, ONE).ioc());
    let below = buy(ALICE_ACCOUNT, 9_449, ONE);
    s.expect_reject(ALICE, new_order(below), RejectReason::PriceOutsideBand);
    let edge = s.place(ALICE, buy(ALICE_ACCOUNT, 9_450, ONE));
    s.place(BOB, sell(BOB_ACCOUNT, 11_550, ONE));
    // A price-changing amend is checked against the band too.
    let out = amend(ALICE_ACCOUNT, edge, 9_449, ONE);
    s.expect_reject(ALICE, out, RejectReason::PriceOutsideBand);
    s.engine.check_invariants().unwrap();
}

#[test]
fn reject_notional_above_max() {
    let mut s = Scenario::new();
    let small = InstrumentId(5);
    s.list(InstrumentSpec { notional_max: 100_000_000, ..custom_spec(5, "SMALL-USD") });
    // 1.000 @ 100.00 = 10_000 x 1_000 x 10 = 100_000_000: exactly the maximum.
    let resting = s.place(ALICE, buy(ALICE_ACCOUNT, 10_000, ONE).on(small));
    // 1.000 @ 100.01 = 100_010_000 and 1.001 @ 100.00 = 100_100_000: above it.
    let dearer = buy(ALICE_ACCOUNT, 10_001, ONE).on(small);
    s.expect_reject(ALICE, new_order(dearer), RejectReason::NotionalAboveMax);
    let bigger = sell(BOB_ACCOUNT, 10_000, 1_001).on(small);
    s.expect_reject(BOB, new_order(bigger), RejectReason::NotionalAboveMax);
    let grow = amend(ALICE_ACCOUNT, resting, 10_000, 1_001);
    s.expect_reject(ALICE, grow, RejectReason::NotionalAboveMax);
    s.engine.check_invariants().unwrap();
}

#[test]
fn reject_arithmetic_overflow() {
    let mut s = Scenario::new();
    let roomy = |id, symbol, reference: i64| InstrumentSpec {
        reference_price: Price(reference),
        qty_max: Qty(1_000_000_000_000_000),
        notional_max: i64::MAX,
        ..custom_spec(id, symbol)
    };
    // Notional: 10^15 ticks x 1_000 lots x 10 = 10^19 > i64::MAX (about 9.22 x 10^18).
    s.list(roomy(5, "HUGE-USD", 1_000_000_000_000_000));
    let order = buy(ALICE_ACCOUNT, 1_000_000_000_000_000, ONE).on(InstrumentId(5));
    s.expect_reject(ALICE, new_order(order), RejectReason::ArithmeticOverflow);
    // Hold: 922_337_203_685_477 x 1_000 x 10 = 9_223_372_036_854_770_000 fits, but the
    // 5 bp fee on top (about 4.6 x 10^15) does not.
    s.list(roomy(6, "EDGE-USD", 922_337_203_685_477));
    let order = buy(ALICE_ACCOUNT, 922_337_203_685_477, ONE).on(InstrumentId(6));
    s.expect_reject(ALICE, new_order(order), RejectReason::ArithmeticOverflow);
    // Sell hold: 10^14 lots x 100_000 coin units = 10^19 does not fit, although its
    // notional at one tick, 10^14 x 1 x 10 = 10^15, does. (Band at 1 tick: [1, 1].)
    s.list(roomy(7, "TINY-USD", 1));
    let order = sell(ALICE_ACCOUNT, 1, 100_000_000_000_000).on(InstrumentId(7));
    s.expect_reject(ALICE, new_order(order), RejectReason::ArithmeticOverflow);
    // Supply: the coin already has 4 x START_BASE in circulation; i64::MAX more does
    // not fit, and the supply cap is what keeps every balance sum from overflowing.
    let deposit = CommandBody::Deposit {
        account: ALICE_ACCOUNT,
        asset: COIN,
        amount: i64::MAX,
        client_payment_id: AUTO_PID,
    };
    s.expect_reject(ADMIN, deposit, RejectReason::ArithmeticOverflow);
    s.engine.check_invariants().unwrap();
}

/// Lots traded per instrument is an operator statistic: valid trading can take it past
/// 2^64, where it wraps like any counter instead of overflowing (a panic in builds with
/// overflow checks).
#[test]
fn traded_lots_wraps_at_two_to_the_64() {
    let mut s = Scenario::new();
    let (base, quote) = (AssetId(10), AssetId(11));
    for (asset, name) in [(base, "UB"), (quote, "UQ")] {
        let symbol = Symbol::new(name).expect("short");
        s.admin(CommandBody::CreateAsset { asset, symbol, scale: 0 });
    }
    let unit = Dec { mantissa: 1, scale: 0 };
    s.list(InstrumentSpec {
        base,
        quote,
        tick_size: unit,
        lot_size: unit,
        reference_price: Price(1),
        band_bps: 1,
        qty_max: Qty(i64::MAX),
        notional_max: i64::MAX,
        maker_fee_bps: 0,
        taker_fee_bps: 0,
        ..custom_spec(5, "U-U")
    });
    let big = 1i64 << 62;
    s.deposit(ALICE_ACCOUNT, base, big);
    s.deposit(BOB_ACCOUNT, quote, big);
    let traded = |s: &Scenario| s.engine.instrument_by_symbol("U-U").expect("listed").traded_lots;
    // 2^62 lots back and forth at one tick: four trades make 2^64.
    let (mut seller, mut buyer) = ((ALICE, ALICE_ACCOUNT), (BOB, BOB_ACCOUNT));
    for trade in 1..=4u64 {
        s.place(seller.0, sell(seller.1, 1, big).on(InstrumentId(5)));
        let events = s.order(buyer.0, buy(buyer.1, 1, big).on(InstrumentId(5)));
        assert_eq!(fills(&events).len(), 1, "trade {trade} fills");
        assert_eq!(traded(&s), (u128::from(trade) << 62) as u64, "after trade {trade}");
        std::mem::swap(&mut seller, &mut buyer);
    }
    assert_eq!(traded(&s), 0, "wrapped");
    s.engine.check_invariants().unwrap();
}

// ==== 5xx: the account's state ========================================================

#[test]
fn reject_duplicate_client_order_id() {
    let mut s = Scenario::new();
    let first = s.place(ALICE, buy(ALICE_ACCOUNT, 9_900, ONE).cid(7));
    let again = sell(ALICE_ACCOUNT, 10_100, ONE).cid(7);
    s.expect_reject(ALICE, new_order(again), RejectReason::DuplicateClientOrderId);
    let again_ioc = sell(ALICE_ACCOUNT, 10_100, ONE).cid(7).ioc();
    s.expect_reject(ALICE, new_order(again_ioc), RejectReason::DuplicateClientOrderId);
    // Client ids are per account...
    s.place(BOB, sell(BOB_ACCOUNT, 10_100, ONE).cid(7));
    // ...and only among live orders: once cancelled, the id is free again.
    s.trade(ALICE, cancel(ALICE_ACCOUNT, first));
    s.place(ALICE, buy(ALICE_ACCOUNT, 9_900, ONE).cid(7));
    s.engine.check_invariants().unwrap();
}

#[test]
fn reject_too_many_open_orders() {
    let limits = EngineLimits { open_orders_per_account_max: 2, ..Scenario::limits() };
    let mut s = Scenario::with(limits, 1);
    let first = s.place(ALICE, buy(ALICE_ACCOUNT, 9_900, ONE));
    s.place(ALICE, buy(ALICE_ACCOUNT, 9_800, ONE));
    let third = buy(ALICE_ACCOUNT, 9_700, ONE);
    s.expect_reject(ALICE, new_order(third), RejectReason::TooManyOpenOrders);
    // An IOC order never rests, so it does not count against the limit.
    let events = s.order(ALICE, buy(ALICE_ACCOUNT, 9_700, ONE).ioc());
    assert_eq!(cancels(&events)[0].reason, CancelReason::IocRemainder);
    // Other accounts have their own allowance; a cancel frees a place.
    s.place(BOB, buy(BOB_ACCOUNT, 9_700, ONE));
    s.trade(ALICE, cancel(ALICE_ACCOUNT, first));
    s.place(ALICE, buy(ALICE_ACCOUNT, 9_700, ONE));
    s.engine.check_invariants().unwrap();
}

#[test]
fn reject_insufficient_balance() {
    let mut s = Scenario::new();
    let (erin, erin_account) = (UserId(5), AccountId(5));
    s.add_trader(erin, erin_account);
    // Buy 1.000 @ 100.00 holds 100_000_000 + 5 bp (50_000) = 100_050_000.
    s.deposit(erin_account, USD, 100_049_999);
    let order = buy(erin_account, 10_000, ONE);
    s.expect_reject(erin, new_order(order), RejectReason::InsufficientBalance);
    s.deposit(erin_account, USD, 1);
    let resting = s.place(erin, order);
    assert_eq!(s.balance(erin_account, USD), (0, 100_050_000));
    // Nothing available: no coin to sell, no USD to withdraw, no room to grow the bid.
    let no_coin = sell(erin_account, 10_100, 1);
    s.expect_reject(erin, new_order(no_coin), RejectReason::InsufficientBalance);
    let withdraw = CommandBody::Withdraw {
        account: erin_account,
        asset: USD,
        amount: 1,
        client_payment_id: AUTO_PID,
    };
    s.expect_reject(ADMIN, withdraw, RejectReason::InsufficientBalance);
    let more = amend(erin_account, resting, 10_000, ONE + 1);
    s.expect_reject(erin, more, RejectReason::InsufficientBalance);
    let dearer = amend(erin_account, resting, 10_001, ONE);
    s.expect_reject(erin, dearer, RejectReason::InsufficientBalance);
    // A cheaper price needs less: 9_999 x 1_000 x 10 = 99_990_000 + 49_995 = 100_039_995.
    s.trade(erin, amend(erin_account, resting, 9_999, ONE));
    assert_eq!(s.balance(erin_account, USD), (10_005, 100_039_995));
    s.engine.check_invariants().unwrap();
}

// ==== 6xx: the book ===================================================================

#[test]
fn reject_post_only_would_cross() {
    let mut s = Scenario::new();
    s.place(BOB, sell(BOB_ACCOUNT, 10_000, ONE));
    let at_ask = buy(ALICE_ACCOUNT, 10_000, ONE).post_only();
    s.expect_reject(ALICE, new_order(at_ask), RejectReason::PostOnlyWouldCross);
    let through = buy(ALICE_ACCOUNT, 10_100, ONE).post_only();
    s.expect_reject(ALICE, new_order(through), RejectReason::PostOnlyWouldCross);
    s.place(ALICE, buy(ALICE_ACCOUNT, 9_999, ONE).post_only());
    let sell_at_bid = sell(CAROL_ACCOUNT, 9_999, ONE).post_only();
    s.expect_reject(CAROL, new_order(sell_at_bid), RejectReason::PostOnlyWouldCross);
    s.engine.check_invariants().unwrap();
}

#[test]
fn reject_book_full_when_the_order_table_is_full() {
    let limits = EngineLimits { orders_max: 2, ..Scenario::limits() };
    let mut s = Scenario::with(limits, 1);
    s.place(ALICE, buy(ALICE_ACCOUNT, 9_900, ONE));
    s.place(BOB, sell(BOB_ACCOUNT, 10_100, ONE));
    let third = buy(CAROL_ACCOUNT, 9_800, ONE);
    s.expect_reject(CAROL, new_order(third), RejectReason::BookFull);
    // Orders that never rest need no slot.
    s.order(CAROL, buy(CAROL_ACCOUNT, 9_800, ONE).ioc());
    s.engine.check_invariants().unwrap();
}

#[test]
fn reject_book_full_when_a_side_has_every_level() {
    let limits = EngineLimits { levels_per_side_max: 2, ..Scenario::limits() };
    let mut s = Scenario::with(limits, 1);
    s.place(ALICE, buy(ALICE_ACCOUNT, 9_900, ONE));
    let joiner = s.place(BOB, buy(BOB_ACCOUNT, 9_800, ONE));
    s.place(CAROL, buy(CAROL_ACCOUNT, 9_800, ONE));
    let third_level = buy(ALICE_ACCOUNT, 9_700, ONE);
    s.expect_reject(ALICE, new_order(third_level), RejectReason::BookFull);
    let moves_to_third = amend(BOB_ACCOUNT, joiner, 9_700, ONE);
    s.expect_reject(BOB, moves_to_third, RejectReason::BookFull);
    // Joining an existing level needs no new level; the other side has its own room.
    s.place(ALICE, buy(ALICE_ACCOUNT, 9_900, ONE));
    s.place(ALICE, sell(ALICE_ACCOUNT, 10_100, ONE));
    assert_eq!(s.depth(COIN_USD, 10).bids, vec![(9_900, 2_000, 2), (9_800, 2_000, 2)]);
    s.engine.check_invariants().unwrap();
}

// ==== 7xx: cancel and amend ===========================================================

#[test]
fn reject_unknown_order() {
    let mut s = Scenario::new();
    let bob_bid = s.place(BOB, buy(BOB_ACCOUNT, 9_900, ONE).cid(3));
    s.expect_reject(ALICE, cancel(ALICE_ACCOUNT, OrderId(999)), RejectReason::UnknownOrder);
    // Someone else's order id through one's own account is simply not found.
    s.expect_reject(ALICE, cancel(ALICE_ACCOUNT, bob_bid), RejectReason::UnknownOrder);
    let by_client =
        CommandBody::Cancel { account: ALICE_ACCOUNT, order: OrderRef::Client(ClientOrderId(3)) };
    s.expect_reject(ALICE, by_client, RejectReason::UnknownOrder);
    let reprice = amend(ALICE_ACCOUNT, bob_bid, 9_800, ONE);
    s.expect_reject(ALICE, reprice, RejectReason::UnknownOrder);
    // A filled order is gone.
    s.order(CAROL, sell(CAROL_ACCOUNT, 9_900, ONE).ioc());
    s.expect_reject(BOB, cancel(BOB_ACCOUNT, bob_bid), RejectReason::UnknownOrder);
    let order = OrderRef::Id(bob_bid);
    let answer = s.query(BOB, Query::Order { account: BOB_ACCOUNT, order });
    assert_eq!(answer, query_reject(BOB_ACCOUNT, RejectReason::UnknownOrder));
    s.engine.check_invariants().unwrap();
}

#[test]
fn reject_amend_no_change() {
    let mut s = Scenario::new();
    let bid = s.place(ALICE, buy(ALICE_ACCOUNT, 9_900, 2 * ONE));
    let same = amend(ALICE_ACCOUNT, bid, 9_900, 2 * ONE);
    s.expect_reject(ALICE, same, RejectReason::AmendNoChange);
    // The quantity of an amend is the new *remaining* quantity: after 0.500 fills,
    // 1.500 is "no change".
    s.order(BOB, sell(BOB_ACCOUNT, 9_900, 500).ioc());
    let same = amend(ALICE_ACCOUNT, bid, 9_900, 1_500);
    s.expect_reject(ALICE, same, RejectReason::AmendNoChange);
    s.engine.check_invariants().unwrap();
}

// ==== 8xx: admin and setup ============================================================

#[test]
fn reject_already_exists() {
    let mut s = Scenario::new();
    let user = CommandBody::CreateUser { user: ALICE, role: Role::Trader };
    s.expect_reject(ADMIN, user, RejectReason::AlreadyExists);
    let system = CommandBody::CreateUser { user: SYSTEM_USER, role: Role::Trader };
    s.expect_reject(ADMIN, system, RejectReason::AlreadyExists);
    let symbol = Symbol::new("USD2").expect("short");
    let asset = CommandBody::CreateAsset { asset: USD, symbol, scale: 2 };
    s.expect_reject(ADMIN, asset, RejectReason::AlreadyExists);
    let account = CommandBody::CreateAccount { account: ALICE_ACCOUNT, owner: BOB };
    s.expect_reject(ADMIN, account, RejectReason::AlreadyExists);
    let listed = CommandBody::CreateInstrument(instrument_spec(0));
    s.expect_reject(ADMIN, listed, RejectReason::AlreadyExists);
    s.engine.check_invariants().unwrap();
}

#[test]
fn reject_unknown_asset() {
    let mut s = Scenario::new();
    let nothing = AssetId(9);
    let deposit = CommandBody::Deposit {
        account: ALICE_ACCOUNT,
        asset: nothing,
        amount: 1,
        client_payment_id: AUTO_PID,
    };
    s.expect_reject(ADMIN, deposit, RejectReason::UnknownAsset);
    let withdraw = CommandBody::Withdraw {
        account: ALICE_ACCOUNT,
        asset: nothing,
        amount: 1,
        client_payment_id: AUTO_PID,
    };
    s.expect_reject(ADMIN, withdraw, RejectReason::UnknownAsset);
    let base = InstrumentSpec { base: nothing, ..custom_spec(5, "NONE-USD") };
    s.expect_reject(ADMIN, CommandBody::CreateInstrument(base), RejectReason::UnknownAsset);
    let quote = InstrumentSpec { quote: nothing, ..custom_spec(5, "COIN-NONE") };
    s.expect_reject(ADMIN, CommandBody::CreateInstrument(quote), RejectReason::UnknownAsset);
    s.engine.check_invariants().unwrap();
}

#[test]
fn reject_invalid_definition() {
    let mut s = Scenario::new();
    let symbol = Symbol::new("BIG").expect("short");
    let scale_too_big = CommandBody::CreateAsset { asset: AssetId(9), symbol, scale: 19 };
    s.expect_reject(ADMIN, scale_too_big, RejectReason::InvalidDefinition);
    let empty_symbol =
        CommandBody::CreateAsset { asset: AssetId(9), symbol: Symbol::default(), scale: 2 };
    s.expect_reject(ADMIN, empty_symbol, RejectReason::InvalidDefinition);
    let base = custom_spec(5, "TEST-USD");
    let invalid = [
        // Tick 0.0001 x lot 0.001 = 10^-7 USD = 0.1 USD minor units: not whole.
        InstrumentSpec { tick_size: Dec { mantissa: 1, scale: 4 }, ..base },
        // Lot 10^-9 coin = 0.1 coin minor units: not whole.
        InstrumentSpec { lot_size: Dec { mantissa: 1, scale: 9 }, ..base },
        InstrumentSpec { tick_size: Dec { mantissa: 0, scale: 2 }, ..base },
        InstrumentSpec { quote: COIN, ..base },
        InstrumentSpec { symbol: Symbol::default(), ..base },
        InstrumentSpec { taker_fee_bps: -1, maker_fee_bps: -1, ..base },
        // A rebate larger than the taker fee would be paid out of nothing.
        InstrumentSpec { maker_fee_bps: -6, taker_fee_bps: 5, ..base },
        InstrumentSpec { taker_fee_bps: 10_001, ..base },
        // The extremes are refused like any other out-of-range fee, never a panic.
        InstrumentSpec { maker_fee_bps: i32::MIN, ..base },
        InstrumentSpec { maker_fee_bps: i32::MAX, ..base },
        InstrumentSpec { taker_fee_bps: i32::MIN, ..base },
        InstrumentSpec { taker_fee_bps: i32::MAX, ..base },
        InstrumentSpec { reference_price: Price(0), ..base },
        InstrumentSpec { band_bps: 0, ..base },
        InstrumentSpec { band_bps: 10_001, ..base },
        InstrumentSpec { qty_max: Qty(0), ..base },
        InstrumentSpec { notional_max: 0, ..base },
    ];
    for spec in invalid {
        let list = CommandBody::CreateInstrument(spec);
        s.expect_reject(ADMIN, list, RejectReason::InvalidDefinition);
    }
    s.list(base);
    s.engine.check_invariants().unwrap();
}

#[test]
fn reject_amount_not_positive() {
    let mut s = Scenario::new();
    for amount in [0, -1, i64::MIN] {
        let deposit = CommandBody::Deposit {
            account: ALICE_ACCOUNT,
            asset: USD,
            amount,
            client_payment_id: AUTO_PID,
        };
        s.expect_reject(ADMIN, deposit, RejectReason::AmountNotPositive);
        let withdraw = CommandBody::Withdraw {
            account: ALICE_ACCOUNT,
            asset: USD,
            amount,
            client_payment_id: AUTO_PID,
        };
        s.expect_reject(ADMIN, withdraw, RejectReason::AmountNotPositive);
    }
    s.engine.check_invariants().unwrap();
}

#[test]
fn reject_id_out_of_range() {
    // 8 users and 8 accounts: ids 0..=7.
    let mut s = Scenario::with(Scenario::small_limits(), 1);
    let user = CommandBody::CreateUser { user: UserId(8), role: Role::Trader };
    s.expect_reject(ADMIN, user, RejectReason::IdOutOfRange);
    s.admin(CommandBody::CreateUser { user: UserId(7), role: Role::Trader });
    let account = CommandBody::CreateAccount { account: AccountId(8), owner: UserId(7) };
    s.expect_reject(ADMIN, account, RejectReason::IdOutOfRange);
    s.admin(CommandBody::CreateAccount { account: AccountId(7), owner: UserId(7) });
    let symbol = Symbol::new("FAR").expect("short");
    let asset = CommandBody::CreateAsset { asset: AssetId(ASSETS_MAX as u16), symbol, scale: 2 };
    s.expect_reject(ADMIN, asset, RejectReason::IdOutOfRange);
    let far = custom_spec(INSTRUMENTS_MAX as u16, "FAR-USD");
    s.expect_reject(ADMIN, CommandBody::CreateInstrument(far), RejectReason::IdOutOfRange);
    s.engine.check_invariants().unwrap();
}

#[test]
fn reject_status_unchanged() {
    let mut s = Scenario::new();
    let active = status(ALICE_ACCOUNT, AccountStatus::Active);
    s.expect_reject(ADMIN, active, RejectReason::StatusUnchanged);
    s.admin(status(ALICE_ACCOUNT, AccountStatus::Frozen));
    let frozen = status(ALICE_ACCOUNT, AccountStatus::Frozen);
    s.expect_reject(ADMIN, frozen, RejectReason::StatusUnchanged);
    s.expect_reject(ADMIN, resume(COIN_USD), RejectReason::StatusUnchanged);
    s.admin(halt(COIN_USD, false));
    s.expect_reject(ADMIN, halt(COIN_USD, true), RejectReason::StatusUnchanged);
    s.engine.check_invariants().unwrap();
}

#[test]
fn reject_account_not_empty() {
    let mut s = Scenario::new();
    let spare = AccountId(5);
    s.add_account(spare, ALICE);
    s.deposit(spare, USD, 1);
    let close = status(spare, AccountStatus::Closed);
    s.expect_reject(ADMIN, close, RejectReason::AccountNotEmpty);
    // Funds on hold count too: everything is held by a resting bid here
    // (1.000 @ 100.00 holds 100_050_000).
    s.deposit(spare, USD, 100_049_999);
    s.place(ALICE, buy(spare, 10_000, ONE));
    assert_eq!(s.balance(spare, USD), (0, 100_050_000));
    s.expect_reject(ADMIN, close, RejectReason::AccountNotEmpty);
    // Emptied, it closes.
    s.trade(ALICE, CommandBody::MassCancel { account: spare, instrument: None });
    s.admin(CommandBody::Withdraw {
        account: spare,
        asset: USD,
        amount: 100_050_000,
        client_payment_id: AUTO_PID,
    });
    s.admin(close);
    s.engine.check_invariants().unwrap();
}

#[test]
fn reject_account_in_use() {
    let mut s = Scenario::new();
    // The fee account is empty before any trade, so only its role keeps it open: fees
    // arriving later could never be withdrawn from a closed account.
    assert_eq!(s.balance(FEES, USD), (0, 0));
    s.expect_reject(ADMIN, status(FEES, AccountStatus::Closed), RejectReason::AccountInUse);
    s.engine.check_invariants().unwrap();
}

// ==== order types =====================================================================

#[test]
fn limit_gtc_that_does_not_cross_rests_with_its_hold() {
    let mut s = Scenario::new();
    // Bob sells 2.000 @ 100.00 and rests: it holds 2_000 lots x 100_000 = 200_000_000 coin.
    let events = s.order(BOB, sell(BOB_ACCOUNT, 10_000, 2 * ONE).cid(11));
    let bob_order = OrderId(1);
    assert_eq!(
        events,
        vec![
            Event::Accepted(OrderAccepted {
                order_id: bob_order,
                account: BOB_ACCOUNT,
                instrument: COIN_USD,
                client_order_id: ClientOrderId(11),
                side: Side::Sell,
                price: Price(10_000),
                qty: Qty(2_000),
                hold: 200_000_000,
            }),
            Event::Balance(BalanceChanged {
                account: BOB_ACCOUNT,
                asset: COIN,
                available: START_BASE - 200_000_000,
                held: 200_000_000,
                pending: 0,
            }),
            Event::Level(LevelChanged {
                instrument: COIN_USD,
                side: Side::Sell,
                price: Price(10_000),
                qty: Qty(2_000),
                orders: 1,
            }),
        ]
    );
    assert_eq!(s.open_orders(BOB_ACCOUNT)[0].hold, 200_000_000);
    s.engine.check_invariants().unwrap();
}

#[test]
fn limit_gtc_fills_at_the_maker_price_with_fees_and_price_improvement() {
    let mut s = Scenario::new();
    let bob_order = s.place(BOB, sell(BOB_ACCOUNT, 10_000, 2 * ONE).cid(11));
    // Alice buys 2.000 @ 101.00. Hold = 10_100 x 2_000 x 10 = 202_000_000 + 5 bp (101_000)
    // = 202_101_000. She trades at Bob's 100.00: notional 10_000 x 2_000 x 10 =
    // 200_000_000; taker fee 5 bp = 100_000; maker rebate 1 bp = -20_000. She pays
    // 200_100_000 and the rest of her hold, 2_001_000 (price improvement 2_000_000 plus
    // the fee held on it, 1_000), goes back to available.
    let events = s.order(ALICE, buy(ALICE_ACCOUNT, 10_100, 2 * ONE).cid(21));
    let alice_order = accepted(&events).order_id;
    let trade_id = TradeId(1);
    let balance = |account, asset, available, held| {
        Event::Balance(BalanceChanged { account, asset, available, held, pending: 0 })
    };
    assert_eq!(
        events,
        vec![
            Event::Accepted(OrderAccepted {
                order_id: alice_order,
                account: ALICE_ACCOUNT,
                instrument: COIN_USD,
                client_order_id: ClientOrderId(21),
                side: Side::Buy,
                price: Price(10_100),
                qty: Qty(2_000),
                hold: 202_101_000,
            }),
            balance(ALICE_ACCOUNT, USD, START_QUOTE - 202_101_000, 202_101_000),
            Event::Fill(Fill {
                instrument: COIN_USD,
                trade_id,
                price: Price(10_000),
                qty: Qty(2_000),
                taker_side: Side::Buy,
                maker_order: bob_order,
                taker_order: alice_order,
                maker_account: BOB_ACCOUNT,
                taker_account: ALICE_ACCOUNT,
                maker_client_id: ClientOrderId(11),
                taker_client_id: ClientOrderId(21),
                maker_fee: -20_000,
                taker_fee: 100_000,
                maker_remaining: Qty(0),
                taker_remaining: Qty(0),
            }),
            Event::Trade(Trade {
                instrument: COIN_USD,
                trade_id,
                price: Price(10_000),
                qty: Qty(2_000),
                taker_side: Side::Buy,
            }),
            // Each fill publishes the maker's balances: base, then quote.
            balance(BOB_ACCOUNT, COIN, START_BASE - 200_000_000, 0),
            // Bob receives the notional plus his rebate: 200_000_000 + 20_000.
            balance(BOB_ACCOUNT, USD, START_QUOTE + 200_020_000, 0),
            Event::Level(LevelChanged {
                instrument: COIN_USD,
                side: Side::Sell,
                price: Price(10_000),
                qty: Qty(0),
                orders: 0,
            }),
            // After the sweep, once: the taker's base and quote, then the fee account.
            balance(ALICE_ACCOUNT, COIN, START_BASE + 200_000_000, 0),
            balance(ALICE_ACCOUNT, USD, START_QUOTE - 200_100_000, 0),
            // The venue keeps taker fee minus rebate: 100_000 - 20_000.
            balance(FEES, USD, 80_000, 0),
        ]
    );
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE - 200_100_000, 0));
    assert_eq!(s.balance(ALICE_ACCOUNT, COIN), (START_BASE + 200_000_000, 0));
    assert_eq!(s.balance(BOB_ACCOUNT, USD), (START_QUOTE + 200_020_000, 0));
    assert_eq!(s.balance(BOB_ACCOUNT, COIN), (START_BASE - 200_000_000, 0));
    assert_eq!(s.balance(FEES, USD), (80_000, 0));
    assert_eq!(s.depth(COIN_USD, 10), Depth::default());
    s.engine.check_invariants().unwrap();
}

#[test]
fn resting_buy_maker_pays_notional_minus_rebate() {
    let mut s = Scenario::new();
    // Alice bids 1.000 @ 100.00: hold 100_000_000 + 5 bp = 100_050_000 (a buy holds the
    // larger fee even if it ends up the maker).
    s.place(ALICE, buy(ALICE_ACCOUNT, 10_000, ONE));
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE - 100_050_000, 100_050_000));
    // Bob sells into it at 99.00; the trade is at Alice's 100.00.
    let events = s.order(BOB, sell(BOB_ACCOUNT, 9_900, ONE));
    let fill = fills(&events)[0];
    assert_eq!((fill.price, fill.qty, fill.taker_side), (Price(10_000), Qty(ONE), Side::Sell));
    assert_eq!((fill.maker_fee, fill.taker_fee), (-10_000, 50_000));
    // Alice pays 100_000_000 - 10_000 = 99_990_000; 60_000 of her hold comes back.
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE - 99_990_000, 0));
    assert_eq!(s.balance(ALICE_ACCOUNT, COIN), (START_BASE + COIN_ONE, 0));
    // Bob receives 100_000_000 - 50_000.
    assert_eq!(s.balance(BOB_ACCOUNT, USD), (START_QUOTE + 99_950_000, 0));
    assert_eq!(s.balance(BOB_ACCOUNT, COIN), (START_BASE - COIN_ONE, 0));
    assert_eq!(s.balance(FEES, USD), (40_000, 0));
    s.engine.check_invariants().unwrap();
}

#[test]
fn ioc_fills_what_it_can_and_cancels_the_rest() {
    let mut s = Scenario::new();
    s.place(BOB, sell(BOB_ACCOUNT, 10_000, ONE));
    // Alice IOC buys 3.000 @ 101.00: hold 10_100 x 3_000 x 10 = 303_000_000 + 151_500
    // = 303_151_500. She fills 1.000 @ 100.00 for 100_000_000 + 50_000 fee; the other
    // 2.000 are cancelled and their hold (202_101_000) released.
    let events = s.order(ALICE, buy(ALICE_ACCOUNT, 10_100, 3 * ONE).ioc());
    let order = accepted(&events);
    assert_eq!(order.hold, 303_151_500);
    let fill = fills(&events)[0];
    assert_eq!((fill.qty, fill.taker_remaining, fill.taker_fee), (Qty(ONE), Qty(2_000), 50_000));
    let cancelled = cancels(&events);
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0].order_id, order.order_id);
    assert_eq!(cancelled[0].qty_cancelled, Qty(2_000));
    assert_eq!(cancelled[0].reason, CancelReason::IocRemainder);
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE - 100_050_000, 0));
    assert_eq!(s.balance(ALICE_ACCOUNT, COIN), (START_BASE + COIN_ONE, 0));
    assert_eq!(s.balance(BOB_ACCOUNT, USD), (START_QUOTE + 100_010_000, 0));
    assert_eq!(s.balance(FEES, USD), (40_000, 0));
    assert!(s.open_orders(ALICE_ACCOUNT).is_empty(), "an IOC never rests");
    assert_eq!(s.depth(COIN_USD, 10), Depth::default());
    s.engine.check_invariants().unwrap();
}

#[test]
fn fok_that_can_fill_fills_completely_across_levels() {
    let mut s = Scenario::new();
    s.place(BOB, sell(BOB_ACCOUNT, 10_000, ONE));
    s.place(BOB, sell(BOB_ACCOUNT, 10_050, ONE));
    // Alice FOK buys 2.000 @ 100.50. Fills:
    //   1.000 @ 100.00: notional 100_000_000, taker fee 50_000, rebate -10_000;
    //   1.000 @ 100.50: notional 100_500_000, taker fee 50_250, rebate -10_050.
    let events = s.order(ALICE, buy(ALICE_ACCOUNT, 10_050, 2 * ONE).fok());
    let prices: Vec<_> = fills(&events).iter().map(|f| (f.price.0, f.qty.0)).collect();
    assert_eq!(prices, vec![(10_000, ONE), (10_050, ONE)]);
    assert!(cancels(&events).is_empty());
    // Alice's hold at acceptance; Bob's base and quote after each of his fills; then,
    // once for the whole sweep, Alice's base and quote and the venue's quote.
    let published: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Balance(b) => Some((b.account, b.asset)),
            _ => None,
        })
        .collect();
    let bob = [(BOB_ACCOUNT, COIN), (BOB_ACCOUNT, USD)];
    let after = [(ALICE_ACCOUNT, COIN), (ALICE_ACCOUNT, USD), (FEES, USD)];
    assert_eq!(published, [&[(ALICE_ACCOUNT, USD)][..], &bob, &bob, &after].concat());
    // Alice pays 100_050_000 + 100_550_250 = 200_600_250.
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE - 200_600_250, 0));
    assert_eq!(s.balance(ALICE_ACCOUNT, COIN), (START_BASE + 2 * COIN_ONE, 0));
    // Bob receives 100_010_000 + 100_510_050 = 200_520_050.
    assert_eq!(s.balance(BOB_ACCOUNT, USD), (START_QUOTE + 200_520_050, 0));
    assert_eq!(s.balance(BOB_ACCOUNT, COIN), (START_BASE - 2 * COIN_ONE, 0));
    // The venue keeps 40_000 + 40_200.
    assert_eq!(s.balance(FEES, USD), (80_200, 0));
    s.engine.check_invariants().unwrap();
}

#[test]
fn fok_that_cannot_fill_is_accepted_then_killed_without_any_change() {
    let mut s = Scenario::new();
    s.place(BOB, sell(BOB_ACCOUNT, 10_000, ONE));
    s.place(BOB, sell(BOB_ACCOUNT, 10_050, ONE));
    let before = s.snapshot();
    // Only 1.000 is offered at or below 100.00, and only 2.000 in all.
    for (limit, qty) in [(10_000, 2 * ONE), (10_050, 3 * ONE)] {
        let order = buy(ALICE_ACCOUNT, limit, qty).fok().cid(5);
        let events = s.order(ALICE, order);
        let accepted = accepted(&events);
        assert_eq!((accepted.price, accepted.qty, accepted.hold), (Price(limit), Qty(qty), 0));
        let killed = OrderCancelled {
            order_id: accepted.order_id,
            account: ALICE_ACCOUNT,
            instrument: COIN_USD,
            client_order_id: ClientOrderId(5),
            qty_cancelled: Qty(qty),
            reason: CancelReason::FokUnfilled,
        };
        assert_eq!(events, vec![Event::Accepted(accepted), Event::Cancelled(killed)]);
        assert_eq!(s.snapshot(), before, "a killed FOK moves no money and no order");
    }
    s.engine.check_invariants().unwrap();
}

#[test]
fn market_buy_sweeps_up_to_the_band_edge_and_no_further() {
    let mut s = Scenario::new();
    // Asks placed while the band is [90.00, 110.00].
    s.place(BOB, sell(BOB_ACCOUNT, 10_000, ONE));
    s.place(BOB, sell(BOB_ACCOUNT, 10_450, ONE));
    s.place(CAROL, sell(CAROL_ACCOUNT, 11_000, ONE));
    // A trade at 95.00 moves the band to 9_500 +- 950 = [85.50, 104.50].
    s.place(DAVE, buy(DAVE_ACCOUNT, 9_500, ONE));
    s.order(CAROL, sell(CAROL_ACCOUNT, 9_500, ONE).ioc());
    let fees_before = s.balance(FEES, USD).0;
    // Alice market-buys 3.000: its protection price is the band's top, 104.50, and it
    // holds 10_450 x 3_000 x 10 = 313_500_000 + 156_750 = 313_656_750 for it.
    let events = s.order(ALICE, buy(ALICE_ACCOUNT, 0, 3 * ONE).market().ioc());
    let order = accepted(&events);
    assert_eq!((order.price, order.hold), (Price(10_450), 313_656_750));
    // It takes 100.00 and 104.50 but not 110.00, and the last 1.000 is cancelled.
    let prices: Vec<_> = fills(&events).iter().map(|f| (f.price.0, f.qty.0)).collect();
    assert_eq!(prices, vec![(10_000, ONE), (10_450, ONE)]);
    let cancelled = cancels(&events);
    assert_eq!(
        (cancelled[0].qty_cancelled, cancelled[0].reason),
        (Qty(ONE), CancelReason::IocRemainder)
    );
    // Alice pays (100_000_000 + 50_000) + (104_500_000 + 52_250) = 204_602_250.
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE - 204_602_250, 0));
    assert_eq!(s.balance(ALICE_ACCOUNT, COIN), (START_BASE + 2 * COIN_ONE, 0));
    // Bob receives (100_000_000 + 10_000) + (104_500_000 + 10_450) = 204_520_450.
    assert_eq!(s.balance(BOB_ACCOUNT, USD), (START_QUOTE + 204_520_450, 0));
    // The venue keeps (50_000 - 10_000) + (52_250 - 10_450) = 81_800.
    assert_eq!(s.balance(FEES, USD).0 - fees_before, 81_800);
    assert_eq!(s.depth(COIN_USD, 10), Depth { bids: vec![], asks: vec![(11_000, ONE, 1)] });
    s.engine.check_invariants().unwrap();
}

#[test]
fn market_sell_sweeps_down_to_the_band_edge_and_no_further() {
    let mut s = Scenario::new();
    // Bids placed while the band is [90.00, 110.00].
    s.place(BOB, buy(BOB_ACCOUNT, 9_900, ONE));
    s.place(BOB, buy(BOB_ACCOUNT, 9_500, ONE));
    s.place(BOB, buy(BOB_ACCOUNT, 9_400, ONE));
    // A trade at 105.00 moves the band to 10_500 +- 1_050 = [94.50, 115.50].
    s.place(DAVE, sell(DAVE_ACCOUNT, 10_500, ONE));
    s.order(CAROL, buy(CAROL_ACCOUNT, 10_500, ONE).ioc());
    let fees_before = s.balance(FEES, USD).0;
    // Alice market-sells 3.000: protection price 94.50; she holds 3 coins.
    let events = s.order(ALICE, sell(ALICE_ACCOUNT, 0, 3 * ONE).market().ioc());
    let order = accepted(&events);
    assert_eq!((order.price, order.hold), (Price(9_450), 3 * COIN_ONE));
    let prices: Vec<_> = fills(&events).iter().map(|f| (f.price.0, f.qty.0)).collect();
    assert_eq!(prices, vec![(9_900, ONE), (9_500, ONE)]);
    assert_eq!(cancels(&events)[0].qty_cancelled, Qty(ONE));
    // Alice receives (99_000_000 - 49_500) + (95_000_000 - 47_500) = 193_903_000.
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE + 193_903_000, 0));
    assert_eq!(s.balance(ALICE_ACCOUNT, COIN), (START_BASE - 2 * COIN_ONE, 0));
    // Bob paid (99_000_000 - 9_900) + (95_000_000 - 9_500) = 193_980_600 and still holds
    // 94_000_000 + 47_000 = 94_047_000 for his 94.00 bid.
    let bob_usd = (START_QUOTE - 193_980_600 - 94_047_000, 94_047_000);
    assert_eq!(s.balance(BOB_ACCOUNT, USD), bob_usd);
    assert_eq!(s.balance(BOB_ACCOUNT, COIN), (START_BASE + 2 * COIN_ONE, 0));
    // The venue keeps (49_500 - 9_900) + (47_500 - 9_500) = 77_600.
    assert_eq!(s.balance(FEES, USD).0 - fees_before, 77_600);
    assert_eq!(s.depth(COIN_USD, 10), Depth { bids: vec![(9_400, ONE, 1)], asks: vec![] });
    s.engine.check_invariants().unwrap();
}

#[test]
fn market_buy_must_afford_the_band_edge() {
    let mut s = Scenario::new();
    let (erin, erin_account) = (UserId(5), AccountId(5));
    s.add_trader(erin, erin_account);
    // Enough for 1.000 @ 100.00 with fee (100_050_000), but a market buy holds at the
    // band's top, 110.00: 110_000_000 + 55_000 = 110_055_000.
    s.deposit(erin_account, USD, 100_050_000);
    s.place(BOB, sell(BOB_ACCOUNT, 10_000, ONE));
    let market = buy(erin_account, 0, ONE).market().ioc();
    s.expect_reject(erin, new_order(market), RejectReason::InsufficientBalance);
    s.deposit(erin_account, USD, 10_005_000);
    let events = s.order(erin, market);
    assert_eq!(accepted(&events).hold, 110_055_000);
    // It still trades at 100.00: 100_050_000 spent, 10_005_000 left.
    assert_eq!(s.balance(erin_account, USD), (10_005_000, 0));
    s.engine.check_invariants().unwrap();
}

#[test]
fn post_only_rests_when_it_does_not_cross() {
    let mut s = Scenario::new();
    s.place(BOB, sell(BOB_ACCOUNT, 10_000, ONE));
    // 99.99 is below the best ask: hold 9_999 x 1_000 x 10 = 99_990_000 + 49_995.
    let events = s.order(ALICE, buy(ALICE_ACCOUNT, 9_999, ONE).post_only());
    assert_eq!(accepted(&events).hold, 100_039_995);
    assert!(fills(&events).is_empty());
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE - 100_039_995, 100_039_995));
    let depth = Depth { bids: vec![(9_999, ONE, 1)], asks: vec![(10_000, ONE, 1)] };
    assert_eq!(s.depth(COIN_USD, 10), depth);
    s.engine.check_invariants().unwrap();
}

// ==== self-trade prevention ===========================================================

#[test]
fn stp_allow_trades_with_itself_and_pays_both_fees() {
    let mut s = Scenario::new();
    let resting = s.place(ALICE, buy(ALICE_ACCOUNT, 10_000, ONE));
    let order = sell(ALICE_ACCOUNT, 10_000, ONE).stp(StpMode::Allow, StpScope::Account);
    let events = s.order(ALICE, order);
    let fill = fills(&events)[0];
    assert_eq!(
        (fill.maker_order, fill.maker_account, fill.taker_account),
        (resting, ALICE_ACCOUNT, ALICE_ACCOUNT)
    );
    // As maker-buyer she pays 100_000_000 - 10_000; as taker-seller she receives
    // 100_000_000 - 50_000: net -40_000 USD, and the coin goes round.
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE - 40_000, 0));
    assert_eq!(s.balance(ALICE_ACCOUNT, COIN), (START_BASE, 0));
    assert_eq!(s.balance(FEES, USD), (40_000, 0));
    s.engine.check_invariants().unwrap();
}

#[test]
fn stp_cancel_newest_drops_the_incoming_order_and_keeps_the_resting_one() {
    let mut s = Scenario::new();
    let alice_bid = s.place(ALICE, buy(ALICE_ACCOUNT, 10_000, ONE));
    let bob_bid = s.place(BOB, buy(BOB_ACCOUNT, 10_000, ONE));
    // A GTC sell that meets her own bid first: its whole quantity is cancelled, it does
    // not trade with Bob behind her and does not rest.
    let order = sell(ALICE_ACCOUNT, 10_000, ONE).stp(StpMode::CancelNewest, StpScope::Account);
    let events = s.order(ALICE, order);
    let incoming = accepted(&events).order_id;
    assert!(fills(&events).is_empty());
    let cancelled = cancels(&events);
    assert_eq!(cancelled.len(), 1);
    assert_eq!((cancelled[0].order_id, cancelled[0].reason), (incoming, CancelReason::SelfTrade));
    assert_eq!(cancelled[0].qty_cancelled, Qty(ONE));
    let open: Vec<_> = s.open_orders(ALICE_ACCOUNT).iter().map(|o| o.order_id).collect();
    assert_eq!(open, vec![alice_bid]);
    assert_eq!(s.open_orders(BOB_ACCOUNT)[0].order_id, bob_bid);
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE - 100_050_000, 100_050_000));
    assert_eq!(s.balance(ALICE_ACCOUNT, COIN), (START_BASE, 0));
    s.engine.check_invariants().unwrap();
}

#[test]
fn stp_cancel_oldest_drops_the_resting_order_and_keeps_matching() {
    let mut s = Scenario::new();
    let alice_bid = s.place(ALICE, buy(ALICE_ACCOUNT, 10_000, ONE));
    let bob_bid = s.place(BOB, buy(BOB_ACCOUNT, 10_000, ONE));
    let order = sell(ALICE_ACCOUNT, 10_000, ONE).stp(StpMode::CancelOldest, StpScope::Account);
    let events = s.order(ALICE, order);
    let cancelled = cancels(&events);
    assert_eq!(cancelled.len(), 1);
    assert_eq!((cancelled[0].order_id, cancelled[0].reason), (alice_bid, CancelReason::SelfTrade));
    let fill = fills(&events)[0];
    assert_eq!((fill.maker_order, fill.qty), (bob_bid, Qty(ONE)));
    // Alice's bid hold is released; she sells 1 coin for 100_000_000 - 50_000.
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE + 99_950_000, 0));
    assert_eq!(s.balance(ALICE_ACCOUNT, COIN), (START_BASE - COIN_ONE, 0));
    // Bob buys for 100_000_000 - 10_000.
    assert_eq!(s.balance(BOB_ACCOUNT, USD), (START_QUOTE - 99_990_000, 0));
    assert_eq!(s.balance(BOB_ACCOUNT, COIN), (START_BASE + COIN_ONE, 0));
    assert_eq!(s.depth(COIN_USD, 10), Depth::default());
    s.engine.check_invariants().unwrap();
}

#[test]
fn stp_cancel_both_drops_both_after_trading_with_others() {
    let mut s = Scenario::new();
    s.place(BOB, buy(BOB_ACCOUNT, 10_001, ONE));
    let alice_bid = s.place(ALICE, buy(ALICE_ACCOUNT, 10_000, ONE));
    // Alice sells 2.000: 1.000 trades with Bob at 100.01, then she meets her own bid.
    let order = sell(ALICE_ACCOUNT, 10_000, 2 * ONE).stp(StpMode::CancelBoth, StpScope::Account);
    let events = s.order(ALICE, order);
    let incoming = accepted(&events).order_id;
    assert_eq!(fills(&events).len(), 1);
    let cancelled: Vec<_> =
        cancels(&events).iter().map(|c| (c.order_id, c.qty_cancelled.0, c.reason)).collect();
    let self_trade = CancelReason::SelfTrade;
    assert_eq!(cancelled, vec![(alice_bid, ONE, self_trade), (incoming, ONE, self_trade)]);
    // Notional 10_001 x 1_000 x 10 = 100_010_000: taker fee 50_005, rebate -10_001.
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE + 99_959_995, 0));
    assert_eq!(s.balance(ALICE_ACCOUNT, COIN), (START_BASE - COIN_ONE, 0));
    assert_eq!(s.balance(BOB_ACCOUNT, USD), (START_QUOTE - 99_999_999, 0));
    assert_eq!(s.balance(FEES, USD), (40_004, 0));
    assert_eq!(s.depth(COIN_USD, 10), Depth::default());
    s.engine.check_invariants().unwrap();
}

#[test]
fn stp_owner_scope_spans_the_accounts_of_one_user() {
    let mut s = Scenario::new();
    let alice_second = AccountId(5);
    s.add_account(alice_second, ALICE);
    s.deposit(alice_second, COIN, COIN_ONE);
    let resting = s.place(ALICE, buy(ALICE_ACCOUNT, 10_000, ONE));
    let order = sell(alice_second, 10_000, ONE).stp(StpMode::CancelNewest, StpScope::Owner);
    let events = s.order(ALICE, order);
    assert!(fills(&events).is_empty());
    assert_eq!(cancels(&events)[0].reason, CancelReason::SelfTrade);
    assert_eq!(s.open_orders(ALICE_ACCOUNT)[0].order_id, resting);
    assert_eq!(s.balance(alice_second, COIN), (COIN_ONE, 0));
    // CancelOldest by owner removes the other account's resting order instead.
    let order = sell(alice_second, 10_000, ONE).stp(StpMode::CancelOldest, StpScope::Owner);
    let events = s.order(ALICE, order);
    assert_eq!(
        (cancels(&events)[0].order_id, cancels(&events)[0].reason),
        (resting, CancelReason::SelfTrade)
    );
    assert!(s.open_orders(ALICE_ACCOUNT).is_empty());
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE, 0));
    // With nothing left to meet, the GTC sell rests.
    assert_eq!(s.balance(alice_second, COIN), (0, COIN_ONE));
    s.engine.check_invariants().unwrap();
}

#[test]
fn stp_account_scope_ignores_other_accounts_of_the_same_user() {
    let mut s = Scenario::new();
    let alice_second = AccountId(5);
    s.add_account(alice_second, ALICE);
    s.deposit(alice_second, COIN, COIN_ONE);
    let resting = s.place(ALICE, buy(ALICE_ACCOUNT, 10_000, ONE));
    let order = sell(alice_second, 10_000, ONE).stp(StpMode::CancelBoth, StpScope::Account);
    let events = s.order(ALICE, order);
    assert!(cancels(&events).is_empty());
    let fill = fills(&events)[0];
    assert_eq!((fill.maker_order, fill.taker_account), (resting, alice_second));
    // Second account: sells 1 coin for 100_000_000 - 50_000. First: buys for
    // 100_000_000 - 10_000.
    assert_eq!(s.balance(alice_second, USD), (99_950_000, 0));
    assert_eq!(s.balance(alice_second, COIN), (0, 0));
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE - 99_990_000, 0));
    assert_eq!(s.balance(ALICE_ACCOUNT, COIN), (START_BASE + COIN_ONE, 0));
    s.engine.check_invariants().unwrap();
}

#[test]
fn stp_fok_counts_only_liquidity_it_may_trade_with() {
    let mut s = Scenario::new();
    let alice_ask = s.place(ALICE, sell(ALICE_ACCOUNT, 10_000, ONE));
    s.place(BOB, sell(BOB_ACCOUNT, 10_000, ONE));
    let before = s.snapshot();
    // CancelNewest would stop at her own ask: nothing to fill, killed, nothing cancelled.
    let newest =
        buy(ALICE_ACCOUNT, 10_000, ONE).fok().stp(StpMode::CancelNewest, StpScope::Account);
    let events = s.order(ALICE, newest);
    assert_eq!(cancels(&events)[0].reason, CancelReason::FokUnfilled);
    assert_eq!(s.snapshot(), before);
    // CancelOldest skips her own ask: 1.000 of Bob's is there, 2.000 is not.
    let oldest =
        |qty| buy(ALICE_ACCOUNT, 10_000, qty).fok().stp(StpMode::CancelOldest, StpScope::Account);
    let events = s.order(ALICE, oldest(2 * ONE));
    assert_eq!(cancels(&events)[0].reason, CancelReason::FokUnfilled);
    assert_eq!(s.snapshot(), before);
    let events = s.order(ALICE, oldest(ONE));
    assert_eq!(
        (cancels(&events)[0].order_id, cancels(&events)[0].reason),
        (alice_ask, CancelReason::SelfTrade)
    );
    assert_eq!(fills(&events)[0].maker_account, BOB_ACCOUNT);
    assert_eq!(s.depth(COIN_USD, 10), Depth::default());
    s.engine.check_invariants().unwrap();
}

// ==== amend ===========================================================================

#[test]
fn amend_qty_down_keeps_priority() {
    let mut s = Scenario::new();
    let alice_bid = s.place(ALICE, buy(ALICE_ACCOUNT, 10_000, 2 * ONE));
    let bob_bid = s.place(BOB, buy(BOB_ACCOUNT, 10_000, ONE));
    // 2.000 -> 1.000 at the same price: hold 200_100_000 -> 100_050_000.
    let events = s.trade(ALICE, amend(ALICE_ACCOUNT, alice_bid, 10_000, ONE));
    let change = amended(&events);
    assert_eq!((change.order_id, change.qty, change.priority_kept), (alice_bid, Qty(ONE), true));
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE - 100_050_000, 100_050_000));
    // Alice is still first in the queue.
    let events = s.order(CAROL, sell(CAROL_ACCOUNT, 10_000, ONE).ioc());
    assert_eq!(fills(&events)[0].maker_order, alice_bid);
    assert_eq!(s.open_orders(BOB_ACCOUNT)[0].order_id, bob_bid);
    s.engine.check_invariants().unwrap();
}

#[test]
fn amend_price_change_loses_priority() {
    let mut s = Scenario::new();
    let alice_bid = s.place(ALICE, buy(ALICE_ACCOUNT, 10_001, ONE));
    let bob_bid = s.place(BOB, buy(BOB_ACCOUNT, 10_000, ONE));
    // Alice moves down to Bob's level and queues behind him, although her order is older.
    // Hold 10_001 x 1_000 x 10 + 5 bp = 100_060_005 -> 100_050_000.
    let events = s.trade(ALICE, amend(ALICE_ACCOUNT, alice_bid, 10_000, ONE));
    let change = amended(&events);
    assert_eq!(
        (change.order_id, change.price, change.priority_kept),
        (alice_bid, Price(10_000), false)
    );
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE - 100_050_000, 100_050_000));
    let events = s.order(CAROL, sell(CAROL_ACCOUNT, 10_000, ONE).ioc());
    assert_eq!(fills(&events)[0].maker_order, bob_bid);
    // The order keeps its id.
    assert_eq!(s.open_orders(ALICE_ACCOUNT)[0].order_id, alice_bid);
    s.engine.check_invariants().unwrap();
}

#[test]
fn amend_qty_up_loses_priority() {
    let mut s = Scenario::new();
    let alice_bid = s.place(ALICE, buy(ALICE_ACCOUNT, 10_000, ONE));
    let bob_bid = s.place(BOB, buy(BOB_ACCOUNT, 10_000, ONE));
    // 1.000 -> 2.000: hold 100_050_000 -> 200_100_000.
    let events = s.trade(ALICE, amend(ALICE_ACCOUNT, alice_bid, 10_000, 2 * ONE));
    assert!(!amended(&events).priority_kept);
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE - 200_100_000, 200_100_000));
    let events = s.order(CAROL, sell(CAROL_ACCOUNT, 10_000, ONE).ioc());
    assert_eq!(fills(&events)[0].maker_order, bob_bid);
    assert_eq!(s.depth(COIN_USD, 10).bids, vec![(10_000, 2 * ONE, 1)]);
    s.engine.check_invariants().unwrap();
}

#[test]
fn amend_that_crosses_trades_immediately_and_rests_the_rest() {
    let mut s = Scenario::new();
    let bob_ask = s.place(BOB, sell(BOB_ACCOUNT, 10_000, ONE));
    // 2.000 @ 99.00 holds 198_000_000 + 99_000 = 198_099_000.
    let alice_bid = s.place(ALICE, buy(ALICE_ACCOUNT, 9_900, 2 * ONE));
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE - 198_099_000, 198_099_000));
    // Amend to 101.00: hold 202_000_000 + 101_000 = 202_101_000. It takes Bob's 1.000
    // at 100.00 for 100_000_000 + 50_000; the hold for the 1.000 left is
    // 101_000_000 + 50_500 = 101_050_500.
    let events = s.trade(ALICE, amend(ALICE_ACCOUNT, alice_bid, 10_100, 2 * ONE));
    assert!(!amended(&events).priority_kept);
    let fill = fills(&events)[0];
    assert_eq!(
        (fill.maker_order, fill.taker_order, fill.price),
        (bob_ask, alice_bid, Price(10_000))
    );
    assert_eq!((fill.taker_fee, fill.taker_remaining), (50_000, Qty(ONE)));
    let usd = (START_QUOTE - 100_050_000 - 101_050_500, 101_050_500);
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), usd);
    let open = s.open_orders(ALICE_ACCOUNT);
    assert_eq!(open.len(), 1);
    assert_eq!((open[0].order_id, open[0].price), (alice_bid, Price(10_100)));
    assert_eq!(
        (open[0].remaining, open[0].filled, open[0].hold),
        (Qty(ONE), Qty(ONE), 101_050_500)
    );
    assert_eq!(s.depth(COIN_USD, 10), Depth { bids: vec![(10_100, ONE, 1)], asks: vec![] });
    s.engine.check_invariants().unwrap();
}

#[test]
fn amend_that_fills_completely_removes_the_order() {
    let mut s = Scenario::new();
    s.place(BOB, sell(BOB_ACCOUNT, 10_000, ONE));
    let alice_bid = s.place(ALICE, buy(ALICE_ACCOUNT, 9_900, ONE));
    // At 100.00 the hold is 100_050_000, exactly what the fill costs as taker.
    let events = s.trade(ALICE, amend(ALICE_ACCOUNT, alice_bid, 10_000, ONE));
    assert_eq!(fills(&events)[0].taker_remaining, Qty(0));
    assert!(cancels(&events).is_empty());
    assert!(s.open_orders(ALICE_ACCOUNT).is_empty());
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE - 100_050_000, 0));
    assert_eq!(s.balance(ALICE_ACCOUNT, COIN), (START_BASE + COIN_ONE, 0));
    assert_eq!(s.depth(COIN_USD, 10), Depth::default());
    // The id is gone with it.
    s.expect_reject(ALICE, cancel(ALICE_ACCOUNT, alice_bid), RejectReason::UnknownOrder);
    s.engine.check_invariants().unwrap();
}

#[test]
fn amend_moves_a_buy_hold_both_ways_and_a_sell_hold_with_qty() {
    let mut s = Scenario::new();
    let bid = s.place(ALICE, buy(ALICE_ACCOUNT, 10_000, ONE));
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE - 100_050_000, 100_050_000));
    // Cheaper: 99.00 x 1.000 holds 99_000_000 + 49_500 = 99_049_500 (1_000_500 released).
    s.trade(ALICE, amend(ALICE_ACCOUNT, bid, 9_900, ONE));
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE - 99_049_500, 99_049_500));
    // Bigger: 3.000 holds 297_000_000 + 148_500 = 297_148_500.
    s.trade(ALICE, amend(ALICE_ACCOUNT, bid, 9_900, 3 * ONE));
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE - 297_148_500, 297_148_500));
    // Smaller in place: 2.000 holds 198_000_000 + 99_000 = 198_099_000.
    s.trade(ALICE, amend(ALICE_ACCOUNT, bid, 9_900, 2 * ONE));
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE - 198_099_000, 198_099_000));
    let order = OrderRef::Id(bid);
    let info = s.query(ALICE, Query::Order { account: ALICE_ACCOUNT, order });
    assert!(matches!(info[0], Event::OrderInfo(o) if o.hold == 198_099_000));
    // A sell holds coins: 1.000 -> 1.500 holds 150_000_000 coin units.
    let ask = s.place(BOB, sell(BOB_ACCOUNT, 10_100, ONE));
    s.trade(BOB, amend(BOB_ACCOUNT, ask, 10_100, 1_500));
    assert_eq!(s.balance(BOB_ACCOUNT, COIN), (START_BASE - 150_000_000, 150_000_000));
    // Its price does not change what it holds.
    s.trade(BOB, amend(BOB_ACCOUNT, ask, 10_200, 1_500));
    assert_eq!(s.balance(BOB_ACCOUNT, COIN), (START_BASE - 150_000_000, 150_000_000));
    s.engine.check_invariants().unwrap();
}

#[test]
fn amend_that_meets_its_own_order_applies_the_orders_stp_mode() {
    let mut s = Scenario::new();
    // The bid carries CancelNewest by account (the builder default).
    let bid = s.place(ALICE, buy(ALICE_ACCOUNT, 9_900, ONE));
    let ask = s.place(ALICE, sell(ALICE_ACCOUNT, 10_000, ONE));
    // Repriced onto her own ask, the amended (newest) order is the one cancelled.
    let events = s.trade(ALICE, amend(ALICE_ACCOUNT, bid, 10_000, ONE));
    assert!(fills(&events).is_empty());
    let cancelled = cancels(&events);
    assert_eq!(cancelled.len(), 1);
    assert_eq!((cancelled[0].order_id, cancelled[0].reason), (bid, CancelReason::SelfTrade));
    let open: Vec<_> = s.open_orders(ALICE_ACCOUNT).iter().map(|o| o.order_id).collect();
    assert_eq!(open, vec![ask]);
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE, 0));
    s.engine.check_invariants().unwrap();
}

#[test]
fn amend_far_outside_the_band_is_rejected_like_a_new_order() {
    let mut s = Scenario::new();
    let bid = s.place(ALICE, buy(ALICE_ACCOUNT, 9_900, ONE));
    let far = i64::MAX / 2;
    // A new order at this price is refused for the band...
    let order = new_order(buy(ALICE_ACCOUNT, far, ONE));
    s.expect_reject(ALICE, order, RejectReason::PriceOutsideBand);
    // ...and so must an amend to it: reasons take precedence by number (reject.rs), and
    // the price is outside the band whatever its notional.
    let reprice = amend(ALICE_ACCOUNT, bid, far, ONE);
    s.expect_reject(ALICE, reprice, RejectReason::PriceOutsideBand);
    s.engine.check_invariants().unwrap();
}

#[test]
fn amend_of_post_only_that_would_cross_is_rejected() {
    let mut s = Scenario::new();
    let bid = s.place(ALICE, buy(ALICE_ACCOUNT, 9_900, ONE).post_only());
    s.place(BOB, sell(BOB_ACCOUNT, 10_000, ONE));
    let crossing = amend(ALICE_ACCOUNT, bid, 10_000, ONE);
    s.expect_reject(ALICE, crossing, RejectReason::PostOnlyWouldCross);
    // A non-crossing amend is fine, and the order stays post-only afterwards.
    s.trade(ALICE, amend(ALICE_ACCOUNT, bid, 9_950, ONE));
    s.expect_reject(ALICE, crossing, RejectReason::PostOnlyWouldCross);
    s.engine.check_invariants().unwrap();
}

// ==== cancels, halts, freezes, withdrawals ============================================

#[test]
fn mass_cancel_per_instrument_then_all() {
    let mut s = Scenario::with(Scenario::limits(), 2);
    let a1 = s.place(ALICE, buy(ALICE_ACCOUNT, 9_900, ONE));
    let a2 = s.place(ALICE, sell(ALICE_ACCOUNT, 10_100, ONE).on(COIN1_USD));
    let a3 = s.place(ALICE, buy(ALICE_ACCOUNT, 9_800, ONE));
    let bob_bid = s.place(BOB, buy(BOB_ACCOUNT, 9_900, ONE));
    let one_instrument =
        CommandBody::MassCancel { account: ALICE_ACCOUNT, instrument: Some(COIN_USD) };
    let events = s.trade(ALICE, one_instrument);
    let cancelled: Vec<_> = cancels(&events).iter().map(|c| (c.order_id, c.reason)).collect();
    let mass = CancelReason::MassCancel;
    assert_eq!(cancelled, vec![(a1, mass), (a3, mass)]);
    let done = Event::MassCancelled { account: ALICE_ACCOUNT, count: 2 };
    assert_eq!(events.last(), Some(&done));
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE, 0));
    let open: Vec<_> = s.open_orders(ALICE_ACCOUNT).iter().map(|o| o.order_id).collect();
    assert_eq!(open, vec![a2]);
    // Everything else of the account, on any instrument.
    let all = CommandBody::MassCancel { account: ALICE_ACCOUNT, instrument: None };
    let events = s.trade(ALICE, all);
    assert_eq!(cancels(&events)[0].order_id, a2);
    assert_eq!(events.last(), Some(&Event::MassCancelled { account: ALICE_ACCOUNT, count: 1 }));
    assert_eq!(s.balance(ALICE_ACCOUNT, COIN1), (START_BASE, 0));
    // Nothing left is not an error.
    let events = s.trade(ALICE, all);
    assert_eq!(events, vec![Event::MassCancelled { account: ALICE_ACCOUNT, count: 0 }]);
    // Other accounts are untouched.
    assert_eq!(s.open_orders(BOB_ACCOUNT)[0].order_id, bob_bid);
    s.engine.check_invariants().unwrap();
}

#[test]
fn cancel_by_client_order_id_releases_the_remaining_hold() {
    let mut s = Scenario::new();
    let bid = s.place(ALICE, buy(ALICE_ACCOUNT, 9_900, 2 * ONE).cid(42));
    // 0.500 fills first: Alice pays 9_900 x 500 x 10 = 49_500_000 minus a 4_950 rebate.
    s.order(BOB, sell(BOB_ACCOUNT, 9_900, 500).ioc());
    let by_client = OrderRef::Client(ClientOrderId(42));
    let events = s.trade(ALICE, CommandBody::Cancel { account: ALICE_ACCOUNT, order: by_client });
    let expected = vec![
        Event::Cancelled(OrderCancelled {
            order_id: bid,
            account: ALICE_ACCOUNT,
            instrument: COIN_USD,
            client_order_id: ClientOrderId(42),
            qty_cancelled: Qty(1_500),
            reason: CancelReason::User,
        }),
        Event::Balance(BalanceChanged {
            account: ALICE_ACCOUNT,
            asset: USD,
            available: START_QUOTE - 49_495_050,
            held: 0,
            pending: 0,
        }),
        Event::Level(LevelChanged {
            instrument: COIN_USD,
            side: Side::Buy,
            price: Price(9_900),
            qty: Qty(0),
            orders: 0,
        }),
    ];
    assert_eq!(events, expected);
    let again = CommandBody::Cancel { account: ALICE_ACCOUNT, order: by_client };
    s.expect_reject(ALICE, again, RejectReason::UnknownOrder);
    s.engine.check_invariants().unwrap();
}

#[test]
fn halt_with_cancel_resting_empties_the_book_and_blocks_new_orders() {
    let mut s = Scenario::new();
    let a1 = s.place(ALICE, buy(ALICE_ACCOUNT, 9_900, ONE));
    let c1 = s.place(CAROL, buy(CAROL_ACCOUNT, 9_900, ONE));
    let a2 = s.place(ALICE, buy(ALICE_ACCOUNT, 9_800, ONE));
    let b1 = s.place(BOB, sell(BOB_ACCOUNT, 10_100, ONE));
    let events = s.admin(halt(COIN_USD, true));
    let halted = InstrumentStatus::Halted;
    assert_eq!(events[0], Event::InstrumentStatusChanged { instrument: COIN_USD, status: halted });
    // Bids then asks, each in price-time priority.
    let cancelled: Vec<_> = cancels(&events).iter().map(|c| (c.order_id, c.reason)).collect();
    let reason = CancelReason::Halt;
    assert_eq!(cancelled, vec![(a1, reason), (c1, reason), (a2, reason), (b1, reason)]);
    assert_eq!(s.depth(COIN_USD, 10), Depth::default());
    for account in [ALICE_ACCOUNT, BOB_ACCOUNT, CAROL_ACCOUNT] {
        assert_eq!(s.balance(account, USD), (START_QUOTE, 0));
        assert_eq!(s.balance(account, COIN), (START_BASE, 0));
    }
    let order = new_order(buy(ALICE_ACCOUNT, 9_900, ONE));
    s.expect_reject(ALICE, order, RejectReason::InstrumentHalted);
    s.admin(resume(COIN_USD));
    s.place(ALICE, buy(ALICE_ACCOUNT, 9_900, ONE));
    s.engine.check_invariants().unwrap();
}

#[test]
fn halt_without_cancel_keeps_the_book_and_still_allows_cancels() {
    let mut s = Scenario::new();
    let bid = s.place(ALICE, buy(ALICE_ACCOUNT, 9_900, ONE));
    s.place(BOB, sell(BOB_ACCOUNT, 10_100, ONE));
    s.admin(halt(COIN_USD, false));
    let depth = Depth { bids: vec![(9_900, ONE, 1)], asks: vec![(10_100, ONE, 1)] };
    assert_eq!(s.depth(COIN_USD, 10), depth);
    let crossing = new_order(buy(CAROL_ACCOUNT, 10_100, ONE));
    s.expect_reject(CAROL, crossing, RejectReason::InstrumentHalted);
    s.trade(ALICE, cancel(ALICE_ACCOUNT, bid));
    s.trade(BOB, CommandBody::MassCancel { account: BOB_ACCOUNT, instrument: Some(COIN_USD) });
    assert_eq!(s.depth(COIN_USD, 10), Depth::default());
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE, 0));
    assert_eq!(s.balance(BOB_ACCOUNT, COIN), (START_BASE, 0));
    s.engine.check_invariants().unwrap();
}

#[test]
fn frozen_account_cannot_place_but_can_cancel_and_its_orders_still_fill() {
    let mut s = Scenario::new();
    let bid = s.place(ALICE, buy(ALICE_ACCOUNT, 9_900, ONE));
    let ask = s.place(ALICE, sell(ALICE_ACCOUNT, 10_100, ONE));
    s.admin(status(ALICE_ACCOUNT, AccountStatus::Frozen));
    let order = new_order(buy(ALICE_ACCOUNT, 9_800, ONE));
    s.expect_reject(ALICE, order, RejectReason::AccountFrozen);
    // A resting order of a frozen account is still a firm quote.
    let events = s.order(BOB, sell(BOB_ACCOUNT, 9_900, ONE).ioc());
    assert_eq!(fills(&events)[0].maker_order, bid);
    // Alice paid 99_000_000 - 9_900 as maker; her ask still holds a coin.
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE - 98_990_100, 0));
    assert_eq!(s.balance(ALICE_ACCOUNT, COIN), (START_BASE, COIN_ONE));
    // Cancelling reduces risk, so it is allowed.
    s.trade(ALICE, cancel(ALICE_ACCOUNT, ask));
    assert_eq!(s.balance(ALICE_ACCOUNT, COIN), (START_BASE + COIN_ONE, 0));
    s.admin(status(ALICE_ACCOUNT, AccountStatus::Active));
    s.place(ALICE, buy(ALICE_ACCOUNT, 9_800, ONE));
    s.engine.check_invariants().unwrap();
}

#[test]
fn withdrawal_is_limited_to_the_available_balance() {
    let mut s = Scenario::new();
    let bid = s.place(ALICE, buy(ALICE_ACCOUNT, 10_000, ONE));
    let available = START_QUOTE - 100_050_000;
    let too_much = CommandBody::Withdraw {
        account: ALICE_ACCOUNT,
        asset: USD,
        amount: available + 1,
        client_payment_id: AUTO_PID,
    };
    s.expect_reject(ADMIN, too_much, RejectReason::InsufficientBalance);
    let all = CommandBody::Withdraw {
        account: ALICE_ACCOUNT,
        asset: USD,
        amount: available,
        client_payment_id: AUTO_PID,
    };
    let events = s.admin(all);
    let balance = BalanceChanged {
        account: ALICE_ACCOUNT,
        asset: USD,
        available: 0,
        held: 100_050_000,
        pending: 0,
    };
    let [Event::Payment { action: PaymentAction::Created, info }, Event::Balance(reported)] =
        events[..]
    else {
        panic!("a withdrawal reports its payment and one balance: {events:?}");
    };
    assert_eq!(reported, balance);
    assert_eq!(
        (info.kind, info.debit, info.credit),
        (PaymentKind::Withdrawal, ALICE_ACCOUNT, EXTERNAL_ACCOUNT)
    );
    assert_eq!(
        (info.amount, info.captured, info.status),
        (available, available, PaymentStatus::Completed)
    );
    // The held part comes back when the order goes, and can then be withdrawn.
    s.trade(ALICE, cancel(ALICE_ACCOUNT, bid));
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (100_050_000, 0));
    s.admin(CommandBody::Withdraw {
        account: ALICE_ACCOUNT,
        asset: USD,
        amount: 100_050_000,
        client_payment_id: AUTO_PID,
    });
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (0, 0));
    s.engine.check_invariants().unwrap();
}

// ==== queries =========================================================================

#[test]
fn query_balances_lists_every_asset_in_id_order() {
    let mut s = Scenario::with(Scenario::limits(), 2);
    s.place(ALICE, buy(ALICE_ACCOUNT, 10_000, ONE));
    let answer = s.query(ALICE, Query::Balances { account: ALICE_ACCOUNT });
    let info = |asset, available, held| {
        Event::BalanceInfo(BalanceChanged {
            account: ALICE_ACCOUNT,
            asset,
            available,
            held,
            pending: 0,
        })
    };
    let expected = vec![
        info(USD, START_QUOTE - 100_050_000, 100_050_000),
        info(COIN, START_BASE, 0),
        info(COIN1, START_BASE, 0),
        Event::QueryDone { items: 3 },
    ];
    assert_eq!(answer, expected);
    s.engine.check_invariants().unwrap();
}

#[test]
fn query_order_by_id_and_by_client_id() {
    let mut s = Scenario::new();
    let bid = s.place(ALICE, buy(ALICE_ACCOUNT, 10_000, 2 * ONE).cid(5));
    s.order(BOB, sell(BOB_ACCOUNT, 10_000, 500).ioc());
    // 1.500 left at 100.00 holds 150_000_000 + 75_000.
    let expected = vec![
        Event::OrderInfo(OrderInfo {
            order_id: bid,
            account: ALICE_ACCOUNT,
            instrument: COIN_USD,
            client_order_id: ClientOrderId(5),
            side: Side::Buy,
            price: Price(10_000),
            remaining: Qty(1_500),
            filled: Qty(500),
            hold: 150_075_000,
        }),
        Event::QueryDone { items: 1 },
    ];
    for order in [OrderRef::Id(bid), OrderRef::Client(ClientOrderId(5))] {
        assert_eq!(s.query(ALICE, Query::Order { account: ALICE_ACCOUNT, order }), expected);
    }
    s.engine.check_invariants().unwrap();
}

#[test]
fn query_open_orders_is_oldest_first() {
    let mut s = Scenario::new();
    let o1 = s.place(ALICE, buy(ALICE_ACCOUNT, 9_900, ONE));
    let o2 = s.place(ALICE, buy(ALICE_ACCOUNT, 9_800, ONE));
    let o3 = s.place(ALICE, sell(ALICE_ACCOUNT, 10_100, ONE));
    s.trade(ALICE, cancel(ALICE_ACCOUNT, o2));
    let o4 = s.place(ALICE, buy(ALICE_ACCOUNT, 9_600, ONE));
    // Age is the order's creation: an amend that loses book priority does not make it
    // younger in the account's list.
    s.trade(ALICE, amend(ALICE_ACCOUNT, o1, 9_950, ONE));
    let answer = s.query(ALICE, Query::OpenOrders { account: ALICE_ACCOUNT });
    assert_eq!(answer.last(), Some(&Event::QueryDone { items: 3 }));
    let ids: Vec<_> = s.open_orders(ALICE_ACCOUNT).iter().map(|o| o.order_id).collect();
    assert_eq!(ids, vec![o1, o3, o4]);
    s.engine.check_invariants().unwrap();
}

#[test]
fn query_depth_lists_bids_then_asks_best_first() {
    let mut s = Scenario::new();
    s.place(ALICE, buy(ALICE_ACCOUNT, 9_900, ONE));
    s.place(BOB, buy(BOB_ACCOUNT, 9_900, 2 * ONE));
    s.place(CAROL, buy(CAROL_ACCOUNT, 9_800, ONE));
    s.place(DAVE, buy(DAVE_ACCOUNT, 9_700, 500));
    s.place(BOB, sell(BOB_ACCOUNT, 10_100, ONE));
    s.place(CAROL, sell(CAROL_ACCOUNT, 10_200, 3 * ONE));
    s.place(ALICE, sell(ALICE_ACCOUNT, 10_100, 250));
    let level = |side, price, qty, orders| {
        let (price, qty) = (Price(price), Qty(qty));
        Event::DepthLevel(LevelChanged { instrument: COIN_USD, side, price, qty, orders })
    };
    let answer = s.query(BOB, Query::Depth { instrument: COIN_USD, levels: 2 });
    let expected = vec![
        level(Side::Buy, 9_900, 3_000, 2),
        level(Side::Buy, 9_800, 1_000, 1),
        level(Side::Sell, 10_100, 1_250, 2),
        level(Side::Sell, 10_200, 3_000, 1),
        Event::QueryDone { items: 4 },
    ];
    assert_eq!(answer, expected);
    let top = Depth { bids: vec![(9_900, 3_000, 2)], asks: vec![(10_100, 1_250, 2)] };
    assert_eq!(s.depth(COIN_USD, 1), top);
    assert_eq!(s.depth(COIN_USD, 10).bids.len(), 3);
    let none = s.query(BOB, Query::Depth { instrument: COIN_USD, levels: 0 });
    assert_eq!(none, vec![Event::QueryDone { items: 0 }]);
    s.engine.check_invariants().unwrap();
}

#[test]
fn query_of_another_users_account_is_refused_but_admin_reads_any() {
    let mut s = Scenario::new();
    let bid = s.place(ALICE, buy(ALICE_ACCOUNT, 9_900, ONE));
    let refused = query_reject(ALICE_ACCOUNT, RejectReason::AccountNotOwned);
    let order = OrderRef::Id(bid);
    let private = [
        Query::Balances { account: ALICE_ACCOUNT },
        Query::OpenOrders { account: ALICE_ACCOUNT },
        Query::Order { account: ALICE_ACCOUNT, order },
    ];
    for query in private {
        assert_eq!(s.query(BOB, query), refused, "{query:?}");
        let own = s.query(ALICE, query);
        assert_eq!(s.query(ADMIN, query), own, "{query:?}");
        assert!(matches!(own.last(), Some(Event::QueryDone { .. })));
    }
    // Depth is public.
    let depth = s.query(BOB, Query::Depth { instrument: COIN_USD, levels: 1 });
    assert_eq!(depth.last(), Some(&Event::QueryDone { items: 1 }));
    s.engine.check_invariants().unwrap();
}

// ==== the state hash sees what the rules depend on ====================================

#[test]
fn state_hash_covers_every_instrument_field_the_rules_read() {
    // Two engines that differ only in one of these fields accept different orders (the
    // band, the size limits) or pay fees to different accounts, so they must not hash
    // equal: the hash is what proves a replay rebuilt the same state.
    let hash_after_listing = |spec: InstrumentSpec| {
        let mut s = Scenario::new();
        s.list(spec);
        s.engine.state_hash()
    };
    let base = custom_spec(5, "TEST-USD");
    let reference = hash_after_listing(base);
    let variants = [
        InstrumentSpec { band_bps: 2_000, ..base },
        InstrumentSpec { reference_price: Price(10_100), ..base },
        InstrumentSpec { qty_max: Qty(1_000), ..base },
        InstrumentSpec { notional_max: 1_000_000, ..base },
        InstrumentSpec { fee_account: ALICE_ACCOUNT, ..base },
    ];
    for spec in variants {
        assert_ne!(hash_after_listing(spec), reference, "{spec:?}");
    }
}
