//! How far a refresh has come: a bar on a terminal (first the conversations the stat sweep has
//! looked at, then the files and bytes read; bytes drive the rate and ETA), or log lines: for a
//! server's first index, and for a long refresh whose stderr is no terminal (a log file).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{thousands, with_bar};
use crate::refresh::{Options, Progress, Stats};
use crate::Index;

/// How long the commands that refresh before they answer (`list`, `show`, `query`) stay quiet:
/// most refreshes take milliseconds, and a bar flashing by on each would only distract. A first
/// index of a large archive, or thousands of new conversations, takes seconds.
pub const QUIET_FOR: Duration = Duration::from_secs(1);

/// What a refresh did, in words: "3 appended, 2,997 unchanged, 0.1 MB in 12 ms".
pub fn summary(stats: &Stats) -> String {
    let counts = [
        (stats.full_scans, "read whole"),
        (stats.appends, "appended"),
        (stats.side_only, "side files only"),
        (stats.zone_rendered, "rendered for this time zone"),
        (stats.rechecked, "checked again (written as they were last read)"),
        (stats.deleted, "deleted"),
        (stats.unchanged, "unchanged"),
    ];
    let mut said = String::new();
    for (n, words) in counts.into_iter().filter(|(n, _)| *n > 0) {
        said += &format!("{} {words}, ", thousands(n as u64));
    }
    if stats.with_new_problems > 0 {
        said += &format!("problems logged for {}, ", thousands(stats.with_new_problems as u64));
    }
    let ms = format!("{:.0}", stats.duration_ms);
    said + &format!("{} in {} ms", super::megabytes(stats.bytes_read), super::grouped(&ms))
}

/// Refreshes with `opts` (its `progress` replaced), showing the bar on stderr if it is a
/// terminal and the refresh is still running after `quiet_for`; if stderr is no terminal, a
/// log line every [`LOG_EVERY`] once that long has passed.
pub fn refresh(index: &Index, opts: Options<'_>, quiet_for: Duration) -> crate::Result<Arc<Stats>> {
    if !std::io::stderr().is_terminal() {
        let logged = Logged::quiet(LOG_EVERY);
        return index.refresh_with(&Options { progress: Some(&logged), ..opts });
    }
    // Shown from the start when there is nothing to wait for: the thread below may start only
    // after a short refresh (a busy machine), which would then show no bar at all.
    let target = if quiet_for.is_zero() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
    let bar = ProgressBar::with_draw_target(Some(0), target);
    bar.set_style(style("{spinner} [{elapsed_precise}] listing the archive"));
    let progress = Bar { bar: bar.clone(), files: 0.into(), total_files: 0.into(), commit_every: opts.commit_every };
    let opts = Options { progress: Some(&progress), ..opts };
    let (finished, done) = mpsc::channel::<()>();
    let interrupt = Interrupt::catch();
    let stats = std::thread::scope(|s| {
        let (shown, progress) = (bar.clone(), &progress);
        // No bar (nor a word on Ctrl-C) at the system's limit on threads.
        let _ = std::thread::Builder::new().spawn_scoped(s, move || {
            let started = Instant::now();
            // Ticked here, not by a thread of indicatif's (which would be one more to start), so
            // the bar moves while a cold disk keeps every thread waiting.
            loop {
                if interrupted() {
                    if let Some(scratch) = SCRATCH.lock().unwrap_or_else(|p| p.into_inner()).take() {
                        let _ = std::fs::remove_dir_all(scratch);
                    }
                    shown.finish_and_clear();
                    eprintln!("{}", progress.interrupted());
                    std::process::exit(INTERRUPTED_EXIT);
                }
                if started.elapsed() >= quiet_for && shown.is_hidden() {
                    shown.set_draw_target(ProgressDrawTarget::stderr());
                }
                if !shown.is_hidden() {
                    shown.tick();
                }
                if done.recv_timeout(Duration::from_millis(100)) != Err(RecvTimeoutError::Timeout) {
                    break;
                }
            }
        });
        let stats = with_bar(&bar, || index.refresh_with(&opts));
        drop(finished);
        stats
    });
    drop(interrupt);
    // After the thread above has shown the bar or given up: nothing draws it again.
    bar.finish_and_clear();
    stats
}

/// A directory of the command's own that Ctrl-C removes before the command ends: `verify`'s
/// scratch index, which nothing reads after it.
static SCRATCH: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Makes Ctrl-C, during a refresh with a bar, remove `dir` (None: nothing).
pub fn remove_on_interrupt(dir: Option<&Path>) {
    *SCRATCH.lock().unwrap_or_else(|p| p.into_inner()) = dir.map(Path::to_path_buf);
}

/// The exit code of a command stopped by Ctrl-C, as a shell reports it (128 + SIGINT).
const INTERRUPTED_EXIT: i32 = 130;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Ctrl-C caught while a refresh runs with a terminal for its bar (shown, or not yet), so that
/// the command can clear it and say what the interruption keeps, rather than die with half a
/// bar on the screen. A second Ctrl-C ends it at
/// once. Like a kill, ending keeps what was committed (every 0.5 s in a backfill).
struct Interrupt(libc::sigaction);

impl Interrupt {
    fn catch() -> Interrupt {
        extern "C" fn on_sigint(_: libc::c_int) {
            // Only what is safe in a signal handler: an atomic store, and _exit.
            if INTERRUPTED.swap(true, Ordering::Relaxed) {
                unsafe { libc::_exit(INTERRUPTED_EXIT) };
            }
        }
        // SAFETY: installs a handler that does only the async-signal-safe things above, keeping
        // the one before to put back.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            let mut before: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGINT, &action, &mut before);
            Interrupt(before)
        }
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        // SAFETY: puts back the disposition `catch` found.
        unsafe { libc::sigaction(libc::SIGINT, &self.0, std::ptr::null_mut()) };
    }
}

struct Bar {
    bar: ProgressBar,
    files: AtomicU64,
    total_files: AtomicU64,
    /// The refresh's, for what an interruption keeps.
    commit_every: Option<Duration>,
}

impl Progress for Bar {
    fn sweeping(&self, conversations: u64) {
        self.bar.set_style(style(
            "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} conversations looked at",
        ));
        self.bar.set_length(conversations);
    }

    fn swept(&self) {
        self.bar.inc(1);
    }

    fn start(&self, files: u64, bytes: u64) {
        self.total_files.store(files, Ordering::Relaxed);
        if files == 0 {
            return; // nothing to read: the sweep's line stays until the end
        }
        // The rate is of reading, not of the sweep before it (which read no bytes).
        self.bar.reset_eta();
        // In this order, a frame drawn between two steps shows little out of place: the sweep's
        // line has no message, and the new style is first drawn at the new length.
        self.bar.set_message(format!("0/{} files", thousands(files)));
        self.bar.set_style(style(
            "{spinner} [{elapsed_precise}] {wide_bar} {msg}  {decimal_bytes}/{decimal_total_bytes}  {decimal_bytes_per_sec}  ETA {eta}",
        ));
        self.bar.set_length(bytes);
        self.bar.set_position(0);
    }

    fn advance(&self, files: u64, bytes: u64) {
        let done = self.files.fetch_add(files, Ordering::Relaxed) + files;
        let total = self.total_files.load(Ordering::Relaxed);
        self.bar.inc(bytes);
        self.bar.set_message(format!("{}/{} files", thousands(done), thousands(total)));
    }
}

impl Bar {
    /// What a Ctrl-C leaves, said as the command ends.
    fn interrupted(&self) -> String {
        let (done, total) = (self.files.load(Ordering::Relaxed), self.total_files.load(Ordering::Relaxed));
        if total == 0 {
            return "convmeta: interrupted before reading anything".into();
        }
        let kept = match self.commit_every {
            Some(every) => format!(
                "all but the last {} s of that is kept, and the next command goes on from there",
                every.as_secs_f64()
            ),
            None => "this command keeps nothing until its refresh ends, so the next one reads them again".into(),
        };
        let (done, total) = (thousands(done), thousands(total));
        format!("convmeta: interrupted with {done} of {total} conversations read; {kept}")
    }
}

/// A refresh's progress as log lines: what it is to do (unless quiet), then, at most every
/// `every`, how far it has come.
pub struct Logged {
    /// Said at once: the conversations to look at, then those to read. Quiet, a refresh that
    /// ends within `every` says nothing.
    say_start: bool,
    every: Duration,
    /// Conversations the sweep is to look at, and has.
    sweep: (AtomicU64, AtomicU64),
    total: (AtomicU64, AtomicU64),
    done: (AtomicU64, AtomicU64),
    logged_at: Mutex<Instant>,
    /// Also told as a status to the service manager (`serve` under systemd: see
    /// [`crate::server::systemd::notify`]), with more time to start, since it is getting on.
    tell: Option<fn(&str)>,
}

/// How long each line of [`Logged`]'s gives a first index to go on under systemd, which would
/// otherwise stop a service that takes over `TimeoutStartSec` (90 s) to start: well over
/// [`LOG_EVERY`], since lines come only as conversations are read.
const MORE_TIME_TO_START: Duration = Duration::from_secs(60);

/// How often [`Logged`] says how far a refresh has come.
pub const LOG_EVERY: Duration = Duration::from_secs(5);

impl Default for Logged {
    /// For `serve`'s first index of an archive, which may take minutes.
    fn default() -> Self {
        Logged {
            say_start: true,
            every: LOG_EVERY,
            sweep: Default::default(),
            total: Default::default(),
            done: Default::default(),
            logged_at: Mutex::new(Instant::now()),
            tell: Some(crate::server::systemd::notify),
        }
    }
}

impl Logged {
    /// Only the lines of how far it has come, the first after `every`.
    fn quiet(every: Duration) -> Logged {
        Logged { say_start: false, every, tell: None, ..Logged::default() }
    }

    /// Tells the service manager, if any, how far the first index has come.
    fn tell(&self, status: std::fmt::Arguments<'_>) {
        if let Some(tell) = self.tell {
            tell(&format!("STATUS={status}\nEXTEND_TIMEOUT_USEC={}", MORE_TIME_TO_START.as_micros()));
        }
    }

    /// Whether a line is due, and if so, that one was said now. Never waits: a sweep's threads
    /// call it for every conversation.
    fn due(&self) -> bool {
        let Ok(mut logged_at) = self.logged_at.try_lock() else { return false };
        let due = logged_at.elapsed() >= self.every;
        if due {
            *logged_at = Instant::now();
        }
        due
    }
}

impl Progress for Logged {
    fn sweeping(&self, conversations: u64) {
        self.sweep.0.store(conversations, Ordering::Relaxed);
        if self.say_start {
            tracing::info!(conversations, "looking at the archive");
        }
        self.tell(format_args!("looking at the archive: {conversations} conversations"));
    }

    fn swept(&self) {
        let swept = self.sweep.1.fetch_add(1, Ordering::Relaxed) + 1;
        // The clock looked at once in a while: this is called for every conversation.
        if swept.is_multiple_of(256) && self.due() {
            let conversations = format!("{swept}/{}", self.sweep.0.load(Ordering::Relaxed));
            tracing::info!(conversations, "looking at the archive");
            self.tell(format_args!("looking at the archive: {conversations} conversations"));
        }
    }

    fn start(&self, files: u64, bytes: u64) {
        self.total.0.store(files, Ordering::Relaxed);
        self.total.1.store(bytes, Ordering::Relaxed);
        let mb = (bytes as f64 / 1e5).round() / 10.0;
        if self.say_start && files > 0 {
            tracing::info!(conversations = files, mb, "to read");
        }
        self.tell(format_args!("indexing: {files} conversations to read, {mb} MB"));
    }

    fn advance(&self, files: u64, bytes: u64) {
        let files = self.done.0.fetch_add(files, Ordering::Relaxed) + files;
        let bytes = self.done.1.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if self.due() {
            let total = |t: &AtomicU64| t.load(Ordering::Relaxed);
            let mb = |b: u64| b as f64 / 1e6;
            let conversations = format!("{files}/{}", total(&self.total.0));
            let mb = format!("{:.1}/{:.1}", mb(bytes), mb(total(&self.total.1)));
            tracing::info!(conversations, mb, "reading");
            self.tell(format_args!("indexing: {conversations} conversations read, {mb} MB"));
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).expect("valid template")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `f` logs, as plain text.
    fn logged(f: impl FnOnce()) -> String {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let out = buf.clone();
        let subscriber =
            tracing_subscriber::fmt().with_ansi(false).without_time().with_writer(move || Sink(out.clone())).finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = buf.lock().unwrap().clone();
        String::from_utf8(text).unwrap()
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Counts and sizes are grouped by thousands, as the tables write them; what did not happen
    /// is not said.
    #[test]
    fn a_summary_says_what_happened_in_grouped_numbers() {
        let stats = Stats {
            conversations: 1_001_234,
            full_scans: 1_234,
            unchanged: 1_000_000,
            with_new_problems: 7,
            bytes_read: 1_234_567_890,
            duration_ms: 14_402.4,
            ..Stats::default()
        };
        let said = summary(&stats);
        assert_eq!(said, "1,234 read whole, 1,000,000 unchanged, problems logged for 7, 1,234.6 MB in 14,402 ms");
        let quiet = Stats { unchanged: 3, bytes_read: 0, duration_ms: 0.4, ..Stats::default() };
        assert_eq!(summary(&quiet), "3 unchanged, 0.0 MB in 0 ms");
    }

    fn run(progress: &Logged) {
        progress.sweeping(300);
        (0..256).for_each(|_| progress.swept());
        progress.start(2, 2_000_000);
        progress.advance(1, 1_500_000);
    }

    /// Where stderr is no terminal (a log file), a refresh that ends within the interval says
    /// nothing, and a longer one says how far it has come, totals included; `serve`'s first index
    /// says what it is to do at once.
    #[test]
    fn progress_as_log_lines() {
        assert_eq!(logged(|| run(&Logged::quiet(Duration::from_secs(3600)))), "");
        let due = logged(|| run(&Logged::quiet(Duration::ZERO)));
        let lines: Vec<&str> = due.lines().collect();
        assert_eq!(lines.len(), 2, "{due}");
        assert!(lines[0].contains("looking at the archive conversations=\"256/300\""), "{due}");
        assert!(lines[1].contains("reading conversations=\"1/2\" mb=\"1.5/2.0\""), "{due}");
        let serve = logged(|| run(&Logged::default()));
        assert!(
            serve.contains("looking at the archive conversations=300") && serve.contains("to read conversations=2")
        );
    }

    /// Under systemd, `serve`'s first index says how far it has come as its status, each time
    /// with more time to start.
    #[test]
    fn a_first_index_tells_the_service_manager_how_far_it_has_come() {
        static TOLD: Mutex<Vec<String>> = Mutex::new(Vec::new());
        let tell: fn(&str) = |state| TOLD.lock().unwrap().push(state.to_owned());
        run(&Logged { every: Duration::ZERO, tell: Some(tell), ..Logged::default() });
        let told = TOLD.lock().unwrap().clone();
        let statuses: Vec<&str> = told.iter().map(|t| t.lines().next().unwrap()).collect();
        assert_eq!(
            statuses,
            [
                "STATUS=looking at the archive: 300 conversations",
                "STATUS=looking at the archive: 256/300 conversations",
                "STATUS=indexing: 2 conversations to read, 2 MB",
                "STATUS=indexing: 1/2 conversations read, 1.5/2.0 MB",
            ]
        );
        assert!(told.iter().all(|t| t.ends_with("\nEXTEND_TIMEOUT_USEC=60000000")), "{told:?}");
        // Other commands' progress tells nobody.
        assert!(Logged::quiet(Duration::ZERO).tell.is_none());
    }
}
