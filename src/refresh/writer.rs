//! The writes of one refresh: one transaction, or one every so often during a backfill.

use std::time::{Duration, Instant};

use crate::error::Result;
use crate::store::Store;

/// Writes in one transaction, or in several (committing every `every`) during a backfill.
pub(super) struct Writer<'a> {
    pub(super) store: &'a Store,
    pub(super) conn: &'a rusqlite::Connection,
    every: Option<Duration>,
    since: Instant,
    /// A transaction is open: begun by the first write, so a refresh that finds nothing to do
    /// takes no write lock and leaves the database (and its data version) untouched.
    open: bool,
    /// Anything was written.
    pub(super) wrote: bool,
}

impl<'a> Writer<'a> {
    pub(super) fn new(store: &'a Store, conn: &'a rusqlite::Connection, every: Option<Duration>) -> Self {
        Writer { store, conn, every, since: Instant::now(), open: false, wrote: false }
    }

    pub(super) fn apply(&mut self, f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<()>) -> Result<()> {
        if !self.open {
            exec(self.conn, "BEGIN IMMEDIATE").map_err(|e| self.store.err(e))?;
            self.open = true;
            self.since = Instant::now();
        }
        f(self.conn).map_err(|e| self.store.err(e))?;
        self.wrote = true;
        if self.every.is_some_and(|every| self.since.elapsed() >= every) {
            self.commit()?;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        exec(self.conn, "COMMIT").map_err(|e| self.store.err(e))?;
        self.open = false;
        self.store.committed();
        Ok(())
    }

    pub(super) fn finish(mut self) -> Result<()> {
        if self.open {
            self.commit()?;
        }
        Ok(())
    }
}

/// Runs a statement without parsing it again each time.
fn exec(conn: &rusqlite::Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        // After a failure the transaction is still open: never leave it half-applied.
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}
