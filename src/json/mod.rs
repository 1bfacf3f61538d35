//! A validating JSON scanner that skips what it is not asked for, plus the pieces needed to write
//! JSON byte-for-byte as Python's `json.dumps` does.
//!
//! Why not `serde_json::Value`: a conversation line is mostly one huge `content` string we never
//! need. Skipping strings 64 bytes at a time (`block.rs`) while still validating them is several
//! times faster than building values, and it lets us keep Python's view of strings (lone
//! surrogates survive).
//!
//! This file is the scanner. `string.rs` reads a string as it is written (escapes and all)
//! without copying it; `python.rs` writes JSON as Python does and makes Python's JSON readable
//! by serde_json.

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

mod block;
mod python;
mod string;

pub use python::{push_py_float, push_py_str, push_py_str_cps, py_float, readable_by_serde, surrogatepass_lossy};
pub use string::{escape_holding, CodePoints, RawStr};

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

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(s: &str) -> bool {
        let mut sc = Scanner::new(s.as_bytes());
        sc.skip().is_ok() && sc.at_end()
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
}
