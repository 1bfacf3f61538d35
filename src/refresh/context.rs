//! What rows depend on besides the archive's bytes, recorded with them: a row computed under
//! another context is read or rendered again.

use std::path::Path;

use crate::format::gptme::{side, time};
use crate::store::rows;

/// Rows depend on more than the archive: the time zone (gptme reads a timestamp without one as
/// local time, for `created`), the logs dir as named (each item's `path` starts with it), and,
/// for a config that wrote a path with `~` or a relative one, `$HOME` or the working directory
/// (gptme expands and resolves it when it lists). All four are recorded with the rows (see
/// `adopt`).
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

    fn values(&self) -> [(&'static str, &str); 4] {
        [("zone", &self.zone), ("logs", &self.logs), ("home", &self.home), ("cwd", &self.cwd)]
    }
}

/// The index's record of the context, as a refresh found it (or made it).
///
/// Processes of different contexts may share an index (a server run by systemd in UTC,
/// `convmeta list` from a shell with `TZ` set): each adopts its own in turn. The generation
/// counts adoptions, so that a refresh writes rows only under the generation it looked at the
/// rows under: had another process adopted its context in between, what this one read from the
/// index (stored states, resume points) could be of that context, and written back it would
/// pass for this one's.
#[derive(Clone, Copy)]
pub struct Recorded {
    generation: i64,
    /// `HOME` differs from the recorded one, which no row used, so it was left as it is (a
    /// process started elsewhere need not take the index over); see [`record_used`].
    home_unrecorded: bool,
    /// The same for the working directory.
    cwd_unrecorded: bool,
}

impl Recorded {
    pub(super) fn generation(&self) -> i64 {
        self.generation
    }
}

/// What making a context the recorded one takes.
pub(super) struct Check {
    recorded: Recorded,
    /// The recorded values that differ from the context's (None: never recorded).
    changed: Vec<(&'static str, Option<String>)>,
    /// The reads to forget, when the context is to be adopted.
    forget: Option<&'static str>,
}

impl Check {
    /// Compares the recorded context with `context`. Under the refresh's write lock when what it
    /// says is acted on.
    pub(super) fn read(conn: &rusqlite::Connection, context: &Context) -> rusqlite::Result<Check> {
        let mut changed = Vec::new();
        for (key, now) in context.values() {
            let was = rows::get_meta(conn, key)?;
            // A zone recorded under the earlier key is the same zone while that key still holds.
            let same = was.as_deref() == Some(now) || (key == "zone" && was == Some(time::legacy_zone_key()));
            if !same {
                changed.push((key, was));
            }
        }
        let generation = rows::get_meta(conn, "generation")?.and_then(|g| g.parse().ok()).unwrap_or(0);
        let differs = |key: &str| changed.iter().any(|(k, _)| *k == key);
        // Under another zone every item is rendered again (its side stamp is forgotten), and the
        // logs whose `created` the zone decided are read again; under another logs name every
        // item is rendered again; under another `$HOME` or working directory, the items whose
        // paths used it.
        let uses = |flag: &str| -> rusqlite::Result<bool> {
            let sql = format!("SELECT EXISTS (SELECT 1 FROM _scan_state WHERE json_extract(side, '$.{flag}'))");
            conn.query_row(&sql, [], |r| r.get(0))
        };
        let forget = if differs("zone") {
            Some(rows::FORGET_FOR_ZONE)
        } else if differs("logs") {
            Some("UPDATE _scan_state SET side_stamp = 0")
        } else {
            let home = differs("home") && uses("uses_home")?;
            let cwd = differs("cwd") && uses("uses_cwd")?;
            match (home, cwd) {
                (false, false) => None,
                (true, false) => Some("UPDATE _scan_state SET side_stamp = 0 WHERE json_extract(side, '$.uses_home')"),
                (false, true) => Some("UPDATE _scan_state SET side_stamp = 0 WHERE json_extract(side, '$.uses_cwd')"),
                (true, true) => Some("UPDATE _scan_state SET side_stamp = 0 WHERE json_extract(side, '$.uses_home') OR json_extract(side, '$.uses_cwd')"),
            }
        };
        let recorded = Recorded {
            generation,
            home_unrecorded: forget.is_none() && differs("home"),
            cwd_unrecorded: forget.is_none() && differs("cwd"),
        };
        Ok(Check { recorded, changed, forget })
    }

    /// The context is to be adopted (a write).
    pub(super) fn to_adopt(&self) -> bool {
        self.forget.is_some()
    }

    /// The record as it stands, when nothing is to be adopted.
    pub(super) fn recorded(&self) -> Recorded {
        self.recorded
    }
}

/// Makes `context` the recorded one: forgets the reads that depend on what changed, records all
/// four values and a new generation. In the refresh's transaction, after `check` was read in it.
/// Returns the new record and how many rows' reads were forgotten.
pub(super) fn adopt(
    conn: &rusqlite::Connection,
    context: &Context,
    check: &Check,
) -> rusqlite::Result<(Recorded, usize)> {
    let Some(forget) = check.forget else {
        return Ok((check.recorded, 0));
    };
    let rows = conn.execute(forget, [])?;
    for (key, now) in context.values() {
        rows::set_meta(conn, key, now)?;
    }
    let generation = check.recorded.generation + 1;
    rows::set_meta(conn, "generation", &generation.to_string())?;
    if rows > 0 {
        let was = |key: &str| check.changed.iter().find(|(k, _)| *k == key).map(|(_, was)| was);
        match (was("zone"), was("logs")) {
            (Some(Some(was)), _) => tracing::warn!(%was, now = %context.zone, "time zone changed: rendering every conversation again (timestamps without a zone are local time; processes sharing an index should share TZ, or each use its own --db)"),
            (Some(None), _) => tracing::info!("recording what rows are read with (time zone, logs directory, HOME, working directory): reading every conversation again, once"),
            (None, Some(Some(was))) => tracing::warn!(%was, now = %context.logs, "the logs directory goes by another name: rendering every item again (its path starts with the name; processes sharing an index should name it alike, or each use its own --db)"),
            _ => tracing::info!(rows, "HOME or the working directory changed: rendering again the items whose config paths use it"),
        }
    }
    Ok((Recorded { generation, home_unrecorded: false, cwd_unrecorded: false }, rows))
}

/// Before a row whose config paths use `HOME` or the working directory is written: records the
/// one it used if it was left unrecorded. No row used the recorded value (so none is read
/// again), and the generation stays: nothing another refresh read is made stale.
pub(super) fn record_used(
    conn: &rusqlite::Connection,
    context: &Context,
    recorded: &mut Recorded,
    uses_home: bool,
    uses_cwd: bool,
) -> rusqlite::Result<()> {
    if uses_home && recorded.home_unrecorded {
        rows::set_meta(conn, "home", &context.home)?;
        recorded.home_unrecorded = false;
    }
    if uses_cwd && recorded.cwd_unrecorded {
        rows::set_meta(conn, "cwd", &context.cwd)?;
        recorded.cwd_unrecorded = false;
    }
    Ok(())
}
