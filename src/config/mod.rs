//! `kftray.toml`: the file format, its discovery, layering, validation and the effective
//! forwards it describes.
//!
//! [`load`] is the one entry point: it reads `kftray.toml` and the `kftray.local.toml` beside
//! it, merges them by alias, checks everything that can be checked without a cluster, and
//! returns either the [`Effective`] configuration or [`Diagnostics`] holding every problem,
//! each with its file, line, column, a label under the exact span and a help line. `kftray
//! validate` prints them; `kftray up` shows the same on a failed reload.
//!
//! ```
//! let effective = kftray::config::load_str(
//!     "kftray.toml",
//!     "[forwards.web]\nservice = \"web\"\nlocal_port = 8080\nremote_port = 80\n",
//! )
//! .unwrap();
//! assert_eq!(effective.forwards[0].name, "web");
//! ```

mod checks;
mod diagnostic;
mod discover;
mod duration;
mod effective;
mod expand;
mod layer;
mod loopback;
mod model;
mod relay_manifest;
mod schema;
mod size;
mod source;
mod starter;
mod trust;
mod typed;
mod validate;

pub use crate::target::{PortRef, Target, WorkloadKind};
pub use diagnostic::{Diagnostics, Finding, Label};
pub use discover::{FILE_NAME, discover, local_path, project_dir};
pub(crate) use duration::format_duration;
pub use duration::{DurationError, parse_duration};
pub use effective::{
    AllPorts, CertIssuer, Effective, Expose, Forward, HttpLog, Ingress, IngressTls, LocalPort,
    Proxy, Relay, Sync,
};
pub use expand::Skipped;
pub use loopback::{auto_address, is_auto, next_auto};
pub use model::{
    ConfigFile, Defaults, ForwardSpec, Protocol, ProxySpec, RelaySpec, SyncSpec, TrustSpec, Via,
};
pub use relay_manifest::{ManifestError, ManifestFileError, RelayManifest};
pub use schema::schema_json;
pub use size::{SizeError, format_size, parse_size, size_text};
pub use source::Origin;
pub use starter::{SCHEMA_URL, empty_document, starter};

pub(crate) use checks::{did_you_mean, is_dns_label, is_host};
pub(crate) use diagnostic::Issue;
pub(crate) use source::SourceMap;
use std::path::{Path, PathBuf};

/// One file of a layered configuration: its name (what diagnostics call it), its text, who
/// wrote it, and where relative paths in it resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// What diagnostics call the file: its path, or `git:<repo>@<commit>:<path>`.
    pub name: PathBuf,
    /// The file's TOML.
    pub text: String,
    /// Who wrote it, which decides what it may set (the trust rule).
    pub origin: Origin,
    /// Where relative paths in it resolve.
    pub dir: PathBuf,
}

impl Layer {
    /// A file of this machine's user; relative paths resolve beside it.
    pub fn local(path: impl Into<PathBuf>, text: impl Into<String>) -> Layer {
        let name = path.into();
        let dir = name.parent().map(Path::to_path_buf).unwrap_or_default();
        Layer {
            name,
            text: text.into(),
            origin: Origin::Local,
            dir,
        }
    }

    /// Someone else's file (the team's, from git), named `name` in diagnostics; its relative
    /// paths resolve against `dir`, the project folder on this machine.
    pub fn remote(name: impl Into<PathBuf>, text: impl Into<String>, dir: PathBuf) -> Layer {
        Layer {
            name: name.into(),
            text: text.into(),
            origin: Origin::Remote,
            dir,
        }
    }
}

/// Loads `path` and, when it exists, its local overlay ([`local_path`]).
pub fn load(path: &Path) -> Result<Effective, Diagnostics> {
    load_layers(read_local(path)?)
}

/// The local layers of `path`: the file itself and, when it exists, its overlay.
pub fn read_local(path: &Path) -> Result<Vec<Layer>, Diagnostics> {
    if let Some(base) = overlaid(path) {
        return Err(Diagnostics::file_problem(
            "kftray::overlay",
            path.to_path_buf(),
            "this is a local overlay, not a configuration of its own".to_owned(),
            Some(format!("load the file it is laid over: {}", base.display())),
        ));
    }
    let mut layers = vec![Layer::local(path, read(path)?)];
    layers.extend(read_overlay(path)?);
    Ok(layers)
}

/// The overlay beside `path`, if it exists.
pub fn read_overlay(path: &Path) -> Result<Option<Layer>, Diagnostics> {
    let local_file = local_path(path);
    match read_text(&local_file) {
        Ok(text) => Ok(Some(Layer::local(local_file, text))),
        Err(TextError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(unreadable(&local_file, e)),
    }
}

/// Loads configuration text that is not (or not only) on disk: a file from git, or a test's.
/// `name` is what diagnostics call the file; relative kubeconfig paths resolve against its
/// directory.
pub fn load_str(name: impl AsRef<Path>, text: &str) -> Result<Effective, Diagnostics> {
    load_layers(vec![Layer::local(name.as_ref(), text)])
}

/// Lays `layers` over one another in order (each merged by alias over the ones before) and
/// validates the result.
pub fn load_layers(layers: Vec<Layer>) -> Result<Effective, Diagnostics> {
    load_filtered(layers, |_| true)
}

/// The `[sync]` of `layers`, read alone: the local files say where the team's file comes
/// from before there is a team file to lay them over.
pub fn sync_of(layers: &[Layer]) -> Result<Option<Sync>, Diagnostics> {
    load_filtered(layers.to_vec(), |key| key == "sync").map(|e| e.sync)
}

/// Loads the layers keeping only the top-level keys `keep` accepts.
fn load_filtered(
    layers: Vec<Layer>,
    keep: impl Fn(&str) -> bool,
) -> Result<Effective, Diagnostics> {
    let mut map = SourceMap::default();
    for layer in layers {
        map.add(&layer.name, layer.text, layer.origin, layer.dir);
    }
    let mut issues = Vec::new();
    let mut trees = Vec::new();
    for file in map.files() {
        if let Some(tree) = layer::parse(&file.text, file.offset, &mut issues) {
            let tree: layer::Tree<'_> = tree
                .into_iter()
                .filter(|(k, _)| keep(k.get_ref()))
                .collect();
            if file.origin == Origin::Remote {
                trust::sync_section(&tree, &mut issues);
                trust::trust_section(&tree, &mut issues);
            }
            trees.push(tree);
        }
    }
    if !issues.is_empty() {
        return Err(Diagnostics::from_issues(issues, &map));
    }
    let tree = trees.into_iter().reduce(layer::overlay).unwrap_or_default();
    let typed = typed::typed(tree, &mut issues);
    let effective = validate::effective(typed, &map, &mut issues);
    if issues.is_empty() {
        Ok(effective)
    } else {
        // A bad value in [defaults] is found once per forward that inherits it: say it once.
        let mut seen = std::collections::HashSet::new();
        issues
            .retain(|issue| seen.insert((issue.code, issue.message.clone(), issue.labels.clone())));
        issues.sort_by_key(|issue| issue.labels.first().map_or(0, |(span, _)| span.start));
        Err(Diagnostics::from_issues(issues, &map))
    }
}

fn read(path: &Path) -> Result<String, Diagnostics> {
    read_text(path).map_err(|e| unreadable(path, e))
}

/// The largest configuration file read: far more than any real one (10,000 forwards take
/// under 1 MiB), so that a file that is no configuration is refused before it is read.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// Why a configuration file's text could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// The OS refused.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// Over [`MAX_FILE_BYTES`].
    #[error("cannot read: the file is too large ({} MiB; a configuration is at most {} MiB)", .0 >> 20, MAX_FILE_BYTES >> 20)]
    TooLarge(u64),
}

/// The text of a configuration file, refused unread when it is larger than any should be.
pub fn read_text(path: &Path) -> Result<String, TextError> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > MAX_FILE_BYTES {
        return Err(TextError::TooLarge(len));
    }
    let mut text = String::new();
    // Taken with a limit all the same: a pipe or a device has no length to check.
    file.take(MAX_FILE_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(TextError::TooLarge(text.len() as u64));
    }
    Ok(text)
}

fn unreadable(path: &Path, e: TextError) -> Diagnostics {
    let help = match &e {
        TextError::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
            Some("create one with `kftray init`, or name another with -f FILE".to_owned())
        }
        TextError::TooLarge(_) => {
            Some("is this the file you meant? name another with -f FILE".to_owned())
        }
        TextError::Io(_) => None,
    };
    Diagnostics::file_problem("kftray::io", path.to_path_buf(), e.to_string(), help)
}

/// The base file of an overlay path (`x.local.toml` -> `x.toml`), if `path` is one.
fn overlaid(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".local.toml")?;
    Some(path.with_file_name(format!("{stem}.toml")))
}

#[cfg(test)]
mod tests;
