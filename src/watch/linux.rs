//! Watch mode on Linux: inotify marks what changed, requests refresh just that.

use std::collections::HashSet;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SendError;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustix::event::{eventfd, poll, EventfdFlags, PollFd, PollFlags};
use rustix::fs::inotify::ReadFlags;
use rustix::fs::{AtFlags, FileType};

use super::inotify::{Event, Inotify, Watched};
use crate::error::{Error, Result};
use crate::format::gptme;
use crate::refresh::{self, Stats};
use crate::Index;

/// How long [`Watch::start`] waits for the first watches: a small archive is watched from the
/// first request on; a large one is served (by sweeps) while its watches are set up.
const SETUP_WAIT: Duration = Duration::from_millis(200);

/// How often requests try to watch everything anew while they cannot rely on the watches (for
/// example at the inotify watch limit, until it is raised): each try sets up every watch.
const REWATCH_EVERY: Duration = Duration::from_secs(10);

/// What the events say changed, and the watches they come from.
#[derive(Default)]
struct State {
    /// None until the first watches are set up, and while they cannot be (`blind`).
    inotify: Option<Inotify>,
    /// The first watches are all in place. Until then requests sweep (see [`Watch::start`]).
    ready: bool,
    /// The logs directory's (device, inode) when its watches were set up. A different one (the
    /// directory replaced, a symlink re-pointed) has none: watch it anew and sweep.
    identity: Option<(u64, u64)>,
    dirty: HashSet<String>,
    /// Events were lost (the queue overflowed, a watch failed): sweep everything.
    full: bool,
    /// Conversations whose directory or files link out of the archive (see [`links_out`]):
    /// every request checks them.
    linked_out: HashSet<String>,
    /// The logs directory itself was deleted or moved: its watches went with it.
    rewatch: bool,
    /// Since when the watches cannot be relied on (one could not be set up, the events could not
    /// be read): requests sweep, and try to watch everything anew every [`REWATCH_EVERY`].
    blind: Option<Instant>,
}

struct Shared {
    logs: PathBuf,
    state: Mutex<State>,
    ready_changed: Condvar,
    /// Wakes the watch thread: to stop, or to wait on a new inotify instance.
    wake: OwnedFd,
    stopped: AtomicBool,
}

pub struct Watch {
    shared: Arc<Shared>,
}

impl Watch {
    /// Starts watching `logs` (each conversation directory and its `branches/`), and sweeps
    /// everything every `safety_sweep` in case a change was missed. A large archive's watches
    /// take a while to set up (a second for 100,000 conversations), so this waits for them at
    /// most `SETUP_WAIT`, and requests sweep until they are all in place; the first request
    /// after sweeps once more, for what changed meanwhile. Fails when the watches cannot be set
    /// up within that wait (for example at the inotify watch limit); the caller then sweeps
    /// instead. If they fail later, requests sweep and try again, as when a new directory
    /// cannot be watched.
    pub fn start(index: Arc<Index>, safety_sweep: Duration) -> Result<Watch> {
        Self::start_waiting(index, safety_sweep, SETUP_WAIT)
    }

    /// [`Watch::start`], waiting `setup_wait` for the first watches.
    pub fn start_waiting(index: Arc<Index>, safety_sweep: Duration, setup_wait: Duration) -> Result<Watch> {
        let logs = index.logs().to_path_buf();
        let io = |source: std::io::Error| Error::Io { path: logs.clone(), source };
        let wake = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).map_err(|e| io(e.into()))?;
        let shared = Arc::new(Shared {
            logs: logs.clone(),
            state: Mutex::default(),
            ready_changed: Condvar::new(),
            wake,
            stopped: AtomicBool::new(false),
        });
        // Dropped on any early return below: it stops the watch thread.
        let watch = Watch { shared: shared.clone() };
        warn_if_elsewhere_writes_unseen(&logs);

        let events = shared.clone();
        // A rendezvous: the outcome reaches `start` while it waits, or fails to send after.
        let (set_up_tx, set_up) = std::sync::mpsc::sync_channel(0);
        std::thread::Builder::new()
            .name("convmeta-watch".into())
            .spawn(move || {
                let watched = events.watch_first();
                let failed = watched.is_err();
                match set_up_tx.send(watched) {
                    Ok(()) if failed => return, // `start` fails with the error
                    Ok(()) => {}
                    // `start` has returned: tell here.
                    Err(SendError(Ok(watches))) => tracing::info!(watches, "watching the archive for changes"),
                    Err(SendError(Err(e))) => {
                        tracing::warn!(error = %e, "cannot watch the archive; requests sweep until it can be");
                        events.lock().blind = Some(Instant::now());
                    }
                }
                events.follow();
            })
            .map_err(io)?;
        match set_up.recv_timeout(setup_wait) {
            Ok(watches) => tracing::info!(watches = watches?, "watching the archive for changes"),
            Err(_) => tracing::info!("watching the archive: setting up its watches; requests sweep until then"),
        }
        // A failure after this is the watch thread's to tell.
        drop(set_up);
        // Weak: while it sleeps, the sweeper must not keep the index (and its database) or the
        // watches open after the server.
        let (index, sweeper) = (Arc::downgrade(&index), Arc::downgrade(&shared));
        std::thread::Builder::new()
            .name("convmeta-safety-sweep".into())
            .spawn(move || loop {
                std::thread::sleep(safety_sweep);
                let watching = sweeper.upgrade().is_some_and(|s| !s.stopped.load(Ordering::Relaxed));
                let Some(index) = index.upgrade().filter(|_| watching) else { break };
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
        let state = self.shared.lock();
        let wait = self.shared.ready_changed.wait_timeout_while(state, timeout, |s| !s.ready);
        wait.unwrap_or_else(|p| p.into_inner()).0.ready
    }

    /// Refreshes what changed since the last call, sharing the index's single flight: the
    /// conversations marked dirty, or everything if events were lost.
    pub fn freshen(&self, index: &Index) -> Result<Option<Arc<Stats>>> {
        let s = &self.shared;
        let stats = index.refresh_via(|| {
            let (dirty, full, linked) = s.changes();
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
                let mut state = s.lock();
                state.dirty.extend(dirty);
                state.full |= full;
            }
            result
        })?;
        Ok((*stats != Stats::default()).then_some(stats))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::Relaxed);
        self.shared.wake();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wake(&self) {
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }

    /// Sets up the first watches (without holding `state`: requests sweep meanwhile), then lets
    /// requests rely on them: the next one sweeps, for changes made while they were set up.
    /// Returns how many watches there are.
    fn watch_first(&self) -> Result<usize> {
        let now = identity(&self.logs);
        // A logs directory that does not exist yet is watched once it does: the first request
        // after it appears finds it replaced.
        let watched = match now {
            Some(_) => watch_archive(&self.logs).map(Some),
            None => Ok(None),
        };
        let mut state = self.lock();
        state.identity = now;
        state.full = true;
        state.ready = true;
        self.ready_changed.notify_all();
        let Some((inotify, linked_out)) = watched? else { return Ok(0) };
        let watches = inotify.len();
        state.inotify = Some(inotify);
        state.linked_out = linked_out;
        Ok(watches)
    }

    /// Reads the events as they come, so the kernel's queue does not overflow between requests,
    /// until the watch is dropped.
    fn follow(&self) {
        loop {
            let inotify = self.lock().inotify.as_ref().map(Inotify::fd);
            let mut fds = vec![PollFd::new(&self.wake, PollFlags::IN)];
            fds.extend(inotify.as_deref().map(|fd| PollFd::new(fd, PollFlags::IN)));
            match poll(&mut fds, None) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    // Requests still read the queue themselves; at worst it overflows and
                    // the next request sweeps.
                    tracing::warn!(error = %e, "cannot wait for file events; reading them only when asked");
                    return;
                }
            }
            if self.stopped.load(Ordering::Relaxed) {
                return;
            }
            let mut count = [0; 8];
            let _ = rustix::io::read(&self.wake, &mut count);
            self.lock().take_events(&self.logs);
        }
    }

    /// What changed since the last call: the conversations marked, or everything (`full`); and
    /// those whose files link out of the archive, which every request checks.
    fn changes(&self) -> (HashSet<String>, bool, HashSet<String>) {
        let mut state = self.lock();
        if !state.ready {
            return (HashSet::new(), true, HashSet::new());
        }
        // Every change completed before this call is in the queue by now.
        state.take_events(&self.logs);
        let now = identity(&self.logs);
        let retry = state.blind.is_some_and(|since| since.elapsed() >= REWATCH_EVERY);
        if state.rewatch || retry || now != state.identity {
            self.rewatch(&mut state, now);
        }
        state.full |= state.blind.is_some();
        (std::mem::take(&mut state.dirty), std::mem::take(&mut state.full), state.linked_out.clone())
    }

    /// Watches the logs directory anew with a new inotify instance, and sweeps. Closing the old
    /// one drops every watch of the replaced directory, which may live on elsewhere (moved aside,
    /// a symlink's old target): its events would otherwise keep coming, named as if in the new
    /// one, and each replacement would hold on to another set of the user's limited watches.
    fn rewatch(&self, state: &mut State, now: Option<(u64, u64)>) {
        let was_blind = state.blind.is_some();
        let logs = self.logs.display();
        let watched = watch_archive(&self.logs);
        state.blind = watched.is_err().then(Instant::now);
        match watched {
            Ok((inotify, linked_out)) => {
                state.inotify = Some(inotify);
                state.linked_out = linked_out;
                if was_blind {
                    tracing::warn!(%logs, "watching the logs directory again");
                } else {
                    // Made since the start, which said it was not there yet: as expected.
                    match state.identity {
                        None => tracing::info!(%logs, "the logs directory is there now; watching it"),
                        Some(_) => tracing::warn!(%logs, "the logs directory was replaced; watching the new one"),
                    }
                    warn_if_elsewhere_writes_unseen(&self.logs);
                }
            }
            Err(e) => {
                state.inotify = None;
                if !was_blind {
                    tracing::warn!(%logs, error = %e, "cannot watch the logs directory; requests sweep until it can be");
                }
            }
        }
        // The watch thread waits on the old instance: wake it, so it lets go of it.
        self.wake();
        state.identity = now;
        state.rewatch = false;
        state.full = true;
    }
}

impl State {
    /// Marks what the queued events say changed.
    fn take_events(&mut self, logs: &Path) {
        let Some(inotify) = self.inotify.as_mut() else { return };
        let mut events = Vec::new();
        if let Err(e) = inotify.read(&mut events) {
            // Its events are lost, and an error that stays would have the watch thread spin:
            // drop the instance, and watch anew as when a watch cannot be set up.
            tracing::warn!(error = %e, "cannot read file events; requests sweep and watch anew");
            self.inotify = None;
            self.blind.get_or_insert_with(Instant::now);
            self.full = true;
        }
        for event in events {
            self.mark(logs, event);
        }
    }

    /// Marks what one event says changed, watching the directories it made.
    fn mark(&mut self, logs: &Path, event: Event) {
        let Some(on) = event.on else {
            tracing::warn!("file events overflowed; the next request sweeps");
            self.full = true;
            return;
        };
        let mask = event.mask;
        let made = mask.intersects(ReadFlags::CREATE | ReadFlags::MOVED_TO);
        let came_or_went = made || mask.intersects(ReadFlags::DELETE | ReadFlags::MOVED_FROM);
        let (id, watched, relink) = match on {
            Watched::Logs => {
                if mask
                    .intersects(ReadFlags::DELETE_SELF | ReadFlags::MOVE_SELF | ReadFlags::IGNORED | ReadFlags::UNMOUNT)
                {
                    // The directory itself deleted or moved: its watches are gone with it, even if
                    // a new one gets its inode number (ext4 reuses them at once).
                    self.rewatch = true;
                    self.full = true;
                    return;
                }
                let Some(id) = event.name else { return };
                // The name now stands for something else, or nothing: what its watches are on (a
                // directory moved out of the archive, a symlink's old target) is no longer this
                // conversation, and what is there now is watched anew (below).
                if let Some(inotify) = self.inotify.as_mut().filter(|_| came_or_went) {
                    inotify.unwatch(&id, |_| true);
                }
                // A new conversation: watched before anything reads it. So is one whose
                // permissions changed: it may have been one this user could not read.
                // (Whatever was made: a symlink to a directory is a conversation too, and not
                // flagged as a directory; watching a file fails, costing one system call.)
                let watchable = made || mask.contains(ReadFlags::ATTRIB);
                let watched = if watchable { self.watch(|i| watch_conversation(i, logs, &id)) } else { Ok(()) };
                (id, watched, came_or_went)
            }
            Watched::Conversation(id) => {
                let name = event.name.as_deref();
                // Likewise for a `branches/` or a log that came or went (the old one moved away,
                // a symlink re-pointed, a hard-linked log replaced).
                let old: Option<fn(&Watched) -> bool> = match name {
                    Some("branches") => Some(|w| matches!(w, Watched::Branches(_))),
                    Some(gptme::LOG_FILE) => Some(|w| matches!(w, Watched::Log(_))),
                    _ => None,
                };
                if let (Some(old), Some(inotify)) = (old.filter(|_| came_or_went), self.inotify.as_mut()) {
                    inotify.unwatch(&id, old);
                }
                let watched = if made && name == Some("branches") {
                    let branches = logs.join(&id).join("branches");
                    self.watch(|i| i.watch(&branches, Watched::Branches(id.clone())).map(drop))
                } else if name == Some(gptme::LOG_FILE) && !mask.intersects(ReadFlags::DELETE | ReadFlags::MOVED_FROM) {
                    // A new or changed log may have got another name since it was last looked
                    // at (a link made elsewhere sends this directory no event of its own).
                    self.watch(|i| watch_log_if_linked(i, &logs.join(&id), &id))
                } else {
                    Ok(())
                };
                (id, watched, came_or_went && name.is_some_and(|n| LINKABLE.contains(&n)))
            }
            Watched::Branches(id) | Watched::Log(id) => (id, Ok(()), false),
        };
        if let Err(e) = watched {
            // Left unwatched, it would go stale: requests sweep, and try to watch everything
            // again, until it can be watched (a limit raised).
            if self.blind.is_none() {
                tracing::warn!(error = %e, "cannot watch a new directory; requests sweep until it can be");
            }
            self.blind.get_or_insert_with(Instant::now);
            self.full = true;
        }
        // After watching a new directory: a symlink made in it before the watch sent no event.
        if relink && refresh::open_for_lookups(logs).is_ok_and(|d| links_out(d.as_fd(), &id)) {
            self.linked_out.insert(id.clone());
        } else if relink {
            self.linked_out.remove(&id);
        }
        self.dirty.insert(id);
    }

    fn watch(&mut self, add: impl FnOnce(&mut Inotify) -> Result<()>) -> Result<()> {
        self.inotify.as_mut().map_or(Ok(()), add)
    }
}

/// Watches the logs directory and every conversation in it, in a new inotify instance; also
/// returns the conversations whose files link out of it.
fn watch_archive(logs: &Path) -> Result<(Inotify, HashSet<String>)> {
    let io = |source| Error::Io { path: logs.into(), source };
    let mut inotify = Inotify::new().map_err(io)?;
    if !inotify.watch(logs, Watched::Logs)? {
        return Err(io(std::io::ErrorKind::NotFound.into()));
    }
    let mut linked_out = HashSet::new();
    let logs_dir = refresh::open_for_lookups(logs).map_err(io)?;
    for id in gptme::list_entries(logs).map_err(io)? {
        watch_conversation(&mut inotify, logs, &id)?;
        if links_out(logs_dir.as_fd(), &id) {
            linked_out.insert(id);
        }
    }
    Ok((inotify, linked_out))
}

/// Watches a conversation directory and its `branches/`, those there are, and its log if it
/// has other names.
fn watch_conversation(inotify: &mut Inotify, logs: &Path, id: &str) -> Result<()> {
    let dir = logs.join(id);
    if inotify.watch(&dir, Watched::Conversation(id.into()))? {
        inotify.watch(&dir.join("branches"), Watched::Branches(id.into()))?;
        watch_log_if_linked(inotify, &dir, id)?;
    }
    Ok(())
}

/// Watches the log itself when it has other names (hard links): written through one outside
/// this directory, it sends the directory's watch no event. (A symlinked log is checked on every
/// request instead: see [`links_out`].)
fn watch_log_if_linked(inotify: &mut Inotify, dir: &Path, id: &str) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let log = dir.join(gptme::LOG_FILE);
    if std::fs::symlink_metadata(&log).is_ok_and(|m| m.is_file() && m.nlink() > 1) {
        inotify.watch(&log, Watched::Log(id.into()))?;
    }
    Ok(())
}

/// Whether a conversation's directory, log, `config.toml` or `branches/` is a symlink. Its
/// target can then go, or be replaced, with no event in the archive: no watch of ours names it
/// (a watch follows the link once, to the directory there at the time). Looked up through the
/// logs directory `logs_dir` (see [`refresh::open_for_lookups`]).
fn links_out(logs_dir: BorrowedFd<'_>, id: &str) -> bool {
    let is_link = |path: &str| {
        rustix::fs::statat(logs_dir, path, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Symlink)
    };
    is_link(id) || LINKABLE.iter().any(|f| is_link(&format!("{id}/{f}")))
}

/// The entries of a conversation directory that may be symlinks to elsewhere.
const LINKABLE: [&str; 3] = [gptme::LOG_FILE, "config.toml", "branches"];

/// The (device, inode) of a directory, symlinks followed.
fn identity(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir).ok().map(|m| (m.dev(), m.ino()))
}

/// Says so when `logs` is on a filesystem whose notifications report only what this machine
/// writes: writes by another machine (or by the host of a VM's shared folder) would show only
/// at the safety sweep.
fn warn_if_elsewhere_writes_unseen(logs: &Path) {
    let Some(kind) = crate::filesystem::shared(logs) else { return };
    tracing::warn!(
        logs = %logs.display(),
        filesystem = kind,
        "notifications on this filesystem miss writes made on other machines; those show only at the \
         safety sweep. If other machines write these logs, serve without --watch"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A conversation moved out of the archive takes no watch with it, nor does one that is a
    /// symlink re-pointed or deleted; one renamed in it keeps being watched under its new name.
    #[test]
    fn conversations_gone_from_the_archive_are_unwatched_and_renamed_ones_stay_watched() {
        let tmp = tempfile::tempdir().unwrap();
        let (logs, out) = (tmp.path().join("logs"), tmp.path().join("out"));
        let line = "{\"role\": \"user\", \"content\": \"hi\", \"timestamp\": \"2026-01-01T10:00:00\"}\n";
        let append = |log: PathBuf| {
            use std::io::Write;
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(log)
                .unwrap()
                .write_all(line.as_bytes())
                .unwrap();
        };
        for id in ["a", "b"] {
            std::fs::create_dir_all(logs.join(id).join("branches")).unwrap();
            append(logs.join(id).join(gptme::LOG_FILE));
        }
        std::fs::create_dir(&out).unwrap();
        let index = Arc::new(Index::open(&logs, &tmp.path().join("db.sqlite3")).unwrap());
        let watch = Watch::start(index.clone(), Duration::from_secs(300)).unwrap();
        assert!(watch.wait_watching(Duration::from_secs(10)));
        watch.freshen(&index).unwrap();
        let watches = || watch.shared.lock().inotify.as_ref().map(Inotify::len);
        assert_eq!(watches(), Some(5), "the logs directory, and each conversation's and its branches/");

        std::fs::rename(logs.join("a"), out.join("a")).unwrap();
        std::fs::rename(logs.join("b"), logs.join("c")).unwrap();
        watch.freshen(&index).unwrap();
        assert_eq!(watches(), Some(3));
        append(out.join("a").join(gptme::LOG_FILE));
        append(logs.join("c").join(gptme::LOG_FILE));
        let (dirty, full, _) = watch.shared.changes();
        assert_eq!((dirty, full), (HashSet::from(["c".to_string()]), false));

        // A conversation that is a symlink: its watches are on the target, and go when the link
        // is re-pointed (a new link renamed over it, as `ln -sfn` does) or deleted.
        for target in ["t1", "t2"] {
            std::fs::create_dir(out.join(target)).unwrap();
            append(out.join(target).join(gptme::LOG_FILE));
        }
        std::os::unix::fs::symlink(out.join("t1"), logs.join("d")).unwrap();
        watch.freshen(&index).unwrap();
        assert_eq!(watches(), Some(4));
        std::os::unix::fs::symlink(out.join("t2"), logs.join("d.new")).unwrap();
        std::fs::rename(logs.join("d.new"), logs.join("d")).unwrap();
        watch.freshen(&index).unwrap();
        assert_eq!(watches(), Some(4), "t2's, not t1's as well");
        append(out.join("t1").join(gptme::LOG_FILE));
        assert!(watch.shared.changes().0.is_empty());
        append(out.join("t2").join(gptme::LOG_FILE));
        assert_eq!(watch.shared.changes().0, HashSet::from(["d".to_string()]));
        std::fs::remove_file(logs.join("d")).unwrap();
        watch.freshen(&index).unwrap();
        assert_eq!(watches(), Some(3));

        // Within a conversation: its `branches/` moved away, then made anew; its log hard-linked
        // elsewhere (so watched itself), then replaced as gptme's edit does.
        std::fs::rename(logs.join("c/branches"), out.join("old-branches")).unwrap();
        watch.freshen(&index).unwrap();
        assert_eq!(watches(), Some(2));
        std::fs::write(out.join("old-branches/x.jsonl"), line).unwrap();
        assert!(watch.shared.changes().0.is_empty());
        std::fs::create_dir(logs.join("c/branches")).unwrap();
        watch.freshen(&index).unwrap();
        assert_eq!(watches(), Some(3));
        std::fs::hard_link(logs.join("c").join(gptme::LOG_FILE), out.join("link.jsonl")).unwrap();
        append(logs.join("c").join(gptme::LOG_FILE));
        watch.freshen(&index).unwrap();
        assert_eq!(watches(), Some(4), "the linked log too");
        std::fs::write(logs.join("c/new.jsonl"), line).unwrap();
        std::fs::rename(logs.join("c/new.jsonl"), logs.join("c").join(gptme::LOG_FILE)).unwrap();
        watch.freshen(&index).unwrap();
        assert_eq!(watches(), Some(3));
        append(out.join("link.jsonl"));
        assert!(watch.shared.changes().0.is_empty());
    }
}
