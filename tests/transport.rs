//! The pod transport against the simulated cluster: the first choice of upgrade and the
//! fallbacks from it, permissions, and recovery after the connection to a pod drops; and
//! against a real control plane, with and without port-forward tunnelled in WebSocket.

mod support;

use kftray::cluster::{ClusterKey, Clusters};
use kftray::forward::Connect;
use kftray::resolve::Endpoint;
use kftray::transport::{Deadlines, FirstChoice, PodConnector};
use kubesim::testing::{TIMEOUT, demo_cluster};
use kubesim::{Cluster, ClusterOptions};
use std::path::Path;
use std::sync::Arc;
use support::cluster::{Namespace, WEB};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn setup() -> (Cluster, Arc<PodConnector>, Endpoint) {
    setup_with(FirstChoice::default()).await
}

async fn setup_with(first: FirstChoice) -> (Cluster, Arc<PodConnector>, Endpoint) {
    let sim = demo_cluster(ClusterOptions::default()).await.unwrap();
    let connector = connector(sim.kubeconfig_path(), "demo", first).await;
    let pod = sim.pod_names("demo", "app=web").remove(0);
    (sim, connector, endpoint(pod))
}

async fn connector(kubeconfig: &Path, namespace: &str, first: FirstChoice) -> Arc<PodConnector> {
    let key = ClusterKey {
        kubeconfig: Some(kubeconfig.to_path_buf()),
        context: None,
    };
    let cluster = Clusters::new().get(&key).await.unwrap();
    PodConnector::new(cluster.client, namespace, Deadlines::default(), first)
}

fn endpoint(pod: String) -> Endpoint {
    Endpoint {
        pod,
        uid: String::new(),
        port: 8080,
    }
}

/// An HTTP GET through one connection; the body is the pod's name.
async fn get(connector: &Arc<PodConnector>, endpoint: &Endpoint) -> std::io::Result<String> {
    let mut stream = connector.connect(endpoint).await?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n")
        .await?;
    let mut reply = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut reply)).await??;
    let reply = String::from_utf8_lossy(&reply).into_owned();
    Ok(reply
        .rsplit("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .trim()
        .to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speaks_raw_spdy_first() {
    let (_sim, connector, endpoint) = setup().await;
    assert_eq!(get(&connector, &endpoint).await.unwrap(), endpoint.pod);
    assert_eq!(connector.protocol(), "SPDY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_spdy_upgrade_falls_back_to_spdy_in_websocket() {
    let (sim, connector, endpoint) = setup().await;
    sim.faults().fail_next(1, 500);
    assert_eq!(get(&connector, &endpoint).await.unwrap(), endpoint.pod);
    assert_eq!(connector.protocol(), "SPDY over WebSocket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asked_for_websocket_first_it_tunnels_and_falls_back_to_raw_spdy() {
    let (_sim, connector, endpoint) = setup_with(FirstChoice::WebSocket).await;
    assert_eq!(get(&connector, &endpoint).await.unwrap(), endpoint.pod);
    assert_eq!(connector.protocol(), "SPDY over WebSocket");
    let (sim, connector, endpoint) = setup_with(FirstChoice::WebSocket).await;
    sim.faults().fail_next(1, 500);
    assert_eq!(get(&connector, &endpoint).await.unwrap(), endpoint.pod);
    assert_eq!(connector.protocol(), "SPDY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_spdy_both_ways_falls_back_to_v4_channels() {
    let (sim, connector, endpoint) = setup().await;
    sim.faults().fail_next(2, 500);
    assert_eq!(get(&connector, &endpoint).await.unwrap(), endpoint.pod);
    assert_eq!(connector.protocol(), "v4.channel.k8s.io");
    // Every later connection is its own upgrade, and still works.
    assert_eq!(get(&connector, &endpoint).await.unwrap(), endpoint.pod);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_permission_is_reported_not_retried_another_way() {
    let (sim, connector, endpoint) = setup().await;
    sim.deny(sim.admin_user(), "*", "pods/portforward");
    let err = get(&connector, &endpoint).await.unwrap_err().to_string();
    assert!(err.contains("403"), "{err}");
    assert!(err.contains("pods/portforward"), "{err}");
    assert_eq!(connector.protocol(), "unknown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_pods_connection_drops_the_next_connection_redials() {
    let (sim, connector, endpoint) = setup().await;
    assert_eq!(get(&connector, &endpoint).await.unwrap(), endpoint.pod);
    assert!(sim.faults().drop_portforwards("demo", &endpoint.pod));
    // The dropped session may take a moment to be noticed; a connection either finds it
    // closed and redials, or fails once. Within the timeout one must succeed.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        match get(&connector, &endpoint).await {
            Ok(body) => {
                assert_eq!(body, endpoint.pod);
                break;
            }
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "never recovered: {e}"
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_connections_through_one_connector() {
    let (_sim, connector, endpoint) = setup().await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (connector, endpoint) = (connector.clone(), endpoint.clone());
            tokio::spawn(async move { get(&connector, &endpoint).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), endpoint.pod);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_port_ends_the_stream_and_says_why() {
    let (_sim, connector, mut endpoint) = setup().await;
    endpoint.port = 9999;
    let mut stream = connector.connect(&endpoint).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut reply))
        .await
        .expect("the data stream never ended")
        .unwrap();
    assert!(reply.is_empty());
    let why = tokio::time::timeout(TIMEOUT, stream.take_failure())
        .await
        .unwrap()
        .expect("no verdict");
    assert!(why.contains("error forwarding port 9999"), "{why}");
}

/// What kubesim's refused tunnel stands for, on the real thing: an API server that passes the
/// WebSocket upgrade through to a kubelet that does not tunnel SPDY in it either (clusters
/// before 1.31, or the gate turned off). kftray and kubectl both end up on SPDY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_cluster_without_websocket_port_forward_is_reached_over_spdy() {
    let cp = controlplane::ControlPlane::start(
        support::cluster::options().without_websocket_port_forward(),
    )
    .await
    .unwrap();
    let ns = Namespace::on(cp.kubeconfig(), &cp.kubectl(), "kftray-spdy-only").await;
    ns.apply(WEB).await;
    let pod = ns.wait_ready("app=web", 2).await.remove(0);

    // Asked for the tunnel first, as kubectl asks: the refusal moves it on to SPDY.
    let connector = connector(cp.kubeconfig(), &ns.name, FirstChoice::WebSocket).await;
    let endpoint = endpoint(pod.clone());
    assert_eq!(get(&connector, &endpoint).await.unwrap(), pod);
    assert_eq!(connector.protocol(), "SPDY");
    assert_eq!(get(&connector, &endpoint).await.unwrap(), pod);

    // kubectl of the same release asks for the tunnel first too.
    let kubectl = kubesim::testing::Kubectl {
        program: cp.kubectl(),
        kubeconfig: cp.kubeconfig().to_path_buf(),
        cache_dir: cp.kubeconfig().with_file_name("kubectl-cache"),
    };
    let target = format!("pod/{pod}");
    let forward = kubesim::testing::port_forward(&kubectl, &ns.name, &target, 8080, true).await;
    assert!(forward.fell_back_to_spdy(), "{}", forward.stderr());
    let (code, body) = kubesim::testing::http_get(forward.addr, "/").await.unwrap();
    assert_eq!((code, body.trim()), (200, pod.as_str()));
    drop(forward);
    drop(ns);
    cp.shutdown().await;
}

/// On a cluster that tunnels (the default since 1.31) each first choice holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_cluster_is_reached_over_the_first_choice() {
    let ns = Namespace::new("kftray-tunnel").await;
    ns.apply(WEB).await;
    let pod = ns.wait_ready("app=web", 2).await.remove(0);
    let kubeconfig = &support::cluster::shared().kubeconfig;
    for (first, spoken) in [
        (FirstChoice::Spdy, "SPDY"),
        (FirstChoice::WebSocket, "SPDY over WebSocket"),
    ] {
        let connector = connector(kubeconfig, &ns.name, first).await;
        let endpoint = endpoint(pod.clone());
        assert_eq!(get(&connector, &endpoint).await.unwrap(), pod);
        assert_eq!(connector.protocol(), spoken);
    }
}
