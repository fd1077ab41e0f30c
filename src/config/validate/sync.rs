//! The `[sync]` section: where a team's file comes from in git, and how often it is fetched.

use crate::config::checks::is_host;
use crate::config::diagnostic::Issue;
use crate::config::duration::parse_duration;
use crate::config::effective::Sync;
use crate::config::source::SourceMap;
use std::ops::Range;
use std::path::{Component, PathBuf};
use std::time::Duration;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

pub(super) fn section(
    spec: &crate::config::model::SyncSpec,
    key: Range<usize>,
    map: &SourceMap,
    issues: &mut Vec<Issue>,
) -> Option<Sync> {
    let before = issues.len();
    let _ = map;
    let repo = match &spec.repo {
        None => {
            issues.push(
                Issue::new("kftray::sync", "[sync] has no repo")
                    .label(key, "which repository?")
                    .help("add repo = \"https://github.com/acme/dev-env.git\""),
            );
            None
        }
        Some(repo) if !is_git_url(repo.value.trim()) => {
            issues.push(
                Issue::new("kftray::sync", format!("`{}` is not a git repository URL", repo.value))
                    .label(repo.span.clone(), "not a git URL")
                    .help("write https://host/path.git, ssh://host/path, git@host:path, file:///path or a local path"),
            );
            None
        }
        Some(repo) => Some(repo.value.trim().to_owned()),
    };
    let reference = match &spec.reference {
        Some(r)
            if r.value.trim().is_empty()
                || r.value.contains(char::is_whitespace)
                || r.value.contains("..")
                || r.value.starts_with('-') =>
        {
            issues.push(
                Issue::new("kftray::sync", format!("`{}` is not a git ref", r.value))
                    .label(r.span.clone(), "not a branch, tag or commit")
                    .help("write a branch (\"main\"), a tag (\"v1.2\") or a commit id"),
            );
            String::new()
        }
        Some(r) => r.value.clone(),
        None => "HEAD".to_owned(),
    };
    let path = match &spec.path {
        Some(p) => {
            let path = PathBuf::from(p.value.trim());
            let bad = p.value.trim().is_empty()
                || path.is_absolute()
                || path.components().any(|c| matches!(c, Component::ParentDir));
            if bad {
                issues.push(
                    Issue::new(
                        "kftray::sync",
                        format!("`{}` is not a path inside the repository", p.value),
                    )
                    .label(p.span.clone(), "must be relative, without `..`")
                    .help(
                        "write the file's path from the repository root, e.g. \"dev/kftray.toml\"",
                    ),
                );
            }
            path
        }
        None => PathBuf::from("kftray.toml"),
    };
    let interval = match &spec.interval {
        Some(i) => match parse_duration(&i.value) {
            Ok(d) => d,
            Err(why) => {
                issues.push(
                    Issue::new("kftray::duration", format!("bad duration `{}`: {why}", i.value))
                        .label(i.span.clone(), "not a duration")
                        .help("write a number and a unit: \"30s\", \"5m\", \"1h30m\" (units: ms, s, m, h, d)"),
                );
                DEFAULT_INTERVAL
            }
        },
        None => DEFAULT_INTERVAL,
    };
    if issues.len() > before {
        return None;
    }
    Some(Sync {
        repo: repo?,
        reference,
        path,
        interval,
    })
}

fn is_git_url(s: &str) -> bool {
    if s.is_empty() || s.contains(char::is_whitespace) {
        return false;
    }
    if let Some((scheme, rest)) = s.split_once("://") {
        return matches!(scheme, "https" | "http" | "ssh" | "git" | "file") && !rest.is_empty();
    }
    if s.starts_with('/') || s.starts_with("./") || s.starts_with("../") {
        return true;
    }
    // scp-like syntax: [user@]host:path
    match s.split_once(':') {
        Some((host, path)) => {
            let host = host.rsplit('@').next().unwrap_or(host);
            is_host(host) && !path.is_empty()
        }
        None => false,
    }
}
