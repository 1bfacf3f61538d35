//! `convmeta search`: the listed conversations whose messages hold a text (or several, each),
//! newest first. The logs are read on every core, a batch at a time, until enough
//! conversations match.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::Result;
use crate::format::gptme::content::{self, LogMatches, Match, Roles, Shown, Texts};
use crate::format::gptme::LOG_FILE;
use crate::index::Index;
use crate::store::rows::Within;

/// What to look for, and how much of it to keep.
pub struct Query<'a> {
    /// What a message must say (gptme's `chats search` looks for one text, lowered).
    pub texts: &'a Texts,
    pub within: Within<'a>,
    /// Which messages, by role (gptme's `chats search` leaves system ones out).
    pub roles: Roles<'a>,
    /// At most this many conversations.
    pub limit: usize,
    /// In which order.
    pub sort: Sort,
    /// How much of each conversation's matches to show.
    pub shown: Shown,
}

/// The order of the conversations found.
#[derive(Debug, Clone, Copy, Default, PartialEq, clap::ValueEnum)]
pub enum Sort {
    /// Newest first (by `modified`, as `list`).
    #[default]
    Modified,
    /// Most matching messages first, ties newest first: every log is read before the first
    /// is known.
    Matches,
}

/// A conversation whose messages hold the texts (`search --json` and `/api/v2/search` give these).
#[derive(serde::Serialize)]
pub struct Said {
    pub id: String,
    pub name: String,
    /// The log, `<logs>/<id>/conversation.jsonl` with the logs dir as given (as the list's `path`).
    pub path: String,
    pub modified: f64,
    /// How many messages hold them.
    pub matches: usize,
    /// The first of them, as many as asked for.
    pub messages: Vec<Match>,
}

#[derive(Default)]
pub struct Found {
    pub conversations: Vec<Said>,
    /// More conversations match past the limit.
    pub more: bool,
    /// Logs that could not be read (each logged), not counting those deleted since the refresh.
    pub unreadable: usize,
}

/// Searches the index's listed conversations' logs, newest first.
pub fn search(index: &Index, q: &Query<'_>) -> Result<Found> {
    let mut found = Found::default();
    // Ranked by matches, the first are known only once every log has been read.
    let limit = if q.sort == Sort::Matches { usize::MAX } else { q.limit };
    let listed = index.listed(&q.within)?;
    let threads = crate::refresh::default_jobs();
    // Batches enough to keep every thread busy, small at first so that a search that finds its
    // conversations among the newest stops soon, then larger, so that threads start seldom.
    let mut rest = &listed[..];
    let mut batch_len = threads * 16;
    while !rest.is_empty() {
        let (batch, after) = rest.split_at(batch_len.min(rest.len()));
        (rest, batch_len) = (after, (batch_len * 2).min(4096));
        let next = AtomicUsize::new(0);
        let read_one = |buf: &mut Vec<u8>, id: &str| {
            let path = index.logs().join(id).join(LOG_FILE);
            let read = content::search_log(&path, q.texts, q.roles, q.shown, buf);
            (path, read)
        };
        let work = || {
            let (mut buf, mut out) = (Vec::new(), Vec::new());
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((id, ..)) = batch.get(i) else { break out };
                out.push((i, read_one(&mut buf, id)));
            }
        };
        // This thread reads too; at the system's limit on threads, it reads alone.
        let mut results: Vec<_> = std::thread::scope(|s| {
            let helpers: Vec<_> = (1..threads.min(batch.len()))
                .filter_map(|_| std::thread::Builder::new().spawn_scoped(s, work).ok())
                .collect();
            let mut all = work();
            for helper in helpers {
                all.extend(helper.join().expect("search worker panicked"));
            }
            all
        });
        results.sort_unstable_by_key(|(i, _)| *i);
        for ((id, name, modified), (_, (path, read))) in batch.iter().zip(results) {
            let LogMatches { count: matches, shown: messages } = match read {
                Ok(m) if m.count > 0 => m,
                Ok(_) => continue,
                // Deleted since the refresh: no longer a conversation.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "could not read the log");
                    found.unreadable += 1;
                    continue;
                }
            };
            if found.conversations.len() == limit {
                found.more = true;
                return Ok(found);
            }
            found.conversations.push(Said {
                id: id.clone(),
                name: name.clone(),
                path: path.to_string_lossy().into_owned(),
                modified: *modified,
                matches,
                messages,
            });
        }
    }
    if q.sort == Sort::Matches {
        found.conversations.sort_by_key(|c| std::cmp::Reverse(c.matches)); // stable: ties newest first
        found.more = found.conversations.len() > q.limit;
        found.conversations.truncate(q.limit);
    }
    Ok(found)
}
