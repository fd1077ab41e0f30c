//! kftray-helper: the few privileged jobs an unprivileged `kftray up` cannot do itself.
//!
//! It does three things and nothing else: keeps host-name entries in a marked kftray block
//! of the hosts file ([`block`], written by `hosts_file`), adds loopback aliases on macOS's lo0
//! (`alias`), and binds low ports on loopback addresses, handing the bound socket back over
//! the unix socket as SCM_RIGHTS (`ports`).
//!
//! The shape: a long-running service on a root-owned unix socket ([`server`]) and one
//! connection per kftray run ([`client`]). What a run asked for belongs to its connection,
//! and goes when the connection closes, however the run ended: stopped, crashed, killed -9.
//! A starting helper empties the block, as no connection can own anything yet; that also
//! cleans up after a helper that crashed. So entries live exactly as long as their run, with
//! no pid files to trust or reap.
//!
//! Why not `sudo` once per change: a hot reload that adds a name would prompt for a password
//! in the middle of a run, and nothing would remove the entries of a run that crashed. Why
//! pass sockets rather than forward through the helper: the helper binds and steps aside,
//! so no traffic ever runs through a root process.
//!
//! The wire format is in [`protocol`]; what names and addresses are accepted in [`names`].

pub mod block;
pub mod client;
pub mod names;
pub mod protocol;
#[cfg(unix)]
pub mod server;

#[cfg(unix)]
mod alias;
#[cfg(unix)]
mod claims;
#[cfg(unix)]
mod hosts_file;
#[cfg(unix)]
mod ports;

pub use client::{HelperClient, HelperError, default_socket};
pub use protocol::{Entry, PROTOCOL, VERSION};
#[cfg(unix)]
pub use server::{ServeOptions, serve};
