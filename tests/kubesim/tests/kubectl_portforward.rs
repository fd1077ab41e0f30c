//! The real `kubectl port-forward` (v1.32) against the simulated cluster, both ways kubectl
//! dials: SPDY tunneled in WebSocket (its default) and the raw SPDY upgrade
//! (`KUBECTL_PORT_FORWARD_WEBSOCKETS=false`), each carrying real traffic.

use kubesim::ClusterOptions;
use kubesim::testing::{Kubectl, TIMEOUT, demo_cluster, http_get, port_forward};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn targets_carry_http(websockets: bool) {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let Some(kubectl) = Kubectl::new(cluster.kubeconfig_path()) else {
        return;
    };
    let pods = cluster.pod_names("demo", "app=web");
    let pod_target = format!("pod/{}", pods[0]);
    // svc/web's port 80 has targetPort "http", the container port 8080 by name.
    for (target, port) in [
        (pod_target.as_str(), 8080),
        ("svc/web", 80),
        ("deployment/web", 8080),
    ] {
        let forward = port_forward(&kubectl, "demo", target, port, websockets).await;
        assert!(
            !(websockets && forward.fell_back_to_spdy()),
            "{target}: kubectl fell back to SPDY:\n{}",
            forward.stderr()
        );
        // Several connections over kubectl's one upgraded connection, some at once.
        for _ in 0..3 {
            let (code, body) = http_get(forward.addr, "/").await.unwrap();
            assert_eq!(code, 200, "{target}");
            assert!(pods.contains(&body.trim().to_string()), "{target}: {body}");
        }
        let concurrent: Vec<_> = (0..10)
            .map(|_| tokio::spawn(http_get(forward.addr, "/")))
            .collect();
        for request in concurrent {
            assert_eq!(request.await.unwrap().unwrap().0, 200, "{target}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_service_and_deployment_through_the_websocket_tunnel() {
    targets_carry_http(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_service_and_deployment_through_raw_spdy() {
    targets_carry_http(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_echo_keeps_every_byte_both_ways() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let Some(kubectl) = Kubectl::new(cluster.kubeconfig_path()) else {
        return;
    };
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
        assert!(back == expected, "echo differs (websockets={websockets})");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_port_gives_kubectl_the_kubelets_error() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let Some(kubectl) = Kubectl::new(cluster.kubeconfig_path()) else {
        return;
    };
    let pod = format!("pod/{}", cluster.pod_names("demo", "app=web")[0]);
    let mut forward = port_forward(&kubectl, "demo", &pod, 9999, false).await;
    let mut stream = tokio::net::TcpStream::connect(forward.addr).await.unwrap();
    let _ = stream.write_all(b"hello").await;
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut sink)).await;
    // kubectl 1.32 logs the error stream's message and gives up on the pod.
    let status = tokio::time::timeout(TIMEOUT, forward.child.wait())
        .await
        .expect("kubectl kept running after the error")
        .unwrap();
    assert!(!status.success());
    let err = forward.stderr();
    assert!(err.contains("error forwarding port 9999"), "{err}");
}
