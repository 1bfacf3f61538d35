use std::io::Write;
use std::path::Path;

use clap::Args;

use super::{local_time, printable, progress, Target};
use crate::format::gptme;

#[derive(Args)]
pub struct ShowArgs {
    #[command(flatten)]
    target: Target,
    /// The conversation id (its directory name) [default: the newest listed conversation, the
    /// one `list` shows first]
    #[arg(add = clap_complete::engine::ArgValueCompleter::new(super::completions::ConversationIds))]
    id: Option<String>,
    /// Print the item as JSON, exactly as the HTTP endpoint serves it.
    #[arg(long)]
    json: bool,
}

pub fn run(a: ShowArgs) -> anyhow::Result<()> {
    let index = a.target.open()?;
    progress::refresh(&index, Default::default(), progress::QUIET_FOR)?;
    let id = match &a.id {
        Some(arg) => conversation_id(arg, index.logs()),
        None => match index.page(1, &Default::default(), None)?.items.pop() {
            Some(newest) => newest.id,
            None => anyhow::bail!(
                "no conversation is listed in {}: name one to show (hidden ones are shown by id)",
                index.logs().display()
            ),
        },
    };
    let item = index.show(&id)?;
    let mut out = super::stdout();
    if a.json {
        writeln!(out, "{item}")?;
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
                (_, other) => writeln!(out, "{k:>24}: {other}")?,
            }
        }
    }
    // Not part of the item, but what a reader of one conversation wants to know.
    if let Some(notes) = index.problem_notes(&id)? {
        writeln!(out, "{:>24}: {}", "problems", printable(&notes))?;
    }
    if gptme::is_hidden(&id) {
        let why = "yes, in no list (gptme leaves out ids starting with tmp or test-, or holding gptme-evals-)";
        writeln!(out, "{:>24}: {why}", "hidden")?;
    }
    Ok(())
}

/// The id `arg` names: as given, or the directory name when it is a path to a conversation
/// directory of `logs` (a shell's completion adds the trailing `/`) or to a file in one (the
/// log, as an item's `path` gives it).
fn conversation_id(arg: &str, logs: &Path) -> String {
    let trimmed = arg.trim_end_matches('/');
    let path = Path::new(trimmed);
    let is_logs = |dir: &Path| {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        dir.canonicalize().ok().zip(logs.canonicalize().ok()).is_some_and(|(d, l)| d == l)
    };
    let name = |p: &Path| p.file_name().and_then(|n| n.to_str()).map(str::to_owned);
    let parent = path.parent().unwrap_or(Path::new(""));
    let named = if trimmed.is_empty() {
        None
    } else if !trimmed.contains('/') || is_logs(parent) {
        name(path)
    } else if path.is_file() && parent.parent().is_some_and(is_logs) {
        name(parent)
    } else {
        None
    };
    named.unwrap_or_else(|| arg.to_owned())
}
