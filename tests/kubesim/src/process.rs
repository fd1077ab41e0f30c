//! "A pod runs a local command": the relay pod runs the real relay-server binary this way,
//! with the env its manifest gives. Output is kept (bounded) for test failure messages, and
//! the child dies with the process that started it, so nothing outlives a killed test run.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Lines of output kept per process.
const KEEP_LINES: usize = 500;

pub struct LocalProcess {
    child: Child,
    logs: Arc<Mutex<VecDeque<String>>>,
}

/// The user and group a container asks to run as (`securityContext.runAsUser`, `runAsGroup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

impl LocalProcess {
    /// Starts `program` as the pod's container. Run as root, as a kubelet is, a container that
    /// asks for a user of its own gets it; otherwise it runs as whoever runs kubesim (a
    /// rootless runtime cannot switch users).
    pub fn spawn(
        program: &Path,
        args: &[String],
        env: &[(String, String)],
        name: &str,
        user: Option<RunAs>,
    ) -> io::Result<LocalProcess> {
        let user = user.filter(|_| running_as_root());
        // The program, opened here: the user may not be able to reach its folder (a build
        // under /root), and runs it through the descriptor instead, as a runtime runs an
        // image's file whatever path it came from.
        let opened = user.map(|_| std::fs::File::open(program)).transpose()?;
        let mut command = match &opened {
            Some(file) => {
                use std::os::fd::AsRawFd;
                use std::os::unix::process::CommandExt;
                let fd = file.as_raw_fd();
                let mut command = Command::new(format!("/proc/self/fd/{fd}"));
                command.arg0(program);
                // SAFETY: fcntl is async-signal-safe and touches no memory of the parent.
                unsafe {
                    command.pre_exec(move || {
                        // Kept open across exec, which needs it to find the program.
                        if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                            return Err(io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
                command
            }
            None => Command::new(program),
        };
        if let Some(RunAs { uid, gid }) = user {
            use std::os::unix::process::CommandExt;
            command.uid(uid).gid(gid);
        }
        command
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
            unsafe {
                command.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command.spawn()?;
        let logs = Arc::new(Mutex::new(VecDeque::new()));
        for (stream, label) in [
            (
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn io::Read + Send>),
                "stdout",
            ),
            (
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn io::Read + Send>),
                "stderr",
            ),
        ] {
            let Some(stream) = stream else { continue };
            let (logs, prefix) = (logs.clone(), format!("{name} {label}: "));
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut logs = logs.lock().unwrap_or_else(|e| e.into_inner());
                    if logs.len() == KEEP_LINES {
                        logs.pop_front();
                    }
                    logs.push_back(format!("{prefix}{line}"));
                }
            });
        }
        Ok(LocalProcess { child, logs })
    }

    /// Sends a signal to a child that has not exited yet.
    pub fn signal(&mut self, signal: i32) {
        if let Ok(pid) = i32::try_from(self.child.id())
            && matches!(self.child.try_wait(), Ok(None))
        {
            // SAFETY: kill(2) on our own child, which is not reaped yet.
            unsafe { libc::kill(pid, signal) };
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited after a short grace; always reaped.
    pub fn kill(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id())
            && matches!(self.child.try_wait(), Ok(None))
        {
            // SAFETY: kill(2) on our own child, which is not reaped yet.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            for _ in 0..50 {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The exit code once it has exited (128 + the signal for a killed process).
    pub fn exit_code(&mut self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        let status = self.child.try_wait().ok()??;
        Some(
            status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        )
    }

    /// Its output so far (the last lines), for failure messages.
    pub fn logs(&self) -> Vec<String> {
        let logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        logs.iter().cloned().collect()
    }
}

impl Drop for LocalProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_kept_and_kill_reaps() {
        let mut p = LocalProcess::spawn(
            Path::new("sh"),
            &["-c".into(), "echo hello $WHO; sleep 30".into()],
            &[("WHO".into(), "pod".into())],
            "p",
            None,
        )
        .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while p.logs().is_empty() {
            assert!(std::time::Instant::now() < deadline, "no output");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(p.logs(), ["p stdout: hello pod"]);
        assert!(p.is_running());
        p.kill();
        assert!(!p.is_running());
    }

    #[test]
    fn a_container_runs_as_the_user_it_asks_for() {
        // A program in a folder only root may enter, as a build under /root is.
        let private = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            private.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let sh = private.path().join("sh");
        std::fs::copy("/bin/sh", &sh).unwrap();
        let mut p = LocalProcess::spawn(
            &sh,
            &["-c".into(), "echo $(id -u) $(id -g); sleep 30".into()],
            &[],
            "p",
            Some(RunAs {
                uid: 65534,
                gid: 65533,
            }),
        )
        .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while p.logs().is_empty() {
            assert!(std::time::Instant::now() < deadline, "no output");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let said = p.logs()[0].clone();
        p.kill();
        let me = std::process::Command::new("id").arg("-u").output().unwrap();
        let me = String::from_utf8(me.stdout).unwrap();
        if running_as_root() {
            assert_eq!(said, "p stdout: 65534 65533");
        } else {
            // A rootless runtime runs every container as itself.
            assert!(
                said.starts_with(&format!("p stdout: {} ", me.trim())),
                "{said}"
            );
        }
    }
}
