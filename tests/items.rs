//! Items as gptme computes them, through the command line: naive timestamps in any zone and
//! across a change of zone, paths as the logs directory is named, workspaces and agent paths,
//! `config.toml` as gptme falls back from it, `created`, and lines as gptme's readers strip them.

use crate::util::{archive_of, convmeta, ok, set_schema_back, write_conversation};

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
    assert!(said.contains("time zone changed from TZ=UTC0 to TZ=IST-5:30: "), "named as set: {said}");
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
    let named = format!("time zone changed from TZ={} to TZ={}: ", india.display(), nepal.display());
    assert!(said.contains(&named), "another zone, the one recorded named as its process named it: {said}");

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
    // A zone recorded without its name (the name recorded is another key's): said by its key.
    let (_, said) = list(&india);
    assert!(said.contains(&format!("time zone changed from {legacy} to TZ={}: ", india.display())), "{said}");
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
