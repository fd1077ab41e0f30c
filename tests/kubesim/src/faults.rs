//! Faults on demand for reliability tests: failing, slow, stalled or dropped API
//! connections, a restarted API server, killed pods and dropped port-forward streams.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::status::ApiError;

#[derive(Default)]
pub(crate) struct FaultState {
    fail_next: AtomicU32,
    fail_code: AtomicU32,
    latency_ms: AtomicU64,
    stalled: Mutex<Option<watch::Sender<bool>>>,
    // Cancelled to drop every open API connection; replaced by a fresh token each time.
    connections: Mutex<CancellationToken>,
}

impl FaultState {
    pub(crate) fn connections_token(&self) -> CancellationToken {
        self.connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn drop_connections(&self) {
        let mut t = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        t.cancel();
        *t = CancellationToken::new();
    }

    /// Applied before a request is served: latency, a stall, or an injected error.
    pub(crate) async fn before_request(&self) -> Option<ApiError> {
        let ms = self.latency_ms.load(Ordering::Relaxed);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let stall = self
            .stalled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|s| s.subscribe());
        if let Some(mut rx) = stall {
            let _ = rx.wait_for(|stalled| !*stalled).await;
        }
        let take = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if !take {
            return None;
        }
        Some(match self.fail_code.load(Ordering::Relaxed) {
            429 => ApiError::new(
                429,
                "TooManyRequests",
                "Too many requests, please try again later.",
            ),
            503 => ApiError::new(
                503,
                "ServiceUnavailable",
                "The server is currently unable to handle the request",
            ),
            _ => ApiError::new(
                500,
                "InternalError",
                "Internal error occurred: kubesim injected fault",
            ),
        })
    }
}

/// The fault handle of a cluster (see `Cluster::faults`).
#[derive(Clone)]
pub struct Faults {
    pub(crate) state: Arc<FaultState>,
    pub(crate) cluster: crate::cluster::Weak,
}

impl Faults {
    /// The next `n` API requests get `code` (500, 429 with Retry-After, or 503) as a Status.
    pub fn fail_next(&self, n: u32, code: u16) {
        self.state
            .fail_code
            .store(u32::from(code), Ordering::SeqCst);
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    /// Delay every API request by `d` (zero to stop).
    pub fn set_latency(&self, d: Duration) {
        self.state
            .latency_ms
            .store(d.as_millis() as u64, Ordering::Relaxed);
    }

    /// While stalled, API requests are accepted but not answered.
    pub fn stall(&self, on: bool) {
        let mut s = self.state.stalled.lock().unwrap_or_else(|e| e.into_inner());
        if on {
            if s.is_none() {
                *s = Some(watch::channel(true).0);
            }
        } else if let Some(tx) = s.take() {
            let _ = tx.send(false);
        }
    }

    /// Closes every open API connection (watches included) without a response.
    pub fn drop_api_connections(&self) {
        self.state.drop_connections();
    }

    /// Stops the API server and starts it again on the same port; clients see their
    /// connections reset and, for the moment between, refused connections.
    pub async fn restart_api(&self) -> std::io::Result<()> {
        match self.cluster.upgrade() {
            Some(c) => c.restart_api().await,
            None => Err(std::io::Error::other("cluster is gone")),
        }
    }

    /// Kills a pod: its backends stop and the pod object goes away at once; a controller
    /// that owns it makes a replacement.
    pub async fn kill_pod(&self, ns: &str, pod: &str) -> bool {
        match self.cluster.upgrade() {
            Some(c) => c.kill_pod(ns, pod).await,
            None => false,
        }
    }

    /// Drops every port-forward stream of a pod; the pod itself keeps running.
    pub fn drop_portforwards(&self, ns: &str, pod: &str) -> bool {
        self.cluster
            .upgrade()
            .is_some_and(|c| c.runtime.drop_portforwards(ns, pod))
    }
}
