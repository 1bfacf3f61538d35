//! One gptme JSONL line: the few fields the metadata needs, found without building a tree.

use crate::json::{Kind, Malformed, RawStr, Result, Scanner};

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
    pub cost: f64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_creation_tokens: i64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Tokens {
    input: i64,
    output: i64,
    cache_read: i64,
    cache_creation: i64,
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
                meta.cost = match sc.peek()? {
                    Kind::Number => match sc.number()?.parse::<f64>() {
                        Ok(v) if v.is_finite() => v,
                        _ => {
                            *bad += 1;
                            0.0
                        }
                    },
                    _ => {
                        *bad += 1;
                        sc.skip()?;
                        0.0
                    }
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

fn token_field(sc: &mut Scanner<'_>, key: RawStr<'_>, t: &mut Tokens, bad: &mut u32) -> Result<()> {
    let slot = match key_name(&key).as_ref() {
        b"input_tokens" => &mut t.input,
        b"output_tokens" => &mut t.output,
        b"cache_read_tokens" => &mut t.cache_read,
        b"cache_creation_tokens" => &mut t.cache_creation,
        _ => return sc.skip(),
    };
    *slot = match sc.peek()? {
        Kind::Number => {
            let text = sc.number()?;
            match text.parse::<i64>() {
                Ok(v) => v,
                Err(_) => {
                    *bad += 1;
                    0
                }
            }
        }
        Kind::Null => {
            sc.skip()?;
            0
        }
        _ => {
            *bad += 1;
            sc.skip()?;
            0
        }
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            (Some("m"), 0.5, 3, 4, 5)
        );
    }

    #[test]
    fn legacy_flat_tokens() {
        let l = Line::parse(br#"{"role": "assistant", "metadata": {"input_tokens": 10, "output_tokens": 3}}"#).unwrap();
        let m = l.metadata.unwrap();
        assert_eq!((m.input_tokens, m.output_tokens), (10, 3));
    }

    #[test]
    fn the_last_usage_decides_between_nested_and_flat_counts() {
        let input = |line: &[u8]| Line::parse(line).unwrap().metadata.unwrap().input_tokens;
        // `usage or metadata`, with `json.loads` keeping the last of a repeated key.
        assert_eq!(input(br#"{"metadata": {"input_tokens": 7, "usage": {"input_tokens": 5}}}"#), 5);
        assert_eq!(input(br#"{"metadata": {"input_tokens": 7, "usage": {"input_tokens": 5}, "usage": {}}}"#), 7);
        assert_eq!(input(br#"{"metadata": {"input_tokens": 7, "usage": {"input_tokens": 5}, "usage": null}}"#), 7);
        assert_eq!(input(br#"{"metadata": {"input_tokens": 7, "usage": [], "usage": {"input_tokens": 5}}}"#), 5);
        assert_eq!(input(br#"{"metadata": {"input_tokens": 7, "usage": {"reasoning_tokens": 9}}}"#), 0);
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
        assert_eq!(sums(br#"{"role": "user", "content": "metadata", "met\u0061data": {"input_tokens": 7}}"#), Some(7));
        assert_eq!(sums(br#"{"metadata": {}, "met\u0061data": {"input_tokens": 7}}"#), Some(7));
        assert_eq!(sums(br#"{"role": "user", "metadata": {"input_tokens": 7}}"#), Some(7));
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
        assert_eq!(l.bad_fields, 3);
    }
}
