//! `kftray rm`: removes forwards, from kftray.toml and kftray.local.toml alike, and nothing
//! else.

use super::failure::{Failure, Outcome};
use super::{Cli, Output, editing};
use crate::edit::document;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The aliases of the forwards to remove (`[forwards.<alias>]`).
    #[arg(required = true, value_name = "ALIAS")]
    pub aliases: Vec<String>,
    /// Print the change as a diff and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub(super) fn run(cli: &Cli, args: &Args, out: &Output) -> Outcome {
    let mut files = editing::open(cli)?;
    let mut summary = Vec::new();
    for alias in &args.aliases {
        let layers = files.layers_of(document::FORWARDS, alias);
        if layers.is_empty() {
            let mut known = document::names(&files.base.doc, document::FORWARDS);
            known.extend(document::names(&files.local.doc, document::FORWARDS));
            let hint = match crate::config::did_you_mean(alias, known.iter().map(String::as_str)) {
                Some(m) => format!("; did you mean `{m}`?"),
                None if alias.contains(':') => {
                    "; an entry of a `ports` list is removed by editing that list".to_owned()
                }
                None => String::new(),
            };
            return Err(Failure::Failed(format!(
                "there is no forward `{alias}` in {}{hint}; nothing was written",
                files.base.path.display()
            )));
        }
        let mut from = Vec::new();
        for layer in layers {
            document::remove(&mut files.file_mut(layer).doc, document::FORWARDS, alias);
            from.push(files.file(layer).path.display().to_string());
        }
        summary.push(format!("removed {alias} from {}", from.join(" and ")));
    }
    editing::finish(&files, out, args.dry_run, &summary)
}
