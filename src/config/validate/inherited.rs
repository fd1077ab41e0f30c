//! The keys a forward takes from `[defaults]` when it does not set them: context, namespace,
//! kubeconfig, local address and tags.

use super::Context;
use crate::config::checks::{is_dns_label, is_tag};
use crate::config::diagnostic::Issue;
use crate::config::model::{At, ForwardSpec};
use crate::config::source::SourceMap;
use crate::config::trust;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A key's value: the forward's own, else the one in `[defaults]`.
fn inherited<'a, T>(own: &'a Option<At<T>>, defaults: &'a Option<At<T>>) -> Option<&'a At<T>> {
    own.as_ref().or(defaults.as_ref())
}

/// The value, unless it is blank (then an issue says so, and how to get the default).
fn not_blank<'a>(
    value: &'a At<String>,
    code: &'static str,
    message: &'static str,
    help: &'static str,
    issues: &mut Vec<Issue>,
) -> Option<&'a At<String>> {
    if value.value.trim().is_empty() {
        issues.push(
            Issue::new(code, message)
                .label(value.span.clone(), "empty")
                .help(help),
        );
        return None;
    }
    Some(value)
}

impl Context<'_> {
    pub(super) fn context(&self, spec: &ForwardSpec, issues: &mut Vec<Issue>) -> Option<String> {
        let value = inherited(&spec.context, &self.defaults.context)?;
        let help = "remove the key to use the kubeconfig's current context";
        not_blank(value, "kftray::context", "empty context name", help, issues)
            .map(|v| v.value.clone())
    }

    pub(super) fn namespace(&self, spec: &ForwardSpec, issues: &mut Vec<Issue>) -> Option<String> {
        namespace_name(
            inherited(&spec.namespace, &self.defaults.namespace)?,
            issues,
        )
    }

    pub(super) fn kubeconfig(
        &self,
        spec: &ForwardSpec,
        issues: &mut Vec<Issue>,
    ) -> Option<PathBuf> {
        let value = inherited(&spec.kubeconfig, &self.defaults.kubeconfig)?;
        let help = "remove the key to use $KUBECONFIG or ~/.kube/config";
        let value = not_blank(
            value,
            "kftray::kubeconfig",
            "empty kubeconfig path",
            help,
            issues,
        )?;
        let declared_in = self
            .map
            .file_at(value.span.start)
            .map(|f| f.dir.clone())
            .unwrap_or_default();
        Some(expand_path(&value.value, &declared_in))
    }

    pub(super) fn local_address(
        &self,
        spec: &ForwardSpec,
        issues: &mut Vec<Issue>,
        bad_addresses: &mut Vec<Range<usize>>,
    ) -> (IpAddr, bool) {
        let Some(value) = inherited(&spec.local_address, &self.defaults.local_address) else {
            return (IpAddr::V4(Ipv4Addr::LOCALHOST), false);
        };
        if value.value.trim() == "auto" {
            // Chosen once every forward is known (`hosts::auto_addresses`).
            return (IpAddr::V4(Ipv4Addr::LOCALHOST), true);
        }
        let table = format!("[forwards.{}]", self.alias);
        let address = listen_address(
            value,
            spec.expose_to_network.as_ref(),
            &table,
            self.map,
            issues,
            bad_addresses,
        );
        (address, false)
    }

    pub(super) fn tags(&self, spec: &ForwardSpec, issues: &mut Vec<Issue>) -> Vec<String> {
        let mut tags = Vec::new();
        for tag in spec.tags.iter().flat_map(|t| &t.value) {
            if is_tag(&tag.value) {
                tags.push(tag.value.clone());
            } else {
                issues.push(
                    Issue::new("kftray::tag", format!("`{}` is not a valid tag", tag.value))
                        .label(tag.span.clone(), "not a tag")
                        .help("tags are letters, digits, '-', '_' and '.', as `--tag` reads them"),
                );
            }
        }
        tags.sort();
        tags.dedup();
        tags
    }
}

/// A namespace as written (a forward's, `[defaults]`' or `[relay]`'s), if it is a valid name.
pub(super) fn namespace_name(value: &At<String>, issues: &mut Vec<Issue>) -> Option<String> {
    if is_dns_label(&value.value) {
        return Some(value.value.clone());
    }
    issues.push(
        Issue::new(
            "kftray::namespace",
            format!("`{}` is not a valid namespace name", value.value),
        )
        .label(value.span.clone(), "not a DNS label")
        .help("namespaces are lowercase letters, digits and '-', at most 63 characters"),
    );
    None
}

/// `~/` is the home directory; a relative path is relative to the file that wrote it.
pub(super) fn expand_path(raw: &str, base: &Path) -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let path = match (raw.strip_prefix("~/"), raw == "~", &home) {
        (Some(rest), _, Some(home)) => home.join(rest),
        (_, true, Some(home)) => home.clone(),
        _ => PathBuf::from(raw),
    };
    if path.is_absolute() {
        path
    } else {
        base.join(path)
    }
}

/// An address to listen on as written (a forward's, `[defaults]`' or `[proxy]`'s): an IP
/// address, loopback unless `table` sets `expose_to_network` itself (and not from git). A
/// value inherited by many forwards is reported once (`bad_addresses`).
pub(super) fn listen_address(
    value: &At<String>,
    expose: Option<&At<bool>>,
    table: &str,
    map: &SourceMap,
    issues: &mut Vec<Issue>,
    bad_addresses: &mut Vec<Range<usize>>,
) -> IpAddr {
    let Ok(address) = value.value.trim().parse::<IpAddr>() else {
        if !bad_addresses.contains(&value.span) {
            bad_addresses.push(value.span.clone());
            issues.push(
                Issue::new(
                    "kftray::local-address",
                    format!("`{}` is not an IP address", value.value),
                )
                .label(value.span.clone(), "not an IP address")
                .help(
                    "write a loopback address such as \"127.0.0.2\", or \"auto\" for one of \
                     the forward's own",
                ),
            );
        }
        return IpAddr::V4(Ipv4Addr::LOCALHOST);
    };
    let exposed = expose.is_some_and(|e| e.value);
    if !address.is_loopback() && !exposed && !bad_addresses.contains(&value.span) {
        bad_addresses.push(value.span.clone());
        issues.push(
            Issue::new(
                "kftray::not-loopback",
                format!("{address} is not a loopback address"),
            )
            .label(value.span.clone(), "reachable from the network")
            .help(format!(
                "use any 127.x.y.z address; to really expose it to every machine that can \
                 reach this one, add `expose_to_network = true` to {table}"
            )),
        );
    }
    if let Some(allowed) = expose {
        trust::exposure(table, address, allowed, value, map, issues);
    }
    address
}
