//! The HTTP server over 127.0.0.1: gptme's recorded answers, freshness, auth, CORS, its own endpoints,
//! and how it starts and stops (forwarding to gptme-server: `forwarding.rs`).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use convmeta::server::Config;
use serde_json::Value;

use crate::util::{
    append, archive_of, client, convmeta, inotify_watches, listening_addr, ok, pack, parse, raw_get, restore,
    scratch_archive, searched, spawn_serve, unix_get, usage_line, Restored, Server,
};

fn improve(item: &mut Value) {
    Restored::improve(item);
}

fn patched_body(r: &Restored, name: &str) -> String {
    r.improved_body(name)
}

/// Search as the spec defines it, over truth.json: what every search answer must hold.
fn truth_search(truth: &BTreeMap<String, Value>, q: &str, limit: usize) -> Vec<String> {
    let mut listed: Vec<Value> =
        truth.values().filter(|i| !convmeta::format::gptme::is_hidden(i["id"].as_str().unwrap())).cloned().collect();
    listed.iter_mut().for_each(improve);
    listed.sort_by(|a, b| {
        let key = |i: &Value| (i["modified"].as_f64().unwrap(), i["id"].as_str().unwrap().to_string());
        key(b).partial_cmp(&key(a)).unwrap()
    });
    let q = q.to_lowercase();
    listed
        .iter()
        .filter(|i| {
            ["name", "id", "last_message_preview"]
                .iter()
                .any(|k| i[*k].as_str().is_some_and(|v| v.to_lowercase().contains(&q)))
        })
        .take(limit)
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

fn query_value(request: &str, key: &str) -> Option<String> {
    let query = request.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

fn items_of(body: &Value) -> Vec<Value> {
    match body {
        Value::Array(items) => items.clone(),
        Value::Object(o) => o["conversations"].as_array().unwrap().clone(),
        _ => vec![],
    }
}

/// The pack restored for an in-process server, whose `~` is this process's `$HOME`.
fn restore_in_process(which: &str) -> Restored {
    let mut r = restore(which);
    r.home = std::fs::canonicalize(std::env::var("HOME").unwrap()).unwrap();
    r
}

#[test]
fn every_recorded_request_of_the_main_archive() {
    let r = restore_in_process("archive");
    let server = Server::start(&r.arch, &r.db, Config::default(), false);
    let truth = r.truth();
    let mut names: Vec<String> = std::fs::read_dir(pack().join("expected"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_owned))
        .filter(|n| !n.starts_with("crasher-"))
        .collect();
    names.sort();
    assert!(names.len() > 40);
    for name in names {
        let expected = r.expected(&name);
        let request = expected["request"].as_str().unwrap();
        let mut call = client().get(server.url(request));
        if let Some(headers) = expected["request_headers"].as_object() {
            for (k, v) in headers {
                call = call.header(k, v.as_str().unwrap());
            }
        }
        let response = call.send().unwrap();
        assert_eq!(response.status().as_u16(), expected["status"].as_u64().unwrap() as u16, "{name}: status");
        for header in ["ETag", "Cache-Control"] {
            let ours = response.headers().get(header).map(|v| v.to_str().unwrap().to_string());
            let theirs = expected["headers"][header].as_str().map(str::to_string);
            assert_eq!(ours, theirs, "{name}: {header}");
        }
        let body = response.text().unwrap();
        if expected["body"].is_null() {
            assert_eq!(body, "", "{name}: empty body");
            continue;
        }
        if expected["status"] != 200 {
            let raw = std::fs::read_to_string(pack().join(format!("expected/{name}.body"))).unwrap();
            assert_eq!(body, raw, "{name}: error body byte for byte");
            continue;
        }
        let ours = parse(&body);
        let items = items_of(&ours);
        let search = query_value(request, "q").or_else(|| query_value(request, "search")).filter(|q| !q.is_empty());
        let got: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
        match &search {
            // Our previews are full-scan ones, so searches match what gptme's detail mode matches.
            Some(q) => {
                let limit = query_value(request, "limit").map_or(100, |l| l.parse().unwrap());
                assert_eq!(got, truth_search(&truth, q, limit), "{name}: search hits");
            }
            None => {
                let want: Vec<Value> = items_of(&expected["body"]);
                let want: Vec<&str> = want.iter().map(|i| i["id"].as_str().unwrap()).collect();
                assert_eq!(got, want, "{name}: the same items in the same order");
                if expected["body"].is_object() {
                    assert_eq!(ours["next_cursor"], expected["body"]["next_cursor"], "{name}: next_cursor");
                }
            }
        }
        for item in &items {
            let id = item["id"].as_str().unwrap();
            let mut want = truth[id].clone();
            improve(&mut want);
            assert_eq!(item, &want, "{name}: {id} carries the full-scan truth");
        }
        if query_value(request, "detail").is_some_and(|d| d == "true") && search.is_none() {
            assert_eq!(body, patched_body(&r, &name), "{name}: the detail body byte for byte");
        }
    }
    // q with and without detail answer the same (every answer is exact).
    assert_eq!(
        server.get("/api/v2/conversations?q=Quokka").text().unwrap(),
        server.get("/api/v2/conversations?q=Quokka&detail=true").text().unwrap()
    );
    assert_eq!(
        server.get("/api/v2/conversations?q=Quokka&detail=true").text().unwrap(),
        patched_body(&r, "q-detail"),
        "q-detail byte for byte"
    );
    // A preview's lone surrogate ("bad \ud83d end") is stored as U+FFFD, but to gptme's search
    // it is no U+FFFD (what werkzeug makes of `%FF`).
    assert!(server.get("/api/v2/conversations?q=bad%20").text().unwrap().contains(r"bad \ud83d end"));
    assert_eq!(server.get("/api/v2/conversations?q=%FF").text().unwrap(), "[]\n");
    assert_eq!(server.get("/api/v2/conversations?q=d%20%EF%BF%BD").text().unwrap(), "[]\n");
}

#[test]
fn the_paginated_walk_returns_everything_once_in_order() {
    let r = restore_in_process("archive");
    let server = Server::start(&r.arch, &r.db, Config::default(), false);
    let all: Vec<String> =
        items_of(&r.expected("limit-1000")["body"]).iter().map(|i| i["id"].as_str().unwrap().to_string()).collect();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 1.. {
        let mut url = String::from("/api/v2/conversations?paginated=1&limit=7");
        if let Some(c) = &cursor {
            url.push_str("&cursor=");
            url.extend(form_urlencoded::byte_serialize(c.as_bytes()));
        }
        let body = parse(&server.get(&url).text().unwrap());
        let expected = r.expected(&format!("paginated-p{page}"))["body"].clone();
        let ids = |b: &Value| items_of(b).iter().map(|i| i["id"].as_str().unwrap().to_string()).collect::<Vec<_>>();
        assert_eq!(ids(&body), ids(&expected), "page {page}: gptme's items");
        assert_eq!(body["next_cursor"], expected["next_cursor"], "page {page}: gptme's cursor");
        seen.extend(items_of(&body).iter().map(|i| i["id"].as_str().unwrap().to_string()));
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, all);
    // Any number Python's `float` reads is a cursor, as in gptme: `inf` is before everything,
    // `nan` (which compares false) and `-inf` after everything.
    for (cursor, want) in
        [("inf", &all[..7]), ("inf%7Cx", &all[..7]), ("nan", &[][..]), ("NaN%7Cx", &[][..]), ("-Infinity", &[][..])]
    {
        let body =
            parse(&server.get(&format!("/api/v2/conversations?paginated=1&limit=7&cursor={cursor}")).text().unwrap());
        let ids: Vec<String> = items_of(&body).iter().map(|i| i["id"].as_str().unwrap().to_string()).collect();
        assert_eq!(ids, want, "cursor={cursor}");
        assert_eq!(body["next_cursor"].is_null(), want.is_empty(), "cursor={cursor}");
    }
}

/// Compressed as gptme-server compresses (flask-compress): bodies of 500 bytes or more, in an
/// encoding the client takes; the ETag and a 304 as without.
#[test]
fn answers_are_compressed_for_clients_that_take_it() {
    use std::io::Read;
    let r = restore_in_process("archive");
    let server = Server::start(&r.arch, &r.db, Config::default(), false);
    let url = server.url("/api/v2/conversations?limit=1000");
    let plain = client().get(&url).send().unwrap();
    let tag = plain.headers()["etag"].clone();
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.bytes().unwrap();
    let gzipped = client().get(&url).header("Accept-Encoding", "gzip").send().unwrap();
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    assert_eq!(gzipped.headers()["etag"], tag);
    assert!(gzipped.headers()["vary"].to_str().unwrap().to_ascii_lowercase().contains("accept-encoding"));
    let body = gzipped.bytes().unwrap();
    assert!(body.len() * 4 < plain.len(), "{} of {} bytes", body.len(), plain.len());
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut unzipped).unwrap();
    assert_eq!(unzipped, plain);
    for (accept, chosen) in [("zstd", "zstd"), ("br", "br"), ("deflate", "deflate"), ("gzip;q=0.5, br", "br")] {
        let answer = client().get(&url).header("Accept-Encoding", accept).send().unwrap();
        assert_eq!(answer.headers()["content-encoding"], chosen, "{accept}");
    }
    let not_modified =
        client().get(&url).header("Accept-Encoding", "gzip").header("If-None-Match", tag).send().unwrap();
    assert_eq!(not_modified.status(), 304);
    // A small answer goes as it is. Every answer names `Accept-Encoding` in `Vary`, as
    // flask-compress does, the uncompressed ones too, so a cache keeps them apart.
    let small = client().get(server.url("/api/v2/conversations?q=no-such-thing")).header("Accept-Encoding", "gzip");
    let small = small.send().unwrap();
    assert!(small.headers().get("content-encoding").is_none());
    let bad = client().get(server.url("/api/v2/conversations?limit=x")).send().unwrap();
    // And the answers made before any route: a refused id, a refused `Host`.
    let refused_id = client().get(server.url("/api/v2/conversations/a..b")).send().unwrap();
    assert_eq!(refused_id.status(), 400);
    let refused_host = client().get(&url).header("Host", "elsewhere.example").send().unwrap();
    assert_eq!(refused_host.status(), 403);
    for answer in [&small, &not_modified, &bad, &refused_id, &refused_host] {
        assert_eq!(answer.headers()["vary"].to_str().unwrap().to_ascii_lowercase(), "accept-encoding");
    }
}

#[test]
fn crashers_answer_200_with_every_conversation() {
    for case in
        ["unknown-chat-key", "non-object-json-line", "invalid-utf8-last-message", "invalid-utf8-metadata-outside-tail"]
    {
        let r = restore(&format!("archive-crashers/{case}"));
        let server = Server::start(&r.arch, &r.db, Config::default(), false);
        for query in ["", "?detail=true"] {
            let response = server.get(&format!("/api/v2/conversations{query}"));
            assert_eq!(response.status(), 200, "{case}{query}");
            let items = items_of(&parse(&response.text().unwrap()));
            let ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
            assert_eq!(ids.len(), 2, "{case}: {ids:?}");
            assert!(ids.contains(&"2026-01-01-healthy-neighbour"));
        }
    }
}

/// A GET sent as written (HTTP clients would resolve `..` in the path first).
/// `/metrics` says what the archive's messages cost, by model, as `usage --by model` sums it,
/// fresh: a scrape sees an append made before it, with no list request between.
#[test]
fn metrics_say_the_spend_by_model_fresh() {
    let line = |model: &str, input: u64, cost: f64| {
        usage_line(None, model, &format!("\"input_tokens\": {input}, \"output_tokens\": 7"), &cost.to_string())
    };
    let odd = "we\"ird\\model\nx";
    let (tmp, logs) = archive_of(&[
        ("a", line("m1", 100, 0.5) + &line(odd, 10, 0.25), None),
        ("test-hidden", line("m1", 1000, 2.0), None),
        ("plain", "{\"role\": \"user\", \"content\": \"hi\"}\n".into(), None),
    ]);
    let server = Server::start(&logs, &tmp.path().join("db.sqlite3"), Config::default(), false);
    let samples = || -> Vec<String> {
        let metrics = server.get("/metrics").text().unwrap();
        metrics.lines().filter(|l| l.starts_with("convmeta_usage_")).map(str::to_owned).collect()
    };
    let odd_label = r#"we\"ird\\model\nx"#;
    let mut want = vec![
        "convmeta_usage_cost_usd{model=\"m1\"} 2.5".to_owned(),
        format!("convmeta_usage_cost_usd{{model=\"{odd_label}\"}} 0.25"),
        "convmeta_usage_tokens{model=\"m1\",kind=\"input\"} 1100".to_owned(),
        "convmeta_usage_tokens{model=\"m1\",kind=\"output\"} 14".to_owned(),
        "convmeta_usage_tokens{model=\"m1\",kind=\"cache_read\"} 0".to_owned(),
        format!("convmeta_usage_tokens{{model=\"{odd_label}\",kind=\"input\"}} 10"),
        format!("convmeta_usage_tokens{{model=\"{odd_label}\",kind=\"output\"}} 7"),
        format!("convmeta_usage_tokens{{model=\"{odd_label}\",kind=\"cache_read\"}} 0"),
    ];
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(sorted(samples()), sorted(want.clone()));
    append(&logs, "plain", &line("m2", 5, 1.0));
    want.push("convmeta_usage_cost_usd{model=\"m2\"} 1".to_owned());
    for (kind, n) in [("input", 5), ("output", 7), ("cache_read", 0)] {
        want.push(format!("convmeta_usage_tokens{{model=\"m2\",kind=\"{kind}\"}} {n}"));
    }
    assert_eq!(sorted(samples()), sorted(want.clone()));

    // A refresh that does not end soon holds a scrape up only a while: it answers, from the
    // index as it stands, long before that refresh ends.
    let ended = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (index, done) = (server.index.clone(), ended.clone());
    let slow = std::thread::spawn(move || {
        index
            .refresh_via(|| {
                std::thread::sleep(Duration::from_secs(6));
                done.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(Default::default())
            })
            .unwrap();
    });
    std::thread::sleep(Duration::from_millis(200)); // the slow refresh under way
    assert_eq!(sorted(samples()), sorted(want));
    assert!(!ended.load(std::sync::atomic::Ordering::SeqCst), "the scrape waited for the slow refresh");
    slow.join().unwrap();
}

/// One of convmeta's own endpoints (`/api/v2/usage`, `/api/v2/search`) on a server with a
/// token, beside the command whose `--json` it answers with (named as the path ends).
struct OwnEndpoint {
    server: Server,
    logs: std::path::PathBuf,
    db: std::path::PathBuf,
    path: &'static str,
}

impl OwnEndpoint {
    const TOKEN: &'static str = "s3cret";

    fn start(logs: &Path, db: std::path::PathBuf, path: &'static str) -> OwnEndpoint {
        let config = Config { token: Some(Self::TOKEN.into()), ..Config::default() };
        let server = Server::start(logs, &db, config, false);
        OwnEndpoint { server, logs: logs.to_owned(), db, path }
    }

    /// The endpoint's answer to `query` (`?…` or nothing), with the token.
    fn get(&self, query: &str) -> reqwest::blocking::Response {
        client().get(self.server.url(&format!("{}{query}", self.path))).bearer_auth(Self::TOKEN).send().unwrap()
    }

    /// Its JSON body.
    fn answer(&self, query: &str) -> Value {
        parse(&self.get(query).text().unwrap())
    }

    /// What the command prints with `args` and `--json`.
    fn command(&self, args: &[&str]) -> Value {
        let name = self.path.rsplit('/').next().unwrap();
        let mut c = convmeta();
        c.arg(name).arg("--logs").arg(&self.logs).arg("--db").arg(&self.db).args(args).arg("--json");
        parse(&if name == "search" { searched(c) } else { ok(c) })
    }

    /// The status and error message of a refused `query`.
    fn refused(&self, query: &str) -> (u16, String) {
        let r = self.get(query);
        (r.status().as_u16(), parse(&r.text().unwrap())["error"].as_str().unwrap().to_owned())
    }

    /// The status of `query` asked without the token.
    fn status_without_token(&self, query: &str) -> u16 {
        client().get(self.server.url(&format!("{}{query}", self.path))).send().unwrap().status().as_u16()
    }
}

/// `GET /api/v2/usage` answers what `convmeta usage --json` prints, with the total, fresh, behind
/// the token; a bad parameter is 400, an unknown conversation 404.
#[test]
fn usage_over_http_is_the_commands() {
    let line = |day: u32, model: &str, cost: f64| {
        usage_line(Some(&format!("2026-05-{day:02}T10:00:00")), model, "\"input_tokens\": 10", &cost.to_string())
    };
    let (tmp, logs) =
        archive_of(&[("a", line(1, "m1", 1.0) + &line(2, "m2", 2.0), None), ("b", line(2, "m1", 4.0), None)]);
    let usage = OwnEndpoint::start(&logs, tmp.path().join("db.sqlite3"), "/api/v2/usage");
    for (query, args) in [
        ("", &[][..]),
        ("?by=model", &["--by", "model"][..]),
        ("?by=week&breakdown=true", &["--by", "week", "--breakdown"][..]),
        ("?conversation=a&since=2026-05-02", &["--conversation", "a", "--since", "2026-05-02"][..]),
        ("?by=conversation&model=M1", &["--by", "conversation", "--model", "M1"][..]),
        ("?by=agent", &["--by", "agent"][..]),
        ("?by=model&agent=x", &["--by", "model", "--agent", "x"][..]),
        ("?by=conversation&limit=1", &["--by", "conversation", "-n", "1"][..]),
        ("?limit=1", &["-n", "1"][..]),
        (
            &format!("?by=workspace&workspace={}", logs.display()),
            &["--by", "workspace", "--workspace", logs.to_str().unwrap()][..],
        ),
    ] {
        assert_eq!(usage.answer(query)["rows"], usage.command(args), "{query}");
    }
    let answer = usage.answer("?by=day");
    assert_eq!(answer["by"], "day");
    assert_eq!((answer["total"]["cost"].as_f64(), answer["total"]["conversations"].as_u64()), (Some(7.0), Some(2)));
    assert_eq!(answer["more"], false);
    // A limit leaves rows out, says so, and keeps the total of all.
    let one = usage.answer("?by=day&limit=1");
    assert_eq!(
        (one["rows"].as_array().unwrap().len(), &one["more"], &one["total"]),
        (1, &true.into(), &answer["total"])
    );
    // Fresh: an append made before the request is in its answer.
    append(&logs, "b", &line(3, "m3", 8.0));
    assert_eq!(usage.answer("")["rows"].as_array().unwrap().len(), 3);
    // A limit past what a count holds: all of them, as 0 is.
    assert_eq!(usage.answer(&format!("?limit={}0", u64::MAX)), usage.answer("?limit=0"));
    // Refusals.
    assert_eq!(
        usage.refused("?by=year"),
        (400, "by must be one of day, week, month, model, conversation, workspace, agent".into())
    );
    assert_eq!(usage.refused("?workspace=proj"), (400, "workspace must be an absolute path".into()));
    assert_eq!(usage.refused("?limit=all"), (400, "limit must be a count, 0 or more".into()));
    assert_eq!(usage.refused("?conversation=zz"), (404, "no conversation with id \"zz\"".into()));
    assert_eq!(usage.status_without_token(""), 401);
}

/// `GET /api/v2/search` answers what `convmeta search --json` prints, and whether more match,
/// fresh, behind the token; a bad or missing parameter is 400.
#[test]
fn search_over_http_is_the_commands() {
    let msg = |content: &str| format!("{{\"role\": \"user\", \"content\": \"{content}\"}}\n");
    let (tmp, logs) = archive_of(&[
        (
            "a",
            msg("the Parser")
                + &msg("no")
                + &msg("parser again")
                + "{\"role\": \"assistant\", \"content\": \"parsed\"}\n",
            None,
        ),
        ("b", msg("parse tree\\nof leaves"), None),
        ("c", msg("nothing"), None),
        // Hidden from lists, and with a malformed line.
        ("test-d", msg("a quokka"), None),
        ("e", msg("quokka") + "{not JSON\n", None),
    ]);
    let search = OwnEndpoint::start(&logs, tmp.path().join("db.sqlite3"), "/api/v2/search");
    for (query, args) in [
        ("?q=parse", &["parse"][..]),
        ("?q=PARSER&matches=1", &["PARSER", "-m", "1"][..]),
        ("?q=parse&role=user", &["parse", "--role", "user"][..]),
        ("?q=%20tree&limit=0", &[" tree", "-n", "0"][..]),
        (
            &format!("?q=parse&since=2000-01-01&workspace={}", logs.display()),
            &["parse", "--since", "2000-01-01", "--workspace", logs.to_str().unwrap()][..],
        ),
        ("?q=parse&until=2000-01-01", &["parse", "--until", "2000-01-01"][..]),
        ("?q=AGAIN&q=parse", &["AGAIN", "parse"][..]),
        ("?q=parse&sort=matches&limit=1", &["parse", "--sort", "matches", "-n", "1"][..]),
        ("?q=PARSE&word=true", &["PARSE", "-w"][..]),
        ("?q=Parse&case_sensitive=true", &["Parse", "-s"][..]),
        ("?q=pars(e%7Ced)&regex=true&matches=5&context=1", &["pars(e|ed)", "--regex", "-m", "5", "-C", "1"][..]),
        ("?q=leaves&after_context=1&context=1&before_context=0", &["leaves", "-A", "1", "-C", "1", "-B", "0"][..]),
        ("?q=Parse&smart_case=true", &["Parse", "-S"][..]),
        ("?q=quokka&hidden=true", &["quokka", "--hidden"][..]),
        ("?q=quokka&hidden=1&problems=true", &["quokka", "--hidden", "--problems"][..]),
    ] {
        let answer = search.answer(query);
        assert_eq!(answer["conversations"], search.command(args), "{query}");
        // Of "a" (3 messages) and "b" (1), "a" first by matches, whatever their times.
        assert_eq!(answer["more"], query.contains("sort"), "{query}");
        let found = answer["conversations"].as_array().unwrap().len();
        assert_eq!(found > 0, !query.contains("until"), "{query}: {answer}");
        // The assistant's "parsed" counts unless only the user's messages are asked for.
        if query.starts_with("?q=parse&") && !query.contains("until") {
            let a = answer["conversations"].as_array().unwrap().iter().find(|c| c["id"] == "a").unwrap();
            assert_eq!(a["matches"], if query.contains("role") { 2 } else { 3 }, "{query}");
        }
    }
    // A hidden conversation only when asked for; those with problems alone when asked for.
    let ids = |query: &str| {
        let answer = search.answer(query);
        let mut ids: Vec<String> =
            answer["conversations"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().into()).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids("?q=quokka"), ["e"]);
    assert_eq!(ids("?q=quokka&hidden=true"), ["e", "test-d"]);
    assert_eq!(ids("?q=quokka&hidden=true&problems=true"), ["e"]);
    assert_eq!(ids("?q=quokka&hidden=false&problems=false"), ["e"]);
    assert!(ids("?q=parse&problems=true").is_empty());
    // Context: the content's next line.
    let b =
        |answer: Value| answer["conversations"].as_array().unwrap().iter().find(|c| c["id"] == "b").cloned().unwrap();
    assert_eq!(b(search.answer("?q=tree&context=1"))["messages"][0]["after"], serde_json::json!(["of leaves"]));
    // One side alone: the line before, whatever `context` says of the line after.
    let before = b(search.answer("?q=leaves&before_context=1&context=0"))["messages"][0].clone();
    assert_eq!((&before["before"], before.get("after")), (&serde_json::json!(["parse tree"]), None));
    let after = b(search.answer("?q=tree&context=0&after_context=1"))["messages"][0].clone();
    assert_eq!((after.get("before"), &after["after"]), (None, &serde_json::json!(["of leaves"])));
    let all_around = b(search.answer(&format!("?q=tree&context={}", usize::MAX)));
    assert_eq!(all_around["messages"][0]["after"], serde_json::json!(["of leaves"]));
    // As a word, "parse" is in "parse tree" alone.
    let as_word = search.answer("?q=parse&word=1");
    assert_eq!((as_word["conversations"][0]["id"].as_str(), as_word["conversations"][1].is_null()), (Some("b"), true));
    // In the case typed, "Parse" is in "a"'s first message alone.
    let exact = search.answer("?q=Parse&case_sensitive=true");
    assert_eq!((exact["conversations"][0]["matches"].as_u64(), exact["conversations"][1].is_null()), (Some(1), true));
    // Two texts: the one message that says both.
    assert_eq!(search.answer("?q=AGAIN&q=parse")["conversations"][0]["matches"], 1);
    let answer = search.answer("?q=parse&limit=1");
    assert_eq!((answer["conversations"].as_array().unwrap().len(), &answer["more"]), (1, &Value::Bool(true)));
    // Fresh: an append made before the request is in its answer.
    append(&logs, "c", &msg("a parser at last"));
    let ids: Vec<Value> =
        search.answer("?q=parser")["conversations"].as_array().unwrap().iter().map(|c| c["id"].clone()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&Value::from("c")), "{ids:?}");
    // Counts past what one holds: all there are.
    let huge = format!("{}0", u64::MAX);
    assert_eq!(
        search.answer(&format!("?q=parser&limit={huge}&matches={huge}")),
        search.answer("?q=parser&limit=0&matches=99")
    );
    // Refusals.
    assert_eq!(search.refused(""), (400, "q, the text to search for, is missing or blank".into()));
    assert_eq!(search.refused("?q=x&limit=all"), (400, "limit must be a count, 0 or more".into()));
    assert_eq!(search.refused("?q=x&page=2"), (400, "unknown parameter \"page\"".into()));
    assert_eq!(search.refused("?q=x&hidden=all"), (400, "hidden must be true or false".into()));
    assert_eq!(
        search.refused("?q=x&smart_case=true&case_sensitive=1"),
        (400, "case_sensitive and smart_case cannot both be given".into())
    );
    assert_eq!(
        search.refused("?q=x%5B&regex=true"),
        (400, "\"x[\" is not a regular expression: unclosed character class".into())
    );
    assert_eq!(search.status_without_token("?q=x"), 401);
    // Counted under its own name, not as a forwarded route.
    let metrics =
        client().get(search.server.url("/metrics")).bearer_auth(OwnEndpoint::TOKEN).send().unwrap().text().unwrap();
    assert!(metrics.contains("convmeta_requests_total{route=\"search\",status=\"400\"} 6"), "{metrics}");
}

/// `/metrics` says how many requests are in flight (the asking one alone, once the others are
/// answered) and, on Linux, what the process holds, under the names Prometheus' client
/// libraries give them.
#[test]
fn metrics_say_what_the_process_holds() {
    let (tmp, logs) = scratch_archive();
    let server = Server::start(&logs, &tmp.path().join("db.sqlite3"), Config::default(), false);
    for _ in 0..3 {
        assert_eq!(server.get("/api/v2/conversations").status(), 200);
    }
    let metrics = server.get("/metrics").text().unwrap();
    let value = |name: &str| -> f64 {
        let line = metrics.lines().find(|l| l.split(' ').next() == Some(name)).unwrap_or_else(|| panic!("{name}"));
        line.split(' ').nth(1).unwrap().parse().unwrap()
    };
    assert_eq!(value("convmeta_requests_in_flight"), 1.0, "{metrics}");
    if cfg!(target_os = "linux") {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        let started = value("process_start_time_seconds");
        assert!(started <= now + 1.0 && started > now - 86_400.0, "{started} {now}");
        // This test's connection to the server is among them.
        assert!(value("process_open_fds") >= 3.0, "{metrics}");
        assert!(value("process_max_fds") >= value("process_open_fds"), "{metrics}");
        // Memory and CPU time, but where `/proc/self/stat` is not the kernel's: qemu's user-mode
        // emulation (`tools/test-aarch64`) writes zeros there, which are not said.
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let emulated = stat.rsplit_once(") ").unwrap().1.split(' ').nth(20) == Some("0");
        if emulated {
            assert!(!metrics.contains("process_resident_memory_bytes"), "{metrics}");
        } else {
            assert!(value("process_resident_memory_bytes") > 1e6, "{metrics}");
            assert!(value("process_virtual_memory_bytes") >= value("process_resident_memory_bytes"), "{metrics}");
            assert!(value("process_cpu_seconds_total") > 0.0, "{metrics}");
        }
    }
}

/// HTTP/1.1 only, as gptme-server: a client that opens with HTTP/2's preface gets no HTTP/2
/// (a server's first frame, SETTINGS) and the connection closes; the same server answers
/// HTTP/1.1 on. (Over HTTP/2, a client that never opened its flow-control window held its
/// answers in memory as long as it stayed.)
#[test]
fn the_server_speaks_http1_only() {
    let (tmp, logs) = scratch_archive();
    let server = Server::start(&logs, &tmp.path().join("db.sqlite3"), Config::default(), false);
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    // An empty SETTINGS frame of the client's, as a real one sends next.
    stream.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("the connection closes");
    assert!(answer.is_empty() || answer.starts_with(b"HTTP/1.1 "), "{answer:?}");
    assert_eq!(raw_get(server.addr, "/api/v2/conversations").0, 200);
}

/// Makes the directory `target` holding one file (name, content), and links it in at `link`.
fn link_in(target: &Path, (name, content): (&str, &str), link: &Path) {
    std::fs::create_dir_all(target).unwrap();
    std::fs::write(target.join(name), content).unwrap();
    std::os::unix::fs::symlink(target, link).unwrap();
}

fn item(server: &Server, id: &str) -> Option<Value> {
    let list = parse(&server.get("/api/v2/conversations?limit=1000").text().unwrap());
    list.as_array().unwrap().iter().find(|i| i["id"] == id).cloned()
}

fn read_your_writes(watch: bool) {
    let (tmp, logs) = scratch_archive();
    let server = Server::start(&logs, &tmp.path().join("db.sqlite3"), Config::default(), watch);
    for n in 0..25 {
        append(&logs, "a", &format!("{{\"role\": \"assistant\", \"content\": \"answer {n}\"}}\n"));
        let a = item(&server, "a").unwrap();
        assert_eq!(a["messages"], 2 + n, "watch={watch}: the append is in the very next answer");
        assert_eq!(a["last_message_preview"], format!("answer {n}"));
    }
    // New, renamed and deleted conversations too.
    std::fs::create_dir_all(logs.join("c")).unwrap();
    append(&logs, "c", "{\"role\": \"user\", \"content\": \"new\"}\n");
    assert_eq!(item(&server, "c").unwrap()["last_message_preview"], "new");
    std::fs::write(logs.join("c/config.toml"), "[chat]\nname = \"Named\"\n").unwrap();
    assert_eq!(item(&server, "c").unwrap()["name"], "Named");
    // An agent's gptme.toml lies outside the logs directory, where no watch sees it: still seen.
    let agent = tmp.path().join("agent");
    std::fs::create_dir_all(&agent).unwrap();
    std::fs::write(agent.join("gptme.toml"), "[agent]\nname = \"Bob\"\n").unwrap();
    let config = format!("[chat]\nname = \"Named\"\nagent = \"{}\"\n", agent.display());
    std::fs::write(logs.join("c/config.toml"), config).unwrap();
    assert_eq!(item(&server, "c").unwrap()["agent_name"], "Bob", "watch={watch}");
    std::fs::write(agent.join("gptme.toml"), "[agent]\nname = \"Robert\"\n").unwrap();
    assert_eq!(item(&server, "c").unwrap()["agent_name"], "Robert", "watch={watch}");
    // So does a workspace symlink's target, which decides where the config names no workspace.
    let project = tmp.path().join("project");
    std::os::unix::fs::symlink(&project, logs.join("c/workspace")).unwrap();
    let dir = logs.join("c").canonicalize().unwrap();
    assert_eq!(item(&server, "c").unwrap()["workspace"], dir.to_str().unwrap(), "watch={watch}: dangling");
    std::fs::create_dir(&project).unwrap();
    let project = project.canonicalize().unwrap();
    assert_eq!(item(&server, "c").unwrap()["workspace"], project.to_str().unwrap(), "watch={watch}: made");
    std::fs::remove_dir(&project).unwrap();
    assert_eq!(item(&server, "c").unwrap()["workspace"], dir.to_str().unwrap(), "watch={watch}: gone");
    // And a workspace the config names through a symlink outside the archive, re-pointed.
    for v in ["v1", "v2"] {
        std::fs::create_dir_all(tmp.path().join(v).join("p")).unwrap();
    }
    let current = tmp.path().join("current");
    std::os::unix::fs::symlink("v1", &current).unwrap();
    std::fs::write(logs.join("c/config.toml"), format!("[chat]\nworkspace = \"{}\"\n", current.join("p").display()))
        .unwrap();
    let real = |v: &str| tmp.path().join(v).join("p").canonicalize().unwrap().to_string_lossy().into_owned();
    assert_eq!(item(&server, "c").unwrap()["workspace"], real("v1"));
    std::fs::remove_file(&current).unwrap();
    std::os::unix::fs::symlink("v2", &current).unwrap();
    assert_eq!(item(&server, "c").unwrap()["workspace"], real("v2"), "watch={watch}: re-pointed");
    std::fs::remove_dir_all(logs.join("b")).unwrap();
    assert!(item(&server, "b").is_none());
    // A log that is a symlink to a file elsewhere: its appends land where no watch of the
    // archive is.
    let elsewhere = tmp.path().join("elsewhere.jsonl");
    std::fs::write(&elsewhere, "{\"role\": \"user\", \"content\": \"linked\"}\n").unwrap();
    std::fs::create_dir_all(logs.join("h")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, logs.join("h/conversation.jsonl")).unwrap();
    assert_eq!(item(&server, "h").unwrap()["messages"], 1, "watch={watch}");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&elsewhere)
        .unwrap()
        .write_all(b"{\"role\": \"user\", \"content\": \"x\"}\n")
        .unwrap();
    assert_eq!(item(&server, "h").unwrap()["messages"], 2, "watch={watch}: an append through the symlink");
    // A conversation directory that is a symlink to a directory elsewhere, made while serving;
    // then its `branches/` likewise, and a branch added there.
    let log = ("conversation.jsonl", "{\"role\": \"user\", \"content\": \"out\"}\n");
    link_in(&tmp.path().join("outside"), log, &logs.join("i"));
    assert_eq!(item(&server, "i").unwrap()["messages"], 1, "watch={watch}");
    append(&logs, "i", "{\"role\": \"user\", \"content\": \"in\"}\n");
    assert_eq!(item(&server, "i").unwrap()["messages"], 2, "watch={watch}: an append in a symlinked directory");
    let branches = tmp.path().join("branches-elsewhere");
    link_in(&branches, ("alt.jsonl", ""), &logs.join("i/branches"));
    assert_eq!(item(&server, "i").unwrap()["branches"], 2, "watch={watch}");
    std::fs::write(branches.join("alt2.jsonl"), "").unwrap();
    assert_eq!(item(&server, "i").unwrap()["branches"], 3, "watch={watch}: a branch in a symlinked branches/");
    // Names gptme lists though they would not pass as an id in a request.
    for id in ["x..y", "tab\tname"] {
        std::fs::create_dir_all(logs.join(id)).unwrap();
        append(&logs, id, "{\"role\": \"user\", \"content\": \"odd\"}\n");
        assert_eq!(item(&server, id).unwrap()["messages"], 1, "watch={watch}: {id:?}");
        append(&logs, id, "{\"role\": \"user\", \"content\": \"odder\"}\n");
        assert_eq!(item(&server, id).unwrap()["messages"], 2, "watch={watch}: {id:?}");
    }
    // The logs directory itself replaced (a restore, a re-pointed symlink): the new one is what
    // is listed, and changes in it are seen.
    let logs_dir = std::fs::metadata(&logs).unwrap();
    if let Some(watches) = inotify_watches() {
        assert_eq!(watches.contains(&(logs_dir.dev(), logs_dir.ino())), watch, "the logs directory watched");
    }
    std::fs::rename(&logs, tmp.path().join("logs.old")).unwrap();
    std::fs::create_dir_all(logs.join("d")).unwrap();
    append(&logs, "d", "{\"role\": \"user\", \"content\": \"restored\"}\n");
    assert!(item(&server, "a").is_none(), "watch={watch}: the old directory's conversations are gone");
    assert_eq!(item(&server, "d").unwrap()["last_message_preview"], "restored");
    // The old directory lives on, moved aside: none of its watches may (a leak of the user's
    // limited inotify watches at each replacement, and events misnamed as the new one's).
    let old: Vec<(u64, u64)> = ["", "a", "c", "h"]
        .iter()
        .map(|d| std::fs::metadata(tmp.path().join("logs.old").join(d)).unwrap())
        .map(|m| (m.dev(), m.ino()))
        .collect();
    let watching_old = || inotify_watches().map_or(0, |w| w.into_iter().filter(|w| old.contains(w)).count());
    if watch {
        // The old watcher's instance closes on its own thread, just after the swap.
        let deadline = Instant::now() + Duration::from_secs(10);
        while watching_old() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    assert_eq!(watching_old(), 0, "watch={watch}: watches left on the replaced directory");
    append(&logs, "d", "{\"role\": \"assistant\", \"content\": \"later\"}\n");
    assert_eq!(item(&server, "d").unwrap()["last_message_preview"], "later", "watch={watch}");
    std::fs::create_dir_all(logs.join("e")).unwrap();
    append(&logs, "e", "{\"role\": \"user\", \"content\": \"new there\"}\n");
    assert_eq!(item(&server, "e").unwrap()["last_message_preview"], "new there", "watch={watch}");
    // Deleted and made anew: ext4 hands the new directory the old one's inode number.
    std::fs::remove_dir_all(&logs).unwrap();
    std::fs::create_dir_all(logs.join("f")).unwrap();
    append(&logs, "f", "{\"role\": \"user\", \"content\": \"anew\"}\n");
    assert!(item(&server, "d").is_none(), "watch={watch}");
    assert_eq!(item(&server, "f").unwrap()["last_message_preview"], "anew", "watch={watch}");
    std::fs::create_dir_all(logs.join("g")).unwrap();
    append(&logs, "g", "{\"role\": \"user\", \"content\": \"after\"}\n");
    assert_eq!(item(&server, "g").unwrap()["last_message_preview"], "after", "watch={watch}");
    // A stopped server holds none of the user's limited watches (its safety sweep, asleep for an
    // hour here, included).
    let logs_dir = std::fs::metadata(&logs).unwrap();
    let watching = || inotify_watches().is_some_and(|w| w.contains(&(logs_dir.dev(), logs_dir.ino())));
    assert_eq!(watching(), watch);
    drop(server);
    let deadline = Instant::now() + Duration::from_secs(10);
    while watching() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!watching(), "watches left after the server stopped");
}

#[test]
fn read_your_writes_in_sweep_mode() {
    read_your_writes(false);
}

#[test]
fn read_your_writes_in_watch_mode() {
    read_your_writes(true);
}

/// A large archive's watches take a while to set up (a second for 100,000 conversations): the
/// server answers meanwhile, by sweeps, and from watches after. Every answer is exact, and what
/// changed while the watches were set up is seen once they are.
#[test]
fn answers_are_exact_while_the_watches_are_set_up_and_after() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let ids: Vec<String> = (0..3000).map(|i| format!("c{i:04}")).collect();
    for id in &ids {
        std::fs::create_dir_all(logs.join(id)).unwrap();
        append(&logs, id, "{\"role\": \"user\", \"content\": \"hi\"}\n");
    }
    let server = Server::start_setting_up(&logs, &tmp.path().join("db.sqlite3"), Config::default());
    let message = |n: usize| format!("{{\"role\": \"assistant\", \"content\": \"answer {n}\"}}\n");
    // Most likely while the watches are set up (the checks hold whenever it is).
    for (n, id) in ids.iter().step_by(500).enumerate() {
        append(&logs, id, &message(n));
        assert_eq!(item(&server, id).unwrap()["last_message_preview"], format!("answer {n}"), "{id}");
    }
    std::fs::write(logs.join("c2999/config.toml"), "[chat]\nname = \"Renamed\"\n").unwrap();
    // Then once every conversation directory is watched.
    let dirs: Vec<(u64, u64)> =
        ids.iter().map(|id| std::fs::metadata(logs.join(id)).unwrap()).map(|m| (m.dev(), m.ino())).collect();
    if let Some(watches) = inotify_watches() {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut watches = watches;
        while !dirs.iter().all(|d| watches.contains(d)) {
            assert!(Instant::now() < deadline, "the watches were never all set up");
            std::thread::sleep(Duration::from_millis(50));
            watches = inotify_watches().unwrap();
        }
    }
    let renamed = parse(&server.get("/api/v2/conversations?limit=3000").text().unwrap());
    let renamed = renamed.as_array().unwrap().iter().find(|i| i["id"] == "c2999").cloned().unwrap();
    assert_eq!(renamed["name"], "Renamed", "a change made while the watches were set up");
    for (n, id) in ids.iter().skip(250).step_by(500).enumerate() {
        append(&logs, id, &message(100 + n));
        assert_eq!(item(&server, id).unwrap()["last_message_preview"], format!("answer {}", 100 + n), "{id}");
    }
}

#[test]
fn auth_host_check_cors_health_and_metrics() {
    let (tmp, logs) = scratch_archive();
    let config = Config {
        token: Some("s3cret".into()),
        // As `--cors-origin "http://localhost:5173, https://chat.gptme.org,"` splits: gptme-server
        // trims each origin and skips empty ones.
        cors_origins: vec!["http://localhost:5173".into(), " https://chat.gptme.org".into(), "".into()],
        ..Config::default()
    };
    let server = Server::start(&logs, &tmp.path().join("db.sqlite3"), config, false);
    let url = server.url("/api/v2/conversations");
    let missing = client().get(&url).send().unwrap();
    assert_eq!(missing.status(), 401);
    assert!(parse(&missing.text().unwrap())["error"].is_string());
    assert_eq!(client().get(&url).bearer_auth("wrong").send().unwrap().status(), 401);
    assert_eq!(client().get(&url).bearer_auth("s3cret").send().unwrap().status(), 200);
    // The hosted web UI's preflight, then its GET with Content-Type: application/json.
    let preflight = client()
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", "https://chat.gptme.org")
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "authorization,content-type")
        .header("Access-Control-Request-Private-Network", "true")
        .send()
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    // As gptme-server answers a named origin: credentials (its auth cookie) and, for a public
    // page reaching a loopback server, Chrome's Private Network Access.
    for (name, value) in [
        ("access-control-allow-origin", "https://chat.gptme.org"),
        ("access-control-allow-credentials", "true"),
        ("access-control-allow-private-network", "true"),
        ("access-control-allow-headers", "authorization,content-type"),
    ] {
        assert_eq!(preflight.headers().get(name).and_then(|v| v.to_str().ok()), Some(value), "{name}");
    }
    let get = client()
        .get(&url)
        .bearer_auth("s3cret")
        .header("Origin", "https://chat.gptme.org")
        .header("Content-Type", "application/json")
        .send()
        .unwrap();
    assert_eq!(get.headers()["access-control-allow-origin"], "https://chat.gptme.org");
    assert_eq!(server.get("/healthz").status(), 200);
    let metrics = client().get(server.url("/metrics")).bearer_auth("s3cret").send().unwrap().text().unwrap();
    assert!(metrics.contains("convmeta_requests_total{route=\"list\",status=\"401\"} 2"), "{metrics}");
    assert!(metrics.contains("convmeta_conversations 2"), "{metrics}");
    assert!(metrics.contains("convmeta_refresh_duration_seconds_count"), "{metrics}");
    assert!(
        metrics.contains("convmeta_sweeps_total 3\n"),
        "sweep mode: a sweep per list request and for this scrape, none for the health check; {metrics}"
    );
    // The token where gptme-server takes it: a `bearer` header in any case, its cookie (what the
    // web UI's event streams send), the `token` parameter.
    let status = |r: reqwest::blocking::RequestBuilder| r.send().unwrap().status().as_u16();
    assert_eq!(status(client().get(&url).header("Authorization", "bearer s3cret")), 200);
    assert_eq!(status(client().get(&url).header("Cookie", "theme=dark; gptme_auth=s3cret")), 200);
    assert_eq!(status(client().get(format!("{url}?token=s3cret"))), 200);
    assert_eq!(status(client().get(&url).header("Cookie", "gptme_auth=wrong")), 401);
    let basic = client().get(&url).header("Authorization", "Basic czNjcmV0").send().unwrap();
    assert_eq!(basic.status(), 401);
    assert_eq!(parse(&basic.text().unwrap())["error"], "Invalid authentication scheme");
    // What gptme-server serves without a token (the web UI's page and assets, the API root)
    // passes on to the upstream (none here: a 404, not a 401); the rest is guarded here too, so
    // the token also guards an upstream that runs without auth, however the path is written.
    assert_eq!(server.get("/").status(), 404);
    assert_eq!(server.get("/assets/index.js").status(), 404);
    assert_eq!(server.get("/api/v2").status(), 404);
    assert_eq!(server.get("/api/v2/conversations/a/events").status(), 401);
    assert_eq!(status(client().delete(server.url("/%61pi/v2/conversations/a"))), 401);
    assert_eq!(status(client().post(server.url("/api/v2/auth/cookie"))), 401);

    // With auth off, only local Host names are served.
    let open = Server::start(&logs, &tmp.path().join("db2.sqlite3"), Config::default(), false);
    assert_eq!(
        client().get(open.url("/api/v2/conversations")).header("Host", "evil.example").send().unwrap().status(),
        403
    );
    assert_eq!(
        client().get(open.url("/api/v2/conversations")).header("Host", "localhost:5702").send().unwrap().status(),
        200
    );
    // A reverse proxy's name, allowed as gptme-server's `--allowed-hosts` allows it.
    let config = Config { allowed_hosts: vec!["gptme.local".into()], ..Config::default() };
    let proxied = Server::start(&logs, &tmp.path().join("db3.sqlite3"), config, false);
    let with_host = |host: &str| {
        client().get(proxied.url("/api/v2/conversations")).header("Host", host).send().unwrap().status().as_u16()
    };
    assert_eq!((with_host("GPTME.local:443"), with_host("gptme.local."), with_host("evil.example")), (200, 200, 403));
    // Without an upstream, other routes are a JSON 404; bad ids a 400 before anything else,
    // but for an encoded `/`, which matches no conversation route of gptme's.
    assert_eq!(open.get("/api/v2/conversations/a").status(), 404);
    assert_eq!(open.get("/api/v2/conversations/..%5Cetc").status(), 400);
    assert_eq!(open.get("/api/v2/conversations/..%2Fetc").status(), 404);
    assert_eq!(open.get("/api/v2/conversations/").status(), 404, "no id, no conversation: as gptme answers");
    // Other methods on the list are answered as Flask answers them: a JSON 405, and OPTIONS
    // (no CORS preflight here) with the methods allowed.
    let post = client().post(open.url("/api/v2/conversations")).body("{}").send().unwrap();
    assert_eq!((post.status().as_u16(), post.headers()["allow"].to_str().unwrap()), (405, "GET, HEAD, OPTIONS"));
    assert_eq!(
        post.text().unwrap(),
        r#"{"error": "The method is not allowed for the requested URL."}"#,
        "gptme's bytes"
    );
    let options = client().request(reqwest::Method::OPTIONS, open.url("/api/v2/conversations")).send().unwrap();
    assert_eq!((options.status().as_u16(), options.headers()["allow"].to_str().unwrap()), (200, "GET, HEAD, OPTIONS"));
}

#[test]
fn a_non_loopback_bind_needs_a_token_or_auth_turned_off() {
    let (tmp, logs) = scratch_archive();
    let out = crate::util::fail(
        crate::util::convmeta()
            .env_remove("GPTME_SERVER_TOKEN")
            .env_remove("GPTME_DISABLE_AUTH")
            .arg("serve")
            .arg("--logs")
            .arg(&logs)
            .args(["--addr", "0.0.0.0:0"]),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without authentication") && err.contains("GPTME_DISABLE_AUTH"), "{err}");

    let serve = |db: &str, envs: &[(&str, &str)]| {
        let (child, log, _) = spawn_serve(&logs, &tmp.path().join(db), "0.0.0.0:0", &[], envs);
        assert!(log.contains("listening on"), "{log}");
        (child, format!("http://127.0.0.1:{}/api/v2/conversations", listening_addr(&log).rsplit(':').next().unwrap()))
    };
    // GPTME_DISABLE_AUTH as gptme-server reads it: " true" is not "true", so the token holds.
    let (mut child, url) = serve("db1.sqlite3", &[("GPTME_DISABLE_AUTH", " true"), ("GPTME_SERVER_TOKEN", "t")]);
    assert_eq!(client().get(&url).send().unwrap().status(), 401);
    assert_eq!(client().get(&url).bearer_auth("t").send().unwrap().status(), 200);
    child.kill().unwrap();
    child.wait().unwrap();
    // Turned off on purpose: any address may be bound, as gptme-server allows (the operator
    // guards it); Host names are still checked.
    let (mut child, url) = serve("db2.sqlite3", &[("GPTME_DISABLE_AUTH", "TRUE")]);
    let with_host = |host: &str| client().get(&url).header("Host", host).send().unwrap().status().as_u16();
    assert_eq!((with_host("localhost:5702"), with_host("evil.example")), (200, 403));
    child.kill().unwrap();
    child.wait().unwrap();
}

/// `serve` raises its soft limit on open files to the hard one. Started at the usual soft limit
/// of 1,024, 1,100 connections that each send a byte and wait had kept it from accepting a
/// well-behaved client (or opening a log) until the 30 s it gives a request's head ran out.
#[test]
fn serve_is_not_starved_of_files_by_idle_connections() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    if limit.rlim_max < 2_500 {
        eprintln!("skipped: a hard limit of {} open files leaves no room for 1,100 connections", limit.rlim_max);
        return;
    }
    // This process holds the clients' ends.
    let raised = libc::rlimit { rlim_cur: limit.rlim_max, ..limit };
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) }, 0);
    let hard = limit.rlim_max.min(4_096);
    let r = restore("archive");
    let mut cmd = crate::util::serve_command(&r.arch, &r.db, "127.0.0.1:0", &[], &[("GPTME_DISABLE_AUTH", "true")]);
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            match libc::setrlimit(libc::RLIMIT_NOFILE, &libc::rlimit { rlim_cur: 1_024, rlim_max: hard }) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    let (mut child, said, _) = crate::util::start_serve(cmd);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let files =
        limits.lines().find(|l| l.starts_with("Max open files")).unwrap().split_whitespace().collect::<Vec<_>>();
    assert_eq!(files[3..5], [hard.to_string(), hard.to_string()], "{limits}");
    let addr = said.split("listening on http://").nth(1).unwrap().split_whitespace().next().unwrap();
    let addr: std::net::SocketAddr = addr.trim_end_matches(|c: char| !c.is_ascii_digit()).parse().unwrap();
    let waiting: Vec<std::net::TcpStream> = (0..1_100)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"G").unwrap();
            s
        })
        .collect();
    // Well within the 30 s those connections may wait, for an answer of milliseconds.
    let quick = reqwest::blocking::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    let answer = quick.get(format!("http://{addr}/api/v2/conversations?limit=1")).send().unwrap();
    assert_eq!(answer.status(), 200);
    drop(waiting);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Like gptme-server on a machine where gptme has not run yet: `serve` starts, answers an empty
/// list, and lists the first conversation once gptme makes the directory (in either mode). The
/// directory vanishing later answers an empty list again, and nothing of it is written by us.
#[test]
fn serve_starts_before_the_logs_directory_exists() {
    for mode in [&[][..], &["--watch"][..]] {
        let tmp = tempfile::tempdir().unwrap();
        let logs = tmp.path().join("not-yet").join("logs");
        let (mut child, log, later) = spawn_serve(&logs, &tmp.path().join("db.sqlite3"), "127.0.0.1:0", mode, &[]);
        assert!(log.contains("does not exist yet"), "{mode:?}: {log}");
        let addr = log.split("listening on http://").nth(1).unwrap().split_whitespace().next().unwrap();
        let addr = addr.trim_end_matches(|c: char| !c.is_ascii_digit());
        let get = |q: &str| {
            let r = client().get(format!("http://{addr}/api/v2/conversations{q}")).send().unwrap();
            (r.status().as_u16(), r.text().unwrap())
        };
        assert_eq!(get(""), (200, "[]\n".to_string()), "{mode:?}");
        assert_eq!(get("?paginated=1"), (200, "{\"conversations\":[],\"next_cursor\":null}\n".to_string()));
        assert!(!logs.exists(), "{mode:?}: made by us");
        std::fs::create_dir_all(logs.join("2026-01-01-first")).unwrap();
        append(&logs, "2026-01-01-first", "{\"role\": \"user\", \"content\": \"hello\"}\n");
        let ids = |body: &str| {
            items_of(&parse(body)).iter().map(|i| i["id"].as_str().unwrap().to_string()).collect::<Vec<_>>()
        };
        assert_eq!(ids(&get("").1), ["2026-01-01-first"], "{mode:?}");
        std::fs::create_dir_all(logs.join("2026-01-02-second")).unwrap();
        append(&logs, "2026-01-02-second", "{\"role\": \"user\", \"content\": \"again\"}\n");
        assert_eq!(ids(&get("").1), ["2026-01-02-second", "2026-01-01-first"], "{mode:?}");
        // The directory made since is told as expected (watched), not as one replaced.
        let mut said: Vec<String> = later.try_iter().collect();
        while !mode.is_empty() && !said.iter().any(|l| l.contains("the logs directory is there now; watching it")) {
            said.push(later.recv_timeout(Duration::from_secs(10)).expect("no word of the new directory"));
        }
        assert!(!said.iter().any(|l| l.contains("replaced") || l.contains("WARN")), "{mode:?}: {said:?}");
        std::fs::rename(&logs, tmp.path().join("aside")).unwrap();
        assert_eq!(get(""), (200, "[]\n".to_string()), "{mode:?}: gone again");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

/// `serve --watch` on an archive whose watches are set up within its start: the start's sweep is
/// the one the watch asks for, so its first requests do not sweep again (what cost the first
/// request 70 ms at 10,000 conversations), and a change is still seen at once.
#[test]
fn serve_watch_answers_its_first_requests_without_sweeping_again() {
    let (tmp, logs) = scratch_archive();
    let (mut child, log, _) = spawn_serve(&logs, &tmp.path().join("db.sqlite3"), "127.0.0.1:0", &["--watch"], &[]);
    let addr = log.split("listening on http://").nth(1).unwrap().split_whitespace().next().unwrap();
    let addr = addr.trim_end_matches(|c: char| !c.is_ascii_digit());
    let get = |path: &str| client().get(format!("http://{addr}{path}")).send().unwrap().text().unwrap();
    let sweeps = || {
        let metrics = get("/metrics");
        let line = metrics.lines().find(|l| l.starts_with("convmeta_sweeps_total ")).unwrap().to_owned();
        line.rsplit(' ').next().unwrap().parse::<u64>().unwrap()
    };
    assert!(log.contains("watching the archive for changes"), "{log}");
    for _ in 0..3 {
        assert_eq!(items_of(&parse(&get("/api/v2/conversations"))).len(), 2);
    }
    assert_eq!(sweeps(), 0, "a request swept");
    append(&logs, "a", "{\"role\": \"assistant\", \"content\": \"later\"}\n");
    let a = items_of(&parse(&get("/api/v2/conversations"))).iter().find(|i| i["id"] == "a").cloned().unwrap();
    assert_eq!(a["last_message_preview"], "later");
    assert_eq!(sweeps(), 0);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn serve_says_where_it_listens_refuses_a_busy_port_and_stops_on_sigterm() {
    for mode in [&[][..], &["--watch"][..]] {
        serves_and_stops(mode);
    }
}

fn serves_and_stops(mode: &[&str]) {
    let (tmp, logs) = scratch_archive();
    let (mut child, log, _) = spawn_serve(
        &logs,
        &tmp.path().join("db.sqlite3"),
        "127.0.0.1:0",
        mode,
        &[("GPTME_SERVER_ALLOWED_HOSTS", " gptme.local , proxy.example")],
    );
    assert!(log.contains("indexing the archive for the first time"), "{log}");
    // What the first index is to do, said before it reads (and, on a large archive, how far
    // it has come every few seconds).
    let (looking, reading) = (
        log.find("looking at the archive conversations=2").expect(&log),
        log.find("to read conversations=2").expect(&log),
    );
    assert!(looking < reading && reading < log.find("index up to date").unwrap(), "{log}");
    let addr = listening_addr(&log);
    let url = format!("http://{addr}/api/v2/conversations");
    assert_eq!(client().get(&url).send().unwrap().status(), 200);
    // Host names allowed through gptme-server's variable, as its `--allowed-hosts` reads it.
    let with_host = |host: &str| client().get(&url).header("Host", host).send().unwrap().status().as_u16();
    assert_eq!((with_host("gptme.local"), with_host("proxy.example:80"), with_host("evil.example")), (200, 200, 403));

    // A second server on the same port: one clear error.
    let out = crate::util::fail(
        crate::util::convmeta()
            .arg("serve")
            .arg("--logs")
            .arg(&logs)
            .arg("--db")
            .arg(tmp.path().join("db2.sqlite3"))
            .args(["--addr", &addr]),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");

    // SIGTERM: a clean exit.
    assert!(std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap().success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    // The database was closed cleanly (the last connection folds the WAL back and removes it),
    // and is intact and current.
    assert!(!tmp.path().join("db.sqlite3-wal").exists(), "closed cleanly");
    let index = convmeta::Index::open(&logs, &tmp.path().join("db.sqlite3")).unwrap();
    assert_eq!(index.status().unwrap().conversations, 2);
    drop(index);

    // Rows but no finished refresh, as a stopped backfill leaves them: said so, not "first time".
    let conn = rusqlite::Connection::open(tmp.path().join("db.sqlite3")).unwrap();
    conn.execute("DELETE FROM _meta WHERE key = 'last_refresh'", []).unwrap();
    drop(conn);
    let (mut child, log, _) = spawn_serve(&logs, &tmp.path().join("db.sqlite3"), "127.0.0.1:0", mode, &[]);
    assert!(log.contains("finishing the index a stopped backfill left"), "{log}");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A server whose stderr breaks (the program it was piped into ended) goes on answering: the
/// warnings it can no longer write are lost, not panicked over in the refresh that found them.
#[test]
fn a_server_whose_stderr_breaks_goes_on_answering() {
    let (tmp, logs) = scratch_archive();
    let mut child = crate::util::convmeta()
        .env("CONVMETA_LOG", "info")
        .env_remove("GPTME_SERVER_TOKEN")
        .env_remove("GPTME_DISABLE_AUTH")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .arg("serve")
        .arg("--logs")
        .arg(&logs)
        .arg("--db")
        .arg(tmp.path().join("db.sqlite3"))
        .args(["--addr", "127.0.0.1:0"])
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("listening on") {
        assert!(std::io::BufRead::read_line(&mut stderr, &mut seen).unwrap() > 0, "{seen}");
    }
    let url = format!("http://{}/api/v2/conversations", listening_addr(&seen));
    drop(stderr); // broken from here on
    for i in 0..3 {
        // Each a problem to warn about, found by the refresh of the request after it.
        std::fs::create_dir_all(logs.join(format!("bad{i}"))).unwrap();
        append(&logs, &format!("bad{i}"), "not json\n{\"role\": \"user\", \"content\": \"x\"}\n");
        let response = client().get(&url).send().unwrap();
        assert_eq!(response.status(), 200, "request {i}");
        let ids: Vec<String> =
            items_of(&parse(&response.text().unwrap())).iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect();
        assert!(ids.contains(&format!("bad{i}")), "{ids:?}");
    }
    assert!(child.try_wait().unwrap().is_none(), "the server exited");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// An entry of the logs directory that cannot be looked at (a symlink loop) is said once while
/// serving, not again on every request's sweep; in watch mode it is not watched, and the rest
/// is (it had turned watch mode into a sweep per request). Mended, it is listed. A name that is
/// not UTF-8, skipped, is said once too, not again at each listing of the changed directory.
#[test]
fn an_entry_that_cannot_be_looked_at_is_said_once_and_watched_around() {
    use std::os::unix::ffi::OsStrExt;
    for mode in [&[][..], &["--watch"][..]] {
        let (tmp, logs) = scratch_archive();
        std::os::unix::fs::symlink("loop", logs.join("loop")).unwrap();
        let not_utf8 = logs.join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
        std::fs::create_dir(&not_utf8).unwrap();
        std::fs::write(not_utf8.join("conversation.jsonl"), "").unwrap();
        let (mut child, log, later) = spawn_serve(&logs, &tmp.path().join("db.sqlite3"), "127.0.0.1:0", mode, &[]);
        let addr = listening_addr(&log);
        let get = |path: &str| client().get(format!("http://{addr}{path}")).send().unwrap().text().unwrap();
        let ids = || {
            let mut ids: Vec<String> = items_of(&parse(&get("/api/v2/conversations")))
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned())
                .collect();
            ids.sort();
            ids
        };
        for _ in 0..5 {
            assert_eq!(ids(), ["a", "b"], "{mode:?}");
        }
        if !mode.is_empty() {
            assert!(log.contains("watching the archive for changes"), "{log}");
            let metrics = get("/metrics");
            assert!(metrics.contains("convmeta_sweeps_total 0\n"), "a request swept: {metrics}");
        }
        // Mended: the loop now names a conversation.
        std::fs::remove_file(logs.join("loop")).unwrap();
        std::os::unix::fs::symlink(logs.join("a"), logs.join("loop")).unwrap();
        assert_eq!(ids(), ["a", "b", "loop"], "{mode:?}");
        append(&logs, "loop", "{\"role\": \"assistant\", \"content\": \"through the link\"}\n");
        let items = items_of(&parse(&get("/api/v2/conversations")));
        let item = items.iter().find(|i| i["id"] == "loop").unwrap();
        assert_eq!(item["last_message_preview"], "through the link", "{mode:?}");
        child.kill().unwrap();
        child.wait().unwrap();
        let said = log + &later.iter().collect::<Vec<_>>().join("\n");
        assert_eq!(said.matches("cannot stat conversation log").count(), 1, "{mode:?}: {said}");
        assert_eq!(said.matches("whose name is not UTF-8").count(), 1, "{mode:?}: {said}");
        assert!(!said.contains("cannot watch"), "{mode:?}: {said}");
    }
}

/// `serve --watch` and a log with another name (a hard link) outside the archive: a write through
/// that name sends the conversation's directory no event, so the log itself is watched, from the
/// start or from the first change of it the directory's watch sees after the link was made (the
/// link itself sends it none). It had shown only at the safety sweep.
#[test]
fn a_log_written_through_a_hard_link_outside_is_seen_in_watch_mode() {
    let (tmp, logs) = scratch_archive();
    let (outside_a, outside_b) = (tmp.path().join("a.jsonl"), tmp.path().join("b.jsonl"));
    std::fs::hard_link(logs.join("a/conversation.jsonl"), &outside_a).unwrap();
    let (mut child, log, _) = spawn_serve(&logs, &tmp.path().join("db.sqlite3"), "127.0.0.1:0", &["--watch"], &[]);
    assert!(log.contains("watching the archive for changes"), "{log}");
    let addr = listening_addr(&log);
    let get = |path: &str| client().get(format!("http://{addr}{path}")).send().unwrap().text().unwrap();
    let preview = |id: &str| {
        let items = items_of(&parse(&get("/api/v2/conversations")));
        items.iter().find(|i| i["id"] == id).unwrap()["last_message_preview"].clone()
    };
    let write = |path: &std::path::Path, text: &str| {
        let line = format!("{{\"role\": \"assistant\", \"content\": \"{text}\"}}\n");
        std::fs::OpenOptions::new().append(true).open(path).unwrap().write_all(line.as_bytes()).unwrap();
    };
    assert_eq!(preview("a"), "hi a");
    write(&outside_a, "through the link made before");
    assert_eq!(preview("a"), "through the link made before");
    std::fs::hard_link(logs.join("b/conversation.jsonl"), &outside_b).unwrap();
    assert_eq!(preview("b"), "hi b");
    write(&logs.join("b/conversation.jsonl"), "by its own name");
    assert_eq!(preview("b"), "by its own name");
    write(&outside_b, "through the link made while serving");
    assert_eq!(preview("b"), "through the link made while serving");
    assert!(get("/metrics").contains("convmeta_sweeps_total 0\n"), "a request swept");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// `serve` as systemd starts it: on the socket passed as descriptor 3 (with `LISTEN_PID` this
/// process's id: set by a shell that then runs it in its place), whatever `--addr` says; and
/// with `NOTIFY_SOCKET`, `READY=1` once serving, `STOPPING=1` at SIGTERM.
fn under_systemd(
    logs: &Path,
    db: &Path,
    passed: std::os::fd::RawFd,
    listen_pid: &str,
    addr: &str,
) -> std::process::Command {
    let notify = db.with_extension("notify");
    let inner = crate::util::serve_command(
        logs,
        db,
        addr,
        &[],
        &[("LISTEN_FDS", "1"), ("NOTIFY_SOCKET", notify.to_str().unwrap())],
    );
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!("export LISTEN_PID={listen_pid}; exec \"$@\""))
        .arg("sh")
        .arg(inner.get_program())
        .args(inner.get_args())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (name, value) in inner.get_envs() {
        match value {
            Some(value) => cmd.env(name, value),
            None => cmd.env_remove(name),
        };
    }
    // SAFETY: only dup2, which is async-signal-safe, between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || match libc::dup2(passed, 3) {
            -1 => Err(std::io::Error::last_os_error()),
            _ => Ok(()),
        });
    }
    cmd
}

#[test]
fn serves_the_socket_systemd_passes_and_says_when_it_is_ready() {
    use std::os::fd::AsRawFd;
    let (tmp, logs) = scratch_archive();
    let db = tmp.path().join("db.sqlite3");
    let notify = std::os::unix::net::UnixDatagram::bind(db.with_extension("notify")).unwrap();
    notify.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let told = || {
        let mut buf = [0u8; 512];
        let n = notify.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = |envs: &[(&str, &str)]| {
        let mut cmd = under_systemd(&logs, &db, listener.as_raw_fd(), "$$", "127.0.0.1:9");
        cmd.envs(envs.iter().copied());
        crate::util::start_serve(cmd)
    };
    let (mut child, said, _) = serve(&[]);
    assert!(said.contains(&format!("serving on the socket systemd passed ({addr}), not --addr")), "{said}");
    // The first index's progress, each time asking for more time, then ready.
    let before_ready: Vec<String> = std::iter::repeat_with(told).take_while(|t| !t.starts_with("READY=1")).collect();
    let statuses: Vec<&str> = before_ready.iter().map(|t| t.lines().next().unwrap()).collect();
    assert_eq!(
        statuses,
        ["STATUS=looking at the archive: 2 conversations", "STATUS=indexing: 2 conversations to read, 0 MB"]
    );
    assert!(before_ready.iter().all(|t| t.ends_with("\nEXTEND_TIMEOUT_USEC=60000000")), "{before_ready:?}");
    let items: Value = client().get(format!("http://{addr}/api/v2/conversations")).send().unwrap().json().unwrap();
    assert_eq!(items.as_array().map(Vec::len), Some(2), "{items}");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(told(), "STOPPING=1");
    assert!(child.wait().unwrap().success());
    // Started again (the index up to date), ready at once, with its status; with a watchdog
    // (`WatchdogSec=`), telling it that it lives.
    let (mut child, _, _) = serve(&[("WATCHDOG_USEC", "100000")]);
    assert_eq!(told(), format!("READY=1\nSTATUS=serving 2 conversations on {addr}"));
    assert_eq!((told(), told()), ("WATCHDOG=1".into(), "WATCHDOG=1".into()));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut after = told();
    while after == "WATCHDOG=1" {
        after = told();
    }
    assert_eq!(after, "STOPPING=1");
    assert!(child.wait().unwrap().success());
    // A watchdog asked of another process (`WATCHDOG_PID`) is not this one's.
    let (mut child, _, _) = serve(&[("WATCHDOG_USEC", "100000"), ("WATCHDOG_PID", "1")]);
    assert!(told().starts_with("READY=1"));
    notify.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    assert!(notify.recv(&mut [0u8; 64]).is_err(), "nothing told within five of its intervals");
    notify.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(told(), "STOPPING=1");
    assert!(child.wait().unwrap().success());

    // Not a listening TCP socket: refused, saying what systemd should pass.
    let file = std::fs::File::open(logs.join("a/conversation.jsonl")).unwrap();
    let out = under_systemd(&logs, &db, file.as_raw_fd(), "$$", "127.0.0.1:9").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("is no socket"), "{err}");
    // A connection (`Accept=yes`) rather than a socket that listens, over TCP or a Unix socket,
    // and a socket of datagrams.
    let elsewhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let connection = std::net::TcpStream::connect(elsewhere.local_addr().unwrap()).unwrap();
    let (unix_connection, _) = std::os::unix::net::UnixStream::pair().unwrap();
    let datagrams = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for passed in [connection.as_raw_fd(), unix_connection.as_raw_fd(), datagrams.as_raw_fd()] {
        let out = under_systemd(&logs, &db, passed, "$$", "127.0.0.1:9").output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let said = "not a TCP or Unix socket listening for connections: convmeta accepts them itself";
        assert!(!out.status.success() && err.contains(said), "{err}");
    }
    // A Unix socket (`ListenStream=/run/convmeta.sock`), served; its file is systemd's, kept.
    let path = tmp.path().join("unix.sock");
    let unix = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let (mut child, said, _) =
        crate::util::start_serve(under_systemd(&logs, &db, unix.as_raw_fd(), "$$", "127.0.0.1:9"));
    let passed = format!("serving on the socket systemd passed (unix:{}), not --addr", path.display());
    assert!(said.contains(&passed) && said.contains("listening on unix:"), "{said}");
    assert_eq!(unix_get(&path, "/api/v2/conversations").0, 200);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    assert!(path.exists(), "the file of the socket systemd passed was removed");
    // Passed to another process (LISTEN_PID not its own): not taken; --addr is listened on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (mut child, said, _) =
        crate::util::start_serve(under_systemd(&logs, &db, listener.as_raw_fd(), "1", "127.0.0.1:0"));
    let own = crate::util::listening_addr(&said);
    assert!(!said.contains("systemd passed") && own != listener.local_addr().unwrap().to_string(), "{said}");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// `--addr unix:PATH`: served through a Unix socket with no token (the file's permissions say
/// who may connect, as the loopback address says no other host); a socket file a killed server
/// left is taken over, while one a server answers on, or a file of another kind, is refused and
/// left alone; the file is removed when the server stops.
#[test]
fn serves_on_a_unix_socket() {
    let (tmp, logs) = scratch_archive();
    let socket = tmp.path().join("convmeta.sock");
    let addr = format!("unix:{}", socket.display());
    let command = |db: &str| crate::util::serve_command(&logs, &tmp.path().join(db), &addr, &[], &[]);
    // Refused at once: a server that listened instead is killed, failing the test.
    let refused = |cmd| {
        let out = crate::util::output_within(cmd, Duration::from_secs(60));
        assert!(!out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let (mut child, said, _) = crate::util::start_serve(command("db.sqlite3"));
    assert!(said.contains(&format!("listening on {addr}\n")), "{said}");
    let (status, body) = unix_get(&socket, "/api/v2/conversations");
    let listed =
        ok(convmeta().args(["list", "--json"]).arg("--logs").arg(&logs).arg("--db").arg(tmp.path().join("db.sqlite3")));
    assert_eq!((status, parse(&body)), (200, parse(&listed)));
    let err = refused(command("db2.sqlite3"));
    assert!(err.contains(&format!("cannot listen on {addr}: a server already listens on it")), "{err}");
    assert_eq!(unix_get(&socket, "/api/v2/conversations").0, 200, "the live server's socket was kept");

    child.kill().unwrap();
    child.wait().unwrap();
    assert!(socket.exists(), "a killed server removes nothing");
    let (mut child, said, _) = crate::util::start_serve(command("db.sqlite3"));
    assert!(said.contains(&format!("took over {addr}, which a server that stopped had left")), "{said}");
    assert_eq!(unix_get(&socket, "/api/v2/conversations").0, 200);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    assert!(!socket.exists(), "the socket file outlived its server");

    std::fs::write(&socket, "not a socket").unwrap();
    let err = refused(command("db.sqlite3"));
    assert!(err.contains(&format!("cannot listen on {addr}: a file that is not a socket is there")), "{err}");
    assert_eq!(std::fs::read_to_string(&socket).unwrap(), "not a socket");

    // Not in the archive, which convmeta never writes, however the path names it.
    let before = crate::util::snapshot(&logs);
    let inside = logs.join("a").join("..").join("convmeta.sock");
    let at = format!("unix:{}", inside.display());
    let err = refused(crate::util::serve_command(&logs, &tmp.path().join("db.sqlite3"), &at, &[], &[]));
    assert!(err.contains("is inside the logs directory") && err.contains("never writes"), "{err}");
    assert_eq!(crate::util::snapshot(&logs), before);
}

/// `--addr unix:@NAME`: a socket in Linux's abstract namespace, as systemd and `ss` name one: no
/// file is made, whatever the working directory (the logs directory too); a name in use is
/// refused; the name is free again when the server stops.
#[test]
#[cfg(target_os = "linux")]
fn serves_on_an_abstract_unix_socket() {
    let (tmp, logs) = scratch_archive();
    let since = std::time::SystemTime::UNIX_EPOCH.elapsed().unwrap().as_nanos();
    let name = format!("@convmeta-test-{}-{since}", std::process::id());
    let addr = format!("unix:{name}");
    let command = |db: &str| {
        let mut cmd = crate::util::serve_command(&logs, &tmp.path().join(db), &addr, &[], &[]);
        cmd.current_dir(&logs);
        cmd
    };
    let before = crate::util::snapshot(&logs);
    let (mut child, said, _) = crate::util::start_serve(command("db.sqlite3"));
    assert!(said.contains(&format!("listening on {addr}\n")), "{said}");
    assert_eq!(unix_get(Path::new(&name), "/api/v2/conversations").0, 200);
    let out = crate::util::output_within(command("db2.sqlite3"), Duration::from_secs(60));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains(&format!("cannot listen on {addr}: another socket has that name")),
        "{err}"
    );
    assert_eq!(unix_get(Path::new(&name), "/api/v2/conversations").0, 200, "the live server kept its name");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    assert_eq!(crate::util::snapshot(&logs), before, "a file was made for an abstract name");
    let (mut child, said, _) = crate::util::start_serve(command("db.sqlite3"));
    assert!(said.contains(&format!("listening on {addr}\n")), "the name was not freed: {said}");
    assert_eq!(unix_get(Path::new(&name), "/api/v2/conversations").0, 200);
    child.kill().unwrap();
}
