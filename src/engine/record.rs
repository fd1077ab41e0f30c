//! What a run writes to the state database, so that `status` and `down` in another terminal
//! see it: one row per forward (from the supervisor's reports), the source row, and events.
//!
//! A database that cannot be written for a while (locked by another process, a full disk)
//! must not stop the forwards: what could not be written is kept, in order and with its
//! time, and written at the next try.

use super::{ForwardReport, Phase};
use crate::state::now_ms;
use crate::state::{
    Event, EventKind, ForwardRow, ForwardState, RunId, SourceRow, State, StateError,
};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Events kept while the database cannot be written; past this, the oldest go (and the
/// count of them is written when the database answers again).
const KEPT_EVENTS: usize = 1000;

pub(super) struct Record {
    state: State,
    run: RunId,
    /// The phase each forward was last seen in, and since when.
    seen: HashMap<String, (Phase, i64)>,
    /// The rows last written.
    rows: Vec<ForwardRow>,
    /// What is still to be written.
    events: VecDeque<Event>,
    dropped_events: usize,
    source: Option<SourceRow>,
    /// Why the last write failed, while writes fail.
    failing: Option<String>,
    /// What to tell the user about writing, once.
    news: Option<String>,
}

impl Record {
    pub(super) fn new(state: State, run: RunId) -> Record {
        Record {
            state,
            run,
            seen: HashMap::new(),
            rows: Vec::new(),
            events: VecDeque::new(),
            dropped_events: 0,
            source: None,
            failing: None,
            news: None,
        }
    }

    /// What other terminals changed of the run's selection, if the database answers.
    pub(super) fn overrides(&self) -> Option<crate::state::Overrides> {
        self.state.overrides(self.run).ok()
    }

    pub(super) fn event(&mut self, forward: Option<&str>, kind: EventKind, message: &str) {
        if self.events.len() == KEPT_EVENTS {
            self.events.pop_front();
            self.dropped_events += 1;
        }
        self.events.push_back(Event {
            at_ms: now_ms(),
            forward: forward.map(str::to_owned),
            kind,
            message: message.to_owned(),
        });
        self.write_kept();
    }

    pub(super) fn source(&mut self, row: &SourceRow) {
        self.source = Some(row.clone());
        self.write_kept();
    }

    /// What changed about writing the database since last asked: it failed, or it works
    /// again.
    pub(super) fn news(&mut self) -> Option<String> {
        self.news.take()
    }

    fn write_kept(&mut self) {
        let written = self.try_write_kept();
        self.wrote(written);
    }

    fn try_write_kept(&mut self) -> Result<(), StateError> {
        if self.dropped_events > 0 {
            let message = format!(
                "{} older events were not kept while the state database could not be written",
                self.dropped_events
            );
            self.state
                .record_event(self.run, None, EventKind::Lost, &message, now_ms())?;
            self.dropped_events = 0;
        }
        while let Some(event) = self.events.front() {
            self.state.record_event(
                self.run,
                event.forward.as_deref(),
                event.kind,
                &event.message,
                event.at_ms,
            )?;
            self.events.pop_front();
        }
        if let Some(row) = &self.source {
            self.state.put_source(self.run, row)?;
            self.source = None;
        }
        Ok(())
    }

    /// Notes how a write went, and what the user should hear of it.
    fn wrote(&mut self, written: Result<(), StateError>) {
        match (written, self.failing.take()) {
            (Ok(()), None) => {}
            (Ok(()), Some(_)) => {
                let _ = self.state.wait_when_busy(true);
                self.news = Some(format!(
                    "the state database {} is written again",
                    self.state.path().display()
                ));
            }
            (Err(e), before) => {
                let path = self.state.path();
                let why = match e.at(path) {
                    e @ StateError::Sqlite(_) => {
                        format!("cannot write the state database {}: {e}", path.display())
                    }
                    e => e.to_string(),
                };
                if before.is_none() {
                    let _ = self.state.wait_when_busy(false);
                }
                if before.as_ref() != Some(&why) {
                    self.news = Some(format!(
                        "{why}; the forwards keep running, and what happens is kept and \
                         written once it can be"
                    ));
                }
                self.failing = Some(why);
            }
        }
    }

    /// The reports whose phase changed since they were last seen (each is then seen). The
    /// time kept is when the forward entered its state, so a reconnecting forward whose
    /// reason changes from one dial to the next is still reconnecting since the first.
    pub(super) fn changed<'r>(&mut self, reports: &'r [ForwardReport]) -> Vec<&'r ForwardReport> {
        reports
            .iter()
            .filter(|report| {
                let since = match self.seen.get(&report.name) {
                    Some((phase, _)) if *phase == report.phase => return false,
                    Some((phase, at)) if phase.state() == report.phase.state() => *at,
                    _ => now_ms(),
                };
                self.seen
                    .insert(report.name.clone(), (report.phase.clone(), since));
                true
            })
            .collect()
    }

    /// Forgets a forward that a reload stopped or restarted: it starts afresh.
    pub(super) fn forget(&mut self, name: &str) {
        self.seen.remove(name);
    }

    /// Writes every forward's row: the running ones from their reports, the ones that could
    /// not start with why. A forward no longer among them leaves the table. The rows are
    /// returned whether or not they could be written.
    pub(super) fn flush(
        &mut self,
        reports: &[ForwardReport],
        failed: &BTreeMap<String, String>,
    ) -> Vec<ForwardRow> {
        for (name, why) in failed {
            self.seen
                .entry(name.clone())
                .or_insert_with(|| (Phase::Failed(why.clone()), now_ms()));
        }
        let mut rows: Vec<ForwardRow> = reports.iter().map(|r| self.row(r)).collect();
        rows.extend(failed.iter().map(|(name, why)| ForwardRow {
            name: name.clone(),
            local_address: "-".into(),
            target: "-".into(),
            state: ForwardState::Failed,
            pod: None,
            connections: 0,
            bytes_in: 0,
            bytes_out: 0,
            since_ms: self.since(name),
            last_error: Some(why.clone()),
        }));
        let written = self.try_write_kept().and_then(|()| self.write_rows(&rows));
        self.wrote(written);
        rows
    }

    fn write_rows(&mut self, rows: &[ForwardRow]) -> Result<(), StateError> {
        for gone in self
            .rows
            .iter()
            .filter(|old| !rows.iter().any(|row| row.name == old.name))
        {
            self.state.remove_forward(self.run, &gone.name)?;
        }
        self.state.put_forwards(self.run, rows)?;
        self.rows = rows.to_vec();
        Ok(())
    }

    /// Writes what is kept, then closes the run.
    pub(super) fn end(mut self, reason: &str) -> Result<(), StateError> {
        self.try_write_kept()?;
        self.state.end_run(self.run, reason)
    }

    fn row(&self, report: &ForwardReport) -> ForwardRow {
        ForwardRow {
            name: report.name.clone(),
            local_address: report.local.to_string(),
            target: report.spec.to_string(),
            state: report.phase.state(),
            pod: match &report.phase {
                Phase::Ready { pod, .. } | Phase::Reconnecting { pod, .. } => Some(pod.clone()),
                _ => None,
            },
            connections: report.open_connections,
            bytes_in: i64::try_from(report.bytes_in).unwrap_or(i64::MAX),
            bytes_out: i64::try_from(report.bytes_out).unwrap_or(i64::MAX),
            since_ms: self.since(&report.name),
            last_error: match &report.phase {
                Phase::Waiting(why) | Phase::Failed(why) | Phase::Reconnecting { why, .. } => {
                    Some(why.clone())
                }
                Phase::Ready { .. } => report.last_error.clone(),
            },
        }
    }

    fn since(&self, name: &str) -> i64 {
        self.seen.get(name).map_or_else(now_ms, |(_, at)| *at)
    }
}
