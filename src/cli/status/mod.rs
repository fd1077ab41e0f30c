//! `kftray status` (alias `ps`): what runs, read from the state database.

mod table;

pub(super) use table::{ForwardStatus, following, table};

use super::failure::{Failure, Outcome};
use super::output::say;
use super::{Cli, Output, runs_to_read};
use crate::state::State;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Every project on this machine, not only the one of the current directory.
    #[arg(short, long)]
    pub all: bool,
    /// `table` for people, `json` (a flat array of forwards, documented in the README).
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
}

pub(super) fn run(cli: &Cli, args: &Args, out: &Output) -> Outcome {
    let (home, project) = runs_to_read(cli, args.all)?;
    let usage = |e: &dyn std::fmt::Display| Failure::Usage(e.to_string());
    let mut state = State::open(&home).map_err(|e| usage(&e))?;
    let collected = state.reap_dead_runs().and_then(|_| {
        let mut runs = Vec::new();
        for run in state.live_runs(project.as_deref())? {
            let following = state.source(run.id)?;
            let rows: Vec<ForwardStatus> = state
                .forwards(run.id)?
                .iter()
                .map(|row| ForwardStatus::new(&run, row, &following))
                .collect();
            let held = state.overrides(run.id)?.held;
            runs.push((run, following, rows, held));
        }
        Ok(runs)
    });
    let runs = collected.map_err(|e| usage(&e.at(state.path())))?;
    let rows: Vec<&ForwardStatus> = runs.iter().flat_map(|(_, _, rows, _)| rows).collect();
    match args.output {
        Format::Json => {
            let json = serde_json::to_string_pretty(&rows).map_err(|e| usage(&e))?;
            say(&format!("{json}\n"));
        }
        Format::Table if runs.is_empty() => {
            if !out.quiet {
                say("no kftray forwards are running\n");
            }
        }
        Format::Table => {
            let rows: Vec<ForwardStatus> = rows.into_iter().cloned().collect();
            say(&table(&rows));
            for (run, source, _, held) in &runs {
                let mut text = following(source);
                if !held.is_empty() {
                    let names = held.join(" ");
                    text.push_str(&format!(
                        "held down: {} (`kftray up {names}` brings them back)\n",
                        held.join(", ")
                    ));
                }
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
    Ok(())
}
