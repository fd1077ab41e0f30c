//! The ports a target declares, for `ports = "all"`: a Service's ports, a pod's container
//! ports, those of a workload's pod template, or of every pod a selector matches.

use crate::api_error::describe;
use crate::target::{Target, WorkloadKind};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, Service};
use kube::Api;
use kube::api::ListParams;

/// The port numbers `target` declares for `protocol` (Kubernetes' name: "TCP" or "UDP"; a
/// port without one is TCP, as the API server defaults it), sorted, each once. None declared
/// is an error that says which protocols it does declare.
pub async fn declared_ports(
    client: &kube::Client,
    namespace: &str,
    target: &Target,
    protocol: &str,
) -> Result<Vec<u16>, String> {
    let failed = |e: kube::Error| format!("cannot read {target}: {}", describe(&e));
    let ports: Vec<(String, i32)> = match target {
        Target::Service { name } => {
            let service = get::<Service>(client, namespace, name)
                .await
                .map_err(failed)?;
            service
                .spec
                .and_then(|s| s.ports)
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p.protocol.unwrap_or_else(|| "TCP".into()), p.port))
                .collect()
        }
        Target::Pod { name } => {
            let pod = get::<Pod>(client, namespace, name).await.map_err(failed)?;
            container_ports(pod.spec.as_ref())
        }
        Target::Selector { selector } => {
            let pods = Api::<Pod>::namespaced(client.clone(), namespace)
                .list(&ListParams::default().labels(selector))
                .await
                .map_err(failed)?;
            if pods.items.is_empty() {
                return Err(format!(
                    "no pod matches {selector} yet, so its ports are not known"
                ));
            }
            pods.items
                .iter()
                .flat_map(|p| container_ports(p.spec.as_ref()))
                .collect()
        }
        Target::Workload { workload, name } => {
            let template = match workload {
                WorkloadKind::Deployment => get::<Deployment>(client, namespace, name)
                    .await
                    .map(|d| d.spec.template),
                WorkloadKind::StatefulSet => get::<StatefulSet>(client, namespace, name)
                    .await
                    .map(|s| s.spec.template),
                WorkloadKind::DaemonSet => get::<DaemonSet>(client, namespace, name)
                    .await
                    .map(|d| d.spec.template),
            }
            .map_err(failed)?;
            container_ports(template.spec.as_ref())
        }
        Target::Proxy { host } => return Err(format!("proxy host {host} declares no ports")),
    };
    of_protocol(target, &ports, protocol)
}

async fn get<K>(client: &kube::Client, namespace: &str, name: &str) -> Result<K, kube::Error>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    Api::<K>::namespaced(client.clone(), namespace)
        .get(name)
        .await
}

/// Every container's declared ports (init containers' too: a sidecar serves as one).
fn container_ports(spec: Option<&PodSpec>) -> Vec<(String, i32)> {
    spec.into_iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .flat_map(|c: &Container| c.ports.iter().flatten())
        .map(|p| {
            (
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                p.container_port,
            )
        })
        .collect()
}

fn of_protocol(
    target: &Target,
    ports: &[(String, i32)],
    protocol: &str,
) -> Result<Vec<u16>, String> {
    let mut wanted: Vec<u16> = ports
        .iter()
        .filter(|(p, _)| p == protocol)
        .filter_map(|(_, n)| u16::try_from(*n).ok().filter(|n| *n > 0))
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    if !wanted.is_empty() {
        return Ok(wanted);
    }
    let mut others: Vec<&str> = ports.iter().map(|(p, _)| p.as_str()).collect();
    others.sort_unstable();
    others.dedup();
    Err(if others.is_empty() {
        format!("{target} declares no ports")
    } else {
        format!(
            "{target} declares no {protocol} port, only {}; set `protocol` to forward those",
            others.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_protocol_asked_for_sorted_once_each() {
        let target = Target::Service { name: "api".into() };
        let ports = [
            ("TCP".to_owned(), 9090),
            ("UDP".to_owned(), 53),
            ("TCP".to_owned(), 8080),
            ("TCP".to_owned(), 9090),
            ("SCTP".to_owned(), 7000),
        ];
        assert_eq!(of_protocol(&target, &ports, "TCP"), Ok(vec![8080, 9090]));
        assert_eq!(of_protocol(&target, &ports, "UDP"), Ok(vec![53]));
        let only_udp = [("UDP".to_owned(), 53)];
        assert_eq!(
            of_protocol(&target, &only_udp, "TCP"),
            Err("svc/api declares no TCP port, only UDP; set `protocol` to forward those".into())
        );
        assert_eq!(
            of_protocol(&target, &[], "TCP"),
            Err("svc/api declares no ports".into())
        );
    }
}
