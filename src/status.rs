//! What `kftray status` prints: a table for people, JSON with a fixed shape for scripts.
//!
//! The JSON is a flat array of forwards (no envelope), one object per forward of every live
//! run, so `jq '.[] | select(.state != "listening")'` works without knowing any nesting. Its
//! fields are documented in the README and only ever added to.

use crate::state::{ForwardRow, Run, now_ms};
use serde::Serialize;
use std::fmt::Write as _;

/// One forward as `status --output json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForwardStatus {
    pub project: String,
    pub pid: u32,
    pub source: String,
    pub alias: String,
    pub local_address: String,
    pub target: String,
    pub pod: Option<String>,
    pub state: String,
    pub connections: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
    /// When the forward entered its current state, in milliseconds since the Unix epoch.
    pub since_ms: i64,
    pub last_error: Option<String>,
}

impl ForwardStatus {
    pub fn new(run: &Run, row: &ForwardRow) -> ForwardStatus {
        ForwardStatus::of(&run.project, run.pid, &run.source, row)
    }

    /// A forward of the run of `project` by process `pid`, reading `source`.
    pub fn of(project: &str, pid: u32, source: &str, row: &ForwardRow) -> ForwardStatus {
        ForwardStatus {
            project: project.to_string(),
            pid,
            source: source.to_string(),
            alias: row.name.clone(),
            local_address: row.local_address.clone(),
            target: row.target.clone(),
            pod: row.pod.clone(),
            state: row.state.clone(),
            connections: row.connections,
            bytes_in: row.bytes_in,
            bytes_out: row.bytes_out,
            since_ms: row.since_ms,
            last_error: row.last_error.clone(),
        }
    }
}

/// The human table: aligned columns, sizes in binary units, ages relative to now.
pub fn table(forwards: &[ForwardStatus]) -> String {
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
                f.state.clone(),
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

/// 1536 -> "1.5 KiB": exact below 1 KiB, one decimal above.
pub fn bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A duration in milliseconds as the largest two units: "45s", "3m12s", "2h05m", "3d4h".
pub fn age(ms: i64) -> String {
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
            state: "waiting".into(),
            connections: 0,
            bytes_in: 1536,
            bytes_out: 3 << 30,
            since_ms: now_ms() - 75_000,
            last_error: error.map(str::to_string),
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
                "last_error",
                "local_address",
                "pid",
                "pod",
                "project",
                "since_ms",
                "source",
                "state",
                "target"
            ]
        );
    }
}
