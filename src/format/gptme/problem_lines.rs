//! Where in a log its problems are: the lines whose reading found one. The row keeps only how
//! many of each kind (all a refresh needs to go on from); `show` reads the log again to say
//! which lines, so that a reader can look at them.

use std::io;
use std::path::Path;

use super::accumulator::{Accumulator, LineProblems};
use crate::scan::{self, LineSink};

/// A line whose reading found a problem.
#[derive(Debug, Clone, PartialEq)]
pub struct ProblemLine {
    /// Its number in the log, from 1 (blank lines count, as an editor counts them).
    pub line: u64,
    pub found: LineProblems,
    /// The log's last line, without its `\n`: perhaps an append still being written, which the
    /// next refresh reads again.
    pub unfinished: bool,
}

/// Visits, in order, the lines of the log at `path` whose reading finds a problem, and says
/// how many there were. A last line without its `\n` (an append still being written, perhaps)
/// is among them, as the row counts its problems too. Nothing is held but the line being read,
/// however many lines have problems.
pub fn problem_lines(path: &Path, buf: &mut Vec<u8>, visit: impl FnMut(ProblemLine)) -> io::Result<u64> {
    let file = crate::filesystem::open_to_read(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(0);
    }
    let mut sink = Lines { acc: Accumulator::default(), lines: 0, visit, total: 0, unfinished: false };
    let scanned = scan::scan(&file, 0..meta.len(), 0, &mut sink, buf, false)?;
    sink.unfinished = true;
    if scanned.tail_oversized {
        sink.oversized();
    } else if !scanned.tail.is_empty() {
        sink.line(&scanned.tail, scanned.offset);
    }
    Ok(sink.total)
}

/// Feeds each line to an accumulator, as a refresh does, noting the lines after which its
/// problem counts grew.
struct Lines<V> {
    acc: Accumulator,
    lines: u64,
    visit: V,
    total: u64,
    /// What is fed now is the last line, unfinished.
    unfinished: bool,
}

impl<V: FnMut(ProblemLine)> Lines<V> {
    fn fed(&mut self, feed: impl FnOnce(&mut Accumulator)) {
        self.lines += 1;
        let before = self.acc.problems;
        feed(&mut self.acc);
        let found = self.acc.problems.since(&before);
        if found.total() > 0 {
            self.total += 1;
            (self.visit)(ProblemLine { line: self.lines, found, unfinished: self.unfinished });
        }
    }
}

impl<V: FnMut(ProblemLine)> LineSink for Lines<V> {
    fn line(&mut self, bytes: &[u8], offset: u64) {
        self.fed(|acc| acc.feed(bytes, offset));
    }

    fn oversized(&mut self) {
        self.fed(Accumulator::feed_oversized);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::Rng;

    /// Every line with a problem, and how many were visited.
    fn all_problem_lines(path: &Path) -> (Vec<ProblemLine>, u64) {
        let mut found = Vec::new();
        let total = problem_lines(path, &mut Vec::new(), |p| found.push(p)).unwrap();
        (found, total)
    }

    /// Any log: the problems of the lines named, kind by kind, add up to what one reading of it
    /// counts (a refresh's row), lines numbered in order, each within the log.
    #[test]
    fn random_logs_name_every_problem_a_reading_counts() {
        let pieces: [&[u8]; 12] = [
            br#"{"role": "user", "content": "fine"}"#,
            br#"{"role": "assistant", "content": "ok", "metadata": {"model": "m", "cost": 0.5}}"#,
            br#"{"role": "assistant", "content": "x", "metadata": {"model": 5, "cost": -2}}"#,
            br#"{"role": "user", "content": "x", "timestamp": {}}"#,
            br#"{"role": "user", "content": "bad \xff escape"}"#,
            b"{\"role\": \"user\", \"content\": \"\xff\xfe\"}",
            b"not json",
            b"[1, 2]",
            b"",
            b"   ",
            b"{\"role\": \"user\"",
            b"\r",
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conversation.jsonl");
        let mut rng = Rng(0x5eed_1e55);
        for round in 0..300 {
            let lines: Vec<&[u8]> = (0..rng.below(30)).map(|_| pieces[rng.index(pieces.len())]).collect();
            let mut log = lines.join(&b'\n');
            if !lines.is_empty() && rng.chance(70) {
                log.push(b'\n'); // else the last line is unfinished
            }
            std::fs::write(&path, &log).unwrap();
            let (found, total) = all_problem_lines(&path);
            let mut read = Accumulator::default();
            let mut offset = 0;
            for line in log.split(|&b| b == b'\n').filter(|_| !log.is_empty()) {
                read.feed(line, offset);
                offset += line.len() as u64 + 1;
            }
            let mut summed = LineProblems::default();
            for p in &found {
                let f = &p.found;
                summed.bad_lines += f.bad_lines;
                summed.bad_fields += f.bad_fields;
                summed.oversized_lines += f.oversized_lines;
                summed.implausible_values += f.implausible_values;
                summed.invalid_utf8_lines += f.invalid_utf8_lines;
            }
            assert_eq!(summed, read.problems, "round {round}: {:?}", String::from_utf8_lossy(&log));
            assert_eq!(total, found.len() as u64);
            let numbers: Vec<u64> = found.iter().map(|p| p.line).collect();
            assert!(numbers.windows(2).all(|w| w[0] < w[1]), "round {round}: {numbers:?}");
            assert!(numbers.last().is_none_or(|&n| n as usize <= lines.len()), "round {round}: {numbers:?}");
        }
    }

    #[test]
    fn the_lines_with_problems_are_numbered_as_an_editor_numbers_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conversation.jsonl");
        let log: &[&[u8]] = &[
            br#"{"role": "user", "content": "fine"}"#,
            b"",
            b"not json",
            b"{\"role\": \"user\", \"content\": \"bad \xff byte\"}",
            br#"{"role": "assistant", "content": 3, "metadata": {"cost": -1}}"#,
            b"[1]",
            br#"{"role": "user", "content": "fine again"}"#,
            b"half-written",
        ];
        std::fs::write(&path, log.join(&b'\n')).unwrap();
        let (found, total) = all_problem_lines(&path);
        assert_eq!(found.iter().map(|p| p.unfinished).collect::<Vec<_>>(), [false, false, false, false, true]);
        let lines: Vec<(u64, String)> = found.iter().map(|p| (p.line, p.found.on_one_line())).collect();
        let said = |line: u64, words: &str| (line, words.to_owned());
        assert_eq!(
            lines,
            [
                said(3, "malformed"),
                said(4, "invalid UTF-8"),
                said(5, "a field of the wrong type, negative or overflowing tokens or cost"),
                said(6, "malformed"),
                said(8, "malformed"),
            ]
        );
        // The problems a refresh counts, the half-written last line's too.
        let mut acc = Accumulator::default();
        let mut offset = 0;
        for line in log {
            acc.feed(line, offset);
            offset += line.len() as u64 + 1;
        }
        assert_eq!((total, acc.problems.total()), (5, 6));
        let oversized = LineProblems { oversized_lines: 1, bad_fields: 2, ..Default::default() };
        assert_eq!(oversized.on_one_line(), "2 fields of the wrong type, over 128 MiB, not read");
    }
}
