//! A relay pod manifest (`[relay] manifest`, or kftray's built-in one), read and checked in
//! one place: validation reports what is wrong with it, and the relay creates its pods from it.

use k8s_openapi::api::core::v1::{Container, Pod};
use kftray_relay::protocol::DEFAULT_PORT;
use std::fmt;
use std::path::{Path, PathBuf};

/// The name of the relay's container and of its port, where the manifest names them.
const RELAY: &str = "relay";

/// A Pod manifest the relay pods are made from, checked.
#[derive(Debug, Clone)]
pub struct RelayManifest {
    pod: Pod,
}

/// What is wrong with a manifest, and where when the YAML parser says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// Where the YAML parser stopped (1-based), when it says.
    pub line_column: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line_column {
            Some((line, column)) => write!(f, "{line}:{column}: {}", self.message),
            None => write!(f, " {}", self.message),
        }
    }
}

/// A manifest file that cannot be used; the error names the file.
#[derive(Debug, thiserror::Error)]
pub enum ManifestFileError {
    /// The file could not be read.
    #[error("cannot read the relay manifest {}: {source}", path.display())]
    Unreadable {
        /// The manifest's path.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The file is not a usable Pod manifest.
    #[error("relay manifest {}:{error}", path.display())]
    Invalid {
        /// The manifest's path.
        path: PathBuf,
        /// What is wrong in it.
        error: ManifestError,
    },
}

impl RelayManifest {
    /// The manifest at `path`.
    pub fn read(path: &Path) -> Result<RelayManifest, ManifestFileError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ManifestFileError::Unreadable {
                path: path.to_path_buf(),
                source,
            })?;
        RelayManifest::parse(&text).map_err(|error| ManifestFileError::Invalid {
            path: path.to_path_buf(),
            error,
        })
    }

    /// A Pod manifest in YAML (or JSON), with at least one container, the relay's with an
    /// image.
    pub fn parse(text: &str) -> Result<RelayManifest, ManifestError> {
        let located = |e: serde_yaml::Error| ManifestError {
            line_column: e.location().map(|l| (l.line(), l.column())),
            message: e.to_string(),
        };
        let plain = |message: String| ManifestError {
            line_column: None,
            message,
        };
        let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(located)?;
        match value.get("kind").and_then(|k| k.as_str()) {
            Some("Pod") | None => {}
            Some(other) => return Err(plain(format!("kind is {other:?}, not \"Pod\""))),
        }
        match value.get("apiVersion").and_then(|k| k.as_str()) {
            Some("v1") | None => {}
            Some(other) => return Err(plain(format!("apiVersion is {other:?}, not \"v1\""))),
        }
        let pod: Pod = serde_yaml::from_value(value).map_err(|e| plain(e.to_string()))?;
        let containers = pod.spec.as_ref().map_or(0, |s| s.containers.len());
        if containers == 0 {
            return Err(plain(
                "spec.containers is empty: the relay needs one".into(),
            ));
        }
        let manifest = RelayManifest { pod };
        if manifest
            .relay_container()
            .image
            .as_deref()
            .is_none_or(str::is_empty)
        {
            return Err(plain(
                "the relay container has no image (set one, or [relay] image)".into(),
            ));
        }
        Ok(manifest)
    }

    /// The Pod as written.
    pub fn pod(&self) -> &Pod {
        &self.pod
    }

    /// Which container the relay runs in: the one named "relay", else the first.
    pub fn relay_container_index(&self) -> usize {
        self.containers()
            .iter()
            .position(|c| c.name == RELAY)
            .unwrap_or(0)
    }

    fn containers(&self) -> &[Container] {
        self.pod.spec.as_ref().map_or(&[], |s| &s.containers)
    }

    fn relay_container(&self) -> &Container {
        &self.containers()[self.relay_container_index()]
    }

    /// The port the relay listens on: the relay container's port named "relay", else its
    /// only port, else the relay's default.
    pub fn port(&self) -> u16 {
        let ports = self.relay_container().ports.as_deref().unwrap_or_default();
        ports
            .iter()
            .find(|p| p.name.as_deref() == Some(RELAY))
            .or(if ports.len() == 1 {
                ports.first()
            } else {
                None
            })
            .and_then(|p| u16::try_from(p.container_port).ok())
            .unwrap_or(DEFAULT_PORT)
    }
}
