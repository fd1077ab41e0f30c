//! What stops the relay from outside: SIGTERM (the kubelet deleting its pod) or SIGINT, and
//! Ctrl-C where there are no such signals (a relay run by hand on Windows).

use std::io;

pub(super) struct Stop {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl Stop {
    pub(super) fn watch() -> io::Result<Stop> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Stop {
                terminate: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Stop {})
    }

    /// Waits for the next stop, and says which it was.
    pub(super) async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.terminate.recv() => "terminated",
                _ = self.interrupt.recv() => "interrupted",
            }
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => "interrupted",
                // No console to be interrupted from: only the idle exit ends it.
                Err(_) => std::future::pending().await,
            }
        }
    }
}
