//! Where the server listens: a TCP address, or a Unix socket's path, for a reverse proxy on the
//! same host (nginx's `proxy_pass http://unix:/run/convmeta.sock`), where the socket file's
//! permissions say who may connect and no port is taken.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tokio::io::{AsyncRead, AsyncWrite, Interest};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// A listening socket the server accepts connections on.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixSocket),
}

/// A listening Unix socket. One bound here (not passed by systemd) has its file removed when
/// dropped, unless another file has taken its path since.
pub struct UnixSocket {
    listener: UnixListener,
    path: PathBuf,
    /// The socket file's device and inode, when this process made it.
    made: Option<(u64, u64)>,
}

/// Where a listener listens, as said in logs: `127.0.0.1:5702`, or `unix:/run/convmeta.sock`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(addr) => write!(f, "{addr}"),
            Address::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl Address {
    /// The TCP address, if this is one.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            Address::Tcp(addr) => Some(*addr),
            Address::Unix(_) => None,
        }
    }
}

impl From<TcpListener> for Listener {
    fn from(listener: TcpListener) -> Self {
        Listener::Tcp(listener)
    }
}

impl Listener {
    /// Listens on a Unix socket at `path`, whose file is removed when the listener is dropped
    /// (blocking: a few calls on the file system; called within the runtime). A socket file
    /// already there is taken over when nothing answers on it (one a killed server left); one
    /// that answers is refused as in use, and any other file there is left alone and refused.
    /// `@NAME` is a name in Linux's abstract namespace instead, as systemd and `ss` write one:
    /// no file, and gone with the socket.
    pub fn bind_unix(path: &Path) -> io::Result<Listener> {
        let (listener, made) = match abstract_name(path) {
            Some(name) => (bind_abstract(name).map_err(|e| worded(e, "name"))?, None),
            None => {
                take_over(path)?;
                let listener = std::os::unix::net::UnixListener::bind(path).map_err(|e| worded(e, "path"))?;
                (listener, std::fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino())))
            }
        };
        listener.set_nonblocking(true)?;
        let listener = UnixListener::from_std(listener)?;
        Ok(Listener::Unix(UnixSocket { listener, path: path.to_owned(), made }))
    }

    /// The listener of a socket systemd passed, left in place when dropped. Called within the
    /// runtime.
    pub fn passed(passed: super::systemd::Passed) -> io::Result<Listener> {
        Ok(match passed {
            super::systemd::Passed::Tcp(listener) => Listener::Tcp(TcpListener::from_std(listener)?),
            super::systemd::Passed::Unix(listener) => {
                let path = name(&listener.local_addr()?);
                let listener = UnixListener::from_std(listener)?;
                Listener::Unix(UnixSocket { listener, path, made: None })
            }
        })
    }

    pub fn local_addr(&self) -> io::Result<Address> {
        match self {
            Listener::Tcp(listener) => listener.local_addr().map(Address::Tcp),
            Listener::Unix(socket) => Ok(Address::Unix(socket.path.clone())),
        }
    }

    /// The next connection, with the client's address over TCP.
    pub(crate) async fn accept(&self) -> io::Result<Connection> {
        match self {
            Listener::Tcp(listener) => {
                let (stream, peer) = listener.accept().await?;
                // Answers are written whole; waiting to fill a packet only delays them.
                let _ = stream.set_nodelay(true);
                Ok(Connection::Tcp(stream, peer))
            }
            Listener::Unix(socket) => Ok(Connection::Unix(socket.listener.accept().await?.0)),
        }
    }
}

/// A Unix socket's path, or `@name` for a name in Linux's abstract namespace (which systemd's
/// `ListenStream=@name` makes).
fn name(address: &std::os::unix::net::SocketAddr) -> PathBuf {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Some(name) = std::os::linux::net::SocketAddrExt::as_abstract_name(address) {
        use std::os::unix::ffi::OsStrExt;
        return PathBuf::from(std::ffi::OsStr::from_bytes(&[b"@", name].concat()));
    }
    address.as_pathname().map(Path::to_owned).unwrap_or_else(|| PathBuf::from("(unnamed)"))
}

/// The name after `@`, when `path` names a socket in the abstract namespace.
pub fn abstract_name(path: &Path) -> Option<&[u8]> {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes().strip_prefix(b"@")
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn bind_abstract(name: &[u8]) -> io::Result<std::os::unix::net::UnixListener> {
    use std::os::linux::net::SocketAddrExt;
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    std::os::unix::net::UnixListener::bind_addr(&address).map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => io::Error::new(e.kind(), "another socket has that name"),
        _ => e,
    })
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn bind_abstract(_: &[u8]) -> io::Result<std::os::unix::net::UnixListener> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "a name in the abstract namespace (@NAME) is Linux's; a file of that name is unix:./@NAME",
    ))
}

/// Clears the way for a socket file at `path`: a socket file nothing answers on is removed.
fn take_over(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(found) if found.file_type().is_socket() => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => Err(io::Error::new(io::ErrorKind::AddrInUse, "a server already listens on it")),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                std::fs::remove_file(path)?;
                tracing::info!("took over unix:{}, which a server that stopped had left", path.display());
                Ok(())
            }
            // Bind says what is wrong.
            Err(_) => Ok(()),
        },
        Ok(_) => Err(io::Error::new(io::ErrorKind::AlreadyExists, "a file that is not a socket is there")),
        Err(_) => Ok(()),
    }
}

/// A bind's error, its words for a path or name too long in place of std's, which name a C
/// constant.
fn worded(e: io::Error, what: &str) -> io::Error {
    match e.kind() {
        io::ErrorKind::InvalidInput => {
            let most = std::mem::size_of::<libc::sockaddr_un>() - std::mem::offset_of!(libc::sockaddr_un, sun_path) - 1;
            io::Error::new(e.kind(), format!("a socket's {what} takes at most {most} bytes"))
        }
        _ => e,
    }
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        let Some(made) = self.made else { return };
        // Not a file another server has put there since (after taking ours for stale).
        let same = std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == made);
        if same {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// An accepted connection.
pub(crate) enum Connection {
    Tcp(TcpStream, SocketAddr),
    Unix(UnixStream),
}

/// A connection's stream, as the server reads it.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {
    /// Waits for the client's first byte, leaving it to be read: the bytes waiting (0 once the
    /// client has closed).
    fn first_byte(&self) -> impl Future<Output = io::Result<usize>> + Send;
}

impl Stream for TcpStream {
    async fn first_byte(&self) -> io::Result<usize> {
        self.peek(&mut [0u8; 1]).await
    }
}

impl Stream for UnixStream {
    async fn first_byte(&self) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        // Tokio's Unix stream has no `peek`; recv(MSG_PEEK) is what TCP's does.
        let peek = || {
            let mut byte = 0u8;
            // SAFETY: reads at most one byte into `byte`, from a descriptor the stream owns.
            let got = unsafe { libc::recv(self.as_raw_fd(), (&raw mut byte).cast(), 1, libc::MSG_PEEK) };
            usize::try_from(got).map_err(|_| io::Error::last_os_error())
        };
        loop {
            self.readable().await?;
            match self.try_io(Interest::READABLE, peek) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                got => return got,
            }
        }
    }
}
