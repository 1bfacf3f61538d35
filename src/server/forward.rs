//! Every route but the list goes to a real gptme-server, unchanged and streamed both ways
//! (server-sent events flow as they come). A request that changed a conversation refreshes just
//! that conversation when it completes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};
use axum::response::Response;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::{json_error, not_found, AppState};
use crate::error::{Error, Result};
use crate::format::gptme;

pub struct Upstream {
    /// `http://host:port` and any path prefix, without a trailing `/`.
    base: String,
    host: HeaderValue,
    client: Client<HttpConnector, Body>,
    /// This server's name in the `Via` of what it forwards (RFC 9110 §7.6.3), unique to the
    /// process: a request that comes back bearing it went round a loop.
    via: String,
}

/// Why a request to the upstream got no answer.
type SendError = hyper_util::client::legacy::Error;

impl Upstream {
    pub fn new(url: &str) -> Result<Upstream> {
        let bad = |why: &str| Error::Upstream { url: url.into(), why: why.into() };
        let example = "it takes a URL such as http://127.0.0.1:5700";
        let parsed: Uri = url.parse().map_err(|e| bad(&format!("{e} ({example})")))?;
        match parsed.scheme_str() {
            Some("http") => {}
            None => return Err(bad(&format!("no scheme ({example})"))),
            // gptme-server speaks plain HTTP, and it writes the same logs, so it runs on this
            // machine: this build has no TLS to offer it.
            Some(_) => return Err(bad("must be an http:// URL (gptme-server serves plain HTTP on this machine)")),
        }
        let host = match parsed.authority() {
            Some(a) if !a.host().is_empty() => a.as_str().rsplit('@').next().unwrap_or_default().to_string(),
            _ => return Err(bad("has no host")),
        };
        let port = host.strip_prefix(parsed.host().unwrap_or_default()).and_then(|p| p.strip_prefix(':'));
        if port.is_some_and(|p| p.parse::<u16>().is_err()) {
            return Err(bad("has an invalid port"));
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.set_nodelay(true);
        use std::hash::BuildHasher;
        let unique = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
        Ok(Upstream {
            base: url.trim_end_matches('/').to_string(),
            host: HeaderValue::from_str(&host).map_err(|e| bad(&e.to_string()))?,
            client: Client::builder(TokioExecutor::new()).build(connector),
            via: format!("convmeta-{unique:016x}"),
        })
    }

    /// Whether a request already passed through this server: `--upstream` leads back to it,
    /// directly or through other proxies, and forwarding it again would never end.
    fn looped(&self, headers: &HeaderMap) -> bool {
        let entries = headers.get_all(header::VIA).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
        // An entry is `protocol name [comment]`.
        entries.into_iter().any(|entry| entry.split_whitespace().nth(1) == Some(&*self.via))
    }

    /// The upstream's URI for a request's path and query, as they came: nothing is resolved or
    /// re-encoded, so gptme-server sees what the client sent.
    fn uri(&self, path_and_query: &str) -> std::result::Result<Uri, String> {
        if !path_and_query.starts_with('/') {
            // `OPTIONS *` asks about the server itself, not a resource: nothing to forward.
            return Err("only paths are forwarded".into());
        }
        format!("{}{path_and_query}", self.base).parse().map_err(|e: axum::http::uri::InvalidUri| e.to_string())
    }

    async fn send(
        &self,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Body,
    ) -> std::result::Result<hyper::Response<hyper::body::Incoming>, SendError> {
        let mut request = hyper::Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        self.client.request(request).await
    }

    /// A GET of one of gptme-server's own paths, with the token if there is one: its status and
    /// body within two seconds each, or why not.
    async fn get(&self, path: &str, token: Option<&str>) -> std::result::Result<(StatusCode, Bytes), String> {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, self.host.clone());
        if let Some(value) = token.and_then(|t| HeaderValue::from_str(&format!("Bearer {t}")).ok()) {
            headers.insert(header::AUTHORIZATION, value);
        }
        let within = Duration::from_secs(2);
        let asked = self.send(Method::GET, self.uri(path)?, headers, Body::empty());
        let answer = tokio::time::timeout(within, asked)
            .await
            .map_err(|_| format!("no answer within {} s", within.as_secs()))?
            .map_err(|e| root_cause(&e))?;
        let status = answer.status();
        let body = tokio::time::timeout(within, answer.into_body().collect()).await.ok().and_then(|b| b.ok());
        Ok((status, body.map(|b| b.to_bytes()).unwrap_or_default()))
    }
}

/// What the gptme-server at `--upstream` answered when asked at start.
#[derive(Debug, PartialEq)]
pub enum UpstreamCheck {
    /// A gptme-server of this version, which takes our token (or asks for none).
    Gptme(String),
    /// Its guarded routes refuse the token we have (or our lack of one).
    Refuses { version: String },
    /// Nothing answering there (yet), or not in time.
    Unreachable(String),
    /// Something answers, but not as gptme-server does.
    NotGptme,
}

/// Asks the upstream what it is and whether it takes our token, so a mismatch is told at start
/// rather than as a 401 or 502 in the web UI. An invalid URL is an error at once; the future
/// makes two cheap requests (the API root and the guarded `GET /api/v2/user`, which reads no
/// conversation), two seconds at most each.
pub fn check_upstream(
    url: &str,
    token: Option<String>,
) -> Result<impl std::future::Future<Output = UpstreamCheck> + Send + 'static> {
    let upstream = Upstream::new(url)?;
    Ok(async move {
        let token = token.as_deref();
        let body = match upstream.get("/api/v2", token).await {
            Ok((_, body)) => body,
            Err(why) => return UpstreamCheck::Unreachable(why),
        };
        let Some(version) = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("version").and_then(|v| v.as_str()).map(str::to_owned))
        else {
            return UpstreamCheck::NotGptme;
        };
        match upstream.get("/api/v2/user", token).await {
            Ok((StatusCode::UNAUTHORIZED, _)) => UpstreamCheck::Refuses { version },
            Ok(_) => UpstreamCheck::Gptme(version),
            Err(why) => UpstreamCheck::Unreachable(why),
        }
    })
}

/// Whether `url` leads to `listening`, this server's own address: the same address and port,
/// or, when listening on every address, a loopback or unspecified one of the same port. Such an
/// upstream would have every request forwarded back here; caught before serving, as the
/// `Via` check catches a loop through other servers. A name that does not resolve within two
/// seconds is taken for another server.
pub async fn leads_here(url: &str, listening: SocketAddr) -> bool {
    let Ok(uri) = url.parse::<Uri>() else { return false };
    let Some(host) = uri.host() else { return false };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    let resolved = tokio::time::timeout(Duration::from_secs(2), tokio::net::lookup_host((host, port))).await;
    let Ok(Ok(addrs)) = resolved else { return false };
    let mut addrs = addrs;
    addrs.any(|a| {
        let everywhere = listening.ip().is_unspecified() && (a.ip().is_loopback() || a.ip().is_unspecified());
        // A socket on `::` takes IPv4 too; one on `0.0.0.0` does not take IPv6.
        let family = a.is_ipv4() == listening.is_ipv4() || listening.is_ipv6();
        a == listening || (everywhere && family && a.port() == listening.port())
    })
}

/// Headers that belong to one connection, not to the message (RFC 9110 §7.6.1).
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// The conversation a path names (`/api/v2/conversations/<id>[/…]`), percent-decoded as
/// werkzeug decodes it (bytes that are not UTF-8 as U+FFFD): Some(Ok(id)), Some(Err(why)) for
/// an id gptme refuses, with the error it gives, and None for other paths. An id that decodes
/// to hold a `/` is None too: gptme's router then matches no conversation route (404), and the
/// request goes to it as it came. An empty segment names no conversation either: gptme answers
/// 404 for `/api/v2/conversations/`.
pub fn conversation_id(path: &str) -> Option<std::result::Result<String, &'static str>> {
    let rest = path.strip_prefix("/api/v2/conversations/")?;
    let raw = rest.split('/').next().filter(|raw| !raw.is_empty())?;
    let id = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    if id.contains('/') {
        return None;
    }
    Some(if gptme::is_valid_id(&id) { Ok(id.into_owned()) } else { Err(gptme::id_refusal(&id)) })
}

/// A request to switch protocols (a WebSocket, as gptme-server's preview proxy takes them).
fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

pub async fn handler(State(state): State<Arc<AppState>>, mut request: Request) -> Response {
    // Taken before the request is forwarded: the client's side of a switched connection.
    let client_side = is_upgrade(request.headers()).then(|| hyper::upgrade::on(&mut request));
    let id = match conversation_id(request.uri().path()) {
        Some(Err(why)) => return json_error(StatusCode::BAD_REQUEST, why),
        Some(Ok(id)) => Some(id),
        None => None,
    };
    let Some(upstream) = &state.upstream else { return not_found() };
    if upstream.looped(request.headers()) {
        return json_error(
            StatusCode::LOOP_DETECTED,
            "this request came back to convmeta: --upstream leads to this server, not to gptme-server",
        );
    }
    let changes = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
    let (parts, body) = request.into_parts();
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri = match upstream.uri(path_and_query) {
        Ok(uri) => uri,
        Err(why) => return json_error(StatusCode::BAD_REQUEST, &format!("cannot forward {path_and_query}: {why}")),
    };

    let mut headers = HeaderMap::new();
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) && name != header::HOST {
            headers.append(name, value.clone());
        }
    }
    // gptme-server with auth off accepts only local names in Host.
    headers.insert(header::HOST, upstream.host.clone());
    if let Some(original) = parts.headers.get(header::HOST) {
        headers.insert("x-forwarded-host", original.clone());
    }
    if let Some(peer) = peer.and_then(|p| HeaderValue::from_str(&p).ok()) {
        headers.insert("x-forwarded-for", peer);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    // The protocol the request came by, then who forwarded it.
    let protocol = match parts.version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    };
    headers.append(header::VIA, HeaderValue::from_str(&format!("{protocol} {}", upstream.via)).expect("ASCII"));
    if let Some(client_side) = client_side {
        // The upgrade headers belong to this hop, but asking the upstream for the same switch is
        // the point: ask, and join the two connections if it agrees.
        for name in [header::CONNECTION, header::UPGRADE] {
            if let Some(value) = parts.headers.get(&name) {
                headers.insert(name, value.clone());
            }
        }
        return switch_protocols(upstream, parts.method, uri, headers, client_side).await;
    }

    let answer = match upstream.send(parts.method.clone(), uri.clone(), headers, body).await {
        Ok(a) => a,
        Err(e) => return super::body_stalled(&e).unwrap_or_else(|| unreachable(&uri, &e)),
    };
    let refresh = id.filter(|_| changes).map(|id| (state.clone(), id));
    if let Some((state, id)) = &refresh {
        // The upstream has handled the request by the time it answers.
        refresh_later(state.clone(), id.clone());
    }
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if !hop_by_hop(name) {
            response = response.header(name, value);
        }
    }
    // Stream the body through as it arrives, until it ends or the server stops (an event stream
    // never ends on its own); then read the conversation once more (a streamed reply may write
    // as it goes).
    let mut stream = answer.into_body().into_data_stream();
    let stopping = state.stopping();
    let body = async_stream(move |tx| async move {
        tokio::pin!(stopping);
        while let Some(chunk) = tokio::select! {
            chunk = stream.next() => chunk,
            () = &mut stopping => None,
        } {
            if tx.send(chunk).await.is_err() {
                break;
            }
        }
        if let Some((state, id)) = refresh {
            refresh_later(state, id);
        }
    });
    response.body(body).unwrap_or_else(|_| json_error(StatusCode::BAD_GATEWAY, "bad upstream response"))
}

/// Forwards a request to switch protocols. When the upstream agrees (101), both connections are
/// handed over and bytes are copied between them until either side closes (or the process ends:
/// a switched connection is no longer a request the server waits for when it stops); any other
/// answer is passed on as it is.
async fn switch_protocols(
    upstream: &Upstream,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    client_side: hyper::upgrade::OnUpgrade,
) -> Response {
    let mut answer = match upstream.send(method, uri.clone(), headers, Body::empty()).await {
        Ok(a) => a,
        Err(e) => return unreachable(&uri, &e),
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        // A 101 names the protocol switched to in the very headers that are otherwise this hop's.
        if !hop_by_hop(name) || answer.status() == StatusCode::SWITCHING_PROTOCOLS {
            response = response.header(name, value);
        }
    }
    if answer.status() != StatusCode::SWITCHING_PROTOCOLS {
        let body = Body::new(answer.into_body());
        return response.body(body).unwrap_or_else(|_| json_error(StatusCode::BAD_GATEWAY, "bad upstream response"));
    }
    let upstream_side = hyper::upgrade::on(&mut answer);
    tokio::spawn(async move {
        let (client, upstream) = match (client_side.await, upstream_side.await) {
            (Ok(client), Ok(upstream)) => (client, upstream),
            (client, upstream) => {
                tracing::warn!(client = client.is_ok(), upstream = upstream.is_ok(), "switching protocols failed");
                return;
            }
        };
        let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(client), &mut TokioIo::new(upstream)).await;
    });
    response.body(Body::empty()).unwrap_or_else(|_| json_error(StatusCode::BAD_GATEWAY, "bad upstream response"))
}

fn unreachable(uri: &Uri, e: &SendError) -> Response {
    let cause = root_cause(e);
    tracing::warn!(url = %uri, error = cause, "upstream unreachable");
    json_error(StatusCode::BAD_GATEWAY, &format!("upstream gptme-server unreachable: {cause}"))
}

/// The innermost cause of a failed request ("Connection refused (os error 111)"): the client's
/// own message says only that sending failed.
fn root_cause(e: &SendError) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

fn refresh_later(state: Arc<AppState>, id: String) {
    tokio::task::spawn_blocking(move || {
        if let Err(e) = state.refresh_one(&id) {
            tracing::warn!(id, error = %e, "refresh after a forwarded request failed");
        }
    });
}

/// A body fed by a task through a small channel, so the task can act when the stream ends.
fn async_stream<F, Fut>(produce: F) -> Body
where
    F: FnOnce(tokio::sync::mpsc::Sender<hyper::Result<Bytes>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(produce(tx));
    Body::from_stream(tokio_stream_from(rx))
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<hyper::Result<Bytes>>,
) -> impl futures_util::Stream<Item = hyper::Result<Bytes>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_are_plain_http() {
        for (good, host) in [
            ("http://127.0.0.1:5701", "127.0.0.1:5701"),
            ("http://[::1]:5701/", "[::1]:5701"),
            ("http://localhost", "localhost"),
            ("http://me@localhost:5701/gptme/", "localhost:5701"),
        ] {
            assert_eq!(Upstream::new(good).map(|u| u.host).ok(), Some(HeaderValue::from_static(host)), "{good}");
        }
        for bad in [
            "https://127.0.0.1:5701",
            "ftp://x",
            "127.0.0.1:5701",
            "http://",
            "http://:80",
            "http://h:99999",
            "http:// h",
        ] {
            assert!(Upstream::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_are_forwarded_as_they_came() {
        let upstream = Upstream::new("http://127.0.0.1:5701/gptme/").unwrap();
        for path in ["/a/../b?x=%2e%2e", "/c/%2E/d\\e", "/"] {
            assert_eq!(upstream.uri(path).unwrap().to_string(), format!("http://127.0.0.1:5701/gptme{path}"));
        }
        assert!(upstream.uri("*").is_err(), "OPTIONS * names no path");
    }

    #[test]
    fn conversation_ids_in_paths() {
        assert_eq!(conversation_id("/api/v2/conversations/abc"), Some(Ok("abc".into())));
        assert_eq!(conversation_id("/api/v2/conversations/a%20b/messages"), Some(Ok("a b".into())));
        assert_eq!(conversation_id("/api/v2/conversations"), None);
        assert_eq!(conversation_id("/api/v2/other"), None);
        assert_eq!(conversation_id("/api/v2/conversations/"), None);
        for bad in ["..", "a%5Cb", "a%00b", "%2E%2E"] {
            let named = conversation_id(&format!("/api/v2/conversations/{bad}"));
            assert_eq!(named, Some(Err("Invalid conversation_id")), "{bad}");
        }
        let long = format!("/api/v2/conversations/{}", "x".repeat(256));
        assert_eq!(conversation_id(&long), Some(Err("conversation_id too long")));
        assert_eq!(conversation_id("/api/v2/conversations/%FF"), Some(Ok("\u{fffd}".into())));
        assert_eq!(conversation_id("/api/v2/conversations/a%2Fb/messages"), None);
    }
}
