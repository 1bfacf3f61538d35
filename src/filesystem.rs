//! What convmeta must know of file systems: the clock their timestamps come from, and when a
//! timestamp cannot be trusted to move with the next change; and what kind of file system a
//! path is on, where that changes what convmeta can promise. On one that other machines share,
//! their writes send this machine no notification (watch mode), and SQLite's write-ahead log is
//! safe only while every process using the database runs on one machine (it coordinates them
//! through memory shared on that machine alone). And how to open a file that may not be one.

use std::path::Path;

/// Opens `path` to read without waiting: a FIFO where a file was expected would otherwise block
/// the open until a writer came. Opened, it reads as empty; callers check for a regular file.
pub fn open_to_read(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().read(true).custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32).open(path)
}

/// The clock that file timestamps come from, in ns since the epoch: Linux stamps files from its
/// coarse clock (a tick behind the precise one), macOS and the BSDs from the precise one.
pub fn file_clock_ns() -> i64 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let clock = rustix::time::ClockId::RealtimeCoarse;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let clock = rustix::time::ClockId::Realtime;
    let t = rustix::time::clock_gettime(clock);
    t.tv_sec * 1_000_000_000 + t.tv_nsec as i64
}

/// Racily clean, in git's words: a file whose timestamp (a file's mtime, a directory's ctime)
/// falls in the clock tick `began_ns` (from [`file_clock_ns`]) lies in, or later, can change
/// again within that tick without its size or timestamp moving. Whole-second timestamps may
/// come from a file system that keeps nothing finer: those count as racy for two seconds. One
/// dated well in the future (copied from a machine whose clock ran ahead) is not: a write now
/// would move it, and checking it at every refresh until the clock caught up would cost a write.
pub fn racy_stamp(secs: i64, nsec: i64, began_ns: i64) -> bool {
    const AHEAD_NS: i64 = 10_000_000_000; // fine-grained stamps and small clock skews
    let granularity = if nsec == 0 { 2_000_000_000 } else { 0 };
    // Saturating: a date centuries off is neither now nor a few seconds ahead.
    let t = secs.saturating_mul(1_000_000_000).saturating_add(nsec);
    t.saturating_add(granularity) >= began_ns && t <= began_ns + AHEAD_NS
}

/// The name of the shared file system (network, FUSE, a VM's shared folder) that `path` is on,
/// or None for a local one, or one that cannot be asked. Linux only: elsewhere always None.
pub fn shared(path: &Path) -> Option<&'static str> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        rustix::fs::statfs(path).ok().and_then(|s| by_magic(s.f_type as u32))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = path;
        None
    }
}

/// A shared file system's name, from Linux's `statfs` magic number.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn by_magic(magic: u32) -> Option<&'static str> {
    Some(match magic {
        0x6969 => "NFS",
        0x517B | 0xFF53_4D42 | 0xFE53_4D42 => "SMB",
        0x6573_5546 => "FUSE",
        0x0102_1997 => "9p",
        0x6A65_6A63 => "virtiofs",
        0x00C3_6400 => "Ceph",
        0x5346_414F | 0x6B41_4653 => "AFS",
        0x0BD0_0BD0 => "Lustre",
        0x0116_1970 => "GFS2",
        0x7461_636F => "OCFS2",
        _ => return None,
    })
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;

    #[test]
    fn shared_filesystems_are_told_from_local_ones() {
        assert_eq!(shared(Path::new("/proc")), None);
        assert_eq!(shared(Path::new("/dev")), None); // devtmpfs or tmpfs
        assert_eq!(by_magic(0x6969), Some("NFS"));
        assert_eq!(by_magic(0xFF53_4D42), Some("SMB"));
        assert_eq!(by_magic(0x0102_1997), Some("9p")); // WSL 2's Windows drives
    }
}
