//! The connections accepted on listens' ports that wait for their attach, by connection id:
//! shared by every listen and attach of the relay.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Connections of one listen waiting for their attach; more are reset at once.
pub(super) const MAX_PARKED: usize = 64;

/// The connections accepted on every listen's port and not attached yet, by connection id.
pub(super) struct Parked {
    next: AtomicU32,
    waiting: Mutex<HashMap<u32, Waiting>>,
}

pub(super) struct Waiting {
    pub(super) conn: TcpStream,
    pub(super) from: SocketAddr,
    pub(super) port: u16,
    /// Tells the listen it came in on that the in-cluster client finished sending: the
    /// connection id and the bytes it sent.
    pub(super) ends: mpsc::UnboundedSender<(u32, u64)>,
}

impl Parked {
    pub(super) fn new() -> Parked {
        Parked {
            next: AtomicU32::new(1),
            waiting: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, HashMap<u32, Waiting>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps a connection under a new id, unique within the process.
    pub(super) fn park(
        &self,
        conn: TcpStream,
        from: SocketAddr,
        port: u16,
        ends: mpsc::UnboundedSender<(u32, u64)>,
    ) -> u32 {
        let mut waiting = self.lock();
        let mut id = self.next.fetch_add(1, Ordering::Relaxed);
        // After 2^32 connections the ids wrap; skip any still waiting.
        while waiting.contains_key(&id) {
            id = self.next.fetch_add(1, Ordering::Relaxed);
        }
        waiting.insert(
            id,
            Waiting {
                conn,
                from,
                port,
                ends,
            },
        );
        id
    }

    pub(super) fn take(&self, id: u32) -> Option<Waiting> {
        self.lock().remove(&id)
    }
}
