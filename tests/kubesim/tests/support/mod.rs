//! Shared by the integration tests: kube-rs clients for a simulated cluster.

#![allow(dead_code)]

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};

pub async fn client_from(path: &Path) -> kube::Client {
    let kc = Kubeconfig::read_from(path).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig loads");
    kube::Client::try_from(config).expect("client builds")
}

pub async fn client(cluster: &kubesim::Cluster) -> kube::Client {
    client_from(cluster.kubeconfig_path()).await
}

/// A client authenticating as `creds`, through a kubeconfig written into `dir`.
pub async fn client_as(
    cluster: &kubesim::Cluster,
    dir: &Path,
    creds: kubesim::Credentials,
) -> kube::Client {
    let path = dir.join(format!("kubeconfig-{}", rand_suffix()));
    cluster
        .write_kubeconfig_for(&path, creds)
        .expect("kubeconfig written");
    client_from(&path).await
}

fn rand_suffix() -> String {
    kubesim::store::uid()
}

/// The Status error of a failed kube call.
pub fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API Status error, got {other:?}"),
    }
}
