//! Noticing that the user's files changed, however an editor saves them.
//!
//! The watch is on the folder, not the files: editors replace a file by writing a temporary
//! and renaming it over (most), by moving the original away and writing a new one (vim's
//! backup copy), or by deleting and re-creating it (git checkout, some tools); a watch on the
//! file itself would follow the old inode and go deaf. Any event naming one of the files starts
//! a short quiet period; when nothing more happens for that long the change is reported, with
//! the time of the last event. The files are then re-read and compared by content, so a
//! spurious event costs one read and nothing else.

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long the folder must stay quiet before a change is reported: long enough for an
/// editor's save (rename, write, delete of a backup) to finish, short against the 300 ms a
/// reload may take.
const QUIET: Duration = Duration::from_millis(60);

/// A change to some of the watched files.
#[derive(Debug)]
pub struct Changed {
    /// The watched files that events named.
    pub files: BTreeSet<PathBuf>,
    /// When the last event arrived: the reload's latency is measured from here.
    pub last_event: Instant,
}

pub struct FileWatcher {
    // Dropping the watcher ends the watch.
    _watcher: RecommendedWatcher,
    events: mpsc::UnboundedReceiver<PathBuf>,
    /// Files named by events of a burst not yet over, and when the last one came.
    pending: Option<(BTreeSet<PathBuf>, Instant)>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot watch {dir} for changes: {source}")]
pub struct WatchError {
    dir: PathBuf,
    source: notify::Error,
}

impl FileWatcher {
    /// Watches `files` (all in one folder, which must exist).
    pub fn new(files: &[PathBuf]) -> Result<FileWatcher, WatchError> {
        let dir = files
            .first()
            .and_then(|f| f.parent())
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let names: Vec<(OsString, PathBuf)> = files
            .iter()
            .filter_map(|f| Some((f.file_name()?.to_owned(), f.clone())))
            .collect();
        let (tx, events) = mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let event = match event {
                    Ok(event) => event,
                    Err(e) => {
                        tracing::warn!("file watch: {e}");
                        return;
                    }
                };
                // Reading a file (an editor, this process) is not a change.
                if matches!(event.kind, EventKind::Access(_)) {
                    return;
                }
                for path in &event.paths {
                    let Some(name) = path.file_name() else {
                        continue;
                    };
                    if let Some((_, file)) = names.iter().find(|(n, _)| n == name) {
                        let _ = tx.send(file.clone());
                    }
                }
            })
            .map_err(|source| WatchError {
                dir: dir.clone(),
                source,
            })?;
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|source| WatchError { dir, source })?;
        Ok(FileWatcher {
            _watcher: watcher,
            events,
            pending: None,
        })
    }

    /// The next change, once the folder has been quiet for a moment. Cancel-safe: events
    /// already seen stay pending in `self` if the caller stops waiting.
    pub async fn changed(&mut self) -> Changed {
        loop {
            let Some((_, last)) = &self.pending else {
                let Some(file) = self.events.recv().await else {
                    // The watcher's thread is gone: never report again rather than spin.
                    return std::future::pending().await;
                };
                self.pending = Some((BTreeSet::from([file]), Instant::now()));
                continue;
            };
            match tokio::time::timeout_at(*last + QUIET, self.events.recv()).await {
                Ok(Some(file)) => {
                    if let Some((files, last)) = &mut self.pending {
                        files.insert(file);
                        *last = Instant::now();
                    }
                }
                Ok(None) | Err(_) => {
                    let (files, last_event) = self
                        .pending
                        .take()
                        .unwrap_or_else(|| (BTreeSet::new(), Instant::now()));
                    return Changed { files, last_event };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn next(watcher: &mut FileWatcher) -> Changed {
        tokio::time::timeout(Duration::from_secs(10), watcher.changed())
            .await
            .expect("no change reported")
    }

    #[tokio::test]
    async fn a_rename_over_the_file_and_a_delete_are_changes_other_files_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("kftray.toml");
        let local = dir.path().join("kftray.local.toml");
        std::fs::write(&main, "a").unwrap();
        let mut watcher = FileWatcher::new(&[main.clone(), local.clone()]).unwrap();

        std::fs::write(dir.path().join("other.txt"), "x").unwrap();
        let tmp = dir.path().join(".kftray.toml.swp");
        std::fs::write(&tmp, "b").unwrap();
        std::fs::rename(&tmp, &main).unwrap();
        let changed = next(&mut watcher).await;
        assert_eq!(changed.files, BTreeSet::from([main.clone()]));

        std::fs::write(&local, "c").unwrap();
        std::fs::remove_file(&local).unwrap();
        let changed = next(&mut watcher).await;
        assert_eq!(changed.files, BTreeSet::from([local]));
    }
}
