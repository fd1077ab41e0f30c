//! `meta.k8s.io/v1 Table` answers, with the columns kubectl prints for each resource.

use serde_json::{Value, json};

use crate::time::age;

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

fn n(v: &Value, ptr: &str) -> u64 {
    v.pointer(ptr).and_then(Value::as_u64).unwrap_or(0)
}

fn col(name: &str, ty: &str, priority: u8) -> Value {
    json!({"name": name, "type": ty, "format": if name == "Name" { "name" } else { "" }, "description": name, "priority": priority})
}

/// Does the client's Accept header ask for a Table?
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

type Cells = fn(&Value) -> Vec<Value>;

pub fn table(resource: &str, items: &[Value], rv: u64, cont: Option<&str>) -> Value {
    let (columns, cells): (Vec<Value>, Cells) = match resource {
        "pods" => (
            vec![
                col("Name", "string", 0),
                col("Ready", "string", 0),
                col("Status", "string", 0),
                col("Restarts", "string", 0),
                col("Age", "string", 0),
                col("IP", "string", 1),
                col("Node", "string", 1),
            ],
            |p| {
                let statuses = p
                    .pointer("/status/containerStatuses")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let total = p
                    .pointer("/spec/containers")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                let ready = statuses.iter().filter(|c| c["ready"] == true).count();
                let status = if p.pointer("/metadata/deletionTimestamp").is_some() {
                    "Terminating"
                } else {
                    s(p, "/status/phase")
                };
                let ip = s(p, "/status/podIP");
                let restarts: u64 = statuses
                    .iter()
                    .filter_map(|c| c["restartCount"].as_u64())
                    .sum();
                vec![
                    json!(s(p, "/metadata/name")),
                    json!(format!("{ready}/{total}")),
                    json!(status),
                    json!(restarts.to_string()),
                    json!(age(p
                        .pointer("/metadata/creationTimestamp")
                        .and_then(Value::as_str))),
                    json!(if ip.is_empty() { "<none>" } else { ip }),
                    json!(s(p, "/spec/nodeName")),
                ]
            },
        ),
        "services" => (
            vec![
                col("Name", "string", 0),
                col("Type", "string", 0),
                col("Cluster-IP", "string", 0),
                col("External-IP", "string", 0),
                col("Port(s)", "string", 0),
                col("Age", "string", 0),
                col("Selector", "string", 1),
            ],
            |v| {
                let ports: Vec<String> = v
                    .pointer("/spec/ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|p| format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP")))
                    .collect();
                let selector: Vec<String> = v
                    .pointer("/spec/selector")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                    .map(|(k, x)| format!("{k}={}", x.as_str().unwrap_or_default()))
                    .collect();
                vec![
                    json!(s(v, "/metadata/name")),
                    json!(s(v, "/spec/type")),
                    json!(s(v, "/spec/clusterIP")),
                    json!("<none>"),
                    json!(if ports.is_empty() {
                        "<none>".into()
                    } else {
                        ports.join(",")
                    }),
                    json!(age(v
                        .pointer("/metadata/creationTimestamp")
                        .and_then(Value::as_str))),
                    json!(if selector.is_empty() {
                        "<none>".into()
                    } else {
                        selector.join(",")
                    }),
                ]
            },
        ),
        "deployments" => (
            vec![
                col("Name", "string", 0),
                col("Ready", "string", 0),
                col("Up-to-date", "integer", 0),
                col("Available", "integer", 0),
                col("Age", "string", 0),
            ],
            |d| {
                vec![
                    json!(s(d, "/metadata/name")),
                    json!(format!(
                        "{}/{}",
                        n(d, "/status/readyReplicas"),
                        n(d, "/spec/replicas")
                    )),
                    json!(n(d, "/status/updatedReplicas")),
                    json!(n(d, "/status/availableReplicas")),
                    json!(age(d
                        .pointer("/metadata/creationTimestamp")
                        .and_then(Value::as_str))),
                ]
            },
        ),
        "statefulsets" => (
            vec![
                col("Name", "string", 0),
                col("Ready", "string", 0),
                col("Age", "string", 0),
            ],
            |d| {
                vec![
                    json!(s(d, "/metadata/name")),
                    json!(format!(
                        "{}/{}",
                        n(d, "/status/readyReplicas"),
                        n(d, "/spec/replicas")
                    )),
                    json!(age(d
                        .pointer("/metadata/creationTimestamp")
                        .and_then(Value::as_str))),
                ]
            },
        ),
        "namespaces" => (
            vec![
                col("Name", "string", 0),
                col("Status", "string", 0),
                col("Age", "string", 0),
            ],
            |v| {
                vec![
                    json!(s(v, "/metadata/name")),
                    json!(s(v, "/status/phase")),
                    json!(age(v
                        .pointer("/metadata/creationTimestamp")
                        .and_then(Value::as_str))),
                ]
            },
        ),
        _ => (
            vec![col("Name", "string", 0), col("Age", "string", 0)],
            |v| {
                vec![
                    json!(s(v, "/metadata/name")),
                    json!(age(v
                        .pointer("/metadata/creationTimestamp")
                        .and_then(Value::as_str))),
                ]
            },
        ),
    };
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let meta = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]});
            json!({"cells": cells(o), "object": meta})
        })
        .collect();
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": columns, "rows": rows})
}
