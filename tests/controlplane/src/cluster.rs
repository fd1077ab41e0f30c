//! Starting, changing and stopping one control plane.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use tokio_util::sync::CancellationToken;

use crate::binaries::{Version, bin_dir};
use crate::network::{self, Slot, cidr};
use crate::pki::Pki;
use crate::process::Component;

/// The kubelet's port on each node IP.
pub const KUBELET_PORT: u16 = 10250;

pub struct Options {
    pub version: Version,
    /// How many Nodes the kubelet registers.
    pub nodes: u8,
    /// `--image PREFIX=PROGRAM`: pods whose image starts with PREFIX run PROGRAM.
    pub images: Vec<(String, PathBuf)>,
    /// `--image-env PREFIX=NAME=VALUE`.
    pub image_env: Vec<(String, String, String)>,
    /// Where certificates, kubeconfigs, etcd's data and logs go (a fresh temp dir if None).
    pub dir: Option<PathBuf>,
    /// Names the cluster DNS answers beyond Services (CoreDNS's `hosts`).
    pub dns_hosts: Vec<(String, std::net::IpAddr)>,
    /// `--feature-gates` of kube-apiserver (`Name=false`).
    pub apiserver_gates: Vec<String>,
    /// `--feature-gates` of the kubelet.
    pub kubelet_gates: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            version: Version::V1_37,
            nodes: 1,
            images: Vec::new(),
            image_env: Vec::new(),
            dir: None,
            dns_hosts: Vec::new(),
            apiserver_gates: Vec::new(),
            kubelet_gates: Vec::new(),
        }
    }
}

impl Options {
    pub fn image(mut self, prefix: &str, program: impl Into<PathBuf>) -> Self {
        self.images.push((prefix.into(), program.into()));
        self
    }

    pub fn image_env(mut self, prefix: &str, name: &str, value: &str) -> Self {
        self.image_env
            .push((prefix.into(), name.into(), value.into()));
        self
    }

    /// Port-forward as clusters before 1.31 serve it (or any with the gate turned off): the
    /// API server passes a WebSocket upgrade through to the kubelet instead of tunnelling
    /// SPDY in it, and the kubelet does not tunnel either.
    pub fn without_websocket_port_forward(mut self) -> Self {
        self.apiserver_gates
            .push("PortForwardWebsockets=false".into());
        if self.version == Version::V1_37 {
            self.kubelet_gates
                .push("ExtendWebSocketsToKubelet=false".into());
        }
        self
    }
}

/// `--feature-gates=…` when there are any.
fn gates_flag(gates: &[String]) -> Option<String> {
    (!gates.is_empty()).then(|| format!("--feature-gates={}", gates.join(",")))
}

pub struct ControlPlane {
    pub version: Version,
    pub bin: PathBuf,
    pub pki: Pki,
    pub server: String,
    pub slot: Slot,
    etcd: Component,
    apiserver: Component,
    controller_manager: Component,
    kubelet_api: Component,
    kubelet: CancellationToken,
    kubelet_task: Option<tokio::task::JoinHandle<()>>,
    _temp: Option<tempfile::TempDir>,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl ControlPlane {
    pub async fn start(opts: Options) -> anyhow::Result<ControlPlane> {
        let started = Instant::now();
        let bin = tokio::task::spawn_blocking({
            let v = opts.version;
            move || bin_dir(v)
        })
        .await??;
        network::ensure_route()?;
        let slot = Slot::claim()?;
        let slot_fd = slot.fd();
        let (dir, temp) = match &opts.dir {
            Some(d) => (d.clone(), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("kftray-controlplane-")
                    .tempdir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        std::fs::create_dir_all(dir.join("logs"))?;
        let logs = dir.join("logs");
        let node_ips: Vec<Ipv4Addr> = (0..opts.nodes).map(|n| slot.node_ip(n)).collect();
        let apiserver_port = free_port()?;
        let server = format!("https://127.0.0.1:{apiserver_port}");
        let services = slot.services();
        let first_service_ip = Ipv4Addr::from(u32::from(services.0) + 1);
        let pki = Pki::write(&dir.join("pki"), &server, first_service_ip, &node_ips)?;

        let (client_port, peer_port) = (free_port()?, free_port()?);
        let etcd_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let etcd = Component::start(
            "etcd",
            bin.join("etcd"),
            strings(&[
                "--name=default",
                &format!("--data-dir={}", dir.join("etcd").display()),
                &format!("--listen-client-urls={etcd_url}"),
                &format!("--advertise-client-urls={etcd_url}"),
                &format!("--listen-peer-urls={peer_url}"),
                &format!("--initial-advertise-peer-urls={peer_url}"),
                &format!("--initial-cluster=default={peer_url}"),
                "--log-level=warn",
                // A test cluster's data is thrown away: no fsync per write.
                "--unsafe-no-fsync",
            ]),
            &logs,
            Some(slot_fd),
        )?;

        let p = |path: &Path| path.display().to_string();
        let apiserver = Component::start(
            "kube-apiserver",
            bin.join("kube-apiserver"),
            strings(&[
                &format!("--etcd-servers={etcd_url}"),
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                &format!("--secure-port={apiserver_port}"),
                &format!("--tls-cert-file={}", p(&pki.apiserver_cert)),
                &format!("--tls-private-key-file={}", p(&pki.apiserver_key)),
                &format!("--client-ca-file={}", p(&pki.ca)),
                &format!("--service-cluster-ip-range={}", cidr(services)),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                &format!("--service-account-key-file={}", p(&pki.sa_pub)),
                &format!("--service-account-signing-key-file={}", p(&pki.sa_key)),
                "--authorization-mode=Node,RBAC",
                "--allow-privileged=true",
                "--kubelet-preferred-address-types=InternalIP",
                &format!(
                    "--kubelet-client-certificate={}",
                    p(&pki.kubelet_client_cert)
                ),
                &format!("--kubelet-client-key={}", p(&pki.kubelet_client_key)),
                &format!("--kubelet-certificate-authority={}", p(&pki.ca)),
                // Its own address is loopback, which Endpoints may not hold.
                "--endpoint-reconciler-type=none",
                "--profiling=false",
            ])
            .into_iter()
            .chain(gates_flag(&opts.apiserver_gates))
            .collect(),
            &logs,
            Some(slot_fd),
        )?;
        let mut cp = ControlPlane {
            version: opts.version,
            bin,
            pki,
            server,
            slot,
            etcd,
            apiserver,
            controller_manager: Component::placeholder(),
            kubelet_api: Component::placeholder(),
            kubelet: CancellationToken::new(),
            kubelet_task: None,
            _temp: temp,
        };
        cp.wait_apiserver_ready(Duration::from_secs(120)).await?;

        cp.controller_manager = Component::start(
            "kube-controller-manager",
            cp.bin.join("kube-controller-manager"),
            strings(&[
                &format!("--kubeconfig={}", p(&cp.pki.controller_manager)),
                &format!(
                    "--authentication-kubeconfig={}",
                    p(&cp.pki.controller_manager)
                ),
                &format!(
                    "--authorization-kubeconfig={}",
                    p(&cp.pki.controller_manager)
                ),
                "--leader-elect=false",
                "--secure-port=0",
                &format!("--service-account-private-key-file={}", p(&cp.pki.sa_key)),
                &format!("--root-ca-file={}", p(&cp.pki.ca)),
                "--use-service-account-credentials=true",
                &format!("--controllers={}", CONTROLLERS.join(",")),
                // Not that of a big cluster: a test sees a rollout or a new Service in
                // well under a second.
                "--concurrent-deployment-syncs=5",
            ]),
            &logs,
            Some(slot_fd),
        )?;
        let nodes: Vec<(String, Ipv4Addr)> = node_ips
            .iter()
            .enumerate()
            .map(|(i, ip)| (format!("node-{i}"), *ip))
            .collect();
        let mut args = strings(&[
            &format!("--kubeconfig={}", p(&cp.pki.kubelet)),
            &format!("--port={KUBELET_PORT}"),
            &format!("--tls-cert-file={}", p(&cp.pki.kubelet_cert)),
            &format!("--tls-private-key-file={}", p(&cp.pki.kubelet_key)),
            &format!("--client-ca-file={}", p(&cp.pki.ca)),
        ]);
        for (name, ip) in &nodes {
            args.push(format!("--node={name},{ip},{}", cidr(cp.slot.pods())));
        }
        args.extend(gates_flag(&opts.kubelet_gates));
        cp.kubelet_api = Component::start(
            "kubelet-api",
            cp.bin.join("kubelet-api"),
            args,
            &logs,
            Some(slot_fd),
        )?;

        let client = cp.client().await?;
        let dns = SocketAddr::new(cp.slot.dns_ip().into(), 53);
        let kubelet_opts = kubesim::kubelet::KubeletOptions {
            nodes: nodes.clone(),
            pods: cp.slot.pods(),
            images: opts.images,
            image_env: opts.image_env,
            dns: Some(dns),
            dns_hosts: opts.dns_hosts,
        };
        cp.kubelet_task = Some(tokio::spawn(kubesim::kubelet::run(
            client.clone(),
            kubelet_opts,
            cp.kubelet.clone(),
        )));
        cp.wait_nodes_ready(&client, nodes.len()).await?;
        cp.apply_yaml(&dns_manifest(cp.slot.dns_ip())).await?;
        cp.wait_pods_ready("kube-system", Duration::from_secs(120))
            .await?;
        tracing::info!(
            "control plane {} up in {:.1} s",
            cp.version.minor(),
            started.elapsed().as_secs_f64()
        );
        Ok(cp)
    }

    /// The API server's address (127.0.0.1:PORT).
    pub fn apiserver_addr(&self) -> SocketAddr {
        self.server
            .trim_start_matches("https://")
            .parse()
            .expect("the API server URL is https://127.0.0.1:PORT")
    }

    /// A copy of the admin's kubeconfig whose server is `server` (a proxy in front).
    pub fn kubeconfig_via(&self, server: &str, path: &Path) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(&self.pki.admin)?;
        std::fs::write(path, text.replace(&self.server, server))?;
        Ok(())
    }

    /// The admin's kubeconfig (system:masters).
    pub fn kubeconfig(&self) -> &Path {
        &self.pki.admin
    }

    /// A user with no rights but those Roles bound to `kftray-dev` give.
    pub fn restricted_kubeconfig(&self) -> &Path {
        &self.pki.restricted
    }

    pub fn kubectl(&self) -> PathBuf {
        self.bin.join("kubectl")
    }

    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        client_for(&self.pki.admin).await
    }

    async fn wait_apiserver_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let client = self.client().await?;
        loop {
            self.etcd.check()?;
            self.apiserver.check()?;
            let req = http::Request::get("/readyz").body(Vec::new())?;
            if let Ok(text) = client.request_text(req).await
                && text.trim() == "ok"
            {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "kube-apiserver not ready after {timeout:?}:\n{}",
                self.apiserver.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_nodes_ready(&mut self, client: &kube::Client, n: usize) -> anyhow::Result<()> {
        let nodes: Api<Node> = Api::all(client.clone());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            self.kubelet_api.check()?;
            let ready = nodes
                .list(&ListParams::default())
                .await
                .map(|l| l.items.iter().filter(|n| node_ready(n)).count())
                .unwrap_or(0);
            if ready >= n {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "nodes not Ready:\n{}",
                self.kubelet_api.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Applies manifests with this release's kubectl (server-side apply).
    pub async fn apply_yaml(&self, yaml: &str) -> anyhow::Result<()> {
        let file = self.pki.dir.join(format!("apply-{}.yaml", rand_suffix()));
        std::fs::write(&file, yaml)?;
        let result = self.apply_file(&file).await;
        let _ = std::fs::remove_file(&file);
        result
    }

    pub async fn apply_file(&self, file: &Path) -> anyhow::Result<()> {
        let out = tokio::process::Command::new(self.kubectl())
            .arg(format!("--kubeconfig={}", self.pki.admin.display()))
            .args(["apply", "--server-side", "-f"])
            .arg(file)
            .output()
            .await?;
        anyhow::ensure!(
            out.status.success(),
            "kubectl apply -f {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    }

    /// Waits until every pod of the namespace (all namespaces for None) is Ready or has
    /// completed.
    pub async fn wait_pods_ready(&self, ns: &str, timeout: Duration) -> anyhow::Result<()> {
        let client = self.client().await?;
        let pods: Api<Pod> = if ns.is_empty() {
            Api::all(client)
        } else {
            Api::namespaced(client, ns)
        };
        let deadline = Instant::now() + timeout;
        loop {
            let list = pods.list(&ListParams::default()).await?;
            let waiting: Vec<String> = list
                .items
                .iter()
                .filter(|p| !pod_ready_or_done(p))
                .map(|p| p.metadata.name.clone().unwrap_or_default())
                .collect();
            // The workloads' pods may not all exist yet: their controllers create them.
            let short = self.workloads_short(ns).await?;
            if waiting.is_empty() && !list.items.is_empty() && short.is_empty() {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "pods not Ready after {timeout:?}: {waiting:?}; workloads without all their \
                 pods Ready: {short:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The Deployments and StatefulSets of `ns` (every namespace if empty) that do not have
    /// as many Ready pods as they ask for.
    async fn workloads_short(&self, ns: &str) -> anyhow::Result<Vec<String>> {
        use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
        let client = self.client().await?;
        let (deployments, statefulsets): (Api<Deployment>, Api<StatefulSet>) = if ns.is_empty() {
            (Api::all(client.clone()), Api::all(client))
        } else {
            (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client, ns),
            )
        };
        let deployments = deployments.list(&ListParams::default()).await?.items;
        let statefulsets = statefulsets.list(&ListParams::default()).await?.items;
        // (kind/name, replicas asked for, replicas Ready)
        let workloads = deployments
            .into_iter()
            .map(|d| {
                let ready = d.status.and_then(|s| s.ready_replicas);
                let name = d.metadata.name.unwrap_or_default();
                (format!("deployment/{name}"), d.spec.replicas, ready)
            })
            .chain(statefulsets.into_iter().map(|s| {
                let ready = s.status.and_then(|s| s.ready_replicas);
                let name = s.metadata.name.unwrap_or_default();
                (format!("statefulset/{name}"), s.spec.replicas, ready)
            }));
        let short = workloads
            .filter(|(_, wanted, ready)| ready.unwrap_or(0) < wanted.unwrap_or(1))
            .map(|(name, _, _)| name)
            .collect();
        Ok(short)
    }

    /// Kills the API server as a crash would and starts it again on the same port.
    pub async fn restart_apiserver(&mut self) -> anyhow::Result<()> {
        self.apiserver.kill();
        self.apiserver.restart()?;
        self.wait_apiserver_ready(Duration::from_secs(120)).await
    }

    /// Restarts the kubelet's API server: every port-forward stream to the node's pods
    /// breaks, as when a kubelet restarts.
    pub fn restart_kubelet_api(&mut self) -> anyhow::Result<()> {
        self.kubelet_api.restart()
    }

    /// Kills etcd as a crash would and starts it again on the same data.
    pub async fn restart_etcd(&mut self) -> anyhow::Result<()> {
        self.etcd.kill();
        self.etcd.restart()?;
        self.wait_apiserver_ready(Duration::from_secs(120)).await
    }

    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    async fn stop(&mut self) {
        self.kubelet.cancel();
        if let Some(task) = self.kubelet_task.take() {
            let _ = task.await;
        }
        for c in [
            &mut self.kubelet_api,
            &mut self.controller_manager,
            &mut self.apiserver,
            &mut self.etcd,
        ] {
            c.stop(Duration::from_secs(5));
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.kubelet.cancel();
    }
}

/// What Deployments, StatefulSets, DaemonSets, Jobs (krelay runs its server as one), Services,
/// garbage collection, namespaces, service accounts and the aggregated ClusterRoles (`admin`,
/// `edit`, `view`: empty without their controller) need; node lifecycle is left out (the
/// kubelet keeps its Nodes Ready).
const CONTROLLERS: &[&str] = &[
    "deployment-controller",
    "replicaset-controller",
    "statefulset-controller",
    "daemonset-controller",
    "job-controller",
    "ttl-after-finished-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "pod-garbage-collector-controller",
    "clusterrole-aggregation-controller",
];

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn rand_suffix() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}

pub async fn client_for(kubeconfig: &Path) -> anyhow::Result<kube::Client> {
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig)?,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    Ok(kube::Client::try_from(config)?)
}

fn node_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_ready_or_done(p: &Pod) -> bool {
    let status = p.status.as_ref();
    if status
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|ph| ph == "Succeeded")
    {
        return true;
    }
    status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Cluster DNS as kubeadm names it: Service `kube-dns` on the tenth ClusterIP, served by a
/// `kubesim/dns` pod that answers from the API server's Services and EndpointSlices.
fn dns_manifest(ip: Ipv4Addr) -> String {
    format!(
        r#"apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {{k8s-app: kube-dns}}
spec:
  clusterIP: {ip}
  selector: {{k8s-app: kube-dns}}
  ports:
    - {{name: dns, port: 53, targetPort: 53, protocol: UDP}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: coredns
  namespace: kube-system
  labels: {{k8s-app: kube-dns}}
spec:
  replicas: 1
  selector:
    matchLabels: {{k8s-app: kube-dns}}
  template:
    metadata:
      labels: {{k8s-app: kube-dns}}
    spec:
      containers:
        - name: coredns
          image: kubesim/dns
          ports:
            - {{name: dns, containerPort: 53, protocol: UDP}}
"#
    )
}
