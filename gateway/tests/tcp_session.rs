//! The session layer over real TCP connections (server on 127.0.0.1, ephemeral port,
//! temporary data directory): login and what `LoginAccepted` says; refused logins
//! (wrong secret and unknown user answered with the same bytes, heartbeat bounds, an
//! overlong name or secret refused by the client);
//! messages before login, a second login, logout; the login and heartbeat timeouts;
//! gap-free outbound sequence numbers; the connection limit and the rate limit.
//!
//! Connections that must not heartbeat by themselves, or that must see every frame and
//! its sequence number, are driven by hand (`common::Raw`).

mod common;

use common::{BTC_USD, Incoming, Raw, WAIT, assert_gap_free, limit, raw_frame};
use fincore_engine::{
    AccountId, ClientOrderId, ClientPaymentId, Event, OrderRef, PaymentKind, Query, RejectReason,
    Side, UserId,
};
use fincore_gateway::client::{Client, ClientError, LoginOptions, Received};
use fincore_gateway::wire::{
    self, Cancel, ClientMsg, MdLevel, MdSnapshotEnd, MdSnapshotLevel, ServerMsg, SessionReason,
    SessionReject, msg,
};
use std::time::{Duration, Instant};

fn reject(reason: SessionReason, ref_type: u16, request: u64, client_id: u64) -> ServerMsg {
    ServerMsg::SessionReject(SessionReject {
        reason: reason.code(),
        ref_type,
        ref_request_id: request,
        ref_client_id: client_id,
    })
}

/// The request id and event of an execution report.
fn report(received: &Received) -> (u64, Event) {
    match received.msg {
        ServerMsg::ExecReport(report) => (report.request_id, report.event),
        other => panic!("expected an execution report, got {other:?}"),
    }
}

/// Every byte the server sends on a fresh connection after this login, until it closes.
fn login_refusal(addr: std::net::SocketAddr, user: &str, secret: &str, heartbeat: u32) -> Vec<u8> {
    let mut raw = Raw::connect(addr);
    raw.send(&ClientMsg::Login(wire::Login::new(user, secret, heartbeat, false)));
    raw.bytes_until_closed()
}

fn frame_of(message: ServerMsg, seq: u64) -> Vec<u8> {
    let mut out = Vec::new();
    message.encode_into(seq, &mut out);
    out
}

#[test]
fn login_is_accepted_with_the_session_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(&common::config(dir.path()));
    let addr = server.local_addr();

    let (_alice, seq, alice) = Raw::login(addr, "alice", 1_000, false);
    assert_eq!(seq, 1, "LoginAccepted is the session's first message");
    assert_eq!(alice.user, UserId(2));
    assert!(!alice.admin);
    assert_eq!(alice.heartbeat_ms, 1_000);
    assert_eq!(alice.next_seq, 2, "the next message after LoginAccepted (seq 1)");
    assert_ne!(alice.session_id, 0);

    let (_admin, seq, admin) = Raw::login(addr, "admin", 60_000, false);
    assert_eq!(seq, 1);
    assert_eq!(
        (admin.user, admin.admin, admin.heartbeat_ms, admin.next_seq),
        (UserId(1), true, 60_000, 2)
    );
    assert_ne!(admin.session_id, alice.session_id, "session ids are unique");

    // A payment operator is not an admin.
    let (_payops, _, payops) = Raw::login(addr, "payops", 1_000, false);
    assert_eq!((payops.user, payops.admin), (UserId(5), false));

    // The configured bounds themselves are accepted (100 and 60 000 ms by default).
    let (_bob, _, bob) = Raw::login(addr, "bob", 100, true);
    assert_eq!((bob.user, bob.admin, bob.heartbeat_ms), (UserId(3), false, 100));
    server.stop().unwrap();
}

#[test]
fn outbound_sequence_numbers_are_gap_free() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(&common::config(dir.path()));
    let (mut alice, first, _) = Raw::login(server.local_addr(), "alice", 60_000, false);
    assert_eq!(first, 1);
    let mut all = Vec::new();
    let mut take = |raw: &mut Raw, n: usize| -> Vec<Received> {
        let got: Vec<Received> = (0..n).map(|_| raw.expect()).collect();
        all.extend(got.iter().copied());
        got
    };

    // A query: three balances and the end marker.
    let id = alice.send(&ClientMsg::Query(Query::Balances { account: AccountId(2) }));
    let got = take(&mut alice, 4);
    assert!(got[..3].iter().all(|r| matches!(report(r), (i, Event::BalanceInfo(_)) if i == id)));
    assert_eq!(report(&got[3]), (id, Event::QueryDone { items: 3 }));

    // A client heartbeat is not answered; a resting order: Accepted and the hold.
    alice.send(&ClientMsg::Heartbeat);
    let id = alice.send(&limit(2, BTC_USD, Side::Buy, 5_900_000, 100, 1).into());
    let got = take(&mut alice, 2);
    assert!(matches!(report(&got[0]), (i, Event::Accepted(_)) if i == id));
    assert!(matches!(report(&got[1]), (i, Event::Balance(_)) if i == id));

    // A session reject takes a sequence number too.
    alice.write(&raw_frame(999, wire::VERSION, 0, 77, &[]));
    let got = take(&mut alice, 1);
    assert_eq!(got[0].msg, reject(SessionReason::UnknownMessageType, 999, 77, 0));

    // Market data: the snapshot (alice's own bid) ...
    alice.send(&ClientMsg::Subscribe(BTC_USD));
    let got = take(&mut alice, 2);
    let level = MdSnapshotLevel {
        instrument: BTC_USD,
        side: Side::Buy,
        price: fincore_engine::Price(5_900_000),
        qty: fincore_engine::Qty(100),
        orders: 1,
    };
    assert_eq!(got[0].msg, ServerMsg::MdSnapshotLevel(level));
    let end = MdSnapshotEnd { instrument: BTC_USD, md_seq: 1, levels: 1 };
    assert_eq!(got[1].msg, ServerMsg::MdSnapshotEnd(end));

    // ... then a cancel: two reports and the market-data update, interleaved in order.
    let cancel = Cancel { account: AccountId(2), order: OrderRef::Client(ClientOrderId(1)) };
    let id = alice.send(&ClientMsg::Cancel(cancel));
    let got = take(&mut alice, 3);
    assert!(matches!(report(&got[0]), (i, Event::Cancelled(_)) if i == id));
    assert!(matches!(report(&got[1]), (i, Event::Balance(_)) if i == id));
    let gone = MdLevel {
        instrument: BTC_USD,
        md_seq: 2,
        side: Side::Buy,
        price: fincore_engine::Price(5_900_000),
        qty: fincore_engine::Qty(0),
        orders: 0,
    };
    assert_eq!(got[2].msg, ServerMsg::MdLevel(gone));

    alice.send(&ClientMsg::Unsubscribe(BTC_USD));
    let got = take(&mut alice, 1);
    assert_eq!(got[0].msg, ServerMsg::MdUnsubscribed(BTC_USD));

    assert_eq!(all.len(), 13);
    assert_gap_free(&all, 2);
    server.stop().unwrap();
}

#[test]
fn wrong_secret_and_unknown_user_get_identical_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(&common::config(dir.path()));
    let addr = server.local_addr();
    let expected = frame_of(ServerMsg::LoginRejected(SessionReason::LoginFailed.code()), 1);

    let wrong_secret = login_refusal(addr, "alice", "bob-secret", 1_000);
    let unknown_user = login_refusal(addr, "mallory", "mallory-secret", 1_000);
    assert_eq!(wrong_secret, expected, "LoginRejected(906), then the connection closes");
    assert_eq!(unknown_user, wrong_secret, "the two refusals are byte-identical");
    // Neither does a bad heartbeat tell whether the user exists: credentials come first.
    assert_eq!(login_refusal(addr, "alice", "", 5), expected);
    assert_eq!(login_refusal(addr, "mallory", "x", 5), expected);
    assert_eq!(login_refusal(addr, "", "", 1_000), expected);
    server.stop().unwrap();
}

#[test]
fn heartbeat_interval_outside_the_bounds_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(&common::config(dir.path()));
    let addr = server.local_addr();
    let expected = frame_of(ServerMsg::LoginRejected(SessionReason::InvalidHeartbeat.code()), 1);
    for heartbeat in [0, 99, 60_001, u32::MAX] {
        let bytes = login_refusal(addr, "alice", "alice-secret", heartbeat);
        assert_eq!(bytes, expected, "heartbeat {heartbeat} ms: LoginRejected(907), then close");
    }
    server.stop().unwrap();
}

#[test]
fn messages_before_login_a_second_login_and_logout() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(&common::config(dir.path()));
    let addr = server.local_addr();

    let mut raw = Raw::connect(addr);
    raw.send_as(&ClientMsg::Query(Query::Balances { account: AccountId(2) }), 77);
    raw.send_as(&limit(2, BTC_USD, Side::Buy, 5_900_000, 100, 4242).into(), 78);
    let transfer = fincore_engine::Transfer {
        debit: AccountId(2),
        credit: AccountId(3),
        asset: common::USD,
        amount: 1_000_000,
        client_payment_id: ClientPaymentId(4343),
    };
    raw.send_as(&ClientMsg::Transfer(transfer), 76);
    raw.send_as(&ClientMsg::Heartbeat, 79);
    raw.send_as(&ClientMsg::Login(wire::Login::new("alice", "alice-secret", 60_000, false)), 80);
    let got: Vec<Received> = (0..4).map(|_| raw.expect()).collect();
    assert_eq!(got[0].msg, reject(SessionReason::NotLoggedIn, msg::QUERY, 77, 0));
    assert_eq!(got[1].msg, reject(SessionReason::NotLoggedIn, msg::NEW_ORDER, 78, 4242));
    // A payment's client payment id is echoed like an order's client order id.
    assert_eq!(got[2].msg, reject(SessionReason::NotLoggedIn, msg::TRANSFER, 76, 4343));
    // The heartbeat is allowed and not answered: LoginAccepted comes next.
    let ServerMsg::LoginAccepted(accepted) = got[3].msg else { panic!("{:?}", got[3]) };
    assert_eq!((accepted.user, accepted.next_seq), (UserId(2), 5));
    assert_gap_free(&got, 1);

    // A second login (even as someone else) is refused; the session stays alice's.
    raw.send_as(&ClientMsg::Login(wire::Login::new("bob", "bob-secret", 60_000, false)), 81);
    let second = raw.expect();
    assert_eq!(
        second,
        Received { seq: 5, msg: reject(SessionReason::AlreadyLoggedIn, msg::LOGIN, 81, 0) }
    );
    raw.send_as(&ClientMsg::Query(Query::OpenOrders { account: AccountId(3) }), 82);
    match report(&raw.expect()) {
        (82, Event::Rejected(r)) => assert_eq!(r.reason, RejectReason::AccountNotOwned),
        other => panic!("bob's orders are not alice's to see: {other:?}"),
    }
    // The order and the transfer sent before login never reached the engine.
    raw.send_as(&ClientMsg::Query(Query::OpenOrders { account: AccountId(2) }), 83);
    assert_eq!(report(&raw.expect()), (83, Event::QueryDone { items: 0 }));
    raw.send_as(&ClientMsg::Query(Query::Payments { account: AccountId(2), limit: 1 }), 84);
    match report(&raw.expect()) {
        (84, Event::PaymentInfo(p)) => assert_eq!(p.kind, PaymentKind::Deposit, "setup's"),
        other => panic!("alice's last payment: {other:?}"),
    }
    assert_eq!(report(&raw.expect()), (84, Event::QueryDone { items: 1 }));

    raw.send_as(&ClientMsg::Logout, 85);
    assert_eq!(raw.expect(), Received { seq: 10, msg: ServerMsg::Logout(0) });
    raw.expect_closed();

    // Logging out before logging in is allowed too.
    let mut raw = Raw::connect(addr);
    raw.send(&ClientMsg::Logout);
    assert_eq!(raw.expect(), Received { seq: 1, msg: ServerMsg::Logout(0) });
    raw.expect_closed();
    server.stop().unwrap();
}

#[test]
fn logout_answers_everything_sent_before_it_and_nothing_after() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(&common::config(dir.path()));
    let addr = server.local_addr();
    let (mut alice, _, _) = Raw::login(addr, "alice", 60_000, false);
    // One write: an order, a query, the logout, and an order after it.
    let mut bytes = Vec::new();
    ClientMsg::NewOrder(limit(2, BTC_USD, Side::Buy, 5_900_000, 100, 1)).encode_into(1, &mut bytes);
    ClientMsg::Query(Query::Balances { account: AccountId(2) }).encode_into(2, &mut bytes);
    ClientMsg::Logout.encode_into(3, &mut bytes);
    ClientMsg::NewOrder(limit(2, BTC_USD, Side::Buy, 5_800_000, 100, 2)).encode_into(4, &mut bytes);
    alice.write(&bytes);
    let got: Vec<Received> = (0..7).map(|_| alice.expect()).collect();
    assert!(matches!(report(&got[0]), (1, Event::Accepted(_))));
    assert!(matches!(report(&got[1]), (1, Event::Balance(_))));
    assert!(got[2..5].iter().all(|r| matches!(report(r), (2, Event::BalanceInfo(_)))));
    assert_eq!(report(&got[5]), (2, Event::QueryDone { items: 3 }));
    assert_eq!(got[6].msg, ServerMsg::Logout(SessionReason::ClientLogout.code()));
    assert_gap_free(&got, 2);
    alice.expect_closed();
    // The order after the logout was ignored.
    let mut check = common::login(addr, "alice");
    let open = common::open_orders(&mut check, AccountId(2));
    assert_eq!(open.iter().map(|o| o.client_order_id.0).collect::<Vec<_>>(), [1]);
    server.stop().unwrap();
}

#[test]
fn a_connection_that_does_not_log_in_in_time_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.session.login_timeout_ms = 300;
    let server = common::start(&config);
    let addr = server.local_addr();

    let mut silent = Raw::connect(addr);
    // Half a login frame does not count as logging in.
    let mut partial = Raw::connect(addr);
    let mut login = Vec::new();
    ClientMsg::Login(wire::Login::new("alice", "alice-secret", 1_000, false))
        .encode_into(1, &mut login);
    partial.write(&login[..40]);
    for raw in [&mut silent, &mut partial] {
        let timeout = SessionReason::LoginTimeout.code();
        assert_eq!(raw.expect(), Received { seq: 1, msg: ServerMsg::Logout(timeout) });
        raw.expect_closed();
    }
    // Logging in promptly still works.
    let mut alice = common::login(addr, "alice");
    assert_eq!(common::balances(&mut alice, AccountId(2))[0], (common::USD_0, 0));
    server.stop().unwrap();
}

#[test]
fn a_silent_session_gets_heartbeats_then_a_heartbeat_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(&common::config(dir.path()));
    let addr = server.local_addr();

    // A raw session never heartbeats by itself; 300 ms: heartbeats from the server every
    // 300 ms, a timeout after 900 ms of silence.
    let (mut silent, _, _) = Raw::login(addr, "alice", 300, false);
    // The client library heartbeats while it waits, so its session stays up meanwhile
    // (500 ms: a stall of this thread shorter than 1.5 s does not end it).
    let mut bob =
        common::login_with(addr, "bob", LoginOptions { heartbeat_ms: 500, ..Default::default() });

    // Both are watched together for at least 1 200 ms (over two of bob's intervals), and
    // until the silent session has ended.
    let began = Instant::now();
    let mut received = Vec::new();
    let mut bob_heartbeats = 0;
    let mut silent_closed = false;
    while !silent_closed || began.elapsed() < Duration::from_millis(1_200) {
        assert!(began.elapsed() < WAIT, "the silent session was not ended: {received:?}");
        if !silent_closed {
            match silent.recv_timeout(Duration::from_millis(10)) {
                Some(Incoming::Msg(message)) => received.push(message),
                Some(Incoming::Closed) => silent_closed = true,
                None => {}
            }
        }
        match bob.recv_timeout(Duration::from_millis(10)) {
            Ok(Some(Received { msg: ServerMsg::Heartbeat, .. })) => bob_heartbeats += 1,
            Ok(None) => {}
            other => panic!("bob's session should be alive and quiet: {other:?}"),
        }
    }
    let (last, before) = received.split_last().expect("a logout notice");
    assert_eq!(last.msg, ServerMsg::Logout(SessionReason::HeartbeatTimeout.code()));
    assert!(!before.is_empty(), "at least one server heartbeat came first");
    assert!(before.iter().all(|r| r.msg == ServerMsg::Heartbeat), "{received:?}");
    assert_gap_free(&received, 2);
    assert!(bob_heartbeats >= 1, "the server heartbeats an idle session too");
    assert_eq!(common::balances(&mut bob, AccountId(3))[1], (common::BTC_0, 0));
    server.stop().unwrap();
}

#[test]
fn the_connection_limit_refuses_extra_connections() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.session.max_connections = 2;
    let server = common::start(&config);
    let addr = server.local_addr();

    let mut alice = common::login(addr, "alice");
    let bob = common::login(addr, "bob");
    let mut third = Raw::connect(addr);
    let full = SessionReason::TooManyConnections.code();
    assert_eq!(third.expect(), Received { seq: 1, msg: ServerMsg::Logout(full) });
    third.expect_closed();

    // The two sessions keep working.
    assert_eq!(common::balances(&mut alice, AccountId(2))[0], (common::USD_0, 0));
    let mut bob = bob;
    assert_eq!(common::balances(&mut bob, AccountId(3))[0], (common::USD_0, 0));

    // A freed place can be taken again, and the limit still holds after that.
    bob.logout().unwrap();
    let mut carol = common::login(addr, "carol");
    assert_eq!(common::balances(&mut carol, AccountId(4))[0], (common::USD_0, 0));
    let mut fourth = Raw::connect(addr);
    assert_eq!(fourth.expect(), Received { seq: 1, msg: ServerMsg::Logout(full) });
    fourth.expect_closed();
    server.stop().unwrap();
}

#[test]
fn the_rate_limit_drops_messages_beyond_the_burst() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.session.burst = 5;
    config.session.rate_per_sec = 1;
    let server = common::start(&config);
    let addr = server.local_addr();

    let (mut alice, _, _) = Raw::login(addr, "alice", 60_000, false);
    // Twenty orders in one write: the bucket holds five tokens and refills one a second.
    let mut burst = Vec::new();
    for id in 101..=120u64 {
        let order = limit(2, BTC_USD, Side::Buy, 5_900_000 + id as i64, 1, id);
        ClientMsg::NewOrder(order).encode_into(id, &mut burst);
    }
    alice.write(&burst);
    let (mut accepted, mut limited, mut holds) = (Vec::new(), Vec::new(), 0);
    let deadline = Instant::now() + WAIT;
    while accepted.len() + limited.len() < 20 || holds < accepted.len() {
        assert!(Instant::now() < deadline, "20 outcomes within {WAIT:?}");
        match alice.expect().msg {
            ServerMsg::ExecReport(r) => match r.event {
                Event::Accepted(a) => {
                    assert_eq!(a.client_order_id.0, r.request_id);
                    accepted.push(r.request_id);
                }
                Event::Balance(_) => holds += 1,
                other => panic!("unexpected report {other:?}"),
            },
            ServerMsg::SessionReject(reject) => {
                assert_eq!(reject.reason, SessionReason::RateLimited.code());
                assert_eq!(reject.ref_type, msg::NEW_ORDER);
                assert_eq!(reject.ref_client_id, reject.ref_request_id);
                limited.push(reject.ref_request_id);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    limited.sort_unstable();
    assert_eq!(accepted, (101..=105).collect::<Vec<_>>(), "the first five take the burst");
    assert_eq!(limited, (106..=120).collect::<Vec<_>>(), "the other fifteen are dropped");

    // Rate-limited messages do not spend the error budget (10): the session is alive,
    // and its logout is answered as a logout, not as too many errors.
    alice.send(&ClientMsg::Logout);
    assert!(matches!(alice.expect().msg, ServerMsg::Logout(0)));
    alice.expect_closed();

    let mut check = common::login(addr, "alice");
    let open = common::open_orders(&mut check, AccountId(2));
    let mut ids: Vec<u64> = open.iter().map(|o| o.client_order_id.0).collect();
    ids.sort_unstable();
    assert_eq!(ids, (101..=105).collect::<Vec<_>>(), "only the accepted five reached the engine");
    server.stop().unwrap();
}

#[test]
fn a_half_closed_connection_still_gets_its_logout_notice() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(&common::config(dir.path()));
    let addr = server.local_addr();
    let wrong_version = raw_frame(msg::QUERY, 2, 0, 1, &[]);
    let mut logout = Vec::new();
    ClientMsg::Logout.encode_into(1, &mut logout);
    let mut missing = Vec::new();
    for round in 0..20 {
        for (bytes, reason) in [(&wrong_version, 903), (&logout, 0)] {
            let (mut raw, _, _) = Raw::login(addr, "alice", 60_000, false);
            raw.write(bytes);
            raw.shutdown_write();
            match raw.recv() {
                Incoming::Msg(Received { msg: ServerMsg::Logout(r), .. }) if r == reason => {
                    raw.expect_closed()
                }
                other => missing.push((round, reason, other)),
            }
        }
    }
    assert!(missing.is_empty(), "{} of 40 notices missing: {missing:?}", missing.len());
    server.stop().unwrap();
}

/// A user name or secret longer than the login's fields is refused by the client
/// before it connects, not cut short into another name or secret.
#[test]
fn an_overlong_user_name_or_secret_is_refused_before_connecting() {
    // A listener that only counts connections (none are expected).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let long_secret = format!("alice-secret{}", "x".repeat(60));
    let long_name = "a".repeat(33);
    for (user, secret, what, len, max) in [
        ("alice", long_secret.as_str(), "secret", 72, 64),
        (long_name.as_str(), "secret", "user name", 33, 32),
    ] {
        match Client::connect(addr, user, secret, LoginOptions::default()) {
            Err(ClientError::TooLong(w, l, m)) => assert_eq!((w, l, m), (what, len, max)),
            Err(other) => panic!("{what}: {other}"),
            Ok(_) => panic!("{what}: logged in"),
        }
    }
    let accepted = listener.accept().map(|_| ()).map_err(|e| e.kind());
    assert_eq!(accepted, Err(std::io::ErrorKind::WouldBlock), "nothing connected");
}
