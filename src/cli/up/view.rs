//! How `kftray up` shows its run in the foreground: a line per change, or, on a terminal, the
//! status table redrawn in place every second with the news printed above it.

use super::super::output::say;
use super::super::status::{ForwardStatus, following, table};
use crate::engine::{ForwardReport, Observer, Phase};
use crate::source::git::short;
use crate::state::{ForwardRow, SourceRow};

pub(super) struct View {
    /// Prints nothing at all (`--quiet`).
    quiet: bool,
    /// On a terminal: the lines of the table last drawn, to draw over them.
    live: Option<usize>,
    project: String,
    config: String,
}

impl View {
    pub(super) fn new(quiet: bool, live: bool, project: String, config: String) -> View {
        View {
            quiet,
            live: live.then_some(0),
            project,
            config,
        }
    }

    fn print(&self, text: &str) {
        if !self.quiet {
            say(&format!("{text}\n"));
        }
    }
}

/// Moves the cursor back to the first line of what was drawn, and clears from there down.
fn over(lines: usize) -> String {
    if lines > 0 {
        format!("\x1b[{lines}F\x1b[J")
    } else {
        String::new()
    }
}

impl Observer for View {
    fn news(&mut self, text: &str) {
        // On a terminal the news goes where the table was; the next tick draws it below.
        let drawn = self.live.as_mut().map_or(0, std::mem::take);
        self.print(&format!("{}{text}", over(drawn)));
    }

    fn phase(&mut self, report: &ForwardReport) {
        if self.live.is_none() {
            self.print(&line(report));
        }
    }

    fn recorded(&mut self, forwards: &[ForwardRow], source: &SourceRow) {
        let Some(drawn) = self.live else {
            return;
        };
        let rows: Vec<ForwardStatus> = forwards
            .iter()
            .map(|row| {
                ForwardStatus::of(&self.project, std::process::id(), &self.config, row, source)
            })
            .collect();
        let mut text = table(&rows);
        text.push_str(&footer(source));
        let text = text.trim_end();
        self.live = Some(text.lines().count());
        self.print(&format!("{}{text}", over(drawn)));
    }
}

/// Below the live table: the repository followed and what is wrong, one line each (the
/// diagnostics themselves were printed above when they happened).
fn footer(source: &SourceRow) -> String {
    let mut brief = source.clone();
    let rejected = brief.git_rejected_commit.take();
    brief.git_rejected_error = None;
    brief.reload_error = None;
    let mut text = following(&brief);
    if let Some(commit) = rejected {
        text.push_str(&format!(
            "commit {} not applied (see above)\n",
            short(&commit)
        ));
    } else if source.reload_error.is_some() {
        text.push_str("the last change was not applied (see above)\n");
    }
    text
}

/// One forward's new phase, as a line of its own.
fn line(report: &ForwardReport) -> String {
    let what = match &report.phase {
        Phase::Waiting(why) => format!("waiting: {why}"),
        Phase::Ready { pod, .. } if report.spec.relay.is_some() => {
            format!("ready -> {} (relay pod {pod})", report.spec)
        }
        Phase::Ready { pod, port } => {
            format!("ready -> {}:{port} via pod {pod}", report.spec.target)
        }
        Phase::Reconnecting { pod, why, .. } => format!("reconnecting to pod {pod}: {why}"),
        Phase::Failed(why) => format!("failed: {why}"),
    };
    format!("{:<16} {:<21} {what}", report.name, report.local)
}
