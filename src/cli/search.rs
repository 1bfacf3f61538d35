use std::io::Write;

use clap::Args;

use super::list::Narrow;
use super::{conversation_label, local_time, printable, progress, Target};
use crate::format::gptme::content::Roles;
use crate::message_search::{self, Query};

#[derive(Args)]
pub struct SearchArgs {
    #[command(flatten)]
    target: Target,
    /// The text to look for in what the messages say (any case, as gptme's `chats search`
    /// looks)
    text: String,
    /// How many conversations, newest first (0: all that match)
    #[arg(short = 'n', long, default_value_t = 20, value_name = "N", value_parser = super::list::count, allow_negative_numbers = true)]
    limit: usize,
    /// How many of each conversation's matching messages to show, the first ones
    #[arg(short = 'm', long, default_value_t = 3, value_name = "N")]
    matches: usize,
    /// Search system messages too (the prompt, tool output gptme writes as system)
    #[arg(long, conflicts_with = "role")]
    system: bool,
    /// Only messages of this role: what you asked (user), what was answered (assistant), or
    /// the prompt and tool output (system)
    #[arg(long, value_name = "ROLE", value_parser = ["user", "assistant", "system"])]
    role: Option<String>,
    /// Print a JSON array: each conversation's id, name, modified, how many messages match and
    /// the first of them (line in the log, role, timestamp, excerpt)
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    narrow: Narrow,
}

pub fn run(a: SearchArgs) -> anyhow::Result<()> {
    if crate::format::gptme::search_needle(&a.text).is_none() {
        anyhow::bail!("the text to search for is blank");
    }
    let workspace = a.narrow.workspace()?;
    let index = a.target.open()?;
    progress::refresh(&index, Default::default(), progress::QUIET_FOR)?;
    let query = Query {
        text: &a.text,
        within: a.narrow.within(workspace.as_deref()),
        roles: Roles::asked(a.role.as_deref(), a.system),
        limit: if a.limit == 0 { usize::MAX } else { a.limit },
        matches_shown: a.matches,
    };
    let found = message_search::search(&index, &query)?;
    let mut out = std::io::BufWriter::new(super::stdout());
    if a.json {
        serde_json::to_writer(&mut out, &found.conversations)?;
        writeln!(out)?;
    } else {
        let colored = super::colors_on(&std::io::stdout());
        let needle = a.text.to_lowercase();
        for (i, c) in found.conversations.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            let messages = if c.matches == 1 { "message" } else { "messages" };
            writeln!(
                out,
                "{}  {}: {} {messages}",
                local_time(c.modified),
                conversation_label(&c.name, &c.id, usize::MAX),
                c.matches
            )?;
            for m in &c.messages {
                let excerpt = printable(&m.excerpt);
                let excerpt = if colored { marked(&excerpt, &needle) } else { excerpt };
                writeln!(out, "  line {:<5} {:<9}  {excerpt}", m.line, printable(&m.role))?;
            }
            let unshown = c.matches - c.messages.len();
            if unshown > 0 {
                writeln!(out, "  … and {unshown} more (`-m {}` shows them)", c.matches)?;
            }
        }
    }
    out.flush()?;
    let which = a.narrow.words(workspace.as_deref());
    if found.conversations.is_empty() {
        super::say(format_args!("no listed conversation{which} has a message that says {:?}", a.text));
    } else if found.more {
        super::say(format_args!("more conversations match (`-n 0` shows them all)"));
    }
    if found.unreadable > 0 {
        let logs = if found.unreadable == 1 { "log" } else { "logs" };
        super::say(format_args!("{} {logs} could not be read (see the warnings above)", found.unreadable));
    }
    Ok(())
}

/// The excerpt with the text's first occurrence in bold red, as grep marks a match.
fn marked(excerpt: &str, needle: &str) -> String {
    let found = excerpt.char_indices().find_map(|(at, _)| {
        // Lowering keeps a character's length in all but a few letters: measure what matched.
        let mut lowered = String::new();
        for (i, c) in excerpt[at..].char_indices() {
            lowered.extend(c.to_lowercase());
            if lowered.starts_with(needle) {
                return Some((at, at + i + c.len_utf8()));
            }
            if !needle.starts_with(&lowered) {
                return None;
            }
        }
        None
    });
    match found {
        Some((from, to)) => format!("{}\x1b[1;31m{}\x1b[0m{}", &excerpt[..from], &excerpt[from..to], &excerpt[to..]),
        None => excerpt.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn marks_the_first_match() {
        assert_eq!(super::marked("Fix the PARSER, parser", "parser"), "Fix the \x1b[1;31mPARSER\x1b[0m, parser");
        assert_eq!(super::marked("\u{212A}elvin", "kel"), "\x1b[1;31m\u{212A}el\x1b[0mvin");
        assert_eq!(super::marked("nothing", "parser"), "nothing");
    }
}
