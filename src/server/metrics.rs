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
use crate::pynum::PyNum;
use crate::refresh::Stats;
use crate::store::usage::{UsageBy, UsageQuery, UsageRow};

/// One sample of a metric that has no labels.
struct Sample {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    value: f64,
}

/// The process's own metrics, named as Prometheus' client libraries name them, so that the
/// dashboards and alerts written for those work here: CPU time, memory, open files, start
/// time. Read from `/proc` (Linux); elsewhere none. A value that cannot be read is left out.
fn process() -> Vec<Sample> {
    #[cfg(target_os = "linux")]
    {
        linux_process().unwrap_or_default()
    }
    #[cfg(not(target_os = "linux"))]
    {
        Vec::new()
    }
}

#[cfg(target_os = "linux")]
fn linux_process() -> Option<Vec<Sample>> {
    // SAFETY: sysconf reads settings.
    let (ticks, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command's name, which may itself hold spaces and parentheses; the
    // first of them is field 3 of proc(5).
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<f64>().ok())?;
    let open = std::fs::read_dir("/proc/self/fd").ok()?.count();
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: writes only the struct it is given.
    let max_fds = match unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } {
        0 => limit.rlim_cur as f64,
        _ => return None,
    };
    let (ticks, page) = (ticks as f64, page as f64);
    let sample = |name, help, kind, value| Sample { name, help, kind, value };
    let mut samples = vec![
        sample(
            "process_start_time_seconds",
            "When the process started, in seconds since the Unix epoch.",
            "gauge",
            boot + field(22)? / ticks,
        ),
        // Less the directory handle the count itself held open.
        sample("process_open_fds", "File descriptors open.", "gauge", open.saturating_sub(1) as f64),
        sample("process_max_fds", "The (soft) limit on open file descriptors.", "gauge", max_fds),
    ];
    // No mapped memory: not the kernel's figures (qemu's user-mode emulation writes zeros).
    let mapped = field(23)?;
    if mapped > 0.0 {
        samples.extend([
            sample(
                "process_cpu_seconds_total",
                "CPU time used, user and system, in seconds.",
                "counter",
                (field(14)? + field(15)?) / ticks,
            ),
            sample("process_resident_memory_bytes", "Memory resident in RAM, in bytes.", "gauge", field(24)? * page),
            sample("process_virtual_memory_bytes", "Virtual memory mapped, in bytes.", "gauge", mapped),
        ]);
    }
    Some(samples)
}

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
        "/api/v2/usage" => "usage",
        "/api/v2/search" => "search",
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

    fn render(&self, conversations: i64, in_flight: usize, process: &[Sample], by_model: &[UsageRow]) -> String {
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
            ("convmeta_requests_in_flight", "Requests being answered, this one among them.", "gauge", in_flight as u64),
        ] {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
        for Sample { name, help, kind, value } in process {
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
        render_usage(&mut o, by_model);
        o
    }
}

/// The archive's spend by model, as `convmeta usage --by model` sums it: gauges, since a
/// conversation deleted takes its spend with it. Models are few (the labels stay few).
fn render_usage(o: &mut String, by_model: &[UsageRow]) {
    o.push_str(
        "# HELP convmeta_usage_cost_usd Cost (USD) the logs' messages record, by model, over every conversation indexed, hidden ones too.\n\
         # TYPE convmeta_usage_cost_usd gauge\n",
    );
    for r in by_model {
        let _ = writeln!(o, "convmeta_usage_cost_usd{{model=\"{}\"}} {}", label(&r.key), float(r.cost));
    }
    o.push_str(
        "# HELP convmeta_usage_tokens Tokens the logs' messages record, by model and kind (input as gptme counts it: cache reads and writes included).\n\
         # TYPE convmeta_usage_tokens gauge\n",
    );
    for r in by_model {
        for (kind, n) in [("input", r.input_tokens), ("output", r.output_tokens), ("cache_read", r.cache_read_tokens)] {
            let value = match n {
                PyNum::Int(v) => v.to_string(),
                PyNum::Float(v) => float(v),
            };
            let _ = writeln!(o, "convmeta_usage_tokens{{model=\"{}\",kind=\"{kind}\"}} {value}", label(&r.key));
        }
    }
}

/// A label value as the text format writes it: backslash, double quote and line feed escaped.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A sample value as the text format writes it (`NaN`, `+Inf`, `-Inf` for those).
fn float(v: f64) -> String {
    match v {
        v if v.is_nan() => "NaN".into(),
        v if v.is_infinite() => if v > 0.0 { "+Inf" } else { "-Inf" }.into(),
        v => v.to_string(),
    }
}

/// How long a scrape waits for its refresh before it answers from the index as it stands.
const REFRESH_WAIT: Duration = Duration::from_secs(1);

pub async fn handler(State(state): State<Arc<AppState>>) -> Response {
    // The spend is as fresh as a list: a scrape sees every change made before it. But only
    // so long: the server's own figures matter most when a refresh is slow (a first index, a
    // stalled disk), and then the spend comes from the index as it stands. A failed refresh
    // is /healthz's to report.
    let fresh = state.clone();
    let _ = tokio::time::timeout(REFRESH_WAIT, blocking(move || fresh.freshen())).await;
    let read = state.clone();
    let (conversations, process, by_model) = blocking(move || {
        let index = &read.index;
        let by_model = index.usage(&UsageQuery { by: UsageBy::Model, ..Default::default() });
        Ok((index.status().map_or(0, |s| s.conversations), process(), by_model.map(|u| u.rows).unwrap_or_default()))
    })
    .await
    .unwrap_or_default();
    let in_flight = state.in_flight.load(Ordering::Relaxed);
    let mut r = (StatusCode::OK, state.metrics.render(conversations, in_flight, &process, &by_model)).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    r
}
