use std::io::Write;

use clap::Args;

use super::usage::cost;
use super::{
    conversation_label, empty_archive_hint, fit, fit_model, in_workspace, local_time, of_agent, pad, printable,
    progress, room_after, thousands, width, workspace_named, Target,
};
use crate::index::{Filter, Index};
use crate::store::rows::{Order, SortKey, Within};
use crate::usage::{local_day_start, DateSpan};

#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    target: Target,
    /// How many conversations, the first in the list's order: newest first, unless --sort or
    /// --reverse says otherwise (0: all of them).
    #[arg(short = 'n', long, default_value_t = 100, value_name = "N", value_parser = count, allow_negative_numbers = true)]
    limit: usize,
    /// What the list is ordered by, the largest or the newest first; ties newest first.
    #[arg(long, value_enum, value_name = "KEY", default_value_t = SortBy::Modified)]
    sort: SortBy,
    /// The other way round: the oldest, the fewest messages or the cheapest first.
    #[arg(short = 'r', long)]
    reverse: bool,
    /// Print the items the HTTP endpoint serves: a JSON array of objects with sorted keys.
    #[arg(long)]
    json: bool,
    /// Print only each conversation's log path, one a line, for other commands (`xargs`, `tar`;
    /// `show` takes one as an id), as `search -l` prints them.
    #[arg(long, conflicts_with = "json")]
    paths: bool,
    /// With --paths, end each path with a NUL byte, not a newline, for `xargs -0` (as `search
    /// -0`): a path may hold a newline.
    #[arg(short = '0', long, requires = "paths")]
    null: bool,
    /// Only conversations whose name, id or last-message preview contains TEXT (any case).
    #[arg(short = 'q', long = "query", value_name = "TEXT")]
    q: Option<String>,
    #[command(flatten)]
    pub(super) narrow: Narrow,
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum SortBy {
    /// When the conversation last changed (gptme's order).
    Modified,
    /// When it began.
    Created,
    /// How many messages it holds.
    Messages,
    /// What it cost (an unknown, NaN, cost last).
    Cost,
}

impl From<SortBy> for SortKey {
    fn from(by: SortBy) -> SortKey {
        match by {
            SortBy::Modified => SortKey::Modified,
            SortBy::Created => SortKey::Created,
            SortBy::Messages => SortKey::Messages,
            SortBy::Cost => SortKey::Cost,
        }
    }
}

/// How a list is narrowed, beyond a text, or with `--hidden` widened (`list` and `search` share
/// these).
#[derive(Args)]
pub struct Narrow {
    /// Only conversations whose workspace is DIR or a directory under it (`.`: this project).
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    workspace: Option<std::path::PathBuf>,
    /// Only conversations last modified on this day or later, in local time as MODIFIED reads:
    /// YYYY-MM-DD, today, yesterday, days or weeks ago (7d, 2w), or YYYY-MM or YYYY from the
    /// month's or year's start.
    #[arg(long, value_name = "DATE", value_parser = crate::usage::date_span, add = clap_complete::engine::ArgValueCompleter::new(super::completions::DateForms))]
    since: Option<DateSpan>,
    /// Only conversations last modified on this day or earlier, in local time: YYYY-MM-DD, today,
    /// yesterday, days or weeks ago (7d, 2w), or YYYY-MM or YYYY to the month's or year's end.
    #[arg(long, value_name = "DATE", value_parser = crate::usage::date_span, add = clap_complete::engine::ArgValueCompleter::new(super::completions::DateForms))]
    until: Option<DateSpan>,
    /// Only conversations that used a model whose name contains TEXT (ASCII letters in any case).
    #[arg(long, value_name = "TEXT", add = clap_complete::engine::ArgValueCompleter::new(super::completions::ModelNames))]
    model: Option<String>,
    /// Only the conversations of the agent named NAME (any case; its path where its gptme.toml
    /// names none), as `usage --by agent` names agents.
    #[arg(long, value_name = "NAME", add = clap_complete::engine::ArgValueCompleter::new(super::completions::AgentNames))]
    agent: Option<String>,
    /// Only conversations whose files had problems when read: malformed lines, invalid UTF-8, a
    /// `config.toml` gptme refuses, … (`list`'s table says which beneath each row; `convmeta
    /// show ID` names the lines).
    #[arg(long)]
    problems: bool,
    /// Also the conversations gptme hides from lists: its test and temporary ones (ids that
    /// start with `tmp` or `test-`, or contain `gptme-evals-`).
    #[arg(long)]
    hidden: bool,
}

impl Narrow {
    /// `--workspace` resolved, as workspaces are stored: before the index opens, since `.` is
    /// where convmeta runs.
    pub fn workspace(&self) -> anyhow::Result<Option<String>> {
        self.workspace.as_deref().map(workspace_named).transpose()
    }

    /// The walk these flags ask for, with `workspace` from [`Narrow::workspace`].
    pub fn within<'a>(&'a self, workspace: Option<&'a str>) -> Within<'a> {
        Within {
            workspace,
            since: self.since.as_ref().map(|d| local_day_start(d.first)),
            before: self.until.as_ref().map(|d| local_day_start(d.after)),
            model: self.model.as_deref(),
            agent: self.agent.as_deref(),
            hidden: self.hidden,
            with_problems: self.problems,
        }
    }

    /// What the walk visits, in words: the listed conversations, or with `--hidden` all of them.
    pub fn noun(&self) -> &'static str {
        match self.hidden {
            true => "conversation",
            false => "listed conversation",
        }
    }

    /// `--since` and `--until`.
    pub fn spans(&self) -> (Option<&DateSpan>, Option<&DateSpan>) {
        (self.since.as_ref(), self.until.as_ref())
    }

    fn any(&self) -> bool {
        self.workspace.is_some()
            || self.since.is_some()
            || self.until.is_some()
            || self.model.is_some()
            || self.agent.is_some()
            || self.problems
    }

    /// Which conversations these flags keep to, in words (" modified in or after 2026-11"), or
    /// nothing.
    pub fn words(&self, workspace: Option<&str>) -> String {
        let mut which = String::new();
        if let Some(dir) = workspace {
            which += &format!(" {}", in_workspace(dir));
        }
        if let Some(agent) = &self.agent {
            which += &format!(" {}", of_agent(agent));
        }
        match (&self.since, &self.until) {
            (Some(s), Some(u)) => which += &format!(" modified from {} to {}", s.text, u.text),
            (Some(s), None) => which += &format!(" modified in or after {}", s.text),
            (None, Some(u)) => which += &format!(" modified in or before {}", u.text),
            (None, None) => {}
        }
        if let Some(model) = &self.model {
            which += &format!(" with a model containing {model:?}");
        }
        if self.problems {
            which += " with problems";
        }
        which
    }
}

/// Why `list` printed no conversation when it was asked to narrow the list.
fn why_none(q: Option<&str>, noun: &str, which: &str) -> String {
    match q {
        Some(q) if which.is_empty() => format!("no {noun}'s name, id or preview contains {q:?}"),
        Some(q) => format!("no {noun}{which} has a name, id or preview containing {q:?}"),
        None => format!("no {noun}{which}"),
    }
}

pub fn run(a: ListArgs) -> anyhow::Result<()> {
    let workspace = a.narrow.workspace()?;
    let index = a.target.open()?;
    progress::refresh(&index, Default::default(), progress::QUIET_FOR)?;
    let limit = if a.limit == 0 { usize::MAX } else { a.limit };
    let within = a.narrow.within(workspace.as_deref());
    let order = Order { by: a.sort.into(), reverse: a.reverse };
    // One more than asked for, to tell whether the table leaves any out.
    let mut items = index.list(limit.saturating_add(1), &Filter { q: a.q.as_deref(), within, order })?;
    let more = items.len() > limit;
    items.truncate(limit);
    let mut out = std::io::BufWriter::new(super::stdout());
    if a.json {
        json_array(&mut out, &items)?;
    } else if a.paths {
        paths(&mut out, &items, if a.null { b'\0' } else { b'\n' })?;
    } else {
        // With --problems, each row says what its problems are.
        table(&mut out, &items, a.sort, a.narrow.problems.then_some(&index))?;
    }
    out.flush()?;
    // Said on stderr, with `--json` too (as `search --json` says it): its output stays the items.
    // A blank -q filters nothing, as in gptme.
    let q = a.q.as_deref().filter(|q| crate::format::gptme::lowered::search_needle(q).is_some());
    let narrowed = q.is_some() || a.narrow.any();
    if items.is_empty() {
        let hidden = index.status()?.hidden;
        match narrowed {
            true => super::say(why_none(q, a.narrow.noun(), &a.narrow.words(workspace.as_deref()))),
            false if hidden > 0 && !a.narrow.hidden => super::say(format_args!(
                "all {} conversations here are hidden from lists, as gptme hides its test and temporary ones; `convmeta list --hidden` lists them",
                thousands(hidden as u64)
            )),
            false => super::say(empty_archive_hint(index.logs())),
        }
    }
    if more {
        let which = if narrowed { "match" } else { "are listed" };
        super::say(format_args!(
            "{} shown; more conversations {which} (`-n 0` shows them all)",
            thousands(limit as u64)
        ));
    }
    Ok(())
}

/// The items as one JSON array, written item by item (not joined first: at 100,000
/// conversations the joined copy alone is about 100 MB).
fn json_array(out: &mut impl Write, items: &[String]) -> std::io::Result<()> {
    out.write_all(b"[")?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        out.write_all(item.as_bytes())?;
    }
    out.write_all(b"]\n")
}

/// Each item's `path`, ended by `end`.
fn paths(out: &mut impl Write, items: &[String], end: u8) -> anyhow::Result<()> {
    #[derive(serde::Deserialize)]
    struct Item {
        path: String,
    }
    for item in items {
        let item: Item = serde_json::from_str(&crate::json::readable_by_serde(item))?;
        out.write_all(item.path.as_bytes())?;
        out.write_all(&[end])?;
    }
    Ok(())
}

/// The items as a table for people, headed by its columns' names; given the index, each row is
/// followed by what its conversation's problems are, indented.
fn table(out: &mut impl Write, items: &[String], sort: SortBy, problems_in: Option<&Index>) -> anyhow::Result<()> {
    // Sorted by when they began, the list says when that was.
    let (when, when_key) = match sort {
        SortBy::Created => ("CREATED", "created"),
        _ => ("MODIFIED", "modified"),
    };
    let rows = items
        .iter()
        .map(|item| {
            let v: serde_json::Value = serde_json::from_str(&crate::json::readable_by_serde(item))?;
            let total_cost = match &v["total_cost"] {
                // A sum that is not finite, which JSON writes as its name: `NaN`, `Infinity`.
                serde_json::Value::String(name) => name.parse().unwrap_or(f64::NAN),
                number => number.as_f64().unwrap_or(0.0),
            };
            Ok(Row {
                when: local_time(v[when_key].as_f64().unwrap_or(0.0)),
                messages: thousands(v["messages"].as_u64().unwrap_or(0)),
                cost: cost(total_cost),
                model: pad(&fit_model(&printable(v["model"].as_str().unwrap_or("-")), 24), 24),
                name: v["name"].as_str().unwrap_or_default().to_owned(),
                id: v["id"].as_str().unwrap_or_default().to_owned(),
            })
        })
        .collect::<anyhow::Result<Vec<Row>>>()?;
    // Counts and costs past the headers' widths (a million messages, $10,000) widen their
    // columns, every row's, so that the table stays aligned.
    let widest = |cell: fn(&Row) -> &str, least: usize| rows.iter().map(|r| cell(r).len()).fold(least, usize::max);
    let (messages, costs) = (widest(|r| &r.messages, 6), widest(|r| &r.cost, 9));
    writeln!(out, "{when:<16}  {:>messages$}  {:>costs$}  {:<24}  NAME", "MSGS", "COST", "MODEL")?;
    // On a terminal a long name is cut to the line (not its id, by which `show` finds it): a
    // line that wraps would break the table. Into a pipe, whole.
    let room = room_after(16 + 2 + messages + 2 + costs + 2 + 24 + 2);
    let notes_room = room_after(PROBLEMS_INDENT.len());
    for r in &rows {
        let label = conversation_label(&r.name, &r.id, room.max(width(&printable(&r.id))));
        writeln!(out, "{:<16}  {:>messages$}  {:>costs$}  {}  {label}", r.when, r.messages, r.cost, r.model)?;
        // Read after the list, so a refresh elsewhere may have mended them meanwhile: then none.
        // Cut to a terminal's line, as names are (`show ID` says them whole).
        if let Some(notes) = problems_in.map(|index| index.problem_notes(&r.id)).transpose()?.flatten() {
            writeln!(out, "{PROBLEMS_INDENT}{}", fit(&printable(&notes), notes_room))?;
        }
    }
    Ok(())
}

/// How far a conversation's problems are indented beneath its row.
const PROBLEMS_INDENT: &str = "    ";

/// One conversation's cells in the table.
struct Row {
    when: String,
    messages: String,
    cost: String,
    model: String,
    name: String,
    id: String,
}

/// Parses `--limit`: a count, 0 or more; one too large to hold asks for them all, as 0 does.
pub fn count(s: &str) -> Result<usize, String> {
    Ok(crate::usage::count(s).ok_or("a count, 0 or more (0: all of them)")?)
}
