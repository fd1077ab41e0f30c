//! The relay's runtime: settings, the accept loop with its limits and idle exit, and one
//! module per kind of connection (listen.rs: reverse forwards, listen and attach; listen_udp.rs: their UDP kind).

mod accept;
mod listen;
mod listen_udp;
mod parked;
mod probe;
mod reply;
mod resolve;
mod session;
mod settings;
mod shared;
mod stop;
mod tcp;
mod udp;
mod user;

pub(crate) use settings::Cli;

use std::process::ExitCode;

pub(crate) async fn main(cli: Cli) -> ExitCode {
    match cli.command {
        Some(settings::Command::Probe) => probe::probe(&cli.settings).await,
        None => accept::run(cli.settings).await,
    }
}
