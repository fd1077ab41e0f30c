//! Who a relay pod belongs to, written on it as labels and annotations, and which relay pods
//! found in a namespace are leftovers of an owner that is gone.

use crate::state::ProcessId;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use std::collections::BTreeMap;
use std::time::Duration;

pub(super) const NAME_LABEL: &str = "app.kubernetes.io/name";
pub(super) const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
const USER_LABEL: &str = "kftray.dev/owner-user";
const HOST_LABEL: &str = "kftray.dev/owner-host";
const PROJECT_LABEL: &str = "kftray.dev/project";
const HOST: &str = "kftray.dev/owner-hostname";
const PID: &str = "kftray.dev/owner-pid";
const PROCESS_START: &str = "kftray.dev/owner-process-start";
const PROJECT: &str = "kftray.dev/project-path";
/// When the owner last said it is alive (RFC 3339), refreshed every [`HEARTBEAT_EVERY`].
pub(super) const HEARTBEAT: &str = "kftray.dev/heartbeat";

/// How often a running kftray refreshes its relays' heartbeat annotation...
pub(super) const HEARTBEAT_EVERY: Duration = Duration::from_secs(30);
/// ...and how old it may be before the relay counts as abandoned.
pub(super) const STALE_AFTER: Duration = Duration::from_secs(150);

/// The label selector of every relay pod kftray creates.
pub const SELECTOR: &str =
    "app.kubernetes.io/name=kftray-relay,app.kubernetes.io/managed-by=kftray";

/// A `kftray up` process: the user and machine it runs as, its project and its process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub user: String,
    pub host: String,
    pub project: String,
    pub process: ProcessId,
}

impl Owner {
    /// This process, running `project`.
    pub fn current(project: &str) -> Owner {
        Owner {
            user: user_name(),
            host: host_name(),
            project: project.to_string(),
            process: ProcessId::current(),
        }
    }

    #[cfg(test)]
    pub fn for_tests(user: &str, host: &str, project: &str) -> Owner {
        Owner {
            user: user.into(),
            host: host.into(),
            project: project.into(),
            process: ProcessId {
                pid: 4242,
                start: Some("99".into()),
            },
        }
    }

    /// Labels (selectable, so `kubectl get pods -l kftray.dev/owner-user=ana` finds them).
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (NAME_LABEL.into(), "kftray-relay".into()),
            (MANAGED_BY_LABEL.into(), "kftray".into()),
            ("app.kubernetes.io/component".into(), "relay".into()),
            (USER_LABEL.into(), label_value(&self.user)),
            (HOST_LABEL.into(), label_value(&self.host)),
            (PROJECT_LABEL.into(), project_hash(&self.project)),
        ])
    }

    /// Annotations: what labels cannot hold exactly, and the first heartbeat.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        let mut annotations = BTreeMap::from([
            (HOST.into(), self.host.clone()),
            (PID.into(), self.process.pid.to_string()),
            (PROJECT.into(), self.project.clone()),
            (HEARTBEAT.into(), Timestamp::now().to_string()),
        ]);
        if let Some(start) = &self.process.start {
            annotations.insert(PROCESS_START.into(), start.clone());
        }
        annotations
    }
}

/// Why a relay pod found at start is a leftover to delete, or `None` to leave it alone.
/// `alive` says whether a process of this machine still runs.
pub fn leftover(
    pod: &Pod,
    me: &Owner,
    now: Timestamp,
    alive: impl Fn(&ProcessId) -> bool,
) -> Option<String> {
    let annotations = pod.metadata.annotations.clone().unwrap_or_default();
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if let Some(phase @ ("Succeeded" | "Failed")) = phase {
        return Some(format!("it has ended ({phase})"));
    }
    if annotations.get(HOST) == Some(&me.host)
        && let Some(pid) = annotations.get(PID).and_then(|p| p.parse().ok())
    {
        let owner = ProcessId {
            pid,
            start: annotations.get(PROCESS_START).cloned(),
        };
        if owner != me.process && !alive(&owner) {
            return Some(format!("its kftray (pid {pid} on this machine) is gone"));
        }
    }
    let heartbeat = annotations
        .get(HEARTBEAT)
        .and_then(|t| t.parse::<Timestamp>().ok())
        .or_else(|| pod.metadata.creation_timestamp.as_ref().map(|t| t.0));
    match heartbeat {
        Some(at) if now.duration_since(at).unsigned_abs() > STALE_AFTER && at < now => {
            Some(format!("its owner has not been heard from since {at}"))
        }
        _ => None,
    }
}

/// A label value: at most 63 of `[A-Za-z0-9._-]`, starting and ending alphanumeric.
fn label_value(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    let trimmed = cleaned.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if trimmed.is_empty() {
        "unknown".into()
    } else {
        trimmed.to_string()
    }
}

/// A short, stable name for a project path (FNV-1a), since paths do not fit in a label.
fn project_hash(path: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in path.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

fn user_name() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .or_else(account_name)
        .unwrap_or_else(user_id)
}

#[cfg(unix)]
fn user_id() -> String {
    // SAFETY: getuid cannot fail and touches no memory.
    format!("uid-{}", unsafe { libc::getuid() })
}

#[cfg(not(unix))]
fn user_id() -> String {
    "user".to_string()
}

/// Windows names its user in USERNAME, read above.
#[cfg(not(unix))]
fn account_name() -> Option<String> {
    None
}

/// The name of this process's user in the password database.
#[cfg(unix)]
fn account_name() -> Option<String> {
    // SAFETY: passwd is plain data, for which all zeroes (null pointers) is a valid value.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: every pointer is valid for the call; getpwuid_r writes into `entry` and `buf`
    // only, and `found` points at `entry` or is null.
    let rc = unsafe {
        libc::getpwuid_r(
            libc::getuid(),
            &mut entry,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() || entry.pw_name.is_null() {
        return None;
    }
    // SAFETY: on success pw_name is a NUL-terminated string inside `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(entry.pw_name) };
    Some(name.to_string_lossy().into_owned()).filter(|n| !n.is_empty())
}

#[cfg(not(unix))]
fn host_name() -> String {
    std::env::var("COMPUTERNAME").unwrap_or_else(|_| "localhost".to_string())
}

#[cfg(unix)]
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let name = if rc == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    if name.is_empty() {
        "unknown".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn relay(annotations: serde_json::Value, phase: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "kftray-relay-x", "annotations": annotations,
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"phase": phase}
        }))
        .unwrap()
    }

    fn me() -> Owner {
        Owner::for_tests("ana", "laptop", "/p")
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn labels_fit_kubernetes_rules() {
        assert_eq!(label_value("Ana Lopez@CORP"), "Ana-Lopez-CORP");
        assert_eq!(label_value("--"), "unknown");
        assert_eq!(label_value(&"x".repeat(80)).len(), 63);
        assert_eq!(project_hash("/p"), project_hash("/p"));
        assert_ne!(project_hash("/p"), project_hash("/q"));
        assert_eq!(project_hash("/p").len(), 16);
    }

    #[test]
    fn ended_silent_or_orphaned_relays_are_leftovers_and_live_ones_are_not() {
        let now = at("2026-01-01T01:00:00Z");
        let fresh = "2026-01-01T00:59:30Z";
        let never = |_: &ProcessId| false;
        let always = |_: &ProcessId| true;
        // Another machine's relay with a fresh heartbeat stays.
        let theirs = relay(
            json!({HOST: "other", PID: "1", HEARTBEAT: fresh}),
            "Running",
        );
        assert_eq!(leftover(&theirs, &me(), now, never), None);
        // The same one silent for long goes.
        let silent = relay(
            json!({HOST: "other", PID: "1", HEARTBEAT: "2026-01-01T00:40:00Z"}),
            "Running",
        );
        assert!(leftover(&silent, &me(), now, always).is_some());
        // This machine's, whose process is gone, goes at once.
        let orphan = relay(
            json!({HOST: "laptop", PID: "77", HEARTBEAT: fresh}),
            "Running",
        );
        assert!(
            leftover(&orphan, &me(), now, never)
                .unwrap()
                .contains("pid 77")
        );
        assert_eq!(leftover(&orphan, &me(), now, always), None);
        // A relay that exited goes, whoever owns it.
        let ended = relay(json!({HOST: "other", HEARTBEAT: fresh}), "Succeeded");
        assert!(leftover(&ended, &me(), now, always).is_some());
        // No heartbeat at all: its age decides.
        let bare = relay(json!({}), "Running");
        assert!(leftover(&bare, &me(), now, always).is_some());
        assert_eq!(
            leftover(&bare, &me(), at("2026-01-01T00:01:00Z"), always),
            None
        );
    }
}
