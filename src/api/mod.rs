//! HTTP surface: GraphQL (with GraphiQL), health, readiness, metrics and the bundled web UI.
//! The GraphQL layer parses input and maps the results of `app` and `engine` to the schema;
//! decisions are made there, not here.

pub mod auth;
mod graphql;
pub mod listen;
mod metrics;
pub mod origin;
pub mod rate;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

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
    rate: Arc<rate::RateLimits>,
    pub(crate) origins: Arc<origin::Origins>,
    metrics_access: Arc<MetricsAccess>,
    persisted: graphql::persisted::PersistedQueries,
    csp: Arc<web::ContentSecurityPolicy>,
}

/// Everything `serve` is configured with beyond the app and sign-in.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub limits: rate::RequestLimits,
    pub transport: listen::Transport,
    /// Origins other than Marquee's own that browsers may call from (CORS; CSRF allowlist).
    pub cors_origins: Vec<String>,
    pub metrics: MetricsAccess,
}

impl ServeOptions {
    /// The defaults of a mode: production keeps `/metrics` for admins and the scrape token.
    pub fn for_mode(production: bool) -> Self {
        ServeOptions {
            limits: rate::RequestLimits::for_mode(production),
            transport: listen::Transport::default(),
            cors_origins: vec![],
            metrics: MetricsAccess {
                public: !production,
                scrape_token: None,
            },
        }
    }
}

/// Who may read `/metrics`: anyone (development mode), or — production mode — an admin
/// (bearer token or session) or a scraper presenting `Authorization: Bearer <scrape token>`
/// (the `MARQUEE_METRICS_TOKEN` environment variable; never in a file or a flag).
#[derive(Clone, Default)]
pub struct MetricsAccess {
    pub public: bool,
    pub scrape_token: Option<String>,
}

impl std::fmt::Debug for MetricsAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token never reaches a log line.
        f.debug_struct("MetricsAccess")
            .field("public", &self.public)
            .field("scrape_token", &self.scrape_token.as_ref().map(|_| "…"))
            .finish()
    }
}

impl FromRef<ApiState> for Arc<AppState> {
    fn from_ref(s: &ApiState) -> Self {
        s.app.clone()
    }
}

pub fn router(app: Arc<AppState>, auth: Arc<AuthService>) -> Router {
    router_with(app, auth, ServeOptions::for_mode(false))
}

pub fn router_with(app: Arc<AppState>, auth: Arc<AuthService>, options: ServeOptions) -> Router {
    let limits = options.limits;
    let schema = graphql::build_schema_with(app.clone(), limits.introspection);
    // GraphiQL shows the schema, so it is served only where introspection is on.
    let graphql_route = if limits.introspection {
        get(graphiql).post(graphql)
    } else {
        post(graphql)
    };
    let origins = origin::Origins::new(auth.public_url(), &options.cors_origins);
    let cors = origins.cors();
    let router = Router::new()
        .route("/graphql", graphql_route)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(web::routes())
        .merge(auth::routes())
        .with_state(ApiState {
            app,
            auth,
            schema,
            rate: Arc::new(rate::RateLimits::new(limits)),
            origins: Arc::new(origins),
            metrics_access: Arc::new(options.metrics),
            persisted: graphql::persisted::PersistedQueries::new(),
            csp: Arc::new(web::ContentSecurityPolicy::default()),
        })
        .layer(axum::middleware::map_response(web::security_headers));
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// GraphQL over POST: the CSRF checks first (`origin`: JSON only; a session-cookie request
/// from Marquee's own origin), then the caller (bearer token or session cookie) goes into the
/// request's data, where the access rules and the resolvers find it. A bearer token that is
/// not valid is refused with 401 before anything runs.
/// Rate limits (`rate`) apply per client IP and per caller account before anything runs.
async fn graphql(State(api): State<ApiState>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    // Present when served by `serve` (with connect info); absent in in-process benches.
    let ip = parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Err((status, code, message)) = api.origins.check_post(headers) {
        return graphql::http::refuse(status, code, message);
    }
    let caller = match api.auth.caller(headers).await {
        Ok(c) => c,
        Err(refused) => return refused.into_response(),
    };
    if let Err(wait) = api.rate.check(ip, caller.as_ref().map(|c| &c.account)) {
        return graphql::http::rate_limited(wait);
    }
    let run = graphql::http::post(&api.app, &api.schema, &api.persisted, caller, body);
    match api.rate.timeout {
        // Dropping the request's future rolls back an open transaction; `recordEvents` is
        // idempotent by `clientEventId`, so the client may retry.
        Some(limit) => tokio::time::timeout(limit, run)
            .await
            .unwrap_or_else(|_| graphql::http::timed_out(limit)),
        None => run.await,
    }
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
    let writable = state.store.writable(state.clock.now()).await;
    crate::telemetry::dependency_up(crate::telemetry::Dependency::Database, writable.is_ok());
    match writable {
        Ok(()) => (StatusCode::OK, "ready".to_owned()),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("database not writable: {e}"),
        ),
    }
}

/// Prometheus text exposition format: everything `telemetry` holds (see there and the README's
/// "/metrics" section for each family), with the impression log's counters and the serving
/// model read now. In production mode only for admins and the scrape token (`MetricsAccess`):
/// 401 without credentials, 403 with a caller who is not an admin.
async fn metrics(State(api): State<ApiState>, headers: axum::http::HeaderMap) -> Response {
    if !api.metrics_access.public {
        let bearer = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let scraper = match (&api.metrics_access.scrape_token, bearer) {
            (Some(expected), Some(given)) => aws_lc_rs::constant_time::verify_slices_are_equal(
                expected.as_bytes(),
                given.as_bytes(),
            )
            .is_ok(),
            _ => false,
        };
        if !scraper {
            match api.auth.caller(&headers).await {
                Ok(Some(c)) if c.has(crate::auth::Role::Admin) => {}
                Ok(Some(_)) => {
                    return (
                        StatusCode::FORBIDDEN,
                        "/metrics is for admins and the scraper\n",
                    )
                        .into_response();
                }
                Ok(None) | Err(_) => {
                    return (
                        StatusCode::UNAUTHORIZED,
                        [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
                        "/metrics needs an admin's token or the scrape token (MARQUEE_METRICS_TOKEN)\n",
                    )
                        .into_response();
                }
            }
        }
    }
    render_metrics(&api.app).into_response()
}

fn render_metrics(state: &AppState) -> impl IntoResponse + use<> {
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

/// Binds, prints the address, and serves until Ctrl-C or SIGTERM (`listen::run`: the
/// connection cap, the header read timeout, TLS when configured), then stops accepting and
/// lets the requests in flight finish, for at most `grace`.
pub async fn serve(
    state: Arc<AppState>,
    listen: SocketAddr,
    auth: AuthOptions,
    options: ServeOptions,
    grace: std::time::Duration,
    on_ready: impl FnOnce(SocketAddr, &AuthService),
) -> Result<()> {
    // Certificate problems are reported before anything listens.
    let tls = options
        .transport
        .tls
        .as_ref()
        .map(listen::tls_acceptor)
        .transpose()?;
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
    let scheme = if tls.is_some() { "https" } else { "http" };
    let auth = Arc::new(AuthService::new(
        &auth,
        state.store.clone(),
        &format!("{scheme}://{addr}"),
    )?);
    on_ready(addr, &auth);
    let transport = options.transport.clone();
    let router = router_with(state, auth, options);
    listen::run(listener, router, &transport, tls, shutdown_signal(), grace).await
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
