//! Pods: one row each in the `pods` table (added to older databases when opened). The
//! engine owns the meaning of `record` (JSON); a pod's containers are ordinary container
//! rows whose records name the pod, so a pod row holds no list that could disagree with them.

use crate::{Store, StoreError};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

const PODS_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS pods (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    created INTEGER NOT NULL,                  -- unix nanoseconds
    record  TEXT NOT NULL                      -- the engine's pod record, JSON
);
"#;

pub(crate) fn ensure_table(conn: &Connection) -> rusqlite::Result<()> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'pods')",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        conn.execute_batch(PODS_SCHEMA)?;
    }
    Ok(())
}

/// A pod as the store records it.
#[derive(Debug, Clone)]
pub struct PodRow {
    pub id: String,
    pub name: String,
    /// Unix nanoseconds.
    pub created: i64,
    pub record: String,
}

fn row_to_pod(r: &rusqlite::Row<'_>) -> rusqlite::Result<PodRow> {
    Ok(PodRow {
        id: r.get(0)?,
        name: r.get(1)?,
        created: r.get(2)?,
        record: r.get(3)?,
    })
}

impl Store {
    /// Inserts a pod row, checking the name in the same write transaction: `Ok(Err(id))`
    /// with the ID of the pod that already holds the name.
    pub fn insert_pod(&mut self, row: &PodRow) -> Result<Result<(), String>, StoreError> {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(|e| self.db_err(e))?;
        let holder: Option<String> = tx
            .query_row("SELECT id FROM pods WHERE name = ?1", [&row.name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.db_err(e))?;
        if let Some(id) = holder {
            return Ok(Err(id));
        }
        tx.execute(
            "INSERT INTO pods (id, name, created, record) VALUES (?1, ?2, ?3, ?4)",
            params![row.id, row.name, row.created, row.record],
        )
        .map_err(|e| self.db_err(e))?;
        tx.commit().map_err(|e| self.db_err(e))?;
        Ok(Ok(()))
    }

    /// Replaces a pod's record JSON; returns whether the pod exists.
    pub fn update_pod_record(&mut self, id: &str, record: &str) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE pods SET record = ?2 WHERE id = ?1",
                params![id, record],
            )
            .map_err(|e| self.db_err(e))?;
        Ok(n > 0)
    }

    /// Deletes a pod row; returns whether it existed.
    pub fn delete_pod(&mut self, id: &str) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute("DELETE FROM pods WHERE id = ?1", [id])
            .map_err(|e| self.db_err(e))?;
        Ok(n > 0)
    }

    /// The pod with this exact ID.
    pub fn pod(&self, id: &str) -> Result<Option<PodRow>, StoreError> {
        self.pod_where("id = ?1", id)
    }

    /// The pod with this exact name.
    pub fn pod_by_name(&self, name: &str) -> Result<Option<PodRow>, StoreError> {
        self.pod_where("name = ?1", name)
    }

    fn pod_where(&self, cond: &str, arg: &str) -> Result<Option<PodRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT id, name, created, record FROM pods WHERE {cond}"
            ))
            .map_err(|e| self.db_err(e))?;
        stmt.query_row([arg], row_to_pod)
            .optional()
            .map_err(|e| self.db_err(e))
    }

    /// IDs of pods starting with `prefix` (two at most: enough to tell ambiguity).
    pub fn pod_ids_with_prefix(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM pods WHERE id >= ?1 AND id < ?2 LIMIT 2")
            .map_err(|e| self.db_err(e))?;
        let upper = format!("{prefix}\u{10ffff}");
        let rows = stmt
            .query_map(params![prefix, upper], |r| r.get(0))
            .map_err(|e| self.db_err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.db_err(e))?;
        Ok(rows)
    }

    /// All pods, newest first.
    pub fn pods(&self) -> Result<Vec<PodRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, name, created, record FROM pods ORDER BY created DESC")
            .map_err(|e| self.db_err(e))?;
        let rows = stmt
            .query_map([], row_to_pod)
            .map_err(|e| self.db_err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.db_err(e))?;
        Ok(rows)
    }
}
