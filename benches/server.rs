//! The HTTP server: list latency in sweep and watch mode, a search, a paginated walk, sustained
//! load.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use convmeta::server::Config;

use crate::common::{client, Server};
use crate::{gen, median, ms, rounds, scaled, timed};

/// A server over `logs`, measured once its start is behind it: the first refresh's rows are
/// copied from the WAL into the database file (what the checkpoint thread would be doing, on
/// the other core, for the first seconds after a start).
fn start(logs: &Path, db: &Path, watch: bool) -> Server {
    let server = if watch {
        Server::start_watching(logs, db, Config::default())
    } else {
        Server::start(logs, db, Config::default(), false)
    };
    let conn = server.index.store().conn().unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
    server
}

/// p50 and p95 of `n` sequential GETs of `path`.
fn latency(addr: std::net::SocketAddr, path: &str, n: usize) -> (Duration, Duration) {
    let c = client();
    let url = format!("http://{addr}{path}");
    for _ in 0..3 {
        c.get(&url).send().unwrap().bytes().unwrap(); // warm up the connection and caches
    }
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let r = c.get(&url).send().unwrap();
            assert!(r.status().is_success());
            r.bytes().unwrap();
            t.elapsed()
        })
        .collect();
    times.sort();
    (times[n / 2], times[n * 95 / 100])
}

/// `connections` clients each send requests back to back for `secs`: requests/s and errors.
fn load(addr: std::net::SocketAddr, path: &str, connections: usize, secs: u64) -> (f64, u64) {
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..connections {
            let (done, errors) = (done.clone(), errors.clone());
            s.spawn(move || {
                let c = client();
                let url = format!("http://{addr}{path}");
                while Instant::now() < until {
                    match c.get(&url).send().and_then(|r| r.error_for_status()).and_then(|r| r.bytes()) {
                        Ok(_) => done.fetch_add(1, Ordering::Relaxed),
                        Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                    };
                }
            });
        }
    });
    (done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64(), errors.load(Ordering::Relaxed))
}

/// p50 and p95 of `f`'s measure while `connections` clients fetch `path` back to back, asking
/// for `encoding`.
fn under_load<T>(
    addr: std::net::SocketAddr,
    path: &str,
    encoding: &str,
    connections: usize,
    f: impl FnOnce() -> T,
) -> T {
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..connections {
            let stop = &stop;
            s.spawn(move || {
                let c = client();
                let url = format!("http://{addr}{path}");
                while !stop.load(Ordering::Relaxed) {
                    c.get(&url).header("Accept-Encoding", encoding).send().unwrap().bytes().unwrap();
                }
            });
        }
        std::thread::sleep(Duration::from_millis(500)); // all of them under way
        let measured = f();
        stop.store(true, Ordering::Relaxed);
        measured
    })
}

/// The median of the bare stat sweep the server's answers are measured against.
fn bare_sweep(logs: &Path) -> Duration {
    median(11, || _ = std::hint::black_box(crate::core::bare_sweep(logs)))
}

/// The web UI's search box, for text no conversation holds: every listed one is tested. Each
/// request asks for other text (`zzz1`, `zzz2`, …), as typing does: the server keeps recent
/// answers until the index changes.
const SEARCH: &str = "/api/v2/conversations?q=zzz…&limit=10&detail=true";

/// A search over HTTP against its baseline, taking turns (21 rounds): what a search read before
/// schema 12, every listed row whole (its item too) from the table, newest first, with its
/// name, id and preview lowered and tested. Printed as a table row.
fn search_row(label: &str, addr: std::net::SocketAddr, db: &Path) {
    let c = client();
    let mut typed = 0;
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let sql = "SELECT id, name, last_message_preview, item_json FROM conversations WHERE hidden = 0 ORDER BY modified DESC, id DESC";
    let mut search = || {
        typed += 1;
        let url = format!("http://{addr}/api/v2/conversations?q=zzz{typed}&limit=10&detail=true");
        timed(|| {
            let r = c.get(&url).send().unwrap();
            assert!(r.status().is_success());
            assert_eq!(r.bytes().unwrap().trim_ascii(), b"[]");
        })
    };
    let mut table_walk = || {
        timed(|| {
            let mut stmt = conn.prepare_cached(sql).unwrap();
            let mut rows = stmt.query([]).unwrap();
            let mut hits = 0;
            while let Some(r) = rows.next().unwrap() {
                let (id, name, preview, item): (String, String, Option<String>, String) =
                    (r.get(0).unwrap(), r.get(1).unwrap(), r.get(2).unwrap(), r.get(3).unwrap());
                let texts = [Some(id), Some(name), preview].into_iter().flatten();
                hits += usize::from(texts.map(|t| t.to_lowercase()).any(|t| t.contains("zzz")) && !item.is_empty());
            }
            assert_eq!(std::hint::black_box(hits), 0);
        })
    };
    search(); // warm up the connection and caches
    table_walk();
    let r = rounds(21, &mut [&mut search, &mut table_walk]);
    println!("| {label} | {:.2} ms | {:.2} ms | **{}** |", ms(r.median(0)), ms(r.median(1)), r.ratio(1, 0));
}

fn walk(addr: std::net::SocketAddr, per_page: usize) -> (Duration, usize) {
    let c = client();
    let t = Instant::now();
    let mut cursor: Option<String> = None;
    let mut seen = 0;
    loop {
        let mut url = format!("http://{addr}/api/v2/conversations?paginated=1&detail=false&limit={per_page}");
        if let Some(cur) = &cursor {
            url.push_str("&cursor=");
            url.extend(form_urlencoded::byte_serialize(cur.as_bytes()));
        }
        let page: serde_json::Value = c.get(&url).send().unwrap().json().unwrap();
        seen += page["conversations"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    (t.elapsed(), seen)
}

pub fn server() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let n = scaled(10_000);
    gen::small_archive(&logs, n);
    let bare = bare_sweep(&logs);
    println!("\n## server: {n} conversations, default list (`GET /api/v2/conversations`, 100 items)");
    let sweep = start(&logs, &tmp.path().join("sweep.sqlite3"), false);
    let (p50, p95) = latency(sweep.addr, "/api/v2/conversations", 100);
    println!("| contender | p50 | p95 | vs bare sweep (p50) |");
    println!("|---|---|---|---|");
    println!("| readdir + stat of the same files | {:.2} ms | | 1.00 |", ms(bare));
    println!("| sweep mode | {:.2} ms | {:.2} ms | {:.2}x |", ms(p50), ms(p95), p50.as_secs_f64() / bare.as_secs_f64());
    let watch = start(&logs, &tmp.path().join("watch.sqlite3"), true);
    let (w50, w95) = latency(watch.addr, "/api/v2/conversations", 300);
    println!("| watch mode | {:.3} ms | {:.3} ms | {:.3}x |", ms(w50), ms(w95), w50.as_secs_f64() / bare.as_secs_f64());
    println!("\nsearch, watch mode (`{SEARCH}`: no conversation matches, so every listed one is tested):");
    println!("| conversations | search | baseline: reading every listed row whole | baseline over search |");
    println!("|---|---|---|---|");
    search_row(&n.to_string(), watch.addr, &tmp.path().join("watch.sqlite3"));
    let (took, seen) = walk(watch.addr, 50);
    assert_eq!(seen, n);
    println!("\npaginated walk of all {n} (50 per page, watch mode): {:.0} ms", ms(took));
    let (sweep_walk, _) = walk(sweep.addr, 50);
    println!("paginated walk of all {n} (50 per page, sweep mode): {:.0} ms", ms(sweep_walk));
    let secs = if scaled(10) < 10 { 2 } else { 10 };
    println!("\nsustained load, 16 connections for {secs} s, default list:");
    println!("| mode | requests/s | errors |");
    println!("|---|---|---|");
    for (mode, server) in [("sweep", &sweep), ("watch", &watch)] {
        let (rate, errors) = load(server.addr, "/api/v2/conversations", 16, secs);
        println!("| {mode} | {rate:.0} | {errors} |");
    }
    // Answers over 64 KiB are compressed on a blocking thread, leaving the async threads to
    // the other requests: the health check, while the web UI's History page is fetched.
    let history = "/api/v2/conversations?limit=100000&detail=true";
    let size = client().get(format!("http://{}{history}", watch.addr)).send().unwrap().bytes().unwrap().len();
    println!("\nthe health check (`/healthz`) while 4 clients fetch the History page (1,000 items, {} KB) with gzip, watch mode:", size / 1000);
    println!("| | p50 | p95 | p50 vs idle |");
    println!("|---|---|---|---|");
    let (i50, i95) = latency(watch.addr, "/healthz", 200);
    println!("| idle | {:.3} ms | {:.3} ms | 1.00 |", ms(i50), ms(i95));
    let (l50, l95) = under_load(watch.addr, history, "gzip", 4, || latency(watch.addr, "/healthz", 200));
    println!("| under load | {:.3} ms | {:.3} ms | {:.1}x |", ms(l50), ms(l95), l50.as_secs_f64() / i50.as_secs_f64());
    println!("\na `/metrics` scrape (it refreshes as a list does, then sums the spend by model and counts the rows):");
    println!("| mode | p50 | p95 | vs the default list's p50 |");
    println!("|---|---|---|---|");
    for (mode, server, list) in [("sweep", &sweep, p50), ("watch", &watch, w50)] {
        let (m50, m95) = latency(server.addr, "/metrics", 50);
        println!("| {mode} | {:.2} ms | {:.2} ms | {:.1}x |", ms(m50), ms(m95), m50.as_secs_f64() / list.as_secs_f64());
    }
    drop((sweep, watch));

    let big = scaled(100_000);
    let logs = tmp.path().join("logs-big");
    gen::small_archive(&logs, big);
    let watch = start(&logs, &tmp.path().join("big.sqlite3"), true);
    let (b50, b95) = latency(watch.addr, "/api/v2/conversations", 300);
    println!("\nwatch mode at {big} conversations: p50 {:.3} ms, p95 {:.3} ms", ms(b50), ms(b95));
    let (m50, m95) = latency(watch.addr, "/metrics", 30);
    println!("a `/metrics` scrape there: p50 {:.2} ms, p95 {:.2} ms", ms(m50), ms(m95));
    println!("| conversations | search | baseline: reading every listed row whole | baseline over search |");
    println!("|---|---|---|---|");
    search_row(&big.to_string(), watch.addr, &tmp.path().join("big.sqlite3"));
    drop(watch);

    // An agent's workspace: every conversation uses the agent's gptme.toml, which lies outside
    // the watched logs directory.
    let logs = tmp.path().join("logs-agent");
    gen::small_archive(&logs, n);
    let agent = tmp.path().join("agent");
    std::fs::create_dir_all(&agent).unwrap();
    std::fs::write(agent.join("gptme.toml"), "[agent]\nname = \"Bob\"\n").unwrap();
    for i in 0..n {
        let config = format!("[chat]\nname = \"Small {i}\"\nagent = \"{}\"\n", agent.display());
        std::fs::write(logs.join(format!("2026-01-01-small-{i:06}/config.toml")), config).unwrap();
    }
    let watch = start(&logs, &tmp.path().join("agent.sqlite3"), true);
    let (a50, a95) = latency(watch.addr, "/api/v2/conversations", 300);
    println!("watch mode at {n} conversations of one agent: p50 {:.3} ms, p95 {:.3} ms", ms(a50), ms(a95));
    drop(watch);
    let sweep = start(&logs, &tmp.path().join("agent-sweep.sqlite3"), false);
    let (s50, s95) = latency(sweep.addr, "/api/v2/conversations", 100);
    let bare = bare_sweep(&logs);
    println!(
        "sweep mode at {n} conversations of one agent: p50 {:.2} ms, p95 {:.2} ms, {:.2}x the bare sweep ({:.2} ms)",
        ms(s50),
        ms(s95),
        s50.as_secs_f64() / bare.as_secs_f64(),
        ms(bare)
    );
}

/// A `serve` process's memory through bursts of heavy lists, against the same binary with
/// glibc's own cap on malloc arenas (`MALLOC_ARENA_MAX=64`, what an 8-core machine gets; 16
/// on this one): the binary caps them at two, so that memory freed after a burst on many
/// threads is used again by the next rather than held in one more arena. Each burst is read
/// twice: at once, and once `serve` has been idle long enough to hand freed memory back.
pub fn memory() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let n = scaled(2_000);
    gen::small_archive(&logs, n);
    let (bursts, clients) = (10, 200);
    println!(
        "\n## server memory: {n} conversations, {bursts} bursts of {clients} lists at once (`limit=1000&detail=1`)"
    );
    println!("| after burst | glibc's arenas (MALLOC_ARENA_MAX=64): at once / idle | convmeta's (2): at once / idle |");
    println!("|---|---|---|");
    // Resident memory just after each burst, and again once `serve` has sat idle long enough
    // to hand freed memory back (`IDLE_BEFORE_TRIM` in src/server/mod.rs).
    let run = |envs: &[(&str, &str)], db: &str| -> Vec<(u64, u64)> {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_convmeta"))
            .args(["serve", "--addr", "127.0.0.1:0", "--logs"])
            .arg(&logs)
            .arg("--db")
            .arg(tmp.path().join(db))
            .env("GPTME_DISABLE_AUTH", "true")
            .env("CONVMETA_LOG", "info")
            .envs(envs.iter().copied())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while !line.contains("listening on http://") {
            line.clear();
            assert!(std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0, "serve ended");
        }
        let addr = line.split("listening on http://").nth(1).unwrap().trim();
        let url = format!("http://{addr}/api/v2/conversations?limit=1000&detail=1");
        let rss_kb = || {
            let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
            let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap();
            kb.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap()
        };
        let start = rss_kb();
        let mut after = vec![(start, start)];
        for _ in 0..bursts {
            std::thread::scope(|s| {
                for _ in 0..clients {
                    s.spawn(|| assert!(client().get(&url).send().unwrap().bytes().unwrap().len() > 100_000));
                }
            });
            std::thread::sleep(Duration::from_millis(200));
            let at_once = rss_kb();
            std::thread::sleep(Duration::from_millis(2000));
            after.push((at_once, rss_kb()));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        after
    };
    let glibc = run(&[("MALLOC_ARENA_MAX", "64")], "glibc.sqlite3");
    let ours = run(&[], "ours.sqlite3");
    let mb = |kb: u64| kb as f64 / 1024.0;
    for (i, (g, o)) in glibc.iter().zip(&ours).enumerate() {
        let label = if i == 0 { "start".to_owned() } else { i.to_string() };
        println!("| {label} | {:.0} / {:.0} MB | {:.0} / {:.0} MB |", mb(g.0), mb(g.1), mb(o.0), mb(o.1));
    }
    // Grown from the start to just after the last burst, and to once idle after it.
    let grown = |v: &[(u64, u64)]| {
        let (start, (busy, idle)) = (v[0].0, *v.last().unwrap());
        (busy.saturating_sub(start), idle.saturating_sub(start))
    };
    let ((g_busy, g_idle), (o_busy, o_idle)) = (grown(&glibc), grown(&ours));
    println!(
        "\ngrown over the bursts, just after the last / once idle: {:.0} / {:.0} MB with glibc's arenas, {:.0} / {:.0} MB with two ({:.1}x / {:.1}x less)",
        mb(g_busy),
        mb(g_idle),
        mb(o_busy),
        mb(o_idle),
        g_busy as f64 / o_busy.max(1) as f64,
        g_idle as f64 / o_idle.max(1) as f64,
    );
}
