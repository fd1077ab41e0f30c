//! `kftray up` on the real control plane while the cluster changes under it: a rollout
//! restart, a pod deleted with its grace period (the API server, etcd and the kubelet
//! restarted are in faults.rs), the network to the API server dropping, stalling and slowing down (a proxy in
//! front of it), and the API server refusing requests with 429 (its own flow control).

mod support;

use controlplane::{ControlPlane, FaultProxy};
use kubesim::testing::{TIMEOUT, http_get};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use support::Project;
use support::cluster::{Namespace, WEB};

async fn web(ns: &Namespace) -> Vec<String> {
    ns.apply(WEB).await;
    ns.wait_ready("app=web", 2).await
}

/// `kftray up` in the foreground on a service forward to web, as `kubeconfig`'s user.
fn start_up(kubeconfig: &Path, ns: &Namespace) -> Project {
    let mut project = Project::new();
    std::fs::write(
        project.path("kftray.toml"),
        format!(
            "[defaults]\nkubeconfig = {:?}\nnamespace = {:?}\n\n{}",
            kubeconfig.display().to_string(),
            ns.name,
            support::forward("web", "web", "\"http\"")
        ),
    )
    .unwrap();
    project.spawn_up(&[]);
    project
}

/// The same, once the forward is ready.
async fn up(kubeconfig: &Path, ns: &Namespace) -> (Project, SocketAddr) {
    let project = start_up(kubeconfig, ns);
    let addr = project.ready("web").await;
    (project, addr)
}

/// Waits until a GET through the forward is answered by a pod `ok` accepts; returns it.
async fn served_by(project: &Project, addr: SocketAddr, ok: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Ok((200, body)) = http_get(addr, "/").await
            && ok(body.trim())
        {
            return body.trim().to_string();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the forward never reached the pod wanted\nlog:\n{}",
            project.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn kubectl(ns: &Namespace, kubectl: &Path, args: &[&str]) {
    let out = tokio::process::Command::new(kubectl)
        .arg(format!("--kubeconfig={}", ns.kubeconfig.display()))
        .args(["-n", &ns.name])
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_restart_moves_the_forward_to_the_new_pods() {
    let shared = support::cluster::shared();
    let ns = Namespace::new("kftray-reconnect").await;
    let before = web(&ns).await;
    let (project, addr) = up(&shared.kubeconfig, &ns).await;
    served_by(&project, addr, |p| before.iter().any(|b| b == p)).await;

    kubectl(
        &ns,
        &shared.kubectl,
        &["rollout", "restart", "deployment/web"],
    )
    .await;
    kubectl(
        &ns,
        &shared.kubectl,
        &["rollout", "status", "deployment/web", "--timeout=60s"],
    )
    .await;
    let after = ns.wait_ready("app=web", 2).await;
    assert!(after.iter().all(|p| !before.contains(p)), "{after:?}");
    served_by(&project, addr, |p| after.iter().any(|a| a == p)).await;
    project
        .wait_for("status to name a new pod", |s| {
            s.iter().any(|f| {
                f["alias"] == "web"
                    && f["pod"]
                        .as_str()
                        .is_some_and(|p| after.iter().any(|a| a == p))
            })
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_deleted_with_a_grace_period_is_left_before_it_is_gone() {
    let shared = support::cluster::shared();
    let ns = Namespace::new("kftray-reconnect").await;
    let pods = web(&ns).await;
    let (project, addr) = up(&shared.kubeconfig, &ns).await;
    let first = served_by(&project, addr, |p| pods.iter().any(|b| b == p)).await;
    // A long grace period: the pod is Terminating (not Ready) long before it is gone.
    kubectl(
        &ns,
        &shared.kubectl,
        &["delete", "pod", &first, "--grace-period=20", "--wait=false"],
    )
    .await;
    let other = served_by(&project, addr, |p| p != first).await;
    assert_ne!(other, first);
}

/// A control plane of the test's own (it is broken on purpose), web on it, and `kftray up`.
async fn own_cluster() -> (ControlPlane, Namespace) {
    let cp = ControlPlane::start(support::cluster::options())
        .await
        .unwrap();
    let ns = Namespace::on(cp.kubeconfig(), &cp.kubectl(), "kftray-faults").await;
    web(&ns).await;
    (cp, ns)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_survive_the_api_connection_dropping_stalling_and_slowing() {
    let (cp, ns) = own_cluster().await;
    let proxy = FaultProxy::start(cp.apiserver_addr()).await.unwrap();
    let kubeconfig = cp.kubeconfig().with_file_name("via-proxy.kubeconfig");
    cp.kubeconfig_via(&proxy.url(), &kubeconfig).unwrap();
    let (project, addr) = up(&kubeconfig, &ns).await;
    served_by(&project, addr, |_| true).await;

    // Every connection to the API server reset at once (Wi-Fi changes network).
    let before = proxy.accepted();
    proxy.drop_connections();
    served_by(&project, addr, |_| true).await;
    assert!(proxy.accepted() > before, "kftray never dialed again");

    // A stall: nothing goes through for a while, then the link works again.
    proxy.stall(true);
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.stall(false);
    served_by(&project, addr, |_| true).await;

    // 100 ms each way on every chunk: still serving.
    proxy.latency(Duration::from_millis(100));
    proxy.drop_connections();
    served_by(&project, addr, |_| true).await;
    drop(project);
    drop(ns);
    cp.shutdown().await;
}

/// API Priority and Fairness made to refuse: `kftray-dev` and a flooding service account share
/// a priority level with no seats of its own (one request at a time gets in) and `Reject`.
const STARVED: &str = "
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: PriorityLevelConfiguration
metadata: {name: kftray-starved}
spec:
  type: Limited
  limited:
    nominalConcurrencyShares: 0
    lendablePercent: 0
    borrowingLimitPercent: 0
    limitResponse: {type: Reject}
---
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: FlowSchema
metadata: {name: kftray-dev}
spec:
  priorityLevelConfiguration: {name: kftray-starved}
  matchingPrecedence: 100
  distinguisherMethod: {type: ByUser}
  rules:
    - subjects: [{kind: User, user: {name: kftray-dev}}]
      resourceRules:
        - {verbs: ['*'], apiGroups: ['*'], resources: ['*'], namespaces: ['*'], clusterScope: true}
      nonResourceRules: [{verbs: ['*'], nonResourceURLs: ['*']}]
---
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: FlowSchema
metadata: {name: kftray-flood}
spec:
  priorityLevelConfiguration: {name: kftray-starved}
  matchingPrecedence: 101
  distinguisherMethod: {type: ByUser}
  rules:
    - subjects: [{kind: ServiceAccount, serviceAccount: {name: flood, namespace: NAMESPACE}}]
      resourceRules:
        - {verbs: ['*'], apiGroups: ['*'], resources: ['*'], namespaces: ['*'], clusterScope: true}
";

/// How many of `flow_schema`'s requests the API server has refused (its /metrics).
async fn rejected(admin: &kube::Client, flow_schema: &str) -> u64 {
    let req = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = admin.request_text(req).await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("apiserver_flowcontrol_rejected_requests_total{"))
        .filter(|l| l.contains(&format!("flow_schema=\"{flow_schema}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// A client for the service account `flood` of the namespace (a token kubectl asks for).
async fn flood_client(cp: &ControlPlane, ns: &Namespace) -> kube::Client {
    let yaml = format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: flood}}\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: flood}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}}\n\
         subjects: [{{kind: ServiceAccount, name: flood, namespace: {}}}]\n",
        ns.name
    );
    ns.apply(&yaml).await;
    let out = tokio::process::Command::new(cp.kubectl())
        .arg(format!("--kubeconfig={}", cp.kubeconfig().display()))
        .args(["-n", &ns.name, "create", "token", "flood"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout).unwrap();
    let mut config: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(cp.kubeconfig()).unwrap()).unwrap();
    config["users"][0]["user"] =
        serde_yaml::from_str(&format!("{{token: {}}}", token.trim())).unwrap();
    let path = cp.kubeconfig().with_file_name("flood.kubeconfig");
    std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
    support::cluster::client(&path).await
}

/// `kftray up` started while the API server refuses requests with 429 (the flood shares its
/// priority level) keeps trying, and comes up by itself, during the storm or after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kftray_up_comes_up_through_a_storm_of_429s() {
    let (cp, ns) = own_cluster().await;
    let admin = cp.client().await.unwrap();
    // kftray-dev may do what kftray needs in the namespace, and nothing else.
    ns.apply(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: kftray-dev}\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}\n\
         subjects: [{kind: User, name: kftray-dev, apiGroup: rbac.authorization.k8s.io}]\n",
    )
    .await;
    let flood = flood_client(&cp, &ns).await;
    let stop = tokio_util::sync::CancellationToken::new();
    // Each request of the flood asks for a resource version from the future, which the API
    // server waits for (seconds) before it answers "too large": the priority level's seats
    // stay held, so nearly every other request of the level is refused at once, whatever the
    // CPU is doing. A refused flood request retries after a pause, not in a spin.
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (pods, stop) = (
                kube::Api::<k8s_openapi::api::core::v1::Pod>::namespaced(flood.clone(), &ns.name),
                stop.clone(),
            );
            let future = kube::api::ListParams::default()
                .at("999999999999")
                .matching(kube::api::VersionMatch::NotOlderThan);
            tokio::spawn(async move {
                while !stop.is_cancelled() {
                    if pods.list(&future).await.is_err() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            })
        })
        .collect();
    let before = rejected(&admin, "kftray-dev").await;
    ns.apply(&STARVED.replace("NAMESPACE", &ns.name)).await;
    // The API server takes its flow-control configuration up in its own time: the storm is on
    // once the flood itself is refused.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while rejected(&admin, "kftray-flood").await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the flood is never refused"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut project = start_up(cp.restricted_kubeconfig(), &ns);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while rejected(&admin, "kftray-dev").await <= before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the API server never refused kftray\nlog:\n{}",
            project.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let refused = rejected(&admin, "kftray-dev").await - before;
    eprintln!(
        "kftray was refused {refused} times; its log:\n{}",
        project.log()
    );
    assert!(
        project.up_exited().is_none(),
        "kftray up gave up:\n{}",
        project.log()
    );

    // A flood request may be waiting out its resource version: cut it rather than wait.
    stop.cancel();
    for worker in workers {
        worker.abort();
    }
    let addr = project.ready("web").await;
    served_by(&project, addr, |_| true).await;
    drop(project);
    drop(ns);
    cp.shutdown().await;
}
