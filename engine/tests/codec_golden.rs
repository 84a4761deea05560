//! Golden-byte tests: the wire layout of every command, query and event variant, written
//! out field by field as `docs/PROTOCOL.md` documents it (bincode format: little-endian
//! fixed-width integers, u32 enum tags in declaration order, bool and Option tags as one
//! byte, fixed arrays without a length). Changing a layout breaks these tests on purpose.

use fincore_engine::*;

/// Builds expected bytes one documented field at a time.
#[derive(Default)]
struct Bytes(Vec<u8>);

impl Bytes {
    fn tag(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(self, v: u32) -> Self {
        self.tag(v)
    }
    fn i32(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i64(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn symbol(mut self, text: &str) -> Self {
        let mut raw = [0u8; 16];
        raw[..text.len()].copy_from_slice(text.as_bytes());
        self.0.extend_from_slice(&raw);
        self
    }
    /// The command header: seq, time_ns, user.
    fn bytes(mut self, v: &[u8]) -> Self {
        self.0.extend_from_slice(v);
        self
    }
    fn header(self, seq: u64, time_ns: u64, user: u32) -> Self {
        self.u64(seq).u64(time_ns).u32(user)
    }
}

fn command(body: CommandBody) -> Command {
    Command { seq: 0x0102, time_ns: 0x0A0B, user: UserId(3), body }
}

fn check<T: Wire + PartialEq + std::fmt::Debug>(value: T, expected: Bytes) {
    let encoded = value.encode();
    assert_eq!(hex(&encoded), hex(&expected.0), "layout of {value:?}");
    assert_eq!(T::decode(&encoded).unwrap(), value, "round trip of {value:?}");
    assert!(encoded.len() <= ENCODED_LEN_MAX);
    // Every strict prefix is an error, never a panic or a partial value.
    for cut in 0..encoded.len() {
        assert!(T::decode(&encoded[..cut]).is_err(), "prefix {cut} of {value:?} decoded");
    }
    let mut longer = encoded.clone();
    longer.push(0);
    assert!(T::decode(&longer).is_err(), "trailing byte accepted for {value:?}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn new_order() -> NewOrder {
    NewOrder {
        account: AccountId(7),
        instrument: InstrumentId(1),
        client_order_id: ClientOrderId(99),
        side: Side::Sell,
        order_type: OrderType::Limit,
        time_in_force: TimeInForce::Ioc,
        price: Price(10_125),
        qty: Qty(5),
        stp_mode: StpMode::CancelBoth,
        stp_scope: StpScope::Owner,
        post_only: false,
    }
}

#[test]
fn admin_commands() {
    let h = || Bytes::default().header(0x0102, 0x0A0B, 3);
    check(
        command(CommandBody::CreateUser { user: UserId(9), role: Role::Admin }),
        h().tag(0).u32(9).tag(1),
    );
    let symbol = Symbol::new("USD").unwrap();
    let body = CommandBody::CreateAsset { asset: AssetId(2), symbol, scale: 6 };
    check(command(body), h().tag(1).u16(2).symbol("USD").u8(6));
    let body = CommandBody::CreateAccount { account: AccountId(5), owner: UserId(9) };
    check(command(body), h().tag(3).u32(5).u32(9));
    let body = CommandBody::Deposit {
        account: AccountId(5),
        asset: AssetId(2),
        amount: 1_000,
        client_payment_id: ClientPaymentId(77),
    };
    check(command(body), h().tag(4).u32(5).u16(2).i64(1_000).u64(77));
    let body = CommandBody::Withdraw {
        account: AccountId(5),
        asset: AssetId(2),
        amount: 1,
        client_payment_id: ClientPaymentId(78),
    };
    check(command(body), h().tag(5).u32(5).u16(2).i64(1).u64(78));
    let body =
        CommandBody::SetAccountStatus { account: AccountId(5), status: AccountStatus::Frozen };
    check(command(body), h().tag(6).u32(5).tag(1));
    let body = CommandBody::SetInstrumentStatus {
        instrument: InstrumentId(1),
        status: InstrumentStatus::Halted,
        cancel_resting: true,
    };
    check(command(body), h().tag(7).u16(1).tag(1).u8(1));
}

#[test]
fn payment_commands() {
    let h = || Bytes::default().header(0x0102, 0x0A0B, 3);
    let transfer = Transfer {
        debit: AccountId(5),
        credit: AccountId(6),
        asset: AssetId(0),
        amount: 2_500,
        client_payment_id: ClientPaymentId(31),
    };
    let expected = h().tag(12).u32(5).u32(6).u16(0).i64(2_500).u64(31);
    check(command(CommandBody::Transfer(transfer)), expected);
    let authorize = Authorize {
        debit: AccountId(5),
        credit: AccountId(6),
        asset: AssetId(0),
        amount: 2_500,
        client_payment_id: ClientPaymentId(32),
        timeout_s: 600,
    };
    let expected = h().tag(13).u32(5).u32(6).u16(0).i64(2_500).u64(32).u32(600);
    check(command(CommandBody::Authorize(authorize)), expected);
    let payment = PaymentRef::Client(ClientPaymentId(32));
    let body = CommandBody::Capture { account: AccountId(5), payment, amount: 0 };
    check(command(body), h().tag(14).u32(5).tag(1).u64(32).i64(0));
    let payment = PaymentRef::Id(PaymentId(9));
    check(
        command(CommandBody::Void { account: AccountId(6), payment }),
        h().tag(15).u32(6).tag(0).u64(9),
    );
    let body = CommandBody::SetPaymentLimits {
        asset: AssetId(0),
        transfer_max: Some(10),
        velocity_24h: None,
    };
    check(command(body), h().tag(16).u16(0).u8(1).i64(10).u8(0));
    let body = CommandBody::SetAccountLimits {
        account: AccountId(5),
        asset: AssetId(0),
        credit_limit: 100,
        velocity_24h: Some(1_000),
    };
    check(command(body), h().tag(17).u32(5).u16(0).i64(100).u8(1).i64(1_000));
    let body = CommandBody::SetAccountBlocked { account: AccountId(5), blocked: true };
    check(command(body), h().tag(18).u32(5).u8(1));
    check(command(CommandBody::Tick), h().tag(19));
}

#[test]
fn payment_events() {
    let b = Bytes::default;
    let info = PaymentInfo {
        payment_id: PaymentId(9),
        client_payment_id: ClientPaymentId(32),
        kind: PaymentKind::Authorization,
        debit: AccountId(5),
        credit: AccountId(6),
        asset: AssetId(0),
        amount: 2_500,
        captured: 1_000,
        status: PaymentStatus::Completed,
        created_ns: 10,
        deadline_ns: 20,
        resolved_ns: 15,
    };
    let info_bytes = || {
        b().u64(9)
            .u64(32)
            .tag(1)
            .u32(5)
            .u32(6)
            .u16(0)
            .i64(2_500)
            .i64(1_000)
            .tag(1)
            .u64(10)
            .u64(20)
            .u64(15)
    };
    let event = Event::Payment { action: PaymentAction::Captured, info };
    check(event, b().tag(12).tag(1).bytes(&info_bytes().0));
    check(Event::PaymentInfo(info), b().tag(22).bytes(&info_bytes().0));
    let event =
        Event::PaymentLimitsSet { asset: AssetId(0), transfer_max: None, velocity_24h: Some(7) };
    check(event, b().tag(23).u16(0).u8(0).u8(1).i64(7));
    let event = Event::AccountLimitsSet {
        account: AccountId(5),
        asset: AssetId(0),
        credit_limit: 3,
        velocity_24h: None,
    };
    check(event, b().tag(24).u32(5).u16(0).i64(3).u8(0));
    check(
        Event::AccountBlocked { account: AccountId(5), blocked: false },
        b().tag(25).u32(5).u8(0),
    );
    check(Event::Ticked { time_ns: 99 }, b().tag(26).u64(99));
    for (action, tag) in [
        (PaymentAction::Created, 0),
        (PaymentAction::Captured, 1),
        (PaymentAction::Voided, 2),
        (PaymentAction::Expired, 3),
        (PaymentAction::Duplicate, 4),
    ] {
        let bytes = Event::Payment { action, info }.encode();
        assert_eq!(bytes[4..8], (tag as u32).to_le_bytes());
    }
}

#[test]
fn create_instrument() {
    let spec = InstrumentSpec {
        instrument: InstrumentId(1),
        symbol: Symbol::new("BTC-USD").unwrap(),
        base: AssetId(1),
        quote: AssetId(0),
        tick_size: Dec { mantissa: 1, scale: 2 },
        lot_size: Dec { mantissa: 1, scale: 3 },
        reference_price: Price(10_000),
        band_bps: 1_000,
        qty_max: Qty(1_000_000),
        notional_max: 1 << 40,
        maker_fee_bps: -1,
        taker_fee_bps: 5,
        fee_account: AccountId(0),
    };
    let expected = Bytes::default()
        .header(0x0102, 0x0A0B, 3)
        .tag(2)
        .u16(1)
        .symbol("BTC-USD")
        .u16(1)
        .u16(0)
        .i64(1)
        .u8(2)
        .i64(1)
        .u8(3)
        .i64(10_000)
        .u32(1_000)
        .i64(1_000_000)
        .i64(1 << 40)
        .i32(-1)
        .i32(5)
        .u32(0);
    check(command(CommandBody::CreateInstrument(spec)), expected);
}

#[test]
fn trading_commands() {
    let h = || Bytes::default().header(0x0102, 0x0A0B, 3);
    let order = h()
        .tag(8)
        .u32(7)
        .u16(1)
        .u64(99)
        .tag(1)
        .tag(0)
        .tag(1)
        .i64(10_125)
        .i64(5)
        .tag(3)
        .tag(1)
        .u8(0);
    check(command(CommandBody::NewOrder(new_order())), order);
    let body = CommandBody::Cancel { account: AccountId(7), order: OrderRef::Id(OrderId(42)) };
    check(command(body), h().tag(9).u32(7).tag(0).u64(42));
    let body =
        CommandBody::Cancel { account: AccountId(7), order: OrderRef::Client(ClientOrderId(99)) };
    check(command(body), h().tag(9).u32(7).tag(1).u64(99));
    let amend = Amend {
        account: AccountId(7),
        order: OrderRef::Id(OrderId(42)),
        price: Price(10_100),
        qty: Qty(3),
    };
    check(command(CommandBody::Amend(amend)), h().tag(10).u32(7).tag(0).u64(42).i64(10_100).i64(3));
    let body = CommandBody::MassCancel { account: AccountId(7), instrument: None };
    check(command(body), h().tag(11).u32(7).u8(0));
    let body = CommandBody::MassCancel { account: AccountId(7), instrument: Some(InstrumentId(1)) };
    check(command(body), h().tag(11).u32(7).u8(1).u16(1));
}

#[test]
fn queries() {
    let b = Bytes::default;
    check(Query::Balances { account: AccountId(7) }, b().tag(0).u32(7));
    let order = OrderRef::Client(ClientOrderId(99));
    check(Query::Order { account: AccountId(7), order }, b().tag(1).u32(7).tag(1).u64(99));
    check(Query::OpenOrders { account: AccountId(7) }, b().tag(2).u32(7));
    check(Query::Depth { instrument: InstrumentId(1), levels: 10 }, b().tag(3).u16(1).u16(10));
    check(Query::Reference, b().tag(4));
    let payment = PaymentRef::Client(ClientPaymentId(32));
    check(Query::Payment { account: AccountId(5), payment }, b().tag(5).u32(5).tag(1).u64(32));
    check(Query::Payments { account: AccountId(5), limit: 20 }, b().tag(6).u32(5).u16(20));
}

#[test]
fn order_events() {
    let b = Bytes::default;
    let rejected = Rejected {
        kind: CommandKind::NewOrder,
        account: AccountId(7),
        client_id: 99,
        reason: RejectReason::InsufficientBalance,
    };
    // Reject reasons travel as their stable code in the u32 tag.
    check(Event::Rejected(rejected), b().tag(0).tag(8).u32(7).u64(99).tag(502));
    let accepted = OrderAccepted {
        order_id: OrderId(42),
        account: AccountId(7),
        instrument: InstrumentId(1),
        client_order_id: ClientOrderId(99),
        side: Side::Buy,
        price: Price(10_125),
        qty: Qty(5),
        hold: 506_503,
    };
    let expected = b().tag(1).u64(42).u32(7).u16(1).u64(99).tag(0).i64(10_125).i64(5).i64(506_503);
    check(Event::Accepted(accepted), expected);
    let fill = Fill {
        instrument: InstrumentId(1),
        trade_id: TradeId(8),
        price: Price(10_000),
        qty: Qty(2),
        taker_side: Side::Sell,
        maker_order: OrderId(41),
        taker_order: OrderId(42),
        maker_account: AccountId(6),
        taker_account: AccountId(7),
        maker_client_id: ClientOrderId(1),
        taker_client_id: ClientOrderId(99),
        maker_fee: -20,
        taker_fee: 100,
        maker_remaining: Qty(0),
        taker_remaining: Qty(3),
    };
    let expected = b()
        .tag(2)
        .u16(1)
        .u64(8)
        .i64(10_000)
        .i64(2)
        .tag(1)
        .u64(41)
        .u64(42)
        .u32(6)
        .u32(7)
        .u64(1)
        .u64(99)
        .i64(-20)
        .i64(100)
        .i64(0)
        .i64(3);
    check(Event::Fill(fill), expected);
    let cancelled = OrderCancelled {
        order_id: OrderId(42),
        account: AccountId(7),
        instrument: InstrumentId(1),
        client_order_id: ClientOrderId(99),
        qty_cancelled: Qty(3),
        reason: CancelReason::IocRemainder,
    };
    check(Event::Cancelled(cancelled), b().tag(3).u64(42).u32(7).u16(1).u64(99).i64(3).tag(1));
    let amended = OrderAmended {
        order_id: OrderId(42),
        account: AccountId(7),
        instrument: InstrumentId(1),
        client_order_id: ClientOrderId(99),
        price: Price(10_100),
        qty: Qty(4),
        priority_kept: false,
    };
    check(
        Event::Amended(amended),
        b().tag(4).u64(42).u32(7).u16(1).u64(99).i64(10_100).i64(4).u8(0),
    );
}

#[test]
fn ledger_and_market_data_events() {
    let b = Bytes::default;
    let balance = BalanceChanged {
        account: AccountId(7),
        asset: AssetId(0),
        available: 5,
        held: 6,
        pending: 4,
    };
    check(Event::Balance(balance), b().tag(5).u32(7).u16(0).i64(5).i64(6).i64(4));
    let trade = Trade {
        instrument: InstrumentId(1),
        trade_id: TradeId(8),
        price: Price(10_000),
        qty: Qty(2),
        taker_side: Side::Buy,
    };
    check(Event::Trade(trade), b().tag(6).u16(1).u64(8).i64(10_000).i64(2).tag(0));
    let level = LevelChanged {
        instrument: InstrumentId(1),
        side: Side::Sell,
        price: Price(10_001),
        qty: Qty(7),
        orders: 2,
    };
    check(Event::Level(level), b().tag(7).u16(1).tag(1).i64(10_001).i64(7).u32(2));
    check(Event::UserCreated { user: UserId(9), role: Role::Trader }, b().tag(8).u32(9).tag(0));
    check(Event::AssetCreated { asset: AssetId(2), scale: 6 }, b().tag(9).u16(2).u8(6));
    check(Event::InstrumentCreated { instrument: InstrumentId(1) }, b().tag(10).u16(1));
    check(
        Event::AccountCreated { account: AccountId(5), owner: UserId(9) },
        b().tag(11).u32(5).u32(9),
    );
    let status =
        Event::AccountStatusChanged { account: AccountId(5), status: AccountStatus::Closed };
    check(status, b().tag(13).u32(5).tag(2));
    let status = Event::InstrumentStatusChanged {
        instrument: InstrumentId(1),
        status: InstrumentStatus::Trading,
    };
    check(status, b().tag(14).u16(1).tag(0));
    check(Event::MassCancelled { account: AccountId(5), count: 3 }, b().tag(15).u32(5).u32(3));
}

#[test]
fn query_answer_events() {
    let b = Bytes::default;
    let balance = BalanceChanged {
        account: AccountId(7),
        asset: AssetId(1),
        available: -1,
        held: 2,
        pending: 0,
    };
    check(Event::BalanceInfo(balance), b().tag(16).u32(7).u16(1).i64(-1).i64(2).i64(0));
    let info = OrderInfo {
        order_id: OrderId(42),
        account: AccountId(7),
        instrument: InstrumentId(1),
        client_order_id: ClientOrderId(99),
        side: Side::Buy,
        price: Price(10_000),
        remaining: Qty(3),
        filled: Qty(2),
        hold: 300_150,
    };
    let expected =
        b().tag(17).u64(42).u32(7).u16(1).u64(99).tag(0).i64(10_000).i64(3).i64(2).i64(300_150);
    check(Event::OrderInfo(info), expected);
    let level = LevelChanged {
        instrument: InstrumentId(1),
        side: Side::Buy,
        price: Price(9_999),
        qty: Qty(1),
        orders: 1,
    };
    check(Event::DepthLevel(level), b().tag(18).u16(1).tag(0).i64(9_999).i64(1).u32(1));
    check(Event::QueryDone { items: 4 }, b().tag(19).u32(4));
    let usd = Event::AssetInfo { asset: AssetId(0), symbol: Symbol::new("USD").unwrap(), scale: 6 };
    check(usd, b().tag(20).u16(0).symbol("USD").u8(6));
    let spec = InstrumentSpec {
        instrument: InstrumentId(1),
        symbol: Symbol::new("ETH-USD").unwrap(),
        base: AssetId(2),
        quote: AssetId(0),
        tick_size: Dec { mantissa: 1, scale: 2 },
        lot_size: Dec { mantissa: 1, scale: 3 },
        reference_price: Price(300_000),
        band_bps: 1_000,
        qty_max: Qty(1_000_000),
        notional_max: 10_000_000_000_000,
        maker_fee_bps: 1,
        taker_fee_bps: 5,
        fee_account: AccountId(1),
    };
    let expected = b()
        .tag(21)
        .u16(1)
        .symbol("ETH-USD")
        .u16(2)
        .u16(0)
        .i64(1)
        .u8(2)
        .i64(1)
        .u8(3)
        .i64(300_000)
        .u32(1_000)
        .i64(1_000_000)
        .i64(10_000_000_000_000)
        .i32(1)
        .i32(5)
        .u32(1)
        .tag(1);
    check(Event::InstrumentInfo { spec, status: InstrumentStatus::Halted }, expected);
}

#[test]
fn every_reject_code_is_its_own_wire_tag() {
    for reason in RejectReason::ALL {
        let rejected = Rejected {
            kind: CommandKind::Query,
            account: AccountId(0),
            client_id: 0,
            reason: *reason,
        };
        let bytes = Event::Rejected(rejected).encode();
        let tail: [u8; 4] = bytes[bytes.len() - 4..].try_into().unwrap();
        assert_eq!(u32::from_le_bytes(tail), u32::from(reason.code()));
    }
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    // Unknown variant tags.
    assert!(Event::decode(&Bytes::default().tag(200).0).is_err());
    assert!(Query::decode(&Bytes::default().tag(7).u32(0).0).is_err());
    // A bool that is neither 0 nor 1 (post_only is the last byte of a new order).
    let mut bytes = command(CommandBody::NewOrder(new_order())).encode();
    *bytes.last_mut().unwrap() = 2;
    assert!(Command::decode(&bytes).is_err());
    // A reject code that does not exist.
    let bad = Bytes::default().tag(0).tag(8).u32(7).u64(99).tag(503);
    assert!(Event::decode(&bad.0).is_err());
    // Empty input.
    assert!(Command::decode(&[]).is_err());
}
