//! The GraphQL schema. Resolvers (`query`, `mutation`) parse input into domain types, call the
//! app layer or the engine, and map the result (`types`); errors carry `extensions.code`
//! (`NOT_FOUND`, `BAD_USER_INPUT`, `FORBIDDEN_TITLE`; `UNAVAILABLE` when storage is briefly out of reach and
//! the client should retry; `INTERNAL`).

pub mod access;
mod direct;
pub mod http;
mod mutation;
pub mod persisted;
mod query;
mod shape;
mod types;

use std::sync::Arc;

use async_graphql::{Context, EmptySubscription, Error, ErrorExtensions, ID, Schema};

use crate::app::policy::Policy;
use crate::app::{AppError, AppState};
use crate::auth::Caller;
use crate::domain::{self, ProfileId, TitleId};
use crate::store::StoreError;
use access::Guarded;
use mutation::MutationRoot;
use query::QueryRoot;

/// The roots are `Guarded`: each root field checks its access rule (`access::RULES`).
pub type MarqueeSchema = Schema<Guarded<QueryRoot>, Guarded<MutationRoot>, EmptySubscription>;

/// Bounds on every client string and list, checked here before anything is looked up or
/// stored (the README's "Input bounds" table lists them). Ids (`profileId`, `titleId`,
/// `accountId`, `clientEventId`, `requestId`) are at most 128 bytes without whitespace or
/// control characters (`domain::string_id!`); names are `domain::ProfileName`. Errors quote at
/// most `domain::EXCERPT_CHARS` characters of the input.
pub mod bounds {
    /// Largest `first` accepted by list fields.
    pub const MAX_PAGE: i32 = 100;
    /// Largest batch `recordEvents` accepts.
    pub const MAX_EVENTS: usize = 500;
    /// `createProfile.onboardingGenres`: entries (each a genre of the catalogue).
    pub const MAX_ONBOARDING_GENRES: usize = 20;
    /// `search.query`, in characters.
    pub const MAX_SEARCH_CHARS: usize = 200;
    /// Short labels: `platform`, `appVersion`, `genre`, in characters.
    pub const MAX_LABEL_CHARS: usize = 64;
    /// `home.attributes`: keys, and its size as JSON text.
    pub const MAX_ATTRIBUTES: usize = 32;
    pub const MAX_ATTRIBUTES_BYTES: usize = 4096;
    /// `home.forcedVariations`: entries.
    pub const MAX_FORCED_VARIATIONS: usize = 16;
    /// Experiment and feature keys, in characters.
    pub const MAX_KEY_CHARS: usize = 128;
    /// `saveFeature.definition` / `validateFeature.definition`, as JSON text.
    pub const MAX_DEFINITION_BYTES: usize = 64 * 1024;
    /// `experimentPlan.mde`: a relative effect between these.
    pub const MDE_RANGE: (f64, f64) = (0.001, 10.0);
    /// `occurredAt`, in characters, before it is parsed.
    pub const MAX_TIMESTAMP_CHARS: usize = 64;
    /// `browse.after`, in characters.
    pub const MAX_CURSOR_CHARS: usize = 32;
    /// A server-side directory an admin imports from (`importMovieLens`).
    pub const MAX_PATH: usize = 1024;
    /// A request body, in bytes (a full `recordEvents` batch is about 100 KB).
    pub const MAX_BODY_BYTES: usize = 512 * 1024;
    /// Operations in one batched request.
    pub const MAX_BATCH: usize = 10;
    /// Fields one operation selects once its fragments are expanded (`shape`).
    pub const MAX_FIELDS: u64 = 2_000;
    /// Aliases in one operation, fragments expanded (`shape`).
    pub const MAX_ALIASES: u64 = 50;
}
use bounds::MAX_PAGE;

/// The cost `limit_complexity` counts for a list field: its items' selection once per item it
/// may return (`first`, clamped to the bounds `parse_first` enforces), plus the field itself.
/// So 20 aliases of `search(first: 100)` cost what they would make the server do.
fn list_cost(first: i32, child_complexity: usize) -> usize {
    let items = usize::try_from(first.clamp(0, MAX_PAGE)).unwrap_or(0);
    items.saturating_mul(child_complexity).saturating_add(1)
}

/// What a home page costs in the complexity count: assembling it (a fixed cost, what
/// `PAGE_COST` fields would), plus its rows × items × the fields selected of each. So the
/// count is pages × rows × items: 50 aliases of `home` (the alias limit) or a few pages with
/// `items(first: 100)` and a wide selection exceed `MAX_COMPLEXITY` before any page is built,
/// while the web UI's page (6 rows of 20 titles, 17 fields each) costs about 3,800.
pub(crate) mod home_cost {
    use super::bounds::MAX_PAGE;

    /// Assembling one page: sources, filters, dedupe, rerank (milliseconds of CPU), in fields.
    pub const PAGE_COST: usize = 1_000;
    /// Rows a page is counted with: the built-in page has 6, a page with more costs them too
    /// little (rows come from the operator's `rows/*.toml`, not the client).
    pub const ROWS: usize = 8;
    /// Titles a row is counted with when the query gives no `first`: the default row `size`.
    pub const ROW_ITEMS: usize = 20;

    pub fn page(child_complexity: usize) -> usize {
        PAGE_COST.saturating_add(child_complexity)
    }

    pub fn rows(child_complexity: usize) -> usize {
        ROWS.saturating_mul(child_complexity).saturating_add(1)
    }

    pub fn items(first: Option<i32>, child_complexity: usize) -> usize {
        let n = first.map_or(ROW_ITEMS, |f| {
            usize::try_from(f.clamp(0, MAX_PAGE)).unwrap_or(0)
        });
        n.saturating_mul(child_complexity).saturating_add(1)
    }
}

/// The most a request may cost (`limit_complexity`).
pub const MAX_COMPLEXITY: usize = 10_000;

pub fn build_schema(state: Arc<AppState>) -> MarqueeSchema {
    build_schema_with(state, true)
}

/// `introspection`: whether clients may ask for the schema (`__schema`, `__type`); off in
/// production unless configured.
pub fn build_schema_with(state: Arc<AppState>, introspection: bool) -> MarqueeSchema {
    // No schema extensions: with any installed, async-graphql sends every field of every
    // response through the extension chain (see `access::Guarded`). Parse errors, the shape
    // limits and error codes are handled around `execute` instead (`http`).
    let builder = Schema::build(Guarded(QueryRoot), Guarded(MutationRoot), EmptySubscription);
    let builder = if introspection {
        builder
    } else {
        builder.disable_introspection()
    };
    builder
        .data(state)
        .limit_depth(12)
        .limit_complexity(MAX_COMPLEXITY)
        .finish()
}

/// The schema in SDL, as exported to `schema/schema.graphql`.
pub fn sdl() -> String {
    Schema::build(Guarded(QueryRoot), Guarded(MutationRoot), EmptySubscription)
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

/// The authenticated caller (`UNAUTHENTICATED` without one; the access rules already refuse
/// anonymous calls to fields that need one).
fn caller<'a>(ctx: &Context<'a>) -> Result<&'a Caller, Error> {
    ctx.data_opt::<Caller>()
        .ok_or_else(|| coded("UNAUTHENTICATED", "sign in first"))
}

/// The policy of this request (`app::policy`): the rules of the request's profile — the
/// caller's `profileId` (`NOT_FOUND` when unknown or another account's; `UNAUTHENTICATED`
/// without a caller), or, without one, the kids profile a locked session selected, which a
/// client cannot drop.
async fn request_policy(ctx: &Context<'_>, profile_id: Option<&ID>) -> Result<Policy, Error> {
    let id = profile_id.map(parse_profile_id).transpose()?;
    // Catalogue queries are public: an anonymous request for no profile has no profile rules.
    if id.is_none() && ctx.data_opt::<Caller>().is_none() {
        return Ok(Policy::no_profile());
    }
    state(ctx)
        .policy(caller(ctx)?, id.as_ref())
        .await
        .map_err(app_error)
}

/// An app-layer failure as a GraphQL error: the client's mistakes with their code and
/// message (another account's profile is `NOT_FOUND`, exactly like a missing one), everything
/// else through `failure`.
fn app_error(e: AppError) -> Error {
    match e {
        AppError::ProfileNotFound(_) | AppError::TitleNotFound(_) => not_found(e.to_string()),
        AppError::ForbiddenTitle(_) => coded("FORBIDDEN_TITLE", e.to_string()),
        AppError::Forbidden(m) => coded("FORBIDDEN", m),
        AppError::BadInput(m) => bad_input(m),
        AppError::Store(e) => failure(e),
        AppError::Internal(e) => failure(e),
    }
}

/// A refused console change: `BAD_USER_INPUT` with `extensions.path` (the place in the
/// feature that is wrong), `NOT_FOUND` for an unknown experiment, `FAILED_PRECONDITION` when
/// the experiment's state does not allow it, `CONFLICT` when the configuration changed since
/// `baseRevision`.
fn change_error(e: crate::app::console::ChangeError) -> Error {
    use crate::app::console::ChangeError;
    use crate::experiments::console::ConsoleError;
    match e {
        ChangeError::Refused(ConsoleError::Invalid { path, message }) => {
            Error::new(format!("{path}: {message}")).extend_with(|_, ext| {
                ext.set("code", "BAD_USER_INPUT");
                ext.set("path", path.clone());
            })
        }
        ChangeError::Refused(e @ ConsoleError::UnknownExperiment(_)) => not_found(e.to_string()),
        ChangeError::Refused(e @ ConsoleError::WrongState { .. }) => {
            coded("FAILED_PRECONDITION", e.to_string())
        }
        e @ ChangeError::Conflict(_) => coded("CONFLICT", e.to_string()),
        ChangeError::Store(e) => failure(e),
        ChangeError::Internal(e) => failure(e),
    }
}

/// A feature definition from the client: bounded, GrowthBook's shape (errors name the path).
fn parse_definition(
    raw: &serde_json::Value,
) -> Result<crate::experiments::growthbook::FeatureDefinition, Error> {
    definition_problem(raw).map_err(|(path, message)| {
        Error::new(message).extend_with(|_, ext| {
            ext.set("code", "BAD_USER_INPUT");
            ext.set("path", path.clone());
        })
    })
}

/// The definition, or where it is wrong (`rules[0].weights[0]`) and the message.
fn definition_problem(
    raw: &serde_json::Value,
) -> Result<crate::experiments::growthbook::FeatureDefinition, (String, String)> {
    let size = raw.to_string().len();
    if size > bounds::MAX_DEFINITION_BYTES {
        return Err((
            String::new(),
            format!(
                "definition: at most {} bytes as JSON, got {size}",
                bounds::MAX_DEFINITION_BYTES
            ),
        ));
    }
    serde_path_to_error::deserialize(raw).map_err(|e| {
        let path = e.path().to_string();
        let message = format!("{path}: {}", domain::excerpt(&e.inner().to_string()));
        (path, message)
    })
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

/// `raw` as bounded text (`domain::bounded_text`), or `BAD_USER_INPUT` naming `field`.
fn text(field: &str, raw: &str, max_chars: usize) -> Result<String, Error> {
    domain::bounded_text(field, raw, max_chars).map_err(|e| bad_input(e.0))
}

/// `BAD_USER_INPUT` unless `list` has at most `max` entries.
fn at_most<T>(field: &str, list: &[T], max: usize) -> Result<(), Error> {
    if list.len() > max {
        Err(bad_input(format!(
            "{field}: at most {max} entries, got {}",
            list.len()
        )))
    } else {
        Ok(())
    }
}

fn parse_profile_id(id: &ID) -> Result<ProfileId, Error> {
    ProfileId::parse(id).map_err(|e| bad_input(format!("profileId: {e}")))
}

fn parse_title_id(field: &str, id: &ID) -> Result<TitleId, Error> {
    TitleId::parse(id).map_err(|e| bad_input(format!("{field}: {e}")))
}
