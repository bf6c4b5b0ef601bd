//! The service state every request shares: store, the current engine, experiment features,
//! the clock and the impression log.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::impressions::ImpressionLog;
use crate::clock::Clock;
use crate::engine::Engine;
use crate::experiments::FeatureSet;
use crate::store::Store;
use crate::store::logging::ExposureRecord;

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
