//! The helper's service (Linux and macOS): arguments, privileges, signals.

use kftray::hosts::server::{ServeOptions, serve};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: kftray-helper serve [--user NAME|UID] [--socket PATH] [--hosts-file PATH]
       kftray-helper --version

Runs the privileged helper of `kftray up`, usually as root under systemd
(examples/kftray-helper@.service). --user is the one user it serves besides root
(default: the user who ran sudo). --socket defaults to $KFTRAY_HELPER_SOCKET or
/run/kftray-helper.sock, --hosts-file to $KFTRAY_HOSTS_FILE or /etc/hosts.";

pub(super) fn main() -> ExitCode {
    match run(std::env::args_os().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("kftray-helper: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<OsString>) -> Result<(), String> {
    let mut args = args.into_iter();
    match args.next().as_ref().and_then(|a| a.to_str()) {
        Some("--version" | "-V") => {
            println!("kftray-helper {}", kftray::hosts::VERSION);
            Ok(())
        }
        Some("--help" | "-h") => {
            println!("{USAGE}");
            Ok(())
        }
        Some("serve") => {
            let options = serve_options(args)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start: {e}"))?;
            runtime.block_on(async {
                let stop = stop_signal().map_err(|e| format!("cannot watch for signals: {e}"))?;
                serve(options, stop).await.map_err(|e| e.to_string())
            })
        }
        _ => Err(USAGE.into()),
    }
}

fn serve_options(mut args: impl Iterator<Item = OsString>) -> Result<ServeOptions, String> {
    let (mut user, mut socket, mut hosts_file) = (None, None, None);
    while let Some(flag) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n\n{USAGE}"))
        };
        match flag.to_str() {
            Some("--user") => user = Some(value("--user")?),
            Some("--socket") => socket = Some(PathBuf::from(value("--socket")?)),
            Some("--hosts-file") => hosts_file = Some(PathBuf::from(value("--hosts-file")?)),
            _ => return Err(format!("unknown argument {flag:?}\n\n{USAGE}")),
        }
    }
    let root = nix::unistd::geteuid().is_root();
    if !root && (socket.is_none() || hosts_file.is_none()) {
        return Err(
            "serve needs root: it writes the hosts file and binds low ports. Run it \
                    with sudo, or give both --socket and --hosts-file to try it unprivileged"
                .into(),
        );
    }
    let allowed_uid = match user {
        Some(user) => resolve_user(&user.to_string_lossy())?,
        None => match std::env::var("SUDO_UID") {
            Ok(uid) => uid
                .parse()
                .map_err(|_| format!("SUDO_UID is `{uid}`, not a uid: give --user"))?,
            Err(_) => {
                return Err(
                    "say which user to serve with --user NAME (it will not guess: \
                            SUDO_UID is not set)"
                        .into(),
                );
            }
        },
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut options = ServeOptions::new(allowed_uid);
    if let Some(socket) = socket {
        options.socket = socket;
    }
    if let Some(hosts_file) = hosts_file {
        options.hosts_file = hosts_file;
    }
    Ok(options)
}

/// A uid, or a user name looked up in the user database.
fn resolve_user(user: &str) -> Result<u32, String> {
    if let Ok(uid) = user.parse() {
        return Ok(uid);
    }
    match nix::unistd::User::from_name(user) {
        Ok(Some(found)) => Ok(found.uid.as_raw()),
        Ok(None) => Err(format!("there is no user `{user}`")),
        Err(e) => Err(format!("looking up user `{user}`: {e}")),
    }
}

/// Completes on SIGTERM (systemd's stop) or SIGINT (Ctrl-C).
fn stop_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}
