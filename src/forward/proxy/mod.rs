//! A proxy into the cluster: a browser or curl on this machine reaches any in-cluster service
//! or cluster-only host by its in-cluster name, over SOCKS5 ([`Kind::Socks`]) or as an HTTP
//! proxy ([`Kind::Http`]).
//!
//! Each accepted connection names its destination; a [`ProxyDial`] opens a byte stream to it
//! (in kftray, through the in-cluster relay pod, which resolves the name with the cluster's
//! DNS and connects), and the bytes are carried both ways with [`splice`](super::splice).

mod http;
mod socks;

use super::Activity;
use super::serve::accept_each;
use futures::future::BoxFuture;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// How long one direction of a carried connection may stay open after the other finished.
const LINGER: Duration = Duration::from_secs(20);

/// How long a client may take to say where it goes (the SOCKS greeting and request, or an HTTP
/// request head), so idle connections do not pile up.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// Where a proxied connection goes, as the client named it (a host name is resolved by the
/// dialer, i.e. inside the cluster).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// A host name, or an IP address as text (an IPv6 address without brackets).
    pub host: String,
    /// The destination port.
    pub port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// What a dialer's stream is: bytes both ways. Every such stream is one.
pub trait ProxyIo: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> ProxyIo for T {}

/// A byte stream to a proxied connection's destination.
pub type ProxyStream = Box<dyn ProxyIo>;

/// Why a dial failed, so each protocol can answer with its own code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    /// The name does not resolve in the cluster.
    #[error("no such host in the cluster ({0})")]
    NotFound(String),
    /// The destination refused the connection.
    #[error("connection refused ({0})")]
    Refused(String),
    /// No route to the destination's network or host.
    #[error("unreachable ({0})")]
    Unreachable(String),
    /// The destination did not answer in time.
    #[error("timed out ({0})")]
    TimedOut(String),
    /// Anything else, such as the way into the cluster failing.
    #[error("{0}")]
    Other(String),
}

/// Opens a byte stream to a destination, resolving its name where the stream starts.
pub trait ProxyDial: Send + Sync + 'static {
    /// A stream to `to`, or why not.
    fn dial(&self, to: Target) -> BoxFuture<'static, Result<ProxyStream, DialError>>;
}

/// Which protocol a proxy listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// SOCKS5 (RFC 1928), CONNECT only, no authentication.
    Socks,
    /// An HTTP proxy: `CONNECT` tunnels and absolute-form requests (`GET http://host/…`).
    Http,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Socks => "socks5",
            Kind::Http => "http",
        })
    }
}

/// Serves `listener` until `stop` is cancelled, each connection on a task of the returned
/// tracker. Then the listener is closed (so the port can be bound again at once) and the
/// tracker, closed, holds the connections still open, for the caller to drain. Idle HTTP
/// keep-alive connections are closed when `stop` fires; tunnels carry on until they finish.
pub async fn serve_proxy(
    kind: Kind,
    listener: TcpListener,
    dialer: Arc<dyn ProxyDial>,
    activity: Arc<Activity>,
    stop: CancellationToken,
) -> TaskTracker {
    let (counted, stopped) = (activity.clone(), stop.clone());
    let open = accept_each(listener, &stopped, &counted, move |local, peer, tracker| {
        let (dialer, activity, stop) = (dialer.clone(), activity.clone(), stop.clone());
        // CONNECT tunnels run on the same tracker, so that stopping drains them too.
        let spawner = tracker.clone();
        async move {
            match kind {
                Kind::Socks => socks::serve_connection(local, &*dialer, &activity, HANDSHAKE).await,
                Kind::Http => {
                    http::serve_connection(local, dialer, activity, HANDSHAKE, stop, spawner).await
                }
            }
        }
        .instrument(tracing::debug_span!("proxy connection", %peer, ?kind))
    });
    open.await
}

#[cfg(test)]
pub(crate) mod testing {
    //! What the protocol tests share: a dialer onto local servers, and those servers.

    use super::*;
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use std::collections::HashMap;
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicI64, Ordering};
    use tokio::net::TcpStream;

    /// The in-cluster name of the test web server.
    pub(crate) const WEB: &str = "web.demo.svc.cluster.local";

    /// Maps names to local hosts (the port is the one asked for); records what it was asked.
    pub(crate) struct TestDialer {
        names: HashMap<String, String>,
        pub(crate) asked: Mutex<Vec<Target>>,
    }

    impl ProxyDial for TestDialer {
        fn dial(&self, to: Target) -> BoxFuture<'static, Result<ProxyStream, DialError>> {
            self.asked.lock().unwrap().push(to.clone());
            let host = self.names.get(&to.host).cloned();
            Box::pin(async move {
                let host = match (to.host.as_str(), host) {
                    ("refused", _) => return Err(DialError::Refused("test".into())),
                    ("slow", _) => return Err(DialError::TimedOut("test".into())),
                    ("nonet", _) => return Err(DialError::Unreachable("test".into())),
                    ("broken", _) => return Err(DialError::Other("test".into())),
                    (_, Some(host)) => host,
                    (name, None) => return Err(DialError::NotFound(name.to_string())),
                };
                match TcpStream::connect((host.as_str(), to.port)).await {
                    Ok(stream) => Ok(Box::new(stream) as ProxyStream),
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        Err(DialError::Refused(e.to_string()))
                    }
                    Err(e) => Err(DialError::Other(e.to_string())),
                }
            })
        }
    }

    /// A tiny HTTP/1.1 server answering `METHOD path host=HOST`, and its address.
    pub(crate) async fn web_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let service =
                        service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                            let host = req
                                .headers()
                                .get(::http::header::HOST)
                                .and_then(|h| h.to_str().ok())
                                .unwrap_or("-")
                                .to_string();
                            let hop = req.headers().contains_key("proxy-connection");
                            let text =
                                format!("{} {} host={host} hop={hop}\n", req.method(), req.uri());
                            Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(text))))
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        addr
    }

    /// An echo server, and its address.
    pub(crate) async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut read, mut write) = stream.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        addr
    }

    /// A running proxy of `kind` with the test dialer, whose names `web` and `echo` (and the
    /// IP address 127.0.0.1) lead to local servers.
    pub(crate) struct Running {
        pub(crate) addr: SocketAddr,
        pub(crate) web: SocketAddr,
        pub(crate) echo: SocketAddr,
        pub(crate) dialer: Arc<TestDialer>,
        pub(crate) activity: Arc<Activity>,
        pub(crate) stop: CancellationToken,
        pub(crate) served: tokio::task::JoinHandle<TaskTracker>,
    }

    pub(crate) async fn start(kind: Kind) -> Running {
        let (web, echo) = (web_server().await, echo_server().await);
        let names = [
            (WEB, "127.0.0.1"),
            ("echo", "127.0.0.1"),
            ("127.0.0.1", "127.0.0.1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let dialer = Arc::new(TestDialer {
            names,
            asked: Mutex::new(Vec::new()),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let activity = Arc::new(Activity::default());
        let stop = CancellationToken::new();
        let served = tokio::spawn(serve_proxy(
            kind,
            listener,
            dialer.clone(),
            activity.clone(),
            stop.clone(),
        ));
        Running {
            addr,
            web,
            echo,
            dialer,
            activity,
            stop,
            served,
        }
    }

    /// Waits (up to 5 s) for `count` to reach `want`: a connection's task counts it after
    /// the client has seen its end.
    pub(crate) async fn settles_at(count: &AtomicI64, want: i64) {
        for _ in 0..500 {
            if count.load(Ordering::Relaxed) == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(count.load(Ordering::Relaxed), want);
    }

    /// Runs curl with `args`: (exit code, stdout, stderr).
    pub(crate) async fn curl(args: &[&str]) -> (i32, String, String) {
        let out = tokio::process::Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .args(args)
            .output()
            .await
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn targets_show_as_host_and_port() {
        let name = Target {
            host: "web".into(),
            port: 80,
        };
        let v6 = Target {
            host: "::1".into(),
            port: 443,
        };
        assert_eq!(name.to_string(), "web:80");
        assert_eq!(v6.to_string(), "[::1]:443");
    }

    #[tokio::test]
    async fn stopping_returns_and_closes_the_port() {
        for kind in [Kind::Socks, Kind::Http] {
            let proxy = start(kind).await;
            // An idle connection is open when the stop comes.
            let _idle = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
            proxy.stop.cancel();
            let tracker = tokio::time::timeout(Duration::from_secs(5), proxy.served)
                .await
                .unwrap()
                .unwrap();
            assert!(tracker.is_closed());
            if kind == Kind::Http {
                // An idle HTTP connection is closed by the stop; a SOCKS one waits for its
                // handshake timeout.
                tokio::time::timeout(Duration::from_secs(5), tracker.wait())
                    .await
                    .unwrap();
            }
            assert!(
                tokio::net::TcpStream::connect(proxy.addr).await.is_err(),
                "the port is still open"
            );
        }
    }
}
