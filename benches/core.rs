//! The index itself: backfill throughput, a refresh with nothing changed, a refresh after an
//! append.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use convmeta::refresh::{default_jobs, Options};
use convmeta::Index;

use crate::{gen, median, ms, rounds, scaled, timed};

pub fn logs_files(logs: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(logs).unwrap().map(|e| e.unwrap().path().join("conversation.jsonl")).collect();
    files.sort();
    files
}

/// Runs `work` over every file on `jobs` threads (the same parallelism the backfill uses).
/// Each file is read whole into a buffer kept by its thread, half a page off the page boundaries
/// as convmeta's reads are (`ALIGN_SKEW` in `src/scan.rs`): the baselines read as fast as
/// convmeta does, whatever `malloc` hands out.
pub fn par_files(files: &[PathBuf], jobs: usize, work: impl Fn(&[u8]) -> usize + Sync) -> usize {
    const PAGE: usize = 4096;
    let next = AtomicUsize::new(0);
    let total = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                let mut buf = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    let file = std::fs::File::open(path).unwrap();
                    let len = file.metadata().unwrap().len() as usize;
                    buf.resize(buf.len().max(len + PAGE), 0);
                    let skew = (PAGE / 2).wrapping_sub(buf.as_ptr() as usize) % PAGE;
                    let bytes = &mut buf[skew..skew + len];
                    std::os::unix::fs::FileExt::read_exact_at(&file, bytes, 0).unwrap();
                    total.fetch_add(work(bytes), Ordering::Relaxed);
                }
            });
        }
    });
    total.into_inner()
}

/// The naive way: every line parsed into a `serde_json::Value`.
fn naive_parse(b: &[u8]) -> usize {
    b.split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .filter(|l| serde_json::from_slice::<serde_json::Value>(l).is_ok())
        .count()
}

/// The backfill archives: gptme's shapes, and one of only short conversations, since many
/// archives are mostly those, and per-conversation costs (stats, side files, one row written)
/// weigh more there than parsing.
struct Archive {
    title: String,
    conversations: usize,
    seed: u64,
    lines: fn(&mut gen::Rng) -> usize,
}

fn backfill_archives() -> [Archive; 2] {
    let (mixed, short) = (scaled(400), scaled(3000));
    [
        Archive {
            title: format!("{mixed} conversations of 20–2000 lines"),
            conversations: mixed,
            seed: 42,
            lines: gen::line_count,
        },
        Archive {
            title: format!("{short} short conversations (3–30 lines)"),
            conversations: short,
            seed: 43,
            lines: |rng| rng.range(3, 30) as usize,
        },
    ]
}

pub fn backfill() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, a) in backfill_archives().iter().enumerate() {
        let logs = tmp.path().join(format!("logs-{i}"));
        let bytes = gen::archive(&logs, a.conversations, a.seed, a.lines, gen::WORDS);
        backfill_table(&a.title, &logs, a.conversations, bytes, &tmp.path().join(format!("dbs-{i}")));
    }
}

fn backfill_table(title: &str, logs: &Path, n: usize, bytes: u64, dbs: &Path) {
    let files = logs_files(logs);
    let jobs = default_jobs();
    let mb = bytes as f64 / 1e6;
    println!("\n## backfill: {title}, {mb:.0} MB, {jobs} threads, warm page cache");
    // Warm the page cache so every contender reads from memory.
    par_files(&files, jobs, |b| b.len());

    std::fs::create_dir_all(dbs).unwrap();
    let mut run = 0;
    let mut ours = || {
        run += 1;
        let db = dbs.join(format!("backfill-{run}.sqlite3"));
        let index = Index::open(logs, &db).unwrap();
        let opts = Options { jobs, commit_every: Some(Duration::from_millis(500)), ..Options::default() };
        let stats = index.refresh_with(&opts).unwrap();
        assert_eq!(stats.full_scans, n);
    };
    // CONVMETA_BENCH_PROFILE=1 runs convmeta alone (for perf record).
    if std::env::var_os("CONVMETA_BENCH_PROFILE").is_some() {
        println!("convmeta backfill alone: {:.0} ms", ms(median(5, ours)));
        return;
    }
    let t = rounds(
        5,
        &mut [
            &mut || timed(&mut ours),
            &mut || timed(|| assert!(par_files(&files, jobs, |b| memchr::memchr_iter(b'\n', b).count()) > 0)),
            &mut || timed(|| _ = par_files(&files, jobs, naive_parse)),
            &mut || timed(|| _ = par_files(&files, 1, naive_parse)),
        ],
    );
    let rate = |d: Duration| mb / d.as_secs_f64();
    let per_sec = |d: Duration| n as f64 / d.as_secs_f64();
    println!("| contender (median of 5 rounds) | time | throughput | conversations/s | convmeta vs it (median of the rounds, range) |");
    println!("|---|---|---|---|---|");
    let floor = t.median(1);
    println!(
        "| memchr line count (floor) | {:.0} ms | {:.0} MB/s | {:.0} | {} the time |",
        ms(floor),
        rate(floor),
        per_sec(floor),
        t.ratio(0, 1)
    );
    for (i, label) in [(2, format!("{jobs} threads")), (3, "1 thread".to_string())] {
        let d = t.median(i);
        println!(
            "| serde_json::Value per line (naive), {label} | {:.0} ms | {:.0} MB/s | {:.0} | {} faster |",
            ms(d),
            rate(d),
            per_sec(d),
            t.ratio(i, 0)
        );
    }
    let ours = t.median(0);
    println!(
        "| convmeta backfill (into SQLite) | {:.0} ms | {:.0} MB/s | {:.0} | |",
        ms(ours),
        rate(ours),
        per_sec(ours)
    );
}

/// `verify` (the archive indexed again into a scratch database, the index refreshed, the two
/// compared) against what it repeats: a backfill of the same archive into a new database.
pub fn verify() {
    let tmp = tempfile::tempdir().unwrap();
    let jobs = default_jobs();
    println!("\n## verify, {jobs} threads, warm page cache");
    println!("| archive | verify (median of 5 rounds) | a backfill into a new database | verify's time over the backfill's (median of the rounds, range) |");
    println!("|---|---|---|---|");
    for (i, a) in backfill_archives().iter().enumerate() {
        let (logs, n) = (tmp.path().join(format!("logs-{i}")), a.conversations);
        gen::archive(&logs, n, a.seed, a.lines, gen::WORDS);
        par_files(&logs_files(&logs), jobs, |b| b.len());
        let opts = || Options { jobs, commit_every: Some(Duration::from_millis(500)), ..Options::default() };
        let index = Index::open(&logs, &tmp.path().join(format!("index-{i}.sqlite3"))).unwrap();
        index.refresh_with(&opts()).unwrap();
        let mut run = 0;
        let t = rounds(
            5,
            &mut [
                &mut || {
                    timed(|| {
                        let found = convmeta::verify::verify(
                            &index,
                            |afresh| afresh.refresh_with(&Options { log_problems: false, ..opts() }),
                            |index| index.refresh(),
                        )
                        .unwrap();
                        assert_eq!((found.comparison.compared, found.comparison.differences.len()), (n, 0));
                    })
                },
                &mut || {
                    run += 1;
                    let db = tmp.path().join(format!("backfill-{i}-{run}.sqlite3"));
                    timed(|| assert_eq!(Index::open(&logs, &db).unwrap().refresh_with(&opts()).unwrap().full_scans, n))
                },
            ],
        );
        println!("| {} | {:.0} ms | {:.0} ms | {} |", a.title, ms(t.median(0)), ms(t.median(1)), t.ratio(0, 1));
    }
}

/// Empties the kernel's page cache (data, inodes, directory entries), as after a reboot.
/// Needs root; false when it cannot.
fn drop_caches() -> bool {
    rustix::fs::sync();
    std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

/// Backfill and sweep as after a reboot: nothing of the archive in memory. The disk's latency
/// then counts, which convmeta hides by keeping many reads in flight (a stat sweep on 16
/// threads, and the files of the next conversations read ahead); the baselines read the same
/// files on as many threads as there are cores, each file in turn.
pub fn cold() {
    println!("\n## cold page cache (as after a reboot)");
    if !drop_caches() {
        println!("skipped: emptying the page cache needs root (/proc/sys/vm/drop_caches)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let jobs = default_jobs();
    println!("| archive | contender, {jobs} threads | median of 3 rounds | its time over convmeta's (median of the rounds, range) |");
    println!("|---|---|---|---|");
    for (i, a) in backfill_archives().iter().enumerate() {
        let (logs, n) = (tmp.path().join(format!("logs-{i}")), a.conversations);
        let bytes = gen::archive(&logs, n, a.seed, a.lines, gen::WORDS);
        let files = logs_files(&logs);
        let cold = |f: &mut dyn FnMut()| {
            assert!(drop_caches());
            timed(f)
        };
        let mut run = 0;
        let t = rounds(
            3,
            &mut [
                &mut || {
                    run += 1;
                    let index = Index::open(&logs, &tmp.path().join(format!("cold-{i}-{run}.sqlite3"))).unwrap();
                    let opts = Options { jobs, commit_every: Some(Duration::from_millis(500)), ..Options::default() };
                    cold(&mut || assert_eq!(index.refresh_with(&opts).unwrap().full_scans, n))
                },
                &mut || cold(&mut || _ = par_files(&files, jobs, |b| memchr::memchr_iter(b'\n', b).count())),
                &mut || cold(&mut || _ = par_files(&files, jobs, naive_parse)),
            ],
        );
        let title = format!("{}, {:.0} MB", a.title, bytes as f64 / 1e6);
        println!("| {title} | memchr line count (reading alone) | {:.0} ms | {} |", ms(t.median(1)), t.ratio(1, 0));
        println!("| | `serde_json::Value` per line (naive) | {:.0} ms | {} |", ms(t.median(2)), t.ratio(2, 0));
        println!("| | **convmeta backfill** | {:.0} ms | |", ms(t.median(0)));
        if i == 1 {
            // The stat sweep of a refresh that finds nothing changed: `list` or `serve` after a
            // reboot. The baseline stats what the sweep stats, in turn, on one thread.
            let index = Index::open(&logs, &tmp.path().join(format!("cold-{i}-{run}.sqlite3"))).unwrap();
            settle(&index);
            let t = rounds(
                3,
                &mut [&mut || cold(&mut || assert_eq!(index.refresh().unwrap().unchanged, n)), &mut || {
                    cold(&mut || _ = std::hint::black_box(bare_sweep(&logs)))
                }],
            );
            println!(
                "| | readdir + stat of the same files, 1 thread | {:.0} ms | {} |",
                ms(t.median(1)),
                t.ratio(1, 0)
            );
            println!("| | **convmeta refresh, nothing changed** | {:.0} ms | |", ms(t.median(0)));
        }
    }
}

/// What a refresh's sweep looks at, stat by stat on one thread: the log, its directory,
/// `config.toml` and `branches/` of every conversation.
pub fn bare_sweep(logs: &Path) -> usize {
    let mut seen = 0;
    for entry in std::fs::read_dir(logs).unwrap() {
        let dir = entry.unwrap().path();
        for p in [dir.join("conversation.jsonl"), dir.clone(), dir.join("config.toml"), dir.join("branches")] {
            if let Ok(m) = std::fs::metadata(&p) {
                seen += m.ino() as usize & 1;
            }
        }
    }
    seen
}

/// Waits out the clock tick of the last write and refreshes: a file read in the tick it was
/// written in is checked once more by the next refresh, and this is that refresh.
fn settle(index: &Index) {
    std::thread::sleep(Duration::from_millis(50));
    index.refresh().unwrap();
}

pub fn no_change_refresh() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let n = scaled(10_000);
    gen::small_archive(&logs, n);
    let index = Index::open(&logs, &tmp.path().join("db.sqlite3")).unwrap();
    index.refresh().unwrap();
    settle(&index);
    println!("\n## refresh with nothing changed: {n} conversations");
    let t = rounds(
        21,
        &mut [&mut || timed(|| assert_eq!(index.refresh().unwrap().unchanged, n)), &mut || {
            timed(|| _ = std::hint::black_box(bare_sweep(&logs)))
        }],
    );
    println!("| contender (median of 21 rounds) | median | ratio (median of the rounds, range) |");
    println!("|---|---|---|");
    println!("| readdir + stat of the same files | {:.2} ms | 1 |", ms(t.median(1)));
    println!("| convmeta refresh (no change) | {:.2} ms | {} |", ms(t.median(0)), t.ratio(0, 1));
}

pub fn append_refresh() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let mut rng = gen::Rng(7);
    let mut text = gen::conversation(&mut rng, 10, gen::WORDS);
    while text.len() < 2_000_000 {
        text.push_str(&gen::conversation(&mut rng, 200, gen::WORDS)[40_000..]);
        text = text.trim_start_matches(|c| c != '{').to_string();
    }
    // Keep only whole lines.
    let cut = text.rfind('\n').unwrap() + 1;
    text.truncate(cut);
    let dir = logs.join("2026-01-01-big");
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("conversation.jsonl");
    std::fs::write(&log, &text).unwrap();
    let index = Index::open(&logs, &tmp.path().join("db.sqlite3")).unwrap();
    index.refresh().unwrap();
    let kb_line = format!(
        "{{\"role\": \"user\", \"content\": \"{}\", \"timestamp\": \"2026-01-02T10:00:00\"}}\n",
        "x".repeat(940)
    );
    println!("\n## refresh after appending 1 KB to a {:.1} MB conversation", text.len() as f64 / 1e6);
    let append = || std::fs::OpenOptions::new().append(true).open(&log).unwrap().write_all(kb_line.as_bytes()).unwrap();
    // The same refresh when the file must be read whole (a new inode, as after gptme's edit),
    // and, for scale, what re-reading the file costs the naive way, parse only, no write.
    let replace = || {
        let tmp_path = dir.join("conversation.jsonl.tmp");
        std::fs::copy(&log, &tmp_path).unwrap();
        std::fs::rename(&tmp_path, &log).unwrap();
    };
    let t = rounds(
        21,
        &mut [
            &mut || {
                append();
                timed(|| assert_eq!(index.refresh().unwrap().appends, 1))
            },
            &mut || {
                replace();
                timed(|| assert_eq!(index.refresh().unwrap().full_scans, 1))
            },
            &mut || timed(|| _ = std::hint::black_box(naive_parse(&std::fs::read(&log).unwrap()))),
        ],
    );
    let (appended, whole) = (t.median(0), t.median(1));
    // As from a live conversation: appends some milliseconds apart, so that the database's log
    // fills and is checkpointed between them. The tail is what a client notices.
    let mut spaced: Vec<Duration> = (0..scaled(600))
        .map(|_| {
            std::thread::sleep(Duration::from_millis(10));
            append();
            let t = std::time::Instant::now();
            assert_eq!(index.refresh().unwrap().appends, 1);
            t.elapsed()
        })
        .collect();
    spaced.sort();
    let at = |q: f64| spaced[((spaced.len() as f64 * q) as usize).min(spaced.len() - 1)];
    // The floor under any append refresh: the sweep that notices the change, plus the smallest
    // write transaction this database commits.
    settle(&index);
    let sweep = median(31, || {
        let s = index.refresh().unwrap();
        assert_eq!(s.unchanged, 1);
    });
    let conn = index.store().conn().unwrap();
    let commit = median(31, || {
        conn.execute_batch("BEGIN IMMEDIATE; INSERT OR REPLACE INTO _meta (key, value) VALUES ('bench', 'x'); COMMIT")
            .unwrap();
    });
    drop(conn);
    let floor = sweep + commit;
    println!("| contender (median of 21 rounds) | median | ratio (median of the rounds, range) |");
    println!("|---|---|---|");
    println!("| refresh that re-reads the file whole | {:.3} ms | {} the append |", ms(whole), t.ratio(1, 0));
    println!(
        "| reading it whole into serde_json::Value per line, no write (for scale) | {:.3} ms | {} the append |",
        ms(t.median(2)),
        t.ratio(2, 0)
    );
    println!("| convmeta refresh after the append | {:.3} ms | 1 |", ms(appended));
    println!(
        "| the same, {} appends 10 ms apart: p50 / p99 / max | {:.3} / {:.3} / {:.3} ms | max {:.0}x the p50 |",
        spaced.len(),
        ms(at(0.5)),
        ms(at(0.99)),
        ms(at(1.0)),
        at(1.0).as_secs_f64() / at(0.5).as_secs_f64()
    );
    println!(
        "| floor: a no-change refresh ({:.3} ms) plus a one-row write transaction ({:.3} ms) | {:.3} ms | {:.2}x the append; the full re-read is {:.0}x it |",
        ms(sweep),
        ms(commit),
        ms(floor),
        floor.as_secs_f64() / appended.as_secs_f64(),
        whole.as_secs_f64() / floor.as_secs_f64()
    );
}

/// The line accumulator alone, in memory, on one thread: where backfill time goes.
pub fn accumulator() {
    let mut rng = gen::Rng(3);
    let text: String = (0..40).map(|_| gen::conversation(&mut rng, 300, gen::WORDS)).collect();
    let mb = text.len() as f64 / 1e6;
    println!("\n## accumulator alone: {mb:.0} MB in memory, one thread");
    let lines: Vec<(usize, usize)> = {
        let mut v = Vec::new();
        let mut at = 0;
        for nl in memchr::memchr_iter(b'\n', text.as_bytes()) {
            v.push((at, nl));
            at = nl + 1;
        }
        v
    };
    let bytes = text.as_bytes();
    let floor = median(5, || {
        std::hint::black_box(memchr::memchr_iter(b'\n', bytes).count());
    });
    let naive = median(3, || {
        let n =
            lines.iter().filter(|&&(a, b)| serde_json::from_slice::<serde_json::Value>(&bytes[a..b]).is_ok()).count();
        std::hint::black_box(n);
    });
    let ours = median(5, || {
        let mut acc = convmeta::format::gptme::Accumulator::default();
        for &(a, b) in &lines {
            acc.feed(&bytes[a..b], a as u64);
        }
        std::hint::black_box(acc.messages);
    });
    let rate = |d: Duration| mb / d.as_secs_f64();
    println!("| contender | throughput |");
    println!("|---|---|");
    println!("| memchr line count | {:.0} MB/s |", rate(floor));
    println!("| serde_json::Value per line | {:.0} MB/s |", rate(naive));
    println!(
        "| convmeta accumulator | {:.0} MB/s ({:.1}x naive) |",
        rate(ours),
        naive.as_secs_f64() / ours.as_secs_f64()
    );
}

/// Processes of two time zones sharing one index (a server run by systemd in UTC, `convmeta
/// list` from a shell with `TZ` set) take it over from each other in turn: `convmeta list`
/// under the other zone, against the same `list` with nothing changed, and against the
/// takeover as it was before session 40 (every item rendered again from its files: each side
/// stamp forgotten, as that build's takeover forgot them).
pub fn takeover() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let db = tmp.path().join("db.sqlite3");
    let n = scaled(10_000);
    let mb = gen::archive(&logs, n, 11, |_| 20, gen::WORDS) as f64 / 1e6;
    let list = |tz: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_convmeta"))
            .args(["list", "--limit", "1", "--logs"])
            .arg(&logs)
            .arg("--db")
            .arg(&db)
            .env("TZ", tz)
            .env("CONVMETA_LOG", "error")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    let zones = ["UTC0", "IST-5:30"];
    list(zones[0]);
    std::thread::sleep(Duration::from_millis(50));
    println!("\n## `convmeta list` after a process of another time zone used the index: {n} conversations, {mb:.0} MB");
    let at = std::cell::Cell::new(0);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let t = rounds(
        11,
        &mut [
            &mut || {
                at.set(1 - at.get());
                timed(|| list(zones[at.get()]))
            },
            &mut || timed(|| list(zones[at.get()])),
            &mut || {
                conn.execute("UPDATE _scan_state SET side_stamp = 0", []).unwrap();
                timed(|| list(zones[at.get()]))
            },
        ],
    );
    println!("| contender (median of 11 rounds) | median | ratio (median of the rounds, range) |");
    println!("|---|---|---|");
    println!("| `list`, nothing changed | {:.0} ms | 1 |", ms(t.median(1)));
    println!("| `list` under the other zone (a takeover) | {:.0} ms | {} |", ms(t.median(0)), t.ratio(0, 1));
    println!(
        "| `list` rendering every item from its files (the takeover before session 40) | {:.0} ms | {}; {} the takeover |",
        ms(t.median(2)),
        t.ratio(2, 1),
        t.ratio(2, 0)
    );
}
