//! Driving the kftray binary as a user does: a kftray.toml, `up --detach`, `status -o json`,
//! `down`, each with the benchmark's own KFTRAY_HOME.

use anyhow::{Context, bail};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Kftray {
    bin: PathBuf,
    kubeconfig: PathBuf,
    home: PathBuf,
    pub file: PathBuf,
    /// `KFTRAY_TRANSPORT`, when this run asks for a first choice other than the default.
    pub transport: Option<&'static str>,
}

/// One forward as `kftray status -o json` shows it.
pub struct Row {
    pub alias: String,
    pub local: Option<SocketAddr>,
    pub state: String,
    pub pid: u32,
}

impl Kftray {
    /// A project of its own in `dir` (created), holding `config` as its kftray.toml.
    pub fn project(
        bin: &Path,
        kubeconfig: &Path,
        dir: &Path,
        config: &str,
    ) -> anyhow::Result<Kftray> {
        std::fs::create_dir_all(dir)?;
        let file = dir.join("kftray.toml");
        std::fs::write(&file, config)?;
        Ok(Kftray {
            bin: bin.to_path_buf(),
            kubeconfig: kubeconfig.to_path_buf(),
            home: dir.join("home"),
            file,
            transport: None,
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .arg("-f")
            .arg(&self.file)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KFTRAY_HOME", &self.home)
            .env("NO_COLOR", "1");
        if let Some(transport) = self.transport {
            command.env("KFTRAY_TRANSPORT", transport);
        }
        command
    }

    /// `kftray up --detach`: returns once every forward listens.
    pub fn up(&self) -> anyhow::Result<()> {
        let out = self.command(&["up", "--detach"]).output()?;
        if !out.status.success() {
            // The reasons are its `error:` lines; the rest is the table of what did start.
            let stderr = String::from_utf8_lossy(&out.stderr);
            let reasons: Vec<&str> = stderr
                .lines()
                .filter_map(|l| l.strip_prefix("error: "))
                .collect();
            bail!("kftray up --detach failed: {}", reasons.join("; "));
        }
        Ok(())
    }

    pub fn down(&self) {
        let _ = self.command(&["down"]).output();
    }

    pub fn status(&self) -> anyhow::Result<Vec<Row>> {
        let out = self.command(&["status", "-o", "json"]).output()?;
        let rows: Vec<Value> =
            serde_json::from_slice(&out.stdout).context("kftray status -o json")?;
        Ok(rows
            .iter()
            .map(|r| Row {
                alias: r["alias"].as_str().unwrap_or_default().to_owned(),
                local: r["local_address"].as_str().and_then(|a| a.parse().ok()),
                state: r["state"].as_str().unwrap_or_default().to_owned(),
                pid: r["pid"].as_u64().unwrap_or_default() as u32,
            })
            .collect())
    }

    /// Waits until every forward is `ready` (a pod chosen and its session opened).
    pub async fn wait_ready(&self, count: usize) -> anyhow::Result<Vec<Row>> {
        let started = std::time::Instant::now();
        loop {
            let rows = self.status()?;
            if rows.len() == count && rows.iter().all(|r| r.state == "ready") {
                return Ok(rows);
            }
            if started.elapsed() > std::time::Duration::from_secs(60) {
                bail!("kftray's forwards were not ready within 60 s");
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// A kftray.toml with `count` forwards to the benchmark pod's echo port, on free ports.
pub fn many_forwards(count: usize) -> String {
    forwards_to((0..count).map(|_| "bench-0".to_owned()))
}

/// A kftray.toml with a forward to the echo port of each pod named, on free ports.
pub fn forwards_to(pods: impl Iterator<Item = String>) -> String {
    let mut text = String::from("version = 1\n\n[defaults]\nnamespace = \"bench\"\n");
    for (i, pod) in pods.enumerate() {
        text.push_str(&format!(
            "\n[forwards.f{i}]\npod = \"{pod}\"\nremote_port = {}\nlocal_port = \"any\"\n",
            crate::backend::ECHO
        ));
    }
    text
}
