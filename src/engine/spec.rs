//! What a forward needs at run time, and nothing else: two specs that are equal run the same
//! forward, so a change elsewhere in the file (a tag, a comment) restarts nothing.

use crate::cluster::ClusterKey;
use crate::config::{self, Protocol, Via};
use crate::forward::proxy::Kind;
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
    /// `None`: a TCP port-forward to a pod. Otherwise through kftray's relay pod.
    pub relay: Option<Relayed>,
    /// How its HTTP traffic is logged, if it is.
    pub http_log: Option<config::HttpLog>,
    /// The host name the hosts file gives its local address while it runs.
    pub domain: Option<String>,
    /// `Some`: not a forward but the proxy into the cluster (`[proxy]`): each connection
    /// names its own destination, which the relay resolves and connects to.
    pub proxy: Option<Kind>,
    /// `Some`: not a forward but a reverse one (`[exposes]`): nothing listens here; the relay
    /// listens for the cluster's clients and each of their connections comes to `local`.
    pub expose: Option<Exposed>,
}

/// A reverse forward: clients of Service `service` on `port` reach the server at `local`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Exposed {
    pub alias: String,
    pub local: std::net::SocketAddr,
    pub service: String,
    pub port: u16,
    /// What the local server speaks.
    pub protocol: Protocol,
    /// An Ingress in front of the Service.
    pub ingress: Option<config::Ingress>,
}

/// A forward that goes through the relay: its protocol and the relay's settings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Relayed {
    pub protocol: Protocol,
    pub settings: config::Relay,
}

/// Where to listen: a port of 0 asks for any free port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct LocalBind {
    pub address: IpAddr,
    pub port: u16,
    /// `local_address = "auto"`: when another program holds the port on `address`, the next
    /// addresses of the auto range are tried.
    pub auto: bool,
}

impl fmt::Display for RunSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.proxy, &self.expose) {
            (Some(kind), _) => write!(f, "{kind} proxy into the cluster")?,
            (_, Some(e)) => {
                write!(f, "svc/{}:{}", e.service, e.port)?;
                if let Some(ingress) = &e.ingress {
                    let scheme = if ingress.tls.is_some() {
                        "https"
                    } else {
                        "http"
                    };
                    write!(f, " and {scheme}://{}{}", ingress.host, ingress.path)?;
                }
                write!(f, " from the cluster to {}", e.local)?;
            }
            _ => write!(f, "{}:{}", self.target, self.remote_port)?,
        }
        if let Some(Relayed {
            protocol: Protocol::Udp,
            ..
        }) = &self.relay
        {
            f.write_str("/udp")?;
        }
        if let Some(ns) = &self.namespace {
            write!(f, " in {ns}")?;
        }
        if let Some(context) = &self.cluster.context {
            write!(f, " ({context})")?;
        }
        if self.relay.is_some() {
            f.write_str(" via relay")?;
        }
        Ok(())
    }
}

impl RunSpec {
    /// The run-time part of a configured forward; `relay` is the file's `[relay]` settings.
    pub fn from_config(forward: &config::Forward, relay: &config::Relay) -> RunSpec {
        use crate::config::LocalPort;
        RunSpec {
            cluster: ClusterKey {
                kubeconfig: forward.kubeconfig.clone(),
                context: forward.context.clone(),
            },
            namespace: forward.namespace.clone(),
            target: forward.target.clone(),
            remote_port: forward.remote_port.clone(),
            local: LocalBind {
                address: forward.local_address,
                port: match forward.local_port {
                    LocalPort::Fixed(port) => port,
                    LocalPort::Any => 0,
                },
                auto: forward.local_address_auto,
            },
            relay: (forward.via == Via::Relay).then(|| Relayed {
                protocol: forward.protocol,
                settings: relay.clone(),
            }),
            http_log: forward.http_log.clone(),
            domain: forward.domain.clone(),
            proxy: None,
            expose: None,
        }
    }

    /// The run-time part of `[proxy]`: one listener of `kind` on `port`, through the relay
    /// of its namespace.
    pub fn of_proxy(
        proxy: &config::Proxy,
        kind: Kind,
        port: u16,
        relay: &config::Relay,
    ) -> RunSpec {
        RunSpec {
            cluster: ClusterKey {
                kubeconfig: proxy.kubeconfig.clone(),
                context: proxy.context.clone(),
            },
            namespace: proxy.namespace.clone(),
            // Each connection names its own destination; this one is never dialled.
            target: Target::Proxy {
                host: String::new(),
            },
            remote_port: PortRef::Number(0),
            local: LocalBind {
                address: proxy.local_address,
                port,
                auto: false,
            },
            relay: Some(Relayed {
                protocol: Protocol::Tcp,
                settings: relay.clone(),
            }),
            http_log: None,
            domain: None,
            proxy: Some(kind),
            expose: None,
        }
    }

    /// The enabled reverse forwards, by name, as a run starts them: through the relay of
    /// their namespace, whose pod their Service selects.
    pub fn of_exposes(effective: &config::Effective) -> Vec<(String, RunSpec)> {
        effective
            .exposes
            .iter()
            .filter(|e| e.enabled)
            .map(|e| {
                let spec = RunSpec {
                    cluster: ClusterKey {
                        kubeconfig: e.kubeconfig.clone(),
                        context: e.context.clone(),
                    },
                    namespace: e.namespace.clone(),
                    // Nothing is dialled through the relay but the attaches.
                    target: Target::Proxy {
                        host: String::new(),
                    },
                    remote_port: PortRef::Number(0),
                    local: LocalBind {
                        address: e.local.ip(),
                        port: e.local.port(),
                        auto: false,
                    },
                    relay: Some(Relayed {
                        protocol: e.protocol,
                        settings: effective.relay.clone(),
                    }),
                    http_log: None,
                    domain: None,
                    proxy: None,
                    expose: Some(Exposed {
                        protocol: e.protocol,
                        alias: e.alias.clone(),
                        local: e.local,
                        service: e.service.clone(),
                        port: e.port,
                        ingress: e.ingress.clone(),
                    }),
                };
                (e.name(), spec)
            })
            .collect()
    }

    /// The proxy's listeners, by name, as a run starts them.
    pub fn of_proxies(effective: &config::Effective) -> Vec<(String, RunSpec)> {
        let Some(proxy) = &effective.proxy else {
            return Vec::new();
        };
        [
            (config::Proxy::SOCKS, Kind::Socks, proxy.socks),
            (config::Proxy::HTTP, Kind::Http, proxy.http),
        ]
        .into_iter()
        .filter_map(|(name, kind, port)| {
            let spec = RunSpec::of_proxy(proxy, kind, port?, &effective.relay);
            Some((name.to_owned(), spec))
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> RunSpec {
        let effective = config::load_str("kftray.toml", text).unwrap();
        RunSpec::from_config(&effective.forwards[0], &effective.relay)
    }

    #[test]
    fn udp_proxies_and_via_relay_go_through_the_relay() {
        let plain = spec("[forwards.w]\nservice = \"web\"\nremote_port = 80\n");
        assert_eq!(plain.relay, None);
        assert_eq!(plain.to_string(), "svc/web:80");
        let dns = spec(
            "[forwards.d]\nservice = \"dns\"\nnamespace = \"kube-system\"\nprotocol = \"udp\"\nremote_port = 53\n",
        );
        assert_eq!(dns.relay.as_ref().unwrap().protocol, Protocol::Udp);
        assert_eq!(dns.to_string(), "svc/dns:53/udp in kube-system via relay");
        let proxy = spec("[forwards.r]\nproxy = \"redis.internal\"\nremote_port = 6379\n");
        assert_eq!(
            proxy.target,
            Target::Proxy {
                host: "redis.internal".into()
            }
        );
        assert_eq!(proxy.to_string(), "proxy/redis.internal:6379 via relay");
        let via = spec(
            "[relay]\nimage = \"registry.local/relay:1\"\n[forwards.w]\nservice = \"web\"\nremote_port = 80\nvia = \"relay\"\n",
        );
        let relayed = via.relay.unwrap();
        assert_eq!(relayed.protocol, Protocol::Tcp);
        assert_eq!(
            relayed.settings.image.as_deref(),
            Some("registry.local/relay:1")
        );
    }
}
