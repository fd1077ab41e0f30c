//! The command `kftray exec` runs: in the foreground, with the signals that stop a program
//! passed on to it, and its end reported as a shell reports it.

use super::failure::Failure;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::ErrorKind;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use tokio::signal::unix::{SignalKind, signal};

/// Runs `command` with `env` added to this environment until it ends; returns its exit code
/// (128 + N when signal N ended it; 127 when there is no such command, 126 when it cannot be
/// run, as a shell says).
pub(super) fn run(command: &[OsString], env: &BTreeMap<String, String>) -> Result<u8, Failure> {
    let Some((program, args)) = command.split_first() else {
        return Err(Failure::Usage("no command to run after `--`".into()));
    };
    let name = program.to_string_lossy();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Usage(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        let handler =
            |kind| signal(kind).map_err(|e| Failure::Usage(format!("cannot handle signals: {e}")));
        // Handled here, so that kftray outlives the command to stop what it started. Ctrl-C
        // on a terminal reaches the command by itself (the whole foreground group gets it);
        // a SIGTERM or SIGHUP sent to kftray alone is passed on.
        let (mut interrupt, mut terminate, mut hangup) = (
            handler(SignalKind::interrupt())?,
            handler(SignalKind::terminate())?,
            handler(SignalKind::hangup())?,
        );
        let spawned = tokio::process::Command::new(program)
            .args(args)
            .envs(env)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                eprintln!("error: {name}: command not found");
                return Ok(127);
            }
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                eprintln!("error: {name}: {e}");
                return Ok(126);
            }
            Err(e) => return Err(Failure::Failed(format!("cannot run {name}: {e}"))),
        };
        let pid = child.id().and_then(|p| i32::try_from(p).ok());
        let pass = |sig| {
            if let Some(pid) = pid {
                // SAFETY: kill(2) on the child this process started; it is reaped only
                // when this loop ends.
                unsafe { libc::kill(pid, sig) };
            }
        };
        loop {
            tokio::select! {
                status = child.wait() => {
                    let status = status
                        .map_err(|e| Failure::Failed(format!("waiting for {name}: {e}")))?;
                    return Ok(code_of(status));
                }
                _ = terminate.recv() => pass(libc::SIGTERM),
                _ = hangup.recv() => pass(libc::SIGHUP),
                _ = interrupt.recv() => {}
            }
        }
    })
}

fn code_of(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(255),
        (None, None) => 1,
    }
}
