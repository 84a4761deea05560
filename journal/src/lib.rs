//! # fincore-journal
//!
//! The append-only log that makes fincore recoverable: opaque byte records in
//! memory-mapped segment files, checksummed and hash-chained. It knows nothing about
//! commands. Not built yet: see issue "Journal, snapshots and deterministic replay".
