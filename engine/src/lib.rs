//! # fincore-engine
//!
//! The deterministic heart of fincore: a single-threaded state machine that takes
//! [`Command`]s and emits [`Event`]s. It matches orders in price-time priority, settles
//! every fill in the same step (base, quote and fees move together), and runs every risk
//! check before anything executes.
//!
//! The one design decision everything else rests on: **the state after N commands is a
//! pure function of those N commands.** There is no I/O, clock, thread or randomness in
//! this crate; time arrives on the command; hash maps use a fixed hasher and are never
//! iterated into an output. So a journal of commands is enough to rebuild the exact
//! state, and [`Engine::state_hash`] proves it.
//!
//! ```
//! use fincore_engine::*;
//!
//! let mut engine = Engine::new(EngineLimits::default());
//! let mut events = Vec::new();
//! let setup = CommandBody::CreateUser { user: UserId(7), role: Role::Trader };
//! engine.apply(&Command { seq: 1, time_ns: 0, user: SYSTEM_USER, body: setup }, &mut events);
//! assert_eq!(events, vec![Event::UserCreated { user: UserId(7), role: Role::Trader }]);
//! ```
//!
//! Map of the crate: `book/` (price levels and the order table, no money), `ledger`
//! (balances, notionals, fees, holds), `trading` (orders, matching, settlement),
//! `admin` (setup and operator commands), `query`, `hash`, `invariants`, `codec`
//! (wire format), `snapshot` (the whole state as bytes and back), `units` (decimals at
//! the edge).
//!
//! Helpers on the command path (account and ladder access, the order index, the account
//! order list, holds, the payment tables) are marked `#[inline(always)]`. The fat-LTO
//! release build left them out of line. Inlining them as a group took a transfer from
//! 753 to 632 instructions and removed a mispredicted branch from each (callgrind), and
//! the transfers benchmark gained about a quarter on the wall clock; a trading command
//! went from 883 to 795 instructions, a gain the wall clock shows only within its noise
//! (BENCHMARKS.md, session 11). Two larger callers tried the same way added instructions
//! and stay out of line.

mod admin;
pub mod book;
mod codec;
mod command;
mod engine;
mod event;
mod hash;
mod inspect;
mod invariants;
pub mod ledger;
mod limits;
mod payments;
mod query;
mod reject;
mod snapshot;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
mod trading;
mod types;
pub mod units;
mod velocity;

pub use codec::{CodecError, ENCODED_LEN_MAX, Wire};
pub use command::*;
pub use engine::{Engine, Instrument};
pub use event::*;
pub use inspect::AssetTotals;
pub use limits::{ASSETS_MAX, EngineLimits, INSTRUMENTS_MAX, LimitsError, PAYMENTS_PAGE_MAX};
pub use query::DEPTH_LEVELS_MAX;
pub use reject::RejectReason;
pub use snapshot::{SNAPSHOT_FORMAT_VERSION, SnapshotError};
pub use types::*;
