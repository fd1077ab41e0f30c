//! The kubelet's port-forward, as the API server relays it: three ways in, one behaviour.
//!
//! 1. WebSocket `SPDY/3.1+portforward.k8s.io` (kubectl ≥ 1.31): SPDY inside binary messages.
//! 2. `POST` upgraded to raw SPDY/3.1 (kubectl's fallback, `KUBECTL_PORT_FORWARD_WEBSOCKETS=false`).
//! 3. WebSocket `v4.channel.k8s.io` (kube-rs): ports fixed by the query, one connection each.
//!
//! Every mode dials the pod's port on the backend the simulated pod runs, carries bytes both
//! ways, reports a refused port with the kubelet's message on the error stream, and drops
//! everything when the pod dies.

mod channel;
mod spdy;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

pub const SPDY_OVER_WEBSOCKET: &str = "SPDY/3.1+portforward.k8s.io";
pub const CHANNEL_V4: &str = "v4.channel.k8s.io";

/// How long dialing the pod's port may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Target {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    /// Container port -> local address of the backend serving it (None: nothing listens).
    pub resolve: Arc<dyn Fn(u16) -> Option<SocketAddr> + Send + Sync>,
    /// Cancelled when a test drops every port-forward stream of this pod, or the pod dies.
    pub kill: tokio_util::sync::CancellationToken,
}

impl Target {
    /// Connects to the pod's port, or gives the kubelet's error text for it.
    async fn dial(&self, port: u16) -> Result<tokio::net::TcpStream, String> {
        let refused = || {
            format!(
                "error forwarding port {port} to pod {uid}, uid : failed to execute portforward in \
                 network namespace \"/var/run/netns/cni-{uid}\": failed to connect to localhost:{port} \
                 inside namespace \"{uid}\", IPv4: dial tcp4 127.0.0.1:{port}: connect: connection \
                 refused IPv6 dial tcp6 [::1]:{port}: connect: connection refused ",
                uid = self.uid
            )
        };
        let addr = (self.resolve)(port).ok_or_else(refused)?;
        match tokio::time::timeout(DIAL_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                Ok(stream)
            }
            _ => Err(refused()),
        }
    }
}

/// Answers an authorized port-forward request: 101 and a task that serves the upgraded
/// connection, or the error the API server would give.
pub fn handle(req: hyper::Request<Incoming>, target: Target) -> hyper::Response<Full<Bytes>> {
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if req.method() == Method::POST && upgrade == "spdy/3.1" {
        return raw_spdy(req, target);
    }
    if req.method() == Method::GET && upgrade == "websocket" {
        return websocket(req, target);
    }
    bad_request("unable to upgrade connection: missing upgrade headers in request")
}

fn raw_spdy(req: hyper::Request<Incoming>, target: Target) -> hyper::Response<Full<Bytes>> {
    let version = req
        .headers()
        .get("X-Stream-Protocol-Version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !version.split(',').any(|v| v.trim() == "portforward.k8s.io") {
        return bad_request(&format!(
            "unable to upgrade: unable to negotiate protocol: client supports {version:?}, server supports [portforward.k8s.io]"
        ));
    }
    tokio::spawn(async move {
        if let Ok(upgraded) = hyper::upgrade::on(req).await {
            let session = kftray_spdy::Session::new(
                hyper_util::rt::TokioIo::new(upgraded),
                kftray_spdy::Role::Server,
                kftray_spdy::SessionConfig::default(),
            );
            spdy::serve(session, target).await;
        }
    });
    let mut response = hyper::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    headers.insert(
        "X-Stream-Protocol-Version",
        HeaderValue::from_static("portforward.k8s.io"),
    );
    response
}

fn websocket(req: hyper::Request<Incoming>, target: Target) -> hyper::Response<Full<Bytes>> {
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return bad_request("unable to upgrade connection: missing Sec-WebSocket-Key");
    };
    // The kubelet picks in the client's order among what it supports; it never offers v5
    // for port-forward.
    let offered: Vec<String> = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .collect();
    let Some(protocol) = offered
        .iter()
        .find(|p| *p == SPDY_OVER_WEBSOCKET || *p == CHANNEL_V4)
        .cloned()
    else {
        return bad_request(&format!(
            "unable to upgrade connection: none of the requested protocols {offered:?} is supported \
             ({SPDY_OVER_WEBSOCKET}, {CHANNEL_V4})"
        ));
    };
    let ports = if protocol == CHANNEL_V4 {
        match channel::ports(req.uri().query().unwrap_or_default()) {
            Ok(ports) => ports,
            Err(why) => return bad_request(&why),
        }
    } else {
        Vec::new()
    };
    let accept = derive_accept_key(key.as_bytes());
    let chosen = protocol.clone();
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else {
            return;
        };
        let io = hyper_util::rt::TokioIo::new(upgraded);
        if chosen == CHANNEL_V4 {
            let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                io,
                tokio_tungstenite::tungstenite::protocol::Role::Server,
                None,
            )
            .await;
            channel::serve(ws, ports, target).await;
        } else {
            let session = kftray_spdy::Session::over_websocket(
                io,
                kftray_spdy::Role::Server,
                kftray_spdy::SessionConfig::default(),
            );
            spdy::serve(session, target).await;
        }
    });
    let mut response = hyper::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Ok(protocol) = HeaderValue::from_str(&protocol) {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    response
}

fn bad_request(message: &str) -> hyper::Response<Full<Bytes>> {
    let status = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "BadRequest",
        "code": 400
    });
    let mut response = hyper::Response::new(Full::new(Bytes::from(status.to_string())));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
