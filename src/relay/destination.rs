//! Where the relay connects for a forward, followed as the cluster changes: a proxy's host, a
//! service's ClusterIP (kube-proxy then balances, and a rollout never breaks the forward), or
//! the IP of the pod kftray would port-forward to (headless services, pods, workloads).

use crate::resolve::{PortRef, Resolution, ServiceStep, Target, each_service_state, follow};
use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use kftray_relay::protocol::{Destination, Transport};
use kube::Api;
use tokio::sync::watch;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestinationState {
    /// Not known yet; the text says what is awaited.
    Waiting(String),
    Ready(Destination),
    /// The target is wrong (no such port); it may be fixed in the cluster.
    Failed(String),
}

/// Starts following where `target`'s `port` is, for `transport`; the task ends when every
/// receiver is dropped.
pub fn follow_destination(
    client: kube::Client,
    namespace: &str,
    target: &Target,
    port: &PortRef,
    transport: Transport,
) -> watch::Receiver<DestinationState> {
    if let Target::Proxy { host } = target {
        let state = match port {
            PortRef::Number(n) => DestinationState::Ready(Destination::new(host, *n)),
            PortRef::Name(name) => {
                DestinationState::Failed(format!("a host has no port named {name:?}"))
            }
        };
        return watch::channel(state).1;
    }
    let (tx, rx) = watch::channel(DestinationState::Waiting(format!("looking up {target}")));
    let (namespace, target, port) = (namespace.to_string(), target.clone(), port.clone());
    tokio::spawn(async move {
        let run = async {
            match &target {
                Target::Service { name } => {
                    follow_service(client, &namespace, name, &port, transport, &tx).await;
                }
                _ => {
                    let found = follow(client.clone(), &namespace, target.clone(), port);
                    pod_addresses(client, &namespace, found, &tx).await;
                }
            }
        };
        tokio::select! {
            () = run => {}
            () = tx.closed() => {}
        }
    });
    rx
}

/// A service: its ClusterIP and port; its external name; or, headless, a pod's address.
async fn follow_service(
    client: kube::Client,
    namespace: &str,
    name: &str,
    port: &PortRef,
    transport: Transport,
    tx: &watch::Sender<DestinationState>,
) {
    let on_error = |tx: &watch::Sender<DestinationState>, why: String| {
        tx.send_replace(DestinationState::Waiting(why));
    };
    let step = |service: Option<&Service>| {
        let next = match service {
            None => DestinationState::Waiting(format!("service {name} does not exist")),
            Some(service) => service_destination(service, port, transport),
        };
        if !matches!(&next, DestinationState::Waiting(w) if w == HEADLESS) {
            return ServiceStep::Publish(next);
        }
        // Headless: the pods behind it, as port-forward would choose them.
        let (client, namespace, tx) = (client.clone(), namespace.to_string(), tx.clone());
        let (target, port) = (
            Target::Service {
                name: name.to_string(),
            },
            port.clone(),
        );
        ServiceStep::Run(
            (),
            Box::pin(async move {
                let found = follow(client.clone(), &namespace, target, port);
                pod_addresses(client, &namespace, found, &tx).await;
            }),
        )
    };
    each_service_state(client.clone(), namespace, name, tx, on_error, step).await;
}

/// Marks a headless service, whose pods are followed instead.
const HEADLESS: &str = "headless";

/// Where a service's port is reached, from its spec alone.
fn service_destination(
    service: &Service,
    port: &PortRef,
    transport: Transport,
) -> DestinationState {
    let name = service.metadata.name.clone().unwrap_or_default();
    let spec = service.spec.clone().unwrap_or_default();
    let protocol = match transport {
        Transport::Tcp => "TCP",
        Transport::Udp => "UDP",
    };
    let ports = spec.ports.unwrap_or_default();
    let found = ports.iter().find(|p| {
        p.protocol.as_deref().unwrap_or("TCP") == protocol
            && match port {
                PortRef::Number(n) => p.port == i32::from(*n),
                PortRef::Name(wanted) => p.name.as_deref() == Some(wanted.as_str()),
            }
    });
    if spec.type_.as_deref() == Some("ExternalName") {
        let host = spec.external_name.unwrap_or_default();
        let number = match (found, port) {
            (Some(p), _) => u16::try_from(p.port).ok(),
            (None, PortRef::Number(n)) => Some(*n),
            (None, PortRef::Name(_)) => None,
        };
        return match number {
            Some(n) if !host.is_empty() => DestinationState::Ready(Destination::new(&host, n)),
            _ => {
                DestinationState::Failed(format!("service {name} names no host, or no port {port}"))
            }
        };
    }
    let cluster_ip = spec.cluster_ip.unwrap_or_default();
    if cluster_ip.is_empty() || cluster_ip == "None" {
        return DestinationState::Waiting(HEADLESS.into());
    }
    match found.and_then(|p| u16::try_from(p.port).ok()) {
        Some(n) => DestinationState::Ready(Destination::new(&cluster_ip, n)),
        None => DestinationState::Failed(format!(
            "service {name} has no {protocol} port {port} (its ports: {})",
            known_ports(&ports)
        )),
    }
}

fn known_ports(ports: &[ServicePort]) -> String {
    let list: Vec<String> = ports
        .iter()
        .map(|p| {
            let proto = p.protocol.as_deref().unwrap_or("TCP");
            match p.name.as_deref().filter(|n| !n.is_empty()) {
                Some(n) => format!("{}/{proto} ({n})", p.port),
                None => format!("{}/{proto}", p.port),
            }
        })
        .collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

/// The address of the pod `found` chooses, on its container port.
async fn pod_addresses(
    client: kube::Client,
    namespace: &str,
    mut found: watch::Receiver<Resolution>,
    tx: &watch::Sender<DestinationState>,
) {
    let pods: Api<Pod> = Api::namespaced(client, namespace);
    loop {
        let resolution = found.borrow_and_update().clone();
        let next = match resolution {
            Resolution::Waiting(why) => DestinationState::Waiting(why),
            Resolution::Failed(why) => DestinationState::Failed(why),
            Resolution::Ready(endpoint) => match pods.get_opt(&endpoint.pod).await {
                Ok(Some(pod)) => match pod.status.and_then(|s| s.pod_ip) {
                    Some(ip) if !ip.is_empty() => {
                        DestinationState::Ready(Destination::new(&ip, endpoint.port))
                    }
                    _ => DestinationState::Waiting(format!("pod {} has no IP yet", endpoint.pod)),
                },
                Ok(None) => DestinationState::Waiting(format!("pod {} is gone", endpoint.pod)),
                Err(e) => DestinationState::Waiting(format!("reading pod {}: {e}", endpoint.pod)),
            },
        };
        tx.send_replace(next);
        if found.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(spec: serde_json::Value) -> Service {
        serde_json::from_value(json!({"metadata": {"name": "dns"}, "spec": spec})).unwrap()
    }

    #[test]
    fn a_cluster_ip_service_is_reached_on_its_own_port_and_protocol() {
        let s = service(json!({"clusterIP": "10.96.0.10", "ports": [
            {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 5353},
            {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353}
        ]}));
        assert_eq!(
            service_destination(&s, &PortRef::Number(53), Transport::Udp),
            DestinationState::Ready(Destination::new("10.96.0.10", 53))
        );
        assert_eq!(
            service_destination(&s, &PortRef::Name("dns".into()), Transport::Udp),
            DestinationState::Ready(Destination::new("10.96.0.10", 53))
        );
        let DestinationState::Failed(why) =
            service_destination(&s, &PortRef::Name("dns".into()), Transport::Tcp)
        else {
            panic!()
        };
        assert!(why.contains("no TCP port dns"), "{why}");
        assert!(why.contains("53/UDP (dns)"), "{why}");
    }

    #[test]
    fn headless_and_external_name_services() {
        let s = service(json!({"clusterIP": "None", "ports": [{"port": 53}]}));
        assert_eq!(
            service_destination(&s, &PortRef::Number(53), Transport::Tcp),
            DestinationState::Waiting(HEADLESS.into())
        );
        let s = service(json!({"type": "ExternalName", "externalName": "db.example.com"}));
        assert_eq!(
            service_destination(&s, &PortRef::Number(5432), Transport::Tcp),
            DestinationState::Ready(Destination::new("db.example.com", 5432))
        );
    }
}
