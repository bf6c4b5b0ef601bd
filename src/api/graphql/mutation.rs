//! Mutations: validate every input before anything is stored.

use async_graphql::{Context, Error, ErrorExtensions, ID, Object};

use super::types::{
    AdminJob, ConsoleChangeResult, CreateProfileInput, EventInput, Experiment, Profile,
    RecordEventsResult,
};
use super::{
    app_error, at_most, bad_input, bounds, caller, change_error, coded, failure, not_found,
    parse_definition, parse_profile_id, state, text,
};
use crate::app::access::NewProfile;
use crate::clock::parse_rfc3339;
use crate::domain::{self, EventAction, TitleId};
use crate::experiments::console::Change;
use crate::store::records::NewEvent;

pub struct MutationRoot;

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Creates a profile on the caller's account. `BAD_USER_INPUT` when the id is taken or a
    /// field is invalid (kids profiles: maturity limit G, PG or PG-13; at most 10 profiles).
    async fn create_profile(
        &self,
        ctx: &Context<'_>,
        input: CreateProfileInput,
    ) -> Result<Profile, Error> {
        let state = state(ctx);
        let field = |name: &str, e: domain::ParseError| bad_input(format!("{name}: {e}"));
        let id = parse_profile_id(&input.id)?;
        at_most(
            "onboardingGenres",
            &input.onboarding_genres,
            bounds::MAX_ONBOARDING_GENRES,
        )?;
        let engine = state.engine.load();
        let mut genres: Vec<String> = Vec::with_capacity(input.onboarding_genres.len());
        for g in input.onboarding_genres {
            if !engine.catalog.has_genre(&g) {
                return Err(bad_input(format!(
                    "onboardingGenres: unknown genre {}",
                    domain::excerpt(&g)
                )));
            }
            if !genres.contains(&g) {
                genres.push(g);
            }
        }
        let maturity_limit = input.maturity_limit.map(domain::MaturityRating::from);
        let new = NewProfile {
            id,
            name: input.name,
            is_kids: input.is_kids,
            maturity_limit,
            country: input
                .country
                .as_deref()
                .map(domain::Country::parse)
                .transpose()
                .map_err(|e| field("country", e))?,
            onboarding_genres: genres,
        };
        let profile = state
            .create_profile(caller(ctx)?, new)
            .await
            .map_err(app_error)?;
        Ok(Profile(profile))
    }

    /// Renames one of the caller's profiles.
    async fn rename_profile(
        &self,
        ctx: &Context<'_>,
        profile_id: ID,
        name: String,
    ) -> Result<Profile, Error> {
        let id = parse_profile_id(&profile_id)?;
        let p = state(ctx)
            .rename_profile(caller(ctx)?, &id, &name)
            .await
            .map_err(app_error)?;
        Ok(Profile(p))
    }

    /// Removes one of the caller's profiles (its history stays for reports); returns its id.
    async fn remove_profile(&self, ctx: &Context<'_>, profile_id: ID) -> Result<ID, Error> {
        let id = parse_profile_id(&profile_id)?;
        state(ctx)
            .remove_profile(caller(ctx)?, &id)
            .await
            .map_err(app_error)?;
        Ok(profile_id)
    }

    /// Selects the profile the browser session watches as. Choosing a kids profile locks the
    /// session to it until the next sign-in.
    async fn select_profile(&self, ctx: &Context<'_>, profile_id: ID) -> Result<Profile, Error> {
        let id = parse_profile_id(&profile_id)?;
        let (p, _) = state(ctx)
            .select_profile(caller(ctx)?, &id)
            .await
            .map_err(app_error)?;
        Ok(Profile(p))
    }

    /// Creates or replaces a feature of the experiment console (pm): GrowthBook's feature
    /// definition (`defaultValue`, `rules`); new experiment rules are drafts until launched.
    /// Validated first — every value against the page — and stored as a new revision (who,
    /// when, the diff); every server follows within a second. Refused: `BAD_USER_INPUT` with
    /// `extensions.path` (`rules[0].variations[1][3]`); `CONFLICT` when `baseRevision` is
    /// given and the configuration changed since.
    async fn save_feature(
        &self,
        ctx: &Context<'_>,
        key: String,
        definition: async_graphql::Json<serde_json::Value>,
        base_revision: Option<i32>,
    ) -> Result<ConsoleChangeResult, Error> {
        let key = text("key", &key, bounds::MAX_KEY_CHARS)?;
        let definition = parse_definition(&definition.0)?;
        console_change(
            ctx,
            Change::SaveFeature { key, definition },
            base_revision.map(i64::from),
        )
        .await
        .map(ConsoleChangeResult::new)
    }

    /// Launches a draft experiment (pm): its first phase starts, profiles are assigned and
    /// stick to their variation.
    async fn launch_experiment(&self, ctx: &Context<'_>, key: String) -> Result<Experiment, Error> {
        lifecycle(ctx, key, Change::Launch).await
    }

    /// Stops a running experiment (pm): nobody is assigned any more; the report stays.
    async fn stop_experiment(&self, ctx: &Context<'_>, key: String) -> Result<Experiment, Error> {
        lifecycle(ctx, key, Change::Stop).await
    }

    /// Starts a new phase of an experiment (pm): everyone is re-randomised (a new seed and
    /// sticky bucket version), and it runs.
    async fn start_experiment_phase(
        &self,
        ctx: &Context<'_>,
        key: String,
    ) -> Result<Experiment, Error> {
        lifecycle(ctx, key, Change::NewPhase).await
    }

    /// Stops the experiment and rolls out variation `variation`'s value as its feature's
    /// default (pm).
    async fn choose_winner(
        &self,
        ctx: &Context<'_>,
        key: String,
        variation: i32,
    ) -> Result<Experiment, Error> {
        let v = usize::try_from(variation)
            .map_err(|_| bad_input(format!("variation: an index, got {variation}")))?;
        lifecycle(ctx, key, |k| Change::ChooseWinner(k, v)).await
    }

    /// Activates a registered model version (admin); servers switch within seconds.
    async fn activate_model(&self, ctx: &Context<'_>, version: String) -> Result<String, Error> {
        if version.is_empty() || version.len() > 200 {
            return Err(bad_input("version must be 1–200 characters"));
        }
        let store = &state(ctx).store;
        let known = store
            .models()
            .await
            .map_err(failure)?
            .iter()
            .any(|m| m.version == version);
        if !known {
            return Err(not_found(format!("no model {version:?}")));
        }
        store.activate_model(&version).await.map_err(failure)?;
        Ok(version)
    }

    /// Re-activates the model registered before the active one (admin); returns its version.
    async fn rollback_model(&self, ctx: &Context<'_>) -> Result<String, Error> {
        crate::app::models::rollback(&state(ctx).store)
            .await
            .map_err(|e| bad_input(format!("{e:#}")))
    }

    /// Starts training a model on everything stored (admin), in the background: poll
    /// `adminJob`. The new model is registered active; servers switch within seconds.
    /// `CONFLICT` while another admin job runs.
    async fn train_model(&self, ctx: &Context<'_>) -> Result<AdminJob, Error> {
        state(ctx)
            .start_training()
            .map(AdminJob::from)
            .map_err(|e| coded("CONFLICT", e.to_string()))
    }

    /// Starts importing a RecBole MovieLens directory on the server's disk (admin), in the
    /// background (idempotent, one transaction): poll `adminJob`. `directory`: an absolute
    /// path, at most 1,024 characters; `kidsEvery` 0–1,000 (default 5); `country` a two-letter
    /// code for users without one (default US). `CONFLICT` while another admin job runs.
    async fn import_movie_lens(
        &self,
        ctx: &Context<'_>,
        directory: String,
        #[graphql(default = 5)] kids_every: u32,
        #[graphql(default_with = "String::from(\"US\")")] country: String,
    ) -> Result<AdminJob, Error> {
        if directory.len() > bounds::MAX_PATH {
            return Err(bad_input(format!(
                "directory: at most {} characters",
                bounds::MAX_PATH
            )));
        }
        let dir = std::path::PathBuf::from(&directory);
        if !dir.is_absolute() || !dir.is_dir() {
            return Err(bad_input(format!(
                "directory: {:?} is not an absolute path to a directory on the server",
                domain::excerpt(&directory)
            )));
        }
        if kids_every > 1_000 {
            return Err(bad_input("kidsEvery: 0–1,000"));
        }
        let country =
            domain::Country::parse(&country).map_err(|e| bad_input(format!("country: {e}")))?;
        state(ctx)
            .start_movielens_import(dir, kids_every, country)
            .map(AdminJob::from)
            .map_err(|e| coded("CONFLICT", e.to_string()))
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
        at_most("events", &events, bounds::MAX_EVENTS)?;
        state.check_database().map_err(failure)?;
        // Events are about titles the profile may see: anything else is refused
        // (`FORBIDDEN_TITLE`), so that no history can name a title its policy hides. The
        // policy is the caller's own profile's (`NOT_FOUND` for another account's).
        let policy = state
            .policy(caller(ctx)?, Some(&pid))
            .await
            .map_err(app_error)?;
        let now = state.clock.now();
        let engine = state.engine.load_full();
        let parsed = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                let at = |msg: String| {
                    bad_input(format!(
                        "events[{i}] (clientEventId {}): {msg}",
                        domain::excerpt(e.client_event_id.as_str())
                    ))
                };
                let client_event_id = domain::ClientEventId::parse(&e.client_event_id)
                    .map_err(|err| at(format!("clientEventId: {err}")))?;
                let request_id = e
                    .request_id
                    .as_ref()
                    .map(|r| domain::RequestId::parse(r))
                    .transpose()
                    .map_err(|err| at(format!("requestId: {err}")))?;
                let title_id = TitleId::parse(&e.title_id).map_err(|err| at(err.0))?;
                let Some(title) = engine.catalog.by_id(&title_id) else {
                    return Err(at(format!("unknown title {title_id}")));
                };
                if let Err(forbidden) = policy.check(title) {
                    return Err(app_error(forbidden).extend_with(|_, x| {
                        x.set("index", i as i32);
                    }));
                }
                let action =
                    EventAction::from_parts(e.kind.into(), e.value).map_err(|err| at(err.0))?;
                let occurred_at = match &e.occurred_at {
                    None => now,
                    Some(s) => domain::bounded_text("occurredAt", s, bounds::MAX_TIMESTAMP_CHARS)
                        .and_then(|s| parse_rfc3339(&s))
                        .and_then(|t| state.event_window.check(t, now))
                        .map_err(|err| at(err.0))?,
                };
                Ok(NewEvent {
                    title_id,
                    action,
                    occurred_at,
                    client_event_id: client_event_id.into(),
                    request_id: request_id.map(Into::into),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let summary = state
            .record_events(&pid, &parsed, now)
            .await
            .map_err(failure)?;
        Ok(RecordEventsResult {
            accepted: summary.accepted as i32,
            duplicates: summary.duplicates as i32,
        })
    }
}

/// Makes a console change as the caller; the revision it is stored as.
async fn console_change(
    ctx: &Context<'_>,
    change: Change,
    base_revision: Option<i64>,
) -> Result<i64, Error> {
    let caller = caller(ctx)?;
    let author = format!("{} ({})", caller.account, caller.subject);
    state(ctx)
        .change_experiments(&author, change, base_revision)
        .await
        .map_err(change_error)
}

/// A lifecycle change of experiment `key`, answered with the experiment as it is now.
async fn lifecycle(
    ctx: &Context<'_>,
    key: String,
    change: impl FnOnce(String) -> Change,
) -> Result<Experiment, Error> {
    let key = text("key", &key, bounds::MAX_KEY_CHARS)?;
    console_change(ctx, change(key.clone()), None).await?;
    state(ctx)
        .console
        .load()
        .config
        .summaries()
        .into_iter()
        .find(|(e, _)| e.key == key)
        .map(|(e, s)| Experiment::of(e, s))
        .ok_or_else(|| not_found(format!("no experiment {}", domain::excerpt(&key))))
}
