//! `kftray init`: a commented starter kftray.toml.

use super::output::say;
use super::{Cli, Output};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::SCHEMA_URL;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write (default: -f, else ./kftray.toml).
    pub path: Option<PathBuf>,
    /// The `#:schema` line's target (a URL, or a path relative to the new file).
    #[arg(long, value_name = "PATH_OR_URL", default_value = SCHEMA_URL)]
    pub schema: String,
}

pub(super) fn run(cli: &Cli, args: &Args, out: &Output) -> ExitCode {
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
            out.error(&format!(
                "{} already exists; not overwriting it",
                path.display()
            ));
            return ExitCode::from(1);
        }
        Err(e) => {
            out.error(&format!("cannot create {}: {e}", path.display()));
            return ExitCode::from(2);
        }
    };
    if let Err(e) = file.write_all(text.as_bytes()) {
        out.error(&format!("cannot write {}: {e}", path.display()));
        return ExitCode::from(2);
    }
    if !out.quiet {
        say(&format!(
            "wrote {}; check it with `kftray validate`\n",
            path.display()
        ));
    }
    ExitCode::SUCCESS
}
