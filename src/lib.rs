//! kftray: Kubernetes port-forwards declared in `kftray.toml`.
//!
//! kftray is a command-line tool first. Its library face is what another tool can build on:
//! [`config`] reads, layers and checks a `kftray.toml` offline with pinpoint diagnostics,
//! into the [`target`] vocabulary, and [`cli`] runs the command line. The modules of the
//! data path (source → config → plan → engine → forward/transport → state) are public only
//! so that the integration tests and benchmarks drive them through real sockets; they are
//! hidden from the documentation and may change with any release.

#![warn(unreachable_pub)]
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod api_error;
pub mod cli;
pub mod config;
pub mod target;

mod backoff;
mod error_chain;
mod publish;

#[doc(hidden)]
pub mod cluster;
#[doc(hidden)]
pub mod edit;
#[doc(hidden)]
pub mod engine;
#[doc(hidden)]
pub mod forward;
#[doc(hidden)]
pub mod hosts;
#[doc(hidden)]
pub mod interop;
#[doc(hidden)]
pub mod reconcile;
#[doc(hidden)]
pub mod relay;
#[doc(hidden)]
pub mod resolve;
#[doc(hidden)]
pub mod source;
#[doc(hidden)]
pub mod state;
#[doc(hidden)]
pub mod transport;
