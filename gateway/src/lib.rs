//! # fincore-gateway
//!
//! The server around the engine: the TCP gateway (`server`, `session`, `wire`,
//! `auth`), the pipeline between the gateway thread and the engine thread (`pipeline`),
//! the **runner** (journal-then-apply on the engine thread, recovery from snapshot +
//! journal on start), **replay** (rebuild a past state from a data directory without
//! touching it), the configuration (`config`), the operator's metrics (`metrics`,
//! `exporter`) and a blocking Rust client (`client`).

pub mod auth;
pub mod client;
pub mod config;
mod datadir;
pub mod exporter;
pub mod metrics;
pub mod pipeline;
mod replay;
mod runner;
pub mod server;
mod session;
pub mod wire;

pub use datadir::{journal_dir, read_limits, snapshot_dir, write_limits};
pub use replay::{
    PAYLOAD_BODY, PAYLOAD_COMMAND, ReplayBounds, Replayed, decode_record, encode_payload, replay,
    replay_observed,
};
pub use runner::{
    Origin, Runner, RunnerConfig, SNAPSHOTS_KEPT_DEFAULT, SetupDiffers, SnapshotDone, StartReport,
};

/// Errors of the runner and replay.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The journal or a snapshot file could not be used.
    #[error(transparent)]
    Journal(#[from] fincore_journal::JournalError),
    /// A file could not be read or written.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// The data directory's contents are inconsistent.
    #[error("{0}")]
    Data(String),
}
