//! Timestamps as gptme computes them: dateutil's `isoparse(ts)` (quirks included), then Python's
//! `datetime.timestamp()`.

use chrono::{Datelike, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};

/// Parses an ISO 8601 timestamp into Unix seconds. Naive values are read in the local time zone
/// (`TZ` and the system zone database), as Python does.
pub fn iso_to_unix(s: &str) -> Option<f64> {
    match parse_stamp(s)? {
        Stamp::Aware(t) => Some(t),
        Stamp::Naive(wall, micros) => naive_to_unix(wall, micros),
    }
}

/// A timestamp as read, before any time zone: an aware one is an instant; a naive one a local
/// wall-clock reading, which the zone of whoever renders it makes an instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stamp {
    Aware(f64),
    /// Wall-clock seconds since the epoch (as if in UTC), and microseconds.
    Naive(i64, u32),
}

pub fn parse_stamp(s: &str) -> Option<Stamp> {
    let Parsed { wall, micros, offset } = parse(s)?;
    let wall_secs = wall.and_utc().timestamp();
    Some(match offset {
        // Python's total_seconds() divides exact microseconds once.
        Some(off_micros) => {
            let total = i128::from(wall_secs) * 1_000_000 + i128::from(micros) - i128::from(off_micros);
            Stamp::Aware(micros_to_secs(total))
        }
        None => Stamp::Naive(wall_secs, micros),
    })
}

/// The calendar day a timestamp was written in, `YYYY-MM-DD`, as it reads (no zone applied): for
/// gptme's usual naive local timestamps, the day where gptme ran; for an aware one, the day in
/// the offset it was written with. None where gptme could not read it.
pub fn written_day(s: &str) -> Option<[u8; 10]> {
    if let Some(day) = plain_day(s.as_bytes()) {
        return Some(day);
    }
    written_day_parsed(s)
}

/// The day of gptme's own form, `YYYY-MM-DDTHH:MM:SS[.ffffff]`, when every field is in range
/// (isoparse reads it then): its first ten bytes. None for anything else, which is parsed
/// whole. Every line with usage has a timestamp, and a parse costs ten times this.
fn plain_day(b: &[u8]) -> Option<[u8; 10]> {
    if !(b.len() == 19 || b.len() == 26 && b[19] == b'.' && b[20..].iter().all(u8::is_ascii_digit)) {
        return None;
    }
    let shape = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    let digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
    if !shape.iter().all(|&(i, c)| b[i] == c) || !digits.iter().all(|&i| b[i].is_ascii_digit()) {
        return None;
    }
    let two = |i: usize| u32::from(b[i] - b'0') * 10 + u32::from(b[i + 1] - b'0');
    let year = two(0) * 100 + two(2);
    let in_range = year >= 1 && two(11) < 24 && two(14) < 60 && two(17) < 60;
    (in_range && NaiveDate::from_ymd_opt(year as i32, two(5), two(8)).is_some())
        .then(|| b[..10].try_into().expect("ten bytes"))
}

fn written_day_parsed(s: &str) -> Option<[u8; 10]> {
    let Parsed { wall, .. } = parse(s)?;
    // Made by hand: it runs for every line with usage, and chrono's formatting allocates.
    let mut day = *b"0000-00-00";
    let mut put = |at: usize, digits: usize, mut v: u32| {
        for i in (at..at + digits).rev() {
            day[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, wall.year() as u32); // 1 to 9999
    put(5, 2, wall.month());
    put(8, 2, wall.day());
    Some(day)
}

/// A naive timestamp as an instant in this process's zone: Python's `_mktime()` gives whole
/// local seconds, then adds microseconds/1e6. None where Python fails (near years 1 and 9999).
pub fn naive_to_unix(wall_secs: i64, micros: u32) -> Option<f64> {
    Some(local_to_unix(wall_secs)? as f64 + f64::from(micros) / 1e6)
}

/// Whether a naive timestamp is an instant in every zone: Python fails only where the local
/// wall clock, a day or so either side, leaves years 1 to 9999, which no offset (at most 26
/// hours) reaches from years 2 to 9998.
pub fn naive_in_every_zone(wall_secs: i64) -> bool {
    let year_start = |y| NaiveDate::from_ymd_opt(y, 1, 1).map(|d| d.and_time(NaiveTime::MIN).and_utc().timestamp());
    matches!((year_start(2), year_start(9999)), (Some(from), Some(to)) if (from..to).contains(&wall_secs))
}

/// What decides how naive timestamps read in this process: the zone file chrono reads them with,
/// found as chrono finds it and known by its identity, not its name, so that two names of one
/// zone (`TZ` unset where `/etc/localtime` links to `Europe/Berlin`, and `TZ=Europe/Berlin` in a
/// shell) share an index without reading every log again, while an updated zone database, or
/// another zone, counts as a change. A stat, not a read: at the limit on open files it still
/// answers alike. Looked at again at most once a second, as chrono looks at the zone.
pub fn zone_key() -> String {
    static LAST: std::sync::Mutex<Option<(std::time::Instant, String)>> = std::sync::Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    match &*last {
        Some((at, key)) if at.elapsed() < std::time::Duration::from_secs(1) => key.clone(),
        _ => {
            let key = read_zone_key();
            *last = Some((std::time::Instant::now(), key.clone()));
            key
        }
    }
}

/// Where chrono looks for a zone named by `TZ` (its `ZONE_INFO_DIRECTORIES`).
const ZONE_DIRECTORIES: [&str; 4] =
    ["/usr/share/zoneinfo", "/share/zoneinfo", "/etc/zoneinfo", "/usr/share/lib/zoneinfo"];

fn read_zone_key() -> String {
    use std::os::unix::fs::MetadataExt;
    // chrono reads `TZ` as UTF-8 (else as if unset); empty means UTC; a leading `:` names a
    // file only; otherwise a file if there is one, else a POSIX rule (`IST-5:30`).
    let tz = std::env::var("TZ").ok();
    let name = match tz.as_deref() {
        None => "/etc/localtime",
        Some("") => return "UTC (TZ empty)".into(),
        Some(tz) => tz.strip_prefix(':').unwrap_or(tz),
    };
    let paths = match name.starts_with('/') {
        true => vec![std::path::PathBuf::from(name)],
        false => ZONE_DIRECTORIES.iter().map(|d| std::path::Path::new(d).join(name)).collect(),
    };
    // Links to one file (as `/etc/localtime` is, and the zone database's aliases) share a key.
    match paths.iter().find_map(|p| std::fs::metadata(p).ok().filter(|m| m.is_file())) {
        Some(m) => format!("zone file {}:{}:{}:{}", m.dev(), m.ino(), m.size(), m.mtime()),
        None => match tz {
            Some(rule) => format!("TZ rule {rule:?}"),
            None => "no /etc/localtime".into(),
        },
    }
}

/// The local time zone as a person names it, for messages: `TZ=Europe/Berlin`, or without `TZ`
/// the zone `/etc/localtime` links to (`Europe/Berlin (/etc/localtime)`).
pub fn zone_name() -> String {
    match std::env::var("TZ") {
        Ok(tz) if tz.is_empty() => "UTC (TZ empty)".into(),
        Ok(tz) => format!("TZ={tz}"),
        Err(_) => match std::fs::read_link("/etc/localtime") {
            Ok(target) => match target.to_string_lossy().split_once("zoneinfo/") {
                Some((_, zone)) => format!("{zone} (/etc/localtime)"),
                None => format!("{} (/etc/localtime)", target.display()),
            },
            Err(_) if std::path::Path::new("/etc/localtime").exists() => "/etc/localtime".into(),
            Err(_) => "UTC (no /etc/localtime)".into(),
        },
    }
}

/// The key [`zone_key`] gave until session 37 (the zone file's name and identity), so that an
/// index recorded with it is not read again for the change of key alone.
pub fn legacy_zone_key() -> String {
    use std::os::unix::fs::MetadataExt;
    let tz = std::env::var_os("TZ").map(|v| v.to_string_lossy().into_owned());
    let file = match tz.as_deref().map(|v| v.strip_prefix(':').unwrap_or(v)) {
        None => std::path::PathBuf::from("/etc/localtime"),
        Some(path) if path.starts_with('/') => path.into(),
        Some(name) => std::path::Path::new("/usr/share/zoneinfo").join(name),
    };
    let identity = std::fs::metadata(&file)
        .map(|m| format!("{}:{}:{}:{}", m.dev(), m.ino(), m.size(), m.mtime()))
        .unwrap_or_else(|_| "none".into());
    let tz = tz.map_or("unset".into(), |v| format!("{v:?}"));
    format!("TZ={tz} ({}: {identity})", file.display())
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

/// Python's `datetime.fromtimestamp(t, tz=timezone.utc).timestamp()`, which is what gptme
/// reports as `created` for a line without a timestamp: the time rounded (half to even) to whole
/// microseconds, then the microseconds since the epoch divided by 10^6 as Python divides ints,
/// rounded once. Adding the microseconds to the whole seconds as a float instead rounds twice,
/// which near the epoch can land one float off (`1.4642490000000001` for `1.464249`).
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
    // Both operands exact, so the one division rounds once. Past 2^53 microseconds (years
    // before 1685 or after 2255) the count is not exact as a float; there the seconds are so
    // large that adding the fraction cannot cross a rounding boundary, and is Python's result.
    // `+ 0.0` makes a -0.0 the int 0 that Python divides.
    let micros = whole * 1e6 + us + 0.0;
    if micros.abs() <= (1u64 << 53) as f64 {
        micros / 1e6
    } else {
        whole + us / 1e6
    }
}

/// A timestamp as gptme reads it.
struct Parsed {
    /// The wall-clock date and time, whole seconds.
    wall: NaiveDateTime,
    micros: u32,
    /// The UTC offset in microseconds, for an aware timestamp.
    offset: Option<i64>,
}

/// Python's `int()` of a few ASCII bytes (a slice of the timestamp): surrounding whitespace, a
/// sign, and digits with single underscores between them are all accepted.
fn py_int(b: &[u8]) -> Option<i64> {
    let space = |c: &u8| b" \t\n\x0b\x0c\r".contains(c);
    let start = b.iter().position(|c| !space(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !space(c)).map_or(start, |i| i + 1);
    let b = &b[start..end];
    let (negative, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, b),
    };
    let valid = !digits.is_empty()
        && digits.first().is_some_and(u8::is_ascii_digit)
        && digits.last().is_some_and(u8::is_ascii_digit)
        && digits.iter().all(|&c| c.is_ascii_digit() || c == b'_')
        && !digits.windows(2).any(|w| w == b"__");
    if !valid {
        return None;
    }
    let v = digits.iter().filter(|c| c.is_ascii_digit()).fold(0i64, |v, &c| v * 10 + i64::from(c - b'0'));
    Some(if negative { -v } else { v })
}

/// Python's slice `b[from..to]`: clamped to the bytes there are.
fn slice(b: &[u8], from: usize, to: usize) -> &[u8] {
    &b[from.min(b.len())..to.min(b.len())]
}

/// dateutil 2.9's `isoparse`, which gptme 0.35.1 reads `timestamp` with: a date (`YYYY`,
/// `YYYY-MM`, `YYYY-MM-DD`, `YYYYMMDD`, ISO week `YYYY-Www[-D]`, ordinal `YYYY-DDD`), then any one
/// character and a time (`hh[:mm[:ss[.f…]]]`, 24:00 allowed) with an optional offset.
fn parse(s: &str) -> Option<Parsed> {
    if !s.is_ascii() {
        return None;
    }
    let b = s.as_bytes();
    let ([year, month, day], pos) = common_date(b).or_else(|| uncommon_date(b))?;
    let (mut clock, mut offset) = (Clock::default(), None);
    if b.len() > pos {
        (clock, offset) = parse_time(&b[pos + 1..])?;
    }
    let date =
        NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, u32::try_from(month).ok()?, u32::try_from(day).ok()?)?;
    // 24:00 is midnight at the end of the day.
    let (hour, next_day) = if clock.h == 24 { (0, 1) } else { (clock.h, 0) };
    let time =
        NaiveTime::from_hms_opt(u32::try_from(hour).ok()?, u32::try_from(clock.m).ok()?, u32::try_from(clock.s).ok()?)?;
    if !(1..=9999).contains(&date.year()) {
        return None;
    }
    let wall = date.and_time(time).checked_add_signed(chrono::TimeDelta::days(next_day))?;
    (wall.year() <= 9999).then_some(Parsed { wall, micros: clock.micros, offset })
}

/// `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or `YYYYMMDD`: the fields (not yet range-checked) and where
/// the date ends.
fn common_date(b: &[u8]) -> Option<([i64; 3], usize)> {
    let len = b.len();
    if len < 4 {
        return None;
    }
    let year = py_int(&b[..4])?;
    if len == 4 {
        return Some(([year, 1, 1], 4));
    }
    let dashed = b[4] == b'-';
    let mut pos = 4 + usize::from(dashed);
    if len < pos + 2 {
        return None;
    }
    let month = py_int(&b[pos..pos + 2])?;
    pos += 2;
    if pos >= len {
        return dashed.then_some(([year, month, 1], pos));
    }
    if dashed {
        if b[pos] != b'-' {
            return None;
        }
        pos += 1;
    }
    if len < pos + 2 {
        return None;
    }
    Some(([year, month, py_int(&b[pos..pos + 2])?], pos + 2))
}

/// An ISO week date (`YYYY-Www[-D]`, `YYYYWww[D]`) or an ordinal date (`YYYY-DDD`, `YYYYDDD`).
fn uncommon_date(b: &[u8]) -> Option<([i64; 3], usize)> {
    if b.len() < 4 {
        return None;
    }
    let year = py_int(&b[..4])?;
    let dashed = b.get(4) == Some(&b'-');
    let mut pos = 4 + usize::from(dashed);
    let date = if b.get(pos) == Some(&b'W') {
        let week = py_int(slice(b, pos + 1, pos + 3))?;
        pos += 3;
        let mut day = 1;
        if b.len() > pos {
            if (b[pos] == b'-') != dashed {
                return None;
            }
            pos += usize::from(dashed);
            day = py_int(slice(b, pos, pos + 1))?;
            pos += 1;
        }
        if !(1..54).contains(&week) || !(1..8).contains(&day) {
            return None;
        }
        // Week 1 holds January 4th; weeks count from its Monday (week 53 of any year allowed).
        let jan4 = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, 1, 4)?;
        let monday = jan4 - chrono::TimeDelta::days(i64::from(jan4.weekday().num_days_from_monday()));
        monday.checked_add_signed(chrono::TimeDelta::days((week - 1) * 7 + day - 1))?
    } else {
        if b.len() < pos + 3 {
            return None;
        }
        let ordinal = py_int(&b[pos..pos + 3])?;
        pos += 3;
        let days_in_year = if NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, 2, 29).is_some() { 366 } else { 365 };
        if !(1..=days_in_year).contains(&ordinal) {
            return None;
        }
        NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, 1, 1)?
            .checked_add_signed(chrono::TimeDelta::days(ordinal - 1))?
    };
    if !(1..=9999).contains(&date.year()) {
        return None;
    }
    Some(([i64::from(date.year()), i64::from(date.month()), i64::from(date.day())], pos))
}

/// Hours, minutes, seconds and microseconds, as read (not yet range-checked).
#[derive(Default)]
struct Clock {
    h: i64,
    m: i64,
    s: i64,
    micros: u32,
}

/// `hh[:mm[:ss[.f…]]]` (or without colons) and an optional `Z` or `±hh[[:]mm]`: the clock, and
/// the offset in microseconds when there is one.
fn parse_time(t: &[u8]) -> Option<(Clock, Option<i64>)> {
    let len = t.len();
    if len < 2 {
        return None;
    }
    let mut fields = [0i64; 3];
    let (mut micros, mut offset) = (0u32, None);
    let (mut pos, mut colons) = (0, false);
    // Components in order: hours, minutes, seconds, fraction, and two more chances for the offset.
    // The component number drives the grammar; it indexes `fields` only for the first three.
    #[allow(clippy::needless_range_loop)]
    for comp in 0..6 {
        if pos >= len {
            break;
        }
        if matches!(t[pos], b'-' | b'+' | b'Z' | b'z') {
            offset = Some(parse_offset(&t[pos..])?);
            pos = len;
            break;
        }
        if comp == 1 && t[pos] == b':' {
            colons = true;
            pos += 1;
        } else if comp == 2 && colons {
            if t.get(pos) != Some(&b':') {
                return None;
            }
            pos += 1;
        }
        if comp < 3 {
            fields[comp] = py_int(slice(t, pos, pos + 2))?;
            pos += 2;
        }
        if comp == 3 && matches!(t.get(pos), Some(b'.' | b',')) {
            let digits = t[pos + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits > 0 {
                let kept = &t[pos + 1..pos + 1 + digits.min(6)];
                let value = kept.iter().fold(0u32, |v, &c| v * 10 + u32::from(c - b'0'));
                micros = value * 10u32.pow(6 - kept.len() as u32);
                pos += 1 + digits;
            }
        }
    }
    if pos < len {
        return None;
    }
    let [h, m, s] = fields;
    if h == 24 && (m, s, micros) != (0, 0, 0) {
        return None;
    }
    Some((Clock { h, m, s, micros }, offset))
}

/// `Z`, `±hh`, `±hhmm` or `±hh:mm`, in microseconds.
fn parse_offset(z: &[u8]) -> Option<i64> {
    if z == b"Z" || z == b"z" {
        return Some(0);
    }
    if ![3, 5, 6].contains(&z.len()) {
        return None;
    }
    let sign = match z[0] {
        b'-' => -1,
        b'+' => 1,
        _ => return None,
    };
    let hours = py_int(&z[1..3])?;
    let minutes = if z.len() == 3 { 0 } else { py_int(&z[if z[3] == b':' { 4 } else { 3 }..])? };
    if hours == 0 && minutes == 0 {
        return Some(0);
    }
    if minutes > 59 || hours > 23 {
        return None;
    }
    Some(sign * (hours * 60 + minutes) * 60 * 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The day as written, in every form isoparse reads, with no zone applied.
    #[test]
    fn written_days() {
        let day = |s: &str| written_day(s).map(|d| String::from_utf8(d.to_vec()).unwrap());
        for (stamp, want) in [
            ("2026-01-02T10:11:20.500000", Some("2026-01-02")),
            ("2026-01-02T23:30:00-05:00", Some("2026-01-02")),
            ("2026-01-02T01:00:00+09:00", Some("2026-01-02")),
            ("2026-01-02T24:00:00", Some("2026-01-03")),
            ("0001-01-01T00:00:00", Some("0001-01-01")),
            ("20260102T101120", Some("2026-01-02")),
            ("2026-W01-1", Some("2025-12-29")),
            ("2026-032", Some("2026-02-01")),
            ("2026", Some("2026-01-01")),
            ("2026-02-30T00:00:00", None),
            ("yesterday", None),
        ] {
            assert_eq!(day(stamp).as_deref(), want, "{stamp}");
        }
    }

    /// The shortcut for gptme's own form answers as the whole parse does, wherever it answers.
    #[test]
    fn the_plain_form_shortcut_agrees_with_the_parse() {
        let mut rng = crate::test_rng::Rng(17);
        let mut claimed = 0;
        for _ in 0..200_000 {
            let mut s = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                rng.below(10_000),
                rng.below(14),
                rng.below(33),
                rng.below(26),
                rng.below(62),
                rng.below(62)
            );
            match rng.below(4) {
                0 => s.push_str(&format!(".{:06}", rng.below(1_000_000))),
                1 => s.push_str(&format!(".{}", rng.below(1_000))),
                2 => s.replace_range(10..11, " "),
                _ => {}
            }
            let day = plain_day(s.as_bytes());
            claimed += usize::from(day.is_some());
            if day.is_some() {
                assert_eq!(day, written_day_parsed(&s), "{s}");
            }
        }
        assert!(claimed > 50_000, "{claimed}");
    }

    /// Aware values (no dependence on the zone), as dateutil 2.9's isoparse and CPython 3.11.7
    /// read them, quirks included.
    #[test]
    fn reads_what_dateutil_reads() {
        for (text, want) in [
            ("2026-01-01T10:00:00+05:30", Some(1767241800.0)),
            ("2026-01-01T10:00:00.25+05:30", Some(1767241800.25)),
            ("2026-01-01T10:00:00Z", Some(1767261600.0)),
            ("2026-01-02T10:00:00.123456+05:30", Some(1767328200.123456)),
            ("20260102T100000,5-0800", Some(1767376800.5)),
            ("2026-W01-3T10:00:00Z", Some(1767175200.0)),
            ("2026W013 10:00+00:00", Some(1767175200.0)),
            ("2025-W53-1T00:00Z", Some(1766966400.0)),
            ("2026-032T10:00z", Some(1769940000.0)),
            ("2026-01-02T24:00Z", Some(1767398400.0)),
            ("2026-01-02x10:00:00.1234567+05:30", Some(1767328200.123456)),
            // Python's int() reads each field: spaces, signs and a vertical tab pass.
            ("2026-01-02T 5:00Z", Some(1767330000.0)),
            ("2026-01-02T10:00+05-3", Some(1767330180.0)),
            ("\x0b087-01-01T00:00Z", Some(-59421686400.0)),
            // Past 2^53 microseconds the division still rounds once.
            ("2300-06-15T12:34:56.789012+00:00", Some(10428093296.789013)),
            ("", None),
            ("yesterday", None),
            ("2026-01-02T10:00:00.5abc", None),
            ("2026-01-02T10:00:00+05:30:15", None),
            ("2026-01-02T10:00:00:5+05:30", None),
            ("2026-01-02T10:00:00.+05:30", None),
            ("2026-01-02T", None),
            ("2026-01-02T24:00:01Z", None),
            ("2026-01-02\u{e9}10:00Z", None),
            ("2026-13-01T00:00Z", None),
            ("2026-01-02T10:00+24:00", None),
            ("0000-01-01T00:00Z", None),
        ] {
            assert_eq!(iso_to_unix(text), want, "{text:?}");
        }
    }

    #[test]
    fn rounds_mtimes_like_python() {
        assert_eq!(round_to_micros(1764035263.9671168), 1764035263.967117);
        assert_eq!(round_to_micros(1764149203.0), 1764149203.0);
        // Python's answers (3.11), near the epoch and far from it.
        for (t, python) in [
            (1.464249, 1.464249),
            (1.4642490000000001, 1.464249),
            (-1.464249, -1.464249),
            (-0.5, -0.5),
            (1234.567891, 1234.567891),
            (6e-7, 1e-6),
            (12345678901.123457, 12345678901.123457),
            (-62135596800.0, -62135596800.0),
        ] {
            assert_eq!(round_to_micros(t), python, "{t}");
        }
        for t in [1e-7, 4e-7, -4e-7] {
            assert_eq!(round_to_micros(t).to_bits(), 0.0f64.to_bits(), "{t}: Python gives 0.0, not -0.0");
        }
    }
}
