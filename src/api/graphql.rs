//! The GraphQL schema. Resolvers parse input into domain types, call the engine or the store,
//! and map the result; errors carry `extensions.code` (`NOT_FOUND`, `BAD_USER_INPUT`,
//! `INTERNAL`).

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::{
    Context, EmptySubscription, Enum, Error, ErrorExtensions, ID, InputObject, Json, Object,
    Schema, SimpleObject,
};

use super::AppState;
use crate::clock::{format_rfc3339, parse_rfc3339};
use crate::domain::{self, EventAction, ProfileId, TitleId};
use crate::engine::Engine;
use crate::engine::catalog::TitleIdx;
use crate::experiments::{self, RequestInfo, stats};
use crate::store::logging::{ExposureRecord, ItemImpression, PageImpressions};
use crate::store::records::NewEvent;

pub type MarqueeSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// Largest `first` accepted by list fields.
const MAX_PAGE: i32 = 100;
/// Largest batch `recordEvents` accepts.
const MAX_EVENTS: usize = 500;

pub fn build_schema(state: Arc<AppState>) -> MarqueeSchema {
    Schema::build(QueryRoot, MutationRoot, EmptySubscription)
        .data(state)
        .limit_depth(12)
        .limit_complexity(10_000)
        .finish()
}

/// The schema in SDL, as exported to `schema/schema.graphql`.
pub fn sdl() -> String {
    Schema::build(QueryRoot, MutationRoot, EmptySubscription)
        .finish()
        .sdl()
}

fn coded(code: &'static str, message: impl Into<String>) -> Error {
    Error::new(message).extend_with(|_, e| e.set("code", code))
}

fn not_found(message: impl Into<String>) -> Error {
    coded("NOT_FOUND", message)
}

fn bad_input(message: impl Into<String>) -> Error {
    coded("BAD_USER_INPUT", message)
}

/// Logs the cause and hides it from the client.
fn internal(e: anyhow::Error) -> Error {
    tracing::error!(error = %format!("{e:#}"), "request failed");
    coded("INTERNAL", "internal error; see the server log")
}

fn state<'a>(ctx: &Context<'a>) -> &'a Arc<AppState> {
    // Registered in `build_schema`; the SDL-only schema never executes resolvers.
    ctx.data_unchecked::<Arc<AppState>>()
}

/// The profile a catalogue query is made for, if any (`NOT_FOUND` when unknown).
async fn viewer(
    ctx: &Context<'_>,
    profile_id: Option<&ID>,
) -> Result<Option<domain::Profile>, Error> {
    let Some(id) = profile_id else {
        return Ok(None);
    };
    let id = parse_profile_id(id)?;
    state(ctx)
        .store
        .profile(&id)
        .await
        .map_err(internal)?
        .map(Some)
        .ok_or_else(|| not_found(format!("no profile {id}")))
}

fn parse_first(first: i32) -> Result<usize, Error> {
    if (1..=MAX_PAGE).contains(&first) {
        Ok(first as usize)
    } else {
        Err(bad_input(format!(
            "first must be between 1 and {MAX_PAGE}, got {first}"
        )))
    }
}

fn parse_profile_id(id: &ID) -> Result<ProfileId, Error> {
    ProfileId::parse(id).map_err(|e| bad_input(format!("profileId: {e}")))
}

fn parse_title_id(field: &str, id: &ID) -> Result<TitleId, Error> {
    TitleId::parse(id).map_err(|e| bad_input(format!("{field}: {e}")))
}

// ---------------------------------------------------------------------------------------------
// Output types

pub struct Title(domain::Title);

impl Title {
    fn at(engine: &Engine, idx: TitleIdx) -> Self {
        Title(engine.catalog.title(idx).clone())
    }
}

#[Object]
impl Title {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn year(&self) -> Option<i32> {
        self.0.year
    }
    async fn genres(&self) -> &[String] {
        &self.0.genres
    }
    /// MPAA rating (G, PG, PG-13, R, NC-17); null when unrated.
    async fn maturity_rating(&self) -> Option<&'static str> {
        self.0.maturity.map(|m| m.as_str())
    }
    async fn overview(&self) -> Option<&str> {
        self.0.overview.as_deref()
    }
    /// When the title joined the catalogue (RFC 3339).
    async fn added_at(&self) -> String {
        format_rfc3339(self.0.added_at)
    }
    /// Countries where the title is available; null means everywhere.
    async fn countries(&self) -> Option<Vec<&str>> {
        self.0
            .countries
            .as_ref()
            .map(|cs| cs.iter().map(|c| c.as_str()).collect())
    }
}

pub struct Profile(domain::Profile);

#[Object]
impl Profile {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn account_id(&self) -> ID {
        ID(self.0.account_id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn is_kids(&self) -> bool {
        self.0.is_kids
    }
    /// Highest maturity rating this profile is shown.
    async fn maturity_limit(&self) -> Option<&'static str> {
        crate::engine::filters::maturity_limit(&self.0).map(|m| m.as_str())
    }
    async fn country(&self) -> Option<&str> {
        self.0.country.as_ref().map(|c| c.as_str())
    }
    async fn onboarding_genres(&self) -> &[String] {
        &self.0.onboarding_genres
    }
    /// All profiles of this profile's account, main profile first.
    async fn account_profiles(&self, ctx: &Context<'_>) -> Result<Vec<Profile>, Error> {
        let profiles = state(ctx)
            .store
            .profiles_of(&self.0.account_id)
            .await
            .map_err(internal)?;
        Ok(profiles.into_iter().map(Profile).collect())
    }
}

#[derive(SimpleObject)]
pub struct RowItem {
    /// 0-based position in the row.
    position: i32,
    score: f64,
    /// Why this title is here, e.g. "Because you watched Toy Story".
    reason: Option<String>,
    title: Title,
    /// Titles from the profile's history that led to this item.
    evidence: Vec<Title>,
}

#[derive(SimpleObject)]
pub struct Row {
    id: ID,
    title: String,
    /// The row definition this row comes from (`top-picks`, `because-you-watched`, …).
    kind: String,
    /// The model version that filled this row (experiments may compare versions per row).
    model_version: String,
    items: Vec<RowItem>,
}

/// An experiment that shaped this page, and the variation the profile got.
#[derive(SimpleObject)]
pub struct Assignment {
    feature_key: String,
    experiment_key: String,
    variation_index: i32,
    variation_key: String,
    in_experiment: bool,
    /// False when the variation was forced (preview, QA) rather than hashed.
    hash_used: bool,
}

#[derive(SimpleObject)]
pub struct ExperimentVariation {
    index: i32,
    key: String,
    name: Option<String>,
    weight: f64,
    /// The variation's feature value, as JSON text.
    value: String,
}

/// An experiment rule of a feature in `experiments/`.
#[derive(SimpleObject)]
pub struct Experiment {
    key: String,
    feature_key: String,
    name: Option<String>,
    /// The attribute hashed to assign variations (`id` is the profile id).
    hash_attribute: String,
    /// Share of eligible profiles included, 0–1.
    coverage: f64,
    /// Targeting condition (MongoDB-style JSON), if any.
    condition: Option<String>,
    variations: Vec<ExperimentVariation>,
}

/// treatment / control − 1, with a 95% confidence interval and a two-sided p-value.
#[derive(SimpleObject)]
pub struct LiftEstimate {
    relative: f64,
    ci_low: f64,
    ci_high: f64,
    p_value: f64,
    significant: bool,
}

impl From<stats::Lift> for LiftEstimate {
    fn from(l: stats::Lift) -> Self {
        LiftEstimate {
            relative: l.relative,
            ci_low: l.ci_low,
            ci_high: l.ci_high,
            p_value: l.p_value,
            significant: l.significant(),
        }
    }
}

#[derive(SimpleObject)]
pub struct VariationReport {
    index: i32,
    key: String,
    name: Option<String>,
    weight: f64,
    exposed_profiles: i32,
    impressions: i32,
    plays: i32,
    completes: i32,
    /// Attributed plays per impression.
    play_rate: Option<f64>,
    /// Attributed completions per attributed play.
    completion_rate: Option<f64>,
    /// Share of exposed profiles with at least one attributed play.
    conversion: Option<f64>,
    play_rate_lift: Option<LiftEstimate>,
    completion_rate_lift: Option<LiftEstimate>,
    conversion_lift: Option<LiftEstimate>,
}

#[derive(SimpleObject)]
pub struct ExperimentReport {
    key: String,
    feature_key: String,
    variations: Vec<VariationReport>,
    /// Chi-square test of exposed profiles against the configured weights.
    srm_p_value: Option<f64>,
    /// The split does not match the weights (p < 0.001): results are not trustworthy.
    srm_flagged: bool,
    /// Profiles exposed to more than one variation, left out.
    excluded_profiles: i32,
}

#[derive(InputObject)]
pub struct ForcedVariationInput {
    experiment_key: String,
    variation: i32,
}

#[derive(SimpleObject)]
pub struct HomePage {
    /// Send it back with events caused by this page, so they can be attributed.
    request_id: ID,
    generated_at: String,
    /// The model version that ranked this page.
    model_version: String,
    /// The experiments that shaped this page.
    assignments: Vec<Assignment>,
    rows: Vec<Row>,
}

#[derive(SimpleObject)]
pub struct TitleEdge {
    cursor: String,
    node: Title,
}

#[derive(SimpleObject)]
pub struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(SimpleObject)]
pub struct TitleConnection {
    edges: Vec<TitleEdge>,
    page_info: PageInfo,
    total_count: i32,
}

#[derive(SimpleObject)]
pub struct Genre {
    name: String,
    title_count: i32,
}

#[derive(SimpleObject)]
pub struct RecordEventsResult {
    /// Events stored by this call.
    accepted: i32,
    /// Events skipped because their `clientEventId` was seen before for this profile.
    duplicates: i32,
}

// ---------------------------------------------------------------------------------------------
// Queries

pub struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
    /// The personalized home page of a profile. `platform`, `appVersion` and `attributes`
    /// are available to experiment targeting; `forcedVariations` previews a variation.
    async fn home(
        &self,
        ctx: &Context<'_>,
        profile_id: ID,
        platform: Option<String>,
        app_version: Option<String>,
        attributes: Option<Json<serde_json::Map<String, serde_json::Value>>>,
        forced_variations: Option<Vec<ForcedVariationInput>>,
    ) -> Result<HomePage, Error> {
        let state = state(ctx);
        let id = parse_profile_id(&profile_id)?;
        let profile = state
            .store
            .profile(&id)
            .await
            .map_err(internal)?
            .ok_or_else(|| not_found(format!("no profile {id}")))?;
        let preview = forced_variations.as_ref().is_some_and(|f| !f.is_empty());
        let mut forced = HashMap::new();
        for f in forced_variations.unwrap_or_default() {
            if f.variation < 0 {
                return Err(bad_input(format!(
                    "forcedVariations: variation of {:?} must be ≥ 0",
                    f.experiment_key
                )));
            }
            forced.insert(f.experiment_key, i64::from(f.variation));
        }
        let request = RequestInfo {
            platform,
            app_version,
            extra: attributes.map(|a| a.0).unwrap_or_default(),
        };
        let variant = experiments::page_variant(
            &state.features.load(),
            experiments::attributes(&profile, &request),
            forced,
        );
        for problem in &variant.problems {
            tracing::warn!(%problem, "experiment value ignored");
        }
        let history = state.store.history(&id).await.map_err(internal)?;
        let engine = state.engine.load_full();
        let now = state.clock.now();
        let page = engine
            .home_page_with(&variant.overrides, &profile, &history, now)
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "experiment variant failed; serving the default page");
                engine.home_page(&profile, &history, now)
            });
        let request_id = state.next_request_id();
        // Previews (forced variations) are not real views: nothing is logged for them.
        if !preview {
            let exposures: Vec<ExposureRecord> = variant
                .assignments
                .iter()
                .filter(|a| a.hash_used)
                .map(|a| ExposureRecord {
                    experiment_key: a.experiment_key.clone(),
                    profile_id: id.to_string(),
                    variation_index: a.variation_index as i64,
                    variation_key: a.variation_key.clone(),
                    feature_key: a.feature_key.clone(),
                    at: now,
                })
                .collect();
            if let Err(e) = state.record_exposures(exposures).await {
                // The page is still served; the exposure is retried on the next page.
                tracing::error!(error = %format!("{e:#}"), "recording exposures failed");
            }
            let assignments = serde_json::Value::Object(
                variant
                    .assignments
                    .iter()
                    .map(|a| {
                        (
                            a.experiment_key.clone(),
                            serde_json::Value::from(a.variation_index),
                        )
                    })
                    .collect(),
            )
            .to_string();
            let items = page
                .rows
                .iter()
                .enumerate()
                .flat_map(|(row_position, row)| {
                    let engine = &engine;
                    row.items
                        .iter()
                        .enumerate()
                        .map(move |(item_position, item)| ItemImpression {
                            title_id: engine.catalog.title(item.title).id.to_string(),
                            row_id: row.id.clone(),
                            row_position: row_position as i64,
                            item_position: item_position as i64,
                        })
                })
                .collect();
            state.impressions.offer(PageImpressions {
                request_id: request_id.clone(),
                profile_id: id.to_string(),
                served_at: now,
                model_version: engine.model.version.clone(),
                assignments,
                items,
            });
        }
        Ok(HomePage {
            request_id: ID(request_id),
            generated_at: format_rfc3339(now),
            model_version: engine.model.version.clone(),
            assignments: variant
                .assignments
                .into_iter()
                .map(|a| Assignment {
                    feature_key: a.feature_key,
                    experiment_key: a.experiment_key,
                    variation_index: a.variation_index as i32,
                    variation_key: a.variation_key,
                    in_experiment: a.in_experiment,
                    hash_used: a.hash_used,
                })
                .collect(),
            rows: page
                .rows
                .into_iter()
                .map(|row| Row {
                    id: ID(row.id),
                    title: row.title,
                    kind: row.kind,
                    model_version: row.model_version,
                    items: row
                        .items
                        .into_iter()
                        .enumerate()
                        .map(|(position, item)| RowItem {
                            position: position as i32,
                            score: f64::from(item.score),
                            reason: item.reason,
                            title: Title::at(&engine, item.title),
                            evidence: item
                                .evidence
                                .iter()
                                .map(|t| Title::at(&engine, *t))
                                .collect(),
                        })
                        .collect(),
                })
                .collect(),
        })
    }

    /// Results of an experiment, per variation, against variation 0 as control.
    async fn experiment_report(
        &self,
        ctx: &Context<'_>,
        key: String,
    ) -> Result<ExperimentReport, Error> {
        let state = state(ctx);
        let features = state.features.load_full();
        let report = crate::app::experiment_report(&state.store, &features, &key)
            .await
            .map_err(internal)?
            .ok_or_else(|| not_found(format!("no experiment {key:?}")))?;
        let count = |n: u64| i32::try_from(n).unwrap_or(i32::MAX);
        Ok(ExperimentReport {
            key: report.experiment.key.clone(),
            feature_key: report.experiment.feature_key.clone(),
            variations: report
                .analysis
                .variations
                .iter()
                .zip(&report.experiment.variations)
                .map(|(v, def)| VariationReport {
                    index: v.index as i32,
                    key: def.key.clone(),
                    name: def.name.clone(),
                    weight: def.weight,
                    exposed_profiles: count(v.profiles),
                    impressions: count(v.impressions),
                    plays: count(v.plays),
                    completes: count(v.completes),
                    play_rate: v.play_rate.map(|r| r.ratio),
                    completion_rate: v.completion_rate.map(|r| r.ratio),
                    conversion: v.conversion.map(|r| r.ratio),
                    play_rate_lift: v.play_rate_lift.map(Into::into),
                    completion_rate_lift: v.completion_rate_lift.map(Into::into),
                    conversion_lift: v.conversion_lift.map(Into::into),
                })
                .collect(),
            srm_p_value: report.analysis.srm_p_value,
            srm_flagged: report.analysis.srm_flagged,
            excluded_profiles: count(report.excluded_profiles as u64),
        })
    }

    /// The experiments defined in `experiments/`.
    async fn experiments(&self, ctx: &Context<'_>) -> Vec<Experiment> {
        state(ctx)
            .features
            .load()
            .experiments()
            .into_iter()
            .map(|e| Experiment {
                key: e.key,
                feature_key: e.feature_key,
                name: e.name,
                hash_attribute: e.hash_attribute,
                coverage: e.coverage,
                condition: e.condition.map(|c| c.to_string()),
                variations: e
                    .variations
                    .into_iter()
                    .map(|v| ExperimentVariation {
                        index: v.index as i32,
                        key: v.key,
                        name: v.name,
                        weight: v.weight,
                        value: v.value.to_string(),
                    })
                    .collect(),
            })
            .collect()
    }

    async fn title(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Title>, Error> {
        let id = parse_title_id("id", &id)?;
        Ok(state(ctx)
            .engine
            .load()
            .catalog
            .by_id(&id)
            .cloned()
            .map(Title))
    }

    /// Titles whose name contains every word of the query, most popular first.
    async fn search(
        &self,
        ctx: &Context<'_>,
        query: String,
        #[graphql(default = 20)] first: i32,
        profile_id: Option<ID>,
    ) -> Result<Vec<Title>, Error> {
        let first = parse_first(first)?;
        if query.len() > 200 {
            return Err(bad_input("query is longer than 200 characters"));
        }
        let viewer = viewer(ctx, profile_id.as_ref()).await?;
        let engine = state(ctx).engine.load_full();
        Ok(engine
            .search(&query, first, viewer.as_ref())
            .into_iter()
            .map(|t| Title::at(&engine, t))
            .collect())
    }

    /// The catalogue (or one genre of it), most popular first, Relay-style pagination.
    async fn browse(
        &self,
        ctx: &Context<'_>,
        genre: Option<String>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
        profile_id: Option<ID>,
    ) -> Result<TitleConnection, Error> {
        let first = parse_first(first)?;
        let viewer = viewer(ctx, profile_id.as_ref()).await?;
        let engine = state(ctx).engine.load_full();
        if let Some(g) = genre.as_ref().filter(|g| !engine.catalog.has_genre(g)) {
            return Err(bad_input(format!("unknown genre {g:?} (see `genres`)")));
        }
        let list = engine.browse(genre.as_deref(), viewer.as_ref());
        let start = match after {
            None => 0,
            Some(c) => c
                .strip_prefix("o:")
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| *n < list.len())
                .map(|n| n + 1)
                .ok_or_else(|| bad_input(format!("after: {c:?} is not a cursor of this list")))?,
        };
        let end = (start + first).min(list.len());
        let edges: Vec<TitleEdge> = (start..end)
            .map(|i| TitleEdge {
                cursor: format!("o:{i}"),
                node: Title::at(&engine, list[i]),
            })
            .collect();
        Ok(TitleConnection {
            page_info: PageInfo {
                has_next_page: end < list.len(),
                end_cursor: edges.last().map(|e| e.cursor.clone()),
            },
            edges,
            total_count: list.len() as i32,
        })
    }

    /// Genres of the catalogue with their title counts.
    async fn genres(&self, ctx: &Context<'_>) -> Vec<Genre> {
        state(ctx)
            .engine
            .load()
            .catalog
            .genres()
            .map(|(name, n)| Genre {
                name: name.to_owned(),
                title_count: n as i32,
            })
            .collect()
    }

    /// More Like This. With `profileId`, titles that profile must not see are left out.
    async fn similar(
        &self,
        ctx: &Context<'_>,
        title_id: ID,
        #[graphql(default = 20)] first: i32,
        profile_id: Option<ID>,
    ) -> Result<Vec<Title>, Error> {
        let state = state(ctx);
        let first = parse_first(first)?;
        let id = parse_title_id("titleId", &title_id)?;
        let viewer = match profile_id {
            None => None,
            Some(p) => {
                let pid = parse_profile_id(&p)?;
                let profile = state
                    .store
                    .profile(&pid)
                    .await
                    .map_err(internal)?
                    .ok_or_else(|| not_found(format!("no profile {pid}")))?;
                let history = state.store.history(&pid).await.map_err(internal)?;
                Some((profile, history))
            }
        };
        let engine = state.engine.load_full();
        let similar = engine
            .similar(&id, first, viewer.as_ref().map(|(p, h)| (p, h)))
            .ok_or_else(|| not_found(format!("no title {id}")))?;
        Ok(similar.into_iter().map(|t| Title::at(&engine, t)).collect())
    }

    /// Profiles to choose from (account order; a kids profile follows its account's main one).
    async fn profiles(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        kids: Option<bool>,
    ) -> Result<Vec<Profile>, Error> {
        let first = parse_first(first)?;
        let profiles = state(ctx)
            .store
            .list_profiles(kids, first)
            .await
            .map_err(internal)?;
        Ok(profiles.into_iter().map(Profile).collect())
    }

    async fn profile(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Profile>, Error> {
        let id = parse_profile_id(&id)?;
        Ok(state(ctx)
            .store
            .profile(&id)
            .await
            .map_err(internal)?
            .map(Profile))
    }
}

// ---------------------------------------------------------------------------------------------
// Mutations

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum EventKind {
    Play,
    Progress,
    Complete,
    Rating,
    ThumbsUp,
    ThumbsDown,
    Click,
}

impl From<EventKind> for domain::EventKind {
    fn from(k: EventKind) -> Self {
        match k {
            EventKind::Play => Self::Play,
            EventKind::Progress => Self::Progress,
            EventKind::Complete => Self::Complete,
            EventKind::Rating => Self::Rating,
            EventKind::ThumbsUp => Self::ThumbsUp,
            EventKind::ThumbsDown => Self::ThumbsDown,
            EventKind::Click => Self::Click,
        }
    }
}

#[derive(InputObject)]
pub struct CreateProfileInput {
    id: ID,
    /// Created when it does not exist yet.
    account_id: ID,
    name: String,
    #[graphql(default = false)]
    is_kids: bool,
    /// G, PG, PG-13, R or NC-17; kids profiles default to PG.
    maturity_limit: Option<String>,
    /// ISO 3166-1 alpha-2.
    country: Option<String>,
    /// Genres to start from while the profile has no history.
    #[graphql(default)]
    onboarding_genres: Vec<String>,
}

#[derive(InputObject)]
pub struct EventInput {
    /// Chosen by the client; resending the same id for the same profile is harmless.
    client_event_id: ID,
    title_id: ID,
    kind: EventKind,
    /// PROGRESS: fraction watched, 0–1. RATING: stars, 0.5–5. Otherwise omitted.
    value: Option<f64>,
    /// RFC 3339; defaults to the time the server receives the event.
    occurred_at: Option<String>,
    /// The `HomePage.requestId` this event resulted from, if any.
    request_id: Option<ID>,
}

pub struct MutationRoot;

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Creates a profile (sign-up or onboarding). `BAD_USER_INPUT` when the id is taken or a
    /// field is invalid.
    async fn create_profile(
        &self,
        ctx: &Context<'_>,
        input: CreateProfileInput,
    ) -> Result<Profile, Error> {
        let state = state(ctx);
        let field = |name: &str, e: domain::ParseError| bad_input(format!("{name}: {e}"));
        let id = parse_profile_id(&input.id)?;
        if input.name.trim().is_empty() || input.name.len() > 100 {
            return Err(bad_input("name must be 1–100 characters"));
        }
        let engine = state.engine.load();
        if let Some(g) = input
            .onboarding_genres
            .iter()
            .find(|g| !engine.catalog.has_genre(g))
        {
            return Err(bad_input(format!("onboardingGenres: unknown genre {g:?}")));
        }
        let profile = domain::Profile {
            id: id.clone(),
            account_id: domain::AccountId::parse(&input.account_id)
                .map_err(|e| field("accountId", e))?,
            name: input.name.trim().to_owned(),
            is_kids: input.is_kids,
            maturity_limit: input
                .maturity_limit
                .as_deref()
                .map(str::parse::<domain::MaturityRating>)
                .transpose()
                .map_err(|e| field("maturityLimit", e))?,
            country: input
                .country
                .as_deref()
                .map(domain::Country::parse)
                .transpose()
                .map_err(|e| field("country", e))?,
            onboarding_genres: input.onboarding_genres,
        };
        let created = state
            .store
            .create_profile(&profile, state.clock.now())
            .await
            .map_err(internal)?;
        if !created {
            return Err(bad_input(format!("profile {id} already exists")));
        }
        Ok(Profile(profile))
    }

    /// Records viewing events. All events are validated first; if any is invalid, none is
    /// stored and the error names it.
    async fn record_events(
        &self,
        ctx: &Context<'_>,
        profile_id: ID,
        events: Vec<EventInput>,
    ) -> Result<RecordEventsResult, Error> {
        let state = state(ctx);
        let pid = parse_profile_id(&profile_id)?;
        if events.len() > MAX_EVENTS {
            return Err(bad_input(format!(
                "at most {MAX_EVENTS} events per call, got {}",
                events.len()
            )));
        }
        state
            .store
            .profile(&pid)
            .await
            .map_err(internal)?
            .ok_or_else(|| not_found(format!("no profile {pid}")))?;
        let now = state.clock.now();
        let engine = state.engine.load_full();
        let parsed = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                let at = |msg: String| {
                    bad_input(format!(
                        "events[{i}] (clientEventId {:?}): {msg}",
                        e.client_event_id.as_str()
                    ))
                };
                if e.client_event_id.is_empty() || e.client_event_id.len() > 128 {
                    return Err(at("clientEventId must be 1–128 characters".into()));
                }
                let title_id = TitleId::parse(&e.title_id).map_err(|err| at(err.0))?;
                if engine.catalog.idx(&title_id).is_none() {
                    return Err(at(format!("unknown title {title_id}")));
                }
                let action =
                    EventAction::from_parts(e.kind.into(), e.value).map_err(|err| at(err.0))?;
                let occurred_at = match &e.occurred_at {
                    None => now,
                    Some(s) => parse_rfc3339(s).map_err(at)?,
                };
                Ok(NewEvent {
                    title_id,
                    action,
                    occurred_at,
                    client_event_id: e.client_event_id.to_string(),
                    request_id: e.request_id.map(|r| r.to_string()),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let summary = state
            .store
            .record_events(&pid, &parsed, now)
            .await
            .map_err(internal)?;
        Ok(RecordEventsResult {
            accepted: summary.accepted as i32,
            duplicates: summary.duplicates as i32,
        })
    }
}
