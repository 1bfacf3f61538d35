//! Timestamps as Python's `datetime.fromisoformat(ts).timestamp()` computes them: CPython 3.11's
//! reading rules (its C implementation, quirks included), then its arithmetic.

use chrono::{Datelike, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Weekday};

/// Parses an ISO 8601 timestamp into Unix seconds. Naive values are read in the local time zone
/// (`TZ` and the system zone database), as Python does.
pub fn iso_to_unix(s: &str) -> Option<f64> {
    let Parsed { wall, micros, offset } = parse(s)?;
    let wall_secs = wall.and_utc().timestamp();
    match offset {
        // Aware: Python's total_seconds() divides exact microseconds once.
        Some(off_micros) => {
            let total = i128::from(wall_secs) * 1_000_000 + i128::from(micros) - i128::from(off_micros);
            Some(micros_to_secs(total))
        }
        // Naive: Python's _mktime() gives whole local seconds, then adds microseconds/1e6.
        None => Some(local_to_unix(wall_secs)? as f64 + f64::from(micros) / 1e6),
    }
}

/// `n / 10^6` correctly rounded, as Python's int true division gives it. Past 2^53 (after the
/// year 2255) `n as f64` would round before the division does; there whole seconds plus the
/// fraction rounds once in effect: the fraction's rounding error (< 1e-16) is far below the
/// distance (> 4e-13) from any multiple of 10^-6 to a rounding boundary it is not on.
fn micros_to_secs(n: i128) -> f64 {
    if n.unsigned_abs() < 1 << 53 {
        return n as f64 / 1e6; // both operands exact: one rounding
    }
    n.div_euclid(1_000_000) as f64 + n.rem_euclid(1_000_000) as f64 / 1e6
}

/// The Unix time whose local wall clock reads `t` (wall-clock seconds since the epoch), found
/// the way CPython's `local_to_seconds` finds it with `fold=0`: in an overlap (clocks set back)
/// the earlier instant, in a gap (clocks set forward) the later of the two candidates.
fn local_to_unix(t: i64) -> Option<i64> {
    // The local wall clock at Unix time `u`, in seconds since the epoch; like CPython, an error
    // outside years 1 to 9999 (even for the day-earlier probe).
    let local = |u: i64| {
        let wall = Local.timestamp_opt(u, 0).single()?.naive_local();
        (1..=9999).contains(&wall.year()).then(|| wall.and_utc().timestamp())
    };
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

/// A timestamp as `fromisoformat` reads it.
struct Parsed {
    /// The wall-clock date and time, whole seconds.
    wall: NaiveDateTime,
    micros: u32,
    /// The UTC offset in microseconds, for an aware timestamp.
    offset: Option<i64>,
}

/// The bytes of a string read the way C reads a NUL-terminated buffer: past the end is 0.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn at(&self, i: usize) -> u8 {
        self.0.get(i).copied().unwrap_or(0)
    }

    /// `n` ASCII digits from `*p` on (reading past the end fails), advancing `*p`.
    fn digits(&self, p: &mut usize, n: usize) -> Option<u32> {
        let mut v = 0;
        for _ in 0..n {
            let d = self.at(*p).wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            v = v * 10 + u32::from(d);
            *p += 1;
        }
        Some(v)
    }
}

/// `datetime.fromisoformat` of CPython 3.11: the date (`YYYY-MM-DD`, `YYYYMMDD`, or an ISO week
/// date), any one character, then the time and an optional UTC offset.
fn parse(s: &str) -> Option<Parsed> {
    if s.chars().count() < 7 {
        return None;
    }
    let b = Bytes(s.as_bytes());
    let sep = separator_at(&b)?;
    let date = parse_date(&b, sep)?;
    let (mut clock, mut offset) = (Clock::default(), None);
    if b.0.len() > sep {
        // The separator is one character of any width; CPython sizes it by its first byte.
        let width = match b.at(sep) {
            c if c & 0x80 == 0 => 1,
            c if c & 0xf0 == 0xe0 => 3,
            c if c & 0xf0 == 0xf0 => 4,
            _ => 2,
        };
        let rest = b.0.get(sep + width..)?;
        (clock, offset) = parse_time(&Bytes(rest))?;
    }
    let wall = date.and_time(NaiveTime::from_hms_opt(clock.h, clock.m, clock.s)?);
    (1..=9999).contains(&wall.year()).then_some(Parsed { wall, micros: clock.micros, offset })
}

/// Where the date ends: the date forms differ in length, told apart by bytes 4, 5, 8 and 10.
fn separator_at(b: &Bytes<'_>) -> Option<usize> {
    let len = b.0.len();
    if len == 7 {
        return Some(7);
    }
    if b.at(4) == b'-' {
        if b.at(5) != b'W' {
            return Some(10); // YYYY-MM-DD
        }
        if len > 8 && b.at(8) == b'-' {
            if len == 9 {
                return None;
            }
            // YYYY-Www-D, unless a digit follows: then YYYY-Www and a '-' separator.
            return Some(if len > 10 && b.at(10).is_ascii_digit() { 8 } else { 10 });
        }
        return Some(8); // YYYY-Www
    }
    if b.at(4) == b'W' {
        // YYYYWww or YYYYWwwD: the run of digits from byte 7 decides.
        let end = (7..len).find(|&i| !b.at(i).is_ascii_digit()).unwrap_or(len);
        return Some(if end < 9 {
            end
        } else if end % 2 == 0 {
            7
        } else {
            8
        });
    }
    Some(8) // YYYYMMDD
}

/// The date in the first `len` bytes (CPython reads what each form needs, and no check that
/// it used them all).
fn parse_date(b: &Bytes<'_>, len: usize) -> Option<NaiveDate> {
    let mut p = 0;
    let year = b.digits(&mut p, 4)? as i32;
    let dashed = b.at(p) == b'-';
    p += usize::from(dashed);
    // Dashed dates need a '-' between fields (consumed only then).
    let dash = |p: &mut usize| {
        if !dashed {
            return true;
        }
        *p += 1;
        b.at(*p - 1) == b'-'
    };
    if b.at(p) == b'W' {
        p += 1;
        let week = b.digits(&mut p, 2)?;
        let day = if p < len {
            if !dash(&mut p) {
                return None;
            }
            b.digits(&mut p, 1)?
        } else {
            1
        };
        let weekday = Weekday::try_from(u8::try_from(day.checked_sub(1)?).ok()?).ok()?;
        return if year >= 1 { NaiveDate::from_isoywd_opt(year, week, weekday) } else { None };
    }
    let month = b.digits(&mut p, 2)?;
    if !dash(&mut p) {
        return None;
    }
    let day = b.digits(&mut p, 2)?;
    NaiveDate::from_ymd_opt(year, month, day)
}

/// Hours, minutes, seconds and microseconds, as read (not yet range-checked).
#[derive(Default)]
struct Clock {
    h: u32,
    m: u32,
    s: u32,
    micros: u32,
}

/// `HH[:MM[:SS]][.ffffff][offset]`: the clock, and the offset in microseconds.
fn parse_time(b: &Bytes<'_>) -> Option<(Clock, Option<i64>)> {
    let len = b.0.len();
    // The offset starts at the first 'Z', '+' or '-' (the first byte is looked at even when
    // there is none, as CPython's do-while does).
    let mut tz = 0;
    loop {
        if matches!(b.at(tz), b'Z' | b'+' | b'-') {
            break;
        }
        tz += 1;
        if tz >= len {
            break;
        }
    }
    let (clock, trailing) = parse_clock(b, 0, tz)?;
    if tz == len {
        return (!trailing).then_some((clock, None));
    }
    let marker = b.at(tz);
    if marker == b'Z' {
        return (b.at(tz + 1) == 0).then_some((clock, Some(0)));
    }
    let (off, trailing) = parse_clock(b, tz + 1, len)?;
    if trailing {
        return None;
    }
    let sign = if marker == b'-' { -1 } else { 1 };
    let secs = i64::from(off.h) * 3600 + i64::from(off.m) * 60 + i64::from(off.s);
    // CPython takes an offset of zero whole seconds as UTC, whatever its fraction.
    let offset = if secs == 0 { 0 } else { sign * (secs * 1_000_000 + i64::from(off.micros)) };
    // A timezone's offset must be strictly within a day.
    (offset.abs() < 86_400_000_000).then_some((clock, Some(offset)))
}

/// `HH[:?MM[:?SS]]` then a fraction after '.' or ',', between `from` and `end`: the fields, the
/// microseconds (digits past six dropped), and whether anything but the end follows.
fn parse_clock(b: &Bytes<'_>, from: usize, end: usize) -> Option<(Clock, bool)> {
    let mut fields = [0; 3];
    let mut p = from;
    let mut colons = true;
    for (i, field) in fields.iter_mut().enumerate() {
        *field = b.digits(&mut p, 2)?;
        let c = b.at(p);
        p += 1;
        if i == 0 {
            colons = c == b':';
        }
        if p >= end {
            let [h, m, s] = fields;
            return Some((Clock { h, m, s, micros: 0 }, c != 0));
        }
        if colons && c == b':' {
            continue;
        }
        if c == b'.' || c == b',' {
            break;
        }
        if colons {
            return None;
        }
        p -= 1; // no separators: the byte starts the next field
    }
    let take = (end - p).min(6);
    let digits = b.digits(&mut p, take)?;
    let micros = digits * 10u32.pow(6 - take as u32);
    while b.at(p).is_ascii_digit() {
        p += 1;
    }
    let [h, m, s] = fields;
    Some((Clock { h, m, s, micros }, b.at(p) != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Aware values (no dependence on the zone), as CPython 3.11.7 reads them, quirks included.
    #[test]
    fn reads_what_cpython_reads() {
        for (text, want) in [
            ("2026-01-01T10:00:00+05:30", Some(1767241800.0)),
            ("2026-01-01T10:00:00.25+05:30", Some(1767241800.25)),
            ("2026-01-01T10:00:00Z", Some(1767261600.0)),
            ("2026-01-02T10:00:00.123456+05:30", Some(1767328200.123456)),
            ("20260102T100000,5-0800", Some(1767376800.5)),
            ("2026-W01-3T10:00:00Z", Some(1767175200.0)),
            ("2026W013 10:00+00:00", Some(1767175200.0)),
            ("2026-W53-1T00:00Z", Some(1798416000.0)),
            ("2026-01-02\u{e9}10:00Z", Some(1767348000.0)),
            // A ':' after the seconds still leads to a fraction; an empty fraction is zero;
            // junk after six fraction digits is ignored when an offset follows.
            ("2026-01-02T10:00:00:5+05:30", Some(1767328200.5)),
            ("2026-01-02T10:00:00.+05:30", Some(1767328200.0)),
            ("2026-01-02T10:00:00.1234567x+05:30", Some(1767328200.123456)),
            ("2026-01-02T1000005Z", Some(1767348000.0)),
            // Offsets: zero whole seconds is UTC whatever the fraction; minutes may pass 59.
            ("2026-01-02T10:00+00.5", Some(1767348000.0)),
            ("2026-01-02T10:00+05:99", Some(1767324060.0)),
            // Past 2^53 microseconds the division still rounds once.
            ("2300-06-15T12:34:56.789012+00:00", Some(10428093296.789013)),
            ("", None),
            ("yesterday", None),
            ("2026-13-01T00:00:00", None),
            ("2026-01-01T25:00:00", None),
            ("2026-01-01T10:00:00+99:00", None),
            ("2026-01-02T", None),
            ("2026-01-02T10:00+24:00", None),
            ("2026-01-02T10:00:00Z+", None),
            ("2026-01-02T10:00:60Z", None),
            ("2026-01-02T1Z", None),
            ("0000-01-01T00:00Z", None),
            ("2026-01-02T10:00:00.5abc", None),
        ] {
            assert_eq!(iso_to_unix(text), want, "{text}");
        }
    }

    #[test]
    fn rounds_mtimes_like_python() {
        assert_eq!(round_to_micros(1764035263.9671168), 1764035263.967117);
        assert_eq!(round_to_micros(1764149203.0), 1764149203.0);
    }
}
