//! Watch channels whose receivers hear of a value only when it changed.

use tokio::sync::watch;

/// Sets `value`, waking receivers only if it differs from the current one; says whether it
/// did.
pub(crate) fn publish<T: PartialEq>(tx: &watch::Sender<T>, value: T) -> bool {
    tx.send_if_modified(|now| {
        if *now == value {
            return false;
        }
        *now = value;
        true
    })
}
