//! `verify`: whether the index holds what reading the whole archive afresh gives. The archive
//! is indexed again from nothing into a database of its own (under `$TMPDIR`, removed after),
//! the index is refreshed as any command refreshes it, and the two are compared row by row
//! (`store::compare`). A difference is either a change no stat shows (a file rewritten with
//! its size and mtime kept) or a bug in reading on from where a refresh stopped.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use rusqlite::types::Value;

use crate::error::{Error, Result};
use crate::format::gptme::{Accumulator, Side};
use crate::refresh::Stats;
use crate::store::compare::{self, Comparison, Is, RowDifference};
use crate::Index;

/// What `verify` found.
#[derive(Debug)]
pub struct Verification {
    /// The index against the archive read afresh.
    pub comparison: Comparison,
    /// The reading afresh: what it read, and how long it took.
    pub afresh: Arc<Stats>,
    /// The index's own refresh, just before the comparison.
    pub refreshed: Arc<Stats>,
}

/// Indexes `index`'s archive afresh with `read_afresh` (a refresh of the empty index it is
/// given), refreshes `index` with `refresh` (the command's refreshes, showing their progress),
/// and compares the two.
pub fn verify(
    index: &Index,
    read_afresh: impl FnOnce(&Index) -> Result<Arc<Stats>>,
    refresh: impl FnOnce(&Index) -> Result<Arc<Stats>>,
) -> Result<Verification> {
    let tmp = std::env::temp_dir();
    remove_abandoned(&tmp);
    let (scratch, _held) = make_scratch(&tmp)?;
    let db = scratch.path().join("afresh.sqlite3");
    // Closed again once read: one file, whole.
    let afresh = read_afresh(&Index::open(index.logs(), &db)?)?;
    // After the reading afresh, so a change while it read is in the index's stamps too.
    let refreshed = refresh(index)?;
    let mut comparison = compare::compare(index.store().path(), &db)?;
    remove(scratch)?;
    comparison.differences.retain(|_, rows| {
        rows.retain_mut(|row| {
            if let (compare::STATE, Is::Unequal(columns)) = (row.table.as_str(), &mut row.is) {
                columns.retain(|(column, index, afresh)| !same_state(column, index, afresh));
                return !columns.is_empty();
            }
            true
        });
        !rows.is_empty()
    });
    Ok(Verification { comparison, afresh, refreshed })
}

/// Whether a conversation's differences show its log rewritten in place: the bytes a refresh
/// checks before reading on (the first 4 KiB and the 4 KiB before where it stopped) are not
/// those the index read, though the log's size, mtime and inode are as they were. Otherwise
/// nothing the index keeps shows a change: a file changed in place where no check looks, or a
/// bug.
pub fn log_rewritten(rows: &[RowDifference]) -> bool {
    rows.iter().any(|row| match &row.is {
        Is::Unequal(columns) => row.table == compare::STATE && columns.iter().any(|(c, ..)| c == "log_fingerprint"),
        _ => false,
    })
}

/// How a scratch directory's name begins: then the process's id (for people: it is the lock
/// that tells), a dash and random letters.
const SCRATCH: &str = "convmeta-verify-";

/// Makes this verify's scratch directory in `tmp`, and locks it (`flock`) for as long as the
/// returned file is held: the lock, which the kernel lets go when its holder ends however it
/// ends, is how a later verify knows the directory abandoned, not the process id in its name,
/// which another process may have since (or which another PID namespace sharing `tmp` sees
/// otherwise).
fn make_scratch(tmp: &Path) -> Result<(tempfile::TempDir, std::fs::File)> {
    let prefix = format!("{SCRATCH}{}-", std::process::id());
    let failed = |path: &Path, e: std::io::Error| {
        // tempfile's message ends with the path it tried, random: the directory is what helps.
        let said = e.to_string();
        let why = said.split_once(" at path ").map_or(said.as_str(), |(why, _)| why);
        let why = format!("cannot make the scratch index there: {why} (set TMPDIR to another directory)");
        Error::Io { path: path.to_owned(), source: std::io::Error::new(e.kind(), why) }
    };
    loop {
        let scratch = tempfile::Builder::new().prefix(&prefix).tempdir_in(tmp).map_err(|e| failed(tmp, e))?;
        let held = std::fs::File::open(scratch.path()).map_err(|e| failed(scratch.path(), e))?;
        // Blocking: another verify that took it for abandoned in the moment before holds the
        // lock while it removes it; then it is gone, and another is made.
        held.lock().map_err(|e| failed(scratch.path(), e))?;
        let still_there = std::fs::symlink_metadata(scratch.path())
            .is_ok_and(|m| held.metadata().is_ok_and(|h| (h.dev(), h.ino()) == (m.dev(), m.ino())));
        if still_there {
            return Ok((scratch, held));
        }
    }
}

/// Removes the scratch directories in `tmp` that verifications left behind when they ended
/// without removing them (killed, or stopped by a signal nothing caught): this user's, whose
/// lock no process holds. A live one's is left alone.
fn remove_abandoned(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else { return };
    let me = unsafe { libc::geteuid() };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let named = name.to_str().and_then(|n| n.strip_prefix(SCRATCH)?.split_once('-')?.0.parse::<u32>().ok());
        // Not following a symlink: only a directory of this user's own.
        let ours = entry.metadata().is_ok_and(|m| m.is_dir() && m.uid() == me);
        if named.is_none() || !ours {
            continue;
        }
        // Held while it is removed, so that its maker, if it is just starting, makes another.
        let Ok(dir) = std::fs::File::open(entry.path()) else { continue };
        if dir.try_lock().is_ok() {
            tracing::info!(path = %entry.path().display(), "removing a scratch index an interrupted verify left");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Removes the scratch directory, saying where it is if that fails.
fn remove(scratch: tempfile::TempDir) -> Result<()> {
    let path = scratch.path().to_path_buf();
    scratch.close().map_err(|source| Error::Io { path, source })
}

/// Whether two stored values of a state's column are the same state, however written: JSON
/// that another convmeta wrote, without a field added since, reads as that field's default.
fn same_state(column: &str, index: &Value, afresh: &Value) -> bool {
    fn read<T: serde::de::DeserializeOwned>(v: &Value) -> Option<T> {
        match v {
            Value::Text(t) => serde_json::from_str(t).ok(),
            _ => None,
        }
    }
    match column {
        "accumulator" => read::<Accumulator>(index).is_some_and(|i| read(afresh) == Some(i)),
        "side" => read::<Side>(index).is_some_and(|i| read(afresh) == Some(i)),
        _ => false,
    }
}
