//! Configurations from and to elsewhere: kftray's JSON export format, services annotated for
//! kftray's auto-import, and the effective configuration written back as drafts.

pub mod alias;
pub mod annotations;
pub mod cluster_import;
pub mod kftray_json;

use crate::config::{Effective, LocalPort, PortRef, Target, WorkloadKind};
use crate::edit::{Draft, DraftTarget, ExposeDraft, PortPair};
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
        drafts.push(draft_of(f, vec![pair]));
    }
    for all in &effective.all_ports {
        // Only the fields the ports do not decide are read from this forward.
        let every = all.with_port(all.alias.clone(), LocalPort::Any, PortRef::Number(0));
        // Its expansion, when there is one, is what the file does not say.
        drafts.retain(|d| d.alias != all.alias);
        drafts.push(draft_of(&every, Vec::new()));
    }
    drafts
}

/// The effective exposes as drafts, with every default applied: what `export` writes.
pub fn expose_drafts_of(effective: &Effective) -> Vec<ExposeDraft> {
    effective
        .exposes
        .iter()
        .map(|e| {
            let mut d = ExposeDraft::new(e.alias.clone(), e.service.clone(), e.local.port());
            d.port = e.port;
            d.protocol = e.protocol;
            d.local_address =
                (e.local.ip() != IpAddr::V4(Ipv4Addr::LOCALHOST)).then(|| e.local.ip().to_string());
            d.namespace = e.namespace.clone();
            d.context = e.context.clone();
            d.kubeconfig = e.kubeconfig.as_deref().map(home_relative);
            d.enabled = e.enabled;
            d.description = e.description.clone();
            d.ingress = e.ingress.clone();
            d
        })
        .collect()
}

/// The draft of `f` on `ports` (none: every port its target declares).
fn draft_of(f: &crate::config::Forward, ports: Vec<PortPair>) -> Draft {
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
    let mut d = Draft::new(f.alias.clone(), target, ports);
    d.namespace = f.namespace.clone();
    d.context = f.context.clone();
    d.kubeconfig = f.kubeconfig.as_deref().map(home_relative);
    d.local_address = if f.local_address_auto {
        Some("auto".into())
    } else {
        (f.local_address != IpAddr::V4(Ipv4Addr::LOCALHOST)).then(|| f.local_address.to_string())
    };
    d.expose_to_network = f.expose_to_network;
    d.protocol = f.protocol;
    d.domain = f.domain.clone();
    d.enabled = f.enabled;
    d.tags = f.tags.clone();
    d.description = f.description.clone();
    d.http_log = f.http_log.clone();
    d
}

/// A path under the home directory as `~/…`, which both kftray and kftray.toml expand.
fn home_relative(path: &Path) -> String {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    match home.as_deref().and_then(|h| path.strip_prefix(h).ok()) {
        Some(rest) if !rest.as_os_str().is_empty() => format!("~/{}", rest.display()),
        _ => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use crate::edit::Inherited;

    #[test]
    fn ports_all_is_written_back_as_it_was_and_kftray_json_says_it_cannot() {
        let file = "[forwards.api]\nservice = \"api\"\nports = \"all\"\ntags = [\"x\"]\n";
        let effective = load_str("kftray.toml", file).unwrap();
        let drafts = drafts_of(&effective);
        assert_eq!(drafts.len(), 1);
        let table = drafts[0].to_table(&Inherited::default()).to_string();
        assert!(table.contains("ports = \"all\""), "{table}");
        assert!(table.contains("tags = [\"x\"]"), "{table}");
        assert_eq!(
            kftray_json::from_draft(&drafts[0], "default"),
            Err(kftray_json::Unexportable::AllPorts)
        );
        // Expanded, it is still the one forward of the file.
        let listed = std::collections::BTreeMap::from([("api".to_owned(), vec![80, 443])]);
        let (expanded, _) = effective.expand(&listed);
        assert_eq!(drafts_of(&expanded), drafts);
    }
}
