//! Trained models: what `marquee train` computes from interactions, how it is persisted, and
//! the in-memory form the candidate sources read.
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
//!   `ann.rs`); profiles are folded in at request time from their current history.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::domain::{Country, DAY_MS, Millis, TitleId};
use crate::engine::als::{self, AlsParams, Factors, ItemFactors, Sparse};
use crate::engine::ann::{AnnIndex, AnnParams};
use crate::engine::catalog::{Catalog, TitleIdx};
use crate::engine::content::{self, ContentParams, TitleEntity};
use crate::engine::ease;
pub use crate::engine::training_set::{Interaction, TrainingSet};

/// Bumped when the artifact layout changes; older artifacts are refused with a clear error.
pub const ARTIFACT_FORMAT: u32 = 4;

/// The key under which trending over all countries is stored.
pub const ALL_COUNTRIES: &str = "*";

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
        }
    }
}

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
    /// Country code (or `*`) → trending titles, hottest first.
    pub trending: BTreeMap<String, Vec<ScoredTitle>>,
    /// Title → most similar titles, most similar first.
    pub neighbors: BTreeMap<TitleId, Vec<ScoredTitle>>,
    /// Title → EASE weights towards other titles, largest magnitude first; may be negative.
    /// Empty when EASE was skipped.
    pub item_weights: BTreeMap<TitleId, Vec<ScoredTitle>>,
    /// Title → most similar titles by metadata (genres, year, people), most similar first.
    pub content_neighbors: BTreeMap<TitleId, Vec<ScoredTitle>>,
    /// None when embeddings are turned off or nothing was interacted with.
    pub embeddings: Option<EmbeddingArtifact>,
}

/// The first bytes of every artifact file, then the format as a little-endian u32, then the
/// artifact in postcard (a compact binary serde format: at 50k titles JSON would be several
/// times larger and slower to parse).
const MAGIC: &[u8; 8] = b"MRQMODEL";

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error(
        "not a Marquee model artifact (models trained before format 4 were JSON); retrain with `marquee train`"
    )]
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

/// How much one interaction counts for popularity and embeddings: watching at all says
/// something, liking it says more.
fn interaction_weight(affinity: f32) -> f32 {
    0.2 + 0.8 * affinity
}

/// Wall-clock time of each training stage, for `marquee train` and the scale benchmark.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StageTimes(pub Vec<(&'static str, f64)>);

impl StageTimes {
    fn time<T>(&mut self, stage: &'static str, f: impl FnOnce() -> T) -> T {
        let started = std::time::Instant::now();
        let out = f();
        self.0.push((stage, started.elapsed().as_secs_f64()));
        out
    }
}

pub fn train(
    catalog: &Catalog,
    data: &TrainingSet,
    entities: &[TitleEntity],
    now: Millis,
    params: &TrainParams,
) -> ModelArtifact {
    train_timed(catalog, data, entities, now, params).0
}

pub fn train_timed(
    catalog: &Catalog,
    data: &TrainingSet,
    entities: &[TitleEntity],
    now: Millis,
    params: &TrainParams,
) -> (ModelArtifact, StageTimes) {
    let n = catalog.len();
    let mut times = StageTimes::default();
    let started = std::time::Instant::now();

    // Popularity.
    let mut popularity = vec![0f32; n];
    for r in data.rows() {
        popularity[r.title as usize] += interaction_weight(r.affinity);
    }
    let popularity = ranked(catalog, popularity.into_iter().enumerate());

    // Trending per country, plus all countries together.
    let window = (params.trending_window_days * DAY_MS as f64) as Millis;
    let half_life = params.trending_half_life_days.max(1e-3) * DAY_MS as f64;
    let mut by_country: BTreeMap<String, (usize, HashMap<TitleIdx, f32>)> = BTreeMap::new();
    for r in data.rows() {
        let age = now - r.at;
        if age < 0 || age > window {
            continue;
        }
        let weight = interaction_weight(r.affinity) * (-(age as f64) / half_life).exp2() as f32;
        let mut add = |key: &str| {
            let (count, scores) = by_country.entry(key.to_owned()).or_default();
            *count += 1;
            *scores.entry(r.title).or_default() += weight;
        };
        add(ALL_COUNTRIES);
        if let Some(c) = data.country(r) {
            add(c.as_str());
        }
    }
    let trending = by_country
        .into_iter()
        .filter(|(key, (count, _))| {
            key == ALL_COUNTRIES || *count >= params.trending_min_interactions
        })
        .map(|(key, (_, scores))| {
            let mut list = ranked(catalog, scores.into_iter().map(|(t, s)| (t as usize, s)));
            list.truncate(500);
            (key, list)
        })
        .collect();

    times
        .0
        .push(("popularity and trending", started.elapsed().as_secs_f64()));
    let (active, dense_of) = active_titles(catalog, data);
    let ease = EaseMode::choose(active.len(), params);
    let co = times.time("co-occurrence neighbours", || {
        let keep_counts = match ease {
            EaseMode::Local => params.ease_local_neighbors,
            _ => 0,
        };
        co_occurrence(catalog, data, params, params.neighbors, keep_counts)
    });
    let neighbors = co.neighbors(catalog, params.neighbors);
    let item_weights = times.time("EASE", || match ease {
        EaseMode::Off => BTreeMap::new(),
        EaseMode::Exact => ease_weights(catalog, data, params, &active, &dense_of),
        EaseMode::Local => local_ease_weights(catalog, &co, params),
    });
    drop(co);
    let content_neighbors = times.time("content neighbours", || {
        content::neighbors(catalog, entities, &params.content)
    });
    let embeddings = embeddings(catalog, data, params, &active, &dense_of, &mut times);
    let artifact = ModelArtifact {
        format: ARTIFACT_FORMAT,
        trained_at: now,
        params: params.clone(),
        interactions: data.len(),
        popularity,
        trending,
        neighbors,
        item_weights,
        content_neighbors,
        embeddings,
    };
    (artifact, times)
}

/// Implicit ALS over the titles that have interactions, then the HNSW index over the result.
fn embeddings(
    catalog: &Catalog,
    data: &TrainingSet,
    params: &TrainParams,
    active: &[TitleIdx],
    dense_of: &[u32],
    times: &mut StageTimes,
) -> Option<EmbeddingArtifact> {
    if params.als.factors == 0 || data.is_empty() {
        return None;
    }
    let by_profile = Sparse::from_triples(
        data.profiles(),
        data.rows().iter().map(|r| {
            (
                r.profile,
                dense_of[r.title as usize],
                interaction_weight(r.affinity),
            )
        }),
    );
    let trained = times.time("ALS", || als::train(&by_profile, active.len(), &params.als));
    drop(by_profile);
    let titles = active
        .iter()
        .map(|t| catalog.title(*t).id.clone())
        .collect();
    Some(times.time("ANN index", || {
        EmbeddingArtifact::build(titles, trained.titles, &params.ann)
    }))
}

/// The titles with at least one interaction, in catalogue order, and each catalogue title's
/// position among them (`u32::MAX` for titles without interactions).
fn active_titles(catalog: &Catalog, data: &TrainingSet) -> (Vec<TitleIdx>, Vec<u32>) {
    let mut seen = vec![false; catalog.len()];
    for r in data.rows() {
        seen[r.title as usize] = true;
    }
    let active: Vec<TitleIdx> = (0..catalog.len() as TitleIdx)
        .filter(|t| seen[*t as usize])
        .collect();
    let mut dense_of = vec![u32::MAX; catalog.len()];
    for (d, t) in active.iter().enumerate() {
        dense_of[*t as usize] = d as u32;
    }
    (active, dense_of)
}

/// Sorts descending by score (ties by catalogue order, so training is deterministic) and drops
/// zero scores.
fn ranked(catalog: &Catalog, scores: impl Iterator<Item = (usize, f32)>) -> Vec<ScoredTitle> {
    let mut list: Vec<(usize, f32)> = scores.filter(|(_, s)| *s > 0.0).collect();
    list.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    list.into_iter()
        .map(|(t, s)| ScoredTitle(catalog.title(t as TitleIdx).id.clone(), s))
        .collect()
}

/// Which EASE `train` computes for a catalogue of `active` titles with interactions.
#[derive(Debug, Clone, Copy, PartialEq)]
enum EaseMode {
    Off,
    /// The dense closed form over all titles.
    Exact,
    /// Each column over the title's co-occurrence neighbourhood (large catalogues).
    Local,
}

impl EaseMode {
    fn choose(active: usize, params: &TrainParams) -> Self {
        if active == 0 || params.ease_max_titles == 0 || params.ease_neighbors == 0 {
            EaseMode::Off
        } else if active <= params.ease_max_titles {
            EaseMode::Exact
        } else if params.ease_local_neighbors > 0 {
            EaseMode::Local
        } else {
            EaseMode::Off
        }
    }
}

/// Each title's most similar titles by cosine (most similar first), its most co-watched titles
/// by count (the local EASE neighbourhoods: see `local_ease_weights`), and how many profiles
/// watched each title.
struct CoOccurrence {
    lists: Vec<Vec<(TitleIdx, f32)>>,
    by_count: Vec<Vec<(u32, u32)>>,
    counts: Vec<u32>,
}

impl CoOccurrence {
    /// The first `k` of each list, by id, for the artifact.
    fn neighbors(&self, catalog: &Catalog, k: usize) -> BTreeMap<TitleId, Vec<ScoredTitle>> {
        self.lists
            .iter()
            .enumerate()
            .filter(|(_, list)| !list.is_empty() && k > 0)
            .map(|(i, list)| {
                (
                    catalog.title(i as TitleIdx).id.clone(),
                    list.iter()
                        .take(k)
                        .map(|(j, s)| ScoredTitle(catalog.title(*j).id.clone(), *s))
                        .collect(),
                )
            })
            .collect()
    }
}

/// Co-occurrence cosine: sim(i, j) = c(i, j) / (sqrt(n(i) · n(j)) + shrinkage), where c counts
/// profiles that interacted with both; the `keep` most similar per title, and the `keep_counts`
/// most co-watched. Every interaction counts, liked or not: having watched both is what makes
/// two titles similar; whether the profile liked them is the scorer's job.
fn co_occurrence(
    catalog: &Catalog,
    data: &TrainingSet,
    params: &TrainParams,
    keep: usize,
    keep_counts: usize,
) -> CoOccurrence {
    let n = catalog.len();
    let mut items_of: Vec<Vec<TitleIdx>> = vec![Vec::new(); data.profiles()];
    let mut profiles_of: Vec<Vec<u32>> = vec![Vec::new(); n];
    for r in data.rows() {
        items_of[r.profile as usize].push(r.title);
    }
    for (p, items) in items_of.iter_mut().enumerate() {
        items.sort_unstable();
        items.dedup();
        for t in items.iter() {
            profiles_of[*t as usize].push(p as u32);
        }
    }
    let counts: Vec<u32> = profiles_of.iter().map(|ps| ps.len() as u32).collect();

    // Titles are independent of each other: each worker keeps its own dense counter array.
    let (lists, by_count): (Vec<_>, Vec<_>) = (0..n)
        .into_par_iter()
        .map_init(
            || (vec![0u32; n], Vec::<TitleIdx>::new()),
            |(co, touched), i| {
                for p in &profiles_of[i] {
                    for &j in &items_of[*p as usize] {
                        if j as usize == i {
                            continue;
                        }
                        if co[j as usize] == 0 {
                            touched.push(j);
                        }
                        co[j as usize] += 1;
                    }
                }
                let mut by_count: Vec<(u32, u32)> =
                    touched.iter().map(|&j| (j, co[j as usize])).collect();
                let mut sims: Vec<(TitleIdx, f32)> = by_count
                    .iter()
                    .map(|&(j, c)| {
                        let norm = ((counts[i] as f32) * (counts[j as usize] as f32)).sqrt();
                        (j, c as f32 / (norm + params.shrinkage))
                    })
                    .collect();
                for &j in touched.iter() {
                    co[j as usize] = 0;
                }
                touched.clear();
                top_k(&mut sims, keep, |a, b| {
                    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
                });
                top_k(&mut by_count, keep_counts, |a, b| {
                    b.1.cmp(&a.1).then(a.0.cmp(&b.0))
                });
                (sims, by_count)
            },
        )
        .unzip();
    CoOccurrence {
        lists,
        by_count,
        counts,
    }
}

/// Keeps the first `k` of `list` in `order`, sorted, with no spare capacity (a popular title
/// touches most of the catalogue: 50k titles × that capacity was 5 GB of peak memory).
fn top_k<T>(list: &mut Vec<T>, k: usize, order: impl Fn(&T, &T) -> std::cmp::Ordering) {
    if k < list.len() {
        list.select_nth_unstable_by(k, &order);
        list.truncate(k);
    }
    list.sort_by(order);
    list.shrink_to_fit();
}

/// EASE for catalogues too large for the dense inverse: every column solved over the title's
/// most co-watched titles (`ease::local_column`), then the rows (what having watched a title
/// says about others) cut to the largest weights, as the exact path does. The solve needs the
/// pairs *within* a neighbourhood, which no list may hold. Measured on the VALID split of
/// ml100k-temporal-80-20-v1, where exact EASE scores 0.235 NDCG@10: neighbourhoods by cosine,
/// missing pairs read as never co-watched: 0.094 (200 neighbours); by count: 0.218, but a
/// third of the systems were not positive-definite and went unsolved (a Gram matrix with
/// holes is not a Gram matrix); missing pairs read as the upper bound the lists give (the
/// smaller of the two lists' last counts): 0.237 with 200 neighbours, 0.238 with 100, 0.228
/// with 50, and every system solved.
fn local_ease_weights(
    catalog: &Catalog,
    co: &CoOccurrence,
    params: &TrainParams,
) -> BTreeMap<TitleId, Vec<ScoredTitle>> {
    let n = catalog.len();
    // A pair missing from a full list was co-watched at most as often as that list's last
    // entry; from a list that is not full, never.
    let unknown: Vec<f64> = co
        .by_count
        .iter()
        .map(|list| match list.last() {
            Some((_, c)) if list.len() >= params.ease_local_neighbors => *c as f64,
            _ => 0.0,
        })
        .collect();
    let columns: Vec<Vec<(u32, f64)>> = (0..n)
        .into_par_iter()
        .map_init(
            || vec![u32::MAX; n],
            |position, j| {
                ease::local_column(
                    j,
                    &co.by_count,
                    &co.counts,
                    &unknown,
                    params.ease_lambda,
                    position,
                )
            },
        )
        .collect();
    let mut rows: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n];
    for (j, column) in columns.into_iter().enumerate() {
        for (i, w) in column {
            rows[i as usize].push((j as u32, w));
        }
    }
    rows.into_iter()
        .enumerate()
        .filter(|(_, row)| !row.is_empty())
        .map(|(i, mut row)| {
            row.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
            row.truncate(params.ease_neighbors);
            (
                catalog.title(i as TitleIdx).id.clone(),
                row.into_iter()
                    .map(|(j, w)| ScoredTitle(catalog.title(j).id.clone(), w as f32))
                    .collect(),
            )
        })
        .collect()
}

/// Exact EASE over the titles that have interactions (the others would be all-zero rows and columns),
/// on binary "has interacted" data: the same implicit signal the co-occurrence counts use.
fn ease_weights(
    catalog: &Catalog,
    data: &TrainingSet,
    params: &TrainParams,
    active: &[TitleIdx],
    dense_of: &[u32],
) -> BTreeMap<TitleId, Vec<ScoredTitle>> {
    let mut items_of: Vec<Vec<u32>> = vec![Vec::new(); data.profiles()];
    for r in data.rows() {
        items_of[r.profile as usize].push(dense_of[r.title as usize]);
    }
    for items in &mut items_of {
        items.sort_unstable();
        items.dedup();
    }
    let n = active.len();
    let Some(b) = ease::weights(n, &items_of, params.ease_lambda) else {
        return BTreeMap::new();
    };
    (0..n)
        .map(|i| {
            let row = ease::top_k_by_magnitude(&b[i * n..(i + 1) * n], params.ease_neighbors);
            (
                catalog.title(active[i]).id.clone(),
                row.into_iter()
                    .map(|(j, w)| {
                        ScoredTitle(catalog.title(active[j as usize]).id.clone(), w as f32)
                    })
                    .collect(),
            )
        })
        .filter(|(_, row): &(TitleId, Vec<ScoredTitle>)| !row.is_empty())
        .collect()
}

/// The model as the engine reads it: catalogue indexes, scores normalised to 0–1.
#[derive(Debug, Clone, Default)]
pub struct Model {
    pub version: String,
    pub trained_at: Millis,
    popularity: Vec<f32>,
    popular_order: Vec<TitleIdx>,
    trending: HashMap<String, Vec<(TitleIdx, f32)>>,
    neighbors: Vec<Vec<(TitleIdx, f32)>>,
    item_weights: Vec<Vec<(TitleIdx, f32)>>,
    has_item_weights: bool,
    content_neighbors: Vec<Vec<(TitleIdx, f32)>>,
    embeddings: Option<ServedEmbeddings>,
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
            trending: artifact
                .trending
                .iter()
                .map(|(k, list)| (k.clone(), bind(list)))
                .collect(),
            neighbors,
            has_item_weights: item_weights.iter().any(|l| !l.is_empty()),
            item_weights,
            content_neighbors,
            embeddings,
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

    /// Titles that have any interaction, most popular first.
    pub fn popular(&self) -> &[TitleIdx] {
        &self.popular_order
    }

    /// Trending in the country, falling back to all countries when the country has too
    /// little recent activity of its own.
    pub fn trending(&self, country: Option<&Country>) -> &[(TitleIdx, f32)] {
        country
            .and_then(|c| self.trending.get(c.as_str()))
            .or_else(|| self.trending.get(ALL_COUNTRIES))
            .map_or(&[], Vec::as_slice)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ProfileId, Title};

    fn catalog(n: usize) -> Catalog {
        Catalog::new(
            (1..=n)
                .map(|i| Title::new(TitleId::parse(&i.to_string()).unwrap(), format!("t{i}")))
                .collect(),
        )
    }

    fn train(
        catalog: &Catalog,
        data: &[Interaction],
        entities: &[TitleEntity],
        now: Millis,
        params: &TrainParams,
    ) -> ModelArtifact {
        super::train(
            catalog,
            &TrainingSet::from_interactions(catalog, data),
            entities,
            now,
            params,
        )
    }

    fn ix(p: &str, t: &str, at: Millis) -> Interaction {
        Interaction {
            profile: ProfileId::parse(p).unwrap(),
            title: TitleId::parse(t).unwrap(),
            affinity: 1.0,
            at,
            country: Some(Country::parse("US").unwrap()),
        }
    }

    #[test]
    fn cosine_with_shrinkage_matches_hand_computation() {
        // a watched 1,2; b watched 1,2,3; c watched 3.
        let data = [
            ix("a", "1", 0),
            ix("a", "2", 0),
            ix("b", "1", 0),
            ix("b", "2", 0),
            ix("b", "3", 0),
            ix("c", "3", 0),
        ];
        let params = TrainParams {
            shrinkage: 1.0,
            ..TrainParams::default()
        };
        let m = train(&catalog(3), &data, &[], 0, &params);
        let n1 = &m.neighbors[&TitleId::parse("1").unwrap()];
        // sim(1,2) = 2 / (sqrt(2*2) + 1) = 2/3; sim(1,3) = 1 / (sqrt(2*2) + 1) = 1/3.
        assert_eq!(n1[0].0.as_str(), "2");
        assert!((n1[0].1 - 2.0 / 3.0).abs() < 1e-6);
        assert_eq!(n1[1].0.as_str(), "3");
        assert!((n1[1].1 - 1.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn ease_weights_are_trained_and_stored_by_title() {
        // a watched 1,2; b watched 1. With λ = 1 (see ease.rs): watched 1 → 2 weighs 1/3,
        // watched 2 → 1 weighs 1/2. Title 3 has no interactions and takes no part.
        let data = [ix("a", "1", 0), ix("a", "2", 0), ix("b", "1", 0)];
        let params = TrainParams {
            ease_lambda: 1.0,
            ..TrainParams::default()
        };
        let m = train(&catalog(3), &data, &[], 0, &params);
        let w = |from: &str| &m.item_weights[&TitleId::parse(from).unwrap()];
        assert_eq!(w("1").len(), 1);
        assert_eq!(w("1")[0].0.as_str(), "2");
        assert!((w("1")[0].1 - 1.0 / 3.0).abs() < 1e-6);
        assert!((w("2")[0].1 - 0.5).abs() < 1e-6);
        assert!(!m.item_weights.contains_key(&TitleId::parse("3").unwrap()));
        // Above `ease_max_titles` each column is solved over its neighbourhood; here the
        // neighbourhoods are the whole (two-title) catalogue, so the weights are the same.
        let local = TrainParams {
            ease_max_titles: 1,
            ..params.clone()
        };
        assert_eq!(
            train(&catalog(3), &data, &[], 0, &local).item_weights,
            m.item_weights
        );
        let off = TrainParams {
            ease_max_titles: 1,
            ease_local_neighbors: 0,
            ..params
        };
        assert!(
            train(&catalog(3), &data, &[], 0, &off)
                .item_weights
                .is_empty()
        );
    }

    #[test]
    fn embeddings_fold_in_a_profile_from_its_history() {
        // Profiles a0–a9 watch titles 1–5, b0–b9 watch titles 6–10, each all but one.
        let mut data = Vec::new();
        for p in 0..10 {
            for k in (1..=5).filter(|k| k % 5 != p % 5) {
                data.push(ix(&format!("a{p}"), &k.to_string(), 0));
                data.push(ix(&format!("b{p}"), &(k + 5).to_string(), 0));
            }
        }
        let params = TrainParams {
            als: AlsParams {
                factors: 4,
                regularization: 1.0,
                ..AlsParams::default()
            },
            ..TrainParams::default()
        };
        let catalog = catalog(10);
        let artifact = train(&catalog, &data, &[], 0, &params);
        assert_eq!(artifact.embeddings.as_ref().unwrap().titles.len(), 10);
        // Through the artifact encoding, as a server loads it.
        let artifact = ModelArtifact::decode(&artifact.encode().unwrap()).unwrap();
        let model = Model::load("t", &artifact, &catalog);
        // A history in the first group reaches the first group, and one new event in the
        // second group moves the profile there: no retraining involved.
        let first = model.fold_in(&[(0, 1.0), (1, 1.0)]).unwrap();
        let top: Vec<TitleIdx> = model
            .nearest_titles(&first, 3)
            .iter()
            .map(|t| t.0)
            .collect();
        assert!(top.iter().all(|t| *t < 5), "{top:?}");
        let second = model.fold_in(&[(7, 1.0)]).unwrap();
        let top: Vec<TitleIdx> = model
            .nearest_titles(&second, 3)
            .iter()
            .map(|t| t.0)
            .collect();
        assert!(top.iter().all(|t| *t >= 5), "{top:?}");
        assert!(model.fold_in(&[]).is_none());
    }

    #[test]
    fn artifacts_of_another_format_are_refused_with_a_reason() {
        let artifact = train(
            &catalog(2),
            &[ix("a", "1", 0)],
            &[],
            0,
            &TrainParams::default(),
        );
        let mut bytes = artifact.encode().unwrap();
        assert!(ModelArtifact::decode(&bytes).is_ok());
        bytes[8] = 3; // format 3
        assert!(matches!(
            ModelArtifact::decode(&bytes),
            Err(ArtifactError::Format { found: 3 })
        ));
        assert!(matches!(
            ModelArtifact::decode(b"{\"format\": 3}"),
            Err(ArtifactError::NotAnArtifact)
        ));
        let truncated = &artifact.encode().unwrap()[..20];
        assert!(matches!(
            ModelArtifact::decode(truncated),
            Err(ArtifactError::Corrupt(_))
        ));
    }

    #[test]
    fn trending_decays_with_age_and_ignores_the_future() {
        let day = DAY_MS;
        let data = [
            ix("a", "1", 10 * day),
            ix("b", "2", 10 * day - 3 * day),
            ix("c", "2", 10 * day - 3 * day),
            ix("d", "3", 11 * day), // after "now": not seen yet
        ];
        let params = TrainParams {
            trending_min_interactions: 1,
            ..TrainParams::default()
        };
        let m = train(&catalog(3), &data, &[], 10 * day, &params);
        let global = &m.trending[ALL_COUNTRIES];
        // Title 2: two interactions, each half as fresh (3-day half-life) → equal weight to 1.
        assert_eq!(global.len(), 2);
        assert!((global[0].1 - global[1].1).abs() < 1e-5);
        assert!(m.trending.contains_key("US"));
    }
}
