//! One `kftray up` run in the foreground: follow the source, apply what validates, record
//! it, retry what could not start, and stop cleanly on a signal.

use super::expand::{Expansion, expand};
use super::following::Following;
use super::record::Record;
use super::retry::Retry;
use super::selection::{overridden, picks, picks_overridden};
use super::{
    Applied, Nudge, Observer, RunSpec, Selection, SelectionError, Stop, Supervisor, desired,
};
use crate::config::{Diagnostics, Effective, Skipped};
use crate::forward::{Tuning, http_log};
use crate::source::git::{GitError, short};
use crate::source::{self, Cause, GitArgs, RemoteRev, Revision, Source, Start, StartError, Update};
use crate::state::{EventKind, Overrides, State, StateError, project_of};
use std::collections::BTreeMap;
use std::path::PathBuf;
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
    /// Follow this repository's file instead of (or under) the local one.
    pub git: Option<GitArgs>,
    /// Colour the diagnostics of a change that is not applied.
    pub color: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error(transparent)]
    Start(StartError),
    #[error(transparent)]
    Selection(#[from] SelectionError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot watch for signals: {0}")]
    Signals(std::io::Error),
}

/// Runs in the foreground until SIGINT or SIGTERM, following the configuration as it
/// changes and telling `observer` what happens.
pub async fn run(options: UpOptions, observer: &mut dyn Observer) -> Result<(), UpError> {
    let spec = source::Spec {
        config: options.config.clone(),
        git: options.git.clone(),
        home: options.home.clone(),
    };
    let (source, start) = Source::open(spec).await.map_err(UpError::Start)?;
    let project = project_of(&options.config);
    let supervisor = Supervisor::for_project(Tuning::default(), &project)
        .with_http_logs(http_log::dir_of(&options.home, &project));
    let effective = start.revision.effective.clone();
    let expansion = expand(
        &effective,
        supervisor.clusters(),
        picks(&options.names, &options.tags),
    )
    .await;
    let selection = desired(&expansion.effective, &options.names, &options.tags)?;
    let mut state = State::open(&options.home)?;
    let label = match (&start.git, options.config.exists()) {
        (Some(git), false) => git.repo.clone(),
        _ => options.config.display().to_string(),
    };
    let run = state.begin_run(&project, &label)?;
    let mut session = Session {
        options: &options,
        record: Record::new(state, run),
        supervisor,
        desired: selection.runnable,
        effective,
        unlisted: Vec::new(),
        skipped_said: Vec::new(),
        retry: Retry::default(),
        following: Following::default(),
        remote: None,
        sync_error_said: None,
        overrides: Overrides::default(),
        observer,
    };
    session.begin(&start);
    session.expanded(expansion);
    let applied = session.supervisor.apply(&session.desired).await;
    session.applied(&applied);
    session.remote = start.revision.remote.clone();
    if let Some(remote) = &start.revision.remote {
        remote.marker.mark(&remote.commit).await;
    }
    let mut source = source.spawn();
    session.phases();
    session.flush();
    let count = session.desired.len();
    session
        .record
        .event(None, EventKind::Started, &format!("{count} forwards"));

    let mut stop = Stop::watch().map_err(UpError::Signals)?;
    let mut nudge = Nudge::watch().map_err(UpError::Signals)?;
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    let reason = loop {
        tokio::select! {
            how = stop.asked() => break how,
            update = source.next() => session.follow(update).await,
            () = session.supervisor.changed() => session.phases(),
            () = session.retry.due() => session.try_failed_again().await,
            // `kftray up NAMES` and `kftray down NAMES` in another terminal say so at once.
            () = nudge.received() => session.overridden().await,
            _ = tick.tick() => session.overridden().await,
        }
        session.flush();
    };
    session.observer.news(&format!("stopping ({reason})"));
    session.supervisor.shutdown().await;
    session.record.end(reason)?;
    Ok(())
}

/// One run's moving parts: what should run and what does, what is recorded and shown of it.
struct Session<'a> {
    options: &'a UpOptions,
    record: Record,
    supervisor: Supervisor,
    /// The forwards the configuration selects now.
    desired: BTreeMap<String, RunSpec>,
    /// The configuration that runs, before its `ports = "all"` entries are expanded.
    effective: Effective,
    /// The `ports = "all"` entries whose ports could not be listed yet, with why.
    unlisted: Vec<(String, String)>,
    /// The declared ports last said to be skipped, so that a retry does not repeat them.
    skipped_said: Vec<Skipped>,
    /// The selected forwards that could not start, and when to try them again.
    retry: Retry,
    following: Following,
    /// The team's commit whose file runs.
    remote: Option<RemoteRev>,
    /// The sync error last printed, so that retries do not repeat it.
    sync_error_said: Option<GitError>,
    /// What other terminals changed of the selection, as last applied.
    overrides: Overrides,
    observer: &'a mut dyn Observer,
}

impl Session<'_> {
    /// Records where the configuration comes from and how the start went.
    fn begin(&mut self, start: &Start) {
        if let Some(git) = &start.git {
            self.following.repository(Some(git));
            match &start.sync_error {
                Some(error) => {
                    self.sync_failed(error);
                    let commit = start.revision.remote.as_ref().map(|r| short(&r.commit));
                    self.observer.news(&format!(
                        "running {} from the copy fetched earlier{}",
                        git.path,
                        commit.map(|c| format!(" (commit {c})")).unwrap_or_default()
                    ));
                }
                None => self.following.synced(),
            }
        }
        self.following
            .running(start.revision.remote.as_ref().map(|r| r.commit.as_str()));
        if let Some((commit, diagnostics)) = &start.rejected {
            self.observer.news(&format!(
                "commit {} is not applied; running the last commit that was:\n{}",
                short(commit),
                diagnostics.render(self.options.color, 100).trim_end()
            ));
            self.following
                .rejected(&diagnostics.render(false, 100), Some(commit.clone()));
            self.record
                .event(None, EventKind::Rejected, &format!("commit {commit}"));
        }
        self.record.source(self.following.row());
    }

    /// Acts on one update of the source.
    async fn follow(&mut self, update: Update) {
        match update {
            Update::Apply(revision) => self.reload(*revision).await,
            Update::Rejected {
                diagnostics,
                cause,
                commit,
            } => {
                let newer = commit.filter(|c| self.remote.as_ref().is_none_or(|r| r.commit != *c));
                self.reject(&cause, &Why::Diagnostics(&diagnostics), newer);
            }
            Update::Missing(path) => {
                let message = format!(
                    "{} is gone: the forwards keep running as they are until it is back",
                    path.display()
                );
                self.observer.news(&message);
                self.following.rejected(&message, None);
                self.record.event(None, EventKind::Missing, &message);
                self.record.source(self.following.row());
            }
            Update::Synced {
                commit,
                blob,
                marker,
            } => {
                if self.sync_error_said.take().is_some() {
                    self.observer.news("sync: the repository answers again");
                }
                self.following.synced();
                // The file is unchanged: if it is the one running, so is this commit.
                if let Some(remote) = self
                    .remote
                    .as_mut()
                    .filter(|r| Some(&r.blob) == blob.as_ref())
                {
                    tracing::debug!(commit = %commit, "fetched; the file is unchanged");
                    remote.commit = commit.clone();
                    self.following.running(Some(&commit));
                    marker.mark(&commit).await;
                }
                self.record.source(self.following.row());
            }
            Update::SyncFailed(error) => self.sync_failed(&error),
            Update::Following(git) => {
                match &git {
                    Some(git) => self.observer.news(&format!(
                        "following {} {} {} from now on",
                        git.repo, git.reference, git.path
                    )),
                    None => self
                        .observer
                        .news("no [sync] any more: following the local files alone"),
                }
                self.following.repository(git.as_ref());
                self.record.source(self.following.row());
            }
        }
    }

    fn sync_failed(&mut self, error: &GitError) {
        let text = error.to_string();
        if self.sync_error_said.as_ref() != Some(error) {
            self.observer.news(&format!(
                "sync: {text}; the last good configuration keeps running, retrying"
            ));
            self.record.event(None, EventKind::SyncFailed, &text);
            self.sync_error_said = Some(error.clone());
        }
        self.following.sync_failed(&text);
        self.record.source(self.following.row());
    }

    /// Lists the ports of the `ports = "all"` entries `effective` selects and says what is
    /// new about it; the selection it makes, without changing what runs.
    async fn select(&mut self, effective: &Effective) -> Result<Selection, SelectionError> {
        let (names, tags) = (&self.options.names, &self.options.tags);
        let picked = picks_overridden(names, tags, &self.overrides);
        let expansion = expand(effective, self.supervisor.clusters(), picked).await;
        let selection = overridden(&expansion.effective, names, tags, &self.overrides)?;
        self.expanded(expansion);
        Ok(selection)
    }

    /// Applies what `kftray up NAMES` and `kftray down NAMES` changed since last time.
    async fn overridden(&mut self) {
        let Some(overrides) = self.record.overrides() else {
            return;
        };
        if overrides == self.overrides {
            return;
        }
        self.overrides = overrides;
        let effective = self.effective.clone();
        let selection = match self.select(&effective).await {
            Ok(selection) => selection,
            Err(why) => {
                self.observer
                    .news(&format!("not applied what another terminal asked: {why}"));
                return;
            }
        };
        self.desired = selection.runnable;
        let (applied, outcome) = self.apply_desired().await;
        self.observer
            .news(&format!("asked from another terminal: {outcome}"));
        self.record.event(
            None,
            EventKind::Reloaded,
            &format!("asked from another terminal: {outcome}"),
        );
        self.applied(&applied);
        self.phases();
    }

    /// Makes what runs match `desired`; what it did, and that in one line.
    async fn apply_desired(&mut self) -> (Applied, String) {
        let applied = self.supervisor.apply(&self.desired).await;
        for name in applied.stopped.iter().chain(&applied.restarted) {
            self.record.forget(name);
        }
        let outcome = outcome(&applied);
        (applied, outcome)
    }

    /// Keeps what could not be listed, and says the ports skipped when they change.
    fn expanded(&mut self, expansion: Expansion) {
        self.unlisted = expansion.unlisted;
        if expansion.skipped != self.skipped_said {
            for skipped in &expansion.skipped {
                let message = skipped.to_string();
                self.observer.news(&message);
                self.record.event(None, EventKind::Skipped, &message);
            }
            self.skipped_said = expansion.skipped;
        }
    }

    /// What could not start in `applied`, and the entries whose ports are not listed yet.
    fn failures(&self, applied: &Applied) -> Vec<(String, String)> {
        let mut failed = applied.failed.clone();
        failed.extend(self.unlisted.iter().cloned());
        failed
    }

    /// Applies a configuration that validated: only what changed restarts.
    async fn reload(&mut self, revision: Revision) {
        let cause = revision.cause.clone();
        let selection = match self.select(&revision.effective).await {
            Ok(selection) => selection,
            Err(why) => {
                let commit = revision.remote.as_ref().map(|r| r.commit.clone());
                self.reject(&cause, &Why::Selection(&why), commit);
                return;
            }
        };
        self.desired = selection.runnable;
        self.effective = revision.effective;
        let (applied, outcome) = self.apply_desired().await;
        let took = revision
            .last_event
            .map(|at| format!(" ({} ms after the last write)", at.elapsed().as_millis()))
            .unwrap_or_default();
        self.observer
            .news(&format!("reload ({cause}): {outcome}{took}"));
        self.record.event(
            None,
            EventKind::Reloaded,
            &format!("{cause}: {outcome}{took}"),
        );
        self.applied(&applied);
        self.following.reloaded();
        if let Some(remote) = &revision.remote {
            if matches!(cause, Cause::Commit(_)) {
                self.following.synced();
                self.sync_error_said = None;
            }
            self.following.running(Some(&remote.commit));
            remote.marker.mark(&remote.commit).await;
        }
        self.remote = revision.remote;
        self.record.source(self.following.row());
    }

    /// A change that cannot run: nothing changes, and everyone is told why.
    fn reject(&mut self, cause: &Cause, why: &Why<'_>, commit: Option<String>) {
        let (plain, shown) = why.render(self.options.color);
        self.observer.news(&format!(
            "reload ({cause}): not applied, the forwards keep running as they were:\n{}",
            shown.trim_end()
        ));
        self.following.rejected(&plain, commit);
        self.record
            .event(None, EventKind::Rejected, &cause.to_string());
        self.record.source(self.following.row());
    }

    /// Says and records the forwards that could not start, and schedules their next try.
    fn applied(&mut self, applied: &Applied) {
        let failed = self.failures(applied);
        for (name, why) in &failed {
            self.observer.news(&format!("{name:<16} failed: {why}"));
            self.record.event(Some(name), EventKind::Failed, why);
        }
        self.retry.failed_now(&failed);
    }

    /// Tries the forwards that could not start again, and lists the ports not listed yet;
    /// says only what changed.
    async fn try_failed_again(&mut self) {
        let before = std::mem::take(&mut self.retry.failed);
        if !self.unlisted.is_empty() {
            let effective = self.effective.clone();
            // The configuration selected something before; an entry that still is not
            // listed stays unlisted rather than making the run select nothing.
            if let Ok(selection) = self.select(&effective).await {
                self.desired = selection.runnable;
            }
        }
        let applied = self.supervisor.apply(&self.desired).await;
        for name in &applied.started {
            let message = "started: what stopped it is gone";
            self.observer.news(&format!("{name:<16} {message}"));
            self.record.event(Some(name), EventKind::Recovered, message);
        }
        let failed = self.failures(&applied);
        for (name, why) in &failed {
            if before.get(name) != Some(why) {
                self.observer.news(&format!("{name:<16} failed: {why}"));
                self.record.event(Some(name), EventKind::Failed, why);
            }
        }
        self.retry.failed_now(&failed);
        self.phases();
    }

    /// Tells the observer of every forward whose phase changed.
    fn phases(&mut self) {
        let reports = self.supervisor.report();
        for report in self.record.changed(&reports) {
            self.observer.phase(report);
        }
    }

    fn flush(&mut self) {
        let reports = self.supervisor.report();
        let rows = self.record.flush(&reports, &self.retry.failed);
        self.observer.recorded(&rows, self.following.row());
        if let Some(news) = self.record.news() {
            self.observer.news(&news);
        }
    }
}

/// Why a change is not applied.
enum Why<'a> {
    Diagnostics(&'a Diagnostics),
    Selection(&'a SelectionError),
}

impl Why<'_> {
    /// Without colour (for the state database), and as shown.
    fn render(&self, color: bool) -> (String, String) {
        match self {
            Why::Diagnostics(d) => (d.render(false, 100), d.render(color, 100)),
            Why::Selection(e) => (e.to_string(), e.to_string()),
        }
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
