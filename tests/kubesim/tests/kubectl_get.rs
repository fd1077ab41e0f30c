//! The real kubectl (v1.32 through the dispatcher) against the simulated cluster.

use kubesim::testing::{Kubectl, demo_cluster};
use kubesim::{ClusterOptions, Credentials, Scheme};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_pods_and_services_across_namespaces() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let Some(kubectl) = Kubectl::new(cluster.kubeconfig_path()) else {
        return;
    };

    let (ok, out, err) = kubectl.run(&["get", "pods,svc", "-A"]).await.unwrap();
    assert!(ok, "{err}");
    let header = out.lines().next().unwrap_or_default();
    for col in ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"] {
        assert!(header.contains(col), "{out}");
    }
    for pod in cluster.pod_names("demo", "") {
        let line = out
            .lines()
            .find(|l| l.contains(&format!("pod/{pod} ")))
            .unwrap_or_else(|| panic!("pod/{pod} missing:\n{out}"));
        assert!(line.contains("1/1") && line.contains("Running"), "{line}");
    }
    for svc in ["web", "postgres", "dns"] {
        let ip = cluster.get("services", "demo", svc).unwrap()["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .to_string();
        let line = out
            .lines()
            .find(|l| l.contains(&format!("service/{svc} ")))
            .unwrap_or_else(|| panic!("{svc} missing:\n{out}"));
        assert!(line.contains(&ip) && line.contains("ClusterIP"), "{line}");
    }
    assert!(out.contains("53/UDP") && out.contains("80/TCP"), "{out}");

    let (ok, out, err) = kubectl.run(&["get", "deploy", "-n", "demo"]).await.unwrap();
    assert!(ok, "{err}");
    let web = out
        .lines()
        .find(|l| l.starts_with("web "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        web.split_whitespace().collect::<Vec<_>>()[1..4] == ["2/2", "2", "2"],
        "{web}"
    );

    let (ok, out, err) = kubectl
        .run(&[
            "get",
            "pods",
            "-n",
            "demo",
            "-l",
            "app in (web),tier=frontend",
            "-o",
            "name",
        ])
        .await
        .unwrap();
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");

    // kubectl label sends a strategic merge PATCH.
    let (ok, _, err) = kubectl
        .run(&["label", "pod", "-n", "demo", "cache", "extra=yes"])
        .await
        .unwrap();
    assert!(ok, "{err}");
    let (ok, out, err) = kubectl
        .run(&["get", "pods", "-n", "demo", "-l", "extra=yes", "-o", "name"])
        .await
        .unwrap();
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "pod/cache");

    let (ok, _, err) = kubectl
        .run(&["get", "pod", "-n", "demo", "nope"])
        .await
        .unwrap();
    assert!(!ok);
    assert!(err.contains("pods \"nope\" not found"), "{err}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_sees_forbidden_and_works_over_plain_http() {
    let cluster = demo_cluster(ClusterOptions {
        scheme: Scheme::Http,
        ..Default::default()
    })
    .await
    .unwrap();
    let Some(kubectl) = Kubectl::new(cluster.kubeconfig_path()) else {
        return;
    };
    // Over http kubectl sends no credentials; the sim serves it as the admin.
    let (ok, out, err) = kubectl
        .run(&[
            "get",
            "svc",
            "-n",
            "demo",
            "web",
            "-o",
            "jsonpath={.spec.ports[0].targetPort}",
        ])
        .await
        .unwrap();
    assert!(ok, "{err}");
    assert_eq!(out, "http");

    let tls = demo_cluster(ClusterOptions::default()).await.unwrap();
    let token = tls.add_token_user("viewer");
    tls.deny("viewer", "list", "pods");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    tls.write_kubeconfig_for(&path, Credentials::Token(token))
        .unwrap();
    let Some(viewer) = Kubectl::new(&path) else {
        return;
    };
    let (ok, _, err) = viewer.run(&["get", "pods", "-n", "demo"]).await.unwrap();
    assert!(!ok);
    assert!(
        err.contains("pods is forbidden: User \"viewer\" cannot list resource \"pods\" in API group \"\" in the namespace \"demo\""),
        "{err}"
    );
    let (ok, out, err) = viewer
        .run(&["get", "svc", "-n", "demo", "-o", "name"])
        .await
        .unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("service/web"), "{out}");
    cluster.shutdown().await;
    tls.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_clusters_in_one_kubeconfig() {
    let a = kubesim::Cluster::start(ClusterOptions {
        name: Some("east".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let b = kubesim::Cluster::start(ClusterOptions {
        name: Some("west".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    b.apply_yaml("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: only-west\n")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    kubesim::write_kubeconfig(&path, &[&a, &b]).unwrap();
    let Some(kubectl) = Kubectl::new(&path) else {
        return;
    };
    let (ok, out, err) = kubectl
        .run(&["config", "get-contexts", "-o", "name"])
        .await
        .unwrap();
    assert!(ok, "{err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), vec!["east", "west"]);
    let (_, east, _) = kubectl.run(&["get", "ns", "-o", "name"]).await.unwrap();
    let (ok, west, err) = kubectl
        .run(&["--context", "west", "get", "ns", "-o", "name"])
        .await
        .unwrap();
    assert!(ok, "{err}");
    assert!(
        !east.contains("only-west") && west.contains("namespace/only-west"),
        "{east}\n{west}"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_scales_and_deletes() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let Some(kubectl) = Kubectl::new(cluster.kubeconfig_path()) else {
        return;
    };
    let (ok, _, err) = kubectl
        .run(&["scale", "deploy/web", "-n", "demo", "--replicas=3"])
        .await
        .unwrap();
    assert!(ok, "{err}");
    assert!(
        cluster
            .wait_pods_ready("demo", "app=web", 3, kubesim::testing::TIMEOUT)
            .await
            .is_some()
    );
    let (ok, out, err) = kubectl
        .run(&[
            "rollout",
            "status",
            "deploy/web",
            "-n",
            "demo",
            "--timeout=60s",
        ])
        .await
        .unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("successfully rolled out"), "{out}");

    let (ok, _, err) = kubectl
        .run(&["scale", "deploy/web", "-n", "demo", "--replicas=0"])
        .await
        .unwrap();
    assert!(ok, "{err}");
    assert!(
        cluster
            .wait_pods_ready("demo", "app=web", 0, kubesim::testing::TIMEOUT)
            .await
            .is_some()
    );

    // `kubectl delete` waits until the pod is really gone.
    let (ok, out, err) = kubectl
        .run(&["delete", "pod", "-n", "demo", "cache"])
        .await
        .unwrap();
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "pod \"cache\" deleted");
    assert!(cluster.get("pods", "demo", "cache").is_none());
    cluster.shutdown().await;
}
