//! kftray's `expose` entries, which are `[exposes.<alias>]` here, both ways.
//!
//! The app names what it creates after `alias`: for `exposure_type` "cluster" the Service
//! is the alias; for "public" the alias is the Ingress's host, and the Service (and the
//! Ingress) is named after its first label (`hook.dev.example.com` → `hook`). Its Service
//! listens on `local_port`, the local server's own port. With `cert_manager_enabled`, the
//! Ingress serves TLS from a certificate the issuer (`letsencrypt-prod` ClusterIssuer
//! unless said) puts in a Secret; the app's Secret is named after its database id, which has
//! no place here, so the Secret is kftray.toml's default `<service>-tls`: cert-manager fills
//! either.

use super::convert::{Unexportable, kubeconfig, local_address, protocol};
use super::read::set;
use super::*;
use crate::config::{CertIssuer, Ingress, IngressTls};
use crate::edit::document::{self, EXPOSES};
use crate::interop::alias::label_of;

/// The issuer the app uses when cert-manager is on and none is named.
const DEFAULT_ISSUER: &str = "letsencrypt-prod";

/// Whether an entry is an expose rather than a forward.
pub(super) fn is_expose(c: &KftrayConfig) -> bool {
    set(&c.workload_type).is_some_and(|w| w.eq_ignore_ascii_case("expose"))
}

/// The expose an entry describes, or its problems (at the fields that cause them). The
/// alias is the Service's name; uniqueness is the caller's business.
pub(super) fn to_expose(entry: &Entry) -> Result<(ExposeDraft, Vec<Note>), Vec<Issue>> {
    let c = &entry.config;
    let mut issues = Vec::new();
    let public = match set(&c.exposure_type)
        .map(|t| t.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("cluster") => false,
        Some("public") => true,
        Some(other) => {
            issues.push(
                Issue::new(
                    "kftray::json-exposure",
                    format!("unknown exposure_type `{other}`"),
                )
                .label(entry.span_of("exposure_type"), "not cluster or public")
                .help(
                    "kftray's exposure types are \"cluster\" (a Service) and \"public\" (a \
                     Service, and an Ingress for the domain in \"alias\")",
                ),
            );
            false
        }
    };
    let alias = set(&c.alias);
    if alias.is_none() {
        issues.push(
            Issue::new("kftray::json-missing", "this expose has no `alias`")
                .label(entry.span_of("alias"), "what does kftray name it?")
                .help(if public {
                    "add \"alias\": \"hook.dev.example.com\" (the domain its Ingress answers for)"
                } else {
                    "add \"alias\": \"NAME\" (the name of its Service)"
                }),
        );
    }
    let local_port = match c.local_port {
        Some(0) => {
            issues.push(
                Issue::new("kftray::json-port", "local port 0 is not a port")
                    .label(entry.span_of("local_port"), "0")
                    .help("write the port the server on this machine listens on, 1 to 65535"),
            );
            None
        }
        Some(n) => Some(n),
        None => {
            issues.push(
                Issue::new("kftray::json-missing", "this expose has no `local_port`")
                    .label(entry.span_of("local_port"), "which port on this machine?")
                    .help("add \"local_port\": 3000 (the port the local server listens on)"),
            );
            None
        }
    };
    let address = local_address(entry, &mut issues);
    if protocol(entry, &mut issues) == Protocol::Udp {
        issues.push(
            Issue::new("kftray::json-protocol", "an expose carries TCP only")
                .label(entry.span_of("protocol"), "UDP")
                .help("write \"protocol\": \"tcp\", or leave it out"),
        );
    }
    let ingress = if public {
        ingress_parts(entry, &mut issues)
    } else {
        None
    };
    let (Some(alias), Some(local_port)) = (alias, local_port) else {
        return Err(issues);
    };
    if !issues.is_empty() {
        return Err(issues);
    }
    let mut notes = Vec::new();
    let (service, host) = if public {
        let host = alias.to_ascii_lowercase();
        let first = host.split('.').next().unwrap_or_default().to_owned();
        (first, Some(host))
    } else {
        let service = label_of(&alias, "expose");
        if service != alias {
            notes.push((
                entry.span_of("alias"),
                format!(
                    "kftray names the Service after the alias, and `{alias}` cannot name one: \
                     the Service is `{service}`"
                ),
            ));
        }
        (service, None)
    };
    notes.extend(unused(entry, public));
    let mut draft = ExposeDraft::new(label_of(&service, "expose"), service, local_port);
    draft.local_address = address.map(|ip| ip.to_string());
    draft.namespace = set(&c.namespace);
    draft.context = set(&c.context);
    draft.kubeconfig = kubeconfig(c);
    // A public alias is kept as the host; a cluster one, if it is not the Service's name.
    draft.description = host
        .is_none()
        .then_some(alias)
        .filter(|a| *a != draft.service);
    draft.ingress = host
        .zip(ingress)
        .map(|(host, (class, annotations, issuer))| Ingress {
            host,
            path: "/".into(),
            class,
            annotations,
            tls: issuer.map(|issuer| IngressTls {
                secret: IngressTls::default_secret(&draft.service),
                issuer: Some(issuer),
            }),
        });
    Ok((draft, notes))
}

/// A public expose's IngressClass, annotations and cert-manager issuer.
type IngressParts = (Option<String>, BTreeMap<String, String>, Option<CertIssuer>);

/// The Ingress settings of a public expose, or None after reporting what is wrong with them.
fn ingress_parts(entry: &Entry, issues: &mut Vec<Issue>) -> Option<IngressParts> {
    let c = &entry.config;
    let annotations = match set(&c.ingress_annotations) {
        None => Some(BTreeMap::new()),
        Some(text) => match serde_json::from_str::<BTreeMap<String, String>>(&text) {
            Ok(map) => Some(map),
            Err(e) => {
                issues.push(
                    Issue::new(
                        "kftray::json-annotations",
                        format!("`ingress_annotations` is not a JSON object of strings: {e}"),
                    )
                    .label(
                        entry.span_of("ingress_annotations"),
                        "expected \"{\\\"name\\\": \\\"value\\\"}\"",
                    )
                    .help(
                        "kftray writes the annotations as a JSON object in a string: \
                         \"{\\\"nginx.ingress.kubernetes.io/proxy-body-size\\\": \\\"10m\\\"}\"",
                    ),
                );
                None
            }
        },
    };
    let issuer = if c.cert_manager_enabled == Some(true) {
        let namespaced = match set(&c.cert_issuer_kind).as_deref() {
            None | Some("ClusterIssuer") => Some(false),
            Some("Issuer") => Some(true),
            Some(other) => {
                issues.push(
                    Issue::new(
                        "kftray::json-issuer",
                        format!("`{other}` is not a cert-manager issuer kind"),
                    )
                    .label(
                        entry.span_of("cert_issuer_kind"),
                        "not ClusterIssuer or Issuer",
                    )
                    .help("write \"cert_issuer_kind\": \"ClusterIssuer\" or \"Issuer\""),
                );
                None
            }
        };
        Some(namespaced.map(|namespaced| CertIssuer {
            namespaced,
            name: set(&c.cert_issuer).unwrap_or_else(|| DEFAULT_ISSUER.to_owned()),
        }))
    } else {
        Some(None)
    };
    Some((set(&c.ingress_class), annotations?, issuer?))
}

/// Notes about the fields given that this expose has no use for (the app's own export
/// leaves them out).
fn unused(entry: &Entry, public: bool) -> Vec<Note> {
    const FORWARD: &str = "has no use in an expose";
    const INGRESS: &str = "is for a public expose's Ingress";
    let c = &entry.config;
    let cert_manager = c.cert_manager_enabled == Some(true);
    let issuer = if public {
        "is used only with \"cert_manager_enabled\": true"
    } else {
        INGRESS
    };
    let unused_issuer = !(public && cert_manager);
    [
        ("service", set(&c.service).is_some(), FORWARD),
        ("target", set(&c.target).is_some(), FORWARD),
        ("remote_address", set(&c.remote_address).is_some(), FORWARD),
        ("remote_port", c.remote_port.is_some_and(|p| p > 0), FORWARD),
        ("domain_enabled", c.domain_enabled == Some(true), FORWARD),
        (
            "auto_loopback_address",
            c.auto_loopback_address == Some(true),
            FORWARD,
        ),
        (
            "http_logs_enabled",
            c.http_logs_enabled == Some(true),
            FORWARD,
        ),
        (
            "ingress_class",
            !public && set(&c.ingress_class).is_some(),
            INGRESS,
        ),
        (
            "ingress_annotations",
            !public && set(&c.ingress_annotations).is_some(),
            INGRESS,
        ),
        ("cert_manager_enabled", !public && cert_manager, INGRESS),
        (
            "cert_issuer",
            unused_issuer && set(&c.cert_issuer).is_some(),
            issuer,
        ),
        (
            "cert_issuer_kind",
            unused_issuer && set(&c.cert_issuer_kind).is_some(),
            issuer,
        ),
    ]
    .into_iter()
    .filter(|(_, given, _)| *given)
    .map(|(field, _, why)| (entry.span_of(field), format!("`{field}` {why}: ignored")))
    .collect()
}

/// The problems of an expose written alone into `layer`, each at the JSON field the TOML
/// key it is about came from.
pub(super) fn check(entry: &Entry, draft: &ExposeDraft, files: &Files, layer: Layer) -> Vec<Issue> {
    let table = draft.to_table(&files.inherited(layer));
    let alone = files.alone(layer, EXPOSES, &draft.alias, table);
    let Err(problems) = alone.after() else {
        return Vec::new();
    };
    let file = alone.file(layer);
    let text = file.text();
    problems
        .findings()
        .iter()
        .map(|finding| {
            let key = finding
                .labels
                .first()
                .filter(|l| l.file == file.path)
                .and_then(|l| document::key_at(&text, EXPOSES, &draft.alias, l.start));
            super::issue_at(finding, entry.span_of(field_of(key.as_deref())))
        })
        .collect()
}

/// The JSON field a key of `[exposes.<alias>]` comes from.
fn field_of(key: Option<&str>) -> &'static str {
    match key.unwrap_or_default() {
        "local_port" | "port" => "local_port",
        "local_address" => "local_address",
        "namespace" => "namespace",
        "context" => "context",
        "kubeconfig" => "kubeconfig",
        "ingress.class" => "ingress_class",
        "ingress.annotations" => "ingress_annotations",
        "ingress.cert_issuer" => "cert_issuer",
        "ingress.cert_issuer_kind" => "cert_issuer_kind",
        // The alias names the Service, and is the host of a public one.
        _ => "alias",
    }
}

/// An expose as kftray's JSON can carry it, or why it cannot.
pub fn from_expose(draft: &ExposeDraft, namespace: &str) -> Result<KftrayConfig, Unexportable> {
    if draft.protocol == Protocol::Udp {
        return Err(Unexportable::ExposeUdp);
    }
    if draft.port != draft.local_port {
        return Err(Unexportable::ExposePort {
            port: draft.port,
            local_port: draft.local_port,
        });
    }
    let mut c = KftrayConfig {
        alias: Some(draft.service.clone()),
        context: draft.context.clone(),
        exposure_type: Some("cluster".into()),
        kubeconfig: draft.kubeconfig.clone(),
        local_address: draft.local_address.clone(),
        local_port: Some(draft.local_port),
        namespace: Some(namespace.to_owned()),
        protocol: Some(Protocol::Tcp.to_string()),
        workload_type: Some("expose".into()),
        ..KftrayConfig::default()
    };
    let Some(ingress) = &draft.ingress else {
        return Ok(c);
    };
    if ingress.path != "/" {
        return Err(Unexportable::IngressPath {
            path: ingress.path.clone(),
        });
    }
    if ingress.host.split('.').next() != Some(draft.service.as_str()) {
        return Err(Unexportable::ServiceName {
            service: draft.service.clone(),
            host: ingress.host.clone(),
        });
    }
    let issuer = match &ingress.tls {
        None => None,
        Some(IngressTls {
            issuer: Some(issuer),
            ..
        }) => Some(issuer),
        Some(IngressTls { secret, .. }) => {
            return Err(Unexportable::TlsWithoutIssuer {
                secret: secret.clone(),
            });
        }
    };
    c.alias = Some(ingress.host.clone());
    c.exposure_type = Some("public".into());
    c.ingress_class = ingress.class.clone();
    c.ingress_annotations = Some(&ingress.annotations)
        .filter(|a| !a.is_empty())
        .and_then(|a| serde_json::to_string(a).ok());
    c.cert_manager_enabled = issuer.map(|_| true);
    c.cert_issuer = issuer.map(|i| i.name.clone());
    c.cert_issuer_kind = issuer.map(|i| {
        if i.namespaced {
            "Issuer"
        } else {
            "ClusterIssuer"
        }
        .to_owned()
    });
    Ok(c)
}
