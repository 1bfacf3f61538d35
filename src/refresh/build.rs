//! Builds the row of one changed conversation: reads what is new in its log (from the stored
//! offset when the file only grew), its side files when their stamp changed, and renders the
//! row and the state stored with it.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::Ordering;

use super::{agents, modified_of, racy, side_stamp, stamp_of, Job, Kind, Outcome, Pass};
use crate::error::{is_out_of_resources, Error, Result};
use crate::format::gptme::{self, item, side, Accumulator, FileStat, Found, Side};
use crate::scan::{self, LineSink};
use crate::store::rows::{self, ConversationRow, FileStamp, ModelRow, Resume, StoredState, UNSETTLED_MTIME};

/// A resume point as stored, with its state and side values parsed (None: unreadable, so
/// computed again). The last refresh's are kept parsed: the next append need not parse them.
#[derive(Clone)]
pub struct Resumed {
    offset: u64,
    fingerprint: u64,
    acc: Option<Accumulator>,
    side: Option<Side>,
}

impl Resumed {
    /// Whether the conversation's config paths use `HOME` and the working directory.
    pub(super) fn side_uses(&self) -> (bool, bool) {
        self.side.as_ref().map_or((false, false), |side| (side.uses_home, side.uses_cwd))
    }
}

impl From<Resume> for Resumed {
    fn from(r: Resume) -> Resumed {
        Resumed {
            offset: r.offset,
            fingerprint: r.fingerprint,
            acc: serde_json::from_str(&r.accumulator).ok(),
            side: serde_json::from_str(&r.side).ok(),
        }
    }
}

impl LineSink for Accumulator {
    fn line(&mut self, bytes: &[u8], offset: u64) {
        self.feed(bytes, offset);
    }
    fn oversized(&mut self) {
        self.feed_oversized();
    }
}

/// The log's contribution to a row.
struct LogRead {
    /// State to store (complete lines only).
    stored: Accumulator,
    /// State to show: `stored` plus a trailing partial line when it parses.
    shown: Accumulator,
    offset: u64,
    fingerprint: u64,
    stamp: Option<FileStamp>,
    modified: f64,
    kind: Kind,
    bytes: u64,
    /// Its bytes were not all in memory (see [`scan::Scanned::waited`]).
    waited: bool,
    problem: Option<String>,
}

impl LogRead {
    /// A log we could not read: listed with no messages and the reason.
    fn unreadable(meta: &FileStat, problem: String) -> LogRead {
        LogRead {
            stored: Accumulator::default(),
            shown: Accumulator::default(),
            offset: 0,
            fingerprint: 0,
            stamp: stamp_of(meta),
            modified: modified_of(meta),
            kind: Kind::Full,
            bytes: 0,
            waited: false,
            problem: Some(problem),
        }
    }
}

/// Reads what is new in a log: from the stored offset when the file only grew (same inode, the
/// bytes before the offset unchanged), else from the start.
fn read_log(
    path: &Path,
    meta: &FileStat,
    prior: Option<(&StoredState, &Resumed, Accumulator)>,
    began_ns: i64,
    buf: &mut Vec<u8>,
) -> std::io::Result<LogRead> {
    let not_file = format!("{} is not a regular file", gptme::LOG_FILE);
    if !meta.is_file {
        return Ok(LogRead::unreadable(meta, not_file)); // never open a FIFO: it could block
    }
    // Non-blocking: if the log became a FIFO since the stat, opening must not hang.
    let file = crate::filesystem::open_to_read(path)?;
    let meta = FileStat::from(&file.metadata()?);
    let Some(stamp) = stamp_of(&meta) else {
        return Ok(LogRead::unreadable(&meta, not_file));
    };

    // Go on from the stored offset when the file only grew: same inode, not shorter, and the
    // bytes before the offset unchanged. That last check comes after reading on, from bytes
    // read along with the new ones; if it fails, the file is read again from the start.
    let mut resume_at = prior.and_then(|(state, resume, prior_acc)| {
        let grown =
            state.log.is_some_and(|old| old.ino == stamp.ino && old.size <= stamp.size) && resume.offset <= stamp.size;
        let kind = match state.log {
            Some(old) if old == stamp => Kind::SideOnly,
            Some(old) if old.mtime_ns == UNSETTLED_MTIME && old.size == stamp.size => Kind::Recheck,
            _ => Kind::Append,
        };
        grown.then_some((resume.offset, resume.fingerprint, prior_acc, kind))
    });
    // Both fingerprints of a resumed read cover the file's first bytes: read them once.
    let mut head = vec![0; resume_at.as_ref().map_or(0, |_| scan::FINGERPRINT_SPAN.min(stamp.size) as usize)];
    file.read_exact_at(&mut head, 0)?;
    let head = scan::Held { start: 0, bytes: &head };
    let (mut acc, scanned, kind) = loop {
        let (start, expected, mut acc, kind) = match resume_at.take() {
            Some((offset, fingerprint, acc, kind)) => (offset, Some(fingerprint), acc, kind),
            None => (0, None, Accumulator::default(), Kind::Full),
        };
        let read_from = start.saturating_sub(scan::FINGERPRINT_SPAN);
        let inside_oversized = acc.inside_oversized;
        let scanned = scan::scan(&file, read_from..stamp.size, start, &mut acc, buf, inside_oversized)?;
        match expected {
            Some(fingerprint) if scan::fingerprint(&file, start, &[head, scanned.held(buf)])? != fingerprint => {
                continue
            }
            _ => break (acc, scanned, kind),
        }
    };
    let held = scanned.held(buf);
    acc.inside_oversized = scanned.tail_oversized;
    acc.settle(|offset, len| match held.get(offset, offset + len as u64) {
        Some(line) => Some(line.to_vec()),
        None => {
            let mut line = vec![0; len];
            file.read_exact_at(&mut line, offset).ok().map(|()| line)
        }
    });
    let mut shown = acc.clone();
    if scanned.tail_oversized {
        shown.feed_oversized();
    } else if !scanned.tail.is_empty() {
        // The tail is in hand; it is the only line this settle can need.
        shown.feed(&scanned.tail, scanned.offset);
        shown.settle(|_, _| Some(scanned.tail.clone()));
    }
    Ok(LogRead {
        stored: acc,
        shown,
        offset: scanned.offset,
        fingerprint: scan::fingerprint(&file, scanned.offset, &[head, held])?,
        stamp: Some(if racy(&meta, began_ns) { FileStamp { mtime_ns: UNSETTLED_MTIME, ..stamp } } else { stamp }),
        modified: modified_of(&meta),
        kind,
        bytes: scanned.bytes_read,
        waited: scanned.waited,
        problem: None,
    })
}

/// Builds the row of one changed conversation.
pub(super) fn build(pass: &Pass<'_>, job: &Job, buf: &mut Vec<u8>) -> Result<Outcome> {
    let (store, f) = (pass.store, &job.found);
    let mut resume = match (&job.prior, &job.resume) {
        (Some(_), Some(resume)) => Some(resume.clone()),
        (Some(_), None) => rows::load_resume(&*store.conn()?, &f.id).map_err(|e| store.err(e))?.map(Resumed::from),
        (None, _) => None,
    };
    let (prior_acc, prior_side) = resume.as_mut().map(|r| (r.acc.take(), r.side.take())).unwrap_or_default();
    let prior_problems = prior_acc.as_ref().map(|a| a.problems).unwrap_or_default();
    let path = f.log_path();
    let prior = match (&job.prior, &resume, prior_acc) {
        (Some(state), Some(resume), Some(acc)) => Some((state, resume, acc)),
        _ => None,
    };
    let log = match read_log(&path, &f.log, prior, pass.began_ns, buf) {
        Ok(log) => log,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Outcome::Vanished(f.id.clone())),
        Err(source) if is_out_of_resources(&source) => return Err(Error::OutOfResources { path, source }),
        Err(e) => LogRead::unreadable(&f.log, format!("cannot read {}: {e}", gptme::LOG_FILE)),
    };
    if log.waited {
        pass.cold.store(true, Ordering::Relaxed);
    }
    // Problems are logged when first found: those of the log's new lines, an unreadable log,
    // side files read again.
    let mut found: Vec<String> =
        log.stored.problems.since(&prior_problems).notes().chain(log.problem.clone()).collect();

    // Side files are read again only when their stamp changed.
    let side_unchanged = job.prior.as_ref().is_some_and(|p| p.side_stamp == job.side_stamp);
    let read_side = || side::read(&f.dir, &f.id, || pass.logs_real.get_or_init(|| side::realpath(pass.logs)).clone());
    let (side, side_read) = match prior_side.filter(|_| side_unchanged) {
        Some(side) => (side, false),
        None => {
            let side = read_side()?;
            found.extend(side.problems.iter().cloned());
            (side, true)
        }
    };
    let prior_agent = job.prior.as_ref().and_then(|p| p.agent_toml.clone());
    let agent_toml = side.agent_toml.as_ref().map(|p| p.to_string_lossy().into_owned());
    let agent_stat = agent_toml.as_deref().map(agents::stat);
    let mut side_stamp = if agent_toml == prior_agent && side_unchanged {
        job.side_stamp
    } else {
        side_stamp(f, agent_stat, &side::probe_links(&f.dir, &side.link_paths))
    };
    // Unsettled, the stamp is stored inverted: no stat hashes to it, so the side files are read
    // again next time. So it is when a side file was written in the tick it was read in, and
    // when a link was re-pointed between the read and the probe (the row would have the old
    // target and the stamp the new one, until the conversation next changed): read once more,
    // a different reading on the probe's far side says so.
    let racy_side =
        f.side.iter().flatten().chain(agent_stat.iter().flatten().flatten()).any(|m| racy(m, pass.began_ns));
    if racy_side || (side_read && !side.link_paths.is_empty() && read_side()? != side) {
        side_stamp = !side_stamp;
    }
    if !found.is_empty() {
        pass.problems.report(&f.id, &found.join("; "));
    }
    let mut row = row(f, &path, &log, &side, side_stamp, agent_toml);
    row.looks_new = job.prior.is_none();
    let (kind, bytes) = (log.kind, log.bytes);
    let resumed = Resumed { offset: log.offset, fingerprint: log.fingerprint, acc: Some(log.stored), side: Some(side) };
    Ok(Outcome::Row(Box::new((row, resumed)), kind, bytes))
}

fn row(
    f: &Found,
    path: &Path,
    log: &LogRead,
    side: &Side,
    side_stamp: u64,
    agent_toml: Option<String>,
) -> ConversationRow {
    let path = path.to_string_lossy().into_owned();
    let acc = &log.shown;
    let models_usage = item::models_usage_json(acc);
    let item_json = item::render(&item::ItemParts {
        id: &f.id,
        path: &path,
        modified: log.modified,
        side,
        acc,
        models_usage: &models_usage,
    });
    let lp = acc.problems;
    let mut notes: Vec<String> = log.problem.iter().chain(&side.problems).cloned().collect();
    let problems = (lp.total() + notes.len() as u64) as i64;
    notes.extend(lp.notes());
    ConversationRow {
        id: f.id.clone(),
        name: side.name.clone(),
        path,
        created: acc.created(log.modified),
        modified: log.modified,
        messages: acc.messages as i64,
        branches: side.branches as i64,
        workspace: side.workspace.clone(),
        agent_name: side.agent_name.clone(),
        agent_path: side.agent_path.clone(),
        agent_avatar: side.agent_avatar.clone(),
        agent_urls: side.agent_urls.clone(),
        model: acc.model.clone(),
        total_cost: acc.total_cost,
        total_input_tokens: acc.total_input_tokens,
        total_output_tokens: acc.total_output_tokens,
        total_cache_read_tokens: acc.total_cache_read_tokens,
        models_usage,
        models: acc.models_usage.iter().map(|(m, u)| model_row(m, u)).collect(),
        days: {
            let mut days: Vec<_> = acc
                .usage_by_day
                .iter()
                .map(|(day, m, u)| rows::DayRow { day: day.clone(), usage: model_row(m, u) })
                .collect();
            days.sort_by(|a, b| (&a.day, &a.usage.model).cmp(&(&b.day, &b.usage.model)));
            days
        },
        last_message_role: acc.last_message.as_ref().map(|m| m.role.clone()),
        last_message_preview: acc.last_message.as_ref().map(|m| m.preview.clone()),
        hidden: gptme::is_hidden(&f.id),
        problems,
        problem_notes: (!notes.is_empty()).then(|| notes.join("; ")),
        item_json,
        state: StoredState { log: log.stamp, side_stamp, agent_toml, link_paths: side.link_paths.clone() },
        resume: Resume {
            offset: log.offset,
            fingerprint: log.fingerprint,
            accumulator: serde_json::to_string(&log.stored).unwrap_or_else(|_| "{}".into()),
            side: serde_json::to_string(side).unwrap_or_else(|_| "{}".into()),
        },
        looks_new: false,
    }
}

fn model_row(model: &str, u: &gptme::accumulator::ModelUsage) -> ModelRow {
    ModelRow {
        model: model.to_owned(),
        cost: u.cost,
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
        cache_read_tokens: u.cache_read_tokens,
    }
}
