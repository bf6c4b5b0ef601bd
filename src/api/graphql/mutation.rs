//! Mutations: validate every input before anything is stored.

use async_graphql::{Context, Error, ErrorExtensions, ID, Object};

use super::types::{CreateProfileInput, EventInput, Profile, RecordEventsResult};
use super::{app_error, at_most, bad_input, bounds, failure, parse_profile_id, state};
use crate::clock::parse_rfc3339;
use crate::domain::{self, EventAction, TitleId};
use crate::engine::filters;
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
        let name = domain::ProfileName::parse(&input.name).map_err(|e| field("name", e))?;
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
        filters::check_maturity_limit(input.is_kids, maturity_limit)
            .map_err(|e| field("maturityLimit", e))?;
        let profile = domain::Profile {
            id: id.clone(),
            account_id: domain::AccountId::parse(&input.account_id)
                .map_err(|e| field("accountId", e))?,
            name: name.into_string(),
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
        at_most("events", &events, bounds::MAX_EVENTS)?;
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
