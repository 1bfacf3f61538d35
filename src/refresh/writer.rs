//! The writes of one refresh: one transaction, or one every so often during a backfill, each
//! under the context the refresh read the rows in.

use std::time::{Duration, Instant};

use super::context::{self, Check, Context, Recorded};
use crate::error::Result;
use crate::store::{data_version, Store};

/// Writes in one transaction, or in several (committing every `every`) during a backfill.
pub(super) struct Writer<'a> {
    pub(super) store: &'a Store,
    pub(super) conn: &'a rusqlite::Connection,
    context: &'a Context,
    every: Option<Duration>,
    since: Instant,
    /// A transaction is open: begun by the first write, so a refresh that finds nothing to do
    /// takes no write lock and leaves the database (and its data version) untouched.
    open: bool,
    /// Anything was written.
    pub(super) wrote: bool,
    /// The recorded context as this refresh found or made it, and the data version it was read
    /// at: while no other connection commits, it stands.
    recorded: Option<(Recorded, i64)>,
    /// Reads were forgotten when this refresh adopted its context.
    pub(super) forgot: bool,
    /// Rows whose `created` was rendered in this refresh's zone when it adopted its context.
    pub(super) zone_rendered: usize,
    /// Another process adopted another context after this refresh had looked at the rows: it
    /// writes nothing more (what it read may be of that context), and is to run again.
    pub(super) overtaken: bool,
}

impl<'a> Writer<'a> {
    /// `recorded`: the record as the last refresh left it, if nothing was committed since.
    pub(super) fn new(
        store: &'a Store,
        conn: &'a rusqlite::Connection,
        every: Option<Duration>,
        context: &'a Context,
        recorded: Option<(Recorded, i64)>,
    ) -> Self {
        Writer {
            store,
            conn,
            context,
            every,
            since: Instant::now(),
            open: false,
            wrote: false,
            recorded,
            forgot: false,
            zone_rendered: 0,
            overtaken: false,
        }
    }

    /// Before the refresh looks at the rows: makes its context the recorded one, in a write
    /// transaction when it was not. Says whether reads were forgotten (then every conversation is
    /// to be looked at, not only named ones).
    pub(super) fn adopt_context(&mut self) -> Result<bool> {
        if self.recorded.is_none() {
            let version = data_version(self.conn).map_err(|e| self.store.err(e))?;
            let check = Check::read(self.conn, self.context).map_err(|e| self.store.err(e))?;
            match check.to_adopt() {
                true => self.begin()?,
                false => self.recorded = Some((check.recorded(), version)),
            }
        }
        Ok(self.forgot)
    }

    /// The record this refresh wrote under, for the next refresh (None when overtaken).
    pub(super) fn recorded(&self) -> Option<(Recorded, i64)> {
        self.recorded.filter(|_| !self.overtaken)
    }

    pub(super) fn apply(&mut self, f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<()>) -> Result<()> {
        self.apply_row(false, false, f)
    }

    /// As [`apply`](Self::apply), for a row whose config paths use `HOME` or the working directory.
    pub(super) fn apply_row(
        &mut self,
        uses_home: bool,
        uses_cwd: bool,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<()>,
    ) -> Result<()> {
        if !self.open {
            self.begin()?;
        }
        if self.overtaken {
            return Ok(());
        }
        let (conn, context) = (self.conn, self.context);
        let recorded = self.recorded.as_mut().map(|(recorded, _)| recorded);
        recorded
            .map_or(Ok(()), |recorded| context::record_used(conn, context, recorded, uses_home, uses_cwd))
            .and_then(|()| f(conn))
            .map_err(|e| self.store.err(e))?;
        self.wrote = true;
        if self.every.is_some_and(|every| self.since.elapsed() >= every) {
            self.commit()?;
        }
        Ok(())
    }

    /// Takes the write lock, then checks the recorded context under it: adopted when it is not
    /// this refresh's; overtaken when another process adopted its own since this refresh looked.
    fn begin(&mut self) -> Result<()> {
        let err = |e| self.store.err(e);
        exec(self.conn, "BEGIN IMMEDIATE").map_err(err)?;
        self.open = true;
        self.since = Instant::now();
        let version = data_version(self.conn).map_err(err)?;
        if self.recorded.is_some_and(|(_, at)| at == version) {
            return Ok(()); // nobody else committed: the record stands
        }
        let check = Check::read(self.conn, self.context).map_err(err)?;
        // Another process adopted its context since this refresh looked (a build that counts no
        // generation leaves only the context changed).
        if self.recorded.is_some_and(|(r, _)| r.generation() != check.recorded().generation() || check.to_adopt()) {
            self.overtaken = true;
        }
        let (recorded, adopted) = context::adopt(self.conn, self.context, &check).map_err(err)?;
        self.forgot |= adopted.forgotten > 0;
        self.zone_rendered += adopted.zone_rendered;
        self.recorded = Some((recorded, version));
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
