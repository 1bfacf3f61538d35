use std::path::PathBuf;

/// Everything the library can fail with. Data problems in an archive are not errors: they are
/// counted on the conversation's row.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}: not a convmeta database; refusing to touch it (pass another --db)")]
    NotOurs(PathBuf),
    #[error("{0}: a damaged SQLite file not marked as convmeta's; refusing to touch it (move it away, or pass another --db)")]
    DamagedNotOurs(PathBuf),
    #[error("{0}: a SQLite file not marked as convmeta's, with an unfinished transaction (its -journal); refusing to touch it (open it once with sqlite3 to roll that back, or pass another --db)")]
    UnfinishedNotOurs(PathBuf),
    #[error(
        "{path}: written by a newer convmeta (schema {found}, this build knows {known}): use that one, or another --db"
    )]
    TooNew { path: PathBuf, found: i64, known: i64 },
    #[error("database {path}: {source}{}", what_to_do(source))]
    Sqlite { path: PathBuf, source: rusqlite::Error },
    #[error("cannot open the database {path}: {source}")]
    CannotOpen { path: PathBuf, source: std::io::Error },
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("logs directory {path}: {source}")]
    Logs { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "{path}: {source} ({}; the index keeps what it had, and the next refresh tries again)",
        ran_short_of(source)
    )]
    OutOfResources { path: PathBuf, source: std::io::Error },
    #[error("no conversation with id {id:?}{}", did_you_mean(similar, *more))]
    NotFound { id: String, similar: Vec<String>, more: usize },
    #[error("refresh failed: {0}")]
    Refresh(String),
    #[error("--upstream {url}: {why}")]
    Upstream { url: String, why: String },
    #[error("database damaged: {0}")]
    Damaged(String),
}

impl Error {
    /// The logs directory could not be listed or opened: for want of descriptors or memory, or
    /// for a reason of its own.
    pub fn logs(path: &std::path::Path, source: std::io::Error) -> Error {
        match is_out_of_resources(&source) {
            true => Error::OutOfResources { path: path.into(), source },
            false => Error::Logs { path: path.into(), source },
        }
    }

    /// The logs directory does not exist (yet: gptme makes it with its first conversation).
    pub fn is_logs_missing(&self) -> bool {
        matches!(self, Error::Logs { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }

    /// This user may not write the database, or its directory: the commands that only read
    /// (`status`, `query --no-refresh`) read it as it is instead.
    pub fn is_read_only(&self) -> bool {
        matches!(self, Error::Sqlite { source, .. } if source.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly))
    }

    /// The database's file system is full, of bytes or of files: what is there is whole, and
    /// stays.
    pub fn is_out_of_space(&self) -> bool {
        match self {
            Error::Sqlite { source, .. } => out_of_space(source),
            Error::CannotOpen { source, .. } => source.kind() == std::io::ErrorKind::StorageFull,
            _ => false,
        }
    }

    /// The database file is damaged, deleted or replaced: rebuild it (it is only a cache).
    pub fn is_damage(&self) -> bool {
        match self {
            Error::Damaged(_) => true,
            Error::Sqlite { source, .. } => says_the_file_is_damaged(source),
            _ => false,
        }
    }
}

/// What SQLite found in the file itself: content it cannot make sense of, or pages that could
/// not be read (a bad sector, a file cut short under it). A write, sync or lock that failed
/// (a disk quota, a failing device, a network file system) says nothing about what the file
/// holds, and moving the file aside would not help: that error is reported instead.
fn says_the_file_is_damaged(e: &rusqlite::Error) -> bool {
    use rusqlite::ffi;
    let rusqlite::Error::SqliteFailure(e, _) = e else { return false };
    match e.code {
        rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase => true,
        rusqlite::ErrorCode::SystemIoFailure => matches!(
            e.extended_code,
            ffi::SQLITE_IOERR_READ
                | ffi::SQLITE_IOERR_SHORT_READ
                | ffi::SQLITE_IOERR_DATA
                | ffi::SQLITE_IOERR_CORRUPTFS
        ),
        _ => false,
    }
}

/// SQLite's "database or disk is full", and the I/O error it gives when its -shm file cannot
/// grow (as on a full disk; the -shm is made at the first read, so every command meets it).
pub(crate) fn out_of_space(e: &rusqlite::Error) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(e, _) => {
            e.code == rusqlite::ErrorCode::DiskFull || e.extended_code == rusqlite::ffi::SQLITE_IOERR_SHMSIZE
        }
        _ => false,
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// An error that says nothing about the file, only about this moment: no file descriptor or
/// memory to read it with. A refresh that meets one stops, rather than store the file as
/// unreadable, where it would stay until the file changed.
pub fn is_out_of_resources(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::ENOBUFS))
}

fn ran_short_of(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EMFILE) => "convmeta has as many files open as its limit allows: raise it (`ulimit -n`)",
        Some(libc::ENFILE) => "the system has as many files open as it allows",
        _ => "the system is short of memory",
    }
}

/// What SQLite's own words leave out, for the failures a user can act on.
fn what_to_do(e: &rusqlite::Error) -> &'static str {
    if out_of_space(e) {
        return " (its file system is out of space: free some, or pass --db on another disk; what was committed is kept, and the next run goes on from there)";
    }
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy) => {
            " (another program has held its write lock for longer than convmeta waits, 10 s: a sqlite3 session or a script with a transaction left open, say; convmeta's own refreshes hold it only while they write)"
        }
        Some(rusqlite::ErrorCode::SystemIoFailure) if !says_the_file_is_damaged(e) => {
            " (the system failed a write, sync or lock of it: a disk quota, a failing device, a network file system; what was committed is kept, and the next run tries again)"
        }
        Some(rusqlite::ErrorCode::ReadOnly) => {
            " (this user may not write it, or its directory, where SQLite keeps the -wal and -shm files, or the file system is read-only; every command but `status` and `query --no-refresh` updates the index first: give the file back to this user, or delete it, as it is only a cache of the logs, or pass --db another file)"
        }
        _ => "",
    }
}

/// "; did you mean …?" naming the conversations whose id or name holds what was asked, and
/// how many more do.
fn did_you_mean(similar: &[String], more: usize) -> String {
    match (similar, more) {
        ([], _) => String::new(),
        ([one], 0) => format!("; did you mean {one}?"),
        (some, 0) => format!("; did you mean one of: {}?", some.join(", ")),
        (some, more) => format!("; did you mean one of: {} (or {more} more)?", some.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What SQLite answers to a write that does not fit, as a database on a full disk does.
    fn full() -> rusqlite::Error {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch("CREATE TABLE t (b BLOB); PRAGMA max_page_count = 2;").unwrap();
        db.execute("INSERT INTO t VALUES (zeroblob(100000))", []).unwrap_err()
    }

    #[test]
    fn a_full_disk_says_what_to_do() {
        let full = Error::Sqlite { path: "/cache/x.sqlite3".into(), source: full() }.to_string();
        assert!(full.starts_with("database /cache/x.sqlite3: database or disk is full (its file system"), "{full}");
        assert!(full.contains("--db on another disk"), "{full}");
        let other = rusqlite::Connection::open_in_memory().unwrap().execute("INSERT INTO nowhere VALUES (1)", []);
        let other = Error::Sqlite { path: "/cache/x.sqlite3".into(), source: other.unwrap_err() }.to_string();
        assert_eq!(other, "database /cache/x.sqlite3: no such table: nowhere");
    }

    #[test]
    fn a_shm_file_that_cannot_grow_is_a_full_disk_not_damage() {
        let failure = |code| Error::Sqlite {
            path: "/cache/x.sqlite3".into(),
            source: rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None),
        };
        let shm = failure(rusqlite::ffi::SQLITE_IOERR_SHMSIZE);
        assert!(shm.is_out_of_space() && !shm.is_damage());
        assert!(shm.to_string().contains("(its file system is out of space"), "{shm}");
        let read = failure(rusqlite::ffi::SQLITE_IOERR_READ);
        assert!(!read.is_out_of_space() && read.is_damage());
    }

    /// A write that failed (a disk quota: SQLite says `SQLITE_IOERR_WRITE` for `EDQUOT`, and
    /// for a failing device) or a sync is no sign of a damaged file, which would be moved aside
    /// and rebuilt; a read that failed or came up short, or content SQLite cannot make sense of,
    /// is.
    #[test]
    fn only_what_the_file_holds_counts_as_damage() {
        use rusqlite::ffi;
        let failure = |code| Error::Sqlite {
            path: "/cache/x.sqlite3".into(),
            source: rusqlite::Error::SqliteFailure(ffi::Error::new(code), None),
        };
        for code in [
            ffi::SQLITE_IOERR_WRITE,
            ffi::SQLITE_IOERR_FSYNC,
            ffi::SQLITE_IOERR_TRUNCATE,
            ffi::SQLITE_IOERR_LOCK,
            ffi::SQLITE_IOERR,
        ] {
            let error = failure(code);
            assert!(!error.is_damage(), "{code}");
            assert!(error.to_string().contains("a disk quota, a failing device"), "{error}");
        }
        for code in [ffi::SQLITE_CORRUPT, ffi::SQLITE_NOTADB, ffi::SQLITE_IOERR_SHORT_READ, ffi::SQLITE_IOERR_READ] {
            assert!(failure(code).is_damage(), "{code}");
        }
    }

    #[test]
    fn a_database_locked_too_long_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.sqlite3");
        let holder = rusqlite::Connection::open(&path).unwrap();
        holder.execute_batch("CREATE TABLE t (x); BEGIN IMMEDIATE; INSERT INTO t VALUES (1)").unwrap();
        let waiting = rusqlite::Connection::open(&path).unwrap();
        waiting.busy_timeout(std::time::Duration::ZERO).unwrap();
        let refused = waiting.execute("INSERT INTO t VALUES (2)", []);
        let message = Error::Sqlite { path, source: refused.unwrap_err() }.to_string();
        assert!(message.contains("database is locked (another program has held its write lock"), "{message}");
    }

    #[test]
    fn a_read_only_database_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.sqlite3");
        rusqlite::Connection::open(&path).unwrap().execute_batch("CREATE TABLE t (x)").unwrap();
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
        let refused =
            rusqlite::Connection::open_with_flags(&path, flags).unwrap().execute("INSERT INTO t VALUES (1)", []);
        let message = Error::Sqlite { path, source: refused.unwrap_err() }.to_string();
        assert!(message.contains("attempt to write a readonly database (this user may not write it"), "{message}");
        assert!(message.contains("pass --db another file"), "{message}");
    }
}
