//! The kernel's side of watch mode: one inotify instance, what each of its watches is on, and
//! reading its queue without blocking.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;

use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};

/// What a watch is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Watched {
    /// The logs directory: conversations made, deleted, renamed; the directory itself going.
    Logs,
    /// A conversation's directory: its log, `config.toml`, `branches/`.
    Conversation(String),
    /// A conversation's `branches/`.
    Branches(String),
    /// A conversation's log that has other names (hard links), through which it can be written
    /// with no event in its directory.
    Log(String),
}

impl Watched {
    /// The conversation the watch is for; None for the logs directory.
    fn id(&self) -> Option<&str> {
        match self {
            Watched::Logs => None,
            Watched::Conversation(id) | Watched::Branches(id) | Watched::Log(id) => Some(id),
        }
    }
}

/// One event of a watch still in place, or the queue's overflow (`on` None).
#[derive(Debug)]
pub(super) struct Event {
    pub on: Option<Watched>,
    pub mask: ReadFlags,
    /// The entry the event is about, within the watched directory; None for the directory
    /// itself and for names that are not UTF-8 (never a conversation id).
    pub name: Option<String>,
}

/// Changes that can alter a listed field. Reads and closes are left out: our own reads would
/// otherwise wake us.
fn mask(on: &Watched) -> WatchFlags {
    let entries = WatchFlags::MODIFY
        | WatchFlags::ATTRIB
        | WatchFlags::CREATE
        | WatchFlags::DELETE
        | WatchFlags::MOVED_FROM
        | WatchFlags::MOVED_TO
        // Fails, instead of watching a file, when a directory was replaced by one meanwhile.
        | WatchFlags::ONLYDIR;
    match on {
        Watched::Logs => entries | WatchFlags::DELETE_SELF | WatchFlags::MOVE_SELF,
        Watched::Log(_) => WatchFlags::MODIFY | WatchFlags::ATTRIB,
        _ => entries,
    }
}

pub(super) struct Inotify {
    /// Shared with the thread that waits on it, so replacing the instance does not close it
    /// under that thread.
    fd: Arc<OwnedFd>,
    watched: HashMap<i32, Watched>,
    /// The watches of each conversation, to drop them together.
    of: HashMap<String, Vec<i32>>,
}

impl Inotify {
    pub fn new() -> std::io::Result<Inotify> {
        let fd = inotify::init(CreateFlags::NONBLOCK | CreateFlags::CLOEXEC)?;
        Ok(Inotify { fd: Arc::new(fd), watched: HashMap::new(), of: HashMap::new() })
    }

    pub fn fd(&self) -> Arc<OwnedFd> {
        self.fd.clone()
    }

    /// How many watches are in place.
    pub fn len(&self) -> usize {
        self.watched.len()
    }

    /// Watches the directory `dir` (following symlinks); false if there is none (missing, gone
    /// meanwhile, not a directory, or a symlink loop, which no sweep lists either and whose
    /// mending is a change of a symlink the logs directory's watch or every request's check of
    /// symlinked conversations sees), or, inside the logs directory, none this user may read
    /// (nor list: a chmod or chown that lets it in is an event of the logs directory's watch).
    /// Watching one already watched (a conversation renamed) renames its watch.
    pub fn watch(&mut self, dir: &Path, on: Watched) -> Result<bool> {
        match inotify::add_watch(&*self.fd, dir, mask(&on)) {
            Ok(wd) => {
                let id = on.id().map(str::to_owned);
                if let Some(before) = self.watched.insert(wd, on) {
                    self.forget(wd, &before);
                }
                if let Some(id) = id {
                    self.of.entry(id).or_default().push(wd);
                }
                Ok(true)
            }
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => Ok(false),
            Err(Errno::ACCESS) if !matches!(on, Watched::Logs) => Ok(false),
            Err(e) => Err(watch_error(dir, e)),
        }
    }

    /// Drops those watches of the conversation `id` (its directory, `branches/`, log) `which`
    /// picks. For what left the archive (a conversation moved out, a symlink's old target, a
    /// `branches/` moved away): a watch follows its directory, and would otherwise hold on to
    /// one of the user's limited watches, waking us for changes that are not ours.
    pub fn unwatch(&mut self, id: &str, which: impl Fn(&Watched) -> bool) {
        let Some(wds) = self.of.get_mut(id) else { return };
        wds.retain(|wd| {
            let keep = !self.watched.get(wd).is_some_and(&which);
            if !keep {
                self.watched.remove(wd);
                // Gone already (deleted meanwhile) is as good.
                let _ = inotify::remove_watch(&*self.fd, *wd);
            }
            keep
        });
        if wds.is_empty() {
            self.of.remove(id);
        }
    }

    /// Takes the watch `wd` off the list of what it was on (the kernel has dropped it, or it is
    /// on something else now: a directory renamed, watched under its new name).
    fn forget(&mut self, wd: i32, on: &Watched) {
        let Some(id) = on.id() else { return };
        if let Some(wds) = self.of.get_mut(id) {
            wds.retain(|&w| w != wd);
            if wds.is_empty() {
                self.of.remove(id);
            }
        }
    }

    /// Moves every queued event into `out`, without blocking. Events of watches removed since
    /// they were queued are dropped.
    pub fn read(&mut self, out: &mut Vec<Event>) -> std::io::Result<()> {
        let mut buf = [MaybeUninit::<u8>::uninit(); 16 * 1024];
        let fd = self.fd.clone();
        let mut reader = inotify::Reader::new(&*fd, &mut buf);
        loop {
            let event = match reader.next() {
                Ok(event) => event,
                Err(Errno::AGAIN) => return Ok(()),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            };
            let mask = event.events();
            let name = event.file_name().and_then(|n| n.to_str().ok()).filter(|n| !n.is_empty()).map(str::to_owned);
            if mask.contains(ReadFlags::QUEUE_OVERFLOW) {
                out.push(Event { on: None, mask, name: None });
                continue;
            }
            let wd = event.wd();
            let on = if mask.contains(ReadFlags::IGNORED) {
                // The watch is gone (its directory deleted, or replaced by ours).
                let on = self.watched.remove(&wd);
                if let Some(on) = &on {
                    self.forget(wd, on);
                }
                on
            } else {
                self.watched.get(&wd).cloned()
            };
            if let Some(on) = on {
                out.push(Event { on: Some(on), mask, name });
            }
        }
    }
}

fn watch_error(dir: &Path, e: Errno) -> Error {
    let why = if e == Errno::NOSPC {
        // The usual reason on a large archive, and the user can lift it.
        let limit = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches").unwrap_or_default();
        format!(
            "the inotify watch limit (fs.inotify.max_user_watches = {}, shared by all of this user's \
             programs) is reached; watch mode needs one or two watches a conversation: raise it, \
             e.g. `sudo sysctl fs.inotify.max_user_watches=524288`",
            limit.trim()
        )
    } else {
        std::io::Error::from(e).to_string()
    };
    Error::Io { path: dir.into(), source: std::io::Error::other(format!("cannot watch: {why}")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(events: &[Event]) -> Vec<(Option<Watched>, Option<String>)> {
        events.iter().map(|e| (e.on.clone(), e.name.clone())).collect()
    }

    /// The kernel queues an event within the system call that makes the change: once `write`
    /// returns, a read of the queue that does not block has it. Freshness rests on this.
    #[test]
    fn a_change_is_queued_by_the_time_its_call_returns() {
        let dir = tempfile::tempdir().unwrap();
        let conv = dir.path().join("c");
        std::fs::create_dir(&conv).unwrap();
        let mut inotify = Inotify::new().unwrap();
        inotify.watch(dir.path(), Watched::Logs).unwrap();
        inotify.watch(&conv, Watched::Conversation("c".into())).unwrap();
        let mut events = Vec::new();
        for n in 0..200 {
            let file = if n % 2 == 0 { "conversation.jsonl" } else { "config.toml" };
            std::fs::write(conv.join(file), n.to_string()).unwrap();
            events.clear();
            inotify.read(&mut events).unwrap();
            assert!(
                names(&events).contains(&(Some(Watched::Conversation("c".into())), Some(file.into()))),
                "{n}: {events:?}"
            );
        }
        // Reading is not a change.
        std::fs::read(conv.join("config.toml")).unwrap();
        events.clear();
        inotify.read(&mut events).unwrap();
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn a_renamed_directory_keeps_its_watch_under_its_new_name_and_a_deleted_one_drops_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        let mut inotify = Inotify::new().unwrap();
        inotify.watch(dir.path(), Watched::Logs).unwrap();
        inotify.watch(&dir.path().join("a"), Watched::Conversation("a".into())).unwrap();
        std::fs::rename(dir.path().join("a"), dir.path().join("b")).unwrap();
        inotify.watch(&dir.path().join("b"), Watched::Conversation("b".into())).unwrap();
        assert_eq!(inotify.len(), 2, "the same directory, the same watch");
        let mut events = Vec::new();
        inotify.read(&mut events).unwrap();
        std::fs::write(dir.path().join("b/x"), "").unwrap();
        events.clear();
        inotify.read(&mut events).unwrap();
        assert_eq!(names(&events), [(Some(Watched::Conversation("b".into())), Some("x".into()))]);
        std::fs::remove_dir_all(dir.path().join("b")).unwrap();
        events.clear();
        inotify.read(&mut events).unwrap();
        assert_eq!(inotify.len(), 1, "{events:?}");
        assert!(names(&events).contains(&(Some(Watched::Logs), Some("b".into()))));
    }

    /// Watches follow a directory moved out of the archive: dropped by its last name, they stop
    /// holding the user's limited watches and reporting changes that are not the archive's.
    #[test]
    fn a_conversation_moved_out_is_unwatched_by_its_last_name() {
        let dir = tempfile::tempdir().unwrap();
        let (logs, out) = (dir.path().join("logs"), dir.path().join("out"));
        std::fs::create_dir_all(logs.join("a/branches")).unwrap();
        std::fs::create_dir(&out).unwrap();
        let mut inotify = Inotify::new().unwrap();
        inotify.watch(&logs, Watched::Logs).unwrap();
        let watch = |inotify: &mut Inotify, id: &str| {
            inotify.watch(&logs.join(id), Watched::Conversation(id.into())).unwrap();
            inotify.watch(&logs.join(id).join("branches"), Watched::Branches(id.into())).unwrap();
        };
        watch(&mut inotify, "a");
        std::fs::rename(logs.join("a"), logs.join("b")).unwrap();
        watch(&mut inotify, "b");
        inotify.unwatch("a", |_| true);
        assert_eq!(inotify.len(), 3, "renamed, the watches are b's");
        std::fs::rename(logs.join("b"), out.join("b")).unwrap();
        inotify.unwatch("b", |_| true);
        assert_eq!(inotify.len(), 1);
        let mut events = Vec::new();
        inotify.read(&mut events).unwrap();
        events.clear();
        std::fs::write(out.join("b/branches/x"), "").unwrap();
        inotify.read(&mut events).unwrap();
        assert!(events.is_empty(), "{events:?}");
        // Deleted, its watches are the kernel's to drop; nothing is left to unwatch.
        std::fs::create_dir(logs.join("c")).unwrap();
        watch(&mut inotify, "c");
        std::fs::remove_dir_all(logs.join("c")).unwrap();
        inotify.read(&mut events).unwrap();
        assert!(inotify.of.is_empty(), "{:?}", inotify.of);
        inotify.unwatch("c", |_| true);
        assert_eq!(inotify.len(), 1);
    }

    #[test]
    fn a_file_or_a_missing_directory_is_not_watched() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "").unwrap();
        let mut inotify = Inotify::new().unwrap();
        assert!(!inotify.watch(&dir.path().join("f"), Watched::Logs).unwrap());
        assert!(!inotify.watch(&dir.path().join("missing"), Watched::Logs).unwrap());
        assert_eq!(inotify.len(), 0);
        assert!(inotify.watch(dir.path(), Watched::Logs).unwrap());
        assert_eq!(inotify.len(), 1);
    }
}
