//! Re-applying a changed set of forwards: only what changed restarts, and open connections
//! of untouched forwards carry on.

use kftray::cluster::ClusterKey;
use kftray::engine::{LocalBind, Phase, RunSpec, Supervisor};
use kftray::forward::Tuning;
use kftray::resolve::{PortRef, Target};
use kubesim::ClusterOptions;
use kubesim::testing::{TIMEOUT, demo_cluster, http_get};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn spec(cluster: &kubesim::Cluster, target: Target, port: PortRef) -> RunSpec {
    RunSpec {
        cluster: ClusterKey {
            kubeconfig: Some(cluster.kubeconfig_path().to_path_buf()),
            context: None,
        },
        namespace: Some("demo".into()),
        target,
        remote_port: port,
        local: LocalBind {
            address: "127.0.0.1".parse().unwrap(),
            port: 0,
            auto: false,
        },
        relay: None,
        http_log: None,
        domain: None,
        proxy: None,
        expose: None,
    }
}

/// The forward's local address once it has a pod.
async fn ready(supervisor: &Supervisor, name: &str) -> SocketAddr {
    tokio::time::timeout(TIMEOUT, async {
        loop {
            let report = supervisor.report().into_iter().find(|r| r.name == name);
            if let Some(r) = report.filter(|r| matches!(r.phase, Phase::Ready { .. })) {
                return r.local;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{name} never became ready"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_changed_forwards_restart_and_open_connections_survive() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let web = spec(
        &cluster,
        Target::Service { name: "web".into() },
        PortRef::Name("http".into()),
    );
    let db = spec(
        &cluster,
        Target::Service {
            name: "postgres".into(),
        },
        PortRef::Number(5432),
    );
    let mut supervisor = Supervisor::new(Tuning::default());
    let first = BTreeMap::from([
        ("web".to_string(), web.clone()),
        ("db".to_string(), db.clone()),
    ]);
    let applied = supervisor.apply(&first).await;
    assert_eq!(applied.started, ["db", "web"]);
    let db_addr = ready(&supervisor, "db").await;
    let web_addr = ready(&supervisor, "web").await;

    // A connection through db stays open across the next apply.
    let mut open = tokio::net::TcpStream::connect(db_addr).await.unwrap();
    open.write_all(b"before").await.unwrap();
    let mut buf = [0u8; 6];
    open.read_exact(&mut buf).await.unwrap();

    // web moves to a selector target; db is unchanged; a new forward appears.
    let web_changed = spec(
        &cluster,
        Target::Selector {
            selector: "app=web".into(),
        },
        PortRef::Name("http".into()),
    );
    let echo = spec(
        &cluster,
        Target::Workload {
            workload: kftray::resolve::WorkloadKind::StatefulSet,
            name: "postgres".into(),
        },
        PortRef::Number(5432),
    );
    let second = BTreeMap::from([
        ("web".to_string(), web_changed),
        ("db".to_string(), db),
        ("echo".to_string(), echo),
    ]);
    let applied = supervisor.apply(&second).await;
    assert_eq!(applied.restarted, ["web"]);
    assert_eq!(applied.started, ["echo"]);
    assert_eq!(applied.unchanged, ["db"]);
    assert!(applied.failed.is_empty(), "{:?}", applied.failed);

    open.write_all(b"after!").await.unwrap();
    open.read_exact(&mut buf).await.unwrap();
    assert_eq!(
        &buf, b"after!",
        "the untouched forward's connection was cut"
    );
    let new_web = ready(&supervisor, "web").await;
    let (code, _) = http_get(new_web, "/").await.unwrap();
    assert_eq!(code, 200);
    if new_web != web_addr {
        assert!(
            tokio::net::TcpStream::connect(web_addr).await.is_err(),
            "the old listener stayed"
        );
    }

    // Removing everything stops everything.
    let applied = supervisor.apply(&BTreeMap::new()).await;
    assert_eq!(applied.stopped, ["db", "echo", "web"]);
    assert!(tokio::net::TcpStream::connect(db_addr).await.is_err());
}

/// Two forwards that reach the same pod share its one upgraded connection: every local
/// connection of both is a stream pair on it, as kubectl multiplexes one forward's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_to_the_same_pod_share_one_connection() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let by_pod = spec(
        &cluster,
        Target::Pod {
            name: "postgres-0".into(),
        },
        PortRef::Number(5432),
    );
    let by_service = spec(
        &cluster,
        Target::Service {
            name: "postgres".into(),
        },
        PortRef::Number(5432),
    );
    let mut supervisor = Supervisor::new(Tuning::default());
    let desired = BTreeMap::from([
        ("by-pod".to_string(), by_pod),
        ("by-service".to_string(), by_service),
    ]);
    supervisor.apply(&desired).await;
    for name in ["by-pod", "by-service"] {
        let addr = ready(&supervisor, name).await;
        for i in 0..5u8 {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.write_all(&[i; 3]).await.unwrap();
            let mut back = [0u8; 3];
            tokio::time::timeout(TIMEOUT, stream.read_exact(&mut back))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(back, [i; 3], "{name}");
        }
    }
    assert_eq!(cluster.portforward_requests("demo", "postgres-0"), 1);
    supervisor.shutdown().await;
}
