//! What can go wrong following a team repository, each case with what the user can do.
//! Every text here was scrubbed of secrets before it was stored (`Credentials::scrub`).

use std::path::PathBuf;

/// A repository cannot be followed, fetched, or its cache written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitError {
    #[error("cannot create the git cache {}: {reason}", dir.display())]
    Cache { dir: PathBuf, reason: String },
    #[error("{}", fetch_text(repo, failure))]
    Fetch { repo: String, failure: FetchFailure },
    #[error("{repo} has no {looked_for} `{reference}`")]
    NoRef {
        repo: String,
        reference: String,
        /// "branch or tag", or "commit, branch or tag" for what looks like a commit id.
        looked_for: &'static str,
    },
    #[error("{cause}; and there is no copy of {repo} from an earlier run to start from")]
    NoCopy { repo: String, cause: Box<GitError> },
    #[error("cannot record commit {commit} as applied: {reason}")]
    Record { commit: String, reason: String },
    #[error("the git task failed: {reason}")]
    Task { reason: String },
}

/// Why a fetch failed, sorted by what the user has to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchFailure {
    /// The server wants credentials and no source had any; `notes` say why sources could
    /// not be read (the keyring missing, say).
    NoCredentials {
        host: String,
        notes: Vec<String>,
    },
    /// Every credential offered was refused; `tried` names the sources, never the secrets.
    Refused {
        host: String,
        tried: Vec<String>,
    },
    /// libgit2 checks `~/.ssh/known_hosts` and, unlike ssh, never asks.
    UnknownHostKey {
        host: String,
    },
    Certificate {
        host: String,
        reason: String,
    },
    Other {
        reason: String,
    },
}

fn fetch_text(repo: &str, failure: &FetchFailure) -> String {
    match failure {
        FetchFailure::NoCredentials { host, notes } => {
            let mut text = format!(
                "{repo} asks for credentials and none were found: set {}, store a token with \
                 `kftray auth login --host {host}`, or set up a git credential helper",
                super::credentials::TOKEN_ENV
            );
            for note in notes {
                text.push_str(&format!(" ({note})"));
            }
            text
        }
        FetchFailure::Refused { host, tried } => format!(
            "{host} refused the credentials for {repo} (tried {}): check the token, or store \
             another with `kftray auth login --host {host}`",
            tried.join(", then ")
        ),
        FetchFailure::UnknownHostKey { host } => format!(
            "cannot fetch from {repo}: {host} is not in ~/.ssh/known_hosts, or its key changed: \
             connect once with `ssh` to check and accept its key, then start again"
        ),
        FetchFailure::Certificate { host, reason } => format!(
            "cannot fetch from {repo}: {reason}: if {host} uses a certificate from your \
             company's own CA, set SSL_CERT_FILE to a bundle that includes that CA"
        ),
        FetchFailure::Other { reason } => format!("cannot fetch from {repo}: {reason}"),
    }
}

/// The OS keyring could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    #[error(
        "the OS keyring is not available ({reason}); on Linux it is the Secret Service \
         (GNOME Keyring, KWallet) of a desktop session"
    )]
    Unavailable { reason: String },
    #[error("the OS keyring: {reason}")]
    Failed { reason: String },
}

/// A repository location that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// `url` is already redacted: it never carries the userinfo the user typed.
    #[error("`{url}` is not a URL: {reason}")]
    NotUrl { url: String, reason: String },
    #[error("`{url}` is not a file URL")]
    NotFileUrl { url: String },
}
