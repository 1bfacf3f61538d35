//! The agents' `gptme.toml` files: they lie outside the logs dir, where no watch sees them
//! change, so a refresh of named conversations (watch mode) checks them itself. One look per
//! agent (the stats of its [`FILES`]), not one per conversation: an agent's workspace can hold
//! thousands of conversations.

use std::collections::{HashMap, HashSet};

use crate::format::gptme::FileStat;
use crate::store::rows::StoredState;

/// The files gptme reads an agent's settings from, in its directory: the first of `gptme.toml`
/// and `.github/gptme.toml` that exists, with a `gptme.local.toml` beside it merged over it.
pub const FILES: [&str; 4] = ["gptme.toml", ".github/gptme.toml", "gptme.local.toml", ".github/gptme.local.toml"];

/// What the stats of an agent's [`FILES`] saw (None: missing).
pub type Seen = [Option<FileStat>; 4];

/// Stats the agent files beside `toml`, an agent's `gptme.toml` path (what a conversation's
/// state names).
pub fn stat(toml: &str) -> Seen {
    let dir = std::path::Path::new(toml).parent().unwrap_or(std::path::Path::new("/"));
    FILES.map(|f| std::fs::metadata(dir.join(f)).ok().map(|m| FileStat::from(&m)))
}

/// Every agent file that stored conversations use, by path.
#[derive(Default)]
pub struct Agents(HashMap<String, AgentFile>);

#[derive(Default)]
struct AgentFile {
    /// The conversations that use it.
    ids: HashSet<String>,
    /// What it was when every one of them was last checked against it (None: not since these
    /// were loaded).
    checked: Option<Seen>,
}

/// The stats a check took, to be recorded once the conversations they named are written.
pub struct Check(Vec<(String, Option<Seen>)>);

impl Agents {
    /// From every stored conversation that uses an agent: (id, path). None checked yet.
    pub fn from_stored(uses: impl IntoIterator<Item = (String, String)>) -> Agents {
        let mut agents = Agents::default();
        for (id, path) in uses {
            agents.0.entry(path).or_default().ids.insert(id);
        }
        agents
    }

    /// Stats each agent file once: the conversations of those that changed since they were last
    /// checked (or were never checked) are to be refreshed.
    pub fn check(&self, settled: impl Fn(&FileStat) -> bool) -> (Vec<String>, Check) {
        let mut ids = Vec::new();
        let mut seen = Vec::with_capacity(self.0.len());
        for (path, file) in &self.0 {
            let now: Seen = stat(path);
            if file.checked != Some(now) {
                ids.extend(file.ids.iter().cloned());
            }
            // A file changed within the refresh's clock tick may change again unseen in it: not
            // recorded, so it is checked again next time.
            seen.push((path.clone(), now.iter().flatten().all(&settled).then_some(now)));
        }
        (ids, Check(seen))
    }

    /// Records a check whose conversations have been refreshed, and the refresh's changes:
    /// (id, its state before, its state now).
    pub fn update<'a>(
        &mut self,
        check: Check,
        changes: impl IntoIterator<Item = (&'a String, Option<&'a StoredState>, Option<&'a StoredState>)>,
    ) {
        for (path, seen) in check.0 {
            if let Some(file) = self.0.get_mut(&path) {
                file.checked = seen;
            }
        }
        for (id, before, now) in changes {
            let was = before.and_then(|s| s.agent_toml.as_ref());
            let is = now.and_then(|s| s.agent_toml.as_ref());
            if was == is {
                continue;
            }
            if let Some(path) = was {
                if let Some(file) = self.0.get_mut(path) {
                    file.ids.remove(id);
                    if file.ids.is_empty() {
                        self.0.remove(path);
                    }
                }
            }
            if let Some(path) = is {
                // A file first used now was stamped into this conversation's state by the
                // refresh, after any check: leave its own check for next time.
                self.0.entry(path.clone()).or_default().ids.insert(id.clone());
            }
        }
    }
}
