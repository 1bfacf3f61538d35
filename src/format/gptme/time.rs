//! Timestamps as Python's `datetime.fromisoformat(ts).timestamp()` computes them.

use chrono::{Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};

/// Parses an ISO 8601 timestamp into Unix seconds. Naive values are read in the local time zone
/// (`TZ` and the system zone database), as Python does.
pub fn iso_to_unix(s: &str) -> Option<f64> {
    let (naive, micros, offset) = parse(s)?;
    match offset {
        Some(off) => {
            // Aware: Python's total_seconds() divides exact microseconds once.
            let secs = naive.and_utc().timestamp() - off;
            let total = secs as i128 * 1_000_000 + micros as i128;
            Some(total as f64 / 1e6)
        }
        None => {
            // Naive: Python's _mktime() gives whole local seconds, then adds microseconds/1e6.
            Some(local_to_unix(naive.and_utc().timestamp())? as f64 + micros as f64 / 1e6)
        }
    }
}

/// The Unix time whose local wall clock reads `t` (wall-clock seconds since the epoch), found
/// the way CPython's `local_to_seconds` finds it with `fold=0`: in an overlap (clocks set back)
/// the earlier instant, in a gap (clocks set forward) the later of the two candidates.
fn local_to_unix(t: i64) -> Option<i64> {
    // The local wall clock at Unix time `u`, in seconds since the epoch.
    let local = |u: i64| Local.timestamp_opt(u, 0).single().map(|d| d.naive_local().and_utc().timestamp());
    const MAX_FOLD_SECONDS: i64 = 24 * 3600;
    let a = local(t)? - t;
    let u1 = t - a;
    let t1 = local(u1)?;
    let b = if t1 == t {
        // One solution; with fold=0 Python looks a day earlier for another offset.
        let u2 = u1 - MAX_FOLD_SECONDS;
        let b = local(u2)? - u2;
        if a == b {
            return Some(u1);
        }
        b
    } else {
        t1 - u1
    };
    let u2 = t - b;
    if local(u2)? == t {
        return Some(u2);
    }
    if t1 == t {
        return Some(u1);
    }
    // In the gap: neither offset gives back `t`.
    Some(u1.max(u2))
}

/// Python's `datetime.fromtimestamp(t).timestamp()`: the time rounded (half to even) to whole
/// microseconds, which is what gptme reports as `created` for a line without a timestamp.
pub fn round_to_micros(t: f64) -> f64 {
    let whole = t.trunc();
    let mut us = (t - whole) * 1e6;
    us = us.round_ties_even();
    let (whole, us) = if us >= 1e6 {
        (whole + 1.0, us - 1e6)
    } else if us < 0.0 {
        (whole - 1.0, us + 1e6)
    } else {
        (whole, us)
    };
    whole + us / 1e6
}

/// Splits into (wall time without fraction, microseconds, UTC offset in seconds if aware).
fn parse(s: &str) -> Option<(NaiveDateTime, u32, Option<i64>)> {
    let b = s.as_bytes();
    if !b.is_ascii() && b.len() > 10 && !s.is_char_boundary(10) {
        return None;
    }
    let (date, rest) = if b.len() >= 10 && b[4] == b'-' && b[7] == b'-' {
        (NaiveDate::from_ymd_opt(num(&b[0..4])? as i32, num(&b[5..7])?, num(&b[8..10])?)?, &s[10..])
    } else if b.len() >= 8 && b[..8].iter().all(u8::is_ascii_digit) {
        (NaiveDate::from_ymd_opt(num(&b[0..4])? as i32, num(&b[4..6])?, num(&b[6..8])?)?, &s[8..])
    } else {
        return None;
    };
    if rest.is_empty() {
        return Some((date.and_hms_opt(0, 0, 0)?, 0, None));
    }
    // Python accepts any single character as the date/time separator.
    let sep_len = rest.chars().next()?.len_utf8();
    let time = &rest[sep_len..];
    let tz_at = time.find(['+', '-', 'Z']).unwrap_or(time.len());
    let (clock, tz) = time.split_at(tz_at);
    let (clock, frac) = match clock.find(['.', ',']) {
        Some(i) => (&clock[..i], Some(&clock[i + 1..])),
        None => (clock, None),
    };
    let cb = clock.as_bytes();
    let (h, m, sec) = match cb.len() {
        2 => (num(cb)?, 0, 0),
        5 if cb[2] == b':' => (num(&cb[0..2])?, num(&cb[3..5])?, 0),
        8 if cb[2] == b':' && cb[5] == b':' => (num(&cb[0..2])?, num(&cb[3..5])?, num(&cb[6..8])?),
        4 => (num(&cb[0..2])?, num(&cb[2..4])?, 0),
        6 => (num(&cb[0..2])?, num(&cb[2..4])?, num(&cb[4..6])?),
        _ => return None,
    };
    let micros = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|c| c.is_ascii_digit()) && cb.len() >= 6 => {
            // Digits past the sixth are truncated, as in Python 3.11.
            let six: String = f.chars().chain(std::iter::repeat('0')).take(6).collect();
            six.parse().ok()?
        }
        Some(_) => return None,
    };
    let naive = date.and_time(NaiveTime::from_hms_opt(h, m, sec)?);
    let offset = match tz {
        "" => None,
        "Z" => Some(0),
        _ => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            let t = &tz.as_bytes()[1..];
            let (oh, om, os) = match t.len() {
                2 => (num(t)?, 0, 0),
                4 => (num(&t[0..2])?, num(&t[2..4])?, 0),
                5 if t[2] == b':' => (num(&t[0..2])?, num(&t[3..5])?, 0),
                8 if t[2] == b':' && t[5] == b':' => (num(&t[0..2])?, num(&t[3..5])?, num(&t[6..8])?),
                _ => return None,
            };
            if oh > 23 || om > 59 || os > 59 {
                return None;
            }
            Some(sign * (oh as i64 * 3600 + om as i64 * 60 + os as i64))
        }
    };
    Some((naive, micros, offset))
}

fn num(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aware_values_do_not_depend_on_the_zone() {
        assert_eq!(iso_to_unix("2026-01-01T10:00:00+05:30"), Some(1767241800.0));
        assert_eq!(iso_to_unix("2026-01-01T10:00:00.25+05:30"), Some(1767241800.25));
        assert_eq!(iso_to_unix("2026-01-01T10:00:00Z"), Some(1767261600.0));
        assert_eq!(iso_to_unix("2026-01-01T10:00:00.5-01:00"), Some(1767265200.5));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00",
            "2026-01-01T25:00:00",
            "2026-01-01T10:00:00+99:00",
            "2026-01-01T10:00:00.",
        ] {
            assert_eq!(iso_to_unix(bad), None, "{bad}");
        }
    }

    #[test]
    fn rounds_mtimes_like_python() {
        assert_eq!(round_to_micros(1764035263.9671168), 1764035263.967117);
        assert_eq!(round_to_micros(1764149203.0), 1764149203.0);
    }
}
