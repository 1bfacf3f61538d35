//! Fields that come from beside the log: `config.toml` (name, workspace, agent), the agent's
//! `gptme.toml`, and `branches/*.jsonl`.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use super::toml_file;
use crate::error::{is_out_of_resources, Error};

/// Keys gptme's `ChatConfig` (0.35.1) takes in `[chat]`; any other makes gptme fail to load the
/// conversation, so we note it as a problem. (`env` and `mcp` are top-level tables; `gear` is
/// an old key gptme drops.)
const CHAT_KEYS: &[&str] = &[
    "agent",
    "agent_profile",
    "allow_hosts",
    "context_budget",
    "gear",
    "interactive",
    "max_tokens",
    "model",
    "name",
    "no_confirm",
    "stream",
    "system_prompt",
    "temperature",
    "tool_format",
    "tools",
    "top_p",
    "watch_autowake",
    "workspace",
];

/// Values of a type gptme refuses (it fails to load the conversation): `[chat]` keys and what
/// they must be. A TOML boolean is a number to Python, but not an integer here.
const CHAT_TYPES: &[(&str, &str)] = &[
    ("workspace", "a string"),
    ("agent", "a string"),
    ("agent_profile", "a string"),
    ("system_prompt", "a string"),
    ("temperature", "a number"),
    ("top_p", "a number"),
    ("max_tokens", "an integer"),
    ("watch_autowake", "a boolean"),
    ("context_budget", BUDGET),
];

/// gptme's `parse_context_budget`: a number, or text Python's `float()` reads, that is a
/// fraction (0 < x ≤ 1) or a whole count of tokens (> 1).
const BUDGET: &str = "a fraction (0 < x ≤ 1) or a token count (> 1)";

fn is_type(value: &toml::Value, kind: &str) -> bool {
    use toml::Value as V;
    match kind {
        "a string" => value.is_str(),
        "a number" => matches!(value, V::Integer(_) | V::Float(_) | V::Boolean(_)),
        "an integer" => value.is_integer(),
        BUDGET => {
            let budget = match value {
                V::Integer(i) => Some(*i as f64),
                V::Float(f) => Some(*f),
                V::String(text) => crate::pynum::float(text),
                _ => None,
            };
            budget.is_some_and(|b| b.is_finite() && b > 0.0 && (b <= 1.0 || b.fract() == 0.0))
        }
        _ => value.is_bool(),
    }
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Side {
    pub name: String,
    pub workspace: String,
    pub agent_name: Option<String>,
    pub agent_path: Option<String>,
    pub agent_avatar: Option<String>,
    /// `[agent.urls]` as JSON text (sorted keys, as gptme-server writes it).
    pub agent_urls: Option<String>,
    pub branches: u64,
    /// The agent's `gptme.toml`, watched with the other side files.
    pub agent_toml: Option<PathBuf>,
    /// Human-readable problems with these files.
    pub problems: Vec<String>,
    /// A path from the config was written with `~` (expanded with `$HOME`) or relative
    /// (resolved from the working directory): the row depends on that too.
    pub uses_home: bool,
    pub uses_cwd: bool,
    /// Paths (absolute, or relative to the conversation's directory) whose resolution is an
    /// input that no stat of the archive shows changing: resolved through a symlink outside the
    /// conversation's directory (re-pointing one inside it moves the directory's mtime), or,
    /// for `<dir>/workspace` chosen by whether that symlink leads anywhere, its target's
    /// existence. A refresh resolves them again ([`probe_links`]).
    pub link_paths: Vec<String>,
}

/// Reads the side files of the conversation in `dir` (the logs dir joined with the id).
/// `logs_real` gives the logs dir resolved: it is the same for every conversation, so paths
/// under it are resolved from there instead of from the root each time. Fails only for want of
/// a file descriptor or memory ([`is_out_of_resources`]): what is wrong with the files is a
/// problem on the `Side`.
pub fn read(dir: &Path, id: &str, logs_real: impl FnOnce() -> PathBuf) -> crate::error::Result<Side> {
    let mut side = Side { name: id.to_owned(), ..Side::default() };
    let own_dir = resolve(logs_real(), Path::new(id)).path;
    let config_path = dir.join("config.toml");
    let config = match read_small_file(&config_path) {
        Ok(bytes) => parse_chat_table(&bytes, &mut side.problems).map_or(Config::Unreadable, Config::Chat),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Config::Missing,
        Err(source) if is_out_of_resources(&source) => return Err(Error::OutOfResources { path: config_path, source }),
        Err(e) => {
            side.problems.push(format!("config.toml: {e}"));
            Config::Unreadable
        }
    };
    let text = |t: &toml::Table, key: &str| t.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    if let Config::Chat(chat) = &config {
        if let Some(name) = text(chat, "name").filter(|n| !n.is_empty()) {
            side.name = name;
        } else if chat.get("name").is_some_and(|v| !v.is_str()) {
            // gptme would show the value itself (a number as the name); we keep names text.
            side.problems.push("config.toml: [chat] name is not a string".into());
        }
        if let Some(agent) = text(chat, "agent").filter(|a| !a.is_empty()) {
            read_agent(&mut side, &agent, &own_dir)?;
        }
    }
    let own = dir.join("workspace");
    let workspace = match &config {
        // No config at all: gptme's default config puts the workspace in the log dir.
        Config::Missing => own,
        // gptme falls back to the conversation's directory for a config it cannot read.
        Config::Unreadable => dir.to_path_buf(),
        Config::Chat(chat) => match text(chat, "workspace") {
            Some(ws) if ws == "@log" => own,
            // Empty too: gptme resolves "" to its working directory.
            Some(ws) => expand_home(&ws, &mut side),
            _ => {
                if own.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
                    side.link_paths.push("workspace".into());
                }
                if own.exists() {
                    own
                } else {
                    dir.to_path_buf()
                }
            }
        },
    };
    let resolved = match workspace.strip_prefix(dir) {
        Ok(rest) => {
            let resolved = resolve(own_dir.clone(), rest);
            side.note_links(&resolved, &own_dir, rest);
            resolved.path
        }
        Err(_) => side.resolve_noting_links(&workspace, &own_dir),
    };
    side.workspace = resolved.to_string_lossy().into_owned();
    side.branches = 1 + count_branches(&dir.join("branches"))?;
    Ok(side)
}

/// What `config.toml` gave.
enum Config {
    Missing,
    /// Unreadable, not UTF-8 or not TOML.
    Unreadable,
    /// Its `[chat]` table (empty when absent or not a table).
    Chat(toml::Table),
}

/// The document's `[chat]` table; None when the file is not TOML as Python's `tomllib` reads
/// it (TOML 1.0, which has no byte-order mark).
fn parse_chat_table(bytes: &[u8], problems: &mut Vec<String>) -> Option<toml::Table> {
    let parsed = toml_file::read_1_0(&toml_file::decode(bytes, "config.toml", problems));
    let mut doc = match parsed {
        Ok(doc) => doc,
        Err(e) => {
            problems.push(format!("config.toml: invalid TOML: {e}"));
            return None;
        }
    };
    for table in ["env", "mcp"] {
        if doc.get(table).is_some_and(|v| !v.is_table()) {
            problems.push(format!("config.toml: {table} is not a table"));
        }
    }
    if let Some(Err(why)) = doc.get("mcp").and_then(toml::Value::as_table).map(super::project::mcp_servers) {
        problems.push(format!("config.toml: {why}"));
    }
    Some(match doc.remove("chat") {
        Some(toml::Value::Table(chat)) => {
            let unknown: Vec<&str> = chat.keys().map(String::as_str).filter(|k| !CHAT_KEYS.contains(k)).collect();
            if !unknown.is_empty() {
                problems.push(format!("config.toml: unknown [chat] keys: {}", unknown.join(", ")));
            }
            for (key, kind) in CHAT_TYPES {
                if chat.get(*key).is_some_and(|v| !is_type(v, kind)) {
                    problems.push(format!("config.toml: [chat] {key} is not {kind}"));
                }
            }
            chat
        }
        Some(_) => {
            problems.push("config.toml: [chat] is not a table".into());
            toml::Table::new()
        }
        None => toml::Table::new(),
    })
}

/// gptme takes `[chat].agent` as a path, `~` expanded and resolved (symlinks followed, from the
/// working directory when relative), and reads its settings there: the first of `gptme.toml`
/// and `.github/gptme.toml` that exists, with a `gptme.local.toml` beside it merged over it.
fn read_agent(side: &mut Side, agent: &str, own_dir: &Path) -> crate::error::Result<()> {
    let path = expand_home(agent, side);
    let path = side.resolve_noting_links(&path, own_dir);
    side.agent_path = Some(path.to_string_lossy().into_owned());
    // Names the agent's files for the stamp (all of them: see `refresh::agents::FILES`).
    side.agent_toml = Some(path.join("gptme.toml"));
    let Some(main) = ["gptme.toml", ".github/gptme.toml"].iter().map(|f| path.join(f)).find(|p| p.exists()) else {
        return Ok(());
    };
    let Some(mut table) = read_toml_file(side, &main)? else { return Ok(()) };
    let local = main.with_file_name("gptme.local.toml");
    if local.exists() {
        if let Some(over) = read_toml_file(side, &local)? {
            toml_file::merge(&mut table, over);
        }
    }
    if let Err(why) = super::project::refusal(&table) {
        side.problems.push(format!("{}: {why}", main.display()));
    }
    let mut agent = match table.remove("agent") {
        Some(toml::Value::Table(agent)) => agent,
        None => return Ok(()),
        Some(_) => {
            side.problems.push(format!("{}: agent is not a table", main.display()));
            return Ok(());
        }
    };
    // What gptme 0.35.1 fails on (its AgentConfig: `name` required; `avatar`, `urls`, `color`),
    // and values it would show as they are where we keep text: each a problem.
    let unknown: Vec<&str> =
        agent.keys().map(String::as_str).filter(|k| !["name", "avatar", "urls", "color"].contains(k)).collect();
    if !unknown.is_empty() {
        side.problems.push(format!("{}: unknown [agent] keys: {}", main.display(), unknown.join(", ")));
    }
    if !agent.contains_key("name") {
        side.problems.push(format!("{}: [agent] has no name", main.display()));
    }
    let mut take = |key: &str| match agent.remove(key) {
        Some(toml::Value::String(s)) => Some(s),
        Some(_) => {
            side.problems.push(format!("{}: [agent] {key} is not a string", main.display()));
            None
        }
        None => None,
    };
    side.agent_name = take("name");
    side.agent_avatar = take("avatar");
    side.agent_urls = match agent.remove("urls") {
        Some(toml::Value::Table(urls)) => {
            let mut json = String::new();
            if !toml_file::table_json(&mut json, &urls) {
                side.problems
                    .push(format!("{}: [agent] urls holds a time of day, which gptme cannot send", main.display()));
            }
            Some(json)
        }
        Some(_) => {
            side.problems.push(format!("{}: [agent] urls is not a table", main.display()));
            None
        }
        None => None,
    };
    Ok(())
}

/// A TOML file's table; None (and a problem) when it cannot be read or parsed.
fn read_toml_file(side: &mut Side, path: &Path) -> crate::error::Result<Option<toml::Table>> {
    let bytes = match read_small_file(path) {
        Err(source) if is_out_of_resources(&source) => return Err(Error::OutOfResources { path: path.into(), source }),
        read => read,
    };
    let parsed = bytes.map_err(|e| e.to_string()).and_then(|bytes| {
        let text = toml_file::decode(&bytes, &path.display().to_string(), &mut side.problems);
        toml_file::read_1_1(&text).map_err(|e| format!("invalid TOML: {e}"))
    });
    Ok(parsed.map_err(|e| side.problems.push(format!("{}: {e}", path.display()))).ok())
}

/// Side files are small; anything over this is refused rather than read.
const MAX_SIDE_FILE: u64 = 1 << 20;

/// Reads a config file: only a regular file (a FIFO would block forever), and not a huge one.
fn read_small_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = crate::filesystem::open_to_read(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_SIDE_FILE {
        return Err(std::io::Error::other(format!("larger than {MAX_SIDE_FILE} bytes")));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.by_ref().take(MAX_SIDE_FILE).read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn count_branches(dir: &Path) -> crate::error::Result<u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(source) if is_out_of_resources(&source) => return Err(Error::OutOfResources { path: dir.into(), source }),
        Err(_) => return Ok(0),
    };
    Ok(entries.filter_map(|e| e.ok()).filter(|e| e.file_name().as_encoded_bytes().ends_with(b".jsonl")).count() as u64)
}

/// `~…` expanded as Python's `expanduser` expands it: `~` with `$HOME` (or, unset, the user's
/// home from the password database), `~name` with that user's home; left as it is when there is
/// none. Notes on `side` what the path depends on besides the config.
fn expand_home(p: &str, side: &mut Side) -> PathBuf {
    let expanded = p.strip_prefix('~').and_then(|rest| {
        let (user, rest) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let home = if user.is_empty() {
            side.uses_home = true;
            home_dir()?
        } else {
            let found = user_home(Some(user));
            if found.is_none() {
                // Python's `expanduser` raises for an unknown user: gptme fails to read the
                // config, and with it its whole list. We read the path as written.
                side.problems.push(format!("config.toml: {p}: no user {user:?} to expand `~{user}` for"));
            }
            found?
        };
        let home = home.to_string_lossy();
        let joined = format!("{}{rest}", home.trim_end_matches('/'));
        Some(PathBuf::from(if joined.is_empty() { "/".to_owned() } else { joined }))
    });
    let path = expanded.unwrap_or_else(|| PathBuf::from(p));
    side.uses_cwd |= path.is_relative();
    path
}

/// `$HOME`, or when it is unset the home directory the password database gives this user
/// (looked up once: every refresh asks).
pub fn home_dir() -> Option<std::ffi::OsString> {
    static OWN: std::sync::OnceLock<Option<std::ffi::OsString>> = std::sync::OnceLock::new();
    std::env::var_os("HOME").or_else(|| OWN.get_or_init(|| user_home(None)).clone())
}

/// The home directory of user `name` (None: this process's user) in the password database.
fn user_home(name: Option<&str>) -> Option<std::ffi::OsString> {
    use std::os::unix::ffi::OsStringExt;
    let name = match name {
        Some(n) => Some(std::ffi::CString::new(n).ok()?),
        None => None,
    };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: `pwd` and `buf` outlive the call; the result points into them and is copied out
    // before they are dropped.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let rc = match &name {
            Some(n) => libc::getpwnam_r(n.as_ptr(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found),
            None => libc::getpwuid_r(libc::getuid(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found),
        };
        if rc != 0 || found.is_null() || pwd.pw_dir.is_null() {
            return None;
        }
        Some(std::ffi::OsString::from_vec(std::ffi::CStr::from_ptr(pwd.pw_dir).to_bytes().to_vec()))
    }
}

impl Side {
    /// [`realpath`] of `path`, noting it in `link_paths` if a symlink outside `own_dir` (the
    /// conversation's directory, resolved) led the way.
    fn resolve_noting_links(&mut self, path: &Path, own_dir: &Path) -> PathBuf {
        let path = absolute(path);
        let resolved = resolve(PathBuf::from("/"), &path);
        self.note_links(&resolved, own_dir, &path);
        resolved.path
    }

    fn note_links(&mut self, resolved: &Resolved, own_dir: &Path, path: &Path) {
        let outside = resolved.link_dirs.iter().any(|d| d != own_dir);
        // A path that is not UTF-8 is not kept: its resolution goes unwatched.
        if let (true, Some(path)) = (outside, path.to_str()) {
            if !self.link_paths.iter().any(|p| p == path) {
                self.link_paths.push(path.to_owned());
            }
        }
    }
}

/// What [`Side::link_paths`] lead to now, in `dir`, the conversation's directory: for each,
/// whether it exists and where it resolves. Stored in the side stamp, so that a change here
/// makes the side files be read again.
pub fn probe_links(dir: &Path, link_paths: &[String]) -> Vec<(bool, PathBuf)> {
    link_paths.iter().map(|p| dir.join(p)).map(|p| (p.exists(), realpath(&p))).collect()
}

/// Python's non-strict `Path.resolve()`: symlinks followed where they exist, the rest kept.
pub fn realpath(p: &Path) -> PathBuf {
    resolve(PathBuf::from("/"), &absolute(p)).path
}

/// `p` from the working directory, when relative.
fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    }
}

/// A path resolved, and the directories of the symlinks followed on the way.
struct Resolved {
    path: PathBuf,
    link_dirs: Vec<PathBuf>,
}

/// [`realpath`] of `rest` taken relative to `base`, a directory already resolved.
fn resolve(base: PathBuf, rest: &Path) -> Resolved {
    let mut todo: Vec<OsString> = rest.components().rev().filter_map(component_name).collect();
    let mut out = base;
    let mut link_dirs = Vec::new();
    while let Some(c) = todo.pop() {
        if c == "." {
            continue;
        }
        if c == ".." {
            out.pop();
            continue;
        }
        let next = out.join(&c);
        let link = std::fs::symlink_metadata(&next).ok().filter(|m| m.file_type().is_symlink());
        match link.and_then(|_| std::fs::read_link(&next).ok()) {
            Some(target) if link_dirs.len() < 40 => {
                link_dirs.push(out.clone());
                if target.is_absolute() {
                    out = PathBuf::from("/");
                }
                todo.extend(target.components().rev().filter_map(component_name));
            }
            _ => out = next,
        }
    }
    Resolved { path: out, link_dirs }
}

fn component_name(c: Component<'_>) -> Option<OsString> {
    match c {
        Component::Normal(s) => Some(s.to_owned()),
        Component::ParentDir => Some("..".into()),
        Component::CurDir => Some(".".into()),
        Component::RootDir | Component::Prefix(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each config as gptme-server 0.35.1 took it (checked against it): those it loads are no
    /// problem; those it fails on (a 500 for the whole list) are one problem each.
    #[test]
    fn config_problems_are_what_gptme_fails_on() {
        let loads = [
            "[chat]\ntemperature = 0.5\ntop_p = true\nmax_tokens = 100\nwatch_autowake = false\n",
            "[chat]\nagent_profile = \"p\"\nsystem_prompt = \"s\"\nno_confirm = 5\nallow_hosts = 5\ngear = 1\n",
            "[chat]\nstream = \"yes\"\ntools = 5\nmodel = 5\ninteractive = 1\ntool_format = \"bogus\"\n",
            "[chat]\ncontext_budget = 1000\nworkspace = \"\"\nagent = \"\"\n[env]\nFOO = \"bar\"\n[mcp]\nfoo = 1\n",
        ];
        // Context budgets as gptme 0.35.1's `parse_context_budget` takes them, after `tomllib`.
        let budgets_taken =
            ["0.5", "\"0.5\"", "2000", "\"1_000\"", "1", "1.0", "\"2e3\"", "\" 5 \"", "2.0", "\"\\u0661\""];
        let budgets_refused = ["\"abc\"", "true", "-1", "1.5", "\"inf\"", "[1]", "0", "1e400", "nan", "\"\""];
        let budget = |v: &&str| format!("[chat]\ncontext_budget = {v}\n");
        let loads: Vec<String> = loads.iter().map(|c| c.to_string()).chain(budgets_taken.iter().map(budget)).collect();
        let fails = [
            "[chat]\ntemperature = \"x\"\n",
            "[chat]\ntop_p = \"x\"\n",
            "[chat]\nmax_tokens = true\n",
            "[chat]\nmax_tokens = 1.5\n",
            "[chat]\nwatch_autowake = 1\n",
            "[chat]\nworkspace = 5\n",
            "[chat]\nagent = 5\n",
            "[chat]\nagent_profile = 3\n",
            "[chat]\nsystem_prompt = 5\n",
            "[chat]\nenv = {}\n",
            "[chat]\nmcp = {}\n",
            "[chat]\n_logdir = \"x\"\n",
            "env = \"x\"\n[chat]\n",
            "mcp = 5\n[chat]\n",
            "chat = 5\n",
        ];
        let fails: Vec<String> =
            fails.iter().map(|c| c.to_string()).chain(budgets_refused.iter().map(budget)).collect();
        let cases = loads.iter().map(|c| (c, 0)).chain(fails.iter().map(|c| (c, 1)));
        for (config, want) in cases {
            let mut problems = Vec::new();
            parse_chat_table(config.as_bytes(), &mut problems);
            assert_eq!(problems.len(), want, "{config}: {problems:?}");
        }
    }

    /// Each agent `gptme.toml` as gptme-server 0.35.1 took it (checked against it): one problem
    /// for each it fails on, or shows a non-text value for, and none for the rest.
    #[test]
    fn agent_problems_are_what_gptme_fails_on() {
        let tmp = tempfile::tempdir().unwrap();
        let agent = tmp.path().to_str().unwrap();
        let cases = [
            ("[agent]\nname = \"N\"\navatar = \"a\"\ncolor = 5\n[agent.urls]\na = \"b\"\n", 0, Some("N")),
            ("unknownkey = 1\n[agent]\nname = \"\"\n", 0, Some("")),
            ("[project]\nx = 1\n", 0, None),
            ("[agent]\nname = 5\n", 1, None),
            ("[agent]\nname = \"N\"\navatar = 5\n", 1, Some("N")),
            ("[agent]\nname = \"N\"\nurls = \"x\"\n", 1, Some("N")),
            ("agent = 5\n", 1, None),
            ("[agent]\nname = \"N\"\nextra = 1\n", 1, Some("N")),
            ("[agent]\navatar = \"x.png\"\n", 1, None),
            ("[agent\nname =", 1, None),
        ];
        for (toml, want, name) in cases {
            std::fs::write(tmp.path().join("gptme.toml"), toml).unwrap();
            let mut side = Side::default();
            read_agent(&mut side, agent, Path::new("/")).unwrap();
            assert_eq!((side.problems.len(), side.agent_name.as_deref()), (want, name), "{toml}: {:?}", side.problems);
        }
    }

    /// Where gptme (0.35.1, checked against it) finds an agent's settings: `gptme.toml`, else
    /// `.github/gptme.toml`, with a `gptme.local.toml` beside it merged over it.
    #[test]
    fn agent_settings_come_from_where_gptme_reads_them() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let read = || {
            let mut side = Side::default();
            read_agent(&mut side, dir.to_str().unwrap(), Path::new("/")).unwrap();
            (side.agent_name, side.agent_avatar, side.agent_urls, side.problems.len())
        };
        let write = |file: &str, text: &str| {
            std::fs::create_dir_all(dir.join(file).parent().unwrap()).unwrap();
            std::fs::write(dir.join(file), text).unwrap();
        };
        write(".github/gptme.toml", "[agent]\nname = \"GitHub\"\n");
        assert_eq!(read(), (Some("GitHub".into()), None, None, 0));
        write(".github/gptme.local.toml", "[agent]\navatar = \"a.png\"\n");
        assert_eq!(read(), (Some("GitHub".into()), Some("a.png".into()), None, 0));
        // gptme.toml comes first, and only the local file beside it counts.
        write("gptme.toml", "[agent]\nname = \"Main\"\n[agent.urls]\na = \"1\"\n");
        assert_eq!(read(), (Some("Main".into()), None, Some("{\"a\":\"1\"}".into()), 0));
        write("gptme.local.toml", "[agent]\nname = \"Local\"\n[agent.urls]\nb = \"2\"\n");
        assert_eq!(read(), (Some("Local".into()), None, Some("{\"a\":\"1\",\"b\":\"2\"}".into()), 0));
        // A local file that is not TOML: a problem (gptme fails), and the main file alone.
        write("gptme.local.toml", "[agent\n");
        assert_eq!(read(), (Some("Main".into()), None, Some("{\"a\":\"1\"}".into()), 1));
    }

    #[test]
    fn realpath_follows_links_and_keeps_missing_tails() {
        let tmp = tempfile::tempdir().unwrap();
        let root = realpath(tmp.path());
        std::fs::create_dir(root.join("real")).unwrap();
        std::os::unix::fs::symlink("real", root.join("link")).unwrap();
        std::os::unix::fs::symlink("nowhere", root.join("dangling")).unwrap();
        assert_eq!(realpath(&root.join("link/x/../y")), root.join("real/y"));
        assert_eq!(realpath(&root.join("dangling")), root.join("nowhere"));
    }

    /// Resolving from the resolved logs dir gives what resolving from the root gives: through a
    /// symlinked logs dir, conversation dir and workspace, for each way a workspace is chosen.
    #[test]
    fn workspaces_resolve_as_from_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = realpath(tmp.path());
        let link = |target: &str, at: &str| std::os::unix::fs::symlink(target, root.join(at)).unwrap();
        std::fs::create_dir_all(root.join("real-logs/c")).unwrap();
        std::fs::create_dir_all(root.join("elsewhere/d")).unwrap();
        std::fs::create_dir_all(root.join("projects/p")).unwrap();
        link("real-logs", "logs");
        link("../elsewhere/d", "real-logs/linked");
        link("../../projects/p", "real-logs/c/workspace");
        let logs = root.join("logs");
        let configs = [
            None,
            Some("[chat]\nworkspace = \"@log\"\n"),
            Some("[chat]\n"),
            Some("not toml ["),
            Some(&*format!("[chat]\nworkspace = \"{}\"\n", logs.join("c/../linked/x").display())),
        ];
        for id in ["c", "linked"] {
            let dir = logs.join(id);
            for config in configs {
                match config {
                    Some(text) => std::fs::write(dir.join("config.toml"), text).unwrap(),
                    None => drop(std::fs::remove_file(dir.join("config.toml"))),
                }
                let side = read(&dir, id, || realpath(&logs)).unwrap();
                let expected = match config {
                    Some(t) if t.contains("workspace = \"/") => realpath(&logs.join("c/../linked/x")),
                    Some("not toml [") => realpath(&dir),
                    Some("[chat]\n") if !dir.join("workspace").exists() => realpath(&dir),
                    _ => realpath(&dir.join("workspace")),
                };
                assert_eq!(Path::new(&side.workspace), expected, "{id} {config:?}");
            }
        }
    }

    /// The paths noted for resolving again: those that went through a symlink outside the
    /// conversation's directory, and a `workspace` symlink that decides by leading anywhere.
    #[test]
    fn links_outside_the_conversation_are_noted() {
        let tmp = tempfile::tempdir().unwrap();
        let root = realpath(tmp.path());
        let link = |target: &Path, at: &str| std::os::unix::fs::symlink(target, root.join(at)).unwrap();
        for d in ["logs/c", "real-d", "v1/p", "v1/agent", "logs/e"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        link(&root.join("v1"), "current");
        link(&root.join("real-d"), "logs/d");
        let logs = root.join("logs");
        let through = root.join("current/p").to_string_lossy().into_owned();
        let agent = root.join("current/agent").to_string_lossy().into_owned();
        let (real, linked) = (Some(root.join("v1/p")), Some(root.join("current/p")));
        let log = || Some("[chat]\nworkspace = \"@log\"\n".to_owned());
        let cases = [
            ("c", None, Some(format!("[chat]\nworkspace = \"{through}\"\n")), vec![through.as_str()]),
            ("c", None, Some(format!("[chat]\nworkspace = \"{}\"\n", root.join("v1/p").display())), vec![]),
            ("c", real.clone(), log(), vec![]),
            ("c", linked, log(), vec!["workspace"]),
            ("c", real.clone(), Some("[chat]\n".into()), vec!["workspace"]),
            ("c", real, None, vec![]),
            ("d", None, None, vec![]),
            ("e", None, Some(format!("[chat]\nagent = \"{agent}\"\n")), vec![agent.as_str()]),
        ];
        for (i, (id, workspace, config, expected)) in cases.into_iter().enumerate() {
            let dir = logs.join(id);
            drop(std::fs::remove_file(dir.join("workspace")));
            if let Some(target) = workspace {
                std::os::unix::fs::symlink(&target, dir.join("workspace")).unwrap();
            }
            match &config {
                Some(text) => std::fs::write(dir.join("config.toml"), text).unwrap(),
                None => drop(std::fs::remove_file(dir.join("config.toml"))),
            }
            let side = read(&dir, id, || realpath(&logs)).unwrap();
            assert_eq!(side.link_paths, expected, "case {i}: {config:?}");
        }
    }
}
