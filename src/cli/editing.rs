//! What `add`, `rm` and `import` share: which file they edit, and the end of every edit —
//! validate, then show the diff (`--dry-run`) or write atomically.

use super::failure::{Code, Failure, Outcome};
use super::output::say;
use super::{Cli, Output, config_path};
use crate::edit::{Files, Layer};
use std::io::IsTerminal;
use std::path::PathBuf;

/// The file an edit goes to: `-f`, else the nearest kftray.toml, else a new one here.
pub(super) fn target(cli: &Cli) -> PathBuf {
    config_path(cli, None).unwrap_or_else(|_| PathBuf::from(crate::config::FILE_NAME))
}

/// Opens both layers, or says why they cannot be edited.
pub(super) fn open(cli: &Cli) -> Result<Files, Failure> {
    Files::open(&target(cli)).map_err(Failure::Config)
}

pub(super) fn layer(local: bool) -> Layer {
    if local { Layer::Local } else { Layer::Base }
}

/// Validates the edited files and writes them (or, with `dry_run`, prints the diff). The
/// summary lines say what changed; they are printed once the files are written.
pub(super) fn finish(files: &Files, out: &Output, dry_run: bool, summary: &[String]) -> Outcome {
    let checked = match files.check() {
        Ok(checked) => checked,
        Err(problems) => {
            out.error("the edited configuration would have problems; nothing was written");
            out.diagnostics(&problems);
            return Err(Failure::Said(Code::Failed));
        }
    };
    if checked.old_problems > 0 && !out.quiet {
        out.warning(&format!(
            "the configuration still has {} problem{} it had before (see `kftray validate`)",
            checked.old_problems,
            if checked.old_problems == 1 { "" } else { "s" }
        ));
    }
    if dry_run {
        let color = out.color && std::io::stdout().is_terminal();
        say(&files.diff(color));
        if !out.quiet {
            for line in summary {
                eprintln!("{line}");
            }
            eprintln!("dry run: nothing was written");
        }
        return Ok(());
    }
    if !files.changed() {
        if !out.quiet {
            for line in summary {
                say(&format!("{line}\n"));
            }
        }
        return Ok(());
    }
    match files.commit() {
        Ok(written) => {
            if !out.quiet {
                for line in summary {
                    say(&format!("{line}\n"));
                }
                let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
                say(&format!("wrote {}\n", names.join(" and ")));
            }
            Ok(())
        }
        Err(e) => Err(Failure::Usage(e.to_string())),
    }
}
