//! Legacy discovery (`/api`, `/apis`, `/api/v1`, `/apis/<g>/<v>`) and `/version`.

use serde_json::{Value, json};

pub struct ResourceInfo {
    pub name: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

pub const RESOURCES: &[ResourceInfo] = &[
    ResourceInfo {
        name: "namespaces",
        group: "",
        version: "v1",
        kind: "Namespace",
        singular: "namespace",
        namespaced: false,
        short_names: &["ns"],
    },
    ResourceInfo {
        name: "pods",
        group: "",
        version: "v1",
        kind: "Pod",
        singular: "pod",
        namespaced: true,
        short_names: &["po"],
    },
    ResourceInfo {
        name: "services",
        group: "",
        version: "v1",
        kind: "Service",
        singular: "service",
        namespaced: true,
        short_names: &["svc"],
    },
    ResourceInfo {
        name: "endpoints",
        group: "",
        version: "v1",
        kind: "Endpoints",
        singular: "endpoints",
        namespaced: true,
        short_names: &["ep"],
    },
    ResourceInfo {
        name: "deployments",
        group: "apps",
        version: "v1",
        kind: "Deployment",
        singular: "deployment",
        namespaced: true,
        short_names: &["deploy"],
    },
    ResourceInfo {
        name: "statefulsets",
        group: "apps",
        version: "v1",
        kind: "StatefulSet",
        singular: "statefulset",
        namespaced: true,
        short_names: &["sts"],
    },
    ResourceInfo {
        name: "daemonsets",
        group: "apps",
        version: "v1",
        kind: "DaemonSet",
        singular: "daemonset",
        namespaced: true,
        short_names: &["ds"],
    },
    ResourceInfo {
        name: "replicasets",
        group: "apps",
        version: "v1",
        kind: "ReplicaSet",
        singular: "replicaset",
        namespaced: true,
        short_names: &["rs"],
    },
    ResourceInfo {
        name: "endpointslices",
        group: "discovery.k8s.io",
        version: "v1",
        kind: "EndpointSlice",
        singular: "endpointslice",
        namespaced: true,
        short_names: &[],
    },
];

pub fn info(resource: &str) -> Option<&'static ResourceInfo> {
    RESOURCES.iter().find(|r| r.name == resource)
}

pub fn info_by_kind(kind: &str) -> Option<&'static ResourceInfo> {
    RESOURCES.iter().find(|r| r.kind == kind)
}

pub fn kind_of(resource: &str) -> Option<&'static str> {
    info(resource).map(|r| r.kind)
}

pub fn api_version(r: &ResourceInfo) -> String {
    if r.group.is_empty() {
        r.version.to_string()
    } else {
        format!("{}/{}", r.group, r.version)
    }
}

pub fn version() -> Value {
    json!({
        "major": "1", "minor": "32", "gitVersion": "v1.32.4-kubesim", "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean", "buildDate": "2025-04-22T00:00:00Z", "goVersion": "go1.23.8", "compiler": "gc",
        "platform": "linux/amd64"
    })
}

pub fn api_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]})
}

pub fn api_group_list() -> Value {
    let groups: Vec<Value> = ["apps", "discovery.k8s.io"]
        .iter()
        .map(|g| {
            let gv = json!({"groupVersion": format!("{g}/v1"), "version": "v1"});
            json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// The APIResourceList of one group/version, or None when the sim does not serve it.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    if version != "v1" || !["", "apps", "discovery.k8s.io"].contains(&group) {
        return None;
    }
    let mut out = Vec::new();
    for r in RESOURCES.iter().filter(|r| r.group == group) {
        let verbs: &[&str] = if r.name == "namespaces" {
            &[
                "create", "delete", "get", "list", "patch", "update", "watch",
            ]
        } else {
            ALL_VERBS
        };
        let mut v = json!({
            "name": r.name, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind, "verbs": verbs,
        });
        if !r.short_names.is_empty() {
            v["shortNames"] = json!(r.short_names);
        }
        if [
            "pods",
            "services",
            "deployments",
            "statefulsets",
            "daemonsets",
            "replicasets",
        ]
        .contains(&r.name)
        {
            v["categories"] = json!(["all"]);
        }
        out.push(v);
        if r.name == "pods" {
            for (sub, kind, verbs) in [
                (
                    "pods/portforward",
                    "PodPortForwardOptions",
                    vec!["create", "get"],
                ),
                ("pods/log", "Pod", vec!["get"]),
                ("pods/status", "Pod", vec!["get", "patch", "update"]),
            ] {
                out.push(json!({"name": sub, "singularName": "", "namespaced": true, "kind": kind, "verbs": verbs}));
            }
        }
        if ["deployments", "statefulsets", "replicasets"].contains(&r.name) {
            out.push(json!({"name": format!("{}/scale", r.name), "singularName": "", "namespaced": true, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
        }
    }
    let gv = if group.is_empty() {
        "v1".to_string()
    } else {
        format!("{group}/v1")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}),
    )
}
