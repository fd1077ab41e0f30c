//! A whole simulated cluster: API server, controllers, pods' servers, DNS; the handle
//! tests and the `kubesim` binary hold.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;

use crate::api::{ADMIN, Api};
use crate::auth::Users;
use crate::controller::{Controller, pod_ready};
use crate::faults::{FaultState, Faults};
use crate::kubeconfig::{self, Credentials, Entry};
use crate::runtime::Runtime;
use crate::server::ApiServer;
use crate::status::ApiError;
use crate::store::Store;
use crate::tls::{Authority, ClientCert};

/// Which scheme the kubeconfig's server URL uses (the port serves both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Https,
    Http,
}

/// How the kubeconfig's user authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    Token,
    ClientCert,
}

#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Context, cluster and user name in the kubeconfig; default `kubesim`, `kubesim-2`, ...
    pub name: Option<String>,
    /// API port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Image name prefix -> program run as the pod's container (e.g. the relay image).
    pub images: Vec<(String, PathBuf)>,
    /// (image prefix, name, value): the environment those images carry, as a Dockerfile's
    /// ENV does; `$(VAR)` in a value expands from the variables kubesim gives every
    /// container process, and the manifest's env overrides it.
    pub image_env: Vec<(String, String, String)>,
    /// Where to write the kubeconfig; default a fresh directory under the temp dir.
    pub kubeconfig: Option<PathBuf>,
    pub scheme: Scheme,
    pub auth: Auth,
    /// Namespace of the kubeconfig context.
    pub namespace: String,
    /// How often watches with allowWatchBookmarks get a BOOKMARK.
    pub bookmark_interval: Duration,
    /// How long a deleted pod stays Terminating (capped by its grace period).
    pub termination_delay: Duration,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            name: None,
            port: 0,
            images: Vec::new(),
            image_env: Vec::new(),
            kubeconfig: None,
            scheme: Scheme::Https,
            auth: Auth::Token,
            namespace: "default".into(),
            bookmark_interval: Duration::from_secs(5),
            termination_delay: Duration::from_millis(300),
        }
    }
}

impl ClusterOptions {
    /// Pods whose image starts with `prefix` run `program` (the relay image runs the
    /// workspace's `relay-server`), with the manifest's env plus POD_IP, POD_NAME,
    /// POD_NAMESPACE and KUBESIM_NAMESERVER (the cluster DNS, `ip:port`).
    pub fn image(mut self, prefix: &str, program: impl Into<PathBuf>) -> Self {
        self.images.push((prefix.to_string(), program.into()));
        self
    }

    /// An environment variable that images starting with `prefix` carry (see `image_env`).
    /// There is no network namespace per pod here: a program that would listen on its
    /// pod's loopback is told its pod IP this way, e.g. `("LISTEN", "$(POD_IP):7000")`.
    pub fn image_env(mut self, prefix: &str, name: &str, value: &str) -> Self {
        self.image_env
            .push((prefix.to_string(), name.to_string(), value.to_string()));
        self
    }
}

pub(crate) type Weak = std::sync::Weak<Inner>;

pub(crate) struct Inner {
    name: String,
    api: Arc<Api>,
    pub(crate) runtime: Arc<Runtime>,
    server: tokio::sync::Mutex<Option<ApiServer>>,
    addr: SocketAddr,
    authority: Authority,
    tls: Arc<rustls::ServerConfig>,
    admin_token: String,
    admin_cert: Option<ClientCert>,
    opts: ClusterOptions,
    kubeconfig: PathBuf,
    own_dir: Option<PathBuf>,
    controller: JoinHandle<()>,
    poke: Arc<tokio::sync::Notify>,
    faults: Arc<FaultState>,
}

/// A running simulated cluster. Dropping it stops everything.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

static COUNT: AtomicUsize = AtomicUsize::new(0);

impl Cluster {
    pub async fn start(opts: ClusterOptions) -> anyhow::Result<Cluster> {
        let n = COUNT.fetch_add(1, Ordering::SeqCst);
        let name = opts.name.clone().unwrap_or_else(|| {
            if n == 0 {
                "kubesim".into()
            } else {
                format!("kubesim-{}", n + 1)
            }
        });
        let store = Store::new();
        let users = Users::default();
        let admin_token = crate::store::uid().replace('-', "");
        users.add_token(&admin_token, ADMIN);
        let authority = Authority::new()?;
        let admin_cert = match opts.auth {
            Auth::ClientCert => {
                let c = authority.client_cert(ADMIN)?;
                users.add_cert(c.der.clone(), ADMIN);
                Some(c)
            }
            Auth::Token => None,
        };
        let tls = authority.server_config()?;
        let runtime = Arc::new(Runtime::new(
            store.clone(),
            crate::addr::AddressPool::new(),
            opts.images.clone(),
            opts.image_env.clone(),
        ));
        runtime.start_dns().await?;
        let faults = Arc::new(FaultState::default());
        let api = Arc::new(Api {
            store: store.clone(),
            users,
            runtime: runtime.clone(),
            faults: faults.clone(),
            bookmark_interval: opts.bookmark_interval,
            termination_delay: opts.termination_delay,
        });
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            api.create(
                "namespaces",
                "",
                serde_json::json!({"metadata": {"name": ns}}),
            )
            .map_err(api_err)?;
        }
        let server = ApiServer::start(
            api.clone(),
            tls.clone(),
            SocketAddr::from(([127, 0, 0, 1], opts.port)),
        )
        .await?;
        let addr = server.addr;
        let poke = Arc::new(tokio::sync::Notify::new());
        let controller = Arc::new(Controller {
            store,
            runtime: runtime.clone(),
            poke: poke.clone(),
        });
        let controller = tokio::spawn(controller.run());
        let (kubeconfig, own_dir) = match &opts.kubeconfig {
            Some(p) => (p.clone(), None),
            None => {
                let dir = std::env::temp_dir().join(format!(
                    "kubesim-{}-{}",
                    std::process::id(),
                    crate::store::uid()
                ));
                (dir.join("kubeconfig"), Some(dir))
            }
        };
        let inner = Inner {
            name,
            api,
            runtime,
            server: tokio::sync::Mutex::new(Some(server)),
            addr,
            authority,
            tls,
            admin_token,
            admin_cert,
            opts,
            kubeconfig,
            own_dir,
            controller,
            poke,
            faults,
        };
        let cluster = Cluster {
            inner: Arc::new(inner),
        };
        kubeconfig::write(&cluster.inner.kubeconfig, &[cluster.entry()])?;
        Ok(cluster)
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The kubeconfig context naming this cluster.
    pub fn context(&self) -> &str {
        &self.inner.name
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.inner.kubeconfig
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// `https://127.0.0.1:P` (or http, per the options).
    pub fn server_url(&self) -> String {
        let scheme = if self.inner.opts.scheme == Scheme::Http {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}", self.inner.addr)
    }

    pub fn ca_pem(&self) -> String {
        self.inner.authority.ca_pem()
    }

    pub fn admin_token(&self) -> &str {
        &self.inner.admin_token
    }

    /// The cluster DNS server (what a pod's resolv.conf would name).
    pub fn dns_addr(&self) -> Option<SocketAddr> {
        self.inner.runtime.dns_addr()
    }

    /// A name the cluster DNS answers beyond services, as a private zone or CoreDNS's hosts
    /// plugin would: a host that only the cluster knows.
    pub fn add_dns_name(&self, name: &str, ip: std::net::IpAddr) {
        self.inner.runtime.add_dns_name(name, ip);
    }

    /// The kubeconfig entry of this cluster as the admin user.
    pub fn entry(&self) -> Entry {
        let user = match &self.inner.admin_cert {
            Some(c) => Credentials::ClientCert {
                cert_pem: c.cert_pem.clone(),
                key_pem: c.key_pem.clone(),
            },
            None => Credentials::Token(self.inner.admin_token.clone()),
        };
        self.entry_for(user)
    }

    pub fn entry_for(&self, user: Credentials) -> Entry {
        Entry {
            name: self.inner.name.clone(),
            server: self.server_url(),
            ca_pem: self.ca_pem(),
            user,
            namespace: self.inner.opts.namespace.clone(),
        }
    }

    /// Writes a kubeconfig for `user` (a token or a client certificate) to `path`.
    pub fn write_kubeconfig_for(&self, path: &Path, user: Credentials) -> std::io::Result<()> {
        kubeconfig::write(path, &[self.entry_for(user)])
    }

    // ---- users and permissions ----

    /// A new bearer token for `user`.
    pub fn add_token_user(&self, user: &str) -> String {
        let token = crate::store::uid().replace('-', "");
        self.inner.api.users.add_token(&token, user);
        token
    }

    pub fn revoke_token(&self, token: &str) {
        self.inner.api.users.revoke_token(token);
    }

    /// A client certificate signed by the cluster CA with CN = `user`.
    pub fn client_cert(&self, user: &str) -> anyhow::Result<ClientCert> {
        let c = self.inner.authority.client_cert(user)?;
        self.inner.api.users.add_cert(c.der.clone(), user);
        Ok(c)
    }

    /// Takes `verb` (or "*") on `resource` (e.g. "pods", "pods/portforward") away from `user`.
    pub fn deny(&self, user: &str, verb: &str, resource: &str) {
        self.inner.api.users.deny(user, verb, resource);
    }

    pub fn allow(&self, user: &str, verb: &str, resource: &str) {
        self.inner.api.users.allow(user, verb, resource);
    }

    /// The admin user's name (what `deny` takes to restrict the kubeconfig's own user).
    pub fn admin_user(&self) -> &'static str {
        ADMIN
    }

    // ---- objects ----

    /// Applies multi-document Kubernetes YAML: creates what is new, replaces the spec and
    /// labels of what exists. Namespaces are applied first.
    pub fn apply_yaml(&self, yaml: &str) -> anyhow::Result<Vec<Value>> {
        let mut docs = Vec::new();
        for doc in serde_yaml::Deserializer::from_str(yaml) {
            let v: Value = serde::Deserialize::deserialize(doc)?;
            if v.is_null() {
                continue;
            }
            match v.get("kind").and_then(Value::as_str) {
                Some("List") => docs.extend(v["items"].as_array().cloned().unwrap_or_default()),
                _ => docs.push(v),
            }
        }
        docs.sort_by_key(|d| d.get("kind").and_then(Value::as_str) != Some("Namespace"));
        let mut out = Vec::new();
        for d in docs {
            out.push(self.apply(d)?);
        }
        Ok(out)
    }

    /// Creates or updates one object.
    pub fn apply(&self, obj: Value) -> anyhow::Result<Value> {
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        let info = crate::discovery::info_by_kind(kind)
            .ok_or_else(|| anyhow::anyhow!("kubesim does not serve kind {kind:?}"))?;
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let ns = if info.namespaced {
            obj.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or(&self.inner.opts.namespace)
                .to_string()
        } else {
            String::new()
        };
        let store = &self.inner.api.store;
        if !name.is_empty() && store.get(info.name, &ns, &name).is_some() {
            return store
                .update(info.name, &ns, &name, |o| {
                    for k in ["spec", "data"] {
                        if let Some(v) = obj.get(k) {
                            o[k] = v.clone();
                        }
                    }
                    if let Some(l) = obj.pointer("/metadata/labels") {
                        o["metadata"]["labels"] = l.clone();
                    }
                })
                .ok_or_else(|| anyhow::anyhow!("{kind} {name} vanished"));
        }
        self.inner.api.create(info.name, &ns, obj).map_err(api_err)
    }

    pub fn get(&self, resource: &str, ns: &str, name: &str) -> Option<Value> {
        self.inner.api.store.get(resource, ns, name)
    }

    /// Objects of a resource; `ns` None lists every namespace.
    pub fn list(&self, resource: &str, ns: Option<&str>) -> Vec<Value> {
        self.inner.api.store.list(resource, ns).0
    }

    /// Names of the pods in `ns` whose labels match `selector` (label selector syntax).
    pub fn pod_names(&self, ns: &str, selector: &str) -> Vec<String> {
        let sel = crate::selector::LabelSelector::parse(selector).unwrap_or_default();
        self.list("pods", Some(ns))
            .iter()
            .filter(|p| sel.matches(&crate::selector::labels_of(p)))
            .filter_map(|p| {
                p.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect()
    }

    /// Deletes a pod as `kubectl delete pod` does (grace None = the pod's own period).
    pub fn delete_pod(
        &self,
        ns: &str,
        name: &str,
        grace_seconds: Option<u64>,
    ) -> anyhow::Result<()> {
        self.inner
            .api
            .delete("pods", ns, name, grace_seconds)
            .map(|_| ())
            .map_err(api_err)
    }

    pub fn delete(&self, resource: &str, ns: &str, name: &str) -> anyhow::Result<()> {
        self.inner
            .api
            .delete(resource, ns, name, None)
            .map(|_| ())
            .map_err(api_err)
    }

    /// How many port-forward requests (HTTP upgrades) the pod has been sent: a client that
    /// multiplexes sends one per connection, not one per local connection.
    pub fn portforward_requests(&self, ns: &str, pod: &str) -> u64 {
        self.inner.runtime.portforward_requests(ns, pod)
    }

    /// Flips a pod's readiness probe result; endpoints follow.
    pub fn set_ready(&self, ns: &str, pod: &str, ready: bool) -> bool {
        let ok = self.inner.runtime.set_ready(ns, pod, ready);
        self.inner.poke.notify_one();
        ok
    }

    /// Routes a pod's container port to `addr` (any local server a test runs).
    pub fn register_port(&self, ns: &str, pod: &str, port: u16, addr: SocketAddr) {
        self.inner.runtime.register_port(ns, pod, port, addr);
    }

    /// Where a pod's container port really listens.
    pub fn pod_addr(&self, ns: &str, pod: &str, port: u16) -> Option<SocketAddr> {
        self.inner.runtime.resolve(ns, pod, port)
    }

    pub fn pod_ip(&self, ns: &str, pod: &str) -> Option<std::net::Ipv4Addr> {
        self.inner.runtime.pod_ip_of(ns, pod)
    }

    /// Waits until `pred` holds for the object (None = absent), or the timeout passes.
    pub async fn wait_for(
        &self,
        resource: &str,
        ns: &str,
        name: &str,
        timeout: Duration,
        pred: impl Fn(Option<&Value>) -> bool,
    ) -> bool {
        let store = &self.inner.api.store;
        let mut rx = store.subscribe();
        let wait = async {
            loop {
                if pred(store.get(resource, ns, name).as_ref()) {
                    return;
                }
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = rx.recv().await {
                    return;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
            && pred(store.get(resource, ns, name).as_ref())
    }

    /// Waits until the pod exists and is Ready.
    pub async fn wait_ready(&self, ns: &str, pod: &str, timeout: Duration) -> bool {
        self.wait_for("pods", ns, pod, timeout, |p| p.is_some_and(pod_ready))
            .await
    }

    /// Waits until `count` pods matching `selector` in `ns` are Ready and not terminating;
    /// returns their names.
    pub async fn wait_pods_ready(
        &self,
        ns: &str,
        selector: &str,
        count: usize,
        timeout: Duration,
    ) -> Option<Vec<String>> {
        let sel = crate::selector::LabelSelector::parse(selector).ok()?;
        let store = &self.inner.api.store;
        let mut rx = store.subscribe();
        let ready = || -> Option<Vec<String>> {
            let names: Vec<String> = store
                .list("pods", Some(ns))
                .0
                .iter()
                .filter(|p| {
                    sel.matches(&crate::selector::labels_of(p))
                        && pod_ready(p)
                        && !crate::controller::terminating(p)
                })
                .filter_map(|p| {
                    p.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .collect();
            (names.len() == count).then_some(names)
        };
        let wait = async {
            loop {
                if let Some(n) = ready() {
                    return Some(n);
                }
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = rx.recv().await {
                    return None;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.ok().flatten()
    }

    /// Forgets the watch history (etcd compaction): older resourceVersions get 410 Gone.
    pub fn compact(&self) {
        self.inner.api.store.compact();
    }

    pub fn resource_version(&self) -> u64 {
        self.inner.api.store.current_rv()
    }

    pub fn faults(&self) -> Faults {
        Faults {
            state: self.inner.faults.clone(),
            cluster: Arc::downgrade(&self.inner),
        }
    }

    /// Stops the API server, controllers and every pod.
    pub async fn shutdown(&self) {
        if let Some(s) = self.inner.server.lock().await.take() {
            s.stop().await;
        }
        self.inner.controller.abort();
        self.inner.runtime.shutdown();
    }
}

impl Inner {
    pub(crate) async fn restart_api(&self) -> std::io::Result<()> {
        let mut slot = self.server.lock().await;
        if let Some(s) = slot.take() {
            s.stop().await;
        }
        let server = ApiServer::start(self.api.clone(), self.tls.clone(), self.addr).await?;
        *slot = Some(server);
        Ok(())
    }

    pub(crate) async fn kill_pod(&self, ns: &str, pod: &str) -> bool {
        self.api.delete("pods", ns, pod, Some(0)).is_ok()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.controller.abort();
        self.runtime.shutdown();
        if let Ok(mut s) = self.server.try_lock()
            && let Some(s) = s.take()
        {
            s.abort();
        }
        if let Some(dir) = &self.own_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Writes one kubeconfig naming several clusters (one context each; the first is current).
pub fn write_kubeconfig(path: &Path, clusters: &[&Cluster]) -> std::io::Result<()> {
    let entries: Vec<Entry> = clusters.iter().map(|c| c.entry()).collect();
    kubeconfig::write(path, &entries)
}

fn api_err(e: ApiError) -> anyhow::Error {
    anyhow::anyhow!("{} ({})", e.message, e.code)
}
