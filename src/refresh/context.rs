//! What rows depend on besides the archive's bytes, recorded with them: a row computed under
//! another context is read or rendered again.

use std::collections::HashMap;
use std::path::Path;

use super::Writer;
use crate::error::Result;
use crate::format::gptme::{side, time};
use crate::store::rows;

/// Rows depend on more than the archive: the time zone (gptme reads a timestamp without one as
/// local time, for `created`), the logs dir as named (each item's `path` starts with it), and,
/// for a config that wrote a path with `~` or a relative one, `$HOME` or the working directory
/// (gptme expands and resolves it when it lists). All four are recorded with the rows. Under
/// another zone every log is read again (where each was read to, and its side stamp, are
/// forgotten); under another logs name every item is rendered again (its side stamp is
/// forgotten); under another `$HOME` or working directory, the items whose paths used it. In the
/// refresh's own transaction, which also records the new context. Says whether anything is to be
/// done again.
pub(super) fn adopt_context(writer: &mut Writer<'_>, context: &Context) -> Result<bool> {
    let (conn, store) = (writer.conn, writer.store);
    let sqlite = |e| store.err(e);
    let keys = [("zone", &context.zone), ("logs", &context.logs), ("home", &context.home), ("cwd", &context.cwd)];
    let mut changed = HashMap::new();
    for (key, now) in keys {
        let was = rows::get_meta(conn, key).map_err(sqlite)?;
        if was.as_deref() != Some(now.as_str()) {
            changed.insert(key, was);
        }
    }
    let forget = if changed.contains_key("zone") {
        rows::FORGET_EVERY_READ
    } else if changed.contains_key("logs") {
        "UPDATE _scan_state SET side_stamp = 0"
    } else {
        // Only rows whose paths used what changed; when none did, nothing needs recording.
        let uses = |flag: &str| -> rusqlite::Result<bool> {
            let sql = format!("SELECT EXISTS (SELECT 1 FROM _scan_state WHERE json_extract(side, '$.{flag}'))");
            conn.query_row(&sql, [], |r| r.get(0))
        };
        let home = changed.contains_key("home") && uses("uses_home").map_err(sqlite)?;
        let cwd = changed.contains_key("cwd") && uses("uses_cwd").map_err(sqlite)?;
        match (home, cwd) {
            (false, false) => return Ok(false),
            (true, false) => "UPDATE _scan_state SET side_stamp = 0 WHERE json_extract(side, '$.uses_home')",
            (false, true) => "UPDATE _scan_state SET side_stamp = 0 WHERE json_extract(side, '$.uses_cwd')",
            (true, true) => "UPDATE _scan_state SET side_stamp = 0 WHERE json_extract(side, '$.uses_home') OR json_extract(side, '$.uses_cwd')",
        }
    };
    let mut rows = 0;
    writer.apply(|c| {
        rows = c.execute(forget, [])?;
        keys.iter().try_for_each(|(key, now)| rows::set_meta(c, key, now))
    })?;
    if rows > 0 {
        match (changed.get("zone"), changed.get("logs")) {
            (Some(Some(was)), _) => tracing::warn!(%was, now = %context.zone, "time zone changed: reading every conversation again (timestamps without a zone are local time; processes sharing an index should share TZ, or each use its own --db)"),
            (Some(None), _) => tracing::info!("recording what rows are read with (time zone, logs directory, HOME, working directory): reading every conversation again, once"),
            (None, Some(Some(was))) => tracing::warn!(%was, now = %context.logs, "the logs directory goes by another name: rendering every item again (its path starts with the name)"),
            _ => tracing::info!(rows, "HOME or the working directory changed: rendering again the items whose config paths use it"),
        }
    }
    Ok(rows > 0)
}

/// What rows depend on besides the archive (see `adopt_context`).
#[derive(Clone, PartialEq)]
pub struct Context {
    pub zone: String,
    pub logs: String,
    pub home: String,
    pub cwd: String,
}

impl Context {
    pub(super) fn now(logs: &Path) -> Context {
        let lossy = |p: Option<std::ffi::OsString>| p.map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        Context {
            zone: time::zone_key(),
            logs: logs.to_string_lossy().into_owned(),
            home: lossy(side::home_dir()),
            cwd: lossy(std::env::current_dir().ok().map(Into::into)),
        }
    }
}
