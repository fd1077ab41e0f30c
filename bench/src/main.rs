//! kftray's benchmarks: every figure against the peers a user would pick instead (kubectl
//! port-forward, kube-rs, and kftui, krelay and kubefwd when scripts/peers.sh installed them)
//! and the honest ceilings, in one run, on the same cluster (kubesim, or the real control plane
//! with `--real`) and the same backend.
//!
//! `bash scripts/bench.sh [--quick]` builds the release binaries and runs this: it prints a
//! markdown table and writes it, with a JSON file of the same numbers, under target/bench/.
//! No assertion is made: the numbers are the result.

mod backend;
mod figures;
mod kftray;
mod kube_forward;
mod peers;
mod procfs;
mod relay;
mod sim;
mod stats;

use clap::{Parser, Subcommand};
use figures::Figure;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "kftray-bench",
    about = "Benchmarks kftray against kubectl port-forward and the other peers"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// MiB carried each way per throughput run.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Throughput runs per peer (the median is reported).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Small sizes everywhere: checks that the harness works, in well under a minute.
    #[arg(long)]
    quick: bool,
    /// Only these figures (1-12), comma-separated.
    #[arg(long, value_delimiter = ',')]
    only: Vec<u8>,
    /// Only the peers whose name contains one of these words (e.g. `kftray,kubectl`), for
    /// the TCP figures 1-4 and 11 and figure 12.
    #[arg(long, value_delimiter = ',')]
    peers: Vec<String>,
    /// Run on the real control plane of this release (1.37 or 1.34) instead of kubesim.
    #[arg(long, value_name = "VERSION")]
    real: Option<String>,
    /// Keep the work folder (kftray's state and logs, the kubeconfig) and say where it is.
    #[arg(long)]
    keep: bool,
    /// Where the results go (FILE.md and FILE.json).
    #[arg(long, default_value = "target/bench/results")]
    out: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// The benchmark pod's servers (run by the simulated cluster as the pod's container).
    #[command(hide = true)]
    Backend {
        #[arg(long)]
        ip: IpAddr,
    },
    /// A plain TCP relay: one listener on 127.0.0.1 per --to, printed one per line.
    #[command(hide = true)]
    Relay {
        #[arg(long)]
        to: Vec<SocketAddr>,
    },
    /// kube-rs `Api::portforward` behind a local listener per --port, printed one per line.
    #[command(hide = true)]
    KubeForward {
        #[arg(long, default_value = "bench")]
        namespace: String,
        #[arg(long, default_value = "bench-0")]
        pod: String,
        #[arg(long)]
        port: Vec<u16>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Some(Command::Backend { ip }) => runtime.block_on(backend::run(ip)),
        Some(Command::Relay { ref to }) => runtime.block_on(async {
            let relays = to
                .iter()
                .map(|to| relay::run(SocketAddr::from(([127, 0, 0, 1], 0)), *to));
            futures::future::try_join_all(relays).await.map(drop)
        }),
        Some(Command::KubeForward {
            ref namespace,
            ref pod,
            ref port,
        }) => runtime.block_on(kube_forward::run(namespace, pod, port)),
        None => runtime.block_on(bench(&cli)),
    }
}

struct Sizes {
    bytes: u64,
    rounds: usize,
    setup: usize,
    round_trips: usize,
    concurrent: usize,
    up_counts: Vec<usize>,
    memory_forwards: usize,
    udp_rate: u32,
    udp_seconds: u32,
    http_requests: usize,
}

impl Sizes {
    fn of(cli: &Cli) -> Sizes {
        if cli.quick {
            return Sizes {
                bytes: 16 << 20,
                rounds: 1,
                setup: 40,
                round_trips: 80,
                concurrent: 50,
                up_counts: vec![10],
                memory_forwards: 10,
                udp_rate: 200,
                udp_seconds: 1,
                http_requests: 100,
            };
        }
        Sizes {
            bytes: cli.size_mib << 20,
            rounds: cli.rounds,
            setup: 1000,
            round_trips: 2000,
            concurrent: 1000,
            up_counts: vec![10, 100, 500],
            memory_forwards: 100,
            udp_rate: 1000,
            udp_seconds: 5,
            http_requests: 2000,
        }
    }
}

async fn bench(cli: &Cli) -> anyhow::Result<()> {
    let started = Instant::now();
    let sizes = Sizes::of(cli);
    let wanted = |id: u8| cli.only.is_empty() || cli.only.contains(&id);
    let bins = sim::Binaries::find()?;
    let mut work = tempfile::tempdir()?;
    if cli.keep {
        work.disable_cleanup(true);
        eprintln!("work folder: {}", work.path().display());
    }
    eprintln!("starting the cluster");
    let sim = sim::Sim::start(&bins, work.path(), cli.real.as_deref()).await?;
    eprintln!("cluster: {}", sim.name);
    let mut results: Vec<Figure> = Vec::new();
    if [1, 2, 3, 4, 11].into_iter().any(wanted) {
        eprintln!("starting the peers");
        let (peers, left_out) = peers::start(&bins, &sim, work.path(), &cli.peers).await?;
        let first = results.len();
        if wanted(1) {
            eprintln!("1: throughput");
            results.push(
                figures::tcp::throughput(&peers, &sim.api_pids, sizes.bytes, sizes.rounds, 1).await,
            );
        }
        if wanted(2) {
            eprintln!("2: connection setup");
            results.push(figures::tcp::setup(&peers, sizes.setup).await);
        }
        if wanted(3) {
            eprintln!("3: round trips");
            results.push(figures::tcp::round_trip(&peers, sizes.round_trips).await);
        }
        if wanted(4) {
            eprintln!("4: concurrent connections");
            results.push(figures::tcp::concurrent(&peers, sizes.concurrent).await);
        }
        if wanted(11) {
            eprintln!("11: 8 bulk connections at once on one forward");
            results.push(
                figures::tcp::throughput(&peers, &sim.api_pids, sizes.bytes, sizes.rounds, 8).await,
            );
        }
        for figure in &mut results[first..] {
            figure
                .notes
                .extend(left_out.iter().map(|why| format!("Left out: {why}.")));
        }
    }
    if wanted(5) {
        eprintln!("5: start-up and hot reload");
        results.push(figures::startup::up_time(&bins, &sim, work.path(), &sizes.up_counts).await);
    }
    if wanted(6) {
        eprintln!("6: idle memory");
        results
            .push(figures::startup::memory(&bins, &sim, work.path(), sizes.memory_forwards).await);
    }
    if wanted(7) {
        eprintln!("7: UDP");
        results.push(
            figures::udp::udp(&bins, &sim, work.path(), sizes.udp_rate, sizes.udp_seconds).await,
        );
    }
    if wanted(8) {
        eprintln!("8: HTTP, with the HTTP log off and on");
        results.push(
            figures::http::http(
                &bins,
                &sim,
                work.path(),
                sizes.bytes,
                sizes.rounds,
                sizes.http_requests,
            )
            .await,
        );
    }
    if wanted(9) {
        eprintln!("9: the proxy into the cluster");
        results.push(
            figures::proxy::proxy(
                &bins,
                &sim,
                work.path(),
                sizes.bytes,
                sizes.rounds,
                sizes.setup,
            )
            .await,
        );
    }
    if wanted(10) {
        eprintln!("10: a reverse forward");
        results.push(
            figures::expose::expose_figure(
                &bins,
                &sim,
                work.path(),
                sizes.bytes,
                sizes.rounds,
                sizes.setup,
            )
            .await,
        );
    }
    if wanted(12) {
        eprintln!("12: pods replaced under a forward");
        results.push(figures::replace::replace(&bins, &sim, work.path(), &cli.peers).await);
    }
    let cluster = sim.name.clone();
    let mut versions = peers::installed_versions(&bins);
    if let Some(kubectl) = &sim.kubectl_built {
        let version = report::kubectl_version(&kubectl.to_string_lossy());
        versions.insert(0, format!("kubectl {version} built with the control plane"));
    }
    drop(sim);
    let report = report::Report::new(cli, &cluster, versions, results, started.elapsed());
    report.write(&cli.out)?;
    print!("{}", report.markdown());
    Ok(())
}

mod report;
