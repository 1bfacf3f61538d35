//! `/metrics` in Prometheus' text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{blocking, AppState};
use crate::refresh::Stats;

/// Upper bounds (seconds) of the refresh duration histogram.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    refreshes: AtomicU64,
    sweeps: AtomicU64,
    files_rescanned: AtomicU64,
    bytes_read: AtomicU64,
    duration_buckets: [AtomicU64; BUCKETS.len()],
    duration_sum_us: AtomicU64,
}

/// Routes by name, so labels stay few whatever clients ask for.
pub fn route_label(path: &str) -> &'static str {
    match path {
        "/api/v2/conversations" => "list",
        "/api/v2/sql" => "sql",
        "/healthz" => "healthz",
        "/metrics" => "metrics",
        _ => "forwarded",
    }
}

impl Metrics {
    pub fn record_request(&self, route: &'static str, status: u16) {
        *self.requests.lock().unwrap_or_else(|p| p.into_inner()).entry((route, status)).or_default() += 1;
    }

    pub fn record_refresh(&self, stats: &Stats, took: Duration) {
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        self.sweeps.fetch_add(stats.swept as u64, Ordering::Relaxed);
        let files = stats.full_scans + stats.appends + stats.side_only + stats.rechecked;
        self.files_rescanned.fetch_add(files as u64, Ordering::Relaxed);
        self.bytes_read.fetch_add(stats.bytes_read, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        for (bucket, bound) in self.duration_buckets.iter().zip(BUCKETS) {
            if secs <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.duration_sum_us.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, conversations: i64) -> String {
        let mut o = String::new();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        o.push_str("# HELP convmeta_requests_total HTTP requests by route and status.\n# TYPE convmeta_requests_total counter\n");
        for ((route, status), n) in self.requests.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(o, "convmeta_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
        }
        let refreshes = get(&self.refreshes);
        for (name, help, kind, value) in [
            ("convmeta_refreshes_total", "Refreshes run.", "counter", refreshes),
            (
                "convmeta_sweeps_total",
                "Refreshes that checked every conversation: each request's in sweep mode; in watch mode, while the watches are set up and after lost events.",
                "counter",
                get(&self.sweeps),
            ),
            ("convmeta_files_rescanned_total", "Conversation files read again.", "counter", get(&self.files_rescanned)),
            ("convmeta_bytes_read_total", "Log bytes read.", "counter", get(&self.bytes_read)),
            ("convmeta_conversations", "Conversations in the index.", "gauge", conversations as u64),
        ] {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
        o.push_str("# HELP convmeta_refresh_duration_seconds How long refreshes took.\n");
        o.push_str("# TYPE convmeta_refresh_duration_seconds histogram\n");
        for (bucket, bound) in self.duration_buckets.iter().zip(BUCKETS) {
            let _ = writeln!(o, "convmeta_refresh_duration_seconds_bucket{{le=\"{bound}\"}} {}", get(bucket));
        }
        let _ = writeln!(o, "convmeta_refresh_duration_seconds_bucket{{le=\"+Inf\"}} {refreshes}");
        let _ = writeln!(o, "convmeta_refresh_duration_seconds_sum {}", get(&self.duration_sum_us) as f64 / 1e6);
        let _ = writeln!(o, "convmeta_refresh_duration_seconds_count {refreshes}");
        o
    }
}

pub async fn handler(State(state): State<Arc<AppState>>) -> Response {
    let index = state.index.clone();
    let conversations = blocking(move || index.status()).await.map(|s| s.conversations).unwrap_or(0);
    let mut r = (StatusCode::OK, state.metrics.render(conversations)).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    r
}
