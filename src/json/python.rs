//! JSON as Python's `json` module writes it (`json.dumps`: strings escaped to ASCII, floats as
//! `repr` writes them), and Python's JSON made readable where it is not JSON: lone surrogates,
//! `NaN` and `Infinity`, and bytes that are not UTF-8.

/// Bytes that are not UTF-8 as text the scanner reads, the way Python's `json.loads(bytes)` reads
/// them: UTF-8 with `surrogatepass`, so an encoded surrogate (`ED A0..BF 80..BF`) is that lone
/// surrogate, written here as its escape. Any other invalid sequence becomes U+FFFD, as in
/// `String::from_utf8_lossy` (Python fails on those, so the stand-in is ours). After an odd run
/// of backslashes the escape would read as an escaped backslash, where Python refuses a
/// backslash before the surrogate: U+FFFD stands in, and is refused alike.
pub fn surrogatepass_lossy(mut bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() + 16);
    loop {
        let e = match std::str::from_utf8(bytes) {
            Ok(rest) => {
                out.push_str(rest);
                return out;
            }
            Err(e) => e,
        };
        let (valid, rest) = bytes.split_at(e.valid_up_to());
        out.push_str(std::str::from_utf8(valid).unwrap_or_default());
        let after_backslash = out.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1;
        match rest {
            [0xED, hi @ 0xA0..=0xBF, lo @ 0x80..=0xBF, ..] if !after_backslash => {
                let surrogate = 0xD000 | u32::from(hi & 0x3F) << 6 | u32::from(lo & 0x3F);
                let _ = write!(out, "\\u{surrogate:04x}");
                bytes = &rest[3..];
            }
            _ => {
                out.push('\u{FFFD}');
                bytes = &rest[e.error_len().unwrap_or(rest.len())..];
            }
        }
    }
}

/// JSON as Python writes it, made readable by `serde_json` for display: an escaped lone
/// surrogate (which `serde_json` refuses) becomes `\ufffd`, and `NaN`, `Infinity` and
/// `-Infinity` (which JSON lacks; gptme writes sums that reach them) become strings naming them.
pub fn readable_by_serde(json: &str) -> std::borrow::Cow<'_, str> {
    const NAMES: [&str; 3] = ["NaN", "Infinity", "-Infinity"];
    if !json.contains("\\ud") && !json.contains("\\uD") && !NAMES[..2].iter().any(|n| json.contains(n)) {
        return json.into();
    }
    let b = json.as_bytes();
    let surrogate = |i: usize| -> Option<u32> {
        let hex = b.get(i + 2..i + 6)?;
        if b[i] != b'\\' || b[i + 1] != b'u' {
            return None;
        }
        let v = u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
        (0xD800..0xE000).contains(&v).then_some(v)
    };
    let mut out = String::with_capacity(json.len() + 16);
    let (mut i, mut last, mut in_string) = (0, 0, false);
    while i < b.len() {
        match b[i] {
            b'"' => {
                in_string = !in_string;
                i += 1;
            }
            b'\\' if in_string => match surrogate(i) {
                Some(hi) if hi < 0xDC00 && surrogate(i + 6).is_some_and(|lo| lo >= 0xDC00) => i += 12,
                Some(_) => {
                    out.push_str(&json[last..i]);
                    out.push_str("\\ufffd");
                    i += 6;
                    last = i;
                }
                None => i += 2, // the escaped character (it may be a backslash or a quote)
            },
            b'N' | b'I' | b'-' if !in_string => match NAMES.iter().find(|n| json[i..].starts_with(*n)) {
                Some(name) => {
                    out.push_str(&json[last..i]);
                    out.push('"');
                    out.push_str(name);
                    out.push('"');
                    i += name.len();
                    last = i;
                }
                None => i += 1,
            },
            _ => i += 1,
        }
    }
    out.push_str(&json[last..]);
    out.into()
}

/// Appends `cps` as a JSON string the way Python's `json.dumps` (ensure_ascii) writes it.
pub fn push_py_str_cps(out: &mut String, cps: impl IntoIterator<Item = u32>) {
    use std::fmt::Write;
    out.push('"');
    for cp in cps {
        match cp {
            0x22 => out.push_str("\\\""),
            0x5c => out.push_str("\\\\"),
            0x0a => out.push_str("\\n"),
            0x0d => out.push_str("\\r"),
            0x09 => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            0x20..=0x7e => out.push(cp as u8 as char),
            0x10000.. => {
                let v = cp - 0x10000;
                let _ = write!(out, "\\u{:04x}\\u{:04x}", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3ff));
            }
            _ => {
                let _ = write!(out, "\\u{cp:04x}");
            }
        }
    }
    out.push('"');
}

/// Appends a Rust string as Python's `json.dumps` writes it.
pub fn push_py_str(out: &mut String, s: &str) {
    push_py_str_cps(out, s.chars().map(|c| c as u32));
}

/// Formats a float as Python's `repr` does: shortest round-trip digits, exponent form outside
/// 1e-4 <= |x| < 1e16, and always a `.0` on integral values.
pub fn py_float(x: f64) -> String {
    let mut out = String::new();
    push_py_float(&mut out, x);
    out
}

/// Appends `x` as [`py_float`] writes it, without allocating (items have several floats, and an
/// item is rendered on every append).
pub fn push_py_float(out: &mut String, x: f64) {
    use std::fmt::Write;
    if x.is_nan() {
        return out.push_str("NaN");
    }
    if x.is_infinite() {
        return out.push_str(if x > 0.0 { "Infinity" } else { "-Infinity" });
    }
    if x == 0.0 {
        return out.push_str(if x.is_sign_negative() { "-0.0" } else { "0.0" });
    }
    if x.is_sign_negative() {
        out.push('-');
    }
    // `{:e}` gives the shortest round-trip digits, e.g. "1.7672616e9" or "5e-5": at most 17
    // digits, a point and an exponent, so 32 bytes hold it.
    let mut sci = Digits { buf: [0; 32], len: 0 };
    let _ = write!(sci, "{:e}", x.abs());
    let sci = &sci.buf[..sci.len];
    let e_at = sci.iter().position(|&c| c == b'e').unwrap_or(sci.len());
    let exp: i32 = std::str::from_utf8(&sci[e_at + 1..]).ok().and_then(|e| e.parse().ok()).unwrap_or(0);
    let mut digits = [0u8; 32];
    let mut n = 0;
    for &c in sci[..e_at].iter().filter(|&&c| c != b'.') {
        digits[n] = c;
        n += 1;
    }
    // When x lies exactly halfway between two shortest candidates that both read back as x,
    // Python takes the one with an even last digit; Rust's formatter takes the upper one.
    if digits[n - 1] % 2 == 1 {
        let d: u64 = digits[..n].iter().fold(0, |d, &c| d * 10 + u64::from(c - b'0'));
        let q = exp - (n as i32 - 1);
        if is_half_below(x.abs(), d, q) && format!("{}e{q}", d - 1).parse() == Ok(x.abs()) {
            digits[n - 1] -= 1;
        }
    }
    let digits = std::str::from_utf8(&digits[..n]).unwrap_or("0");
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        if point <= 0 {
            out.push_str("0.");
            (0..-point).for_each(|_| out.push('0'));
            out.push_str(digits);
        } else if point as usize >= digits.len() {
            out.push_str(digits);
            (digits.len()..point as usize).for_each(|_| out.push('0'));
            out.push_str(".0");
        } else {
            let (whole, frac) = digits.split_at(point as usize);
            let _ = write!(out, "{whole}.{frac}");
        }
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            let _ = write!(out, ".{rest}");
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
}

/// Whether `x` (positive, finite) is exactly `(d - 1/2) * 10^q`, i.e. `2x = (2d - 1) * 10^q`.
/// Exact integer arithmetic on x's binary form `m * 2^e`.
fn is_half_below(x: f64, d: u64, q: i32) -> bool {
    let bits = x.to_bits();
    let (mantissa, exp) = match (bits >> 52) as i32 {
        0 => (bits, -1074),
        biased => (bits & ((1 << 52) - 1) | 1 << 52, biased - 1075),
    };
    let zeros = mantissa.trailing_zeros();
    let (m, e) = (u128::from(mantissa >> zeros), exp + zeros as i32);
    let odd = u128::from(2 * d - 1);
    let pow5 = |p: i32| (p <= 55).then(|| 5u128.pow(p as u32));
    if q >= 0 {
        // x = odd * 5^q * 2^(q-1): odd parts and powers of two must both match.
        e == q - 1 && pow5(q).and_then(|f| odd.checked_mul(f)) == Some(m)
    } else {
        // x * 5^p * 2^(p+1) = odd, with p = -q.
        let p = -q;
        e + p + 1 == 0 && pow5(p).and_then(|f| m.checked_mul(f)) == Some(odd)
    }
}

/// A fixed buffer that `write!` fills (longer output is cut, which `{:e}` of an f64 never is).
struct Digits {
    buf: [u8; 32],
    len: usize,
}

impl std::fmt::Write for Digits {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let take = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_invalid_utf8_as_python_reads_json_bytes() {
        // An encoded surrogate is the lone surrogate (surrogatepass); other bad bytes U+FFFD.
        assert_eq!(surrogatepass_lossy(b"\"a\xed\xa0\x80b\xed\xbf\xbf\""), "\"a\\ud800b\\udfff\"");
        assert_eq!(surrogatepass_lossy(b"a\xffb\xed\x9f\xbf\xe2\x82"), "a\u{FFFD}b\u{D7FF}\u{FFFD}");
        // A backslash before it: Python refuses the escape, and so does the stand-in.
        assert_eq!(surrogatepass_lossy(b"\\\xed\xa0\x80"), "\\\u{FFFD}\u{FFFD}\u{FFFD}");
        assert_eq!(surrogatepass_lossy(b"\\\\\xed\xa0\x80"), "\\\\\\ud800");
    }

    #[test]
    fn lone_surrogates_and_non_finite_floats_can_be_read_back() {
        let text = r#"["a\ud83d b", "\ud83d\ude00", "\\ud83d", "\udc00"]"#;
        let v: serde_json::Value = serde_json::from_str(&readable_by_serde(text)).unwrap();
        assert_eq!(v, serde_json::json!(["a\u{fffd} b", "\u{1F600}", "\\ud83d", "\u{fffd}"]));
        // Outside strings only: a quote escaped in a string does not end it.
        let text = r#"{"NaN": NaN, "s": "x\" NaN -Infinity", "c": [-Infinity, Infinity, -1.5], "m": {"Infinity": 1}}"#;
        let v: serde_json::Value = serde_json::from_str(&readable_by_serde(text)).unwrap();
        let want =
            r#"{"NaN": "NaN", "s": "x\" NaN -Infinity", "c": ["-Infinity", "Infinity", -1.5], "m": {"Infinity": 1}}"#;
        assert_eq!(v, serde_json::from_str::<serde_json::Value>(want).unwrap());
    }

    #[test]
    fn python_float_repr() {
        for (x, want) in [
            (0.0, "0.0"),
            (1767261600.0, "1767261600.0"),
            (1763630067.7665813, "1763630067.7665813"),
            (0.6000000000000001, "0.6000000000000001"),
            (5e-05, "5e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (123456789012345.6, "123456789012345.6"),
            (-2.5, "-2.5"),
            (1.5e-7, "1.5e-07"),
            (-1e-300, "-1e-300"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (-0.0, "-0.0"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
            (1e15, "1000000000000000.0"),
            (0.00012345, "0.00012345"),
            // Exactly halfway between two shortest candidates: Python keeps the even digit.
            (1763630067.0 + 1.0 / 256.0, "1763630067.0039062"),
            (1763630067.0 + 3.0 / 256.0, "1763630067.0117188"),
            (-2024822970557068.2, "-2024822970557068.2"),
            (-88867160488114.12, "-88867160488114.12"),
            (0.5, "0.5"),
            (2.5e-8, "2.5e-08"),
            // A tie whose lower candidate would read back as another float.
            (5.960464477539063e-08, "5.960464477539063e-08"),
        ] {
            assert_eq!(py_float(x), want);
        }
    }
}
