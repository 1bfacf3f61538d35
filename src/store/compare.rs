//! Two indexes of one archive compared, row by row in every public table and in the stored
//! states: `verify`'s check of the index against one built afresh. A conversation is compared
//! only where both read its files in the same state (the same stamps in `_scan_state`); the
//! others changed in between.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use rusqlite::types::Value;
use rusqlite::Connection;

use crate::error::{Error, Result};

/// The table of the stored states.
pub const STATE: &str = "_scan_state";

/// One row of a public table (or of [`STATE`]) that is not the same in both.
#[derive(Debug, Clone, PartialEq)]
pub struct RowDifference {
    pub table: String,
    /// The row's key but for its conversation (`model`; `day` and `model`), column and value.
    pub key: Vec<(String, Value)>,
    pub is: Is,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Is {
    /// In both, with these columns unequal: (column, in the index, afresh).
    Unequal(Vec<(String, Value, Value)>),
    /// In the index only.
    OnlyInIndex,
    /// In the one built afresh only.
    OnlyAfresh,
}

#[derive(Debug, Default)]
pub struct Comparison {
    /// Conversations whose files both read in the same state, and so compared.
    pub compared: usize,
    /// Conversations in one of the two only, or whose files' stamps differ (or are too recent to
    /// trust): changed between the two reads, so not compared. In id order.
    pub changed: Vec<String>,
    /// The compared conversations with rows that differ, in id order.
    pub differences: BTreeMap<String, Vec<RowDifference>>,
}

/// Compares the index at `index` with the one at `afresh`, in one read of each.
pub fn compare(index: &Path, afresh: &Path) -> Result<Comparison> {
    let fail = |source| Error::Sqlite { path: index.into(), source };
    let c = super::open_read_only(index).map_err(fail)?;
    let afresh_name = afresh.to_str().ok_or_else(|| Error::Io {
        path: afresh.into(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a UTF-8 path, which SQLite's ATTACH needs"),
    })?;
    c.execute("ATTACH DATABASE ?1 AS afresh", [afresh_name]).map_err(fail)?;
    // One snapshot of each for every statement below.
    let read = c.unchecked_transaction().map_err(fail)?;
    let compared = compared(&read).map_err(fail)?;
    let mut comparison = Comparison { compared: compared.len(), ..Comparison::default() };
    let everyone: Vec<String> =
        strings(&read, "SELECT id FROM main.conversations UNION SELECT id FROM afresh.conversations ORDER BY 1")
            .map_err(fail)?;
    comparison.changed = everyone.into_iter().filter(|id| !compared.contains(id)).collect();
    let mut tables = strings(
        &read,
        r"SELECT name FROM afresh.sqlite_master WHERE type = 'table' AND name NOT LIKE '\_%' ESCAPE '\'
            AND name NOT LIKE 'sqlite%' ORDER BY name",
    )
    .map_err(fail)?;
    // And the stored state each conversation's next refresh reads on from: a difference there
    // shows in no row yet, but would at the next append. (As text: see `verify` for meaning.)
    tables.push(STATE.into());
    for table in tables {
        for (id, difference) in differences(&read, &table).map_err(fail)? {
            if compared.contains(&id) {
                comparison.differences.entry(id).or_default().push(difference);
            }
        }
    }
    Ok(comparison)
}

/// The conversations both read in the same, settled state: the same log (inode, size, mtime),
/// the same stamp over the side files, the same agent files.
fn compared(c: &Connection) -> rusqlite::Result<HashSet<String>> {
    let mut stmt = c.prepare(
        "SELECT i.id FROM main._scan_state i JOIN afresh._scan_state a ON a.id = i.id
         WHERE i.log_ino IS a.log_ino AND i.log_size IS a.log_size AND i.log_mtime_ns IS a.log_mtime_ns
           AND i.log_mtime_ns IS NOT ?1 AND i.side_stamp = a.side_stamp AND i.agent_toml IS a.agent_toml",
    )?;
    let ids = stmt.query_map([super::rows::UNSETTLED_MTIME], |r| r.get(0))?;
    ids.collect()
}

fn strings(c: &Connection, sql: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = c.prepare(sql)?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// The rows of `table` that are not in both alike, each with its conversation's id.
fn differences(c: &Connection, table: &str) -> rusqlite::Result<Vec<(String, RowDifference)>> {
    // Stored columns only: generated ones follow from them. The key's columns in its order,
    // the conversation's first (`id` or `conversation_id`).
    let mut columns = Vec::new();
    let mut key = Vec::new();
    let mut stmt = c.prepare(&format!("PRAGMA afresh.table_info({})", quoted(table)))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let (name, pk): (String, i64) = (r.get("name")?, r.get("pk")?);
        if pk > 0 {
            key.push((pk, columns.len()));
        }
        columns.push(name);
    }
    key.sort();
    let key: Vec<usize> = key.into_iter().map(|(_, at)| at).collect();
    if key.is_empty() {
        return Ok(Vec::new()); // no table of ours; nothing to pair rows by
    }
    let in_each =
        |side: &str, of: &[usize]| of.iter().map(|&i| format!("{side}.{}", quoted(&columns[i]))).collect::<Vec<_>>();
    let everything: Vec<usize> = (0..columns.len()).collect();
    let row = |side: &str| in_each(side, &everything).join(", ");
    let t = quoted(table);
    let (keys_i, keys_a) = (in_each("i", &key).join(", "), in_each("a", &key).join(", "));
    let same_key = in_each("i", &key).into_iter().zip(in_each("a", &key)).map(|(i, a)| format!("{i} = {a}"));
    let same_key = same_key.collect::<Vec<_>>().join(" AND ");
    // Paired by key, not by EXCEPT over whole rows, which sorts every row (items of a few KB):
    // 0.5 s against 0.03 s for 10,000 conversations.
    let unequal = format!(
        "SELECT {keys_i} FROM main.{t} i JOIN afresh.{t} a ON {same_key}
           WHERE ({}) IS NOT ({})
         UNION ALL SELECT {keys_i} FROM main.{t} i WHERE NOT EXISTS (SELECT 1 FROM afresh.{t} a WHERE {same_key})
         UNION ALL SELECT {keys_a} FROM afresh.{t} a WHERE NOT EXISTS (SELECT 1 FROM main.{t} i WHERE {same_key})",
        row("i"),
        row("a")
    );
    let keyed: Vec<Vec<Value>> = {
        let mut stmt = c.prepare(&unequal)?;
        let rows = stmt.query_map([], |r| (0..key.len()).map(|i| r.get::<_, Value>(i)).collect())?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let matching = key.iter().enumerate().map(|(n, &i)| format!("{} IS ?{}", quoted(&columns[i]), n + 1));
    let matching = matching.collect::<Vec<_>>().join(" AND ");
    let row_of = |schema: &str, values: &[Value]| -> rusqlite::Result<Option<Vec<Value>>> {
        let sql = format!("SELECT {} FROM {schema}.{t} x WHERE {matching}", row("x"));
        let mut stmt = c.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(values))?;
        rows.next()?.map(|r| (0..columns.len()).map(|i| r.get(i)).collect()).transpose()
    };
    let mut found = Vec::new();
    for values in keyed {
        let id = match &values[0] {
            Value::Text(id) => id.clone(),
            other => crate::store::sql::to_text(other),
        };
        let is = match (row_of("main", &values)?, row_of("afresh", &values)?) {
            (Some(index), Some(afresh)) => {
                let unequal = columns.iter().zip(index).zip(afresh).filter(|((_, i), a)| i != a);
                let unequal: Vec<_> = unequal.map(|((name, i), a)| (name.clone(), i, a)).collect();
                if unequal.is_empty() {
                    continue; // SQL's equality is never stricter than `Value`'s: not expected
                }
                Is::Unequal(unequal)
            }
            (Some(_), None) => Is::OnlyInIndex,
            (None, Some(_)) => Is::OnlyAfresh,
            (None, None) => continue, // cannot be, in one snapshot
        };
        let key = key.iter().zip(&values).skip(1).map(|(&i, v)| (columns[i].clone(), v.clone())).collect();
        found.push((id, RowDifference { table: table.to_string(), key, is }));
    }
    Ok(found)
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
