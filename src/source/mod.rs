//! Where the configuration comes from, followed while `kftray up` runs.
//!
//! A [`Source`] is the user's own files (kftray.toml and kftray.local.toml, watched on disk:
//! [`file`]) laid over, when there is one, the team's file followed in git ([`git`]). It yields
//! [`Update`]s: a new configuration that validated, a change that does not (nothing that runs
//! should change), a file gone, a fetch that worked or failed. It never stops on bad input.

pub mod file;
pub mod git;

use crate::config::{self, Diagnostics, Effective, Layer};
use file::{Changed, FileWatcher};
use git::follow::{AppliedMarker, Follower, GitSpec, Polled};
use git::{RemoteFile, RepoUrl, Unreadable, short};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::time::Instant;

/// The default of `--ref`, `--path` and `--interval` (as for `[sync]`).
const DEFAULT_REF: &str = "HEAD";
const DEFAULT_PATH: &str = "kftray.toml";
const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

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

/// What set a revision off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    Start,
    /// Files of the user's that changed.
    Files(Vec<PathBuf>),
    /// A new commit of the team's repository.
    Commit(String),
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cause::Start => f.write_str("start"),
            Cause::Files(files) => {
                let names: Vec<String> = files
                    .iter()
                    .map(|p| {
                        p.file_name()
                            .unwrap_or(p.as_os_str())
                            .to_string_lossy()
                            .into_owned()
                    })
                    .collect();
                write!(f, "{} changed", names.join(", "))
            }
            Cause::Commit(commit) => write!(f, "commit {}", short(commit)),
        }
    }
}

/// The team file's commit a configuration was built from.
#[derive(Debug, Clone)]
pub struct RemoteRev {
    pub commit: String,
    pub blob: String,
    /// Records that it runs (call it once it does).
    pub marker: AppliedMarker,
}

/// A configuration that validated.
#[derive(Debug, Clone)]
pub struct Revision {
    pub effective: Effective,
    pub remote: Option<RemoteRev>,
    pub cause: Cause,
    /// The last file event before it, to measure how long the reload took.
    pub last_event: Option<Instant>,
}

#[derive(Debug)]
pub enum Update {
    /// A new configuration: apply it.
    Apply(Box<Revision>),
    /// A change that does not validate: what runs stays as it is.
    Rejected {
        diagnostics: Diagnostics,
        cause: Cause,
        /// The team's commit it was built from, when that commit is not the one running.
        commit: Option<String>,
    },
    /// The user's file is gone; the forwards keep running until it is back.
    Missing(PathBuf),
    /// A fetch went through and the team's file is as it was (at this newer commit).
    Synced {
        commit: String,
        blob: Option<String>,
        marker: AppliedMarker,
    },
    /// A fetch failed; it is retried with backoff.
    SyncFailed(String),
    /// The files now name another repository (or none), followed from here on.
    Following(Option<GitInfo>),
}

/// What `status` shows of the repository followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitInfo {
    /// Without userinfo.
    pub repo: String,
    pub reference: String,
    pub path: String,
}

impl From<&GitSpec> for GitInfo {
    fn from(spec: &GitSpec) -> GitInfo {
        GitInfo {
            repo: spec.url.display.clone(),
            reference: spec.reference.clone(),
            path: spec.path.display().to_string(),
        }
    }
}

/// How a run starts.
#[derive(Debug)]
pub struct Start {
    pub revision: Revision,
    pub git: Option<GitInfo>,
    /// The newest team commit, when it could not be used and an earlier one runs instead.
    pub rejected: Option<(String, Diagnostics)>,
    /// Why the first fetch failed, when the cache had to do.
    pub sync_error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(Diagnostics),
    #[error("{0}")]
    Git(String),
    #[error("{0}")]
    Watch(#[from] file::WatchError),
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
        let project = project_dir(&spec.config);
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
        let (follower, initial) = Follower::start(&source.spec.home, git_spec)
            .await
            .map_err(StartError::Git)?;
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
        Following { updates, task }
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

fn compose(
    remote: Option<(&GitSpec, &Result<RemoteFile, Unreadable>)>,
    local: &[Layer],
    project: &Path,
) -> Result<Effective, Diagnostics> {
    let mut layers = Vec::new();
    if let Some((spec, remote)) = remote {
        match remote {
            Ok(file) => layers.push(Layer::remote(
                remote_name(&spec.url, &file.commit, &spec.path),
                file.text.clone(),
                project.to_path_buf(),
            )),
            Err(unreadable) => {
                return Err(Diagnostics::file_problem(
                    "kftray::git-file",
                    remote_name(&spec.url, &unreadable.commit, &spec.path),
                    unreadable.message.clone(),
                    Some(format!(
                        "check --path (or [sync] path) and the ref `{}`",
                        spec.reference
                    )),
                ));
            }
        }
    }
    layers.extend(local.iter().cloned());
    config::load_layers(layers)
}

/// The configuration as it would run, without touching the network: with a `[sync]`, the
/// team's file as an earlier run fetched it (if one did) under the local files. The note
/// says which team file was used, or that none could be.
pub fn load_offline(
    config: &Path,
    home: &Path,
) -> Result<(Effective, Option<String>), Diagnostics> {
    let local = config::read_local(config)?;
    let project = project_dir(config);
    let spec = Spec {
        config: config.to_path_buf(),
        git: None,
        home: home.to_path_buf(),
    };
    // A [sync] that is itself wrong is reported with everything else.
    let Ok(Some(git)) = git_spec(&spec, &project, &local) else {
        return config::load_layers(local).map(|e| (e, None));
    };
    let cached = git::Cache::open_existing(home, &git.url).and_then(|cache| {
        let commit = cache.last_fetched(&git.reference)?;
        Some(cache.read(&commit, &git.path))
    });
    match cached {
        Some(remote) => {
            let note = match &remote {
                Ok(file) => format!(
                    "with the team's file from {} as fetched at commit {}",
                    git.url.display,
                    short(&file.commit)
                ),
                Err(unreadable) => unreadable.message.clone(),
            };
            compose(Some((&git, &remote)), &local, &project).map(|e| (e, Some(note)))
        }
        None => config::load_layers(local).map(|e| {
            let note = format!(
                "the team's file from {} has not been fetched yet (`kftray up` fetches it): \
                 the local files were checked alone",
                git.url.display
            );
            (e, Some(note))
        }),
    }
}

/// A [`Source`] running in its task.
pub struct Following {
    updates: tokio::sync::mpsc::Receiver<Update>,
    task: tokio::task::JoinHandle<()>,
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

impl Drop for Following {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The name diagnostics give the team's file: `<repo>@<commit>:<path>`.
fn remote_name(url: &RepoUrl, commit: &str, path: &Path) -> PathBuf {
    PathBuf::from(format!(
        "{}@{}:{}",
        url.display,
        short(commit),
        path.display()
    ))
}

fn project_dir(config: &Path) -> PathBuf {
    let dir = config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// The user's layers: kftray.toml and its overlay; with a repository and no kftray.toml,
/// the overlay alone (if there is one).
fn read_local(config: &Path, required: bool) -> Result<Vec<Layer>, Diagnostics> {
    if required || config.exists() {
        return config::read_local(config);
    }
    Ok(config::read_overlay(config)?.into_iter().collect())
}

/// The repository to follow: `--git` if given, else the files' `[sync]`, else none.
fn git_spec(spec: &Spec, project: &Path, local: &[Layer]) -> Result<Option<GitSpec>, Diagnostics> {
    let invalid = |message: String| {
        Diagnostics::file_problem("kftray::sync", spec.config.clone(), message, None)
    };
    if let Some(args) = &spec.git {
        let cwd = std::env::current_dir().unwrap_or_default();
        let url = RepoUrl::parse(&args.repo, &cwd).map_err(invalid)?;
        return Ok(Some(GitSpec {
            url,
            reference: args
                .reference
                .clone()
                .unwrap_or_else(|| DEFAULT_REF.to_owned()),
            path: args
                .path
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH)),
            interval: args.interval.unwrap_or(DEFAULT_INTERVAL),
        }));
    }
    let Some(sync) = config::sync_of(local)? else {
        return Ok(None);
    };
    let url = RepoUrl::parse(&sync.repo, project).map_err(invalid)?;
    Ok(Some(GitSpec {
        url,
        reference: sync.reference,
        path: sync.path,
        interval: sync.interval,
    }))
}
