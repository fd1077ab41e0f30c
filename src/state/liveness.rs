//! Is the process that recorded a run still that process? A pid alone is not enough: after a
//! crash the number can be reused by anything, so Linux runs also record the process's start
//! time, which a reused pid does not share.

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
        match (start_marker(self.pid), &self.start) {
            (Some(now), Some(recorded)) => &now == recorded,
            (Some(_), None) => true,
            (None, _) => exists(self.pid),
        }
    }
}

/// Field 22 of /proc/PID/stat: the start time in clock ticks since boot. The command name
/// (field 2) may hold spaces and parentheses, so fields are counted after its last ')'.
#[cfg(target_os = "linux")]
fn start_marker(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name come field 3 (state) onwards; field 22 is the 20th of those.
    let start = after_name.split_whitespace().nth(19)?;
    // A zombie has exited even though its entry remains.
    let state = after_name.split_whitespace().next()?;
    (state != "Z").then(|| start.to_string())
}

#[cfg(not(target_os = "linux"))]
fn start_marker(_pid: u32) -> Option<String> {
    None
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

#[cfg(not(unix))]
fn exists(_pid: u32) -> bool {
    true
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
}
