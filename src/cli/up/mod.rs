//! `kftray up`: run the project's forwards, in the foreground or detached.

pub(super) mod detach;
mod join;
mod view;

use super::failure::{Failure, Outcome};
use super::output::say;
use super::status::Format;
use super::{Cli, Output, config_path, live_run};
use crate::config;
use crate::engine::{self, UpError, UpOptions};
use crate::reconcile::plan;
use crate::source::{GitArgs, StartError};
use crate::state::State;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;
use view::View;

#[derive(
    Debug, Clone, Default, PartialEq, Eq, clap::Args, serde::Serialize, serde::Deserialize,
)]
pub struct Args {
    /// Run only these forwards (aliases; `alias:PORT` for one port of a `ports` list).
    pub names: Vec<String>,
    /// Run only forwards with this tag (repeatable: any of them).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Print what would start, then exit.
    #[arg(long)]
    pub dry_run: bool,
    /// Return once every forward is listening (exit 0), or with the reasons some could not
    /// (exit 1); the forwards keep running in the background until `kftray down`.
    #[arg(short, long)]
    pub detach: bool,
    /// With --detach (implied): return once every forward is ready (a pod chosen and a
    /// session to it open, or its relay up), or exit 1 naming each forward that is not, and
    /// why, after --timeout. The forwards keep running either way.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits, e.g. 30s, 2m [default: 60s].
    #[arg(long, value_name = "DURATION", requires = "wait", value_parser = config::parse_duration)]
    pub timeout: Option<Duration>,
    /// With --detach or --wait, how the forwards are printed once up: `table`, or `json` (as
    /// `kftray status -o json` prints them).
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    #[serde(skip)]
    pub output: Format,
    /// Follow the team's file in this git repository (https://, ssh://, git@host:path, git://,
    /// file:// or a path); kftray.toml and kftray.local.toml here, if any, lay over it.
    /// Replaces the files' [sync].
    #[arg(long, value_name = "URL", env = GIT_URL_ENV, hide_env_values = true)]
    pub git: Option<String>,
    /// The branch, tag or commit to follow [default: the remote's default branch].
    #[arg(long = "ref", value_name = "REF", requires = "git")]
    pub reference: Option<String>,
    /// The file's path in the repository [default: kftray.toml].
    #[arg(long, value_name = "PATH", requires = "git")]
    pub path: Option<PathBuf>,
    /// How often to fetch, e.g. 30s, 5m [default: 60s].
    #[arg(long, value_name = "DURATION", requires = "git", value_parser = config::parse_duration)]
    pub interval: Option<Duration>,
    /// Set by `--detach` on the background run it starts (see `detach::FROM_PARENT`).
    #[arg(long = "from-parent", hide = true)]
    #[serde(skip)]
    pub from_parent: bool,
}

/// The repository URL may come from the environment, which other users cannot read, rather
/// than the command line, which they can.
const GIT_URL_ENV: &str = "KFTRAY_GIT_URL";

impl Args {
    fn git(&self) -> Option<GitArgs> {
        Some(GitArgs {
            repo: self.git.clone()?,
            reference: self.reference.clone(),
            path: self.path.clone(),
            interval: self.interval,
        })
    }
}

pub(super) fn run(cli: &Cli, args: &Args, out: &Output) -> Outcome {
    let from_parent;
    let args = if args.from_parent {
        from_parent = detach::args_from_parent()?;
        &from_parent
    } else {
        args
    };
    let path = match (config_path(cli, None), &args.git) {
        (Ok(path), _) => path,
        // A repository alone will do: the project is this folder.
        (Err(_), Some(_)) => PathBuf::from(config::FILE_NAME),
        (Err(no_project), None) => return Err(no_project.into()),
    };
    if let Some(url) = &args.git
        && let Ok(parsed) = crate::source::git::RepoUrl::parse(url, Path::new("."))
        && !parsed.is_ssh()
        && parsed.username.is_some()
    {
        out.warning(
            "a token in the URL can be read by other users of this machine (ps, shell \
             history); prefer KFTRAY_GIT_TOKEN or `kftray auth login`",
        );
    }
    let home = State::default_home().ok_or_else(|| {
        Failure::Usage("cannot find a home directory for kftray's state; set KFTRAY_HOME".into())
    })?;
    if args.dry_run {
        return dry_run(&path, args, out);
    }
    // A second `up` of a project that is up changes that run instead of starting another.
    if !args.from_parent
        && let Some(run) = live_run(&home, &path)?
    {
        return join::join(&path, &home, args, &run, out);
    }
    if args.detach || args.wait {
        return detach::detach(cli, &path, &home, args);
    }
    if args.output != Format::Table {
        return Err(Failure::Usage(
            "--output is for --detach or --wait: in the foreground, `kftray status -o json` \
             from another terminal tells the same"
                .into(),
        ));
    }
    engine::raise_open_files();
    engine::keep_freed_memory();
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::Usage(format!("cannot start the runtime: {e}")))?;
    let mut view = View::new(
        out.quiet,
        !out.quiet && std::io::stdout().is_terminal(),
        crate::state::project_of(&path),
        path.display().to_string(),
    );
    let options = UpOptions {
        config: path,
        names: args.names.clone(),
        tags: args.tags.clone(),
        home,
        git: args.git(),
        color: out.color,
    };
    let result = runtime.block_on(engine::run(options, &mut view));
    // Connections still draining are cut here rather than holding the exit.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result.map_err(|e| match e {
        UpError::Start(StartError::Config(diagnostics)) => Failure::Config(diagnostics),
        other => Failure::Failed(other.to_string()),
    })
}

fn dry_run(path: &Path, args: &Args, out: &Output) -> Outcome {
    let effective = super::effective::load(path, args.git(), out)?;
    let effective = super::effective::expanded(effective, &args.names, &args.tags, out);
    let selection = engine::desired(&effective, &args.names, &args.tags)
        .map_err(|why| Failure::Failed(why.to_string()))?;
    say(&plan(&selection.runnable, &BTreeMap::new()).to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{Cli, Command};
    use clap::Parser;

    #[test]
    fn the_background_run_gets_every_argument_of_up_as_parsed() {
        let cli = Cli::try_parse_from([
            "kftray",
            "up",
            "web",
            "db:5432",
            "--tag",
            "team",
            "--git",
            "https://git.test/t.git",
            "--ref",
            "main",
            "--path",
            "ops/kftray.toml",
            "--interval",
            "90s",
            "--detach",
        ])
        .unwrap();
        let Command::Up(args) = cli.command else {
            panic!("not up");
        };
        let json = serde_json::to_string(&args).unwrap();
        let back: super::Args = serde_json::from_str(&json).unwrap();
        assert_eq!(back, args);
    }
}
