//! What every connection task shares: the settings, the resolver, whether a client is around
//! (for the idle exit), the connections of listens waiting for their attach, and the ends
//! clients tell of attached ones.

use super::parked::Parked;
use super::resolve::Resolver;
use super::settings::Settings;
use kftray_relay::attached::Told;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

pub(super) struct Shared {
    pub settings: Settings,
    pub resolver: Resolver,
    pub clients: Clients,
    pub parked: Parked,
    pub told: Told,
}

/// Whether a client is around: sessions open now, and when one was last heard from.
pub(super) struct Clients {
    open: AtomicUsize,
    last_heard: Mutex<Instant>,
}

impl Clients {
    pub(super) fn new() -> Clients {
        Clients {
            open: AtomicUsize::new(0),
            last_heard: Mutex::new(Instant::now()),
        }
    }

    pub(super) fn heard(&self) {
        *self.last_heard.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// Counts a session (or a listen) as open until the guard drops.
    pub(super) fn session(&self) -> SessionGuard<'_> {
        self.open.fetch_add(1, Ordering::SeqCst);
        self.heard();
        SessionGuard(self)
    }

    /// How long no session has been open; zero while one is.
    pub(super) fn idle(&self) -> Duration {
        if self.open.load(Ordering::SeqCst) > 0 {
            return Duration::ZERO;
        }
        self.last_heard
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }
}

pub(super) struct SessionGuard<'a>(&'a Clients);

impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        self.0.heard();
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}
