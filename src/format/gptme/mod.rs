//! gptme: `<logs>/<id>/conversation.jsonl`, one JSON message per line.

pub mod accumulator;
pub mod item;
pub mod line;
pub mod preview;
pub mod side;
pub mod time;

use std::path::{Path, PathBuf};

pub use accumulator::Accumulator;
pub use side::Side;

/// The log file's name inside a conversation directory.
pub const LOG_FILE: &str = "conversation.jsonl";

/// gptme's logs directory: `$GPTME_LOGS_HOME` if set and non-blank, else
/// `$XDG_DATA_HOME/gptme/logs`, else `~/.local/share/gptme/logs`.
pub fn default_logs_dir() -> Option<PathBuf> {
    let nonblank = |k: &str| std::env::var_os(k).filter(|v| !v.to_string_lossy().trim().is_empty());
    if let Some(d) = nonblank("GPTME_LOGS_HOME") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = nonblank("XDG_DATA_HOME") {
        return Some(PathBuf::from(d).join("gptme/logs"));
    }
    nonblank("HOME").map(|h| PathBuf::from(h).join(".local/share/gptme/logs"))
}

/// gptme hides its test and temporary conversations from user listings.
pub fn is_hidden(id: &str) -> bool {
    id.starts_with("tmp") || id.starts_with("test-") || id.contains("gptme-evals-")
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

/// A conversation found on disk.
#[derive(Debug, Clone)]
pub struct Found {
    pub id: String,
    /// `<logs>/<id>`, the logs dir as given (not resolved), as gptme reports paths.
    pub dir: PathBuf,
    /// The log's metadata (symlinks followed), taken while discovering.
    pub log_meta: std::fs::Metadata,
}

impl Found {
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }

    /// The files besides the log that feed the item: watched by their stat stamps.
    pub fn side_paths(&self) -> [PathBuf; 3] {
        [self.dir.clone(), self.dir.join("config.toml"), self.dir.join("branches")]
    }
}

/// The entries of `logs` that may be conversations (UTF-8 names; others are skipped with a
/// warning, as they cannot be an id in JSON). Dot and symlinked directories count.
pub fn list_entries(logs: &Path) -> std::io::Result<Vec<String>> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(logs)? {
        let Ok(entry) = entry else { continue };
        match entry.file_name().into_string() {
            Ok(id) => ids.push(id),
            Err(name) => {
                tracing::warn!(name = ?name, "skipping a conversation directory whose name is not UTF-8")
            }
        }
    }
    Ok(ids)
}

/// The conversation `id` if `<logs>/<id>/conversation.jsonl` exists, of any kind.
pub fn probe(logs: &Path, id: &str) -> Option<Found> {
    let dir = logs.join(id);
    // metadata (not symlink_metadata): symlinked conversation directories count.
    match std::fs::metadata(dir.join(LOG_FILE)) {
        Ok(log_meta) => Some(Found { id: id.to_owned(), dir, log_meta }),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => None,
        Err(e) => {
            tracing::warn!(id, error = %e, "cannot look into conversation directory");
            None
        }
    }
}
