//! convmeta's benchmarks: one harness, data generated here, each result a ratio against a
//! baseline measured in the same run. `cargo bench` runs everything; `cargo bench -- NAME`
//! runs the groups whose name contains NAME. `CONVMETA_BENCH_SCALE=0.1` shrinks the data.

#[path = "../tests/common.rs"]
mod common;
mod core;
mod gen;
mod server;

use std::time::{Duration, Instant};

/// Times `f` `runs` times and returns the median.
pub fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    median_with_setup(runs, || (), |()| f())
}

/// Like [`median`], with an untimed `setup` before each timed run.
pub fn median_with_setup<T>(runs: usize, mut setup: impl FnMut() -> T, mut f: impl FnMut(T)) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let input = setup();
            let t = Instant::now();
            f(input);
            t.elapsed()
        })
        .collect();
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

/// Scales a count by `CONVMETA_BENCH_SCALE` (default 1).
pub fn scaled(n: usize) -> usize {
    let scale: f64 = std::env::var("CONVMETA_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    ((n as f64 * scale).round() as usize).max(1)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    println!("convmeta benches ({} cores)", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    if wanted("accumulator") {
        core::accumulator();
    }
    if wanted("backfill") {
        core::backfill();
    }
    if wanted("cold") {
        core::cold();
    }
    if wanted("sweep") {
        core::no_change_refresh();
    }
    if wanted("append") {
        core::append_refresh();
    }
    if wanted("server") {
        server::server();
    }
}
