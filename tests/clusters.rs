//! Cluster clients built as kubectl reads kubeconfig: client certificates, exec credential
//! plugins, and credentials the cluster rejects, against the simulated cluster over HTTPS.

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
