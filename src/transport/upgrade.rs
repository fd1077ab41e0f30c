//! The three HTTP upgrades that open a port-forward connection to a pod, in kubectl's order
//! of preference. All go through the kube client, so credentials (tokens, client
//! certificates, exec plugins), TLS settings and proxies apply exactly as for API calls.

use crate::error_chain::error_chain;
use http::{HeaderValue, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use kube::client::Body;
use std::time::Duration;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// What kubectl ≥ 1.31 asks for first: SPDY framed inside WebSocket binary messages.
pub const SPDY_OVER_WEBSOCKET: &str = "SPDY/3.1+portforward.k8s.io";
/// The channel protocol: one connection per port and per local connection.
pub const CHANNEL_V4: &str = "v4.channel.k8s.io";

pub type Io = TokioIo<hyper::upgrade::Upgraded>;

#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// The server answered without switching protocols: its status says why (403, 404, a
    /// pod that is not running); the next kind of upgrade may still work if it refused the
    /// protocol rather than the request.
    #[error("{status}: {message}")]
    Refused { status: StatusCode, message: String },
    #[error("the server switched protocols wrongly: {0}")]
    BadHandshake(#[from] Handshake),
    #[error("no answer to the upgrade within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Transport(String),
}

/// What was wrong with a 101 Switching Protocols answer.
#[derive(Debug, thiserror::Error)]
pub enum Handshake {
    #[error("Connection is not Upgrade")]
    NotUpgrade,
    #[error("Upgrade is not {wanted}")]
    OtherUpgrade { wanted: &'static str },
    #[error("wrong Sec-WebSocket-Accept")]
    WrongAccept,
    #[error("chose protocol {chosen:?}, not {wanted}")]
    OtherProtocol {
        chosen: String,
        wanted: &'static str,
    },
    #[error("did not agree to {wanted}")]
    NotAgreed { wanted: &'static str },
}

impl UpgradeError {
    /// Whether another kind of upgrade is worth trying, as kubectl's fallback dialer decides:
    /// a refused or mangled upgrade is, a denied permission or a missing pod is not.
    pub fn is_protocol_refusal(&self) -> bool {
        match self {
            UpgradeError::Refused { status, .. } => !matches!(
                *status,
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
            ),
            UpgradeError::BadHandshake(_) => true,
            UpgradeError::Timeout(_) | UpgradeError::Transport(_) => false,
        }
    }
}

/// The path of a pod's portforward subresource.
pub fn portforward_path(namespace: &str, pod: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/pods/{pod}/portforward")
}

/// A WebSocket upgrade offering exactly `protocol`; `query` is appended to the path as is.
/// Returns the upgraded connection, which speaks WebSocket frames from here on.
pub async fn websocket(
    client: &kube::Client,
    path: &str,
    query: &str,
    protocol: &'static str,
    deadline: Duration,
) -> Result<Io, UpgradeError> {
    let key = generate_key();
    let request = || {
        Request::get(format!("{path}{query}"))
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_VERSION, "13")
            .header(header::SEC_WEBSOCKET_KEY, &key)
            .header(header::SEC_WEBSOCKET_PROTOCOL, protocol)
            .body(Body::from(Vec::new()))
    };
    upgrade(client, request, deadline, |response| {
        let headers = response.headers();
        let accept = derive_accept_key(key.as_bytes());
        if !header_is(headers.get(header::UPGRADE), "websocket") {
            return Err(Handshake::OtherUpgrade {
                wanted: "websocket",
            });
        }
        if headers
            .get(header::SEC_WEBSOCKET_ACCEPT)
            .map(HeaderValue::as_bytes)
            != Some(accept.as_bytes())
        {
            return Err(Handshake::WrongAccept);
        }
        match headers.get(header::SEC_WEBSOCKET_PROTOCOL) {
            Some(p) if p.as_bytes() == protocol.as_bytes() => Ok(()),
            Some(p) => Err(Handshake::OtherProtocol {
                chosen: String::from_utf8_lossy(p.as_bytes()).into_owned(),
                wanted: protocol,
            }),
            None => Err(Handshake::NotAgreed { wanted: protocol }),
        }
    })
    .await
}

/// kubectl's fallback: a POST upgraded to raw SPDY/3.1.
pub async fn raw_spdy(
    client: &kube::Client,
    path: &str,
    deadline: Duration,
) -> Result<Io, UpgradeError> {
    let request = || {
        Request::post(path)
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "SPDY/3.1")
            .header("X-Stream-Protocol-Version", "portforward.k8s.io")
            .header(header::CONTENT_LENGTH, "0")
            .body(Body::from(Vec::new()))
    };
    upgrade(client, request, deadline, |response| {
        let headers = response.headers();
        if !header_is(headers.get(header::UPGRADE), "SPDY/3.1") {
            return Err(Handshake::OtherUpgrade { wanted: "SPDY/3.1" });
        }
        match headers.get("X-Stream-Protocol-Version") {
            Some(v) if v.as_bytes() == b"portforward.k8s.io" => Ok(()),
            _ => Err(Handshake::NotAgreed {
                wanted: "portforward.k8s.io",
            }),
        }
    })
    .await
}

async fn upgrade(
    client: &kube::Client,
    request: impl Fn() -> http::Result<Request<Body>>,
    deadline: Duration,
    check: impl FnOnce(&http::Response<Body>) -> Result<(), Handshake>,
) -> Result<Io, UpgradeError> {
    let exchange = async {
        let request = || request().map_err(|e| UpgradeError::Transport(e.to_string()));
        // A kept-alive connection the server closes as the request goes out (an API server
        // closes the connection of a refused upgrade just after answering it) ends before
        // any answer. Go's client, and so kubectl, sends the request again on a fresh
        // connection then; hyper leaves that to us. An upgrade changes nothing until it
        // succeeds, so sending it twice is safe.
        let response = match client.send(request()?).await {
            Err(e) if closed_before_answering(&e) => client.send(request()?).await,
            sent => sent,
        }
        .map_err(|e| UpgradeError::Transport(error_chain(&e)))?;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(refused(response).await);
        }
        if !header_is(response.headers().get(header::CONNECTION), "upgrade") {
            return Err(Handshake::NotUpgrade.into());
        }
        check(&response)?;
        let upgraded = hyper::upgrade::on(response)
            .await
            .map_err(|e| UpgradeError::Transport(error_chain(&e)))?;
        Ok(TokioIo::new(upgraded))
    };
    tokio::time::timeout(deadline, exchange)
        .await
        .map_err(|_| UpgradeError::Timeout(deadline))?
}

/// Whether `error` is a connection that ended before an answer began.
fn closed_before_answering(error: &kube::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>() {
            return hyper.is_incomplete_message();
        }
        source = cause.source();
    }
    false
}

/// The server's reason, from its `metav1.Status` body where it sent one.
async fn refused(response: http::Response<Body>) -> UpgradeError {
    use http_body_util::BodyExt;
    let status = response.status();
    let body =
        match tokio::time::timeout(Duration::from_secs(5), response.into_body().collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            _ => Default::default(),
        };
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
    UpgradeError::Refused { status, message }
}

fn header_is(value: Option<&HeaderValue>, wanted: &str) -> bool {
    value
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(wanted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{TcpListener, TcpStream};

    /// Reads one request head (these have no bodies); false at the end of the connection.
    async fn read_head(conn: &mut BufReader<TcpStream>) -> bool {
        let mut line = String::new();
        loop {
            line.clear();
            if conn.read_line(&mut line).await.unwrap() == 0 {
                return false;
            }
            if line == "\r\n" {
                return true;
            }
        }
    }

    /// A server that answers one request on a connection, then closes it once the next
    /// request has arrived, as an API server does after refusing an upgrade; the next
    /// connection is upgraded.
    async fn closing_server() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (first, _) = listener.accept().await.unwrap();
            let mut first = BufReader::new(first);
            assert!(read_head(&mut first).await);
            first
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await
                .unwrap();
            assert!(read_head(&mut first).await);
            drop(first);
            let (second, _) = listener.accept().await.unwrap();
            let mut second = BufReader::new(second);
            assert!(read_head(&mut second).await);
            second
                .write_all(
                    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\
                      Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n",
                )
                .await
                .unwrap();
            std::future::pending::<()>().await;
        });
        url
    }

    #[tokio::test]
    async fn an_upgrade_whose_kept_alive_connection_closes_is_sent_again() {
        let url = closing_server().await;
        let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
        let probe = Request::get("/version").body(Body::empty()).unwrap();
        let answer = client.send(probe).await.unwrap();
        answer.into_body().collect().await.unwrap();

        raw_spdy(&client, "/portforward", Duration::from_secs(10))
            .await
            .expect("the upgrade was not sent again on a fresh connection");
    }
}
