//! The Service of an expose: kftray's own, selecting the relay pod of now; and the sweep of
//! those a crashed run left.

use super::Exposing;
use crate::relay::POD_LABEL;
use k8s_openapi::api::core::v1::{Pod, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use std::collections::BTreeMap;

/// The label that says which expose an object is.
pub(super) const EXPOSE_LABEL: &str = "kftray.dev/expose";
const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
const MANAGED_LABEL: &str = "app.kubernetes.io/managed-by";

/// Deletes the Services of exposes whose relay pod is gone: a run that crashed left them, and
/// the relays of owners that are gone are deleted when a relay starts. A live run whose relay
/// is being replaced makes its Service again; `own`, about to be re-pointed, is kept.
pub(super) async fn sweep(services: &Api<Service>, pods: &Api<Pod>, own: &str) {
    let ours =
        ListParams::default().labels(&format!("{COMPONENT_LABEL}=expose,{MANAGED_LABEL}=kftray"));
    let Ok(list) = services.list(&ours).await else {
        return;
    };
    for service in list.items {
        let (Some(name), Some(relay)) = (
            service.metadata.name.as_deref(),
            service
                .spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .and_then(|s| s.get(POD_LABEL)),
        ) else {
            continue;
        };
        if name != own && matches!(pods.get_opt(relay).await, Ok(None)) {
            tracing::info!(service = name, relay = %relay, "deleting the Service of an expose whose relay pod is gone");
            let _ = services.delete(name, &DeleteParams::default()).await;
        }
    }
}

/// The labels of an expose's objects: its owner's, and which expose they are.
pub(super) fn labels(exposing: &Exposing) -> BTreeMap<String, String> {
    let mut labels = exposing.owner.labels();
    labels.insert("app.kubernetes.io/name".into(), "kftray-expose".into());
    labels.insert(COMPONENT_LABEL.into(), "expose".into());
    labels.insert(EXPOSE_LABEL.into(), exposing.exposed.alias.clone());
    labels
}

/// Whether an object of that name is this expose's own; if not, why it is left alone.
pub(super) fn check_ours(kind: &str, meta: &ObjectMeta, alias: &str) -> Result<(), String> {
    let ours = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(EXPOSE_LABEL))
        .is_some_and(|a| a == alias);
    if ours {
        return Ok(());
    }
    let name = meta.name.as_deref().unwrap_or_default();
    Err(format!(
        "a {kind} {name} exists that kftray did not create: give the expose another \
         `service`, or delete that {kind}"
    ))
}

/// A refusal of the API server, with the verb to grant.
pub(super) fn refused(
    kind: &str,
    name: &str,
    verb: &str,
    resource: &str,
    e: kube::Error,
) -> String {
    format!(
        "cannot {verb} {kind} {name}: {e} (grant `{verb}` on `{resource}`: examples/relay-rbac.yaml)"
    )
}

/// Creates the Service, or points kftray's own at the relay pod of now; one of someone
/// else's with that name is left alone, and said so.
pub(super) async fn ensure_service(
    api: &Api<Service>,
    exposing: &Exposing,
    pod: &str,
    relay_port: u16,
) -> Result<Service, String> {
    let exposed = &exposing.exposed;
    let name = &exposed.service;
    let service = Service {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some(labels(exposing)),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(BTreeMap::from([(POD_LABEL.to_string(), pod.to_string())])),
            ports: Some(vec![ServicePort {
                name: Some(exposed.protocol.to_string()),
                port: i32::from(exposed.port),
                target_port: Some(IntOrString::Int(i32::from(relay_port))),
                protocol: Some(exposed.protocol.to_string().to_uppercase()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    };
    let refused = |verb: &str, e| refused("Service", name, verb, "services", e);
    match api.get_opt(name).await.map_err(|e| refused("get", e))? {
        None => api
            .create(&PostParams::default(), &service)
            .await
            .map_err(|e| refused("create", e)),
        Some(existing) => {
            check_ours("Service", &existing.metadata, &exposed.alias)?;
            let patch = serde_json::json!({
                "metadata": {"labels": service.metadata.labels},
                "spec": {"selector": {POD_LABEL: pod}, "ports": service.spec.and_then(|s| s.ports)},
            });
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| refused("patch", e))
        }
    }
}
