//! A control plane component as a child process: its output in a log file, killed with the
//! process (or thread) that started it, stopped with SIGTERM and then SIGKILL, and started
//! again with the same arguments when a test restarts it.

use std::fs::File;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Component {
    pub name: &'static str,
    /// A descriptor the child keeps open (the cluster's slot lock), so that the slot stays
    /// taken until every process that uses its addresses is gone.
    keep_fd: Option<RawFd>,
    program: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Component {
    pub fn start(
        name: &'static str,
        program: PathBuf,
        args: Vec<String>,
        log_dir: &Path,
        keep_fd: Option<RawFd>,
    ) -> anyhow::Result<Component> {
        let mut c = Component {
            name,
            keep_fd,
            program,
            args,
            log: log_dir.join(format!("{name}.log")),
            child: None,
        };
        c.spawn()?;
        Ok(c)
    }

    /// Stands for a component not started yet.
    pub fn placeholder() -> Component {
        Component {
            name: "none",
            keep_fd: None,
            program: PathBuf::new(),
            args: Vec::new(),
            log: PathBuf::new(),
            child: None,
        }
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = File::options().create(true).append(true).open(&self.log)?;
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        use std::os::unix::process::CommandExt;
        let keep_fd = self.keep_fd;
        // SAFETY: prctl and fcntl are async-signal-safe and touch no memory of the parent.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                if let Some(fd) = keep_fd
                    && libc::fcntl(fd, libc::F_SETFD, 0) == -1
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(|e| {
            anyhow::anyhow!(
                "cannot start {} ({}): {e}",
                self.name,
                self.program.display()
            )
        })?;
        self.child = Some(child);
        Ok(())
    }

    /// The end of its log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// An error if it has exited.
    pub fn check(&mut self) -> anyhow::Result<()> {
        if let Some(child) = &mut self.child
            && let Some(status) = child.try_wait()?
        {
            anyhow::bail!("{} exited ({status}):\n{}", self.name, self.log_tail());
        }
        Ok(())
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id())
            && matches!(child.try_wait(), Ok(None))
        {
            // SAFETY: kill(2) on our own child, not reaped yet.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = std::time::Instant::now() + grace;
            while std::time::Instant::now() < deadline {
                if !matches!(child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// As a crash: SIGKILL at once.
    pub fn kill(&mut self) {
        self.stop(Duration::ZERO);
    }

    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop(Duration::from_secs(10));
        self.spawn()
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}
