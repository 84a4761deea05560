//! Binary encoding of commands, queries and events in the bincode wire format
//! (little-endian, fixed-width integers, `u32` enum tags, `u8` 0/1 for bool and
//! `Option`), through `wincode`. Every type's layout is pinned by golden-byte tests in
//! `engine/tests/codec_golden.rs` and documented in `docs/PROTOCOL.md`.
//!
//! Decoding never panics: truncated input, trailing bytes, unknown enum tags and
//! invalid booleans are all [`CodecError`]s.

use crate::command::{Command, CommandBody, Query};
use crate::event::Event;
use wincode::{SchemaRead, SchemaWrite};

/// Why bytes could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// The bytes are not a valid encoding of the expected type.
    Invalid(String),
    /// The output buffer is too small.
    BufferTooSmall,
}

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CodecError::Invalid(why) => write!(f, "invalid encoding: {why}"),
            CodecError::BufferTooSmall => f.write_str("output buffer too small"),
        }
    }
}

impl std::error::Error for CodecError {}

/// The largest encoded size of any command, query or event, in bytes. Buffers of this
/// size never overflow; a test checks every variant against it.
pub const ENCODED_LEN_MAX: usize = 256;

/// A type with a fixed wire layout.
pub trait Wire: Sized + SchemaWrite<wincode::config::DefaultConfig, Src = Self>
where
    Self: for<'de> SchemaRead<'de, wincode::config::DefaultConfig, Dst = Self>,
{
    /// Appends the encoding to `out`. Does not allocate if `out` has room.
    fn encode_into(&self, out: &mut Vec<u8>) {
        // Writing into a Vec only fails on allocation failure, which aborts anyway.
        wincode::serialize_into(&mut *out, self).expect("encoding into a Vec cannot fail");
    }

    /// The encoding as a new vector.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.encode_into(&mut out);
        out
    }

    /// Encodes into a fixed buffer; returns the length written.
    fn encode_to_slice(&self, out: &mut [u8]) -> Result<usize, CodecError> {
        let len = wincode::serialized_size(self).map_err(|_| CodecError::BufferTooSmall)? as usize;
        if len > out.len() {
            return Err(CodecError::BufferTooSmall);
        }
        wincode::serialize_into(&mut out[..len], self).map_err(|_| CodecError::BufferTooSmall)?;
        Ok(len)
    }

    /// Decodes exactly `bytes` (trailing bytes are an error).
    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        wincode::deserialize_exact(bytes).map_err(|e| CodecError::Invalid(e.to_string()))
    }
}

impl Wire for Command {}
impl Wire for CommandBody {}
impl Wire for Query {}
impl Wire for Event {}
