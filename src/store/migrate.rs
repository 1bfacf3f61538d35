//! Schema migrations: plain SQL files applied in order, tracked by `PRAGMA user_version`.

use rusqlite::Connection;

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
];

/// The schema version this build writes.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// Applies the migrations the database has not seen, each in its own transaction.
pub fn apply(conn: &mut Connection) -> rusqlite::Result<i64> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(current)
}
