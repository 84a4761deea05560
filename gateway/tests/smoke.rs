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
