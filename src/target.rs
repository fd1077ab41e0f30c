//! What a forward reaches, in one vocabulary from the file to the socket: the target the
//! configuration names, the port on it, and the pod and port chosen to dial.

use serde::Serialize;
use std::fmt;

/// What a forward reaches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Target {
    /// A Service; its pods are chosen as kubectl chooses them.
    Service {
        /// The Service's name.
        name: String,
    },
    /// Pods matching a label selector in kubectl's syntax, e.g. `app=web,tier!=cache`.
    Selector {
        /// The selector as written.
        selector: String,
    },
    /// One pod by name.
    Pod {
        /// The pod's name.
        name: String,
    },
    /// The pods of a workload.
    Workload {
        /// Which kind of workload.
        workload: WorkloadKind,
        /// The workload's name.
        name: String,
    },
    /// A host name or IP address that only the cluster reaches: through kftray's relay, never
    /// by port-forward, so it is not followed. The port is `remote_port`.
    Proxy {
        /// The host as written.
        host: String,
    },
}

impl Target {
    /// Whether the forward needs the in-cluster relay (UDP always does).
    pub fn is_proxy(&self) -> bool {
        matches!(self, Target::Proxy { .. })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Service { name } => write!(f, "svc/{name}"),
            Target::Selector { selector } => write!(f, "pods matching {selector}"),
            Target::Pod { name } => write!(f, "pod/{name}"),
            Target::Workload { workload, name } => write!(f, "{workload}/{name}"),
            Target::Proxy { host } => write!(f, "proxy/{host}"),
        }
    }
}

/// The workloads whose pods a forward can follow: the kinds whose selector is fixed once
/// created (apps/v1 makes it immutable), so it is read once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 StatefulSet.
    StatefulSet,
    /// apps/v1 DaemonSet.
    DaemonSet,
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
            WorkloadKind::DaemonSet => "daemonset",
        })
    }
}

/// The port on the target: a number, or a name resolved as kubectl does (service port name,
/// then targetPort, then container port name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(untagged)]
pub enum PortRef {
    /// A port number.
    Number(u16),
    /// A port's name.
    Name(String),
}

impl fmt::Display for PortRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(name) => f.write_str(name),
        }
    }
}

/// The pod and container port to dial now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The pod's name.
    pub pod: String,
    /// The pod's uid: a pod recreated under the same name is another endpoint.
    pub uid: String,
    /// The container port.
    pub port: u16,
}
