//! The simulated cluster the benchmark runs against, as a process of its own so that its CPU
//! is not the load generator's: `kubesim serve` with the bench fixture, whose pod runs this
//! very binary's `backend`.

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
            bench: bench.clone(),
        })
    }
}

/// kftray's default relay image, which kubesim maps to the relay-server binary.
const RELAY_IMAGE: &str = "ghcr.io/kftray/kftray-relay";

pub struct Sim {
    child: Child,
    /// The API server's process, whose CPU each forwarder's protocol also costs.
    pub pid: u32,
    pub kubeconfig: PathBuf,
    /// The benchmark pod's IP: where its backends listen.
    pub pod_ip: IpAddr,
}

impl Sim {
    pub async fn start(bins: &Binaries, work: &Path) -> anyhow::Result<Sim> {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixture.yaml");
        let kubeconfig = work.join("kubeconfig");
        let mut child = Command::new(&bins.kubesim)
            .arg("serve")
            .arg("--fixture")
            .arg(&fixture)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--image")
            .arg(format!("kftray-bench/={}", bins.bench.display()))
            // Relay pods run the relay-server of this build, on their pod IP (a simulated pod
            // has no loopback of its own) with the cluster DNS as their resolver.
            .arg("--image")
            .arg(format!("{RELAY_IMAGE}={}", bins.relay_server.display()))
            .arg("--image-env")
            .arg(format!("{RELAY_IMAGE}=RELAY_LISTEN=$(POD_IP):7000"))
            .arg("--image-env")
            .arg(format!(
                "{RELAY_IMAGE}=RELAY_NAMESERVER=$(KUBESIM_NAMESERVER)"
            ))
            .arg("--image-env")
            .arg(format!("{RELAY_IMAGE}=RELAY_EXPOSE_ADDRESS=$(POD_IP)"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting kubesim")?;
        let stdout = child.stdout.take().context("kubesim's stdout")?;
        let ready = tokio::task::spawn_blocking(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .any(|line| line.starts_with("export KUBECONFIG="))
        });
        if !tokio::time::timeout(Duration::from_secs(60), ready).await?? {
            bail!("kubesim exited before it was ready");
        }
        let pid = child.id();
        let mut sim = Sim {
            child,
            pid,
            kubeconfig,
            pod_ip: IpAddr::from([127, 0, 0, 1]),
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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
