//! Port-forward over SPDY (raw or inside WebSocket), as the kubelet serves it: the client
//! opens an error stream and a data stream per connection, paired by `requestid`.

use super::Target;
use kftray_spdy::{Headers, Incoming, Session, Stream};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncWriteExt, BufReader};

/// The kubelet's `streamCreationTimeout`: the second stream of a pair must come this soon.
const PAIR_TIMEOUT: Duration = Duration::from_secs(30);

/// Go's io.Copy buffer, which the kubelet's port-forward copies with.
const COPY_BUFFER: usize = 32 * 1024;

#[derive(Default)]
struct Half {
    error: Option<Stream>,
    data: Option<Stream>,
    port: u16,
    since: Option<Instant>,
}

/// Serves port-forward streams on a session, raw or inside WebSocket.
pub(super) async fn serve((session, mut incoming): (Session, Incoming), target: Target) {
    let target = Arc::new(target);
    let mut pairs: HashMap<String, Half> = HashMap::new();
    loop {
        let next = tokio::select! {
            next = incoming.accept() => next,
            // The pod died or a test dropped its streams: the connection goes with it, as a
            // broken connection does, without a goodbye.
            () = target.kill.cancelled() => {
                session.abort();
                return;
            }
        };
        let Some((headers, stream)) = next else { break };
        pairs.retain(|_, half| half.since.is_none_or(|t| t.elapsed() < PAIR_TIMEOUT));
        let (Some(kind), Some(port), Some(request)) = (
            header(&headers, "streamtype"),
            header(&headers, "port").and_then(|p| p.parse::<u16>().ok()),
            header(&headers, "requestid"),
        ) else {
            // Without a type, port and request id the stream cannot be paired; kubectl
            // always sends all three.
            continue;
        };
        let half = pairs.entry(request.to_string()).or_default();
        half.port = port;
        half.since.get_or_insert_with(Instant::now);
        match kind {
            "error" => half.error = Some(stream),
            "data" => half.data = Some(stream),
            _ => continue,
        }
        if half.error.is_some() && half.data.is_some() {
            let Half {
                error, data, port, ..
            } = pairs.remove(request).unwrap_or_default();
            if let (Some(error), Some(data)) = (error, data) {
                tokio::spawn(forward(error, data, port, target.clone(), session.clone()));
            }
        }
    }
    session.close().await;
}

fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// One local connection: dial the pod's port and carry bytes until both sides are done.
async fn forward(
    mut error: Stream,
    mut data: Stream,
    port: u16,
    target: Arc<Target>,
    session: Session,
) {
    let backend = match target.dial(port).await {
        Ok(backend) => backend,
        Err(message) => {
            let _ = error.write_all(message.as_bytes()).await;
            let _ = error.shutdown().await;
            let _ = data.shutdown().await;
            return;
        }
    };
    let (from_client, mut to_client) = tokio::io::split(data);
    let (from_pod, mut to_pod) = backend.into_split();
    // The kubelet copies with Go's io.Copy, whose 32 KiB buffer sets the DATA frames' size
    // (tokio's copy would make them 8 KiB).
    let mut from_client = BufReader::with_capacity(COPY_BUFFER, from_client);
    let mut from_pod = BufReader::with_capacity(COPY_BUFFER, from_pod);
    let upstream = async {
        let _ = tokio::io::copy_buf(&mut from_client, &mut to_pod).await;
        let _ = to_pod.shutdown().await;
    };
    let downstream = async {
        let _ = tokio::io::copy_buf(&mut from_pod, &mut to_client).await;
        let _ = to_client.shutdown().await;
    };
    tokio::select! {
        _ = async { tokio::join!(upstream, downstream) } => {}
        // Aborted before the streams drop, so no FIN makes the loss look like a clean end.
        () = target.kill.cancelled() => {
            session.abort();
            return;
        }
    }
    // A clean finish: the error stream closes without a message.
    let _ = error.shutdown().await;
}
