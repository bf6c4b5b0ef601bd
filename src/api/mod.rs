//! HTTP surface: GraphQL (with GraphiQL), health, readiness, metrics and the bundled web UI.
//! The GraphQL layer parses input and maps the results of `app` and `engine` to the schema;
//! decisions are made there, not here.

mod graphql;
mod metrics;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use axum::Router;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use tracing::Instrument as _;

use crate::app::AppState;

pub use graphql::{MarqueeSchema, build_schema, sdl};

pub fn router(state: Arc<AppState>) -> Router {
    let schema = build_schema(state.clone());
    Router::new()
        .route(
            "/graphql",
            get(graphiql).post(graphql).layer(axum::Extension(schema)),
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

/// A GraphQL request (or batch) in its own span with a request id, its JSON encoding timed
/// (`serialization` stage); otherwise what `async_graphql_axum::GraphQL` does.
async fn graphql(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    axum::Extension(schema): axum::Extension<MarqueeSchema>,
    request: async_graphql_axum::GraphQLBatchRequest,
) -> axum::response::Response {
    use async_graphql::{BatchRequest, BatchResponse};
    // A number, not a formatted id: the span is created for every request at the default
    // log level, and formatting an id string for it cost more than the page's dedupe.
    let span = tracing::info_span!("graphql", request = state.next_request_number());
    let started = std::time::Instant::now();
    let (response, operations) = match request.into_inner() {
        BatchRequest::Single(r) => {
            let op = metrics::operation_label(&r.query, r.operation_name.as_deref());
            let response = schema.execute(r).instrument(span.clone()).await;
            let ok = response.errors.is_empty();
            (BatchResponse::Single(response), vec![(op, ok)])
        }
        BatchRequest::Batch(rs) => {
            let ops: Vec<String> = rs
                .iter()
                .map(|r| metrics::operation_label(&r.query, r.operation_name.as_deref()))
                .collect();
            let response = schema
                .execute_batch(BatchRequest::Batch(rs))
                .instrument(span.clone())
                .await;
            let oks: Vec<bool> = match &response {
                BatchResponse::Batch(rs) => rs.iter().map(|r| r.errors.is_empty()).collect(),
                BatchResponse::Single(r) => vec![r.errors.is_empty()],
            };
            (response, ops.into_iter().zip(oks).collect())
        }
    };
    let executed = started.elapsed();
    for (op, ok) in &operations {
        crate::telemetry::record_graphql(op, *ok, executed);
    }
    let started = std::time::Instant::now();
    let http = async_graphql_axum::GraphQLResponse::from(response).into_response();
    let took = started.elapsed();
    crate::telemetry::record_stage(crate::telemetry::Stage::Serialization, took);
    span.in_scope(|| {
        tracing::debug!(
            serialization_us = took.as_micros() as u64,
            "response encoded"
        )
    });
    http
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
    on_ready: impl FnOnce(SocketAddr),
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
