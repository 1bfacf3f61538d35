use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{empty_archive_hint, with_bar, Target, PROBLEMS_QUERY};
use crate::refresh::{default_jobs, Options, Progress};

#[derive(Args)]
pub struct BackfillArgs {
    #[command(flatten)]
    target: Target,
    /// Threads reading logs, the one writing the index among them [default: all cores]
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
}

/// Files and bytes on one bar; bytes drive the rate and ETA.
struct Bar {
    bar: ProgressBar,
    files: std::sync::atomic::AtomicU64,
    total_files: std::sync::atomic::AtomicU64,
}

impl Progress for Bar {
    fn start(&self, files: u64, bytes: u64) {
        self.total_files.store(files, std::sync::atomic::Ordering::Relaxed);
        self.bar.set_length(bytes);
        self.bar.set_message(format!("0/{files} files"));
    }

    fn advance(&self, files: u64, bytes: u64) {
        let done = self.files.fetch_add(files, std::sync::atomic::Ordering::Relaxed) + files;
        let total = self.total_files.load(std::sync::atomic::Ordering::Relaxed);
        self.bar.inc(bytes);
        self.bar.set_message(format!("{done}/{total} files"));
    }
}

pub fn run(a: BackfillArgs) -> anyhow::Result<()> {
    let index = a.target.open()?;
    let target =
        if std::io::stderr().is_terminal() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
    let bar = ProgressBar::with_draw_target(Some(0), target);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {msg}  {binary_bytes}/{binary_total_bytes}  {binary_bytes_per_sec}  ETA {eta}")
            .expect("valid template"),
    );
    let progress = Bar { bar, files: 0.into(), total_files: 0.into() };
    let opts = Options {
        jobs: a.jobs.unwrap_or_else(default_jobs).max(1),
        commit_every: Some(Duration::from_millis(500)),
        progress: Some(&progress),
    };
    let stats = with_bar(&progress.bar, || index.refresh_with(&opts))?;
    progress.bar.finish_and_clear();
    let secs = stats.duration_ms / 1e3;
    let rate = if secs > 0.0 { stats.bytes_read as f64 / 1e6 / secs } else { 0.0 };
    writeln!(std::io::stdout(), "indexed {} conversations: {stats} ({rate:.0} MB/s)", stats.conversations)?;
    // All of them, not only those this run logged: a half-written last line counts without being
    // logged (a writer may be mid-append), and a resumed backfill logs only what it read.
    let with_problems = index.status()?.with_problems;
    if with_problems > 0 {
        writeln!(std::io::stdout(), "{with_problems} conversations with problems: {PROBLEMS_QUERY}")?;
    }
    if stats.conversations == 0 {
        super::say(empty_archive_hint(index.logs()));
    }
    Ok(())
}
