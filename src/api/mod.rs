//! HTTP surface: GraphQL (with GraphiQL), health, readiness, metrics and the bundled web UI.
//! The GraphQL layer parses input and maps the results of `app` and `engine` to the schema;
//! decisions are made there, not here.

pub mod auth;
mod graphql;
mod metrics;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::app::AppState;
use auth::{AuthOptions, AuthService};

pub use graphql::access::{Access, RULES as ACCESS_RULES};
pub use graphql::{MarqueeSchema, build_schema, sdl};

/// What every handler may reach.
#[derive(Clone)]
pub struct ApiState {
    pub app: Arc<AppState>,
    pub auth: Arc<AuthService>,
    schema: MarqueeSchema,
}

impl FromRef<ApiState> for Arc<AppState> {
    fn from_ref(s: &ApiState) -> Self {
        s.app.clone()
    }
}

pub fn router(app: Arc<AppState>, auth: Arc<AuthService>) -> Router {
    let schema = build_schema(app.clone());
    Router::new()
        .route("/graphql", get(graphiql).post(graphql))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(web::routes())
        .merge(auth::routes())
        .with_state(ApiState { app, auth, schema })
}

/// GraphQL over POST: the caller (bearer token or session cookie) goes into the request's
/// data, where the access rules and the resolvers find it. A bearer token that is not valid
/// is refused with 401 before anything runs.
async fn graphql(
    State(api): State<ApiState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let caller = match api.auth.caller(&headers).await {
        Ok(c) => c,
        Err(refused) => return refused.into_response(),
    };
    graphql::http::post(&api.app, &api.schema, caller, body).await
}

async fn graphiql() -> impl IntoResponse {
    Html(
        async_graphql::http::GraphiQLSource::build()
            .endpoint("/graphql")
            .title("Marquee GraphQL")
            .finish(),
    )
}

/// Ready when the server can do its job: a catalogue to serve, and a database that takes
/// writes (a committed heartbeat, probed at most once a second — see `Store::writable`). A
/// database that still answers reads but cannot write (full disk, read-only files, a standby)
/// is not ready: events would fail.
async fn readyz(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
) -> impl IntoResponse {
    if state.engine.load().catalog.is_empty() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "catalogue is empty".to_owned(),
        );
    }
    match state.store.writable(state.clock.now()).await {
        Ok(()) => (StatusCode::OK, "ready".to_owned()),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("database not writable: {e}"),
        ),
    }
}

/// Prometheus text exposition format: everything `telemetry` holds (see there and the README's
/// "/metrics" section for each family), with the impression log's counters and the serving
/// model read now.
async fn metrics(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
) -> impl IntoResponse {
    use std::sync::atomic::Ordering::Relaxed;
    let s = &state.impressions.stats;
    let impressions = crate::telemetry::ImpressionCounters {
        queued: s.queued.load(Relaxed),
        written: s.written.load(Relaxed),
        dropped: s.dropped.load(Relaxed),
        write_failures: s.write_failures.load(Relaxed),
        backlog: state.impressions.backlog(),
    };
    let serving = {
        let engine = state.engine.load();
        crate::telemetry::Serving {
            model_version: engine.model.version.clone(),
            model_trained_at: engine.model.trained_at,
            catalog_titles: engine.catalog.len(),
        }
    };
    let body = crate::telemetry::render(impressions, &serving);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

/// Binds, prints the address, and serves until Ctrl-C or SIGTERM.
pub async fn serve(
    state: Arc<AppState>,
    listen: SocketAddr,
    auth: AuthOptions,
    on_ready: impl FnOnce(SocketAddr, &AuthService),
) -> Result<()> {
    crate::telemetry::install()?;
    tokio::spawn(async {
        // Histograms keep their samples until rendered or upkept; bound that between scrapes.
        let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            every.tick().await;
            crate::telemetry::upkeep();
        }
    });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let auth = Arc::new(AuthService::new(
        &auth,
        state.store.clone(),
        &format!("http://{addr}"),
    )?);
    on_ready(addr, &auth);
    axum::serve(listener, router(state, auth))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
