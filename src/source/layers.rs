//! The layers a configuration is made of: the team's file from git (when followed) under
//! the user's kftray.toml and kftray.local.toml.

use super::Spec;
use super::git::follow::GitSpec;
use super::git::{self, RemoteFile, RepoUrl, Unreadable, UrlError, short};
use crate::config::{self, Diagnostics, Effective, Layer};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The default of `--ref`, `--path` and `--interval` (as for `[sync]`).
const DEFAULT_REF: &str = "HEAD";
const DEFAULT_PATH: &str = "kftray.toml";
const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

pub(super) fn compose(
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
    let project = config::project_dir(config);
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

/// The name diagnostics give the team's file: `<repo>@<commit>:<path>`.
fn remote_name(url: &RepoUrl, commit: &str, path: &Path) -> PathBuf {
    PathBuf::from(format!(
        "{}@{}:{}",
        url.display,
        short(commit),
        path.display()
    ))
}

/// The user's layers: kftray.toml and its overlay; with a repository and no kftray.toml,
/// the overlay alone (if there is one).
pub(super) fn read_local(config: &Path, required: bool) -> Result<Vec<Layer>, Diagnostics> {
    if required || config.exists() {
        return config::read_local(config);
    }
    Ok(config::read_overlay(config)?.into_iter().collect())
}

/// The repository to follow: `--git` if given, else the files' `[sync]`, else none.
pub(super) fn git_spec(
    spec: &Spec,
    project: &Path,
    local: &[Layer],
) -> Result<Option<GitSpec>, Diagnostics> {
    let invalid = |e: UrlError| {
        Diagnostics::file_problem("kftray::sync", spec.config.clone(), e.to_string(), None)
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
