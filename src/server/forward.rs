//! Every route but the list goes to a real gptme-server, unchanged and streamed both ways
//! (server-sent events flow as they come). A request that changed a conversation refreshes just
//! that conversation when it completes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;

use super::{json_error, not_found, AppState};
use crate::error::{Error, Result};
use crate::format::gptme;

pub struct Upstream {
    base: String,
    host: HeaderValue,
    client: reqwest::Client,
}

impl Upstream {
    pub fn new(url: &str) -> Result<Upstream> {
        let bad = |why: &str| Error::Upstream { url: url.into(), why: why.into() };
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| bad(&format!("{e} (it takes a URL such as http://127.0.0.1:5700)")))?;
        // gptme-server speaks plain HTTP, and it writes the same logs, so it runs on this
        // machine: this build has no TLS to offer it.
        if parsed.scheme() != "http" {
            return Err(bad("must be an http:// URL (gptme-server serves plain HTTP on this machine)"));
        }
        let host = match (parsed.host_str(), parsed.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err(bad("has no host")),
        };
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| bad(&e.to_string()))?;
        Ok(Upstream {
            base: url.trim_end_matches('/').to_string(),
            host: HeaderValue::from_str(&host).map_err(|e| bad(&e.to_string()))?,
            client,
        })
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
        let get = |path: &str| {
            let request = upstream.client.get(format!("{}{path}", upstream.base)).timeout(Duration::from_secs(2));
            match &token {
                Some(token) => request.bearer_auth(token),
                None => request,
            }
            .send()
        };
        let root = match get("/api/v2").await {
            Ok(root) => root,
            Err(e) => return UpstreamCheck::Unreachable(root_cause(&e)),
        };
        let body = root.bytes().await.unwrap_or_default();
        let Some(version) = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("version").and_then(|v| v.as_str()).map(str::to_owned))
        else {
            return UpstreamCheck::NotGptme;
        };
        match get("/api/v2/user").await {
            Ok(user) if user.status() == StatusCode::UNAUTHORIZED => UpstreamCheck::Refuses { version },
            Ok(_) => UpstreamCheck::Gptme(version),
            Err(e) => UpstreamCheck::Unreachable(root_cause(&e)),
        }
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
    let changes = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
    let (parts, body) = request.into_parts();
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{}", upstream.base, path_and_query);

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
    if let Some(client_side) = client_side {
        // The upgrade headers belong to this hop, but asking the upstream for the same switch is
        // the point: ask, and join the two connections if it agrees.
        for name in [header::CONNECTION, header::UPGRADE] {
            if let Some(value) = parts.headers.get(&name) {
                headers.insert(name, value.clone());
            }
        }
        return switch_protocols(upstream, parts.method, &url, headers, client_side).await;
    }

    let sent = upstream
        .client
        .request(parts.method.clone(), &url)
        .headers(headers)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()))
        .send()
        .await;
    let answer = match sent {
        Ok(a) => a,
        Err(e) => return unreachable(&url, &e),
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
    let mut stream = answer.bytes_stream();
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
    url: &str,
    headers: HeaderMap,
    client_side: hyper::upgrade::OnUpgrade,
) -> Response {
    let answer = match upstream.client.request(method, url).headers(headers).send().await {
        Ok(a) => a,
        Err(e) => return unreachable(url, &e),
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        // A 101 names the protocol switched to in the very headers that are otherwise this hop's.
        if !hop_by_hop(name) || answer.status() == StatusCode::SWITCHING_PROTOCOLS {
            response = response.header(name, value);
        }
    }
    if answer.status() != StatusCode::SWITCHING_PROTOCOLS {
        let body = Body::from_stream(answer.bytes_stream());
        return response.body(body).unwrap_or_else(|_| json_error(StatusCode::BAD_GATEWAY, "bad upstream response"));
    }
    tokio::spawn(async move {
        let (client, upstream) = match (client_side.await, answer.upgrade().await) {
            (Ok(client), Ok(upstream)) => (client, upstream),
            (client, upstream) => {
                tracing::warn!(client = client.is_ok(), upstream = upstream.is_ok(), "switching protocols failed");
                return;
            }
        };
        let mut client = hyper_util::rt::TokioIo::new(client);
        let mut upstream = upstream;
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    });
    response.body(Body::empty()).unwrap_or_else(|_| json_error(StatusCode::BAD_GATEWAY, "bad upstream response"))
}

fn unreachable(url: &str, e: &reqwest::Error) -> Response {
    let cause = root_cause(e);
    tracing::warn!(url, error = cause, "upstream unreachable");
    json_error(StatusCode::BAD_GATEWAY, &format!("upstream gptme-server unreachable: {cause}"))
}

/// The innermost cause of a failed request ("Connection refused (os error 111)"): reqwest's own
/// message says only that sending failed.
fn root_cause(e: &reqwest::Error) -> String {
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
    F: FnOnce(tokio::sync::mpsc::Sender<reqwest::Result<axum::body::Bytes>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(produce(tx));
    Body::from_stream(tokio_stream_from(rx))
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<reqwest::Result<axum::body::Bytes>>,
) -> impl futures_util::Stream<Item = reqwest::Result<axum::body::Bytes>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_are_plain_http() {
        assert!(Upstream::new("http://127.0.0.1:5701").is_ok());
        for bad in ["https://127.0.0.1:5701", "ftp://x", "127.0.0.1:5701", "http://"] {
            assert!(Upstream::new(bad).is_err(), "{bad}");
        }
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
