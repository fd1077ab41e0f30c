//! Where the configuration comes from, followed while `kftray up` runs.
//!
//! A [`Source`] is the user's own files (kftray.toml and kftray.local.toml, watched on disk:
//! [`file`]) laid over, when there is one, the team's file followed in git ([`git`]). It yields
//! [`Update`]s: a new configuration that validated, a change that does not (nothing that runs
//! should change), a file gone, a fetch that worked or failed. It never stops on bad input.

pub mod file;
pub mod git;
mod layers;
mod update;

pub use layers::load_offline;
pub use update::{Cause, GitInfo, RemoteRev, Revision, Start, StartError, Update};

use crate::config::{self, Diagnostics, Effective, Layer};
use file::{Changed, FileWatcher};
use git::follow::{Follower, Polled};
use git::{RemoteFile, Unreadable};
use layers::{compose, git_spec, read_local};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;

/// What to follow: the user's file, and the team's repository when given on the command line
/// (otherwise the files' `[sync]` says).
#[derive(Debug, Clone)]
pub struct Spec {
    /// kftray.toml (it may be missing when a repository is given).
    pub config: PathBuf,
    pub git: Option<GitArgs>,
    /// `$KFTRAY_HOME`: the git cache lives under it.
    pub home: PathBuf,
}

/// `kftray up --git URL [--ref R] [--path P] [--interval D]`.
#[derive(Debug, Clone)]
pub struct GitArgs {
    pub repo: String,
    pub reference: Option<String>,
    pub path: Option<PathBuf>,
    pub interval: Option<Duration>,
}

pub struct Source {
    spec: Spec,
    project: PathBuf,
    watcher: FileWatcher,
    git: Option<Follower>,
    /// The user's layers as last read.
    local: Vec<Layer>,
    /// The team's file at the newest commit fetched (or why it is unusable).
    remote: Option<Result<RemoteFile, Unreadable>>,
    /// The inputs of the last configuration offered, so that a save that changes nothing
    /// (or an event without a change) offers nothing.
    offered: Option<(Option<String>, Vec<Layer>)>,
    /// The user's kftray.toml must exist (it did at start, or there is no repository).
    file_required: bool,
    missing: bool,
    pending: VecDeque<Update>,
}

impl Source {
    /// Reads everything once (fetching the team's file when there is one) and starts
    /// watching.
    pub async fn open(spec: Spec) -> Result<(Source, Start), StartError> {
        let project = config::project_dir(&spec.config);
        // Watch first, so that a save while this starts is not missed.
        let watcher = FileWatcher::new(&[spec.config.clone(), config::local_path(&spec.config)])?;
        let file_required = spec.git.is_none() || spec.config.exists();
        let local = read_local(&spec.config, file_required).map_err(StartError::Config)?;
        let git_spec = git_spec(&spec, &project, &local).map_err(StartError::Config)?;
        let mut source = Source {
            spec,
            project,
            watcher,
            git: None,
            local,
            remote: None,
            offered: None,
            file_required,
            missing: false,
            pending: VecDeque::new(),
        };
        let Some(git_spec) = git_spec else {
            let effective = source.compose().map_err(StartError::Config)?;
            source.offered = Some((None, source.local.clone()));
            let revision = Revision {
                effective,
                remote: None,
                cause: Cause::Start,
                last_event: None,
            };
            return Ok((
                source,
                Start {
                    revision,
                    git: None,
                    rejected: None,
                    sync_error: None,
                },
            ));
        };
        let info = GitInfo::from(&git_spec);
        let (follower, initial) = Follower::start(&source.spec.home, git_spec).await?;
        source.git = Some(follower);
        source.remote = Some(initial.latest.clone());
        let (revision, rejected) = match source.compose() {
            Ok(effective) => (source.revision(effective, Cause::Start, None), None),
            Err(diagnostics) => {
                // The newest commit does not do; the one that ran last time may.
                let newest = match &initial.latest {
                    Ok(file) => file.commit.clone(),
                    Err(unreadable) => unreadable.commit.clone(),
                };
                let Some(applied) = initial.applied else {
                    return Err(StartError::Config(diagnostics));
                };
                source.remote = Some(Ok(applied));
                let effective = source
                    .compose()
                    .map_err(|_| StartError::Config(diagnostics.clone()))?;
                let revision = source.revision(effective, Cause::Start, None);
                // The newest stays the one to compare with, so a local fix retries it.
                source.remote = Some(initial.latest);
                (revision, Some((newest, diagnostics)))
            }
        };
        source.offered = Some((source.remote_key(), source.local.clone()));
        Ok((
            source,
            Start {
                revision,
                git: Some(info),
                rejected,
                sync_error: initial.sync_error,
            },
        ))
    }

    /// The next update; waits for one.
    pub async fn next(&mut self) -> Update {
        loop {
            if let Some(update) = self.pending.pop_front() {
                return update;
            }
            let git = async {
                match self.git.as_mut() {
                    Some(git) => git.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = self.watcher.changed() => self.on_files(changed).await,
                polled = git => self.on_git(polled),
            }
        }
    }

    /// Follows in a task of its own (so that nothing half-read is lost when the caller
    /// stops waiting), handing updates over a channel.
    pub fn spawn(mut self) -> Following {
        let (tx, updates) = tokio::sync::mpsc::channel(16);
        let task = tokio::spawn(async move {
            loop {
                let update = self.next().await;
                if tx.send(update).await.is_err() {
                    return;
                }
            }
        });
        Following {
            updates,
            _task: AbortOnDropHandle::new(task),
        }
    }

    async fn on_files(&mut self, changed: Changed) {
        let cause = Cause::Files(changed.files.into_iter().collect());
        if self.file_required && !self.spec.config.exists() {
            if !self.missing {
                self.missing = true;
                self.pending
                    .push_back(Update::Missing(self.spec.config.clone()));
            }
            return;
        }
        let came_back = std::mem::take(&mut self.missing);
        let local = match read_local(&self.spec.config, self.file_required) {
            Ok(local) => local,
            Err(diagnostics) => {
                self.pending.push_back(Update::Rejected {
                    diagnostics,
                    cause,
                    commit: None,
                });
                return;
            }
        };
        if came_back {
            // Offered again even if it is as it was, so that the news that it is back goes out.
            self.offered = None;
        } else if local == self.local {
            tracing::debug!("file event without a change of content");
            return;
        }
        self.local = local;
        if self.spec.git.is_none() {
            self.follow_sync().await;
        }
        self.offer(cause, Some(changed.last_event));
    }

    /// After the user's files changed: follows what their `[sync]` says now.
    async fn follow_sync(&mut self) {
        let wanted = match git_spec(&self.spec, &self.project, &self.local) {
            Ok(wanted) => wanted,
            // The [sync] itself is wrong: the whole configuration is, and says so.
            Err(_) => return,
        };
        if wanted.as_ref() == self.git.as_ref().map(|g| &g.spec) {
            return;
        }
        let Some(wanted) = wanted else {
            self.git = None;
            self.remote = None;
            self.pending.push_back(Update::Following(None));
            return;
        };
        let info = GitInfo::from(&wanted);
        match Follower::start(&self.spec.home, wanted).await {
            Ok((follower, initial)) => {
                self.git = Some(follower);
                self.remote = Some(initial.latest);
                self.pending.push_back(Update::Following(Some(info)));
                if let Some(error) = initial.sync_error {
                    self.pending.push_back(Update::SyncFailed(error));
                }
            }
            Err(error) => self.pending.push_back(Update::SyncFailed(error)),
        }
    }

    fn on_git(&mut self, polled: Polled) {
        let fetched = match polled {
            Polled::Failed(error) => {
                self.pending.push_back(Update::SyncFailed(error));
                return;
            }
            Polled::Fetched(fetched) => fetched,
        };
        let commit = match &fetched {
            Ok(file) => file.commit.clone(),
            Err(unreadable) => unreadable.commit.clone(),
        };
        let same = match (&self.remote, &fetched) {
            (Some(Ok(old)), Ok(new)) => old.blob == new.blob,
            (Some(Err(old)), Err(new)) => old.commit == new.commit,
            _ => false,
        };
        if same {
            if let Some(Ok(file)) = &mut self.remote {
                file.commit = commit.clone();
            }
            if let Some(git) = &self.git {
                let marker = git.marker();
                let blob = fetched.ok().map(|file| file.blob);
                self.pending.push_back(Update::Synced {
                    commit,
                    blob,
                    marker,
                });
            }
            return;
        }
        self.remote = Some(fetched);
        self.offer(Cause::Commit(commit), None);
    }

    /// Builds the configuration from the current inputs and queues it (or why it fails).
    fn offer(&mut self, cause: Cause, last_event: Option<Instant>) {
        let inputs = (self.remote_key(), self.local.clone());
        if self.offered.as_ref() == Some(&inputs) {
            return;
        }
        self.offered = Some(inputs);
        let update = match self.compose() {
            Ok(effective) => Update::Apply(Box::new(self.revision(effective, cause, last_event))),
            Err(diagnostics) => Update::Rejected {
                diagnostics,
                commit: self.remote_commit(),
                cause,
            },
        };
        self.pending.push_back(update);
    }

    fn revision(
        &self,
        effective: Effective,
        cause: Cause,
        last_event: Option<Instant>,
    ) -> Revision {
        Revision {
            effective,
            remote: match (&self.remote, &self.git) {
                (Some(Ok(file)), Some(git)) => Some(RemoteRev {
                    commit: file.commit.clone(),
                    blob: file.blob.clone(),
                    marker: git.marker(),
                }),
                _ => None,
            },
            cause,
            last_event,
        }
    }

    fn remote_commit(&self) -> Option<String> {
        match self.remote.as_ref()? {
            Ok(file) => Some(file.commit.clone()),
            Err(unreadable) => Some(unreadable.commit.clone()),
        }
    }

    fn remote_key(&self) -> Option<String> {
        match self.remote.as_ref()? {
            Ok(file) => Some(file.blob.clone()),
            Err(unreadable) => Some(format!("unreadable {}", unreadable.commit)),
        }
    }

    /// The team's file (when there is one) with the user's layers over it, validated.
    fn compose(&self) -> Result<Effective, Diagnostics> {
        let remote = match (&self.remote, &self.git) {
            (Some(remote), Some(git)) => Some((&git.spec, remote)),
            _ => None,
        };
        compose(remote, &self.local, &self.project)
    }
}

/// A [`Source`] running in its task.
pub struct Following {
    updates: tokio::sync::mpsc::Receiver<Update>,
    /// Held only to end the task with this value.
    _task: AbortOnDropHandle<()>,
}

impl Following {
    /// The next update (cancel-safe).
    pub async fn next(&mut self) -> Update {
        match self.updates.recv().await {
            Some(update) => update,
            None => std::future::pending().await,
        }
    }
}
