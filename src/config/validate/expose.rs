//! `[exposes.<alias>]`: reverse forwards, a server on this machine reachable in the cluster.

use super::Context;
use super::proxy::port;
use crate::config::checks::is_dns_label;
use crate::config::diagnostic::Issue;
use crate::config::effective::Expose;
use crate::config::model::{ExposeSpec, ForwardSpec, Protocol};
use crate::config::trust;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// What the user's own files let the team's file decide about exposes.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Trusted {
    pub(super) exposes: bool,
    pub(super) ingresses: bool,
}

impl Context<'_> {
    /// One `[exposes.<alias>]`, if it is whole.
    pub(super) fn expose(
        &self,
        spec: &ExposeSpec,
        trusted: Trusted,
        issues: &mut Vec<Issue>,
    ) -> Option<Expose> {
        let (alias, key) = (self.alias, self.alias_span.clone());
        if !is_dns_label(alias) {
            issues.push(
                Issue::new(
                    "kftray::alias",
                    format!("alias `{alias}` is not a valid DNS label"),
                )
                .label(key.clone(), "not a DNS label")
                .help("use lowercase letters, digits and '-' (at most 63)"),
            );
        }
        trust::expose(alias, &key, trusted.exposes, self.map, issues);
        let inherits = ForwardSpec {
            context: spec.context.clone(),
            kubeconfig: spec.kubeconfig.clone(),
            namespace: spec.namespace.clone(),
            ..ForwardSpec::default()
        };
        let context = self.context(&inherits, issues);
        let kubeconfig = self.kubeconfig(&inherits, issues);
        let namespace = self.namespace(&inherits, issues);
        let local_port = match &spec.local_port {
            Some(p) => port(p, issues),
            // Written wrong, it was reported as such.
            None if self.rejected.iter().any(|k| k == "local_port") => None,
            None => {
                issues.push(
                    Issue::new("kftray::expose", format!("`{alias}` names no local_port"))
                        .label(
                            key.clone(),
                            "which port does the server on this machine listen on?",
                        )
                        .help("add local_port = 3000 (the port of the server to expose)"),
                );
                None
            }
        };
        let address = match &spec.local_address {
            None => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            Some(a) if a.value.eq_ignore_ascii_case("localhost") => {
                Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
            }
            Some(a) => match a.value.trim().parse::<IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => {
                    issues.push(
                        Issue::new(
                            "kftray::local-address",
                            format!("`{}` is not an IP address", a.value),
                        )
                        .label(a.span.clone(), "not an IP address")
                        .help("write the address the local server listens on, e.g. \"127.0.0.1\""),
                    );
                    None
                }
            },
        };
        let service = match &spec.service {
            Some(s) if is_service_name(&s.value) => Some(s.value.clone()),
            Some(s) => {
                issues.push(
                    Issue::new(
                        "kftray::service-name",
                        format!("`{}` is not a valid Service name", s.value),
                    )
                    .label(s.span.clone(), "not a DNS-1035 label")
                    .help("lowercase letters, digits and '-', starting with a letter, at most 63"),
                );
                None
            }
            None if is_service_name(alias) => Some(alias.to_owned()),
            None => {
                issues.push(
                    Issue::new(
                        "kftray::service-name",
                        format!("the alias `{alias}` cannot name a Service"),
                    )
                    .label(key.clone(), "a Service name starts with a letter")
                    .help("add service = \"NAME\""),
                );
                None
            }
        };
        let service_port = match &spec.port {
            Some(p) => port(p, issues),
            None => local_port,
        };
        let protocol = spec.protocol.as_ref().map_or(Protocol::Tcp, |p| p.value);
        let ingress = match (&spec.ingress, &service) {
            (Some(ingress), _) if protocol == Protocol::Udp => {
                issues.push(
                    Issue::new(
                        "kftray::ingress",
                        format!("`{alias}` is UDP, and an Ingress routes HTTP"),
                    )
                    .label(ingress.span.clone(), "not for a UDP expose")
                    .help("remove `ingress`, or expose a TCP server"),
                );
                None
            }
            (Some(ingress), Some(service)) => {
                trust::ingress(alias, &ingress.span, trusted.ingresses, self.map, issues);
                Some(self.ingress(ingress, service, issues)?)
            }
            _ => None,
        };
        let (local_port, address, service, service_port) =
            (local_port?, address?, service?, service_port?);
        Some(Expose {
            alias: alias.to_owned(),
            context,
            kubeconfig,
            namespace,
            local: SocketAddr::new(address, local_port),
            service,
            port: service_port,
            protocol,
            enabled: spec.enabled.as_ref().is_none_or(|e| e.value),
            description: spec.description.as_ref().map(|d| d.value.clone()),
            ingress,
        })
    }
}

/// A Service's name: a DNS-1035 label.
fn is_service_name(s: &str) -> bool {
    is_dns_label(s) && s.starts_with(|c: char| c.is_ascii_lowercase())
}
