//! The "kubelet" and "kube-proxy" of the sim: the real servers behind pods (built-in
//! backends or local processes on the pod IP), service proxies on ClusterIPs, cluster DNS.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::addr::AddressPool;
use crate::backend::{Backend, BackendKind};
use crate::dns::DnsServer;
use crate::process::{LocalProcess, RunAs};
use crate::service_proxy::{Protocol, ServiceProxy};
use crate::store::Store;

type PodKey = (String, String);
type Overrides = Arc<Mutex<HashMap<(String, String, u16), SocketAddr>>>;
pub(crate) type Resolver = Arc<dyn Fn(u16) -> Option<SocketAddr> + Send + Sync>;
pub(crate) type Lookup = Arc<dyn Fn(&str) -> Option<Vec<IpAddr>> + Send + Sync>;

struct PodRuntime {
    uid: String,
    ip: Ipv4Addr,
    // containerPort -> where it really listens (the bind may have fallen back to port 0).
    ports: Arc<Mutex<HashMap<u16, SocketAddr>>>,
    backends: Vec<Backend>,
    processes: Vec<Proc>,
    restarts: u32,
    kill: CancellationToken,
    ready: bool,
    restart: RestartPolicy,
}

/// `spec.restartPolicy`: which exited containers the kubelet starts again.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

/// A container running as a local process, with what it takes to start it again.
struct Proc {
    process: LocalProcess,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    label: String,
    user: Option<RunAs>,
    /// The exit code of a process that is not started again.
    exited: Option<i32>,
}

struct ServiceRuntime {
    signature: String,
    _proxies: Vec<ServiceProxy>,
}

pub(crate) struct Runtime {
    store: Store,
    pool: AddressPool,
    images: Vec<(String, PathBuf)>,
    image_env: Vec<(String, String, String)>,
    pods: Arc<Mutex<HashMap<PodKey, PodRuntime>>>,
    // Registered by tests before or after a pod starts: (ns, pod, containerPort) -> address.
    overrides: Overrides,
    services: Mutex<HashMap<PodKey, ServiceRuntime>>,
    dns: Mutex<Option<DnsServer>>,
    // Names the cluster DNS answers beyond services.
    dns_names: Arc<Mutex<HashMap<String, Vec<IpAddr>>>>,
    // uids of pods whose containers are being started.
    starting: Mutex<std::collections::HashSet<String>>,
    // Port-forward requests each pod has been sent, for tests of connection reuse.
    portforwards: Mutex<HashMap<PodKey, u64>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Runtime {
    pub(crate) fn new(
        store: Store,
        pool: AddressPool,
        images: Vec<(String, PathBuf)>,
        image_env: Vec<(String, String, String)>,
    ) -> Self {
        Self {
            store,
            pool,
            images,
            image_env,
            dns_names: Arc::default(),
            pods: Arc::default(),
            overrides: Arc::default(),
            services: Mutex::default(),
            dns: Mutex::default(),
            starting: Mutex::default(),
            portforwards: Mutex::default(),
        }
    }

    pub(crate) fn cluster_ip(&self) -> Ipv4Addr {
        self.pool.cluster_ip()
    }

    /// Starts cluster DNS on a fresh ClusterIP (port 53, or any port without root).
    pub(crate) async fn start_dns(&self) -> std::io::Result<SocketAddr> {
        let ip = IpAddr::V4(self.pool.cluster_ip());
        let lookup = self.lookup();
        let dns = match DnsServer::start(ip, 53, lookup.clone()).await {
            Ok(d) => d,
            Err(_) => DnsServer::start(ip, 0, lookup).await?,
        };
        let addr = dns.addr();
        *lock(&self.dns) = Some(dns);
        Ok(addr)
    }

    pub(crate) fn dns_addr(&self) -> Option<SocketAddr> {
        lock(&self.dns).as_ref().map(DnsServer::addr)
    }

    pub(crate) fn add_dns_name(&self, name: &str, ip: IpAddr) {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        lock(&self.dns_names).entry(name).or_default().push(ip);
    }

    /// `svc.ns.svc.cluster.local`, `svc.ns.svc` and `svc.ns` give the ClusterIP (the pod IPs
    /// for a headless service); names added with `add_dns_name` give their addresses.
    pub(crate) fn lookup(&self) -> Lookup {
        let (store, names) = (self.store.clone(), self.dns_names.clone());
        Arc::new(move |name: &str| {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if let Some(ips) = lock(&names).get(&name) {
                return Some(ips.clone());
            }
            let name = name.strip_suffix(".cluster.local").unwrap_or(&name);
            let name = name.strip_suffix(".svc").unwrap_or(name);
            let (svc, ns) = name.split_once('.')?;
            if ns.contains('.') {
                return None;
            }
            let s = store.get("services", ns, svc)?;
            match s.pointer("/spec/clusterIP").and_then(Value::as_str) {
                Some("None") | None => Some(
                    ready_endpoints(&store, ns, svc)
                        .iter()
                        .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
                        .filter_map(|a| a.as_str()?.parse().ok())
                        .collect(),
                ),
                Some(ip) => Some(vec![ip.parse().ok()?]),
            }
        })
    }

    pub(crate) fn has_pod(&self, ns: &str, name: &str, uid: &str) -> bool {
        lock(&self.pods)
            .get(&(ns.into(), name.into()))
            .is_some_and(|p| p.uid == uid)
    }

    /// Claims the start of a pod's containers; false if a start is already under way.
    pub(crate) fn begin_start(&self, uid: &str) -> bool {
        lock(&self.starting).insert(uid.to_string())
    }

    pub(crate) fn end_start(&self, uid: &str) {
        lock(&self.starting).remove(uid);
    }

    pub(crate) fn pod_keys(&self) -> Vec<(String, String, String)> {
        lock(&self.pods)
            .iter()
            .map(|((n, p), r)| (n.clone(), p.clone(), r.uid.clone()))
            .collect()
    }

    /// Starts a pod's containers; returns the pod IP and whether every port listens.
    pub(crate) async fn start_pod(
        &self,
        pod: &Value,
        dns: Option<SocketAddr>,
    ) -> (Ipv4Addr, bool, Option<String>) {
        let ns = pod
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string();
        let name = pod
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let uid = pod
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let ip = self.pool.pod_ip();
        let ports: Arc<Mutex<HashMap<u16, SocketAddr>>> = Arc::default();
        let mut backends = Vec::new();
        let mut processes = Vec::new();
        let mut ok = true;
        let mut error = None;
        for c in pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let image = c["image"].as_str().unwrap_or_default();
            let cports: Vec<(u16, bool)> = c["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    let port = u16::try_from(p["containerPort"].as_u64()?).ok()?;
                    Some((port, p["protocol"].as_str() == Some("UDP")))
                })
                .collect();
            if let Some((_, program)) = self
                .images
                .iter()
                .find(|(prefix, _)| image.starts_with(prefix.as_str()))
            {
                let pod_env = container_env(c, &ns, &name, ip, dns);
                // The image's ENV first, so that the manifest's env overrides it.
                let env: Vec<(String, String)> = self
                    .image_env
                    .iter()
                    .filter(|(prefix, _, _)| image.starts_with(prefix.as_str()))
                    .map(|(_, k, v)| (k.clone(), expand(v, &pod_env)))
                    .chain(pod_env.iter().cloned())
                    .collect();
                let args: Vec<String> = command_args(c).iter().map(|a| expand(a, &env)).collect();
                let label = format!("{ns}/{name}");
                let user = run_as(pod, c);
                match LocalProcess::spawn(program, &args, &env, &label, user) {
                    Ok(process) => processes.push(Proc {
                        process,
                        program: program.clone(),
                        args,
                        env,
                        label,
                        user,
                        exited: None,
                    }),
                    Err(e) => {
                        ok = false;
                        error = Some(format!("failed to start {}: {e}", program.display()));
                        continue;
                    }
                }
                for (port, udp) in &cports {
                    let addr = SocketAddr::new(IpAddr::V4(ip), *port);
                    lock(&ports).insert(*port, addr);
                    // A UDP port cannot be probed by connecting; the process binds it as it
                    // starts, as it binds its TCP ports.
                    if !udp && !wait_listening(addr).await {
                        ok = false;
                    }
                }
                continue;
            }
            for (port, udp) in cports {
                let kind = match image_kind(image) {
                    "http" => BackendKind::Http,
                    "udp-echo" => BackendKind::UdpEcho,
                    "dns" => BackendKind::Dns(self.lookup()),
                    _ if udp => BackendKind::UdpEcho,
                    _ => BackendKind::TcpEcho,
                };
                match Backend::start(kind, IpAddr::V4(ip), port, &name).await {
                    Ok(b) => {
                        lock(&ports).insert(port, b.addr());
                        backends.push(b);
                    }
                    Err(e) => {
                        ok = false;
                        error = Some(format!("{image}: cannot listen on {ip}:{port}: {e}"));
                    }
                }
            }
        }
        let rt = PodRuntime {
            uid,
            ip,
            ports,
            backends,
            processes,
            restarts: 0,
            kill: CancellationToken::new(),
            ready: true,
            restart: match pod.pointer("/spec/restartPolicy").and_then(Value::as_str) {
                Some("Never") => RestartPolicy::Never,
                Some("OnFailure") => RestartPolicy::OnFailure,
                _ => RestartPolicy::Always,
            },
        };
        if let Some(old) = lock(&self.pods).insert((ns, name), rt) {
            stop(old);
        }
        (ip, ok, error)
    }

    pub(crate) fn stop_pod(&self, ns: &str, name: &str) {
        let old = lock(&self.pods).remove(&(ns.into(), name.into()));
        if let Some(old) = old {
            stop(old);
        }
    }

    /// Notes container processes that exited and starts them again as the pod's
    /// restartPolicy says (Always; OnFailure for a non-zero exit; Never); true if anything
    /// changed.
    pub(crate) fn reap_exited(&self) -> bool {
        let mut changed = false;
        for pod in lock(&self.pods).values_mut() {
            for p in &mut pod.processes {
                if p.exited.is_some() {
                    continue;
                }
                let Some(code) = p.process.exit_code() else {
                    continue;
                };
                let again = match pod.restart {
                    RestartPolicy::Always => true,
                    RestartPolicy::OnFailure => code != 0,
                    RestartPolicy::Never => false,
                };
                if !again {
                    p.exited = Some(code);
                    changed = true;
                } else if let Ok(new) =
                    LocalProcess::spawn(&p.program, &p.args, &p.env, &p.label, p.user)
                {
                    p.process = new;
                    pod.restarts += 1;
                    changed = true;
                }
            }
        }
        changed
    }

    /// The exit code of a pod whose containers all ran as processes that exited for good
    /// (the first non-zero one, else 0): its phase is then Succeeded or Failed.
    pub(crate) fn exited(&self, ns: &str, name: &str) -> Option<i32> {
        let pods = lock(&self.pods);
        let pod = pods.get(&(ns.into(), name.into()))?;
        if pod.processes.is_empty() || !pod.backends.is_empty() {
            return None;
        }
        let codes: Option<Vec<i32>> = pod.processes.iter().map(|p| p.exited).collect();
        codes.map(|codes| codes.into_iter().find(|c| *c != 0).unwrap_or(0))
    }

    pub(crate) fn restarts(&self, ns: &str, name: &str) -> u32 {
        lock(&self.pods)
            .get(&(ns.into(), name.into()))
            .map_or(0, |p| p.restarts)
    }

    pub(crate) fn set_ready(&self, ns: &str, name: &str, ready: bool) -> bool {
        match lock(&self.pods).get_mut(&(ns.into(), name.into())) {
            Some(p) => {
                p.ready = ready;
                true
            }
            None => false,
        }
    }

    pub(crate) fn is_ready(&self, ns: &str, name: &str) -> Option<bool> {
        lock(&self.pods)
            .get(&(ns.into(), name.into()))
            .map(|p| p.ready)
    }

    pub(crate) fn pod_ip_of(&self, ns: &str, name: &str) -> Option<Ipv4Addr> {
        lock(&self.pods)
            .get(&(ns.into(), name.into()))
            .map(|p| p.ip)
    }

    pub(crate) fn register_port(&self, ns: &str, pod: &str, port: u16, addr: SocketAddr) {
        lock(&self.overrides).insert((ns.into(), pod.into(), port), addr);
    }

    pub(crate) fn resolve(&self, ns: &str, pod: &str, port: u16) -> Option<SocketAddr> {
        resolve(&self.pods, &self.overrides, ns, pod, port)
    }

    /// What the port-forward handler needs: a port resolver and the pod's kill switch.
    /// Where a port-forward to the pod goes, counted as one more port-forward request.
    pub(crate) fn target(&self, ns: &str, pod: &str) -> Option<(Resolver, CancellationToken)> {
        let kill = lock(&self.pods).get(&(ns.into(), pod.into()))?.kill.clone();
        *lock(&self.portforwards)
            .entry((ns.into(), pod.into()))
            .or_default() += 1;
        let (pods, overrides) = (self.pods.clone(), self.overrides.clone());
        let (ns, pod) = (ns.to_string(), pod.to_string());
        Some((
            Arc::new(move |port| resolve(&pods, &overrides, &ns, &pod, port)),
            kill,
        ))
    }

    pub(crate) fn portforward_requests(&self, ns: &str, pod: &str) -> u64 {
        lock(&self.portforwards)
            .get(&(ns.into(), pod.into()))
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn drop_portforwards(&self, ns: &str, pod: &str) -> bool {
        match lock(&self.pods).get_mut(&(ns.into(), pod.into())) {
            Some(p) => {
                p.kill.cancel();
                p.kill = CancellationToken::new();
                true
            }
            None => false,
        }
    }

    /// Makes the service's proxies match its spec; endpoints are read live from the store.
    pub(crate) async fn sync_service(&self, svc: &Value) {
        let ns = svc
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string();
        let name = svc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let ip = svc
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<IpAddr>().ok());
        let ports = svc.pointer("/spec/ports").cloned().unwrap_or_default();
        let signature = format!("{ip:?}{ports}");
        if lock(&self.services)
            .get(&(ns.clone(), name.clone()))
            .is_some_and(|s| s.signature == signature)
        {
            return;
        }
        // A changed Service (a new targetPort, say) keeps its ClusterIP and ports: the old
        // proxies let go of them first, or the new ones could not bind them.
        drop(lock(&self.services).remove(&(ns.clone(), name.clone())));
        let mut proxies = Vec::new();
        if let Some(ip) = ip {
            for p in ports.as_array().into_iter().flatten() {
                let Some(port) = p["port"].as_u64().and_then(|p| u16::try_from(p).ok()) else {
                    continue;
                };
                let proto = if p["protocol"].as_str() == Some("UDP") {
                    Protocol::Udp
                } else {
                    Protocol::Tcp
                };
                let endpoints =
                    self.endpoints_fn(&ns, &name, p["name"].as_str().unwrap_or_default());
                match ServiceProxy::start(ip, port, proto, endpoints).await {
                    Ok(p) => proxies.push(p),
                    Err(e) => {
                        tracing::warn!("service {ns}/{name}: cannot listen on {ip}:{port}: {e}")
                    }
                }
            }
        }
        lock(&self.services).insert(
            (ns, name),
            ServiceRuntime {
                signature,
                _proxies: proxies,
            },
        );
    }

    pub(crate) fn forget_services_except(&self, keep: &[(String, String)]) {
        lock(&self.services).retain(|k, _| keep.contains(k));
    }

    fn endpoints_fn(
        &self,
        ns: &str,
        svc: &str,
        port_name: &str,
    ) -> Arc<dyn Fn() -> Vec<SocketAddr> + Send + Sync> {
        let (store, pods, overrides) = (
            self.store.clone(),
            self.pods.clone(),
            self.overrides.clone(),
        );
        let (ns, svc, port_name) = (ns.to_string(), svc.to_string(), port_name.to_string());
        Arc::new(move || {
            let mut out = Vec::new();
            for slice in slices_of(&store, &ns, &svc) {
                let port = slice["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|p| p["name"].as_str().unwrap_or_default() == port_name)
                    .and_then(|p| p["port"].as_u64())
                    .and_then(|p| u16::try_from(p).ok());
                let Some(port) = port else { continue };
                for e in slice["endpoints"].as_array().into_iter().flatten() {
                    if e.pointer("/conditions/ready") == Some(&Value::Bool(false)) {
                        continue;
                    }
                    let pod = e.pointer("/targetRef/name").and_then(Value::as_str);
                    let resolved = pod.and_then(|pod| resolve(&pods, &overrides, &ns, pod, port));
                    let direct = e
                        .pointer("/addresses/0")
                        .and_then(Value::as_str)
                        .and_then(|ip| ip.parse().ok())
                        .map(|ip| SocketAddr::new(ip, port));
                    if let Some(addr) = resolved.or(direct) {
                        out.push(addr);
                    }
                }
            }
            out
        })
    }

    /// Stops a deleted pod as a kubelet does: SIGTERM to its processes, SIGKILL to those
    /// still running after the grace period; built-in servers stop at once.
    pub(crate) async fn terminate_pod(&self, ns: &str, name: &str, grace: Duration) {
        let Some(mut pod) = lock(&self.pods).remove(&(ns.into(), name.into())) else {
            return;
        };
        for b in &pod.backends {
            b.kill();
        }
        for p in &mut pod.processes {
            p.process.signal(libc::SIGTERM);
        }
        let deadline = tokio::time::Instant::now() + grace;
        while tokio::time::Instant::now() < deadline
            && pod.processes.iter_mut().any(|p| p.process.is_running())
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop(pod);
    }

    pub(crate) fn shutdown(&self) {
        let pods: Vec<PodRuntime> = lock(&self.pods).drain().map(|(_, p)| p).collect();
        pods.into_iter().for_each(stop);
        lock(&self.services).clear();
        lock(&self.dns).take();
    }
}

/// The EndpointSlices of a service, as kube-proxy and cluster DNS read them.
fn slices_of(store: &Store, ns: &str, svc: &str) -> Vec<Value> {
    store
        .list("endpointslices", Some(ns))
        .0
        .into_iter()
        .filter(|s| {
            s.pointer("/metadata/labels/kubernetes.io~1service-name")
                .and_then(Value::as_str)
                == Some(svc)
        })
        .collect()
}

/// Endpoints of a service's slices that are not marked not-ready.
fn ready_endpoints(store: &Store, ns: &str, svc: &str) -> Vec<Value> {
    slices_of(store, ns, svc)
        .iter()
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .filter(|e| e.pointer("/conditions/ready") != Some(&Value::Bool(false)))
        .collect()
}

fn resolve(
    pods: &Mutex<HashMap<PodKey, PodRuntime>>,
    overrides: &Mutex<HashMap<(String, String, u16), SocketAddr>>,
    ns: &str,
    pod: &str,
    port: u16,
) -> Option<SocketAddr> {
    if let Some(a) = lock(overrides).get(&(ns.into(), pod.into(), port)) {
        return Some(*a);
    }
    let pods = lock(pods);
    let p = pods.get(&(ns.into(), pod.into()))?;
    let known = lock(&p.ports).get(&port).copied();
    // A port the manifest does not declare still reaches the pod IP, as in a cluster.
    Some(known.unwrap_or(SocketAddr::new(IpAddr::V4(p.ip), port)))
}

fn stop(mut p: PodRuntime) {
    p.kill.cancel();
    for b in &p.backends {
        b.kill();
    }
    for proc in &mut p.processes {
        proc.process.kill();
    }
}

/// `kubesim/http` -> "http"; anything unknown behaves as a TCP echo server.
fn image_kind(image: &str) -> &str {
    let base = image.split('@').next().unwrap_or(image);
    let base = base
        .rsplit_once(':')
        .filter(|(_, tag)| !tag.contains('/'))
        .map_or(base, |(b, _)| b);
    base.strip_prefix("kubesim/").unwrap_or("echo")
}

/// The user a container asks to run as: its own `securityContext.runAsUser` (and group), else
/// the pod's. The group defaults to the user's number.
fn run_as(pod: &Value, c: &Value) -> Option<RunAs> {
    let field = |name: &str| {
        c.pointer(&format!("/securityContext/{name}"))
            .or_else(|| pod.pointer(&format!("/spec/securityContext/{name}")))
            .and_then(Value::as_u64)
            .and_then(|id| u32::try_from(id).ok())
    };
    let uid = field("runAsUser")?;
    Some(RunAs {
        uid,
        gid: field("runAsGroup").unwrap_or(uid),
    })
}

fn command_args(c: &Value) -> Vec<String> {
    ["command", "args"]
        .iter()
        .flat_map(|k| c[*k].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(str::to_string))
        .skip(usize::from(
            c["command"].as_array().is_some_and(|a| !a.is_empty()),
        ))
        .collect()
}

fn container_env(
    c: &Value,
    ns: &str,
    name: &str,
    ip: Ipv4Addr,
    dns: Option<SocketAddr>,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = c["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_string(),
                e["value"].as_str().unwrap_or_default().to_string(),
            ))
        })
        .collect();
    env.push(("POD_IP".into(), ip.to_string()));
    env.push(("POD_NAME".into(), name.into()));
    env.push(("POD_NAMESPACE".into(), ns.into()));
    if let Some(dns) = dns {
        env.push(("KUBESIM_NAMESERVER".into(), dns.to_string()));
    }
    env
}

/// `$(VAR)` in command and args expands from the container's env, as the kubelet does;
/// `$$(VAR)` escapes it and unknown names stay as written.
fn expand(arg: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = arg;
    while let Some(i) = rest.find("$(") {
        if i > 0 && rest[..i].ends_with('$') {
            out.push_str(&rest[..i - 1]);
            out.push_str("$(");
            rest = &rest[i + 2..];
            continue;
        }
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find(')') {
            Some(j) => {
                let name = &after[..j];
                match env.iter().rev().find(|(k, _)| k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => out.push_str(&rest[i..i + 2 + j + 1]),
                }
                rest = &after[j + 1..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

async fn wait_listening(addr: SocketAddr) -> bool {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_kinds() {
        assert_eq!(image_kind("kubesim/http"), "http");
        assert_eq!(image_kind("kubesim/udp-echo:1.0"), "udp-echo");
        assert_eq!(image_kind("postgres:16"), "echo");
        assert_eq!(image_kind("registry:5000/kubesim/dns"), "echo");
    }

    #[test]
    fn expands_env_references() {
        let env = vec![("POD_IP".to_string(), "127.244.0.9".to_string())];
        assert_eq!(
            expand("--listen=$(POD_IP):80", &env),
            "--listen=127.244.0.9:80"
        );
        assert_eq!(
            expand("$$(POD_IP) $(NOPE) $(", &env),
            "$(POD_IP) $(NOPE) $("
        );
    }

    #[test]
    fn command_skips_program() {
        let c = serde_json::json!({"command": ["relay-server", "--x"], "args": ["--y"]});
        assert_eq!(command_args(&c), vec!["--x", "--y"]);
        let c = serde_json::json!({"args": ["--y"]});
        assert_eq!(command_args(&c), vec!["--y"]);
    }
}
