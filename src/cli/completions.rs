//! Shell completion. `convmeta completions SHELL` prints a script that, on each Tab, asks the
//! installed binary itself (`CONVMETA_COMPLETE=SHELL convmeta -- WORDS…`): subcommands and
//! flags are those of the version installed, never of the one a saved script was made by, and
//! `show` completes conversation ids from the index and the archive, `usage --model` the
//! index's models, `--since` and `--until` the forms a date takes.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use clap::{Args, CommandFactory};
use clap_complete::engine::{CompletionCandidate, PathCompleter, ValueCompleter};
use clap_complete::env::Shells;

use super::{Cli, Target};
use crate::format::gptme;
use crate::Index;

/// The variable under which the shell asks: the script sets it, nothing else should.
const VAR: &str = "CONVMETA_COMPLETE";

#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    shell: clap_complete::Shell,
}

/// Prints the script that registers the completions: `source <(convmeta completions bash)`.
pub fn run(a: CompletionsArgs) -> anyhow::Result<()> {
    let shells = Shells::builtins();
    let shell =
        shells.completer(&a.shell.to_string()).ok_or_else(|| anyhow::anyhow!("no completions for {}", a.shell))?;
    // The script calls the binary as this command was called: by name through PATH, or by
    // its path, made absolute (as clap's own registration does).
    let argv0 = PathBuf::from(std::env::args_os().next().unwrap_or_else(|| "convmeta".into()));
    let completer = match argv0.components().count() > 1 {
        true => std::path::absolute(&argv0).unwrap_or(argv0),
        false => argv0,
    };
    let mut out = Vec::new();
    shell.write_registration(VAR, "convmeta", "convmeta", &completer.to_string_lossy(), &mut out)?;
    let script = amended(a.shell, String::from_utf8_lossy(&out).into_owned());
    std::io::Write::write_all(&mut super::stdout(), script.as_bytes())?;
    Ok(())
}

/// clap's script for `shell`, amended where it mishandles a candidate that does not begin
/// with the word typed, as convmeta offers (ids and models that contain it, `show fox`):
/// - zsh drops such candidates. Taken as they are (`-U`), one alone replaces the word, and
///   several are listed with the word kept;
/// - bash's readline puts the candidates' common beginning in place of the word (`fox`
///   becomes `202`). Given the word as one more candidate where their common beginning does
///   not hold it (in any case: `M` may become `m`), readline keeps it and lists them.
///
/// Where clap's script has changed (a new clap_complete), it is left as it is: a test checks
/// that every amendment applies to the version built.
fn amended(shell: clap_complete::Shell, script: String) -> String {
    amendments(shell).iter().fold(script, |script, (theirs, ours)| script.replacen(theirs, ours, 1))
}

/// The parts of clap's script for `shell` that convmeta replaces, and with what.
fn amendments(shell: clap_complete::Shell) -> &'static [(&'static str, &'static str)] {
    match shell {
        clap_complete::Shell::Zsh => &[(ZSH_LISTS, ZSH_LISTS_ANY), (ZSH_REGISTERS, ZSH_REGISTERS_AND_COMPLETES)],
        clap_complete::Shell::Bash => &[(BASH_ENDS, BASH_ENDS_KEEPING_THE_WORD)],
        _ => &[],
    }
}

/// clap's zsh function offers the candidates other than directories.
const ZSH_LISTS: &str = "        [[ -n $other ]] && _describe -V 'values' other\n";
/// ... as they are, where any does not begin with the word.
const ZSH_LISTS_ANY: &str = r#"        if [[ -n $other ]]; then
            if (( ${#${(M)other:#${(b)PREFIX}*}} == ${#other} )); then
                _describe -V 'values' other
            else
                _describe -V 'values' other -U
                [[ $compstate[unambiguous] == *${(b)PREFIX}* ]] || compstate[insert]=''
            fi
        fi
"#;
/// clap's zsh script ends by registering its function.
const ZSH_REGISTERS: &str = "compdef _clap_dynamic_completer_convmeta convmeta\n";
/// ... and, where the script is a file `_convmeta` in `$fpath` that the first Tab has just
/// loaded, completes that Tab too (or it would only register, and do nothing).
const ZSH_REGISTERS_AND_COMPLETES: &str = r#"compdef _clap_dynamic_completer_convmeta convmeta
if [[ $funcstack[1] == _convmeta ]]; then
    _clap_dynamic_completer_convmeta "$@"
fi
"#;
/// clap's bash function ends.
const BASH_ENDS: &str = "        compopt -o nospace\n    fi\n}\n";
/// ... keeping the word (`$2`) where the candidates' common beginning would drop it.
const BASH_ENDS_KEEPING_THE_WORD: &str = r#"        compopt -o nospace
    fi
    if [[ -n $2 ]] && (( ${#COMPREPLY[@]} > 1 )); then
        local common=${COMPREPLY[0]} reply
        for reply in "${COMPREPLY[@]}"; do
            while [[ -n $common && ${reply:0:${#common}} != "$common" ]]; do common=${common%?}; done
            [[ -n $common ]] || break
        done
        local case=$(shopt -p nocasematch)
        shopt -s nocasematch
        [[ -z $common || $common == *"$2"* ]] || COMPREPLY+=("$2")
        eval "$case"
    fi
}
"#;

/// When a shell is asking for completions, answers it and exits. `main` calls this first.
pub fn answer_if_asked() {
    clap_complete::CompleteEnv::with_factory(Cli::command).var(VAR).complete();
}

/// Completes `show`'s ID: the conversations whose id starts with the word, newest first, their
/// names beside them where the shell shows such help (zsh, fish); when none does, those whose
/// id or name contains it (so `show penguin` Tab becomes the whole id). A word that is a path
/// completes as one (`show ./2026-…/`, which `show` also takes).
pub struct ConversationIds;

impl ValueCompleter for ConversationIds {
    fn complete(&self, current: &OsStr) -> Vec<CompletionCandidate> {
        let Some(word) = current.to_str() else { return Vec::new() };
        if word.starts_with(['.', '/', '~']) {
            return PathCompleter::dir().complete(current);
        }
        conversation_ids(&typed_target(), word)
            .into_iter()
            .map(|(id, name)| {
                let help = (name != id && !name.is_empty()).then(|| super::printable(&name).into());
                CompletionCandidate::new(id).help(help)
            })
            .collect()
    }
}

/// Completes `usage --model`: the index's models whose name contains the word (any case, as
/// the flag matches).
pub struct ModelNames;

impl ValueCompleter for ModelNames {
    fn complete(&self, current: &OsStr) -> Vec<CompletionCandidate> {
        names_in_index(current, Index::models_read_only)
    }
}

/// Completes `--agent` with the index's agents whose name contains the word typed.
pub struct AgentNames;

impl ValueCompleter for AgentNames {
    fn complete(&self, current: &OsStr) -> Vec<CompletionCandidate> {
        names_in_index(current, Index::agents_read_only)
    }
}

/// Completes `--since` and `--until` with the forms a date takes, counted from today on the
/// local clock: `today`, `yesterday`, a week and a month of days ago, this month and this year,
/// each with the days it names beside it where the shell shows such help (zsh, fish).
pub struct DateForms;

impl ValueCompleter for DateForms {
    fn complete(&self, current: &OsStr) -> Vec<CompletionCandidate> {
        let Some(word) = current.to_str() else { return Vec::new() };
        let today = chrono::Local::now().date_naive();
        let day = |days_ago: u64| {
            let day = today.checked_sub_days(chrono::Days::new(days_ago)).unwrap_or(today);
            day.format("%Y-%m-%d").to_string()
        };
        let forms = [
            ("today".to_owned(), day(0)),
            ("yesterday".to_owned(), day(1)),
            ("7d".to_owned(), format!("{}, a week ago", day(7))),
            ("30d".to_owned(), format!("{}, 30 days ago", day(30))),
            (today.format("%Y-%m").to_string(), "this month".to_owned()),
            (today.format("%Y").to_string(), "this year".to_owned()),
        ];
        forms
            .into_iter()
            .filter(|(form, _)| form.starts_with(word))
            .map(|(form, help)| CompletionCandidate::new(form).help(Some(help.into())))
            .collect()
    }
}

/// What `read` finds for the word typed in the index of the archive the command line names.
fn names_in_index(
    current: &OsStr,
    read: fn(&std::path::Path, &str) -> crate::error::Result<Vec<String>>,
) -> Vec<CompletionCandidate> {
    let Some(word) = current.to_str() else { return Vec::new() };
    let target = typed_target();
    let Some(db) = target.logs_dir().ok().and_then(|logs| target.db_path(&logs).ok()) else { return Vec::new() };
    match db.exists() {
        true => read(&db, word).unwrap_or_default().into_iter().map(CompletionCandidate::new).collect(),
        false => Vec::new(),
    }
}

/// `(id, name)` pairs for `word`: first the archive's conversations the index does not know
/// yet (made since its last refresh: a Tab press refreshes nothing), by id, newest date first;
/// then the index's, kept to those still in the archive. Those whose id starts with `word`, if
/// any does; else those whose id (or, if indexed, name) contains it.
fn conversation_ids(target: &Target, word: &str) -> Vec<(String, String)> {
    let Ok(logs) = target.logs_dir() else { return Vec::new() };
    let indexed = target
        .db_path(&logs)
        .ok()
        .filter(|db| db.exists())
        .and_then(|db| Index::completions_read_only(&db, word).ok())
        .unwrap_or_default();
    let Ok(entries) = std::fs::read_dir(&logs) else { return indexed };
    let in_archive: HashSet<String> =
        entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|id| !id.starts_with('.')).collect();
    let known: HashSet<&str> = indexed.iter().map(|(id, _)| id.as_str()).collect();
    let mut found: Vec<(String, String)> = in_archive
        .iter()
        .filter(|id| id.contains(word) && (!word.is_empty() || !gptme::is_hidden(id)))
        .filter(|id| !known.contains(id.as_str()) && logs.join(id).join("conversation.jsonl").exists())
        .map(|id| (id.clone(), id.clone()))
        .collect();
    found.sort_unstable_by(|a, b| b.cmp(a));
    found.extend(indexed.into_iter().filter(|(id, _)| in_archive.contains(id)));
    if found.iter().any(|(id, _)| id.starts_with(word)) {
        found.retain(|(id, _)| id.starts_with(word));
    }
    found
}

/// `--logs` and `--db` as typed on the line being completed: clap hands a completer the word
/// alone, and the words come after the `--` the registered script passes.
fn typed_target() -> Target {
    let words: Vec<OsString> = std::env::args_os().skip_while(|w| w != "--").skip(1).collect();
    let mut target = Target { logs: None, db: None };
    let mut words = words.iter().map(|w| w.to_string_lossy());
    while let Some(word) = words.next() {
        let (flag, value) = match word.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (word.into_owned(), None),
        };
        let slot = match flag.as_str() {
            "--logs" => &mut target.logs,
            "--db" => &mut target.db,
            _ => continue,
        };
        if let Some(value) = value.or_else(|| words.next().map(|w| w.into_owned())) {
            *slot = Some(PathBuf::from(value));
        }
    }
    target
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each amendment's anchor is in the script of the clap_complete built, once.
    #[test]
    fn every_amendment_applies_to_the_script_clap_writes() {
        for shell in [clap_complete::Shell::Zsh, clap_complete::Shell::Bash] {
            let mut out = Vec::new();
            let shells = Shells::builtins();
            let completer = shells.completer(&shell.to_string()).unwrap();
            completer.write_registration(VAR, "convmeta", "convmeta", "convmeta", &mut out).unwrap();
            let script = String::from_utf8(out).unwrap();
            for (theirs, ours) in amendments(shell) {
                assert_eq!(script.matches(theirs).count(), 1, "{shell}: {script}");
                assert!(amended(shell, script.clone()).contains(ours), "{shell}");
            }
        }
    }
}
