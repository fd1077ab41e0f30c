//! What a source tells its reader: how it started, and each update after that.

use super::file;
use super::git::follow::{AppliedMarker, GitSpec};
use super::git::{GitError, short};
use crate::config::{Diagnostics, Effective};
use std::path::PathBuf;
use tokio::time::Instant;

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
    SyncFailed(GitError),
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
    pub sync_error: Option<GitError>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(Diagnostics),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("{0}")]
    Watch(#[from] file::WatchError),
}
