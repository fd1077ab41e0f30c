//! The command `kftray exec` runs: in the foreground, with the signals that stop a program
//! passed on to it, and its end reported as a shell reports it.

use super::failure::Failure;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::ErrorKind;
use std::process::ExitStatus;

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
        let relay = Relay::watch()?;
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
        let status = relay
            .until_exit(&mut child)
            .await
            .map_err(|e| Failure::Failed(format!("waiting for {name}: {e}")))?;
        Ok(code_of(status))
    })
}

/// The signals kftray takes in the command's place, so that it outlives the command to stop
/// what it started. Ctrl-C on a terminal reaches the command by itself (the whole foreground
/// group gets it, or on Windows the whole console); a SIGTERM or SIGHUP sent to kftray alone
/// is passed on.
struct Relay {
    #[cfg(unix)]
    signals: [tokio::signal::unix::Signal; 3],
}

impl Relay {
    fn watch() -> Result<Relay, Failure> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let handler = |kind| {
                signal(kind).map_err(|e| Failure::Usage(format!("cannot handle signals: {e}")))
            };
            Ok(Relay {
                signals: [
                    handler(SignalKind::interrupt())?,
                    handler(SignalKind::terminate())?,
                    handler(SignalKind::hangup())?,
                ],
            })
        }
        #[cfg(not(unix))]
        Ok(Relay {})
    }

    #[cfg(unix)]
    async fn until_exit(self, child: &mut tokio::process::Child) -> std::io::Result<ExitStatus> {
        let [mut interrupt, mut terminate, mut hangup] = self.signals;
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
                status = child.wait() => return status,
                _ = terminate.recv() => pass(libc::SIGTERM),
                _ = hangup.recv() => pass(libc::SIGHUP),
                _ = interrupt.recv() => {}
            }
        }
    }

    #[cfg(not(unix))]
    async fn until_exit(self, child: &mut tokio::process::Child) -> std::io::Result<ExitStatus> {
        loop {
            tokio::select! {
                status = child.wait() => return status,
                // The console's Ctrl-C reached the command too; kftray waits for it.
                Ok(()) = tokio::signal::ctrl_c() => {}
            }
        }
    }
}

fn code_of(status: ExitStatus) -> u8 {
    #[cfg(unix)]
    let signal = std::os::unix::process::ExitStatusExt::signal(&status);
    #[cfg(not(unix))]
    let signal: Option<i32> = None;
    match (status.code(), signal) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(255),
        (None, None) => 1,
    }
}
