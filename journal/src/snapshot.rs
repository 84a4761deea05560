//! Snapshot files: an opaque state image at a sequence number, with a header and
//! checksums, written atomically (temporary file, fsync, rename, fsync directory).
//!
//! ```text
//! offset  size  field
//!      0     8  magic        "FCSNAP" 0x00 0x01
//!      8     4  version      u32 = 2
//!     12     4  journal_crc  u32, the chained checksum of journal record `seq` (0 at seq 0)
//!     16     8  seq          u64, the last command included
//!     24     8  state_hash   u64, the engine's state hash at seq
//!     32     8  payload_len  u64
//!     40     4  payload_crc  u32 CRC32C of the payload
//!     44     4  header_crc   u32 CRC32C of bytes 0..44
//!     48     n  payload
//! ```
//! Files are named `snapshot-<seq, 20 digits>.snap`; the newest `keep` are kept.
//!
//! `journal_crc` ties a snapshot to the history it summarises: the journal's checksum
//! chain covers every record up to `seq`, so a journal whose record `seq` carries
//! another checksum is another history (cut back and written again, or restored from
//! elsewhere), and the snapshot must not be used with it. Version 1 files had the field
//! reserved (zero) and load with `journal_crc: None`.

use crate::error::JournalError;
use crate::segment::sync_dir;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: [u8; 8] = *b"FCSNAP\x00\x01";
const VERSION: u32 = 2;
/// The version before `journal_crc`.
const VERSION_WITHOUT_JOURNAL_CRC: u32 = 1;
const HEADER_LEN: usize = 48;
const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".snap";

/// Snapshot files passed over while looking for a usable one, with the reason.
pub type Skipped = Vec<(PathBuf, String)>;

/// A snapshot as loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Sequence of the last command it includes.
    pub seq: u64,
    /// State hash at that sequence.
    pub state_hash: u64,
    /// The chained checksum of journal record `seq` when the snapshot was written;
    /// `None` in a version 1 file, which did not record it.
    pub journal_crc: Option<u32>,
    /// The state image.
    pub payload: Vec<u8>,
}

/// The snapshots of one data directory.
#[derive(Clone, Debug)]
pub struct SnapshotStore {
    dir: PathBuf,
    keep: usize,
}

impl SnapshotStore {
    /// Snapshots in `dir` (created if missing), keeping the newest `keep` (at least 1).
    pub fn open(dir: impl Into<PathBuf>, keep: usize) -> Result<SnapshotStore, JournalError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| JournalError::io(&dir, e))?;
        Ok(SnapshotStore { dir, keep: keep.max(1) })
    }

    /// The file a snapshot at `seq` is stored in.
    pub fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{PREFIX}{seq:020}{SUFFIX}"))
    }

    /// Writes a snapshot atomically and prunes old ones; returns its path. `journal_crc`
    /// is the chained checksum of journal record `seq` (see the module documentation).
    pub fn write(
        &self,
        seq: u64,
        state_hash: u64,
        journal_crc: u32,
        payload: &[u8],
    ) -> Result<PathBuf, JournalError> {
        let path = self.path(seq);
        let temporary = self.dir.join(format!(".{PREFIX}{seq:020}.tmp"));
        let io = |e| JournalError::io(&temporary, e);
        let mut file = std::fs::File::create(&temporary).map_err(io)?;
        let written = file
            .write_all(&encode_header(seq, state_hash, journal_crc, payload))
            .and_then(|()| file.write_all(payload))
            .and_then(|()| file.sync_all());
        drop(file);
        crate::segment::removed_on_error(&temporary, written).map_err(io)?;
        std::fs::rename(&temporary, &path).map_err(|e| JournalError::io(&path, e))?;
        sync_dir(&self.dir)?;
        self.prune(seq)?;
        Ok(path)
    }

    /// Snapshot files, newest first: (seq from the name, path).
    pub fn list(&self) -> Result<Vec<(u64, PathBuf)>, JournalError> {
        let mut found = Vec::new();
        let entries = std::fs::read_dir(&self.dir).map_err(|e| JournalError::io(&self.dir, e))?;
        for entry in entries {
            let path = entry.map_err(|e| JournalError::io(&self.dir, e))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let seq = name.strip_prefix(PREFIX).and_then(|n| n.strip_suffix(SUFFIX));
            if let Some(seq) = seq.and_then(|s| s.parse::<u64>().ok()) {
                found.push((seq, path));
            }
        }
        found.sort_by(|a, b| b.cmp(a));
        Ok(found)
    }

    /// Deletes all but the newest `keep` snapshots at or below `seq`, the one just
    /// written. Files above it summarise records that are gone (a journal cut back and
    /// written again): recovery passes them over, and they must not count toward
    /// `keep`, or every new snapshot would be pruned as soon as it is written.
    fn prune(&self, seq: u64) -> Result<(), JournalError> {
        let current = self.list()?.into_iter().filter(|(at, _)| *at <= seq);
        for (_, path) in current.skip(self.keep) {
            std::fs::remove_file(&path).map_err(|e| JournalError::io(&path, e))?;
        }
        Ok(())
    }

    /// Loads and checks one snapshot file.
    pub fn load(path: &Path) -> Result<Snapshot, JournalError> {
        let bytes = std::fs::read(path).map_err(|e| JournalError::io(path, e))?;
        decode(&bytes).map_err(|(offset, reason)| JournalError::corrupt(path, offset, reason))
    }

    /// The newest snapshot that passes its checks and `accept` (the caller's own check,
    /// e.g. that the engine can rebuild from it), and the ones skipped on the way with
    /// why. `None` when no snapshot is usable: recovery is then a full replay.
    pub fn load_newest(
        &self,
        mut accept: impl FnMut(&Snapshot) -> Result<(), String>,
    ) -> Result<(Option<Snapshot>, Skipped), JournalError> {
        let mut skipped = Vec::new();
        for (name_seq, path) in self.list()? {
            match SnapshotStore::load(&path) {
                Ok(snapshot) if snapshot.seq != name_seq => {
                    let why =
                        format!("file name says seq {name_seq}, header says {}", snapshot.seq);
                    skipped.push((path, why));
                }
                Ok(snapshot) => match accept(&snapshot) {
                    Ok(()) => return Ok((Some(snapshot), skipped)),
                    Err(reason) => skipped.push((path, reason)),
                },
                Err(error) => skipped.push((path, error.to_string())),
            }
        }
        Ok((None, skipped))
    }
}

fn encode_header(seq: u64, state_hash: u64, journal_crc: u32, payload: &[u8]) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[0..8].copy_from_slice(&MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&journal_crc.to_le_bytes());
    out[16..24].copy_from_slice(&seq.to_le_bytes());
    out[24..32].copy_from_slice(&state_hash.to_le_bytes());
    out[32..40].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    out[40..44].copy_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    let header_crc = crc32c::crc32c(&out[0..44]);
    out[44..48].copy_from_slice(&header_crc.to_le_bytes());
    out
}

/// Decodes a snapshot file's bytes; the error is (offset, what was expected).
fn decode(bytes: &[u8]) -> Result<Snapshot, (u64, String)> {
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Err((
            0,
            format!("{} bytes, shorter than the {HEADER_LEN}-byte header", bytes.len()),
        ));
    };
    let u32_at = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().expect("4"));
    let u64_at = |i: usize| u64::from_le_bytes(header[i..i + 8].try_into().expect("8"));
    if header[0..8] != MAGIC {
        return Err((0, "not a fincore snapshot (bad magic)".into()));
    }
    if u32_at(44) != crc32c::crc32c(&header[0..44]) {
        return Err((44, "header checksum mismatch".into()));
    }
    let journal_crc = match u32_at(8) {
        VERSION => Some(u32_at(12)),
        VERSION_WITHOUT_JOURNAL_CRC => None,
        other => return Err((8, format!("unsupported snapshot version {other}"))),
    };
    let payload = &bytes[HEADER_LEN..];
    if payload.len() as u64 != u64_at(32) {
        return Err((
            32,
            format!("payload is {} bytes, header says {}", payload.len(), u64_at(32)),
        ));
    }
    if crc32c::crc32c(payload) != u32_at(40) {
        return Err((HEADER_LEN as u64, "payload checksum mismatch".into()));
    }
    Ok(Snapshot { seq: u64_at(16), state_hash: u64_at(24), journal_crc, payload: payload.to_vec() })
}
