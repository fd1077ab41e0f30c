//! kftray's JSON export format: reading it (every problem pinned to its line and column) and
//! writing it so that the kftray app imports it.
//!
//! The format is an array of objects (the app also accepts a single object), one per
//! forward, with these fields: `alias`, `context`, `kubeconfig`, `namespace`,
//! `workload_type` (`service`, `pod` or `proxy`; the app's `expose` goes the other way and
//! has no equivalent here), `service`, `target` (a pod label selector), `remote_address` (a
//! proxy's host), `local_port` (absent or 0: a free port), `remote_port`, `protocol`,
//! `local_address`, `domain_enabled`. The app also writes `id`, `auto_loopback_address` and
//! the `http_logs_*` settings, which kftray.toml has no place for: importing says so.
//!
//! Mapping an alias: kftray's is free text, kftray.toml's is a DNS label, so an alias that is
//! not one is turned into one (`"Web Front"` → `web-front`) and kept in `description`;
//! exporting gives the description back as the alias when it is the one the alias came from.
//! That is what makes JSON → TOML → JSON give back every field.

use super::alias::{alias_base, came_from};
use crate::config::{Diagnostics, Issue, LocalPort, PortRef, Protocol, SourceMap};
use crate::edit::merge::free_alias;
use crate::edit::{Draft, DraftTarget, Files, Layer, PortPair};
use jsonc_parser::ast::{Object, ObjectProp, Value};
use jsonc_parser::common::Ranged;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use std::path::Path;

/// One forward as kftray's JSON writes it (only the fields kftray.toml can carry). Fields in
/// alphabetical order, as kftray's documentation shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KftrayConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_enabled: Option<bool>,
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
const FIELDS: [&str; 13] = [
    "alias",
    "context",
    "domain_enabled",
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

/// Fields the kftray app writes that kftray.toml has no place for, and why they can go.
const NOT_CARRIED: [(&str, &str); 12] = [
    ("id", ""),
    (
        "auto_loopback_address",
        "kftray.toml takes a fixed local_address; set one to keep forwards apart",
    ),
    ("http_logs_enabled", "kftray does not log HTTP traffic"),
    ("http_logs_max_file_size", ""),
    ("http_logs_retention_days", ""),
    ("http_logs_auto_cleanup", ""),
    ("exposure_type", ""),
    ("cert_manager_enabled", ""),
    ("cert_issuer", ""),
    ("cert_issuer_kind", ""),
    ("ingress_class", ""),
    ("ingress_annotations", ""),
];

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

    /// The drafts of every entry, with aliases unique among them, each checked on its own
    /// against the files' `[defaults]` as if it were written to `layer`. A problem is reported
    /// at the JSON field it comes from.
    pub fn drafts(
        &self,
        files: &Files,
        layer: Layer,
    ) -> Result<(Vec<Draft>, Vec<Warning>), Diagnostics> {
        let mut issues = self.issues.clone();
        let mut warnings = self.warnings.clone();
        let mut drafts: Vec<Draft> = Vec::new();
        let mut taken = BTreeSet::new();
        for entry in &self.entries {
            let (draft, notes) = match to_draft(entry) {
                Ok(ok) => ok,
                Err(mut found) => {
                    issues.append(&mut found);
                    continue;
                }
            };
            warnings.extend(notes.iter().map(|(span, m)| self.warning(span, m.clone())));
            let draft = if taken.contains(&draft.alias) {
                let alias = free_alias(&draft.alias, &taken, &BTreeSet::new());
                draft.with_alias(&alias)
            } else {
                draft
            };
            if let Err(d) = files.forwards_of(layer, &draft) {
                for finding in d.findings() {
                    let field = field_of(&finding.code, &draft.target);
                    let mut issue = Issue::new(code_of(&finding.code), finding.message.clone())
                        .label(entry.span_of(field), "here");
                    if let Some(help) = &finding.help {
                        issue = issue.help(help.clone());
                    }
                    issues.push(issue);
                }
                continue;
            }
            taken.insert(draft.alias.clone());
            drafts.push(draft);
        }
        if issues.is_empty() {
            Ok((drafts, warnings))
        } else {
            issues.sort_by_key(|i| i.labels.first().map_or(0, |(span, _)| span.start));
            Err(self.diagnostics(issues))
        }
    }
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
    const KNOWN: [&str; 12] = [
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
    ];
    KNOWN
        .into_iter()
        .find(|k| *k == code)
        .unwrap_or("kftray::json-invalid")
}

/// Reads a kftray JSON export. Comments and trailing commas are accepted (kftray's own
/// documentation writes them); anything wrong is reported at its place, all at once.
pub fn parse(name: &Path, text: &str) -> Result<Parsed, Diagnostics> {
    let mut map = SourceMap::default();
    let dir = name.parent().map(Path::to_path_buf).unwrap_or_default();
    map.add(name, text.to_owned(), crate::config::Origin::Local, dir);
    let options = jsonc_parser::ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
    };
    let ast = match jsonc_parser::parse_to_ast(text, &Default::default(), &options) {
        Ok(ast) => ast,
        Err(e) => {
            let r = e.range();
            let issue = Issue::new("kftray::json-syntax", format!("JSON syntax: {}", e.kind()))
                .label(r.start..r.end.max(r.start + 1), "here")
                .help("a kftray export is a JSON array of objects: [{\"alias\": \"web\", ...}]");
            return Err(Diagnostics::from_issues(vec![issue], &map));
        }
    };
    let mut issues = Vec::new();
    let mut warnings = Vec::new();
    let objects: Vec<&Object<'_>> = match &ast.value {
        Some(Value::Array(array)) => array
            .elements
            .iter()
            .filter_map(|element| match element {
                Value::Object(o) => Some(o),
                other => {
                    issues.push(
                        Issue::new(
                            "kftray::json-type",
                            format!("expected an object, found {}", kind(other)),
                        )
                        .label(range(other), "not a forward")
                        .help("each element is one forward: {\"alias\": \"web\", \"workload_type\": \"service\", ...}"),
                    );
                    None
                }
            })
            .collect(),
        Some(Value::Object(o)) => vec![o],
        Some(other) => {
            issues.push(
                Issue::new(
                    "kftray::json-type",
                    format!("expected an array of forwards, found {}", kind(other)),
                )
                .label(range(other), "not an array")
                .help("a kftray export is a JSON array of objects: [{\"alias\": \"web\", ...}]"),
            );
            Vec::new()
        }
        None => Vec::new(),
    };
    if !issues.is_empty() {
        return Err(Diagnostics::from_issues(issues, &map));
    }
    let mut entries = Vec::new();
    for object in objects {
        let before = issues.len();
        let entry = read_entry(
            object,
            &mut issues,
            &mut |span: Range<usize>, message: String| {
                let pos = map.position(&span);
                warnings.push(Warning {
                    line: pos.line,
                    column: pos.column,
                    message,
                });
            },
        );
        if issues.len() == before {
            entries.push(entry);
        }
    }
    Ok(Parsed {
        entries,
        warnings,
        issues,
        map,
    })
}

fn range(value: &impl Ranged) -> Range<usize> {
    let r = value.range();
    r.start..r.end
}

fn kind(value: &Value<'_>) -> &'static str {
    match value {
        Value::StringLit(_) => "a string",
        Value::NumberLit(_) => "a number",
        Value::BooleanLit(_) => "a boolean",
        Value::Object(_) => "an object",
        Value::Array(_) => "an array",
        Value::NullKeyword(_) => "null",
    }
}

fn read_entry(
    object: &Object<'_>,
    issues: &mut Vec<Issue>,
    warn: &mut impl FnMut(Range<usize>, String),
) -> Entry {
    let mut entry = Entry {
        config: KftrayConfig::default(),
        span: range(object),
        fields: BTreeMap::new(),
    };
    let mut seen = BTreeSet::new();
    let mut http_logs = false;
    for prop in &object.properties {
        let name = prop.name.as_str();
        let name_span = range(&prop.name);
        if !seen.insert(name.to_owned()) {
            issues.push(
                Issue::new("kftray::json-duplicate", format!("`{name}` is given twice"))
                    .label(name_span, "again here")
                    .help("keep one of them"),
            );
            continue;
        }
        let Some(field) = FIELDS.iter().copied().find(|f| *f == name) else {
            match NOT_CARRIED.iter().find(|(f, _)| *f == name) {
                Some(("auto_loopback_address", why)) if is_true(&prop.value) => warn(
                    name_span,
                    format!("`auto_loopback_address` is not kept: {why}"),
                ),
                Some(("http_logs_enabled", _)) if is_true(&prop.value) => http_logs = true,
                Some(_) => {}
                None => {
                    let hint = crate::config::did_you_mean(name, FIELDS)
                        .map(|m| format!(" (did you mean `{m}`?)"))
                        .unwrap_or_default();
                    warn(name_span, format!("unknown field `{name}` ignored{hint}"));
                }
            }
            continue;
        };
        if matches!(prop.value, Value::NullKeyword(_)) {
            continue;
        }
        entry.fields.insert(field, range(&prop.value));
        let c = &mut entry.config;
        match field {
            "local_port" | "remote_port" => {
                if let Some(port) = port(prop, issues) {
                    if field == "local_port" {
                        c.local_port = Some(port);
                    } else {
                        c.remote_port = Some(port);
                    }
                }
            }
            "domain_enabled" => c.domain_enabled = flag(prop, issues),
            _ => {
                let Some(s) = string(prop, issues) else {
                    continue;
                };
                let slot = match field {
                    "alias" => &mut c.alias,
                    "context" => &mut c.context,
                    "kubeconfig" => &mut c.kubeconfig,
                    "local_address" => &mut c.local_address,
                    "namespace" => &mut c.namespace,
                    "protocol" => &mut c.protocol,
                    "remote_address" => &mut c.remote_address,
                    "service" => &mut c.service,
                    "target" => &mut c.target,
                    _ => &mut c.workload_type,
                };
                *slot = Some(s);
            }
        }
    }
    if http_logs {
        warn(
            entry.span.start..entry.span.start + 1,
            "HTTP logging (`http_logs_*`) is not kept: kftray does not log HTTP traffic".into(),
        );
    }
    entry
}

fn is_true(value: &Value<'_>) -> bool {
    match value {
        Value::BooleanLit(b) => b.value,
        Value::StringLit(s) => s.value == "true",
        _ => false,
    }
}

fn string(prop: &ObjectProp<'_>, issues: &mut Vec<Issue>) -> Option<String> {
    match &prop.value {
        Value::StringLit(s) => Some(s.value.to_string()),
        other => {
            issues.push(wrong_type(prop, other, "a string"));
            None
        }
    }
}

fn port(prop: &ObjectProp<'_>, issues: &mut Vec<Issue>) -> Option<u16> {
    let name = prop.name.as_str();
    match &prop.value {
        Value::NumberLit(n) => match n.value.parse::<u16>() {
            Ok(port) => Some(port),
            Err(_) => {
                issues.push(
                    Issue::new(
                        "kftray::json-port",
                        format!("`{name}` is {}, not a port number", n.value),
                    )
                    .label(range(n), "not in 0-65535")
                    .help("a port is a whole number from 1 to 65535 (local_port 0: any free port)"),
                );
                None
            }
        },
        other => {
            let mut issue = wrong_type(prop, other, "a port number");
            if let Value::StringLit(s) = other
                && s.value.parse::<u16>().is_ok()
            {
                issue = issue.help(format!(
                    "write the number without quotes: \"{name}\": {}",
                    s.value
                ));
            } else if let Value::StringLit(_) = other {
                issue = issue.help(
                    "kftray's JSON has port numbers only; a port name can be written in \
                     kftray.toml after importing",
                );
            }
            issues.push(issue);
            None
        }
    }
}

fn flag(prop: &ObjectProp<'_>, issues: &mut Vec<Issue>) -> Option<bool> {
    match &prop.value {
        Value::BooleanLit(b) => Some(b.value),
        Value::StringLit(s) if s.value == "true" || s.value == "false" => Some(s.value == "true"),
        other => {
            issues.push(wrong_type(prop, other, "true or false"));
            None
        }
    }
}

fn wrong_type(prop: &ObjectProp<'_>, value: &Value<'_>, expected: &str) -> Issue {
    let name = prop.name.as_str();
    Issue::new(
        "kftray::json-type",
        format!("`{name}` must be {expected}, not {}", kind(value)),
    )
    .label(range(value), format!("expected {expected}"))
    .help(match expected {
        "a string" => format!("write it in quotes: \"{name}\": \"...\""),
        "true or false" => format!("write \"{name}\": true or \"{name}\": false"),
        _ => format!("for example: \"{name}\": 8080"),
    })
}

fn set(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !PLACEHOLDERS.contains(v))
        .map(str::to_owned)
}

/// The forwards an entry describes, or its problems (at the fields that cause them). The
/// alias is the entry's own turned into a DNS label; uniqueness is the caller's business.
/// A note about one field: where, and what.
type Note = (Range<usize>, String);

fn to_draft(entry: &Entry) -> Result<(Draft, Vec<Note>), Vec<Issue>> {
    let c = &entry.config;
    let mut issues = Vec::new();
    let mut notes = Vec::new();
    let workload = match set(&c.workload_type).map(|w| w.to_ascii_lowercase()) {
        Some(w) => Some(w),
        // Older exports have no workload_type: the target field says which it is.
        None => match (set(&c.service), set(&c.target), set(&c.remote_address)) {
            (Some(_), None, None) => Some("service".to_owned()),
            (None, Some(_), None) => Some("pod".to_owned()),
            (None, None, Some(_)) => Some("proxy".to_owned()),
            _ => {
                issues.push(
                    Issue::new(
                        "kftray::json-missing",
                        "this forward has no `workload_type`",
                    )
                    .label(entry.span_of("workload_type"), "which kind of target?")
                    .help(
                        "add \"workload_type\": \"service\" (with \"service\"), \"pod\" (with \
                             \"target\", a label selector) or \"proxy\" (with \"remote_address\")",
                    ),
                );
                None
            }
        },
    };
    let needs = |field: &str, what: &str, issues: &mut Vec<Issue>| {
        let value = match field {
            "service" => set(&c.service),
            "target" => set(&c.target),
            _ => set(&c.remote_address),
        };
        if value.is_none() {
            issues.push(
                Issue::new(
                    "kftray::json-missing",
                    format!(
                        "a {} forward needs `{field}`",
                        workload.as_deref().unwrap_or("")
                    ),
                )
                .label(
                    entry.span_of("workload_type"),
                    format!("no `{field}` for this"),
                )
                .help(format!("add \"{field}\": {what}")),
            );
        }
        value
    };
    let target = match workload.as_deref() {
        None => None,
        Some("service") => needs("service", "\"NAME\"", &mut issues).map(DraftTarget::Service),
        Some("pod") => needs("target", "\"app=NAME\" (a label selector)", &mut issues)
            .map(DraftTarget::Selector),
        Some("proxy") => needs("remote_address", "\"HOST\"", &mut issues).map(DraftTarget::Proxy),
        Some(other) => {
            let (message, help) = if other == "expose" {
                (
                    "`expose` forwards are not supported".to_owned(),
                    "`expose` makes a local port reachable from the cluster; kftray.toml \
                     forwards cluster ports to this machine only"
                        .to_owned(),
                )
            } else {
                (
                    format!("unknown workload_type `{other}`"),
                    "kftray's workload types are \"service\", \"pod\" (a label selector in \
                     \"target\") and \"proxy\""
                        .to_owned(),
                )
            };
            issues.push(
                Issue::new("kftray::json-workload", message)
                    .label(entry.span_of("workload_type"), "not service, pod or proxy")
                    .help(help),
            );
            None
        }
    };
    let protocol = match set(&c.protocol).map(|p| p.to_ascii_lowercase()).as_deref() {
        None | Some("tcp") => Protocol::Tcp,
        Some("udp") => Protocol::Udp,
        Some(other) => {
            issues.push(
                Issue::new(
                    "kftray::json-protocol",
                    format!("unknown protocol `{other}`"),
                )
                .label(entry.span_of("protocol"), "not tcp or udp")
                .help("write \"protocol\": \"tcp\" or \"protocol\": \"udp\""),
            );
            Protocol::Tcp
        }
    };
    if protocol == Protocol::Udp && matches!(target, Some(DraftTarget::Selector(_))) {
        issues.push(
            Issue::new("kftray::json-protocol", "UDP cannot reach pods by label")
                .label(entry.span_of("protocol"), "UDP")
                .help(
                    "kftray.toml carries UDP through its relay to a service or a proxy host: \
                     use \"workload_type\": \"service\" or \"proxy\"",
                ),
        );
    }
    let known_kind = matches!(workload.as_deref(), Some("service" | "pod" | "proxy"));
    let remote = match c.remote_port {
        // An unsupported kind is reported once, not with what it would also need.
        None if workload.is_some() && !known_kind => None,
        Some(0) => {
            issues.push(
                Issue::new("kftray::json-port", "remote port 0 is not a port")
                    .label(entry.span_of("remote_port"), "0")
                    .help("write the port the target listens on, 1 to 65535"),
            );
            None
        }
        Some(n) => Some(n),
        None => {
            issues.push(
                Issue::new("kftray::json-missing", "this forward has no `remote_port`")
                    .label(entry.span_of("remote_port"), "which port on the target?")
                    .help("add \"remote_port\": 80 (the port the target listens on)"),
            );
            None
        }
    };
    let local_address = match set(&c.local_address) {
        None => None,
        // kftray's own example files write "localhost": its loopback, as kftray binds it.
        Some(a) if a.eq_ignore_ascii_case("localhost") => None,
        Some(a) => match a.parse::<IpAddr>() {
            Ok(ip) if ip == IpAddr::V4(Ipv4Addr::LOCALHOST) => None,
            Ok(ip) => Some(ip),
            Err(_) => {
                issues.push(
                    Issue::new(
                        "kftray::json-address",
                        format!("`{a}` is not an IP address"),
                    )
                    .label(entry.span_of("local_address"), "not an IP address")
                    .help("write a loopback address such as \"127.0.0.2\""),
                );
                None
            }
        },
    };
    let (Some(target), Some(remote)) = (target, remote) else {
        return Err(issues);
    };
    if !issues.is_empty() {
        return Err(issues);
    }
    let local = match c.local_port {
        None | Some(0) => LocalPort::Any,
        Some(n) => LocalPort::Fixed(n),
    };
    let original = c.alias.clone();
    let alias = alias_base(original.as_deref(), target.value());
    let mut draft = Draft::new(
        alias.clone(),
        target,
        vec![PortPair {
            local: Some(local),
            remote: PortRef::Number(remote),
        }],
    );
    draft.namespace = set(&c.namespace);
    draft.context = set(&c.context);
    draft.kubeconfig = set(&c.kubeconfig).filter(|k| k != "default");
    draft.protocol = protocol;
    if let Some(ip) = local_address {
        draft.local_address = Some(ip.to_string());
        if !ip.is_loopback() {
            draft.expose_to_network = true;
            notes.push((
                entry.span_of("local_address"),
                format!(
                    "`{ip}` is reachable from the network: written with expose_to_network = true"
                ),
            ));
        }
    }
    if c.domain_enabled == Some(true) {
        // kftray names the host after the alias.
        let host = original
            .as_deref()
            .map(|a| a.trim().to_ascii_lowercase())
            .filter(|a| crate::config::is_host(a) && a.parse::<IpAddr>().is_err());
        draft.domain = Some(host.unwrap_or(alias));
    }
    draft.source_name = original;
    draft.description = draft
        .source_name
        .clone()
        .filter(|name| *name != draft.alias);
    Ok((draft, notes))
}

/// A forward as kftray's JSON can carry it, or why it cannot.
pub fn from_draft(draft: &Draft, namespace: &str) -> Result<Vec<KftrayConfig>, String> {
    let (workload, service, target, remote_address) = match &draft.target {
        DraftTarget::Service(s) => ("service", Some(s.clone()), None, None),
        DraftTarget::Selector(s) => ("pod", None, Some(s.clone()), None),
        DraftTarget::Proxy(h) => ("proxy", None, None, Some(h.clone())),
        other => {
            return Err(format!(
                "kftray's JSON has no {} target (only service, pod selector and proxy); \
                 a `selector` with the {0}'s pod labels can be exported",
                other.key()
            ));
        }
    };
    // A description that the alias was made from is the kftray alias; else the host name,
    // which kftray takes from the alias; else the alias.
    let alias = match (&draft.description, &draft.domain) {
        (Some(d), _) if came_from(&draft.alias, d, draft.target.value()) => d.clone(),
        (_, Some(domain)) => domain.clone(),
        _ => draft.alias.clone(),
    };
    let several = draft.ports.len() > 1;
    draft
        .ports
        .iter()
        .map(|pair| {
            let remote = match &pair.remote {
                PortRef::Number(n) => *n,
                PortRef::Name(name) => {
                    return Err(format!(
                        "kftray's JSON has port numbers only, and remote port `{name}` is a name"
                    ));
                }
            };
            Ok(KftrayConfig {
                alias: Some(if several {
                    format!("{alias}-{remote}")
                } else {
                    alias.clone()
                }),
                context: draft.context.clone(),
                domain_enabled: draft.domain.as_ref().map(|_| true),
                kubeconfig: draft.kubeconfig.clone(),
                local_address: draft.local_address.clone(),
                local_port: match pair.local {
                    Some(LocalPort::Any) => None,
                    _ => pair.fixed_local(),
                },
                namespace: Some(namespace.to_owned()),
                protocol: Some(draft.protocol.to_string()),
                remote_address: remote_address.clone(),
                remote_port: Some(remote),
                service: service.clone(),
                target: target.clone(),
                workload_type: Some(workload.to_owned()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
