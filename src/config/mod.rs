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
mod effective;
mod layer;
mod model;
mod schema;
mod source;
mod starter;
mod typed;
mod validate;

pub use diagnostic::{Diagnostics, Finding, Label};
pub use discover::{FILE_NAME, discover, local_path};
pub use effective::{Effective, Forward, LocalPort, Relay, RemotePort, Sync, Target, WorkloadKind};
pub use model::{ConfigFile, Defaults, ForwardSpec, Protocol, RelaySpec, SyncSpec, Via};
pub use schema::schema_json;
pub use starter::starter;

use source::SourceMap;
use std::path::{Path, PathBuf};

/// Loads `path` and, when it exists, its local overlay ([`local_path`]).
pub fn load(path: &Path) -> Result<Effective, Diagnostics> {
    if let Some(base) = overlaid(path) {
        return Err(Diagnostics::file_problem(
            "kftray::overlay",
            path.to_path_buf(),
            "this is a local overlay, not a configuration of its own".to_owned(),
            Some(format!("load the file it is laid over: {}", base.display())),
        ));
    }
    let main = read(path)?;
    let local_file = local_path(path);
    let local = match std::fs::read_to_string(&local_file) {
        Ok(text) => Some((local_file, text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(Diagnostics::file_problem(
                "kftray::io",
                local_file,
                format!("cannot read: {e}"),
                None,
            ));
        }
    };
    load_layers(
        (path.to_path_buf(), main),
        local.as_ref().map(|(p, t)| (p.clone(), t.clone())),
    )
}

/// Loads configuration text that is not (or not only) on disk: a file from git, or a test's.
/// `name` is what diagnostics call the file; relative kubeconfig paths resolve against its
/// directory.
pub fn load_str(name: impl AsRef<Path>, text: &str) -> Result<Effective, Diagnostics> {
    load_layers((name.as_ref().to_path_buf(), text.to_owned()), None)
}

/// Loads a base file and an optional overlay, given as (name, text).
pub fn load_layers(
    base: (PathBuf, String),
    local: Option<(PathBuf, String)>,
) -> Result<Effective, Diagnostics> {
    let mut map = SourceMap::default();
    map.add(&base.0, base.1);
    if let Some((path, text)) = local {
        map.add(&path, text);
    }
    let mut issues = Vec::new();
    let mut trees = Vec::new();
    for file in map.files() {
        if let Some(tree) = layer::parse(&file.text, file.offset, &mut issues) {
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
    std::fs::read_to_string(path).map_err(|e| {
        let help = (e.kind() == std::io::ErrorKind::NotFound)
            .then(|| "create one with `kftray init`, or name another with -f FILE".to_owned());
        Diagnostics::file_problem(
            "kftray::io",
            path.to_path_buf(),
            format!("cannot read: {e}"),
            help,
        )
    })
}

/// The base file of an overlay path (`x.local.toml` -> `x.toml`), if `path` is one.
fn overlaid(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".local.toml")?;
    Some(path.with_file_name(format!("{stem}.toml")))
}

#[cfg(test)]
mod tests;
