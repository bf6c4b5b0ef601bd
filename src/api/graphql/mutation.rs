//! Mutations: validate every input before anything is stored.

use async_graphql::{Context, Error, ErrorExtensions, ID, Object};

use super::types::{CreateProfileInput, EventInput, Profile, RecordEventsResult};
use super::{MAX_EVENTS, app_error, bad_input, failure, parse_profile_id, state};
use crate::clock::parse_rfc3339;
use crate::domain::{self, EventAction, TitleId};
use crate::store::records::NewEvent;

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
            maturity_limit: input.maturity_limit.map(domain::MaturityRating::from),
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
            .map_err(failure)?;
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
        // Events are about titles the profile may see: anything else is refused
        // (`FORBIDDEN_TITLE`), so that no history can name a title its policy hides.
        let policy = state.policy(Some(&pid)).await.map_err(app_error)?;
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
                    Some(s) => parse_rfc3339(s)
                        .and_then(|t| state.event_window.check(t, now))
                        .map_err(|err| at(err.0))?,
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
