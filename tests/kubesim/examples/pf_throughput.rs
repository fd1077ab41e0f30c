//! One connection's echo throughput: straight to a pod's TCP echo backend, then through the
//! sim's WebSocket (v4.channel.k8s.io) port-forward with kube-rs.
//! `cargo run --release -p kubesim --example pf_throughput [MiB]`

use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use kubesim::ClusterOptions;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

async fn echo_rate<S: AsyncRead + AsyncWrite + Send + 'static>(
    stream: S,
    total: usize,
) -> anyhow::Result<f64> {
    let (mut r, mut w) = tokio::io::split(stream);
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        let chunk = vec![0x5a_u8; 256 * 1024];
        let mut sent = 0;
        while sent < total {
            let n = chunk.len().min(total - sent);
            w.write_all(&chunk[..n]).await?;
            sent += n;
        }
        w.flush().await?;
        Ok::<_, std::io::Error>(w)
    });
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0;
    while got < total {
        let n = r.read(&mut buf).await?;
        anyhow::ensure!(n > 0, "stream ended after {got} bytes");
        got += n;
    }
    let secs = start.elapsed().as_secs_f64();
    drop(writer.await??);
    Ok(total as f64 / secs / 1e6)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1024);
    let total = mib << 20;
    let cluster = kubesim::testing::demo_cluster(ClusterOptions::default()).await?;
    let addr = cluster
        .pod_addr("demo", "postgres-0", 5432)
        .ok_or_else(|| anyhow::anyhow!("no backend"))?;
    let direct = echo_rate(tokio::net::TcpStream::connect(addr).await?, total).await?;
    println!("direct to the echo backend:        {direct:7.0} MB/s each way ({mib} MiB)");

    let kubeconfig = kube::config::Kubeconfig::read_from(cluster.kubeconfig_path())?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let pods: kube::Api<Pod> = kube::Api::namespaced(kube::Client::try_from(config)?, "demo");
    let mut pf = pods.portforward("postgres-0", &[5432]).await?;
    let stream = pf
        .take_stream(5432)
        .ok_or_else(|| anyhow::anyhow!("no stream"))?;
    let ws = echo_rate(stream, total).await?;
    println!("kube-rs WebSocket port-forward:    {ws:7.0} MB/s each way ({mib} MiB)");
    cluster.shutdown().await;
    Ok(())
}
