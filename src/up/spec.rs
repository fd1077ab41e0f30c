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
