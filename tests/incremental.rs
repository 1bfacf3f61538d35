//! Incremental refresh equals a full scan, and every kind of change is noticed.

use std::io::Write;
use std::path::Path;

use convmeta::Index;
use rusqlite::types::Value as Sql;

use crate::util::{random_line, set_mtime_ns, usage_line, Rng};

/// Every column of the conversation's rows (public and internal), for exact comparison.
fn row(index: &Index, id: &str) -> Vec<Vec<Sql>> {
    let conn = index.store().conn().unwrap();
    let mut out = Vec::new();
    for sql in [
        "SELECT * FROM conversations WHERE id = ?1",
        "SELECT * FROM conversation_models WHERE conversation_id = ?1 ORDER BY model",
        "SELECT * FROM conversation_days WHERE conversation_id = ?1 ORDER BY day, model",
        "SELECT log_offset, log_fingerprint, accumulator FROM _scan_state WHERE id = ?1",
    ] {
        let mut stmt = conn.prepare(sql).unwrap();
        let n = stmt.column_count();
        let rows =
            stmt.query_map([id], |r| (0..n).map(|i| r.get::<_, Sql>(i)).collect::<rusqlite::Result<Vec<_>>>()).unwrap();
        for r in rows {
            out.push(r.unwrap());
        }
    }
    out
}

/// The row a fresh index builds from the archive as it is now.
fn fresh_row(logs: &Path, id: &str) -> Vec<Vec<Sql>> {
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::open(logs, &tmp.path().join("fresh.sqlite3")).unwrap();
    index.refresh().unwrap();
    row(&index, id)
}

struct Archive {
    _tmp: tempfile::TempDir,
    logs: std::path::PathBuf,
    index: Index,
}

fn archive() -> Archive {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let index = Index::open(&logs, &tmp.path().join("db.sqlite3")).unwrap();
    Archive { _tmp: tmp, logs, index }
}

impl Archive {
    fn log(&self, id: &str) -> std::path::PathBuf {
        let dir = self.logs.join(id);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("conversation.jsonl")
    }

    fn append(&self, id: &str, bytes: &[u8]) {
        std::fs::OpenOptions::new().create(true).append(true).open(self.log(id)).unwrap().write_all(bytes).unwrap();
    }

    /// Waits out the clock tick of the last write, then refreshes: what was read in the tick it
    /// was written in is checked once more now, so the next refresh sees only later changes.
    fn settle(&self) {
        std::thread::sleep(std::time::Duration::from_millis(50));
        self.index.refresh().unwrap();
    }

    fn item(&self, id: &str) -> serde_json::Value {
        crate::util::parse(&self.index.show(id).unwrap())
    }

    /// The index as an earlier build of `schema` left it (its rows changed by `stored`, SQL that
    /// writes what that build wrote), opened by this build: migrated, not yet refreshed.
    fn as_left_by_schema(&self, schema: u32, stored: &str) -> Index {
        let db = self.index.store().path().to_path_buf();
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(stored).unwrap();
        crate::util::set_schema_back(&conn, schema);
        drop(conn);
        Index::open(&self.logs, &db).unwrap()
    }
}

/// Appends `bytes` in up to `pieces` random pieces (cuts inside lines too), refreshing after
/// each: every step's row equals a fresh full scan of the file as it is then.
fn appended_in_pieces_equals_full_scans(bytes: &[u8], rng: &mut Rng, pieces: u64, seed: u64) {
    let mut cuts: Vec<usize> = (0..1 + rng.below(pieces)).map(|_| rng.below(bytes.len() as u64 + 1) as usize).collect();
    cuts.push(bytes.len());
    cuts.sort();
    cuts.dedup();
    let a = archive();
    let mut at = 0;
    for cut in cuts {
        a.append("c", &bytes[at..cut]);
        at = cut;
        a.index.refresh().unwrap();
        assert_eq!(row(&a.index, "c"), fresh_row(&a.logs, "c"), "seed {seed}, after {cut} of {} bytes", bytes.len());
    }
}

#[test]
fn random_append_cuts_end_with_the_full_scan_row() {
    for seed in 1..=40u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let text: String = (0..3 + rng.below(40)).map(|_| random_line(&mut rng)).collect();
        let bytes = text.as_bytes();
        appended_in_pieces_equals_full_scans(bytes, &mut rng, 8, seed);
    }
}

/// Files of several read chunks (256 KiB), lines of up to 160 KB among short ones: appends
/// cut anywhere, so that a resumed read spans chunks and a line spans reads.
#[test]
fn random_append_cuts_of_files_larger_than_a_read_end_with_the_full_scan_row() {
    for seed in 1..=4u64 {
        let mut rng = Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let text: String = (0..60)
            .map(|_| match rng.below(3) {
                0 => {
                    let words = "lorem ipsum \\n dolor ".repeat(1 + rng.below(8000) as usize);
                    format!("{{\"role\": \"assistant\", \"content\": \"{words}\"}}\n")
                }
                _ => random_line(&mut rng),
            })
            .collect();
        assert!(text.len() > 3 * 256 * 1024, "{}", text.len());
        appended_in_pieces_equals_full_scans(text.as_bytes(), &mut rng, 6, seed);
    }
}

/// Arbitrary bytes (JSON shards, quotes, escapes, invalid UTF-8, CR, NUL) appended in random
/// pieces: every step's row equals a full scan of the file as it is. `cargo fuzz` (see fuzz/)
/// explores the same property without a seed budget.
#[test]
fn arbitrary_bytes_in_random_cuts_match_a_full_scan() {
    const SHARDS: &[&[u8]] = &[
        b"{\"role\": \"user\", \"content\": \"",
        b"{\"role\": \"assistant\", \"content\": \"",
        b"\", \"metadata\": {\"model\": \"m\", \"usage\": {\"input_tokens\": 7}, \"cost\": 0.5}}",
        b"\"}",
        b"\n",
        b"\r\n",
        b"\\",
        b"\"",
        b"\\u00e9",
        b"\xff\xfe",
        b"\0",
        b"<think>",
        b"</think>",
        b" ",
        b"word",
        b"{",
        b"}",
        b"[1, 2]",
        "\u{e9}\u{1F600}".as_bytes(),
    ];
    for seed in 1..=60u64 {
        let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let bytes: Vec<u8> =
            (0..1 + rng.below(120)).flat_map(|_| SHARDS[rng.below(SHARDS.len() as u64) as usize].to_vec()).collect();
        appended_in_pieces_equals_full_scans(&bytes, &mut rng, 6, seed);
    }
}

/// Costs whose sum overflows to infinity (gptme's sum does, and shows `Infinity`): the state
/// stored with the row still reads back, so an append reads only the new bytes.
#[test]
fn an_append_after_an_infinite_cost_reads_only_the_new_bytes() {
    let a = archive();
    let huge = "{\"role\": \"assistant\", \"content\": \"x\", \"metadata\": {\"model\": \"m\", \"cost\": 1e308}}\n";
    a.append("c", huge.repeat(2).as_bytes());
    a.index.refresh().unwrap();
    a.append("c", b"{\"role\": \"user\", \"content\": \"more\"}\n");
    // Another process's refresh: it reads the state as stored, not as this one keeps it.
    let other = Index::open(&a.logs, a.index.store().path()).unwrap();
    let grown = other.refresh().unwrap();
    assert_eq!((grown.full_scans, grown.appends), (0, 1), "{grown:?}");
    let item = other.show("c").unwrap();
    for shown in ["\"total_cost\":Infinity", "\"cost\":Infinity", "\"messages\":3"] {
        assert!(item.contains(shown), "{shown} not in {item}");
    }
}

#[test]
fn an_append_reads_only_the_new_bytes() {
    let a = archive();
    let line = "{\"role\": \"user\", \"content\": \"hello\", \"timestamp\": \"2026-01-01T10:00:00Z\"}\n";
    a.append("c", line.repeat(1000).as_bytes());
    let first = a.index.refresh().unwrap();
    assert_eq!((first.full_scans, first.appends), (1, 0));
    a.append("c", b"{\"role\": \"assistant\", \"content\": \"new answer\"}\n");
    let second = a.index.refresh().unwrap();
    assert_eq!((second.full_scans, second.appends), (0, 1));
    assert!(second.bytes_read < 100, "read {} bytes", second.bytes_read);
    let item = a.item("c");
    assert_eq!(item["messages"], 1001);
    assert_eq!(item["last_message_preview"], "new answer");
    a.settle();
    let third = a.index.refresh().unwrap();
    assert_eq!((third.unchanged, third.bytes_read), (1, 0), "nothing changed: no reads");
}

/// Logs dated centuries away, as file systems allow (ext4 keeps 1901 to 2446): listed with the
/// `modified` their stat gives, left alone while they stay as they are, read on when they grow.
#[test]
fn logs_dated_centuries_away_are_listed_and_followed() {
    use std::time::{Duration, UNIX_EPOCH};
    let a = archive();
    let line = "{\"role\": \"user\", \"content\": \"hi\", \"timestamp\": \"2026-01-01T10:00:00Z\"}\n";
    let dates = [
        ("future", UNIX_EPOCH + Duration::from_secs(15_032_385_535)),
        ("past", UNIX_EPOCH - Duration::from_secs(2_147_483_648)),
    ];
    for (id, date) in dates {
        a.append(id, line.as_bytes());
        let f = std::fs::File::options().write(true).open(a.log(id)).unwrap();
        f.set_times(std::fs::FileTimes::new().set_modified(date)).unwrap();
    }
    let first = a.index.refresh().unwrap();
    assert_eq!(first.full_scans, 2);
    for (id, _) in dates {
        let mtime = std::fs::metadata(a.log(id)).unwrap().modified().unwrap();
        let secs = match mtime.duration_since(UNIX_EPOCH) {
            Ok(after) => after.as_secs_f64(),
            Err(before) => -before.duration().as_secs_f64(),
        };
        assert_eq!(a.item(id)["modified"].as_f64(), Some(secs), "{id}");
    }
    a.settle();
    let again = a.index.refresh().unwrap();
    assert_eq!(again.unchanged, 2, "{again:?}");
    a.append("future", line.as_bytes());
    let grown = a.index.refresh().unwrap();
    assert_eq!((grown.appends, grown.unchanged), (1, 1));
    assert_eq!(a.item("future")["messages"], 2);
    assert!(a.item("future")["modified"].as_f64().unwrap() < 4e9, "dated now");
}

/// Another process (a `convmeta list` beside a server) may commit while a refresh runs, rows
/// older than what the refresh keeps in memory for the next one. The next refresh must then go
/// by the database, not by what it kept.
#[test]
fn a_commit_by_another_process_during_a_refresh_is_not_masked() {
    struct Meddler(std::path::PathBuf);
    impl convmeta::refresh::Progress for Meddler {
        fn start(&self, _: u64, _: u64) {
            // An older row of "c", as a process that read the log before its last line writes it.
            let c = rusqlite::Connection::open(&self.0).unwrap();
            c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            c.execute_batch(
                "UPDATE conversations SET messages = 1 WHERE id = 'c'; \
                 UPDATE _scan_state SET log_size = 10 WHERE id = 'c';",
            )
            .unwrap();
        }
        fn advance(&self, _: u64, _: u64) {}
    }
    let a = archive();
    a.append("c", "{\"role\": \"user\", \"content\": \"hi\"}\n".repeat(3).as_bytes());
    a.settle();
    let meddler = Meddler(a.index.store().path().to_path_buf());
    let opts = convmeta::refresh::Options { progress: Some(&meddler), ..Default::default() };
    a.index.refresh_with(&opts).unwrap();
    a.index.refresh().unwrap();
    assert_eq!(row(&a.index, "c"), fresh_row(&a.logs, "c"), "the older row was noticed and read again");
}

/// Processes in different time zones may share an index (a server run by systemd in UTC,
/// `convmeta list` from a shell with `TZ` set): each takes it over in turn and reads every log
/// again. One that takes it over after another's refresh has looked at the rows, before that
/// one writes, must leave no row of either zone recorded as the other's: whichever refreshes
/// next answers in its own zone. (Found by processes of two zones racing on one index: rows of
/// the other zone were served, unchanged, until their conversations changed.)
#[test]
fn a_time_zone_taking_the_index_over_during_a_refresh_leaves_no_row_of_the_other_zone() {
    /// Runs `at_start` when a refresh begins reading (after its sweep), `at_write` before it
    /// writes a row.
    struct Meddle<'a> {
        at_start: &'a (dyn Fn() + Sync),
        at_write: &'a (dyn Fn() + Sync),
    }
    impl convmeta::refresh::Progress for Meddle<'_> {
        fn start(&self, _: u64, _: u64) {
            (self.at_start)();
        }
        fn advance(&self, _: u64, _: u64) {
            (self.at_write)();
        }
    }
    let said_at = |t: &str| format!("{{\"role\": \"user\", \"content\": \"hi\", \"timestamp\": \"{t}\"}}\n");
    let a = archive();
    a.append("x", said_at("2026-01-01T00:00:00").as_bytes());
    a.append("y", said_at("2026-01-01T00:00:00").as_bytes());
    a.settle();
    let db = a.index.store().path().to_path_buf();
    // `list` in another process, in zone `tz` (None: this process's).
    let list = |tz: Option<&str>, db: &Path| {
        let mut cmd = crate::util::convmeta();
        match (tz, std::env::var_os("TZ")) {
            (Some(tz), _) => cmd.env("TZ", tz),
            (None, Some(here)) => cmd.env("TZ", here),
            (None, None) => cmd.env_remove("TZ"),
        };
        crate::util::parse(&crate::util::ok(cmd.args(["list", "--json", "--logs"]).arg(&a.logs).arg("--db").arg(db)))
    };
    // A zone other than this process's, in which the naive timestamps read otherwise.
    let scratch = tempfile::tempdir().unwrap();
    let here = a.item("x")["created"].clone();
    let zone = ["IST-5:30", "NPT-5:45"]
        .into_iter()
        .find(|tz| list(Some(tz), &scratch.path().join(format!("{tz}.sqlite3")))[0]["created"] != here)
        .unwrap();
    let refresh_meddled = |at_start: &(dyn Fn() + Sync), at_write: &(dyn Fn() + Sync)| {
        a.append("x", said_at("2026-01-01T01:00:00").as_bytes());
        std::thread::sleep(std::time::Duration::from_millis(50)); // out of the append's clock tick
        let meddle = Meddle { at_start, at_write };
        let opts = convmeta::refresh::Options { progress: Some(&meddle), ..Default::default() };
        a.index.refresh_with(&opts).unwrap();
        for id in ["x", "y"] {
            assert_eq!(row(&a.index, id), fresh_row(&a.logs, id), "{id}: this zone's refresh answers in its zone");
        }
    };
    let (taken, taken_back) = (std::sync::Once::new(), std::sync::Once::new());
    let other_zone_refreshes = || taken.call_once(|| _ = list(Some(zone), &db));
    refresh_meddled(&other_zone_refreshes, &|| ());
    let fresh = scratch.path().join("fresh.sqlite3");
    assert_eq!(list(Some(zone), &db), list(Some(zone), &fresh), "the other zone's next answer is all its own");
    a.index.refresh().unwrap();
    for id in ["x", "y"] {
        assert_eq!(row(&a.index, id), fresh_row(&a.logs, id), "{id}: and this zone's again");
    }

    // Taken over, and back by another process of this zone before the refresh writes: the
    // context is then as the refresh found it, but what it read from the index in between (x's
    // resume point, which nothing kept in memory since another process committed) was the
    // other zone's, and must not be written back as this zone's.
    let taken = std::sync::Once::new();
    a.append("x", said_at("2026-01-01T02:00:00").as_bytes());
    list(None, &db);
    let other_zone_refreshes = || taken.call_once(|| _ = list(Some(zone), &db));
    let this_zone_refreshes = || taken_back.call_once(|| _ = list(None, &db));
    refresh_meddled(&other_zone_refreshes, &this_zone_refreshes);
}

/// A log, config or agent file rewritten in place to the same size within one clock tick keeps
/// its stat (kernels before 6.13 stamp files from a clock that advances every 1-10 ms). What was
/// read in the tick it was written in is not trusted to its stat: the next refresh checks it.
/// Here the tick is pinned by giving a file the same mtime, 8 s ahead, before and
/// after its rewrite; everything else is dated in the past.
#[test]
fn a_same_size_rewrite_in_the_tick_of_the_last_read_is_seen() {
    use std::os::unix::fs::MetadataExt;
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let past = now() - 3_600_000_000_000;
    let set_mtime = |path: &Path, ns: u64| {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns);
        std::fs::File::open(path).unwrap().set_times(std::fs::FileTimes::new().set_modified(t)).unwrap();
    };
    let line = |s: &str| format!("{{\"role\": \"user\", \"content\": \"{s}\"}}\n");
    let a = archive();
    // Only the pinned file changes; the field that shows it: the preview for the log, the name
    // for config.toml, the agent's name for the agent's gptme.toml.
    let kinds = [("log", "last_message_preview"), ("config", "name"), ("agent", "agent_name")];
    let pinned = |kind: &str| match kind {
        "log" => a.log(kind),
        "config" => a.logs.join("config/config.toml"),
        _ => a.logs.parent().unwrap().join("agent-of-agent/gptme.toml"),
    };
    for (kind, shown) in kinds {
        let dir = a.logs.join(kind);
        let agent_dir = a.logs.parent().unwrap().join(format!("agent-of-{kind}"));
        std::fs::create_dir_all(&agent_dir).unwrap();
        // Ahead by less than the 10 s beyond which a file is not racy, with time to spare.
        let tick = now() + 8_000_000_000;
        let write = |text: &str| {
            let vary = |k: &str| if k == kind { text } else { "same" };
            std::fs::write(a.log(kind), line("first") + &line(vary("log"))).unwrap();
            let config = format!("[chat]\nname = \"{}\"\nagent = \"{}\"\n", vary("config"), agent_dir.display());
            std::fs::write(dir.join("config.toml"), config).unwrap();
            std::fs::write(agent_dir.join("gptme.toml"), format!("[agent]\nname = \"{}\"\n", vary("agent"))).unwrap();
            for file in [dir.join("conversation.jsonl"), dir.join("config.toml"), agent_dir.join("gptme.toml")] {
                set_mtime(&file, if file == pinned(kind) { tick } else { past });
            }
            set_mtime(&dir, past);
        };
        write("alpha");
        a.index.refresh().unwrap();
        assert_eq!(a.item(kind)[shown], "alpha");
        let before = std::fs::metadata(pinned(kind)).unwrap();
        write("bravo");
        let after = std::fs::metadata(pinned(kind)).unwrap();
        let stat = |m: &std::fs::Metadata| (m.ino(), m.len(), m.mtime(), m.mtime_nsec());
        assert_eq!(stat(&before), stat(&after), "{kind}: the same stat");
        let s = a.index.refresh().unwrap();
        assert_eq!(a.item(kind)[shown], "bravo", "{kind}: {s:?}");
        assert_eq!(row(&a.index, kind), fresh_row(&a.logs, kind));
    }
    // Dated an hour ahead, a file is not checked again at every refresh until the clock catches
    // up: a write now would move its mtime.
    for (kind, _) in kinds {
        set_mtime(&pinned(kind), now() + 3_600_000_000_000);
    }
    a.index.refresh().unwrap();
    let s = a.index.refresh().unwrap();
    assert_eq!((s.unchanged, s.rechecked, s.bytes_read), (3, 0, 0), "{s:?}");
}

#[test]
fn a_half_written_line_is_shown_if_complete_json_but_never_stored() {
    let a = archive();
    a.append("c", b"{\"role\": \"user\", \"content\": \"one\"}\n{\"role\": \"assistant\", \"content\": \"two\"}");
    a.index.refresh().unwrap();
    assert_eq!(a.item("c")["last_message_preview"], "two");
    assert_eq!(a.item("c")["messages"], 2);
    // The writer was mid-line after all: the rest arrives, and the line is read again whole.
    a.append("c", b", \"extra\": 1}\n");
    a.index.refresh().unwrap();
    assert_eq!(a.item("c")["messages"], 2);
    assert_eq!(row(&a.index, "c"), fresh_row(&a.logs, "c"));
}

#[test]
fn rewrites_shrinks_and_replacements_are_read_whole() {
    let a = archive();
    let user = |s: &str| format!("{{\"role\": \"user\", \"content\": \"{s}\"}}\n");
    a.append("c", (user("first") + &user("second")).as_bytes());
    a.index.refresh().unwrap();

    // In place, same inode, grown: the fingerprint before the old offset no longer matches.
    std::fs::write(a.log("c"), user("FIRST") + &user("second") + &user("third")).unwrap();
    let s = a.index.refresh().unwrap();
    assert_eq!(s.full_scans, 1);
    assert_eq!(row(&a.index, "c"), fresh_row(&a.logs, "c"));

    // Shrunk (gptme's undo).
    std::fs::write(a.log("c"), user("only")).unwrap();
    let s = a.index.refresh().unwrap();
    assert_eq!(s.full_scans, 1);
    assert_eq!(a.item("c")["messages"], 1);
    assert_eq!(a.item("c")["last_message_preview"], "only");

    // Replaced by rename (gptme's edit): a new inode, even though it only grew.
    let tmp = a.logs.join("c/.tmp");
    std::fs::write(&tmp, user("only") + &user("edited")).unwrap();
    std::fs::rename(&tmp, a.log("c")).unwrap();
    let s = a.index.refresh().unwrap();
    assert_eq!(s.full_scans, 1);
    assert_eq!(a.item("c")["last_message_preview"], "edited");
    assert_eq!(row(&a.index, "c"), fresh_row(&a.logs, "c"));
}

#[test]
fn created_deleted_renamed_and_branched_conversations_show_up() {
    let a = archive();
    a.append("one", b"{\"role\": \"user\", \"content\": \"a\"}\n");
    a.index.refresh().unwrap();
    assert_eq!(a.index.list(100, &Default::default()).unwrap().len(), 1);

    a.append("two", b"{\"role\": \"user\", \"content\": \"b\"}\n");
    a.index.refresh().unwrap();
    assert_eq!(a.index.list(100, &Default::default()).unwrap().len(), 2);

    // A rename through config.toml, the log untouched.
    a.settle();
    std::fs::write(a.logs.join("one/config.toml"), "[chat]\nname = \"Renamed\"\n").unwrap();
    let s = a.index.refresh().unwrap();
    assert_eq!((s.side_only, s.bytes_read), (1, 0));
    assert_eq!(a.item("one")["name"], "Renamed");
    std::fs::write(a.logs.join("one/config.toml"), "[chat]\nname = \"Renamed again\"\n").unwrap();
    a.index.refresh().unwrap();
    assert_eq!(a.item("one")["name"], "Renamed again");

    // A new branch.
    std::fs::create_dir(a.logs.join("one/branches")).unwrap();
    std::fs::write(a.logs.join("one/branches/alt.jsonl"), "").unwrap();
    a.index.refresh().unwrap();
    assert_eq!(a.item("one")["branches"], 2);
    std::fs::write(a.logs.join("one/branches/alt2.jsonl"), "").unwrap();
    a.index.refresh().unwrap();
    assert_eq!(a.item("one")["branches"], 3);

    // The agent's own gptme.toml is watched too.
    let agent = a.logs.parent().unwrap().join("agent");
    std::fs::create_dir(&agent).unwrap();
    std::fs::write(agent.join("gptme.toml"), "[agent]\nname = \"Bob\"\n").unwrap();
    std::fs::write(a.logs.join("two/config.toml"), format!("[chat]\nagent = \"{}\"\n", agent.display())).unwrap();
    a.index.refresh().unwrap();
    assert_eq!(a.item("two")["agent_name"], "Bob");
    std::fs::write(agent.join("gptme.toml"), "[agent]\nname = \"Robert\"\n").unwrap();
    a.index.refresh().unwrap();
    assert_eq!(a.item("two")["agent_name"], "Robert");

    std::fs::remove_dir_all(a.logs.join("one")).unwrap();
    let s = a.index.refresh().unwrap();
    assert_eq!(s.deleted, 1);
    assert!(a.index.show("one").is_err());
    assert_eq!(a.index.list(100, &Default::default()).unwrap().len(), 1);
}

/// With no workspace in its `config.toml`, a conversation's workspace is its `workspace` entry
/// if that leads anywhere. Where the entry is a symlink, its target, outside the archive, can
/// appear and vanish with nothing in the archive changing: the sweep looks at it, for such
/// conversations only, and reads their side files again when it did.
#[test]
fn a_workspace_symlink_target_that_appears_or_vanishes_is_seen() {
    let a = archive();
    let target = a.logs.parent().unwrap().join("project");
    for id in ["linked", "plain"] {
        a.append(id, b"{\"role\": \"user\", \"content\": \"a\"}\n");
        std::fs::write(a.logs.join(id).join("config.toml"), "[chat]\nname = \"x\"\n").unwrap();
    }
    std::os::unix::fs::symlink(&target, a.logs.join("linked/workspace")).unwrap();
    a.settle();
    let real = |p: &Path| p.canonicalize().unwrap().to_string_lossy().into_owned();
    assert_eq!(a.item("linked")["workspace"], real(&a.logs.join("linked")), "dangling: the conversation's directory");

    std::fs::create_dir(&target).unwrap();
    let s = a.index.refresh().unwrap();
    assert_eq!((s.side_only, s.bytes_read), (1, 0), "only the linked conversation's side files read again");
    assert_eq!(a.item("linked")["workspace"], real(&target));
    assert_eq!(a.index.refresh().unwrap().side_only, 0, "and then not again");
    assert_eq!(fresh_row(&a.logs, "linked"), row(&a.index, "linked"));

    // A refresh of named conversations (watch mode's), naming others, takes it along.
    std::fs::remove_dir(&target).unwrap();
    let s = a.index.refresh_ids(&["plain".to_owned()]).unwrap();
    assert_eq!((s.conversations, s.side_only), (2, 1));
    assert_eq!(a.item("linked")["workspace"], real(&a.logs.join("linked")));
    assert_eq!(fresh_row(&a.logs, "linked"), row(&a.index, "linked"));
}

/// A workspace or agent path in `config.toml` resolved through a symlink outside the archive
/// (`~/current/proj`, `~/current` re-pointed) changes gptme's answer with nothing in the archive
/// changing: the sweep resolves such paths again, for those conversations only. A symlink
/// directly in the conversation's directory (gptme's own `workspace` link) needs nothing more:
/// re-pointing it moves the directory's mtime.
#[test]
fn paths_resolved_through_symlinks_outside_the_archive_are_resolved_again() {
    let a = archive();
    let outside = a.logs.parent().unwrap();
    for d in ["v1/proj", "v2/proj", "v1/agent", "v2/agent"] {
        std::fs::create_dir_all(outside.join(d)).unwrap();
    }
    for (v, name) in [("v1", "One"), ("v2", "Two")] {
        std::fs::write(outside.join(v).join("agent/gptme.toml"), format!("[agent]\nname = \"{name}\"\n")).unwrap();
    }
    let current = outside.join("current");
    std::os::unix::fs::symlink("v1", &current).unwrap();
    let configs = [
        ("ws", format!("[chat]\nworkspace = \"{}\"\n", current.join("proj").display())),
        ("agent", format!("[chat]\nagent = \"{}\"\n", current.join("agent").display())),
        ("plain", format!("[chat]\nworkspace = \"{}\"\n", outside.join("v1/proj").display())),
        ("own", "[chat]\nworkspace = \"@log\"\n".to_owned()),
    ];
    for (id, config) in &configs {
        a.append(id, b"{\"role\": \"user\", \"content\": \"a\"}\n");
        std::fs::write(a.logs.join(id).join("config.toml"), config).unwrap();
    }
    std::os::unix::fs::symlink(outside.join("v1/proj"), a.logs.join("own/workspace")).unwrap();
    a.settle();
    let real = |p: &Path| p.canonicalize().unwrap().to_string_lossy().into_owned();
    assert_eq!(a.item("ws")["workspace"], real(&outside.join("v1/proj")));
    assert_eq!(a.item("agent")["agent_name"], "One");
    // Only those two resolved through a symlink no stat of the archive covers.
    assert_eq!(a.index.refresh_ids(&[]).unwrap().conversations, 2);

    std::fs::remove_file(&current).unwrap();
    std::os::unix::fs::symlink("v2", &current).unwrap();
    let s = a.index.refresh().unwrap();
    assert_eq!((s.side_only, s.bytes_read), (2, 0), "only their side files read again");
    assert_eq!(a.item("ws")["workspace"], real(&outside.join("v2/proj")));
    assert_eq!(a.item("agent")["agent_name"], "Two");
    assert_eq!(a.item("agent")["agent_path"], real(&outside.join("v2/agent")));
    assert_eq!(a.index.refresh().unwrap().side_only, 0, "and then not again");
    for (id, _) in &configs {
        assert_eq!(fresh_row(&a.logs, id), row(&a.index, id), "{id}");
    }

    // A refresh of named conversations (watch mode's), naming another, takes them along; a
    // link that leads nowhere now is seen too.
    std::fs::remove_file(&current).unwrap();
    std::os::unix::fs::symlink("v3", &current).unwrap();
    let s = a.index.refresh_ids(&["plain".to_owned()]).unwrap();
    assert_eq!((s.conversations, s.side_only), (3, 2));
    assert_eq!(a.item("ws")["workspace"], outside.canonicalize().unwrap().join("v3/proj").to_str().unwrap());
    assert_eq!(a.item("agent")["agent_name"], serde_json::Value::Null);
    for (id, _) in &configs {
        assert_eq!(fresh_row(&a.logs, id), row(&a.index, id), "{id}");
    }

    // An index of schema 12 knew none of this: upgraded, it reads every side file again (no
    // log), then follows the link.
    let upgraded = a.as_left_by_schema(12, "");
    let s = upgraded.refresh().unwrap();
    assert_eq!((s.side_only, s.bytes_read), (4, 0));
    std::fs::remove_file(&current).unwrap();
    std::os::unix::fs::symlink("v1", &current).unwrap();
    assert_eq!(upgraded.refresh().unwrap().side_only, 2);
    assert_eq!(crate::util::parse(&upgraded.show("agent").unwrap())["agent_name"], "One");
}

/// A link outside the archive re-pointed while a refresh reads the conversation whose agent path
/// goes through it: between the read (which saw the old agent) and the probe of the link (which
/// sees the new one), the row would get the old agent and its stamp the new link, and stay so
/// until the conversation changed. The conversation's 3,000 branches widen that window, and
/// the link is re-pointed once, at a random moment after the reading begins; the next refresh
/// must then answer as a fresh index does, in each of 100 rounds. (Without the second read,
/// 47 of 200 rounds ended stale here.)
#[test]
fn a_link_re_pointed_while_its_conversation_is_read_is_seen_next_time() {
    struct AtStart<'a>(&'a (dyn Fn() + Sync));
    impl convmeta::refresh::Progress for AtStart<'_> {
        fn start(&self, _: u64, _: u64) {
            (self.0)();
        }
        fn advance(&self, _: u64, _: u64) {}
    }
    let a = archive();
    let outside = a.logs.parent().unwrap().to_path_buf();
    for (v, name) in [("v1", "One"), ("v2", "Two")] {
        std::fs::create_dir_all(outside.join(v).join("agent")).unwrap();
        std::fs::write(outside.join(v).join("agent/gptme.toml"), format!("[agent]\nname = \"{name}\"\n")).unwrap();
    }
    let current = outside.join("current");
    std::os::unix::fs::symlink("v1", &current).unwrap();
    a.append("c", b"{\"role\": \"user\", \"content\": \"a\"}\n");
    let config = format!("[chat]\nagent = \"{}\"\n", current.join("agent").display());
    std::fs::write(a.logs.join("c/config.toml"), config).unwrap();
    std::fs::create_dir(a.logs.join("c/branches")).unwrap();
    for i in 0..3000 {
        std::fs::write(a.logs.join(format!("c/branches/{i}.jsonl")), "").unwrap();
    }
    a.settle();
    let re_point = |to: &str| {
        let next = outside.join("current.next");
        std::os::unix::fs::symlink(to, &next).unwrap();
        std::fs::rename(&next, &current).unwrap(); // at once: the link always leads somewhere
    };
    let mut rng = Rng(0x5EED);
    let reread = convmeta::refresh::Options { reread: true, ..Default::default() };
    for round in 0..100 {
        let to = ["v1", "v2"][round % 2];
        let delay = std::time::Duration::from_micros(rng.below(3000));
        std::thread::scope(|s| {
            let flip = || {
                _ = s.spawn(move || {
                    std::thread::sleep(delay);
                    re_point(to);
                })
            };
            let hook = AtStart(&flip);
            a.index.refresh_with(&convmeta::refresh::Options { progress: Some(&hook), ..reread }).unwrap();
        });
        a.index.refresh().unwrap();
        assert_eq!(
            row(&a.index, "c"),
            fresh_row(&a.logs, "c"),
            "round {round}, re-pointed {delay:?} after reading began"
        );
    }
}

/// A refresh of named conversations (watch mode) checks the agents' `gptme.toml` files, which no
/// watch covers, with one stat per file: the conversations that use one are read again only
/// when it changed, however many there are.
#[test]
fn an_agent_file_is_checked_once_for_all_its_conversations() {
    let a = archive();
    let agents = a.logs.parent().unwrap().join("agents");
    for (agent, name) in [("bob", "Bob"), ("alice", "Alice")] {
        std::fs::create_dir_all(agents.join(agent)).unwrap();
        std::fs::write(agents.join(agent).join("gptme.toml"), format!("[agent]\nname = \"{name}\"\n")).unwrap();
    }
    let uses = |i: usize| if i.is_multiple_of(3) { "alice" } else { "bob" };
    for i in 0..30 {
        let id = format!("c{i:02}");
        a.append(&id, b"{\"role\": \"user\", \"content\": \"hi\"}\n");
        let config = format!("[chat]\nagent = \"{}\"\n", agents.join(uses(i)).display());
        std::fs::write(a.logs.join(&id).join("config.toml"), config).unwrap();
    }
    a.append("plain", b"{\"role\": \"user\", \"content\": \"no agent\"}\n");
    a.settle();
    a.index.refresh().unwrap();
    // The first named refresh has not checked the agent files yet: it looks at all 30.
    assert_eq!(a.index.refresh_ids(&[]).unwrap().conversations, 30);
    // Then none, unless named.
    assert_eq!(a.index.refresh_ids(&[]).unwrap().conversations, 0);
    assert_eq!(a.index.refresh_ids(&["plain".to_string()]).unwrap().conversations, 1);

    // Bob's file changes (dated back, out of the refresh's clock tick): his 20 are read again.
    let bob = agents.join("bob/gptme.toml");
    std::fs::write(&bob, "[agent]\nname = \"Robert\"\n").unwrap();
    set_mtime_ns(&bob, 1_700_000_000_000_000_000);
    let s = a.index.refresh_ids(&[]).unwrap();
    assert_eq!((s.conversations, s.side_only), (20, 20));
    assert_eq!(a.item("c01")["agent_name"], "Robert");
    assert_eq!(a.item("c00")["agent_name"], "Alice");
    assert_eq!(a.index.refresh_ids(&[]).unwrap().conversations, 0);

    // A conversation moves from Alice to Bob; then Alice's file goes and Bob's changes: each
    // is still found through the file it uses now.
    let config = format!("[chat]\nagent = \"{}\"\n", agents.join("bob").display());
    std::fs::write(a.logs.join("c03/config.toml"), config).unwrap();
    a.index.refresh_ids(&["c03".to_string()]).unwrap();
    assert_eq!(a.item("c03")["agent_name"], "Robert");
    std::fs::remove_file(agents.join("alice/gptme.toml")).unwrap();
    std::fs::write(&bob, "[agent]\nname = \"Bobby\"\n").unwrap();
    set_mtime_ns(&bob, 1_700_000_001_000_000_000);
    let s = a.index.refresh_ids(&[]).unwrap();
    assert_eq!(s.conversations, 30, "Alice's 9 and Bob's 21");
    assert_eq!(a.item("c03")["agent_name"], "Bobby");
    assert_eq!(a.item("c00")["agent_name"], serde_json::Value::Null);
    assert_eq!(a.index.refresh_ids(&[]).unwrap().conversations, 0);

    // Tracked through full refreshes (watch mode's safety sweep) too: a change one of them
    // read is not looked at again.
    a.index.refresh().unwrap();
    assert_eq!(a.index.refresh_ids(&[]).unwrap().conversations, 0);
    std::fs::write(&bob, "[agent]\nname = \"Bert\"\n").unwrap();
    set_mtime_ns(&bob, 1_700_000_002_000_000_000);
    assert_eq!(a.index.refresh().unwrap().side_only, 21);
    assert_eq!(a.item("c01")["agent_name"], "Bert");
    assert_eq!(a.index.refresh_ids(&[]).unwrap().conversations, 0);

    // gptme merges a gptme.local.toml over it: made, then changed, each seen by the next look.
    let local = agents.join("bob/gptme.local.toml");
    std::fs::write(&local, "[agent]\nname = \"Local Bob\"\n").unwrap();
    set_mtime_ns(&local, 1_700_000_003_000_000_000);
    assert_eq!(a.index.refresh_ids(&[]).unwrap().side_only, 21);
    assert_eq!(a.item("c01")["agent_name"], "Local Bob");
    std::fs::write(&local, "[agent]\nname = \"Local Bobby\"\n").unwrap();
    set_mtime_ns(&local, 1_700_000_004_000_000_000);
    assert_eq!(a.index.refresh().unwrap().side_only, 21);
    assert_eq!(a.item("c01")["agent_name"], "Local Bobby");
}

/// The logs dir is listed again only when it changed (its stamp is kept between refreshes):
/// an entry made, removed or renamed always counts as a change, even when a program then sets
/// the directory's mtime back, as `rsync -t` or `touch -d` do.
#[test]
fn the_logs_dir_is_listed_again_whenever_its_entries_change() {
    let a = archive();
    let set_dir_mtime = |t: std::time::SystemTime| {
        std::fs::File::open(&a.logs).unwrap().set_times(std::fs::FileTimes::new().set_modified(t)).unwrap()
    };
    let dir_mtime = || std::fs::metadata(&a.logs).unwrap().modified().unwrap();
    let listed = |a: &Archive| {
        let mut ids: Vec<String> = a
            .index
            .list(100, &Default::default())
            .unwrap()
            .iter()
            .map(|i| crate::util::parse(i)["id"].as_str().unwrap().into())
            .collect();
        ids.sort();
        ids
    };
    a.append("one", b"{\"role\": \"user\", \"content\": \"a\"}\n");
    a.settle();
    assert_eq!(listed(&a), ["one"]);

    let before = dir_mtime();
    a.append("two", b"{\"role\": \"user\", \"content\": \"b\"}\n");
    set_dir_mtime(before);
    a.index.refresh().unwrap();
    assert_eq!(listed(&a), ["one", "two"]);

    a.settle();
    let before = dir_mtime();
    std::fs::rename(a.logs.join("two"), a.logs.join("three")).unwrap();
    set_dir_mtime(before);
    a.index.refresh().unwrap();
    assert_eq!(listed(&a), ["one", "three"]);

    // A directory made first and its log later (as gptme does): the log shows up though the
    // logs dir did not change when it was written.
    a.settle();
    std::fs::create_dir(a.logs.join("four")).unwrap();
    a.settle();
    assert_eq!(listed(&a), ["one", "three"]);
    a.append("four", b"{\"role\": \"user\", \"content\": \"d\"}\n");
    a.index.refresh().unwrap();
    assert_eq!(listed(&a), ["four", "one", "three"]);
}

/// Side stamps hold the files' owner and group since schema 9: an index of schema 8, whose
/// stamps did not (and which may hold a log stored as unreadable that a chown has since let
/// in), reads each conversation again, once: its side files, and (schema 10) its log.
#[test]
fn an_index_of_schema_8_reads_side_files_again_once() {
    let a = archive();
    a.append("c", b"{\"role\": \"user\", \"content\": \"hi\"}\n");
    a.settle();
    let upgraded = a.as_left_by_schema(8, "");
    let stats = upgraded.refresh().unwrap();
    assert_eq!((stats.side_only, stats.full_scans, stats.unchanged), (0, 1, 0), "{stats:?}");
    assert_eq!(upgraded.refresh().unwrap().unchanged, 1);
}

/// Since schema 10 lines read as `json.loads` reads them: here a `metadata` key spelled with
/// escapes counts only where gptme's sums see it (its bytes name `"metadata"`), and nesting
/// deeper than 256 levels is read. An index of schema 9, whose rows may hold the other readings,
/// reads every log again, once.
#[test]
fn an_index_of_schema_9_reads_logs_again_once() {
    let a = archive();
    let nested = format!("{}{}", "[".repeat(300), "]".repeat(300));
    a.append("c", b"{\"role\": \"assistant\", \"content\": \"a\", \"met\\u0061data\": {\"model\": \"m\", \"usage\": {\"input_tokens\": 7}}}\n");
    a.append("c", format!("{{\"role\": \"user\", \"content\": \"deep\", \"files\": {nested}}}\n").as_bytes());
    a.settle();
    let rendered = a.index.show("c").unwrap();
    for expected in ["\"total_input_tokens\":0,", "\"model\":null,", "\"last_message_preview\":\"deep\","] {
        assert!(rendered.contains(expected), "{expected} in {rendered}");
    }
    // What an earlier build stored.
    let upgraded = a.as_left_by_schema(
        9,
        "UPDATE conversations SET item_json = replace(replace(item_json, '\"deep\"', '\"a\"'), '\"total_input_tokens\":0,', '\"total_input_tokens\":7,')",
    );
    let stats = upgraded.refresh().unwrap();
    assert_eq!((stats.full_scans, stats.unchanged), (1, 0), "{stats:?}");
    assert_eq!(upgraded.show("c").unwrap(), rendered);
    assert_eq!(upgraded.refresh().unwrap().unchanged, 1);
}

/// Since schema 11 a `config.toml` that is not UTF-8 is read as gptme reads it, with U+FFFD
/// for the bad bytes. An index of schema 10, whose rows hold the conversation's id as the name
/// of such a file, reads every conversation's side files again, once, and no log.
#[test]
fn an_index_of_schema_10_reads_side_files_again_once() {
    let a = archive();
    a.append("c", b"{\"role\": \"user\", \"content\": \"hi\"}\n");
    std::fs::write(a.logs.join("c/config.toml"), b"[chat]\nname = \"caf\xe9\"\n").unwrap();
    a.settle();
    let rendered = a.index.show("c").unwrap();
    assert!(rendered.contains(r#""name":"caf\ufffd""#), "{rendered}");
    // What an earlier build stored.
    let upgraded = a.as_left_by_schema(
        10,
        r#"UPDATE conversations SET item_json = replace(item_json, '"name":"caf\ufffd"', '"name":"c"')"#,
    );
    let stats = upgraded.refresh().unwrap();
    assert_eq!((stats.side_only, stats.full_scans, stats.unchanged), (1, 0, 0), "{stats:?}");
    assert_eq!(upgraded.show("c").unwrap(), rendered);
    assert_eq!(upgraded.refresh().unwrap().unchanged, 1);
}

/// Since schema 12 the newest-first index holds what a search tests. An index of schema 11 gets
/// it on opening: searches and pages answer as before, and no log is read again (schema 13 has
/// the side files read again).
#[test]
fn an_index_of_schema_11_answers_searches_alike_and_reads_nothing_again() {
    let a = archive();
    for (id, content) in [("a", "Fix the BUG"), ("b", "caf\\u00e9 au lait"), ("c", "other")] {
        a.append(id, format!("{{\"role\": \"user\", \"content\": \"{content}\"}}\n").as_bytes());
    }
    std::fs::write(a.logs.join("c/config.toml"), "[chat]\nname = \"The Bug hunt\"\n").unwrap();
    a.settle();
    let answers = |index: &Index| -> Vec<Vec<String>> {
        [Some("bug"), Some("CAFÉ"), Some("zzz"), None]
            .into_iter()
            .map(|q| {
                index
                    .page(10, &convmeta::index::Filter { q, ..Default::default() }, None)
                    .unwrap()
                    .items
                    .into_iter()
                    .map(|l| l.item_json)
                    .collect()
            })
            .collect()
    };
    let before = answers(&a.index);
    assert_eq!(before.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1, 0, 3]);
    let upgraded = a.as_left_by_schema(11, "");
    assert_eq!(answers(&upgraded), before);
    let s = upgraded.refresh().unwrap();
    assert_eq!((s.side_only, s.bytes_read), (3, 0));
}

/// Since schema 14 token counts that are floats (or `true`) are summed as gptme sums them, and
/// since schema 15 those that are not finite (`NaN`, `1e400`), where earlier builds counted them
/// as fields of the wrong type and added 0. An index of the schema before reads again the logs
/// whose state counted such a field, and only those.
#[test]
fn an_index_of_an_earlier_schema_reads_again_the_logs_with_odd_counts() {
    let cases = [
        (
            13,
            r#"{"input_tokens": 10.5, "output_tokens": true}"#,
            "\"total_input_tokens\":10.5,\"total_output_tokens\":1,",
        ),
        (
            14,
            r#"{"input_tokens": NaN, "output_tokens": 1e400}"#,
            "\"total_input_tokens\":NaN,\"total_output_tokens\":Infinity,",
        ),
    ];
    for (schema, counts, sums) in cases {
        let a = archive();
        // With a timestamp and no usage: the plain log is then left alone by every later migration
        // (schema 17 reads those with usage again).
        let line = format!(
            "{{\"role\": \"assistant\", \"content\": \"x\", \"timestamp\": \"2026-01-01T00:00:00\", \"metadata\": {{\"model\": \"m\", \"usage\": {counts}}}}}\n"
        );
        a.append("odd", line.as_bytes());
        a.append(
            "plain",
            line.replace(&format!(", \"metadata\": {{\"model\": \"m\", \"usage\": {counts}}}"), "").as_bytes(),
        );
        a.settle();
        let rendered = a.index.show("odd").unwrap();
        assert!(rendered.contains(sums), "{rendered}");
        // What the earlier build stored: two fields of the wrong type, and 0 for each.
        let upgraded = a.as_left_by_schema(
            schema,
            &format!(
                "UPDATE _scan_state SET accumulator = json_set(accumulator, '$.problems.bad_fields', 2, \
                     '$.total_input_tokens', 0, '$.total_output_tokens', 0) WHERE id = 'odd'; \
                 UPDATE conversations SET item_json = replace(item_json, '{sums}', \
                     '\"total_input_tokens\":0,\"total_output_tokens\":0,') WHERE id = 'odd';"
            ),
        );
        assert_ne!(upgraded.show("odd").unwrap(), rendered, "schema {schema}");
        let stats = upgraded.refresh().unwrap();
        assert_eq!((stats.full_scans, stats.unchanged), (1, 1), "schema {schema}: {stats:?}");
        assert_eq!(upgraded.show("odd").unwrap(), rendered, "schema {schema}");
    }
}

/// An index of schema 16, from before `conversation_days`, reads again the logs of the
/// conversations with usage, and only those, and then holds what a fresh index holds.
#[test]
fn an_index_of_schema_16_reads_the_logs_with_usage_again_for_their_days() {
    let a = archive();
    let usage = |day: u32, cost: f64| {
        let stamp = format!("2026-01-0{day}T23:00:00");
        usage_line(Some(&stamp), "m", "\"input_tokens\": 10, \"output_tokens\": 1", &cost.to_string())
    };
    a.append("used", (usage(1, 0.5) + &usage(2, 0.25) + &usage(2, 1.0)).as_bytes());
    a.append("unused", b"{\"role\": \"user\", \"content\": \"hi\", \"timestamp\": \"2026-01-01T10:00:00\"}\n");
    a.settle();
    let want = row(&a.index, "used");
    let days: Vec<(String, f64)> = a
        .index
        .store()
        .conn()
        .unwrap()
        .prepare("SELECT day, cost FROM conversation_days ORDER BY day")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(days, [("2026-01-01".to_owned(), 0.5), ("2026-01-02".to_owned(), 1.25)]);
    let upgraded = a.as_left_by_schema(16, "");
    assert_ne!(row(&upgraded, "used"), want);
    let stats = upgraded.refresh().unwrap();
    assert_eq!((stats.full_scans, stats.unchanged), (1, 1), "{stats:?}");
    assert_eq!(row(&upgraded, "used"), want);
    assert_eq!(row(&upgraded, "used"), fresh_row(&a.logs, "used"));
}

/// An index left by any schema since 4 (as `set_schema_back` makes one), opened, ends with the
/// tables and indexes a new index has, and its item as before: the migrations since then, run
/// in order, make what a new database is made with. (Its private state may be spelled as the
/// older build spelled it, where a migration had no cause to read the log again.)
#[test]
fn an_index_of_any_earlier_schema_ends_with_a_new_ones_schema() {
    let a = archive();
    a.append("c", b"{\"role\": \"user\", \"content\": \"hi\"}\n");
    a.settle();
    let schema = |index: &Index| -> Vec<(String, String, Option<String>)> {
        let conn = index.store().conn().unwrap();
        let mut stmt = conn.prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
    };
    let (new, item) = (schema(&a.index), a.item("c"));
    assert!(new.iter().any(|(_, name, _)| name == "conversations_newest"), "{new:?}");
    let latest = convmeta::store::migrate::latest() as u32;
    for version in 4..latest {
        let upgraded = a.as_left_by_schema(version, "");
        assert_eq!(schema(&upgraded), new, "from schema {version}");
        upgraded.refresh().unwrap();
        assert_eq!(crate::util::parse(&upgraded.show("c").unwrap()), item, "from schema {version}");
    }
}

/// An appended line whose usage adds nothing (zeros, or a cost too small to move the sum) on a
/// new day leaves `models_usage` as it was, but still has its day's row, as a full scan makes it.
#[test]
fn usage_that_adds_nothing_on_a_new_day_still_has_its_row() {
    let a = archive();
    let line = |day: u32, input: u32, cost: &str| {
        let usage = format!("\"input_tokens\": {input}, \"output_tokens\": 0");
        usage_line(Some(&format!("2026-01-0{day}T10:00:00")), "m", &usage, cost)
    };
    a.append("c", line(1, 10, "1.0").as_bytes());
    a.settle();
    for (day, input, cost) in [(2, 0, "0.0"), (3, 0, "1e-300")] {
        a.append("c", line(day, input, cost).as_bytes());
        a.index.refresh().unwrap();
        assert_eq!(row(&a.index, "c"), fresh_row(&a.logs, "c"), "day {day}");
    }
}

/// A day whose costs sum to NaN (gptme's sums can: `Infinity` and `-Infinity`) keeps its rows
/// through changes that leave the sums be, as any other day does, where NaN's inequality to
/// itself had them deleted and written again by every append.
#[test]
fn day_rows_summing_to_nan_are_kept_through_other_changes() {
    let a = archive();
    let line = |cost: &str| usage_line(Some("2026-01-01T10:00:00"), "m", "\"input_tokens\": 1", cost);
    a.append("c", (line("Infinity") + &line("-Infinity")).as_bytes());
    a.settle();
    let db = a._tmp.path().join("db.sqlite3");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let nan: String = conn.query_row("SELECT cost FROM conversation_days", [], |r| r.get(0)).unwrap();
    assert_eq!(nan, "NaN");
    conn.execute_batch(
        "CREATE TABLE rewrites (day TEXT); CREATE TRIGGER counted AFTER DELETE ON conversation_days \
         BEGIN INSERT INTO rewrites VALUES (old.day); END;",
    )
    .unwrap();
    a.append("c", b"{\"role\": \"user\", \"content\": \"more\", \"timestamp\": \"2026-01-01T11:00:00\"}\n");
    a.index.refresh().unwrap();
    let rewrites: i64 = conn.query_row("SELECT count(*) FROM rewrites", [], |r| r.get(0)).unwrap();
    assert_eq!(rewrites, 0, "the NaN day was written again");
    assert_eq!(row(&a.index, "c"), fresh_row(&a.logs, "c"));
}

/// A first line without a timestamp gives `created` as the log's mtime, rounded to microseconds
/// and divided once as Python divides ints: near 1970 adding the fraction to the whole seconds
/// lands one float off. An index of schema 15 (which added them) renders those items again,
/// without reading the log.
#[test]
fn created_from_an_mtime_near_1970_is_pythons_and_older_rows_are_rendered_again() {
    let a = archive();
    a.append("near", b"{\"role\": \"user\", \"content\": \"hi\"}\n");
    a.append("plain", b"{\"role\": \"user\", \"content\": \"hi\"}\n");
    set_mtime_ns(&a.log("near"), 1_464_249_000);
    a.settle();
    let rendered = a.index.show("near").unwrap();
    // Python: datetime.fromtimestamp(1.464249, tz=timezone.utc).timestamp() == 1.464249
    assert!(rendered.contains("\"created\":1.464249,"), "{rendered}");
    let upgraded = a.as_left_by_schema(
        15,
        "UPDATE conversations SET item_json = replace(item_json, '\"created\":1.464249,', \
             '\"created\":1.4642490000000001,') WHERE id = 'near';",
    );
    assert_ne!(upgraded.show("near").unwrap(), rendered);
    let stats = upgraded.refresh().unwrap();
    assert_eq!((stats.side_only, stats.full_scans, stats.unchanged), (2, 0, 0), "both created from mtimes: {stats:?}");
    assert_eq!(upgraded.show("near").unwrap(), rendered);
}

/// A float exactly halfway between its two shortest forms renders as Python's repr does (the
/// even last digit), and rows stored by an earlier build (which rendered it otherwise) are
/// rebuilt after the upgrade, from either older schema.
#[test]
fn halfway_floats_render_as_python_and_older_rows_are_rebuilt() {
    let a = archive();
    a.append("c", b"{\"role\": \"user\", \"content\": \"hi\", \"timestamp\": \"2026-01-01T10:00:00\"}\n");
    // st_mtime 1763630067 + 1/256 s: Python's repr is 1763630067.0039062, not ...063.
    set_mtime_ns(&a.log("c"), 1_763_630_067_003_906_250);
    a.index.refresh().unwrap();
    let rendered = a.index.show("c").unwrap();
    assert!(rendered.contains("\"modified\":1763630067.0039062,"), "{rendered}");

    for old_schema in [1, 2] {
        // What an earlier build stored: the other digit.
        let upgraded = a.as_left_by_schema(
            old_schema,
            "UPDATE conversations SET item_json = replace(item_json, '0039062', '0039063');",
        );
        let stats = upgraded.refresh().unwrap();
        assert_eq!((stats.full_scans, stats.unchanged), (1, 0), "from schema {old_schema}: {stats:?}");
        assert_eq!(upgraded.show("c").unwrap(), rendered, "from schema {old_schema}");
    }
}
