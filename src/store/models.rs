//! The model registry: one row per training run; exactly one may be active.

use anyhow::{Result, anyhow};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreResult};
use crate::domain::Millis;

#[derive(Debug, Clone, PartialEq)]
pub struct ModelRecord {
    pub version: String,
    pub created_at: Millis,
    pub trained_at: Millis,
    pub interactions: i64,
    pub data_fingerprint: String,
    /// Training parameters, JSON.
    pub params: String,
    /// Evaluation figures, JSON.
    pub metrics: String,
    /// Artifact file, relative to the data directory.
    pub artifact_path: String,
    pub active: bool,
}

fn record_from_row(r: &AnyRow) -> Result<ModelRecord> {
    Ok(ModelRecord {
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        trained_at: r.try_get("trained_at")?,
        interactions: r.try_get("interactions")?,
        data_fingerprint: r.try_get("data_fingerprint")?,
        params: r.try_get("params")?,
        metrics: r.try_get("metrics")?,
        artifact_path: r.try_get("artifact_path")?,
        active: r.try_get::<i64, _>("active")? != 0,
    })
}

const COLUMNS: &str = "version, created_at, trained_at, interactions, data_fingerprint, params, metrics, artifact_path, active";

impl Store {
    /// Registers a trained model and makes it the active one.
    pub async fn register_model(&self, m: &ModelRecord) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO model_versions (version, created_at, trained_at, interactions, data_fingerprint, params, metrics, artifact_path, active) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0)",
        )
        .bind(m.version.as_str())
        .bind(m.created_at)
        .bind(m.trained_at)
        .bind(m.interactions)
        .bind(m.data_fingerprint.as_str())
        .bind(m.params.as_str())
        .bind(m.metrics.as_str())
        .bind(m.artifact_path.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE model_versions SET active = CASE WHEN version = $1 THEN 1 ELSE 0 END")
            .bind(m.version.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn activate_model(&self, version: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query("SELECT version FROM model_versions WHERE version = $1")
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            tx.rollback().await?;
            return Err(anyhow!("no model version {version:?} (see `marquee models list`)").into());
        }
        sqlx::query("UPDATE model_versions SET active = CASE WHEN version = $1 THEN 1 ELSE 0 END")
            .bind(version)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn active_model(&self) -> StoreResult<Option<ModelRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM model_versions WHERE active = 1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(record_from_row).transpose()?)
    }

    /// Newest first.
    pub async fn models(&self) -> StoreResult<Vec<ModelRecord>> {
        let sql =
            format!("SELECT {COLUMNS} FROM model_versions ORDER BY created_at DESC, version DESC");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(record_from_row).collect::<Result<_>>()?)
    }
}
