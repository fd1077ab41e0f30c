//! `kftray auth`: the token kftray sends to a git server, kept in the OS keyring. The token is
//! read from a prompt (on a terminal) or from stdin, never from the command line, and never
//! printed.

use super::failure::{Failure, Outcome};
use super::output::say;
use super::{Cli, config_path};
use crate::source::git::RepoUrl;
use crate::source::git::credentials::{
    TOKEN_ENV, delete_token, env_token, git_helpers, store_token, stored_token,
};
use std::io::{IsTerminal, Read};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: AuthCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AuthCommand {
    /// Store a token for a git host in the OS keyring (read from a prompt, or from stdin).
    Login(HostArg),
    /// Remove the host's token from the OS keyring.
    Logout(HostArg),
    /// Say where a token for the host would come from (never prints it).
    Status(HostArg),
}

#[derive(Debug, clap::Args)]
pub struct HostArg {
    /// The git server's host name, e.g. github.com [default: the host of the project's
    /// [sync] repository].
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
}

pub(super) fn run(cli: &Cli, args: &Args) -> Outcome {
    let chosen = match &args.command {
        AuthCommand::Login(h) | AuthCommand::Logout(h) | AuthCommand::Status(h) => h,
    };
    let host = host(cli, chosen)?;
    match &args.command {
        AuthCommand::Login(_) => login(&host),
        AuthCommand::Logout(_) => logout(&host),
        AuthCommand::Status(_) => {
            say(&status(&host));
            Ok(())
        }
    }
}

/// `--host`, else the host of the project's `[sync]` repository.
fn host(cli: &Cli, arg: &HostArg) -> Result<String, Failure> {
    if let Some(host) = &arg.host {
        let host = host.trim().to_ascii_lowercase();
        if host.is_empty() || host.contains(['/', '@', ' ']) {
            return Err(Failure::Usage(format!(
                "`{host}` is not a host name; write e.g. --host github.com"
            )));
        }
        return Ok(host);
    }
    let none =
        || Failure::Usage("say which git server with --host HOST (e.g. --host github.com)".into());
    let path = config_path(cli, None).map_err(|_| none())?;
    let layers = crate::config::read_local(&path).map_err(|_| none())?;
    let sync = crate::config::sync_of(&layers)
        .ok()
        .flatten()
        .ok_or_else(none)?;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    RepoUrl::parse(&sync.repo, dir)
        .ok()
        .and_then(|url| url.host)
        .ok_or_else(none)
}

fn login(host: &str) -> Outcome {
    let token = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("Token for {host}: "))
            .map_err(|e| Failure::Failed(format!("cannot read the token: {e}")))?
    } else {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::Failed(format!("cannot read the token from stdin: {e}")))?;
        text
    };
    let token = token.trim();
    if token.is_empty() {
        return Err(Failure::Failed(
            "no token given: type it at the prompt, or pipe it on stdin".into(),
        ));
    }
    if token.contains(char::is_whitespace) {
        return Err(Failure::Failed(
            "a token is one word; this has spaces or several lines".into(),
        ));
    }
    store_token(host, token).map_err(|e| Failure::Failed(e.to_string()))?;
    say(&format!("stored a token for {host} in the OS keyring\n"));
    if env_token().is_some() {
        eprintln!("note: {TOKEN_ENV} is set and is tried first");
    }
    Ok(())
}

fn logout(host: &str) -> Outcome {
    if delete_token(host).map_err(|e| Failure::Failed(e.to_string()))? {
        say(&format!(
            "removed the token for {host} from the OS keyring\n"
        ));
    } else {
        say(&format!("no token for {host} was stored\n"));
    }
    Ok(())
}

/// Where a token for `host` would come from, in the order they are tried.
fn status(host: &str) -> String {
    let env = if env_token().is_some() {
        "set (tried first)"
    } else {
        "not set"
    };
    let keyring = match stored_token(host) {
        Ok(Some(_)) => "a token is stored".to_owned(),
        Ok(None) => "no token stored".to_owned(),
        Err(why) => format!("unavailable: {why}"),
    };
    let helpers = git_helpers();
    let helpers = if helpers.is_empty() {
        "none configured".to_owned()
    } else {
        helpers.join(", ")
    };
    format!(
        "{host}\n  1. {TOKEN_ENV}: {env}\n  2. OS keyring: {keyring}\n  3. git credential helpers: {helpers}\n"
    )
}
