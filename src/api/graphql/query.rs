//! Queries: parse the arguments, ask the app layer or the engine, map the result.

use std::collections::HashMap;

use async_graphql::{Context, Error, ID, Json, Object};

use super::types::{
    ConsoleRevision, Experiment, ExperimentPlan, ExperimentReport, FeatureConfig, FeatureProblem,
    ForcedVariationInput, Genre, HomePage, Me, ModelInfo, PageInfo, PreviewAuditEntry, Profile,
    Title, TitleConnection, TitleEdge, ViewerState,
};
use super::{
    app_error, at_most, bad_input, bounds, caller, failure, home_cost, list_cost, not_found,
    parse_first, parse_profile_id, parse_title_id, request_policy, state, text,
};
use crate::app::home::HomeRequest;
use crate::domain;
use crate::experiments::RequestInfo;

pub struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
    /// The personalized home page of one of the caller's profiles. `platform`, `appVersion`
    /// and `attributes` are available to experiment targeting; `forcedVariations` (pm role)
    /// previews a variation.
    #[graphql(complexity = "home_cost::page(child_complexity)")]
    async fn home(
        &self,
        ctx: &Context<'_>,
        profile_id: ID,
        platform: Option<String>,
        app_version: Option<String>,
        attributes: Option<Json<serde_json::Map<String, serde_json::Value>>>,
        forced_variations: Option<Vec<ForcedVariationInput>>,
    ) -> Result<HomePage, Error> {
        let request = home_request(
            profile_id,
            platform,
            app_version,
            attributes,
            forced_variations,
        )?;
        let home = state(ctx)
            .caller_home(caller(ctx)?, request)
            .await
            .map_err(app_error)?;
        Ok(HomePage::from(home))
    }

    /// Any profile's home page as it would be served, for product managers: nothing is
    /// logged as a view, and the preview itself is audited (who, whom, when).
    #[graphql(complexity = "home_cost::page(child_complexity)")]
    async fn preview_home(
        &self,
        ctx: &Context<'_>,
        profile_id: ID,
        platform: Option<String>,
        app_version: Option<String>,
        forced_variations: Option<Vec<ForcedVariationInput>>,
    ) -> Result<HomePage, Error> {
        let request = home_request(profile_id, platform, app_version, None, forced_variations)?;
        let home = state(ctx)
            .preview_home(caller(ctx)?, request)
            .await
            .map_err(app_error)?;
        Ok(HomePage::from(home))
    }

    /// Who is signed in: account, roles, and the profile a browser session selected.
    async fn me(&self, ctx: &Context<'_>) -> Result<Me, Error> {
        Ok(Me::from(caller(ctx)?))
    }

    /// The caller's state for one title on one of its profiles (progress, rating, thumbs):
    /// the same on every device. `null` when the profile has never touched the title.
    async fn viewer_state(
        &self,
        ctx: &Context<'_>,
        profile_id: ID,
        title_id: ID,
    ) -> Result<Option<ViewerState>, Error> {
        let pid = parse_profile_id(&profile_id)?;
        let tid = parse_title_id("titleId", &title_id)?;
        let (_, history) = state(ctx)
            .owned_viewer(caller(ctx)?, &pid)
            .await
            .map_err(app_error)?;
        Ok(history.get(&tid).map(ViewerState::from))
    }

    /// The latest previews of other profiles' pages (admin): who previewed whom, when.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn preview_audit(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
    ) -> Result<Vec<PreviewAuditEntry>, Error> {
        let first = parse_first(first)?;
        let rows = state(ctx).store.previews(first).await.map_err(failure)?;
        Ok(rows.into_iter().map(PreviewAuditEntry::from).collect())
    }

    /// The admin job (import, training) this server last started, if any (admin).
    async fn admin_job(&self, ctx: &Context<'_>) -> Option<super::types::AdminJob> {
        state(ctx).jobs.last().map(Into::into)
    }

    /// Registered models, newest first (admin).
    async fn models(&self, ctx: &Context<'_>) -> Result<Vec<ModelInfo>, Error> {
        let models = state(ctx).store.models().await.map_err(failure)?;
        Ok(models.into_iter().map(ModelInfo::from).collect())
    }

    /// Results of an experiment, per variation, against variation 0 as control, with its
    /// guard rails (sample ratio, sequential p-values and peeking, the completion-rate
    /// guardrail).
    async fn experiment_report(
        &self,
        ctx: &Context<'_>,
        key: String,
    ) -> Result<ExperimentReport, Error> {
        let key = text("key", &key, bounds::MAX_KEY_CHARS)?;
        let state = state(ctx);
        let console = state.console.load_full();
        let report =
            crate::app::reports::experiment_report(&state.store, &console.config, &key, false)
                .await
                .map_err(failure)?
                .ok_or_else(|| not_found(format!("no experiment {}", domain::excerpt(&key))))?;
        crate::telemetry::record_srm(
            &key,
            report.analysis.srm_p_value,
            report.analysis.srm_flagged,
        );
        Ok(ExperimentReport::from(report))
    }

    /// Pre-launch estimate for experiment `key`: profiles and days needed to detect a relative
    /// change `mde` (0.05 = 5%) in conversion, at the last week's traffic.
    async fn experiment_plan(
        &self,
        ctx: &Context<'_>,
        key: String,
        mde: f64,
    ) -> Result<ExperimentPlan, Error> {
        let key = text("key", &key, bounds::MAX_KEY_CHARS)?;
        let (lo, hi) = bounds::MDE_RANGE;
        if !(lo..=hi).contains(&mde) {
            return Err(bad_input(format!("mde: between {lo} and {hi}, got {mde}")));
        }
        let state = state(ctx);
        let console = state.console.load_full();
        crate::app::reports::experiment_plan(
            &state.store,
            &console.config,
            &key,
            mde,
            state.clock.now(),
        )
        .await
        .map_err(failure)?
        .map(ExperimentPlan::from)
        .ok_or_else(|| not_found(format!("no experiment {}", domain::excerpt(&key))))
    }

    /// Every experiment of the console — drafts, running and stopped — with its lifecycle.
    async fn experiments(&self, ctx: &Context<'_>) -> Vec<Experiment> {
        state(ctx)
            .console
            .load()
            .config
            .summaries()
            .into_iter()
            .map(|(e, s)| Experiment::of(e, s))
            .collect()
    }

    /// The console's features as authored (GrowthBook feature definitions, drafts included).
    async fn features(&self, ctx: &Context<'_>) -> Vec<FeatureConfig> {
        let console = state(ctx).console.load_full();
        console
            .config
            .features
            .iter()
            .map(|(k, d)| {
                FeatureConfig::new(
                    k.clone(),
                    serde_json::to_value(d).unwrap_or_default(),
                    console.revision,
                )
            })
            .collect()
    }

    /// Who changed what and when: revisions about `key` (an experiment or feature; all when
    /// absent), newest first, each with its diff.
    async fn experiment_history(
        &self,
        ctx: &Context<'_>,
        key: Option<String>,
        #[graphql(default = 20)] first: i32,
    ) -> Result<Vec<ConsoleRevision>, Error> {
        let first = parse_first(first)?;
        let key = key
            .map(|k| text("key", &k, bounds::MAX_KEY_CHARS))
            .transpose()?;
        let state = state(ctx);
        let out = match key {
            Some(key) => {
                // An experiment's history includes its feature's edits; a feature key works too.
                let feature = state
                    .console
                    .load()
                    .config
                    .find(&key)
                    .map(|(f, _, _)| f.to_owned());
                crate::app::console::experiment_history(
                    &state.store,
                    &key,
                    feature.as_deref(),
                    first,
                )
                .await
            }
            None => crate::app::console::history(&state.store, None, first).await,
        }
        .map_err(failure)?;
        Ok(out.into_iter().map(ConsoleRevision::from).collect())
    }

    /// What saving this feature would refuse (empty: it would be accepted): the path in the
    /// definition and the problem, for inline errors while editing.
    async fn validate_feature(
        &self,
        ctx: &Context<'_>,
        key: String,
        definition: Json<serde_json::Value>,
    ) -> Result<Vec<FeatureProblem>, Error> {
        let key = text("key", &key, bounds::MAX_KEY_CHARS)?;
        let definition = match super::definition_problem(&definition.0) {
            Ok(d) => d,
            Err((path, message)) => return Ok(vec![FeatureProblem::new(path, message)]),
        };
        let state = state(ctx);
        let engine = state.engine.load();
        let config = state.console.load().config.clone();
        let checked = config.apply(
            &crate::experiments::console::Change::SaveFeature { key, definition },
            state.clock.now(),
            &|o| engine.home.with_overrides(o, &engine.sources).map(|_| ()),
        );
        Ok(match checked {
            Ok(_) => vec![],
            Err(crate::experiments::console::ConsoleError::Invalid { path, message }) => {
                vec![FeatureProblem::new(path, message)]
            }
            Err(e) => vec![FeatureProblem::new(String::new(), e.to_string())],
        })
    }

    /// A title. With `profileId`, `FORBIDDEN_TITLE` when that profile may not see it.
    async fn title(
        &self,
        ctx: &Context<'_>,
        id: ID,
        profile_id: Option<ID>,
    ) -> Result<Option<Title>, Error> {
        let id = parse_title_id("id", &id)?;
        let policy = request_policy(ctx, profile_id.as_ref()).await?;
        let title = state(ctx).title(&policy, &id).await.map_err(app_error)?;
        Ok(title.map(|(engine, idx)| Title::at(&engine, idx)))
    }

    /// Titles whose name contains every word of the query, most popular first; then, for
    /// queries of 3 letters or more, titles whose overview does. With `profileId`, only titles
    /// that profile may see.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn search(
        &self,
        ctx: &Context<'_>,
        query: String,
        #[graphql(default = 20)] first: i32,
        profile_id: Option<ID>,
    ) -> Result<Vec<Title>, Error> {
        let first = parse_first(first)?;
        let query = text("query", &query, bounds::MAX_SEARCH_CHARS)?;
        let policy = request_policy(ctx, profile_id.as_ref()).await?;
        let (engine, list) = state(ctx).search(&policy, &query, first);
        Ok(list.into_iter().map(|t| Title::at(&engine, t)).collect())
    }

    /// The catalogue (or one genre of it), most popular first, Relay-style pagination. With
    /// `profileId`, only titles that profile may see.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn browse(
        &self,
        ctx: &Context<'_>,
        genre: Option<String>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
        profile_id: Option<ID>,
    ) -> Result<TitleConnection, Error> {
        let first = parse_first(first)?;
        let genre = genre
            .map(|g| text("genre", &g, bounds::MAX_LABEL_CHARS))
            .transpose()?;
        let after = after
            .map(|c| text("after", &c, bounds::MAX_CURSOR_CHARS))
            .transpose()?;
        let policy = request_policy(ctx, profile_id.as_ref()).await?;
        let state = state(ctx);
        if let Some(g) = genre
            .as_ref()
            .filter(|g| !state.engine.load().catalog.has_genre(g))
        {
            return Err(bad_input(format!(
                "unknown genre {} (see `genres`)",
                domain::excerpt(g)
            )));
        }
        let (engine, list) = state.browse(&policy, genre.as_deref());
        let start = match after {
            None => 0,
            Some(c) => c
                .strip_prefix("o:")
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| *n < list.len())
                .map(|n| n + 1)
                .ok_or_else(|| {
                    bad_input(format!(
                        "after: {} is not a cursor of this list",
                        domain::excerpt(&c)
                    ))
                })?,
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

    /// More Like This. With `profileId`, titles that profile must not see are left out, and
    /// `FORBIDDEN_TITLE` when it may not see `titleId` itself.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn similar(
        &self,
        ctx: &Context<'_>,
        title_id: ID,
        #[graphql(default = 20)] first: i32,
        profile_id: Option<ID>,
    ) -> Result<Vec<Title>, Error> {
        let first = parse_first(first)?;
        let id = parse_title_id("titleId", &title_id)?;
        let policy = request_policy(ctx, profile_id.as_ref()).await?;
        let (engine, list) = state(ctx)
            .similar(&policy, &id, first)
            .await
            .map_err(app_error)?;
        Ok(list.into_iter().map(|t| Title::at(&engine, t)).collect())
    }

    /// The caller's profiles (main profile first; a kids session sees only its own).
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn profiles(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        kids: Option<bool>,
    ) -> Result<Vec<Profile>, Error> {
        let first = parse_first(first)?;
        let profiles = state(ctx)
            .caller_profiles(caller(ctx)?)
            .await
            .map_err(app_error)?;
        Ok(profiles
            .into_iter()
            .filter(|p| kids.is_none_or(|k| p.is_kids == k))
            .take(first)
            .map(Profile)
            .collect())
    }

    /// One of the caller's profiles; `null` for any other id.
    async fn profile(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Profile>, Error> {
        let id = parse_profile_id(&id)?;
        match state(ctx).owned_profile(caller(ctx)?, &id).await {
            Ok(p) => Ok(Some(Profile(p))),
            Err(crate::app::AppError::ProfileNotFound(_)) => Ok(None),
            Err(e) => Err(app_error(e)),
        }
    }
}

pub(super) fn home_request(
    profile_id: ID,
    platform: Option<String>,
    app_version: Option<String>,
    attributes: Option<Json<serde_json::Map<String, serde_json::Value>>>,
    forced_variations: Option<Vec<ForcedVariationInput>>,
) -> Result<HomeRequest, Error> {
    let id = parse_profile_id(&profile_id)?;
    let forced_variations = forced_variations.unwrap_or_default();
    at_most(
        "forcedVariations",
        &forced_variations,
        bounds::MAX_FORCED_VARIATIONS,
    )?;
    let mut forced = HashMap::new();
    for f in forced_variations {
        let key = text(
            "forcedVariations: experimentKey",
            &f.experiment_key,
            bounds::MAX_KEY_CHARS,
        )?;
        if f.variation < 0 {
            return Err(bad_input(format!(
                "forcedVariations: variation of {} must be ≥ 0",
                domain::excerpt(&key)
            )));
        }
        forced.insert(key, i64::from(f.variation));
    }
    let label = |field: &str, value: Option<String>| {
        value
            .map(|v| text(field, &v, bounds::MAX_LABEL_CHARS))
            .transpose()
    };
    let attributes = attributes.map(|a| a.0).unwrap_or_default();
    if attributes.len() > bounds::MAX_ATTRIBUTES
        || serde_json::to_string(&attributes).map_or(usize::MAX, |s| s.len())
            > bounds::MAX_ATTRIBUTES_BYTES
    {
        return Err(bad_input(format!(
            "attributes: at most {} keys and {} bytes of JSON",
            bounds::MAX_ATTRIBUTES,
            bounds::MAX_ATTRIBUTES_BYTES
        )));
    }
    Ok(HomeRequest {
        profile_id: id,
        request: RequestInfo {
            platform: label("platform", platform)?,
            app_version: label("appVersion", app_version)?,
            extra: attributes,
        },
        forced_variations: forced,
        preview: false,
    })
}
