//! Numbers as Python reads them from text (`int()`, `float()`), for what gptme parses that way
//! (request parameters, values in its config files), and as Python adds them (gptme's sums of
//! tokens and costs).

/// Python's `int(text)`: surrounding whitespace, a sign, digits of any script, single `_`
/// between digits. Saturates instead of growing without bound.
pub fn int(text: &str) -> Option<i128> {
    let t = py_number_text(text)?;
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(&t)),
    };
    if !digit_run(digits) {
        return None;
    }
    let mut value: i128 = 0;
    for c in digits.bytes().filter(|&c| c != b'_') {
        value = value.saturating_mul(10).saturating_add(i128::from(c - b'0'));
    }
    Some(if negative { -value } else { value })
}

/// Python's `float(text)`: `int`'s rules for digits, whitespace and underscores, a fraction and
/// an exponent, and `inf`, `infinity` and `nan` in any case (so a cursor may be any of them).
pub fn float(text: &str) -> Option<f64> {
    let t = py_number_text(text)?;
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(&t);
    let special = ["inf", "infinity", "nan"].iter().any(|w| unsigned.eq_ignore_ascii_case(w));
    if !special {
        let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
            Some((m, e)) => (m, Some(e.strip_prefix(['+', '-']).unwrap_or(e))),
            None => (unsigned, None),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits_ok = match (whole.is_empty(), fraction.is_empty()) {
            (true, true) => false,
            (false, true) => digit_run(whole),
            (true, false) => digit_run(fraction),
            (false, false) => digit_run(whole) && digit_run(fraction),
        };
        if !digits_ok || exponent.is_some_and(|e| !digit_run(e)) {
            return None;
        }
    }
    t.replace('_', "").parse().ok()
}

/// The text Python's `int` and `float` parse: whitespace around it removed, and digits of any
/// script made ASCII. None when something else outside ASCII is left.
fn py_number_text(text: &str) -> Option<String> {
    let t = text.trim_matches(|c: char| c.is_whitespace());
    t.chars().map(|c| if c.is_ascii() { Some(c) } else { char::from_digit(decimal_digit(c)?, 10) }).collect()
}

/// ASCII digits with single underscores between them.
fn digit_run(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('_')
        && !s.ends_with('_')
        && !s.contains("__")
        && s.bytes().all(|c| c.is_ascii_digit() || c == b'_')
}

/// The value of a Unicode decimal digit (category Nd), as Python's `int()` accepts them.
fn decimal_digit(c: char) -> Option<u32> {
    if let Some(d) = c.to_digit(10) {
        return Some(d);
    }
    // The zero of each block of ten Nd digits outside ASCII.
    const ZEROS: &[u32] = &[
        0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6, 0x0D66, 0x0DE6, 0x0E50,
        0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50,
        0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10, 0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136,
        0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0,
        0x16A60, 0x16AC0, 0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
    ];
    let cp = c as u32;
    ZEROS.iter().find(|&&z| (z..z + 10).contains(&cp)).map(|&z| cp - z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_read_like_python_int() {
        for (text, want) in
            [("5", Some(5)), ("+5", Some(5)), ("1_0", Some(10)), (" 7 ", Some(7)), ("-0", Some(0)), ("１２", Some(12))]
        {
            assert_eq!(int(text), want, "{text:?}");
        }
        for bad in ["", "abc", "1e30", "1__0", "_1", "1_", "1.5", "--1"] {
            assert_eq!(int(bad), None, "{bad:?}");
        }
        assert_eq!(int(&"9".repeat(60)), Some(i128::MAX));
    }

    /// Each case as CPython 3.12 answers `float(text)`.
    #[test]
    fn floats_read_like_python_float() {
        let cases = [
            ("1_767_225_600", Some(1767225600.0)),
            ("1.5_0", Some(1.5)),
            ("1e1_0", Some(1e10)),
            ("\u{0661}\u{0662}.\u{0665}", Some(12.5)),
            ("\u{ff11}\u{ff12}", Some(12.0)),
            ("1.", Some(1.0)),
            (".5", Some(0.5)),
            (" 12 ", Some(12.0)),
            ("\u{85}5", Some(5.0)),
            ("\u{3000}5", Some(5.0)),
            ("1.5e-3", Some(0.0015)),
            ("1E5", Some(1e5)),
            ("1e999", Some(f64::INFINITY)),
            ("-1e999", Some(f64::NEG_INFINITY)),
            ("inf", Some(f64::INFINITY)),
            ("+Infinity", Some(f64::INFINITY)),
            ("-inf", Some(f64::NEG_INFINITY)),
        ];
        for (text, want) in cases {
            assert_eq!(float(text), want, "{text:?}");
        }
        for nan in ["nan", "NaN", "-nan"] {
            assert!(float(nan).is_some_and(f64::is_nan), "{nan:?}");
        }
        for bad in [
            "\u{1c}5",
            "5\u{1f}",
            "\u{200b}5",
            "infinit",
            "1__0",
            "_1",
            "1_",
            "1_.5",
            "1._5",
            "1e_10",
            ".",
            "1e",
            "1e+",
            "e5",
            "0x10",
            "1 2",
            "+-1",
            "in f",
            "\u{221e}",
            "\u{066b}5",
            "",
        ] {
            assert_eq!(float(bad), None, "{bad:?}");
        }
    }
}

/// A number as Python adds them: an int until a float joins it (`0 + 1.5` is `1.5`, and a sum
/// with a float in it stays one). Ints past `i64` saturate (Python's grow; the accumulator
/// counts such a sum as a problem).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PyNum {
    Int(i64),
    Float(f64),
}

impl Default for PyNum {
    fn default() -> Self {
        PyNum::Int(0)
    }
}

impl PyNum {
    /// `self + other` as Python computes it; `overflow` is set when ints saturate.
    pub fn add(self, other: PyNum, overflow: &mut bool) -> PyNum {
        match (self, other) {
            (PyNum::Int(a), PyNum::Int(b)) => PyNum::Int(a.checked_add(b).unwrap_or_else(|| {
                *overflow = true;
                a.saturating_add(b)
            })),
            // An int meets a float as `float(int)`: rounded to the nearest, as `as` rounds.
            (PyNum::Int(a), PyNum::Float(b)) => PyNum::Float(a as f64 + b),
            (PyNum::Float(a), PyNum::Int(b)) => PyNum::Float(a + b as f64),
            (PyNum::Float(a), PyNum::Float(b)) => PyNum::Float(a + b),
        }
    }

    pub fn is_negative(self) -> bool {
        match self {
            PyNum::Int(v) => v < 0,
            PyNum::Float(v) => v < 0.0,
        }
    }
}

/// As Python's `json.dumps` writes it: an int's digits, a float's `repr`.
impl std::fmt::Display for PyNum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            PyNum::Int(v) => write!(f, "{v}"),
            PyNum::Float(v) => {
                let mut text = String::new();
                crate::json::push_py_float(&mut text, v);
                f.write_str(&text)
            }
        }
    }
}

/// Stored as a JSON number (an int as one, so states stored when sums were ints read back), a
/// float that is not finite as its name.
impl serde::Serialize for PyNum {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            PyNum::Int(v) => s.serialize_i64(v),
            PyNum::Float(v) => any_float::serialize(&v, s),
        }
    }
}

impl<'de> serde::Deserialize<'de> for PyNum {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Int(i64),
            #[serde(with = "any_float")]
            Float(f64),
        }
        Ok(match Stored::deserialize(d)? {
            Stored::Int(v) => PyNum::Int(v),
            Stored::Float(v) => PyNum::Float(v),
        })
    }
}

/// SQLite keeps an int as INTEGER and a float as REAL; NaN (which SQLite would store as NULL) as
/// its name.
impl rusqlite::ToSql for PyNum {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value};
        Ok(ToSqlOutput::Owned(match *self {
            PyNum::Int(v) => Value::Integer(v),
            PyNum::Float(v) if v.is_nan() => Value::Text("NaN".into()),
            PyNum::Float(v) => Value::Real(v),
        }))
    }
}

/// A float as stored with a conversation's state (`#[serde(with = "any_float")]`): JSON has no infinity, which a sum of huge costs
/// reaches (as gptme's does), so a float that is not finite is written as Python's name for it.
/// serde_json would write `null`, which does not read back: the state was then unreadable, and
/// every append read the log whole.
pub mod any_float {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        match *v {
            v if v.is_finite() => s.serialize_f64(v),
            v if v.is_nan() => s.serialize_str("NaN"),
            v if v > 0.0 => s.serialize_str("Infinity"),
            _ => s.serialize_str("-Infinity"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Number(f64),
            Name(String),
        }
        match Stored::deserialize(d)? {
            Stored::Number(v) => Ok(v),
            Stored::Name(name) => match name.as_str() {
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                "NaN" => Ok(f64::NAN),
                _ => Err(serde::de::Error::custom(format!("not a float: {name:?}"))),
            },
        }
    }
}
