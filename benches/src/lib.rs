//! # fincore-benches
//!
//! Criterion benchmarks (`cargo bench -p fincore-benches`):
//!
//! - `book`: the order book alone (price levels and the order table, no money):
//!   add, cancel, and a pre-generated mixed stream.
//! - `engine`: whole commands through `Engine::apply` with risk checks and settlement:
//!   passive order + cancel, aggressive match of 1 and 10 levels, amend, and the
//!   realistic mix also used by `fincore bench engine`.
//!
//! Each group has a `baseline` that measures the harness itself (building a command and
//! clearing the event buffer), so its cost can be told apart from the engine's.
