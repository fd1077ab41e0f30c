//! `kftray exec [NAMES…] [--tag T] -- CMD ARGS…`: a command run with the project's forwards
//! ready and their addresses in its environment; what it started is stopped when it ends.

use super::env::variables;
use super::failure::{Code, Failure, Outcome};
use super::picked::Picked;
use super::up::{self, detach};
use super::{Cli, Output, config_path, live_run};
use crate::cli::status::ForwardStatus;
use crate::state::{ProcessId, Run, State};
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only these forwards (aliases; `alias:PORT` for one port of a `ports` list): brought
    /// up alone, or picked out of a run of this project already up.
    pub names: Vec<String>,
    /// Only forwards with this tag (repeatable: any of them).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// How long to wait for the forwards to be ready, e.g. 30s, 2m [default: 60s].
    #[arg(long, value_name = "DURATION", value_parser = crate::config::parse_duration)]
    pub timeout: Option<Duration>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

pub(super) fn run(cli: &Cli, args: &Args, out: &Output) -> Outcome {
    let path = config_path(cli, None)?;
    let home = State::default_home().ok_or_else(|| {
        Failure::Usage("cannot find a home directory for kftray's state; set KFTRAY_HOME".into())
    })?;
    let patience = args.timeout.unwrap_or(detach::WAIT);
    // A run this command starts has only the forwards asked for; of a run already up, those
    // are picked out (by the aliases the local files give the tags).
    let mut picked = None;
    let (run, started) = match live_run(&home, &path)? {
        Some(run) => {
            if !args.names.is_empty() || !args.tags.is_empty() {
                picked = Some(Picked::new(&path, &args.names, &args.tags, out)?);
            }
            (run, None)
        }
        None => {
            let up = up::Args {
                names: args.names.clone(),
                tags: args.tags.clone(),
                ..up::Args::default()
            };
            let background = detach::start(cli, &path, &home, &up)?;
            (background.run.clone(), Some(background))
        }
    };
    let outcome = with_forwards(
        &home,
        &run,
        patience,
        args,
        picked.as_ref(),
        started.is_some(),
    );
    // What this command started ends with it; a run it joined goes on.
    if let Some(mut background) = started {
        super::down::stop(run.pid);
        let _ = background.child.wait();
        if let Ok(mut state) = State::open(&home) {
            let _ = state.reap_dead_runs();
        }
    }
    outcome
}

/// Waits for the run's forwards, then runs the command with their addresses.
fn with_forwards(
    home: &Path,
    run: &Run,
    patience: Duration,
    args: &Args,
    picked: Option<&Picked>,
    started: bool,
) -> Outcome {
    let pid = ProcessId {
        pid: run.pid,
        start: None,
    };
    let mut ended = || {
        (!pid.is_alive()).then(|| {
            Failure::Failed(format!(
                "kftray up (pid {}) ended before its forwards were ready",
                run.pid
            ))
        })
    };
    let wanted = |f: &ForwardStatus| picked.is_none_or(|p| p.picks(&f.alias));
    let forwards = match detach::wait_ready(home, run, patience, &wanted, &mut ended) {
        Ok(forwards) => forwards,
        Err(detach::Waited::Ended(failure)) => return Err(failure),
        Err(detach::Waited::NotReady(seen)) => {
            if seen.is_empty()
                && let Some(picked) = picked
            {
                eprintln!(
                    "error: the run already up (pid {}) has no forward {picked}",
                    run.pid
                );
            }
            detach::say_not_ready(&seen, patience);
            if started {
                eprintln!("error: the command was not run; the forwards it started are stopped");
            } else {
                eprintln!("error: the command was not run");
            }
            return Err(Failure::Said(Code::Failed));
        }
    };
    let named = forwards
        .iter()
        .map(|f| (f.alias.as_str(), f.local_address.as_str()));
    let (variables, _) = variables(named).map_err(Failure::Failed)?;
    let code = super::child::run(&args.command, &variables)?;
    match code {
        0 => Ok(()),
        code => Err(Failure::Said(Code::Exit(code))),
    }
}
