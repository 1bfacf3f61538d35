//! `GET /api/v2/search`: `convmeta search --json` over HTTP, fresh, behind the list's auth: the
//! listed conversations whose messages say `q`, newest first. Parameters as the command's
//! arguments and flags: `q` (given more than once, a message must say each), `sort`
//! (`modified` or `matches`), `word` (`true`: each text as a word), `regex` (`true`: each a
//! regular expression), `case_sensitive` (`true`: in the case typed; `smart_case`, as `-S`), `limit` (default 20, 0 for all), `matches` (default 3), `context`
//! (lines around each shown, default 0; `before_context` and `after_context` for one side,
//! which they set whatever `context` says, as grep's -B and -A), `system` or `role`, and the list's
//! filters `workspace` (absolute), `since`, `until`, `model`, `agent`, `problems` and `hidden`
//! (`true`: only those with problems; hidden ones too). Answers
//! `{"conversations": [...], "more": bool}`.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;

use super::{flag, own_answer, AppState};
use crate::format::gptme::content::{Matching, Roles, Shown, Texts, TextsError, EXCERPT_CHARS};
use crate::message_search::{self, Query, Said, Sort};
use crate::store::rows::Within;
use crate::usage::{date_span, local_day_start, reversed, workspace_as_stored};

/// What a request asks.
#[derive(Debug)]
struct Params {
    texts: Texts,
    sort: Sort,
    limit: usize,
    matches: usize,
    context: usize,
    before_context: Option<usize>,
    after_context: Option<usize>,
    system: bool,
    role: Option<String>,
    workspace: Option<String>,
    since: Option<f64>,
    before: Option<f64>,
    model: Option<String>,
    agent: Option<String>,
    hidden: bool,
    problems: bool,
}

impl Params {
    /// A parameter not known here is refused, so that a misspelt one does not go unseen
    /// (`token` is the auth's).
    fn parse(query: &str) -> Result<Params, String> {
        // What the texts are is known once every parameter is read; until then, none.
        let (mut q, mut how, mut smart_case) = (Vec::new(), Matching::default(), false);
        let (mut since, mut until) = (None, None);
        let mut p = Params {
            texts: Texts::default(),
            sort: Sort::Modified,
            limit: 20,
            matches: 3,
            context: 0,
            before_context: None,
            after_context: None,
            system: false,
            role: None,
            workspace: None,
            since: None,
            before: None,
            model: None,
            agent: None,
            hidden: false,
            problems: false,
        };
        let count = |key: &str, value: &str| {
            crate::usage::count(value).ok_or_else(|| format!("{key} must be a count, 0 or more"))
        };
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "q" => q.push(value.into_owned()),
                "sort" => {
                    p.sort = <Sort as clap::ValueEnum>::from_str(&value, false)
                        .map_err(|_| "sort must be modified or matches".to_owned())?
                }
                "limit" => p.limit = count(&key, &value)?,
                "matches" => p.matches = count(&key, &value)?,
                "context" => p.context = count(&key, &value)?,
                "before_context" => p.before_context = Some(count(&key, &value)?),
                "after_context" => p.after_context = Some(count(&key, &value)?),
                "system" => p.system = flag(&key, &value)?,
                "word" => how.words = flag(&key, &value)?,
                "regex" => how.regex = flag(&key, &value)?,
                "case_sensitive" => how.case_sensitive = flag(&key, &value)?,
                "smart_case" => smart_case = flag(&key, &value)?,
                "role" if ["user", "assistant", "system"].contains(&&*value) => p.role = Some(value.into_owned()),
                "role" => return Err("role must be user, assistant or system".into()),
                "since" => since = Some(date_span(&value).map_err(|e| format!("since must be {e}"))?),
                "until" => until = Some(date_span(&value).map_err(|e| format!("until must be {e}"))?),
                "workspace" if value.starts_with('/') => {
                    p.workspace = Some(workspace_as_stored(std::path::Path::new(&*value)).map_err(|e| e.to_string())?)
                }
                "workspace" => return Err("workspace must be an absolute path".into()),
                "model" => p.model = Some(value.into_owned()),
                "agent" => p.agent = Some(value.into_owned()),
                "hidden" => p.hidden = flag(&key, &value)?,
                "problems" => p.problems = flag(&key, &value)?,
                "token" => {}
                other => return Err(format!("unknown parameter {other:?}")),
            }
        }
        if p.system && p.role.is_some() {
            return Err("system and role cannot both be given".into());
        }
        if how.case_sensitive && smart_case {
            return Err("case_sensitive and smart_case cannot both be given".into());
        }
        if smart_case {
            how = how.smart_case(&q);
        }
        if let Some(why) = reversed(since.as_ref(), until.as_ref(), "") {
            return Err(why);
        }
        p.since = since.map(|d| local_day_start(d.first));
        p.before = until.map(|d| local_day_start(d.after));
        p.texts = Texts::new(&q, how).map_err(|e| match e {
            TextsError::Blank => "q, the text to search for, is missing or blank".to_owned(),
            e => e.to_string(),
        })?;
        Ok(p)
    }
}

#[derive(serde::Serialize)]
struct Answer {
    conversations: Vec<Said>,
    /// More conversations match past the limit.
    more: bool,
}

pub async fn handler(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Response {
    own_answer(state, query, Params::parse, |state, p: Params| {
        let within = Within {
            workspace: p.workspace.as_deref(),
            since: p.since,
            before: p.before,
            model: p.model.as_deref(),
            agent: p.agent.as_deref(),
            hidden: p.hidden,
            with_problems: p.problems,
        };
        let limit = if p.limit == 0 { usize::MAX } else { p.limit };
        let roles = Roles::asked(p.role.as_deref(), p.system);
        let q = Query {
            texts: &p.texts,
            within,
            roles,
            limit,
            sort: p.sort,
            shown: Shown {
                matches: p.matches,
                before: p.before_context.unwrap_or(p.context),
                after: p.after_context.unwrap_or(p.context),
                chars: EXCERPT_CHARS,
            },
        };
        let found = message_search::search(&state.index, &q)?;
        Ok(Answer { conversations: found.conversations, more: found.more })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::gptme::content::Sought;

    #[test]
    fn parameters_are_the_commands_flags() {
        let lowered = |query: &str| match Params::parse(query).unwrap().texts.sought {
            Sought::Lowered { lowered, words } => (lowered.iter().map(|n| n.to_string()).collect::<Vec<_>>(), words),
            Sought::Patterns { .. } => panic!("{query}: no regex asked for"),
        };
        let p = Params::parse("q=%20Parser&limit=0&matches=1&system=true&model=opus&agent=Bob&token=x").unwrap();
        assert_eq!((p.limit, p.matches, p.system), (0, 1, true));
        assert_eq!(lowered("q=%20Parser"), (vec![" parser".to_owned()], false));
        assert_eq!(lowered("q=wal&q=SQLite"), (vec!["wal".to_owned(), "sqlite".to_owned()], false));
        assert_eq!(Params::parse("q=x&sort=matches").unwrap().sort, Sort::Matches);
        assert!(lowered("q=x&word=true").1);
        assert!(
            matches!(Params::parse("q=x%2B&regex=true").unwrap().texts.sought, Sought::Patterns { patterns, .. } if patterns.len() == 1)
        );
        assert_eq!((p.model.as_deref(), p.agent.as_deref()), (Some("opus"), Some("Bob")));
        for (bad, says) in [
            ("", "q, the text to search for, is missing or blank"),
            ("q=%20", "q, the text to search for, is missing or blank"),
            ("q=wal&q=", "q, the text to search for, is missing or blank"),
            ("q=x&limit=-1", "limit must be a count, 0 or more"),
            ("q=x&matches=many", "matches must be a count, 0 or more"),
            ("q=x&context=-1", "context must be a count, 0 or more"),
            ("q=x&system=yes", "system must be true or false"),
            ("q=x&word=yes", "word must be true or false"),
            ("q=a(b&regex=true", "\"a(b\" is not a regular expression: unclosed group"),
            ("q=x&role=tool", "role must be user, assistant or system"),
            ("q=x&role=user&system=1", "system and role cannot both be given"),
            ("q=x&workspace=rel", "workspace must be an absolute path"),
            ("q=x&since=soon", "since must be"),
            ("q=x&since=2027&until=2026-12-31", "since 2027 is after until 2026-12-31: no day lies between them"),
            ("q=x&sort=cost", "sort must be modified or matches"),
            ("q=x&order=matches", "unknown parameter \"order\""),
        ] {
            let err = Params::parse(bad).unwrap_err();
            assert!(err.starts_with(says), "{bad}: {err}");
        }
    }
}
