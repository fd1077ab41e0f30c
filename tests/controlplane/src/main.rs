//! `controlplane serve`: a real Kubernetes control plane on this machine until Ctrl-C or
//! SIGTERM (see `scripts/cluster.sh`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use controlplane::{ControlPlane, Options, Version};

#[derive(Parser)]
#[command(
    name = "controlplane",
    version,
    about = "A real Kubernetes control plane for tests"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start etcd, kube-apiserver, kube-controller-manager and a kubelet, apply the fixtures,
    /// print the `export KUBECONFIG=…` line once their pods are Ready, and serve until
    /// Ctrl-C or SIGTERM.
    Serve {
        /// Kubernetes manifests to apply with kubectl once the cluster is up.
        #[arg(long)]
        fixture: Vec<PathBuf>,
        /// 1.37 (default) or 1.34.
        #[arg(long, env = "KFTRAY_K8S_VERSION", default_value = "1.37")]
        version: Version,
        /// How many Nodes to register.
        #[arg(long, default_value_t = 1)]
        nodes: u8,
        /// Run pods whose image starts with PREFIX as PROGRAM: `--image PREFIX=PROGRAM`.
        #[arg(long, value_name = "PREFIX=PROGRAM")]
        image: Vec<String>,
        /// An environment variable those images carry: `--image-env PREFIX=NAME=VALUE`.
        #[arg(long, value_name = "PREFIX=NAME=VALUE")]
        image_env: Vec<String>,
        /// Keep certificates, kubeconfigs, etcd's data and logs here (default: a temp dir,
        /// removed on exit).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "controlplane=info,kubesim=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let Command::Serve {
        fixture,
        version,
        nodes,
        image,
        image_env,
        dir,
    } = Cli::parse().command;
    let opts = Options {
        version,
        nodes,
        images: image
            .iter()
            .map(|i| kubesim::images::parse_image(i))
            .collect::<anyhow::Result<_>>()?,
        image_env: image_env
            .iter()
            .map(|e| kubesim::images::parse_image_env(e))
            .collect::<anyhow::Result<_>>()?,
        dir: dir.map(|d| std::path::absolute(&d).unwrap_or(d)),
        ..Options::default()
    };
    let started = Instant::now();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let cp = tokio::select! {
        cp = ControlPlane::start(opts) => cp?,
        _ = tokio::signal::ctrl_c() => return Ok(()),
        _ = term.recv() => return Ok(()),
    };
    for f in &fixture {
        if let Err(e) = cp.apply_file(f).await {
            cp.shutdown().await;
            return Err(e);
        }
    }
    if !fixture.is_empty()
        && let Err(e) = cp.wait_pods_ready("", Duration::from_secs(300)).await
    {
        cp.shutdown().await;
        return Err(e);
    }
    println!(
        "controlplane: Kubernetes {} up in {:.1} s, API server at {}",
        version_of(&cp).await,
        started.elapsed().as_secs_f64(),
        cp.server
    );
    println!(
        "controlplane: kftray-dev (group developers) has no rights but its Roles': {}",
        cp.restricted_kubeconfig().display()
    );
    println!("export KUBECONFIG={}", cp.kubeconfig().display());
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    cp.shutdown().await;
    Ok(())
}

async fn version_of(cp: &ControlPlane) -> String {
    match cp.client().await {
        Ok(c) => c
            .apiserver_version()
            .await
            .map(|v| v.git_version)
            .unwrap_or_else(|e| e.to_string()),
        Err(e) => e.to_string(),
    }
}
