//! HTTP surface: GraphQL (with GraphiQL), health and readiness. The GraphQL layer maps engine
//! and store types to the schema and back; decisions are made in `engine`.

mod graphql;
mod web;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};
use arc_swap::ArcSwap;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::get;

use crate::app::impressions::ImpressionLog;
use crate::clock::Clock;
use crate::engine::Engine;
use crate::experiments::{self, FeatureSet};
use crate::store::Store;
use crate::store::logging::ExposureRecord;

pub use graphql::{MarqueeSchema, build_schema, sdl};

/// Shared by every request.
pub struct AppState {
    pub store: Store,
    /// Swapped whole when a new model is activated; a request holds its own snapshot.
    pub engine: ArcSwap<Engine>,
    /// The features of `experiments/`; replaced when the files change and still load.
    pub features: ArcSwap<FeatureSet>,
    pub clock: Clock,
    pub impressions: ImpressionLog,
    /// (experiment, profile, variation) exposures already stored, to skip rewriting them.
    exposed: Mutex<HashSet<(String, String, usize)>>,
    request_counter: AtomicU64,
    instance: u64,
}

impl AppState {
    pub fn new(
        store: Store,
        engine: Engine,
        features: FeatureSet,
        clock: Clock,
        impressions: ImpressionLog,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            engine: ArcSwap::from_pointee(engine),
            features: ArcSwap::from_pointee(features),
            clock,
            impressions,
            exposed: Mutex::new(HashSet::new()),
            request_counter: AtomicU64::new(0),
            // Distinguishes request ids of different server runs.
            instance: (crate::clock::wall_now() as u64) ^ (u64::from(std::process::id()) << 40),
        })
    }

    /// Loads `dir` validated against the current page definition.
    pub fn load_features(&self, dir: &std::path::Path) -> Result<FeatureSet, String> {
        let engine = self.engine.load();
        FeatureSet::load_dir(dir, &|o| {
            engine.home.with_overrides(o, &engine.sources).map(|_| ())
        })
    }

    /// Stores the exposures not stored before. Durable: an exposure counts as stored only
    /// once the database has it, so a failed write is retried on the profile's next page.
    pub async fn record_exposures(&self, exposures: Vec<ExposureRecord>) -> anyhow::Result<()> {
        let key = |e: &ExposureRecord| {
            (
                e.experiment_key.clone(),
                e.profile_id.clone(),
                e.variation_index as usize,
            )
        };
        let new: Vec<ExposureRecord> = {
            let seen = self
                .exposed
                .lock()
                .map_err(|_| anyhow::anyhow!("exposure cache poisoned"))?;
            exposures
                .into_iter()
                .filter(|e| !seen.contains(&key(e)))
                .collect()
        };
        if new.is_empty() {
            return Ok(());
        }
        self.store.record_exposures(&new).await?;
        if let Ok(mut seen) = self.exposed.lock() {
            // Bounded: forgetting only costs a redundant, idempotent insert.
            if seen.len() > 1_000_000 {
                seen.clear();
            }
            seen.extend(new.iter().map(key));
        }
        Ok(())
    }

    /// Unique per served page: impressions and later clicks are joined on it.
    pub fn next_request_id(&self) -> String {
        let n = self.request_counter.fetch_add(1, Ordering::Relaxed);
        format!("{:012x}-{n:08x}", self.instance & 0xffff_ffff_ffff)
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    let schema = build_schema(state.clone());
    Router::new()
        .route(
            "/graphql",
            get(graphiql).post_service(async_graphql_axum::GraphQL::new(schema)),
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

async fn readyz(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) if !state.engine.load().catalog.is_empty() => (StatusCode::OK, "ready".to_owned()),
        Ok(()) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "catalogue is empty".to_owned(),
        ),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}")),
    }
}

/// Prometheus text format, hand-written: three counters do not justify an exporter crate.
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
         # HELP marquee_impressions_dropped_total Row items not logged (queue full or write failed).\n\
         # TYPE marquee_impressions_dropped_total counter\n\
         marquee_impressions_dropped_total {}\n\
         # HELP marquee_impressions_backlog Row items queued and not yet written.\n\
         # TYPE marquee_impressions_backlog gauge\n\
         marquee_impressions_backlog {}\n",
        s.queued.load(Relaxed),
        s.written.load(Relaxed),
        s.dropped.load(Relaxed),
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

/// Reloads `dir` when its files change. A broken edit is logged and the last good features
/// stay in force, so a typo never takes the page down.
pub fn watch_experiments(state: &Arc<AppState>, dir: std::path::PathBuf) {
    // Weak: the watcher must not keep the state (and its impression log) alive at shutdown.
    let weak = Arc::downgrade(state);
    tokio::spawn(async move {
        let mut signature = experiments::dir_signature(&dir);
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            let Some(state) = weak.upgrade() else {
                return;
            };
            let now = experiments::dir_signature(&dir);
            if now == signature {
                continue;
            }
            signature = now;
            match state.load_features(&dir) {
                Ok(set) => {
                    tracing::info!(features = set.features.len(), "experiments reloaded");
                    state.features.store(Arc::new(set));
                }
                Err(e) => {
                    tracing::error!(error = %e, "experiments not reloaded; keeping the last good version")
                }
            }
        }
    });
}

/// Keeps the engine on the registry's active model (`marquee train`, `models activate`,
/// `models rollback`) and on the model versions experiments name for some rows. A new engine is
/// built beside the old one and swapped in one atomic store: requests in flight finish on the
/// engine they started with.
pub fn watch_models(state: &Arc<AppState>, data_dir: PathBuf, rows: Option<PathBuf>) {
    let weak = Arc::downgrade(state);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
        // What the last build was for, so a version that cannot load is not retried forever.
        let mut last_attempt: Option<(String, Vec<String>)> = None;
        loop {
            tick.tick().await;
            let Some(state) = weak.upgrade() else {
                return;
            };
            let active = match state.store.active_model().await {
                Ok(Some(m)) => m.version,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "cannot read the model registry");
                    continue;
                }
            };
            let wanted: Vec<String> = state
                .features
                .load()
                .model_versions()
                .into_iter()
                .filter(|v| *v != active)
                .collect();
            let current = state.engine.load();
            let mut loaded: Vec<String> = current.alternates.keys().cloned().collect();
            loaded.sort();
            let up_to_date = current.model.version == active && loaded == wanted;
            let attempt = (active.clone(), wanted.clone());
            if up_to_date || last_attempt.as_ref() == Some(&attempt) {
                continue;
            }
            last_attempt = Some(attempt);
            let loaded = match crate::app::page_definition(rows.as_deref()) {
                Ok(home) => crate::app::load_engine(&state.store, &data_dir, home, &wanted).await,
                Err(e) => Err(e),
            };
            match loaded {
                Ok(engine) => {
                    tracing::info!(model = %active, alternates = ?wanted, "engine swapped");
                    state.engine.store(Arc::new(engine));
                }
                // Keep serving the current engine; try again when the choice changes.
                Err(e) => {
                    tracing::error!(model = %active, error = %format!("{e:#}"), "cannot load the active model")
                }
            }
        }
    });
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
