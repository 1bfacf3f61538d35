//! `GET /api/v2/sql?q=…` and `POST /api/v2/sql` (`{"sql": "…"}`): read-only SQL over the
//! public tables, when `serve --enable-sql` turns it on.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use rusqlite::types::Value;

use super::{blocking, json_error, AppState};
use crate::store::sql::{self, Limits, Part, SqlError};

pub async fn handler(
    State(state): State<Arc<AppState>>,
    method: Method,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if !state.config.sql.enabled {
        return super::not_found();
    }
    let statement = if method == Method::POST {
        // Errors are JSON here, as every other answer of this endpoint.
        let body = match body {
            Ok(body) => body,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return json_error(e.status(), "the body is over the 2 MiB a statement may take")
            }
            Err(e) => return super::body_stalled(&e).unwrap_or_else(|| json_error(e.status(), &e.body_text())),
        };
        match serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| v["sql"].as_str().map(str::to_owned))
        {
            Some(s) => s,
            None => return json_error(StatusCode::BAD_REQUEST, "expected a JSON body {\"sql\": \"SELECT …\"}"),
        }
    } else {
        let q = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .find(|(k, _)| k == "q")
            .map(|(_, v)| v.into_owned());
        match q {
            Some(s) => s,
            None => return json_error(StatusCode::BAD_REQUEST, "expected ?q=SELECT …"),
        }
    };
    let c = &state.config.sql;
    let limits = Limits {
        max_rows: Some(c.max_rows),
        max_bytes: Some(c.max_bytes),
        timeout: Some(c.timeout),
        stop: Some(state.stop_statements.clone()),
    };
    // Waiting here, a request whose client hangs up is dropped, and gives up its place. (The
    // semaphore is never closed, so acquiring only waits.)
    let _slot = state.sql_slots.acquire().await;
    let worker = state.clone();
    // The answer is written here too, off the async threads: it may be tens of megabytes.
    let result = blocking(move || {
        worker.freshen()?;
        Ok(answer(worker.index.store().path(), statement.trim(), limits))
    })
    .await;
    let result = match result {
        Ok(r) => r,
        Err(e) => return json_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    match result {
        Ok(body) => {
            let mut response = (StatusCode::OK, body).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(e @ SqlError::Refused(_)) => json_error(StatusCode::FORBIDDEN, &e.to_string()),
        Err(e @ (SqlError::Invalid(_) | SqlError::Timeout(_) | SqlError::OutOfMemory(_))) => {
            json_error(StatusCode::BAD_REQUEST, &e.to_string())
        }
        Err(e @ (SqlError::Database(_) | SqlError::Stopped)) => {
            json_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
        }
    }
}

/// The answer, `{"columns": […], "rows": [[…], …], "truncated": false}`, written a row at a time
/// as SQLite produces them, so no row is held but in the answer itself.
fn answer(db: &std::path::Path, statement: &str, limits: Limits) -> Result<Vec<u8>, SqlError> {
    // Writing to memory fails only where a value cannot be JSON, which these all can.
    fn write(out: &mut Vec<u8>, v: &(impl serde::Serialize + ?Sized)) -> Result<(), SqlError> {
        serde_json::to_writer(out, v).map_err(|e| SqlError::Database(e.to_string()))
    }
    let mut out = Vec::new();
    let mut first = true;
    let truncated = sql::query_each(db, statement, limits, |part| {
        match part {
            Part::Columns(columns) => {
                out.extend_from_slice(b"{\"columns\":");
                write(&mut out, columns)?;
                out.extend_from_slice(b",\"rows\":[");
            }
            Part::Row(row) => {
                out.extend_from_slice(if first { b"[" } else { b",[" });
                for (i, value) in row.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    match value {
                        // Written from where it lies, not copied into a JSON value first.
                        Value::Text(text) => write(&mut out, &text.as_str())?,
                        other => write(&mut out, &sql::Json(other))?,
                    }
                }
                out.push(b']');
                first = false;
            }
        }
        Ok(())
    })?;
    out.extend_from_slice(format!("],\"truncated\":{truncated}}}\n").as_bytes());
    Ok(out)
}
