//! Text as Python lowers it (`str.lower()`), and a lowered text found in others as gptme's
//! searches find it (`needle in text.lower()`): the list's `q`, and the texts `search` looks for.

use super::preview;

/// gptme's search text: `q.strip().lower()`, None when nothing is left (then there is no filter).
pub fn search_needle(q: &str) -> Option<String> {
    let q = q.trim_matches(|c: char| preview::is_py_space(c as u32));
    (!q.is_empty()).then(|| py_lower(q))
}

/// The capitals that Rust lowers and Python 3.10–3.13 (Unicode 13–15.1) do not: 55 letters
/// added in Unicode 16 and 17 (Cyrillic, Latin, Garay, Beria Erfe), which those Pythons hold
/// unassigned (3.14, on Unicode 16, lowers some of them).
const UNLOWERED_BY_PYTHON: [(char, char); 9] = [
    ('\u{1C89}', '\u{1C89}'),
    ('\u{A7CB}', '\u{A7CC}'),
    ('\u{A7CE}', '\u{A7CE}'),
    ('\u{A7D2}', '\u{A7D2}'),
    ('\u{A7D4}', '\u{A7D4}'),
    ('\u{A7DA}', '\u{A7DA}'),
    ('\u{A7DC}', '\u{A7DC}'),
    ('\u{10D50}', '\u{10D65}'),
    ('\u{16EA0}', '\u{16EB8}'),
];

fn unlowered_by_python(c: char) -> bool {
    c >= '\u{1C89}' && UNLOWERED_BY_PYTHON.iter().any(|&(first, last)| (first..=last).contains(&c))
}

/// `text.lower()` as Python 3.11 (the conformance pack's gptme ran on it) lowers it: Rust's
/// lowering, which agrees on every code point but the 55 capitals Unicode 16 and 17 added
/// (`UNLOWERED_BY_PYTHON`), which Python leaves as they are. Those are neither cased nor
/// case-ignorable to Python, so lowering the runs between them apart keeps a final sigma's
/// context as Python reads it. Public for the `search` fuzz target's plain reader.
pub fn py_lower(text: &str) -> String {
    if !text.chars().any(unlowered_by_python) {
        return text.to_lowercase();
    }
    let mut out = String::with_capacity(text.len());
    let mut run_start = 0;
    for (at, c) in text.char_indices().filter(|&(_, c)| unlowered_by_python(c)) {
        out.push_str(&text[run_start..at].to_lowercase());
        out.push(c);
        run_start = at + c.len_utf8();
    }
    out.push_str(&text[run_start..].to_lowercase());
    out
}

/// One character lowered as [`py_lower`] lowers it alone.
pub(crate) fn py_lower_char(c: char) -> impl Iterator<Item = char> {
    let keep = unlowered_by_python(c);
    c.to_lowercase().filter(move |_| !keep).chain(keep.then_some(c))
}

/// Whether a conversation matches gptme's search: `needle` (from [`search_needle`]) in its
/// name, id or preview, lowercased. `preview` is the stored text; `item_json` gives the served
/// item, which alone tells a lone surrogate (stored as U+FFFD) from a real U+FFFD, and is asked
/// for only then.
pub fn search_hit(
    needle: &Needle,
    id: &str,
    name: &str,
    preview: Option<&str>,
    item_json: impl FnOnce() -> Option<String>,
) -> bool {
    if lowered_contains(name, needle) || lowered_contains(id, needle) {
        return true;
    }
    let Some(preview) = preview else { return false };
    if !(needle.contains('\u{FFFD}') && preview.contains('\u{FFFD}')) {
        return lowered_contains(preview, needle);
    }
    // Python lowers a lone surrogate to itself, and no needle holds one (a query is decoded
    // with errors="replace"), so a match lies between them.
    let Some(exact) = item_json().as_deref().and_then(item_preview) else { return false };
    exact.split(|&cp| (0xD800..0xE000).contains(&cp)).any(|run| {
        let run: String = run.iter().filter_map(|&cp| char::from_u32(cp)).collect();
        py_lower(&run).contains(needle.as_str())
    })
}

/// A text to find in others as Python lowers them, itself lowered, with the part of it a
/// search looks for first where a text must be lowered a character at a time (see
/// `anchored_find`).
#[derive(Clone, Debug)]
pub struct Needle {
    text: String,
    anchor: Option<Anchor>,
}

/// What [`anchored_find`] looks for first, and how many of the needle's characters precede it.
#[derive(Clone, Debug)]
struct Anchor {
    what: AnchorKind,
    before: usize,
}

#[derive(Clone, Debug)]
enum AnchorKind {
    /// A run of the needle's ASCII characters, found in any case.
    Ascii(String),
    /// One of its characters outside ASCII, found by the UTF-8 of every character that lowers
    /// to it alone (`п` by `п` and `П`), scanned for by their last bytes (three at most).
    Char { ways: Vec<Vec<u8>>, last_bytes: [u8; 3] },
}

impl Needle {
    /// The needle of `text`, which is lowered already (by [`py_lower`], as [`search_needle`]
    /// gives it).
    pub fn new(text: String) -> Needle {
        let anchor = (!text.is_ascii()).then(|| Anchor::of(&text)).flatten();
        Needle { text, anchor }
    }

    /// The lowered text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::ops::Deref for Needle {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl Anchor {
    /// A needle's longest run of ASCII characters when that is 3 bytes or more (rare enough to
    /// scan for); else the character outside ASCII whose ways end in the fewest bytes, when
    /// those are three at most; else its longest run of ASCII, if it has one.
    fn of(needle: &str) -> Option<Anchor> {
        let before = |at: usize| needle[..at].chars().count();
        let run = needle.split(|c: char| !c.is_ascii()).max_by_key(|run| run.len()).filter(|run| !run.is_empty());
        let ascii =
            |run: &str| Some(Anchor { what: AnchorKind::Ascii(run.to_owned()), before: before(needle.find(run)?) });
        if let Some(run) = run.filter(|run| run.len() >= 3) {
            return ascii(run);
        }
        let by_char = needle
            .char_indices()
            .filter(|(_, c)| !c.is_ascii())
            .filter_map(|(at, c)| {
                let ways: Vec<Vec<u8>> = lowered_from(c)
                    .into_iter()
                    .filter(|&x| py_lower_char(x).eq([c]))
                    .map(|x| x.to_string().into_bytes())
                    .collect();
                let mut last: Vec<u8> = ways.iter().filter_map(|w| w.last().copied()).collect();
                last.sort_unstable();
                last.dedup();
                let last_bytes = match last[..] {
                    [a] => [a; 3],
                    [a, b] => [a, b, b],
                    [a, b, c] => [a, b, c],
                    _ => return None,
                };
                Some((last.len(), at, AnchorKind::Char { ways, last_bytes }))
            })
            .min_by_key(|&(distinct, at, _)| (distinct, at));
        match by_char {
            Some((_, at, what)) => Some(Anchor { what, before: before(at) }),
            None => run.and_then(ascii),
        }
    }

    /// Where in `text` the anchor starts, each place in order.
    fn places<'a>(&'a self, text: &'a str) -> impl Iterator<Item = usize> + 'a {
        let bytes = text.as_bytes();
        let (ascii, by_char) = match &self.what {
            AnchorKind::Ascii(run) => (Some(ascii_lowered_starts(bytes, run.as_bytes())), None),
            AnchorKind::Char { ways, last_bytes: [a, b, c] } => {
                let starts = memchr::memchr3_iter(*a, *b, *c, bytes).filter_map(move |last| {
                    let end = last + 1;
                    ways.iter().find(|w| bytes[..end].ends_with(w)).map(|w| end - w.len())
                });
                (None, Some(starts))
            }
        };
        // One iterator of either kind.
        ascii.into_iter().flatten().chain(by_char.into_iter().flatten())
    }
}

/// The characters outside ASCII that lower to an ASCII letter: İ (to "i̇") and the Kelvin sign.
pub(crate) const LOWERING_TO_ASCII: [&str; 2] = ["\u{130}", "\u{212A}"];

/// `py_lower(text).contains(needle)`, without lowering a copy when the needle is ASCII
/// and the text holds neither of [`LOWERING_TO_ASCII`] (a search tests every listed
/// conversation, and `search` every message; most needles are ASCII).
pub(crate) fn lowered_contains(text: &str, needle: &Needle) -> bool {
    lowered_find(text, needle, false).is_some()
}

/// Where `py_lower(text)` first holds `needle` (with `words`, standing as a word: see
/// [`stands_alone`]; grep's `-w`), as a place in `text`, in bytes. On the byte path, and where
/// the needle's anchor finds it ([`anchored_find`]), that is where the match starts; where a
/// lowered copy is searched, it is the place of as many
/// characters as precede the match there (lowering keeps a character's count in all but a
/// few letters).
pub(crate) fn lowered_find(text: &str, needle: &Needle, words: bool) -> Option<usize> {
    let fits = |text: &str, at: usize| !words || stands_alone(text, at, at + needle.len());
    if !needle.is_empty() && needle.chars().all(only_itself_lowers_to) {
        // Lowering neither changes nor makes any character of it (Chinese, digits): it is in
        // the lowered text where it is in the text, and lowering keeps whether the characters
        // either side are of a word.
        return starts_in(text, needle).find(|&at| fits(text, at));
    }
    let holds = |c: &str| memchr::memmem::find(text.as_bytes(), c.as_bytes()).is_some();
    let lowers_to_ascii = !text.is_ascii() && LOWERING_TO_ASCII.iter().any(|c| holds(c));
    if let Some(anchor) = &needle.anchor {
        // Each of the text's characters then lowers to one, by itself alone.
        if !lowers_to_ascii && !holds("\u{3A3}") {
            return anchored_find(text, needle, anchor, words);
        }
    }
    if !needle.is_ascii() || lowers_to_ascii {
        let lowered = py_lower(text);
        let at = starts_in(&lowered, needle).find(|&at| fits(&lowered, at))?;
        let chars = lowered[..at].chars().count();
        return Some(text.char_indices().nth(chars).map_or(text.len(), |(at, _)| at));
    }
    if needle.is_empty() {
        return fits(text, 0).then_some(0);
    }
    // The text's ASCII bytes lower to ASCII, its other bytes (of characters that lower to
    // characters outside ASCII) match no byte of the needle. A match starts and ends at an
    // ASCII byte, so between characters.
    ascii_lowered_starts(text.as_bytes(), needle.as_bytes()).find(|&at| fits(text, at))
}

/// [`lowered_find`] for a needle outside ASCII in a text each of whose characters lowers to
/// one by itself alone (none of [`LOWERING_TO_ASCII`], which hold the one that lowers to two,
/// nor a capital sigma, which lowers by what is around it), without lowering the text: each
/// place where the needle's anchor is (a run of its ASCII characters, its letters in any case;
/// or any character that lowers to one of its others) is where a character of the text lowers
/// to it, so a match holding it there starts as many characters before; those characters on
/// are lowered one at a time and compared. A search over prose with characters outside ASCII
/// (`naïve → fix`, `привет`) lowered every message its anchor is in; now it lowers a few
/// characters at each place. The place found is exact, and lowering keeps whether a character
/// is of a word.
fn anchored_find(text: &str, needle: &str, anchor: &Anchor, words: bool) -> Option<usize> {
    anchor.places(text).find_map(|at| {
        let start = match anchor.before {
            0 => at,
            before => text[..at].char_indices().rev().nth(before - 1)?.0,
        };
        let mut rest = text[start..].chars();
        let said = needle.chars().all(|n| rest.next().is_some_and(|c| py_lower_char(c).eq([n])));
        let end = text.len() - rest.as_str().len();
        (said && (!words || stands_alone(text, start, end))).then_some(start)
    })
}

/// The characters that lower to one holding `c`: itself, its capitals, and those of
/// [`LOWERING_ELSEWHERE`] that do (a superset: a test checks every character that lowers).
pub(crate) fn lowered_from(c: char) -> Vec<char> {
    let elsewhere = LOWERING_ELSEWHERE.iter().flat_map(|&(first, last)| first..=last);
    let mut from: Vec<char> = std::iter::once(c)
        .chain(c.to_uppercase())
        .chain(elsewhere.filter(|&x| py_lower_char(x).any(|l| l == c)))
        .collect();
    from.sort_unstable();
    from.dedup();
    from
}

/// The characters outside ASCII that lower to a character whose capital is not them (or to
/// several, one of them outside ASCII): İ (to "i̇"), the titlecase digraphs and Greek letters
/// with iota, ϴ, ẞ and the ohm and ångström signs.
const LOWERING_ELSEWHERE: [(char, char); 15] = [
    ('\u{130}', '\u{130}'),
    ('\u{1C5}', '\u{1C5}'),
    ('\u{1C8}', '\u{1C8}'),
    ('\u{1CB}', '\u{1CB}'),
    ('\u{1F2}', '\u{1F2}'),
    ('\u{3F4}', '\u{3F4}'),
    ('\u{1E9E}', '\u{1E9E}'),
    ('\u{1F88}', '\u{1F8F}'),
    ('\u{1F98}', '\u{1F9F}'),
    ('\u{1FA8}', '\u{1FAF}'),
    ('\u{1FBC}', '\u{1FBC}'),
    ('\u{1FCC}', '\u{1FCC}'),
    ('\u{1FFC}', '\u{1FFC}'),
    ('\u{2126}', '\u{2126}'),
    ('\u{212B}', '\u{212B}'),
];

/// Whether `c` lowers to itself alone, and no other character lowers to one holding it: an
/// ASCII character but a letter, or one of the scripts of East Asia, which have no case
/// (ideographs, kana, Hangul, their punctuation and full-width punctuation and digits). A test
/// checks every character's lowering.
fn only_itself_lowers_to(c: char) -> bool {
    match c {
        _ if c.is_ascii() => !c.is_ascii_alphabetic(),
        '\u{3000}'..='\u{9FFF}' | '\u{AC00}'..='\u{D7A3}' | '\u{FF01}'..='\u{FF20}' => true,
        _ => false,
    }
}

/// Where `needle` starts in `lowered`, each place (overlapping ones too).
fn starts_in<'a>(lowered: &'a str, needle: &'a str) -> impl Iterator<Item = usize> + 'a {
    let mut from = 0;
    std::iter::from_fn(move || {
        let at = from + lowered.get(from..)?.find(needle)?;
        from = at + lowered[at..].chars().next().map_or(1, char::len_utf8);
        Some(at)
    })
}

/// Whether `text[start..end]` stands as a word: no character of a word just before or after
/// (Unicode's: a letter, a mark such as a combining accent, a digit, a connector such as `_`),
/// as ripgrep's `-w` reads words.
pub(crate) fn stands_alone(text: &str, start: usize, end: usize) -> bool {
    let word = regex_syntax::is_word_character;
    !text[..start].chars().next_back().is_some_and(word) && !text[end..].chars().next().is_some_and(word)
}

/// Whether `text`, its ASCII letters lowered, holds `needle` (lowered ASCII).
fn contains_ascii_lowered(text: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || ascii_lowered_starts(text, needle).next().is_some()
}

/// Where `text`, its ASCII letters lowered, holds `needle` (lowered ASCII, not empty), in
/// order: it matches where its rarest byte does, in either case, and the rest around it in any
/// case. The rarest, not the first: a needle starting with a space (` quokka`) or an `e` would
/// stop the scan every few bytes.
pub(crate) fn ascii_lowered_starts<'a>(text: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    let k = rarest_at(needle);
    memchr::memchr2_iter(needle[k], needle[k].to_ascii_uppercase(), text).filter_map(move |at| {
        let start = at.checked_sub(k)?;
        text.get(start..start + needle.len()).is_some_and(|w| w.eq_ignore_ascii_case(needle)).then_some(start)
    })
}

/// Finds a plain ASCII text (lowered) in long texts, its letters in any case: what a search
/// tests every line of every log for. One memchr scan for its rarest byte stops wherever that
/// byte is, which in prose may be every hundred bytes or so; a Teddy search (SIMD, several
/// texts at once) for every case of its rarest few bytes stops only where all of them are. Each
/// place found is checked whole. Where Teddy has no vectors to run on (or the text is too short
/// for it to help), the rarest byte is scanned for.
#[derive(Clone, Debug)]
pub(crate) struct AsciiLoweredFinder {
    needle: Vec<u8>,
    /// The Teddy searcher for every case of `needle[at..at + WINDOW]` (or all of a shorter
    /// one), and `at`.
    window: Option<(aho_corasick::packed::Searcher, usize)>,
}

impl AsciiLoweredFinder {
    /// How many of the text's bytes Teddy looks for: 16 cases at most (four letters).
    const WINDOW: usize = 4;

    pub(crate) fn new(needle: &[u8]) -> AsciiLoweredFinder {
        let len = needle.len().min(Self::WINDOW);
        let window = (len >= 3).then(|| rarest_window(needle, len)).and_then(|at| {
            let cases = every_case(&needle[at..at + len]);
            aho_corasick::packed::Config::new().builder().extend(cases).build().map(|teddy| (teddy, at))
        });
        AsciiLoweredFinder { needle: needle.to_owned(), window }
    }

    pub(crate) fn needle(&self) -> &[u8] {
        &self.needle
    }

    /// Whether `text`, its ASCII letters lowered, holds the needle.
    pub(crate) fn is_in(&self, text: &[u8]) -> bool {
        let Some((teddy, at)) = &self.window else { return contains_ascii_lowered(text, &self.needle) };
        let mut from = 0;
        // One place at a time, each just past the last: Teddy's own iteration would step past
        // the window, and with it over a match that overlaps a window found that was none.
        while let Some(found) = teddy.find_in(text, aho_corasick::Span::from(from..text.len())) {
            let start = found.start().checked_sub(*at);
            if start
                .and_then(|s| text.get(s..s + self.needle.len()))
                .is_some_and(|w| w.eq_ignore_ascii_case(&self.needle))
            {
                return true;
            }
            from = found.start() + 1;
        }
        false
    }
}

/// Where in `needle` the `len` bytes are that are rarest together, as [`COMMONEST_FIRST`]
/// ranks them.
fn rarest_window(needle: &[u8], len: usize) -> usize {
    (0..=needle.len() - len).max_by_key(|&i| needle[i..i + len].iter().map(rank).sum::<usize>()).unwrap_or(0)
}

/// `bytes` in every case its letters may be written in.
fn every_case(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut cases = vec![Vec::new()];
    for &b in bytes {
        let spelt = [b.to_ascii_lowercase(), b.to_ascii_uppercase()];
        let spelt = if b.is_ascii_alphabetic() { &spelt[..] } else { &spelt[..1] };
        cases = cases.iter().flat_map(|case| spelt.iter().map(move |&c| [&case[..], &[c]].concat())).collect();
    }
    cases
}

/// ASCII bytes (letters in either case) from the most to the least common in what gptme writes:
/// English prose, code, JSON. Any not here is rarer still.
const COMMONEST_FIRST: &[u8] = b" etaoinsr\"hl,d:cu.m\\pfgywb0v12k-_3x/45678(9)jqz";

/// Where in `needle` its rarest byte is, as [`COMMONEST_FIRST`] ranks them.
fn rarest_at(needle: &[u8]) -> usize {
    (0..needle.len()).max_by_key(|&i| rank(&needle[i])).unwrap_or(0)
}

/// How rare a byte is: its place in [`COMMONEST_FIRST`], or past its end.
fn rank(b: &u8) -> usize {
    COMMONEST_FIRST.iter().position(|c| c == b).unwrap_or(COMMONEST_FIRST.len())
}

/// The preview's code points as the item holds them, lone surrogates kept.
fn item_preview(item_json: &str) -> Option<Vec<u32>> {
    let mut sc = crate::json::Scanner::new(item_json.as_bytes());
    let mut preview = None;
    sc.object(|sc, key| {
        if key.is("last_message_preview") && sc.peek()? == crate::json::Kind::String {
            preview = Some(sc.string()?.code_points().collect());
            Ok(())
        } else {
            sc.skip()
        }
    })
    .ok()?;
    preview
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowered_contains_is_lowering_then_contains() {
        let texts = [
            "Fix The BUG",
            "fix",
            "",
            "naïve CAFÉ",
            "\u{212A}elvin",
            "İstanbul",
            "ΣΑΣ ΟΔΟΣ",
            "a\u{FFFD}b",
            "— Fix—the bug ✓",
            "Ελ fix Thé BUG",
        ];
        let needles = [
            "",
            "fix",
            "the bug",
            "x the",
            "bug!",
            "fix the bug and more",
            "é",
            "kelvin",
            "i\u{307}",
            "ς",
            "σα",
            "\u{FFFD}",
        ];
        for text in texts {
            for needle in needles {
                let expected = py_lower(text).contains(needle);
                assert_eq!(lowered_contains(text, &Needle::new(needle.to_owned())), expected, "{needle:?} in {text:?}");
            }
        }
        let needle = |text: &str| Needle::new(text.to_owned());
        assert!(
            lowered_contains("Fix The BUG", &needle("the bug")) && lowered_contains("\u{212A}elvin", &needle("kelvin"))
        );
    }

    /// Every code point lowers as Python 3.11's `str.lower()` lowers it (the file
    /// `tools/python-lower.py` wrote), alone and as a character of [`py_lower_char`]; and a
    /// final sigma as Python tells one, beside letters it does not know.
    #[test]
    fn lowers_as_python_does() {
        let python: std::collections::HashMap<u32, String> = include_str!("../../../tests/fixtures/python-lower.txt")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let mut cps = l.split(' ').map(|h| u32::from_str_radix(h, 16).unwrap());
                (cps.next().unwrap(), cps.map(|cp| char::from_u32(cp).unwrap()).collect())
            })
            .collect();
        assert!(python.len() > 1400);
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let expected = python.get(&(c as u32)).cloned().unwrap_or_else(|| c.to_string());
            assert_eq!(py_lower(&c.to_string()), expected, "U+{:04X}", c as u32);
            assert_eq!(py_lower_char(c).collect::<String>(), expected, "U+{:04X}", c as u32);
        }
        for (text, python) in [
            ("AΣ\u{10D50}", "aς\u{10D50}"),
            ("\u{10D50}Σa", "\u{10D50}σa"),
            ("AΣ\u{10D50}B", "aς\u{10D50}b"),
            ("A\u{10D50}Σ", "a\u{10D50}σ"),
            ("AΣ'\u{10D50}", "aς'\u{10D50}"),
            ("ΟΔΟΣ ΣΑΣ", "οδος σας"),
        ] {
            assert_eq!(py_lower(text), python, "{text}");
        }
    }

    /// [`LOWERING_TO_ASCII`] is every character outside ASCII that lowers to anything holding
    /// an ASCII character: the premise of `lowered_contains`' byte path.
    #[test]
    fn only_two_characters_outside_ascii_lower_to_ascii() {
        let found: Vec<String> = (0x80..=0x10FFFF)
            .filter_map(char::from_u32)
            .filter(|c| c.to_lowercase().any(|l| l.is_ascii()))
            .map(String::from)
            .collect();
        // (A final sigma, the one letter `str::to_lowercase` lowers by its place, lowers to ς.)
        assert_eq!(found, LOWERING_TO_ASCII);
    }

    /// What [`only_itself_lowers_to`] holds of lowers to itself alone and is in no other
    /// character's lowering; and lowering keeps whether a character is of a word, at either end
    /// of what it lowers to (so `-w` reads the same bounds in a text and in its lowering).
    #[test]
    fn some_characters_only_themselves_lower_to() {
        let word = regex_syntax::is_word_character;
        let mut held = 0;
        for x in (0..=0x10FFFF).filter_map(char::from_u32) {
            let lowered: Vec<char> = py_lower_char(x).collect();
            if only_itself_lowers_to(x) {
                held += 1;
            }
            for &y in lowered.iter().filter(|&&y| only_itself_lowers_to(y)) {
                assert_eq!(lowered, [x], "{x:?} lowers to {y:?}");
            }
            assert_eq!(word(lowered[0]), word(x), "{x:?}");
            assert_eq!(word(lowered[lowered.len() - 1]), word(x), "{x:?}");
        }
        assert!(held > 30_000, "{held}");
    }

    /// The byte path on random text over letters in both cases and the bytes 0x20 away from
    /// them (`@[` and `` `{ ``, which ASCII case-folding must leave alone), and half the time
    /// characters from beyond ASCII (the two that lower to it among them), with needles cut from
    /// the lowered text (so most match, some at the very end) or made up.
    #[test]
    fn lowered_contains_agrees_on_random_text() {
        let mut rng = crate::test_rng::Rng(0x9E37_79B9_7F4A_7C15);
        let mut below = |n: usize| rng.index(n);
        let ascii = ['a', 'A', 'b', 'B', 'z', 'Z', '@', '[', '`', '{', ' ', '0', '_'];
        // Among them, letters found by themselves and their capitals (п, П), by three ways (ǆ: Ǆ
        // and ǅ too), and one (ſ) whose capital lowers to another.
        let more = [
            'é',
            'É',
            '—',
            '\u{212A}',
            'İ',
            'ß',
            'ẞ',
            'Σ',
            '\u{10D50}',
            '\u{301}',
            '٣',
            '索',
            '。',
            '０',
            'п',
            'П',
            'ǅ',
            'ǆ',
            'ſ',
        ];
        for round in 0..40_000 {
            // Half the texts ASCII, half with characters from beyond it.
            let alphabet = if round % 2 == 0 { &ascii[..] } else { &[&ascii[..], &more[..]].concat()[..] };
            let text: String = (0..below(40)).map(|_| alphabet[below(alphabet.len())]).collect();
            let lowered: Vec<char> = py_lower(&text).chars().collect();
            let needle: String = if below(3) > 0 && !lowered.is_empty() {
                let from = below(lowered.len());
                lowered[from..from + below(lowered.len() - from + 1)].iter().collect()
            } else {
                py_lower(&(0..below(4)).map(|_| alphabet[below(alphabet.len())]).collect::<String>())
            };
            let expected = py_lower(&text).contains(&needle);
            let needle = Needle::new(needle);
            assert_eq!(lowered_contains(&text, &needle), expected, "{needle:?} in {text:?}");
            if !text.contains('İ') {
                // The first place, wherever in the needle its rarest byte (or its run of ASCII)
                // is: of as many characters as precede it in the lowered text, each character
                // lowering to one.
                let lowered_text = py_lower(&text);
                let expected = lowered_text.find(needle.as_str()).map(|at| {
                    let chars = lowered_text[..at].chars().count();
                    text.char_indices().nth(chars).map_or(text.len(), |(at, _)| at)
                });
                assert_eq!(lowered_find(&text, &needle, false), expected, "{needle:?} in {text:?}");
            }
            // As a word: somewhere in the lowered characters, with no character of a word
            // beside it (a search refuses a blank text).
            let needle_chars: Vec<char> = needle.chars().collect();
            let word = |i: usize| lowered.get(i).is_some_and(|&c| regex_syntax::is_word_character(c));
            let as_word = (0..lowered.len()).any(|i| {
                let end = i + needle_chars.len();
                lowered.get(i..end) == Some(&needle_chars[..]) && (i == 0 || !word(i - 1)) && !word(end)
            });
            if !needle.is_empty() {
                assert_eq!(lowered_find(&text, &needle, true).is_some(), as_word, "{needle:?} as a word in {text:?}");
            }
        }
    }

    /// What a needle outside ASCII is anchored by: its longest ASCII run when that is 3 bytes
    /// or more, else the character written in the fewest ways (each character that lowers to
    /// it alone: not the `SS` that `ß` capitalises to), else any ASCII run; and how many of
    /// its characters precede it.
    #[test]
    fn a_needle_outside_ascii_is_anchored_by_its_rarest_part() {
        let anchor = |needle: &str| {
            let anchor = Anchor::of(needle)?;
            let what = match anchor.what {
                AnchorKind::Ascii(run) => run,
                AnchorKind::Char { ways, .. } => {
                    ways.iter().map(|w| std::str::from_utf8(w).unwrap()).collect::<Vec<_>>().join("|")
                }
            };
            Some((what, anchor.before))
        };
        let some = |what: &str, before: usize| Some((what.to_owned(), before));
        assert_eq!(anchor("naïve → fix"), some(" fix", 7));
        assert_eq!(anchor("привет"), some("П|п", 0));
        assert_eq!(anchor("é, a"), some(", a", 1));
        assert_eq!(anchor("é, "), some("É|é", 0), "a run shorter than 3 bytes");
        assert_eq!(anchor("a ǆ"), some("Ǆ|ǅ|ǆ", 2));
        assert_eq!(anchor("x ß"), some("ß|ẞ", 2));
        assert_eq!(anchor("дǆ"), some("Д|д", 0), "two ways before three");
        assert_eq!(anchor("ǆд"), some("Д|д", 1));
    }

    /// A needle is looked for by its rarest byte: not a space or an `e`.
    #[test]
    fn a_needle_is_looked_for_by_its_rarest_byte() {
        assert_eq!(rarest_at(b" quokka"), 1, "q");
        assert_eq!(rarest_at(b"the parser"), 4, "p");
        assert_eq!(rarest_at(b"error: e0499"), 11, "9");
        assert_eq!(rarest_at(b"a{b"), 1, "a byte not ranked is rarer than any");
    }

    /// The finder a search tests lines with finds a needle wherever a plain search of the text
    /// lowered does: texts of a few letters in both cases, where windows that are no match
    /// overlap ones that are, and texts shorter than Teddy looks in.
    #[test]
    fn a_finder_finds_what_a_plain_search_finds() {
        let mut rng = crate::test_rng::Rng(0x5EED_F1ED);
        let letters = b"kKaAx ";
        let random = |rng: &mut crate::test_rng::Rng, len: u64| -> Vec<u8> {
            (0..rng.below(len)).map(|_| letters[rng.index(letters.len())]).collect()
        };
        for _ in 0..2_000 {
            let needle = random(&mut rng, 9).to_ascii_lowercase();
            if needle.is_empty() {
                continue;
            }
            let finder = AsciiLoweredFinder::new(&needle);
            // Teddy runs on x86-64 (SSSE3 or AVX2) and 64-bit ARM (NEON): the test is of it.
            if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
                assert_eq!(finder.window.is_some(), needle.len() >= 3, "{needle:?}");
            }
            for _ in 0..20 {
                let text = random(&mut rng, 120);
                let plain = memchr::memmem::find(&text.to_ascii_lowercase(), &needle).is_some();
                assert_eq!(finder.is_in(&text), plain, "{needle:?} in {:?}", String::from_utf8_lossy(&text));
            }
        }
        let finder = AsciiLoweredFinder::new(b"kkkkx");
        assert!(finder.is_in(b"KKKKKX"), "a window found at 0, the match at 1");
        assert_eq!(rarest_window(b"the quokka", 4), 4, "quok");
        assert_eq!(every_case(b"a-b"), [&b"a-b"[..], b"a-B", b"A-b", b"A-B"]);
    }

    /// As Python's `needle in preview.lower()`: a lone surrogate is stored as U+FFFD, but only
    /// a real U+FFFD is found by a search for one (`q=%FF` asks for one).
    #[test]
    fn a_search_tells_a_lone_surrogate_from_the_replacement_character() {
        let hit = |needle: &str, preview_json: &str| {
            let item = format!(r#"{{"id": "c", "last_message_preview": {preview_json}, "name": "c"}}"#);
            let preview = crate::json::Scanner::new(preview_json.as_bytes()).string().unwrap().decode_lossy();
            search_hit(&Needle::new(needle.to_owned()), "c", "c", Some(&preview), || Some(item.clone()))
        };
        assert!(!hit("\u{FFFD}", r#""W\ud800x""#));
        assert!(!hit("w\u{FFFD}", r#""W\ud800x""#));
        assert!(hit("w", r#""W\ud800x""#));
        assert!(hit("\u{FFFD}", r#""W\ud800x\ufffd""#));
        assert!(hit("x\u{FFFD}", r#""W\udc00X\ufffd""#));
        assert!(hit("w\u{FFFD}", "\"W\u{FFFD}\""));
        assert!(!hit("\u{FFFD}", r#""W""#));
    }
}
