//! Usage sums: `conversation_days` summed by day, week, month, model, conversation, workspace
//! or agent, each group counting a conversation once, for `convmeta usage`, `show`,
//! `/api/v2/usage` and `/metrics`.

use std::collections::HashMap;

use rusqlite::Connection;

use super::rows::{float, num, AGENT};
use crate::pynum::PyNum;

/// How [`usage`] groups `conversation_days` (also `usage --by`'s values, whose help the
/// comments are).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum UsageBy {
    /// The day each message was written, as its timestamp reads
    #[default]
    Day,
    /// The ISO week, Monday to Sunday, named by its Monday
    Week,
    Month,
    Model,
    Conversation,
    /// The conversation's workspace (`no workspace`: one inside the conversation's own
    /// directory, gptme's default)
    Workspace,
    /// The conversation's agent, by its name (by its path where its `gptme.toml` names none)
    Agent,
}

impl UsageBy {
    /// The grouping's name: `--by`'s value, a JSON row's key.
    pub fn name(self) -> &'static str {
        match self {
            UsageBy::Day => "day",
            UsageBy::Week => "week",
            UsageBy::Month => "month",
            UsageBy::Model => "model",
            UsageBy::Conversation => "conversation",
            UsageBy::Workspace => "workspace",
            UsageBy::Agent => "agent",
        }
    }
}

/// What [`usage`] sums, and how.
#[derive(Debug, Clone, Copy, Default)]
pub struct UsageQuery<'a> {
    pub by: UsageBy,
    /// From this day on, and up to this one (each `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, compared
    /// on as many characters, so a month is the whole month).
    pub since: Option<&'a str>,
    pub until: Option<&'a str>,
    /// Only conversations whose workspace is this directory or lies under it (resolved, no
    /// trailing `/`: `""` is the root).
    pub workspace: Option<&'a str>,
    /// Only this conversation.
    pub conversation: Option<&'a str>,
    /// Only models whose name contains this (ASCII letters in any case).
    pub model: Option<&'a str>,
    /// Only conversations of the agent of this name (see [`AGENT`]), ASCII letters in any case.
    pub agent: Option<&'a str>,
}

/// Usage summed over one group of `conversation_days`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsageRow {
    /// The day, month, model, conversation, workspace or agent; `""` for lines without a
    /// timestamp that reads, for a conversation's own directory as its workspace, for no agent,
    /// and for the total.
    pub key: String,
    pub conversations: usize,
    pub cost: f64,
    pub input_tokens: PyNum,
    pub output_tokens: PyNum,
    pub cache_read_tokens: PyNum,
    /// The group's usage by model (each keyed by its model, with no models of its own), most
    /// spent first.
    pub by_model: Vec<UsageRow>,
    /// By conversation, the conversation's name (its id when it has none of its own, as in
    /// gptme's items).
    pub name: Option<String>,
}

/// [`usage`]'s answer: a row a group, and all of them summed, from one reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    pub rows: Vec<UsageRow>,
    pub total: UsageRow,
}

impl Usage {
    /// Keeps at most `limit` rows (0: all), those looked for first: the most spent, or by day,
    /// week or month the latest. The total stays that of every row. Says whether any went.
    pub fn keep(&mut self, by: UsageBy, limit: usize) -> bool {
        let extra = if limit == 0 { 0 } else { self.rows.len().saturating_sub(limit) };
        match by {
            UsageBy::Day | UsageBy::Week | UsageBy::Month => drop(self.rows.drain(..extra)),
            UsageBy::Model | UsageBy::Conversation | UsageBy::Workspace | UsageBy::Agent => {
                self.rows.truncate(self.rows.len() - extra)
            }
        }
        extra > 0
    }
}

/// A [`UsageRow`] being summed, and its models' rows within it. Rows are added conversation by
/// conversation, each numbered in turn from 1, so a conversation is counted when its number
/// differs from the last one added.
struct UsageSum {
    row: UsageRow,
    last_conversation: u64,
    /// None for a model's own row.
    by_model: Option<Vec<UsageSum>>,
}

impl UsageSum {
    fn new(key: &str) -> UsageSum {
        let row = UsageRow { key: key.to_owned(), ..UsageRow::default() };
        UsageSum { row, last_conversation: 0, by_model: Some(Vec::new()) }
    }

    fn add(&mut self, conversation: u64, model: &str, cost: f64, tokens: [PyNum; 3]) {
        if self.last_conversation != conversation {
            self.last_conversation = conversation;
            self.row.conversations += 1;
        }
        if let Some(models) = &mut self.by_model {
            let at = match models.iter().position(|m| m.row.key == model) {
                Some(at) => at,
                None => {
                    models.push(UsageSum { by_model: None, ..UsageSum::new(model) });
                    models.len() - 1
                }
            };
            models[at].add(conversation, model, cost, tokens);
        }
        let (row, overflow) = (&mut self.row, &mut false);
        row.cost += cost;
        row.input_tokens = row.input_tokens.add(tokens[0], overflow);
        row.output_tokens = row.output_tokens.add(tokens[1], overflow);
        row.cache_read_tokens = row.cache_read_tokens.add(tokens[2], overflow);
    }

    fn finish(mut self) -> UsageRow {
        self.row.by_model = self.by_model.unwrap_or_default().into_iter().map(UsageSum::finish).collect();
        self.row.by_model.sort_by(|a, b| b.cost.total_cmp(&a.cost).then_with(|| a.key.cmp(&b.key)));
        self.row
    }
}

/// Sums `conversation_days` as `q` asks: inclusive of `since` and `until` (either given, lines
/// without a day are left out), of the conversations in `q.workspace`, or of one, on the
/// models `q.model` names. `logs` is the logs
/// directory resolved, which tells a conversation's own directory. Days, weeks and months come
/// in order, the rest by cost, most first. Summed here rather than by SQLite's `sum()`, which
/// fails on an integer overflow: sums add as the rows' do, saturating.
pub fn usage(conn: &Connection, q: &UsageQuery<'_>, logs: &str) -> rusqlite::Result<Usage> {
    // Only the conditions asked for, so that one conversation's rows come by its key, and
    // `conversations` joined only for its workspace.
    let mut values: Vec<String> = Vec::new();
    let mut bind = |value: &str| {
        values.push(value.to_owned());
        format!("?{}", values.len())
    };
    let key = match q.by {
        UsageBy::Day => "d.day".to_owned(),
        UsageBy::Week => "coalesce(date(d.day, 'weekday 0', '-6 days'), '')".to_owned(),
        UsageBy::Month => "substr(d.day, 1, 7)".to_owned(),
        UsageBy::Model => "d.model".to_owned(),
        UsageBy::Conversation => "d.conversation_id".to_owned(),
        UsageBy::Workspace => {
            let own = format!("{} || '/' || c.id || '/'", bind(logs));
            format!("CASE WHEN instr(c.workspace || '/', {own}) = 1 THEN '' ELSE c.workspace END")
        }
        UsageBy::Agent => AGENT.to_owned(),
    };
    // Joined, each conversation seeks its days (CROSS JOIN holds SQLite to that order), rather
    // than each day row its conversation: a fifth of the lookups. By id, so that the sums add
    // in the same order either way.
    let (from, order) =
        match matches!(q.by, UsageBy::Workspace | UsageBy::Agent) || q.workspace.is_some() || q.agent.is_some() {
            true => ("conversations c CROSS JOIN conversation_days d ON d.conversation_id = c.id", "c.id"),
            false => ("conversation_days d", "d.conversation_id"),
        };
    let mut sql = format!(
        "SELECT {key}, d.conversation_id, d.model, d.cost, d.input_tokens, d.output_tokens, d.cache_read_tokens \
         FROM {from} WHERE 1"
    );
    if let Some(since) = q.since {
        sql += &format!(" AND d.day != '' AND substr(d.day, 1, length({0})) >= {0}", bind(since));
    }
    if let Some(until) = q.until {
        sql += &format!(" AND d.day != '' AND substr(d.day, 1, length({0})) <= {0}", bind(until));
    }
    if let Some(dir) = q.workspace {
        sql += &format!(" AND (c.workspace = {0} OR instr(c.workspace, {0} || '/') = 1)", bind(dir));
    }
    if let Some(id) = q.conversation {
        sql += &format!(" AND d.conversation_id = {}", bind(id));
    }
    if let Some(model) = q.model {
        sql += &format!(" AND instr(lower(d.model), lower({})) > 0", bind(model));
    }
    if let Some(agent) = q.agent {
        sql += &format!(" AND lower({AGENT}) = lower({})", bind(agent));
    }
    // The table's own order, so no sort: each conversation's rows together (see UsageSum).
    let mut stmt = conn.prepare(&(sql + " ORDER BY " + order))?;
    let mut rows = stmt.query(rusqlite::params_from_iter(&values))?;
    // The groups in the order they come, found by key; the last row's is tried first, since a
    // conversation's rows mostly share their key (its workspace, or its day).
    let (mut groups, mut found) = (Vec::<UsageSum>::new(), HashMap::<String, usize>::new());
    let (mut total, mut at) = (UsageSum::new(""), 0);
    let (mut last_id, mut conversation) = (String::new(), 0);
    while let Some(r) = rows.next()? {
        let key = r.get_ref(0)?.as_str()?;
        let (id, model) = (r.get_ref(1)?.as_str()?, r.get_ref(2)?.as_str()?);
        if conversation == 0 || id != last_id {
            last_id.replace_range(.., id);
            conversation += 1;
        }
        let (cost, tokens) = (float(r.get_ref(3)?), [num(r.get_ref(4)?), num(r.get_ref(5)?), num(r.get_ref(6)?)]);
        if groups.get(at).is_none_or(|g| g.row.key != key) {
            at = match found.get(key) {
                Some(&at) => at,
                None => {
                    found.insert(key.to_owned(), groups.len());
                    groups.push(UsageSum::new(key));
                    groups.len() - 1
                }
            };
        }
        groups[at].add(conversation, model, cost, tokens);
        total.add(conversation, model, cost, tokens);
    }
    let mut groups: Vec<UsageRow> = groups.into_iter().map(UsageSum::finish).collect();
    match q.by {
        UsageBy::Day | UsageBy::Week | UsageBy::Month => groups.sort_by(|a, b| a.key.cmp(&b.key)),
        _ => groups.sort_by(|a, b| b.cost.total_cmp(&a.cost).then_with(|| a.key.cmp(&b.key))),
    }
    if q.by == UsageBy::Conversation {
        // The names that differ from their ids, from the newest-first index, which holds both:
        // a scan of it costs a tenth of looking each conversation up by its id.
        let mut names = conn.prepare_cached("SELECT id, name FROM conversations WHERE name != id")?;
        let mut names: HashMap<String, String> =
            names.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
        for group in &mut groups {
            group.name = Some(names.remove(&group.key).unwrap_or_else(|| group.key.clone()));
        }
    }
    Ok(Usage { rows: groups, total: total.finish() })
}
