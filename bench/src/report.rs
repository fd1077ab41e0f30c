//! The results as people read them (markdown) and as programs do (JSON), with what a re-run
//! needs to compare: when, on what machine, with which command.

use crate::Cli;
use crate::figures::Figure;
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

#[derive(Serialize)]
pub struct Report {
    date: String,
    /// kubesim, or the real control plane's release.
    cluster: String,
    machine: Machine,
    command: String,
    seconds: f64,
    figures: Vec<Figure>,
}

#[derive(Serialize)]
struct Machine {
    cores: usize,
    memory_gib: f64,
    cpu: String,
    kubectl: String,
    /// The peers scripts/peers.sh installed, with their versions.
    peers: Vec<String>,
}

impl Report {
    pub fn new(
        cli: &Cli,
        cluster: &str,
        peers: Vec<String>,
        figures: Vec<Figure>,
        took: Duration,
    ) -> Report {
        let _ = cli;
        Report {
            date: command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            cluster: cluster.to_owned(),
            machine: Machine {
                cores: std::thread::available_parallelism().map_or(0, usize::from),
                memory_gib: meminfo_gib(),
                cpu: cpu_model(),
                kubectl: kubectl_version("kubectl"),
                peers,
            },
            command: std::env::args().collect::<Vec<_>>().join(" "),
            seconds: took.as_secs_f64().round(),
            figures,
        }
    }

    pub fn markdown(&self) -> String {
        let mut out = format!(
            "## Results of {}\n\nCluster: {}. Machine: {} cores, {:.0} GiB, {}; kubectl {}; {}. Run: `{}` ({:.0} s).\n\n",
            self.date,
            self.cluster,
            self.machine.cores,
            self.machine.memory_gib,
            self.machine.cpu,
            self.machine.kubectl,
            if self.machine.peers.is_empty() {
                "no peer installed by scripts/peers.sh".to_owned()
            } else {
                self.machine.peers.join(", ")
            },
            self.command,
            self.seconds
        );
        for figure in &self.figures {
            out.push_str(&figure.markdown());
            out.push('\n');
        }
        out
    }

    pub fn write(&self, base: &Path) -> anyhow::Result<()> {
        if let Some(dir) = base.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(base.with_extension("md"), self.markdown())?;
        std::fs::write(
            base.with_extension("json"),
            serde_json::to_string_pretty(self)? + "\n",
        )?;
        eprintln!("wrote {}.md and .json", base.display());
        Ok(())
    }
}

/// The version a kubectl program says it is (its `gitVersion`), or nothing.
pub fn kubectl_version(program: &str) -> String {
    command_output(program, &["version", "--client", "-o", "json"])
        .lines()
        .find_map(|l| l.trim().strip_prefix("\"gitVersion\": \""))
        .map(|v| v.trim_end_matches(['"', ',']).to_owned())
        .unwrap_or_default()
}

fn command_output(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn meminfo_gib() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_default()
}
