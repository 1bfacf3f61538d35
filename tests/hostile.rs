//! A corpus of hostile inputs in one archive beside a healthy conversation: no panic, no hang
//! (the whole listing has a deadline), bounded memory (measured), every case listed with its
//! problems counted, and the healthy conversation exact.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::{backfill, convmeta, dump, fail, in_own_process, ok, output_within, parse, run_as, unprivileged};

const GOOD: &str = "{\"role\": \"user\", \"content\": \"fine\", \"timestamp\": \"2026-01-01T10:00:00Z\"}\n";

fn conv(logs: &Path, id: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = logs.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("conversation.jsonl"), bytes).unwrap();
    dir
}

fn chmod(path: impl AsRef<Path>, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A scratch place an unprivileged user (see [`unprivileged`]) may work in: an archive holding
/// one healthy conversation, and the path of a database in a directory anyone may write.
fn open_to_anyone() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    chmod(tmp.path(), 0o777);
    let logs = tmp.path().join("logs");
    conv(&logs, "healthy", GOOD.as_bytes());
    let db_dir = tmp.path().join("db");
    std::fs::create_dir(&db_dir).unwrap();
    chmod(&db_dir, 0o777);
    (tmp, logs, db_dir.join("db.sqlite3"))
}

fn line(fields: &str) -> Vec<u8> {
    format!("{{\"role\": \"assistant\", \"content\": \"x\"{fields}}}\n").into_bytes()
}

/// Builds the corpus; returns (id, must it be listed, must it carry a problem).
fn corpus(logs: &Path) -> Vec<(String, bool, bool)> {
    let mut cases: Vec<(String, bool, bool)> = Vec::new();
    let mut add = |id: &str, listed: bool, problem: bool| cases.push((id.to_owned(), listed, problem));
    conv(logs, "healthy", GOOD.as_bytes());
    add("healthy", true, false);

    let simple: Vec<(&str, Vec<u8>)> = vec![
        ("truncated-json", b"{\"role\": \"user\", \"content\": \"cut\n".to_vec()),
        ("not-json", b"hello there\n".to_vec()),
        ("nul-bytes", b"\0\0\0{\"role\": \"user\"}\0\n".to_vec()),
        ("invalid-utf8", b"{\"role\": \"user\", \"content\": \"\xff\xfe\"}\n".to_vec()),
        ("overlong-utf8", b"{\"role\": \"user\", \"content\": \"\xc0\x80\"}\n".to_vec()),
        ("utf8-surrogate", b"{\"role\": \"user\", \"content\": \"\xed\xa0\x80\"}\n".to_vec()),
        ("deep-nesting", [b"{\"role\": \"user\", \"content\": \"x\", \"files\": ".to_vec(), vec![b'['; 100_000], vec![b']'; 100_000], b"}\n".to_vec()].concat()),
        ("number-out-of-range", line(", \"metadata\": {\"model\": \"m\", \"cost\": 1e999, \"usage\": {\"input_tokens\": 99999999999999999999999}}")),
        ("wrong-types", line(", \"timestamp\": {}, \"metadata\": {\"model\": 5, \"cost\": \"free\", \"usage\": [1], \"input_tokens\": \"5\"}")),
        ("role-not-string", b"{\"role\": 1, \"content\": [], \"metadata\": \"x\"}\n".to_vec()),
        ("huge-tokens", [line(", \"metadata\": {\"model\": \"m\", \"usage\": {\"input_tokens\": 9223372036854775807}}"), line(", \"metadata\": {\"model\": \"m\", \"usage\": {\"input_tokens\": 9223372036854775807}}")].concat()),
        ("negative-tokens", line(", \"metadata\": {\"model\": \"m\", \"cost\": -5.5, \"usage\": {\"input_tokens\": -100}}")),
        ("bad-timestamps", [line(", \"timestamp\": \"9999-99-99T99:99:99\""), line(", \"timestamp\": \"2026-01-01T10:00:00+99:00\"")].concat()),
        ("array-line", b"[1, 2, 3]\n\"just a string\"\n42\nnull\n".to_vec()),
        ("duplicate-keys", b"{\"role\": \"user\", \"role\": \"assistant\", \"content\": \"a\", \"content\": \"b\"}\n".to_vec()),
        ("bom", b"\xef\xbb\xbf{\"role\": \"user\", \"content\": \"bom\"}\n".to_vec()),
        ("crlf-only", b"\r\n\r\n\r\n".to_vec()),
        ("empty", Vec::new()),
        ("many-blank-lines", vec![b'\n'; 300_000]),
        ("lone-surrogate-escape", b"{\"role\": \"user\", \"content\": \"\\udc00\\ud800\"}\n".to_vec()),
        ("bad-escape", b"{\"role\": \"user\", \"content\": \"\\q\"}\n".to_vec()),
        ("control-char", b"{\"role\": \"user\", \"content\": \"a\x01b\"}\n".to_vec()),
        ("nan-cost", line(", \"metadata\": {\"model\": \"m\", \"cost\": NaN}")),
    ];
    for (id, bytes) in &simple {
        conv(logs, id, bytes);
        // Blank-only files and clean oddities have nothing to count (JSON nests as deep as it
        // likes: Python's limit is its stack's; `NaN` is a number to Python's JSON, summed as
        // gptme sums it).
        let problem = !matches!(
            *id,
            "crlf-only"
                | "empty"
                | "many-blank-lines"
                | "lone-surrogate-escape"
                | "duplicate-keys"
                | "bom"
                | "bad-timestamps"
                | "deep-nesting"
                | "nan-cost"
        );
        add(id, true, problem);
    }

    // A 64 MiB line and a 1 GiB sparse file with no newline at all.
    let dir = conv(logs, "line-64mib", b"");
    let mut f = std::fs::File::create(dir.join("conversation.jsonl")).unwrap();
    f.write_all(b"{\"role\": \"user\", \"content\": \"").unwrap();
    f.write_all(&vec![b'z'; 64 << 20]).unwrap();
    f.write_all(b"\"}\n").unwrap();
    add("line-64mib", true, false);
    let dir = conv(logs, "sparse-1gib", b"");
    std::fs::File::options().write(true).open(dir.join("conversation.jsonl")).unwrap().set_len(1 << 30).unwrap();
    add("sparse-1gib", true, true);

    // Things that are not files where files belong.
    std::fs::create_dir_all(logs.join("dir-as-log/conversation.jsonl")).unwrap();
    add("dir-as-log", true, true);
    std::fs::create_dir_all(logs.join("fifo-as-log")).unwrap();
    assert!(std::process::Command::new("mkfifo")
        .arg(logs.join("fifo-as-log/conversation.jsonl"))
        .status()
        .unwrap()
        .success());
    add("fifo-as-log", true, true);
    std::fs::create_dir_all(logs.join("socket-as-log")).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(logs.join("socket-as-log/conversation.jsonl")).unwrap();
    std::mem::forget(_socket); // keep it bound while the listing runs
    add("socket-as-log", true, true);
    let dir = conv(logs, "fifo-config", GOOD.as_bytes());
    assert!(std::process::Command::new("mkfifo").arg(dir.join("config.toml")).status().unwrap().success());
    add("fifo-config", true, true);
    let dir = conv(logs, "binary-config", GOOD.as_bytes());
    std::fs::write(dir.join("config.toml"), b"\xff\xfe\x00garbage").unwrap();
    add("binary-config", true, true);
    let dir = conv(logs, "chat-not-table", GOOD.as_bytes());
    std::fs::write(dir.join("config.toml"), "chat = 5\n[chat2]\n").unwrap();
    add("chat-not-table", true, false);
    let dir = conv(logs, "fifo-agent", GOOD.as_bytes());
    std::fs::create_dir_all(dir.join("agent")).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(dir.join("agent/gptme.toml")).status().unwrap().success());
    std::fs::write(dir.join("config.toml"), format!("[chat]\nagent = \"{}\"\n", dir.join("agent").display())).unwrap();
    add("fifo-agent", true, true);
    let dir = conv(logs, "branches-is-a-file", GOOD.as_bytes());
    std::fs::write(dir.join("branches"), "not a dir").unwrap();
    add("branches-is-a-file", true, false);

    // Symlink loops: the conversation dir, the log, the workspace.
    std::os::unix::fs::symlink("loop-dir", logs.join("loop-dir")).unwrap();
    add("loop-dir", false, false);
    let dir = logs.join("loop-log");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink("conversation.jsonl", dir.join("conversation.jsonl")).unwrap();
    add("loop-log", false, false);
    let dir = conv(logs, "loop-workspace", GOOD.as_bytes());
    std::os::unix::fs::symlink("workspace", dir.join("workspace")).unwrap();
    add("loop-workspace", true, false);

    // Permissions (root reads anyway; as another user these are unreadable).
    let dir = conv(logs, "unreadable-log", GOOD.as_bytes());
    chmod(dir.join("conversation.jsonl"), 0o000);
    add("unreadable-log", true, false);

    // A directory name that is not UTF-8 cannot be an id in JSON: skipped (with a warning).
    let raw = std::ffi::OsStr::from_bytes(b"not-utf8-\xff");
    conv(logs, raw.to_str().unwrap_or("unused"), GOOD.as_bytes());
    std::fs::rename(logs.join("unused"), logs.join(raw)).unwrap();

    // Ids with every awkward character.
    for id in [
        "sp ace",
        "quo\"te",
        "back\\slash",
        "new\nline",
        "tab\there",
        "ünï-😀",
        "per%25cent|pipe",
        "-leading-dash",
        &"x".repeat(255),
    ] {
        conv(logs, id, GOOD.as_bytes());
        add(id, true, false);
    }
    cases
}

/// Peak resident memory of the largest child process this one has waited for, in MiB.
fn peak_child_mib() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) }, 0);
    usage.ru_maxrss as f64 / 1024.0
}

#[test]
fn a_hostile_archive_lists_with_bounded_time_and_memory() {
    // Alone, so that the peak is this listing's and not another test's child's.
    if !in_own_process("hostile::a_hostile_archive_lists_with_bounded_time_and_memory") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let cases = corpus(&logs);
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let db = tmp.path().join("db.sqlite3");
    let started = Instant::now();
    let mut child = convmeta()
        .arg("list")
        .arg("--json")
        .args(["--limit", "1000"])
        .arg("--logs")
        .arg(&logs)
        .arg("--db")
        .arg(&db)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    let deadline = Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        assert!(started.elapsed() < deadline, "the listing hung");
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = started.elapsed();
    let peak = peak_child_mib();
    // Lines over 128 MiB are never held (bound: 128 MiB + a chunk per reading thread).
    assert!(peak < 450.0, "peak memory {peak:.0} MiB");
    eprintln!("hostile corpus: {} cases listed in {:.1} s, peak memory {peak:.0} MiB", cases.len(), took.as_secs_f64());

    let items: Vec<serde_json::Value> = serde_json::from_value(parse(&out)).unwrap();
    let listed: std::collections::BTreeMap<&str, &serde_json::Value> =
        items.iter().map(|i| (i["id"].as_str().unwrap(), i)).collect();
    let conn = rusqlite::Connection::open(&db).unwrap();
    for (id, must_list, must_problem) in &cases {
        assert_eq!(listed.contains_key(id.as_str()), *must_list, "{id:?} listed");
        if *must_problem {
            let n: i64 =
                conn.query_row("SELECT problems FROM conversations WHERE id = ?1", [id], |r| r.get(0)).unwrap();
            assert!(n > 0, "{id:?}: problem counted");
        }
    }
    assert_eq!(listed["healthy"]["last_message_preview"], "fine");
    assert!(!listed.keys().any(|id| id.starts_with("not-utf8")), "non-UTF-8 names are skipped");
    assert_eq!(listed["line-64mib"]["messages"], 1);
    assert_eq!(listed["sparse-1gib"]["messages"], 1, "the unfinished giant line is counted, not held");
    assert_eq!(listed["many-blank-lines"]["messages"], 0);
    assert_eq!(listed["huge-tokens"]["total_input_tokens"], i64::MAX, "sums saturate");
    assert_eq!(listed["negative-tokens"]["total_input_tokens"], -100);
    assert_eq!(listed["nan-cost"]["total_cost"], "NaN", "read back as its name");

    // `search` reads every listed log, within the same bounds: the 64 MiB line says z, the 1 GiB
    // one without a newline is never held, nothing not a file is opened to wait on.
    let mut search = convmeta();
    search.args(["search", "--json", "-n", "0", "-m", "1", "zzzz"]).arg("--logs").arg(&logs).arg("--db").arg(&db);
    let out = output_within(search, Duration::from_secs(120));
    // The symlink loop (and, but for root, the log no one may read) cannot be read: said, and
    // grep's exit code 2.
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code() == Some(2) && said.contains("could not be read"), "{:?} {said}", out.status);
    let found: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = found.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"line-64mib"), "{ids:?}");
    // A regular expression finds the same. Both show a line of each, cut from the 64 MiB one.
    let mut search = convmeta();
    search.args(["search", "--json", "-n", "0", "-m", "1", "-E", "z{4}"]).arg("--logs").arg(&logs).arg("--db").arg(&db);
    let out = output_within(search, Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let found_by_pattern: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ids_by_pattern: Vec<&str> = found_by_pattern.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids_by_pattern, ids);
    let peak = peak_child_mib();
    eprintln!("hostile corpus: searched, peak memory of the two {peak:.0} MiB");
    assert!(peak < 450.0, "peak memory {peak:.0} MiB");

    // `show` names the lines of each log with problems, reading it again within the same
    // bounds, all of them: nothing not a file is opened to wait on, no giant line held.
    for (id, _, problem) in cases.iter().filter(|(_, listed, problem)| *listed && *problem) {
        let mut show = convmeta();
        show.args(["show", id, "--problem-lines", "0"]).arg("--logs").arg(&logs).arg("--db").arg(&db);
        let out = output_within(show, Duration::from_secs(120));
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && said.contains("problems: "), "{id:?} {problem}: {out:?}");
    }
    let shown = |id: &str| {
        let mut show = convmeta();
        show.args(["show", id]).arg("--logs").arg(&logs).arg("--db").arg(&db);
        String::from_utf8(output_within(show, Duration::from_secs(120)).stdout).unwrap()
    };
    assert!(shown("not-json").contains("line 1: malformed\n"), "{}", shown("not-json"));
    let giant = "line 1 (no newline yet: perhaps still being written): over 128 MiB, not read\n";
    assert!(shown("sparse-1gib").contains(giant), "{}", shown("sparse-1gib"));
    let peak = peak_child_mib();
    eprintln!("hostile corpus: problems shown, peak memory of every command {peak:.0} MiB");
    assert!(peak < 450.0, "peak memory {peak:.0} MiB");

    // `verify` reads it all again, into an index of its own, within the same bounds, and finds
    // the index as that reading gives it.
    let mut verify = convmeta();
    verify.arg("verify").arg("--logs").arg(&logs).arg("--db").arg(&db).env("TMPDIR", tmp.path());
    let out = output_within(verify, Duration::from_secs(120));
    let (said, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{said} {err}");
    assert!(said.starts_with("verified ") && err.is_empty(), "all compared: {said} {err}");
    let peak = peak_child_mib();
    eprintln!("hostile corpus: verified, peak memory of every command {peak:.0} MiB");
    assert!(peak < 450.0, "peak memory {peak:.0} MiB");
}

/// Unreadable files and directories, seen by an unprivileged user (root reads anything, so as
/// root the binary runs as `nobody` through setpriv).
#[test]
fn permission_denied_files_and_directories_are_handled() {
    let (tmp, logs, db) = open_to_anyone();
    let locked_log = conv(&logs, "locked-log", GOOD.as_bytes());
    chmod(locked_log.join("conversation.jsonl"), 0o000);
    let locked_dir = conv(&logs, "locked-dir", GOOD.as_bytes());
    chmod(&locked_dir, 0o000);
    let locked_config = conv(&logs, "locked-config", GOOD.as_bytes());
    std::fs::write(locked_config.join("config.toml"), "[chat]\nname = \"secret\"\n").unwrap();
    chmod(locked_config.join("config.toml"), 0o000);
    // Another user's files (root's, read as nobody), which a chown or chgrp will give over.
    let as_root = unsafe { libc::geteuid() } == 0;
    let owned = ["owned-log", "group-log", "owned-config"].map(|id| conv(&logs, id, GOOD.as_bytes()));
    std::fs::write(owned[2].join("config.toml"), "[chat]\nname = \"mine\"\n").unwrap();
    let owned_files =
        [owned[0].join("conversation.jsonl"), owned[1].join("conversation.jsonl"), owned[2].join("config.toml")];
    for (file, mode) in owned_files.iter().zip([0o600, 0o640, 0o600]) {
        chmod(file, mode);
    }
    let command = unprivileged(tmp.path());
    let unprivileged = || {
        let mut c = command();
        c.env("HOME", tmp.path());
        c
    };
    let mut cmd = unprivileged();
    cmd.arg("list").arg("--json").arg("--logs").arg(&logs).arg("--db").arg(&db);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let items: Vec<serde_json::Value> = serde_json::from_value(parse(&String::from_utf8(out.stdout).unwrap())).unwrap();
    let ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"healthy"));
    // A log that cannot be read is listed, empty, with the reason; a directory that cannot be
    // entered cannot be known to hold a conversation (gptme skips it too); a config that cannot
    // be read leaves the defaults.
    assert!(ids.contains(&"locked-log") && ids.contains(&"locked-config"), "{ids:?}");
    assert!(!ids.contains(&"locked-dir"));
    let conn = rusqlite::Connection::open(&db).unwrap();
    let notes = |id: &str| -> String {
        conn.query_row("SELECT coalesce(problem_notes, '') FROM conversations WHERE id = ?1", [id], |r| r.get(0))
            .unwrap()
    };
    assert!(notes("locked-log").contains("cannot read"), "{}", notes("locked-log"));
    assert!(notes("locked-config").contains("config.toml"), "{}", notes("locked-config"));
    // `search` reads the rest, and says which logs it could not read, and how many.
    let mut search = unprivileged();
    search.args(["search", "--json", "-n", "0", "FINE"]).arg("--logs").arg(&logs).arg("--db").arg(&db);
    search.env("CONVMETA_LOG", "warn");
    let out = search.output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    // What was found is printed, and the exit code says that not every log was read, as grep's.
    assert_eq!(out.status.code(), Some(2), "{said}");
    let found: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let found: Vec<&str> = found.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert!(found.contains(&"healthy") && !found.contains(&"locked-log"), "{found:?}");
    let unreadable = if as_root { "3 logs could not be read" } else { "1 log could not be read" };
    assert!(said.contains(unreadable) && said.contains("locked-log/conversation.jsonl"), "{said}");
    // With -q, a message found answers, whatever could not be read (as ripgrep's -q); nothing
    // found where a log could not be read may be a message missed: 2.
    for (text, code) in [("FINE", 0), ("zebra", 2)] {
        let mut quiet = unprivileged();
        quiet.args(["search", "-q", text]).arg("--logs").arg(&logs).arg("--db").arg(&db);
        assert_eq!(quiet.output().unwrap().status.code(), Some(code), "{text}");
    }
    let named = items.iter().find(|i| i["id"] == "locked-config").unwrap();
    assert_eq!(named["name"], "locked-config");
    if as_root {
        assert!(notes("owned-log").contains("cannot read") && notes("group-log").contains("cannot read"));
        assert!(notes("owned-config").contains("config.toml"), "{}", notes("owned-config"));
    }
    // A chmod, chown or chgrp moves neither size nor mtime, yet it is noticed: what can be read
    // now is read.
    chmod(locked_log.join("conversation.jsonl"), 0o644);
    chmod(locked_config.join("config.toml"), 0o644);
    if as_root {
        std::os::unix::fs::chown(&owned_files[0], Some(65534), None).unwrap();
        std::os::unix::fs::chown(&owned_files[1], None, Some(65534)).unwrap();
        std::os::unix::fs::chown(&owned_files[2], Some(65534), None).unwrap();
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let items: Vec<serde_json::Value> = serde_json::from_value(parse(&String::from_utf8(out.stdout).unwrap())).unwrap();
    let item = |id: &str| items.iter().find(|i| i["id"] == id).unwrap().clone();
    assert_eq!(item("locked-log")["messages"], 1);
    assert_eq!(notes("locked-log"), "");
    assert_eq!(item("locked-config")["name"], "secret");
    assert_eq!(notes("locked-config"), "");
    for id in ["owned-log", "group-log", "owned-config"] {
        assert_eq!((item(id)["messages"].as_i64(), notes(id)), (Some(1), String::new()), "{id}");
    }
    assert_eq!(item("owned-config")["name"], "mine");
    chmod(&locked_dir, 0o755);
    // so the temp dir can go

    // A database where this user may not create one: one line that says why, each cause once.
    let locked_db_dir = tmp.path().join("locked-db");
    std::fs::create_dir(&locked_db_dir).unwrap();
    chmod(&locked_db_dir, 0o555);
    let out = unprivileged()
        .arg("list")
        .arg("--logs")
        .arg(&logs)
        .arg("--db")
        .arg(locked_db_dir.join("db.sqlite3"))
        .output()
        .unwrap();
    let said = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success());
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.contains("cannot open the database") && said.contains("Permission denied"), "{said}");
    assert!(!said.contains("Error code"), "{said}");
}

/// A change no stat shows: the user joins the group that may read a log (here, the same user
/// run again in that group). The log stays listed unread until it changes; `backfill --reread`
/// reads it at once. As root only: setpriv gives the groups.
#[test]
fn a_reread_reads_what_no_stat_says_changed() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: no other user or group to be; not tested");
        return;
    }
    let (tmp, logs, db) = open_to_anyone();
    let log = conv(&logs, "shared", GOOD.as_bytes()).join("conversation.jsonl");
    std::os::unix::fs::chown(&log, Some(0), Some(4242)).unwrap();
    chmod(&log, 0o640);
    let as_nobody = crate::util::run_in_groups(tmp.path(), 65534);
    let backfill = |groups: &[u32], extra: &[&str]| {
        let mut c = as_nobody(groups);
        c.arg("backfill").args(extra).arg("--logs").arg(&logs).arg("--db").arg(&db);
        crate::util::ok(c);
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.query_row("SELECT messages, problems FROM conversations WHERE id = 'shared'", [], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })
        .unwrap()
    };
    assert_eq!(backfill(&[], &[]), (0, 1), "outside the group: unreadable");
    assert_eq!(backfill(&[4242], &[]), (0, 1), "in it, but no stat says so");
    assert_eq!(backfill(&[4242], &["--reread"]), (1, 0));
}

/// At the system's limit on threads (`RLIMIT_NPROC`), a backfill asked for 64 stats and reads on
/// the threads it could start, down to none besides its own, and indexes everything (it
/// panicked when a thread would not start). As root only: the limit counts every process of the user it
/// binds, so the binary runs as a user id of its own; as anyone else this test says so and
/// passes.
#[test]
fn at_the_limit_on_threads_a_backfill_still_indexes_everything() {
    use std::os::unix::process::CommandExt;
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: the limit on threads would bind this user's every process; not tested");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    chmod(tmp.path(), 0o755);
    let logs = tmp.path().join("logs");
    for i in 0..3000 {
        conv(&logs, &format!("c{i:04}"), GOOD.as_bytes());
    }
    let dbs = tmp.path().join("db");
    std::fs::create_dir(&dbs).unwrap();
    chmod(&dbs, 0o777);
    let (free, limited) = (dbs.join("free.sqlite3"), dbs.join("limited.sqlite3"));
    ok(backfill(&logs, &free));
    let mut cmd = run_as(tmp.path(), 61_234)();
    cmd.arg("backfill").arg("--jobs").arg("64").arg("--logs").arg(&logs).arg("--db").arg(&limited);
    // Set before setpriv takes the user id; its threads count from there.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: 12, rlim_max: 12 };
            match libc::setrlimit(libc::RLIMIT_NPROC, &limit) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(dump(&limited).len(), 3000);
    assert_eq!(dump(&limited), dump(&free));
}

/// A tmpfs of a given size mounted on a directory for the life of the value.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// None where this process may not mount one (not root, or in a container that forbids it).
    fn mount(on: &Path, options: &str) -> Option<Tmpfs> {
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(on)
            .stderr(std::process::Stdio::null())
            .status();
        status.is_ok_and(|s| s.success()).then(|| Tmpfs(on.into()))
    }

    /// Writes a file until the disk refuses more.
    fn fill(&self) -> std::path::PathBuf {
        let filler = self.0.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A database on a full disk. A backfill stops with one line that says what to do and keeps
/// what was committed; the next goes on from there to the rows of a backfill that never ran out.
/// On a disk left full, where SQLite cannot make the -shm file every reader needs, `status` and
/// `query --no-refresh` still read, a refresh says what to do (it said "disk I/O error"), and
/// nothing is moved aside as damaged. A disk with no free inodes says so too. As root only (it mounts a small tmpfs); elsewhere this
/// test says so and passes.
#[test]
fn a_full_disk_loses_nothing_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    let Some(mounted) = Tmpfs::mount(&disk, "size=64m") else {
        eprintln!("cannot mount a tmpfs here; not tested");
        return;
    };
    let logs = tmp.path().join("logs");
    let add = |ids: std::ops::Range<usize>| {
        for i in ids {
            conv(&logs, &format!("c{i:04}"), &[GOOD.as_bytes(), &line(&format!(", \"n\": {i}"))].concat());
        }
    };
    let (reference, db) = (tmp.path().join("reference.sqlite3"), disk.join("x.sqlite3"));
    let cmd = |args: &[&str]| {
        let mut c = convmeta();
        c.args(args).arg("--logs").arg(&logs).arg("--db").arg(&db);
        c
    };
    add(0..1500);
    ok(backfill(&logs, &db));
    add(1500..3000);
    ok(backfill(&logs, &reference));

    // Room for a little of what the second half needs.
    let filler = mounted.fill();
    let full = std::fs::metadata(&filler).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&filler).unwrap().set_len(full - 256 * 1024).unwrap();
    let out = fail(backfill(&logs, &db));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("out of space: free some, or pass --db on another disk"), "{stderr}");
    std::fs::remove_file(&filler).unwrap();
    let summary = ok(backfill(&logs, &db));
    assert!(summary.contains(", 1,500 unchanged,"), "what was committed was not kept: {summary}");
    assert_eq!(dump(&db), dump(&reference));

    // Left full, with no -shm file.
    let filler = mounted.fill();
    for dir in ["c0000", "c1234"] {
        let mut log = std::fs::OpenOptions::new().append(true).open(logs.join(dir).join("conversation.jsonl")).unwrap();
        log.write_all(GOOD.as_bytes()).unwrap();
    }
    assert!(ok(cmd(&["status"])).contains("conversations:  3,000 "));
    let count = ok(cmd(&["query", "--no-refresh", "--format", "csv", "SELECT count(*) FROM conversations"]));
    assert_eq!(count, "count(*)\r\n3000\r\n");
    let out = fail(cmd(&["list"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("out of space: free some, or pass --db on another disk"), "{stderr}");
    let names: Vec<String> =
        std::fs::read_dir(&disk).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| n.starts_with("x.sqlite3") && !n.contains("corrupt") || n == "filler"), "{names:?}");

    std::fs::remove_file(filler).unwrap();
    let listed = ok(cmd(&["list", "--json", "--limit", "5000"]));
    let mut of_reference = convmeta();
    of_reference.args(["list", "--json", "--limit", "5000", "--logs"]).arg(&logs).arg("--db").arg(&reference);
    assert_eq!(listed, ok(of_reference));

    // Room for bytes but not for the -wal and -shm files (it said "unable to open database file").
    let few_files = tmp.path().join("few-files");
    std::fs::create_dir(&few_files).unwrap();
    let _mounted = Tmpfs::mount(&few_files, "size=64m,nr_inodes=2").unwrap();
    let cramped = few_files.join("x.sqlite3");
    let cmd = |args: &[&str]| {
        let mut c = convmeta();
        c.args(args).arg("--logs").arg(&logs).arg("--db").arg(&cramped);
        c
    };
    let stderr = String::from_utf8(fail(cmd(&["list"])).stderr).unwrap();
    assert!(stderr.contains("room for no more files (no free inodes)"), "{stderr}");
    // What that left (the database file, empty), read as it stands, then a full one.
    assert!(ok(cmd(&["status"])).contains("conversations:  0 "));
    std::fs::copy(&db, &cramped).unwrap();
    assert!(ok(cmd(&["status"])).contains("conversations:  3,000 "));
    let stderr = String::from_utf8(fail(cmd(&["backfill"])).stderr).unwrap();
    assert!(stderr.contains("room for no more files (no free inodes)"), "{stderr}");
}

/// The limit on open files (`ulimit -n`), met while reading or opening the database: a refresh
/// stops at once with one line that says so. It had stored a conversation it could not open as
/// unreadable, where it stayed (0 messages, "Too many open files") until its log changed; it had
/// taken a database whose header it could not open for one deleted, moved it aside and rebuilt
/// it; and it had waited 30 s for a connection the pool could not open, then said only "unable
/// to open database file". Whatever the limit, no row says so, and a backfill without it ends
/// with the rows of one that never met it.
#[test]
fn at_the_limit_on_open_files_a_refresh_stops_and_stores_nothing_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    for i in 0..400 {
        let dir = conv(&logs, &format!("c{i:03}"), &[GOOD.as_bytes(), &line(&format!(", \"n\": {i}"))].concat());
        std::fs::write(dir.join("config.toml"), format!("[chat]\nname = \"named {i}\"\n")).unwrap();
        std::fs::create_dir(dir.join("branches")).unwrap();
        std::fs::write(dir.join("branches").join("b.jsonl"), GOOD).unwrap();
    }
    let reference = tmp.path().join("reference.sqlite3");
    ok(backfill(&logs, &reference));
    let (mut met_while_reading, mut met_opening_the_database) = (0, 0);
    let mut run = |mut cmd: std::process::Command, limit: u64, what: &str| {
        use std::os::unix::process::CommandExt;
        unsafe {
            cmd.pre_exec(move || {
                let limit = libc::rlimit { rlim_cur: limit, rlim_max: limit };
                match libc::setrlimit(libc::RLIMIT_NOFILE, &limit) {
                    0 => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                }
            });
        }
        let out = output_within(cmd, Duration::from_secs(20));
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            assert!(
                stderr.contains("Too many open files (os error 24) (convmeta has"),
                "{what}, limit {limit}: {stderr}"
            );
            // Met opening one of a conversation's files: its log, `config.toml` or a branch
            // (which one a run meets it on depends on how its threads overlap).
            let reading = ["conversation.jsonl", "config.toml", "b.jsonl"].map(|f| format!("{f}: Too many"));
            met_while_reading += usize::from(reading.iter().any(|r| stderr.contains(r.as_str())));
            met_opening_the_database += usize::from(stderr.contains(".sqlite3: Too many"));
        }
    };

    // Made under the limit.
    for (jobs, limit) in [1, 2, 8].into_iter().flat_map(|jobs| (10..=20).map(move |limit| (jobs, limit))) {
        let db = tmp.path().join(format!("limited-{jobs}-{limit}.sqlite3"));
        let mut cmd = backfill(&logs, &db);
        cmd.args(["--jobs", &jobs.to_string()]);
        run(cmd, limit, &format!("{jobs} jobs"));
        if db.exists() {
            let conn = rusqlite::Connection::open(&db).unwrap();
            let stored_as_unreadable = "SELECT count(*) FROM conversations WHERE problem_notes LIKE '%open files%'";
            let wrong: i64 = conn.query_row(stored_as_unreadable, [], |r| r.get(0)).unwrap_or(0);
            assert_eq!(wrong, 0, "{jobs} jobs, limit {limit}: rows stored as unreadable");
            ok(backfill(&logs, &db));
            assert_eq!(dump(&db), dump(&reference), "{jobs} jobs, limit {limit}");
        }
    }
    // Made already, refreshed under the limit.
    let made = tmp.path().join("made").join("index.sqlite3");
    std::fs::create_dir(made.parent().unwrap()).unwrap();
    std::fs::copy(&reference, &made).unwrap();
    for limit in 6..=12 {
        let mut list = convmeta();
        list.arg("list").arg("--logs").arg(&logs).arg("--db").arg(&made);
        run(list, limit, "list");
    }
    // SQLite's own files may stay beside it (a command stopped at the limit while another of
    // its connections was open leaves the write-ahead log, checkpointed); nothing else may.
    let mut beside: Vec<_> =
        std::fs::read_dir(made.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    beside.retain(|name| name != "index.sqlite3-wal" && name != "index.sqlite3-shm");
    assert_eq!(beside, ["index.sqlite3"], "nothing moved aside");
    assert_eq!(dump(&made), dump(&reference));
    assert!(met_while_reading > 0, "no limit was met while reading: the test tests nothing");
    assert!(met_opening_the_database > 0, "no limit was met opening the database: the test tests nothing");
}

/// A connection the pool cannot open (no file descriptor left) fails at once, saying why: r2d2
/// alone tries again until its 30 s are up, then says "unable to open database file". Once
/// there is room again, the pool opens one. In a process of its own, whose limit it lowers.
#[test]
#[cfg(target_os = "linux")] // its open files, from /proc
fn a_connection_the_pool_cannot_open_fails_at_once_and_says_why() {
    if !in_own_process("hostile::a_connection_the_pool_cannot_open_fails_at_once_and_says_why") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = convmeta::store::Store::open(&tmp.path().join("x.sqlite3")).unwrap();
    let _held = store.conn().unwrap();
    let mut before = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut before) }, 0);
    let set_limit = |limit: u64| {
        let limit = libc::rlimit { rlim_cur: limit, rlim_max: before.rlim_max };
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    };
    // Room for one more file: a connection needs two (the database and its -wal).
    let open: std::collections::BTreeSet<u64> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
        .collect();
    let second_free = (0..).filter(|fd| !open.contains(fd)).nth(1).unwrap();
    set_limit(second_free);
    // Any idle connection is handed out first; the pool then has to open one.
    let mut held = Vec::new();
    let refused = loop {
        match store.conn() {
            Ok(c) if held.len() < 8 => held.push(c),
            Ok(_) => panic!("the pool opened connections with no room for their files"),
            Err(e) => break e,
        }
    };
    set_limit(before.rlim_cur);
    assert!(matches!(refused, convmeta::Error::OutOfResources { .. }), "{refused}");
    assert!(refused.to_string().contains("Too many open files"), "{refused}");
    let _second = store.conn().unwrap();
}

/// `serve --watch` as a user for whom one conversation directory is locked (made by `sudo
/// gptme`, say): the rest is watched (the one directory had made the watch of the whole archive
/// fail, so every request swept), the locked one is not listed, and once a chmod lets the user
/// in, it is listed and watched.
#[test]
fn a_locked_conversation_directory_leaves_the_rest_watched() {
    use std::io::BufRead;
    let (tmp, logs, db) = open_to_anyone();
    let locked = conv(&logs, "locked", GOOD.as_bytes());
    chmod(&locked, 0o000);
    let mut serve = unprivileged(tmp.path())();
    serve.env("CONVMETA_LOG", "info").env("HOME", tmp.path()).arg("serve").arg("--watch");
    serve.arg("--logs").arg(&logs).arg("--db").arg(&db).args(["--addr", "127.0.0.1:0"]);
    let mut child = serve.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    while !log.contains("listening on") {
        assert!(stderr.read_line(&mut log).unwrap() > 0, "{log}");
    }
    let addr = log.split("listening on http://").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    let get = |path: &str| reqwest::blocking::get(format!("http://{addr}{path}")).unwrap().text().unwrap();
    let items = || parse(&get("/api/v2/conversations")).as_array().unwrap().clone();
    let ids = || items().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert!(log.contains("watching the archive for changes") && !log.contains("cannot watch"), "{log}");
    assert_eq!(ids(), ["healthy"]);
    chmod(&locked, 0o777);
    assert_eq!(ids().len(), 2, "let in, it is listed");
    let mut f = std::fs::OpenOptions::new().append(true).open(locked.join("conversation.jsonl")).unwrap();
    f.write_all(b"{\"role\": \"assistant\", \"content\": \"now seen\"}\n").unwrap();
    let item = items().into_iter().find(|i| i["id"] == "locked").unwrap();
    assert_eq!(item["last_message_preview"], "now seen", "and watched");
    assert!(get("/metrics").contains("convmeta_sweeps_total 0\n"), "a request swept");
    child.kill().unwrap();
    child.wait().unwrap();
}
