//! kubeconfig files naming one or several simulated clusters.

use std::path::Path;

use base64::Engine;
use serde_json::{Value, json};

/// One context's worth of kubeconfig: cluster, user and context entries.
pub struct Entry {
    pub name: String,
    pub server: String,
    pub ca_pem: String,
    pub user: Credentials,
    pub namespace: String,
}

#[derive(Clone, Debug)]
pub enum Credentials {
    Token(String),
    ClientCert { cert_pem: String, key_pem: String },
}

pub fn render(entries: &[Entry]) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let clusters: Vec<Value> = entries
        .iter()
        .map(|e| json!({"name": e.name, "cluster": {"server": e.server, "certificate-authority-data": b64(&e.ca_pem)}}))
        .collect();
    let users: Vec<Value> = entries
        .iter()
        .map(|e| {
            let user = match &e.user {
                Credentials::Token(t) => json!({"token": t}),
                Credentials::ClientCert { cert_pem, key_pem } => {
                    json!({"client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)})
                }
            };
            json!({"name": e.name, "user": user})
        })
        .collect();
    let contexts: Vec<Value> = entries
        .iter()
        .map(|e| json!({"name": e.name, "context": {"cluster": e.name, "user": e.name, "namespace": e.namespace}}))
        .collect();
    let current = entries.first().map(|e| e.name.clone()).unwrap_or_default();
    let doc = json!({"apiVersion": "v1", "kind": "Config", "preferences": {}, "clusters": clusters, "users": users,
        "contexts": contexts, "current-context": current});
    serde_yaml::to_string(&doc).unwrap_or_default()
}

pub fn write(path: &Path, entries: &[Entry]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, render(entries))
}
