//! Is the process that recorded a run still that process? A pid alone is not enough: after a
//! crash the number can be reused by anything, so Linux and Windows runs also record the
//! process's start time, which a reused pid does not share.

/// A process as recorded in state: its pid and, where the OS tells, a start-time marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessId {
    pub pid: u32,
    pub start: Option<String>,
}

impl ProcessId {
    pub fn current() -> ProcessId {
        let pid = std::process::id();
        ProcessId {
            pid,
            start: start_marker(pid),
        }
    }

    pub fn is_alive(&self) -> bool {
        match observe(self.pid) {
            Observed::Running { start } => match &self.start {
                Some(recorded) => &start == recorded,
                None => true,
            },
            // A zombie has exited: only its parent has not collected its status yet (or never
            // will, under a pid 1 that does not reap).
            Observed::Exited => false,
            Observed::Unknown => exists(self.pid),
        }
    }
}

/// What the OS says of a pid.
enum Observed {
    /// Running (or stopped), with its start time in clock ticks since boot.
    Running { start: String },
    /// Gone, or a zombie.
    Exited,
    /// No /proc to ask.
    Unknown,
}

/// From /proc/PID/stat: the state (field 3) and the start time (field 22). The command name
/// (field 2) may hold spaces and parentheses, so fields are counted after its last ')'.
#[cfg(target_os = "linux")]
fn observe(pid: u32) -> Observed {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return if std::path::Path::new("/proc/self/stat").exists() {
            Observed::Exited
        } else {
            Observed::Unknown
        };
    };
    let Some(after_name) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return Observed::Unknown;
    };
    let mut fields = after_name.split_whitespace();
    match (fields.next(), fields.nth(18)) {
        (Some("Z" | "X"), _) => Observed::Exited,
        (Some(_), Some(start)) => Observed::Running {
            start: start.to_owned(),
        },
        _ => Observed::Unknown,
    }
}

/// From the process's handle: whether it has exited, and its creation time.
#[cfg(windows)]
fn observe(pid: u32) -> Observed {
    windows::observe(pid)
}

#[cfg(not(any(target_os = "linux", windows)))]
fn observe(_pid: u32) -> Observed {
    Observed::Unknown
}

fn start_marker(pid: u32) -> Option<String> {
    match observe(pid) {
        Observed::Running { start } => Some(start),
        Observed::Exited | Observed::Unknown => None,
    }
}

#[cfg(unix)]
fn exists(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // Signal 0 checks for existence; EPERM means it exists but belongs to someone else.
    // SAFETY: kill with signal 0 sends nothing and has no memory effects.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Reached only when the process could not be opened for a reason other than its absence.
#[cfg(windows)]
fn exists(_pid: u32) -> bool {
    true
}

/// Ends the process at once. Windows has no signal asking a console program without a console
/// to stop, so `kftray down` ends a background run this way; what it leaves (its relay pods,
/// its record) the next run and the next `status` clean up.
#[cfg(windows)]
pub(crate) fn end_now(pid: u32) -> std::io::Result<()> {
    windows::end_now(pid)
}

#[cfg(windows)]
mod windows {
    use super::Observed;
    use windows_sys::Win32::Foundation::{
        CloseHandle, ERROR_ACCESS_DENIED, FILETIME, GetLastError, HANDLE, STILL_ACTIVE,
    };
    use windows_sys::Win32::System::Threading::{
        GetExitCodeProcess, GetProcessTimes, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
        PROCESS_TERMINATE, TerminateProcess,
    };

    /// A process handle, closed when dropped.
    struct Process(HANDLE);

    impl Process {
        fn open(pid: u32, access: u32) -> std::io::Result<Process> {
            // SAFETY: OpenProcess takes plain values and returns a handle or null.
            let handle = unsafe { OpenProcess(access, 0, pid) };
            if handle.is_null() {
                return Err(std::io::Error::last_os_error());
            }
            Ok(Process(handle))
        }
    }

    impl Drop for Process {
        fn drop(&mut self) {
            // SAFETY: the handle came from OpenProcess and is closed once.
            unsafe { CloseHandle(self.0) };
        }
    }

    pub(super) fn observe(pid: u32) -> Observed {
        let process = match Process::open(pid, PROCESS_QUERY_LIMITED_INFORMATION) {
            Ok(process) => process,
            // Another user's process: it exists, and nothing more is known.
            // SAFETY: GetLastError reads this thread's last error.
            Err(_) if unsafe { GetLastError() } == ERROR_ACCESS_DENIED => {
                return Observed::Unknown;
            }
            Err(_) => return Observed::Exited,
        };
        let mut code = 0u32;
        // SAFETY: the handle is open and `code` is valid for writing.
        if unsafe { GetExitCodeProcess(process.0, &mut code) } == 0 {
            return Observed::Unknown;
        }
        if code != STILL_ACTIVE as u32 {
            return Observed::Exited;
        }
        let zero = FILETIME {
            dwLowDateTime: 0,
            dwHighDateTime: 0,
        };
        let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
        // SAFETY: the handle is open and every FILETIME is valid for writing.
        let ok = unsafe {
            GetProcessTimes(process.0, &mut created, &mut exited, &mut kernel, &mut user)
        };
        if ok == 0 {
            return Observed::Unknown;
        }
        let start = (u64::from(created.dwHighDateTime) << 32) | u64::from(created.dwLowDateTime);
        Observed::Running {
            start: start.to_string(),
        }
    }

    pub(super) fn end_now(pid: u32) -> std::io::Result<()> {
        let process = Process::open(pid, PROCESS_TERMINATE)?;
        // SAFETY: the handle is open with the right to terminate.
        if unsafe { TerminateProcess(process.0, 1) } == 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_changed_start_is_not() {
        let me = ProcessId::current();
        assert!(me.is_alive());
        if me.start.is_some() {
            let reused = ProcessId {
                pid: me.pid,
                start: Some("0".into()),
            };
            assert!(!reused.is_alive());
        }
    }

    #[test]
    fn an_exited_child_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let id = ProcessId {
            pid: child.id(),
            start: start_marker(child.id()),
        };
        child.wait().unwrap();
        assert!(!id.is_alive());
    }

    #[test]
    fn a_killed_child_not_yet_reaped_is_dead() {
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let id = ProcessId {
            pid: child.id(),
            start: start_marker(child.id()),
        };
        assert!(id.is_alive());
        child.kill().unwrap();
        // Until `wait`, the child is a zombie: its pid and /proc entry remain.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while id.is_alive() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!id.is_alive(), "a zombie counts as alive");
        assert!(std::path::Path::new(&format!("/proc/{}", child.id())).exists());
        child.wait().unwrap();
    }
}
