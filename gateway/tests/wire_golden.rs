//! Golden-byte tests of the TCP protocol: the whole frame (header and body) of every
//! client and server message (payments included), written out field by field as
//! `docs/PROTOCOL.md` sections 7 and 9 document it, and each client message's client id
//! and permission rule. Bodies use the engine's bincode layout (little-endian
//! fixed-width integers, u32 enum tags, one-byte bools and option tags, fixed arrays
//! without a length). Changing a layout breaks these tests on purpose.

mod common;

use fincore_engine::*;
use fincore_gateway::wire::{
    self, BODY_LEN_MAX, Cancel, Capture, ClientMsg, CreateAccount, ExecReport, ExternalPayment,
    Frame, HEADER_LEN, Header, Login, LoginAccepted, MassCancel, MdLevel, MdSnapshotEnd,
    MdSnapshotLevel, MdTrade, ServerMsg, SessionReason, SessionReject, SetAccountBlocked,
    SetAccountLimits, SetAccountStatus, SetInstrumentStatus, SetPaymentLimits, SnapshotTaken,
    VERSION, Void, msg,
};

/// Builds expected bytes one documented field at a time.
#[derive(Default, Clone)]
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
    fn bool(self, v: bool) -> Self {
        self.u8(u8::from(v))
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
    /// `text` zero-padded to `width` bytes.
    fn padded(mut self, text: &str, width: usize) -> Self {
        let mut raw = vec![0u8; width];
        raw[..text.len()].copy_from_slice(text.as_bytes());
        self.0.extend_from_slice(&raw);
        self
    }
    fn symbol(self, text: &str) -> Self {
        self.padded(text, 16)
    }
    /// The 16-byte frame header in front of `body`: len u32, type u16, version u8,
    /// flags u8, seq u64.
    fn frame(msg_type: u16, seq: u64, body: Bytes) -> Bytes {
        let len = u32::try_from(body.0.len()).unwrap();
        let mut frame = Bytes::default().u32(len).u16(msg_type).u8(1).u8(0).u64(seq);
        frame.0.extend_from_slice(&body.0);
        frame
    }
}

fn b() -> Bytes {
    Bytes::default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

/// Splits one encoded frame, checking the header against what was asked for.
fn split(frame: &[u8], msg_type: u16, seq: u64) -> &[u8] {
    let Frame::Complete(header, body) = wire::next_frame(frame) else {
        panic!("a whole frame: {}", hex(frame))
    };
    let expected = Header {
        len: (frame.len() - HEADER_LEN) as u32,
        msg_type,
        version: VERSION,
        flags: 0,
        seq,
    };
    assert_eq!(header, expected);
    assert_eq!(HEADER_LEN + body.len(), frame.len(), "one frame, nothing after it");
    // A frame is incomplete until its last byte has arrived.
    for cut in 0..frame.len() {
        assert_eq!(wire::next_frame(&frame[..cut]), Frame::Incomplete, "prefix {cut}");
    }
    body
}

/// Checks the trailing-byte and truncation refusals of a body decoder.
fn check_refusals<T: std::fmt::Debug>(
    decode: impl Fn(&[u8]) -> Result<T, SessionReason>,
    body: &[u8],
    what: &str,
) {
    let mut longer = body.to_vec();
    longer.push(0);
    assert_eq!(decode(&longer).err(), Some(SessionReason::MalformedFrame), "trailing: {what}");
    for cut in 0..body.len() {
        assert_eq!(
            decode(&body[..cut]).err(),
            Some(SessionReason::MalformedFrame),
            "prefix {cut} of {what}"
        );
    }
}

/// A client message: its frame is `expected_body` behind the header, it decodes back,
/// and its body decoder refuses trailing and missing bytes.
fn client(message: ClientMsg, seq: u64, msg_type: u16, body_len: usize, expected_body: Bytes) {
    assert_eq!(expected_body.0.len(), body_len, "documented body size of {message:?}");
    let expected = Bytes::frame(msg_type, seq, expected_body);
    // encode_into appends: whatever is in the buffer already stays.
    let mut out = vec![0xAA];
    message.encode_into(seq, &mut out);
    assert_eq!(out[0], 0xAA);
    let frame = &out[1..];
    assert_eq!(hex(frame), hex(&expected.0), "frame of {message:?}");
    assert_eq!(message.msg_type(), msg_type);
    let body = split(frame, msg_type, seq);
    assert_eq!(ClientMsg::decode(msg_type, body), Ok(message), "round trip of {message:?}");
    check_refusals(|bytes| ClientMsg::decode(msg_type, bytes), body, &format!("{message:?}"));
}

/// The same for a server message.
fn server(message: ServerMsg, seq: u64, msg_type: u16, body_len: usize, expected_body: Bytes) {
    assert_eq!(expected_body.0.len(), body_len, "documented body size of {message:?}");
    let expected = Bytes::frame(msg_type, seq, expected_body);
    let mut out = vec![0x55];
    message.encode_into(seq, &mut out);
    assert_eq!(out[0], 0x55);
    let frame = &out[1..];
    assert_eq!(hex(frame), hex(&expected.0), "frame of {message:?}");
    assert_eq!(message.msg_type(), msg_type);
    let body = split(frame, msg_type, seq);
    assert_eq!(ServerMsg::decode(msg_type, body), Ok(message), "round trip of {message:?}");
    check_refusals(|bytes| ServerMsg::decode(msg_type, bytes), body, &format!("{message:?}"));
}

fn new_order() -> NewOrder {
    common::limit(2, InstrumentId(0), Side::Buy, 6_000_000, 100, 1)
}

#[test]
fn header_layout() {
    assert_eq!(HEADER_LEN, 16);
    assert_eq!(VERSION, 1);
    assert_eq!(BODY_LEN_MAX, 1024);
    assert_eq!((wire::USERNAME_LEN, wire::SECRET_LEN), (32, 64));
    let bytes = b().u32(0x0102_0304).u16(0x0A0B).u8(1).u8(0).u64(0x1122_3344_5566_7788).0;
    let header = Header::parse(&bytes).unwrap();
    let expected = Header {
        len: 0x0102_0304,
        msg_type: 0x0A0B,
        version: 1,
        flags: 0,
        seq: 0x1122_3344_5566_7788,
    };
    assert_eq!(header, expected);
    assert_eq!(Header::parse(&bytes[..15]), None);
}

#[test]
fn header_problems() {
    let mut frame = Vec::new();
    ClientMsg::Heartbeat.encode_into(9, &mut frame);
    // Version first: a wrong version is reported even when the length is also wrong.
    frame[6] = 2;
    frame[0..4].copy_from_slice(&(BODY_LEN_MAX + 1).to_le_bytes());
    assert!(matches!(wire::next_frame(&frame), Frame::Fatal(_, SessionReason::UnsupportedVersion)));
    frame[6] = VERSION;
    assert!(matches!(wire::next_frame(&frame), Frame::Fatal(_, SessionReason::FrameTooLong)));
    // Fatal as soon as the header is in, without waiting for the announced body.
    assert!(matches!(wire::next_frame(&frame[..16]), Frame::Fatal(..)));
    // The largest allowed length is fine: the frame just waits for its body.
    frame[0..4].copy_from_slice(&BODY_LEN_MAX.to_le_bytes());
    assert_eq!(wire::next_frame(&frame), Frame::Incomplete);
    // Flags are not the framer's business (the server refuses non-zero flags with 900).
    let mut flagged = Vec::new();
    ClientMsg::Heartbeat.encode_into(9, &mut flagged);
    flagged[7] = 1;
    assert!(matches!(wire::next_frame(&flagged), Frame::Complete(h, _) if h.flags == 1));
    // Two frames back to back: the first one is split off.
    let mut two = Vec::new();
    ClientMsg::Heartbeat.encode_into(1, &mut two);
    ClientMsg::Logout.encode_into(2, &mut two);
    assert!(matches!(wire::next_frame(&two), Frame::Complete(h, b) if h.seq == 1 && b.is_empty()));
}

#[test]
fn session_messages_from_the_client() {
    let login = Login::new("alice", "alice-secret", 5_000, false);
    let body = b().padded("alice", 32).padded("alice-secret", 64).u32(5_000).bool(false);
    client(ClientMsg::Login(login), 1, 1, 101, body);
    let login = Login::new("admin", "admin-secret", 100, true);
    let body = b().padded("admin", 32).padded("admin-secret", 64).u32(100).bool(true);
    client(ClientMsg::Login(login), 0xFFFF_FFFF_FFFF_FFFF, 1, 101, body);
    // Too long: truncated to the field.
    let long = "x".repeat(40);
    let login = Login::new(&long, &"s".repeat(70), 1_000, false);
    assert_eq!(login.username(), "x".repeat(32).as_bytes());
    assert_eq!(login.secret(), "s".repeat(64).as_bytes());
    client(ClientMsg::Heartbeat, 7, 2, 0, b());
    client(ClientMsg::Logout, 8, 3, 0, b());
}

#[test]
fn trading_messages() {
    let body =
        b().u32(2).u16(0).u64(1).tag(0).tag(0).tag(0).i64(6_000_000).i64(100).tag(1).tag(0).u8(0);
    client(ClientMsg::NewOrder(new_order()), 2, 10, 51, body);
    let order = NewOrder {
        side: Side::Sell,
        order_type: OrderType::Market,
        time_in_force: TimeInForce::Fok,
        stp_mode: StpMode::CancelBoth,
        stp_scope: StpScope::Owner,
        post_only: true,
        ..new_order()
    };
    let body =
        b().u32(2).u16(0).u64(1).tag(1).tag(1).tag(2).i64(6_000_000).i64(100).tag(3).tag(1).u8(1);
    client(ClientMsg::NewOrder(order), 3, 10, 51, body);

    let cancel = Cancel { account: AccountId(2), order: OrderRef::Id(OrderId(42)) };
    client(ClientMsg::Cancel(cancel), 4, 11, 16, b().u32(2).tag(0).u64(42));
    let cancel = Cancel { account: AccountId(2), order: OrderRef::Client(ClientOrderId(7)) };
    client(ClientMsg::Cancel(cancel), 5, 11, 16, b().u32(2).tag(1).u64(7));

    let amend = Amend {
        account: AccountId(2),
        order: OrderRef::Client(ClientOrderId(7)),
        price: Price(5_999_999),
        qty: Qty(50),
    };
    let body = b().u32(2).tag(1).u64(7).i64(5_999_999).i64(50);
    client(ClientMsg::Amend(amend), 6, 12, 32, body);

    let all = MassCancel { account: AccountId(2), instrument: None };
    client(ClientMsg::MassCancel(all), 7, 13, 5, b().u32(2).u8(0));
    let one = MassCancel { account: AccountId(2), instrument: Some(InstrumentId(1)) };
    client(ClientMsg::MassCancel(one), 8, 13, 7, b().u32(2).u8(1).u16(1));
}

#[test]
fn admin_messages() {
    let create = CreateAccount { account: AccountId(20), owner: UserId(2) };
    client(ClientMsg::CreateAccount(create), 1, 20, 8, b().u32(20).u32(2));
    let deposit = ExternalPayment {
        account: AccountId(2),
        asset: AssetId(0),
        amount: 1_000_000,
        client_payment_id: ClientPaymentId(77),
    };
    let body = b().u32(2).u16(0).i64(1_000_000).u64(77);
    client(ClientMsg::Deposit(deposit), 2, 21, 22, body);
    let withdrawal = ExternalPayment {
        account: AccountId(2),
        asset: AssetId(1),
        amount: 5,
        client_payment_id: ClientPaymentId(u64::MAX),
    };
    let body = b().u32(2).u16(1).i64(5).u64(u64::MAX);
    client(ClientMsg::Withdraw(withdrawal), 3, 22, 22, body);
    let status = SetAccountStatus { account: AccountId(2), status: AccountStatus::Frozen };
    client(ClientMsg::SetAccountStatus(status), 4, 23, 8, b().u32(2).tag(1));
    let status = SetInstrumentStatus {
        instrument: InstrumentId(1),
        status: InstrumentStatus::Halted,
        cancel_resting: true,
    };
    client(ClientMsg::SetInstrumentStatus(status), 5, 24, 7, b().u16(1).tag(1).u8(1));
    client(ClientMsg::TakeSnapshot, 6, 25, 0, b());

    // Payment limits: each option is one byte (none) or a 1 and eight bytes.
    let limits = SetPaymentLimits { asset: AssetId(0), transfer_max: None, velocity_24h: None };
    client(ClientMsg::SetPaymentLimits(limits), 7, 26, 4, b().u16(0).u8(0).u8(0));
    let limits = SetPaymentLimits {
        asset: AssetId(2),
        transfer_max: Some(250_000_000_000),
        velocity_24h: None,
    };
    let body = b().u16(2).u8(1).i64(250_000_000_000).u8(0);
    client(ClientMsg::SetPaymentLimits(limits), 8, 26, 12, body);
    let limits =
        SetPaymentLimits { asset: AssetId(0), transfer_max: Some(1), velocity_24h: Some(i64::MAX) };
    let body = b().u16(0).u8(1).i64(1).u8(1).i64(i64::MAX);
    client(ClientMsg::SetPaymentLimits(limits), 9, 26, 20, body);

    let limits = SetAccountLimits {
        account: AccountId(4),
        asset: AssetId(0),
        credit_limit: 5_000_000_000,
        velocity_24h: None,
    };
    let body = b().u32(4).u16(0).i64(5_000_000_000).u8(0);
    client(ClientMsg::SetAccountLimits(limits), 10, 27, 15, body);
    let limits = SetAccountLimits { velocity_24h: Some(20_000_000_000), ..limits };
    let body = b().u32(4).u16(0).i64(5_000_000_000).u8(1).i64(20_000_000_000);
    client(ClientMsg::SetAccountLimits(limits), 11, 27, 23, body);

    let blocked = SetAccountBlocked { account: AccountId(3), blocked: true };
    client(ClientMsg::SetAccountBlocked(blocked), 12, 28, 5, b().u32(3).bool(true));
    let unblocked = SetAccountBlocked { account: AccountId(3), blocked: false };
    client(ClientMsg::SetAccountBlocked(unblocked), 13, 28, 5, b().u32(3).bool(false));
}

#[test]
fn payment_messages() {
    // Transfer (50): the engine's `Transfer`.
    let transfer = Transfer {
        debit: AccountId(2),
        credit: AccountId(3),
        asset: AssetId(0),
        amount: 100_000_000,
        client_payment_id: ClientPaymentId(1),
    };
    let body = b().u32(2).u32(3).u16(0).i64(100_000_000).u64(1);
    client(ClientMsg::Transfer(transfer), 1, 50, 26, body);
    // Authorize (51): the engine's `Authorize`, a transfer's fields then the timeout.
    let authorize = Authorize {
        debit: AccountId(2),
        credit: AccountId(4),
        asset: AssetId(1),
        amount: 5,
        client_payment_id: ClientPaymentId(0x0102_0304_0506_0708),
        timeout_s: 900,
    };
    let body = b().u32(2).u32(4).u16(1).i64(5).u64(0x0102_0304_0506_0708).u32(900);
    client(ClientMsg::Authorize(authorize), 2, 51, 30, body);
    let forever = Authorize { timeout_s: 0, ..authorize };
    let body = b().u32(2).u32(4).u16(1).i64(5).u64(0x0102_0304_0506_0708).u32(0);
    client(ClientMsg::Authorize(forever), 3, 51, 30, body);
    // Capture (52): account, payment by engine id (tag 0) or client id (tag 1), amount.
    let capture = Capture {
        account: AccountId(4),
        payment: PaymentRef::Id(PaymentId(35)),
        amount: 600_000_000,
    };
    let body = b().u32(4).tag(0).u64(35).i64(600_000_000);
    client(ClientMsg::Capture(capture), 4, 52, 24, body);
    let capture = Capture {
        account: AccountId(2),
        payment: PaymentRef::Client(ClientPaymentId(2)),
        amount: 0,
    };
    client(ClientMsg::Capture(capture), 5, 52, 24, b().u32(2).tag(1).u64(2).i64(0));
    // Void (53): account and payment.
    let void = Void { account: AccountId(2), payment: PaymentRef::Client(ClientPaymentId(3)) };
    client(ClientMsg::Void(void), 6, 53, 16, b().u32(2).tag(1).u64(3));
    let void = Void { account: AccountId(3), payment: PaymentRef::Id(PaymentId(u64::MAX)) };
    client(ClientMsg::Void(void), 7, 53, 16, b().u32(3).tag(0).u64(u64::MAX));

    // Payment queries (30): `Payment` (tag 5) and `Payments` (tag 6).
    let query =
        Query::Payment { account: AccountId(2), payment: PaymentRef::Client(ClientPaymentId(2)) };
    client(ClientMsg::Query(query), 8, 30, 20, b().tag(5).u32(2).tag(1).u64(2));
    let query = Query::Payments { account: AccountId(2), limit: 1_000 };
    client(ClientMsg::Query(query), 9, 30, 10, b().tag(6).u32(2).u16(1_000));
}

/// One message of every client type, with the client id it carries and the lowest
/// role allowed to send it (`None`: anyone).
fn client_id_samples() -> Vec<(ClientMsg, u64, Option<Role>)> {
    let by_client = |id| OrderRef::Client(ClientOrderId(id));
    let pay_client = |id| PaymentRef::Client(ClientPaymentId(id));
    let external = |id| ExternalPayment {
        account: AccountId(2),
        asset: AssetId(0),
        amount: 1,
        client_payment_id: ClientPaymentId(id),
    };
    let transfer = Transfer {
        debit: AccountId(2),
        credit: AccountId(3),
        asset: AssetId(0),
        amount: 1,
        client_payment_id: ClientPaymentId(51),
    };
    let authorize = Authorize {
        debit: AccountId(2),
        credit: AccountId(3),
        asset: AssetId(0),
        amount: 1,
        client_payment_id: ClientPaymentId(52),
        timeout_s: 0,
    };
    let (admin, operator) = (Some(Role::Admin), Some(Role::Operator));
    vec![
        (ClientMsg::Login(Login::new("alice", "alice-secret", 5_000, false)), 0, None),
        (ClientMsg::Heartbeat, 0, None),
        (ClientMsg::Logout, 0, None),
        (ClientMsg::NewOrder(new_order()), 1, None),
        (ClientMsg::Cancel(Cancel { account: AccountId(2), order: by_client(11) }), 11, None),
        (
            ClientMsg::Cancel(Cancel { account: AccountId(2), order: OrderRef::Id(OrderId(9)) }),
            0,
            None,
        ),
        (
            ClientMsg::Amend(Amend {
                account: AccountId(2),
                order: by_client(12),
                price: Price(1),
                qty: Qty(1),
            }),
            12,
            None,
        ),
        (ClientMsg::MassCancel(MassCancel { account: AccountId(2), instrument: None }), 0, None),
        (
            ClientMsg::CreateAccount(CreateAccount { account: AccountId(9), owner: UserId(2) }),
            0,
            admin,
        ),
        (ClientMsg::Deposit(external(21)), 21, operator),
        (ClientMsg::Withdraw(external(22)), 22, operator),
        (
            ClientMsg::SetAccountStatus(SetAccountStatus {
                account: AccountId(2),
                status: AccountStatus::Active,
            }),
            0,
            admin,
        ),
        (
            ClientMsg::SetInstrumentStatus(SetInstrumentStatus {
                instrument: InstrumentId(0),
                status: InstrumentStatus::Trading,
                cancel_resting: false,
            }),
            0,
            admin,
        ),
        (ClientMsg::TakeSnapshot, 0, admin),
        (
            ClientMsg::SetPaymentLimits(SetPaymentLimits {
                asset: AssetId(0),
                transfer_max: None,
                velocity_24h: None,
            }),
            0,
            admin,
        ),
        (
            ClientMsg::SetAccountLimits(SetAccountLimits {
                account: AccountId(2),
                asset: AssetId(0),
                credit_limit: 0,
                velocity_24h: None,
            }),
            0,
            admin,
        ),
        (
            ClientMsg::SetAccountBlocked(SetAccountBlocked {
                account: AccountId(2),
                blocked: true,
            }),
            0,
            admin,
        ),
        // A query names no client id the gateway reports, even one by client id.
        (ClientMsg::Query(Query::Order { account: AccountId(2), order: by_client(7) }), 0, None),
        (ClientMsg::Subscribe(InstrumentId(0)), 0, None),
        (ClientMsg::Unsubscribe(InstrumentId(0)), 0, None),
        (ClientMsg::Transfer(transfer), 51, None),
        (ClientMsg::Authorize(authorize), 52, None),
        (
            ClientMsg::Capture(Capture {
                account: AccountId(2),
                payment: pay_client(53),
                amount: 0,
            }),
            53,
            None,
        ),
        (
            ClientMsg::Capture(Capture {
                account: AccountId(2),
                payment: PaymentRef::Id(PaymentId(8)),
                amount: 0,
            }),
            0,
            None,
        ),
        (ClientMsg::Void(Void { account: AccountId(2), payment: pay_client(54) }), 54, None),
        (
            ClientMsg::Void(Void { account: AccountId(2), payment: PaymentRef::Id(PaymentId(8)) }),
            0,
            None,
        ),
    ]
}

/// `SessionReject.ref_client_id` is the client order id or client payment id a message
/// names (0 when it names none, or names by engine id); admin messages need the admin
/// role, deposits and withdrawals the admin or payment-operator role.
#[test]
fn client_ids_and_permissions() {
    let samples = client_id_samples();
    let mut types: Vec<u16> = samples.iter().map(|(m, _, _)| m.msg_type()).collect();
    types.sort_unstable();
    types.dedup();
    assert_eq!(types.len(), 23, "every client message type: {types:?}");
    for (message, client_id, needs) in samples {
        assert_eq!(message.client_id(), client_id, "{message:?}");
        let allowed: Vec<Role> = [Role::Trader, Role::Operator, Role::Admin]
            .into_iter()
            .filter(|&role| message.permitted(role))
            .collect();
        let expected = match needs {
            None => vec![Role::Trader, Role::Operator, Role::Admin],
            Some(Role::Operator) => vec![Role::Operator, Role::Admin],
            Some(_) => vec![Role::Admin],
        };
        assert_eq!(allowed, expected, "{message:?}");
    }
}

#[test]
fn queries_and_subscriptions() {
    let query = |q| ClientMsg::Query(q);
    client(query(Query::Balances { account: AccountId(2) }), 1, 30, 8, b().tag(0).u32(2));
    let order = Query::Order { account: AccountId(2), order: OrderRef::Client(ClientOrderId(7)) };
    client(query(order), 2, 30, 20, b().tag(1).u32(2).tag(1).u64(7));
    client(query(Query::OpenOrders { account: AccountId(2) }), 3, 30, 8, b().tag(2).u32(2));
    let depth = Query::Depth { instrument: InstrumentId(0), levels: 10 };
    client(query(depth), 4, 30, 8, b().tag(3).u16(0).u16(10));
    client(query(Query::Reference), 5, 30, 4, b().tag(4));
    client(ClientMsg::Subscribe(InstrumentId(1)), 6, 40, 2, b().u16(1));
    client(ClientMsg::Unsubscribe(InstrumentId(1)), 7, 41, 2, b().u16(1));
}

#[test]
fn session_messages_from_the_server() {
    let accepted = LoginAccepted {
        session_id: 1,
        user: UserId(2),
        admin: false,
        heartbeat_ms: 5_000,
        next_seq: 2,
    };
    let body = b().u32(1).u32(2).bool(false).u32(5_000).u64(2);
    server(ServerMsg::LoginAccepted(accepted), 1, 101, 21, body);
    let accepted = LoginAccepted { admin: true, ..accepted };
    let body = b().u32(1).u32(2).bool(true).u32(5_000).u64(2);
    server(ServerMsg::LoginAccepted(accepted), 1, 101, 21, body);
    server(ServerMsg::LoginRejected(906), 1, 102, 4, b().u32(906));
    server(ServerMsg::Heartbeat, 9, 2, 0, b());
    server(ServerMsg::Logout(0), 10, 104, 4, b().u32(0));
    server(ServerMsg::Logout(912), 11, 104, 4, b().u32(912));
    let reject = SessionReject { reason: 101, ref_type: 21, ref_request_id: 3, ref_client_id: 9 };
    server(ServerMsg::SessionReject(reject), 4, 105, 22, b().u32(101).u16(21).u64(3).u64(9));
    let reject = SessionReject { reason: 908, ref_type: 10, ref_request_id: 77, ref_client_id: 12 };
    server(ServerMsg::SessionReject(reject), 5, 105, 22, b().u32(908).u16(10).u64(77).u64(12));
    let reject = SessionReject { reason: 904, ref_type: 50, ref_request_id: 1, ref_client_id: 0 };
    server(ServerMsg::SessionReject(reject), 5, 105, 22, b().u32(904).u16(50).u64(1).u64(0));
    let taken = SnapshotTaken { seq: 51, state_hash: 0x0123_4567_89AB_CDEF };
    server(ServerMsg::SnapshotTaken(taken), 6, 111, 16, b().u64(51).u64(0x0123_4567_89AB_CDEF));
}

#[test]
fn execution_reports() {
    let report = |seq, request_id, event| {
        ServerMsg::ExecReport(ExecReport { journal_seq: seq, request_id, event })
    };
    let accepted = OrderAccepted {
        order_id: OrderId(1),
        account: AccountId(2),
        instrument: InstrumentId(0),
        client_order_id: ClientOrderId(1),
        side: Side::Buy,
        price: Price(6_000_000),
        qty: Qty(100),
        hold: 600_300_000,
    };
    let body = b().u64(69).u64(2).tag(1).u64(1).u32(2).u16(0).u64(1).tag(0).i64(6_000_000).i64(100);
    let body = body.i64(600_300_000);
    server(report(69, 2, Event::Accepted(accepted)), 2, 110, 70, body);

    let rejected = Rejected {
        kind: CommandKind::NewOrder,
        account: AccountId(2),
        client_id: 1,
        reason: RejectReason::InsufficientBalance,
    };
    let body = b().u64(70).u64(5).tag(0).tag(8).u32(2).u64(1).tag(502);
    server(report(70, 5, Event::Rejected(rejected)), 3, 110, 40, body);
    // A payment's: kind 13 Transfer, the client payment id, code 1007.
    let rejected = Rejected {
        kind: CommandKind::Transfer,
        account: AccountId(2),
        client_id: 1 << 63,
        reason: RejectReason::PaymentIdConflict,
    };
    let body = b().u64(70).u64(6).tag(0).tag(13).u32(2).u64(1 << 63).tag(1007);
    server(report(70, 6, Event::Rejected(rejected)), 3, 110, 40, body);

    let balance = BalanceChanged {
        account: AccountId(2),
        asset: AssetId(0),
        available: 7,
        held: -1,
        pending: 3,
    };
    let body = b().u64(69).u64(0).tag(5).u32(2).u16(0).i64(7).i64(-1).i64(3);
    server(report(69, 0, Event::Balance(balance)), 4, 110, 50, body);
    let body = b().u64(69).u64(4).tag(16).u32(2).u16(0).i64(7).i64(-1).i64(3);
    server(report(69, 4, Event::BalanceInfo(balance)), 4, 110, 50, body);

    let fill = Fill {
        instrument: InstrumentId(0),
        trade_id: TradeId(3),
        price: Price(6_000_000),
        qty: Qty(40),
        taker_side: Side::Sell,
        maker_order: OrderId(1),
        taker_order: OrderId(2),
        maker_account: AccountId(2),
        taker_account: AccountId(3),
        maker_client_id: ClientOrderId(1),
        taker_client_id: ClientOrderId(9),
        maker_fee: 24_000,
        taker_fee: 120_000,
        maker_remaining: Qty(60),
        taker_remaining: Qty(0),
    };
    let body = b()
        .u64(71)
        .u64(0)
        .tag(2)
        .u16(0)
        .u64(3)
        .i64(6_000_000)
        .i64(40)
        .tag(1)
        .u64(1)
        .u64(2)
        .u32(2)
        .u32(3)
        .u64(1)
        .u64(9)
        .i64(24_000)
        .i64(120_000)
        .i64(60)
        .i64(0);
    server(report(71, 0, Event::Fill(fill)), 5, 110, 122, body);

    let body = b().u64(71).u64(6).tag(19).u32(0);
    server(report(71, 6, Event::QueryDone { items: 0 }), 6, 110, 24, body);

    // Payments: the event (tag 12) is the action then the 76-byte `PaymentInfo`; the
    // query answer (tag 22) the `PaymentInfo` alone.
    let info = PaymentInfo {
        payment_id: PaymentId(35),
        client_payment_id: ClientPaymentId(2),
        kind: PaymentKind::Authorization,
        debit: AccountId(2),
        credit: AccountId(4),
        asset: AssetId(0),
        amount: 1_000_000_000,
        captured: 600_000_000,
        status: PaymentStatus::Completed,
        created_ns: 1_700_000_000_000_000_000,
        deadline_ns: 1_700_000_900_000_000_000,
        resolved_ns: 1_700_000_060_000_000_000,
    };
    let info_bytes = |bytes: Bytes| {
        bytes
            .u64(35)
            .u64(2)
            .tag(1)
            .u32(2)
            .u32(4)
            .u16(0)
            .i64(1_000_000_000)
            .i64(600_000_000)
            .tag(1)
            .u64(1_700_000_000_000_000_000)
            .u64(1_700_000_900_000_000_000)
            .u64(1_700_000_060_000_000_000)
    };
    let captured = Event::Payment { action: PaymentAction::Captured, info };
    let body = info_bytes(b().u64(72).u64(8).tag(12).tag(1));
    server(report(72, 8, captured), 9, 110, 98, body);
    let deposit = PaymentInfo {
        payment_id: PaymentId(1),
        client_payment_id: ClientPaymentId((1 << 63) + 1),
        kind: PaymentKind::Deposit,
        debit: EXTERNAL_ACCOUNT,
        credit: AccountId(2),
        captured: 1_000_000_000,
        deadline_ns: 0,
        resolved_ns: 1_700_000_000_000_000_000,
        ..info
    };
    let body = b()
        .u64(72)
        .u64(0)
        .tag(12)
        .tag(4)
        .u64(1)
        .u64((1 << 63) + 1)
        .tag(2)
        .u32(u32::MAX)
        .u32(2)
        .u16(0)
        .i64(1_000_000_000)
        .i64(1_000_000_000)
        .tag(1)
        .u64(1_700_000_000_000_000_000)
        .u64(0)
        .u64(1_700_000_000_000_000_000);
    let duplicate = Event::Payment { action: PaymentAction::Duplicate, info: deposit };
    server(report(72, 0, duplicate), 10, 110, 98, body);
    let body = info_bytes(b().u64(72).u64(9).tag(22));
    server(report(72, 9, Event::PaymentInfo(info)), 11, 110, 94, body);

    // Payment-limit events: options of one or nine bytes.
    let set = Event::PaymentLimitsSet { asset: AssetId(0), transfer_max: None, velocity_24h: None };
    server(report(73, 1, set), 12, 110, 24, b().u64(73).u64(1).tag(23).u16(0).u8(0).u8(0));
    let set = Event::PaymentLimitsSet {
        asset: AssetId(0),
        transfer_max: Some(250_000_000_000),
        velocity_24h: Some(1_000_000_000_000),
    };
    let body =
        b().u64(73).u64(1).tag(23).u16(0).u8(1).i64(250_000_000_000).u8(1).i64(1_000_000_000_000);
    server(report(73, 1, set), 13, 110, 40, body);
    let set = Event::AccountLimitsSet {
        account: AccountId(4),
        asset: AssetId(0),
        credit_limit: 5_000_000_000,
        velocity_24h: None,
    };
    let body = b().u64(74).u64(0).tag(24).u32(4).u16(0).i64(5_000_000_000).u8(0);
    server(report(74, 0, set), 14, 110, 35, body);
    let set = Event::AccountLimitsSet {
        account: AccountId(4),
        asset: AssetId(0),
        credit_limit: 0,
        velocity_24h: Some(7),
    };
    let body = b().u64(74).u64(0).tag(24).u32(4).u16(0).i64(0).u8(1).i64(7);
    server(report(74, 0, set), 15, 110, 43, body);
    let blocked = Event::AccountBlocked { account: AccountId(3), blocked: true };
    server(report(75, 0, blocked), 16, 110, 25, b().u64(75).u64(0).tag(25).u32(3).bool(true));
    let ticked = Event::Ticked { time_ns: 1_700_000_900_000_000_000 };
    let body = b().u64(76).u64(0).tag(26).u64(1_700_000_900_000_000_000);
    server(report(76, 0, ticked), 17, 110, 28, body);

    let usd = Event::AssetInfo { asset: AssetId(0), symbol: Symbol::new("USD").unwrap(), scale: 6 };
    let body = b().u64(71).u64(7).tag(20).u16(0).symbol("USD").u8(6);
    server(report(71, 7, usd), 7, 110, 39, body);

    let info =
        Event::InstrumentInfo { spec: common::btc_usd_spec(), status: InstrumentStatus::Trading };
    let body = b()
        .u64(71)
        .u64(7)
        .tag(21)
        .u16(0)
        .symbol("BTC-USD")
        .u16(1)
        .u16(0)
        .i64(1)
        .u8(2)
        .i64(1)
        .u8(4)
        .i64(6_000_000)
        .u32(1_000)
        .i64(1_000_000)
        .i64(10_000_000_000_000)
        .i32(1)
        .i32(5)
        .u32(1)
        .tag(0);
    server(report(71, 7, info), 8, 110, 104, body);
}

#[test]
fn market_data() {
    let level = MdSnapshotLevel {
        instrument: InstrumentId(0),
        side: Side::Sell,
        price: Price(6_000_100),
        qty: Qty(250),
        orders: 3,
    };
    let body = b().u16(0).tag(1).i64(6_000_100).i64(250).u32(3);
    server(ServerMsg::MdSnapshotLevel(level), 3, 120, 26, body);
    let end = MdSnapshotEnd { instrument: InstrumentId(0), md_seq: 17, levels: 1 };
    server(ServerMsg::MdSnapshotEnd(end), 4, 121, 14, b().u16(0).u64(17).u32(1));
    let trade = MdTrade {
        instrument: InstrumentId(0),
        md_seq: 18,
        trade_id: TradeId(3),
        price: Price(6_000_100),
        qty: Qty(50),
        taker_side: Side::Buy,
    };
    let body = b().u16(0).u64(18).u64(3).i64(6_000_100).i64(50).tag(0);
    server(ServerMsg::MdTrade(trade), 5, 122, 38, body);
    let level = MdLevel {
        instrument: InstrumentId(0),
        md_seq: 19,
        side: Side::Sell,
        price: Price(6_000_100),
        qty: Qty(0),
        orders: 0,
    };
    let body = b().u16(0).u64(19).tag(1).i64(6_000_100).i64(0).u32(0);
    server(ServerMsg::MdLevel(level), 6, 123, 34, body);
    server(ServerMsg::MdUnsubscribed(InstrumentId(0)), 7, 124, 2, b().u16(0));
}

#[test]
fn message_type_numbers() {
    let client_types = [
        (msg::LOGIN, 1),
        (msg::HEARTBEAT, 2),
        (msg::LOGOUT, 3),
        (msg::NEW_ORDER, 10),
        (msg::CANCEL, 11),
        (msg::AMEND, 12),
        (msg::MASS_CANCEL, 13),
        (msg::CREATE_ACCOUNT, 20),
        (msg::DEPOSIT, 21),
        (msg::WITHDRAW, 22),
        (msg::SET_ACCOUNT_STATUS, 23),
        (msg::SET_INSTRUMENT_STATUS, 24),
        (msg::TAKE_SNAPSHOT, 25),
        (msg::SET_PAYMENT_LIMITS, 26),
        (msg::SET_ACCOUNT_LIMITS, 27),
        (msg::SET_ACCOUNT_BLOCKED, 28),
        (msg::QUERY, 30),
        (msg::SUBSCRIBE, 40),
        (msg::UNSUBSCRIBE, 41),
        (msg::TRANSFER, 50),
        (msg::AUTHORIZE, 51),
        (msg::CAPTURE, 52),
        (msg::VOID, 53),
    ];
    let server_types = [
        (msg::LOGIN_ACCEPTED, 101),
        (msg::LOGIN_REJECTED, 102),
        (msg::LOGOUT_NOTICE, 104),
        (msg::SESSION_REJECT, 105),
        (msg::EXEC_REPORT, 110),
        (msg::SNAPSHOT_TAKEN, 111),
        (msg::MD_SNAPSHOT_LEVEL, 120),
        (msg::MD_SNAPSHOT_END, 121),
        (msg::MD_TRADE, 122),
        (msg::MD_LEVEL, 123),
        (msg::MD_UNSUBSCRIBED, 124),
    ];
    for (constant, number) in client_types.into_iter().chain(server_types) {
        assert_eq!(constant, number);
    }
    // Each direction refuses the other's types (Heartbeat, 2, is both).
    for (server_type, _) in server_types {
        assert_eq!(ClientMsg::decode(server_type, &[]), Err(SessionReason::UnknownMessageType));
    }
    for (client_type, _) in client_types {
        let expected = if client_type == msg::HEARTBEAT {
            Ok(ServerMsg::Heartbeat)
        } else {
            Err(SessionReason::UnknownMessageType)
        };
        assert_eq!(ServerMsg::decode(client_type, &[]), expected);
    }
    for unknown in [0, 4, 14, 19, 29, 31, 42, 49, 54, 100, 103, 106, 125, u16::MAX] {
        assert_eq!(ClientMsg::decode(unknown, &[]), Err(SessionReason::UnknownMessageType));
        assert_eq!(ServerMsg::decode(unknown, &[]), Err(SessionReason::UnknownMessageType));
    }
}

#[test]
fn invalid_values_are_malformed() {
    let malformed = Err(SessionReason::MalformedFrame);
    let server_malformed = Err(SessionReason::MalformedFrame);
    // A bool other than 0 / 1 (cancel_on_disconnect is the last byte of a login).
    let mut frame = Vec::new();
    ClientMsg::Login(Login::new("alice", "alice-secret", 5_000, true)).encode_into(1, &mut frame);
    *frame.last_mut().unwrap() = 2;
    assert_eq!(ClientMsg::decode(msg::LOGIN, &frame[HEADER_LEN..]), malformed);
    // An enum tag that does not exist (side 2).
    let mut frame = Vec::new();
    ClientMsg::NewOrder(new_order()).encode_into(1, &mut frame);
    frame[HEADER_LEN + 14] = 2;
    assert_eq!(ClientMsg::decode(msg::NEW_ORDER, &frame[HEADER_LEN..]), malformed);
    // A query tag that does not exist.
    assert_eq!(ClientMsg::decode(msg::QUERY, &b().tag(5).0), malformed);
    // An option tag other than 0 / 1.
    assert_eq!(ClientMsg::decode(msg::MASS_CANCEL, &b().u32(2).u8(2).u16(1).0), malformed);
    // An event with an unknown reject code.
    let body = b().u64(1).u64(1).tag(0).tag(8).u32(2).u64(1).tag(503);
    assert_eq!(ServerMsg::decode(msg::EXEC_REPORT, &body.0), server_malformed);
    // A payment reference tag that does not exist (Capture: after the u32 account).
    let capture = b().u32(2).tag(2).u64(1).i64(0);
    assert_eq!(ClientMsg::decode(msg::CAPTURE, &capture.0), malformed);
    assert_eq!(ClientMsg::decode(msg::VOID, &b().u32(2).tag(7).u64(1).0), malformed);
    // A bool of 2 in SetAccountBlocked; option tags of 2 in the limit messages.
    assert_eq!(ClientMsg::decode(msg::SET_ACCOUNT_BLOCKED, &b().u32(2).u8(2).0), malformed);
    let limits = b().u16(0).u8(2).u8(0);
    assert_eq!(ClientMsg::decode(msg::SET_PAYMENT_LIMITS, &limits.0), malformed);
    let limits = b().u32(2).u16(0).i64(0).u8(2);
    assert_eq!(ClientMsg::decode(msg::SET_ACCOUNT_LIMITS, &limits.0), malformed);
    // A deposit in the layout before payments (no client payment id) is too short.
    assert_eq!(ClientMsg::decode(msg::DEPOSIT, &b().u32(2).u16(0).i64(1).0), malformed);
    // A payment event with an unknown action, kind or status.
    let event = |action: u32, kind: u32, status: u32| {
        b().u64(1)
            .u64(1)
            .tag(12)
            .tag(action)
            .u64(1)
            .u64(1)
            .tag(kind)
            .u32(2)
            .u32(3)
            .u16(0)
            .i64(1)
            .i64(1)
            .tag(status)
            .u64(1)
            .u64(0)
            .u64(1)
            .0
    };
    assert!(ServerMsg::decode(msg::EXEC_REPORT, &event(0, 0, 1)).is_ok());
    assert_eq!(ServerMsg::decode(msg::EXEC_REPORT, &event(5, 0, 1)), server_malformed);
    assert_eq!(ServerMsg::decode(msg::EXEC_REPORT, &event(0, 4, 1)), server_malformed);
    assert_eq!(ServerMsg::decode(msg::EXEC_REPORT, &event(0, 0, 4)), server_malformed);
    // An event tag past the last one (26 Ticked).
    let body = b().u64(1).u64(1).tag(27).u64(0);
    assert_eq!(ServerMsg::decode(msg::EXEC_REPORT, &body.0), server_malformed);
    // Empty bodies for messages that have one.
    assert_eq!(ClientMsg::decode(msg::NEW_ORDER, &[]), malformed);
    assert_eq!(ServerMsg::decode(msg::EXEC_REPORT, &[]), server_malformed);
}

#[test]
fn session_reason_codes() {
    let expected: [(SessionReason, u32); 20] = [
        (SessionReason::ClientLogout, 0),
        (SessionReason::NotAdmin, 101),
        (SessionReason::MalformedFrame, 900),
        (SessionReason::FrameTooLong, 901),
        (SessionReason::UnknownMessageType, 902),
        (SessionReason::UnsupportedVersion, 903),
        (SessionReason::NotLoggedIn, 904),
        (SessionReason::AlreadyLoggedIn, 905),
        (SessionReason::LoginFailed, 906),
        (SessionReason::InvalidHeartbeat, 907),
        (SessionReason::RateLimited, 908),
        (SessionReason::TooManyConnections, 909),
        (SessionReason::SlowConsumer, 911),
        (SessionReason::HeartbeatTimeout, 912),
        (SessionReason::LoginTimeout, 913),
        (SessionReason::TooManyErrors, 914),
        (SessionReason::ServerShutdown, 915),
        (SessionReason::JournalFailure, 916),
        (SessionReason::SnapshotFailed, 917),
        (SessionReason::LoginThrottled, 918),
    ];
    assert_eq!(SessionReason::ALL.len(), expected.len());
    for (reason, code) in expected {
        assert_eq!(reason.code(), code);
        assert_eq!(SessionReason::from_code(code), Some(reason));
    }
    // 101 is the engine's NotAdmin, with the same meaning.
    assert_eq!(RejectReason::NotAdmin.code(), 101);
    assert_eq!(wire::reason_name(912), "HeartbeatTimeout (912)");
    assert_eq!(wire::reason_name(502), "InsufficientBalance (502)");
    assert_eq!(wire::reason_name(1007), "PaymentIdConflict (1007)");
    assert_eq!(wire::reason_name(1013), "unknown reason (1013)");
}
