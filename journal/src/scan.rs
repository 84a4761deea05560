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

/// True if nothing but zeros follows `from` (a torn write cannot reach further than
/// one maximal record, so non-zero bytes beyond that are real records, i.e. damage in
/// the middle of the journal rather than at its tail).
pub fn only_zeros_after(segment: &[u8], from: usize) -> bool {
    let reach = from.saturating_add(record::record_len(record::PAYLOAD_LEN_MAX));
    segment.get(reach..).is_none_or(|rest| rest.iter().all(|b| *b == 0))
}
