//! Exposures and impressions: what was shown to whom under which experiment, and the joins
//! the experiment report needs.

use std::collections::HashMap;

use anyhow::Result;
use sqlx::Row;

use super::Store;
use super::records::{Param, insert_many};
use crate::domain::Millis;
use crate::experiments::stats::ProfileOutcome;

/// One served page and the items on it.
#[derive(Debug, Clone, PartialEq)]
pub struct PageImpressions {
    pub request_id: String,
    pub profile_id: String,
    pub served_at: Millis,
    pub model_version: String,
    /// `{"experiment key": variation index, …}`
    pub assignments: String,
    pub items: Vec<ItemImpression>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ItemImpression {
    pub title_id: String,
    pub row_id: String,
    pub row_position: i64,
    pub item_position: i64,
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
    /// Writes a batch of pages with their impressions in one transaction; a repeated page is
    /// kept once, so a retried batch does not double count. Returns the items written.
    pub async fn write_impressions(&self, pages: &[PageImpressions]) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let mut written = 0;
        for chunk in pages.chunks(200) {
            let rows = chunk
                .iter()
                .map(|p| {
                    let items: Vec<serde_json::Value> = p
                        .items
                        .iter()
                        .map(|i| {
                            serde_json::json!([
                                i.row_id,
                                i.row_position,
                                i.item_position,
                                i.title_id
                            ])
                        })
                        .collect();
                    vec![
                        Param::Text(p.request_id.clone()),
                        Param::Text(p.profile_id.clone()),
                        Param::Int(p.served_at),
                        Param::Text(p.model_version.clone()),
                        Param::Text(p.assignments.clone()),
                        Param::Int(p.items.len() as i64),
                        Param::Text(serde_json::Value::Array(items).to_string()),
                    ]
                })
                .collect();
            insert_many(
                &mut tx,
                "INSERT INTO page_views (request_id, profile_id, served_at, model_version, assignments, item_count, items)",
                "ON CONFLICT (request_id) DO NOTHING",
                rows,
            )
            .await?;
            written += chunk.iter().map(|p| p.items.len() as u64).sum::<u64>();
        }
        tx.commit().await?;
        Ok(written)
    }

    /// Records exposures; ones already recorded are left as they were (first time wins).
    pub async fn record_exposures(&self, exposures: &[ExposureRecord]) -> Result<()> {
        if exposures.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
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
            "SELECT v.profile_id, CAST(SUM(v.item_count) AS BIGINT) AS n FROM page_views v \
             JOIN exposures x ON x.profile_id = v.profile_id AND x.experiment_key = $1 \
             WHERE v.served_at >= x.first_seen_at GROUP BY v.profile_id",
        )
        .bind(experiment)
        .fetch_all(&self.pool)
        .await?;
        // Plays and completions that name a page served to the profile after its exposure;
        // the title must have been on that page.
        let attributed = sqlx::query(
            "SELECT e.profile_id, e.kind, e.title_id, v.items FROM events e \
             JOIN page_views v ON v.request_id = e.request_id AND v.profile_id = e.profile_id \
             JOIN exposures x ON x.profile_id = e.profile_id AND x.experiment_key = $1 \
             WHERE e.kind IN ('PLAY', 'COMPLETE') AND v.served_at >= x.first_seen_at",
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
            let title: String = r.try_get("title_id")?;
            let items: Vec<(String, i64, i64, String)> =
                serde_json::from_str(&r.try_get::<String, _>("items")?)?;
            if !items.iter().any(|(_, _, _, t)| *t == title) {
                continue;
            }
            if let Some(o) = outcomes.get_mut(&r.try_get::<String, _>("profile_id")?) {
                match r.try_get::<String, _>("kind")?.as_str() {
                    "PLAY" => o.plays += 1,
                    _ => o.completes += 1,
                }
            }
        }
        let contaminated = by_profile.values().filter(|(_, _, n)| *n > 1).count();
        let mut list: Vec<(String, ProfileOutcome)> = outcomes.into_iter().collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        Ok((list.into_iter().map(|(_, o)| o).collect(), contaminated))
    }
}
