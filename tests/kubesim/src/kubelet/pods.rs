//! Pods bound to this machine's Nodes: bound (when no scheduler did it), started in the
//! runtime, their status reported, and stopped with their grace period when deleted.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};

use super::KubeletOptions;
use crate::runtime::Runtime;

/// How often exited processes are noticed when nothing else happens.
const TICK: Duration = Duration::from_millis(250);

struct Kubelet {
    client: kube::Client,
    opts: KubeletOptions,
    runtime: Arc<Runtime>,
    /// The status last written for each pod uid, so unchanged status is not sent again.
    written: Mutex<HashMap<String, Value>>,
    /// When a refused status write may be tried again, by uid.
    retry_at: Mutex<HashMap<String, tokio::time::Instant>>,
    /// uids being stopped after their deletion.
    terminating: Mutex<HashSet<String>>,
    /// uids whose image this kubelet cannot run, with the time that was first reported.
    unpullable: Mutex<HashMap<String, tokio::time::Instant>>,
    /// uids whose containers failed to start (not tried again).
    failed: Mutex<HashSet<String>>,
    /// Pods bound to a Node (uid → node, owner) whose binding the watch has not shown yet.
    bound: Mutex<HashMap<String, (String, String)>>,
}

pub(super) async fn run(client: kube::Client, opts: KubeletOptions, runtime: Arc<Runtime>) {
    let kubelet = Arc::new(Kubelet {
        client: client.clone(),
        opts,
        runtime,
        written: Mutex::default(),
        retry_at: Mutex::default(),
        terminating: Mutex::default(),
        unpullable: Mutex::default(),
        failed: Mutex::default(),
        bound: Mutex::default(),
    });
    let mut events = watcher::watcher(Api::<Pod>::all(client), watcher::Config::default()).boxed();
    let mut pods: HashMap<String, Value> = HashMap::new();
    let mut listing: HashMap<String, Value> = HashMap::new();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            event = events.next() => {
                match event {
                    None => return,
                    Some(Err(e)) => {
                        tracing::warn!("watching pods: {e}");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                    Some(Ok(Event::Init)) => listing.clear(),
                    Some(Ok(Event::InitApply(p))) => {
                        let (uid, v) = keyed(&p);
                        listing.insert(uid, v);
                    }
                    Some(Ok(Event::InitDone)) => pods = std::mem::take(&mut listing),
                    Some(Ok(Event::Apply(p))) => {
                        let (uid, v) = keyed(&p);
                        pods.insert(uid, v);
                    }
                    Some(Ok(Event::Delete(p))) => {
                        pods.remove(&keyed(&p).0);
                    }
                }
            }
            _ = tick.tick() => {}
        }
        kubelet.reconcile(&pods).await;
    }
}

fn keyed(p: &Pod) -> (String, Value) {
    (
        p.metadata.uid.clone().unwrap_or_default(),
        serde_json::to_value(p).unwrap_or(Value::Null),
    )
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Kubelet {
    fn node_ip(&self, node: &str) -> Option<Ipv4Addr> {
        self.opts
            .nodes
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, ip)| *ip)
    }

    async fn reconcile(self: &Arc<Self>, pods: &HashMap<String, Value>) {
        self.runtime.reap_exited();
        for (ns, name, uid) in self.runtime.pod_keys() {
            let alive = pods
                .get(&uid)
                .is_some_and(|p| s(p, "/metadata/name") == name);
            if !alive && !lock(&self.terminating).contains(&uid) {
                self.runtime.stop_pod(&ns, &name);
            }
        }
        lock(&self.written).retain(|uid, _| pods.contains_key(uid));
        lock(&self.unpullable).retain(|uid, _| pods.contains_key(uid));
        lock(&self.failed).retain(|uid| pods.contains_key(uid));
        lock(&self.retry_at).retain(|uid, _| pods.contains_key(uid));
        // Where pods are, counting bindings the watch has not shown yet (reconcile runs on
        // every event, sooner than a binding comes back).
        lock(&self.bound).retain(|uid, _| {
            pods.get(uid)
                .is_some_and(|p| s(p, "/spec/nodeName").is_empty())
        });
        let mut placed: Vec<(String, String)> = pods
            .values()
            .filter(|p| !s(p, "/spec/nodeName").is_empty())
            .map(|p| (s(p, "/spec/nodeName").to_string(), owner(p)))
            .chain(lock(&self.bound).values().cloned())
            .collect();
        for (uid, pod) in pods {
            let node = s(pod, "/spec/nodeName");
            if node.is_empty() {
                if !lock(&self.bound).contains_key(uid)
                    && let Some(node) = self.bind(&placed, pod).await
                {
                    let at = (node, owner(pod));
                    lock(&self.bound).insert(uid.clone(), at.clone());
                    placed.push(at);
                }
                continue;
            }
            let Some(host_ip) = self.node_ip(node) else {
                continue;
            };
            let (ns, name) = (s(pod, "/metadata/namespace"), s(pod, "/metadata/name"));
            if pod.pointer("/metadata/deletionTimestamp").is_some() {
                self.terminate(pod);
                continue;
            }
            if matches!(s(pod, "/status/phase"), "Succeeded" | "Failed")
                && !self.runtime.has_pod(ns, name, uid)
            {
                continue;
            }
            if lock(&self.failed).contains(uid) {
                continue;
            }
            if !self.runtime.has_pod(ns, name, uid) {
                if let Some(image) = self.unrunnable_image(pod) {
                    self.report_unpullable(pod, &image).await;
                } else if self.runtime.begin_start(uid) {
                    self.start(pod.clone(), host_ip);
                }
                continue;
            }
            self.report(pod, host_ip, None).await;
        }
    }

    /// As the scheduler's default spreading would: the pod goes to the Node with the fewest
    /// pods of the same owner, then the fewest pods. Returns the Node bound to.
    async fn bind(&self, placed: &[(String, String)], pod: &Value) -> Option<String> {
        if pod.pointer("/metadata/deletionTimestamp").is_some() {
            return None;
        }
        let owner = owner(pod);
        let (node, _) = self.opts.nodes.iter().min_by_key(|(n, _)| {
            let on = || placed.iter().filter(move |(node, _)| node == n);
            (on().filter(|(_, o)| *o == owner).count(), on().count())
        })?;
        let (ns, name) = (s(pod, "/metadata/namespace"), s(pod, "/metadata/name"));
        let binding = json!({
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": name, "namespace": ns, "uid": s(pod, "/metadata/uid")},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        });
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        match api
            .create_subresource::<Value, Value>("binding", name, &PostParams::default(), &binding)
            .await
        {
            Ok(_) => Some(node.clone()),
            Err(e) => {
                tracing::debug!("binding {ns}/{name}: {e}");
                None
            }
        }
    }

    /// The first image of the pod that is neither built in nor mapped to a program.
    fn unrunnable_image(&self, pod: &Value) -> Option<String> {
        pod.pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| s(c, "/image").to_string())
            .find(|image| {
                !image.starts_with("kubesim/")
                    && !self
                        .opts
                        .images
                        .iter()
                        .any(|(prefix, _)| image.starts_with(prefix.as_str()))
            })
    }

    fn start(self: &Arc<Self>, pod: Value, host_ip: Ipv4Addr) {
        let me = self.clone();
        tokio::spawn(async move {
            let (ip, ok, error) = me.runtime.start_pod(&pod, me.opts.dns).await;
            let uid = s(&pod, "/metadata/uid").to_string();
            me.runtime.end_start(&uid);
            let mut pod = pod;
            pod["status"]["startTime"] = json!(crate::time::now());
            if ok {
                me.report(&pod, host_ip, Some(ip)).await;
            } else {
                // As a container runtime that cannot start the container: the pod stays
                // Pending and says why.
                lock(&me.failed).insert(uid);
                me.runtime
                    .stop_pod(s(&pod, "/metadata/namespace"), s(&pod, "/metadata/name"));
                let why = error.unwrap_or_default();
                me.report_waiting(&pod, "RunContainerError", &why).await;
            }
        });
    }

    /// Writes the pod's status as the runtime sees it, if it changed.
    async fn report(&self, pod: &Value, host_ip: Ipv4Addr, ip: Option<Ipv4Addr>) {
        let (ns, name, uid) = (
            s(pod, "/metadata/namespace"),
            s(pod, "/metadata/name"),
            s(pod, "/metadata/uid"),
        );
        let Some(ip) = ip.or_else(|| self.runtime.pod_ip_of(ns, name)) else {
            return;
        };
        let exited = self.runtime.exited(ns, name);
        let running = exited.is_none();
        let ready = running && self.runtime.is_ready(ns, name).unwrap_or(false);
        let restarts = self.runtime.restarts(ns, name);
        let mut o = pod.clone();
        let status = &mut o["status"];
        status["phase"] = json!(match exited {
            Some(0) => "Succeeded",
            Some(_) => "Failed",
            None => "Running",
        });
        status["podIP"] = json!(ip.to_string());
        status["podIPs"] = json!([{"ip": ip.to_string()}]);
        status["hostIP"] = json!(host_ip.to_string());
        status["hostIPs"] = json!([{"ip": host_ip.to_string()}]);
        if status.get("startTime").is_none_or(Value::is_null) {
            status["startTime"] = json!(crate::time::now());
        }
        crate::controller::set_pod_conditions(&mut o, running, ready, restarts, exited);
        crate::controller::set_conditions(
            &mut o,
            &[
                ("PodScheduled", true),
                ("PodReadyToStartContainers", running),
            ],
        );
        self.write_status(ns, name, uid, o["status"].take()).await;
    }

    /// An image this kubelet cannot run: ErrImagePull, then ImagePullBackOff, as a kubelet
    /// reports a pull that fails.
    async fn report_unpullable(&self, pod: &Value, image: &str) {
        let uid = s(pod, "/metadata/uid").to_string();
        let since = *lock(&self.unpullable)
            .entry(uid)
            .or_insert_with(tokio::time::Instant::now);
        let reason = if since.elapsed() < Duration::from_secs(2) {
            "ErrImagePull"
        } else {
            "ImagePullBackOff"
        };
        let message = format!(
            "Back-off pulling image \"{image}\": this test kubelet runs kubesim/<kind> images and those mapped to a program with --image PREFIX=PROGRAM"
        );
        self.report_waiting(pod, reason, &message).await;
    }

    /// A pod whose containers cannot run: Pending, each container waiting for `reason`.
    async fn report_waiting(&self, pod: &Value, reason: &str, message: &str) {
        let uid = s(pod, "/metadata/uid");
        let statuses: Vec<Value> = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| {
                json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": false,
                    "started": false, "restartCount": 0,
                    "state": {"waiting": {"reason": reason, "message": message}}})
            })
            .collect();
        let mut o = pod.clone();
        o["status"]["phase"] = json!("Pending");
        crate::controller::set_pod_conditions(&mut o, false, false, 0, None);
        crate::controller::set_conditions(&mut o, &[("PodScheduled", true)]);
        // After the conditions, which write every container as merely ContainerCreating.
        o["status"]["containerStatuses"] = json!(statuses);
        let (ns, name) = (s(pod, "/metadata/namespace"), s(pod, "/metadata/name"));
        self.write_status(ns, name, uid, o["status"].take()).await;
    }

    async fn write_status(&self, ns: &str, name: &str, uid: &str, status: Value) {
        if lock(&self.written).get(uid) == Some(&status)
            || lock(&self.retry_at)
                .get(uid)
                .is_some_and(|t| tokio::time::Instant::now() < *t)
        {
            return;
        }
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let patch = json!({"metadata": {"uid": uid}, "status": status});
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                lock(&self.written).insert(uid.to_string(), status);
            }
            Err(e) => {
                tracing::warn!("status of {ns}/{name}: {e}");
                lock(&self.retry_at).insert(
                    uid.to_string(),
                    tokio::time::Instant::now() + Duration::from_secs(1),
                );
            }
        }
    }

    /// A deleted pod: its processes get the grace period, then the pod object goes.
    fn terminate(self: &Arc<Self>, pod: &Value) {
        let uid = s(pod, "/metadata/uid").to_string();
        if !lock(&self.terminating).insert(uid.clone()) {
            return;
        }
        let grace = pod
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_u64)
            .unwrap_or(30);
        let (ns, name) = (
            s(pod, "/metadata/namespace").to_string(),
            s(pod, "/metadata/name").to_string(),
        );
        let me = self.clone();
        tokio::spawn(async move {
            me.runtime
                .terminate_pod(&ns, &name, Duration::from_secs(grace))
                .await;
            let api: Api<Pod> = Api::namespaced(me.client.clone(), &ns);
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(uid.clone()),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            if let Err(e) = api.delete(&name, &params).await {
                tracing::debug!("deleting {ns}/{name}: {e}");
            }
            lock(&me.terminating).remove(&uid);
        });
    }
}

/// The pod's controller (kind/name), or its own name for a bare pod.
fn owner(pod: &Value) -> String {
    pod.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .and_then(|refs| refs.first())
        .map(|r| format!("{}/{}", s(r, "/kind"), s(r, "/name")))
        .unwrap_or_else(|| s(pod, "/metadata/name").to_string())
}
