//! What a line's raw bytes, and a JSON string's, tell as they are written, before or without
//! parsing and decoding them: whether a line may hold a text at all (its byte test), and
//! whether a string says a text, read between its escapes or off them.

use std::ops::Range;
use std::sync::LazyLock;

use crate::format::gptme::lowered::{
    ascii_lowered_starts, lowered_from, py_lower_char, AsciiLoweredFinder, LOWERING_TO_ASCII,
};
use crate::json::{escape_holding, RawStr};

/// Whether a needle can be looked for in a line's raw bytes: ASCII, and none of what JSON
/// writes escaped (a quote, a backslash, a control character) nor `/` (which it may).
pub(super) fn plain(needle: &str) -> bool {
    needle.chars().all(plain_char)
}

fn plain_char(c: char) -> bool {
    c.is_ascii() && !c.is_ascii_control() && !matches!(c, '"' | '\\' | '/')
}

/// What a line's raw bytes are looked for, before it is parsed, for a string in it to hold a
/// text.
#[derive(Debug)]
pub(super) enum ByteNeedle {
    /// A plain text, as [`may_hold`] looks for one.
    Text(AsciiLoweredFinder),
    /// One way to write a character (see [`Spelling`]).
    Spelling(Spelling),
}

impl ByteNeedle {
    pub(super) fn may_be_in(&self, line: &[u8]) -> bool {
        match self {
            ByteNeedle::Text(text) => may_hold(line, text),
            ByteNeedle::Spelling(spelling) => spelling.is_in(line),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.key().1.len()
    }

    /// What it looks for, and how: the same twice is looked for once.
    pub(super) fn key(&self) -> (bool, &[u8]) {
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
pub(super) struct Spelling {
    pub(super) bytes: Vec<u8>,
    part: memchr::memmem::Finder<'static>,
    pub(super) part_at: usize,
}

impl Spelling {
    pub(super) fn new(bytes: Vec<u8>) -> Spelling {
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

    pub(super) fn is_in(&self, line: &[u8]) -> bool {
        self.places(line).next().is_some()
    }

    /// Whether it is an escape found by its last two digits.
    pub(super) fn by_last_digits(&self) -> bool {
        self.bytes[0] == b'\\' && self.part_at == self.bytes.len() - 2
    }

    /// Where it starts in `line`, each place in order. The part's places overlap where it
    /// does (`11` of `\u0111` is at its fourth byte and its fifth), so each is looked for
    /// from just past the last, not past its end.
    pub(super) fn places<'a>(&'a self, line: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
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
pub(super) fn byte_needles(text: &str) -> Option<Vec<ByteNeedle>> {
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
pub(super) struct Written {
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
    pub(super) fn of(text: &str, words: bool) -> Option<Written> {
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
    pub(super) fn in_raw(&self, raw: &[u8]) -> Option<bool> {
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
pub(super) fn inside_escape(raw: &[u8], at: usize) -> bool {
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
pub(super) fn held_between_escapes(raw: &[u8], needle: &[u8], words: bool) -> Option<bool> {
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
pub(super) struct Run<'a> {
    pub(super) bytes: &'a [u8],
    /// Where the escapes before and after it start in the string; None at its ends.
    escape_before: Option<usize>,
    escape_after: Option<usize>,
}

impl Run<'_> {
    /// Whether `self.bytes[at]` stands as a word in this run's string once decoded (`raw` is
    /// the string as written): no character of a word just before or after it, each read in
    /// the run, or, at the run's ends, from the escape there. None when that escape cannot
    /// tell.
    pub(super) fn stands_as_word(&self, raw: &[u8], at: Range<usize>) -> Option<bool> {
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
pub(super) fn between_escapes(raw: &[u8]) -> impl Iterator<Item = Run<'_>> {
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
pub(super) fn may_hold(line: &[u8], needle: &AsciiLoweredFinder) -> bool {
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
/// see [`EVERY_I`](super::texts::EVERY_I)). Not a control character: a terminal's colour
/// codes (`\u001b`) are escaped so in tool output, and a line holding them need not be parsed.
/// One cut short, or not of four hex digits, may. Read from its bytes: most lines have many
/// escapes, and most stand for other letters.
pub(super) fn escape_may_be_plain(bytes: &[u8], at: usize) -> bool {
    let Some(hex @ &[_, _, _, _]) = bytes.get(at + 2..at + 6) else { return true };
    let code = hex.iter().try_fold(0, |code, &d| Some(code * 16 + char::from(d).to_digit(16)?));
    let Some(code) = code else { return true };
    char::from_u32(code).is_some_and(plain_char) || matches!(code, 0x130 | 0x131 | 0x17F | 0x212A)
}
