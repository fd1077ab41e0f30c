//! What a forward reaches: its target keys (a service, a pod, a workload, a selector, a
//! proxied host) and how it goes there (`via`).

use super::Context;
use crate::config::checks::{check_selector, is_dns_label, is_dns_subdomain, is_host};
use crate::config::diagnostic::Issue;
use crate::config::model::{At, ForwardSpec, Protocol, Via};
use crate::target::{Target, WorkloadKind};
use std::ops::Range;

impl Context<'_> {
    pub(super) fn target(
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
            [] if self.was_rejected(&crate::config::layer::TARGET_KEYS) => return None,
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
    pub(super) fn via(
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

    pub(super) fn was_rejected(&self, keys: &[&str]) -> bool {
        self.rejected.iter().any(|k| keys.contains(&k.as_str()))
    }

    /// The span of a part of a string value, when the source writes the string literally
    /// (no escapes), so the part can be pointed at exactly.
    pub(super) fn inner_span(
        &self,
        value: &At<String>,
        part: Range<usize>,
    ) -> Option<Range<usize>> {
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
}
