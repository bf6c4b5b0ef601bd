//! HTTP surface: GraphQL (with GraphiQL), health, readiness, metrics and the bundled web UI.
//! The GraphQL layer parses input and maps the results of `app` and `engine` to the schema;
//! decisions are made there, not here.

mod graphql;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use axum::Router;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::get;

use crate::app::AppState;

pub use graphql::{MarqueeSchema, build_schema, sdl};

pub fn router(state: Arc<AppState>) -> Router {
    let schema = build_schema(state.clone());
    Router::new()
        .route(
            "/graphql",
            get(graphiql).post(move |body: axum::body::Body| graphql::http::post(schema, body)),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(web::routes())
        .with_state(state)
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

/// Prometheus text format, hand-written: a handful of counters do not justify an exporter
/// crate.
async fn metrics(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
) -> impl IntoResponse {
    use std::sync::atomic::Ordering::Relaxed;
    let s = &state.impressions.stats;
    let body = format!(
        "# HELP marquee_impressions_queued_total Row items handed to the impression log.\n\
         # TYPE marquee_impressions_queued_total counter\n\
         marquee_impressions_queued_total {}\n\
         # HELP marquee_impressions_written_total Row items written to the database.\n\
         # TYPE marquee_impressions_written_total counter\n\
         marquee_impressions_written_total {}\n\
         # HELP marquee_impressions_dropped_total Row items not logged (queue full, a batch failing with a defect, or the database down through shutdown).\n\
         # TYPE marquee_impressions_dropped_total counter\n\
         marquee_impressions_dropped_total {}\n\
         # HELP marquee_impressions_write_failures_total Failed attempts to write a batch of impressions (retried).\n\
         # TYPE marquee_impressions_write_failures_total counter\n\
         marquee_impressions_write_failures_total {}\n\
         # HELP marquee_impressions_backlog Row items queued and not yet written.\n\
         # TYPE marquee_impressions_backlog gauge\n\
         marquee_impressions_backlog {}\n",
        s.queued.load(Relaxed),
        s.written.load(Relaxed),
        s.dropped.load(Relaxed),
        s.write_failures.load(Relaxed),
        state.impressions.backlog(),
    );
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        body,
    )
}

/// Binds, prints the address, and serves until Ctrl-C or SIGTERM.
pub async fn serve(
    state: Arc<AppState>,
    listen: SocketAddr,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    on_ready(addr);
    axum::serve(listener, router(state))
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
