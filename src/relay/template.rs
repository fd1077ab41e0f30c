//! The relay pod's manifest: the built-in one (`pod.yaml`) or the user's, and the pod made
//! from it for one relay.

use super::owner::Owner;
use crate::config::{ManifestError, ManifestFileError, RelayManifest};
use k8s_openapi::api::core::v1::Pod;
use std::path::Path;

const BUILT_IN: &str = include_str!("pod.yaml");

/// kftray's own relay image, of this version: by digest in a release build (build.rs).
pub const DEFAULT_IMAGE: &str = env!("KFTRAY_RELAY_IMAGE");

/// The label that names a relay pod, which an expose's Service selects.
pub const POD_LABEL: &str = "kftray.dev/relay";

#[derive(Debug, Clone)]
pub struct Template {
    manifest: RelayManifest,
    /// The image used when the configuration names none: kftray's own for the built-in
    /// manifest, the manifest's own otherwise.
    default_image: Option<String>,
}

impl Template {
    pub fn built_in() -> Template {
        let mut template = Template::parse(BUILT_IN).expect("the built-in relay manifest parses");
        template.default_image = Some(DEFAULT_IMAGE.to_string());
        template
    }

    /// The manifest at `path`, or the built-in one.
    pub fn load(path: Option<&Path>) -> Result<Template, ManifestFileError> {
        match path {
            None => Ok(Template::built_in()),
            Some(path) => RelayManifest::read(path).map(Template::from),
        }
    }

    pub fn parse(text: &str) -> Result<Template, ManifestError> {
        RelayManifest::parse(text).map(Template::from)
    }

    pub fn port(&self) -> u16 {
        self.manifest.port()
    }

    /// The pod for one relay: the manifest with kftray's name, namespace, owner labels and
    /// annotations, and the image.
    pub fn render(&self, name: &str, namespace: &str, image: Option<&str>, owner: &Owner) -> Pod {
        let mut pod = self.manifest.pod().clone();
        pod.metadata.name = Some(name.to_string());
        pod.metadata.generate_name = None;
        pod.metadata.namespace = Some(namespace.to_string());
        pod.metadata
            .labels
            .get_or_insert_default()
            .extend(owner.labels());
        // A Service of an expose selects exactly this pod.
        pod.metadata
            .labels
            .get_or_insert_default()
            .insert(POD_LABEL.into(), name.to_string());
        pod.metadata
            .annotations
            .get_or_insert_default()
            .extend(owner.annotations());
        let image = image.map(str::to_string).or(self.default_image.clone());
        if let Some(image) = image
            && let Some(spec) = pod.spec.as_mut()
        {
            spec.containers[self.manifest.relay_container_index()].image = Some(image);
        }
        pod
    }
}

impl Template {
    /// Has the node pull the relay's image again rather than run what it has under that
    /// name: a tag it cached may be an older relay than this kftray speaks to.
    pub fn pull_again(&self, pod: &mut Pod) {
        if let Some(spec) = pod.spec.as_mut() {
            spec.containers[self.manifest.relay_container_index()].image_pull_policy =
                Some("Always".to_string());
        }
    }
}

impl From<RelayManifest> for Template {
    fn from(manifest: RelayManifest) -> Template {
        Template {
            manifest,
            default_image: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Owner {
        Owner::for_tests("ana", "laptop", "/home/ana/shop")
    }

    #[test]
    fn a_relay_of_another_version_is_pulled_again() {
        let template = Template::built_in();
        let mut pod = template.render("r", "ns", None, &owner());
        let policy = |pod: &Pod| {
            pod.spec.as_ref().unwrap().containers[0]
                .image_pull_policy
                .clone()
        };
        assert_eq!(policy(&pod), None, "the cluster's default, first");
        template.pull_again(&mut pod);
        assert_eq!(policy(&pod).as_deref(), Some("Always"));
    }

    #[test]
    fn the_built_in_pod_is_hardened() {
        let template = Template::built_in();
        assert_eq!(template.port(), 7000);
        let pod = template.render("kftray-relay-abc", "shop", None, &owner());
        assert_eq!(pod.metadata.name.as_deref(), Some("kftray-relay-abc"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("shop"));
        let spec = pod.spec.unwrap();
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        assert_eq!(spec.automount_service_account_token, Some(false));
        assert_eq!(spec.security_context.unwrap().run_as_non_root, Some(true));
        let container = &spec.containers[0];
        assert_eq!(container.image.as_deref(), Some(DEFAULT_IMAGE));
        let security = container.security_context.clone().unwrap();
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(
            security.capabilities.unwrap().drop,
            Some(vec!["ALL".to_string()])
        );
        let resources = container.resources.clone().unwrap();
        assert!(resources.requests.is_some() && resources.limits.is_some());
        let labels = pod.metadata.labels.unwrap();
        assert_eq!(labels["app.kubernetes.io/name"], "kftray-relay");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "kftray");
        assert_eq!(labels["kftray.dev/owner-user"], "ana");
    }

    #[test]
    fn a_configured_image_replaces_the_relay_containers() {
        let template = Template::parse(
            "kind: Pod\nspec:\n  containers:\n    - name: sidecar\n      image: busybox\n    - name: relay\n      image: mine/relay:1\n      ports:\n        - name: relay\n          containerPort: 9000\n",
        )
        .unwrap();
        assert_eq!(template.port(), 9000);
        let pod = template.render("r", "ns", None, &owner());
        assert_eq!(
            pod.spec.as_ref().unwrap().containers[1].image.as_deref(),
            Some("mine/relay:1"),
            "a user's manifest keeps its image"
        );
        let pod = template.render("r", "ns", Some("registry.local/relay:2"), &owner());
        let containers = &pod.spec.unwrap().containers;
        assert_eq!(containers[0].image.as_deref(), Some("busybox"));
        assert_eq!(
            containers[1].image.as_deref(),
            Some("registry.local/relay:2")
        );
    }

    #[test]
    fn bad_manifests_say_what_and_where() {
        let err = Template::parse("kind: Pod\nspec:\n  containers: [\n").unwrap_err();
        assert!(err.line_column.is_some(), "{err:?}");
        let err = Template::parse("kind: Deployment\n").unwrap_err();
        assert!(err.message.contains("Deployment"), "{err:?}");
        let err = Template::parse("kind: Pod\nspec:\n  containers: []\n").unwrap_err();
        assert!(err.message.contains("containers"), "{err:?}");
        let err =
            Template::parse("kind: Pod\nspec:\n  containers:\n    - name: relay\n").unwrap_err();
        assert!(err.message.contains("no image"), "{err:?}");
    }
}
