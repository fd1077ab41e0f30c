//! Inside the cluster: ClusterIPs proxy to Ready pods, cluster DNS names resolve, a UDP
//! service answers.

use std::net::{Ipv4Addr, SocketAddr};

use kubesim::ClusterOptions;
use kubesim::testing::{TIMEOUT, demo_cluster, http_get};

fn cluster_ip(cluster: &kubesim::Cluster, svc: &str) -> Ipv4Addr {
    cluster.get("services", "demo", svc).unwrap()["spec"]["clusterIP"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// A minimal A query; returns the first A record of the answer, if any.
async fn resolve_a(server: SocketAddr, name: &str) -> Option<Ipv4Addr> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(&q, server).await.unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = tokio::time::timeout(TIMEOUT, sock.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let r = &buf[..n];
    let answers = u16::from_be_bytes([r[6], r[7]]);
    if answers == 0 || r[3] & 0x0f != 0 {
        return None;
    }
    // Skip the echoed question, then read the first answer's RDATA (name is a pointer).
    let mut i = 12;
    while r[i] != 0 {
        i += 1 + r[i] as usize;
    }
    i += 5;
    i += 2 + 10;
    Some(Ipv4Addr::new(r[i], r[i + 1], r[i + 2], r[i + 3]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_ip_reaches_ready_pods_only() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let web = cluster.pod_names("demo", "app=web");
    let addr = SocketAddr::from((cluster_ip(&cluster, "web"), 80));
    // The pods are Ready when the demo starts; the endpoints controller writes them into the
    // service's EndpointSlice a moment later, and until then the ClusterIP has nowhere to go.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let (code, body) = loop {
        let (code, body) = http_get(addr, "/").await.unwrap();
        if code == 200 || tokio::time::Instant::now() > deadline {
            break (code, body);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(code, 200);
    assert!(web.iter().any(|p| body == format!("{p}\n")), "{body}");

    // With one pod unready, every connection lands on the other.
    assert!(cluster.set_ready("demo", &web[0], false));
    let other = format!("{}\n", web[1]);
    let unready = format!("\"{}\"", cluster.pod_ip("demo", &web[0]).unwrap());
    assert!(
        cluster
            .wait_for("endpoints", "demo", "web", TIMEOUT, |e| e.is_some_and(
                |e| {
                    let ready = e["subsets"][0]["addresses"].to_string();
                    !ready.contains(&unready)
                }
            ))
            .await
    );
    // kube-proxy follows the EndpointSlice, which the controller writes after Endpoints.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let ip = cluster.pod_ip("demo", &web[0]).unwrap().to_string();
    while cluster
        .list("endpointslices", Some("demo"))
        .iter()
        .any(|s| {
            s["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| e["addresses"][0] == ip.as_str() && e["conditions"]["ready"] == true)
        })
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "slice kept {ip} ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for _ in 0..5 {
        assert_eq!(http_get(addr, "/").await.unwrap().1, other);
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_dns_answers_service_names() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let dns = cluster.dns_addr().unwrap();
    let ip = cluster_ip(&cluster, "postgres");
    for name in [
        "postgres.demo.svc.cluster.local",
        "postgres.demo.svc",
        "postgres.demo",
    ] {
        assert_eq!(resolve_a(dns, name).await, Some(ip), "{name}");
    }
    assert_eq!(resolve_a(dns, "nope.demo.svc.cluster.local").await, None);
    cluster.shutdown().await;
}
