use std::path::PathBuf;

/// Everything the library can fail with. Data problems in an archive are not errors: they are
/// counted on the conversation's row.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}: not a convmeta database; refusing to touch it (pass another --db)")]
    NotOurs(PathBuf),
    #[error("{path}: written by a newer convmeta (schema {found}, this build knows {known})")]
    TooNew { path: PathBuf, found: i64, known: i64 },
    #[error("database {path}: {source}")]
    Sqlite { path: PathBuf, source: rusqlite::Error },
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("logs directory {path}: {source}")]
    Logs { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("no conversation with id {0:?}")]
    NotFound(String),
    #[error("refresh failed: {0}")]
    Refresh(String),
}

pub type Result<T> = std::result::Result<T, Error>;
