use std::io::Write;

use clap::{Args, ValueEnum};

use super::list::Narrow;
use super::{conversation_label, local_time, printable, progress, Target};
use crate::format::gptme::content::{Matching, Roles, Shown, Texts, EXCERPT_CHARS};
use crate::message_search::{self, Query, Sort};

#[derive(Args)]
pub struct SearchArgs {
    #[command(flatten)]
    target: Target,
    /// The text to look for in what the messages say (any case, as gptme's `chats search`
    /// looks, unless -s); given several, a message must say each of them, anywhere in it (quote a phrase
    /// to keep it one text)
    #[arg(required = true, num_args = 1.., value_name = "TEXT")]
    texts: Vec<String>,
    /// How many conversations, the first in the order of --sort (0: all that match)
    #[arg(short = 'n', long, default_value_t = 20, value_name = "N", value_parser = super::list::count, allow_negative_numbers = true)]
    limit: usize,
    /// Each text only where it stands as a word, no letter, mark, digit or _ touching it (as grep -w):
    /// `-w go` finds "go" and "go," but not "going" or "ago"
    #[arg(short = 'w', long)]
    word: bool,
    /// Each text is a regular expression (Rust's regex syntax), in any case unless it says
    /// `(?-i)` or -s is given; `^` and `$` match at the ends of a content's lines
    #[arg(short = 'E', long)]
    regex: bool,
    /// Each text in the case it is typed in, not in any case (as ripgrep's -s); a regular
    /// expression may still turn any case on, with `(?i)`
    #[arg(short = 's', long, overrides_with_all = ["ignore_case", "smart_case"])]
    case_sensitive: bool,
    /// Each text in any case: the default, here for the hand used to grep -i (of -s, -i and
    /// -S, the last given wins, as in ripgrep)
    #[arg(short = 'i', long, overrides_with_all = ["case_sensitive", "smart_case"])]
    ignore_case: bool,
    /// Smart case (as ripgrep's -S): the texts in the case they are typed in if any has an
    /// upper-case letter (of a regular expression, a literal one), else in any case
    #[arg(short = 'S', long, overrides_with_all = ["case_sensitive", "ignore_case"])]
    smart_case: bool,
    /// The order: newest first, or most matching messages first (ties newest first)
    #[arg(long, value_enum, value_name = "KEY", default_value_t = Sort::Modified)]
    sort: Sort,
    /// How many of each conversation's matching messages to show, the first ones
    #[arg(short = 'm', long, default_value_t = 3, value_name = "N", value_parser = amount, allow_negative_numbers = true)]
    matches: usize,
    /// Show N lines of the message's content before and after each line shown (as grep -C)
    #[arg(short = 'C', long, default_value_t = 0, value_name = "N", value_parser = amount, allow_negative_numbers = true)]
    context: usize,
    /// Show N lines of the content before each line shown, whatever -C says (as grep -B)
    #[arg(short = 'B', long, value_name = "N", value_parser = amount, allow_negative_numbers = true)]
    before_context: Option<usize>,
    /// Show N lines of the content after each line shown, whatever -C says (as grep -A)
    #[arg(short = 'A', long, value_name = "N", value_parser = amount, allow_negative_numbers = true)]
    after_context: Option<usize>,
    /// Search system messages too (the prompt, tool output gptme writes as system)
    #[arg(long, conflicts_with = "role")]
    system: bool,
    /// Only messages of this role: what you asked (user), what was answered (assistant), or
    /// the prompt and tool output (system)
    #[arg(long, value_name = "ROLE", value_parser = ["user", "assistant", "system"])]
    role: Option<String>,
    /// Print a JSON array: each conversation's id, name, path (its log), modified, how many messages match and
    /// the first of them (line in the log, role, timestamp, excerpt, and with -C the lines before and after)
    #[arg(long, conflicts_with = "files_with_matches")]
    json: bool,
    /// Print only each conversation's log path, one a line, as grep -l prints the files (also
    /// --paths, as `list` names it)
    #[arg(short = 'l', long, visible_alias = "paths")]
    files_with_matches: bool,
    /// Print nothing: the exit code alone says whether a message says it (0) or none does (1),
    /// as grep -q; stops at the first conversation that has one
    #[arg(short = 'q', long, conflicts_with_all = ["json", "files_with_matches"])]
    quiet: bool,
    /// With -l, end each path with a NUL byte, not a newline, for `xargs -0` (as grep -Z and
    /// ripgrep's -0): a path may hold a newline
    #[arg(short = '0', long, requires = "files_with_matches")]
    null: bool,
    /// When to mark the matches in colour: on a terminal unless NO_COLOR is set (auto), also
    /// into a pipe (always: `| less -R`), or never (as grep's and ripgrep's --color)
    #[arg(long, alias = "colour", value_enum, value_name = "WHEN", default_value_t = Color::Auto, overrides_with = "color")]
    color: Color,
    #[command(flatten)]
    pub(super) narrow: Narrow,
}

/// When matches are marked in colour.
#[derive(Clone, Copy, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

/// The exit code when nothing was found, as grep's.
pub const NOTHING_FOUND: u8 = 1;
/// The exit code when a log could not be read, or the search failed, as grep's: what was found
/// is printed, but a message that says it may be among what was not read.
pub const TROUBLE: u8 = 2;

/// Searches; the exit code: 0 when a message says it (with `-q`, whatever could not be read),
/// [`NOTHING_FOUND`], or [`TROUBLE`] when a log could not be read.
pub fn run(a: SearchArgs) -> anyhow::Result<u8> {
    let how = Matching { words: a.word, regex: a.regex, case_sensitive: a.case_sensitive && !a.ignore_case };
    let texts = Texts::new(&a.texts, if a.smart_case { how.smart_case(&a.texts) } else { how })?;
    let workspace = a.narrow.workspace()?;
    let (before, after) = (a.before_context.unwrap_or(a.context), a.after_context.unwrap_or(a.context));
    let index = a.target.open()?;
    progress::refresh(&index, Default::default(), progress::QUIET_FOR)?;
    let query = Query {
        texts: &texts,
        within: a.narrow.within(workspace.as_deref()),
        roles: Roles::asked(a.role.as_deref(), a.system),
        // One conversation found answers `-q`, newest first: the order that stops soonest.
        limit: if a.quiet {
            1
        } else if a.limit == 0 {
            usize::MAX
        } else {
            a.limit
        },
        sort: if a.quiet { Sort::Modified } else { a.sort },
        // Paths alone need no lines read out of the messages.
        shown: Shown {
            matches: if a.files_with_matches || a.quiet { 0 } else { a.matches },
            before,
            after,
            chars: excerpt_chars(a.json),
        },
    };
    let found = message_search::search(&index, &query)?;
    if a.quiet {
        return Ok(match (found.conversations.is_empty(), found.unreadable) {
            (false, _) => 0,
            (true, 0) => NOTHING_FOUND,
            (true, _) => unreadable(found.unreadable),
        });
    }
    let mut out = std::io::BufWriter::new(super::stdout());
    if a.json {
        serde_json::to_writer(&mut out, &found.conversations)?;
        writeln!(out)?;
    } else if a.files_with_matches {
        let end = if a.null { '\0' } else { '\n' };
        for c in &found.conversations {
            write!(out, "{}{end}", c.path)?;
        }
    } else {
        let colored = match a.color {
            Color::Auto => super::colors_on(&std::io::stdout()),
            Color::Always => true,
            Color::Never => false,
        };
        // On a terminal each line is cut to it (a name, never its id; an excerpt at its end);
        // into a pipe, whole.
        let excerpt_room = super::room_after(EXCERPT_INDENT);
        let fitted = |text: &str| super::fit(&printable(text), excerpt_room);
        for (i, c) in found.conversations.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            let messages = if c.matches == 1 { "message" } else { "messages" };
            let count = format!(": {} {messages}", c.matches);
            let room = super::room_after(16 + 2 + count.len()).max(super::width(&printable(&c.id)));
            writeln!(out, "{}  {}{count}", local_time(c.modified), conversation_label(&c.name, &c.id, room))?;
            for (j, m) in c.messages.iter().enumerate() {
                // With context, one message's lines from the next's, as grep parts its groups.
                if j > 0 && before.max(after) > 0 {
                    writeln!(out, "  --")?;
                }
                let excerpt = fitted(&m.excerpt);
                let excerpt = if colored { marked(&excerpt, &texts) } else { excerpt };
                // Context lines sit under the excerpt, as grep's around a match.
                for line in &m.before {
                    writeln!(out, "{:EXCERPT_INDENT$}{}", "", fitted(line))?;
                }
                writeln!(out, "  line {:<5} {:<9}  {excerpt}", m.line, printable(&m.role))?;
                for line in &m.after {
                    writeln!(out, "{:EXCERPT_INDENT$}{}", "", fitted(line))?;
                }
            }
            let unshown = c.matches - c.messages.len();
            // `-m 0` asked for the counts alone.
            if unshown > 0 && a.matches > 0 {
                writeln!(out, "  … and {unshown} more (`-m {}` shows them)", c.matches)?;
            }
        }
    }
    out.flush()?;
    let which = a.narrow.words(workspace.as_deref());
    if found.conversations.is_empty() {
        let says = a.texts.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(" and ");
        super::say(format_args!("no {}{which} has a message that says {says}", a.narrow.noun()));
    } else if found.more {
        let shown = found.conversations.len();
        super::say(format_args!(
            "{} shown; more conversations match (`-n 0` shows them all)",
            super::thousands(shown as u64)
        ));
    }
    Ok(match (found.conversations.is_empty(), found.unreadable) {
        (false, 0) => 0,
        (true, 0) => NOTHING_FOUND,
        (_, unread) => unreadable(unread),
    })
}

/// The columns before an excerpt (`  line 12    assistant  `) and its context lines.
const EXCERPT_INDENT: usize = 24;

/// How many characters of a matching line to keep: [`EXCERPT_CHARS`] (as the HTTP endpoint),
/// or on a terminal wider than that leaves room for, the room there is (less the `…` at each
/// end), so a wide terminal shows more of the message. JSON keeps the endpoint's.
fn excerpt_chars(json: bool) -> usize {
    match json {
        true => EXCERPT_CHARS,
        false => super::terminal_columns().map_or(EXCERPT_CHARS, |c| c.saturating_sub(EXCERPT_INDENT + 2)),
    }
}

/// Says how many logs could not be read; [`TROUBLE`].
fn unreadable(logs: usize) -> u8 {
    let noun = if logs == 1 { "log" } else { "logs" };
    super::say(format_args!("{logs} {noun} could not be read (see the warnings above)"));
    TROUBLE
}

/// The excerpt with every place that says a text in bold red, as grep marks its matches.
fn marked(excerpt: &str, texts: &Texts) -> String {
    let (mut out, mut copied) = (String::new(), 0);
    for at in texts.said_at(excerpt) {
        out.push_str(&excerpt[copied..at.start]);
        out.push_str("\x1b[1;31m");
        out.push_str(&excerpt[at.clone()]);
        out.push_str("\x1b[0m");
        copied = at.end;
    }
    out.push_str(&excerpt[copied..]);
    out
}

/// Parses `--matches` and `--context`: a count, 0 or more. One too large to hold asks for more
/// than there can be, so it is taken as the most there can be.
fn amount(s: &str) -> Result<usize, String> {
    Ok(crate::usage::count(s).ok_or("a count, 0 or more")?)
}

#[cfg(test)]
mod tests {
    use super::{Matching, Texts};

    fn marked(excerpt: &str, texts: &[&str]) -> String {
        marked_as(excerpt, texts, Matching::default())
    }

    fn marked_as(excerpt: &str, texts: &[&str], how: Matching) -> String {
        let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        super::marked(excerpt, &Texts::new(&texts, how).unwrap())
    }

    #[test]
    fn marks_every_match() {
        const ON: &str = "\x1b[1;31m";
        const OFF: &str = "\x1b[0m";
        assert_eq!(marked("Fix the PARSER, parser", &["parser"]), format!("Fix the {ON}PARSER{OFF}, {ON}parser{OFF}"));
        assert_eq!(marked("\u{212A}elvin", &["kel"]), format!("{ON}\u{212A}el{OFF}vin"));
        assert_eq!(marked("nothing", &["parser"]), "nothing");
        assert_eq!(marked("the WAL of sqlite", &["sqlite", "wal"]), format!("the {ON}WAL{OFF} of {ON}sqlite{OFF}"));
        // Overlapping and touching matches are one mark.
        assert_eq!(marked("aaab", &["aa", "ab"]), format!("{ON}aaab{OFF}"));
        assert_eq!(marked("abcd", &["ab", "cd"]), format!("{ON}abcd{OFF}"));
        assert_eq!(marked("é—x", &["—x", "é"]), format!("{ON}é—x{OFF}"));
        // As words: only where none of a letter, digit or `_` touches it.
        let words =
            |excerpt: &str, text: &str| marked_as(excerpt, &[text], Matching { words: true, ..Matching::default() });
        assert_eq!(words("go going ago go_ Go.", "go"), format!("{ON}go{OFF} going ago go_ {ON}Go{OFF}."));
        assert_eq!(words("\u{212A}elvin kelvins", "kelvin"), format!("{ON}\u{212A}elvin{OFF} kelvins"));
        // Regular expressions: every match of each.
        let pattern = |excerpt: &str, pattern: &str, words: bool| {
            marked_as(excerpt, &[pattern], Matching { words, regex: true, ..Matching::default() })
        };
        assert_eq!(
            pattern("the Thread, a throd", "thr(ea|o)d", false),
            format!("the {ON}Thread{OFF}, a {ON}throd{OFF}")
        );
        assert_eq!(pattern("go going ago", "go(ing)?", true), format!("{ON}go{OFF} {ON}going{OFF} ago"));
        // In the case typed: only where the case is the same.
        let exact = Matching { case_sensitive: true, ..Matching::default() };
        assert_eq!(marked_as("Go go GO", &["go"], exact), format!("Go {ON}go{OFF} GO"));
        assert_eq!(marked_as("a.b axb", &["a.b"], exact), format!("{ON}a.b{OFF} axb"), "a text is no pattern");
    }
}
