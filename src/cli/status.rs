//! `kftray status` (alias `ps`): what runs, read from the state database.

use super::output::say;
use super::{Cli, Output, runs_to_read};
use crate::state::State;
use crate::status::{ForwardStatus, following, table};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Every project on this machine, not only the one of the current directory.
    #[arg(short, long)]
    pub all: bool,
    /// `table` for people, `json` (a flat array of forwards, documented in the README).
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

pub(super) fn run(cli: &Cli, args: &Args, out: &Output) -> ExitCode {
    let (home, project) = match runs_to_read(cli, args.all) {
        Ok(found) => found,
        Err(message) => {
            out.error(&message);
            return ExitCode::from(2);
        }
    };
    let mut state = match State::open(&home) {
        Ok(state) => state,
        Err(e) => {
            out.error(&e.to_string());
            return ExitCode::from(2);
        }
    };
    let collected = state.reap_dead_runs().and_then(|_| {
        let mut runs = Vec::new();
        for run in state.live_runs(project.as_deref())? {
            let following = state.source(run.id)?;
            let rows: Vec<ForwardStatus> = state
                .forwards(run.id)?
                .iter()
                .map(|row| ForwardStatus::new(&run, row, &following))
                .collect();
            runs.push((run, following, rows));
        }
        Ok(runs)
    });
    let runs = match collected {
        Ok(runs) => runs,
        Err(e) => {
            out.error(&e.to_string());
            return ExitCode::from(2);
        }
    };
    let rows: Vec<&ForwardStatus> = runs.iter().flat_map(|(_, _, rows)| rows).collect();
    match args.output {
        Format::Json => match serde_json::to_string_pretty(&rows) {
            Ok(json) => say(&format!("{json}\n")),
            Err(e) => {
                out.error(&e.to_string());
                return ExitCode::from(2);
            }
        },
        Format::Table if runs.is_empty() => {
            if !out.quiet {
                say("no kftray forwards are running\n");
            }
        }
        Format::Table => {
            let rows: Vec<ForwardStatus> = rows.into_iter().cloned().collect();
            say(&table(&rows));
            for (run, source, _) in &runs {
                let text = following(source);
                if text.is_empty() {
                    continue;
                }
                if runs.len() > 1 {
                    say(&format!("\n{}:\n{text}", run.project));
                } else {
                    say(&format!("\n{text}"));
                }
            }
        }
    }
    ExitCode::SUCCESS
}
