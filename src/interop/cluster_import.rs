//! Forwards found in a cluster: services annotated for kftray's auto-import (or, with
//! `--all-services`, every service), each port resolved as kubectl resolves it — the
//! service port, its targetPort, and the container port a selected pod gives a named one.

use super::annotations::{self, CONFIGS, ENABLED};
use crate::cluster::{ClusterError, ClusterKey, Clusters};
use crate::config::{LocalPort, PortRef, Protocol};
use crate::edit::{Draft, DraftTarget, PortPair};
use crate::resolve::{container_port, is_usable, rank_pods, service_target};
use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use kube::api::ListParams;
use std::path::PathBuf;

/// Which namespaces to look in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The context's namespace, as kubectl.
    Context,
    Namespace(String),
    All,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub scope: Scope,
    /// Every service, annotated or not; local ports are then only suggestions.
    pub all_services: bool,
}

/// What was found: the forwards, and a note for each service or entry left out.
#[derive(Debug, Default)]
pub struct Found {
    pub drafts: Vec<Draft>,
    pub notes: Vec<String>,
    /// The context used.
    pub context: String,
    pub services: usize,
}

/// Why nothing could be looked at in the cluster.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("cannot list services: {source}")]
    List { source: kube::Error },
}

pub async fn discover(options: &Options) -> Result<Found, DiscoverError> {
    let key = ClusterKey {
        kubeconfig: options.kubeconfig.clone(),
        context: options.context.clone(),
    };
    let cluster = Clusters::new().get(&key).await?;
    let client = cluster.client.clone();
    let api: Api<Service> = match &options.scope {
        Scope::All => Api::all(client.clone()),
        Scope::Namespace(ns) => Api::namespaced(client.clone(), ns),
        Scope::Context => Api::namespaced(client.clone(), &cluster.default_namespace),
    };
    let mut services = api
        .list(&ListParams::default())
        .await
        .map_err(|source| DiscoverError::List { source })?
        .items;
    services.sort_by_key(|s| (s.metadata.namespace.clone(), s.metadata.name.clone()));
    let mut found = Found {
        context: cluster.context.clone(),
        ..Found::default()
    };
    for service in &services {
        let annotations = service.metadata.annotations.clone().unwrap_or_default();
        let enabled = annotations
            .get(ENABLED)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        if !enabled && !options.all_services {
            continue;
        }
        found.services += 1;
        let mut one = ServiceImport::new(service, &client, options).await;
        match annotations.get(CONFIGS).filter(|v| !v.trim().is_empty()) {
            Some(configs) => one.listed(configs),
            None => one.every_port(options.all_services),
        }
        found.notes.append(&mut one.notes);
        found.drafts.append(&mut one.drafts);
    }
    unique_aliases(&mut found.drafts);
    Ok(found)
}

/// One service being turned into forwards.
struct ServiceImport<'a> {
    service: &'a Service,
    name: String,
    namespace: String,
    /// A pod the service selects, for its named container ports.
    pod: Option<Pod>,
    options: &'a Options,
    drafts: Vec<Draft>,
    notes: Vec<String>,
}

impl<'a> ServiceImport<'a> {
    async fn new(service: &'a Service, client: &kube::Client, options: &'a Options) -> Self {
        let name = service.metadata.name.clone().unwrap_or_default();
        let namespace = service.metadata.namespace.clone().unwrap_or_default();
        let selector = service.spec.as_ref().and_then(|s| s.selector.clone());
        let named_targets = ports(service)
            .iter()
            .any(|p| matches!(p.target_port, Some(IntOrString::String(_))));
        let pod = match selector.filter(|s| !s.is_empty()) {
            Some(labels) if named_targets => {
                let selector = crate::resolve::label_selector_string(&LabelSelector {
                    match_labels: Some(labels),
                    match_expressions: None,
                });
                let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
                let mut list = pods
                    .list(&ListParams::default().labels(&selector))
                    .await
                    .map(|l| l.items)
                    .unwrap_or_default();
                rank_pods(&mut list);
                let usable = list.iter().position(is_usable).unwrap_or(0);
                (!list.is_empty()).then(|| list.swap_remove(usable))
            }
            _ => None,
        };
        ServiceImport {
            service,
            name,
            namespace,
            pod,
            options,
            drafts: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn place(&self) -> String {
        format!("service {}/{}", self.namespace, self.name)
    }

    /// Whether kftray.toml can forward to it at all: it needs pods chosen by a selector.
    fn reachable(&mut self) -> bool {
        let spec = self.service.spec.as_ref();
        let why = if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
            Some(
                "an ExternalName service has no pods to forward to; a `proxy` forward reaches its host",
            )
        } else if spec
            .and_then(|s| s.selector.as_ref())
            .is_none_or(|s| s.is_empty())
        {
            Some("it has no selector, so no pods to forward to")
        } else {
            None
        };
        if let Some(why) = why {
            self.notes.push(format!("{} skipped: {why}", self.place()));
        }
        why.is_none()
    }

    fn draft(&self, alias: &str, protocol: Protocol, pairs: Vec<PortPair>) -> Draft {
        let mut d = Draft::new(alias, DraftTarget::Service(self.name.clone()), pairs);
        d.namespace = Some(self.namespace.clone());
        d.context = self.options.context.clone();
        d.kubeconfig = self
            .options
            .kubeconfig
            .as_ref()
            .map(|p| p.display().to_string());
        d.protocol = protocol;
        d
    }

    /// The port number the pods serve for a service port, when it can be known.
    fn target_number(&self, port: &ServicePort) -> Option<u16> {
        let by = match &port.name {
            Some(n) if !n.is_empty() => PortRef::Name(n.clone()),
            _ => PortRef::Number(u16::try_from(port.port).ok()?),
        };
        match service_target(self.service, &by).ok()? {
            PortRef::Number(n) => Some(n),
            named => container_port(self.pod.as_ref()?, &named).ok(),
        }
    }

    /// `kftray.app/configs`: the forwards it lists.
    fn listed(&mut self, configs: &str) {
        if !self.reachable() {
            return;
        }
        let mut names: Vec<String> = Vec::new();
        for p in ports(self.service) {
            names.extend(p.name.clone().filter(|n| !n.is_empty()));
            if let Some(IntOrString::String(t)) = &p.target_port {
                names.push(t.clone());
            }
        }
        names.sort();
        names.dedup();
        for entry in annotations::parse_configs(configs, &names) {
            let entry = match entry {
                Ok(e) => e,
                Err(why) => {
                    self.notes
                        .push(format!("{}: {CONFIGS} entry {why}; skipped", self.place()));
                    continue;
                }
            };
            let Some((port, remote)) = self.service_port_for(&entry.port) else {
                let known: Vec<String> = ports(self.service)
                    .iter()
                    .map(|p| describe(p, self.target_number(p)))
                    .collect();
                self.notes.push(format!(
                    "{}: {CONFIGS} entry `{}-{}-{}`: no service port serves {} (its ports: {}); skipped",
                    self.place(),
                    entry.alias,
                    entry.local_port,
                    entry.port,
                    entry.port,
                    known.join(", ")
                ));
                continue;
            };
            let alias = super::alias::alias_base(Some(&entry.alias), &self.name);
            let mut d = self.draft(
                &alias,
                protocol(port),
                vec![PortPair {
                    local: Some(LocalPort::Fixed(entry.local_port)),
                    remote,
                }],
            );
            d.source_name = Some(entry.alias.clone());
            d.description = Some(entry.alias).filter(|a| *a != alias);
            self.drafts.push(d);
        }
    }

    /// The service port an annotation's target port means, and how to write it: kftray
    /// means the port the pods serve (a number) or a service port's name.
    fn service_port_for(&self, wanted: &PortRef) -> Option<(&'a ServicePort, PortRef)> {
        let all = ports(self.service);
        match wanted {
            PortRef::Number(n) => all
                .iter()
                .find(|p| self.target_number(p) == Some(*n))
                .or_else(|| all.iter().find(|p| p.port == i32::from(*n)))
                .and_then(|p| Some((p, PortRef::Number(u16::try_from(p.port).ok()?)))),
            PortRef::Name(name) => {
                let port = all
                    .iter()
                    .find(|p| p.name.as_deref() == Some(name.as_str()))
                    .or_else(|| {
                        all.iter().find(
                            |p| matches!(&p.target_port, Some(IntOrString::String(t)) if t == name),
                        )
                    })?;
                Some((port, remote_of(port)?))
            }
        }
    }

    /// No `kftray.app/configs`: a forward for every port, local port = the pods' port
    /// (kftray's behaviour). With `choose_ports`, a port below 1024 moves to 8000 + port so
    /// that it needs no privilege (the merge then moves any that is taken).
    fn every_port(&mut self, choose_ports: bool) {
        if !self.reachable() {
            return;
        }
        let mut groups: Vec<(Protocol, Vec<PortPair>)> = Vec::new();
        for port in ports(self.service) {
            let protocol = protocol(port);
            if port.protocol.as_deref().is_some_and(|p| p == "SCTP") {
                self.notes.push(format!(
                    "{}: port {} is SCTP, which cannot be forwarded; skipped",
                    self.place(),
                    port.port
                ));
                continue;
            }
            let Some(remote) = remote_of(port) else {
                continue;
            };
            let local = match self.target_number(port) {
                Some(n) => n,
                None => {
                    self.notes.push(format!(
                        "{}: no pod tells which port {} is; local port {} chosen",
                        self.place(),
                        describe(port, None),
                        port.port
                    ));
                    u16::try_from(port.port).unwrap_or(0)
                }
            };
            let local = match local {
                n if choose_ports && n < 1024 => n + 8000,
                n => n,
            };
            let pair = PortPair {
                local: Some(LocalPort::Fixed(local)),
                remote,
            };
            match groups.iter_mut().find(|(p, _)| *p == protocol) {
                Some((_, pairs)) => pairs.push(pair),
                None => groups.push((protocol, vec![pair])),
            }
        }
        let split = groups.len() > 1;
        for (protocol, pairs) in groups {
            let alias = match protocol {
                Protocol::Udp if split => format!("{}-udp", self.name),
                _ => self.name.clone(),
            };
            let d = self.draft(&alias, protocol, pairs);
            self.drafts.push(d);
        }
    }
}

fn ports(service: &Service) -> &[ServicePort] {
    service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or_default()
}

fn protocol(port: &ServicePort) -> Protocol {
    match port.protocol.as_deref() {
        Some("UDP") => Protocol::Udp,
        _ => Protocol::Tcp,
    }
}

/// A service port as kftray.toml names it: by its name when it has one.
fn remote_of(port: &ServicePort) -> Option<PortRef> {
    match &port.name {
        Some(n) if !n.is_empty() => Some(PortRef::Name(n.clone())),
        _ => Some(PortRef::Number(u16::try_from(port.port).ok()?)),
    }
}

fn describe(port: &ServicePort, target: Option<u16>) -> String {
    let name = port
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .map(|n| format!("/{n}"))
        .unwrap_or_default();
    match target {
        Some(t) => format!("{}{name}→{t}", port.port),
        None => format!("{}{name}", port.port),
    }
}

/// Two services of the same name in two namespaces (`-A`), or two entries with one alias:
/// the later ones get the namespace, then a number.
fn unique_aliases(drafts: &mut [Draft]) {
    let mut seen: Vec<String> = Vec::new();
    for d in drafts.iter_mut() {
        if seen.contains(&d.alias) {
            let ns = d.namespace.clone().unwrap_or_default();
            let mut alias = super::alias::slug(&format!("{}-{ns}", d.alias));
            let mut n = 2;
            while seen.contains(&alias) {
                alias = super::alias::slug(&format!("{}-{ns}-{n}", d.alias));
                n += 1;
            }
            *d = d.with_alias(&alias);
        }
        seen.push(d.alias.clone());
    }
}
