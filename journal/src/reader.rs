//! Reading a journal from any sequence number, verifying every record on the way.

use crate::error::JournalError;
use crate::map::ReadMap;
use crate::record::Record;
use crate::scan::{ScanEnd, ScanState};
use crate::segment::{SegmentHeader, list_segments};
use std::fs::File;
use std::path::{Path, PathBuf};

/// An open segment being read.
struct Current {
    path: PathBuf,
    map: ReadMap,
    state: ScanState,
    /// Index in the segment list.
    index: usize,
    /// The segment header's payload format.
    payload_format: u32,
}

/// Iterates the records of a journal directory in sequence order, checking each one's
/// checksum, the chain and sequence continuity, and failing with file and offset on the
/// first problem. Finding the start is a binary search over the segment names (each is
/// the first sequence it holds) and a scan of one segment.
pub struct JournalReader {
    segments: Vec<(u64, PathBuf)>,
    current: Option<Current>,
    from_seq: u64,
    torn_tail: Option<TornTail>,
    /// Check the whole remainder of the last segment (see `open_strict`).
    strict: bool,
}

/// An incomplete or damaged last record at the very end of the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment file.
    pub path: PathBuf,
    /// Offset of the bad record in it.
    pub offset: u64,
    /// What was wrong with it.
    pub reason: String,
}

impl JournalReader {
    /// A reader positioned at the first record with sequence >= `from_seq`.
    pub fn open(dir: &Path, from_seq: u64) -> Result<JournalReader, JournalError> {
        let segments = list_segments(dir)?;
        // The last segment whose first sequence is <= from_seq holds it.
        let start = segments.partition_point(|(first, _)| *first <= from_seq).saturating_sub(1);
        let mut reader =
            JournalReader { segments, current: None, from_seq, torn_tail: None, strict: false };
        if !reader.segments.is_empty() {
            reader.open_segment(start, None)?;
        }
        Ok(reader)
    }

    /// A reader for a full audit (`fincore journal verify`): it starts at sequence 1 and
    /// requires the first segment to start the journal (sequence 1, chain seed 0), and at
    /// the end it requires the *whole* rest of the last segment to be zero (recovery's
    /// rule), not only a torn write's reach.
    pub fn open_strict(dir: &Path) -> Result<JournalReader, JournalError> {
        let mut reader = JournalReader::open(dir, 1)?;
        reader.strict = true;
        if let Some(current) = &reader.current {
            let header = SegmentHeader::decode(current.map.bytes())
                .map_err(|r| JournalError::corrupt(&current.path, 0, r))?;
            if header.first_seq != 1 || header.chain_crc != 0 {
                let why = "the first segment does not start the journal (sequence 1, chain 0): \
                           earlier segments are missing";
                return Err(JournalError::corrupt(&current.path, 0, why));
            }
        }
        Ok(reader)
    }

    fn open_segment(
        &mut self,
        index: usize,
        expected: Option<ScanState>,
    ) -> Result<(), JournalError> {
        let (name_seq, path) = self.segments[index].clone();
        let file = File::open(&path).map_err(|e| JournalError::io(&path, e))?;
        let map = ReadMap::map(&file).map_err(|e| JournalError::io(&path, e))?;
        let header =
            SegmentHeader::decode(map.bytes()).map_err(|r| JournalError::corrupt(&path, 0, r))?;
        if header.first_seq != name_seq || header.size != map.bytes().len() as u64 {
            return Err(JournalError::corrupt(
                &path,
                0,
                "header does not match the file name or size",
            ));
        }
        let continues =
            |p: &ScanState| p.next_seq == header.first_seq && p.chain_crc == header.chain_crc;
        if let Some(previous) = expected.filter(|p| !continues(p)) {
            let reason = format!(
                "segment does not continue the previous one (expected seq {} chain {:08x}, \
                 found seq {} chain {:08x})",
                previous.next_seq, previous.chain_crc, header.first_seq, header.chain_crc
            );
            return Err(JournalError::corrupt(&path, 0, reason));
        }
        let state = ScanState::start(header.first_seq, header.chain_crc);
        let payload_format = header.payload_format;
        self.current = Some(Current { path, map, state, index, payload_format });
        Ok(())
    }

    /// The next record, or `None` at the end of the journal.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Record<'_>>, JournalError> {
        // Phase 1 verifies and advances without holding a borrow of the map (so the
        // loop can switch segments); phase 2 views the verified bytes again.
        let offset = loop {
            let Some(current) = self.current.as_mut() else { return Ok(None) };
            let before = current.state;
            match current.state.next(current.map.bytes()) {
                Ok(Some(record)) if record.meta.seq < self.from_seq => continue,
                Ok(Some(_)) => break before.offset,
                Ok(None) => {
                    let next_index = current.index + 1;
                    let last = next_index >= self.segments.len();
                    let end = before.offset;
                    // Only a torn write's reach is checked here: reading the rest of a
                    // mostly empty segment would fault in up to 256 MiB of
                    // zero pages (measured: a third of replay time). Recovery, which
                    // must append into zeros, checks the whole remainder.
                    let rest = current.map.bytes().get(end..).unwrap_or(&[]);
                    let reach = if self.strict { rest.len() } else { crate::scan::TORN_REACH };
                    let window = &rest[..rest.len().min(reach)];
                    if !window.iter().all(|b| *b == 0) {
                        self.tail_or_damage(&before, "non-zero bytes after the last record", last)?;
                    }
                    if last {
                        // Stay positioned at the end, so `next_seq` reports it.
                        return Ok(None);
                    }
                    self.open_segment(next_index, Some(before))?;
                }
                Err(ScanEnd::Fault { offset, fault }) => {
                    debug_assert_eq!(offset, before.offset);
                    let last = current.index + 1 >= self.segments.len();
                    self.tail_or_damage(&before, &fault.to_string(), last)?;
                    return Ok(None);
                }
                Err(ScanEnd::Clean) => return Ok(None),
            }
        };
        let current = self.current.as_ref().expect("positioned above");
        Ok(Some(crate::record::view(&current.map.bytes()[offset..], current.payload_format)))
    }

    /// A fault at `at.offset` of the current segment: a torn tail if it is in the last
    /// segment and may be one (see `scan::may_be_torn_tail`; remembered, reading ends),
    /// otherwise damage (an error naming file and offset).
    fn tail_or_damage(
        &mut self,
        at: &ScanState,
        reason: &str,
        last: bool,
    ) -> Result<(), JournalError> {
        let current = self.current.as_ref().expect("reading a segment");
        let offset = at.offset;
        if last && crate::scan::may_be_torn_tail(current.map.bytes(), at) {
            self.torn_tail = Some(TornTail {
                path: current.path.clone(),
                offset: offset as u64,
                reason: reason.into(),
            });
            return Ok(());
        }
        Err(JournalError::corrupt(&current.path, offset as u64, reason))
    }

    /// The torn tail the reader stopped at, if it did (a journal not yet recovered by
    /// a writer after a crash). The reader never modifies files.
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.torn_tail.as_ref()
    }

    /// The sequence the next record will have (the end of the journal once `next`
    /// returned `None`).
    pub fn next_seq(&self) -> Option<u64> {
        self.current.as_ref().map(|c| c.state.next_seq)
    }
}
