//! The local copy of a team repository: a bare repository under `$KFTRAY_HOME/git/`, one per
//! URL, with no work tree. A fetch brings the followed ref's commits; the file is read from
//! the commit's tree. Refs under `refs/kftray/` remember the last commit fetched and the last
//! one applied, so a start without network runs what ran before.
//!
//! Everything here blocks (libgit2): call it from `spawn_blocking`.

use super::credentials::Credentials;
use super::error::{FetchFailure, GitError};
use super::url::RepoUrl;
use git2::{AutotagOption, ErrorClass, ErrorCode, FetchOptions, Oid, RemoteCallbacks, Repository};
use std::path::{Path, PathBuf};

pub struct Cache {
    repo: Repository,
}

/// The file at one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    pub commit: String,
    /// The file's blob id: a commit that leaves the file alone changes nothing that runs.
    pub blob: String,
    pub text: String,
}

/// Why a commit's file cannot be used, said about the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub commit: String,
    pub message: String,
}

impl Cache {
    /// Opens (or creates) the cache of `url` under `home`.
    pub fn open(home: &Path, url: &RepoUrl) -> Result<Cache, GitError> {
        let dir = dir_of(home, url);
        let repo = match Repository::open_bare(&dir) {
            Ok(repo) => repo,
            Err(_) => {
                let cannot = |reason: String| GitError::Cache {
                    dir: dir.clone(),
                    reason,
                };
                std::fs::create_dir_all(&dir).map_err(|e| cannot(e.to_string()))?;
                Repository::init_bare(&dir).map_err(|e| cannot(e.message().to_owned()))?
            }
        };
        Ok(Cache { repo })
    }

    /// The cache of `url`, if an earlier run made one.
    pub fn open_existing(home: &Path, url: &RepoUrl) -> Option<Cache> {
        Repository::open_bare(dir_of(home, url))
            .ok()
            .map(|repo| Cache { repo })
    }

    /// Fetches `reference` (a branch, a tag, `HEAD` or a commit id) and returns its commit.
    pub fn fetch(
        &self,
        url: &RepoUrl,
        reference: &str,
        creds: &mut Credentials,
    ) -> Result<String, GitError> {
        if let Some(oid) = full_commit_id(reference)
            && self.repo.find_commit(oid).is_ok()
        {
            // A commit never changes: once here, there is nothing more to fetch.
            return Ok(oid.to_string());
        }
        let fetched = fetched_ref(reference);
        let refspecs: Vec<String> = if reference == "HEAD" {
            vec![format!("+HEAD:{fetched}")]
        } else if reference.starts_with("refs/") {
            vec![format!("+{reference}:{fetched}")]
        } else if looks_like_commit(reference) {
            // Servers refuse to send a commit by id unless it is a branch tip: take the
            // branches and tags, and find it among them.
            vec![
                "+refs/heads/*:refs/kftray/all/heads/*".to_owned(),
                "+refs/tags/*:refs/kftray/all/tags/*".to_owned(),
            ]
        } else {
            vec![
                format!("+refs/heads/{reference}:{fetched}"),
                format!("+refs/tags/{reference}:{fetched}"),
            ]
        };
        let mut remote = self
            .repo
            .remote_anonymous(&url.connect)
            .map_err(|e| GitError::Fetch {
                repo: url.display.clone(),
                failure: FetchFailure::Other {
                    reason: creds.scrub(e.message()),
                },
            })?;
        let mut callbacks = RemoteCallbacks::new();
        callbacks.credentials(|u, user, allowed| creds.next(u, user, allowed));
        let mut options = FetchOptions::new();
        options
            .remote_callbacks(callbacks)
            .download_tags(AutotagOption::None)
            // FETCH_HEAD would record the URL; nothing needs it.
            .update_fetchhead(false);
        let result = remote.fetch(&refspecs, Some(&mut options), None);
        drop(options);
        if let Err(e) = result {
            return Err(fetch_error(&e, url, creds));
        }
        if looks_like_commit(reference) {
            return self
                .repo
                .revparse_single(reference)
                .and_then(|o| o.peel_to_commit())
                .map(|c| c.id().to_string())
                .map_err(|_| no_ref(url, reference, "commit, branch or tag"));
        }
        self.commit_of(&fetched)
            .ok_or_else(|| no_ref(url, reference, "branch or tag"))
    }

    /// The commit last fetched for `reference`, if any.
    pub fn last_fetched(&self, reference: &str) -> Option<String> {
        if let Some(oid) = full_commit_id(reference) {
            return self.repo.find_commit(oid).ok().map(|c| c.id().to_string());
        }
        self.commit_of(&fetched_ref(reference)).or_else(|| {
            looks_like_commit(reference)
                .then(|| {
                    self.repo
                        .revparse_single(reference)
                        .ok()?
                        .peel_to_commit()
                        .ok()
                })
                .flatten()
                .map(|c| c.id().to_string())
        })
    }

    /// The commit whose file last ran for `reference`, if any.
    pub fn last_applied(&self, reference: &str) -> Option<String> {
        self.commit_of(&applied_ref(reference))
    }

    pub fn set_applied(&self, reference: &str, commit: &str) -> Result<(), GitError> {
        let cannot = |e: git2::Error| GitError::Record {
            commit: short(commit).to_owned(),
            reason: e.message().to_owned(),
        };
        let oid = Oid::from_str(commit).map_err(cannot)?;
        self.repo
            .reference(&applied_ref(reference), oid, true, "kftray: applied")
            .map(drop)
            .map_err(cannot)
    }

    /// The file at `path` in `commit`.
    pub fn read(&self, commit: &str, path: &Path) -> Result<RemoteFile, Unreadable> {
        let unreadable = |message: String| Unreadable {
            commit: commit.to_owned(),
            message,
        };
        let oid = Oid::from_str(commit).map_err(|e| unreadable(e.message().to_owned()))?;
        let commit_obj = self
            .repo
            .find_commit(oid)
            .map_err(|e| unreadable(e.message().to_owned()))?;
        let tree = commit_obj
            .tree()
            .map_err(|e| unreadable(e.message().to_owned()))?;
        let entry = tree.get_path(path).map_err(|_| {
            unreadable(format!(
                "{} is not in the repository at commit {}",
                path.display(),
                short(commit)
            ))
        })?;
        match entry.filemode() {
            0o120000 => {
                return Err(unreadable(format!(
                    "{} is a symbolic link in the repository; kftray reads a regular file there, \
                     never where a link points",
                    path.display()
                )));
            }
            0o160000 => {
                return Err(unreadable(format!(
                    "{} is a submodule in the repository, not a file",
                    path.display()
                )));
            }
            _ => {}
        }
        // The size from the object's header: a huge blob is refused before it is inflated.
        let size = self
            .repo
            .odb()
            .and_then(|odb| odb.read_header(entry.id()))
            .map(|(size, _)| size as u64)
            .map_err(|e| unreadable(e.message().to_owned()))?;
        if size > crate::config::MAX_FILE_BYTES {
            return Err(unreadable(format!(
                "{} is {} MiB at commit {}; a configuration is at most {} MiB",
                path.display(),
                size >> 20,
                short(commit),
                crate::config::MAX_FILE_BYTES >> 20
            )));
        }
        let blob = entry
            .to_object(&self.repo)
            .and_then(|o| o.peel_to_blob())
            .map_err(|_| unreadable(format!("{} is not a file", path.display())))?;
        let text = String::from_utf8(blob.content().to_vec())
            .map_err(|_| unreadable(format!("{} is not UTF-8 text", path.display())))?;
        Ok(RemoteFile {
            commit: commit.to_owned(),
            blob: blob.id().to_string(),
            text,
        })
    }

    fn commit_of(&self, reference: &str) -> Option<String> {
        let found = self.repo.find_reference(reference).ok()?;
        Some(found.peel_to_commit().ok()?.id().to_string())
    }
}

/// `$KFTRAY_HOME/git/<host-and-name>-<hash>`: readable by a person, unique per URL.
fn dir_of(home: &Path, url: &RepoUrl) -> PathBuf {
    let hash = Oid::hash_object(git2::ObjectType::Blob, url.connect.as_bytes())
        .map(|oid| oid.to_string())
        .unwrap_or_default();
    let readable = crate::state::file_name_of(&format!(
        "{}-{}",
        url.host.as_deref().unwrap_or("local"),
        url.connect
            .trim_end_matches('/')
            .rsplit(['/', ':'])
            .next()
            .unwrap_or("repo")
            .trim_end_matches(".git")
    ));
    home.join("git")
        .join(format!("{readable}-{}", hash.get(..12).unwrap_or("0")))
}

fn fetched_ref(reference: &str) -> String {
    format!(
        "refs/kftray/fetched/{}",
        reference.trim_start_matches("refs/")
    )
}

fn applied_ref(reference: &str) -> String {
    format!(
        "refs/kftray/applied/{}",
        reference.trim_start_matches("refs/")
    )
}

fn looks_like_commit(reference: &str) -> bool {
    (7..=40).contains(&reference.len()) && reference.chars().all(|c| c.is_ascii_hexdigit())
}

fn full_commit_id(reference: &str) -> Option<Oid> {
    (reference.len() == 40)
        .then(|| Oid::from_str(reference).ok())
        .flatten()
}

pub fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

fn no_ref(url: &RepoUrl, reference: &str, looked_for: &'static str) -> GitError {
    GitError::NoRef {
        repo: url.display.clone(),
        reference: reference.to_owned(),
        looked_for,
    }
}

/// A fetch failure sorted by what the user can do about it; never a secret.
fn fetch_error(e: &git2::Error, url: &RepoUrl, creds: &Credentials) -> GitError {
    let auth = e.code() == ErrorCode::Auth
        || e.message().contains("no more credentials")
        || (e.class() == ErrorClass::Http && e.message().contains("401"))
        || (e.class() == ErrorClass::Ssh && e.message().contains("authentication"));
    let host = url.host.as_deref().unwrap_or("the server").to_owned();
    let failure = if auth && creds.tried.is_empty() {
        FetchFailure::NoCredentials {
            host,
            notes: creds.notes.iter().map(|n| creds.scrub(n)).collect(),
        }
    } else if auth {
        FetchFailure::Refused {
            host,
            tried: creds.tried.clone(),
        }
    } else if e.class() == ErrorClass::Ssh && e.message().contains("hostkey") {
        FetchFailure::UnknownHostKey { host }
    } else if e.code() == ErrorCode::Certificate || e.class() == ErrorClass::Ssl {
        FetchFailure::Certificate {
            host,
            reason: creds.scrub(e.message()),
        }
    } else {
        FetchFailure::Other {
            reason: creds.scrub(e.message()),
        }
    };
    GitError::Fetch {
        repo: url.display.clone(),
        failure,
    }
}

#[cfg(test)]
mod tests;
