//! The API server's listener: HTTP/1.1 and HTTPS on one port (told apart by the first
//! byte of a connection), with upgrades for port-forward.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::api::{Api, ConnInfo};

pub(crate) struct ApiServer {
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl ApiServer {
    pub(crate) async fn start(
        api: Arc<Api>,
        tls: Arc<rustls::ServerConfig>,
        addr: SocketAddr,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let acceptor = TlsAcceptor::from(tls);
        let task = tokio::spawn(accept_loop(listener, api, acceptor, stop.clone()));
        Ok(Self { addr, stop, task })
    }

    pub(crate) fn abort(&self) {
        self.stop.cancel();
    }

    /// Closes the listener and every open API connection.
    pub(crate) async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    api: Arc<Api>,
    acceptor: TlsAcceptor,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((tcp, _)) = accepted else { continue };
        let _ = tcp.set_nodelay(true);
        let (api, acceptor) = (api.clone(), acceptor.clone());
        let dropped = api.faults.connections_token();
        let stop = stop.child_token();
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = dropped.cancelled() => {}
                _ = connection(tcp, api, acceptor) => {}
            }
        });
    }
}

async fn connection(tcp: TcpStream, api: Arc<Api>, acceptor: TlsAcceptor) {
    let mut first = [0u8; 1];
    if !matches!(tcp.peek(&mut first).await, Ok(1)) {
        return;
    }
    let closed = CancellationToken::new();
    let _guard = closed.clone().drop_guard();
    // 0x16 opens a TLS handshake record; anything else is plain HTTP.
    if first[0] == 0x16 {
        let Ok(tls) = acceptor.accept(tcp).await else {
            return;
        };
        let cert_user = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| api.users.by_cert(c.as_ref()));
        let info = Arc::new(ConnInfo {
            tls: true,
            cert_user,
            closed,
        });
        serve(TokioIo::new(tls), api, info).await;
    } else {
        let info = Arc::new(ConnInfo {
            tls: false,
            cert_user: None,
            closed,
        });
        serve(TokioIo::new(tcp), api, info).await;
    }
}

async fn serve<I>(io: I, api: Arc<Api>, info: Arc<ConnInfo>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| {
        let (api, info) = (api.clone(), info.clone());
        async move { Ok::<_, std::convert::Infallible>(api.serve(req, &info).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, svc)
        .with_upgrades()
        .await;
}
