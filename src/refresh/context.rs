//! What rows depend on besides the archive's bytes, recorded with them: a row computed under
//! another context is read or rendered again.

use std::path::Path;

use crate::format::gptme::accumulator::Created;
use crate::format::gptme::{item, side, time};
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
    /// The zone changed: each `created` is rendered again (see [`render_in_zone`]).
    zone: bool,
    /// The recorded zone as a person names it, where the index recorded that too.
    zone_was_named: Option<String>,
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
        // Under another zone each naive `created` is rendered again from the stored wall clock,
        // the items that do not keep one are rendered again whole (their side stamps are
        // forgotten), and the logs whose `created` the zone decided are read again; under another
        // logs name every item is rendered again; under another `$HOME` or working directory,
        // the items whose paths used it.
        let uses = |flag: &str| -> rusqlite::Result<bool> {
            let sql = format!("SELECT EXISTS (SELECT 1 FROM _scan_state WHERE json_extract(side, '$.{flag}'))");
            conn.query_row(&sql, [], |r| r.get(0))
        };
        let forget = if differs("logs") {
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
        let zone = differs("zone");
        let zone_was_named = match zone {
            true => recorded_zone(conn)?.map(|(named, _)| named),
            false => None,
        };
        let adopting = zone || forget.is_some();
        let recorded = Recorded {
            generation,
            home_unrecorded: !adopting && differs("home"),
            cwd_unrecorded: !adopting && differs("cwd"),
        };
        Ok(Check { recorded, changed, forget, zone, zone_was_named })
    }

    /// The context is to be adopted (a write).
    pub(super) fn to_adopt(&self) -> bool {
        self.zone || self.forget.is_some()
    }

    /// The record as it stands, when nothing is to be adopted.
    pub(super) fn recorded(&self) -> Recorded {
        self.recorded
    }
}

/// The zone the rows were read in, as its process named it (by its key where the index does not
/// say: a process of a version before session 67 records the key alone, and then the name
/// recorded is another key's), and whether it is this process's zone. None: never recorded.
pub fn recorded_zone(conn: &rusqlite::Connection) -> rusqlite::Result<Option<(String, bool)>> {
    let Some(key) = rows::get_meta(conn, "zone")? else { return Ok(None) };
    let here = key == time::zone_key() || key == time::legacy_zone_key();
    let named = match rows::get_meta(conn, "zone_name_of")?.as_ref() == Some(&key) {
        true => rows::get_meta(conn, "zone_name")?,
        false => None,
    };
    Ok(Some((named.unwrap_or(key), here)))
}

/// What adopting a context did.
#[derive(Default)]
pub(super) struct Adopted {
    /// Rows whose reads were forgotten: the refresh reads or renders them again.
    pub forgotten: usize,
    /// Rows whose naive `created` was rendered in the new zone.
    pub zone_rendered: usize,
}

/// Makes `context` the recorded one: forgets the reads that depend on what changed (renders a
/// naive `created` again in a new zone), records all four values and a new generation. In the
/// refresh's transaction, after `check` was read in it. Returns the new record and what it did.
pub(super) fn adopt(
    conn: &rusqlite::Connection,
    context: &Context,
    check: &Check,
) -> rusqlite::Result<(Recorded, Adopted)> {
    if !check.to_adopt() {
        return Ok((check.recorded, Adopted::default()));
    }
    // Said before the work, which on a large index takes seconds (about one per 30,000 rows here).
    let any_rows: bool =
        conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM _scan_state)")?.query_row([], |r| r.get(0))?;
    if any_rows {
        let was = |key: &str| check.changed.iter().find(|(k, _)| *k == key).map(|(_, was)| was);
        match (was("zone"), was("logs")) {
            (Some(Some(was)), _) => tracing::warn!(
                "time zone changed from {} to {}: writing each timestamp without a zone again (they are local time; processes sharing an index should share TZ, or each use its own --db)",
                check.zone_was_named.as_deref().unwrap_or(was),
                time::zone_name()
            ),
            (Some(None), _) => tracing::info!("recording what rows are read with (time zone, logs directory, HOME, working directory): reading every conversation again, once"),
            (None, Some(Some(was))) => tracing::warn!(%was, now = %context.logs, "the logs directory goes by another name: rendering every item again (its path starts with the name; processes sharing an index should name it alike, or each use its own --db)"),
            _ => tracing::info!("HOME or the working directory changed: rendering again the items whose config paths use it"),
        }
    }
    let mut done = Adopted::default();
    if let Some(forget) = check.forget {
        done.forgotten += conn.execute(forget, [])?;
    }
    // After the forgetting: a row forgotten for another reason is rendered whole anyway.
    if check.zone {
        let (rendered, forgotten) = render_in_zone(conn)?;
        done.zone_rendered = rendered;
        done.forgotten += forgotten;
    }
    for (key, now) in context.values() {
        rows::set_meta(conn, key, now)?;
    }
    rows::set_meta(conn, "zone_name", &time::zone_name())?;
    rows::set_meta(conn, "zone_name_of", &context.zone)?;
    let generation = check.recorded.generation + 1;
    rows::set_meta(conn, "generation", &generation.to_string())?;
    tracing::debug!(read_again = done.forgotten, rendered = done.zone_rendered, generation, "context adopted");
    Ok((Recorded { generation, home_unrecorded: false, cwd_unrecorded: false }, done))
}

/// Under a new zone: writes each naive `created` as an instant of this zone, into the row and
/// its item, from the wall-clock reading the stored state keeps; the rest of the item stays as it
/// was, byte for byte. No file is read: a zone change costs a pass over the rows, not a refresh
/// of every conversation. An aware timestamp, or the file's mtime, is the same instant in every
/// zone. The rest are forgotten, for the refresh to render whole: a row whose state keeps no
/// wall clock (read before session 37: the instant alone; none found yet: a half-written line
/// may give it), or whose item is not as convmeta writes it; and where the zone decided which
/// line gives `created` (a naive timestamp near years 1 and 9999), its log is read whole.
/// Returns (rendered, forgotten).
fn render_in_zone(conn: &rusqlite::Connection) -> rusqlite::Result<(usize, usize)> {
    let (mut rendered, mut forgotten, mut after) = (0, 0, String::new());
    loop {
        // In batches, so that memory stays bounded by a batch, not the archive.
        let batch = rows::zone_states(conn, &after, 512)?;
        let Some(last) = batch.last() else { break };
        after = last.id.clone();
        for row in batch {
            let from = row.created_from.as_deref().and_then(|c| {
                // A unit variant comes back from json_extract as its bare name.
                serde_json::from_str::<Created>(c).or_else(|_| serde_json::from_value(c.into())).ok()
            });
            let wall = match from {
                Some(Created::Aware(_) | Created::FileMtime) if !row.zone_bound => continue,
                Some(Created::Local(wall, micros)) if !row.zone_bound => (wall, micros),
                _ => {
                    rows::forget_read(conn, &row.id, row.zone_bound || matches!(from, Some(Created::At(_))))?;
                    forgotten += 1;
                    continue;
                }
            };
            if row.side_forgotten {
                continue; // rendered whole by the refresh anyway
            }
            let created = time::naive_to_unix(wall.0, wall.1);
            if created.is_some_and(|c| Some(c.to_bits()) == row.created.map(f64::to_bits)) {
                continue; // the same instant in both zones
            }
            let item =
                row.item_json.as_deref().zip(created).and_then(|(item, c)| Some((c, item::with_created(item, c)?)));
            match item {
                Some((created, item_json)) => {
                    rows::set_created(conn, &row.id, created, &item_json)?;
                    rendered += 1;
                }
                None => {
                    rows::forget_read(conn, &row.id, false)?;
                    forgotten += 1;
                }
            }
        }
    }
    Ok((rendered, forgotten))
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
