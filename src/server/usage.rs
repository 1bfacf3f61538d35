//! `GET /api/v2/usage`: `convmeta usage --json` over HTTP, fresh, behind the list's auth.
//! Parameters as the command's flags: `by`, `since`, `until`, `workspace` (absolute: the
//! server has no working directory of the client's), `conversation`, `model`, `agent`,
//! `breakdown`, `limit`.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;

use super::{flag, own_answer, AppState};
use crate::store::usage::{UsageBy, UsageQuery};
use crate::usage::{date_span, json_row, reversed, workspace_as_stored, DateSpan, JsonRow};

/// What a request asks.
#[derive(Debug, Default, PartialEq)]
struct Params {
    by: UsageBy,
    since: Option<DateSpan>,
    until: Option<DateSpan>,
    workspace: Option<String>,
    conversation: Option<String>,
    model: Option<String>,
    agent: Option<String>,
    breakdown: bool,
    /// 0: all rows.
    limit: usize,
}

impl Params {
    /// A parameter not known here is refused, so that a misspelt one does not go unseen
    /// (`token` is the auth's).
    fn parse(query: &str) -> Result<Params, String> {
        let mut p = Params::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "by" => {
                    let all = <UsageBy as clap::ValueEnum>::value_variants();
                    p.by = all.iter().copied().find(|b| b.name() == value).ok_or_else(|| {
                        let names: Vec<&str> = all.iter().map(|b| b.name()).collect();
                        format!("by must be one of {}", names.join(", "))
                    })?
                }
                "since" | "until" => {
                    let date = Some(date_span(&value).map_err(|e| format!("{key} must be {e}"))?);
                    if key == "since" {
                        p.since = date
                    } else {
                        p.until = date
                    }
                }
                "workspace" if value.starts_with('/') => {
                    p.workspace = Some(workspace_as_stored(std::path::Path::new(&*value)).map_err(|e| e.to_string())?)
                }
                "workspace" => return Err("workspace must be an absolute path".into()),
                "conversation" if value.is_empty() => return Err("conversation must be a conversation's id".into()),
                "conversation" => p.conversation = Some(value.into_owned()),
                "model" => p.model = Some(value.into_owned()),
                "agent" => p.agent = Some(value.into_owned()),
                "breakdown" => p.breakdown = flag(&key, &value)?,
                "limit" => p.limit = crate::usage::count(&value).ok_or("limit must be a count, 0 or more")?,
                "token" => {}
                other => return Err(format!("unknown parameter {other:?}")),
            }
        }
        match reversed(p.since.as_ref(), p.until.as_ref(), "") {
            Some(why) => Err(why),
            None => Ok(p),
        }
    }
}

/// The answer: the rows, their total, and whether `limit` left any out (the total is of all).
#[derive(serde::Serialize)]
struct Answer {
    by: &'static str,
    rows: Vec<JsonRow>,
    total: JsonRow,
    more: bool,
}

pub async fn handler(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Response {
    own_answer(state, query, Params::parse, |state, p: Params| {
        if let Some(id) = &p.conversation {
            state.index.show(id)?; // no such conversation: 404, naming those like it
        }
        let q = UsageQuery {
            by: p.by,
            since: p.since.as_ref().map(|d| d.text.as_str()),
            until: p.until.as_ref().map(|d| d.text.as_str()),
            workspace: p.workspace.as_deref(),
            conversation: p.conversation.as_deref(),
            model: p.model.as_deref(),
            agent: p.agent.as_deref(),
        };
        let mut usage = state.index.usage(&q)?;
        let more = usage.keep(p.by, p.limit);
        let rows = usage.rows.iter().map(|r| json_row(p.by, r, p.breakdown)).collect();
        Ok(Answer { by: p.by.name(), rows, total: json_row(p.by, &usage.total, p.breakdown), more })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_the_commands_flags() {
        let p = Params::parse(
            "by=workspace&since=2026-11&until=2026&conversation=a%20b&model=opus&agent=Bob&breakdown=true&limit=3&token=x",
        )
        .unwrap();
        let want = Params {
            by: UsageBy::Workspace,
            since: Some(date_span("2026-11").unwrap()),
            until: Some(date_span("2026").unwrap()),
            conversation: Some("a b".into()),
            model: Some("opus".into()),
            agent: Some("Bob".into()),
            breakdown: true,
            limit: 3,
            ..Params::default()
        };
        assert_eq!(p, want);
        assert_eq!(Params::parse("").unwrap(), Params::default());
        assert_eq!(Params::parse("workspace=/no/such/dir/").unwrap().workspace.as_deref(), Some("/no/such/dir"));
        for (bad, why) in [
            ("by=year", "by must be one of day, week, month, model, conversation, workspace, agent"),
            (
                "since=2026-02-30",
                "since must be a date as YYYY-MM-DD, a month (YYYY-MM), a year (YYYY), today, yesterday, or days or \
                 weeks ago (7d, 2w)",
            ),
            ("workspace=proj", "workspace must be an absolute path"),
            ("breakdown=yes", "breakdown must be true or false"),
            ("limit=-1", "limit must be a count, 0 or more"),
            ("conversation=", "conversation must be a conversation's id"),
            ("sinse=2026", "unknown parameter \"sinse\""),
            ("since=2026-12&until=2026-11-30", "since 2026-12 is after until 2026-11-30: no day lies between them"),
        ] {
            assert_eq!(Params::parse(bad), Err(why.to_owned()), "{bad}");
        }
    }
}
