//! Clients that are not kftray against the real control plane: `kubectl port-forward` of the
//! same release and the machine's installed kubectl, both ways kubectl dials (SPDY tunnelled
//! in WebSocket, its default, and raw SPDY), and kube-rs list, watch and port-forward; and a
//! cluster of two Nodes. Every byte of these port-forwards goes through Kubernetes' own code
//! on both legs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use controlplane::ControlPlane;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use kubesim::testing::{Kubectl, TIMEOUT, http_get, kubectl_path, port_forward};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FIXTURE: &str = include_str!("../../kubesim/fixtures/demo.yaml");

async fn cluster() -> ControlPlane {
    let cp = ControlPlane::start(controlplane::Options {
        version: controlplane::Version::from_env().unwrap(),
        ..Default::default()
    })
    .await
    .unwrap();
    cp.apply_yaml(FIXTURE).await.unwrap();
    cp.wait_pods_ready("demo", TIMEOUT).await.unwrap();
    cp
}

/// The kubectls to try: this release's, and the one on PATH (another release) if any.
fn kubectls(cp: &ControlPlane) -> Vec<Kubectl> {
    let mut programs = vec![cp.kubectl()];
    programs.extend(kubectl_path());
    programs
        .into_iter()
        .map(|program| Kubectl {
            program,
            kubeconfig: cp.kubeconfig().to_path_buf(),
            cache_dir: std::env::temp_dir().join(format!(
                "controlplane-kubectl-cache-{}-{}",
                std::process::id(),
                rand_suffix()
            )),
        })
        .collect()
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

async fn web_pods(cp: &ControlPlane) -> Vec<String> {
    let pods: Api<Pod> = Api::namespaced(cp.client().await.unwrap(), "demo");
    pods.list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect()
}

fn version_of(program: &Path) -> String {
    let out = std::process::Command::new(program)
        .args(["version", "--client", "-o", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["clientVersion"]["gitVersion"]
        .as_str()
        .unwrap_or("?")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_port_forward_to_a_pod_a_service_and_a_deployment_both_ways() {
    let cp = cluster().await;
    let pods = web_pods(&cp).await;
    let pod_target = format!("pod/{}", pods[0]);
    for kubectl in kubectls(&cp) {
        let version = version_of(&kubectl.program);
        for websockets in [true, false] {
            // svc/web's port 80 has targetPort "http", the container port 8080 by name.
            for (target, port) in [
                (pod_target.as_str(), 8080),
                ("svc/web", 80),
                ("deployment/web", 8080),
            ] {
                let what = format!("kubectl {version} websockets={websockets} {target}");
                let forward = port_forward(&kubectl, "demo", target, port, websockets).await;
                // The tunnel must really be used, not silently replaced by raw SPDY.
                assert!(
                    !(websockets && forward.fell_back_to_spdy()),
                    "{what}: fell back to SPDY:\n{}",
                    forward.stderr()
                );
                for _ in 0..3 {
                    let (code, body) = http_get(forward.addr, "/").await.unwrap();
                    assert_eq!(code, 200, "{what}");
                    assert!(pods.contains(&body.trim().to_string()), "{what}: {body}");
                }
                let concurrent: Vec<_> = (0..10)
                    .map(|_| tokio::spawn(http_get(forward.addr, "/")))
                    .collect();
                for request in concurrent {
                    assert_eq!(request.await.unwrap().unwrap().0, 200, "{what}");
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_echo_keeps_every_byte_both_ways_and_a_refused_port_is_the_kubelets_error() {
    let cp = cluster().await;
    let pods = web_pods(&cp).await;
    for kubectl in kubectls(&cp) {
        let version = version_of(&kubectl.program);
        for websockets in [true, false] {
            let forward = port_forward(&kubectl, "demo", "pod/postgres-0", 5432, websockets).await;
            let stream = tokio::net::TcpStream::connect(forward.addr).await.unwrap();
            let (mut rd, mut wr) = stream.into_split();
            let data: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
            let expected = data.clone();
            let writer = tokio::spawn(async move {
                wr.write_all(&data).await.unwrap();
                wr
            });
            let mut back = vec![0u8; expected.len()];
            tokio::time::timeout(TIMEOUT, rd.read_exact(&mut back))
                .await
                .unwrap()
                .unwrap();
            let _wr = writer.await.unwrap();
            assert!(
                back == expected,
                "kubectl {version} websockets={websockets}: echo differs"
            );
        }
        // Nothing listens on 9999: the kubelet's error reaches kubectl, which gives up.
        let pod = format!("pod/{}", pods[0]);
        let mut forward = port_forward(&kubectl, "demo", &pod, 9999, false).await;
        let mut stream = tokio::net::TcpStream::connect(forward.addr).await.unwrap();
        let _ = stream.write_all(b"hello").await;
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut sink)).await;
        let status = tokio::time::timeout(TIMEOUT, forward.child.wait())
            .await
            .expect("kubectl kept running after the error")
            .unwrap();
        assert!(!status.success());
        let err = forward.stderr();
        assert!(
            err.contains("9999") && err.contains("connect"),
            "kubectl {version}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_lists_watches_and_port_forwards() {
    let cp = cluster().await;
    let client = cp.client().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "demo");
    let listed = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2);

    // A watch sees a pod deleted and its replacement become Ready.
    let gone = listed.items[0].metadata.name.clone().unwrap();
    let mut events = watcher::watcher(pods.clone(), watcher::Config::default().labels("app=web"))
        .applied_objects()
        .boxed();
    pods.delete(&gone, &Default::default()).await.unwrap();
    let replacement = tokio::time::timeout(TIMEOUT, async {
        while let Some(pod) = events.try_next().await.unwrap() {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let ready = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if name != gone
                && !listed
                    .items
                    .iter()
                    .any(|p| p.metadata.name.as_deref() == Some(&name))
                && ready
            {
                return name;
            }
        }
        panic!("the watch ended");
    })
    .await
    .expect("no Ready replacement seen");

    // kube-rs's port-forward (WebSocket, v4.channel.k8s.io) to the new pod.
    let mut pf = pods.portforward(&replacement, &[8080]).await.unwrap();
    let mut stream = pf.take_stream(8080).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains(&replacement), "{reply}");
    drop(stream);
    let _ = tokio::time::timeout(Duration::from_secs(5), pf.join()).await;
}

/// The API server reports the release it was built from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_and_nodes_report_the_pinned_release() {
    let cp = cluster().await;
    let client = cp.client().await.unwrap();
    let version = client.apiserver_version().await.unwrap();
    let minor = cp.version.minor();
    assert_eq!(format!("{}.{}", version.major, version.minor), minor);
    assert!(
        version.git_version.starts_with(&format!("v{minor}.")),
        "{version:?}"
    );
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client);
    let node = nodes.get("node-0").await.unwrap();
    let info = node
        .status
        .as_ref()
        .and_then(|s| s.node_info.as_ref())
        .unwrap();
    assert_eq!(info.kubelet_version, version.git_version);
    let _: PathBuf = cp.kubectl();
}

/// Two Nodes, one kubelet-api serving both IPs: pods are spread over them, each Node stays
/// Ready with its own Lease, and a port-forward reaches a pod on either (the API server dials
/// that pod's Node).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_on_two_nodes_are_each_reached_through_their_own_node() {
    let cp = ControlPlane::start(controlplane::Options {
        version: controlplane::Version::from_env().unwrap(),
        nodes: 2,
        ..Default::default()
    })
    .await
    .unwrap();
    cp.apply_yaml(FIXTURE).await.unwrap();
    cp.wait_pods_ready("demo", TIMEOUT).await.unwrap();
    let client = cp.client().await.unwrap();
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let names: Vec<String> = nodes
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert_eq!(names, ["node-0", "node-1"]);
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), "kube-node-lease");
    for node in &names {
        assert!(
            leases.get_opt(node).await.unwrap().is_some(),
            "no Lease for {node}"
        );
    }

    let pods: Api<Pod> = Api::namespaced(client, "demo");
    let web = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items;
    let kubectl = &kubectls(&cp)[0];
    for node in &names {
        let pod = web
            .iter()
            .find(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()) == Some(node))
            .unwrap_or_else(|| panic!("no web pod on {node}"));
        let name = pod.metadata.name.clone().unwrap();
        let forward = port_forward(kubectl, "demo", &format!("pod/{name}"), 8080, true).await;
        let (code, body) = http_get(forward.addr, "/").await.unwrap();
        assert_eq!((code, body.trim()), (200, name.as_str()), "via {node}");
    }
}
