//! What a run records as it goes: each forward's row, how it follows its source, and the
//! event log. The runs themselves (begin, end, the dead closed) are the parent's.

use super::rows::{Event, EventKind, ForwardRow, Overrides, SourceRow};
use super::{RunId, State, StateError};
use rusqlite::{Connection, OptionalExtension, params};

impl State {
    /// Inserts or replaces what is known of one forward of a run.
    pub fn put_forward(&self, run: RunId, row: &ForwardRow) -> Result<(), StateError> {
        Ok(put_forward(&self.conn, run, row)?)
    }

    /// Writes many rows in one transaction: the live view's periodic flush.
    pub fn put_forwards(&mut self, run: RunId, rows: &[ForwardRow]) -> Result<(), StateError> {
        let tx = self.conn.transaction()?;
        for row in rows {
            put_forward(&tx, run, row)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// What other terminals changed of a run's selection (see [`Overrides`]).
    pub fn overrides(&self, run: RunId) -> Result<Overrides, StateError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT name, wanted FROM run_overrides WHERE run_id = ?1 ORDER BY name",
        )?;
        let mut overrides = Overrides::default();
        for row in stmt.query_map([run], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?))
        })? {
            let (name, wanted) = row?;
            if wanted {
                overrides.added.push(name);
            } else {
                overrides.held.push(name);
            }
        }
        Ok(overrides)
    }

    /// Holds these forwards of the run down (or, `wanted`, adds them to it); a name held
    /// and then wanted is simply released.
    pub fn override_forwards(
        &mut self,
        run: RunId,
        names: &[String],
        wanted: bool,
    ) -> Result<(), StateError> {
        let tx = self.conn.transaction()?;
        for name in names {
            if wanted {
                // Bringing back `api` releases `api:80` and `api:443` too.
                tx.execute(
                    "DELETE FROM run_overrides WHERE run_id = ?1 AND wanted = 0
                     AND (name = ?2 OR substr(name, 1, length(?2) + 1) = ?2 || ':')",
                    params![run, name],
                )?;
            }
            tx.execute(
                "INSERT INTO run_overrides (run_id, name, wanted) VALUES (?1, ?2, ?3)
                 ON CONFLICT (run_id, name) DO UPDATE SET wanted = excluded.wanted",
                params![run, name, wanted],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Releases every forward held down in the run; the names of those that were.
    pub fn release_held(&mut self, run: RunId) -> Result<Vec<String>, StateError> {
        let tx = self.conn.transaction()?;
        let names = tx
            .prepare("SELECT name FROM run_overrides WHERE run_id = ?1 AND wanted = 0")?
            .query_map([run], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        tx.execute(
            "DELETE FROM run_overrides WHERE run_id = ?1 AND wanted = 0",
            [run],
        )?;
        tx.commit()?;
        Ok(names)
    }

    pub fn remove_forward(&self, run: RunId, name: &str) -> Result<(), StateError> {
        self.conn.execute(
            "DELETE FROM forwards WHERE run_id = ?1 AND name = ?2",
            params![run, name],
        )?;
        Ok(())
    }

    pub fn forwards(&self, run: RunId) -> Result<Vec<ForwardRow>, StateError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT name, local_address, target, state, pod, connections, bytes_in, bytes_out,
                    since, last_error
             FROM forwards WHERE run_id = ?1 ORDER BY name",
        )?;
        let rows = stmt.query_map([run], |r| {
            Ok(ForwardRow {
                name: r.get(0)?,
                local_address: r.get(1)?,
                target: r.get(2)?,
                state: r.get(3)?,
                pod: r.get(4)?,
                connections: r.get(5)?,
                bytes_in: r.get(6)?,
                bytes_out: r.get(7)?,
                since_ms: r.get(8)?,
                last_error: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records how the run follows its source (replacing what was recorded before).
    pub fn put_source(&self, run: RunId, source: &SourceRow) -> Result<(), StateError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO run_sources (run_id, git_repo, git_ref, git_path,
                    git_commit, git_synced_at, git_sync_error, git_sync_error_at,
                    git_rejected_commit, git_rejected_error, reloaded_at, reload_error,
                    reload_error_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                run,
                source.git_repo,
                source.git_ref,
                source.git_path,
                source.git_commit,
                source.git_synced_at_ms,
                source.git_sync_error,
                source.git_sync_error_at_ms,
                source.git_rejected_commit,
                source.git_rejected_error,
                source.reloaded_at_ms,
                source.reload_error,
                source.reload_error_at_ms,
            ])?;
        Ok(())
    }

    /// How a run follows its source; empty for a run that recorded nothing.
    pub fn source(&self, run: RunId) -> Result<SourceRow, StateError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT git_repo, git_ref, git_path, git_commit, git_synced_at, git_sync_error,
                    git_sync_error_at, git_rejected_commit, git_rejected_error, reloaded_at,
                    reload_error, reload_error_at
             FROM run_sources WHERE run_id = ?1",
        )?;
        let found = stmt
            .query_row([run], |r| {
                Ok(SourceRow {
                    git_repo: r.get(0)?,
                    git_ref: r.get(1)?,
                    git_path: r.get(2)?,
                    git_commit: r.get(3)?,
                    git_synced_at_ms: r.get(4)?,
                    git_sync_error: r.get(5)?,
                    git_sync_error_at_ms: r.get(6)?,
                    git_rejected_commit: r.get(7)?,
                    git_rejected_error: r.get(8)?,
                    reloaded_at_ms: r.get(9)?,
                    reload_error: r.get(10)?,
                    reload_error_at_ms: r.get(11)?,
                })
            })
            .optional()?;
        Ok(found.unwrap_or_default())
    }

    pub fn record_event(
        &self,
        run: RunId,
        forward: Option<&str>,
        kind: EventKind,
        message: &str,
        at_ms: i64,
    ) -> Result<(), StateError> {
        self.conn.execute(
            "INSERT INTO events (run_id, at, forward, kind, message) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![run, at_ms, forward, kind, message],
        )?;
        Ok(())
    }

    /// The newest `limit` events of a run, oldest first.
    pub fn events(&self, run: RunId, limit: usize) -> Result<Vec<Event>, StateError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT at, forward, kind, message FROM
                (SELECT id, at, forward, kind, message FROM events WHERE run_id = ?1
                 ORDER BY id DESC LIMIT ?2)
             ORDER BY id",
        )?;
        let rows = stmt.query_map(params![run, limit as i64], |r| {
            Ok(Event {
                at_ms: r.get(0)?,
                forward: r.get(1)?,
                kind: r.get(2)?,
                message: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn put_forward(conn: &Connection, run: RunId, row: &ForwardRow) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO forwards (run_id, name, local_address, target, state, pod, connections,
                               bytes_in, bytes_out, since, last_error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (run_id, name) DO UPDATE SET
            local_address = excluded.local_address, target = excluded.target,
            state = excluded.state, pod = excluded.pod, connections = excluded.connections,
            bytes_in = excluded.bytes_in, bytes_out = excluded.bytes_out,
            since = excluded.since, last_error = excluded.last_error",
    )?
    .execute(params![
        run,
        row.name,
        row.local_address,
        row.target,
        row.state,
        row.pod,
        row.connections,
        row.bytes_in,
        row.bytes_out,
        row.since_ms,
        row.last_error
    ])?;
    Ok(())
}
