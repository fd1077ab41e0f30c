//! Runtime state shared by every kftray process on this machine: which projects have a
//! `kftray up` running, each forward's state and counters, and an event log.
//!
//! One SQLite file under `$KFTRAY_HOME` (default `~/.kftray`), in WAL mode with a busy timeout,
//! so that the `up` process writes while `status` and `down` read from other terminals.

mod files;
mod liveness;
mod migrations;
mod records;
mod rows;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use files::{PrivateFileError, file_name_of, open_log};
use files::{create_private_dir, open_private_file};
pub use liveness::ProcessId;
#[cfg(windows)]
pub(crate) use liveness::end_now;
pub use migrations::SCHEMA_VERSION;
pub use rows::{
    Event, EventKind, ForwardRow, ForwardState, Overrides, Run, SourceRow, UnknownName, project_of,
};

/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("kftray is already running for {project} (pid {pid}, since {since})")]
    AlreadyRunning {
        project: String,
        pid: u32,
        since: String,
    },
    #[error(transparent)]
    Private(#[from] PrivateFileError),
    #[error(
        "{path} is a file, not a folder, so kftray cannot keep its state there: point \
         KFTRAY_HOME at a folder (kftray creates it), or move the file away"
    )]
    NotAFolder { path: PathBuf },
    #[error(
        "the state database {path} is damaged ({detail}). It only records what kftray runs, \
         not your configuration: set it aside and kftray starts a new one: mv {path} {path}.damaged"
    )]
    Damaged { path: PathBuf, detail: String },
    #[error(
        "the state database {path} is locked by another process: find it with `fuser {path}`, \
         and stop it or wait for it to finish"
    )]
    Locked { path: PathBuf },
    #[error(
        "the state database {path} cannot be written ({detail}): make {folder} writable, or \
         point KFTRAY_HOME at a folder that is"
    )]
    ReadOnly {
        path: PathBuf,
        folder: PathBuf,
        detail: String,
    },
    #[error(
        "the disk holding the state database {path} is full: free some space (nothing \
         recorded so far is lost)"
    )]
    Full { path: PathBuf },
    #[error("state database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "the state database {path} was written by a newer kftray (schema {found}, this one knows \
         {known}): run that kftray, or set the file aside and this one starts a new one: \
         mv {path} {path}.newer"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
}

impl StateError {
    /// The error with the database's path and what to do, where SQLite said neither.
    pub fn at(self, path: &Path) -> StateError {
        use rusqlite::ErrorCode::*;
        let StateError::Sqlite(rusqlite::Error::SqliteFailure(f, detail)) = self else {
            return self;
        };
        let path = path.to_path_buf();
        let detail = detail.unwrap_or_else(|| f.to_string());
        match f.code {
            NotADatabase | DatabaseCorrupt => StateError::Damaged { path, detail },
            DatabaseBusy | DatabaseLocked => StateError::Locked { path },
            ReadOnly | CannotOpen | PermissionDenied => StateError::ReadOnly {
                folder: path.parent().map(Path::to_path_buf).unwrap_or_default(),
                path,
                detail,
            },
            DiskFull => StateError::Full { path },
            _ => StateError::Sqlite(rusqlite::Error::SqliteFailure(f, Some(detail))),
        }
    }
}

pub type RunId = i64;

pub struct State {
    conn: Connection,
    path: PathBuf,
}

impl State {
    /// The state directory: `$KFTRAY_HOME`, else `~/.kftray`.
    pub fn default_home() -> Option<PathBuf> {
        match std::env::var_os("KFTRAY_HOME") {
            Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
            _ => std::env::home_dir().map(|home| home.join(".kftray")),
        }
    }

    /// Opens (creating if needed) the state database in `home`, readable by the user alone.
    pub fn open(home: &Path) -> Result<State, StateError> {
        // KFTRAY_HOME naming a file, or a path through one.
        if let Some(file) = home
            .ancestors()
            .find(|a| a.exists())
            .filter(|a| !a.is_dir())
        {
            return Err(StateError::NotAFolder {
                path: file.to_path_buf(),
            });
        }
        create_private_dir(home)?;
        let path = Self::file_in(home);
        // SQLite gives the -wal and -shm files the main file's mode, so creating it 0600 first
        // keeps all three private.
        open_private_file(&path)?;
        Self::open_file(&path).map_err(|e| e.at(&path))
    }

    fn open_file(path: &Path) -> Result<State, StateError> {
        // Checked by open_private_file already; this closes the gap until SQLite opens it.
        let flags = rusqlite::OpenFlags::default() | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let mut conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Before anything writes: a newer kftray's database is left exactly as it is.
        migrations::refuse_newer(&conn, path)?;
        // Switching a new database to WAL takes an exclusive lock, for which SQLite does not
        // wait on its own: two processes opening a fresh database (`up` starting while
        // `status` polls) would see "database is locked". Retried here instead.
        let started = std::time::Instant::now();
        loop {
            match conn.pragma_update(None, "journal_mode", "WAL") {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy
                        && started.elapsed() < BUSY_TIMEOUT =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                other => break other?,
            }
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations::apply(&mut conn, path)?;
        Ok(State {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// The database file of `home`.
    pub fn file_in(home: &Path) -> PathBuf {
        home.join("state.db")
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a write waits for another process's transaction (up to the busy timeout) or
    /// gives up at once: a run whose writes already fail retries every second, and must not
    /// spend that second waiting.
    pub fn wait_when_busy(&self, wait: bool) -> Result<(), StateError> {
        let timeout = if wait {
            BUSY_TIMEOUT
        } else {
            Duration::from_millis(20)
        };
        Ok(self.conn.busy_timeout(timeout)?)
    }

    /// Records a new run of `project` by this process. A live run of the same project is an
    /// error; one whose process died without a word (kill -9, a crash) is closed first.
    pub fn begin_run(&mut self, project: &str, source: &str) -> Result<RunId, StateError> {
        let path = self.path.clone();
        self.insert_run(project, source).map_err(|e| e.at(&path))
    }

    fn insert_run(&mut self, project: &str, source: &str) -> Result<RunId, StateError> {
        let me = ProcessId::current();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        refuse_live_run(&tx, project)?;
        tx.execute(
            "INSERT INTO runs (project, pid, pid_start, source, started_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![project, me.pid, me.start, source, now_ms()],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(id)
    }

    /// Closes a run; its forwards stay readable as the last thing it did.
    pub fn end_run(&self, run: RunId, reason: &str) -> Result<(), StateError> {
        self.conn.execute(
            "UPDATE runs SET stopped_at = ?2, exit_reason = ?3 WHERE id = ?1 AND stopped_at IS NULL",
            params![run, now_ms(), reason],
        )?;
        mark_stopped(&self.conn, run)?;
        Ok(())
    }

    /// Fails with `AlreadyRunning` while a live process runs `project`, before anything is
    /// started that would clash with it (a run that died is closed instead).
    pub fn refuse_if_running(&mut self, project: &str) -> Result<(), StateError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        refuse_live_run(&tx, project)?;
        tx.commit()?;
        Ok(())
    }

    /// Closes every run whose process is gone, so that `status` never shows the forwards of a
    /// dead process as running. Returns the closed runs.
    pub fn reap_dead_runs(&mut self) -> Result<Vec<Run>, StateError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let dead = live_runs(&tx, None)?
            .into_iter()
            .filter(|(_, id)| !id.is_alive())
            .map(|(run, _)| run)
            .collect::<Vec<_>>();
        for run in &dead {
            close_dead_run(&tx, run.id)?;
        }
        tx.commit()?;
        Ok(dead)
    }

    /// The project's most recent run, live or ended.
    pub fn latest_run(&self, project: &str) -> Result<Option<Run>, StateError> {
        let run = self
            .conn
            .query_row(
                "SELECT id, project, pid, source, started_at, stopped_at, exit_reason FROM runs
                 WHERE project = ?1 ORDER BY started_at DESC, id DESC LIMIT 1",
                [project],
                |r| {
                    Ok(Run {
                        id: r.get(0)?,
                        project: r.get(1)?,
                        pid: r.get(2)?,
                        source: r.get(3)?,
                        started_at_ms: r.get(4)?,
                        stopped_at_ms: r.get(5)?,
                        exit_reason: r.get(6)?,
                    })
                },
            )
            .optional()?;
        Ok(run)
    }

    /// Live runs, of one project or of all.
    pub fn live_runs(&self, project: Option<&str>) -> Result<Vec<Run>, StateError> {
        Ok(live_runs(&self.conn, project)?
            .into_iter()
            .map(|(run, _)| run)
            .collect())
    }
}

fn live_runs(conn: &Connection, project: Option<&str>) -> rusqlite::Result<Vec<(Run, ProcessId)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, project, pid, source, started_at, pid_start FROM runs
         WHERE stopped_at IS NULL AND (?1 IS NULL OR project = ?1) ORDER BY project",
    )?;
    let rows = stmt.query_map([project], |r| {
        let run = Run {
            id: r.get(0)?,
            project: r.get(1)?,
            pid: r.get(2)?,
            source: r.get(3)?,
            started_at_ms: r.get(4)?,
            stopped_at_ms: None,
            exit_reason: None,
        };
        let id = ProcessId {
            pid: run.pid,
            start: r.get(5)?,
        };
        Ok((run, id))
    })?;
    rows.collect()
}

fn refuse_live_run(conn: &Connection, project: &str) -> Result<(), StateError> {
    let live: Option<(RunId, u32, Option<String>, i64)> = conn
        .query_row(
            "SELECT id, pid, pid_start, started_at FROM runs
             WHERE project = ?1 AND stopped_at IS NULL",
            [project],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    if let Some((id, pid, start, started_at)) = live {
        if (ProcessId { pid, start }).is_alive() {
            return Err(StateError::AlreadyRunning {
                project: project.to_string(),
                pid,
                since: format_ms(started_at),
            });
        }
        close_dead_run(conn, id)?;
    }
    Ok(())
}

fn close_dead_run(conn: &Connection, run: RunId) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE runs SET stopped_at = ?2, exit_reason = 'process died' WHERE id = ?1",
        params![run, now_ms()],
    )?;
    mark_stopped(conn, run)?;
    conn.execute(
        "INSERT INTO events (run_id, at, kind, message)
         VALUES (?1, ?2, ?3, 'the kftray process ended without stopping; cleaned up')",
        params![run, now_ms(), EventKind::Reaped],
    )?;
    Ok(())
}

fn mark_stopped(conn: &Connection, run: RunId) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE forwards SET state = ?2 WHERE run_id = ?1",
        params![run, ForwardState::Stopped],
    )
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn format_ms(ms: i64) -> String {
    let ago = (now_ms() - ms).max(0) / 1000;
    match ago {
        0..60 => format!("{ago}s ago"),
        60..3600 => format!("{}m ago", ago / 60),
        _ => format!("{}h{}m ago", ago / 3600, ago % 3600 / 60),
    }
}

#[cfg(test)]
mod tests;
