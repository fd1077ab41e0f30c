//! The Ingress of an expose: routes its host and path to the expose's Service, with TLS from
//! a Secret (filled by cert-manager when an issuer is named). It is owned by that Service, so
//! the cluster's garbage collector deletes it with the Service, whoever deletes that.

use super::service::{check_ours, refused};
use crate::config::Ingress as IngressConfig;
use crate::engine::spec::Exposed;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams};
use kube::core::Resource;
use std::collections::BTreeMap;

/// The field manager of kftray's server-side applies: what it stops setting is removed.
const MANAGER: &str = "kftray";

/// Makes the Ingress what the expose says, unless one of that name is someone else's.
pub(super) async fn ensure(
    api: &Api<Ingress>,
    exposed: &Exposed,
    labels: BTreeMap<String, String>,
    config: &IngressConfig,
    service: &Service,
) -> Result<(), String> {
    let name = &exposed.service;
    let existing = api
        .get_opt(name)
        .await
        .map_err(|e| refused("Ingress", name, "get", "ingresses", e))?;
    if let Some(existing) = existing {
        check_ours("Ingress", &existing.metadata, &exposed.alias)?;
    }
    let ingress = desired(exposed, labels, config, service);
    api.patch(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&ingress),
    )
    .await
    .map_err(|e| refused("Ingress", name, "patch", "ingresses", e))?;
    Ok(())
}

fn desired(
    exposed: &Exposed,
    labels: BTreeMap<String, String>,
    config: &IngressConfig,
    service: &Service,
) -> Ingress {
    let mut annotations = config.annotations.clone();
    if let Some(issuer) = config.tls.as_ref().and_then(|t| t.issuer.as_ref()) {
        annotations.insert(issuer.annotation().to_owned(), issuer.name.clone());
    }
    let backend = IngressBackend {
        service: Some(IngressServiceBackend {
            name: exposed.service.clone(),
            port: Some(ServiceBackendPort {
                number: Some(i32::from(exposed.port)),
                ..ServiceBackendPort::default()
            }),
        }),
        ..IngressBackend::default()
    };
    Ingress {
        metadata: ObjectMeta {
            name: Some(exposed.service.clone()),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: owner(service).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: Some(IngressSpec {
            ingress_class_name: config.class.clone(),
            rules: Some(vec![IngressRule {
                host: Some(config.host.clone()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some(config.path.clone()),
                        path_type: "Prefix".into(),
                        backend,
                    }],
                }),
            }]),
            tls: config.tls.as_ref().map(|tls| {
                vec![IngressTLS {
                    hosts: Some(vec![config.host.clone()]),
                    secret_name: Some(tls.secret.clone()),
                }]
            }),
            ..IngressSpec::default()
        }),
        ..Ingress::default()
    }
}

/// The Service as the Ingress's owner (not a controller: nothing reconciles the Ingress).
fn owner(service: &Service) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: Service::api_version(&()).into_owned(),
        kind: Service::kind(&()).into_owned(),
        name: service.metadata.name.clone()?,
        uid: service.metadata.uid.clone()?,
        ..OwnerReference::default()
    })
}

#[cfg(test)]
mod tests {
    use super::super::service::EXPOSE_LABEL;
    use super::*;
    use crate::config::{CertIssuer, IngressTls};

    #[test]
    fn the_ingress_routes_host_and_path_to_the_service_with_the_issuers_certificate() {
        let config = IngressConfig {
            host: "hook.example.com".into(),
            path: "/hooks".into(),
            class: Some("nginx".into()),
            annotations: [("a.example/x".to_owned(), "1".to_owned())].into(),
            tls: Some(IngressTls {
                secret: "hook-tls".into(),
                issuer: Some(CertIssuer {
                    namespaced: false,
                    name: "letsencrypt-prod".into(),
                }),
            }),
        };
        let service = Service {
            metadata: ObjectMeta {
                name: Some("hook".into()),
                uid: Some("u-1".into()),
                ..ObjectMeta::default()
            },
            ..Service::default()
        };
        let exposed = Exposed {
            alias: "hook".into(),
            local: "127.0.0.1:3000".parse().unwrap(),
            service: "hook".into(),
            port: 8080,
            protocol: crate::config::Protocol::Tcp,
            ingress: Some(config.clone()),
        };
        let labels = BTreeMap::from([(EXPOSE_LABEL.to_owned(), "hook".to_owned())]);
        let ingress = desired(&exposed, labels, &config, &service);
        let json = serde_json::to_value(&ingress).unwrap();
        assert_eq!(json["metadata"]["name"], "hook");
        assert_eq!(json["metadata"]["labels"][EXPOSE_LABEL], "hook");
        assert_eq!(
            json["metadata"]["annotations"]["cert-manager.io/cluster-issuer"],
            "letsencrypt-prod"
        );
        assert_eq!(json["metadata"]["annotations"]["a.example/x"], "1");
        assert_eq!(json["metadata"]["ownerReferences"][0]["uid"], "u-1");
        assert_eq!(json["metadata"]["ownerReferences"][0]["kind"], "Service");
        assert_eq!(json["spec"]["ingressClassName"], "nginx");
        let rule = &json["spec"]["rules"][0];
        assert_eq!(rule["host"], "hook.example.com");
        let path = &rule["http"]["paths"][0];
        assert_eq!(
            (&path["path"], &path["pathType"]),
            (&"/hooks".into(), &"Prefix".into())
        );
        assert_eq!(path["backend"]["service"]["name"], "hook");
        assert_eq!(path["backend"]["service"]["port"]["number"], 8080);
        assert_eq!(json["spec"]["tls"][0]["secretName"], "hook-tls");
        assert_eq!(json["spec"]["tls"][0]["hosts"][0], "hook.example.com");
    }
}
