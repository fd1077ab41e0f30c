//! The trust rule: a file that comes from git is someone else's, so it may not decide for this
//! machine what listens on the network, what runs under the user's credentials, or where the
//! configuration comes from. Every rule of that kind is here; a feature that listens, exposes,
//! runs or names something adds its own.

use super::diagnostic::Issue;
use super::layer::Tree;
use super::model::{At, RelaySpec};
use super::source::{Origin, SourceMap};
use std::net::IpAddr;
use std::ops::Range;

/// Whether the value at `span_start` was written by a file from git.
fn from_git(map: &SourceMap, span_start: usize) -> bool {
    map.file_at(span_start)
        .is_some_and(|f| f.origin == Origin::Remote)
}

/// `[sync]`: where the configuration comes from is this machine's user's call.
pub(crate) fn sync_section(tree: &Tree<'_>, issues: &mut Vec<Issue>) {
    if let Some((key, _)) = tree.get_key_value("sync") {
        issues.push(
            Issue::new(
                "kftray::remote-sync",
                "a file from git cannot say where the configuration comes from",
            )
            .label(key.span(), "[sync] in the team's file")
            .help(
                "remove [sync] from the file in the repository: where to sync from is set on \
                 this machine, by `kftray up --git` or in your own kftray.toml",
            ),
        );
    }
}

/// `[trust]`: what the team's file may decide is this machine's user's call, never its own.
pub(crate) fn trust_section(tree: &Tree<'_>, issues: &mut Vec<Issue>) {
    if let Some((key, _)) = tree.get_key_value("trust") {
        issues.push(
            Issue::new(
                "kftray::trust",
                "a file from git cannot say what files from git are trusted with",
            )
            .label(key.span(), "[trust] in the team's file")
            .help(
                "remove [trust] from the file in the repository: each user sets it in their own \
                 kftray.toml or kftray.local.toml",
            ),
        );
    }
}

/// A host name makes this machine answer that name (for every program on it) with a
/// forward: the team's file may propose one, but only the user's own files may accept it,
/// by setting the forward's `domain` themselves or with `[trust] domains = true`.
pub(crate) fn domain(
    alias: &str,
    domain: &At<String>,
    trusted: bool,
    map: &SourceMap,
    issues: &mut Vec<Issue>,
) {
    if trusted || !from_git(map, domain.span.start) {
        return;
    }
    issues.push(
        Issue::new(
            "kftray::trust",
            format!(
                "a file from git cannot make this machine answer the name `{}`",
                domain.value
            ),
        )
        .label(domain.span.clone(), "only your own files can name hosts")
        .help(format!(
            "the name would go into this machine's hosts file: if you trust the team's names, \
             add `[trust] domains = true` to your own kftray.toml or kftray.local.toml, or set \
             `domain` for [forwards.{alias}] there yourself"
        )),
    );
}

/// An expose opens a server of this machine to a cluster: the team's file may propose one,
/// but only the user's own files may accept it, by writing it or with `[trust] exposes = true`.
pub(crate) fn expose(
    alias: &str,
    key: &Range<usize>,
    trusted: bool,
    map: &SourceMap,
    issues: &mut Vec<Issue>,
) {
    if trusted || !from_git(map, key.start) {
        return;
    }
    issues.push(
        Issue::new(
            "kftray::trust",
            format!(
                "a file from git cannot open `{alias}`, a server of this machine, to a cluster"
            ),
        )
        .label(key.clone(), "only your own files can expose this machine")
        .help(
            "if you trust the team's exposes, add `[trust] exposes = true` to your own \
             kftray.toml or kftray.local.toml, or write the expose there yourself",
        ),
    );
}

/// An Ingress opens an exposed server to whoever reaches the ingress controller, often the
/// internet: that takes the user's own file, or `[trust] ingresses = true`, besides the
/// expose's own trust.
pub(crate) fn ingress(
    alias: &str,
    ingress: &Range<usize>,
    trusted: bool,
    map: &SourceMap,
    issues: &mut Vec<Issue>,
) {
    if trusted || !from_git(map, ingress.start) {
        return;
    }
    issues.push(
        Issue::new(
            "kftray::trust",
            format!(
                "a file from git cannot put `{alias}`, a server of this machine, behind an \
                 Ingress"
            ),
        )
        .label(
            ingress.clone(),
            "only your own files can open it beyond the cluster",
        )
        .help(
            "an Ingress can make it reachable from the internet: if you trust the team's \
             Ingresses, add `[trust] ingresses = true` to your own kftray.toml or \
             kftray.local.toml, or write `ingress` for the expose there yourself",
        ),
    );
}

/// The relay pod's image and manifest: kftray creates it with the user's own credentials, so
/// what it runs is theirs to choose, not a commit's in someone else's repository.
pub(crate) fn relay_pod(spec: &RelaySpec, map: &SourceMap, issues: &mut Vec<Issue>) {
    for (key, at) in [("image", &spec.image), ("manifest", &spec.manifest)] {
        if let Some(at) = at
            && from_git(map, at.span.start)
        {
            issues.push(
                Issue::new(
                    "kftray::trust",
                    format!("a file from git cannot choose the relay pod's {key}"),
                )
                .label(at.span.clone(), "only your own files can choose this")
                .help(format!(
                    "kftray creates the relay pod with your credentials: if you trust this \
                     {key}, set `[relay] {key}` to it in your own kftray.toml or \
                     kftray.local.toml"
                )),
            );
        }
    }
}

/// A forward (or the proxy) listening beyond loopback: only the user's own files may allow
/// it. `table` is where the key goes: `[forwards.web]`, `[proxy]`.
pub(crate) fn exposure(
    table: &str,
    address: IpAddr,
    allowed: &At<bool>,
    written: &At<String>,
    map: &SourceMap,
    issues: &mut Vec<Issue>,
) {
    if address.is_loopback() || !allowed.value || !from_git(map, allowed.span.start) {
        return;
    }
    issues.push(
        Issue::new(
            "kftray::trust",
            format!(
                "a file from git cannot make {table} listen on {address}, reachable from the \
                 network"
            ),
        )
        .label(allowed.span.clone(), "only your own files can allow this")
        .label(written.span.clone(), "not a loopback address")
        .help(format!(
            "the team's file is someone else's: to expose it to every machine that can reach \
             this one, add `expose_to_network = true` to {table} in your own kftray.toml or \
             kftray.local.toml"
        )),
    );
}

/// Redaction keeps the user's secrets out of a file on their disk: a team file from git may
/// add headers to redact, never take one away.
pub(crate) fn redaction(
    alias: &str,
    reveal: &At<Vec<At<String>>>,
    map: &SourceMap,
    issues: &mut Vec<Issue>,
) {
    if !from_git(map, reveal.span.start) {
        return;
    }
    issues.push(
        Issue::new(
            "kftray::trust",
            format!("a file from git cannot turn redaction off for `{alias}`'s HTTP log"),
        )
        .label(reveal.span.clone(), "only your own files can reveal these")
        .help(format!(
            "credentials in the log would be yours: if you want them in clear, set \
             `http_log.reveal` for [forwards.{alias}] in your own kftray.toml or \
             kftray.local.toml"
        )),
    );
}
