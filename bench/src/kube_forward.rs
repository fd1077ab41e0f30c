//! The kube-rs way, as a peer process: each local connection gets its own
//! `Api::portforward` (a new WebSocket upgrade, v4/v5 channel protocol).

use k8s_openapi::api::core::v1::Pod;
use tokio::net::TcpListener;

pub async fn run(namespace: &str, pod: &str, ports: &[u16]) -> anyhow::Result<()> {
    let client = kube::Client::try_default().await?;
    let pods: kube::Api<Pod> = kube::Api::namespaced(client, namespace);
    let mut tasks = Vec::new();
    for &port in ports {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        println!("{}", listener.local_addr()?);
        let (pods, pod) = (pods.clone(), pod.to_owned());
        tasks.push(tokio::spawn(async move {
            loop {
                let Ok((mut local, _)) = listener.accept().await else {
                    continue;
                };
                let _ = local.set_nodelay(true);
                let (pods, pod) = (pods.clone(), pod.clone());
                tokio::spawn(async move {
                    let Ok(mut forwarder) = pods.portforward(&pod, &[port]).await else {
                        return;
                    };
                    if let Some(mut remote) = forwarder.take_stream(port) {
                        let _ = tokio::io::copy_bidirectional(&mut local, &mut remote).await;
                    }
                    drop(forwarder);
                });
            }
        }));
    }
    futures::future::join_all(tasks).await;
    Ok(())
}
