//! Which Kubernetes release runs, and where its binaries are (built on first use).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The releases pinned in tests/controlplane/go: k8s-1.37 (the newest served) and k8s-1.34.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1_37,
    V1_34,
}

impl Version {
    /// `KFTRAY_K8S_VERSION` (1.37 or 1.34), 1.37 when unset.
    pub fn from_env() -> anyhow::Result<Version> {
        match std::env::var("KFTRAY_K8S_VERSION") {
            Ok(v) if !v.is_empty() => v.parse(),
            _ => Ok(Version::V1_37),
        }
    }

    pub fn minor(self) -> &'static str {
        match self {
            Version::V1_37 => "1.37",
            Version::V1_34 => "1.34",
        }
    }
}

impl std::str::FromStr for Version {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Version> {
        let s = s.trim_start_matches('v');
        match s.split('.').take(2).collect::<Vec<_>>().join(".").as_str() {
            "1.37" => Ok(Version::V1_37),
            "1.34" => Ok(Version::V1_34),
            _ => anyhow::bail!("Kubernetes {s} is not pinned here: use 1.37 or 1.34"),
        }
    }
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The directory with kube-apiserver, kube-controller-manager, kubectl, etcd and kubelet-api
/// of `version`; `scripts/controlplane-build.sh` builds whatever is missing first.
pub fn bin_dir(version: Version) -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let out = Command::new("bash")
        .arg(root.join("scripts/controlplane-build.sh"))
        .arg(version.minor())
        .stderr(std::process::Stdio::inherit())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "scripts/controlplane-build.sh {} failed ({})",
        version.minor(),
        out.status
    );
    let dir = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    Ok(PathBuf::from(dir))
}
