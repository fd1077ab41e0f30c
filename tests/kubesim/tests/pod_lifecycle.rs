//! Container processes as upstream runs them: restartPolicy decides what is started again
//! and a pod whose containers all ended is Succeeded or Failed; an image's ENV comes before
//! the manifest's env; the cluster DNS answers names beyond services.

use kubesim::testing::TIMEOUT;
use kubesim::{Cluster, ClusterOptions};
use serde_json::Value;

fn pod(name: &str, policy: &str, script: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: {policy}\n  containers:\n    - name: c\n      image: local/sh\n      args: [\"-c\", {script:?}]\n"
    )
}

fn phase(p: Option<&Value>) -> &str {
    p.and_then(|p| p.pointer("/status/phase")?.as_str())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_policy_decides_and_ended_pods_get_a_final_phase() {
    let cluster = Cluster::start(ClusterOptions::default().image("local/sh", "/bin/sh"))
        .await
        .unwrap();
    cluster.apply_yaml(&pod("done", "Never", "exit 0")).unwrap();
    cluster
        .apply_yaml(&pod("broken", "Never", "exit 3"))
        .unwrap();
    cluster
        .apply_yaml(&pod("retried", "OnFailure", "exit 4"))
        .unwrap();
    cluster
        .apply_yaml(&pod("once", "OnFailure", "exit 0"))
        .unwrap();
    for (name, wanted) in [
        ("done", "Succeeded"),
        ("broken", "Failed"),
        ("once", "Succeeded"),
    ] {
        let ended = cluster
            .wait_for("pods", "default", name, TIMEOUT, |p| phase(p) == wanted)
            .await;
        let pod = cluster.get("pods", "default", name);
        assert!(ended, "{name}: {pod:?}");
        let pod = pod.unwrap();
        assert_eq!(
            pod.pointer("/status/containerStatuses/0/restartCount"),
            Some(&Value::from(0))
        );
        let state = &pod["status"]["containerStatuses"][0]["state"]["terminated"];
        assert_eq!(state["exitCode"], if name == "broken" { 3 } else { 0 });
        assert!(
            pod["status"]["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "False")
        );
    }
    let retried = cluster
        .wait_for("pods", "default", "retried", TIMEOUT, |p| {
            p.and_then(|p| {
                p.pointer("/status/containerStatuses/0/restartCount")?
                    .as_u64()
            })
            .is_some_and(|n| n >= 2)
        })
        .await;
    assert!(retried, "{:?}", cluster.get("pods", "default", "retried"));
    assert_eq!(
        phase(cluster.get("pods", "default", "retried").as_ref()),
        "Running"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_env_comes_first_and_the_manifest_overrides_it() {
    let cluster = Cluster::start(
        ClusterOptions::default()
            .image("local/sh", "/bin/sh")
            .image_env("local/sh", "WHERE", "$(POD_IP):7000")
            .image_env("local/sh", "WHO", "image")
            .image_env("other/", "NOT_HERE", "x"),
    )
    .await
    .unwrap();
    // The container writes what it sees, then listens so that it becomes Ready.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("env");
    let script = format!(
        "echo \"$WHERE $WHO ${{NOT_HERE:-unset}}\" > {}; exec sleep 60",
        out.display()
    );
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: envpod\nspec:\n  containers:\n    - name: c\n      image: local/sh:1\n      args: [\"-c\", {script:?}]\n      env:\n        - name: WHO\n          value: manifest\n"
    );
    cluster.apply_yaml(&yaml).unwrap();
    let deadline = std::time::Instant::now() + TIMEOUT;
    let seen = loop {
        if let Ok(text) = std::fs::read_to_string(&out)
            && text.ends_with('\n')
        {
            break text;
        }
        assert!(std::time::Instant::now() < deadline, "the pod never wrote");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let ip = cluster.pod_ip("default", "envpod").unwrap();
    assert_eq!(seen.trim(), format!("{ip}:7000 manifest unset"));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_dns_answers_added_names() {
    let cluster = Cluster::start(ClusterOptions::default()).await.unwrap();
    cluster.add_dns_name("db.private.example.", "127.55.0.9".parse().unwrap());
    let dns = cluster.dns_addr().unwrap();
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // A query for DB.private.example (case differs: names are case-insensitive), type A.
    let mut query = vec![0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["DB", "private", "example"] {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    socket.send_to(&query, dns).await.unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = tokio::time::timeout(TIMEOUT, socket.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(buf[3] & 0x0f, 0, "NOERROR");
    assert_eq!(&buf[n - 4..n], &[127, 55, 0, 9]);
    cluster.shutdown().await;
}
