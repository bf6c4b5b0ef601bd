//! The transactional outbox (migration 0007): `record_events` writes one row per accepted
//! event in its own transaction — committing the event is the acknowledgement — and the
//! serving layer's relay (`app::stream`) publishes the rows afterwards and marks them sent.
//! A row stays unsent until its publication was confirmed, so nothing acknowledged is lost
//! while the stream is down; a row published twice (a relay killed between publishing and
//! marking) is dropped by the stream's dedupe on `msg_id`.

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

use super::{Backend, Store, StoreResult, WriteTx};
use crate::domain::Millis;

/// An accepted event as the stream carries it (JSON in the outbox and on the wire).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamEvent {
    pub profile_id: String,
    /// The profile's country when the event was accepted: what trending counts it under.
    pub country: Option<String>,
    pub title_id: String,
    /// `EventKind::as_str` (PLAY, COMPLETE, THUMBS_DOWN, …).
    pub kind: String,
    pub value: Option<f64>,
    pub occurred_at: Millis,
    pub client_event_id: String,
}

impl StreamEvent {
    /// The stream's dedupe id: client event ids are unique per profile only.
    pub fn msg_id(&self) -> String {
        format!("{}/{}", self.profile_id, self.client_event_id)
    }
}

/// One unsent outbox row.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub msg_id: String,
    /// `StreamEvent` as JSON.
    pub payload: String,
}

/// Rows claimed for publication. On PostgreSQL they stay locked (`FOR UPDATE SKIP LOCKED`)
/// until `sent` or drop, so two replicas' relays publish disjoint batches; SQLite has one
/// writer process, and its rows are read without holding its single write lock while they
/// are published.
pub struct OutboxBatch<'a> {
    store: &'a Store,
    tx: Option<WriteTx>,
    pub rows: Vec<OutboxRow>,
}

impl OutboxBatch<'_> {
    /// Marks the rows `ids` (published) sent at `at`, and releases the others for the next
    /// claim.
    pub async fn sent(self, ids: &[i64], at: Millis) -> StoreResult<()> {
        let OutboxBatch { store, tx, .. } = self;
        let mut tx = match tx {
            Some(tx) => tx,
            None => store.begin_write().await?,
        };
        for chunk in ids.chunks(500) {
            let list = chunk
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            // Ids are integers we read ourselves: nothing a client wrote reaches this text.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE outbox SET sent_at = $1 WHERE id IN ({list})"
            )))
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }
}

/// Writes the outbox rows of `events` in the caller's (event) transaction.
pub(super) async fn enqueue(
    conn: &mut AnyConnection,
    events: &[StreamEvent],
    at: Millis,
) -> StoreResult<()> {
    for e in events {
        let payload = serde_json::to_string(e)?;
        sqlx::query("INSERT INTO outbox (msg_id, payload, created_at) VALUES ($1, $2, $3)")
            .bind(e.msg_id())
            .bind(payload)
            .bind(at)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

fn row_from(r: &sqlx::any::AnyRow) -> StoreResult<OutboxRow> {
    Ok(OutboxRow {
        id: r.try_get("id")?,
        msg_id: r.try_get("msg_id")?,
        payload: r.try_get("payload")?,
    })
}

impl Store {
    /// The oldest unsent rows, at most `limit`, claimed for publication.
    pub async fn outbox_claim(&self, limit: i64) -> StoreResult<OutboxBatch<'_>> {
        match self.backend {
            Backend::Postgres => {
                let mut tx = self.begin_write().await?;
                let rows = sqlx::query(
                    "SELECT id, msg_id, payload FROM outbox WHERE sent_at IS NULL \
                     ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                )
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
                let rows = rows.iter().map(row_from).collect::<StoreResult<_>>()?;
                Ok(OutboxBatch {
                    store: self,
                    tx: Some(tx),
                    rows,
                })
            }
            Backend::Sqlite => {
                let rows = sqlx::query(
                    "SELECT id, msg_id, payload FROM outbox WHERE sent_at IS NULL \
                     ORDER BY id LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                let rows = rows.iter().map(row_from).collect::<StoreResult<_>>()?;
                Ok(OutboxBatch {
                    store: self,
                    tx: None,
                    rows,
                })
            }
        }
    }

    /// How many rows wait for publication.
    pub async fn outbox_unsent(&self) -> StoreResult<i64> {
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL")
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?,
        )
    }

    /// Forgets rows sent before `before` (the stream has them; the events table keeps the
    /// events).
    pub async fn outbox_purge(&self, before: Millis) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < $1")
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }
}
