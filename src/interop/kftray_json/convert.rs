//! Between kftray's JSON entries and kftray.toml's drafts, both ways.

use super::read::set;
use super::*;
use crate::config::HttpLog;
use std::time::Duration;

/// The forwards an entry describes, or its problems (at the fields that cause them). The
/// alias is the entry's own turned into a DNS label; uniqueness is the caller's business.
pub(super) fn to_draft(entry: &Entry) -> Result<(Draft, Vec<Note>), Vec<Issue>> {
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
            issues.push(
                Issue::new(
                    "kftray::json-workload",
                    format!("unknown workload_type `{other}`"),
                )
                .label(
                    entry.span_of("workload_type"),
                    "not service, pod, proxy or expose",
                )
                .help(
                    "kftray's workload types are \"service\", \"pod\" (a label selector in \
                     \"target\"), \"proxy\" and \"expose\"",
                ),
            );
            None
        }
    };
    let protocol = protocol(entry, &mut issues);
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
    let local_address = local_address(entry, &mut issues);
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
    draft.kubeconfig = kubeconfig(c);
    draft.protocol = protocol;
    if c.auto_loopback_address == Some(true) {
        // kftray picks a 127.0.0.x per forward; kftray.toml's own pick is stable per project.
        draft.local_address = Some("auto".into());
    } else if let Some(ip) = local_address {
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
    if c.http_logs_enabled == Some(true) && protocol == Protocol::Udp {
        notes.push((
            entry.span_of("http_logs_enabled"),
            "HTTP logging is not kept for a UDP forward: HTTP runs over TCP".into(),
        ));
    } else if c.http_logs_enabled == Some(true) {
        let defaults = HttpLog::default();
        draft.http_log = Some(HttpLog {
            max_file_size: c.http_logs_max_file_size.unwrap_or(defaults.max_file_size),
            retention: match (c.http_logs_auto_cleanup, c.http_logs_retention_days) {
                (Some(false), _) => None,
                (_, Some(days)) => Some(Duration::from_secs(days.saturating_mul(DAY))),
                (_, None) => defaults.retention,
            },
            ..defaults
        });
    }
    draft.source_name = original;
    draft.description = draft
        .source_name
        .clone()
        .filter(|name| *name != draft.alias);
    Ok((draft, notes))
}

const DAY: u64 = 86_400;

/// The entry's protocol (an unknown one is reported, and read as TCP).
pub(super) fn protocol(entry: &Entry, issues: &mut Vec<Issue>) -> Protocol {
    let c = &entry.config;
    match set(&c.protocol).map(|p| p.to_ascii_lowercase()).as_deref() {
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
    }
}

/// The entry's local address, None for 127.0.0.1 (or none given).
pub(super) fn local_address(entry: &Entry, issues: &mut Vec<Issue>) -> Option<IpAddr> {
    let a = set(&entry.config.local_address)?;
    // kftray's own example files write "localhost": its loopback, as kftray binds it.
    if a.eq_ignore_ascii_case("localhost") {
        return None;
    }
    match a.parse::<IpAddr>() {
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
    }
}

/// The kubeconfig the entry names; kftray writes "default" for $KUBECONFIG's.
pub(super) fn kubeconfig(c: &KftrayConfig) -> Option<String> {
    set(&c.kubeconfig).filter(|k| k != "default")
}

/// Why a forward cannot be written in kftray's JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unexportable {
    #[error(
        "kftray's JSON has no {key} target (only service, pod selector and proxy); a \
         `selector` with the {key}'s pod labels can be exported"
    )]
    Target { key: &'static str },
    #[error("kftray's JSON has port numbers only, and remote port `{name}` is a name")]
    PortName { name: String },
    #[error("kftray's JSON lists each port, and `ports = \"all\"` is known only to a cluster")]
    AllPorts,
    #[error(
        "kftray's expose has one port, the local server's and the Service's, and this \
         Service's port {port} is not local_port {local_port}"
    )]
    ExposePort { port: u16, local_port: u16 },
    #[error("kftray's expose carries TCP only, and this one is UDP")]
    ExposeUdp,
    #[error("kftray's public expose routes every path, and this Ingress routes `{path}` only")]
    IngressPath { path: String },
    #[error(
        "kftray's public expose has TLS only from cert-manager, and this Ingress serves \
         Secret `{secret}` without a cert_issuer"
    )]
    TlsWithoutIssuer { secret: String },
    #[error(
        "kftray names a public expose's Service after the first label of its host, and \
         Service `{service}` is not the first label of `{host}`"
    )]
    ServiceName { service: String, host: String },
}

/// A forward as kftray's JSON can carry it, or why it cannot.
pub fn from_draft(draft: &Draft, namespace: &str) -> Result<Vec<KftrayConfig>, Unexportable> {
    let (workload, service, target, remote_address) = match &draft.target {
        DraftTarget::Service(s) => ("service", Some(s.clone()), None, None),
        DraftTarget::Selector(s) => ("pod", None, Some(s.clone()), None),
        DraftTarget::Proxy(h) => ("proxy", None, None, Some(h.clone())),
        other => {
            return Err(Unexportable::Target { key: other.key() });
        }
    };
    // A description that the alias was made from is the kftray alias; else the host name,
    // which kftray takes from the alias; else the alias.
    let alias = match (&draft.description, &draft.domain) {
        (Some(d), _) if came_from(&draft.alias, d, draft.target.value()) => d.clone(),
        (_, Some(domain)) => domain.clone(),
        _ => draft.alias.clone(),
    };
    if draft.ports.is_empty() {
        return Err(Unexportable::AllPorts);
    }
    let several = draft.ports.len() > 1;
    let auto = draft.local_address.as_deref() == Some("auto");
    draft
        .ports
        .iter()
        .map(|pair| {
            let remote = match &pair.remote {
                PortRef::Number(n) => *n,
                PortRef::Name(name) => {
                    return Err(Unexportable::PortName { name: name.clone() });
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
                http_logs_auto_cleanup: draft.http_log.as_ref().map(|l| l.retention.is_some()),
                http_logs_enabled: draft.http_log.as_ref().map(|_| true),
                http_logs_max_file_size: draft.http_log.as_ref().map(|l| l.max_file_size),
                // Whole days, rounded up: kftray keeps nothing for less than a day.
                http_logs_retention_days: draft
                    .http_log
                    .as_ref()
                    .and_then(|l| l.retention)
                    .map(|r| r.as_secs().div_ceil(DAY).max(1)),
                kubeconfig: draft.kubeconfig.clone(),
                auto_loopback_address: auto.then_some(true),
                local_address: draft.local_address.clone().filter(|_| !auto),
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
                ..KftrayConfig::default()
            })
        })
        .collect()
}
