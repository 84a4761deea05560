//! The steady-state engine does not touch the heap: after a warm-up, a long realistic
//! stream (new orders, cancels, crossing orders, market orders, fills, settlement) is
//! applied while a counting global allocator watches this thread.

// Counting allocations needs a GlobalAlloc implementation, which is an unsafe trait.
#![allow(unsafe_code)]

use fincore_engine::testkit::*;
use fincore_engine::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Forwards to the system allocator and counts allocations made by the current thread
/// (other test threads do not disturb the count).
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with` because the allocator can run during thread teardown.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// the GlobalAlloc contract is exactly System's; the counter is a const-initialised
// thread-local Cell, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged; the caller upholds alloc's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged; `ptr` came from this allocator, i.e. from System.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` came from System.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn steady_state_engine_does_not_allocate() {
    let mix = TradingMix { instruments: 4, traders: 32, commands: 400_000, seed: 11 };
    let workload = trading_workload(mix);
    let (warm_up, measured) = workload.commands.split_at(200_000);
    let mut engine = Engine::new(EngineLimits::default());
    let mut events: Vec<Event> = Vec::with_capacity(4_096);
    for command in workload.setup.iter().chain(warm_up) {
        events.clear();
        engine.apply(command, &mut events);
    }
    let mut fills = 0u64;
    let before = allocations();
    for command in measured {
        events.clear();
        engine.apply(command, &mut events);
        fills += events.iter().filter(|e| matches!(e, Event::Fill(_))).count() as u64;
    }
    let allocated = allocations() - before;
    // The measured stretch must really have exercised matching and settlement.
    assert!(fills > 10_000, "only {fills} fills");
    assert_eq!(allocated, 0, "{allocated} heap allocations in {} commands", measured.len());
    engine.check_invariants().unwrap();
}
