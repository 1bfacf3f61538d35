//! systemd's two protocols for a service, each a few environment variables and a system call,
//! so no library: socket activation (the listening socket handed over as file descriptor 3,
//! `LISTEN_PID` and `LISTEN_FDS`; systemd listens before the service starts, and starts it at
//! the first connection if asked to) and readiness (`Type=notify`: `NOTIFY_SOCKET` names where
//! to say `READY=1` once serving, so that units ordered after this one start when it answers,
//! and, with `WatchdogSec=`, `WATCHDOG=1` while it lives).

use std::ffi::OsStr;
use std::io;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const FIRST_PASSED: RawFd = 3;

/// A listening socket systemd passed.
pub enum Passed {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

/// The listening socket systemd passed this process, if it passed one (`LISTEN_PID` names this
/// process: the variables may be inherited by a process they were not meant for). The
/// variables are removed, as `sd_listen_fds` removes them, so that nothing this process starts
/// takes them for its own. Called before any other thread starts, as changing the environment
/// asks.
pub fn passed_listener() -> io::Result<Option<Passed>> {
    let (pid, count) = (std::env::var_os("LISTEN_PID"), std::env::var_os("LISTEN_FDS"));
    for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(name);
    }
    let (Some(pid), Some(count)) = (pid, count) else { return Ok(None) };
    if number(&pid) != Some(std::process::id()) {
        return Ok(None);
    }
    let count = number(&count).ok_or_else(|| said(format!("LISTEN_FDS is {count:?}, not a count")))?;
    match count {
        0 => return Ok(None),
        1 => {}
        n => tracing::warn!("systemd passed {n} sockets; serving on the first (file descriptor 3) alone"),
    }
    let option = |name, option| {
        let mut value: libc::c_int = 0;
        let mut size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: reads one int into `value`, whose size is passed.
        let got =
            unsafe { libc::getsockopt(FIRST_PASSED, libc::SOL_SOCKET, option, (&raw mut value).cast(), &mut size) };
        match got {
            0 => Ok(value),
            _ => Err(said(format!(
                "file descriptor 3, which systemd passed, is no socket ({name}: {})",
                io::Error::last_os_error()
            ))),
        }
    };
    let stream = option("SO_TYPE", libc::SO_TYPE)? == libc::SOCK_STREAM;
    let listening = option("SO_ACCEPTCONN", libc::SO_ACCEPTCONN)? != 0;
    let family = family()?;
    if !(stream && listening && [libc::AF_INET, libc::AF_INET6, libc::AF_UNIX].contains(&family)) {
        return Err(said(
            "the socket systemd passed is not a TCP or Unix socket listening for connections: convmeta accepts them itself (a .socket unit with ListenStream=127.0.0.1:5702 or ListenStream=/run/convmeta.sock, and not Accept=yes)".into(),
        ));
    }
    // Not inherited by what this process starts.
    // SAFETY: sets a flag of a descriptor this process owns.
    unsafe { libc::fcntl(FIRST_PASSED, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: the descriptor is a socket of this family (checked above) that this process owns
    // from here on.
    let passed = unsafe {
        match family {
            libc::AF_UNIX => Passed::Unix(std::os::unix::net::UnixListener::from_raw_fd(FIRST_PASSED)),
            _ => Passed::Tcp(std::net::TcpListener::from_raw_fd(FIRST_PASSED)),
        }
    };
    match &passed {
        Passed::Tcp(listener) => listener.set_nonblocking(true)?,
        Passed::Unix(listener) => listener.set_nonblocking(true)?,
    }
    Ok(Some(passed))
}

/// The address family of descriptor 3 (macOS has no `SO_DOMAIN` to ask).
fn family() -> io::Result<libc::c_int> {
    // SAFETY: all zeros is a valid sockaddr_storage.
    let mut address: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut size = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: writes at most `size` bytes into `address`.
    match unsafe { libc::getsockname(FIRST_PASSED, (&raw mut address).cast(), &mut size) } {
        0 => Ok(libc::c_int::from(address.ss_family)),
        _ => Err(io::Error::last_os_error()),
    }
}

fn number(text: &OsStr) -> Option<u32> {
    text.to_str()?.parse().ok()
}

fn said(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

/// Tells systemd how the service is (`READY=1`, `STOPPING=1`, `STATUS=…`), where it asked to
/// be told (`NOTIFY_SOCKET`: a path, or on Linux an abstract name led by `@`). Nothing when it
/// did not ask; a failure is logged, and serving goes on.
pub fn notify(state: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else { return };
    if let Err(e) = send(&socket, state) {
        tracing::warn!(notify_socket = ?socket, error = %e, "cannot tell systemd {state:?}");
    }
}

fn send(socket: &OsStr, state: &str) -> io::Result<()> {
    let datagram = std::os::unix::net::UnixDatagram::unbound()?;
    match socket.as_bytes() {
        #[cfg(target_os = "linux")]
        [b'@', name @ ..] => {
            use std::os::linux::net::SocketAddrExt;
            let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            datagram.send_to_addr(state.as_bytes(), &address)?;
        }
        [b'/', ..] => {
            datagram.send_to(state.as_bytes(), socket)?;
        }
        _ => return Err(said("not a socket's path".into())),
    }
    Ok(())
}

/// How often systemd asks to hear that the service lives (`WatchdogSec=`, which it passes as
/// `WATCHDOG_USEC`, for this process where `WATCHDOG_PID` names one), if it asks.
pub fn watchdog() -> Option<std::time::Duration> {
    if let Some(pid) = std::env::var_os("WATCHDOG_PID") {
        if number(&pid) != Some(std::process::id()) {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| std::time::Duration::from_micros(usec))
}
