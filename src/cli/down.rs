//! `kftray down`: stop a project's running forwards from any terminal; `down NAMES…` or
//! `--tag T` only those, while the run serves the rest.

use super::failure::{Failure, Outcome};
use super::output::say;
use super::picked::Picked;
use super::{Cli, Output, config_path, live_run, runs_to_read};
use crate::state::{Run, State};
use std::time::{Duration, Instant};

/// How long a run may take to stop (its connections drain) before it is killed.
const GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Stop every project's forwards on this machine.
    #[arg(short, long, conflicts_with_all = ["names", "tags"])]
    pub all: bool,
    /// Only these forwards (aliases; `alias:PORT` for one port of a `ports` list); the run
    /// goes on with the others, and `kftray up NAMES` brings them back.
    pub names: Vec<String>,
    /// Only forwards with this tag (repeatable: any of them).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
}

pub(super) fn run(cli: &Cli, args: &Args, out: &Output) -> Outcome {
    if !args.names.is_empty() || !args.tags.is_empty() {
        return some(cli, args, out);
    }
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

/// `down NAMES… --tag T`: those forwards of the run are held down, the rest serve on; when
/// that is every forward of the run, the run stops.
fn some(cli: &Cli, args: &Args, out: &Output) -> Outcome {
    let path = config_path(cli, None)?;
    let (home, _) = runs_to_read(cli, false)?;
    let Some(run) = live_run(&home, &path)? else {
        return Err(Failure::Failed(
            "nothing is running for this project".into(),
        ));
    };
    let failed = |e: crate::state::StateError| Failure::Usage(e.to_string());
    let mut state = State::open(&home).map_err(failed)?;
    let rows = state.forwards(run.id).map_err(failed)?;
    let picked = Picked::new(&path, &args.names, &args.tags, out)?;
    let names: Vec<String> = rows
        .iter()
        .map(|r| r.name.clone())
        .filter(|name| picked.picks(name))
        .collect();
    if names.is_empty() {
        return Err(Failure::Failed(format!(
            "no running forward of this project is {picked}"
        )));
    }
    if names.len() == rows.len() {
        stop(run.pid);
        state.reap_dead_runs().map_err(failed)?;
        if !out.quiet {
            say(&format!("stopped {} (pid {})\n", run.project, run.pid));
        }
        return Ok(());
    }
    state
        .override_forwards(run.id, &names, false)
        .map_err(failed)?;
    nudge(&run);
    wait_gone(&state, &run, &names)?;
    if !out.quiet {
        for name in &names {
            say(&format!("stopped {name}\n"));
        }
        say(&format!(
            "the run (pid {}) serves the others; `kftray up {}` brings them back\n",
            run.pid,
            names.join(" ")
        ));
    }
    Ok(())
}

/// Tells a run that its selection changed, so that it does not wait for its next tick (on
/// Windows, which has no such signal, it does).
#[cfg(not(unix))]
pub(super) fn nudge(_run: &Run) {}

/// Tells a run that its selection changed, so that it does not wait for its next tick.
#[cfg(unix)]
pub(super) fn nudge(run: &Run) {
    if let Ok(pid) = i32::try_from(run.pid) {
        // SAFETY: kill has no memory effects; the pid is a live run this user recorded.
        unsafe { libc::kill(pid, libc::SIGUSR1) };
    }
}

/// Waits until the run no longer lists `names` among its forwards.
fn wait_gone(state: &State, run: &Run, names: &[String]) -> Result<(), Failure> {
    let started = Instant::now();
    loop {
        let rows = state
            .forwards(run.id)
            .map_err(|e| Failure::Usage(e.to_string()))?;
        if !rows.iter().any(|r| names.contains(&r.name)) {
            return Ok(());
        }
        if started.elapsed() > GRACE {
            return Err(Failure::Failed(format!(
                "the run (pid {}) did not stop {} within {}s",
                run.pid,
                names.join(", "),
                GRACE.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Ends the run at once: Windows cannot ask it to stop (see `state::end_now`).
#[cfg(windows)]
pub(super) fn stop(pid: u32) {
    if let Err(e) = crate::state::end_now(pid) {
        tracing::debug!("ending pid {pid}: {e}");
    }
}

/// SIGTERM, then SIGKILL if the process is still there after the grace period.
#[cfg(unix)]
pub(super) fn stop(pid: u32) {
    let Ok(raw) = i32::try_from(pid) else { return };
    let alive = || crate::state::ProcessId { pid, start: None }.is_alive();
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
