//! The command line: clap types and one module per subcommand. Each subcommand calls the
//! library (`crate::config`) and only decides what to print and which exit code to return.

mod add;
mod auth;
mod child;
mod completions;
mod config;
mod down;
mod editing;
mod effective;
mod env;
mod exec;
mod export;
mod failure;
mod import;
mod init;
mod logs;
mod man;
mod mcp;
mod output;
mod picked;
mod project;
mod proxy;
mod rm;
mod schema;
mod status;
mod up;
mod validate;
mod version;

pub use output::Output;
pub(crate) use project::{config_path, live_run, load_effective, runs_to_read};

use clap::{Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

/// Kubernetes port-forwards as code: one kftray.toml, every forward up and kept alive.
#[derive(Debug, Parser)]
#[command(
    name = "kftray",
    version = version::SHORT,
    long_version = version::LONG.as_str(),
    about,
    long_about = None,
    propagate_version = true
)]
pub struct Cli {
    /// The configuration file. Default: kftray.toml in the current directory or the nearest
    /// parent that has one.
    #[arg(short = 'f', long = "file", global = true, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Say more (repeat for even more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// When to colour the output (NO_COLOR and a non-terminal output mean never, in auto).
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto, global = true, value_name = "WHEN")]
    pub color: ColorWhen,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// When output is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always, even into a pipe or a file.
    Always,
    /// Never.
    Never,
}

/// kftray's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the project's forwards and keep them up (Ctrl-C stops them).
    Up(up::Args),
    /// Show the running forwards.
    #[command(visible_alias = "ps")]
    Status(status::Args),
    /// Stop the project's running forwards, from any terminal.
    Down(down::Args),
    /// Print the running forwards' addresses as environment variables
    /// (KFTRAY_<ALIAS>_ADDR, _HOST, _PORT), e.g. for `eval "$(kftray env)"`.
    Env(env::Args),
    /// Run a command with the project's forwards ready and their addresses in its
    /// environment (as `kftray env` names them); what it started stops when it ends.
    Exec(exec::Args),
    /// Serve a SOCKS5 and/or HTTP proxy into a cluster until Ctrl-C: any service or
    /// cluster-only host by its in-cluster name, through kftray's relay pod.
    Proxy(proxy::Args),
    /// Print the run's events for a forward (`logs ALIAS`), or the HTTP traffic it logged
    /// (`logs http ALIAS`, with `http_log` on).
    Logs(logs::Args),
    /// Check a kftray.toml (and its kftray.local.toml) without touching any cluster.
    Validate(validate::Args),
    /// Print the effective configuration: every forward with every default applied.
    Config(config::Args),
    /// Write a commented starter kftray.toml (never overwrites a file).
    Init(init::Args),
    /// Add a forward to kftray.toml, keeping the rest of the file as it is.
    Add(Box<add::Args>),
    /// Remove forwards from kftray.toml (and kftray.local.toml).
    #[command(visible_alias = "remove")]
    Rm(rm::Args),
    /// Import forwards from kftray's JSON export or from a cluster's annotated services.
    Import(import::Args),
    /// Print the configuration as kftray's JSON (for the kftray app) or as one kftray.toml.
    Export(export::Args),
    /// Print the JSON Schema of kftray.toml (for editors, via a `#:schema` line).
    Schema,
    /// Print a shell completion script.
    Completions(completions::Args),
    /// Print the man page (roff).
    Man,
    /// Tokens for git servers, kept in the OS keyring (login, logout, status).
    Auth(auth::Args),
    /// Serve the Model Context Protocol on stdio, so that an AI agent can see and manage
    /// this project's forwards (status, validate, up, down, add, rm, events, http_logs).
    Mcp,
}

/// Parses `args` and runs the command; returns the process exit code (0 ok, 1 the
/// configuration has problems, 2 usage or I/O error).
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not failures.
            return if e.use_stderr() {
                failure::Code::Usage.into()
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let out = Output::new(cli.color, cli.quiet, cli.verbose);
    init_logs(cli.verbose, cli.quiet);
    // Said before anything connects, by every command: later a bad value could only be
    // taken for the default.
    if let Err(why) = crate::transport::FirstChoice::from_env() {
        return failure::exit(Err(failure::Failure::Usage(why)), &out);
    }
    let outcome = match &cli.command {
        Command::Up(args) => up::run(&cli, args, &out),
        Command::Status(args) => status::run(&cli, args, &out),
        Command::Down(args) => down::run(&cli, args, &out),
        Command::Env(args) => env::run(&cli, args, &out),
        Command::Exec(args) => exec::run(&cli, args, &out),
        Command::Logs(args) => logs::run(&cli, args),
        Command::Proxy(args) => proxy::run(&cli, args, &out),
        Command::Validate(args) => validate::run(&cli, args, &out),
        Command::Config(args) => config::run(&cli, args, &out),
        Command::Init(args) => init::run(&cli, args, &out),
        Command::Add(args) => add::run(&cli, args, &out),
        Command::Rm(args) => rm::run(&cli, args, &out),
        Command::Import(args) => import::run(&cli, args, &out),
        Command::Export(args) => export::run(&cli, args, &out),
        Command::Schema => schema::run(),
        Command::Completions(args) => completions::run(args),
        Command::Man => man::run(),
        Command::Auth(args) => auth::run(&cli, args),
        Command::Mcp => mcp::run(&cli),
    };
    failure::exit(outcome, &out)
}

/// Logs go to stderr: RUST_LOG when set, else by -v (kftray's own debug lines at -v,
/// everything's at -vv); only errors with -q. By default kube's own warnings are left out:
/// each is also a forward's state line in kftray's words (a watch refused, a connection
/// lost), while kube's repeats it every retry with the whole response in Debug form.
fn init_logs(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn,kube_client=error,kube_runtime=error",
        (false, 1) => "warn,kftray=debug,kftray_spdy=debug",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// The clap command, for completions and the man page.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
