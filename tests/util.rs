//! Helpers shared by the integration tests: restoring the conformance pack, running the binary,
//! generating conversations.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use serde_json::Value;

pub use crate::common::{client, Rng, Server};

pub fn pack() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gptme-0.35.1")
}

/// A restored copy of the pack's archive (or one crasher case) in a temporary directory.
pub struct Restored {
    _tmp: tempfile::TempDir,
    /// The logs dir (a realpath, as the pack's README asks).
    pub arch: PathBuf,
    /// An empty `$HOME` for `~` expansion.
    pub home: PathBuf,
    pub db: PathBuf,
}

/// Copies `pack()/<which>` (e.g. "archive" or "archive-crashers/unknown-chat-key"), then
/// substitutes `{ARCHIVE}` in config files and sets the recorded mtimes.
pub fn restore(which: &str) -> Restored {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let arch = root.join("archive");
    copy_tree(&pack().join(which), &arch);
    let home = root.join("home");
    std::fs::create_dir(&home).unwrap();
    substitute_configs(&arch, &arch);
    let mtimes: BTreeMap<String, u64> =
        serde_json::from_str(&std::fs::read_to_string(pack().join("mtimes.json")).unwrap()).unwrap();
    let prefix = format!("{which}/");
    for (key, ns) in mtimes {
        if let Some(rel) = key.strip_prefix(&prefix) {
            set_mtime_ns(&arch.join(rel), ns);
        }
    }
    Restored { db: root.join("index.sqlite3"), _tmp: tmp, arch, home }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let ft = entry.file_type().unwrap();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if ft.is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::write(&dst, std::fs::read(&src).unwrap()).unwrap();
        }
    }
}

fn substitute_configs(dir: &Path, arch: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let ft = entry.file_type().unwrap();
        if ft.is_dir() {
            substitute_configs(&entry.path(), arch);
        } else if ft.is_file() && entry.file_name() == "config.toml" {
            let text = std::fs::read(entry.path()).unwrap();
            let text = String::from_utf8_lossy(&text).replace("{ARCHIVE}", arch.to_str().unwrap());
            std::fs::write(entry.path(), text).unwrap();
        }
    }
}

pub fn set_mtime_ns(path: &Path, ns: u64) {
    let t = SystemTime::UNIX_EPOCH + Duration::from_nanos(ns);
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_times(std::fs::FileTimes::new().set_accessed(t).set_modified(t)).unwrap();
}

impl Restored {
    /// The binary with this archive, database and a clean environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = convmeta();
        c.env("HOME", &self.home).args(args).arg("--logs").arg(&self.arch).arg("--db").arg(&self.db);
        c
    }

    /// `{ARCHIVE}` and `{HOME}` replaced in a recorded value.
    pub fn sub(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(
                s.replace("{ARCHIVE}", self.arch.to_str().unwrap()).replace("{HOME}", self.home.to_str().unwrap()),
            ),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.sub(x)).collect()),
            Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), self.sub(x))).collect()),
            other => other.clone(),
        }
    }

    /// `truth.json`'s conversations, substituted, with the API's two aliases added.
    pub fn truth(&self) -> BTreeMap<String, Value> {
        let v = parse(&std::fs::read_to_string(pack().join("truth.json")).unwrap());
        let mut out = BTreeMap::new();
        for (id, item) in self.sub(&v["conversations"]).as_object().unwrap() {
            let mut item = item.clone();
            item["message_count"] = item["messages"].clone();
            item["last_updated"] = item["modified"].clone();
            out.insert(id.clone(), item);
        }
        out
    }

    pub fn expected(&self, name: &str) -> Value {
        let v = parse(&std::fs::read_to_string(pack().join(format!("expected/{name}.json"))).unwrap());
        self.sub(&v)
    }
}

/// Parses JSON that may hold Python's lone-surrogate escapes (they become U+FFFD; the
/// byte-exact tests compare the raw text).
pub fn parse(text: &str) -> Value {
    serde_json::from_str(&convmeta::json::readable_by_serde(text)).unwrap()
}

/// The two conversations whose preview convmeta deliberately improves on gptme's, with the
/// (preview, role) convmeta answers.
pub const IMPROVED_PREVIEWS: [(&str, &str, &str); 2] = [
    ("edge-truncated-last-line", "complete answer", "assistant"),
    ("edge-system-line-containing-quoted-user", "hello", "user"),
];

impl Restored {
    /// gptme's recorded body `expected/<name>.body`, substituted, with the two improved previews
    /// as convmeta writes them.
    pub fn improved_body(&self, name: &str) -> String {
        let body = std::fs::read_to_string(pack().join(format!("expected/{name}.body"))).unwrap();
        let mut body =
            body.replace("{ARCHIVE}", self.arch.to_str().unwrap()).replace("{HOME}", self.home.to_str().unwrap());
        for (id, preview, role) in IMPROVED_PREVIEWS {
            let gptme = format!(r#""id":"{id}","last_message_preview":null,"last_message_role":null"#);
            let ours = format!(r#""id":"{id}","last_message_preview":"{preview}","last_message_role":"{role}""#);
            assert!(body.contains(&gptme) || !body.contains(&format!(r#""id":"{id}""#)));
            body = body.replace(&gptme, &ours);
        }
        body
    }

    /// The same improvement applied to one parsed item.
    pub fn improve(item: &mut Value) {
        for (id, preview, role) in IMPROVED_PREVIEWS {
            if item["id"] == id {
                item["last_message_role"] = role.into();
                item["last_message_preview"] = preview.into();
            }
        }
    }
}

/// A temporary archive of `conversations` (id, log, `config.toml` if any): the directory that
/// holds it, and its logs directory.
pub fn archive_of(conversations: &[(&str, String, Option<String>)]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    for (id, log, config) in conversations {
        write_conversation(&logs, id, log, config.as_deref());
    }
    (tmp, logs)
}

/// An assistant message with usage, as gptme writes one: its timestamp (none when None), its
/// model, the members of its `usage` object (`"input_tokens": 10`) and its cost, as JSON text
/// (`1.5`, or `Infinity` as Python's `json` reads it).
pub fn usage_line(timestamp: Option<&str>, model: &str, usage: &str, cost: &str) -> String {
    let stamp = timestamp.map(|t| format!(", \"timestamp\": \"{t}\"")).unwrap_or_default();
    let model = serde_json::to_string(model).unwrap();
    format!(
        "{{\"role\": \"assistant\", \"content\": \"x\"{stamp}, \"metadata\": {{\"model\": {model}, \"usage\": {{{usage}}}, \"cost\": {cost}}}}}\n"
    )
}

/// Writes a conversation `id` under `logs`: its log, and its `config.toml` when given.
pub fn write_conversation(logs: &Path, id: &str, log: &str, config: Option<&str>) {
    let dir = logs.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("conversation.jsonl"), log).unwrap();
    if let Some(config) = config {
        std::fs::write(dir.join("config.toml"), config).unwrap();
    }
}

/// The rendered items of a database, by id: what two indexes of one archive must agree on.
pub fn dump(db: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT c.item_json || s.accumulator || s.log_offset FROM conversations c JOIN _scan_state s USING (id) ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

/// What bash offers for `words` (the last being the word completed) with the script
/// `completions bash` prints: bash runs it, and it asks the binary.
pub fn bash_completes(script: &str, words: &[&str], envs: &[(&str, &Path)]) -> String {
    let (cur, prev) = (words[words.len() - 1], words[words.len().saturating_sub(2)]);
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source /dev/stdin; COMP_WORDS=({}); COMP_CWORD={}; COMP_TYPE=9; \
         _clap_complete_convmeta convmeta '{cur}' '{prev}'; echo \"${{COMPREPLY[@]}}\"; \
         shopt -q nocasematch && echo 'nocasematch left on in the shell' >&2",
        quoted.join(" "),
        words.len() - 1
    );
    let mut bash = Command::new("bash");
    bash.args(["-c", &program]).env_remove("GPTME_LOGS_HOME").env_remove("CONVMETA_DB");
    for (k, v) in envs {
        bash.env(k, v);
    }
    let piped = std::process::Stdio::piped;
    let mut child = bash.stdin(piped()).stdout(piped()).stderr(piped()).spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    // The function says nothing, and leaves the user's shell as it was.
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{words:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// What one Tab makes of `line` in an interactive zsh given `script` (`completions zsh`),
/// sourced, or, `from_fpath`, as the file `_convmeta` in `$fpath`, which the first Tab loads;
/// read from the line editor's buffer by a key bound to write it out. None where zsh is not
/// installed (.ci/run installs it).
pub fn zsh_completes(script: &str, line: &str, from_fpath: bool) -> Option<String> {
    Command::new("zsh").arg("--version").output().ok().filter(|o| o.status.success())?;
    let dir = tempfile::tempdir().unwrap();
    let (file, buffer) = (dir.path().join("_convmeta"), dir.path().join("buffer"));
    std::fs::write(&file, script).unwrap();
    let load = match from_fpath {
        true => format!("fpath=({} $fpath); autoload -Uz compinit; compinit -u -D", dir.path().display()),
        false => format!("autoload -Uz compinit; compinit -u -D; source {}", file.display()),
    };
    // Under zpty, zsh's own pseudo-terminal, as a terminal would run it: the setup, then the
    // line typed, Tab, and ^X, bound to write the buffer and end the shell.
    let setup = format!(
        "PS1=''; {load}; dump() {{ print -rn -- \"$BUFFER\" > {}; exit }}; zle -N dump; bindkey '^X' dump",
        buffer.display()
    );
    let driver = "zmodload zsh/zpty; zpty shell zsh -f -i; zpty -w shell \"$1\"; zpty -w -n shell \"$2\"$'\\t\\x18'; \
                  for i in {1..400}; do [[ -s $3 ]] && break; sleep 0.05; done; sleep 0.1; zpty -d shell";
    let status = Command::new("zsh")
        .args(["-f", "-c", driver, "zsh", &setup, line, buffer.to_str().unwrap()])
        .env_remove("GPTME_LOGS_HOME")
        .env_remove("CONVMETA_DB")
        .status()
        .unwrap();
    assert!(status.success());
    Some(std::fs::read_to_string(&buffer).expect("zsh wrote its buffer within 20 s"))
}

/// What fish offers for `line` (its own `complete -C`, which matches as a Tab does) with the
/// script `completions fish` prints: a line per candidate, its help after a tab; None where
/// fish is not installed (.ci/run installs it).
pub fn fish_completes(script: &str, line: &str) -> Option<String> {
    Command::new("fish").arg("--version").output().ok().filter(|o| o.status.success())?;
    let out = Command::new("fish")
        .args(["--no-config", "-c", "source; complete -C $argv[1]", line])
        .env_remove("GPTME_LOGS_HOME")
        .env_remove("CONVMETA_DB")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut fish| {
            fish.stdin.take().unwrap().write_all(script.as_bytes())?;
            fish.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());
    Some(String::from_utf8(out.stdout).unwrap())
}

/// The built binary, in UTC, with no ambient configuration.
pub fn convmeta() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_convmeta"));
    c.env("TZ", "UTC")
        .env("CONVMETA_LOG", "error")
        .env_remove("GPTME_LOGS_HOME")
        .env_remove("CONVMETA_DB")
        .env_remove("XDG_DATA_HOME")
        .env_remove("COLUMNS");
    c
}

/// Commands for the binary, run by a user whom file modes bind: as root (whose writes ignore
/// them) `nobody`, through setpriv; otherwise this user. It runs from a copy in `dir`, which any
/// user may enter, wherever the checkout lives.
pub fn unprivileged(dir: &Path) -> impl Fn() -> Command {
    run_as(dir, 65534)
}

/// [`unprivileged`], as root with user and group id `id` (no user need have it).
pub fn run_as(dir: &Path, id: u32) -> impl Fn() -> Command {
    let in_groups = run_in_groups(dir, id);
    move || in_groups(&[])
}

/// [`run_as`], as root also in the supplementary groups each command is given. The binary is
/// copied once: a copy being written while another test's thread forks would fail the exec of
/// that copy ("Text file busy").
pub fn run_in_groups(dir: &Path, id: u32) -> impl Fn(&[u32]) -> Command {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("convmeta");
    std::fs::copy(env!("CARGO_BIN_EXE_convmeta"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_root = unsafe { libc::geteuid() } == 0;
    move |groups| {
        let mut c = if as_root {
            let groups = match groups {
                [] => "--clear-groups".to_owned(),
                _ => format!("--groups={}", groups.iter().map(u32::to_string).collect::<Vec<_>>().join(",")),
            };
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={id}")).arg(format!("--regid={id}")).arg(groups).arg(&bin);
            c
        } else {
            Command::new(&bin)
        };
        c.env("TZ", "UTC").env("CONVMETA_LOG", "error").env_remove("GPTME_LOGS_HOME").env_remove("CONVMETA_DB");
        c
    }
}

/// Whether the calling test's body should run here: false in the test binary's own process,
/// after running `test` (its full name) again in a process of its own and checking it passed
/// there; true in that process. For a test that measures the process's memory, which the other
/// tests running beside it would otherwise add to.
pub fn in_own_process(test: &str) -> bool {
    const ALONE: &str = "CONVMETA_TEST_ALONE";
    if std::env::var_os(ALONE).is_some() {
        return true;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ALONE, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && stdout.contains("test result: ok. 1 passed;"), "{test} alone: {stdout}");
    false
}

/// Makes a database look as schema `version` left it (for upgrade tests): what later migrations
/// added to the tables removed, `user_version` set back. The rows are the test's to change.
pub fn set_schema_back(conn: &rusqlite::Connection, version: u32) {
    if version < 19 {
        conn.execute_batch(
            "DROP INDEX conversations_newest; CREATE INDEX conversations_newest ON conversations \
             (hidden, modified DESC, id DESC, name, last_message_preview);",
        )
        .unwrap();
    }
    if version < 18 {
        conn.execute_batch("DROP INDEX conversations_with_problems;").unwrap();
    }
    if version < 17 {
        conn.execute_batch(
            "DROP TABLE conversation_days; \
             UPDATE _scan_state SET accumulator = json_remove(accumulator, '$.usage_by_day') WHERE json_valid(accumulator);",
        )
        .unwrap();
    }
    if version < 13 {
        conn.execute_batch(
            "DROP INDEX _scan_state_linked; ALTER TABLE _scan_state DROP COLUMN link_paths; \
             ALTER TABLE _scan_state ADD COLUMN workspace_linked INTEGER NOT NULL DEFAULT 0; \
             CREATE INDEX _scan_state_workspace_linked ON _scan_state (id) WHERE workspace_linked;",
        )
        .unwrap();
    }
    if version < 12 {
        conn.execute_batch(
            "DROP INDEX conversations_newest; \
             CREATE INDEX conversations_newest ON conversations (hidden, modified DESC, id DESC);",
        )
        .unwrap();
    }
    if version < 8 {
        conn.execute_batch(
            "DROP INDEX _scan_state_workspace_linked; ALTER TABLE _scan_state DROP COLUMN workspace_linked;",
        )
        .unwrap();
    }
    conn.pragma_update(None, "user_version", version).unwrap();
}

/// `convmeta backfill` of `logs` into `db`.
pub fn backfill(logs: &Path, db: &Path) -> Command {
    let mut c = convmeta();
    c.arg("backfill").arg("--logs").arg(logs).arg("--db").arg(db);
    c
}

/// Runs and insists on success, returning stdout.
pub fn ok(mut c: impl std::borrow::BorrowMut<Command>) -> String {
    let c = c.borrow_mut();
    let out = c.output().unwrap();
    assert!(out.status.success(), "{:?} failed: {}", c, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a `search` as [`ok`] runs a command, its exit code 1 (nothing found, as grep's) taken as
/// success too: its output.
pub fn searched(mut c: impl std::borrow::BorrowMut<Command>) -> String {
    let c = c.borrow_mut();
    let out = c.output().unwrap();
    let code = out.status.code();
    assert!(matches!(code, Some(0 | 1)), "{:?} failed: {}", c, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `c` as `output()` does, but kills it after `limit`: a guard against a hang, not a timing.
pub fn output_within(mut c: Command, limit: std::time::Duration) -> Output {
    let child = c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output().unwrap()));
    match rx.recv_timeout(limit) {
        Ok(out) => out,
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("{c:?} still running after {limit:?}");
        }
    }
}

pub fn fail(mut c: impl std::borrow::BorrowMut<Command>) -> Output {
    let c = c.borrow_mut();
    let out = c.output().unwrap();
    assert!(!out.status.success(), "{c:?} should have failed");
    out
}

const WORDS: &[&str] = &[
    "alpha",
    "béta",
    "gamma",
    "<think>hm</think>",
    "delta",
    "quokka",
    "\\n",
    "emoji 😀",
    "tab\\t",
    "\\u00e9",
    "\\ud83d",
];

/// One random gptme line, ending in `\n` (or `\r\n`). Covers the shapes the accumulator cares
/// about: roles, metadata with and without models, legacy tokens, blank and malformed lines.
pub fn random_line(rng: &mut Rng) -> String {
    let words: Vec<&str> = (0..1 + rng.below(30)).map(|_| WORDS[rng.below(WORDS.len() as u64) as usize]).collect();
    let content = words.join(" ");
    let ts = format!("2026-01-0{}T10:{:02}:{:02}Z", 1 + rng.below(9), rng.below(60), rng.below(60));
    let eol = if rng.chance(10) { "\r\n" } else { "\n" };
    let line = match rng.below(10) {
        0 => "   ".to_string(),
        1 => "{\"role\": \"user\", \"content\": \"broken".to_string(),
        2 | 3 => format!("{{\"role\": \"user\", \"content\": \"{content}\", \"timestamp\": \"{ts}\"}}"),
        4 => format!("{{\"role\": \"system\", \"content\": \"{content}\", \"timestamp\": \"{ts}\"}}"),
        5 => format!(
            "{{\"role\": \"assistant\", \"content\": \"{content}\", \"timestamp\": \"{ts}\", \"metadata\": {{\"input_tokens\": {}, \"output_tokens\": {}}}}}",
            rng.below(100),
            rng.below(100)
        ),
        _ => format!(
            "{{\"role\": \"assistant\", \"content\": \"{content}\", \"timestamp\": \"{ts}\", \"metadata\": {{\"model\": \"m{}\", \"usage\": {{\"input_tokens\": {}, \"output_tokens\": {}, \"cache_read_tokens\": {}}}, \"cost\": 0.{}}}}}",
            rng.below(3),
            rng.below(5000),
            rng.below(500),
            rng.below(100),
            rng.below(1000)
        ),
    };
    line + eol
}

/// What `snapshot` records of one entry: length, content hash, mtime (s, ns), mode, link target.
pub type EntryState = (u64, u64, i64, i64, u32, Option<PathBuf>);

/// Every entry under `root`, so a test can prove nothing was created, changed or touched.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, EntryState> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let m = std::fs::symlink_metadata(&path).unwrap();
            let link = m.file_type().is_symlink().then(|| std::fs::read_link(&path).unwrap());
            let hash = if m.is_file() {
                std::fs::read(&path)
                    .unwrap()
                    .iter()
                    .fold(0xcbf29ce484222325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3))
            } else {
                0
            };
            if m.is_dir() {
                todo.push(path.clone());
            }
            out.insert(path, (m.len(), hash, m.mtime(), m.mtime_nsec(), m.mode(), link));
        }
    }
    out
}

/// What this process's inotify instances watch, as (device, inode) pairs (Linux's
/// `/proc/self/fdinfo`), the device in `stat`'s numbering; None where the system does not say
/// (macOS watches through FSEvents).
pub fn inotify_watches() -> Option<std::collections::HashSet<(u64, u64)>> {
    #[cfg(target_os = "linux")]
    {
        let mut watches = std::collections::HashSet::new();
        let Ok(fds) = std::fs::read_dir("/proc/self/fdinfo") else { return Some(watches) };
        for fd in fds.flatten() {
            let Ok(info) = std::fs::read_to_string(fd.path()) else { continue };
            for line in info.lines().filter(|l| l.starts_with("inotify ")) {
                let field = |key: &str| {
                    let value = line.split(' ').find_map(|f| f.strip_prefix(key))?;
                    u64::from_str_radix(value, 16).ok()
                };
                if let (Some(ino), Some(sdev)) = (field("ino:"), field("sdev:")) {
                    // The kernel prints its own device numbering: major in the bits above 20.
                    let dev = libc::makedev((sdev >> 20) as u32, (sdev & 0xf_ffff) as u32);
                    watches.insert((dev, ino));
                }
            }
        }
        Some(watches)
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// Runs `cmd` with its stdout and stderr on a new pseudo-terminal of 120 columns, as in a
/// terminal window; returns all it wrote there and whether it succeeded.
pub fn on_terminal(cmd: Command) -> (String, bool) {
    let (shown, status) = on_terminal_watched(cmd, |_, _| {});
    (shown, status.success())
}

/// [`on_terminal`], calling `watch` with what the command has written so far and its process
/// id whenever it writes more; returns its exit status.
pub fn on_terminal_watched(
    mut cmd: Command,
    mut watch: impl FnMut(&str, u32) + Send + 'static,
) -> (String, std::process::ExitStatus) {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    // `ptsname` answers in a buffer of its own: one caller at a time.
    static PTSNAME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let (master, terminal) = unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        let master = std::fs::File::from_raw_fd(fd);
        assert!(libc::grantpt(fd) == 0 && libc::unlockpt(fd) == 0);
        let size = libc::winsize { ws_row: 40, ws_col: 120, ws_xpixel: 0, ws_ypixel: 0 };
        assert_eq!(libc::ioctl(fd, libc::TIOCSWINSZ, &size), 0);
        let _one = PTSNAME.lock().unwrap_or_else(|p| p.into_inner());
        let name = std::ffi::CStr::from_ptr(libc::ptsname(fd)).to_str().unwrap().to_owned();
        (master, name)
    };
    // Not this process's controlling terminal: only the command's output goes there.
    let open = || std::fs::OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOCTTY).open(&terminal);
    let mut child = cmd.stdout(open().unwrap()).stderr(open().unwrap()).spawn().unwrap();
    drop(cmd); // its copies of the terminal: the reading below ends when the child's close
    let pid = child.id();
    let reader = std::thread::spawn(move || {
        let (mut master, mut out, mut buf) = (master, Vec::new(), vec![0u8; 1 << 16]);
        // Ends in EIO once no one has the terminal open.
        while let Ok(n @ 1..) = master.read(&mut buf) {
            out.extend_from_slice(&buf[..n]);
            watch(&String::from_utf8_lossy(&out), pid);
        }
        String::from_utf8_lossy(&out).into_owned()
    });
    let status = child.wait().unwrap();
    (reader.join().unwrap(), status)
}

/// `convmeta serve` as a process, logging at `info`, with no token or allowed hosts from the
/// environment but `envs`: the child, what it said until it listened (or 30 s passed), and what
/// it says later, line by line.
pub fn spawn_serve(
    logs: &Path,
    db: &Path,
    addr: &str,
    extra: &[&str],
    envs: &[(&str, &str)],
) -> (ServeChild, String, std::sync::mpsc::Receiver<String>) {
    start_serve(serve_command(logs, db, addr, extra, envs))
}

/// The command [`spawn_serve`] runs, for a test to change before [`start_serve`].
pub fn serve_command(logs: &Path, db: &Path, addr: &str, extra: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut cmd = convmeta();
    cmd.env("CONVMETA_LOG", "info")
        .env_remove("GPTME_SERVER_TOKEN")
        .env_remove("GPTME_SERVER_ALLOWED_HOSTS")
        .env_remove("GPTME_DISABLE_AUTH")
        .envs(envs.iter().copied())
        // Not the test's own stdout: a test that fails before killing the server must not leave
        // a process holding the harness's output open.
        .stdout(std::process::Stdio::null())
        .arg("serve")
        .arg("--logs")
        .arg(logs)
        .arg("--db")
        .arg(db)
        .args(["--addr", addr])
        .args(extra)
        .stderr(std::process::Stdio::piped());
    cmd
}

/// Starts `serve`'s command: the child, what it said until it listened (or 30 s passed), and
/// what it says later, line by line.
pub fn start_serve(mut cmd: Command) -> (ServeChild, String, std::sync::mpsc::Receiver<String>) {
    let mut child = ServeChild(cmd.spawn().unwrap());
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !seen.contains("listening on") && std::time::Instant::now() < deadline {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
    }
    // What it says later, line by line (the rest is dropped once nobody listens).
    let (tx, later) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(stderr).map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, seen, later)
}

/// A spawned `serve`, killed when dropped: a test that fails partway leaves no server running.
pub struct ServeChild(pub std::process::Child);

impl std::ops::Deref for ServeChild {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for ServeChild {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        // Already reaped when the test waited for it; then both fail, harmlessly.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The status of a GET of `url`, with `token` as a bearer token if any.
pub fn status_with(url: &str, token: Option<&str>) -> u16 {
    let request = client().get(url);
    match token {
        Some(t) => request.bearer_auth(t),
        None => request,
    }
    .send()
    .unwrap()
    .status()
    .as_u16()
}

/// The address a spawned `serve` said it listens on.
pub fn listening_addr(log: &str) -> String {
    log.split("listening on http://")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .to_string()
}

/// A GET of `path` exactly as written (a client library would normalise `..`): the status and
/// the body.
pub fn raw_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    get_over(stream, path)
}

/// [`raw_get`] through the Unix socket at `socket` (`@NAME`: one in the abstract namespace).
pub fn unix_get(socket: &Path, path: &str) -> (u16, String) {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::UnixStream;
    let stream = match socket.as_os_str().as_bytes().strip_prefix(b"@") {
        #[cfg(target_os = "linux")]
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            UnixStream::connect_addr(&std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap())
        }
        _ => UnixStream::connect(socket),
    }
    .unwrap();
    // A socket nobody accepts on (a server that refused to start) fails the test, not hangs it.
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    get_over(stream, path)
}

fn get_over(mut stream: impl Read + Write, path: &str) -> (u16, String) {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).unwrap().parse().unwrap();
    (status, answer.split_once("\r\n\r\n").map_or("", |(_, body)| body).to_owned())
}

/// An archive of two one-line conversations, `a` and `b`.
pub fn scratch_archive() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    for id in ["a", "b"] {
        std::fs::create_dir_all(logs.join(id)).unwrap();
        std::fs::write(
            logs.join(id).join("conversation.jsonl"),
            format!("{{\"role\": \"user\", \"content\": \"hi {id}\"}}\n"),
        )
        .unwrap();
    }
    (tmp, logs)
}

/// Appends `line` to conversation `id`'s log, making the log if need be.
pub fn append(logs: &Path, id: &str, line: &str) {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(logs.join(id).join("conversation.jsonl"))
        .unwrap()
        .write_all(line.as_bytes())
        .unwrap();
}
