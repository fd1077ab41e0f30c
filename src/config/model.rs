//! The file format, as serde and schemars see it: what `kftray.toml` may contain.
//!
//! Every field is optional at this level so that each key can be checked on its own (see
//! `typed.rs`) and every problem reported in one run; what is required, and how fields combine,
//! is decided when the effective forwards are resolved.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

/// A value and the byte span it was read from.
///
/// Spans are offsets in the layered sources (see `SourceMap`), so a diagnostic can point at
/// the exact value whichever file it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At<T> {
    pub value: T,
    pub span: Range<usize>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for At<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = toml::Spanned::<T>::deserialize(deserializer)?;
        let span = spanned.span();
        Ok(At {
            value: spanned.into_inner(),
            span,
        })
    }
}

// The schema of a located value is the schema of the value: spans are not part of the format.
impl<T: JsonSchema> JsonSchema for At<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// A kftray.toml file (or its kftray.local.toml overlay).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(
    title = "kftray.toml",
    description = "Kubernetes port-forwards as code. One table per forward under [forwards], \
                   keyed by its alias. See https://github.com/kftray/kftray-cli#the-file-format-kftraytoml-version-1"
)]
pub struct ConfigFile {
    /// Version of the file format. Only 1 exists; it may be omitted.
    #[schemars(range(min = 1, max = 1))]
    pub version: Option<At<i64>>,
    /// Values every forward inherits unless it sets its own.
    pub defaults: Option<Defaults>,
    /// The forwards, one table per alias: `[forwards.web]`. The alias must be a DNS label
    /// (lowercase letters, digits and '-', at most 63 characters).
    #[schemars(extend("propertyNames" = {"pattern": "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"}))]
    pub forwards: BTreeMap<String, ForwardSpec>,
    /// Where the team's kftray.toml lives in git.
    pub sync: Option<SyncSpec>,
    /// The relay pod kftray runs for UDP forwards, proxy forwards and `via = "relay"`.
    pub relay: Option<RelaySpec>,
    /// A SOCKS5 and/or HTTP proxy into the cluster: any in-cluster name or cluster-only host,
    /// resolved and reached through the relay pod.
    pub proxy: Option<ProxySpec>,
    /// What this machine's user lets the team's file from git decide. Only your own files
    /// may set it.
    pub trust: Option<TrustSpec>,
    /// Reverse forwards, one table per alias: a server on this machine made reachable inside
    /// the cluster as a Service, through the relay pod.
    #[schemars(extend("propertyNames" = {"pattern": "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"}))]
    pub exposes: BTreeMap<String, ExposeSpec>,
}

/// `[exposes.<alias>]`: a local server, reachable in the cluster as a Service.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ExposeSpec {
    /// The port the server on this machine listens on.
    #[schemars(range(min = 1, max = 65535))]
    pub local_port: Option<At<i64>>,
    /// The address it listens on. Default 127.0.0.1.
    pub local_address: Option<At<String>>,
    /// The Service's name in the cluster. Default: the alias.
    pub service: Option<At<String>>,
    /// The Service's port. Default: `local_port`.
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<At<i64>>,
    /// "tcp" (default) or "udp": what the local server speaks, and the Service's port.
    pub protocol: Option<At<Protocol>>,
    /// Kubernetes context (overrides [defaults]).
    pub context: Option<At<String>>,
    /// Path of the kubeconfig file (overrides [defaults]).
    pub kubeconfig: Option<At<String>>,
    /// Namespace of the Service and of the relay pod it selects (overrides [defaults]).
    pub namespace: Option<At<String>>,
    /// false keeps it in the file without running it. Default true.
    pub enabled: Option<At<bool>>,
    /// Free text shown beside it.
    pub description: Option<At<String>>,
    /// An Ingress for the Service, so that the local server is reached from outside the
    /// cluster too (kftray's "public" exposure).
    pub ingress: Option<At<IngressSpec>>,
}

/// `ingress = { ... }` of an expose: an Ingress in front of its Service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct IngressSpec {
    /// The host name it answers for, e.g. "webhook.dev.example.com" (or "*.dev.example.com").
    pub host: Option<At<String>>,
    /// The path prefix it routes to the Service. Default "/".
    pub path: Option<At<String>>,
    /// The IngressClass (spec.ingressClassName). Omitted: the cluster's default class.
    pub class: Option<At<String>>,
    /// Annotations for the ingress controller, e.g.
    /// { "nginx.ingress.kubernetes.io/proxy-body-size" = "10m" }.
    pub annotations: Option<At<BTreeMap<String, String>>>,
    /// A cert-manager issuer: the Ingress serves TLS for `host` with a certificate it issues.
    pub cert_issuer: Option<At<String>>,
    /// The issuer's kind: "ClusterIssuer" (the default) or "Issuer".
    pub cert_issuer_kind: Option<At<String>>,
    /// The Secret holding the TLS certificate. Default "<service>-tls" when `cert_issuer` is
    /// set; alone, it serves a certificate that is already there.
    pub tls_secret: Option<At<String>>,
}

/// `[proxy]`: a proxy into the cluster, served by `kftray up` like a forward.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ProxySpec {
    /// Local port of a SOCKS5 proxy (use `socks5h://` so names resolve in the cluster).
    #[schemars(range(min = 1, max = 65535))]
    pub socks: Option<At<i64>>,
    /// Local port of an HTTP proxy (CONNECT, and plain `http://` requests).
    #[schemars(range(min = 1, max = 65535))]
    pub http: Option<At<i64>>,
    /// Kubernetes context whose cluster the proxy reaches (overrides [defaults]).
    pub context: Option<At<String>>,
    /// Path of the kubeconfig file (overrides [defaults]).
    pub kubeconfig: Option<At<String>>,
    /// Namespace where short names resolve and the relay pod runs (overrides [defaults]).
    pub namespace: Option<At<String>>,
    /// Local address to listen on (overrides [defaults]); loopback unless
    /// `expose_to_network = true`.
    pub local_address: Option<At<String>>,
    /// Allows a local address that is not loopback: everyone who can reach this machine
    /// could then reach the whole cluster network.
    pub expose_to_network: Option<At<bool>>,
}

/// `[trust]`: decisions the team's file from git may make for this machine, when you say so.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TrustSpec {
    /// true lets the team's file give forwards host names (`domain`), which kftray-helper
    /// writes into this machine's hosts file. Default false.
    pub domains: Option<At<bool>>,
    /// true lets the team's file make servers of this machine reachable from the cluster
    /// (`[exposes]`). Default false.
    pub exposes: Option<At<bool>>,
    /// true lets the team's file also put an Ingress in front of them (`ingress`), which
    /// makes them reachable from outside the cluster. Default false.
    pub ingresses: Option<At<bool>>,
}

/// Defaults for every forward.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Defaults {
    /// Kubernetes context from the kubeconfig. Omitted: the kubeconfig's current context.
    pub context: Option<At<String>>,
    /// Path of the kubeconfig file ('~' and paths relative to this file are accepted).
    /// Omitted: $KUBECONFIG, else ~/.kube/config, as kubectl does.
    pub kubeconfig: Option<At<String>>,
    /// Namespace of the targets. Omitted: the context's namespace, else "default".
    pub namespace: Option<At<String>>,
    /// Local address to listen on: any 127.x.y.z (or ::1), or "auto" for an address of the
    /// forward's own, stable across runs. Default 127.0.0.1.
    pub local_address: Option<At<String>>,
    /// HTTP traffic logs for every forward; a forward's own `http_log` keys win.
    pub http_log: Option<At<HttpLogSpec>>,
}

/// One forward. Exactly one target key (service, selector, pod, deployment, statefulset,
/// daemonset or proxy), and either `remote_port` (with an optional `local_port`) or `ports`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ForwardSpec {
    /// Target: a Service by name; its pods are chosen as `kubectl port-forward svc/NAME` does.
    pub service: Option<At<String>>,
    /// Target: the pods matching a label selector, e.g. "app=api,tier!=cache".
    pub selector: Option<At<String>>,
    /// Target: one pod by name.
    pub pod: Option<At<String>>,
    /// Target: the pods of a Deployment, chosen as kubectl does.
    pub deployment: Option<At<String>>,
    /// Target: the pods of a StatefulSet, chosen as kubectl does.
    pub statefulset: Option<At<String>>,
    /// Target: the pods of a DaemonSet, chosen as kubectl does.
    pub daemonset: Option<At<String>>,
    /// Target: a host name or IP address that only the cluster can reach, relayed through a
    /// kftray relay pod in `namespace`. The port goes in `remote_port`.
    pub proxy: Option<At<String>>,
    /// Port on the target: a number, or a port name (service port name, then container port
    /// name, as kubectl resolves it).
    pub remote_port: Option<At<RemotePortSpec>>,
    /// Local port: a number, or "any" for a free port chosen at start. Omitted: the same
    /// number as `remote_port`.
    pub local_port: Option<At<LocalPortSpec>>,
    /// Several ports of the same target, each "LOCAL:REMOTE" (e.g. "8080:80", "9090:metrics",
    /// "any:http") or "PORT" for the same number on both sides; or "all" for every port the
    /// target declares (of the forward's protocol), each on the same local port, listed when
    /// `up` starts and at each reload. Instead of `local_port`/`remote_port`.
    pub ports: Option<At<PortsSpec>>,
    /// "tcp" (default) or "udp". Port-forward carries TCP only, so UDP goes through kftray's
    /// relay pod: to the service's ClusterIP, the chosen pod's IP, or the proxy host.
    pub protocol: Option<At<Protocol>>,
    /// How a TCP service forward reaches the service: "port-forward" (default) to one of its
    /// pods, or "relay": through kftray's relay pod to the service's ClusterIP, so that
    /// kube-proxy balances connections and a rollout never breaks the forward. UDP and proxy
    /// forwards always go through the relay.
    pub via: Option<At<Via>>,
    /// Kubernetes context (overrides [defaults]).
    pub context: Option<At<String>>,
    /// Path of the kubeconfig file (overrides [defaults]).
    pub kubeconfig: Option<At<String>>,
    /// Namespace of the target; for a proxy or UDP forward, where the relay pod runs.
    pub namespace: Option<At<String>>,
    /// Local address to listen on (overrides [defaults]); any 127.x.y.z or ::1 unless
    /// `expose_to_network = true`, or "auto": a 127.x.y.z of the forward's own, stable across
    /// runs of this project, so every forward can keep its remote port.
    pub local_address: Option<At<String>>,
    /// Allows a local address that is not loopback (e.g. 0.0.0.0). This exposes the cluster
    /// target to everyone who can reach this machine.
    pub expose_to_network: Option<At<bool>>,
    /// A host name for the forward (e.g. "api.dev.local"), written into the hosts file for
    /// as long as the forward runs, by kftray-helper. From the team's file from git only with
    /// `[trust] domains = true` in your own file.
    pub domain: Option<At<String>>,
    /// false keeps the forward in the file without running it. Default true.
    pub enabled: Option<At<bool>>,
    /// Tags, so that `kftray up --tag backend` runs a subset.
    pub tags: Option<At<Vec<At<String>>>>,
    /// Free text shown beside the forward (an imported kftray alias that is not a DNS label
    /// is kept here).
    pub description: Option<At<String>>,
    /// Log the HTTP requests and responses that go through the forward, to
    /// `$KFTRAY_HOME/http_logs/<project>/<alias>.http`: true, or a table of settings.
    pub http_log: Option<At<HttpLogSpec>>,
}

/// `http_log` as written: on or off, or a table of settings (which turns it on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpLogSpec {
    Switch(bool),
    Table(Box<HttpLogTable>),
}

/// The settings of an HTTP log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HttpLogTable {
    /// false keeps the settings without logging. Default true.
    pub enabled: Option<At<bool>>,
    /// Size at which the log file is rotated: "10MiB", "500kB" or a number of bytes. Default
    /// "10MiB".
    pub max_file_size: Option<At<SizeSpec>>,
    /// How long rotated files are kept, as a duration like "7d", or "forever". Default "7d".
    pub retention: Option<At<String>>,
    /// How much of each body is written; the rest is counted. Default "64KiB".
    pub body_limit: Option<At<SizeSpec>>,
    /// Headers whose values are written as `[redacted]`, besides Authorization, Cookie,
    /// Set-Cookie and Proxy-Authorization.
    pub redact: Option<At<Vec<At<String>>>>,
    /// Of those four, the headers to write in clear. Only your own files may set it, not a
    /// team file from git.
    pub reveal: Option<At<Vec<At<String>>>>,
}

/// A size as written: a number of bytes, or a number and a unit ("10MiB").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SizeSpec {
    Bytes(i64),
    Text(String),
}

/// The git source of a team configuration.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SyncSpec {
    /// Repository URL: https://, ssh://, git@host:path or file://.
    pub repo: Option<At<String>>,
    /// Branch, tag or commit to follow. Default "HEAD" (the remote's default branch).
    #[serde(rename = "ref")]
    pub reference: Option<At<String>>,
    /// Path of the kftray.toml inside the repository. Default "kftray.toml".
    pub path: Option<At<String>>,
    /// How often to poll, as a duration like "60s", "5m" or "1h30m". Default "60s".
    pub interval: Option<At<String>>,
}

/// The relay pod, for every forward that needs it.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RelaySpec {
    /// Container image of the relay. Default: kftray's own relay-server image of this version.
    /// Only your own files may set it, not a team file from git.
    pub image: Option<At<String>>,
    /// A Pod manifest (YAML) to create the relay from instead of the built-in one, relative
    /// to this file. kftray sets its name, namespace, labels and (when `image` is set) image.
    /// Only your own files may set it, not a team file from git.
    pub manifest: Option<At<String>>,
    /// Run the relay in this namespace for every forward that needs one (per context), instead
    /// of each forward's own namespace.
    pub namespace: Option<At<String>>,
}

/// How a forward reaches its target.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Deserialize,
    Serialize,
    JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    /// Kubernetes port-forward to a pod.
    #[default]
    PortForward,
    /// kftray's relay pod.
    Relay,
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Via::PortForward => "port-forward",
            Via::Relay => "relay",
        })
    }
}

/// Transport protocol of a forward.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Deserialize,
    Serialize,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Through the API server's port-forward (or the relay, where asked).
    #[default]
    Tcp,
    /// Datagrams, always through the relay pod.
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// `remote_port` as written: a number or a port name. Range and name syntax are checked when
/// resolving, so that the message can say what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemotePortSpec {
    Number(i64),
    Name(String),
}

/// `ports` as written: a list of entries, or the word "all".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortsSpec {
    List(Vec<At<String>>),
    All,
}

/// `local_port` as written: a number or the word "any".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalPortSpec {
    Number(i64),
    Any,
}

impl<'de> Deserialize<'de> for RemotePortSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RemotePortSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number or a port name")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(RemotePortSpec::Number(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(RemotePortSpec::Number(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RemotePortSpec::Name(v.to_owned()))
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for LocalPortSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LocalPortSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number or \"any\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(LocalPortSpec::Number(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(LocalPortSpec::Number(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v == "any" {
                    Ok(LocalPortSpec::Any)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for PortsSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PortsSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of ports like [\"8080:80\"], or \"all\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v == "all" {
                    Ok(PortsSpec::All)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
            // Entry by entry from the file's own deserializer, so that each keeps its span.
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut list = Vec::new();
                while let Some(entry) = seq.next_element::<At<String>>()? {
                    list.push(entry);
                }
                Ok(PortsSpec::List(list))
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for HttpLogSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = HttpLogSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or a table of settings")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(HttpLogSpec::Switch(v))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                HttpLogTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|table| HttpLogSpec::Table(Box::new(table)))
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl JsonSchema for HttpLogSpec {
    fn schema_name() -> Cow<'static, str> {
        "HttpLog".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let table = generator.subschema_for::<HttpLogTable>();
        json_schema!({
            "description": "true, false, or a table of settings (which turns logging on).",
            "anyOf": [{"type": "boolean"}, table]
        })
    }
}

impl<'de> Deserialize<'de> for SizeSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SizeSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size like \"10MiB\" or a number of bytes")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(SizeSpec::Bytes(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(SizeSpec::Bytes(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(SizeSpec::Text(v.to_owned()))
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl JsonSchema for SizeSpec {
    fn schema_name() -> Cow<'static, str> {
        "Size".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A number of bytes, or a number and a unit: B, kB, KiB, MB, MiB, GB, GiB.",
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": "^[0-9]+ ?(B|kB|KB|KiB|MB|MiB|GB|GiB)?$"}
            ]
        })
    }
}

impl JsonSchema for PortsSpec {
    fn schema_name() -> Cow<'static, str> {
        "Ports".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Entries \"LOCAL:REMOTE\" or \"PORT\", or \"all\" for every port the target declares.",
            "anyOf": [
                {"type": "array", "items": {"type": "string"}},
                {"const": "all"}
            ]
        })
    }
}

impl JsonSchema for RemotePortSpec {
    fn schema_name() -> Cow<'static, str> {
        "RemotePort".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A port number (1-65535) or a port name (e.g. \"http\").",
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": 65535},
                {"type": "string", "pattern": "^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$"}
            ]
        })
    }
}

impl JsonSchema for LocalPortSpec {
    fn schema_name() -> Cow<'static, str> {
        "LocalPort".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A port number (1-65535), or \"any\" for a free port chosen at start.",
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": 65535},
                {"const": "any"}
            ]
        })
    }
}
