//! Bad input never takes down a listing: each problem is counted on its row, everything else
//! still lists, and nothing hangs.

use std::io::Write;
use std::path::Path;

use crate::util::{ok, parse};

fn conversation(logs: &Path, id: &str, bytes: &[u8]) {
    let dir = logs.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("conversation.jsonl"), bytes).unwrap();
}

fn list(logs: &Path, db: &Path) -> Vec<serde_json::Value> {
    let out = ok(crate::util::convmeta().arg("list").arg("--json").arg("--logs").arg(logs).arg("--db").arg(db));
    serde_json::from_value(parse(&out)).unwrap()
}

/// A fresh archive of one conversation, `id`, whose log is `lines` (each ended by a newline),
/// and a database beside it.
struct OneLog {
    _tmp: tempfile::TempDir,
    logs: std::path::PathBuf,
    db: std::path::PathBuf,
}

impl OneLog {
    fn new(id: &str, lines: &[&str]) -> OneLog {
        let tmp = tempfile::tempdir().unwrap();
        let (logs, db) = (tmp.path().join("logs"), tmp.path().join("db.sqlite3"));
        conversation(&logs, id, lines.iter().map(|l| format!("{l}\n")).collect::<String>().as_bytes());
        OneLog { _tmp: tmp, logs, db }
    }

    /// convmeta's output for `args` on this archive and database.
    fn run(&self, args: &[&str]) -> String {
        ok(crate::util::convmeta().args(args).arg("--logs").arg(&self.logs).arg("--db").arg(&self.db))
    }
}

fn problems(db: &Path, id: &str) -> (i64, String) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT problems, coalesce(problem_notes, '') FROM conversations WHERE id = ?1", [id], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .unwrap()
}

#[test]
fn hostile_files_are_listed_with_their_problems() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let db = tmp.path().join("db.sqlite3");
    let good = b"{\"role\": \"user\", \"content\": \"fine\", \"timestamp\": \"2026-01-01T10:00:00Z\"}\n";
    conversation(&logs, "healthy", good);
    conversation(
        &logs,
        "mixed",
        b"not json\n[1, 2]\n{\"role\": \"user\", \"content\": \"bad \xff byte\"}\n{\"role\": 7, \"metadata\": {\"cost\": \"free\"}}\n\0\0\0\n",
    );
    // A directory and a FIFO where the log should be: listed, never opened.
    std::fs::create_dir_all(logs.join("dir-log/conversation.jsonl")).unwrap();
    std::fs::create_dir_all(logs.join("fifo-log")).unwrap();
    let fifo = logs.join("fifo-log/conversation.jsonl");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    // Broken side files.
    conversation(&logs, "bad-config", good);
    std::fs::write(logs.join("bad-config/config.toml"), "[chat\nname = ").unwrap();
    conversation(&logs, "unknown-key", good);
    std::fs::write(logs.join("unknown-key/config.toml"), "[chat]\nname = \"Known\"\nsurprise = 1\n").unwrap();
    conversation(&logs, "dangling-workspace", good);
    std::os::unix::fs::symlink("../nowhere", logs.join("dangling-workspace/workspace")).unwrap();

    let items = list(&logs, &db);
    let ids: std::collections::BTreeSet<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    for id in ["healthy", "mixed", "dir-log", "fifo-log", "bad-config", "unknown-key", "dangling-workspace"] {
        assert!(ids.contains(id), "{id} listed: {ids:?}");
    }
    let mixed = items.iter().find(|i| i["id"] == "mixed").unwrap();
    assert_eq!(mixed["messages"], 5, "every non-blank line counts, as gptme counts them");
    assert_eq!(mixed["last_message_preview"], "bad \u{fffd} byte");
    let (n, notes) = problems(&db, "mixed");
    assert!(n >= 4, "{n}: {notes}");
    assert!(
        notes.contains("malformed lines") && notes.contains("invalid UTF-8") && notes.contains("wrong type"),
        "{notes}"
    );
    for id in ["dir-log", "fifo-log"] {
        let (n, notes) = problems(&db, id);
        assert_eq!(n, 1);
        assert!(notes.contains("not a regular file"), "{notes}");
    }
    let (_, notes) = problems(&db, "bad-config");
    assert!(notes.contains("invalid TOML"), "{notes}");
    let known = items.iter().find(|i| i["id"] == "unknown-key").unwrap();
    assert_eq!(known["name"], "Known", "what can be read is used");
    assert!(problems(&db, "unknown-key").1.contains("surprise"));
    assert_eq!(problems(&db, "healthy").0, 0);
    // `search` reads every listed log: the FIFO is not waited on, the directory not read, and
    // the bad byte is read as gptme's log reader reads it.
    let mut search = crate::util::convmeta();
    search.args(["search", "--json", "-n", "0", "BYTE"]).arg("--logs").arg(&logs).arg("--db").arg(&db);
    let out = crate::util::output_within(search, std::time::Duration::from_secs(60));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let found: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!((&found[0]["id"], &found[0]["messages"][0]["line"]), (&"mixed".into(), &3.into()));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Float counts whose sums pass the largest float, or reach NaN, list as gptme lists them (as
/// Python's json writes them: `Infinity`, `NaN`), are counted as problems, and store: SQLite
/// would make a NaN NULL, which a NOT NULL column refuses, failing the whole refresh.
#[test]
fn float_sums_past_the_largest_float_list_as_gptme_and_store() {
    let a = OneLog::new(
        "huge",
        &[
            r#"{"role": "assistant", "content": "a", "metadata": {"model": "m", "usage": {"input_tokens": 1e308, "cache_read_tokens": 1e308, "output_tokens": -1e308}}}"#,
            r#"{"role": "assistant", "content": "b", "metadata": {"model": "m", "usage": {"input_tokens": -1e308, "cache_creation_tokens": -1e308, "output_tokens": -1e308}}}"#,
        ],
    );
    let out = a.run(&["list", "--json"]);
    assert!(
        out.contains(r#""total_cache_read_tokens":1e+308,"total_cost":0.0,"total_input_tokens":NaN,"total_output_tokens":-Infinity,"#),
        "{out}"
    );
    let (n, notes) = problems(&a.db, "huge");
    assert_eq!(n, 2, "{notes}");
    assert!(notes.contains("overflowing"), "{notes}");
    let conn = rusqlite::Connection::open(&a.db).unwrap();
    let stored: (String, f64) = conn
        .query_row("SELECT total_input_tokens, total_output_tokens FROM conversations", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(stored, ("NaN".to_owned(), f64::NEG_INFINITY));
    // `usage --json` writes them as `query` does: infinite as `1e999`, NaN as null.
    let usage: Vec<String> =
        a.run(&["usage", "--by", "model", "--json"]).lines().map(|l| l.trim().to_owned()).collect();
    for field in [r#""input_tokens": null,"#, r#""output_tokens": -1e999,"#, r#""cache_read_tokens": 1e+308"#] {
        assert!(usage.iter().any(|l| l == field), "{field} in {usage:?}");
    }
}

/// Counts and costs written as Python's `json.loads` reads them but JSON does not (`NaN`,
/// `Infinity`, `1e400`) are summed as gptme sums them (values from gptme 0.35.1), and a cost
/// that becomes NaN stores, in the row and in its model's.
#[test]
fn counts_and_costs_that_are_not_finite_are_summed_as_gptme_reads_them() {
    let a = OneLog::new(
        "literals",
        &[
            r#"{"role": "assistant", "content": "a", "metadata": {"model": "m1", "usage": {"input_tokens": NaN, "output_tokens": 3}, "cost": Infinity}}"#,
            r#"{"role": "assistant", "content": "b", "metadata": {"model": "m1", "usage": {"input_tokens": 1e400, "output_tokens": -Infinity, "cache_read_tokens": 2}, "cost": -Infinity}}"#,
        ],
    );
    let out = a.run(&["list", "--json"]);
    let usage =
        r#""models_usage":{"m1":{"cache_read_tokens":2,"cost":NaN,"input_tokens":NaN,"output_tokens":-Infinity}},"#;
    let totals =
        r#""total_cache_read_tokens":2,"total_cost":NaN,"total_input_tokens":NaN,"total_output_tokens":-Infinity,"#;
    assert!(out.contains(usage) && out.contains(totals), "{out}");
    // Only the negative cost is a problem.
    assert_eq!(problems(&a.db, "literals").0, 1);
    let conn = rusqlite::Connection::open(&a.db).unwrap();
    let stored: (String, String) = conn
        .query_row(
            "SELECT c.total_cost, m.cost FROM conversations c JOIN conversation_models m ON m.conversation_id = c.id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(stored, ("NaN".to_owned(), "NaN".to_owned()));
    // The commands that print for people read such an item too (it is not JSON).
    let listed = a.run(&["list"]);
    assert!(listed.lines().nth(1).is_some_and(|l| l.contains(" $NaN ")), "{listed}");
    let shown = a.run(&["show", "literals"]);
    assert!(shown.contains("total_output_tokens: -Infinity\n"), "{shown}");
}

#[test]
fn a_64_mib_line_is_read_within_bounds() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let dir = logs.join("huge");
    std::fs::create_dir_all(&dir).unwrap();
    let mut f = std::fs::File::create(dir.join("conversation.jsonl")).unwrap();
    f.write_all(b"{\"role\": \"user\", \"content\": \"").unwrap();
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..64 {
        f.write_all(&chunk).unwrap();
    }
    f.write_all(b"\"}\n{\"role\": \"assistant\", \"content\": \"after the big one\"}\n").unwrap();
    drop(f);
    let items = list(&logs, &tmp.path().join("db.sqlite3"));
    assert_eq!(items[0]["messages"], 2);
    assert_eq!(items[0]["last_message_preview"], "after the big one");
}

#[test]
fn problems_are_logged_once_without_flooding_and_show_names_them() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let db = tmp.path().join("db.sqlite3");
    let good = "{\"role\": \"user\", \"content\": \"fine\", \"timestamp\": \"2026-01-01T10:00:00Z\"}\n";
    for i in 0..25 {
        conversation(&logs, &format!("damaged-{i:02}"), format!("{good}not json\n").as_bytes());
    }
    conversation(&logs, "healthy", good.as_bytes());
    let run = |args: &[&str]| {
        let mut c = crate::util::convmeta();
        c.env("CONVMETA_LOG", "warn").args(args).arg("--logs").arg(&logs).arg("--db").arg(&db);
        let out = c.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
    };
    let (summary, log) = run(&["backfill"]);
    let shown: Vec<&str> = log.lines().filter(|l| l.contains("problems in conversation")).collect();
    assert_eq!(shown.len(), 10, "{log}");
    assert!(shown.iter().all(|l| l.contains("damaged-") && l.contains("problems=\"1 malformed line\"")), "{log}");
    // Written to a pipe or file, as a backfill's log often is, each line says when and where.
    let stamped = |l: &&str| l.starts_with("20") && l.contains("Z  WARN convmeta::refresh: problems in");
    assert!(shown.iter().all(stamped), "{log}");
    assert!(log.contains("problems in 15 more conversations"), "{log}");
    assert!(summary.contains("problems logged for 25"), "{summary}");
    assert!(summary.contains("\n25 conversations with problems: convmeta list --problems --hidden says"), "{summary}");
    assert!(summary.trim_end().ends_with(" (the log's lines: convmeta show ID)"), "{summary}");
    // Each conversation's problems are logged when found, not on every read.
    let (_, log) = run(&["list"]);
    assert!(!log.contains("problems in"), "{log}");
    // New problems in a conversation already known are logged again, only those.
    let mut f = std::fs::OpenOptions::new().append(true).open(logs.join("damaged-03/conversation.jsonl")).unwrap();
    f.write_all(b"[1]\n[2]\n").unwrap();
    let (_, log) = run(&["list"]);
    let shown: Vec<&str> = log.lines().filter(|l| l.contains("problems in")).collect();
    assert_eq!(shown.len(), 1, "{log}");
    assert!(shown[0].contains("damaged-03") && shown[0].contains("2 malformed lines"), "{log}");
    // Everything is still listed, each damaged row counting its problems.
    let items = list(&logs, &db);
    assert_eq!(items.len(), 26);
    assert_eq!(problems(&db, "damaged-03").0, 3);
    assert_eq!(problems(&db, "healthy").0, 0);
    // `show` says what is wrong with one conversation, and when it was, in local time.
    let (shown, _) = run(&["show", "damaged-03"]);
    assert!(shown.lines().any(|l| l.trim() == "problems: 3 malformed lines"), "{shown}");
    assert!(shown.lines().any(|l| l.trim() == "created: 1767261600.0 (2026-01-01 10:00)"), "{shown}");
    // And which lines, to look at: the first ten, numbered as an editor numbers them.
    let named: Vec<&str> = shown.lines().skip_while(|l| !l.contains("problems:")).skip(1).map(str::trim).collect();
    assert_eq!(named, ["line 2: malformed", "line 3: malformed", "line 4: malformed"], "{shown}");
    let mut f = std::fs::OpenOptions::new().append(true).open(logs.join("damaged-05/conversation.jsonl")).unwrap();
    f.write_all(format!("\n{}", "[3]\n".repeat(11)).as_bytes()).unwrap();
    let (shown, _) = run(&["show", "damaged-05"]);
    let named: Vec<&str> = shown.lines().skip_while(|l| !l.contains("problems:")).skip(1).map(str::trim).collect();
    assert_eq!((named.len(), named[0], named[9]), (11, "line 2: malformed", "line 12: malformed"), "{shown}");
    assert_eq!(named[10], "… and 2 more lines (`--problem-lines 0` names them all)", "{shown}");
    // As many as asked for, or all of them.
    let (shown, _) = run(&["show", "damaged-05", "--problem-lines", "0"]);
    let all: Vec<&str> = shown.lines().skip_while(|l| !l.contains("problems:")).skip(1).map(str::trim).collect();
    assert_eq!((all.len(), all[..10] == named[..10], all[11]), (12, true, "line 14: malformed"), "{shown}");
    let (shown, _) = run(&["show", "damaged-05", "--problem-lines", "1"]);
    let one: Vec<&str> = shown.lines().skip_while(|l| !l.contains("problems:")).skip(1).map(str::trim).collect();
    assert_eq!(one, ["line 2: malformed", "… and 11 more lines (`--problem-lines 0` names them all)"], "{shown}");
    // A last line without its newline may be a writer's append still under way: said so.
    let mut f = std::fs::OpenOptions::new().append(true).open(logs.join("damaged-07/conversation.jsonl")).unwrap();
    f.write_all(b"{\"role\": \"user\", \"con").unwrap();
    let (shown, _) = run(&["show", "damaged-07"]);
    let named: Vec<&str> = shown.lines().skip_while(|l| !l.contains("problems:")).skip(1).map(str::trim).collect();
    let unfinished = "line 3 (no newline yet: perhaps still being written): malformed";
    assert_eq!(named, ["line 2: malformed", unfinished], "{shown}");
    let (shown, _) = run(&["show", "healthy"]);
    assert!(!shown.contains("problems"), "{shown}");
}

/// Side files as gptme 0.35.1 reads them when they are not quite right: bytes that are not
/// UTF-8 read with U+FFFD (gptme's `errors="replace"`), and what fails gptme's whole list (an
/// agent's `files` that is not a list, an MCP server without a name, `~user` for no user)
/// counted, the rest of the file still used. Dates among an agent's urls are sent as Flask
/// sends them.
#[test]
fn side_files_are_read_and_refused_as_gptme_reads_and_refuses_them() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let db = tmp.path().join("db.sqlite3");
    // An agent's directory with this `gptme.toml`; the `config.toml` that names it.
    let agent = |name: &str, toml: &str| {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("gptme.toml"), toml).unwrap();
        format!("[chat]\nagent = \"{}\"\n", dir.display())
    };
    let agent_config = agent(
        "agent",
        "files = \"README.md\"\n[agent]\nname = \"Bob\"\n[agent.urls]\nborn = 1979-05-27T07:32:00-07:00\nday = 2026-02-03\n",
    );
    // gptme reads agents' files with tomlkit, which reads TOML 1.1; `config.toml` with tomllib,
    // which reads TOML 1.0.
    let agent_1_1_config = agent(
        "agent-1.1",
        "[agent]\nname = \"\\x41da\"\nurls = {\n  repo = \"https://r/\",\n  met = 1815-12-10T09:15,\n}\n",
    );
    let configs: [(&str, &[u8]); 7] = [
        ("latin-1", b"[chat]\nname = \"caf\xe9 cr\xe8me\"\nworkspace = \"/tmp\"\n"),
        ("in-a-comment", b"# caf\xe9\n[chat]\nname = \"cafe\"\n"),
        ("agent", agent_config.as_bytes()),
        ("agent-1.1", agent_1_1_config.as_bytes()),
        ("config-1.1", b"[chat]\nname = \"\\x41\"\n"),
        ("no-such-user", b"[chat]\nworkspace = \"~no-such-user-here/w\"\n"),
        ("mcp", b"[chat]\nname = \"m\"\n[[mcp.servers]]\ncommand = \"x\"\n"),
    ];
    for (id, config) in configs {
        conversation(&logs, id, b"{\"role\": \"user\", \"content\": \"hi\"}\n");
        std::fs::write(logs.join(id).join("config.toml"), config).unwrap();
    }
    let items = list(&logs, &db);
    let item = |id: &str| items.iter().find(|i| i["id"] == id).unwrap().clone();
    assert_eq!(
        (item("latin-1")["name"].as_str(), item("latin-1")["workspace"].as_str()),
        (Some("caf\u{fffd} cr\u{fffd}me"), Some("/tmp"))
    );
    assert!(problems(&db, "latin-1").1.contains("not UTF-8"));
    assert_eq!(item("in-a-comment")["name"], "cafe");
    let agent_item = item("agent");
    assert_eq!(agent_item["agent_name"], "Bob");
    assert_eq!(
        agent_item["agent_urls"],
        serde_json::json!({"born": "Sun, 27 May 1979 14:32:00 GMT", "day": "Tue, 03 Feb 2026 00:00:00 GMT"})
    );
    let (n, notes) = problems(&db, "agent");
    assert_eq!(n, 1, "{notes}");
    assert!(notes.contains("files is not a list of strings"), "{notes}");
    assert!(problems(&db, "no-such-user").1.contains("no user \"no-such-user-here\""));
    let agent_1_1_item = item("agent-1.1");
    assert_eq!(
        (&agent_1_1_item["agent_name"], &agent_1_1_item["agent_urls"], problems(&db, "agent-1.1").0),
        (&"Ada".into(), &serde_json::json!({"met": "Sun, 10 Dec 1815 09:15:00 GMT", "repo": "https://r/"}), 0)
    );
    assert_eq!(item("config-1.1")["name"], "config-1.1");
    assert!(problems(&db, "config-1.1").1.contains("invalid TOML"));
    let (n, notes) = problems(&db, "mcp");
    assert_eq!((n, item("mcp")["name"].as_str()), (1, Some("m")), "{notes}");
    assert!(notes.contains("mcp.servers entry has no name"), "{notes}");
}
