//! The cluster the benchmark runs against, as a process of its own so that its CPU is not the
//! load generator's: `kubesim serve`, or with `--real` the real control plane
//! (`controlplane serve`), with the bench fixture, whose pod runs this very binary's
//! `backend`.

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::Pod;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The programs the benchmark drives, all from the same (release) build.
pub struct Binaries {
    pub kftray: PathBuf,
    pub kubesim: PathBuf,
    pub relay_server: PathBuf,
    /// The real control plane's launcher, for `--real`.
    pub controlplane: Option<PathBuf>,
    /// Where `scripts/peers.sh` installs the peers (target/peers/bin).
    peers: Option<PathBuf>,
    pub bench: PathBuf,
}

impl Binaries {
    /// The binaries beside this one: `scripts/bench.sh` builds them all in one profile.
    pub fn find() -> anyhow::Result<Binaries> {
        let bench = std::env::current_exe()?;
        let dir = bench
            .parent()
            .context("the bench binary has no directory")?;
        let find = |name: &str| {
            let path = dir.join(name);
            path.is_file().then_some(path).with_context(|| {
                format!(
                    "{name} not found beside {}: run scripts/bench.sh",
                    bench.display()
                )
            })
        };
        Ok(Binaries {
            kftray: find("kftray")?,
            kubesim: find("kubesim")?,
            relay_server: find("relay-server")?,
            controlplane: find("controlplane").ok(),
            peers: dir.parent().map(|target| target.join("peers/bin")),
            bench: bench.clone(),
        })
    }
}

impl Binaries {
    /// A peer's program, when `scripts/peers.sh` installed it.
    pub fn peer(&self, name: &str) -> Option<PathBuf> {
        Some(self.peers.as_ref()?.join(name)).filter(|p| p.is_file())
    }
}

/// krelay's in-cluster server, which the cluster maps to the installed krelay-server.
pub const KRELAY_IMAGE: &str = "ghcr.io/knight42/krelay-server";

/// kftui's relay for UDP, which the cluster maps to an installed kftray-server.
const KFTUI_RELAY_IMAGE: &str = "ghcr.io/hcavarsan/kftray-server";

/// kftray's default relay image, which the cluster maps to the relay-server binary.
const RELAY_IMAGE: &str = "ghcr.io/kftray/kftray-relay";

pub struct Sim {
    child: Child,
    /// The processes whose CPU each forwarder's protocol also costs: kubesim, or the real
    /// API server and kubelet.
    pub api_pids: Vec<u32>,
    pub kubeconfig: PathBuf,
    /// The benchmark pod's IP: where its backends listen.
    pub pod_ip: IpAddr,
    /// What the cluster is, for the report: "kubesim" or "Kubernetes 1.37".
    pub name: String,
    /// The kubectl built with the real control plane, beside its kube-apiserver.
    pub kubectl_built: Option<PathBuf>,
}

impl Sim {
    /// kubesim, or with `real` ("1.37", "1.34") the real control plane of that release, with
    /// the bench fixture applied and its pod's backend listening.
    pub async fn start(bins: &Binaries, work: &Path, real: Option<&str>) -> anyhow::Result<Sim> {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixture.yaml");
        let mut command = match real {
            None => {
                let mut c = Command::new(&bins.kubesim);
                c.arg("serve")
                    .arg("--kubeconfig")
                    .arg(work.join("kubeconfig"));
                c
            }
            Some(version) => {
                let program = bins.controlplane.as_ref().with_context(
                    || "controlplane not found beside the bench binary: run scripts/bench.sh",
                )?;
                let mut c = Command::new(program);
                c.args(["serve", "--version", version]);
                c
            }
        };
        // Relay pods run the relay-server of this build, on their pod IP (a simulated pod has
        // no loopback of its own) with the cluster DNS as their resolver.
        command
            .arg("--fixture")
            .arg(&fixture)
            .arg("--image")
            .arg(format!("kftray-bench/={}", bins.bench.display()))
            .arg("--image")
            .arg(format!("{RELAY_IMAGE}={}", bins.relay_server.display()));
        for (image, server) in [
            (KRELAY_IMAGE, "krelay-server"),
            (KFTUI_RELAY_IMAGE, "kftray-server"),
        ] {
            if let Some(server) = bins.peer(server) {
                command
                    .arg("--image")
                    .arg(format!("{image}={}", server.display()));
            }
        }
        for env in [
            "RELAY_LISTEN=$(POD_IP):7000",
            "RELAY_NAMESERVER=$(KUBESIM_NAMESERVER)",
            "RELAY_EXPOSE_ADDRESS=$(POD_IP)",
        ] {
            command
                .arg("--image-env")
                .arg(format!("{RELAY_IMAGE}={env}"));
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the cluster")?;
        let stdout = child.stdout.take().context("the cluster's stdout")?;
        let ready = tokio::task::spawn_blocking(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .find_map(|line| line.strip_prefix("export KUBECONFIG=").map(PathBuf::from))
        });
        // The real control plane builds its Go binaries first if they are missing.
        let patience = Duration::from_secs(if real.is_some() { 3600 } else { 60 });
        let Some(kubeconfig) = tokio::time::timeout(patience, ready).await?? else {
            bail!("the cluster exited before it was ready");
        };
        let pid = child.id();
        let api_pids = match real {
            None => vec![pid],
            Some(_) => crate::procfs::descendants_named(pid, &["kube-apiserver", "kubelet-api"]),
        };
        let kubectl_built = api_pids.iter().find_map(|pid| {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
            Some(exe.with_file_name("kubectl")).filter(|k| k.is_file())
        });
        let mut sim = Sim {
            child,
            api_pids,
            kubeconfig,
            pod_ip: IpAddr::from([127, 0, 0, 1]),
            name: real.map_or_else(|| "kubesim".to_owned(), |v| format!("Kubernetes {v}")),
            kubectl_built,
        };
        sim.pod_ip = sim.wait_ready().await?;
        Ok(sim)
    }

    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&self.kubeconfig)?,
            &kube::config::KubeConfigOptions::default(),
        )
        .await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// The ClusterIP of a Service of the bench namespace.
    pub async fn cluster_ip(&self, service: &str) -> anyhow::Result<IpAddr> {
        let services: kube::Api<k8s_openapi::api::core::v1::Service> =
            kube::Api::namespaced(self.client().await?, "bench");
        let ip = services
            .get(service)
            .await?
            .spec
            .and_then(|s| s.cluster_ip)
            .with_context(|| format!("the Service {service} has no ClusterIP"))?;
        Ok(ip.parse()?)
    }

    async fn wait_ready(&self) -> anyhow::Result<IpAddr> {
        let pods: kube::Api<Pod> = kube::Api::namespaced(self.client().await?, "bench");
        let started = Instant::now();
        loop {
            if let Ok(pod) = pods.get("bench-0").await {
                let status = pod.status.unwrap_or_default();
                let ready = status
                    .conditions
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                if let (true, Some(ip)) = (ready, status.pod_ip) {
                    let ip: IpAddr = ip.parse()?;
                    // The backend process listens a moment after the pod is marked Ready.
                    if tokio::net::TcpStream::connect(SocketAddr::new(ip, crate::backend::ECHO))
                        .await
                        .is_ok()
                    {
                        return Ok(ip);
                    }
                }
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("the benchmark pod was not Ready within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        // SIGTERM: the real control plane stops every process it started before it exits.
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on our own child, which has not been waited for yet.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let _ = self.child.wait();
    }
}
