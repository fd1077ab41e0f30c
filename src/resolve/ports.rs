use crate::target::PortRef;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("service {service} has no port {port} (its ports: {known})")]
    NoServicePort {
        service: String,
        port: PortRef,
        known: String,
    },
    #[error("pod {pod} has no container port named {name:?} (its named ports: {known})")]
    NoContainerPort {
        pod: String,
        name: String,
        known: String,
    },
    #[error("port {value} in {place} is not a valid port number")]
    OutOfRange { place: String, value: i64 },
}

/// Translates a service port (number or name) to what the pods must serve: its `targetPort`,
/// which defaults to the port number itself as the API server defaults it.
pub fn service_target(service: &Service, port: &PortRef) -> Result<PortRef, PortError> {
    let name = service.metadata.name.clone().unwrap_or_default();
    let ports = service
        .spec
        .as_ref()
        .and_then(|spec| spec.ports.as_deref())
        .unwrap_or_default();
    let found = ports.iter().find(|p| match port {
        PortRef::Number(n) => p.port == i32::from(*n),
        PortRef::Name(wanted) => p.name.as_deref() == Some(wanted.as_str()),
    });
    let Some(found) = found else {
        let known = ports
            .iter()
            .map(|p| match &p.name {
                Some(n) if !n.is_empty() => format!("{}/{n}", p.port),
                _ => p.port.to_string(),
            })
            .collect::<Vec<_>>();
        return Err(PortError::NoServicePort {
            service: name,
            port: port.clone(),
            known: list_or_none(&known),
        });
    };
    match &found.target_port {
        None => port_number(i64::from(found.port), &name).map(PortRef::Number),
        Some(IntOrString::Int(n)) => port_number(i64::from(*n), &name).map(PortRef::Number),
        // A numeric string is how some manifests write it; the API server keeps it a string
        // and kube-proxy reads it as a name, but kubectl treats digits as a number.
        Some(IntOrString::String(s)) => match s.parse::<i64>() {
            Ok(n) => port_number(n, &name).map(PortRef::Number),
            Err(_) => Ok(PortRef::Name(s.clone())),
        },
    }
}

/// The container port a pod serves for `port`: a number is used as it is (kubectl does not
/// require it to be declared), a name must match a declared container port.
pub fn container_port(pod: &Pod, port: &PortRef) -> Result<u16, PortError> {
    let wanted = match port {
        PortRef::Number(n) => return Ok(*n),
        PortRef::Name(name) => name,
    };
    let declared = pod
        .spec
        .iter()
        .flat_map(|spec| {
            spec.containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
        })
        .flat_map(|c| c.ports.iter().flatten());
    let mut known = Vec::new();
    for p in declared {
        match p.name.as_deref() {
            Some(name) if name == wanted => {
                return port_number(i64::from(p.container_port), &pod_name(pod));
            }
            Some(name) => known.push(format!("{name}={}", p.container_port)),
            None => {}
        }
    }
    Err(PortError::NoContainerPort {
        pod: pod_name(pod),
        name: wanted.clone(),
        known: list_or_none(&known),
    })
}

fn port_number(value: i64, place: &str) -> Result<u16, PortError> {
    match u16::try_from(value) {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(PortError::OutOfRange {
            place: place.to_string(),
            value,
        }),
    }
}

fn pod_name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service() -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"ports": [
                {"name": "http", "port": 80, "targetPort": "web"},
                {"name": "metrics", "port": 9090, "targetPort": 9100},
                {"port": 443},
                {"name": "legacy", "port": 81, "targetPort": "8081"}
            ]}
        }))
        .unwrap()
    }

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web-1"},
            "spec": {"containers": [
                {"name": "app", "ports": [{"name": "web", "containerPort": 8080}, {"containerPort": 22}]},
                {"name": "sidecar", "ports": [{"name": "admin", "containerPort": 9901}]}
            ]}
        }))
        .unwrap()
    }

    #[test]
    fn service_port_by_number_or_name_gives_its_target() {
        let svc = service();
        assert_eq!(
            service_target(&svc, &PortRef::Number(80)),
            Ok(PortRef::Name("web".into()))
        );
        assert_eq!(
            service_target(&svc, &PortRef::Name("http".into())),
            Ok(PortRef::Name("web".into()))
        );
        assert_eq!(
            service_target(&svc, &PortRef::Name("metrics".into())),
            Ok(PortRef::Number(9100))
        );
        // No targetPort: the port itself, as the API server defaults it.
        assert_eq!(
            service_target(&svc, &PortRef::Number(443)),
            Ok(PortRef::Number(443))
        );
        assert_eq!(
            service_target(&svc, &PortRef::Number(81)),
            Ok(PortRef::Number(8081))
        );
    }

    #[test]
    fn unknown_service_port_lists_the_known_ones() {
        let err = service_target(&service(), &PortRef::Name("grpc".into())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "service web has no port grpc (its ports: 80/http, 9090/metrics, 443, 81/legacy)"
        );
    }

    #[test]
    fn container_port_names_resolve_across_containers() {
        let pod = pod();
        assert_eq!(container_port(&pod, &PortRef::Name("web".into())), Ok(8080));
        assert_eq!(
            container_port(&pod, &PortRef::Name("admin".into())),
            Ok(9901)
        );
        assert_eq!(container_port(&pod, &PortRef::Number(5432)), Ok(5432));
        let err = container_port(&pod, &PortRef::Name("db".into())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "pod web-1 has no container port named \"db\" (its named ports: web=8080, admin=9901)"
        );
    }

    #[test]
    fn named_service_port_through_named_target_to_container_port() {
        let target = service_target(&service(), &PortRef::Name("http".into())).unwrap();
        assert_eq!(container_port(&pod(), &target), Ok(8080));
    }
}
