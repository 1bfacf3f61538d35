//! The drop-in HTTP server: gptme-server's conversation list, fresh on every request, plus
//! forwarding of every other route to a real gptme-server.

mod auth;
mod compress;
mod forward;
mod list;
mod listener;
mod metrics;
mod search;
mod sql;
mod stall;
pub mod systemd;
mod usage;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, Any, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

pub use forward::{check_upstream, leads_here, UpstreamCheck};
pub use list::Params;
pub use listener::{abstract_name, Address, Listener};
pub use metrics::Metrics;

use crate::error::{Error, Result};
use crate::watch::Watch;
use crate::Index;
use listener::{Connection, Stream};

/// How the server is set up.
#[derive(Clone)]
pub struct Config {
    /// The bearer token clients must send; None turns auth off (but see `token_file`).
    pub token: Option<String>,
    /// Without `token`: the file where gptme-server shares the token it made up. While the file
    /// holds one, that token is asked for; it is read again every second, so the new token of a
    /// gptme-server started (or restarted) later is taken, and the web UI's address with it is
    /// said.
    pub token_file: Option<std::path::PathBuf>,
    /// A real gptme-server to forward every other route to (`http://host:port`).
    pub upstream: Option<String>,
    /// Origins allowed to call from a browser (`*` for any); empty: no CORS headers.
    pub cors_origins: Vec<String>,
    /// With auth off, `Host` names served besides local ones (a reverse proxy's name).
    pub allowed_hosts: Vec<String>,
    pub sql: SqlConfig,
    /// How long a client may take to send a request's headers, sit idle between requests, or
    /// pause within a request's body.
    pub read_timeout: Duration,
    /// How long an answer may wait on a client that reads none of it before the connection is
    /// closed: the answer is held in memory meanwhile.
    pub send_timeout: Duration,
    /// Once asked to stop, how long requests in flight may take to finish before their
    /// connections are closed anyway (a client that stopped reading, say).
    pub shutdown_grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            token: None,
            token_file: None,
            upstream: None,
            cors_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            sql: SqlConfig::default(),
            read_timeout: Duration::from_secs(30),
            send_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// `/api/v2/sql`: off unless enabled; each statement is capped in time, rows and bytes, and at
/// most `max_running` run at once.
#[derive(Clone)]
pub struct SqlConfig {
    pub enabled: bool,
    pub timeout: Duration,
    pub max_rows: usize,
    pub max_bytes: usize,
    /// Statements beyond this wait their turn, holding no thread (by default one a core: more
    /// would share the same cores, each then slower and likelier to run over its time limit,
    /// and hold more answers in memory at once).
    pub max_running: usize,
}

impl Default for SqlConfig {
    fn default() -> Self {
        SqlConfig {
            enabled: false,
            timeout: Duration::from_secs(2),
            max_rows: 10_000,
            max_bytes: 32 << 20,
            max_running: crate::refresh::default_jobs(),
        }
    }
}

/// How often `/healthz` may try a refresh while refreshes fail.
const HEALTH_RETRY: Duration = Duration::from_secs(1);

/// How long a sweep waits for other requests to join it.
const SWEEP_GATHER: Duration = Duration::from_millis(2);

/// What the handlers share.
pub struct AppState {
    pub index: Arc<Index>,
    config: Config,
    upstream: Option<forward::Upstream>,
    pub metrics: Metrics,
    watch: Option<Watch>,
    answers: list::AnswerCache,
    /// Set when the server stops: forwarded answers that would never end on their own (event
    /// streams) end then.
    stopping: tokio::sync::watch::Sender<bool>,
    /// What `Config::token_file` held when last read.
    shared_token: std::sync::RwLock<Option<String>>,
    /// When and why the last refresh failed, while it is the last (for `/healthz`).
    refresh_failure: std::sync::Mutex<Option<(std::time::Instant, String)>>,
    /// One permit per SQL statement that may run now (`SqlConfig::max_running`).
    sql_slots: tokio::sync::Semaphore,
    /// Set with `stopping`, where SQL statements (on blocking threads) read it: they stop then
    /// rather than hold the server up until their time limits.
    stop_statements: Arc<std::sync::atomic::AtomicBool>,
    /// Requests being answered, and a wake-up for when the last of them ends: memory freed while
    /// answering them is then handed back to the system.
    in_flight: std::sync::atomic::AtomicUsize,
    went_idle: tokio::sync::Notify,
}

impl AppState {
    pub fn new(index: Arc<Index>, config: Config, watch: Option<Watch>) -> Result<Arc<AppState>> {
        let upstream = config.upstream.as_deref().map(forward::Upstream::new).transpose()?;
        Ok(Arc::new(AppState {
            index,
            upstream,
            metrics: Metrics::default(),
            watch,
            answers: Default::default(),
            stopping: tokio::sync::watch::Sender::new(false),
            shared_token: Default::default(),
            refresh_failure: Default::default(),
            sql_slots: tokio::sync::Semaphore::new(config.sql.max_running.max(1)),
            stop_statements: Default::default(),
            in_flight: Default::default(),
            went_idle: Default::default(),
            config,
        }))
    }

    /// The token clients must present now, if any: `Config::token`, else what gptme-server's
    /// token file held when last read.
    fn token(&self) -> Option<String> {
        self.config.token.clone().or_else(|| self.shared_token.read().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// Takes what the token file holds now; whether that is a token not held before.
    fn take_shared_token(&self, token: Option<String>) -> bool {
        let mut shared = self.shared_token.write().unwrap_or_else(|e| e.into_inner());
        let new = token.is_some() && *shared != token;
        *shared = token;
        new
    }

    /// Resolves once the server is stopping.
    pub(crate) fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stopping = self.stopping.subscribe();
        async move {
            let _ = stopping.wait_for(|stopping| *stopping).await;
        }
    }

    /// Makes the index reflect every change completed before this call (blocking): a sweep, or
    /// in watch mode the conversations the watcher marked.
    pub fn freshen(&self) -> Result<()> {
        let started = std::time::Instant::now();
        let stats = match &self.watch {
            Some(watch) => watch.freshen(&self.index),
            // Concurrent requests share sweeps; a short gathering window lets a burst share one.
            None => self.index.refresh_gathered(SWEEP_GATHER, || self.index.refresh_unlocked(None)).map(Some),
        };
        // A logs directory not there (yet) lists as empty: no failure.
        let failure =
            stats.as_ref().err().filter(|e| !e.is_logs_missing()).map(|e| (std::time::Instant::now(), e.to_string()));
        *self.refresh_failure.lock().unwrap_or_else(|p| p.into_inner()) = failure;
        if let Some(stats) = stats? {
            self.metrics.record_refresh(&stats, started.elapsed());
        }
        Ok(())
    }

    /// Reads one conversation again, right away (after a forwarded request changed it).
    pub fn refresh_one(&self, id: &str) -> Result<()> {
        let started = std::time::Instant::now();
        let stats = self.index.refresh_ids(&[id.to_owned()])?;
        self.metrics.record_refresh(&stats, started.elapsed());
        Ok(())
    }
}

/// A token file as gptme-server's clients read it: its text, stripped; None when absent or blank.
pub async fn read_token_file(path: &std::path::Path) -> Option<String> {
    let text = tokio::fs::read_to_string(path).await.ok()?;
    let token = text.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

/// Where to open gptme's web UI through us, as gptme-server prints its own: the token in the
/// fragment, which the UI reads (and then drops from the address bar) and which no request
/// carries. A wildcard address is shown as loopback.
pub fn web_ui_url(bound: std::net::SocketAddr, token: Option<&str>) -> String {
    let ip = match bound.ip() {
        ip if ip.is_unspecified() => std::net::IpAddr::from([127, 0, 0, 1]),
        ip => ip,
    };
    let base = std::net::SocketAddr::new(ip, bound.port());
    match token {
        Some(token) => {
            const KEEP: &percent_encoding::AsciiSet =
                &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
            format!("http://{base}/#userToken={}", percent_encoding::utf8_percent_encode(token, KEEP))
        }
        None => format!("http://{base}/"),
    }
}

/// Reads `Config::token_file` every second until the server stops: gptme-server shares its
/// token only once it is up (often after us) and a new one whenever it restarts.
/// `bound` is the address to open the web UI at, listening on TCP.
async fn follow_token_file(state: Arc<AppState>, path: std::path::PathBuf, bound: Option<std::net::SocketAddr>) {
    let stopping = state.stopping();
    tokio::pin!(stopping);
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = &mut stopping => return,
        }
        let token = read_token_file(&path).await;
        if state.take_shared_token(token.clone()) {
            match bound {
                Some(bound) => tracing::info!(
                    "gptme-server shared a new token: open the web UI at {}",
                    web_ui_url(bound, token.as_deref())
                ),
                None => tracing::info!("gptme-server shared a new token"),
            }
        }
    }
}

/// Runs blocking work (files, SQLite) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::Refresh(format!("worker failed: {e}")))?
}

/// An answer of convmeta's own (`/api/v2/usage`, `/api/v2/search`): the query's parameters
/// read by `parse` (one it refuses is 400, with why), then, on a blocking thread, a refresh as
/// fresh as the list's and `answer`, serialized as JSON; an unknown conversation is 404, any
/// other error 503.
pub(crate) async fn own_answer<P: Send + 'static, A: serde::Serialize>(
    state: Arc<AppState>,
    query: Option<String>,
    parse: fn(&str) -> std::result::Result<P, String>,
    answer: impl FnOnce(&AppState, P) -> Result<A> + Send + 'static,
) -> Response {
    let params = match parse(query.as_deref().unwrap_or_default()) {
        Ok(p) => p,
        Err(message) => return json_error(StatusCode::BAD_REQUEST, &message),
    };
    let body = blocking(move || {
        match state.freshen() {
            Err(e) if e.is_logs_missing() => {} // as the list: what the index holds
            other => other?,
        }
        let answer = answer(&state, params)?;
        Ok(serde_json::to_string(&answer).expect("JSON of plain values") + "\n")
    })
    .await;
    match body {
        Ok(body) => list::json_response(StatusCode::OK, body),
        Err(e @ Error::NotFound { .. }) => json_error(StatusCode::NOT_FOUND, &e.to_string()),
        Err(e) => {
            tracing::error!(error = %e, "answer failed");
            json_error(StatusCode::SERVICE_UNAVAILABLE, &format!("index unavailable: {e}"))
        }
    }
}

/// A boolean parameter, as `true`/`false` or `1`/`0`.
pub(crate) fn flag(key: &str, value: &str) -> std::result::Result<bool, String> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("{key} must be true or false")),
    }
}

/// `{"error": message}` as gptme-server writes errors.
pub(crate) fn json_error(status: StatusCode, message: &str) -> Response {
    let mut body = String::from("{\"error\":");
    crate::json::push_py_str(&mut body, message);
    body.push_str("}\n");
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The router, for `serve` and for tests that drive it without a socket.
pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/api/v2/conversations", get(list::handler).fallback(|m| other_method(m, "GET, HEAD, OPTIONS")))
        .route(
            "/api/v2/sql",
            get(sql::handler).post(sql::handler).fallback(|m| other_method(m, "GET, HEAD, POST, OPTIONS")),
        )
        .route("/api/v2/usage", get(usage::handler).fallback(|m| other_method(m, "GET, HEAD, OPTIONS")))
        .route("/api/v2/search", get(search::handler).fallback(|m| other_method(m, "GET, HEAD, OPTIONS")))
        .route("/metrics", get(metrics::handler))
        // Compressed as gptme-server compresses; not the forwarded routes (see `compress`).
        .route_layer(middleware::from_fn(compress::large_answers_off_the_async_threads))
        .route_layer(compress::layer())
        .fallback(forward::handler)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        // flask-compress marks every answer of gptme-server as varying with `Accept-Encoding`,
        // compressed or not (a 304, an error, a refused token or id), so a cache keeps them
        // apart: ours too. A forwarded answer keeps the upstream's.
        .layer(SetResponseHeaderLayer::if_not_present(header::VARY, HeaderValue::from_static("Accept-Encoding")));
    let app = Router::new()
        .route("/healthz", get(healthz))
        .merge(api)
        .layer(middleware::from_fn_with_state(state.clone(), count));
    let app = match cors(&state.config.cors_origins) {
        Some(cors) => app.layer(cors),
        None => app,
    };
    app.with_state(state)
}

/// CORS as gptme-server sets it up (flask-cors): named origins may send credentials (its auth
/// cookie) and, from a public page, reach this server on the private network (Chrome's Private
/// Network Access preflight); `*` allows any origin, with neither.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    // As gptme-server reads `--cors-origin a, b,`: each trimmed, empty ones skipped.
    let origins: Vec<&str> = origins.iter().map(|o| o.trim()).filter(|o| !o.is_empty()).collect();
    if origins.is_empty() {
        return None;
    }
    let layer = CorsLayer::new().expose_headers([header::ETAG]).max_age(Duration::from_secs(600));
    Some(if origins.contains(&"*") {
        layer.allow_origin(AllowOrigin::any()).allow_methods(Any).allow_headers(Any)
    } else {
        layer
            .allow_origin(AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok())))
            .allow_methods(AllowMethods::mirror_request())
            .allow_headers(AllowHeaders::mirror_request())
            .allow_credentials(true)
            .allow_private_network(true)
    })
}

/// Auth as gptme-server does it (see [`auth`]), and, with auth off, only local `Host` names (so a
/// web page elsewhere cannot reach a loopback server through DNS rebinding).
async fn guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if request.method() == Method::OPTIONS {
        return next.run(request).await;
    }
    match &state.token() {
        Some(token) if auth::needs_token(request.method(), request.uri().path()) => {
            let given = match auth::presented(request.headers(), request.uri().query()) {
                Ok(Some(given)) => given,
                Ok(None) => return json_error(StatusCode::UNAUTHORIZED, "Missing authentication credentials"),
                Err(why) => return json_error(StatusCode::UNAUTHORIZED, why),
            };
            if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
                return json_error(StatusCode::UNAUTHORIZED, "Invalid or expired token");
            }
        }
        Some(_) => {}
        None => {
            let host = request.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
            if !auth::host_allowed(host, &state.config.allowed_hosts) {
                return json_error(StatusCode::FORBIDDEN, "Host not allowed without authentication");
            }
        }
    }
    next.run(request).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Counts requests by route and status for `/metrics`.
async fn count(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let route = metrics::route_label(request.uri().path());
    let _answering = Answering::new(&state);
    let response = next.run(request).await;
    state.metrics.record_request(route, response.status().as_u16());
    response
}

/// One request in `AppState::in_flight`, until dropped (answered, or its client gone).
struct Answering<'a>(&'a AppState);

impl<'a> Answering<'a> {
    fn new(state: &'a AppState) -> Self {
        state.in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Answering(state)
    }
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed) == 1 {
            self.0.went_idle.notify_one();
        }
    }
}

/// How long the server must have been idle before it hands memory back: long enough for the
/// last answers to leave, and for a burst's stragglers to arrive.
const IDLE_BEFORE_TRIM: Duration = Duration::from_secs(1);

/// Once no request has been in flight for `IDLE_BEFORE_TRIM`, hands the memory the allocator
/// kept from freed answers back to the system. glibc returns only what lies at the top of its
/// heaps on its own, so a burst of large answers would otherwise keep the process at its peak.
async fn trim_when_idle(state: Arc<AppState>) {
    let stopping = state.stopping();
    tokio::pin!(stopping);
    loop {
        tokio::select! {
            () = state.went_idle.notified() => {}
            () = &mut stopping => return,
        }
        tokio::time::sleep(IDLE_BEFORE_TRIM).await;
        if state.in_flight.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            let _ = tokio::task::spawn_blocking(trim_heap).await;
        }
    }
}

/// Hands the allocator's free memory back to the system (glibc; elsewhere nothing to do).
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: takes no pointers; the allocator locks each arena as it walks it.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// 200 while the database answers and the last refresh succeeded; else 503, saying why (a full
/// disk, no file descriptor left, the logs directory gone bad). After a failure it tries a
/// refresh again, at most once a second, so that a server no list request reaches (a load
/// balancer took it out on the 503) can recover; otherwise it refreshes nothing: it takes no
/// token, and must not let anyone make the server sweep.
async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let failed = state.refresh_failure.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some((at, why)) = failed {
        let why = match at.elapsed() >= HEALTH_RETRY {
            true => {
                let state = state.clone();
                match blocking(move || state.freshen()).await {
                    Ok(()) => None,
                    Err(e) if e.is_logs_missing() => None,
                    Err(e) => Some(e.to_string()),
                }
            }
            false => Some(why),
        };
        if let Some(why) = why {
            return (StatusCode::SERVICE_UNAVAILABLE, format!("index unavailable: {why}\n")).into_response();
        }
    }
    // The cheapest question the database answers (it once counted every row: 9 ms a check at
    // 10,000 conversations), through the same checks of the file as any other.
    let index = state.index.clone();
    match blocking(move || index.version()).await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("database unavailable: {e}\n")).into_response(),
    }
}

/// Says where it listens (and, with an upstream, where to open the web UI), then serves until
/// `shutdown` resolves, then lets in-flight requests finish: forwarded event streams end at
/// once, anything else gets `Config::shutdown_grace`. Clients that never finish sending their
/// headers, sit idle between requests or stop sending a body are cut off after
/// `Config::read_timeout`, so idle connections cannot pile up, and those that stop reading their
/// answer after `Config::send_timeout`.
pub async fn serve(
    listener: impl Into<Listener>,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::TokioTimer;

    let (read_timeout, send_timeout, grace) =
        (state.config.read_timeout, state.config.send_timeout, state.config.shutdown_grace);
    let app = router(state.clone());
    // HTTP/1.1 only, as gptme-server: browsers speak HTTP/2 only over TLS, which a proxy in front
    // would end. Over HTTP/2 a client could hold answers in memory past `send_timeout`, by
    // answering pings but never opening its flow-control window.
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Request heads (line and headers) over 64 KiB are refused rather than buffered.
    builder.timer(TokioTimer::new()).header_read_timeout(read_timeout).max_buf_size(64 * 1024);
    let listener = listener.into();
    let bound = listener.local_addr()?;
    if let Some(path) = state.config.token_file.clone() {
        state.take_shared_token(read_token_file(&path).await);
        tokio::spawn(follow_token_file(state.clone(), path, bound.tcp()));
    }
    match (&bound, &state.config.upstream) {
        (Address::Tcp(addr), Some(_)) => {
            tracing::info!(
                "listening on http://{addr}; open the web UI at {}",
                web_ui_url(*addr, state.token().as_deref())
            )
        }
        (Address::Tcp(addr), None) => tracing::info!("listening on http://{addr}"),
        // Reached through a proxy, whose address is not known here.
        (Address::Unix(_), _) => tracing::info!("listening on {bound}"),
    }
    tokio::spawn(trim_when_idle(state.clone()));
    // Each connection's task holds a sender: once all are dropped, every connection is closed.
    let (open, mut all_closed) = tokio::sync::mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    // Said once per run of failures, not twenty times a second.
    let mut accept_failing = false;
    loop {
        let connection = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => {
                    if std::mem::take(&mut accept_failing) {
                        tracing::info!("accepting connections again");
                    }
                    conn
                }
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to close.
                    if !std::mem::replace(&mut accept_failing, true) {
                        tracing::warn!(error = %e, "cannot accept connections; trying again until it can");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (app, builder, open, stopping) = (app.clone(), builder.clone(), open.clone(), state.stopping());
        tokio::spawn(async move {
            let _open = open;
            let timeouts = (read_timeout, send_timeout);
            match connection {
                Connection::Tcp(stream, peer) => {
                    serve_connection(stream, Some(peer), app, builder, timeouts, stopping).await
                }
                Connection::Unix(stream) => serve_connection(stream, None, app, builder, timeouts, stopping).await,
            }
        });
    }
    // No more connections; a Unix socket's file goes with it.
    let _ = tokio::task::spawn_blocking(move || drop(listener)).await;
    // In-flight requests finish; idle connections close.
    state.stopping.send_replace(true);
    state.stop_statements.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(open);
    if tokio::time::timeout(grace, all_closed.recv()).await.is_err() {
        tracing::warn!("requests still in flight after {} s; closing their connections", grace.as_secs_f64());
    }
    Ok(())
}

/// Serves one connection until the client closes it, or, once `stopping` resolves, until the
/// request in flight has its answer. `peer` is the client's address, over TCP.
async fn serve_connection(
    stream: impl Stream,
    peer: Option<std::net::SocketAddr>,
    app: Router,
    builder: hyper::server::conn::http1::Builder,
    (read_timeout, send_timeout): (Duration, Duration),
    stopping: impl Future<Output = ()>,
) {
    use hyper_util::rt::TokioIo;
    use tower::ServiceExt;

    tokio::pin!(stopping);
    // A client that connects and says nothing is let go: hyper's own timer starts only once the
    // first byte arrives.
    tokio::select! {
        first = tokio::time::timeout(read_timeout, stream.first_byte()) => {
            if !matches!(first, Ok(Ok(1..))) {
                return;
            }
        }
        () = &mut stopping => return,
    }
    let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        if let Some(peer) = peer {
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        }
        let request = request.map(|body| axum::body::Body::new(stall::StallLimited::new(body, read_timeout)));
        app.clone().oneshot(request)
    });
    // A client that stops reading holds its answer in memory here: it is let go once no byte
    // has left for `send_timeout` (as nginx's `send_timeout`).
    let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
    stream.set_write_timeout(Some(send_timeout));
    let connection = builder.serve_connection(TokioIo::new(Box::pin(stream)), service).with_upgrades();
    tokio::pin!(connection);
    // Once stopping, the request in flight finishes, and the connection then closes.
    tokio::select! {
        _ = connection.as_mut() => {}
        () = &mut stopping => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// A method a route does not take, answered as Flask answers it: `OPTIONS` with the methods in
/// `Allow` (a CORS preflight is answered before this, when origins are allowed), anything else a
/// JSON 405.
async fn other_method(method: Method, allow: &'static str) -> Response {
    let allow = HeaderValue::from_static(allow);
    let mut r = if method == Method::OPTIONS {
        StatusCode::OK.into_response()
    } else {
        // Byte for byte gptme-server's answer (its handler of HTTP errors writes
        // `flask.json.dumps`: a space after the colon, no newline); the `Allow` header is ours.
        let body = r#"{"error": "The method is not allowed for the requested URL."}"#;
        let mut r = (StatusCode::METHOD_NOT_ALLOWED, body).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r
    };
    r.headers_mut().insert(header::ALLOW, allow);
    r
}

/// A 408 for a request whose body stopped arriving (`error` says so, at some depth), or `None`.
/// The connection closes after it, the rest of the body unread, as nginx does.
pub(crate) fn body_stalled(error: &(dyn std::error::Error + 'static)) -> Option<Response> {
    stall::stalled(error).then(|| {
        let mut r = json_error(StatusCode::REQUEST_TIMEOUT, "the request body stopped arriving");
        r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        r
    })
}

/// An empty 404 for routes we do not serve without an upstream.
pub(crate) fn not_found() -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        "Not found (convmeta serves /api/v2/conversations; start it with --upstream to forward the rest)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_ui_urls_are_where_a_browser_reaches_us() {
        let at = |addr: &str| addr.parse::<std::net::SocketAddr>().unwrap();
        assert_eq!(web_ui_url(at("127.0.0.1:5702"), None), "http://127.0.0.1:5702/");
        assert_eq!(web_ui_url(at("0.0.0.0:5702"), Some("a b/c")), "http://127.0.0.1:5702/#userToken=a%20b%2Fc");
        assert_eq!(web_ui_url(at("[::]:5702"), Some("t-1.x_~")), "http://127.0.0.1:5702/#userToken=t-1.x_~");
        assert_eq!(web_ui_url(at("[::1]:5702"), None), "http://[::1]:5702/");
    }
}
