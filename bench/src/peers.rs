//! The tools compared, each set up to reach the same backend ports of the same pod.

use crate::backend::{ECHO, SINK, SOURCE};
use crate::kftray::Kftray;
use crate::sim::{Binaries, Sim};
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const TCP_PORTS: [u16; 3] = [ECHO, SINK, SOURCE];

pub struct Peer {
    pub name: &'static str,
    /// Where to connect locally for each backend port.
    pub addrs: BTreeMap<u16, SocketAddr>,
    /// The forwarding processes, whose CPU and memory are the peer's cost.
    pub pids: Vec<u32>,
    children: Vec<Child>,
    kftray: Option<Kftray>,
}

impl Peer {
    pub fn addr(&self, port: u16) -> SocketAddr {
        self.addrs[&port]
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(kftray) = &self.kftray {
            kftray.down();
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The peers of the TCP figures, in a fixed order; `only` (words such as `kftray`,
/// `kubectl`, `direct`) keeps those whose name contains one of them, for profiling one.
pub async fn start(
    bins: &Binaries,
    sim: &Sim,
    work: &Path,
    only: &[String],
) -> anyhow::Result<Vec<Peer>> {
    let wanted = |name: &str| {
        only.is_empty()
            || only
                .iter()
                .any(|w| name.to_lowercase().contains(&w.to_lowercase()))
    };
    let mut peers = Vec::new();
    if wanted("direct to the backend") {
        peers.push(direct(sim));
    }
    if wanted("2 plain TCP relays") {
        peers.push(relays(bins, sim)?);
    }
    for websockets in [true, false] {
        if wanted(kubectl_name(websockets)) {
            peers.push(kubectl(sim, work, websockets)?);
        }
    }
    if wanted("kube-rs Api::portforward") {
        peers.push(kube_rs(bins, sim)?);
    }
    if wanted("kftray") {
        peers.push(kftray(bins, sim, work).await?);
    }
    // kftui when scripts/peers.sh installed it; a peer that does not start is said, and the
    // others still run.
    if let Some(program) = &bins.kftui
        && wanted(KFTUI)
    {
        match kftui(program, sim, work).await {
            Ok(peer) => peers.push(peer),
            Err(e) => eprintln!("kftui did not start: {e:#}"),
        }
    }
    Ok(peers)
}

fn kubectl_name(websockets: bool) -> &'static str {
    if websockets {
        "kubectl (WebSocket)"
    } else {
        "kubectl (SPDY)"
    }
}

fn direct(sim: &Sim) -> Peer {
    Peer {
        name: "direct to the backend",
        addrs: TCP_PORTS
            .iter()
            .map(|p| (*p, SocketAddr::new(sim.pod_ip, *p)))
            .collect(),
        pids: Vec::new(),
        children: Vec::new(),
        kftray: None,
    }
}

/// Two plain relays in series: the second reaches the backend, the first the second.
fn relays(bins: &Binaries, sim: &Sim) -> anyhow::Result<Peer> {
    let targets: Vec<SocketAddr> = TCP_PORTS
        .iter()
        .map(|p| SocketAddr::new(sim.pod_ip, *p))
        .collect();
    let (far, far_addrs) = relay(bins, &targets)?;
    let (near, near_addrs) = relay(bins, &far_addrs)?;
    Ok(Peer {
        name: "2 plain TCP relays",
        addrs: TCP_PORTS.iter().copied().zip(near_addrs).collect(),
        pids: vec![far.id(), near.id()],
        children: vec![near, far],
        kftray: None,
    })
}

fn relay(bins: &Binaries, targets: &[SocketAddr]) -> anyhow::Result<(Child, Vec<SocketAddr>)> {
    let mut command = Command::new(&bins.bench);
    command.arg("relay");
    for t in targets {
        command.arg("--to").arg(t.to_string());
    }
    let (child, lines) = spawn_reading(command, targets.len(), |_| true)?;
    let addrs = lines
        .iter()
        .map(|l| l.parse().context("relay address"))
        .collect::<anyhow::Result<_>>()?;
    Ok((child, addrs))
}

/// `kubectl port-forward` to the pod, over its WebSocket tunnel or over SPDY.
fn kubectl(sim: &Sim, work: &Path, websockets: bool) -> anyhow::Result<Peer> {
    let mut command = kubectl_command(sim, work, websockets);
    command.args(TCP_PORTS.map(|p| format!(":{p}")));
    let (child, lines) = spawn_reading(command, TCP_PORTS.len(), |l| {
        l.starts_with("Forwarding from")
    })?;
    let mut addrs = BTreeMap::new();
    for line in lines {
        // "Forwarding from 127.0.0.1:41234 -> 9000"
        let mut words = line.split_whitespace().skip(2);
        let (Some(local), Some(_), Some(remote)) = (words.next(), words.next(), words.next())
        else {
            bail!("unexpected kubectl output: {line}");
        };
        addrs.insert(remote.parse()?, local.parse()?);
    }
    Ok(Peer {
        name: kubectl_name(websockets),
        addrs,
        pids: vec![child.id()],
        children: vec![child],
        kftray: None,
    })
}

/// `kubectl port-forward pod/bench-0 --address 127.0.0.1`, ports to be added.
pub fn kubectl_command(sim: &Sim, work: &Path, websockets: bool) -> Command {
    kubectl_command_for(sim, work, "pod/bench-0", websockets)
}

/// `kubectl port-forward TARGET --address 127.0.0.1` in the bench namespace.
pub fn kubectl_command_for(sim: &Sim, work: &Path, target: &str, websockets: bool) -> Command {
    let mut command = Command::new("kubectl");
    command
        .arg("--kubeconfig")
        .arg(&sim.kubeconfig)
        .arg("--cache-dir")
        .arg(work.join("kubectl-cache"))
        .args([
            "port-forward",
            "-n",
            "bench",
            target,
            "--address",
            "127.0.0.1",
        ])
        .env(
            "KUBECTL_PORT_FORWARD_WEBSOCKETS",
            if websockets { "true" } else { "false" },
        );
    command
}

/// kube-rs's `Api::portforward`: one WebSocket upgrade per local connection.
fn kube_rs(bins: &Binaries, sim: &Sim) -> anyhow::Result<Peer> {
    let mut command = Command::new(&bins.bench);
    command
        .arg("kube-forward")
        .env("KUBECONFIG", &sim.kubeconfig);
    for p in TCP_PORTS {
        command.arg("--port").arg(p.to_string());
    }
    let (child, lines) = spawn_reading(command, TCP_PORTS.len(), |_| true)?;
    let addrs = TCP_PORTS
        .iter()
        .copied()
        .zip(lines.iter().map(|l| l.parse::<SocketAddr>()))
        .map(|(p, a)| Ok((p, a?)))
        .collect::<anyhow::Result<_>>()?;
    Ok(Peer {
        name: "kube-rs Api::portforward",
        addrs,
        pids: vec![child.id()],
        children: vec![child],
        kftray: None,
    })
}

async fn kftray(bins: &Binaries, sim: &Sim, work: &Path) -> anyhow::Result<Peer> {
    let mut config = String::from("version = 1\n\n[defaults]\nnamespace = \"bench\"\n");
    for (alias, port) in [("echo", ECHO), ("sink", SINK), ("source", SOURCE)] {
        config.push_str(&format!(
            "\n[forwards.{alias}]\npod = \"bench-0\"\nremote_port = {port}\nlocal_port = \"any\"\n"
        ));
    }
    let kftray = Kftray::project(&bins.kftray, &sim.kubeconfig, &work.join("kftray"), &config)?;
    kftray.up()?;
    let rows = kftray.wait_ready(3).await?;
    let mut addrs = BTreeMap::new();
    for row in &rows {
        let port = match row.alias.as_str() {
            "echo" => ECHO,
            "sink" => SINK,
            _ => SOURCE,
        };
        addrs.insert(port, row.local.context("kftray forward address")?);
    }
    Ok(Peer {
        name: "kftray",
        addrs,
        pids: vec![rows[0].pid],
        children: Vec::new(),
        kftray: Some(kftray),
    })
}

const KFTUI: &str = "kftui 0.35 (kftray's terminal app)";

/// kftui, headless: one config per backend port to the Service, started at once, without its
/// terminal interface, its state in a home of its own.
async fn kftui(program: &Path, sim: &Sim, work: &Path) -> anyhow::Result<Peer> {
    let home = work.join("kftui-home");
    std::fs::create_dir_all(&home)?;
    let mut addrs = BTreeMap::new();
    let mut configs = Vec::new();
    for port in TCP_PORTS {
        let local = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        addrs.insert(port, local);
        configs.push(serde_json::json!({
            "alias": format!("bench-{port}"),
            "namespace": "bench",
            "service": "bench",
            "workload_type": "service",
            "protocol": "tcp",
            "remote_port": port,
            "local_port": local.port(),
            "kubeconfig": sim.kubeconfig,
        }));
    }
    let child = Command::new(program)
        .arg("--json")
        .arg(serde_json::Value::Array(configs).to_string())
        .args(["--auto-start", "--non-interactive"])
        .env("HOME", &home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.join("kftui.log"))?)
        .spawn()
        .context("starting kftui")?;
    let peer = Peer {
        name: KFTUI,
        pids: vec![child.id()],
        children: vec![child],
        addrs,
        kftray: None,
    };
    let started = std::time::Instant::now();
    for addr in peer.addrs.values() {
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            if started.elapsed() > Duration::from_secs(60) {
                bail!("kftui did not listen on {addr} within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(peer)
}

/// Spawns `command` and collects the first `count` stdout lines that `wanted` accepts.
pub fn spawn_reading(
    mut command: Command,
    count: usize,
    wanted: impl Fn(&str) -> bool + Send + 'static,
) -> anyhow::Result<(Child, Vec<String>)> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {:?}", command.get_program()))?;
    let stdout = child.stdout.take().context("stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        let mut found = Vec::new();
        while found.len() < count {
            match lines.next() {
                Some(line) if wanted(&line) => found.push(line),
                Some(_) => {}
                None => break,
            }
        }
        let _ = tx.send(found);
        // Keep draining so the child never blocks on a full pipe.
        lines.for_each(drop);
    });
    let found = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
    if found.len() < count {
        let _ = child.kill();
        bail!("{:?} did not start", command.get_program());
    }
    Ok((child, found))
}
