//! Edits of one project by several kftray processes at once (`add` in a script's loop,
//! `import` while `rm` runs) take turns: each holds a lock on the project's folder from
//! reading the files to writing them, so none writes over what another just added. An
//! editor does not take the lock; `write_atomically` still refuses to write over its save.

use std::fs::{File, TryLockError};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longer than any edit takes; past it, the edit goes ahead without its turn (the check
/// before writing still holds) rather than wait on a process that hangs.
const PATIENCE: Duration = Duration::from_secs(10);

/// The turn to edit the files beside `path`, held until the returned handle is dropped.
/// `None`: the folder cannot be locked here, or another edit held it too long.
pub(super) fn take(path: &Path) -> Option<Arc<File>> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let folder = File::open(dir).ok()?;
    let started = Instant::now();
    loop {
        match folder.try_lock() {
            Ok(()) => return Some(Arc::new(folder)),
            Err(TryLockError::WouldBlock) if started.elapsed() < PATIENCE => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                tracing::debug!(folder = %dir.display(), error = %e, "editing without a turn");
                return None;
            }
        }
    }
}
