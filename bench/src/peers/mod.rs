//! The tools compared: each set up to reach the same backend ports of the same pod, or a
//! Service of the bench namespace.

use crate::backend::{ECHO, SINK, SOURCE};
use crate::kftray::Kftray;
use crate::sim::{Binaries, Sim};
use anyhow::{Context, bail};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod installed;

pub use installed::{
    INSTALLED, KFTUI, KRELAY, KUBEFWD, SOCKS, installed, installed_versions, krelay_proxy,
};

pub const DIRECT: &str = "direct to the backend";
pub const RELAYS: &str = "2 plain TCP relays";

pub const TCP_PORTS: [u16; 3] = [ECHO, SINK, SOURCE];

pub struct Peer {
    pub name: &'static str,
    /// Where to connect locally for each backend port, in the order the forwards were asked
    /// for (a port may be forwarded many times).
    pub addrs: Vec<(u16, SocketAddr)>,
    /// The forwarding processes, whose CPU and memory are the peer's cost.
    pub pids: Vec<u32>,
    children: Vec<Child>,
    kftray: Option<Kftray>,
    /// A hosts file and the name in it that clients reach the peer by (kubefwd's, whose
    /// address for a Service changes when it reconnects).
    named: Option<(std::path::PathBuf, String)>,
}

impl Peer {
    /// Where a new connection to `port` goes now: for a peer reached by name, the address
    /// its hosts file gives today, as a client resolving the name would find it.
    pub fn current_addr(&self, port: u16) -> SocketAddr {
        self.named
            .as_ref()
            .and_then(|(file, name)| {
                installed::hosts_ip(&std::fs::read_to_string(file).ok()?, name)
            })
            .map_or_else(|| self.addr(port), |ip| SocketAddr::new(ip, port))
    }

    pub fn addr(&self, port: u16) -> SocketAddr {
        self.addrs
            .iter()
            .find_map(|(p, a)| (*p == port).then_some(*a))
            .unwrap_or_else(|| panic!("{} forwards no port {port}", self.name))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(kftray) = &self.kftray {
            kftray.down();
        }
        // SIGINT first, a user's Ctrl-C: krelay deletes its server Job (on SIGINT only), kubefwd restores
        // its hosts file.
        for child in &mut self.children {
            if let Ok(pid) = libc::pid_t::try_from(child.id()) {
                // SAFETY: kill(2) on our own child, which has not been waited for yet.
                unsafe { libc::kill(pid, libc::SIGINT) };
            }
        }
        for child in &mut self.children {
            let began = std::time::Instant::now();
            while matches!(child.try_wait(), Ok(None)) && began.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The peers of the TCP figures, in a fixed order; `only` (words such as `kftray`,
/// `kubectl`, `direct`) keeps those whose name contains one of them, for profiling one.
/// Also says which peers were left out, and why.
pub async fn start(
    bins: &Binaries,
    sim: &Sim,
    work: &Path,
    only: &[String],
) -> anyhow::Result<(Vec<Peer>, Vec<String>)> {
    let wanted = |name: &str| wanted(only, name);
    let mut peers = Vec::new();
    if wanted(DIRECT) {
        peers.push(direct(sim));
    }
    if wanted(RELAYS) {
        peers.push(relays(bins, sim)?);
    }
    for websockets in [true, false] {
        if wanted(kubectl_name(websockets)) {
            peers.push(kubectl(
                sim,
                work,
                websockets,
                &Target::pod("bench-0", &TCP_PORTS),
            )?);
        }
    }
    if let Some(program) = sim
        .kubectl_built
        .as_deref()
        .filter(|_| wanted(KUBECTL_BUILT))
    {
        let target = Target::pod("bench-0", &TCP_PORTS);
        peers.push(kubectl_with(
            program,
            KUBECTL_BUILT,
            sim,
            work,
            true,
            &target,
        )?);
    }
    if wanted("kube-rs Api::portforward") {
        peers.push(kube_rs(bins, sim)?);
    }
    for transport in [None, Some(KFTRAY_WEBSOCKET)] {
        if wanted(kftray_name(transport)) {
            let target = Target::pod("bench-0", &TCP_PORTS);
            peers.push(kftray(bins, sim, work, &target, transport).await?);
        }
    }
    // The peers scripts/peers.sh installed; one that does not start is said, and the others
    // still run.
    let mut left_out = Vec::new();
    for (name, program) in INSTALLED {
        let Some(program) = bins.peer(program).filter(|_| wanted(name)) else {
            continue;
        };
        let target = Target::pod("bench-0", &TCP_PORTS);
        match installed(name, &program, sim, work, &target).await {
            Ok(peer) => peers.push(peer),
            Err(e) => left_out.push(format!("{name} did not start: {e:#}")),
        }
    }
    // Every path carries a connection before anything is timed; one that cannot is left out.
    let mut ready = Vec::new();
    for peer in peers {
        match tokio::time::timeout(
            Duration::from_secs(120),
            crate::figures::tcp::echo_once(peer.addr(ECHO)),
        )
        .await
        {
            Ok(Ok(_)) => ready.push(peer),
            Ok(Err(e)) => {
                left_out.push(format!("{} carried no first connection: {e:#}", peer.name))
            }
            Err(_) => left_out.push(format!(
                "{} carried no first connection within 120 s",
                peer.name
            )),
        }
    }
    for why in &left_out {
        eprintln!("left out: {why}");
    }
    Ok((ready, left_out))
}

/// Whether the peer called `name` is among those `only` asks for (none: every peer): its
/// name contains one of the words.
pub fn wanted(only: &[String], name: &str) -> bool {
    only.is_empty()
        || only
            .iter()
            .any(|w| name.to_lowercase().contains(&w.to_lowercase()))
}

/// What an installed peer forwards: a pod or a Service of the bench namespace, and its ports.
pub struct Target<'a> {
    /// `pod/NAME` or `svc/NAME`, as kubectl writes it.
    pub object: String,
    pub ports: &'a [u16],
    /// The ports are UDP ports.
    pub udp: bool,
}

impl<'a> Target<'a> {
    pub fn pod(name: &str, ports: &'a [u16]) -> Target<'a> {
        Target {
            object: format!("pod/{name}"),
            ports,
            udp: false,
        }
    }

    pub fn service(name: &str, ports: &'a [u16]) -> Target<'a> {
        Target {
            object: format!("svc/{name}"),
            ports,
            udp: false,
        }
    }

    pub fn udp(self) -> Target<'a> {
        Target { udp: true, ..self }
    }

    fn name(&self) -> &str {
        self.object.split_once('/').map_or("", |(_, name)| name)
    }

    fn is_service(&self) -> bool {
        self.object.starts_with("svc/")
    }

    /// The Service a peer that forwards Services reaches: the target, or the bench pod's own.
    fn service_name(&self) -> &str {
        if self.is_service() {
            self.name()
        } else {
            "bench"
        }
    }
}

/// `KFTRAY_TRANSPORT` for kftray's second row: SPDY inside WebSocket first, as kubectl.
pub const KFTRAY_WEBSOCKET: &str = "websocket";

/// kftray's name in the figures: its default (raw SPDY first), or the transport it was asked
/// to try first.
pub fn kftray_name(transport: Option<&str>) -> &'static str {
    match transport {
        None => "kftray",
        Some(_) => "kftray (WebSocket)",
    }
}

/// The kubectl of the control plane's own release, over its default (WebSocket) tunnel.
pub const KUBECTL_BUILT: &str = "kubectl (built with the control plane)";

pub fn kubectl_name(websockets: bool) -> &'static str {
    if websockets {
        "kubectl (WebSocket)"
    } else {
        "kubectl (SPDY)"
    }
}

fn direct(sim: &Sim) -> Peer {
    at(
        DIRECT,
        TCP_PORTS
            .iter()
            .map(|p| (*p, SocketAddr::new(sim.pod_ip, *p)))
            .collect(),
    )
}

/// No forwarder: the client connects to `addrs` itself.
pub fn at(name: &'static str, addrs: Vec<(u16, SocketAddr)>) -> Peer {
    Peer {
        name,
        addrs,
        pids: Vec::new(),
        children: Vec::new(),
        kftray: None,
        named: None,
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
        name: RELAYS,
        addrs: TCP_PORTS.iter().copied().zip(near_addrs).collect(),
        pids: vec![far.id(), near.id()],
        children: vec![near, far],
        kftray: None,
        named: None,
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

/// `kubectl port-forward` to the target, over its WebSocket tunnel or over SPDY.
pub fn kubectl(
    sim: &Sim,
    work: &Path,
    websockets: bool,
    target: &Target<'_>,
) -> anyhow::Result<Peer> {
    let name = kubectl_name(websockets);
    kubectl_with(Path::new("kubectl"), name, sim, work, websockets, target)
}

/// `kubectl port-forward` with the kubectl at `program`, in the figures as `name`.
fn kubectl_with(
    program: &Path,
    name: &'static str,
    sim: &Sim,
    work: &Path,
    websockets: bool,
    target: &Target<'_>,
) -> anyhow::Result<Peer> {
    let mut command = kubectl_program_command(program, sim, work, &target.object, websockets);
    command.args(target.ports.iter().map(|p| format!(":{p}")));
    let (child, lines) = spawn_reading(command, target.ports.len(), |l| {
        l.starts_with("Forwarding from")
    })?;
    let mut addrs = Vec::new();
    for line in lines {
        // "Forwarding from 127.0.0.1:41234 -> 9000"
        let mut words = line.split_whitespace().skip(2);
        let (Some(local), Some(_), Some(remote)) = (words.next(), words.next(), words.next())
        else {
            bail!("unexpected kubectl output: {line}");
        };
        addrs.push((remote.parse()?, local.parse()?));
    }
    Ok(Peer {
        name,
        addrs,
        pids: vec![child.id()],
        children: vec![child],
        kftray: None,
        named: None,
    })
}

/// `kubectl port-forward pod/bench-0 --address 127.0.0.1`, ports to be added.
pub fn kubectl_command(sim: &Sim, work: &Path, websockets: bool) -> Command {
    kubectl_command_for(sim, work, "pod/bench-0", websockets)
}

/// `kubectl port-forward TARGET --address 127.0.0.1` in the bench namespace.
pub fn kubectl_command_for(sim: &Sim, work: &Path, target: &str, websockets: bool) -> Command {
    kubectl_program_command(Path::new("kubectl"), sim, work, target, websockets)
}

fn kubectl_program_command(
    program: &Path,
    sim: &Sim,
    work: &Path,
    target: &str,
    websockets: bool,
) -> Command {
    let mut command = Command::new(program);
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
        named: None,
    })
}

/// kftray with one forward per port of the target, on free ports.
pub async fn kftray(
    bins: &Binaries,
    sim: &Sim,
    work: &Path,
    target: &Target<'_>,
    transport: Option<&'static str>,
) -> anyhow::Result<Peer> {
    let mut config = String::from("version = 1\n\n[defaults]\nnamespace = \"bench\"\n");
    let kind = if target.is_service() {
        "service"
    } else {
        "pod"
    };
    for port in target.ports {
        config.push_str(&format!(
            "\n[forwards.p{port}]\n{kind} = \"{}\"\nremote_port = {port}\nlocal_port = \"any\"\n",
            target.name()
        ));
    }
    let name = kftray_name(transport);
    let mut kftray = Kftray::project(
        &bins.kftray,
        &sim.kubeconfig,
        &fresh_dir(work, &name.replace([' ', '(', ')'], ""))?,
        &config,
    )?;
    kftray.transport = transport;
    kftray.up()?;
    let rows = kftray.wait_ready(target.ports.len()).await?;
    let mut addrs = Vec::new();
    for row in &rows {
        let port = row.alias.trim_start_matches('p').parse()?;
        addrs.push((port, row.local.context("kftray forward address")?));
    }
    Ok(Peer {
        name,
        addrs,
        pids: vec![rows[0].pid],
        children: Vec::new(),
        kftray: Some(kftray),
        named: None,
    })
}

/// A new folder for one run of a peer: its home, state and logs.
fn fresh_dir(work: &Path, peer: &str) -> anyhow::Result<std::path::PathBuf> {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = work.join(format!("{peer}-{run}"));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
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
