use std::io::Write;

use clap::Args;

use super::{local_time, printable, progress, thousands, Reading, Target, PROBLEMS_HINT};
use crate::Index;

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    target: Target,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: StatusArgs) -> anyhow::Result<()> {
    let (s, made) = match a.target.open_for_reading()? {
        Reading::Index(index) => (index.status()?, true),
        Reading::ReadOnly { logs, db } => (Index::status_read_only(&logs, &db)?, true),
        Reading::Missing { logs, db } => (Index::status_missing(&logs, &db)?, false),
    };
    let mut out = super::stdout();
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&s)?)?;
        return Ok(());
    }
    match &s.rows_of {
        // The same --db refreshed for another directory (or this one by another name).
        Some(other) if *other != s.logs => writeln!(
            out,
            "logs:           {} (the rows below are of {other}, as last refreshed; `list` or `backfill` reads this one)",
            s.logs
        )?,
        _ if !std::path::Path::new(&s.logs).is_dir() => {
            writeln!(out, "logs:           {} (not there now: the rows below are as last refreshed)", s.logs)?
        }
        _ => writeln!(out, "logs:           {}", s.logs)?,
    }
    match made {
        true => {
            writeln!(out, "database:       {} ({}, schema {})", s.db, super::megabytes(s.db_bytes), s.schema_version)?
        }
        false => writeln!(out, "database:       {} (none yet)", s.db)?,
    }
    let count = |n: i64| thousands(n as u64);
    let (rows, hidden, with_problems) = (count(s.conversations), count(s.hidden), count(s.with_problems));
    writeln!(out, "conversations:  {rows} ({hidden} hidden, {with_problems} with problems)")?;
    match (s.last_refresh_at, &s.last_refresh) {
        (Some(t), Some(stats)) => writeln!(out, "last refresh:   {} ({})", local_time(t), progress::summary(stats))?,
        (Some(t), None) => writeln!(out, "last refresh:   {}", local_time(t))?,
        // Rows but no record: a backfill was stopped before its end (it commits as it goes).
        (None, _) if s.conversations > 0 => {
            writeln!(out, "last refresh:   none finished (run `convmeta backfill`: it goes on from where one stopped)")?
        }
        (None, _) => writeln!(out, "last refresh:   never (run `convmeta backfill`)")?,
    }
    if let Some(zone) = s.zone.as_deref().map(printable) {
        match s.zone_differs_here {
            false => writeln!(out, "time zone:      {zone}")?,
            true => writeln!(
                out,
                "time zone:      {zone}, but {} here: a refresh here writes each timestamp without a zone again",
                printable(&crate::format::gptme::time::zone_name())
            )?,
        }
    }
    if s.with_problems > 0 {
        writeln!(out, "problems:       {PROBLEMS_HINT}")?;
    }
    Ok(())
}
