//! The `[proxy]` section: a SOCKS5 and/or HTTP proxy into one cluster.

use super::inherited::listen_address;
use super::{Context, Placed};
use crate::config::diagnostic::Issue;
use crate::config::effective::{LocalPort, Proxy};
use crate::config::model::{At, Defaults, ForwardSpec, Protocol, ProxySpec};
use crate::config::source::SourceMap;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;

/// The proxy, if `[proxy]` names at least one valid port; its context, kubeconfig and
/// namespace come from `[defaults]` unless it sets its own, as a forward's do.
pub(super) fn section(
    spec: &ProxySpec,
    key: Range<usize>,
    rejected: &[String],
    defaults: &Defaults,
    map: &SourceMap,
    issues: &mut Vec<Issue>,
    bad_addresses: &mut Vec<Range<usize>>,
) -> Option<Proxy> {
    // A port written wrong is reported as such, not as missing too.
    let written = |k: &str| rejected.iter().any(|r| r == k);
    if spec.socks.is_none() && spec.http.is_none() && !written("socks") && !written("http") {
        issues.push(
            Issue::new("kftray::proxy", "[proxy] names no port to listen on")
                .label(key.clone(), "no `socks` or `http` port")
                .help(
                    "write socks = 1080 for a SOCKS5 proxy, http = 3128 for an HTTP one, or both",
                ),
        );
    }
    let socks = spec.socks.as_ref().and_then(|p| port(p, issues));
    let http = spec.http.as_ref().and_then(|p| port(p, issues));
    if let (Some(s), Some(h)) = (&spec.socks, &spec.http)
        && s.value == h.value
    {
        issues.push(
            Issue::new(
                "kftray::port-conflict",
                format!("the SOCKS and HTTP proxies both listen on port {}", s.value),
            )
            .label(s.span.clone(), "SOCKS here")
            .label(h.span.clone(), "and HTTP too")
            .help("one port speaks one protocol: give them two ports"),
        );
    }
    // The proxy inherits as a forward does: the same checks, the same messages.
    let inherits = ForwardSpec {
        context: spec.context.clone(),
        kubeconfig: spec.kubeconfig.clone(),
        namespace: spec.namespace.clone(),
        ..ForwardSpec::default()
    };
    let ctx = Context {
        map,
        defaults,
        alias: "proxy",
        alias_span: key,
        rejected: &[],
    };
    let context = ctx.context(&inherits, issues);
    let kubeconfig = ctx.kubeconfig(&inherits, issues);
    let namespace = ctx.namespace(&inherits, issues);
    let local_address = match &spec.local_address {
        Some(value) => listen_address(
            value,
            spec.expose_to_network.as_ref(),
            "[proxy]",
            map,
            issues,
            bad_addresses,
        ),
        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    (socks.is_some() || http.is_some()).then(|| Proxy {
        socks,
        http,
        context,
        kubeconfig,
        namespace,
        local_address,
        expose_to_network: spec.expose_to_network.as_ref().is_some_and(|e| e.value),
    })
}

/// A port number as written (1–65535).
pub(super) fn port(value: &At<i64>, issues: &mut Vec<Issue>) -> Option<u16> {
    match u16::try_from(value.value) {
        Ok(port) if port > 0 => Some(port),
        _ => {
            issues.push(
                Issue::new(
                    "kftray::port-range",
                    format!("port {} is out of range", value.value),
                )
                .label(value.span.clone(), "not between 1 and 65535")
                .help("a local port is a number from 1 to 65535"),
            );
            None
        }
    }
}

/// A forward on one of the proxy's ports.
pub(super) fn conflicts(
    spec: &ProxySpec,
    proxy: &Proxy,
    placed: &[Placed],
    issues: &mut Vec<Issue>,
) {
    for (name, port, written) in [
        (Proxy::SOCKS, proxy.socks, &spec.socks),
        (Proxy::HTTP, proxy.http, &spec.http),
    ] {
        let (Some(port), Some(written)) = (port, written) else {
            continue;
        };
        for p in placed {
            let f = &p.forward;
            let same_address = f.local_address == proxy.local_address
                || f.local_address.is_unspecified()
                || proxy.local_address.is_unspecified();
            if !f.enabled
                || f.protocol != Protocol::Tcp
                || f.local_port != LocalPort::Fixed(port)
                || !same_address
            {
                continue;
            }
            issues.push(
                Issue::new(
                    "kftray::port-conflict",
                    format!(
                        "`{}` and `{name}` both listen on {}:{port}/tcp",
                        f.name, proxy.local_address
                    ),
                )
                .label(p.port_span.clone(), format!("`{}` listens here", f.name))
                .label(written.span.clone(), format!("and `{name}` too"))
                .help("give the forward or the proxy another port"),
            );
        }
    }
}
