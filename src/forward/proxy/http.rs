//! An HTTP proxy: `CONNECT host:port` tunnels (what `curl --proxytunnel` and browsers use for
//! https://), and absolute-form requests (`GET http://host/path`), forwarded with their bodies
//! streaming both ways.
//!
//! Upgrades through absolute-form requests (WebSocket over plain `ws://`) are not supported:
//! `Upgrade` is dropped as the hop-by-hop header it is, so the server answers a plain request.
//! A client that needs one can tunnel with CONNECT instead. Each absolute-form request dials its
//! own upstream connection, closed once its response is done.

use super::{Activity, DialError, LINGER, ProxyDial, ProxyStream, Target};
use crate::forward::splice;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Bytes;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

type Body = BoxBody<Bytes, hyper::Error>;

/// Serves one client connection: its requests one after the other (keep-alive is hyper's),
/// each head read within `patience`, then the tunnel a CONNECT opened, if one did.
pub(super) async fn serve_connection(
    local: TcpStream,
    dialer: Arc<dyn ProxyDial>,
    activity: Arc<Activity>,
    patience: Duration,
    stop: CancellationToken,
    spawner: TaskTracker,
) -> Result<(), String> {
    let (tunnels, mut tunnel) = mpsc::unbounded_channel();
    let client = Arc::new(Client {
        dialer,
        activity: activity.clone(),
        spawner,
        tunnels,
        requests: AtomicU64::new(0),
        failure: Mutex::new(None),
    });
    let service = service_fn({
        let client = client.clone();
        move |request| {
            let client = client.clone();
            async move { Ok::<_, Infallible>(client.answer(request).await) }
        }
    });
    let serving = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        // Covers the wait for each request head, that of a keep-alive connection included.
        .header_read_timeout(patience)
        .serve_connection(TokioIo::new(local), service)
        .with_upgrades();
    tokio::pin!(serving);
    let served = tokio::select! {
        served = &mut serving => served,
        () = stop.cancelled() => {
            // Lets a request under way finish, closes an idle keep-alive connection.
            serving.as_mut().graceful_shutdown();
            serving.await
        }
    };
    if let Err(e) = served
        && client.requests.load(Ordering::Relaxed) == 0
    {
        return Err(format!("HTTP: {e}"));
    }
    if let Some(failure) = client.take_failure() {
        return Err(failure);
    }
    // Hyper hands the connection over once the CONNECT's 200 is written.
    if let Ok(Tunnel {
        upgrade,
        remote,
        target,
    }) = tunnel.try_recv()
    {
        let upgraded = upgrade
            .await
            .map_err(|e| format!("tunnel to {target}: {e}"))?;
        // The client's own socket again, not hyper's wrapper around it: the tunnel's bytes
        // then cost what a forward's do. What hyper had read past the head goes first.
        let carried = match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => {
                let mut remote = remote;
                if !parts.read_buf.is_empty() {
                    remote
                        .write_all(&parts.read_buf)
                        .await
                        .map_err(|e| format!("to {target}: {e}"))?;
                    let sent = parts.read_buf.len() as u64;
                    activity.bytes.bytes_out.fetch_add(sent, Ordering::Relaxed);
                }
                let local = parts.io.into_inner();
                splice(local, remote, &activity.bytes, LINGER, &()).await
            }
            Err(upgraded) => {
                splice(TokioIo::new(upgraded), remote, &activity.bytes, LINGER, &()).await
            }
        };
        carried.map_err(|e| format!("with {target}: {e}"))?;
    }
    Ok(())
}

/// One client connection's state, shared by its requests.
struct Client {
    dialer: Arc<dyn ProxyDial>,
    activity: Arc<Activity>,
    /// Where upstream connections of absolute-form requests are driven.
    spawner: TaskTracker,
    /// The tunnel a CONNECT opened, carried once hyper lets go of the connection.
    tunnels: mpsc::UnboundedSender<Tunnel>,
    requests: AtomicU64,
    /// Why the latest request that failed did.
    failure: Mutex<Option<String>>,
}

struct Tunnel {
    upgrade: OnUpgrade,
    remote: ProxyStream,
    target: Target,
}

/// A request answered with an error status and a one-line reason.
struct Failure {
    status: StatusCode,
    why: String,
}

impl Failure {
    fn new(status: StatusCode, why: impl Into<String>) -> Self {
        Failure {
            status,
            why: why.into(),
        }
    }

    fn dial(target: &Target, error: &DialError) -> Self {
        let status = match error {
            DialError::TimedOut(_) => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::BAD_GATEWAY,
        };
        Failure::new(status, format!("cannot reach {target}: {error}"))
    }
}

impl Client {
    async fn answer(&self, request: Request<Incoming>) -> Response<Body> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let answered = if request.method() == Method::CONNECT {
            self.connect(request).await
        } else if request.uri().scheme().is_some() {
            self.forward(request).await
        } else {
            Err(Failure::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "this is a proxy: ask for an absolute URL (GET http://host/path) or CONNECT, \
                     not {} {}",
                    request.method(),
                    request.uri()
                ),
            ))
        };
        answered.unwrap_or_else(|failure| {
            tracing::debug!(status = %failure.status, why = %failure.why, "request refused");
            let mut response = text(failure.status, &failure.why);
            if failure.status == StatusCode::METHOD_NOT_ALLOWED {
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("CONNECT"));
            }
            *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(failure.why);
            response
        })
    }

    fn take_failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    async fn dial(&self, target: &Target) -> Result<ProxyStream, Failure> {
        self.dialer
            .dial(target.clone())
            .await
            .map_err(|e| Failure::dial(target, &e))
    }

    /// `CONNECT host:port`: dials, answers 200, and leaves the tunnel for after hyper.
    async fn connect(&self, mut request: Request<Incoming>) -> Result<Response<Body>, Failure> {
        let target = request
            .uri()
            .authority()
            .and_then(|authority| target_of(authority, None))
            .ok_or_else(|| {
                Failure::new(
                    StatusCode::BAD_REQUEST,
                    format!("CONNECT needs host:port, not {}", request.uri()),
                )
            })?;
        let remote = self.dial(&target).await?;
        let upgrade = hyper::upgrade::on(&mut request);
        // The receiver lives as long as the connection's task, which awaits this request.
        let _ = self.tunnels.send(Tunnel {
            upgrade,
            remote,
            target,
        });
        let mut response = Response::new(Empty::new().map_err(|never| match never {}).boxed());
        response
            .extensions_mut()
            .insert(hyper::ext::ReasonPhrase::from_static(
                b"Connection Established",
            ));
        Ok(response)
    }

    /// An absolute-form request: rewritten to origin-form and sent on a connection of its own.
    async fn forward(&self, request: Request<Incoming>) -> Result<Response<Body>, Failure> {
        let (mut head, body) = request.into_parts();
        let uri = head.uri.clone();
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(Failure::new(
                    StatusCode::BAD_REQUEST,
                    format!("{uri}: https:// goes through a CONNECT tunnel, not as a request"),
                ));
            }
            _ => {
                return Err(Failure::new(
                    StatusCode::BAD_REQUEST,
                    format!("{uri}: only http:// URLs can be proxied as requests"),
                ));
            }
        }
        let bad_target = || Failure::new(StatusCode::BAD_REQUEST, format!("{uri}: no valid host"));
        let authority = uri.authority().ok_or_else(bad_target)?;
        let target = target_of(authority, Some(80)).ok_or_else(bad_target)?;
        let path = uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let mut origin = http::uri::Parts::default();
        origin.path_and_query = Some(path);
        head.uri = Uri::from_parts(origin).map_err(|_| bad_target())?;
        head.version = Version::HTTP_11;
        drop_hop_by_hop(&mut head.headers);
        if !head.headers.contains_key(header::HOST) {
            // The authority without its user information, if it had any.
            let host = match authority.port() {
                Some(port) => format!("{}:{port}", authority.host()),
                None => authority.host().to_string(),
            };
            let host = HeaderValue::from_str(&host).map_err(|_| bad_target())?;
            head.headers.insert(header::HOST, host);
        }

        let remote = self.dial(&target).await?;
        let broke = |e: hyper::Error| {
            Failure::new(
                StatusCode::BAD_GATEWAY,
                format!("{target} broke off the request: {e}"),
            )
        };
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Body>(TokioIo::new(remote))
                .await
                .map_err(broke)?;
        // Ends when the response is read to its end and the sender is gone.
        self.spawner.spawn(async move {
            let _ = connection.await;
        });
        let outbound = self.activity.clone();
        let body: Body = body
            .map_frame(move |frame| {
                if let Some(data) = frame.data_ref() {
                    outbound
                        .bytes
                        .bytes_out
                        .fetch_add(data.len() as u64, Ordering::Relaxed);
                }
                frame
            })
            .boxed();
        let response = sender
            .send_request(Request::from_parts(head, body))
            .await
            .map_err(broke)?;
        let (mut head, body) = response.into_parts();
        drop_hop_by_hop(&mut head.headers);
        let inbound = self.activity.clone();
        let body = body
            .map_frame(move |frame| {
                if let Some(data) = frame.data_ref() {
                    inbound
                        .bytes
                        .bytes_in
                        .fetch_add(data.len() as u64, Ordering::Relaxed);
                }
                frame
            })
            .boxed();
        Ok(Response::from_parts(head, body))
    }
}

/// The destination an authority names; `default_port` when it names none.
fn target_of(authority: &Authority, default_port: Option<u16>) -> Option<Target> {
    let host = authority.host();
    // An IPv6 address comes in brackets; the dialer takes it bare.
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = authority.port_u16().or(default_port)?;
    (!host.is_empty()).then(|| Target {
        host: host.to_string(),
        port,
    })
}

/// Removes the headers that concern one hop only, those `Connection` lists included. Hyper
/// frames each hop's body itself, so `Transfer-Encoding` goes too.
fn drop_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("proxy-connection"),
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
        HeaderName::from_static("keep-alive"),
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
}

/// A plain-text answer of one line.
fn text(status: StatusCode, line: &str) -> Response<Body> {
    let body = Full::new(Bytes::from(format!("kftray proxy: {line}\n")))
        .map_err(|never| match never {})
        .boxed();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{Activity, Kind};
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Reads up to the end of a response head; returns the head and what followed it.
    async fn read_head(client: &mut TcpStream) -> (String, Vec<u8>) {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = client.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the head ended: {got:?}");
            got.extend_from_slice(&buf[..n]);
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let rest = got.split_off(end + 4);
                return (String::from_utf8(got).unwrap(), rest);
            }
        }
    }

    #[tokio::test]
    async fn curl_through_a_connect_tunnel() {
        let proxy = start(Kind::Http).await;
        let (code, out, err) = curl(&[
            "-v",
            "--proxytunnel",
            "--proxy",
            &format!("http://{}", proxy.addr),
            &format!("http://{WEB}:{}/tunnel", proxy.web.port()),
        ])
        .await;
        assert_eq!(code, 0, "{err}");
        assert!(out.starts_with("GET /tunnel host="), "{out}");
        assert!(err.contains("200 Connection Established"), "{err}");
        assert!(proxy.activity.bytes.bytes_in.load(Ordering::Relaxed) > 0);
    }

    #[tokio::test]
    async fn curl_with_absolute_urls_on_one_kept_alive_connection() {
        let proxy = start(Kind::Http).await;
        let base = format!("http://{WEB}:{}", proxy.web.port());
        let (code, out, err) = curl(&[
            "--proxy",
            &format!("http://{}", proxy.addr),
            &format!("{base}/one?a=b"),
            &format!("{base}/two"),
        ])
        .await;
        assert_eq!(code, 0, "{err}");
        let lines: Vec<&str> = out.lines().collect();
        let host = format!("host={WEB}:{}", proxy.web.port());
        assert_eq!(
            lines,
            [
                format!("GET /one?a=b {host} hop=false"),
                format!("GET /two {host} hop=false")
            ]
        );
        assert_eq!(proxy.activity.total_connections.load(Ordering::Relaxed), 1);
        assert!(proxy.activity.bytes.bytes_in.load(Ordering::Relaxed) > 0);
    }

    #[tokio::test]
    async fn a_request_body_streams_upstream() {
        let proxy = start(Kind::Http).await;
        let mut client = TcpStream::connect(proxy.addr).await.unwrap();
        let url = format!("http://{WEB}:{}/post", proxy.web.port());
        client
            .write_all(
                format!(
                    "POST {url} HTTP/1.1\r\nHost: {WEB}\r\nProxy-Connection: keep-alive\r\n\
                     Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        let (head, body) = read_head(&mut client).await;
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        let body = String::from_utf8(body).unwrap();
        assert!(
            body.starts_with(&format!("POST /post host={WEB} hop=false")),
            "{body}"
        );
        assert_eq!(proxy.activity.bytes.bytes_out.load(Ordering::Relaxed), 5);
    }

    #[tokio::test]
    async fn an_unknown_host_gets_502_with_the_reason() {
        let proxy = start(Kind::Http).await;
        let (code, out, err) = curl(&[
            "-w",
            "%{http_code}",
            "--proxy",
            &format!("http://{}", proxy.addr),
            "http://nowhere.demo.svc.cluster.local/x",
        ])
        .await;
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            out,
            "kftray proxy: cannot reach nowhere.demo.svc.cluster.local:80: no such host in \
             the cluster (nowhere.demo.svc.cluster.local)\n502"
        );
        settles_at(&proxy.activity.failed_connections, 1).await;
    }

    #[tokio::test]
    async fn connect_failures_get_their_status_and_reason() {
        let proxy = start(Kind::Http).await;
        for (target, status, reason) in [
            (
                "nowhere:443",
                "502 Bad Gateway",
                "no such host in the cluster",
            ),
            ("refused:443", "502 Bad Gateway", "connection refused"),
            ("slow:443", "504 Gateway Timeout", "timed out"),
            ("nowhere", "400 Bad Request", "CONNECT needs host:port"),
        ] {
            let mut client = TcpStream::connect(proxy.addr).await.unwrap();
            client
                .write_all(
                    format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes(),
                )
                .await
                .unwrap();
            let (head, mut body) = read_head(&mut client).await;
            assert!(
                head.starts_with(&format!("HTTP/1.1 {status}\r\n")),
                "{head}"
            );
            // The body is one line; read it in full.
            while !body.ends_with(b"\n") {
                let mut buf = [0u8; 256];
                let n = client.read(&mut buf).await.unwrap();
                assert!(n > 0);
                body.extend_from_slice(&buf[..n]);
            }
            let body = String::from_utf8(body).unwrap();
            assert!(body.contains(reason), "{target}: {body}");
        }
    }

    #[tokio::test]
    async fn bytes_sent_right_after_connect_are_carried() {
        let proxy = start(Kind::Http).await;
        let mut client = TcpStream::connect(proxy.addr).await.unwrap();
        let target = format!("echo:{}", proxy.echo.port());
        client
            .write_all(
                format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\nearly").as_bytes(),
            )
            .await
            .unwrap();
        let (head, mut rest) = read_head(&mut client).await;
        assert!(
            head.starts_with("HTTP/1.1 200 Connection Established\r\n"),
            "{head}"
        );
        assert!(
            !head.to_ascii_lowercase().contains("content-length"),
            "{head}"
        );
        while rest.len() < 5 {
            let mut buf = [0u8; 64];
            let n = client.read(&mut buf).await.unwrap();
            assert!(n > 0);
            rest.extend_from_slice(&buf[..n]);
        }
        assert_eq!(rest, b"early");
        client.write_all(b" and late").await.unwrap();
        client.shutdown().await.unwrap();
        let mut late = Vec::new();
        client.read_to_end(&mut late).await.unwrap();
        assert_eq!(late, b" and late");
    }

    #[tokio::test]
    async fn requests_not_meant_for_a_proxy_are_refused() {
        let proxy = start(Kind::Http).await;
        for (request, status) in [
            (
                "GET /path HTTP/1.1\r\nHost: x\r\n\r\n",
                "405 Method Not Allowed",
            ),
            (
                "GET https://web/ HTTP/1.1\r\nHost: web\r\n\r\n",
                "400 Bad Request",
            ),
            (
                "GET ftp://web/ HTTP/1.1\r\nHost: web\r\n\r\n",
                "400 Bad Request",
            ),
        ] {
            let mut client = TcpStream::connect(proxy.addr).await.unwrap();
            client.write_all(request.as_bytes()).await.unwrap();
            let (head, _) = read_head(&mut client).await;
            assert!(
                head.starts_with(&format!("HTTP/1.1 {status}\r\n")),
                "{request}: {head}"
            );
        }
        assert!(proxy.dialer.asked.lock().unwrap().is_empty());
    }

    #[test]
    fn hop_by_hop_headers_are_dropped_and_the_rest_kept() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "close, x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic eA=="),
            ("upgrade", "websocket"),
            ("host", "web"),
            ("x-kept", "yes"),
        ] {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        drop_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(|name| name.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["host", "x-kept"]);
    }

    #[tokio::test]
    async fn a_silent_client_is_cut_after_the_handshake_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let (mut client, local) = (client.unwrap(), accepted.unwrap().0);
        let proxy = start(Kind::Http).await;
        let patience = Duration::from_millis(300);
        let started = tokio::time::Instant::now();
        let serving = tokio::spawn(serve_connection(
            local,
            proxy.dialer.clone(),
            Arc::new(Activity::default()),
            patience,
            CancellationToken::new(),
            TaskTracker::new(),
        ));
        client.write_all(b"GET http://web").await.unwrap();
        let mut rest = Vec::new();
        let _ = client.read_to_end(&mut rest).await;
        assert!(started.elapsed() >= patience);
        let result = tokio::time::timeout(Duration::from_secs(1), serving)
            .await
            .unwrap()
            .unwrap();
        assert!(result.is_err());
    }
}
