//! A forward's ports: the remote port (a number or a name), the local port (fixed or any), and
//! the `ports` table of a forward with several.

use super::Context;
use crate::config::checks::is_port_name;
use crate::config::diagnostic::Issue;
use crate::config::effective::LocalPort;
use crate::config::model::{At, ForwardSpec, LocalPortSpec, PortsSpec, RemotePortSpec};
use crate::target::{PortRef, Target};
use std::collections::BTreeMap;
use std::ops::Range;

/// A forward's ports: listed in the file, or every port its target declares.
pub(super) enum Ports {
    Listed(Vec<(LocalPort, PortRef, Range<usize>)>),
    All,
}

impl Context<'_> {
    pub(super) fn ports(
        &self,
        spec: &ForwardSpec,
        target: Option<&(Target, Range<usize>)>,
        issues: &mut Vec<Issue>,
    ) -> Option<Ports> {
        let is_proxy = target.is_some_and(|(t, _)| t.is_proxy());
        if let Some(ports) = &spec.ports {
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
                    .label(ports.span.clone(), "`ports` here")
                    .label(conflict.clone(), "and a single port here")
                    .help("use either `ports = [\"LOCAL:REMOTE\", ...]` or `local_port`/`remote_port`"),
                );
                return None;
            }
            let list = match &ports.value {
                PortsSpec::List(list) => list,
                PortsSpec::All if is_proxy => {
                    issues.push(
                        Issue::new(
                            "kftray::proxy-port",
                            format!("proxy forward `{}` cannot forward all ports", self.alias),
                        )
                        .label(ports.span.clone(), "\"all\" ports of a host")
                        .help("a proxy host declares no ports: list them, as ports = [\"6379\"]"),
                    );
                    return None;
                }
                PortsSpec::All => return Some(Ports::All),
            };
            if list.is_empty() {
                issues.push(
                    Issue::new(
                        "kftray::ports",
                        format!("forward `{}` has no ports", self.alias),
                    )
                    .label(ports.span.clone(), "empty list")
                    .help("write ports = [\"8080:80\"]"),
                );
                return None;
            }
            let mut out = Vec::new();
            let mut ok = true;
            let mut seen: BTreeMap<PortRef, Range<usize>> = BTreeMap::new();
            for entry in list {
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
            return ok.then_some(Ports::Listed(out));
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
                PortRef::Number(n) => LocalPort::Fixed(*n),
                PortRef::Name(name) => {
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
        Some(Ports::Listed(vec![(local_port, remote_port, span)]))
    }

    pub(super) fn port_entry(
        &self,
        entry: &At<String>,
        is_proxy: bool,
        issues: &mut Vec<Issue>,
    ) -> Option<(LocalPort, PortRef)> {
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
                PortRef::Number(n) => LocalPort::Fixed(*n),
                PortRef::Name(_) => {
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

    pub(super) fn remote_port(
        &self,
        spec: &RemotePortSpec,
        span: Range<usize>,
        is_proxy: bool,
        issues: &mut Vec<Issue>,
    ) -> Option<PortRef> {
        match spec {
            RemotePortSpec::Number(n) => match u16::try_from(*n) {
                Ok(port) if port > 0 => Some(PortRef::Number(port)),
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
                Some(PortRef::Name(name.clone()))
            }
        }
    }

    pub(super) fn local_port(
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
}
