//! A team file followed in git.

mod cache;
pub mod credentials;
mod error;
pub mod follow;
mod url;

pub use cache::{Cache, RemoteFile, Unreadable, short};
pub use error::{FetchFailure, GitError, KeyringError, UrlError};
pub use url::{RepoUrl, redact};
