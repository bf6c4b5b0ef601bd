//! Top Picks: the profile's whole history scored through EASE weights, co-occurrence and
//! embeddings.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Deserialize;

use super::{CandidateSource, SourceContext, SourcedRow};
use crate::engine::catalog::TitleIdx;
use crate::engine::history::{AgeFrom, RecencyDecay, Thumbs, WatchState};
use crate::engine::model::{Model, PopularNowSetting};

/// The source's name in page definitions.
pub const SOURCE: &str = "personalized";

/// Top Picks' params. The defaults are the tuned values, chosen on the VALID split of
/// `ml100k-temporal-80-20-v1` (the figures: README, "Recommendation quality"); `rows/*.toml`
/// sets a key only to depart from them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PersonalizedParams {
    /// Half-life of a history entry's weight, in minutes. Age counts back from the profile's
    /// own latest activity, not from "now": what predicts the next title is the latest
    /// session, however long ago it was. 0 turns decay off. Minutes suit MovieLens, whose
    /// users rated in bursts; real viewing logs need it retuned.
    pub recency_half_life_minutes: f64,
    /// Share of each entry's weight that never decays, so the whole history still counts.
    pub recency_floor: f64,
    /// A title the profile finished or rated weighs at least this much, however it was rated:
    /// having chosen it says what the profile watches (weighting by the rating did worse).
    /// Thumbs-down titles never count.
    pub seen_weight: f64,
    /// Weight of co-occurrence similarity next to the EASE score (each scaled to its best);
    /// 0 by default, since blending it in changed nothing beyond noise.
    pub similarity_weight: f32,
    /// Weight of the embedding score (the folded-in profile vector · title vector, via the
    /// ANN index) next to the EASE score, each scaled to its best eligible title. Neutral for
    /// NDCG on MovieLens, where EASE already finds what ALS finds, with a little more recall
    /// and coverage; kept because it is the part of the row that scales past EASE's
    /// catalogue limit.
    pub embedding_weight: f32,
    /// Titles the ANN index is asked for, beyond the profile's own.
    pub embedding_candidates: usize,
    /// Weight of global popularity next to the personal score (0: it added nothing).
    pub popularity_weight: f32,
    /// Titles scoring below this share of the best title's score are left out. EASE gives
    /// almost every title some weight; the faint tail is noise, better left to rows below
    /// (too high a share starts to cut recall).
    pub min_relative_score: f32,
    /// Row title for a profile with no history, whose row falls back to popularity (what is
    /// popular now when `trending_weight` is set).
    pub cold_start_title: String,
    /// Where the popular-now knobs left unset here (`trending_weight`, `new_release_boost`,
    /// `history_half_saturation`) come from: `"learned"` (the default), the setting training
    /// learned from how well the last fortnight's trending list predicted the fortnight after
    /// (`model::popular_now`, data before training's "now" only; all 0 when it learned none);
    /// `"off"`, 0. A number set here always wins.
    pub popular_now: PopularNowMode,
    /// Weight of what is popular now (the model's trending list for the profile's country,
    /// decayed recent interactions, 1.0 = the top title) next to the personal score. The
    /// personal score says what a profile likes; what it watches next is also what everyone
    /// is watching this week, which no item-to-item score knows (issue 16: a plain count of
    /// the last days' plays beat the personal score on the later-sitting protocol). Unset:
    /// see `popular_now`.
    pub trending_weight: Option<f32>,
    /// How much the personal score also gates popular-now: its part is multiplied by
    /// `1 + taste_weight × personal` (personal scaled to the best title), so what is popular
    /// now *within the profile's inferred taste* comes first.
    pub taste_weight: f32,
    /// Extra weight of a title released recently inside popular-now (new-release momentum):
    /// its part is multiplied by `1 + new_release_boost × newness`. Unset: see `popular_now`.
    pub new_release_boost: Option<f32>,
    /// Extra weight of a recent release inside the personal score: its part is multiplied by
    /// `1 + personal_new_release_boost × newness` (new titles within the profile's taste).
    pub personal_new_release_boost: f32,
    /// Newness halves every this many years of a title's age (release year against "now");
    /// titles without a year are not new.
    pub new_release_half_life_years: f64,
    /// A profile with n history entries trusts its personal score with weight n / (n + this):
    /// little history leans on popular-now. 0: full trust from the first title. Unset: see
    /// `popular_now`.
    pub history_half_saturation: Option<f32>,
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
            popular_now: PopularNowMode::Learned,
            trending_weight: None,
            taste_weight: 0.0,
            new_release_boost: None,
            personal_new_release_boost: 0.0,
            new_release_half_life_years: 1.0,
            history_half_saturation: None,
        }
    }
}

/// Where Top Picks' popular-now knobs come from when a row does not set them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PopularNowMode {
    /// The model's learned setting (`Model::popular_now`).
    #[default]
    Learned,
    /// 0: Top Picks as it was before popular-now.
    Off,
}

/// Top Picks: EASE weights (and co-occurrence similarity) summed over the profile's history,
/// the latest session weighing most, blended with the embedding score of the profile vector
/// folded in from that same decayed history (candidates from the ANN index). Without EASE
/// weights in the model, similarity (and embeddings) alone.
#[derive(Debug)]
pub struct Personalized(pub PersonalizedParams);

impl PersonalizedParams {
    /// From a row definition's `params` table (unknown keys are errors).
    pub fn from_table(params: toml::Table) -> Result<Self, super::SourceError> {
        super::params_from(params)
    }

    /// The popular-now knobs in effect with `model` for a profile with `entries` history
    /// entries: each set here, else the model's learned value for so much history
    /// (`popular_now = "learned"`, `Model::popular_now_for`) or 0 (`"off"`).
    pub fn popular_now_setting(&self, model: &Model, entries: usize) -> PopularNowSetting {
        let base = match self.popular_now {
            PopularNowMode::Learned => model.popular_now_for(entries),
            PopularNowMode::Off => PopularNowSetting::default(),
        };
        PopularNowSetting {
            trending_weight: self.trending_weight.unwrap_or(base.trending_weight),
            new_release_boost: self.new_release_boost.unwrap_or(base.new_release_boost),
            history_half_saturation: self
                .history_half_saturation
                .unwrap_or(base.history_half_saturation),
        }
    }

    /// Whether `other`'s accumulation over a history (`accumulate`) is the same as this one's:
    /// the popular-now knobs, the blend weights and the score floor only act after it, so rows
    /// that differ only there share it.
    fn same_accumulation(&self, other: &Self) -> bool {
        self.recency_half_life_minutes == other.recency_half_life_minutes
            && self.recency_floor == other.recency_floor
            && self.seen_weight == other.seen_weight
            && (self.embedding_weight > 0.0) == (other.embedding_weight > 0.0)
            && self.embedding_candidates == other.embedding_candidates
    }

    fn recency(&self) -> RecencyDecay {
        RecencyDecay::new(
            self.recency_half_life_minutes * 60_000.0,
            self.recency_floor,
        )
    }

    /// What a history entry says about the profile's taste before it fades with age.
    fn weight(&self, s: &WatchState) -> f64 {
        match s.thumbs {
            Thumbs::Down => 0.0,
            _ if s.is_watched() => s.affinity().max(self.seen_weight),
            _ => s.affinity(),
        }
    }

    /// (title, weight) for each history entry that says something positive.
    fn history_weights(&self, ctx: &SourceContext<'_>) -> Vec<(TitleIdx, f32)> {
        ctx.decayed_history(|s| self.weight(s), self.recency(), AgeFrom::LatestActivity)
    }

    /// The personal score of every title the history reaches that may still be placed, in
    /// 0–1-ish (each part scaled by its best eligible title), best first is up to the caller.
    /// `None` when the history reaches nothing (a cold start). Top Picks ranks by it; Because
    /// You Watched orders an anchor's neighbours by it, with the page's Top Picks params.
    ///
    /// The accumulation over the history (the costly part: EASE lists, neighbours, fold-in and
    /// the ANN search) does not depend on what may still be placed, so it is done once per
    /// page and shared through `ctx.personal`; only the scaling by the best eligible title is
    /// redone for each caller.
    pub fn scores(&self, ctx: &SourceContext<'_>) -> Option<Vec<(TitleIdx, f32)>> {
        let acc = ctx
            .personal
            .get_or_insert(self, ctx.model, || self.accumulate(ctx));
        let acc = acc.as_ref().as_ref()?;
        // Scale by the best title that can be shown: watched titles score high and are not.
        let mut touched = acc.touched.clone();
        touched.retain(|t| (ctx.eligible)(*t));
        let personal_end = touched.len();
        let entries = acc.positive_entries;
        let setting = self.popular_now_setting(ctx.model, entries);
        // What is popular now joins the candidates (nothing unless `trending_weight` > 0).
        let now = self.popular_now(ctx, entries);
        let n = ctx.catalog.len();
        let mut now_score = vec![0f32; if now.is_empty() { 0 } else { n }];
        if !now.is_empty() {
            let mut seen = vec![false; n];
            for &t in &acc.touched {
                seen[t as usize] = true;
            }
            for &(t, s) in &now {
                now_score[t as usize] = s;
                if !seen[t as usize] && (ctx.eligible)(t) {
                    seen[t as usize] = true;
                    touched.push(t);
                }
            }
        }
        let best = |acc: &[f32]| {
            touched
                .iter()
                .map(|t| acc[*t as usize])
                .fold(f32::MIN_POSITIVE, f32::max)
        };
        let (ease, similar, embedded) = (&acc.ease, &acc.similar, &acc.embedded);
        let (ease_max, similar_max, embedded_max) = (best(ease), best(similar), best(embedded));
        let (use_ease, use_embeddings) = (acc.use_ease, acc.use_embeddings);
        // Without EASE the similarity score is the personal score, as before EASE existed.
        let similarity_weight = if use_ease {
            self.similarity_weight
        } else {
            1.0
        };
        let year = now_year(ctx.now);
        let entries = entries as f32;
        let trust = if setting.history_half_saturation > 0.0 {
            entries / (entries + setting.history_half_saturation)
        } else {
            1.0
        };
        let mut personal: Vec<(TitleIdx, f32)> = touched
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                if i >= personal_end {
                    return (t, 0.0);
                }
                let from_ease = if use_ease {
                    ease[t as usize] / ease_max
                } else {
                    0.0
                };
                let from_embeddings = if use_embeddings {
                    self.embedding_weight * embedded[t as usize].max(0.0) / embedded_max
                } else {
                    0.0
                };
                let personal = from_ease
                    + similarity_weight * similar[t as usize] / similar_max
                    + from_embeddings;
                let new = if self.personal_new_release_boost > 0.0 {
                    1.0 + self.personal_new_release_boost * self.newness(ctx, t, year)
                } else {
                    1.0
                };
                (t, personal * new)
            })
            .collect();
        if now_score.is_empty() {
            for (t, s) in &mut personal {
                *s += self.popularity_weight * ctx.model.popularity(*t);
            }
            return Some(personal);
        }
        let best_personal = personal
            .iter()
            .map(|p| p.1)
            .fold(f32::MIN_POSITIVE, f32::max);
        for (t, s) in &mut personal {
            let taste = (*s / best_personal).max(0.0);
            let now = now_score[*t as usize] * (1.0 + self.taste_weight * taste);
            *s = trust * *s
                + setting.trending_weight * now
                + self.popularity_weight * ctx.model.popularity(*t);
        }
        Some(personal)
    }

    /// 1 for a title released in `year` (or later), halving every
    /// `new_release_half_life_years` before; 0 without a release year.
    fn newness(&self, ctx: &SourceContext<'_>, t: TitleIdx, year: i32) -> f32 {
        ctx.catalog.title(t).year.map_or(0.0, |y| {
            let age = (year - y).max(0) as f64;
            0.5f64.powf(age / self.new_release_half_life_years.max(1e-3)) as f32
        })
    }

    /// What is popular now for the profile, whose history has `entries` entries (0: none):
    /// the trending list of its country, each title's score raised by its newness
    /// (`new_release_boost`); empty when `trending_weight` is 0 (as set, or as learned:
    /// `popular_now_setting`).
    pub fn popular_now(&self, ctx: &SourceContext<'_>, entries: usize) -> Vec<(TitleIdx, f32)> {
        let setting = self.popular_now_setting(ctx.model, entries);
        if setting.trending_weight <= 0.0 {
            return Vec::new();
        }
        let year = now_year(ctx.now);
        ctx.model
            .trending(ctx.profile.country.as_ref())
            .iter()
            .map(|&(t, s)| {
                let boost = if setting.new_release_boost > 0.0 {
                    1.0 + setting.new_release_boost * self.newness(ctx, t, year)
                } else {
                    1.0
                };
                (t, s * boost)
            })
            .collect()
    }

    /// The history's raw sums per title (`None` when the history reaches nothing).
    fn accumulate(&self, ctx: &SourceContext<'_>) -> Option<Accumulated> {
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
        let use_embeddings = self.embedding_weight > 0.0 && ctx.model.has_embeddings();
        if use_embeddings && let Some(profile) = ctx.model.fold_in(&history) {
            // The profile's own titles come back from the index too (they match it best) and
            // are dropped later; ask for that many more so the fresh candidates stay whole.
            let wanted = self.embedding_candidates + history.len();
            let nearest = ctx.model.nearest_titles(&profile, wanted);
            add(&nearest, 1.0, &mut embedded);
        }
        if touched.is_empty() {
            return None;
        }
        Some(Accumulated {
            ease,
            similar,
            embedded,
            touched,
            use_ease,
            use_embeddings,
            positive_entries: history.iter().filter(|h| h.1 > 0.0).count(),
        })
    }
}

/// A history's raw Top Picks sums, dense by title, before scaling.
#[derive(Debug)]
pub struct Accumulated {
    ease: Vec<f32>,
    similar: Vec<f32>,
    embedded: Vec<f32>,
    /// Every title any list reached, in the order first reached.
    touched: Vec<TitleIdx>,
    use_ease: bool,
    use_embeddings: bool,
    /// History entries with a positive weight (how much the profile's own taste is trusted).
    positive_entries: usize,
}

/// One page's Top Picks accumulation, shared by the sources that rank by it (Top Picks, Because
/// You Watched). Keyed by the params it depends on and the model it was computed with, so a
/// row with other such params or another model version computes its own (the popular-now
/// backtest scores its whole grid on one accumulation per profile).
#[derive(Debug, Default)]
pub struct PersonalScoreCache {
    entry: RefCell<Option<CacheEntry>>,
}

#[derive(Debug)]
struct CacheEntry {
    params: PersonalizedParams,
    /// The model's address: identity within one page assembly, where every model is borrowed.
    model: *const Model,
    accumulated: Rc<Option<Accumulated>>,
}

impl PersonalScoreCache {
    fn get_or_insert(
        &self,
        params: &PersonalizedParams,
        model: &Model,
        compute: impl FnOnce() -> Option<Accumulated>,
    ) -> Rc<Option<Accumulated>> {
        if let Some(e) = self.entry.borrow().as_ref()
            && std::ptr::eq(e.model, model)
            && e.params.same_accumulation(params)
        {
            return e.accumulated.clone();
        }
        let accumulated = Rc::new(compute());
        *self.entry.borrow_mut() = Some(CacheEntry {
            params: params.clone(),
            model,
            accumulated: accumulated.clone(),
        });
        accumulated
    }
}

/// The calendar year of `now` (UTC).
pub fn now_year(now: crate::domain::Millis) -> i32 {
    chrono::DateTime::from_timestamp_millis(now).map_or(1970, |d| chrono::Datelike::year(&d))
}

impl CandidateSource for Personalized {
    fn cacheable(&self) -> bool {
        true
    }

    fn rows(&self, ctx: &SourceContext<'_>) -> Vec<SourcedRow> {
        match self.0.scores(ctx) {
            Some(scores) => {
                let best = scores.iter().map(|s| s.1).fold(0f32, f32::max);
                let floor = best * self.0.min_relative_score;
                SourcedRow::single(ctx.top(scores.into_iter().filter(|s| s.1 >= floor)))
            }
            None => {
                // No history reaches anything: the setting for the least history.
                let now = self.0.popular_now(ctx, 0);
                vec![SourcedRow {
                    key: None,
                    title: Some(self.0.cold_start_title.clone()),
                    anchor: None,
                    candidates: if now.is_empty() {
                        ctx.popular()
                    } else {
                        ctx.top(now)
                    },
                }]
            }
        }
    }
}
