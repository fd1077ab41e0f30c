//! One `kftray up` run in the foreground: load, apply, report, and stop cleanly on a signal.

use super::{Applied, ForwardReport, Phase, RunSpec, Supervisor};
use crate::config::{self, Diagnostics, Effective};
use crate::forward::Tuning;
use crate::state::{ForwardRow, RunId, State, StateError, now_ms};
use crate::status::{ForwardStatus, table};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often counters reach the state database (and so `kftray status`).
const FLUSH_EVERY: Duration = Duration::from_secs(1);

pub struct UpOptions {
    pub config: PathBuf,
    /// Only these forwards (by alias, or `alias:PORT` for one entry of a `ports` list).
    pub names: Vec<String>,
    /// Only forwards with one of these tags.
    pub tags: Vec<String>,
    pub home: PathBuf,
    /// A terminal: one line per forward, redrawn in place every second, instead of a line
    /// per change.
    pub live: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error("{0}")]
    Config(Diagnostics),
    #[error("{0}")]
    Selection(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot watch for signals: {0}")]
    Signals(std::io::Error),
}

/// The project a config belongs to: the directory holding it, as an absolute path, so that
/// `status` and `down` find the run from any subdirectory or terminal.
pub fn project_of(config: &Path) -> String {
    let dir = config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::canonicalize(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string()
}

/// The forwards a run starts with, by name.
pub struct Selection {
    pub runnable: BTreeMap<String, RunSpec>,
}

/// The forwards to run, from the effective config and the user's selection.
pub fn desired(
    effective: &Effective,
    names: &[String],
    tags: &[String],
) -> Result<Selection, String> {
    let selected: Vec<&config::Forward> = effective
        .selected(tags)
        .filter(|f| names.is_empty() || names.iter().any(|n| *n == f.alias || *n == f.name))
        .collect();
    for name in names {
        if !effective
            .forwards
            .iter()
            .any(|f| *name == f.alias || *name == f.name)
        {
            let known: Vec<&str> = effective.forwards.iter().map(|f| f.name.as_str()).collect();
            return Err(format!(
                "no forward named {name:?} (the file has: {})",
                known.join(", ")
            ));
        }
    }
    if selected.is_empty() {
        return Err(if tags.is_empty() {
            "nothing to run: every selected forward is disabled".to_string()
        } else {
            format!("no enabled forward has the tag(s) {}", tags.join(", "))
        });
    }
    let runnable = selected
        .into_iter()
        .map(|f| (f.name.clone(), RunSpec::from_config(f, &effective.relay)))
        .collect();
    Ok(Selection { runnable })
}

/// Runs in the foreground until SIGINT or SIGTERM. `say` receives the live view's lines.
pub async fn run(options: UpOptions, say: &(dyn Fn(&str) + Sync)) -> Result<(), UpError> {
    let effective = config::load(&options.config).map_err(UpError::Config)?;
    let Selection { runnable: desired } =
        desired(&effective, &options.names, &options.tags).map_err(UpError::Selection)?;
    let project = project_of(&options.config);
    let mut state = State::open(&options.home)?;
    let run = state.begin_run(&project, &options.config.display().to_string())?;

    let mut supervisor = Supervisor::for_project(Tuning::default(), &project);
    let applied = supervisor.apply(&desired).await;
    announce(&applied, say);
    for (name, why) in &applied.failed {
        state.record_event(run, Some(name), "failed", why)?;
    }
    let mut view = View {
        live: options.live.then(Live::default),
        ..View::default()
    };
    view.update(&supervisor.report(), say);
    flush(
        &mut state,
        run,
        &supervisor.report(),
        &applied.failed,
        &mut view,
    )?;
    view.redraw(&project, &options.config, say);
    state.record_event(run, None, "started", &format!("{} forwards", desired.len()))?;

    let mut terminate = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut interrupt = signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    let reason = loop {
        tokio::select! {
            _ = interrupt.recv() => break "interrupted",
            _ = terminate.recv() => break "terminated",
            () = supervisor.changed() => view.update(&supervisor.report(), say),
            _ = tick.tick() => {}
        }
        flush(
            &mut state,
            run,
            &supervisor.report(),
            &applied.failed,
            &mut view,
        )?;
        view.redraw(&project, &options.config, say);
    };
    say(&format!("stopping ({reason})"));
    supervisor.shutdown().await;
    state.end_run(run, reason)?;
    Ok(())
}

fn signal(kind: tokio::signal::unix::SignalKind) -> Result<tokio::signal::unix::Signal, UpError> {
    tokio::signal::unix::signal(kind).map_err(UpError::Signals)
}

fn announce(applied: &Applied, say: &(dyn Fn(&str) + Sync)) {
    for (name, why) in &applied.failed {
        say(&format!("{name:<16} failed: {why}"));
    }
}

/// The phase each forward was last shown in, and since when; on a terminal, the table
/// last drawn.
#[derive(Default)]
struct View {
    shown: HashMap<String, (Phase, i64)>,
    rows: Vec<ForwardRow>,
    live: Option<Live>,
}

#[derive(Default)]
struct Live {
    lines_drawn: usize,
}

impl View {
    /// Notes phase changes; without a terminal, prints a line for each.
    fn update(&mut self, reports: &[ForwardReport], say: &(dyn Fn(&str) + Sync)) {
        for report in reports {
            if self.shown.get(&report.name).map(|(p, _)| p) == Some(&report.phase) {
                continue;
            }
            if self.live.is_none() {
                say(&line(report));
            }
            self.shown
                .insert(report.name.clone(), (report.phase.clone(), now_ms()));
        }
    }

    /// On a terminal: the table again, over the previous one.
    fn redraw(&mut self, project: &str, config: &Path, say: &(dyn Fn(&str) + Sync)) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        let rows: Vec<ForwardStatus> = self
            .rows
            .iter()
            .map(|row| {
                ForwardStatus::of(
                    project,
                    std::process::id(),
                    &config.display().to_string(),
                    row,
                )
            })
            .collect();
        let text = table(&rows);
        // Back to the first line of the previous table, and clear from there down.
        let up = if live.lines_drawn > 0 {
            format!("\x1b[{}F\x1b[J", live.lines_drawn)
        } else {
            String::new()
        };
        live.lines_drawn = text.lines().count();
        say(&format!("{up}{}", text.trim_end()));
    }

    fn since(&self, name: &str) -> i64 {
        self.shown.get(name).map_or_else(now_ms, |(_, at)| *at)
    }
}

fn line(report: &ForwardReport) -> String {
    let what = match &report.phase {
        Phase::Waiting(why) => format!("waiting: {why}"),
        Phase::Ready { pod, .. } if report.spec.relay.is_some() => {
            format!("ready -> {} (relay pod {pod})", report.spec)
        }
        Phase::Ready { pod, port } => {
            format!("ready -> {}:{port} via pod {pod}", report.spec.target)
        }
        Phase::Failed(why) => format!("failed: {why}"),
    };
    format!("{:<16} {:<21} {what}", report.name, report.local)
}

fn flush(
    state: &mut State,
    run: RunId,
    reports: &[ForwardReport],
    failed: &[(String, String)],
    view: &mut View,
) -> Result<(), StateError> {
    let mut rows: Vec<ForwardRow> = reports
        .iter()
        .map(|r| ForwardRow {
            name: r.name.clone(),
            local_address: r.local.to_string(),
            target: r.spec.to_string(),
            state: r.phase.state().to_string(),
            pod: match &r.phase {
                Phase::Ready { pod, .. } => Some(pod.clone()),
                _ => None,
            },
            connections: r.open_connections,
            bytes_in: i64::try_from(r.bytes_in).unwrap_or(i64::MAX),
            bytes_out: i64::try_from(r.bytes_out).unwrap_or(i64::MAX),
            since_ms: view.since(&r.name),
            last_error: match &r.phase {
                Phase::Waiting(why) | Phase::Failed(why) => Some(why.clone()),
                Phase::Ready { .. } => r.last_error.clone(),
            },
        })
        .collect();
    for (name, why) in failed {
        view.shown
            .entry(name.clone())
            .or_insert_with(|| (Phase::Failed(why.clone()), now_ms()));
    }
    rows.extend(failed.iter().map(|(name, why)| ForwardRow {
        name: name.clone(),
        local_address: "-".into(),
        target: "-".into(),
        state: "failed".into(),
        pod: None,
        connections: 0,
        bytes_in: 0,
        bytes_out: 0,
        since_ms: view.since(name),
        last_error: Some(why.clone()),
    }));
    state.put_forwards(run, &rows)?;
    view.rows = rows;
    Ok(())
}
