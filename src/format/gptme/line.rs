//! One gptme JSONL line: the few fields the metadata needs, found without building a tree.

use crate::json::{Kind, Malformed, RawStr, Result, Scanner};
use crate::pynum::PyNum;

/// What `timestamp` held, in the terms gptme's `created` logic cares about.
#[derive(Debug, Clone, Copy)]
pub enum Timestamp<'a> {
    /// Absent: gptme falls back to the file's mtime.
    Missing,
    Text(RawStr<'a>),
    /// Present but not text (null included): gptme's reader rejects the line.
    Unusable,
}

/// Token counts and cost of one `metadata` object.
#[derive(Debug, Clone, Copy, Default)]
pub struct Metadata<'a> {
    /// False for `{}`, which gptme ignores entirely.
    pub nonempty: bool,
    /// Not empty when present.
    pub model: Option<RawStr<'a>>,
    /// gptme adds it to a float sum: an int is made a float there.
    pub cost: Count<f64>,
    pub input_tokens: Count<PyNum>,
    pub output_tokens: Count<PyNum>,
    pub cache_read_tokens: Count<PyNum>,
    pub cache_creation_tokens: Count<PyNum>,
}

/// A value gptme adds as `value or 0`: a number (a falsy value of any type is `0`, `true` is
/// `1`), or a truthy value that is not one, on which Python raises TypeError.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Count<T> {
    Number(T),
    NotNumber,
}

impl<T: Default> Default for Count<T> {
    fn default() -> Self {
        Count::Number(T::default())
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Tokens {
    input: Count<PyNum>,
    output: Count<PyNum>,
    cache_read: Count<PyNum>,
    cache_creation: Count<PyNum>,
}

/// A parsed line. `bad_fields` counts known fields of the wrong type (ignored, not fatal).
#[derive(Debug)]
pub struct Line<'a> {
    pub role: Option<RawStr<'a>>,
    pub content: Option<RawStr<'a>>,
    pub timestamp: Timestamp<'a>,
    pub metadata: Option<Metadata<'a>>,
    /// `files` is absent or something Python can iterate (gptme's reader fails on others).
    files_iterable: bool,
    /// `metadata` is absent, falsy or an object (gptme's reader fails on others).
    metadata_readable: bool,
    pub bad_fields: u32,
}

impl<'a> Line<'a> {
    /// Parses a complete line. Fails when gptme's `json.loads` would: not UTF-8
    /// ([`Malformed::Utf8`]), not JSON, or (our rule, where gptme crashes) not an object.
    pub fn parse(bytes: &'a [u8]) -> Result<Line<'a>> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut line = Line {
            role: None,
            content: None,
            timestamp: Timestamp::Missing,
            metadata: None,
            files_iterable: true,
            metadata_readable: true,
            bad_fields: 0,
        };
        // A `metadata` key written plainly: the line's bytes hold `"metadata"` (see below).
        let mut metadata_plain = false;
        let mut sc = Scanner::new(bytes);
        sc.object(|sc, key| {
            match key_name(&key).as_ref() {
                b"role" => line.role = string_or_skip(sc, &mut line.bad_fields)?,
                b"content" => line.content = string_or_skip(sc, &mut line.bad_fields)?,
                b"timestamp" => line.timestamp = timestamp(sc)?,
                b"metadata" => {
                    metadata_plain |= !key.has_escapes();
                    line.metadata = None;
                    line.metadata_readable = true;
                    if sc.peek()? == Kind::Object {
                        line.metadata = Some(metadata(sc, &mut line.bad_fields)?);
                    } else {
                        // gptme's totals skip metadata that is not an object.
                        line.bad_fields += 1;
                        line.metadata_readable = !truthy(sc)?;
                    }
                }
                b"files" => {
                    line.files_iterable = matches!(sc.peek()?, Kind::Array | Kind::String | Kind::Object);
                    sc.skip()?;
                }
                _ => sc.skip()?,
            }
            Ok(())
        })?;
        if !sc.at_end() {
            return Err(Malformed::Json);
        }
        // gptme's sums parse only lines whose bytes hold `"metadata"`: a key spelled with
        // escapes (`"met\u0061data"`) and nothing else so spelled leaves the line out of them.
        // Its reader of messages still decodes the key, so only the sums forget it.
        if line.metadata.is_some() && !metadata_plain && memchr::memmem::find(bytes, b"\"metadata\"").is_none() {
            line.metadata = None;
        }
        Ok(line)
    }

    /// Whether gptme's log reader takes this line as a message (`created` comes from the first
    /// one): role and content are strings, and `files` and `metadata` are usable. Its timestamp
    /// must parse too, which the caller checks.
    pub fn is_message(&self) -> bool {
        self.role.is_some() && self.content.is_some() && self.files_iterable && self.metadata_readable
    }

    /// The role when it is `user` or `assistant`, the lines a preview may come from.
    pub fn conversational_role(&self) -> Option<&'static str> {
        let role = self.role?;
        if role.is("user") {
            Some("user")
        } else if role.is("assistant") {
            Some("assistant")
        } else {
            None
        }
    }
}

/// A key's decoded bytes, borrowed unless it holds escapes (which no writer uses for these).
#[inline]
fn key_name<'k>(key: &RawStr<'k>) -> std::borrow::Cow<'k, [u8]> {
    if key.has_escapes() {
        std::borrow::Cow::Owned(key.decode_lossy().into_bytes())
    } else {
        std::borrow::Cow::Borrowed(key.bytes)
    }
}

fn string_or_skip<'a>(sc: &mut Scanner<'a>, bad: &mut u32) -> Result<Option<RawStr<'a>>> {
    if sc.peek()? == Kind::String {
        return sc.string().map(Some);
    }
    *bad += 1;
    sc.skip()?;
    Ok(None)
}

fn timestamp<'a>(sc: &mut Scanner<'a>) -> Result<Timestamp<'a>> {
    if sc.peek()? == Kind::String {
        return Ok(Timestamp::Text(sc.string()?));
    }
    sc.skip()?;
    Ok(Timestamp::Unusable)
}

/// Skips a value that is not an object, saying whether Python finds it true.
fn truthy(sc: &mut Scanner<'_>) -> Result<bool> {
    Ok(match sc.peek()? {
        Kind::Null => {
            sc.skip()?;
            false
        }
        Kind::Bool => sc.bool()?,
        Kind::Number => sc.number()?.parse::<f64>() != Ok(0.0),
        Kind::String => !sc.string()?.bytes.is_empty(),
        _ => {
            let mut items = false;
            sc.array(|sc| {
                items = true;
                sc.skip()
            })?;
            items
        }
    })
}

fn metadata<'a>(sc: &mut Scanner<'a>, bad: &mut u32) -> Result<Metadata<'a>> {
    let mut meta = Metadata::default();
    let mut flat = Tokens::default();
    let mut usage: Option<Tokens> = None;
    sc.object(|sc, key| {
        meta.nonempty = true;
        match key_name(&key).as_ref() {
            b"model" => {
                meta.model = None;
                match sc.peek()? {
                    Kind::String => meta.model = Some(sc.string()?).filter(|s| !s.bytes.is_empty()),
                    Kind::Null => sc.skip()?,
                    _ => {
                        *bad += 1;
                        sc.skip()?;
                    }
                }
            }
            b"usage" => {
                if sc.peek()? == Kind::Object {
                    let (mut t, mut keys) = (Tokens::default(), false);
                    sc.object(|sc, key| {
                        keys = true;
                        token_field(sc, key, &mut t, bad)
                    })?;
                    // gptme reads `usage or metadata`: an empty object falls back to the flat counts.
                    usage = keys.then_some(t);
                } else {
                    // A later `usage` replaces an earlier one, as in `json.loads`; one that is
                    // not an object leaves the flat counts (gptme fails on a truthy one).
                    usage = None;
                    *bad += 1;
                    sc.skip()?;
                }
            }
            b"cost" => {
                // Read as a float, as Python's `float(int)` reads an int of any size, and as its
                // `json.loads` reads `1e400`, `NaN` and `Infinity`.
                meta.cost = match counted(sc, bad)? {
                    Counted::Number(text) => Count::Number(python_float(text).unwrap_or_else(|| {
                        *bad += 1;
                        0.0
                    })),
                    Counted::Zero => Count::Number(0.0),
                    Counted::One => Count::Number(1.0),
                    Counted::NotNumber => Count::NotNumber,
                };
            }
            _ => token_field(sc, key, &mut flat, bad)?,
        }
        Ok(())
    })?;
    // Current logs nest the counts under `usage`; legacy ones put them in `metadata` itself.
    let t = usage.unwrap_or(flat);
    meta.input_tokens = t.input;
    meta.output_tokens = t.output;
    meta.cache_read_tokens = t.cache_read;
    meta.cache_creation_tokens = t.cache_creation;
    Ok(meta)
}

// Inlined, with `counted`: they run for every count of every metadata line (3-4% of the
// accumulator's time apart, `cargo bench -- accumulator`).
#[inline]
fn token_field(sc: &mut Scanner<'_>, key: RawStr<'_>, t: &mut Tokens, bad: &mut u32) -> Result<()> {
    let slot = match key_name(&key).as_ref() {
        b"input_tokens" => &mut t.input,
        b"output_tokens" => &mut t.output,
        b"cache_read_tokens" => &mut t.cache_read,
        b"cache_creation_tokens" => &mut t.cache_creation,
        _ => return sc.skip(),
    };
    *slot = match counted(sc, bad)? {
        Counted::Number(text) => {
            let value = match !text.contains(['.', 'e', 'E']) && !text.ends_with(['N', 'y']) {
                true => text.parse::<i64>().ok().map(PyNum::Int),
                // `-0.0 or 0` is the int 0.
                false => python_float(text).map(|v| match v == 0.0 {
                    true => PyNum::Int(0),
                    false => PyNum::Float(v),
                }),
            };
            // An int past i64 (Python's grow): counted, not summed.
            Count::Number(value.unwrap_or_else(|| {
                *bad += 1;
                PyNum::Int(0)
            }))
        }
        Counted::Zero => Count::Number(PyNum::Int(0)),
        Counted::One => Count::Number(PyNum::Int(1)),
        Counted::NotNumber => Count::NotNumber,
    };
    Ok(())
}

/// A JSON number (or Python's `NaN`, `Infinity`, `-Infinity`) as Python's `json.loads` makes it a
/// float: one too large for a float is infinite.
fn python_float(text: &str) -> Option<f64> {
    // Rust's float parser takes those three names too (and makes `1e400` infinite, not an error).
    text.parse().ok()
}

/// A value as gptme's `value or 0` meets it, before it is added.
enum Counted<'a> {
    /// A JSON number, as written.
    Number(&'a str),
    /// Falsy: `null`, `false`, `""`, `[]`, `{}`.
    Zero,
    /// `true`, which Python adds as 1.
    One,
    /// A truthy string, array or object: adding it raises TypeError.
    NotNumber,
}

/// Reads a value to be added; every kind but a number or `null` is a field of the wrong type.
#[inline]
fn counted<'a>(sc: &mut Scanner<'a>, bad: &mut u32) -> Result<Counted<'a>> {
    let kind = sc.peek()?;
    if !matches!(kind, Kind::Number | Kind::Null) {
        *bad += 1;
    }
    Ok(match kind {
        Kind::Number => Counted::Number(sc.number()?),
        Kind::Null => {
            sc.skip()?;
            Counted::Zero
        }
        Kind::Bool => match sc.bool()? {
            true => Counted::One,
            false => Counted::Zero,
        },
        Kind::String => match sc.string()?.bytes.is_empty() {
            true => Counted::Zero,
            false => Counted::NotNumber,
        },
        Kind::Array | Kind::Object => {
            let mut items = false;
            let mut item = |sc: &mut Scanner<'a>| {
                items = true;
                sc.skip()
            };
            match kind {
                Kind::Array => sc.array(&mut item)?,
                _ => sc.object(|sc, _| item(sc))?,
            }
            match items {
                true => Counted::NotNumber,
                false => Counted::Zero,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(v: i64) -> Count<PyNum> {
        Count::Number(PyNum::Int(v))
    }

    #[test]
    fn reads_the_fields_gptme_uses() {
        let l = Line::parse(br#"{"role": "assistant", "content": "hi", "timestamp": "2026-01-01T10:00:00", "metadata": {"model": "m", "usage": {"input_tokens": 3, "output_tokens": 4, "cache_read_tokens": 5}, "cost": 0.5, "other": [1, {"x": null}]}}"#).unwrap();
        assert_eq!(l.conversational_role(), Some("assistant"));
        let m = l.metadata.unwrap();
        assert_eq!(
            (
                m.model.map(|s| s.decode_lossy()).as_deref(),
                m.cost,
                m.input_tokens,
                m.output_tokens,
                m.cache_read_tokens
            ),
            (Some("m"), Count::Number(0.5), int(3), int(4), int(5))
        );
    }

    #[test]
    fn legacy_flat_tokens() {
        let l = Line::parse(br#"{"role": "assistant", "metadata": {"input_tokens": 10, "output_tokens": 3}}"#).unwrap();
        let m = l.metadata.unwrap();
        assert_eq!((m.input_tokens, m.output_tokens), (int(10), int(3)));
    }

    #[test]
    fn the_last_usage_decides_between_nested_and_flat_counts() {
        let input = |line: &[u8]| Line::parse(line).unwrap().metadata.unwrap().input_tokens;
        // `usage or metadata`, with `json.loads` keeping the last of a repeated key.
        assert_eq!(input(br#"{"metadata": {"input_tokens": 7, "usage": {"input_tokens": 5}}}"#), int(5));
        assert_eq!(input(br#"{"metadata": {"input_tokens": 7, "usage": {"input_tokens": 5}, "usage": {}}}"#), int(7));
        assert_eq!(input(br#"{"metadata": {"input_tokens": 7, "usage": {"input_tokens": 5}, "usage": null}}"#), int(7));
        assert_eq!(input(br#"{"metadata": {"input_tokens": 7, "usage": [], "usage": {"input_tokens": 5}}}"#), int(5));
        assert_eq!(input(br#"{"metadata": {"input_tokens": 7, "usage": {"reasoning_tokens": 9}}}"#), int(0));
    }

    #[test]
    fn an_escaped_metadata_key_counts_only_where_the_bytes_name_it() {
        let sums = |line: &[u8]| Line::parse(line).unwrap().metadata.map(|m| m.input_tokens);
        assert_eq!(sums(br#"{"role": "user", "met\u0061data": {"input_tokens": 7}}"#), None);
        // Still a readable message: only gptme's sums skip the line.
        assert!(Line::parse(br#"{"role": "user", "content": "", "met\u0061data": {"input_tokens": 7}}"#)
            .unwrap()
            .is_message());
        // The bytes name it elsewhere (here as a value): gptme parses the line, and the
        // decoded key is the metadata.
        assert_eq!(
            sums(br#"{"role": "user", "content": "metadata", "met\u0061data": {"input_tokens": 7}}"#),
            Some(int(7))
        );
        assert_eq!(sums(br#"{"metadata": {}, "met\u0061data": {"input_tokens": 7}}"#), Some(int(7)));
        assert_eq!(sums(br#"{"role": "user", "metadata": {"input_tokens": 7}}"#), Some(int(7)));
    }

    #[test]
    fn rejects_what_json_loads_rejects() {
        for bad in [&b"not json"[..], b"[1, 2]", b"{\"role\": \"user\"", b"{\"a\": \"\xff\"}", b"{} {}"] {
            assert!(Line::parse(bad).is_err());
        }
    }

    #[test]
    fn wrong_types_are_counted_not_fatal() {
        let l = Line::parse(br#"{"role": 5, "metadata": {"cost": "x", "usage": {"input_tokens": 1.5}}}"#).unwrap();
        assert!(l.role.is_none());
        // A float is a number gptme adds; a role and a cost of the wrong type are counted.
        assert_eq!(l.bad_fields, 2);
    }

    #[test]
    fn counts_are_what_python_adds() {
        let usage = |value: &str| {
            let line = format!(r#"{{"metadata": {{"usage": {{"input_tokens": {value}}}, "cost": {value}}}}}"#);
            let m = Line::parse(line.as_bytes()).unwrap().metadata.unwrap();
            (m.input_tokens, m.cost)
        };
        let float = |v: f64| Count::Number(PyNum::Float(v));
        assert_eq!(usage("12"), (int(12), Count::Number(12.0)));
        assert_eq!(usage("1.5"), (float(1.5), Count::Number(1.5)));
        assert_eq!(usage("1e3"), (float(1000.0), Count::Number(1000.0)));
        // `value or 0`: a falsy float is the int 0; `true` is 1.
        assert_eq!(usage("-0.0"), (int(0), Count::Number(0.0)));
        assert_eq!(usage("true"), (int(1), Count::Number(1.0)));
        for falsy in ["false", "null", "\"\"", "[]", "{}"] {
            assert_eq!(usage(falsy), (int(0), Count::Number(0.0)), "{falsy}");
        }
        // Truthy values that are not numbers raise TypeError where gptme adds them.
        for not_number in ["\"12\"", "[1]", "{\"a\": 1}"] {
            assert_eq!(usage(not_number), (Count::NotNumber, Count::NotNumber), "{not_number}");
        }
        // Python's `json.loads` reads these as floats that are not finite.
        let inf = f64::INFINITY;
        assert_eq!(usage("1e400"), (float(inf), Count::Number(inf)));
        assert_eq!(usage("Infinity"), (float(inf), Count::Number(inf)));
        assert_eq!(usage("-Infinity"), (float(-inf), Count::Number(-inf)));
        let (Count::Number(PyNum::Float(tokens)), Count::Number(cost)) = usage("NaN") else { panic!("NaN") };
        assert!(tokens.is_nan() && cost.is_nan());
        // Beyond what is kept: an int past i64 counts as a problem.
        assert_eq!(usage("123456789012345678901234567890").0, int(0));
        assert_eq!(usage("123456789012345678901234567890").1, Count::Number(1.2345678901234568e29));
    }
}
