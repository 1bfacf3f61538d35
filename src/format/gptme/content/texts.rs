//! What a search looks for (texts, or regular expressions), and whether a message's content
//! says it: from the content's JSON string as written where that can tell, else decoded.

use std::ops::Range;

use regex_automata::meta::Regex;
use regex_syntax::hir::{Hir, Look};

use super::raw::{between_escapes, byte_needles, held_between_escapes, plain, ByteNeedle, Written};
use crate::format::gptme::lowered::{lowered_find, py_lower, py_lower_char, search_needle, stands_alone, Needle};

/// What a message must say: every one of several texts, each found in its content as asked.
#[derive(Debug, Default)]
pub struct Texts {
    pub sought: Sought,
    /// What a line's raw bytes are tested for before it is parsed: for each group, one of its
    /// needles (see [`byte_needles`]). Each text is a group of its own, and each pattern's held
    /// texts one; the longest first (likely the rarest, so the first to rule a line out). Made
    /// once for a search: its finders take microseconds to build, and a search reads every log.
    pub(super) byte_test: Vec<Vec<ByteNeedle>>,
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

impl Matching {
    /// Smart case, as ripgrep's `-S` and fd's: the texts in the case they are typed in when any
    /// of them has an upper-case letter, else in any case. Of a regular expression, its
    /// literal letters count (in a class too, and one written as a code point, `\x41`), not
    /// those of escapes and class names (`\S`, `\pL`); one that does not parse counts its
    /// every letter (and is refused for what it is after).
    pub fn smart_case(self, texts: &[String]) -> Matching {
        let upper = |text: &str| match self.regex {
            false => text.chars().any(char::is_uppercase),
            true => match regex_syntax::ast::parse::Parser::new().parse(text) {
                Ok(ast) => regex_syntax::ast::visit(&ast, UpperLiteral).is_err(),
                Err(_) => text.chars().any(char::is_uppercase),
            },
        };
        Matching { case_sensitive: texts.iter().any(|t| upper(t)), ..self }
    }
}

/// Visits a pattern's syntax, stopping (with an error) at its first upper-case literal.
struct UpperLiteral;

impl regex_syntax::ast::Visitor for UpperLiteral {
    type Output = ();
    type Err = ();

    fn finish(self) -> Result<(), ()> {
        Ok(())
    }

    fn visit_pre(&mut self, ast: &regex_syntax::ast::Ast) -> Result<(), ()> {
        match ast {
            regex_syntax::ast::Ast::Literal(literal) if literal.c.is_uppercase() => Err(()),
            _ => Ok(()),
        }
    }

    fn visit_class_set_item_pre(&mut self, item: &regex_syntax::ast::ClassSetItem) -> Result<(), ()> {
        use regex_syntax::ast::ClassSetItem;
        match item {
            ClassSetItem::Literal(literal) if literal.c.is_uppercase() => Err(()),
            ClassSetItem::Range(range) if range.start.c.is_uppercase() || range.end.c.is_uppercase() => Err(()),
            _ => Ok(()),
        }
    }
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
    pub(super) fn all_said_in_raw(&self, raw: &[u8]) -> Option<bool> {
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

    pub(super) fn all_said_in(&self, text: &str) -> bool {
        (0..self.len()).all(|i| self.says(text, i))
    }

    pub(super) fn any_said_in(&self, text: &str) -> bool {
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
    pub(super) fn first_in(&self, text: &str) -> Option<usize> {
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
/// and `i` İ and ı (see [`EVERY_I`]): each is taken as its ASCII letter, which [`may_hold`](super::raw::may_hold)
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
pub(super) const EVERY_I: [char; 4] = ['I', 'i', '\u{130}', '\u{131}'];

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
