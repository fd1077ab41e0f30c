//! kftray-helper: the privileged helper of `kftray up` (host-name entries, loopback aliases,
//! low ports). See `kftray::hosts` for what it does and why it is a service.
//!
//! ```text
//! kftray-helper serve [--user NAME|UID] [--socket PATH] [--hosts-file PATH]
//! kftray-helper --version
//! ```

#[cfg(unix)]
#[path = "kftray_helper/service.rs"]
mod service;

use std::process::ExitCode;

#[cfg(unix)]
fn main() -> ExitCode {
    service::main()
}

/// Windows needs a helper only for host-name entries, which kftray does not make there
/// (`kftray::hosts::HelperError::Unsupported` says what to do instead).
#[cfg(not(unix))]
fn main() -> ExitCode {
    eprintln!("kftray-helper: runs on Linux and macOS only");
    ExitCode::FAILURE
}
