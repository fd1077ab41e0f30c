//! `kftray up` while the project is up: the forwards named or tagged join the run (or come
//! back after `kftray down NAMES`), without restarting what runs; `kftray up` alone brings
//! back every forward held down. The run is told through the state database.

use super::super::Output;
use super::super::down::nudge;
use super::super::failure::{Code, Failure, Outcome};
use super::super::picked::Picked;
use super::super::status::ForwardStatus;
use super::Args;
use super::detach::{self, Waited};
use crate::state::{ProcessId, Run, State};
use std::path::Path;
use std::time::Duration;

pub(super) fn join(path: &Path, home: &Path, args: &Args, run: &Run, out: &Output) -> Outcome {
    let failed =
        |e: crate::state::StateError| Failure::Usage(e.at(&State::file_in(home)).to_string());
    let mut state = State::open(home).map_err(failed)?;
    let picked = if !args.names.is_empty() || !args.tags.is_empty() {
        let names = names_of(path, args, out)?;
        state
            .override_forwards(run.id, &names, true)
            .map_err(failed)?;
        Picked::new(path, &args.names, &args.tags, out)?
    } else {
        let released = state.release_held(run.id).map_err(failed)?;
        if released.is_empty() {
            return Err(Failure::Failed(format!(
                "kftray is already running for {} (pid {}); `kftray up NAMES` adds forwards \
                 to it, `kftray down` stops it",
                run.project, run.pid
            )));
        }
        Picked::new(path, &released, &[], out)?
    };
    nudge(run);
    let wanted = |f: &ForwardStatus| picked.picks(&f.alias);
    let pid = ProcessId {
        pid: run.pid,
        start: None,
    };
    let mut ended =
        || (!pid.is_alive()).then(|| Failure::Failed(format!("kftray up (pid {}) ended", run.pid)));
    // Without --wait, listening is enough, as for `up --detach`.
    let patience = args.timeout.unwrap_or(detach::WAIT);
    let ready = if args.wait {
        detach::wait_ready(home, run, patience, &wanted, &mut ended)
    } else {
        detach::wait_for(home, run, LISTED, &wanted, &|_| true, &mut ended)
    };
    let (log, _) =
        crate::state::open_log(home, &run.project).map_err(|e| Failure::Usage(e.to_string()))?;
    match ready {
        Ok(seen) => {
            detach::print(&seen, run, args.output, &log);
            Ok(())
        }
        Err(Waited::Ended(failure)) => Err(failure),
        Err(Waited::NotReady(seen)) => {
            detach::print(&seen, run, args.output, &log);
            detach::say_not_ready(&seen, patience);
            Err(Failure::Said(Code::Failed))
        }
    }
}

/// How long the run may take to list the forwards it was asked to add.
const LISTED: Duration = Duration::from_secs(10);

/// The forward names (or `ports = "all"` aliases) of the selection, as `up` would make it
/// from the local files; a name they do not have is an error here, before the run is told.
fn names_of(path: &Path, args: &Args, out: &Output) -> Result<Vec<String>, Failure> {
    let effective = super::super::effective::load_offline(path, out)?;
    let selection = crate::engine::desired(&effective, &args.names, &args.tags)
        .map_err(|e| Failure::Failed(e.to_string()))?;
    let mut names: Vec<String> = selection.runnable.into_keys().collect();
    names.extend(
        effective
            .all_ports
            .iter()
            .filter(|all| crate::engine::picks(&args.names, &args.tags)(all))
            .map(|all| all.alias.clone()),
    );
    Ok(names)
}
