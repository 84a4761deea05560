//! CRC32C (Castagnoli) of journal records.
//!
//! The `crc32c` crate is built for long buffers: it splits the input at 8-byte
//! alignment and runs a three-way parallel loop over large blocks, then over smaller
//! ones, then a word loop. A journal record's checksummed bytes are about 100 - 150 (32
//! of header fields and the encoded command), where that set-up costs more than the
//! checksum: callgrind counts 148 instructions for the crate's CRC of one 96-byte record
//! out of 311 for the whole `Journal::append`. Short inputs therefore go through the
//! SSE 4.2 `crc32` instruction directly, 8 bytes at a time, in three chains side by side
//! from 72 bytes on (joined with one carry-less multiply each, PCLMULQDQ); long ones
//! (and CPUs without SSE 4.2) still go to the crate. Every path gives the crate's value
//! (tested below for every length up to past the cut-over). Measured by the `crc`
//! group of `cargo bench -p fincore-journal --bench append` (BENCHMARKS.md): one chain
//! took 96 bytes in 13.5 ns instead of the crate's 21.7 (session 14); three chains take
//! a new order's 152 bytes in 14.2 ns instead of one chain's 19.2 (session 21).

#![allow(unsafe_code)]

/// Inputs up to this many bytes take the plain loop. Below 768 bytes the crate, too,
/// ends up in a word-at-a-time loop (its smallest parallel block is 3 x 256 bytes), so
/// up to here the plain loop is the same work without the set-up; longer inputs go to
/// the crate's parallel loop.
const SHORT_MAX: usize = 512;

/// Inputs of at least this many 8-byte words are split into three streams (below).
/// Joining the streams costs about as much as four `crc32` steps in a row, so the split
/// pays from about nine words on.
const THREE_WAY_MIN_WORDS: usize = 9;

/// The CRC32C of `data` continuing from `crc` (the CRC of what came before it, 0 for
/// none): the same value as `crc32c::crc32c_append(crc, data)`.
#[inline]
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if data.len() <= SHORT_MAX
        && std::arch::is_x86_feature_detected!("sse4.2")
        && std::arch::is_x86_feature_detected!("pclmulqdq")
    {
        // SAFETY: `short_three_way` needs SSE 4.2 and PCLMULQDQ, and the CPU has both
        // (checked just above).
        return unsafe { short_three_way(crc, data) };
    }
    crc32c_append_serial(crc, data)
}

/// [`crc32c_append`] without the three-way split: one chain of `crc32` steps (what the
/// journal used before; kept for the benchmark that compares the two, and for CPUs
/// without PCLMULQDQ).
pub fn crc32c_append_serial(crc: u32, data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if data.len() <= SHORT_MAX && std::arch::is_x86_feature_detected!("sse4.2") {
        // SAFETY: `serial_sse42` needs SSE 4.2, and the CPU has it (checked just above).
        return !unsafe { serial_sse42(!crc, data) };
    }
    crc32c::crc32c_append(crc, data)
}

/// One chain of `crc32` steps over `data` from the raw (not inverted) register value
/// `state`: 8-byte words, then at most one step each of 4, 2 and 1 bytes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
fn serial_sse42(state: u32, data: &[u8]) -> u32 {
    use std::arch::x86_64::{_mm_crc32_u8, _mm_crc32_u16, _mm_crc32_u32, _mm_crc32_u64};
    let mut words = data.chunks_exact(8);
    let mut wide = u64::from(state);
    for word in &mut words {
        wide = _mm_crc32_u64(wide, u64::from_le_bytes(word.try_into().expect("8 bytes")));
    }
    // The instruction leaves the 32-bit CRC in the low half.
    let mut state = wide as u32;
    let mut rest = words.remainder();
    if let Some((four, after)) = rest.split_first_chunk::<4>() {
        state = _mm_crc32_u32(state, u32::from_le_bytes(*four));
        rest = after;
    }
    if let Some((two, after)) = rest.split_first_chunk::<2>() {
        state = _mm_crc32_u16(state, u16::from_le_bytes(*two));
        rest = after;
    }
    if let Some(&byte) = rest.first() {
        state = _mm_crc32_u8(state, byte);
    }
    state
}

/// [`crc32c_append`] for short inputs. Each `crc32` step waits for the one before it
/// (three cycles on current x86 cores) although the CPU could start one per cycle, so a
/// long enough input is cut into three streams of `k` words, run side by side, each
/// from its own register, and joined: the CRC register is linear over GF(2), so the
/// register after `a | b | c` is `a`'s register advanced over `2k` words of zeros, xor
/// `b`'s advanced over `k` words, xor `c`'s. Advancing a register `r` over `m` bytes of
/// zeros is `r * x^(8m) mod P`, done as one carry-less multiply by a constant
/// ([`ADVANCE`]) and one `crc32` step to reduce it. The words past `3k` and the last
/// bytes then follow in one chain.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2,pclmulqdq")]
fn short_three_way(crc: u32, data: &[u8]) -> u32 {
    use std::arch::x86_64::_mm_crc32_u64;
    let k = data.len() / 8 / 3;
    if data.len() / 8 < THREE_WAY_MIN_WORDS {
        return !serial_sse42(!crc, data);
    }
    let word = |bytes: &[u8]| u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
    let (first, rest) = data.split_at(8 * k);
    let (second, rest) = rest.split_at(8 * k);
    let third = &rest[..8 * k];
    let (mut a, mut b, mut c) = (u64::from(!crc), 0u64, 0u64);
    for ((x, y), z) in first.chunks_exact(8).zip(second.chunks_exact(8)).zip(third.chunks_exact(8))
    {
        a = _mm_crc32_u64(a, word(x));
        b = _mm_crc32_u64(b, word(y));
        c = _mm_crc32_u64(c, word(z));
    }
    let (over_k, over_2k) = ADVANCE[k];
    let joined = advance(a as u32, over_2k) ^ advance(b as u32, over_k) ^ c as u32;
    !serial_sse42(joined, &data[24 * k..])
}

/// The raw CRC register `state` advanced over the zero bytes that `constant` stands
/// for (an entry of [`ADVANCE`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2,pclmulqdq")]
fn advance(state: u32, constant: u32) -> u32 {
    use std::arch::x86_64::{
        _mm_clmulepi64_si128, _mm_crc32_u64, _mm_cvtsi64_si128, _mm_cvtsi128_si64,
    };
    // With bit 0 as the highest power (the CRC's bit order), the carry-less product of
    // two 32-bit values is their polynomial product times x, and a `crc32` step over a
    // 64-bit value from a zero register multiplies it by x^32: so the product with
    // x^(8m - 33) comes out as `state * x^(8m) mod P`.
    let product = _mm_clmulepi64_si128(
        _mm_cvtsi64_si128(i64::from(state)),
        _mm_cvtsi64_si128(i64::from(constant)),
        0x00,
    );
    _mm_crc32_u64(0, _mm_cvtsi128_si64(product) as u64) as u32
}

/// CRC32C's polynomial without its x^32 term, with bit 0 as the highest power.
const POLY_REFLECTED: u32 = 0x82F6_3B78;

/// `x^n mod P` with bit 0 as the highest power (x^31), as [`advance`] wants it.
const fn x_pow_mod(n: u32) -> u32 {
    let mut value = 1u32 << 31; // x^0
    let mut i = 0;
    while i < n {
        // Times x: every power moves up one (one bit down); x^32 becomes P's lower terms.
        value = if value & 1 == 1 { (value >> 1) ^ POLY_REFLECTED } else { value >> 1 };
        i += 1;
    }
    value
}

/// For each stream length `k` (in 8-byte words) of [`short_three_way`], the constants
/// that advance a register over `k` and over `2k` words of zeros: `x^(64k - 33)` and
/// `x^(128k - 33)` mod P. Entry 0 is unused.
const ADVANCE: [(u32, u32); SHORT_MAX / 24 + 1] = {
    let mut table = [(0, 0); SHORT_MAX / 24 + 1];
    let mut k = 1;
    while k < table.len() {
        table[k] = (x_pow_mod(64 * k as u32 - 33), x_pow_mod(128 * k as u32 - 33));
        k += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length from empty to past the cut-over (so every stream length of the
    /// three-way split and every tail), at every alignment within a word, from a few
    /// starting values: the same CRC as the crate, on both paths.
    #[test]
    fn agrees_with_the_crate() {
        let bytes: Vec<u8> = (0..SHORT_MAX as u32 + 80)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for start in 0..8 {
            for len in 0..=bytes.len() - start {
                let data = &bytes[start..start + len];
                for crc in [0, 1, 0xDEAD_BEEF, u32::MAX] {
                    let expected = crc32c::crc32c_append(crc, data);
                    let what = format!("start {start} len {len} crc {crc:#x}");
                    assert_eq!(crc32c_append(crc, data), expected, "{what}");
                    assert_eq!(crc32c_append_serial(crc, data), expected, "serial, {what}");
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
