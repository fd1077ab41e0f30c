//! What asks a long run to stop or to look again, from outside: SIGINT (Ctrl-C) and SIGTERM
//! stop it, SIGUSR1 (`kftray up NAMES` or `down NAMES` from another terminal) nudges it. On
//! Windows Ctrl-C stops it, and a nudge is never sent: the run reads its overrides every
//! second anyway.

use std::io;

pub struct Stop {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Stop {
    pub fn watch() -> io::Result<Stop> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Stop {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Stop {})
    }

    /// Waits until the run is asked to stop; says how ("interrupted", "terminated").
    pub async fn asked(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => "interrupted",
                _ = self.terminate.recv() => "terminated",
            }
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => "interrupted",
                // Without a console nothing interrupts it; `kftray down` ends it.
                Err(_) => std::future::pending().await,
            }
        }
    }
}

pub struct Nudge {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Nudge {
    pub fn watch() -> io::Result<Nudge> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Nudge {
                signal: signal(SignalKind::user_defined1())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Nudge {})
    }

    pub async fn received(&mut self) {
        #[cfg(unix)]
        self.signal.recv().await;
        #[cfg(not(unix))]
        std::future::pending::<()>().await;
    }
}
