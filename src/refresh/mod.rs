//! One refresh: discover → stat → diff against the stored state → scan what changed → write.
//! Unchanged conversations cost a few stats and no reads.
//!
//! `run` takes those steps in order. `scope` decides which conversations to look at; `sweep`
//! stats and diffs them; `build` reads what changed in one conversation and renders its row;
//! `queue` hands the changed conversations to the threads; `writer` commits the rows. `context` and `agents` track the inputs that lie outside
//! the conversations' own files (the time zone, the home directory, agents' `gptme.toml`), and
//! `side_stamp` the symlinks outside the archive that a workspace or agent path went through.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::fd::AsFd;
use rustix::fs::{Mode, OFlags};

use crate::error::{Error, Result};
use crate::filesystem::{file_clock_ns, racy_stamp};
use crate::format::gptme::{self, FileStat, Found};
use crate::scan::Fnv;
use crate::store::rows::{self, ConversationRow, FileStamp, StoredState};
use crate::store::{data_version, not_newer, Store};

mod agents;
mod build;
mod context;
mod queue;
mod scope;
mod writer;
pub use agents::Agents;
use build::build;
pub use build::Resumed;
pub use context::{recorded_zone, Context, Recorded};
use queue::Queue;
pub use scope::Listing;
use scope::Scope;
use writer::Writer;

/// Told how far a refresh has come (the backfill's progress bar).
pub trait Progress: Sync {
    /// The sweep begins: it stats `conversations` directory entries before any log is read
    /// (seconds on a cold disk for a large archive).
    fn sweeping(&self, _conversations: u64) {}
    /// The sweep has looked at one more entry; called from its threads.
    fn swept(&self) {}
    /// The reading begins: `files` logs to read, `bytes` in all.
    fn start(&self, files: u64, bytes: u64);
    fn advance(&self, files: u64, bytes: u64);
}

pub struct Options<'a> {
    /// Threads that read logs (the one that writes the rows among them). The stat sweep
    /// before them uses at least 16 (`SWEEP_THREADS`).
    pub jobs: usize,
    /// Commit at least this often (a backfill, so an interrupted run keeps its progress). None:
    /// one transaction for the whole refresh, so readers never see half of it.
    pub commit_every: Option<Duration>,
    pub progress: Option<&'a dyn Progress>,
    /// Read every conversation again, whatever the stats say: after a change no stat shows (an
    /// ACL, a new group membership, a read that failed for a passing reason).
    pub reread: bool,
    /// Log the problems found (`verify`'s second reading leaves them to the index's refreshes,
    /// which each log once).
    pub log_problems: bool,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options { jobs: default_jobs(), commit_every: None, progress: None, reread: false, log_problems: true }
    }
}

/// All cores. Cached: `available_parallelism` reads cgroup files, and refreshes are frequent.
/// The most threads a refresh reads logs on, whatever `Options::jobs` asks. More only wait on
/// one another, each holding its buffers: a backfill of 10,000 conversations (1 GB, warm) took
/// 1.8 s on 2 or on 1,000 threads (30 MB and 254 MB of memory), and 17 s and 1.26 GB on 10,000.
/// On a cold disk the reading ahead (see `queue.rs`) keeps the disk busy without them.
pub const MAX_JOBS: usize = 256;

pub fn default_jobs() -> usize {
    static JOBS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *JOBS.get_or_init(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

/// What a refresh leaves for the next one, so it need not read it from SQLite again.
pub struct Kept {
    /// Every conversation's stored state: what a sweep compares against (None when the last
    /// refresh, of named conversations, did not load them all).
    pub states: Option<crate::store::States>,
    /// The resume points of the conversations the last refresh wrote (a few: a conversation
    /// being appended to is usually the next one to change).
    pub resumes: HashMap<String, Resumed>,
    /// When the `last_refresh` record was written (Unix seconds), if it exists.
    pub recorded_at: Option<f64>,
    /// What the rows were read with besides the archive.
    pub context: Context,
    /// The index's record of it, as the last refresh wrote under it.
    pub recorded: Recorded,
    /// The logs dir's entries as last listed.
    pub listing: Option<Listing>,
    /// The agent files conversations use, as last checked (a refresh of named conversations
    /// keeps them).
    pub agents: Option<Agents>,
}

/// What a refresh did (the CLI says it in words: `cli::progress::summary`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Stats {
    pub conversations: usize,
    pub unchanged: usize,
    /// Logs read from the start (new, rewritten, shrunk or replaced).
    pub full_scans: usize,
    /// Logs read only from where the last read stopped.
    pub appends: usize,
    /// Only a side file (config, branches, agent) changed.
    pub side_only: usize,
    /// Items whose naive `created` was rendered again for this process's time zone (another
    /// process had the index in another), with no file read.
    pub zone_rendered: usize,
    /// Logs checked again because they were written in the clock tick they were last read in
    /// (their fingerprints, and any new bytes, read again; see `racy`).
    pub rechecked: usize,
    pub deleted: usize,
    /// Conversations in which this refresh found new problems (each is logged once).
    pub with_new_problems: usize,
    pub bytes_read: u64,
    pub duration_ms: f64,
    /// Every conversation was checked (a sweep), not only named ones.
    pub swept: bool,
}

fn stamp_of(m: &FileStat) -> Option<FileStamp> {
    m.is_file.then_some(FileStamp { ino: m.ino, size: m.size, mtime_ns: mtime_ns(m) })
}

fn mtime_ns(m: &FileStat) -> i64 {
    stamp_ns(m.mtime, m.mtime_nsec)
}

/// A timestamp in ns as part of a stamp, where only equality counts: wrapping, so the dates
/// centuries off that file systems keep (ext4's reach 2446) neither overflow nor collide.
fn stamp_ns(secs: i64, nsec: i64) -> i64 {
    secs.wrapping_mul(1_000_000_000).wrapping_add(nsec)
}

/// A file modified in the clock tick the refresh began in, or later (see [`racy_stamp`]): its
/// stamp is stored unsettled, so the next refresh checks it again.
fn racy(m: &FileStat, began_ns: i64) -> bool {
    racy_stamp(m.mtime, m.mtime_nsec, began_ns)
}

/// How the logs directory is opened for lookups through it: Linux opens a path without reading
/// it; elsewhere (macOS) a read-only handle does, which listing the directory needs anyway.
#[cfg(any(target_os = "linux", target_os = "android"))]
const LOOKUP_ONLY: OFlags = OFlags::PATH;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const LOOKUP_ONLY: OFlags = OFlags::RDONLY;

/// Opens a directory to look files up through it (`statat`, `openat`): each lookup then walks
/// from there, not from the root.
pub(crate) fn open_for_lookups(dir: &Path) -> std::io::Result<rustix::fd::OwnedFd> {
    Ok(rustix::fs::open(dir, LOOKUP_ONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?)
}

/// gptme's `modified`: `st_mtime` as Python computes it.
fn modified_of(m: &FileStat) -> f64 {
    m.mtime as f64 + m.mtime_nsec as f64 * 1e-9
}

/// A hash over the stats of every side file (absent ones included), so any change shows up,
/// and over the log's permission bits (a log we could not read is read again after a chmod).
/// `agent`: the stats of the agent's files when the conversation uses one; `links`: where its
/// [`Side::link_paths`](gptme::side::Side::link_paths) lead now.
fn side_stamp(found: &Found, agent: Option<agents::Seen>, links: &[(bool, PathBuf)]) -> u64 {
    let mut h = Fnv::new(0);
    let log = &found.log;
    [log.mode, log.uid, log.gid].iter().for_each(|v| h.write(&v.to_le_bytes()));
    for stat in found.side.iter().chain(agent.iter().flatten()) {
        match stat {
            Some(m) => {
                for v in [m.ino as i64, m.size as i64, m.mtime, m.mtime_nsec, m.mode.into(), m.uid.into(), m.gid.into()]
                {
                    h.write(&v.to_le_bytes());
                }
            }
            None => h.write(b"-"),
        }
    }
    for (exists, resolved) in links {
        use std::os::unix::ffi::OsStrExt;
        // Length first, so no two lists hash the same bytes.
        h.write(if *exists { b"l" } else { b"-" });
        h.write(&resolved.as_os_str().len().to_le_bytes());
        h.write(resolved.as_os_str().as_bytes());
    }
    h.0
}

/// Threads for the stat sweep, however many cores. Where the file system's metadata is not
/// cached (after a reboot) each stat waits on the disk, and more of them waiting at once finish
/// sooner (git's index preload does the same, with up to 20); where it is cached they cost
/// about what as many threads as cores do.
const SWEEP_THREADS: usize = 16;

/// Runs `f` over `items` on up to `jobs` threads, keeping order.
fn parallel_map<T: Sync, R: Send>(items: &[T], jobs: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let per = items.len().div_ceil(jobs.max(1)).max(256);
    if items.len() <= per {
        return items.iter().map(f).collect();
    }
    let f = &f;
    std::thread::scope(|s| {
        let run = move |chunk: &[T]| chunk.iter().map(f).collect::<Vec<R>>();
        // At the system's limit on threads, this one takes the chunks no thread could.
        let handles: Vec<_> = items
            .chunks(per)
            .map(|chunk| (chunk, std::thread::Builder::new().spawn_scoped(s, move || run(chunk))))
            .collect();
        handles
            .into_iter()
            .flat_map(|(chunk, spawned)| match spawned {
                Ok(h) => h.join().expect("stat worker panicked"),
                Err(_) => run(chunk),
            })
            .collect()
    })
}

/// Logs the problems a refresh finds, once each: the first few conversations' at `warn`, the
/// rest at `debug` with a count at the end, so a backfill of a damaged archive stays readable.
struct ProblemLog {
    conversations: AtomicUsize,
    /// Counted, not logged.
    quiet: bool,
}

/// How many conversations' problems a refresh shows at `warn`.
const PROBLEMS_SHOWN: usize = 10;

impl ProblemLog {
    fn report(&self, id: &str, problems: &str) {
        if self.conversations.fetch_add(1, Ordering::Relaxed) < PROBLEMS_SHOWN && !self.quiet {
            tracing::warn!(id, problems, "problems in conversation");
        } else {
            tracing::debug!(id, problems, "problems in conversation");
        }
    }

    /// Says how many were not shown; returns how many conversations had problems.
    fn finish(&self) -> usize {
        let n = self.conversations.load(Ordering::Relaxed);
        if n > PROBLEMS_SHOWN && !self.quiet {
            tracing::warn!(
                "problems in {} more conversations (CONVMETA_LOG=debug shows each; `convmeta list \
                 --problems --hidden` lists them all, saying what they are)",
                n - PROBLEMS_SHOWN
            );
        }
        n
    }
}

/// What the rows built by one refresh share.
struct Pass<'a> {
    store: &'a Store,
    logs: &'a Path,
    /// `logs` resolved through symlinks, when a side file read first needs it.
    logs_real: std::sync::OnceLock<std::path::PathBuf>,
    problems: ProblemLog,
    /// [`file_clock_ns`] when the refresh began, before its first stat.
    began_ns: i64,
    /// A log's bytes were found not in memory: the disk is cold, and the files of the next
    /// conversations are read ahead from then on (see [`Queue`]).
    cold: AtomicBool,
    /// The refresh was overtaken (see `Writer`): it writes nothing more, so reads nothing more.
    overtaken: AtomicBool,
}

/// A conversation that needs its row written.
struct Job {
    found: Found,
    prior: Option<StoredState>,
    /// Where to resume, when the last refresh wrote it (else it is read from the database).
    resume: Option<Resumed>,
    side_stamp: u64,
}

/// How many written rows' resume points a refresh keeps for the next one: enough for the
/// conversations being appended to right now, and nothing like a backfill's worth.
const KEEP_RESUMES: usize = 16;

enum Outcome {
    Row(Box<(ConversationRow, Resumed)>, Kind, u64),
    /// The log disappeared between discovery and reading.
    Vanished(String),
}

#[derive(Clone, Copy)]
enum Kind {
    Full,
    Append,
    SideOnly,
    Recheck,
}

/// Runs one refresh of every conversation of `logs` into `store`.
pub fn refresh(store: &Store, logs: &Path, opts: &Options<'_>) -> Result<Stats> {
    run(store, logs, None, opts)
}

/// Refreshes just these conversations (new, changed or gone): O(ids), no directory listing.
pub fn refresh_ids(store: &Store, logs: &Path, ids: &[String], opts: &Options<'_>) -> Result<Stats> {
    run(store, logs, Some(ids), opts)
}

fn run(store: &Store, logs: &Path, only: Option<&[String]>, opts: &Options<'_>) -> Result<Stats> {
    let (mut stats, mut overtaken) = run_once(store, logs, only, opts)?;
    // Another process, in another time zone say, adopted its context while this refresh ran
    // (see `Writer`), forgetting every conversation's reads: all are read again, so that the
    // answer is this context's. Twice at most: processes that keep taking the index from each
    // other still answer.
    for _ in 0..2 {
        if !overtaken {
            break;
        }
        tracing::debug!("another process adopted another context during this refresh: refreshing again");
        (stats, overtaken) = run_once(store, logs, None, opts)?;
    }
    Ok(stats)
}

/// One refresh; says also whether it was overtaken (see `Writer`).
fn run_once(store: &Store, logs: &Path, mut only: Option<&[String]>, opts: &Options<'_>) -> Result<(Stats, bool)> {
    let began = Instant::now();
    let began_ns = file_clock_ns();
    let conn = store.writer()?;
    let seen = data_version(&conn).map_err(|e| store.err(e))?;
    not_newer(&conn, store.path())?;
    let context = Context::now(logs);
    let kept = store.take_kept(seen).filter(|k| k.context == context && !opts.reread);
    // Begins its transaction only at the first write: a refresh with nothing to do writes nothing.
    let mut writer = Writer::new(store, &conn, opts.commit_every, &context, kept.as_ref().map(|k| (k.recorded, seen)));
    if writer.adopt_context()? {
        only = None; // every conversation is to be read or rendered again, not only the asked ones
    }
    if opts.reread {
        // Forgotten in the first transaction: a reread stopped halfway leaves the rest forgotten,
        // for the next refresh to read.
        writer.apply(|c| c.execute(rows::FORGET_EVERY_READ, []).map(drop))?;
        only = None;
    }
    // Everything under the logs dir is looked up from here, through the same directory.
    let logs_fd = open_for_lookups(logs).map_err(|source| Error::logs(logs, source))?;
    let mut scope = Scope::find(store, &conn, logs, logs_fd.as_fd(), only, kept, began_ns)?;

    let named = scope.named.as_deref();
    let Sweep { mut jobs, deleted, conversations, unchanged } =
        sweep(logs, logs_fd.as_fd(), &scope.ids, named, &scope.stored, &mut scope.resumes, opts);
    // Sorted largest first: the threads that only read take from the front, the writer from
    // the back, and all stay busy to the end.
    jobs.sort_by_key(|j| std::cmp::Reverse(j.found.log.size));
    if let Some(p) = opts.progress {
        p.start(jobs.len() as u64, jobs.iter().map(|j| j.found.log.size).sum());
    }
    let stats = Stats { swept: named.is_none(), conversations, unchanged, ..Stats::default() };
    let mut written = Written {
        writer: &mut writer,
        stats,
        changes: Vec::new(),
        resumes: Some(HashMap::new()),
        progress: opts.progress,
    };
    for id in deleted {
        tracing::debug!(id = %id, "conversation deleted");
        written.delete(id)?;
    }
    let pass = Pass {
        store,
        logs,
        logs_real: Default::default(),
        problems: ProblemLog { conversations: AtomicUsize::new(0), quiet: !opts.log_problems },
        began_ns,
        cold: Default::default(),
        overtaken: Default::default(),
    };
    build_all(&pass, &jobs, opts.jobs, &mut |out| {
        written.outcome(out)?;
        pass.overtaken.store(written.writer.overtaken, Ordering::Relaxed);
        Ok(())
    })?;

    let Written { mut stats, changes, resumes, .. } = written;
    stats.with_new_problems = pass.problems.finish();
    stats.zone_rendered = writer.zone_rendered;
    stats.duration_ms = began.elapsed().as_secs_f64() * 1e3;
    // Recorded with every change, and at most every few seconds when nothing changed (a write
    // would make every reader's cached answers stale for nothing).
    let now = unix_now();
    if writer.wrote || scope.recorded_at.is_none_or(|at| now - at > RECORD_EVERY_SECS) {
        let record = serde_json::json!({ "at": now, "stats": &stats });
        writer.apply(|c| rows::set_meta(c, "last_refresh", &record.to_string()))?;
        scope.recorded_at = Some(now);
    }
    let (recorded, overtaken) = (writer.recorded(), writer.overtaken);
    writer.finish()?;
    let Some((recorded, _)) = recorded else {
        return Ok((stats, overtaken)); // nothing kept: the next refresh reads the index again
    };
    // What this refresh knows is kept under the data version it began with. If another
    // connection committed while it ran (a slower process may have written rows older than the
    // ones it read), the version has moved by the next refresh, which then reads the states
    // again rather than trust these.
    store.keep(seen, scope.kept_after(changes, resumes.unwrap_or_default(), context, recorded));
    Ok((stats, false))
}

/// What a refresh has written so far, through its writer.
struct Written<'w, 'a> {
    writer: &'w mut Writer<'a>,
    stats: Stats,
    /// Each row written (its state) or deleted (None), to keep the states current without
    /// reading them back.
    changes: Vec<(String, Option<StoredState>)>,
    /// The resume points of the rows written, while there are few (see [`KEEP_RESUMES`]).
    resumes: Option<HashMap<String, Resumed>>,
    progress: Option<&'a dyn Progress>,
}

impl Written<'_, '_> {
    fn outcome(&mut self, out: Outcome) -> Result<()> {
        match out {
            Outcome::Row(built, kind, bytes) => self.row(*built, kind, bytes),
            Outcome::Vanished(id) => self.delete(id),
        }
    }

    /// A row built after reading `bytes` of its conversation's files.
    fn row(&mut self, (row, resumed): (ConversationRow, Resumed), kind: Kind, bytes: u64) -> Result<()> {
        if let Some(p) = self.progress {
            p.advance(1, row.state.log.map_or(0, |l| l.size));
        }
        let stats = &mut self.stats;
        stats.bytes_read += bytes;
        match kind {
            Kind::Full => stats.full_scans += 1,
            Kind::Append => stats.appends += 1,
            Kind::SideOnly => stats.side_only += 1,
            Kind::Recheck => stats.rechecked += 1,
        }
        let (uses_home, uses_cwd) = resumed.side_uses();
        self.writer.apply_row(uses_home, uses_cwd, |c| rows::upsert(c, &row))?;
        self.changes.push((row.id.clone(), Some(row.state.clone())));
        self.resumes = self.resumes.take().filter(|w| w.len() < KEEP_RESUMES).map(|mut w| {
            w.insert(row.id, resumed);
            w
        });
        Ok(())
    }

    /// A conversation found gone by the sweep, or whose log vanished before it was read.
    fn delete(&mut self, id: String) -> Result<()> {
        self.writer.apply(|c| rows::delete(c, &id))?;
        self.stats.deleted += 1;
        self.changes.push((id, None));
        Ok(())
    }
}

/// What a sweep found: the conversations whose rows are to be built, and those gone.
struct Sweep {
    jobs: Vec<Job>,
    deleted: Vec<String>,
    conversations: usize,
    unchanged: usize,
}

/// The sweep: stats the log and side files of each conversation of `ids` (on at least
/// `SWEEP_THREADS` threads: it is all system calls) and compares them with its stored state.
/// `named`: the refresh's own conversations, when it has them (then only those can be found
/// gone).
fn sweep(
    logs: &Path,
    logs_fd: rustix::fd::BorrowedFd<'_>,
    ids: &[String],
    named: Option<&[String]>,
    stored: &HashMap<String, StoredState>,
    resumes: &mut HashMap<String, Resumed>,
    opts: &Options<'_>,
) -> Sweep {
    let progress = opts.progress;
    if let Some(p) = progress {
        p.sweeping(ids.len() as u64);
    }
    // Many conversations share an agent file (an agent's workspace): a full sweep stats each
    // once. (Not a sweep of named ones: `stored` may hold every state, and they are few.)
    let agent_stats: HashMap<&str, agents::Seen> = match named {
        None => {
            let paths: HashSet<&str> = stored.values().filter_map(|s| s.agent_toml.as_deref()).collect();
            paths.into_iter().map(|p| (p, agents::stat(p))).collect()
        }
        Some(_) => HashMap::new(),
    };
    let swept = parallel_map(ids, opts.jobs.max(SWEEP_THREADS), |id| {
        let found = gptme::probe(logs, logs_fd, id);
        if let Some(p) = progress {
            p.swept();
        }
        let found = found?;
        let prior = stored.get(id);
        let agent = prior.and_then(|p| p.agent_toml.as_deref());
        let agent = agent.map(|p| agent_stats.get(p).copied().unwrap_or_else(|| agents::stat(p)));
        let links = prior.map(|p| gptme::side::probe_links(&found.dir, &p.link_paths)).unwrap_or_default();
        let stamp = side_stamp(&found, agent, &links);
        let unchanged = prior.is_some_and(|p| p.log == stamp_of(&found.log) && p.side_stamp == stamp);
        Some((found, stamp, unchanged))
    });
    let mut out = Sweep { jobs: Vec::new(), deleted: Vec::new(), conversations: 0, unchanged: 0 };
    let mut present = HashSet::new();
    for (found, side_stamp, unchanged) in swept.into_iter().flatten() {
        out.conversations += 1;
        present.insert(found.id.clone());
        if unchanged {
            out.unchanged += 1;
        } else {
            out.jobs.push(Job {
                prior: stored.get(&found.id).cloned(),
                resume: resumes.remove(&found.id),
                found,
                side_stamp,
            });
        }
    }
    // Gone: stored but not found. Of the asked ones only, when named (O(asked), not O(stored)).
    out.deleted = match named {
        Some(ids) => ids.iter().filter(|id| stored.contains_key(*id) && !present.contains(*id)).cloned().collect(),
        None => stored.keys().filter(|id| !present.contains(*id)).cloned().collect(),
    };
    out
}

/// Builds every job's row on `threads` threads and hands each to `write`, on this thread.
///
/// The thread that writes builds rows too, between writing the others' (one thread per core in
/// all, and none parked waiting for rows: waking a thread for every row cost more than its
/// write). It takes the smallest jobs, from the back, and the others the largest, so it is soon
/// free to write again and few rows wait for it. One changed conversation, the common case
/// while serving, spawns no thread.
fn build_all(
    pass: &Pass<'_>,
    jobs: &[Job],
    threads: usize,
    write: &mut impl FnMut(Outcome) -> Result<()>,
) -> Result<()> {
    let queue = Queue::new(jobs, &pass.cold);
    let take = |largest: bool| match pass.overtaken.load(Ordering::Relaxed) {
        true => None,
        false => queue.take(largest),
    };
    std::thread::scope(|s| -> Result<()> {
        // Bounded all the same: a row waiting costs kilobytes.
        let (tx, rx) = mpsc::sync_channel::<Result<Outcome>>(64);
        for _ in 1..threads.clamp(1, MAX_JOBS).min(jobs.len()) {
            let (tx, take) = (tx.clone(), &take);
            let spawned = std::thread::Builder::new().spawn_scoped(s, move || {
                let mut buf = Vec::new();
                while let Some(job) = take(true) {
                    if tx.send(build(pass, job, &mut buf)).is_err() {
                        break; // the writer failed and stopped listening
                    }
                }
            });
            if spawned.is_err() {
                break; // at the system's limit on threads: fewer read
            }
        }
        drop(tx);
        let mut buf = Vec::new();
        while let Some(job) = take(false) {
            rx.try_iter().try_for_each(|out| write(out?))?;
            write(build(pass, job, &mut buf)?)?;
        }
        rx.into_iter().try_for_each(|out| write(out?))
    })
}

/// How stale `status`'s "last refresh" may get while nothing changes.
const RECORD_EVERY_SECS: f64 = 5.0;

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}
