//! Mutations: validate every input before anything is stored.

use async_graphql::{Context, Error, ID, Object};

use super::types::{CreateProfileInput, EventInput, Profile, RecordEventsResult};
use super::{
    MAX_EVENTS, app_error, bad_input, caller, failure, not_found, parse_profile_id, state,
};
use crate::app::access::NewProfile;
use crate::clock::parse_rfc3339;
use crate::domain::{self, EventAction, TitleId};
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
        let engine = state.engine.load();
        if input.onboarding_genres.len() > 20 {
            return Err(bad_input("onboardingGenres: at most 20 genres"));
        }
        if let Some(g) = input
            .onboarding_genres
            .iter()
            .find(|g| !engine.catalog.has_genre(g))
        {
            return Err(bad_input(format!("onboardingGenres: unknown genre {g:?}")));
        }
        let new = NewProfile {
            id,
            name: input.name,
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
            .owned_profile(caller(ctx)?, &pid)
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
                    Some(s) => parse_rfc3339(s).map_err(|err| at(err.0))?,
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
            .map_err(failure)?;
        Ok(RecordEventsResult {
            accepted: summary.accepted as i32,
            duplicates: summary.duplicates as i32,
        })
    }
}
