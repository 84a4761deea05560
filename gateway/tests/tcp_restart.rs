//! Stopping and restarting a server on the same data directory (127.0.0.1, ephemeral
//! ports, temporary directory): after trading (resting orders of several users, fills)
//! and a clean stop, the restarted server reports the stop's sequence and state hash,
//! and its balances, open orders and depth, queried over TCP, are exactly the ones before
//! the stop (payments too: an account's history, a pending authorization); trading goes on
//! with order, trade and payment ids continuing, not reused, and a payment sent again
//! with its client payment id is recognised as a retry. A second
//! restart with the snapshots deleted rebuilds the same state from the journal alone.
//! Sessions connected at the stop get `Logout` 915; for those that asked for
//! cancel-on-disconnect the shutdown cancels the user's orders first (journaled, so they
//! stay cancelled after the restart; `docs/PROTOCOL.md`, "Cancel-on-disconnect").

mod common;

use common::{
    BTC_USD, ETH_USD, applied_seq, balances, command, limit, open_orders, payment_balances,
};
use fincore_engine::{
    AccountId, ClientPaymentId, Event, LevelChanged, OrderInfo, PaymentAction, Query, Side,
};
use fincore_gateway::client::{Client, ClientError, LoginOptions, Received};
use fincore_gateway::server::{self, ServerError, ServerHandle, ServerOptions};
use fincore_gateway::snapshot_dir;
use fincore_gateway::wire::{ClientMsg, ServerMsg, SessionReason};
use std::net::SocketAddr;

const ACCOUNTS: [(&str, AccountId); 4] = [
    ("admin", AccountId(1)),
    ("alice", AccountId(2)),
    ("bob", AccountId(3)),
    ("carol", AccountId(4)),
];

/// Everything a client can see of the state.
#[derive(Debug, PartialEq, Eq)]
struct View {
    balances: Vec<Vec<(i64, i64, i64)>>,
    orders: Vec<Vec<OrderInfo>>,
    payments: Vec<Vec<Event>>,
    depth: Vec<Vec<LevelChanged>>,
    seq: u64,
}

fn view(addr: SocketAddr) -> View {
    let mut balances_of = Vec::new();
    let mut orders_of = Vec::new();
    let mut payments_of = Vec::new();
    let mut seq = 0;
    for (user, account) in ACCOUNTS {
        let mut client = common::login(addr, user);
        balances_of.push(payment_balances(&mut client, account));
        orders_of.push(open_orders(&mut client, account));
        payments_of.push(common::query(&mut client, Query::Payments { account, limit: 1_000 }));
        seq = applied_seq(&mut client);
    }
    let mut client = common::login(addr, "carol");
    let depth = vec![common::depth(&mut client, BTC_USD), common::depth(&mut client, ETH_USD)];
    View { balances: balances_of, orders: orders_of, payments: payments_of, depth, seq }
}

fn transfer(debit: u32, credit: u32, amount: i64, id: u64) -> ClientMsg {
    ClientMsg::Transfer(fincore_engine::Transfer {
        debit: AccountId(debit),
        credit: AccountId(credit),
        asset: common::USD,
        amount,
        client_payment_id: ClientPaymentId(id),
    })
}

fn authorize(debit: u32, credit: u32, amount: i64, id: u64) -> ClientMsg {
    ClientMsg::Authorize(fincore_engine::Authorize {
        debit: AccountId(debit),
        credit: AccountId(credit),
        asset: common::USD,
        amount,
        client_payment_id: ClientPaymentId(id),
        timeout_s: 0,
    })
}

/// The action and payment id of a command's first event, a `Payment`.
fn paid(events: &[Event]) -> (PaymentAction, u64) {
    let (action, info) = common::payment_of(&events[0]);
    (action, info.payment_id.0)
}

/// Lots filled so far of alice's live order with client id `coid`.
fn filled(view: &View, coid: u64) -> i64 {
    let alice = &view.orders[1];
    alice.iter().find(|o| o.client_order_id.0 == coid).expect("alice's order").filled.0
}

/// Places an order and returns its events.
fn place(client: &mut Client, order: fincore_engine::NewOrder) -> Vec<Event> {
    let events = command(client, order.into());
    assert!(matches!(events[0], Event::Accepted(_)), "{events:?}");
    events
}

fn order_id(events: &[Event]) -> u64 {
    match events[0] {
        Event::Accepted(a) => a.order_id.0,
        other => panic!("{other:?}"),
    }
}

fn trade_ids(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Fill(f) => Some(f.trade_id.0),
            _ => None,
        })
        .collect()
}

/// The server's goodbye to a session still connected when it stops.
fn expect_shutdown_notice(client: &mut Client) {
    loop {
        match client.recv() {
            // An idle session may get a heartbeat first.
            Ok(Received { msg: ServerMsg::Heartbeat, .. }) => {}
            Err(ClientError::LoggedOut(reason)) => {
                assert_eq!(reason, SessionReason::ServerShutdown.code());
                return;
            }
            other => panic!("expected Logout 915, got {other:?}"),
        }
    }
}

fn start(config: &fincore_gateway::config::ServerConfig) -> (ServerHandle, SocketAddr, u64, u64) {
    let (server, started) = common::start_full(config);
    let addr = server.local_addr();
    (server, addr, started.seq, started.state_hash)
}

#[test]
fn a_restart_restores_the_state_and_ids_continue() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::config(dir.path());

    // First run: a partial fill, resting orders of three users on both instruments.
    let (server, addr, seq, _) = start(&config);
    assert_eq!(seq, common::SETUP_SEQ);
    let mut alice = common::login(addr, "alice");
    let mut bob = common::login(addr, "bob");
    let mut carol = common::login(addr, "carol");
    let mut ids = Vec::new();
    ids.push(order_id(&place(&mut alice, limit(2, BTC_USD, Side::Buy, 6_000_000, 300, 1))));
    let sell = place(&mut bob, limit(3, BTC_USD, Side::Sell, 6_000_000, 100, 1));
    ids.push(order_id(&sell));
    let mut trades = trade_ids(&sell);
    assert_eq!(trades.len(), 1, "bob's sell fills against alice's bid");
    assert!(matches!(common::unsolicited(&mut alice)[0], Event::Fill(_)));
    ids.push(order_id(&place(&mut bob, limit(3, BTC_USD, Side::Sell, 6_100_000, 250, 2))));
    ids.push(order_id(&place(&mut carol, limit(4, ETH_USD, Side::Buy, 300_000, 1_000, 3))));
    ids.push(order_id(&place(&mut alice, limit(2, ETH_USD, Side::Sell, 310_000, 500, 4))));
    // Payments: a transfer, and an authorization left pending across the restarts.
    let first_payment = common::SETUP_PAYMENTS + 1;
    let created = PaymentAction::Created;
    assert_eq!(paid(&command(&mut bob, transfer(3, 4, 7_000_000, 1))), (created, first_payment));
    let held = command(&mut alice, authorize(2, 3, 2_000_000, 1));
    assert_eq!(paid(&held), (created, first_payment + 1));
    // The other sides are told: carol of bob's transfer, bob of alice's authorization.
    assert_eq!(common::unsolicited(&mut carol).len(), 2);
    assert_eq!(common::unsolicited(&mut bob).len(), 2);
    let before = view(addr);
    assert_eq!(before.balances[1][0].2, 2_000_000, "alice's authorization is pending");
    // Three setup deposits each, and the two payments on the sides they touch.
    assert_eq!(before.payments.iter().map(Vec::len).collect::<Vec<_>>(), [0, 4, 5, 4]);
    assert_eq!(before.orders.iter().map(Vec::len).collect::<Vec<_>>(), [0, 2, 1, 1]);
    assert_eq!(filled(&before, 1), 100, "alice's bid is partly filled");
    let exit = server.stop().unwrap();
    assert_eq!(exit.engine.seq, before.seq);
    for client in [&mut alice, &mut bob, &mut carol] {
        expect_shutdown_notice(client);
    }

    // Second run, from the stop snapshot: the same sequence, hash and view.
    let (server, addr, seq, hash) = start(&config);
    assert_eq!((seq, hash), (exit.engine.seq, exit.engine.state_hash));
    assert_eq!(view(addr), before);

    // Trading goes on; order and trade ids continue after the last ones.
    let mut alice = common::login(addr, "alice");
    let mut carol = common::login(addr, "carol");
    let sell = place(&mut carol, limit(4, BTC_USD, Side::Sell, 6_000_000, 50, 5));
    let new_order = order_id(&sell);
    assert!(ids.iter().all(|&id| id < new_order), "order id {new_order} after {ids:?}");
    let new_trades = trade_ids(&sell);
    assert_eq!(new_trades.len(), 1);
    assert!(new_trades[0] > trades[0], "trade id {new_trades:?} after {trades:?}");
    trades.extend(new_trades);
    let fill = common::unsolicited(&mut alice);
    assert!(matches!(fill[0], Event::Fill(f) if f.maker_client_id.0 == 1 && f.qty.0 == 50));
    // Client payment ids are kept: the transfer and the authorization, sent again, are
    // retries; payment ids continue. The pending authorization can still be captured.
    let mut bob = common::login(addr, "bob");
    let duplicate = PaymentAction::Duplicate;
    let retry = command(&mut bob, transfer(3, 4, 7_000_000, 1));
    assert_eq!((paid(&retry), retry.len()), ((duplicate, first_payment), 1));
    let retry = command(&mut alice, authorize(2, 3, 2_000_000, 1));
    assert_eq!((paid(&retry), retry.len()), ((duplicate, first_payment + 1), 1));
    assert_eq!(common::unsolicited(&mut bob), [], "a retry is told to its sender only");
    let next = command(&mut bob, transfer(3, 4, 1_000_000, 2));
    assert_eq!(paid(&next), (created, first_payment + 2));
    let capture = ClientMsg::Capture(fincore_gateway::wire::Capture {
        account: AccountId(3),
        payment: fincore_engine::PaymentRef::Id(fincore_engine::PaymentId(first_payment + 1)),
        amount: 0,
    });
    let captured = command(&mut bob, capture);
    assert_eq!(paid(&captured), (PaymentAction::Captured, first_payment + 1));
    assert_eq!(common::unsolicited(&mut alice).len(), 2, "the capture and alice's balance");
    let after = view(addr);
    assert_eq!(after.seq, before.seq + 5);
    assert_eq!(after.balances[1][0].2, 0, "alice's authorization is captured");
    // Bob: the capture in, his second transfer out (his USD is not in any order).
    let (available, held, pending) = before.balances[2][0];
    assert_eq!(after.balances[2][0], (available + 2_000_000 - 1_000_000, held, pending));
    assert_eq!(filled(&after, 1), 150);
    let exit = server.stop().unwrap();
    expect_shutdown_notice(&mut alice);

    // Third run, without any snapshot: the journal alone gives the same state.
    for entry in std::fs::read_dir(snapshot_dir(dir.path())).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let (server, addr, seq, hash) = start(&config);
    assert_eq!((seq, hash), (exit.engine.seq, exit.engine.state_hash));
    assert_eq!(view(addr), after);
    let mut bob = common::login(addr, "bob");
    let last = place(&mut bob, limit(3, BTC_USD, Side::Sell, 6_200_000, 1, 9));
    assert!(order_id(&last) > new_order);
    server.stop().unwrap();
}

#[test]
fn a_shutdown_runs_cancel_on_disconnect_before_the_last_journal_record() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::config(dir.path());
    let (server, addr, _, _) = start(&config);
    let options = LoginOptions { cancel_on_disconnect: true, ..Default::default() };
    let mut bob = common::login_with(addr, "bob", options);
    let mut carol = common::login(addr, "carol");
    place(&mut bob, limit(3, BTC_USD, Side::Sell, 6_100_000, 250, 1));
    place(&mut bob, limit(3, ETH_USD, Side::Sell, 310_000, 1_000, 2));
    place(&mut carol, limit(4, BTC_USD, Side::Sell, 6_200_000, 100, 3));
    let seq = applied_seq(&mut bob);
    let exit = server.stop().unwrap();
    assert_eq!(exit.engine.seq, seq + 1, "one MassCancel journaled for bob's account");

    // Bob's session is told (request id 0) before its 915 notice; carol's only gets 915.
    let mut cancelled = Vec::new();
    loop {
        match bob.recv() {
            Ok(Received { msg: ServerMsg::Heartbeat, .. }) => {}
            Ok(received) => match received.event() {
                Some(Event::Cancelled(c)) => cancelled.push(c.client_order_id.0),
                Some(Event::Balance(_)) => {}
                Some(Event::MassCancelled { account, count }) => {
                    assert_eq!((*account, *count), (AccountId(3), 2))
                }
                _ => panic!("unexpected {received:?}"),
            },
            Err(ClientError::LoggedOut(reason)) => {
                assert_eq!(reason, SessionReason::ServerShutdown.code());
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(cancelled, [1, 2]);
    expect_shutdown_notice(&mut carol);

    // After the restart bob has nothing resting and all his money free; carol's order,
    // entered without the flag, is still there.
    let (server, addr, seq, hash) = start(&config);
    assert_eq!((seq, hash), (exit.engine.seq, exit.engine.state_hash));
    let mut bob = common::login(addr, "bob");
    assert!(open_orders(&mut bob, AccountId(3)).is_empty());
    let free = [(common::USD_0, 0), (common::BTC_0, 0), (common::ETH_0, 0)];
    assert_eq!(balances(&mut bob, AccountId(3)), free);
    let mut carol = common::login(addr, "carol");
    let orders = open_orders(&mut carol, AccountId(4));
    assert_eq!(orders.iter().map(|o| o.client_order_id.0).collect::<Vec<_>>(), [3]);
    server.stop().unwrap();
}

/// An authorization whose deadline passes while the server is down expires right after
/// the restart (the idle engine journals a `Tick` as its first command), not before:
/// the stopped journal still has it pending. A replay of the journal alone expires the
/// same payment at the same sequence number and reaches the live state hash.
#[test]
fn an_authorization_falling_due_while_the_server_is_down_expires_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::config(dir.path());
    let (server, addr, _, _) = start(&config);
    let mut alice = common::login(addr, "alice");
    let body = fincore_engine::Authorize {
        debit: AccountId(2),
        credit: AccountId(3),
        asset: common::USD,
        amount: 3_000_000,
        client_payment_id: ClientPaymentId(41),
        // 2 s: the stop below must come before the deadline, even on a loaded machine.
        timeout_s: 2,
    };
    let replies = command(&mut alice, ClientMsg::Authorize(body));
    let (action, held) = common::payment_of(&replies[0]);
    assert_eq!(action, PaymentAction::Created);
    drop(alice);
    let stopped = server.stop().unwrap();
    let stopped_seq = stopped.engine.seq;

    // Down past the deadline.
    let now = || {
        let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        wall.as_nanos() as u64
    };
    while now() <= held.deadline_ns {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (server, addr, seq, _) = start(&config);
    assert_eq!(seq, stopped_seq, "the restart applied nothing new by itself");
    let mut alice = common::login(addr, "alice");
    let payment = Query::Payment {
        account: AccountId(2),
        payment: fincore_engine::PaymentRef::Id(held.payment_id),
    };
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let expired = loop {
        let answer = common::query(&mut alice, payment);
        let Event::PaymentInfo(info) = answer[0] else { panic!("{answer:?}") };
        if info.status != fincore_engine::PaymentStatus::Pending {
            break info;
        }
        assert!(std::time::Instant::now() < give_up, "never expired: {info:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(expired.status, fincore_engine::PaymentStatus::Expired);
    assert!(expired.resolved_ns >= held.deadline_ns, "{expired:?}");
    assert_eq!(payment_balances(&mut alice, AccountId(2))[0].2, 0, "nothing pending");
    assert_eq!(applied_seq(&mut alice), stopped_seq + 1, "one Tick");
    drop(alice);
    let exit = server.stop().unwrap();

    // The journal alone: pending up to the stop, expired by the Tick right after.
    let bounds = fincore_gateway::ReplayBounds { no_snapshot: true, ..Default::default() };
    let replayed = fincore_gateway::replay(dir.path(), bounds).unwrap();
    assert_eq!(replayed.engine.state_hash(), exit.engine.state_hash);
    assert_eq!(replayed.engine.payment(held.payment_id), Some(expired));
    let before = fincore_gateway::ReplayBounds {
        until_seq: Some(stopped_seq),
        no_snapshot: true,
        ..Default::default()
    };
    let at_stop = fincore_gateway::replay(dir.path(), before).unwrap();
    assert_eq!(at_stop.engine.state_hash(), stopped.engine.state_hash);
    assert_eq!(at_stop.engine.payment(held.payment_id), Some(held), "pending at the stop");
}

#[test]
fn a_start_that_cannot_listen_touches_no_data_directory() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut config = common::config(&data);

    config.listen = taken_addr;
    let refused = server::start(&config, ServerOptions::default()).err().expect("port in use");
    assert!(matches!(refused, ServerError::Bind("listen", at, _) if at == taken_addr));
    let message = refused.to_string();
    assert!(message.starts_with(&format!("cannot bind the listen address {taken_addr}: ")));
    assert!(!data.exists(), "the data directory was created by a start that failed");

    config.listen = "127.0.0.1:0".parse().unwrap();
    let options = ServerOptions { metrics: Some(taken_addr), ..ServerOptions::default() };
    let refused = server::start(&config, options).err().expect("metrics port in use");
    assert!(matches!(refused, ServerError::Bind("metrics", at, _) if at == taken_addr));
    assert!(!data.exists(), "the data directory was created by a start that failed");

    // With both addresses free, the same configuration starts.
    drop(common::start(&config));
    assert!(data.join("journal").is_dir());
}

/// Nothing connects while the server recovers: the listen address is claimed (bound)
/// from the start, but listened on only once the journal is replayed, so a client that
/// tries meanwhile is refused at once instead of waiting in the backlog for a server
/// that cannot answer yet (docs/OPERATIONS.md, "Running it").
#[test]
fn no_connection_is_accepted_while_the_server_recovers() {
    use fincore_engine::{AssetId, CommandBody, UserId};
    use fincore_gateway::{Origin, Runner};
    use std::time::{Duration, Instant};
    const DEPOSITS: u64 = 300_000;

    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    // A journal whose replay takes a while: the setup, then one-unit deposits (no
    // stop snapshot, so the start replays every one of them).
    let setup = config.setup_commands().unwrap();
    let (mut runner, _) = Runner::open(&config.runner_config(), &setup).unwrap();
    let (origin, mut events) = (Origin { user: UserId(0), session: 0, peer: 0 }, Vec::new());
    for id in 0..DEPOSITS {
        events.clear();
        let body = CommandBody::Deposit {
            account: AccountId(2),
            asset: AssetId(0),
            amount: 1,
            client_payment_id: ClientPaymentId(1_000_000 + id),
        };
        runner.submit(origin, common::now_ns(), body, &mut events).unwrap();
    }
    drop(runner);

    // A port named in advance (free a moment ago), so the client knows where to knock.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    config.listen = addr;
    let began = Instant::now();
    let starting = std::thread::spawn(move || server::start(&config, ServerOptions::default()));
    let mut refused = 0u32;
    let connected_at = loop {
        match std::net::TcpStream::connect(addr) {
            Ok(_) => break began.elapsed(),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => refused += 1,
            Err(e) => panic!("connecting during the start: {e}"),
        }
        assert!(began.elapsed() < Duration::from_secs(120), "the server never listened");
        std::thread::sleep(Duration::from_millis(1));
    };
    let (handle, started) = starting.join().unwrap().expect("the server starts");
    assert_eq!(started.seq, common::SETUP_SEQ + DEPOSITS);
    // `started.elapsed` times the recovery from a moment after `began`: a connection
    // accepted during it would have come sooner.
    assert!(
        connected_at >= started.elapsed,
        "a connection was accepted {connected_at:?} after the start was called, before the \
         recovery ended ({:?})",
        started.elapsed
    );
    assert!(refused > 0, "no connection was tried while the server recovered");
    handle.stop().unwrap();
}

/// A configured user must be the data directory's user of that id with the same role:
/// otherwise the gateway would let the name in with rights the engine does not give it,
/// or as a user the engine does not know. Such a start is refused, naming the user.
/// Names and secrets are the configuration's: a secret rotated in the file is the one
/// that logs in after the restart, and a user removed from the file (one that owns no
/// account) can no longer log in.
#[test]
fn configured_users_must_match_the_data_directory() {
    use fincore_engine::Role;
    use fincore_gateway::auth::SecretHash;
    let dir = tempfile::tempdir().unwrap();
    let config = common::config(dir.path());
    common::start(&config).stop().unwrap();
    let refusal = |config: &fincore_gateway::config::ServerConfig| {
        let refused = server::start(config, ServerOptions::default()).err().expect("refused");
        assert!(matches!(refused, ServerError::UserDiffers { .. }), "{refused}");
        refused.to_string()
    };

    let mut promoted = config.clone();
    let alice = promoted.users.iter().position(|u| u.name == "alice").unwrap();
    promoted.users[alice].role = Role::Admin;
    let message = refusal(&promoted);
    assert!(
        message.starts_with(
            "configuration: user alice (id 2) is an admin in the configuration, but a trader \
             in the data directory; "
        ),
        "{message}"
    );

    let mut added = config.clone();
    let mut dave = added.users[alice].clone();
    (dave.name, dave.id) = ("dave".into(), 40);
    added.users.push(dave);
    let message = refusal(&added);
    assert!(message.contains("user dave (id 40) is a trader in the configuration, but unknown"));

    // Names and secrets: payops (who owns no account) removed, alice's secret rotated. It starts, and only the
    // configuration's credentials log in.
    let mut rotated = config.clone();
    rotated.users.retain(|u| u.name != "payops");
    let alice = rotated.users.iter().position(|u| u.name == "alice").unwrap();
    rotated.users[alice].secret_hash = SecretHash::generate(b"rotated").unwrap();
    let server = common::start(&rotated);
    let addr = server.local_addr();
    let login = |name: &str, secret: &str| {
        Client::connect(addr, name, secret, LoginOptions::default()).map(|_| ())
    };
    assert!(login("alice", "rotated").is_ok());
    assert!(matches!(login("alice", "alice-secret"), Err(ClientError::LoginRejected(906))));
    assert!(matches!(login("payops", "payops-secret"), Err(ClientError::LoginRejected(906))));
    assert!(login("bob", "bob-secret").is_ok());
    server.stop().unwrap();
}
