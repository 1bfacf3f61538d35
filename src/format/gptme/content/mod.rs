//! What conversations say: the messages of one log whose content holds a text, tested as
//! gptme's `chats search` tests them (`query.lower() in content.lower()`), or several texts,
//! each tested so.
//!
//! Most lines and most contents are told without parsing or decoding them: `texts` holds
//! what is sought and tests a content for it, as written where it can; `raw` is what a line's
//! bytes, and a string's, tell as they are written.

use std::io;
use std::path::Path;

use super::accumulator::{parts_as_read, plainly_one_object, read_as_message};
use super::line::{Line, Timestamp};
use crate::json::RawStr;
use crate::scan::{self, LineSink};

mod raw;
mod texts;

pub use texts::{InRuns, Matching, Sought, Texts, TextsError};

/// How much of a matching line of content a match shows, in characters, unless asked for more
/// (`Shown::chars`: `search` on a wide terminal).
pub const EXCERPT_CHARS: usize = 100;

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
    /// Up to as many lines of the content before and after it as asked (`-C`), each cut after
    /// as many characters as the excerpt; left out when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub before: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

/// How much of a log's matches to keep.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shown {
    /// The first this many matching messages.
    pub matches: usize,
    /// Of each, this many lines of its content before the line shown,
    pub before: usize,
    /// and this many after it.
    pub after: usize,
    /// Each of those lines cut to this many characters ([`EXCERPT_CHARS`] at the least).
    pub chars: usize,
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
/// parses, as everywhere else. Keeps the first matches, as `shown` says. A log that is no regular file
/// (a directory, a FIFO: the index counts it as a problem) holds no messages.
pub fn search_log(
    path: &Path,
    texts: &Texts,
    roles: Roles<'_>,
    shown: Shown,
    buf: &mut Vec<u8>,
) -> io::Result<LogMatches> {
    let file = crate::filesystem::open_to_read(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(LogMatches::default());
    }
    let size = meta.len();
    let file = &file;
    let mut sink = Sink { texts, roles, shown, lines: 0, found: LogMatches::default() };
    let scanned = scan::scan(file, 0..size, 0, &mut sink, buf, false)?;
    if !scanned.tail.is_empty() && !scanned.tail_oversized {
        sink.line(&scanned.tail, scanned.offset);
    }
    Ok(sink.found)
}

struct Sink<'n> {
    texts: &'n Texts,
    roles: Roles<'n>,
    shown: Shown,
    lines: u64,
    found: LogMatches,
}

impl LineSink for Sink<'_> {
    fn line(&mut self, bytes: &[u8], _offset: u64) {
        self.lines += 1;
        if !self.texts.byte_test.iter().all(|any| any.iter().any(|needle| needle.may_be_in(bytes))) {
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
        // Decoded only when the string as written cannot tell, or for a match to show.
        let mut decoded = None;
        let said = self.texts.all_said_in_raw(content.bytes);
        if !said.unwrap_or_else(|| self.texts.all_said_in(decoded.insert(content.decode_lossy()))) {
            return;
        }
        self.found.count += 1;
        if self.found.shown.len() < self.shown.matches {
            let content = decoded.unwrap_or_else(|| content.decode_lossy());
            let (excerpt, before, after) = excerpt(&content, self.texts, self.shown);
            self.found.shown.push(Match {
                line: self.lines,
                role: role.decode_lossy(),
                timestamp: match line.timestamp {
                    Timestamp::Text(t) => Some(t.decode_lossy()),
                    _ => None,
                },
                excerpt,
                before,
                after,
            });
        }
    }
}

/// The line of `content` that says every text, else the first that says one, else (a text
/// holding a newline) the content, cut to `shown.chars` around the first text in it; and up to
/// `shown.before` lines before it and `shown.after` after it, each cut after as many characters.
fn excerpt(content: &str, texts: &Texts, shown: Shown) -> (String, Vec<String>, Vec<String>) {
    // Lines end at `\n` or `\r\n`, whose `\r` is no part of what is shown.
    let lines: Vec<&str> = content.lines().collect();
    // More context than there are lines is all of them: the sums below cannot overflow.
    let (before, after) = (shown.before.min(lines.len()), shown.after.min(lines.len()));
    let chars = shown.chars.max(EXCERPT_CHARS);
    let at = lines.iter().position(|l| texts.all_said_in(l));
    let Some(at) = at.or_else(|| lines.iter().position(|l| texts.any_said_in(l))) else {
        return (cut_around(content, Some(texts), chars), Vec::new(), Vec::new());
    };
    let cut = |lines: &[&str]| lines.iter().map(|l| cut_around(l, None, chars)).collect();
    (
        cut_around(lines[at], Some(texts), chars),
        cut(&lines[at.saturating_sub(before)..at]),
        cut(&lines[at + 1..(at + 1 + after).min(lines.len())]),
    )
}

/// `line` cut to `max` characters around the first of the texts in it (from its start when
/// none is, or none is given).
fn cut_around(line: &str, texts: Option<&Texts>, max: usize) -> String {
    // Counted, not collected: a line may be tens of megabytes.
    let chars = line.chars().count();
    if chars <= max {
        return line.to_owned();
    }
    let at = texts.and_then(|t| t.first_in(line)).map_or(0, |b| line[..b].chars().count());
    let start = at.saturating_sub(max / 3).min(chars - max);
    let end = start + max;
    let byte_at = |char_at: usize| line.char_indices().nth(char_at).map_or(line.len(), |(i, _)| i);
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.push_str(&line[byte_at(start)..byte_at(end)]);
    if end < chars {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests;
