//! Infrastructure errors of the journal and snapshot files.

use std::path::{Path, PathBuf};

/// Everything that can go wrong opening, reading or writing a journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// An operating-system error on a file. (The underlying error is part of the
    /// message, not a `source`, so that an error chain does not print it twice.)
    #[error("{path}: {error}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// Damage that is not a torn tail: the journal cannot be trusted past it.
    #[error("{path} at byte {offset}: {reason}")]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the problem in that file.
        offset: u64,
        /// What was found and what was expected.
        reason: String,
    },
    /// The file system could not reserve a segment's blocks (full, over quota): the
    /// segment was not created (or, for an existing one, not appended to).
    #[error(
        "{path}: cannot reserve {size} bytes on the file system for a journal segment: \
         {error} (free space, then start again)"
    )]
    Reserve {
        /// The segment file.
        path: PathBuf,
        /// The segment's size in bytes.
        size: u64,
        /// The underlying error (`No space left on device`, quota exceeded, ...).
        error: std::io::Error,
    },
    /// The caller broke the contract (wrong sequence, oversized payload).
    #[error("invalid append: {0}")]
    InvalidAppend(String),
    /// The last segment's records are in a payload format the caller cannot read
    /// ([`crate::JournalConfig::readable_formats`]); nothing was added or replaced.
    #[error(
        "{path}: payload format {format}, which this build cannot read (written by a newer \
         build?); the journal was left as it is"
    )]
    UnknownFormat {
        /// The last segment file.
        path: PathBuf,
        /// The format its header names.
        format: u32,
    },
    /// A configuration value is unusable.
    #[error("invalid journal configuration: {0}")]
    Config(String),
}

impl JournalError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> JournalError {
        JournalError::Io { path: path.to_path_buf(), error: source }
    }

    pub(crate) fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> JournalError {
        JournalError::Corrupt { path: path.to_path_buf(), offset, reason: reason.into() }
    }
}
