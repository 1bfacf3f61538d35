//! gptme: `<logs>/<id>/conversation.jsonl`, one JSON message per line.

pub mod accumulator;
pub mod content;
pub mod item;
pub mod line;
pub mod lowered;
pub mod preview;
pub mod problem_lines;
pub mod project;
pub mod side;
pub mod time;
pub mod toml_file;

use std::path::{Path, PathBuf};

pub use accumulator::Accumulator;
pub use side::Side;

/// The log file's name inside a conversation directory.
pub const LOG_FILE: &str = "conversation.jsonl";
/// The gptme release whose answers convmeta reproduces (checked against it, field by field).
pub const GPTME_VERSION: &str = "0.35.1";
/// gptme builds checked against convmeta's answers (`tools/against-gptme`, `GPTME_VERSION=`):
/// 0.35.1, and later builds whose `detail=true` list equals 0.35.1's and whose default list
/// differs from 0.35.1's only where it now gives what convmeta gives (full-scan values).
pub const GPTME_VERSIONS_CHECKED: &[&str] = &[GPTME_VERSION, "0.35.2.dev20261022"];

/// gptme's logs directory: `$GPTME_LOGS_HOME` if set and non-blank, else `logs` in
/// [`data_dir`]. As gptme reads them, the variables lose surrounding whitespace, and `~` is the
/// password database's home when `$HOME` is unset.
pub fn default_logs_dir() -> Option<PathBuf> {
    logs_home().or_else(|| data_dir().map(|d| d.join("logs")))
}

/// `$GPTME_LOGS_HOME`, if set and non-blank: the logs directory named outright.
pub fn logs_home() -> Option<PathBuf> {
    env_path("GPTME_LOGS_HOME").map(PathBuf::from)
}

/// gptme's data directory: `$XDG_DATA_HOME/gptme`, else `~/.local/share/gptme` if it exists,
/// else the platform's (platformdirs' `user_data_dir`): the same on Linux,
/// `~/Library/Application Support/gptme` on macOS.
pub fn data_dir() -> Option<PathBuf> {
    let home = side::home_dir().filter(|h| !h.is_empty()).map(PathBuf::from);
    data_dir_with(env_path("XDG_DATA_HOME"), home, cfg!(target_vendor = "apple"))
}

fn data_dir_with(xdg_data_home: Option<std::ffi::OsString>, home: Option<PathBuf>, apple: bool) -> Option<PathBuf> {
    if let Some(d) = xdg_data_home {
        return Some(PathBuf::from(d).join("gptme"));
    }
    let home = home?;
    let shared = home.join(".local/share/gptme");
    Some(match apple && !shared.exists() {
        true => home.join("Library/Application Support/gptme"),
        false => shared,
    })
}

/// Where gptme-server 0.35.1 shares the token it made up (when `GPTME_SERVER_TOKEN` is unset)
/// with local clients such as `gptme-server token`, while it runs.
pub fn server_token_file() -> Option<PathBuf> {
    data_dir().map(|d| d.join("server-token"))
}

/// A path-valued variable as gptme reads it: surrounding whitespace dropped, blank as unset.
fn env_path(key: &str) -> Option<std::ffi::OsString> {
    let value = std::env::var_os(key)?;
    let value = match value.to_str() {
        Some(text) => text.trim_matches(|c: char| preview::is_py_space(c as u32)).into(),
        None => value,
    };
    (!value.is_empty()).then_some(value)
}

/// gptme hides its test and temporary conversations from user listings.
pub fn is_hidden(id: &str) -> bool {
    id.starts_with("tmp") || id.starts_with("test-") || id.contains("gptme-evals-")
}

/// A name that can be an entry of the logs dir, as a listing yields them: what a refresh of
/// named conversations accepts. Looser than [`is_valid_id`], which is for ids in requests: a
/// directory `a..b`, or one with a tab in its name, is listed by gptme and by a full refresh.
pub fn is_entry_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// gptme's rules for a conversation id: not empty, no `/` or `\\`, not `.` or `..` (nor
/// containing `..`), at most 255 bytes, no control characters.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && !id.contains("..")
        && !id.contains(['/', '\\'])
        && id.len() <= 255
        && !id.chars().any(char::is_control)
}

/// The error gptme-server gives for an id [`is_valid_id`] refuses: its checks run in order,
/// and only length has its own message (text edged with whitespace fails before it).
pub fn id_refusal(id: &str) -> &'static str {
    let trimmed = id.trim_matches(|c: char| preview::is_py_space(c as u32));
    if !trimmed.is_empty() && trimmed.len() == id.len() && id.len() > 255 {
        "conversation_id too long"
    } else {
        "Invalid conversation_id"
    }
}

/// What a stat says, for telling whether a file changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    pub is_file: bool,
    pub ino: u64,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
    /// Permission bits, owner and group: a chmod, chown or chgrp moves nothing else, and can
    /// make an unreadable file readable.
    pub mode: u32,
    /// See `mode`.
    pub uid: u32,
    /// See `mode`.
    pub gid: u32,
}

impl From<&std::fs::Metadata> for FileStat {
    fn from(m: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        FileStat {
            is_file: m.is_file(),
            ino: m.ino(),
            size: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
        }
    }
}

impl From<rustix::fs::Stat> for FileStat {
    #[allow(clippy::unnecessary_cast)] // the fields' types differ between Linux and macOS
    fn from(st: rustix::fs::Stat) -> Self {
        FileStat {
            is_file: rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile,
            ino: st.st_ino,
            size: st.st_size as u64,
            mtime: st.st_mtime,
            mtime_nsec: st.st_mtime_nsec as i64,
            mode: st.st_mode as u32 & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
        }
    }
}

/// A conversation found on disk, with the stats that tell whether it changed.
#[derive(Debug, Clone)]
pub struct Found {
    pub id: String,
    /// `<logs>/<id>`, the logs dir as given (not resolved), as gptme reports paths.
    pub dir: PathBuf,
    /// The log (symlinks followed).
    pub log: FileStat,
    /// The directory itself, `config.toml` and `branches/` (None when absent): the side files
    /// whose changes feed the name, workspace and branch count.
    pub side: [Option<FileStat>; 3],
}

impl Found {
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }
}

/// The entries of `logs` that may be conversations (UTF-8 names; others are skipped with a
/// warning: gptme's id for one holds lone surrogates, which a Rust string cannot). Dot and
/// symlinked directories count. A listing cut short by an error fails whole: the conversations
/// it missed would count as deleted.
pub fn list_entries(logs: &Path) -> std::io::Result<Vec<String>> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(logs)? {
        let entry = entry?;
        match entry.file_name().into_string() {
            Ok(id) => ids.push(id),
            Err(name) => match first_time(format!("{}\0{name:?}", logs.display())) {
                true => tracing::warn!(?name, "skipping a conversation directory whose name is not UTF-8 (said once)"),
                false => tracing::debug!(?name, "skipping a conversation directory whose name is not UTF-8"),
            },
        }
    }
    Ok(ids)
}

/// The conversation `id` if `<logs>/<id>/conversation.jsonl` exists, of any kind. Stats are
/// taken relative to `logs_fd` (the logs dir, opened once per refresh): the logs path is walked
/// once, not once per file, and a conversation costs four stats, no open.
pub fn probe(logs: &Path, logs_fd: rustix::fd::BorrowedFd<'_>, id: &str) -> Option<Found> {
    use rustix::fs::{statat, AtFlags};
    use rustix::io::Errno;
    // Paths through `id` follow a symlinked conversation directory, as gptme's glob does.
    let stat = |name: &str| statat(logs_fd, format!("{id}/{name}"), AtFlags::empty());
    let log = match stat(LOG_FILE) {
        Ok(st) => FileStat::from(st),
        Err(Errno::NOENT | Errno::NOTDIR) => return None,
        Err(e) => {
            warn_once_cannot_stat(logs, id, e);
            return None;
        }
    };
    let side = [
        statat(logs_fd, id, AtFlags::empty()).ok().map(FileStat::from),
        stat("config.toml").ok().map(FileStat::from),
        stat("branches").ok().map(FileStat::from),
    ];
    Some(Found { id: id.to_owned(), dir: logs.join(id), log, side })
}

/// Says that a conversation's log cannot be looked at (a symlink loop, a directory this user
/// may not enter) once per process.
fn warn_once_cannot_stat(logs: &Path, id: &str, e: rustix::io::Errno) {
    match first_time(format!("{}\0{id}\0{}", logs.display(), e.raw_os_error())) {
        true => tracing::warn!(id, error = %e, "cannot stat conversation log; it is not listed (said once)"),
        false => tracing::debug!(id, error = %e, "cannot stat conversation log"),
    }
}

/// Whether this process meets `what` for the first time. A server lists and sweeps the archive
/// again and again: a lasting oddity of an entry of it is worth one warning, not one each time.
fn first_time(what: String) -> bool {
    use std::collections::HashSet;
    use std::sync::{LazyLock, Mutex};
    static MET: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Default::default);
    MET.lock().unwrap_or_else(|p| p.into_inner()).insert(what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_directory_is_where_gptme_puts_it_on_each_platform() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().to_path_buf();
        let data = |xdg: Option<&str>, apple| data_dir_with(xdg.map(Into::into), Some(home.clone()), apple).unwrap();
        assert_eq!(data(Some("/x"), true), Path::new("/x/gptme"));
        assert_eq!(data(Some("/x"), false), Path::new("/x/gptme"));
        assert_eq!(data(None, false), home.join(".local/share/gptme"));
        assert_eq!(data(None, true), home.join("Library/Application Support/gptme"));
        // gptme's own fallback, taken on macOS too when it exists.
        std::fs::create_dir_all(home.join(".local/share/gptme")).unwrap();
        assert_eq!(data(None, true), home.join(".local/share/gptme"));
        assert_eq!(data_dir_with(None, None, false), None);
    }
}
