//! relay-server: the relay kftray runs in a cluster. It accepts connections on one port
//! (reached through a port-forward), reads a request naming a destination, answers with a
//! status, then carries a TCP connection or a UDP flow there; sessions carry the client's
//! heartbeat, and without one for a while the relay exits by itself. See README.md.

#![forbid(unsafe_code)]
#![warn(unreachable_pub)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod server;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = server::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("RELAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(server::main(cli))
}
