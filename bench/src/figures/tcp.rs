//! Figures 1–4: what one forward does with TCP, for every peer against the same pod.
//! Peers take turns (the order rotates each round) so machine noise falls on all of them.

use super::{Figure, num};
use crate::backend::{BUF, ECHO, SINK, SOURCE};
use crate::peers::{DIRECT, Peer, RELAYS};
use crate::procfs::cpu_seconds;
use crate::stats::{median, ms, quantile};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Each round visits every peer, starting one further along than the round before.
fn rotated(peers: &[Peer], round: usize) -> impl Iterator<Item = (usize, &Peer)> {
    (0..peers.len()).map(move |i| {
        let j = (i + round) % peers.len();
        (j, &peers[j])
    })
}

async fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// How long a transfer may go without progress before it counts as stalled: a peer that
/// stops carrying bytes (kftui waiting for a flow-control window that never opens) fails the
/// figure instead of hanging it.
const STALL: Duration = Duration::from_secs(30);

/// `io` within [`STALL`], or a "stalled" error that says how far the transfer got.
async fn progress<T>(
    io: impl Future<Output = std::io::Result<T>>,
    done: u64,
    of: u64,
) -> anyhow::Result<T> {
    match tokio::time::timeout(STALL, io).await {
        Ok(result) => Ok(result?),
        Err(_) => anyhow::bail!("stalled for {STALL:?} after {done} of {of} bytes"),
    }
}

/// Sends `bytes` to the sink and waits for its count: the upload is done when the far end
/// has every byte.
async fn upload(addr: SocketAddr, bytes: u64) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut stream = connect(addr).await?;
    let buf = vec![0xa5u8; BUF];
    let mut sent = 0;
    while sent < bytes {
        let n = (bytes - sent).min(BUF as u64) as usize;
        progress(stream.write_all(&buf[..n]), sent, bytes).await?;
        sent += n as u64;
    }
    stream.shutdown().await?;
    let got = progress(stream.read_u64(), sent, bytes).await?;
    anyhow::ensure!(got == bytes, "the sink got {got} of {bytes} bytes");
    Ok(started.elapsed())
}

/// Asks the source for `bytes` and reads them to EOF.
async fn download(addr: SocketAddr, bytes: u64) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut stream = connect(addr).await?;
    stream.write_u64(bytes).await?;
    let mut buf = vec![0u8; BUF];
    let mut got = 0;
    loop {
        let n = progress(stream.read(&mut buf), got, bytes).await?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    anyhow::ensure!(got == bytes, "got {got} of {bytes} bytes");
    Ok(started.elapsed())
}

/// Uploads or downloads `bytes` in all over `streams` connections at once; the time until
/// the last one is done.
async fn transfer(
    addr: SocketAddr,
    upward: bool,
    bytes: u64,
    streams: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let share = bytes / streams as u64;
    futures::future::try_join_all((0..streams).map(|_| async move {
        if upward {
            upload(addr, share).await
        } else {
            download(addr, share).await
        }
    }))
    .await?;
    Ok(started.elapsed())
}

/// 1: one connection's throughput each way, and the peer's CPU per GiB carried; or 11, with
/// `streams` bulk connections at once on one forward (`bytes` in all each way): what one
/// tunnel does when many streams share it.
pub async fn throughput(
    peers: &[Peer],
    api_server: &[u32],
    bytes: u64,
    rounds: usize,
    streams: usize,
) -> Figure {
    let mib = bytes >> 20;
    let (id, title) = if streams == 1 {
        (
            1,
            format!("One connection's throughput, {mib} MiB each way (median of {rounds})"),
        )
    } else {
        (
            11,
            format!(
                "{streams} bulk connections at once on one forward, {mib} MiB each way in all (median of {rounds})"
            ),
        )
    };
    let mut up = vec![Vec::new(); peers.len()];
    let mut down = vec![Vec::new(); peers.len()];
    let mut cpu = vec![0.0; peers.len()];
    let mut api_cpu = vec![0.0; peers.len()];
    let mut moved = vec![0u64; peers.len()];
    let mut errors = vec![None; peers.len()];
    for round in 0..rounds {
        for (i, peer) in rotated(peers, round) {
            let before = cpu_seconds(&peer.pids);
            let api_before = cpu_seconds(api_server);
            for direction in [round % 2, (round + 1) % 2] {
                let addr = peer.addr([SINK, SOURCE][direction]);
                let result = transfer(addr, direction == 0, bytes, streams).await;
                match result {
                    Ok(took) => {
                        let rate = bytes as f64 / 1e6 / took.as_secs_f64();
                        eprintln!(
                            "  {:<28} {} {rate:8.1} MB/s",
                            peer.name,
                            ["up  ", "down"][direction]
                        );
                        [&mut up, &mut down][direction][i].push(rate);
                        moved[i] += bytes;
                    }
                    Err(e) => errors[i] = Some(e.to_string()),
                }
            }
            cpu[i] += cpu_seconds(&peer.pids) - before;
            api_cpu[i] += cpu_seconds(api_server) - api_before;
        }
    }
    let mut figure = Figure::new(
        id,
        &title,
        &[
            "upload MB/s",
            "download MB/s",
            "forwarder CPU s per GiB",
            "API server CPU s per GiB",
        ],
    );
    for (i, peer) in peers.iter().enumerate() {
        let rate = |v: &Vec<f64>| match (&errors[i], v.is_empty()) {
            (Some(e), true) => Value::String(format!("failed: {e}")),
            _ => num(median(v)),
        };
        let gib = moved[i] as f64 / (1u64 << 30) as f64;
        // A failed transfer spent CPU on bytes that are not counted: no honest ratio.
        let per_gib = |seconds: f64, applies: bool| {
            if applies && moved[i] > 0 && errors[i].is_none() {
                num(seconds / gib)
            } else {
                Value::Null
            }
        };
        // Direct and relayed traffic does not pass the API server; its CPU then is noise.
        let through_api = ![DIRECT, RELAYS].contains(&peer.name);
        figure.row(
            peer.name,
            vec![
                rate(&up[i]),
                rate(&down[i]),
                per_gib(cpu[i], !peer.pids.is_empty()),
                per_gib(api_cpu[i], through_api),
            ],
        );
    }
    figure.notes.push(
        "MB = 10^6 bytes. Upload ends when the backend has counted every byte; download when \
         the last byte arrived. CPU is user+system time of the forwarding processes (kubectl: \
         the dispatcher and the kubectl it runs; relays: both) over every transfer, divided \
         by the GiB carried, and left out for a peer whose transfer failed; the API server's \
         (kubesim's, which also plays the kubelet; on the real control plane, kube-apiserver \
         and the kubelet together) is given apart: on these machines every process shares \
         the same cores."
            .to_owned(),
    );
    figure
}

/// One short connection: connect, 64-byte request, its echo, close.
pub async fn echo_once(addr: SocketAddr) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut stream = connect(addr).await?;
    let request = [7u8; 64];
    stream.write_all(&request).await?;
    let mut reply = [0u8; 64];
    stream.read_exact(&mut reply).await?;
    anyhow::ensure!(reply == request, "wrong echo");
    Ok(started.elapsed())
}

/// 2: connection setup latency, `count` sequential short connections per peer.
pub async fn setup(peers: &[Peer], count: usize) -> Figure {
    let batches = 4;
    let mut samples = vec![Vec::new(); peers.len()];
    let mut failures = vec![0usize; peers.len()];
    for round in 0..batches {
        for (i, peer) in rotated(peers, round) {
            for _ in 0..count / batches {
                match tokio::time::timeout(Duration::from_secs(30), echo_once(peer.addr(ECHO)))
                    .await
                {
                    Ok(Ok(took)) => samples[i].push(took),
                    _ => failures[i] += 1,
                }
            }
        }
    }
    let mut figure = Figure::new(
        2,
        &format!(
            "Connection setup: {count} sequential short connections (connect, 64 B request, reply, close)"
        ),
        &["p50 ms", "p99 ms", "failed"],
    );
    for (i, peer) in peers.iter().enumerate() {
        figure.row(
            peer.name,
            vec![
                num(ms(quantile(&samples[i], 0.5))),
                num(ms(quantile(&samples[i], 0.99))),
                Value::from(failures[i]),
            ],
        );
    }
    figure
}

/// 3: round trips of 64 bytes on a connection kept open.
pub async fn round_trip(peers: &[Peer], count: usize) -> Figure {
    let batches = 4;
    let mut samples = vec![Vec::new(); peers.len()];
    let mut errors = vec![None; peers.len()];
    for round in 0..batches {
        for (i, peer) in rotated(peers, round) {
            let result: anyhow::Result<()> = async {
                let mut stream = connect(peer.addr(ECHO)).await?;
                let request = [9u8; 64];
                let mut reply = [0u8; 64];
                for n in 0..count / batches + 20 {
                    let started = Instant::now();
                    stream.write_all(&request).await?;
                    stream.read_exact(&mut reply).await?;
                    // The first few warm the path up.
                    if n >= 20 {
                        samples[i].push(started.elapsed());
                    }
                }
                Ok(())
            }
            .await;
            if let Err(e) = result {
                errors[i] = Some(e.to_string());
            }
        }
    }
    let mut figure = Figure::new(
        3,
        &format!("Request/response round trip on a kept-open connection ({count} × 64 B)"),
        &["p50 ms", "p99 ms"],
    );
    for (i, peer) in peers.iter().enumerate() {
        let values = match &errors[i] {
            Some(e) => vec![Value::String(format!("failed: {e}")), Value::Null],
            None => vec![
                num(ms(quantile(&samples[i], 0.5))),
                num(ms(quantile(&samples[i], 0.99))),
            ],
        };
        figure.row(peer.name, values);
    }
    figure
}

/// 4: `count` connections open at once on one forward, each carrying 1 KiB both ways.
pub async fn concurrent(peers: &[Peer], count: usize) -> Figure {
    let mut figure = Figure::new(
        4,
        &format!(
            "{count} concurrent connections on one forward (1 KiB echoed on each, all open together)"
        ),
        &["errors", "total s"],
    );
    for peer in peers {
        let addr = peer.addr(ECHO);
        let echoed = Arc::new(AtomicUsize::new(0));
        let settled = Arc::new(AtomicUsize::new(0));
        let all_settled = Arc::new(tokio::sync::Notify::new());
        let started = Instant::now();
        let tasks: Vec<_> = (0..count)
            .map(|_| {
                let (echoed, settled, all_settled) =
                    (echoed.clone(), settled.clone(), all_settled.clone());
                tokio::spawn(async move {
                    let result = tokio::time::timeout(Duration::from_secs(60), async {
                        let mut stream = connect(addr).await?;
                        let request = [3u8; 1024];
                        stream.write_all(&request).await?;
                        let mut reply = [0u8; 1024];
                        stream.read_exact(&mut reply).await?;
                        anyhow::ensure!(reply == request, "wrong echo");
                        Ok(stream)
                    })
                    .await;
                    let stream = match result {
                        Ok(Ok(stream)) => {
                            echoed.fetch_add(1, Ordering::Relaxed);
                            Some(stream)
                        }
                        _ => None,
                    };
                    // Hold the connection until every other one is settled, so all are
                    // open at the same time.
                    let notified = all_settled.notified();
                    if settled.fetch_add(1, Ordering::AcqRel) + 1 == count {
                        all_settled.notify_waiters();
                    } else {
                        let _ = tokio::time::timeout(Duration::from_secs(90), notified).await;
                    }
                    drop(stream);
                })
            })
            .collect();
        futures::future::join_all(tasks).await;
        let took = started.elapsed();
        let errors = count - echoed.load(Ordering::Relaxed);
        eprintln!(
            "  {:<28} {errors} errors, {:.2} s",
            peer.name,
            took.as_secs_f64()
        );
        figure.row(
            peer.name,
            vec![Value::from(errors), num(took.as_secs_f64())],
        );
        // Let the forwarder finish closing them before the next peer.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    figure
}
