use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::{fit, pad, printable, progress, seconds, width, Reading, Target};
use crate::store::sql::{self, Limits, Part};

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
    Jsonl,
    Csv,
}

#[derive(Args)]
pub struct QueryArgs {
    #[command(flatten)]
    target: Target,
    /// How to print the rows (with `--schema`: table, or json for datasette's metadata).
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Query what is stored without refreshing first.
    #[arg(long)]
    no_refresh: bool,
    /// Stop the statement after this many seconds (a runaway recursive query, a script's
    /// deadline); without it, a statement runs until it ends or Ctrl-C.
    #[arg(long, value_name = "SECONDS", value_parser = seconds, allow_negative_numbers = true)]
    timeout: Option<Duration>,
    /// Print the public tables, their columns and what each holds (docs/schema.md's
    /// description, built in), instead of running a statement; with `--format json`, as
    /// datasette's metadata (`datasette DB -m FILE`), the example queries among it.
    #[arg(long, conflicts_with = "sql")]
    schema: bool,
    /// One read-only SQL statement over the public tables (`--schema` describes them); `-` reads
    /// it from standard input.
    #[arg(required_unless_present = "schema")]
    sql: Option<String>,
}

/// The most SQL read from standard input: far more than any statement people or scripts write,
/// and a bound on what an input that never ends (`yes |`, a device) can take.
const MAX_SQL_FROM_STDIN: u64 = 64 << 20;

impl QueryArgs {
    /// Why the flags cannot go together, as clap would say it: the schema comes in two forms.
    pub fn conflict(&self) -> Option<String> {
        let format = match self.format {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Table | Format::Json => return None,
        };
        let why = "`--schema` prints a table, or with `--format json` datasette's metadata";
        self.schema.then(|| format!("the argument '--schema' cannot be used with '--format {format}': {why}"))
    }
}

pub fn run(a: QueryArgs) -> anyhow::Result<()> {
    if a.schema {
        let text = match a.format {
            Format::Json => {
                let logs = a.target.chosen_logs()?;
                let db = a.target.db_path(&logs)?;
                serde_json::to_string_pretty(&datasette_metadata(&db))? + "\n"
            }
            _ => schema_text(),
        };
        let mut out = super::stdout();
        out.write_all(text.as_bytes())?;
        return Ok(out.flush()?);
    }
    let sql = a.sql.unwrap_or_default();
    let sql = if sql == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .take(MAX_SQL_FROM_STDIN + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| anyhow::anyhow!("reading the SQL from standard input: {e}"))?;
        if bytes.len() as u64 > MAX_SQL_FROM_STDIN {
            anyhow::bail!(
                "the SQL on standard input is over {} MiB: is that the input meant?",
                MAX_SQL_FROM_STDIN >> 20
            );
        }
        String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("the SQL on standard input is not UTF-8"))?
    } else {
        sql
    };
    let opened = if a.no_refresh { a.target.open_for_reading()? } else { Reading::Index(Box::new(a.target.open()?)) };
    // The index stays open while the statement runs (its close would checkpoint meanwhile).
    let (_index, db) = match opened {
        Reading::Index(index) => {
            if !a.no_refresh {
                progress::refresh(&index, Default::default(), progress::QUIET_FOR)?;
            }
            let db = index.store().path().to_owned();
            (Some(index), db)
        }
        Reading::ReadOnly { db, .. } => (None, db),
        Reading::Missing { db, .. } => {
            anyhow::bail!("no index at {} yet: run `convmeta backfill`, or query without --no-refresh", db.display())
        }
    };
    let (db, sql, limits) = (db.as_path(), sql.trim(), Limits { timeout: a.timeout, ..Limits::default() });
    // Into a pipe (a pager, which may sit paused for hours), an answer is held until the
    // statement ends, up to `HELD_FOR_A_PIPE`: a statement in progress holds a snapshot of the
    // database, which keeps SQLite from rewinding its log, so every write another process
    // commits meanwhile (a `serve` beside it) would grow the log for as long as the pager waits.
    let held = if std::io::stdout().is_terminal() { 8 << 10 } else { HELD_FOR_A_PIPE };
    let mut out = std::io::BufWriter::with_capacity(held, super::stdout());
    // Every format streams, so memory stays bounded however many rows come (a recursive
    // statement may never end): a table holds rows only to align its columns (see `table`).
    match a.format {
        Format::Table => table(&mut out, db, sql, limits)?,
        Format::Json => {
            let mut columns = Vec::new();
            let mut first = true;
            sql::query_each(db, sql, limits, |part| -> anyhow::Result<()> {
                match part {
                    Part::Columns(names) => columns = keys(names),
                    Part::Row(r) => {
                        write!(out, "{}\n  ", if first { "[" } else { "," })?;
                        json_item(&mut out, &Object { keys: &columns, row: &r })?;
                        first = false;
                    }
                }
                Ok(())
            })?;
            writeln!(out, "{}", if first { "[]" } else { "\n]" })?;
        }
        Format::Jsonl => {
            let mut columns = Vec::new();
            sql::query_each(db, sql, limits, |part| -> anyhow::Result<()> {
                match part {
                    Part::Columns(names) => columns = keys(names),
                    Part::Row(r) => writeln!(out, "{}", serde_json::to_string(&Object { keys: &columns, row: &r })?)?,
                }
                Ok(())
            })?;
        }
        Format::Csv => {
            sql::query_each(db, sql, limits, |part| -> anyhow::Result<()> {
                match part {
                    Part::Columns(names) => csv_line(&mut out, names.iter().map(String::as_str))?,
                    Part::Row(r) => {
                        let cells: Vec<String> = r.iter().map(sql::to_text).collect();
                        csv_line(&mut out, cells.iter().map(String::as_str))?;
                    }
                }
                Ok(())
            })?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The schema's description, of which `--schema` prints the public tables: built in, so an
/// installed binary describes its own tables, and one text serves the docs and the command.
const SCHEMA_DOC: &str = include_str!("../../docs/schema.md");

/// A section of docs/schema.md (`## NAME`), without its heading.
fn schema_section(name: &str) -> &'static str {
    let section = SCHEMA_DOC.split(&format!("\n## {name}\n")).nth(1).unwrap_or_default();
    section.split("\n## ").next().unwrap_or_default()
}

/// The public tables' part of docs/schema.md: from the first table's heading (`### `).
fn public_tables() -> &'static str {
    let section = schema_section("Public tables");
    section.find("### ").map_or("", |at| &section[at..])
}

/// A row of a table's list of columns: its column(s), type and meaning (not the header).
fn column_row(line: &str) -> Option<[&str; 3]> {
    let row = line.strip_prefix("| ")?.strip_suffix(" |")?;
    let cells: [&str; 3] = row.split(" | ").collect::<Vec<_>>().try_into().ok()?;
    (cells[0] != "column").then_some(cells)
}

/// Text without its code marks.
fn plain(text: &str) -> String {
    text.replace('`', "")
}

/// The width `--schema` writes to: the docs' own, or a narrower terminal's.
const SCHEMA_WIDTH: usize = 96;

/// docs/schema.md's "Public tables" for a terminal: each table's heading and notes as written
/// (on a terminal narrower than the docs, each note's paragraph wrapped to it), each column with
/// its type, and beneath it, indented, what it holds, wrapped. Code marks are dropped.
fn schema_text() -> String {
    let narrower = super::terminal_columns().filter(|&w| w < SCHEMA_WIDTH).map(|w| w.max(40));
    let width = narrower.unwrap_or(SCHEMA_WIDTH);
    let (mut out, mut paragraph) = (String::new(), Vec::new());
    let end_paragraph = |out: &mut String, paragraph: &mut Vec<String>| {
        if !paragraph.is_empty() {
            out.extend(wrapped(&paragraph.join(" "), width).into_iter().map(|l| l + "\n"));
            paragraph.clear();
        }
    };
    for line in public_tables().lines() {
        if narrower.is_some() && !line.trim().is_empty() && !line.starts_with(['#', '|']) {
            paragraph.push(plain(line));
            continue;
        }
        end_paragraph(&mut out, &mut paragraph);
        if let Some(heading) = line.strip_prefix("### ") {
            out += &plain(heading);
            out.push('\n');
        } else if let Some([column, kind, meaning]) = column_row(line) {
            // Its lines after the first are indented as the meaning is.
            let head = hanging(&format!("{}: {}", plain(column), plain(kind)), width - 2, width - 6);
            out += &format!("  {}\n", head.join("\n      "));
            for part in wrapped(&plain(meaning), width - 6) {
                out += &format!("      {part}\n");
            }
        } else if !line.starts_with("| column |") && !line.starts_with("|---") {
            out += &plain(line);
            out.push('\n');
        }
    }
    end_paragraph(&mut out, &mut paragraph);
    out
}

/// Notes as sentences, each ended with a full stop (a note may begin with a name in lower case,
/// as `conversation_models`, which stays as it is).
fn sentences(notes: &[String]) -> String {
    let stopped = |note: &String| if note.ends_with('.') { note.clone() } else { format!("{note}.") };
    notes.iter().map(stopped).collect::<Vec<_>>().join(" ")
}

/// The tables that are convmeta's own bookkeeping (docs/schema.md's "Internal tables"): hidden
/// from datasette's lists, as they change without notice.
const INTERNAL_TABLES: [&str; 2] = ["_scan_state", "_meta"];

/// docs/schema.md as datasette's metadata (`datasette DB -m FILE`): each public table's
/// description and its columns' (type, then meaning), the conversations newest first and named
/// by their names where another table refers to them, the internal tables hidden, and the
/// example queries as its canned queries. Datasette keys a database by its file's stem.
fn datasette_metadata(db: &std::path::Path) -> serde_json::Value {
    let stem = db.file_stem().map_or_else(|| "convmeta".into(), |s| s.to_string_lossy().into_owned());
    serde_json::json!({
        "title": "gptme conversations",
        "description": "convmeta's index of a gptme archive: one row per conversation, its usage by model and by day",
        "databases": { stem: { "tables": datasette_tables(), "queries": canned_queries() } },
    })
}

/// Each table's part of datasette's metadata, by name.
fn datasette_tables() -> serde_json::Map<String, serde_json::Value> {
    let mut tables = serde_json::Map::new();
    for part in public_tables().split("### ").filter(|p| !p.is_empty()) {
        let (heading, body) = part.split_once('\n').unwrap_or((part, ""));
        let (name, summary) = heading.split_once(": ").unwrap_or((heading, ""));
        // The summary ("one row per conversation") as a sentence of its own.
        let mut chars = summary.chars();
        let summary: String = chars.next().into_iter().flat_map(char::to_uppercase).chain(chars).collect();
        let (mut columns, mut notes) = (serde_json::Map::new(), vec![summary]);
        for line in body.lines() {
            match column_row(line) {
                Some([names, kind, meaning]) => {
                    for column in names.split(", ") {
                        columns.insert(plain(column), format!("{}: {}", plain(kind), plain(meaning)).into());
                    }
                }
                None if line.starts_with('|') => {} // the list's header and rule
                None if line.trim().is_empty() => notes.push(String::new()),
                None => notes.last_mut().expect("a summary first").extend([" ", line]),
            }
        }
        let notes: Vec<String> = notes.iter().map(|n| plain(n.trim())).filter(|n| !n.is_empty()).collect();
        let mut table = serde_json::json!({ "description": sentences(&notes), "columns": columns });
        let (sort, label) = match name {
            "`conversations`" => (Some("modified"), Some("name")),
            "`conversation_models`" => (Some("cost"), None),
            "`conversation_days`" => (Some("day"), None),
            _ => (None, None),
        };
        if let Some(sort) = sort {
            table["sort_desc"] = sort.into();
        }
        if let Some(label) = label {
            table["label_column"] = label.into();
        }
        tables.insert(plain(name), table);
    }
    for name in INTERNAL_TABLES {
        tables.insert(name.into(), serde_json::json!({ "hidden": true }));
    }
    tables
}

/// docs/schema.md's example queries as datasette's canned queries, by a name made of their
/// titles' words (`spend-per-model-all-time`).
fn canned_queries() -> serde_json::Map<String, serde_json::Value> {
    let mut queries = serde_json::Map::new();
    let examples = schema_section("Example queries").split("```sql").nth(1).unwrap_or_default();
    for example in examples.split("```").next().unwrap_or_default().split("\n\n") {
        let (title, sql): (Vec<&str>, Vec<&str>) = example.lines().partition(|l| l.starts_with("--"));
        if sql.iter().all(|l| l.trim().is_empty()) {
            continue;
        }
        let said = plain(&title.iter().map(|l| l.trim_start_matches('-').trim()).collect::<Vec<_>>().join(" "));
        // "Spend per day, the last 30 days (by when …)": the words before the parenthesis are
        // the title, the rest its description.
        let (title, aside) = said.split_once(" (").unwrap_or((&said, ""));
        let name: Vec<&str> = title.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
        let mut query = serde_json::json!({ "title": title, "sql": sql.join("\n").trim().trim_end_matches(';') });
        if let Some(aside) = aside.strip_suffix(')').filter(|a| !a.is_empty()) {
            query["description"] = sentences(&[aside.to_owned()]).into();
        }
        queries.insert(name.join("-").to_lowercase(), query);
    }
    queries
}

/// `text` in lines of at most `width` characters, broken at spaces (a longer word alone).
fn wrapped(text: &str, width: usize) -> Vec<String> {
    hanging(text, width, width)
}

/// `text` in lines of at most `first` characters for the first and `rest` for the others (which
/// are indented more), broken at spaces (a longer word alone).
fn hanging(text: &str, first: usize, rest: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        let width = if lines.len() <= 1 { first } else { rest };
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    lines
}

/// A row as an object whose keys are in the statement's order.
struct Object<'a> {
    keys: &'a [String],
    row: &'a [rusqlite::types::Value],
}

impl serde::Serialize for Object<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.keys.len()))?;
        for (key, value) in self.keys.iter().zip(self.row) {
            map.serialize_entry(key, &sql::Json(value))?;
        }
        map.end()
    }
}

/// The columns' names as keys of one object: a name given twice (`c.model, m.model`) would
/// lose the first value, so it takes a suffix as SQLite names such a column in `CREATE TABLE …
/// AS SELECT`: `model`, `model:1`.
fn keys(columns: &[String]) -> Vec<String> {
    let mut taken = std::collections::HashSet::new();
    columns
        .iter()
        .map(|name| {
            let mut key = name.clone();
            for n in 1.. {
                if taken.insert(key.clone()) {
                    break;
                }
                key = format!("{name}:{n}");
            }
            key
        })
        .collect()
}

/// RFC 4180: fields with commas, quotes or line breaks are quoted, quotes doubled, CRLF ends.
fn csv_line<'a>(out: &mut impl Write, cells: impl Iterator<Item = &'a str>) -> std::io::Result<()> {
    let line: Vec<String> =
        cells
            .map(|c| {
                if c.contains([',', '"', '\r', '\n']) {
                    format!("\"{}\"", c.replace('"', "\"\""))
                } else {
                    c.to_owned()
                }
            })
            .collect();
    write!(out, "{}\r\n", line.join(","))
}

/// One row of a `json` array: the object as `serde_json`'s pretty printer writes an array's
/// item, so the streamed array is byte for byte what printing it whole gives.
fn json_item(out: &mut impl Write, row: &Object<'_>) -> anyhow::Result<()> {
    // Strings escape their line breaks, so every `\n` here is the layout's.
    Ok(out.write_all(serde_json::to_string_pretty(row)?.replace('\n', "\n  ").as_bytes())?)
}

/// How much of an answer into a pipe is held until its statement ends (memory is taken only as
/// it fills). A longer answer streams on, its statement running as its reader reads.
const HELD_FOR_A_PIPE: usize = 32 << 20;

/// What a table holds to align its columns, in bytes of cell text (each cell counted with its
/// bookkeeping). A longer result streams on in the widths its first rows set: a wider cell
/// after that shifts only its own row, and memory stays bounded.
const TABLE_HELD_BYTES: usize = 32 << 20;

/// Columns padded to their widest cell; on a terminal, long cells cut (to 60 columns, and the
/// widest columns narrowed until a row fits the line).
fn table(out: &mut impl Write, db: &std::path::Path, sql: &str, limits: Limits) -> anyhow::Result<()> {
    let line = super::terminal_columns();
    let cap = if line.is_some() { 60 } else { usize::MAX };
    let cell = |text: &str| fit(&printable(text), cap);
    let (mut header, mut held, mut held_bytes) = (Vec::new(), Vec::new(), 0);
    let mut widths: Option<Vec<usize>> = None;
    sql::query_each(db, sql, limits, |part| -> anyhow::Result<()> {
        match part {
            Part::Columns(names) => header = names.iter().map(|n| cell(n)).collect(),
            Part::Row(r) => {
                let row: Vec<String> = r.iter().map(|v| cell(&sql::to_text(v))).collect();
                match &widths {
                    Some(w) => table_line(out, w, &row, line.is_some())?,
                    None => {
                        held_bytes += row.iter().map(|c| c.len() + 32).sum::<usize>();
                        held.push(row);
                        if held_bytes > TABLE_HELD_BYTES {
                            widths = Some(table_start(out, &header, &std::mem::take(&mut held), line)?);
                        }
                    }
                }
            }
        }
        Ok(())
    })?;
    if widths.is_none() {
        table_start(out, &header, &held, line)?;
    }
    Ok(())
}

/// The narrowest a column is made to fit a line: room for a few characters and the `…`.
const NARROWEST_COLUMN: usize = 8;

/// The header, its rule and the rows held, in the widths they need, or on a terminal `line`
/// columns wide, narrowed to fit it (the widest first, a conversation's id last, none below
/// [`NARROWEST_COLUMN`] but as its cells are); returns the widths.
fn table_start(
    out: &mut impl Write,
    header: &[String],
    rows: &[Vec<String>],
    line: Option<usize>,
) -> std::io::Result<Vec<usize>> {
    let mut widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| width(&r[i])).chain([width(&header[i])]).max().unwrap_or(0))
        .collect();
    if let Some(line) = line {
        let gaps = 2 * widths.len().saturating_sub(1);
        // A conversation's id, which `show` takes, is narrowed only when nothing else can be.
        for ids_too in [false, true] {
            while widths.iter().sum::<usize>() + gaps > line {
                let narrowable = widths.iter_mut().zip(header).filter(|(w, name)| {
                    **w > NARROWEST_COLUMN && (ids_too || !matches!(name.as_str(), "id" | "conversation_id"))
                });
                let Some((widest, _)) = narrowable.max_by_key(|(w, _)| **w) else { break };
                *widest -= 1;
            }
        }
    }
    let cut = line.is_some();
    table_line(out, &widths, header, cut)?;
    table_line(out, &widths, &widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>(), cut)?;
    for row in rows {
        table_line(out, &widths, row, cut)?;
    }
    Ok(widths)
}

/// One row in `widths`, each cell cut to its column's width when `cut` (on a terminal; into a
/// pipe a cell wider than its column, after the rows the widths were taken from, shifts only
/// its own row).
fn table_line(out: &mut impl Write, widths: &[usize], row: &[String], cut: bool) -> std::io::Result<()> {
    let padded: Vec<String> =
        row.iter().zip(widths).map(|(c, w)| pad(&if cut { fit(c, *w) } else { c.clone() }, *w)).collect();
    writeln!(out, "{}", padded.join("  ").trim_end())
}
