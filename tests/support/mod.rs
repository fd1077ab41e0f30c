//! Shared by the live-source tests: a project folder with its own state home, a foreground
//! `kftray up` whose output goes to a log file, status as JSON, and git repositories made with
//! the git CLI.
#![allow(dead_code)]

pub mod cluster;
pub mod netns;
pub mod servers;

use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

pub use kubesim::testing::TIMEOUT;

/// A project folder and its `KFTRAY_HOME`; the `kftray up` it started is stopped on drop.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
    /// A program (and its arguments) that runs kftray, e.g. in a namespace of its own.
    pub wrapper: Vec<String>,
    up: Option<Child>,
}

impl Project {
    pub fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("project")).unwrap();
        std::fs::create_dir(dir.path().join("user")).unwrap();
        Project {
            dir,
            env: Vec::new(),
            wrapper: Vec::new(),
            up: None,
        }
    }

    /// The project folder (where kftray.toml lives).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("project")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root().join(name)
    }

    /// The HOME kftray runs with (its ~/.gitconfig, ~/.git-credentials).
    pub fn user_home(&self) -> PathBuf {
        self.dir.path().join("user")
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("up.log")
    }

    /// What `kftray up` printed so far (stdout and stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let kftray = env!("CARGO_BIN_EXE_kftray");
        let mut command = match self.wrapper.split_first() {
            Some((program, before)) => {
                let mut c = Command::new(program);
                c.args(before).arg(kftray);
                c
            }
            None => Command::new(kftray),
        };
        command
            .args(args)
            .current_dir(self.root())
            .env("KFTRAY_HOME", self.home())
            .env("NO_COLOR", "1")
            // The user's own git config, keys, agent and keyring stay out of the test.
            .env("HOME", self.dir.path().join("user"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("KFTRAY_GIT_TOKEN")
            .env_remove("KFTRAY_GIT_URL")
            .env_remove("KFTRAY_UP_ARGS")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("SSH_AUTH_SOCK")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        let mut command = self.command(args);
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap()
    }

    /// Starts `kftray up ARGS` in the foreground, its output to the log file.
    pub fn spawn_up(&mut self, args: &[&str]) {
        let log = std::fs::File::create(self.log_path()).unwrap();
        let mut all = vec!["up"];
        all.extend_from_slice(args);
        let child = self
            .command(&all)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.up = Some(child);
    }

    /// Sends `signal` to the `kftray up` this test started, and reaps it.
    pub fn kill_up(&mut self, signal: i32) {
        if let Some(mut child) = self.up.take() {
            // SAFETY: kill(2) on the child this test started and has not reaped.
            unsafe { libc::kill(child.id() as i32, signal) };
            let _ = child.wait();
        }
    }

    /// Whether the `kftray up` this test started has exited, and how.
    pub fn up_exited(&mut self) -> Option<std::process::ExitStatus> {
        self.up.as_mut()?.try_wait().unwrap()
    }

    pub async fn status(&self) -> Vec<Value> {
        let out = self.run(&["status", "--all", "--output", "json"]).await;
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Polls status until `done` holds (the log is shown if it never does).
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let status = self.status().await;
            if done(&status) {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never saw {what}\nstatus: {status:#?}\nlog:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The forward's local address once it is ready.
    pub async fn ready(&self, alias: &str) -> SocketAddr {
        let status = self
            .wait_for(&format!("{alias} ready"), |s| {
                s.iter()
                    .any(|f| f["alias"] == alias && f["state"] == "ready")
            })
            .await;
        address(&status, alias)
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if let Some(mut child) = self.up.take() {
            // SAFETY: kill(2) on the child this test started.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
        let _ = self.command(&["down", "--all"]).output();
    }
}

pub fn address(status: &[Value], alias: &str) -> SocketAddr {
    let row = status
        .iter()
        .find(|f| f["alias"] == alias)
        .unwrap_or_else(|| panic!("no {alias} in {status:#?}"));
    row["local_address"].as_str().unwrap().parse().unwrap()
}

pub fn aliases(status: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = status
        .iter()
        .map(|f| f["alias"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

pub fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The `[defaults]` that point a file at the test's cluster.
pub fn defaults(cluster: &kubesim::Cluster) -> String {
    format!(
        "[defaults]\nkubeconfig = {:?}\nnamespace = \"demo\"\n\n",
        cluster.kubeconfig_path().display().to_string()
    )
}

/// A forward to a demo service on a free local port.
pub fn forward(alias: &str, service: &str, port: &str) -> String {
    format!(
        "[forwards.{alias}]\nservice = \"{service}\"\nremote_port = {port}\nlocal_port = \"any\"\n\n"
    )
}

/// Runs git in `dir` with a fixed identity; panics with its output on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "kftray test")
        .env("GIT_AUTHOR_EMAIL", "test@kftray.invalid")
        .env("GIT_COMMITTER_NAME", "kftray test")
        .env("GIT_COMMITTER_EMAIL", "test@kftray.invalid")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The reload lines of a log with their measured latency, for the test's output.
pub fn latencies(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.starts_with("reload (") && l.contains("ms after the last write"))
        .map(str::to_owned)
        .collect()
}

/// Compares with a golden file under tests/golden; `KFTRAY_BLESS=1` rewrites it.
pub fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("KFTRAY_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{} differs (KFTRAY_BLESS=1 rewrites it); actual output:\n{actual}",
        path.display()
    );
}

/// `n` HTTP GETs through `addr` at once; every one must answer 200 with a body `ok` accepts.
pub async fn gets_at_once(addr: SocketAddr, n: usize, ok: impl Fn(&str) -> bool) {
    let requests: Vec<_> = (0..n)
        .map(|_| tokio::spawn(kubesim::testing::http_get(addr, "/")))
        .collect();
    let mut failures = Vec::new();
    for request in requests {
        match request.await.unwrap() {
            Ok((200, body)) if ok(body.trim()) => {}
            other => failures.push(format!("{other:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}

/// Sends `payload` until an answer comes back (UDP may lose a datagram, as while a relay is
/// replaced or a flow's stream opens), and returns the answer.
pub async fn udp_exchange(
    socket: &tokio::net::UdpSocket,
    to: SocketAddr,
    payload: &[u8],
) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        socket.send_to(payload, to).await.unwrap();
        if let Ok(received) = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            socket.recv_from(&mut buf),
        )
        .await
        {
            let (n, from) = received.unwrap();
            assert_eq!(from, to, "a reply from elsewhere");
            return buf[..n].to_vec();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no UDP answer from {to}"
        );
    }
}
