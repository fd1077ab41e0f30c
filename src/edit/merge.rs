//! Merging imported forwards (or exposes) into a configuration: what is new, what is already
//! there, and what collides with an existing one (the same alias, or the same local port),
//! resolved as the user said: refuse (report, write nothing), replace, or rename.

use super::document::{self, lines};
use super::{Draft, ExposeDraft, Files, Inherited, Layer, PortPair};
use crate::config::{Diagnostics, Forward, LocalPort, PortRef};
use std::collections::BTreeSet;
use toml_edit::Table;

/// What a merge brings in: a forward or an expose.
pub trait Incoming: Clone {
    /// The section of the file its table goes to.
    const SECTION: &'static str;
    /// Whether it listens on local ports, which a merge may choose (a forward), or connects
    /// to one that is given (an expose).
    const LISTENS: bool;
    fn alias(&self) -> &str;
    fn with_alias(&self, alias: &str) -> Self;
    fn to_table(&self, defaults: &Inherited) -> Table;
    /// What it would listen on, written alone into `layer`; its problems, if any.
    fn listeners(&self, files: &Files, layer: Layer) -> Result<Vec<Forward>, Diagnostics>;
    /// Moves the local port of what reaches `remote` (only what listens has one to move).
    fn set_local_port(&mut self, _remote: &PortRef, _port: u16) {}
}

impl Incoming for Draft {
    const SECTION: &'static str = document::FORWARDS;
    const LISTENS: bool = true;

    fn alias(&self) -> &str {
        &self.alias
    }

    fn with_alias(&self, alias: &str) -> Self {
        Draft::with_alias(self, alias)
    }

    fn to_table(&self, defaults: &Inherited) -> Table {
        Draft::to_table(self, defaults)
    }

    fn listeners(&self, files: &Files, layer: Layer) -> Result<Vec<Forward>, Diagnostics> {
        files.forwards_of(layer, self)
    }

    fn set_local_port(&mut self, remote: &PortRef, port: u16) {
        let single = self.ports.len() == 1;
        for pair in &mut self.ports {
            if single || &pair.remote == remote {
                *pair = PortPair {
                    local: Some(LocalPort::Fixed(port)),
                    remote: pair.remote.clone(),
                };
            }
        }
    }
}

impl Incoming for ExposeDraft {
    const SECTION: &'static str = document::EXPOSES;
    const LISTENS: bool = false;

    fn alias(&self) -> &str {
        &self.alias
    }

    fn with_alias(&self, alias: &str) -> Self {
        ExposeDraft::with_alias(self, alias)
    }

    fn to_table(&self, defaults: &Inherited) -> Table {
        ExposeDraft::to_table(self, defaults)
    }

    fn listeners(&self, files: &Files, layer: Layer) -> Result<Vec<Forward>, Diagnostics> {
        files.exposes_of(layer, self).map(|_| Vec::new())
    }
}

/// What to do with an imported forward that collides with an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    /// Report every collision and change nothing.
    Refuse,
    /// The imported forward replaces the existing ones it collides with.
    Replace,
    /// The imported forward gets a free alias (`web-2`) and free local ports.
    Rename,
}

/// Options of one merge.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub layer: Layer,
    pub on_conflict: OnConflict,
    /// Local ports are a suggestion: a taken one moves to the next free port, whatever
    /// `on_conflict` says (for `--all-services`, which chooses the ports itself).
    pub move_ports: bool,
}

/// What happened to one imported entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Added {
        alias: String,
    },
    /// It is already in the file, as `alias`.
    Unchanged {
        alias: String,
    },
    /// It replaces the existing `alias` (same alias), and the existing forwards in `displaced`
    /// that listened on its ports.
    Replaced {
        alias: String,
        displaced: Vec<String>,
    },
    /// Added under another alias because `wanted` was taken.
    Renamed {
        wanted: String,
        alias: String,
    },
}

/// One collision, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// The alias exists with other settings: the existing and the incoming `key = value`
    /// lines.
    Alias {
        alias: String,
        existing: Vec<String>,
        incoming: Vec<String>,
    },
    /// The imported forward would listen where an existing (or another imported) one does.
    Port {
        alias: String,
        other: String,
        listen: String,
    },
}

/// Where a merge left things.
#[derive(Debug, Default)]
pub struct Plan {
    pub outcomes: Vec<Outcome>,
    /// Local ports moved: (alias, from, to).
    pub moved: Vec<(String, u16, u16)>,
    pub conflicts: Vec<Conflict>,
}

/// Why a merge could not be planned.
#[derive(Debug)]
pub enum MergeError {
    /// The configuration has problems already: they must be fixed first.
    Existing(Diagnostics),
    /// An imported entry is invalid on its own (index in `drafts`, and its problems).
    Invalid(usize, Diagnostics),
}

/// Merges `drafts` into `files` (when there is no conflict, or it is resolved) and says what
/// happened to each. With conflicts left, the files are unchanged.
pub fn merge<D: Incoming>(
    files: &mut Files,
    drafts: &[D],
    options: Options,
) -> Result<Plan, MergeError> {
    let before = files.before().map_err(MergeError::Existing)?;
    let mut plan = Plan::default();
    // Aliases in use: any table of either file.
    let mut taken: BTreeSet<String> = BTreeSet::new();
    taken.extend(document::names(&files.base.doc, D::SECTION));
    taken.extend(document::names(&files.local.doc, D::SECTION));
    // Forwards that listen, with the alias that owns them; replaced ones leave.
    let mut listening: Vec<Forward> = before.forwards.clone();
    let mut incoming_aliases: BTreeSet<String> = BTreeSet::new();
    let mut changes: Vec<(D, Change)> = Vec::new();

    for (index, original) in drafts.iter().enumerate() {
        let mut draft = original.clone();
        let loose = options.move_ports || options.on_conflict == OnConflict::Rename;
        if let Some(alias) = already_there(files, &draft, loose) {
            plan.outcomes.push(Outcome::Unchanged { alias });
            continue;
        }
        let mut change = Change::Add;
        let mut alias_reported = false;
        let wanted = draft.alias().to_owned();
        if taken.contains(&wanted) || incoming_aliases.contains(&wanted) {
            let ours = incoming_aliases.contains(&wanted);
            match options.on_conflict {
                OnConflict::Rename => {
                    let alias = free_alias(&wanted, &taken, &incoming_aliases);
                    draft = draft.with_alias(&alias);
                    change = Change::Rename(wanted);
                }
                OnConflict::Replace if !ours => {
                    change = Change::Replace(Vec::new());
                    if D::LISTENS {
                        listening.retain(|f| f.alias != wanted);
                    }
                }
                _ => {
                    alias_reported = true;
                    plan.conflicts.push(Conflict::Alias {
                        existing: existing_lines(files, D::SECTION, &wanted),
                        incoming: lines(&draft.to_table(&files.inherited(options.layer))),
                        alias: wanted,
                    });
                }
            }
        }
        let forwards = draft
            .listeners(files, options.layer)
            .map_err(|d| MergeError::Invalid(index, d))?;
        let mut placed = Vec::new();
        for mut forward in forwards {
            let clash = listening
                .iter()
                .find(|other| {
                    forward.shares_port_with(other)
                        && !(alias_reported && other.alias == draft.alias())
                })
                .cloned();
            let Some(other) = clash else {
                placed.push(forward);
                continue;
            };
            let existing = !incoming_aliases.contains(&other.alias);
            match (options.move_ports, options.on_conflict, existing) {
                (false, OnConflict::Replace, true) => {
                    listening.retain(|f| f.alias != other.alias);
                    match &mut change {
                        Change::Replace(displaced) => displaced.push(other.alias.clone()),
                        _ => change = Change::Replace(vec![other.alias.clone()]),
                    }
                }
                (true, _, _) | (false, OnConflict::Rename, _) => {
                    if let LocalPort::Fixed(from) = forward.local_port {
                        let to = free_port(&forward, &listening);
                        draft.set_local_port(&forward.remote_port, to);
                        forward.local_port = LocalPort::Fixed(to);
                        plan.moved.push((draft.alias().to_owned(), from, to));
                    }
                }
                _ => plan.conflicts.push(Conflict::Port {
                    alias: forward.name.clone(),
                    other: other.name.clone(),
                    listen: format!(
                        "{}:{}/{}",
                        forward.local_address, forward.local_port, forward.protocol
                    ),
                }),
            }
            placed.push(forward);
        }
        listening.extend(placed);
        incoming_aliases.insert(draft.alias().to_owned());
        changes.push((draft, change));
    }
    if !plan.conflicts.is_empty() {
        return Ok(plan);
    }
    for (draft, change) in changes {
        let outcome = apply(files, options.layer, &draft, &change);
        plan.outcomes.push(outcome);
    }
    Ok(plan)
}

/// How one imported entry enters the files.
#[derive(Debug, Clone)]
enum Change {
    Add,
    /// Replaces the same alias (if it exists) and the forwards listed.
    Replace(Vec<String>),
    /// Added under a new alias instead of the one given.
    Rename(String),
}

fn apply<D: Incoming>(files: &mut Files, layer: Layer, draft: &D, change: &Change) -> Outcome {
    let table = draft.to_table(&files.inherited(layer));
    let (section, alias) = (D::SECTION, draft.alias().to_owned());
    match change {
        Change::Add => {
            document::insert(&mut files.file_mut(layer).doc, section, &alias, table);
            Outcome::Added { alias }
        }
        Change::Rename(wanted) => {
            document::insert(&mut files.file_mut(layer).doc, section, &alias, table);
            Outcome::Renamed {
                wanted: wanted.clone(),
                alias,
            }
        }
        Change::Replace(displaced) => {
            // Only forwards displace others (on their local ports).
            for other in displaced {
                for l in files.layers_of(document::FORWARDS, other) {
                    document::remove(&mut files.file_mut(l).doc, document::FORWARDS, other);
                }
            }
            let target = &mut files.file_mut(layer).doc;
            if !document::replace(target, section, &alias, &table) {
                // Defined only in the other layer: it moves here, whole.
                let other = match layer {
                    Layer::Base => Layer::Local,
                    Layer::Local => Layer::Base,
                };
                document::remove(&mut files.file_mut(other).doc, section, &alias);
                document::insert(&mut files.file_mut(layer).doc, section, &alias, table);
            }
            Outcome::Replaced {
                alias,
                displaced: displaced.clone(),
            }
        }
    }
}

/// The alias under which this entry is already in the file, if any. `loose`: the local ports
/// of what listens do not count, since this merge chooses them itself (renaming or moving
/// ports), so running the same import twice changes nothing the second time.
fn already_there<D: Incoming>(files: &Files, draft: &D, loose: bool) -> Option<String> {
    let loose = loose && D::LISTENS;
    for layer in [Layer::Base, Layer::Local] {
        let doc = &files.file(layer).doc;
        let inherited = files.inherited(layer);
        for alias in document::names(doc, D::SECTION) {
            let Some(existing) = document::table(doc, D::SECTION, &alias) else {
                continue;
            };
            let wanted = draft.with_alias(&alias).to_table(&inherited);
            if comparable(&existing, loose) == comparable(&wanted, loose)
                && files.layers_of(D::SECTION, &alias).len() == 1
            {
                return Some(alias);
            }
        }
    }
    None
}

/// A table's `key = value` lines in a fixed order, without local ports when `loose`.
fn comparable(table: &Table, loose: bool) -> Vec<String> {
    let mut table = table.clone();
    if loose {
        table.remove("local_port");
        if let Some(ports) = table.get_mut("ports").and_then(|p| p.as_array_mut()) {
            for entry in ports.iter_mut() {
                if let Some(remote) = entry
                    .as_str()
                    .map(|e| e.rsplit(':').next().unwrap_or(e).to_owned())
                {
                    *entry = remote.into();
                }
            }
        }
    }
    let mut lines = lines(&table);
    lines.sort();
    lines
}

fn existing_lines(files: &Files, section: &str, alias: &str) -> Vec<String> {
    files
        .layers_of(section, alias)
        .into_iter()
        .filter_map(|l| document::table(&files.file(l).doc, section, alias))
        .flat_map(|t| lines(&t))
        .collect()
}

/// `web-2`, `web-3`, … : the first that nobody uses, within a DNS label's 63 characters.
pub fn free_alias(alias: &str, taken: &BTreeSet<String>, ours: &BTreeSet<String>) -> String {
    (2..)
        .map(|n| {
            let suffix = format!("-{n}");
            let stem = &alias[..alias.len().min(63 - suffix.len())];
            format!("{}{suffix}", stem.trim_end_matches('-'))
        })
        .find(|a| !taken.contains(a) && !ours.contains(a))
        .unwrap_or_else(|| alias.to_owned())
}

/// The next port after the forward's own that no listening forward holds on its address.
fn free_port(forward: &Forward, listening: &[Forward]) -> u16 {
    let LocalPort::Fixed(start) = forward.local_port else {
        return 0;
    };
    let mut probe = forward.clone();
    let candidates = (start.saturating_add(1)..=u16::MAX).chain(1024..start);
    for port in candidates {
        probe.local_port = LocalPort::Fixed(port);
        if !listening.iter().any(|other| probe.shares_port_with(other)) {
            return port;
        }
    }
    start
}
