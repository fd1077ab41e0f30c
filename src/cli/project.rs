//! Which project a command is about: the kftray.toml it reads, or the run it looks at.

use super::Cli;
use super::effective;
use super::failure::Failure;
use super::output::Output;
use crate::config::FILE_NAME;
use std::path::{Path, PathBuf};

/// No project to work on here.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NoProject {
    #[error("cannot read the current directory: {source}")]
    Cwd { source: std::io::Error },
    #[error(
        "no {FILE_NAME} in {} or any parent directory; create one with `kftray init`, or name \
         one with -f FILE",
        cwd.display()
    )]
    NoFile { cwd: PathBuf },
    #[error("cannot find a home directory for kftray's state; set KFTRAY_HOME")]
    NoHome,
    #[error("{cause} (or use --all)")]
    NoneRunningHere { cause: Box<NoProject> },
}

impl From<NoProject> for Failure {
    fn from(e: NoProject) -> Failure {
        Failure::Usage(e.to_string())
    }
}

/// Where `status` and `down` look: the state home, and the project of the current folder's
/// kftray.toml (`None` with `--all`: every project).
pub(crate) fn runs_to_read(cli: &Cli, all: bool) -> Result<(PathBuf, Option<String>), NoProject> {
    let home = crate::state::State::default_home().ok_or(NoProject::NoHome)?;
    if all {
        return Ok((home, None));
    }
    match config_path(cli, None) {
        Ok(path) => Ok((home, Some(crate::state::project_of(&path)))),
        // A folder without kftray.toml may still run `kftray up --git`: its nearest one.
        Err(cause) => running_here(&home)
            .map(|project| (home, Some(project)))
            .ok_or_else(|| NoProject::NoneRunningHere {
                cause: Box::new(cause),
            }),
    }
}

/// The project of a live run in the current folder or the nearest parent that has one.
fn running_here(home: &Path) -> Option<String> {
    let cwd = std::env::current_dir().ok()?;
    let cwd = std::fs::canonicalize(&cwd).unwrap_or(cwd);
    let runs = crate::state::State::open(home).ok()?.live_runs(None).ok()?;
    runs.into_iter()
        .map(|run| run.project)
        .filter(|project| cwd.starts_with(project))
        .max_by_key(String::len)
}

/// The effective configuration of the project, or why not (no file, problems in it).
pub(crate) fn load_effective(cli: &Cli, out: &Output) -> Result<crate::config::Effective, Failure> {
    let path = config_path(cli, None)?;
    effective::load_offline(&path, out)
}

/// The file to read: an explicit path, else `-f`, else the nearest kftray.toml.
pub(crate) fn config_path(cli: &Cli, explicit: Option<&Path>) -> Result<PathBuf, NoProject> {
    if let Some(path) = explicit.or(cli.file.as_deref()) {
        return Ok(path.to_path_buf());
    }
    let cwd = std::env::current_dir().map_err(|source| NoProject::Cwd { source })?;
    let found =
        crate::config::discover(&cwd).ok_or_else(|| NoProject::NoFile { cwd: cwd.clone() })?;
    // Shown relative to where the user is, as git shows paths.
    Ok(found
        .strip_prefix(&cwd)
        .map(Path::to_path_buf)
        .unwrap_or(found))
}

/// The live run of the project of `path`, if any (dead ones are cleaned up first).
pub(crate) fn live_run(home: &Path, path: &Path) -> Result<Option<crate::state::Run>, Failure> {
    use crate::state::State;
    let project = crate::state::project_of(path);
    let read = State::open(home).and_then(|mut state| {
        state.reap_dead_runs()?;
        state.live_runs(Some(&project))
    });
    let runs = read.map_err(|e| Failure::Usage(e.at(&State::file_in(home)).to_string()))?;
    Ok(runs.into_iter().next())
}
