//! Hostile input: valid commands with random bytes flipped, and random byte strings,
//! are decoded and (when they decode) applied. Nothing may panic, every invariant must
//! keep holding, and a rejected command must emit exactly one `Rejected` event.

use fincore_engine::testkit::*;
use fincore_engine::*;

/// Decodes `bytes` as a command and, if it decodes, applies it as the next command.
fn try_apply(engine: &mut Engine, bytes: &[u8], events: &mut Vec<Event>) -> bool {
    let Ok(mut command) = Command::decode(bytes) else { return false };
    // The sequencer, not the client, owns seq: a decoded command gets the next one.
    command.seq = engine.last_seq() + 1;
    events.clear();
    engine.apply(&command, events);
    let rejected = events.iter().filter(|e| matches!(e, Event::Rejected(_))).count();
    assert!(rejected == 0 || events.len() == 1, "a reject comes alone: {events:?}");
    true
}

#[test]
fn mutated_and_random_commands_never_break_the_engine() {
    let limits = EngineLimits { orders_max: 4_096, accounts_max: 4_096, ..EngineLimits::default() };
    let mut engine = Engine::new(limits);
    let workload =
        trading_workload(TradingMix { instruments: 2, traders: 8, commands: 20_000, seed: 3 });
    let mut events = Vec::new();
    for command in &workload.setup {
        engine.apply(command, &mut events);
    }
    let mut rng = Rng::new(99);
    let (mut decoded, mut applied_ok) = (0u32, 0u32);
    for step in 0..200_000u32 {
        let template = &workload.commands[rng.below(workload.commands.len() as u64) as usize];
        let mut bytes = template.encode();
        if rng.percent(5) {
            // Entirely random bytes of a plausible length.
            bytes = (0..rng.range(0, 120)).map(|_| rng.next_u64() as u8).collect();
        } else {
            for _ in 0..rng.range(1, 3) {
                let at = rng.below(bytes.len() as u64) as usize;
                bytes[at] = rng.next_u64() as u8;
            }
        }
        if try_apply(&mut engine, &bytes, &mut events) {
            decoded += 1;
            if !matches!(events.first(), Some(Event::Rejected(_))) {
                applied_ok += 1;
            }
        }
        if step % 1_000 == 0 {
            engine.check_invariants().unwrap();
        }
    }
    engine.check_invariants().unwrap();
    // The mutations must reach the engine, and some must still be valid commands.
    assert!(decoded > 50_000, "only {decoded} decoded");
    assert!(applied_ok > 1_000, "only {applied_ok} accepted");
}
