//! "A pod runs a local command": the relay pod runs the real relay-server binary this way,
//! with the env its manifest gives. Output is kept (bounded) for test failure messages, and
//! the child dies with the process that started it, so nothing outlives a killed test run.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// Lines of output kept per process.
const KEEP_LINES: usize = 500;

pub struct LocalProcess {
    child: Child,
    logs: Arc<Mutex<VecDeque<String>>>,
}

impl LocalProcess {
    pub fn spawn(
        program: &Path,
        args: &[String],
        env: &[(String, String)],
        name: &str,
    ) -> io::Result<LocalProcess> {
        let mut command = Command::new(program);
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
}
