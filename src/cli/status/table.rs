//! What `kftray status` prints: a table for people, JSON with a fixed shape for scripts.
//!
//! The JSON is a flat array of forwards (no envelope), one object per forward of every live
//! run, so `jq '.[] | select(.state != "ready")'` works without knowing any nesting. Its
//! fields are documented in the README and only ever added to.

use crate::state::{ForwardRow, ForwardState, Run, SourceRow, now_ms};
use serde::Serialize;
use std::fmt::Write as _;

/// One forward as `status --output json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ForwardStatus {
    pub project: String,
    pub pid: u32,
    pub source: String,
    pub alias: String,
    pub local_address: String,
    pub target: String,
    pub pod: Option<String>,
    pub state: ForwardState,
    pub connections: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
    /// When the forward entered its current state, in milliseconds since the Unix epoch.
    pub since_ms: i64,
    pub last_error: Option<String>,
    /// How the run follows its configuration (the same for every forward of a run).
    #[serde(flatten)]
    pub following: SourceRow,
}

impl ForwardStatus {
    pub(crate) fn new(run: &Run, row: &ForwardRow, following: &SourceRow) -> ForwardStatus {
        ForwardStatus::of(&run.project, run.pid, &run.source, row, following)
    }

    /// A forward of the run of `project` by process `pid`, reading `source`.
    pub(crate) fn of(
        project: &str,
        pid: u32,
        source: &str,
        row: &ForwardRow,
        following: &SourceRow,
    ) -> ForwardStatus {
        ForwardStatus {
            project: project.to_string(),
            pid,
            source: source.to_string(),
            alias: row.name.clone(),
            local_address: row.local_address.clone(),
            target: row.target.clone(),
            pod: row.pod.clone(),
            state: row.state,
            connections: row.connections,
            bytes_in: row.bytes_in,
            bytes_out: row.bytes_out,
            since_ms: row.since_ms,
            last_error: row.last_error.clone(),
            following: following.clone(),
        }
    }
}

/// What the table shows below a run's forwards: where its configuration comes from and what
/// went wrong following it. Empty for a local file that reloads fine.
pub(crate) fn following(source: &SourceRow) -> String {
    let now = now_ms();
    let ago = |at: Option<i64>| {
        at.map(|at| format!(" {} ago", age(now - at)))
            .unwrap_or_default()
    };
    let mut out = String::new();
    if let Some(repo) = &source.git_repo {
        let _ = write!(
            out,
            "git: {repo} {} {}",
            source.git_ref.as_deref().unwrap_or("HEAD"),
            source.git_path.as_deref().unwrap_or("kftray.toml")
        );
        if let Some(commit) = &source.git_commit {
            let _ = write!(out, " at {}", short(commit));
        }
        if source.git_synced_at_ms.is_some() {
            let _ = write!(out, ", fetched{}", ago(source.git_synced_at_ms));
        }
        out.push('\n');
    }
    if let Some(error) = &source.git_sync_error {
        let _ = writeln!(
            out,
            "sync error{}: {error} (running the last good configuration)",
            ago(source.git_sync_error_at_ms)
        );
    }
    if let (Some(commit), Some(error)) = (&source.git_rejected_commit, &source.git_rejected_error) {
        let _ = writeln!(
            out,
            "commit {} not applied:\n{}",
            short(commit),
            indent(error)
        );
    }
    if let Some(error) = &source.reload_error {
        // A rejected commit's diagnostic is the same text: shown once.
        if source.git_rejected_error.as_ref() != Some(error) {
            let _ = writeln!(
                out,
                "reload error{} (still running the previous configuration):\n{}",
                ago(source.reload_error_at_ms),
                indent(error)
            );
        }
    }
    out
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

fn indent(text: &str) -> String {
    text.trim_end()
        .lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("  {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The human table: aligned columns, sizes in binary units, ages relative to now.
pub(crate) fn table(forwards: &[ForwardStatus]) -> String {
    let header = [
        "ALIAS", "LOCAL", "TARGET", "POD", "STATE", "CONNS", "IN", "OUT", "SINCE", "ERROR",
    ];
    let now = now_ms();
    let rows: Vec<[String; 10]> = forwards
        .iter()
        .map(|f| {
            [
                f.alias.clone(),
                f.local_address.clone(),
                f.target.clone(),
                f.pod.clone().unwrap_or_else(|| "-".into()),
                f.state.to_string(),
                f.connections.to_string(),
                bytes(f.bytes_in),
                bytes(f.bytes_out),
                age(now - f.since_ms),
                f.last_error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<width$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    out
}

/// A counter of the state database (never negative) as a size: "1.5 KiB".
fn bytes(n: i64) -> String {
    crate::config::format_size(u64::try_from(n).unwrap_or(0))
}

/// A duration in milliseconds as the largest two units: "45s", "3m12s", "2h05m", "3d4h".
pub(crate) fn age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forward(alias: &str, error: Option<&str>) -> ForwardStatus {
        ForwardStatus {
            project: "/p".into(),
            pid: 7,
            source: "/p/kftray.toml".into(),
            alias: alias.into(),
            local_address: "127.0.0.1:8080".into(),
            target: "svc/web:http".into(),
            pod: None,
            state: ForwardState::Waiting,
            connections: 0,
            bytes_in: 1536,
            bytes_out: 3 << 30,
            since_ms: now_ms() - 75_000,
            last_error: error.map(str::to_string),
            following: SourceRow::default(),
        }
    }

    #[test]
    fn sizes_and_ages_read_naturally() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(age(999), "0s");
        assert_eq!(age(192_000), "3m12s");
        assert_eq!(age(7_500_000), "2h05m");
        assert_eq!(age(3 * 86_400_000 + 4 * 3_600_000), "3d4h");
    }

    #[test]
    fn table_aligns_columns_and_trims_line_ends() {
        let text = table(&[
            forward("web", None),
            forward("database", Some("no Ready pod")),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ALIAS     LOCAL"), "{text}");
        assert!(lines[1].starts_with("web       127.0.0.1:8080  svc/web:http  -    waiting  0      1.5 KiB  3.0 GiB  1m15s"), "{text}");
        assert!(lines[2].ends_with("no Ready pod"), "{text}");
        assert!(text.lines().all(|l| l == l.trim_end()));
    }

    #[test]
    fn the_table_footer_says_where_the_config_comes_from_and_what_failed() {
        assert_eq!(following(&SourceRow::default()), "");
        let source = SourceRow {
            git_repo: Some("https://git.example/team.git".into()),
            git_ref: Some("main".into()),
            git_path: Some("dev/kftray.toml".into()),
            git_commit: Some("0123456789abcdef0123".into()),
            git_synced_at_ms: Some(now_ms() - 3_000),
            git_sync_error: Some("cannot reach git.example".into()),
            git_sync_error_at_ms: Some(now_ms() - 1_000),
            git_rejected_commit: Some("fedcba9876543210".into()),
            git_rejected_error: Some("kftray::syntax\n\n  x TOML syntax".into()),
            reload_error: Some("kftray::syntax\n\n  x TOML syntax".into()),
            ..SourceRow::default()
        };
        let text = following(&source);
        assert_eq!(
            text,
            "git: https://git.example/team.git main dev/kftray.toml at 0123456789ab, fetched 3s ago\n\
             sync error 1s ago: cannot reach git.example (running the last good configuration)\n\
             commit fedcba987654 not applied:\n  kftray::syntax\n\n    x TOML syntax\n"
        );
    }

    #[test]
    fn json_is_a_flat_array_with_stable_field_names() {
        let json = serde_json::to_value([forward("web", None)]).unwrap();
        let mut keys: Vec<&str> = json[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "alias",
                "bytes_in",
                "bytes_out",
                "connections",
                "git_commit",
                "git_path",
                "git_ref",
                "git_rejected_commit",
                "git_rejected_error",
                "git_repo",
                "git_sync_error",
                "git_sync_error_at_ms",
                "git_synced_at_ms",
                "last_error",
                "local_address",
                "pid",
                "pod",
                "project",
                "reload_error",
                "reload_error_at_ms",
                "reloaded_at_ms",
                "since_ms",
                "source",
                "state",
                "target"
            ]
        );
    }
}
