//! The model artifact: what training produces and `marquee train` writes to
//! `<data-dir>/models/<version>.model`, by title id so that it survives catalogue changes.
//! `encode`/`decode` is the one file format.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::als::Factors;
use super::ann::{AnnIndex, AnnParams};
use super::params::TrainParams;
use super::popular_now::PopularNowBacktest;
use crate::domain::{Country, Millis, TitleId};

/// Bumped when the artifact layout changes; older artifacts are refused with a clear error.
/// (5: trending keyed by `Option<Country>`; 6: the popular-now backtest, and its knobs in
/// `TrainParams`; 7: the backtest's setting for little history and its windows.)
pub const ARTIFACT_FORMAT: u32 = 7;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredTitle(pub TitleId, pub f32);

/// Title embeddings and their ANN index. Only titles with interactions have one (the others
/// would be zero vectors).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbeddingArtifact {
    /// Row r of `factors` (and value r in `index`) is `titles[r]`.
    pub titles: Vec<TitleId>,
    pub factors: Factors,
    pub index: Arc<AnnIndex>,
}

impl EmbeddingArtifact {
    /// Indexes `factors` (row r belongs to `titles[r]`).
    pub fn build(titles: Vec<TitleId>, factors: Factors, params: &AnnParams) -> Self {
        let index = Arc::new(AnnIndex::build(&factors, params));
        Self {
            titles,
            factors,
            index,
        }
    }
}

/// The persisted model: ids, not catalogue indexes, so it survives catalogue changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelArtifact {
    pub format: u32,
    /// The training clock's "now": trending is relative to it.
    pub trained_at: Millis,
    pub params: TrainParams,
    pub interactions: usize,
    /// Most popular first.
    pub popularity: Vec<ScoredTitle>,
    /// Trending titles, hottest first: per country with enough recent activity of its own,
    /// and over all countries together under `None`.
    pub trending: BTreeMap<Option<Country>, Vec<ScoredTitle>>,
    /// Title → most similar titles, most similar first.
    pub neighbors: BTreeMap<TitleId, Vec<ScoredTitle>>,
    /// Title → EASE weights towards other titles, largest magnitude first; may be negative.
    /// Empty when EASE was skipped.
    pub item_weights: BTreeMap<TitleId, Vec<ScoredTitle>>,
    /// Title → most similar titles by metadata (genres, year, people), most similar first.
    pub content_neighbors: BTreeMap<TitleId, Vec<ScoredTitle>>,
    /// None when embeddings are turned off or nothing was interacted with.
    pub embeddings: Option<EmbeddingArtifact>,
    /// What the popular-now backtest found and chose (`popular_now.rs`); None when it is
    /// turned off.
    pub popular_now: Option<PopularNowBacktest>,
}

/// The first bytes of every artifact file, then the format as a little-endian u32, then the
/// artifact in postcard (a compact binary serde format: at 50k titles JSON would be several
/// times larger and slower to parse).
const MAGIC: &[u8; 8] = b"MRQMODEL";

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("not a Marquee model artifact; retrain with `marquee train`")]
    NotAnArtifact,
    #[error(
        "artifact format {found} is not supported (expected {ARTIFACT_FORMAT}); retrain with `marquee train`"
    )]
    Format { found: u32 },
    #[error("artifact is corrupt: {0}")]
    Corrupt(String),
}

impl ModelArtifact {
    pub fn encode(&self) -> Result<Vec<u8>, ArtifactError> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&self.format.to_le_bytes());
        postcard::to_extend(self, out).map_err(|e| ArtifactError::Corrupt(e.to_string()))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ArtifactError> {
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or(ArtifactError::NotAnArtifact)?;
        let (format, payload) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| ArtifactError::Corrupt("truncated header".into()))?;
        let found = u32::from_le_bytes(*format);
        if found != ARTIFACT_FORMAT {
            return Err(ArtifactError::Format { found });
        }
        postcard::from_bytes(payload).map_err(|e| ArtifactError::Corrupt(e.to_string()))
    }
}
