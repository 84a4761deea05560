//! Bad input over real TCP connections (server on 127.0.0.1, ephemeral port, temporary
//! data directory): truncated and split frames; fatal headers (body longer than
//! `BODY_LEN_MAX`: Logout 901; wrong version: Logout 903; both close the connection);
//! frames refused with a session reject while the session goes on (unknown type 902,
//! non-zero flags 900, a body of the wrong length, a bad enum tag or a bool byte of 2
//! inside a NewOrder, and the like in payment messages: 900); seeded garbage; the error
//! budget (Logout 914); and order and payment values that are zero, negative or
//! overflowing, and payment ids that are 0 or unknown (engine rejects, balances unchanged,
//! nothing recorded).
//!
//! In every test a well-behaved session (bob) places an order after each bad input and
//! gets its answer, and at the end the server stops cleanly and a replay of the data
//! directory (from the stop snapshot, and from the journal alone) reproduces the final
//! state hash.

mod common;

use common::{
    BTC, BTC_0, BTC_USD, ETH_0, Incoming, Raw, USD, USD_0, applied_seq, balances, body_of, command,
    external, limit, open_orders, raw_frame,
};
use fincore_engine::{
    AccountId, Amend, Authorize, ClientPaymentId, CommandKind, Event, OrderRef, OrderType,
    PaymentId, PaymentRef, Price, Qty, Query, RejectReason, Side, TimeInForce, Transfer,
};
use fincore_gateway::client::{Client, Received};
use fincore_gateway::config::ServerConfig;
use fincore_gateway::server::ServerHandle;
use fincore_gateway::wire::{
    self, BODY_LEN_MAX, Cancel, Capture, ClientMsg, MassCancel, ServerMsg, SessionReason,
    SessionReject, SetAccountBlocked, SetAccountLimits, SetPaymentLimits, VERSION, Void, msg,
};
use fincore_gateway::{ReplayBounds, replay};
use std::net::SocketAddr;

const ALICE: AccountId = AccountId(2);
const BOB: AccountId = AccountId(3);

/// A server, and bob, who behaves.
struct Harness {
    dir: tempfile::TempDir,
    server: ServerHandle,
    addr: SocketAddr,
    bob: Client,
    bob_orders: u64,
}

impl Harness {
    fn new(edit: impl FnOnce(&mut ServerConfig)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut config = common::config(dir.path());
        edit(&mut config);
        let server = common::start(&config);
        let addr = server.local_addr();
        let bob = common::login(addr, "bob");
        Harness { dir, server, addr, bob, bob_orders: 0 }
    }

    /// Bob places one more small resting ask and gets exactly its two reports.
    fn bob_works(&mut self) {
        self.bob_orders += 1;
        let coid = self.bob_orders;
        let order = limit(3, BTC_USD, Side::Sell, 6_500_000 + coid as i64, 1, coid);
        let replies = command(&mut self.bob, order.into());
        let answered = matches!(replies[..], [Event::Accepted(a), Event::Balance(_)]
            if a.client_order_id.0 == coid);
        assert!(answered, "bob's order {coid}: {replies:?}");
    }

    /// Bob's orders are all there; the server stops cleanly; replay agrees with it.
    fn finish(mut self) {
        assert_eq!(open_orders(&mut self.bob, BOB).len() as u64, self.bob_orders);
        let held = self.bob_orders as i64 * 10_000;
        assert_eq!(balances(&mut self.bob, BOB)[1], (BTC_0 - held, held));
        let exit = self.server.stop().expect("the server stops cleanly");
        for no_snapshot in [false, true] {
            let bounds = ReplayBounds { no_snapshot, ..Default::default() };
            let replayed = replay(self.dir.path(), bounds).unwrap();
            assert_eq!(replayed.engine.last_seq(), exit.engine.seq);
            assert_eq!(replayed.engine.state_hash(), exit.engine.state_hash, "{bounds:?}");
        }
    }
}

fn session_reject(reason: SessionReason, ref_type: u16, request: u64) -> ServerMsg {
    ServerMsg::SessionReject(SessionReject {
        reason: reason.code(),
        ref_type,
        ref_request_id: request,
        ref_client_id: 0,
    })
}

fn frame(msg_type: u16, seq: u64, body: &[u8]) -> Vec<u8> {
    raw_frame(msg_type, VERSION, 0, seq, body)
}

/// The offset of the only byte in which two encodings differ.
fn differing_byte(a: &[u8], b: &[u8]) -> usize {
    assert_eq!(a.len(), b.len());
    let diffs: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    assert_eq!(diffs.len(), 1, "exactly one byte differs: {diffs:?}");
    diffs[0]
}

/// A query on `raw` is still answered (the session goes on after a refused frame).
fn still_answers(raw: &mut Raw, request: u64) {
    raw.send_as(&ClientMsg::Query(Query::OpenOrders { account: ALICE }), request);
    match raw.expect().msg {
        ServerMsg::ExecReport(r) => {
            assert_eq!((r.request_id, r.event), (request, Event::QueryDone { items: 0 }))
        }
        other => panic!("expected the query's answer, got {other:?}"),
    }
}

#[test]
fn truncated_frames_are_never_applied_and_split_frames_are_joined() {
    let mut h = Harness::new(|_| {});
    let order = ClientMsg::NewOrder(limit(2, BTC_USD, Side::Buy, 6_000_000, 100, 1));
    let mut whole = Vec::new();
    order.encode_into(5, &mut whole);
    let body_len = whole.len() - wire::HEADER_LEN;
    assert!(body_len > 10);
    let seq = applied_seq(&mut h.bob);

    // The header announces the whole body (51 bytes), 10 come, then the client closes
    // its side: the partial frame is dropped, nothing reaches the engine, and the
    // session ends as after a logout (notice 0, then the connection closes).
    let (mut alice, _, _) = Raw::login(h.addr, "alice", 60_000, false);
    alice.write(&whole[..wire::HEADER_LEN + 10]);
    alice.shutdown_write();
    assert_eq!(alice.expect().msg, ServerMsg::Logout(0));
    alice.expect_closed();
    h.bob_works();
    // Half a header, then close.
    let (mut alice, _, _) = Raw::login(h.addr, "alice", 60_000, false);
    alice.write(&whole[..8]);
    alice.shutdown_write();
    assert_eq!(alice.expect().msg, ServerMsg::Logout(0));
    alice.expect_closed();
    h.bob_works();
    assert_eq!(applied_seq(&mut h.bob), seq + 2, "only bob's two orders were journaled");

    // The same frame in three pieces, with other sessions' traffic in between: the
    // server waits for the rest and then handles the whole frame once.
    let (mut alice, _, _) = Raw::login(h.addr, "alice", 60_000, false);
    alice.write(&whole[..7]);
    h.bob_works();
    alice.write(&whole[7..wire::HEADER_LEN + 10]);
    h.bob_works();
    alice.write(&whole[wire::HEADER_LEN + 10..]);
    let reply = alice.expect();
    let ServerMsg::ExecReport(report) = reply.msg else { panic!("{reply:?}") };
    assert_eq!(report.request_id, 5);
    assert!(matches!(report.event, Event::Accepted(a) if a.client_order_id.0 == 1));
    h.finish();
}

#[test]
fn fatal_headers_end_the_session_with_a_reason() {
    let mut h = Harness::new(|_| {});
    let query = body_of(&ClientMsg::Query(Query::OpenOrders { account: ALICE }));
    let cases: [(&str, Vec<u8>, SessionReason); 5] = [
        (
            "one byte over the limit",
            {
                let mut bytes = frame(msg::QUERY, 1, &[]);
                bytes[0..4].copy_from_slice(&(BODY_LEN_MAX + 1).to_le_bytes());
                bytes.extend(std::iter::repeat_n(0u8, BODY_LEN_MAX as usize + 1));
                bytes
            },
            SessionReason::FrameTooLong,
        ),
        (
            "u32::MAX announced",
            {
                let mut bytes = frame(msg::NEW_ORDER, 1, &[]);
                bytes[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
                bytes
            },
            SessionReason::FrameTooLong,
        ),
        ("version 2", raw_frame(msg::QUERY, 2, 0, 1, &query), SessionReason::UnsupportedVersion),
        ("version 0", raw_frame(msg::QUERY, 0, 0, 1, &query), SessionReason::UnsupportedVersion),
        // The version is checked before the length.
        (
            "version 9 and too long",
            {
                let mut bytes = raw_frame(msg::QUERY, 9, 0, 1, &[]);
                bytes[0..4].copy_from_slice(&(BODY_LEN_MAX * 2).to_le_bytes());
                bytes
            },
            SessionReason::UnsupportedVersion,
        ),
    ];
    for (what, bytes, reason) in cases {
        for logged_in in [true, false] {
            let mut raw = if logged_in {
                Raw::login(h.addr, "alice", 60_000, false).0
            } else {
                Raw::connect(h.addr)
            };
            raw.write(&bytes);
            let seq = if logged_in { 2 } else { 1 };
            let got = raw.expect();
            assert_eq!(got, Received { seq, msg: ServerMsg::Logout(reason.code()) }, "{what}");
            raw.expect_closed();
            h.bob_works();
        }
    }
    // A whole valid frame after the length limit's body is never read as a message.
    let mut raw = Raw::login(h.addr, "alice", 60_000, false).0;
    let mut bytes = frame(msg::QUERY, 1, &[]);
    bytes[0..4].copy_from_slice(&(BODY_LEN_MAX + 100).to_le_bytes());
    ClientMsg::NewOrder(limit(2, BTC_USD, Side::Buy, 6_000_000, 100, 1)).encode_into(2, &mut bytes);
    raw.write(&bytes);
    assert_eq!(raw.expect().msg, ServerMsg::Logout(SessionReason::FrameTooLong.code()));
    raw.expect_closed();
    h.bob_works();
    assert!(open_orders(&mut common::login(h.addr, "alice"), ALICE).is_empty());
    h.finish();
}

#[test]
fn malformed_frames_are_refused_and_the_session_goes_on() {
    // This test is about each reject, not the budget (which has its own test).
    let mut h = Harness::new(|config| config.session.error_budget = 1_000);
    let (mut alice, _, _) = Raw::login(h.addr, "alice", 60_000, false);

    let order = limit(2, BTC_USD, Side::Buy, 6_000_000, 100, 1);
    let good = body_of(&ClientMsg::NewOrder(order));
    let side = differing_byte(
        &good,
        &body_of(&ClientMsg::NewOrder(fincore_engine::NewOrder { side: Side::Sell, ..order })),
    );
    let post_only = differing_byte(
        &good,
        &body_of(&ClientMsg::NewOrder(fincore_engine::NewOrder { post_only: true, ..order })),
    );
    let query = body_of(&ClientMsg::Query(Query::OpenOrders { account: ALICE }));
    let mass_cancel =
        body_of(&ClientMsg::MassCancel(MassCancel { account: ALICE, instrument: Some(BTC_USD) }));
    let cancel = body_of(&ClientMsg::Cancel(Cancel {
        account: ALICE,
        order: OrderRef::Id(fincore_engine::OrderId(1)),
    }));
    let transfer = body_of(&ClientMsg::Transfer(Transfer {
        debit: ALICE,
        credit: BOB,
        asset: USD,
        amount: 1,
        client_payment_id: ClientPaymentId(1),
    }));
    let capture = body_of(&ClientMsg::Capture(Capture {
        account: ALICE,
        payment: PaymentRef::Id(PaymentId(1)),
        amount: 0,
    }));
    let blocked =
        body_of(&ClientMsg::SetAccountBlocked(SetAccountBlocked { account: ALICE, blocked: true }));
    let limits = body_of(&ClientMsg::SetPaymentLimits(SetPaymentLimits {
        asset: USD,
        transfer_max: None,
        velocity_24h: None,
    }));
    let with = |body: &[u8], at: usize, byte: u8| {
        let mut body = body.to_vec();
        body[at] = byte;
        body
    };
    let malformed = SessionReason::MalformedFrame;
    let unknown = SessionReason::UnknownMessageType;
    let cases: Vec<(&str, Vec<u8>, ServerMsg)> = vec![
        ("unknown type 999", frame(999, 11, &[]), session_reject(unknown, 999, 11)),
        ("type 0", frame(0, 12, &query), session_reject(unknown, 0, 12)),
        (
            "a server-to-client type",
            frame(msg::LOGIN_ACCEPTED, 13, &[0; 21]),
            session_reject(unknown, msg::LOGIN_ACCEPTED, 13),
        ),
        (
            "flags 1",
            raw_frame(msg::QUERY, VERSION, 1, 14, &query),
            session_reject(malformed, msg::QUERY, 14),
        ),
        (
            "flags 0x80",
            raw_frame(msg::NEW_ORDER, VERSION, 0x80, 15, &good),
            session_reject(malformed, msg::NEW_ORDER, 15),
        ),
        (
            "NewOrder one byte short",
            frame(msg::NEW_ORDER, 16, &good[..good.len() - 1]),
            session_reject(malformed, msg::NEW_ORDER, 16),
        ),
        (
            "NewOrder one byte long",
            frame(msg::NEW_ORDER, 17, &[&good[..], &[0]].concat()),
            session_reject(malformed, msg::NEW_ORDER, 17),
        ),
        (
            "Cancel of 3 bytes",
            frame(msg::CANCEL, 18, &cancel[..3]),
            session_reject(malformed, msg::CANCEL, 18),
        ),
        (
            "Heartbeat with a body",
            frame(msg::HEARTBEAT, 19, &[0]),
            session_reject(malformed, msg::HEARTBEAT, 19),
        ),
        (
            "Logout with a body",
            frame(msg::LOGOUT, 20, &[0, 0]),
            session_reject(malformed, msg::LOGOUT, 20),
        ),
        (
            "empty NewOrder",
            frame(msg::NEW_ORDER, 21, &[]),
            session_reject(malformed, msg::NEW_ORDER, 21),
        ),
        (
            "side tag 7",
            frame(msg::NEW_ORDER, 22, &with(&good, side, 7)),
            session_reject(malformed, msg::NEW_ORDER, 22),
        ),
        (
            "side tag 2^24",
            frame(msg::NEW_ORDER, 23, &with(&good, side + 3, 1)),
            session_reject(malformed, msg::NEW_ORDER, 23),
        ),
        (
            "post_only byte 2",
            frame(msg::NEW_ORDER, 24, &with(&good, post_only, 2)),
            session_reject(malformed, msg::NEW_ORDER, 24),
        ),
        (
            "post_only byte 0xff",
            frame(msg::NEW_ORDER, 25, &with(&good, post_only, 0xff)),
            session_reject(malformed, msg::NEW_ORDER, 25),
        ),
        (
            "Option tag 2",
            frame(msg::MASS_CANCEL, 26, &with(&mass_cancel, 4, 2)),
            session_reject(malformed, msg::MASS_CANCEL, 26),
        ),
        (
            "Query tag 9",
            frame(msg::QUERY, 27, &with(&query, 0, 9)),
            session_reject(malformed, msg::QUERY, 27),
        ),
        (
            "Transfer one byte short",
            frame(msg::TRANSFER, 28, &transfer[..transfer.len() - 1]),
            session_reject(malformed, msg::TRANSFER, 28),
        ),
        (
            "Capture payment tag 2",
            frame(msg::CAPTURE, 29, &with(&capture, 4, 2)),
            session_reject(malformed, msg::CAPTURE, 29),
        ),
        (
            "SetAccountBlocked bool 2 (decoded before the admin check)",
            frame(msg::SET_ACCOUNT_BLOCKED, 30, &with(&blocked, 4, 2)),
            session_reject(malformed, msg::SET_ACCOUNT_BLOCKED, 30),
        ),
        (
            "SetPaymentLimits option tag 2",
            frame(msg::SET_PAYMENT_LIMITS, 31, &with(&limits, 2, 2)),
            session_reject(malformed, msg::SET_PAYMENT_LIMITS, 31),
        ),
    ];
    assert_eq!(good[side], 0, "Buy is tag 0");
    assert_eq!(good[post_only], 0, "false is 0");
    for (i, (what, bytes, expected)) in cases.into_iter().enumerate() {
        alice.write(&bytes);
        assert_eq!(alice.expect().msg, expected, "{what}");
        still_answers(&mut alice, 100 + i as u64);
        h.bob_works();
    }
    // None of it reached the engine: alice's money is untouched.
    let mut check = common::login(h.addr, "alice");
    assert_eq!(balances(&mut check, ALICE), [(USD_0, 0), (BTC_0, 0), (ETH_0, 0)]);
    h.finish();
}

/// xorshift64*: a fixed, seedable byte source.
struct Bytes(u64);

impl Bytes {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn fill(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Sends `bytes` and then a run of 0xff bytes (longer than any frame, so the stream
/// reaches a header that cannot be valid: version 0xff), and checks what comes back:
/// session rejects or execution reports, then one logout notice with a protocol reason
/// (or a login refusal, if the noise was read as a login), then the end of the
/// connection. Returns that reason.
fn garbage_round(h: &mut Harness, bytes: &[u8], logged_in: bool, what: &str) -> u32 {
    let mut raw =
        if logged_in { Raw::login(h.addr, "alice", 60_000, false).0 } else { Raw::connect(h.addr) };
    let tail = [0xffu8; 2 * (BODY_LEN_MAX as usize + wire::HEADER_LEN)];
    raw.write(&[bytes, &tail[..]].concat());
    let mut logout = None;
    loop {
        match raw.recv() {
            Incoming::Closed => break,
            Incoming::Msg(received) => match received.msg {
                ServerMsg::Logout(reason) => {
                    assert!([900, 901, 902, 903, 914].contains(&reason), "{what}: logout {reason}");
                    assert_eq!(logout, None, "{what}: one logout");
                    logout = Some(reason);
                }
                ServerMsg::SessionReject(reject) => {
                    assert!(logout.is_none(), "{what}: nothing after the logout");
                    assert!(
                        SessionReason::from_code(reject.reason).is_some(),
                        "{what}: {reject:?}"
                    );
                }
                // Noise that happens to decode as a login with unknown credentials.
                ServerMsg::LoginRejected(reason) if !logged_in => {
                    assert_eq!(reason, SessionReason::LoginFailed.code(), "{what}");
                    assert_eq!(logout, None, "{what}: one refusal");
                    logout = Some(reason);
                }
                ServerMsg::ExecReport(_) if logged_in => assert!(logout.is_none()),
                other => panic!("{what}: unexpected {other:?}"),
            },
        }
    }
    h.bob_works();
    logout.unwrap_or_else(|| panic!("{what}: closed without a logout notice"))
}

#[test]
fn seeded_garbage_ends_the_connection_and_the_server_survives() {
    let mut h = Harness::new(|_| {});
    let mut reasons = Vec::new();
    // Pure noise, before and after login.
    for seed in 1..=12u64 {
        let bytes = Bytes(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)).fill(4_096);
        let what = format!("noise seed {seed}");
        reasons.push(garbage_round(&mut h, &bytes, seed % 2 == 0, &what));
    }
    // Well-formed headers of every client type with noise bodies of the right length:
    // the decoders see them all (some may even decode into commands the engine refuses).
    let samples = [
        ClientMsg::Login(wire::Login::new("alice", "alice-secret", 1_000, false)),
        ClientMsg::NewOrder(limit(2, BTC_USD, Side::Buy, 1, 1, 1)),
        ClientMsg::Cancel(Cancel {
            account: ALICE,
            order: OrderRef::Id(fincore_engine::OrderId(1)),
        }),
        ClientMsg::Amend(Amend {
            account: ALICE,
            order: OrderRef::Id(fincore_engine::OrderId(1)),
            price: Price(1),
            qty: Qty(1),
        }),
        ClientMsg::MassCancel(MassCancel { account: ALICE, instrument: Some(BTC_USD) }),
        ClientMsg::Deposit(external(ALICE, USD, 1, 1)),
        ClientMsg::Transfer(Transfer {
            debit: ALICE,
            credit: BOB,
            asset: USD,
            amount: 1,
            client_payment_id: ClientPaymentId(1),
        }),
        ClientMsg::Capture(Capture {
            account: ALICE,
            payment: PaymentRef::Client(ClientPaymentId(1)),
            amount: 1,
        }),
        ClientMsg::Void(Void { account: ALICE, payment: PaymentRef::Id(PaymentId(1)) }),
        ClientMsg::SetPaymentLimits(SetPaymentLimits {
            asset: USD,
            transfer_max: Some(1),
            velocity_24h: Some(1),
        }),
        ClientMsg::SetAccountLimits(SetAccountLimits {
            account: ALICE,
            asset: USD,
            credit_limit: 1,
            velocity_24h: Some(1),
        }),
        ClientMsg::SetAccountBlocked(SetAccountBlocked { account: ALICE, blocked: true }),
        ClientMsg::Query(Query::Order {
            account: ALICE,
            order: OrderRef::Id(fincore_engine::OrderId(1)),
        }),
        ClientMsg::Subscribe(BTC_USD),
    ];
    for seed in 1..=8u64 {
        let mut noise = Bytes(seed.wrapping_mul(0xd1b5_4a32_d192_ed03));
        let mut bytes = Vec::new();
        for request in 1..=40u64 {
            let sample = samples[(noise.next() % samples.len() as u64) as usize];
            let body = noise.fill(body_of(&sample).len());
            bytes.extend(frame(sample.msg_type(), request, &body));
        }
        let what = format!("typed noise seed {seed}");
        reasons.push(garbage_round(&mut h, &bytes, seed % 2 == 1, &what));
    }
    // Noise headers are refused at once (903 or 901); forty malformed bodies spend the
    // error budget (914).
    assert!(reasons[..12].iter().all(|r| matches!(r, 901 | 903)), "{reasons:?}");
    assert!(reasons[12..].iter().all(|r| *r == 914), "{reasons:?}");
    h.finish();
}

#[test]
fn the_error_budget_ends_a_session_that_keeps_sending_bad_frames() {
    let mut h = Harness::new(|config| config.session.error_budget = 3);

    // Engine rejects are answers, not errors: five bad orders cost nothing.
    let (mut alice, _, _) = Raw::login(h.addr, "alice", 60_000, false);
    for coid in 1..=5 {
        alice.send_as(&limit(2, BTC_USD, Side::Buy, 6_000_000, 0, coid).into(), coid);
        let ServerMsg::ExecReport(report) = alice.expect().msg else { panic!() };
        assert!(
            matches!(report.event, Event::Rejected(r) if r.reason == RejectReason::QtyNotPositive)
        );
    }
    // Three malformed frames: three rejects, the session goes on (budget 3) ...
    for request in 11..=13 {
        alice.write(&frame(999, request, &[]));
        assert_eq!(
            alice.expect().msg,
            session_reject(SessionReason::UnknownMessageType, 999, request)
        );
    }
    still_answers(&mut alice, 20);
    h.bob_works();
    // ... the fourth is refused too, and ends it.
    alice.write(&frame(msg::HEARTBEAT, 14, &[1]));
    assert_eq!(
        alice.expect().msg,
        session_reject(SessionReason::MalformedFrame, msg::HEARTBEAT, 14)
    );
    assert_eq!(alice.expect().msg, ServerMsg::Logout(SessionReason::TooManyErrors.code()));
    alice.expect_closed();
    h.bob_works();

    // Before login the same: budget + 1 messages refused (904), then the logout, with
    // gap-free sequence numbers.
    let mut raw = Raw::connect(h.addr);
    let mut burst = Vec::new();
    for request in 1..=10u64 {
        ClientMsg::Query(Query::Balances { account: ALICE }).encode_into(request, &mut burst);
    }
    raw.write(&burst);
    let got: Vec<Received> = (0..5).map(|_| raw.expect()).collect();
    for (i, received) in got[..4].iter().enumerate() {
        let expected = session_reject(SessionReason::NotLoggedIn, msg::QUERY, i as u64 + 1);
        assert_eq!(received.msg, expected);
    }
    assert_eq!(got[4].msg, ServerMsg::Logout(SessionReason::TooManyErrors.code()));
    common::assert_gap_free(&got, 1);
    raw.expect_closed();
    h.bob_works();
    h.finish();
}

#[test]
fn zero_negative_and_overflowing_values_are_rejected_and_change_nothing() {
    let mut h = Harness::new(|_| {});
    let mut alice = common::login(h.addr, "alice");
    let mut admin = common::login(h.addr, "admin");
    let before = balances(&mut alice, ALICE);
    let fees_before = balances(&mut admin, AccountId(1));

    let order = |price, qty| limit(2, BTC_USD, Side::Buy, price, qty, 1);
    let market = fincore_engine::NewOrder {
        order_type: OrderType::Market,
        time_in_force: TimeInForce::Ioc,
        ..order(0, i64::MAX)
    };
    let cases: Vec<(&str, fincore_engine::NewOrder, &[RejectReason])> = vec![
        ("qty 0", order(6_000_000, 0), &[RejectReason::QtyNotPositive]),
        ("qty -5", order(6_000_000, -5), &[RejectReason::QtyNotPositive]),
        ("qty i64::MIN", order(6_000_000, i64::MIN), &[RejectReason::QtyNotPositive]),
        ("price 0", order(0, 100), &[RejectReason::PriceNotPositive]),
        ("price -1", order(-1, 100), &[RejectReason::PriceNotPositive]),
        ("price i64::MIN", order(i64::MIN, 100), &[RejectReason::PriceNotPositive]),
        (
            "price i64::MAX",
            order(i64::MAX, 100),
            &[RejectReason::PriceOutsideBand, RejectReason::ArithmeticOverflow],
        ),
        (
            "qty i64::MAX",
            order(6_000_000, i64::MAX),
            &[RejectReason::QtyAboveMax, RejectReason::ArithmeticOverflow],
        ),
        (
            "both i64::MAX",
            order(i64::MAX, i64::MAX),
            &[
                RejectReason::QtyAboveMax,
                RejectReason::PriceOutsideBand,
                RejectReason::ArithmeticOverflow,
            ],
        ),
        (
            "market qty i64::MAX",
            market,
            &[RejectReason::QtyAboveMax, RejectReason::ArithmeticOverflow],
        ),
        (
            "a sell of i64::MAX lots",
            fincore_engine::NewOrder { side: Side::Sell, ..order(6_000_000, i64::MAX) },
            &[RejectReason::QtyAboveMax, RejectReason::ArithmeticOverflow],
        ),
    ];
    for (what, order, allowed) in cases {
        let replies = command(&mut alice, order.into());
        let [Event::Rejected(rejected)] = replies[..] else { panic!("{what}: {replies:?}") };
        assert_eq!(rejected.kind, CommandKind::NewOrder, "{what}");
        assert!(
            allowed.contains(&rejected.reason),
            "{what}: {:?} not in {allowed:?}",
            rejected.reason
        );
        h.bob_works();
    }

    // Amends and cancels of a live order with such values; the order is unchanged.
    let live = command(&mut alice, order(6_000_000, 100).into());
    let Event::Accepted(live) = live[0] else { panic!("{live:?}") };
    let amend = |price, qty| {
        ClientMsg::Amend(Amend {
            account: ALICE,
            order: OrderRef::Id(live.order_id),
            price: Price(price),
            qty: Qty(qty),
        })
    };
    for (what, message, reason) in [
        ("amend qty 0", amend(6_000_000, 0), RejectReason::QtyNotPositive),
        ("amend price -1", amend(-1, 100), RejectReason::PriceNotPositive),
        ("amend qty i64::MAX", amend(6_000_000, i64::MAX), RejectReason::QtyAboveMax),
        ("amend to the same", amend(6_000_000, 100), RejectReason::AmendNoChange),
        (
            "cancel of order id u64::MAX",
            ClientMsg::Cancel(Cancel {
                account: ALICE,
                order: OrderRef::Id(fincore_engine::OrderId(u64::MAX)),
            }),
            RejectReason::UnknownOrder,
        ),
    ] {
        let replies = command(&mut alice, message);
        let [Event::Rejected(rejected)] = replies[..] else { panic!("{what}: {replies:?}") };
        assert_eq!(rejected.reason, reason, "{what}");
    }
    let info = open_orders(&mut alice, ALICE);
    assert_eq!((info.len(), info[0].price, info[0].remaining), (1, Price(6_000_000), Qty(100)));
    let cancel = Cancel { account: ALICE, order: OrderRef::Id(live.order_id) };
    assert!(matches!(command(&mut alice, ClientMsg::Cancel(cancel))[0], Event::Cancelled(_)));

    // Deposits and withdrawals: zero, negative, more than there is, above the asset's
    // transfer_max (USD's, 250 000 USD; BTC has none), past i64::MAX, and id 0. Each
    // attempt has its own client payment id, so that none is judged a retry.
    let mut next_id = 0;
    let mut external_with = |asset, amount| {
        next_id += 1;
        external(ALICE, asset, amount, next_id)
    };
    for (what, message, reason) in [
        ("deposit 0", ClientMsg::Deposit(external_with(USD, 0)), RejectReason::AmountNotPositive),
        ("deposit -1", ClientMsg::Deposit(external_with(USD, -1)), RejectReason::AmountNotPositive),
        (
            "deposit i64::MIN",
            ClientMsg::Deposit(external_with(USD, i64::MIN)),
            RejectReason::AmountNotPositive,
        ),
        (
            "deposit i64::MAX",
            ClientMsg::Deposit(external_with(USD, i64::MAX)),
            RejectReason::ArithmeticOverflow,
        ),
        (
            "deposit i64::MAX of BTC",
            ClientMsg::Deposit(external_with(BTC, i64::MAX)),
            RejectReason::ArithmeticOverflow,
        ),
        (
            "deposit id 0",
            ClientMsg::Deposit(external(ALICE, USD, 1, 0)),
            RejectReason::PaymentIdZero,
        ),
        (
            "withdraw -1",
            ClientMsg::Withdraw(external_with(USD, -1)),
            RejectReason::AmountNotPositive,
        ),
        (
            "withdraw above transfer_max",
            ClientMsg::Withdraw(external_with(USD, common::USD_TRANSFER_MAX + 1)),
            RejectReason::AboveTransferMax,
        ),
        (
            "withdraw too much",
            ClientMsg::Withdraw(external_with(BTC, BTC_0 + 1)),
            RejectReason::InsufficientBalance,
        ),
        (
            "withdraw i64::MAX",
            ClientMsg::Withdraw(external_with(USD, i64::MAX)),
            RejectReason::AboveTransferMax,
        ),
        (
            "withdraw i64::MAX of BTC",
            ClientMsg::Withdraw(external_with(BTC, i64::MAX)),
            RejectReason::InsufficientBalance,
        ),
        (
            "withdraw id 0",
            ClientMsg::Withdraw(external(ALICE, USD, 1, 0)),
            RejectReason::PaymentIdZero,
        ),
    ] {
        let replies = command(&mut admin, message);
        let [Event::Rejected(rejected)] = replies[..] else { panic!("{what}: {replies:?}") };
        assert_eq!(rejected.reason, reason, "{what}");
        assert_eq!(rejected.client_id, message.client_id(), "{what}");
        h.bob_works();
    }

    // Transfers and authorizations from alice with the same values (the authorizations
    // ask for the longest timeout, u32::MAX seconds, whose deadline still fits engine
    // time: they are refused for their amounts), and captures and voids of payments
    // that do not exist.
    let payment = |amount: i64, id: u64| Transfer {
        debit: ALICE,
        credit: BOB,
        asset: BTC,
        amount,
        client_payment_id: ClientPaymentId(id),
    };
    let authorize = |amount: i64, id: u64| {
        let t = payment(amount, id);
        ClientMsg::Authorize(Authorize {
            debit: t.debit,
            credit: t.credit,
            asset: t.asset,
            amount: t.amount,
            client_payment_id: t.client_payment_id,
            timeout_s: u32::MAX,
        })
    };
    for (what, message, reason) in [
        ("transfer 0", ClientMsg::Transfer(payment(0, 1)), RejectReason::AmountNotPositive),
        ("transfer -1", ClientMsg::Transfer(payment(-1, 2)), RejectReason::AmountNotPositive),
        (
            "transfer i64::MIN",
            ClientMsg::Transfer(payment(i64::MIN, 3)),
            RejectReason::AmountNotPositive,
        ),
        (
            "transfer i64::MAX",
            ClientMsg::Transfer(payment(i64::MAX, 4)),
            RejectReason::InsufficientBalance,
        ),
        ("transfer id 0", ClientMsg::Transfer(payment(1, 0)), RejectReason::PaymentIdZero),
        (
            "transfer of an unknown asset",
            ClientMsg::Transfer(Transfer { asset: fincore_engine::AssetId(31), ..payment(1, 5) }),
            RejectReason::UnknownAsset,
        ),
        ("authorize 0", authorize(0, 6), RejectReason::AmountNotPositive),
        ("authorize i64::MAX", authorize(i64::MAX, 7), RejectReason::InsufficientBalance),
        (
            "capture of payment id u64::MAX",
            ClientMsg::Capture(Capture {
                account: ALICE,
                payment: PaymentRef::Id(PaymentId(u64::MAX)),
                amount: 1,
            }),
            RejectReason::UnknownPayment,
        ),
        (
            "void of a client id never used",
            ClientMsg::Void(Void {
                account: ALICE,
                payment: PaymentRef::Client(ClientPaymentId(9)),
            }),
            RejectReason::UnknownPayment,
        ),
    ] {
        let replies = command(&mut alice, message);
        let [Event::Rejected(rejected)] = replies[..] else { panic!("{what}: {replies:?}") };
        assert_eq!(rejected.reason, reason, "{what}");
        assert_eq!(rejected.client_id, message.client_id(), "{what}");
        h.bob_works();
    }
    // Nothing was recorded: alice's newest payment is still a setup deposit.
    let newest = common::query(&mut alice, Query::Payments { account: ALICE, limit: 1 });
    let [Event::PaymentInfo(newest)] = newest[..] else { panic!("{newest:?}") };
    assert_eq!(newest.kind, fincore_engine::PaymentKind::Deposit);
    assert!(newest.client_payment_id.0 > fincore_gateway::config::SETUP_DEPOSIT_ID_BASE);

    assert_eq!(balances(&mut alice, ALICE), before);
    assert_eq!(before, [(USD_0, 0), (BTC_0, 0), (ETH_0, 0)]);
    assert_eq!(balances(&mut admin, AccountId(1)), fees_before);
    h.finish();
}
