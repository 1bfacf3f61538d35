//! Reading a log from a byte offset in bounded chunks, and telling a grown file from a rewritten
//! one.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;

/// Bytes read per call.
const CHUNK: usize = 256 * 1024;
const PAGE: usize = 4096;
/// Where in a page, relative to the file offset, a read's bytes land in memory. The kernel copies
/// out of its page cache with `rep movsb`, which slows to a third when the destination lies a few
/// bytes past the source's place in a page ("4K aliasing"; measured on AMD Zen 3: 1–31 bytes
/// past, 2.6–3.5 GB/s; 0, 32 or 2,048 bytes, 9–10 GB/s). A file is read from a page boundary and
/// a buffer from `malloc` starts 16 bytes into a page: the slow case, every time. Half a page
/// apart is as far from it as can be.
const ALIGN_SKEW: usize = PAGE / 2;
/// A line longer than this is counted but not held in memory or parsed.
pub const MAX_LINE: usize = 128 << 20;
/// Bytes hashed at the start of the file and just before the resume offset.
pub const FINGERPRINT_SPAN: u64 = 4096;

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
    /// Bytes read from `from` on (not the few before it read for the fingerprint).
    pub bytes_read: u64,
    /// The first read found bytes that were not in the page cache: the disk is cold, and a
    /// backfill reads ahead from then on (Linux, where `RWF_NOWAIT` works; elsewhere never set).
    pub waited: bool,
    /// The buffer's bytes `held.1` are still the file's from offset `held.0`.
    held: (u64, Range<usize>),
}

impl Scanned {
    /// The file bytes the scan left in `buf` (the last chunk or so): what the fingerprint and the
    /// last message need, usually, without reading them again.
    pub fn held<'a>(&self, buf: &'a [u8]) -> Held<'a> {
        Held { start: self.held.0, bytes: &buf[self.held.1.clone()] }
    }
}

/// File bytes in hand: `bytes` are the file's from offset `start`.
#[derive(Debug, Clone, Copy)]
pub struct Held<'a> {
    pub start: u64,
    pub bytes: &'a [u8],
}

impl<'a> Held<'a> {
    #[cfg(test)]
    const NOTHING: Held<'static> = Held { start: 0, bytes: &[] };

    /// The file's bytes `[from, to)`, if all of them are in hand.
    pub fn get(&self, from: u64, to: u64) -> Option<&'a [u8]> {
        let lo = usize::try_from(from.checked_sub(self.start)?).ok()?;
        let hi = usize::try_from(to.checked_sub(self.start)?).ok()?;
        self.bytes.get(lo..hi)
    }
}

/// Feeds every complete line that starts at or after `from` in `read` to `sink`. Reading starts at
/// `read.start` (at most `from`), so that bytes before `from` can be held afterwards too. `buf`
/// is reused between calls; it grows to the longest line seen (at most [`MAX_LINE`]) plus one
/// chunk.
pub fn scan(
    file: &File,
    read: Range<u64>,
    from: u64,
    sink: &mut impl LineSink,
    buf: &mut Vec<u8>,
    inside_oversized: bool,
) -> io::Result<Scanned> {
    scan_limited(file, read, from, sink, buf, inside_oversized, MAX_LINE)
}

fn scan_limited(
    file: &File,
    read: Range<u64>,
    from: u64,
    sink: &mut impl LineSink,
    buf: &mut Vec<u8>,
    inside_oversized: bool,
    max_line: usize,
) -> io::Result<Scanned> {
    let to = read.end;
    // The bytes in hand are `buf[base..]`, `window` for short: window[i] is the file's byte at
    // `start + i`. Of them, window[lo..hi] are read but not yet fed (a partial line); until the
    // bytes before `from` are read, lo is past hi.
    let mut base = 0;
    let mut start = read.start.min(from);
    let (mut lo, mut hi) = ((from - start) as usize, 0);
    // The file offset of the next byte to read.
    let mut pos = start;
    // Set while inside an oversized line (perhaps since an earlier scan that stopped in it).
    let mut oversized_start = inside_oversized.then_some(from);
    let mut waited = None; // known after the first read
    let mut realign = true;
    while pos < to {
        let want = CHUNK.min((to - pos) as usize);
        if realign || buf.len() - base - hi < want {
            // Move the partial line to the front, where the next read's bytes land half a page
            // off their offset in the file (see `ALIGN_SKEW`).
            let keep = lo.min(hi);
            if buf.len() < PAGE + (hi - keep) + want {
                buf.resize(PAGE + (hi - keep) + want, 0); // grows to the longest line plus a chunk, then stays
            }
            let skewed = (ALIGN_SKEW + (start + keep as u64) as usize).wrapping_sub(buf.as_ptr() as usize) % PAGE;
            buf.copy_within(base + keep..base + hi, skewed);
            (base, start, lo, hi) = (skewed, start + keep as u64, lo - keep, hi - keep);
            realign = false;
        }
        let window = &mut buf[base..];
        let dest = &mut window[hi..hi + want];
        // The first read takes only what is in memory: whether it all was tells a cold disk.
        let cached = match waited {
            None => {
                let cached = read_cached(file, dest, pos);
                waited = Some(match &cached {
                    Ok(n) => *n < want,
                    Err(e) => e.kind() == io::ErrorKind::WouldBlock,
                });
                cached.ok().filter(|&n| n > 0)
            }
            Some(_) => None,
        };
        let got = match cached.map_or_else(|| file.read_at(dest, pos), Ok) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if got == 0 {
            break; // the file shrank under us; the next refresh sees it
        }
        pos += got as u64;
        let fresh = hi.max(lo); // a newline before `from` ends no line of ours
        hi += got;
        for nl in memchr::memchr_iter(b'\n', window.get(fresh..hi).unwrap_or_default()) {
            let end = fresh + nl;
            if oversized_start.take().is_some() {
                sink.oversized();
            } else {
                sink.line(&window[lo..end], start + lo as u64);
            }
            lo = end + 1;
        }
        if oversized_start.is_none() && hi.saturating_sub(lo) > max_line {
            oversized_start = Some(start + lo as u64);
        }
        if oversized_start.is_some() && lo < hi {
            // Drop what we have of the oversized line; the offsets still count it.
            (start, lo, hi, realign) = (pos, 0, 0, true);
        }
    }
    // Inside an oversized line, resume where reading stopped (its bytes are never kept, so
    // there is nothing to read again); otherwise at the start of the partial line.
    let tail_oversized = oversized_start.is_some();
    let window = &buf[base..];
    let tail = if tail_oversized { Vec::new() } else { window.get(lo..hi).unwrap_or_default().to_vec() };
    let bytes_read = pos.saturating_sub(from);
    Ok(Scanned {
        offset: start + lo as u64,
        tail,
        tail_oversized,
        bytes_read,
        waited: waited.unwrap_or(false),
        held: (start, base..base + hi),
    })
}

/// Reads only bytes the kernel's page cache holds (Linux's `RWF_NOWAIT`): fewer than asked, or
/// `WouldBlock`, when the rest would have had to wait for the disk. Any other error means it
/// cannot say (an old kernel, a file system without it, qemu's emulation); the caller then reads
/// as usual, and an error worth reporting shows there.
#[cfg(target_os = "linux")]
fn read_cached(file: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    use rustix::io::{preadv2, ReadWriteFlags};
    Ok(preadv2(file, &mut [io::IoSliceMut::new(buf)], pos, ReadWriteFlags::NOWAIT)?)
}

/// Elsewhere there is no asking, so nothing is found cold and nothing read ahead (see
/// [`read_ahead`]).
#[cfg(not(target_os = "linux"))]
fn read_cached(_file: &File, _buf: &mut [u8], _pos: u64) -> io::Result<usize> {
    Err(io::ErrorKind::Unsupported.into())
}

/// A hash of the first bytes of the file and of the bytes just before `offset`: if either
/// changed, the file was rewritten, not appended to. Bytes in `held` are not read again.
pub fn fingerprint(file: &File, offset: u64, held: &[Held<'_>]) -> io::Result<u64> {
    let mut h = Fnv::new(offset);
    let mut buf = [0u8; FINGERPRINT_SPAN as usize];
    let head = FINGERPRINT_SPAN.min(offset);
    let tail_from = offset.saturating_sub(FINGERPRINT_SPAN).max(head);
    for (from, to) in [(0, head), (tail_from, offset)] {
        match held.iter().find_map(|held| held.get(from, to)) {
            Some(bytes) => h.write(bytes),
            None => {
                let part = &mut buf[..(to - from) as usize];
                file.read_exact_at(part, from)?;
                h.write(part);
            }
        }
    }
    Ok(h.0)
}

/// Asks the kernel to start reading a regular file's first `len` bytes (at most a megabyte)
/// into its page cache, and returns without waiting (`posix_fadvise`, `WILLNEED`). On a cold
/// disk a backfill does this for the next files it will read, so that their reads wait together
/// instead of one after another. Linux reads ahead at most its read-ahead window (128 KB by
/// default) this way; the rest of a large file comes by its ordinary sequential read-ahead.
/// Failures do not matter: the real read reports them. Linux only, where [`Scanned::waited`]
/// tells when it is worth its cost (an open, the advice and a close).
#[cfg(target_os = "linux")]
pub fn read_ahead(path: &std::path::Path, len: u64) {
    use rustix::fs::{fadvise, Advice, Mode, OFlags};
    // Non-blocking: a FIFO put in the file's place must not make the open wait for a writer.
    let Ok(fd) = rustix::fs::open(path, OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC, Mode::empty()) else {
        return;
    };
    let _ = std::num::NonZeroU64::new(len.min(1 << 20)).map(|len| fadvise(&fd, 0, Some(len), Advice::WillNeed));
}

#[cfg(not(target_os = "linux"))]
pub fn read_ahead(_path: &std::path::Path, _len: u64) {}

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
        let s = scan(&f, 0..7, 0, &mut sink, &mut Vec::new(), false).unwrap();
        assert_eq!(sink.0, ["a", "bb"]);
        assert_eq!((s.offset, s.tail.as_slice()), (5, &b"cc"[..]));
        let s = scan(&f, 2..7, 2, &mut sink, &mut Vec::new(), false).unwrap();
        assert_eq!(s.offset, 5);
    }

    #[test]
    fn long_lines_cross_chunks() {
        let mut f = tempfile::tempfile().unwrap();
        let long = "x".repeat(CHUNK * 2 + 10);
        write!(f, "{long}\nshort\n").unwrap();
        let len = f.metadata().unwrap().len();
        let mut sink = Lines::default();
        let s = scan(&f, 0..len, 0, &mut sink, &mut Vec::new(), false).unwrap();
        assert_eq!(sink.0.len(), 2);
        assert_eq!(sink.0[0].len(), long.len());
        assert_eq!(s.offset, len);
    }

    /// Each line's offset and length, and where it lay in memory against its offset in the
    /// file, modulo a page.
    #[derive(Default)]
    struct Placed(Vec<(u64, usize)>, Vec<usize>);

    impl LineSink for Placed {
        fn line(&mut self, b: &[u8], offset: u64) {
            assert!(b.iter().all(|&c| c == b'z'), "line at {offset} holds other bytes");
            self.0.push((offset, b.len()));
            self.1.push((b.as_ptr() as usize).wrapping_sub(offset as usize) % PAGE);
        }
        fn oversized(&mut self) {}
    }

    #[test]
    fn reads_land_half_a_page_off_their_file_offsets() {
        let mut f = tempfile::tempfile().unwrap();
        let (mut rng, mut lines, mut at) = (7u64, Vec::new(), 0);
        for i in 0..4000 {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let len = if i % 500 == 7 { 3 * CHUNK + 5 } else { (rng >> 52) as usize };
            writeln!(f, "{}", "z".repeat(len)).unwrap();
            lines.push((at, len));
            at += len as u64 + 1;
        }
        let (len, resume) = (f.metadata().unwrap().len(), lines[5].0);
        // A whole read, a resumed one (reading from before `from`), one that drops oversized
        // lines: every line is fed whole, and lies where the read put it.
        for (read, from, max_line) in
            [(0..len, 0, MAX_LINE), (resume - 1000..len, resume, MAX_LINE), (0..len, 0, CHUNK)]
        {
            let mut sink = Placed::default();
            scan_limited(&f, read, from, &mut sink, &mut Vec::new(), false, max_line).unwrap();
            let expected: Vec<_> = lines.iter().copied().filter(|&(at, len)| at >= from && len <= max_line).collect();
            assert_eq!(sink.0, expected);
            assert!(sink.1.iter().all(|&skew| skew == ALIGN_SKEW), "{:?}", &sink.1[..5]);
        }
    }

    #[test]
    fn a_line_ending_where_a_read_begins_ends_there() {
        let mut f = tempfile::tempfile().unwrap();
        let long = "a".repeat(CHUNK);
        write!(f, "{long}\nb\n").unwrap();
        let mut sink = Lines::default();
        let s = scan(&f, 0..CHUNK as u64 + 3, 0, &mut sink, &mut Vec::new(), false).unwrap();
        assert_eq!(sink.0, [long.as_str(), "b"]);
        assert_eq!(s.offset, CHUNK as u64 + 3);
    }

    #[test]
    fn oversized_lines_are_counted_not_held() {
        let mut f = tempfile::tempfile().unwrap();
        let long = "y".repeat(CHUNK * 3);
        write!(f, "a\n{long}\nb\n{long}").unwrap();
        let len = f.metadata().unwrap().len();
        let mut sink = Lines::default();
        let mut buf = Vec::new();
        let s = scan_limited(&f, 0..len, 0, &mut sink, &mut buf, false, CHUNK).unwrap();
        assert_eq!(sink.0, ["a", "b"]);
        assert_eq!(sink.1, 1, "the complete long line is counted once");
        assert!(s.tail_oversized, "the unfinished long line is pending");
        assert_eq!(s.offset, len, "its bytes are not read again");
        assert!(buf.len() <= 3 * CHUNK, "memory stays bounded: {}", buf.len());
        // The writer finishes the line: the next scan skips to its end, counts it, goes on.
        write!(f, "yyy\nc\n").unwrap();
        let s = scan_limited(&f, s.offset..len + 6, s.offset, &mut sink, &mut buf, true, CHUNK).unwrap();
        assert_eq!((sink.0.len(), sink.1, s.tail_oversized, s.offset), (3, 2, false, len + 6));
    }

    #[test]
    fn reading_before_the_offset_feeds_only_later_lines_and_holds_the_rest() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"aa\nbb\ncc\ndd").unwrap();
        let (mut sink, mut buf) = (Lines::default(), Vec::new());
        let s = scan(&f, 1..11, 6, &mut sink, &mut buf, false).unwrap();
        assert_eq!(sink.0, ["cc"]);
        assert_eq!((s.offset, s.tail.as_slice(), s.bytes_read), (9, &b"dd"[..], 5));
        let held = s.held(&buf);
        assert_eq!(held.get(1, 6), Some(&b"a\nbb\n"[..]));
        assert_eq!((held.get(0, 2), held.get(6, 12)), (None, None), "only what was read");
    }

    #[test]
    fn read_ahead_returns_at_once_whatever_the_path_names() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let file = dir.path().join("file");
        std::fs::write(&file, b"{}\n").unwrap();
        let (done, finished) = std::sync::mpsc::channel();
        let paths = [fifo, dir.path().join("missing"), dir.path().to_path_buf(), file.clone()];
        std::thread::spawn(move || {
            // A blocking open of a FIFO would wait for a writer that never comes.
            paths.iter().for_each(|p| read_ahead(p, 1 << 40));
            done.send(()).unwrap();
        });
        assert!(finished.recv_timeout(std::time::Duration::from_secs(20)).is_ok(), "read_ahead blocked");
        assert_eq!(std::fs::read(&file).unwrap(), b"{}\n");
    }

    /// A file dropped from the page cache (as `posix_fadvise` with `DONTNEED` drops a file's
    /// clean pages, which needs no privileges) is found cold, then warm once read. Where the
    /// kernel cannot say (qemu's emulation has no `RWF_NOWAIT`), nothing is ever found cold.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_scan_tells_whether_its_first_read_waited_on_the_disk() {
        // Not in /tmp, which may be a tmpfs: its files are never anywhere but in memory.
        let dir = tempfile::Builder::new().tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let path = dir.path().join("log");
        let text: String = (0..20_000).map(|i| format!("{{\"n\": {i}}}\n")).collect();
        std::fs::write(&path, &text).unwrap();
        let file = File::open(&path).unwrap();
        file.sync_all().unwrap(); // pages being written cannot be dropped
        let len = text.len() as u64;
        let scan_all = || {
            let mut sink = Lines::default();
            let s = scan(&file, 0..len, 0, &mut sink, &mut Vec::new(), false).unwrap();
            assert_eq!(sink.0.len(), 20_000, "every line, however it was read");
            s.waited
        };
        let can_tell = read_cached(&file, &mut [0; 16], 0).is_ok();
        assert!(!scan_all(), "just written: in memory");
        // The kernel may keep a page it was asked to drop (one still in another CPU's batch, say):
        // ask again until it did, giving it a moment between (20 tries in a row once fell short,
        // in a full run of the suite).
        let cold = (0..50).any(|i| {
            if i > 0 {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
            scan_all()
        });
        assert_eq!(cold, can_tell, "dropped from memory: the read waited, if the kernel can say");
        assert!(!scan_all(), "read once: in memory again");
    }

    #[test]
    fn fingerprints_from_held_bytes_equal_read_ones() {
        let mut f = tempfile::tempfile().unwrap();
        let text: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        f.write_all(&text).unwrap();
        for offset in [0, 100, 4096, 5_000, 8_192, 10_000] {
            let read = fingerprint(&f, offset, &[]).unwrap();
            for (start, end) in [(0, 10_000), (0, 3_000), (2_000, 10_000), (6_000, 9_000)] {
                let held = Held { start, bytes: &text[start as usize..end] };
                assert_eq!(
                    fingerprint(&f, offset, &[Held::NOTHING, held]).unwrap(),
                    read,
                    "offset {offset}, held {start}..{end}"
                );
            }
        }
    }

    #[test]
    fn fingerprint_sees_rewrites_before_the_offset() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&vec![b'a'; 10_000]).unwrap();
        let before = fingerprint(f.as_file(), 9_000, &[]).unwrap();
        f.as_file().write_all_at(b"b", 8_000).unwrap();
        assert_ne!(before, fingerprint(f.as_file(), 9_000, &[]).unwrap());
        f.as_file().write_all_at(b"a", 8_000).unwrap();
        f.as_file().write_all_at(b"b", 9_500).unwrap();
        assert_eq!(before, fingerprint(f.as_file(), 9_000, &[]).unwrap());
    }
}
