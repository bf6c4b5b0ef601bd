//! The home page service: one request for a profile's home page, from the stored profile and
//! history through the experiment variant to the page, and what serving it records (exposures
//! and impressions, handed to the impression log). The GraphQL `home` resolver parses its
//! input into a `HomeRequest` and maps the `HomePage` to the schema; every decision is made
//! here.

use std::collections::HashMap;
use std::sync::Arc;

use std::time::{Duration, Instant};

use anyhow::Result;
use tracing::Instrument as _;

use super::policy::Policy;
use super::{AppError, AppState};
use crate::domain::{Millis, ProfileId};
use crate::engine::Engine;
use crate::engine::page::{Page, PageTimings};
use crate::experiments::growthbook::{StickyAssignmentsDocument, sticky_attribute_key};
use crate::experiments::{self, Assignment, RequestInfo};
use crate::store::logging::{ExposureRecord, ItemImpression, PageImpressions};
use crate::telemetry::{self, Stage};

/// A parsed home page request.
pub struct HomeRequest {
    pub profile_id: ProfileId,
    /// Attributes the client offers to experiment targeting.
    pub request: RequestInfo,
    /// Experiment key → variation index to force. Any forced variation makes the request a
    /// preview.
    pub forced_variations: HashMap<String, i64>,
    /// A PM's preview of the page (`AppState::preview_home`): served, never logged.
    pub preview: bool,
}

/// A served home page.
pub struct HomePage {
    /// Unique per served page: impressions and later events are joined on it.
    pub request_id: String,
    pub generated_at: Millis,
    /// The engine that assembled the page; its catalogue resolves the page's title indexes and
    /// its model is the version that ranked the page.
    pub engine: Arc<Engine>,
    /// The experiments that shaped the page.
    pub assignments: Vec<Assignment>,
    pub page: Page,
}

impl AppState {
    /// The home page of `request.profile_id`, or `None` when there is no such profile.
    pub async fn home_page(&self, request: HomeRequest) -> Result<Option<HomePage>> {
        let request_id = self.next_request_id();
        let span = tracing::debug_span!("home_page", request_id = %request_id);
        self.home_page_in(request, request_id)
            .instrument(span)
            .await
    }

    async fn home_page_in(
        &self,
        request: HomeRequest,
        request_id: String,
    ) -> Result<Option<HomePage>> {
        let started = Instant::now();
        let id = request.profile_id;
        let viewer = self.viewer(&id).await;
        let read = Instant::now();
        let (profile, history) = match viewer {
            Ok(viewer) => viewer,
            Err(AppError::ProfileNotFound(_)) => return Ok(None),
            // The store error itself goes into the `anyhow::Error` (not wrapped in an
            // `AppError`), so the API still finds it and answers `UNAVAILABLE` when transient.
            Err(AppError::Store(e)) => return Err(e.into()),
            Err(AppError::Internal(e)) => return Err(e),
            Err(e) => return Err(e.into()),
        };
        // Previews (forced variations) are not real views: nothing is logged for them.
        let preview = request.preview || !request.forced_variations.is_empty();
        // Previews also see draft experiments, to force their variations.
        let features = if preview {
            self.preview_features.load_full()
        } else {
            self.features.load_full()
        };
        let attributes = experiments::attributes(&profile, &request.request);
        let sticky = self.sticky_documents(&features, &attributes).await;
        let (variant, assigned) = experiments::page_variant_sticky(
            &features,
            attributes,
            request.forced_variations,
            sticky,
        );
        if !preview && !assigned.is_empty() {
            // New assignments are stored before the page is served, so that the profile's
            // next page finds them whatever the weights say by then. A failure costs
            // stickiness, never the page.
            self.save_sticky_documents(&assigned, self.clock.now())
                .await;
        }
        let evaluated = Instant::now();
        for problem in &variant.problems {
            tracing::warn!(%problem, "experiment value ignored");
        }
        let engine = self.engine.load_full();
        let now = self.clock.now();
        let mut timings = PageTimings::default();
        let mut page = engine
            .home_page_with_timed(&variant.overrides, &profile, &history, now, &mut timings)
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "experiment variant failed; serving the default page");
                engine.home_page_timed(&profile, &history, now, &mut timings)
            });
        // The last check before the page leaves the service (counted in assembly).
        Policy::of(profile).screen(&engine.catalog, &mut page);
        let assembled = Instant::now();
        if !preview {
            // The exposures travel with the page through the impression log and are written
            // in its transaction, before its items, so the page counts towards the
            // experiments that shaped it; the request never waits for the database.
            self.impressions.offer(impressions(
                &request_id,
                &id,
                now,
                &engine,
                &variant.assignments,
                &page,
            ));
        }
        let done = Instant::now();
        record_stages(
            &timings,
            [
                (Stage::ProfileRead, read - started),
                (Stage::Experiments, evaluated - read),
                (Stage::Assemble, assembled - evaluated),
                (Stage::ImpressionEnqueue, done - assembled),
                (Stage::Page, done - started),
            ],
        );
        Ok(Some(HomePage {
            request_id,
            generated_at: now,
            engine,
            assignments: variant.assignments,
            page,
        }))
    }
}

impl AppState {
    /// The profile's sticky-bucket documents for the experiments `features` may assign; `None`
    /// (evaluate without sticky bucketing, store nothing) when the store cannot say.
    async fn sticky_documents(
        &self,
        features: &experiments::FeatureSet,
        attributes: &serde_json::Value,
    ) -> Option<experiments::StickyDocs> {
        let identities: Vec<String> = experiments::sticky_identities(features, attributes)
            .iter()
            .map(|(name, value)| sticky_attribute_key(name, value))
            .collect();
        if identities.is_empty() {
            return Some(Default::default());
        }
        match self.store.sticky_documents(&identities).await {
            Ok(rows) => Some(
                rows.into_iter()
                    .filter_map(|(identity, doc)| match serde_json::from_str(&doc) {
                        Ok(doc) => Some((identity, doc)),
                        Err(e) => {
                            tracing::warn!(%identity, error = %e, "sticky-bucket document ignored");
                            None
                        }
                    })
                    .collect(),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "sticky buckets unavailable; assigning without them");
                None
            }
        }
    }

    async fn save_sticky_documents(&self, docs: &[StickyAssignmentsDocument], now: Millis) {
        let rows: Vec<(String, String)> = docs
            .iter()
            .filter_map(|d| {
                let json = serde_json::to_string(d).ok()?;
                Some((
                    sticky_attribute_key(&d.attribute_name, &d.attribute_value),
                    json,
                ))
            })
            .collect();
        if let Err(e) = self.store.save_sticky_documents(&rows, now).await {
            tracing::warn!(error = %e, "sticky-bucket assignments not stored");
        }
    }
}

/// Exports a page's stage times (`telemetry`) and logs them at debug level, in the page's
/// span.
fn record_stages(timings: &PageTimings, app: [(Stage, Duration); 5]) {
    let sources: Duration = timings.sources.iter().map(|(_, d)| *d).sum();
    let engine = [
        (Stage::Sources, sources),
        (Stage::Filters, timings.filters),
        (Stage::Dedupe, timings.dedupe),
        (Stage::Rerank, timings.rerank),
    ];
    for (stage, took) in app.iter().chain(&engine) {
        telemetry::record_stage(*stage, *took);
    }
    for (row, took) in &timings.sources {
        telemetry::record_source(row, *took);
    }
    telemetry::count_page();
    if tracing::enabled!(tracing::Level::DEBUG) {
        let us = |stage: Stage| {
            app.iter()
                .chain(&engine)
                .find(|(s, _)| *s == stage)
                .map_or(0, |(_, d)| d.as_micros() as u64)
        };
        tracing::debug!(
            profile_read_us = us(Stage::ProfileRead),
            experiments_us = us(Stage::Experiments),
            sources_us = us(Stage::Sources),
            filters_us = us(Stage::Filters),
            dedupe_us = us(Stage::Dedupe),
            rerank_us = us(Stage::Rerank),
            assemble_us = us(Stage::Assemble),
            impression_enqueue_us = us(Stage::ImpressionEnqueue),
            page_us = us(Stage::Page),
            "home page served"
        );
    }
}

/// An exposure is an assignment the profile was hashed into; forced ones are not.
fn exposures(assignments: &[Assignment], profile: &ProfileId, at: Millis) -> Vec<ExposureRecord> {
    assignments
        .iter()
        .filter(|a| a.hash_used)
        .map(|a| ExposureRecord {
            experiment_key: a.experiment_key.clone(),
            profile_id: profile.clone(),
            variation_index: a.variation_index as i64,
            variation_key: a.variation_key.clone(),
            feature_key: a.feature_key.clone(),
            at,
        })
        .collect()
}

/// The impression record of a served page: every row item with its position, and the
/// exposures the page caused.
fn impressions(
    request_id: &str,
    profile: &ProfileId,
    served_at: Millis,
    engine: &Engine,
    assignments: &[Assignment],
    page: &Page,
) -> PageImpressions {
    let variations = assignments
        .iter()
        .map(|a| (a.experiment_key.clone(), a.variation_index))
        .collect();
    let items = page
        .rows
        .iter()
        .enumerate()
        .flat_map(|(row_position, row)| {
            row.items
                .iter()
                .enumerate()
                .map(move |(item_position, item)| ItemImpression {
                    title_id: engine.catalog.title(item.title).id.clone(),
                    row_id: row.id.clone(),
                    row_position: row_position as i64,
                    item_position: item_position as i64,
                })
        })
        .collect();
    PageImpressions {
        request_id: request_id.to_owned(),
        profile_id: profile.clone(),
        served_at,
        model_version: engine.model.version.clone(),
        assignments: variations,
        items,
        exposures: exposures(assignments, profile, served_at),
    }
}
