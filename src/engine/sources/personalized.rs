//! Top Picks: the profile's whole history scored through EASE weights, co-occurrence and
//! embeddings.

use serde::Deserialize;

use super::{CandidateSource, SourceContext, SourcedRow};
use crate::domain::Millis;
use crate::engine::catalog::TitleIdx;
use crate::engine::history::Thumbs;

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
