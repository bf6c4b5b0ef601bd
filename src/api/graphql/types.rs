//! The schema's output and input types, and their mapping from engine, app and experiment
//! values.
//!
//! The types a home page is made of (`HomePage`, `Row`, `RowItem`, `Title`, …) resolve their
//! fields one after another (`serial`): none of their resolvers waits for anything, and
//! async-graphql's default, concurrent resolution gives every field of every object its own
//! task in a `FuturesUnordered` — about 3,000 per page, whose polling and wakers were about
//! 6 % of the server's CPU samples. The order of the answer's keys is the query's either way.

use async_graphql::{ComplexObject, Context, Enum, Error, ID, InputObject, Object, SimpleObject};

use std::sync::Arc;

use super::state;
use crate::app;
use crate::clock::format_rfc3339;
use crate::domain;
use crate::engine::Engine;
use crate::engine::catalog::TitleIdx;
use crate::experiments::{self, stats};

/// A title of the catalogue that served the answer: the engine and the title's index, not a
/// copy — a page names about 200 titles, and copying each one's strings cost more than
/// resolving its fields.
pub struct Title {
    engine: Arc<Engine>,
    idx: TitleIdx,
}

impl Title {
    pub(super) fn at(engine: &Arc<Engine>, idx: TitleIdx) -> Self {
        Title {
            engine: engine.clone(),
            idx,
        }
    }

    fn title(&self) -> &domain::Title {
        self.engine.catalog.title(self.idx)
    }

    /// The engine whose catalogue the title is in, and its index there.
    pub(super) fn engine_and_idx(&self) -> (&Arc<Engine>, TitleIdx) {
        (&self.engine, self.idx)
    }

    fn details(&self) -> Option<&domain::TitleDetails> {
        self.title().details.as_deref()
    }
}

/// The title's values, read by the resolvers below and by `direct` (the home query written
/// straight to JSON): one definition of each field's value for both.
impl Title {
    pub(super) fn id_text(&self) -> String {
        self.title().id.to_string()
    }
    pub(super) fn name_text(&self) -> &str {
        &self.title().name
    }
    pub(super) fn year_value(&self) -> Option<i32> {
        self.title().year
    }
    pub(super) fn genre_list(&self) -> &[String] {
        &self.title().genres
    }
    pub(super) fn maturity(&self) -> Option<MaturityRating> {
        self.title().maturity.map(MaturityRating::from)
    }
    pub(super) fn overview_text(&self) -> Option<&str> {
        self.title().overview.as_deref()
    }
    pub(super) fn added_at_text(&self) -> String {
        format_rfc3339(self.title().added_at)
    }
    pub(super) fn country_list(&self) -> Option<Vec<&str>> {
        self.title()
            .countries
            .as_ref()
            .map(|cs| cs.iter().map(|c| c.as_str()).collect())
    }
    pub(super) fn tagline_text(&self) -> Option<&str> {
        self.details()?.tagline.as_deref()
    }
    pub(super) fn runtime_minutes(&self) -> Option<u32> {
        self.details()?.runtime_minutes
    }
    pub(super) fn original_language_code(&self) -> Option<&str> {
        self.details()?.original_language.as_deref()
    }
    pub(super) fn cast_members(&self) -> Vec<CastMember> {
        self.details().map_or_else(Vec::new, |d| {
            d.cast
                .iter()
                .map(|c| CastMember {
                    name: c.name.clone(),
                    character: c.character.clone(),
                })
                .collect()
        })
    }
    pub(super) fn director_text(&self) -> Option<String> {
        self.details()
            .filter(|d| !d.directors.is_empty())
            .map(|d| d.directors.join(" & "))
    }
    pub(super) fn poster(&self) -> Option<&str> {
        self.details()?.poster_url.as_deref()
    }
    pub(super) fn backdrop(&self) -> Option<&str> {
        self.details()?.backdrop_url.as_deref()
    }
}

#[Object(serial)]
impl Title {
    async fn id(&self) -> ID {
        ID(self.id_text())
    }
    async fn name(&self) -> &str {
        self.name_text()
    }
    async fn year(&self) -> Option<i32> {
        self.year_value()
    }
    async fn genres(&self) -> &[String] {
        self.genre_list()
    }
    /// MPAA rating; null when unrated.
    async fn maturity_rating(&self) -> Option<MaturityRating> {
        self.maturity()
    }
    async fn overview(&self) -> Option<&str> {
        self.overview_text()
    }
    /// When the title joined the catalogue (RFC 3339).
    async fn added_at(&self) -> String {
        self.added_at_text()
    }
    /// Countries where the title is available; null means everywhere.
    async fn countries(&self) -> Option<Vec<&str>> {
        self.country_list()
    }

    // Provider metadata (`marquee import tmdb`); null or empty for titles without it.
    // `overview` and `maturityRating` above fall back to it too.

    /// The title's tagline (at most 300 characters).
    async fn tagline(&self) -> Option<&str> {
        self.tagline_text()
    }
    /// Running time in minutes.
    async fn runtime(&self) -> Option<u32> {
        self.runtime_minutes()
    }
    /// ISO 639-1 code of the original language, e.g. "en".
    async fn original_language(&self) -> Option<&str> {
        self.original_language_code()
    }
    /// Top-billed cast in billing order (at most 10).
    async fn cast(&self) -> Vec<CastMember> {
        self.cast_members()
    }
    /// The director; co-directors are joined with " & ".
    async fn director(&self) -> Option<String> {
        self.director_text()
    }
    /// Absolute URL of a poster image (about 500 px wide); null when there is none, and the
    /// client draws its own.
    async fn poster_url(&self) -> Option<&str> {
        self.poster()
    }
    /// Absolute URL of a wide backdrop image (about 1280 px).
    async fn backdrop_url(&self) -> Option<&str> {
        self.backdrop()
    }
}

/// An actor of a title and the role played.
#[derive(SimpleObject)]
#[graphql(serial)]
pub struct CastMember {
    pub(super) name: String,
    pub(super) character: Option<String>,
}

pub struct Profile(pub(super) domain::Profile);

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
    /// Highest maturity rating this profile is shown (null: no limit).
    async fn maturity_limit(&self) -> Option<MaturityRating> {
        crate::engine::filters::maturity_limit(&self.0).map(MaturityRating::from)
    }
    async fn country(&self) -> Option<&str> {
        self.0.country.as_ref().map(|c| c.as_str())
    }
    async fn onboarding_genres(&self) -> &[String] {
        &self.0.onboarding_genres
    }
    /// All profiles of the caller's account, main profile first (only the locked one in a
    /// kids session).
    async fn account_profiles(&self, ctx: &Context<'_>) -> Result<Vec<Profile>, Error> {
        let profiles = state(ctx)
            .caller_profiles(super::caller(ctx)?)
            .await
            .map_err(super::app_error)?;
        Ok(profiles.into_iter().map(Profile).collect())
    }
}

/// US MPAA ratings, least to most restrictive. (GraphQL names cannot hold a hyphen: PG-13 is
/// `PG_13`, NC-17 is `NC_17`.)
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum MaturityRating {
    G,
    #[graphql(name = "PG")]
    Pg,
    #[graphql(name = "PG_13")]
    Pg13,
    R,
    #[graphql(name = "NC_17")]
    Nc17,
}

impl MaturityRating {
    /// The value's name in the schema, as the executor writes it.
    pub(super) fn graphql_name(self) -> &'static str {
        use async_graphql::resolver_utils::EnumType;
        Self::items()
            .iter()
            .find(|item| item.value == self)
            .map_or("", |item| item.name)
    }
}

impl From<domain::MaturityRating> for MaturityRating {
    fn from(m: domain::MaturityRating) -> Self {
        match m {
            domain::MaturityRating::G => Self::G,
            domain::MaturityRating::Pg => Self::Pg,
            domain::MaturityRating::Pg13 => Self::Pg13,
            domain::MaturityRating::R => Self::R,
            domain::MaturityRating::Nc17 => Self::Nc17,
        }
    }
}

impl From<MaturityRating> for domain::MaturityRating {
    fn from(m: MaturityRating) -> Self {
        match m {
            MaturityRating::G => Self::G,
            MaturityRating::Pg => Self::Pg,
            MaturityRating::Pg13 => Self::Pg13,
            MaturityRating::R => Self::R,
            MaturityRating::Nc17 => Self::Nc17,
        }
    }
}

/// How far the profile has watched a title.
#[derive(SimpleObject)]
#[graphql(serial)]
pub struct WatchProgress {
    /// 0–1.
    pub(super) fraction: f64,
    /// 0–100, rounded to a whole percent (what "40% watched" shows).
    pub(super) percent: i32,
}

impl From<domain::Progress> for WatchProgress {
    fn from(p: domain::Progress) -> Self {
        WatchProgress {
            fraction: p.get(),
            percent: (p.get() * 100.0).round() as i32,
        }
    }
}

#[derive(SimpleObject)]
#[graphql(serial)]
pub struct RowItem {
    /// 0-based position in the row.
    pub(super) position: i32,
    pub(super) score: f64,
    /// Why this title is here, e.g. "Because you watched Toy Story". Display text: read
    /// `progress` and `evidence` for the facts.
    pub(super) reason: Option<String>,
    pub(super) title: Title,
    /// Titles from the profile's history that led to this item.
    pub(super) evidence: Vec<Title>,
    /// How far the profile has watched the title, on rows that show it (Continue Watching).
    pub(super) progress: Option<WatchProgress>,
}

#[derive(SimpleObject)]
#[graphql(complex, serial)]
pub struct Row {
    pub(super) id: ID,
    pub(super) title: String,
    /// The id of the row definition (`rows/home.toml`) this row comes from: `top-picks`,
    /// `because-you-watched`, …
    pub(super) definition: ID,
    /// Same as `definition`.
    #[graphql(deprecation = "use `definition`")]
    pub(super) kind: String,
    /// The title this row is about, for rows named after one ("Because You Watched X").
    pub(super) anchor: Option<Title>,
    /// The model version that filled this row (experiments may compare versions per row).
    pub(super) model_version: String,
    #[graphql(skip)]
    pub(super) items: Vec<RowItem>,
}

#[ComplexObject]
impl Row {
    /// The row's titles in order; with `first` (1–100), only the first ones. A row has at most
    /// 100 (`size` in `rows/*.toml`).
    #[graphql(complexity = "super::home_cost::items(first, child_complexity)")]
    async fn items(&self, first: Option<i32>) -> Result<&[RowItem], Error> {
        let first = first.map(super::parse_first).transpose()?;
        Ok(self.first_items(first))
    }
}

impl Row {
    /// The first `first` items (all without it).
    pub(super) fn first_items(&self, first: Option<usize>) -> &[RowItem] {
        &self.items[..first.unwrap_or(usize::MAX).min(self.items.len())]
    }
}

/// An experiment that shaped this page, and the variation the profile got.
#[derive(SimpleObject)]
#[graphql(serial)]
pub struct Assignment {
    pub(super) feature_key: String,
    pub(super) experiment_key: String,
    pub(super) variation_index: i32,
    pub(super) variation_key: String,
    pub(super) in_experiment: bool,
    /// False when the variation was forced (preview, QA) rather than hashed.
    pub(super) hash_used: bool,
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

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ExperimentStatus {
    /// Authored; not served (previews may force its variations).
    Draft,
    /// Served: profiles are assigned, exposed and stick to their variation.
    Running,
    /// Not served; its report stays.
    Stopped,
}

/// One run of an experiment with its own randomisation.
#[derive(SimpleObject)]
pub struct ExperimentPhase {
    /// 0 for the first.
    number: i32,
    started_at: String,
    ended_at: Option<String>,
}

/// An experiment rule of a feature, with its lifecycle.
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
    /// `[namespace, start, end]` as JSON, if any: experiments in one namespace with
    /// disjoint ranges never share a profile.
    namespace: Option<String>,
    variations: Vec<ExperimentVariation>,
    status: ExperimentStatus,
    /// Phases so far, the current last.
    phases: Vec<ExperimentPhase>,
    /// The variation rolled out as the feature's default.
    winner: Option<i32>,
}

/// A feature as the console stores it: GrowthBook's feature definition (`defaultValue`,
/// `rules`), draft rules included.
#[derive(SimpleObject)]
pub struct FeatureConfig {
    key: String,
    definition: async_graphql::Json<serde_json::Value>,
    /// The configuration revision this was read at (give it back as `baseRevision`).
    revision: i32,
}

impl FeatureConfig {
    pub(super) fn new(key: String, definition: serde_json::Value, revision: Option<i64>) -> Self {
        FeatureConfig {
            key,
            definition: async_graphql::Json(definition),
            revision: revision.map_or(0, |r| i32::try_from(r).unwrap_or(i32::MAX)),
        }
    }
}

/// One changed value of a revision.
#[derive(SimpleObject)]
pub struct ConfigChange {
    /// `features.home-rows.rules[0].weights[1]`.
    path: String,
    /// JSON text; absent when the value was added.
    before: Option<String>,
    /// JSON text; absent when the value was removed.
    after: Option<String>,
}

/// A stored revision of the features and experiments: who changed what, when.
#[derive(SimpleObject)]
pub struct ConsoleRevision {
    revision: i32,
    at: String,
    author: String,
    /// save-feature, launch, stop, new-phase, choose-winner, import.
    action: String,
    /// The experiment or feature key (`*` for an import).
    subject: String,
    changes: Vec<ConfigChange>,
}

impl From<app::console::Revision> for ConsoleRevision {
    fn from(r: app::console::Revision) -> Self {
        ConsoleRevision {
            revision: i32::try_from(r.revision).unwrap_or(i32::MAX),
            at: format_rfc3339(r.created_at),
            author: r.author,
            action: r.action,
            subject: r.subject,
            changes: r
                .diff
                .into_iter()
                .map(|d| ConfigChange {
                    path: d.path,
                    before: d.before.map(|v| v.to_string()),
                    after: d.after.map(|v| v.to_string()),
                })
                .collect(),
        }
    }
}

/// Why a feature would be refused: where (`rules[0].variations[1][3]`) and what.
#[derive(SimpleObject)]
pub struct FeatureProblem {
    path: String,
    message: String,
}

impl FeatureProblem {
    pub(super) fn new(path: String, message: String) -> Self {
        FeatureProblem { path, message }
    }
}

/// The result of a change: the revision it is stored as.
#[derive(SimpleObject)]
pub struct ConsoleChangeResult {
    revision: i32,
}

impl ConsoleChangeResult {
    pub(super) fn new(revision: i64) -> Self {
        ConsoleChangeResult {
            revision: i32::try_from(revision).unwrap_or(i32::MAX),
        }
    }
}

/// A pre-launch estimate at the last week's traffic.
#[derive(SimpleObject)]
pub struct ExperimentPlan {
    /// The minimum detectable effect asked for (relative, 0.05 = 5%).
    mde: f64,
    /// Distinct profiles served a page in the last 7 days.
    weekly_profiles: i32,
    /// Share of those profiles who played a title from a page.
    baseline_conversion: Option<f64>,
    /// Exposed profiles per variation for a two-sided 5% test at 80% power.
    profiles_per_variation: Option<i32>,
    /// All variations at their weights and the coverage.
    profiles_needed: Option<i32>,
    estimated_days: Option<f64>,
}

impl From<app::reports::ExperimentPlan> for ExperimentPlan {
    fn from(p: app::reports::ExperimentPlan) -> Self {
        let count = |n: u64| i32::try_from(n).unwrap_or(i32::MAX);
        ExperimentPlan {
            mde: p.mde,
            weekly_profiles: i32::try_from(p.weekly_profiles).unwrap_or(i32::MAX),
            baseline_conversion: p.baseline_conversion,
            profiles_per_variation: p.profiles_per_variation.map(count),
            profiles_needed: p.profiles_needed.map(count),
            estimated_days: p.estimated_days,
        }
    }
}

/// treatment / control − 1, with a 95% confidence interval and a two-sided p-value.
#[derive(SimpleObject)]
pub struct LiftEstimate {
    relative: f64,
    ci_low: f64,
    ci_high: f64,
    /// Fixed-horizon p-value: valid at one look, at a sample size fixed in advance.
    p_value: f64,
    significant: bool,
    /// Always-valid (sequential, mSPRT) p-value: valid however often it is looked at.
    sequential_p_value: f64,
    /// Significant at one look but not sequentially: do not stop on it yet.
    peeking: bool,
}

impl From<stats::Lift> for LiftEstimate {
    fn from(l: stats::Lift) -> Self {
        LiftEstimate {
            relative: l.relative,
            ci_low: l.ci_low,
            ci_high: l.ci_high,
            p_value: l.p_value,
            significant: l.significant(),
            sequential_p_value: l.always_valid_p,
            peeking: l.peeking(),
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
    /// The guardrail metric (completion rate) is significantly worse than the control's
    /// (sequential test).
    guardrail_degraded: bool,
}

#[derive(SimpleObject)]
pub struct ExperimentReport {
    key: String,
    feature_key: String,
    variations: Vec<VariationReport>,
    /// The phase reported on (0 for the first): the current one. A new phase re-randomises,
    /// so earlier phases are not mixed in.
    phase: i32,
    /// Chi-square test of exposed profiles against the weights they were assigned by: per
    /// weight epoch of the phase (`srmEpochs`), the epochs' statistics added up.
    srm_p_value: Option<f64>,
    /// The split does not match the weights (p < 0.001): results are not trustworthy.
    srm_flagged: bool,
    /// The sample-ratio check of each span of the phase with one set of weights.
    srm_epochs: Vec<SrmEpoch>,
    /// Profiles exposed to more than one variation, left out.
    excluded_profiles: i32,
    status: ExperimentStatus,
    /// A variation's completion rate is significantly worse (guardrail).
    guardrail_flagged: bool,
    /// Some lift is significant only at a single look: reading it now is peeking.
    peeking_warning: bool,
}

/// A span of an experiment's phase under one set of weights (a weight or coverage change
/// starts the next): the profiles first exposed in it, against its weights.
#[derive(SimpleObject)]
pub struct SrmEpoch {
    started_at: String,
    weights: Vec<f64>,
    /// Profiles first exposed in the epoch, per variation (those within a second of its
    /// start, who may have been assigned by the previous weights, left out).
    first_exposed_profiles: Vec<i32>,
    /// Null when too few profiles to test.
    p_value: Option<f64>,
}

#[derive(InputObject)]
pub struct ForcedVariationInput {
    pub(super) experiment_key: String,
    pub(super) variation: i32,
}

#[derive(SimpleObject)]
#[graphql(serial)]
pub struct HomePage {
    /// Send it back with events caused by this page, so they can be attributed.
    pub(super) request_id: ID,
    pub(super) generated_at: String,
    /// The model version that ranked this page.
    pub(super) model_version: String,
    /// The experiments that shaped this page.
    pub(super) assignments: Vec<Assignment>,
    #[graphql(complexity = "super::home_cost::rows(child_complexity)")]
    pub(super) rows: Vec<Row>,
    /// True when a dependency was skipped or a fallback served: the page was computed
    /// without the shared cache or live trending, or (database down) from what this server
    /// remembers of the profile, or kids-safe. Still a complete page.
    pub(super) degraded: bool,
}

#[derive(SimpleObject)]
#[graphql(serial)]
pub struct TitleEdge {
    pub(super) cursor: String,
    pub(super) node: Title,
}

#[derive(SimpleObject)]
#[graphql(serial)]
pub struct PageInfo {
    pub(super) has_next_page: bool,
    pub(super) end_cursor: Option<String>,
}

#[derive(SimpleObject)]
#[graphql(serial)]
pub struct TitleConnection {
    pub(super) edges: Vec<TitleEdge>,
    pub(super) page_info: PageInfo,
    pub(super) total_count: i32,
}

#[derive(SimpleObject)]
pub struct Genre {
    pub(super) name: String,
    pub(super) title_count: i32,
}

#[derive(SimpleObject)]
pub struct RecordEventsResult {
    /// Events stored by this call.
    pub(super) accepted: i32,
    /// Events skipped because their `clientEventId` was seen before for this profile.
    pub(super) duplicates: i32,
}

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
    pub(super) id: ID,
    /// 1–50 characters, no control characters.
    pub(super) name: String,
    #[graphql(default = false)]
    pub(super) is_kids: bool,
    /// Highest rating the profile is shown; kids profiles default to PG and may be given at
    /// most PG.
    pub(super) maturity_limit: Option<MaturityRating>,
    /// ISO 3166-1 alpha-2.
    pub(super) country: Option<String>,
    /// Genres to start from while the profile has no history (at most 20, from `genres`).
    #[graphql(default)]
    pub(super) onboarding_genres: Vec<String>,
}

#[derive(InputObject)]
pub struct EventInput {
    /// Chosen by the client (at most 128 bytes, no whitespace); resending the same id for the
    /// same profile is harmless.
    pub(super) client_event_id: ID,
    pub(super) title_id: ID,
    pub(super) kind: EventKind,
    /// PROGRESS: fraction watched, 0–1. RATING: stars, 0.5–5. Otherwise omitted.
    pub(super) value: Option<f64>,
    /// RFC 3339; defaults to the time the server receives the event. Not before 1900 nor more
    /// than a few minutes (`--event-max-ahead`, default 300 s) after the server's clock.
    pub(super) occurred_at: Option<String>,
    /// The `HomePage.requestId` this event resulted from, if any.
    pub(super) request_id: Option<ID>,
}

// ---------------------------------------------------------------------------------------------
// Mapping

impl From<app::home::HomePage> for HomePage {
    fn from(home: app::home::HomePage) -> Self {
        let engine = &home.engine;
        HomePage {
            degraded: home.degraded(),
            request_id: ID(home.request_id),
            generated_at: format_rfc3339(home.generated_at),
            model_version: engine.model.version.clone(),
            assignments: home.assignments.into_iter().map(Assignment::from).collect(),
            rows: home
                .page
                .rows
                .into_iter()
                .map(|row| Row {
                    id: ID(row.id),
                    title: row.title,
                    definition: ID(row.definition.clone()),
                    kind: row.definition,
                    anchor: row.anchor.map(|t| Title::at(engine, t)),
                    model_version: row.model_version,
                    items: row
                        .items
                        .into_iter()
                        .enumerate()
                        .map(|(position, item)| RowItem {
                            position: position as i32,
                            score: f64::from(item.score),
                            reason: item.reason,
                            title: Title::at(engine, item.title),
                            evidence: item
                                .evidence
                                .iter()
                                .map(|t| Title::at(engine, *t))
                                .collect(),
                            progress: item.progress.map(WatchProgress::from),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

impl From<experiments::Assignment> for Assignment {
    fn from(a: experiments::Assignment) -> Self {
        Assignment {
            feature_key: a.feature_key,
            experiment_key: a.experiment_key,
            variation_index: a.variation_index as i32,
            variation_key: a.variation_key,
            in_experiment: a.in_experiment,
            hash_used: a.hash_used,
        }
    }
}

impl From<experiments::console::Status> for ExperimentStatus {
    fn from(s: experiments::console::Status) -> Self {
        use experiments::console::Status;
        match s {
            Status::Draft => ExperimentStatus::Draft,
            Status::Running => ExperimentStatus::Running,
            Status::Stopped => ExperimentStatus::Stopped,
        }
    }
}

impl Experiment {
    pub(super) fn of(
        e: experiments::ExperimentSummary,
        state: experiments::console::ExperimentState,
    ) -> Self {
        Experiment {
            key: e.key,
            feature_key: e.feature_key,
            name: e.name,
            hash_attribute: e.hash_attribute,
            coverage: e.coverage,
            condition: e.condition.map(|c| c.to_string()),
            namespace: e
                .namespace
                .map(|n| serde_json::to_string(&n).unwrap_or_default()),
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
            status: state.status.into(),
            phases: state
                .phases
                .iter()
                .enumerate()
                .map(|(i, p)| ExperimentPhase {
                    number: i as i32,
                    started_at: format_rfc3339(p.started_at),
                    ended_at: p.ended_at.map(format_rfc3339),
                })
                .collect(),
            winner: state.winner.map(|w| w as i32),
        }
    }
}

impl From<app::reports::ExperimentReport> for ExperimentReport {
    fn from(report: app::reports::ExperimentReport) -> Self {
        let count = |n: u64| i32::try_from(n).unwrap_or(i32::MAX);
        ExperimentReport {
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
                    guardrail_degraded: v.guardrail_degraded,
                })
                .collect(),
            phase: report.phase as i32,
            srm_p_value: report.analysis.srm_p_value,
            srm_flagged: report.analysis.srm_flagged,
            srm_epochs: report
                .analysis
                .srm_epochs
                .iter()
                .map(|e| SrmEpoch {
                    started_at: format_rfc3339(e.from),
                    weights: e.weights.clone(),
                    first_exposed_profiles: e.profiles.iter().map(|n| count(*n)).collect(),
                    p_value: e.p_value,
                })
                .collect(),
            excluded_profiles: count(report.excluded_profiles as u64),
            status: report.state.status.into(),
            guardrail_flagged: report
                .analysis
                .variations
                .iter()
                .any(|v| v.guardrail_degraded),
            peeking_warning: report.analysis.variations.iter().any(|v| v.peeking()),
        }
    }
}

/// The signed-in caller.
#[derive(SimpleObject)]
pub struct Me {
    account_id: ID,
    /// viewer, pm, admin.
    roles: Vec<String>,
    /// The profile a browser session selected (`selectProfile`); null for token clients.
    selected_profile_id: Option<ID>,
    /// True when the session is locked to a kids profile.
    kids_locked: bool,
}

impl From<&crate::auth::Caller> for Me {
    fn from(c: &crate::auth::Caller) -> Self {
        Me {
            account_id: ID(c.account.to_string()),
            roles: c.roles().map(|r| r.as_str().to_owned()).collect(),
            selected_profile_id: c
                .session_profile
                .as_ref()
                .map(|s| ID(s.profile.to_string())),
            kids_locked: c.policy_profile().is_some(),
        }
    }
}

/// A profile's own state for one title.
#[derive(SimpleObject)]
pub struct ViewerState {
    /// 0–1.
    progress: f64,
    completed: bool,
    /// 0.5–5 stars.
    rating: Option<f64>,
    /// UP, DOWN or null.
    thumbs: Option<String>,
}

impl From<&crate::engine::history::WatchState> for ViewerState {
    fn from(w: &crate::engine::history::WatchState) -> Self {
        use crate::engine::history::Thumbs;
        ViewerState {
            progress: w.progress.get(),
            completed: w.completed,
            rating: w.rating.map(|r| r.get()),
            thumbs: match w.thumbs {
                Thumbs::None => None,
                Thumbs::Up => Some("UP".into()),
                Thumbs::Down => Some("DOWN".into()),
            },
        }
    }
}

/// One audited preview.
#[derive(SimpleObject)]
pub struct PreviewAuditEntry {
    previewed_at: String,
    viewer_account_id: ID,
    viewer_subject: String,
    profile_id: ID,
    request_id: String,
}

impl From<crate::store::sessions::PreviewRecord> for PreviewAuditEntry {
    fn from(p: crate::store::sessions::PreviewRecord) -> Self {
        PreviewAuditEntry {
            previewed_at: crate::clock::format_rfc3339(p.previewed_at),
            viewer_account_id: ID(p.viewer_account),
            viewer_subject: p.viewer_subject,
            profile_id: ID(p.profile_id),
            request_id: p.request_id,
        }
    }
}

/// What an admin job is.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum AdminJobKind {
    Train,
    ImportMovielens,
}

/// Where an admin job is.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum AdminJobState {
    Running,
    Succeeded,
    Failed,
}

/// An import or a training started from the API (admin); it runs in the background.
#[derive(SimpleObject)]
pub struct AdminJob {
    id: ID,
    kind: AdminJobKind,
    state: AdminJobState,
    started_at: String,
    finished_at: Option<String>,
    /// What it did: the model version trained, or the import's counts.
    result: Option<String>,
    /// Why it failed.
    error: Option<String>,
}

impl From<crate::app::admin::AdminJob> for AdminJob {
    fn from(j: crate::app::admin::AdminJob) -> Self {
        use crate::app::admin::{AdminJobKind as K, AdminJobState as S};
        AdminJob {
            id: ID(j.id.to_string()),
            kind: match j.kind {
                K::Train => AdminJobKind::Train,
                K::ImportMovieLens => AdminJobKind::ImportMovielens,
            },
            state: match j.state {
                S::Running => AdminJobState::Running,
                S::Succeeded => AdminJobState::Succeeded,
                S::Failed => AdminJobState::Failed,
            },
            started_at: crate::clock::format_rfc3339(j.started_at),
            finished_at: j.finished_at.map(crate::clock::format_rfc3339),
            result: j.result,
            error: j.error,
        }
    }
}

/// A registered model version.
#[derive(SimpleObject)]
pub struct ModelInfo {
    version: String,
    active: bool,
    created_at: String,
    interactions: i64,
}

impl From<crate::store::ModelRecord> for ModelInfo {
    fn from(m: crate::store::ModelRecord) -> Self {
        ModelInfo {
            version: m.version,
            active: m.active,
            created_at: crate::clock::format_rfc3339(m.created_at),
            interactions: m.interactions,
        }
    }
}
