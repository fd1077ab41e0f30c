//! The accept loop: a task per connection, a connection limit, the request read with a
//! deadline, and the idle exit.

use super::parked::Parked;
use super::reply::refuse;
use super::resolve::Resolver;
use super::settings::Settings;
use super::shared::{Clients, Shared};
use super::{listen, listen_udp, session, tcp, udp};
use kftray_relay::attached::Told;
use kftray_relay::io::{ReadError, read_request};
use kftray_relay::protocol::{ProtocolError, Reply, Request, Status, Transport};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

pub(super) async fn run(settings: Settings) -> ExitCode {
    if let Err(why) = super::user::refuse_root() {
        tracing::error!("{why}");
        return ExitCode::from(2);
    }
    let listener = match TcpListener::bind(settings.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!("cannot listen on {}: {e}", settings.listen);
            return ExitCode::from(2);
        }
    };
    let local = listener.local_addr().unwrap_or(settings.listen);
    let Ok(mut stop) = super::stop::Stop::watch() else {
        tracing::error!("cannot watch for signals");
        return ExitCode::from(2);
    };
    tracing::info!(
        "relay-server {} listening on {local}; exits after {:?} without a client session",
        env!("CARGO_PKG_VERSION"),
        settings.idle_exit
    );
    let shared = Arc::new(Shared {
        resolver: Resolver::new(settings.nameserver, settings.resolve_timeout),
        clients: Clients::new(),
        parked: Parked::new(),
        told: Told::default(),
        settings,
    });
    let limit = Arc::new(Semaphore::new(shared.settings.max_connections));
    let mut tick = tokio::time::interval(shared.settings.idle_exit.min(Duration::from_millis(250)));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((conn, peer)) => {
                    let shared = shared.clone();
                    match limit.clone().try_acquire_owned() {
                        Ok(permit) => {
                            tokio::spawn(async move {
                                handle(conn, peer, &shared).await;
                                drop(permit);
                            });
                        }
                        Err(_) => {
                            tracing::warn!(%peer, "at the limit of {} connections: busy", shared.settings.max_connections);
                            tokio::spawn(refuse(conn, Reply::new(Status::Busy, None, "the relay is at its connection limit")));
                        }
                    }
                }
                // Out of descriptors and the like: pause rather than spin.
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = tick.tick() => {
                let idle = shared.clients.idle();
                if idle >= shared.settings.idle_exit {
                    tracing::info!("no client session for {:?}: exiting", idle);
                    return ExitCode::SUCCESS;
                }
            }
            how = stop.next() => {
                tracing::info!("{how}");
                return ExitCode::SUCCESS;
            }
        }
    }
}

/// One connection: its request (within the deadline), then what it asks for. A bad request
/// is answered and closes this connection alone.
async fn handle(mut conn: TcpStream, peer: SocketAddr, shared: &Shared) {
    let _ = conn.set_nodelay(true);
    let deadline = shared.settings.request_timeout;
    let request = match tokio::time::timeout(deadline, read_request(&mut conn)).await {
        Ok(Ok(request)) => request,
        Err(_) => {
            tracing::warn!(%peer, "no request within {deadline:?}: closing");
            return;
        }
        Ok(Err(ReadError::Closed)) => {
            tracing::debug!(%peer, "closed before a request");
            return;
        }
        Ok(Err(ReadError::Protocol(e))) => {
            tracing::warn!(%peer, "bad request: {e}: closing");
            let status = match e {
                ProtocolError::UnsupportedVersion(_) => Status::UnsupportedVersion,
                _ => Status::BadRequest,
            };
            refuse(conn, Reply::new(status, None, e.to_string())).await;
            return;
        }
        Ok(Err(e)) => {
            tracing::warn!(%peer, "reading the request: {e}: closing");
            return;
        }
    };
    match request {
        Request::Session { id } => session::run(conn, id, shared).await,
        Request::Connect {
            id,
            transport: Transport::Tcp,
            to,
        } => tcp::run(conn, id, to, shared).await,
        Request::Connect {
            id,
            transport: Transport::Udp,
            to,
        } => udp::run(conn, id, to, shared).await,
        Request::Listen { id, port } => listen::listen(conn, id, port, shared).await,
        Request::Attach { id } => listen::attach(conn, id, shared).await,
        Request::ListenUdp { id, port } => listen_udp::listen(conn, id, port, shared).await,
    }
}
