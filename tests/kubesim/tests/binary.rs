//! The `kubesim` binary: `serve` from the demo fixture, and pods running local commands.

use std::path::PathBuf;
use std::process::Stdio;

use kubesim::testing::{Kubectl, TIMEOUT, demo_fixture, http_get};
use kubesim::{Cluster, ClusterOptions};
use tokio::io::{AsyncBufReadExt, BufReader};

fn kubesim_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kubesim"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prints_the_kubeconfig_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    let mut child = tokio::process::Command::new(kubesim_bin())
        .args(["serve", "--fixture"])
        .arg(demo_fixture())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let export = tokio::time::timeout(TIMEOUT, async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if l.starts_with("export KUBECONFIG=") {
                return l;
            }
        }
        panic!("serve exited before printing the export line");
    })
    .await
    .unwrap();
    assert_eq!(
        export,
        format!("export KUBECONFIG={}", kubeconfig.display())
    );

    if let Some(kubectl) = Kubectl::new(&kubeconfig) {
        let (ok, out, err) = kubectl
            .run(&["get", "svc", "-n", "demo", "-o", "name"])
            .await
            .unwrap();
        assert!(ok, "{err}");
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            vec!["service/dns", "service/postgres", "service/web"]
        );
    }
    let pid = child.id().unwrap() as i32;
    // SAFETY: signalling our own child process by its pid.
    assert_eq!(unsafe { libc_kill(pid, 15) }, 0);
    let status = tokio::time::timeout(TIMEOUT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_image_can_run_a_local_command() {
    let opts = ClusterOptions {
        images: vec![("local/backend".into(), kubesim_bin())],
        ..Default::default()
    };
    let cluster = Cluster::start(opts).await.unwrap();
    cluster
        .apply_yaml(
            r#"
apiVersion: v1
kind: Pod
metadata:
  name: procpod
spec:
  containers:
    - name: main
      image: local/backend:1
      args: ["backend", "--kind", "http", "--listen", "$(POD_IP):8080", "--name", "$(POD_NAME)-$(GREETING)"]
      env:
        - name: GREETING
          value: hi
      ports:
        - containerPort: 8080
"#,
        )
        .unwrap();
    assert!(
        cluster.wait_ready("default", "procpod", TIMEOUT).await,
        "{:?}",
        cluster.get("pods", "default", "procpod")
    );
    let addr = cluster.pod_addr("default", "procpod", 8080).unwrap();
    assert_eq!(addr.ip(), cluster.pod_ip("default", "procpod").unwrap());
    assert_eq!(
        http_get(addr, "/").await.unwrap(),
        (200, "procpod-hi\n".to_string())
    );

    cluster.delete_pod("default", "procpod", Some(0)).unwrap();
    assert!(
        cluster
            .wait_for("pods", "default", "procpod", TIMEOUT, |p| p.is_none())
            .await
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the process is gone with its pod"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exited_container_process_is_restarted_and_counted() {
    let cluster = Cluster::start(ClusterOptions::default().image("local/sh", "/bin/sh"))
        .await
        .unwrap();
    cluster
        .apply_yaml(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: flaky\nspec:\n  containers:\n    - name: c\n      image: local/sh\n      args: [\"-c\", \"exit 3\"]\n",
        )
        .unwrap();
    let restarted = cluster
        .wait_for("pods", "default", "flaky", TIMEOUT, |p| {
            p.and_then(|p| {
                p.pointer("/status/containerStatuses/0/restartCount")?
                    .as_u64()
            })
            .is_some_and(|n| n >= 2)
        })
        .await;
    assert!(restarted, "{:?}", cluster.get("pods", "default", "flaky"));
    cluster.shutdown().await;
}
