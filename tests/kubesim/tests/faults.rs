//! Faults on demand: injected 500/429, a restarted API server, dropped and stalled connections.

use std::time::Duration;

use kubesim::testing::{TIMEOUT, http_get};
use kubesim::{Cluster, ClusterOptions, Scheme};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

async fn plain() -> Cluster {
    Cluster::start(ClusterOptions {
        scheme: Scheme::Http,
        ..Default::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_requests_fail_with_500_then_429() {
    let cluster = plain().await;
    let addr = cluster.addr();
    cluster.faults().fail_next(2, 500);
    for _ in 0..2 {
        let (code, body) = http_get(addr, "/api/v1/namespaces").await.unwrap();
        assert_eq!(code, 500);
        assert!(body.contains("\"reason\":\"InternalError\""), "{body}");
    }
    assert_eq!(http_get(addr, "/api/v1/namespaces").await.unwrap().0, 200);

    cluster.faults().fail_next(1, 429);
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /api/v1/pods HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut lines = BufReader::new(s).lines();
    let mut head = Vec::new();
    while let Some(l) = lines.next_line().await.unwrap() {
        if l.is_empty() {
            break;
        }
        head.push(l.to_ascii_lowercase());
    }
    assert!(head[0].contains(" 429 "), "{head:?}");
    assert!(head.iter().any(|h| h == "retry-after: 1"), "{head:?}");
    assert_eq!(http_get(addr, "/api/v1/pods").await.unwrap().0, 200);
    cluster.shutdown().await;
}

/// Opens a watch on plain http and returns a reader positioned after the headers.
async fn open_watch(
    addr: std::net::SocketAddr,
) -> tokio::io::Lines<BufReader<tokio::net::TcpStream>> {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /api/v1/namespaces?watch=true HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut lines = BufReader::new(s).lines();
    let status = lines.next_line().await.unwrap().unwrap();
    assert!(status.contains(" 200 "), "{status}");
    lines
}

/// Reads until the server closes the connection.
async fn until_closed(lines: &mut tokio::io::Lines<BufReader<tokio::net::TcpStream>>) {
    let drain = async { while let Ok(Some(_)) = lines.next_line().await {} };
    tokio::time::timeout(TIMEOUT, drain)
        .await
        .expect("the connection closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_the_port_and_ends_open_watches() {
    let cluster = plain().await;
    let addr = cluster.addr();
    let mut watch = open_watch(addr).await;
    cluster.faults().restart_api().await.unwrap();
    until_closed(&mut watch).await;
    assert_eq!(cluster.addr(), addr);
    assert_eq!(http_get(addr, "/version").await.unwrap().0, 200);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_close_and_new_ones_work() {
    let cluster = plain().await;
    let addr = cluster.addr();
    let mut watch = open_watch(addr).await;
    cluster.faults().drop_api_connections();
    until_closed(&mut watch).await;
    assert_eq!(http_get(addr, "/api").await.unwrap().0, 200);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_requests_wait_until_released() {
    let cluster = plain().await;
    let addr = cluster.addr();
    cluster.faults().stall(true);
    let pending = tokio::spawn(http_get(addr, "/version"));
    // The stalled request is accepted but unanswered; releasing it lets it complete.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!pending.is_finished());
    cluster.faults().stall(false);
    assert_eq!(pending.await.unwrap().unwrap().0, 200);
    cluster.faults().set_latency(Duration::from_millis(50));
    assert_eq!(http_get(addr, "/version").await.unwrap().0, 200);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_pods_port_forwards_ends_its_streams_only() {
    use k8s_openapi::api::core::v1::Pod;
    use tokio::io::AsyncReadExt;
    let cluster = kubesim::testing::demo_cluster(ClusterOptions::default())
        .await
        .unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(cluster.kubeconfig_path()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let pods: kube::Api<Pod> =
        kube::Api::namespaced(kube::Client::try_from(config).unwrap(), "demo");

    let mut cache = pods.portforward("cache", &[6379]).await.unwrap();
    let mut s = cache.take_stream(6379).unwrap();
    s.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    tokio::time::timeout(TIMEOUT, s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"ping");

    let mut other = pods.portforward("postgres-0", &[5432]).await.unwrap();
    let mut o = other.take_stream(5432).unwrap();

    assert!(cluster.faults().drop_portforwards("demo", "cache"));
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(TIMEOUT, s.read_to_end(&mut rest))
        .await
        .expect("the stream ends");
    assert!(ended.is_err() || rest.is_empty(), "{ended:?} {rest:?}");

    // Another pod's forward is untouched, and the pod itself forwards again.
    o.write_all(b"still").await.unwrap();
    let mut buf = [0u8; 5];
    tokio::time::timeout(TIMEOUT, o.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"still");
    let mut again = pods.portforward("cache", &[6379]).await.unwrap();
    let mut s = again.take_stream(6379).unwrap();
    s.write_all(b"back").await.unwrap();
    let mut buf = [0u8; 4];
    tokio::time::timeout(TIMEOUT, s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"back");
    cluster.shutdown().await;
}
