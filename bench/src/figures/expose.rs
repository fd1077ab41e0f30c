//! Figure 10: a reverse forward (`[exposes]`): an in-cluster client reaches an HTTP server on
//! this machine through the expose's Service, beside the same client straight to that server:
//! bulk throughput both ways, and the setup of a new connection (the relay accepts it,
//! announces it, kftray attaches it and connects to the local server, one small request
//! answered).

use super::Figure;
use super::http::{connect, measure};
use crate::backend::HTTP;
use crate::kftray::Kftray;
use crate::sim::{Binaries, Sim};
use anyhow::Context;
use k8s_openapi::api::core::v1::Service;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The local server's address: a loopback address of its own, so its fixed ports are free.
const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 77, 1));

/// The benchmark's backend as a process of its own, on this machine: the server exposed.
struct LocalServer(Child);

impl LocalServer {
    async fn start(bins: &Binaries) -> anyhow::Result<LocalServer> {
        let child = Command::new(&bins.bench)
            .args(["backend", "--ip", &LOCAL.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .context("starting the local backend")?;
        let server = LocalServer(child);
        let started = Instant::now();
        while tokio::net::TcpStream::connect((LOCAL, HTTP)).await.is_err() {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(10),
                "the local backend did not listen"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(server)
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// kftray exposing the local server as Service `local-bench`, and its ClusterIP address once a
/// request goes through it.
async fn expose(bins: &Binaries, sim: &Sim, work: &Path) -> anyhow::Result<(Kftray, SocketAddr)> {
    let config = format!(
        "version = 1\n\n[exposes.bench]\nlocal_port = {HTTP}\nlocal_address = \"{LOCAL}\"\n\
         service = \"local-bench\"\nport = {HTTP}\nnamespace = \"bench\"\n"
    );
    let kftray = Kftray::project(&bins.kftray, &sim.kubeconfig, &work.join("expose"), &config)?;
    kftray.up()?;
    kftray.wait_ready(1).await?;
    let services: kube::Api<Service> = kube::Api::namespaced(sim.client().await?, "bench");
    let started = Instant::now();
    loop {
        let ip = services
            .get_opt("local-bench")
            .await?
            .and_then(|s| s.spec?.cluster_ip);
        if let Some(ip) = ip {
            let addr = SocketAddr::new(ip.parse()?, HTTP);
            let answered = async {
                let mut stream = connect(addr).await?;
                super::http::request_on(&mut stream, "/item/0").await
            };
            if answered.await.is_ok() {
                return Ok((kftray, addr));
            }
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the expose's Service did not answer within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn expose_figure(
    bins: &Binaries,
    sim: &Sim,
    work: &Path,
    bytes: u64,
    rounds: usize,
    setups: usize,
) -> Figure {
    let mut figure = Figure::new(
        10,
        &format!(
            "A reverse forward: a client in the cluster to an HTTP server on this machine, {} \
             MiB each way (median of {rounds}), and {setups} new connections each with one \
             small request",
            bytes >> 20
        ),
        &[
            "download MB/s",
            "upload MB/s",
            "setup p50 ms",
            "setup p99 ms",
        ],
    );
    let _server = match LocalServer::start(bins).await {
        Ok(server) => server,
        Err(e) => {
            figure.notes.push(format!("no local server: {e}"));
            return figure;
        }
    };
    let direct = SocketAddr::new(LOCAL, HTTP);
    let values = measure(
        "direct to the local server",
        || connect(direct),
        bytes,
        rounds,
        setups,
    )
    .await;
    figure.row("direct to the local server", values);
    match expose(bins, sim, work).await {
        Ok((kftray, service)) => {
            let name = "kftray expose, by its ClusterIP";
            let values = measure(name, || connect(service), bytes, rounds, setups).await;
            figure.row(name, values);
            kftray.down();
        }
        Err(e) => figure.notes.push(format!("kftray did not expose: {e}")),
    }
    figure.notes.push(
        "The client is the benchmark on this machine connecting to the Service's ClusterIP \
         (kubesim's service proxy), as a pod would; each connection goes ClusterIP → relay \
         pod → kftray over the relay's port-forward → the local server. kubectl, kftui, \
         kubefwd and krelay have no reverse forward; mirrord and DevSpace do, and are not \
         installed here. \"Download\" is the client reading from the local server (this \
         machine to the cluster)."
            .to_owned(),
    );
    figure
}
