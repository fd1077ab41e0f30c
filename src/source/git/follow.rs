//! Following a ref: fetch every interval, report each commit's file; after a failure, retry
//! with backoff (never slower than the interval) while the last good file keeps running.

use super::cache::{Cache, RemoteFile, Unreadable};
use super::credentials::Credentials;
use super::error::GitError;
use super::url::RepoUrl;
use crate::backoff::Backoff;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;

/// What to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSpec {
    pub url: RepoUrl,
    /// Branch, tag, commit id, or `HEAD` (the remote's default branch).
    pub reference: String,
    /// The file's path in the repository.
    pub path: PathBuf,
    pub interval: Duration,
}

/// One poll's outcome.
#[derive(Debug)]
pub enum Polled {
    /// The fetch went through: the ref's commit and its file (or why the file is unusable).
    Fetched(Result<RemoteFile, Unreadable>),
    /// The fetch failed (the server is unreachable, refused the credentials...).
    Failed(GitError),
}

/// What is known when following starts.
#[derive(Debug)]
pub struct Initial {
    /// The newest commit known: fetched now, or from the cache when the fetch failed.
    pub latest: Result<RemoteFile, Unreadable>,
    /// The commit that last ran, when it is not the newest.
    pub applied: Option<RemoteFile>,
    /// Why the fetch failed, when the cache had to do.
    pub sync_error: Option<GitError>,
}

pub struct Follower {
    pub spec: GitSpec,
    cache: Arc<Mutex<Cache>>,
    polls: mpsc::Receiver<Polled>,
    /// Held only to end the task with this value.
    _task: AbortOnDropHandle<()>,
}

impl Follower {
    /// Fetches once (falling back on the cache), then polls in the background. Fails only
    /// when there is neither network nor cache: nothing to run.
    pub async fn start(home: &Path, spec: GitSpec) -> Result<(Follower, Initial), GitError> {
        let (home, first) = (home.to_path_buf(), spec.clone());
        let (cache, initial) = blocking(move || {
            let cache = Cache::open(&home, &first.url)?;
            let fetched = fetch(&cache, &first);
            let (commit, sync_error) = match fetched {
                Ok(commit) => (commit, None),
                Err(error) => match cache.last_fetched(&first.reference) {
                    Some(commit) => (commit, Some(error)),
                    None => {
                        return Err(GitError::NoCopy {
                            repo: first.url.display.clone(),
                            cause: Box::new(error),
                        });
                    }
                },
            };
            let latest = cache.read(&commit, &first.path);
            let applied = cache
                .last_applied(&first.reference)
                .filter(|applied| *applied != commit)
                .and_then(|applied| cache.read(&applied, &first.path).ok());
            Ok((
                cache,
                Initial {
                    latest,
                    applied,
                    sync_error,
                },
            ))
        })
        .await?;
        let cache = Arc::new(Mutex::new(cache));
        let (tx, polls) = mpsc::channel(4);
        let failing = initial.sync_error.is_some();
        let task =
            AbortOnDropHandle::new(tokio::spawn(poll(cache.clone(), spec.clone(), tx, failing)));
        Ok((
            Follower {
                spec,
                cache,
                polls,
                _task: task,
            },
            initial,
        ))
    }

    pub async fn next(&mut self) -> Polled {
        match self.polls.recv().await {
            Some(polled) => polled,
            None => std::future::pending().await,
        }
    }

    /// What records which commit runs, for the `Update`s built on this follower.
    pub fn marker(&self) -> AppliedMarker {
        AppliedMarker {
            cache: self.cache.clone(),
            reference: self.spec.reference.clone(),
        }
    }
}

/// Records in the cache that a commit's file runs, so that a start without network runs it
/// again (and not an older one) when the newest commit cannot be used.
#[derive(Clone)]
pub struct AppliedMarker {
    cache: Arc<Mutex<Cache>>,
    reference: String,
}

impl std::fmt::Debug for AppliedMarker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AppliedMarker({})", self.reference)
    }
}

impl AppliedMarker {
    pub async fn mark(&self, commit: &str) {
        let (cache, reference, commit) = (
            self.cache.clone(),
            self.reference.clone(),
            commit.to_owned(),
        );
        let done = blocking(move || lock(&cache).set_applied(&reference, &commit)).await;
        if let Err(e) = done {
            tracing::warn!("git cache: cannot record the applied commit: {e}");
        }
    }
}

async fn poll(
    cache: Arc<Mutex<Cache>>,
    spec: GitSpec,
    tx: mpsc::Sender<Polled>,
    mut failing: bool,
) {
    let mut backoff = Backoff::new(Duration::from_secs(1).min(spec.interval), spec.interval);
    loop {
        let delay = if failing {
            backoff.next_delay()
        } else {
            spec.interval
        };
        tokio::time::sleep(delay).await;
        let (cache, spec) = (cache.clone(), spec.clone());
        let polled = blocking(move || {
            let cache = lock(&cache);
            Ok(match fetch(&cache, &spec) {
                Ok(commit) => Polled::Fetched(cache.read(&commit, &spec.path)),
                Err(error) => Polled::Failed(error),
            })
        })
        .await
        .unwrap_or_else(Polled::Failed);
        failing = matches!(polled, Polled::Failed(_));
        if !failing {
            backoff.reset();
        }
        if tx.send(polled).await.is_err() {
            return;
        }
    }
}

fn fetch(cache: &Cache, spec: &GitSpec) -> Result<String, GitError> {
    let started = std::time::Instant::now();
    let result = cache.fetch(&spec.url, &spec.reference, &mut Credentials::new(&spec.url));
    tracing::debug!(
        repo = %spec.url.display,
        reference = %spec.reference,
        elapsed_ms = started.elapsed().as_millis() as u64,
        ok = result.is_ok(),
        "git fetch"
    );
    result
}

fn lock(cache: &Mutex<Cache>) -> std::sync::MutexGuard<'_, Cache> {
    cache.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs libgit2 off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, GitError> + Send + 'static,
) -> Result<T, GitError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(GitError::Task {
            reason: e.to_string(),
        })
    })
}
