//! Candidate sources: each proposes titles for one kind of row. Sources are registered by name
//! in a `SourceRegistry` and built from a row definition's `params` table; typed params with
//! `deny_unknown_fields` make a misspelt key an error at load time, not a silent default.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::domain::{DAY_MS, Millis, Profile};
use crate::engine::catalog::{Catalog, TitleIdx};
use crate::engine::history::{History, Thumbs};
use crate::engine::model::Model;

#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub title: TitleIdx,
    /// Relevance within the row; higher is better. Comparable only within one row.
    pub score: f32,
    /// Human-readable explanation shown with the item.
    pub reason: Option<String>,
    /// Titles from the profile's history that led to this candidate.
    pub evidence: Vec<TitleIdx>,
}

/// One row a source wants on the page. Most sources produce one; "Because You Watched"
/// produces one per anchor title.
#[derive(Debug, Clone, PartialEq)]
pub struct SourcedRow {
    /// Distinguishes rows from the same definition: the row id becomes `<id>:<key>`.
    pub key: Option<String>,
    /// Replaces the definition's title (e.g. "Because You Watched Toy Story").
    pub title: Option<String>,
    /// Best first.
    pub candidates: Vec<Candidate>,
}

impl SourcedRow {
    fn single(candidates: Vec<Candidate>) -> Vec<SourcedRow> {
        vec![SourcedRow {
            key: None,
            title: None,
            candidates,
        }]
    }
}

/// What a source may look at while proposing candidates.
pub struct SourceContext<'a> {
    pub catalog: &'a Catalog,
    pub model: &'a Model,
    pub profile: &'a Profile,
    pub history: &'a History,
    pub now: Millis,
    /// Whether a title may still be placed (policy filters and titles placed higher up).
    /// Sources use it to fill their pool with titles that can actually be shown.
    pub eligible: &'a dyn Fn(TitleIdx) -> bool,
    /// How many candidates the row would like to choose from.
    pub pool: usize,
}

impl SourceContext<'_> {
    /// History entries that are positive, with their weight decayed by age.
    fn weighted_history(&self, half_life_days: f64) -> Vec<(TitleIdx, f32)> {
        self.history
            .states()
            .filter_map(|s| {
                let t = self.catalog.idx(&s.title_id)?;
                let affinity = s.affinity();
                if affinity <= 0.0 {
                    return None;
                }
                let age_days = (self.now - s.last_activity()).max(0) as f64 / DAY_MS as f64;
                let decay = if half_life_days > 0.0 {
                    (-age_days / half_life_days).exp2()
                } else {
                    1.0
                };
                Some((t, (affinity * decay) as f32))
            })
            .collect()
    }

    /// Item-item scores from the (decayed) history: Σ weight(anchor) · sim(anchor, title).
    fn personal_scores(&self, half_life_days: f64) -> HashMap<TitleIdx, f32> {
        let mut scores: HashMap<TitleIdx, f32> = HashMap::new();
        for (anchor, w) in self.weighted_history(half_life_days) {
            for &(t, s) in self.model.neighbors(anchor) {
                *scores.entry(t).or_default() += w * s;
            }
        }
        scores
    }

    /// The eligible entries of `scored`, best first, at most `pool`.
    fn top(&self, scored: impl IntoIterator<Item = (TitleIdx, f32)>) -> Vec<Candidate> {
        let mut list: Vec<(TitleIdx, f32)> = scored
            .into_iter()
            .filter(|(t, s)| *s > 0.0 && (self.eligible)(*t))
            .collect();
        list.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        list.truncate(self.pool);
        list.into_iter()
            .map(|(title, score)| Candidate {
                title,
                score,
                reason: None,
                evidence: vec![],
            })
            .collect()
    }

    fn popular(&self) -> Vec<Candidate> {
        self.top(
            self.model
                .popular()
                .iter()
                .filter(|t| (self.eligible)(**t))
                .take(self.pool)
                .map(|&t| (t, self.model.popularity(t))),
        )
    }
}

pub trait CandidateSource: Send + Sync + Debug {
    fn rows(&self, ctx: &SourceContext<'_>) -> Vec<SourcedRow>;
}

pub type SourceFactory = fn(toml::Table) -> Result<Box<dyn CandidateSource>, String>;

/// Candidate sources by name, as `rows/*.toml` refers to them.
#[derive(Clone, Debug)]
pub struct SourceRegistry {
    factories: BTreeMap<&'static str, SourceFactory>,
}

fn build<P, S>(params: toml::Table, make: fn(P) -> S) -> Result<Box<dyn CandidateSource>, String>
where
    P: DeserializeOwned,
    S: CandidateSource + 'static,
{
    let params: P = toml::Value::Table(params)
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_owned())?;
    Ok(Box::new(make(params)))
}

impl SourceRegistry {
    pub fn builtin() -> Self {
        let mut r = Self {
            factories: BTreeMap::new(),
        };
        r.register("continue-watching", |p| build(p, ContinueWatching));
        r.register("personalized", |p| build(p, Personalized));
        r.register("because-you-watched", |p| build(p, BecauseYouWatched));
        r.register("trending", |p| build(p, Trending));
        r.register("new-releases", |p| build(p, NewReleases));
        r.register("top-genre", |p| build(p, TopGenre));
        r.register("popular", |p| build(p, Popular));
        r
    }

    pub fn register(&mut self, name: &'static str, factory: SourceFactory) {
        self.factories.insert(name, factory);
    }

    pub fn build(
        &self,
        name: &str,
        params: toml::Table,
    ) -> Result<Box<dyn CandidateSource>, String> {
        let factory = self.factories.get(name).ok_or_else(|| {
            format!(
                "unknown source {name:?} (known: {})",
                self.factories
                    .keys()
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        factory(params)
    }
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContinueWatchingParams {
    /// Below this, the profile merely sampled the title.
    pub min_progress: f64,
    /// Above this, the credits are rolling: the title counts as finished.
    pub max_progress: f64,
}

impl Default for ContinueWatchingParams {
    fn default() -> Self {
        Self {
            min_progress: 0.05,
            max_progress: 0.9,
        }
    }
}

/// Titles in progress, most recently watched first.
#[derive(Debug)]
pub struct ContinueWatching(pub ContinueWatchingParams);

impl CandidateSource for ContinueWatching {
    fn rows(&self, ctx: &SourceContext<'_>) -> Vec<SourcedRow> {
        let p = &self.0;
        let mut watching: Vec<(TitleIdx, Millis, f64)> = ctx
            .history
            .states()
            .filter(|s| !s.is_watched())
            .filter(|s| (p.min_progress..=p.max_progress).contains(&s.progress.get()))
            .filter_map(|s| {
                let t = ctx.catalog.idx(&s.title_id)?;
                Some((t, s.last_watched_at?, s.progress.get()))
            })
            .filter(|(t, _, _)| (ctx.eligible)(*t))
            .collect();
        watching.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let n = watching.len();
        SourcedRow::single(
            watching
                .into_iter()
                .enumerate()
                .map(|(rank, (title, _, progress))| Candidate {
                    title,
                    // Recency rank is the order; keep scores strictly decreasing.
                    score: (n - rank) as f32,
                    reason: Some(format!("{:.0}% watched", progress * 100.0)),
                    evidence: vec![],
                })
                .collect(),
        )
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PersonalizedParams {
    /// Half-life of a history entry's weight, in minutes. Age counts back from the profile's
    /// own latest activity, not from "now": what predicts the next title is the latest
    /// session, however long ago it was. 0 turns decay off.
    pub recency_half_life_minutes: f64,
    /// Share of each entry's weight that never decays, so the whole history still counts.
    pub recency_floor: f64,
    /// A title the profile finished or rated weighs at least this much, however it was rated:
    /// having chosen it says what the profile watches (tuned: 1.0, ratings add nothing here).
    /// Thumbs-down titles never count.
    pub seen_weight: f64,
    /// Weight of co-occurrence similarity next to the EASE score (each scaled to its best).
    pub similarity_weight: f32,
    /// Weight of the embedding score (the folded-in profile vector · title vector, via the
    /// ANN index) next to the EASE score, each scaled to its best eligible title.
    pub embedding_weight: f32,
    /// Titles the ANN index is asked for, beyond the profile's own.
    pub embedding_candidates: usize,
    /// Weight of global popularity next to the personal score.
    pub popularity_weight: f32,
    /// Titles scoring below this share of the best title's score are left out. EASE gives
    /// almost every title some weight; the faint tail is noise, better left to rows below
    /// (0.2 costs nothing on VALID; 0.4 starts to cut Recall@20).
    pub min_relative_score: f32,
    /// Row title for a profile with no history, whose row falls back to popularity.
    pub cold_start_title: String,
}

impl Default for PersonalizedParams {
    fn default() -> Self {
        Self {
            recency_half_life_minutes: 1.5,
            recency_floor: 0.06,
            seen_weight: 1.0,
            similarity_weight: 0.0,
            embedding_weight: 0.25,
            embedding_candidates: 100,
            popularity_weight: 0.0,
            min_relative_score: 0.2,
            cold_start_title: "Popular on Marquee".into(),
        }
    }
}

/// Top Picks: EASE weights (and co-occurrence similarity) summed over the profile's history,
/// the latest session weighing most, blended with the embedding score of the profile vector
/// folded in from that same decayed history (candidates from the ANN index). Without EASE
/// weights in the model, similarity (and embeddings) alone.
#[derive(Debug)]
pub struct Personalized(pub PersonalizedParams);

impl Personalized {
    /// (title, weight) for each history entry that says something positive.
    fn history_weights(&self, ctx: &SourceContext<'_>) -> Vec<(TitleIdx, f32)> {
        let p = &self.0;
        let entries: Vec<(TitleIdx, f64, Millis)> = ctx
            .history
            .states()
            .filter(|s| s.thumbs != Thumbs::Down)
            .filter_map(|s| {
                let mut w = s.affinity();
                if s.is_watched() {
                    w = w.max(p.seen_weight);
                }
                Some((ctx.catalog.idx(&s.title_id)?, w, s.last_activity()))
            })
            .filter(|(_, w, _)| *w > 0.0)
            .collect();
        let latest = entries.iter().map(|e| e.2).max().unwrap_or(0);
        let half_life_ms = p.recency_half_life_minutes * 60_000.0;
        let floor = p.recency_floor.clamp(0.0, 1.0);
        entries
            .into_iter()
            .map(|(t, w, at)| {
                let decay = if half_life_ms > 0.0 {
                    (-((latest - at) as f64) / half_life_ms).exp2()
                } else {
                    1.0
                };
                (t, (w * (floor + (1.0 - floor) * decay)) as f32)
            })
            .collect()
    }
}

impl Personalized {
    /// The personal score of every title the history reaches that may still be placed, in
    /// 0–1-ish (each part scaled by its best eligible title), best first is up to the caller.
    /// `None` when the history reaches nothing (a cold start).
    pub fn scores(&self, ctx: &SourceContext<'_>) -> Option<Vec<(TitleIdx, f32)>> {
        let p = &self.0;
        let history = self.history_weights(ctx);
        // Dense accumulators: a long history touches most of the catalogue through EASE's
        // lists, and indexing beats hashing there.
        let n = ctx.catalog.len();
        let mut ease = vec![0f32; n];
        let mut similar = vec![0f32; n];
        let mut touched: Vec<TitleIdx> = Vec::new();
        let mut seen = vec![false; n];
        let use_ease = ctx.model.has_item_weights();
        let mut add = |list: &[(TitleIdx, f32)], w: f32, acc: &mut [f32]| {
            for &(t, s) in list {
                acc[t as usize] += w * s;
                if !seen[t as usize] {
                    seen[t as usize] = true;
                    touched.push(t);
                }
            }
        };
        for &(anchor, w) in &history {
            if use_ease {
                add(ctx.model.item_weights(anchor), w, &mut ease);
            }
            add(ctx.model.neighbors(anchor), w, &mut similar);
        }
        let mut embedded = vec![0f32; n];
        let use_embeddings = p.embedding_weight > 0.0 && ctx.model.has_embeddings();
        if use_embeddings && let Some(profile) = ctx.model.fold_in(&history) {
            // The profile's own titles come back from the index too (they match it best) and
            // are dropped later; ask for that many more so the fresh candidates stay whole.
            let wanted = p.embedding_candidates + history.len();
            let nearest = ctx.model.nearest_titles(&profile, wanted);
            add(&nearest, 1.0, &mut embedded);
        }
        if touched.is_empty() {
            return None;
        }
        // Scale by the best title that can be shown: watched titles score high and are not.
        touched.retain(|t| (ctx.eligible)(*t));
        let best = |acc: &[f32]| {
            touched
                .iter()
                .map(|t| acc[*t as usize])
                .fold(f32::MIN_POSITIVE, f32::max)
        };
        let (ease_max, similar_max, embedded_max) = (best(&ease), best(&similar), best(&embedded));
        // Without EASE the similarity score is the personal score, as before EASE existed.
        let similarity_weight = if use_ease { p.similarity_weight } else { 1.0 };
        Some(
            touched
                .into_iter()
                .map(|t| {
                    let from_ease = if use_ease {
                        ease[t as usize] / ease_max
                    } else {
                        0.0
                    };
                    let from_embeddings = if use_embeddings {
                        p.embedding_weight * embedded[t as usize].max(0.0) / embedded_max
                    } else {
                        0.0
                    };
                    let personal = from_ease
                        + similarity_weight * similar[t as usize] / similar_max
                        + from_embeddings;
                    (t, personal + p.popularity_weight * ctx.model.popularity(t))
                })
                .collect(),
        )
    }
}

impl CandidateSource for Personalized {
    fn rows(&self, ctx: &SourceContext<'_>) -> Vec<SourcedRow> {
        match self.scores(ctx) {
            Some(scores) => {
                let best = scores.iter().map(|s| s.1).fold(0f32, f32::max);
                let floor = best * self.0.min_relative_score;
                SourcedRow::single(ctx.top(scores.into_iter().filter(|s| s.1 >= floor)))
            }
            None => vec![SourcedRow {
                key: None,
                title: Some(self.0.cold_start_title.clone()),
                candidates: ctx.popular(),
            }],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BecauseYouWatchedParams {
    /// One row per anchor, at most this many.
    pub max_rows: usize,
    /// A rating at least this high makes a title an anchor (thumbs up and completion do too).
    pub min_stars: f64,
    /// Weight of the profile's Top Picks score (default `personalized` params) next to the
    /// similarity to the anchor, when ordering the anchor's neighbours. 0: similarity only.
    /// Tuned on VALID (README, "Recommendation quality").
    pub personal_weight: f32,
}

impl Default for BecauseYouWatchedParams {
    fn default() -> Self {
        Self {
            max_rows: 2,
            min_stars: 4.0,
            personal_weight: 1.0,
        }
    }
}

/// An anchor's co-occurrence neighbours, or its content neighbours when it has none (a title
/// too new or too rarely watched to have co-occurred with anything).
fn anchor_neighbors(model: &Model, anchor: TitleIdx) -> &[(TitleIdx, f32)] {
    match model.neighbors(anchor) {
        [] => model.content_neighbors(anchor),
        list => list,
    }
}

/// "Because You Watched X": neighbours of the most recent strongly-positive titles (content
/// neighbours for an anchor without co-occurrence neighbours).
#[derive(Debug)]
pub struct BecauseYouWatched(pub BecauseYouWatchedParams);

impl CandidateSource for BecauseYouWatched {
    fn rows(&self, ctx: &SourceContext<'_>) -> Vec<SourcedRow> {
        let mut anchors: Vec<(TitleIdx, Millis)> = ctx
            .history
            .states()
            .filter(|s| s.is_strongly_positive(self.0.min_stars))
            .filter_map(|s| Some((ctx.catalog.idx(&s.title_id)?, s.last_activity())))
            .filter(|(t, _)| !anchor_neighbors(ctx.model, *t).is_empty())
            .collect();
        anchors.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        // The anchor decides which titles are in a row; the whole history may help order them.
        let personal: HashMap<TitleIdx, f32> = if self.0.personal_weight > 0.0 {
            Personalized(PersonalizedParams::default())
                .scores(ctx)
                .map(|s| s.into_iter().collect())
                .unwrap_or_default()
        } else {
            HashMap::new()
        };
        anchors
            .into_iter()
            .take(self.0.max_rows)
            .map(|(anchor, _)| {
                let name = &ctx.catalog.title(anchor).name;
                let neighbors = anchor_neighbors(ctx.model, anchor);
                let best = neighbors
                    .first()
                    .map_or(1.0, |n| n.1.max(f32::MIN_POSITIVE));
                let mut candidates = ctx.top(neighbors.iter().map(|&(t, s)| {
                    let p = personal.get(&t).copied().unwrap_or(0.0).max(0.0);
                    (t, s / best + self.0.personal_weight * p)
                }));
                for c in &mut candidates {
                    c.reason = Some(format!("Because you watched {name}"));
                    c.evidence = vec![anchor];
                }
                SourcedRow {
                    key: Some(ctx.catalog.title(anchor).id.to_string()),
                    title: Some(format!("Because You Watched {name}")),
                    candidates,
                }
            })
            .collect()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// Trending in the profile's country (time-decayed popularity, computed at training time).
#[derive(Debug)]
pub struct Trending(pub NoParams);

impl CandidateSource for Trending {
    fn rows(&self, ctx: &SourceContext<'_>) -> Vec<SourcedRow> {
        SourcedRow::single(
            ctx.top(
                ctx.model
                    .trending(ctx.profile.country.as_ref())
                    .iter()
                    .copied(),
            ),
        )
    }
}

/// Most popular overall.
#[derive(Debug)]
pub struct Popular(pub NoParams);

impl CandidateSource for Popular {
    fn rows(&self, ctx: &SourceContext<'_>) -> Vec<SourcedRow> {
        SourcedRow::single(ctx.popular())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NewReleasesParams {
    /// Titles released this many years before "now" (or later) count as new.
    pub max_age_years: i32,
}

impl Default for NewReleasesParams {
    fn default() -> Self {
        Self { max_age_years: 1 }
    }
}

/// Recent releases, newest year first, popular ones first within a year.
#[derive(Debug)]
pub struct NewReleases(pub NewReleasesParams);

impl CandidateSource for NewReleases {
    fn rows(&self, ctx: &SourceContext<'_>) -> Vec<SourcedRow> {
        let now_year = chrono::DateTime::from_timestamp_millis(ctx.now)
            .map_or(1970, |d| chrono::Datelike::year(&d));
        let oldest = now_year - self.0.max_age_years;
        SourcedRow::single(ctx.top(ctx.catalog.titles().filter_map(|(t, title)| {
            let year = title.year?;
            if year < oldest || year > now_year {
                return None;
            }
            // Each year newer doubles the weight; popularity orders within a year and keeps
            // titles nobody has watched yet above zero.
            let freshness = ((year - oldest) as f32).exp2();
            Some((t, freshness * (0.05 + ctx.model.popularity(t))))
        })))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopGenreParams {
    pub max_rows: usize,
    pub recency_half_life_days: f64,
}

impl Default for TopGenreParams {
    fn default() -> Self {
        Self {
            max_rows: 1,
            recency_half_life_days: 60.0,
        }
    }
}

/// A row for each of the profile's favourite genres (onboarding genres while it has no
/// history), ranked by personal score with popularity as the fallback.
#[derive(Debug)]
pub struct TopGenre(pub TopGenreParams);

impl TopGenre {
    fn favourite_genres(&self, ctx: &SourceContext<'_>) -> Vec<String> {
        let history = ctx.weighted_history(self.0.recency_half_life_days);
        if history.is_empty() {
            return ctx
                .profile
                .onboarding_genres
                .iter()
                .filter(|g| ctx.catalog.has_genre(g))
                .take(self.0.max_rows)
                .cloned()
                .collect();
        }
        let mut weight: HashMap<&str, f32> = HashMap::new();
        for (t, w) in history {
            for g in &ctx.catalog.title(t).genres {
                *weight.entry(g.as_str()).or_default() += w;
            }
        }
        // Normalise by how common the genre is, so that "Drama" does not win every profile.
        let mut ranked: Vec<(&str, f32)> = ctx
            .catalog
            .genres()
            .filter_map(|(g, n)| Some((g, weight.get(g)? / (n as f32).sqrt())))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        ranked
            .into_iter()
            .take(self.0.max_rows)
            .map(|(g, _)| g.to_owned())
            .collect()
    }
}

impl CandidateSource for TopGenre {
    fn rows(&self, ctx: &SourceContext<'_>) -> Vec<SourcedRow> {
        let personal = ctx.personal_scores(self.0.recency_half_life_days);
        let max = personal.values().copied().fold(f32::MIN_POSITIVE, f32::max);
        self.favourite_genres(ctx)
            .into_iter()
            .map(|genre| {
                let in_genre = ctx
                    .catalog
                    .titles()
                    .filter(|(_, t)| t.genres.contains(&genre))
                    .map(|(t, _)| {
                        let personal = personal.get(&t).map_or(0.0, |s| s / max);
                        (t, personal + 0.1 * ctx.model.popularity(t))
                    });
                let candidates = ctx.top(in_genre);
                SourcedRow {
                    key: Some(genre.clone()),
                    title: Some(genre),
                    candidates,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccountId, ProfileId, Title, TitleId};
    use crate::engine::history::WatchState;
    use crate::engine::model::{Interaction, TrainParams, TrainingSet, train};

    fn title(id: &str, genres: &[&str]) -> Title {
        Title {
            year: Some(1995),
            genres: genres.iter().map(|g| g.to_string()).collect(),
            ..Title::new(TitleId::parse(id).unwrap(), format!("t{id}"))
        }
    }

    #[test]
    fn because_you_watched_falls_back_to_content_neighbours() {
        // Only one interaction in the whole world: title 1 has no co-occurrence neighbours,
        // but shares its genre with 2.
        let catalog = Catalog::new(vec![
            title("1", &["Drama"]),
            title("2", &["Drama"]),
            title("3", &["Comedy"]),
        ]);
        let p = ProfileId::parse("p").unwrap();
        let data = TrainingSet::from_interactions(
            &catalog,
            &[Interaction {
                profile: p.clone(),
                title: TitleId::parse("1").unwrap(),
                affinity: 1.0,
                at: 0,
                country: None,
            }],
        );
        let artifact = train(&catalog, &data, &[], 0, &TrainParams::default());
        let model = Model::load("t", &artifact, &catalog);
        assert!(model.neighbors(0).is_empty());
        let mut watched = WatchState::new(TitleId::parse("1").unwrap());
        watched.completed = true;
        watched.last_watched_at = Some(0);
        let history = History::new([watched]);
        let profile = Profile {
            id: p,
            account_id: AccountId::parse("p").unwrap(),
            name: "p".into(),
            is_kids: false,
            maturity_limit: None,
            country: None,
            onboarding_genres: vec![],
        };
        let eligible = |t: TitleIdx| t != 0;
        let ctx = SourceContext {
            catalog: &catalog,
            model: &model,
            profile: &profile,
            history: &history,
            now: 0,
            eligible: &eligible,
            pool: 10,
        };
        let rows = BecauseYouWatched(BecauseYouWatchedParams::default()).rows(&ctx);
        assert_eq!(rows.len(), 1);
        let titles: Vec<TitleIdx> = rows[0].candidates.iter().map(|c| c.title).collect();
        assert_eq!(titles, vec![1]);
    }
}
