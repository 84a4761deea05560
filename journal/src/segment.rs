//! Segment files: a 64-byte header, then records. Named by their first sequence number
//! (`00000000000000000001.journal`), preallocated to a fixed size, never resized.
//!
//! ```text
//! offset  size  field
//!      0     8  magic        "FCJRNL" 0x00 0x01
//!      8     4  version      u32 = 2 (1 is still read: see below)
//!     12     4  header_crc   u32 CRC32C of bytes 0..12 and 16..64
//!     16     8  first_seq    u64, sequence of the first record
//!     24     8  size         u64, file size in bytes
//!     32     4  chain_crc    u32, checksum of the record before the first (0 at the
//!                            start of the journal)
//!     36     4  payload_format  u32, chosen by the writer, the same for every record
//!                            of the segment; the journal never interprets it
//!     40    24  reserved     zero
//! ```
//!
//! Version 1 had no `payload_format` (bytes 36..64 reserved, zero); a version 1 segment
//! reads as payload format 0.

use crate::error::JournalError;
use crate::journal::SEGMENT_SIZE_MIN;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// Header bytes at the start of every segment; records begin here.
pub const SEGMENT_HEADER_LEN: usize = 64;

/// File name suffix of segments.
pub const SEGMENT_SUFFIX: &str = ".journal";

const MAGIC: [u8; 8] = *b"FCJRNL\x00\x01";
const VERSION: u32 = 2;
/// The version before `payload_format` existed: read, never written.
const VERSION_1: u32 = 1;

/// The decoded header of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Sequence of the first record.
    pub first_seq: u64,
    /// File size.
    pub size: u64,
    /// Checksum chain value before the first record.
    pub chain_crc: u32,
    /// What the payloads of this segment's records are, in the writer's terms
    /// ([`crate::JournalConfig::payload_format`]); 0 in a version 1 segment.
    pub payload_format: u32,
}

impl SegmentHeader {
    /// The 64 header bytes.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut out = [0u8; SEGMENT_HEADER_LEN];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&VERSION.to_le_bytes());
        out[16..24].copy_from_slice(&self.first_seq.to_le_bytes());
        out[24..32].copy_from_slice(&self.size.to_le_bytes());
        out[32..36].copy_from_slice(&self.chain_crc.to_le_bytes());
        out[36..40].copy_from_slice(&self.payload_format.to_le_bytes());
        let crc = header_crc(&out);
        out[12..16].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks a header; the error says what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, String> {
        let Some(bytes) = bytes.get(..SEGMENT_HEADER_LEN) else {
            return Err(format!("shorter than the {SEGMENT_HEADER_LEN}-byte header"));
        };
        if bytes[0..8] != MAGIC {
            return Err("not a fincore journal segment (bad magic)".into());
        }
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4"));
        let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8"));
        let version = u32_at(8);
        if version != VERSION && version != VERSION_1 {
            return Err(format!("unsupported segment version {version}"));
        }
        if u32_at(12) != header_crc(bytes) {
            return Err("segment header checksum mismatch".into());
        }
        if u64_at(16) == 0 {
            // Sequences start at 1; a 0 here would underflow "the sequence before".
            return Err("first sequence 0 (sequences start at 1)".into());
        }
        let first_seq = u64_at(16);
        // Half the u64 range is more sequence numbers than any journal will hold, and the
        // bound keeps every `seq + 1` in readers and the writer from overflowing.
        if first_seq > u64::MAX / 2 {
            return Err(format!("first sequence {first_seq} is out of range"));
        }
        let size = u64_at(24);
        // The writer never makes a smaller segment (`Journal::open` refuses the size),
        // and the roll-over relies on it: a record always fits an empty segment. A
        // smaller one taken as the last segment could never be appended to (its
        // roll-over named the next segment after itself; found by the `journal` fuzz
        // target, fuzz/regressions/journal/).
        if size < SEGMENT_SIZE_MIN {
            return Err(format!("segment size {size} is below the minimum {SEGMENT_SIZE_MIN}"));
        }
        let payload_format = if version == VERSION_1 { 0 } else { u32_at(36) };
        Ok(SegmentHeader { first_seq, size, chain_crc: u32_at(32), payload_format })
    }
}

fn header_crc(bytes: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&bytes[0..12]), &bytes[16..SEGMENT_HEADER_LEN])
}

/// The path of the segment whose first record is `first_seq`.
pub fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}{SEGMENT_SUFFIX}"))
}

/// Segments in `dir`, sorted by first sequence: (first_seq from the name, path).
pub fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, JournalError> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| JournalError::io(dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| JournalError::io(dir, e))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        let Some(stem) = name.strip_suffix(SEGMENT_SUFFIX) else { continue };
        match stem.parse::<u64>() {
            Ok(first_seq) if stem.len() == 20 => found.push((first_seq, path)),
            _ => {
                return Err(JournalError::corrupt(
                    &path,
                    0,
                    "segment file name is not a 20-digit sequence",
                ));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Creates a zero-filled segment of `size` bytes with its header, synced to disk.
pub fn create_segment(dir: &Path, header: &SegmentHeader) -> Result<(File, PathBuf), JournalError> {
    let path = segment_path(dir, header.first_seq);
    let file = new_segment_file(&path, header)?;
    sync_dir(dir)?;
    Ok((file, path))
}

/// Replaces the segment file of `header.first_seq` with a new one (empty, `header`) in
/// one step: the new file is made under a temporary name (which `Journal::open` removes
/// if a crash leaves it), synced, and renamed over the old one.
pub fn replace_segment(
    dir: &Path,
    header: &SegmentHeader,
    temp: &Path,
) -> Result<(File, PathBuf), JournalError> {
    let path = segment_path(dir, header.first_seq);
    let file = new_segment_file(temp, header)?;
    std::fs::rename(temp, &path).map_err(|e| JournalError::io(&path, e))?;
    sync_dir(dir)?;
    Ok((file, path))
}

/// Creates `path` (which must not exist) as a zero-filled segment file with `header`,
/// its blocks reserved ([`reserve`]), synced. On failure the file is removed, so that a
/// refused segment gives back whatever part of its size it had reserved.
fn new_segment_file(path: &Path, header: &SegmentHeader) -> Result<File, JournalError> {
    let io = |e| JournalError::io(path, e);
    let file = OpenOptions::new().read(true).write(true).create_new(true).open(path).map_err(io)?;
    let made = (|| {
        // The size never changes afterwards, so syncing data (msync) needs no metadata
        // update.
        file.set_len(header.size).map_err(io)?;
        reserve(&file, path, header.size)?;
        use std::os::unix::fs::FileExt;
        file.write_all_at(&header.encode(), 0).map_err(io)?;
        file.sync_all().map_err(io)
    })();
    removed_on_error(path, made.map(|()| file))
}

/// `made` (the making of the file at `path`), with the file removed if it failed: a
/// half-made file (a segment, a prepared file, a snapshot) must not keep the room it
/// took on a file system that has just run out of it.
pub(crate) fn removed_on_error<T, E>(path: &Path, made: Result<T, E>) -> Result<T, E> {
    if made.is_err() {
        let _ = std::fs::remove_file(path);
    }
    made
}

/// Reserves the file system blocks of all `size` bytes of a segment file
/// (`fallocate`), so that a full file system is found here, as an error, and not by a
/// later write to a mapped page, which the kernel answers with `SIGBUS`. Blocks already
/// allocated keep their contents. On a file system without `fallocate` the file stays
/// sparse, as it was before reservations (docs/OPERATIONS.md, "Disk and memory").
pub fn reserve(file: &File, path: &Path, size: u64) -> Result<(), JournalError> {
    reserve_blocks(file, size).map_err(refused(path, size))
}

/// [`reserve`] for a segment that already holds records (the last one, at open; it
/// may be sparse if an older build or a late roll-over on a file system without
/// `fallocate` made it, or if it was copied with `cp --sparse=always`). Where the
/// file system's free space is below what the file lacks, it is refused before
/// anything is allocated: a partial reservation would stay in the file, and a start
/// refused for want of room would have taken the room there was.
pub fn reserve_existing(file: &File, path: &Path, size: u64) -> Result<(), JournalError> {
    room_for_the_rest(file, size).map_err(refused(path, size))?;
    reserve(file, path, size)
}

/// Whether the file system has the free space that `file` lacks of `size` bytes.
fn room_for_the_rest(file: &File, size: u64) -> std::io::Result<()> {
    let allocated = rustix::fs::fstat(file)?.st_blocks as u64 * 512;
    let missing = size.saturating_sub(allocated);
    if missing == 0 {
        return Ok(());
    }
    let fs = rustix::fs::fstatvfs(file)?;
    let available = fs.f_bavail.saturating_mul(fs.f_frsize);
    if available < missing {
        return Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            format!("the file lacks {missing} bytes and the file system has {available} free"),
        ));
    }
    Ok(())
}

/// The error of a refused reservation of `size` bytes for `path`.
fn refused(path: &Path, size: u64) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |error| JournalError::Reserve { path: path.to_path_buf(), size, error }
}

/// [`reserve`] without the path, for the preparer's own error handling.
pub(crate) fn reserve_blocks(file: &File, size: u64) -> std::io::Result<()> {
    use rustix::fs::{FallocateFlags, fallocate};
    use rustix::io::Errno;
    loop {
        match fallocate(file, FallocateFlags::empty(), 0, size) {
            Ok(()) | Err(Errno::OPNOTSUPP | Errno::NOSYS) => return Ok(()),
            // tmpfs gives up on a pending signal (a SIGTERM at start-up, say).
            Err(Errno::INTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// Makes a directory's entries (new or renamed files) durable.
pub fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| JournalError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let header = SegmentHeader {
            first_seq: 7,
            size: SEGMENT_SIZE_MIN,
            chain_crc: 0xABCD,
            payload_format: 3,
        };
        assert_eq!(SegmentHeader::decode(&header.encode()), Ok(header));
    }

    #[test]
    fn a_version_1_header_reads_as_payload_format_0() {
        // Version 1 (before session 22) had bytes 36..64 reserved and zero.
        let header =
            SegmentHeader { first_seq: 9, size: SEGMENT_SIZE_MIN, chain_crc: 5, payload_format: 0 };
        let mut bytes = header.encode();
        bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
        let crc = header_crc(&bytes);
        bytes[12..16].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header));
        // Any other version is refused by name.
        bytes[8..12].copy_from_slice(&3u32.to_le_bytes());
        let crc = header_crc(&bytes);
        bytes[12..16].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(SegmentHeader::decode(&bytes), Err("unsupported segment version 3".into()));
    }

    #[test]
    fn a_segment_below_the_minimum_size_is_refused() {
        // Fuzz regression (fuzz/regressions/journal/): a 73-byte segment with a valid
        // header was recovered, and every append then failed on the roll-over.
        let header = SegmentHeader { first_seq: 1, size: 73, chain_crc: 0, payload_format: 0 };
        let refused = SegmentHeader::decode(&header.encode()).unwrap_err();
        assert!(refused.contains("below the minimum"), "{refused}");
    }
}
