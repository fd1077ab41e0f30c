//! Binding a forward's local address, with an error that says who holds a taken port.

use std::io;
use std::net::{IpAddr, SocketAddr};
use tokio::net::{TcpListener, TcpSocket, UdpSocket};

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(
        "{addr} is already in use{}: stop that, or give this forward another `local_port` \
         (`local_port = \"any\"` takes a free one)",
        owner.as_ref().map(|o| format!(" by {o}")).unwrap_or_default()
    )]
    InUse {
        addr: SocketAddr,
        owner: Option<String>,
    },
    #[error("cannot listen on {addr}: {source}")]
    Other {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error(
        "no free address for `local_address = \"auto\"`: port {port} is taken on {first} and \
         on the {tried} addresses after it; stop what holds them, or give this forward a \
         fixed `local_address`"
    )]
    NoFreeAddress {
        first: IpAddr,
        port: u16,
        tried: usize,
    },
    #[error("cannot listen on {addr}: {}", privileged_help(*addr, *start, helper))]
    Privileged {
        addr: SocketAddr,
        /// The lowest port this user may bind, where the OS says.
        start: Option<u16>,
        /// Why kftray-helper could not bind it instead.
        helper: String,
    },
}

/// What a user can do about a low port the OS refused, from the least to the most reach.
fn privileged_help(addr: SocketAddr, start: Option<u16>, helper: &str) -> String {
    let port = addr.port();
    let limit = match start {
        Some(start) => format!(
            "ports below {start} need privileges here (net.ipv4.ip_unprivileged_port_start = \
             {start})"
        ),
        None => "this system keeps low ports for privileged programs".into(),
    };
    let sysctl = match start {
        Some(_) => format!(
            "; or let every program bind it: `sudo sysctl net.ipv4.ip_unprivileged_port_start={port}`"
        ),
        None => String::new(),
    };
    format!(
        "{limit}. Any one of these works: start kftray-helper, which binds low ports for kftray \
         (`sudo kftray-helper serve --user $USER`); or give kftray the capability: `sudo setcap \
         cap_net_bind_service=+ep \"$(command -v kftray)\"`{sysctl}; or use a port above 1023. \
         kftray-helper: {helper}"
    )
}

/// The lowest port an unprivileged program may bind, where the OS says (Linux).
pub fn unprivileged_port_start() -> Option<u16> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()?
        .trim()
        .parse()
        .ok()
}

const BACKLOG: u32 = 65_535;

/// Listens on `addr` (port 0: any free port). SO_REUSEADDR lets a restarted forward take its
/// port back at once even while old connections linger in TIME_WAIT; it does not allow two
/// listeners on one port. The backlog is as deep as the kernel allows (it caps the number at
/// net.core.somaxconn), as Go's listeners are: a burst of connections larger than the backlog
/// loses SYNs, and each lost one costs its client a second before it retries.
pub fn listen(addr: SocketAddr) -> Result<TcpListener, BindError> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|source| BindError::Other { addr, source })?;
    socket
        .set_reuseaddr(true)
        .map_err(|source| BindError::Other { addr, source })?;
    match socket.bind(addr).and_then(|()| socket.listen(BACKLOG)) {
        Ok(listener) => Ok(listener),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(BindError::InUse {
            addr,
            owner: owner_of(addr),
        }),
        Err(source) => Err(BindError::Other { addr, source }),
    }
}

/// Binds a UDP forward's socket. Without SO_REUSEADDR: on UDP it would let a second socket
/// share the port and silently split the datagrams between them.
pub fn bind_udp(addr: SocketAddr) -> Result<UdpSocket, BindError> {
    let bound = std::net::UdpSocket::bind(addr).and_then(|socket| {
        socket.set_nonblocking(true)?;
        UdpSocket::from_std(socket)
    });
    match bound {
        Ok(socket) => Ok(socket),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(BindError::InUse {
            addr,
            owner: udp_owner_of(addr),
        }),
        Err(source) => Err(BindError::Other { addr, source }),
    }
}

/// "pid 1234 (kubectl)" for the process listening on `addr`, where the OS tells: Linux lists
/// sockets in /proc/net/tcp{,6} and each process's descriptors in /proc/PID/fd. Another
/// user's processes are not readable, and then we say nothing rather than guess.
pub fn owner_of(addr: SocketAddr) -> Option<String> {
    const LISTEN: &str = "0A";
    socket_owner(addr, ["/proc/net/tcp", "/proc/net/tcp6"], LISTEN)
}

/// The same for a UDP port: a bound, unconnected UDP socket shows the state CLOSE.
pub fn udp_owner_of(addr: SocketAddr) -> Option<String> {
    const UNCONNECTED: &str = "07";
    socket_owner(addr, ["/proc/net/udp", "/proc/net/udp6"], UNCONNECTED)
}

#[cfg(target_os = "linux")]
fn socket_owner(addr: SocketAddr, tables: [&str; 2], state: &str) -> Option<String> {
    let table = match addr {
        SocketAddr::V4(_) => tables[0],
        SocketAddr::V6(_) => tables[1],
    };
    let inodes = inodes_in_state(&std::fs::read_to_string(table).ok()?, addr.port(), state);
    if inodes.is_empty() {
        return None;
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(link) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let link = link.to_string_lossy();
            let holds = link
                .strip_prefix("socket:[")
                .and_then(|rest| rest.strip_suffix(']'))
                .is_some_and(|inode| inodes.iter().any(|i| i == inode));
            if holds {
                let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
                return Some(format!("pid {pid} ({})", name.trim()));
            }
        }
    }
    None
}

#[cfg(not(target_os = "linux"))]
fn socket_owner(_addr: SocketAddr, _tables: [&str; 2], _state: &str) -> Option<String> {
    None
}

/// Inodes of sockets on `port` in `wanted` state in a /proc/net/{tcp,udp} table. Any local
/// address counts: a wildcard socket blocks a loopback bind on the same port too.
#[cfg(target_os = "linux")]
fn inodes_in_state(table: &str, port: u16, wanted: &str) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            let state = fields.get(3)?;
            let inode = fields.get(9)?;
            let local_port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
            (local_port == port && *state == wanted).then(|| inode.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_in_use_by_me(err: BindError) {
        let text = err.to_string();
        assert!(matches!(err, BindError::InUse { .. }), "{text}");
        if cfg!(target_os = "linux") {
            let me = format!("pid {} (", std::process::id());
            assert!(text.contains(&me), "{text}");
        }
    }

    #[tokio::test]
    async fn a_taken_port_names_its_owner() {
        let first = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = first.local_addr().unwrap();
        let err = listen(addr).unwrap_err();
        assert_in_use_by_me(err);
    }

    #[tokio::test]
    async fn a_taken_udp_port_names_its_owner_and_is_not_shared() {
        let first = bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = first.local_addr().unwrap();
        let err = bind_udp(addr).unwrap_err();
        assert_in_use_by_me(err);
    }

    #[tokio::test]
    async fn port_zero_gets_a_free_port() {
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_ne!(listener.local_addr().unwrap().port(), 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn proc_net_tcp_rows_are_read_by_port_and_state() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
           0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0 100 0 0 10 0\n\
           1: 0100007F:1F90 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0 20 4 30 10 -1\n";
        assert_eq!(inodes_in_state(table, 8080, "0A"), ["4242"]);
        assert!(inodes_in_state(table, 8081, "0A").is_empty());
    }
}
