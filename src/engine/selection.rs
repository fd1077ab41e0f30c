//! Which forwards of the effective config a run starts: the enabled ones, narrowed by the
//! names and tags the user gave.

use super::RunSpec;
use crate::config::{self, AllPorts, Effective};
use crate::state::Overrides;
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
    if let Some(name) = names.iter().find(|name| !effective.names(name)) {
        return Err(SelectionError::UnknownName {
            name: name.clone(),
            known: effective
                .forwards
                .iter()
                .map(|f| f.name.clone())
                .chain(effective.all_ports.iter().map(|a| a.alias.clone()))
                .chain(RunSpec::of_proxies(effective).into_iter().map(|(n, _)| n))
                .chain(effective.exposes.iter().map(|e| e.name()))
                .collect(),
        });
    }
    let mut runnable: BTreeMap<String, RunSpec> = effective
        .selected(tags)
        .filter(|f| names.is_empty() || names.iter().any(|n| named(f, n)))
        .map(|f| (f.name.clone(), RunSpec::from_config(f, &effective.relay)))
        .collect();
    // The proxy has no tags: it runs with the whole file, or when named.
    runnable.extend(
        RunSpec::of_proxies(effective)
            .into_iter()
            .chain(RunSpec::of_exposes(effective))
            .filter(|(name, _)| {
                if names.is_empty() {
                    tags.is_empty()
                } else {
                    names.contains(name)
                }
            }),
    );
    // A `ports = "all"` entry whose ports are not listed yet is selected all the same: the
    // run keeps trying to list them.
    if runnable.is_empty() && !effective.all_ports.iter().any(picks(names, tags)) {
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

/// Whether a run of `names` and `tags` runs a `ports = "all"` entry.
pub fn picks<'a>(names: &'a [String], tags: &'a [String]) -> impl Fn(&AllPorts) -> bool + 'a {
    move |all| all.is_selected(tags) && (names.is_empty() || names.contains(&all.alias))
}

/// The forwards to run, as other terminals changed the selection while the run is up: what
/// `kftray up NAMES` added (names the file no longer has are passed over), less what
/// `kftray down NAMES` holds down.
pub(super) fn overridden(
    effective: &Effective,
    names: &[String],
    tags: &[String],
    overrides: &Overrides,
) -> Result<Selection, SelectionError> {
    let mut selection = desired(effective, names, tags)?;
    let added: Vec<String> = overrides
        .added
        .iter()
        .filter(|name| effective.names(name))
        .cloned()
        .collect();
    if !added.is_empty()
        && let Ok(more) = desired(effective, &added, &[])
    {
        selection.runnable.extend(more.runnable);
    }
    selection
        .runnable
        .retain(|name, _| !overrides.held.contains(name));
    Ok(selection)
}

/// Whether such a run runs a `ports = "all"` entry (see [`overridden`]).
pub(super) fn picks_overridden<'a>(
    names: &'a [String],
    tags: &'a [String],
    overrides: &'a Overrides,
) -> impl Fn(&AllPorts) -> bool + 'a {
    move |all| picks(names, tags)(all) || overrides.added.contains(&all.alias)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_terminals_add_forwards_and_hold_them_down() {
        let effective = config::load_str(
            "kftray.toml",
            "[forwards.web]\nservice = \"web\"\nremote_port = 80\n\
             [forwards.api]\nservice = \"api\"\nports = [\"8081:80\", \"8443:443\"]\n\
             [forwards.admin]\nservice = \"admin\"\nremote_port = 9000\ntags = [\"ops\"]\n",
        )
        .unwrap();
        let names = |s: Selection| s.runnable.into_keys().collect::<Vec<_>>();
        let base = vec!["web".to_owned()];
        let none = Overrides::default();
        assert_eq!(
            names(overridden(&effective, &base, &[], &none).unwrap()),
            ["web"]
        );
        let changed = Overrides {
            added: vec!["api".into(), "admin".into(), "gone".into()],
            held: vec!["api:443".into(), "web".into()],
        };
        assert_eq!(
            names(overridden(&effective, &base, &[], &changed).unwrap()),
            ["admin", "api:80"]
        );
    }
}
