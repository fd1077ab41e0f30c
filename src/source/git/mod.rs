//! A team file followed in git.

mod cache;
pub mod credentials;
pub mod follow;
mod url;

pub use cache::{Cache, RemoteFile, Unreadable, short};
pub use url::{RepoUrl, redact};
