//! The binary: commands, errors, and the rule that the archive is never written.

use std::io::Write;

use crate::util::{
    archive_of, convmeta, fail, ok, output_within, restore, searched, set_mtime_ns, set_schema_back, snapshot,
    unprivileged, usage_line, write_conversation,
};

#[test]
fn no_command_writes_the_archive() {
    let r = restore("archive");
    let before = snapshot(&r.arch);
    ok(r.cmd(&["backfill"]));
    ok(r.cmd(&["list"]));
    ok(r.cmd(&["list", "--json", "-q", "quokka"]));
    ok(r.cmd(&["show", "edge-agent"]));
    ok(r.cmd(&["search", "--system", "-n", "0", "the"]));
    ok(r.cmd(&["status"]));
    assert_eq!(snapshot(&r.arch), before, "bytes, mtimes, modes and entries unchanged");
}

/// Reading commands open the database without writing it: they neither wait for another
/// process's write transaction nor make every other connection's caches stale.
#[test]
fn reading_commands_do_not_write_the_database() {
    let r = restore("archive");
    ok(r.cmd(&["backfill"]));
    let writer = rusqlite::Connection::open(&r.db).unwrap();
    let version =
        |c: &rusqlite::Connection| c.query_row("PRAGMA data_version", [], |row| row.get::<_, i64>(0)).unwrap();
    let before = version(&writer);
    // Hold the write lock: a command that tried to write would wait out its busy timeout, then fail.
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    let out = ok(r.cmd(&["status"]));
    assert!(out.contains("135 (7 hidden"), "{out}");
    let out = ok(r.cmd(&["query", "--no-refresh", "--format", "csv", "SELECT count(*) AS n FROM conversations"]));
    assert_eq!(out, "n\r\n135\r\n");
    writer.execute_batch("COMMIT").unwrap();
    assert_eq!(version(&writer), before, "no other connection committed");
}

/// A database this user may read but not write, nor its directory (another user's, on a
/// read-only file system), where SQLite cannot make the -shm file a reader needs: `status` and
/// `query --no-refresh` read it as it is, with a writer about or not, and create nothing; the
/// commands that refresh say why they cannot, and what does.
#[test]
fn reading_commands_read_a_database_this_user_may_not_write() {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |path: &std::path::Path, mode| std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    let line = r#"{"role": "user", "content": "hi", "timestamp": "2026-01-01T10:00:00"}"#.to_string() + "\n";
    let (tmp, logs) = archive_of(&[("a", line.clone(), None), ("b", line.clone(), None), ("c", line, None)]);
    mode(tmp.path(), 0o755);
    let dir = tmp.path().join("db");
    std::fs::create_dir(&dir).unwrap();
    let db = dir.join("db.sqlite3");
    ok(crate::util::backfill(&logs, &db));
    // A connection r2d2 was still opening on its own thread as the process ended can leave
    // SQLite's -wal and -shm (checkpointed, so harmless; seen in one full run of the suite in
    // several): the last connection to close removes them, as this one does.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.query_row("SELECT count(*) FROM conversations", [], |_| Ok(())).unwrap();
    drop(conn);
    let entries = || std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect::<Vec<_>>();
    assert_eq!(entries(), ["db.sqlite3"], "no writer about: no -wal, no -shm");
    mode(&db, 0o444);
    mode(&dir, 0o555);
    let command = unprivileged(tmp.path());
    let run = |args: &[&str]| {
        let mut c = command();
        c.args(args).arg("--logs").arg(&logs).arg("--db").arg(&db);
        c
    };
    let status = crate::util::parse(&ok(run(&["status", "--json"])));
    let schema = convmeta::store::migrate::latest();
    assert_eq!(
        (status["conversations"].as_i64(), status["schema_version"].as_i64()),
        (Some(3), Some(schema)),
        "{status}"
    );
    let count = ["query", "--no-refresh", "--format", "csv", "SELECT count(*) AS n FROM conversations"];
    assert_eq!(ok(run(&count)), "n\r\n3\r\n");
    for refreshing in [&["list"][..], &["query", "SELECT 1"]] {
        let said = String::from_utf8(fail(run(refreshing)).stderr).unwrap();
        assert!(said.contains("readonly database") && said.contains("but `status` and `query --no-refresh`"), "{said}");
    }
    assert_eq!(entries(), ["db.sqlite3"], "nothing created beside it");
    // With a writer about, what it committed is still in the -wal, and is read from there.
    mode(&dir, 0o755);
    mode(&db, 0o644);
    let writer = rusqlite::Connection::open(&db).unwrap();
    writer.execute("UPDATE conversations SET name = 'renamed by the writer' WHERE id = 'b'", []).unwrap();
    mode(&db, 0o444);
    mode(&dir, 0o555);
    let name = ["query", "--no-refresh", "--format", "csv", "SELECT name FROM conversations WHERE id = 'b'"];
    assert_eq!(ok(run(&name)), "name\r\nrenamed by the writer\r\n");
    assert_eq!(crate::util::parse(&ok(run(&["status", "--json"])))["conversations"], 3);
    // Named through a symlink, it is the -wal beside the file the link names, as SQLite has it.
    let link = tmp.path().join("link.sqlite3");
    std::os::unix::fs::symlink(&db, &link).unwrap();
    let through_link = |args: &[&str]| {
        let mut c = command();
        c.args(args).arg("--logs").arg(&logs).arg("--db").arg(&link);
        c
    };
    assert_eq!(ok(through_link(&name)), "name\r\nrenamed by the writer\r\n");
    let bytes = |c| crate::util::parse(&ok(c))["db_bytes"].as_u64().unwrap();
    assert_eq!(bytes(through_link(&["status", "--json"])), bytes(run(&["status", "--json"])));
    mode(&dir, 0o755); // so the temp dir can go
}

/// Commands started together on a database none has made yet (two terminals, a script and a
/// service): each waits for the others' locks, and the schema is made once. They had failed with
/// "database is locked" (turning the new file to WAL) or "table conversations already exists".
#[test]
fn commands_started_together_on_a_new_database_all_succeed() {
    let line = r#"{"role": "user", "content": "hi", "timestamp": "2026-01-01T10:00:00"}"#.to_string() + "\n";
    let (tmp, logs) = archive_of(&[("a", line.clone(), None), ("b", line, None)]);
    for round in 0..10 {
        let db = tmp.path().join(format!("db-{round}.sqlite3"));
        let children: Vec<_> = (0..3)
            .map(|_| {
                let mut c = convmeta();
                c.args(["list", "--json", "--logs"]).arg(&logs).arg("--db").arg(&db);
                c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
            })
            .collect();
        let outs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
        for out in &outs {
            assert!(out.status.success(), "round {round}: {}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(out.stdout, outs[0].stdout);
        }
    }
}

/// `convmeta list | head -1`: the reader closing the pipe early ends the command quietly.
#[test]
fn a_reader_that_stops_early_is_not_an_error() {
    use std::io::Read;
    use std::process::Stdio;
    let r = restore("archive");
    ok(r.cmd(&["backfill"]));
    for args in
        [&["list", "--json", "--limit", "1000"][..], &["query", "--format", "jsonl", "SELECT * FROM conversations"]]
    {
        let full = ok(r.cmd(args));
        assert!(full.len() > 1 << 16, "{args:?} writes more than a pipe holds: {} bytes", full.len());
        let mut child = r.cmd(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut first = [0u8; 1];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap(); // then the pipe closes
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?}: {:?} {}", out.status, String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}");
    }
}

/// Output that cannot be written (a full disk) fails the command, saying where it failed.
#[cfg(target_os = "linux")]
#[test]
fn output_that_cannot_be_written_is_an_error() {
    let r = restore("archive");
    let id = "2024-01-11-flying-brave-fox";
    for args in [
        &["backfill"][..],
        &["list"],
        &["list", "--json"],
        &["show", id],
        &["show", "--json", id],
        &["status"],
        &["status", "--json"],
        &["query", "SELECT 1"],
        &["query", "--format", "json", "SELECT 1"],
        &["query", "--format", "jsonl", "SELECT 1"],
        &["query", "--format", "csv", "SELECT 1"],
        &["completions", "bash"],
    ] {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let mut c = match args[0] {
            "completions" => {
                let mut c = convmeta();
                c.args(args);
                c
            }
            _ => r.cmd(args),
        };
        let out = c.stdout(full).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {:?}", out.status);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            err.trim_end(),
            "convmeta: cannot write to standard output: No space left on device (os error 28)",
            "{args:?}"
        );
    }
}

/// `convmeta … 2>&1 | head -1`: a closed stderr loses the messages, not the command's outcome
/// (`eprintln!` would panic, exit code 101).
#[test]
fn a_closed_stderr_changes_no_outcome() {
    let r = restore("archive");
    let closed = || {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        writer
    };
    // Warnings about the archive's problems (the default filter's, which these tests otherwise
    // turn down), then the error line; the refresh they came from is kept.
    let out = r.cmd(&["show", "no-such-id"]).env_remove("CONVMETA_LOG").stderr(closed()).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{:?}", out.status);
    let status: serde_json::Value = serde_json::from_str(&ok(r.cmd(&["status", "--json"]))).unwrap();
    assert!(status["conversations"].as_u64().unwrap() > 100, "{status}");
    // The line saying why a listing is empty.
    let out = r.cmd(&["list", "-q", "matches nothing at all"]).stderr(closed()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", out.status);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("MODIFIED"));
}

/// On a terminal log lines are coloured, unless `NO_COLOR` is set (no-color.org).
#[test]
fn on_a_terminal_colours_follow_no_color() {
    use crate::util::on_terminal;
    // Warnings about the pack's broken conversations, on a terminal, with and without NO_COLOR.
    let r = restore("archive");
    let (coloured, success) = on_terminal({
        let mut c = r.cmd(&["list"]);
        c.env("CONVMETA_LOG", "warn").env_remove("NO_COLOR");
        c
    });
    assert!(success && coloured.contains(" WARN") && coloured.contains("\x1b[33m"), "{coloured:?}");
    std::fs::remove_file(&r.db).unwrap();
    let (plain, success) = on_terminal({
        let mut c = r.cmd(&["list"]);
        c.env("CONVMETA_LOG", "warn").env("NO_COLOR", "1");
        c
    });
    assert!(success && plain.contains(" WARN") && !plain.contains('\x1b'), "{plain:?}");
}

/// An empty listing says why on stderr (most often `--logs` names the wrong directory); the
/// JSON stays exactly what the endpoint serves.
#[test]
fn an_empty_listing_says_why() {
    let r = restore("archive");
    let run = |logs: &std::path::Path, extra: &[&str]| {
        let name = logs.file_name().unwrap().to_string_lossy();
        let db = r.arch.parent().unwrap().join(format!("{name}-{}.sqlite3", extra.len()));
        let out = convmeta().arg("list").arg("--logs").arg(logs).arg("--db").arg(&db).args(extra).output().unwrap();
        assert!(out.status.success());
        (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
    };
    let one = r.arch.join("edge-agent");
    let (out, err) = run(&one, &[]);
    assert_eq!(out.lines().count(), 1, "the header only: {out}");
    assert!(err.contains("is one conversation") && err.contains(&r.arch.display().to_string()), "{err}");
    let empty = r.arch.parent().unwrap().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(run(&empty, &[]).1.contains("no conversations in"));
    assert!(run(&empty, &["-q", "  "]).1.contains("no conversations in"), "a blank -q filters nothing");
    assert_eq!(run(&empty, &["--json"]), ("[]\n".to_owned(), String::new()));
    assert!(run(&r.arch, &["-q", "no such words anywhere"])
        .1
        .contains("no conversation's name, id or preview contains"));
    // gptme's data directory, which holds the logs directory.
    let data = r.arch.parent().unwrap().join("data");
    std::fs::create_dir_all(data.join("logs/one")).unwrap();
    std::fs::copy(one.join("conversation.jsonl"), data.join("logs/one/conversation.jsonl")).unwrap();
    let said = run(&data, &[]).1;
    assert!(said.contains(&format!("but in {}: pass that as --logs", data.join("logs").display())), "{said}");
    let only_tests = r.arch.parent().unwrap().join("only-tests");
    std::fs::create_dir_all(only_tests.join("test-one")).unwrap();
    std::fs::copy(one.join("conversation.jsonl"), only_tests.join("test-one/conversation.jsonl")).unwrap();
    assert!(run(&only_tests, &[]).1.contains("all 1 conversations here are hidden"));
}

/// A name from an untrusted archive cannot break the table or send the terminal escape codes.
#[test]
fn control_characters_in_a_name_print_escaped_on_one_line() {
    let r = restore("archive");
    let logs = r.arch.parent().unwrap().join("escapes");
    std::fs::create_dir_all(logs.join("c1")).unwrap();
    std::fs::copy(r.arch.join("edge-agent/conversation.jsonl"), logs.join("c1/conversation.jsonl")).unwrap();
    std::fs::write(logs.join("c1/config.toml"), "[chat]\nname = \"two\\nlines \\u001b[31mred\"\n").unwrap();
    let db = logs.with_extension("sqlite3");
    let run = |args: &[&str]| ok(convmeta().args(args).arg("--logs").arg(&logs).arg("--db").arg(&db));
    let list = run(&["list"]);
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.contains("two lines \\u{1b}[31mred (c1)"), "{list}");
    let show = run(&["show", "c1"]);
    assert!(show.contains("name: two lines \\u{1b}[31mred\n"), "{show}");
    for out in [&list, &show] {
        assert!(!out.contains('\u{1b}'), "{out}");
    }
    // The JSON keeps the name exactly.
    assert!(run(&["list", "--json"]).contains(r#""name":"two\nlines \u001b[31mred""#));
}

#[test]
fn status_show_and_list_speak_plainly() {
    let r = restore("archive");
    // Before any index: said so, and, as the commands that only read make nothing, none made
    // (a mistyped --db had left an empty database behind).
    let out = ok(r.cmd(&["status"]));
    assert!(out.contains("(none yet)") && out.contains("never"), "{out}");
    assert_eq!(crate::util::parse(&ok(r.cmd(&["status", "--json"])))["schema_version"], 0);
    let out = fail(r.cmd(&["query", "--no-refresh", "SELECT 1"]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no index at") && err.contains("run `convmeta backfill`"), "{err}");
    assert!(!r.db.exists(), "a reading command made the database");
    let out = ok(r.cmd(&["backfill"]));
    assert!(out.starts_with("indexed 135 conversations"), "{out}");
    let out = ok(r.cmd(&["status"]));
    assert!(out.contains("135 (7 hidden"), "{out}");
    assert!(out.contains("(135 read whole, "), "what the last refresh did: {out}");
    let logs = r.arch.display().to_string();
    assert!(out.starts_with(&format!("logs:           {logs}\n")), "{out}");
    // The same index asked about another directory says whose rows it holds.
    let other = r.home.join("other-logs");
    std::fs::create_dir(&other).unwrap();
    let mut c = convmeta();
    c.args(["status", "--json", "--db"]).arg(&r.db).arg("--logs").arg(&other);
    let s = crate::util::parse(&ok(c));
    assert_eq!((s["logs"].as_str(), s["rows_of"].as_str()), (other.to_str(), Some(logs.as_str())), "{s}");
    let mut c = convmeta();
    c.args(["status", "--db"]).arg(&r.db).arg("--logs").arg(&other);
    let out = ok(c);
    assert!(out.contains(&format!("(the rows below are of {logs}, as last refreshed; ")), "{out}");
    // An interrupted backfill leaves rows but no record of a finished refresh.
    let conn = rusqlite::Connection::open(&r.db).unwrap();
    conn.execute("DELETE FROM _meta WHERE key = 'last_refresh'", []).unwrap();
    drop(conn);
    let out = ok(r.cmd(&["status"]));
    assert!(out.contains("last refresh:   none finished (run `convmeta backfill`"), "{out}");
    let out = ok(r.cmd(&["list", "--limit", "3"]));
    assert_eq!(out.lines().count(), 4, "header + 3 rows: {out}");
    let out = ok(r.cmd(&["list", "--limit", "0"]));
    assert_eq!(out.lines().count(), 1 + 128, "0 lists all 135 but the 7 hidden: {out}");
    assert_eq!(ok(r.cmd(&["list", "--limit", "184467440737095516160"])), out, "a count too large to hold: all");
    let out = ok(r.cmd(&["show", "edge-agent"]));
    assert!(out.contains("agent_name: Bob") && !out.contains("hidden"), "{out}");
    // Why a conversation `show` finds is in no list.
    let hidden = ok(r.cmd(&["show", "test-quokka-hidden"]));
    assert!(hidden.contains("hidden: yes, in no list (gptme leaves out ids starting with tmp or test-"), "{hidden}");
    // The directory itself names it too, as a shell completes it.
    let dir = format!("{}/", r.arch.join("edge-agent").display());
    assert_eq!(ok(r.cmd(&["show", "edge-agent/"])), out);
    assert_eq!(ok(r.cmd(&["show", &dir])), out);
    // And the log in it, as an item's `path` names it.
    assert_eq!(ok(r.cmd(&["show", &format!("{dir}conversation.jsonl")])), out);
    fail(r.cmd(&["show", "elsewhere/edge-agent"]));
    // Part of an id or a name, in any case: not found, but the error names what holds it (hidden
    // ones too, as `show` shows them), closest first: ids that end with it (an id typed
    // without its date), then ids that hold it, then names, each newest first; and how many
    // more do.
    let err = |id: &str| String::from_utf8(fail(r.cmd(&["show", id])).stderr).unwrap();
    assert_eq!(
        err("QUOKKA").trim_end(),
        "convmeta: no conversation with id \"QUOKKA\"; did you mean one of: test-quokka-hidden, \
         2025-11-03-quokka-migration, edge-search-name?"
    );
    assert!(err("walrus")
        .contains("did you mean one of: 2024-10-13-building-quiet-walrus, 2025-12-15-gptme-evals-walrus-7?"));
    assert!(err("Notes").contains("did you mean one of: 2025-11-03-benchmark-notes, edge-"), "{}", err("Notes"));
    assert_eq!(
        err("tie-oct").trim_end(),
        "convmeta: no conversation with id \"tie-oct\"; did you mean 2025-12-26-tie-octopus?"
    );
    assert!(err("edge-").contains(" (or 42 more)?"), "{}", err("edge-"));
    assert_eq!(err("zzzz").trim_end(), "convmeta: no conversation with id \"zzzz\"");
}

/// A log filter that does not parse is said once on stderr, and the command runs as without it,
/// logging as by default (a problem in the archive is still logged).
#[test]
fn a_log_filter_that_does_not_parse_is_said_and_the_command_runs() {
    let r = restore("archive");
    let plain = ok(r.cmd(&["list", "--json"]));
    let out = r.cmd(&["list", "--json"]).env("CONVMETA_LOG", "convmeta=verbose").output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), plain);
    let err = String::from_utf8(out.stderr).unwrap();
    let said: Vec<&str> = err.lines().filter(|l| l.contains("CONVMETA_LOG")).collect();
    assert_eq!(said.len(), 1, "{err}");
    assert!(said[0].contains(r#"CONVMETA_LOG="convmeta=verbose" is not a log filter"#), "{err}");
    // The default filter: a fresh index logs the archive's problems at warn level.
    let mut fresh = convmeta();
    fresh.arg("list").arg("--logs").arg(&r.arch).arg("--db").arg(r.db.with_extension("fresh.sqlite3"));
    let out = fresh.env("CONVMETA_LOG", "convmeta=verbose").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("problems in conversation"));
}

#[test]
fn errors_are_one_clear_line() {
    let r = restore("archive-crashers/unknown-chat-key");
    let out = fail(r.cmd(&["show", "no-such-id"]));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no conversation with id \"no-such-id\""), "{err}");

    let out = fail(convmeta().args(["list", "--logs", "/definitely/not/here"]));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));

    // SQL on standard input that is not UTF-8.
    let mut c = r.cmd(&["query", "-"]);
    let mut child = c.stdin(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"SELECT '\xff'").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stderr), "convmeta: the SQL on standard input is not UTF-8\n");
    // Standard input that never ends is read only so far.
    let out = fail(r.cmd(&["query", "-"]).stdin(std::fs::File::open("/dev/zero").unwrap()));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "convmeta: the SQL on standard input is over 64 MiB: is that the input meant?\n"
    );

    // Numbers out of range say which and what is wanted; a negative one is a value, not an
    // unknown flag. No threads at all (it had meant one), no safety sweep (it had meant one a
    // second), no rows.
    for (args, why) in [
        (&["backfill", "--jobs", "0"][..], "invalid value '0' for '--jobs <N>': a number of threads, 1 or more"),
        (&["backfill", "--jobs", "-2"], "invalid value '-2' for '--jobs <N>': a number of threads, 1 or more"),
        (&["list", "--limit", "-1"], "invalid value '-1' for '--limit <N>': a number of conversations, 0 or more"),
        (&["query", "--timeout", "-1", "SELECT 1"], "invalid value '-1' for '--timeout <SECONDS>': a positive number"),
        (&["serve", "--safety-sweep", "0"], "invalid value '0' for '--safety-sweep <SECONDS>': a positive number"),
        (&["serve", "--sql-max-rows", "0"], "invalid value '0' for '--sql-max-rows <N>': a number of rows, 1 or more"),
        (&["serve", "--sql-timeout", "-0.5"], "invalid value '-0.5' for '--sql-timeout <SECONDS>': a positive number"),
    ] {
        let out = r.cmd(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(why), "{args:?}: {err}");
    }

    // An upstream that is no http:// URL: refused at start, saying what it takes.
    for (url, why) in
        [("127.0.0.1:5700", "such as http://127.0.0.1:5700"), ("https://127.0.0.1:5700", "must be an http:// URL")]
    {
        let out = fail(r.cmd(&["serve", "--addr", "127.0.0.1:0", "--upstream", url]));
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.starts_with(&format!("convmeta: --upstream {url}: ")) && err.contains(why), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }

    // A port alone is no address.
    let out = fail(r.cmd(&["serve", "--addr", "5702"]));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("convmeta: cannot resolve --addr 5702 (it takes HOST:PORT, such as 127.0.0.1:5702)"),
        "{err}"
    );

    // A file that is not ours is refused and left as it was.
    let foreign = r.arch.parent().unwrap().join("notes.txt");
    std::fs::write(&foreign, "my precious notes, not a database").unwrap();
    // Nor can a database be made inside it.
    for inside in [foreign.join("x.sqlite3"), foreign.join("deeper/x.sqlite3")] {
        let out = fail(convmeta().arg("list").arg("--logs").arg(&r.arch).arg("--db").arg(&inside));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not a directory, so no database can be made in it"), "{err}");
        assert!(err.contains("(pass --db, or set CONVMETA_DB, to keep the index elsewhere)"), "{err}");
    }
    let out = fail(convmeta().arg("list").arg("--logs").arg(&r.arch).arg("--db").arg(&foreign));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a convmeta database"));
    assert_eq!(std::fs::read_to_string(&foreign).unwrap(), "my precious notes, not a database");
    let other = r.arch.parent().unwrap().join("other.sqlite3");
    rusqlite::Connection::open(&other).unwrap().execute_batch("CREATE TABLE mine (x)").unwrap();
    let out = fail(convmeta().arg("list").arg("--logs").arg(&r.arch).arg("--db").arg(&other));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a convmeta database"));
    // An unmarked SQLite file whose schema cannot be read may be anyone's: refused too, untouched.
    let mut damaged = std::fs::read(&other).unwrap();
    damaged[100..].fill(0xAB);
    std::fs::write(&other, &damaged).unwrap();
    let out = fail(convmeta().arg("list").arg("--logs").arg(&r.arch).arg("--db").arg(&other));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a damaged SQLite file not marked as convmeta's") && err.lines().count() == 1, "{err}");
    assert_eq!(std::fs::read(&other).unwrap(), damaged);

    // A FIFO, a directory or a device is no database: refused at once (a FIFO must not hang).
    let fifo = r.arch.parent().unwrap().join("fifo.sqlite3");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    for db in [fifo.as_path(), r.arch.parent().unwrap(), std::path::Path::new("/dev/null")] {
        for command in ["list", "status"] {
            let mut c = convmeta();
            c.args([command, "--logs"]).arg(&r.arch).arg("--db").arg(db);
            let out = output_within(c, std::time::Duration::from_secs(60));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success() && err.lines().count() == 1, "{command} {}: {err}", db.display());
            assert!(err.contains("not a regular file"), "{command} {}: {err}", db.display());
        }
    }

    // Inside the logs directory, which convmeta never writes (in a conversation's directory each
    // write was a change of that conversation): refused, nothing made there.
    let before = crate::util::snapshot(&r.arch);
    for db in [r.arch.join("index.sqlite3"), r.arch.join("edge-agent").join("index.sqlite3"), r.arch.clone()] {
        let out = fail(convmeta().arg("list").arg("--logs").arg(&r.arch).arg("--db").arg(&db));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("is inside the logs directory") && err.contains("pass a --db outside it"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert_eq!(crate::util::snapshot(&r.arch), before);

    // A taken port is reported before any indexing: the database is not even created.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let db = r.arch.parent().unwrap().join("never.sqlite3");
    let out = fail(convmeta().args(["serve", "--addr", &addr, "--logs"]).arg(&r.arch).arg("--db").arg(&db));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    assert!(!db.exists());
}

#[test]
fn defaults_follow_gptme_and_xdg() {
    let r = restore("archive-crashers/unknown-chat-key");
    let cache = r.home.join("cache");
    let out = ok(convmeta()
        .env("HOME", &r.home)
        .env("GPTME_LOGS_HOME", &r.arch)
        .env("XDG_CACHE_HOME", &cache)
        .args(["list", "--json"]));
    assert!(out.contains("healthy-neighbour"));
    let dbs: Vec<_> = std::fs::read_dir(cache.join("convmeta"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(dbs.iter().any(|n| n.starts_with("archive-") && n.ends_with(".sqlite3")), "{dbs:?}");
    // A relative `$XDG_CACHE_HOME` is ignored, as the XDG spec says, not taken from wherever the
    // command runs.
    for relative in ["cache", " /cache"] {
        let mut c = convmeta();
        c.env("HOME", &r.home).env("GPTME_LOGS_HOME", &r.arch).env("XDG_CACHE_HOME", relative).current_dir(&r.home);
        let status = crate::util::parse(&ok(c.args(["status", "--json"])));
        let db = status["db"].as_str().unwrap();
        assert!(db.starts_with(&format!("{}/.cache/convmeta/archive-", r.home.display())), "{relative:?}: {db}");
    }
    // As gptme reads them: surrounding whitespace dropped, a blank one unset, and without
    // `$HOME` the home the password database gives.
    let padded = format!("  {}\t", r.arch.display());
    let out = ok(convmeta().env("GPTME_LOGS_HOME", &padded).env("XDG_CACHE_HOME", &cache).args(["list", "--json"]));
    assert!(out.contains("healthy-neighbour"));
    let xdg = r.home.join("data");
    let out = fail(convmeta().env("GPTME_LOGS_HOME", " ").env("XDG_DATA_HOME", &xdg).arg("list"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}/gptme/logs does not exist", xdg.display())), "{err}");
    let home =
        unsafe { std::ffi::CStr::from_ptr((*libc::getpwuid(libc::getuid())).pw_dir) }.to_str().unwrap().to_owned();
    let out = convmeta()
        .env_remove("HOME")
        .env_remove("GPTME_LOGS_HOME")
        .env_remove("XDG_DATA_HOME")
        .args(["status", "--json", "--db"])
        .arg(r.home.join("status.sqlite3"))
        .output()
        .unwrap();
    // Listed if that home holds gptme's logs, refused by name if not.
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(said.contains(&format!("{}/.local/share/gptme/logs", home.trim_end_matches('/'))), "{said}");
}

/// A database named alone (`--db`, `$CONVMETA_DB`) reads the archive it was last refreshed for,
/// not gptme's default one (which would take the index over); `--logs` and `$GPTME_LOGS_HOME`
/// still win. With that archive gone, the commands that only read still read the database.
#[test]
fn a_database_named_alone_reads_the_archive_it_indexes() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, db) = (tmp.path().join("home"), tmp.path().join("index.sqlite3"));
    let (ours, default) = (tmp.path().join("ours"), home.join(".local/share/gptme/logs"));
    let line = |text: &str| format!("{{\"role\": \"user\", \"content\": \"{text}\"}}\n");
    for id in ["ours-1", "ours-2"] {
        write_conversation(&ours, id, &line(id), None);
    }
    write_conversation(&default, "default-1", &line("default"), None);
    let cmd = |args: &[&str]| {
        let mut c = convmeta();
        c.env("HOME", &home).args(args);
        c
    };
    ok(cmd(&["backfill", "--logs"]).arg(&ours).arg("--db").arg(&db));
    let stored = crate::util::dump(&db);
    let ids = |json: &str| -> Vec<String> {
        let items = crate::util::parse(json);
        items.as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
    };
    let by_flag = ok(cmd(&["list", "--json", "--db"]).arg(&db));
    let by_env = ok(cmd(&["list", "--json"]).env("CONVMETA_DB", &db));
    for listed in [by_flag, by_env] {
        assert_eq!(ids(&listed), ["ours-2", "ours-1"]);
    }
    assert_eq!(crate::util::dump(&db), stored, "nothing rendered again");
    let logs_of = |c: &mut std::process::Command| crate::util::parse(&ok(c))["logs"].as_str().unwrap().to_owned();
    assert_eq!(logs_of(cmd(&["status", "--json", "--db"]).arg(&db)), ours.display().to_string());
    let named = logs_of(cmd(&["status", "--json", "--db"]).arg(&db).env("GPTME_LOGS_HOME", &default));
    assert_eq!(named, default.display().to_string(), "$GPTME_LOGS_HOME names it outright");
    let named = logs_of(cmd(&["status", "--json", "--logs"]).arg(&default).arg("--db").arg(&db));
    assert_eq!(named, default.display().to_string(), "so does --logs");

    // Its archive moved away: gptme's default is read, as before.
    let moved = tmp.path().join("moved");
    std::fs::rename(&ours, &moved).unwrap();
    assert_eq!(logs_of(cmd(&["status", "--json", "--db"]).arg(&db)), default.display().to_string());
    // And with no default either, the database alone: read as it stands, not refreshed.
    std::fs::remove_dir_all(&home).unwrap();
    let status = ok(cmd(&["status", "--db"]).arg(&db));
    assert!(status.contains(&format!("{} (not there now", ours.display())), "{status}");
    assert!(status.contains("conversations:  2 "), "{status}");
    let counted = ok(cmd(&["query", "--no-refresh", "--format", "json", "--db"])
        .arg(&db)
        .arg("SELECT count(*) AS n FROM conversations"));
    assert_eq!(crate::util::parse(&counted)[0]["n"], 2);
    let out = fail(cmd(&["query", "--db"]).arg(&db).arg("SELECT 1"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("logs directory {} does not exist", ours.display())), "{err}");
    assert_eq!(crate::util::dump(&db), stored, "the database is as it was");
}

/// SQLite reads a name beginning `file:` as a URI; given as `--db` or `CONVMETA_DB`, it is the
/// file of that name all the same.
#[test]
fn a_database_named_like_a_uri_is_a_file_of_that_name() {
    let r = restore("archive-crashers/unknown-chat-key");
    let name = "file:index.sqlite3?mode=memory&cache=shared";
    let run = |c: &mut std::process::Command| ok(c.current_dir(&r.home).env("GPTME_LOGS_HOME", &r.arch));
    run(convmeta().args(["backfill", "--db", name]));
    let by_flag = crate::util::parse(&run(convmeta().args(["status", "--json", "--db", name])));
    let by_env = crate::util::parse(&run(convmeta().args(["status", "--json"]).env("CONVMETA_DB", name)));
    for s in [&by_flag, &by_env] {
        assert!(s["conversations"].as_u64().unwrap() > 0, "{s}");
    }
    let files: Vec<_> =
        std::fs::read_dir(&r.home).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(files.iter().any(|f| f == name), "{files:?}");
    assert!(!files.iter().any(|f| f.contains(".corrupt-")), "nothing taken for damage: {files:?}");
}

#[test]
fn a_corrupt_database_is_moved_aside_and_rebuilt() {
    let r = restore("archive-crashers/unknown-chat-key");
    ok(r.cmd(&["backfill"]));
    // Keep the header (so it is recognisably ours) and wreck the pages after it.
    let mut bytes = std::fs::read(&r.db).unwrap();
    for b in bytes.iter_mut().skip(100) {
        *b = 0xAB;
    }
    std::fs::write(&r.db, &bytes).unwrap();
    let _ = std::fs::remove_file(format!("{}-wal", r.db.display()));
    let out = ok(r.cmd(&["list", "--json"]));
    assert!(out.contains("healthy-neighbour"));
    let kept = std::fs::read_dir(r.db.parent().unwrap())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains(".corrupt-"))
        .count();
    assert!(kept >= 1, "the damaged file is kept for inspection");
}

/// Each damage moves the database aside, but only the newest three are kept: a disk that keeps
/// damaging the index does not fill with copies of a cache.
#[test]
fn only_the_newest_damaged_databases_are_kept() {
    let r = restore("archive-crashers/unknown-chat-key");
    let damaged = || -> std::collections::BTreeSet<String> {
        std::fs::read_dir(r.db.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".corrupt-"))
            .collect()
    };
    let mut moved = Vec::new();
    for _ in 0..5 {
        ok(r.cmd(&["backfill"]));
        let mut bytes = std::fs::read(&r.db).unwrap();
        bytes[100..].fill(0xAB);
        std::fs::write(&r.db, &bytes).unwrap();
        let _ = std::fs::remove_file(format!("{}-wal", r.db.display()));
        let before = damaged();
        assert!(ok(r.cmd(&["list", "--json"])).contains("healthy-neighbour"));
        let new: Vec<String> = damaged().difference(&before).cloned().collect();
        assert_eq!(new.len(), 1, "round {}: {new:?} {before:?}", moved.len());
        moved.extend(new);
    }
    assert_eq!(damaged(), moved[2..].iter().cloned().collect(), "the newest three");
}

/// The index copies names and excerpts of private conversations: what convmeta makes for it is
/// its owner's alone, whatever the umask; what is already there keeps its permissions, and a
/// rebuilt database those of the one it replaces.
#[test]
fn the_index_is_readable_by_its_owner_alone() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let r = restore("archive-crashers/unknown-chat-key");
    let cache = r.home.join("cache/deep");
    let run = |args: &[&str]| {
        let mut c = convmeta();
        c.env("HOME", &r.home).env("GPTME_LOGS_HOME", &r.arch).env("XDG_CACHE_HOME", &cache).args(args);
        // SAFETY: umask is async-signal-safe, as the code between fork and exec must be.
        unsafe { c.pre_exec(|| Ok(_ = libc::umask(0o022))) };
        ok(c)
    };
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let db = std::path::PathBuf::from(crate::util::parse(&run(&["status", "--json"]))["db"].as_str().unwrap());
    assert!(!db.exists(), "status makes no database");
    assert!(run(&["list", "--json"]).contains("healthy-neighbour"));
    for dir in [r.home.join("cache"), cache.clone(), cache.join("convmeta")] {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    }
    assert_eq!(mode(&db), 0o600);

    // Shared with a group by hand: kept so, by a refresh and by a rebuild.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).unwrap();
    run(&["backfill"]);
    assert_eq!(mode(&db), 0o640);
    let mut bytes = std::fs::read(&db).unwrap();
    bytes[100..].fill(0xAB);
    std::fs::write(&db, &bytes).unwrap();
    assert!(run(&["list", "--json"]).contains("healthy-neighbour"));
    let names: Vec<String> = std::fs::read_dir(db.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().any(|n| n.contains(".corrupt-")), "rebuilt: {names:?}");
    assert_eq!(mode(&db), 0o640);
}

/// A naive timestamp in a daylight-saving gap or overlap reads as Python's `timestamp()` reads
/// it (fold=0: the earlier instant in an overlap, the later candidate in a gap), east and west
/// of UTC. POSIX zone strings need no zone database; the values are CPython 3's.
#[test]
fn naive_timestamps_in_dst_gaps_and_overlaps_read_as_python_reads_them() {
    let cases = [
        ("CET-1CEST,M3.5.0,M10.5.0/3", "2026-03-29T02:30:00", 1774747800.0),
        ("CET-1CEST,M3.5.0,M10.5.0/3", "2026-10-25T02:30:00.500000", 1792888200.5),
        ("EST5EDT,M3.2.0,M11.1.0", "2026-03-08T02:30:00", 1772955000.0),
        ("EST5EDT,M3.2.0,M11.1.0", "2026-11-01T01:30:00.250000", 1793511000.25),
    ];
    for (tz, timestamp, created) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("logs/c");
        std::fs::create_dir_all(&dir).unwrap();
        let line = format!("{{\"role\": \"user\", \"content\": \"hi\", \"timestamp\": \"{timestamp}\"}}\n");
        std::fs::write(dir.join("conversation.jsonl"), line).unwrap();
        let out = ok(convmeta()
            .env("TZ", tz)
            .args(["list", "--json", "--logs"])
            .arg(tmp.path().join("logs"))
            .arg("--db")
            .arg(tmp.path().join("db.sqlite3")));
        let items: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(items[0]["created"].as_f64(), Some(created), "{tz} {timestamp}");
    }
}

/// A naive timestamp is read in the time zone of the process that reads it, so rows computed
/// under one zone are rendered again when the index is used under another (a server run by
/// systemd in UTC, `convmeta list` from a shell with `TZ` set), and only then: from the state
/// stored with each row, without reading its log or side files (only `created` changes), but
/// where the zone decided which line gives `created` (a naive timestamp near the ends of
/// Python's range, years 1 and 9999).
#[test]
fn a_change_of_time_zone_renders_naive_timestamps_again() {
    let said_at = |t: &str| format!("{{\"role\": \"user\", \"content\": \"hi\", \"timestamp\": \"{t}\"}}\n");
    let (tmp, logs) = archive_of(&[
        ("naive", said_at("2026-01-01T00:00:00"), None),
        ("aware", said_at("2026-01-01T00:00:00+00:00"), None),
        ("year-one", said_at("0001-01-03T00:00:00"), None),
        // Half-written (no newline yet): `created` comes from a line the state does not hold.
        ("half-written", said_at("2026-01-01T00:00:00").trim_end().to_owned(), None),
    ]);
    let run = |tz: &str, db: &str, args: &[&str]| {
        let out = convmeta()
            .env("TZ", tz)
            .env("CONVMETA_LOG", "warn")
            .args(args)
            .arg("--logs")
            .arg(&logs)
            .arg("--db")
            .arg(tmp.path().join(db))
            .output()
            .unwrap();
        assert!(out.status.success());
        (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
    };
    let list = |tz: &str| {
        let (out, said) = run(tz, "db.sqlite3", &["list", "--json"]);
        let items: serde_json::Value = serde_json::from_str(&out).unwrap();
        let created = |id: &str| items.as_array().unwrap().iter().find(|i| i["id"] == id).unwrap()["created"].as_f64();
        ((created("naive"), created("aware"), created("year-one"), created("half-written")), said, out)
    };
    let (utc, year_one) = (1767225600.0, -62135424000.0);
    let (created, said, _) = list("UTC0");
    assert_eq!(created, (Some(utc), Some(utc), Some(year_one), Some(utc)));
    assert!(!said.contains("time zone"), "{said}");
    let (summary, said) = run("IST-5:30", "db.sqlite3", &["backfill"]);
    assert!(said.contains("time zone changed"), "{said}");
    assert!(
        summary.contains("1 read whole, 1 side files only, 1 rendered for this time zone, 2 unchanged"),
        "year one's log is read whole, the half-written line again, and the naive timestamp's row rendered from its state: {summary}"
    );
    let (created, said, listed) = list("IST-5:30");
    assert_eq!(created, (Some(utc - 19800.0), Some(utc), Some(year_one - 19800.0), Some(utc - 19800.0)));
    assert!(!said.contains("time zone"), "nothing to say, nothing read again: {said}");
    assert_eq!(listed, run("IST-5:30", "fresh.sqlite3", &["list", "--json"]).0, "as a fresh index in that zone");
    let (created, _, _) = list("UTC0");
    assert_eq!(created, (Some(utc), Some(utc), Some(year_one), Some(utc)), "and back");

    // A state stored before session 37 kept the instant alone: read again under another zone.
    let conn = rusqlite::Connection::open(tmp.path().join("db.sqlite3")).unwrap();
    let as_before = "UPDATE _scan_state SET accumulator = json_set(accumulator, '$.created', json_object('At', ?1)) \
                     WHERE id = 'naive'";
    assert_eq!(conn.execute(as_before, [utc]).unwrap(), 1);
    drop(conn);
    let (summary, _) = run("IST-5:30", "db.sqlite3", &["backfill"]);
    assert!(summary.contains("2 read whole, 1 side files only, 1 unchanged"), "{summary}");
    assert_eq!(list("IST-5:30").0, (Some(utc - 19800.0), Some(utc), Some(year_one - 19800.0), Some(utc - 19800.0)));

    // An item that is not as convmeta writes it cannot have its `created` replaced: it is
    // rendered whole instead, from its state and side files.
    let conn = rusqlite::Connection::open(tmp.path().join("db.sqlite3")).unwrap();
    assert_eq!(
        conn.execute("UPDATE conversations SET item_json = '{\"created\": 1' WHERE id = 'naive'", []).unwrap(),
        1
    );
    drop(conn);
    let (summary, _) = run("UTC0", "db.sqlite3", &["backfill"]);
    assert!(summary.contains("1 read whole, 2 side files only, 1 unchanged"), "{summary}");
    let (created, _, listed) = list("UTC0");
    assert_eq!(created, (Some(utc), Some(utc), Some(year_one), Some(utc)));
    assert_eq!(listed, run("UTC0", "fresh-utc.sqlite3", &["list", "--json"]).0, "as a fresh index in that zone");
}

/// A zone is known by its file, not by the name it goes by: `TZ` naming the same file through a
/// link (as `TZ=Europe/Berlin` in a shell, and a service's `/etc/localtime` linking there) reads
/// nothing again; another zone does. An index recorded under the key of earlier versions (the
/// zone file's name and identity) is not read again for that alone.
#[test]
fn one_zone_under_two_names_shares_the_index() {
    use std::os::unix::fs::MetadataExt;
    let (tmp, logs) = archive_of(&[(
        "naive",
        r#"{"role": "user", "content": "hi", "timestamp": "2026-01-01T00:00:00"}"#.to_owned() + "\n",
        None,
    )]);
    let db = tmp.path().join("db.sqlite3");
    // A TZif file (version 1) of one fixed offset, `offset` seconds east of UTC.
    let zone_file = |name: &str, offset: i32| {
        let mut tzif = b"TZif".to_vec();
        tzif.extend([0u8; 16]);
        for count in [0u32, 0, 0, 0, 1, 4] {
            tzif.extend(count.to_be_bytes());
        }
        tzif.extend(offset.to_be_bytes());
        tzif.extend([0, 0]);
        tzif.extend(b"ZZZ\0");
        let path = tmp.path().join(name);
        std::fs::write(&path, tzif).unwrap();
        path
    };
    let list = |zone: &std::path::Path| {
        let out = convmeta()
            .env("TZ", zone)
            .env("CONVMETA_LOG", "info")
            .args(["list", "--json", "--logs"])
            .arg(&logs)
            .arg("--db")
            .arg(&db)
            .output()
            .unwrap();
        assert!(out.status.success());
        let items: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (items[0]["created"].as_f64().unwrap(), String::from_utf8(out.stderr).unwrap())
    };
    let utc = 1767225600.0;
    let (india, nepal) = (zone_file("india", 19800), zone_file("nepal", 20700));
    let (symlink, hard_link) = (tmp.path().join("symlink"), tmp.path().join("hard-link"));
    std::os::unix::fs::symlink(&india, &symlink).unwrap();
    std::fs::hard_link(&india, &hard_link).unwrap();
    assert_eq!(list(&india).0, utc - 19800.0);
    for link in [&symlink, &hard_link] {
        let (created, said) = list(link);
        assert_eq!(created, utc - 19800.0);
        assert!(!said.contains("reading every conversation again"), "the same zone: {said}");
    }
    let (created, said) = list(&nepal);
    assert_eq!(created, utc - 20700.0);
    assert!(said.contains("time zone changed"), "another zone: {said}");

    // As an earlier version recorded Nepal's zone: by the file's name and identity.
    let m = std::fs::metadata(&nepal).unwrap();
    let legacy = format!(
        "TZ={:?} ({}: {}:{}:{}:{})",
        nepal.to_str().unwrap(),
        nepal.display(),
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime()
    );
    let conn = rusqlite::Connection::open(&db).unwrap();
    assert_eq!(conn.execute("UPDATE _meta SET value = ?1 WHERE key = 'zone'", [&legacy]).unwrap(), 1);
    drop(conn);
    let (created, said) = list(&nepal);
    assert_eq!(created, utc - 20700.0);
    assert!(!said.contains("reading every conversation again"), "recorded under the earlier key: {said}");
}

/// Each item's `path` starts with the logs dir as named, absolute, as gptme names it. One index
/// serves every name of the same directory (the default database is keyed by its realpath), so
/// a different name renders the items again; another spelling of the same name (a trailing
/// slash, `./`, `//`) is no different name, and renders nothing again.
#[test]
fn paths_follow_the_logs_dir_as_named() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(logs.join("c")).unwrap();
    std::fs::write(logs.join("c/conversation.jsonl"), "{\"role\": \"user\", \"content\": \"hi\"}\n").unwrap();
    std::os::unix::fs::symlink(&logs, tmp.path().join("link")).unwrap();
    let path_of = |logs: &str| {
        let out = ok(convmeta()
            .current_dir(tmp.path())
            .args(["list", "--json", "--logs", logs, "--db"])
            .arg(tmp.path().join("db.sqlite3")));
        let items: serde_json::Value = serde_json::from_str(&out).unwrap();
        items[0]["path"].as_str().unwrap().to_string()
    };
    let under = |name: &str| tmp.path().join(name).join("c/conversation.jsonl").display().to_string();
    assert_eq!(path_of("logs"), under("logs"), "a relative name is made absolute");
    assert_eq!(path_of("link"), under("link"));
    assert_eq!(path_of(&logs.display().to_string()), under("logs"));
    for spelling in ["logs/", "./logs//", &format!("{}/./", logs.display())] {
        let out = convmeta()
            .current_dir(tmp.path())
            .args(["list", "--json", "--logs", spelling, "--db"])
            .arg(tmp.path().join("db.sqlite3"))
            .env("CONVMETA_LOG", "warn")
            .output()
            .unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && stderr.is_empty(), "{spelling}: {stderr}");
        let items: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(items[0]["path"], under("logs").as_str(), "{spelling}");
    }
}

/// A workspace written as `~/…` is expanded with `$HOME`, a relative one resolved from the
/// working directory, as gptme does when it lists: rows that used either are rendered again
/// when the process that reads them has another (a server run by another user, `convmeta list`
/// from another directory), and only those.
/// gptme expands `~` in `[chat].agent` and resolves the path (symlinks, `..`, a trailing slash,
/// relative to the working directory) before giving it as `agent_path` and reading its
/// `gptme.toml`. Indexes of earlier schemas, which held other values, are read again.
#[test]
fn agent_paths_are_expanded_and_resolved_as_gptme_does() {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap();
    let logs = root.join("logs");
    std::fs::create_dir_all(root.join("agents/bob")).unwrap();
    std::fs::write(root.join("agents/bob/gptme.toml"), "[agent]\nname = \"Bob\"\n").unwrap();
    std::os::unix::fs::symlink(root.join("agents/bob"), root.join("link")).unwrap();
    let at = |p: &str| root.join(p).display().to_string();
    let cases = [
        ("tilde", "~/agents/bob/".to_string(), at("agents/bob")),
        ("symlink", at("link"), at("agents/bob")),
        ("dots", at("agents/x/../bob"), at("agents/bob")),
        ("relative", "agents/./bob".to_string(), at("agents/bob")),
        ("missing", at("nowhere/"), at("nowhere")),
    ];
    for (id, agent, _) in &cases {
        std::fs::create_dir_all(logs.join(id)).unwrap();
        std::fs::write(logs.join(id).join("conversation.jsonl"), "{\"role\": \"user\", \"content\": \"hi\"}\n")
            .unwrap();
        std::fs::write(logs.join(id).join("config.toml"), format!("[chat]\nagent = \"{agent}\"\n")).unwrap();
    }
    let db = root.join("db.sqlite3");
    let list = || -> serde_json::Value {
        let out = ok(convmeta()
            .env("HOME", &root)
            .current_dir(&root)
            .args(["list", "--json", "--logs"])
            .arg(&logs)
            .arg("--db")
            .arg(&db));
        serde_json::from_str(&out).unwrap()
    };
    let items = list();
    let item =
        |items: &serde_json::Value, id: &str| items.as_array().unwrap().iter().find(|i| i["id"] == id).unwrap().clone();
    for (id, _, want) in &cases {
        assert_eq!(item(&items, id)["agent_path"], *want, "{id}");
        let name = if *id == "missing" { serde_json::Value::Null } else { "Bob".into() };
        assert_eq!(item(&items, id)["agent_name"], name, "{id}");
    }
    // An index of schema 4 holds the path as written: upgrading reads those side files again.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let resolved = at("agents/bob");
    conn.execute_batch(&format!(
        "UPDATE conversations SET item_json = replace(item_json, '{resolved}', '~/agents/bob/') WHERE id = 'tilde';"
    ))
    .unwrap();
    set_schema_back(&conn, 4);
    drop(conn);
    assert_eq!(item(&list(), "tilde")["agent_path"], resolved.as_str());
    // And one of schema 5 held the conversation's directory for `workspace = ""`.
    std::fs::write(logs.join("tilde/config.toml"), "[chat]\nworkspace = \"\"\n").unwrap();
    assert_eq!(item(&list(), "tilde")["workspace"], root.display().to_string());
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (was, wrong) =
        (format!("\"workspace\":\"{}\"", root.display()), format!("\"workspace\":\"{}\"", at("logs/tilde")));
    conn.execute_batch(&format!(
        "UPDATE conversations SET item_json = replace(item_json, '{was}', '{wrong}') WHERE id = 'tilde';"
    ))
    .unwrap();
    set_schema_back(&conn, 5);
    drop(conn);
    assert_eq!(item(&list(), "tilde")["workspace"], root.display().to_string());
}

/// gptme fails on a `[chat] context_budget` that is neither a fraction nor a whole token count
/// (checked against gptme 0.35.1): a problem here. An index of schema 6, which took any, learns
/// it when upgraded.
#[test]
fn a_context_budget_gptme_refuses_is_a_problem() {
    let hi = || "{\"role\": \"user\", \"content\": \"hi\"}\n".to_string();
    let budget = |b: &str| Some(format!("[chat]\ncontext_budget = {b}\n"));
    let (tmp, logs) = archive_of(&[("fine", hi(), budget("\"0.5\"")), ("bad", hi(), budget("1.5"))]);
    let db = tmp.path().join("db.sqlite3");
    let problems = || {
        let sql = "SELECT id, problems FROM conversations ORDER BY id";
        let out = ok(convmeta().args(["query", "--format", "csv", "--logs"]).arg(&logs).arg("--db").arg(&db).arg(sql));
        out.replace("\r\n", " ")
    };
    assert_eq!(problems(), "id,problems bad,1 fine,0 ");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "UPDATE conversations SET problems = 0, problem_notes = NULL;
         UPDATE _scan_state SET side = json_set(side, '$.problems', json('[]'));",
    )
    .unwrap();
    set_schema_back(&conn, 6);
    drop(conn);
    assert_eq!(problems(), "id,problems bad,1 fine,0 ");
}

/// Each conversation's workspace as `list --json` gives it in `root/cwd` with `HOME` at
/// `root/home` (None: unset), over the index `root/db.sqlite3`.
fn workspaces_as(
    root: &std::path::Path,
    logs: &std::path::Path,
    home: Option<&str>,
    cwd: &str,
) -> std::collections::HashMap<String, serde_json::Value> {
    std::fs::create_dir_all(root.join(cwd)).unwrap();
    let mut cmd = convmeta();
    match home {
        Some(home) => cmd.env("HOME", root.join(home)),
        None => cmd.env_remove("HOME"),
    };
    let out = ok(cmd
        .current_dir(root.join(cwd))
        .args(["list", "--json", "--logs"])
        .arg(logs)
        .arg("--db")
        .arg(root.join("db.sqlite3")));
    let items: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    items.into_iter().map(|i| (i["id"].as_str().unwrap().to_owned(), i["workspace"].clone())).collect()
}

#[test]
fn workspaces_follow_home_and_the_working_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap();
    let logs = root.join("logs");
    // This user's name and home in the password database.
    let (own_name, own_home) = unsafe {
        let pw = libc::getpwuid(libc::getuid());
        let text = |p: *const libc::c_char| std::ffi::CStr::from_ptr(p).to_str().unwrap().to_string();
        (text((*pw).pw_name), text((*pw).pw_dir).trim_end_matches('/').to_string())
    };
    let named = format!("~{own_name}/proj");
    // An empty one is resolved too: gptme gives its working directory.
    for (id, workspace) in
        [("tilde", "~/proj"), ("relative", "proj"), ("absolute", "/srv/proj"), ("named", &named), ("empty", "")]
    {
        std::fs::create_dir_all(logs.join(id)).unwrap();
        std::fs::write(logs.join(id).join("conversation.jsonl"), "{\"role\": \"user\", \"content\": \"hi\"}\n")
            .unwrap();
        std::fs::write(logs.join(id).join("config.toml"), format!("[chat]\nworkspace = \"{workspace}\"\n")).unwrap();
    }
    let workspaces = |home: Option<&str>, cwd: &str| {
        let of = workspaces_as(&root, &logs, home, cwd);
        (of["tilde"].clone(), of["relative"].clone(), of["absolute"].clone(), of["named"].clone(), of["empty"].clone())
    };
    let at = |p: &str| serde_json::Value::from(root.join(p).display().to_string());
    let home_proj = serde_json::Value::from(format!("{own_home}/proj"));
    let srv = serde_json::Value::from("/srv/proj");
    assert_eq!(workspaces(Some("ann"), "x"), (at("ann/proj"), at("x/proj"), srv.clone(), home_proj.clone(), at("x")));
    assert_eq!(workspaces(Some("bob"), "x"), (at("bob/proj"), at("x/proj"), srv.clone(), home_proj.clone(), at("x")));
    assert_eq!(workspaces(Some("bob"), "y"), (at("bob/proj"), at("y/proj"), srv.clone(), home_proj.clone(), at("y")));
    // Without $HOME, and for `~name`, the password database gives the home, as Python's
    // expanduser does.
    assert_eq!(workspaces(None, "y"), (home_proj.clone(), at("y/proj"), srv, home_proj, at("y")));
}

/// A process whose `HOME` or working directory is not the recorded one, while no row's paths
/// use either, leaves the record as it is: a `convmeta list` run from another directory does not
/// make a server read anything again. The first row it writes that does use its own records
/// it; else the other process would take that row, resolved against another home, for one of
/// its own.
#[test]
fn a_home_first_used_by_another_process_is_recorded_with_the_row() {
    let hi = "{\"role\": \"user\", \"content\": \"hi\"}\n";
    let (tmp, logs) = archive_of(&[("plain", hi.to_owned(), None)]);
    let root = std::fs::canonicalize(tmp.path()).unwrap();
    let workspaces = |home: &str, cwd: &str| {
        let of = workspaces_as(&root, &logs, Some(home), cwd);
        (of.get("tilde").cloned(), of.get("relative").cloned())
    };
    let at = |p: &str| Some(serde_json::Value::from(root.join(p).display().to_string()));
    assert_eq!(workspaces("ann", "x"), (None, None));
    write_conversation(&logs, "tilde", hi, Some("[chat]\nworkspace = \"~/proj\"\n"));
    write_conversation(&logs, "relative", hi, Some("[chat]\nworkspace = \"proj\"\n"));
    assert_eq!(workspaces("bob", "y"), (at("bob/proj"), at("y/proj")));
    assert_eq!(workspaces("ann", "x"), (at("ann/proj"), at("x/proj")));
    assert_eq!(workspaces("bob", "x"), (at("bob/proj"), at("x/proj")));
}

/// `created` comes from the first line gptme's log reader accepts as a message, and timestamps
/// are read as dateutil's isoparse reads them. Values checked against gptme 0.35.1.
#[test]
fn created_comes_from_the_first_line_gptme_reads_as_a_message() {
    let second = r#"{"role": "user", "content": "b", "timestamp": "2026-01-02T00:00:00Z"}"#;
    // An integer of 4301 digits: Python's json.loads refuses it (`int_max_str_digits`).
    let huge = format!(
        r#"{{"role": "user", "content": "a", "timestamp": "2026-01-01T00:00:00Z", "n": {}}}"#,
        "7".repeat(4301)
    );
    let cases = [
        (r#"{"role": "user", "content": 5, "timestamp": "2026-01-01T00:00:00Z"}"#, 1767312000.0),
        (r#"{"role": "user", "content": "a", "timestamp": null}"#, 1767312000.0),
        (r#"{"role": "user", "content": "a", "timestamp": "2026-01-01T00:00:00Z", "files": null}"#, 1767312000.0),
        (r#"{"role": "user", "content": "a", "timestamp": "2026-01-01T00:00:00Z", "metadata": []}"#, 1767225600.0),
        (r#"{"role": "user", "content": "a", "timestamp": "2026-032T00:00:00Z"}"#, 1769904000.0),
        (&huge, 1767312000.0),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    for (i, (first, _)) in cases.iter().enumerate() {
        let dir = logs.join(format!("c{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("conversation.jsonl"), format!("{first}\n{second}\n")).unwrap();
    }
    // An empty `usage` falls back to the flat counts, as gptme's `usage or metadata` does.
    let dir = logs.join("flat");
    std::fs::create_dir_all(&dir).unwrap();
    let line = r#"{"role": "assistant", "content": "a", "metadata": {"usage": {}, "input_tokens": 7}}"#;
    std::fs::write(dir.join("conversation.jsonl"), format!("{line}\n")).unwrap();

    let out = ok(convmeta().args(["list", "--json", "--logs"]).arg(&logs).arg("--db").arg(tmp.path().join("db")));
    let items: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let item = |id: &str| items.iter().find(|i| i["id"] == id).unwrap_or_else(|| panic!("{id} listed"));
    for (i, (first, created)) in cases.iter().enumerate() {
        assert_eq!(item(&format!("c{i}"))["created"].as_f64(), Some(*created), "{first}");
    }
    assert_eq!(item("flat")["total_input_tokens"], 7);
}

/// A `config.toml` that Python's `tomllib` cannot read (a byte-order mark, a TOML 1.1 escape)
/// gives what gptme falls back to: the id as the name, the conversation's directory as the
/// workspace (even when a `workspace/` directory exists). Checked against gptme 0.35.1.
#[test]
fn configs_tomllib_cannot_read_fall_back_as_gptme_does() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let line = "{\"role\": \"user\", \"content\": \"a\"}\n";
    for (id, config) in [
        ("bom", "\u{feff}[chat]\nname = \"x\"\nworkspace = \"@log\"\n"),
        ("escape", "[chat]\nname = \"bad \\x41\"\nworkspace = \"@log\"\n"),
        ("good", "[chat]\nname = \"fine\"\nworkspace = \"@log\"\n"),
    ] {
        let dir = logs.join(id);
        std::fs::create_dir_all(dir.join("workspace")).unwrap();
        std::fs::write(dir.join("conversation.jsonl"), line).unwrap();
        std::fs::write(dir.join("config.toml"), config).unwrap();
    }
    let out = ok(convmeta().args(["list", "--json", "--logs"]).arg(&logs).arg("--db").arg(tmp.path().join("db")));
    let items: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let item = |id: &str| items.iter().find(|i| i["id"] == id).unwrap_or_else(|| panic!("{id} listed")).clone();
    let dir = |id: &str| std::fs::canonicalize(logs.join(id)).unwrap().to_string_lossy().into_owned();
    for id in ["bom", "escape"] {
        assert_eq!((item(id)["name"].clone(), item(id)["workspace"].clone()), (id.into(), dir(id).into()), "{id}");
    }
    assert_eq!(item("good")["name"], "fine");
    assert_eq!(item("good")["workspace"], format!("{}/workspace", dir("good")));
}

/// gptme reads a line two ways: its totals parse `bytes.strip()` (ASCII whitespace, `\x0b` and
/// `\x0c` too), its log reader (for `created`) parses text stripped of all of Python's
/// whitespace and refuses a byte-order mark. Values checked against gptme 0.35.1.
#[test]
fn lines_are_stripped_as_each_of_gptmes_readers_strips_them() {
    let first = r#"{"role": "assistant", "content": "hi", "timestamp": "2026-01-01T00:00:00Z", "metadata": {"model": "m", "cost": 0.5, "usage": {"input_tokens": 3}}}"#;
    let second = r#"{"role": "user", "content": "later", "timestamp": "2026-01-02T00:00:00Z"}"#;
    // (id, bytes before the first line, created, total_cost)
    let cases: [(&str, &[u8], f64, f64); 4] = [
        ("form-feed", b"\x0c", 1767225600.0, 0.5),
        ("vertical-tab", b"\x0b", 1767225600.0, 0.5),
        ("no-break-space", "\u{a0}".as_bytes(), 1767225600.0, 0.0),
        ("byte-order-mark", b"\xef\xbb\xbf", 1767312000.0, 0.5),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    for (id, before, _, _) in &cases {
        let dir = logs.join(id);
        std::fs::create_dir_all(&dir).unwrap();
        let text = [*before, first.as_bytes(), b"\n", second.as_bytes(), b"\n"].concat();
        std::fs::write(dir.join("conversation.jsonl"), text).unwrap();
    }
    let out = ok(convmeta().args(["list", "--json", "--logs"]).arg(&logs).arg("--db").arg(tmp.path().join("db")));
    let items: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    for (id, _, created, cost) in cases {
        let item = items.iter().find(|i| i["id"] == id).unwrap_or_else(|| panic!("{id} listed"));
        assert_eq!((item["created"].as_f64(), item["total_cost"].as_f64()), (Some(created), Some(cost)), "{id}");
    }
}

/// gptme's log reader (for `created`) reads with universal newlines: a bare `\r` ends a line
/// there, though not for the totals, which split at `\n`. Values checked against gptme 0.35.1.
#[test]
fn a_bare_carriage_return_breaks_lines_for_created() {
    let early = r#"{"role": "user", "content": "a", "timestamp": "2026-01-02T00:00:00Z"}"#;
    let late = r#"{"role": "assistant", "content": "b", "timestamp": "2026-01-01T00:00:00Z"}"#;
    let split = "{\"role\": \"user\",\r\"content\": \"c\", \"timestamp\": \"2026-01-05T00:00:00Z\"}";
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    for (id, text) in [("two-in-one", format!("{early}\r{late}\n")), ("split-object", format!("{split}\n{late}\n"))] {
        std::fs::create_dir_all(logs.join(id)).unwrap();
        std::fs::write(logs.join(id).join("conversation.jsonl"), text).unwrap();
    }
    let out = ok(convmeta().args(["list", "--json", "--logs"]).arg(&logs).arg("--db").arg(tmp.path().join("db")));
    let items: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let created = |id: &str| items.iter().find(|i| i["id"] == id).and_then(|i| i["created"].as_f64());
    // The first half of a line holding two objects; an object split by `\r` is no message.
    assert_eq!(created("two-in-one"), Some(1767312000.0));
    assert_eq!(created("split-object"), Some(1767225600.0));
}

/// `show` without an id shows the newest listed conversation, the one `list` puts first; with
/// none listed it says so, in one line.
#[test]
fn show_without_an_id_shows_the_newest_conversation() {
    let r = restore("archive");
    let newest = crate::util::parse(&ok(r.cmd(&["list", "--json", "--limit", "1"])));
    let id = newest[0]["id"].as_str().unwrap();
    let shown = ok(r.cmd(&["show", "--json"]));
    assert_eq!(shown, ok(r.cmd(&["show", "--json", id])));
    assert_eq!(crate::util::parse(&shown), newest[0]);
    assert!(ok(r.cmd(&["show"])).contains(&format!("id: {id}\n")));

    let (tmp, logs) = archive_of(&[("test-only-hidden", "{\"role\": \"user\", \"content\": \"hi\"}\n".into(), None)]);
    let db = tmp.path().join("index.sqlite3");
    let out = fail(convmeta().arg("show").arg("--logs").arg(&logs).arg("--db").arg(&db));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end(),
        format!(
            "convmeta: no conversation is listed in {}: name one to show (hidden ones are shown by id)",
            logs.display()
        )
    );
    ok(convmeta().args(["show", "test-only-hidden"]).arg("--logs").arg(&logs).arg("--db").arg(&db));
}

/// What bash offers for `words` (the last being the word completed) with the script
/// `completions bash` prints: bash runs it, and it asks the binary.
fn bash_completes(script: &str, words: &[&str], envs: &[(&str, &std::path::Path)]) -> String {
    let (cur, prev) = (words[words.len() - 1], words[words.len().saturating_sub(2)]);
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source /dev/stdin; COMP_WORDS=({}); COMP_CWORD={}; COMP_TYPE=9; \
         _clap_complete_convmeta convmeta '{cur}' '{prev}'; echo \"${{COMPREPLY[@]}}\"",
        quoted.join(" "),
        words.len() - 1
    );
    let mut bash = std::process::Command::new("bash");
    bash.args(["-c", &program]).env_remove("GPTME_LOGS_HOME").env_remove("CONVMETA_DB");
    for (k, v) in envs {
        bash.env(k, v);
    }
    let mut child = bash.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The completion script asks the binary on each Tab: subcommands, flags, their paths, and
/// `show`'s conversation ids, from the index and from the archive, reading both and writing
/// neither.
#[test]
fn completion_completes_commands_flags_and_conversation_ids() {
    let script = ok(convmeta().args(["completions", "bash"]));
    assert!(script.contains(env!("CARGO_BIN_EXE_convmeta")), "the script calls this binary: {script}");
    assert_eq!(bash_completes(&script, &["convmeta", "ba"], &[]), "backfill");
    assert_eq!(bash_completes(&script, &["convmeta", "list", "--li"], &[]), "--limit");
    assert!(fail(convmeta().args(["completions", "no-such-shell"])).status.code() == Some(2));

    let line = |t: &str| format!("{{\"role\": \"user\", \"content\": \"hi\", \"timestamp\": \"{t}\"}}\n");
    let (tmp, logs) = archive_of(&[
        ("2026-01-01-alpha", line("2026-01-01T10:00:00"), Some("[chat]\nname = \"Alpha project\"\n".into())),
        ("2026-01-02-beta-penguin", line("2026-01-02T10:00:00"), None),
        ("2025-12-31-gone", line("2025-12-31T10:00:00"), None),
        ("test-hidden", line("2026-01-03T10:00:00"), None),
    ]);
    // Newest first by the log's mtime, which `modified` is.
    for (i, id) in ["2025-12-31-gone", "2026-01-01-alpha", "2026-01-02-beta-penguin", "test-hidden"].iter().enumerate()
    {
        crate::util::set_mtime_ns(
            &logs.join(id).join("conversation.jsonl"),
            (1_767_000_000 + i as u64 * 100) * 1_000_000_000,
        );
    }
    let db = tmp.path().join("index.sqlite3");
    let (l, d) = (logs.to_str().unwrap(), db.to_str().unwrap());
    ok(convmeta().args(["list", "--logs", l, "--db", d]));
    // Closed by its last connection, the database is one file, with no `-wal` or `-shm`.
    rusqlite::Connection::open(&db).unwrap().execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    assert!(!tmp.path().join("index.sqlite3-wal").exists());
    // Since the index was refreshed: one conversation made, one deleted.
    write_conversation(&logs, "2026-01-03-gamma", &line("2026-01-03T10:00:00"), None);
    write_conversation(&logs, "penguin-notes", &line("2026-01-03T11:00:00"), None);
    std::fs::remove_dir_all(logs.join("2025-12-31-gone")).unwrap();
    let before = snapshot(tmp.path());

    let show = |word: &str| bash_completes(&script, &["convmeta", "show", "--logs", l, "--db", d, word], &[]);
    // New ones first, then newest first, then (clap's) the flags; hidden ones not until typed.
    assert_eq!(
        show(""),
        "penguin-notes 2026-01-03-gamma 2026-01-02-beta-penguin 2026-01-01-alpha --logs --db --json --help"
    );
    assert_eq!(show("2026-01-0"), "2026-01-03-gamma 2026-01-02-beta-penguin 2026-01-01-alpha");
    assert_eq!(show("2026-01-01"), "2026-01-01-alpha");
    assert_eq!(show("test"), "test-hidden", "hidden ones once typed");
    assert_eq!(show("2025"), "", "a deleted conversation is not offered");
    // No id starts with the word: those whose id or name holds it.
    assert_eq!(show("beta"), "2026-01-02-beta-penguin");
    assert_eq!(show("penguin"), "penguin-notes", "an id that starts with it wins");
    assert_eq!(show("project"), "2026-01-01-alpha");
    assert_eq!(show("gam"), "2026-01-03-gamma");
    // `--logs=…`, and the environment's defaults, are followed as the command itself would.
    let words = ["convmeta", "show", &format!("--logs={l}"), "--db", d, "2026-01-02"];
    assert_eq!(bash_completes(&script, &words, &[]), "2026-01-02-beta-penguin");
    let env = [("GPTME_LOGS_HOME", logs.as_path()), ("CONVMETA_DB", db.as_path())];
    assert_eq!(bash_completes(&script, &["convmeta", "show", "2026-01-02"], &env), "2026-01-02-beta-penguin");
    // A path completes as one; so do the flags' values.
    let dir_words = ["convmeta", "show", "--logs", l, "--db", d, &format!("{}/2026-01-02", logs.display())];
    assert_eq!(bash_completes(&script, &dir_words, &[]), format!("{l}/2026-01-02-beta-penguin/"));
    assert_eq!(
        bash_completes(&script, &["convmeta", "list", "--logs", &format!("{l}/2026-01-01")], &[]),
        format!("{l}/2026-01-01-alpha/")
    );
    for command in ["list", "usage"] {
        let words = ["convmeta", command, "--workspace", &format!("{l}/2026-01-01")];
        assert_eq!(bash_completes(&script, &words, &[]), format!("{l}/2026-01-01-alpha/"));
    }
    // Without an index: the archive's conversations alone, and no database made.
    let none = tmp.path().join("none.sqlite3");
    let words = ["convmeta", "show", "--logs", l, "--db", none.to_str().unwrap(), "2026"];
    assert_eq!(bash_completes(&script, &words, &[]), "2026-01-03-gamma 2026-01-02-beta-penguin 2026-01-01-alpha");
    assert!(!none.exists());
    assert_eq!(snapshot(tmp.path()), before, "the archive and the index untouched, nothing made beside it");

    // Shells that show help beside a candidate (fish, zsh) get the conversation's name.
    let out = ok(convmeta().env("CONVMETA_COMPLETE", "fish").args([
        "--",
        "convmeta",
        "show",
        "--logs",
        l,
        "--db",
        d,
        "2026-01-0",
    ]));
    assert_eq!(out, "2026-01-03-gamma\n2026-01-02-beta-penguin\n2026-01-01-alpha\tAlpha project\n");
}

/// Tables line up by the columns a terminal gives each character (two for CJK, none for a
/// combining mark), and a bidirectional override is shown escaped rather than obeyed. A column's
/// name is a cell like the others: its line break is a space.
#[test]
fn tables_line_up_wide_characters_and_escape_bidi_overrides() {
    let line = r#"{"role": "user", "content": "hi", "timestamp": "2026-01-01T10:00:00"}"#.to_string() + "\n";
    let named = |name: &str| Some(format!("[chat]\nname = \"{name}\"\n"));
    let (tmp, logs) = archive_of(&[
        ("a", line.clone(), named("日本語の会話")),
        ("b", line.clone(), named("cafe\u{301} au lait")),
        ("c", line.clone(), named("plain")),
        ("d", line, named("report\u{202e}fdp.exe")),
    ]);
    let sql = "SELECT name AS \"the\nname\", 'x' AS mark FROM conversations ORDER BY id";
    let out = ok(convmeta()
        .args(["query", "--format", "table", sql, "--logs"])
        .arg(&logs)
        .arg("--db")
        .arg(tmp.path().join("db.sqlite3")));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    // Where the last column starts, in terminal columns.
    let starts: Vec<usize> =
        lines.iter().map(|l| convmeta::cli::width(l) - convmeta::cli::width(l.rsplit(' ').next().unwrap())).collect();
    assert!(starts.iter().all(|s| *s == starts[0]), "{starts:?}\n{out}");
    assert!(lines[0].starts_with("the name "), "{out}");
    assert!(lines[5].starts_with("report\\u{202e}fdp.exe "), "{out}");
}

/// `usage` sums tokens and cost by the day each message was written (as its timestamp reads:
/// no zone applied), by month, model or conversation, hidden conversations included, a half-written last
/// line provisionally, as the rows count it; its days add up to `conversation_models`.
#[test]
fn usage_sums_by_the_day_each_message_was_written() {
    let line = |ts: Option<&str>, model: &str, input: u64, cost: f64| {
        let usage = format!("\"input_tokens\": {input}, \"output_tokens\": 10, \"cache_read_tokens\": 1");
        usage_line(ts, model, &usage, &cost.to_string())
    };
    let user = "{\"role\": \"user\", \"content\": \"hi\", \"timestamp\": \"2026-02-01T09:00:00\"}\n";
    let long = [
        line(Some("2026-01-31T23:59:59.999999"), "m1", 1000, 0.5),
        user.to_owned(),
        line(Some("2026-02-01T00:00:00"), "m1", 2000, 0.25),
        line(Some("2026-02-01T10:00:00+09:00"), "m2", 3000, 1.0),
    ]
    .concat();
    let half_written = line(Some("2026-02-01T11:00:00"), "m2", 4000, 2.0);
    let (tmp, logs) = archive_of(&[
        ("2026-01-31-long", long, Some("[chat]\nname = \"A long talk\"\n".into())),
        ("test-hidden", line(Some("2026-02-01T12:00:00Z"), "m1", 5000, 4.0), None),
        ("2026-02-01-half", user.to_owned() + half_written.trim_end(), None),
        ("old", line(None, "m1", 6000, 8.0), None),
        ("no-usage", user.to_owned(), None),
    ]);
    let db = tmp.path().join("db.sqlite3");
    let usage = |args: &[&str]| ok(convmeta().arg("usage").arg("--logs").arg(&logs).arg("--db").arg(&db).args(args));
    let json =
        |args: &[&str]| -> serde_json::Value { serde_json::from_str(&usage(&[args, &["--json"]].concat())).unwrap() };
    // Each line has 10 output tokens and 1 cache read, which gptme's input count includes.
    let row = |day: Option<&str>, convs: u64, lines: u64, input: u64, cost: f64, models: &[&str]| {
        serde_json::json!({"day": day, "conversations": convs, "input_tokens": input + lines, "output_tokens": 10 * lines,
            "cache_read_tokens": lines, "cost": cost, "models": models})
    };
    assert_eq!(
        json(&[]),
        serde_json::json!([
            row(None, 1, 1, 6000, 8.0, &["m1"]),
            row(Some("2026-01-31"), 1, 1, 1000, 0.5, &["m1"]),
            row(Some("2026-02-01"), 3, 4, 2000 + 3000 + 4000 + 5000, 7.25, &["m1", "m2"]),
        ])
    );
    let months = json(&["--by", "month", "--since", "2026-01-31", "--until", "2026-02"]);
    let got: Vec<(&str, u64, f64)> = months
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["month"].as_str().unwrap(), r["conversations"].as_u64().unwrap(), r["cost"].as_f64().unwrap()))
        .collect();
    assert_eq!(got, [("2026-01", 1, 0.5), ("2026-02", 3, 7.25)]);
    let jan = json(&["--until", "2026-01"]);
    assert_eq!(jan.as_array().unwrap().iter().map(|r| r["day"].as_str().unwrap()).collect::<Vec<_>>(), ["2026-01-31"]);
    // Each row's key and cost.
    let costs = |rows: &serde_json::Value, key: &str| -> Vec<(String, f64)> {
        let row = |r: &serde_json::Value| (r[key].as_str().unwrap().to_owned(), r["cost"].as_f64().unwrap());
        rows.as_array().unwrap().iter().map(row).collect()
    };
    // 2026-01-31 is a Saturday and 2026-02-01 a Sunday: one week, named by its Monday.
    let weeks = json(&["--by", "week"]);
    assert_eq!(weeks[0]["week"], serde_json::Value::Null);
    assert_eq!(costs(&weeks.as_array().unwrap()[1..].into(), "week"), [("2026-01-26".into(), 7.75)]);
    let models = json(&["--by", "model"]);
    assert_eq!(costs(&models, "model"), [("m1".into(), 12.75), ("m2".into(), 3.0)], "by cost, most first");
    let february = json(&["--by", "conversation", "--since", "2026-02"]);
    assert_eq!(
        costs(&february, "conversation"),
        [("test-hidden".into(), 4.0), ("2026-02-01-half".into(), 2.0), ("2026-01-31-long".into(), 1.25)]
    );
    // Each conversation's name beside its id: in the table, cut before the id is.
    assert_eq!(costs(&february, "name")[2], ("A long talk".into(), 1.25));
    assert_eq!(costs(&february, "name")[1], ("2026-02-01-half".into(), 2.0), "no name of its own: its id");
    let table = usage(&["--by", "conversation"]);
    assert!(table.lines().any(|l| l.starts_with("A long talk (2026-01-31-long)  ")), "{table}");

    // --breakdown: each row's usage by model, most spent first, summed as the rows are.
    let split = json(&["--since", "2026-02-01", "--breakdown"]);
    let model = |name: &str, convs: u64, lines: u64, input: u64, cost: f64| {
        serde_json::json!({"model": name, "conversations": convs, "input_tokens": input + lines,
            "output_tokens": 10 * lines, "cache_read_tokens": lines, "cost": cost})
    };
    assert_eq!(
        split,
        serde_json::json!([{"day": "2026-02-01", "conversations": 3, "input_tokens": 14004, "output_tokens": 40,
            "cache_read_tokens": 4, "cost": 7.25,
            "by_model": [model("m1", 2, 2, 2000 + 5000, 4.25), model("m2", 2, 2, 3000 + 4000, 3.0)]}])
    );
    let table = usage(&["--breakdown", "--by", "month"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 9, "{table}");
    assert!(lines[0].starts_with("MONTH") && lines[0].ends_with("COST"), "no MODELS column: {table}");
    assert!(lines[5].starts_with("2026-02 ") && lines[5].contains("$7.25"), "{table}");
    assert!(lines[6].starts_with("  m1 ") && lines[6].contains("$4.25"), "{table}");
    assert!(lines[7].starts_with("  m2 ") && lines[7].contains("$3.00"), "{table}");
    assert!(lines[8].starts_with("TOTAL ") && lines[8].contains("$15.75"), "{table}");
    assert_eq!(usage(&["--by", "model", "--breakdown"]), usage(&["--by", "model"]), "a model's row is its model");
    // --model: the usage on models whose name contains the text, in any case.
    assert_eq!(json(&["--model", "M2"]), serde_json::json!([row(Some("2026-02-01"), 2, 2, 3000 + 4000, 3.0, &["m2"])]));
    assert_eq!(json(&["--model", "m"]), json(&[]));
    let none = convmeta().arg("usage").arg("--logs").arg(&logs).arg("--db").arg(&db).args(["--model", "opus"]).output();
    let said = String::from_utf8(none.unwrap().stderr).unwrap();
    assert!(said.contains("no usage recorded on a model whose name contains \"opus\""), "{said}");
    // A Tab completes --model from the index: the models containing the word, in any case.
    let script = ok(convmeta().args(["completions", "bash"]));
    let (l, d) = (logs.to_str().unwrap(), db.to_str().unwrap());
    let model =
        |word: &str| bash_completes(&script, &["convmeta", "usage", "--logs", l, "--db", d, "--model", word], &[]);
    assert_eq!(model("2"), "m2");
    assert_eq!(model("M"), "m1 m2");
    assert_eq!(model("opus"), "");
    // list --model: the listed conversations that used such a model, newest first, as the
    // usage by conversation counts them (less the hidden one).
    let list = |args: &[&str]| convmeta().arg("list").arg("--logs").arg(&logs).arg("--db").arg(&db).args(args).output();
    let ids = |model: &str| -> Vec<String> {
        let out = list(&["--json", "--model", model]).unwrap();
        let items: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        let mut ids: Vec<String> = items.iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect();
        ids.sort();
        ids
    };
    for (word, listed) in [("M2", &["2026-01-31-long", "2026-02-01-half"][..]), ("m1", &["2026-01-31-long", "old"])] {
        assert_eq!(ids(word), listed, "--model {word}");
        let mut spent: Vec<String> = costs(&json(&["--by", "conversation", "--model", word]), "conversation")
            .into_iter()
            .map(|(id, _)| id)
            .filter(|id| id != "test-hidden")
            .collect();
        spent.sort();
        assert_eq!(spent, listed, "--model {word}");
    }
    assert_eq!(ids("m").len(), 3, "all but the one without usage");
    let none = list(&["--model", "opus", "--since", "2026"]).unwrap();
    let said = String::from_utf8(none.stderr).unwrap();
    assert!(
        said.contains("no listed conversation modified in or after 2026 with a model containing \"opus\""),
        "{said}"
    );
    let listed =
        |word: &str| bash_completes(&script, &["convmeta", "list", "--logs", l, "--db", d, "--model", word], &[]);
    assert_eq!(listed("1"), "m1");

    // The table: a row a group, lines without a date as such, then the total.
    let table = usage(&[]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "{table}");
    assert!(lines[0].starts_with("DAY") && lines[0].ends_with("MODELS"), "{table}");
    assert!(lines[1].starts_with("no date") && lines[1].contains("6,001") && lines[1].contains("$8.00"), "{table}");
    assert!(
        lines[3].starts_with("2026-02-01") && lines[3].contains("14,004") && lines[3].ends_with("m1, m2"),
        "{table}"
    );
    assert!(lines[4].starts_with("TOTAL") && lines[4].contains("$15.75") && lines[4].contains("21,006"), "{table}");
    // Four conversations, though one of them is on two days' rows.
    assert_eq!(lines[4].split_whitespace().nth(1), Some("4"), "{table}");

    // The days add up to the per-model rows, conversation by conversation.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let differ: i64 = conn
        .query_row(
            "SELECT count(*) FROM conversation_models m WHERE abs(m.cost - (SELECT sum(d.cost) FROM conversation_days d \
             WHERE d.conversation_id = m.conversation_id AND d.model = m.model)) > 1e-9 \
             OR m.input_tokens != (SELECT sum(d.input_tokens) FROM conversation_days d \
             WHERE d.conversation_id = m.conversation_id AND d.model = m.model)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(differ, 0);

    // The half-written line, completed, counts once.
    let half = logs.join("2026-02-01-half/conversation.jsonl");
    std::fs::OpenOptions::new().append(true).open(&half).unwrap().write_all(b"\n").unwrap();
    assert_eq!(json(&["--by", "model"]), models);

    // Nothing in range, or nothing recorded at all: the header, and why on stderr.
    let out = convmeta()
        .arg("usage")
        .arg("--logs")
        .arg(&logs)
        .arg("--db")
        .arg(&db)
        .args(["--since", "2027"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no usage recorded from 2027 to the end"));
    let bad =
        fail(convmeta().arg("usage").arg("--logs").arg(&logs).arg("--db").arg(&db).args(["--since", "2026-02-30"]));
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("a date as YYYY-MM-DD"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn usage_sums_by_workspace_and_keeps_to_one() {
    let line = |day: u32, cost: f64| {
        usage_line(Some(&format!("2026-11-{day:02}T10:00:00")), "m", "\"input_tokens\": 100", &cost.to_string())
    };
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().canonicalize().unwrap();
    let deep = home.join("src/a-rather-long-directory-name/another-long-one/project");
    let (proj, sub) = (home.join("proj"), home.join("proj/sub"));
    for dir in [&deep, &sub] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let real_logs = home.join("archive");
    let workspace = |dir: &std::path::Path| Some(format!("[chat]\nworkspace = \"{}\"\n", dir.display()));
    let conversations = [
        // Cheaper than `m`'s: the models come most spent first, not by name.
        ("in-proj", line(1, 1.0).replace("\"m\"", "\"a-cheap\""), workspace(&proj)),
        ("in-sub", line(2, 2.0), workspace(&sub)),
        ("deep", line(3, 4.0), workspace(&deep)),
        // gptme's defaults: the conversation's own directory, or its `workspace/`.
        ("no-config", line(4, 0.125), None),
        ("own-workspace", line(5, 0.25), Some("[chat]\nworkspace = \"@log\"\n".into())),
        // A `workspace` symlink leads to a project: that project.
        ("linked", line(6, 8.0), None),
        // A sibling whose name starts with the project's is not in it.
        ("proj-other", line(7, 16.0), workspace(&home.join("proj-other"))),
    ];
    for (id, log, config) in &conversations {
        write_conversation(&real_logs, id, log, config.as_deref());
    }
    std::fs::create_dir(real_logs.join("own-workspace/workspace")).unwrap();
    std::os::unix::fs::symlink(&proj, real_logs.join("linked/workspace")).unwrap();
    // The logs named through a symlink: a conversation's own directory is still told.
    let logs = home.join("logs-link");
    std::os::unix::fs::symlink(&real_logs, &logs).unwrap();
    let db = home.join("db.sqlite3");
    let command = |name: &str, args: &[&str]| {
        let mut c = convmeta();
        c.env("HOME", &home).current_dir(&proj).arg(name).arg("--logs").arg(&logs).arg("--db").arg(&db).args(args);
        c
    };
    let usage = |args: &[&str]| command("usage", args);
    let costs = |args: &[&str]| -> Vec<(serde_json::Value, f64)> {
        let rows: serde_json::Value = serde_json::from_str(&ok(usage(&[args, &["--json"]].concat()))).unwrap();
        rows.as_array().unwrap().iter().map(|r| (r["workspace"].clone(), r["cost"].as_f64().unwrap())).collect()
    };
    let path = |p: &std::path::Path| serde_json::Value::from(p.to_str().unwrap());
    assert_eq!(
        costs(&["--by", "workspace"]),
        [
            (path(&home.join("proj-other")), 16.0),
            (path(&proj), 9.0),
            (path(&deep), 4.0),
            (path(&sub), 2.0),
            (serde_json::Value::Null, 0.375),
        ]
    );
    let proj_row: serde_json::Value =
        serde_json::from_str(&ok(usage(&["--by", "workspace", "--workspace", ".", "--breakdown", "--json"]))).unwrap();
    let models: Vec<(&str, f64)> = proj_row[0]["by_model"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["model"].as_str().unwrap(), m["cost"].as_f64().unwrap()))
        .collect();
    assert_eq!(models, [("m", 8.0), ("a-cheap", 1.0)]);
    // `--workspace`: the directory and those under it; relative to where convmeta runs.
    let cost_of = |args: &[&str]| -> f64 { costs(&[args, &["--by", "workspace"]].concat()).iter().map(|r| r.1).sum() };
    assert_eq!(cost_of(&["--workspace", "."]), 11.0);
    assert_eq!(cost_of(&["--workspace", "sub/"]), 2.0);
    assert_eq!(cost_of(&["--workspace", "/"]), 31.375);
    assert_eq!(cost_of(&["--workspace", real_logs.to_str().unwrap()]), 0.375);
    assert_eq!(cost_of(&["--workspace", ".", "--since", "2026-11-02", "--until", "2026-11-05"]), 2.0);
    let days = ok(usage(&["--workspace", ".", "--json"]));
    let days: Vec<String> = serde_json::from_str::<Vec<serde_json::Value>>(&days)
        .unwrap()
        .iter()
        .map(|r| r["day"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(days, ["2026-11-01", "2026-11-02", "2026-11-06"]);

    // The table: paths from `~`, a long one cut at its start, the header as wide as a row.
    let table = ok(usage(&["--by", "workspace"]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 7, "{table}");
    assert!(lines[0].starts_with("WORKSPACE  ") && lines[0].ends_with("MODELS"), "{table}");
    assert!(lines[2].starts_with("~/proj  ") && lines[2].contains("$9.00"), "{table}");
    assert!(lines[3].starts_with("…") && lines[3].contains("another-long-one/project  "), "{table}");
    assert!(lines[5].starts_with("no workspace  "), "{table}");
    assert!(lines[6].starts_with("TOTAL  ") && lines[6].contains("$31.38"), "{table}");
    // Each row's count ends under the header's CONVS, counted in characters (the ellipsis
    // takes one column, three bytes), with keys narrower than the header too.
    let aligned = |table: &str| {
        let lines: Vec<&str> = table.lines().collect();
        let convs_end = lines[0].find(" CONVS").unwrap() + " CONVS".len();
        for l in &lines[1..] {
            let at = l.chars().nth(convs_end - 1).unwrap();
            assert!(at.is_ascii_digit() && l.chars().nth(convs_end) == Some(' '), "CONVS aligned: {table}");
        }
    };
    aligned(&table);
    let by_conversation = ok(usage(&["--by", "conversation", "--workspace", "."]));
    assert_eq!(by_conversation.lines().count(), 5, "{by_conversation}");
    aligned(&by_conversation);

    // `list --workspace` keeps to the same conversations, `-q` searching among them.
    let listed = |args: &[&str]| -> Vec<String> {
        let items = ok(command("list", &[args, &["--json"]].concat()));
        let items: Vec<serde_json::Value> = serde_json::from_str(&items).unwrap();
        let mut ids: Vec<String> = items.iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect();
        ids.sort();
        ids
    };
    assert_eq!(listed(&["--workspace", "."]), ["in-proj", "in-sub", "linked"]);
    assert_eq!(listed(&["--workspace", "sub"]), ["in-sub"]);
    assert_eq!(listed(&["--workspace", real_logs.to_str().unwrap()]), ["no-config", "own-workspace"]);
    assert_eq!(listed(&["--workspace", ".", "-q", "LINK"]), ["linked"]);
    assert_eq!(listed(&["--workspace", "/"]).len(), conversations.len());

    // Nothing there: the header, and why.
    let out = usage(&["--workspace", "/no/such/dir"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no usage recorded in a workspace at or under /no/such/dir"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `show` gives a conversation's usage as `usage --conversation` sums it: by model, most spent
/// first, in columns, then by day, the latest ten, saying how many came before.
#[test]
fn show_gives_a_conversations_usage_by_model_and_day() {
    let line = |day: u32, model: &str, input: u64, cost: f64| {
        let usage = format!("\"input_tokens\": {input}, \"output_tokens\": 5");
        usage_line(Some(&format!("2026-03-{day:02}T10:00:00")), model, &usage, &cost.to_string())
    };
    let long: String = (1..=12)
        .map(|day| line(day, if day % 3 == 0 { "b-dear" } else { "a-cheap" }, 1000 * day as u64, day as f64))
        .collect();
    let (tmp, logs) = archive_of(&[
        ("long", long, None),
        ("other", line(1, "a-cheap", 7, 100.0), None),
        ("none", "{\"role\": \"user\", \"content\": \"hi\"}\n".into(), None),
    ]);
    let db = tmp.path().join("db.sqlite3");
    let run = |args: &[&str]| ok(convmeta().args(args).arg("--logs").arg(&logs).arg("--db").arg(&db));
    let shown = run(&["show", "long"]);
    let usage: Vec<&str> = shown.lines().skip_while(|l| !l.contains("models_usage:")).take(13).collect();
    // b-dear: days 3, 6, 9, 12 (cost 30); a-cheap: the other eight (cost 48).
    assert_eq!(usage[0].trim_start(), "models_usage: a-cheap  $48.00  48,000 in, 40 out, 0 cache read", "{shown}");
    assert_eq!(usage[1].trim_start(), "b-dear   $30.00  30,000 in, 20 out, 0 cache read", "{shown}");
    assert!(usage[2].trim_start().starts_with("usage by day: 2026-03-03  $3.00  b-dear"), "{shown}");
    assert!(usage[11].trim_start().starts_with("2026-03-12  $12.00  b-dear"), "{shown}");
    assert_eq!(usage[12].trim_start(), "… and 2 days before (`convmeta usage --conversation long`)", "{shown}");
    assert!(run(&["show", "none"]).lines().any(|l| l.trim_start() == "models_usage: none"));
    // `usage --conversation`: all twelve days, this conversation's alone.
    let days: Vec<serde_json::Value> =
        serde_json::from_str(&run(&["usage", "--conversation", "long", "--json"])).unwrap();
    assert_eq!(days.len(), 12);
    assert_eq!(days.iter().map(|d| d["cost"].as_f64().unwrap()).sum::<f64>(), 78.0);
    let out = fail(convmeta().args(["usage", "--conversation", "lon"]).arg("--logs").arg(&logs).arg("--db").arg(&db));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean long?"), "names the one like it");
}

/// An archive of one-line conversations whose logs were last modified at the given Unix
/// seconds, and its index.
struct DatedArchive {
    _tmp: tempfile::TempDir,
    logs: std::path::PathBuf,
    db: std::path::PathBuf,
}

impl DatedArchive {
    fn new(conversations: &[(&str, u64)]) -> DatedArchive {
        let hi = "{\"role\": \"user\", \"content\": \"hi\"}\n";
        let (tmp, logs) =
            archive_of(&conversations.iter().map(|(id, _)| (*id, hi.to_owned(), None)).collect::<Vec<_>>());
        for (id, secs) in conversations {
            set_mtime_ns(&logs.join(id).join("conversation.jsonl"), secs * 1_000_000_000);
        }
        let db = logs.with_file_name("db.sqlite3");
        DatedArchive { _tmp: tmp, logs, db }
    }

    /// The ids `list --json ARGS` gives in time zone `zone`, in order.
    fn ids(&self, zone: &str, args: &[&str]) -> Vec<String> {
        let mut c = convmeta();
        c.env("TZ", zone).args(["list", "--json", "--logs"]).arg(&self.logs).arg("--db").arg(&self.db).args(args);
        let items: serde_json::Value = serde_json::from_str(&ok(c)).unwrap();
        items.as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
    }
}

/// `usage --by agent` sums by the agent's name (its path where its `gptme.toml` names none);
/// `--agent` keeps `usage` and `list` to one agent's conversations, named in any case.
#[test]
fn usage_and_list_keep_to_an_agent() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().canonicalize().unwrap();
    let agents =
        [("agents/bob", "[agent]\nname = \"Bob\"\n"), ("agents/anon", ""), ("agents/blank", "[agent]\nname = \"\"\n")];
    for (dir, toml) in agents {
        std::fs::create_dir_all(home.join(dir)).unwrap();
        std::fs::write(home.join(dir).join("gptme.toml"), toml).unwrap();
    }
    let (anon, blank) =
        (home.join("agents/anon").display().to_string(), home.join("agents/blank").display().to_string());
    let line = |cost: f64| usage_line(Some("2026-11-01T10:00:00"), "m", "\"input_tokens\": 100", &cost.to_string());
    let agent = |path: &str| Some(format!("[chat]\nagent = \"{path}\"\n"));
    let (_archive, logs) = archive_of(&[
        ("b1", line(1.0), agent("~/agents/bob")),
        ("b2", line(2.0), agent(&format!("{}/agents/bob/", home.display()))),
        ("anon", line(4.0), agent(&anon)),
        ("none", line(8.0), None),
        ("blank", line(0.5), agent(&blank)),
        ("test-b", line(16.0), agent("~/agents/bob")), // hidden from lists, but its spend counts
    ]);
    let db = home.join("db.sqlite3");
    let command = |name: &str, args: &[&str]| {
        let mut c = convmeta();
        c.env("HOME", &home).arg(name).arg("--logs").arg(&logs).arg("--db").arg(&db).args(args);
        c
    };
    let rows = |args: &[&str]| -> Vec<serde_json::Value> {
        serde_json::from_str(&ok(command("usage", &[args, &["--json"]].concat()))).unwrap()
    };
    let by_agent: Vec<(serde_json::Value, u64, f64)> = rows(&["--by", "agent"])
        .iter()
        .map(|r| (r["agent"].clone(), r["conversations"].as_u64().unwrap(), r["cost"].as_f64().unwrap()))
        .collect();
    let (bob, path) = (serde_json::Value::from("Bob"), serde_json::Value::from(anon.as_str()));
    // An agent whose gptme.toml names it "" goes by its path too.
    let blank_path = serde_json::Value::from(blank.as_str());
    assert_eq!(by_agent, [(bob, 3, 19.0), (serde_json::Value::Null, 1, 8.0), (path, 1, 4.0), (blank_path, 1, 0.5)]);
    let table = ok(command("usage", &["--by", "agent"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("AGENT  ") && lines[1].starts_with("Bob  "), "{table}");
    assert!(lines[2].starts_with("no agent  ") && lines[5].starts_with("TOTAL  "), "{table}");
    assert!(lines[3].starts_with("~/agents/anon  "), "an agent's path from ~: {table}");
    let ids = |rows: Vec<serde_json::Value>| -> Vec<String> {
        rows.iter().map(|r| r["conversation"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(ids(rows(&["--by", "conversation", "--agent", "bOB"])), ["test-b", "b2", "b1"]);
    assert_eq!(ids(rows(&["--by", "conversation", "--agent", &anon])), ["anon"]);
    let listed = |args: &[&str]| -> Vec<String> {
        let items: Vec<serde_json::Value> =
            serde_json::from_str(&ok(command("list", &[args, &["--json"]].concat()))).unwrap();
        let mut ids: Vec<String> = items.iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect();
        ids.sort();
        ids
    };
    assert_eq!(listed(&["--agent", "BOB"]), ["b1", "b2"]);
    assert_eq!(listed(&["--agent", &anon]), ["anon"]);
    assert_eq!(listed(&["--agent", "bo"]), Vec::<String>::new(), "a name, not a part of one");
    assert_eq!(listed(&["--agent", ""]), ["none"], "no agent");
    let none = command("list", &["--agent", "alice"]).output().unwrap();
    let said = String::from_utf8(none.stderr).unwrap();
    assert!(said.contains("no listed conversation of the agent \"alice\""), "{said}");
    let none = command("usage", &["--agent", "alice"]).output().unwrap();
    let said = String::from_utf8(none.stderr).unwrap();
    assert!(said.contains("no usage recorded of the agent \"alice\""), "{said}");
    // A Tab completes --agent from the index: the agents whose name contains the word.
    let script = ok(convmeta().args(["completions", "bash"]));
    let (l, d) = (logs.to_str().unwrap(), db.to_str().unwrap());
    let agents = |cmd: &str, word: &str| {
        bash_completes(&script, &["convmeta", cmd, "--logs", l, "--db", d, "--agent", word], &[])
    };
    // (the temporary directory's random name may hold a b too)
    let with_b = if anon.to_lowercase().contains('b') { format!("{anon} {blank} Bob") } else { format!("{blank} Bob") };
    assert_eq!(agents("usage", "b"), with_b);
    assert_eq!(agents("list", "anon"), anon);
}

/// `list --sort` orders by when a conversation began, its messages or its cost, largest first,
/// ties newest first; `--reverse` turns the whole order round; an unknown (NaN) cost comes last
/// either way; `-n` and `-q` take the first of that order; the table's date is the sort's.
#[test]
fn list_sorts_by_created_messages_and_cost() {
    // id, created, messages, the cost of its one assistant message, its log's mtime (s).
    let conversations = [
        ("old-big", "2026-01-01", 5, "0.5", 1),
        ("new-small", "2026-03-01", 2, "2.0", 4),
        ("nan", "2026-02-01", 3, "NaN", 3),
        ("mid", "2026-02-15", 3, "1.0", 2),
        ("test-hidden", "2026-04-01", 9, "9.0", 5),
    ];
    let mut archive = Vec::new();
    for (id, day, messages, cost, _) in conversations {
        let stamp = format!("{day}T10:00:00");
        let mut log = format!("{{\"role\": \"user\", \"content\": \"x\", \"timestamp\": \"{stamp}\"}}\n");
        log += &usage_line(Some(&stamp), "m", "\"input_tokens\": 1", cost);
        for _ in 2..messages {
            log += &format!("{{\"role\": \"user\", \"content\": \"x\", \"timestamp\": \"{stamp}\"}}\n");
        }
        archive.push((id, log, None));
    }
    let (tmp, logs) = archive_of(&archive);
    for (id, _, _, _, mtime) in conversations {
        set_mtime_ns(&logs.join(id).join("conversation.jsonl"), (1_800_000_000 + mtime) * 1_000_000_000);
    }
    let db = tmp.path().join("db.sqlite3");
    let list = |args: &[&str]| {
        let mut c = convmeta();
        c.env("TZ", "UTC").arg("list").arg("--logs").arg(&logs).arg("--db").arg(&db).args(args);
        ok(c)
    };
    let ids = |args: &[&str]| -> Vec<String> {
        let items = crate::util::parse(&list(&[args, &["--json"]].concat()));
        items.as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(ids(&[]), ["new-small", "nan", "mid", "old-big"]);
    assert_eq!(ids(&["--sort", "modified"]), ids(&[]));
    assert_eq!(ids(&["-r"]), ["old-big", "mid", "nan", "new-small"]);
    assert_eq!(ids(&["--sort", "created"]), ["new-small", "mid", "nan", "old-big"]);
    assert_eq!(ids(&["--sort", "messages"]), ["old-big", "nan", "mid", "new-small"], "ties newest first");
    assert_eq!(ids(&["--sort", "messages", "--reverse"]), ["new-small", "mid", "nan", "old-big"]);
    assert_eq!(ids(&["--sort", "cost"]), ["new-small", "mid", "old-big", "nan"]);
    assert_eq!(ids(&["--sort", "cost", "-r"]), ["old-big", "mid", "new-small", "nan"], "NaN last either way");
    assert_eq!(ids(&["--sort", "cost", "-n", "2"]), ["new-small", "mid"]);
    assert_eq!(ids(&["--sort", "messages", "-q", "I"]), ["old-big", "mid"]);
    let table = list(&["--sort", "created", "-n", "1"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("CREATED ") && lines[1].starts_with("2026-03-01 10:00 "), "{table}");
    let table = list(&["--sort", "messages", "-n", "1"]);
    assert!(table.starts_with("MODIFIED ") && table.contains("\n2027-01-15 08:00 "), "{table}");
}

/// `search` finds the listed conversations whose messages say a text, in any case, newest
/// first, as gptme's `chats search` tests messages (system ones only when asked), through JSON
/// escapes; `-n`, `-m` and the list's filters narrow it; nothing found or a blank text is said.
#[test]
fn search_finds_what_messages_say() {
    let msg = |role: &str, content: &str| format!("{{\"role\": \"{role}\", \"content\": \"{content}\"}}\n");
    // id, log, its mtime (s)
    let conversations = [
        ("escaped", msg("user", "caf\\u00e9 PARSER") + &msg("assistant", "ok"), 0),
        ("old", msg("user", "Let us talk about the\\nParser"), 1),
        ("sys", msg("system", "the parser in the prompt") + &msg("user", "hello"), 2),
        (
            "new",
            msg("assistant", "the parser works")
                + &msg("user", "hi")
                + &msg("user", "parser again")
                + &msg("user", "a quokka"),
            3,
        ),
        ("quokkas", msg("user", "Quokka?") + &msg("assistant", "quokkas, yes"), 0),
        ("test-hidden", msg("user", "parser"), 4),
        ("other", msg("user", "nothing to see"), 5),
    ];
    let archive: Vec<_> = conversations.iter().map(|(id, log, _)| (*id, log.clone(), None)).collect();
    let (tmp, logs) = archive_of(&archive);
    for (id, _, mtime) in &conversations {
        set_mtime_ns(&logs.join(id).join("conversation.jsonl"), (1_800_000_000 + mtime) * 1_000_000_000);
    }
    let db = tmp.path().join("db.sqlite3");
    let search = |args: &[&str]| {
        let mut c = convmeta();
        c.env("TZ", "UTC").arg("search").arg("--logs").arg(&logs).arg("--db").arg(&db).args(args);
        c
    };
    let found = |args: &[&str]| -> Vec<(String, u64, Vec<u64>)> {
        let said: Vec<serde_json::Value> =
            serde_json::from_str(&searched(search(&[args, &["--json"]].concat()))).unwrap();
        let lines = |s: &serde_json::Value| {
            s["messages"].as_array().unwrap().iter().map(|m| m["line"].as_u64().unwrap()).collect()
        };
        said.iter().map(|s| (s["id"].as_str().unwrap().to_owned(), s["matches"].as_u64().unwrap(), lines(s))).collect()
    };
    let f = |id: &str, n: u64, lines: &[u64]| (id.to_owned(), n, lines.to_vec());
    // Each names its log as the list does.
    let said: serde_json::Value = serde_json::from_str(&ok(search(&["quokka", "--json"]))).unwrap();
    let log = |id: &str| logs.join(id).join("conversation.jsonl").to_str().unwrap().to_owned();
    assert_eq!(said[0]["path"], log("new"));
    assert_eq!(said[1]["path"], log("quokkas"));
    assert_eq!(ok(search(&["quokka", "-l"])), format!("{}\n{}\n", log("new"), log("quokkas")), "the paths alone");
    assert_eq!(ok(search(&["quokka", "-l", "-0"])), format!("{}\0{}\0", log("new"), log("quokkas")));
    fail(search(&["quokka", "--null"]));
    assert_eq!(found(&["parser"]), [f("new", 2, &[1, 3]), f("old", 1, &[1]), f("escaped", 1, &[1])]);
    assert_eq!(found(&["CAFÉ"]), [f("escaped", 1, &[1])], "through a \\u escape, in any case");
    assert_eq!(found(&["the parser"]), [f("new", 1, &[1])], "a newline is no space");
    assert_eq!(found(&[" parser"]), [f("new", 1, &[1]), f("escaped", 1, &[1])], "not stripped, as gptme's");
    // Several texts: each anywhere in the message, unlike the phrase.
    assert_eq!(found(&["the", "PARSER"]), [f("new", 1, &[1]), f("old", 1, &[1])]);
    assert_eq!(found(&["parser", "again"]), [f("new", 1, &[3])]);
    assert_eq!(found(&["parser", "café", "zebra"]), []);
    // Most matching messages first; the limit takes the first of that order.
    assert_eq!(found(&["quokka"]), [f("new", 1, &[4]), f("quokkas", 2, &[1, 2])]);
    assert_eq!(found(&["quokka", "--sort", "matches"]), [f("quokkas", 2, &[1, 2]), f("new", 1, &[4])]);
    assert_eq!(found(&["quokka", "--sort", "matches", "-n", "1"]), [f("quokkas", 2, &[1, 2])]);
    // As a word: "quokkas" is another.
    assert_eq!(found(&["quokka", "-w"]), [f("new", 1, &[4]), f("quokkas", 1, &[1])]);
    // Regular expressions, in any case unless one says otherwise.
    assert_eq!(found(&["-E", "quokkas?"]), found(&["quokka"]));
    assert_eq!(found(&["--regex", "^parser"]), [f("new", 1, &[3]), f("old", 1, &[1])], "at a line's start");
    assert_eq!(found(&["-E", "(?-i)PARSER|^Parser"]), [f("old", 1, &[1]), f("escaped", 1, &[1])]);
    assert_eq!(found(&["-E", "-w", "quokkas?", "yes"]), [f("quokkas", 1, &[2])]);
    // In the case typed: through escapes, as words, and a text is no pattern.
    assert_eq!(found(&["-s", "PARSER"]), [f("escaped", 1, &[1])]);
    assert_eq!(found(&["--case-sensitive", "Parser"]), [f("old", 1, &[1])]);
    assert_eq!(found(&["-s", "café PARSER"]), [f("escaped", 1, &[1])]);
    assert_eq!(found(&["-s", "-w", "Quokka"]), [f("quokkas", 1, &[1])]);
    assert_eq!(found(&["-s", "quokka."]), []);
    // -i, any case, the default; of -s and -i the last wins.
    assert_eq!(found(&["-s", "-i", "PARSER"]), found(&["parser"]));
    assert_eq!(found(&["-i", "--case-sensitive", "PARSER"]), [f("escaped", 1, &[1])]);
    assert_eq!(found(&["-s", "-E", "(?i)quokka\\?", "-m", "0"]), [f("quokkas", 1, &[])]);
    let bad = fail(search(&["-E", "parser(", "--json"]));
    let said = String::from_utf8(bad.stderr).unwrap();
    assert!(
        said.contains("\"parser(\" is not a regular expression: unclosed group") && bad.stdout.is_empty(),
        "{said}"
    );
    assert_eq!(found(&["parser", "--system"])[1], f("sys", 1, &[1]));
    assert_eq!(found(&["parser", "--role", "system"]), [f("sys", 1, &[1])]);
    assert_eq!(found(&["parser", "--role", "assistant"]), [f("new", 1, &[1])]);
    assert_eq!(found(&["parser", "--role", "user"]), [f("new", 1, &[3]), f("old", 1, &[1]), f("escaped", 1, &[1])]);
    fail(search(&["parser", "--role", "tool"]));
    fail(search(&["parser", "--role", "user", "--system"]));
    assert_eq!(found(&["parser", "-m", "1"])[0], f("new", 2, &[1]));
    assert_eq!(found(&["parser", "--since", "2027-01-15", "--until", "2027-01-15"]).len(), 3);
    assert_eq!(found(&["parser", "--until", "2027-01-14"]), []);
    let out = search(&["parser", "-n", "2"]).output().unwrap();
    let (stdout, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    assert!(out.status.success() && stderr.contains("more conversations match"), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "2027-01-15 08:00  new: 2 messages", "{stdout}");
    assert_eq!(lines[1], "  line 1     assistant  the parser works", "{stdout}");
    assert_eq!(lines[2], "  line 3     user       parser again", "{stdout}");
    assert_eq!(lines[4], "2027-01-15 08:00  old: 1 message", "{stdout}");
    assert_eq!(lines[5], "  line 1     user       Parser", "the line of the content that says it: {stdout}");
    assert_eq!(lines.len(), 6, "{stdout}");
    // With context, the content's lines around the one shown, under the excerpt.
    let shown = ok(search(&["Parser", "-C", "1", "-n", "2"]));
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines[2], "  --", "one message's lines parted from the next's: {shown}");
    assert_eq!(lines[6], format!("{:24}Let us talk about the", ""), "{shown}");
    assert_eq!(lines[7], "  line 1     user       Parser", "{shown}");
    let said: serde_json::Value = serde_json::from_str(&ok(search(&["Parser", "-C", "1", "--json"]))).unwrap();
    assert_eq!(said[1]["messages"][0]["before"], serde_json::json!(["Let us talk about the"]));
    assert!(said[1]["messages"][0].get("after").is_none(), "{said}");
    let counts = ok(search(&["quokka", "-m", "0"]));
    assert_eq!(
        counts, "2027-01-15 08:00  new: 1 message\n\n2027-01-15 08:00  quokkas: 2 messages\n",
        "the counts alone"
    );
    // Nothing found, an error: grep's exit codes, 1 and 2.
    let none = search(&["zebra", "--until", "2027-01-14"]).output().unwrap();
    assert!(none.status.code() == Some(1) && none.stdout.is_empty(), "{none:?}");
    let said = String::from_utf8(none.stderr).unwrap();
    assert!(
        said.contains("no listed conversation modified in or before 2027-01-14 has a message that says \"zebra\""),
        "{said}"
    );
    for blank in [&[" "][..], &["parser", ""]] {
        let blank = fail(search(blank));
        assert_eq!(blank.status.code(), Some(2));
        assert!(String::from_utf8(blank.stderr).unwrap().contains("a text to search for is blank"));
    }
    // -q prints nothing, and says by its exit code alone whether a message says it.
    for (args, code) in [(&["PARSER", "-q"][..], 0), (&["zebra", "--quiet"], 1), (&["parser", "-q", "-E", "("], 2)] {
        let quiet = search(args).output().unwrap();
        assert_eq!(quiet.status.code(), Some(code), "{args:?}: {quiet:?}");
        assert!(quiet.stdout.is_empty() && (code == 2 || quiet.stderr.is_empty()), "{args:?}: {quiet:?}");
    }
    let both = fail(search(&["parser", "-q", "-l"]));
    assert!(String::from_utf8_lossy(&both.stderr).contains("cannot be used with"), "{both:?}");
    let none = search(&["parser", "zebra"]).output().unwrap();
    let said = String::from_utf8(none.stderr).unwrap();
    assert!(said.contains("has a message that says \"parser\" and \"zebra\""), "{said}");
    // On a terminal the match is marked, as grep marks it; not under NO_COLOR.
    let (shown, success) = crate::util::on_terminal({
        let mut c = search(&["PARSER", "-n", "1"]);
        c.env_remove("NO_COLOR");
        c
    });
    assert!(success && shown.contains("  the \x1b[1;31mparser\x1b[0m works"), "{shown:?}");
    let (shown, _) = crate::util::on_terminal({
        let mut c = search(&["WORKS", "parser", "-n", "1"]);
        c.env_remove("NO_COLOR");
        c
    });
    assert!(shown.contains("  the \x1b[1;31mparser\x1b[0m \x1b[1;31mworks\x1b[0m"), "every text marked: {shown:?}");
    let (plain, _) = crate::util::on_terminal({
        let mut c = search(&["PARSER", "-n", "1"]);
        c.env("NO_COLOR", "1");
        c
    });
    assert!(plain.contains("  the parser works") && !plain.contains('\x1b'), "{plain:?}");
    // --color: always marks into a pipe too (for `less -R`), NO_COLOR or not; never marks
    // nothing, even on a terminal; the last one given wins.
    for color in [&["--color", "always"][..], &["--color=never", "--colour", "always"]] {
        let piped = search(&[&["PARSER", "-n", "1"], color].concat()).env("NO_COLOR", "1").output().unwrap();
        let shown = String::from_utf8(piped.stdout).unwrap();
        assert!(
            piped.status.success() && shown.contains("  the \x1b[1;31mparser\x1b[0m works"),
            "{color:?}: {shown:?}"
        );
    }
    let (plain, success) = crate::util::on_terminal({
        let mut c = search(&["PARSER", "-n", "1", "--color", "never"]);
        c.env_remove("NO_COLOR");
        c
    });
    assert!(success && plain.contains("  the parser works") && !plain.contains('\x1b'), "{plain:?}");
    let bad = fail(search(&["PARSER", "--color", "sometimes"]));
    assert!(String::from_utf8(bad.stderr).unwrap().contains("invalid value 'sometimes' for '--color <WHEN>'"));
}

/// `list --since/--until` keep to conversations last modified within those days, in local time
/// (as the MODIFIED column reads): a day that a change of clocks starts at 01:00 starts there.
#[test]
fn list_keeps_to_the_days_asked() {
    // Unix seconds; America/Santiago skipped from 2024-09-08 00:00 (-04) to 01:00 (-03).
    let conversations = [
        ("august", 1_725_163_199), // 2024-08-31 23:59:59 -04
        // 2024-09-01 in UTC, still August here.
        ("september-in-utc", 1_725_148_800), // 2024-08-31 20:00:00 -04
        ("september", 1_725_163_200),        // 2024-09-01 00:00:00 -04
        ("before-the-gap", 1_725_767_999),   // 2024-09-07 23:59:59 -04
        ("after-the-gap", 1_725_768_000),    // 2024-09-08 01:00:00 -03
        ("october", 1_727_751_600),          // 2024-10-01 00:00:00 -03
    ];
    let archive = DatedArchive::new(&conversations);
    let (logs, db) = (archive.logs.as_path(), archive.db.as_path());
    let ids = |args: &[&str]| archive.ids("America/Santiago", args);
    assert_eq!(ids(&["--since", "2024-09-08"]), ["october", "after-the-gap"]);
    assert_eq!(ids(&["--until", "2024-09-07"]), ["before-the-gap", "september", "august", "september-in-utc"]);
    assert_eq!(ids(&["--since", "2024-09", "--until", "2024-09"]), ["after-the-gap", "before-the-gap", "september"]);
    assert_eq!(ids(&["--since", "2024-09-01", "-n", "1"]), ["october"]);
    assert_eq!(ids(&["--since", "2024", "--until", "2024-08-31"]), ["august", "september-in-utc"]);
    assert_eq!(ids(&["--since", "2025"]), Vec::<String>::new());
    // Empty, it says which conversations it looked for.
    let out = convmeta()
        .env("TZ", "UTC")
        .args(["list", "--logs"])
        .arg(logs)
        .arg("--db")
        .arg(db)
        .args(["--since", "2024-10-02", "-q", "hi"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("no conversation modified in or after 2024-10-02 has a name, id or preview containing \"hi\""),
        "{said}"
    );
    let refused =
        fail(convmeta().args(["list", "--logs"]).arg(logs).arg("--db").arg(db).args(["--since", "2024-02-30"]));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("YYYY-MM-DD"));

    // Samoa skipped 30 December 2011 whole: from 23:59:59 on the 29th (-10) to the 31st (+14).
    let samoa = DatedArchive::new(&[("29th", 1_325_239_199), ("31st", 1_325_239_200)]);
    let ids = |args: &[&str]| samoa.ids("Pacific/Apia", args);
    assert_eq!(ids(&["--until", "2011-12-29"]), ["29th"]);
    assert_eq!(ids(&["--since", "2011-12-30"]), ["31st"]);
    assert_eq!(ids(&["--since", "2011-12-30", "--until", "2011-12-30"]), Vec::<String>::new());
}

/// `today` and `yesterday` are the local clock's days: in zones 26 hours apart, one of which
/// is on another day than UTC at any hour, a conversation written now is today's in each.
#[test]
fn today_and_yesterday_are_the_local_clocks() {
    for (zone, hours) in [("Pacific/Kiritimati", 14), ("Etc/GMT+12", -12)] {
        let now = chrono::Utc::now().naive_utc() + chrono::Duration::hours(hours);
        let stamp = now.format("%Y-%m-%dT%H:%M:%S").to_string();
        let (tmp, logs) = archive_of(&[("now", usage_line(Some(&stamp), "m", "\"input_tokens\": 1", "0.5"), None)]);
        let db = tmp.path().join("db.sqlite3");
        let command = |name: &str, args: &[&str]| {
            let mut c = convmeta();
            c.env("TZ", zone).arg(name).arg("--logs").arg(&logs).arg("--db").arg(&db).args(args).arg("--json");
            serde_json::from_str::<serde_json::Value>(&ok(c)).unwrap().as_array().unwrap().len()
        };
        for (args, listed) in [
            (&["--since", "today"][..], 1),
            (&["--until", "today"], 1),
            (&["--until", "yesterday"], 0),
            (&["--since", "yesterday", "--until", "yesterday"], 0),
        ] {
            assert_eq!(command("list", args), listed, "list {args:?} in {zone}");
            assert_eq!(command("usage", args), listed, "usage {args:?} in {zone}");
        }
    }
}
