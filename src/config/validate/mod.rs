//! Meaning: from the typed file to the effective forwards, checking everything that can be
//! checked without a cluster and reporting every problem found.

use super::checks::is_dns_label;
use super::diagnostic::Issue;
use super::effective::{AllPorts, Effective, Forward};
use super::model::{At, ForwardSpec, Protocol};
use super::source::{Origin, SourceMap};
use super::typed::Typed;
use std::ops::Range;

mod expose;
mod hosts;
mod http_log;
mod ingress;
mod inherited;
mod ports;
mod proxy;
mod relay;
mod sync;
mod target;

use ports::Ports;

/// A resolved forward and the spans its conflicts are reported at.
struct Placed {
    forward: Forward,
    port_span: Range<usize>,
}

pub(crate) fn effective(typed: Typed, map: &SourceMap, issues: &mut Vec<Issue>) -> Effective {
    let Typed {
        file,
        forward_keys,
        rejected,
        sync_key,
        proxy_key,
        proxy_rejected,
        expose_keys,
    } = typed;
    if let Some(version) = &file.version
        && version.value != 1
    {
        issues.push(
            Issue::new(
                "kftray::version",
                format!("unknown version {}", version.value),
            )
            .label(version.span.clone(), "this kftray reads version 1")
            .help("write `version = 1`, or update kftray if the file is newer"),
        );
    }
    let defaults = file.defaults.unwrap_or_default();
    // Only the user's own files can set [trust]: a remote one is refused before this.
    let trusted_domains = file
        .trust
        .as_ref()
        .and_then(|t| t.domains.as_ref())
        .is_some_and(|d| d.value);
    let mut placed = Vec::new();
    let mut all_ports = Vec::new();
    let mut bad_addresses = Vec::new();
    let mut domains: Vec<(String, At<String>)> = Vec::new();
    for (alias, spec) in &file.forwards {
        let alias_span = forward_keys.get(alias).cloned().unwrap_or(0..0);
        let ctx = Context {
            map,
            defaults: &defaults,
            alias,
            alias_span,
            rejected: rejected.get(alias).map(Vec::as_slice).unwrap_or_default(),
        };
        let resolved = ctx.resolve(spec, trusted_domains, issues, &mut bad_addresses);
        placed.extend(resolved.placed);
        all_ports.extend(resolved.all_ports);
        if spec.enabled.as_ref().is_none_or(|e| e.value)
            && let Some(domain) = &spec.domain
        {
            domains.push((alias.clone(), domain.clone()));
        }
    }
    hosts::domain_conflicts(&domains, issues);
    let project = map
        .files()
        .iter()
        .find(|f| f.origin == Origin::Local)
        .map(|f| super::discover::project_dir(&f.path).display().to_string())
        .unwrap_or_default();
    hosts::auto_addresses(
        &project,
        placed.iter_mut().map(|p| &mut p.forward).collect(),
        &mut all_ports,
    );
    let proxy = file.proxy.as_ref().and_then(|spec| {
        proxy::section(
            spec,
            proxy_key.unwrap_or(0..0),
            &proxy_rejected,
            &defaults,
            map,
            issues,
            &mut bad_addresses,
        )
    });
    let trust = file.trust.as_ref();
    let trusted_exposes = expose::Trusted {
        exposes: trust
            .and_then(|t| t.exposes.as_ref())
            .is_some_and(|e| e.value),
        ingresses: trust
            .and_then(|t| t.ingresses.as_ref())
            .is_some_and(|e| e.value),
    };
    let mut exposes: Vec<_> = file
        .exposes
        .iter()
        .filter_map(|(alias, spec)| {
            let (key, rejected) = expose_keys.get(alias).cloned().unwrap_or_default();
            let ctx = Context {
                map,
                defaults: &defaults,
                alias,
                alias_span: key,
                rejected: &rejected,
            };
            ctx.expose(spec, trusted_exposes, issues)
        })
        .collect();
    exposes.sort();
    if let (Some(spec), Some(proxy)) = (&file.proxy, &proxy) {
        proxy::conflicts(spec, proxy, &placed, issues);
    }
    conflicts(&placed, issues);
    let sync = file
        .sync
        .as_ref()
        .and_then(|s| sync::section(s, sync_key.unwrap_or(0..0), map, issues));
    let relay = file
        .relay
        .as_ref()
        .map(|r| relay::section(r, map, issues))
        .unwrap_or_default();
    let mut forwards: Vec<Forward> = placed.into_iter().map(|p| p.forward).collect();
    forwards.sort();
    all_ports.sort();
    Effective {
        forwards,
        all_ports,
        sync,
        relay,
        proxy,
        exposes,
        files: map.files().iter().map(|f| f.path.clone()).collect(),
    }
}

struct Context<'a> {
    map: &'a SourceMap,
    defaults: &'a crate::config::model::Defaults,
    alias: &'a str,
    alias_span: Range<usize>,
    rejected: &'a [String],
}

impl Context<'_> {
    fn resolve(
        &self,
        spec: &ForwardSpec,
        trusted_domains: bool,
        issues: &mut Vec<Issue>,
        bad_addresses: &mut Vec<Range<usize>>,
    ) -> Resolved {
        if !is_dns_label(self.alias) {
            issues.push(
                Issue::new(
                    "kftray::alias",
                    format!("alias `{}` is not a valid DNS label", self.alias),
                )
                .label(self.alias_span.clone(), "not a DNS label")
                .help(
                    "use lowercase letters, digits and '-' (at most 63, starting and ending with \
                     a letter or digit): the alias also names the forward's host name and its \
                     relay pod",
                ),
            );
        }
        let target = self.target(spec, issues);
        let protocol = spec.protocol.as_ref().map_or(Protocol::Tcp, |p| p.value);
        let context = self.context(spec, issues);
        let namespace = self.namespace(spec, issues);
        let kubeconfig = self.kubeconfig(spec, issues);
        let enabled = spec.enabled.as_ref().is_none_or(|e| e.value);
        let expose = spec.expose_to_network.as_ref().is_some_and(|e| e.value);
        let (local_address, local_address_auto) = self.local_address(spec, issues, bad_addresses);
        let domain = self.domain(spec, local_address, trusted_domains, issues);
        let tags = self.tags(spec, issues);
        let http_log = self.http_log(spec, protocol, issues);
        let ports = self.ports(spec, target.as_ref(), issues);

        let via = self.via(spec, target.as_ref(), protocol, issues);

        // Placed even when other keys had problems, so that port conflicts are reported in
        // the same run; the effective configuration is only returned when nothing is wrong.
        let (Some((target, _)), Some(ports)) = (target, ports) else {
            return Resolved::default();
        };
        let base = AllPorts {
            alias: self.alias.to_owned(),
            context,
            kubeconfig,
            namespace,
            target,
            protocol,
            via,
            local_address,
            local_address_auto,
            domain,
            tags,
            description: spec.description.as_ref().map(|d| d.value.clone()),
            enabled,
            expose_to_network: expose,
            http_log,
        };
        let Ports::Listed(ports) = ports else {
            return Resolved {
                all_ports: Some(base),
                ..Resolved::default()
            };
        };
        let single = ports.len() == 1 && spec.ports.is_none();
        let placed = ports
            .into_iter()
            .map(|(local_port, remote_port, port_span)| {
                let name = if single {
                    self.alias.to_owned()
                } else {
                    format!("{}:{remote_port}", self.alias)
                };
                Placed {
                    forward: base.with_port(name, local_port, remote_port),
                    port_span,
                }
            })
            .collect();
        Resolved {
            placed,
            all_ports: None,
        }
    }
}

/// What one `[forwards.<alias>]` table resolves to.
#[derive(Default)]
struct Resolved {
    placed: Vec<Placed>,
    all_ports: Option<AllPorts>,
}

/// Two enabled forwards that would bind the same local address and port.
fn conflicts(placed: &[Placed], issues: &mut Vec<Issue>) {
    for (i, a) in placed.iter().enumerate() {
        for b in &placed[i + 1..] {
            let (fa, fb) = (&a.forward, &b.forward);
            if !fa.shares_port_with(fb) {
                continue;
            }
            issues.push(
                Issue::new(
                    "kftray::port-conflict",
                    format!(
                        "`{}` and `{}` both listen on {}:{}/{}",
                        fa.name, fb.name, fa.local_address, fa.local_port, fa.protocol
                    ),
                )
                .label(a.port_span.clone(), format!("`{}` listens here", fa.name))
                .label(b.port_span.clone(), format!("and `{}` too", fb.name))
                .help(
                    "give one of them another local_port, another 127.x.y.z local_address, or \
                     local_port = \"any\"",
                ),
            );
        }
    }
}
