//! # fincore-benches
//!
//! Criterion benchmarks (`cargo bench -p fincore-benches`):
//!
//! - `book`: the order book alone (price levels and the order table, no money):
//!   add, cancel, and a pre-generated mixed stream.
//! - `engine`: whole commands through `Engine::apply` with risk checks and settlement:
//!   passive order + cancel, aggressive match of 1 and 10 levels, amend, and the
//!   realistic mix also used by `fincore bench engine`.
//! - `peers` (not criterion; `cargo bench -p fincore-benches --bench peers`): one seeded
//!   order stream through fincore's matching core, `Engine::apply`, and the order-book
//!   crates `lobster`, `orderbook-rs` and `matchcore`, with every fill compared against
//!   fincore's (BENCHMARKS.md, "Peer comparison").
//!
//! Each group has a `baseline` that measures the harness itself (building a command and
//! clearing the event buffer), so its cost can be told apart from the engine's.
