//! Read-only SQL over the public tables, for `convmeta query` and `GET /api/v2/sql`.
//!
//! Three locks keep it read-only: the connection is opened read-only, `PRAGMA query_only` is
//! on, and SQLite's authorizer allows only reads of the public tables and of their columns'
//! list (`PRAGMA table_info`; no other PRAGMA, no ATTACH, `load_extension` or writes; the
//! internal `_`-tables stay private).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, ErrorCode};

/// Tables and views users may read.
pub const PUBLIC_TABLES: &[&str] = &["conversations", "conversation_models", "conversation_days"];

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// A write, or anything but reading the public tables.
    #[error("not allowed: {0} (only reading the tables conversations, conversation_models and conversation_days, or their columns with PRAGMA table_info, is)")]
    Refused(String),
    /// Syntax errors, unknown columns and the like: SQLite's message.
    #[error("{0}")]
    Invalid(String),
    #[error("the statement ran longer than {0:?} and was stopped")]
    Timeout(Duration),
    /// An allocation failed: past [`limit_memory`]'s limit, or, without one, the system's.
    #[error("the statement needed more memory than {0} and was stopped")]
    OutOfMemory(String),
    #[error("the server is stopping")]
    Stopped,
    #[error("database: {0}")]
    Database(String),
}

/// Whether a read of `table` is allowed. The database holds only convmeta's tables, so other
/// names are common table expressions: only the internal ones are private.
fn readable(table: &str) -> bool {
    let lower = table.to_ascii_lowercase();
    PUBLIC_TABLES.contains(&lower.as_str()) || !(lower.starts_with('_') || lower.starts_with("sqlite_"))
}

fn authorize(ctx: AuthContext<'_>) -> Authorization {
    match ctx.action {
        // Loading an extension runs code from a file: refused here, so the error says why
        // (SQLite's own refusal, with loading off, says only "not authorized").
        AuthAction::Function { function_name } if function_name.eq_ignore_ascii_case("load_extension") => {
            Authorization::Deny
        }
        AuthAction::Select | AuthAction::Recursive | AuthAction::Function { .. } => Authorization::Allow,
        AuthAction::Read { table_name, .. } if readable(table_name) => Authorization::Allow,
        // The columns of a public table, as a SQL client asks for them.
        AuthAction::Pragma { pragma_name, pragma_value: Some(table) }
            if ["table_info", "table_xinfo"].contains(&pragma_name.to_ascii_lowercase().as_str())
                && PUBLIC_TABLES.contains(&table.to_ascii_lowercase().as_str()) =>
        {
            Authorization::Allow
        }
        _ => Authorization::Deny,
    }
}

/// Caps the memory SQLite may take in this process, all connections together (the index's own
/// work takes a few MB): the allocation that would pass it fails, and the statement making it
/// stops with [`SqlError::OutOfMemory`]. The SQL endpoint's guard against one statement taking
/// the machine's memory: a few hundred columns of 30 MB strings (each within the length limit)
/// are computed in straight-line code, which never reaches the progress handler that enforces
/// the time limit.
pub fn limit_memory(bytes: u64) {
    // SAFETY: sets a number that SQLite's allocator reads under its own mutex; callable at any time.
    unsafe { rusqlite::ffi::sqlite3_hard_heap_limit64(i64::try_from(bytes).unwrap_or(i64::MAX)) };
}

/// What [`SqlError::OutOfMemory`] says was too little.
fn memory_limit() -> String {
    // SAFETY: a negative argument only reads the limit.
    match unsafe { rusqlite::ffi::sqlite3_hard_heap_limit64(-1) } {
        n if n > 0 => format!("the {} MiB SQLite may use here", n >> 20),
        _ => "there is".into(),
    }
}

/// Limits on one statement.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    pub max_rows: Option<usize>,
    /// At most this many bytes of values in all (a blob counts twice, as it is written in hex),
    /// and no string or blob made longer: `randomblob(1e9)` would hold a gigabyte.
    pub max_bytes: Option<usize>,
    pub timeout: Option<Duration>,
    /// Once set, the statement stops ([`SqlError::Stopped`]): the server is stopping.
    pub stop: Option<Arc<AtomicBool>>,
}

/// What [`query_each`] hands on: the column names once, then each row.
pub enum Part<'a> {
    Columns(&'a [String]),
    Row(Vec<Value>),
}

/// Runs one read-only statement against the database at `db`, handing each row to `f` as SQLite
/// produces it, so output can start at once and memory stays flat however many rows come. An
/// error from `f` stops the statement. Says whether rows were left out (`limits.max_rows`).
pub fn query_each<E: From<SqlError>>(
    db: &Path,
    sql: &str,
    limits: Limits,
    mut f: impl FnMut(Part<'_>) -> Result<(), E>,
) -> Result<bool, E> {
    let conn = super::open_read_only(db).map_err(|e| SqlError::Database(e.to_string()))?;
    let setup = |c: &Connection| -> rusqlite::Result<()> {
        c.pragma_update(None, "query_only", true)?;
        c.authorizer(Some(authorize))
    };
    setup(&conn).map_err(|e| SqlError::Database(e.to_string()))?;
    if let Some(max) = limits.max_bytes {
        conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, i32::try_from(max).unwrap_or(i32::MAX))
            .map_err(|e| SqlError::Database(e.to_string()))?;
    }
    let stopped = {
        let stop = limits.stop.clone();
        move || stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed))
    };
    if limits.timeout.is_some() || limits.stop.is_some() {
        let deadline = limits.timeout.map(|limit| Instant::now() + limit);
        let stopped = stopped.clone();
        conn.progress_handler(10_000, Some(move || deadline.is_some_and(|d| Instant::now() > d) || stopped()))
            .map_err(|e| SqlError::Database(e.to_string()))?;
    }
    let classify = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(ErrorCode::AuthorizationForStatementDenied | ErrorCode::ReadOnly) => SqlError::Refused(message(&e)),
        Some(ErrorCode::OperationInterrupted) if stopped() => SqlError::Stopped,
        Some(ErrorCode::OperationInterrupted) => SqlError::Timeout(limits.timeout.unwrap_or_default()),
        Some(ErrorCode::OutOfMemory) => SqlError::OutOfMemory(memory_limit()),
        // Empty or comment-only text compiles to no statement, which cannot be run.
        Some(ErrorCode::ApiMisuse) => SqlError::Invalid("no statement: the SQL is empty or only comments".into()),
        _ => match e {
            rusqlite::Error::MultipleStatement => SqlError::Invalid("one statement at a time".into()),
            // A function the authorizer refused ("not authorized to use function: …") comes
            // with SQLite's generic error code.
            other if message(&other).starts_with("not authorized") => SqlError::Refused(message(&other)),
            other => SqlError::Invalid(message(&other)),
        },
    };
    let mut stmt = conn.prepare(sql).map_err(classify)?;
    if !stmt.readonly() {
        return Err(SqlError::Refused("the statement writes".into()).into());
    }
    let columns: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
    f(Part::Columns(&columns))?;
    let n = columns.len();
    let (mut count, mut bytes) = (0, 0);
    let mut cursor = stmt.query([]).map_err(classify)?;
    while let Some(row) = cursor.next().map_err(classify)? {
        if limits.max_rows.is_some_and(|max| count == max) {
            return Ok(true);
        }
        let mut values = Vec::with_capacity(n);
        for i in 0..n {
            let v = row.get_ref(i).map_err(classify)?;
            // Checked before the copy: a row's values may be many megabytes each.
            bytes += size(v);
            if limits.max_bytes.is_some_and(|max| bytes > max) {
                return Ok(true);
            }
            values.push(value(v));
        }
        count += 1;
        f(Part::Row(values))?;
    }
    Ok(false)
}

/// A value as it is handed on. Text that is not UTF-8 (`char(55296)`, `CAST(x'FF' AS TEXT)`) is
/// read with U+FFFD for the bad bytes rather than failing the statement.
fn value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

/// What a value weighs in an answer, roughly: its text, its hex, or a number's few bytes.
fn size(v: ValueRef<'_>) -> usize {
    match v {
        ValueRef::Text(s) => s.len(),
        ValueRef::Blob(b) => 2 * b.len(),
        _ => 8,
    }
}

/// SQLite's own message (rusqlite adds nothing useful).
fn message(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(_, Some(m)) => m.clone(),
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        other => other.to_string(),
    }
}

/// A value as JSON (`serde_json` writes it): numbers, text, null; blobs as lowercase hex text.
/// An infinite float, which JSON has no word for, is written `1e999` or `-1e999`, as
/// `sqlite3 -json` writes it: JSON readers make it infinite again (or refuse it), where `null`
/// would say there was no value. (SQLite has no NaN: it stores and computes one as NULL.)
pub struct Json<'a>(pub &'a Value);

impl serde::Serialize for Json<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_unit(),
            Value::Integer(i) => s.serialize_i64(*i),
            Value::Real(f) if f.is_infinite() => {
                let text = if *f > 0.0 { "1e999" } else { "-1e999" };
                serde_json::value::RawValue::from_string(text.into()).map_err(serde::ser::Error::custom)?.serialize(s)
            }
            Value::Real(f) if f.is_nan() => s.serialize_unit(),
            Value::Real(f) => s.serialize_f64(*f),
            Value::Text(t) => s.serialize_str(t),
            Value::Blob(b) => s.serialize_str(&b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
        }
    }
}

/// A value as plain text (tables and CSV): NULL is empty.
pub fn to_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => crate::json::py_float(*f),
        Value::Text(s) => s.clone(),
        Value::Blob(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}
