//! What conversations say: the messages of one log whose content holds a text, tested as
//! gptme's `chats search` tests them (`query.lower() in content.lower()`), or several texts,
//! each tested so.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::Path;
use std::sync::LazyLock;

use regex_automata::meta::Regex;
use regex_syntax::hir::{Hir, Look};

use super::accumulator::{parts_as_read, plainly_one_object, read_as_message};
use super::line::{Line, Timestamp};
use super::{
    ascii_lowered_starts, lowered_find, lowered_from, py_lower, py_lower_char, search_needle, stands_alone,
    AsciiLoweredFinder, Needle, LOWERING_TO_ASCII,
};
use crate::json::{escape_holding, RawStr};
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
    /// Up to as many lines of the content before and after it as asked (`-C`), each cut after
    /// 100 characters; left out when none.
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
    /// Of each, this many lines of its content before and after the line shown.
    pub context: usize,
}

/// What a message must say: every one of several texts, each found in its content as asked.
#[derive(Debug, Default)]
pub struct Texts {
    pub sought: Sought,
    /// What a line's raw bytes are tested for before it is parsed: for each group, one of its
    /// needles (see [`byte_needles`]). Each text is a group of its own, and each pattern's held
    /// texts one; the longest first (likely the rarest, so the first to rule a line out). Made
    /// once for a search: its finders take microseconds to build, and a search reads every log.
    byte_test: Vec<Vec<ByteNeedle>>,
    /// For each lowered text that is not plain, how a string's raw bytes tell whether it
    /// says it (see [`Written`]).
    written: Vec<Option<Written>>,
}

/// How the texts are looked for.
#[derive(Debug)]
pub enum Sought {
    /// gptme's test: each text lowered (not stripped) in the content lowered, anywhere, or with
    /// `words` standing as a word (no character of a word touching it).
    Lowered { lowered: Vec<Needle>, words: bool },
    /// Regular expressions, each to match somewhere in the content: in any case (Unicode's
    /// simple case folding, and I, i, İ and ı alike: see `with_every_i`) unless one says
    /// `(?-i)` or the case is asked for, `^` and `$` at
    /// the ends of its lines (which end at `\n` or `\r\n`). A text to find in its own case is
    /// the pattern of that text.
    Patterns {
        patterns: Vec<Regex>,
        /// For each pattern, how it is told in the runs between a content's escapes.
        in_runs: Vec<InRuns>,
        /// For each pattern that has them, the texts (lowered) one of which each of its
        /// matches holds: a line whose bytes may hold none of them is not parsed.
        held: Vec<Vec<String>>,
    },
}

/// No text: every message says all of none (what a request holds until its texts are read).
impl Default for Sought {
    fn default() -> Sought {
        Sought::Lowered { lowered: Vec::new(), words: false }
    }
}

/// How a pattern is told in the runs between a content's escapes, which the content holds as
/// they are written (see `Texts::all_said_in_raw`).
#[derive(Debug)]
pub enum InRuns {
    /// It has no assertion: a match of it in a run is one in the content.
    Anywhere,
    /// It is `-w`'s bounds around this pattern, which has no assertion: a match of that in a
    /// run is one of the whole where no character of a word is beside it.
    AsWord(Regex),
    /// It has assertions of its own (`^`, `$`, `\b`): told in the decoded content alone.
    Not,
}

/// How each text is looked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Matching {
    /// Only where it stands as a word: no character of a word touching it.
    pub words: bool,
    /// As a regular expression.
    pub regex: bool,
    /// In the case it is typed in, not in any case.
    pub case_sensitive: bool,
}

/// Why texts cannot be searched for.
#[derive(Debug, thiserror::Error)]
pub enum TextsError {
    #[error("a text to search for is blank")]
    Blank,
    #[error("{text:?} is not a regular expression: {why}")]
    NotARegex { text: String, why: String },
    #[error("{text:?} is too large a regular expression: {why}")]
    TooLarge { text: String, why: String },
}

impl Texts {
    /// The texts as typed: one or more, each saying something once Python's whitespace is
    /// stripped (gptme's check), though it is looked for unstripped, as `how` says. A text in
    /// its own case is the pattern that matches it alone, in that case.
    pub fn new(texts: &[String], how: Matching) -> Result<Texts, TextsError> {
        if texts.is_empty() || texts.iter().any(|t| search_needle(t).is_none()) {
            return Err(TextsError::Blank);
        }
        if !how.regex && !how.case_sensitive {
            let lowered = texts.iter().map(|t| Needle::new(py_lower(t))).collect();
            return Ok(Texts::sought(Sought::Lowered { lowered, words: how.words }));
        }
        let mut trees = Vec::new();
        let mut read_trees = Vec::new();
        let mut in_runs = Vec::new();
        // Around a tree, not the text: a text's own `(?x)` comment would swallow a `)`.
        let as_word = |tree: Hir| match how.words {
            false => tree,
            true => Hir::concat(vec![Hir::look(Look::WordStartHalfUnicode), tree, Hir::look(Look::WordEndHalfUnicode)]),
        };
        for text in texts {
            let (read, tree) = pattern(text, how)?;
            let lookless = tree.properties().look_set().is_empty();
            in_runs.push(match (lookless, how.words) {
                (true, false) => InRuns::Anywhere,
                (true, true) => InRuns::AsWord(built(text, &tree)?),
                (false, _) => InRuns::Not,
            });
            trees.push(as_word(tree));
            read_trees.push(as_word(read));
        }
        Ok(Texts::sought(Sought::Patterns {
            held: read_trees.iter().filter_map(match_holds).collect(),
            in_runs,
            patterns: texts.iter().zip(&trees).map(|(text, tree)| built(text, tree)).collect::<Result<_, _>>()?,
        }))
    }

    fn sought(sought: Sought) -> Texts {
        let mut byte_test: Vec<Vec<ByteNeedle>> = match &sought {
            Sought::Lowered { lowered, .. } => lowered.iter().filter_map(|t| byte_needles(t)).collect(),
            Sought::Patterns { held, .. } => held
                .iter()
                .filter_map(|any| any.iter().map(|t| byte_needles(t)).collect::<Option<Vec<_>>>())
                .map(|any| {
                    let mut any: Vec<ByteNeedle> = any.into_iter().flatten().collect();
                    any.sort_by(|a, b| a.key().cmp(&b.key()));
                    any.dedup_by(|a, b| a.key() == b.key());
                    any
                })
                .collect(),
        };
        byte_test.sort_by_key(|any| std::cmp::Reverse(any.iter().map(ByteNeedle::len).min()));
        let written = match &sought {
            Sought::Lowered { lowered, words } => lowered.iter().map(|t| Written::of(t, *words)).collect(),
            _ => Vec::new(),
        };
        Texts { sought, byte_test, written }
    }

    /// Whether `text` says the `i`th text as asked.
    fn says(&self, text: &str, i: usize) -> bool {
        match &self.sought {
            Sought::Lowered { lowered, words } => lowered_find(text, &lowered[i], *words).is_some(),
            Sought::Patterns { patterns, .. } => patterns[i].is_match(text),
        }
    }

    fn len(&self) -> usize {
        match &self.sought {
            Sought::Lowered { lowered, .. } => lowered.len(),
            Sought::Patterns { patterns, .. } => patterns.len(),
        }
    }

    /// Whether a content says every text, told from its JSON string as written, without
    /// decoding it, when that can be: plain texts, in a string whose escapes decode to no
    /// character they hold (see [`held_between_escapes`]); patterns in a string with no escape
    /// (which is what it says), or, when one has no assertion but maybe `-w`'s, matching in a
    /// run between escapes (which the content holds as it is written; see [`InRuns`]). A
    /// pattern that matches in no run may still match across an escape: that is told by
    /// decoding.
    fn all_said_in_raw(&self, raw: &[u8]) -> Option<bool> {
        match &self.sought {
            Sought::Lowered { lowered, words } => {
                // One text surely not said settles it, whatever the others.
                let mut told = Some(true);
                for (i, needle) in lowered.iter().enumerate() {
                    let said = match plain(needle) {
                        true => held_between_escapes(raw, needle.as_bytes(), *words),
                        false => self.written.get(i).and_then(Option::as_ref).and_then(|w| w.in_raw(raw)),
                    };
                    match said {
                        Some(false) => return Some(false),
                        Some(true) => {}
                        None => told = None,
                    }
                }
                told
            }
            Sought::Patterns { patterns, in_runs, .. } => {
                let escaped = memchr::memchr(b'\\', raw).is_some();
                let mut told = Some(true);
                for (pattern, in_runs) in patterns.iter().zip(in_runs) {
                    let said = match (escaped, in_runs) {
                        (false, _) => Some(pattern.is_match(raw)),
                        (true, InRuns::Anywhere) => {
                            between_escapes(raw).any(|run| pattern.is_match(run.bytes)).then_some(true)
                        }
                        (true, InRuns::AsWord(inner)) => between_escapes(raw)
                            .any(|run| {
                                inner.find_iter(run.bytes).any(|m| run.stands_as_word(raw, m.range()) == Some(true))
                            })
                            .then_some(true),
                        (true, InRuns::Not) => None,
                    };
                    match said {
                        Some(false) => return Some(false),
                        Some(true) => {}
                        None => told = None,
                    }
                }
                told
            }
        }
    }

    fn all_said_in(&self, text: &str) -> bool {
        (0..self.len()).all(|i| self.says(text, i))
    }

    fn any_said_in(&self, text: &str) -> bool {
        (0..self.len()).any(|i| self.says(text, i))
    }

    /// Where in `text` the texts are said, as byte ranges in order, those that overlap or
    /// touch joined: what a terminal marks.
    pub fn said_at(&self, text: &str) -> Vec<Range<usize>> {
        let mut found: Vec<Range<usize>> = match &self.sought {
            Sought::Lowered { lowered, words } => text
                .char_indices()
                .filter_map(|(at, _)| {
                    lowered.iter().filter_map(|n| lowered_match_end(text, at, n, *words)).max().map(|end| at..end)
                })
                .collect(),
            Sought::Patterns { patterns, .. } => {
                let mut found: Vec<_> = patterns.iter().flat_map(|p| p.find_iter(text).map(|m| m.range())).collect();
                found.sort_by_key(|r| r.start);
                found
            }
        };
        found.dedup_by(|next, kept| {
            let joins = next.start <= kept.end;
            if joins {
                kept.end = kept.end.max(next.end);
            }
            joins
        });
        found
    }

    /// Where in `text` the first of the texts is first said, in bytes.
    fn first_in(&self, text: &str) -> Option<usize> {
        match &self.sought {
            Sought::Lowered { lowered, words } => lowered.iter().filter_map(|n| lowered_find(text, n, *words)).min(),
            Sought::Patterns { patterns, .. } => patterns.iter().filter_map(|p| p.find(text)).map(|m| m.start()).min(),
        }
    }
}

/// The matcher of a pattern's tree; one too large to build is refused as such.
fn built(text: &str, tree: &Hir) -> Result<Regex, TextsError> {
    Regex::builder().build_from_hir(tree).map_err(|e| {
        let text = text.to_owned();
        match e.size_limit() {
            Some(limit) => TextsError::TooLarge { text, why: format!("over {} MiB compiled", limit >> 20) },
            None => TextsError::NotARegex { text, why: e.to_string() },
        }
    })
}

/// The texts, lowered, one of which every match of `hir` holds, when each is a text the byte
/// test takes: those every match starts with, else those it ends with (`\w+Error` ends with
/// `error`), else those a part of it starts with (`\w+Error: \w+` holds `error: `). In any
/// case, `s` also matches the long s (`ſ`, which Python does not lower), `k` the Kelvin sign
/// and `i` İ and ı (see [`EVERY_I`]): each is taken as its ASCII letter, which [`may_hold`]
/// allows for. Lowering a character that lowers to ASCII does not depend on what is around
/// it, so a content that holds one holds it lowered once lowered.
fn match_holds(hir: &Hir) -> Option<Vec<String>> {
    use regex_syntax::hir::literal::ExtractKind::{Prefix, Suffix};
    use regex_syntax::hir::HirKind;
    if let Some(texts) = held_texts(hir, Prefix).or_else(|| held_texts(hir, Suffix)) {
        return Some(texts);
    }
    // A match holds a match of each part of a sequence: of the parts from each on, the texts
    // their matches start with. The longest shortest text is likely the rarest, then the
    // fewest texts the fastest looked for.
    let mut whole = hir;
    while let HirKind::Capture(c) = whole.kind() {
        whole = &c.sub;
    }
    let HirKind::Concat(parts) = whole.kind() else { return None };
    // A text longer than a few parts (each letter is one, in any case) is not needed.
    const PARTS: usize = 16;
    (1..parts.len())
        .filter_map(|i| held_texts(&Hir::concat(parts[i..parts.len().min(i + PARTS)].to_vec()), Prefix))
        .max_by_key(|texts| (texts.iter().map(String::len).min(), std::cmp::Reverse(texts.len())))
}

/// The texts, lowered, one of which every match of `hir` starts with (or ends with), when the
/// literal extractor finds few enough and each is a text the byte test takes; several that
/// share a start (an end) long enough to be rare are that start alone, looked for faster.
fn held_texts(hir: &Hir, kind: regex_syntax::hir::literal::ExtractKind) -> Option<Vec<String>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let at_end = matches!(kind, ExtractKind::Suffix);
    let seq = Extractor::new().kind(kind).extract(hir);
    let folded = |l: &str| py_lower(&l.replace('\u{17F}', "s").replace(['\u{130}', '\u{131}'], "i"));
    let literals = seq.literals()?.iter().map(|l| std::str::from_utf8(l.as_bytes()).ok().map(folded));
    let mut texts: Vec<String> = literals.collect::<Option<_>>()?;
    // None (a pattern that matches nothing) leaves the test to the pattern.
    if texts.is_empty() || texts.iter().any(String::is_empty) {
        return None;
    }
    texts.sort();
    texts.dedup();
    let bytes = |t: &String| -> Vec<u8> {
        match at_end {
            true => t.bytes().rev().collect(),
            false => t.bytes().collect(),
        }
    };
    let first = bytes(&texts[0]);
    let mut len = texts.iter().map(|t| bytes(t).iter().zip(&first).take_while(|(a, b)| a == b).count()).min()?;
    // Whole characters: where the shared bytes end in one, they end in it in every text.
    while !texts[0].is_char_boundary(if at_end { texts[0].len() - len } else { len }) {
        len -= 1;
    }
    Some(match texts.len() > 1 && len >= 3 {
        true if at_end => vec![texts[0][texts[0].len() - len..].to_owned()],
        true => vec![texts[0][..len].to_owned()],
        false => texts,
    })
}

/// Where `needle` (lowered), said in `text` from `at`, ends in `text`; None when it is not
/// said there (with `words`, not as a word). Lowering keeps a character's length in all but a
/// few letters: what matched is measured.
fn lowered_match_end(text: &str, at: usize, needle: &str, words: bool) -> Option<usize> {
    let mut lowered = String::new();
    for (i, c) in text[at..].char_indices() {
        lowered.extend(py_lower_char(c));
        if lowered.starts_with(needle) {
            let end = at + i + c.len_utf8();
            return (!words || stands_alone(text, at, end)).then_some(end);
        }
        if !needle.starts_with(&lowered) {
            return None;
        }
    }
    None
}

/// The tree of a regular expression as `search --regex` reads one, or without `regex` of the
/// one that matches the text itself: as read, and as it is matched (in any case, [`with_every_i`]).
/// With `words` it is to match only where no character of a word touches the match (as
/// ripgrep's `-w`, which tests the same on each side): the caller puts those bounds around it.
/// The byte test takes its texts from the tree as read, whose classes are fewer, with İ and ı
/// taken as `i` (see [`match_holds`]).
fn pattern(text: &str, how: Matching) -> Result<(Hir, Hir), TextsError> {
    let not_one = |why: String| TextsError::NotARegex { text: text.to_owned(), why };
    let mut parser =
        regex_syntax::ParserBuilder::new().case_insensitive(!how.case_sensitive).multi_line(true).crlf(true).build();
    let escaped;
    let text_read = match how.regex {
        true => text,
        false => {
            escaped = regex_syntax::escape(text);
            &escaped
        }
    };
    let tree = parser.parse(text_read).map_err(|e| {
        not_one(match e {
            regex_syntax::Error::Parse(e) => e.kind().to_string(),
            regex_syntax::Error::Translate(e) => e.kind().to_string(),
            e => e.to_string(),
        })
    })?;
    let matched = match !how.case_sensitive && !turns_case_off(text_read) {
        true => with_every_i(tree.clone()),
        false => tree.clone(),
    };
    Ok((tree, matched))
}

/// The letters that Python's `re` takes for one another in any case, and Unicode's simple case
/// folding (the `regex` crate's) does not: I, i, İ and ı (Python reads each character's
/// simple lowering, which takes İ to i, and adds ı, whose capital is I).
const EVERY_I: [char; 4] = ['I', 'i', '\u{130}', '\u{131}'];

/// `tree`, read in any case throughout, with each of [`EVERY_I`] matching where any does, as in
/// Python's `re` with `IGNORECASE` (a plain text, lowered as Python lowers, finds only an `i`
/// in İ, which lowers to i and a combining dot): an İ or ı said alone is any of them, and a
/// class that holds some of them holds all four, unless it is one that leaves some out
/// (`[^i]`, `[^a-z]`, which then leave out all four). Which kind a class is, its folding does
/// not keep: one that leaves characters out holds most of Unicode, one that lists them
/// (`[h-j]`, `[İ]`) seldom does.
fn with_every_i(tree: Hir) -> Hir {
    use regex_syntax::hir::{Class, ClassUnicode, ClassUnicodeRange, HirKind, Literal};
    let every_i = || ClassUnicode::new(EVERY_I.iter().map(|&c| ClassUnicodeRange::new(c, c)));
    match tree.into_kind() {
        HirKind::Class(Class::Unicode(mut class)) => {
            let holds = |c: char| class.iter().any(|r| (r.start()..=r.end()).contains(&c));
            let held = EVERY_I.iter().filter(|&&c| holds(c)).count();
            let size: u32 = class.iter().map(|r| r.end() as u32 - r.start() as u32 + 1).sum();
            match (held, size > 0x10FFFF / 2) {
                (0 | 4, _) => {}
                (_, true) => class.difference(&every_i()),
                (_, false) => class.union(&every_i()),
            }
            Hir::class(Class::Unicode(class))
        }
        HirKind::Literal(Literal(bytes)) => match std::str::from_utf8(&bytes) {
            Ok(text) if text.contains(['\u{130}', '\u{131}']) => {
                let mut parts = Vec::new();
                let mut run = String::new();
                for c in text.chars() {
                    match c {
                        '\u{130}' | '\u{131}' => {
                            parts.push(Hir::literal(std::mem::take(&mut run).into_bytes()));
                            parts.push(Hir::class(Class::Unicode(every_i())));
                        }
                        _ => run.push(c),
                    }
                }
                parts.push(Hir::literal(run.into_bytes()));
                Hir::concat(parts)
            }
            _ => Hir::literal(bytes),
        },
        HirKind::Repetition(mut r) => {
            r.sub = Box::new(with_every_i(*r.sub));
            Hir::repetition(r)
        }
        HirKind::Capture(mut c) => {
            c.sub = Box::new(with_every_i(*c.sub));
            Hir::capture(c)
        }
        HirKind::Concat(parts) => Hir::concat(parts.into_iter().map(with_every_i).collect()),
        HirKind::Alternation(parts) => Hir::alternation(parts.into_iter().map(with_every_i).collect()),
        HirKind::Empty => Hir::empty(),
        HirKind::Look(look) => Hir::look(look),
        HirKind::Class(class @ Class::Bytes(_)) => Hir::class(class),
    }
}

/// Whether a pattern turns reading in any case off anywhere (`(?-i)`, `(?-i:…)`): then it is
/// read as Unicode's simple case folding reads it, with no more.
fn turns_case_off(pattern: &str) -> bool {
    use regex_syntax::ast::{self, Ast, Flag, GroupKind};
    struct Finder(bool);
    impl ast::Visitor for Finder {
        type Output = bool;
        type Err = ();
        fn finish(self) -> Result<bool, ()> {
            Ok(self.0)
        }
        fn visit_pre(&mut self, ast: &Ast) -> Result<(), ()> {
            let flags = match ast {
                Ast::Flags(set) => Some(&set.flags),
                Ast::Group(group) => match &group.kind {
                    GroupKind::NonCapturing(flags) => Some(flags),
                    _ => None,
                },
                _ => None,
            };
            self.0 |= flags.is_some_and(|f| f.flag_state(Flag::CaseInsensitive) == Some(false));
            Ok(())
        }
    }
    pattern.contains("(?")
        && ast::parse::Parser::new()
            .parse(pattern)
            .map_or(true, |tree| ast::visit(&tree, Finder(false)).unwrap_or(true))
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
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking: opening a FIFO must not wait for a writer.
    let file = File::options().read(true).custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32).open(path)?;
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
            let (excerpt, before, after) = excerpt(&content, self.texts, self.shown.context);
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

/// Whether a needle can be looked for in a line's raw bytes: ASCII, and none of what JSON
/// writes escaped (a quote, a backslash, a control character) nor `/` (which it may).
fn plain(needle: &str) -> bool {
    needle.chars().all(plain_char)
}

fn plain_char(c: char) -> bool {
    c.is_ascii() && !c.is_ascii_control() && !matches!(c, '"' | '\\' | '/')
}

/// What a line's raw bytes are looked for, before it is parsed, for a string in it to hold a
/// text.
#[derive(Debug)]
enum ByteNeedle {
    /// A plain text, as [`may_hold`] looks for one.
    Text(AsciiLoweredFinder),
    /// One way to write a character (see [`Spelling`]).
    Spelling(Spelling),
}

impl ByteNeedle {
    fn may_be_in(&self, line: &[u8]) -> bool {
        match self {
            ByteNeedle::Text(text) => may_hold(line, text),
            ByteNeedle::Spelling(spelling) => spelling.is_in(line),
        }
    }

    fn len(&self) -> usize {
        self.key().1.len()
    }

    /// What it looks for, and how: the same twice is looked for once.
    fn key(&self) -> (bool, &[u8]) {
        match self {
            ByteNeedle::Text(text) => (true, text.needle()),
            ByteNeedle::Spelling(spelling) => (false, &spelling.bytes),
        }
    }
}

/// One way to write a character: its UTF-8, or its escape (`\uXXXX`, lowered; a pair of them
/// past U+FFFF), found as it is but for the case of its hex digits. Found by memmem for a part
/// whose case is fixed, each place checked whole: all of its UTF-8; of an escape of a
/// character below U+1000, its last two hex digits when they are no letters (`48` of `\u0448`:
/// memmem's pick of two bytes of `\u0448` may be those that every Cyrillic letter's escape
/// starts with, `\u04`; the alphabets below U+1000 have a block each, a script above it has
/// many, and its escapes share fewer digits: `70` of `\u6570` is also in a box drawing's
/// `\u2570`), else the longest part before a hex letter, or after one. A scan for its rarest byte stopped at each escape
/// holding that digit, every few bytes in escaped Chinese (`数据` over the bench's prose with
/// Unicode: 65–79 ms so); Teddy is slower than memmem for one text.
#[derive(Debug)]
struct Spelling {
    bytes: Vec<u8>,
    part: memchr::memmem::Finder<'static>,
    part_at: usize,
}

impl Spelling {
    fn new(bytes: Vec<u8>) -> Spelling {
        // JSON's `\u` is lowercase: only hex letters may be written in either case.
        let hex_letter = |b: &u8| matches!(b.to_ascii_lowercase(), b'a'..=b'f');
        let last_digits = bytes.starts_with(b"\\u0") && bytes[bytes.len() - 2..].iter().all(u8::is_ascii_digit);
        let from = if last_digits { bytes.len() - 2 } else { 0 };
        let mut part = from..from;
        let mut start = from;
        for end in from..=bytes.len() {
            if end == bytes.len() || hex_letter(&bytes[end]) {
                if end - start > part.len() {
                    part = start..end;
                }
                start = end + 1;
            }
        }
        Spelling { part: memchr::memmem::Finder::new(&bytes[part.clone()]).into_owned(), part_at: part.start, bytes }
    }

    fn is_in(&self, line: &[u8]) -> bool {
        self.places(line).next().is_some()
    }

    /// Whether it is an escape found by its last two digits.
    fn by_last_digits(&self) -> bool {
        self.bytes[0] == b'\\' && self.part_at == self.bytes.len() - 2
    }

    /// Where it starts in `line`, each place in order. The part's places overlap where it
    /// does (`11` of `\u0111` is at its fourth byte and its fifth), so each is looked for
    /// from just past the last, not past its end.
    fn places<'a>(&'a self, line: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
        let mut from = 0;
        let parts = std::iter::from_fn(move || {
            let at = from + self.part.find(line.get(from..)?)?;
            from = at + 1;
            Some(at)
        });
        parts.filter_map(move |at| {
            let start = at.checked_sub(self.part_at)?;
            line.get(start..start + self.bytes.len())
                .is_some_and(|w| w.eq_ignore_ascii_case(&self.bytes))
                .then_some(start)
        })
    }
}

/// The needles one of which the bytes of a line hold when a string in it, decoded and
/// lowered, holds `text` (lowered): its longest plain part, when that is 3 bytes or more; else
/// the ways to write one of its other characters (see [`fewest_spellings`]), when it has one;
/// else its longest plain part. None: nothing to look for (U+FFFD, which bad UTF-8 reads as,
/// has no way of its own).
fn byte_needles(text: &str) -> Option<Vec<ByteNeedle>> {
    let longest_plain = text.split(|c| !plain_char(c)).max_by_key(|part| part.len()).filter(|part| !part.is_empty());
    let as_text = |part: &str| vec![ByteNeedle::Text(AsciiLoweredFinder::new(part.as_bytes()))];
    if let Some(part) = longest_plain.filter(|part| part.len() >= 3) {
        return Some(as_text(part));
    }
    let spelled = fewest_spellings(text).map(|(_, ways)| ways.into_iter().map(ByteNeedle::Spelling).collect());
    spelled.or_else(|| longest_plain.map(as_text))
}

/// Of `text`'s characters outside ASCII (but U+FFFD), the one whose spellings are fewest (a
/// character of a script without case has two), of those the first whose escapes are found by
/// their last digits, else by the longest part (see [`Spelling`]: `\u043a` is found by `\u043`,
/// which half of the Cyrillic letters start with; a search stops at fewer places); how many
/// characters precede it, and its spellings.
fn fewest_spellings(text: &str) -> Option<(usize, Vec<Spelling>)> {
    let found_by = |ways: &[Spelling]| {
        ways.iter().filter(|w| w.bytes[0] == b'\\').map(|w| (w.by_last_digits(), w.part.needle().len())).min()
    };
    text.chars()
        .enumerate()
        .filter(|&(_, c)| !c.is_ascii() && c != '\u{FFFD}')
        .map(|(before, c)| (before, spellings(c)))
        .min_by_key(|(_, ways)| (ways.len(), std::cmp::Reverse(found_by(ways))))
}

/// Every way a string may write a character whose lowering holds `c` (not ASCII): each such
/// character ([`lowered_from`]) escaped, and in UTF-8. The likeliest first, where a search
/// stops at the first found: `c` as gptme writes it (escaped), then its capitals.
fn spellings(c: char) -> Vec<Spelling> {
    let mut from = lowered_from(c);
    from.sort_by_key(|&x| x != c);
    let ways = from.into_iter().flat_map(|x| [python_escaped(x), x.to_string()]);
    ways.map(|way| Spelling::new(way.into_bytes())).collect()
}

/// How a string's raw bytes tell whether it says a text outside ASCII (lowered), without
/// decoding it.
#[derive(Debug)]
struct Written {
    /// The text as a string may write it whole: in UTF-8, or escaped as gptme (Python's
    /// `json.dumps`) writes it (`caf\u00e9`, `\u7d22\u5f15`), from a place no escape holds.
    /// When each of its characters lowers to itself alone, and its ASCII ones are plain: a
    /// string that holds it so says it, and most that say it hold it so.
    whole: Option<(memchr::memmem::Finder<'static>, memchr::memmem::Finder<'static>)>,
    anchor: Option<RawAnchor>,
}

/// A text found around one of its characters outside ASCII (see [`fewest_spellings`]) in a
/// string's raw bytes: from each place a character that lowers to it is written (in UTF-8 or
/// escaped), back over as many characters as precede it in the text, then the text compared a
/// character at a time, each decoded where it is and lowered (as `anchored_find` compares one
/// decoded). A search for a text in another alphabet (`кошка`) decoded every message holding
/// its letters, most of them; now it decodes a few characters at each place.
///
/// Lowering a character alone lowers it as lowering the string does, but for İ, which lowers to
/// two (`i̇`), and Σ, which lowers by what is around it: only a text holding `i`, U+0307, `σ` or
/// `ς` may be said by them, and such a text is left to decoding. With `words`, the characters
/// just before and after it are read too: a character of a word there is no match.
#[derive(Debug)]
struct RawAnchor {
    text: String,
    words: bool,
    before: usize,
    spellings: Vec<Spelling>,
}

impl Written {
    fn of(text: &str, words: bool) -> Option<Written> {
        let spelled_alone = |c: char| py_lower_char(c).eq([c]) && (!c.is_ascii() || plain_char(c));
        let whole = (!words && !text.is_ascii() && text.chars().all(spelled_alone)).then(|| {
            let escaped: String =
                text.chars().map(|c| if c.is_ascii() { c.to_string() } else { python_escaped(c) }).collect();
            (
                memchr::memmem::Finder::new(text.as_bytes()).into_owned(),
                memchr::memmem::Finder::new(escaped.as_bytes()).into_owned(),
            )
        });
        let by_context = |c: char| matches!(c, 'i' | '\u{307}' | 'σ' | 'ς');
        let anchor = match text.chars().any(by_context) {
            true => None,
            false => fewest_spellings(text).map(|(before, spellings)| RawAnchor {
                text: text.to_owned(),
                words,
                before,
                spellings,
            }),
        };
        (whole.is_some() || anchor.is_some()).then_some(Written { whole, anchor })
    }

    /// Whether a string's raw bytes (validated) hold the text; None when only decoding them
    /// can tell.
    fn in_raw(&self, raw: &[u8]) -> Option<bool> {
        // Written whole is found at once where it is first said; the anchor finds it only after
        // passing over the string for each way of writing its character that it is not in.
        let whole = |at: usize| !inside_escape(raw, at);
        if let Some((utf8, escaped)) = &self.whole {
            if utf8.find_iter(raw).any(whole) || escaped.find_iter(raw).any(whole) {
                return Some(true);
            }
        }
        Some(self.anchor.as_ref()?.is_in(RawStr { bytes: raw }))
    }
}

impl RawAnchor {
    fn is_in(&self, raw: RawStr<'_>) -> bool {
        let bytes = raw.bytes;
        let places = self.spellings.iter().flat_map(|way| way.places(bytes));
        places.filter(|&at| !inside_escape(bytes, at)).any(|at| self.said_from(raw, at))
    }

    /// Whether the text is said around the character at `at`.
    fn said_from(&self, raw: RawStr<'_>, at: usize) -> bool {
        let mut start = at;
        for _ in 0..self.before {
            match raw.char_before(start) {
                Some(before) => start = before,
                None => return false,
            }
        }
        let mut end = start;
        for n in self.text.chars() {
            match raw.char_at(end) {
                Some((c, len)) if py_lower_char(c).eq([n]) => end += len,
                _ => return false,
            }
        }
        let word = |at: Option<usize>| {
            at.and_then(|at| raw.char_at(at)).is_some_and(|(c, _)| regex_syntax::is_word_character(c))
        };
        !self.words || !word(raw.char_before(start)) && !word(Some(end))
    }
}

/// Whether the byte at `at` of a JSON string's raw bytes (validated) is one of an escape's but
/// its first: the `n` of `\n`, a hex digit of `\u00e0`.
fn inside_escape(raw: &[u8], at: usize) -> bool {
    escape_holding(raw, at).is_some_and(|start| start < at)
}

/// A character as Python's `json.dumps` escapes one outside ASCII: `\uXXXX` in lowercase hex,
/// a pair of them past U+FFFF.
fn python_escaped(c: char) -> String {
    let mut units = [0; 2];
    c.encode_utf16(&mut units).iter().map(|u| format!("\\u{u:04x}")).collect()
}

/// Whether a JSON string, given as written (validated: each backslash starts an escape),
/// holds the plain `needle` once decoded and lowered (with `words`, standing as a word); None
/// when that cannot be told without decoding it. A plain needle holds no character an escape
/// stands for, but for a `\uXXXX` of an ASCII character (or of one that lowers to ASCII; see
/// [`escape_may_be_plain`]): without those, and with no such character written as it is, the
/// needle is in the string exactly where it is in a run between its escapes. As a word, the
/// characters around it are then the run's, or, at a run's end, the escape's there. Most
/// contents a search counts need no copy then.
fn held_between_escapes(raw: &[u8], needle: &[u8], words: bool) -> Option<bool> {
    if !raw.is_ascii() && LOWERING_TO_ASCII.iter().any(|c| memchr::memmem::find(raw, c.as_bytes()).is_some()) {
        return None;
    }
    let mut undecided = false;
    for run in between_escapes(raw) {
        for start in ascii_lowered_starts(run.bytes, needle) {
            if !words {
                return Some(true);
            }
            match run.stands_as_word(raw, start..start + needle.len()) {
                Some(true) => return Some(true),
                Some(false) => {}
                None => undecided = true,
            }
        }
        // Such an escape may be part of the needle, said across it.
        undecided |= run.escape_after.is_some_and(|at| raw.get(at + 1) == Some(&b'u') && escape_may_be_plain(raw, at));
    }
    (!undecided).then_some(false)
}

/// A run of a JSON string's raw bytes between its escapes (see [`between_escapes`]).
struct Run<'a> {
    bytes: &'a [u8],
    /// Where the escapes before and after it start in the string; None at its ends.
    escape_before: Option<usize>,
    escape_after: Option<usize>,
}

impl Run<'_> {
    /// Whether `self.bytes[at]` stands as a word in this run's string once decoded (`raw` is
    /// the string as written): no character of a word just before or after it, each read in
    /// the run, or, at the run's ends, from the escape there. None when that escape cannot
    /// tell.
    fn stands_as_word(&self, raw: &[u8], at: Range<usize>) -> Option<bool> {
        let word_before = match at.start {
            0 => self.escape_before.map_or(Some(false), |e| escape_is_word(raw, e)),
            _ => word_before(&self.bytes[..at.start]),
        };
        let word_after = match at.end == self.bytes.len() {
            true => self.escape_after.map_or(Some(false), |e| escape_is_word(raw, e)),
            false => word_after(&self.bytes[at.end..]),
        };
        match (word_before, word_after) {
            (Some(false), Some(false)) => Some(true),
            (Some(true), _) | (_, Some(true)) => Some(false),
            _ => None,
        }
    }
}

/// Whether the character that ends `bytes` (UTF-8) is one of a word; None when no character
/// ends them.
fn word_before(bytes: &[u8]) -> Option<bool> {
    let lead = bytes.iter().rposition(|&b| b & 0xC0 != 0x80)?;
    let c = std::str::from_utf8(&bytes[lead..]).ok()?.chars().next()?;
    Some(regex_syntax::is_word_character(c))
}

/// Whether the character that starts `bytes` (UTF-8) is one of a word; None when no character
/// starts them.
fn word_after(bytes: &[u8]) -> Option<bool> {
    let c = bytes[..bytes.len().min(4)].utf8_chunks().next()?.valid().chars().next()?;
    Some(regex_syntax::is_word_character(c))
}

/// Whether the escape whose backslash is at `at` stands for a character of a word: never a
/// one-letter escape (`\n`, `\"`, …); a `\uXXXX`, by its character; None for half of a
/// surrogate pair, or an escape cut short.
fn escape_is_word(raw: &[u8], at: usize) -> Option<bool> {
    if raw.get(at + 1) != Some(&b'u') {
        return Some(false);
    }
    let hex = std::str::from_utf8(raw.get(at + 2..at + 6)?).ok()?;
    let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
    Some(regex_syntax::is_word_character(c))
}

/// The runs of a JSON string's raw bytes (validated: each backslash starts an escape) between
/// its escapes, in order. An escape is a backslash and one character, or `\uXXXX`; no run
/// splits a character.
fn between_escapes(raw: &[u8]) -> impl Iterator<Item = Run<'_>> {
    let mut from = Some(0);
    let mut escape_before = None;
    std::iter::from_fn(move || {
        let start = from?;
        let escape_after = memchr::memchr(b'\\', &raw[start..]).map(|i| start + i);
        let end = escape_after.unwrap_or(raw.len());
        from = escape_after.map(|at| (at + if raw.get(at + 1) == Some(&b'u') { 6 } else { 2 }).min(raw.len()));
        let run = Run { bytes: &raw[start..end], escape_before, escape_after };
        escape_before = escape_after;
        Some(run)
    })
}

/// False only when no string in the line can hold the (plain) needle once decoded and lowered
/// (or folded, for a pattern in any case). Where its bytes as written do not hold it, no string
/// does unless a character lowers to ASCII (U+0130, U+212A), or folds to it (the long s,
/// U+017F, which Python does not lower), or an escape decodes to a plain one (JSON's escapes
/// of other characters decode to none a plain needle holds). gptme writes ASCII (Python's
/// `json.dumps`), with every other character as `\uXXXX`: most lines are tested on their bytes
/// alone.
fn may_hold(line: &[u8], needle: &AsciiLoweredFinder) -> bool {
    if needle.is_in(line) || !line.is_ascii() {
        return true;
    }
    // Only an escape of U+0000–U+01FF, or the Kelvin sign, may stand for a character the needle
    // holds (see `escape_may_be_plain`): searched for as such, the escapes of other characters
    // (curly quotes, dashes, emoji, box drawing, Chinese) are passed over at the search's
    // speed. A line whose escape is not of four hex digits does not parse. (A `\\u` that is no
    // escape, read as one, at worst sends the line to be parsed.)
    static KELVIN: LazyLock<memchr::memmem::Finder> =
        LazyLock::new(|| memchr::memmem::FinderBuilder::new().build_forward_with_ranker(KelvinRank, b"\\u212"));
    let has_k = needle.needle().iter().any(|b| b.eq_ignore_ascii_case(&b'k'));
    any_low_escape(line, |at| escape_may_be_plain(line, at))
        || has_k && KELVIN.find_iter(line).any(|at| escape_may_be_plain(line, at))
}

/// Whether `may_be` holds of the place of any escape of U+0000–U+01FF in a line (`\u00…`,
/// `\u01…`; while memmem finds them, of any `\u0`, which `may_be` reads the hex of). Each `\u0`
/// is found by memmem, which passes over ASCII prose at its full speed, until escapes of
/// U+0200–U+0FFF come densely: in prose in Cyrillic, Greek, Hebrew, Arabic or Devanagari, whose
/// every letter is such an escape, memmem stopped at each. The rest of such a line is searched
/// by Teddy for `\u00` and `\u01` at once, which looks at every byte more slowly but stops at
/// none of those. (Over the bench's Russian prose, a search for `quokka` took 168–175 ms with
/// memmem alone and 34–35 ms with Teddy alone; over its ASCII prose, 36–42 ms and 52–56 ms,
/// and over its prose with Unicode, whose `\u00a0` and `\u001b` Teddy stops at too, 66–75 and
/// 94–106 ms.)
fn any_low_escape(line: &[u8], may_be: impl Fn(usize) -> bool) -> bool {
    static ANY: LazyLock<memchr::memmem::Finder> = LazyLock::new(|| memchr::memmem::Finder::new(b"\\u0"));
    static LOW: LazyLock<Option<aho_corasick::packed::Searcher>> =
        LazyLock::new(|| aho_corasick::packed::Config::new().builder().extend([b"\\u00", b"\\u01"]).build());
    // Dense: 16 met, one in every 64 bytes or more.
    const MET: usize = 16;
    const SPARSE: usize = 64;
    let mut passable = 0;
    for at in ANY.find_iter(line) {
        if may_be(at) {
            return true;
        }
        if !matches!(line.get(at + 3), Some(b'0' | b'1')) {
            passable += 1;
        }
        if let Some(teddy) = LOW.as_ref().filter(|_| passable >= MET && at < passable * SPARSE) {
            let from = at + 1;
            return teddy.find_iter(&line[from..]).any(|m| may_be(from + m.start()));
        }
    }
    false
}

/// The bytes of the Kelvin sign's escape (`\u212`) to find it by: its `u` and its `1`, where
/// memchr's own ranking (for prose) takes its `2`s, which every escape of a curly quote, a dash,
/// an arrow or a box drawing also has (over the bench's prose with Unicode, on one thread, the
/// walk in [`may_hold`] took 150–190 ms with memchr's ranking, 95–130 ms with this one, and
/// no longer over ASCII prose).
struct KelvinRank;

impl memchr::arch::all::packedpair::HeuristicFrequencyRank for KelvinRank {
    fn rank(&self, byte: u8) -> u8 {
        match byte {
            b'1' => 0,
            b'u' => 1,
            _ => 255,
        }
    }
}

/// Whether the `\uXXXX` escape whose backslash is at `at` may stand for a character a plain
/// needle holds once decoded and lowered (or folded): a plain one ([`plain_char`]), or U+0130,
/// U+0131, U+017F or U+212A, which lower or fold to one (ı is an i to a pattern in any case,
/// see [`EVERY_I`]). Not a control character: a terminal's colour
/// codes (`\u001b`) are escaped so in tool output, and a line holding them need not be parsed.
/// One cut short, or not of four hex digits, may. Read from its bytes: most lines have many
/// escapes, and most stand for other letters.
fn escape_may_be_plain(bytes: &[u8], at: usize) -> bool {
    let Some(hex @ &[_, _, _, _]) = bytes.get(at + 2..at + 6) else { return true };
    let code = hex.iter().try_fold(0, |code, &d| Some(code * 16 + char::from(d).to_digit(16)?));
    let Some(code) = code else { return true };
    char::from_u32(code).is_some_and(plain_char) || matches!(code, 0x130 | 0x131 | 0x17F | 0x212A)
}

/// The line of `content` that says every text, else the first that says one, else (a text
/// holding a newline) the content, cut to [`EXCERPT_CHARS`] around the first text in it; and
/// up to `context` lines before and after it, each cut after as many characters.
fn excerpt(content: &str, texts: &Texts, context: usize) -> (String, Vec<String>, Vec<String>) {
    // Lines end at `\n` or `\r\n`, whose `\r` is no part of what is shown.
    let lines: Vec<&str> = content.lines().collect();
    let at = lines.iter().position(|l| texts.all_said_in(l));
    let Some(at) = at.or_else(|| lines.iter().position(|l| texts.any_said_in(l))) else {
        return (cut_around(content, Some(texts)), Vec::new(), Vec::new());
    };
    let cut = |lines: &[&str]| lines.iter().map(|l| cut_around(l, None)).collect();
    (
        cut_around(lines[at], Some(texts)),
        cut(&lines[at.saturating_sub(context)..at]),
        cut(&lines[at + 1..(at + 1 + context).min(lines.len())]),
    )
}

/// `line` cut to [`EXCERPT_CHARS`] around the first of the texts in it (from its start when
/// none is, or none is given).
fn cut_around(line: &str, texts: Option<&Texts>) -> String {
    // Counted, not collected: a line may be tens of megabytes.
    let chars = line.chars().count();
    if chars <= EXCERPT_CHARS {
        return line.to_owned();
    }
    let at = texts.and_then(|t| t.first_in(line)).map_or(0, |b| line[..b].chars().count());
    let start = at.saturating_sub(EXCERPT_CHARS / 3).min(chars - EXCERPT_CHARS);
    let end = start + EXCERPT_CHARS;
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
mod tests {
    use super::*;
    use crate::test_rng::Rng;

    const REGEX: Matching = Matching { words: false, regex: true, case_sensitive: false };

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
        let texts = Texts::new(&needles, Matching { words, ..Matching::default() }).unwrap();
        search_log(&path, &texts, roles, Shown { matches: 10, context: 0 }, &mut Vec::new()).unwrap()
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

    /// With context, the lines of the content around the one shown, as many as there are up
    /// to the number asked, each cut after as many characters as an excerpt (a line ending in
    /// `\r\n` shown without its `\r`); none around a text that spans lines (the content is
    /// the excerpt).
    #[test]
    fn context_lines_around_the_line_shown() {
        let texts = |t: &str| Texts::new(&[t.to_owned()], Matching::default()).unwrap();
        let long = "y".repeat(300);
        let content = format!("zero\r\none\r\ntwo needle\n{long}\nfour");
        let (shown, before, after) = excerpt(&content, &texts("NEEDLE"), 1);
        assert_eq!(
            (shown.as_str(), before, after),
            ("two needle", vec!["one".to_owned()], vec![format!("{}…", &long[..100])])
        );
        let (_, before, after) = excerpt(&content, &texts("needle"), 5);
        assert_eq!((before, after.len()), (vec!["zero".to_owned(), "one".to_owned()], 2));
        assert_eq!(excerpt(&content, &texts("zero"), 0), ("zero".to_owned(), vec![], vec![]));
        let (shown, before, after) = excerpt(&content, &texts("one\r\ntwo"), 2);
        assert!(shown.starts_with("zero\r\none\r\ntwo") && before.is_empty() && after.is_empty(), "{shown:?}");
        // Kept in JSON only when there are some.
        let found = search(r#"{"role": "user", "content": "a needle"}"#, "needle", Roles::NotSystem);
        let json = serde_json::to_value(&found.shown[0]).unwrap();
        assert!(json.get("before").is_none() && json.get("after").is_none(), "{json}");
    }

    #[test]
    fn a_long_line_is_cut_around_the_match() {
        let content = format!("{}needle{}", "a".repeat(500), "b".repeat(500));
        let log = format!("{{\"role\": \"user\", \"content\": \"{content}\"}}\n");
        let excerpt = &search(&log, "needle", Roles::NotSystem).shown[0].excerpt;
        assert!(excerpt.starts_with('…') && excerpt.ends_with('…') && excerpt.contains("needle"), "{excerpt}");
        assert_eq!(excerpt.chars().count(), EXCERPT_CHARS + 2);
    }

    /// A random log's lines: up to five messages of any role, each of up to nine pieces.
    fn random_log(rng: &mut Rng, pieces: &[&str]) -> Vec<String> {
        let roles = ["user", "assistant", "system"];
        (0..rng.below(6))
            .map(|_| {
                let content: String = (0..rng.below(10)).map(|_| pieces[rng.index(pieces.len())]).collect();
                format!(r#"{{"role": "{}", "content": "{content}"}}"#, roles[rng.index(roles.len())])
            })
            .collect()
    }

    /// How many messages of the lines, system ones left out, a plain reader finds `says` of:
    /// each line parsed whole by serde_json.
    fn plain_count(lines: &[String], says: impl Fn(&str) -> bool) -> usize {
        let messages = lines.iter().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap());
        messages.filter(|m| m["role"] != "system" && says(m["content"].as_str().unwrap())).count()
    }

    /// Characters outside ASCII, written and escaped, for the byte test: Cyrillic and Chinese,
    /// a final sigma's capital, a titlecase digraph, a combining dot (İ's lowering holds one).
    const OUTSIDE_ASCII: [&str; 13] = [
        "д",
        "Д",
        "\\u0434",
        "\\u0414",
        "数",
        "\\u6570",
        "Σ",
        "\\u03A3",
        "ς",
        "\\ud83d\\ude00",
        "ǅ",
        "\\u01c5",
        "\\u0307",
    ];

    /// Random logs searched for one to three texts count exactly the messages a plain reader
    /// counts (each line parsed whole, its content lowered, every text in it): the byte test,
    /// its order and the texts it cannot take lose and add nothing.
    #[test]
    fn random_logs_count_as_a_plain_reader_counts() {
        let pieces = [
            "sqlite",
            "SQLite",
            "wal",
            "W",
            "a",
            "\\n",
            "\\u00e9",
            "é",
            "\\u212a",
            "\u{212A}",
            "\\\"",
            " ",
            "x",
            "\\u0041",
            "\\\\u0041",
            "\\u0130",
            "İ",
            "\\\\",
            "\\u001b",
            "\\u002F",
            "\\\\u6570",
            "\\u636e",
            "据",
            "\\u00e0",
            "о",
            "О",
            "\\u043e",
            "\\u041E",
            "\\u0434\\u043e",
            "\\u0111",
            "\\u0110",
        ]
        .into_iter()
        .chain(OUTSIDE_ASCII)
        .collect::<Vec<_>>();
        let texts = [
            "sqlite", "wal", "a", "é", "k", "\"", "a/", "e wal", "x x", "q", "na", "u00", "00e9", "0041", "ax", "i",
            "д", "数", "ς", "σ", "😀", "ǆ", "i\u{307}", "aд", "wal数", "数据", "数 a", "据数", "0数", "数\\", "n数",
            "aé", "é a", "xд", "до", "д о", "одд", "😀д", "од\"", "дk", "đ", "đx",
        ];
        let mut rng = Rng(11);
        for _ in 0..2_000 {
            let lines = random_log(&mut rng, &pieces);
            let needles: Vec<&str> = (0..1 + rng.below(3)).map(|_| texts[rng.index(texts.len())]).collect();
            let expected = plain_count(&lines, |content| needles.iter().all(|n| py_lower(content).contains(n)));
            let log = lines.join("\n");
            assert_eq!(search_all(&log, &needles, Roles::NotSystem).count, expected, "{needles:?} in {log}");
        }
    }

    /// As words, random texts count the messages whose content, lowered, holds each of them
    /// somewhere with no character of a word just before or after it: told from escapes of
    /// word and other characters, of halves of a pair, and of ASCII, at a text's either side.
    #[test]
    fn random_logs_count_words_as_a_plain_reader_counts() {
        #[rustfmt::skip]
        let pieces = [
            "go", "GO", "ago", "_", " ", "x", "k", "é", "\\u00e9", "\\u00E9", "\\u0301", "\\u2014",
            "\\n", "\\\\", "\\\"", "\\ud83d\\ude00", "\\u0041", "\\u0067o", "\\u0130", "\u{212A}",
            "\\u212a", "\u{1F600}", "\u{301}", "\\ud840\\udc00", "\\u001b", "д", "\\u0434", "\\u0414",
            "\\u043e", "\\u041E",
        ];
        let texts = ["go", "a", "k", "go go", "x", " go", "o", "é", "д", "до", "д go", "😀", "ǆ"];
        let alone = |text: &str, needle: &str| {
            let text = py_lower(text);
            let word = |c: Option<char>| c.is_some_and(regex_syntax::is_word_character);
            text.char_indices().any(|(at, _)| {
                text[at..].starts_with(needle)
                    && !word(text[..at].chars().next_back())
                    && !word(text[at + needle.len()..].chars().next())
            })
        };
        let mut rng = Rng(17);
        for _ in 0..4_000 {
            let lines = random_log(&mut rng, &pieces);
            let needles: Vec<&str> = (0..1 + rng.below(2)).map(|_| texts[rng.index(texts.len())]).collect();
            let expected = plain_count(&lines, |content| needles.iter().all(|n| alone(content, n)));
            let log = lines.join("\n");
            assert_eq!(search_as(&log, &needles, true, Roles::NotSystem).count, expected, "{needles:?} in {log}");
        }
    }

    /// In their own case, random texts count the messages whose content holds each of them
    /// exactly as typed: a capital is no small letter, and an escape is what it stands for.
    #[test]
    fn random_logs_count_texts_in_their_own_case() {
        let pieces =
            ["sqlite", "SQLite", "Wal", "wal", "\\u0057al", "\\n", "\\u00e9", "\\u00c9", "É", "\\u212a", "K", " ", "."];
        let texts = ["SQLite", "sqlite", "Wal", "wal", "É", "é", "K", "k", "\u{212A}", "e W", ".", "a.", "L"];
        let how = Matching { case_sensitive: true, ..Matching::default() };
        let mut rng = Rng(13);
        for _ in 0..2_000 {
            let lines = random_log(&mut rng, &pieces);
            let needles: Vec<String> =
                (0..1 + rng.below(2)).map(|_| texts[rng.index(texts.len())].to_owned()).collect();
            let expected = plain_count(&lines, |content| needles.iter().all(|n| content.contains(n.as_str())));
            let log = lines.join("\n");
            let found = search_texts(&log, &Texts::new(&needles, how).unwrap());
            assert_eq!(found.count, expected, "{needles:?} in {log}");
        }
    }

    fn search_patterns(log: &str, patterns: &[&str], words: bool) -> LogMatches {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        search_texts(log, &Texts::new(&patterns, Matching { words, ..REGEX }).unwrap())
    }

    fn search_texts(log: &str, texts: &Texts) -> LogMatches {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conversation.jsonl");
        std::fs::write(&path, log).unwrap();
        search_log(&path, texts, Roles::NotSystem, Shown { matches: 10, context: 0 }, &mut Vec::new()).unwrap()
    }

    /// Random logs searched for one or two regular expressions (as words or not) count exactly
    /// the messages a plain reader counts: each line parsed whole, its content matched against
    /// the same expressions built from their text. The test of a line's bytes by the texts
    /// every match starts with (a Kelvin sign among them, which `(?i)k` matches) loses nothing.
    #[test]
    fn random_logs_match_patterns_as_a_plain_reader_does() {
        #[rustfmt::skip]
        let pieces = [
            "sqlite", "SQLite", "wal", "W", "a", "\\n", "\\u00e9", "é", "\\u212a", "\u{212A}",
            "\\u017f", "\u{17F}", "\\\"", " ", "x", "thread", "throd", "quoka", "ql", "3", "_",
            "\\r\\n", "\\r", "\\u0301", "\\ud83d\\ude00", "\\ud840\\udc00",
        ];
        let patterns = [
            "quokk?a",
            "thr(ea|o)d",
            "k",
            "wal",
            "é",
            "^a",
            "x$",
            "a.w",
            "sql(ite)?",
            "[0-9]+",
            "(?-i)SQLite",
            "e\\s+w",
            "\"",
            "\\\\",
            "k.?k",
            "a|x",
            // As a word, the first match (`w` in `wal`) may not be the one that stands alone.
            "w|wal",
            "",
            "(?s)a.*x",
            // Neither start nor end known: a part's texts.
            r"\w+ql\w*",
            r"\w*(?-i:SQL)i\w*",
            r"\W+k\W+",
            r"\w+ wal\s*x?\w*",
        ];
        let reference = |pattern: &str, words: bool| {
            let pattern =
                if words { format!(r"\b{{start-half}}(?:{pattern})\b{{end-half}}") } else { pattern.to_owned() };
            let syntax = regex_automata::util::syntax::Config::new().case_insensitive(true).multi_line(true).crlf(true);
            Regex::builder().syntax(syntax).build(&pattern).unwrap()
        };
        // Built once for each set asked (building is what takes time here).
        let mut built = std::collections::HashMap::new();
        let mut rng = Rng(12);
        for _ in 0..2_000 {
            let lines = random_log(&mut rng, &pieces);
            let asked: Vec<&str> = (0..1 + rng.below(2)).map(|_| patterns[rng.index(patterns.len())]).collect();
            if asked.iter().any(|p| p.is_empty()) {
                assert!(matches!(Texts::new(&[String::new()], REGEX), Err(TextsError::Blank)));
                continue;
            }
            let words = rng.below(2) == 0;
            let (texts, references) = built.entry((asked.clone(), words)).or_insert_with(|| {
                let patterns: Vec<String> = asked.iter().map(|p| p.to_string()).collect();
                let references: Vec<Regex> = asked.iter().map(|p| reference(p, words)).collect();
                (Texts::new(&patterns, Matching { words, ..REGEX }).unwrap(), references)
            });
            let expected = plain_count(&lines, |content| references.iter().all(|r| r.is_match(content)));
            let log = lines.join("\n");
            assert_eq!(search_texts(&log, texts).count, expected, "{asked:?} (words: {words}) in {log}");
        }
    }

    /// A regular expression: found anywhere in the content, as a word around its whole tree
    /// (an alternative that does not stand as a word gives way to one that does; a comment in
    /// the pattern does not swallow the test), the excerpt cut around its first match; one
    /// that is not is refused, saying why.
    #[test]
    fn a_pattern_is_found_and_shown() {
        let long = format!("{} the thread {}", "x".repeat(300), "y".repeat(300));
        let log = [
            r#"{"role": "user", "content": "going, ago"}"#.to_owned(),
            r#"{"role": "user", "content": "ERROR  E0499 here\nand E12"}"#.to_owned(),
            format!(r#"{{"role": "assistant", "content": "{long}"}}"#),
        ]
        .join("\n");
        let found = search_patterns(&log, &[r"error\s+E\d{4}"], false);
        assert_eq!((found.count, found.shown[0].excerpt.as_str()), (1, "ERROR  E0499 here"));
        assert_eq!(search_patterns(&log, &["^and"], false).count, 1, "^ at a line of the content");
        let crlf = r#"{"role": "user", "content": "first\r\nsecond"}"#;
        assert_eq!(search_patterns(crlf, &["^first$"], false).count, 1, "$ before a \\r\\n");
        assert_eq!(search_patterns(&log, &["(?-i)error"], false).count, 0);
        assert_eq!(search_patterns(&log, &["go|going"], true).count, 1);
        assert_eq!(search_patterns(&log, &["(?x)go # a comment"], true).count, 0, "going, ago: no go alone");
        assert_eq!(search_patterns(&log, &["(?x)going # a comment"], true).count, 1);
        let excerpt = &search_patterns(&log, &["thr(ea|o)d"], false).shown[0].excerpt;
        assert!(excerpt.starts_with('…') && excerpt.contains(" the thread "), "{excerpt}");
        // What a line's bytes are tested for: the texts each match starts with, lowered (in
        // any case, `k` is also a Kelvin sign), their common start when long enough.
        let byte_test = |pattern: &str| {
            let texts = Texts::new(&[pattern.to_owned()], REGEX).unwrap();
            texts.byte_test.iter().map(|any| shown(any)).collect::<Vec<_>>()
        };
        assert_eq!(byte_test("quokk?a"), ["quok"]);
        assert_eq!(byte_test("thr(ea|o)d"), ["thr"]);
        assert_eq!(byte_test("(?-i)SQLite|wal"), ["sqlite|wal"]);
        assert_eq!(byte_test("[0-9]+"), ["0|1|2|3|4|5|6|7|8|9"]);
        // What every match ends with, when what it starts with is unknown.
        assert_eq!(byte_test(r"\w+Error"), ["error"]);
        assert_eq!(byte_test(r"\d+ (sec|ms)"), [" ms| sec"]);
        assert_eq!(byte_test("sqlite"), ["sqlite"], "the long s taken as s");
        // Else what a part of it starts with: the longest, then the fewest.
        assert_eq!(byte_test(r"\w+Error: \w+"), ["error: "]);
        assert_eq!(byte_test(r"(\w+ quokkas? \d+)"), [" quokka"]);
        assert_eq!(byte_test(r"\w+(ab|cd)\w+(efg|hij)\w+"), ["efg|hij"]);
        let words = Texts::new(&[r"\w*thread\w*".to_owned()], Matching { words: true, ..REGEX }).unwrap();
        assert_eq!(shown(&words.byte_test[0]), "thread", "inside -w's bounds");
        let long_s = r#"{"role": "user", "content": "\u017fqlite"}"#;
        assert_eq!(search_patterns(long_s, &["sqlite"], false).count, 1, "ſ is s in any case");
        // None: too many (any digit of any script), an empty start, no match at all.
        assert!(byte_test(r"\d+").is_empty() && byte_test("a*").is_empty() && byte_test(r"[^\s\S]").is_empty());
        let refused = |text: &str| Texts::new(&[text.to_owned()], REGEX).unwrap_err().to_string();
        assert_eq!(refused("a(b"), "\"a(b\" is not a regular expression: unclosed group");
        assert_eq!(
            refused("x{3,2}"),
            "\"x{3,2}\" is not a regular expression: invalid repetition count range, the start must be <= the end"
        );
        assert_eq!(refused(" "), "a text to search for is blank");
        assert_eq!(
            refused(r"\w{1000}{100}"),
            "\"\\\\w{1000}{100}\" is too large a regular expression: over 10 MiB compiled"
        );
    }

    /// A byte test's needles as text, `|` between them.
    fn shown(any: &[ByteNeedle]) -> String {
        let shown = |needle: &ByteNeedle| match needle {
            ByteNeedle::Text(text) => String::from_utf8(text.needle().to_vec()).unwrap(),
            ByteNeedle::Spelling(spelling) => String::from_utf8(spelling.bytes.clone()).unwrap(),
        };
        any.iter().map(shown).collect::<Vec<_>>().join("|")
    }

    /// A text with a character outside ASCII is looked for by its longest plain part, when
    /// that is long enough, else by the ways to write the character written in fewest ways.
    #[test]
    fn texts_outside_ascii_are_looked_for_by_a_part_or_a_character() {
        let needles = |text: &str| byte_needles(text).map(|any| shown(&any));
        assert_eq!(needles("café").as_deref(), Some("caf"));
        assert_eq!(needles("数据").as_deref(), Some("\\u6570|数"));
        assert_eq!(needles("дa").as_deref(), Some("\\u0434|д|\\u0414|Д"));
        assert_eq!(needles("ä数").as_deref(), Some("\\u6570|数"), "the character written in fewest ways");
        let by_whole_escapes = needles("кошка");
        assert_eq!(by_whole_escapes.as_deref(), Some("\\u0448|ш|\\u0428|Ш"), "not \\u043a, found by \\u043");
        assert_eq!(needles("a😀").as_deref(), Some("\\ud83d\\ude00|😀"), "a pair past U+FFFF");
        assert_eq!(needles("ς").as_deref(), Some("\\u03c2|ς|\\u03a3|Σ"), "a final sigma is a capital's too");
        assert_eq!(needles("i\u{307}").as_deref(), Some("\\u0307|\u{307}|\\u0130|İ"));
        assert_eq!(needles("ǆ").as_deref(), Some("\\u01c6|ǆ|\\u01c4|Ǆ|\\u01c5|ǅ"));
        assert_eq!(needles("a\u{FFFD}").as_deref(), Some("a"), "bad UTF-8 also reads as U+FFFD");
        assert_eq!(needles("\u{FFFD}"), None);
        // What the extractor gives a pattern outside ASCII, whole characters.
        let held = |pattern: &str| {
            let texts = Texts::new(&[pattern.to_owned()], REGEX).unwrap();
            texts.byte_test.iter().map(|any| shown(any)).collect::<Vec<_>>()
        };
        assert_eq!(held("数据?"), ["\\u6570|数"]);
        assert_eq!(held("(?-i)é(a|b)cd"), ["acd|bcd"]);
        assert_eq!(held("éa|éb"), ["\\u00c9|\\u00e9|É|é"], "each of é's ways once");
        assert_eq!(held("abcé|abcè"), ["abc"], "the shared start, not half of é");
    }

    /// [`lowered_from`] holds every character whose lowering holds one outside ASCII: a text
    /// lowered holds no character that none of its ways are written for.
    #[test]
    fn every_character_that_lowers_is_among_those_lowered_from() {
        for x in (0..=0x10FFFF_u32).filter_map(char::from_u32) {
            for y in py_lower_char(x).filter(|&y| y != x && !y.is_ascii()) {
                assert!(lowered_from(y).contains(&x), "{x:?} lowers to {y:?}");
            }
        }
        assert_eq!(py_lower("AΣ"), "aς");
        assert!(lowered_from('ς').contains(&'Σ'), "Σ lowers to ς at a word's end");
    }

    /// A line's escapes that may stand for a character of a plain needle are found wherever
    /// they are among many of another alphabet's (every Cyrillic letter is `\u04xx`), which the
    /// search passes over once they come densely: before, at and after the place where it
    /// begins to.
    #[test]
    fn escapes_among_another_alphabets_are_found() {
        let quokka = AsciiLoweredFinder::new(b"quokka");
        let letters = ["\\u043f", "\\u0420", "\\u0438", "\\u0432"];
        for before in 0..40 {
            let prose: String = (0..before).map(|i| letters[i % letters.len()]).collect();
            let escapes =
                [("\\u0051", true), ("\\u017F", true), ("\\u0130", true), ("\\u00e9", false), ("\\u0451", false)];
            for (escape, may) in escapes {
                let line = format!("{prose}{escape}uokka{prose}");
                assert_eq!(may_hold(line.as_bytes(), &quokka), may, "{escape} after {before} letters");
            }
        }
    }

    /// In any case, a pattern takes I, i, İ and ı for one another, as Python's `re` does (and as
    /// a plain text's lowering finds an `i` in İ): where a class holds an i, and not where it
    /// holds none (`[^i]`), nor where the pattern turns any case off; and so over a log, where
    /// an escaped ı or İ is no letter the byte test may pass over.
    #[test]
    fn a_pattern_in_any_case_takes_every_i_for_any_other() {
        let says = |pattern: &str, how: Matching, content: &str| {
            Texts::new(&[pattern.to_owned()], how).unwrap().all_said_in(content)
        };
        for content in ["İSTANBUL", "ıstanbul", "Istanbul", "istanbul", "x İstanbul"] {
            for pattern in ["istanbul", "İstanbul", "ıSTANBUL", "[h-j]stanbul", r"\bistanbul", "(?i:i)stanbul"] {
                assert!(says(pattern, REGEX, content), "{pattern} in {content}");
            }
            assert!(!says("[^i]stanbul", REGEX, content) && !says("[^İ]stanbul", REGEX, content), "{content}");
            assert!(says("[İ]stanbul", REGEX, content) && says("[Ġ-Ĳ]stanbul", REGEX, content), "{content}");
        }
        assert!(!says("(?-i)istanbul", REGEX, "İstanbul") && !says("x|(?-i:i)", REGEX, "İ"));
        assert!(!says("(?-i)[a-z]stanbul", REGEX, "İstanbul") && !says("(?-i)İstanbul", REGEX, "istanbul"));
        assert!(!says("istanbul", Matching { case_sensitive: true, ..REGEX }, "İstanbul"));
        assert!(says("w(?-i:i)|wİKİ", REGEX, "wiki"), "not turned off where that says nothing of İ");
        for content in [r"\u0131stanbul", r"\u0130STANBUL", "ıstanbul"] {
            let log = format!(r#"{{"role": "user", "content": "{content}"}}"#);
            assert_eq!(search_patterns(&log, &["istanbul"], false).count, 1, "{content}");
            assert_eq!(search_patterns(&log, &["İstanbul"], false).count, 1, "{content}");
            assert_eq!(search_patterns(&log, &["wiki|istanbul"], true).count, 1, "{content}");
        }
        // A pattern's İ is looked for as an i, whatever else it holds.
        for content in ["wiki", "WIKI", r"w\u0131ki", "wıki", r"w\u0130ki"] {
            let log = format!(r#"{{"role": "user", "content": "{content}"}}"#);
            assert_eq!(search_patterns(&log, &["wİki"], false).count, 1, "{content}");
        }
    }

    /// An escape may stand for a character a plain needle holds exactly when it is printable
    /// ASCII but for `"`, `/` and `\`, or lowers or folds to such a one; one cut short or not
    /// hex may, to be safe.
    #[test]
    fn escapes_that_may_be_plain() {
        for cp in 0..=0xFFFF_u32 {
            let expected = (0x20..0x7F).contains(&cp) && !matches!(cp, 0x22 | 0x2F | 0x5C)
                || matches!(cp, 0x130 | 0x131 | 0x17F | 0x212A);
            for escape in [format!("\\u{cp:04x}"), format!("\\u{cp:04X}")] {
                assert_eq!(escape_may_be_plain(escape.as_bytes(), 0), expected, "{escape}");
            }
        }
        for cut in [&b"\\u00e"[..], b"\\u+0e9", b"\\u00g9", b"\\u"] {
            assert!(escape_may_be_plain(cut, 0), "{cut:?}");
        }
    }

    /// A text outside ASCII is told in a string's raw bytes, found around one of its characters
    /// however that is written, from no place inside an escape; a text that Σ or İ may say is
    /// found only as gptme writes it whole, and otherwise decoded.
    #[test]
    fn a_text_outside_ascii_is_told_in_raw_bytes() {
        let said = |text: &str, raw: &[u8]| Written::of(text, false).unwrap().in_raw(raw);
        assert_eq!(said("索引 1", "x索引 1".as_bytes()), Some(true));
        assert_eq!(said("索引 1", br"x\u7d22\u5f15 1"), Some(true));
        assert_eq!(said("索引 1", br"\\\u7d22\u5f15 1"), Some(true), "after an escaped backslash");
        assert_eq!(said("索引 1", br"\\u7d22\u5f15 1"), Some(false), "no escape");
        assert_eq!(said("索引 1", br"\u7D22\u5F15 1"), Some(true), "hex digits in capitals");
        assert_eq!(said("索引 1", "索引 2".as_bytes()), Some(false));
        assert_eq!(said("кошка", br"\u041a\u041E\u0448\u043a\u0430!"), Some(true), "any case, any way");
        assert_eq!(said("кошка", "a Кошка".as_bytes()), Some(true));
        assert_eq!(said("кошка", br"\u043a\u043e\u0448\u043a\u0438"), Some(false));
        assert_eq!(said("кошка", br"\u043e\u0448\u043a\u0430"), Some(false), "no room before");
        assert_eq!(said("café", br"a caf\u00c9."), Some(true));
        assert_eq!(said("café", br"\u0caf\u00e9"), Some(false), "the hex digits of an escape");
        assert_eq!(said("0数", br"\u00e0\u6570"), Some(false), "a hex digit of an escape");
        assert_eq!(said("n数", br"\n\u6570"), Some(false), "the n of \\n");
        assert_eq!(said("n数", br"\\n\u6570"), Some(true), "after \\\\");
        assert_eq!(said("😀x", br"\ud83d\ude00X"), Some(true), "a pair");
        assert_eq!(said("a😀", br"a\ud83d\ud83d\ude00"), Some(false), "half of a pair before it");
        let word = |text: &str, raw: &[u8]| Written::of(text, true).unwrap().in_raw(raw);
        assert_eq!(word("кот", br"\u043a\u043e\u0442\u044b \u041a\u043e\u0442"), Some(true));
        assert_eq!(word("кот", br"\u043a\u043e\u0442\u044b"), Some(false), "in a longer word");
        assert_eq!(word("кот", br"a\u043a\u043e\u0442"), Some(false), "after a letter");
        assert_eq!(word("кот", br"\n\u043a\u043e\u0442."), Some(true), "after an escape of no letter");
        assert_eq!(said("σοφία", "ΣΟΦΊΑ".as_bytes()), None, "Σ lowers by what is around it");
        assert_eq!(said("σοφία", br"\u03c3\u03bf\u03c6\u03af\u03b1"), Some(true), "written whole");
        assert_eq!(said("ki\u{307}", "KİT".as_bytes()), None, "İ lowers to two");
        for other in ["a", "σ/", "\u{FFFD}/"] {
            assert!(Written::of(other, false).is_none(), "{other}");
        }
    }

    /// Where in a string's raw bytes an escape's bytes are, but for its first.
    #[test]
    fn bytes_inside_escapes() {
        let raw = br"a\u00e9b\nc\\d\\\te";
        let inside: Vec<usize> = (0..raw.len()).filter(|&at| inside_escape(raw, at)).collect();
        assert_eq!(inside, [2, 3, 4, 5, 6, 9, 12, 15, 17]);
    }

    /// A way to write a character is found in any case of its hex digits, by its longest part
    /// without a hex letter, or below U+1000 by its last two digits when they are no letters.
    #[test]
    fn a_spelling_is_found_in_any_case() {
        let spelling = Spelling::new(br"\ua641".to_vec());
        assert_eq!(spelling.part_at, 3, "641");
        for line in [&br"x\ua641"[..], br"\uA641y", br"[\ua641]"] {
            assert!(spelling.is_in(line), "{line:?}");
        }
        for line in [&br"641"[..], br"a641", br"\u0641", br"\ua64"] {
            assert!(!spelling.is_in(line), "{line:?}");
        }
        assert_eq!(Spelling::new(br"\u636e".to_vec()).part_at, 0);
        assert_eq!(Spelling::new(br"\u0436".to_vec()).part_at, 4, "36");
        let overlapping = Spelling::new(br"\u0111".to_vec());
        assert_eq!(overlapping.places(br"\u0111 \u0111").collect::<Vec<_>>(), [0, 7], "11 twice in each");
        assert_eq!(Spelling::new(br"\u6e36".to_vec()).part_at, 0, "no alphabet's block");
        assert!(!Spelling::new("д".into()).by_last_digits());
        assert!(Spelling::new(br"\u636e".to_vec()).is_in(br"\u636E"));
        assert!(Spelling::new("数".into()).is_in("x数".as_bytes()));
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
            "😀",
            "\\u03a3",
            "\\u01C5",
            "\\u001b",
            "\\u0022",
            "\\u002F",
            "\\u005c",
            "\\u007f",
        ]
        .into_iter()
        .chain(OUTSIDE_ASCII)
        .collect::<Vec<_>>();
        let needles = [
            "a", "ab", "k", "b a", "i", "ba", "é", "ς", "д", "数", "😀", "i\u{307}", "aд", "ǆ", "\"a", "a\u{1b}", "a/",
        ];
        let mut rng = Rng(7);
        for _ in 0..20_000 {
            let content: String = (0..rng.below(8)).map(|_| pieces[rng.index(pieces.len())]).collect();
            let line = format!("{{\"role\": \"user\", \"content\": \"{content}\"}}");
            let Ok(parsed) = Line::parse(line.as_bytes()) else { continue };
            let decoded = parsed.content.unwrap().decode_lossy();
            for needle in needles {
                if decoded.to_lowercase().contains(needle) {
                    let any = byte_needles(needle).unwrap();
                    assert!(any.iter().any(|n| n.may_be_in(line.as_bytes())), "{line} holds {needle:?}");
                }
            }
        }
    }
}
