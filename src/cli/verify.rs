use std::io::Write;
use std::time::Duration;

use clap::Args;
use rusqlite::types::Value;
use serde_json::json;

use super::{conversations, fit, megabytes, printable, progress, room_after, thousands, width, Target};
use crate::refresh::{default_jobs, Options};
use crate::store::compare::{Is, RowDifference};
use crate::store::sql::{to_text, Json};
use crate::verify::log_rewritten;

#[derive(Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    target: Target,
    /// Threads reading logs [default: all cores]
    #[arg(long, short = 'j', value_name = "N", value_parser = super::backfill::threads, allow_negative_numbers = true)]
    jobs: Option<usize>,
    /// Print what was found as JSON.
    #[arg(long)]
    json: bool,
}

/// The exit code when the index differs from the archive read afresh (`cmp`'s and `diff`'s: 0
/// the same, 1 different, 2 trouble).
pub const DIFFERENT: u8 = 1;
/// The exit code of an error.
pub const TROUBLE: u8 = 2;

/// Why a conversation differs, when its log's fingerprint does ([`log_rewritten`]).
const REWRITTEN: &str = "its log was rewritten in place: its bytes changed, and its size, mtime and inode did not";
/// Why, when nothing the index checks changed.
const UNSEEN: &str = "no size, mtime, inode or checked bytes changed: a file was changed in place where \
                      no check looks, or this is a bug in convmeta (please report it)";

/// How many conversations changed while verifying are named.
const CHANGED_NAMED: usize = 5;
/// The widest value shown in full; longer ones are cut.
const VALUE_WIDTH: usize = 60;
/// The narrowest a value is cut to on a narrow terminal (the line then wraps).
const NARROWEST_VALUE: usize = 12;
/// The spaces before each line of a conversation's differences.
const INDENT: usize = 2;

pub fn run(a: VerifyArgs) -> anyhow::Result<u8> {
    let index = a.target.open()?;
    let jobs = a.jobs.unwrap_or_else(default_jobs);
    let found = crate::verify::verify(
        &index,
        |afresh| {
            // Ctrl-C takes the scratch index with it, until it is gone.
            progress::remove_on_interrupt(afresh.store().path().parent());
            progress::refresh(afresh, Options { jobs, log_problems: false, ..Options::default() }, Duration::ZERO)
        },
        // The index's own refresh: the first index of an archive takes as long as the reading.
        |index| progress::refresh(index, Options { jobs, ..Options::default() }, progress::QUIET_FOR),
    );
    progress::remove_on_interrupt(None);
    let found = found?;
    let (c, read) = (&found.comparison, &found.afresh);
    let mut out = super::stdout();
    if a.json {
        let differ: Vec<_> = c
            .differences
            .iter()
            .map(|(id, rows)| json!({"id": id, "log_rewritten": log_rewritten(rows), "rows": rows_json(rows)}))
            .collect();
        let report = json!({
            "conversations": c.compared + c.changed.len(),
            "compared": c.compared,
            "changed": c.changed,
            "differ": differ,
            "read": {"bytes": read.bytes_read, "ms": read.duration_ms},
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        for (id, rows) in &c.differences {
            writeln!(out, "{}", printable(id))?;
            for row in rows {
                for line in row_lines(row) {
                    writeln!(out, "{:INDENT$}{line}", "")?;
                }
            }
            let why = match log_rewritten(rows) {
                true => REWRITTEN,
                false => UNSEEN,
            };
            writeln!(out, "{:INDENT$}why: {why}", "")?;
        }
        let compared = conversations(c.compared);
        let how = format!("{} read afresh in {:.0} ms", megabytes(read.bytes_read), read.duration_ms);
        match c.differences.len() {
            0 => writeln!(out, "verified {compared}: the index holds what reading the archive afresh gives ({how})")?,
            n => writeln!(
                out,
                "{} of {compared} {} from the archive read afresh ({how}): \
                 `convmeta backfill --reread` reads every conversation again",
                thousands(n as u64),
                if n == 1 { "differs" } else { "differ" }
            )?,
        }
    }
    if !c.changed.is_empty() {
        let named: Vec<String> = c.changed.iter().take(CHANGED_NAMED).map(|id| printable(id)).collect();
        let more = c.changed.len().saturating_sub(CHANGED_NAMED);
        let more = if more > 0 { format!(" and {} more", thousands(more as u64)) } else { String::new() };
        super::say(format_args!(
            "{} changed while verifying, so were not compared (verify again to compare them): {}{more}",
            conversations(c.changed.len()),
            named.join(", ")
        ));
    }
    Ok(if c.differences.is_empty() { 0 } else { DIFFERENT })
}

/// One differing row for people: which row, then each column that differs, in the index and
/// afresh. A JSON object's text (the item, `models_usage`) is told apart by its keys.
fn row_lines(row: &RowDifference) -> Vec<String> {
    let key: Vec<String> = row.key.iter().map(|(column, v)| format!("{column} {}", shown(v))).collect();
    let which = match key.is_empty() {
        true => row.table.clone(),
        false => format!("{} ({})", row.table, key.join(", ")),
    };
    let unequal = match &row.is {
        Is::OnlyInIndex => return vec![format!("{which}: a row in the index only")],
        Is::OnlyAfresh => return vec![format!("{which}: a row afresh only")],
        Is::Unequal(columns) => columns,
    };
    let mut lines = Vec::new();
    for (column, index, afresh) in unequal {
        let keyed = |v: &Value| match v {
            Value::Text(t) => serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(t).ok(),
            _ => None,
        };
        match (keyed(index), keyed(afresh)) {
            (Some(index), Some(afresh)) => {
                let keys = index.keys().chain(afresh.keys().filter(|k| !index.contains_key(*k)));
                for k in keys.filter(|k| index.get(*k) != afresh.get(*k)) {
                    let side = |m: &serde_json::Map<String, serde_json::Value>| {
                        m.get(k).map_or_else(|| "(none)".to_string(), ToString::to_string)
                    };
                    lines.push(pair_line(&format!("{which}.{column} {k:?}"), &side(&index), &side(&afresh)));
                }
            }
            _ => {
                lines.push(pair_line(&format!("{which}.{column}"), &shown(index), &shown(afresh)));
            }
        }
    }
    lines
}

/// A value as SQL writes it: NULL, a number, text quoted.
fn shown(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Text(t) => format!("'{}'", printable(t)),
        other => to_text(other),
    }
}

/// `  label: A in the index, B afresh`, its two values sharing what is left of the line on a
/// terminal (each at most [`VALUE_WIDTH`] columns, and at least [`NARROWEST_VALUE`]).
fn pair_line(label: &str, index: &str, afresh: &str) -> String {
    let fixed = INDENT + width(label) + width(": ") + width(" in the index, ") + width(" afresh");
    let each = (room_after(fixed) / 2).clamp(NARROWEST_VALUE, VALUE_WIDTH);
    let (index, afresh) = where_they_part(index, afresh, each);
    format!("{label}: {index} in the index, {afresh} afresh")
}

/// Two values cut alike to at most `max` columns, from a little before the first character
/// where they differ: a long preview that differs at its end shows that end.
fn where_they_part(a: &str, b: &str, max: usize) -> (String, String) {
    let before = (max / 3).min(20);
    let same = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    let from = |s: &str| match same > before {
        true => format!("…{}", s.chars().skip(same - before).collect::<String>()),
        false => s.to_string(),
    };
    (fit(&from(a), max), fit(&from(b), max))
}

fn rows_json(rows: &[RowDifference]) -> Vec<serde_json::Value> {
    rows.iter()
        .map(|row| {
            let key: serde_json::Map<String, serde_json::Value> =
                row.key.iter().map(|(k, v)| (k.clone(), json!(Json(v)))).collect();
            let mut o = json!({"table": row.table, "key": key});
            match &row.is {
                Is::OnlyInIndex => o["only_in"] = json!("index"),
                Is::OnlyAfresh => o["only_in"] = json!("afresh"),
                Is::Unequal(columns) => {
                    let columns: serde_json::Map<String, serde_json::Value> = columns
                        .iter()
                        .map(|(name, index, afresh)| {
                            (name.clone(), json!({"index": Json(index), "afresh": Json(afresh)}))
                        })
                        .collect();
                    o["columns"] = columns.into();
                }
            }
            o
        })
        .collect()
}
