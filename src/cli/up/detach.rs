//! `kftray up --detach`: the same run in a background process of its own, and the wait
//! until it reports its forwards.

use super::super::Cli;
use super::super::failure::{Code, Failure, Outcome};
use super::super::output::say;
use super::super::status::{ForwardStatus, following, table};
use super::Args;
use crate::state::{EventKind, State};
use std::path::Path;
use std::time::{Duration, Instant};

/// The hidden flag that tells the background run to take its arguments from [`ARGS_ENV`].
pub(super) const FROM_PARENT: &str = "--from-parent";

/// The background run's `up` arguments, as JSON of the parsed command (so that every flag of
/// `up` reaches it without being mirrored here), in its environment, which other users
/// cannot read (a repository URL may carry a token), rather than on its command line.
const ARGS_ENV: &str = "KFTRAY_UP_ARGS";

/// In the background run: the arguments its parent parsed.
pub(super) fn args_from_parent() -> Result<Args, Failure> {
    let json = std::env::var(ARGS_ENV).map_err(|_| {
        Failure::Usage(format!(
            "{FROM_PARENT} is for the run `kftray up --detach` starts: {ARGS_ENV} is not set"
        ))
    })?;
    serde_json::from_str(&json)
        .map_err(|e| Failure::Usage(format!("{ARGS_ENV} is not what kftray wrote: {e}")))
}

/// Starts `kftray up` again as a background process of its own (its own process group, so
/// the terminal's Ctrl-C does not reach it; output to a log file), then waits until that
/// run reports its forwards listening, or dies.
pub(super) fn detach(cli: &Cli, path: &Path, home: &Path, args: &Args) -> Outcome {
    use std::os::unix::process::CommandExt;
    const STARTUP: Duration = Duration::from_secs(60);
    let project = crate::state::project_of(path);
    let usage = |what: &str, e: &dyn std::fmt::Display| Failure::Usage(format!("{what}: {e}"));
    // Said before anything starts: a second run would only print its forwards failing to
    // bind the ports the first one holds.
    State::open(home)
        .and_then(|mut state| state.refuse_if_running(&project))
        .map_err(|e| Failure::Failed(e.at(&State::file_in(home)).to_string()))?;
    let (log, file) = crate::state::open_log(home, &project)
        .map_err(|e| usage("cannot create the log file", &e))?;
    let exe =
        std::env::current_exe().map_err(|e| usage("cannot find the kftray executable", &e))?;
    let to_child = serde_json::to_string(&Args {
        detach: false,
        ..args.clone()
    })
    .map_err(|e| usage("cannot hand the arguments to the background run", &e))?;
    let stderr = file
        .try_clone()
        .map_err(|e| usage("cannot share the log file", &e))?;
    let mut command = std::process::Command::new(exe);
    command.arg("-f").arg(path).arg("--color").arg("never");
    if cli.verbose > 0 {
        command.arg(format!("-{}", "v".repeat(usize::from(cli.verbose))));
    }
    command
        .args(["up", FROM_PARENT])
        .env(ARGS_ENV, to_child)
        .stdin(std::process::Stdio::null())
        .stdout(file)
        .stderr(stderr)
        .process_group(0);
    let mut child = command
        .spawn()
        .map_err(|e| usage("cannot start kftray in the background", &e))?;
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            eprint!("{tail}");
            return Err(Failure::Failed(format!(
                "kftray up exited before its forwards were up ({status})"
            )));
        }
        if let Some(outcome) = report_if_started(home, &project, child.id(), &log) {
            return outcome;
        }
        if started.elapsed() > STARTUP {
            return Err(Failure::Failed(format!(
                "the forwards were not up after {}s; see {}",
                STARTUP.as_secs(),
                log.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Once the detached run has recorded its start: prints its forwards, and fails if some
/// could not start.
fn report_if_started(home: &Path, project: &str, pid: u32, log: &Path) -> Option<Outcome> {
    let state = State::open(home).ok()?;
    let run = state
        .live_runs(Some(project))
        .ok()?
        .into_iter()
        .find(|r| r.pid == pid)?;
    let events = state.events(run.id, 1000).ok()?;
    if !events.iter().any(|e| e.kind == EventKind::Started) {
        return None;
    }
    let forwards = state.forwards(run.id).ok()?;
    let source = state.source(run.id).ok()?;
    let rows: Vec<_> = forwards
        .iter()
        .map(|row| ForwardStatus::new(&run, row, &source))
        .collect();
    say(&table(&rows));
    let following = following(&source);
    if !following.is_empty() {
        say(&following);
    }
    let failed: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == EventKind::Failed)
        .map(|e| e.message.as_str())
        .collect();
    say(&format!(
        "kftray is running in the background (pid {pid}, log {}); stop it with `kftray down`\n",
        log.display()
    ));
    if failed.is_empty() {
        Some(Ok(()))
    } else {
        for why in failed {
            eprintln!("error: {why}");
        }
        Some(Err(Failure::Said(Code::Failed)))
    }
}
