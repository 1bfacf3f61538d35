//! A JSON string as it is written between its quotes, validated by the scanner: its characters
//! and code points read off the bytes, escapes decoded one at a time where they are, forwards and
//! backwards, without copying the string.

/// The raw bytes between a string's quotes, already validated: every backslash in them starts
/// an escape. One slice, so it travels in two registers through the hot parse loop.
#[derive(Debug, Clone, Copy)]
pub struct RawStr<'a> {
    pub bytes: &'a [u8],
}

impl<'a> RawStr<'a> {
    /// True when the string holds escapes (decoding it differs from its bytes).
    #[inline]
    pub fn has_escapes(&self) -> bool {
        self.bytes.contains(&b'\\')
    }

    /// True when the decoded string equals `s`.
    #[inline]
    pub fn is(&self, s: &str) -> bool {
        if self.has_escapes() {
            self.decode_lossy() == s
        } else {
            self.bytes == s.as_bytes()
        }
    }

    /// The code points as Python sees them, decoded lazily: escaped surrogate pairs combine,
    /// lone surrogates stay (0xD800..=0xDFFF).
    pub fn code_points(&self) -> CodePoints<'a> {
        // The scanner validated the string's UTF-8, so this cannot fail.
        CodePoints { chars: std::str::from_utf8(self.bytes).unwrap_or_default().chars() }
    }

    /// Decodes to a Rust string; lone surrogates become U+FFFD.
    pub fn decode_lossy(&self) -> String {
        // The scanner validated the string's UTF-8, so this cannot fail.
        let text = std::str::from_utf8(self.bytes).unwrap_or_default();
        let bytes = text.as_bytes();
        let Some(mut at) = memchr::memchr(b'\\', bytes) else { return text.to_owned() };
        // The runs between escapes are copied whole: most of a long string is one. Escapes
        // that follow one another (every letter of another alphabet, as gptme writes it) are
        // decoded one after another without a search between them.
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        loop {
            out.push_str(&text[copied..at]);
            let (c, len) = escape_at(bytes, at);
            out.push(c);
            copied = at + len;
            at = match bytes.get(copied) {
                Some(b'\\') => copied,
                Some(_) => match memchr::memchr(b'\\', &bytes[copied..]) {
                    Some(i) => copied + i,
                    None => break,
                },
                None => break,
            };
        }
        out.push_str(&text[copied..]);
        out
    }

    /// The character that starts at `at` (where [`RawStr::decode_lossy`] starts one) as that
    /// decodes it, and how many bytes write it; None at the end.
    pub fn char_at(&self, at: usize) -> Option<(char, usize)> {
        let bytes = self.bytes;
        match *bytes.get(at)? {
            b'\\' => Some(escape_at(bytes, at)),
            b if b.is_ascii() => Some((char::from(b), 1)),
            _ => {
                let c = bytes[at..bytes.len().min(at + 4)].utf8_chunks().next()?.valid().chars().next()?;
                Some((c, c.len_utf8()))
            }
        }
    }

    /// Where the character before the one at `at` starts, read as [`RawStr::decode_lossy`]
    /// reads them; None at the start. A search steps back so from a character it found, over
    /// escapes, to where a text around it would begin, rather than decode the whole string.
    pub fn char_before(&self, at: usize) -> Option<usize> {
        let bytes = self.bytes;
        let last = at.checked_sub(1)?;
        let Some(start) = escape_holding(bytes, last) else {
            // Not escaped: the last byte is ASCII, or ends a character in UTF-8.
            let from = at.saturating_sub(4);
            return bytes[from..at].iter().rposition(|&b| b & 0xC0 != 0x80).map(|i| from + i);
        };
        // A low surrogate's escape completes a pair with a high one's just before it.
        let surrogate = |at: usize, range: std::ops::Range<u32>| {
            bytes.get(at + 1) == Some(&b'u') && hex4_at(bytes, at + 2).is_some_and(|u| range.contains(&u))
        };
        match start.checked_sub(6) {
            Some(high)
                if surrogate(start, 0xDC00..0xE000)
                    && escape_holding(bytes, high) == Some(high)
                    && surrogate(high, 0xD800..0xDC00) =>
            {
                Some(high)
            }
            _ => Some(start),
        }
    }
}

/// Where the escape that the byte at `at` is part of starts (its backslash), if it is part of
/// one: validated bytes hold no backslash but an escape's first and the second of `\\`, and an
/// escape is 6 bytes at most, so the last backslash up to `at` tells, by whether it ends an odd
/// run of them (it starts an escape) or an even one (it ends `\\`).
pub fn escape_holding(bytes: &[u8], at: usize) -> Option<usize> {
    let from = at.saturating_sub(5);
    let last = from + bytes.get(from..=at)?.iter().rposition(|&b| b == b'\\')?;
    let run = bytes[..=last].iter().rev().take_while(|&&b| b == b'\\').count();
    if run % 2 == 0 {
        return (last == at).then(|| last - 1);
    }
    let len = if bytes.get(last + 1) == Some(&b'u') { 6 } else { 2 };
    (at < last + len).then_some(last)
}

/// The character that the escape at `at` (a backslash) stands for, and the escape's length; a
/// lone surrogate is U+FFFD. What the scanner validated is always an escape, but whatever the
/// bytes, the length ends where a character does.
fn escape_at(bytes: &[u8], at: usize) -> (char, usize) {
    let c = match bytes.get(at + 1) {
        Some(b'u') => {
            let Some(hi) = hex4_at(bytes, at + 2) else { return ('\u{FFFD}', 2) };
            if (0xD800..0xDC00).contains(&hi) && bytes.get(at + 6..at + 8) == Some(b"\\u") {
                // A following \uDC00..\uDFFF escape completes the pair.
                if let Some(lo @ 0xDC00..0xE000) = hex4_at(bytes, at + 8) {
                    let pair = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    return (char::from_u32(pair).unwrap_or('\u{FFFD}'), 12);
                }
            }
            return (char::from_u32(hi).unwrap_or('\u{FFFD}'), 6);
        }
        Some(b'n') => '\n',
        Some(b't') => '\t',
        Some(b'r') => '\r',
        Some(b'b') => '\u{8}',
        Some(b'f') => '\u{c}',
        Some(&other) if other.is_ascii() => char::from(other),
        _ => return ('\u{FFFD}', 1),
    };
    (c, 2)
}

/// The number that the four hex digits at `at` write, if they are four hex digits.
fn hex4_at(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = bytes.get(at..at + 4)?;
    digits.iter().try_fold(0, |v, &d| Some(v * 16 + char::from(d).to_digit(16)?))
}

/// See [`RawStr::code_points`].
pub struct CodePoints<'a> {
    chars: std::str::Chars<'a>,
}

impl Iterator for CodePoints<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let c = self.chars.next()?;
        if c != '\\' {
            return Some(c as u32);
        }
        let cp = match self.chars.next()? {
            'n' => 0x0a,
            't' => 0x09,
            'r' => 0x0d,
            'b' => 0x08,
            'f' => 0x0c,
            'u' => {
                let hi = hex4(&mut self.chars);
                if (0xD800..0xDC00).contains(&hi) && self.chars.as_str().starts_with("\\u") {
                    // A following \uDC00..\uDFFF escape completes the pair.
                    let mut peek = self.chars.clone();
                    peek.nth(1);
                    let lo = hex4(&mut peek);
                    if (0xDC00..0xE000).contains(&lo) {
                        self.chars = peek;
                        return Some(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
                    }
                }
                hi
            }
            other => other as u32,
        };
        Some(cp)
    }
}

fn hex4(chars: &mut std::str::Chars<'_>) -> u32 {
    let mut v = 0;
    for _ in 0..4 {
        v = v * 16 + chars.next().and_then(|c| c.to_digit(16)).unwrap_or(0);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{push_py_str_cps, Scanner};

    /// Every escape JSON has, an escaped surrogate pair, lone surrogates (U+FFFD), and the
    /// plain runs around them whole.
    #[test]
    fn decodes_strings() {
        let decoded = |json: &str| Scanner::new(json.as_bytes()).string().unwrap().decode_lossy();
        assert_eq!(decoded(r#""plain é""#), "plain é");
        assert_eq!(decoded(r#""a\nb\t\"q\" \\ \/ \b\f\r end""#), "a\nb\t\"q\" \\ / \u{8}\u{c}\r end");
        assert_eq!(decoded(r#""caf\u00e9 \ud83d\ude00!""#), "café 😀!");
        assert_eq!(decoded(r#""lone \ud800x \udc00 \ud800\u0041""#), "lone \u{FFFD}x \u{FFFD} \u{FFFD}A");
        assert_eq!(decoded(r#""\u00E9\u00e9""#), "éé");
    }

    /// What the random strings of the tests below are made of: every escape JSON has, hex in
    /// either case, a pair, each half of one alone, runs of escapes side by side once joined,
    /// `\\` before what would be an escape, and UTF-8 of one to four bytes.
    #[rustfmt::skip]
    const PIECES: [&str; 28] = [
        "a", " ", "u", "0", "é", "数", "😀", "\\n", "\\\\", "\\\"", "\\/", "\\t", "\\b", "\\f", "\\r",
        "\\u0041", "\\u00e9", "\\u00E9", "\\u043f", "\\u043F", "\\u7d22", "\\ud83d", "\\ude00",
        "\\ud83d\\ude00", "\\uDBFF\\uDFFF", "\\u0000", "\\\\u0041", "\\\\ud83d",
    ];

    /// Random strings of escapes (pairs, lone surrogates, runs of escapes side by side) and
    /// plain text decode as their code points read one at a time; and bytes no scanner
    /// validated (a backslash last, bad hex, UTF-8 after a backslash) decode without a panic.
    #[test]
    fn decoding_agrees_with_the_code_points() {
        let mut rng = crate::test_rng::Rng(0x00DE_C0DE);
        let pieces = PIECES;
        for _ in 0..20_000 {
            let raw: String = (0..rng.below(12)).map(|_| pieces[rng.index(pieces.len())]).collect();
            let json = format!("\"{raw}\"");
            let string = Scanner::new(json.as_bytes()).string().unwrap();
            let expected: String = string.code_points().map(|cp| char::from_u32(cp).unwrap_or('\u{FFFD}')).collect();
            assert_eq!(string.decode_lossy(), expected, "{raw}");
        }
        let bytes = ["\\", "\\u", "\\u00", "\\u00g9", "\\ué", "\\é", "\\ud800\\udc0é", "x", "é", "\\u0041"];
        for _ in 0..20_000 {
            let raw: String = (0..rng.below(6)).map(|_| bytes[rng.index(bytes.len())]).collect();
            let decoded = RawStr { bytes: raw.as_bytes() }.decode_lossy();
            assert!(decoded.len() <= raw.len() * 3, "{raw}: {decoded}");
        }
    }

    /// Stepping back a character at a time from each character's start gives the one before,
    /// and each byte is part of the escape it lies in, over random strings of escapes side by
    /// side, pairs, halves of pairs and UTF-8.
    #[test]
    fn steps_back_over_escapes_as_decoding_steps_forward() {
        let mut rng = crate::test_rng::Rng(0x0BAC_C0DE);
        let pieces = PIECES;
        for _ in 0..20_000 {
            let raw: String = (0..rng.below(10)).map(|_| pieces[rng.index(pieces.len())]).collect();
            let string = RawStr { bytes: raw.as_bytes() };
            let (mut starts, mut chars, mut escapes) = (Vec::new(), String::new(), vec![None; raw.len()]);
            let mut at = 0;
            while let Some((c, len)) = string.char_at(at) {
                if raw.as_bytes()[at] == b'\\' {
                    for (i, held) in escapes[at..at + len].iter_mut().enumerate() {
                        *held = Some(at + i / 6 * 6);
                    }
                }
                starts.push(at);
                chars.push(c);
                at += len;
            }
            assert_eq!((at, chars), (raw.len(), string.decode_lossy()), "{raw}");
            starts.push(raw.len());
            assert_eq!(string.char_before(0), None, "{raw}");
            for pair in starts.windows(2) {
                assert_eq!(string.char_before(pair[1]), Some(pair[0]), "{raw} at {}", pair[1]);
            }
            for (at, held) in escapes.iter().enumerate() {
                assert_eq!(escape_holding(raw.as_bytes(), at), *held, "{raw} at {at}");
            }
        }
    }

    #[test]
    fn keeps_lone_surrogates_and_joins_pairs() {
        let mut sc = Scanner::new(br#""a\ud83d b\ud83d\ude00""#);
        let s = sc.string().unwrap();
        assert_eq!(s.code_points().collect::<Vec<_>>(), vec![0x61, 0xD83D, 0x20, 0x62, 0x1F600]);
        let mut out = String::new();
        push_py_str_cps(&mut out, s.code_points());
        assert_eq!(out, r#""a\ud83d b\ud83d\ude00""#);
    }
}
