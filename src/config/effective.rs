//! The effective configuration: what runs, with every default applied, one entry per forward
//! (and per port of a `ports` list), compared by value by the reconcile planner.

use super::model::{Protocol, Via};
use crate::target::{PortRef, Target};
use serde::{Serialize, Serializer};
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The configuration that runs: kftray.toml with kftray.local.toml laid over it, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Effective {
    /// Every forward, disabled ones included (`enabled` says which), sorted by name.
    pub forwards: Vec<Forward>,
    /// The forwards of every port their target declares (`ports = "all"`), sorted by alias:
    /// only a cluster knows those ports, so `up` expands them (`expand.rs`).
    pub all_ports: Vec<AllPorts>,
    /// The team repository to follow, from `[sync]`.
    pub sync: Option<Sync>,
    /// The relay pod's settings, for the forwards that go through it.
    pub relay: Relay,
    /// The proxy into the cluster, from `[proxy]`.
    pub proxy: Option<Proxy>,
    /// Reverse forwards, disabled ones included, sorted by alias.
    pub exposes: Vec<Expose>,
    /// The files it was read from, in layer order.
    pub files: Vec<PathBuf>,
}

impl Effective {
    /// The forwards to run: enabled ones that carry at least one of `tags` (all enabled ones
    /// when `tags` is empty).
    pub fn selected<'a>(&'a self, tags: &'a [String]) -> impl Iterator<Item = &'a Forward> + 'a {
        self.forwards.iter().filter(move |f| {
            f.enabled && (tags.is_empty() || f.tags.iter().any(|t| tags.contains(t)))
        })
    }

    /// Whether `name` names a forward: its name, its alias, the alias of an `all_ports`, or
    /// one of the proxy's listeners.
    pub fn names(&self, name: &str) -> bool {
        self.forwards
            .iter()
            .any(|f| f.name == name || f.alias == name)
            || self.all_ports.iter().any(|a| a.alias == name)
            || self.exposes.iter().any(|e| e.name() == name)
            || self.proxy.as_ref().is_some_and(|p| {
                (name == Proxy::SOCKS && p.socks.is_some())
                    || (name == Proxy::HTTP && p.http.is_some())
            })
    }

    /// Every tag used by some forward, sorted.
    pub fn tags(&self) -> Vec<String> {
        let mut tags: Vec<String> = self
            .forwards
            .iter()
            .flat_map(|f| &f.tags)
            .chain(self.all_ports.iter().flat_map(|a| &a.tags))
            .cloned()
            .collect();
        tags.sort();
        tags.dedup();
        tags
    }
}

/// A forward without its ports: all of one in the file, which `with_port` completes once
/// per port, and what `ports = "all"` keeps until a cluster lists the target's ports.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct AllPorts {
    /// As in [`Forward`].
    pub alias: String,
    /// As in [`Forward`].
    pub context: Option<String>,
    /// As in [`Forward`].
    pub kubeconfig: Option<PathBuf>,
    /// As in [`Forward`].
    pub namespace: Option<String>,
    /// As in [`Forward`].
    pub target: Target,
    /// As in [`Forward`].
    pub protocol: Protocol,
    /// As in [`Forward`].
    pub via: Via,
    /// As in [`Forward`].
    pub local_address: IpAddr,
    /// As in [`Forward`].
    pub local_address_auto: bool,
    /// As in [`Forward`].
    pub domain: Option<String>,
    /// As in [`Forward`].
    pub tags: Vec<String>,
    /// As in [`Forward`].
    pub description: Option<String>,
    /// As in [`Forward`].
    pub enabled: bool,
    /// As in [`Forward`].
    pub expose_to_network: bool,
    /// As in [`Forward`].
    pub http_log: Option<HttpLog>,
}

impl AllPorts {
    /// The forward named `name` on these ports.
    pub fn with_port(&self, name: String, local_port: LocalPort, remote_port: PortRef) -> Forward {
        Forward {
            name,
            alias: self.alias.clone(),
            context: self.context.clone(),
            kubeconfig: self.kubeconfig.clone(),
            namespace: self.namespace.clone(),
            target: self.target.clone(),
            protocol: self.protocol,
            via: self.via,
            local_address: self.local_address,
            local_address_auto: self.local_address_auto,
            local_port,
            remote_port,
            domain: self.domain.clone(),
            tags: self.tags.clone(),
            description: self.description.clone(),
            enabled: self.enabled,
            expose_to_network: self.expose_to_network,
            http_log: self.http_log.clone(),
        }
    }

    /// Whether a run started with `tags` (none: every enabled forward) runs it.
    pub fn is_selected(&self, tags: &[String]) -> bool {
        self.enabled && (tags.is_empty() || self.tags.iter().any(|t| tags.contains(t)))
    }
}

/// One forward, fully resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Forward {
    /// Unique key: the alias, or `alias:REMOTE` for each entry of a `ports` list.
    pub name: String,
    /// The table name in the file (`[forwards.<alias>]`).
    pub alias: String,
    /// None: the kubeconfig's current context.
    pub context: Option<String>,
    /// None: $KUBECONFIG, else ~/.kube/config. `~` is expanded and a relative path is
    /// resolved against the directory of the file that set it.
    pub kubeconfig: Option<PathBuf>,
    /// None: the context's namespace, else "default". For a proxy or a UDP forward, the
    /// namespace the relay pod runs in.
    pub namespace: Option<String>,
    /// What the forward reaches in the cluster.
    pub target: Target,
    /// TCP, or UDP (always through the relay).
    pub protocol: Protocol,
    /// `Relay` for every UDP and proxy forward, and where the file asks for it.
    pub via: Via,
    /// The address to listen on: loopback unless the file opted in. With
    /// `local_address_auto`, the first one tried.
    pub local_address: IpAddr,
    /// `local_address = "auto"`: the address is the forward's own (see `loopback.rs`), and
    /// when another program holds it, the next ones are tried.
    pub local_address_auto: bool,
    /// The port to listen on.
    pub local_port: LocalPort,
    /// Always a `Number` for a proxy target.
    pub remote_port: PortRef,
    /// A host name for the forward, lowercase: kftray-helper maps it to the forward's local
    /// address in the hosts file while the forward runs.
    pub domain: Option<String>,
    /// Sorted, without duplicates.
    pub tags: Vec<String>,
    /// Free text for people, shown by `kftray config`.
    pub description: Option<String>,
    /// Whether `up` starts it.
    pub enabled: bool,
    /// Set when `local_address` is not loopback (the file had to opt in).
    pub expose_to_network: bool,
    /// Where the forward's HTTP traffic is logged, if it is.
    pub http_log: Option<HttpLog>,
}

/// How a forward's HTTP traffic is logged.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct HttpLog {
    /// The log file is rotated once it grows past this many bytes.
    pub max_file_size: u64,
    /// How long rotated files are kept; None: forever.
    #[serde(serialize_with = "human_retention")]
    pub retention: Option<Duration>,
    /// How many bytes of each body are written (the rest is counted).
    pub body_limit: u64,
    /// Headers whose values are not written, lowercase, sorted.
    pub redact: Vec<String>,
}

impl HttpLog {
    /// Redacted unless the user's own file says otherwise.
    pub const SECRET_HEADERS: [&str; 4] = [
        "authorization",
        "cookie",
        "proxy-authorization",
        "set-cookie",
    ];
}

impl Default for HttpLog {
    fn default() -> Self {
        HttpLog {
            max_file_size: 10 << 20,
            retention: Some(Duration::from_secs(7 * 86_400)),
            body_limit: 64 << 10,
            redact: HttpLog::SECRET_HEADERS.map(String::from).to_vec(),
        }
    }
}

fn human_retention<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => human_duration(d, s),
        None => s.serialize_str("forever"),
    }
}

impl Forward {
    /// Whether both would listen on the same local port: both enabled, one protocol, one
    /// port, and the same address (an unspecified address such as 0.0.0.0 overlaps all).
    pub fn shares_port_with(&self, other: &Forward) -> bool {
        let (LocalPort::Fixed(a), LocalPort::Fixed(b)) = (self.local_port, other.local_port) else {
            return false;
        };
        self.enabled
            && other.enabled
            && self.protocol == other.protocol
            && a == b
            && (self.local_address == other.local_address
                || self.local_address.is_unspecified()
                || other.local_address.is_unspecified())
    }
}

/// The local side: a fixed port, or any free port chosen when the forward starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LocalPort {
    /// This port.
    Fixed(u16),
    /// A free port the OS picks (`local_port = "any"`).
    Any,
}

impl Serialize for LocalPort {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            LocalPort::Fixed(n) => s.serialize_u16(*n),
            LocalPort::Any => s.serialize_str("any"),
        }
    }
}

impl fmt::Display for LocalPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalPort::Fixed(n) => write!(f, "{n}"),
            LocalPort::Any => f.write_str("any"),
        }
    }
}

/// The relay pod kftray creates for the forwards that go through it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Relay {
    /// None: kftray's own relay image of this version.
    pub image: Option<String>,
    /// A Pod manifest to create the relay from; None: the built-in one.
    pub manifest: Option<PathBuf>,
    /// None: each forward's own namespace.
    pub namespace: Option<String>,
}

/// The proxy into the cluster: SOCKS5 and/or HTTP, each on its own local port, names resolved
/// and connections made by the relay pod of `namespace`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Proxy {
    /// The SOCKS5 proxy's local port.
    pub socks: Option<u16>,
    /// The HTTP proxy's local port.
    pub http: Option<u16>,
    /// None: the kubeconfig's current context.
    pub context: Option<String>,
    /// As in [`Forward`].
    pub kubeconfig: Option<PathBuf>,
    /// Where the relay pod runs and short names resolve; None: the context's namespace.
    pub namespace: Option<String>,
    /// The address both listen on.
    pub local_address: IpAddr,
    /// Set when `local_address` is not loopback (the file had to opt in).
    pub expose_to_network: bool,
}

impl Proxy {
    /// The names `status` and `down` use for its two listeners; not aliases (a dot is not
    /// allowed in one), so no forward can take them.
    pub const SOCKS: &str = "proxy.socks";
    /// See [`Proxy::SOCKS`].
    pub const HTTP: &str = "proxy.http";
}

/// A reverse forward: the server on this machine at `local`, reachable in the cluster as
/// Service `service` on `port`, which selects the relay pod of its namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Expose {
    /// The table name in the file (`[exposes.<alias>]`).
    pub alias: String,
    /// As in [`Forward`].
    pub context: Option<String>,
    /// As in [`Forward`].
    pub kubeconfig: Option<PathBuf>,
    /// Where the Service and its relay pod are; None: the context's namespace.
    pub namespace: Option<String>,
    /// The local server.
    pub local: std::net::SocketAddr,
    /// The Service's name.
    pub service: String,
    /// The Service's port.
    pub port: u16,
    /// What the local server speaks.
    pub protocol: Protocol,
    /// Whether `up` starts it.
    pub enabled: bool,
    /// Free text for people.
    pub description: Option<String>,
    /// An Ingress in front of the Service.
    pub ingress: Option<Ingress>,
}

/// An Ingress routing `host` and `path` to an expose's Service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Ingress {
    /// The host name it answers for (its first label may be `*`).
    pub host: String,
    /// A path prefix; "/" unless set.
    pub path: String,
    /// The IngressClass; None: the cluster's default.
    pub class: Option<String>,
    /// For the ingress controller; cert-manager's issuer annotation is added from `tls`.
    pub annotations: std::collections::BTreeMap<String, String>,
    /// TLS for `host`, when set.
    pub tls: Option<IngressTls>,
}

/// The certificate of an Ingress: a Secret, and the cert-manager issuer that fills it, if any.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct IngressTls {
    /// The Secret of the certificate.
    pub secret: String,
    /// Who fills that Secret; None: it is already there.
    pub issuer: Option<CertIssuer>,
}

impl IngressTls {
    /// The Secret a cert-manager issuer fills when none is named.
    pub fn default_secret(service: &str) -> String {
        format!("{service}-tls")
    }
}

/// A cert-manager issuer, by kind and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct CertIssuer {
    /// True for an `Issuer` of the Ingress's namespace; false for a `ClusterIssuer`.
    pub namespaced: bool,
    /// The issuer's name.
    pub name: String,
}

impl CertIssuer {
    /// The annotation cert-manager reads on an Ingress.
    pub fn annotation(&self) -> &'static str {
        if self.namespaced {
            "cert-manager.io/issuer"
        } else {
            "cert-manager.io/cluster-issuer"
        }
    }
}

impl Expose {
    /// The name `status` and `down` use: not an alias (a dot is not allowed in one).
    pub fn name(&self) -> String {
        format!("expose.{}", self.alias)
    }
}

/// The git source of the team configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Sync {
    /// The repository, as written (a URL, scp-like `host:path`, or a local path).
    pub repo: String,
    /// Branch, tag or commit; "HEAD" (the remote's default branch) unless set.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Path of the kftray.toml inside the repository.
    pub path: PathBuf,
    /// How often the repository is fetched.
    #[serde(serialize_with = "human_duration")]
    pub interval: Duration,
}

fn human_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&super::duration::format_duration(*d))
}
