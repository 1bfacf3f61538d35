//! Which conversations one refresh looks at, and the stored states it compares them with: every
//! conversation (a sweep, listing the logs dir), or the named ones with those whose files
//! outside the archive changed. What the last refresh kept saves reading the index again.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use super::{agents, racy, stamp_ns, Agents, Context, Kept, Recorded, Resumed};
use crate::error::{Error, Result};
use crate::filesystem::racy_stamp;
use crate::format::gptme;
use crate::store::rows::{self, StoredState};
use crate::store::{States, Store};

/// The logs dir's entries, and the directory's stamp when they were listed (none if it was
/// racy then: see `racy`).
#[derive(Clone)]
pub struct Listing {
    /// Device, inode, mtime and ctime (ns).
    stamp: Option<(u64, u64, i64, i64)>,
    ids: Arc<[String]>,
}

/// What one refresh looks at.
pub(super) struct Scope {
    /// The conversations asked for, with those a change outside the archive touched; None:
    /// every conversation (a sweep).
    pub named: Option<Vec<String>>,
    /// The logs dir's entries to stat: every one, or those of `named` that can be one.
    pub ids: Arc<[String]>,
    /// The stored states: every conversation's when `complete`, else only `named`'s.
    pub stored: States,
    complete: bool,
    /// The resume points the last refresh kept (taken by the conversations that changed).
    pub resumes: HashMap<String, Resumed>,
    /// When the `last_refresh` record was written (Unix seconds), if it exists.
    pub recorded_at: Option<f64>,
    listing: Option<Listing>,
    /// The agent files conversations use, and what this refresh's look at them saw.
    agents: Option<(Agents, agents::Check)>,
}

impl Scope {
    /// `only`: the conversations asked for (None: all); `kept`: what the last refresh left, if
    /// it still holds.
    pub fn find(
        store: &Store,
        conn: &rusqlite::Connection,
        logs: &Path,
        logs_fd: rustix::fd::BorrowedFd<'_>,
        only: Option<&[String]>,
        kept: Option<Kept>,
        began_ns: i64,
    ) -> Result<Scope> {
        let err = |e| store.err(e);
        let (kept, resumes, recorded_at, listing, agents) = match kept {
            Some(k) => (k.states, k.resumes, k.recorded_at, k.listing, k.agents),
            None => (None, HashMap::new(), recorded_at(conn).map_err(err)?, None, None),
        };
        // An agent's gptme.toml lies outside the logs dir, where no watch sees it change: the
        // conversations whose agent file changed are refreshed along with the named ones. The
        // files are found for the first refresh of named conversations and tracked from then
        // on, through full ones too (which read every conversation anyway).
        let agents = match (only, agents) {
            (Some(_), None) => Some(Agents::from_stored(rows::agent_uses(conn).map_err(err)?)),
            (_, agents) => agents,
        };
        let mut agents_changed = Vec::new();
        let agents = agents.map(|agents| {
            let check;
            (agents_changed, check) = agents.check(|m| !racy(m, began_ns));
            (agents, check)
        });
        let named = match only {
            Some(ids) => {
                let mut named = ids.to_vec();
                widen(&mut named, &agents_changed);
                // So do symlinks outside the archive: the conversations whose workspace or agent
                // path went by one are refreshed along with the named ones too (a partial index
                // finds them, usually none).
                widen(&mut named, &rows::linked(conn).map_err(err)?);
                Some(named)
            }
            None => None,
        };
        let complete = named.is_none() || kept.is_some();
        let (ids, stored, listing) = match &named {
            None => {
                let listing = list(logs, logs_fd, listing, began_ns)?;
                let stored = match kept {
                    Some(states) => states,
                    None => rows::load_states(conn).map_err(err)?,
                };
                (listing.ids.clone(), stored, Some(listing))
            }
            Some(named) => {
                let stored = match kept {
                    Some(states) => states,
                    None => {
                        let mut stored = HashMap::new();
                        for id in named {
                            if let Some(state) = rows::load_state(conn, id).map_err(err)? {
                                stored.insert(id.clone(), state);
                            }
                        }
                        stored
                    }
                };
                // Only names that can be a directory entry of `logs`.
                (named.iter().filter(|id| gptme::is_entry_name(id)).cloned().collect(), stored, listing)
            }
        };
        Ok(Scope { named, ids, stored, complete, resumes, recorded_at, listing, agents })
    }

    /// What this refresh leaves for the next one, once it has written `changes` (each row
    /// written, or None for one deleted) and the rows with these `resumes`, under `recorded`.
    pub fn kept_after(
        self,
        changes: Vec<(String, Option<StoredState>)>,
        resumes: HashMap<String, Resumed>,
        context: Context,
        recorded: Recorded,
    ) -> Kept {
        let Scope { mut stored, complete, recorded_at, listing, agents, .. } = self;
        let agents = agents.map(|(mut agents, check)| {
            agents.update(check, changes.iter().map(|(id, now)| (id, stored.get(id), now.as_ref())));
            agents
        });
        let states = complete.then(|| {
            for (id, state) in changes {
                match state {
                    Some(state) => stored.insert(id, state),
                    None => stored.remove(&id),
                };
            }
            stored
        });
        Kept { states, resumes, recorded_at, context, recorded, listing, agents }
    }
}

/// Adds to `ids` those of `more` not among them.
fn widen(ids: &mut Vec<String>, more: &[String]) {
    if more.is_empty() {
        return;
    }
    let asked: HashSet<&String> = ids.iter().collect();
    let more: Vec<String> = more.iter().filter(|id| !asked.contains(id)).cloned().collect();
    ids.extend(more);
}

/// The names in the logs dir, listed again only when the directory changed since `kept` was
/// listed. Creating, removing or renaming an entry moves a directory's mtime and ctime; a
/// program can set the mtime back (`touch -d`, `rsync -t`), never the ctime, so the stamp has
/// both. A stat instead of an open, two reads and a close on every full refresh.
fn list(logs: &Path, logs_fd: rustix::fd::BorrowedFd<'_>, kept: Option<Listing>, began_ns: i64) -> Result<Listing> {
    let failed = |source| Error::logs(logs, source);
    // Before listing: a change made while we list moves the stamp past this one.
    let m = rustix::fs::fstat(logs_fd).map_err(|e| failed(e.into()))?;
    let (mtime, ctime) = ((m.st_mtime, m.st_mtime_nsec as i64), (m.st_ctime, m.st_ctime_nsec as i64));
    #[allow(clippy::unnecessary_cast)] // dev_t: u64 on Linux, i32 on macOS
    let dev = m.st_dev as u64;
    let stamp = (dev, m.st_ino, stamp_ns(mtime.0, mtime.1), stamp_ns(ctime.0, ctime.1));
    if let Some(kept) = kept.filter(|k| k.stamp == Some(stamp)) {
        return Ok(kept);
    }
    let ids = gptme::list_entries(logs).map_err(failed)?;
    // Both times: FAT keeps no change time on disk, so what a stat says of it may not move.
    let settled = ![mtime, ctime].iter().any(|&(secs, nsec)| racy_stamp(secs, nsec, began_ns));
    Ok(Listing { stamp: settled.then_some(stamp), ids: ids.into() })
}

/// When the `last_refresh` record was written, read from the database.
fn recorded_at(conn: &rusqlite::Connection) -> rusqlite::Result<Option<f64>> {
    let record = rows::get_meta(conn, "last_refresh")?;
    Ok(record.and_then(|v| serde_json::from_str::<serde_json::Value>(&v).ok()).and_then(|v| v["at"].as_f64()))
}
