//! Watch mode: filesystem notifications mark conversations dirty, so a fresh answer costs a
//! refresh of those conversations instead of a sweep of the whole archive.
//!
//! Freshness holds as in sweep mode: before each refresh we write a file into a private
//! directory watched by the same watcher and wait for its event. Notifications arrive in order,
//! so every change completed before the request has been seen by then.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SendError;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use crate::error::{Error, Result};
use crate::format::gptme;
use crate::refresh::Stats;
use crate::Index;

/// How long to wait for our own barrier event before falling back to a sweep.
const BARRIER_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a request sweeps while the first watches are set up.
const SETTING_UP: &str = "the watches are being set up";

/// How long [`Watch::start`] waits for the first watches: a small archive is watched from the
/// first request on; a large one is served (by sweeps) while its watches are set up.
const SETUP_WAIT: Duration = Duration::from_millis(200);

#[derive(Default)]
struct Marks {
    dirty: HashSet<String>,
    /// Notifications were lost (queue overflow, watcher error): sweep everything.
    full: bool,
    /// The newest barrier seen.
    seen: u64,
    /// Conversations whose log or `config.toml` is a symlink: its target can change with no
    /// event here, so every request checks them.
    linked_out: HashSet<String>,
    /// The first watches are all in place. Until then requests sweep (see [`Watch::start`]).
    ready: bool,
}

struct Shared {
    logs: PathBuf,
    /// The logs directory's (device, inode) when its watches were set up. A different one (the
    /// directory replaced, a symlink re-pointed) has none: watch it anew and sweep.
    watched: Mutex<Option<(u64, u64)>>,
    /// Set by a request that found the logs directory replaced; the event thread, which owns
    /// the watcher, sets the watches up again at the next event (the request's barrier).
    rewatch: AtomicBool,
    /// Setting the watches up again failed: every request sweeps, and tries again.
    blind: AtomicBool,
    barrier_dir: PathBuf,
    marks: Mutex<Marks>,
    seen_changed: Condvar,
    next_barrier: AtomicU64,
    stopped: AtomicBool,
    /// Locked while this process lives, so a later start can tell its directory from one a
    /// killed server left behind.
    _lock: std::fs::File,
}

pub struct Watch {
    shared: Arc<Shared>,
}

impl Watch {
    /// Starts watching `logs` (each conversation directory and its `branches/`), and sweeps
    /// everything every `safety_sweep` in case a notification was missed. The watches are set
    /// up on the watch thread, about 0.15 ms each through notify (a round trip to its own
    /// thread): seconds for a large archive. So this waits for them at most [`SETUP_WAIT`], and
    /// requests sweep until they are all in place; the first request after sweeps once more,
    /// for what changed meanwhile. Fails when the watches cannot be set up within that wait
    /// (for example at the inotify watch limit); the caller then sweeps instead. If they fail
    /// later, requests sweep and try again, as when a new directory cannot be watched.
    pub fn start(index: Arc<Index>, safety_sweep: Duration) -> Result<Watch> {
        let logs = index.logs().to_path_buf();
        let io = |source: std::io::Error| Error::Io { path: logs.clone(), source };
        if !cfg!(any(target_os = "linux", target_os = "android")) {
            // macOS's FSEvents watcher (in notify) stops and restarts its stream for every
            // directory added, and a change made meanwhile sends no event: answers could be
            // stale. Sweeping is slower, never stale.
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "watch mode needs Linux's inotify, so far",
            )));
        }
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let temp = std::env::temp_dir();
        remove_abandoned_barrier_dirs(&temp);
        let barrier_dir =
            temp.join(format!("{BARRIER_PREFIX}{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir_all(&barrier_dir).map_err(io)?;
        let lock = match hold_barrier_lock(&barrier_dir) {
            Ok(lock) => lock,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&barrier_dir);
                return Err(io(e));
            }
        };
        let shared = Arc::new(Shared {
            logs: logs.clone(),
            watched: Mutex::new(identity(&logs)),
            rewatch: AtomicBool::new(false),
            blind: AtomicBool::new(false),
            barrier_dir: barrier_dir.clone(),
            marks: Mutex::new(Marks::default()),
            seen_changed: Condvar::new(),
            next_barrier: AtomicU64::new(1),
            stopped: AtomicBool::new(false),
            _lock: lock,
        });
        // Dropped on any early return below: it removes the barrier directory.
        let watch = Watch { shared: shared.clone() };
        let (tx, rx) = std::sync::mpsc::channel();
        let mut watcher = shared.new_watcher(&tx)?;
        warn_if_elsewhere_writes_unseen(&logs);

        let events = shared.clone();
        // A rendezvous: the outcome reaches `start` while it waits, or fails to send after.
        let (set_up_tx, set_up) = std::sync::mpsc::sync_channel(0);
        std::thread::Builder::new()
            .name("convmeta-watch".into())
            .spawn(move || {
                // Events of changes made meanwhile wait in `rx`.
                let watched = events.watch_first(&mut watcher);
                let failed = watched.is_err();
                match set_up_tx.send(watched) {
                    Ok(()) if failed => return, // `start` fails with the error
                    Ok(()) => {}
                    // `start` has returned: tell here.
                    Err(SendError(Ok(watched))) => {
                        tracing::info!(watches = watched + 1, "watching the archive for changes")
                    }
                    Err(SendError(Err(e))) => {
                        tracing::warn!(error = %e, "cannot watch the archive; requests sweep until it can be");
                        events.blind.store(true, Ordering::SeqCst);
                    }
                }
                for event in &rx {
                    if events.stopped.load(Ordering::Relaxed) {
                        break;
                    }
                    events.handle(&mut watcher, &tx, event);
                }
            })
            .map_err(io)?;
        match set_up.recv_timeout(SETUP_WAIT) {
            Ok(watched) => {
                tracing::info!(watches = watched? + 1, "watching the archive for changes");
            }
            Err(_) => tracing::info!("watching the archive: setting up its watches; requests sweep until then"),
        }
        drop(set_up); // a failure after this is the watch thread's to tell
        let sweeper = shared.clone();
        // Weak: the sweeper must not keep the index (and its database) open after the server.
        let index = Arc::downgrade(&index);
        std::thread::Builder::new()
            .name("convmeta-safety-sweep".into())
            .spawn(move || loop {
                std::thread::sleep(safety_sweep);
                let Some(index) = index.upgrade().filter(|_| !sweeper.stopped.load(Ordering::Relaxed)) else { break };
                if let Err(e) = index.refresh() {
                    tracing::warn!(error = %e, "safety sweep failed");
                }
            })
            .map_err(io)?;
        Ok(watch)
    }

    /// Waits until setting up the first watches has ended, in place or failed (see `start`), or
    /// `timeout` has passed; whether it has.
    pub fn wait_watching(&self, timeout: Duration) -> bool {
        let marks = self.shared.marks.lock().unwrap_or_else(|p| p.into_inner());
        let wait = self.shared.seen_changed.wait_timeout_while(marks, timeout, |m| !m.ready);
        wait.unwrap_or_else(|p| p.into_inner()).0.ready
    }

    /// Refreshes what changed since the last call, sharing the index's single flight: the
    /// conversations marked dirty, or everything if notifications were lost.
    pub fn freshen(&self, index: &Index) -> Result<Option<Arc<Stats>>> {
        let s = &self.shared;
        let now = identity(&s.logs);
        let replaced = now != *s.watched.lock().unwrap_or_else(|p| p.into_inner());
        if replaced || s.blind.load(Ordering::SeqCst) {
            s.marks.lock().unwrap_or_else(|p| p.into_inner()).full = true;
            s.rewatch.store(true, Ordering::SeqCst);
        }
        let stats = index.refresh_via(|| {
            let ready = s.marks.lock().unwrap_or_else(|p| p.into_inner()).ready;
            let barrier = if ready { s.barrier() } else { Err(SETTING_UP) };
            let (dirty, full, linked) = match barrier {
                Ok(()) => {
                    let mut marks = s.marks.lock().unwrap_or_else(|p| p.into_inner());
                    (std::mem::take(&mut marks.dirty), std::mem::take(&mut marks.full), marks.linked_out.clone())
                }
                Err(why) => {
                    if why != SETTING_UP {
                        tracing::warn!(why, "watch barrier failed; sweeping instead");
                    }
                    (HashSet::new(), true, HashSet::new())
                }
            };
            // With nothing marked, still a refresh of named conversations: it checks those whose
            // inputs no watch covers (an agent's gptme.toml, a symlinked log), and costs little
            // when none do.
            let result = if full {
                index.refresh_unlocked(None)
            } else {
                let ids: Vec<String> = dirty.union(&linked).cloned().collect();
                index.refresh_unlocked(Some(&ids))
            };
            if result.is_err() {
                // Try them again next time.
                let mut marks = s.marks.lock().unwrap_or_else(|p| p.into_inner());
                marks.dirty.extend(dirty);
                marks.full |= full;
            }
            result
        })?;
        Ok((*stats != Stats::default()).then_some(stats))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::Relaxed);
        let _ = std::fs::remove_dir_all(&self.shared.barrier_dir);
    }
}

/// Barrier directories are `<temp>/convmeta-watch-<pid>-<n>`.
const BARRIER_PREFIX: &str = "convmeta-watch-";

/// Locks `dir/lock` for as long as the returned file is open (the kernel lets go when the
/// process dies, however it dies). The file is locked before it gets its name, so no other
/// start can find it unlocked while we live.
fn hold_barrier_lock(dir: &Path) -> std::io::Result<std::fs::File> {
    let unnamed = dir.join(".lock");
    let file = std::fs::File::create(&unnamed)?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)?;
    std::fs::rename(&unnamed, dir.join("lock"))?;
    Ok(file)
}

/// Removes the barrier directories of servers that were killed (`kill -9`, a crash) before they
/// could: those whose lock nobody holds. Others' directories, and any without a lock (being
/// made right now), are left alone.
fn remove_abandoned_barrier_dirs(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else { return };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(BARRIER_PREFIX) {
            continue;
        }
        let Ok(lock) = std::fs::File::open(entry.path().join("lock")) else { continue };
        if rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok() {
            tracing::info!(dir = %entry.path().display(), "removing the barrier directory of a server that was killed");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn watch_error(path: &Path, e: notify::Error) -> Error {
    let why = match e.kind {
        // The usual reason on a large archive, and the user can lift it.
        notify::ErrorKind::MaxFilesWatch => {
            let limit = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches").unwrap_or_default();
            format!(
                "the inotify watch limit (fs.inotify.max_user_watches = {}, shared by all of this user's \
                 programs) is reached; watch mode needs one or two watches a conversation: raise it, \
                 e.g. `sudo sysctl fs.inotify.max_user_watches=524288`",
                limit.trim()
            )
        }
        _ => e.to_string(),
    };
    Error::Io { path: path.into(), source: std::io::Error::other(format!("cannot watch: {why}")) }
}

/// Says so when `logs` is on a filesystem whose notifications report only what this machine
/// writes: writes by another machine (or by the host of a VM's shared folder) would show only
/// at the safety sweep.
fn warn_if_elsewhere_writes_unseen(logs: &Path) {
    let Some(kind) = rustix::fs::statfs(logs).ok().and_then(|s| shared_filesystem_of(&s)) else {
        return;
    };
    tracing::warn!(
        logs = %logs.display(),
        filesystem = kind,
        "notifications on this filesystem miss writes made on other machines; those show only at the \
         safety sweep. If other machines write these logs, serve without --watch"
    );
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn shared_filesystem_of(s: &rustix::fs::StatFs) -> Option<&'static str> {
    shared_filesystem(s.f_type as u32)
}

/// macOS names the kind (FSEvents, like inotify, reports only this machine's writes).
#[cfg(target_vendor = "apple")]
fn shared_filesystem_of(s: &rustix::fs::StatFs) -> Option<&'static str> {
    let name: Vec<u8> = s.f_fstypename.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    Some(match &name[..] {
        b"nfs" => "NFS",
        b"smbfs" => "SMB",
        b"afpfs" => "AFP",
        b"webdav" => "WebDAV",
        b"macfuse" | b"osxfuse" | b"fusefs" => "FUSE",
        _ => return None,
    })
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
fn shared_filesystem_of(_: &rustix::fs::StatFs) -> Option<&'static str> {
    None
}

/// The name of a filesystem kind (Linux's `statfs` magic number) that other machines can write
/// to without an inotify event here: network filesystems, FUSE, and VM shared folders.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn shared_filesystem(magic: u32) -> Option<&'static str> {
    Some(match magic {
        0x6969 => "NFS",
        0x517B | 0xFF53_4D42 | 0xFE53_4D42 => "SMB",
        0x6573_5546 => "FUSE",
        0x0102_1997 => "9p",
        0x6A65_6A63 => "virtiofs",
        0x00C3_6400 => "Ceph",
        0x5346_414F | 0x6B41_4653 => "AFS",
        0x0BD0_0BD0 => "Lustre",
        0x0116_1970 => "GFS2",
        0x7461_636F => "OCFS2",
        _ => return None,
    })
}

/// The (device, inode) of a directory, symlinks followed.
fn identity(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir).ok().map(|m| (m.dev(), m.ino()))
}

/// Watches the logs directory and every conversation in it, noting those whose files link out
/// of it; returns how many watches it added.
fn watch_archive(watcher: &mut impl Watcher, logs: &Path, marks: &mut Marks) -> Result<usize> {
    watcher.watch(logs, RecursiveMode::NonRecursive).map_err(|e| watch_error(logs, e))?;
    let mut watched = 1;
    let entries = std::fs::read_dir(logs).map_err(|source| Error::Io { path: logs.into(), source })?;
    marks.linked_out.clear();
    for entry in entries.flatten() {
        watched += watch_conversation(watcher, &entry.path())?;
        note_links(marks, logs, &entry.file_name().to_string_lossy());
    }
    Ok(watched)
}

/// Notes whether a conversation's log or `config.toml` is a symlink (to a file no watch of
/// ours covers).
fn note_links(marks: &mut Marks, logs: &Path, id: &str) {
    let dir = logs.join(id);
    let links = [gptme::LOG_FILE, "config.toml"]
        .iter()
        .any(|f| std::fs::symlink_metadata(dir.join(f)).is_ok_and(|m| m.file_type().is_symlink()));
    if links {
        marks.linked_out.insert(id.to_owned());
    } else {
        marks.linked_out.remove(id);
    }
}

/// Watches a conversation directory and its `branches/`; returns how many watches it added.
fn watch_conversation(watcher: &mut impl Watcher, dir: &Path) -> Result<usize> {
    if !dir.is_dir() {
        return Ok(0);
    }
    watcher.watch(dir, RecursiveMode::NonRecursive).map_err(|e| watch_error(dir, e))?;
    let branches = dir.join("branches");
    if branches.is_dir() {
        watcher.watch(&branches, RecursiveMode::NonRecursive).map_err(|e| watch_error(&branches, e))?;
        return Ok(2);
    }
    Ok(1)
}

type Events = std::sync::mpsc::Sender<notify::Result<notify::Event>>;

impl Shared {
    /// Sets up the first watches (without holding `marks`: requests sweep meanwhile), then lets
    /// requests rely on them: the next one sweeps, for changes made while they were set up.
    fn watch_first(&self, watcher: &mut RecommendedWatcher) -> Result<usize> {
        let mut noted = Marks::default();
        // A logs directory that does not exist yet is watched once it does: the first request
        // after it appears sees it as replaced.
        let watched = if self.logs.exists() { watch_archive(watcher, &self.logs, &mut noted) } else { Ok(0) };
        let mut marks = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        marks.linked_out.extend(noted.linked_out);
        marks.full = true;
        marks.ready = true;
        self.seen_changed.notify_all();
        watched
    }

    /// A watcher (its own inotify instance) sending to `events`, watching only our barriers.
    fn new_watcher(&self, events: &Events) -> Result<RecommendedWatcher> {
        let mut watcher = notify::recommended_watcher(events.clone()).map_err(|e| watch_error(&self.logs, e))?;
        let barriers = &self.barrier_dir;
        watcher.watch(barriers, RecursiveMode::NonRecursive).map_err(|e| watch_error(barriers, e))?;
        Ok(watcher)
    }

    /// Watches the logs directory anew with a new watcher. Dropping the old one drops every watch
    /// of the replaced directory, which may live on elsewhere (moved aside, a symlink's old
    /// target): its events would otherwise keep coming, named as if in the new one, and each
    /// replacement would hold on to another set of the user's limited inotify watches.
    fn rewatch(&self, watcher: &mut RecommendedWatcher, events: &Events) -> Result<usize> {
        *watcher = self.new_watcher(events)?;
        let mut marks = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        let watched = watch_archive(watcher, &self.logs, &mut marks);
        // A barrier written before the new watcher watched for it may have gone to the old one
        // and died with it: count every one still on disk as seen. What its request waits for,
        // this sweep covers: it starts after the new watches are in place.
        if let Ok(entries) = std::fs::read_dir(&self.barrier_dir) {
            for entry in entries.flatten() {
                if let Some(n) = entry.file_name().to_str().and_then(|n| n.parse::<u64>().ok()) {
                    marks.seen = marks.seen.max(n);
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        marks.full = true;
        self.seen_changed.notify_all();
        watched
    }

    fn handle(&self, watcher: &mut RecommendedWatcher, events: &Events, event: notify::Result<notify::Event>) {
        if self.rewatch.swap(false, Ordering::SeqCst) {
            // Before this event is handled: it may be the barrier of the request that asked.
            let now = identity(&self.logs);
            let logs = self.logs.display();
            match self.rewatch(watcher, events) {
                Ok(_) if self.blind.swap(false, Ordering::SeqCst) => {
                    tracing::warn!(%logs, "watching the logs directory again")
                }
                Ok(_) => {
                    tracing::warn!(%logs, "the logs directory was replaced; watching the new one");
                    warn_if_elsewhere_writes_unseen(&self.logs);
                }
                Err(e) if !self.blind.swap(true, Ordering::SeqCst) => {
                    tracing::warn!(%logs, error = %e, "cannot watch the logs directory; requests sweep until it can be");
                }
                Err(_) => {}
            }
            *self.watched.lock().unwrap_or_else(|p| p.into_inner()) = now;
        }
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "watch error; the next request sweeps");
                self.marks.lock().unwrap_or_else(|p| p.into_inner()).full = true;
                return;
            }
        };
        if event.need_rescan() {
            tracing::warn!("notifications overflowed; the next request sweeps");
            self.marks.lock().unwrap_or_else(|p| p.into_inner()).full = true;
        }
        // Reads (ours included) change nothing.
        if matches!(event.kind, EventKind::Access(notify::event::AccessKind::Open(_) | notify::event::AccessKind::Read))
        {
            return;
        }
        let mut marks = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        for path in &event.paths {
            if let Ok(rest) = path.strip_prefix(&self.barrier_dir) {
                if let Some(n) = rest.to_str().and_then(|n| n.parse::<u64>().ok()) {
                    if n > marks.seen {
                        marks.seen = n;
                        self.seen_changed.notify_all();
                    }
                    let _ = std::fs::remove_file(path);
                }
                continue;
            }
            if path == &self.logs {
                // The directory itself deleted or moved: its watches are gone with it, even if a
                // new one gets its inode number (ext4 reuses them at once). Watch anew at the next
                // event (the next request's barrier) and sweep.
                if matches!(event.kind, EventKind::Remove(_) | EventKind::Modify(notify::event::ModifyKind::Name(_))) {
                    self.rewatch.store(true, Ordering::SeqCst);
                    marks.full = true;
                }
                continue;
            }
            let Ok(rest) = path.strip_prefix(&self.logs) else { continue };
            let mut parts = rest.components();
            let Some(id) = parts.next().and_then(|c| c.as_os_str().to_str()) else { continue };
            marks.dirty.insert(id.to_owned());
            // A new conversation directory, or a new branches/ in one: watch it too.
            let depth = rest.components().count();
            let created =
                matches!(event.kind, EventKind::Create(_) | EventKind::Modify(notify::event::ModifyKind::Name(_)));
            if created && path.is_dir() && (depth == 1 || (depth == 2 && path.ends_with("branches"))) {
                let added = if depth == 1 {
                    watch_conversation(watcher, path).map(drop)
                } else {
                    watcher.watch(path, RecursiveMode::NonRecursive).map_err(|e| watch_error(path, e))
                };
                if let Err(e) = added {
                    // A directory gone already needs no watch (its removal is an event of its
                    // own). Any other left unwatched would go stale: every request sweeps, and
                    // tries to watch everything again, until it can be watched (a limit raised).
                    if path.is_dir() && !self.blind.swap(true, Ordering::SeqCst) {
                        tracing::warn!(error = %e, "cannot watch a new directory; requests sweep until it can be");
                    }
                    marks.full = true;
                }
            }
            // After watching a new directory: a symlink made in it before the watch sent no event.
            note_links(&mut marks, &self.logs, id);
        }
    }

    /// Waits until every notification queued before this call has been handled.
    fn barrier(&self) -> std::result::Result<(), &'static str> {
        let n = self.next_barrier.fetch_add(1, Ordering::Relaxed);
        std::fs::write(self.barrier_dir.join(n.to_string()), b"").map_err(|_| "cannot write the barrier file")?;
        let marks = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        let (_marks, timeout) = self
            .seen_changed
            .wait_timeout_while(marks, BARRIER_TIMEOUT, |m| m.seen < n)
            .unwrap_or_else(|p| p.into_inner());
        if timeout.timed_out() {
            return Err("no barrier event within 2 s");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_barrier_directories_nobody_holds_are_removed() {
        let temp = tempfile::tempdir().unwrap();
        let dir = |name: &str| {
            let d = temp.path().join(name);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("7"), b"").unwrap();
            d
        };
        let killed = dir("convmeta-watch-1-0");
        std::fs::write(killed.join("lock"), b"").unwrap();
        let alive = dir("convmeta-watch-2-0");
        let _held = hold_barrier_lock(&alive).unwrap();
        let starting = dir("convmeta-watch-3-0");
        let other = dir("someone-else");
        std::fs::write(other.join("lock"), b"").unwrap();
        remove_abandoned_barrier_dirs(temp.path());
        assert!(!killed.exists());
        assert!(alive.join("lock").exists() && starting.exists() && other.exists());
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn shared_filesystems_are_told_from_local_ones() {
        let magic = |p: &str| rustix::fs::statfs(p).unwrap().f_type as u32;
        assert_eq!(shared_filesystem(magic("/proc")), None);
        assert_eq!(shared_filesystem(magic("/dev")), None); // devtmpfs or tmpfs
        assert_eq!(shared_filesystem(0x6969), Some("NFS"));
        assert_eq!(shared_filesystem(0xFF53_4D42), Some("SMB"));
        assert_eq!(shared_filesystem(0x0102_1997), Some("9p")); // WSL 2's Windows drives
    }
}
