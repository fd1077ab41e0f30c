//! kftray's side of the helper: one connection for the whole run, so that what the helper
//! did for this run is undone when the connection closes, however the run ends.

use crate::hosts::protocol::Entry;
#[cfg(unix)]
use crate::hosts::protocol::{
    self, ErrorKind, MAX_LINE, PROTOCOL, Reply, Request, Transport, VERSION,
};
#[cfg(unix)]
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
#[cfg(unix)]
use std::collections::VecDeque;
use std::io;
#[cfg(unix)]
use std::io::IoSliceMut;
use std::net::{IpAddr, SocketAddr};
#[cfg(unix)]
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
#[cfg(unix)]
use tokio::io::{AsyncWriteExt, Interest};
#[cfg(unix)]
use tokio::net::UnixStream;

/// Where the helper listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/kftray-helper.sock";

/// The helper's socket: `KFTRAY_HELPER_SOCKET` when set, else [`DEFAULT_SOCKET`].
pub fn default_socket() -> PathBuf {
    std::env::var_os("KFTRAY_HELPER_SOCKET")
        .filter(|value| !value.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_SOCKET), PathBuf::from)
}

/// Why the helper did not do what kftray asked.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// Nothing listens at the socket.
    #[error(
        "kftray-helper is not running at {}: start it once with `sudo kftray-helper serve \
         --user $USER` (examples/kftray-helper@.service runs it under systemd)",
        socket.display()
    )]
    NotRunning {
        /// The socket tried.
        socket: PathBuf,
    },
    /// The helper at the socket serves another user.
    #[error(
        "the kftray-helper at {} serves another user: start one for yours with `sudo \
         kftray-helper serve --user $USER --socket PATH` and set KFTRAY_HELPER_SOCKET=PATH",
        socket.display()
    )]
    OtherUser {
        /// The socket tried.
        socket: PathBuf,
    },
    /// The helper speaks another protocol.
    #[error(
        "the running kftray-helper ({theirs}) does not match this kftray ({ours}): install \
         the kftray-helper of the same kftray version and restart it"
    )]
    Version {
        /// The helper's side, as it described itself.
        theirs: String,
        /// This side.
        ours: String,
    },
    /// The helper refused or failed; its message says why.
    #[error("kftray-helper refused: {0}")]
    Refused(String),
    /// The connection failed.
    #[error("talking to kftray-helper at {}: {source}", socket.display())]
    Io {
        /// The helper's socket.
        socket: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// There is no helper on this system.
    #[error(
        "host names (`domain`) need kftray-helper, which runs on Linux and macOS only: on \
         Windows, reach the forward by its address (every 127.x.y.z answers, and no port \
         needs an administrator)"
    )]
    Unsupported,
    /// The helper answered something this client does not understand.
    #[error(
        "kftray-helper at {} answered {what}, which this kftray does not understand: install \
         the kftray-helper of the same kftray version",
        socket.display()
    )]
    Protocol {
        /// The helper's socket.
        socket: PathBuf,
        /// What came back.
        what: String,
    },
}

/// A connection to kftray-helper. Entries and aliases set through it last as long as it:
/// dropping it (or the process ending) makes the helper remove them.
#[cfg(unix)]
#[derive(Debug)]
pub struct HelperClient {
    stream: UnixStream,
    socket: PathBuf,
    /// Bytes read past the last reply.
    buffer: Vec<u8>,
    /// Descriptors received and not yet claimed by a `Bound` reply.
    fds: VecDeque<OwnedFd>,
    helper_version: String,
}

#[cfg(unix)]
impl HelperClient {
    /// Connects and greets the helper.
    pub async fn connect(socket: &Path) -> Result<HelperClient, HelperError> {
        let stream = UnixStream::connect(socket)
            .await
            .map_err(|source| match source.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                    HelperError::NotRunning {
                        socket: socket.into(),
                    }
                }
                io::ErrorKind::PermissionDenied => HelperError::OtherUser {
                    socket: socket.into(),
                },
                _ => HelperError::Io {
                    socket: socket.into(),
                    source,
                },
            })?;
        let mut client = HelperClient {
            stream,
            socket: socket.into(),
            buffer: Vec::new(),
            fds: VecDeque::new(),
            helper_version: String::new(),
        };
        let ours = format!("kftray {VERSION}, protocol {PROTOCOL}");
        let reply = client
            .request(&Request::Hello {
                protocol: PROTOCOL,
                version: VERSION.into(),
            })
            .await?;
        match reply {
            Reply::Hello { protocol, version } if protocol == PROTOCOL => {
                client.helper_version = version;
                Ok(client)
            }
            Reply::Hello { protocol, version } => Err(HelperError::Version {
                theirs: format!("kftray-helper {version}, protocol {protocol}"),
                ours,
            }),
            Reply::Error {
                kind: ErrorKind::Version,
                message,
            } => Err(HelperError::Version {
                theirs: message,
                ours,
            }),
            Reply::Error {
                kind: ErrorKind::Forbidden,
                ..
            } => Err(HelperError::OtherUser {
                socket: socket.into(),
            }),
            other => Err(client.unexpected(&other)),
        }
    }

    /// The version the helper reported.
    pub fn helper_version(&self) -> &str {
        &self.helper_version
    }

    /// Replaces this run's whole set of host-name entries (an empty set removes them all).
    /// Nothing is written unless every entry is accepted.
    pub async fn set_entries(&mut self, entries: Vec<Entry>) -> Result<(), HelperError> {
        self.expect_ok(&Request::SetEntries { entries }).await
    }

    /// Adds a loopback alias for this run (needed on macOS; the helper accepts and does
    /// nothing on Linux, where all of 127.0.0.0/8 already answers).
    pub async fn add_alias(&mut self, address: IpAddr) -> Result<(), HelperError> {
        self.expect_ok(&Request::AddAlias { address }).await
    }

    /// Removes a loopback alias this run added.
    pub async fn remove_alias(&mut self, address: IpAddr) -> Result<(), HelperError> {
        self.expect_ok(&Request::RemoveAlias { address }).await
    }

    /// A listening TCP socket on a low port of a loopback address, bound by the helper. It
    /// comes in blocking mode, as std makes sockets: call `set_nonblocking(true)` before
    /// handing it to tokio.
    pub async fn bind_tcp(
        &mut self,
        address: SocketAddr,
    ) -> Result<std::net::TcpListener, HelperError> {
        let fd = self.bind(address, Transport::Tcp).await?;
        let listener = std::net::TcpListener::from(fd);
        listener.set_nonblocking(false).map_err(|e| self.io(e))?;
        Ok(listener)
    }

    /// A bound UDP socket on a low port of a loopback address, bound by the helper; blocking,
    /// as with [`HelperClient::bind_tcp`].
    pub async fn bind_udp(
        &mut self,
        address: SocketAddr,
    ) -> Result<std::net::UdpSocket, HelperError> {
        let fd = self.bind(address, Transport::Udp).await?;
        let socket = std::net::UdpSocket::from(fd);
        socket.set_nonblocking(false).map_err(|e| self.io(e))?;
        Ok(socket)
    }

    async fn bind(
        &mut self,
        address: SocketAddr,
        protocol: Transport,
    ) -> Result<OwnedFd, HelperError> {
        match self.request(&Request::Bind { address, protocol }).await? {
            Reply::Bound => self.fds.pop_front().ok_or_else(|| HelperError::Protocol {
                socket: self.socket.clone(),
                what: "a bound socket without its descriptor".into(),
            }),
            Reply::Error { message, .. } => Err(HelperError::Refused(message)),
            other => Err(self.unexpected(&other)),
        }
    }

    async fn expect_ok(&mut self, request: &Request) -> Result<(), HelperError> {
        match self.request(request).await? {
            Reply::Ok => Ok(()),
            Reply::Error { message, .. } => Err(HelperError::Refused(message)),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Sends one request and reads its reply.
    async fn request(&mut self, request: &Request) -> Result<Reply, HelperError> {
        // A descriptor left over belongs to no reply of ours: close it.
        self.fds.clear();
        let line = protocol::encode(request);
        self.stream.write_all(&line).await.map_err(|e| self.io(e))?;
        self.read_reply().await
    }

    async fn read_reply(&mut self) -> Result<Reply, HelperError> {
        let mut chunk = vec![0u8; 8192];
        loop {
            if let Some(line) = protocol::take_line(&mut self.buffer) {
                return serde_json::from_slice(&line).map_err(|_| HelperError::Protocol {
                    socket: self.socket.clone(),
                    what: format!("`{}`", String::from_utf8_lossy(&line)),
                });
            }
            if self.buffer.len() > MAX_LINE {
                return Err(self.io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a reply longer than any the helper sends",
                )));
            }
            let raw = self.stream.as_raw_fd();
            let (read, fds) = self
                .stream
                .async_io(Interest::READABLE, || receive(raw, &mut chunk))
                .await
                .map_err(|e| self.io(e))?;
            self.fds.extend(fds);
            if read == 0 {
                return Err(self.io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "kftray-helper closed the connection",
                )));
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }

    fn io(&self, source: io::Error) -> HelperError {
        HelperError::Io {
            socket: self.socket.clone(),
            source,
        }
    }

    fn unexpected(&self, reply: &Reply) -> HelperError {
        HelperError::Protocol {
            socket: self.socket.clone(),
            what: format!("{reply:?}"),
        }
    }
}

/// One `recvmsg`: the bytes read, and the descriptors that came with them.
#[cfg(unix)]
fn receive(socket: RawFd, buffer: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let mut iov = [IoSliceMut::new(buffer)];
    // Close-on-exec from the start where the OS can, so a child kftray spawns in between
    // does not inherit the socket.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let flags = MsgFlags::MSG_CMSG_CLOEXEC;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let flags = MsgFlags::empty();
    let message =
        recvmsg::<()>(socket, &mut iov, Some(&mut space), flags).map_err(io::Error::from)?;
    let mut fds = Vec::new();
    for cmsg in message.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(raw) = cmsg {
            for raw in raw {
                // SAFETY: the kernel has just installed `raw` in this process's descriptor
                // table for this SCM_RIGHTS message; nothing else knows of it, so this is its
                // one owner. (There is no safe way to take ownership of a received descriptor:
                // std's ancillary-data API is unstable and nix hands back raw numbers.)
                fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
            }
        }
    }
    if message.flags.contains(MsgFlags::MSG_CTRUNC) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "kftray-helper sent more descriptors than expected",
        ));
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    for fd in &fds {
        use nix::fcntl::{FcntlArg, FdFlag, fcntl};
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(io::Error::from)?;
    }
    Ok((message.bytes, fds))
}

/// Windows has no helper, and needs one only for host-name entries: every 127.x.y.z answers
/// there and no port is privileged. A client cannot be made, so none of its methods runs.
#[cfg(not(unix))]
#[derive(Debug)]
pub struct HelperClient(std::convert::Infallible);

#[cfg(not(unix))]
#[allow(missing_docs)]
impl HelperClient {
    pub async fn connect(_socket: &Path) -> Result<HelperClient, HelperError> {
        Err(HelperError::Unsupported)
    }

    pub fn helper_version(&self) -> &str {
        match self.0 {}
    }

    pub async fn set_entries(&mut self, _entries: Vec<Entry>) -> Result<(), HelperError> {
        match self.0 {}
    }

    pub async fn add_alias(&mut self, _address: IpAddr) -> Result<(), HelperError> {
        match self.0 {}
    }

    pub async fn remove_alias(&mut self, _address: IpAddr) -> Result<(), HelperError> {
        match self.0 {}
    }

    pub async fn bind_tcp(
        &mut self,
        _address: SocketAddr,
    ) -> Result<std::net::TcpListener, HelperError> {
        match self.0 {}
    }

    pub async fn bind_udp(
        &mut self,
        _address: SocketAddr,
    ) -> Result<std::net::UdpSocket, HelperError> {
        match self.0 {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn missing_helper_says_how_to_start_it() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("none.sock");
        let err = HelperClient::connect(&socket).await.unwrap_err();
        assert!(matches!(err, HelperError::NotRunning { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("sudo kftray-helper serve --user $USER"),
            "{err}"
        );
    }
}
