//! Low ports: the helper binds a port below 1024 on a loopback address and hands the bound
//! socket to the caller as SCM_RIGHTS, so no traffic ever runs through the helper.

use crate::hosts::names::check_address;
use crate::hosts::protocol::{ErrorKind, Refusal, Transport};
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::UnixStream;

/// Binds a low port on a loopback address for the caller.
pub(crate) fn bind(address: SocketAddr, transport: Transport) -> Result<OwnedFd, Refusal> {
    check_address(address.ip())?;
    if address.port() == 0 || address.port() >= 1024 {
        return Err(Refusal::new(
            ErrorKind::Invalid,
            format!(
                "port {} needs no privilege: kftray binds ports from 1024 up itself, the \
                 helper binds only 1 to 1023",
                address.port()
            ),
        ));
    }
    let bound = match transport {
        Transport::Tcp => bind_tcp(address),
        // Without SO_REUSEADDR: on UDP it would let a second socket share the port and split
        // the datagrams between them.
        Transport::Udp => std::net::UdpSocket::bind(address).map(OwnedFd::from),
    };
    bound.map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => Refusal::new(
            ErrorKind::InUse,
            format!("{address} ({transport}) is already in use"),
        ),
        _ => Refusal::new(
            ErrorKind::Failed,
            format!("cannot bind {address} ({transport}): {e}"),
        ),
    })
}

/// A listening TCP socket with SO_REUSEADDR, so that a restarted forward takes its port
/// back while old connections linger in TIME_WAIT, and a deep backlog. Called inside the
/// runtime (tokio's `listen` registers the socket; `into_std` takes it back out).
fn bind_tcp(address: SocketAddr) -> io::Result<OwnedFd> {
    let socket = match address {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }?;
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    Ok(OwnedFd::from(socket.listen(1024)?.into_std()?))
}

/// Sends `line` with `fd` as SCM_RIGHTS on its first byte. The helper's copy of the
/// descriptor closes when `fd` drops, once the line is out.
pub(crate) async fn send_with_fd(
    stream: &mut UnixStream,
    line: &[u8],
    fd: OwnedFd,
) -> io::Result<()> {
    let fds = [fd.as_raw_fd()];
    let raw = stream.as_raw_fd();
    let sent = stream
        .async_io(Interest::WRITABLE, || {
            sendmsg::<()>(
                raw,
                &[IoSlice::new(line)],
                &[ControlMessage::ScmRights(&fds)],
                MsgFlags::empty(),
                None,
            )
            .map_err(io::Error::from)
        })
        .await?;
    stream.write_all(&line[sent..]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(address: &str, transport: Transport) -> Refusal {
        match bind(address.parse().unwrap(), transport) {
            Err(refusal) => refusal,
            Ok(fd) => panic!("{address} ({transport}) was bound: {fd:?}"),
        }
    }

    #[test]
    fn only_low_ports_on_loopback_are_bound() {
        for port in ["0", "1024", "8080"] {
            let refusal = refused(&format!("127.0.0.1:{port}"), Transport::Tcp);
            assert_eq!(refusal.kind, ErrorKind::Invalid);
            assert!(
                refusal
                    .message
                    .contains(&format!("port {port} needs no privilege")),
                "{refusal}"
            );
        }
        let refusal = refused("10.0.0.1:53", Transport::Udp);
        assert_eq!(refusal.kind, ErrorKind::Invalid);
        assert!(
            refusal.message.contains("not a loopback address"),
            "{refusal}"
        );
    }
}
