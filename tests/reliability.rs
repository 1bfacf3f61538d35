//! Faults, concurrency and damage: writers racing the server, kill -9, a database destroyed
//! under a running server. Longer runs: `CONVMETA_SOAK=1 cargo test --release -- reliability`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use convmeta::server::Config;
use serde_json::Value;

use crate::util::{backfill, client, convmeta, dump, fail, in_own_process, ok, parse, Rng, Server};

fn soak() -> bool {
    std::env::var_os("CONVMETA_SOAK").is_some()
}

fn line(n: u64) -> String {
    format!(
        "{{\"role\": \"assistant\", \"content\": \"line {n} with some text\", \"timestamp\": \"2026-01-01T10:00:00Z\", \"metadata\": {{\"model\": \"m\", \"usage\": {{\"input_tokens\": 10, \"output_tokens\": 1}}, \"cost\": 0.001}}}}\n"
    )
}

/// Every item of a fresh index built from the archive as it is now.
fn fresh_items(logs: &Path) -> BTreeMap<String, Value> {
    let tmp = tempfile::tempdir().unwrap();
    let index = convmeta::Index::open(logs, &tmp.path().join("fresh.sqlite3")).unwrap();
    index.refresh().unwrap();
    index
        .list(100_000, &Default::default())
        .unwrap()
        .iter()
        .map(|i| parse(i))
        .map(|v| (v["id"].as_str().unwrap().to_owned(), v))
        .collect()
}

fn items(server: &Server) -> (u16, BTreeMap<String, Value>) {
    let r = client().get(server.url("/api/v2/conversations?limit=1000")).send().unwrap();
    let status = r.status().as_u16();
    let body = parse(&r.text().unwrap());
    let items = body
        .as_array()
        .map(|a| a.iter().map(|v| (v["id"].as_str().unwrap().to_owned(), v.clone())).collect())
        .unwrap_or_default();
    (status, items)
}

/// A value one thread changes along with the files and others read: (generation << 16 | value),
/// the generation odd while a change is under way.
struct Tracked(AtomicU64);

impl Tracked {
    fn new(value: u64) -> Tracked {
        Tracked(AtomicU64::new(value))
    }

    fn load(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    fn value(&self) -> u64 {
        self.load() & 0xffff
    }

    fn change(&self, value: u64, act: impl FnOnce()) {
        let generation = self.load() >> 16;
        self.0.store((generation + 1) << 16 | self.value(), Ordering::SeqCst);
        act();
        self.0.store((generation + 2) << 16 | value, Ordering::SeqCst);
    }

    /// The value, if no change was under way at `before` and none began until `after`.
    fn settled(before: u64, after: u64) -> Option<u64> {
        (before == after && (before >> 16).is_multiple_of(2)).then_some(before & 0xffff)
    }
}

#[test]
fn writers_racing_the_server_lose_nothing_in_sweep_mode() {
    writers_racing_the_server_lose_nothing(false);
}

#[test]
fn writers_racing_the_server_lose_nothing_in_watch_mode() {
    writers_racing_the_server_lose_nothing(true);
}

/// The least a race must have done to count: answers checked, edits and churns checked
/// exactly, lines appended.
const MIN_ANSWERS: u64 = 20;
const MIN_EXACT: u64 = 20;
const MIN_LINES: u64 = 2_000;

fn writers_racing_the_server_lose_nothing(watch: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let growers = 6;
    for i in 0..growers {
        std::fs::create_dir_all(logs.join(format!("grow-{i}"))).unwrap();
        std::fs::write(logs.join(format!("grow-{i}/conversation.jsonl")), "").unwrap();
    }
    for i in 0..3 {
        std::fs::create_dir_all(logs.join(format!("edit-{i}"))).unwrap();
        std::fs::write(logs.join(format!("edit-{i}/conversation.jsonl")), line(0)).unwrap();
    }
    let server = Server::start(&logs, &tmp.path().join("db.sqlite3"), Config::default(), watch);
    let stop = AtomicBool::new(false);
    // Complete lines written so far, per grower.
    let written: Vec<AtomicU64> = (0..growers).map(|_| AtomicU64::new(0)).collect();
    let duration = Duration::from_secs(if soak() { 60 } else { 4 });
    let answers = AtomicU64::new(0);
    // Edits and churns checked exactly.
    let exact = AtomicU64::new(0);
    // What the editor has done: per edited conversation its lines; which churned ones exist.
    let edits: Vec<Tracked> = (0..3).map(|_| Tracked::new(1)).collect();
    let churned = Tracked::new(0);
    std::thread::scope(|s| {
        for (i, count) in written.iter().enumerate() {
            let (logs, stop) = (&logs, &stop);
            s.spawn(move || {
                let mut rng = Rng(i as u64 + 1);
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(logs.join(format!("grow-{i}/conversation.jsonl")))
                    .unwrap();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let text = line(n);
                    if rng.chance(20) {
                        // Written in pieces: readers see half a line in between.
                        let cut = 1 + rng.below(text.len() as u64 - 2) as usize;
                        f.write_all(&text.as_bytes()[..cut]).unwrap();
                        std::thread::sleep(Duration::from_micros(300));
                        f.write_all(&text.as_bytes()[cut..]).unwrap();
                    } else {
                        f.write_all(text.as_bytes()).unwrap();
                    }
                    n += 1;
                    count.store(n, Ordering::SeqCst);
                    if n % 2 == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            });
        }
        // gptme's edit: temp file + rename; plus conversations created and deleted.
        s.spawn(|| {
            let mut rng = Rng(99);
            let mut round = 0;
            while !stop.load(Ordering::Relaxed) {
                let i = rng.below(3);
                let tmp_file = logs.join(format!("edit-{i}/.conversation.jsonl.tmp"));
                let lines = 1 + rng.below(30);
                let text: String = (0..lines).map(line).collect();
                std::fs::write(&tmp_file, text).unwrap();
                edits[i as usize].change(lines, || {
                    std::fs::rename(&tmp_file, logs.join(format!("edit-{i}/conversation.jsonl"))).unwrap();
                });
                let k = round % 5;
                let churn = logs.join(format!("churn-{k}"));
                churned.change(churned.value() ^ 1 << k, || {
                    if churn.exists() {
                        std::fs::remove_dir_all(&churn).unwrap();
                    } else {
                        std::fs::create_dir_all(&churn).unwrap();
                        std::fs::write(churn.join("conversation.jsonl"), line(round)).unwrap();
                    }
                });
                round += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        // A client asking 20 times a second; growing conversations never go backwards and never
        // count a line twice.
        s.spawn(|| {
            // The writers stop when this thread ends, a failed assertion included.
            struct StopOnDrop<'a>(&'a AtomicBool);
            impl Drop for StopOnDrop<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::Relaxed);
                }
            }
            let _stop = StopOnDrop(&stop);
            let started = Instant::now();
            let mut last: BTreeMap<String, (u64, u64)> = BTreeMap::new();
            // At least `duration`, and on a slow machine longer, until the race has had its
            // minimum of answers, exact checks and lines (asserted below): not a speed test.
            let enough = || {
                answers.load(Ordering::Relaxed) >= MIN_ANSWERS
                    && exact.load(Ordering::Relaxed) >= MIN_EXACT
                    && written.iter().map(|w| w.load(Ordering::SeqCst)).sum::<u64>() > MIN_LINES
            };
            while started.elapsed() < duration || (!enough() && started.elapsed() < 30 * duration) {
                let edited_before: Vec<u64> = edits.iter().map(Tracked::load).collect();
                let churned_before = churned.load();
                let before: Vec<u64> = written.iter().map(|w| w.load(Ordering::SeqCst)).collect();
                let (status, now) = items(&server);
                let after: Vec<u64> = written.iter().map(|w| w.load(Ordering::SeqCst)).collect();
                let edited_after: Vec<u64> = edits.iter().map(Tracked::load).collect();
                let churned_after = churned.load();
                assert_eq!(status, 200);
                // An edit or churn that no request overlapped is in the answer exactly.
                for (i, (&b, &a)) in edited_before.iter().zip(&edited_after).enumerate() {
                    if let Some(lines) = Tracked::settled(b, a) {
                        assert_eq!(now[&format!("edit-{i}")]["messages"], lines, "watch={watch}: edit-{i}");
                        exact.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if let Some(bits) = Tracked::settled(churned_before, churned_after) {
                    for k in 0..5 {
                        let id = format!("churn-{k}");
                        assert_eq!(now.contains_key(&id), bits >> k & 1 == 1, "watch={watch}: {id}");
                    }
                    exact.fetch_add(1, Ordering::Relaxed);
                }
                for i in 0..growers {
                    let id = format!("grow-{i}");
                    let item = &now[&id];
                    let (messages, tokens) =
                        (item["messages"].as_u64().unwrap(), item["total_input_tokens"].as_u64().unwrap());
                    // A half-written last line counts as a message (gptme counts it) but is only
                    // used when it parses, so tokens follow complete lines.
                    assert!(
                        messages >= before[i] && messages <= after[i] + 1,
                        "{id}: {messages} not in {}..={}",
                        before[i],
                        after[i] + 1
                    );
                    assert!(tokens >= before[i] * 10 && tokens <= (after[i] + 1) * 10, "{id}: tokens {tokens}");
                    if let Some((m, t)) = last.get(&id) {
                        assert!(messages >= *m && tokens >= *t, "{id} went backwards");
                    }
                    last.insert(id, (messages, tokens));
                }
                answers.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(35)); // about 20 answers a second
            }
        });
    });
    let (answers, exact) = (answers.load(Ordering::Relaxed), exact.load(Ordering::Relaxed));
    assert!(answers >= MIN_ANSWERS && exact >= MIN_EXACT, "{answers} answers, {exact} exact checks");
    let total: u64 = written.iter().map(|w| w.load(Ordering::SeqCst)).sum();
    assert!(total > MIN_LINES, "writers wrote {total} lines");
    eprintln!("racing writers (watch={watch}): {total} lines appended, {answers} answers checked, {exact} edits and churns in them exactly");
    let (_, last) = items(&server);
    assert_eq!(last, fresh_items(&logs), "watch={watch}: the final list equals a fresh index of the same archive");
    // A healthy database under load (checkpoints running beside commits) is never taken for a
    // damaged one.
    assert_eq!(corrupt_files(&tmp.path().join("db.sqlite3")), 0, "nothing moved aside");
}

#[test]
fn serve_killed_at_random_moments_converges() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    for i in 0..30 {
        std::fs::create_dir_all(logs.join(format!("c{i:02}"))).unwrap();
        let text: String = (0..200).map(line).collect();
        std::fs::write(logs.join(format!("c{i:02}/conversation.jsonl")), text).unwrap();
    }
    let db = tmp.path().join("db.sqlite3");
    let kills = if soak() { 100 } else { 20 };
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (logs, stop) = (logs.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 1000;
            while !stop.load(Ordering::Relaxed) {
                let path = logs.join(format!("c{:02}/conversation.jsonl", n % 30));
                std::fs::OpenOptions::new().append(true).open(path).unwrap().write_all(line(n).as_bytes()).unwrap();
                n += 1;
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    let mut rng = Rng(5);
    for _ in 0..kills {
        let mut child = convmeta()
            .arg("serve")
            .arg("--logs")
            .arg(&logs)
            .arg("--db")
            .arg(&db)
            .args(["--addr", "127.0.0.1:0"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(5 + rng.below(120)));
        let _ = child.kill(); // SIGKILL, wherever it is: starting, refreshing, idle
        child.wait().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    // The next start opens the database with no manual step and converges.
    ok(backfill(&logs, &db));
    let clean = tmp.path().join("clean.sqlite3");
    ok(backfill(&logs, &clean));
    assert_eq!(dump(&db), dump(&clean));
}

/// A newer convmeta migrates the database while a server of this one runs (a new version
/// installed, the old server not yet restarted): the old server writes nothing more to it, moves
/// nothing aside, and says why (503); set back, it answers again.
#[test]
fn a_database_a_newer_convmeta_migrated_is_left_to_it() {
    let (tmp, logs) = scratch(2);
    let db = tmp.path().join("db.sqlite3");
    let server = Server::start(&logs, &db, Config::default(), false);
    let url = format!("http://{}/api/v2/conversations", server.addr);
    let messages = || -> Vec<u64> {
        let body = parse(&client().get(&url).send().unwrap().text().unwrap());
        let mut counts: Vec<(String, u64)> = body
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["id"].as_str().unwrap().to_owned(), i["messages"].as_u64().unwrap()))
            .collect();
        counts.sort();
        counts.into_iter().map(|(_, n)| n).collect()
    };
    assert_eq!(messages(), [1, 1]);
    let latest = convmeta::store::migrate::latest();
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.pragma_update(None, "user_version", latest + 1).unwrap();
    let mut log = std::fs::OpenOptions::new().append(true).open(logs.join("c0/conversation.jsonl")).unwrap();
    log.write_all(line(1).as_bytes()).unwrap();
    let response = client().get(&url).send().unwrap();
    assert_eq!(response.status(), 503);
    let said = response.text().unwrap();
    assert!(said.contains("written by a newer convmeta") && said.contains(&format!("schema {}", latest + 1)), "{said}");
    let stored: i64 = conn.query_row("SELECT messages FROM conversations WHERE id = 'c0'", [], |r| r.get(0)).unwrap();
    assert_eq!(stored, 1, "nothing written");
    assert_eq!(corrupt_files(&db), 0, "nothing moved aside");
    conn.pragma_update(None, "user_version", latest).unwrap();
    assert_eq!(messages(), [2, 1]);
}

fn scratch(n: usize) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    for i in 0..n {
        std::fs::create_dir_all(logs.join(format!("c{i}"))).unwrap();
        std::fs::write(logs.join(format!("c{i}/conversation.jsonl")), line(i as u64)).unwrap();
    }
    (tmp, logs)
}

fn corrupt_files(db: &Path) -> usize {
    std::fs::read_dir(db.parent().unwrap())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains(".corrupt-"))
        .count()
}

#[test]
fn a_database_destroyed_under_the_server_is_rebuilt_while_it_keeps_answering() {
    let (tmp, logs) = scratch(12);
    let db = tmp.path().join("cache").join("db.sqlite3");
    let server = Server::start(&logs, &db, Config::default(), false);
    let want = fresh_items(&logs);
    assert_eq!(items(&server), (200, want.clone()));

    // Deleted.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    assert_eq!(items(&server), (200, want.clone()));
    assert!(db.exists(), "rebuilt at the same path");

    // Deleted with its directory (`rm -rf ~/.cache`): it had answered 503 until a restart.
    std::fs::remove_dir_all(db.parent().unwrap()).unwrap();
    assert_eq!(items(&server), (200, want.clone()));
    assert!(db.exists(), "rebuilt at the same path");

    // Deleted alone, its -wal and -shm left: SQLite had read them as the next database's, and
    // the server answered 503 ("no such table") until a restart.
    assert!(Path::new(&format!("{}-wal", db.display())).exists());
    std::fs::remove_file(&db).unwrap();
    assert_eq!(items(&server), (200, want.clone()));

    // Replaced by another convmeta database (a backfill into another file, moved over it): used
    // as it is, not moved aside.
    let other = tmp.path().join("other.sqlite3");
    ok(backfill(&logs, &other));
    let kept = corrupt_files(&db);
    std::fs::rename(&other, &db).unwrap();
    assert_eq!(items(&server), (200, want.clone()));
    assert_eq!(corrupt_files(&db), kept, "a healthy database put in its place is not moved aside");

    // Replaced by a file that is not a database: refused, left as it is, until it goes.
    let notes = tmp.path().join("notes.txt");
    std::fs::write(&notes, "not a database\n").unwrap();
    std::fs::rename(&notes, &db).unwrap();
    for path in ["/api/v2/conversations", "/healthz"] {
        let r = client().get(server.url(path)).send().unwrap();
        assert_eq!(r.status().as_u16(), 503, "{path}");
        assert!(r.text().unwrap().contains("not a convmeta database; refusing to touch it"), "{path}");
    }
    assert_eq!(std::fs::read_to_string(&db).unwrap(), "not a database\n");
    assert_eq!(corrupt_files(&db), kept);
    std::fs::remove_file(&db).unwrap();
    assert_eq!(items(&server), (200, want.clone()));
    assert_eq!(client().get(server.url("/healthz")).send().unwrap().status().as_u16(), 200);

    // The health check says what the last list request met: here the logs directory replaced
    // by a file (it had said 200, the database being readable).
    let aside = tmp.path().join("logs-aside");
    std::fs::rename(&logs, &aside).unwrap();
    std::fs::write(&logs, "").unwrap();
    assert_eq!(items(&server).0, 503);
    let health = client().get(server.url("/healthz")).send().unwrap();
    assert_eq!(health.status().as_u16(), 503);
    assert!(health.text().unwrap().starts_with("index unavailable: logs directory"));
    // Mended, with no list request to see it (a load balancer took the server out on the 503):
    // the health check itself tries again, at most once a second.
    std::fs::remove_file(&logs).unwrap();
    std::fs::rename(&aside, &logs).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(client().get(server.url("/healthz")).send().unwrap().status().as_u16(), 200);
    assert_eq!(items(&server), (200, want.clone()));

    // Overwritten with garbage, then truncated, in place (the inode the server holds): each
    // detected, kept aside, rebuilt.
    let garbage = |p: &Path| std::fs::write(p, vec![0xA5u8; 64 * 1024]).unwrap();
    let truncate = |p: &Path| std::fs::OpenOptions::new().write(true).open(p).unwrap().set_len(1000).unwrap();
    for (round, damage) in [garbage as fn(&Path), truncate].into_iter().enumerate() {
        let kept = corrupt_files(&db);
        // Everything into the main file first, so the damage is what SQLite reads next.
        let c = rusqlite::Connection::open(&db).unwrap();
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
        drop(c);
        damage(&db);
        append_line(&logs, "c0", 77 + round as u64);
        let (status, got) = items(&server);
        assert_eq!(status, 200);
        assert_eq!(got, fresh_items(&logs));
        assert!(corrupt_files(&db) > kept, "round {round}: the damaged file is kept for inspection");
    }
}

fn append_line(logs: &Path, id: &str, n: u64) {
    std::fs::OpenOptions::new()
        .append(true)
        .open(logs.join(id).join("conversation.jsonl"))
        .unwrap()
        .write_all(line(n).as_bytes())
        .unwrap();
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: f64 =
        status.lines().find(|l| l.starts_with("VmRSS:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    kb / 1024.0
}

/// A well-behaved client's request answers, and quickly.
fn responsive(server: &Server) {
    let started = Instant::now();
    let r = client().get(server.url("/api/v2/conversations?limit=3")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[test]
fn hostile_clients_do_not_starve_a_well_behaved_one() {
    use std::io::Read;
    // Alone, so that its memory bound counts this server's memory and not the other tests'.
    if !in_own_process("reliability::hostile_clients_do_not_starve_a_well_behaved_one") {
        return;
    }
    let (tmp, logs) = scratch(40);
    let config = Config { read_timeout: Duration::from_secs(1), ..Config::default() };
    let server = Server::start(&logs, &tmp.path().join("db.sqlite3"), config, false);
    let rss_before = rss_mib();
    let status = |path: &str| client().get(server.url(path)).send().unwrap().status().as_u16();

    // Odd limits, read as Python's int() reads them.
    assert_eq!(status("/api/v2/conversations?limit=1e30"), 400);
    assert_eq!(status("/api/v2/conversations?limit=-0"), 400);
    assert_eq!(status("/api/v2/conversations?limit=99999999999999999999999999999"), 200);
    let arabic = client().get(server.url("/api/v2/conversations")).query(&[("limit", "١٢")]).send().unwrap();
    assert_eq!(parse(&arabic.text().unwrap()).as_array().unwrap().len(), 12, "Unicode digits count");

    // Oversized query strings and headers are refused; the server goes on.
    let long_query = format!("GET /api/v2/conversations?q={} HTTP/1.1\r\nHost: localhost\r\n\r\n", "a".repeat(200_000));
    let mut raw = std::net::TcpStream::connect(server.addr).unwrap();
    let _ = raw.write_all(long_query.as_bytes());
    let mut head = [0u8; 12];
    let answered = raw.read(&mut head).unwrap_or(0);
    assert!(answered == 0 || head.starts_with(b"HTTP/1.1 4"), "{:?}", String::from_utf8_lossy(&head));
    let big_header =
        client().get(server.url("/api/v2/conversations")).header("X-Big", "b".repeat(500_000)).send().unwrap();
    assert!(big_header.status().as_u16() >= 400);
    responsive(&server);

    // Thousands of idle connections, and clients that send half a request and stop.
    let mut idle: Vec<std::net::TcpStream> =
        (0..2000).map(|_| std::net::TcpStream::connect(server.addr).unwrap()).collect();
    for s in idle.iter_mut().take(200) {
        s.write_all(b"GET /api/v2/conversations HTTP/1.1\r\nHost: localhost\r\n").unwrap();
    }
    responsive(&server);
    // Clients asking for the whole list and never reading it.
    let mut stalled: Vec<std::net::TcpStream> = (0..50)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(server.addr).unwrap();
            s.write_all(b"GET /api/v2/conversations?limit=1000 HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
            s
        })
        .collect();
    responsive(&server);
    // The header timeout closes the idle ones.
    std::thread::sleep(Duration::from_millis(2500));
    let mut closed = 0;
    for s in idle.iter_mut() {
        s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let mut buf = [0u8; 512];
        if s.read(&mut buf).is_ok() {
            closed += 1; // EOF, or the 408 hyper sends before closing
        }
    }
    assert!(closed >= 1900, "{closed} of 2000 idle connections closed");
    responsive(&server);
    drop(stalled.drain(..));
    let grown = rss_mib() - rss_before;
    assert!(grown < 100.0, "memory grew {grown:.0} MiB");
    eprintln!("hostile clients: {closed} of 2000 idle connections closed by the timeout; memory grew {grown:.0} MiB");
}

/// A client that asks for an answer larger than the kernel's socket buffers take and reads none
/// of it is let go after `send_timeout` without a byte leaving, so the rest of its answer is not
/// held in memory for as long as it stays: it then finds the answer cut short and the
/// connection closed. (Before, it could stay for ever: 20 such clients of 20 MB SQL answers
/// kept a `serve` process at 600 MB for as long as they stayed.)
#[test]
fn a_client_that_stops_reading_is_let_go() {
    use std::io::Read;
    let (tmp, logs) = scratch(20);
    let sql = convmeta::server::SqlConfig { enabled: true, ..Default::default() };
    let config = Config { send_timeout: Duration::from_secs(1), sql, ..Config::default() };
    let server = Server::start(&logs, &tmp.path().join("db.sqlite3"), config, false);
    // 20 MB: more than the kernel buffers between the two ends hold.
    let query = "SELECT%20printf('%25.*c',%201000000,%20'x')%20FROM%20conversations";
    let mut stalled = std::net::TcpStream::connect(server.addr).unwrap();
    write!(stalled, "GET /api/v2/sql?q={query} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_secs(4));
    stalled.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let ended = stalled.read_to_end(&mut got); // Ok at the server's close; a timeout if it waits on
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&got[..head_end]).to_lowercase();
    let length: usize = head.lines().find_map(|l| l.strip_prefix("content-length:")).unwrap().trim().parse().unwrap();
    assert!(length > 20_000_000, "{head}");
    assert!(ended.is_ok(), "the connection was kept: {ended:?}");
    assert!(got.len() - head_end < length, "the whole answer was sent");
    // A client that reads gets it all.
    let r = client().get(server.url(&format!("/api/v2/sql?q={query}"))).send().unwrap();
    assert_eq!(r.bytes().unwrap().len(), length);
}

/// Writes the header of a rollback journal beside `db`, as SQLite leaves it when the process
/// writing it dies before committing: magic, record count, checksum nonce, the database's size
/// in pages before the transaction, sector size, page size.
fn hot_journal(db: &Path, pages_before: u32) {
    let mut journal = vec![0u8; 512];
    journal[..8].copy_from_slice(&[0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7]);
    journal[12..16].copy_from_slice(&0xb617_1c5du32.to_be_bytes());
    journal[16..20].copy_from_slice(&pages_before.to_be_bytes());
    journal[20..24].copy_from_slice(&512u32.to_be_bytes());
    journal[24..28].copy_from_slice(&4096u32.to_be_bytes());
    std::fs::write(format!("{}-journal", db.display()), journal).unwrap();
}

#[test]
fn a_database_whose_creation_was_killed_is_taken_over_but_not_anyone_elses() {
    // As a convmeta killed while creating its database leaves it: the first page written (WAL
    // being turned on), the journal saying the file was empty before.
    let (tmp, logs) = scratch(3);
    let db = tmp.path().join("db.sqlite3");
    rusqlite::Connection::open(&db).unwrap().query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())).unwrap();
    hot_journal(&db, 0);
    ok(backfill(&logs, &db));
    let clean = tmp.path().join("clean.sqlite3");
    ok(backfill(&logs, &clean));
    assert_eq!(dump(&db), dump(&clean));

    // Someone else's database in the middle of a transaction: refused, and left as it was.
    let other = tmp.path().join("other.sqlite3");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE mine (x); INSERT INTO mine VALUES (1)")
        .unwrap();
    hot_journal(&other, 2);
    let files = [other.clone(), PathBuf::from(format!("{}-journal", other.display()))];
    let before: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let out = fail(convmeta().arg("list").arg("--logs").arg(&logs).arg("--db").arg(&other));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("with an unfinished transaction") && err.lines().count() == 1, "{err}");
    let after: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert_eq!(before, after);
}

/// Watch mode follows a conversation by its directory (an inotify watch is on an inode, named
/// by us): renamed, swapped with another, moved out of the archive and back in under another
/// name, linked in from outside, deleted, made anew. After every step of a random sequence, the
/// watch-mode answer equals a fresh index of the archive.
#[test]
fn watch_mode_equals_a_fresh_index_through_random_moves_renames_and_links() {
    let (seeds, steps) = if soak() { (17..27, 1000) } else { (17..18, 200) };
    for seed in seeds {
        moves_renames_and_links(seed, steps);
    }
}

fn moves_renames_and_links(seed: u64, steps: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let (logs, outside) = (tmp.path().join("logs"), tmp.path().join("outside"));
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let server = Server::start(&logs, &tmp.path().join("db.sqlite3"), Config::default(), true);
    let names = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    };
    let is_link = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink());
    let write_log = |dir: &Path, n: u64| {
        let log = dir.join("conversation.jsonl");
        // Through a dangling link, or into a directory gone meanwhile: nothing to write to.
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).create(true).open(log) {
            f.write_all(line(n).as_bytes()).unwrap();
        }
    };
    let mut rng = Rng(seed);
    for step in 0..steps {
        let (inside, out) = (names(&logs), names(&outside));
        let pick = |rng: &mut Rng, from: &[String]| from[rng.below(from.len() as u64) as usize].clone();
        let new_name = format!("c{step}");
        let op = match rng.below(15) {
            0 | 1 => {
                std::fs::create_dir(logs.join(&new_name)).unwrap();
                write_log(&logs.join(&new_name), step);
                format!("made {new_name}")
            }
            2 | 3 if !inside.is_empty() => {
                let id = pick(&mut rng, &inside);
                write_log(&logs.join(&id), step);
                format!("appended to {id}")
            }
            4 if !inside.is_empty() => {
                let id = pick(&mut rng, &inside);
                std::fs::rename(logs.join(&id), logs.join(&new_name)).unwrap();
                format!("renamed {id} to {new_name}")
            }
            5 if inside.len() >= 2 => {
                let (a, b) = (pick(&mut rng, &inside), pick(&mut rng, &inside));
                if a != b {
                    std::fs::rename(logs.join(&a), outside.join("swapping")).unwrap();
                    std::fs::rename(logs.join(&b), logs.join(&a)).unwrap();
                    std::fs::rename(outside.join("swapping"), logs.join(&b)).unwrap();
                }
                format!("swapped {a} and {b}")
            }
            6 if !inside.is_empty() => {
                let id = pick(&mut rng, &inside);
                std::fs::rename(logs.join(&id), outside.join(&new_name)).unwrap();
                format!("moved {id} out as {new_name}")
            }
            7 if !out.is_empty() => {
                let id = pick(&mut rng, &out);
                std::fs::rename(outside.join(&id), logs.join(&new_name)).unwrap();
                format!("moved {id} in as {new_name}")
            }
            8 if !inside.is_empty() => {
                let id = pick(&mut rng, &inside);
                let path = logs.join(&id);
                if is_link(&path) {
                    std::fs::remove_file(&path).unwrap();
                } else {
                    std::fs::remove_dir_all(&path).unwrap();
                }
                format!("deleted {id}")
            }
            9 if !inside.is_empty() => {
                let id = pick(&mut rng, &inside);
                let branches = logs.join(&id).join("branches");
                let made = std::fs::create_dir_all(&branches).is_ok();
                if made {
                    std::fs::write(branches.join(format!("b{step}.jsonl")), line(step)).unwrap();
                }
                format!("branched {id} ({made})")
            }
            10 if !inside.is_empty() => {
                let id = pick(&mut rng, &inside);
                let written =
                    std::fs::write(logs.join(&id).join("config.toml"), format!("[chat]\nname = \"N{step}\"\n"));
                format!("named {id} ({})", written.is_ok())
            }
            11 if !inside.is_empty() => {
                // As gptme edits: the whole log written aside, then renamed over it.
                let id = pick(&mut rng, &inside);
                let dir = logs.join(&id);
                let aside = dir.join("conversation.jsonl.new");
                let written = std::fs::write(&aside, line(step)).is_ok();
                if written {
                    std::fs::rename(&aside, dir.join("conversation.jsonl")).unwrap();
                }
                format!("rewrote {id} ({written})")
            }
            12 if !out.is_empty() => {
                let id = pick(&mut rng, &out);
                std::os::unix::fs::symlink(outside.join(&id), logs.join(&new_name)).unwrap();
                format!("linked {id} in as {new_name}")
            }
            13 if !out.is_empty() => {
                let id = pick(&mut rng, &out);
                write_log(&outside.join(&id), step);
                format!("appended to {id}, outside")
            }
            14 if !inside.is_empty() && !out.is_empty() => {
                let (id, there) = (pick(&mut rng, &inside), pick(&mut rng, &out));
                let linked = std::os::unix::fs::symlink(outside.join(&there), logs.join(&id).join("branches")).is_ok();
                format!("linked {id}'s branches to {there}, outside ({linked})")
            }
            _ => continue,
        };
        let (status, answer) = items(&server);
        assert_eq!(status, 200, "seed {seed}, step {step}: {op}");
        let fresh = fresh_items(&logs);
        if answer != fresh {
            let differ: Vec<&String> =
                fresh.keys().chain(answer.keys()).filter(|k| answer.get(*k) != fresh.get(*k)).collect();
            panic!("seed {seed}, step {step}, after {op}: these differ from a fresh index: {differ:?}");
        }
    }
}

/// Processes of two contexts share one index: each its own time zone, name for the logs
/// directory (one through a symlink) and `HOME`. A server in each (one sweeping, one watching),
/// and `list`, `backfill`, `status`, `query` and `show` in either, while a writer appends,
/// rewrites (as gptme's edit does), truncates, renames and moves workspaces through
/// `config.toml` (some under `~`), creates and deletes conversations whose timestamps have no
/// zone. Every command succeeds, every answer is 200, and at the end each server's answer and a
/// `list` in each context equal a fresh index in that context. (Its first version, a script,
/// found rows of one zone served as the other's.)
#[test]
fn processes_of_two_contexts_sharing_an_index_converge() {
    let tmp = tempfile::tempdir().unwrap();
    let (logs, db) = (tmp.path().join("logs"), tmp.path().join("db.sqlite3"));
    let link = tmp.path().join("link-to-logs");
    std::os::unix::fs::symlink(&logs, &link).unwrap();
    let homes = [tmp.path().join("ann"), tmp.path().join("bob")];
    // (TZ, logs as named, HOME)
    let contexts = [("UTC0", &logs, &homes[0]), ("IST-5:30", &link, &homes[1])];
    let said = |n: u64| {
        let hour = n % 24;
        format!("{{\"role\": \"user\", \"content\": \"message {n}\", \"timestamp\": \"2026-01-01T{hour:02}:00:00\"}}\n")
    };
    let log = |id: &str| logs.join(id).join("conversation.jsonl");
    // A system prompt of some kilobytes first, as gptme's: each refresh that reads every log
    // takes long enough for others to run beside it.
    let prompt = format!(
        "{{\"role\": \"system\", \"content\": \"{}\", \"timestamp\": \"2026-01-01T00:00:00\"}}\n",
        "x".repeat(20_000)
    );
    let create = |id: &str, n: u64| {
        std::fs::create_dir_all(logs.join(id)).unwrap();
        std::fs::write(log(id), prompt.clone() + &said(n)).unwrap();
    };
    // c0-c9 stay; the writer makes and deletes the others.
    for i in 0..150 {
        create(&format!("c{i}"), i);
    }
    let servers: Vec<(crate::util::ServeChild, String)> = contexts
        .iter()
        .zip([&[][..], &["--watch"][..]])
        .map(|((tz, logs, home), mode)| {
            let envs = [("TZ", *tz), ("HOME", home.to_str().unwrap())];
            let (child, said, _) = crate::util::spawn_serve(logs, &db, "127.0.0.1:0", mode, &envs);
            let addr = said.split("listening on http://").nth(1).expect(&said).split_whitespace().next().unwrap();
            (child, format!("http://{addr}/api/v2/conversations?limit=1000&detail=true"))
        })
        .collect();
    let command = |(tz, logs, home): (&str, &PathBuf, &PathBuf), args: &[&str], db: &Path| {
        let mut cmd = convmeta();
        cmd.env("TZ", tz).env("HOME", home).args(args).arg("--logs").arg(logs).arg("--db").arg(db);
        ok(cmd)
    };
    let list = |context, db: &Path| {
        parse(&command(context, &["list", "--json", "--limit", "0"], db)).as_array().unwrap().clone()
    };
    let stop = AtomicBool::new(false);
    let (commands, answers) = (AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut rng = Rng(30);
            let mut ids: Vec<String> = (0..150).map(|i| format!("c{i}")).collect();
            let mut n = 100;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let id = ids[rng.index(ids.len())].clone();
                match rng.below(100) {
                    0..70 => {
                        let mut f = std::fs::OpenOptions::new().append(true).open(log(&id)).unwrap();
                        f.write_all(said(n).as_bytes()).unwrap();
                    }
                    70..78 => {
                        // gptme's edit: the log without its last line, renamed over it.
                        let text = std::fs::read_to_string(log(&id)).unwrap();
                        let kept = text[..text.trim_end().rfind('\n').map_or(text.len(), |i| i + 1)].to_owned();
                        std::fs::write(log(&id).with_extension("tmp"), kept).unwrap();
                        std::fs::rename(log(&id).with_extension("tmp"), log(&id)).unwrap();
                    }
                    78..82 => {
                        let f = std::fs::OpenOptions::new().write(true).open(log(&id)).unwrap();
                        f.set_len(f.metadata().unwrap().len() / 2).unwrap();
                    }
                    82..86 => {
                        let workspace = ["~/proj", "/srv/proj"][rng.index(2)];
                        let config = format!("[chat]\nname = \"n{n}\"\nworkspace = \"{workspace}\"\n");
                        std::fs::write(logs.join(&id).join("config.toml"), config).unwrap();
                    }
                    86..95 => {
                        let id = format!("new{n}");
                        create(&id, n);
                        ids.push(id);
                    }
                    _ if ids.len() > 10 => {
                        let id = ids.swap_remove(10 + rng.index(ids.len() - 10));
                        std::fs::remove_dir_all(logs.join(id)).unwrap();
                    }
                    _ => {}
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        for seed in [31, 32] {
            let (stop, commands, db, contexts, command) = (&stop, &commands, &db, &contexts, &command);
            s.spawn(move || {
                let mut rng = Rng(seed);
                while !stop.load(Ordering::Relaxed) {
                    let args: &[&str] = match rng.below(5) {
                        0 => &["list", "--json", "--limit", "0"],
                        1 => &["backfill"],
                        2 => &["status", "--json"],
                        3 => &["query", "SELECT count(*), sum(messages) FROM conversations"],
                        _ => &["show", "c3"],
                    };
                    command(contexts[rng.index(2)], args, db);
                    commands.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        for (_, url) in &servers {
            let (stop, answers) = (&stop, &answers);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let r = client().get(url).send().unwrap();
                    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
                    answers.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        // At least `duration`, and on a slow machine (qemu, a busy host) longer, until enough
        // commands and answers have raced to tell.
        let (started, duration) = (Instant::now(), Duration::from_secs(if soak() { 60 } else { 5 }));
        let enough = || commands.load(Ordering::Relaxed) >= 10 && answers.load(Ordering::Relaxed) >= 10;
        while started.elapsed() < duration || (!enough() && started.elapsed() < 30 * duration) {
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert!(commands.load(Ordering::Relaxed) >= 10 && answers.load(Ordering::Relaxed) >= 10, "too few to tell");
    let fresh: Vec<_> = (0..2).map(|i| list(contexts[i], &tmp.path().join(format!("fresh-{i}.sqlite3")))).collect();
    assert!(fresh[0] != fresh[1], "the contexts give different answers");
    for (i, ((mut child, url), context)) in servers.into_iter().zip(contexts).enumerate() {
        let fresh = &fresh[i];
        let answer = parse(&client().get(&url).send().unwrap().text().unwrap());
        assert!(answer.as_array().unwrap() == &fresh[..fresh.len().min(1000)], "server {i}'s final answer");
        assert!(&list(context, &db) == fresh, "a list in context {i} over the shared index");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
