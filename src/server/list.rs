//! `GET /api/v2/conversations`: gptme-server's list endpoint, answered from a fresh refresh.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use md5::{Digest, Md5};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::{blocking, json_error, AppState};
use crate::index::{Filter, Page};
use crate::json::{push_py_str, py_float};
use crate::store::rows::After;

const DEFAULT_LIMIT: i128 = 100;
const MAX_LIMIT: i128 = 1000;
const CURSOR_ERROR: &str = "cursor must be a numeric Unix timestamp or opaque cursor token";

/// Python's `urllib.parse.quote` keeps letters, digits, `_.-~` and `/`.
const QUOTE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'.').remove(b'-').remove(b'~').remove(b'/');

/// The request's parameters, read as gptme-server reads them.
#[derive(Debug, PartialEq)]
pub struct Params {
    pub limit: usize,
    pub q: Option<String>,
    pub detail: bool,
    pub paginated: bool,
    pub after: Option<After>,
}

/// First value of each parameter, percent-decoded as a form (`+` is a space).
fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// `flask`'s truthy flags: present and empty, `1`, `true` or `yes`, any case.
fn flag(v: Option<&str>) -> bool {
    v.is_some_and(|v| v.is_empty() || ["1", "true", "yes"].iter().any(|t| v.eq_ignore_ascii_case(t)))
}

/// A cursor: `"<modified>|<percent-encoded id>"`, or a bare number (older clients).
fn parse_cursor(text: &str) -> Option<After> {
    // gptme takes any float: `inf` lists everything, `nan` and `-inf` nothing (as SQLite
    // compares with the NULL that a NaN becomes).
    let number = crate::pynum::float;
    match text.split_once('|') {
        Some((modified, id)) => {
            let id = percent_decode_str(id).decode_utf8_lossy().into_owned();
            (!id.is_empty()).then_some(After::Item { modified: number(modified)?, id })
        }
        None => number(text).map(After::Modified),
    }
}

/// `"%.17g|quote(id)"`, as gptme builds it.
fn cursor_for(modified: f64, id: &str) -> String {
    format!("{}|{}", format_g17(modified), utf8_percent_encode(id, QUOTE))
}

/// C's `%.17g`: 17 significant digits, trailing zeros dropped, exponent form outside 1e-4..1e17.
fn format_g17(x: f64) -> String {
    let sci = format!("{x:.16e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..17).contains(&exp) {
        let decimals = (16 - exp).max(0) as usize;
        let fixed = format!("{x:.decimals$}");
        if fixed.contains('.') {
            fixed.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            fixed
        }
    } else {
        let m = mantissa.trim_end_matches('0').trim_end_matches('.');
        format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    }
}

impl Params {
    /// Reads the query string; the error is the 400 body's message.
    pub fn parse(query: Option<&str>) -> Result<Params, &'static str> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        // In gptme's order: the limit, then the cursor.
        let limit = match first(&pairs, "limit") {
            None => DEFAULT_LIMIT,
            Some(text) => crate::pynum::int(text).ok_or("limit must be an integer")?,
        };
        if limit <= 0 {
            return Err("limit must be a positive integer");
        }
        let after = match first(&pairs, "cursor").filter(|c| !c.is_empty()) {
            Some(c) => Some(parse_cursor(c).ok_or(CURSOR_ERROR)?),
            None => None,
        };
        // `q` wins whenever present, even empty; blank after gptme's strip means no filter.
        let q = first(&pairs, "q")
            .or_else(|| first(&pairs, "search"))
            .and_then(crate::format::gptme::lowered::search_needle);
        Ok(Params {
            limit: limit.min(MAX_LIMIT) as usize,
            q,
            detail: flag(first(&pairs, "detail")),
            paginated: flag(first(&pairs, "paginated")),
            after,
        })
    }
}

/// gptme's ETag: the first 16 hex digits of an MD5 over `"<id>:<modified repr>\n"` per item.
fn etag(page: &Page) -> String {
    let mut md5 = Md5::new();
    for item in &page.items {
        md5.update(item.id.as_bytes());
        md5.update(b":");
        md5.update(py_float(item.modified).as_bytes());
        md5.update(b"\n");
    }
    let hex: String = md5.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("W/\"{hex}\"")
}

/// Whether `If-None-Match` holds `tag` (its bare value), weak or strong, as werkzeug reads the
/// header: `*` alone matches anything; each tag may be quoted or not, with `W/` or `w/`; text it
/// cannot read is skipped up to the next comma.
fn if_none_match_has(header: &str, tag: &str) -> bool {
    if header == "*" {
        return true;
    }
    let b = header.as_bytes();
    let mut pos = 0;
    while pos < b.len() {
        match etag_at(b, pos) {
            Some((found, end)) => {
                if found == tag.as_bytes() {
                    return true;
                }
                pos = end;
            }
            None => match b[pos..].iter().position(|&c| c == b',') {
                Some(i) => pos += i + 1,
                None => break,
            },
        }
    }
    false
}

/// One entry of an ETag list at `pos`: its bare value and where the next entry starts.
fn etag_at(b: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let blank = |c: &u8| *c == b' ' || *c == b'\t';
    let start = pos + b[pos..].iter().take_while(|c| blank(c)).count();
    // Then a comma or the end must follow, blanks aside.
    let closed = |at: usize| {
        let at = at + b[at..].iter().take_while(|c| blank(c)).count();
        match b.get(at) {
            None => Some(at),
            Some(b',') => Some(at + 1),
            Some(_) => None,
        }
    };
    let value_at = |at: usize| -> Option<(&[u8], usize)> {
        if b.get(at) == Some(&b'"') {
            let len = b[at + 1..].iter().position(|&c| c == b'"')?;
            return Some((&b[at + 1..at + 1 + len], closed(at + len + 2)?));
        }
        let len = b[at..].iter().take_while(|c| !blank(c) && **c != b'"' && **c != b',').count();
        (len > 0).then_some(())?;
        Some((&b[at..at + len], closed(at + len)?))
    };
    let weak = b.get(start).is_some_and(|c| c.eq_ignore_ascii_case(&b'w')) && b.get(start + 1) == Some(&b'/');
    weak.then(|| value_at(start + 2)).flatten().or_else(|| value_at(start))
}

pub(super) fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut r = (status, body.into()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A rendered answer: the body, and the ETag when gptme sends one.
#[derive(Clone)]
pub struct Rendered {
    body: axum::body::Bytes,
    etag: Option<HeaderValue>,
}

/// Recent answers by (index version, query): asked again before anything changed, the same
/// query is answered without reading the rows again.
#[derive(Default)]
pub struct AnswerCache {
    entries: std::sync::Mutex<std::collections::VecDeque<Cached>>,
}

/// (index version, raw query, answer).
type Cached = ((u64, u64, i64), String, Rendered);

const CACHED_ANSWERS: usize = 16;

impl AnswerCache {
    fn get(&self, version: (u64, u64, i64), query: &str) -> Option<Rendered> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.iter().find(|(v, q, _)| *v == version && q == query).map(|(_, _, r)| r.clone())
    }

    fn put(&self, version: (u64, u64, i64), query: String, rendered: Rendered) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|(v, _, _)| *v == version);
        if entries.len() == CACHED_ANSWERS {
            entries.pop_front();
        }
        entries.push_back((version, query, rendered));
    }
}

fn render(params: &Params, page: &Page) -> Rendered {
    let items = page.items.iter().map(|i| i.item_json.as_str()).collect::<Vec<_>>().join(",");
    if params.paginated {
        let next = match (page.more, page.items.last()) {
            (true, Some(last)) => {
                let mut s = String::new();
                push_py_str(&mut s, &cursor_for(last.modified, &last.id));
                s
            }
            _ => "null".to_string(),
        };
        return Rendered {
            body: format!("{{\"conversations\":[{items}],\"next_cursor\":{next}}}\n").into(),
            etag: None,
        };
    }
    // gptme tags only the plain listing (no search, no detail).
    let etag = (params.q.is_none() && !params.detail).then(|| HeaderValue::from_str(&etag(page)).expect("ASCII tag"));
    Rendered { body: format!("[{items}]\n").into(), etag }
}

pub async fn handler(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let params = match Params::parse(query.as_deref()) {
        Ok(p) => p,
        Err(message) => return json_error(StatusCode::BAD_REQUEST, message),
    };
    let rendered = {
        let state = state.clone();
        let query = query.unwrap_or_default();
        blocking(move || {
            match state.freshen() {
                // gptme lists a logs directory that does not exist (yet, or any more) as empty.
                Err(e) if e.is_logs_missing() => return Ok(render(&params, &Page::default())),
                other => other?,
            }
            let version = state.index.version()?;
            if let Some(hit) = state.answers.get(version, &query) {
                return Ok(hit);
            }
            let after = if params.paginated { params.after.as_ref() } else { None };
            let page =
                state.index.page(params.limit, &Filter { q: params.q.as_deref(), ..Filter::default() }, after)?;
            let rendered = render(&params, &page);
            state.answers.put(version, query, rendered.clone());
            Ok(rendered)
        })
        .await
    };
    let rendered = match rendered {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "list failed");
            return json_error(StatusCode::SERVICE_UNAVAILABLE, &format!("index unavailable: {e}"));
        }
    };
    let Some(tag) = rendered.etag else { return json_response(StatusCode::OK, rendered.body) };
    let not_modified = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        if_none_match_has(v, tag.to_str().unwrap_or_default().trim_start_matches("W/").trim_matches('"'))
    });
    let mut response = if not_modified {
        (StatusCode::NOT_MODIFIED, Body::empty()).into_response()
    } else {
        json_response(StatusCode::OK, rendered.body)
    };
    response.headers_mut().insert(header::ETAG, tag);
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_like_gptme_reads_them() {
        assert_eq!(Params::parse(Some("limit=2000")).unwrap().limit, 1000);
        assert_eq!(Params::parse(Some("limit=0")), Err("limit must be a positive integer"));
        assert_eq!(Params::parse(Some("limit=")), Err("limit must be an integer"));
        // The limit is checked before the cursor.
        assert_eq!(Params::parse(Some("cursor=abc&limit=x")), Err("limit must be an integer"));
        assert_eq!(Params::parse(Some("cursor=abc&limit=-1")), Err("limit must be a positive integer"));
        assert_eq!(Params::parse(Some("cursor=abc&limit=1")), Err(CURSOR_ERROR));
    }

    #[test]
    fn q_wins_over_search_and_flags_read_like_flask() {
        let p = Params::parse(Some("q=&search=x&detail&paginated=YES")).unwrap();
        assert_eq!((p.q, p.detail, p.paginated), (None, true, true));
        assert_eq!(Params::parse(Some("search=Octopus")).unwrap().q.as_deref(), Some("octopus"));
        // gptme strips the text (Python's whitespace) and lower-cases it; blank is no search.
        assert_eq!(Params::parse(Some("q=%20%E3%80%80Rust%09")).unwrap().q.as_deref(), Some("rust"));
        assert_eq!(Params::parse(Some("q=%20%20&search=x")).unwrap().q, None);
        assert!(!Params::parse(Some("detail=no")).unwrap().detail);
    }

    /// Each case as werkzeug 3 answers `parse_etags(header).contains_weak("abc")`.
    #[test]
    fn if_none_match_reads_as_werkzeug_reads_it() {
        let cases = [
            ("W/\"abc\"", true),
            ("\"abc\"", true),
            ("w/\"abc\"", true),
            ("abc", true),
            ("W/abc", true),
            ("*", true),
            (" W/\"abc\" ", true),
            ("W/\"x\", W/\"abc\"", true),
            ("junk\"here, \"abc\"", true),
            ("\"abc\" junk, x", false),
            ("W/W/\"abc\"", false),
            (" *", false),
            ("*, \"x\"", false),
            ("\"abcd\"", false),
            ("", false),
            ("W/\"abc", false),
        ];
        for (header, want) in cases {
            assert_eq!(if_none_match_has(header, "abc"), want, "{header:?}");
        }
    }

    #[test]
    fn cursors_round_trip() {
        let c = cursor_for(1766738123.0536401, "2025-12-20 naïve café | 100% done");
        assert_eq!(c, "1766738123.0536401|2025-12-20%20na%C3%AFve%20caf%C3%A9%20%7C%20100%25%20done");
        assert_eq!(
            parse_cursor(&c),
            Some(After::Item { modified: 1766738123.0536401, id: "2025-12-20 naïve café | 100% done".into() })
        );
        assert_eq!(parse_cursor("1766738123.0536401"), Some(After::Modified(1766738123.0536401)));
        for bad in ["garbage", "1767261600.5|", "|x", "0x10|x"] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
        assert_eq!(parse_cursor("-Infinity|x"), Some(After::Item { modified: f64::NEG_INFINITY, id: "x".into() }));
        assert_eq!(format_g17(1767261600.0), "1767261600");
        assert_eq!(format_g17(0.1), "0.10000000000000001");
    }
}
