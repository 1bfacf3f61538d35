//! A validating JSON scanner that skips what it is not asked for, plus the pieces needed to write
//! JSON byte-for-byte as Python's `json.dumps` does.
//!
//! Why not `serde_json::Value`: a conversation line is mostly one huge `content` string we never
//! need. Skipping strings 64 bytes at a time (`block.rs`) while still validating them is several
//! times faster than building values, and it lets us keep Python's view of strings (lone
//! surrogates survive).

/// Python's default limit on the digits of an integer read from text.
const PYTHON_INT_MAX_STR_DIGITS: usize = 4300;

/// Why a text is not JSON as Python's `json.loads(bytes)` reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    Json,
    /// Invalid UTF-8 inside a string (Python fails to decode before parsing).
    Utf8,
}

pub type Result<T> = std::result::Result<T, Malformed>;

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

mod block;

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

fn closer(object: bool) -> u8 {
    if object {
        b'}'
    } else {
        b']'
    }
}

/// The containers [`Scanner::skip`] is inside, innermost last: a bit each, set for an object.
/// The first 128 levels need no allocation.
#[derive(Default)]
struct Open {
    len: usize,
    first: u128,
    rest: Vec<u64>,
}

impl Open {
    fn push(&mut self, object: bool) {
        let (i, bit) = (self.len, u64::from(object));
        if i < 128 {
            self.first = self.first & !(1 << i) | u128::from(bit) << i;
        } else {
            let (word, at) = ((i - 128) / 64, (i - 128) % 64);
            if word == self.rest.len() {
                self.rest.push(0);
            }
            self.rest[word] = self.rest[word] & !(1 << at) | bit << at;
        }
        self.len += 1;
    }

    fn innermost(&self) -> Option<bool> {
        let i = self.len.checked_sub(1)?;
        Some(if i < 128 { self.first >> i & 1 == 1 } else { self.rest[(i - 128) / 64] >> ((i - 128) % 64) & 1 == 1 })
    }

    fn pop(&mut self) {
        self.len -= 1;
    }
}

/// What kind of value comes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

/// A cursor over one JSON text in bytes. UTF-8 is validated where it can occur (in strings).
pub struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Scanner { b, i: 0 }
    }

    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    /// How far the scan has come, as a byte offset into the text.
    pub fn offset(&self) -> usize {
        self.i
    }

    /// True when only whitespace is left.
    pub fn at_end(&mut self) -> bool {
        self.ws();
        self.i == self.b.len()
    }

    pub fn peek(&mut self) -> Result<Kind> {
        self.ws();
        Ok(match self.b.get(self.i).ok_or(Malformed::Json)? {
            b'{' => Kind::Object,
            b'[' => Kind::Array,
            b'"' => Kind::String,
            b't' | b'f' => Kind::Bool,
            b'n' => Kind::Null,
            b'-' | b'0'..=b'9' | b'N' | b'I' => Kind::Number,
            _ => return Err(Malformed::Json),
        })
    }

    /// Reads a string value, validating escapes and UTF-8 and rejecting raw control characters
    /// (Python's strict mode). Nothing is copied.
    #[inline]
    pub fn string(&mut self) -> Result<RawStr<'a>> {
        self.ws();
        if self.b.get(self.i) != Some(&b'"') {
            return Err(Malformed::Json);
        }
        let start = self.i + 1;
        let end = match block::short_string_end(self.b, start) {
            Some(end) => end,
            None => block::string_end(self.b, start)?,
        };
        self.i = end + 1;
        Ok(RawStr { bytes: &self.b[start..end] })
    }

    /// Reads a number (JSON grammar plus Python's `NaN`, `Infinity`, `-Infinity`) as text.
    pub fn number(&mut self) -> Result<&'a str> {
        self.ws();
        let start = self.i;
        for lit in ["NaN", "Infinity", "-Infinity"] {
            if self.b[self.i..].starts_with(lit.as_bytes()) {
                self.i += lit.len();
                return Ok(lit);
            }
        }
        let digits = |s: &mut Self| {
            let from = s.i;
            while s.b.get(s.i).is_some_and(u8::is_ascii_digit) {
                s.i += 1;
            }
            s.i - from
        };
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let integer_digits = match self.b.get(self.i) {
            Some(b'0') => {
                self.i += 1;
                1
            }
            Some(b'1'..=b'9') => digits(self),
            _ => return Err(Malformed::Json),
        };
        let mut integer = true;
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            integer = false;
            if digits(self) == 0 {
                return Err(Malformed::Json);
            }
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            integer = false;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(Malformed::Json);
            }
        }
        // Python (since 3.10.7 and 3.11) refuses to read an integer of more digits than this
        // (`int_max_str_digits`), and json.loads with it: gptme skips the line as invalid.
        if integer && integer_digits > PYTHON_INT_MAX_STR_DIGITS {
            return Err(Malformed::Json);
        }
        // Validated ASCII, so this cannot fail.
        std::str::from_utf8(&self.b[start..self.i]).map_err(|_| Malformed::Json)
    }

    fn literal(&mut self, lit: &[u8]) -> Result<()> {
        if self.b[self.i..].starts_with(lit) {
            self.i += lit.len();
            Ok(())
        } else {
            Err(Malformed::Json)
        }
    }

    pub fn bool(&mut self) -> Result<bool> {
        self.ws();
        if self.literal(b"true").is_ok() {
            Ok(true)
        } else {
            self.literal(b"false").map(|_| false)
        }
    }

    /// Skips one value of any kind, validating it.
    #[inline]
    pub fn skip(&mut self) -> Result<()> {
        match self.peek()? {
            Kind::String => self.string().map(drop),
            Kind::Number => self.number().map(drop),
            Kind::Bool => self.bool().map(drop),
            Kind::Null => self.literal(b"null"),
            Kind::Object | Kind::Array => self.skip_container(),
        }
    }

    /// Skips an object or array. Containers are walked with a stack of bits, not by recursion,
    /// so nesting of any depth is read: Python's own limit depends on its version and on how
    /// deep its stack already is (about 990 levels in gptme-server on 3.11, thousands on 3.13),
    /// and past it gptme fails the whole list rather than skip the line.
    fn skip_container(&mut self) -> Result<()> {
        let mut open = Open::default();
        loop {
            // A value begins here.
            match self.peek()? {
                Kind::String => drop(self.string()?),
                Kind::Number => drop(self.number()?),
                Kind::Bool => drop(self.bool()?),
                Kind::Null => self.literal(b"null")?,
                kind @ (Kind::Object | Kind::Array) => {
                    let object = kind == Kind::Object;
                    self.i += 1;
                    self.ws();
                    if self.b.get(self.i) != Some(&closer(object)) {
                        open.push(object);
                        if object {
                            self.key()?;
                        }
                        continue;
                    }
                    self.i += 1;
                }
            }
            // A value ended: close what it ends, up to the next member or element.
            loop {
                let Some(object) = open.innermost() else { return Ok(()) };
                self.ws();
                match self.b.get(self.i) {
                    Some(b',') => {
                        self.i += 1;
                        if object {
                            self.key()?;
                        }
                        break;
                    }
                    Some(&c) if c == closer(object) => {
                        self.i += 1;
                        open.pop();
                    }
                    _ => return Err(Malformed::Json),
                }
            }
        }
    }

    /// An object's key and the colon after it.
    fn key(&mut self) -> Result<RawStr<'a>> {
        let key = self.string()?;
        self.ws();
        self.literal(b":")?;
        Ok(key)
    }

    /// Walks `open` element (`,` element)* `close`, or an empty `open close`; `element` must
    /// consume one element. Objects and arrays differ only in their brackets and elements.
    #[inline(always)]
    fn sequence(&mut self, open: u8, close: u8, mut element: impl FnMut(&mut Self) -> Result<()>) -> Result<()> {
        self.ws();
        if self.b.get(self.i) != Some(&open) {
            return Err(Malformed::Json);
        }
        self.i += 1;
        self.ws();
        if self.b.get(self.i) != Some(&close) {
            loop {
                element(self)?;
                self.ws();
                match self.b.get(self.i) {
                    Some(b',') => self.i += 1,
                    Some(&c) if c == close => break,
                    _ => return Err(Malformed::Json),
                }
            }
        }
        self.i += 1;
        Ok(())
    }

    /// Walks an object; `member` gets each key and must consume its value.
    pub fn object(&mut self, mut member: impl FnMut(&mut Self, RawStr<'a>) -> Result<()>) -> Result<()> {
        self.sequence(b'{', b'}', |s| {
            let key = s.key()?;
            member(s, key)
        })
    }

    /// Walks an array; `item` must consume each element.
    pub fn array(&mut self, item: impl FnMut(&mut Self) -> Result<()>) -> Result<()> {
        self.sequence(b'[', b']', item)
    }
}

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

    fn valid(s: &str) -> bool {
        let mut sc = Scanner::new(s.as_bytes());
        sc.skip().is_ok() && sc.at_end()
    }

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
    fn validates_like_python() {
        assert!(valid(r#"{"a": [1, -2.5e3, true, null, "x\u00e9\n"], "b": {}}"#));
        assert!(valid("NaN"));
        for bad in [r#"{"a": 01}"#, r#"{"a" 1}"#, "[1,]", "\"tab\there\"", r#""\x""#, "{", "tru", "1."] {
            assert!(!valid(bad), "{bad} should be malformed");
        }
        // Python's int_max_str_digits: 4300 digits at most, sign aside; floats are not limited.
        let digits = |n: usize| "7".repeat(n);
        assert!(valid(&digits(4300)) && valid(&format!("-{}", digits(4300))));
        assert!(!valid(&digits(4301)) && !valid(&format!("[-{}]", digits(4301))));
        assert!(valid(&format!("{}.5", digits(5000))) && valid(&format!("{}e1", digits(5000))));
        // Any depth: Python's limit is its stack's, and past it gptme fails the whole list.
        let deep = "[{\"a\": ".repeat(100_000) + "[]" + &"}]".repeat(100_000);
        assert!(valid(&deep));
        assert!(!valid(&(deep.clone() + "]")));
        assert!(!valid(&deep[1..]));
    }

    /// Random documents, nested at times past 128 levels, half of them with one token changed:
    /// the iterative skip accepts exactly what serde_json does (Python's grammar, NaN aside),
    /// with its recursion limit off.
    #[test]
    fn nesting_agrees_with_serde_json() {
        use crate::test_rng::Rng;
        fn value(rng: &mut Rng, depth: usize, out: &mut Vec<&'static str>) {
            let deeper = depth < 200 && rng.below(4) > 0;
            match rng.below(if deeper { 6 } else { 3 }) {
                0 => out.push("1"),
                1 => out.push("\"s\""),
                2 => out.push("null"),
                3 | 4 => {
                    out.push("[");
                    for i in 0..rng.below(3) {
                        if i > 0 {
                            out.push(",");
                        }
                        value(rng, depth + 1, out);
                    }
                    out.push("]");
                }
                _ => {
                    out.push("{");
                    for i in 0..rng.below(3) {
                        if i > 0 {
                            out.push(",");
                        }
                        out.extend(["\"k\"", ":"]);
                        value(rng, depth + 1, out);
                    }
                    out.push("}");
                }
            }
        }
        let tokens = ["[", "]", "{", "}", ",", ":", "\"k\"", "1", " ", ""];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut both_valid = 0;
        for _ in 0..20_000 {
            let mut doc = Vec::new();
            value(&mut rng, 0, &mut doc);
            if rng.below(2) == 0 {
                let at = rng.index(doc.len());
                doc[at] = tokens[rng.index(tokens.len())];
            }
            let doc = doc.join(if rng.below(2) == 0 { "" } else { " " });
            let ours = valid(&doc);
            let mut de = serde_json::Deserializer::from_str(&doc);
            de.disable_recursion_limit();
            let theirs =
                <serde::de::IgnoredAny as serde::Deserialize>::deserialize(&mut de).and_then(|_| de.end()).is_ok();
            assert_eq!(ours, theirs, "{doc}");
            both_valid += usize::from(ours);
        }
        assert!(both_valid > 5_000, "too few valid documents to mean much: {both_valid}");
    }

    #[test]
    fn checks_utf8_inside_strings() {
        let parse = |b: &[u8]| Scanner::new(b).string().map(|s| s.bytes.len());
        assert_eq!(parse("\"caf\u{e9} \u{1F600} long enough to use the wide path\"".as_bytes()), Ok(43));
        for bad in [
            &b"\"\xff\""[..],
            b"\"\xc0\x80\"",
            b"\"\xed\xa0\x80\"",
            b"\"abc\xe2\x82\"",
            b"\"0123456789abcdef\xf5\x80\x80\x80\"",
        ] {
            assert_eq!(parse(bad), Err(Malformed::Utf8), "{bad:?}");
        }
        assert_eq!(parse(b"\"0123456789abcdef\x01\""), Err(Malformed::Json));
    }

    /// Strings built from awkward pieces at every block offset: validity must agree with
    /// serde_json (which reads JSON strings as Python does, lone surrogates aside).
    #[test]
    fn string_scan_agrees_with_serde_json() {
        let pieces: [&[u8]; 12] = [
            b"a",
            b"bcdefgh",
            b"\\\\",
            b"\\\"",
            b"\\n",
            b"\\u00e9",
            "\u{e9}".as_bytes(),
            b"\"",
            b"\\",
            b"\x01",
            b"\\x",
            b"\xff",
        ];
        let mut rng = crate::test_rng::Rng(0x2545_F491_4F6C_DD1D);
        for _ in 0..20_000 {
            let mut doc = vec![b'"'];
            for _ in 0..rng.0 % 40 {
                doc.extend_from_slice(pieces[rng.index(12)]);
            }
            doc.push(b'"');
            let ours = {
                let mut sc = Scanner::new(&doc);
                sc.string().is_ok() && sc.at_end()
            };
            let theirs = serde_json::from_slice::<serde_json::Value>(&doc).is_ok();
            assert_eq!(ours, theirs, "{}", String::from_utf8_lossy(&doc));
        }
    }

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
    fn keeps_lone_surrogates_and_joins_pairs() {
        let mut sc = Scanner::new(br#""a\ud83d b\ud83d\ude00""#);
        let s = sc.string().unwrap();
        assert_eq!(s.code_points().collect::<Vec<_>>(), vec![0x61, 0xD83D, 0x20, 0x62, 0x1F600]);
        let mut out = String::new();
        push_py_str_cps(&mut out, s.code_points());
        assert_eq!(out, r#""a\ud83d b\ud83d\ude00""#);
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
