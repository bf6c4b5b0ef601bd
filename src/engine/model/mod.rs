//! Trained models: what `marquee train` computes from interactions (`train`), how it is
//! persisted (`artifact`), and the in-memory form the candidate sources read (`Model`, here).
//!
//! Training is plain, deterministic arithmetic over (profile, title, affinity, time) tuples:
//! - popularity: affinity-weighted interaction counts;
//! - trending: the same, decayed exponentially with age over a window, per country;
//! - item-item similarity: co-occurrence cosine with shrinkage, top-k neighbours per title
//!   (what "Because You Watched" and "More like this" show);
//! - item-item weights: EASE (see `ease.rs`), top-k by magnitude per title (what Top Picks
//!   scores a whole history with);
//! - content neighbours: genres, release year and knowledge-graph people (see `content.rs`),
//!   top-k per title, for titles with few or no interactions;
//! - embeddings: implicit ALS title vectors (see `als.rs`) and an HNSW index over them (see
//!   `ann.rs`); profiles are folded in at request time from their current history;
//! - popular-now: how much Top Picks weighs what is popular now, learned by a backtest on the
//!   data before "now" (see `popular_now.rs`).

pub mod als;
pub mod ann;
mod artifact;
pub mod content;
mod cooccurrence;
pub mod ease;
pub mod linalg;
mod params;
pub mod popular_now;
mod popularity;
mod train;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::domain::{Country, Millis, TitleId};
use crate::engine::catalog::{Catalog, TitleIdx};
use als::ItemFactors;
use ann::AnnIndex;

pub use crate::engine::training_set::{Interaction, TrainingSet};
pub use artifact::{ARTIFACT_FORMAT, ArtifactError, EmbeddingArtifact, ModelArtifact, ScoredTitle};
pub use params::TrainParams;
pub use popular_now::{PopularNowBacktest, PopularNowSetting};
pub use train::{StageTimes, train, train_timed};

/// The model as the engine reads it: catalogue indexes, scores normalised to 0–1.
#[derive(Debug, Clone, Default)]
pub struct Model {
    pub version: String,
    pub trained_at: Millis,
    popularity: Vec<f32>,
    popular_order: Vec<TitleIdx>,
    /// Over all countries; then per country with enough activity of its own.
    trending_everywhere: Vec<(TitleIdx, f32)>,
    trending_by_country: HashMap<Country, Vec<(TitleIdx, f32)>>,
    neighbors: Vec<Vec<(TitleIdx, f32)>>,
    item_weights: Vec<Vec<(TitleIdx, f32)>>,
    has_item_weights: bool,
    content_neighbors: Vec<Vec<(TitleIdx, f32)>>,
    embeddings: Option<ServedEmbeddings>,
    /// Top Picks' popular-now setting learned at training (all 0 when not learned).
    popular_now: PopularNowSetting,
    /// The one for profiles with at most so many history entries, when learned.
    little_history: Option<(usize, PopularNowSetting)>,
    /// The row order the backtest learned: source names, first row first.
    row_order: Vec<String>,
}

/// Embeddings bound to a catalogue.
#[derive(Debug, Clone)]
struct ServedEmbeddings {
    factors: ItemFactors,
    index: Arc<AnnIndex>,
    /// Embedding row → catalogue index (None for a title the catalogue no longer has).
    title_of_row: Vec<Option<TitleIdx>>,
    /// Catalogue index → embedding row.
    row_of_title: Vec<Option<u32>>,
}

impl Model {
    /// Binds an artifact to a catalogue. Titles the catalogue no longer has are dropped.
    pub fn load(version: &str, artifact: &ModelArtifact, catalog: &Catalog) -> Self {
        let bind = |list: &[ScoredTitle]| -> Vec<(TitleIdx, f32)> {
            let max = list.first().map_or(1.0, |s| s.1.max(f32::MIN_POSITIVE));
            list.iter()
                .filter_map(|ScoredTitle(id, s)| Some((catalog.idx(id)?, s / max)))
                .collect()
        };
        let mut popularity = vec![0f32; catalog.len()];
        let popular = bind(&artifact.popularity);
        for (t, s) in &popular {
            popularity[*t as usize] = *s;
        }
        let by_title = |lists: &BTreeMap<TitleId, Vec<ScoredTitle>>| {
            let mut out = vec![Vec::new(); catalog.len()];
            for (id, list) in lists {
                if let Some(t) = catalog.idx(id) {
                    out[t as usize] = list
                        .iter()
                        .filter_map(|ScoredTitle(id, s)| Some((catalog.idx(id)?, *s)))
                        .collect();
                }
            }
            out
        };
        let neighbors = by_title(&artifact.neighbors);
        let item_weights = by_title(&artifact.item_weights);
        let content_neighbors = by_title(&artifact.content_neighbors);
        let embeddings = artifact.embeddings.as_ref().map(|e| {
            let title_of_row: Vec<Option<TitleIdx>> =
                e.titles.iter().map(|id| catalog.idx(id)).collect();
            let mut row_of_title = vec![None; catalog.len()];
            for (row, t) in title_of_row.iter().enumerate() {
                if let Some(t) = t {
                    row_of_title[*t as usize] = Some(row as u32);
                }
            }
            ServedEmbeddings {
                factors: ItemFactors::new(e.factors.clone(), &artifact.params.als),
                index: e.index.clone(),
                title_of_row,
                row_of_title,
            }
        });
        Self {
            version: version.to_owned(),
            trained_at: artifact.trained_at,
            popularity,
            popular_order: popular.into_iter().map(|(t, _)| t).collect(),
            // Best first as `SourceContext::top` orders, so that a page takes the eligible
            // head of a list instead of scanning all of it (`top_of_ordered`).
            trending_everywhere: artifact
                .trending
                .get(&None)
                .map_or_else(Vec::new, |l| crate::engine::sources::best_first(bind(l))),
            trending_by_country: artifact
                .trending
                .iter()
                .filter_map(|(c, list)| {
                    Some((c.clone()?, crate::engine::sources::best_first(bind(list))))
                })
                .collect(),
            neighbors,
            has_item_weights: item_weights.iter().any(|l| !l.is_empty()),
            item_weights,
            content_neighbors,
            embeddings,
            popular_now: artifact
                .popular_now
                .as_ref()
                .map_or_else(PopularNowSetting::default, |b| b.chosen),
            little_history: artifact
                .popular_now
                .as_ref()
                .and_then(|b| b.little_history.as_ref())
                .map(|l| (l.max_titles, l.chosen)),
            row_order: artifact
                .popular_now
                .as_ref()
                .map(|b| b.rows.iter().map(|r| r.source.clone()).collect())
                .unwrap_or_default(),
        }
    }

    /// The row order training learned (`popular_now.rs`): source names, the first row's
    /// first; a source may appear more than once (one place per row it makes). Empty when
    /// none was learned.
    pub fn row_order(&self) -> &[String] {
        &self.row_order
    }

    /// The popular-now setting training learned (`popular_now.rs`) for profiles with a
    /// history; all 0 when it learned none, and for models without a backtest.
    pub fn popular_now(&self) -> PopularNowSetting {
        self.popular_now
    }

    /// The popular-now setting training learned for a profile with `entries` history entries:
    /// its little-history setting up to the number of titles it was learned for, the one
    /// above beyond (and wherever none was learned for little history).
    pub fn popular_now_for(&self, entries: usize) -> PopularNowSetting {
        match self.little_history {
            Some((max, setting)) if entries <= max => setting,
            _ => self.popular_now,
        }
    }

    /// Whether the model has title embeddings (older or embedding-free models do not).
    pub fn has_embeddings(&self) -> bool {
        self.embeddings.is_some()
    }

    /// A profile's embedding, folded in from (title, weight) history entries; None without
    /// embeddings or when no entry has one.
    pub fn fold_in(&self, history: &[(TitleIdx, f32)]) -> Option<Vec<f32>> {
        let e = self.embeddings.as_ref()?;
        let rows: Vec<(u32, f32)> = history
            .iter()
            .filter_map(|(t, w)| Some((e.row_of_title.get(*t as usize).copied()??, *w)))
            .collect();
        e.factors.fold_in(&rows)
    }

    /// The titles whose embeddings best match `profile` (from `fold_in`), by the ANN index,
    /// with their exact inner products, best first; at most `k`.
    pub fn nearest_titles(&self, profile: &[f32], k: usize) -> Vec<(TitleIdx, f32)> {
        let Some(e) = &self.embeddings else {
            return Vec::new();
        };
        e.index
            .search(profile, k)
            .into_iter()
            .filter_map(|(row, score)| Some((e.title_of_row.get(row as usize).copied()??, score)))
            .collect()
    }

    /// Normalised popularity of a title (1.0 = the most popular).
    pub fn popularity(&self, t: TitleIdx) -> f32 {
        self.popularity.get(t as usize).copied().unwrap_or(0.0)
    }

    /// The popularity order: most popular first, ties in catalogue order (so lists are
    /// stable).
    pub fn popularity_order(&self, a: TitleIdx, b: TitleIdx) -> std::cmp::Ordering {
        self.popularity(b)
            .total_cmp(&self.popularity(a))
            .then(a.cmp(&b))
    }

    /// Sorts `titles` in the popularity order.
    pub fn sort_by_popularity(&self, titles: &mut [TitleIdx]) {
        titles.sort_by(|a, b| self.popularity_order(*a, *b));
    }

    /// Titles that have any interaction, most popular first.
    pub fn popular(&self) -> &[TitleIdx] {
        &self.popular_order
    }

    /// Trending in the country, falling back to all countries when the country has too
    /// little recent activity of its own; best first (`sources::best_first`).
    pub fn trending(&self, country: Option<&Country>) -> &[(TitleIdx, f32)] {
        country
            .and_then(|c| self.trending_by_country.get(c))
            .unwrap_or(&self.trending_everywhere)
    }

    pub fn neighbors(&self, t: TitleIdx) -> &[(TitleIdx, f32)] {
        self.neighbors.get(t as usize).map_or(&[], Vec::as_slice)
    }

    /// Titles most like `t` by metadata, most similar first.
    pub fn content_neighbors(&self, t: TitleIdx) -> &[(TitleIdx, f32)] {
        self.content_neighbors
            .get(t as usize)
            .map_or(&[], Vec::as_slice)
    }

    /// EASE weights from `t` towards other titles (may be negative); empty without EASE.
    pub fn item_weights(&self, t: TitleIdx) -> &[(TitleIdx, f32)] {
        self.item_weights.get(t as usize).map_or(&[], Vec::as_slice)
    }

    /// Whether the model has EASE weights at all (older or very large models do not).
    pub fn has_item_weights(&self) -> bool {
        self.has_item_weights
    }
}
