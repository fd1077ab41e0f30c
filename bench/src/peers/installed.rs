//! The peers scripts/peers.sh installs (kftui, krelay, kubefwd), each started as its users
//! start it and told to forward a pod or a Service of the bench namespace.

use super::{Peer, Target, fresh_dir};
use crate::sim::{Binaries, Sim};
use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const KFTUI: &str = "kftui (kftray's terminal app)";
pub const KRELAY: &str = "krelay";
pub const KUBEFWD: &str = "kubefwd";

/// The installed peers' versions as each prints its own, for the report.
pub fn installed_versions(bins: &Binaries) -> Vec<String> {
    INSTALLED
        .iter()
        .filter_map(|(_, program)| {
            let path = bins.peer(program)?;
            let args: &[&str] = match *program {
                "krelay" => &["-V"],
                "kubefwd" => &["version"],
                _ => &["--version"],
            };
            let out = Command::new(path).args(args).output().ok()?;
            let text = String::from_utf8_lossy(&out.stdout);
            let version = version_in(&text).unwrap_or("of unknown version");
            Some(format!("{program} {version}"))
        })
        .collect()
}

/// The version in what a peer prints: krelay JSON, kubefwd a banner then
/// "Kubefwd version: X", kftui "kftui X".
fn version_in(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|l| {
            l.split_once("\"Version\":\"")
                .and_then(|(_, v)| v.split('"').next())
                .or_else(|| l.strip_prefix("Kubefwd version: "))
                .or_else(|| l.strip_prefix("kftui "))
        })
        .map(str::trim)
}

/// The address a hosts file gives `name`.
pub(super) fn hosts_ip(text: &str, name: &str) -> Option<std::net::IpAddr> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        let ip = words.next()?.parse().ok()?;
        words.any(|w| w == name).then_some(ip)
    })
}

/// A free port on 127.0.0.1 for a peer that is told where to listen.
fn free_local() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// kftui, headless: one config per port of the target, started at once, without its terminal
/// interface, its state in a home of its own.
async fn kftui(
    program: &Path,
    sim: &Sim,
    work: &Path,
    target: &Target<'_>,
) -> anyhow::Result<Peer> {
    let home = fresh_dir(work, "kftui")?;
    let mut addrs = Vec::new();
    let mut configs = Vec::new();
    // kftui forwards to a Service's pods; a pod's own Service is `bench`.
    let service = target.service_name();
    // UDP goes through kftui's relay pod (kftray-server), which dials the address it is
    // given: the Service's ClusterIP, as the pods here have no cluster DNS to resolve its
    // name.
    let relay_dials = match target.udp {
        true => Some(sim.cluster_ip(service).await?.to_string()),
        false => None,
    };
    for &port in target.ports {
        let local = match target.udp {
            true => std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?,
            false => free_local()?,
        };
        addrs.push((port, local));
        configs.push(serde_json::json!({
            "alias": format!("{service}-{}", configs.len()),
            "namespace": "bench",
            "service": service,
            "workload_type": "service",
            "protocol": if target.udp { "udp" } else { "tcp" },
            "remote_address": relay_dials,
            "remote_port": port,
            "local_port": local.port(),
            "kubeconfig": sim.kubeconfig,
        }));
    }
    // A file, as hundreds of configs would not fit in one argument.
    let file = home.join("configs.json");
    std::fs::write(&file, serde_json::Value::Array(configs).to_string())?;
    let mut command = Command::new(program);
    command
        .arg("--configs-path")
        .arg(&file)
        .args(["--auto-start", "--non-interactive"])
        .env("HOME", &home);
    let log = home.join("kftui.log");
    if target.udp {
        return unwaited(KFTUI, command, &log, addrs);
    }
    started(KFTUI, command, &log, addrs).await
}

/// krelay (`kubectl relay`): its server pod, then one local port per target port, each
/// connection carried over a port-forward to that pod, which dials the target (a pod's IP,
/// or a Service's ClusterIP).
async fn krelay(
    program: &Path,
    sim: &Sim,
    work: &Path,
    target: &Target<'_>,
) -> anyhow::Result<Peer> {
    let mut addrs = Vec::new();
    let mut command = krelay_command(program, sim).await?;
    command.args(["-n", "bench"]).arg(&target.object);
    let log = fresh_dir(work, "krelay")?.join("krelay.log");
    if target.udp {
        for &port in target.ports {
            let local = std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?;
            command.arg(format!("{}:{port}@udp", local.port()));
            addrs.push((port, local));
        }
        return unwaited(KRELAY, command, &log, addrs);
    }
    for &port in target.ports {
        let local = free_local()?;
        command.arg(format!("{}:{port}", local.port()));
        addrs.push((port, local));
    }
    started(KRELAY, command, &log, addrs).await
}

/// The port a SOCKS5 proxy peer's address is filed under.
pub const SOCKS: u16 = 1080;

/// `krelay proxy`: a SOCKS5 proxy on a free local port, each connection carried to its server
/// pod, which dials the destination.
pub async fn krelay_proxy(program: &Path, sim: &Sim, work: &Path) -> anyhow::Result<Peer> {
    let local = free_local()?;
    let mut command = krelay_command(program, sim).await?;
    command.args(["proxy", "--listen"]).arg(local.to_string());
    let log = fresh_dir(work, "krelay")?.join("krelay.log");
    started(KRELAY, command, &log, vec![(SOCKS, local)]).await
}

/// krelay with the cluster and its server's image, once no earlier server is left: every
/// krelay-server listens on port 9527 of its pod, and pods here share the host's network.
async fn krelay_command(program: &Path, sim: &Sim) -> anyhow::Result<Command> {
    no_krelay_server(sim).await?;
    let mut command = Command::new(program);
    command
        .arg("--kubeconfig")
        .arg(&sim.kubeconfig)
        .arg("--server.image")
        .arg(format!("{}:v0.2.0", crate::sim::KRELAY_IMAGE));
    Ok(command)
}

async fn no_krelay_server(sim: &Sim) -> anyhow::Result<()> {
    // krelay runs its server in `default`, whatever namespace it forwards.
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(sim.client().await?, "default");
    let began = std::time::Instant::now();
    let selector = kube::api::ListParams::default().labels("app=krelay-server");
    while !pods.list(&selector).await?.items.is_empty() {
        if began.elapsed() > Duration::from_secs(60) {
            bail!("an earlier krelay-server pod was still there after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// kubefwd: forwards a Service (the pod's own Service, `bench`, for a pod) on an address of
/// its own in 127.0.0.0/8 with the Service's ports, named in a hosts file of its own.
async fn kubefwd(
    program: &Path,
    sim: &Sim,
    work: &Path,
    target: &Target<'_>,
) -> anyhow::Result<Peer> {
    let service = target.service_name();
    let home = fresh_dir(work, "kubefwd")?;
    let hosts = home.join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n")?;
    let mut command = Command::new(program);
    command
        .args(["svc", "-a", "-n", "bench", "-f"])
        .arg(format!("metadata.name={service}"))
        .arg("--hosts-path")
        .arg(&hosts)
        .arg("--kubeconfig")
        .arg(&sim.kubeconfig)
        .env("HOME", &home);
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(home.join("kubefwd.log"))?)
        .stderr(std::fs::File::create(home.join("kubefwd.err"))?)
        .spawn()
        .context("starting kubefwd")?;
    // The address it chose is the one its hosts file gives the Service's name.
    let began = std::time::Instant::now();
    let ip = loop {
        let text = std::fs::read_to_string(&hosts).unwrap_or_default();
        if let Some(ip) = hosts_ip(&text, service) {
            break ip;
        }
        if began.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("kubefwd named no {service} in its hosts file within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let addrs = target
        .ports
        .iter()
        .map(|&p| (p, SocketAddr::new(ip, p)))
        .collect();
    let peer = Peer {
        name: KUBEFWD,
        pids: vec![child.id()],
        children: vec![child],
        addrs,
        kftray: None,
        named: Some((hosts, service.to_owned())),
    };
    wait_listening(&peer).await?;
    Ok(peer)
}

/// Spawns an installed peer told to listen on `addrs`, its output to `log`, and waits until
/// every address accepts.
async fn started(
    name: &'static str,
    command: Command,
    log: &Path,
    addrs: Vec<(u16, SocketAddr)>,
) -> anyhow::Result<Peer> {
    let peer = unwaited(name, command, log, addrs)?;
    wait_listening(&peer).await?;
    Ok(peer)
}

/// Spawns a peer that listens for UDP, which nothing can wait for without a datagram: the
/// figure's own first echoes wait for it.
fn unwaited(
    name: &'static str,
    command: Command,
    log: &Path,
    addrs: Vec<(u16, SocketAddr)>,
) -> anyhow::Result<Peer> {
    let child = spawn_logged(name, command, log)?;
    Ok(Peer {
        name,
        pids: vec![child.id()],
        children: vec![child],
        addrs,
        kftray: None,
        named: None,
    })
}

fn spawn_logged(name: &str, mut command: Command, log: &Path) -> anyhow::Result<Child> {
    command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log.with_extension("out"))?)
        .stderr(std::fs::File::create(log)?)
        .spawn()
        .with_context(|| format!("starting {name}"))
}

async fn wait_listening(peer: &Peer) -> anyhow::Result<()> {
    let began = std::time::Instant::now();
    for (_, addr) in &peer.addrs {
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            if began.elapsed() > Duration::from_secs(60) {
                bail!("{} did not listen on {addr} within 60 s", peer.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// Starts the installed peer called `name` (one of [`INSTALLED`]'s) forwarding `target`.
pub async fn installed(
    name: &str,
    program: &Path,
    sim: &Sim,
    work: &Path,
    target: &Target<'_>,
) -> anyhow::Result<Peer> {
    match name {
        KFTUI => kftui(program, sim, work, target).await,
        KRELAY => krelay(program, sim, work, target).await,
        KUBEFWD => kubefwd(program, sim, work, target).await,
        _ => bail!("no peer called {name}"),
    }
}

/// The peers installed by scripts/peers.sh: their names in the report, and their programs.
pub const INSTALLED: [(&str, &str); 3] =
    [(KFTUI, "kftui"), (KRELAY, "krelay"), (KUBEFWD, "kubefwd")];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_as_each_peer_prints_them() {
        let krelay = r#"{"Version":"v0.2.0","BuildDate":"","Commit":""}"#;
        assert_eq!(version_in(krelay), Some("v0.2.0"));
        let kubefwd = "INFO banner\nKubefwd version: 1.25.16\nhttps://kubefwd.com\n";
        assert_eq!(version_in(kubefwd), Some("1.25.16"));
        assert_eq!(version_in("kftui 0.35.1\n"), Some("0.35.1"));
        assert_eq!(version_in("Version 0.0.0\n"), None);
    }

    #[test]
    fn a_service_address_from_the_hosts_file() {
        let hosts = "127.0.0.1 localhost\n127.1.27.1 bench bench.bench bench.bench.svc\n";
        assert_eq!(hosts_ip(hosts, "bench"), "127.1.27.1".parse().ok());
        assert_eq!(hosts_ip(hosts, "roll"), None);
        assert_eq!(hosts_ip("# bench\n", "bench"), None);
    }
}
