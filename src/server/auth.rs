//! Who must show the token, and where a client may put it: as gptme-server 0.35.1 decides, so
//! its web UI works through us with auth on (the page and its assets load without a token, and
//! its event streams send the token in a cookie).

use axum::http::{header, HeaderMap, Method};

/// The cookie gptme-server's `POST /api/v2/auth/cookie` sets, for `EventSource` requests.
const COOKIE: &str = "gptme_auth";

/// API routes gptme-server answers without a token (read with GET or HEAD).
const OPEN_API: &[&str] = &["/api/v2", "/api/v2/version", "/api/v2/config", "/api/v2/server/health", "/api/v0/metrics"];

/// Whether a request must carry the token. Our own routes always do. A forwarded one does
/// unless gptme-server serves it without one (its web UI, and the few API routes above), so a
/// token here guards an upstream running without auth. A path we cannot read plainly (percent
/// escapes that decode to something else, empty or dot segments) must carry it too: the
/// upstream may read it as another route.
pub fn needs_token(method: &Method, raw_path: &str) -> bool {
    if matches!(raw_path, "/api/v2/conversations" | "/api/v2/sql" | "/metrics") {
        return true;
    }
    let path = percent_encoding::percent_decode_str(raw_path).decode_utf8_lossy();
    let odd = path != raw_path || path.contains("//") || path.split('/').any(|s| s == "." || s == "..");
    if odd {
        return true;
    }
    if !(path.starts_with("/api/") || path.starts_with("/preview/")) {
        return false;
    }
    let read = *method == Method::GET || *method == Method::HEAD;
    let open = (read && (OPEN_API.contains(&&*path) || path == "/api/docs" || path.starts_with("/api/docs/")))
        || (*method == Method::DELETE && path == "/api/v2/auth/cookie");
    !open
}

/// The token a request carries, looked for where gptme-server looks: the `Authorization`
/// header (`Bearer`, any case), then the cookie, then the `token` query parameter. The error is
/// gptme-server's message for a header it refuses.
pub fn presented(headers: &HeaderMap, query: Option<&str>) -> Result<Option<String>, &'static str> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let text = value.to_str().map_err(|_| "Invalid authorization header format")?;
        let (scheme, token) = text.split_once(' ').ok_or("Invalid authorization header format")?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err("Invalid authentication scheme");
        }
        if !token.is_empty() {
            return Ok(Some(token.to_owned()));
        }
    }
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE && !value.is_empty())
        .map(|(_, value)| value.trim_matches('"').to_owned());
    if cookie.is_some() {
        return Ok(cookie);
    }
    Ok(form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty()))
}

/// With auth off, whether a `Host` header names this machine (`localhost`, `127.x.x.x`, `[::1]`,
/// any port, any case, a trailing root dot) or one of `allowed` (gptme-server's
/// `--allowed-hosts`): a web page elsewhere cannot reach a loopback server through DNS
/// rebinding. An absent host (HTTP/1.0) is local.
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let host = host.trim();
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    name.is_empty()
        || name == "localhost"
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        || allowed.iter().any(|a| a.trim().trim_end_matches('.').eq_ignore_ascii_case(&name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_web_ui_and_gptmes_open_routes_need_no_token() {
        let (open, guarded) = (false, true);
        for (method, path, want) in [
            (Method::GET, "/", open),
            (Method::GET, "/chat/abc", open),
            (Method::GET, "/assets/index.js", open),
            (Method::GET, "/api/v2", open),
            (Method::HEAD, "/api/v2/version", open),
            (Method::GET, "/api/docs/openapi.json", open),
            (Method::DELETE, "/api/v2/auth/cookie", open),
            (Method::GET, "/api/v2/conversations", guarded),
            (Method::GET, "/metrics", guarded),
            (Method::POST, "/api/v2/sql", guarded),
            (Method::GET, "/api/v2/conversations/x/events", guarded),
            (Method::POST, "/api/v2/auth/cookie", guarded),
            (Method::POST, "/api/v2", guarded),
            (Method::GET, "/preview/3000/", guarded),
            (Method::DELETE, "/%61pi/v2/conversations/x", guarded),
            (Method::GET, "/x/../api/v2/agents", guarded),
            (Method::GET, "//api/v2/agents", guarded),
        ] {
            assert_eq!(needs_token(&method, path), want, "{method} {path}");
        }
    }

    #[test]
    fn local_and_allowed_hosts() {
        let allowed = ["gptme.local.".to_string()];
        for h in [
            "localhost",
            "localhost:5702",
            "localhost.",
            "127.0.0.1:80",
            "[::1]:5702",
            "LOCALHOST",
            "",
            "GPTME.local:80",
        ] {
            assert!(host_allowed(h, &allowed), "{h}");
        }
        for h in ["example.com", "evil.localhost.com", "10.0.0.1:5702", "[2001:db8::1]:80", "gptme.local.evil"] {
            assert!(!host_allowed(h, &allowed), "{h}");
        }
    }

    #[test]
    fn tokens_are_found_where_gptme_looks() {
        let with = |name: header::HeaderName, value: &str| {
            let mut h = HeaderMap::new();
            h.insert(name, HeaderValue::from_str(value).unwrap());
            h
        };
        let none = HeaderMap::new();
        assert_eq!(presented(&with(header::AUTHORIZATION, "Bearer abc"), None), Ok(Some("abc".into())));
        assert_eq!(presented(&with(header::AUTHORIZATION, "bearer abc"), None), Ok(Some("abc".into())));
        assert_eq!(presented(&with(header::AUTHORIZATION, "Basic abc"), None), Err("Invalid authentication scheme"));
        assert_eq!(presented(&with(header::AUTHORIZATION, "Bearer"), None), Err("Invalid authorization header format"));
        assert_eq!(presented(&with(header::COOKIE, "a=b; gptme_auth=abc"), None), Ok(Some("abc".into())));
        assert_eq!(presented(&none, Some("x=1&token=abc")), Ok(Some("abc".into())));
        assert_eq!(presented(&with(header::AUTHORIZATION, "Bearer "), Some("token=abc")), Ok(Some("abc".into())));
        assert_eq!(presented(&none, Some("token=")), Ok(None));
    }
}
