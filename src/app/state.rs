//! The service state every request shares: store, the current engine, experiment features,
//! the clock and the impression log.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;

use super::impressions::ImpressionLog;
use super::serving::Serving;
use crate::clock::{Clock, EventWindow};
use crate::engine::Engine;
use crate::experiments::FeatureSet;
use crate::store::Store;

/// Shared by every request.
pub struct AppState {
    pub store: Store,
    /// Swapped whole when a new model is activated; a request holds its own snapshot.
    pub engine: ArcSwap<Engine>,
    /// The features page requests evaluate: the console's running experiments (`console`),
    /// swapped when a new revision is stored (here, or by another replica).
    pub features: ArcSwap<FeatureSet>,
    /// `features` with draft experiments too: what previews (forced variations) evaluate.
    pub preview_features: ArcSwap<FeatureSet>,
    /// The console's configuration in force and its revision.
    pub console: ArcSwap<super::console::ConsoleState>,
    pub clock: Clock,
    /// When a client-reported event may have happened, around `clock`.
    pub event_window: EventWindow,
    pub impressions: ImpressionLog,
    /// Caches, live trending and the event stream (embedded or Redis/NATS).
    pub serving: Serving,
    /// Where model artifacts are written (`<data-dir>/models/`), for training from the API.
    pub data_dir: std::path::PathBuf,
    /// The admin job (import, training) the API last started.
    pub jobs: super::admin::AdminJobs,
    /// The page overrides of recent variants, fingerprinted for the list cache's keys.
    pub override_fingerprints: super::home::OverrideFingerprints,
    request_counter: AtomicU64,
    instance: u64,
}

impl AppState {
    // Each argument is a distinct dependency, wired once at start by two callers (serve,
    // precompute): a builder would be more code than it saves.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        engine: Engine,
        features: FeatureSet,
        clock: Clock,
        event_window: EventWindow,
        impressions: ImpressionLog,
        serving: Serving,
        data_dir: std::path::PathBuf,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            engine: ArcSwap::from_pointee(engine),
            preview_features: ArcSwap::from_pointee(features.clone()),
            features: ArcSwap::from_pointee(features),
            console: ArcSwap::from_pointee(Default::default()),
            clock,
            event_window,
            impressions,
            serving,
            data_dir,
            jobs: Default::default(),
            override_fingerprints: Default::default(),
            request_counter: AtomicU64::new(0),
            // Distinguishes request ids of different server runs: random per process (the
            // standard library's hasher keys are), not a reading of the clock.
            instance: RandomState::new().hash_one(std::process::id()),
        })
    }

    /// Unique per served page: impressions and later clicks are joined on it.
    pub fn next_request_id(&self) -> String {
        let n = self.next_request_number();
        format!("{:012x}-{n:08x}", self.instance & 0xffff_ffff_ffff)
    }

    /// The next number of this process's request counter (the tail of `next_request_id`):
    /// what the API's request span carries.
    pub fn next_request_number(&self) -> u64 {
        self.request_counter.fetch_add(1, Ordering::Relaxed)
    }
}
