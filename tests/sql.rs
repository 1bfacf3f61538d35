//! SQL over the index: the documented examples against truth, output formats, refusals,
//! readers beside a writer, and the HTTP endpoint.

use std::collections::BTreeMap;
use std::time::Duration;

use convmeta::server::{Config, SqlConfig};
use serde_json::Value;

use crate::util::{client, fail, ok, output_within, parse, restore, Restored, Server};

fn query(r: &Restored, format: &str, sql: &str) -> String {
    ok(r.cmd(&["query", "--format", format, sql]))
}

fn rows(r: &Restored, sql: &str) -> Vec<Value> {
    serde_json::from_value(parse(&query(r, "json", sql))).unwrap()
}

/// The statements of the ```sql block in docs/schema.md.
fn documented_examples() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/schema.md")).unwrap();
    let block = doc.split("```sql").nth(1).unwrap().split("```").next().unwrap();
    let sql: String = block.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n");
    sql.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.006 // the examples round to cents
}

#[test]
fn every_documented_example_runs_and_matches_truth() {
    let r = restore("archive");
    let truth = r.truth();
    let listed: Vec<&Value> =
        truth.values().filter(|i| !convmeta::format::gptme::is_hidden(i["id"].as_str().unwrap())).collect();
    let examples = documented_examples();
    assert_eq!(examples.len(), 8, "a checker for every example");

    // Spend per model.
    let mut per_model: BTreeMap<String, (f64, i64, i64)> = BTreeMap::new();
    for item in truth.values() {
        for (model, u) in item["models_usage"].as_object().unwrap() {
            let e = per_model.entry(model.clone()).or_default();
            e.0 += u["cost"].as_f64().unwrap();
            e.1 += u["input_tokens"].as_i64().unwrap();
            e.2 += u["output_tokens"].as_i64().unwrap();
        }
    }
    let got = rows(&r, &examples[0]);
    assert_eq!(got.len(), per_model.len());
    for row in &got {
        let want = per_model[row["model"].as_str().unwrap()];
        assert!(close(row["usd"].as_f64().unwrap(), want.0), "{row}");
        assert_eq!((row["input"].as_i64().unwrap(), row["output"].as_i64().unwrap()), (want.1, want.2), "{row}");
    }

    // The ten largest conversations.
    let got = rows(&r, &examples[1]);
    let mut sizes: Vec<i64> = listed.iter().map(|i| i["messages"].as_i64().unwrap()).collect();
    sizes.sort_by(|a, b| b.cmp(a));
    assert_eq!(got.iter().map(|row| row["messages"].as_i64().unwrap()).collect::<Vec<_>>(), sizes[..10]);
    for row in &got {
        assert_eq!(row["messages"], truth[row["id"].as_str().unwrap()]["messages"]);
    }

    // Busiest workspaces.
    let mut per_workspace: BTreeMap<String, i64> = BTreeMap::new();
    for item in &listed {
        *per_workspace.entry(item["workspace"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    for row in rows(&r, &examples[2]) {
        assert_eq!(row["conversations"].as_i64().unwrap(), per_workspace[row["workspace"].as_str().unwrap()], "{row}");
    }

    // Spend per day of the last 30 (UTC's today, as SQLite's 'now'): only days in them. The
    // pack's are older, so the same statement is checked over all days, against the months'.
    let since = (chrono::Utc::now() - chrono::Duration::days(30)).format("%Y-%m-%d").to_string();
    for row in rows(&r, &examples[3]) {
        assert!(row["day"].as_str().unwrap() >= since.as_str(), "{row}");
    }
    let all_days = rows(&r, &examples[3].replace("WHERE day >= date('now', '-30 days')", ""));
    assert!(all_days.len() > 20, "{all_days:?}");

    // Spend per month and model: each model's months add up to its spend (truth's
    // `models_usage`), and each month's models to that month's days.
    let mut model_months: BTreeMap<String, f64> = BTreeMap::new();
    let mut month_models: BTreeMap<String, f64> = BTreeMap::new();
    for row in rows(&r, &examples[4]) {
        let usd = row["usd"].as_f64().unwrap();
        *model_months.entry(row["model"].as_str().unwrap().to_owned()).or_default() += usd;
        *month_models.entry(row["month"].as_str().unwrap().to_owned()).or_default() += usd;
    }
    assert_eq!(model_months.len(), per_model.len());
    for (model, usd) in &model_months {
        // Each month's figure is rounded to cents.
        assert!((usd - per_model[model].0).abs() < 0.006 * 40.0, "{model}: {usd} vs {:?}", per_model[model]);
    }
    let mut day_months: BTreeMap<String, f64> = BTreeMap::new();
    for row in &all_days {
        *day_months.entry(row["day"].as_str().unwrap()[..7].to_owned()).or_default() += row["usd"].as_f64().unwrap();
    }
    assert_eq!(day_months.keys().collect::<Vec<_>>(), month_models.keys().collect::<Vec<_>>());

    // Spend per workspace: the ten most spent, each its conversations' usage (hidden ones too).
    let mut workspace_spend: BTreeMap<&str, (f64, i64)> = BTreeMap::new();
    for item in truth.values() {
        let usage = item["models_usage"].as_object().unwrap();
        if !usage.is_empty() {
            let e = workspace_spend.entry(item["workspace"].as_str().unwrap()).or_default();
            e.0 += usage.values().map(|u| u["cost"].as_f64().unwrap()).sum::<f64>();
            e.1 += 1;
        }
    }
    let got = rows(&r, &examples[5]);
    assert_eq!(got.len(), workspace_spend.len().min(10));
    for row in &got {
        let want = workspace_spend[row["workspace"].as_str().unwrap()];
        assert!(close(row["usd"].as_f64().unwrap(), want.0), "{row}: {want:?}");
        assert_eq!(row["conversations"].as_i64().unwrap(), want.1, "{row}");
    }
    let mut spends: Vec<f64> = workspace_spend.values().map(|w| w.0).collect();
    spends.sort_by(|a, b| b.total_cmp(a));
    assert!(close(got[got.len() - 1]["usd"].as_f64().unwrap(), spends[got.len() - 1]), "the most spent: {got:?}");

    // Spend per month of creation (UTC).
    let mut per_month: BTreeMap<String, f64> = BTreeMap::new();
    for item in truth.values() {
        let created = item["created"].as_f64().unwrap();
        let month = chrono::DateTime::from_timestamp(created.floor() as i64, 0).unwrap().format("%Y-%m").to_string();
        *per_month.entry(month).or_default() += item["total_cost"].as_f64().unwrap();
    }
    let got = rows(&r, &examples[6]);
    assert_eq!(got.len(), per_month.len());
    for row in got {
        assert!(close(row["usd"].as_f64().unwrap(), per_month[row["month"].as_str().unwrap()]), "{row}");
    }

    // Conversations with problems: the pack's broken ones, and nothing else.
    let got: Vec<String> = rows(&r, &examples[7]).iter().map(|row| row["id"].as_str().unwrap().to_owned()).collect();
    for broken in ["edge-invalid-utf8", "edge-first-line-malformed-json", "edge-config-invalid-toml"] {
        assert!(got.contains(&broken.to_owned()), "{broken} in {got:?}");
    }
    assert!(!got.contains(&"edge-small-basic".to_owned()));
}

/// `query --schema` describes every column of every public table, and no column that is not
/// there: the documentation (built into the binary) and the migrations agree.
#[test]
fn the_schema_printed_is_every_public_column() {
    let r = restore("archive");
    let described = |printed: &str| {
        let mut described: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut table = String::new();
        for line in printed.lines() {
            if let Some((name, _)) = line.split_once(": one row per") {
                table = name.to_owned();
            } else if let Some((columns, _)) =
                line.strip_prefix("  ").filter(|l| !l.starts_with(' ')).and_then(|l| l.split_once(": "))
            {
                let columns = columns.split(", ").map(str::to_owned);
                described.entry(table.clone()).or_default().extend(columns);
            }
        }
        described.values_mut().for_each(|columns| columns.sort());
        described
    };
    let printed = ok(crate::util::convmeta().args(["query", "--schema"]));
    assert_eq!(described(&printed), public_columns(&r), "{printed}");
    assert!(printed.lines().all(|l| l.chars().count() <= 96), "the docs' width: {printed}");
    // On a terminal narrower than that, wrapped to it, notes too, every column still there.
    let (narrow, _) = crate::util::on_terminal({
        let mut c = crate::util::convmeta();
        c.args(["query", "--schema"]).env("COLUMNS", "60");
        c
    });
    let narrow = narrow.replace('\r', "");
    assert!(narrow.lines().all(|l| l.chars().count() <= 60), "{narrow}");
    assert_eq!(described(&narrow), public_columns(&r), "{narrow}");
    let words = |text: &str| text.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(words(&narrow), words(&printed), "the same words");
    // Given a statement as well, it is refused as clap refuses a conflict.
    let both = fail(crate::util::convmeta().args(["query", "--schema", "SELECT 1"]));
    assert_eq!(both.status.code(), Some(2));
}

/// Each public table's columns as SQLite has them, sorted.
fn public_columns(r: &Restored) -> BTreeMap<String, Vec<String>> {
    let mut actual = BTreeMap::new();
    for table in ["conversations", "conversation_models", "conversation_days"] {
        let columns = rows(r, &format!("SELECT name FROM pragma_table_xinfo('{table}')"));
        let mut names: Vec<String> = columns.iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect();
        names.sort();
        actual.insert(table.to_owned(), names);
    }
    actual
}

/// `query --schema --format json` is datasette's metadata for the database (keyed by its
/// file's stem, as datasette names it): every public column described, every other table
/// hidden, the documented examples its canned queries, each of which runs.
#[test]
fn the_schema_as_datasette_metadata_describes_every_table_and_runs_the_examples() {
    let r = restore("archive");
    ok(r.cmd(&["backfill"]));
    let metadata = parse(&ok(r.cmd(&["query", "--schema", "--format", "json"])));
    let databases = metadata["databases"].as_object().unwrap();
    let stem = r.db.file_stem().unwrap().to_str().unwrap();
    assert_eq!(databases.keys().collect::<Vec<_>>(), [stem], "{metadata:#}");
    let tables = databases[stem]["tables"].as_object().unwrap();

    let mut described: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, table) in tables.iter().filter(|(_, t)| t.get("hidden").is_none()) {
        assert!(table["description"].as_str().unwrap().starts_with("One row per "), "{name}: {table}");
        let columns = table["columns"].as_object().unwrap();
        for (column, meaning) in columns {
            let (kind, meaning) = meaning.as_str().unwrap().split_once(": ").unwrap();
            assert!(kind.starts_with(['T', 'R', 'I']) && !meaning.is_empty(), "{name}.{column}: {kind}: {meaning}");
        }
        for shown in ["sort_desc", "label_column"] {
            if let Some(column) = table.get(shown) {
                assert!(columns.contains_key(column.as_str().unwrap()), "{name}'s {shown}: {column}");
            }
        }
        let mut names: Vec<String> = columns.keys().cloned().collect();
        names.sort();
        described.insert(name.clone(), names);
    }
    assert_eq!(described, public_columns(&r));
    assert_eq!(tables["conversations"]["sort_desc"], "modified", "newest first, as lists are");
    let conn = rusqlite::Connection::open(&r.db).unwrap();
    let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").unwrap();
    let all: Vec<String> = stmt.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect();
    for table in all.iter().filter(|t| !described.contains_key(*t) && !t.starts_with("sqlite_")) {
        assert_eq!(tables.get(table).map(|t| &t["hidden"]), Some(&Value::Bool(true)), "{table}");
    }

    let queries = databases[stem]["queries"].as_object().unwrap();
    let sql: Vec<&str> = queries.values().map(|q| q["sql"].as_str().unwrap()).collect();
    assert_eq!(sql, documented_examples(), "each example once, in order");
    for (slug, q) in queries {
        let title = q["title"].as_str().unwrap();
        assert!(slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{slug}");
        assert!(!title.is_empty() && !title.contains(['(', '`']), "{slug}: {title}");
        rows(&r, q["sql"].as_str().unwrap());
    }

    // In the formats of rows, the schema is refused as clap refuses a conflict.
    for format in ["jsonl", "csv"] {
        let out = fail(r.cmd(&["query", "--schema", "--format", format]));
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains(&format!("'--schema' cannot be used with '--format {format}'")), "{said}");
    }
}

/// On a terminal `query`'s table fits the line: the widest columns narrowed (a conversation's id
/// last), their cells cut (`…`), the columns still aligned; into a pipe the cells stay whole.
#[test]
fn a_table_on_a_terminal_fits_its_line() {
    let r = restore("archive");
    let sql = "SELECT id, path, workspace, last_message_preview, messages FROM conversations ORDER BY id LIMIT 20";
    let piped = query(&r, "table", sql);
    assert!(piped.lines().any(|l| l.chars().count() > 160), "wider than the terminal, whole: {piped}");
    let mut on_terminal = r.cmd(&["query", sql]);
    on_terminal.env_remove("COLUMNS");
    let (shown, success) = crate::util::on_terminal(on_terminal);
    let lines: Vec<&str> = shown.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(success && lines.len() == piped.lines().count(), "{shown}");
    // The test's terminal is 120 columns wide (a CJK character takes two of them); the rule
    // under the header shows each column's width.
    use unicode_width::UnicodeWidthStr;
    assert!(lines.iter().all(|l| l.width() <= 120), "{shown}");
    let rule: Vec<usize> = lines[1].split("  ").map(|dashes| dashes.len()).collect();
    assert_eq!(rule.len(), 5, "{}", lines[1]);
    assert!(rule.iter().sum::<usize>() + 2 * 4 > 110, "the line used, not only cut: {rule:?}");
    // The widest columns were narrowed, to about one width; a narrower one kept whole.
    let natural: Vec<usize> = piped.lines().nth(1).unwrap().split("  ").map(str::len).collect();
    let narrowed: Vec<usize> = (0..5).filter(|&i| rule[i] < natural[i]).collect();
    let kept: Vec<usize> = (0..5).filter(|i| !narrowed.contains(i)).collect();
    let to = narrowed.iter().map(|&i| rule[i]).min().unwrap();
    assert!(narrowed.iter().all(|&i| rule[i] <= to + 1), "{rule:?} of {natural:?}");
    // Kept whole: the narrower columns, and the id (column 0), which `show` takes.
    assert!(kept.contains(&0) && kept.contains(&4), "{rule:?} of {natural:?}");
    assert!(kept.iter().all(|&i| natural[i] <= to + 1 || i == 0), "{rule:?} of {natural:?}");
    assert!(natural[0] > to + 1, "the id is one of the wide columns: {natural:?}");
    // Narrower still, the other columns give way before the id does, which `show` takes.
    let mut narrower = r.cmd(&["query", sql]);
    narrower.env("COLUMNS", "80");
    let (shown_80, _) = crate::util::on_terminal(narrower);
    let lines_80: Vec<&str> = shown_80.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(lines_80.iter().all(|l| l.width() <= 80), "{shown_80}");
    let rule_80: Vec<usize> = lines_80[1].split("  ").map(str::len).collect();
    assert_eq!(rule_80[0], natural[0], "the id whole: {rule_80:?} of {natural:?}");
    assert!((1..4).all(|i| rule_80[i] < rule[i]), "{rule_80:?} after {rule:?}");
    for (line, whole) in lines.iter().zip(piped.lines()).skip(2) {
        // Each cell: the characters from the column's start up to its width, in cells.
        let (mut cells, mut chars) = (Vec::new(), line.chars().peekable());
        for w in &rule {
            let mut cell = String::new();
            while let Some(c) = chars.next_if(|c| (cell.clone() + &c.to_string()).width() <= *w) {
                cell.push(c);
            }
            cells.push(cell.trim_end().to_owned());
            while chars.next_if_eq(&' ').is_some() {} // the gap before the next column
        }
        let wholes: Vec<&str> = whole.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
        for (i, cell) in cells.iter().enumerate() {
            let whole_cell = wholes.get(i).copied().unwrap_or("");
            match cell.strip_suffix('…') {
                Some(start) => assert!(whole_cell.starts_with(start), "column {i}: {cell:?} of {whole_cell:?}"),
                None => assert_eq!(cell, whole_cell, "column {i} in {line:?}"),
            }
        }
    }
}

#[test]
fn every_output_format_reads_back_to_the_same_values() {
    let r = restore("archive-crashers/unknown-chat-key");
    let sql = "SELECT id, name, messages, total_cost, last_message_preview, agent_urls FROM conversations ORDER BY id";
    let json_text = query(&r, "json", sql);
    let json: Vec<Value> = serde_json::from_value(parse(&json_text)).unwrap();
    let jsonl: Vec<Value> = query(&r, "jsonl", sql).lines().map(parse).collect();
    assert_eq!(json, jsonl);
    // Streamed, `json` is still what printing the array whole gives.
    assert_eq!(json_text, serde_json::to_string_pretty(&jsonl).unwrap() + "\n");
    let csv = query(&r, "csv", sql);
    let mut lines = csv.split("\r\n");
    assert_eq!(lines.next().unwrap(), "id,name,messages,total_cost,last_message_preview,agent_urls");
    for (line, row) in lines.zip(&json) {
        let text = |v: &Value| match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let cells: Vec<String> = ["id", "name", "messages", "total_cost", "last_message_preview", "agent_urls"]
            .iter()
            .map(|k| text(&row[*k]))
            .collect();
        let quoted: Vec<String> = cells
            .iter()
            .map(|c| if c.contains([',', '"', '\n']) { format!("\"{}\"", c.replace('"', "\"\"")) } else { c.clone() })
            .collect();
        assert_eq!(line, quoted.join(","));
    }
    let table = query(&r, "table", sql);
    assert!(table.lines().next().unwrap().starts_with("id"), "{table}");
    assert_eq!(table.lines().count(), 2 + json.len());
}

/// An infinite float (a cost summed past the largest float, as gptme's can be) is written
/// `1e999` in every JSON answer, as `sqlite3 -json` writes it, where it had been `null`; a
/// JSON reader makes it infinite again.
#[test]
fn infinities_are_written_as_sqlite3_writes_them() {
    let r = restore("archive-crashers/unknown-chat-key");
    let sql = "SELECT 1e999 AS up, -1e999 AS down, 0.5 AS half";
    assert_eq!(query(&r, "jsonl", sql), "{\"up\":1e999,\"down\":-1e999,\"half\":0.5}\n");
    assert_eq!(
        query(&r, "json", sql),
        "[\n  {\n    \"up\": 1e999,\n    \"down\": -1e999,\n    \"half\": 0.5\n  }\n]\n"
    );
    let server = Server::start(
        &r.arch,
        &r.db,
        Config { sql: SqlConfig { enabled: true, ..SqlConfig::default() }, ..Config::default() },
        false,
    );
    let answer = client().get(server.url("/api/v2/sql")).query(&[("q", sql)]).send().unwrap().text().unwrap();
    assert!(answer.starts_with("{\"columns\":[\"up\",\"down\",\"half\"],\"rows\":[[1e999,-1e999,0.5]]"), "{answer}");
}

/// `json` and `jsonl` objects keep the statement's columns in its order, and every one of them:
/// a name given twice takes SQLite's suffix (`model:1`) rather than losing a value.
#[test]
fn json_objects_keep_every_column_in_order() {
    let r = restore("archive");
    let sql = "SELECT c.model, m.model, 1 AS z, 2 AS a, 3 AS \"model:1\" \
               FROM conversations c JOIN conversation_models m ON m.conversation_id = c.id \
               WHERE c.model IS NOT m.model ORDER BY c.id LIMIT 1";
    for format in ["json", "jsonl"] {
        let text = query(&r, format, sql);
        let at: Vec<usize> = ["model", "model:1", "z", "a", "model:1:1"]
            .iter()
            .map(|k| text.find(&format!("\"{k}\":")).unwrap_or_else(|| panic!("{format}: no {k} in {text}")))
            .collect();
        assert!(at.is_sorted(), "{format}: {text}");
        let row = match parse(&text) {
            Value::Array(rows) => rows[0].clone(),
            row => row,
        };
        assert_eq!((row["z"].as_i64(), row["a"].as_i64(), row["model:1:1"].as_i64()), (Some(1), Some(2), Some(3)));
        assert!(row["model"].is_string() && row["model:1"].is_string() && row["model"] != row["model:1"], "{row}");
    }
}

/// Every format streams: into a pipe, once its first 32 MiB are held (below), rows are printed as
/// SQLite produces them, so an export of any size goes on in bounded memory, and a reader that
/// stops early (`| head`) ends the command. Here the statement never ends; output held whole
/// would never appear, and `json` and `table` once held rows until memory ran out. (Rows of a
/// kilobyte, so that the held part fills soon.)
#[test]
fn every_format_streams_rows_as_they_come() {
    use std::io::BufRead;
    let r = restore("archive-crashers/unknown-chat-key");
    let endless =
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i, printf('%01000d', 0) AS pad FROM n";
    for (format, want) in [
        ("jsonl", ["{\"i\":1,\"pad\":\"000", "{\"i\":2,\"pad\":\"000", "{\"i\":3,\"pad\":\"000"]),
        ("csv", ["i,pad", "1,000", "2,000"]),
        ("json", ["[", "  {", "    \"i\": 1,"]),
        ("table", ["i pad", "---", "1 000"]),
    ] {
        let mut child = r
            .cmd(&["query", "--format", format, endless])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A guard against the hang this test exists to catch, not a timing.
        let pid = child.id();
        let (done, guard) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = guard.recv_timeout(Duration::from_secs(60)) {
                let _ = std::process::Command::new("kill").arg("-9").arg(pid.to_string()).status();
            }
        });
        let first: Vec<String> =
            std::io::BufReader::new(child.stdout.take().unwrap()).lines().take(3).map(Result::unwrap).collect();
        // A table's columns are as wide as the widest cell among the rows held: any width.
        let first: Vec<String> = match format {
            "table" => first
                .into_iter()
                .map(|l| match l.trim_matches(['-', ' ']).is_empty() {
                    true => "---".into(),
                    false => l.split_whitespace().collect::<Vec<_>>().join(" "),
                })
                .collect(),
            _ => first,
        };
        let status = child.wait().unwrap(); // the pipe closed when the reader was dropped
        done.send(()).unwrap();
        watchdog.join().unwrap();
        assert!(first.iter().zip(want).all(|(line, want)| line.starts_with(want)), "{format}: {first:?}");
        assert_eq!(first.len(), 3, "{format}");
        assert!(status.success(), "{format}: a reader that stops early ends the command quietly: {status:?}");
    }
}

/// Into a pipe whose reader has paused (a pager left open), `query` holds an answer of up to
/// 32 MiB until its statement ends, so no snapshot of the database stays open while it waits:
/// a writer beside it (a `serve`) can still rewind the database's log, which would otherwise
/// grow with every commit for as long as the pager waits.
#[test]
fn a_paused_reader_holds_no_snapshot() {
    use std::os::fd::AsRawFd;
    // Some 1 MB of JSON lines, far more than a pipe takes.
    let conversations: Vec<(String, String, Option<String>)> = (0..1500)
        .map(|i| (format!("c{i:04}"), format!("{{\"role\": \"user\", \"content\": \"hello {i}\"}}\n"), None))
        .collect();
    let borrowed: Vec<(&str, String, Option<String>)> =
        conversations.iter().map(|(id, log, config)| (id.as_str(), log.clone(), config.clone())).collect();
    let (tmp, logs) = crate::util::archive_of(&borrowed);
    let db = tmp.path().join("db.sqlite3");
    ok(crate::util::backfill(&logs, &db));
    // A writer whose commits stay in the log: a reader's snapshot then reads from it.
    let writer = rusqlite::Connection::open(&db).unwrap();
    writer.execute_batch("CREATE TABLE scratch (x); INSERT INTO scratch VALUES (1)").unwrap();
    let mut child = crate::util::convmeta()
        .args(["query", "--no-refresh", "--format", "jsonl", "--logs"])
        .arg(&logs)
        .arg("--db")
        .arg(&db)
        .arg("SELECT * FROM conversations")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    // Its first bytes in the pipe: with the answer held, the statement has ended.
    let waiting = std::time::Instant::now();
    loop {
        let mut queued: libc::c_int = 0;
        assert_eq!(unsafe { libc::ioctl(out.as_raw_fd(), libc::FIONREAD, &mut queued) }, 0);
        if queued > 0 {
            break;
        }
        assert!(waiting.elapsed() < Duration::from_secs(120), "no output");
        std::thread::sleep(Duration::from_millis(20));
    }
    writer.execute("INSERT INTO scratch VALUES (2)", []).unwrap();
    let (busy, log): (i64, i64) =
        writer.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    assert_eq!((busy, log), (0, 0), "the log rewound: no reader holds a snapshot");
    let lines = std::io::BufRead::lines(std::io::BufReader::new(out)).count();
    assert!(child.wait().unwrap().success());
    assert_eq!(lines, 1500);
}

/// `--timeout` stops a statement that would never end, with one line saying so; the statement
/// ends unstopped without it (here, one that ends). A limit that is not a positive number of
/// seconds is a usage error, for `serve --sql-timeout` too.
#[test]
fn a_statement_over_its_time_limit_is_stopped() {
    let r = restore("archive-crashers/unknown-chat-key");
    let endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n";
    let out = output_within(r.cmd(&["query", "--timeout", "0.2", endless]), Duration::from_secs(60));
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert_eq!(said, "convmeta: the statement ran longer than 200ms and was stopped\n");
    let bounded =
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) SELECT count(*) AS c FROM n";
    // A timeout no clock reaches is as good as none (1e19 s panicked, added to the clock).
    for long in ["60", "1e19", "1e300"] {
        assert_eq!(ok(r.cmd(&["query", "--timeout", long, "--format", "csv", bounded])), "c\r\n1000\r\n");
    }
    for bad in ["0", "-1", "nan", "inf", "soon"] {
        let (timeout, sql_timeout) = (format!("--timeout={bad}"), format!("--sql-timeout={bad}"));
        for args in [&["query", &timeout, "SELECT 1"][..], &["serve", "--enable-sql", &sql_timeout]] {
            let out = fail(r.cmd(args));
            let said = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {said}");
            assert!(said.contains("a positive number of seconds"), "{args:?}: {said}");
        }
    }
}

#[test]
fn writes_and_private_tables_are_refused_and_change_nothing() {
    let r = restore("archive-crashers/unknown-chat-key");
    ok(r.cmd(&["backfill"]));
    let count = || query(&r, "csv", "SELECT count(*) FROM conversations");
    let before = count();
    for sql in [
        "DELETE FROM conversations",
        "UPDATE conversations SET name = 'x'",
        "INSERT INTO conversation_models VALUES ('a', 'b', 0, 0, 0, 0)",
        "DROP TABLE conversations",
        "CREATE TABLE mine (x)",
        "ATTACH DATABASE '/tmp/elsewhere.db' AS other",
        "PRAGMA writable_schema = 1",
        "SELECT * FROM _scan_state",
        "SELECT * FROM sqlite_master",
        "PRAGMA table_info(_scan_state)",
        "PRAGMA index_list(conversations)",
        "PRAGMA table_info",
        "SELECT load_extension('/tmp/elsewhere.so')",
        "SELECT LOAD_EXTENSION('x', 'entry') FROM conversations",
    ] {
        let out = fail(r.cmd(&["query", "--no-refresh", sql]));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{sql}: {err}");
        assert!(err.contains("not allowed"), "{sql}: {err}");
    }
    // A public table's columns, as SQL clients ask for them (`table_xinfo` lists the generated
    // ones too, `table_info` leaves them out).
    assert_eq!(rows(&r, "PRAGMA table_info(conversations)")[0]["name"], "id");
    for table in ["conversations", "Conversation_Models"] {
        let listed: Vec<Value> =
            rows(&r, &format!("PRAGMA table_xinfo({table})")).iter().map(|c| c["name"].clone()).collect();
        let first = query(&r, "csv", &format!("SELECT * FROM {table} LIMIT 0"));
        let header: Vec<Value> = first.trim_end().split(',').map(Value::from).collect();
        assert_eq!(listed, header, "{table}");
    }
    let out = fail(r.cmd(&["query", "SELECT nope FROM conversations"]));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such column: nope"));
    let out = fail(r.cmd(&["query", "SELEC 1"]));
    assert!(String::from_utf8_lossy(&out.stderr).contains("syntax error"));
    for nothing in ["", "  ", "/* only a comment */"] {
        let out = fail(r.cmd(&["query", nothing]));
        assert!(String::from_utf8_lossy(&out.stderr).contains("the SQL is empty or only comments"), "{nothing:?}");
    }
    assert_eq!(count(), before);
    assert!(!std::path::Path::new("/tmp/elsewhere.db").exists());
}

#[test]
fn readers_beside_a_refreshing_writer_never_see_a_torn_refresh() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    for i in 0..20 {
        std::fs::create_dir_all(logs.join(format!("c{i}"))).unwrap();
        std::fs::write(logs.join(format!("c{i}/conversation.jsonl")), "").unwrap();
    }
    let db = tmp.path().join("db.sqlite3");
    let index = convmeta::Index::open(&logs, &db).unwrap();
    index.refresh().unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for round in 0..150 {
                for i in 0..20 {
                    let line = format!(
                        "{{\"role\": \"assistant\", \"content\": \"r{round}\", \"metadata\": {{\"model\": \"m{}\", \"usage\": {{\"input_tokens\": {round}, \"output_tokens\": 1}}}}}}\n",
                        round % 3
                    );
                    std::io::Write::write_all(&mut std::fs::OpenOptions::new().append(true).open(logs.join(format!("c{i}/conversation.jsonl"))).unwrap(), line.as_bytes()).unwrap();
                }
                index.refresh().unwrap();
            }
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        s.spawn(|| {
            // Another connection, as sqlite3 or datasette would open one.
            let conn = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
            let mut last_total = 0i64;
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) || reads < 10 {
                let (messages, tokens, model_tokens): (i64, i64, i64) = conn
                    .query_row(
                        "SELECT sum(messages), sum(total_input_tokens), (SELECT coalesce(sum(input_tokens), 0) FROM conversation_models) FROM conversations",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .unwrap();
                assert_eq!(tokens, model_tokens, "a refresh is seen whole or not at all");
                assert_eq!(messages % 20, 0, "every refresh appends to all 20 at once");
                assert!(messages >= last_total, "counts never go back");
                last_total = messages;
                reads += 1;
            }
        });
    });
}

#[test]
fn the_http_endpoint_caps_time_and_rows_and_refuses_writes() {
    let r = restore("archive");
    let sql_on = SqlConfig {
        enabled: true,
        timeout: Duration::from_millis(200),
        max_rows: 5,
        max_bytes: 100_000,
        ..SqlConfig::default()
    };
    let server =
        Server::start(&r.arch, &r.db, Config { token: Some("t".into()), sql: sql_on, ..Config::default() }, false);
    let get = |q: &str| client().get(server.url("/api/v2/sql")).query(&[("q", q)]).bearer_auth("t").send().unwrap();
    let answer = get("SELECT id, messages FROM conversations ORDER BY id LIMIT 3");
    assert_eq!(answer.status(), 200);
    let body = parse(&answer.text().unwrap());
    assert_eq!(body["columns"], serde_json::json!(["id", "messages"]));
    assert_eq!(body["rows"][0], serde_json::json!([".edge-dot-dir", 1]));
    assert_eq!(body["truncated"], false);
    let capped = parse(&get("SELECT id FROM conversations").text().unwrap());
    assert_eq!((capped["rows"].as_array().unwrap().len(), capped["truncated"].clone()), (5, Value::Bool(true)));
    let post = client()
        .post(server.url("/api/v2/sql"))
        .bearer_auth("t")
        .json(&serde_json::json!({"sql": "SELECT count(*) AS n FROM conversations"}))
        .send()
        .unwrap();
    assert_eq!(parse(&post.text().unwrap())["rows"], serde_json::json!([[135]]));
    // A body too large to take is refused in JSON too, as every error here.
    let long = format!("SELECT 1 -- {}", "x".repeat(3 << 20));
    let refused = client().post(server.url("/api/v2/sql")).bearer_auth("t").json(&serde_json::json!({"sql": long}));
    let refused = refused.send().unwrap();
    assert_eq!(refused.status(), 413);
    assert!(parse(&refused.text().unwrap())["error"].as_str().unwrap().contains("2 MiB"));

    // Bytes are capped too: rows past the cap are left out, and no value is made past it.
    let heavy = parse(&get("SELECT zeroblob(30000) FROM conversations").text().unwrap());
    assert_eq!((heavy["rows"].as_array().unwrap().len(), heavy["truncated"].clone()), (1, Value::Bool(true)));
    let huge = get("SELECT randomblob(1000000000)");
    assert_eq!(huge.status(), 400);
    assert!(parse(&huge.text().unwrap())["error"].as_str().unwrap().contains("too big"));
    // Text that is not UTF-8 is read with U+FFFD, not refused.
    let odd = parse(&get("SELECT char(55296) || 'x', CAST(x'FF41' AS TEXT)").text().unwrap());
    assert_eq!(odd["rows"][0], serde_json::json!(["\u{FFFD}\u{FFFD}\u{FFFD}x", "\u{FFFD}A"]));
    // Written a row at a time, the answer is still compact JSON with its keys in this order.
    let values = get("SELECT 1.5, -0.0, 1e300, 1.0 / 0, 7, x'00ff', NULL, 'a\"b' || char(10, 0, 233)").text().unwrap();
    assert_eq!(
        values,
        r#"{"columns":["1.5","-0.0","1e300","1.0 / 0","7","x'00ff'","NULL","'a\"b' || char(10, 0, 233)"],"rows":[[1.5,-0.0,1e+300,null,7,"00ff",null,"a\"b\n\u0000é"]],"truncated":false}"#.to_owned() + "\n"
    );

    let slow = get("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n");
    assert_eq!(slow.status(), 400);
    assert!(parse(&slow.text().unwrap())["error"].as_str().unwrap().contains("stopped"));
    for write in
        ["DELETE FROM conversations", "ATTACH DATABASE ':memory:' AS x", "PRAGMA query_only = 0", "SELECT * FROM _meta"]
    {
        assert_eq!(get(write).status(), 403, "{write}");
    }
    let bad = get("SELECT nope FROM conversations");
    assert_eq!(bad.status(), 400);
    assert!(parse(&bad.text().unwrap())["error"].as_str().unwrap().contains("no such column: nope"));
    let empty = get("  ");
    assert_eq!(empty.status(), 400);
    assert!(parse(&empty.text().unwrap())["error"].as_str().unwrap().contains("empty or only comments"));
    assert_eq!(
        client().get(server.url("/api/v2/sql?q=SELECT%201")).send().unwrap().status(),
        401,
        "same auth as the list"
    );
    assert_eq!(server.index.status().unwrap().conversations, 135, "nothing changed");

    let off = Server::start(&r.arch, &r.db, Config::default(), false);
    assert_eq!(off.get("/api/v2/sql?q=SELECT%201").status(), 404, "off unless --enable-sql");
}

/// A statement needing more memory than `--sql-max-memory` is stopped with a 400 that says so,
/// and the server goes on answering. Its 100 columns of 8 MB each are each within the length
/// limit, and computed in straight-line code, which the time limit's checks never interrupt:
/// unchecked, they would take 800 MB (on the endpoint's defaults, 300 such columns took
/// 10 GB). A process of its own, as the limit is the process's.
#[test]
fn a_statement_past_the_memory_limit_is_stopped() {
    let r = restore("archive");
    let (mut child, said, _) = crate::util::spawn_serve(
        &r.arch,
        &r.db,
        "127.0.0.1:0",
        &["--enable-sql", "--sql-max-memory", "32"],
        &[("GPTME_DISABLE_AUTH", "true")],
    );
    let addr = said.split("listening on http://").nth(1).unwrap().split_whitespace().next().unwrap();
    let addr = addr.trim_end_matches(|c: char| !c.is_ascii_digit()).to_owned();
    let get = |q: &str| {
        let r = client().get(format!("http://{addr}/api/v2/sql")).query(&[("q", q)]).send().unwrap();
        (r.status().as_u16(), parse(&r.text().unwrap()))
    };
    let columns: Vec<String> = (0..100).map(|i| format!("printf('%.*c', 8000000, 'x') AS c{i}")).collect();
    let (status, body) = get(&format!("SELECT {}", columns.join(", ")));
    assert_eq!(status, 400, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("more memory than the 32 MiB SQLite may use here"), "{error}");
    let peak_kb = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap();
    assert!(peak_kb < 400_000, "peak {peak_kb} kB");
    assert_eq!(
        get("SELECT count(*) FROM conversations"),
        (200, serde_json::json!({"columns": ["count(*)"], "rows": [[135]], "truncated": false}))
    );
    let list = client().get(format!("http://{addr}/api/v2/conversations?limit=1")).send().unwrap();
    assert_eq!(list.status(), 200);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// At most `max_running` statements run at once; the rest wait their turn rather than share the
/// cores (each then slower, likelier to run over its limit, and holding its answer in memory
/// beside the others'). Two statements that never end, sent together with one allowed at a
/// time: the second starts when the first is stopped, so it answers no sooner than two time
/// limits after it was sent. (Without the cap both answer after one.)
#[test]
fn http_statements_past_the_running_cap_wait_their_turn() {
    let r = restore("archive-crashers/unknown-chat-key");
    let limit = Duration::from_millis(500);
    let sql_on = SqlConfig { enabled: true, timeout: limit, max_running: 1, ..SqlConfig::default() };
    let server = Server::start(&r.arch, &r.db, Config { sql: sql_on, ..Config::default() }, false);
    let endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n";
    let send = || {
        let sent = std::time::Instant::now();
        let answer = client().get(server.url("/api/v2/sql")).query(&[("q", endless)]).send().unwrap();
        (answer.status().as_u16(), sent.elapsed())
    };
    let answers: Vec<(u16, Duration)> = std::thread::scope(|s| {
        let sending: Vec<_> = (0..2).map(|_| s.spawn(send)).collect();
        sending.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(answers.iter().all(|(status, _)| *status == 400), "both stopped at their limit: {answers:?}");
    assert!(answers.iter().any(|(_, took)| *took >= 2 * limit), "{answers:?}");
}

/// Stopping the server stops the statements running: their clients hear so (503) at once, and
/// the server ends, rather than waiting out their time limit (here an hour, with an hour's
/// grace for requests in flight).
#[test]
fn statements_running_when_the_server_stops_are_stopped() {
    let r = restore("archive-crashers/unknown-chat-key");
    let hour = Duration::from_secs(3600);
    let sql_on = SqlConfig { enabled: true, timeout: hour, ..SqlConfig::default() };
    let mut server =
        Server::start(&r.arch, &r.db, Config { sql: sql_on, shutdown_grace: hour, ..Config::default() }, false);
    // Requests being answered, the scrape asking among them. (Not the refresh count: a
    // scrape refreshes too, so that count rises before the statement's request has arrived,
    // and the server could be stopped before the client connects.)
    let in_flight = || {
        let metrics = server.get("/metrics").text().unwrap();
        let line = metrics.lines().find(|l| l.starts_with("convmeta_requests_in_flight ")).unwrap().to_owned();
        line.rsplit(' ').next().unwrap().parse::<u64>().unwrap()
    };
    let url = server.url("/api/v2/sql");
    let endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n";
    let asking = std::thread::spawn(move || {
        let answer = client().get(url).query(&[("q", endless)]).send().unwrap();
        (answer.status().as_u16(), answer.text().unwrap())
    });
    // The statement's request is being answered: its refresh, then the statement, which the
    // stop interrupts either way.
    while in_flight() < 2 {
        std::thread::sleep(Duration::from_millis(10));
    }
    // (Sooner than the client gives up, 30 s: then the connection would end and free the server.)
    assert!(server.stop_within(Duration::from_secs(20)), "the server waited for the statement");
    let (status, body) = asking.join().unwrap();
    assert_eq!((status, parse(&body)["error"].as_str()), (503, Some("the server is stopping")));
}

/// A large answer is compressed too (off the async threads, where a 32 MiB one would hold one
/// for seconds), in the encoding the client takes, with the headers a small one gets.
#[test]
fn http_answers_of_megabytes_are_compressed_too() {
    use std::io::Read;
    let r = restore("archive-crashers/unknown-chat-key");
    let server = Server::start(
        &r.arch,
        &r.db,
        Config { sql: SqlConfig { enabled: true, ..SqlConfig::default() }, ..Config::default() },
        false,
    );
    let ask = |sql: &str, accept: &str| {
        let answer = client().get(server.url("/api/v2/sql")).query(&[("q", sql)]).header("Accept-Encoding", accept);
        let answer = answer.send().unwrap();
        assert_eq!(answer.status(), 200);
        let header = |name: &str| answer.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        let headers = (header("content-encoding"), header("vary"), header("content-type"));
        (headers, answer.bytes().unwrap())
    };
    let large = "SELECT hex(zeroblob(600000)) FROM (VALUES (1), (2))";
    let (plain_headers, plain) = ask(large, "identity");
    assert!(plain.len() > 2_400_000);
    assert_eq!(plain_headers.0, None);
    for (accept, chosen) in [("gzip", "gzip"), ("gzip;q=0.5, zstd", "zstd")] {
        let (headers, body) = ask(large, accept);
        assert_eq!(headers, (Some(chosen.to_owned()), plain_headers.1.clone(), plain_headers.2.clone()), "{accept}");
        assert!(body.len() < 100_000, "{accept}: {} bytes", body.len());
        if chosen == "gzip" {
            let mut unzipped = Vec::new();
            flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut unzipped).unwrap();
            assert!(unzipped == plain, "gzip: not the plain answer");
        }
    }
    let (headers, body) = ask("SELECT hex(zeroblob(4000))", "gzip");
    assert_eq!((headers.0.as_deref(), body.len() < 1000), (Some("gzip"), true));
}

/// docs/schema.md documents every column of the public tables, and no other.
#[test]
fn the_schema_doc_names_every_public_column() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let db = tmp.path().join("db.sqlite3");
    convmeta::Index::open(&logs, &db).unwrap().refresh().unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/schema.md")).unwrap();
    for table in ["conversations", "conversation_models", "conversation_days"] {
        let actual: std::collections::BTreeSet<String> = conn
            .prepare(&format!("SELECT name FROM pragma_table_xinfo('{table}')"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        // The table under the table's heading; the backticked names in each row's first cell.
        let section = doc.split(&format!("### `{table}`")).nth(1).unwrap();
        let documented: std::collections::BTreeSet<String> = section
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2)
            .flat_map(|row| row.split('|').nth(1).unwrap().split('`').skip(1).step_by(2).map(str::to_owned))
            .collect();
        assert_eq!(documented, actual, "docs/schema.md and the `{table}` table");
    }
}
