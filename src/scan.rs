//! Reading a log from a byte offset in bounded chunks, and telling a grown file from a rewritten
//! one.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Bytes read per call.
const CHUNK: usize = 256 * 1024;
/// A line longer than this is counted but not held in memory or parsed.
pub const MAX_LINE: usize = 128 << 20;
/// Bytes hashed at the start of the file and just before the resume offset.
const FINGERPRINT_SPAN: u64 = 4096;

/// Receives the complete lines of a scan, in order.
pub trait LineSink {
    /// One line, without its `\n`, and the file offset it starts at.
    fn line(&mut self, bytes: &[u8], offset: u64);
    /// A line longer than [`MAX_LINE`].
    fn oversized(&mut self);
}

/// The end of a scan.
#[derive(Debug, Default)]
pub struct Scanned {
    /// Offset just past the last complete line: where the next scan resumes.
    pub offset: u64,
    /// A trailing line without `\n` (a writer may be mid-append): not fed, and read again next
    /// time.
    pub tail: Vec<u8>,
    /// The scan stopped inside a line longer than [`MAX_LINE`] (then `tail` is empty and
    /// `offset` is where reading stopped: the next scan goes on skipping from there).
    pub tail_oversized: bool,
    pub bytes_read: u64,
}

/// Feeds every complete line in `[from, to)` to `sink`. `buf` is reused between calls; it grows
/// to the longest line seen (at most [`MAX_LINE`]) plus one chunk.
pub fn scan(
    file: &File,
    from: u64,
    to: u64,
    sink: &mut impl LineSink,
    buf: &mut Vec<u8>,
    inside_oversized: bool,
) -> io::Result<Scanned> {
    scan_limited(file, from, to, sink, buf, inside_oversized, MAX_LINE)
}

fn scan_limited(
    file: &File,
    from: u64,
    to: u64,
    sink: &mut impl LineSink,
    buf: &mut Vec<u8>,
    inside_oversized: bool,
    max_line: usize,
) -> io::Result<Scanned> {
    let (mut lo, mut hi) = (0, 0); // buf[lo..hi]: read but not yet fed (a partial line)
    let mut lo_offset = from; // file offset of buf[lo]
    let mut pos = from; // file offset of the next byte to read
                        // Set while inside an oversized line (perhaps since an earlier scan that stopped in it).
    let mut oversized_start = inside_oversized.then_some(from);
    let mut bytes_read = 0;
    while pos < to {
        let want = CHUNK.min((to - pos) as usize);
        if buf.len() - hi < want {
            buf.copy_within(lo..hi, 0);
            (lo, hi) = (0, hi - lo);
            if buf.len() - hi < want {
                buf.resize(hi + want, 0); // grows to the longest line plus a chunk, then stays
            }
        }
        let got = match file.read_at(&mut buf[hi..hi + want], pos) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if got == 0 {
            break; // the file shrank under us; the next refresh sees it
        }
        pos += got as u64;
        bytes_read += got as u64;
        for nl in memchr::memchr_iter(b'\n', &buf[hi..hi + got]) {
            let end = hi + nl;
            if oversized_start.take().is_some() {
                sink.oversized();
            } else {
                sink.line(&buf[lo..end], lo_offset);
            }
            lo_offset += (end + 1 - lo) as u64;
            lo = end + 1;
        }
        hi += got;
        if oversized_start.is_none() && hi - lo > max_line {
            oversized_start = Some(lo_offset);
        }
        if oversized_start.is_some() {
            // Drop what we have of the oversized line; the offsets still count it.
            lo_offset += (hi - lo) as u64;
            (lo, hi) = (0, 0);
        }
    }
    // Inside an oversized line, resume where reading stopped (its bytes are never kept, so
    // there is nothing to read again); otherwise at the start of the partial line.
    let tail_oversized = oversized_start.is_some();
    let tail = if tail_oversized { Vec::new() } else { buf[lo..hi].to_vec() };
    Ok(Scanned { offset: lo_offset, tail, tail_oversized, bytes_read })
}

/// A hash of the first bytes of the file and of the bytes just before `offset`: if either
/// changed, the file was rewritten, not appended to.
pub fn fingerprint(file: &File, offset: u64) -> io::Result<u64> {
    let mut h = Fnv::new(offset);
    let mut buf = [0u8; FINGERPRINT_SPAN as usize];
    let head = FINGERPRINT_SPAN.min(offset);
    let tail_from = offset.saturating_sub(FINGERPRINT_SPAN).max(head);
    for (from, to) in [(0, head), (tail_from, offset)] {
        let part = &mut buf[..(to - from) as usize];
        file.read_exact_at(part, from)?;
        h.write(part);
    }
    Ok(h.0)
}

/// FNV-1a: tiny and stable across builds (std's hasher is not), which stored hashes need.
pub struct Fnv(pub u64);

impl Fnv {
    pub fn new(seed: u64) -> Self {
        let mut h = Fnv(0xcbf2_9ce4_8422_2325);
        h.write(&seed.to_le_bytes());
        h
    }

    /// Mixes in eight bytes at a time (FNV-1a over little-endian words, then the tail bytes):
    /// fingerprints hash kilobytes on every append.
    pub fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.0 ^= u64::from_le_bytes(w.try_into().expect("eight bytes"));
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        for &b in words.remainder() {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[derive(Default)]
    struct Lines(Vec<String>, usize);

    impl LineSink for Lines {
        fn line(&mut self, b: &[u8], _offset: u64) {
            self.0.push(String::from_utf8_lossy(b).into_owned());
        }
        fn oversized(&mut self) {
            self.1 += 1;
        }
    }

    #[test]
    fn keeps_a_trailing_partial_line_for_later() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"a\nbb\ncc").unwrap();
        let mut sink = Lines::default();
        let s = scan(&f, 0, 7, &mut sink, &mut Vec::new(), false).unwrap();
        assert_eq!(sink.0, ["a", "bb"]);
        assert_eq!((s.offset, s.tail.as_slice()), (5, &b"cc"[..]));
        let s = scan(&f, 2, 7, &mut sink, &mut Vec::new(), false).unwrap();
        assert_eq!(s.offset, 5);
    }

    #[test]
    fn long_lines_cross_chunks() {
        let mut f = tempfile::tempfile().unwrap();
        let long = "x".repeat(CHUNK * 2 + 10);
        write!(f, "{long}\nshort\n").unwrap();
        let len = f.metadata().unwrap().len();
        let mut sink = Lines::default();
        let s = scan(&f, 0, len, &mut sink, &mut Vec::new(), false).unwrap();
        assert_eq!(sink.0.len(), 2);
        assert_eq!(sink.0[0].len(), long.len());
        assert_eq!(s.offset, len);
    }

    #[test]
    fn oversized_lines_are_counted_not_held() {
        let mut f = tempfile::tempfile().unwrap();
        let long = "y".repeat(CHUNK * 3);
        write!(f, "a\n{long}\nb\n{long}").unwrap();
        let len = f.metadata().unwrap().len();
        let mut sink = Lines::default();
        let mut buf = Vec::new();
        let s = scan_limited(&f, 0, len, &mut sink, &mut buf, false, CHUNK).unwrap();
        assert_eq!(sink.0, ["a", "b"]);
        assert_eq!(sink.1, 1, "the complete long line is counted once");
        assert!(s.tail_oversized, "the unfinished long line is pending");
        assert_eq!(s.offset, len, "its bytes are not read again");
        assert!(buf.len() <= 3 * CHUNK, "memory stays bounded: {}", buf.len());
        // The writer finishes the line: the next scan skips to its end, counts it, goes on.
        write!(f, "yyy\nc\n").unwrap();
        let s = scan_limited(&f, s.offset, len + 6, &mut sink, &mut buf, true, CHUNK).unwrap();
        assert_eq!((sink.0.len(), sink.1, s.tail_oversized, s.offset), (3, 2, false, len + 6));
    }

    #[test]
    fn fingerprint_sees_rewrites_before_the_offset() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&vec![b'a'; 10_000]).unwrap();
        let before = fingerprint(f.as_file(), 9_000).unwrap();
        f.as_file().write_all_at(b"b", 8_000).unwrap();
        assert_ne!(before, fingerprint(f.as_file(), 9_000).unwrap());
        f.as_file().write_all_at(b"a", 8_000).unwrap();
        f.as_file().write_all_at(b"b", 9_500).unwrap();
        assert_eq!(before, fingerprint(f.as_file(), 9_000).unwrap());
    }
}
