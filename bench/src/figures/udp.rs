//! Figure 7: UDP round trips through kftray's relay, krelay's and kftui's, at a fixed packet
//! rate, against the same echo reached directly. kubectl and kubefwd cannot carry UDP at all.

use super::{Figure, num};
use crate::backend::UDP_ECHO;
use crate::kftray::Kftray;
use crate::peers::{self, KFTUI, KRELAY, KUBEFWD, Target};
use crate::sim::{Binaries, Sim};
use crate::stats::{ms, quantile};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

pub async fn udp(bins: &Binaries, sim: &Sim, work: &Path, rate: u32, seconds: u32) -> Figure {
    let mut figure = Figure::new(
        7,
        &format!("UDP round trip at {rate} packets/s for {seconds} s (64 B datagrams)"),
        &["p50 ms", "p99 ms", "loss %"],
    );
    let direct = SocketAddr::new(sim.pod_ip, UDP_ECHO);
    figure.row(
        "direct to the backend",
        measure(direct, rate, seconds).await,
    );
    let config = format!(
        "version = 1\n\n[forwards.udp]\nservice = \"bench\"\nnamespace = \"bench\"\nprotocol = \"udp\"\nremote_port = {UDP_ECHO}\nlocal_port = \"any\"\n"
    );
    let values = match Kftray::project(&bins.kftray, &sim.kubeconfig, &work.join("udp"), &config) {
        Ok(kftray) => {
            let values = match async {
                kftray.up()?;
                let rows = kftray.wait_ready(1).await?;
                anyhow::Ok(
                    rows[0]
                        .local
                        .ok_or_else(|| anyhow::anyhow!("no local address"))?,
                )
            }
            .await
            {
                Ok(addr) => measure(addr, rate, seconds).await,
                Err(e) => failed(&e),
            };
            kftray.down();
            values
        }
        Err(e) => failed(&e),
    };
    figure.row("kftray (relay)", values);
    let target = Target::service("bench", &[UDP_ECHO]).udp();
    let mut no_udp = vec![("kubectl port-forward", "no UDP"), (KUBEFWD, "no UDP")];
    for (name, program, server) in [
        (KRELAY, "krelay", "krelay-server"),
        (KFTUI, "kftui", "kftray-server"),
    ] {
        let Some(program) = bins.peer(program) else {
            continue;
        };
        if bins.peer(server).is_none() {
            no_udp.push((name, "its relay pod's program is not in target/peers/bin"));
            continue;
        }
        let values = match peers::installed(name, &program, sim, work, &target).await {
            Ok(peer) => measure(peer.addr(UDP_ECHO), rate, seconds).await,
            Err(e) => failed(&e),
        };
        figure.row(name, values);
    }
    for (peer, why) in no_udp {
        figure.row(
            peer,
            vec![Value::String(why.into()), Value::Null, Value::Null],
        );
    }
    figure
}

fn failed(e: &anyhow::Error) -> Vec<Value> {
    vec![
        Value::String(format!("failed: {e:#}")),
        Value::Null,
        Value::Null,
    ]
}

/// Sends numbered datagrams at `rate` for `seconds` and times each one's echo.
async fn measure(addr: SocketAddr, rate: u32, seconds: u32) -> Vec<Value> {
    let result: anyhow::Result<Vec<Value>> = async {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        socket.connect(addr).await?;
        // A few echoes to warm the path (a relay's flow opens on the first; krelay's server
        // pod may still be starting).
        let mut echoed = 0;
        for _ in 0..60 {
            socket.send(&[0u8; 64]).await?;
            let mut buf = [0u8; 64];
            match tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf)).await {
                Ok(Ok(_)) => {
                    echoed += 1;
                    if echoed == 3 {
                        break;
                    }
                }
                // Refused (nothing listens on the port yet): wait as for a lost echo.
                Ok(Err(_)) => tokio::time::sleep(Duration::from_secs(1)).await,
                Err(_) => {}
            }
        }
        anyhow::ensure!(echoed == 3, "no echo within 60 s");
        let sent_at: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
        let rtts: Arc<Mutex<Vec<Duration>>> = Arc::default();
        let receiver = tokio::spawn({
            let (socket, sent_at, rtts) = (socket.clone(), sent_at.clone(), rtts.clone());
            async move {
                let mut buf = [0u8; 64];
                while let Ok(n) = socket.recv(&mut buf).await {
                    if n < 8 {
                        continue;
                    }
                    let seq = u64::from_be_bytes(buf[..8].try_into().unwrap_or_default());
                    if let Some(at) = sent_at
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&seq)
                    {
                        rtts.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(at.elapsed());
                    }
                }
            }
        });
        let total = u64::from(rate * seconds);
        let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
        for seq in 1..=total {
            tick.tick().await;
            let mut packet = [0u8; 64];
            packet[..8].copy_from_slice(&seq.to_be_bytes());
            sent_at
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(seq, Instant::now());
            socket.send(&packet).await?;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        receiver.abort();
        let rtts = rtts.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let loss = 100.0 * (total as f64 - rtts.len() as f64) / total as f64;
        Ok(vec![
            num(ms(quantile(&rtts, 0.5))),
            num(ms(quantile(&rtts, 0.99))),
            num(loss),
        ])
    }
    .await;
    result.unwrap_or_else(|e| failed(&e))
}
