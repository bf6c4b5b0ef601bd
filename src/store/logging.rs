//! Exposures and impressions: what was shown to whom under which experiment, and the
//! per-profile outcome counters the experiment report reads.
//!
//! The counters (`experiment_outcomes`, one row per experiment, phase and exposed profile) are kept
//! in the transactions that write what they count, so a report never has to join the
//! impression log:
//! - a new exposure creates the profile's row (or marks it as having seen several variations),
//!   counting what the profile was already shown since then;
//! - a new page adds its items to every experiment the profile was exposed to by then, and
//!   the plays and completions already recorded against it;
//! - a new PLAY/COMPLETE event naming a stored page with that title counts as attributed
//!   (`records.rs`).
//!
//! Pages and events for one profile can race each other (a play arrives before the impression
//! log has written its page); whichever transaction comes second counts the attribution. On
//! SQLite writers are serialised; on PostgreSQL both take the profile's advisory lock.
//! `experiment_outcomes_full_scan` computes the same figures from the raw tables, as a check.
//!
//! Exposures and counters are per phase (a new phase re-randomises, so a profile starts a new
//! row in it, in whatever variation it lands). Like the rows of a stopped experiment, the
//! rows of an earlier phase go on counting the profile's later pages; reports read the
//! current phase only.

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::{AnyConnection, Row};

use super::records::{Param, insert_many_returning, shaped_chunks, with_in_list, with_values};
use super::{Backend, Store, StoreResult};
use crate::domain::{Millis, ProfileId, TitleId};
use crate::experiments::stats::ProfileOutcome;

/// One served page, the items on it, and the exposures it caused.
#[derive(Debug, Clone, PartialEq)]
pub struct PageImpressions {
    pub request_id: String,
    pub profile_id: ProfileId,
    pub served_at: Millis,
    pub model_version: String,
    /// Experiment key → the variation index that shaped the page; stored as a JSON object.
    pub assignments: BTreeMap<String, usize>,
    pub items: Vec<ItemImpression>,
    /// The experiments that shaped this page by hashing the profile. Stored with the page,
    /// before it, so the page counts towards them.
    pub exposures: Vec<ExposureRecord>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ItemImpression {
    pub title_id: TitleId,
    pub row_id: String,
    pub row_position: i64,
    pub item_position: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExposureRecord {
    pub experiment_key: String,
    /// The experiment's phase: exposures and outcomes are kept per phase (a new phase
    /// re-randomises).
    pub phase: i64,
    pub profile_id: ProfileId,
    pub variation_index: i64,
    pub variation_key: String,
    pub feature_key: String,
    pub at: Millis,
}

/// The per-profile outcomes of one experiment, as the statistics take them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExperimentOutcomes {
    /// One per profile exposed to exactly one variation, in profile id order.
    pub profiles: Vec<ProfileOutcome>,
    /// Profiles exposed to more than one variation (the experiment changed under them):
    /// left out of `profiles`.
    pub contaminated: usize,
}

/// Pages (7 parameters each) and exposures (7) per multi-row statement: powers of two
/// (`shaped_chunks`), well under SQLite's and PostgreSQL's limits on bound parameters.
const PAGES_PER_STATEMENT: usize = 128;
const EXPOSURES_PER_STATEMENT: usize = 64;

/// Attributable event kinds, as stored.
const PLAY: &str = "PLAY";
const COMPLETE: &str = "COMPLETE";

/// The titles on a stored page, from its `items` JSON (`[[row, row position, item position,
/// title], …]`).
pub(super) fn page_titles(items_json: &str) -> StoreResult<HashSet<String>> {
    let items: Vec<(String, i64, i64, String)> = serde_json::from_str(items_json)?;
    Ok(items.into_iter().map(|(_, _, _, title)| title).collect())
}

/// Adds attributed plays or completions to every experiment `profile` was exposed to by
/// `served_at` (the time of the page the events name).
pub(super) async fn count_attributed(
    tx: &mut AnyConnection,
    profile: &str,
    served_at: Millis,
    kind: &str,
    n: i64,
) -> StoreResult<()> {
    let sql = match kind {
        PLAY => {
            "UPDATE experiment_outcomes SET plays = plays + $1 WHERE profile_id = $2 AND first_seen_at <= $3"
        }
        COMPLETE => {
            "UPDATE experiment_outcomes SET completes = completes + $1 WHERE profile_id = $2 AND first_seen_at <= $3"
        }
        _ => return Ok(()),
    };
    sqlx::query(sql)
        .bind(n)
        .bind(profile)
        .bind(served_at)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Takes the per-profile advisory locks `record_events` takes, in one global order (by lock
/// key) so that two writers locking several profiles cannot deadlock. PostgreSQL only:
/// SQLite serialises writers anyway.
pub(super) async fn lock_profiles(tx: &mut AnyConnection, profiles: &[&str]) -> StoreResult<()> {
    for chunk in profiles.chunks(500) {
        with_in_list(
            "SELECT pg_advisory_xact_lock(k)::TEXT AS locked FROM \
             (SELECT DISTINCT hashtext(p) AS k FROM unnest(ARRAY[{list}]::TEXT[]) AS v(p) ORDER BY k) AS keys",
            chunk,
        )
        .fetch_all(&mut *tx)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Writes a batch of pages with their exposures and impressions in one transaction, and
    /// updates the outcome counters. Idempotent: a page or exposure already stored (a batch
    /// retried after its commit was in fact applied) is neither stored nor counted twice.
    /// Returns the items in the batch.
    pub async fn write_impressions(&self, pages: &[PageImpressions]) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            let mut profiles: Vec<&str> = pages.iter().map(|p| p.profile_id.as_str()).collect();
            profiles.sort_unstable();
            profiles.dedup();
            lock_profiles(&mut tx, &profiles).await?;
        }
        let exposures: Vec<&ExposureRecord> = pages.iter().flat_map(|p| &p.exposures).collect();
        insert_exposures(&mut tx, &exposures).await?;
        let mut written = 0;
        for chunk in shaped_chunks(pages, PAGES_PER_STATEMENT) {
            let rows = chunk
                .iter()
                .map(|p| -> StoreResult<Vec<Param>> {
                    // `[row_id, row_position, item_position, title_id]` per item (as
                    // `page_titles` reads them), encoded straight from the items: building
                    // a `serde_json::Value` per item cost a third of the writer's CPU.
                    let items: Vec<(&str, i64, i64, &str)> = p
                        .items
                        .iter()
                        .map(|i| {
                            (
                                i.row_id.as_str(),
                                i.row_position,
                                i.item_position,
                                i.title_id.as_str(),
                            )
                        })
                        .collect();
                    Ok(vec![
                        Param::Text(p.request_id.clone()),
                        Param::Text(p.profile_id.to_string()),
                        Param::Int(p.served_at),
                        Param::Text(p.model_version.clone()),
                        Param::Text(serde_json::to_string(&p.assignments)?),
                        Param::Int(p.items.len() as i64),
                        Param::Text(serde_json::to_string(&items)?),
                    ])
                })
                .collect::<StoreResult<_>>()?;
            let inserted: HashSet<String> = insert_many_returning(
                &mut tx,
                "INSERT INTO page_views (request_id, profile_id, served_at, model_version, assignments, item_count, items)",
                "ON CONFLICT (request_id) DO NOTHING RETURNING request_id",
                rows,
            )
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("request_id"))
            .collect::<Result<_, _>>()?;
            let new_pages: Vec<&PageImpressions> = chunk
                .iter()
                .filter(|p| inserted.contains(&p.request_id))
                .collect();
            count_new_pages(&mut tx, &new_pages).await?;
            written += chunk.iter().map(|p| p.items.len() as u64).sum::<u64>();
        }
        tx.commit().await?;
        Ok(written)
    }

    /// Per profile exposed in phase `phase` of `experiment`: its variation, when it was first
    /// exposed in the phase, and what it did from then on, from the counters. Runs on the
    /// report pool.
    pub async fn experiment_outcomes(
        &self,
        experiment: &str,
        phase: i64,
    ) -> StoreResult<ExperimentOutcomes> {
        let rows = sqlx::query(
            "SELECT profile_id, variation_index, first_seen_at, variations, impressions, plays, completes \
             FROM experiment_outcomes WHERE experiment_key = $1 AND phase = $2",
        )
        .bind(experiment)
        .bind(phase)
        .fetch_all(&self.reports)
        .await?;
        let mut contaminated = 0;
        let mut profiles = Vec::with_capacity(rows.len());
        for r in &rows {
            if r.try_get::<i64, _>("variations")? > 1 {
                contaminated += 1;
                continue;
            }
            let count = |column: &str| -> StoreResult<u64> {
                Ok(r.try_get::<i64, _>(column)?.max(0) as u64)
            };
            profiles.push((
                r.try_get::<String, _>("profile_id")?,
                ProfileOutcome {
                    variation: r.try_get::<i64, _>("variation_index")?.max(0) as usize,
                    first_exposed_at: r.try_get("first_seen_at")?,
                    impressions: count("impressions")?,
                    plays: count("plays")?,
                    completes: count("completes")?,
                },
            ));
        }
        // Sorted here rather than in SQL: PostgreSQL's collation may not be byte order, and
        // the statistics should see the same sequence on both backends.
        profiles.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(ExperimentOutcomes {
            profiles: profiles.into_iter().map(|(_, o)| o).collect(),
            contaminated,
        })
    }

    /// The same figures as `experiment_outcomes`, recomputed from exposures, page views and
    /// events (a full scan with JSON parsing: for checking the counters, not for serving).
    pub async fn experiment_outcomes_full_scan(
        &self,
        experiment: &str,
        phase: i64,
    ) -> StoreResult<ExperimentOutcomes> {
        let exposures = sqlx::query(
            "SELECT profile_id, variation_index, first_seen_at FROM exposures \
             WHERE experiment_key = $1 AND phase = $2",
        )
        .bind(experiment)
        .bind(phase)
        .fetch_all(&self.reports)
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
             JOIN exposures x ON x.profile_id = v.profile_id AND x.experiment_key = $1 AND x.phase = $2 \
             WHERE v.served_at >= x.first_seen_at GROUP BY v.profile_id",
        )
        .bind(experiment)
        .bind(phase)
        .fetch_all(&self.reports)
        .await?;
        // Plays and completions that name a page served to the profile after its exposure;
        // the title must have been on that page.
        let attributed = sqlx::query(
            "SELECT e.profile_id, e.kind, e.title_id, v.items FROM events e \
             JOIN page_views v ON v.request_id = e.request_id AND v.profile_id = e.profile_id \
             JOIN exposures x ON x.profile_id = e.profile_id AND x.experiment_key = $1 AND x.phase = $2 \
             WHERE e.kind IN ('PLAY', 'COMPLETE') AND v.served_at >= x.first_seen_at",
        )
        .bind(experiment)
        .bind(phase)
        .fetch_all(&self.reports)
        .await?;
        let mut outcomes: HashMap<String, ProfileOutcome> = by_profile
            .iter()
            .filter(|(_, (_, _, n))| *n == 1)
            .map(|(p, (v, at, _))| {
                (
                    p.clone(),
                    ProfileOutcome {
                        variation: *v,
                        first_exposed_at: *at,
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
            if !page_titles(&r.try_get::<String, _>("items")?)?.contains(&title) {
                continue;
            }
            if let Some(o) = outcomes.get_mut(&r.try_get::<String, _>("profile_id")?) {
                match r.try_get::<String, _>("kind")?.as_str() {
                    PLAY => o.plays += 1,
                    _ => o.completes += 1,
                }
            }
        }
        let contaminated = by_profile.values().filter(|(_, _, n)| *n > 1).count();
        let mut list: Vec<(String, ProfileOutcome)> = outcomes.into_iter().collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(ExperimentOutcomes {
            profiles: list.into_iter().map(|(_, o)| o).collect(),
            contaminated,
        })
    }
}

/// Stores exposures not stored before (first time wins) and creates or updates the outcome
/// row of each new one.
async fn insert_exposures(
    tx: &mut AnyConnection,
    exposures: &[&ExposureRecord],
) -> StoreResult<()> {
    for chunk in shaped_chunks(exposures, EXPOSURES_PER_STATEMENT) {
        let rows = chunk
            .iter()
            .map(|e| {
                vec![
                    Param::Text(e.experiment_key.clone()),
                    Param::Int(e.phase),
                    Param::Text(e.profile_id.to_string()),
                    Param::Int(e.variation_index),
                    Param::Text(e.variation_key.clone()),
                    Param::Text(e.feature_key.clone()),
                    Param::Int(e.at),
                ]
            })
            .collect();
        let new = insert_many_returning(
            tx,
            "INSERT INTO exposures (experiment_key, phase, profile_id, variation_index, variation_key, feature_key, first_seen_at)",
            "ON CONFLICT (experiment_key, phase, profile_id, variation_index) DO NOTHING \
             RETURNING experiment_key, phase, profile_id, variation_index, first_seen_at",
            rows,
        )
        .await?;
        for r in &new {
            note_exposure(
                tx,
                &r.try_get::<String, _>("experiment_key")?,
                r.try_get("phase")?,
                &r.try_get::<String, _>("profile_id")?,
                r.try_get("variation_index")?,
                r.try_get("first_seen_at")?,
            )
            .await?;
        }
    }
    Ok(())
}

/// A new exposure row. The profile's first one for the experiment's phase starts its counters
/// from what it was shown (and played from) since `at` — usually nothing yet — and records
/// when and in which variation the profile was first exposed in the phase (what the
/// sample-ratio check reads); a second one with another variation marks the profile as
/// contaminated.
async fn note_exposure(
    tx: &mut AnyConnection,
    experiment: &str,
    phase: i64,
    profile: &str,
    variation: i64,
    at: Millis,
) -> StoreResult<()> {
    let row = sqlx::query(
        "INSERT INTO experiment_outcomes (experiment_key, phase, profile_id, variation_index, first_seen_at, variations, impressions, plays, completes) \
         VALUES ($1, $2, $3, $4, $5, 1, 0, 0, 0) \
         ON CONFLICT (experiment_key, phase, profile_id) DO UPDATE SET variations = experiment_outcomes.variations + 1 \
         RETURNING variations",
    )
    .bind(experiment)
    .bind(phase)
    .bind(profile)
    .bind(variation)
    .bind(at)
    .fetch_one(&mut *tx)
    .await?;
    if row.try_get::<i64, _>("variations")? > 1 {
        return Ok(());
    }
    let shown = sqlx::query(
        "SELECT CAST(COALESCE(SUM(item_count), 0) AS BIGINT) AS n FROM page_views \
         WHERE profile_id = $1 AND served_at >= $2",
    )
    .bind(profile)
    .bind(at)
    .fetch_one(&mut *tx)
    .await?
    .try_get::<i64, _>("n")?;
    let events = sqlx::query(
        "SELECT e.kind, e.title_id, v.items FROM events e \
         JOIN page_views v ON v.request_id = e.request_id AND v.profile_id = e.profile_id \
         WHERE e.profile_id = $1 AND e.kind IN ('PLAY', 'COMPLETE') AND v.served_at >= $2",
    )
    .bind(profile)
    .bind(at)
    .fetch_all(&mut *tx)
    .await?;
    let (mut plays, mut completes) = (0i64, 0i64);
    for r in &events {
        let title: String = r.try_get("title_id")?;
        if page_titles(&r.try_get::<String, _>("items")?)?.contains(&title) {
            match r.try_get::<String, _>("kind")?.as_str() {
                PLAY => plays += 1,
                _ => completes += 1,
            }
        }
    }
    if shown > 0 || plays > 0 || completes > 0 {
        sqlx::query(
            "UPDATE experiment_outcomes SET impressions = $1, plays = $2, completes = $3 \
             WHERE experiment_key = $4 AND phase = $5 AND profile_id = $6",
        )
        .bind(shown)
        .bind(plays)
        .bind(completes)
        .bind(experiment)
        .bind(phase)
        .bind(profile)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Counts pages just stored: their items, and the events already recorded against them.
async fn count_new_pages(tx: &mut AnyConnection, pages: &[&PageImpressions]) -> StoreResult<()> {
    if pages.is_empty() {
        return Ok(());
    }
    // One statement for the chunk, not one per page: on SQLite every statement is a round
    // trip to the connection's thread. A profile's counter of an experiment gets the items
    // of its pages served since it was first exposed in the phase.
    let rows = pages
        .iter()
        .map(|p| {
            vec![
                Param::Text(p.profile_id.to_string()),
                Param::Int(p.items.len() as i64),
                Param::Int(p.served_at),
            ]
        })
        .collect();
    if let Some(update) = with_values(
        "WITH batch (profile_id, items, served_at) AS (",
        ") UPDATE experiment_outcomes SET impressions = impressions + COALESCE(( \
           SELECT CAST(SUM(b.items) AS BIGINT) FROM batch b \
           WHERE b.profile_id = experiment_outcomes.profile_id \
             AND b.served_at >= experiment_outcomes.first_seen_at), 0) \
         WHERE profile_id IN (SELECT profile_id FROM batch) \
           AND first_seen_at <= (SELECT MAX(b.served_at) FROM batch b \
                                 WHERE b.profile_id = experiment_outcomes.profile_id)",
        rows,
    ) {
        update.execute(&mut *tx).await?;
    }
    let requests: Vec<&str> = pages.iter().map(|p| p.request_id.as_str()).collect();
    let events = with_in_list(
        "SELECT request_id, profile_id, kind, title_id FROM events \
         WHERE request_id IN ({list}) AND kind IN ('PLAY', 'COMPLETE')",
        &requests,
    )
    .fetch_all(&mut *tx)
    .await?;
    if events.is_empty() {
        return Ok(());
    }
    let by_request: HashMap<&str, &PageImpressions> =
        pages.iter().map(|p| (p.request_id.as_str(), *p)).collect();
    for r in &events {
        let request: String = r.try_get("request_id")?;
        let Some(page) = by_request.get(request.as_str()) else {
            continue;
        };
        let title: String = r.try_get("title_id")?;
        if r.try_get::<String, _>("profile_id")? != page.profile_id.as_str()
            || !page.items.iter().any(|i| i.title_id.as_str() == title)
        {
            continue;
        }
        let kind: String = r.try_get("kind")?;
        count_attributed(tx, page.profile_id.as_str(), page.served_at, &kind, 1).await?;
    }
    Ok(())
}
