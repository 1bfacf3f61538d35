//! What conversations say: the messages of one log whose content holds a text, tested as
//! gptme's `chats search` tests them (`query.lower() in content.lower()`), or several texts,
//! each tested so.

use std::fs::File;
use std::io;
use std::path::Path;

use super::accumulator::{parts_as_read, plainly_one_object, read_as_message};
use super::line::{Line, Timestamp};
use super::{contains_ascii_lowered, lowered_contains, lowered_contains_word, py_lower, stands_alone, starts_in};
use crate::json::RawStr;
use crate::scan::{self, LineSink};

/// How much of a matching line of content a match shows, in characters.
const EXCERPT_CHARS: usize = 100;

/// Which messages a search tests, by their role.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Roles<'a> {
    /// All but system messages, as gptme's `chats search` by default.
    #[default]
    NotSystem,
    /// System messages too (its `system=True`).
    All,
    /// Only the messages of this role.
    Only(&'a str),
}

impl<'a> Roles<'a> {
    /// As `search` and `/api/v2/search` ask: `--role ROLE`, else `--system` for all of them.
    pub fn asked(role: Option<&'a str>, system: bool) -> Roles<'a> {
        match (role, system) {
            (Some(role), _) => Roles::Only(role),
            (None, true) => Roles::All,
            (None, false) => Roles::NotSystem,
        }
    }

    fn take(&self, role: RawStr<'_>) -> bool {
        match self {
            Roles::NotSystem => !role.is("system"),
            Roles::All => true,
            Roles::Only(only) => role.is(only),
        }
    }
}

/// One message whose content holds the text.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Match {
    /// The log's line the message is on, from 1 (`sed -n Np` prints it).
    pub line: u64,
    pub role: String,
    /// As the message has it; None when it has none.
    pub timestamp: Option<String>,
    /// The line of the content that says the texts (the first saying them all, else the first
    /// saying one), cut around the first that occurs in it (`…` where cut).
    pub excerpt: String,
}

/// What a message must say: every one of the texts, lowered (not stripped), anywhere in its
/// content, or with `words` each standing as a word (no character of a word touching it).
#[derive(Debug, Clone, Copy)]
pub struct Texts<'a> {
    pub lowered: &'a [String],
    pub words: bool,
}

impl Texts<'_> {
    /// Whether `text` says `needle` (one of them) as asked.
    fn say(&self, text: &str, needle: &str) -> bool {
        if self.words {
            lowered_contains_word(text, needle)
        } else {
            lowered_contains(text, needle)
        }
    }

    fn all_said_in(&self, text: &str) -> bool {
        self.lowered.iter().all(|n| self.say(text, n))
    }

    /// Where `needle` is first said as asked in `lowered`, a lowered text.
    fn first_in(&self, lowered: &str, needle: &str) -> Option<usize> {
        starts_in(lowered, needle).find(|&at| !self.words || stands_alone(lowered, at, at + needle.len()))
    }
}

/// The messages of a log that hold the texts.
#[derive(Debug, Default)]
pub struct LogMatches {
    /// How many messages hold them.
    pub count: usize,
    /// The first of them, as many as asked for.
    pub shown: Vec<Match>,
}

/// Reads the log and tests each message that gptme's log reader takes: a message matches when
/// it says every one of `texts` (one text, anywhere, is gptme's test). `roles` says which
/// messages count (gptme leaves system ones out). A half-written last line counts when it
/// parses, as everywhere else. Keeps the first `keep` matches. A log that is no regular file
/// (a directory, a FIFO: the index counts it as a problem) holds no messages.
pub fn search_log(
    path: &Path,
    texts: Texts<'_>,
    roles: Roles<'_>,
    keep: usize,
    buf: &mut Vec<u8>,
) -> io::Result<LogMatches> {
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking: opening a FIFO must not wait for a writer.
    let file = File::options().read(true).custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32).open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(LogMatches::default());
    }
    let size = meta.len();
    let file = &file;
    let mut plain_needles: Vec<&str> = texts.lowered.iter().map(String::as_str).filter(|n| plain(n)).collect();
    // The longest first: likely the rarest, so the first to rule a line out.
    plain_needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    let mut sink = Sink { texts, roles, keep, plain_needles, lines: 0, found: LogMatches::default() };
    let scanned = scan::scan(file, 0..size, 0, &mut sink, buf, false)?;
    if !scanned.tail.is_empty() && !scanned.tail_oversized {
        sink.line(&scanned.tail, scanned.offset);
    }
    Ok(sink.found)
}

struct Sink<'n> {
    texts: Texts<'n>,
    roles: Roles<'n>,
    keep: usize,
    /// The needles that may be looked for in a line's raw bytes first (see [`may_hold`]).
    plain_needles: Vec<&'n str>,
    lines: u64,
    found: LogMatches,
}

impl LineSink for Sink<'_> {
    fn line(&mut self, bytes: &[u8], _offset: u64) {
        self.lines += 1;
        if !self.plain_needles.iter().all(|needle| may_hold(bytes, needle)) {
            return;
        }
        // Read as gptme's log reader reads it: usually the line as it is; a line with a bare
        // `\r`, bad UTF-8 or other whitespace at its ends, its way.
        if plainly_one_object(bytes) {
            if let Ok(line) = Line::parse(bytes) {
                return self.test(&line);
            }
        }
        parts_as_read(bytes, |line| {
            self.test(line);
            None::<()>
        });
    }

    fn oversized(&mut self) {
        self.lines += 1;
    }
}

impl Sink<'_> {
    /// Counts the line, and keeps it while there is room, if it is a message that says them all.
    fn test(&mut self, line: &Line<'_>) {
        let (Some(role), Some(content)) = (line.role, line.content) else { return };
        if !read_as_message(line) || !self.roles.take(role) {
            return;
        }
        let content = content.decode_lossy();
        if !self.texts.all_said_in(&content) {
            return;
        }
        self.found.count += 1;
        if self.found.shown.len() < self.keep {
            self.found.shown.push(Match {
                line: self.lines,
                role: role.decode_lossy(),
                timestamp: match line.timestamp {
                    Timestamp::Text(t) => Some(t.decode_lossy()),
                    _ => None,
                },
                excerpt: excerpt(&content, self.texts),
            });
        }
    }
}

/// Whether a needle can be looked for in a line's raw bytes: ASCII, and none of what JSON
/// writes escaped (a quote, a backslash, a control character) nor `/` (which it may).
fn plain(needle: &str) -> bool {
    needle.bytes().all(|b| b.is_ascii() && !b.is_ascii_control() && !matches!(b, b'"' | b'\\' | b'/'))
}

/// False only when no string in the line can hold the (plain) needle once decoded and lowered.
/// Where its bytes as written do not hold it, no string does unless a character lowers to ASCII
/// (U+0130, U+212A) or an escape decodes to an ASCII one (JSON's escapes of other characters
/// decode to none a plain needle holds). gptme writes ASCII (Python's `json.dumps`), with every
/// other character as `\uXXXX`: most lines are tested on their bytes alone.
fn may_hold(line: &[u8], needle: &str) -> bool {
    if contains_ascii_lowered(line, needle.as_bytes()) || !line.is_ascii() {
        return true;
    }
    // Every `\u` escape is among these (and a `\\u` that is none, read as one, at worst
    // sends the line to be parsed).
    memchr::memmem::find_iter(line, b"\\u").any(|at| {
        let hex = line.get(at + 2..at + 6).and_then(|h| std::str::from_utf8(h).ok());
        hex.and_then(|h| u32::from_str_radix(h, 16).ok()).is_none_or(|cp| cp < 0x80 || cp == 0x130 || cp == 0x212A)
    })
}

/// The line of `content` that says every text, else the first that says one, else (a text
/// holding a newline) the content, cut to [`EXCERPT_CHARS`] around the first text in it.
fn excerpt(content: &str, texts: Texts<'_>) -> String {
    let line = content.split('\n').find(|l| texts.all_said_in(l));
    let line = line.or_else(|| content.split('\n').find(|l| texts.lowered.iter().any(|n| texts.say(l, n))));
    let line = line.unwrap_or(content);
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= EXCERPT_CHARS {
        return line.to_owned();
    }
    // Where the first match starts, in characters (lowering keeps the count but for a few
    // letters).
    let lowered = py_lower(line);
    let first = texts.lowered.iter().filter_map(|n| texts.first_in(&lowered, n)).min();
    let at = first.map_or(0, |b| lowered[..b].chars().count()).min(chars.len());
    let start = at.saturating_sub(EXCERPT_CHARS / 3).min(chars.len() - EXCERPT_CHARS);
    let end = start + EXCERPT_CHARS;
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.extend(&chars[start..end]);
    if end < chars.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::Rng;

    fn search(log: impl AsRef<[u8]>, needle: &str, roles: Roles<'_>) -> LogMatches {
        search_all(log, &[needle], roles)
    }

    fn search_all(log: impl AsRef<[u8]>, needles: &[&str], roles: Roles<'_>) -> LogMatches {
        search_as(log, needles, false, roles)
    }

    fn search_as(log: impl AsRef<[u8]>, needles: &[&str], words: bool, roles: Roles<'_>) -> LogMatches {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conversation.jsonl");
        std::fs::write(&path, log).unwrap();
        let needles: Vec<String> = needles.iter().map(|n| n.to_string()).collect();
        search_log(&path, Texts { lowered: &needles, words }, roles, 10, &mut Vec::new()).unwrap()
    }

    /// As words: where no character of a word (a letter of any script, a combining accent, a
    /// digit, `_`) touches the text; the excerpt is cut around such a place.
    #[test]
    fn a_text_as_a_word() {
        let long = format!("going {} go there", "x ".repeat(200));
        let log = [
            r#"{"role": "user", "content": "going, ago"}"#.to_owned(),
            r#"{"role": "user", "content": "let's go_ then GO!"}"#.to_owned(),
            r#"{"role": "user", "content": "caf\u00e9go"}"#.to_owned(),
            r#"{"role": "user", "content": "go\u0301"}"#.to_owned(),
            format!(r#"{{"role": "user", "content": "{long}"}}"#),
            r#"{"role": "user", "content": "\u212aelvin, kelvins"}"#.to_owned(),
        ]
        .join("\n");
        let found = search_as(&log, &["go"], true, Roles::NotSystem);
        assert_eq!(found.shown.iter().map(|m| m.line).collect::<Vec<_>>(), [2, 5]);
        assert!(found.shown[1].excerpt.contains(" go there"), "{}", found.shown[1].excerpt);
        assert_eq!(search_as(&log, &["go"], false, Roles::NotSystem).count, 5);
        assert_eq!(search_as(&log, &["kelvin"], true, Roles::NotSystem).count, 1);
        assert_eq!(search_as(&log, &["kelvin", "go"], true, Roles::NotSystem).count, 0);
    }

    #[test]
    fn finds_messages_as_gptme_tests_them() {
        let log = [
            r#"{"role": "system", "content": "You are gptme. Parser rules.", "timestamp": "2026-01-01T10:00:00"}"#,
            r#"{"role": "user", "content": "Fix the PARSER\nplease", "timestamp": "2026-01-01T10:00:01"}"#,
            r#"{"role": "assistant", "content": "caf\u00e9 \u212aelvin pars\u0065r", "timestamp": "2026-01-01T10:00:02"}"#,
            r#"{"role": "user", "content": "parser", "timestamp": 5}"#, // gptme's reader rejects it
            r#"not json parser"#,
            r#"{"role": "user", "content": "no match here"}"#,
            r#"{"role": "assistant", "content": "the parser, half-written"}"#, // no newline: counts
        ]
        .join("\n");
        let found = search(&log, "parser", Roles::NotSystem);
        assert_eq!(found.count, 3);
        let lines: Vec<(u64, &str)> = found.shown.iter().map(|m| (m.line, m.role.as_str())).collect();
        assert_eq!(lines, [(2, "user"), (3, "assistant"), (7, "assistant")]);
        assert_eq!(found.shown[0].excerpt, "Fix the PARSER");
        assert_eq!(found.shown[0].timestamp.as_deref(), Some("2026-01-01T10:00:01"));
        assert_eq!(found.shown[1].excerpt, "café \u{212A}elvin parser");
        assert_eq!(found.shown[2].timestamp, None);
        // System messages only when asked; the Kelvin sign lowers to an ASCII k.
        assert_eq!(search(&log, "parser", Roles::All).count, 4);
        assert_eq!(search(&log, "parser", Roles::Only("system")).count, 1);
        assert_eq!(search(&log, "parser", Roles::Only("assistant")).count, 2);
        assert_eq!(search(&log, "kelvin", Roles::NotSystem).count, 1);
        assert_eq!(search(&log, "café", Roles::NotSystem).count, 1);
    }

    /// Lines as gptme's log reader reads them: bad UTF-8 as U+FFFD, a bare `\r` ending a line,
    /// Python's whitespace stripped, a byte-order mark refused, a timestamp it cannot read.
    #[test]
    fn reads_lines_as_gptmes_log_reader_does() {
        let log = [
            &b"{\"role\": \"user\", \"content\": \"bad \xff byte, parser\"}"[..],
            b"{\"role\": \"user\", \"content\": \"one parser\"}\r{\"role\": \"assistant\", \"content\": \"two parsers\"}",
            b"\x1c{\"role\": \"user\", \"content\": \"parser after a separator\"}\x1c",
            b"\xef\xbb\xbf{\"role\": \"user\", \"content\": \"parser after a BOM\"}",
            b"{\"role\": \"user\", \"content\": \"parser\", \"timestamp\": \"not a date\"}",
            b"{\"role\": \"user\", \"content\": \"parser\", \"timestamp\": \"2026-01-01T10:00:00+02:00\"}",
        ]
        .join(&b"\n"[..]);
        let found = search(&log, "parser", Roles::NotSystem);
        let lines: Vec<(u64, &str)> = found.shown.iter().map(|m| (m.line, m.excerpt.as_str())).collect();
        assert_eq!(
            lines,
            [
                (1, "bad \u{FFFD} byte, parser"),
                (2, "one parser"),
                (2, "two parsers"),
                (3, "parser after a separator"),
                (6, "parser")
            ]
        );
    }

    /// Several texts: a message matches when it says them all, wherever in its content; the
    /// excerpt is the line that says them all, if one does.
    #[test]
    fn a_message_says_every_text() {
        let log = [
            r#"{"role": "user", "content": "the WAL of sqlite"}"#,
            r#"{"role": "user", "content": "sqlite alone"}"#,
            r#"{"role": "assistant", "content": "first sqlite\nthen the wal\nsqlite's wal \u00e9"}"#,
            r#"{"role": "assistant", "content": "wal, then caf\u00e9"}"#,
        ]
        .join("\n");
        let found = search_all(&log, &["sqlite", "wal"], Roles::NotSystem);
        let lines: Vec<(u64, &str)> = found.shown.iter().map(|m| (m.line, m.excerpt.as_str())).collect();
        assert_eq!(lines, [(1, "the WAL of sqlite"), (3, "sqlite's wal é")]);
        // A text that cannot be tested on raw bytes (`é` is escaped in the log) beside one that can.
        let found = search_all(&log, &["wal", "é"], Roles::NotSystem);
        assert_eq!(found.shown.iter().map(|m| m.line).collect::<Vec<_>>(), [3, 4]);
        // No line says both: the first that says one.
        let found = search_all(&log, &["first", "then"], Roles::NotSystem);
        assert_eq!(found.shown.iter().map(|m| m.excerpt.as_str()).collect::<Vec<_>>(), ["first sqlite"]);
        assert_eq!(search_all(&log, &["sqlite", "wal", "zebra"], Roles::NotSystem).count, 0);
    }

    /// A text that holds a newline is found across the content's lines, and shown there.
    #[test]
    fn a_text_across_lines_is_shown() {
        let content = format!("{}\\nthe end\\nof it{}", "a".repeat(200), "b".repeat(200));
        let log = format!("{{\"role\": \"user\", \"content\": \"{content}\"}}\n");
        let found = search(&log, "end\nof", Roles::NotSystem);
        assert_eq!(found.count, 1);
        let excerpt = &found.shown[0].excerpt;
        assert!(excerpt.contains("the end\nof it"), "{excerpt:?}");
        assert_eq!(excerpt.chars().count(), EXCERPT_CHARS + 2);
    }

    #[test]
    fn a_long_line_is_cut_around_the_match() {
        let content = format!("{}needle{}", "a".repeat(500), "b".repeat(500));
        let log = format!("{{\"role\": \"user\", \"content\": \"{content}\"}}\n");
        let excerpt = &search(&log, "needle", Roles::NotSystem).shown[0].excerpt;
        assert!(excerpt.starts_with('…') && excerpt.ends_with('…') && excerpt.contains("needle"), "{excerpt}");
        assert_eq!(excerpt.chars().count(), EXCERPT_CHARS + 2);
    }

    /// Random logs searched for one to three texts count exactly the messages a plain reader
    /// counts (each line parsed whole, its content lowered, every text in it): the byte test,
    /// its order and the texts it cannot take lose and add nothing.
    #[test]
    fn random_logs_count_as_a_plain_reader_counts() {
        let pieces =
            ["sqlite", "SQLite", "wal", "W", "a", "\\n", "\\u00e9", "é", "\\u212a", "\u{212A}", "\\\"", " ", "x"];
        let texts = ["sqlite", "wal", "a", "é", "k", "\"", "e wal", "x x", "q"];
        let roles = ["user", "assistant", "system"];
        let mut rng = Rng(11);
        for _ in 0..2_000 {
            let lines: Vec<String> = (0..rng.below(6))
                .map(|_| {
                    let content: String = (0..rng.below(10)).map(|_| pieces[rng.index(pieces.len())]).collect();
                    format!(r#"{{"role": "{}", "content": "{content}"}}"#, roles[rng.index(roles.len())])
                })
                .collect();
            let needles: Vec<&str> = (0..1 + rng.below(3)).map(|_| texts[rng.index(texts.len())]).collect();
            let expected = lines
                .iter()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .filter(|m| m["role"] != "system")
                .filter(|m| needles.iter().all(|n| py_lower(m["content"].as_str().unwrap()).contains(n)))
                .count();
            let log = lines.join("\n");
            assert_eq!(search_all(&log, &needles, Roles::NotSystem).count, expected, "{needles:?} in {log}");
        }
    }

    /// Testing raw bytes first never loses a match the full test finds.
    #[test]
    fn the_byte_test_loses_no_match() {
        let pieces = [
            "a",
            "A",
            "b",
            "K",
            "k",
            "\\n",
            "\\\\",
            "\\\"",
            "\\/",
            "\\u0041",
            "\\u0061",
            "\\u212a",
            "\\u212A",
            "\\u0130",
            "\\u00e9",
            "\\u00C9",
            "\\ud83d\\ude00",
            " ",
            "ab",
            "\\\\u0061",
            "\u{212A}",
            "İ",
            "é",
        ];
        let needles = ["a", "ab", "k", "b a", "i", "ba"];
        let mut rng = Rng(7);
        for _ in 0..20_000 {
            let content: String = (0..rng.below(8)).map(|_| pieces[rng.index(pieces.len())]).collect();
            let line = format!("{{\"role\": \"user\", \"content\": \"{content}\"}}");
            let Ok(parsed) = Line::parse(line.as_bytes()) else { continue };
            let decoded = parsed.content.unwrap().decode_lossy();
            for needle in needles {
                if decoded.to_lowercase().contains(needle) {
                    assert!(may_hold(line.as_bytes(), needle), "{line} holds {needle:?}");
                }
            }
        }
    }
}
