//! Helpers for tests (kubesim's and kftray's own): a demo cluster, the real kubectl, a
//! tiny HTTP client.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Cluster, ClusterOptions};

/// Generous, for a loaded 2-core machine.
pub const TIMEOUT: Duration = Duration::from_secs(60);

pub fn demo_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo.yaml")
}

/// A cluster from `fixtures/demo.yaml`, with every pod of it Ready.
pub async fn demo_cluster(opts: ClusterOptions) -> anyhow::Result<Cluster> {
    let c = Cluster::start(opts).await?;
    c.apply_yaml(&std::fs::read_to_string(demo_fixture())?)?;
    for (selector, n) in [
        ("app=web", 2),
        ("app=postgres", 1),
        ("app=dns", 1),
        ("app=cache", 1),
    ] {
        c.wait_pods_ready("demo", selector, n, TIMEOUT)
            .await
            .ok_or_else(|| anyhow::anyhow!("demo pods {selector} not ready in time"))?;
    }
    Ok(c)
}

/// A binary of this workspace, next to the running test's own executable
/// (`target/<profile>/<name>`); build it first (`cargo build -p <crate>`), or use
/// `env!("CARGO_BIN_EXE_<name>")` inside the binary's own crate.
pub fn workspace_bin(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let mut dir = exe.parent()?;
    if dir.ends_with("deps") {
        dir = dir.parent()?;
    }
    let p = dir.join(name);
    p.is_file().then_some(p)
}

/// The real kubectl, or None (with the reason printed) when the machine lacks it.
/// With `KUBESIM_REQUIRE_KUBECTL=1` a missing kubectl is a test failure instead.
pub fn kubectl_path() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file());
    if found.is_none() {
        let required = std::env::var("KUBESIM_REQUIRE_KUBECTL").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "kubectl is not on PATH and KUBESIM_REQUIRE_KUBECTL=1"
        );
        eprintln!(
            "SKIPPED: kubectl is not on PATH (set KUBESIM_REQUIRE_KUBECTL=1 to make this fail)"
        );
    }
    found
}

/// kubectl bound to one kubeconfig, with its own discovery cache dir.
pub struct Kubectl {
    pub program: PathBuf,
    pub kubeconfig: PathBuf,
    pub cache_dir: PathBuf,
}

impl Kubectl {
    /// None when kubectl is missing (see `kubectl_path`).
    pub fn new(kubeconfig: &Path) -> Option<Self> {
        let program = kubectl_path()?;
        let cache_dir =
            std::env::temp_dir().join(format!("kubesim-kubectl-cache-{}", crate::store::uid()));
        Some(Self {
            program,
            kubeconfig: kubeconfig.to_path_buf(),
            cache_dir,
        })
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(&self.program);
        c.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache_dir)
            .args(args);
        c.kill_on_drop(true).stdin(std::process::Stdio::null());
        c
    }

    /// Runs kubectl to completion: (success, stdout, stderr).
    pub async fn run(&self, args: &[&str]) -> anyhow::Result<(bool, String, String)> {
        let out = tokio::time::timeout(TIMEOUT, self.command(args).output()).await??;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        ))
    }
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.cache_dir);
    }
}

/// A running `kubectl port-forward`, killed on drop.
pub struct Forward {
    pub child: tokio::process::Child,
    pub addr: std::net::SocketAddr,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Forward {
    /// What kubectl wrote on stderr so far (it runs with `-v=4`).
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Whether kubectl gave up the WebSocket tunnel for the raw SPDY upgrade (client-go's
    /// fallback dialer says so at `-v=4`; the forward works either way).
    pub fn fell_back_to_spdy(&self) -> bool {
        self.stderr().contains("fallback to secondary dialer")
    }
}

/// Starts `kubectl port-forward` on a free local port and waits for its "Forwarding from"
/// line; `websockets` picks kubectl's SPDY-in-WebSocket tunnel or the raw SPDY upgrade.
pub async fn port_forward(
    kubectl: &Kubectl,
    namespace: &str,
    target: &str,
    port: u16,
    websockets: bool,
) -> Forward {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let remote = format!(":{port}");
    let mut command = kubectl.command(&["port-forward", "-v=4", "-n", namespace, target, &remote]);
    command
        .env(
            "KUBECTL_PORT_FORWARD_WEBSOCKETS",
            if websockets { "true" } else { "false" },
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut errors = BufReader::new(child.stderr.take().unwrap()).lines();
    let collected = stderr.clone();
    let drained = tokio::spawn(async move {
        while let Ok(Some(line)) = errors.next_line().await {
            let mut text = collected.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(TIMEOUT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("Forwarding from 127.0.0.1:") {
                return Some(line);
            }
        }
        None
    })
    .await
    .unwrap_or_else(|_| panic!("kubectl port-forward {target} printed nothing in time"));
    let Some(line) = line else {
        let _ = drained.await;
        panic!(
            "kubectl port-forward {target} exited: {}",
            stderr.lock().unwrap()
        );
    };
    // "Forwarding from 127.0.0.1:41234 -> 8080"
    let addr = line
        .trim_start_matches("Forwarding from ")
        .split(" -> ")
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // Keep draining stdout so kubectl never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Forward {
        child,
        addr,
        stderr,
    }
}

/// `GET path` over HTTP/1.1 with `Connection: close`; returns (status code, body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        let text = String::from_utf8_lossy(&buf).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        Ok((code, body.to_string()))
    };
    tokio::time::timeout(TIMEOUT, fut)
        .await
        .map_err(|_| std::io::Error::other("http_get timed out"))?
}
