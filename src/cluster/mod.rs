//! Kubernetes clients, one per (kubeconfig, context), built as kubectl reads kubeconfig and
//! shared by every forward of that context.
//!
//! Loading follows kubectl: an explicit kubeconfig file, else every file in `KUBECONFIG`
//! merged (first one to set a key wins), else `~/.kube/config`; the named context, else
//! `current-context`. kube-rs then handles tokens, client certificates, exec credential
//! plugins, TLS settings and proxy-url. A cluster that cannot be reached, or that rejects the
//! credentials, is an error for that key only: other clusters keep working.

use crate::api_error;
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the first request to a cluster may take before it counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which cluster: `None` means what kubectl would use (KUBECONFIG, current-context).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterKey {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

/// A connected cluster.
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    /// The context actually used (the current-context when none was named).
    pub context: String,
    /// The context's namespace, else "default": what forwards without a namespace use.
    pub default_namespace: String,
    pub server: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot read kubeconfig {where_}: {source}; {hint}")]
    Kubeconfig {
        where_: String,
        hint: &'static str,
        #[source]
        source: KubeconfigError,
    },
    #[error("context {context:?} is not in {where_} (known contexts: {known})")]
    NoSuchContext {
        context: String,
        where_: String,
        known: String,
    },
    #[error("{where_} has no current-context; name one with `context` in kftray.toml")]
    NoCurrentContext { where_: String },
    #[error("cannot use context {context:?}: {source}")]
    Config {
        context: String,
        #[source]
        source: KubeconfigError,
    },
    #[error("cannot reach cluster of context {context:?} at {server}: {detail}")]
    Unreachable {
        context: String,
        server: String,
        detail: String,
    },
    #[error("cluster of context {context:?} rejected the credentials ({code} {reason}): {message}")]
    Rejected {
        context: String,
        code: u16,
        reason: String,
        message: String,
    },
}

/// The client cache. Successes are kept for the life of the run; failures are not, so the
/// next attempt (a retry, a reload) tries again.
#[derive(Default)]
pub struct Clusters {
    slots: Mutex<HashMap<ClusterKey, Arc<tokio::sync::Mutex<Option<Cluster>>>>>,
}

impl Clusters {
    pub fn new() -> Clusters {
        Clusters::default()
    }

    /// The cluster for `key`, connecting on first use. Concurrent callers for the same key
    /// wait for one connection attempt instead of each making their own.
    pub async fn get(&self, key: &ClusterKey) -> Result<Cluster, ClusterError> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.entry(key.clone()).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if let Some(cluster) = slot.as_ref() {
            return Ok(cluster.clone());
        }
        let cluster = connect(key).await?;
        *slot = Some(cluster.clone());
        Ok(cluster)
    }
}

async fn connect(key: &ClusterKey) -> Result<Cluster, ClusterError> {
    let (kubeconfig, where_) = read_kubeconfig(key.kubeconfig.as_deref())?;
    let context = context_name(&kubeconfig, key, where_)?;
    let options = KubeConfigOptions {
        context: Some(context.clone()),
        ..KubeConfigOptions::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|source| ClusterError::Config {
            context: context.clone(),
            source,
        })?;
    let server = config.cluster_url.to_string();
    let default_namespace = config.default_namespace.clone();
    let built = if config.proxy_url.is_some() {
        kube::Client::try_from(config)
    } else {
        client_with_nodelay(&config)
    };
    let client = built.map_err(|e| ClusterError::Unreachable {
        context: context.clone(),
        server: server.clone(),
        detail: e.to_string(),
    })?;
    probe(&client, &context, &server).await?;
    Ok(Cluster {
        client,
        context,
        default_namespace,
        server,
    })
}

/// The namespace kubectl would use for `key`: its context's, else "default". Read from the
/// kubeconfig alone, without contacting the cluster.
pub fn context_namespace(key: &ClusterKey) -> Result<String, ClusterError> {
    let (kubeconfig, where_) = read_kubeconfig(key.kubeconfig.as_deref())?;
    let name = context_name(&kubeconfig, key, where_)?;
    Ok(kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.context.as_ref()?.namespace.clone())
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| "default".to_owned()))
}

/// The context `key` names, which must exist, else the current one.
fn context_name(
    kubeconfig: &Kubeconfig,
    key: &ClusterKey,
    where_: String,
) -> Result<String, ClusterError> {
    match &key.context {
        Some(name) => {
            if !kubeconfig.contexts.iter().any(|c| &c.name == name) {
                let mut known: Vec<_> = kubeconfig
                    .contexts
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect();
                known.sort_unstable();
                return Err(ClusterError::NoSuchContext {
                    context: name.clone(),
                    where_,
                    known: if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    },
                });
            }
            Ok(name.clone())
        }
        None => kubeconfig
            .current_context
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or(ClusterError::NoCurrentContext { where_ }),
    }
}

/// One cheap authenticated request, so that a wrong address or credential is reported once,
/// clearly, before any forward relies on the cluster.
async fn probe(client: &kube::Client, context: &str, server: &str) -> Result<(), ClusterError> {
    let unreachable = |detail: String| ClusterError::Unreachable {
        context: context.to_string(),
        server: server.to_string(),
        detail,
    };
    // /version answers anonymous requests on most clusters, so it would not test the
    // credentials: listing namespaces with limit=1 does, and a 403 there still proves them.
    let request = http::Request::get("/api/v1/namespaces?limit=1")
        .body(Vec::new())
        .map_err(|e| unreachable(e.to_string()))?;
    let answer = tokio::time::timeout(PROBE_TIMEOUT, client.request::<serde_json::Value>(request))
        .await
        .map_err(|_| unreachable(format!("no answer within {}s", PROBE_TIMEOUT.as_secs())))?;
    match answer {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 401 => Err(ClusterError::Rejected {
            context: context.to_string(),
            code: status.code,
            reason: status.reason.clone(),
            message: status.message.clone(),
        }),
        // Authenticated but not allowed to list namespaces: the credentials work.
        Err(kube::Error::Api(status)) if status.code == 403 => Ok(()),
        Err(e) => Err(unreachable(api_error::describe(&e))),
    }
}

/// kube's own connector leaves Nagle on, so the small frames of a port-forward session wait
/// behind the peer's delayed ACK (40 ms on Linux): the same stack as kube's, with
/// TCP_NODELAY. Proxied clusters keep kube's builder, which knows the proxy.
fn client_with_nodelay(config: &kube::Config) -> Result<kube::Client, kube::Error> {
    use kube::client::ConfigExt;
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(config.connect_timeout);
    let https = config.rustls_https_connector_with_connector(http)?;
    let hyper = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, kube::client::Body>(https);
    let service = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(tower::BoxError::from)
        .service(hyper);
    Ok(kube::Client::new(service, config.default_namespace.clone()))
}

fn read_kubeconfig(explicit: Option<&Path>) -> Result<(Kubeconfig, String), ClusterError> {
    if let Some(path) = explicit {
        let path = expand_home(path);
        let where_ = path.display().to_string();
        return Kubeconfig::read_from(&path)
            .map(|k| (k, where_.clone()))
            .map_err(|source| ClusterError::Kubeconfig {
                where_,
                hint: "the `kubeconfig` key in kftray.toml names it",
                source,
            });
    }
    let where_ = match std::env::var("KUBECONFIG") {
        Ok(v) if !v.is_empty() => format!("KUBECONFIG ({v})"),
        _ => "~/.kube/config".to_string(),
    };
    Kubeconfig::read()
        .map(|k| (k, where_.clone()))
        .map_err(|source| ClusterError::Kubeconfig {
            where_,
            hint: "kftray finds clusters as kubectl does: set KUBECONFIG, or name a file with \
                   `kubeconfig = \"PATH\"` under [defaults] in kftray.toml",
            source,
        })
}

fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::home_dir()) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubeconfig(dir: &Path, server: &str) -> PathBuf {
        let path = dir.join("config");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: a\n\
                 clusters:\n- name: c\n  cluster:\n    server: {server}\n\
                 users:\n- name: u\n  user:\n    token: secret-token\n\
                 contexts:\n- name: a\n  context:\n    cluster: c\n    user: u\n    namespace: team\n\
                 - name: b\n  context:\n    cluster: c\n    user: u\n"
            ),
        )
        .unwrap();
        path
    }

    #[tokio::test]
    async fn unknown_context_names_the_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        let key = ClusterKey {
            kubeconfig: Some(kubeconfig(dir.path(), "http://127.0.0.1:1")),
            context: Some("prod".into()),
        };
        let err = Clusters::new().get(&key).await.err().unwrap();
        assert!(
            matches!(&err, ClusterError::NoSuchContext { known, .. } if known == "a, b"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_and_the_token_is_not_shown() {
        // Bind then drop: the port is free and nothing listens on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let key = ClusterKey {
            kubeconfig: Some(kubeconfig(dir.path(), &format!("http://127.0.0.1:{port}"))),
            context: None,
        };
        let err = Clusters::new().get(&key).await.err().unwrap();
        let text = err.to_string();
        assert!(matches!(err, ClusterError::Unreachable { .. }), "{text}");
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        assert!(text.contains("context \"a\""), "{text}");
        assert!(!text.contains("secret-token"), "{text}");
    }

    #[test]
    fn the_namespace_comes_from_the_context_without_a_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = kubeconfig(dir.path(), "http://127.0.0.1:1");
        let key = |context: Option<&str>| ClusterKey {
            kubeconfig: Some(path.clone()),
            context: context.map(String::from),
        };
        assert_eq!(context_namespace(&key(None)).unwrap(), "team");
        assert_eq!(context_namespace(&key(Some("b"))).unwrap(), "default");
        assert!(context_namespace(&key(Some("prod"))).is_err());
    }

    #[tokio::test]
    async fn a_missing_kubeconfig_says_which_file() {
        let key = ClusterKey {
            kubeconfig: Some("/nonexistent/kubeconfig".into()),
            context: None,
        };
        let err = Clusters::new().get(&key).await.err().unwrap();
        assert!(
            err.to_string()
                .starts_with("cannot read kubeconfig /nonexistent/kubeconfig"),
            "{err}"
        );
        assert!(
            err.to_string()
                .ends_with("the `kubeconfig` key in kftray.toml names it"),
            "{err}"
        );
    }
}
