//! `kftray validate`: every problem of a configuration, without touching any cluster.

use super::failure::{Code, Failure, Outcome};
use super::output::say;
use super::{Cli, Output, config_path};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file to check (default: -f, else the nearest kftray.toml). Its kftray.local.toml
    /// (FILE.local.toml) is laid over it when present.
    pub path: Option<PathBuf>,
    /// `human` (miette reports on stderr) or `json` (an array of findings on stdout, `[]` when
    /// the file is valid).
    #[arg(short = 'o', long, visible_alias = "output", value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
}

pub(super) fn run(cli: &Cli, args: &Args, out: &Output) -> Outcome {
    let path = config_path(cli, args.path.as_deref())?;
    let loaded = match super::effective::load_offline(&path, out) {
        Ok(effective) => Ok(effective),
        Err(Failure::Config(diagnostics)) => Err(diagnostics),
        Err(other) => return Err(other),
    };
    match (loaded, args.format) {
        (Ok(_), Format::Json) => {
            say("[]
");
            Ok(())
        }
        (Ok(effective), Format::Human) => {
            if !out.quiet {
                let enabled = effective.forwards.iter().filter(|f| f.enabled).count()
                    + effective.all_ports.iter().filter(|a| a.enabled).count();
                let count = effective.forwards.len() + effective.all_ports.len();
                let files: Vec<String> = effective
                    .files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect();
                let mut text = format!(
                    "{}: valid, {} forward{} ({enabled} enabled)\n",
                    files.join(" + "),
                    count,
                    if count == 1 { "" } else { "s" },
                );
                for all in &effective.all_ports {
                    text.push_str(&format!(
                        "  {}: every {} port of {}: listed by `up` (and `kftray config`) once the \
                         cluster answers\n",
                        all.alias, all.protocol, all.target
                    ));
                }
                if out.verbose > 0 {
                    for f in &effective.forwards {
                        text.push_str(&format!(
                            "  {:<20} {}:{} -> {} {}\n",
                            f.name, f.local_address, f.local_port, f.target, f.remote_port
                        ));
                    }
                }
                say(&text);
            }
            Ok(())
        }
        (Err(diagnostics), Format::Json) => {
            say(&format!("{}\n", diagnostics.to_json()));
            Err(Failure::Said(Code::Failed))
        }
        (Err(diagnostics), Format::Human) => Err(Failure::Config(diagnostics)),
    }
}
