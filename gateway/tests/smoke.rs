//! A first round trip over TCP.

mod common;

use fincore_engine::{AccountId, Event, Side};
use fincore_gateway::wire::ServerMsg;

#[test]
fn alice_buys_from_bob() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(&common::config(dir.path()));
    let addr = server.local_addr();
    let mut alice = common::login(addr, "alice");
    let mut bob = common::login(addr, "bob");
    let buy = alice
        .limit_order(
            AccountId(2),
            "BTC-USD",
            Side::Buy,
            "60000".parse().unwrap(),
            "0.01".parse().unwrap(),
            1,
        )
        .unwrap();
    let replies = alice.request(&buy.into()).unwrap();
    println!("{replies:#?}");
    assert!(matches!(replies[0].event(), Some(Event::Accepted(_))));
    let sell = bob
        .limit_order(
            AccountId(3),
            "BTC-USD",
            Side::Sell,
            "60000".parse().unwrap(),
            "0.01".parse().unwrap(),
            1,
        )
        .unwrap();
    let replies = bob.request(&sell.into()).unwrap();
    println!("{replies:#?}");
    assert!(replies.iter().any(|r| matches!(r.event(), Some(Event::Fill(_)))));
    let fill = alice.recv().unwrap();
    println!("{fill:?}");
    assert!(matches!(fill.msg, ServerMsg::ExecReport(_)));
    let exit = server.stop().unwrap();
    println!("{exit:?}");
}

/// In `fsync` mode replies wait for the journal to be synced (the durability watcher
/// releases them); a round trip and a restart work the same.
#[test]
fn fsync_mode_round_trip_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.durability = fincore_journal::Durability::Fsync;
    let server = common::start(&config);
    let mut alice = common::login(server.local_addr(), "alice");
    for id in 1..=20 {
        let buy = alice
            .limit_order(
                AccountId(2),
                "BTC-USD",
                Side::Buy,
                "59000".parse().unwrap(),
                "0.01".parse().unwrap(),
                id,
            )
            .unwrap();
        let replies = alice.request(&buy.into()).unwrap();
        assert!(
            matches!(replies[0].event(), Some(Event::Accepted(a)) if a.client_order_id.0 == id)
        );
    }
    drop(alice);
    let exit = server.stop().unwrap();
    let (server, started) = fincore_gateway::server::start(&config, Default::default()).unwrap();
    assert_eq!((started.seq, started.state_hash), (exit.engine.seq, exit.engine.state_hash));
    let mut alice = common::login(server.local_addr(), "alice");
    let open = alice.query(fincore_engine::Query::OpenOrders { account: AccountId(2) }).unwrap();
    assert_eq!(open.len(), 20);
    server.stop().unwrap();
}

/// A full-depth query costs 41 rate-limit tokens (1 + 2 x 1000 / 50): with a burst of
/// 100, two fit and the third is refused with 908, while small messages still pass.
#[test]
fn large_queries_cost_more_tokens() {
    use fincore_gateway::wire::{ClientMsg, ServerMsg};
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.session.burst = 100;
    config.session.rate_per_sec = 1;
    let server = common::start(&config);
    let mut alice = common::login(server.local_addr(), "alice");
    let depth = ClientMsg::Query(fincore_engine::Query::Depth {
        instrument: fincore_engine::InstrumentId(0),
        levels: 1000,
    });
    let first = alice.queue(&depth);
    let second = alice.queue(&depth);
    let third = alice.queue(&depth);
    let small =
        alice.queue(&ClientMsg::Query(fincore_engine::Query::Balances { account: AccountId(2) }));
    alice.flush().unwrap();
    let (mut done, mut refused) = (Vec::new(), Vec::new());
    while done.len() + refused.len() < 4 {
        match alice.recv().unwrap().msg {
            ServerMsg::ExecReport(r) if matches!(r.event, Event::QueryDone { .. }) => {
                done.push(r.request_id)
            }
            ServerMsg::SessionReject(r) => refused.push((r.ref_request_id, r.reason)),
            _ => {}
        }
    }
    assert_eq!(done, [first, second, small]);
    assert_eq!(refused, [(third, 908)]);
    server.stop().unwrap();
}

/// A stop snapshot that cannot be written does not stop the clean shutdown: the
/// journal is still closed, clients still get their 915 notice, and the next start
/// recovers the same state from the journal alone.
#[test]
fn a_failed_stop_snapshot_still_shuts_down_cleanly() {
    use fincore_gateway::client::ClientError;
    let dir = tempfile::tempdir().unwrap();
    let config = common::config(dir.path());
    let server = common::start(&config);
    let mut alice = common::login(server.local_addr(), "alice");
    let buy = alice
        .limit_order(
            AccountId(2),
            "BTC-USD",
            Side::Buy,
            "59000".parse().unwrap(),
            "0.01".parse().unwrap(),
            1,
        )
        .unwrap();
    alice.request(&buy.into()).unwrap();
    let snapshots = fincore_gateway::snapshot_dir(dir.path());
    std::fs::remove_dir_all(&snapshots).unwrap();
    std::fs::write(&snapshots, b"not a directory").unwrap();
    let exit = server.stop().unwrap();
    assert!(exit.engine.snapshot.is_none());
    assert!(exit.engine.snapshot_error.is_some());
    assert!(matches!(alice.recv(), Err(ClientError::LoggedOut(915))));
    std::fs::remove_file(&snapshots).unwrap();
    let (server, started) = fincore_gateway::server::start(&config, Default::default()).unwrap();
    assert_eq!((started.seq, started.state_hash), (exit.engine.seq, exit.engine.state_hash));
    server.stop().unwrap();
}
