use std::io::Write;

use clap::{Args, ValueEnum};

use super::{fit, fit_end, in_workspace, pad, printable, progress, workspace_named, Target};
use crate::pynum::PyNum;
use crate::store::rows::{UsageBy, UsageQuery, UsageRow};

#[derive(Args)]
pub struct UsageArgs {
    #[command(flatten)]
    target: Target,
    /// Sum by the day each message was written (as its timestamp reads), by week (named by its
    /// Monday), by month, by model, by conversation or by workspace (these three most spent
    /// first: where the spend of --since/--until went).
    #[arg(long, value_enum, default_value_t = By::Day)]
    by: By,
    /// From this day on: YYYY-MM-DD, or YYYY-MM or YYYY for the whole month or year.
    #[arg(long, value_name = "DATE", value_parser = date_prefix)]
    since: Option<String>,
    /// Up to this day, included: YYYY-MM-DD, or YYYY-MM or YYYY for the whole month or year.
    #[arg(long, value_name = "DATE", value_parser = date_prefix)]
    until: Option<String>,
    /// Only conversations whose workspace is DIR or a directory under it (`.`: this project).
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    workspace: Option<std::path::PathBuf>,
    /// Only this conversation (its id).
    #[arg(long, value_name = "ID", add = clap_complete::engine::ArgValueCompleter::new(super::completions::ConversationIds))]
    conversation: Option<String>,
    /// Under each row, its usage by model (most spent first).
    #[arg(long)]
    breakdown: bool,
    /// Print a JSON array of the rows, without the total.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum By {
    Day,
    Week,
    Month,
    Model,
    Conversation,
    Workspace,
}

impl By {
    fn rows(self) -> UsageBy {
        match self {
            By::Day => UsageBy::Day,
            By::Week => UsageBy::Week,
            By::Month => UsageBy::Month,
            By::Model => UsageBy::Model,
            By::Conversation => UsageBy::Conversation,
            By::Workspace => UsageBy::Workspace,
        }
    }

    fn name(self) -> &'static str {
        match self {
            By::Day => "day",
            By::Week => "week",
            By::Month => "month",
            By::Model => "model",
            By::Conversation => "conversation",
            By::Workspace => "workspace",
        }
    }

    /// A row's key in the table (`home`: the home directory, written `~`).
    fn label(self, key: &str, home: Option<&str>) -> String {
        match (self, key) {
            (By::Workspace, "") => "no workspace".to_owned(),
            (By::Workspace, dir) => printable(&home_as_tilde(dir, home)),
            (_, "") => "no date".to_owned(),
            (_, key) => printable(key),
        }
    }
}

/// Why `usage` found no rows, given what it was asked.
fn why_none(q: &UsageQuery<'_>) -> String {
    if q.since.or(q.until).or(q.workspace).or(q.conversation).is_none() {
        return "no conversation here records token usage or cost".to_owned();
    }
    let mut why = "no usage recorded".to_owned();
    if let Some(id) = q.conversation {
        why += &format!(" in conversation {}", printable(id));
    }
    if q.since.is_some() || q.until.is_some() {
        why += &format!(" from {} to {}", q.since.unwrap_or("the start"), q.until.unwrap_or("the end"));
    }
    if let Some(dir) = q.workspace {
        why += &format!(" {}", in_workspace(dir));
    }
    why
}

pub fn run(a: UsageArgs) -> anyhow::Result<()> {
    let workspace = a.workspace.as_deref().map(workspace_named).transpose()?;
    let index = a.target.open()?;
    progress::refresh(&index, Default::default(), progress::QUIET_FOR)?;
    if let Some(id) = &a.conversation {
        index.show(id)?; // no such conversation: say so, naming those like it
    }
    let (since, until) = (a.since.as_deref(), a.until.as_deref());
    let conversation = a.conversation.as_deref();
    let query = UsageQuery { by: a.by.rows(), since, until, workspace: workspace.as_deref(), conversation };
    let usage = index.usage(&query)?;
    let rows = usage.rows;
    let mut out = std::io::BufWriter::new(super::stdout());
    if a.json {
        let rows: Vec<JsonRow> = rows.iter().map(|r| json(a.by, r, a.breakdown)).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(out.flush()?);
    }
    let home = crate::format::gptme::side::home_dir().map(|h| h.to_string_lossy().trim_end_matches('/').to_owned());
    let keys: Vec<String> = rows.iter().map(|r| a.by.label(&r.key, home.as_deref())).collect();
    // A row's models go beneath it, indented, when asked (a row of --by model is its model).
    let breakdown = a.breakdown && !matches!(a.by, By::Model);
    let model_label = |model: &UsageRow| format!("  {}", printable(&model.key));
    let widest_model = match breakdown {
        true => rows.iter().flat_map(|r| &r.by_model).map(|m| super::width(&model_label(m))).max().unwrap_or(0),
        false => 0,
    };
    let header = a.by.name().to_uppercase();
    let key_width = match a.by {
        By::Day | By::Week => 10,
        By::Month => 7,
        By::Model | By::Conversation | By::Workspace => keys.iter().map(|k| super::width(k)).max().unwrap_or(0),
    }
    .max(widest_model)
    .min(50)
    .max(header.len().max("TOTAL".len()));
    let models = if matches!(a.by, By::Model) || breakdown { "" } else { "  MODELS" };
    writeln!(
        out,
        "{}  {:>5}  {:>13}  {:>11}  {:>13}  {:>9}{models}",
        pad(&header, key_width),
        "CONVS",
        "INPUT",
        "OUTPUT",
        "CACHE READ",
        "COST"
    )?;
    if rows.is_empty() {
        out.flush()?; // the header first, then why it stands alone
        super::say(why_none(&query));
        return Ok(());
    }
    let line = |out: &mut dyn Write, key: &str, r: &UsageRow, models: bool| -> std::io::Result<()> {
        write!(
            out,
            "{}  {:>5}  {:>13}  {:>11}  {:>13}  {:>9}",
            pad(&if matches!(a.by, By::Workspace) { fit_end(key, key_width) } else { fit(key, key_width) }, key_width),
            r.conversations,
            tokens(r.input_tokens),
            tokens(r.output_tokens),
            tokens(r.cache_read_tokens),
            cost(r.cost)
        )?;
        match models && !matches!(a.by, By::Model) && !breakdown {
            true => {
                let names: Vec<&str> = r.by_model.iter().map(|m| m.key.as_str()).collect();
                writeln!(out, "  {}", printable(&names.join(", ")))
            }
            false => writeln!(out),
        }
    };
    for (key, r) in keys.iter().zip(&rows) {
        line(&mut out, key, r, true)?;
        if breakdown {
            for model in &r.by_model {
                line(&mut out, &model_label(model), model, false)?;
            }
        }
    }
    if rows.len() > 1 {
        line(&mut out, "TOTAL", &usage.total, false)?;
    }
    Ok(out.flush()?)
}

/// A path for people: the home directory as `~`.
fn home_as_tilde(path: &str, home: Option<&str>) -> String {
    match home.filter(|h| !h.is_empty()).and_then(|h| path.strip_prefix(h)) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("~{rest}"),
        _ => path.to_owned(),
    }
}

/// A row for `--json`: its key under the grouping's name (null for lines without a day, and
/// for a conversation's own directory as its workspace). Numbers are written as `query`
/// writes them: an infinite sum (gptme's can reach one) `1e999`, a NaN null.
fn json(by: By, r: &UsageRow, breakdown: bool) -> JsonRow {
    use rusqlite::types::Value as Sql;
    use serde_json::Value;
    let num = |n: PyNum| {
        JsonField::Number(match n {
            PyNum::Int(v) => Sql::Integer(v),
            PyNum::Float(v) => Sql::Real(v),
        })
    };
    let mut row = vec![
        (by.name(), JsonField::Plain(if r.key.is_empty() { Value::Null } else { r.key.clone().into() })),
        ("conversations", JsonField::Plain(r.conversations.into())),
        ("cost", num(PyNum::Float(r.cost))),
        ("input_tokens", num(r.input_tokens)),
        ("output_tokens", num(r.output_tokens)),
        ("cache_read_tokens", num(r.cache_read_tokens)),
    ];
    match by {
        By::Model => {}
        _ if breakdown => {
            let models = r.by_model.iter().map(|m| json(By::Model, m, false)).collect();
            row.push(("by_model", JsonField::Rows(models)));
        }
        _ => {
            let names: Vec<&str> = r.by_model.iter().map(|m| m.key.as_str()).collect();
            row.push(("models", JsonField::Plain(names.into())));
        }
    }
    JsonRow(row)
}

/// A `--json` row's fields, in order.
struct JsonRow(Vec<(&'static str, JsonField)>);

enum JsonField {
    Plain(serde_json::Value),
    Number(rusqlite::types::Value),
    Rows(Vec<JsonRow>),
}

impl serde::Serialize for JsonRow {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(key, field)| (key, field)))
    }
}

impl serde::Serialize for JsonField {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            JsonField::Plain(v) => v.serialize(s),
            JsonField::Number(n) => crate::store::sql::Json(n).serialize(s),
            JsonField::Rows(rows) => rows.serialize(s),
        }
    }
}

/// A token count with thousands separators (a float sum, as gptme's can be, as Python writes it).
pub fn tokens(n: PyNum) -> String {
    let PyNum::Int(v) = n else { return n.to_string() };
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 {
        out.insert(0, '-');
    }
    out
}

pub fn cost(usd: f64) -> String {
    match usd.is_finite() {
        true => format!("${usd:.2}"),
        false => format!("${}", PyNum::Float(usd)),
    }
}

/// Parses `--since` and `--until`: a date, or a month or year for all of it.
fn date_prefix(s: &str) -> Result<String, String> {
    let full = match s.len() {
        4 => format!("{s}-01-01"),
        7 => format!("{s}-01"),
        _ => s.to_owned(),
    };
    let valid = full.len() == 10 && chrono::NaiveDate::parse_from_str(&full, "%Y-%m-%d").is_ok();
    match valid && s.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        true => Ok(s.to_owned()),
        false => Err("a date as YYYY-MM-DD, or a month (YYYY-MM) or a year (YYYY)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_grouped_by_thousands() {
        let shown: Vec<String> = [0, 999, 1000, 1234567, -1234].into_iter().map(|v| tokens(PyNum::Int(v))).collect();
        assert_eq!(shown, ["0", "999", "1,000", "1,234,567", "-1,234"]);
        assert_eq!(tokens(PyNum::Float(1.5)), "1.5");
    }

    #[test]
    fn dates_are_days_months_or_years() {
        for good in ["2026", "2026-02", "2026-02-28"] {
            assert_eq!(date_prefix(good).as_deref(), Ok(good));
        }
        for bad in ["2026-02-30", "2026-13", "26-01-01", "2026/01/01", "2026-1-1", "", "+2026-01-01"] {
            assert!(date_prefix(bad).is_err(), "{bad}");
        }
    }
}
