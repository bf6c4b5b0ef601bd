//! The knobs of training, stored with every artifact and in the registry (`model_versions`).

use serde::{Deserialize, Serialize};

use super::als::AlsParams;
use super::ann::AnnParams;
use super::content::ContentParams;
use super::popular_now::BacktestParams;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainParams {
    /// Neighbours kept per title.
    pub neighbors: usize,
    /// Added to the cosine denominator so that pairs seen together once or twice do not look
    /// perfectly similar.
    pub shrinkage: f32,
    pub trending_window_days: f64,
    pub trending_half_life_days: f64,
    /// Countries with fewer interactions in the window use the global trending list.
    pub trending_min_interactions: usize,
    /// EASE's L2 regularisation λ. Tuned on the VALID split of `ml100k-temporal-80-20-v1`
    /// (README, "Recommendation quality").
    pub ease_lambda: f64,
    /// EASE weights kept per title, by magnitude. Dense would be exact, but the artifact would
    /// grow with the square of the catalogue; 200 of 1,682 loses ≈ 1% NDCG on MovieLens.
    pub ease_neighbors: usize,
    /// EASE is cubic in the titles with interactions; above this many each title's column is
    /// solved over its `ease_local_neighbors` most co-watched titles instead (see `ease.rs`).
    /// 0 turns EASE off.
    pub ease_max_titles: usize,
    /// Neighbourhood size of the local EASE solve for large catalogues (0: no EASE above
    /// `ease_max_titles`).
    pub ease_local_neighbors: usize,
    /// Content neighbours from metadata (see `content.rs`).
    pub content: ContentParams,
    /// Latent embeddings (see `als.rs`); `als.factors = 0` turns them off.
    pub als: AlsParams,
    /// The ANN index over title embeddings (see `ann.rs`).
    pub ann: AnnParams,
    /// The backtest that learns how much Top Picks weighs what is popular now (see
    /// `popular_now.rs`); `popular_now.horizon_days = 0` turns it off.
    pub popular_now: BacktestParams,
}

impl Default for TrainParams {
    fn default() -> Self {
        Self {
            neighbors: 50,
            shrinkage: 10.0,
            trending_window_days: 14.0,
            trending_half_life_days: 3.0,
            trending_min_interactions: 50,
            ease_lambda: 300.0,
            ease_neighbors: 200,
            ease_max_titles: 5_000,
            ease_local_neighbors: 200,
            content: ContentParams::default(),
            als: AlsParams::default(),
            ann: AnnParams::default(),
            popular_now: BacktestParams::default(),
        }
    }
}
