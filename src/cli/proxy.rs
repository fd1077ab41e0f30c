//! `kftray proxy`: a one-off SOCKS5 and/or HTTP proxy into a cluster, in the foreground, with
//! no kftray.toml (a `[proxy]` table runs the same proxy with `kftray up`).

use super::failure::{Failure, Outcome};
use super::output::say;
use super::{Cli, Output};
use crate::config::{Proxy, Relay};
use crate::engine::{Phase, RunSpec, Supervisor};
use crate::forward::Tuning;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Serve SOCKS5 on this port (the default, on 1080, when neither port is given); clients
    /// should use `socks5h://` so that names resolve in the cluster.
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub socks: Option<u16>,
    /// Serve an HTTP proxy (CONNECT and plain http:// requests) on this port.
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub http: Option<u16>,
    /// Kubernetes context [default: the kubeconfig's current context].
    #[arg(long)]
    pub context: Option<String>,
    /// Namespace where the relay pod runs and short names resolve [default: the context's].
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Kubeconfig file [default: $KUBECONFIG, else ~/.kube/config].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Address to listen on; only loopback unless --expose-to-network.
    #[arg(long, value_name = "IP", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub address: IpAddr,
    /// Allow an address that is not loopback: everyone who reaches this machine then reaches
    /// the cluster's network.
    #[arg(long)]
    pub expose_to_network: bool,
}

pub(super) fn run(_cli: &Cli, args: &Args, out: &Output) -> Outcome {
    if !args.address.is_loopback() && !args.expose_to_network {
        return Err(Failure::Usage(format!(
            "{} is not a loopback address: to let every machine that reaches this one into \
             the cluster through it, add --expose-to-network",
            args.address
        )));
    }
    let socks = match (args.socks, args.http) {
        (None, None) => Some(1080),
        (socks, _) => socks,
    };
    if socks.is_some() && socks == args.http {
        return Err(Failure::Usage(
            "--socks and --http need two ports: one port speaks one protocol".into(),
        ));
    }
    let proxy = Proxy {
        socks,
        http: args.http,
        context: args.context.clone(),
        kubeconfig: args.kubeconfig.clone(),
        namespace: args.namespace.clone(),
        local_address: args.address,
        expose_to_network: args.expose_to_network,
    };
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::Usage(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(serve(proxy, out))
}

async fn serve(proxy: Proxy, out: &Output) -> Outcome {
    let here = std::env::current_dir().unwrap_or_default();
    let mut supervisor =
        Supervisor::for_project(Tuning::default(), &format!("{} (proxy)", here.display()));
    let effective = crate::config::Effective {
        forwards: Vec::new(),
        all_ports: Vec::new(),
        sync: None,
        relay: Relay::default(),
        proxy: Some(proxy),
        exposes: Vec::new(),
        files: Vec::new(),
    };
    let desired: BTreeMap<String, RunSpec> = RunSpec::of_proxies(&effective).into_iter().collect();
    let applied = supervisor.apply(&desired).await;
    if let Some((_, why)) = applied.failed.first() {
        supervisor.shutdown().await;
        return Err(Failure::Failed(why.clone()));
    }
    let mut said = BTreeMap::new();
    let mut stop = crate::engine::Stop::watch()
        .map_err(|e| Failure::Usage(format!("cannot watch for signals: {e}")))?;
    let reason = loop {
        for report in supervisor.report() {
            let line = match &report.phase {
                Phase::Ready { pod, .. } => {
                    let how = if report.name == Proxy::SOCKS {
                        format!("curl --proxy socks5h://{}", report.local)
                    } else {
                        format!("curl --proxy http://{}", report.local)
                    };
                    format!(
                        "{} ready on {} through relay pod {pod}: `{how} http://SERVICE.NAMESPACE/`",
                        report.name, report.local
                    )
                }
                Phase::Waiting(why) => format!("{} on {}: {why}", report.name, report.local),
                Phase::Reconnecting { why, .. } => {
                    format!("{} on {}: reconnecting ({why})", report.name, report.local)
                }
                Phase::Failed(why) => format!("{} on {}: failed: {why}", report.name, report.local),
            };
            if said.get(&report.name) != Some(&line) {
                say(&format!("{line}\n"));
                said.insert(report.name.clone(), line);
            }
        }
        tokio::select! {
            how = stop.asked() => break how,
            () = supervisor.changed() => {}
        }
    };
    out.note(&format!("stopping ({reason})"));
    supervisor.shutdown().await;
    Ok(())
}
