//! Configurations from and to elsewhere: kftray's JSON export format, services annotated for
//! kftray's auto-import, and the effective configuration written back as drafts.

pub mod alias;
pub mod annotations;
pub mod cluster_import;
pub mod kftray_json;

use crate::config::{Effective, LocalPort, PortRef, Target, WorkloadKind};
use crate::edit::{Draft, DraftTarget, PortPair};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

/// The effective configuration as drafts, one per alias (the entries of a `ports` list
/// together again), with every default applied: what `export` writes.
pub fn drafts_of(effective: &Effective) -> Vec<Draft> {
    let mut drafts: Vec<Draft> = Vec::new();
    for f in &effective.forwards {
        let pair = PortPair {
            local: match (f.local_port, &f.remote_port) {
                (LocalPort::Fixed(l), PortRef::Number(r)) if l == *r => None,
                (local, _) => Some(local),
            },
            remote: f.remote_port.clone(),
        };
        if let Some(d) = drafts.iter_mut().find(|d| d.alias == f.alias) {
            d.ports.push(pair);
            continue;
        }
        let target = match &f.target {
            Target::Service { name } => DraftTarget::Service(name.clone()),
            Target::Selector { selector } => DraftTarget::Selector(selector.clone()),
            Target::Pod { name } => DraftTarget::Pod(name.clone()),
            Target::Workload { workload, name } => match workload {
                WorkloadKind::Deployment => DraftTarget::Deployment(name.clone()),
                WorkloadKind::StatefulSet => DraftTarget::StatefulSet(name.clone()),
                WorkloadKind::DaemonSet => DraftTarget::DaemonSet(name.clone()),
            },
            Target::Proxy { host } => DraftTarget::Proxy(host.clone()),
        };
        let mut d = Draft::new(f.alias.clone(), target, vec![pair]);
        d.namespace = f.namespace.clone();
        d.context = f.context.clone();
        d.kubeconfig = f.kubeconfig.as_deref().map(home_relative);
        d.local_address = (f.local_address != IpAddr::V4(Ipv4Addr::LOCALHOST))
            .then(|| f.local_address.to_string());
        d.expose_to_network = f.expose_to_network;
        d.protocol = f.protocol;
        d.domain = f.domain.clone();
        d.enabled = f.enabled;
        d.tags = f.tags.clone();
        d.description = f.description.clone();
        drafts.push(d);
    }
    drafts
}

/// A path under the home directory as `~/…`, which both kftray and kftray.toml expand.
fn home_relative(path: &Path) -> String {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    match home.as_deref().and_then(|h| path.strip_prefix(h).ok()) {
        Some(rest) if !rest.as_os_str().is_empty() => format!("~/{}", rest.display()),
        _ => path.display().to_string(),
    }
}
