//! Changing kftray.toml (and kftray.local.toml) the way a careful person would: only the
//! forwards (or exposes) concerned change, every comment, blank line, key order and quoting
//! elsewhere stays, the result is validated before anything is written, and each file is
//! replaced atomically so that a running `kftray up` never reads half of it.
//!
//! [`Files`] holds both layers of one configuration as `toml_edit` documents; the commands
//! (`add`, `rm`, `import`) change them through [`document`] and [`merge`], then
//! [`Files::check`] and [`Files::commit`].

mod atomic;
mod diff;
pub mod document;
mod draft;
mod expose;
pub mod merge;
mod turn;

pub use atomic::{WriteError, write_atomically};
pub use diff::unified;
pub use draft::{Draft, DraftTarget, Inherited, PortPair};
pub use expose::ExposeDraft;

use crate::config::{self, Diagnostics, Effective, Expose, Finding, Forward};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml_edit::{DocumentMut, Table};

/// Which layer an edit goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// kftray.toml, the team's file.
    Base,
    /// kftray.local.toml, personal and git-ignored.
    Local,
}

/// One file: where it is, what it held when read (`None`: it does not exist yet) and the
/// document being edited.
#[derive(Debug, Clone)]
pub struct File {
    pub path: PathBuf,
    pub original: Option<String>,
    pub doc: DocumentMut,
}

impl File {
    pub fn text(&self) -> String {
        self.doc.to_string()
    }

    pub fn changed(&self) -> bool {
        self.original.as_deref().unwrap_or("") != self.text()
    }

    /// The text as loading sees it: a file that does not exist (and was not created) is not
    /// a layer.
    fn layer(&self, text: String) -> Option<(PathBuf, String)> {
        (self.original.is_some() || !text.is_empty()).then(|| (self.path.clone(), text))
    }
}

/// The result of a successful check: the configuration as it will run, and how many problems
/// the files already had before the edit (an edit may not add any).
#[derive(Debug)]
pub struct Checked {
    /// None when problems the files had before remain.
    pub effective: Option<Effective>,
    pub old_problems: usize,
}

/// kftray.toml and its kftray.local.toml, being edited together.
#[derive(Debug, Clone)]
pub struct Files {
    pub base: File,
    pub local: File,
    /// This process's turn to edit the project, from reading to writing.
    _turn: Option<Arc<std::fs::File>>,
}

impl Files {
    /// Reads both layers of the configuration at `path`. A missing kftray.toml starts as a
    /// new file with the `#:schema` line; a file that is not TOML at all cannot be edited, and
    /// its syntax errors are returned.
    pub fn open(path: &Path) -> Result<Files, Diagnostics> {
        let turn = turn::take(path);
        let base = read(path, || config::empty_document(Some(config::SCHEMA_URL)))?;
        let local = read(&config::local_path(path), DocumentMut::new)?;
        let files = Files {
            base,
            local,
            _turn: turn,
        };
        if files.base.original.is_some() || files.local.original.is_some() {
            // toml_edit accepted the syntax; anything it missed is reported the usual way.
            if let Err(d) = files.before()
                && d.findings().iter().any(|f| f.code == "kftray::syntax")
            {
                return Err(d);
            }
        }
        Ok(files)
    }

    pub fn file(&self, layer: Layer) -> &File {
        match layer {
            Layer::Base => &self.base,
            Layer::Local => &self.local,
        }
    }

    pub fn file_mut(&mut self, layer: Layer) -> &mut File {
        match layer {
            Layer::Base => &mut self.base,
            Layer::Local => &mut self.local,
        }
    }

    /// The configuration as the files were read.
    pub fn before(&self) -> Result<Effective, Diagnostics> {
        self.load(
            self.base.original.clone().unwrap_or_default(),
            self.local.original.clone(),
        )
    }

    /// The configuration as it would be after the edit.
    pub fn after(&self) -> Result<Effective, Diagnostics> {
        self.load(self.base.text(), Some(self.local.text()))
    }

    fn load(&self, base: String, local: Option<String>) -> Result<Effective, Diagnostics> {
        let mut layers = vec![config::Layer::local(self.base.path.clone(), base)];
        if let Some((path, text)) = local.and_then(|text| self.local.layer(text)) {
            layers.push(config::Layer::local(path, text));
        }
        config::load_layers(layers)
    }

    /// Validates the edited files. An edit may leave problems the files already had, but may
    /// not add one: the new ones are returned, each at its place in the edited text.
    pub fn check(&self) -> Result<Checked, Diagnostics> {
        let old: Vec<Finding> = match self.before() {
            Ok(_) => Vec::new(),
            Err(d) => d.findings().to_vec(),
        };
        match self.after() {
            Ok(effective) => Ok(Checked {
                effective: Some(effective),
                old_problems: 0,
            }),
            Err(after) => {
                let mut unmatched: Vec<(&str, &str)> = old
                    .iter()
                    .map(|f| (f.code.as_str(), f.message.as_str()))
                    .collect();
                let new: Vec<Finding> = after
                    .findings()
                    .iter()
                    .filter(|f| {
                        let key = (f.code.as_str(), f.message.as_str());
                        match unmatched.iter().position(|k| *k == key) {
                            Some(i) => {
                                unmatched.swap_remove(i);
                                false
                            }
                            None => true,
                        }
                    })
                    .cloned()
                    .collect();
                if new.is_empty() {
                    Ok(Checked {
                        effective: None,
                        old_problems: after.len(),
                    })
                } else {
                    Err(after.only(&new))
                }
            }
        }
    }

    /// The unified diff of every changed file.
    pub fn diff(&self, color: bool) -> String {
        [&self.base, &self.local]
            .into_iter()
            .filter(|f| f.changed())
            .map(|f| unified(&f.path, f.original.as_deref(), &f.text(), color))
            .collect()
    }

    pub fn changed(&self) -> bool {
        self.base.changed() || self.local.changed()
    }

    /// Writes every changed file atomically; returns the paths written.
    pub fn commit(&self) -> Result<Vec<PathBuf>, WriteError> {
        let mut written = Vec::new();
        for file in [&self.base, &self.local] {
            if file.changed() {
                write_atomically(&file.path, file.original.as_deref(), &file.text())?;
                written.push(file.path.clone());
            }
        }
        Ok(written)
    }

    /// The values a forward written to `layer` inherits from `[defaults]`.
    pub fn inherited(&self, layer: Layer) -> Inherited {
        let mut merged = self.base.doc.clone();
        if layer == Layer::Local
            && let Some(local) = self
                .local
                .doc
                .get("defaults")
                .and_then(|d| d.as_table_like())
        {
            for (k, v) in local.iter() {
                merged["defaults"][k] = v.clone();
            }
        }
        Inherited::from_document(&merged)
    }

    /// These files with their forwards, exposes and `[sync]` taken out and `table` put in as
    /// `[<section>.<alias>]` of `layer`, beside the files' `[defaults]`: what is wrong with
    /// them then is wrong with that table.
    pub fn alone(&self, layer: Layer, section: &str, alias: &str, table: Table) -> Files {
        let mut alone = self.clone();
        for file in [&mut alone.base, &mut alone.local] {
            for other in [document::FORWARDS, document::EXPOSES, "sync"] {
                file.doc.remove(other);
            }
        }
        document::insert(&mut alone.file_mut(layer).doc, section, alias, table);
        alone
    }

    /// The forwards a draft would be, written alone into `layer` with the files' `[defaults]`:
    /// its problems, if any, are its own.
    pub fn forwards_of(&self, layer: Layer, draft: &Draft) -> Result<Vec<Forward>, Diagnostics> {
        let table = draft.to_table(&self.inherited(layer));
        let alone = self.alone(layer, document::FORWARDS, &draft.alias, table);
        alone.after().map(|e| e.forwards)
    }

    /// The expose a draft would be, written alone into `layer` as [`Files::forwards_of`]
    /// writes a forward.
    pub fn exposes_of(
        &self,
        layer: Layer,
        draft: &ExposeDraft,
    ) -> Result<Vec<Expose>, Diagnostics> {
        let table = draft.to_table(&self.inherited(layer));
        let alone = self.alone(layer, document::EXPOSES, &draft.alias, table);
        alone.after().map(|e| e.exposes)
    }

    /// Which layers define `alias` in `section`.
    pub fn layers_of(&self, section: &str, alias: &str) -> Vec<Layer> {
        [Layer::Base, Layer::Local]
            .into_iter()
            .filter(|l| document::has(&self.file(*l).doc, section, alias))
            .collect()
    }
}

fn read(path: &Path, new: impl FnOnce() -> DocumentMut) -> Result<File, Diagnostics> {
    let original = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(Diagnostics::file_problem(
                "kftray::io",
                path.to_path_buf(),
                format!("cannot read: {e}"),
                None,
            ));
        }
    };
    let doc = match &original {
        None => new(),
        Some(text) => match text.parse::<DocumentMut>() {
            Ok(doc) => doc,
            Err(_) => {
                // The configuration's own loader reports the syntax error with its place.
                return Err(config::load_str(path, text).err().unwrap_or_else(|| {
                    Diagnostics::file_problem(
                        "kftray::syntax",
                        path.to_path_buf(),
                        "not a TOML file".to_owned(),
                        None,
                    )
                }));
            }
        },
    };
    Ok(File {
        path: path.to_path_buf(),
        original,
        doc,
    })
}

#[cfg(test)]
mod tests;
