//! `kftray import --from-cluster` against the real control plane (one per test, since they
//! read every namespace): services annotated for kftray's auto-import become forwards whose
//! ports really reach the pods.

mod support;

use controlplane::ControlPlane;
use kubesim::testing::{TIMEOUT, demo_fixture, http_get};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

fn kftray(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kftray"))
        .args(args)
        .current_dir(dir)
        .env("KFTRAY_HOME", dir.join("home"))
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .output()
        .unwrap()
}

async fn run(dir: &Path, args: &[&str]) -> Output {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        kftray(&dir, &args)
    })
    .await
    .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A control plane with the demo fixture's pods Ready.
async fn demo_cluster() -> ControlPlane {
    let cp = ControlPlane::start(support::cluster::options())
        .await
        .unwrap();
    cp.apply_file(&demo_fixture()).await.unwrap();
    cp.wait_pods_ready("demo", TIMEOUT).await.unwrap();
    cp
}

/// Annotated services over the demo cluster's pods (web: container port `http` = 8080,
/// postgres: `postgres` = 5432, dns: UDP `dns` = 5353, cache: `redis` = 6379).
async fn annotate(cluster: &ControlPlane, ui: u16, direct: u16) {
    let yaml = format!(
        r#"
apiVersion: v1
kind: Service
metadata:
  name: storefront
  namespace: demo
  annotations:
    kftray.app/enabled: "true"
    kftray.app/configs: "web-ui-{ui}-http, web-direct-{direct}-8080, bogus-1-2-nope"
spec:
  selector: {{app: web}}
  ports:
    - {{name: http, port: 80, targetPort: http}}
---
apiVersion: v1
kind: Service
metadata:
  name: pg
  namespace: demo
  annotations: {{kftray.app/enabled: "true"}}
spec:
  selector: {{app: postgres}}
  ports:
    - {{name: postgres, port: 5432, targetPort: postgres}}
---
apiVersion: v1
kind: Service
metadata:
  name: resolver
  namespace: demo
  annotations: {{kftray.app/enabled: "true"}}
spec:
  selector: {{app: dns}}
  ports:
    - {{name: dns, port: 53, targetPort: dns, protocol: UDP}}
---
apiVersion: v1
kind: Service
metadata:
  name: legacy
  namespace: demo
  annotations: {{kftray.app/enabled: "true"}}
spec:
  ports:
    - {{port: 80}}
---
apiVersion: v1
kind: Namespace
metadata:
  name: tools
---
apiVersion: v1
kind: Service
metadata:
  name: pg
  namespace: tools
  annotations: {{kftray.app/enabled: "true", kftray.app/configs: "pg-tools-15432-5432"}}
spec:
  selector: {{app: postgres}}
  ports:
    - {{port: 5432}}
"#
    );
    cluster.apply_yaml(&yaml).await.unwrap();
}

async fn ready(dir: &Path, alias: &str) -> SocketAddr {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let out = run(dir, &["status", "-o", "json"]).await;
        let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if let Some(f) = all
            .iter()
            .find(|f| f["alias"] == alias && f["state"] == "ready")
        {
            return f["local_address"].as_str().unwrap().parse().unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{alias} never became ready: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotated_services_become_forwards_that_reach_their_pods() {
    let cluster = demo_cluster().await;
    let (ui, direct) = (free_port(), free_port());
    annotate(&cluster, ui, direct).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = cluster.kubeconfig().display().to_string();
    std::fs::write(
        dir.path().join("kftray.toml"),
        "# Ours.\nversion = 1\n\n[defaults]\nnamespace = \"demo\" # the demo\n",
    )
    .unwrap();

    let out = run(
        dir.path(),
        &[
            "import",
            "--from-cluster",
            "--kubeconfig",
            &kubeconfig,
            "-n",
            "demo",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("service demo/storefront: kftray.app/configs entry `bogus-1-2-nope`: the service has no port named `2-nope` or `nope` (its port names: http); skipped"),
        "{}",
        text(&out)
    );
    assert!(
        stderr.contains("service demo/legacy skipped: it has no selector"),
        "{}",
        text(&out)
    );
    let file = std::fs::read_to_string(dir.path().join("kftray.toml")).unwrap();
    let k = format!("kubeconfig = {kubeconfig:?}\n");
    let expected = format!(
        "# Ours.\nversion = 1\n\n[defaults]\nnamespace = \"demo\" # the demo\n\n\
         [forwards.pg]\nservice = \"pg\"\n{k}local_port = 5432\nremote_port = \"postgres\"\n\n\
         [forwards.resolver]\nservice = \"resolver\"\n{k}local_port = 5353\nremote_port = \"dns\"\nprotocol = \"udp\"\n\n\
         [forwards.web-ui]\nservice = \"storefront\"\n{k}local_port = {ui}\nremote_port = \"http\"\n\n\
         [forwards.web-direct]\nservice = \"storefront\"\n{k}local_port = {direct}\nremote_port = 80\n"
    );
    assert_eq!(file, expected);

    // The ports lead where kftray's annotation meant: the pods' `http` port, 8080.
    let up = run(dir.path(), &["up", "--detach", "web-ui", "web-direct"]).await;
    assert!(up.status.success(), "{}", text(&up));
    for alias in ["web-ui", "web-direct"] {
        let addr = ready(dir.path(), alias).await;
        let (code, body) = http_get(addr, "/").await.unwrap();
        assert_eq!(code, 200, "{alias}");
        assert!(body.trim().starts_with("web-"), "{alias}: {body}");
    }
    let down = run(dir.path(), &["down"]).await;
    assert!(down.status.success(), "{}", text(&down));

    // Once more: nothing new.
    let again = run(
        dir.path(),
        &[
            "import",
            "--from-cluster",
            "--kubeconfig",
            &kubeconfig,
            "-n",
            "demo",
        ],
    )
    .await;
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("kftray.toml")).unwrap(),
        expected
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_services_in_all_namespaces_get_ports_that_do_not_clash() {
    let cluster = demo_cluster().await;
    annotate(&cluster, free_port(), free_port()).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = cluster.kubeconfig().display().to_string();
    let out = run(
        dir.path(),
        &[
            "import",
            "--from-cluster",
            "--kubeconfig",
            &kubeconfig,
            "-A",
            "--all-services",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let file = std::fs::read_to_string(dir.path().join("kftray.toml")).unwrap();
    assert!(file.starts_with("#:schema "), "{file}");
    // Every service of demo, annotated or not; the second `pg` is named after its namespace.
    for table in [
        "[forwards.web]\nservice = \"web\"\nnamespace = \"demo\"",
        "[forwards.postgres]\nservice = \"postgres\"\nnamespace = \"demo\"",
        "[forwards.pg-tools]\nservice = \"pg\"\nnamespace = \"tools\"",
    ] {
        assert!(file.contains(table), "{table} missing:\n{file}");
    }
    // web's 80 → pods' 8080 is free; postgres and pg both want 5432: one moves.
    assert!(
        file.contains("local_port = 8080\nremote_port = \"http\""),
        "{file}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("local port 5432 was taken, 5433 instead"),
        "{stdout}"
    );
    let valid = run(dir.path(), &["validate"]).await;
    assert!(valid.status.success(), "{}", text(&valid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_is_an_error_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: a\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{}\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: a\n  context:\n    cluster: c\n    user: u\n",
            free_port()
        ),
    )
    .unwrap();
    let out = run(
        dir.path(),
        &[
            "import",
            "--from-cluster",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach cluster"),
        "{}",
        text(&out)
    );
    assert!(!dir.path().join("kftray.toml").exists());
}
