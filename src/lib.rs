//! convmeta: a SQLite metadata sidecar for archives of append-only JSONL conversation logs.
//!
//! Data flows one way: discover the archive's files, diff their stats against the stored state,
//! scan what changed (of a grown file only the new bytes), and write one row per conversation.
//! Readers (the CLI, the HTTP server, SQL tools) read the rows.

pub mod cli;
pub mod error;
pub mod filesystem;
pub mod format;
pub mod index;
pub mod json;
pub mod message_search;
pub mod pynum;
pub mod refresh;
pub mod scan;
pub mod server;
pub mod store;
#[cfg(test)]
mod test_rng;
pub mod usage;
pub mod verify;
pub mod watch;

pub use error::{Error, Result};
pub use index::Index;
