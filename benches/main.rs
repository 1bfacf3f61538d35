//! convmeta's benchmarks: one harness, data generated here, each result a ratio against a
//! baseline measured in the same run. `cargo bench` runs everything; `cargo bench -- NAME`
//! runs the groups whose name contains NAME. `CONVMETA_BENCH_SCALE=0.1` shrinks the data.

#[path = "../tests/common.rs"]
mod common;
mod core;
mod gen;
mod list;
mod search;
mod server;
mod usage;

use std::time::{Duration, Instant};

/// Times `f` `runs` times and returns the median.
pub fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    rounds(runs, &mut [&mut || timed(&mut f)]).median(0)
}

/// Each contender's times over rounds in which all of them ran once, in turn.
pub struct Rounds(Vec<Vec<Duration>>);

/// Runs every contender once a round, in turn, for `rounds` rounds; each contender times its
/// own run (with [`timed`], after any setup of its own). This host's speed drifts by up to 2x
/// within minutes: taking turns keeps a drift from favouring whichever contender ran in the
/// fast phase, and ratios are taken within a round.
pub fn rounds(rounds: usize, contenders: &mut [&mut dyn FnMut() -> Duration]) -> Rounds {
    let mut times = vec![Vec::new(); contenders.len()];
    for _ in 0..rounds {
        for (run, t) in contenders.iter_mut().zip(&mut times) {
            t.push(run());
        }
    }
    Rounds(times)
}

/// How long `f` takes.
pub fn timed(f: impl FnOnce()) -> Duration {
    let began = Instant::now();
    f();
    began.elapsed()
}

impl Rounds {
    pub fn median(&self, contender: usize) -> Duration {
        let mut t = self.0[contender].clone();
        t.sort();
        t[t.len() / 2]
    }

    /// How many times `of`'s time is `over`'s: the median of the rounds' ratios, and their
    /// range, as "3.6x (3.3–3.9x)".
    pub fn ratio(&self, of: usize, over: usize) -> String {
        let mut r: Vec<f64> =
            self.0[of].iter().zip(&self.0[over]).map(|(a, b)| a.as_secs_f64() / b.as_secs_f64()).collect();
        r.sort_by(f64::total_cmp);
        let digits = match r[r.len() / 2] {
            m if m < 0.1 => 3,
            m if m < 10.0 => 1,
            _ => 0,
        };
        format!("{:.digits$}x ({:.digits$}–{:.digits$}x)", r[r.len() / 2], r[0], r[r.len() - 1])
    }
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
    if wanted("verify") {
        core::verify();
    }
    if wanted("cold") {
        core::cold();
    }
    if wanted("sweep") {
        core::no_change_refresh();
    }
    if wanted("takeover") {
        core::takeover();
    }
    if wanted("append") {
        core::append_refresh();
    }
    if wanted("server") {
        server::server();
    }
    if wanted("memory") {
        server::memory();
    }
    if wanted("usage") {
        usage::usage();
    }
    if wanted("search") {
        search::search();
    }
    if wanted("list") {
        list::list();
    }
}
