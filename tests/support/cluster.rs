//! The real control plane the tests share (one per test binary, tests/controlplane) and
//! namespaces of their own on it, set up with that release's kubectl.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace as NamespaceObject, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kubesim::testing::{TIMEOUT, workspace_bin};

/// The relay image of kftray's built-in manifest: the cluster runs this workspace's
/// relay-server for it. With no network namespace per pod the relay listens on its pod IP
/// (what a real pod's loopback is to a port-forward), and cluster DNS is its nameserver
/// (what a real pod's resolv.conf names).
pub const RELAY_IMAGE: &str = "ghcr.io/kftray/kftray-relay";
/// Kubernetes' e2e image: `agnhost serve-hostname` runs as kubesim's `serve-hostname`.
pub const AGNHOST: &str = "registry.k8s.io/e2e-test-images/agnhost";
/// A pod image that runs Python (Debian's): its args are a script and the script's own.
pub const PYTHON_IMAGE: &str = "kftray-test/python";
/// A host only the cluster's DNS knows (to this machine, it is its loopback).
pub const PRIVATE_HOST: &str = "db.private.example";

/// A Deployment `web` of two `kubesim/http` pods (container port `http`, 8080) and a
/// Service `web` whose port `http` (80) targets it by name.
pub const WEB: &str = "
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: kubesim/http
          ports:
            - {name: http, containerPort: 8080}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
    - {name: http, port: 80, targetPort: http}
";

/// How every test binary's control plane is started, so that they all see one cluster.
pub fn options() -> controlplane::Options {
    let relay = workspace_bin("relay-server")
        .expect("the relay-server binary is not built: run `cargo build -p kftray-relay`");
    let kubesim = workspace_bin("kubesim").expect("run `cargo build -p kubesim`");
    controlplane::Options {
        version: controlplane::Version::from_env().unwrap(),
        dns_hosts: vec![(PRIVATE_HOST.into(), "127.0.0.1".parse().unwrap())],
        ..Default::default()
    }
    .image(RELAY_IMAGE, relay)
    .image_env(RELAY_IMAGE, "RELAY_LISTEN", "$(POD_IP):7000")
    .image_env(RELAY_IMAGE, "RELAY_NAMESERVER", "$(KUBESIM_NAMESERVER)")
    // A local pod has no loopback of its own: a reverse forward's port is on its pod IP.
    .image_env(RELAY_IMAGE, "RELAY_EXPOSE_ADDRESS", "$(POD_IP)")
    .image(AGNHOST, kubesim)
    .image(PYTHON_IMAGE, "/usr/bin/python3")
}

pub fn shared() -> &'static controlplane::shared::Shared {
    controlplane::shared::shared(options)
}

/// A namespace of the test's own, deleted when dropped.
pub struct Namespace {
    pub name: String,
    pub client: kube::Client,
    pub kubeconfig: PathBuf,
    kubectl: PathBuf,
}

impl Namespace {
    /// Writes the project's kftray.toml: `forwards` in this namespace of the shared control
    /// plane.
    pub fn configure(&self, project: &super::Project, forwards: &str) {
        self.configure_as(project, &shared().kubeconfig, forwards);
    }

    /// The same through `kubeconfig` (another user's, or another way to the API server).
    pub fn configure_as(&self, project: &super::Project, kubeconfig: &Path, forwards: &str) {
        std::fs::write(
            project.path("kftray.toml"),
            format!(
                "[defaults]\nkubeconfig = {:?}\nnamespace = {:?}\n\n{forwards}",
                kubeconfig.display().to_string(),
                self.name,
            ),
        )
        .unwrap();
    }

    /// A new project of `forwards` in this namespace, reached through `kubeconfig`, not
    /// started.
    pub fn project_as(&self, kubeconfig: &Path, forwards: &str) -> super::Project {
        let project = super::Project::new();
        self.configure_as(&project, kubeconfig, forwards);
        project
    }

    /// A new project of `forwards` in this namespace, not started.
    pub fn project(&self, forwards: &str) -> super::Project {
        let project = super::Project::new();
        self.configure(&project, forwards);
        project
    }

    /// A fresh namespace on the shared control plane.
    pub async fn new(prefix: &str) -> Namespace {
        let shared = shared();
        Namespace::on(&shared.kubeconfig, &shared.kubectl, prefix).await
    }

    /// A fresh namespace on the shared control plane with the two web pods Ready.
    pub async fn with_web(prefix: &str) -> Namespace {
        let ns = Namespace::new(prefix).await;
        ns.apply(WEB).await;
        ns.wait_ready("app=web", 2).await;
        ns
    }

    pub async fn on(kubeconfig: &Path, kubectl: &Path, prefix: &str) -> Namespace {
        Namespace::with_client(client(kubeconfig).await, kubeconfig, kubectl, prefix).await
    }

    /// A fresh namespace through `client` (a context of `kubeconfig` of the caller's choice).
    pub async fn with_client(
        client: kube::Client,
        kubeconfig: &Path,
        kubectl: &Path,
        prefix: &str,
    ) -> Namespace {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("{prefix}-{}-{nanos}", std::process::id());
        let ns: NamespaceObject =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
        Api::<NamespaceObject>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        Namespace {
            name,
            client,
            kubeconfig: kubeconfig.to_path_buf(),
            kubectl: kubectl.to_path_buf(),
        }
    }

    /// `kubectl apply -n NAME -f -` of these manifests.
    pub async fn apply(&self, yaml: &str) {
        use tokio::io::AsyncWriteExt;
        let mut child = tokio::process::Command::new(&self.kubectl)
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args(["apply", "-n", &self.name, "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(yaml.as_bytes()).await.unwrap();
        drop(stdin);
        let out = child.wait_with_output().await.unwrap();
        assert!(
            out.status.success(),
            "kubectl apply: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Names of the pods matching `selector` that are not being deleted, sorted.
    pub async fn pod_names(&self, selector: &str) -> Vec<String> {
        let list = self
            .pods()
            .list(&ListParams::default().labels(selector))
            .await
            .unwrap();
        let mut names: Vec<String> = list
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| p.metadata.name)
            .collect();
        names.sort();
        names
    }

    /// Waits until `n` pods matching `selector` are Ready; returns their names.
    pub async fn wait_ready(&self, selector: &str, n: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let list = self
                .pods()
                .list(&ListParams::default().labels(selector))
                .await
                .unwrap();
            let ready: Vec<String> = list
                .items
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none() && is_ready(p))
                .filter_map(|p| p.metadata.name)
                .collect();
            if ready.len() == n {
                return ready;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{selector} in {}: {ready:?} Ready, not {n}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Drop cannot await, and the test's runtime is shutting down: a runtime of its own.
        let (client, ns) = (self.client.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let _ = Api::<NamespaceObject>::all(client)
                    .delete(&ns, &DeleteParams::background())
                    .await;
            });
        })
        .join();
    }
}

pub fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub async fn client(kubeconfig: &Path) -> kube::Client {
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig).unwrap(),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// The shared cluster's API server address.
pub fn api_server() -> SocketAddr {
    shared()
        .server
        .trim_start_matches("https://")
        .parse()
        .unwrap()
}

/// The shared cluster's kubeconfig, written to `dir/name` with `server` as the API server.
pub fn kubeconfig_to(dir: &Path, name: &str, server: &str) -> PathBuf {
    let cluster = shared();
    let text = std::fs::read_to_string(&cluster.kubeconfig).unwrap();
    assert!(text.contains(&cluster.server), "no server line to move");
    let kubeconfig = dir.join(name);
    std::fs::write(&kubeconfig, text.replace(&cluster.server, server)).unwrap();
    kubeconfig
}
