//! Row reads and writes. Plain data in, plain data out: this module knows the schema, not the
//! formats.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension, ToSql};

use crate::pynum::PyNum;

/// A file's identity and state when it was last read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
}

/// A log's `mtime_ns` that no stat matches, stored for a log written in the clock tick it was
/// read in: the next refresh reads the log on from where this one stopped, which checks its
/// fingerprints again.
pub const UNSETTLED_MTIME: i64 = i64::MIN;

/// What the sweep compares against: cheap to load for every conversation at once.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredState {
    /// None when the log was not a regular file.
    pub log: Option<FileStamp>,
    pub side_stamp: u64,
    pub agent_toml: Option<String>,
    /// `Side::link_paths`: the side stamp includes where they lead, and named refreshes take
    /// the conversation along.
    pub link_paths: Vec<String>,
}

/// Where to resume reading a log, and the side files' fields as last read.
#[derive(Debug, Clone)]
pub struct Resume {
    pub offset: u64,
    pub fingerprint: u64,
    pub accumulator: String,
    pub side: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelRow {
    pub model: String,
    pub cost: f64,
    pub input_tokens: PyNum,
    pub output_tokens: PyNum,
    pub cache_read_tokens: PyNum,
}

/// One `conversation_days` row: a model's usage on one day.
#[derive(Debug, Clone, PartialEq)]
pub struct DayRow {
    pub day: String,
    pub usage: ModelRow,
}

/// One `conversations` row plus its bookkeeping.
#[derive(Debug, Clone)]
pub struct ConversationRow {
    pub id: String,
    pub name: String,
    pub path: String,
    pub created: f64,
    pub modified: f64,
    pub messages: i64,
    pub branches: i64,
    pub workspace: String,
    pub agent_name: Option<String>,
    pub agent_path: Option<String>,
    pub agent_avatar: Option<String>,
    pub agent_urls: Option<String>,
    pub model: Option<String>,
    pub total_cost: f64,
    pub total_input_tokens: PyNum,
    pub total_output_tokens: PyNum,
    pub total_cache_read_tokens: PyNum,
    /// The same data as `models`, as the item's JSON: rows are rewritten only when it changes.
    pub models_usage: String,
    pub models: Vec<ModelRow>,
    /// `models` split by day, by day and model (as `conversation_days` keeps them).
    pub days: Vec<DayRow>,
    pub last_message_role: Option<String>,
    pub last_message_preview: Option<String>,
    pub hidden: bool,
    pub problems: i64,
    pub problem_notes: Option<String>,
    pub item_json: String,
    pub state: StoredState,
    pub resume: Resume,
    /// No row was stored for this id when the refresh looked: its insert is tried first, and
    /// when it succeeds there is no old row to read or per-model rows to delete.
    pub looks_new: bool,
}

fn to_i64(v: u64) -> i64 {
    v as i64
}

/// Reads a `StoredState` from columns `from..from + 5` (ino, size, mtime, side stamp, agent).
fn stored_state(r: &rusqlite::Row<'_>, from: usize) -> rusqlite::Result<StoredState> {
    let ino: Option<i64> = r.get(from)?;
    let log = match ino {
        Some(ino) => {
            Some(FileStamp { ino: ino as u64, size: r.get::<_, i64>(from + 1)? as u64, mtime_ns: r.get(from + 2)? })
        }
        None => None,
    };
    Ok(StoredState {
        log,
        side_stamp: r.get::<_, i64>(from + 3)? as u64,
        agent_toml: r.get(from + 4)?,
        // JSON text, NULL for none; one this build cannot read counts as none.
        link_paths: r
            .get::<_, Option<String>>(from + 5)?
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default(),
    })
}

/// Forgets where every log was read to, and every side stamp: each conversation is read whole
/// at the next refresh, its side files too.
pub const FORGET_EVERY_READ: &str = "UPDATE _scan_state SET log_ino = NULL, side_stamp = 0";

/// A row as a change of time zone sees it: where its `created` came from, and the row to
/// render it again in.
pub struct ZoneState {
    pub id: String,
    /// The stored state's `created` (JSON text of `Created`, or its name); None if unreadable.
    pub created_from: Option<String>,
    /// The zone decided which line gives `created` (`Accumulator::created_zone_bound`).
    pub zone_bound: bool,
    /// Its side stamp is forgotten: the next refresh renders it whole anyway.
    pub side_forgotten: bool,
    /// `created` as the row holds it, rendered in the zone recorded before.
    pub created: Option<f64>,
    pub item_json: Option<String>,
}

/// Up to `limit` rows after `after`, by id, as a change of time zone sees them.
pub fn zone_states(conn: &Connection, after: &str, limit: usize) -> rusqlite::Result<Vec<ZoneState>> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.id, json_extract(s.state, '$.created'), coalesce(json_extract(s.state, '$.created_zone_bound'), 0), \
         s.side_stamp = 0, c.created, c.item_json \
         FROM (SELECT id, side_stamp, CASE WHEN json_valid(accumulator) THEN accumulator ELSE '{}' END AS state \
               FROM _scan_state WHERE id > ?1 ORDER BY id LIMIT ?2) s \
         LEFT JOIN conversations c ON c.id = s.id ORDER BY s.id",
    )?;
    let rows = stmt.query_map(params![after, limit as i64], |r| {
        Ok(ZoneState {
            id: r.get(0)?,
            created_from: r.get_ref(1)?.as_str().ok().map(str::to_owned),
            zone_bound: r.get_ref(2)?.as_i64().is_ok_and(|b| b != 0),
            side_forgotten: r.get(3)?,
            created: r.get_ref(4)?.as_f64().ok(),
            item_json: r.get(5)?,
        })
    })?;
    rows.collect()
}

/// Writes a row's `created` rendered in another zone, and its item with it.
pub fn set_created(conn: &Connection, id: &str, created: f64, item_json: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE conversations SET created = ?2, item_json = ?3 WHERE id = ?1")?
        .execute(params![id, created, item_json])
        .map(drop)
}

/// Forgets one row's side stamp, so that the next refresh renders its item again, and with
/// `log` where its log was read to, so that it reads the log whole.
pub fn forget_read(conn: &Connection, id: &str, log: bool) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE _scan_state SET side_stamp = 0, log_ino = CASE WHEN ?2 THEN NULL ELSE log_ino END WHERE id = ?1",
    )?
    .execute(params![id, log])
    .map(drop)
}

pub fn load_states(conn: &Connection) -> rusqlite::Result<HashMap<String, StoredState>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, log_ino, log_size, log_mtime_ns, side_stamp, agent_toml, link_paths FROM _scan_state",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, stored_state(r, 1)?)))?;
    rows.collect()
}

pub fn load_state(conn: &Connection, id: &str) -> rusqlite::Result<Option<StoredState>> {
    conn.prepare_cached(
        "SELECT log_ino, log_size, log_mtime_ns, side_stamp, agent_toml, link_paths FROM _scan_state WHERE id = ?1",
    )?
    .query_row([id], |r| stored_state(r, 0))
    .optional()
}

/// The conversations with `link_paths` (a partial index finds them).
pub fn linked(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached("SELECT id FROM _scan_state WHERE link_paths IS NOT NULL")?
        .query_map([], |r| r.get(0))?
        .collect()
}

/// The conversations that use an agent's `gptme.toml`, and its path (a partial index finds them).
pub fn agent_uses(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    conn.prepare_cached("SELECT id, agent_toml FROM _scan_state WHERE agent_toml IS NOT NULL")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

pub fn load_resume(conn: &Connection, id: &str) -> rusqlite::Result<Option<Resume>> {
    conn.prepare_cached("SELECT log_offset, log_fingerprint, accumulator, side FROM _scan_state WHERE id = ?1")?
        .query_row([id], |r| {
            Ok(Resume {
                offset: r.get::<_, i64>(0)? as u64,
                fingerprint: r.get::<_, i64>(1)? as u64,
                accumulator: r.get(2)?,
                side: r.get(3)?,
            })
        })
        .optional()
}

const CONVERSATION_COLUMNS: &[&str] = &[
    "id",
    "name",
    "path",
    "created",
    "modified",
    "messages",
    "branches",
    "workspace",
    "agent_name",
    "agent_path",
    "agent_avatar",
    "agent_urls",
    "model",
    "total_cost",
    "total_input_tokens",
    "total_output_tokens",
    "total_cache_read_tokens",
    "models_usage",
    "last_message_role",
    "last_message_preview",
    "hidden",
    "problems",
    "problem_notes",
    "item_json",
];

const STATE_COLUMNS: &[&str] = &[
    "id",
    "log_ino",
    "log_size",
    "log_mtime_ns",
    "log_offset",
    "log_fingerprint",
    "accumulator",
    "side_stamp",
    "agent_toml",
    "side",
    "link_paths",
];

/// `INSERT … ON CONFLICT (id) DO UPDATE` over `columns` (the first is `id`): updating in place
/// writes fewer pages than delete-then-insert. With `update` false, `DO NOTHING`.
fn upsert_sql(table: &str, columns: &[&str], update: bool) -> String {
    let params: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
    let sets: Vec<String> = columns[1..].iter().map(|c| format!("{c} = excluded.{c}")).collect();
    let action = if update { format!("UPDATE SET {}", sets.join(", ")) } else { "NOTHING".into() };
    format!("INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT (id) DO {action}", columns.join(", "), params.join(", "))
}

pub fn upsert(conn: &Connection, row: &ConversationRow) -> rusqlite::Result<()> {
    static INSERT_SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| upsert_sql("conversations", CONVERSATION_COLUMNS, false));
    static CONVERSATION_SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| upsert_sql("conversations", CONVERSATION_COLUMNS, true));
    static STATE_SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| upsert_sql("_scan_state", STATE_COLUMNS, true));
    let values = params![
        row.id,
        row.name,
        row.path,
        row.created,
        row.modified,
        row.messages,
        row.branches,
        row.workspace,
        row.agent_name,
        row.agent_path,
        row.agent_avatar,
        row.agent_urls,
        row.model,
        // A NaN is stored as text: SQLite would make it NULL.
        PyNum::Float(row.total_cost),
        row.total_input_tokens,
        row.total_output_tokens,
        row.total_cache_read_tokens,
        row.models_usage,
        row.last_message_role,
        row.last_message_preview,
        row.hidden,
        row.problems,
        row.problem_notes,
        row.item_json,
    ];
    // Another process may have written the row since the refresh looked: the insert says.
    let inserted = row.looks_new && conn.prepare_cached(&INSERT_SQL)?.execute(values)? == 1;
    let mut old_usage = None;
    if !inserted {
        // The per-model rows change only when an assistant message adds usage: most appends (a
        // user message, a tool result) leave them alone, and skipping them writes fewer pages.
        old_usage = conn
            .prepare_cached("SELECT models_usage FROM conversations WHERE id = ?1")?
            .query_row([&row.id], |r| r.get::<_, String>(0))
            .optional()?;
        conn.prepare_cached(&CONVERSATION_SQL)?.execute(values)?;
    }
    if old_usage.as_deref() != Some(row.models_usage.as_str()) {
        if !inserted {
            conn.prepare_cached("DELETE FROM conversation_models WHERE conversation_id = ?1")?.execute([&row.id])?;
        }
        let mut models = conn.prepare_cached(
            "INSERT INTO conversation_models (conversation_id, model, cost, input_tokens, output_tokens, cache_read_tokens)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for m in &row.models {
            insert_usage(&mut models, &[&row.id], m)?;
        }
    }
    // The per-day rows change with the per-model ones but for sums a line leaves as they were
    // (a zero, a float too small to move one), which can still add a day: then they are compared.
    if inserted
        || old_usage.as_deref() != Some(row.models_usage.as_str())
        || !same_days(&day_rows(conn, &row.id)?, &row.days)
    {
        if !inserted {
            conn.prepare_cached("DELETE FROM conversation_days WHERE conversation_id = ?1")?.execute([&row.id])?;
        }
        insert_days(conn, row)?;
    }
    let log = row.state.log;
    conn.prepare_cached(&STATE_SQL)?.execute(params![
        row.id,
        log.map(|l| to_i64(l.ino)),
        log.map(|l| to_i64(l.size)),
        log.map(|l| l.mtime_ns),
        to_i64(row.resume.offset),
        to_i64(row.resume.fingerprint),
        row.resume.accumulator,
        to_i64(row.state.side_stamp),
        row.state.agent_toml,
        row.resume.side,
        (!row.state.link_paths.is_empty()).then(|| serde_json::to_string(&row.state.link_paths).expect("strings")),
    ])?;
    Ok(())
}

/// Whether two conversations' day rows store alike: a NaN sum (stored as the text `NaN`) is
/// the same as another, where `==` would have the rows rewritten on every change.
fn same_days(a: &[DayRow], b: &[DayRow]) -> bool {
    let float = |x: f64, y: f64| x == y || (x.is_nan() && y.is_nan());
    let num = |x: PyNum, y: PyNum| match (x, y) {
        (PyNum::Int(x), PyNum::Int(y)) => x == y,
        (PyNum::Float(x), PyNum::Float(y)) => float(x, y),
        _ => false,
    };
    let same = |a: &DayRow, b: &DayRow| {
        let (x, y) = (&a.usage, &b.usage);
        a.day == b.day
            && x.model == y.model
            && float(x.cost, y.cost)
            && num(x.input_tokens, y.input_tokens)
            && num(x.output_tokens, y.output_tokens)
            && num(x.cache_read_tokens, y.cache_read_tokens)
    };
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b))
}

fn insert_days(conn: &Connection, row: &ConversationRow) -> rusqlite::Result<()> {
    let mut days = conn.prepare_cached(
        "INSERT INTO conversation_days (conversation_id, day, model, cost, input_tokens, output_tokens, cache_read_tokens)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for d in &row.days {
        insert_usage(&mut days, &[&row.id, &d.day], &d.usage)?;
    }
    Ok(())
}

/// Inserts one usage row: `keys` (the conversation, and the day for a day's row), then the
/// model and its sums.
fn insert_usage(stmt: &mut rusqlite::CachedStatement<'_>, keys: &[&dyn ToSql], m: &ModelRow) -> rusqlite::Result<()> {
    let cost = PyNum::Float(m.cost);
    let sums: [&dyn ToSql; 5] = [&m.model, &cost, &m.input_tokens, &m.output_tokens, &m.cache_read_tokens];
    stmt.execute(rusqlite::params_from_iter(keys.iter().chain(&sums))).map(drop)
}

/// A conversation's agent as `usage --by agent` and `--agent` name it: its name, else its path
/// (an agent whose `gptme.toml` names none, or names it `""`), else `''`, none (of
/// `conversations` as `c`).
pub const AGENT: &str = "coalesce(nullif(c.agent_name, ''), c.agent_path, '')";

/// A sum as stored (see `PyNum`'s `ToSql`).
pub(super) fn num(v: rusqlite::types::ValueRef<'_>) -> PyNum {
    match v {
        rusqlite::types::ValueRef::Integer(i) => PyNum::Int(i),
        rusqlite::types::ValueRef::Real(f) => PyNum::Float(f),
        rusqlite::types::ValueRef::Text(b"NaN") => PyNum::Float(f64::NAN),
        _ => PyNum::Int(0),
    }
}

pub(super) fn float(v: rusqlite::types::ValueRef<'_>) -> f64 {
    match num(v) {
        PyNum::Int(i) => i as f64,
        PyNum::Float(f) => f,
    }
}

/// A conversation's `conversation_days` rows as stored, by day and model.
fn day_rows(conn: &Connection, id: &str) -> rusqlite::Result<Vec<DayRow>> {
    conn.prepare_cached(
        "SELECT day, model, cost, input_tokens, output_tokens, cache_read_tokens FROM conversation_days \
         WHERE conversation_id = ?1 ORDER BY day, model",
    )?
    .query_map([id], |r| {
        Ok(DayRow {
            day: r.get(0)?,
            usage: ModelRow {
                model: r.get(1)?,
                cost: float(r.get_ref(2)?),
                input_tokens: num(r.get_ref(3)?),
                output_tokens: num(r.get_ref(4)?),
                cache_read_tokens: num(r.get_ref(5)?),
            },
        })
    })?
    .collect()
}

pub fn delete(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM conversations WHERE id = ?1")?.execute([id])?;
    Ok(())
}

/// Updates in place: `INSERT OR REPLACE` would delete and re-insert, touching the key's index
/// too, one more page for every refresh's commit to write.
pub fn set_meta(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO _meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute([key, value])?;
    Ok(())
}

pub fn get_meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT value FROM _meta WHERE key = ?1")?.query_row([key], |r| r.get(0)).optional()
}

/// A listed conversation as the newest-first index holds it (what a search looks at), and its
/// item when the walk reads items (see [`for_each_listed`]). Borrowed from the row being read.
pub struct ListedRow<'r> {
    pub rowid: i64,
    pub id: &'r str,
    pub name: &'r str,
    pub preview: Option<&'r str>,
    pub modified: f64,
    pub item_json: Option<&'r str>,
}

/// Where a page of the list starts: strictly after this point of the (modified, id) order.
#[derive(Debug, Clone, PartialEq)]
pub enum After {
    /// After the item with this `modified` and `id`.
    Item { modified: f64, id: String },
    /// Older than this `modified` (the legacy cursor: ties are skipped).
    Modified(f64),
}

/// Which listed conversations a walk visits; each part, when given, narrows it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Within<'a> {
    /// The workspace is this directory or lies under it (resolved, as workspaces are stored,
    /// without a trailing `/`: `""` is the root).
    pub workspace: Option<&'a str>,
    /// `modified` is this or later.
    pub since: Option<f64>,
    /// `modified` is earlier than this.
    pub before: Option<f64>,
    /// One of the conversation's models (those with metadata, as in `models_usage`) contains
    /// this, ASCII letters in any case.
    pub model: Option<&'a str>,
    /// The conversation's agent is this one (see [`AGENT`]), ASCII letters in any case.
    pub agent: Option<&'a str>,
    /// Also the conversations gptme hides from lists (its test and temporary ones): the
    /// index's two parts (it is led by `hidden`), each walked in its own order, merged.
    pub hidden: bool,
    /// Only conversations whose files had problems when read (`problems > 0`).
    pub with_problems: bool,
}

impl Within<'_> {
    /// Whether a walk newest first reads the newest-first index in its own order; else SQLite
    /// sorts what it finds (and a sort had better not carry items).
    pub fn in_index_order(&self) -> bool {
        !self.with_problems
    }
}

/// What a list is ordered by: the largest (the newest) first, unless reversed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortKey {
    /// Last modified: gptme's order.
    #[default]
    Modified,
    Created,
    Messages,
    /// `total_cost`; a NaN sum (stored as text) is unknown and comes last either way.
    Cost,
}

/// The order of a walk over the list. Ties fall in the list's own order (newest first, then by
/// id), and `reverse` turns the whole of it round, ties included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Order {
    pub by: SortKey,
    pub reverse: bool,
}

/// Visits listed (not hidden) conversations in `order` (gptme's: newest first, ties by id
/// descending), starting after `after` (a point of gptme's order, where only pages of the HTTP
/// list use it), `within` what it says, until `visit` returns false. Without `with_items`, a
/// workspace or an agent the walk reads the index alone, which holds all a search tests: a visitor reads
/// the items it keeps with [`item_at`] (on the same connection, during the walk, so from the
/// walk's snapshot). `at_most` rows are visited, if given: a walk SQLite sorts then keeps only
/// the first ones as it goes, rather than sorting them all.
pub fn for_each_listed(
    conn: &Connection,
    after: Option<&After>,
    within: &Within<'_>,
    order: Order,
    with_items: bool,
    at_most: Option<usize>,
    mut visit: impl FnMut(&ListedRow<'_>) -> rusqlite::Result<bool>,
) -> rusqlite::Result<()> {
    let (sql, params) = listed_sql(after, within, order, with_items, at_most);
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    while let Some(r) = rows.next()? {
        let text = |i| r.get_ref(i).and_then(|v| v.as_str().map_err(Into::into));
        let row = ListedRow {
            rowid: r.get(0)?,
            id: text(1)?,
            name: text(2)?,
            preview: r.get_ref(3)?.as_str_or_null()?,
            modified: r.get(4)?,
            item_json: if with_items { Some(text(5)?) } else { None },
        };
        if !visit(&row)? {
            break;
        }
    }
    Ok(())
}

/// The statement of [`for_each_listed`] and its parameters.
fn listed_sql(
    after: Option<&After>,
    within: &Within<'_>,
    order: Order,
    with_items: bool,
    at_most: Option<usize>,
) -> (String, Vec<rusqlite::types::Value>) {
    let columns = match with_items {
        true => "rowid, id, name, last_message_preview, modified, item_json",
        false => "rowid, id, name, last_message_preview, modified",
    };
    let mut conditions = Vec::new();
    let mut params: Vec<rusqlite::types::Value> = Vec::new();
    let mut param = |value: rusqlite::types::Value| {
        params.push(value);
        format!("?{}", params.len())
    };
    match after {
        None => {}
        Some(After::Item { modified, id }) => {
            let (m, i) = (param((*modified).into()), param(id.clone().into()));
            conditions.push(format!("(modified < {m} OR (modified = {m} AND id < {i}))"));
        }
        Some(After::Modified(modified)) => conditions.push(format!("modified < {}", param((*modified).into()))),
    }
    if let Some(dir) = within.workspace {
        let d = param(dir.to_owned().into());
        conditions.push(format!("(workspace = {d} OR instr(workspace, {d} || '/') = 1)"));
    }
    if let Some(since) = within.since {
        conditions.push(format!("modified >= {}", param(since.into())));
    }
    if let Some(before) = within.before {
        conditions.push(format!("modified < {}", param(before.into())));
    }
    if let Some(agent) = within.agent {
        conditions.push(format!("lower({AGENT}) = lower({})", param(agent.to_owned().into())));
    }
    if let Some(model) = within.model {
        // Looked up per row by the key of `conversation_models`, so the walk keeps its order.
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM conversation_models m WHERE m.conversation_id = c.id \
               AND instr(lower(m.model), lower({})) > 0)",
            param(model.to_owned().into())
        ));
    }
    if within.with_problems {
        conditions.push("problems > 0".to_owned());
    }
    let part = |hidden: Option<&str>| {
        let all: Vec<&str> = hidden.into_iter().chain(conditions.iter().map(String::as_str)).collect();
        match all.is_empty() {
            true => format!("SELECT {columns} FROM conversations c"),
            false => format!("SELECT {columns} FROM conversations c WHERE {}", all.join(" AND ")),
        }
    };
    let mut sql = match (within.hidden, within.with_problems, order.by) {
        (false, false, _) => part(Some("hidden = 0")),
        // The few with problems are found by their own index, then sorted: `+` keeps SQLite
        // from walking the newest-first index instead, reading every row's `problems`.
        (false, true, _) => part(Some("+hidden = 0")),
        // The index is led by `hidden`: its two parts, each in its own order, merged.
        (true, false, SortKey::Modified) => {
            format!("{} UNION ALL {}", part(Some("hidden = 0")), part(Some("hidden = 1")))
        }
        // Sorted anyway.
        (true, _, _) => part(None),
    };
    let dir = if order.reverse { "ASC" } else { "DESC" };
    let key = match order.by {
        SortKey::Modified => None,
        SortKey::Created => Some("created"),
        SortKey::Messages => Some("messages"),
        SortKey::Cost => Some("nullif(total_cost, 'NaN')"),
    };
    if let Some(key) = key {
        sql += &format!(" ORDER BY {key} {dir} NULLS LAST, modified {dir}, id {dir}");
    } else {
        sql += &format!(" ORDER BY modified {dir}, id {dir}");
    }
    if let Some(n) = at_most {
        // A parameter, so that one statement serves every limit.
        params.push(i64::try_from(n).unwrap_or(i64::MAX).into());
        sql += &format!(" LIMIT ?{}", params.len());
    }
    (sql, params)
}

/// The item of the conversation at `rowid` (one [`for_each_listed`] visits).
pub fn item_at(conn: &Connection, rowid: i64) -> rusqlite::Result<String> {
    conn.prepare_cached("SELECT item_json FROM conversations WHERE rowid = ?1")?.query_row([rowid], |r| r.get(0))
}

/// The item of one conversation, hidden or not.
pub fn item(conn: &Connection, id: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT item_json FROM conversations WHERE id = ?1")?.query_row([id], |r| r.get(0)).optional()
}

/// The ids and names of conversations whose id or name contains `text` (ASCII letters in any
/// case), closest first (ids ending with it, as one typed without its date; then ids holding
/// it; then names), each group newest first: up to `limit` of them, and how many there are in
/// all.
pub fn ids_containing(conn: &Connection, text: &str, limit: usize) -> rusqlite::Result<(Vec<(String, String)>, usize)> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, count(*) OVER () FROM conversations \
         WHERE instr(lower(id), lower(?1)) OR instr(lower(name), lower(?1)) \
         ORDER BY substr(lower(id), -length(?1)) = lower(?1) DESC, instr(lower(id), lower(?1)) > 0 DESC, \
                  modified DESC, id DESC LIMIT ?2",
    )?;
    let mut all = 0;
    let ids = stmt.query_map(rusqlite::params![text, limit as i64], |r| {
        all = r.get::<_, i64>(2)? as usize;
        Ok((r.get(0)?, r.get(1)?))
    })?;
    let ids = ids.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((ids, all))
}

/// The models of any conversation whose name contains `text` (ASCII letters in any case), by
/// name: what `usage --model` and `list --model` would keep to.
pub fn models_containing(conn: &Connection, text: &str) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached(
        "SELECT model FROM conversation_models WHERE instr(lower(model), lower(?1)) > 0 \
         GROUP BY model ORDER BY model",
    )?
    .query_map([text], |r| r.get(0))?
    .collect()
}

/// The agents (see [`AGENT`]) whose name contains `text` (ASCII letters in any case), by name.
pub fn agents_containing(conn: &Connection, text: &str) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached(&format!(
        "SELECT {AGENT} AS a FROM conversations c WHERE a != '' AND instr(lower(a), lower(?1)) > 0 \
         GROUP BY a ORDER BY a"
    ))?
    .query_map([text], |r| r.get(0))?
    .collect()
}

/// The ids and names of conversations whose id starts with `prefix` (exactly, as a shell
/// completes), newest first; hidden ones only once a prefix is typed.
pub fn ids_starting_with(conn: &Connection, prefix: &str) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name FROM conversations \
         WHERE substr(id, 1, length(?1)) = ?1 AND (hidden = 0 OR ?1 <> '') \
         ORDER BY hidden, modified DESC, id DESC",
    )?;
    let ids = stmt.query_map([prefix], |r| Ok((r.get(0)?, r.get(1)?)))?;
    ids.collect()
}

/// What is wrong with one conversation's files, in words (NULL: nothing).
pub fn problem_notes(conn: &Connection, id: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT problem_notes FROM conversations WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()
        .map(Option::flatten)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::usage::{usage, UsageBy, UsageQuery};

    fn row(id: &str, models: &[(&str, f64)], looks_new: bool) -> ConversationRow {
        let usage: Vec<String> = models.iter().map(|(m, c)| format!("\"{m}\":{c}")).collect();
        ConversationRow {
            id: id.into(),
            name: id.into(),
            path: format!("/logs/{id}/conversation.jsonl"),
            created: 1.0,
            modified: 2.0,
            messages: 1,
            branches: 0,
            workspace: "/w".into(),
            agent_name: None,
            agent_path: None,
            agent_avatar: None,
            agent_urls: None,
            model: None,
            total_cost: models.iter().map(|m| m.1).sum(),
            total_input_tokens: PyNum::Int(0),
            total_output_tokens: PyNum::Int(0),
            total_cache_read_tokens: PyNum::Int(0),
            models_usage: format!("{{{}}}", usage.join(",")),
            models: models
                .iter()
                .map(|&(model, cost)| ModelRow {
                    model: model.into(),
                    cost,
                    input_tokens: PyNum::Int(0),
                    output_tokens: PyNum::Int(0),
                    cache_read_tokens: PyNum::Int(0),
                })
                .collect(),
            days: Vec::new(),
            last_message_role: None,
            last_message_preview: None,
            hidden: false,
            problems: 0,
            problem_notes: None,
            item_json: "{}".into(),
            state: StoredState { log: None, side_stamp: 0, agent_toml: None, link_paths: Vec::new() },
            resume: Resume { offset: 0, fingerprint: 0, accumulator: "{}".into(), side: "{}".into() },
            looks_new,
        }
    }

    /// A search reads what it tests from the newest-first index alone, never the table, in
    /// the list's order (no sort), from any cursor; a page of items reads it in the same order,
    /// and so do a walk within a workspace and those keeping to an agent or a model.
    #[test]
    fn a_search_walks_the_index_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&tmp.path().join("db.sqlite3")).unwrap();
        let conn = store.conn().unwrap();
        let plan_in = |order, after: Option<&After>, within: &Within<'_>, with_items| {
            let plan_of = |at_most| {
                let (sql, params) = listed_sql(after, within, order, with_items, at_most);
                let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
                let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| r.get::<_, String>(3)).unwrap();
                rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
            };
            // A page's limit changes no walk.
            let plan = plan_of(None);
            assert_eq!(plan_of(Some(11)), plan);
            plan
        };
        let plan = |after, within: &Within<'_>, with_items| plan_in(Order::default(), after, within, with_items);
        // `list -r` walks the same index the other way.
        let oldest_first = plan_in(Order { reverse: true, ..Order::default() }, None, &Within::default(), false);
        assert!(
            oldest_first.contains("COVERING INDEX conversations_newest") && !oldest_first.contains("TEMP B-TREE"),
            "{oldest_first}"
        );
        let item = After::Item { modified: 1.0, id: "c".into() };
        for after in [None, Some(&item), Some(&After::Modified(1.0))] {
            for (since, before) in [(None, None), (Some(0.5), Some(2.0))] {
                let walk = plan(after, &Within { since, before, ..Within::default() }, false);
                assert!(
                    walk.contains("USING COVERING INDEX conversations_newest") && !walk.contains("TEMP B-TREE"),
                    "{walk}"
                );
                // A span of days bounds the walk: it starts and stops in the index.
                assert_eq!(since.is_some(), walk.contains("modified>? AND modified<?"), "{walk}");
                // A workspace or an agent is read from each row, in the index's order.
                let days = Within { since, before, ..Within::default() };
                let workspace = Within { workspace: Some("/w"), ..days };
                let agent = Within { agent: Some("bob"), ..days };
                for (within, with_items) in
                    [(days, true), (workspace, false), (workspace, true), (agent, false), (agent, true)]
                {
                    let page = plan(after, &within, with_items);
                    assert!(
                        page.contains("USING INDEX conversations_newest") && !page.contains("TEMP B-TREE"),
                        "{page}"
                    );
                }
                // A model is looked up by each row's key in `conversation_models`.
                for with_items in [false, true] {
                    let walk =
                        plan(after, &Within { since, before, model: Some("opus"), ..Within::default() }, with_items);
                    assert!(
                        walk.contains("INDEX conversations_newest")
                            && walk.contains("SEARCH m ")
                            && walk.contains("USING PRIMARY KEY (conversation_id=?)")
                            && !walk.contains("TEMP B-TREE"),
                        "{walk}"
                    );
                    assert_eq!(with_items, !walk.contains("COVERING INDEX conversations_newest"), "{walk}");
                }
                // Those with problems are found by their own index, then sorted.
                let broken = plan(after, &Within { since, before, with_problems: true, ..Within::default() }, false);
                assert!(
                    broken.contains("USING INDEX conversations_with_problems (problems>?)")
                        && broken.contains("TEMP B-TREE FOR ORDER BY"),
                    "{broken}"
                );
            }
        }
        // Hidden ones too: the index's two parts (it is led by `hidden`), each in its order,
        // merged, with items or without; in another order, sorted.
        for with_items in [false, true] {
            let everything = plan(None, &Within { hidden: true, ..Within::default() }, with_items);
            assert!(
                everything.contains("MERGE (UNION ALL)")
                    && everything.matches("INDEX conversations_newest (hidden=?)").count() == 2
                    && !everything.contains("TEMP B-TREE"),
                "{everything}"
            );
        }
        // Another order is sorted from the index alone, which holds the keys, listed or all.
        for by in [SortKey::Created, SortKey::Messages, SortKey::Cost] {
            for hidden in [false, true] {
                let sorted =
                    plan_in(Order { by, reverse: hidden }, None, &Within { hidden, ..Within::default() }, false);
                assert!(
                    sorted.contains("COVERING INDEX conversations_newest")
                        && sorted.contains("TEMP B-TREE FOR ORDER BY")
                        && !sorted.contains("UNION"),
                    "{sorted}"
                );
            }
        }
        let broken = plan(None, &Within { hidden: true, with_problems: true, ..Within::default() }, false);
        assert!(broken.contains("USING INDEX conversations_with_problems (problems>?)"), "{broken}");
    }

    /// A conversation counts once in each group and in the total, however its rows fall
    /// among the other conversations' days.
    #[test]
    fn usage_counts_each_conversation_once() {
        let tmp = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&tmp.path().join("db.sqlite3")).unwrap();
        let conn = store.conn().unwrap();
        for id in ["a", "b"] {
            upsert(&conn, &row(id, &[("m", 1.0)], true)).unwrap();
        }
        conn.execute_batch(
            "DELETE FROM conversation_days; INSERT INTO conversation_days VALUES \
             ('a', '2026-01-01', 'm', 1, 0, 0, 0), ('b', '2026-01-02', 'm', 1, 0, 0, 0), \
             ('a', '2026-01-03', 'm', 1, 0, 0, 0), ('b', '2026-01-03', 'n', 1, 0, 0, 0)",
        )
        .unwrap();
        for by in [UsageBy::Day, UsageBy::Month, UsageBy::Model, UsageBy::Workspace] {
            let u = usage(&conn, &UsageQuery { by, ..UsageQuery::default() }, "/logs").unwrap();
            assert_eq!(u.total.conversations, 2, "{by:?}");
            let counts: Vec<(&str, usize)> = u.rows.iter().map(|r| (r.key.as_str(), r.conversations)).collect();
            let models: Vec<usize> = u.total.by_model.iter().map(|m| m.conversations).collect();
            assert_eq!(models, [2, 1], "{by:?}");
            match by {
                UsageBy::Day => assert_eq!(counts, [("2026-01-01", 1), ("2026-01-02", 1), ("2026-01-03", 2)]),
                UsageBy::Month => assert_eq!(counts, [("2026-01", 2)]),
                UsageBy::Model => assert_eq!(counts, [("m", 2), ("n", 1)]),
                _ => assert_eq!(counts.iter().map(|c| c.1).collect::<Vec<_>>(), [2]),
            }
        }
    }

    /// A row that looked new when the refresh looked may have been written since (by another
    /// process): it is updated, its per-model rows replaced, never duplicated.
    #[test]
    fn a_row_that_only_looked_new_is_updated() {
        let tmp = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&tmp.path().join("db.sqlite3")).unwrap();
        let conn = store.conn().unwrap();
        let models = |conn: &Connection| -> Vec<(String, f64)> {
            let mut s = conn.prepare("SELECT model, cost FROM conversation_models ORDER BY model").unwrap();
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
        };
        upsert(&conn, &row("c", &[("a", 1.0), ("b", 2.0)], true)).unwrap();
        assert_eq!(models(&conn), [("a".into(), 1.0), ("b".into(), 2.0)]);
        upsert(&conn, &row("c", &[("a", 3.0)], true)).unwrap();
        assert_eq!(models(&conn), [("a".to_string(), 3.0)]);
        let cost: f64 =
            conn.query_row("SELECT total_cost FROM conversations WHERE id = 'c'", [], |r| r.get(0)).unwrap();
        assert_eq!(cost, 3.0);
        upsert(&conn, &row("c", &[("a", 3.0)], false)).unwrap();
        assert_eq!(models(&conn), [("a".to_string(), 3.0)]);
    }
}
