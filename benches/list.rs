//! `list`'s walks of the index (what the command and a page of the HTTP list read after their
//! refresh): with `--problems` (the conversations that have them found by their own index,
//! then sorted), with `--hidden` (the whole newest-first index read and sorted) and sorted by
//! messages, each against the plain newest-first walk, which reads the index in its own order.

use convmeta::index::{Filter, Index};
use convmeta::store::rows::{Order, SortKey, Within};

use crate::{ms, rounds, scaled, timed};

/// `n` one-line conversations: one in 50 hidden from lists (a `test-` id), one in 200 with a
/// malformed line.
fn archive(logs: &std::path::Path, n: usize) {
    for i in 0..n {
        let id = match i % 50 {
            0 => format!("test-{i:06}"),
            _ => format!("2026-01-01-list-{i:06}"),
        };
        let dir = logs.join(id);
        std::fs::create_dir_all(&dir).unwrap();
        let mut log = format!("{{\"role\": \"user\", \"content\": \"hello {i}\"}}\n");
        if i % 200 == 7 {
            log += "{not JSON\n";
        }
        std::fs::write(dir.join("conversation.jsonl"), log).unwrap();
    }
}

pub fn list() {
    let tmp = tempfile::tempdir().unwrap();
    let (logs, db) = (tmp.path().join("logs"), tmp.path().join("db.sqlite3"));
    let n = scaled(50_000);
    archive(&logs, n);
    let index = Index::open(&logs, &db).unwrap();
    index.refresh().unwrap();
    let status = index.status().unwrap();
    println!(
        "\n## list: {n} conversations ({} hidden, {} with problems), the walk after the refresh, 21 rounds",
        status.hidden, status.with_problems
    );
    println!("| walk | the first 10 | all of them | the first 10 over the newest-first walk's | all over its |");
    println!("|---|---|---|---|---|");
    let newest = Filter::default();
    let cases = [
        ("newest first (the baseline, against itself)", newest),
        ("`--problems`", Filter { within: Within { with_problems: true, ..Within::default() }, ..newest }),
        ("`--hidden`", Filter { within: Within { hidden: true, ..Within::default() }, ..newest }),
        (
            "`--hidden --problems`",
            Filter { within: Within { hidden: true, with_problems: true, ..Within::default() }, ..newest },
        ),
        ("`--sort messages`", Filter { order: Order { by: SortKey::Messages, reverse: false }, ..newest }),
    ];
    for (label, filter) in cases {
        let walk = |filter: &Filter<'_>, limit| {
            timed(|| {
                std::hint::black_box(index.list(limit, filter).unwrap());
            })
        };
        let first = rounds(21, &mut [&mut || walk(&newest, 11), &mut || walk(&filter, 11)]);
        let all = rounds(5, &mut [&mut || walk(&newest, usize::MAX), &mut || walk(&filter, usize::MAX)]);
        println!(
            "| {label} | {:.2} ms | {:.1} ms | {} | {} |",
            ms(first.median(1)),
            ms(all.median(1)),
            first.ratio(1, 0),
            all.ratio(1, 0)
        );
    }
}
