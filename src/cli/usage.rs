use std::io::Write;

use clap::Args;

use super::{
    conversation_label, fit, fit_end, in_workspace, of_agent, pad, printable, progress, thousands, workspace_named,
    Target,
};
use crate::pynum::PyNum;
use crate::store::usage::{UsageBy, UsageQuery, UsageRow};
use crate::usage::{json_row, DateSpan, JsonRow};

#[derive(Args)]
pub struct UsageArgs {
    #[command(flatten)]
    target: Target,
    /// Sum by the day each message was written (as its timestamp reads), by week (named by its
    /// Monday), by month, by model, by conversation, by workspace or by agent (these four most
    /// spent first: where the spend of --since/--until went).
    #[arg(long, value_enum, default_value_t = UsageBy::Day)]
    by: UsageBy,
    /// From this day on: YYYY-MM-DD, today, yesterday, days or weeks ago (7d: a week ago; 2w),
    /// or YYYY-MM or YYYY for the whole month or year.
    #[arg(long, value_name = "DATE", value_parser = crate::usage::date_span, add = clap_complete::engine::ArgValueCompleter::new(super::completions::DateForms))]
    pub(super) since: Option<DateSpan>,
    /// Up to this day, included: YYYY-MM-DD, today, yesterday, days or weeks ago (7d, 2w), or
    /// YYYY-MM or YYYY for the whole month or year.
    #[arg(long, value_name = "DATE", value_parser = crate::usage::date_span, add = clap_complete::engine::ArgValueCompleter::new(super::completions::DateForms))]
    pub(super) until: Option<DateSpan>,
    /// Only conversations whose workspace is DIR or a directory under it (`.`: this project).
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    workspace: Option<std::path::PathBuf>,
    /// Only this conversation: its id, or its directory or log, as `show` takes them.
    #[arg(long, value_name = "ID", value_parser = super::conversation_id, add = clap_complete::engine::ArgValueCompleter::new(super::completions::ConversationIds))]
    conversation: Option<String>,
    /// Only usage on models whose name contains TEXT (any case): `opus`, `openai/`.
    #[arg(long, value_name = "TEXT", add = clap_complete::engine::ArgValueCompleter::new(super::completions::ModelNames))]
    model: Option<String>,
    /// Only conversations of the agent named NAME (any case; its path where its gptme.toml
    /// names none), as `--by agent` names agents.
    #[arg(long, value_name = "NAME", add = clap_complete::engine::ArgValueCompleter::new(super::completions::AgentNames))]
    agent: Option<String>,
    /// How many rows (0: all): the most spent, or by day, week or month the latest; the total
    /// is still that of all of them
    #[arg(short = 'n', long, default_value_t = 0, value_name = "N", value_parser = super::list::count, allow_negative_numbers = true)]
    limit: usize,
    /// Under each row, its usage by model (most spent first).
    #[arg(long)]
    breakdown: bool,
    /// Print a JSON array of the rows, without the total.
    #[arg(long)]
    json: bool,
}

/// The widest a row's key is shown: a conversation's holds its name too. On a terminal, no
/// wider than leaves the line room for the figures and a start of the models (a conversation's
/// id is kept whole all the same, as `label` keeps it).
fn widest_key(by: UsageBy) -> usize {
    let most = match by {
        UsageBy::Conversation => 64,
        _ => 50,
    };
    most.min(super::room_after(FIGURES + MODELS_AT_LEAST).max(20))
}

/// The columns of a row's figures, after its key, at their narrowest: 2 + 7 (CONVS), 2 + 13,
/// 2 + 11, 2 + 13 (the tokens), 2 + 10 (COST), and the 2 before the models.
const FIGURES: usize = 66;

/// The figures' columns at their narrowest (see [`FIGURES`]): a wider figure widens its
/// column, every row's alike.
const FIGURE_WIDTHS: [usize; 5] = [7, 13, 11, 13, 10];

/// A row's figures as the table writes them: conversations; input, output and cache-read
/// tokens; cost.
fn figures(r: &UsageRow) -> [String; 5] {
    let (input, output, cache) = (tokens(r.input_tokens), tokens(r.output_tokens), tokens(r.cache_read_tokens));
    [thousands(r.conversations as u64), input, output, cache, cost(r.cost)]
}

/// The least of the models a row shows on a terminal: a name's start.
const MODELS_AT_LEAST: usize = 12;

/// A row's key in the table, in at most `max` columns (`home`: the home directory, written
/// `~`).
fn label(by: UsageBy, r: &UsageRow, home: Option<&str>, max: usize) -> String {
    match (by, r.key.as_str()) {
        (UsageBy::Workspace, "") => "no workspace".to_owned(),
        (UsageBy::Workspace, path) => fit_end(&printable(&home_as_tilde(path, home)), max),
        (UsageBy::Agent, "") => "no agent".to_owned(),
        (UsageBy::Agent, path) if path.starts_with('/') => fit_end(&printable(&home_as_tilde(path, home)), max),
        (UsageBy::Conversation, id) => {
            conversation_label(r.name.as_deref().unwrap_or(id), id, max.max(super::width(&printable(id))))
        }
        (_, "") => "no date".to_owned(),
        (_, key) => fit(&printable(key), max),
    }
}

/// Why `usage` found no rows, given what it was asked.
fn why_none(q: &UsageQuery<'_>) -> String {
    if q.since.or(q.until).or(q.workspace).or(q.conversation).or(q.model).or(q.agent).is_none() {
        return "no conversation here records token usage or cost".to_owned();
    }
    let mut why = "no usage recorded".to_owned();
    if let Some(id) = q.conversation {
        why += &format!(" in conversation {}", printable(id));
    }
    match (q.since, q.until) {
        (Some(since), Some(until)) => why += &format!(" from {since} to {until}"),
        (Some(since), None) => why += &format!(" in or after {since}"),
        (None, Some(until)) => why += &format!(" in or before {until}"),
        (None, None) => {}
    }
    if let Some(dir) = q.workspace {
        why += &format!(" {}", in_workspace(dir));
    }
    if let Some(agent) = q.agent {
        why += &format!(" {}", of_agent(agent));
    }
    if let Some(model) = q.model {
        why += &format!(" on a model whose name contains {model:?}");
    }
    why
}

pub fn run(a: UsageArgs) -> anyhow::Result<()> {
    let workspace = a.workspace.as_deref().map(workspace_named).transpose()?;
    let index = a.target.open()?;
    progress::refresh(&index, Default::default(), progress::QUIET_FOR)?;
    // Named as `show` takes it: its id, its directory or its log.
    let conversation = a.conversation.as_deref().map(|arg| super::id_named(arg, index.logs()));
    if let Some(id) = &conversation {
        index.show(id)?; // no such conversation: say so, naming those like it
    }
    let (since, until) = (a.since.as_ref().map(|d| d.text.as_str()), a.until.as_ref().map(|d| d.text.as_str()));
    let conversation = conversation.as_deref();
    let (workspace, model) = (workspace.as_deref(), a.model.as_deref());
    let agent = a.agent.as_deref();
    let query = UsageQuery { by: a.by, since, until, workspace, conversation, model, agent };
    let mut usage = index.usage(&query)?;
    let all = usage.rows.len();
    let more = usage.keep(a.by, a.limit);
    let rows = usage.rows;
    let mut out = std::io::BufWriter::new(super::stdout());
    let said_more = || {
        if more {
            let (shown, all) = (thousands(rows.len() as u64), thousands(all as u64));
            super::say(format_args!("{shown} of {all} rows shown; the total is of all (`-n 0` shows them all)"));
        }
    };
    if a.json {
        let json: Vec<JsonRow> = rows.iter().map(|r| json_row(a.by, r, a.breakdown)).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
        out.flush()?;
        said_more();
        return Ok(());
    }
    let home = crate::format::gptme::side::home_dir().map(|h| h.to_string_lossy().trim_end_matches('/').to_owned());
    let widest = widest_key(a.by);
    let keys: Vec<String> = rows.iter().map(|r| label(a.by, r, home.as_deref(), widest)).collect();
    // A row's models go beneath it, indented, when asked (a row of --by model is its model).
    let breakdown = a.breakdown && !matches!(a.by, UsageBy::Model);
    let model_label = |model: &UsageRow| format!("  {}", printable(&model.key));
    let widest_model = match breakdown {
        true => rows.iter().flat_map(|r| &r.by_model).map(|m| super::width(&model_label(m))).max().unwrap_or(0),
        false => 0,
    };
    let header = a.by.name().to_uppercase();
    // The keys are no wider than `widest` already, but for a conversation's id kept whole.
    let key_width = match a.by {
        UsageBy::Day | UsageBy::Week => 10,
        UsageBy::Month => 7,
        UsageBy::Model | UsageBy::Conversation | UsageBy::Workspace | UsageBy::Agent => {
            keys.iter().map(|k| super::width(k)).max().unwrap_or(0)
        }
    }
    .max(widest_model.min(widest))
    .max(header.len().max("TOTAL".len()));
    let mut widths = FIGURE_WIDTHS;
    let breakdowns = rows.iter().flat_map(|r| &r.by_model).filter(|_| breakdown);
    for r in rows.iter().chain(breakdowns).chain([&usage.total]) {
        for (width, figure) in widths.iter_mut().zip(figures(r)) {
            *width = (*width).max(figure.len());
        }
    }
    let [w_convs, w_input, w_output, w_cache, w_cost] = widths;
    let models = if matches!(a.by, UsageBy::Model) || breakdown { "" } else { "  MODELS" };
    writeln!(
        out,
        "{}  {:>w_convs$}  {:>w_input$}  {:>w_output$}  {:>w_cache$}  {:>w_cost$}{models}",
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
    // On a terminal the models are cut to the line, keeping at least a name's start.
    let figures_width = FIGURES + widths.iter().sum::<usize>() - FIGURE_WIDTHS.iter().sum::<usize>();
    let models_room = super::room_after(key_width + figures_width).max(MODELS_AT_LEAST);
    let line = |out: &mut dyn Write, key: &str, r: &UsageRow, models: bool| -> std::io::Result<()> {
        let [convs, input, output, cache, cost] = figures(r);
        write!(
            out,
            "{}  {convs:>w_convs$}  {input:>w_input$}  {output:>w_output$}  {cache:>w_cache$}  {cost:>w_cost$}",
            pad(&fit(key, key_width), key_width),
        )?;
        match models && !matches!(a.by, UsageBy::Model) && !breakdown {
            true => {
                let names: Vec<&str> = r.by_model.iter().map(|m| m.key.as_str()).collect();
                writeln!(out, "  {}", fit(&printable(&names.join(", ")), models_room))
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
    if rows.len() > 1 || more {
        line(&mut out, "TOTAL", &usage.total, false)?;
    }
    out.flush()?;
    said_more();
    Ok(())
}

/// A path for people: the home directory as `~`.
fn home_as_tilde(path: &str, home: Option<&str>) -> String {
    match home.filter(|h| !h.is_empty()).and_then(|h| path.strip_prefix(h)) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("~{rest}"),
        _ => path.to_owned(),
    }
}

/// A token count with thousands separators (a float sum, as gptme's can be, as Python writes it).
pub fn tokens(n: PyNum) -> String {
    let PyNum::Int(v) = n else { return n.to_string() };
    let sign = if v < 0 { "-" } else { "" };
    format!("{sign}{}", thousands(v.unsigned_abs()))
}

/// A cost in dollars to the cent, grouped as token counts are (`$1,622.17`); a sum that is not
/// finite as Python writes it (`$NaN`).
pub fn cost(usd: f64) -> String {
    if !usd.is_finite() {
        return format!("${}", PyNum::Float(usd));
    }
    let cents = format!("{usd:.2}");
    let (sign, cents) = cents.split_at(usize::from(cents.starts_with('-')));
    let (whole, fraction) = cents.split_once('.').expect("two decimals");
    format!("${sign}{}.{fraction}", super::grouped(whole))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key is cut to the room it is given, but a conversation's id never: by it `show` and
    /// `--conversation` find the conversation.
    #[test]
    fn a_conversations_key_keeps_its_id_whole() {
        let id = "2026-03-01-a-conversation-with-a-long-id";
        let row = UsageRow { key: id.into(), name: Some("A long name for it".into()), ..UsageRow::default() };
        assert_eq!(label(UsageBy::Conversation, &row, None, 64), format!("A long name for it ({id})"));
        assert_eq!(label(UsageBy::Conversation, &row, None, 50), format!("A long… ({id})"));
        assert_eq!(label(UsageBy::Conversation, &row, None, 20), id, "no room for the name: the id alone");
        let model = UsageRow { key: "anthropic/claude-opus-4-1-20250805".into(), ..UsageRow::default() };
        assert_eq!(label(UsageBy::Model, &model, None, 20), "anthropic/claude-op…");
    }

    #[test]
    fn tokens_are_grouped_by_thousands() {
        let shown: Vec<String> = [0, 999, 1000, 1234567, -1234].into_iter().map(|v| tokens(PyNum::Int(v))).collect();
        assert_eq!(shown, ["0", "999", "1,000", "1,234,567", "-1,234"]);
        assert_eq!(tokens(PyNum::Float(1.5)), "1.5");
    }

    #[test]
    fn costs_are_grouped_by_thousands_to_the_cent() {
        let shown: Vec<String> = [0.0, 0.004, 999.999, 1622.17, 1234567.891, -1234.5].into_iter().map(cost).collect();
        assert_eq!(shown, ["$0.00", "$0.00", "$1,000.00", "$1,622.17", "$1,234,567.89", "$-1,234.50"]);
        assert_eq!(cost(f64::NAN), "$NaN");
    }
}
