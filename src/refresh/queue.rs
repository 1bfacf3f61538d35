//! The queue of a refresh's jobs, and reading their files ahead when the disk is cold.

use std::sync::atomic::{AtomicBool, Ordering};

use super::Job;
use crate::scan;

/// The jobs of a refresh, taken from both ends: the largest first by the threads that only
/// build rows, the smallest first by the one that also writes them. Once a read has found the
/// disk cold, whoever takes a job asks the kernel to read ahead the files of the next few on its
/// side (see [`scan::read_ahead`]): a backfill's reads then wait together, while the threads
/// parse, instead of each in its turn. (With the archive in memory that would cost a tenth of
/// a backfill of short conversations, for nothing.)
pub(super) struct Queue<'a> {
    jobs: &'a [Job],
    cold: &'a AtomicBool,
    /// The jobs not taken yet, and those whose files are not being read ahead yet (within the
    /// first: it shrinks from both ends ahead of it).
    left: std::sync::Mutex<(std::ops::Range<usize>, std::ops::Range<usize>)>,
}

impl<'a> Queue<'a> {
    /// Jobs read ahead on each side: enough to keep a disk's queue busy with small files.
    const READ_AHEAD: usize = 32;

    pub(super) fn new(jobs: &'a [Job], cold: &'a AtomicBool) -> Self {
        Queue { jobs, cold, left: std::sync::Mutex::new((0..jobs.len(), 0..jobs.len())) }
    }

    pub(super) fn take(&self, largest: bool) -> Option<&'a Job> {
        let (taken, ahead) = {
            let mut left = self.left.lock().unwrap_or_else(|p| p.into_inner());
            let (todo, unread) = &mut *left;
            let i = if largest { todo.next() } else { todo.next_back() }?;
            let cold = self.cold.load(Ordering::Relaxed);
            (i, if cold { read_ahead_range(i, largest, unread, Self::READ_AHEAD) } else { 0..0 })
        };
        self.jobs[ahead].iter().for_each(read_ahead);
        Some(&self.jobs[taken])
    }
}

/// Of the jobs in `unread`, the next `n` after job `i` in the direction it was taken in (up
/// from the front, down from the back); they leave `unread`, so each is read ahead once.
fn read_ahead_range(i: usize, up: bool, unread: &mut std::ops::Range<usize>, n: usize) -> std::ops::Range<usize> {
    let ahead = if up {
        let lo = unread.start.max(i + 1).min(unread.end);
        lo..(i + 1 + n).clamp(lo, unread.end)
    } else {
        let hi = unread.end.min(i).max(unread.start);
        i.saturating_sub(n).clamp(unread.start, hi)..hi
    };
    if up {
        unread.start = ahead.end;
    } else {
        unread.end = ahead.start;
    }
    ahead
}

/// Starts reading what [`build`](mod@super::build) will read whole: a new conversation's log and `config.toml`.
/// (An append reads a few kilobytes, from where the last read stopped: nothing to gain.)
fn read_ahead(job: &Job) {
    if job.prior.is_some() {
        return;
    }
    let f = &job.found;
    if f.log.is_file {
        scan::read_ahead(&f.log_path(), f.log.size);
    }
    if let Some(config) = f.side[1].filter(|m| m.is_file) {
        scan::read_ahead(&f.dir.join("config.toml"), config.size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes `n` jobs from both ends in a random order and checks the read-ahead bookkeeping:
    /// each job is read ahead at most once, never after it was taken, and every job but the
    /// first taken from each end was read ahead before it was taken, no more than `ahead` jobs
    /// before its turn on that side.
    #[test]
    fn each_job_is_read_ahead_once_and_before_its_turn() {
        let mut rng = crate::test_rng::Rng(0x9e37_79b9_7f4a_7c15);
        for n in [0, 1, 2, 3, 5, 10, 33, 100] {
            for ahead in [1, 2, 4, 32] {
                for _ in 0..50 {
                    let (mut todo, mut unread) = (0..n, 0..n);
                    let mut read_at: Vec<Option<usize>> = vec![None; n]; // the take that read it ahead
                    let mut firsts = (None, None);
                    for take in 0..n {
                        let up = rng.next() & 1 == 0;
                        let i = if up { todo.next() } else { todo.next_back() }.unwrap();
                        let first = if up { &mut firsts.0 } else { &mut firsts.1 };
                        let is_first = first.is_none();
                        first.get_or_insert(i);
                        match read_at[i] {
                            Some(_) => {}
                            None => assert!(is_first, "job {i} of {n} was taken without being read ahead"),
                        }
                        let range = read_ahead_range(i, up, &mut unread, ahead);
                        assert!(range.len() <= ahead);
                        for j in range {
                            assert!(read_at[j].is_none(), "job {j} of {n} read ahead twice");
                            assert!(todo.contains(&j), "job {j} of {n} read ahead after it was taken");
                            assert!(j.abs_diff(i) <= ahead, "job {j} read ahead too early, at job {i}");
                            read_at[j] = Some(take);
                        }
                    }
                }
            }
        }
    }
}
