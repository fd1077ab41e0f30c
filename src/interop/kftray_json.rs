//! kftray's JSON export format: reading it (every problem pinned to its line and column) and
//! writing it so that the kftray app imports it.
//!
//! The format is an array of objects (the app also accepts a single object), one per
//! forward, with these fields: `alias`, `context`, `kubeconfig`, `namespace`,
//! `workload_type` (`service`, `pod`, `proxy` or `expose`), `service`, `target` (a pod label
//! selector), `remote_address` (a proxy's host), `local_port` (absent or 0: a free port),
//! `remote_port`, `protocol`, `local_address`, `auto_loopback_address` (`local_address =
//! "auto"` here), `domain_enabled`, and the `http_logs_*` settings (`http_log` here: the file
//! size in bytes, the retention in days, kept forever without auto-cleanup; this format's body
//! limit and extra redactions have no place there). The app also writes `id`, which
//! kftray.toml has no place for.
//!
//! An `expose` is a reverse forward, `[exposes.<alias>]` here (see `expose.rs`): the server at
//! `local_address`:`local_port` reachable in the cluster as a Service on the same port, with
//! `exposure_type` `cluster`, or `public` with an Ingress too (`ingress_class`,
//! `ingress_annotations`, `cert_manager_enabled`, `cert_issuer`, `cert_issuer_kind`).
//!
//! Mapping an alias: kftray's is free text, kftray.toml's is a DNS label, so an alias that is
//! not one is turned into one (`"Web Front"` → `web-front`) and kept in `description`;
//! exporting gives the description back as the alias when it is the one the alias came from.
//! That is what makes JSON → TOML → JSON give back every field.

use super::alias::{alias_base, came_from};
use crate::config::{Diagnostics, Finding, Issue, LocalPort, PortRef, Protocol, SourceMap};
use crate::edit::merge::{Incoming, free_alias};
use crate::edit::{Draft, DraftTarget, ExposeDraft, Files, Layer, PortPair};
use jsonc_parser::ast::{Object, ObjectProp, Value};
use jsonc_parser::common::Ranged;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use std::path::Path;

mod convert;
mod expose;
mod read;

/// A note about one field: where, and what.
type Note = (Range<usize>, String);

use convert::to_draft;
pub use convert::{Unexportable, from_draft};
pub use expose::from_expose;
pub use read::parse;

/// One forward as kftray's JSON writes it (only the fields kftray.toml can carry). Fields in
/// alphabetical order, as kftray's documentation shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KftrayConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_loopback_address: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_issuer_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_manager_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposure_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_logs_auto_cleanup: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_logs_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_logs_max_file_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_logs_retention_days: Option<u64>,
    /// A JSON object of strings, in a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_annotations: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_type: Option<String>,
}

/// The fields read, for errors and the did-you-mean of unknown ones.
const FIELDS: [&str; 24] = [
    "alias",
    "auto_loopback_address",
    "cert_issuer",
    "cert_issuer_kind",
    "cert_manager_enabled",
    "context",
    "domain_enabled",
    "exposure_type",
    "http_logs_auto_cleanup",
    "http_logs_enabled",
    "http_logs_max_file_size",
    "http_logs_retention_days",
    "ingress_annotations",
    "ingress_class",
    "kubeconfig",
    "local_address",
    "local_port",
    "namespace",
    "protocol",
    "remote_address",
    "remote_port",
    "service",
    "target",
    "workload_type",
];

/// Fields the kftray app writes that kftray.toml has no place for: its database's id.
const NOT_CARRIED: [&str; 1] = ["id"];

/// Values the kftray app stores for "not set" (older exports still carry them).
const PLACEHOLDERS: [&str; 9] = [
    "default-service",
    "default-namespace",
    "default-target",
    "default-remote-address",
    "default-alias",
    "default-workload",
    "current-context",
    "protocol",
    "",
];

/// A note about the input that does not stop the import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// One entry of the file: what it says, and where each field is.
#[derive(Debug, Clone)]
pub struct Entry {
    pub config: KftrayConfig,
    /// The whole object, and each field's value.
    pub span: Range<usize>,
    pub fields: BTreeMap<&'static str, Range<usize>>,
}

impl Entry {
    /// Where a field is, else the entry's opening brace.
    pub fn span_of(&self, field: &str) -> Range<usize> {
        self.fields
            .get(field)
            .cloned()
            .unwrap_or(self.span.start..self.span.start + 1)
    }
}

/// A parsed file: its entries, the notes about it, and its text for later diagnostics.
#[derive(Debug)]
pub struct Parsed {
    /// The entries that read without a problem.
    pub entries: Vec<Entry>,
    pub warnings: Vec<Warning>,
    /// Problems of the other entries (wrong types, duplicates), reported with the rest.
    issues: Vec<Issue>,
    map: SourceMap,
}

impl Parsed {
    /// Diagnostics about this file.
    pub(crate) fn diagnostics(&self, issues: Vec<Issue>) -> Diagnostics {
        Diagnostics::from_issues(issues, &self.map)
    }

    pub(crate) fn warning(&self, span: &Range<usize>, message: String) -> Warning {
        let pos = self.map.position(span);
        Warning {
            line: pos.line,
            column: pos.column,
            message,
        }
    }

    /// The notes about one entry, as warnings.
    fn warnings<'a>(&'a self, notes: &'a [Note]) -> impl Iterator<Item = Warning> + 'a {
        notes.iter().map(|(span, m)| self.warning(span, m.clone()))
    }

    /// The drafts of every entry, with aliases unique among the forwards and among the
    /// exposes, each checked on its own against the files' `[defaults]` as if it were written
    /// to `layer`. A problem is reported at the JSON field it comes from.
    pub fn drafts(&self, files: &Files, layer: Layer) -> Result<Imported, Diagnostics> {
        let mut issues = self.issues.clone();
        let mut out = Imported {
            warnings: self.warnings.clone(),
            ..Imported::default()
        };
        let mut names = BTreeSet::new();
        for entry in &self.entries {
            let added = if expose::is_expose(&entry.config) {
                self.add_expose(entry, files, layer, &mut out)
            } else {
                self.add_forward(entry, files, layer, &mut out, &mut names)
            };
            if let Err(mut found) = added {
                issues.append(&mut found);
            }
        }
        if issues.is_empty() {
            Ok(out)
        } else {
            issues.sort_by_key(|i| i.labels.first().map_or(0, |(span, _)| span.start));
            Err(self.diagnostics(issues))
        }
    }

    /// Adds the forward `entry` describes to `out`, its host name free of the `names` taken,
    /// or returns its problems.
    fn add_forward(
        &self,
        entry: &Entry,
        files: &Files,
        layer: Layer,
        out: &mut Imported,
        names: &mut BTreeSet<String>,
    ) -> Result<(), Vec<Issue>> {
        let (draft, notes) = to_draft(entry)?;
        out.warnings.extend(self.warnings(&notes));
        let mut draft = unique(draft, &out.forwards);
        // kftray names a host after its alias, so two entries of one alias would claim one
        // name, which kftray.toml refuses: the second gets a name of its own.
        if let Some(domain) = draft.domain.clone()
            && names.contains(&domain)
        {
            let free = free_alias(&domain, names, &BTreeSet::new());
            out.warnings.push(self.warning(
                &entry.span_of("domain_enabled"),
                format!("the host name `{domain}` is another forward's: this one is `{free}`"),
            ));
            draft.domain = Some(free);
        }
        if let Err(d) = files.forwards_of(layer, &draft) {
            let issue = |f: &Finding| issue_at(f, entry.span_of(field_of(&f.code, &draft.target)));
            return Err(d.findings().iter().map(issue).collect());
        }
        names.extend(draft.domain.clone());
        out.forwards.push(draft);
        Ok(())
    }

    /// Adds the expose `entry` describes to `out`, or returns its problems.
    fn add_expose(
        &self,
        entry: &Entry,
        files: &Files,
        layer: Layer,
        out: &mut Imported,
    ) -> Result<(), Vec<Issue>> {
        let (draft, notes) = expose::to_expose(entry)?;
        out.warnings.extend(self.warnings(&notes));
        let draft = unique(draft, &out.exposes);
        let found = expose::check(entry, &draft, files, layer);
        if !found.is_empty() {
            return Err(found);
        }
        out.exposes.push(draft);
        Ok(())
    }
}

/// What a file brings to import: its forwards, its exposes, and notes about it.
#[derive(Debug, Default)]
pub struct Imported {
    pub forwards: Vec<Draft>,
    pub exposes: Vec<ExposeDraft>,
    pub warnings: Vec<Warning>,
}

/// `draft` under an alias that none of `others` has.
fn unique<D: Incoming>(draft: D, others: &[D]) -> D {
    let taken: BTreeSet<String> = others.iter().map(|d| d.alias().to_owned()).collect();
    if taken.contains(draft.alias()) {
        let alias = free_alias(draft.alias(), &taken, &BTreeSet::new());
        draft.with_alias(&alias)
    } else {
        draft
    }
}

/// A kftray.toml finding about what an entry became, as an issue at `span` of the entry.
fn issue_at(finding: &Finding, span: Range<usize>) -> Issue {
    let mut issue = Issue::new(code_of(&finding.code), finding.message.clone()).label(span, "here");
    if let Some(help) = &finding.help {
        issue = issue.help(help.clone());
    }
    issue
}

/// The JSON field a kftray.toml finding is about.
fn field_of(code: &str, target: &DraftTarget) -> &'static str {
    let target_field = match target {
        DraftTarget::Selector(_) => "target",
        DraftTarget::Proxy(_) => "remote_address",
        _ => "service",
    };
    match code {
        "kftray::selector" | "kftray::name" | "kftray::proxy" => target_field,
        "kftray::namespace" => "namespace",
        "kftray::context" => "context",
        "kftray::kubeconfig" => "kubeconfig",
        "kftray::local-address" | "kftray::not-loopback" => "local_address",
        "kftray::udp-target" => "protocol",
        "kftray::domain" | "kftray::alias" => "alias",
        _ => "remote_port",
    }
}

/// The finding's code, as the `&'static str` an issue carries.
fn code_of(code: &str) -> &'static str {
    const KNOWN: [&str; 16] = [
        "kftray::selector",
        "kftray::name",
        "kftray::proxy",
        "kftray::namespace",
        "kftray::context",
        "kftray::kubeconfig",
        "kftray::local-address",
        "kftray::not-loopback",
        "kftray::udp-target",
        "kftray::domain",
        "kftray::alias",
        "kftray::proxy-port",
        "kftray::service-name",
        "kftray::ingress",
        "kftray::port-range",
        "kftray::expose",
    ];
    KNOWN
        .into_iter()
        .find(|k| *k == code)
        .unwrap_or("kftray::json-invalid")
}

#[cfg(test)]
mod tests;
