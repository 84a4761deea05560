//! # fincore-journal
//!
//! The append-only log that makes fincore recoverable: opaque byte records in
//! memory-mapped segment files of a fixed size, each record checksummed (CRC32C) and
//! chained to the one before it, plus atomic snapshot files. It knows nothing about
//! commands: the payload is whatever the caller encoded.
//!
//! The key decision: **a record's length is written last**, with a release store, into
//! space that is zero until then. A reader (or a recovery scan after a crash) stops at
//! the first zero length, so it never takes a half-written record; a damaged or torn
//! *last* record is cut off and reported; damage anywhere before it is an error that
//! names the file and the byte offset. Nothing is skipped silently.
//!
//! Layouts are documented byte by byte in `docs/JOURNAL.md` and in [`record`],
//! `segment` and [`snapshot`].

pub mod checksum;
mod error;
mod journal;
mod map;
mod prepare;
mod reader;
pub mod record;
mod scan;
mod segment;
pub mod snapshot;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::JournalError;
pub use journal::{
    Durability, DurabilityHandle, Journal, JournalConfig, Recovery, SEGMENT_SIZE_DEFAULT,
    SEGMENT_SIZE_MIN,
};
pub use reader::{JournalReader, TornTail};
pub use record::{PAYLOAD_LEN_MAX, Record, RecordMeta};
pub use segment::{SEGMENT_HEADER_LEN, list_segments, segment_path};
pub use snapshot::{Snapshot, SnapshotStore};
