//! What the commands sum, find and keep to: `usage` by day, workspace and agent, `show`'s
//! usage, `search`, and `list`'s sorts and filters (agent, days, `today`).

use std::io::Write;

use crate::util::{
    archive_of, bash_completes, convmeta, fail, ok, searched, set_mtime_ns, usage_line, write_conversation,
};

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

    // -n: the rows looked for first, the most spent or by day the latest; the total of all, and
    // on stderr how many were left out.
    let top = json(&["--by", "conversation", "--since", "2026-02", "-n", "2"]);
    assert_eq!(costs(&top, "conversation"), [("test-hidden".into(), 4.0), ("2026-02-01-half".into(), 2.0)]);
    assert_eq!(json(&["-n", "1"]), serde_json::json!([row(Some("2026-02-01"), 3, 4, 14000, 7.25, &["m1", "m2"])]));
    assert_eq!(json(&["-n", "3"]), json(&["-n", "0"]), "no more rows than there are");
    let out = convmeta().arg("usage").arg("--logs").arg(&logs).arg("--db").arg(&db).args(["-n", "1"]).output().unwrap();
    let (table, said) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[1].starts_with("2026-02-01 ") && lines[2].starts_with("TOTAL ") && lines[2].contains("$15.75"),
        "{table}"
    );
    assert_eq!(said, "1 of 3 rows shown; the total is of all (`-n 0` shows them all)\n");

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
    assert!(String::from_utf8_lossy(&out.stderr).contains("no usage recorded in or after 2027"));
    let bad =
        fail(convmeta().arg("usage").arg("--logs").arg(&logs).arg("--db").arg(&db).args(["--since", "2026-02-30"]));
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("a date as YYYY-MM-DD"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

/// Figures wider than their headers (billions of tokens, a million dollars) widen their
/// columns, every row's alike: each line of a table without models ends at its COST column.
#[test]
fn usage_columns_widen_for_large_figures() {
    let hi = |stamp: &str| format!(r#"{{"role": "user", "content": "hi", "timestamp": "{stamp}"}}"#) + "\n";
    let spent = |stamp, model, usage, cost| usage_line(Some(stamp), model, usage, cost);
    let (tmp, logs) = archive_of(&[
        (
            "a",
            hi("2026-01-02T09:00:00")
                + &spent("2026-01-02T10:00:00", "big", r#""input_tokens": 123456789012"#, "1234567.891"),
            None,
        ),
        ("b", hi("2026-01-03T09:00:00") + &spent("2026-01-03T10:00:00", "m", r#""input_tokens": 1"#, "0.5"), None),
    ]);
    let db = tmp.path().join("db.sqlite3");
    for args in [&["--by", "model"][..], &["--by", "day", "--breakdown"], &["--by", "conversation", "--breakdown"]] {
        let out = ok(convmeta().env("TZ", "UTC").arg("usage").arg("--logs").arg(&logs).arg("--db").arg(&db).args(args));
        let ends: Vec<usize> = out.lines().map(|l| l.len()).collect();
        assert!(ends.len() >= 4 && ends.iter().all(|e| *e == ends[0]), "{args:?}: {ends:?}\n{out}");
        assert!(out.contains(" 123,456,789,013 ") && out.ends_with(" $1,234,568.39\n"), "{out}");
    }
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
    // Named as `show` takes it too: by its log (as `list --paths` prints it) or its directory.
    let by_id = run(&["usage", "--conversation", "long"]);
    let log = logs.join("long").join("conversation.jsonl");
    for named in [log.display().to_string(), format!("{}/", logs.join("long").display())] {
        assert_eq!(run(&["usage", "--conversation", &named]), by_id, "{named}");
    }
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
        ("new-small", "2026-03-01", 2, "2000.0", 4),
        ("nan", "2026-02-01", 3, "NaN", 3),
        ("mid", "2026-02-15", 3, "1.0", 2),
        ("test-hidden", "2026-04-01", 9, "9.0", 5),
    ];
    let mut archive = Vec::new();
    for (id, day, messages, cost, _) in conversations {
        let stamp = format!("{day}T10:00:00");
        let mut log = format!("{{\"role\": \"user\", \"content\": \"x\", \"timestamp\": \"{stamp}\"}}\n");
        let model = if id == "new-small" { "anthropic/claude-opus-4-1-20250805" } else { "m" };
        log += &usage_line(Some(&stamp), model, "\"input_tokens\": 1", cost);
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
    // A model's name too long for its column loses its provider, not its version; a cost is
    // grouped by thousands, as `usage` groups it.
    let table = list(&["-n", "1"]);
    assert!(table.contains("      2  $2,000.00  claude-opus-4-1-20250805  new-small\n"), "{table}");
}

/// On a terminal no line of `list`, `search` or `usage` wraps: a name too long for the line is
/// cut to it, its id kept whole (by it `show` finds the conversation), an excerpt at its end,
/// the models `usage` names after the figures; `$COLUMNS` sets another width; into a pipe
/// everything stays whole.
#[test]
fn lines_on_a_terminal_are_cut_to_it_but_not_ids() {
    let name = "a name of many words ".repeat(8);
    let said = format!("the parser works {}", "and then it goes on ".repeat(10));
    let mut log = format!("{{\"role\": \"user\", \"content\": \"{said}\", \"timestamp\": \"2026-03-01T10:00:00\"}}\n");
    for model in ["anthropic/claude-opus-4-1-20250805", "openai/gpt-5-codex-mini", "xai/grok-4-fast-reasoning"] {
        log += &usage_line(Some("2026-03-01T10:00:00"), model, "\"input_tokens\": 1", "0.5");
    }
    log += "{oops\n";
    let (tmp, logs) = archive_of(&[("long-named", log, Some(format!("[chat]\nname = \"{}\"\n", name.trim())))]);
    let db = tmp.path().join("db.sqlite3");
    let run = |args: &[&str], columns: Option<&str>| {
        let mut c = convmeta();
        c.args(args).arg("--logs").arg(&logs).arg("--db").arg(&db).env("NO_COLOR", "1");
        if let Some(columns) = columns {
            c.env("COLUMNS", columns);
        }
        c
    };
    let line = |shown: &str, n: usize| shown.lines().nth(n).unwrap().trim_end_matches('\r').to_owned();
    let list = |columns| run(&["list"], columns);
    let piped = line(&ok(list(None)), 1);
    assert!(piped.ends_with(&format!("  {} (long-named)", name.trim())), "{piped}");
    // The test's terminal is 120 columns wide.
    let (shown, success) = crate::util::on_terminal(list(None));
    let cut = line(&shown, 1);
    assert!(success && cut.chars().count() == 120 && cut.ends_with("… (long-named)"), "{cut:?}");
    assert!(piped.starts_with(&cut[..cut.find('…').unwrap()]), "the same row, cut: {cut:?}");
    let (shown, _) = crate::util::on_terminal(list(Some("400")));
    assert_eq!(line(&shown, 1), piped, "as wide as $COLUMNS says");
    let (shown, _) = crate::util::on_terminal(list(Some("70")));
    assert!(line(&shown, 1).ends_with("  long-named"), "no room for the name: the id alone: {shown:?}");
    // `--problems` says them beneath the row, cut likewise.
    let problems = |columns| run(&["list", "--problems"], columns);
    assert_eq!(line(&ok(problems(None)), 2), "    1 malformed line");
    let (shown, _) = crate::util::on_terminal(problems(Some("12")));
    assert_eq!(line(&shown, 2), "    1 malfo…", "{shown:?}");

    let search = |columns| run(&["search", "parser"], columns);
    let piped = ok(search(None));
    let (shown, _) = crate::util::on_terminal(search(None));
    assert_eq!(shown.lines().count(), piped.lines().count(), "{shown}");
    for (cut, whole) in shown.lines().zip(piped.lines()) {
        let cut = cut.trim_end_matches('\r');
        assert!(cut.chars().count() <= 120 && whole.chars().count() > 120, "{cut:?} of {whole:?}");
        assert!(whole.starts_with(cut.trim_end_matches('…').split('…').next().unwrap()), "{cut:?} of {whole:?}");
    }
    assert!(line(&shown, 0).ends_with("… (long-named): 1 message"), "{shown}");
    assert!(line(&shown, 1).contains("the parser works"), "the excerpt's start: {shown}");
    // A terminal wider than an excerpt's 100 characters need shows more of the message (here
    // all of it); into a pipe, and as JSON, an excerpt keeps the HTTP endpoint's 100.
    let (shown, _) = crate::util::on_terminal(search(Some("300")));
    let wide = line(&shown, 1);
    assert!(wide.ends_with(&format!("user       {said}")) && wide.width() <= 300, "{wide:?}");
    assert!(line(&piped, 1).ends_with('…') && line(&piped, 1).chars().count() < wide.chars().count());
    let (shown, _) = crate::util::on_terminal(run(&["search", "--json", "parser"], Some("300")));
    let found: serde_json::Value = serde_json::from_str(shown.trim()).unwrap();
    assert_eq!(found[0]["messages"][0]["excerpt"].as_str().unwrap().chars().count(), 101, "{found}");

    let usage = |columns| run(&["usage"], columns);
    let piped = line(&ok(usage(None)), 1);
    assert!(piped.ends_with("  anthropic/claude-opus-4-1-20250805, openai/gpt-5-codex-mini, xai/grok-4-fast-reasoning"));
    let (shown, _) = crate::util::on_terminal(usage(None));
    let cut = line(&shown, 1);
    assert!(cut.chars().count() == 120 && cut.ends_with('…') && piped.starts_with(cut.trim_end_matches('…')), "{cut}");
    let (shown, _) = crate::util::on_terminal(usage(Some("400")));
    assert_eq!(line(&shown, 1), piped);
    use unicode_width::UnicodeWidthStr;
    // By conversation the key gives way too, to leave the figures and a start of the models
    // room; the id stays whole.
    let by_conversation = |columns| run(&["usage", "--by", "conversation"], columns);
    let piped = line(&ok(by_conversation(None)), 1);
    assert!(piped.starts_with(&name[..40]) && piped.width() > 120, "64 columns of key, whole models: {piped}");
    let (shown, _) = crate::util::on_terminal(by_conversation(None));
    let cut = line(&shown, 1);
    assert!(cut.width() <= 120 && cut.contains("… (long-named)  "), "{cut}");
    assert!(cut.ends_with("  anthropic/c…"), "a start of the models at least: {cut}");
    let (shown, _) = crate::util::on_terminal(by_conversation(Some("60")));
    assert!(line(&shown, 1).starts_with("a name… (long-named)  "), "a key of 20 columns at the least: {shown}");
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
    assert_eq!(ok(search(&["quokka", "--paths"])), ok(search(&["quokka", "-l"])), "as `list --paths` names it");
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
    // -S, smart case: in the case typed when a text has an upper-case letter, else any case;
    // of -s, -i and -S the last wins.
    assert_eq!(found(&["-S", "PARSER"]), found(&["-s", "PARSER"]));
    assert_eq!(found(&["-S", "parser"]), found(&["parser"]));
    assert_eq!(found(&["-S", "parser", "Café"]), found(&["-s", "parser", "Café"]));
    assert_eq!(found(&["--smart-case", "-E", "\\S*PARSER"]), found(&["-s", "-E", "\\S*PARSER"]));
    assert_eq!(found(&["-S", "-E", "\\Sarser"]), found(&["-E", "\\Sarser"]), "an escape's letter is no literal");
    assert_ne!(found(&["-E", "\\Sarser"]), found(&["-s", "-E", "\\Sarser"]));
    assert_ne!(found(&["parser"]), found(&["-s", "parser"]));
    assert_eq!(found(&["-s", "-S", "parser"]), found(&["parser"]));
    assert_eq!(found(&["-S", "-i", "PARSER"]), found(&["parser"]));
    assert_eq!(found(&["-S", "-s", "parser"]), found(&["-s", "parser"]));
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
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr, "2 shown; more conversations match (`-n 0` shows them all)\n");
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
    // One side alone, whatever -C says (grep's -B and -A): still parted with `--`.
    let shown = ok(search(&["Parser", "-C", "1", "-B", "0", "-n", "2"]));
    assert!(!shown.contains("Let us talk about the") && shown.contains("\n  --\n"), "{shown}");
    let shown = ok(search(&["Parser", "-B", "1", "-n", "2"]));
    assert!(shown.contains(&format!("\n{:24}Let us talk about the\n", "")), "{shown}");
    // More context than any content has, even past what a count holds: every line around.
    for huge in [usize::MAX.to_string(), "1".repeat(30)] {
        let said: serde_json::Value = serde_json::from_str(&ok(search(&["Parser", "-C", &huge, "--json"]))).unwrap();
        assert_eq!(said[1]["messages"][0]["before"], serde_json::json!(["Let us talk about the"]));
    }
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
        said.contains(
            "no listed conversation modified in or after 2024-10-02 has a name, id or preview containing \"hi\""
        ),
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

/// `today`, `yesterday` and days or weeks ago (`1d`, `2w`) are the local clock's days: in zones
/// 26 hours apart, one of which is on another day than UTC at any hour, a conversation written
/// now is today's in each.
#[test]
fn today_yesterday_and_days_ago_are_the_local_clocks() {
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
            (&["--since", "0d"], 1),
            (&["--until", "1d"], 0),
            (&["--since", "1w", "--until", "0d"], 1),
            (&["--since", "2w", "--until", "1w"], 0),
        ] {
            assert_eq!(command("list", args), listed, "list {args:?} in {zone}");
            assert_eq!(command("usage", args), listed, "usage {args:?} in {zone}");
        }
    }
}
