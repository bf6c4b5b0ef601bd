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
use super::serving;
use super::{AppError, AppState};
use crate::domain::{AccountId, Millis, Profile, ProfileId, TitleId};
use crate::engine::Engine;
use crate::engine::history::History;
use crate::engine::page::{CandidateLists, Page, PageTimings};
use crate::engine::rows::PageOverrides;
use crate::engine::segments::Segments;
use crate::experiments::growthbook::{StickyAssignmentsDocument, sticky_attribute_key};
use crate::experiments::{self, Assignment, RequestInfo};
use crate::store::StoreError;
use crate::store::logging::{ExposureRecord, ItemImpression, PageImpressions};
use crate::telemetry::Dependency;
use crate::telemetry::{self, Stage};

/// A profile and its history, as read for a page (and kept as the replica's snapshot of them).
type Viewer = Arc<(Profile, History)>;

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
    /// The dependencies this page went without (a cache, live trending, the database): it
    /// was computed in process or served from a fallback. Empty for a normal page.
    pub skipped: Vec<Dependency>,
}

impl HomePage {
    /// Whether a dependency was skipped or a fallback served (`home { degraded }`).
    pub fn degraded(&self) -> bool {
        !self.skipped.is_empty()
    }
}

impl AppState {
    /// The home page of `request.profile_id`, or `None` when there is no such profile.
    pub async fn home_page(&self, request: HomeRequest) -> Result<Option<HomePage>> {
        self.home_page_for(request, None, true).await
    }

    /// `home_page` for a caller of `account` (who was checked to own the profile, unless the
    /// database was down): while the database is unavailable the page is served from what
    /// this replica remembers of the profile (if it is `account`'s), else the kids-safe page
    /// of a profile without history — marked degraded either way.
    /// `database`: false when the caller already found the database down (its fallback is
    /// served without asking again).
    pub(super) async fn home_page_for(
        &self,
        request: HomeRequest,
        account: Option<&AccountId>,
        database: bool,
    ) -> Result<Option<HomePage>> {
        let request_id = self.next_request_id();
        let span = tracing::debug_span!("home_page", request_id = %request_id);
        self.home_page_in(request, request_id, account, database)
            .instrument(span)
            .await
    }

    /// The profile and history a page is made for, and whether they are a fallback. Shared
    /// with the snapshot this replica keeps of them (a page never copies a history).
    async fn page_viewer(
        &self,
        id: &ProfileId,
        account: Option<&AccountId>,
        database: bool,
    ) -> Result<Option<(Viewer, bool)>> {
        if !database {
            return match self.fallback_viewer(id, account).await {
                Some(viewer) => Ok(Some((viewer, true))),
                None => Err(StoreError::not_asked().into()),
            };
        }
        let started = Instant::now();
        let read = self.viewer(id).await;
        match &read {
            Err(AppError::Store(e)) if e.is_transient() => {
                self.serving.database.record(false, started)
            }
            Err(AppError::Store(_)) | Err(AppError::Internal(_)) => {}
            _ => self.serving.database.record(true, started),
        }
        match read {
            // Another account's profile is no profile (the owner check may have been skipped
            // while the database was down).
            Ok((profile, _)) if account.is_some_and(|a| *a != profile.account_id) => Ok(None),
            Ok(viewer) => {
                let viewer = Arc::new(viewer);
                self.serving
                    .snapshots
                    .insert(id.to_string(), viewer.clone())
                    .await;
                Ok(Some((viewer, false)))
            }
            Err(AppError::ProfileNotFound(_)) => Ok(None),
            Err(AppError::Store(e)) if e.is_transient() => {
                match self.fallback_viewer(id, account).await {
                    Some(viewer) => {
                        tracing::warn!(error = %e, "database unavailable: serving a fallback page");
                        Ok(Some((viewer, true)))
                    }
                    None => Err(e.into()),
                }
            }
            // The store error itself goes into the `anyhow::Error` (not wrapped in an
            // `AppError`), so the API still finds it and answers `UNAVAILABLE` when transient.
            Err(AppError::Store(e)) => Err(e.into()),
            Err(AppError::Internal(e)) => Err(e),
            Err(e) => Err(e.into()),
        }
    }

    /// While the database is down: the profile as this replica last served it (kept current
    /// by the event stream), if the caller's `account` owns it; else a kids profile of the
    /// caller without history, whose page (trending and popular, kids-safe) suits anyone.
    /// `None` for a caller of no known account (a preview): there is nothing safe to serve.
    pub(super) async fn fallback_viewer(
        &self,
        id: &ProfileId,
        account: Option<&AccountId>,
    ) -> Option<Viewer> {
        let account = account?;
        if let Some(snapshot) = self.serving.snapshots.get(id.as_str()).await
            && *account == snapshot.0.account_id
        {
            return Some(snapshot);
        }
        let profile = Profile {
            id: id.clone(),
            account_id: account.clone(),
            name: String::new(),
            is_kids: true,
            maturity_limit: None,
            country: None,
            onboarding_genres: vec![],
        };
        Some(Arc::new((profile, History::default())))
    }

    async fn home_page_in(
        &self,
        request: HomeRequest,
        request_id: String,
        account: Option<&AccountId>,
        database: bool,
    ) -> Result<Option<HomePage>> {
        let started = Instant::now();
        let id = request.profile_id;
        let viewer = self.page_viewer(&id, account, database).await?;
        let read = Instant::now();
        let Some((viewer, fallback)) = viewer else {
            return Ok(None);
        };
        let (profile, history) = (&viewer.0, &viewer.1);
        let mut skipped = Vec::new();
        if fallback {
            skipped.push(Dependency::Database);
        }
        // Previews (forced variations) are not real views, nor are pages of a stand-in
        // profile: nothing is logged for them.
        let preview = request.preview
            || !request.forced_variations.is_empty()
            || (fallback && history.states().next().is_none());
        // Previews also see draft experiments, to force their variations.
        let features = if preview {
            self.preview_features.load_full()
        } else {
            self.features.load_full()
        };
        let attributes = experiments::attributes(profile, &request.request);
        // While the database is down sticky documents are read from Redis alone (production
        // mode) or not at all, and none is stored: the page is marked degraded anyway.
        let sticky = self
            .sticky_documents(&features, &attributes, !fallback, &mut skipped)
            .await;
        let (variant, assigned) = experiments::page_variant_sticky(
            &features,
            attributes,
            request.forced_variations,
            sticky,
        );
        if !preview && !fallback && !assigned.is_empty() {
            // New assignments are stored before the page is served, so that the profile's
            // next page finds them whatever the weights say by then. A failure costs
            // stickiness, never the page.
            self.save_sticky_documents(&assigned, self.clock.now(), &mut skipped)
                .await;
        }
        let evaluated = Instant::now();
        for problem in &variant.problems {
            tracing::warn!(%problem, "experiment value ignored");
        }
        let engine = self.engine.load_full();
        let now = self.clock.now();
        let mut timings = PageTimings::default();
        if engine
            .model
            .version
            .ends_with(super::models::FALLBACK_SUFFIX)
        {
            skipped.push(Dependency::Model);
        }
        let (mut lists, lists_key) = self
            .candidate_lists(
                &engine,
                profile,
                history,
                &variant.overrides,
                now,
                &mut skipped,
            )
            .await;
        let mut page = engine
            .home_page_lists(
                &variant.overrides,
                profile,
                history,
                now,
                &mut timings,
                &mut lists,
            )
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "experiment variant failed; serving the default page");
                lists.computed.clear();
                engine.home_page_timed(profile, history, now, &mut timings)
            });
        if let Some(key) = lists_key
            && !lists.computed.is_empty()
        {
            self.serving.lists.keep(key, lists.all());
        }
        self.serving.segments.keep(lists.segments.take_computed());
        for dependency in &skipped {
            telemetry::degraded_page(*dependency);
        }
        // The last check before the page leaves the service (counted in assembly).
        Policy::of(profile.clone()).screen(&engine.catalog, &mut page);
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
            skipped,
        }))
    }

    /// What the page starts from besides the profile: the live trending list of its country
    /// and the candidate lists kept from an earlier page of the same profile, history, model
    /// and variant. Returns the key to keep this page's lists under (none when the cache is
    /// down, or when the history is a stand-in). A dependency that fails is added to
    /// `skipped`; the page is computed without it.
    async fn candidate_lists(
        &self,
        engine: &Engine,
        profile: &Profile,
        history: &History,
        overrides: &PageOverrides,
        now: Millis,
        skipped: &mut Vec<Dependency>,
    ) -> (CandidateLists, Option<String>) {
        let mut lists = CandidateLists::default();
        let country = serving::country_key(profile.country.as_ref().map(|c| c.as_str()));
        match self.serving.trending.top(country, now).await {
            Ok(top) => {
                lists.live_trending = Some(
                    top.iter()
                        .filter_map(|(id, n)| {
                            let id = TitleId::parse(id).ok()?;
                            Some((engine.catalog.idx(&id)?, *n as f32))
                        })
                        .collect(),
                );
            }
            Err(e) => {
                tracing::debug!(error = %e, "live trending unavailable; the model's trending serves");
                skip(skipped, &[Dependency::Redis]);
            }
        }
        // Without the list cache (`--list-cache false`) every page computes its lists.
        let key = self.serving.list_cache.then(|| {
            let overrides = self.override_fingerprints.of(overrides);
            lists_key(engine, profile, history, overrides)
        });
        let mut cache_up = true;
        if let Some(key) = &key {
            match self.serving.lists.get(key).await {
                Ok(Some(cached)) => lists.cached = cached,
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "list cache unavailable; computing in process");
                    skip(skipped, &[Dependency::Redis]);
                    cache_up = false;
                }
            }
        }
        // The segment lists the rows not found above will ask for (their near copies serve
        // even while Redis is down).
        if self.serving.segments.enabled() {
            let keys = engine.segment_keys(overrides, profile, history, now, &lists.cached);
            let (found, shared) = self.serving.segments.fetch(keys).await;
            if let Err(e) = shared {
                tracing::debug!(error = %e, "segment cache unavailable; computing in process");
                skip(skipped, &[Dependency::Redis]);
            }
            lists.segments = Segments::new(found);
        }
        (lists, key.filter(|_| cache_up))
    }

    /// Computes and keeps the candidate lists of `id`'s default page (`marquee precompute`,
    /// after a model activation), so that its first page is not a cold recompute. `Ok(false)`
    /// when there is no such profile or nothing needed computing.
    pub async fn precompute_lists(&self, id: &ProfileId) -> Result<bool> {
        let (profile, history) = match self.viewer(id).await {
            Ok(v) => v,
            Err(AppError::ProfileNotFound(_)) => return Ok(false),
            Err(AppError::Store(e)) => return Err(e.into()),
            Err(e) => return Err(anyhow::anyhow!("{e}")),
        };
        let engine = self.engine.load_full();
        let now = self.clock.now();
        let overrides = PageOverrides::default();
        let mut skipped = Vec::new();
        let (mut lists, key) = self
            .candidate_lists(&engine, &profile, &history, &overrides, now, &mut skipped)
            .await;
        let Some(key) = key else {
            anyhow::bail!("the list cache is unavailable (or off)");
        };
        engine.home_page_lists(
            &overrides,
            &profile,
            &history,
            now,
            &mut PageTimings::default(),
            &mut lists,
        )?;
        self.serving.segments.keep(lists.segments.take_computed());
        if lists.computed.is_empty() {
            return Ok(false);
        }
        self.serving
            .lists
            .put(key, lists.all())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(true)
    }
}

/// The key of a profile's candidate lists: profile, model (and catalogue size, which binds
/// its title indexes), the history's version (`History::version`: any event changes it) and
/// the page variant. A changed history never finds the lists of an older one.
fn lists_key(engine: &Engine, profile: &Profile, history: &History, overrides: u64) -> String {
    format!(
        "lists:{}:{}:{}:{:016x}:{overrides:016x}",
        profile.id,
        engine.model.version,
        engine.catalog.len(),
        history.version(),
    )
}

/// Fingerprints of the page overrides pages asked for lately, for `lists_key`. Overrides have
/// no `Hash` (their row params are TOML values, floats among them), and hashing their `Debug`
/// text on every page cost about as much as the page's filters; there are only as many
/// distinct overrides as variants, and finding one by `==` is cheap.
#[derive(Default)]
pub struct OverrideFingerprints(std::sync::Mutex<Vec<(PageOverrides, u64)>>);

impl OverrideFingerprints {
    /// Distinct overrides remembered (the oldest is forgotten first).
    const KEEP: usize = 64;

    /// Equal overrides get equal fingerprints, in every process of one build (SipHash with
    /// fixed keys over the `Debug` text): replicas share the list cache.
    pub fn of(&self, overrides: &PageOverrides) -> u64 {
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, fingerprint)) = known.iter().find(|(o, _)| o == overrides) {
            return *fingerprint;
        }
        use std::hash::{Hash, Hasher};
        #[allow(deprecated)]
        let mut h = std::hash::SipHasher::new();
        format!("{overrides:?}").hash(&mut h);
        let fingerprint = h.finish();
        if known.len() >= Self::KEEP {
            known.remove(0);
        }
        known.push((overrides.clone(), fingerprint));
        fingerprint
    }
}

impl AppState {
    /// The profile's sticky-bucket documents for the experiments `features` may assign; `None`
    /// (evaluate without sticky bucketing, store nothing) when they cannot all be read.
    /// `database`: false when the database is known to be down. A dependency that failed is
    /// added to `skipped`.
    async fn sticky_documents(
        &self,
        features: &experiments::FeatureSet,
        attributes: &serde_json::Value,
        database: bool,
        skipped: &mut Vec<Dependency>,
    ) -> Option<experiments::StickyDocs> {
        let identities: Vec<String> = experiments::sticky_identities(features, attributes)
            .iter()
            .map(|(name, value)| sticky_attribute_key(name, value))
            .collect();
        if identities.is_empty() {
            return Some(Default::default());
        }
        let read = self
            .serving
            .sticky
            .load(&self.store, &identities, database)
            .await;
        skip(skipped, &read.skipped);
        Some(
            read.docs?
                .into_iter()
                .filter_map(|(identity, doc)| match serde_json::from_str(&doc) {
                    Ok(doc) => Some((identity, doc)),
                    Err(e) => {
                        tracing::warn!(%identity, error = %e, "sticky-bucket document ignored");
                        None
                    }
                })
                .collect(),
        )
    }

    async fn save_sticky_documents(
        &self,
        docs: &[StickyAssignmentsDocument],
        now: Millis,
        skipped: &mut Vec<Dependency>,
    ) {
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
        let failed = self.serving.sticky.save(&self.store, &rows, now).await;
        skip(skipped, &failed);
    }
}

/// Adds dependencies to a page's `skipped` list, each once.
fn skip(skipped: &mut Vec<Dependency>, failed: &[Dependency]) {
    for d in failed {
        if !skipped.contains(d) {
            skipped.push(*d);
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
            phase: i64::from(a.phase),
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
