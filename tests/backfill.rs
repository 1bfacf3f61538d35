//! Backfill: parallel, and safe to interrupt with kill -9.

use std::path::Path;
use std::time::Duration;

use crate::util::{convmeta, dump, ok, random_line, Rng};

fn generate(logs: &Path, n: usize, lines: usize) {
    let mut rng = Rng(7);
    for i in 0..n {
        let dir = logs.join(format!("2026-01-01-conv-{i:04}"));
        std::fs::create_dir_all(&dir).unwrap();
        let text: String = (0..lines).map(|_| random_line(&mut rng)).collect();
        std::fs::write(dir.join("conversation.jsonl"), text).unwrap();
    }
}

#[test]
fn killed_backfills_resume_to_the_same_rows() {
    // 20 kill -9 at random moments, then one more run: the rows of an uninterrupted run.
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    generate(&logs, 400, 400);
    let clean = tmp.path().join("clean.sqlite3");
    ok({
        let mut c = convmeta();
        c.arg("backfill").arg("--logs").arg(&logs).arg("--db").arg(&clean);
        c
    });

    let db = tmp.path().join("killed.sqlite3");
    let run = || {
        let mut c = convmeta();
        c.arg("backfill").arg("--logs").arg(&logs).arg("--db").arg(&db).arg("--jobs").arg("2");
        c
    };
    let mut rng = Rng(99);
    for _ in 0..20 {
        let mut child = run().stdout(std::process::Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(20 + rng.below(300)));
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
    }
    ok(run());
    assert_eq!(dump(&db), dump(&clean));
    assert_eq!(dump(&clean).len(), 400);
}
