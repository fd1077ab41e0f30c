//! Which forwards of the effective config a run starts: the enabled ones, narrowed by the
//! names and tags the user gave.

use super::RunSpec;
use crate::config::{self, Effective};
use std::collections::BTreeMap;

/// The forwards a run starts with, by name.
pub struct Selection {
    pub runnable: BTreeMap<String, RunSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    #[error("no forward named {name:?} (the file has: {})", known.join(", "))]
    UnknownName { name: String, known: Vec<String> },
    #[error("nothing to run: every selected forward is disabled")]
    AllDisabled,
    #[error("no enabled forward has the tag(s) {}", tags.join(", "))]
    NoTag { tags: Vec<String> },
}

/// The forwards to run, from the effective config and the user's selection.
pub fn desired(
    effective: &Effective,
    names: &[String],
    tags: &[String],
) -> Result<Selection, SelectionError> {
    let named = |f: &config::Forward, name: &str| name == f.alias || name == f.name;
    if let Some(name) = names
        .iter()
        .find(|name| !effective.forwards.iter().any(|f| named(f, name)))
    {
        return Err(SelectionError::UnknownName {
            name: name.clone(),
            known: effective.forwards.iter().map(|f| f.name.clone()).collect(),
        });
    }
    let runnable: BTreeMap<String, RunSpec> = effective
        .selected(tags)
        .filter(|f| names.is_empty() || names.iter().any(|n| named(f, n)))
        .map(|f| (f.name.clone(), RunSpec::from_config(f, &effective.relay)))
        .collect();
    if runnable.is_empty() {
        return Err(if tags.is_empty() {
            SelectionError::AllDisabled
        } else {
            SelectionError::NoTag {
                tags: tags.to_vec(),
            }
        });
    }
    Ok(Selection { runnable })
}
