//! Exposures and impressions: what was shown to whom under which experiment, and the joins
//! the experiment report needs.

use std::collections::HashMap;

use anyhow::Result;
use sqlx::Row;

use super::Store;
use super::records::{Param, insert_many};
use crate::domain::Millis;
use crate::experiments::stats::ProfileOutcome;

#[derive(Debug, Clone, PartialEq)]
pub struct ImpressionRecord {
    pub request_id: String,
    pub profile_id: String,
    pub row_id: String,
    pub row_position: i64,
    pub item_position: i64,
    pub title_id: String,
    pub model_version: String,
    /// `{"experiment key": variation index, …}`
    pub assignments: String,
    pub served_at: Millis,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExposureRecord {
    pub experiment_key: String,
    pub profile_id: String,
    pub variation_index: i64,
    pub variation_key: String,
    pub feature_key: String,
    pub at: Millis,
}

impl Store {
    /// Writes a batch of impressions in one transaction; a repeated (request, title) is kept
    /// once, so a retried batch does not double count.
    pub async fn write_impressions(&self, batch: &[ImpressionRecord]) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let mut written = 0;
        for chunk in batch.chunks(500) {
            let rows = chunk
                .iter()
                .map(|i| {
                    vec![
                        Param::Text(i.request_id.clone()),
                        Param::Text(i.profile_id.clone()),
                        Param::Text(i.row_id.clone()),
                        Param::Int(i.row_position),
                        Param::Int(i.item_position),
                        Param::Text(i.title_id.clone()),
                        Param::Text(i.model_version.clone()),
                        Param::Text(i.assignments.clone()),
                        Param::Int(i.served_at),
                    ]
                })
                .collect();
            written += insert_many(
                &mut tx,
                "INSERT INTO impressions (request_id, profile_id, row_id, row_position, item_position, title_id, model_version, assignments, served_at)",
                "ON CONFLICT (request_id, title_id) DO NOTHING",
                rows,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(written)
    }

    /// Records exposures; ones already recorded are left as they were (first time wins).
    pub async fn record_exposures(&self, exposures: &[ExposureRecord]) -> Result<()> {
        if exposures.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        let rows = exposures
            .iter()
            .map(|e| {
                vec![
                    Param::Text(e.experiment_key.clone()),
                    Param::Text(e.profile_id.clone()),
                    Param::Int(e.variation_index),
                    Param::Text(e.variation_key.clone()),
                    Param::Text(e.feature_key.clone()),
                    Param::Int(e.at),
                ]
            })
            .collect();
        insert_many(
            &mut tx,
            "INSERT INTO exposures (experiment_key, profile_id, variation_index, variation_key, feature_key, first_seen_at)",
            "ON CONFLICT (experiment_key, profile_id, variation_index) DO NOTHING",
            rows,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn count_impressions(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM impressions")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    /// Per exposed profile of `experiment`: its variation and what it did from its exposure
    /// on. Profiles exposed to more than one variation (the experiment changed under them)
    /// are left out and counted in the second return value.
    pub async fn experiment_outcomes(
        &self,
        experiment: &str,
    ) -> Result<(Vec<ProfileOutcome>, usize)> {
        let exposures = sqlx::query(
            "SELECT profile_id, variation_index, first_seen_at FROM exposures WHERE experiment_key = $1",
        )
        .bind(experiment)
        .fetch_all(&self.pool)
        .await?;
        let mut by_profile: HashMap<String, (usize, Millis, usize)> = HashMap::new();
        for r in &exposures {
            let profile: String = r.try_get("profile_id")?;
            let variation = r.try_get::<i64, _>("variation_index")?.max(0) as usize;
            let at: i64 = r.try_get("first_seen_at")?;
            by_profile
                .entry(profile)
                .and_modify(|e| e.2 += 1)
                .or_insert((variation, at, 1));
        }
        let impressions = sqlx::query(
            "SELECT i.profile_id, COUNT(*) AS n FROM impressions i \
             JOIN exposures x ON x.profile_id = i.profile_id AND x.experiment_key = $1 \
             WHERE i.served_at >= x.first_seen_at GROUP BY i.profile_id",
        )
        .bind(experiment)
        .fetch_all(&self.pool)
        .await?;
        let attributed = sqlx::query(
            "SELECT e.profile_id, e.kind, COUNT(*) AS n FROM events e \
             JOIN impressions i ON i.request_id = e.request_id AND i.title_id = e.title_id \
             JOIN exposures x ON x.profile_id = e.profile_id AND x.experiment_key = $1 \
             WHERE e.kind IN ('PLAY', 'COMPLETE') AND i.served_at >= x.first_seen_at \
             GROUP BY e.profile_id, e.kind",
        )
        .bind(experiment)
        .fetch_all(&self.pool)
        .await?;
        let mut outcomes: HashMap<String, ProfileOutcome> = by_profile
            .iter()
            .filter(|(_, (_, _, n))| *n == 1)
            .map(|(p, (v, _, _))| {
                (
                    p.clone(),
                    ProfileOutcome {
                        variation: *v,
                        ..ProfileOutcome::default()
                    },
                )
            })
            .collect();
        for r in &impressions {
            if let Some(o) = outcomes.get_mut(&r.try_get::<String, _>("profile_id")?) {
                o.impressions = r.try_get::<i64, _>("n")?.max(0) as u64;
            }
        }
        for r in &attributed {
            if let Some(o) = outcomes.get_mut(&r.try_get::<String, _>("profile_id")?) {
                let n = r.try_get::<i64, _>("n")?.max(0) as u64;
                match r.try_get::<String, _>("kind")?.as_str() {
                    "PLAY" => o.plays += n,
                    _ => o.completes += n,
                }
            }
        }
        let contaminated = by_profile.values().filter(|(_, _, n)| *n > 1).count();
        let mut list: Vec<(String, ProfileOutcome)> = outcomes.into_iter().collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        Ok((list.into_iter().map(|(_, o)| o).collect(), contaminated))
    }
}
