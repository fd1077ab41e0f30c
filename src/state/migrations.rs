//! Schema versions, applied in order and recorded in `PRAGMA user_version`. A released
//! migration is never edited: a change is a new entry.

use super::StateError;
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;

pub(super) const MIGRATIONS: &[&str] = &[
    // 1: runs, their forwards, and an event log.
    "CREATE TABLE runs (
        id          INTEGER PRIMARY KEY,
        project     TEXT NOT NULL,
        pid         INTEGER NOT NULL,
        pid_start   TEXT,
        source      TEXT NOT NULL,
        started_at  INTEGER NOT NULL,
        stopped_at  INTEGER,
        exit_reason TEXT
    );
    -- At most one live run per project, enforced by the database itself.
    CREATE UNIQUE INDEX runs_one_live ON runs (project) WHERE stopped_at IS NULL;
    CREATE TABLE forwards (
        run_id        INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        name          TEXT NOT NULL,
        local_address TEXT NOT NULL,
        target        TEXT NOT NULL,
        state         TEXT NOT NULL,
        pod           TEXT,
        connections   INTEGER NOT NULL DEFAULT 0,
        bytes_in      INTEGER NOT NULL DEFAULT 0,
        bytes_out     INTEGER NOT NULL DEFAULT 0,
        since         INTEGER NOT NULL,
        last_error    TEXT,
        PRIMARY KEY (run_id, name)
    );
    CREATE TABLE events (
        id      INTEGER PRIMARY KEY,
        run_id  INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        at      INTEGER NOT NULL,
        forward TEXT,
        kind    TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX events_by_run ON events (run_id, id);",
    // 2: where each run's configuration comes from, and how following it goes: the git
    // commit applied, one seen but rejected, the last sync and reload errors.
    "CREATE TABLE run_sources (
        run_id              INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
        git_repo            TEXT,
        git_ref             TEXT,
        git_path            TEXT,
        git_commit          TEXT,
        git_synced_at       INTEGER,
        git_sync_error      TEXT,
        git_sync_error_at   INTEGER,
        git_rejected_commit TEXT,
        git_rejected_error  TEXT,
        reloaded_at         INTEGER,
        reload_error        TEXT,
        reload_error_at     INTEGER
    );",
    // 3: what `kftray up NAMES` adds to a live run and `kftray down NAMES` holds down in it,
    // from other terminals; the run reads it every second and when signalled.
    "CREATE TABLE run_overrides (
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        name   TEXT NOT NULL,
        wanted INTEGER NOT NULL,
        PRIMARY KEY (run_id, name)
    );",
];

/// The schema version this kftray writes.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// An error for a database written by a newer kftray, which this one must not touch.
pub(super) fn refuse_newer(conn: &Connection, path: &Path) -> Result<(), StateError> {
    let known = SCHEMA_VERSION as i64;
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > known {
        return Err(StateError::TooNew {
            path: path.to_path_buf(),
            found,
            known,
        });
    }
    Ok(())
}

pub(super) fn apply(conn: &mut Connection, path: &Path) -> Result<(), StateError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Again inside the transaction: a newer kftray may have migrated it meanwhile.
    refuse_newer(&tx, path)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}
