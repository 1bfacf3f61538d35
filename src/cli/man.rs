//! `convmeta man`: the manual page, convmeta(1). Its commands and options are rendered by
//! clap_mangen from the definitions `--help` prints, so the two never disagree; the sections
//! `--help` has no room for (environment, files, exit status, examples) are written here.

use std::io::Write;

use clap::{Args, CommandFactory};
use clap_mangen::roff::{bold, italic, roman, Inline, Roff};
use clap_mangen::Man;

use super::Cli;

#[derive(Args)]
pub struct ManArgs {}

/// Prints the page: `convmeta man | man -l -`, or saved as `convmeta.1` in a man directory.
pub fn run(_: ManArgs) -> anyhow::Result<()> {
    Ok(super::stdout().write_all(&page())?)
}

/// The options most commands take, described once (under COMMON OPTIONS), not with each; and
/// `--help`, which every command takes, described under OPTIONS.
const COMMON: [&str; 2] = ["logs", "db"];
const EVERYWHERE: &str = "help";

/// convmeta(1) in roff: one page, every command in it, as ripgrep's rg(1) is, so that one
/// search of the page finds a flag whichever command takes it.
pub fn page() -> Vec<u8> {
    let mut cli = Cli::command().disable_help_subcommand(true);
    // Built, each subcommand is named `convmeta NAME`, for its synopsis.
    cli.build();
    // Every field of the title line given: an empty one would shift the others into its place.
    let man = Man::new(cli.clone()).title("CONVMETA").date(made_on()).manual("User Commands");
    let mut page = written(|w| man.render_title(w));
    page += &written(|w| man.render_name_section(w));
    page += &written(|w| man.render_synopsis_section(w));
    page += &description().render();
    page += &written(|w| man.render_options_section(w));
    page += &macro_line("SH", "COMMANDS");
    for sub in cli.get_subcommands() {
        let man = Man::new(sub.clone());
        let described = COMMON.into_iter().chain([EVERYWHERE]).filter(|id| takes(sub, id));
        let own = described.fold(sub.clone(), |own, id| own.mut_arg(id, |a| a.hide(true)));
        page += &macro_line("SS", sub.get_bin_name().unwrap_or(sub.get_name()));
        page += &unheaded(written(|w| man.render_synopsis_section(w)));
        page += &macro_line("PP", "");
        page += &unheaded(written(|w| man.render_description_section(w)));
        page += &unheaded(written(|w| Man::new(own).render_options_section(w)));
    }
    // Described as the first command that takes them all describes them.
    let common =
        cli.get_subcommands().find(|sub| COMMON.iter().all(|id| takes(sub, id))).expect("a command takes them");
    let common = clap::Command::new("convmeta")
        .disable_help_flag(true)
        .args(COMMON.iter().filter_map(|&id| common.get_arguments().find(|a| a.get_id() == id)).cloned());
    let others: Vec<_> = cli.get_subcommands().filter(|sub| !takes(sub, COMMON[0])).map(|sub| sub.get_name()).collect();
    page += &macro_line("SH", "COMMON OPTIONS");
    page += &Roff::new().text([roman(format!("Every command takes these but {}.", others.join(" and ")))]).render();
    page += &unheaded(written(|w| Man::new(common).render_options_section(w)));
    page += &rest().render();
    // Each part began with roff's definition of the apostrophe: once is enough.
    let apostrophe = Roff::new().render();
    let page = apostrophe.clone() + &page.replace(&apostrophe, "");
    // Tidied as `mandoc -Tlint` asks, the rendering unchanged: clap_mangen's break, blank line
    // and break before a list of values as the blank line they render as, and no blanks at a
    // line's end (but after a backslash, where one is an escaped space).
    let page = page.replace("\n.br\n\n.br\n", "\n.sp\n");
    let page = page.lines().fold(String::new(), |out, line| {
        let trimmed = line.trim_end_matches(' ');
        out + if trimmed.ends_with('\\') { line } else { trimmed } + "\n"
    });
    // Every character outside ASCII as an escape: groff reads its input as Latin-1 unless
    // told otherwise (man-db tells it; plain `groff -man` and `nroff` do not).
    let page = page.chars().fold(String::new(), |mut out, c| {
        match c.is_ascii() {
            true => out.push(c),
            false => out.push_str(&format!("\\[u{:04X}]", c as u32)),
        }
        out
    });
    // Text lines within 80 bytes, as `mandoc -Tlint` asks. The line after `.TP` is the item's
    // tag, one line whatever its length.
    let mut tag_next = false;
    let page = page.lines().fold(String::new(), |out, line| {
        let folded = if tag_next { line.to_owned() } else { fold_text(line, TEXT_WIDTH) };
        tag_next = line == ".TP";
        out + &folded + "\n"
    });
    page.into_bytes()
}

/// How long `mandoc -Tlint` lets a line of text be, in bytes.
const TEXT_WIDTH: usize = 80;

/// A line of roff text as lines of at most `width` bytes where it can be, rendered the same.
/// It is cut only at a single space between two words (a run of spaces is kept as typed), never
/// at an escaped space, after a word that ends a sentence (roff spaces a sentence's end at a
/// line's end wider), or before a word that would make the next line a request (`.` or `'`).
fn fold_text(line: &str, width: usize) -> String {
    if line.len() <= width || line.starts_with(['.', '\'']) {
        return line.to_owned();
    }
    let bytes = line.as_bytes();
    let cuttable = |at: usize| {
        let backslashes = bytes[..at].iter().rev().take_while(|&&b| b == b'\\').count();
        at > 0
            && bytes[at - 1] != b' '
            && bytes.get(at + 1).is_some_and(|&b| !matches!(b, b' ' | b'.' | b'\''))
            && backslashes % 2 == 0
            && !ends_sentence(&line[..at])
    };
    // Greedy: each line ends at the last place to cut that fits, else (a piece with no place to
    // cut that is longer than a line) at the first after it.
    let (mut out, mut start, mut last_fitting) = (String::new(), 0, None);
    let mut cut = |at: usize, start: &mut usize| {
        out.push_str(&line[*start..at]);
        out.push('\n');
        *start = at + 1;
    };
    for (at, _) in line.match_indices(' ').filter(|&(at, _)| cuttable(at)) {
        if at - start > width {
            if let Some(fitting) = last_fitting.take() {
                cut(fitting, &mut start);
            }
            if at - start > width {
                cut(at, &mut start);
                continue;
            }
        }
        last_fitting = Some(at);
    }
    if let Some(fitting) = last_fitting.filter(|_| line.len() - start > width) {
        cut(fitting, &mut start);
    }
    out + &line[start..]
}

/// Whether roff takes `text`, at a line's end, to end a sentence: `.`, `?` or `!`, then perhaps
/// closing quotes and brackets and font changes (`\fR`), which it sees through.
fn ends_sentence(text: &str) -> bool {
    let mut rest = text;
    loop {
        let before = rest.len();
        rest = rest.trim_end_matches(['"', '\'', ')', ']', '*']);
        if rest.len() >= 3 && rest.as_bytes()[rest.len() - 3..rest.len() - 1] == *b"\\f" {
            rest = &rest[..rest.len() - 3];
        }
        if rest.len() == before {
            return rest.ends_with(['.', '?', '!']);
        }
    }
}

/// The day the page is made, as help2man dates its pages: `SOURCE_DATE_EPOCH`'s where set (a
/// package built reproducibly), else today.
fn made_on() -> String {
    let epoch = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.trim().parse().ok());
    match epoch.and_then(|secs| chrono::DateTime::from_timestamp(secs, 0)) {
        Some(at) => at.format("%Y-%m-%d").to_string(),
        None => chrono::Local::now().format("%Y-%m-%d").to_string(),
    }
}

fn takes(cmd: &clap::Command, id: &str) -> bool {
    cmd.get_arguments().any(|a| a.get_id() == id)
}

/// What clap_mangen writes for one part of a page.
fn written(render: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut part = Vec::new();
    render(&mut part).expect("writing to memory cannot fail");
    String::from_utf8(part).expect("roff made of UTF-8 is UTF-8")
}

/// A part without its section headings: a command's sections are all in its subsection.
fn unheaded(part: String) -> String {
    part.lines().filter(|line| !line.starts_with(".SH ")).flat_map(|line| [line, "\n"]).collect()
}

/// One macro: a heading (SH, SS), or a paragraph break (PP, no title).
fn macro_line(name: &str, title: &str) -> String {
    let mut roff = Roff::new();
    match title.is_empty() {
        true => roff.control(name, []),
        false => roff.control(name, [title]),
    };
    roff.render()
}

fn description() -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["DESCRIPTION"]);
    roff.text([roman(
        "convmeta keeps an index of the conversations gptme writes to its logs directory: one row \
         per conversation (name, message count, last model, last message, when it began and last \
         changed, tokens and cost), with usage by model and by day, in an SQLite database of its \
         own (under ~/.cache), never in the logs directory. The commands that answer from it (list, show, search, query, \
         usage, and serve on each request) refresh it first: a stat of each file, then a read of \
         only what changed, and of a log that grew, only the bytes appended. Their answers are as \
         fresh and exact as the logs.",
    )]);
    roff.control("PP", []);
    roff.text([
        roman("Run "),
        bold("convmeta backfill"),
        roman(
            " once to index a large archive on every core. The index is a cache: deleting it loses \
             nothing, and a damaged one is set aside and built again. ",
        ),
        bold("convmeta query --schema"),
        roman(" describes its tables, for SQL."),
    ]);
    roff
}

/// ENVIRONMENT, FILES, EXIT STATUS, EXAMPLES and SEE ALSO.
fn rest() -> Roff {
    let mut roff = Roff::new();
    terms(
        &mut roff,
        "ENVIRONMENT",
        bold,
        &[
            ("GPTME_LOGS_HOME", "The logs directory, when --logs is not given (as gptme reads it)."),
            ("CONVMETA_DB", "The index database, when --db is not given."),
            (
                "XDG_DATA_HOME",
                "gptme's data directory is $XDG_DATA_HOME/gptme (else ~/.local/share/gptme): its logs \
             directory is logs there, and gptme-server's token, which serve reads, server-token.",
            ),
            ("XDG_CACHE_HOME", "Where the index database is kept by default (else ~/.cache)."),
            ("TZ", "The time zone in which timestamps without one are read, and dates are printed and read."),
            (
                "CONVMETA_LOG",
                "Which log lines to print, in tracing's filter syntax (info, debug, convmeta=debug); \
             the default prints warnings and convmeta's own notes (info).",
            ),
            ("NO_COLOR", "When set, nothing is printed in colour."),
            ("TMPDIR", "Where verify makes its scratch index (else /tmp), removed after."),
            (
                "COLUMNS",
                "The terminal's width, where set: list, search, usage, verify and query's table cut what would \
             run past a line's end to it (never into a pipe).",
            ),
            ("GPTME_SERVER_TOKEN", "The bearer token serve asks clients for (--token)."),
            ("GPTME_SERVER_ALLOWED_HOSTS", "Host names serve answers besides local ones (--allowed-hosts)."),
            ("GPTME_DISABLE_AUTH", "When true, serve asks for no token."),
        ],
    );
    terms(
        &mut roff,
        "FILES",
        italic,
        &[
            (
                "$XDG_CACHE_HOME/convmeta/DIR-HASH.sqlite3",
                "The index of the logs directory DIR (one database per archive, named after the \
             directory's real path), with its -wal and -shm files. Made readable by its owner alone: \
             it copies names and excerpts of the conversations.",
            ),
            (
                "LOGS/ID/conversation.jsonl",
                "A conversation's log, read and never written; its config.toml (name, workspace, agent) \
             and branches/*.jsonl are read too, and an agent's gptme.toml.",
            ),
        ],
    );
    terms(
        &mut roff,
        "EXIT STATUS",
        bold,
        &[
            ("0", "Success."),
            (
                "1",
                "An error, said on one line on stderr; for search, that no message says the text; for \
             verify, that the index differs from the archive read afresh.",
            ),
            (
                "2",
                "A usage error (a flag or value clap refuses); for search and verify, any error, as grep's and cmp's.",
            ),
            ("130", "Stopped by Ctrl-C. What a backfill had indexed is kept; the next one goes on from there."),
        ],
    );
    terms(
        &mut roff,
        "EXAMPLES",
        bold,
        &[
            ("convmeta list --since 7d --model opus", "This week's conversations that used Opus."),
            ("convmeta list --workspace . --json", "This project's conversations, as gptme-server lists them."),
            (
                "convmeta search -w borrow checker -C 2",
                "Messages that say both words, each as a word, with two lines around each line shown.",
            ),
            ("convmeta usage --since 2026-11 --by model", "Tokens and cost by model since November began."),
            (
                "convmeta query \"SELECT model, sum(cost) FROM conversation_models GROUP BY model\"",
                "SQL over the index.",
            ),
            (
                "datasette \"$(convmeta status --json | jq -r .db)\" -m <(convmeta query --schema --format json)",
                "The index in datasette, each table and column described, the example queries at hand.",
            ),
            ("convmeta serve --upstream http://127.0.0.1:5700 --watch", "gptme's web UI, its list served by convmeta."),
            ("convmeta verify", "Whether the index holds what reading the whole archive afresh gives."),
        ],
    );
    roff.control("SH", ["SEE ALSO"]);
    roff.text([bold("gptme"), roman("(1), "), bold("sqlite3"), roman("(1)")]);
    roff
}

/// A section of terms, each with what it is: `style` sets the term in bold or italic.
fn terms(roff: &mut Roff, heading: &str, style: fn(&'static str) -> Inline, entries: &[(&'static str, &str)]) {
    roff.control("SH", [heading]);
    for &(term, text) in entries {
        roff.control("TP", []).text([style(term)]).text([roman(text)]);
    }
}

#[cfg(test)]
mod tests {
    use super::{ends_sentence, fold_text};

    #[test]
    fn text_is_folded_only_where_roff_reads_a_line_end_as_the_space() {
        assert_eq!(fold_text("aaa bbb ccc ddd", 8), "aaa bbb\nccc ddd");
        // Never: after a sentence's end, at an escaped space or a run of spaces, before a request.
        assert_eq!(fold_text("aaa. bbb ccc", 5), "aaa. bbb\nccc");
        assert_eq!(fold_text("a\\ bbbbbb c", 3), "a\\ bbbbbb\nc");
        assert_eq!(fold_text("a\\\\ bbbbbb", 4), "a\\\\\nbbbbbb");
        assert_eq!(fold_text("aaa  bbb ccc", 4), "aaa  bbb\nccc");
        assert_eq!(fold_text("aaa .bbb 'ccc ddd", 4), "aaa .bbb 'ccc\nddd");
        // A word longer than a line stands alone; a request or a short line is as it was.
        assert_eq!(fold_text("a bbbbbbbbbb c", 4), "a\nbbbbbbbbbb\nc");
        assert_eq!(fold_text(".TP a b c d e", 3), ".TP a b c d e");
        assert_eq!(fold_text("a b", 3), "a b");
    }

    #[test]
    fn a_sentence_ends_through_quotes_brackets_and_fonts() {
        for ends in ["done.", "done?\\fR", "(done!)", "\"done.\"\\fP)", "e.g."] {
            assert!(ends_sentence(ends), "{ends}");
        }
        for goes_on in ["done", "done,", "3.5x", "\\fBdone\\fR", "done.\\fBx"] {
            assert!(!ends_sentence(goes_on), "{goes_on}");
        }
    }
}
