//! CRC32C (Castagnoli) of journal records.
//!
//! The `crc32c` crate is built for long buffers: it splits the input at 8-byte
//! alignment and runs a three-way parallel loop over large blocks, then over smaller
//! ones, then a word loop. A journal record's checksummed bytes are about 100 (32 of
//! header fields and the encoded command), where that set-up costs more than the
//! checksum: callgrind counts 148 instructions for the crate's CRC of one 96-byte record
//! out of 311 for the whole `Journal::append`. Short inputs therefore go through one
//! plain loop of the SSE 4.2 `crc32` instruction, 8 bytes at a time; long ones (and
//! CPUs without SSE 4.2) still go to the crate. Both give the same value (tested below
//! against the crate for every length up to past the cut-over). Measured by the `crc`
//! group of `cargo bench -p fincore-journal --bench append` (BENCHMARKS.md, session
//! 14): 96 bytes in 13.5 ns instead of 21.7, 32 bytes in 8.9 ns instead of 18.3.

#![allow(unsafe_code)]

/// Inputs up to this many bytes take the plain loop. Below 768 bytes the crate, too,
/// ends up in a word-at-a-time loop (its smallest parallel block is 3 x 256 bytes), so
/// up to here the plain loop is the same work without the set-up; longer inputs go to
/// the crate's parallel loop.
const SHORT_MAX: usize = 512;

/// The CRC32C of `data` continuing from `crc` (the CRC of what came before it, 0 for
/// none): the same value as `crc32c::crc32c_append(crc, data)`.
#[inline]
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if data.len() <= SHORT_MAX && std::arch::is_x86_feature_detected!("sse4.2") {
        // SAFETY: `short_sse42` needs SSE 4.2, and the CPU has it (checked just above).
        return unsafe { short_sse42(crc, data) };
    }
    crc32c::crc32c_append(crc, data)
}

/// [`crc32c_append`] with the `crc32` instruction, one 8-byte word at a time, then the
/// last bytes one at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
fn short_sse42(crc: u32, data: &[u8]) -> u32 {
    use std::arch::x86_64::{_mm_crc32_u8, _mm_crc32_u64};
    let mut words = data.chunks_exact(8);
    let mut state = u64::from(!crc);
    for word in &mut words {
        state = _mm_crc32_u64(state, u64::from_le_bytes(word.try_into().expect("8 bytes")));
    }
    // The instruction leaves the 32-bit CRC in the low half.
    let mut state = state as u32;
    for &byte in words.remainder() {
        state = _mm_crc32_u8(state, byte);
    }
    !state
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length from empty to past the cut-over, at every alignment within a word,
    /// from a few starting values: the same CRC as the crate.
    #[test]
    fn agrees_with_the_crate() {
        let bytes: Vec<u8> = (0..SHORT_MAX as u32 + 80)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for start in 0..8 {
            for len in 0..=bytes.len() - start {
                let data = &bytes[start..start + len];
                for crc in [0, 1, 0xDEAD_BEEF, u32::MAX] {
                    assert_eq!(
                        crc32c_append(crc, data),
                        crc32c::crc32c_append(crc, data),
                        "start {start} len {len} crc {crc:#x}"
                    );
                }
            }
        }
    }

    /// The standard check value of CRC-32C ("123456789" -> 0xE3069283), and chaining:
    /// a CRC continued over the second half equals the CRC of the whole.
    #[test]
    fn check_value_and_chaining() {
        assert_eq!(crc32c_append(0, b"123456789"), 0xE306_9283);
        let whole = b"the journal chains every record's CRC to the one before it";
        let (a, b) = whole.split_at(21);
        assert_eq!(crc32c_append(crc32c_append(0, a), b), crc32c_append(0, whole));
    }
}
