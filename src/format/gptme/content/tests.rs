use regex_automata::meta::Regex;

use super::raw::*;
use super::*;
use crate::format::gptme::lowered::{lowered_from, py_lower, py_lower_char, AsciiLoweredFinder};
use crate::test_rng::Rng;

const SHOWN: Shown = Shown { matches: 10, before: 0, after: 0, chars: EXCERPT_CHARS };

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
    search_log(&path, &texts, roles, Shown { matches: 10, before: 0, after: 0, chars: EXCERPT_CHARS }, &mut Vec::new())
        .unwrap()
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
    let (shown, before, after) = excerpt(&content, &texts("NEEDLE"), Shown { before: 1, after: 1, ..SHOWN });
    assert_eq!(
        (shown.as_str(), before, after),
        ("two needle", vec!["one".to_owned()], vec![format!("{}…", &long[..100])])
    );
    let (_, before, after) = excerpt(&content, &texts("needle"), Shown { before: 5, after: 5, ..SHOWN });
    assert_eq!((before, after.len()), (vec!["zero".to_owned(), "one".to_owned()], 2));
    // One side alone (grep's -B and -A).
    let (_, before, after) = excerpt(&content, &texts("needle"), Shown { before: 2, after: 0, ..SHOWN });
    assert_eq!((before, after.len()), (vec!["zero".to_owned(), "one".to_owned()], 0));
    let (_, before, after) = excerpt(&content, &texts("needle"), Shown { before: 0, after: 1, ..SHOWN });
    assert_eq!((before.len(), after.len()), (0, 1));
    // As many lines as there can be: all of them (this once overflowed and panicked).
    let (_, before, after) =
        excerpt(&content, &texts("needle"), Shown { before: usize::MAX, after: usize::MAX, ..SHOWN });
    assert_eq!((before.len(), after.len()), (2, 2));
    assert_eq!(
        excerpt(&content, &texts("zero"), Shown { before: 0, after: 0, ..SHOWN }),
        ("zero".to_owned(), vec![], vec![])
    );
    let (shown, before, after) = excerpt(&content, &texts("one\r\ntwo"), Shown { before: 2, after: 2, ..SHOWN });
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
const OUTSIDE_ASCII: [&str; 13] =
    ["д", "Д", "\\u0434", "\\u0414", "数", "\\u6570", "Σ", "\\u03A3", "ς", "\\ud83d\\ude00", "ǅ", "\\u01c5", "\\u0307"];

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
        "sqlite", "wal", "a", "é", "k", "\"", "a/", "e wal", "x x", "q", "na", "u00", "00e9", "0041", "ax", "i", "д",
        "数", "ς", "σ", "😀", "ǆ", "i\u{307}", "aд", "wal数", "数据", "数 a", "据数", "0数", "数\\", "n数", "aé",
        "é a", "xд", "до", "д о", "одд", "😀д", "од\"", "дk", "đ", "đx",
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
        let needles: Vec<String> = (0..1 + rng.below(2)).map(|_| texts[rng.index(texts.len())].to_owned()).collect();
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
    search_log(
        &path,
        texts,
        Roles::NotSystem,
        Shown { matches: 10, before: 0, after: 0, chars: EXCERPT_CHARS },
        &mut Vec::new(),
    )
    .unwrap()
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
        let pattern = if words { format!(r"\b{{start-half}}(?:{pattern})\b{{end-half}}") } else { pattern.to_owned() };
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
        let escapes = [("\\u0051", true), ("\\u017F", true), ("\\u0130", true), ("\\u00e9", false), ("\\u0451", false)];
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
    let needles =
        ["a", "ab", "k", "b a", "i", "ba", "é", "ς", "д", "数", "😀", "i\u{307}", "aд", "ǆ", "\"a", "a\u{1b}", "a/"];
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

/// Smart case takes the texts in their case when any has an upper-case letter; of a pattern,
/// a literal one (in a class too, or written as a code point), not an escape's or a class
/// name's.
#[test]
fn smart_case_looks_for_an_upper_case_letter() {
    let sensitive = |texts: &[&str], regex: bool| {
        let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        Matching { regex, ..Matching::default() }.smart_case(&texts).case_sensitive
    };
    for (texts, plain, pattern) in [
        (&["wal"][..], false, false),
        (&["WAL"], true, true),
        (&["sqlite", "WAL"], true, true),
        (&["éclair", "Été"], true, true),
        (&["ß"], false, false),
        (&["\\S+x"], true, false),
        (&["x\\pL", "\\W\\D"], true, false),
        (&["x\\p{Greek}"], true, false),
        (&["[A-Z]x"], true, true),
        (&["[a-zÀ]"], true, true),
        (&["(?i)abc"], false, false),
        (&["\\x41"], false, true),
        (&["(Unclosed"], true, true),
    ] {
        assert_eq!((sensitive(texts, false), sensitive(texts, true)), (plain, pattern), "{texts:?}");
    }
}
