//! `kftray up --detach`: the same run in a background process of its own, and the wait
//! until it reports its forwards.

use super::super::Cli;
use super::super::failure::{Code, Failure, Outcome};
use super::super::output::say;
use super::super::status::{Format, ForwardStatus, following, table};
use super::Args;
use crate::config::format_duration;
use crate::state::{EventKind, ForwardState, Run, State};
use std::path::{Path, PathBuf};
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

/// `up --detach` (and `--wait`): starts the background run, waits as asked, and prints its
/// forwards.
pub(super) fn detach(cli: &Cli, path: &Path, home: &Path, args: &Args) -> Outcome {
    let Background {
        run,
        log,
        mut child,
    } = start(cli, path, home, args)?;
    let mut seen = forwards_of(home, &run);
    if args.wait {
        let patience = args.timeout.unwrap_or(WAIT);
        match wait_ready(home, &run, patience, &|_| true, &mut || {
            exited(&mut child, &log)
        }) {
            Ok(ready) => seen = ready,
            Err(Waited::Ended(failure)) => return Err(failure),
            Err(Waited::NotReady(seen)) => {
                print(&seen, &run, args.output, &log);
                say_not_ready(&seen, patience);
                return Err(Failure::Said(Code::Failed));
            }
        }
    }
    print(&seen, &run, args.output, &log);
    for why in said(home, &run, EventKind::Skipped) {
        eprintln!("warning: {why}");
    }
    let failed = said(home, &run, EventKind::Failed);
    if failed.is_empty() {
        Ok(())
    } else {
        for why in failed {
            eprintln!("error: {why}");
        }
        Err(Failure::Said(Code::Failed))
    }
}

/// A run started in the background, once it has recorded its start.
pub(in crate::cli) struct Background {
    pub run: Run,
    pub log: PathBuf,
    pub child: std::process::Child,
}

/// Starts `kftray up` again as a background process of its own (its own process group, so
/// the terminal's Ctrl-C does not reach it; output to a log file), and returns once that
/// run has recorded its start (its forwards listening), or fails if it dies first.
pub(in crate::cli) fn start(
    cli: &Cli,
    path: &Path,
    home: &Path,
    args: &Args,
) -> Result<Background, Failure> {
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
    // The background run serves in the foreground of its own process.
    let to_child = serde_json::to_string(&Args {
        detach: false,
        wait: false,
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
        .stderr(stderr);
    own_group(&mut command);
    let mut child = command
        .spawn()
        .map_err(|e| usage("cannot start kftray in the background", &e))?;
    let started = Instant::now();
    loop {
        if let Some(failure) = exited(&mut child, &log) {
            return Err(failure);
        }
        if let Some(run) = started_run(home, &project, child.id()) {
            return Ok(Background { run, log, child });
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

/// Whether the background run has exited (its log is shown, it says how).
fn exited(child: &mut std::process::Child, log: &Path) -> Option<Failure> {
    let status = child.try_wait().ok()??;
    eprint!("{}", std::fs::read_to_string(log).unwrap_or_default());
    Some(Failure::Failed(format!(
        "kftray up exited before its forwards were up ({status})"
    )))
}

/// Why waiting for the forwards to be ready ended without them.
pub(in crate::cli) enum Waited {
    /// The run ended (`ended` said so).
    Ended(Failure),
    /// Some were not ready in time: every forward as last seen.
    NotReady(Vec<ForwardStatus>),
}

/// Polls the run's forwards until every one is ready, `ended` says the run is gone, or
/// `patience` passes.
pub(in crate::cli) fn wait_ready(
    home: &Path,
    run: &Run,
    patience: Duration,
    wanted: &dyn Fn(&ForwardStatus) -> bool,
    ended: &mut dyn FnMut() -> Option<Failure>,
) -> Result<Vec<ForwardStatus>, Waited> {
    let ready = |seen: &[ForwardStatus]| seen.iter().all(|f| f.state == ForwardState::Ready);
    wait_for(home, run, patience, wanted, &ready, ended)
}

/// Waits until the forwards `wanted` picks are listed (each listed one listens) and `done`
/// holds of them, for `patience` at most.
pub(super) fn wait_for(
    home: &Path,
    run: &Run,
    patience: Duration,
    wanted: &dyn Fn(&ForwardStatus) -> bool,
    done: &dyn Fn(&[ForwardStatus]) -> bool,
    ended: &mut dyn FnMut() -> Option<Failure>,
) -> Result<Vec<ForwardStatus>, Waited> {
    let waiting = Instant::now();
    loop {
        let mut seen = forwards_of(home, run);
        seen.retain(|f| wanted(f));
        if !seen.is_empty() && done(&seen) {
            return Ok(seen);
        }
        if let Some(failure) = ended() {
            return Err(Waited::Ended(failure));
        }
        if waiting.elapsed() > patience {
            return Err(Waited::NotReady(seen));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One line on stderr for each forward that is not ready, with its state and why.
pub(in crate::cli) fn say_not_ready(forwards: &[ForwardStatus], patience: Duration) {
    for forward in forwards.iter().filter(|f| f.state != ForwardState::Ready) {
        eprintln!(
            "error: {} is not ready after {}: {}{}",
            forward.alias,
            format_duration(patience),
            forward.state,
            forward
                .last_error
                .as_deref()
                .map(|why| format!(": {why}"))
                .unwrap_or_default()
        );
    }
}

/// How long `--wait` waits unless told.
pub(in crate::cli) const WAIT: Duration = Duration::from_secs(60);

/// The detached run, once it has recorded its start.
fn started_run(home: &Path, project: &str, pid: u32) -> Option<Run> {
    let state = State::open(home).ok()?;
    let run = state
        .live_runs(Some(project))
        .ok()?
        .into_iter()
        .find(|r| r.pid == pid)?;
    let events = state.events(run.id, 1000).ok()?;
    events
        .iter()
        .any(|e| e.kind == EventKind::Started)
        .then_some(run)
}

/// The run's forwards as `status` shows them (none while the database cannot be read).
pub(in crate::cli) fn forwards_of(home: &Path, run: &Run) -> Vec<ForwardStatus> {
    let read = State::open(home).and_then(|state| {
        let source = state.source(run.id)?;
        Ok(state
            .forwards(run.id)?
            .iter()
            .map(|row| ForwardStatus::new(run, row, &source))
            .collect())
    });
    read.unwrap_or_default()
}

/// What the run has said of this kind: why forwards could not start (a port taken, a bad
/// address), ports of `ports = "all"` left out.
fn said(home: &Path, run: &Run, kind: EventKind) -> Vec<String> {
    let events = State::open(home).and_then(|state| state.events(run.id, 1000));
    events
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.message)
        .collect()
}

/// The forwards (a table with where the configuration comes from, or JSON), then where the
/// run is. With JSON, stdout is the JSON alone.
pub(super) fn print(forwards: &[ForwardStatus], run: &Run, format: Format, log: &Path) {
    let running = format!(
        "kftray is running in the background (pid {}, log {}); stop it with `kftray down`\n",
        run.pid,
        log.display()
    );
    match format {
        Format::Json => {
            let json = serde_json::to_string_pretty(forwards).unwrap_or_default();
            say(&format!("{json}\n"));
            eprint!("{running}");
        }
        Format::Table => {
            say(&table(forwards));
            if let Some(first) = forwards.first() {
                let following = following(&first.following);
                if !following.is_empty() {
                    say(&following);
                }
            }
            say(&running);
        }
    }
}

/// Out of the terminal's reach: a process group of its own (a new one, without a console,
/// on Windows), so that Ctrl-C in the terminal that started it does not stop it.
fn own_group(command: &mut std::process::Command) {
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(command, 0);
    #[cfg(windows)]
    {
        const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
        const DETACHED_PROCESS: u32 = 0x0000_0008;
        std::os::windows::process::CommandExt::creation_flags(
            command,
            CREATE_NEW_PROCESS_GROUP | DETACHED_PROCESS,
        );
    }
}
