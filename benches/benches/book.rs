//! The order book alone: what price-time priority costs without risk or money.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use fincore_engine::book::{Ladder, Order, OrderStore, Slot};
use fincore_engine::testkit::Rng;
use fincore_engine::*;
use std::hint::black_box;

const MID: i64 = 10_000;

fn order(id: u64, side: Side, price: i64, qty: i64) -> Order {
    Order {
        id: OrderId(id),
        account: AccountId(1),
        instrument: InstrumentId(0),
        client_order_id: ClientOrderId(id),
        side,
        price: Price(price),
        remaining: Qty(qty),
        ..Order::EMPTY
    }
}

/// A bid ladder with `orders` resting orders spread over 50 levels below the mid.
fn standing_book(orders: usize) -> (Ladder, OrderStore, Vec<Slot>) {
    let mut ladder = Ladder::new(Side::Buy, 4_096);
    let mut store = OrderStore::with_capacity(1 << 16);
    let mut rng = Rng::new(3);
    let mut slots = Vec::new();
    for id in 0..orders as u64 {
        let slot = store.insert(order(id, Side::Buy, MID - rng.range(1, 50), 10)).unwrap();
        ladder.push(&mut store, slot);
        slots.push(slot);
    }
    (ladder, store, slots)
}

/// One book operation of the mixed stream.
#[derive(Clone, Copy)]
enum Op {
    Add(i64),
    Cancel(usize),
    TakeBest,
}

/// 50 % adds near the touch, 40 % cancels of random live orders, 10 % removals from the
/// best level (what a fill does to the book).
fn mixed_ops(count: usize) -> Vec<Op> {
    let mut rng = Rng::new(5);
    (0..count)
        .map(|_| match rng.below(10) {
            0..=4 => Op::Add(MID - rng.range(1, 50)),
            5..=8 => Op::Cancel(rng.below(1 << 20) as usize),
            _ => Op::TakeBest,
        })
        .collect()
}

/// Live slots with O(1) removal: `position[slot]` is the slot's index in `live`.
struct Live {
    live: Vec<Slot>,
    position: Vec<usize>,
}

impl Live {
    fn new(slots: Vec<Slot>) -> Live {
        let mut position = vec![usize::MAX; 1 << 16];
        for (i, slot) in slots.iter().enumerate() {
            position[*slot as usize] = i;
        }
        Live { live: slots, position }
    }

    fn push(&mut self, slot: Slot) {
        self.position[slot as usize] = self.live.len();
        self.live.push(slot);
    }

    fn remove(&mut self, slot: Slot) {
        let i = self.position[slot as usize];
        self.live.swap_remove(i);
        if let Some(moved) = self.live.get(i) {
            self.position[*moved as usize] = i;
        }
    }
}

fn run_mixed(ops: &[Op], ladder: &mut Ladder, store: &mut OrderStore, live: &mut Live) {
    let mut next_id = 1_000_000;
    for op in ops {
        let slot = match *op {
            Op::Add(price) => {
                next_id += 1;
                let slot = store.insert(order(next_id, Side::Buy, price, 10)).unwrap();
                ladder.push(store, slot);
                live.push(slot);
                continue;
            }
            Op::Cancel(pick) if !live.live.is_empty() => live.live[pick % live.live.len()],
            Op::TakeBest => match ladder.best() {
                Some(best) => best.head,
                None => continue,
            },
            Op::Cancel(_) => continue,
        };
        ladder.unlink(store, slot);
        store.remove(slot);
        live.remove(slot);
    }
}

fn book(c: &mut Criterion) {
    let mut group = c.benchmark_group("book");
    group.bench_function("baseline_build_order", |b| {
        let mut id = 0;
        b.iter(|| {
            id += 1;
            black_box(order(id, Side::Buy, MID - 1, 10))
        })
    });
    group.bench_function("add_then_cancel_1000_resting", |b| {
        let (mut ladder, mut store, _) = standing_book(1_000);
        let mut id = 10_000_000;
        b.iter(|| {
            id += 1;
            let slot = store.insert(order(id, Side::Buy, MID - 25, 10)).unwrap();
            ladder.push(&mut store, slot);
            ladder.unlink(&mut store, slot);
            black_box(store.remove(slot));
        })
    });
    let ops = mixed_ops(100_000);
    group.throughput(Throughput::Elements(ops.len() as u64));
    group.bench_function("mixed_100k_ops", |b| {
        b.iter_batched(
            || {
                let (ladder, store, slots) = standing_book(2_000);
                (ladder, store, Live::new(slots))
            },
            |(mut ladder, mut store, mut live)| {
                run_mixed(&ops, &mut ladder, &mut store, &mut live);
                black_box(ladder.len())
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, book);
criterion_main!(benches);
