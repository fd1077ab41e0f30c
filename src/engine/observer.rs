//! What a run tells whoever shows it. The engine prints nothing itself: the command line
//! draws a line per change, or a live table on a terminal.

use super::ForwardReport;
use crate::state::{ForwardRow, SourceRow};

pub trait Observer {
    /// A line of news: a reload, a change not applied, a forward that could not start.
    fn news(&mut self, text: &str);
    /// A forward entered a new phase.
    fn phase(&mut self, report: &ForwardReport);
    /// The state database was just written with these forwards and this source.
    fn recorded(&mut self, forwards: &[ForwardRow], following: &SourceRow);
}
