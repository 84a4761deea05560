//! End-to-end sanity of the realistic workload: it runs, trades, keeps every invariant,
//! and two runs of the same stream give the same state hash.

use fincore_engine::testkit::*;
use fincore_engine::*;

#[test]
fn realistic_workload_trades_and_is_deterministic() {
    let workload =
        trading_workload(TradingMix { instruments: 2, traders: 8, commands: 20_000, seed: 7 });
    let run = || {
        let mut engine = Engine::new(EngineLimits::default());
        let mut sink = CountingSink::default();
        let mut rejects = Vec::new();
        for command in workload.setup.iter().chain(&workload.commands) {
            let mut events = Vec::new();
            engine.apply(command, &mut events);
            for event in &events {
                sink.emit(*event);
                if let Event::Rejected(r) = event {
                    rejects.push(r.reason);
                }
            }
        }
        engine.check_invariants().unwrap();
        (engine.state_hash(), sink, rejects, engine.live_orders())
    };
    let (hash_a, sink, rejects, live) = run();
    let (hash_b, ..) = run();
    assert_eq!(hash_a, hash_b);
    assert!(sink.fills > 1_000, "the mix trades: {} fills", sink.fills);
    assert!(rejects.len() < 200, "few rejects: {:?}", &rejects[..rejects.len().min(10)]);
    assert!(live > 100 && live < 10_000, "book stays bounded: {live}");
}
