//! Figure 9: the proxy into the cluster (`[proxy]`), SOCKS5 and HTTP CONNECT to the backend
//! by its Service's name, beside a plain forward to the same pod port and a direct
//! connection: bulk throughput both ways, and the setup of a new connection (connect, the
//! proxy's handshake, the relay's name lookup and dial, one small request answered).

use super::Figure;
use super::http::{connect, measure};
use crate::backend::HTTP;
use crate::kftray::Kftray;
use crate::peers;
use crate::sim::{Binaries, Sim};
use anyhow::Context;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The backend as a program in the cluster would name it.
const NAME: &str = "bench.bench.svc.cluster.local";

/// How a connection reaches the backend.
enum Hop {
    Plain(SocketAddr),
    /// A SOCKS5 proxy, asked for the backend by name, or by this address (its ClusterIP).
    Socks(SocketAddr, Option<IpAddr>),
    Connect(SocketAddr),
}

impl Hop {
    async fn open(&self) -> anyhow::Result<BufReader<TcpStream>> {
        match self {
            Hop::Plain(addr) => connect(*addr).await,
            Hop::Socks(proxy, ip) => {
                let mut stream = connect(*proxy).await?;
                let s = stream.get_mut();
                let mut request = vec![5, 1, 0, 5, 1, 0];
                match ip {
                    None => {
                        request.extend([3, NAME.len() as u8]);
                        request.extend_from_slice(NAME.as_bytes());
                    }
                    Some(IpAddr::V4(ip)) => {
                        request.push(1);
                        request.extend(ip.octets());
                    }
                    Some(IpAddr::V6(ip)) => {
                        request.push(4);
                        request.extend(ip.octets());
                    }
                }
                request.extend_from_slice(&HTTP.to_be_bytes());
                // The greeting and the request in one write, as curl sends them.
                s.write_all(&request).await?;
                let mut reply = [0u8; 6];
                s.read_exact(&mut reply).await?;
                anyhow::ensure!(reply[..2] == [5, 0], "SOCKS greeting refused: {reply:?}");
                anyhow::ensure!(reply[3] == 0, "SOCKS reply {}", reply[3]);
                // The bound address: its type says how long it is; then its port.
                let rest = match reply[5] {
                    1 => 4 + 2,
                    4 => 16 + 2,
                    3 => usize::from(s.read_u8().await?) + 2,
                    other => anyhow::bail!("SOCKS reply with address type {other}"),
                };
                let mut bound = vec![0u8; rest];
                s.read_exact(&mut bound).await?;
                Ok(stream)
            }
            Hop::Connect(proxy) => {
                let mut stream = connect(*proxy).await?;
                let head = format!("CONNECT {NAME}:{HTTP} HTTP/1.1\r\nHost: {NAME}:{HTTP}\r\n\r\n");
                stream.get_mut().write_all(head.as_bytes()).await?;
                let mut line = String::new();
                stream.read_line(&mut line).await?;
                anyhow::ensure!(line.contains(" 200 "), "CONNECT answered {line:?}");
                while line != "\r\n" {
                    line.clear();
                    anyhow::ensure!(stream.read_line(&mut line).await? > 0, "closed");
                }
                Ok(stream)
            }
        }
    }
}

async fn project(
    bins: &Binaries,
    sim: &Sim,
    work: &Path,
    cluster_ip: IpAddr,
) -> anyhow::Result<(Kftray, Vec<(&'static str, Hop)>)> {
    let config = format!(
        "version = 1\n\n[defaults]\nnamespace = \"bench\"\n\n\
         [forwards.plain]\npod = \"bench-0\"\nremote_port = {HTTP}\nlocal_port = \"any\"\n\n\
         [forwards.relayed]\nservice = \"bench\"\nremote_port = {HTTP}\nlocal_port = \"any\"\nvia = \"relay\"\n\n\
         [proxy]\nsocks = {}\nhttp = {}\n",
        free_port()?,
        free_port()?
    );
    let kftray = Kftray::project(&bins.kftray, &sim.kubeconfig, &work.join("proxy"), &config)?;
    kftray.up()?;
    let rows = kftray.wait_ready(4).await?;
    let addr = |alias: &str| {
        rows.iter()
            .find(|r| r.alias == alias)
            .and_then(|r| r.local)
            .with_context(|| format!("no address for {alias}"))
    };
    let hops = vec![
        ("kftray forward (port-forward)", Hop::Plain(addr("plain")?)),
        ("kftray forward via relay", Hop::Plain(addr("relayed")?)),
        (
            "kftray SOCKS5 proxy, by name",
            Hop::Socks(addr("proxy.socks")?, None),
        ),
        (
            "kftray SOCKS5 proxy, by ClusterIP",
            Hop::Socks(addr("proxy.socks")?, Some(cluster_ip)),
        ),
        (
            "kftray HTTP CONNECT proxy, by name",
            Hop::Connect(addr("proxy.http")?),
        ),
    ];
    Ok((kftray, hops))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub async fn proxy(
    bins: &Binaries,
    sim: &Sim,
    work: &Path,
    bytes: u64,
    rounds: usize,
    setups: usize,
) -> Figure {
    let mut figure = Figure::new(
        9,
        &format!(
            "The proxy into the cluster beside a forward: HTTP {} MiB each way (median of \
             {rounds}), and {setups} new connections each with one small request",
            bytes >> 20
        ),
        &[
            "download MB/s",
            "upload MB/s",
            "setup p50 ms",
            "setup p99 ms",
        ],
    );
    let mut hops = vec![(
        "direct to the backend",
        Hop::Plain(SocketAddr::new(sim.pod_ip, HTTP)),
    )];
    let cluster_ip = match sim.cluster_ip("bench").await {
        Ok(ip) => ip,
        Err(e) => {
            figure
                .notes
                .push(format!("no ClusterIP for the backend: {e:#}"));
            return figure;
        }
    };
    let kftray = match project(bins, sim, work, cluster_ip).await {
        Ok((kftray, more)) => {
            hops.extend(more);
            Some(kftray)
        }
        Err(e) => {
            figure.notes.push(format!("kftray did not start: {e}"));
            None
        }
    };
    // krelay's proxy, when installed: by ClusterIP only, since its server resolves names
    // with its host's resolver, and a pod here is a local process with the host's.
    let krelay = match bins.peer("krelay") {
        Some(program) => match peers::krelay_proxy(&program, sim, work).await {
            Ok(peer) => {
                hops.push((
                    "krelay SOCKS5 proxy (`krelay proxy`), by ClusterIP",
                    Hop::Socks(peer.addr(peers::SOCKS), Some(cluster_ip)),
                ));
                Some(peer)
            }
            Err(e) => {
                figure
                    .notes
                    .push(format!("krelay proxy did not start: {e:#}"));
                None
            }
        },
        None => None,
    };
    for (name, hop) in &hops {
        let values = measure(name, || hop.open(), bytes, rounds, setups).await;
        figure.row(name, values);
    }
    if let Some(kftray) = kftray {
        kftray.down();
    }
    drop(krelay);
    figure.notes.push(format!(
        "All kftray rows are one kftray process. The proxies reach the backend by its \
         Service's name ({NAME}), which the relay pod resolves with the cluster's DNS at each \
         new connection and then dials the ClusterIP; \"via relay\" is a forward to the same \
         Service through the same relay, to its ClusterIP without a lookup. A connection's \
         setup counts the proxy's handshake (SOCKS5 greeting and request in one write, as curl \
         sends them; or CONNECT and its 200) and one small request answered. By ClusterIP, \
         the relay dials the address it is given, without a lookup: the only way to compare \
         with krelay's proxy here, whose server (a local process, as every pod here) resolves \
         names with the host's resolver, which does not know the cluster's names. krelay's \
         proxy answers the SOCKS request before it has dialled."
    ));
    figure
}
