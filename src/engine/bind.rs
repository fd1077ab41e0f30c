//! Taking a forward's local socket: the address asked for; with `local_address = "auto"`,
//! the next addresses of the range when another program holds the port on its own; and what
//! the OS refuses this user (a low port, a loopback alias that macOS does not have) through
//! kftray-helper.

use super::LocalBind;
use super::helper::Helper;
use super::spec::Exposed;
use crate::config::next_auto;
use crate::forward::{BindError, bind_udp, listen, unprivileged_port_start};
use std::io;
use std::net::{IpAddr, SocketAddr};
use tokio::net::{TcpListener, UdpSocket};

/// How many addresses `auto` tries before it says that none is free.
const AUTO_TRIES: usize = 32;

/// A forward's bound socket.
pub(super) enum Bound {
    Tcp(TcpListener),
    Udp(UdpSocket),
    /// A reverse forward listens nowhere here: it carries to its local server.
    Exposed(Exposed),
}

impl Bound {
    pub(super) fn local(&self) -> SocketAddr {
        let local = match self {
            Bound::Tcp(listener) => listener.local_addr(),
            Bound::Udp(socket) => socket.local_addr(),
            Bound::Exposed(exposed) => Ok(exposed.local),
        };
        // A bound socket has an address; unspecified only if the OS would not say.
        local.unwrap_or_else(|_| SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0))
    }
}

pub(super) async fn bind(
    local: LocalBind,
    udp: bool,
    helper: &mut Helper,
) -> Result<Bound, BindError> {
    let mut address = local.address;
    for _ in 0..AUTO_TRIES {
        match take(SocketAddr::new(address, local.port), udp, helper).await {
            Err(BindError::InUse { .. }) if local.auto => {
                address = match address {
                    IpAddr::V4(v4) => IpAddr::V4(next_auto(v4)),
                    v6 => v6,
                };
            }
            other => return other,
        }
    }
    Err(BindError::NoFreeAddress {
        first: local.address,
        port: local.port,
        tried: AUTO_TRIES - 1,
    })
}

async fn take(addr: SocketAddr, udp: bool, helper: &mut Helper) -> Result<Bound, BindError> {
    match direct(addr, udp) {
        // macOS answers only 127.0.0.1 until lo0 has an alias for the address.
        Err(BindError::Other { source, .. })
            if source.kind() == io::ErrorKind::AddrNotAvailable && addr.ip().is_loopback() =>
        {
            helper
                .add_alias(addr.ip())
                .await
                .map_err(|e| BindError::Other {
                    addr,
                    source: io::Error::new(
                        source.kind(),
                        format!("{source}; kftray-helper could not add the address: {e}"),
                    ),
                })?;
            direct(addr, udp)
        }
        Err(BindError::Other { source, .. })
            if source.kind() == io::ErrorKind::PermissionDenied && addr.port() < 1024 =>
        {
            by_helper(addr, udp, helper)
                .await
                .map_err(|e| BindError::Privileged {
                    addr,
                    start: unprivileged_port_start(),
                    helper: e.to_string(),
                })
        }
        other => other,
    }
}

fn direct(addr: SocketAddr, udp: bool) -> Result<Bound, BindError> {
    if udp {
        bind_udp(addr).map(Bound::Udp)
    } else {
        listen(addr).map(Bound::Tcp)
    }
}

/// The socket bound by kftray-helper and handed over.
async fn by_helper(
    addr: SocketAddr,
    udp: bool,
    helper: &mut Helper,
) -> Result<Bound, Box<dyn std::error::Error>> {
    if udp {
        let socket = helper.bind_udp(addr).await?;
        socket.set_nonblocking(true)?;
        Ok(Bound::Udp(UdpSocket::from_std(socket)?))
    } else {
        let listener = helper.bind_tcp(addr).await?;
        listener.set_nonblocking(true)?;
        Ok(Bound::Tcp(TcpListener::from_std(listener)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::auto_address;
    use std::net::Ipv4Addr;

    fn helper() -> Helper {
        // Never reached: these binds need no privilege.
        Helper::new("/nonexistent/kftray-helper.sock".into())
    }

    #[tokio::test]
    async fn auto_takes_the_next_address_when_its_own_is_held() {
        let first = auto_address("/bind-test", "held");
        let held = std::net::TcpListener::bind((first, 0)).unwrap();
        let port = held.local_addr().unwrap().port();
        let local = LocalBind {
            address: IpAddr::V4(first),
            port,
            auto: true,
        };
        let bound = bind(local, false, &mut helper()).await.unwrap();
        assert_eq!(
            bound.local(),
            SocketAddr::new(IpAddr::V4(next_auto(first)), port)
        );
        // A fixed address is not moved.
        let fixed = LocalBind {
            auto: false,
            ..local
        };
        assert!(matches!(
            bind(fixed, false, &mut helper()).await,
            Err(BindError::InUse { .. })
        ));
    }

    #[tokio::test]
    async fn auto_with_every_address_held_says_so() {
        let first = auto_address("/bind-test", "crowded");
        let mut address = first;
        let mut held = vec![std::net::TcpListener::bind((address, 0)).unwrap()];
        let port = held[0].local_addr().unwrap().port();
        for _ in 1..AUTO_TRIES {
            address = next_auto(address);
            held.push(std::net::TcpListener::bind((address, port)).unwrap());
        }
        let local = LocalBind {
            address: IpAddr::V4(first),
            port,
            auto: true,
        };
        let Err(e) = bind(local, false, &mut helper()).await else {
            panic!("bound although every address was held");
        };
        let text = e.to_string();
        assert!(matches!(e, BindError::NoFreeAddress { .. }), "{text}");
        assert!(
            text.contains(&first.to_string()) && text.contains("31"),
            "{text}"
        );
        assert_ne!(first, Ipv4Addr::LOCALHOST);
    }
}
