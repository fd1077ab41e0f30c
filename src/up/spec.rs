//! What a forward needs at run time, and nothing else: two specs that are equal run the same
//! forward, so a change elsewhere in the file (a tag, a comment) restarts nothing.

use crate::cluster::ClusterKey;
use crate::resolve::{PortRef, Target};
use serde::Serialize;
use std::fmt;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunSpec {
    pub cluster: ClusterKey,
    /// `None`: the context's namespace, else "default".
    pub namespace: Option<String>,
    pub target: Target,
    pub remote_port: PortRef,
    pub local: LocalBind,
}

/// Where to listen: a port of 0 asks for any free port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct LocalBind {
    pub address: IpAddr,
    pub port: u16,
}

impl fmt::Display for RunSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.target, self.remote_port)?;
        if let Some(ns) = &self.namespace {
            write!(f, " in {ns}")?;
        }
        if let Some(context) = &self.cluster.context {
            write!(f, " ({context})")?;
        }
        Ok(())
    }
}

impl RunSpec {
    /// The run-time part of a configured forward. UDP and proxy forwards need the in-cluster
    /// relay, which this version does not run yet: they are refused with that reason.
    pub fn from_config(forward: &crate::config::Forward) -> Result<RunSpec, String> {
        use crate::config::{LocalPort, Protocol};
        let target = match (forward.protocol, forward.target.to_resolve()) {
            (Protocol::Tcp, Some(target)) => target,
            _ => {
                return Err(format!(
                    "{} needs the in-cluster relay (UDP and proxy forwards), which is not \
                     available in this version yet",
                    forward.name
                ));
            }
        };
        Ok(RunSpec {
            cluster: ClusterKey {
                kubeconfig: forward.kubeconfig.clone(),
                context: forward.context.clone(),
            },
            namespace: forward.namespace.clone(),
            target,
            remote_port: (&forward.remote_port).into(),
            local: LocalBind {
                address: forward.local_address,
                port: match forward.local_port {
                    LocalPort::Fixed(port) => port,
                    LocalPort::Any => 0,
                },
            },
        })
    }
}
