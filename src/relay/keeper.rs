//! One relay's keeper: its pod created, watched, heart-beaten and replaced when it dies, and
//! deleted when the relay stops.

use super::health::{Health, health};
use super::owner::{HEARTBEAT, HEARTBEAT_EVERY, Owner, SELECTOR, STALE_AFTER, leftover};
use super::session::{RelayState, sessions};
use super::template::{DEFAULT_IMAGE, Template};
use super::{forbidden, refused};
use crate::backoff::Backoff;
use crate::config::Relay as RelaySettings;
use crate::error_chain::error_chain;
use crate::resolve::Endpoint;
use crate::state::ProcessId;
use crate::transport::PodConnector;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

/// API calls that must not hold the keeper forever.
const CALL_DEADLINE: Duration = Duration::from_secs(15);
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

pub(super) struct Keeper {
    pub client: kube::Client,
    pub namespace: String,
    pub settings: RelaySettings,
    pub owner: Owner,
    pub connector: Arc<PodConnector>,
    pub state: watch::Sender<RelayState>,
}

/// Runs the relay until it stops: when `retire` agrees, a moment after its last user let go,
/// or when stopped from outside. Its pod is deleted on the way out.
pub(super) async fn keep(
    keeper: Keeper,
    unused: &Notify,
    stop: &CancellationToken,
    retire: impl Fn() -> bool,
    linger: Duration,
) {
    let retiring = async {
        loop {
            unused.notified().await;
            tokio::time::sleep(linger).await;
            if retire() {
                return;
            }
        }
    };
    tokio::join!(keeper.run(stop), async {
        tokio::select! {
            () = retiring => stop.cancel(),
            () = stop.cancelled() => {}
        }
    });
}

/// How a pod's run ended.
enum Ended {
    Stopped,
    /// It went away or ended; `ready` says whether it had served.
    Gone {
        why: String,
        ready: bool,
    },
    /// It speaks this other version of the relay protocol.
    OtherVersion(u8),
}

impl Keeper {
    async fn run(&self, stop: &CancellationToken) {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let template = match Template::load(self.settings.manifest.as_deref()) {
            Ok(template) => template,
            Err(why) => {
                self.state.send_replace(RelayState::Failed(why.to_string()));
                stop.cancelled().await;
                return;
            }
        };
        self.clean_leftovers(&api).await;
        let mut backoff = Backoff::new(RETRY_FIRST, RETRY_MAX);
        // Set once a relay spoke another protocol version: its image is pulled again.
        let mut pull_again = false;
        while !stop.is_cancelled() {
            let name = format!("kftray-relay-{}", suffix());
            let mut pod = template.render(
                &name,
                &self.namespace,
                self.settings.image.as_deref(),
                &self.owner,
            );
            if pull_again {
                template.pull_again(&mut pod);
            }
            let params = PostParams::default();
            let created = tokio::select! {
                created = api.create(&params, &pod) => created,
                () = stop.cancelled() => return,
            };
            let uid = match created {
                Ok(pod) => pod.metadata.uid.unwrap_or_default(),
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(e) => {
                    let state = match refused(&e) {
                        Some(status) => RelayState::Failed(forbidden(
                            "create",
                            "pods",
                            &self.namespace,
                            &status.message,
                        )),
                        None => RelayState::Starting(format!(
                            "creating the relay pod in {}: {}",
                            self.namespace,
                            error_chain(&e)
                        )),
                    };
                    tracing::warn!(namespace = self.namespace, "relay: {state:?}");
                    self.state.send_replace(state);
                    if sleep_or_stop(backoff.next_delay(), stop).await {
                        return;
                    }
                    continue;
                }
            };
            tracing::info!(pod = name, namespace = self.namespace, "relay pod created");
            self.state.send_replace(RelayState::Starting(format!(
                "waiting for relay pod {name} in {}",
                self.namespace
            )));
            let ended = self.serve(&api, &name, &uid, template.port(), stop).await;
            self.delete(&api, &name).await;
            match ended {
                Ended::Stopped => return,
                Ended::OtherVersion(version) => {
                    let why = format!(
                        "relay pod {name} speaks relay protocol version {version}, and this \
                         kftray ({}) speaks version {}",
                        env!("CARGO_PKG_VERSION"),
                        kftray_relay::protocol::VERSION
                    );
                    tracing::warn!(pod = name, "{why}: replacing it");
                    // kftray's own image under a tag the node had cached: pulled again once,
                    // at once. An image the configuration names is the person's to change.
                    let own_image =
                        self.settings.image.is_none() && self.settings.manifest.is_none();
                    let (state, delay) = if own_image && !pull_again {
                        let state = RelayState::Starting(format!("{why}; pulling its image again"));
                        (state, Duration::ZERO)
                    } else {
                        let state = RelayState::Failed(format!(
                            "{why}; set `[relay] image` to kftray's relay of the same release \
                             ({DEFAULT_IMAGE})"
                        ));
                        (state, backoff.next_delay())
                    };
                    pull_again = true;
                    self.state.send_replace(state);
                    if sleep_or_stop(delay, stop).await {
                        return;
                    }
                }
                Ended::Gone { why, ready } => {
                    tracing::info!(pod = name, "{why}: starting another relay");
                    self.state
                        .send_replace(RelayState::Starting(format!("{why}; starting another")));
                    // A pod that dies before it ever serves is not retried in a tight loop.
                    let delay = if ready {
                        backoff.reset();
                        Duration::ZERO
                    } else {
                        backoff.next_delay()
                    };
                    if sleep_or_stop(delay, stop).await {
                        return;
                    }
                }
            }
        }
    }

    /// Watches the pod: a session while it is Ready, its heartbeat annotation kept fresh,
    /// until it goes away or the relay stops.
    async fn serve(
        &self,
        api: &Api<Pod>,
        name: &str,
        uid: &str,
        port: u16,
        stop: &CancellationToken,
    ) -> Ended {
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut events = watcher::watcher(api.clone(), config)
            .default_backoff()
            .boxed();
        let mut session: Option<AbortOnDropHandle<u8>> = None;
        let mut ready = false;
        // Its first tick is at once: a refused `patch` is said now, not in 30 s.
        let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
        let mut warned = false;
        // During a relist, whether the pod is still among those listed.
        let mut relisting: Option<bool> = None;
        loop {
            tokio::select! {
                () = stop.cancelled() => return Ended::Stopped,
                _ = heartbeat.tick() => self.annotate(api, name, &mut warned).await,
                // The sessions end only for a relay of another protocol version.
                done = async { session.as_mut()?.await.ok() }, if session.is_some() => {
                    match done {
                        Some(version) => return Ended::OtherVersion(version),
                        None => session = None,
                    }
                }
                event = events.next() => {
                    let pod = match event {
                        None => return Ended::Gone { why: "the watch of the relay pod ended".into(), ready },
                        Some(Ok(Event::Init)) => {
                            relisting = Some(false);
                            continue;
                        }
                        Some(Ok(Event::InitApply(pod))) => {
                            relisting = Some(true);
                            pod
                        }
                        Some(Ok(Event::InitDone)) => {
                            if relisting.take() == Some(false) {
                                return Ended::Gone { why: format!("relay pod {name} was deleted"), ready };
                            }
                            continue;
                        }
                        Some(Ok(Event::Apply(pod))) => pod,
                        Some(Ok(Event::Delete(_))) => {
                            return Ended::Gone { why: format!("relay pod {name} was deleted"), ready };
                        }
                        Some(Err(e)) => {
                            let text = e.to_string();
                            if text.contains("403") || text.contains("forbidden") {
                                self.state.send_replace(RelayState::Failed(forbidden(
                                    "watch", "pods", &self.namespace, &text,
                                )));
                            }
                            continue;
                        }
                    };
                    match health(&pod, uid) {
                        Health::Gone(why) => return Ended::Gone { why, ready },
                        Health::Broken(why) => {
                            session = None;
                            self.state.send_replace(RelayState::Failed(why.to_string()));
                        }
                        Health::Starting(why) => {
                            session = None;
                            self.state.send_replace(RelayState::Starting(why));
                        }
                        Health::Ready if session.is_none() => {
                            ready = true;
                            let endpoint = Endpoint { pod: name.to_string(), uid: uid.to_string(), port };
                            session = Some(AbortOnDropHandle::new(tokio::spawn(sessions(
                                self.connector.clone(),
                                endpoint,
                                self.namespace.clone(),
                                self.state.clone(),
                            ))));
                        }
                        Health::Ready => {}
                    }
                }
            }
        }
    }

    /// Refreshes the heartbeat annotation, which tells other machines this relay is in use.
    async fn annotate(&self, api: &Api<Pod>, name: &str, warned: &mut bool) {
        let patch = serde_json::json!({
            "metadata": {"annotations": {HEARTBEAT: Timestamp::now().to_string()}}
        });
        let (params, patch) = (PatchParams::default(), Patch::Merge(&patch));
        let call = api.patch(name, &params, &patch);
        match tokio::time::timeout(CALL_DEADLINE, call).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if !*warned => {
                *warned = true;
                let why = match refused(&e) {
                    Some(status) => forbidden("patch", "pods", &self.namespace, &status.message),
                    None => error_chain(&e),
                };
                tracing::warn!(
                    pod = name,
                    "cannot refresh the relay's heartbeat, so after {} s other kftray runs will \
                     take this relay for abandoned and delete it: {why}",
                    STALE_AFTER.as_secs()
                );
            }
            _ => {}
        }
    }

    async fn delete(&self, api: &Api<Pod>, name: &str) {
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        };
        match tokio::time::timeout(CALL_DEADLINE, api.delete(name, &params)).await {
            Ok(Ok(_)) => {
                tracing::info!(pod = name, namespace = self.namespace, "relay pod deleted")
            }
            Ok(Err(kube::Error::Api(status))) if status.code == 404 => {}
            Ok(Err(e)) => tracing::warn!(
                "cannot delete relay pod {name} in {}: {}; `kubectl delete pod -n {} {name}` removes it",
                self.namespace,
                error_chain(&e),
                self.namespace
            ),
            Err(_) => tracing::warn!("no answer deleting relay pod {name} in {}", self.namespace),
        }
    }

    /// Deletes relay pods in the namespace whose owner is gone (see `owner::leftover`).
    async fn clean_leftovers(&self, api: &Api<Pod>) {
        let listed = tokio::time::timeout(
            CALL_DEADLINE,
            api.list(&ListParams::default().labels(SELECTOR)),
        )
        .await;
        let pods = match listed {
            Ok(Ok(list)) => list.items,
            Ok(Err(e)) => {
                tracing::warn!(
                    namespace = self.namespace,
                    "cannot list relay pods: {}",
                    error_chain(&e)
                );
                return;
            }
            Err(_) => return,
        };
        let now = Timestamp::now();
        for pod in pods {
            let name = pod.metadata.name.clone().unwrap_or_default();
            if let Some(why) = leftover(&pod, &self.owner, now, ProcessId::is_alive) {
                tracing::info!(
                    pod = name,
                    namespace = self.namespace,
                    "deleting a leftover relay: {why}"
                );
                self.delete(api, &name).await;
            }
        }
    }
}

/// True if stopped before the delay passed.
async fn sleep_or_stop(delay: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(delay) => false,
        () = stop.cancelled() => true,
    }
}

fn suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..8)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}
