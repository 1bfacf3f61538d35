use std::io::Write;
use std::path::Path;

use clap::Args;

use super::{fit, local_time, pad, printable, progress, usage, Target};
use crate::format::gptme;
use crate::format::gptme::problem_lines::problem_lines;
use crate::store::usage::{UsageBy, UsageQuery};
use crate::Index;

/// Days of usage `show` lists, the latest; `usage --conversation` gives them all.
const DAYS_SHOWN: usize = 10;

#[derive(Args)]
pub struct ShowArgs {
    #[command(flatten)]
    target: Target,
    /// The conversation id (its directory name) [default: the newest listed conversation, the
    /// one `list` shows first]
    #[arg(value_parser = super::conversation_id, add = clap_complete::engine::ArgValueCompleter::new(super::completions::ConversationIds))]
    id: Option<String>,
    /// Print the item as JSON, exactly as the HTTP endpoint serves it.
    #[arg(long)]
    json: bool,
    /// How many of the log's lines with problems to name, the first (0: all of them).
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = super::list::count, allow_negative_numbers = true)]
    problem_lines: usize,
}

pub fn run(a: ShowArgs) -> anyhow::Result<()> {
    let index = a.target.open()?;
    progress::refresh(&index, Default::default(), progress::QUIET_FOR)?;
    let id = match &a.id {
        Some(arg) => super::id_named(arg, index.logs()),
        None => match index.page(1, &Default::default(), None)?.items.pop() {
            Some(newest) => newest.id,
            None => anyhow::bail!(
                "no conversation is listed in {}: name one to show (hidden ones are shown by id)",
                index.logs().display()
            ),
        },
    };
    let item = index.show(&id)?;
    // Buffered: a log can have millions of lines to name.
    let mut out = std::io::BufWriter::new(super::stdout());
    if a.json {
        writeln!(out, "{item}")?;
        out.flush()?;
        return Ok(());
    }
    let v: serde_json::Value = serde_json::from_str(&crate::json::readable_by_serde(&item))?;
    if let Some(fields) = v.as_object() {
        for (k, v) in fields {
            match (k.as_str(), v) {
                (_, serde_json::Value::String(s)) => writeln!(out, "{k:>24}: {}", printable(s))?,
                ("created" | "modified" | "last_updated", serde_json::Value::Number(t)) => {
                    writeln!(out, "{k:>24}: {t} ({})", local_time(t.as_f64().unwrap_or(0.0)))?
                }
                ("models_usage", _) => write_usage(&mut out, &index, &id)?,
                (_, other) => writeln!(out, "{k:>24}: {other}")?,
            }
        }
    }
    // Not part of the item, but what a reader of one conversation wants to know.
    if let Some(notes) = index.problem_notes(&id)? {
        writeln!(out, "{:>24}: {}", "problems", printable(&notes))?;
        let named = if a.problem_lines == 0 { usize::MAX } else { a.problem_lines };
        write_problem_lines(&mut out, &index.logs().join(&id).join(gptme::LOG_FILE), named)?;
    }
    if gptme::is_hidden(&id) {
        let why = "yes, in no list but `list --hidden` (gptme leaves out ids starting with tmp or test-, or holding gptme-evals-)";
        writeln!(out, "{:>24}: {why}", "hidden")?;
    }
    out.flush()?;
    Ok(())
}

/// The log's lines with problems, the first `named` (then how many more), so that they can be
/// looked at (`sed -n 12p`), written as they are found; nothing when the log cannot be read (its
/// problem says so).
fn write_problem_lines(out: &mut impl Write, log: &Path, named: usize) -> anyhow::Result<()> {
    let (mut written, mut failed) = (0, None);
    let mut write = |p: gptme::problem_lines::ProblemLine| {
        if written == named || failed.is_some() {
            return;
        }
        written += 1;
        let unfinished = if p.unfinished { " (no newline yet: perhaps still being written)" } else { "" };
        if let Err(e) = writeln!(out, "{:>25} line {}{unfinished}: {}", "", p.line, p.found.on_one_line()) {
            failed = Some(e);
        }
    };
    let Ok(total) = problem_lines(log, &mut Vec::new(), &mut write) else {
        return Ok(());
    };
    if let Some(e) = failed {
        return Err(e.into());
    }
    let more = total - written as u64;
    if more > 0 {
        let lines = if more == 1 { "line" } else { "lines" };
        writeln!(out, "{:>25} … and {} more {lines} (`--problem-lines 0` names them all)", "", super::thousands(more))?;
    }
    Ok(())
}

/// A conversation's usage for people, in place of `models_usage`'s JSON: by model, most spent
/// first, then by day (the latest [`DAYS_SHOWN`]), as `usage --conversation` sums them.
fn write_usage(out: &mut impl Write, index: &Index, id: &str) -> anyhow::Result<()> {
    let by = |by| index.usage(&UsageQuery { by, conversation: Some(id), ..Default::default() });
    let models = by(UsageBy::Model)?.rows;
    if models.is_empty() {
        writeln!(out, "{:>24}: none", "models_usage")?;
        return Ok(());
    }
    // Each model's line: its name, cost, input, output and cache-read tokens, in columns.
    let cells: Vec<[String; 5]> = models
        .iter()
        .map(|m| {
            let tokens = [m.input_tokens, m.output_tokens, m.cache_read_tokens].map(usage::tokens);
            let [input, output, cache] = tokens;
            [printable(&m.key), usage::cost(m.cost), input, output, cache]
        })
        .collect();
    let width = |c: usize| cells.iter().map(|row| super::width(&row[c])).max().unwrap_or(0);
    let name_width = width(0).min(40);
    for (i, [model, cost, input, output, cache]) in cells.iter().enumerate() {
        let label = if i == 0 { "models_usage:" } else { "" };
        let model = pad(&fit(model, name_width), name_width);
        let (c, n, o, r) = (width(1), width(2), width(3), width(4));
        writeln!(out, "{label:>25} {model}  {cost:>c$}  {input:>n$} in, {output:>o$} out, {cache:>r$} cache read")?;
    }
    let days = by(UsageBy::Day)?.rows;
    let earlier = days.len().saturating_sub(DAYS_SHOWN);
    for (i, d) in days[earlier..].iter().enumerate() {
        let label = if i == 0 { "usage by day:" } else { "" };
        let day = if d.key.is_empty() { "no date" } else { d.key.as_str() };
        let names: Vec<&str> = d.by_model.iter().map(|m| m.key.as_str()).collect();
        writeln!(out, "{label:>25} {day:<10}  {}  {}", usage::cost(d.cost), printable(&names.join(", ")))?;
    }
    if earlier > 0 {
        writeln!(out, "{:>25} … and {earlier} days before (`convmeta usage --conversation {}`)", "", printable(id))?;
    }
    Ok(())
}
