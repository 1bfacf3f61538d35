//! `verify`: the index compared with the archive read afresh.

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::util::{append, archive_of, ok, restore, set_mtime_ns, usage_line, Restored};

/// The pack restored and backfilled, and a `$TMPDIR` of the test's own for `verify`.
fn backfilled() -> (Restored, tempfile::TempDir) {
    let r = restore("archive");
    ok(r.cmd(&["backfill"]));
    (r, tempfile::tempdir().unwrap())
}

/// `verify` in a scratch `$TMPDIR` of the test's own, which it must leave empty.
fn verify(r: &Restored, tmp: &Path, args: &[&str]) -> std::process::Output {
    let mut c = r.cmd(&["verify"]);
    c.args(args).env("TMPDIR", tmp).env("CONVMETA_LOG", "warn");
    let out = c.output().unwrap();
    let left: Vec<_> = std::fs::read_dir(tmp).unwrap().collect();
    assert!(left.is_empty(), "the scratch index was removed: {left:?}");
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// A log rewritten in place with its size and mtime kept is a change no stat shows: the index
/// keeps the old row, `verify` finds it, and `backfill --reread` mends it.
#[test]
fn verify_finds_a_change_no_stat_shows() {
    let (r, tmp) = backfilled();
    let listed = text(&verify(&r, tmp.path(), &[]).stdout);
    let total = conversations(&r.db);
    let verified = format!("verified {total} conversations: the index holds what reading the archive afresh gives (");
    assert!(listed.starts_with(&verified), "{listed}");

    let id = "2024-01-11-flying-brave-fox";
    let log = r.arch.join(id).join("conversation.jsonl");
    let before = std::fs::metadata(&log).unwrap();
    let mut bytes = std::fs::read(&log).unwrap();
    let at = bytes.windows(12).rposition(|w| w == b"\"content\": \"").unwrap() + 12;
    bytes[at] = if bytes[at] == b'J' { b'K' } else { b'J' }; // the last message's first letter
    std::fs::OpenOptions::new().write(true).open(&log).unwrap().write_all(&bytes).unwrap();
    let mtime = before.modified().unwrap().duration_since(std::time::UNIX_EPOCH).unwrap();
    crate::util::set_mtime_ns(&log, mtime.as_nanos() as u64);
    ok(r.cmd(&["list"])); // the stats say nothing changed: the index keeps the old preview

    let out = verify(&r, tmp.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "differs: {}", text(&out.stderr));
    let said = text(&out.stdout);
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines[0], id, "{said}");
    let preview = lines.iter().find(|l| l.starts_with("  conversations.last_message_preview: ")).expect(&said);
    let letter = bytes[at] as char;
    assert!(preview.contains(&format!(" in the index, '{letter}")), "the new letter afresh: {preview}");
    assert!(said.contains("  conversations.item_json \"last_message_preview\": "), "{said}");
    // And why: the bytes a refresh checks before reading on are not those it read.
    let why = "  why: its log was rewritten in place: its bytes changed, and its size, mtime and inode did not";
    assert_eq!(lines[lines.len() - 2], why, "{said}");
    assert!(
        lines.last().unwrap().starts_with(&format!("1 of {total} conversations differs from the archive read afresh")),
        "{said}"
    );

    // On a terminal (the test's is 120 columns wide) each line fits it, the two values sharing
    // what is left; into a pipe, or with a wide `$COLUMNS`, each is cut to 60 columns alone.
    let on_terminal = |columns: Option<&str>| {
        let mut c = r.cmd(&["verify"]);
        c.env("TMPDIR", tmp.path());
        if let Some(columns) = columns {
            c.env("COLUMNS", columns);
        }
        let (shown, _) = crate::util::on_terminal(c);
        // What follows the progress bar, cleared (ESC [2K) before the report.
        let report = shown.rsplit("\x1b[2K").next().unwrap().replace('\r', "");
        report.lines().map(str::to_owned).collect::<Vec<_>>()
    };
    use unicode_width::UnicodeWidthStr;
    let fitted = on_terminal(None);
    assert_eq!(fitted.len(), lines.len(), "{fitted:?}");
    assert!(fitted[..fitted.len() - 1].iter().all(|l| l.width() <= 120), "{fitted:#?}");
    assert!(lines.iter().any(|l| l.width() > 120), "the test needs lines too long for the terminal: {said}");
    let preview = fitted.iter().find(|l| l.starts_with("  conversations.last_message_preview: ")).unwrap();
    assert!(preview.contains(&format!(" in the index, '{letter}")), "{preview}");
    assert_eq!(on_terminal(Some("400"))[..lines.len() - 1], lines[..lines.len() - 1]);

    ok(r.cmd(&["backfill", "--reread"]));
    let out = verify(&r, tmp.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "mended: {}", text(&out.stdout));
}

fn conversations(db: &Path) -> i64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row("SELECT count(*) FROM conversations", [], |r| r.get(0)).unwrap()
}

/// Each table's rows are compared: a column unequal, a row in one of the two only; `--json`
/// says which, and the values on each side. The problems the reading afresh finds are not
/// logged again.
#[test]
fn verify_names_each_row_that_differs_in_every_table() {
    let (r, tmp) = backfilled();
    let c = rusqlite::Connection::open(&r.db).unwrap();
    let ids: Vec<String> = c
        .prepare("SELECT DISTINCT conversation_id FROM conversation_days ORDER BY 1 LIMIT 3")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let (messages, cost): (i64, f64) = c
        .query_row(
            "SELECT messages, (SELECT cost FROM conversation_models WHERE conversation_id = ?2 ORDER BY model LIMIT 1)
             FROM conversations WHERE id = ?1",
            [&ids[0], &ids[1]],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    c.execute("UPDATE conversations SET messages = messages + 1 WHERE id = ?1", [&ids[0]]).unwrap();
    c.execute(
        "UPDATE conversation_models SET cost = cost + 1 WHERE conversation_id = ?1
         AND model = (SELECT min(model) FROM conversation_models WHERE conversation_id = ?1)",
        [&ids[1]],
    )
    .unwrap();
    let (day, model): (String, String) = c
        .query_row("SELECT day, model FROM conversation_days WHERE conversation_id = ?1 LIMIT 1", [&ids[2]], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    c.execute(
        "DELETE FROM conversation_days WHERE conversation_id = ?1 AND day = ?2 AND model = ?3",
        [&ids[2], &day, &model],
    )
    .unwrap();
    c.execute("INSERT INTO conversation_days VALUES (?1, '1999-12-31', 'nobody/model', 1, 2, 3, 4)", [&ids[2]])
        .unwrap();
    drop(c);

    let said = text(&verify(&r, tmp.path(), &[]).stdout);
    let unseen = said.lines().filter(|l| l.starts_with("  why: no size, mtime, inode or checked bytes changed: "));
    assert_eq!(unseen.count(), 3, "{said}");

    let out = verify(&r, tmp.path(), &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!text(&out.stderr).contains("problems in"), "logged again: {}", text(&out.stderr));
    let found: Value = serde_json::from_slice(&out.stdout).unwrap();
    let total = conversations(&r.db);
    assert_eq!((found["conversations"].as_i64(), found["compared"].as_i64()), (Some(total), Some(total)));
    assert_eq!(found["changed"], serde_json::json!([]));
    let differ = found["differ"].as_array().unwrap();
    let of = |id: &str| &differ.iter().find(|d| d["id"] == id).unwrap_or_else(|| panic!("{id}: {found}"))["rows"];
    assert_eq!(differ.len(), 3, "{found}");
    // No log was rewritten: nothing a refresh checks shows why the rows differ.
    assert!(differ.iter().all(|d| d["log_rewritten"] == false), "{found}");
    assert_eq!(
        of(&ids[0])[0],
        serde_json::json!({"table": "conversations", "key": {}, "columns": {"messages": {"index": messages + 1, "afresh": messages}}})
    );
    let models = &of(&ids[1])[0];
    assert_eq!(models["table"], "conversation_models");
    assert_eq!(models["columns"]["cost"]["afresh"].as_f64(), Some(cost));
    assert_eq!(models["columns"]["cost"]["index"].as_f64(), Some(cost + 1.0));
    assert_eq!(models["columns"].as_object().unwrap().len(), 1, "only the cost: {models}");
    let days = of(&ids[2]).as_array().unwrap();
    let only = |side: &str| days.iter().find(|d| d["only_in"] == side).unwrap_or_else(|| panic!("{side}: {found}"));
    assert_eq!(only("afresh")["key"], serde_json::json!({"day": day, "model": model}));
    assert_eq!(only("index")["key"], serde_json::json!({"day": "1999-12-31", "model": "nobody/model"}));
    assert!(days.iter().all(|d| d["table"] == "conversation_days"));
}

/// A conversation that changes between the reading afresh and the index's refresh is named as
/// changed, not compared: its rows differ, but neither is wrong. So is one whose side files
/// changed, and one whose log is too recent for its stamp to be trusted, whose rewrite within
/// one clock tick no stat shows.
#[test]
fn verify_leaves_out_what_changed_while_it_read() {
    let line = |hour: &str, tokens: &str| usage_line(Some(&format!("2026-01-02T{hour}:00:00")), "m/a", tokens, "0.5");
    let (_tmp, logs) = archive_of(&[
        ("busy", line("10", "\"input_tokens\": 5"), None),
        ("quiet", line("11", "\"input_tokens\": 7"), None),
        ("renamed", line("12", "\"input_tokens\": 8"), None),
        ("racing", line("13", "\"input_tokens\": 9"), None),
    ]);
    // Stamps long settled, but for `racing`'s: dated a few seconds ahead, as a file just written
    // is to a clock a tick behind.
    let log = |id: &str| logs.join(id).join("conversation.jsonl");
    let (jan_4, jan_5) = (1_767_484_800_000_000_000, 1_767_571_200_000_000_000);
    let soon = (std::time::SystemTime::now() + std::time::Duration::from_secs(8))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    for id in ["busy", "quiet", "renamed"] {
        set_mtime_ns(&log(id), jan_4);
    }
    set_mtime_ns(&log("racing"), soon);
    let db = logs.parent().unwrap().join("index.sqlite3");
    let index = convmeta::Index::open(&logs, &db).unwrap();
    index.refresh().unwrap();
    let found = convmeta::verify::verify(
        &index,
        |afresh| {
            let read = afresh.refresh();
            append(&logs, "busy", &line("14", "\"input_tokens\": 1"));
            set_mtime_ns(&log("busy"), jan_5);
            std::fs::write(logs.join("renamed").join("config.toml"), "[chat]\nname = \"Renamed\"\n").unwrap();
            std::fs::write(log("racing"), line("13", "\"input_tokens\": 6")).unwrap(); // the same size
            set_mtime_ns(&log("racing"), soon);
            read
        },
        |index| index.refresh(),
    )
    .unwrap();
    let c = &found.comparison;
    assert!(c.differences.is_empty(), "{:?}", c.differences);
    assert_eq!(c.changed, ["busy", "racing", "renamed"]);
    assert_eq!(c.compared, 1);
    assert_eq!(found.refreshed.appends, 1, "the index read the append");
}

/// An error (no logs directory; no directory for the scratch index) is exit code 2, as `cmp`'s,
/// not 1, which means "differs".
#[test]
fn verify_fails_with_exit_code_two() {
    let tmp = tempfile::tempdir().unwrap();
    let out = crate::util::convmeta()
        .args(["verify", "--logs"])
        .arg(tmp.path().join("nowhere"))
        .arg("--db")
        .arg(tmp.path().join("index.sqlite3"))
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let said = text(&out.stderr);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.starts_with("convmeta: ") && said.contains("nowhere"), "{said}");

    // No room for the scratch index: said so, with what to do.
    let r = restore("archive");
    let mut c = r.cmd(&["verify"]);
    let out = c.env("TMPDIR", tmp.path().join("no-such-dir")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let said = text(&out.stderr);
    let expected =
        format!("convmeta: {}: cannot make the scratch index there: ", tmp.path().join("no-such-dir").display());
    assert!(said.starts_with(&expected) && said.trim_end().ends_with("(set TMPDIR to another directory)"), "{said}");
}

/// Ctrl-C while it reads, on a terminal, ends it as it ends a backfill (exit code 130), and
/// takes the scratch index with it.
#[test]
fn ctrl_c_takes_the_scratch_index_with_it() {
    let (tmp, logs, db) = crate::backfill::generated_and_backfilled(600, 200);
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let mut c = crate::util::convmeta();
    c.args(["verify", "--logs"]).arg(&logs).arg("--db").arg(&db).env("TMPDIR", &scratch);
    let mut sent = false;
    let (shown, status) = crate::util::on_terminal_watched(c, move |shown, pid| {
        if !sent && shown.contains("/600 files") {
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
            sent = true;
        }
    });
    assert_eq!(status.code(), Some(130), "{shown}");
    assert!(shown.contains("convmeta: interrupted with "), "{shown}");
    let left: Vec<_> = std::fs::read_dir(&scratch).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// The stored state each conversation's next refresh reads on from is compared too, by
/// meaning: a count in it changed is named (it shows in no row yet, but would at the next
/// append), while the same state written otherwise (keys in another order, a field at its
/// default left out, as an older convmeta wrote it) is not.
#[test]
fn verify_compares_the_stored_state_by_meaning() {
    let (r, tmp) = backfilled();
    let c = rusqlite::Connection::open(&r.db).unwrap();
    let state = |id: &str| -> serde_json::Map<String, Value> {
        let text: String =
            c.query_row("SELECT accumulator FROM _scan_state WHERE id = ?1", [id], |r| r.get(0)).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let set = |id: &str, state: &serde_json::Map<String, Value>| {
        let text = serde_json::to_string(state).unwrap();
        c.execute("UPDATE _scan_state SET accumulator = ?2 WHERE id = ?1", [id, &text]).unwrap();
    };
    let (counted, rewritten) = ("2024-01-11-flying-brave-fox", "2024-01-30-coding-pink-starfish");
    let mut changed = state(counted);
    let messages = changed["messages"].as_i64().unwrap();
    changed["messages"] = (messages + 1).into();
    set(counted, &changed);
    // Written otherwise, the same state: keys reversed, and a field at its default left out.
    let same = state(rewritten);
    assert_eq!(same["inside_oversized"], Value::Bool(false));
    let written_otherwise: serde_json::Map<String, Value> =
        same.into_iter().rev().filter(|(k, _)| k != "inside_oversized").collect();
    set(rewritten, &written_otherwise);
    drop(c);

    let out = verify(&r, tmp.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let said = text(&out.stdout);
    let expected = format!(
        "{counted}\n  _scan_state.accumulator \"messages\": {} in the index, {messages} afresh\n",
        messages + 1
    );
    assert!(said.starts_with(&expected), "{said}");
    assert!(!said.contains(rewritten), "{said}");
    assert!(said.lines().last().unwrap().starts_with("1 of "), "{said}");
}

/// A verify killed while it reads leaves its scratch index behind; the next one removes it
/// (this user's, whose lock no process holds, whatever its name's process id), and leaves alone
/// a live verify's and anything else in `$TMPDIR`.
#[test]
fn verify_removes_the_scratch_index_a_killed_verify_left() {
    let (tmp, logs, db) = crate::backfill::generated_and_backfilled(600, 200);
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let verify = || {
        let mut c = crate::util::convmeta();
        c.args(["verify", "--logs"]).arg(&logs).arg("--db").arg(&db).env("TMPDIR", &scratch);
        c
    };
    let entries = || -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(&scratch).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    };
    let mut killed = verify().stdout(std::process::Stdio::null()).spawn().unwrap();
    let began = std::time::Instant::now();
    while entries().is_empty() {
        assert!(began.elapsed() < std::time::Duration::from_secs(60), "no scratch index made");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    killed.kill().unwrap();
    killed.wait().unwrap();
    let left = entries();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with(&format!("convmeta-verify-{}-", killed.id())), "{left:?}");
    // A live verify's (this test stands for one, holding its lock), and what is not a verify's.
    let live = format!("convmeta-verify-{}-live", std::process::id());
    // Named after a process that lives (this test) but locked by none: its verify is gone, and
    // another process came to have its id.
    let reused = format!("convmeta-verify-{}-reused", std::process::id());
    for other in [live.as_str(), &reused, "convmeta-verify-notapid-x", "someone-else"] {
        std::fs::create_dir(scratch.join(other)).unwrap();
    }
    let held = std::fs::File::open(scratch.join(&live)).unwrap();
    held.lock().unwrap();
    let out = verify().output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(entries(), [live.as_str(), "convmeta-verify-notapid-x", "someone-else"]);
    // Once its holder lets go, it is abandoned too.
    drop(held);
    assert_eq!(verify().output().unwrap().status.code(), Some(0));
    assert_eq!(entries(), ["convmeta-verify-notapid-x", "someone-else"]);
}
