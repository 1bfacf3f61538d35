//! One refresh: discover → stat → diff against the stored state → scan what changed → write.
//! Unchanged conversations cost a few stats and no reads.

use std::collections::HashSet;
use std::fs::{File, Metadata};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::format::gptme::{self, item, side, Accumulator, Found};
use crate::scan::{self, Fnv, LineSink};
use crate::store::rows::{self, ConversationRow, FileStamp, ModelRow, Resume, StoredState};
use crate::store::Store;

/// Told how far a refresh has come (the backfill's progress bar).
pub trait Progress: Sync {
    fn start(&self, files: u64, bytes: u64);
    fn advance(&self, files: u64, bytes: u64);
}

pub struct Options<'a> {
    /// Threads that read logs.
    pub jobs: usize,
    /// Commit at least this often (a backfill, so an interrupted run keeps its progress). None:
    /// one transaction for the whole refresh, so readers never see half of it.
    pub commit_every: Option<Duration>,
    pub progress: Option<&'a dyn Progress>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            jobs: default_jobs(),
            commit_every: None,
            progress: None,
        }
    }
}

pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// What a refresh did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Stats {
    pub conversations: usize,
    pub unchanged: usize,
    /// Logs read from the start (new, rewritten, shrunk or replaced).
    pub full_scans: usize,
    /// Logs read only from where the last read stopped.
    pub appends: usize,
    /// Only a side file (config, branches, agent) changed.
    pub side_only: usize,
    pub deleted: usize,
    pub bytes_read: u64,
    pub duration_ms: f64,
}

fn stamp_of(m: &Metadata) -> Option<FileStamp> {
    m.is_file().then(|| FileStamp {
        ino: m.ino(),
        size: m.size(),
        mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
    })
}

/// gptme's `modified`: `st_mtime` as Python computes it.
fn modified_of(m: &Metadata) -> f64 {
    m.mtime() as f64 + m.mtime_nsec() as f64 * 1e-9
}

/// A hash over the stat of every side file (absent ones included), so any change shows up.
fn side_stamp(found: &Found, agent_toml: Option<&str>) -> u64 {
    let mut h = Fnv::new(0);
    let side = found.side_paths();
    let agent = agent_toml.map(PathBuf::from);
    for path in side.iter().chain(agent.as_ref()) {
        match std::fs::metadata(path) {
            Ok(m) => {
                for v in [m.ino() as i64, m.size() as i64, m.mtime(), m.mtime_nsec()] {
                    h.write(&v.to_le_bytes());
                }
            }
            Err(_) => h.write(b"-"),
        }
    }
    h.0
}

/// A conversation that needs its row written.
struct Job {
    found: Found,
    prior: Option<StoredState>,
    side_stamp: u64,
}

enum Outcome {
    Row(Box<ConversationRow>, Kind, u64),
    /// The log disappeared between discovery and reading.
    Vanished(String),
}

#[derive(Clone, Copy)]
enum Kind {
    Full,
    Append,
    SideOnly,
}

/// Runs one refresh of `logs` into `store`.
pub fn refresh(store: &Store, logs: &Path, opts: &Options<'_>) -> Result<Stats> {
    let began = Instant::now();
    let found = gptme::discover(logs).map_err(|source| Error::Logs {
        path: logs.into(),
        source,
    })?;
    let conn = store.conn()?;
    let stored = rows::load_states(&conn).map_err(|e| store.err(e))?;

    let mut stats = Stats {
        conversations: found.len(),
        ..Stats::default()
    };
    let present: HashSet<&str> = found.iter().map(|f| f.id.as_str()).collect();
    let deleted: Vec<String> = stored
        .keys()
        .filter(|id| !present.contains(id.as_str()))
        .cloned()
        .collect();
    drop(present);

    let mut jobs = Vec::new();
    for f in found {
        let prior = stored.get(&f.id);
        let stamp = side_stamp(&f, prior.and_then(|p| p.agent_toml.as_deref()));
        let log = stamp_of(&f.log_meta);
        if prior.is_some_and(|p| p.log == log && p.side_stamp == stamp) {
            stats.unchanged += 1;
            continue;
        }
        jobs.push(Job {
            prior: prior.cloned(),
            found: f,
            side_stamp: stamp,
        });
    }
    drop(stored);
    // Largest first keeps the threads evenly busy to the end.
    jobs.sort_by_key(|j| std::cmp::Reverse(j.found.log_meta.len()));
    if let Some(p) = opts.progress {
        p.start(
            jobs.len() as u64,
            jobs.iter().map(|j| j.found.log_meta.len()).sum(),
        );
    }

    let mut writer = Writer::begin(store, conn, opts.commit_every)?;
    for id in &deleted {
        writer.apply(|c| rows::delete(c, id))?;
        tracing::info!(id, "conversation deleted");
    }
    stats.deleted = deleted.len();

    let next = AtomicUsize::new(0);
    let threads = opts.jobs.max(1).min(jobs.len());
    std::thread::scope(|s| -> Result<()> {
        let (tx, rx) = mpsc::sync_channel::<Result<Outcome>>(64);
        for _ in 0..threads {
            let tx = tx.clone();
            let (jobs, next) = (&jobs, &next);
            s.spawn(move || {
                let mut buf = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let out = build(store, job, &mut buf);
                    if tx.send(out).is_err() {
                        break; // the writer failed and stopped listening
                    }
                }
            });
        }
        drop(tx);
        for out in rx {
            match out? {
                Outcome::Row(row, kind, bytes) => {
                    if let Some(p) = opts.progress {
                        p.advance(1, row.state.log.map_or(0, |l| l.size));
                    }
                    stats.bytes_read += bytes;
                    match kind {
                        Kind::Full => stats.full_scans += 1,
                        Kind::Append => stats.appends += 1,
                        Kind::SideOnly => stats.side_only += 1,
                    }
                    writer.apply(|c| rows::upsert(c, &row))?;
                }
                Outcome::Vanished(id) => {
                    writer.apply(|c| rows::delete(c, &id))?;
                    stats.deleted += 1;
                }
            }
        }
        Ok(())
    })?;
    stats.duration_ms = began.elapsed().as_secs_f64() * 1e3;
    let stats_json = serde_json::to_string(&stats).unwrap_or_default();
    writer.apply(|c| rows::set_meta(c, "last_refresh", &stats_json))?;
    writer.apply(|c| rows::set_meta(c, "last_refresh_at", &unix_now().to_string()))?;
    writer.finish()?;
    Ok(stats)
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Writes in one transaction, or in several (committing every `every`) during a backfill.
struct Writer<'a> {
    store: &'a Store,
    conn: crate::store::Conn,
    every: Option<Duration>,
    since: Instant,
}

impl<'a> Writer<'a> {
    fn begin(store: &'a Store, conn: crate::store::Conn, every: Option<Duration>) -> Result<Self> {
        conn.execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| store.err(e))?;
        Ok(Writer {
            store,
            conn,
            every,
            since: Instant::now(),
        })
    }

    fn apply(
        &mut self,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<()>,
    ) -> Result<()> {
        if let Err(e) = f(&self.conn) {
            let _ = self.conn.execute_batch("ROLLBACK");
            return Err(self.store.err(e));
        }
        if self
            .every
            .is_some_and(|every| self.since.elapsed() >= every)
        {
            self.conn
                .execute_batch("COMMIT; BEGIN IMMEDIATE")
                .map_err(|e| self.store.err(e))?;
            self.since = Instant::now();
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        self.conn
            .execute_batch("COMMIT")
            .map_err(|e| self.store.err(e))
    }
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        // After a failure the transaction may still be open: never leave it half-applied.
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

impl LineSink for Accumulator {
    fn line(&mut self, bytes: &[u8], offset: u64) {
        self.feed(bytes, offset);
    }
    fn oversized(&mut self) {
        self.feed_oversized();
    }
}

/// The log's contribution to a row.
struct LogRead {
    /// State to store (complete lines only).
    stored: Accumulator,
    /// State to show: `stored` plus a trailing partial line when it parses.
    shown: Accumulator,
    resume: Resume,
    stamp: Option<FileStamp>,
    modified: f64,
    kind: Kind,
    bytes: u64,
    problem: Option<String>,
}

/// Reads what is new in a log, resuming from `prior` when the file only grew.
fn read_log(
    path: &Path,
    meta: &Metadata,
    prior: Option<(&StoredState, Resume)>,
    buf: &mut Vec<u8>,
) -> std::io::Result<LogRead> {
    let not_file = |meta: &Metadata| LogRead {
        stored: Accumulator::default(),
        shown: Accumulator::default(),
        resume: Resume {
            offset: 0,
            fingerprint: 0,
            accumulator: "{}".into(),
        },
        stamp: None,
        modified: modified_of(meta),
        kind: Kind::Full,
        bytes: 0,
        problem: Some(format!("{} is not a regular file", gptme::LOG_FILE)),
    };
    if !meta.is_file() {
        return Ok(not_file(meta)); // never open a FIFO or device: it could block forever
    }
    let file = File::open(path)?;
    let meta = file.metadata()?;
    let Some(stamp) = stamp_of(&meta) else {
        return Ok(not_file(&meta));
    };

    let mut start = 0;
    let mut acc = Accumulator::default();
    let mut kind = Kind::Full;
    if let Some((state, resume)) = prior {
        let same_file = state
            .log
            .is_some_and(|old| old.ino == stamp.ino && old.size <= stamp.size);
        if same_file
            && resume.offset <= stamp.size
            && scan::fingerprint(&file, resume.offset)? == resume.fingerprint
        {
            if let Ok(a) = serde_json::from_str::<Accumulator>(&resume.accumulator) {
                if state.log == Some(stamp) {
                    kind = Kind::SideOnly;
                } else {
                    kind = Kind::Append;
                }
                acc = a;
                start = resume.offset;
            }
        }
    }
    let scanned = scan::scan(&file, start, stamp.size, &mut acc, buf)?;
    let read_line = |offset: u64, len: usize| {
        let mut line = vec![0; len];
        file.read_exact_at(&mut line, offset).ok().map(|()| line)
    };
    acc.settle(read_line);
    let mut shown = acc.clone();
    if scanned.tail_oversized {
        shown.feed_oversized();
    } else if !scanned.tail.is_empty() {
        // The tail is in hand; it is the only line this settle can need.
        shown.feed(&scanned.tail, scanned.offset);
        shown.settle(|_, _| Some(scanned.tail.clone()));
    }
    let resume = Resume {
        offset: scanned.offset,
        fingerprint: scan::fingerprint(&file, scanned.offset)?,
        accumulator: serde_json::to_string(&acc).unwrap_or_else(|_| "{}".into()),
    };
    Ok(LogRead {
        stored: acc,
        shown,
        resume,
        stamp: Some(stamp),
        modified: modified_of(&meta),
        kind,
        bytes: scanned.bytes_read,
        problem: None,
    })
}

/// Builds the row of one changed conversation.
fn build(store: &Store, job: &Job, buf: &mut Vec<u8>) -> Result<Outcome> {
    let f = &job.found;
    let path = f.log_path();
    let prior = match &job.prior {
        Some(state) => {
            let conn = store.conn()?;
            rows::load_resume(&conn, &f.id)
                .map_err(|e| store.err(e))?
                .map(|r| (state, r))
        }
        None => None,
    };
    let prior_problems = prior
        .as_ref()
        .and_then(|(_, r)| serde_json::from_str::<Accumulator>(&r.accumulator).ok())
        .map(|a| a.problems)
        .unwrap_or_default();
    let log = match read_log(
        &path,
        &f.log_meta,
        prior.as_ref().map(|(s, r)| (*s, r.clone())),
        buf,
    ) {
        Ok(log) => log,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Outcome::Vanished(f.id.clone()))
        }
        Err(e) => LogRead {
            stored: Accumulator::default(),
            shown: Accumulator::default(),
            resume: Resume {
                offset: 0,
                fingerprint: 0,
                accumulator: "{}".into(),
            },
            stamp: stamp_of(&f.log_meta),
            modified: modified_of(&f.log_meta),
            kind: Kind::Full,
            bytes: 0,
            problem: Some(format!("cannot read {}: {e}", gptme::LOG_FILE)),
        },
    };
    let new_problems = log.stored.problems;
    if new_problems.total() > prior_problems.total() {
        tracing::warn!(
            id = f.id,
            bad_lines = new_problems
                .bad_lines
                .saturating_sub(prior_problems.bad_lines),
            bad_fields = new_problems
                .bad_fields
                .saturating_sub(prior_problems.bad_fields),
            oversized_lines = new_problems
                .oversized_lines
                .saturating_sub(prior_problems.oversized_lines),
            invalid_utf8_lines = new_problems
                .invalid_utf8_lines
                .saturating_sub(prior_problems.invalid_utf8_lines),
            "problems in conversation log"
        );
    }

    let side = side::read(&f.dir, &f.id);
    let prior_agent = job.prior.as_ref().and_then(|p| p.agent_toml.clone());
    let agent_toml = side
        .agent_toml
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    let stamp = if agent_toml == prior_agent {
        job.side_stamp
    } else {
        side_stamp(f, agent_toml.as_deref())
    };
    let side_changed = job
        .prior
        .as_ref()
        .is_none_or(|p| p.side_stamp != job.side_stamp);
    if side_changed && !side.problems.is_empty() {
        tracing::warn!(
            id = f.id,
            problems = side.problems.join("; "),
            "problems in conversation files"
        );
    }

    let path_text = path.to_string_lossy().into_owned();
    let acc = &log.shown;
    let item_json = item::render(&item::ItemParts {
        id: &f.id,
        path: &path_text,
        modified: log.modified,
        side: &side,
        acc,
    });
    let mut notes: Vec<String> = log
        .problem
        .into_iter()
        .chain(side.problems.iter().cloned())
        .collect();
    let lp = acc.problems;
    let problems = (lp.total() + notes.len() as u64) as i64;
    for (n, what) in [
        (lp.bad_lines, "malformed lines"),
        (lp.bad_fields, "fields of the wrong type"),
        (lp.oversized_lines, "oversized lines"),
        (lp.invalid_utf8_lines, "lines with invalid UTF-8"),
    ] {
        if n > 0 {
            notes.push(format!("{n} {what}"));
        }
    }
    let row = ConversationRow {
        id: f.id.clone(),
        name: side.name.clone(),
        path: path_text,
        created: acc.created(log.modified),
        modified: log.modified,
        messages: acc.messages as i64,
        branches: side.branches as i64,
        workspace: side.workspace.clone(),
        agent_name: side.agent_name.clone(),
        agent_path: side.agent_path.clone(),
        agent_avatar: side.agent_avatar.clone(),
        agent_urls: item::agent_urls_json(&side),
        model: acc.model.clone(),
        total_cost: acc.total_cost,
        total_input_tokens: acc.total_input_tokens,
        total_output_tokens: acc.total_output_tokens,
        total_cache_read_tokens: acc.total_cache_read_tokens,
        models_usage: item::models_usage_json(acc),
        models: acc
            .models_usage
            .iter()
            .map(|(m, u)| ModelRow {
                model: m.clone(),
                cost: u.cost,
                input_tokens: u.input_tokens,
                output_tokens: u.output_tokens,
                cache_read_tokens: u.cache_read_tokens,
            })
            .collect(),
        last_message_role: acc.last_message.as_ref().map(|m| m.role.clone()),
        last_message_preview: acc.last_message.as_ref().map(|m| m.preview.clone()),
        hidden: gptme::is_hidden(&f.id),
        problems,
        problem_notes: (!notes.is_empty()).then(|| notes.join("; ")),
        item_json,
        state: StoredState {
            log: log.stamp,
            side_stamp: stamp,
            agent_toml,
        },
        resume: log.resume,
    };
    Ok(Outcome::Row(Box::new(row), log.kind, log.bytes))
}
