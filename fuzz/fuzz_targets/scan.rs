//! A log written in two steps, scanned after each with one reused buffer as the index does:
//! the lines fed, their offsets, the resume offset, the partial tail and the bytes held must
//! all be the file's, whatever the bytes, wherever the cut, however far back the second scan
//! starts reading. The input's bytes are repeated to make files up to three reads long, so
//! that lines cross read and buffer boundaries.
#![no_main]

use std::io::Write;

use convmeta::scan::{self, LineSink};
use libfuzzer_sys::fuzz_target;

/// Checks each line fed against the file's bytes: the next complete line after the last one.
struct Expect<'a> {
    content: &'a [u8],
    next: usize,
}

impl LineSink for Expect<'_> {
    fn line(&mut self, bytes: &[u8], offset: u64) {
        assert_eq!(offset as usize, self.next, "a line skipped or fed twice");
        let end = self.next + self.content[self.next..].iter().position(|&b| b == b'\n').expect("a complete line");
        assert!(bytes == &self.content[self.next..end], "line at {offset}: not the file's bytes");
        self.next = end + 1;
    }
    fn oversized(&mut self) {
        panic!("no line here is longer than scan::MAX_LINE");
    }
}

/// Where the last complete line of `bytes` ends, if after `from`.
fn resume_point(bytes: &[u8], from: usize) -> usize {
    bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1).max(from)
}

fuzz_target!(|data: &[u8]| {
    let [reps, cut, back, pattern @ ..] = data else { return };
    if pattern.is_empty() {
        return;
    }
    // Half the files are larger than one read (256 KiB), the rest small and quick.
    let len = pattern.len() + if *reps >= 128 { 250_000 + (*reps as usize - 127) * 4099 } else { *reps as usize * 31 };
    let content: Vec<u8> = pattern.iter().copied().cycle().take(len).collect();
    let cut = len * *cut as usize / 255;
    let mut file = tempfile::tempfile().unwrap();
    let mut buf = Vec::new();
    let held_is_the_files = |held: scan::Held<'_>| {
        let start = held.start as usize;
        assert!(held.bytes == &content[start..start + held.bytes.len()], "held bytes from {start}");
    };

    file.write_all(&content[..cut]).unwrap();
    let mut first = Expect { content: &content[..cut], next: 0 };
    let scanned = scan::scan(&file, 0..cut as u64, 0, &mut first, &mut buf, false).unwrap();
    let resume = resume_point(&content[..cut], 0);
    assert_eq!((first.next, scanned.offset as usize), (resume, resume));
    assert!(scanned.tail == &content[resume..cut]);
    held_is_the_files(scanned.held(&buf));

    // The writer goes on; the next scan resumes, reading from up to a fingerprint's span back.
    file.write_all(&content[cut..]).unwrap();
    let read_from = resume as u64 - (resume as u64).min(scan::FINGERPRINT_SPAN * *back as u64 / 255);
    let mut second = Expect { content: &content, next: resume };
    let scanned = scan::scan(&file, read_from..len as u64, resume as u64, &mut second, &mut buf, false).unwrap();
    let end = resume_point(&content, resume);
    assert_eq!((second.next, scanned.offset as usize), (end, end));
    assert!(scanned.tail == &content[end..]);
    let held = scanned.held(&buf);
    held_is_the_files(held);
    assert_eq!(held.start as usize + held.bytes.len(), len.max(read_from as usize), "held up to the end");
});
