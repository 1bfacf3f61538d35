//! `convmeta usage`'s sums (what the command and `/api/v2/usage` answer after their refresh)
//! against the same question asked of SQLite directly, on the same index.

use convmeta::index::Index;
use convmeta::store::rows;
use convmeta::store::usage::{UsageBy, UsageQuery};

use crate::{gen, ms, rounds, scaled, timed};

/// The plain SQL a user would write for each grouping: the sums, the conversations counted
/// once, the models named.
fn plain_sql(by: UsageBy) -> String {
    let (key, join) = match by {
        UsageBy::Day => ("d.day", ""),
        UsageBy::Week => ("date(d.day, 'weekday 0', '-6 days')", ""),
        UsageBy::Month => ("substr(d.day, 1, 7)", ""),
        UsageBy::Model => ("d.model", ""),
        UsageBy::Conversation => ("d.conversation_id", ""),
        UsageBy::Workspace => ("c.workspace", " JOIN conversations c ON c.id = d.conversation_id"),
        UsageBy::Agent => (rows::AGENT, " JOIN conversations c ON c.id = d.conversation_id"),
    };
    format!(
        "SELECT {key} AS k, count(DISTINCT d.conversation_id), sum(d.cost), sum(d.input_tokens), \
         sum(d.output_tokens), sum(d.cache_read_tokens), group_concat(DISTINCT d.model) \
         FROM conversation_days d{join} GROUP BY k"
    )
}

pub fn usage() {
    let tmp = tempfile::tempdir().unwrap();
    let (logs, db) = (tmp.path().join("logs"), tmp.path().join("db.sqlite3"));
    let n = scaled(10_000);
    gen::usage_archive(&logs, &tmp.path().join("agents"), n);
    let index = Index::open(&logs, &db).unwrap();
    index.refresh().unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let days: i64 = conn.query_row("SELECT count(*) FROM conversation_days", [], |r| r.get(0)).unwrap();
    println!("\n## usage: {n} conversations, {days} rows of `conversation_days`, 11 rounds");
    println!("| grouping | rows | convmeta's sums | plain SQL `GROUP BY` | convmeta over SQL |");
    println!("|---|---|---|---|---|");
    let all = <UsageBy as clap::ValueEnum>::value_variants();
    for &by in all {
        let q = UsageQuery { by, ..UsageQuery::default() };
        let sql = plain_sql(by);
        let mut rows = (0, 0);
        let r = rounds(
            11,
            &mut [&mut || timed(|| rows.0 = index.usage(&q).unwrap().rows.len()), &mut || {
                timed(|| {
                    let mut stmt = conn.prepare_cached(&sql).unwrap();
                    rows.1 = stmt.query_map([], |_| Ok(())).unwrap().count();
                })
            }],
        );
        // convmeta writes lines without a day (none here) and a conversation's own directory
        // as one row each, which plain SQL keeps apart.
        assert!(by == UsageBy::Workspace || rows.0 == rows.1, "{by:?}: {} rows against {}", rows.0, rows.1);
        println!(
            "| {} | {} | {:.1} ms | {:.1} ms | {} |",
            by.name(),
            rows.0,
            ms(r.median(0)),
            ms(r.median(1)),
            r.ratio(0, 1)
        );
    }
}
