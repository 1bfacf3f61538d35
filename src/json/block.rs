//! Finding where a JSON string ends, 64 bytes at a time, validating it on the way.
//!
//! Each block is classified into bitmasks (bit i = byte i): quotes, backslashes, control
//! characters, non-ASCII bytes. Which bytes are escaped follows from the backslash mask with a
//! few integer operations (a byte is escaped when an odd-length run of backslashes precedes it),
//! so dense escapes (`\n` every few words, `\uXXXX` for every non-ASCII character) cost no
//! branches. The first unescaped quote ends the string; everything before it is checked: no raw
//! control characters, only valid escape letters, four hex digits after `\u`, and UTF-8 (once,
//! at the end, and only if a non-ASCII byte was seen).

use super::{Malformed, Result};

pub const BLOCK: usize = 64;

/// The masks every block needs.
#[derive(Clone, Copy)]
pub struct Bits {
    pub quote: u64,
    pub backslash: u64,
    pub control: u64,
    pub non_ascii: u64,
}

/// Classifies one block; one implementation per instruction set.
///
/// # Safety
/// Every method reads 64 bytes at `p`, and needs the CPU features its implementation names.
pub trait Classify {
    /// Computing the escape and hex masks for every block costs less than a mispredicted
    /// branch (escapes are a coin flip per block in real text), so the vector implementations
    /// do; the portable one looks only where asked.
    const ALWAYS_CHECK_ESCAPES: bool;
    unsafe fn bits(p: *const u8) -> Bits;
    /// Of the bytes at positions `at`: those that are not escape letters (`"\\/bfnrtu`) and
    /// the `u`s; of those and the four bytes after each (where a `\\u`'s digits are), those
    /// that are not hex digits. Other positions may hold anything.
    unsafe fn classes(p: *const u8, at: u64) -> Classes;
}

/// What [`Classify::classes`] finds.
#[derive(Clone, Copy)]
pub struct Classes {
    pub not_letter: u64,
    pub u: u64,
    pub not_hex: u64,
}

/// Bits at odd positions.
const ODD: u64 = 0xAAAA_AAAA_AAAA_AAAA;

/// The vector implementations classify a byte three ways with one byte-table lookup per
/// nibble: a byte's class is its low nibble's entry (in the first table) ANDed with its high
/// nibble's (in the second). Bits 0–3: escape letters (0 = 0x2_ `"` `/`, 1 = 0x5_ `\\`,
/// 2 = 0x6_ `b` `f` `n`, 3 = 0x7_ `r` `t` `u`); bits 4–5: hex digits (4 = 0x3_ digits,
/// 5 = 0x4_ and 0x6_ `a`–`f`); bit 7: `u`.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[rustfmt::skip]
const CLASS_TABLES: [[u8; 16]; 2] = {
    const D: u8 = 0x10; // bit 4: a decimal digit, 0x30–0x39
    const L: u8 = 0x20; // bit 5: a hex letter, 0x41–0x46 or 0x61–0x66
    const U: u8 = 0x80;
    [
        [
            D, D | L, 0b1101 | D | L, D | L, 0b1000 | D | L, 0b1000 | D | L | U, 0b0100 | D | L, D,
            D, D, 0, 0, 0b0010, 0, 0b0100, 0b0001,
        ],
        [0, 0, 0b0001, D, L, 0b0010, 0b0100 | L, 0b1000 | U, 0, 0, 0, 0, 0, 0, 0, 0],
    ]
};

/// Returns the index of the quote that ends the string whose first byte is `b[start]`.
#[inline(always)]
pub fn string_end_with<C: Classify>(b: &[u8], start: usize) -> Result<usize> {
    let mut base = start;
    // Byte 0 of the next block is escaped by a backslash run that ends this block.
    let mut escaped_next = 0u64;
    // Bytes of the next block that must be hex digits (a `\u` near the end of this block).
    let mut hex_next = 0u64;
    let mut non_ascii = false;
    let mut tail = [b' '; BLOCK];
    loop {
        let rest = b.len() - base;
        if rest == 0 {
            return Err(Malformed::Json);
        }
        let p = if rest >= BLOCK {
            b[base..].as_ptr()
        } else {
            // Pad the last partial block with spaces: they are neither quotes nor escapes.
            tail[..rest].copy_from_slice(&b[base..]);
            tail[rest..].fill(b' ');
            tail.as_ptr()
        };
        // SAFETY: `p` points at BLOCK readable bytes; the caller picked `C` for this CPU.
        let m = unsafe { C::bits(p) };

        // Escaped bytes: each backslash that is not itself escaped starts a run; subtracting the
        // run starts from the odd bits (shifted by one) leaves, in each run, bits that alternate
        // from its start, so that the byte after a run is marked when the run is odd-length.
        let potential = m.backslash & !escaped_next;
        let codes = ((potential << 1 | ODD).wrapping_sub(potential)) ^ ODD;
        let escaped = codes ^ (m.backslash | escaped_next);
        escaped_next = (codes & m.backslash) >> 63;

        let ends = m.quote & !escaped;
        let end = ends & ends.wrapping_neg();
        let before_end = end.wrapping_sub(1); // all bits when there is no end in this block
        let through_end = before_end | end;
        let escapes = escaped & before_end;
        let mut bad = m.control & before_end;
        let mut need_hex = hex_next;
        if C::ALWAYS_CHECK_ESCAPES || (escapes | need_hex) & through_end != 0 {
            // SAFETY: as above.
            let c = unsafe { C::classes(p, escapes | need_hex) };
            let u = escapes & c.u;
            let pairs = u | u << 1;
            // The four bytes after each `\u` must be hex digits. A quote is not one, so a `\u`
            // cut short by the end is caught here too.
            need_hex |= pairs << 1 | pairs << 3;
            bad |= escapes & c.not_letter | need_hex & through_end & c.not_hex;
            let pairs = u | u >> 1;
            hex_next = pairs >> 62 | pairs >> 60;
        } else {
            hex_next = 0;
        }
        if bad != 0 {
            return Err(Malformed::Json);
        }
        non_ascii |= m.non_ascii & before_end != 0;
        if end != 0 {
            let k = base + end.trailing_zeros() as usize;
            if non_ascii && std::str::from_utf8(&b[start..k]).is_err() {
                return Err(Malformed::Utf8);
            }
            return Ok(k);
        }
        base += rest.min(BLOCK);
    }
}

/// Keys and most short values are plain ASCII with the closing quote in the next 32 bytes: one
/// SSE2 or NEON look settles them without the general loop (None: use [`string_end`]).
#[inline(always)]
pub fn short_string_end(b: &[u8], start: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        let chunk = b.get(start..start + 32)?;
        // SAFETY: SSE2 is part of the x86_64 baseline, and both loads read inside `chunk`.
        let (quote, other) = unsafe { x86::short_masks(chunk.as_ptr()) };
        let first = quote & quote.wrapping_neg();
        (first != 0 && other & (first | first.wrapping_sub(1)) == 0).then(|| start + first.trailing_zeros() as usize)
    }
    #[cfg(target_arch = "aarch64")]
    {
        let chunk = b.get(start..start + 32)?;
        // SAFETY: both loads read inside `chunk`; NEON is always there.
        let (quote, other) = unsafe { arm::short_masks(chunk.as_ptr()) };
        let first = quote & quote.wrapping_neg();
        (first != 0 && other & (first | first.wrapping_sub(1)) == 0)
            .then(|| start + first.trailing_zeros() as usize / 4)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = (b, start);
        None
    }
}

/// See [`string_end_with`]; picks the widest instruction set this CPU has.
#[inline(never)]
pub fn string_end(b: &[u8], start: usize) -> Result<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512bw") {
            // SAFETY: the CPU has AVX-512BW.
            return unsafe { x86::string_end_avx512(b, start) };
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { x86::string_end_avx2(b, start) };
        }
        string_end_with::<x86::Sse2>(b, start)
    }
    #[cfg(target_arch = "aarch64")]
    return string_end_with::<arm::Neon>(b, start);
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    string_end_with::<Portable>(b, start)
}

/// Eight bytes at a time in ordinary registers (SWAR), for CPUs without a vector implementation
/// here (and as the tests' reference).
#[cfg(any(test, not(any(target_arch = "x86_64", target_arch = "aarch64"))))]
pub struct Portable;

#[cfg(any(test, not(any(target_arch = "x86_64", target_arch = "aarch64"))))]
mod swar {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;

    /// The high bit of each byte of `x` that is zero (exact: no borrow crosses bytes).
    pub fn zero_bytes(x: u64) -> u64 {
        !(((x & !HIGH) + !HIGH) | x) & HIGH
    }

    pub fn equal_bytes(x: u64, c: u8) -> u64 {
        zero_bytes(x ^ (ONES * u64::from(c)))
    }

    pub fn below_0x20(x: u64) -> u64 {
        zero_bytes(x & (ONES * 0xe0))
    }

    pub fn high_bits(x: u64) -> u64 {
        x & HIGH
    }

    /// The high bit of each byte, gathered into the low 8 bits (byte i → bit i).
    pub fn pack(m: u64) -> u64 {
        ((m >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
    }
}

#[cfg(any(test, not(any(target_arch = "x86_64", target_arch = "aarch64"))))]
impl Classify for Portable {
    const ALWAYS_CHECK_ESCAPES: bool = false;

    unsafe fn bits(p: *const u8) -> Bits {
        let mut m = Bits { quote: 0, backslash: 0, control: 0, non_ascii: 0 };
        for k in 0..BLOCK / 8 {
            // SAFETY: the caller guarantees BLOCK readable bytes.
            let x = u64::from_le_bytes(unsafe { p.add(8 * k).cast::<[u8; 8]>().read_unaligned() });
            let shift = 8 * k;
            m.quote |= swar::pack(swar::equal_bytes(x, b'"')) << shift;
            m.backslash |= swar::pack(swar::equal_bytes(x, b'\\')) << shift;
            m.control |= swar::pack(swar::below_0x20(x)) << shift;
            m.non_ascii |= swar::pack(swar::high_bits(x)) << shift;
        }
        m
    }

    unsafe fn classes(p: *const u8, at: u64) -> Classes {
        let mut c = Classes { not_letter: 0, u: 0, not_hex: 0 };
        let mut rest = at | at << 1 | at << 2 | at << 3 | at << 4;
        while rest != 0 {
            let i = rest.trailing_zeros();
            // SAFETY: `i` < BLOCK, and the caller guarantees BLOCK readable bytes.
            let byte = unsafe { *p.add(i as usize) };
            c.not_letter |= u64::from(!b"\"\\/bfnrtu".contains(&byte)) << i;
            c.u |= u64::from(byte == b'u') << i;
            c.not_hex |= u64::from(!byte.is_ascii_hexdigit()) << i;
            rest &= rest - 1;
        }
        c
    }
}

#[cfg(target_arch = "x86_64")]
pub mod x86 {
    use std::arch::x86_64::*;

    use super::{string_end_with, Bits, Classes, Classify, Result, BLOCK, CLASS_TABLES};

    /// SSE2 is part of the x86_64 baseline: 4 lanes of 16 bytes, compares only (no byte shuffles).
    pub struct Sse2;

    /// Joins four 16-bit lane masks into one 64-bit mask.
    #[inline(always)]
    fn join16(f: impl Fn(usize) -> i32) -> u64 {
        (0..4).fold(0, |m, k| m | (f(k) as u32 as u64 & 0xffff) << (16 * k))
    }

    impl Classify for Sse2 {
        const ALWAYS_CHECK_ESCAPES: bool = true;

        #[inline(always)]
        unsafe fn bits(p: *const u8) -> Bits {
            // SAFETY: the caller guarantees BLOCK readable bytes; SSE2 is always there.
            unsafe {
                let v: [__m128i; 4] = std::array::from_fn(|k| _mm_loadu_si128(p.add(16 * k).cast()));
                let ctl = _mm_set1_epi8(0x1f);
                Bits {
                    quote: join16(|k| _mm_movemask_epi8(_mm_cmpeq_epi8(v[k], _mm_set1_epi8(b'"' as i8)))),
                    backslash: join16(|k| _mm_movemask_epi8(_mm_cmpeq_epi8(v[k], _mm_set1_epi8(b'\\' as i8)))),
                    control: join16(|k| _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(v[k], ctl), v[k]))),
                    non_ascii: join16(|k| _mm_movemask_epi8(v[k])),
                }
            }
        }

        #[inline(always)]
        unsafe fn classes(p: *const u8, _at: u64) -> Classes {
            // SAFETY: the caller guarantees BLOCK readable bytes; SSE2 is always there.
            unsafe {
                let v: [__m128i; 4] = std::array::from_fn(|k| _mm_loadu_si128(p.add(16 * k).cast()));
                let eq = |k: usize, c: u8| _mm_cmpeq_epi8(v[k], _mm_set1_epi8(c as i8));
                let letters = join16(|k| {
                    let any = b"\"\\/bfnrtu".iter().fold(_mm_setzero_si128(), |m, &c| _mm_or_si128(m, eq(k, c)));
                    _mm_movemask_epi8(any)
                });
                let in_range = |v: __m128i, lo: u8, hi: u8| {
                    let above = _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(lo as i8)), v);
                    let below = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(hi as i8)), v);
                    _mm_and_si128(above, below)
                };
                let hex = join16(|k| {
                    let lower = _mm_or_si128(v[k], _mm_set1_epi8(0x20));
                    _mm_movemask_epi8(_mm_or_si128(in_range(v[k], b'0', b'9'), in_range(lower, b'a', b'f')))
                });
                Classes { not_letter: !letters, u: join16(|k| _mm_movemask_epi8(eq(k, b'u'))), not_hex: !hex }
            }
        }
    }

    /// Quotes, and backslashes, control characters or non-ASCII bytes, of 32 bytes at `p`.
    ///
    /// # Safety
    /// `p` points at 32 readable bytes.
    #[inline(always)]
    pub unsafe fn short_masks(p: *const u8) -> (u32, u32) {
        // SAFETY: the caller guarantees 32 readable bytes; SSE2 is always there.
        unsafe {
            let mask = |v: __m128i| {
                let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
                let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
                let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
                let other = _mm_or_si128(_mm_or_si128(backslash, control), v); // v: the sign bit is non-ASCII
                (_mm_movemask_epi8(quote) as u32, _mm_movemask_epi8(other) as u32)
            };
            let (q0, o0) = mask(_mm_loadu_si128(p.cast()));
            let (q1, o1) = mask(_mm_loadu_si128(p.add(16).cast()));
            (q0 | q1 << 16, o0 | o1 << 16)
        }
    }

    /// AVX2: 2 lanes of 32 bytes, and byte-table lookups for the escape letters.
    pub struct Avx2;

    #[inline]
    #[target_feature(enable = "avx2")]
    fn join32(lo: __m256i, hi: __m256i) -> u64 {
        _mm256_movemask_epi8(lo) as u32 as u64 | (_mm256_movemask_epi8(hi) as u32 as u64) << 32
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn load(p: *const u8) -> (__m256i, __m256i) {
        // SAFETY: the callers guarantee BLOCK readable bytes at `p`.
        unsafe { (_mm256_loadu_si256(p.cast()), _mm256_loadu_si256(p.add(32).cast())) }
    }

    /// [`CLASS_TABLES`] in registers.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn class_tables() -> (__m128i, __m128i) {
        // SAFETY: each table holds 16 bytes.
        unsafe { (_mm_loadu_si128(CLASS_TABLES[0].as_ptr().cast()), _mm_loadu_si128(CLASS_TABLES[1].as_ptr().cast())) }
    }

    /// Escape-letter, hex-digit and `u` bits of each byte (see [`CLASS_TABLES`]).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn class(v: __m256i) -> __m256i {
        let (by_low, by_high) = class_tables();
        let nibble = _mm256_set1_epi8(0x0f);
        let low = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(by_low), _mm256_and_si256(v, nibble));
        let high_nibble = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
        let high = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(by_high), high_nibble);
        _mm256_and_si256(low, high)
    }

    /// Bytes whose class has none of `bits`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn lacks(class: __m256i, bits: i8) -> __m256i {
        _mm256_cmpeq_epi8(_mm256_and_si256(class, _mm256_set1_epi8(bits)), _mm256_setzero_si256())
    }

    impl Classify for Avx2 {
        const ALWAYS_CHECK_ESCAPES: bool = true;

        #[inline]
        #[target_feature(enable = "avx2")]
        unsafe fn bits(p: *const u8) -> Bits {
            let (a, b) = load(p);
            let eq = |c: u8| {
                let c = _mm256_set1_epi8(c as i8);
                join32(_mm256_cmpeq_epi8(a, c), _mm256_cmpeq_epi8(b, c))
            };
            let ctl = _mm256_set1_epi8(0x1f);
            Bits {
                quote: eq(b'"'),
                backslash: eq(b'\\'),
                control: join32(
                    _mm256_cmpeq_epi8(_mm256_min_epu8(a, ctl), a),
                    _mm256_cmpeq_epi8(_mm256_min_epu8(b, ctl), b),
                ),
                non_ascii: join32(a, b),
            }
        }

        #[inline]
        #[target_feature(enable = "avx2")]
        unsafe fn classes(p: *const u8, _at: u64) -> Classes {
            let (a, b) = load(p);
            let (a, b) = (class(a), class(b));
            Classes {
                not_letter: join32(lacks(a, 0x0f), lacks(b, 0x0f)),
                u: join32(a, b),
                not_hex: join32(lacks(a, 0x30), lacks(b, 0x30)),
            }
        }
    }

    /// [`string_end_with`] compiled with AVX2 enabled, so the classification inlines.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn string_end_avx2(b: &[u8], start: usize) -> Result<usize> {
        string_end_with::<Avx2>(b, start)
    }

    /// AVX-512BW: one register holds a whole block, and comparisons give bitmasks directly.
    pub struct Avx512;

    #[inline]
    #[target_feature(enable = "avx512bw")]
    fn splat(c: u8) -> __m512i {
        _mm512_set1_epi8(c as i8)
    }

    impl Classify for Avx512 {
        const ALWAYS_CHECK_ESCAPES: bool = true;

        #[inline]
        #[target_feature(enable = "avx512bw")]
        unsafe fn bits(p: *const u8) -> Bits {
            // SAFETY: the caller guarantees BLOCK readable bytes at `p`.
            let v = unsafe { _mm512_loadu_si512(p.cast()) };
            Bits {
                quote: _mm512_cmpeq_epi8_mask(v, splat(b'"')),
                backslash: _mm512_cmpeq_epi8_mask(v, splat(b'\\')),
                control: _mm512_cmple_epu8_mask(v, splat(0x1f)),
                non_ascii: _mm512_movepi8_mask(v),
            }
        }

        #[inline]
        #[target_feature(enable = "avx512bw")]
        unsafe fn classes(p: *const u8, _at: u64) -> Classes {
            // SAFETY: the caller guarantees BLOCK readable bytes at `p`.
            let v = unsafe { _mm512_loadu_si512(p.cast()) };
            // The same tables as AVX2's, in each 16-byte lane.
            let (by_low, by_high) = class_tables();
            let low = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(by_low), _mm512_and_si512(v, splat(0x0f)));
            let high_nibble = _mm512_and_si512(_mm512_srli_epi16(v, 4), splat(0x0f));
            let class = _mm512_and_si512(low, _mm512_shuffle_epi8(_mm512_broadcast_i32x4(by_high), high_nibble));
            Classes {
                not_letter: _mm512_testn_epi8_mask(class, splat(0x0f)),
                u: _mm512_movepi8_mask(class),
                not_hex: _mm512_testn_epi8_mask(class, splat(0x30)),
            }
        }
    }

    /// [`string_end_with`] compiled with AVX-512BW enabled.
    ///
    /// # Safety
    /// The CPU must have AVX-512BW.
    #[target_feature(enable = "avx512bw")]
    pub unsafe fn string_end_avx512(b: &[u8], start: usize) -> Result<usize> {
        string_end_with::<Avx512>(b, start)
    }

    const _: () = assert!(BLOCK == 64);
}

/// NEON is part of the aarch64 baseline (Apple silicon, Graviton, Ampere, a Raspberry Pi 4/5):
/// no run-time check.
#[cfg(target_arch = "aarch64")]
pub mod arm {
    use std::arch::aarch64::*;

    use super::{Bits, Classes, Classify, BLOCK, CLASS_TABLES};

    /// 4 lanes of 16 bytes, and the byte-table lookups AVX2 uses.
    pub struct Neon;

    /// The block's 64 bytes at `p`, de-interleaved: lane k holds bytes k, k + 4, k + 8, …
    ///
    /// # Safety
    /// `p` points at BLOCK readable bytes.
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn load(p: *const u8) -> [uint8x16_t; 4] {
        // SAFETY: the caller guarantees BLOCK readable bytes.
        let v = unsafe { vld4q_u8(p) };
        [v.0, v.1, v.2, v.3]
    }

    /// One bit per byte (bit i = byte i of the block) of four de-interleaved lanes (see [`load`])
    /// whose bytes are all ones or all zeros. NEON has no movemask: shift-and-insert puts lane
    /// k's byte j into bit k of both nibbles of byte j; a narrowing shift then keeps the high
    /// nibble of even bytes and the low nibble of odd ones, which restores the block's order.
    #[inline]
    #[target_feature(enable = "neon")]
    fn mask(lanes: [uint8x16_t; 4]) -> u64 {
        let [m0, m1, m2, m3] = lanes;
        let low = vsriq_n_u8::<1>(m1, m0);
        let high = vsriq_n_u8::<1>(m3, m2);
        let upper = vsriq_n_u8::<2>(high, low);
        let both = vsriq_n_u8::<4>(upper, upper);
        vget_lane_u64::<0>(vreinterpret_u64_u8(vshrn_n_u16::<4>(vreinterpretq_u16_u8(both))))
    }

    /// Quotes, and backslashes, control characters or non-ASCII bytes, of 32 bytes at `p`: four
    /// bits per byte (byte i → bits 4i to 4i + 3), which a narrowing shift gives directly.
    ///
    /// # Safety
    /// `p` points at 32 readable bytes.
    #[inline]
    #[target_feature(enable = "neon")]
    pub unsafe fn short_masks(p: *const u8) -> (u128, u128) {
        let nibbles = |v: uint8x16_t| {
            u128::from(vget_lane_u64::<0>(vreinterpret_u64_u8(vshrn_n_u16::<4>(vreinterpretq_u16_u8(v)))))
        };
        let masks = |v: uint8x16_t| {
            let quote = vceqq_u8(v, vdupq_n_u8(b'"'));
            let backslash = vceqq_u8(v, vdupq_n_u8(b'\\'));
            let control = vcleq_u8(v, vdupq_n_u8(0x1f));
            let non_ascii = vcgeq_u8(v, vdupq_n_u8(0x80));
            (nibbles(quote), nibbles(vorrq_u8(vorrq_u8(backslash, control), non_ascii)))
        };
        // SAFETY: the caller guarantees 32 readable bytes.
        let (low, high) = unsafe { (vld1q_u8(p), vld1q_u8(p.add(16))) };
        let ((q0, o0), (q1, o1)) = (masks(low), masks(high));
        (q0 | q1 << 64, o0 | o1 << 64)
    }

    impl Classify for Neon {
        const ALWAYS_CHECK_ESCAPES: bool = true;

        #[inline]
        #[target_feature(enable = "neon")]
        unsafe fn bits(p: *const u8) -> Bits {
            // SAFETY: the caller guarantees BLOCK readable bytes.
            let v = unsafe { load(p) };
            let eq = |c: u8| mask(v.map(|x| vceqq_u8(x, vdupq_n_u8(c))));
            Bits {
                quote: eq(b'"'),
                backslash: eq(b'\\'),
                control: mask(v.map(|x| vcleq_u8(x, vdupq_n_u8(0x1f)))),
                non_ascii: mask(v.map(|x| vcgeq_u8(x, vdupq_n_u8(0x80)))),
            }
        }

        #[inline]
        #[target_feature(enable = "neon")]
        unsafe fn classes(p: *const u8, _at: u64) -> Classes {
            // SAFETY: the caller guarantees BLOCK readable bytes; each table holds 16 bytes.
            let (v, by_low, by_high) =
                unsafe { (load(p), vld1q_u8(CLASS_TABLES[0].as_ptr()), vld1q_u8(CLASS_TABLES[1].as_ptr())) };
            // Table lookups give 0 for an index past 15; masking and shifting keep them in range.
            let class = v.map(|x| {
                vandq_u8(vqtbl1q_u8(by_low, vandq_u8(x, vdupq_n_u8(0x0f))), vqtbl1q_u8(by_high, vshrq_n_u8::<4>(x)))
            });
            let has = |bits: u8| mask(class.map(|c| vtstq_u8(c, vdupq_n_u8(bits))));
            Classes { not_letter: !has(0x0f), u: has(0x80), not_hex: !has(0x30) }
        }
    }

    const _: () = assert!(BLOCK == 64);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every implementation this CPU can run agrees with the portable one, and with serde_json
    /// on validity, for strings built from awkward pieces at every offset across block edges.
    #[test]
    fn implementations_agree() {
        let pieces: [&[u8]; 18] = [
            b"a",
            b"bcdefghijklmnopqrstuvwxy",
            b"\\\\",
            b"\\\"",
            b"\\n",
            b"\\u00e9",
            b"\\uD83D",
            b"\\uFEFF",
            b"\\uaBcD",
            b"\\u0g00",
            "\u{e9}".as_bytes(),
            b"\"",
            b"\\",
            b"\x01",
            b"\\x",
            b"\\u12",
            b"\xff",
            b"\\\\\\",
        ];
        let mut rng = crate::test_rng::Rng(0x9E37_79B9_7F4A_7C15);
        let mut next = || rng.next();
        let mut short = 0;
        for _ in 0..40_000 {
            let mut doc = vec![b'"'];
            let n = next() % 60;
            for _ in 0..n {
                doc.extend_from_slice(pieces[(next() % pieces.len() as u64) as usize]);
            }
            doc.push(b'"');
            let tail = (next() % 30) as usize;
            doc.extend_from_slice(&b"  tail bytes after the string"[..tail]);
            let reference = string_end_with::<Portable>(&doc, 1);
            if let Some(end) = short_string_end(&doc, 1) {
                assert_eq!(Ok(end), reference, "short: {}", String::from_utf8_lossy(&doc));
                short += 1;
            }
            #[cfg(target_arch = "aarch64")]
            assert_eq!(string_end_with::<arm::Neon>(&doc, 1), reference, "{}", String::from_utf8_lossy(&doc));
            #[cfg(target_arch = "x86_64")]
            {
                assert_eq!(string_end_with::<x86::Sse2>(&doc, 1), reference, "{}", String::from_utf8_lossy(&doc));
                if std::is_x86_feature_detected!("avx2") {
                    // SAFETY: checked just above.
                    let avx2 = unsafe { x86::string_end_avx2(&doc, 1) };
                    assert_eq!(avx2, reference, "{}", String::from_utf8_lossy(&doc));
                }
                if std::is_x86_feature_detected!("avx512bw") {
                    // SAFETY: checked just above.
                    let avx512 = unsafe { x86::string_end_avx512(&doc, 1) };
                    assert_eq!(avx512, reference, "{}", String::from_utf8_lossy(&doc));
                }
            }
            // serde_json refuses lone surrogates, which Python (and we) accept.
            let surrogate = doc.windows(3).any(|w| w == b"\\uD");
            if let (Ok(end), false) = (reference, surrogate) {
                let theirs = serde_json::from_slice::<serde_json::Value>(&doc[..=end]);
                assert!(theirs.is_ok(), "{}", String::from_utf8_lossy(&doc));
            }
            if tail == 0 && !surrogate {
                let whole = matches!(reference, Ok(end) if end == doc.len() - 1);
                let theirs = serde_json::from_slice::<serde_json::Value>(&doc).is_ok();
                assert_eq!(whole, theirs, "{}", String::from_utf8_lossy(&doc));
            }
        }
        // The short path settled some (on CPUs that have one), never wrongly.
        assert!(short > 0 || !cfg!(any(target_arch = "x86_64", target_arch = "aarch64")));
    }

    /// Every implementation classifies every byte value as the portable one does (which says
    /// what a control character, an escape letter and a hex digit are in the plainest words).
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn classes_agree_for_every_byte() {
        /// Both classifications of the block at `p`.
        ///
        /// # Safety
        /// As [`Classify`]'s methods.
        unsafe fn both<C: Classify>(p: *const u8) -> (Bits, Classes) {
            unsafe { (C::bits(p), C::classes(p, u64::MAX)) }
        }
        let all: Vec<u8> = (0..=255).collect();
        for block in all.chunks(BLOCK) {
            let p = block.as_ptr();
            // SAFETY: each chunk holds BLOCK bytes; each vector one runs only where the CPU has it.
            let (bits, classes) = unsafe { both::<Portable>(p) };
            let mut theirs = Vec::new();
            #[cfg(target_arch = "aarch64")]
            theirs.push(("neon", unsafe { both::<arm::Neon>(p) }));
            #[cfg(target_arch = "x86_64")]
            unsafe {
                theirs.push(("sse2", both::<x86::Sse2>(p)));
                if std::is_x86_feature_detected!("avx2") {
                    theirs.push(("avx2", both::<x86::Avx2>(p)));
                }
                if std::is_x86_feature_detected!("avx512bw") {
                    theirs.push(("avx512", both::<x86::Avx512>(p)));
                }
            }
            let from = block[0];
            for (name, (b, c)) in theirs {
                assert_eq!(b.quote, bits.quote, "{name}: quotes from {from:#x}");
                assert_eq!(b.backslash, bits.backslash, "{name}: backslashes from {from:#x}");
                assert_eq!(b.control, bits.control, "{name}: control characters from {from:#x}");
                assert_eq!(b.non_ascii, bits.non_ascii, "{name}: non-ASCII from {from:#x}");
                assert_eq!(c.not_letter, classes.not_letter, "{name}: escape letters from {from:#x}");
                assert_eq!(c.u, classes.u, "{name}: u from {from:#x}");
                assert_eq!(c.not_hex, classes.not_hex, "{name}: hex digits from {from:#x}");
            }
        }
    }
}
