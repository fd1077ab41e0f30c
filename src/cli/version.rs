//! What `-V` and `--version` say: enough in a bug report to know which build it was, which
//! relay it asks clusters for, and which state files it reads.

use std::sync::LazyLock;

/// `kftray 0.1.0 (1a2b3c4d5e6f)`: the version and the commit it was built from.
pub(super) const SHORT: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("KFTRAY_COMMIT"), ")");

/// The short line, then what this build speaks to clusters and to its own state.
pub(super) static LONG: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{SHORT}\nrelay image: {}\nrelay protocol: {}\nstate schema: {}",
        crate::relay::DEFAULT_IMAGE,
        kftray_relay::protocol::VERSION,
        crate::state::SCHEMA_VERSION,
    )
});
