//! Walking the records of one segment: shared by recovery, readers and `verify`.

use crate::record::{self, Parsed, Record, RecordFault};
use crate::segment::SEGMENT_HEADER_LEN;

/// Where a walk stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanEnd {
    /// A zero length field (or the end of the segment): no more records.
    Clean,
    /// The bytes at `offset` are not a valid record.
    Fault {
        /// Offset in the segment file.
        offset: usize,
        /// Why.
        fault: RecordFault,
    },
}

/// Position after the last valid record of a walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanState {
    /// Offset of the next record slot.
    pub offset: usize,
    /// Chain value (the last valid record's checksum).
    pub chain_crc: u32,
    /// Sequence the next record must have.
    pub next_seq: u64,
}

impl ScanState {
    /// The state at the start of a segment.
    pub fn start(first_seq: u64, chain_crc: u32) -> ScanState {
        ScanState { offset: SEGMENT_HEADER_LEN, chain_crc, next_seq: first_seq }
    }

    /// Parses the next record; on success advances and returns it.
    pub fn next<'a>(&mut self, segment: &'a [u8]) -> Result<Option<Record<'a>>, ScanEnd> {
        let rest = segment.get(self.offset..).unwrap_or(&[]);
        match record::parse(rest, self.chain_crc, self.next_seq) {
            Parsed::End => Ok(None),
            Parsed::Fault(fault) => Err(ScanEnd::Fault { offset: self.offset, fault }),
            Parsed::Record(record, len) => {
                self.offset += len;
                self.chain_crc = record.crc;
                self.next_seq += 1;
                Ok(Some(record))
            }
        }
    }
}

/// Walks every record from `state` to the end, calling `each`; returns how it ended.
pub fn walk<'a>(
    segment: &'a [u8],
    state: &mut ScanState,
    mut each: impl FnMut(Record<'a>),
) -> ScanEnd {
    loop {
        match state.next(segment) {
            Ok(Some(record)) => each(record),
            Ok(None) => return ScanEnd::Clean,
            Err(end) => return end,
        }
    }
}

/// How far past the start of a record an interrupted append can have written: one
/// maximal record.
pub const TORN_REACH: usize = record::record_len(record::PAYLOAD_LEN_MAX);

/// True if nothing but zeros follows `from` (a torn write cannot reach further than
/// one maximal record, so non-zero bytes beyond that are real records, i.e. damage in
/// the middle of the journal rather than at its tail).
pub fn only_zeros_after(segment: &[u8], from: usize) -> bool {
    let reach = from.saturating_add(record::record_len(record::PAYLOAD_LEN_MAX));
    segment.get(reach..).is_none_or(|rest| rest.iter().all(|b| *b == 0))
}

/// True if the invalid bytes at `state.offset` (a faulty record, or leftovers behind a
/// zero length field) may be a torn tail: nothing lies beyond a torn write's reach
/// ([`only_zeros_after`]) and no record within that reach continues the chain from them
/// ([`chain_continues_after`]). Otherwise they are damage in the middle of the journal.
pub fn may_be_torn_tail(segment: &[u8], state: &ScanState) -> bool {
    only_zeros_after(segment, state.offset) && !chain_continues_after(segment, state)
}

/// Records a torn write's reach can hold, a bound on how far sequence numbers advance
/// within it (used only to skip positions cheaply before checking a checksum).
const RECORDS_IN_REACH: u64 =
    (record::record_len(record::PAYLOAD_LEN_MAX) / record::record_len(1)) as u64 + 1;

/// True if a valid record within a torn write's reach after `state.offset` chains from
/// the record there: from its stored checksum, or from the checksum its bytes give
/// (when only the stored one is damaged). Such a successor was appended after that
/// record was complete, so the record is damaged, not torn; without this check a
/// damaged record close to the end would be cut off together with the intact records
/// after it. Every aligned position is tried, so a damaged length field, a removed or a
/// swapped record are caught too as long as one intact record follows.
pub fn chain_continues_after(segment: &[u8], state: &ScanState) -> bool {
    let at = state.offset;
    let Some(header) = segment.get(at..).and_then(|rest| rest.get(..record::RECORD_HEADER_LEN))
    else {
        return false;
    };
    let u32_at = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().expect("4 bytes"));
    let stored = u32_at(4);
    let len = u32_at(0) as usize;
    let payload = segment.get(at + record::RECORD_HEADER_LEN..).and_then(|rest| rest.get(..len));
    let computed = payload
        .filter(|_| (1..=record::PAYLOAD_LEN_MAX).contains(&len))
        .map(|payload| record::record_crc(state.chain_crc, &header[8..], payload));
    let reach = at.saturating_add(record::record_len(record::PAYLOAD_LEN_MAX)).min(segment.len());
    let first = at.saturating_add(record::record_len(1));
    (first..reach).step_by(record::RECORD_ALIGN).any(|p| {
        let Some(seq) = segment.get(p + 8..p + 16) else { return false };
        let seq = u64::from_le_bytes(seq.try_into().expect("8 bytes"));
        if seq.wrapping_sub(state.next_seq) > RECORDS_IN_REACH {
            return false;
        }
        [Some(stored), computed].into_iter().flatten().any(|previous| {
            matches!(record::parse(&segment[p..], previous, seq), record::Parsed::Record(..))
        })
    })
}
