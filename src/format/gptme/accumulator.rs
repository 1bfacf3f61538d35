//! The running state of one conversation log, fed line by line in file order. It is stored with
//! the row and resumed when the file grows, so a full scan and an incremental one are the same
//! code: feed the lines you have not fed yet.

use serde::{Deserialize, Serialize};

use super::line::{Count, Line, Metadata, Timestamp};
use super::{preview, time};
use crate::json::{push_py_str_cps, Malformed};
use crate::pynum::{any_float, PyNum};

/// Where `created` comes from, decided by the first line that parses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub enum Created {
    /// No usable line yet: `created` is `modified`.
    #[default]
    Unknown,
    /// The first line has no timestamp: the file's mtime rounded to microseconds.
    FileMtime,
    /// An instant as found in the time zone the row was read in: a naive timestamp near the
    /// ends of Python's range, where the zone decides (and every instant stored before session
    /// 37). Read again under another zone.
    At(f64),
    /// An aware timestamp: the same instant in every zone.
    Aware(f64),
    /// A naive timestamp (wall-clock seconds, microseconds), made an instant in the zone the row
    /// is rendered in: under another zone the row is rendered again, and the log not read.
    Local(i64, u32),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelUsage {
    #[serde(with = "any_float")]
    pub cost: f64,
    pub input_tokens: PyNum,
    pub output_tokens: PyNum,
    pub cache_read_tokens: PyNum,
}

impl ModelUsage {
    fn add(&mut self, cost: f64, input: PyNum, output: PyNum, cache_read: PyNum, overflow: &mut bool) {
        self.cost += cost;
        self.input_tokens = self.input_tokens.add(input, overflow);
        self.output_tokens = self.output_tokens.add(output, overflow);
        self.cache_read_tokens = self.cache_read_tokens.add(cache_read, overflow);
    }
}

/// The last user/assistant message, when its preview is not empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastMessage {
    pub role: String,
    /// The preview as a JSON string literal written as Python writes it (keeps lone surrogates).
    pub preview_json: String,
    /// The same text for humans and SQL (lone surrogates become U+FFFD).
    pub preview: String,
}

/// Problems found in the log itself; the row shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LineProblems {
    /// Lines that are not a UTF-8 JSON object (still counted as messages, as gptme does).
    pub bad_lines: u64,
    /// Known fields of the wrong type, ignored.
    pub bad_fields: u64,
    /// Lines too long to hold in memory, counted but not parsed.
    pub oversized_lines: u64,
    /// Metadata with negative token counts or cost, or sums past 2^63 (kept as gptme sums them,
    /// saturating at the limit).
    pub implausible_values: u64,
    /// Lines with invalid UTF-8, read with U+FFFD in place of the bad bytes (as gptme reads
    /// them for `created`; it fails on them elsewhere).
    pub invalid_utf8_lines: u64,
}

impl LineProblems {
    pub fn total(&self) -> u64 {
        self.bad_lines + self.bad_fields + self.oversized_lines + self.invalid_utf8_lines + self.implausible_values
    }

    /// What was found after `before` (a resumed read starts from the stored counts).
    pub fn since(&self, before: &LineProblems) -> LineProblems {
        LineProblems {
            bad_lines: self.bad_lines.saturating_sub(before.bad_lines),
            bad_fields: self.bad_fields.saturating_sub(before.bad_fields),
            oversized_lines: self.oversized_lines.saturating_sub(before.oversized_lines),
            implausible_values: self.implausible_values.saturating_sub(before.implausible_values),
            invalid_utf8_lines: self.invalid_utf8_lines.saturating_sub(before.invalid_utf8_lines),
        }
    }

    /// Each kind found, in words: "1 malformed line", "2 malformed lines".
    pub fn notes(&self) -> impl Iterator<Item = String> {
        [
            (self.bad_lines, "malformed line", "malformed lines"),
            (self.bad_fields, "field of the wrong type", "fields of the wrong type"),
            (self.oversized_lines, "oversized line", "oversized lines"),
            (self.invalid_utf8_lines, "line with invalid UTF-8", "lines with invalid UTF-8"),
            (
                self.implausible_values,
                "line with negative or overflowing tokens or cost",
                "lines with negative or overflowing tokens or cost",
            ),
        ]
        .into_iter()
        .filter(|(n, ..)| *n > 0)
        .map(|(n, one, many)| format!("{n} {}", if n == 1 { one } else { many }))
    }

    /// What was found on one line, in words: "malformed", "invalid UTF-8, 2 fields of the wrong
    /// type".
    pub fn on_one_line(&self) -> String {
        let fields = match self.bad_fields {
            1 => "a field of the wrong type".to_owned(),
            n => format!("{n} fields of the wrong type"),
        };
        [
            (self.bad_lines, "malformed".to_owned()),
            (self.invalid_utf8_lines, "invalid UTF-8".to_owned()),
            (self.bad_fields, fields),
            (self.oversized_lines, format!("over {} MiB, not read", crate::scan::MAX_LINE >> 20)),
            (self.implausible_values, "negative or overflowing tokens or cost".to_owned()),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(_, words)| words)
        .collect::<Vec<_>>()
        .join(", ")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Accumulator {
    pub messages: u64,
    pub created: Created,
    pub model: Option<String>,
    #[serde(with = "any_float")]
    pub total_cost: f64,
    pub total_input_tokens: PyNum,
    pub total_output_tokens: PyNum,
    pub total_cache_read_tokens: PyNum,
    /// In first-seen order, as gptme builds its dict.
    pub models_usage: Vec<(String, ModelUsage)>,
    /// `models_usage` split by the day each line was written ([`time::written_day`]; `""` for a
    /// line without a timestamp that reads), in first-seen order: (day, model, usage).
    pub usage_by_day: Vec<(String, String, ModelUsage)>,
    pub last_message: Option<LastMessage>,
    pub problems: LineProblems,
    /// The stored offset is inside a line too long to hold: the next scan skips to its end.
    pub inside_oversized: bool,
    /// Which line gave `created` depended on the time zone (a naive timestamp near the ends of
    /// Python's range failed, or might have, in another): read again under another zone.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub created_zone_bound: bool,
    /// Where the newest user/assistant line fed since the last `settle` starts, and its length:
    /// its preview is computed once at the end of a scan rather than for every message.
    #[serde(skip)]
    pending_last: Option<(u64, usize)>,
}

/// ASCII whitespace as Python's `bytes.strip()` sees it.
fn is_ascii_space(b: &u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(is_ascii_space)
}

/// Parses a line as gptme's totals read it (`json.loads(line.strip())` on bytes), reading
/// invalid UTF-8 with U+FFFD in place of the bad bytes when needed (gptme would fail the whole
/// listing). `f` learns whether that happened.
fn with_parsed<R>(bytes: &[u8], f: impl FnOnce(Result<Line<'_>, Malformed>, bool) -> R) -> R {
    let start = bytes.iter().position(|b| !is_ascii_space(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !is_ascii_space(b)).map_or(start, |i| i + 1);
    let bytes = &bytes[start..end];
    match Line::parse(bytes) {
        Err(Malformed::Utf8) => {
            // gptme parses the bytes (its totals, its preview): encoded surrogates read as such.
            let lossy = crate::json::surrogatepass_lossy(bytes);
            f(Line::parse(lossy.as_bytes()), true)
        }
        other => f(other, false),
    }
}

/// What a line gives `created`: gptme takes it from the first line its log reader accepts as
/// a message. Also whether the time zone decided that (see `Accumulator::created_zone_bound`).
fn created_of(line: &Line<'_>) -> (Created, bool) {
    if !line.is_message() {
        return (Created::Unknown, false);
    }
    match line.timestamp {
        Timestamp::Missing => (Created::FileMtime, false),
        Timestamp::Text(s) => match time::parse_stamp(&s.decode_lossy()) {
            None => (Created::Unknown, false),
            Some(time::Stamp::Aware(t)) => (Created::Aware(t), false),
            Some(time::Stamp::Naive(wall, micros)) if time::naive_in_every_zone(wall) => {
                (Created::Local(wall, micros), false)
            }
            Some(time::Stamp::Naive(wall, micros)) => {
                (time::naive_to_unix(wall, micros).map_or(Created::Unknown, Created::At), true)
            }
        },
        Timestamp::Unusable => (Created::Unknown, false),
    }
}

/// [`created_of`] the line as gptme's log reader reads it (see [`parts_as_read`]).
fn created_of_text(bytes: &[u8]) -> (Created, bool) {
    let mut zone_bound = false;
    let created = parts_as_read(bytes, |line| {
        let (created, bound) = created_of(line);
        zone_bound |= bound;
        (created != Created::Unknown).then_some(created)
    });
    (created.unwrap_or(Created::Unknown), zone_bound)
}

/// Whether a line is plainly one object, which gptme's log reader sees as the bytes say
/// (otherwise see [`parts_as_read`]).
pub(crate) fn plainly_one_object(bytes: &[u8]) -> bool {
    let trimmed = bytes.trim_ascii();
    trimmed.starts_with(b"{") && trimmed.ends_with(b"}") && !trimmed.contains(&b'\r')
}

/// One line of the file (without its `\n`) as gptme's log reader reads it: text (bad UTF-8 as
/// U+FFFD) with a bare `\r` ending a line too (universal newlines), each line stripped of
/// Python's whitespace (`\u00a0`, `\u2028`, `\x1c` … too) and parsed as a `str`, which refuses a
/// byte-order mark. Gives `f` each part that parses, until it returns something.
pub(crate) fn parts_as_read<T>(bytes: &[u8], mut f: impl FnMut(&Line<'_>) -> Option<T>) -> Option<T> {
    let text = String::from_utf8_lossy(bytes);
    for part in text.split('\r') {
        let part = part.trim_matches(|c: char| preview::is_py_space(c as u32));
        if part.is_empty() || part.starts_with('\u{feff}') {
            continue;
        }
        if let Some(found) = Line::parse(part.as_bytes()).ok().as_ref().and_then(&mut f) {
            return Some(found);
        }
    }
    None
}

/// Whether gptme's log reader takes a parsed line as a message: [`Line::is_message`], with no
/// timestamp or one it reads.
pub(crate) fn read_as_message(line: &Line<'_>) -> bool {
    line.is_message()
        && match line.timestamp {
            Timestamp::Missing => true,
            Timestamp::Text(s) => time::parse_stamp(&s.decode_lossy()).is_some(),
            Timestamp::Unusable => false,
        }
}

impl Accumulator {
    /// Feeds one line (without its `\n`) that starts at `offset` in the file.
    pub fn feed(&mut self, bytes: &[u8], offset: u64) {
        if is_blank(bytes) {
            return;
        }
        self.messages += 1;
        with_parsed(bytes, |parsed, lossy| {
            self.problems.invalid_utf8_lines += u64::from(lossy);
            if self.created == Created::Unknown {
                // gptme's log reader sees this same line unless it has other whitespace at its
                // ends, a byte-order mark, or a bare `\r` (a line break to that reader): those
                // rare lines are read again its way.
                let (created, zone_bound) = match &parsed {
                    Ok(line) if plainly_one_object(bytes) => created_of(line),
                    _ => created_of_text(bytes),
                };
                self.created = created;
                self.created_zone_bound |= zone_bound;
            }
            match parsed {
                Ok(line) => self.add(&line, offset, bytes.len()),
                Err(_) => self.problems.bad_lines += 1,
            }
        });
    }

    fn add(&mut self, line: &Line<'_>, offset: u64, len: usize) {
        self.problems.bad_fields += u64::from(line.bad_fields);
        if let Some(meta) = line.metadata.as_ref().filter(|m| m.nonempty) {
            self.add_metadata(meta, &line.timestamp);
        }
        if line.conversational_role().is_some() {
            self.pending_last = Some((offset, len));
        }
    }

    /// gptme's sums of one line's metadata, step by step in its order: a value that is not a
    /// number (`"12"`, `[1]`) raises Python's TypeError where it is added, and gptme then skips
    /// the rest of the line, keeping what it had added before.
    fn add_metadata(&mut self, meta: &Metadata<'_>, timestamp: &Timestamp<'_>) {
        if let Some(model) = meta.model {
            if !self.model.as_deref().is_some_and(|m| model.is(m)) {
                self.model = Some(model.decode_lossy());
            }
        }
        // Sums are gptme's (negative values included); what no sane log holds is counted.
        let mut odd = false;
        self.add_sums(meta, timestamp, &mut odd);
        self.problems.implausible_values += u64::from(odd);
    }

    /// The sums of [`Accumulator::add_metadata`], up to the first value that is not a number;
    /// `odd` is set for a negative value or an int sum past `i64`.
    fn add_sums(&mut self, meta: &Metadata<'_>, timestamp: &Timestamp<'_>, odd: &mut bool) {
        let Count::Number(cost) = meta.cost else { return };
        *odd |= cost < 0.0;
        self.total_cost += cost;
        let (Count::Number(input), Count::Number(cache_read), Count::Number(cache_creation)) =
            (meta.input_tokens, meta.cache_read_tokens, meta.cache_creation_tokens)
        else {
            return;
        };
        *odd |= [input, cache_read, cache_creation].iter().any(|t| t.is_negative());
        let input = input.add(cache_read, odd).add(cache_creation, odd);
        self.total_input_tokens = self.total_input_tokens.add(input, odd);
        let Count::Number(output) = meta.output_tokens else { return };
        *odd |= output.is_negative();
        self.total_output_tokens = self.total_output_tokens.add(output, odd);
        self.total_cache_read_tokens = self.total_cache_read_tokens.add(cache_read, odd);
        let key = self.model.as_deref().unwrap_or("unknown");
        let usage = match self.models_usage.iter().position(|(m, _)| m == key) {
            Some(i) => &mut self.models_usage[i].1,
            None => {
                self.models_usage.push((key.to_owned(), ModelUsage::default()));
                &mut self.models_usage.last_mut().expect("just pushed").1
            }
        };
        usage.add(cost, input, output, cache_read, odd);
        let day = match timestamp {
            Timestamp::Text(s) if !s.has_escapes() => std::str::from_utf8(s.bytes).ok().and_then(time::written_day),
            Timestamp::Text(s) => time::written_day(&s.decode_lossy()),
            _ => None,
        };
        let day = day.as_ref().map_or("", |d| std::str::from_utf8(d).expect("ASCII digits"));
        // Days mostly come in order: the entry sought is nearly always the last.
        let by_day = match self.usage_by_day.iter().rposition(|(d, m, _)| d == day && m == key) {
            Some(i) => &mut self.usage_by_day[i].2,
            None => {
                self.usage_by_day.push((day.to_owned(), key.to_owned(), ModelUsage::default()));
                &mut self.usage_by_day.last_mut().expect("just pushed").2
            }
        };
        // Overflow was counted once, above.
        by_day.add(cost, input, output, cache_read, &mut false);
    }

    /// Counts a line that was too long to parse.
    pub fn feed_oversized(&mut self) {
        self.messages += 1;
        self.problems.oversized_lines += 1;
    }

    /// Computes the preview of the newest user/assistant line fed so far. `read` fetches a line's
    /// bytes by offset and length; if it cannot, the previous preview stays (the file changed
    /// under us, and the next refresh reads it again).
    pub fn settle(&mut self, read: impl FnOnce(u64, usize) -> Option<Vec<u8>>) {
        let Some((offset, len)) = self.pending_last.take() else {
            return;
        };
        let Some(bytes) = read(offset, len) else {
            return;
        };
        self.last_message = with_parsed(&bytes, |parsed, _| {
            let line = parsed.ok()?;
            let role = line.conversational_role()?;
            let cps = preview::preview(line.content?.code_points())?;
            let mut preview_json = String::new();
            push_py_str_cps(&mut preview_json, cps.iter().copied());
            let preview = cps.iter().map(|&c| char::from_u32(c).unwrap_or('\u{FFFD}')).collect();
            Some(LastMessage { role: role.to_owned(), preview_json, preview })
        });
    }

    /// `created` as gptme reports it, given the file's current `modified`.
    pub fn created(&self, modified: f64) -> f64 {
        match self.created {
            Created::Unknown => modified,
            Created::FileMtime => time::round_to_micros(modified),
            Created::At(t) | Created::Aware(t) => t,
            // Years 2 to 9998 convert in every zone; `modified` is never used.
            Created::Local(wall, micros) => time::naive_to_unix(wall, micros).unwrap_or(modified),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(text: &str) -> Accumulator {
        let mut acc = Accumulator::default();
        let mut offset = 0;
        for line in text.split('\n') {
            acc.feed(line.as_bytes(), offset);
            offset += line.len() as u64 + 1;
        }
        acc.settle(|at, len| Some(text.as_bytes()[at as usize..at as usize + len].to_vec()));
        acc
    }

    #[test]
    fn models_usage_attribution() {
        let acc = full(concat!(
            r#"{"role": "assistant", "content": "a1", "metadata": {"usage": {"input_tokens": 10, "output_tokens": 1}, "cost": 0.1}}"#,
            "\n",
            r#"{"role": "assistant", "content": "a2", "metadata": {"model": "m1", "usage": {"input_tokens": 20}, "cost": 0.2}}"#,
            "\n",
            r#"{"role": "assistant", "content": "a3", "metadata": {"usage": {"input_tokens": 5, "cache_read_tokens": 100}}}"#,
            "\n",
            r#"{"role": "assistant", "content": "a5", "metadata": {}}"#,
            "\n",
            r#"{"role": "assistant", "content": "a6", "metadata": {"model": "m3"}}"#,
            "\n",
        ));
        let keys: Vec<&str> = acc.models_usage.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["unknown", "m1", "m3"]);
        assert_eq!(acc.models_usage[1].1.input_tokens, PyNum::Int(125));
        assert_eq!(acc.model.as_deref(), Some("m3"));
        assert_eq!(acc.last_message.unwrap().preview, "a6");
        assert_eq!(acc.messages, 5);
    }

    /// Usage split by the day each line was written, as it reads (an aware timestamp's day is
    /// that of its own offset), per model as `models_usage` keys it; the days sum to it.
    #[test]
    fn usage_by_day_splits_models_usage_by_the_written_day() {
        let line = |ts: &str, model: &str, input: u32, cost: f64| {
            let ts = if ts.is_empty() { String::new() } else { format!(r#""timestamp": "{ts}", "#) };
            format!(
                r#"{{"role": "assistant", "content": "x", {ts}"metadata": {{"model": "{model}", "usage": {{"input_tokens": {input}, "output_tokens": 1}}, "cost": {cost}}}}}"#
            ) + "\n"
        };
        let acc = full(
            &[
                line("2026-01-01T23:59:59.5", "m1", 10, 0.5),
                line("2026-01-02T00:00:00", "m1", 20, 0.25),
                line("2026-01-01T23:00:00-05:00", "m2", 30, 1.0),
                line("", "m1", 40, 2.0),
                line("2026-01-01T22:00:00Z", "m1", 50, 4.0),
                line("not a time", "m1", 60, 8.0),
            ]
            .concat(),
        );
        let days: Vec<(&str, &str, PyNum, f64)> =
            acc.usage_by_day.iter().map(|(d, m, u)| (d.as_str(), m.as_str(), u.input_tokens, u.cost)).collect();
        assert_eq!(
            days,
            [
                ("2026-01-01", "m1", PyNum::Int(60), 4.5),
                ("2026-01-02", "m1", PyNum::Int(20), 0.25),
                ("2026-01-01", "m2", PyNum::Int(30), 1.0),
                ("", "m1", PyNum::Int(100), 10.0),
            ]
        );
        for (model, usage) in &acc.models_usage {
            let of_days = acc.usage_by_day.iter().filter(|(_, m, _)| m == model);
            assert_eq!(of_days.map(|(.., u)| u.cost).sum::<f64>(), usage.cost, "{model}");
        }
    }

    /// Values as gptme 0.35.1 sums them (these answers are its own, over the same lines): floats
    /// and `true` added as Python adds them, and a value that is not a number ending the line's
    /// sums where Python's TypeError would, what was added before kept.
    #[test]
    fn sums_are_what_python_makes_of_the_values() {
        // The lines' accumulator, and its sums as gptme writes them: total cost, the three token
        // totals, `models_usage`.
        let sums = |lines: &[&str]| {
            let acc = full(&lines.iter().map(|l| format!("{l}\n")).collect::<String>());
            let totals = [acc.total_input_tokens, acc.total_output_tokens, acc.total_cache_read_tokens];
            let rendered = (acc.total_cost, totals.map(|t| t.to_string()), super::super::item::models_usage_json(&acc));
            (acc, rendered)
        };
        let want = |cost: f64, totals: [&str; 3], usage: &str| (cost, totals.map(String::from), usage.to_owned());

        let (acc, rendered) = sums(&[
            r#"{"role": "assistant", "content": "a", "metadata": {"model": "m1", "usage": {"input_tokens": 10.5, "output_tokens": 5.0, "cache_read_tokens": 1e3}, "cost": 0.5}}"#,
            r#"{"role": "assistant", "content": "b", "metadata": {"model": "m1", "usage": {"input_tokens": 3, "output_tokens": true, "cache_creation_tokens": 2.25}, "cost": 1}}"#,
        ]);
        let usage = r#"{"m1":{"cache_read_tokens":1000.0,"cost":1.5,"input_tokens":1015.75,"output_tokens":6.0}}"#;
        assert_eq!(rendered, want(1.5, ["1015.75", "6.0", "1000.0"], usage));
        // A state holding float sums reads back as it was.
        let stored = serde_json::to_string(&acc).unwrap();
        assert_eq!(serde_json::from_str::<Accumulator>(&stored).unwrap(), acc);

        // The first line: the model only. The second: its cost too. The third: its input too,
        // and no entry of its own.
        let (acc, rendered) = sums(&[
            r#"{"role": "assistant", "content": "a", "metadata": {"model": "m1", "usage": {"input_tokens": 10, "output_tokens": 5}, "cost": "x"}}"#,
            r#"{"role": "assistant", "content": "b", "metadata": {"model": "m2", "usage": {"input_tokens": "7", "output_tokens": 3}, "cost": 1}}"#,
            r#"{"role": "assistant", "content": "c", "metadata": {"model": "m3", "usage": {"input_tokens": 4, "output_tokens": [2]}}}"#,
        ]);
        assert_eq!(rendered, want(1.0, ["4", "0", "0"], "{}"));
        assert_eq!((acc.model.as_deref(), acc.problems.bad_fields), (Some("m3"), 3));

        // Float sums past the largest float, and to NaN, as gptme's (each line counted).
        let (acc, rendered) = sums(&[
            r#"{"metadata": {"model": "m1", "usage": {"input_tokens": 1e308, "cache_read_tokens": 1e308, "output_tokens": -1e308}}}"#,
            r#"{"metadata": {"model": "m1", "usage": {"input_tokens": -1e308, "cache_creation_tokens": -1e308, "output_tokens": -1e308}}}"#,
        ]);
        let usage = r#"{"m1":{"cache_read_tokens":1e+308,"cost":0.0,"input_tokens":NaN,"output_tokens":-Infinity}}"#;
        assert_eq!(rendered, want(0.0, ["NaN", "-Infinity", "1e+308"], usage));
        assert_eq!(acc.problems.implausible_values, 2);

        // A negative cost is counted as implausible though the line's sums end after it.
        let (acc, _) = sums(&[r#"{"metadata": {"cost": -1, "usage": {"input_tokens": "x"}}}"#]);
        assert_eq!((acc.total_cost, acc.problems.implausible_values), (-1.0, 1));
    }

    /// gptme reads its preview's line as `json.loads(bytes)` does: an encoded surrogate is the
    /// lone surrogate (`surrogatepass`), not three U+FFFD.
    #[test]
    fn an_encoded_surrogate_previews_as_python_decodes_it() {
        let line = b"{\"role\": \"user\", \"content\": \"x\xed\xa0\x80y\", \"metadata\": {\"cost\": 0.5}}";
        let mut acc = Accumulator::default();
        acc.feed(line, 0);
        acc.settle(|_, _| Some(line.to_vec()));
        assert_eq!(acc.last_message.unwrap().preview_json, r#""x\ud800y""#);
        assert_eq!((acc.total_cost, acc.problems.invalid_utf8_lines), (0.5, 1));
    }

    #[test]
    fn preview_comes_from_the_last_parsed_user_or_assistant_line() {
        let acc = full("{\"role\": \"assistant\", \"content\": \"answer\"}\n{\"role\": \"system\", \"content\": \"\\\"user\\\"\"}\n{\"role\": \"user\", \"content\": \"cut");
        assert_eq!(acc.last_message.unwrap().preview, "answer");
        assert_eq!(acc.messages, 3);
        assert_eq!(acc.problems.bad_lines, 1);
    }
}
