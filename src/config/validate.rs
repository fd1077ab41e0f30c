//! Meaning: from the typed file to the effective forwards, checking everything that can be
//! checked without a cluster and reporting every problem found.

use super::checks::{
    check_selector, is_dns_label, is_dns_subdomain, is_host, is_port_name, is_tag, parse_duration,
};
use super::diagnostic::Issue;
use super::effective::{
    Effective, Forward, LocalPort, Relay, RemotePort, Sync, Target, WorkloadKind,
};
use super::model::{At, ForwardSpec, LocalPortSpec, Protocol, RelaySpec, RemotePortSpec, Via};
use super::source::{Origin, SourceMap};
use super::typed::Typed;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

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
    let mut placed = Vec::new();
    let mut bad_addresses = Vec::new();
    for (alias, spec) in &file.forwards {
        let alias_span = forward_keys.get(alias).cloned().unwrap_or(0..0);
        let ctx = Context {
            map,
            defaults: &defaults,
            alias,
            alias_span,
            rejected: rejected.get(alias).map(Vec::as_slice).unwrap_or_default(),
        };
        placed.extend(ctx.resolve(spec, issues, &mut bad_addresses));
    }
    conflicts(&placed, issues);
    let sync = file
        .sync
        .as_ref()
        .and_then(|s| sync(s, sync_key.unwrap_or(0..0), map, issues));
    let relay = file
        .relay
        .as_ref()
        .map(|r| relay(r, map, issues))
        .unwrap_or_default();
    let mut forwards: Vec<Forward> = placed.into_iter().map(|p| p.forward).collect();
    forwards.sort();
    Effective {
        forwards,
        sync,
        relay,
        files: map.files().iter().map(|f| f.path.clone()).collect(),
    }
}

struct Context<'a> {
    map: &'a SourceMap,
    defaults: &'a super::model::Defaults,
    alias: &'a str,
    alias_span: Range<usize>,
    rejected: &'a [String],
}

impl Context<'_> {
    fn resolve(
        &self,
        spec: &ForwardSpec,
        issues: &mut Vec<Issue>,
        bad_addresses: &mut Vec<Range<usize>>,
    ) -> Vec<Placed> {
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
        let local_address = self.local_address(spec, expose, issues, bad_addresses);
        let domain = spec.domain.as_ref().and_then(|d| {
            if is_host(&d.value) && d.value.parse::<IpAddr>().is_err() {
                Some(d.value.to_ascii_lowercase())
            } else {
                issues.push(
                    Issue::new(
                        "kftray::domain",
                        format!("`{}` is not a host name", d.value),
                    )
                    .label(d.span.clone(), "not a host name")
                    .help("write a name like \"api.dev.local\" (letters, digits, '-' and dots)"),
                );
                None
            }
        });
        let tags = self.tags(spec, issues);
        let ports = self.ports(spec, target.as_ref(), issues);

        let via = self.via(spec, target.as_ref(), protocol, issues);

        // Placed even when other keys had problems, so that port conflicts are reported in
        // the same run; the effective configuration is only returned when nothing is wrong.
        let (Some((target, _)), Some(ports)) = (target, ports) else {
            return Vec::new();
        };
        let single = ports.len() == 1 && spec.ports.is_none();
        ports
            .into_iter()
            .map(|(local_port, remote_port, port_span)| Placed {
                forward: Forward {
                    name: if single {
                        self.alias.to_owned()
                    } else {
                        format!("{}:{remote_port}", self.alias)
                    },
                    alias: self.alias.to_owned(),
                    context: context.clone(),
                    kubeconfig: kubeconfig.clone(),
                    namespace: namespace.clone(),
                    target: target.clone(),
                    protocol,
                    via,
                    local_address,
                    local_port,
                    remote_port,
                    domain: domain.clone(),
                    tags: tags.clone(),
                    description: spec.description.as_ref().map(|d| d.value.clone()),
                    enabled,
                    expose_to_network: expose,
                },
                port_span,
            })
            .collect()
    }

    fn target(
        &self,
        spec: &ForwardSpec,
        issues: &mut Vec<Issue>,
    ) -> Option<(Target, Range<usize>)> {
        let candidates: Vec<(&str, &At<String>)> = [
            ("service", &spec.service),
            ("selector", &spec.selector),
            ("pod", &spec.pod),
            ("deployment", &spec.deployment),
            ("statefulset", &spec.statefulset),
            ("daemonset", &spec.daemonset),
            ("proxy", &spec.proxy),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
        let (key, value) = match candidates.as_slice() {
            [] if self.was_rejected(&super::layer::TARGET_KEYS) => return None,
            [] => {
                issues.push(
                    Issue::new(
                        "kftray::no-target",
                        format!("forward `{}` has no target", self.alias),
                    )
                    .label(self.alias_span.clone(), "what does this forward reach?")
                    .help(
                        "add exactly one of: service = \"NAME\", selector = \"app=NAME\", \
                         pod = \"NAME\", deployment = \"NAME\", statefulset = \"NAME\", \
                         daemonset = \"NAME\" or proxy = \"HOST\"",
                    ),
                );
                return None;
            }
            [one] => *one,
            [(first, a), rest @ ..] => {
                let mut issue = Issue::new(
                    "kftray::two-targets",
                    format!("forward `{}` has {} targets", self.alias, rest.len() + 1),
                )
                .label(a.span.clone(), format!("`{first}` here"));
                for (k, v) in rest {
                    issue = issue.label(v.span.clone(), format!("and `{k}` here"));
                }
                issues.push(issue.help(
                    "a forward reaches exactly one target: keep one, or split it into two \
                     forwards",
                ));
                return None;
            }
        };
        let name = value.value.trim();
        let span = value.span.clone();
        let target = match key {
            "selector" => {
                if let Err(flaw) = check_selector(&value.value) {
                    let at = flaw
                        .at
                        .and_then(|r| self.inner_span(value, r))
                        .unwrap_or_else(|| span.clone());
                    issues.push(
                        Issue::new(
                            "kftray::selector",
                            format!("malformed label selector: {}", flaw.message),
                        )
                        .label(at, "here")
                        .help(
                            "kubectl's syntax: comma-separated `key=value`, `key!=value`, \
                                 `key in (a,b)`, `key notin (a,b)`, `key` or `!key`",
                        ),
                    );
                    return None;
                }
                Target::Selector {
                    selector: value.value.trim().to_owned(),
                }
            }
            "proxy" => {
                if name.is_empty() {
                    issues.push(
                        Issue::new(
                            "kftray::proxy",
                            format!("forward `{}`: a proxy needs a remote address", self.alias),
                        )
                        .label(span, "empty address")
                        .help("write the host the cluster can reach: proxy = \"redis.internal\""),
                    );
                    return None;
                }
                if !is_host(name) {
                    let help = if name.contains("://") {
                        "write only the host name, without a scheme or path"
                    } else if name.contains(':') {
                        "write only the host: the port goes in remote_port"
                    } else {
                        "write a host name or an IP address"
                    };
                    issues.push(
                        Issue::new(
                            "kftray::proxy",
                            format!("`{name}` is not a host name or IP address"),
                        )
                        .label(span, "not a host")
                        .help(help),
                    );
                    return None;
                }
                Target::Proxy {
                    host: name.to_owned(),
                }
            }
            kind => {
                let valid = if kind == "service" {
                    is_dns_label(name)
                } else {
                    is_dns_subdomain(name)
                };
                if !valid {
                    issues.push(
                        Issue::new(
                            "kftray::name",
                            format!("`{}` is not a valid {kind} name", value.value),
                        )
                        .label(span, "not a Kubernetes name")
                        .help(
                            "Kubernetes names are lowercase letters, digits, '-' (and '.' \
                             except for services)",
                        ),
                    );
                    return None;
                }
                let name = name.to_owned();
                match kind {
                    "service" => Target::Service { name },
                    "pod" => Target::Pod { name },
                    "deployment" => Target::Workload {
                        workload: WorkloadKind::Deployment,
                        name,
                    },
                    "statefulset" => Target::Workload {
                        workload: WorkloadKind::StatefulSet,
                        name,
                    },
                    _ => Target::Workload {
                        workload: WorkloadKind::DaemonSet,
                        name,
                    },
                }
            }
        };
        Some((target, value.span.clone()))
    }

    /// How the forward goes: UDP and proxies need the relay, anything may ask for it.
    fn via(
        &self,
        spec: &ForwardSpec,
        target: Option<&(Target, Range<usize>)>,
        protocol: Protocol,
        issues: &mut Vec<Issue>,
    ) -> Via {
        let proxy = target.is_some_and(|(t, _)| t.is_proxy());
        let needs_relay = protocol == Protocol::Udp || proxy;
        match &spec.via {
            Some(asked) if asked.value == Via::PortForward && needs_relay => {
                let mut issue = if proxy {
                    Issue::new(
                        "kftray::via",
                        format!(
                            "forward `{}`: a proxy host cannot be reached by port-forward",
                            self.alias
                        ),
                    )
                    .label(asked.span.clone(), "port-forward reaches pods only")
                    .help("a proxy always goes through kftray's relay pod: remove `via`")
                } else {
                    Issue::new(
                        "kftray::via",
                        format!("forward `{}`: UDP cannot go by port-forward", self.alias),
                    )
                    .label(asked.span.clone(), "port-forward carries TCP only")
                    .help("UDP always goes through kftray's relay pod: remove `via`")
                };
                if let (false, Some(p)) = (proxy, &spec.protocol) {
                    issue = issue.label(p.span.clone(), "UDP");
                }
                issues.push(issue);
                Via::Relay
            }
            Some(asked) => asked.value,
            None if needs_relay => Via::Relay,
            None => Via::PortForward,
        }
    }

    fn was_rejected(&self, keys: &[&str]) -> bool {
        self.rejected.iter().any(|k| keys.contains(&k.as_str()))
    }

    /// The span of a part of a string value, when the source writes the string literally
    /// (no escapes), so the part can be pointed at exactly.
    fn inner_span(&self, value: &At<String>, part: Range<usize>) -> Option<Range<usize>> {
        let pos = self.map.position(&value.span);
        let file = self.map.file(pos.file)?;
        let raw = file.text.get(pos.local.clone())?;
        let quoted = raw.len() == value.value.len() + 2
            && (raw.starts_with('"') || raw.starts_with('\''))
            && raw.get(1..raw.len() - 1) == Some(value.value.as_str());
        if !quoted {
            return None;
        }
        let start = value.span.start + 1 + part.start;
        Some(start..(value.span.start + 1 + part.end).max(start + 1))
    }

    fn ports(
        &self,
        spec: &ForwardSpec,
        target: Option<&(Target, Range<usize>)>,
        issues: &mut Vec<Issue>,
    ) -> Option<Vec<(LocalPort, RemotePort, Range<usize>)>> {
        let is_proxy = target.is_some_and(|(t, _)| t.is_proxy());
        if let Some(list) = &spec.ports {
            if let Some(conflict) = spec
                .remote_port
                .as_ref()
                .map(|p| &p.span)
                .or(spec.local_port.as_ref().map(|p| &p.span))
            {
                issues.push(
                    Issue::new(
                        "kftray::ports",
                        format!("forward `{}` sets both `ports` and a single port", self.alias),
                    )
                    .label(list.span.clone(), "`ports` here")
                    .label(conflict.clone(), "and a single port here")
                    .help("use either `ports = [\"LOCAL:REMOTE\", ...]` or `local_port`/`remote_port`"),
                );
                return None;
            }
            if list.value.is_empty() {
                issues.push(
                    Issue::new(
                        "kftray::ports",
                        format!("forward `{}` has no ports", self.alias),
                    )
                    .label(list.span.clone(), "empty list")
                    .help("write ports = [\"8080:80\"]"),
                );
                return None;
            }
            let mut out = Vec::new();
            let mut ok = true;
            let mut seen: BTreeMap<RemotePort, Range<usize>> = BTreeMap::new();
            for entry in &list.value {
                match self.port_entry(entry, is_proxy, issues) {
                    Some((local, remote)) => {
                        if let Some(first) = seen.get(&remote) {
                            issues.push(
                                Issue::new(
                                    "kftray::ports",
                                    format!("forward `{}` lists remote port {remote} twice", self.alias),
                                )
                                .label(first.clone(), "first here")
                                .label(entry.span.clone(), "again here")
                                .help("each remote port appears once; make a second forward for another local port"),
                            );
                            ok = false;
                            continue;
                        }
                        seen.insert(remote.clone(), entry.span.clone());
                        out.push((local, remote, entry.span.clone()));
                    }
                    None => ok = false,
                }
            }
            return ok.then_some(out);
        }
        let Some(remote) = &spec.remote_port else {
            if self.was_rejected(&["remote_port", "ports"]) {
                return None;
            }
            let mut issue = Issue::new(
                "kftray::ports",
                format!("forward `{}` has no remote port", self.alias),
            );
            issue = match &spec.local_port {
                Some(local) => issue.label(
                    local.span.clone(),
                    "a local port, but to which remote port?",
                ),
                None => issue.label(self.alias_span.clone(), "no port"),
            };
            issues.push(
                issue.help(
                    "add remote_port = 80 (a number or a port name), or ports = [\"8080:80\"]",
                ),
            );
            return None;
        };
        let remote_port = self.remote_port(&remote.value, remote.span.clone(), is_proxy, issues)?;
        let local_port = match &spec.local_port {
            Some(local) => self.local_port(&local.value, local.span.clone(), issues)?,
            None => match &remote_port {
                RemotePort::Number(n) => LocalPort::Fixed(*n),
                RemotePort::Name(name) => {
                    issues.push(
                        Issue::new(
                            "kftray::ports",
                            format!("forward `{}` needs a local_port", self.alias),
                        )
                        .label(
                            remote.span.clone(),
                            format!("the port named `{name}` has no number yet"),
                        )
                        .help("add local_port = 8080, or local_port = \"any\" for a free port"),
                    );
                    return None;
                }
            },
        };
        let span = spec
            .local_port
            .as_ref()
            .map_or_else(|| remote.span.clone(), |l| l.span.clone());
        Some(vec![(local_port, remote_port, span)])
    }

    fn port_entry(
        &self,
        entry: &At<String>,
        is_proxy: bool,
        issues: &mut Vec<Issue>,
    ) -> Option<(LocalPort, RemotePort)> {
        let text = entry.value.trim();
        let (local, remote) = match text.split_once(':') {
            Some((l, r)) => (Some(l.trim()), r.trim()),
            None => (None, text),
        };
        let remote_spec = match remote.parse::<i64>() {
            Ok(n) => RemotePortSpec::Number(n),
            Err(_) => RemotePortSpec::Name(remote.to_owned()),
        };
        let remote_span = match text.split_once(':') {
            Some((l, _)) => self.inner_span(entry, l.len() + 1..entry.value.len()),
            None => None,
        }
        .unwrap_or_else(|| entry.span.clone());
        let remote_port = self.remote_port(&remote_spec, remote_span, is_proxy, issues)?;
        let local_port = match local {
            None => match &remote_port {
                RemotePort::Number(n) => LocalPort::Fixed(*n),
                RemotePort::Name(_) => {
                    issues.push(
                        Issue::new("kftray::ports", format!("`{text}` has no local port"))
                            .label(entry.span.clone(), "which local port?")
                            .help(format!(
                                "write \"8080:{text}\", or \"any:{text}\" for a free port"
                            )),
                    );
                    return None;
                }
            },
            Some(local) => {
                let spec = if local == "any" {
                    LocalPortSpec::Any
                } else if let Ok(n) = local.parse::<i64>() {
                    LocalPortSpec::Number(n)
                } else {
                    let at = self
                        .inner_span(entry, 0..local.len())
                        .unwrap_or_else(|| entry.span.clone());
                    issues.push(
                        Issue::new("kftray::ports", format!("`{local}` is not a local port"))
                            .label(at, "expected a number or \"any\"")
                            .help("entries are \"LOCAL:REMOTE\", e.g. \"8080:80\" or \"any:http\""),
                    );
                    return None;
                };
                let at = self
                    .inner_span(entry, 0..local.len())
                    .unwrap_or_else(|| entry.span.clone());
                self.local_port(&spec, at, issues)?
            }
        };
        Some((local_port, remote_port))
    }

    fn remote_port(
        &self,
        spec: &RemotePortSpec,
        span: Range<usize>,
        is_proxy: bool,
        issues: &mut Vec<Issue>,
    ) -> Option<RemotePort> {
        match spec {
            RemotePortSpec::Number(n) => match u16::try_from(*n) {
                Ok(port) if port > 0 => Some(RemotePort::Number(port)),
                _ => {
                    issues.push(
                        Issue::new(
                            "kftray::port-range",
                            format!("remote port {n} is out of range"),
                        )
                        .label(span, "not in 1-65535")
                        .help("ports are numbers from 1 to 65535"),
                    );
                    None
                }
            },
            RemotePortSpec::Name(name) => {
                if is_proxy {
                    issues.push(
                        Issue::new(
                            "kftray::proxy-port",
                            format!("a proxy's remote port must be a number, not `{name}`"),
                        )
                        .label(span, "a port name")
                        .help("port names come from Kubernetes objects, and a proxy host has none"),
                    );
                    return None;
                }
                if !is_port_name(name) {
                    issues.push(
                        Issue::new(
                            "kftray::port-name",
                            format!("`{name}` is not a valid port name"),
                        )
                        .label(span, "not a port number or name")
                        .help(
                            "a port is a number (1-65535) or a Kubernetes port name: at most 15 \
                                 lowercase letters, digits and '-', with at least one letter",
                        ),
                    );
                    return None;
                }
                Some(RemotePort::Name(name.clone()))
            }
        }
    }

    fn local_port(
        &self,
        spec: &LocalPortSpec,
        span: Range<usize>,
        issues: &mut Vec<Issue>,
    ) -> Option<LocalPort> {
        match spec {
            LocalPortSpec::Any => Some(LocalPort::Any),
            LocalPortSpec::Number(n) => match u16::try_from(*n) {
                Ok(port) if port > 0 => Some(LocalPort::Fixed(port)),
                Ok(_) => {
                    issues.push(
                        Issue::new("kftray::port-range", "local port 0 is not a port")
                            .label(span, "0")
                            .help("write local_port = \"any\" to get a free port"),
                    );
                    None
                }
                Err(_) => {
                    issues.push(
                        Issue::new(
                            "kftray::port-range",
                            format!("local port {n} is out of range"),
                        )
                        .label(span, "not in 1-65535")
                        .help("ports are numbers from 1 to 65535; \"any\" picks a free one"),
                    );
                    None
                }
            },
        }
    }

    fn context(&self, spec: &ForwardSpec, issues: &mut Vec<Issue>) -> Option<String> {
        let value = spec.context.as_ref().or(self.defaults.context.as_ref())?;
        if value.value.trim().is_empty() {
            issues.push(
                Issue::new("kftray::context", "empty context name")
                    .label(value.span.clone(), "empty")
                    .help("remove the key to use the kubeconfig's current context"),
            );
            return None;
        }
        Some(value.value.clone())
    }

    fn namespace(&self, spec: &ForwardSpec, issues: &mut Vec<Issue>) -> Option<String> {
        let value = spec
            .namespace
            .as_ref()
            .or(self.defaults.namespace.as_ref())?;
        if !is_dns_label(&value.value) {
            issues.push(
                Issue::new(
                    "kftray::namespace",
                    format!("`{}` is not a valid namespace name", value.value),
                )
                .label(value.span.clone(), "not a DNS label")
                .help("namespaces are lowercase letters, digits and '-', at most 63 characters"),
            );
            return None;
        }
        Some(value.value.clone())
    }

    fn kubeconfig(&self, spec: &ForwardSpec, issues: &mut Vec<Issue>) -> Option<PathBuf> {
        let value = spec
            .kubeconfig
            .as_ref()
            .or(self.defaults.kubeconfig.as_ref())?;
        if value.value.trim().is_empty() {
            issues.push(
                Issue::new("kftray::kubeconfig", "empty kubeconfig path")
                    .label(value.span.clone(), "empty")
                    .help("remove the key to use $KUBECONFIG or ~/.kube/config"),
            );
            return None;
        }
        let declared_in = self
            .map
            .file_at(value.span.start)
            .map(|f| f.dir.clone())
            .unwrap_or_default();
        Some(expand_path(&value.value, &declared_in))
    }

    fn local_address(
        &self,
        spec: &ForwardSpec,
        expose: bool,
        issues: &mut Vec<Issue>,
        bad_addresses: &mut Vec<Range<usize>>,
    ) -> IpAddr {
        let Some(value) = spec
            .local_address
            .as_ref()
            .or(self.defaults.local_address.as_ref())
        else {
            return IpAddr::V4(Ipv4Addr::LOCALHOST);
        };
        let Ok(address) = value.value.trim().parse::<IpAddr>() else {
            if !bad_addresses.contains(&value.span) {
                bad_addresses.push(value.span.clone());
                issues.push(
                    Issue::new(
                        "kftray::local-address",
                        format!("`{}` is not an IP address", value.value),
                    )
                    .label(value.span.clone(), "not an IP address")
                    .help("write a loopback address such as \"127.0.0.1\" or \"127.0.0.2\""),
                );
            }
            return IpAddr::V4(Ipv4Addr::LOCALHOST);
        };
        if !address.is_loopback() && !expose && !bad_addresses.contains(&value.span) {
            bad_addresses.push(value.span.clone());
            issues.push(
                Issue::new(
                    "kftray::not-loopback",
                    format!("{address} is not a loopback address"),
                )
                .label(value.span.clone(), "reachable from the network")
                .help(format!(
                    "use any 127.x.y.z address; to really expose this forward to every machine \
                     that can reach this one, add `expose_to_network = true` to [forwards.{}]",
                    self.alias
                )),
            );
        }
        if !address.is_loopback()
            && let Some(allowed) = spec.expose_to_network.as_ref().filter(|e| e.value)
            && self
                .map
                .file_at(allowed.span.start)
                .is_some_and(|f| f.origin == Origin::Remote)
        {
            issues.push(
                Issue::new(
                    "kftray::trust",
                    format!(
                        "a file from git cannot make `{}` listen on {address}, reachable from \
                         the network",
                        self.alias
                    ),
                )
                .label(allowed.span.clone(), "only your own files can allow this")
                .label(value.span.clone(), "not a loopback address")
                .help(format!(
                    "the team's file is someone else's: to expose this forward to every machine \
                     that can reach this one, add `expose_to_network = true` to [forwards.{}] in \
                     your own kftray.toml or kftray.local.toml",
                    self.alias
                )),
            );
        }
        address
    }

    fn tags(&self, spec: &ForwardSpec, issues: &mut Vec<Issue>) -> Vec<String> {
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

/// `~/` is the home directory; a relative path is relative to the file that wrote it.
fn expand_path(raw: &str, base: &Path) -> PathBuf {
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

/// The `[relay]` table: an image reference, a manifest kftray can read and parse, a namespace.
fn relay(spec: &RelaySpec, map: &SourceMap, issues: &mut Vec<Issue>) -> Relay {
    // kftray creates the relay pod with the user's own credentials: what it runs is theirs to
    // choose, not a commit's in someone else's repository.
    for (key, at) in [("image", &spec.image), ("manifest", &spec.manifest)] {
        if let Some(at) = at
            && map
                .file_at(at.span.start)
                .is_some_and(|f| f.origin == Origin::Remote)
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
    let image = spec.image.as_ref().and_then(|image| {
        let value = image.value.trim();
        if value.is_empty() || value.contains(char::is_whitespace) {
            issues.push(
                Issue::new(
                    "kftray::relay",
                    format!("`{}` is not an image reference", image.value),
                )
                .label(image.span.clone(), "not an image")
                .help("write a reference such as \"registry.example.com/kftray-relay:0.1.0\""),
            );
            return None;
        }
        Some(value.to_owned())
    });
    let manifest = spec.manifest.as_ref().and_then(|manifest| {
        let declared_in = map
            .file(map.file_of(manifest.span.start))
            .and_then(|f| f.path.parent().map(Path::to_path_buf))
            .unwrap_or_default();
        let path = expand_path(manifest.value.trim(), &declared_in);
        let problem = match std::fs::read_to_string(&path) {
            _ if manifest.value.trim().is_empty() => Some("empty path".to_owned()),
            Err(e) => Some(format!("cannot read {}: {e}", path.display())),
            Ok(text) => crate::relay::Template::parse(&text)
                .err()
                .map(|e| format!("{}:{e}", path.display())),
        };
        match problem {
            Some(problem) => {
                issues.push(
                    Issue::new(
                        "kftray::relay-manifest",
                        format!("relay manifest: {problem}"),
                    )
                    .label(manifest.span.clone(), "this manifest")
                    .help(
                        "a Pod manifest in YAML with at least one container; remove the key \
                             to use the built-in one",
                    ),
                );
                None
            }
            None => Some(path),
        }
    });
    let namespace = spec.namespace.as_ref().and_then(|ns| {
        if is_dns_label(&ns.value) {
            return Some(ns.value.clone());
        }
        issues.push(
            Issue::new(
                "kftray::namespace",
                format!("`{}` is not a valid namespace name", ns.value),
            )
            .label(ns.span.clone(), "not a DNS label")
            .help("namespaces are lowercase letters, digits and '-', at most 63 characters"),
        );
        None
    });
    Relay {
        image,
        manifest,
        namespace,
    }
}

fn sync(
    spec: &super::model::SyncSpec,
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
