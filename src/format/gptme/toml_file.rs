//! gptme's TOML files as its readers read them: the bytes decoded as Python decodes them, the
//! TOML version each reader knows (`tomllib` for `config.toml`, tomlkit for an agent's
//! `gptme.toml`), a local file merged over its main one; and values sent as Flask sends them.

use crate::json::{push_py_str, py_float};

/// A config file's text as gptme 0.35.1 decodes it: UTF-8, and where the bytes are not, with
/// U+FFFD for each bad sequence (Python's `errors="replace"`, which Rust's lossy decoding
/// matches sequence for sequence), a problem noted. gptme tries the locale's codec first;
/// under a UTF-8 locale, the usual one, that is UTF-8 again.
pub fn decode<'a>(bytes: &'a [u8], file: &str, problems: &mut Vec<String>) -> std::borrow::Cow<'a, str> {
    let text = String::from_utf8_lossy(bytes);
    if let std::borrow::Cow::Owned(_) = text {
        problems.push(format!("{file}: not UTF-8 (read with U+FFFD for the bad bytes, as gptme reads it)"));
    }
    text
}

/// TOML as Python's `tomllib` reads it: version 1.0 (the `toml` crate 0.8), and no byte-order
/// mark, which `tomllib` rejects.
pub fn read_1_0(text: &str) -> Result<toml::Table, String> {
    if text.starts_with('\u{feff}') {
        return Err("a byte-order mark".into());
    }
    // The parser's message may run over lines ("invalid table header\nexpected ..."); a
    // problem note is one line.
    text.parse::<toml::Table>().map_err(|e| e.message().trim().replace('\n', ": "))
}

/// TOML as gptme reads an agent's files, with tomlkit: version 1.1 (newlines and a trailing
/// comma in inline tables, `\xHH` and `\e` escapes, times without seconds), and no byte-order
/// mark. The table is converted to the types of the crate that reads TOML 1.0, which the rest reads.
pub fn read_1_1(text: &str) -> Result<toml::Table, String> {
    if text.starts_with('\u{feff}') {
        return Err("a byte-order mark".into());
    }
    let table = text.parse::<toml11::Table>().map_err(|e| e.message().trim().replace('\n', ": "))?;
    Ok(table.into_iter().map(|(k, v)| (k, from_1_1(v))).collect())
}

fn from_1_1(value: toml11::Value) -> toml::Value {
    use toml::value::{Date, Datetime, Offset, Time};
    match value {
        toml11::Value::String(s) => toml::Value::String(s),
        toml11::Value::Integer(i) => toml::Value::Integer(i),
        toml11::Value::Float(f) => toml::Value::Float(f),
        toml11::Value::Boolean(b) => toml::Value::Boolean(b),
        toml11::Value::Datetime(d) => toml::Value::Datetime(Datetime {
            date: d.date.map(|d| Date { year: d.year, month: d.month, day: d.day }),
            time: d.time.map(|t| Time {
                hour: t.hour,
                minute: t.minute,
                second: t.second.unwrap_or(0),
                nanosecond: t.nanosecond.unwrap_or(0),
            }),
            offset: d.offset.map(|o| match o {
                toml11::value::Offset::Z => Offset::Z,
                toml11::value::Offset::Custom { minutes } => Offset::Custom { minutes },
            }),
        }),
        toml11::Value::Array(items) => toml::Value::Array(items.into_iter().map(from_1_1).collect()),
        toml11::Value::Table(t) => toml::Value::Table(t.into_iter().map(|(k, v)| (k, from_1_1(v))).collect()),
    }
}

/// `over` merged into `main` as gptme merges a local config: tables key by key, anything else
/// replaced. (gptme merges `[[mcp.servers]]` by name instead; that changes no field, only
/// whether a malformed server split across the two files is counted as a problem.)
pub fn merge(main: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (main.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(value)) => merge(inner, value),
            (_, value) => {
                main.insert(key, value);
            }
        }
    }
}

/// Writes a TOML value as JSON with sorted keys, as Flask sends it: nested keys sorted too, and
/// dates as HTTP dates. False when the value holds a time of day without a date, which Flask
/// cannot send (gptme answers 500); it is written as TOML text then.
fn value_json(out: &mut String, v: &toml::Value) -> bool {
    match v {
        toml::Value::String(s) => push_py_str(out, s),
        toml::Value::Integer(i) => out.push_str(&i.to_string()),
        toml::Value::Float(f) => out.push_str(&py_float(*f)),
        toml::Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        toml::Value::Datetime(d) => match http_date(d) {
            Some(date) => push_py_str(out, &date),
            None => {
                push_py_str(out, &d.to_string());
                return false;
            }
        },
        toml::Value::Array(items) => {
            out.push('[');
            let mut sendable = true;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                sendable &= value_json(out, item);
            }
            out.push(']');
            return sendable;
        }
        toml::Value::Table(t) => return table_json(out, t),
    }
    true
}

pub fn table_json(out: &mut String, t: &toml::Table) -> bool {
    let mut keys: Vec<&String> = t.keys().collect();
    keys.sort();
    out.push('{');
    let mut sendable = true;
    for (i, k) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_py_str(out, k);
        out.push(':');
        sendable &= value_json(out, &t[k]);
    }
    out.push('}');
    sendable
}

/// A TOML date or date-time as Flask's JSON sends a Python `date` or `datetime` (werkzeug's
/// `http_date`): in UTC (a local date-time taken as UTC), whole seconds, like
/// `Sun, 27 May 1979 07:32:00 GMT`. None for a time of day alone.
fn http_date(d: &toml::value::Datetime) -> Option<String> {
    let date = d.date?;
    let day = chrono::NaiveDate::from_ymd_opt(date.year.into(), date.month.into(), date.day.into())?;
    let time = d.time.map_or(chrono::NaiveTime::MIN, |t| {
        chrono::NaiveTime::from_hms_opt(t.hour.into(), t.minute.into(), t.second.into())
            .unwrap_or(chrono::NaiveTime::MIN)
    });
    let minutes_east = match d.offset {
        Some(toml::value::Offset::Custom { minutes }) => minutes.into(),
        _ => 0,
    };
    let utc = day.and_time(time) - chrono::Duration::minutes(minutes_east);
    Some(utc.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
}

#[cfg(test)]
mod tests {
    use super::{decode, read_1_0, read_1_1, table_json};

    #[test]
    fn decodes_bad_bytes_as_python_replaces_them() {
        // (bytes, how many U+FFFD Python's `bytes.decode("utf-8", "replace")` gives)
        for (bytes, marks) in [
            (&b"\xf0\x9f"[..], 1),
            (b"\xed\xa0\x80", 3),
            (b"\x80\x80", 2),
            (b"\xc3", 1),
            (b"\xe9x", 1),
            (b"\xf4\x90\x80\x80", 4),
            (b"\xc0\xaf", 2),
            (b"\xe0\x80\xaf", 3),
            (b"\xf0\x9f\x98", 1),
        ] {
            let mut problems = Vec::new();
            let text = decode(bytes, "f", &mut problems);
            assert_eq!(text.matches('\u{fffd}').count(), marks, "{bytes:?}");
            assert_eq!(problems.len(), 1);
        }
        let mut problems = Vec::new();
        assert_eq!(decode("naïve".as_bytes(), "f", &mut problems), "naïve");
        assert!(problems.is_empty());
    }

    #[test]
    fn reads_each_toml_version_and_sends_dates_as_flask_does() {
        let text = "a = { b = \"\\x41\",\n}\nt = 1979-05-27T07:32-07:00\nd = 2026-02-03\nl = 1979-05-27T07:32:09.9";
        assert!(read_1_0(text).is_err(), "TOML 1.1 is not tomllib's");
        let mut json = String::new();
        assert!(table_json(&mut json, &read_1_1(text).unwrap()));
        assert_eq!(
            json,
            r#"{"a":{"b":"A"},"d":"Tue, 03 Feb 2026 00:00:00 GMT","l":"Sun, 27 May 1979 07:32:09 GMT","t":"Sun, 27 May 1979 14:32:00 GMT"}"#
        );
        let mut json = String::new();
        assert!(!table_json(&mut json, &read_1_1("t = 07:32").unwrap()), "a time of day alone");
        assert!(read_1_0("\u{feff}a = 1").is_err() && read_1_1("\u{feff}a = 1").is_err());
    }
}
