//! Following a target as the cluster changes: which pod, which container port, right now.
//!
//! A task per target watches the pods behind it (and the service or workload that names
//! them) and publishes the pod to use on a `tokio::sync::watch` channel, so forwards read the
//! latest answer without a request of their own. The pod in use is kept while it stays
//! usable, so a rollout that adds pods does not move connections needlessly; when it goes,
//! the best remaining pod is chosen, as kubectl would choose it.

use super::selector::{selector_string, workload_selector};
use super::{container_port, is_usable, rank_pods, service_target};
use crate::api_error::describe_watch;
use crate::publish::publish;
use crate::target::{Endpoint, PortRef, Target};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::task::AbortOnDropHandle;

/// The latest answer for a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Nothing usable yet; the text says what we wait for ("no Ready pod matches app=web").
    Waiting(String),
    Ready(Endpoint),
    /// The target itself is wrong (no such port name, say); it may be fixed in the cluster.
    Failed(String),
}

/// Starts following `target` in `namespace`; the task ends when every receiver is dropped.
pub fn follow(
    client: kube::Client,
    namespace: &str,
    target: Target,
    port: PortRef,
) -> watch::Receiver<Resolution> {
    let (tx, rx) = watch::channel(Resolution::Waiting(format!("looking up {target}")));
    let namespace = namespace.to_string();
    tokio::spawn(async move {
        tokio::select! {
            () = run(client, namespace, target, port, &tx) => {}
            () = tx.closed() => {}
        }
    });
    rx
}

async fn run(
    client: kube::Client,
    namespace: String,
    target: Target,
    port: PortRef,
    tx: &watch::Sender<Resolution>,
) {
    match &target {
        Target::Service { name } => follow_service(client, &namespace, name, port, tx).await,
        Target::Pod { name } => {
            let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
            let what = format!("pod {name} to be Running and Ready");
            follow_pods(client, &namespace, config, &port, &what, tx).await;
        }
        Target::Selector { selector } => {
            let config = watcher::Config::default().labels(selector);
            let what = format!("a Ready pod matching {selector}");
            follow_pods(client, &namespace, config, &port, &what, tx).await;
        }
        Target::Workload {
            workload: kind,
            name,
        } => {
            // A workload's selector is fixed once created (apps/v1 makes it immutable), so one
            // read is enough; a missing workload is retried until it appears.
            let selector = loop {
                match workload_selector(&client, &namespace, *kind, name).await {
                    Ok(selector) => break selector,
                    Err(why) => {
                        tx.send_replace(Resolution::Waiting(why.to_string()));
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                }
            };
            let config = watcher::Config::default().labels(&selector);
            let what = format!("a Ready pod of {target} ({selector})");
            follow_pods(client, &namespace, config, &port, &what, tx).await;
        }
        Target::Proxy { host } => {
            tx.send_replace(Resolution::Failed(format!(
                "{host} is reached through kftray's relay, not by port-forward"
            )));
        }
    }
}

/// A service: its selector and port mapping can change, so the service is watched too and
/// the pod watch restarts when its selector does.
async fn follow_service(
    client: kube::Client,
    namespace: &str,
    name: &str,
    port: PortRef,
    tx: &watch::Sender<Resolution>,
) {
    let on_error = |tx: &watch::Sender<Resolution>, why: String| {
        // The watcher retries with backoff and, when the API server comes back with its data,
        // resumes where it was without relisting: nothing tells the pods' follower to publish
        // its answer again, so the last answer must stay.
        if !matches!(*tx.borrow(), Resolution::Ready(_)) {
            tx.send_replace(Resolution::Waiting(why));
        }
    };
    let step = |service: Option<&Service>| {
        let Some(service) = service else {
            return ServiceStep::Publish(Resolution::Waiting(format!(
                "service {name} does not exist"
            )));
        };
        let selector = service
            .spec
            .as_ref()
            .and_then(|spec| spec.selector.as_ref())
            .map(selector_string)
            .unwrap_or_default();
        if selector.is_empty() {
            return ServiceStep::Publish(Resolution::Failed(format!(
                "service {name} has no selector; forward to its pods by selector or name instead"
            )));
        }
        let target_port = match service_target(service, &port) {
            Ok(target_port) => target_port,
            Err(e) => return ServiceStep::Publish(Resolution::Failed(e.to_string())),
        };
        let config = watcher::Config::default().labels(&selector);
        let what = format!("a Ready pod of service {name} ({selector})");
        let (client, namespace, tx) = (client.clone(), namespace.to_string(), tx.clone());
        let port = target_port.clone();
        ServiceStep::Run(
            (selector, target_port),
            Box::pin(async move {
                follow_pods(client, &namespace, config, &port, &what, &tx).await;
            }),
        )
    };
    each_service_state(client.clone(), namespace, name, tx, on_error, step).await;
}

/// What to do with a service's latest state.
pub enum ServiceStep<S, K> {
    /// Publish this; the inner task, if any, stops.
    Publish(S),
    /// Keep a task running for `K`: started when `K` is new, left alone while it is the same.
    Run(K, futures::future::BoxFuture<'static, ()>),
}

/// Follows a service and turns each of its states (or its absence) into a [`ServiceStep`]:
/// the one loop behind a forward to a service and a relay's destination that is one. Errors
/// of the watch (which retries) go to `on_error`, already in words.
pub async fn each_service_state<S, K: PartialEq>(
    client: kube::Client,
    namespace: &str,
    name: &str,
    tx: &watch::Sender<S>,
    on_error: impl Fn(&watch::Sender<S>, String),
    mut step: impl FnMut(Option<&Service>) -> ServiceStep<S, K>,
) {
    let mut events = watch_service(client, namespace, name);
    // Aborted with this future, not only at its end: a caller that drops it (the last
    // receiver went away) must not leave the inner task, and its pod watch, running.
    let mut running: Option<(K, AbortOnDropHandle<()>)> = None;
    while let Some(event) = events.next().await {
        let service = match event {
            Ok(service) => service,
            Err(e) => {
                on_error(tx, format!("service {name}: {}", describe_watch(&e)));
                continue;
            }
        };
        match step(service.as_ref()) {
            ServiceStep::Run(key, _) if running.as_ref().is_some_and(|(k, _)| *k == key) => {}
            next => {
                running = None;
                match next {
                    ServiceStep::Publish(state) => {
                        tx.send_replace(state);
                    }
                    ServiceStep::Run(key, task) => {
                        running = Some((key, AbortOnDropHandle::new(tokio::spawn(task))));
                    }
                }
            }
        }
    }
}

/// A named service as it changes: `Some` when it is created or changed, `None` when it is
/// deleted or absent (also when a relist no longer finds it); errors are the watch's, which
/// retries with backoff.
fn watch_service(
    client: kube::Client,
    namespace: &str,
    name: &str,
) -> futures::stream::BoxStream<'static, Result<Option<Service>, watcher::Error>> {
    let services: Api<Service> = Api::namespaced(client, namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    // During a relist: whether the service was among those listed.
    let mut listed: Option<bool> = None;
    watcher::watcher(services, config)
        .default_backoff()
        .filter_map(move |event| {
            let change = match event {
                Ok(Event::Apply(s)) => Some(Ok(Some(s))),
                Ok(Event::InitApply(s)) => {
                    listed = Some(true);
                    Some(Ok(Some(s)))
                }
                Ok(Event::Init) => {
                    listed = Some(false);
                    None
                }
                Ok(Event::InitDone) => (listed.take() == Some(false)).then_some(Ok(None)),
                Ok(Event::Delete(_)) => Some(Ok(None)),
                Err(e) => Some(Err(e)),
            };
            futures::future::ready(change)
        })
        .boxed()
}

/// Keeps the set of pods a watch returns and publishes the pod to use after every change.
async fn follow_pods(
    client: kube::Client,
    namespace: &str,
    config: watcher::Config,
    port: &PortRef,
    waiting_for: &str,
    tx: &watch::Sender<Resolution>,
) {
    let pods_api: Api<Pod> = Api::namespaced(client, namespace);
    let mut events = watcher::watcher(pods_api, config).default_backoff().boxed();
    let mut pods: BTreeMap<String, Pod> = BTreeMap::new();
    let mut relisting: Option<BTreeMap<String, Pod>> = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => {
                relisting = Some(BTreeMap::new());
                continue;
            }
            Ok(Event::InitApply(pod)) => {
                if let Some(buffer) = relisting.as_mut() {
                    buffer.insert(pod.metadata.name.clone().unwrap_or_default(), pod);
                }
                continue;
            }
            Ok(Event::InitDone) => pods = relisting.take().unwrap_or_default(),
            Ok(Event::Apply(pod)) => {
                pods.insert(pod.metadata.name.clone().unwrap_or_default(), pod);
            }
            Ok(Event::Delete(pod)) => {
                pods.remove(pod.metadata.name.as_deref().unwrap_or_default());
            }
            Err(e) => {
                // The watcher retries with backoff; meanwhile the last answer stays, unless there
                // was none.
                if !matches!(*tx.borrow(), Resolution::Ready(_)) {
                    tx.send_replace(Resolution::Waiting(format!("pods: {}", describe_watch(&e))));
                }
                continue;
            }
        }
        let current = match &*tx.borrow() {
            Resolution::Ready(endpoint) => Some(endpoint.pod.clone()),
            _ => None,
        };
        let next = choose(&pods, current.as_deref(), port, waiting_for);
        publish(tx, next);
    }
}

/// The pure part of following: from the pods seen and the pod in use, the answer.
pub(super) fn choose(
    pods: &BTreeMap<String, Pod>,
    current: Option<&str>,
    port: &PortRef,
    waiting_for: &str,
) -> Resolution {
    let keep = current
        .and_then(|name| pods.get(name))
        .filter(|pod| is_usable(pod));
    let pod = match keep {
        Some(pod) => pod.clone(),
        None => {
            let mut usable: Vec<Pod> = pods.values().filter(|p| is_usable(p)).cloned().collect();
            rank_pods(&mut usable);
            match usable.into_iter().next() {
                Some(pod) => pod,
                None => {
                    return Resolution::Waiting(format!(
                        "waiting for {waiting_for} ({} seen, none Ready)",
                        pods.len()
                    ));
                }
            }
        }
    };
    match container_port(&pod, port) {
        Ok(port) => Resolution::Ready(Endpoint {
            pod: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            port,
        }),
        Err(e) => Resolution::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, ready: bool, deleting: bool) -> (String, Pod) {
        let mut value = json!({
            "metadata": {"name": name, "uid": format!("uid-{name}"), "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"nodeName": "n", "containers": [{"name": "app", "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": if ready { "True" } else { "False" }, "lastTransitionTime": "2026-01-01T00:00:00Z"}
            ]}
        });
        if deleting {
            value["metadata"]["deletionTimestamp"] = json!("2026-01-02T00:00:00Z");
        }
        (name.to_string(), serde_json::from_value(value).unwrap())
    }

    fn ready(pod: &str) -> Resolution {
        Resolution::Ready(Endpoint {
            pod: pod.into(),
            uid: format!("uid-{pod}"),
            port: 8080,
        })
    }

    #[test]
    fn keeps_the_pod_in_use_while_it_stays_usable() {
        let pods = BTreeMap::from([pod("a", true, false), pod("b", true, false)]);
        let http = PortRef::Name("http".into());
        assert_eq!(choose(&pods, None, &http, "x"), ready("a"));
        assert_eq!(choose(&pods, Some("b"), &http, "x"), ready("b"));
    }

    #[test]
    fn moves_off_a_terminating_or_unready_pod() {
        let http = PortRef::Name("http".into());
        let pods = BTreeMap::from([pod("a", true, true), pod("b", true, false)]);
        assert_eq!(choose(&pods, Some("a"), &http, "x"), ready("b"));
        let pods = BTreeMap::from([pod("a", false, false), pod("b", true, false)]);
        assert_eq!(choose(&pods, Some("a"), &http, "x"), ready("b"));
    }

    #[test]
    fn waits_when_nothing_is_ready_and_fails_on_a_bad_port_name() {
        let pods = BTreeMap::from([pod("a", false, false)]);
        assert_eq!(
            choose(&pods, None, &PortRef::Number(1), "pods matching app=web"),
            Resolution::Waiting("waiting for pods matching app=web (1 seen, none Ready)".into())
        );
        let pods = BTreeMap::from([pod("a", true, false)]);
        assert!(matches!(
            choose(&pods, None, &PortRef::Name("grpc".into()), "x"),
            Resolution::Failed(_)
        ));
    }
}
