//! `convmeta search` over every log of an archive (a text no message holds, so every line is
//! looked at; a common word, so most messages are decoded and tested, and the same as a word
//! (`--word`; gptme's way then matches it between two `\b`); a text outside ASCII; a very common letter
//! with the absent text, two texts a message must both say; regular expressions, tested first
//! for a text every match starts with, ends with or holds), against gptme's way in Rust (each
//! line parsed into `serde_json::Value`, each content lowered and tested; for a regular
//! expression, the content matched against it instead) and a plain byte search of the same
//! files (the floor, for the longest text or one every match holds), on as many threads. A
//! second archive writes a character outside ASCII every few words, escaped, as models and
//! tools write them (curly quotes, emoji, a directory tree, colour codes, Chinese).

use convmeta::format::gptme::content::{Matching, Shown, Texts, EXCERPT_CHARS};
use convmeta::index::Index;
use convmeta::message_search::{self, Query};
use regex_automata::meta::Regex;
use regex_automata::util::syntax;

use crate::core::{logs_files, par_files};
use crate::{gen, ms, rounds, scaled, timed};

/// What gptme's `chats search` does with one log: the messages, not system ones, whose
/// content, lowered, holds each of `needles` (gptme takes one).
fn naive_matches(log: &[u8], needles: &[String]) -> usize {
    log.split(|&c| c == b'\n')
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .filter(|m| m["role"].as_str().is_some_and(|r| r != "system"))
        .filter(|m| {
            m["content"].as_str().is_some_and(|c| {
                let lowered = c.to_lowercase();
                needles.iter().all(|n| lowered.contains(n.as_str()))
            })
        })
        .count()
}

/// The same with a regular expression, as `search --regex` reads one.
fn naive_regex_matches(log: &[u8], regex: &Regex) -> usize {
    log.split(|&c| c == b'\n')
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .filter(|m| m["role"].as_str().is_some_and(|r| r != "system"))
        .filter(|m| m["content"].as_str().is_some_and(|c| regex.is_match(c)))
        .count()
}

pub fn search() {
    let plain = Matching::default();
    let regex = Matching { regex: true, ..plain };
    let words = Matching { words: true, ..plain };
    // The texts, whether they are patterns, and what the floor looks for (the longest text,
    // or a text every match of the pattern holds).
    table(
        "",
        gen::WORDS,
        &[
            (&["quokka"], plain, "quokka"),
            (&["Thread"], plain, "Thread"),
            (&["thread"], words, "thread"),
            (&["a", "quokka"], plain, "quokka"),
            (&["the quokka"], plain, "the quokka"),
            // Outside ASCII, written escaped (as gptme writes it): looked for by one character's ways.
            (&["数据"], plain, "\\u6570"),
            // Both words in most messages, side by side in some: the rest decoded and tested.
            (&["café parse"], plain, "caf\\u00e9 parse"),
            (&["quokk?a"], regex, "quoka"),
            (&["thr(ea|o)d"], regex, "throd"),
            (&["thr(ea|o)d"], Matching { words: true, ..regex }, "throd"),
            (&[r"\w+ quokkas? \w+"], regex, " quokka"),
        ],
    );
    // Prose with a character outside ASCII every few words, each escaped.
    table(
        ", prose with Unicode",
        gen::WORDS_WITH_UNICODE,
        &[
            (&["quokka"], plain, "quokka"),
            (&["the quokka"], plain, "the quokka"),
            (&["数据"], plain, "\\u6570"),
            (&["索引"], plain, "\\u7d22\\u5f15"),
            (&["café"], plain, "caf\\u00e9"),
            // Both words in most messages, side by side in some: the rest decoded and tested.
            (&["don’t parse"], plain, "don\\u2019t parse"),
        ],
    );
    // Russian prose, every letter escaped: a line holds most letters, in either case.
    let russian = gen::words_in_russian();
    table(
        ", prose in Russian",
        &russian.iter().map(String::as_str).collect::<Vec<_>>(),
        &[
            (&["quokka"], plain, "quokka"),
            // No message says it, but most say its letters: each looked in around them.
            (&["кошка"], plain, "\\u043a\\u043e\\u0448\\u043a\\u0430"),
            // In most messages, in either case.
            (&["привет"], plain, "\\u043f\\u0440\\u0438\\u0432\\u0435\\u0442"),
            (
                &["ошибка разбора"],
                plain,
                "\\u043e\\u0448\\u0438\\u0431\\u043a\\u0430 \\u0440\\u0430\\u0437\\u0431\\u043e\\u0440\\u0430",
            ),
        ],
    );
}

/// One table: the `texts` searched for over an archive whose prose is of `vocabulary`.
fn table(title: &str, vocabulary: &[&str], texts: &[(&[&str], Matching, &str)]) {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let n = scaled(400);
    let bytes = gen::archive(&logs, n, 44, gen::line_count, vocabulary);
    let index = Index::open(&logs, &tmp.path().join("db.sqlite3")).unwrap();
    index.refresh().unwrap();
    let files = logs_files(&logs);
    let jobs = convmeta::refresh::default_jobs();
    println!(
        "\n## search{title}: {n} conversations, {:.0} MB, {jobs} threads, warm page cache, 7 rounds",
        bytes as f64 / 1e6
    );
    println!("| text | messages found | convmeta search | gptme's way (serde_json::Value) | byte search (floor) | gptme's way over convmeta | convmeta over the floor |");
    println!("|---|---|---|---|---|---|---|");
    for &(texts, how, longest) in texts {
        let needles: Vec<String> = texts.iter().map(|t| t.to_lowercase()).collect();
        let text = texts.join("`, `")
            + match (how.regex, how.words) {
                (false, false) => "`",
                (false, true) => "` (--word)",
                (true, false) => "` (--regex)",
                (true, true) => "` (--regex --word)",
            };
        let longest = longest.as_bytes();
        // As a word, a text (or pattern) that starts and ends with a word's character is the
        // text between two `\b`.
        let naive_pattern = match (how.regex, how.words) {
            (_, false) => texts[0].to_owned(),
            (false, true) => format!(r"\b{}\b", regex_syntax::escape(texts[0])),
            (true, true) => format!(r"\b(?:{})\b", texts[0]),
        };
        let naive_regex = Regex::builder()
            .syntax(syntax::Config::new().case_insensitive(true).multi_line(true))
            .build(&naive_pattern)
            .unwrap();
        let texts = Texts::new(&texts.iter().map(|t| t.to_string()).collect::<Vec<_>>(), how).unwrap();
        let query = Query {
            texts: &texts,
            within: Default::default(),
            roles: Default::default(),
            limit: usize::MAX,
            sort: Default::default(),
            shown: Shown { matches: 3, before: 0, after: 0, chars: EXCERPT_CHARS },
        };
        let (mut ours, mut theirs) = (0, 0);
        let r = rounds(
            7,
            &mut [
                &mut || {
                    timed(|| {
                        let found = message_search::search(&index, &query).unwrap();
                        ours = found.conversations.iter().map(|c| c.matches).sum();
                    })
                },
                &mut || {
                    timed(|| {
                        theirs = match how.regex || how.words {
                            false => par_files(&files, jobs, |b| naive_matches(b, &needles)),
                            true => par_files(&files, jobs, |b| naive_regex_matches(b, &naive_regex)),
                        }
                    })
                },
                &mut || timed(|| _ = par_files(&files, jobs, |b| memchr::memmem::find_iter(b, longest).count())),
            ],
        );
        assert_eq!(ours, theirs, "{text}: convmeta and gptme's way find as many messages");
        println!(
            "| `{text} | {ours} | {:.0} ms | {:.0} ms | {:.0} ms | {} | {} |",
            ms(r.median(0)),
            ms(r.median(1)),
            ms(r.median(2)),
            r.ratio(1, 0),
            r.ratio(0, 2)
        );
    }
}
