//! A user's journey end to end, on a real control plane: forwards to a service, a deployment
//! and a label selector by named port, a client that half-closes, two hundred connections at
//! once, the pod in use deleted, status and down from other processes.
//!
//! By default the cluster is the one tests/controlplane builds and starts (kube-apiserver,
//! kube-controller-manager and etcd of the pinned release, `KFTRAY_K8S_VERSION` picks 1.37
//! or 1.34), where Kubernetes' e2e image runs as kubesim's `serve-hostname`. Set
//! `KFTRAY_E2E_KUBECONFIG` (and optionally `KFTRAY_E2E_CONTEXT`) to run them against a
//! cluster of your own instead: each test creates its own namespace there (a Deployment of
//! `agnhost serve-hostname` and a Service) and deletes it afterwards. Everything goes through
//! the Kubernetes API, so what passes here is what is asked of any cluster.

mod support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kubesim::testing::http_get;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;
use support::cluster::Namespace;
use support::{Project, text};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Kubernetes' e2e image; `serve-hostname` answers every HTTP request with the pod's name.
const IMAGE: &str = "registry.k8s.io/e2e-test-images/agnhost:2.53";

/// Where the tests run: the cluster, a client for it, and a namespace of their own.
struct Ground {
    kubeconfig: PathBuf,
    context: Option<String>,
    client: kube::Client,
    namespace: Namespace,
    /// Image pulls and scheduling on a cluster of the user's take far longer.
    pods_timeout: Duration,
    /// A cluster of the user's (`KFTRAY_E2E_KUBECONFIG`), not this machine's.
    external: bool,
}

impl Ground {
    async fn new() -> Ground {
        let external = std::env::var_os("KFTRAY_E2E_KUBECONFIG").map(PathBuf::from);
        let context = std::env::var("KFTRAY_E2E_CONTEXT").ok();
        let kubeconfig = match &external {
            Some(path) => path.clone(),
            None => support::cluster::shared().kubeconfig.clone(),
        };
        let config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
            &kube::config::KubeConfigOptions {
                context: context.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        // Nothing here applies manifests: the kubectl is only named.
        let namespace = Namespace::with_client(
            client.clone(),
            &kubeconfig,
            Path::new("kubectl"),
            "kftray-e2e",
        )
        .await;
        let ground = Ground {
            kubeconfig,
            context,
            client,
            namespace,
            pods_timeout: if external.is_some() {
                Duration::from_secs(300)
            } else {
                support::TIMEOUT
            },
            external: external.is_some(),
        };
        ground.create_web().await;
        ground
    }

    /// A namespace with a two-replica Deployment `web` (container port named `http`) and a
    /// Service `web` whose port `http` targets it by name.
    async fn create_web(&self) {
        let ns = &self.namespace.name;
        let labels = json!({"app": "web"});
        let deployment: Deployment = from(json!({
            "metadata": {"name": "web", "namespace": ns, "labels": labels},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{
                        "name": "web",
                        "image": IMAGE,
                        "args": ["serve-hostname", "--port=8080"],
                        "ports": [{"name": "http", "containerPort": 8080}],
                    }]},
                },
            },
        }));
        Api::<Deployment>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &deployment)
            .await
            .unwrap();
        let service: Service = from(json!({
            "metadata": {"name": "web", "namespace": ns},
            "spec": {
                "selector": labels,
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            },
        }));
        Api::<Service>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &service)
            .await
            .unwrap();
        self.wait_ready_pods(|pods| pods.len() == 2).await;
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.namespace.name)
    }

    /// Names of the Ready, not terminating pods of `web`.
    async fn ready_pods(&self) -> Vec<String> {
        let list = self
            .pods()
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap();
        list.items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .filter_map(|p| p.metadata.name)
            .collect()
    }

    async fn wait_ready_pods(&self, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + self.pods_timeout;
        loop {
            let pods = self.ready_pods().await;
            if done(&pods) {
                return pods;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "pods of web in {} never got there: {pods:?}",
                self.namespace.name
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A project whose kftray.toml points at this ground, with these forwards.
    fn project(&self, forwards: &str) -> Project {
        let mut defaults = format!(
            "[defaults]\nkubeconfig = {:?}\nnamespace = {:?}\n",
            self.kubeconfig.display().to_string(),
            self.namespace.name
        );
        if let Some(context) = &self.context {
            defaults.push_str(&format!("context = {context:?}\n"));
        }
        let mut project = Project::new();
        if self.external {
            // Exec credential plugins (gcloud, aws, kubelogin) read their login from HOME.
            if let Some(home) = std::env::var_os("HOME") {
                project.env = vec![("HOME".into(), home.to_string_lossy().into_owned())];
            }
        }
        std::fs::write(
            project.path("kftray.toml"),
            format!("{defaults}\n{forwards}"),
        )
        .unwrap();
        project
    }
}

fn from<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

/// The forward's local address and the pod it uses, once it is ready.
async fn ready(project: &Project, alias: &str) -> (SocketAddr, String) {
    let status = project
        .wait_for(&format!("{alias} ready with a pod"), |s| {
            s.iter()
                .any(|f| f["alias"] == alias && f["state"] == "ready" && f["pod"].is_string())
        })
        .await;
    let row = status.iter().find(|f| f["alias"] == alias).unwrap();
    (
        support::address(&status, alias),
        row["pod"].as_str().unwrap().to_string(),
    )
}

/// The body of `GET /` through the forward, which is the name of the pod that answered.
async fn pod_behind(addr: SocketAddr) -> String {
    let (code, body) = http_get(addr, "/").await.unwrap();
    assert_eq!(code, 200, "{body}");
    body.trim().to_string()
}

const THREE_TARGETS: &str = "\
[forwards.service]
service = \"web\"
remote_port = \"http\"
local_port = \"any\"

[forwards.deployment]
deployment = \"web\"
remote_port = \"http\"
local_port = \"any\"

[forwards.selector]
selector = \"app=web\"
remote_port = 8080
local_port = \"any\"
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_deployment_and_selector_forwards_carry_traffic_then_down_stops_them() {
    let ground = Ground::new().await;
    let project = ground.project(THREE_TARGETS);
    let out = project.run(&["up", "--detach"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let pods = ground.ready_pods().await;
    let mut addresses = Vec::new();
    for alias in ["service", "deployment", "selector"] {
        let (addr, pod) = ready(&project, alias).await;
        assert!(
            pods.contains(&pod),
            "{alias} uses {pod}, not one of {pods:?}"
        );
        assert_eq!(pod_behind(addr).await, pod, "{alias}");
        addresses.push(addr);
    }

    // A client that sends its request, half-closes, then reads gets the whole reply.
    let mut client = tokio::net::TcpStream::connect(addresses[0]).await.unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    client.shutdown().await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(support::TIMEOUT, client.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(pods.iter().any(|p| reply.contains(p.as_str())), "{reply}");

    // Two hundred at once on one forward: none fails.
    support::gets_at_once(addresses[0], 200, |body| pods.iter().any(|p| p == body)).await;

    let status = project.status().await;
    assert_eq!(
        support::aliases(&status),
        ["deployment", "selector", "service"]
    );
    let down = project.run(&["down"]).await;
    assert!(down.status.success(), "{}", text(&down));
    assert!(project.status().await.is_empty());
    for addr in addresses {
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "{addr} still accepts after down"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pod_in_use_is_deleted_and_the_next_connections_reach_another() {
    let ground = Ground::new().await;
    let project = ground.project(THREE_TARGETS);
    let out = project.run(&["up", "--detach"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let (addr, first) = ready(&project, "service").await;
    assert_eq!(pod_behind(addr).await, first);

    ground
        .pods()
        .delete(&first, &DeleteParams::default())
        .await
        .unwrap();
    // The listener never closes; connections move to a pod that is not the deleted one.
    let deadline = tokio::time::Instant::now() + ground.pods_timeout;
    loop {
        if let Ok((200, body)) = http_get(addr, "/").await
            && body.trim() != first
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never moved off {first}\nlog:\n{}",
            project.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The Deployment replaces the pod, and the forward reports the pod it now uses.
    let pods = ground
        .wait_ready_pods(|pods| pods.len() == 2 && !pods.contains(&first))
        .await;
    project
        .wait_for("status to name a live pod", |s| {
            s.iter().any(|f| {
                f["alias"] == "service"
                    && f["pod"]
                        .as_str()
                        .is_some_and(|p| pods.iter().any(|live| live == p))
            })
        })
        .await;
}
