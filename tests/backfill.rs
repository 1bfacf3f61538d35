//! Backfill: parallel, and safe to interrupt with kill -9.

use std::path::PathBuf;
use std::time::Duration;

use crate::util::{backfill, dump, ok, random_line, Rng};

/// A temporary archive of `n` conversations of `lines` random lines each: the directory that
/// holds it (databases go there too), and its logs directory.
fn generated(n: usize, lines: usize) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let mut rng = Rng(7);
    for i in 0..n {
        let dir = logs.join(format!("2026-01-01-conv-{i:04}"));
        std::fs::create_dir_all(&dir).unwrap();
        let text: String = (0..lines).map(|_| random_line(&mut rng)).collect();
        std::fs::write(dir.join("conversation.jsonl"), text).unwrap();
    }
    (tmp, logs)
}

/// [`generated`], and a database an uninterrupted default backfill of it made, to compare with.
pub(crate) fn generated_and_backfilled(n: usize, lines: usize) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let (tmp, logs) = generated(n, lines);
    let clean = tmp.path().join("clean.sqlite3");
    ok(backfill(&logs, &clean));
    (tmp, logs, clean)
}

#[test]
fn killed_backfills_resume_to_the_same_rows() {
    // 20 kill -9 at random moments, then one more run: the rows of an uninterrupted run.
    let (tmp, logs, clean) = generated_and_backfilled(400, 400);

    let db = tmp.path().join("killed.sqlite3");
    let run = || {
        let mut c = backfill(&logs, &db);
        c.arg("--jobs").arg("2");
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

/// `--jobs` past what helps reads on `MAX_JOBS` threads, and says so: 10,000 threads had made a
/// backfill of 10,000 conversations ten times slower and forty times larger in memory.
#[test]
fn more_jobs_than_help_are_capped_and_said() {
    let (tmp, logs, clean) = generated_and_backfilled(300, 3);
    let db = tmp.path().join("many.sqlite3");
    let out = backfill(&logs, &db).arg("--jobs").arg("100000").output().unwrap();
    assert!(out.status.success());
    let said = String::from_utf8(out.stderr).unwrap();
    let cap = convmeta::refresh::MAX_JOBS;
    assert!(said.contains(&format!("--jobs 100000: reading on {cap} threads, the most that helps")), "{said}");
    assert_eq!(dump(&db), dump(&clean));
    // Up to the cap, nothing is said.
    let out = backfill(&logs, &tmp.path().join("cap.sqlite3")).arg("--jobs").arg(cap.to_string()).output().unwrap();
    assert_eq!((out.status.success(), String::from_utf8(out.stderr).unwrap()), (true, String::new()));
}

/// What the progress bar is told: the sweep's count of entries (each looked at once, on the
/// sweep's threads) before any log is read, then the logs to read and their bytes, each read
/// once. A second backfill reads nothing, and says so.
#[test]
fn progress_follows_the_sweep_then_the_reading() {
    use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Told {
        sweeping: Mutex<Vec<u64>>,
        swept: AtomicU64,
        start: Mutex<Vec<(u64, u64, u64)>>, // files, bytes, entries swept by then
        files: AtomicU64,
        bytes: AtomicU64,
    }
    impl convmeta::refresh::Progress for Told {
        fn sweeping(&self, conversations: u64) {
            self.sweeping.lock().unwrap().push(conversations);
        }
        fn swept(&self) {
            self.swept.fetch_add(1, SeqCst);
        }
        fn start(&self, files: u64, bytes: u64) {
            self.start.lock().unwrap().push((files, bytes, self.swept.load(SeqCst)));
        }
        fn advance(&self, files: u64, bytes: u64) {
            self.files.fetch_add(files, SeqCst);
            self.bytes.fetch_add(bytes, SeqCst);
        }
    }
    // More than the sweep does on one thread (256 a thread), so its threads run.
    let (tmp, logs) = generated(600, 3);
    let total: u64 = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| std::fs::metadata(e.unwrap().path().join("conversation.jsonl")).unwrap().len())
        .sum();
    let index = convmeta::Index::open(&logs, &tmp.path().join("db.sqlite3")).unwrap();
    let refresh_telling = |told: &Told| {
        let opts = convmeta::refresh::Options { progress: Some(told), ..Default::default() };
        index.refresh_with(&opts).unwrap()
    };
    let told = Told::default();
    refresh_telling(&told);
    assert_eq!(*told.sweeping.lock().unwrap(), [600]);
    assert_eq!(told.swept.load(SeqCst), 600);
    assert_eq!(*told.start.lock().unwrap(), [(600, total, 600)], "the reading starts after the whole sweep");
    assert_eq!((told.files.load(SeqCst), told.bytes.load(SeqCst)), (600, total));

    std::thread::sleep(Duration::from_millis(50)); // past the clock tick of the writes
    index.refresh().unwrap();
    let again = Told::default();
    refresh_telling(&again);
    assert_eq!((again.swept.load(SeqCst), again.start.lock().unwrap().clone()), (600, vec![(0, 0, 600)]));
    assert_eq!(again.files.load(SeqCst), 0);
}

/// The summary gives the pace in conversations and in bytes, each as it reads best: small
/// conversations are many a second and few megabytes.
#[test]
fn the_summary_says_how_fast_it_read() {
    let (tmp, logs) = generated(50, 2);
    let db = tmp.path().join("db.sqlite3");
    let run = || ok(backfill(&logs, &db));
    let out = run();
    let line = out.lines().next().unwrap();
    assert!(line.starts_with("indexed 50 conversations: 50 read whole, "), "{out}");
    // Under 10 MB/s (a small archive's time goes to opening files) with one decimal, not "0".
    let mb = line.rsplit_once(", ").unwrap().1.strip_suffix(" MB/s)").expect(line);
    let rate: f64 = mb.parse().expect(line);
    assert_eq!(mb.contains('.'), rate < 10.0, "{out}");
    assert!(rate > 0.0 && line.contains(" conversations/s, "), "{out}");
    std::thread::sleep(Duration::from_millis(50));
    let out = run();
    assert!(out.contains("50 unchanged") && !out.contains("/s"), "nothing read, no pace: {out}");
}

/// Ctrl-C on a terminal clears the bar and says what the interruption keeps, with the shell's
/// exit code for it (130); the next backfill goes on from there and ends with the rows of an
/// uninterrupted one. (Before, the process died at once, half a bar left on the screen.)
#[test]
fn ctrl_c_on_a_terminal_says_what_is_kept() {
    let (tmp, logs, clean) = generated_and_backfilled(600, 200);
    let db = tmp.path().join("interrupted.sqlite3");
    let mut sent = false;
    let (shown, status) = crate::util::on_terminal_watched(backfill(&logs, &db), move |shown, pid| {
        // Once it is reading: the bar counts files.
        if !sent && shown.contains("/600 files") {
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
            sent = true;
        }
    });
    assert_eq!(status.code(), Some(130), "{shown}");
    let said = shown.find("convmeta: interrupted with ").expect(&shown);
    assert!(shown[said..].contains(" of 600 conversations read; all but the last 0.5 s of that is kept"), "{shown}");
    // The bar was cleared (ESC [2K) just before, and not drawn again after.
    assert!(shown[..said].ends_with("\x1b[2K"), "{shown:?}");
    assert!(!shown[said..].contains(" files "), "{shown:?}");
    // The next one reads what was not kept, and ends with the rows of an uninterrupted one.
    let out = ok(backfill(&logs, &db));
    assert!(out.starts_with("indexed 600 conversations: "), "{out}");
    assert_eq!(dump(&db), dump(&clean));
}

/// On a terminal, the bar shows the sweep's count and then the files and bytes read (in MB, as
/// the summary counts them, with the rate and an ETA), and is cleared before the summary.
/// Without one (every other test), nothing but the summary is printed.
#[test]
fn on_a_terminal_the_bar_shows_the_sweep_then_the_reading() {
    let (tmp, logs) = generated(300, 20);
    let (shown, success) = crate::util::on_terminal(backfill(&logs, &tmp.path().join("db.sqlite3")));
    assert!(success, "{shown}");
    let sweep = shown.find("/300 conversations looked at").expect(&shown);
    let reading = shown.find("/300 files").expect(&shown);
    let summary = shown.find("indexed 300 conversations: 300 read whole").expect(&shown);
    assert!(sweep < reading && reading < summary, "{shown}");
    let frame = shown[reading..].split(['\r', '\n']).next().unwrap_or_default();
    assert!(frame.contains("B/s  ETA ") && !frame.contains("iB"), "bytes in kB and MB: {frame:?}");
    // The summary is on a line of its own: the bar was cleared (ESC [2K) before it.
    assert!(shown[..summary].trim_end_matches(['\r', '\n']).ends_with("\x1b[2K"), "{shown:?}");
}
