//! The control plane's loops: defaulting on create, workload controllers (deployment →
//! replicaset → pods, statefulset, daemonset), pod lifecycle, endpoints and EndpointSlices.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::runtime::Runtime;
use crate::selector::{LabelSelector, labels_of};
use crate::status::ApiError;
use crate::store::Store;

pub const NODE: &str = "kubesim";
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

/// Fills what the API server's defaulting and admission would before storing.
pub(crate) fn prepare(resource: &str, obj: &mut Value, runtime: &Runtime) -> Result<(), ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request("the object is not a JSON object"));
    }
    if obj.get("metadata").is_none() {
        obj["metadata"] = json!({});
    }
    let name = s(obj, "/metadata/name").to_string();
    if name.is_empty() {
        let generate = s(obj, "/metadata/generateName").to_string();
        if generate.is_empty() {
            return Err(ApiError::invalid(
                resource,
                "",
                "metadata.name: Required value: name or generateName is required",
            ));
        }
        obj["metadata"]["name"] = json!(format!("{generate}{}", suffix()));
    }
    if let Some(info) = crate::discovery::info(resource) {
        obj["kind"] = json!(info.kind);
        obj["apiVersion"] = json!(crate::discovery::api_version(info));
    }
    match resource {
        "namespaces" => obj["status"] = json!({"phase": "Active"}),
        "pods" => {
            let containers = obj
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            if containers == 0 {
                let n = s(obj, "/metadata/name").to_string();
                return Err(ApiError::invalid(
                    "pods",
                    &n,
                    "spec.containers: Required value",
                ));
            }
            let spec = &mut obj["spec"];
            spec["nodeName"] = json!(NODE);
            for (k, v) in [
                ("restartPolicy", json!("Always")),
                ("terminationGracePeriodSeconds", json!(30)),
                ("dnsPolicy", json!("ClusterFirst")),
            ] {
                if spec.get(k).is_none() {
                    spec[k] = v;
                }
            }
            for c in spec["containers"].as_array_mut().into_iter().flatten() {
                for p in c["ports"].as_array_mut().into_iter().flatten() {
                    if p.get("protocol").is_none() {
                        p["protocol"] = json!("TCP");
                    }
                }
            }
            obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort", "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": crate::time::now()}
            ]});
        }
        "services" => {
            let spec = &mut obj["spec"];
            if spec.get("type").is_none() {
                spec["type"] = json!("ClusterIP");
            }
            let external = spec["type"] == "ExternalName";
            if !external
                && spec
                    .get("clusterIP")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            {
                spec["clusterIP"] = json!(runtime.cluster_ip().to_string());
            }
            if !external {
                spec["clusterIPs"] = json!([spec["clusterIP"].clone()]);
            }
            spec["sessionAffinity"] = spec
                .get("sessionAffinity")
                .cloned()
                .unwrap_or(json!("None"));
            for p in spec["ports"].as_array_mut().into_iter().flatten() {
                if p.get("protocol").is_none() {
                    p["protocol"] = json!("TCP");
                }
                if p.get("targetPort").is_none() {
                    p["targetPort"] = p["port"].clone();
                }
            }
            obj["status"] = json!({"loadBalancer": {}});
        }
        "deployments" | "statefulsets" | "replicasets"
            if obj.pointer("/spec/replicas").is_none() =>
        {
            obj["spec"]["replicas"] = json!(1);
        }
        _ => {}
    }
    Ok(())
}

pub(crate) struct Controller {
    pub store: Store,
    pub runtime: Arc<Runtime>,
    // Wakes the loop for changes outside the store (a readiness flip).
    pub poke: Arc<tokio::sync::Notify>,
}

impl Controller {
    /// Runs until the store's channel closes, reconciling after every change.
    pub(crate) async fn run(self: Arc<Self>) {
        let mut rx = self.store.subscribe();
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            self.reconcile().await;
            tokio::select! {
                // The kubelet's restart of exited containers; a pass only when one restarted.
                _ = async {
                    loop {
                        tick.tick().await;
                        if self.runtime.reap_exited() {
                            return;
                        }
                    }
                } => {}
                ev = rx.recv() => match ev {
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                _ = self.poke.notified() => {}
            }
            // Coalesce a burst of events into one pass.
            while rx.try_recv().is_ok() {}
        }
    }

    pub(crate) async fn reconcile(&self) {
        self.deployments();
        self.replicasets();
        self.statefulsets();
        self.daemonsets();
        self.pods().await;
        self.workload_status();
        self.services().await;
    }

    fn create(&self, resource: &str, ns: &str, mut obj: Value) {
        if prepare(resource, &mut obj, &self.runtime).is_ok() {
            let _ = self.store.create(resource, ns, obj);
        }
    }

    fn owned(&self, resource: &str, ns: &str, owner_uid: &str) -> Vec<Value> {
        self.store
            .list(resource, Some(ns))
            .0
            .into_iter()
            .filter(|o| {
                o.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"].as_str() == Some(owner_uid)))
            })
            .collect()
    }

    fn deployments(&self) {
        for d in self.store.list("deployments", None).0 {
            let (ns, name) = (s(&d, "/metadata/namespace"), s(&d, "/metadata/name"));
            let template = d.pointer("/spec/template").cloned().unwrap_or_default();
            let hash = template_hash(&template);
            let rs_name = format!("{name}-{hash}");
            let replicas = d.pointer("/spec/replicas").cloned().unwrap_or(json!(1));
            for rs in self.owned("replicasets", ns, s(&d, "/metadata/uid")) {
                let n = s(&rs, "/metadata/name");
                if n != rs_name {
                    self.store
                        .update("replicasets", ns, n, |o| o["spec"]["replicas"] = json!(0));
                }
            }
            if self.store.get("replicasets", ns, &rs_name).is_some() {
                self.store.update("replicasets", ns, &rs_name, |o| {
                    o["spec"]["replicas"] = replicas.clone()
                });
                continue;
            }
            let mut t = template.clone();
            t["metadata"]["labels"]["pod-template-hash"] = json!(hash);
            let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
            selector["matchLabels"]["pod-template-hash"] = json!(hash);
            let mut labels = t["metadata"]["labels"].clone();
            labels["pod-template-hash"] = json!(hash);
            let rs = json!({
                "metadata": {"name": rs_name, "labels": labels, "ownerReferences": [owner_ref(&d)],
                    "annotations": {"deployment.kubernetes.io/revision": "1"}},
                "spec": {"replicas": replicas, "selector": selector, "template": t},
            });
            self.create("replicasets", ns, rs);
        }
    }

    fn replicasets(&self) {
        for rs in self.store.list("replicasets", None).0 {
            let (ns, name) = (s(&rs, "/metadata/namespace"), s(&rs, "/metadata/name"));
            let want = rs
                .pointer("/spec/replicas")
                .and_then(Value::as_u64)
                .unwrap_or(1) as usize;
            let pods: Vec<Value> = self
                .owned("pods", ns, s(&rs, "/metadata/uid"))
                .into_iter()
                .filter(|p| !terminating(p))
                .collect();
            for _ in pods.len()..want {
                let pod = pod_from_template(&rs, &format!("{name}-{}", suffix()), BTreeMap::new());
                self.create("pods", ns, pod);
            }
            for extra in pods.iter().skip(want) {
                self.store.delete("pods", ns, s(extra, "/metadata/name"));
            }
        }
    }

    fn statefulsets(&self) {
        for st in self.store.list("statefulsets", None).0 {
            let (ns, name) = (s(&st, "/metadata/namespace"), s(&st, "/metadata/name"));
            let want = st
                .pointer("/spec/replicas")
                .and_then(Value::as_u64)
                .unwrap_or(1);
            let revision = format!(
                "{name}-{}",
                template_hash(st.pointer("/spec/template").unwrap_or(&Value::Null))
            );
            for i in 0..want {
                let pod_name = format!("{name}-{i}");
                if self.store.get("pods", ns, &pod_name).is_none() {
                    let extra = BTreeMap::from([
                        (
                            "statefulset.kubernetes.io/pod-name".to_string(),
                            pod_name.clone(),
                        ),
                        ("controller-revision-hash".to_string(), revision.clone()),
                        ("apps.kubernetes.io/pod-index".to_string(), i.to_string()),
                    ]);
                    let mut pod = pod_from_template(&st, &pod_name, extra);
                    pod["spec"]["hostname"] = json!(pod_name);
                    if let Some(svc) = st.pointer("/spec/serviceName") {
                        pod["spec"]["subdomain"] = svc.clone();
                    }
                    self.create("pods", ns, pod);
                }
            }
            for p in self.owned("pods", ns, s(&st, "/metadata/uid")) {
                let idx = s(&p, "/metadata/name")
                    .rsplit_once('-')
                    .and_then(|(_, i)| i.parse::<u64>().ok());
                if idx.is_none_or(|i| i >= want) {
                    self.store.delete("pods", ns, s(&p, "/metadata/name"));
                }
            }
        }
    }

    fn daemonsets(&self) {
        for ds in self.store.list("daemonsets", None).0 {
            let (ns, name) = (s(&ds, "/metadata/namespace"), s(&ds, "/metadata/name"));
            let pods = self.owned("pods", ns, s(&ds, "/metadata/uid"));
            if !pods.iter().any(|p| !terminating(p)) {
                let hash = template_hash(ds.pointer("/spec/template").unwrap_or(&Value::Null));
                let extra = BTreeMap::from([("controller-revision-hash".to_string(), hash)]);
                self.create(
                    "pods",
                    ns,
                    pod_from_template(&ds, &format!("{name}-{}", suffix()), extra),
                );
            }
        }
    }

    /// Starts pods that have no runtime yet, stops runtimes whose pod is gone, and keeps
    /// each pod's status (phase, IP, Ready) in line with its runtime.
    async fn pods(&self) {
        let pods = self.store.list("pods", None).0;
        for (ns, name, uid) in self.runtime.pod_keys() {
            let alive = pods.iter().any(|p| {
                s(p, "/metadata/namespace") == ns
                    && s(p, "/metadata/name") == name
                    && s(p, "/metadata/uid") == uid
            });
            if !alive {
                self.runtime.stop_pod(&ns, &name);
            }
        }
        let dns = self.runtime.dns_addr();
        for p in &pods {
            let (ns, name, uid) = (
                s(p, "/metadata/namespace"),
                s(p, "/metadata/name"),
                s(p, "/metadata/uid"),
            );
            if terminating(p) {
                continue;
            }
            // Containers start concurrently: a slow local process must not hold up the
            // rest of the cluster. Its status write wakes the loop again.
            if !self.runtime.has_pod(ns, name, uid) && self.runtime.begin_start(uid) {
                let (runtime, store, pod) = (self.runtime.clone(), self.store.clone(), p.clone());
                let (ns, name, uid) = (ns.to_string(), name.to_string(), uid.to_string());
                tokio::spawn(async move {
                    let (ip, ok, error) = runtime.start_pod(&pod, dns).await;
                    runtime.end_start(&uid);
                    let now = crate::time::now();
                    store.update("pods", &ns, &name, |o| {
                        if s(o, "/metadata/uid") != uid {
                            return;
                        }
                        o["status"]["podIP"] = json!(ip.to_string());
                        o["status"]["podIPs"] = json!([{"ip": ip.to_string()}]);
                        o["status"]["hostIP"] = json!("127.0.0.1");
                        o["status"]["startTime"] = json!(now);
                        if ok {
                            o["status"]["phase"] = json!("Running");
                        } else {
                            o["status"]["message"] = json!(error.clone().unwrap_or_default());
                        }
                    });
                });
            }
            let exited = self.runtime.exited(ns, name);
            let running = s(p, "/status/phase") == "Running" && exited.is_none();
            let ready = self.runtime.is_ready(ns, name).unwrap_or(false) && running;
            let restarts = self.runtime.restarts(ns, name);
            self.store.update("pods", ns, name, |o| {
                if let Some(code) = exited {
                    o["status"]["phase"] = json!(if code == 0 { "Succeeded" } else { "Failed" });
                }
                set_pod_conditions(o, running, ready, restarts, exited)
            });
        }
    }

    fn workload_status(&self) {
        for resource in ["replicasets", "deployments", "statefulsets", "daemonsets"] {
            for w in self.store.list(resource, None).0 {
                let (ns, name) = (s(&w, "/metadata/namespace"), s(&w, "/metadata/name"));
                let pods: Vec<Value> = if resource == "deployments" {
                    self.owned("replicasets", ns, s(&w, "/metadata/uid"))
                        .iter()
                        .flat_map(|rs| self.owned("pods", ns, s(rs, "/metadata/uid")))
                        .collect()
                } else {
                    self.owned("pods", ns, s(&w, "/metadata/uid"))
                };
                let pods: Vec<&Value> = pods.iter().filter(|p| !terminating(p)).collect();
                let total = pods.len();
                let ready = pods.iter().filter(|p| pod_ready(p)).count();
                let generation = w
                    .pointer("/metadata/generation")
                    .cloned()
                    .unwrap_or(json!(1));
                self.store.update(resource, ns, name, |o| {
                    let st = &mut o["status"];
                    st["observedGeneration"] = generation.clone();
                    match resource {
                        "daemonsets" => {
                            st["desiredNumberScheduled"] = json!(1);
                            st["currentNumberScheduled"] = json!(total);
                            st["numberReady"] = json!(ready);
                            st["numberAvailable"] = json!(ready);
                            st["updatedNumberScheduled"] = json!(total);
                            st["numberMisscheduled"] = json!(0);
                        }
                        _ => {
                            st["replicas"] = json!(total);
                            st["readyReplicas"] = json!(ready);
                            st["availableReplicas"] = json!(ready);
                            if resource != "replicasets" {
                                st["updatedReplicas"] = json!(total);
                            }
                        }
                    }
                });
            }
        }
    }

    async fn services(&self) {
        let services = self.store.list("services", None).0;
        let pods = self.store.list("pods", None).0;
        let mut keep = Vec::new();
        for svc in &services {
            let (ns, name) = (s(svc, "/metadata/namespace"), s(svc, "/metadata/name"));
            keep.push((ns.to_string(), name.to_string()));
            self.runtime.sync_service(svc).await;
            let Some(sel) = svc
                .pointer("/spec/selector")
                .filter(|v| v.as_object().is_some_and(|m| !m.is_empty()))
            else {
                continue;
            };
            let sel = LabelSelector::from_json(sel);
            let members: Vec<&Value> = pods
                .iter()
                .filter(|p| {
                    s(p, "/metadata/namespace") == ns
                        && !s(p, "/status/podIP").is_empty()
                        && sel.matches(&labels_of(p))
                })
                .collect();
            self.endpoints(svc, &members);
            self.endpoint_slice(svc, &members);
        }
        for ep in self.store.list("endpoints", None).0 {
            let (ns, name) = (s(&ep, "/metadata/namespace"), s(&ep, "/metadata/name"));
            if !keep.iter().any(|(n, s)| n == ns && s == name)
                && ep.pointer("/metadata/labels/kubesim.io~1managed").is_some()
            {
                self.store.delete("endpoints", ns, name);
            }
        }
        for sl in self.store.list("endpointslices", None).0 {
            let (ns, svc) = (
                s(&sl, "/metadata/namespace"),
                s(&sl, "/metadata/labels/kubernetes.io~1service-name"),
            );
            if s(
                &sl,
                "/metadata/labels/endpointslice.kubernetes.io~1managed-by",
            ) == "endpointslice-controller.k8s.io"
                && !keep.iter().any(|(n, s)| n == ns && s == svc)
            {
                self.store
                    .delete("endpointslices", ns, s(&sl, "/metadata/name"));
            }
        }
        self.runtime.forget_services_except(&keep);
    }

    fn endpoints(&self, svc: &Value, members: &[&Value]) {
        let (ns, name) = (s(svc, "/metadata/namespace"), s(svc, "/metadata/name"));
        // Pods are grouped by their resolved ports, as upstream's subsets are.
        let mut subsets: BTreeMap<String, (Value, Vec<Value>, Vec<Value>)> = BTreeMap::new();
        for p in members {
            let ports = resolved_ports(svc, p);
            let key = ports.to_string();
            let addr = json!({"ip": s(p, "/status/podIP"), "nodeName": NODE, "targetRef": {"kind": "Pod", "namespace": ns, "name": s(p, "/metadata/name"), "uid": s(p, "/metadata/uid")}});
            let e = subsets
                .entry(key)
                .or_insert((ports, Vec::new(), Vec::new()));
            if pod_ready(p) && !terminating(p) {
                e.1.push(addr);
            } else {
                e.2.push(addr);
            }
        }
        let subsets: Vec<Value> = subsets
            .into_values()
            .map(|(ports, ready, not_ready)| {
                let mut ss = json!({"ports": ports});
                if !ready.is_empty() {
                    ss["addresses"] = json!(ready);
                }
                if !not_ready.is_empty() {
                    ss["notReadyAddresses"] = json!(not_ready);
                }
                ss
            })
            .collect();
        let labels = svc
            .pointer("/metadata/labels")
            .cloned()
            .unwrap_or(json!({}));
        if self.store.get("endpoints", ns, name).is_none() {
            let mut l = labels.clone();
            l["kubesim.io/managed"] = json!("true");
            self.create(
                "endpoints",
                ns,
                json!({"metadata": {"name": name, "labels": l}, "subsets": subsets}),
            );
        } else {
            self.store.update("endpoints", ns, name, |o| {
                if subsets.is_empty() {
                    o.as_object_mut().map(|m| m.remove("subsets"));
                } else {
                    o["subsets"] = json!(subsets);
                }
            });
        }
    }

    fn endpoint_slice(&self, svc: &Value, members: &[&Value]) {
        let (ns, name) = (s(svc, "/metadata/namespace"), s(svc, "/metadata/name"));
        let endpoints: Vec<Value> = members
            .iter()
            .map(|p| {
                let ready = pod_ready(p) && !terminating(p);
                json!({"addresses": [s(p, "/status/podIP")], "conditions": {"ready": ready, "serving": pod_ready(p), "terminating": terminating(p)},
                    "nodeName": NODE, "targetRef": {"kind": "Pod", "namespace": ns, "name": s(p, "/metadata/name"), "uid": s(p, "/metadata/uid")}})
            })
            .collect();
        let ports = members
            .first()
            .map(|p| resolved_ports(svc, p))
            .unwrap_or(json!([]));
        let existing = self
            .store
            .list("endpointslices", Some(ns))
            .0
            .into_iter()
            .find(|o| s(o, "/metadata/labels/kubernetes.io~1service-name") == name);
        match existing {
            Some(sl) => {
                self.store
                    .update("endpointslices", ns, s(&sl, "/metadata/name"), |o| {
                        o["endpoints"] = json!(endpoints);
                        o["ports"] = ports.clone();
                    });
            }
            None => {
                let slice = json!({
                    "metadata": {"name": format!("{name}-{}", suffix()), "labels": {"kubernetes.io/service-name": name,
                        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                        "ownerReferences": [owner_ref(svc)]},
                    "addressType": "IPv4", "endpoints": endpoints, "ports": ports,
                });
                self.create("endpointslices", ns, slice);
            }
        }
    }
}

/// The service's ports with targetPort resolved against this pod's container ports.
fn resolved_ports(svc: &Value, pod: &Value) -> Value {
    let ports: Vec<Value> = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|sp| {
            let port = match &sp["targetPort"] {
                Value::Number(n) => n.as_u64(),
                Value::String(named) => named
                    .parse()
                    .ok()
                    .or_else(|| container_port_named(pod, named)),
                _ => sp["port"].as_u64(),
            }?;
            let mut p = json!({"port": port, "protocol": sp["protocol"].as_str().unwrap_or("TCP")});
            if let Some(n) = sp["name"].as_str() {
                p["name"] = json!(n);
            }
            Some(p)
        })
        .collect();
    json!(ports)
}

pub fn container_port_named(pod: &Value, name: &str) -> Option<u64> {
    pod.pointer("/spec/containers")?
        .as_array()?
        .iter()
        .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
        .find(|p| p["name"].as_str() == Some(name))
        .and_then(|p| p["containerPort"].as_u64())
}

pub(crate) fn set_pod_conditions(
    o: &mut Value,
    running: bool,
    ready: bool,
    restarts: u32,
    exited: Option<i32>,
) {
    set_conditions(
        o,
        &[
            ("Initialized", true),
            ("ContainersReady", ready),
            ("Ready", ready),
        ],
    );
    let now = crate::time::now();
    let containers = o
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let started = o
        .pointer("/status/startTime")
        .cloned()
        .unwrap_or(json!(now));
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            let state = match exited {
                Some(code) => json!({"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" }, "startedAt": started}}),
                None if running => json!({"running": {"startedAt": started}}),
                None => json!({"waiting": {"reason": "ContainerCreating"}}),
            };
            json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": ready, "started": running, "restartCount": restarts, "state": state})
        })
        .collect();
    o["status"]["containerStatuses"] = json!(statuses);
}

/// Sets pod conditions by type, keeping the transition time of those that did not change.
pub(crate) fn set_conditions(o: &mut Value, conditions: &[(&str, bool)]) {
    let t = |b: bool| if b { "True" } else { "False" };
    let mut conds: Vec<Value> = o
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let now = crate::time::now();
    for &(ty, val) in conditions {
        match conds.iter_mut().find(|c| c["type"] == ty) {
            Some(c) if c["status"] == t(val) => {}
            Some(c) => {
                c["status"] = json!(t(val));
                c["lastTransitionTime"] = json!(now);
            }
            None => conds.push(json!({"type": ty, "status": t(val), "lastTransitionTime": now})),
        }
    }
    o["status"]["conditions"] = json!(conds);
}

pub fn pod_ready(p: &Value) -> bool {
    p.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

pub fn terminating(p: &Value) -> bool {
    p.pointer("/metadata/deletionTimestamp").is_some()
}

fn owner_ref(owner: &Value) -> Value {
    json!({"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true})
}

fn pod_from_template(owner: &Value, name: &str, extra_labels: BTreeMap<String, String>) -> Value {
    let t = owner
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(json!({}));
    let mut meta = t.get("metadata").cloned().unwrap_or(json!({}));
    meta["name"] = json!(name);
    for (k, v) in extra_labels {
        meta["labels"][k] = json!(v);
    }
    meta["ownerReferences"] = json!([owner_ref(owner)]);
    json!({"metadata": meta, "spec": t.get("spec").cloned().unwrap_or(json!({}))})
}

/// A stable hash of a pod template in the alphabet upstream uses for names.
pub fn template_hash(t: &Value) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in t.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (0..10)
        .map(|i| ALPHABET[((h >> (i * 6)) % ALPHABET.len() as u64) as usize] as char)
        .collect()
}

pub fn suffix() -> String {
    (0..5)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_target_port_resolves_against_the_pod() {
        let svc = json!({"spec": {"ports": [{"name": "web", "port": 80, "targetPort": "http", "protocol": "TCP"}]}});
        let pod =
            json!({"spec": {"containers": [{"ports": [{"name": "http", "containerPort": 8080}]}]}});
        assert_eq!(
            resolved_ports(&svc, &pod),
            json!([{"name": "web", "port": 8080, "protocol": "TCP"}])
        );
    }

    #[test]
    fn hashes_are_stable_and_names_use_the_alphabet() {
        let t = json!({"spec": {"containers": [{"image": "kubesim/http"}]}});
        assert_eq!(template_hash(&t), template_hash(&t.clone()));
        assert_ne!(template_hash(&t), template_hash(&json!({})));
        assert!(suffix().bytes().all(|b| ALPHABET.contains(&b)));
    }
}
