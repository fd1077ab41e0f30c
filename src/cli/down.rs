//! `kftray down`: stop a project's running forwards from any terminal.

use super::failure::{Failure, Outcome};
use super::output::say;
use super::{Cli, Output, runs_to_read};
use crate::state::{ProcessId, State};
use std::time::{Duration, Instant};

/// How long a run may take to stop (its connections drain) before it is killed.
const GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Stop every project's forwards on this machine.
    #[arg(short, long)]
    pub all: bool,
}

pub(super) fn run(cli: &Cli, args: &Args, out: &Output) -> Outcome {
    let (home, project) = runs_to_read(cli, args.all)?;
    let result = (|| {
        let mut state = State::open(&home)?;
        state.reap_dead_runs()?;
        let runs = state.live_runs(project.as_deref())?;
        for run in &runs {
            stop(run.pid);
            if !out.quiet {
                say(&format!("stopped {} (pid {})\n", run.project, run.pid));
            }
        }
        // A run that had to be killed could not record its own end.
        state.reap_dead_runs()?;
        Ok::<_, crate::state::StateError>(runs.len())
    })();
    let stopped = result.map_err(|e| Failure::Usage(e.at(&State::file_in(&home)).to_string()))?;
    if stopped == 0 && !out.quiet {
        say("nothing was running\n");
    }
    Ok(())
}

/// SIGTERM, then SIGKILL if the process is still there after the grace period.
pub(super) fn stop(pid: u32) {
    let Ok(raw) = i32::try_from(pid) else { return };
    let alive = || ProcessId { pid, start: None }.is_alive();
    // SAFETY: kill has no memory effects; the pid came from a run this user recorded.
    unsafe { libc::kill(raw, libc::SIGTERM) };
    let started = Instant::now();
    while alive() && started.elapsed() < GRACE {
        std::thread::sleep(Duration::from_millis(20));
    }
    if alive() {
        // SAFETY: as above.
        unsafe { libc::kill(raw, libc::SIGKILL) };
    }
}
