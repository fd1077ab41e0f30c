//! Figures 5 and 6: how fast many forwards come up, how fast an edit is applied, and what an
//! idle run holds in memory.

use super::{Figure, num};
use crate::backend::ECHO;
use crate::kftray::{Kftray, forwards_to, many_forwards};
use crate::peers::{
    self, INSTALLED, KUBEFWD, Peer, Target, kubectl_command, kubectl_command_for, spawn_reading,
};
use crate::procfs::rss_mib;
use crate::sim::{Binaries, Sim};
use serde_json::Value;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// 5: `kftray up --detach` until every forward listens, for each count; kubectl for the same
/// number of local ports in one process (one pod, so one target; kftray resolves each forward
/// on its own); then a hot reload that adds one forward to the largest file.
pub async fn up_time(bins: &Binaries, sim: &Sim, work: &Path, counts: &[usize]) -> Figure {
    let mut figure = Figure::new(
        5,
        "Start-up: until every forward listens",
        &counts
            .iter()
            .map(|n| format!("{n} forwards, s"))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let mut kftray_times = Vec::new();
    let mut kubectl_times = Vec::new();
    let mut reload = Value::String("not measured".into());
    for &count in counts {
        let project = work.join(format!("up-{count}"));
        kftray_times.push(
            match Kftray::project(
                &bins.kftray,
                &sim.kubeconfig,
                &project,
                &many_forwards(count),
            ) {
                Ok(kftray) => {
                    let started = Instant::now();
                    let result = kftray.up();
                    let took = started.elapsed();
                    let value = match result {
                        Ok(()) => num(took.as_secs_f64()),
                        Err(e) => Value::String(format!("failed: {e}")),
                    };
                    if count == *counts.iter().max().unwrap_or(&0) {
                        reload = hot_reload(&kftray, count).await;
                    }
                    kftray.down();
                    value
                }
                Err(e) => Value::String(format!("failed: {e}")),
            },
        );
        eprintln!(
            "  kftray up --detach, {count} forwards: {:?}",
            kftray_times.last()
        );
        kubectl_times.push(kubectl_ports(sim, work, count));
        eprintln!("  kubectl, {count} ports: {:?}", kubectl_times.last());
    }
    figure.row("kftray up --detach", kftray_times);
    figure.row(
        "kubectl port-forward, one process with N ports of one pod",
        kubectl_times,
    );
    for (name, program) in many_capable(bins) {
        let mut times = Vec::new();
        for &count in counts {
            let started = Instant::now();
            times.push(match many(name, &program, sim, work, count).await {
                Ok(_) => num(started.elapsed().as_secs_f64()),
                Err(e) => Value::String(format!("failed: {e:#}")),
            });
            eprintln!("  {name}, {count} forwards: {:?}", times.last());
        }
        figure.row(name, times);
    }
    figure.notes.push(
        "kftui is given one config per forward, to the pod's Service; krelay one target line \
         with N port pairs; kubefwd is not in this figure: it forwards each port of a Service \
         once, so N forwards would need N Services."
            .to_owned(),
    );
    figure.notes.push(format!(
        "Hot reload, from saving a kftray.toml that adds one forward to a {}-forward file until \
         the new forward accepts a connection: {}.",
        counts.iter().max().unwrap_or(&0),
        match &reload {
            Value::Number(n) => format!("{n} ms"),
            other => other.as_str().unwrap_or_default().to_owned(),
        }
    ));
    figure
}

/// Appends one forward on a free port and times the save until that port accepts.
async fn hot_reload(kftray: &Kftray, count: usize) -> Value {
    let Some(port) = free_port() else {
        return Value::String("no free port".into());
    };
    let mut text = many_forwards(count);
    text.push_str(&format!(
        "\n[forwards.added]\npod = \"bench-0\"\nremote_port = {ECHO}\nlocal_port = {port}\n"
    ));
    // Saved as editors save: a temporary file renamed over the old one.
    let temp = kftray.file.with_extension("toml.tmp");
    if std::fs::write(&temp, text).is_err() {
        return Value::String("cannot write the file".into());
    }
    let started = Instant::now();
    if std::fs::rename(&temp, &kftray.file).is_err() {
        return Value::String("cannot save the file".into());
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    while started.elapsed() < Duration::from_secs(10) {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return num(started.elapsed().as_secs_f64() * 1000.0);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Value::String("the new forward did not listen within 10 s (no hot reload?)".into())
}

fn free_port() -> Option<u16> {
    Some(
        TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port(),
    )
}

/// kubectl with `count` local ports of the pod: until it has printed every "Forwarding from".
fn kubectl_ports(sim: &Sim, work: &Path, count: usize) -> Value {
    let mut command = kubectl_command(sim, work, true);
    command.args((0..count).map(|_| format!(":{ECHO}")));
    let started = Instant::now();
    match spawn_reading(command, count, |l| l.starts_with("Forwarding from")) {
        Ok((mut child, _)) => {
            let took = started.elapsed();
            let _ = child.kill();
            let _ = child.wait();
            num(took.as_secs_f64())
        }
        Err(e) => Value::String(format!("failed: {e}")),
    }
}

/// 6: resident memory of a run with `count` idle forwards, every one with its pod chosen and
/// its connection open: all to one pod, then each to a pod of its own (`many-0`…). kubectl
/// for the same: one process with as many ports of one pod, then one process per pod.
pub async fn memory(bins: &Binaries, sim: &Sim, work: &Path, count: usize) -> Figure {
    let mut figure = Figure::new(
        6,
        &format!("Idle memory with {count} forwards"),
        &["all to one pod: RSS MiB", "each to its own pod: RSS MiB"],
    );
    let one_pod = kftray_rss(
        bins,
        sim,
        &work.join("memory-one"),
        &many_forwards(count),
        count,
    )
    .await;
    let own_pods = forwards_to((0..count).map(|i| format!("many-{i}")));
    let own_pods = kftray_rss(bins, sim, &work.join("memory-many"), &own_pods, count).await;
    figure.row("kftray, one process", vec![one_pod, own_pods]);
    let mut one = kubectl_command(sim, work, true);
    one.args((0..count).map(|_| format!(":{ECHO}")));
    let one = kubectl_rss(vec![(one, count)]).await;
    let per_pod = (0..count)
        .map(|i| {
            let mut command = kubectl_command_for(sim, work, &format!("pod/many-{i}"), true);
            command.arg(format!(":{ECHO}"));
            (command, 1)
        })
        .collect();
    let per_pod = kubectl_rss(per_pod).await;
    figure.row(
        "kubectl port-forward (one process per pod, as it requires)",
        vec![one, per_pod],
    );
    for (name, program) in many_capable(bins) {
        let rss = match many(name, &program, sim, work, count).await {
            Ok(peer) => async {
                for (_, addr) in &peer.addrs {
                    crate::figures::tcp::echo_once(*addr).await?;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
                anyhow::Ok(num(rss_mib(&peer.pids)))
            }
            .await
            .unwrap_or_else(|e| Value::String(format!("failed: {e:#}"))),
            Err(e) => Value::String(format!("failed: {e:#}")),
        };
        figure.row(name, vec![rss, Value::Null]);
    }
    figure
}

/// The installed peers that can forward one port many times in one process: not kubefwd,
/// which forwards each port of a Service once (N forwards would need N Services).
fn many_capable(bins: &Binaries) -> impl Iterator<Item = (&'static str, PathBuf)> + '_ {
    INSTALLED
        .into_iter()
        .filter(|(name, _)| *name != KUBEFWD)
        .filter_map(|(name, program)| Some((name, bins.peer(program)?)))
}

/// An installed peer with `count` forwards of the bench pod's echo port, once every one
/// listens and the first carries an echo.
async fn many(
    name: &str,
    program: &Path,
    sim: &Sim,
    work: &Path,
    count: usize,
) -> anyhow::Result<Peer> {
    let ports = vec![ECHO; count];
    let peer = peers::installed(name, program, sim, work, &Target::pod("bench-0", &ports)).await?;
    crate::figures::tcp::echo_once(peer.addr(ECHO)).await?;
    Ok(peer)
}

/// Starts kftray on `config`, waits for every forward to be ready, sends a connection
/// through each, and reads the resident memory once idle.
async fn kftray_rss(bins: &Binaries, sim: &Sim, dir: &Path, config: &str, count: usize) -> Value {
    let kftray = match Kftray::project(&bins.kftray, &sim.kubeconfig, dir, config) {
        Ok(kftray) => kftray,
        Err(e) => return Value::String(format!("failed: {e}")),
    };
    let measured = async {
        kftray.up()?;
        let rows = kftray.wait_ready(count).await?;
        for row in &rows {
            if let Some(addr) = row.local {
                crate::figures::tcp::echo_once(addr).await?;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        anyhow::Ok(rss_mib(&[rows[0].pid]))
    }
    .await;
    kftray.down();
    match measured {
        Ok(rss) => num(rss),
        Err(e) => Value::String(format!("failed: {e}")),
    }
}

/// Starts each kubectl and waits for its `Forwarding from` lines, then reads the memory of
/// them all together.
async fn kubectl_rss(commands: Vec<(std::process::Command, usize)>) -> Value {
    let mut children = Vec::new();
    for (command, ports) in commands {
        match spawn_reading(command, ports, |l| l.starts_with("Forwarding from")) {
            Ok((child, _)) => children.push(child),
            Err(e) => return Value::String(format!("failed: {e}")),
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pids: Vec<u32> = children.iter().map(std::process::Child::id).collect();
    let rss = rss_mib(&pids);
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    num(rss)
}
