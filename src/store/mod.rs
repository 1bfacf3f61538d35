//! The SQLite side: a pool of connections to one database file, its schema, and the row reads
//! and writes the rest of the crate uses.

pub mod checkpoint;
pub mod compare;
mod files;
pub mod migrate;
pub mod rows;
pub mod sql;
pub mod usage;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::error::{Error, Result};
pub use files::sidecar;
use files::{
    dir_of, file_identity, immutable_uri, inspect, interrupted_creation, make_dir_for, make_file, move_aside,
    no_room_for_files, wal_holds_anything, why_not_openable, Found, SIDECARS,
};

/// Marks a database as convmeta's (`PRAGMA application_id`, "cvmt").
pub const APPLICATION_ID: i32 = 0x6376_6d74;

pub type Conn = PooledConnection<SqliteConnectionManager>;

#[derive(Clone)]
pub struct Store {
    pool: Pool<SqliteConnectionManager>,
    path: PathBuf,
    /// The database file's (device, inode) when opened: if the path stops naming it, the file
    /// was deleted or replaced.
    identity: (u64, u64),
    /// The (device, inode) of its -wal and -shm files.
    sidecars: [Option<(u64, u64)>; 2],
    /// A connection kept only to ask `PRAGMA data_version`, which changes whenever any other
    /// connection (ours or another process's) commits.
    observer: Arc<Mutex<Connection>>,
    /// The one connection refreshes write through, opened by the first. Its data version moves
    /// only when another connection commits, so it tells whether anyone else wrote meanwhile.
    writer: Arc<Mutex<WriterSlot>>,
    /// What the last refresh knew of the database, valid while the writer's data version is
    /// unchanged: held here, opaque to the store, so that it lives and dies with this database
    /// (a rebuilt one starts with none).
    kept: Arc<Mutex<Option<(i64, crate::refresh::Kept)>>>,
    /// The file's (size, mtime in ns) when its header last passed [`Store::is_intact`]: while
    /// they stay the same, so does the header, and one stat answers (the WAL takes the writes;
    /// the file itself changes only at checkpoints).
    verified: Arc<Mutex<Option<(u64, i128)>>>,
    checkpointer: Arc<checkpoint::Checkpointer>,
    open_failures: Arc<OpenFailures>,
}

/// What identifies the database's contents: the file, and SQLite's data version.
pub type Version = (u64, u64, i64);

/// Every conversation's stored state, by id.
pub type States = HashMap<String, rows::StoredState>;

/// A failure to open the database at `path`, with why when SQLite says only "unable to open
/// database file".
fn cannot_open(path: &Path, source: rusqlite::Error) -> Error {
    if source.sqlite_error_code() != Some(ErrorCode::CannotOpen) {
        return Error::Sqlite { path: path.into(), source };
    }
    match why_not_openable(path) {
        Some(reason) if crate::error::is_out_of_resources(&reason) => {
            Error::OutOfResources { path: path.into(), source: reason }
        }
        Some(reason) => Error::CannotOpen { path: path.into(), source: reason },
        None => Error::Sqlite { path: path.into(), source },
    }
}

/// Why the pool last failed to open a connection, and when. r2d2 tries again and again until its
/// timeout (30 s) runs out; [`Store::conn`] stops at the first failure after it asked instead.
#[derive(Debug, Default)]
struct OpenFailures(Mutex<Option<(std::time::Instant, rusqlite::ffi::Error, Option<String>)>>);

#[derive(Debug)]
struct RecordOpenFailures(Arc<OpenFailures>);

impl r2d2::HandleError<rusqlite::Error> for RecordOpenFailures {
    fn handle_error(&self, e: rusqlite::Error) {
        tracing::debug!(error = %e, "cannot open a database connection");
        let (code, message) = match e {
            rusqlite::Error::SqliteFailure(code, message) => (code, message),
            other => (rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR), Some(other.to_string())),
        };
        *self.0 .0.lock().unwrap_or_else(|p| p.into_inner()) = Some((std::time::Instant::now(), code, message));
    }
}

impl OpenFailures {
    fn since(&self, t: std::time::Instant) -> Option<rusqlite::Error> {
        let last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        last.as_ref()
            .filter(|(at, ..)| *at >= t)
            .map(|(_, code, message)| rusqlite::Error::SqliteFailure(*code, message.clone()))
    }
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase))
}

/// How long a connection waits for another's lock before it says the database is locked.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn configure(c: &mut Connection) -> rusqlite::Result<()> {
    c.busy_timeout(BUSY_TIMEOUT)?;
    // Turning a new database to WAL takes an exclusive lock that SQLite does not wait for (two
    // processes creating one database at once): wait here as the busy timeout would.
    let began = std::time::Instant::now();
    while let Err(e) = c.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())) {
        if e.sqlite_error_code() != Some(ErrorCode::DatabaseBusy) || began.elapsed() > BUSY_TIMEOUT {
            return Err(e);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    c.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
    c.pragma_update(None, "journal_size_limit", checkpoint::KEEP_LOG_BYTES)?;
    checkpoint::install(c);
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the database at `path`. A corrupt convmeta database is moved
    /// aside and rebuilt; anything else that is not ours is refused and left untouched.
    pub fn open(path: &Path) -> Result<Store> {
        make_dir_for(path)?;
        match inspect(path)? {
            Found::Foreign => return Err(Error::NotOurs(path.into())),
            Found::UnmarkedSqlite => {
                // The header's id may still sit in the WAL: ask SQLite, which reads both.
                let sqlite = |source| Error::Sqlite { path: path.into(), source };
                let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sqlite)?;
                // One statement, one snapshot: a convmeta creating the file marks it before
                // it makes tables, and two reads could see the tables and not the mark.
                let probe = c.query_row(
                    "SELECT application_id, (SELECT count(*) FROM sqlite_master) FROM pragma_application_id",
                    [],
                    |r| Ok((r.get::<_, i32>(0)?, r.get::<_, i64>(1)?)),
                );
                match probe {
                    Ok((app_id, tables)) if app_id != APPLICATION_ID && tables > 0 => {
                        return Err(Error::NotOurs(path.into()));
                    }
                    Ok(_) => {}
                    // Damaged, it may be anyone's: refused, like any file not known to be ours.
                    Err(e) if is_corruption(&e) => return Err(Error::DamagedNotOurs(path.into())),
                    // A hot journal, which only a writer may roll back. Ours if the file was
                    // empty before its transaction (a convmeta killed while creating it).
                    Err(e) if e.sqlite_error_code() == Some(ErrorCode::ReadOnly) => {
                        if !interrupted_creation(path) {
                            return Err(Error::UnfinishedNotOurs(path.into()));
                        }
                    }
                    Err(e) => return Err(sqlite(e)),
                }
            }
            Found::Nothing | Found::Ours => {}
        }
        match Self::open_ours(path) {
            Err(Error::Sqlite { source, .. }) if is_corruption(&source) => {
                tracing::warn!(db = %path.display(), "database is corrupt; moving it aside and rebuilding");
                Self::rebuild(path)
            }
            Err(Error::Sqlite { source, .. }) => Err(cannot_open(path, source)),
            other => other,
        }
    }

    fn open_ours(path: &Path) -> Result<Store> {
        let sqlite = |source| Error::Sqlite { path: path.into(), source };
        // Readable by its owner alone: the index holds names and excerpts of conversations.
        make_file(path, 0o600);
        let mut c = Connection::open(path).map_err(sqlite)?;
        configure(&mut c).map_err(sqlite)?;
        not_newer(&c, path)?;
        // Only when missing: setting it is a write, and an open that writes would wait on a busy
        // writer and make every other connection's caches stale.
        let app_id: i32 = c.query_row("PRAGMA application_id", [], |r| r.get(0)).map_err(sqlite)?;
        if app_id != APPLICATION_ID {
            c.pragma_update(None, "application_id", APPLICATION_ID).map_err(sqlite)?;
        }
        migrate::apply(&mut c).map_err(sqlite)?;
        // Touch every internal table once so a damaged file shows up now, not mid-refresh.
        c.query_row("SELECT count(*) FROM _scan_state", [], |_| Ok(())).map_err(sqlite)?;
        let identity = file_identity(path).map_err(|source| Error::Io { path: path.into(), source })?;
        // Made by the reads above, they stay while the observer keeps a connection open.
        let sidecars = SIDECARS.map(|suffix| file_identity(&sidecar(path, suffix)).ok());
        let observer = Arc::new(Mutex::new(c));
        let manager = SqliteConnectionManager::file(path).with_init(configure);
        // Connections are checked by use; a validity query per checkout would cost every refresh.
        // They open as needed: a one-shot command uses one or two, not the pool's eight.
        let open_failures = Arc::new(OpenFailures::default());
        let pool = Pool::builder()
            .max_size(8)
            .min_idle(Some(0))
            .test_on_check_out(false)
            .error_handler(Box::new(RecordOpenFailures(open_failures.clone())))
            .build(manager)?;
        let checkpointer =
            Arc::new(checkpoint::Checkpointer::start(path).map_err(|source| Error::Io { path: path.into(), source })?);
        Ok(Store {
            pool,
            path: path.into(),
            identity,
            sidecars,
            observer,
            writer: Arc::default(),
            kept: Arc::default(),
            verified: Arc::default(),
            checkpointer,
            open_failures,
        })
    }

    /// Moves whatever is at `path` aside (kept as `<path>.corrupt-<time>`) and creates a fresh
    /// database: for a file that was ours and got damaged while in use.
    pub fn rebuild(path: &Path) -> Result<Store> {
        use std::os::unix::fs::PermissionsExt;
        // The new file gets the old one's permissions (say, shared with a group by `chmod`).
        let mode = std::fs::metadata(path).ok().map(|m| m.permissions().mode() & 0o7777);
        if path.exists() {
            let aside = move_aside(path)?;
            tracing::warn!(moved_to = %aside.display(), "kept the damaged database for inspection");
        }
        // Its directory may have gone with it (`rm -rf ~/.cache`).
        make_dir_for(path)?;
        if let Some(mode) = mode {
            make_file(path, mode);
        }
        Self::open_ours(path)
    }

    /// What was kept, if no other connection has committed since (`now`: the writer's data
    /// version).
    pub fn take_kept(&self, now: i64) -> Option<crate::refresh::Kept> {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        match kept.take() {
            Some((version, kept)) if version == now => Some(kept),
            _ => None,
        }
    }

    pub fn keep(&self, version: i64, kept: crate::refresh::Kept) {
        *self.kept.lock().unwrap_or_else(|p| p.into_inner()) = Some((version, kept));
    }

    /// Changes whenever the database changes: the file's identity and its data version.
    pub fn version(&self) -> Result<Version> {
        let v = data_version(&self.observer.lock().unwrap_or_else(|p| p.into_inner())).map_err(|e| self.err(e))?;
        Ok((self.identity.0, self.identity.1, v))
    }

    /// The connection refreshes write through (one at a time: callers wait for it).
    pub fn writer(&self) -> Result<WriterConn<'_>> {
        let mut slot = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if slot.conn.is_none() {
            let failed = |source| cannot_open(&self.path, source);
            let mut c = Connection::open(&self.path).map_err(failed)?;
            configure(&mut c).map_err(failed)?;
            slot.conn = Some(c);
        }
        Ok(WriterConn(slot))
    }

    /// The path still names the file we opened, and its header is sane: SQLite's magic, and at
    /// least as many bytes as the header says the database holds (a truncated file can look
    /// fine to connections that answer from their caches).
    ///
    /// A file that cannot be looked at (no file descriptor left, say) counts as intact: that
    /// says nothing about it, and the next query reports what it is.
    pub fn is_intact(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let now = crate::filesystem::file_clock_ns();
        let m = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) => return e.kind() != std::io::ErrorKind::NotFound,
        };
        if (m.dev(), m.ino()) != self.identity {
            return false;
        }
        let seen = (m.len(), i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()));
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if *verified == Some(seen) {
            return true;
        }
        let Some(intact) = self.header_is_sane() else { return true };
        // Modified in the current clock tick, it may change again without its mtime moving: keep
        // checking it until a later tick (the rule the logs follow).
        let settled = !crate::filesystem::racy_stamp(m.mtime(), m.mtime_nsec(), now);
        *verified = (intact && settled).then_some(seen);
        intact
    }

    /// None when the file could not be read for a reason that is not its own.
    fn header_is_sane(&self) -> Option<bool> {
        let mut header = [0u8; 100];
        let mut f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(false),
            Err(_) => return None,
        };
        let len = f.metadata().ok()?.len();
        match f.read_exact(&mut header) {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Some(false),
            Err(_) => return None,
            Ok(()) if !header.starts_with(b"SQLite format 3\0") => return Some(false),
            Ok(()) => {}
        }
        let be32 = |at: usize| u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]);
        let page_size = match u16::from_be_bytes([header[16], header[17]]) {
            1 => 65_536,
            n => u64::from(n),
        };
        // The in-header size is valid only while the change counter matches "version valid for".
        let size_known = be32(24) == be32(92);
        Some(!size_known || len >= u64::from(be32(28)) * page_size || self.sqlite_finds_every_page())
    }

    /// SQLite's own check of the header's size, from a connection with nothing cached: it counts
    /// the pages still in the WAL. A file short of its header is also what a checkpoint leaves
    /// while it runs: it copies page 1, which carries the new size, before the pages that extend
    /// the file. Only corruption counts: any other failure is for the next query to report.
    fn sqlite_finds_every_page(&self) -> bool {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let read = Connection::open_with_flags(&self.path, flags).and_then(|c| {
            c.busy_timeout(std::time::Duration::from_secs(10))?;
            c.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
        });
        !read.as_ref().is_err_and(is_corruption)
    }

    /// The path still names the file this store opened (else it was deleted, or replaced).
    pub fn path_names_it(&self) -> bool {
        file_identity(&self.path).is_ok_and(|id| id == self.identity)
    }

    /// Removes this store's -wal and -shm files once its database file is gone from the path
    /// (deleted alone, or replaced): SQLite would read them as the next database's there,
    /// replaying another file's pages into it. Open, they stay readable to this store's
    /// connections, and SQLite, seeing the file moved, neither checkpoints nor deletes by name.
    pub fn remove_orphaned_sidecars(&self) {
        for (suffix, ours) in SIDECARS.iter().zip(self.sidecars) {
            let path = sidecar(&self.path, suffix);
            if ours.is_some() && file_identity(&path).ok() == ours {
                match std::fs::remove_file(&path) {
                    Ok(()) => tracing::info!(path = %path.display(), "removed the deleted database's file"),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cannot remove the deleted database's file")
                    }
                }
            }
        }
    }

    /// Both handles share one pool.
    pub fn same(&self, other: &Store) -> bool {
        self.identity == other.identity && self.path == other.path
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tells the store that this thread just committed (see [`checkpoint`]).
    pub fn committed(&self) {
        self.checkpointer.after_commit();
    }

    /// A connection from the pool: an idle one, else one it opens, or one another caller gives
    /// back. Fails at once if the pool cannot open one (no file descriptor left, say).
    pub fn conn(&self) -> Result<Conn> {
        if let Some(c) = self.pool.try_get() {
            return Ok(c);
        }
        let asked = std::time::Instant::now();
        loop {
            match self.pool.get_timeout(std::time::Duration::from_millis(20)) {
                Ok(c) => return Ok(c),
                Err(e) => {
                    if let Some(failure) = self.open_failures.since(asked) {
                        return Err(cannot_open(&self.path, failure));
                    }
                    if asked.elapsed() >= self.pool.connection_timeout() {
                        return Err(e.into());
                    }
                }
            }
        }
    }

    /// Wraps a SQLite error with this database's path.
    pub fn err(&self, source: rusqlite::Error) -> Error {
        Error::Sqlite { path: self.path.clone(), source }
    }
}

/// The writer connection, held.
pub struct WriterConn<'a>(std::sync::MutexGuard<'a, WriterSlot>);

impl std::ops::Deref for WriterConn<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.0.conn.as_ref().expect("opened before it is handed out")
    }
}

/// Where the writer connection lives once opened. When the last handle on the store goes, it
/// checkpoints: SQLite checkpoints at close only in the process's last open connection, and a
/// connection the pool is still opening on another thread can keep ours from being the last.
/// The database file would then lack everything this process wrote until a later open replays
/// the WAL, and a copy of the file alone would lose it.
#[derive(Default)]
struct WriterSlot {
    conn: Option<Connection>,
}

impl Drop for WriterSlot {
    fn drop(&mut self) {
        if let Some(c) = &self.conn {
            // An error here is the file's (a full disk): nothing is lost, the WAL keeps it all.
            if let Err(e) = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                let wal = c.path().map(|p| format!("{p}-wal")).unwrap_or_default();
                tracing::warn!(
                    error = %e,
                    "at exit, the write-ahead log could not be copied into the database file; nothing \
                     is lost: it stays in {wal}, which belongs with the database file"
                );
            }
        }
    }
}

/// Refuses a database whose schema is newer than this build's: made by a newer convmeta, or
/// migrated by one since this one opened it (a new version installed while a server of the old
/// one runs), whose rows this build would write without what the newer schema keeps.
pub fn not_newer(c: &Connection, path: &Path) -> Result<()> {
    let found: i64 = c
        .prepare_cached("PRAGMA user_version")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(|source| Error::Sqlite { path: path.into(), source })?;
    match found > migrate::latest() {
        true => Err(Error::TooNew { path: path.into(), found, known: migrate::latest() }),
        false => Ok(()),
    }
}

/// SQLite's data version as this connection sees it: it changes when another connection
/// commits, never for the connection's own commits.
pub fn data_version(c: &Connection) -> rusqlite::Result<i64> {
    c.prepare_cached("PRAGMA data_version")?.query_row([], |r| r.get(0))
}

/// A read-only connection to the database at `path`, also where this user may write neither the
/// file nor its directory (another user's database, a read-only file system) and on a full
/// disk (of bytes or of files). A reader of a WAL database needs the -shm file, which SQLite cannot make or grow there.
/// With no writer about (no -wal holding anything) the file holds every commit, and is read as
/// it stands (SQLite's `immutable`); with one, SQLite reads through the -shm that writer made.
pub fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let c = Connection::open_with_flags(path, flags)?;
    c.busy_timeout(std::time::Duration::from_secs(5))?;
    // SQLite opens lazily: the first read finds whether it can.
    match c.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(())) {
        Ok(()) => Ok(c),
        Err(e) if cannot_make_shm(&e, path) && !wal_holds_anything(path) => {
            // Immutable: no locks taken, none to wait for.
            Connection::open_with_flags(immutable_uri(path), flags | OpenFlags::SQLITE_OPEN_URI)
        }
        Err(e) => Err(e),
    }
}

/// A quick read that leaves nothing beside the file (a shell's completion; which logs directory
/// a database names): where the write-ahead log holds nothing, the file holds every commit and
/// is read as it stands (SQLite's `immutable`), so no `-wal` or `-shm` is made for it; else as
/// [`open_read_only`], through the files the writer about made. A writer that starts in the
/// milliseconds it reads may not be seen, or make the read fail.
pub fn open_for_a_glance(path: &Path) -> rusqlite::Result<Connection> {
    if wal_holds_anything(path) {
        return open_read_only(path);
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    Connection::open_with_flags(immutable_uri(path), flags)
}

fn cannot_make_shm(e: &rusqlite::Error, path: &Path) -> bool {
    match e.sqlite_error_code() {
        Some(ErrorCode::ReadOnly) => true,
        Some(ErrorCode::CannotOpen) => no_room_for_files(dir_of(path)),
        _ => crate::error::out_of_space(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    /// A header overwritten in place, size and mtime unchanged (as within one timestamp tick):
    /// a file modified in the current clock tick is never trusted on its stat alone. The tick
    /// is pinned by dating the file a few seconds ahead, which counts as the current tick.
    #[test]
    fn a_header_damaged_within_the_same_tick_is_seen() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("db.sqlite3");
        let store = Store::open(&path).unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let ahead =
            std::fs::FileTimes::new().set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5));
        f.set_times(ahead).unwrap();
        assert!(store.is_intact());
        f.write_all_at(b"not a database!!", 0).unwrap();
        f.set_times(ahead).unwrap();
        assert!(!store.is_intact());
    }

    /// What this process wrote is in the database file once the store is dropped, even when
    /// another connection to it is still open (as one the pool is opening on another thread
    /// may be at exit), so SQLite's own checkpoint at close does not run.
    #[test]
    fn writes_reach_the_database_file_when_the_store_goes() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("db.sqlite3");
        let store = Store::open(&path).unwrap();
        let other = Connection::open(&path).unwrap();
        other.query_row("SELECT count(*) FROM _meta", [], |_| Ok(())).unwrap(); // open, and in WAL mode
        rows::set_meta(&store.writer().unwrap(), "probe", "written").unwrap();
        drop(store);
        let copy = tmp.path().join("copy.sqlite3");
        std::fs::copy(&path, &copy).unwrap();
        let c = Connection::open(&copy).unwrap();
        assert_eq!(rows::get_meta(&c, "probe").unwrap().as_deref(), Some("written"));
        drop(other);
    }

    /// A checkpoint copies pages in order, so page 1, whose header carries the new size, lands
    /// in the file before the pages that extend it. Until they do, the file is shorter than its
    /// header says, and the pages are in the WAL: intact, as SQLite sees it.
    #[test]
    fn a_checkpoint_in_progress_is_not_damage() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("db.sqlite3");
        drop(Store::open(&path).unwrap());
        // Grow the database in the WAL only, and keep the WAL (an open connection).
        let c = Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA wal_autocheckpoint = 0").unwrap();
        for i in 0..100 {
            c.execute("INSERT INTO _meta (key, value) VALUES (?1, ?2)", (format!("k{i}"), "v".repeat(2000))).unwrap();
        }
        // The checkpoint's first step: the newest page 1 from the WAL, written over the file's.
        let wal = std::fs::read(format!("{}-wal", path.display())).unwrap();
        let page_size = u32::from_be_bytes(wal[8..12].try_into().unwrap()) as usize;
        let page_one = wal[32..]
            .chunks_exact(24 + page_size)
            .rfind(|frame| frame[..4] == 1u32.to_be_bytes())
            .map(|frame| &frame[24..])
            .unwrap();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().write_all_at(page_one, 0).unwrap();
        let pages = u64::from(u32::from_be_bytes(page_one[28..32].try_into().unwrap()));
        assert!(std::fs::metadata(&path).unwrap().len() < pages * page_size as u64, "the file is short of its header");

        let store = Store::open(&path).unwrap();
        assert!(store.is_intact());
        let rows: i64 = store.conn().unwrap().query_row("SELECT count(*) FROM _meta", [], |r| r.get(0)).unwrap();
        assert!(rows >= 100);
        drop(c);
    }
}
