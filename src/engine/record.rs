//! What a run writes to the state database, so that `status` and `down` in another terminal
//! see it: one row per forward (from the supervisor's reports), the source row, and events.

use super::{ForwardReport, Phase};
use crate::state::now_ms;
use crate::state::{EventKind, ForwardRow, ForwardState, RunId, SourceRow, State, StateError};
use std::collections::{BTreeMap, HashMap};

pub(super) struct Record {
    state: State,
    run: RunId,
    /// The phase each forward was last seen in, and since when.
    seen: HashMap<String, (Phase, i64)>,
    /// The rows last written.
    rows: Vec<ForwardRow>,
}

impl Record {
    pub(super) fn new(state: State, run: RunId) -> Record {
        Record {
            state,
            run,
            seen: HashMap::new(),
            rows: Vec::new(),
        }
    }

    pub(super) fn event(
        &self,
        forward: Option<&str>,
        kind: EventKind,
        message: &str,
    ) -> Result<(), StateError> {
        self.state.record_event(self.run, forward, kind, message)
    }

    pub(super) fn source(&self, row: &SourceRow) -> Result<(), StateError> {
        self.state.put_source(self.run, row)
    }

    /// The reports whose phase changed since they were last seen (each is then seen).
    pub(super) fn changed<'r>(&mut self, reports: &'r [ForwardReport]) -> Vec<&'r ForwardReport> {
        reports
            .iter()
            .filter(|report| {
                if self.seen.get(&report.name).map(|(p, _)| p) == Some(&report.phase) {
                    return false;
                }
                self.seen
                    .insert(report.name.clone(), (report.phase.clone(), now_ms()));
                true
            })
            .collect()
    }

    /// Forgets a forward that a reload stopped or restarted: it starts afresh.
    pub(super) fn forget(&mut self, name: &str) {
        self.seen.remove(name);
    }

    /// Writes every forward's row: the running ones from their reports, the ones that could
    /// not start with why. A forward no longer among them leaves the table.
    pub(super) fn flush(
        &mut self,
        reports: &[ForwardReport],
        failed: &BTreeMap<String, String>,
    ) -> Result<&[ForwardRow], StateError> {
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
        for gone in self
            .rows
            .iter()
            .filter(|old| !rows.iter().any(|row| row.name == old.name))
        {
            self.state.remove_forward(self.run, &gone.name)?;
        }
        self.state.put_forwards(self.run, &rows)?;
        self.rows = rows;
        Ok(&self.rows)
    }

    /// Closes the run.
    pub(super) fn end(self, reason: &str) -> Result<(), StateError> {
        self.state.end_run(self.run, reason)
    }

    fn row(&self, report: &ForwardReport) -> ForwardRow {
        ForwardRow {
            name: report.name.clone(),
            local_address: report.local.to_string(),
            target: report.spec.to_string(),
            state: report.phase.state(),
            pod: match &report.phase {
                Phase::Ready { pod, .. } => Some(pod.clone()),
                _ => None,
            },
            connections: report.open_connections,
            bytes_in: i64::try_from(report.bytes_in).unwrap_or(i64::MAX),
            bytes_out: i64::try_from(report.bytes_out).unwrap_or(i64::MAX),
            since_ms: self.since(&report.name),
            last_error: match &report.phase {
                Phase::Waiting(why) | Phase::Failed(why) => Some(why.clone()),
                Phase::Ready { .. } => report.last_error.clone(),
            },
        }
    }

    fn since(&self, name: &str) -> i64 {
        self.seen.get(name).map_or_else(now_ms, |(_, at)| *at)
    }
}
