//! `kftray up`: run the project's forwards, in the foreground or detached.

use super::effective::Failure;
use super::output::say;
use super::{Cli, Output, config_path};
use crate::config;
use crate::reconcile::plan;
use crate::source::GitArgs;
use crate::state::State;
use crate::up::{self, UpError, UpOptions};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
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
    #[arg(long, value_name = "DURATION", requires = "git", value_parser = interval)]
    pub interval: Option<Duration>,
}

/// How `--detach` hands the repository URL to the background process: in its environment,
/// which other users cannot read, rather than on its command line, which they can.
const GIT_URL_ENV: &str = "KFTRAY_GIT_URL";

fn interval(text: &str) -> Result<Duration, String> {
    match config::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("the interval must be more than 0".into()),
        other => other,
    }
}

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

pub(super) fn run(cli: &Cli, args: &Args, out: &Output) -> ExitCode {
    let path = match (config_path(cli, None), &args.git) {
        (Ok(path), _) => path,
        // A repository alone will do: the project is this folder.
        (Err(_), Some(_)) => PathBuf::from(config::FILE_NAME),
        (Err(message), None) => {
            out.error(&message);
            return ExitCode::from(2);
        }
    };
    if let Some(url) = &args.git
        && let Ok(parsed) = crate::source::git::RepoUrl::parse(url, Path::new("."))
        && !parsed.is_ssh()
        && parsed.username.is_some()
    {
        eprintln!(
            "warning: a token in the URL can be read by other users of this machine (ps, shell \
             history); prefer KFTRAY_GIT_TOKEN or `kftray auth login`"
        );
    }
    let Some(home) = State::default_home() else {
        out.error("cannot find a home directory for kftray's state; set KFTRAY_HOME");
        return ExitCode::from(2);
    };
    if args.dry_run {
        return dry_run(&path, args, out);
    }
    if args.detach {
        return detach(cli, &path, &home, args, out);
    }
    up::raise_open_files();
    up::keep_freed_memory();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            out.error(&format!("cannot start the runtime: {e}"));
            return ExitCode::from(2);
        }
    };
    let options = UpOptions {
        config: path,
        names: args.names.clone(),
        tags: args.tags.clone(),
        home,
        live: !out.quiet && std::io::stdout().is_terminal(),
        git: args.git(),
        color: out.color,
    };
    let quiet = out.quiet;
    let result = runtime.block_on(up::run(options, &|line: &str| {
        if !quiet {
            say(&format!("{line}\n"));
        }
    }));
    // Connections still draining are cut here rather than holding the exit.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(UpError::Config(diagnostics)) => {
            out.diagnostics(&diagnostics);
            ExitCode::from(1)
        }
        Err(UpError::Git(message)) => {
            out.error(&crate::source::git::redact(&message));
            ExitCode::from(1)
        }
        Err(e) => {
            out.error(&e.to_string());
            ExitCode::from(1)
        }
    }
}

fn dry_run(path: &Path, args: &Args, out: &Output) -> ExitCode {
    let effective = match super::effective::load(path, args.git(), out) {
        Ok(effective) => effective,
        Err(Failure::Config(diagnostics)) => {
            out.diagnostics(&diagnostics);
            return ExitCode::from(1);
        }
        Err(Failure::Other(message)) => {
            out.error(&message);
            return ExitCode::from(1);
        }
    };
    match up::desired(&effective, &args.names, &args.tags) {
        Ok(selection) => {
            say(&plan(&selection.runnable, &BTreeMap::new()).to_string());
            ExitCode::SUCCESS
        }
        Err(message) => {
            out.error(&message);
            ExitCode::from(1)
        }
    }
}

/// Starts `kftray up` again as a background process of its own (its own process group, so
/// the terminal's Ctrl-C does not reach it; output to a log file), then waits until that
/// run reports its forwards listening, or dies.
fn detach(cli: &Cli, path: &Path, home: &Path, args: &Args, out: &Output) -> ExitCode {
    use std::os::unix::process::CommandExt;
    const STARTUP: Duration = Duration::from_secs(60);
    let project = up::project_of(path);
    let log = match open_log(home, &project) {
        Ok(log) => log,
        Err(e) => {
            out.error(&format!("cannot create the log file: {e}"));
            return ExitCode::from(2);
        }
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            out.error(&format!("cannot find the kftray executable: {e}"));
            return ExitCode::from(2);
        }
    };
    let mut command = std::process::Command::new(exe);
    command
        .arg("-f")
        .arg(path)
        .arg("--color")
        .arg("never")
        .arg("up");
    command.args(&args.names);
    for tag in &args.tags {
        command.arg("--tag").arg(tag);
    }
    if let Some(url) = &args.git {
        command.env(GIT_URL_ENV, url);
    }
    if let Some(reference) = &args.reference {
        command.arg("--ref").arg(reference);
    }
    if let Some(path) = &args.path {
        command.arg("--path").arg(path);
    }
    if let Some(interval) = &args.interval {
        command
            .arg("--interval")
            .arg(format!("{}ms", interval.as_millis()));
    }
    if cli.verbose > 0 {
        command.arg(format!("-{}", "v".repeat(usize::from(cli.verbose))));
    }
    let stderr = match log.1.try_clone() {
        Ok(file) => file,
        Err(e) => {
            out.error(&format!("cannot share the log file: {e}"));
            return ExitCode::from(2);
        }
    };
    command
        .stdin(std::process::Stdio::null())
        .stdout(log.1)
        .stderr(stderr)
        .process_group(0);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            out.error(&format!("cannot start kftray in the background: {e}"));
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let tail = std::fs::read_to_string(&log.0).unwrap_or_default();
            eprint!("{tail}");
            out.error(&format!(
                "kftray up exited before its forwards were up ({status})"
            ));
            return ExitCode::from(1);
        }
        if let Some(code) = report_if_started(home, &project, child.id(), &log.0) {
            return code;
        }
        if started.elapsed() > STARTUP {
            out.error(&format!(
                "the forwards were not up after {}s; see {}",
                STARTUP.as_secs(),
                log.0.display()
            ));
            return ExitCode::from(1);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Once the detached run has recorded its start: prints its forwards and the exit code.
fn report_if_started(home: &Path, project: &str, pid: u32, log: &Path) -> Option<ExitCode> {
    let state = State::open(home).ok()?;
    let run = state
        .live_runs(Some(project))
        .ok()?
        .into_iter()
        .find(|r| r.pid == pid)?;
    let events = state.events(run.id, 1000).ok()?;
    if !events.iter().any(|e| e.kind == "started") {
        return None;
    }
    let forwards = state.forwards(run.id).ok()?;
    let source = state.source(run.id).ok()?;
    let rows: Vec<_> = forwards
        .iter()
        .map(|row| crate::status::ForwardStatus::new(&run, row, &source))
        .collect();
    say(&crate::status::table(&rows));
    let following = crate::status::following(&source);
    if !following.is_empty() {
        say(&following);
    }
    let failed: Vec<&str> = events
        .iter()
        .filter(|e| matches!(e.kind.as_str(), "failed" | "skipped"))
        .map(|e| e.message.as_str())
        .collect();
    say(&format!(
        "kftray is running in the background (pid {pid}, log {}); stop it with `kftray down`\n",
        log.display()
    ));
    if failed.is_empty() {
        Some(ExitCode::SUCCESS)
    } else {
        for why in failed {
            eprintln!("error: {why}");
        }
        Some(ExitCode::from(1))
    }
}

/// `$KFTRAY_HOME/logs/<project path with / as _>.log`, private to the user, appended to.
fn open_log(home: &Path, project: &str) -> std::io::Result<(PathBuf, std::fs::File)> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = home.join("logs");
    std::fs::create_dir_all(&dir)?;
    let name = crate::state::file_name_of(project);
    let path = dir.join(format!("{}.log", name.trim_start_matches('_')));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)?;
    Ok((path, file))
}
