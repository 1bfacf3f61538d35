//! `serve --upstream`: forwarding to gptme-server (bodies, event streams, WebSockets, a body that
//! stops arriving, stopping), what `serve` says at start of the upstream it finds, and loops.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use convmeta::server::Config;

use crate::util::{
    append, client, convmeta, listening_addr, output_within, parse, raw_get, scratch_archive, spawn_serve, status_with,
    Server,
};

/// A stand-in gptme-server: echoes requests, streams events on demand, appends on POST.
fn upstream(
    logs: std::path::PathBuf,
    release: std::sync::Arc<tokio::sync::Notify>,
) -> (std::net::SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::routing::{any, get};
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        rt.block_on(async move {
            let echo = move |method: axum::http::Method, uri: axum::http::Uri, headers: axum::http::HeaderMap, body: String| {
                let counter = counter.clone();
                let logs = logs.clone();
                async move {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if method == axum::http::Method::POST {
                        if let Some(id) = uri.path().strip_prefix("/api/v2/conversations/") {
                            append(&logs, id, "{\"role\": \"user\", \"content\": \"posted\"}\n");
                        }
                    }
                    let h: BTreeMap<String, String> = headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect();
                    (axum::http::StatusCode::IM_A_TEAPOT, [("x-upstream", "yes")], serde_json::json!({"method": method.as_str(), "uri": uri.to_string(), "headers": h, "body": body}).to_string())
                }
            };
            let events = move || {
                let release = release.clone();
                async move {
                    let stream = async_stream_events(release);
                    ([("content-type", "text/event-stream")], axum::body::Body::from_stream(stream))
                }
            };
            let app = axum::Router::new().route("/api/v2/conversations/{id}/events", get(events)).fallback(any(echo));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (rx.recv().unwrap(), hits)
}

fn async_stream_events(
    release: std::sync::Arc<tokio::sync::Notify>,
) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> {
    futures_util::stream::unfold(0, move |n| {
        let release = release.clone();
        async move {
            match n {
                0 => Some((Ok("data: first\n\n".to_string()), 1)),
                1 => {
                    release.notified().await;
                    Some((Ok("data: second\n\n".to_string()), 2))
                }
                _ => None,
            }
        }
    })
}

/// A request whose body stops arriving is answered 408, and its connection closed, once nothing
/// has arrived for the read timeout: on our own routes and on forwarded ones (where it held a
/// connection to gptme-server too). A slow body that keeps moving gets through, though it takes
/// longer than the timeout in all.
#[test]
fn a_request_body_that_stops_arriving_is_let_go() {
    let (tmp, logs) = scratch_archive();
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let (up, hits) = upstream(logs.clone(), release);
    let config = Config {
        upstream: Some(format!("http://{up}")),
        sql: convmeta::server::SqlConfig { enabled: true, ..Default::default() },
        read_timeout: Duration::from_secs(1),
        ..Config::default()
    };
    let server = Server::start(&logs, &tmp.path().join("db.sqlite3"), config, false);
    let body = r#"{"sql": "SELECT 'moved' AS v"}"#;
    // Sends the head and the body's pieces `gap` apart, then reads the whole answer until the
    // server closes the connection.
    let exchange = |method_path: &str, pieces: &[&str], gap: Duration| {
        let mut s = std::net::TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let head = format!(
            "{method_path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            server.addr,
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        for piece in pieces {
            std::thread::sleep(gap);
            s.write_all(piece.as_bytes()).unwrap();
        }
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).expect("the server closes the connection");
        String::from_utf8_lossy(&answer).into_owned()
    };
    let stalled = [&body[..7]];
    for route in ["POST /api/v2/sql", "PUT /api/v2/conversations/a/config"] {
        let answer = exchange(route, &stalled, Duration::ZERO);
        assert!(answer.starts_with("HTTP/1.1 408"), "{route}: {answer}");
        assert!(answer.contains("the request body stopped arriving"), "{route}: {answer}");
    }
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0, "the upstream's handler never got a whole body");

    let pieces: Vec<&str> = (0..6).map(|i| &body[i * body.len() / 6..(i + 1) * body.len() / 6]).collect();
    let answer = exchange("POST /api/v2/sql", &pieces, Duration::from_millis(300));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("moved"), "{answer}");
    let answer = exchange("PUT /api/v2/conversations/a/config", &pieces, Duration::from_millis(300));
    assert!(answer.starts_with("HTTP/1.1 418"), "{answer}");
    assert!(answer.contains("SELECT 'moved'"), "{answer}");
}

#[test]
fn forwarding_passes_everything_through_and_refreshes_the_conversation() {
    let (tmp, logs) = scratch_archive();
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let (up, hits) = upstream(logs.clone(), release.clone());
    let config = Config { upstream: Some(format!("http://{up}")), ..Config::default() };
    let server = Server::start(&logs, &tmp.path().join("db.sqlite3"), config, false);

    let r = client()
        .put(server.url("/api/v2/conversations/a/config?x=1"))
        .header("X-Custom", "kept")
        .body("payload")
        .send()
        .unwrap();
    assert_eq!(r.status(), 418, "status passes through");
    assert_eq!(r.headers()["x-upstream"], "yes");
    let echo = parse(&r.text().unwrap());
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["uri"], "/api/v2/conversations/a/config?x=1");
    assert_eq!(echo["body"], "payload");
    assert_eq!(echo["headers"]["x-custom"], "kept");
    assert_eq!(echo["headers"]["host"], up.to_string(), "Host is the upstream's");
    assert_eq!(echo["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(echo["headers"]["x-forwarded-host"], server.addr.to_string());
    assert!(echo["headers"]["via"].as_str().unwrap().starts_with("1.1 convmeta-"), "{echo}");
    let served = client().get(server.url("/")).send().unwrap();
    assert_eq!(parse(&served.text().unwrap())["uri"], "/", "the web UI's routes are forwarded too");

    // A POST that changes a conversation refreshes it at once, with no list request (no sweep).
    let before = hits.load(std::sync::atomic::Ordering::SeqCst);
    client().post(server.url("/api/v2/conversations/a")).body("{}").send().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let shown = parse(&server.index.show("a").unwrap());
        if shown["messages"] == 2 {
            assert_eq!(shown["last_message_preview"], "posted");
            break;
        }
        assert!(Instant::now() < deadline, "the forwarded POST was not followed by a refresh");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), before + 1);

    // Server-sent events arrive one by one, before the upstream finishes the stream.
    let mut events = client().get(server.url("/api/v2/conversations/a/events")).send().unwrap();
    let mut buf = [0u8; 64];
    let n = events.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"data: first\n\n", "the first event arrives while the stream is open");
    release.notify_one();
    let mut rest = String::new();
    events.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "data: second\n\n");

    // Ids gptme refuses never reach the upstream, and are refused as gptme-server refuses them.
    let before = hits.load(std::sync::atomic::Ordering::SeqCst);
    for (bad, why) in [
        ("..", "Invalid conversation_id"),
        ("x%00", "Invalid conversation_id"),
        ("%5C", "Invalid conversation_id"),
        (&"y".repeat(256), "conversation_id too long"),
        (&format!("%20{}", "y".repeat(256)), "Invalid conversation_id"),
    ] {
        let (status, body) = raw_get(server.addr, &format!("/api/v2/conversations/{bad}"));
        assert_eq!((status, body), (400, format!("{{\"error\":\"{why}\"}}\n")), "{bad}");
    }
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), before);
    // A `/` in the id, percent-encoded, matches none of gptme's conversation routes: its router
    // answers, as the request came.
    let (status, body) = raw_get(server.addr, "/api/v2/conversations/a%2F..%2Fb");
    assert_eq!((status, parse(&body)["uri"].as_str()), (418, Some("/api/v2/conversations/a%2F..%2Fb")));
    // Every path goes as it came, as werkzeug reads it: no `..` or `%2e%2e` resolved, no `\`
    // taken for `/` (a browser's URL parser does those; gptme-server does not).
    for path in ["/api/v2/x/../config", "/api/v2/conversations/a/workspace/%2e%2e/x", "/api/v2/x\\y/./z"] {
        let (status, body) = raw_get(server.addr, path);
        assert_eq!((status, parse(&body)["uri"].as_str()), (418, Some(path)), "{path}");
    }
}

/// Starts `convmeta serve` as a process and waits for its listening line.
/// A WebSocket (gptme-server's preview proxy takes them) goes through: the switch is asked of
/// the upstream, and once it agrees, bytes flow both ways until either side closes.
#[test]
fn switched_protocols_are_forwarded() {
    use std::io::{BufRead, BufReader};
    fn head(reader: &mut impl BufRead) -> String {
        let mut head = String::new();
        while !head.ends_with("\r\n\r\n") {
            assert!(reader.read_line(&mut head).unwrap() > 0, "closed after {head:?}");
        }
        head
    }
    // An upstream that switches and then echoes, and one that declines.
    let up_addr = raw_upstream(|mut stream, mut reader, asked| {
        let asked = asked.to_ascii_lowercase();
        if !asked.contains("upgrade: websocket") || !asked.contains("connection: upgrade") {
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno");
            return;
        }
        stream
            .write_all(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-accept: ok\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 64];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => stream.write_all(&buf[..n]).unwrap(),
            }
        }
    });
    let (tmp, logs) = scratch_archive();
    let config = Config { upstream: Some(format!("http://{up_addr}")), ..Config::default() };
    let server = Server::start(&logs, &tmp.path().join("db.sqlite3"), config, false);
    let mut client = std::net::TcpStream::connect(server.addr).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        client,
        "GET /preview/6080/websockify HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: k\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let answer = head(&mut reader).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 101"), "{answer}");
    assert!(answer.contains("sec-websocket-accept: ok") && answer.contains("upgrade: websocket"), "{answer}");
    for message in ["hello", "both ways"] {
        client.write_all(message.as_bytes()).unwrap();
        let mut echoed = vec![0u8; message.len()];
        reader.read_exact(&mut echoed).unwrap();
        assert_eq!(echoed, message.as_bytes());
    }
    // A plain request to the same route is forwarded as one.
    assert_eq!(raw_get(server.addr, "/preview/6080/websockify").0, 400);
}

/// A stand-in upstream speaking raw HTTP/1.1: a thread per connection reads the request's head
/// and hands the connection, its reader and the head to `answer`. Returns its address.
fn raw_upstream(
    answer: impl Fn(std::net::TcpStream, std::io::BufReader<std::net::TcpStream>, String) + Copy + Send + 'static,
) -> std::net::SocketAddr {
    use std::io::BufRead;
    let up = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = up.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in up.incoming() {
            let stream = stream.unwrap();
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                while !head.ends_with("\r\n\r\n") {
                    if reader.read_line(&mut head).unwrap_or(0) == 0 {
                        return;
                    }
                }
                answer(stream, reader, head);
            });
        }
    });
    addr
}

/// An upstream that answers every request with an event stream that never ends: an event, then
/// `chunk` bytes of pings as fast as the client takes them. Returns its address.
fn endless_event_stream_upstream(chunk: usize) -> std::net::SocketAddr {
    raw_upstream(move |mut stream, _, _| {
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        let event = b"data: connected\n\n";
        let ping = format!("{:x}\r\n{}\r\n", chunk, ":".repeat(chunk));
        let mut out = format!("{head}{:x}\r\n", event.len()).into_bytes();
        out.extend_from_slice(event);
        out.extend_from_slice(b"\r\n");
        if stream.write_all(&out).is_err() {
            return;
        }
        while stream.write_all(ping.as_bytes()).is_ok() {
            std::thread::sleep(Duration::from_millis(if chunk < 1000 { 50 } else { 0 }));
        }
    })
}

/// A client of the web UI always holds an event stream open; Ctrl-C must still stop the server
/// (it used to wait for the stream forever), and a client that stopped reading must not hold it
/// up past the grace period.
#[test]
fn stopping_ends_event_streams_and_cuts_stalled_clients() {
    let (tmp, logs) = scratch_archive();
    let ask = |addr: std::net::SocketAddr| {
        let mut client = std::net::TcpStream::connect(addr).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(client, "GET /api/v2/conversations/a/events HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("data: connected") {
            let n = client.read(&mut buf).unwrap();
            assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
        }
        client
    };

    // A reading client: its stream ends, properly terminated, and the server stops, though the
    // grace period is an hour.
    let config = Config {
        upstream: Some(format!("http://{}", endless_event_stream_upstream(8))),
        shutdown_grace: Duration::from_secs(3600),
        ..Config::default()
    };
    let mut server = Server::start(&logs, &tmp.path().join("db.sqlite3"), config, false);
    let mut client = ask(server.addr);
    assert!(server.stop_within(Duration::from_secs(60)), "the server waited for the event stream");
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.ends_with(b"0\r\n\r\n"), "the stream was not ended cleanly: {:?}", String::from_utf8_lossy(&rest));

    // A client that stopped reading (its socket buffers full): cut off after the grace period.
    let config = Config {
        upstream: Some(format!("http://{}", endless_event_stream_upstream(64 * 1024))),
        shutdown_grace: Duration::from_secs(1),
        ..Config::default()
    };
    let mut server = Server::start(&logs, &tmp.path().join("db2.sqlite3"), config, false);
    let _stalled = ask(server.addr);
    std::thread::sleep(Duration::from_millis(500));
    assert!(server.stop_within(Duration::from_secs(60)), "a client that stopped reading held the server up");
}

/// gptme-server shares the token it made up in a file while it runs; a convmeta given no token
/// asks for that one, takes a restarted gptme-server's new one, and asks for none while there is
/// no file.
#[test]
fn the_token_gptme_server_made_up_is_asked_for() {
    let (tmp, logs) = scratch_archive();
    let file = tmp.path().join("server-token");
    let config = Config { token_file: Some(file.clone()), ..Config::default() };
    let server = Server::start(&logs, &tmp.path().join("db.sqlite3"), config, false);
    let list = server.url("/api/v2/conversations");
    let status = |token: Option<&str>| status_with(&list, token);
    assert_eq!(status(None), 200, "no file: auth off, as with no token at all");
    // The file is read again every second: a new token is taken within about that (30 s bounds
    // the wait, for a test that fails rather than hangs).
    let taken = |token: &str| {
        std::fs::write(&file, format!("{token}\n")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while (status(None), status(Some(token))) != (401, 200) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    taken("first");
    assert_eq!((status(None), status(Some("first"))), (401, 200));
    taken("second");
    assert_eq!((status(Some("first")), status(Some("second"))), (401, 200));
}

/// A stand-in gptme-server of `version` that guards its routes with `token` (if any). Returns its
/// address.
fn gptme_of_version(version: &'static str, token: Option<&'static str>) -> std::net::SocketAddr {
    use axum::routing::get;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let user = move |headers: axum::http::HeaderMap| async move {
                let presented = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
                match token {
                    Some(t) if presented != Some(format!("Bearer {t}")) => (axum::http::StatusCode::UNAUTHORIZED, "{}"),
                    _ => (axum::http::StatusCode::OK, "{\"name\": \"User\"}"),
                }
            };
            let app = axum::Router::new()
                .route(
                    "/api/v2",
                    get(move || async move { format!("{{\"api_version\": 2, \"version\": \"{version}\"}}") }),
                )
                .route("/api/v2/user", get(user));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

/// The commonest ways a web UI through convmeta fails are said at start, before serving: the
/// two servers' tokens differ (every forwarded request a 401), nothing answers at `--upstream`
/// (a 502), or the upstream is a gptme build whose answers convmeta was not checked against.
#[test]
fn serve_says_at_start_what_the_upstream_will_make_of_forwarded_requests() {
    let (tmp, logs) = scratch_archive();
    let start_log = |upstream: String, token: Option<&str>| {
        let db = tmp.path().join(format!("db-{}.sqlite3", upstream.len() + token.map_or(0, str::len)));
        let envs: Vec<(&str, &str)> = token.map(|t| ("GPTME_SERVER_TOKEN", t)).into_iter().collect();
        let (mut child, log, _) = spawn_serve(&logs, &db, "127.0.0.1:0", &["--upstream", &upstream], &envs);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(log.contains("listening on"), "{log}");
        log
    };
    let guarded = format!("http://{}", gptme_of_version("0.35.1", Some("secret")));
    let log = start_log(guarded.clone(), Some("secret"));
    assert!(log.contains(&format!("forwarding to gptme-server 0.35.1 at {guarded}")) && !log.contains("WARN"), "{log}");
    // Where to open the UI, its token where gptme's UI reads it (as gptme-server prints it).
    assert!(log.contains("; open the web UI at http://127.0.0.1:") && log.contains("/#userToken=secret"), "{log}");
    let log = start_log(guarded.clone(), Some("another"));
    assert!(log.contains("refuses convmeta's token") && log.contains("GPTME_SERVER_TOKEN"), "{log}");
    let log = start_log(guarded.clone(), None);
    assert!(log.contains("asks for a token and convmeta has none"), "{log}");
    // No token given, but gptme-server shares the one it made up: that one is asked for, from
    // start, or from when gptme-server (started after us) shares it, and the UI's address with
    // it is said then.
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("gptme")).unwrap();
    let data_home = data.to_str().unwrap();
    let shared = |db: &str| {
        spawn_serve(
            &logs,
            &tmp.path().join(db),
            "127.0.0.1:0",
            &["--upstream", &guarded],
            &[("XDG_DATA_HOME", data_home)],
        )
    };
    let (mut child, log, later) = shared("db-shared-later.sqlite3");
    assert!(log.contains("asks for a token and convmeta has none"), "{log}");
    std::fs::write(data.join("gptme/server-token"), "secret\n").unwrap();
    // (Silence for 30 s ends the wait: the failure this looks for is a line never said.)
    let said = std::iter::from_fn(|| later.recv_timeout(Duration::from_secs(30)).ok())
        .find(|line| line.contains("shared a new token"))
        .unwrap_or_default();
    assert!(said.contains("open the web UI at http://127.0.0.1:") && said.ends_with("/#userToken=secret"), "{said}");
    let status =
        |token: Option<&str>| status_with(&format!("http://{}/api/v2/conversations", listening_addr(&log)), token);
    assert_eq!((status(None), status(Some("secret"))), (401, 200));
    child.kill().unwrap();
    child.wait().unwrap();
    let (mut child, log, _) = shared("db-shared.sqlite3");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(log.contains("asking for the token gptme-server made up"), "{log}");
    assert!(log.contains("forwarding to gptme-server 0.35.1") && log.contains("/#userToken=secret"), "{log}");

    let newer = format!("http://{}", gptme_of_version("0.36.0", None));
    let log = start_log(newer, None);
    assert!(log.contains("gptme-server 0.36.0") && log.contains("as gptme 0.35.1 does"), "{log}");
    // A later build checked against convmeta's answers is not warned about.
    let checked = format!("http://{}", gptme_of_version("0.35.2.dev20261022", None));
    let log = start_log(checked.clone(), None);
    assert!(log.contains(&format!("forwarding to gptme-server 0.35.2.dev20261022 at {checked}")), "{log}");
    assert!(!log.contains("WARN"), "{log}");

    // A port nothing listens on (taken, then let go).
    let nothing = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let log = start_log(format!("http://{nothing}"), None);
    assert!(log.contains("nothing answers at --upstream") && log.contains("502"), "{log}");
    // And the 502 itself says why.
    let config = Config { upstream: Some(format!("http://{nothing}")), ..Config::default() };
    let server = Server::start(&logs, &tmp.path().join("db.sqlite3"), config, false);
    let answer = server.get("/api/v2");
    assert_eq!(answer.status(), 502);
    let error = parse(&answer.text().unwrap())["error"].as_str().unwrap().to_string();
    assert!(error.contains("unreachable") && error.to_lowercase().contains("refused"), "{error}");
}

/// An `--upstream` that leads back to the server would have each forwarded request forwarded
/// again, without end (a connection and a task each, until the process runs out). `serve`
/// refuses to start with its own address as the upstream; a loop through another server is
/// caught by the `Via` the server adds to what it forwards: the request that comes back gets a
/// 508, which goes back the way it came.
#[test]
fn an_upstream_that_leads_back_is_refused_or_answered_508() {
    let (tmp, logs) = scratch_archive();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let mut serve = convmeta();
    serve.args(["serve", "--logs"]).arg(&logs).arg("--db").arg(tmp.path().join("own.sqlite3"));
    serve.args(["--addr", &addr, "--upstream", &format!("http://localhost:{port}/")]);
    let out = output_within(serve, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("is this server's own address"), "{stderr}");

    // A relay (a proxy of another kind) that takes every connection back to the server.
    let relay = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let relay_addr = relay.local_addr().unwrap();
    let (target_tx, target) = std::sync::mpsc::channel::<std::net::SocketAddr>();
    std::thread::spawn(move || {
        let target = target.recv().unwrap();
        for client in relay.incoming().flatten() {
            let server = std::net::TcpStream::connect(target).unwrap();
            let (mut from_client, mut to_server) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || std::io::copy(&mut from_client, &mut to_server).ok());
            std::thread::spawn(move || {
                let (mut from_server, mut to_client) = (server, client);
                std::io::copy(&mut from_server, &mut to_client).ok();
                to_client.shutdown(std::net::Shutdown::Both).ok();
            });
        }
    });
    let config = Config { upstream: Some(format!("http://{relay_addr}")), ..Config::default() };
    let server = Server::start(&logs, &tmp.path().join("db.sqlite3"), config, false);
    target_tx.send(server.addr).unwrap();
    let answer = server.get("/api/v2/conversations/a/messages");
    assert_eq!(answer.status(), 508);
    assert!(answer.text().unwrap().contains("--upstream leads to this server"));
    // The list is convmeta's own, and still answers.
    assert_eq!(server.get("/api/v2/conversations").status(), 200);
}
