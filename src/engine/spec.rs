//! What a forward needs at run time, and nothing else: two specs that are equal run the same
//! forward, so a change elsewhere in the file (a tag, a comment) restarts nothing.

use crate::cluster::ClusterKey;
use crate::config::{self, Protocol, Via};
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
}

impl fmt::Display for RunSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.target, self.remote_port)?;
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
            },
            relay: (forward.via == Via::Relay).then(|| Relayed {
                protocol: forward.protocol,
                settings: relay.clone(),
            }),
            http_log: forward.http_log.clone(),
        }
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
