//! How a command fails: what it says, and the exit code that goes with it. Commands return
//! a `Failure`; `cli::run` prints it and turns it into the process's exit code, so the codes
//! are decided here alone: 1 when the configuration has problems or the work could not be
//! done, 2 for a usage error or a machine that cannot run the command.

use super::Output;
use crate::config::Diagnostics;
use std::process::ExitCode;

#[derive(Debug)]
pub(crate) enum Failure {
    /// The configuration has problems (exit 1).
    Config(Diagnostics),
    /// The work could not be done: a refused forward, a cluster that said no (exit 1).
    Failed(String),
    /// Not runnable as asked here: no file, no home, a file that cannot be written (exit 2).
    Usage(String),
    /// Already said by the command (a JSON report, diagnostics with a heading of its own).
    Said(Code),
}

/// The exit code of a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    Failed,
    Usage,
    /// A command `kftray exec` ran, passed on as it ended.
    Exit(u8),
}

pub(crate) type Outcome = Result<(), Failure>;

impl Failure {
    pub(crate) fn code(&self) -> Code {
        match self {
            Failure::Config(_) | Failure::Failed(_) => Code::Failed,
            Failure::Usage(_) => Code::Usage,
            Failure::Said(code) => *code,
        }
    }

    /// Prints what the failure says (nothing for one already said).
    pub(crate) fn report(&self, out: &Output) {
        match self {
            Failure::Config(diagnostics) => out.diagnostics(diagnostics),
            Failure::Failed(message) | Failure::Usage(message) => out.error(message),
            Failure::Said(_) => {}
        }
    }
}

impl From<Code> for ExitCode {
    fn from(code: Code) -> ExitCode {
        match code {
            Code::Failed => ExitCode::from(1),
            Code::Usage => ExitCode::from(2),
            Code::Exit(code) => ExitCode::from(code),
        }
    }
}

/// The exit code of a command's outcome, after printing its failure.
pub(crate) fn exit(outcome: Outcome, out: &Output) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            failure.report(out);
            failure.code().into()
        }
    }
}
