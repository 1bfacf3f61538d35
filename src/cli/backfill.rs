use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
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

/// One bar: the conversations the sweep has looked at, then the files and bytes read (bytes
/// drive the rate and ETA).
struct Bar {
    bar: ProgressBar,
    files: AtomicU64,
    total_files: AtomicU64,
}

impl Progress for Bar {
    fn sweeping(&self, conversations: u64) {
        self.bar.set_style(style("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} conversations looked at"));
        self.bar.set_length(conversations);
    }

    fn swept(&self) {
        self.bar.inc(1);
    }

    fn start(&self, files: u64, bytes: u64) {
        self.total_files.store(files, Ordering::Relaxed);
        if files == 0 {
            return; // nothing to read: the sweep's line stays until the summary
        }
        // The rate is of reading, not of the sweep before it (which read no bytes).
        self.bar.reset_eta();
        // In this order, a frame drawn between two steps shows little out of place: the sweep's
        // line has no message, and the new style is first drawn at the new length.
        self.bar.set_message(format!("0/{files} files"));
        self.bar.set_style(style(
            "{spinner} [{elapsed_precise}] {wide_bar} {msg}  {binary_bytes}/{binary_total_bytes}  {binary_bytes_per_sec}  ETA {eta}",
        ));
        self.bar.set_length(bytes);
        self.bar.set_position(0);
    }

    fn advance(&self, files: u64, bytes: u64) {
        let done = self.files.fetch_add(files, Ordering::Relaxed) + files;
        let total = self.total_files.load(Ordering::Relaxed);
        self.bar.inc(bytes);
        self.bar.set_message(format!("{done}/{total} files"));
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).expect("valid template")
}

pub fn run(a: BackfillArgs) -> anyhow::Result<()> {
    let index = a.target.open()?;
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        // Moving while a cold disk keeps every thread waiting, and before the sweep begins.
        bar.enable_steady_tick(Duration::from_millis(100));
    }
    bar.set_style(style("{spinner} [{elapsed_precise}] listing the archive"));
    let progress = Bar { bar, files: 0.into(), total_files: 0.into() };
    let opts = Options {
        jobs: a.jobs.unwrap_or_else(default_jobs).max(1),
        commit_every: Some(Duration::from_millis(500)),
        progress: Some(&progress),
    };
    let stats = with_bar(&progress.bar, || index.refresh_with(&opts))?;
    progress.bar.finish_and_clear();
    writeln!(std::io::stdout(), "indexed {} conversations: {stats}{}", stats.conversations, rates(&stats))?;
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

/// " (N conversations/s, M MB/s)" over the conversations read: the first says more for many
/// small ones, the second for large ones. Nothing when none was read.
fn rates(stats: &crate::refresh::Stats) -> String {
    let read = stats.full_scans + stats.appends + stats.side_only + stats.rechecked;
    let secs = stats.duration_ms / 1e3;
    if read == 0 || secs <= 0.0 {
        return String::new();
    }
    let mb = stats.bytes_read as f64 / 1e6 / secs;
    let mb = if mb < 10.0 { format!("{mb:.1}") } else { format!("{mb:.0}") };
    format!(" ({:.0} conversations/s, {mb} MB/s)", read as f64 / secs)
}
