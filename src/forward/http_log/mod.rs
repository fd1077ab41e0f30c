//! HTTP traffic logs: what goes through a forward with `http_log` on, read as it streams
//! past and written to `$KFTRAY_HOME/http_logs/<project>/<alias>.http`.
//!
//! The tap ([`Tap`]) reads a copy of each chunk both ways and never holds traffic up; the
//! entries go to a writer thread ([`Sink`]) through a bounded queue. A forward without a log
//! carries its bytes through `splice` with no tap at all.

mod format;
mod parse;
mod record;
mod tap;
mod writer;

pub use format::{SUMMARY, Summary};
pub use tap::Tap;
pub use writer::Sink;
use writer::Writing;

use crate::config::HttpLog;
use crate::state::file_name_of;
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// The directory of a project's HTTP logs.
pub fn dir_of(home: &Path, project: &str) -> PathBuf {
    home.join("http_logs")
        .join(file_name_of(project).trim_start_matches('_'))
}

/// The log file of an alias (every port of a `ports` list shares it).
pub fn file_of(dir: &Path, alias: &str) -> PathBuf {
    dir.join(format!("{alias}.http"))
}

/// The open logs of a run, one writer per alias however many forwards share it.
#[derive(Debug)]
pub struct HttpLogs {
    dir: PathBuf,
    open: Mutex<BTreeMap<String, Weak<Sink>>>,
    writers: Mutex<Vec<Writing>>,
}

impl HttpLogs {
    pub fn new(dir: PathBuf) -> HttpLogs {
        HttpLogs {
            dir,
            open: Mutex::default(),
            writers: Mutex::default(),
        }
    }

    /// Waits (up to `within`) for the writers to write what they were sent: their forwards
    /// are stopped, and the process is about to end, which would cut them short. A
    /// connection still open then has sent what it finished; the rest is cut with it.
    pub async fn finish(&self, within: Duration) {
        let started = Instant::now();
        let mut writers =
            std::mem::take(&mut *self.writers.lock().unwrap_or_else(|p| p.into_inner()));
        while started.elapsed() < within {
            writers.retain(|w| !w.is_idle());
            if writers.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The log of `alias`: the one open now if its settings are the same, else a new one.
    pub fn open(&self, alias: &str, settings: &HttpLog) -> io::Result<Arc<Sink>> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|_, sink| sink.strong_count() > 0);
        if let Some(sink) = open.get(alias).and_then(Weak::upgrade)
            && sink.settings() == settings
        {
            return Ok(sink);
        }
        let (sink, writer) = Sink::start(file_of(&self.dir, alias), settings.clone())?;
        let sink = Arc::new(sink);
        open.insert(alias.to_owned(), Arc::downgrade(&sink));
        let mut writers = self.writers.lock().unwrap_or_else(|p| p.into_inner());
        writers.retain(|w| !w.is_done());
        writers.push(writer);
        Ok(sink)
    }
}

impl Sink {
    /// A tap for one connection accepted on `local`.
    pub fn tap(self: &Arc<Self>, local: SocketAddr) -> Tap {
        Tap::new(self.clone(), local)
    }
}
