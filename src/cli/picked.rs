//! Which forwards of a run already up a command means, as `up` would select them.

use super::Output;
use super::failure::Failure;
use std::path::Path;

/// The forwards of a running run a command asks for: by name (an alias, or `alias:PORT`) and
/// by tag, which the project's local files give.
pub(super) struct Picked {
    names: Vec<String>,
    tags: Vec<String>,
    tagged: Vec<String>,
}

impl Picked {
    pub(super) fn new(
        path: &Path,
        names: &[String],
        tags: &[String],
        out: &Output,
    ) -> Result<Picked, Failure> {
        let tagged = if tags.is_empty() {
            Vec::new()
        } else {
            let effective = super::effective::load_offline(path, out)?;
            let mut aliases: Vec<String> = effective
                .selected(tags)
                .map(|f| f.alias.clone())
                .chain(
                    effective
                        .all_ports
                        .iter()
                        .filter(|a| a.is_selected(tags))
                        .map(|a| a.alias.clone()),
                )
                .collect();
            aliases.dedup();
            aliases
        };
        Ok(Picked {
            names: names.to_vec(),
            tags: tags.to_vec(),
            tagged,
        })
    }

    /// Whether the forward named `name` (as `status` shows it) is asked for: as `up` selects,
    /// one of the names if any is given, and one of the tags if any is.
    pub(super) fn picks(&self, name: &str) -> bool {
        let alias = name.split(':').next().unwrap_or(name);
        (self.names.is_empty() || self.names.iter().any(|n| n == name || n == alias))
            && (self.tags.is_empty() || self.tagged.iter().any(|t| t == alias))
    }
}

impl std::fmt::Display for Picked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if !self.names.is_empty() {
            parts.push(format!("named {}", self.names.join(", ")));
        }
        if !self.tags.is_empty() {
            parts.push(format!("tagged {}", self.tags.join(", ")));
        }
        f.write_str(&parts.join(" and "))
    }
}
