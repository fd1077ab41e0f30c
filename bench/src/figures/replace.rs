//! Figure 12: a forward to a Deployment's Service while its pods are replaced: the pod in use
//! deleted (how long until a new connection reaches a live pod), and a `rollout restart`
//! under steady load (how many requests fail).

use super::{Figure, num};
use crate::backend::{ECHO, WHOAMI};
use crate::figures::tcp::echo_once;
use crate::peers::{self, INSTALLED, Peer, Target};
use crate::sim::{Binaries, Sim};
use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

const PORTS: [u16; 2] = [ECHO, WHOAMI];
const SERVICE: &str = "roll";
/// How long a forward may take to reach a live pod again before it counts as not recovering.
const PATIENCE: Duration = Duration::from_secs(30);
/// Clients sending requests through the rollout, each one new connection after another.
const LOAD: usize = 4;
const CLUSTER_IP: &str = "the Service's ClusterIP, no forwarder (kube-proxy)";

pub async fn replace(bins: &Binaries, sim: &Sim, work: &Path, only: &[String]) -> Figure {
    let mut figure = Figure::new(
        12,
        "Pods replaced under a forward to a 2-replica Deployment's Service",
        &[
            "pod in use deleted: s until a new connection reaches a live pod",
            "rollout restart: requests failed",
            "requests made",
            "longest without an answer, s",
            "rollout s",
        ],
    );
    let client = match sim.client().await {
        Ok(client) => client,
        Err(e) => {
            figure.notes.push(format!("no client: {e:#}"));
            return figure;
        }
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), "bench");
    let mut names: Vec<&'static str> = vec![
        CLUSTER_IP,
        "kftray",
        peers::kubectl_name(true),
        peers::kubectl_name(false),
    ];
    names.extend(
        INSTALLED
            .iter()
            .filter(|(_, program)| bins.peer(program).is_some())
            .map(|(name, _)| *name),
    );
    names.retain(|name| peers::wanted(only, name));
    for name in names {
        let mut values = Vec::new();
        // Each part gets a fresh forward: a peer that gave up in the first must not spoil the
        // second.
        values.push(match settled(&pods).await {
            Ok(_) => match start(name, bins, sim, work).await {
                Ok(peer) => match deleted(&peer, &pods).await {
                    Ok(Some(took)) => num(took.as_secs_f64()),
                    Ok(None) => Value::String(format!("not within {PATIENCE:?}")),
                    Err(e) => Value::String(format!("failed: {e:#}")),
                },
                Err(e) => Value::String(format!("did not start: {e:#}")),
            },
            Err(e) => Value::String(format!("failed: {e:#}")),
        });
        let rollout = match settled(&pods).await {
            Ok(_) => match start(name, bins, sim, work).await {
                Ok(peer) => rollout(peer, &client, &pods).await,
                Err(e) => Err(e.context("did not start")),
            },
            Err(e) => Err(e),
        };
        match rollout {
            Ok(r) => values.extend([
                Value::from(r.failed),
                Value::from(r.made),
                num(r.outage.as_secs_f64()),
                num(r.took.as_secs_f64()),
            ]),
            Err(e) => values.extend([
                Value::String(format!("failed: {e:#}")),
                Value::Null,
                Value::Null,
                Value::Null,
            ]),
        }
        eprintln!("  {name:<28} {values:?}");
        figure.row(name, values);
    }
    figure.notes.push(format!(
        "Each peer forwards the Service `{SERVICE}` (kubectl: `port-forward svc/{SERVICE}`, \
         which picks one pod; kubefwd with `-a`, its auto-reconnect, and reached by the address \
         its hosts file gives the Service's name at each connection, as a client resolving the \
         name would). Deleted: the pod the forward answers from (asked through it) is deleted, then a new connection is tried \
         every 10 ms until one reaches another pod; not within {PATIENCE:?} is a failure. \
         Rollout: {LOAD} clients each open one connection after another (64 B echoed, 2 s \
         timeout, 10 ms pause after a failure) from before `rollout restart` (maxSurge 1, \
         maxUnavailable 0) until a second after the last old pod is gone; the longest time \
         in which no client had an answer. Every part starts a fresh forward on a settled \
         Deployment."
    ));
    figure
}

/// The peer called `name`, forwarding the Service's echo and whoami ports.
async fn start(
    name: &'static str,
    bins: &Binaries,
    sim: &Sim,
    work: &Path,
) -> anyhow::Result<Peer> {
    let target = Target::service(SERVICE, &PORTS);
    let peer = match name {
        CLUSTER_IP => {
            let ip = sim.cluster_ip(SERVICE).await?;
            let addrs = PORTS.iter().map(|&p| (p, SocketAddr::new(ip, p))).collect();
            peers::at(CLUSTER_IP, addrs)
        }
        "kftray" => peers::kftray(bins, sim, work, &target, None).await?,
        _ if name == peers::kubectl_name(true) => peers::kubectl(sim, work, true, &target)?,
        _ if name == peers::kubectl_name(false) => peers::kubectl(sim, work, false, &target)?,
        _ => {
            let program = INSTALLED
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, program)| bins.peer(program))
                .context("not installed")?;
            peers::installed(name, &program, sim, work, &target).await?
        }
    };
    echo_once(peer.addr(ECHO)).await?;
    Ok(peer)
}

/// Which pod answers through `addr`: its IP.
async fn whoami(addr: SocketAddr) -> anyhow::Result<IpAddr> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await?;
    text.parse()
        .with_context(|| format!("whoami answered {text:?}"))
}

/// Deletes the pod the forward reaches and times until a new connection reaches another.
async fn deleted(peer: &Peer, pods: &Api<Pod>) -> anyhow::Result<Option<Duration>> {
    let before = whoami(peer.current_addr(WHOAMI)).await?;
    let list = pods.list(&ListParams::default().labels("app=roll")).await?;
    let pod = list
        .items
        .iter()
        .find(|p| p.status.as_ref().and_then(|s| s.pod_ip.as_deref()) == Some(&before.to_string()))
        .and_then(|p| p.metadata.name.clone())
        .with_context(|| format!("no pod has the IP {before}"))?;
    let started = Instant::now();
    pods.delete(&pod, &DeleteParams::default()).await?;
    while started.elapsed() < PATIENCE {
        let addr = peer.current_addr(WHOAMI);
        if let Ok(Ok(ip)) = tokio::time::timeout(Duration::from_secs(1), whoami(addr)).await
            && ip != before
        {
            return Ok(Some(started.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(None)
}

/// `rollout restart` under load.
async fn rollout(peer: Peer, client: &kube::Client, pods: &Api<Pod>) -> anyhow::Result<Rollout> {
    let old = settled(pods).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(Mutex::new(Served::new()));
    let peer = Arc::new(peer);
    let load: Vec<_> = (0..LOAD)
        .map(|_| {
            let (stop, made, failed) = (stop.clone(), made.clone(), failed.clone());
            let (peer, served) = (peer.clone(), served.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let addr = peer.current_addr(ECHO);
                    let ok = matches!(
                        tokio::time::timeout(Duration::from_secs(2), echo_once(addr)).await,
                        Ok(Ok(_))
                    );
                    made.fetch_add(1, Ordering::Relaxed);
                    if ok {
                        served.lock().unwrap_or_else(|e| e.into_inner()).answered();
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        // As a client retrying: a refusal is instant, and a tight loop of
                        // them would count the outage's length in refusals per second.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // What `kubectl rollout restart` does.
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), "bench");
    let started = Instant::now();
    let patch = serde_json::json!({"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": format!("{:?}", std::time::SystemTime::now()),
    }}}}});
    let restarted = deployments
        .patch(SERVICE, &PatchParams::default(), &Patch::Merge(&patch))
        .await;
    let result = match restarted {
        Ok(_) => replaced(pods, &old).await.map(|()| started.elapsed()),
        Err(e) => Err(e.into()),
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    futures::future::join_all(load).await;
    let took = result?;
    let mut served = served.lock().unwrap_or_else(|e| e.into_inner());
    served.answered();
    Ok(Rollout {
        failed: failed.load(Ordering::Relaxed),
        made: made.load(Ordering::Relaxed),
        outage: served.longest,
        took,
    })
}

struct Rollout {
    failed: usize,
    made: usize,
    /// The longest time without an answer to any client.
    outage: Duration,
    took: Duration,
}

/// When a request last had its answer, and the longest wait between two answers.
struct Served {
    last: Instant,
    longest: Duration,
}

impl Served {
    fn new() -> Served {
        Served {
            last: Instant::now(),
            longest: Duration::ZERO,
        }
    }

    fn answered(&mut self) {
        self.longest = self.longest.max(self.last.elapsed());
        self.last = Instant::now();
    }
}

/// Waits until the Deployment has two Ready pods and no other; returns their template hashes.
async fn settled(pods: &Api<Pod>) -> anyhow::Result<BTreeSet<String>> {
    wait_pods(pods, |_| true).await
}

/// Waits until every pod of the Deployment is one of a template other than `old`'s.
async fn replaced(pods: &Api<Pod>, old: &BTreeSet<String>) -> anyhow::Result<()> {
    wait_pods(pods, |hash| !old.contains(hash)).await.map(drop)
}

async fn wait_pods(
    pods: &Api<Pod>,
    wanted: impl Fn(&str) -> bool,
) -> anyhow::Result<BTreeSet<String>> {
    let started = Instant::now();
    loop {
        let list = pods.list(&ListParams::default().labels("app=roll")).await?;
        let hashes: BTreeMap<String, bool> = list
            .items
            .iter()
            .map(|p| {
                let hash = p
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("pod-template-hash"))
                    .cloned()
                    .unwrap_or_default();
                let ready = p.metadata.deletion_timestamp.is_none()
                    && p.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| {
                            c.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                        });
                (
                    format!("{}/{hash}", p.metadata.name.clone().unwrap_or_default()),
                    ready && wanted(&hash),
                )
            })
            .collect();
        if hashes.len() == 2 && hashes.values().all(|ok| *ok) {
            return Ok(hashes
                .keys()
                .filter_map(|k| k.split_once('/').map(|(_, h)| h.to_owned()))
                .collect());
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("the Deployment did not settle within 120 s: {hashes:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
