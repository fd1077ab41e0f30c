//! Cluster clients built as kubectl reads kubeconfig: client certificates, exec credential
//! plugins, credentials the cluster rejects and a proxy-url, against the simulated cluster over
//! HTTPS.

use base64::Engine;
use kftray::cluster::{ClusterError, ClusterKey, Clusters};
use kubesim::testing::demo_cluster;
use kubesim::{ClusterOptions, Credentials};
use std::path::Path;

fn key(kubeconfig: &Path) -> ClusterKey {
    ClusterKey {
        kubeconfig: Some(kubeconfig.to_path_buf()),
        context: None,
    }
}

async fn can_list_pods(client: kube::Client) {
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(client, "demo");
    let list = pods.list(&Default::default()).await.unwrap();
    assert!(!list.items.is_empty());
}

#[tokio::test]
async fn a_client_certificate_user_connects() {
    let sim = demo_cluster(ClusterOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    let cert = sim.client_cert("alice").unwrap();
    sim.write_kubeconfig_for(
        &path,
        Credentials::ClientCert {
            cert_pem: cert.cert_pem,
            key_pem: cert.key_pem,
        },
    )
    .unwrap();
    let cluster = Clusters::new().get(&key(&path)).await.unwrap();
    can_list_pods(cluster.client).await;
}

#[tokio::test]
async fn a_rejected_token_is_a_clear_401_that_does_not_show_the_token() {
    let sim = demo_cluster(ClusterOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    let token = sim.add_token_user("bob");
    sim.write_kubeconfig_for(&path, Credentials::Token(token.clone()))
        .unwrap();
    sim.revoke_token(&token);
    let err = Clusters::new().get(&key(&path)).await.err().unwrap();
    let text = err.to_string();
    assert!(
        matches!(err, ClusterError::Rejected { code: 401, .. }),
        "{text}"
    );
    assert!(text.contains("rejected the credentials"), "{text}");
    assert!(!text.contains(&token), "{text}");
}

#[tokio::test]
async fn an_exec_credential_plugin_supplies_the_token() {
    let sim = demo_cluster(ClusterOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token = sim.add_token_user("carol");
    let credential = format!(
        r#"{{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{{"token":"{token}"}}}}"#
    );
    let plugin = dir.path().join("plugin.sh");
    std::fs::write(&plugin, format!("#!/bin/sh\nprintf '%s' '{credential}'\n")).unwrap();
    let ca = base64::engine::general_purpose::STANDARD.encode(sim.ca_pem());
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: sim\n\
         clusters:\n- name: sim\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\n\
         users:\n- name: carol\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: sh\n      args: [\"{}\"]\n      interactiveMode: Never\n\
         contexts:\n- name: sim\n  context:\n    cluster: sim\n    user: carol\n    namespace: demo\n",
        sim.server_url(),
        plugin.display()
    );
    let path = dir.path().join("config");
    std::fs::write(&path, kubeconfig).unwrap();
    let cluster = Clusters::new().get(&key(&path)).await.unwrap();
    assert_eq!(cluster.default_namespace, "demo");
    can_list_pods(cluster.client).await;
}

/// An HTTP CONNECT proxy, as corporate networks put in front of clusters: it counts the
/// bytes it carried back to its clients.
async fn connect_proxy() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let carried = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = carried.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut client = BufReader::new(client);
                let mut line = String::new();
                client.read_line(&mut line).await?;
                let target = match line.split_whitespace().collect::<Vec<_>>()[..] {
                    ["CONNECT", target, _] => target.to_owned(),
                    _ => return Ok::<_, std::io::Error>(()),
                };
                loop {
                    let mut header = String::new();
                    if client.read_line(&mut header).await? == 0 || header == "\r\n" {
                        break;
                    }
                }
                let upstream = tokio::net::TcpStream::connect(&target).await?;
                let (mut from_client, mut to_client) = tokio::io::split(client);
                to_client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await?;
                let (mut from_upstream, mut to_upstream) = upstream.into_split();
                let up = tokio::io::copy(&mut from_client, &mut to_upstream);
                let down = async {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = from_upstream.read(&mut buf).await?;
                        if n == 0 {
                            return to_client.shutdown().await;
                        }
                        to_client.write_all(&buf[..n]).await?;
                        counter.fetch_add(n, Ordering::SeqCst);
                    }
                };
                let _ = tokio::join!(up, down);
                Ok(())
            });
        }
    });
    (url, carried)
}

#[tokio::test]
async fn a_proxy_url_carries_the_api_and_the_port_forward() {
    use kftray::forward::Connect;
    use kftray::resolve::Endpoint;
    use kftray::transport::{Deadlines, FirstChoice, PodConnector};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let sim = demo_cluster(ClusterOptions::default()).await.unwrap();
    let (proxy, carried) = connect_proxy().await;
    let dir = tempfile::tempdir().unwrap();
    let token = sim.add_token_user("dave");
    let ca = base64::engine::general_purpose::STANDARD.encode(sim.ca_pem());
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: sim\n\
         clusters:\n- name: sim\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\n    proxy-url: {proxy}\n\
         users:\n- name: dave\n  user:\n    token: {token}\n\
         contexts:\n- name: sim\n  context:\n    cluster: sim\n    user: dave\n    namespace: demo\n",
        sim.server_url(),
    );
    let path = dir.path().join("config");
    std::fs::write(&path, kubeconfig).unwrap();
    let cluster = Clusters::new().get(&key(&path)).await.unwrap();
    can_list_pods(cluster.client.clone()).await;
    let before = carried.load(std::sync::atomic::Ordering::SeqCst);
    assert!(before > 0, "the API calls did not go through the proxy");

    let connector = PodConnector::new(
        cluster.client,
        "demo",
        Deadlines::default(),
        FirstChoice::default(),
    );
    let pod = sim.pod_names("demo", "app=web").remove(0);
    let endpoint = Endpoint {
        pod: pod.clone(),
        uid: String::new(),
        port: 8080,
    };
    let mut stream = connector.connect(&endpoint).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(kubesim::testing::TIMEOUT, stream.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.trim_end().ends_with(&pod), "{reply}");
    // The pod's reply came back through the proxy (inside TLS, so a little more).
    let through = carried.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert!(
        through >= reply.len(),
        "the port-forward carried {} bytes, the proxy {through}",
        reply.len()
    );
}
