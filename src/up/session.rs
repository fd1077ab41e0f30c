//! One `kftray up` run in the foreground: load, apply, report, and stop cleanly on a signal.

use super::{Applied, ForwardReport, Phase, RunSpec, Supervisor};
use crate::config::{self, Diagnostics, Effective};
use crate::forward::Tuning;
use crate::source::git::short;
use crate::source::{
    self, Cause, GitArgs, GitInfo, RemoteRev, Revision, Source, Start, StartError, Update,
};
use crate::state::{ForwardRow, RunId, SourceRow, State, StateError, now_ms};
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
    /// Follow this repository's file instead of (or under) the local one.
    pub git: Option<GitArgs>,
    /// Colour the diagnostics of a change that is not applied.
    pub color: bool,
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
    #[error("{0}")]
    Git(String),
    #[error("{0}")]
    Watch(String),
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

/// Runs in the foreground until SIGINT or SIGTERM, following the configuration as it
/// changes. `say` receives the live view's lines.
pub async fn run(options: UpOptions, say: &(dyn Fn(&str) + Sync)) -> Result<(), UpError> {
    let spec = source::Spec {
        config: options.config.clone(),
        git: options.git.clone(),
        home: options.home.clone(),
    };
    let (source, start) = Source::open(spec).await.map_err(|e| match e {
        StartError::Config(diagnostics) => UpError::Config(diagnostics),
        StartError::Git(message) => UpError::Git(message),
        StartError::Watch(e) => UpError::Watch(e.to_string()),
    })?;
    let Selection { runnable: desired } =
        desired(&start.revision.effective, &options.names, &options.tags)
            .map_err(UpError::Selection)?;
    let project = project_of(&options.config);
    let mut state = State::open(&options.home)?;
    let label = match (&start.git, options.config.exists()) {
        (Some(git), false) => git.repo.clone(),
        _ => options.config.display().to_string(),
    };
    let run = state.begin_run(&project, &label)?;
    let mut session = Session {
        names: &options.names,
        tags: &options.tags,
        color: options.color,
        state,
        run,
        supervisor: Supervisor::for_project(Tuning::default(), &project),
        failed: BTreeMap::new(),
        following: SourceRow::default(),
        remote: None,
        sync_error_said: None,
        view: View {
            live: options.live.then(Live::default),
            ..View::default()
        },
        say,
    };
    session.begin(&start)?;
    let applied = session.supervisor.apply(&desired).await;
    session.note_applied(&applied)?;
    session.remote = start.revision.remote.clone();
    if let Some(remote) = &start.revision.remote {
        remote.marker.mark(&remote.commit).await;
    }
    let mut source = source.spawn();
    session.view.update(&session.supervisor.report(), say);
    session.flush()?;
    session.redraw(&project, &options.config);
    session
        .state
        .record_event(run, None, "started", &format!("{} forwards", desired.len()))?;

    let mut terminate = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut interrupt = signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    let reason = loop {
        tokio::select! {
            _ = interrupt.recv() => break "interrupted",
            _ = terminate.recv() => break "terminated",
            update = source.next() => session.follow(update).await?,
            () = session.supervisor.changed() => {
                session.view.update(&session.supervisor.report(), say);
            }
            _ = tick.tick() => {}
        }
        session.flush()?;
        session.redraw(&project, &options.config);
    };
    session.say(&format!("stopping ({reason})"));
    session.supervisor.shutdown().await;
    session.state.end_run(run, reason)?;
    Ok(())
}

/// One run's moving parts: what runs, what the state database and the live view say of it.
struct Session<'a> {
    names: &'a [String],
    tags: &'a [String],
    color: bool,
    state: State,
    run: RunId,
    supervisor: Supervisor,
    /// Forwards that could not start (a taken port), with why; retried at the next reload.
    failed: BTreeMap<String, String>,
    /// How the run follows its source, as `status` shows it.
    following: SourceRow,
    /// The team's commit whose file runs.
    remote: Option<RemoteRev>,
    /// The sync error last printed, so that retries do not repeat it.
    sync_error_said: Option<String>,
    view: View,
    say: &'a (dyn Fn(&str) + Sync),
}

impl Session<'_> {
    fn say(&mut self, text: &str) {
        self.view.note(text, self.say);
    }

    /// Records where the configuration comes from and how the start went.
    fn begin(&mut self, start: &Start) -> Result<(), StateError> {
        let now = now_ms();
        if let Some(git) = &start.git {
            self.set_git(Some(git));
            match &start.sync_error {
                Some(error) => {
                    self.sync_failed(error)?;
                    let commit = start.revision.remote.as_ref().map(|r| short(&r.commit));
                    self.say(&format!(
                        "running {} from the copy fetched earlier{}",
                        git.path,
                        commit.map(|c| format!(" (commit {c})")).unwrap_or_default()
                    ));
                }
                None => self.following.git_synced_at_ms = Some(now),
            }
        }
        self.following.git_commit = start.revision.remote.as_ref().map(|r| r.commit.clone());
        if let Some((commit, diagnostics)) = &start.rejected {
            let plain = diagnostics.render(false, 100);
            self.say(&format!(
                "commit {} is not applied; running the last commit that was:\n{}",
                short(commit),
                diagnostics.render(self.color, 100).trim_end()
            ));
            self.following.git_rejected_commit = Some(commit.clone());
            self.following.git_rejected_error = Some(plain.clone());
            self.following.reload_error = Some(plain);
            self.following.reload_error_at_ms = Some(now);
            self.state
                .record_event(self.run, None, "rejected", &format!("commit {commit}"))?;
        }
        self.state.put_source(self.run, &self.following)
    }

    fn set_git(&mut self, git: Option<&GitInfo>) {
        self.following.git_repo = git.map(|g| g.repo.clone());
        self.following.git_ref = git.map(|g| g.reference.clone());
        self.following.git_path = git.map(|g| g.path.clone());
    }

    /// Acts on one update of the source.
    async fn follow(&mut self, update: Update) -> Result<(), StateError> {
        match update {
            Update::Apply(revision) => self.reload(*revision).await?,
            Update::Rejected {
                diagnostics,
                cause,
                commit,
            } => {
                let plain = diagnostics.render(false, 100);
                let shown = diagnostics.render(self.color, 100);
                let newer = commit.filter(|c| self.remote.as_ref().is_none_or(|r| r.commit != *c));
                self.reject(&cause, &plain, &shown, newer)?;
            }
            Update::Missing(path) => {
                let message = format!(
                    "{} is gone: the forwards keep running as they are until it is back",
                    path.display()
                );
                self.say(&message);
                self.following.reload_error = Some(message.clone());
                self.following.reload_error_at_ms = Some(now_ms());
                self.state
                    .record_event(self.run, None, "missing", &message)?;
                self.state.put_source(self.run, &self.following)?;
            }
            Update::Synced {
                commit,
                blob,
                marker,
            } => {
                if self.sync_error_said.take().is_some() {
                    self.say("sync: the repository answers again");
                }
                self.following.git_synced_at_ms = Some(now_ms());
                self.following.git_sync_error = None;
                self.following.git_sync_error_at_ms = None;
                // The file is unchanged: if it is the one running, so is this commit.
                if let Some(remote) = self
                    .remote
                    .as_mut()
                    .filter(|r| Some(&r.blob) == blob.as_ref())
                {
                    tracing::debug!(commit = %commit, "fetched; the file is unchanged");
                    remote.commit = commit.clone();
                    self.following.git_commit = Some(commit.clone());
                    marker.mark(&commit).await;
                }
                self.state.put_source(self.run, &self.following)?;
            }
            Update::SyncFailed(error) => self.sync_failed(&error)?,
            Update::Following(git) => {
                match &git {
                    Some(git) => self.say(&format!(
                        "following {} {} {} from now on",
                        git.repo, git.reference, git.path
                    )),
                    None => self.say("no [sync] any more: following the local files alone"),
                }
                self.set_git(git.as_ref());
                self.following.git_commit = None;
                self.state.put_source(self.run, &self.following)?;
            }
        }
        Ok(())
    }

    fn sync_failed(&mut self, error: &str) -> Result<(), StateError> {
        if self.sync_error_said.as_deref() != Some(error) {
            self.say(&format!(
                "sync: {error}; the last good configuration keeps running, retrying"
            ));
            self.state
                .record_event(self.run, None, "sync-failed", error)?;
            self.sync_error_said = Some(error.to_owned());
        }
        self.following.git_sync_error = Some(error.to_owned());
        self.following.git_sync_error_at_ms = Some(now_ms());
        self.state.put_source(self.run, &self.following)
    }

    /// Applies a configuration that validated: only what changed restarts.
    async fn reload(&mut self, revision: Revision) -> Result<(), StateError> {
        let cause = revision.cause.clone();
        let selection = match desired(&revision.effective, self.names, self.tags) {
            Ok(selection) => selection,
            Err(why) => {
                let commit = revision.remote.as_ref().map(|r| r.commit.clone());
                return self.reject(&cause, &why, &why, commit);
            }
        };
        let applied = self.supervisor.apply(&selection.runnable).await;
        let took = revision
            .last_event
            .map(|at| format!(" ({} ms after the last write)", at.elapsed().as_millis()))
            .unwrap_or_default();
        for name in applied.stopped.iter().chain(&applied.restarted) {
            self.view.shown.remove(name);
        }
        self.failed
            .retain(|name, _| selection.runnable.contains_key(name));
        for name in applied.started.iter().chain(&applied.restarted) {
            self.failed.remove(name);
        }
        let outcome = outcome(&applied);
        self.say(&format!("reload ({cause}): {outcome}{took}"));
        self.state.record_event(
            self.run,
            None,
            "reloaded",
            &format!("{cause}: {outcome}{took}"),
        )?;
        self.note_applied(&applied)?;
        let now = now_ms();
        self.following.reloaded_at_ms = Some(now);
        self.following.reload_error = None;
        self.following.reload_error_at_ms = None;
        self.following.git_rejected_commit = None;
        self.following.git_rejected_error = None;
        if let Some(remote) = &revision.remote {
            if matches!(cause, Cause::Commit(_)) {
                self.following.git_synced_at_ms = Some(now);
                self.following.git_sync_error = None;
                self.following.git_sync_error_at_ms = None;
                self.sync_error_said = None;
            }
            self.following.git_commit = Some(remote.commit.clone());
            remote.marker.mark(&remote.commit).await;
        }
        self.remote = revision.remote;
        self.state.put_source(self.run, &self.following)
    }

    /// A change that cannot run: nothing changes, and everyone is told why.
    fn reject(
        &mut self,
        cause: &Cause,
        plain: &str,
        shown: &str,
        commit: Option<String>,
    ) -> Result<(), StateError> {
        self.say(&format!(
            "reload ({cause}): not applied, the forwards keep running as they were:\n{}",
            shown.trim_end()
        ));
        let now = now_ms();
        self.following.reload_error = Some(plain.to_owned());
        self.following.reload_error_at_ms = Some(now);
        if let Some(commit) = commit {
            self.following.git_synced_at_ms = Some(now);
            self.following.git_rejected_commit = Some(commit);
            self.following.git_rejected_error = Some(plain.to_owned());
        }
        self.state
            .record_event(self.run, None, "rejected", &cause.to_string())?;
        self.state.put_source(self.run, &self.following)
    }

    /// Prints and records the forwards that could not start.
    fn note_applied(&mut self, applied: &Applied) -> Result<(), StateError> {
        for (name, why) in &applied.failed {
            self.say(&format!("{name:<16} failed: {why}"));
            self.state
                .record_event(self.run, Some(name), "failed", why)?;
            self.failed.insert(name.clone(), why.clone());
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StateError> {
        flush(
            &mut self.state,
            self.run,
            &self.supervisor.report(),
            &self.failed,
            &mut self.view,
        )
    }

    fn redraw(&mut self, project: &str, config: &Path) {
        self.view.redraw(project, config, &self.following, self.say);
    }
}

/// What a reload did, in one line.
fn outcome(applied: &Applied) -> String {
    let mut parts = Vec::new();
    for (verb, names) in [
        ("started", &applied.started),
        ("stopped", &applied.stopped),
        ("restarted", &applied.restarted),
    ] {
        if !names.is_empty() {
            parts.push(format!("{verb} {}", names.join(", ")));
        }
    }
    if !applied.failed.is_empty() {
        let names: Vec<&str> = applied.failed.iter().map(|(n, _)| n.as_str()).collect();
        parts.push(format!("failed {}", names.join(", ")));
    }
    if parts.is_empty() {
        "nothing changed: no forward's target, ports, address or cluster differs".to_owned()
    } else {
        parts.join("; ")
    }
}

fn signal(kind: tokio::signal::unix::SignalKind) -> Result<tokio::signal::unix::Signal, UpError> {
    tokio::signal::unix::signal(kind).map_err(UpError::Signals)
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

    /// Prints a line of news: on a terminal, above the table (which is drawn again below).
    fn note(&mut self, text: &str, say: &(dyn Fn(&str) + Sync)) {
        match self.live.as_mut() {
            Some(live) if live.lines_drawn > 0 => {
                say(&format!("\x1b[{}F\x1b[J{text}", live.lines_drawn));
                live.lines_drawn = 0;
            }
            _ => say(text),
        }
    }

    /// On a terminal: the table again, over the previous one, and below it how the source
    /// is followed.
    fn redraw(
        &mut self,
        project: &str,
        config: &Path,
        following: &SourceRow,
        say: &(dyn Fn(&str) + Sync),
    ) {
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
                    following,
                )
            })
            .collect();
        let mut text = table(&rows);
        text.push_str(&live_footer(following));
        // Back to the first line of the previous table, and clear from there down.
        let up = if live.lines_drawn > 0 {
            format!("\x1b[{}F\x1b[J", live.lines_drawn)
        } else {
            String::new()
        };
        live.lines_drawn = text.trim_end().lines().count();
        say(&format!("{up}{}", text.trim_end()));
    }

    fn since(&self, name: &str) -> i64 {
        self.shown.get(name).map_or_else(now_ms, |(_, at)| *at)
    }
}

/// Below the live table: the repository followed and what is wrong, one line each (the
/// diagnostics themselves were printed above when they happened).
fn live_footer(following: &SourceRow) -> String {
    let mut brief = following.clone();
    let rejected = brief.git_rejected_commit.take();
    brief.git_rejected_error = None;
    let mut text = crate::status::following(&SourceRow {
        reload_error: None,
        ..brief
    });
    if let Some(commit) = rejected {
        text.push_str(&format!(
            "commit {} not applied (see above)\n",
            short(&commit)
        ));
    } else if following.reload_error.is_some() {
        text.push_str("the last change was not applied (see above)\n");
    }
    text
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
    failed: &BTreeMap<String, String>,
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
    // Forwards a reload stopped leave the table.
    for gone in view
        .rows
        .iter()
        .filter(|old| !rows.iter().any(|row| row.name == old.name))
    {
        state.remove_forward(run, &gone.name)?;
    }
    state.put_forwards(run, &rows)?;
    view.rows = rows;
    Ok(())
}
