//! `kubesim serve --fixture FILE.yaml`: a simulated cluster for demos and manual testing.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use kubesim::{Cluster, ClusterOptions, Scheme};

#[derive(Parser)]
#[command(
    name = "kubesim",
    version,
    about = "A simulated Kubernetes cluster that kubectl and kube-rs accept"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a cluster from a YAML fixture and serve until Ctrl-C or SIGTERM.
    Serve {
        /// Kubernetes manifests (multi-document YAML) to create at start.
        #[arg(long)]
        fixture: Vec<PathBuf>,
        /// Where to write the kubeconfig (default: a temp dir).
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// API server port on 127.0.0.1 (default: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Write an http:// server URL instead of https://.
        #[arg(long)]
        http: bool,
        /// Run pods whose image starts with PREFIX as PROGRAM: `--image PREFIX=PROGRAM`.
        #[arg(long, value_name = "PREFIX=PROGRAM")]
        image: Vec<String>,
        /// An environment variable those images carry, as a Dockerfile's ENV:
        /// `--image-env PREFIX=NAME=VALUE` (`$(POD_IP)` and the like expand).
        #[arg(long, value_name = "PREFIX=NAME=VALUE")]
        image_env: Vec<String>,
    },
    /// Run one built-in backend (what a kubesim/<kind> container serves) as a process:
    /// a pod whose image maps to this binary runs a real local command.
    Backend {
        /// echo, http or udp-echo.
        #[arg(long, default_value = "echo")]
        kind: String,
        /// Address to listen on, e.g. `$(POD_IP):8080` in a manifest's args.
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// The name the http backend answers with.
        #[arg(long, default_value = "kubesim")]
        name: String,
    },
    /// What Kubernetes' e2e image `agnhost serve-hostname --port=N` does: answer every HTTP
    /// request with the pod's name, on the pod's own IP ($POD_IP, as this machine's pods
    /// share its network) — so a test can use the same image on a real cluster and here.
    #[command(name = "serve-hostname")]
    ServeHostname {
        #[arg(long, default_value_t = 9376)]
        port: u16,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let (fixture, kubeconfig, port, http, image, image_env) = match Cli::parse().command {
        Command::Serve {
            fixture,
            kubeconfig,
            port,
            http,
            image,
            image_env,
        } => (fixture, kubeconfig, port, http, image, image_env),
        Command::Backend { kind, listen, name } => return backend(&kind, listen, &name).await,
        Command::ServeHostname { port } => {
            let ip = std::env::var("POD_IP").unwrap_or_else(|_| "127.0.0.1".into());
            let name = std::env::var("POD_NAME").unwrap_or_else(|_| "kubesim".into());
            return backend("http", std::net::SocketAddr::new(ip.parse()?, port), &name).await;
        }
    };
    let images = image
        .iter()
        .map(|i| kubesim::images::parse_image(i))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let envs = image_env
        .iter()
        .map(|e| kubesim::images::parse_image_env(e))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let opts = ClusterOptions {
        image_env: envs,
        port,
        kubeconfig: kubeconfig.map(|p| std::path::absolute(&p).unwrap_or(p)),
        scheme: if http { Scheme::Http } else { Scheme::Https },
        images,
        ..ClusterOptions::default()
    };
    let cluster = Cluster::start(opts).await?;
    for f in &fixture {
        let yaml =
            std::fs::read_to_string(f).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        cluster
            .apply_yaml(&yaml)
            .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
    }
    let path = cluster.kubeconfig_path().display().to_string();
    println!("kubesim: API server at {}", cluster.server_url());
    println!("kubesim: kubeconfig written to {path}");
    println!("export KUBECONFIG={path}");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    cluster.shutdown().await;
    Ok(())
}

async fn backend(kind: &str, listen: std::net::SocketAddr, name: &str) -> anyhow::Result<()> {
    use kubesim::backend::{Backend, BackendKind};
    let kind = match kind {
        "echo" => BackendKind::TcpEcho,
        "http" => BackendKind::Http,
        "udp-echo" => BackendKind::UdpEcho,
        other => anyhow::bail!("unknown backend kind {other:?} (echo, http, udp-echo)"),
    };
    let b = Backend::start(kind, listen.ip(), listen.port(), name).await?;
    println!("kubesim backend listening on {}", b.addr());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}
