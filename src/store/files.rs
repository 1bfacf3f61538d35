//! The database's files on disk, apart from SQLite: what is at its path before SQLite opens it,
//! the files SQLite keeps beside it, why the OS will not let it be opened, and moving a
//! damaged one aside.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::APPLICATION_ID;
use crate::error::{Error, Result};

/// What is at the database path before we open it.
pub(super) enum Found {
    Nothing,
    Ours,
    /// A SQLite file with no application id: ours only if it is empty.
    UnmarkedSqlite,
    Foreign,
}

/// Reads the first bytes at `path`, without SQLite (which would make a file there).
pub(super) fn inspect(path: &Path) -> Result<Found> {
    let io = |source| Error::Io { path: path.into(), source };
    let mut header = [0u8; 100];
    // A FIFO at that path must not hang us; only a regular file can be a database.
    let opened = crate::filesystem::open_to_read(path);
    let n = match opened {
        Ok(mut f) => {
            if !f.metadata().map_err(io)?.is_file() {
                return Err(io(std::io::Error::other("not a regular file, so not a database (pass another --db)")));
            }
            f.read(&mut header).map_err(io)?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(source) => return Err(io(source)),
    };
    if n == 0 {
        return Ok(Found::Nothing);
    }
    if n < 100 || !header.starts_with(b"SQLite format 3\0") {
        return Ok(Found::Foreign);
    }
    let app_id = i32::from_be_bytes([header[68], header[69], header[70], header[71]]);
    Ok(match app_id {
        APPLICATION_ID => Found::Ours,
        0 => Found::UnmarkedSqlite,
        _ => Found::Foreign,
    })
}

/// Whether `path` has a rollback journal saying the file had no pages before its transaction:
/// whoever began it (a convmeta creating the file, before it turns on WAL) died before
/// committing, and rolling it back leaves an empty file, nobody's database.
pub(super) fn interrupted_creation(path: &Path) -> bool {
    /// A rollback journal's header: its magic, then (big-endian u32s) the record count, the
    /// checksum nonce and the database's size in pages before the transaction.
    const MAGIC: [u8; 8] = [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];
    let mut header = [0u8; 20];
    let journal = sidecar(path, "-journal");
    let read = std::fs::File::open(journal).and_then(|mut f| f.read_exact(&mut header));
    read.is_ok() && header[..8] == MAGIC && header[16..20] == [0; 4]
}

/// Makes the directory a database goes in, if it is not there: as the XDG spec asks of a missing
/// directory, readable by its owner alone (0700), since the index copies what private
/// conversations say. Directories already there keep their permissions.
pub(super) fn make_dir_for(path: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else { return Ok(()) };
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(parent).map_err(|e| {
        use std::io::ErrorKind::{AlreadyExists, NotADirectory};
        let why = match e.kind() {
            // A file where the directory would be (`--db notes.txt/x.sqlite3`).
            AlreadyExists | NotADirectory => "not a directory, so no database can be made in it".to_string(),
            _ => e.to_string(),
        };
        let said = format!(
            "cannot make its directory {}: {why} (pass --db, or set CONVMETA_DB, to keep the index elsewhere)",
            parent.display()
        );
        Error::CannotOpen { path: path.into(), source: std::io::Error::new(e.kind(), said) }
    })
}

/// Makes an empty database file at `path` with these permissions, if there is no file: SQLite
/// would make it readable by everyone (0644), and it gives its `-wal` and `-shm` files the
/// database's own permissions. A file already there keeps its permissions. Any failure is left
/// for SQLite to meet and report as it opens the file.
pub(super) fn make_file(path: &Path, mode: u32) {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path);
}

/// Why the OS will not let SQLite open the database read-write (SQLite says only "unable to open
/// database file"): the file itself, or its directory, where the WAL files go, or no room there
/// for another file.
pub(super) fn why_not_openable(path: &Path) -> Option<std::io::Error> {
    use std::os::unix::fs::OpenOptionsExt;
    // A connection holds up to three files (the database, its -wal and -shm): without room for
    // them in this process, nothing is wrong with the database.
    if let Err(e) = (0..3).map(|_| std::fs::File::open("/dev/null")).collect::<std::io::Result<Vec<_>>>() {
        if crate::error::is_out_of_resources(&e) {
            return Some(e);
        }
    }
    // Non-blocking: a FIFO at that path must not hang us.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path);
    match file {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Some(e),
        _ => {}
    }
    let dir = dir_of(path);
    if let Err(e) = rustix::fs::access(dir, rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK) {
        return Some(e.into());
    }
    no_room_for_files(dir).then(|| {
        std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "its file system has room for no more files (no free inodes), and SQLite makes two beside it: free some, or pass --db on another disk",
        )
    })
}

/// The file system `dir` is on has no free inodes (file systems that keep no count report none
/// at all).
pub(super) fn no_room_for_files(dir: &Path) -> bool {
    rustix::fs::statvfs(dir).is_ok_and(|fs| fs.f_files > 0 && fs.f_favail == 0)
}

pub(super) fn dir_of(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

pub(super) fn wal_holds_anything(path: &Path) -> bool {
    std::fs::metadata(sidecar(path, "-wal")).is_ok_and(|m| m.len() > 0)
}

/// `file:PATH?immutable=1`, the path percent-encoded but for unreserved bytes and `/`.
pub(super) fn immutable_uri(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => uri.push(b as char),
            _ => uri.push_str(&format!("%{b:02X}")),
        }
    }
    uri + "?immutable=1"
}

/// The files SQLite keeps beside a database in WAL mode.
pub(super) const SIDECARS: [&str; 2] = ["-wal", "-shm"];

/// `path` with `suffix` added to its name: SQLite's files beside a database (`-wal`, `-shm`,
/// `-journal`), a name to move it aside to. Beside the file a symlink names, as SQLite resolves
/// it.
pub fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = resolved(path).into_os_string();
    name.push(suffix);
    name.into()
}

/// `path` with its symlinks resolved, also when the file is not there (yet): a dangling link
/// names the file SQLite would make.
pub(super) fn resolved(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    let target = std::fs::read_link(path).map(|t| dir_of(path).join(t)).unwrap_or_else(|_| path.into());
    match (std::fs::canonicalize(dir_of(&target)), target.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => target,
    }
}

pub(super) fn file_identity(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

/// How many damaged databases are kept beside the database: enough to look into, not so many
/// that a disk that keeps damaging them fills with copies of a cache.
const KEEP_DAMAGED: usize = 3;

/// Renames a database (and its WAL files) to `<name>.corrupt-<unix time>[-n]`, keeping it and
/// the newest of those moved aside before, `KEEP_DAMAGED` in all.
pub(super) fn move_aside(path: &Path) -> Result<PathBuf> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let earlier = damaged_beside(path);
    // Named after every earlier one (in the same second, or with the clock set back), so that
    // the newest is the one last in order; never over one: each is kept.
    let (stamp, first) = match earlier.last() {
        Some(&((stamp, n), _)) if stamp >= now => (stamp, n + 1),
        _ => (now, 0),
    };
    let aside = (first..)
        .map(|n| match n {
            0 => sidecar(path, &format!(".corrupt-{stamp}")),
            n => sidecar(path, &format!(".corrupt-{stamp}-{n}")),
        })
        .find(|p| !p.exists())
        .expect("an unused name");
    for suffix in ["", "-wal", "-shm"] {
        let (from, to) = (sidecar(path, suffix), sidecar(&aside, suffix));
        match std::fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Io { path: from, source }),
        }
    }
    // The oldest go (best effort: what cannot be removed stays).
    let damaged = damaged_beside(path);
    for (_, old) in &damaged[..damaged.len().saturating_sub(KEEP_DAMAGED)] {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(sidecar(old, suffix));
        }
        tracing::info!(removed = %old.display(), kept = KEEP_DAMAGED, "removed an older damaged database");
    }
    Ok(aside)
}

/// The databases moved aside beside `path`, oldest first, by the time and count in their names
/// (`<name>.corrupt-<unix time>[-<n>]`; other names are not ours).
fn damaged_beside(path: &Path) -> Vec<((u64, u64), PathBuf)> {
    use std::os::unix::ffi::OsStrExt;
    let main = resolved(path);
    let (Some(dir), Some(name)) = (main.parent(), main.file_name()) else { return Vec::new() };
    let prefix = [name.as_bytes(), b".corrupt-"].concat();
    let order = |suffix: &[u8]| -> Option<(u64, u64)> {
        let suffix = std::str::from_utf8(suffix).ok()?;
        let (stamp, n) = suffix.split_once('-').unwrap_or((suffix, "0"));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        (digits(stamp) && digits(n)).then(|| Some((stamp.parse().ok()?, n.parse().ok()?)))?
    };
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut damaged: Vec<_> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            Some((order(e.file_name().as_bytes().strip_prefix(prefix.as_slice())?)?, e.path()))
        })
        .collect();
    damaged.sort();
    damaged
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, OpenFlags};

    /// The `immutable` URI names the file whatever bytes its path holds.
    #[test]
    fn an_immutable_uri_names_any_path() {
        use std::os::unix::ffi::OsStrExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(std::ffi::OsStr::from_bytes(b"we?ird #dir %20&x=\xff"));
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("db.sqlite3");
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (42)")
            .unwrap();
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI;
        let c = Connection::open_with_flags(immutable_uri(&path), flags).unwrap();
        assert_eq!(c.query_row("SELECT x FROM t", [], |r| r.get::<_, i64>(0)).unwrap(), 42);
        assert!(!sidecar(&path, "-shm").exists(), "read as it stands, no -shm made");
    }
}
