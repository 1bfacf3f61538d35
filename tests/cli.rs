//! The binary: commands, errors, and the rule that the archive is never written.

use crate::util::{
    archive_of, bash_completes, convmeta, fail, fish_completes, ok, output_within, restore, set_mtime_ns, snapshot,
    unprivileged, write_conversation, zsh_completes,
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
    ok(r.cmd(&["verify"]));
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
        &["man"],
    ] {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let mut c = match args[0] {
            "completions" | "man" => {
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

/// On a terminal log lines are coloured, unless `NO_COLOR` is set (no-color.org), and a
/// command's are its level and message alone (through a pipe they carry the time and module:
/// `bad_input::problems_are_logged_once_without_flooding_and_show_names_them`).
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
    let warned = plain.lines().filter(|l| l.contains("WARN")).collect::<Vec<_>>();
    assert!(
        !warned.is_empty() && warned.iter().all(|l| l.starts_with(" WARN problems in conversation id=")),
        "{plain:?}"
    );
    // A server's keep them, on a terminal too: it runs for days.
    let mut serve = r.cmd(&["serve", "--addr", "127.0.0.1:0"]);
    serve.env("CONVMETA_LOG", "info").env("NO_COLOR", "1");
    let mut sent = false;
    let (served, _) = crate::util::on_terminal_watched(serve, move |shown, pid| {
        if !sent && shown.contains("listening on") {
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
            sent = true;
        }
    });
    let listening = served.lines().find(|l| l.contains("listening on")).expect(&served);
    assert!(listening.starts_with("20") && listening.contains("Z  INFO convmeta::server: listening on"), "{served:?}");
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
    let (json, said) = run(&empty, &["--json"]);
    assert_eq!(json, "[]\n", "JSON's output stays the items");
    assert!(said.contains("no conversations in"), "and stderr says why, as for the table: {said}");
    assert!(run(&r.arch, &["-q", "no such words anywhere"])
        .1
        .contains("no listed conversation's name, id or preview contains"));
    // gptme's data directory, which holds the logs directory.
    let data = r.arch.parent().unwrap().join("data");
    std::fs::create_dir_all(data.join("logs/one")).unwrap();
    std::fs::copy(one.join("conversation.jsonl"), data.join("logs/one/conversation.jsonl")).unwrap();
    let said = run(&data, &[]).1;
    assert!(said.contains(&format!("but in {}: pass that as --logs", data.join("logs").display())), "{said}");
    let only_tests = r.arch.parent().unwrap().join("only-tests");
    std::fs::create_dir_all(only_tests.join("test-one")).unwrap();
    std::fs::copy(one.join("conversation.jsonl"), only_tests.join("test-one/conversation.jsonl")).unwrap();
    let said = run(&only_tests, &[]).1;
    assert!(
        said.contains("all 1 conversations here are hidden") && said.contains("`convmeta list --hidden`"),
        "{said}"
    );
    let (listed, said) = run(&only_tests, &["--hidden"]);
    assert!(listed.contains("test-one") && said.is_empty(), "{listed}{said}");
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
    // The zone the rows were read in; asked in another, what a refresh there would do.
    assert!(out.contains("\ntime zone:      TZ=UTC\n"), "{out}");
    let elsewhere = ok(r.cmd(&["status"]).env("TZ", "IST-5:30"));
    let said =
        "time zone:      TZ=UTC, but TZ=IST-5:30 here: a refresh here writes each timestamp without a zone again\n";
    assert!(elsewhere.contains(said), "{elsewhere}");
    let s = crate::util::parse(&ok(r.cmd(&["status", "--json"]).env("TZ", "IST-5:30")));
    assert_eq!((s["zone"].as_str(), s["zone_differs_here"].as_bool()), (Some("TZ=UTC"), Some(true)), "{s}");
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
    // A list that leaves conversations out says so, on stderr, in JSON too (as `search --json`
    // does); one that shows them all does not.
    let said = |args: &[&str]| String::from_utf8(r.cmd(args).output().unwrap().stderr).unwrap();
    assert_eq!(said(&["list", "--limit", "127"]), "127 shown; more conversations are listed (`-n 0` shows them all)\n");
    assert_eq!(
        said(&["list", "--limit", "2", "-q", "edge"]),
        "2 shown; more conversations match (`-n 0` shows them all)\n"
    );
    assert_eq!(
        said(&["list", "--json", "--limit", "1"]),
        "1 shown; more conversations are listed (`-n 0` shows them all)\n"
    );
    for all in [&["list", "--limit", "128"][..], &["list", "--limit", "0"], &["list", "--json", "--limit", "128"]] {
        assert_eq!(said(all), "", "{all:?}");
    }
    let out = ok(r.cmd(&["list", "--limit", "0"]));
    assert_eq!(out.lines().count(), 1 + 128, "0 lists all 135 but the 7 hidden: {out}");
    assert_eq!(ok(r.cmd(&["list", "--limit", "184467440737095516160"])), out, "a count too large to hold: all");
    let out = ok(r.cmd(&["show", "edge-agent"]));
    assert!(out.contains("agent_name: Bob") && !out.contains("hidden"), "{out}");
    // Why a conversation `show` finds is in no list.
    let hidden = ok(r.cmd(&["show", "test-quokka-hidden"]));
    assert!(
        hidden.contains("hidden: yes, in no list but `list --hidden` (gptme leaves out ids starting with tmp or test-"),
        "{hidden}"
    );
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
    // An empty id names none, though every id holds it: a usage error, not all of them suggested.
    for args in [&["show", ""][..], &["usage", "--conversation", ""]] {
        let out = r.cmd(args).output().unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("a conversation id is its directory's name, never empty") && !err.contains("did you mean")
        );
    }
}

/// `list --paths` prints each conversation's log path, in the list's order and with its filters
/// and limit, as its item names it (and `show` takes one); `-0` ends each with a NUL instead.
#[test]
fn list_prints_the_paths_of_the_logs_for_other_commands() {
    let r = restore("archive");
    let items = crate::util::parse(&ok(r.cmd(&["list", "--json", "-n", "0", "--sort", "cost"])));
    let paths: Vec<&str> = items.as_array().unwrap().iter().map(|i| i["path"].as_str().unwrap()).collect();
    assert_eq!(paths.len(), 128);
    let lines: String = paths.iter().map(|p| format!("{p}\n")).collect();
    assert_eq!(ok(r.cmd(&["list", "--paths", "-n", "0", "--sort", "cost"])), lines);
    assert_eq!(ok(r.cmd(&["list", "--paths", "-0", "-n", "0", "--sort", "cost"])), lines.replace('\n', "\0"));
    let broken = ok(r.cmd(&["list", "--paths", "--problems", "-n", "2"]));
    let ids = crate::util::parse(&ok(r.cmd(&["list", "--json", "--problems", "-n", "2"])));
    let expected: Vec<&str> = ids.as_array().unwrap().iter().map(|i| i["path"].as_str().unwrap()).collect();
    assert_eq!(broken.lines().collect::<Vec<_>>(), expected);
    let shown = crate::util::parse(&ok(r.cmd(&["show", "--json", expected[0]])));
    assert_eq!(shown["path"].as_str(), Some(expected[0]), "show takes a path list printed");
    for refused in [&["list", "--paths", "--json"][..], &["list", "-0"]] {
        assert_eq!(r.cmd(refused).output().unwrap().status.code(), Some(2), "{refused:?}");
    }
}

/// `--problems` keeps to the conversations whose files had problems; `--hidden` takes in those
/// gptme hides, in the list's order and any other; `search` takes both.
#[test]
fn list_keeps_to_problems_and_takes_in_hidden_ones() {
    let r = restore("archive");
    crate::util::write_conversation(
        &r.arch,
        "test-broken",
        "{\"role\": \"user\", \"content\": \"quokka\"}\n{oops\n",
        None,
    );
    let ids = |args: &[&str]| -> Vec<String> {
        let items = crate::util::parse(&ok(r.cmd(&[&["list", "--json", "-n", "0"], args].concat())));
        items.as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
    };
    // What the rows say, read with SQL in the list's orders.
    let rows = |filter: &str, order: &str| -> Vec<String> {
        let conn = rusqlite::Connection::open(&r.db).unwrap();
        let sql = format!("SELECT id FROM conversations WHERE {filter} ORDER BY {order}");
        let mut stmt = conn.prepare(&sql).unwrap();
        stmt.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect()
    };
    let all = ids(&["--hidden"]);
    let newest = "modified DESC, id DESC";
    assert_eq!(all.len(), 136, "135 and the one made here");
    assert_eq!(all, rows("1", newest));
    assert_eq!(ids(&[]), rows("hidden = 0", newest));
    assert_eq!(ids(&["--hidden", "--sort", "messages", "-r"]), rows("1", "messages ASC, modified ASC, id ASC"));
    let mut broken = ids(&["--problems"]);
    assert_eq!(broken, rows("hidden = 0 AND problems > 0", newest));
    broken.sort();
    assert_eq!(
        broken,
        ["edge-config-invalid-toml", "edge-first-line-malformed-json", "edge-invalid-utf8", "edge-truncated-last-line"]
    );
    let with_hidden = ids(&["--problems", "--hidden"]);
    assert_eq!(with_hidden, rows("problems > 0", newest));
    assert!(with_hidden.contains(&"test-broken".to_owned()) && with_hidden.len() == 5, "{with_hidden:?}");
    // As many as `status` counts.
    let status = crate::util::parse(&ok(r.cmd(&["status", "--json"])));
    assert_eq!((status["conversations"].as_u64(), status["with_problems"].as_u64()), (Some(136), Some(5)), "{status}");
    // The table says what each one's problems are, as the row holds them, beneath it.
    let table = ok(r.cmd(&["list", "--problems", "--hidden", "-n", "0"]));
    let lines: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(lines.len(), 2 * with_hidden.len(), "{table}");
    for (pair, id) in lines.chunks(2).zip(&with_hidden) {
        let conn = rusqlite::Connection::open(&r.db).unwrap();
        let notes: String =
            conn.query_row("SELECT problem_notes FROM conversations WHERE id = ?1", [id], |row| row.get(0)).unwrap();
        assert!(pair[0].ends_with(id.as_str()) && pair[1] == format!("    {notes}"), "{pair:?} {notes}");
    }
    assert!(table.contains("\n    1 malformed line\n"), "{table}");
    assert_eq!(ok(r.cmd(&["list", "-n", "0", "--hidden"])).lines().count(), 137, "without --problems, no notes");
    // With the others, and said when none is left.
    assert_eq!(ids(&["--problems", "-q", "UTF"]), ["edge-invalid-utf8"]);
    let said = |args: &[&str]| String::from_utf8(r.cmd(&[&["list"], args].concat()).output().unwrap().stderr).unwrap();
    assert_eq!(
        said(&["--problems", "-q", "zzz"]),
        "no listed conversation with problems has a name, id or preview containing \"zzz\"\n"
    );
    assert_eq!(
        said(&["--problems", "--hidden", "--since", "2999-01-01"]),
        "no conversation modified in or after 2999-01-01 with problems\n"
    );
    // A search, likewise.
    let found = |args: &[&str]| {
        let out = r.cmd(&[&["search", "-l", "quokka"], args].concat()).output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| Some(l.split('/').nth_back(1)?.to_owned()))
            .collect::<Vec<_>>()
    };
    let listed = found(&[]);
    assert!(!listed.iter().any(|id| id.starts_with("test-")), "{listed:?}");
    let everywhere = found(&["--hidden"]);
    assert_eq!(everywhere.len(), listed.len() + 2, "{everywhere:?}");
    assert!(everywhere.contains(&"test-quokka-hidden".to_owned()) && everywhere.contains(&"test-broken".to_owned()));
    assert_eq!(found(&["--hidden", "--problems"]), ["test-broken"]);
}

/// Into systemd's journal (stderr the file `JOURNAL_STREAM` names), log lines are led by their
/// priority, without the time, which the journal records; elsewhere, as ever.
#[test]
fn log_lines_into_the_journal_are_led_by_their_priority() {
    use std::os::unix::fs::MetadataExt;
    let r = restore("archive-crashers");
    let logs = r.arch.join("non-object-json-line");
    let logged = |journal: &dyn Fn(&std::fs::Metadata) -> String| {
        let path = r.home.join("stderr.log");
        let file = std::fs::File::create(&path).unwrap();
        let stream = journal(&file.metadata().unwrap());
        let _ = std::fs::remove_file(&r.db);
        let status = convmeta()
            .args(["list", "--logs"])
            .arg(&logs)
            .arg("--db")
            .arg(&r.db)
            .env("CONVMETA_LOG", "info")
            .env("JOURNAL_STREAM", stream)
            .stdout(std::process::Stdio::null())
            .stderr(file)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::read_to_string(&path).unwrap()
    };
    let journal = logged(&|m| format!("{}:{}", m.dev(), m.ino()));
    let problems = "convmeta::refresh: problems in conversation id=\"2026-01-01-non-object-json-line\"";
    assert!(journal.lines().any(|l| l.starts_with(&format!("<4> WARN {problems}"))), "{journal}");
    assert!(journal.lines().all(|l| l.starts_with("<6> INFO ") || l.starts_with("<4> WARN ")), "{journal}");
    // Another file's: the journal is not where stderr goes.
    let elsewhere = logged(&|m| format!("{}:{}", m.dev(), m.ino() + 1));
    assert!(elsewhere.lines().all(|l| l.starts_with("20") && l.contains('Z')), "{elsewhere}");
    assert!(elsewhere.contains(&format!(" WARN {problems}")), "{elsewhere}");
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
        (&["list", "--limit", "-1"], "invalid value '-1' for '--limit <N>': a count, 0 or more"),
        // A value starting with `-` is the value, as getopt takes it: refused for what it is.
        (&["list", "--sort", "-x"], "invalid value '-x' for '--sort <KEY>'"),
        (&["usage", "--since", "-3d"], "invalid value '-3d' for '--since <DATE>': a date as"),
        (&["search", "-m", "-1", "x"], "invalid value '-1' for '--matches <N>': a count, 0 or more"),
        (&["search", "-C", "1e3", "x"], "invalid value '1e3' for '--context <N>': a count, 0 or more"),
        (&["query", "--timeout", "-1", "SELECT 1"], "invalid value '-1' for '--timeout <SECONDS>': a positive number"),
        (&["serve", "--safety-sweep", "0"], "invalid value '0' for '--safety-sweep <SECONDS>': a positive number"),
        (&["serve", "--sql-max-rows", "0"], "invalid value '0' for '--sql-max-rows <N>': a number of rows, 1 or more"),
        (&["serve", "--sql-timeout", "-0.5"], "invalid value '-0.5' for '--sql-timeout <SECONDS>': a positive number"),
        // No day between them: a slip, refused before any work.
        (
            &["list", "--since", "2027", "--until", "2026"],
            "--since 2027 is after --until 2026: no day lies between them",
        ),
        (
            &["search", "--since", "2026-12", "--until", "2026-11-30", "x"],
            "--since 2026-12 is after --until 2026-11-30",
        ),
        (
            &["usage", "--until", "2026-11-01", "--since", "2026-11-02"],
            "--since 2026-11-02 is after --until 2026-11-01",
        ),
    ] {
        let out = r.cmd(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(why), "{args:?}: {err}");
    }

    // And a text starting with `-` is looked for (`--model -4o`, not an unknown flag `-4`).
    let out = r.cmd(&["list", "-q", "-v"]).output().unwrap();
    let said = String::from_utf8(out.stderr).unwrap();
    assert!(
        out.status.success() && said.contains("no listed conversation's name, id or preview contains \"-v\""),
        "{said}"
    );
    let shown = ok(r.cmd(&["list", "--json", "--model", "-x"]));
    assert_eq!(shown, "[]\n");

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
        err.starts_with(
            "convmeta: cannot resolve --addr 5702 (it takes HOST:PORT, such as 127.0.0.1:5702, or unix:PATH)"
        ),
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

/// The completion script asks the binary on each Tab: subcommands, flags, their paths, and
/// `show`'s conversation ids, from the index and from the archive, reading both and writing
/// neither.
/// `convmeta man`: one page, convmeta(1), that groff reads without a warning: every command in
/// a subsection describing its own flags, the flags most take once under COMMON OPTIONS,
/// `--help` under OPTIONS. Checked against the commands as clap defines them.
#[test]
fn the_manual_page_describes_every_command_and_flag() {
    use clap::CommandFactory;
    let page = ok(convmeta().arg("man").env("SOURCE_DATE_EPOCH", "86400"));
    let version = env!("CARGO_PKG_VERSION");
    // Its title, section, date (SOURCE_DATE_EPOCH's, as help2man dates pages), source, manual.
    let title = format!("\n.TH CONVMETA 1 1970-01-02 \"convmeta {version}\" \"User Commands\"\n");
    assert!(page.contains(&title), "{title:?} in {}", &page[..200]);
    assert!(page.is_ascii(), "characters outside ASCII escaped, for a groff that reads Latin-1");
    // Tidy as `mandoc -Tlint` asks: no blank at a line's end (an escaped space aside), no break
    // beside a blank line, where it does nothing, no text line over 80 bytes (but an item's tag,
    // the line after `.TP`, which is one line).
    let lines: Vec<&str> = page.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        assert!(!line.ends_with(' ') || line.trim_end().ends_with('\\'), "line {}: {line:?}", i + 1);
        let tag = i > 0 && lines[i - 1] == ".TP";
        assert!(line.len() <= 80 || line.starts_with('.') || tag, "line {}: {line:?}", i + 1);
        let beside = [i.checked_sub(1), Some(i + 1)].map(|j| j.and_then(|j| lines.get(j)).copied());
        assert!(*line != ".br" || !beside.contains(&Some("")), "line {}: a break beside a blank line", i + 1);
    }
    let headings: Vec<&str> = page.lines().filter(|l| l.starts_with(".SH ")).collect();
    for h in &headings {
        assert_eq!(headings.iter().filter(|o| o == &h).count(), 1, "{h} once: {headings:?}");
    }
    // The flags and arguments a part of the page describes: those on the line after each `.TP`.
    let described = |heading: &str| -> Vec<String> {
        let start = page.find(&format!("\n{heading}\n")).unwrap_or_else(|| panic!("{heading} in the page"));
        let part = &page[start + heading.len() + 2..];
        let part = &part[..part.find("\n.SS ").or(part.find("\n.SH ")).unwrap_or(part.len())];
        let mut found = Vec::new();
        for line in part.split(".TP\n").skip(1).filter_map(|item| item.lines().next()) {
            for piece in line.split("\\fB\\-\\-").skip(1).chain(line.split("\\fI").skip(1)) {
                found
                    .push(piece[..piece.find("\\f").unwrap()].replace("\\-", "-").trim_matches(['<', '>']).to_string());
            }
        }
        found
    };
    let mut cli = convmeta::cli::Cli::command().disable_help_subcommand(true);
    cli.build();
    let common = described(".SH \"COMMON OPTIONS\"");
    assert!(described(".SH OPTIONS").contains(&"help".to_string()));
    for sub in cli.get_subcommands() {
        let own = described(&format!(".SS \"convmeta {}\"", sub.get_name()));
        for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
            let name = match arg.get_long() {
                Some(long) => long.to_string(),
                None => arg.get_value_names().unwrap()[0].to_string(),
            };
            let shared = ["logs", "db", "help"].contains(&arg.get_id().as_str());
            assert_eq!(own.contains(&name), !shared, "{} {name}: {own:?}", sub.get_name());
            if shared && name != "help" {
                assert!(common.contains(&name), "{name} under COMMON OPTIONS: {common:?}");
            }
        }
    }
    // As `man` shows it (groff, where installed: `.ci/run` installs it): no warning, and the
    // characters outside ASCII as they were.
    use std::process::Stdio;
    let groff = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-P-cbou", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut groff) = groff else {
        eprintln!("groff is not installed: the page is not rendered");
        return;
    };
    std::io::Write::write_all(&mut groff.stdin.take().unwrap(), page.as_bytes()).unwrap();
    let out = groff.wait_with_output().unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let (head, foot) = (text.lines().next().unwrap(), text.trim_end().lines().last().unwrap());
    assert!(head.starts_with("CONVMETA(1)") && head.contains(" User Commands "), "{head}");
    assert!(foot.starts_with(&format!("convmeta {version} ")) && foot.contains(" 1970-01-02 "), "{foot}");
    assert!(text.contains("<ORIGIN[,ORIGIN\u{2026}]>"), "{text}");
    assert!(text.contains("COMMON OPTIONS") && text.contains("EXIT STATUS"), "{text}");
}

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
        set_mtime_ns(&logs.join(id).join("conversation.jsonl"), (1_767_000_000 + i as u64 * 100) * 1_000_000_000);
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
        "penguin-notes 2026-01-03-gamma 2026-01-02-beta-penguin 2026-01-01-alpha --logs --db --json --problem-lines --help"
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
    // Several hold it, and their common beginning does not (`2026-01-0`): the word is offered
    // too, so that readline keeps it and lists them rather than putting `2026-01-0` in its place.
    assert_eq!(show("a"), "2026-01-03-gamma 2026-01-01-alpha 2026-01-02-beta-penguin a");
    // With no common beginning readline keeps the word itself.
    assert_eq!(show("e"), "penguin-notes test-hidden 2026-01-02-beta-penguin 2026-01-01-alpha");
    // zsh, which drops a candidate that does not begin with the word, takes them as they are:
    // one alone replaces the word, several keep it (and are listed). Sourced, and as a file in
    // `$fpath`, whose first Tab loads it and completes too.
    let zsh = ok(convmeta().args(["completions", "zsh"]));
    let line = format!("convmeta show --logs {l} --db {d} ");
    for (word, completed) in [("beta", "2026-01-02-beta-penguin "), ("a", "a"), ("2026-01-01", "2026-01-01-alpha ")] {
        for from_fpath in [false, true] {
            match zsh_completes(&zsh, &format!("{line}{word}"), from_fpath) {
                Some(buffer) => assert_eq!(buffer, format!("{line}{completed}"), "{word}, from $fpath: {from_fpath}"),
                None => eprintln!("zsh is not installed: its completion is not tried"),
            }
        }
    }
    // fish, which matches inside words itself, offers them all with their names.
    let fish = ok(convmeta().args(["completions", "fish"]));
    for (word, offered) in [
        ("beta", "2026-01-02-beta-penguin\n"),
        ("a", "2026-01-03-gamma\n2026-01-01-alpha\tAlpha project\n2026-01-02-beta-penguin\n"),
        ("project", "2026-01-01-alpha\tAlpha project\n"),
    ] {
        match fish_completes(&fish, &format!("{line}{word}")) {
            Some(out) => assert_eq!(out, offered, "{word}"),
            None => eprintln!("fish is not installed: its completion is not tried"),
        }
    }
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

    // --since and --until: the forms a date takes, with the days they name, from today (UTC).
    let today = chrono::Utc::now().date_naive();
    let ago = |days: u64| (today - chrono::Days::new(days)).format("%Y-%m-%d").to_string();
    let (month, year) = (today.format("%Y-%m").to_string(), today.format("%Y").to_string());
    let forms = format!(
        "today\t{}\nyesterday\t{}\n7d\t{}, a week ago\n30d\t{}, 30 days ago\n{month}\tthis month\n{year}\tthis year\n",
        ago(0),
        ago(1),
        ago(7),
        ago(30)
    );
    for flag in ["list --since", "search --until", "usage --since"] {
        let mut words = vec!["--", "convmeta"];
        words.extend(flag.split(' '));
        assert_eq!(ok(convmeta().env("CONVMETA_COMPLETE", "fish").args(&words).arg("")), forms, "{flag}");
    }
    assert_eq!(
        bash_completes(&script, &["convmeta", "usage", "--until", "y"], &[]),
        "yesterday",
        "only the forms that start with the word"
    );
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

/// `list`'s columns widen, every row's, for a count or a cost wider than its header.
#[test]
fn list_columns_widen_for_large_numbers() {
    let hi = |stamp: &str| format!(r#"{{"role": "user", "content": "hi", "timestamp": "{stamp}"}}"#) + "\n";
    let spent = crate::util::usage_line(Some("2026-01-02T10:00:00"), "m", r#""input_tokens": 1"#, "1234567.891");
    let (tmp, logs) = archive_of(&[
        ("small", hi("2026-01-01T10:00:00"), None),
        ("costly", hi("2026-01-02T09:00:00") + &spent, None),
        ("long", hi("2026-01-03T10:00:00").repeat(1_000_000), None),
    ]);
    let out = ok(convmeta().args(["list", "--logs"]).arg(&logs).arg("--db").arg(tmp.path().join("db.sqlite3")));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(out.contains(" 1,000,000 ") && out.contains(" $1,234,567.89 "), "{out}");
    // Where each line's last column starts (names have no spaces here).
    let name_at: Vec<usize> = lines.iter().map(|l| l.rfind(' ').unwrap() + 1).collect();
    assert!(lines[0].ends_with(" NAME") && name_at.iter().all(|at| *at == name_at[0]), "{name_at:?}\n{out}");
    // Each column's right edge, that of its header too.
    let edge = |cell: &str| {
        let l = lines.iter().find(|l| l.contains(&format!(" {cell} "))).unwrap();
        l.find(cell).unwrap() + cell.len()
    };
    assert_eq!(edge("MSGS"), edge("1,000,000"), "{out}");
    assert_eq!((edge("COST"), edge("COST")), (edge("$1,234,567.89"), edge("$0.00")), "{out}");
}
