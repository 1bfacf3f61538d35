//! What gptme 0.35.1 refuses in the tables of its TOML files that feed no field of ours.
//!
//! To show an agent's name gptme reads the agent's whole `gptme.toml` (its `ProjectConfig`),
//! and with a conversation's name its whole `config.toml`, `[mcp]` included; a mistake anywhere
//! in them fails its whole list. convmeta lists the conversation all the same and counts the
//! mistake as a problem, found here: the checks gptme makes of each table's shape (a table
//! where it wants one, lists of strings, the keys a section takes, hook scripts). What gptme
//! checks inside `[context]` and `[context_selector]` is left out.

use toml::{Table, Value};

/// Why gptme would refuse the `ProjectConfig` of this document (a `gptme.toml` merged with its
/// `gptme.local.toml`), in gptme's order, `[agent]` aside (the caller reads it).
pub fn refusal(doc: &Table) -> Result<(), String> {
    match doc.get("prompt") {
        Some(Value::Table(prompt)) => {
            if prompt.get("system").is_some_and(|s| !matches!(s.as_str(), Some("full" | "short"))) {
                return Err("prompt.system is neither \"full\" nor \"short\"".into());
            }
            strings(prompt, "files", "prompt.files")?;
            strings(prompt, "exclude", "prompt.exclude")?;
        }
        _ => strings(doc, "files", "files")?,
    }
    hooks(doc)?;
    keys(section(doc, "rag")?, "rag", RAG)?;
    strings(section(doc, "lessons")?, "dirs", "lessons.dirs")?;
    section(doc, "context")?;
    section(doc, "context_selector")?;
    let plugins = section(doc, "plugins")?;
    strings(plugins, "paths", "plugins.paths")?;
    strings(plugins, "enabled", "plugins.enabled")?;
    section(doc, "env")?;
    if let Some(mcp) = doc.get("mcp") {
        let mcp = mcp.as_table().ok_or("mcp is not a table")?;
        // Only a non-empty [mcp] is read here (a config.toml's is read even empty).
        if !mcp.is_empty() {
            mcp_servers(mcp)?;
        }
    }
    // Python's truth: 0, "", false and [] pass as "no plugin tables".
    if doc.get("plugin").is_some_and(|p| truthy(p) && !p.is_table()) {
        return Err("plugin is not a table".into());
    }
    keys(section(doc, "subagent")?, "subagent", &["max_concurrent"])?;
    keys(section(doc, "settings")?, "settings", &["gear"])
}

/// A `config.toml`'s `[mcp]`, as gptme's `ChatConfig` reads it when present.
pub fn mcp_servers(mcp: &Table) -> Result<(), String> {
    let Some(servers) = mcp.get("servers") else { return Ok(()) };
    let servers = servers.as_array().ok_or("mcp.servers is not a list")?;
    for server in servers {
        let server = server.as_table().ok_or("an mcp.servers entry is not a table")?;
        keys(server, "mcp.servers entry", MCP_SERVER)?;
        if !server.contains_key("name") {
            return Err("an mcp.servers entry has no name".into());
        }
    }
    Ok(())
}

const RAG: &[&str] = &[
    "enabled",
    "max_tokens",
    "min_relevance",
    "paths",
    "post_process",
    "post_process_model",
    "post_process_prompt",
    "workspace_only",
];
const MCP_SERVER: &[&str] = &["args", "command", "enabled", "env", "headers", "name", "url"];

/// The table at `key` (empty when absent); an error when it is something else.
fn section<'a>(doc: &'a Table, key: &str) -> Result<&'a Table, String> {
    static EMPTY: std::sync::OnceLock<Table> = std::sync::OnceLock::new();
    match doc.get(key) {
        None => Ok(EMPTY.get_or_init(Table::new)),
        Some(Value::Table(t)) => Ok(t),
        Some(_) => Err(format!("{key} is not a table")),
    }
}

/// `table[key]`, when present, is a list of strings.
fn strings(table: &Table, key: &str, name: &str) -> Result<(), String> {
    match table.get(key) {
        Some(Value::Array(items)) if !items.iter().all(Value::is_str) => {
            Err(format!("{name} is not a list of strings"))
        }
        Some(Value::Array(_)) | None => Ok(()),
        Some(_) => Err(format!("{name} is not a list of strings")),
    }
}

/// A section gptme builds as a dataclass: any other key fails it.
fn keys(table: &Table, name: &str, known: &[&str]) -> Result<(), String> {
    match table.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(format!("{name} has an unknown key {k:?}")),
        None => Ok(()),
    }
}

/// `[[hooks.scripts]]`: each a table with an `event` gptme knows, a `command` that is not
/// blank, and integer `timeout` (1–300 s) and `priority`.
fn hooks(doc: &Table) -> Result<(), String> {
    let Some(scripts) = section(doc, "hooks")?.get("scripts") else { return Ok(()) };
    let scripts = scripts.as_array().ok_or("hooks.scripts is not a list")?;
    for script in scripts {
        let script = script.as_table().ok_or("a hooks.scripts entry is not a table")?;
        keys(script, "a hooks.scripts entry", &["command", "event", "priority", "timeout"])?;
        let event = script.get("event").map(Value::as_str);
        let command = script.get("command").map(Value::as_str);
        let fine = matches!(event, Some(Some("session.start" | "session.end")))
            && matches!(command, Some(Some(c)) if !c.trim().is_empty())
            && script.get("timeout").is_none_or(|t| t.as_integer().is_some_and(|t| (1..=300).contains(&t)))
            && script.get("priority").is_none_or(Value::is_integer);
        if !fine {
            return Err("a hooks.scripts entry gptme refuses (event, command, timeout or priority)".into());
        }
    }
    Ok(())
}

/// Python's truth of a TOML value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::String(s) => !s.is_empty(),
        Value::Integer(i) => *i != 0,
        Value::Float(f) => *f != 0.0,
        Value::Boolean(b) => *b,
        Value::Array(a) => !a.is_empty(),
        Value::Table(t) => !t.is_empty(),
        Value::Datetime(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::refusal;

    fn check(text: &str) -> Result<(), String> {
        refusal(&text.parse().unwrap())
    }

    #[test]
    fn refuses_what_gptme_refuses() {
        for bad in [
            "files = \"README.md\"",
            "files = [\"a\", 1]",
            "[prompt]\nsystem = \"long\"",
            "[prompt]\nexclude = \"x\"",
            "rag = 5",
            "[rag]\nenable = true",
            "[hooks]\nscripts = {}",
            "[[hooks.scripts]]\nevent = \"session.start\"\ncommand = \" \"",
            "[[hooks.scripts]]\nevent = \"session.start\"\ncommand = \"x\"\ntimeout = 301",
            "[[hooks.scripts]]\nevent = \"session.start\"\ncommand = \"x\"\npriority = true",
            "[[hooks.scripts]]\nevent = \"start\"\ncommand = \"x\"",
            "[lessons]\ndirs = \"x\"",
            "context = []",
            "[plugins]\nenabled = [1]",
            "env = 1",
            "mcp = \"x\"",
            "[mcp]\nservers = {}",
            "[[mcp.servers]]\ncommand = \"x\"",
            "plugin = 1",
            "[subagent]\nmax = 1",
            "[settings]\nfoo = 1",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn accepts_what_gptme_accepts() {
        for good in [
            "",
            "files = [\"README.md\"]\nprompt = \"be brief\"\nbase_prompt = 5",
            "[prompt]\nsystem = \"short\"\nfiles = []",
            "[[hooks.scripts]]\nevent = \"session.end\"\ncommand = \"make\"\ntimeout = 300\npriority = -1",
            "[rag]\nenabled = true\npaths = 5",
            "[lessons]\ndirs = [\"l\"]\nother = 1",
            "mcp = {}",
            "[[mcp.servers]]\nname = \"s\"\nurl = 5",
            "plugin = 0",
            "[plugin.x]\ny = 1",
            "[subagent]\nmax_concurrent = \"many\"",
            "[settings]\ngear = 1",
            "[unknown]\nx = 1",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
    }
}
