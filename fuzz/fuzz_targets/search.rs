//! `search` against a plain reader: a log's messages, each line parsed whole by serde_json and
//! its content tested by the texts' plain meaning (lowered and held; as a word; in its own
//! case; a regular expression), must count what `search_log` counts, with its byte test of
//! each line, its tests of the string as written (between escapes, a text written whole) and
//! its decoding; but for a regular expression in any case that may meet an İ or ı, which
//! convmeta takes for an i, as Python's `re` does, and the reference does not. The content's
//! bytes are the fuzzer's, written into the JSON string as they are, so every kind of escape,
//! and none, reaches the byte-level code. Also: nothing panics, on any input, valid JSON or
//! not.
//!
//! Input: a flags byte (bit 0 words, bit 1 own case, bit 2 regular expressions, bit 3 the
//! messages are the system's), then parts parted by 0xFF: the texts (parted by 0xFD), then one
//! line's content each, where 0xFC and the byte after it write one of the texts (see
//! [`with_texts`]).
#![no_main]

use convmeta::format::gptme::content::{search_log, Matching, Roles, Shown, Texts, EXCERPT_CHARS};
use convmeta::format::gptme::lowered::py_lower;
use libfuzzer_sys::fuzz_target;
use regex_automata::meta::Regex;
use regex_automata::util::syntax;

/// The plain meaning of a text as `how` asks: whether a content says it. None for a pattern
/// the reference cannot build (a `(?x)` comment that swallows the bounds put around it).
fn meaning(text: &str, how: Matching) -> Option<Box<dyn Fn(&str) -> bool>> {
    if how.regex || how.case_sensitive {
        let pattern = if how.regex { text.to_owned() } else { regex_syntax::escape(text) };
        let pattern = if how.words { format!(r"\b{{start-half}}(?:{pattern})\b{{end-half}}") } else { pattern };
        let config = syntax::Config::new().case_insensitive(!how.case_sensitive).multi_line(true).crlf(true);
        let regex = Regex::builder().syntax(config).build(&pattern).ok()?;
        return Some(Box::new(move |content| regex.is_match(content)));
    }
    let text = py_lower(text);
    let words = how.words;
    Some(Box::new(move |content| {
        let content = py_lower(content);
        let word = |c: Option<char>| c.is_some_and(regex_syntax::is_word_character);
        content.char_indices().any(|(at, _)| {
            content[at..].starts_with(&text)
                && (!words
                    || !word(content[..at].chars().next_back()) && !word(content[at + text.len()..].chars().next()))
        })
    }))
}

/// Whether a pattern read in any case has a class (or a letter) that holds İ or ı but neither
/// i nor I: then convmeta, taking the four for one letter as Python's `re` does, finds an i
/// where the regex crate does not. (Elsewhere the two differ only in a content that holds İ or
/// ı.)
fn adds_an_i(pattern: &str) -> bool {
    use regex_syntax::hir::{Class, Hir, HirKind};
    fn walk(hir: &Hir) -> bool {
        match hir.kind() {
            HirKind::Class(Class::Unicode(class)) => {
                let holds = |c: char| class.iter().any(|r| (r.start()..=r.end()).contains(&c));
                (holds('\u{130}') || holds('\u{131}')) && !holds('i') && !holds('I')
            }
            HirKind::Literal(literal) => String::from_utf8_lossy(&literal.0).contains(['\u{130}', '\u{131}']),
            HirKind::Repetition(r) => walk(&r.sub),
            HirKind::Capture(c) => walk(&c.sub),
            HirKind::Concat(parts) | HirKind::Alternation(parts) => parts.iter().any(walk),
            _ => false,
        }
    }
    let mut parser = regex_syntax::ParserBuilder::new().case_insensitive(true).build();
    parser.parse(pattern).map_or(true, |hir| walk(&hir))
}

/// The content of a line that is plainly a message of `role` and nothing else; None for any
/// other line (what gptme's reader makes of it is not this test's to say).
fn plain_content(line: &[u8], role: &str) -> Option<String> {
    let serde_json::Value::Object(object) = serde_json::from_slice(line).ok()? else { return None };
    let plain = object.len() == 2 && object.get("role").and_then(|r| r.as_str()) == Some(role);
    object.get("content").and_then(|c| c.as_str()).filter(|_| plain).map(str::to_owned)
}

/// The content's bytes, each 0xFC and the byte after it replaced by one of the texts (that
/// byte modulo their number), written as that byte says: below 64 as it is; 64–127 with each
/// character outside ASCII escaped in uppercase hex; 128–191 so in lowercase, as Python's
/// `json.dumps` escapes it (a pair past U+FFFF); from 192 every character escaped. Texts said
/// in contents, and what the fuzzer makes of the bytes around them, are what the byte-level
/// code's cases turn on; a fuzzer's bytes alone seldom say a text.
fn with_texts(content: &[u8], texts: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut bytes = content.iter();
    while let Some(&b) = bytes.next() {
        let Some(&how) = bytes.clone().next().filter(|_| b == 0xFC) else {
            out.push(b);
            continue;
        };
        bytes.next();
        let text = &texts[usize::from(how) % texts.len()];
        // `all`: ASCII too; `upper`: the hex digits in uppercase.
        let escaped = |c: char, all: bool, upper: bool| -> String {
            let mut units = [0; 2];
            match (c.is_ascii() && !all, upper) {
                (true, _) => c.to_string(),
                (false, false) => c.encode_utf16(&mut units).iter().map(|u| format!("\\u{u:04x}")).collect(),
                (false, true) => c.encode_utf16(&mut units).iter().map(|u| format!("\\u{u:04X}")).collect(),
            }
        };
        let written: String = text.chars().map(|c| escaped(c, how >= 192, (64..128).contains(&how))).collect();
        let written = if how < 64 { text.clone() } else { written };
        out.extend_from_slice(written.as_bytes());
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let how = Matching { words: flags & 1 != 0, case_sensitive: flags & 2 != 0, regex: flags & 4 != 0 };
    let role = if flags & 8 != 0 { "system" } else { "user" };
    let mut parts = rest.split(|&b| b == 0xFF);
    let Some(texts) = parts.next() else { return };
    let Ok(texts) = texts.split(|&b| b == 0xFD).map(|t| String::from_utf8(t.to_vec())).collect::<Result<Vec<_>, _>>()
    else {
        return;
    };
    // Long patterns take long to build, and find nothing short ones do not.
    if texts.iter().any(|t| t.len() > 48) {
        return;
    }
    let Ok(sought) = Texts::new(&texts, how) else { return };
    let lines: Vec<Vec<u8>> = parts
        .map(|content| {
            [br#"{"role": ""#, role.as_bytes(), br#"", "content": ""#, &with_texts(content, &texts), b"\"}"].concat()
        })
        .collect();
    let log = lines.join(&b'\n');

    let Some(meanings) = texts.iter().map(|t| meaning(t, how)).collect::<Option<Vec<_>>>() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("conversation.jsonl");
    std::fs::write(&path, &log).unwrap();
    // Compared only where every line is plainly a message (a `\n` in a content makes none).
    let contents: Option<Vec<String>> = lines.iter().map(|l| plain_content(l, role)).collect();
    // Not where convmeta's `-E` in any case reads İ and ı as i and the regex crate does not.
    let every_i = |c: &String| c.contains(['\u{130}', '\u{131}']);
    if how.regex
        && !how.case_sensitive
        && (contents.iter().flatten().any(every_i) || texts.iter().any(|t| adds_an_i(t)))
    {
        return;
    }
    for roles in [Roles::NotSystem, Roles::All] {
        let found = search_log(&path, &sought, roles, Shown { matches: 3, before: 1, after: 1, chars: EXCERPT_CHARS }, &mut Vec::new()).unwrap();
        let Some(contents) = &contents else { continue };
        let counted = roles == Roles::All || role != "system";
        let expected = contents.iter().filter(|c| counted && meanings.iter().all(|says| says(c))).count();
        assert_eq!(found.count, expected, "{texts:?} {how:?} {roles:?} in {:?}", String::from_utf8_lossy(&log));
    }
});
