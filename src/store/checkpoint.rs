//! WAL checkpoints on a thread of their own, so that no refresh waits for one.
//!
//! SQLite's automatic checkpoint runs inside the commit that takes the log past its threshold:
//! that commit copies the log into the database file and waits for two fsyncs, milliseconds
//! where an append's whole refresh takes a tenth of one. Our connections replace it with a hook
//! that only notes the log's length; after committing, the writer wakes this thread when the
//! log is long, and the thread checkpoints without blocking readers or writers (`PASSIVE`).
//!
//! SQLite rewinds the log to its start only at a write that begins while the whole log is
//! checkpointed. Under a steady stream of writes (a backfill, a burst of appends) the next write
//! begins before a checkpoint on another thread finishes, again and again, and the log would grow
//! without end; so past four times the threshold the committing connection checkpoints itself,
//! as SQLite's own hook would, and its next write rewinds the log.

use std::cell::Cell;
use std::os::raw::c_int;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Mutex;
use std::thread::JoinHandle;

use rusqlite::hooks::Wal;
use rusqlite::{Connection, OpenFlags};

/// SQLite's own default threshold, in pages (4 MiB at the default page size).
pub const CHECKPOINT_AT_PAGES: i32 = 1000;

/// Where a commit checkpoints in place: the bound on the log under a steady stream of writes.
pub const INLINE_CHECKPOINT_AT_PAGES: i32 = 4 * CHECKPOINT_AT_PAGES;

/// The log's file is cut back to this length (the bound above, at the default page size) when
/// SQLite rewinds it. One large transaction (every row rewritten as a time zone is adopted)
/// grows the file to the size of what it wrote, and SQLite would keep it that long for as long
/// as the database stays open: a server's index took up to twice its size on disk.
pub const KEEP_LOG_BYTES: i64 = INLINE_CHECKPOINT_AT_PAGES as i64 * 4096;

thread_local! {
    /// Pages in the log before and after the last commit on this thread, as the WAL hook
    /// reported them. Per thread, not per database: a thread writing two databases may ask for
    /// a checkpoint once too often or too rarely, which the next threshold crossed corrects.
    static LOG_PAGES: Cell<(i32, i32)> = const { Cell::new((0, 0)) };
}

/// Installed on every connection in place of SQLite's automatic checkpoint.
pub fn install(c: &Connection) {
    c.wal_hook(Some(note_log_pages));
}

/// Held while the thread checkpoints. A commit that must checkpoint in place waits for it and
/// then copies the rest: trying alongside it would fail (one checkpoint at a time), and the log
/// would grow for as long as the thread's checkpoint takes, past the bound. One for the process:
/// with two databases open, a commit past its bound may also wait out the other's checkpoint.
static CHECKPOINTING: Mutex<()> = Mutex::new(());

fn note_log_pages(wal: &Wal, pages: c_int) -> rusqlite::Result<()> {
    LOG_PAGES.with(|p| p.set((p.get().1, pages)));
    if pages >= INLINE_CHECKPOINT_AT_PAGES {
        // Called after the commit released its locks: the thread's checkpoint cannot wait on us.
        let _turn = CHECKPOINTING.lock().unwrap_or_else(|p| p.into_inner());
        // A failure here (a reader holds old pages) only leaves the log long for now.
        if let Err(e) = wal.checkpoint() {
            tracing::debug!(error = %e, "checkpoint failed; the next commit tries again");
        }
    }
    Ok(())
}

/// The checkpoint thread of one database; it stops (and closes its connection) when dropped.
pub struct Checkpointer {
    wake: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub fn start(db: &Path) -> std::io::Result<Checkpointer> {
        // One pending request is enough: a checkpoint covers every commit before it.
        let (wake, asked) = mpsc::sync_channel::<()>(1);
        let db: PathBuf = db.into();
        let thread = std::thread::Builder::new().name("convmeta-checkpoint".into()).spawn(move || {
            // Opened on the first request: a short-lived command never needs it.
            let mut conn: Option<Connection> = None;
            while asked.recv().is_ok() {
                if conn.is_none() {
                    // Never creates the file: if it is gone, there is nothing to checkpoint.
                    conn = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_WRITE)
                        .inspect(install)
                        .inspect_err(|e| tracing::debug!(error = %e, "cannot open the database to checkpoint it"))
                        .ok();
                }
                if let Some(c) = &conn {
                    let _turn = CHECKPOINTING.lock().unwrap_or_else(|p| p.into_inner());
                    match c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
                        Ok(pages) => tracing::trace!(pages, "checkpointed"),
                        Err(e) => tracing::debug!(error = %e, "checkpoint failed; the next commit asks again"),
                    }
                }
            }
        })?;
        Ok(Checkpointer { wake: Some(wake), thread: Some(thread) })
    }

    /// Called after each commit on the committing thread: asks for a checkpoint each time the
    /// log grows past another multiple of the threshold (once, not after every commit: under a
    /// stream of writes the log is not rewound, and a checkpoint per commit would only fsync).
    pub fn after_commit(&self) {
        let (before, now) = LOG_PAGES.with(Cell::get);
        let rewound = now < before;
        if now / CHECKPOINT_AT_PAGES <= if rewound { 0 } else { before / CHECKPOINT_AT_PAGES } {
            return;
        }
        if let Some(wake) = &self.wake {
            match wake.try_send(()) {
                Ok(()) | Err(TrySendError::Full(())) => {}
                Err(TrySendError::Disconnected(())) => tracing::debug!("checkpoint thread is gone"),
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.wake.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// Commits about four pages (one row of 14 KB) and tells the store, as a refresh does.
    fn commit_pages(store: &Store, c: &Connection, i: usize) {
        c.execute(
            "INSERT OR REPLACE INTO _meta (key, value) VALUES (?1, hex(randomblob(7000)))",
            [format!("bench-{}", i % 50)],
        )
        .unwrap();
        store.committed();
    }

    /// A new store at `db.sqlite3` in a directory of its own, and a connection to it.
    fn new_store() -> (tempfile::TempDir, Store, crate::store::Conn) {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("db.sqlite3")).unwrap();
        let c = store.conn().unwrap();
        (tmp, store, c)
    }

    fn log_file_len(dir: &Path) -> u64 {
        std::fs::metadata(dir.join("db.sqlite3-wal")).unwrap().len()
    }

    fn db_file_stamp(path: &Path) -> (u64, std::time::SystemTime) {
        let m = std::fs::metadata(path).unwrap();
        (m.len(), m.modified().unwrap())
    }

    #[test]
    fn a_long_log_is_checkpointed_by_the_thread_and_stays_bounded() {
        let (tmp, store, c) = new_store();
        let path = tmp.path().join("db.sqlite3");

        // Up to the threshold, nothing copies the log into the database file.
        let mut i = 0;
        let before = loop {
            let before = db_file_stamp(&path);
            commit_pages(&store, &c, i);
            i += 1;
            if LOG_PAGES.with(Cell::get).1 >= CHECKPOINT_AT_PAGES {
                break before;
            }
        };
        // The commit that crossed it did not checkpoint in place (its log is still long), but
        // asked the thread, which does: the database file changes.
        assert!(LOG_PAGES.with(Cell::get).1 < INLINE_CHECKPOINT_AT_PAGES);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while db_file_stamp(&path) == before {
            assert!(std::time::Instant::now() < deadline, "no checkpoint ran");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }

        // A stream of writes (four times the bound) faster than checkpoints: the log stays bounded.
        let mut longest = 0;
        for _ in 0..INLINE_CHECKPOINT_AT_PAGES {
            commit_pages(&store, &c, i);
            i += 1;
            longest = longest.max(LOG_PAGES.with(Cell::get).1);
        }
        assert!(longest < INLINE_CHECKPOINT_AT_PAGES + 10, "{longest} pages in the log");
        let wal = log_file_len(tmp.path());
        assert!(wal < (INLINE_CHECKPOINT_AT_PAGES as u64 + 10) * (4096 + 24) + 32, "{wal} bytes of log");
    }

    /// One transaction larger than the bound (every row rewritten) grows the log's file; once it
    /// is checkpointed, the next commit rewinds the log and cuts the file back.
    #[test]
    fn a_log_grown_by_one_large_transaction_is_cut_back_when_rewound() {
        let (tmp, store, c) = new_store();
        let wal_len = || log_file_len(tmp.path()) as i64;

        // Rows of 14 KB, twice the bound and some, in one transaction.
        c.execute_batch("BEGIN").unwrap();
        for i in 0..2 * KEEP_LOG_BYTES / 14_000 + 100 {
            c.execute("INSERT INTO _meta (key, value) VALUES (?1, hex(randomblob(7000)))", [format!("big-{i}")])
                .unwrap();
        }
        c.execute_batch("COMMIT").unwrap();
        store.committed();
        assert!(wal_len() > 2 * KEEP_LOG_BYTES, "{} bytes of log", wal_len());

        // That commit checkpointed in place (nobody reads); the next one starts the log anew.
        commit_pages(&store, &c, 0);
        assert!(wal_len() <= KEEP_LOG_BYTES, "{} bytes of log", wal_len());
    }
}
