//! Usage reports as `convmeta usage` and `GET /api/v2/usage` give them: what they are asked
//! (`UsageQuery`'s parts read from text) and their rows as JSON. The sums are `store::usage::usage`.
//! `list --since/--until` take the same dates, as spans of days.

use chrono::Datelike;

use crate::pynum::PyNum;
use crate::store::usage::{UsageBy, UsageRow};

/// A workspace directory as workspaces are stored: resolved, as gptme resolves them (as given
/// when it is gone: its conversations remain in the index), without a trailing `/` (`""` is
/// the root). A relative one is taken from the working directory.
pub fn workspace_as_stored(dir: &std::path::Path) -> std::io::Result<String> {
    let resolved = match std::fs::canonicalize(dir) {
        Ok(path) => path,
        Err(_) => std::path::absolute(dir)?,
    };
    Ok(resolved.to_string_lossy().trim_end_matches('/').to_owned())
}

/// What a `since` or `until` may be, as errors say.
const DATE_FORMS: &str =
    "a date as YYYY-MM-DD, a month (YYYY-MM), a year (YYYY), today, yesterday, or days or weeks ago (7d, 2w)";

/// Parses a `since` or `until`: a date (`today`, `yesterday` and days ago are local time's), or
/// a month or year for all of it.
pub fn date_prefix(s: &str) -> Result<String, String> {
    if let Some(day) = named_day(s, chrono::Local::now().date_naive()) {
        return Ok(day.format("%Y-%m-%d").to_string());
    }
    let full = match s.len() {
        4 => format!("{s}-01-01"),
        7 => format!("{s}-01"),
        _ => s.to_owned(),
    };
    let valid = full.len() == 10 && chrono::NaiveDate::parse_from_str(&full, "%Y-%m-%d").is_ok();
    match valid && s.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        true => Ok(s.to_owned()),
        false => Err(DATE_FORMS.into()),
    }
}

/// The day `s` names counting back from `today`: `today`, `yesterday`, or a number of days or
/// weeks ago (`0d` is today, `1d` yesterday, `2w` the day fourteen days back). None when `s` is
/// none of these. One further back than the year 1 (or than a count holds) is 0001-01-01, the
/// first day a date here can name: as a count too large to hold is the largest.
fn named_day(s: &str, today: chrono::NaiveDate) -> Option<chrono::NaiveDate> {
    let (count, days_each) = match s {
        "today" => ("0", 1),
        "yesterday" => ("1", 1),
        _ => {
            let unit = s.len().checked_sub(1).filter(|&at| at > 0 && s.is_char_boundary(at))?;
            let days_each = match &s[unit..] {
                "d" => 1,
                "w" => 7,
                _ => return None,
            };
            (&s[..unit], days_each)
        }
    };
    if !count.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let days = count.parse::<u64>().ok().and_then(|n| n.checked_mul(days_each));
    let day = days.and_then(|n| today.checked_sub_days(chrono::Days::new(n)));
    let first = chrono::NaiveDate::from_ymd_opt(1, 1, 1).expect("a date");
    Some(day.filter(|d| *d >= first).unwrap_or(first))
}

/// The days a `since` or `until` names (see [`date_prefix`]): as written, its first day and
/// the day after its last.
#[derive(Clone, Debug, PartialEq)]
pub struct DateSpan {
    pub text: String,
    pub first: chrono::NaiveDate,
    pub after: chrono::NaiveDate,
}

/// The Unix time at which `day` begins in local time: its midnight, or where a change of clocks
/// skips midnight, the first moment after the gap.
pub fn local_day_start(day: chrono::NaiveDate) -> f64 {
    use chrono::TimeZone;
    let midnight = day.and_time(chrono::NaiveTime::MIN);
    // Clocks change by whole quarter hours nowadays; a gap lasts a day at most (Samoa skipped
    // 30 December 2011: its midnight is the instant its clocks jumped, 31 December's too).
    for quarter in 0..=2 * 96 {
        match chrono::Local.from_local_datetime(&(midnight + chrono::Duration::minutes(15 * quarter))) {
            chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => return t.timestamp() as f64,
            chrono::LocalResult::None => {}
        }
    }
    midnight.and_utc().timestamp() as f64
}

/// A count as a flag or a query parameter gives it: digits, 0 or more; `None` if it is not one.
/// One too large to hold is the largest, which every count here takes as "as many as there
/// are" (rather than refusing it, as if it were negative).
pub fn count(s: &str) -> Option<usize> {
    match s.parse::<usize>() {
        Ok(n) => Some(n),
        Err(e) if *e.kind() == std::num::IntErrorKind::PosOverflow => Some(usize::MAX),
        Err(_) => None,
    }
}

/// Parses a `since` or `until` into the days it names.
pub fn date_span(s: &str) -> Result<DateSpan, String> {
    let text = date_prefix(s)?;
    let (first, after) = match text.len() {
        4 => {
            let first = chrono::NaiveDate::parse_from_str(&format!("{text}-01-01"), "%Y-%m-%d");
            (first, first.map(|d| d.with_year(d.year() + 1)))
        }
        7 => {
            let first = chrono::NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d");
            (first, first.map(|d| d.checked_add_months(chrono::Months::new(1))))
        }
        _ => {
            let first = chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d");
            (first, first.map(|d| d.succ_opt()))
        }
    };
    match (first, after) {
        (Ok(first), Ok(Some(after))) => Ok(DateSpan { text, first, after }),
        _ => Err(DATE_FORMS.into()),
    }
}

/// Why a `since` and an `until` are refused together: `since` begins after `until` ends, so no
/// day lies between them, surely a slip rather than a question whose answer is nothing (as
/// journalctl refuses one). `flag` comes before their names: `--` on the command line.
pub fn reversed(since: Option<&DateSpan>, until: Option<&DateSpan>, flag: &str) -> Option<String> {
    let (since, until) = (since?, until?);
    (since.first >= until.after)
        .then(|| format!("{flag}since {} is after {flag}until {}: no day lies between them", since.text, until.text))
}

/// A row as `usage --json` and `/api/v2/usage` write it: its key under the grouping's name
/// (null for lines without a day, and for a conversation's own directory as its workspace),
/// by conversation its `name`, then its models' names, or with `breakdown` their rows. Numbers are written as `query`
/// writes them: an infinite sum (gptme's can reach one) `1e999`, a NaN null.
pub fn json_row(by: UsageBy, r: &UsageRow, breakdown: bool) -> JsonRow {
    use rusqlite::types::Value as Sql;
    use serde_json::Value;
    let num = |n: PyNum| {
        JsonField::Number(match n {
            PyNum::Int(v) => Sql::Integer(v),
            PyNum::Float(v) => Sql::Real(v),
        })
    };
    let mut row =
        vec![(by.name(), JsonField::Plain(if r.key.is_empty() { Value::Null } else { r.key.clone().into() }))];
    if by == UsageBy::Conversation {
        row.push(("name", JsonField::Plain(r.name.clone().into())));
    }
    row.extend([
        ("conversations", JsonField::Plain(r.conversations.into())),
        ("cost", num(PyNum::Float(r.cost))),
        ("input_tokens", num(r.input_tokens)),
        ("output_tokens", num(r.output_tokens)),
        ("cache_read_tokens", num(r.cache_read_tokens)),
    ]);
    match by {
        UsageBy::Model => {}
        _ if breakdown => {
            let models = r.by_model.iter().map(|m| json_row(UsageBy::Model, m, false)).collect();
            row.push(("by_model", JsonField::Rows(models)));
        }
        _ => {
            let names: Vec<&str> = r.by_model.iter().map(|m| m.key.as_str()).collect();
            row.push(("models", JsonField::Plain(names.into())));
        }
    }
    JsonRow(row)
}

/// A JSON row's fields, in order.
pub struct JsonRow(Vec<(&'static str, JsonField)>);

enum JsonField {
    Plain(serde_json::Value),
    Number(rusqlite::types::Value),
    Rows(Vec<JsonRow>),
}

impl serde::Serialize for JsonRow {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(key, field)| (key, field)))
    }
}

impl serde::Serialize for JsonField {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            JsonField::Plain(v) => v.serialize(s),
            JsonField::Number(n) => crate::store::sql::Json(n).serialize(s),
            JsonField::Rows(rows) => rows.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_too_large_to_hold_is_the_largest() {
        assert_eq!((count("0"), count("250")), (Some(0), Some(250)));
        for huge in ["18446744073709551615", "18446744073709551616", &"9".repeat(40)] {
            assert_eq!(count(huge), Some(usize::MAX), "{huge}");
        }
        for refused in ["", "-1", "-99999999999999999999999", "1e3", "1.5", " 1", "x"] {
            assert_eq!(count(refused), None, "{refused}");
        }
    }

    #[test]
    fn dates_are_days_months_or_years() {
        for good in ["2026", "2026-02", "2026-02-28"] {
            assert_eq!(date_prefix(good).as_deref(), Ok(good));
        }
        for bad in ["2026-02-30", "2026-13", "26-01-01", "2026/01/01", "2026-1-1", "", "+2026-01-01"] {
            assert!(date_prefix(bad).is_err(), "{bad}");
            assert!(date_span(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn days_are_named_counting_back_from_today() {
        let day = |s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let today = day("2026-03-01");
        for (text, named) in [
            ("today", "2026-03-01"),
            ("0d", "2026-03-01"),
            ("yesterday", "2026-02-28"),
            ("1d", "2026-02-28"),
            ("7d", "2026-02-22"),
            ("0w", "2026-03-01"),
            ("1w", "2026-02-22"),
            ("9w", "2025-12-28"),
            ("0061d", "2025-12-30"),
        ] {
            assert_eq!(named_day(text, today), Some(day(named)), "{text}");
        }
        // Not a day counted back: read as a date, or refused.
        for other in ["d", "w", "-1d", "+1d", "1.5d", "1 d", "1D", "1dw", "1m", "1y", "7", "2026", "é", "1éd", ""] {
            assert_eq!(named_day(other, today), None, "{other}");
        }
        // Before the year 1, or past what a count holds: the year 1's first day.
        for far in ["739675d", "739676d", "106000w", "99999999999999999999d", "3000000000000000000w"] {
            assert_eq!(named_day(far, today), Some(day("0001-01-01")), "{far}");
        }
        for far in ["106000w", "99999999999999999999d"] {
            assert_eq!(date_prefix(far).as_deref(), Ok("0001-01-01"), "{far}");
        }
        assert_eq!(named_day("739674d", today), Some(day("0001-01-02")));
    }

    #[test]
    fn a_span_ends_the_day_after_its_last() {
        let day = |s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        for (text, first, after) in [
            ("2024", "2024-01-01", "2025-01-01"),
            ("2024-02", "2024-02-01", "2024-03-01"),
            ("2024-12", "2024-12-01", "2025-01-01"),
            ("2024-02-29", "2024-02-29", "2024-03-01"),
            ("2024-12-31", "2024-12-31", "2025-01-01"),
        ] {
            assert_eq!(date_span(text), Ok(DateSpan { text: text.into(), first: day(first), after: day(after) }));
        }
    }

    #[test]
    fn a_since_after_the_until_is_refused() {
        let refused = |since: &str, until: &str| {
            reversed(Some(&date_span(since).unwrap()), Some(&date_span(until).unwrap()), "--")
        };
        // Any day in common, or one flag alone, is a question.
        for (since, until) in
            [("2026-11-02", "2026-11-02"), ("2026-11", "2026-11-01"), ("2026-11-30", "2026-11"), ("2025", "2026")]
        {
            assert_eq!(refused(since, until), None, "{since} {until}");
        }
        assert_eq!(reversed(Some(&date_span("2027").unwrap()), None, "--"), None);
        assert_eq!(reversed(None, Some(&date_span("2026").unwrap()), "--"), None);
        // No day between them: a slip, said with both as given.
        assert_eq!(
            refused("2026-11-03", "2026-11-02").as_deref(),
            Some("--since 2026-11-03 is after --until 2026-11-02: no day lies between them")
        );
        for (since, until) in [("2026-12", "2026-11-30"), ("2027", "2026-12-31"), ("2026-12-01", "2026-11")] {
            assert!(refused(since, until).is_some(), "{since} {until}");
        }
    }
}
