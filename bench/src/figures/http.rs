//! Figure 8: HTTP through a forward, with kftray's HTTP log off and on (one kftray process,
//! two forwards to the same pod port), beside a direct connection and kubectl: what reading
//! every request and response costs on a large transfer and on small requests.

use super::{Figure, num};
use crate::backend::{BUF, HTTP};
use crate::kftray::Kftray;
use crate::peers::{kubectl_command, spawn_reading};
use crate::procfs::cpu_seconds;
use crate::sim::{Binaries, Sim};
use crate::stats::{median, ms, quantile};
use anyhow::Context;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

struct Path8 {
    name: &'static str,
    addr: SocketAddr,
    pids: Vec<u32>,
}

/// A response's head read off `stream`: its Content-Length.
async fn content_length(stream: &mut BufReader<TcpStream>) -> anyhow::Result<u64> {
    let mut length = None;
    let mut line = String::new();
    loop {
        line.clear();
        anyhow::ensure!(stream.read_line(&mut line).await? > 0, "closed mid-head");
        let header = line.trim_end();
        if header.is_empty() {
            return length.context("no Content-Length");
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok();
        }
    }
}

/// Reads and drops `n` body bytes.
async fn skip(stream: &mut BufReader<TcpStream>, mut n: u64) -> anyhow::Result<()> {
    while n > 0 {
        let chunk = stream.fill_buf().await?;
        anyhow::ensure!(!chunk.is_empty(), "closed mid-body, {n} bytes short");
        let take = chunk.len().min(n as usize);
        stream.consume(take);
        n -= take as u64;
    }
    Ok(())
}

pub(crate) async fn connect(addr: SocketAddr) -> anyhow::Result<BufReader<TcpStream>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(BufReader::with_capacity(BUF, stream))
}

async fn download(addr: SocketAddr, bytes: u64) -> anyhow::Result<Duration> {
    let started = Instant::now();
    download_on(connect(addr).await?, bytes).await?;
    Ok(started.elapsed())
}

/// A download of `bytes` on a stream already open to the HTTP backend.
pub(crate) async fn download_on(
    mut stream: BufReader<TcpStream>,
    bytes: u64,
) -> anyhow::Result<()> {
    let request = format!("GET /bytes/{bytes} HTTP/1.1\r\nHost: bench\r\n\r\n");
    stream.get_mut().write_all(request.as_bytes()).await?;
    let length = content_length(&mut stream).await?;
    anyhow::ensure!(length == bytes, "asked {bytes}, told {length}");
    skip(&mut stream, length).await
}

async fn upload(addr: SocketAddr, bytes: u64) -> anyhow::Result<Duration> {
    let started = Instant::now();
    upload_on(connect(addr).await?, bytes).await?;
    Ok(started.elapsed())
}

/// An upload of `bytes` on a stream already open to the HTTP backend, until it is answered.
pub(crate) async fn upload_on(mut stream: BufReader<TcpStream>, bytes: u64) -> anyhow::Result<()> {
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: bench\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {bytes}\r\n\r\n"
    );
    stream.get_mut().write_all(head.as_bytes()).await?;
    let buf = vec![0xa5u8; BUF];
    let mut sent = 0;
    while sent < bytes {
        let n = (bytes - sent).min(BUF as u64) as usize;
        stream.get_mut().write_all(&buf[..n]).await?;
        sent += n as u64;
    }
    // Answered once the server has read every byte.
    let length = content_length(&mut stream).await?;
    skip(&mut stream, length).await
}

/// One small request and its whole answer, on a stream already open.
pub(crate) async fn request_on(
    stream: &mut BufReader<TcpStream>,
    path: &str,
) -> anyhow::Result<()> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nAccept: */*\r\n\r\n");
    stream.get_mut().write_all(request.as_bytes()).await?;
    let length = content_length(stream).await?;
    skip(stream, length).await
}

/// `count` small requests one after another on one keep-alive connection.
async fn requests(addr: SocketAddr, count: usize) -> anyhow::Result<Vec<Duration>> {
    let mut stream = connect(addr).await?;
    let mut took = Vec::with_capacity(count);
    for i in 0..count {
        let started = Instant::now();
        request_on(&mut stream, &format!("/item/{i}")).await?;
        took.push(started.elapsed());
    }
    Ok(took)
}

/// kftray with two forwards to the pod's HTTP port, one of them logged.
async fn kftray(bins: &Binaries, sim: &Sim, work: &Path) -> anyhow::Result<(Kftray, Vec<Path8>)> {
    let config = format!(
        "version = 1\n\n[defaults]\nnamespace = \"bench\"\n\n\
         [forwards.plain]\npod = \"bench-0\"\nremote_port = {HTTP}\nlocal_port = \"any\"\n\n\
         [forwards.logged]\npod = \"bench-0\"\nremote_port = {HTTP}\nlocal_port = \"any\"\n\
         http_log = true\n"
    );
    let kftray = Kftray::project(
        &bins.kftray,
        &sim.kubeconfig,
        &work.join("kftray-http"),
        &config,
    )?;
    kftray.up()?;
    let rows = kftray.wait_ready(2).await?;
    let addr = |alias: &str| {
        rows.iter()
            .find(|r| r.alias == alias)
            .and_then(|r| r.local)
            .context("kftray forward address")
    };
    let pid = rows[0].pid;
    let paths = vec![
        Path8 {
            name: "kftray, http_log off",
            addr: addr("plain")?,
            pids: vec![pid],
        },
        Path8 {
            name: "kftray, http_log on",
            addr: addr("logged")?,
            pids: vec![pid],
        },
    ];
    Ok((kftray, paths))
}

/// The log's entries and the entries it says it dropped.
fn logged_entries(work: &Path) -> (usize, u64) {
    let dir = work.join("kftray-http/home/http_logs");
    let mut text = String::new();
    for project in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(project.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            text.push_str(&std::fs::read_to_string(file.path()).unwrap_or_default());
        }
    }
    let entries = text
        .lines()
        .filter(|l| l.starts_with("# kftray: ") && l.contains("\"method\":"))
        .count();
    let dropped = text
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .filter_map(|l| {
            l.strip_suffix(" entries dropped: the log could not keep up with the traffic")
        })
        .filter_map(|n| n.parse::<u64>().ok())
        .sum();
    (entries, dropped)
}

pub async fn http(
    bins: &Binaries,
    sim: &Sim,
    work: &Path,
    bytes: u64,
    rounds: usize,
    count: usize,
) -> Figure {
    let mut figure = Figure::new(
        8,
        &format!(
            "HTTP through a forward, kftray's HTTP log off and on: {} MiB each way (median of \
             {rounds}), and {count} small requests on one keep-alive connection",
            bytes >> 20
        ),
        &[
            "download MB/s",
            "upload MB/s",
            "forwarder CPU s per GiB",
            "request p50 ms",
            "request p99 ms",
        ],
    );
    let mut paths = vec![Path8 {
        name: "direct to the backend",
        addr: SocketAddr::new(sim.pod_ip, HTTP),
        pids: Vec::new(),
    }];
    let mut command = kubectl_command(sim, work, false);
    command.arg(format!(":{HTTP}"));
    let kubectl = spawn_reading(command, 1, |l| l.starts_with("Forwarding from"));
    let _kubectl = match kubectl {
        Ok((child, lines)) => {
            if let Some(addr) = lines
                .first()
                .and_then(|l| l.split_whitespace().nth(2))
                .and_then(|a| a.parse().ok())
            {
                paths.push(Path8 {
                    name: "kubectl (SPDY)",
                    addr,
                    pids: vec![child.id()],
                });
            }
            Some(KillOnDrop(child))
        }
        Err(e) => {
            figure.notes.push(format!("kubectl did not start: {e}"));
            None
        }
    };
    let kftray = match kftray(bins, sim, work).await {
        Ok((kftray, kftray_paths)) => {
            paths.extend(kftray_paths);
            Some(kftray)
        }
        Err(e) => {
            figure.notes.push(format!("kftray did not start: {e}"));
            None
        }
    };
    let mut rates = vec![(Vec::new(), Vec::new()); paths.len()];
    let mut cpu = vec![0.0; paths.len()];
    let mut errors: Vec<Option<String>> = vec![None; paths.len()];
    for round in 0..rounds {
        for k in 0..paths.len() {
            let i = (k + round) % paths.len();
            let path = &paths[i];
            let before = cpu_seconds(&path.pids);
            for result in [
                download(path.addr, bytes).await.map(|t| (0, t)),
                upload(path.addr, bytes).await.map(|t| (1, t)),
            ] {
                match result {
                    Ok((direction, took)) => {
                        let rate = bytes as f64 / 1e6 / took.as_secs_f64();
                        eprintln!(
                            "  {:<24} {} {rate:8.1} MB/s",
                            path.name,
                            ["down", "up  "][direction]
                        );
                        if direction == 0 {
                            rates[i].0.push(rate);
                        } else {
                            rates[i].1.push(rate);
                        }
                    }
                    Err(e) => errors[i] = Some(e.to_string()),
                }
            }
            cpu[i] += cpu_seconds(&path.pids) - before;
        }
    }
    for (i, path) in paths.iter().enumerate() {
        let carried = (rates[i].0.len() + rates[i].1.len()) as f64 * bytes as f64;
        let rate = |v: &Vec<f64>| match (&errors[i], v.is_empty()) {
            (Some(e), true) => Value::String(format!("failed: {e}")),
            _ => num(median(v)),
        };
        let per_gib = if path.pids.is_empty() || carried == 0.0 {
            Value::Null
        } else {
            num(cpu[i] / (carried / (1u64 << 30) as f64))
        };
        let (p50, p99) = match requests(path.addr, count).await {
            Ok(took) => (
                num(ms(quantile(&took, 0.5))),
                num(ms(quantile(&took, 0.99))),
            ),
            Err(e) => {
                let failed = Value::String(format!("failed: {e}"));
                (failed.clone(), failed)
            }
        };
        figure.row(
            path.name,
            vec![rate(&rates[i].0), rate(&rates[i].1), per_gib, p50, p99],
        );
    }
    // Stopped first: a run writes the last of its log as it stops.
    if let Some(kftray) = kftray {
        kftray.down();
    }
    let (entries, dropped) = logged_entries(work);
    let expected = count + 2 * rounds;
    figure.notes.push(format!(
        "Both kftray rows are one kftray process with two forwards to the pod's HTTP port, one \
         with `http_log = true` (the default 64 KiB body limit): every request and response \
         is parsed as it streams and written to its .http file. The log holds {entries} \
         entries (of {expected} exchanges) and says {dropped} were dropped (the writer thread's queue holds 4096). \
         The forwarder's CPU per GiB counts the whole kftray process over the bulk transfers."
    ));
    figure
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Bulk HTTP both ways over new connections from `open` (median rate of `rounds`), then
/// `setups` new connections each with one small request: download MB/s, upload MB/s, setup
/// p50 and p99 ms, or the failure where a number could not be had.
pub(crate) async fn measure<F, Fut>(
    name: &str,
    open: F,
    bytes: u64,
    rounds: usize,
    setups: usize,
) -> Vec<Value>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<BufReader<TcpStream>>>,
{
    let mut rates = (Vec::new(), Vec::new());
    let mut error = None;
    for _ in 0..rounds {
        let transfer = async {
            let started = Instant::now();
            download_on(open().await?, bytes).await?;
            let down = started.elapsed();
            let started = Instant::now();
            upload_on(open().await?, bytes).await?;
            anyhow::Ok((down, started.elapsed()))
        };
        match transfer.await {
            Ok((down, up)) => {
                rates.0.push(bytes as f64 / 1e6 / down.as_secs_f64());
                rates.1.push(bytes as f64 / 1e6 / up.as_secs_f64());
            }
            Err(e) => error = Some(e.to_string()),
        }
    }
    let rate = |v: &Vec<f64>| match (&error, v.is_empty()) {
        (Some(e), true) => Value::String(format!("failed: {e}")),
        _ => num(median(v)),
    };
    let mut took = Vec::with_capacity(setups);
    let mut setup_error = None;
    for _ in 0..setups {
        let setup = async {
            let started = Instant::now();
            let mut stream = open().await?;
            request_on(&mut stream, "/item/0").await?;
            anyhow::Ok(started.elapsed())
        };
        match setup.await {
            Ok(t) => took.push(t),
            Err(e) => setup_error = Some(e.to_string()),
        }
    }
    let (p50, p99) = match (took.is_empty(), setup_error) {
        (true, Some(e)) => {
            let failed = Value::String(format!("failed: {e}"));
            (failed.clone(), failed)
        }
        _ => (
            num(ms(quantile(&took, 0.5))),
            num(ms(quantile(&took, 0.99))),
        ),
    };
    eprintln!("  {name:<36} {:?} {:?} {p50} {p99}", rates.0, rates.1);
    vec![rate(&rates.0), rate(&rates.1), p50, p99]
}
