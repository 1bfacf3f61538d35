//! The command line: one file per subcommand. `main.rs` parses, runs and maps errors to exit
//! codes; everything here works through [`crate::Index`]. This file holds what the commands
//! share: the archive and database they name ([`Target`]), and how output reads to people
//! (control characters escaped, columns by the cells a terminal gives, lines cut to it, counts
//! grouped by thousands, local times).

mod backfill;
pub mod completions;
mod list;
mod man;
mod progress;
mod query;
mod search;
mod serve;
mod show;
mod status;
mod usage;
mod verify;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use clap::{Args, Parser, Subcommand};

use crate::format::gptme;
use crate::scan::Fnv;
use crate::Index;

#[derive(Parser)]
#[command(name = "convmeta", version, about = "A fast, exact metadata index of gptme conversation logs")]
#[command(mut_subcommands = |command| command.mut_args(value_as_given))]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Index every conversation of an archive (parallel, resumable).
    Backfill(backfill::BackfillArgs),
    /// Refresh, then print the newest conversations.
    List(list::ListArgs),
    /// Refresh, then print one conversation's metadata.
    Show(show::ShowArgs),
    /// Refresh, then print the conversations whose messages say a text, newest first.
    ///
    /// The exit code is grep's: 0 when a message says it, 1 when none does, 2 on an error or
    /// when a log could not be read.
    Search(search::SearchArgs),
    /// Print what the index holds.
    Status(status::StatusArgs),
    /// Refresh, then run one read-only SQL statement over the index (`--schema` describes its
    /// tables).
    Query(query::QueryArgs),
    /// Refresh, then print token usage and cost by day, week, month, model, conversation, workspace or agent.
    Usage(usage::UsageArgs),
    /// Read the whole archive afresh into a scratch index, and compare it with the index, row by
    /// row: whether the index holds what a full read gives.
    ///
    /// The scratch index lies under $TMPDIR (else /tmp) and is removed after. A conversation
    /// that differs was changed in a way no stat shows (a log rewritten with its size and mtime
    /// kept), or shows a bug worth reporting; `convmeta backfill --reread` reads every
    /// conversation again. Conversations that change while it reads are named, not compared.
    ///
    /// The exit code is cmp's: 0 when it does, 1 when a conversation differs, 2 on an error.
    Verify(verify::VerifyArgs),
    /// Serve gptme-server's conversation list over HTTP, always fresh; forward the rest.
    Serve(serve::ServeArgs),
    /// Print the script that makes a shell complete convmeta's commands, flags and conversation
    /// ids (bash, zsh, fish, elvish, powershell): `source <(convmeta completions bash)`.
    Completions(completions::CompletionsArgs),
    /// Print convmeta's manual page (roff): `convmeta man | man -l -`, or save it as
    /// convmeta.1 in a directory of `manpath`.
    Man(man::ManArgs),
}

/// Which archive and which database.
#[derive(Args, Clone)]
pub struct Target {
    /// The gptme logs directory [default: $GPTME_LOGS_HOME; else, with --db or $CONVMETA_DB,
    /// the one that database was last refreshed for; else $XDG_DATA_HOME/gptme/logs, else
    /// ~/.local/share/gptme/logs, or on macOS, if that is missing, ~/Library/Application
    /// Support/gptme/logs]
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub logs: Option<PathBuf>,
    /// The index database [default: $CONVMETA_DB, else a file under $XDG_CACHE_HOME/convmeta
    /// (~/.cache, on macOS ~/Library/Caches) named after the logs directory]
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub db: Option<PathBuf>,
}

/// Whether `path` (which need not exist) is in the logs directory `logs`, however either is
/// named: the archive is gptme's, and convmeta writes nothing there (in a conversation's
/// directory, each write would also be a change of that conversation to read again).
pub fn inside_logs(path: &Path, logs: &Path) -> bool {
    gptme::side::realpath(path).starts_with(gptme::side::realpath(logs))
}

impl Target {
    /// The logs directory, which a refresh reads: it must be one.
    pub fn logs_dir(&self) -> anyhow::Result<PathBuf> {
        let logs = self.chosen_logs()?;
        if !logs.is_dir() {
            anyhow::bail!("logs directory {} does not exist or is not a directory", logs.display());
        }
        Ok(logs)
    }

    /// `--logs`; else `$GPTME_LOGS_HOME`; else, for a database named (`--db`, `$CONVMETA_DB`),
    /// the logs directory it was last refreshed for, so that `--db` alone reads the archive it
    /// indexes (not gptme's default one, which would take the index over) unless that one is
    /// gone and the default is there; else gptme's default.
    fn chosen_logs(&self) -> anyhow::Result<PathBuf> {
        if let Some(logs) = self.logs.clone().or_else(gptme::logs_home) {
            return Ok(logs);
        }
        let recorded = self.named_db().and_then(|db| Index::recorded_logs(&db));
        match (recorded, gptme::default_logs_dir()) {
            (Some(recorded), Some(default)) if recorded.is_dir() || !default.is_dir() => Ok(recorded),
            (_, Some(default)) => Ok(default),
            (Some(recorded), None) => Ok(recorded),
            (None, None) => anyhow::bail!("cannot find gptme's logs directory: pass --logs or set GPTME_LOGS_HOME"),
        }
    }

    /// The database named by `--db` or `$CONVMETA_DB`, if one is.
    fn named_db(&self) -> Option<PathBuf> {
        let db =
            self.db.clone().or_else(|| std::env::var_os("CONVMETA_DB").filter(|v| !v.is_empty()).map(PathBuf::from))?;
        // SQLite takes a name that begins with `file:` for a URI (`file:x?mode=memory` names no
        // file at all, and each connection would see another database): named from `.`, it
        // stays the file the user gave.
        Some(if db.as_os_str().as_encoded_bytes().starts_with(b"file:") { Path::new(".").join(db) } else { db })
    }

    /// The database for `logs`: never inside it (see [`inside_logs`]).
    pub fn db_path(&self, logs: &Path) -> anyhow::Result<PathBuf> {
        let db = match self.named_db() {
            Some(db) => db,
            None => default_db_path(logs)?,
        };
        if inside_logs(&db, logs) {
            let real_logs = gptme::side::realpath(logs);
            let beside = real_logs.parent().unwrap_or(&real_logs).join("convmeta.sqlite3");
            anyhow::bail!(
                "the database {} is inside the logs directory {}, which convmeta never writes: pass a --db outside it ({}, say)",
                db.display(),
                logs.display(),
                beside.display()
            );
        }
        Ok(db)
    }

    pub fn open(&self) -> anyhow::Result<Index> {
        let logs = self.logs_dir()?;
        let db = self.db_path(&logs)?;
        Ok(Index::open(&logs, &db)?)
    }

    /// [`Target::open`] for the commands that only read (`status`, `query --no-refresh`): where
    /// this user may not write the database (another user's, on a read-only file system), the
    /// file alone, to be read as it is; where there is none, none is made. The logs directory
    /// need not exist: what the database holds is read, not the archive.
    pub fn open_for_reading(&self) -> anyhow::Result<Reading> {
        let logs = self.chosen_logs()?;
        if logs.exists() && !logs.is_dir() {
            anyhow::bail!("logs directory {} is not a directory", logs.display());
        }
        let db = self.db_path(&logs)?;
        if std::fs::symlink_metadata(&db).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
            return Ok(Reading::Missing { logs, db });
        }
        match Index::open(&logs, &db) {
            Ok(index) => Ok(Reading::Index(Box::new(index))),
            Err(e) if e.is_read_only() || e.is_out_of_space() => Ok(Reading::ReadOnly { logs, db }),
            Err(e) => Err(e.into()),
        }
    }

    /// [`Target::open`] for `serve`, which also starts before gptme has made its logs directory
    /// (as gptme-server does), answering an empty list until it exists.
    pub fn open_maybe_missing(&self) -> anyhow::Result<Index> {
        match self.logs_dir() {
            Ok(_) => self.open(),
            Err(e) => {
                let logs = self.chosen_logs().map_err(|_| e)?;
                if logs.exists() {
                    anyhow::bail!("logs directory {} is not a directory", logs.display());
                }
                tracing::warn!(
                    logs = %logs.display(),
                    "the logs directory does not exist yet; answering an empty list until gptme makes it"
                );
                Ok(Index::open(&logs, &self.db_path(&logs)?)?)
            }
        }
    }
}

/// A conversation id as given: never empty, which would name no conversation, while every id
/// holds it (so `show ''` would suggest them all).
pub fn conversation_id(s: &str) -> Result<String, String> {
    match s.is_empty() {
        true => Err("a conversation id is its directory's name, never empty".into()),
        false => Ok(s.to_owned()),
    }
}

/// The conversation id `arg` names (`show ID`, `usage --conversation ID`): as given, or the directory name when it is a path to a conversation
/// directory of `logs` (a shell's completion adds the trailing `/`) or to a file in one (the
/// log, as an item's `path` gives it).
pub fn id_named(arg: &str, logs: &Path) -> String {
    let trimmed = arg.trim_end_matches('/');
    let path = Path::new(trimmed);
    let is_logs = |dir: &Path| {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        dir.canonicalize().ok().zip(logs.canonicalize().ok()).is_some_and(|(d, l)| d == l)
    };
    let name = |p: &Path| p.file_name().and_then(|n| n.to_str()).map(str::to_owned);
    let parent = path.parent().unwrap_or(Path::new(""));
    let named = if trimmed.is_empty() {
        None
    } else if !trimmed.contains('/') || is_logs(parent) {
        name(path)
    } else if path.is_file() && parent.parent().is_some_and(is_logs) {
        name(parent)
    } else {
        None
    };
    named.unwrap_or_else(|| arg.to_owned())
}

/// Parses a positive number of seconds (a flag's value). One past a century is a century: as
/// good as forever, and a deadline that far off can still be added to a clock reading (one
/// further could not, and would panic).
pub fn seconds(s: &str) -> Result<std::time::Duration, String> {
    const CENTURY: f64 = 100.0 * 365.25 * 86_400.0;
    let secs = s.parse::<f64>().ok().filter(|secs| *secs > 0.0 && secs.is_finite());
    secs.and_then(|secs| std::time::Duration::try_from_secs_f64(secs.min(CENTURY)).ok())
        .ok_or_else(|| "a positive number of seconds, such as 2 or 0.5".into())
}

/// What [`Target::open_for_reading`] opened.
pub enum Reading {
    Index(Box<Index>),
    /// A database this user may read but not write (not theirs, or on a full disk).
    ReadOnly {
        logs: PathBuf,
        db: PathBuf,
    },
    /// No database there yet: nothing to read, and a command that only reads makes none.
    Missing {
        logs: PathBuf,
        db: PathBuf,
    },
}

/// `$XDG_CACHE_HOME/convmeta/<dir name>-<hash of its realpath>.sqlite3`: one database per
/// archive, and a name a person can recognise. Without an absolute `$XDG_CACHE_HOME`, under
/// `~/.cache`, or on macOS `~/Library/Caches` (which backups skip).
pub fn default_db_path(logs: &Path) -> anyhow::Result<PathBuf> {
    let user_cache = if cfg!(target_vendor = "apple") { "Library/Caches" } else { ".cache" };
    // A relative one is to be ignored (the XDG Base Directory spec).
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|v| v.is_absolute())
        .or_else(|| gptme::side::home_dir().filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(user_cache)))
        .ok_or_else(|| anyhow::anyhow!("cannot find a cache directory: pass --db or set CONVMETA_DB"))?;
    // One that does not exist yet is resolved as far as it does: the same path once it is made.
    let real = std::fs::canonicalize(logs).unwrap_or_else(|_| gptme::side::realpath(logs));
    let mut h = Fnv::new(0);
    h.write(real.as_os_str().as_encoded_bytes());
    let name = real.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "root".into());
    Ok(cache.join("convmeta").join(format!("{name}-{:016x}.sqlite3", h.0)))
}

/// Runs the command; its exit code when it ran: 0, but for `search`, which says as grep does
/// whether it found anything (1: nothing found; 2: a log not read).
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    let done = |ran: anyhow::Result<()>| ran.map(|()| 0);
    match cli.command {
        Command::Backfill(a) => done(backfill::run(a)),
        Command::List(a) => done(list::run(a)),
        Command::Show(a) => done(show::run(a)),
        Command::Search(a) => search::run(a),
        Command::Status(a) => done(status::run(a)),
        Command::Serve(a) => done(serve::run(a)),
        Command::Query(a) => done(query::run(a)),
        Command::Usage(a) => done(usage::run(a)),
        Command::Verify(a) => verify::run(a),
        Command::Completions(a) => done(completions::run(a)),
        Command::Man(a) => done(man::run(a)),
    }
}

/// An option's value is the next argument whatever it starts with, as getopt takes it
/// (`--model -4o`, `-q -v`; `grep -e -v`): clap would take a leading `-` for a flag it does not
/// know. A value that is refused is then refused for what it is (`invalid value '-x' for
/// '--sort'`), not as an unknown flag. Positional arguments keep clap's rule, so that a flag
/// after them is still a flag.
fn value_as_given(arg: clap::Arg) -> clap::Arg {
    let option = arg.get_long().is_some() || arg.get_short().is_some();
    match option && arg.get_action().takes_values() {
        true => arg.allow_hyphen_values(true),
        false => arg,
    }
}

impl Cli {
    /// The command line as clap parses it, then checked across flags as clap cannot check it:
    /// a `--since` after `--until`, or `query --schema` in a format it has not, fails as clap's
    /// errors do (exit code 2), before any work.
    pub fn parse_checked() -> Cli {
        let cli = Cli::parse();
        let reversed = |(since, until)| crate::usage::reversed(since, until, "--");
        let (name, conflict) = match &cli.command {
            Command::List(a) => ("list", reversed(a.narrow.spans())),
            Command::Search(a) => ("search", reversed(a.narrow.spans())),
            Command::Usage(a) => ("usage", reversed((a.since.as_ref(), a.until.as_ref()))),
            Command::Query(a) => ("query", a.conflict()),
            _ => return cli,
        };
        if let Some(why) = conflict {
            let mut command = <Cli as clap::CommandFactory>::command();
            command.build(); // names each subcommand `convmeta NAME`, for its usage line
            let sub = command.find_subcommand_mut(name).expect("a subcommand of Cli");
            sub.error(clap::error::ErrorKind::ArgumentConflict, why).exit();
        }
        cli
    }

    /// The exit code of the command when it fails: 1, but 2 for `search`, whose 1 says that
    /// nothing was found, as grep's and ripgrep's do.
    pub fn failure_code(&self) -> i32 {
        match self.command {
            Command::Search(_) => search::TROUBLE.into(),
            Command::Verify(_) => verify::TROUBLE.into(),
            _ => 1,
        }
    }
}

/// How to see which conversations have problems, and what they are, and where in one's log.
pub const PROBLEMS_HINT: &str =
    "convmeta list --problems --hidden says what they are (the log's lines: convmeta show ID)";

/// Said when an archive lists nothing: most often `--logs` names the wrong directory, one
/// conversation or gptme's data directory, which holds the logs directory.
pub fn empty_archive_hint(logs: &Path) -> String {
    if logs.join(gptme::LOG_FILE).exists() {
        let parent = logs.parent().unwrap_or(logs);
        return format!(
            "{} is one conversation; --logs takes the directory that holds them ({})",
            logs.display(),
            parent.display()
        );
    }
    let inner = logs.join("logs");
    let holds_conversations = std::fs::read_dir(&inner)
        .is_ok_and(|mut entries| entries.any(|e| e.is_ok_and(|e| e.path().join(gptme::LOG_FILE).exists())));
    if holds_conversations {
        return format!("no conversations in {}, but in {}: pass that as --logs", logs.display(), inner.display());
    }
    format!("no conversations in {}: gptme keeps each in <logs>/<id>/{}", logs.display(), gptme::LOG_FILE)
}

/// `text` safe to print on one line of a terminal: tabs and line breaks become spaces, and other
/// control characters (an escape sequence in a conversation's name, say) are shown escaped, as
/// are the bidirectional overrides, which would reorder the rest of the line as shown.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' | '\n' | '\r' => out.push(' '),
            '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
                out.extend(c.escape_unicode())
            }
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// The columns `text` takes on a terminal: two for wide characters (CJK, most emoji), none for
/// combining marks.
pub fn width(text: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(text)
}

/// `text` in at most `max` columns, an ellipsis marking a cut.
pub fn fit(text: &str, max: usize) -> String {
    if width(text) <= max {
        return text.to_owned();
    }
    let mut out: String = fitting(text.chars(), max.saturating_sub(1)).into_iter().collect();
    out.push('…');
    out
}

/// A model's name in at most `max` columns: whole where it fits; else without its provider,
/// cut at its end if need be (`anthropic/claude-opus-4-1`: `claude-opus-4-1`, not
/// `anthropic/claude-opus-4…`), as the end of a name tells models apart, and the provider
/// rarely does.
pub fn fit_model(model: &str, max: usize) -> String {
    let name = model.rsplit_once('/').map(|(_, name)| name).filter(|name| !name.is_empty());
    match name {
        Some(name) if width(model) > max => fit(name, max),
        _ => fit(model, max),
    }
}

/// A conversation as a table names it: `name (id)`, or its id alone where that is its name, in
/// at most `max` columns; a long name is cut before the id is, which is what `show` takes.
pub fn conversation_label(name: &str, id: &str, max: usize) -> String {
    let (name, id) = (printable(name), printable(id));
    if name.is_empty() || name == id {
        return fit(&id, max);
    }
    let room = max.saturating_sub(width(&id) + 3);
    match room {
        0..4 if width(&name) > room => fit(&id, max),
        _ => format!("{} ({id})", fit(&name, room)),
    }
}

/// `text` in at most `max` columns, its end kept (a path's last directories), an ellipsis
/// marking the cut.
pub fn fit_end(text: &str, max: usize) -> String {
    if width(text) <= max {
        return text.to_owned();
    }
    let mut kept = fitting(text.chars().rev(), max.saturating_sub(1));
    // A combining mark whose letter was cut would sit on the ellipsis.
    while kept.last().is_some_and(|&c| unicode_width::UnicodeWidthChar::width(c) == Some(0)) {
        kept.pop();
    }
    std::iter::once('…').chain(kept.into_iter().rev()).collect()
}

/// The first of `chars` that fit in `max` columns.
fn fitting(chars: impl Iterator<Item = char>, max: usize) -> Vec<char> {
    let mut used = 0;
    chars
        .take_while(|&c| {
            used += unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
            used <= max
        })
        .collect()
}

/// A count for people, with a comma between each three digits (`10,000`), as token counts and
/// costs are written.
pub fn thousands(n: u64) -> String {
    grouped(&n.to_string())
}

/// "1 conversation", "10,000 conversations".
pub fn conversations(n: usize) -> String {
    match n {
        1 => "1 conversation".into(),
        n => format!("{} conversations", thousands(n as u64)),
    }
}

/// A size in megabytes to a tenth, grouped as counts are (`1,074.8 MB`).
pub fn megabytes(bytes: u64) -> String {
    let mb = format!("{:.1}", bytes as f64 / 1e6);
    let (whole, tenths) = mb.split_once('.').expect("one decimal");
    format!("{}.{tenths} MB", grouped(whole))
}

/// Digits with a comma between each three, from the right.
pub fn grouped(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// How many columns wide the terminal standard output writes to is, when it writes to one:
/// `$COLUMNS` where set (as POSIX asks of utilities, to print for another width), else the
/// terminal's own width. None into a pipe or file, where lines stay whole for the next program.
/// Asked once: a command's lines are all cut to one width.
pub fn terminal_columns() -> Option<usize> {
    static COLUMNS: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *COLUMNS.get_or_init(|| {
        let out = std::io::stdout();
        if !out.is_terminal() {
            return None;
        }
        let set = std::env::var("COLUMNS").ok().and_then(|v| v.trim().parse::<usize>().ok());
        let own = || rustix::termios::tcgetwinsize(&out).ok().map(|size| usize::from(size.ws_col));
        set.filter(|&n| n > 0).or_else(own).filter(|&n| n > 0)
    })
}

/// What is left of a line on the terminal after `used` columns: everything into a pipe or file.
pub fn room_after(used: usize) -> usize {
    terminal_columns().map_or(usize::MAX, |columns| columns.saturating_sub(used))
}

/// `text` padded with spaces to `columns` columns (Rust's `{:<N}` counts characters, which
/// misaligns a table holding wide characters).
pub fn pad(text: &str, columns: usize) -> String {
    let mut out = text.to_owned();
    out.extend(std::iter::repeat_n(' ', columns.saturating_sub(width(text))));
    out
}

/// `--workspace` as workspaces are stored (see `usage::workspace_as_stored`).
pub fn workspace_named(dir: &std::path::Path) -> anyhow::Result<String> {
    Ok(crate::usage::workspace_as_stored(dir)?)
}

/// Where `--workspace` looked, for people: a `workspace_named` directory.
pub fn in_workspace(dir: &str) -> String {
    format!("in a workspace at or under {}", printable(if dir.is_empty() { "/" } else { dir }))
}

/// Where `--agent` looked, for people.
pub fn of_agent(agent: &str) -> String {
    format!("of the agent {:?}", agent)
}

/// Local time for people, from Unix seconds.
pub fn local_time(t: f64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_opt(t.floor() as i64, 0) {
        chrono::LocalResult::Single(d) | chrono::LocalResult::Ambiguous(d, _) => d.format("%Y-%m-%d %H:%M").to_string(),
        chrono::LocalResult::None => "?".into(),
    }
}

/// The progress bar on screen, if any (a refresh's: see `progress`).
static BAR: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);

/// Where log lines go: stderr, above the progress bar rather than through it.
struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = BAR.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Sets up log lines: the filter from `CONVMETA_LOG` (tracing's syntax; warnings and convmeta's
/// own notes by default), on stderr above any progress bar, coloured on a terminal. There, a
/// command's lines are its level and message alone, read as they come; a server's, and any
/// written to a file or pipe (`backfill 2> backfill.log`), carry the time and the module too.
/// Into systemd's journal, which records the time, each is led by its priority instead.
pub fn init_logging(cli: &Cli) {
    let terse = std::io::stderr().is_terminal() && !matches!(cli.command, Command::Serve(_));
    let default_filter = || tracing_subscriber::EnvFilter::new("warn,convmeta=info");
    // A filter that does not parse is said once, after logging starts, and the default used:
    // a typo in a log setting should not stop the command.
    let (filter, bad_filter) = match std::env::var("CONVMETA_LOG") {
        Ok(text) => match tracing_subscriber::EnvFilter::try_new(&text) {
            Ok(filter) => (filter, None),
            Err(e) => (
                default_filter(),
                Some(format!("CONVMETA_LOG={text:?} is not a log filter ({e}); logging as by default")),
            ),
        },
        Err(std::env::VarError::NotUnicode(_)) => {
            (default_filter(), Some("CONVMETA_LOG is not UTF-8; logging as by default".into()))
        }
        Err(std::env::VarError::NotPresent) => (default_filter(), None),
    };
    let lines = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogWriter)
        // A log line that cannot be written (a closed stderr) is lost quietly: tracing would
        // say so with `eprintln!`, which panics on that same stderr.
        .log_internal_errors(false)
        .with_ansi(colors());
    match (terse, stderr_is_the_journal()) {
        (true, _) => lines.without_time().with_target(false).init(),
        (false, true) => lines.without_time().with_ansi(false).event_format(JournalPriority).init(),
        (false, false) => lines.init(),
    }
    if let Some(why) = bad_filter {
        tracing::warn!("{why}");
    }
}

/// Whether stderr goes to systemd's journal: `JOURNAL_STREAM` names its device and inode, as
/// systemd sets it for a service whose output the journal takes (and a process it starts may
/// inherit, with stderr elsewhere: hence the comparison).
fn stderr_is_the_journal() -> bool {
    use std::os::fd::AsFd;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else { return false };
    let Ok(stderr) = std::io::stderr().as_fd().try_clone_to_owned() else { return false };
    let Ok(meta) = std::fs::File::from(stderr).metadata() else { return false };
    use std::os::unix::fs::MetadataExt;
    stream.to_str() == Some(&format!("{}:{}", meta.dev(), meta.ino()))
}

/// Log lines for the journal: led by their priority as `sd-daemon(3)` writes it (`<4>`, a
/// warning), which the journal takes as the line's (`journalctl -p warning` keeps warnings
/// and worse), then the level, module and message, without the time, which it records.
struct JournalPriority;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for JournalPriority
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let priority = match *event.metadata().level() {
            tracing::Level::ERROR => 3,
            tracing::Level::WARN => 4,
            tracing::Level::INFO => 6,
            _ => 7,
        };
        write!(writer, "<{priority}>")?;
        let plain = tracing_subscriber::fmt::format().without_time().with_ansi(false);
        tracing_subscriber::fmt::FormatEvent::format_event(&plain, ctx, writer, event)
    }
}

/// Whether log lines are coloured: on a terminal, unless `NO_COLOR` is set (no-color.org).
fn colors() -> bool {
    colors_on(&std::io::stderr())
}

/// Whether what goes to `stream` is coloured: on a terminal, unless `NO_COLOR` is set.
pub fn colors_on(stream: &impl IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Says so when the index is on a file system other machines share (a home on NFS): SQLite's
/// write-ahead log stays whole only while every process using it runs on this machine. Said by
/// the commands that settle in (`backfill`, `serve`), not by every `list`.
pub fn warn_if_index_shared(index: &Index) {
    let store = index.store();
    let db = store.path();
    if let Some(kind) = crate::filesystem::shared(db.parent().unwrap_or(db)) {
        tracing::warn!(
            db = %db.display(),
            filesystem = kind,
            "the index is on a filesystem other machines share: it stays whole only while every \
             convmeta using it runs on this machine. If convmeta runs on others with this home, give \
             each its own --db on a local disk (CONVMETA_DB=/var/tmp/convmeta.sqlite3, say)"
        );
    }
}

/// Standard output (line-buffered, as Rust's is), whose write errors say what failed ("cannot
/// write to standard output: No space left on device"), their kind kept: a reader that stopped
/// reading still ends the command quietly (see `main`).
pub fn stdout() -> StdoutWriter {
    StdoutWriter(std::io::stdout().lock())
}

pub struct StdoutWriter(std::io::StdoutLock<'static>);

impl StdoutWriter {
    fn said(e: std::io::Error) -> std::io::Error {
        std::io::Error::new(e.kind(), format!("cannot write to standard output: {e}"))
    }
}

impl Write for StdoutWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).map_err(Self::said)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush().map_err(Self::said)
    }
}

/// Writes one line to stderr. A closed stderr (`convmeta … 2>&1 | head -1`) loses the line
/// rather than failing the command, as `eprintln!` would with a panic.
pub fn say(line: impl std::fmt::Display) {
    let _ = writeln!(LogWriter, "{line}");
}

/// Shows `bar` while `f` runs; log lines meanwhile are printed above it.
fn with_bar<T>(bar: &indicatif::ProgressBar, f: impl FnOnce() -> T) -> T {
    *BAR.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
    let out = f();
    *BAR.lock().unwrap_or_else(|e| e.into_inner()) = None;
    out
}

#[cfg(test)]
mod tests {
    use super::{
        conversation_label, conversations, fit, fit_end, fit_model, megabytes, pad, printable, seconds, thousands,
    };
    use std::time::{Duration, Instant};

    #[test]
    fn seconds_past_a_century_are_a_century() {
        assert_eq!(seconds("0.5"), Ok(Duration::from_millis(500)));
        let century = seconds("3155760000").unwrap();
        for far in ["1e19", "1e300", "18446744073709551616"] {
            assert_eq!(seconds(far), Ok(century), "{far}");
        }
        // What the limits do with it: a deadline (this panicked at 1e19).
        assert!(Instant::now().checked_add(century).is_some());
        for refused in ["0", "-1", "inf", "NaN", "", "2s"] {
            assert!(seconds(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn counts_are_grouped_by_thousands_and_one_is_one() {
        assert_eq!(
            (thousands(0), thousands(999), thousands(1_000), thousands(1_234_567)),
            ("0".into(), "999".into(), "1,000".into(), "1,234,567".into())
        );
        assert_eq!(megabytes(1_074_800_000), "1,074.8 MB");
        assert_eq!(
            (conversations(0), conversations(1), conversations(10_000)),
            ("0 conversations".into(), "1 conversation".into(), "10,000 conversations".into())
        );
    }

    #[test]
    fn fit_cuts_by_columns_and_marks_the_cut() {
        assert_eq!(fit("openai/gpt-5", 24), "openai/gpt-5");
        assert_eq!(fit("anthropic/claude-opus-4-1", 24), "anthropic/claude-opus-4…");
        assert_eq!(fit("ééééé", 4), "ééé…");
        assert_eq!(fit("abc", 3), "abc");
        // Wide characters take two columns each; a combining mark none.
        assert_eq!(fit("日本語の会話", 7), "日本語…");
        assert_eq!(fit("日本語の会話", 8), "日本語…");
        assert_eq!(fit("e\u{301}e\u{301}e\u{301}x", 3), "e\u{301}e\u{301}…");
    }

    #[test]
    fn fit_model_drops_the_provider_before_cutting() {
        assert_eq!(fit_model("openai/gpt-5", 24), "openai/gpt-5");
        assert_eq!(fit_model("anthropic/claude-opus-4-1", 24), "claude-opus-4-1");
        assert_eq!(fit_model("anthropic/claude-sonnet-4-5-20250929", 24), "claude-sonnet-4-5-20250…");
        assert_eq!(fit_model("openrouter/meta-llama/llama-3.1-405b-instruct", 24), "llama-3.1-405b-instruct");
        assert_eq!(fit_model("a-local-model-without-a-provider", 24), "a-local-model-without-a…");
        assert_eq!(fit_model("a-provider-with-an-empty-name/", 24), "a-provider-with-an-empt…");
    }

    #[test]
    fn fit_end_keeps_the_end() {
        assert_eq!(fit_end("~/src/project", 13), "~/src/project");
        assert_eq!(fit_end("/home/someone/src/project", 12), "…src/project");
        assert_eq!(fit_end("会話の日本語", 7), "…日本語");
        // A combining mark goes with its letter, in or out.
        assert_eq!(fit_end("xe\u{301}e\u{301}", 2), "…e\u{301}");
        assert_eq!(fit_end("ae\u{301}b", 2), "…b");
    }

    #[test]
    fn a_conversation_label_keeps_the_id() {
        assert_eq!(conversation_label("id", "id", 80), "id");
        assert_eq!(conversation_label("", "id", 80), "id");
        assert_eq!(conversation_label("Fix the build", "2026-01-02-x", 80), "Fix the build (2026-01-02-x)");
        assert_eq!(conversation_label("Fix the build", "2026-01-02-x", 22), "Fix th… (2026-01-02-x)");
        assert_eq!(conversation_label("Fix", "2026-01-02-x", 18), "Fix (2026-01-02-x)");
        // No room for a name worth reading: the id alone.
        assert_eq!(conversation_label("Fix the build", "2026-01-02-x", 17), "2026-01-02-x");
        assert_eq!(conversation_label("Fix the build", "2026-01-02-x", 8), "2026-01…");
        assert_eq!(conversation_label("a\nb", "c", 80), "a b (c)");
    }

    #[test]
    fn pad_fills_to_columns_not_characters() {
        assert_eq!(pad("日本", 6), "日本  ");
        assert_eq!(pad("e\u{301}", 3), "e\u{301}  ");
        assert_eq!(pad("toolong", 3), "toolong");
    }

    #[test]
    fn printable_keeps_text_on_one_line_and_escapes_control_characters() {
        assert_eq!(printable("two\nlines\tand \u{1b}[31mred\u{7f}"), "two lines and \\u{1b}[31mred\\u{7f}");
        assert_eq!(printable("café ✓"), "café ✓");
        assert_eq!(printable("abc\u{202e}fed"), "abc\\u{202e}fed");
    }
}
