//! `kftray init`: a commented starter kftray.toml.

use super::failure::{Failure, Outcome};
use super::output::say;
use super::{Cli, Output};
use std::io::Write;
use std::path::PathBuf;

use crate::config::SCHEMA_URL;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write (default: -f, else ./kftray.toml).
    pub path: Option<PathBuf>,
    /// The `#:schema` line's target (a URL, or a path relative to the new file).
    #[arg(long, value_name = "PATH_OR_URL", default_value = SCHEMA_URL)]
    pub schema: String,
}

pub(super) fn run(cli: &Cli, args: &Args, out: &Output) -> Outcome {
    let path = args
        .path
        .clone()
        .or_else(|| cli.file.clone())
        .unwrap_or_else(|| PathBuf::from(crate::config::FILE_NAME));
    let text = crate::config::starter(Some(&args.schema));
    // create_new: an existing file is never touched, even if it appears meanwhile.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path);
    let mut file = match file {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Failure::Failed(format!(
                "{} already exists; not overwriting it",
                path.display()
            )));
        }
        Err(e) => {
            return Err(Failure::Usage(format!(
                "cannot create {}: {e}",
                path.display()
            )));
        }
    };
    file.write_all(text.as_bytes())
        .map_err(|e| Failure::Usage(format!("cannot write {}: {e}", path.display())))?;
    if !out.quiet {
        say(&format!(
            "wrote {}; check it with `kftray validate`\n",
            path.display()
        ));
    }
    Ok(())
}
