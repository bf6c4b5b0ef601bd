//! The GraphQL schema. Resolvers (`query`, `mutation`) parse input into domain types, call the
//! app layer or the engine, and map the result (`types`); errors carry `extensions.code`
//! (`NOT_FOUND`, `BAD_USER_INPUT`; `UNAVAILABLE` when storage is briefly out of reach and
//! the client should retry; `INTERNAL`).

mod mutation;
mod query;
mod types;

use std::sync::Arc;

use async_graphql::{Context, EmptySubscription, Error, ErrorExtensions, ID, Schema};

use crate::app::AppState;
use crate::domain::{self, ProfileId, TitleId};
use crate::store::StoreError;
use mutation::MutationRoot;
use query::QueryRoot;

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

/// A failure the client did not cause, logged with its cause and hidden from the client:
/// `UNAVAILABLE` when storage is briefly out of reach (the client should retry), `INTERNAL`
/// otherwise.
fn failure(e: impl Into<anyhow::Error>) -> Error {
    let e = e.into();
    if StoreError::is_transient_cause(&e) {
        tracing::warn!(error = %format!("{e:#}"), "request failed: storage unavailable");
        coded(
            "UNAVAILABLE",
            "storage is temporarily unavailable; retry shortly",
        )
    } else {
        tracing::error!(error = %format!("{e:#}"), "request failed");
        coded("INTERNAL", "internal error; see the server log")
    }
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
        .map_err(failure)?
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
