//! Schema migrations: plain SQL files applied in order, tracked by `PRAGMA user_version`.

use rusqlite::{Connection, TransactionBehavior};

/// Every migration, oldest first. Append only: a landed file is never edited.
pub const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_render_items_again.sql"),
    include_str!("../../migrations/0003_read_logs_again.sql"),
    include_str!("../../migrations/0004_agent_index.sql"),
    include_str!("../../migrations/0005_read_agents_again.sql"),
    include_str!("../../migrations/0006_read_configs_again.sql"),
    include_str!("../../migrations/0007_read_context_budgets.sql"),
    include_str!("../../migrations/0008_read_workspace_links.sql"),
    include_str!("../../migrations/0009_read_owner_changes.sql"),
    include_str!("../../migrations/0010_read_logs_as_json_loads_does.sql"),
    include_str!("../../migrations/0011_read_side_files_as_gptme_decodes.sql"),
    include_str!("../../migrations/0012_search_from_the_index.sql"),
    include_str!("../../migrations/0013_read_links_outside_the_archive.sql"),
    include_str!("../../migrations/0014_sum_counts_as_python_adds_them.sql"),
    include_str!("../../migrations/0015_sum_counts_that_are_not_finite.sql"),
    include_str!("../../migrations/0016_render_created_from_mtimes_again.sql"),
    include_str!("../../migrations/0017_usage_by_day.sql"),
    include_str!("../../migrations/0018_index_conversations_with_problems.sql"),
    include_str!("../../migrations/0019_sort_from_the_index.sql"),
];

/// The schema version this build writes.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// Applies the migrations the database has not seen, each in its own transaction. Another
/// process may be applying them too (two commands creating one database): each transaction
/// takes the write lock first and reads the version under it, so each migration runs once.
pub fn apply(conn: &mut Connection) -> rusqlite::Result<()> {
    let version = |c: &Connection| c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0));
    // Up to date, the usual case: no write lock, which would wait on a busy writer.
    if version(conn)? >= latest() {
        return Ok(());
    }
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(sql) = MIGRATIONS.get(version(&tx)?.max(0) as usize) else { return Ok(()) };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version(&tx)? + 1)?;
        tx.commit()?;
    }
}
