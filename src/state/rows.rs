//! The rows of the state database, as the rest of kftray reads and writes them.

use super::RunId;
use crate::config;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::Serialize;
use std::path::Path;

/// One `kftray up` process, live or ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    pub id: RunId,
    pub project: String,
    pub pid: u32,
    pub source: String,
    pub started_at_ms: i64,
    pub stopped_at_ms: Option<i64>,
    pub exit_reason: Option<String>,
}

/// The project a config belongs to, as runs record it (see [`config::project_dir`]).
pub fn project_of(config: &Path) -> String {
    config::project_dir(config).display().to_string()
}

/// A live run's selection as changed from other terminals: forwards `kftray up NAMES`
/// added (names or aliases, as given), and those `kftray down NAMES` holds down (forward
/// names, as `status` shows them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Overrides {
    pub added: Vec<String>,
    pub held: Vec<String>,
}

/// What `status` shows of one forward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForwardRow {
    pub name: String,
    pub local_address: String,
    pub target: String,
    pub state: ForwardState,
    pub pod: Option<String>,
    pub connections: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub since_ms: i64,
    pub last_error: Option<String>,
}

/// How a run follows its configuration: the git source and its last commit, the last errors.
/// Errors are cleared by the next success; `status` shows what is wrong now. Diagnostics are
/// stored rendered, without colour. A repository URL is stored without its userinfo.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SourceRow {
    pub git_repo: Option<String>,
    pub git_ref: Option<String>,
    pub git_path: Option<String>,
    /// The commit whose file runs.
    pub git_commit: Option<String>,
    pub git_synced_at_ms: Option<i64>,
    pub git_sync_error: Option<String>,
    pub git_sync_error_at_ms: Option<i64>,
    /// A newer commit that was fetched but not applied, and why.
    pub git_rejected_commit: Option<String>,
    pub git_rejected_error: Option<String>,
    pub reloaded_at_ms: Option<i64>,
    pub reload_error: Option<String>,
    pub reload_error_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub at_ms: i64,
    pub forward: Option<String>,
    pub kind: EventKind,
    pub message: String,
}

/// Where a forward is: what `status` shows in its STATE column and JSON `state` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardState {
    /// Listening, still looking for its cluster, target or pod.
    Waiting,
    /// Listening, with a pod (or relay) to carry its connections.
    Ready,
    /// Listening, with a pod chosen, while its dead session is redialled.
    Reconnecting,
    /// Not serving: it could not start, or its target cannot be reached.
    Failed,
    /// Its run ended without saying so (the process died).
    Stopped,
}

/// What an event of a run's log says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// The run applied its first configuration.
    Started,
    /// A change of the configuration was applied.
    Reloaded,
    /// A change of the configuration was not applied (invalid, or it selects nothing).
    Rejected,
    /// The configuration file went away; the forwards keep running.
    Missing,
    /// Fetching the repository failed.
    SyncFailed,
    /// A forward could not start.
    Failed,
    /// A forward that could not start did, on a later try.
    Recovered,
    /// A port of a `ports = "all"` forward is left out: another forward listens there.
    Skipped,
    /// A dead run was cleaned up by another process.
    Reaped,
    /// Events that could not be kept while the database could not be written.
    Lost,
}

/// A name the database holds that this kftray does not know (a newer one wrote it).
#[derive(Debug, thiserror::Error)]
#[error("unknown {what} {name:?} in the state database (written by a newer kftray?)")]
pub struct UnknownName {
    what: &'static str,
    name: String,
}

/// The names the database stores, both ways.
macro_rules! stored_names {
    ($type:ident, $what:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $type {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($type::$variant => $name),+
                }
            }
        }

        impl std::str::FromStr for $type {
            type Err = UnknownName;

            fn from_str(name: &str) -> Result<$type, UnknownName> {
                match name {
                    $($name => Ok($type::$variant),)+
                    _ => Err(UnknownName { what: $what, name: name.to_owned() }),
                }
            }
        }

        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ToSql for $type {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $type {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<$type> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e: UnknownName| FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

stored_names!(ForwardState, "forward state", {
    Waiting => "waiting",
    Ready => "ready",
    Reconnecting => "reconnecting",
    Failed => "failed",
    Stopped => "stopped",
});

stored_names!(EventKind, "event kind", {
    Started => "started",
    Reloaded => "reloaded",
    Rejected => "rejected",
    Missing => "missing",
    SyncFailed => "sync-failed",
    Failed => "failed",
    Recovered => "recovered",
    Skipped => "skipped",
    Reaped => "reaped",
    Lost => "lost",
});
