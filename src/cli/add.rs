//! `kftray add`: one forward written into kftray.toml from the command line, with the same
//! checks `kftray validate` makes, without touching anything else in the file.

use super::failure::{Failure, Outcome};
use super::{Cli, Output, editing};
use crate::config::{LocalPort, PortRef, Protocol};
use crate::edit::document::{self, FORWARDS};
use crate::edit::{Draft, DraftTarget, PortPair};

#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("target")
        .required(true)
        .args(["service", "selector", "pod", "deployment", "statefulset", "daemonset", "proxy"])
))]
pub struct Args {
    /// The forward's alias: `[forwards.<alias>]` (lowercase letters, digits and '-').
    pub alias: String,
    /// Target: a Service by name.
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// Target: the pods matching a label selector, e.g. "app=web,tier!=cache".
    #[arg(long, short = 'l', value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Target: one pod by name.
    #[arg(long, value_name = "NAME")]
    pub pod: Option<String>,
    /// Target: the pods of a Deployment.
    #[arg(long, value_name = "NAME")]
    pub deployment: Option<String>,
    /// Target: the pods of a StatefulSet.
    #[arg(long, value_name = "NAME")]
    pub statefulset: Option<String>,
    /// Target: one pod of a DaemonSet.
    #[arg(long, value_name = "NAME")]
    pub daemonset: Option<String>,
    /// Target: a host only the cluster can reach, through kftray's relay pod.
    #[arg(long, value_name = "HOST")]
    pub proxy: Option<String>,
    /// LOCAL:REMOTE ("8080:80", "9090:metrics", "any:http") or PORT; repeat for several ports
    /// of one target.
    #[arg(long, short = 'p', required = true, value_name = "LOCAL:REMOTE", value_parser = port_pair)]
    pub port: Vec<PortPair>,
    /// Namespace of the target (for a proxy or UDP: where the relay runs).
    #[arg(long, short = 'n', value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Kubernetes context (default: the kubeconfig's current one).
    #[arg(long, value_name = "CONTEXT")]
    pub context: Option<String>,
    /// Kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<String>,
    #[arg(long, value_enum, default_value_t = ProtocolArg::Tcp)]
    pub protocol: ProtocolArg,
    /// Local address to listen on (default 127.0.0.1).
    #[arg(long, value_name = "ADDRESS")]
    pub local_address: Option<String>,
    /// Allow a local address that is not loopback, such as 0.0.0.0.
    #[arg(long)]
    pub expose_to_network: bool,
    /// A host name for the forward, e.g. "api.dev.local".
    #[arg(long, value_name = "HOST")]
    pub domain: Option<String>,
    /// A tag, so that `kftray up --tag TAG` runs a subset (repeatable).
    #[arg(long = "tag", short = 't', value_name = "TAG")]
    pub tags: Vec<String>,
    /// Free text shown beside the forward.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Write it with `enabled = false`: kept in the file, not run.
    #[arg(long)]
    pub disabled: bool,
    /// Log its HTTP traffic (`http_log = true`), for `kftray logs http ALIAS`.
    #[arg(long)]
    pub http_log: bool,
    /// Replace the forward if the alias exists.
    #[arg(long)]
    pub force: bool,
    /// Write to kftray.local.toml (personal, git-ignored) instead of kftray.toml.
    #[arg(long)]
    pub local: bool,
    /// Print the change as a diff and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProtocolArg {
    Tcp,
    Udp,
}

/// Why a `--port` value is not a port pair.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum PortPairError {
    #[error("empty port")]
    Empty,
    #[error("`{local}` is not a local port: write a number from 1 to 65535, or any")]
    Local { local: String },
    #[error("no remote port after `:`")]
    NoRemote,
}

/// `LOCAL:REMOTE` or `PORT`, as a `ports` entry reads. Ranges and names are checked with the
/// rest of the file.
fn port_pair(s: &str) -> Result<PortPair, PortPairError> {
    let remote_of = |r: &str| match r.parse::<u16>() {
        Ok(n) => PortRef::Number(n),
        Err(_) => PortRef::Name(r.to_owned()),
    };
    match s.split_once(':') {
        None if s.is_empty() => Err(PortPairError::Empty),
        None => Ok(PortPair {
            local: None,
            remote: remote_of(s),
        }),
        Some((local, remote)) => {
            let local = match local {
                "any" => LocalPort::Any,
                n => LocalPort::Fixed(n.parse::<u16>().map_err(|_| PortPairError::Local {
                    local: n.to_owned(),
                })?),
            };
            if remote.is_empty() {
                return Err(PortPairError::NoRemote);
            }
            Ok(PortPair {
                local: Some(local),
                remote: remote_of(remote),
            })
        }
    }
}

impl Args {
    fn draft(&self) -> Draft {
        let target = [
            (
                &self.service,
                DraftTarget::Service as fn(String) -> DraftTarget,
            ),
            (&self.selector, DraftTarget::Selector),
            (&self.pod, DraftTarget::Pod),
            (&self.deployment, DraftTarget::Deployment),
            (&self.statefulset, DraftTarget::StatefulSet),
            (&self.daemonset, DraftTarget::DaemonSet),
            (&self.proxy, DraftTarget::Proxy),
        ]
        .into_iter()
        .find_map(|(value, make)| value.clone().map(make))
        .unwrap_or(DraftTarget::Service(String::new()));
        let mut d = Draft::new(self.alias.clone(), target, self.port.clone());
        d.namespace = self.namespace.clone();
        d.context = self.context.clone();
        d.kubeconfig = self.kubeconfig.clone();
        d.local_address = self.local_address.clone();
        d.expose_to_network = self.expose_to_network;
        d.protocol = match self.protocol {
            ProtocolArg::Tcp => Protocol::Tcp,
            ProtocolArg::Udp => Protocol::Udp,
        };
        d.domain = self.domain.clone();
        d.enabled = !self.disabled;
        d.http_log = self.http_log.then(crate::config::HttpLog::default);
        d.tags = self.tags.clone();
        d.description = self.description.clone();
        d
    }
}

pub(super) fn run(cli: &Cli, args: &Args, out: &Output) -> Outcome {
    let mut files = editing::open(cli)?;
    let layer = editing::layer(args.local);
    let draft = args.draft();
    let table = draft.to_table(&files.inherited(layer));
    let existing = files.layers_of(FORWARDS, &args.alias);
    let summary = if existing.is_empty() {
        document::insert(&mut files.file_mut(layer).doc, FORWARDS, &args.alias, table);
        format!(
            "added {} to {}",
            args.alias,
            files.file(layer).path.display()
        )
    } else if !args.force {
        let places: Vec<String> = existing
            .iter()
            .map(|l| files.file(*l).path.display().to_string())
            .collect();
        return Err(Failure::Failed(format!(
            "{} already has a forward `{}`; --force replaces it (nothing was written)",
            places.join(" and "),
            args.alias
        )));
    } else {
        for other in existing.iter().filter(|l| **l != layer) {
            document::remove(&mut files.file_mut(*other).doc, FORWARDS, &args.alias);
        }
        let doc = &mut files.file_mut(layer).doc;
        if !document::replace(doc, FORWARDS, &args.alias, &table) {
            document::insert(doc, FORWARDS, &args.alias, table);
        }
        format!(
            "replaced {} in {}",
            args.alias,
            files.file(layer).path.display()
        )
    };
    editing::finish(&files, out, args.dry_run, &[summary])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_arguments_read_like_ports_entries() {
        assert_eq!(
            port_pair("8080:http"),
            Ok(PortPair {
                local: Some(LocalPort::Fixed(8080)),
                remote: PortRef::Name("http".into())
            })
        );
        assert_eq!(
            port_pair("any:80"),
            Ok(PortPair {
                local: Some(LocalPort::Any),
                remote: PortRef::Number(80)
            })
        );
        assert_eq!(
            port_pair("5432"),
            Ok(PortPair {
                local: None,
                remote: PortRef::Number(5432)
            })
        );
        assert!(
            port_pair("x:80")
                .unwrap_err()
                .to_string()
                .contains("not a local port")
        );
        assert!(port_pair("80:").is_err());
    }
}
