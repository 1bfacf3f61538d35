use std::io::Write;
use std::time::Duration;

use clap::Args;

use super::{empty_archive_hint, progress, thousands, Target, PROBLEMS_HINT};
use crate::refresh::{default_jobs, Options, MAX_JOBS};

#[derive(Args)]
pub struct BackfillArgs {
    #[command(flatten)]
    target: Target,
    /// Threads reading logs, the one writing the index among them (at most 256: more only
    /// wait on one another) [default: all cores]
    #[arg(long, short = 'j', value_name = "N", value_parser = threads, allow_negative_numbers = true)]
    jobs: Option<usize>,
    /// Read every conversation again, whatever its files' stats say: after a change no stat
    /// shows (an ACL, a new group membership, a read that failed for a passing reason). Stopped
    /// halfway, the next refresh reads the rest.
    #[arg(long)]
    reread: bool,
}

pub fn run(a: BackfillArgs) -> anyhow::Result<()> {
    let index = a.target.open()?;
    super::warn_if_index_shared(&index);
    if let Some(jobs) = a.jobs.filter(|&j| j > MAX_JOBS) {
        super::say(format_args!(
            "--jobs {jobs}: reading on {MAX_JOBS} threads, the most that helps (more only wait on one another)"
        ));
    }
    let opts = Options {
        jobs: a.jobs.unwrap_or_else(default_jobs),
        commit_every: Some(Duration::from_millis(500)),
        progress: None,
        reread: a.reread,
        ..Options::default()
    };
    let stats = progress::refresh(&index, opts, Duration::ZERO)?;
    let (conversations, summary) = (super::conversations(stats.conversations), progress::summary(&stats));
    writeln!(super::stdout(), "indexed {conversations}: {summary}{}", rates(&stats))?;
    // All of them, not only those this run logged: a half-written last line counts without being
    // logged (a writer may be mid-append), and a resumed backfill logs only what it read.
    let with_problems = index.status()?.with_problems;
    if with_problems > 0 {
        writeln!(super::stdout(), "{} with problems: {PROBLEMS_HINT}", super::conversations(with_problems as usize))?;
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
    let mb = if mb < 10.0 { format!("{mb:.1}") } else { thousands(mb.round() as u64) };
    format!(" ({} conversations/s, {mb} MB/s)", thousands((read as f64 / secs).round() as u64))
}

/// Parses `--jobs`: a count of threads, 1 or more (0 had silently meant 1).
pub(super) fn threads(s: &str) -> Result<usize, String> {
    Ok(crate::usage::count(s).filter(|n| *n > 0).ok_or("a number of threads, 1 or more")?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refresh::Stats;

    #[test]
    fn rates_are_of_what_was_read_grouped_by_thousands() {
        let fast = Stats {
            full_scans: 12_000,
            unchanged: 5,
            bytes_read: 2_150_000_000,
            duration_ms: 1_000.0,
            ..Stats::default()
        };
        assert_eq!(rates(&fast), " (12,000 conversations/s, 2,150 MB/s)");
        let slow = Stats { appends: 3, bytes_read: 4_560_000, duration_ms: 2_000.0, ..Stats::default() };
        assert_eq!(rates(&slow), " (2 conversations/s, 2.3 MB/s)");
        let unchanged = Stats { unchanged: 10_000, duration_ms: 30.0, ..Stats::default() };
        assert_eq!(rates(&unchanged), "", "nothing read, no rate");
    }
}
