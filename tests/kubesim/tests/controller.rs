//! Workload controllers replace deleted pods with new pods and new backends.

use std::collections::BTreeSet;

use kubesim::ClusterOptions;
use kubesim::testing::{TIMEOUT, demo_cluster, http_get};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_deployment_pod_is_replaced_by_a_new_pod_and_backend() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let before: BTreeSet<String> = cluster.pod_names("demo", "app=web").into_iter().collect();
    assert_eq!(before.len(), 2);
    let victim = before.iter().next().unwrap().clone();
    let old_addr = cluster.pod_addr("demo", &victim, 8080).unwrap();
    assert_eq!(
        http_get(old_addr, "/").await.unwrap().1,
        format!("{victim}\n")
    );

    // Names as upstream's: <deployment>-<template hash>-<5 chars>, with the hash as a label.
    let rs_hash =
        cluster.get("pods", "demo", &victim).unwrap()["metadata"]["labels"]["pod-template-hash"]
            .as_str()
            .unwrap()
            .to_string();
    assert!(
        victim.starts_with(&format!("web-{rs_hash}-"))
            && victim.len() == format!("web-{rs_hash}-").len() + 5,
        "{victim}"
    );
    assert!(
        cluster
            .get("replicasets", "demo", &format!("web-{rs_hash}"))
            .is_some()
    );

    cluster.delete_pod("demo", &victim, None).unwrap();
    let wait = async {
        loop {
            if let Some(now) = cluster.wait_pods_ready("demo", "app=web", 2, TIMEOUT).await {
                let now: BTreeSet<String> = now.into_iter().collect();
                if !now.contains(&victim) {
                    return now;
                }
            }
            tokio::task::yield_now().await;
        }
    };
    let after = tokio::time::timeout(TIMEOUT, wait)
        .await
        .expect("a replacement pod in time");
    let new: Vec<&String> = after.difference(&before).collect();
    assert_eq!(new.len(), 1, "{after:?}");
    let new_addr = cluster.pod_addr("demo", new[0], 8080).unwrap();
    assert_ne!(new_addr.ip(), old_addr.ip(), "a new pod gets a new IP");
    assert_eq!(
        http_get(new_addr, "/").await.unwrap(),
        (200, format!("{}\n", new[0]))
    );
    assert!(
        cluster
            .wait_for("pods", "demo", &victim, TIMEOUT, |p| p.is_none())
            .await
    );
    assert!(
        tokio::net::TcpStream::connect(old_addr).await.is_err(),
        "the old backend is gone"
    );

    // Endpoints follow: the new pod's IP in, the old one out.
    let (new_ip, old_ip) = (
        format!("\"{}\"", new_addr.ip()),
        format!("\"{}\"", old_addr.ip()),
    );
    let converged = cluster
        .wait_for("endpoints", "demo", "web", TIMEOUT, |ep| {
            ep.is_some_and(|ep| {
                ep.to_string().contains(&new_ip) && !ep.to_string().contains(&old_ip)
            })
        })
        .await;
    assert!(converged, "{:?}", cluster.get("endpoints", "demo", "web"));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_pod_comes_back_with_its_name_and_a_new_uid() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let uid = cluster.get("pods", "demo", "postgres-0").unwrap()["metadata"]["uid"].clone();
    assert!(cluster.faults().kill_pod("demo", "postgres-0").await);
    let back = cluster
        .wait_for("pods", "demo", "postgres-0", TIMEOUT, |p| {
            p.is_some_and(|p| p["metadata"]["uid"] != uid && kubesim::controller::pod_ready(p))
        })
        .await;
    assert!(back);
    let addr = cluster.pod_addr("demo", "postgres-0", 5432).unwrap();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    cluster.shutdown().await;
}
