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
