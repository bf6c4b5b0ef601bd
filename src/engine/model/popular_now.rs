//! How much Top Picks weighs what is popular now, learned from the data before "now" only.
//!
//! Whether viewers who come back follow what everyone is watching this fortnight changes with
//! the period: early in a log "popular now" and "popular since the log began" are one list,
//! later new releases take over (README, "The next sitting"). A default tuned once on one
//! period cannot follow that, so training asks the question itself, as a **backtest at
//! T − h**: it trains what Top Picks needs on the interactions before T − h (with the clock at
//! T − h), takes the profiles that came back in [T − h, T) — by the later-sitting rule: at
//! least `min_train` interactions before, minus what falls within `same_sitting_minutes` of
//! their last one (the same sitting) and minus titles they already had — scores each setting
//! of a small grid through the served Top Picks source (`Personalized::rows`, the code pages
//! are filled with), and keeps the setting with the best NDCG@10. Nothing at or after T is
//! read.
//!
//! **Windows.** When fewer than `min_profiles` profiles come back in [T − h, T) (a quiet
//! service, or a log whose recent viewers are not in the data), popular-now stays off for
//! whole histories — their personal score is a strong answer, and only recent evidence
//! should move it — but the little-history setting (below) looks further back: the window
//! before, [T − 2h, T − h), is added with its own training at T − 2h, and so on up to
//! `max_windows`, since for a profile with one title an older answer is better than none.
//!
//! **Little history.** A profile with one or three titles is not a profile with fifty: how
//! far its personal score can be trusted against what is popular now is its own question
//! (issue 16: a setting learned on long histories left 1–5-title profiles behind a plain
//! count of recent plays). So each returning profile is scored again as if the service knew
//! only its first k titles (k in `little_history_titles`: what it knew after the profile's
//! first sittings), on the same later titles, and a second setting — its own trending weight,
//! new-release boost and trust in the personal score (`history_half_saturation`) — is chosen
//! on those; Top Picks uses it for profiles with at most the largest k titles
//! (`Model::popular_now_for`). The inner model was trained on these profiles' whole past;
//! that can only pull their truncated-away titles up, which are not scored (they are titles
//! already had), so it does not flatter the result.
//!
//! The inner training skips the embeddings (ALS and the ANN index: most of training's time at
//! scale) and content neighbours (Top Picks does not read them) unless `embeddings` is set, so
//! the backtest's Top Picks is EASE (or co-occurrence) plus popular-now: the popular-now part
//! is what is being weighed, and the embedding part is a quarter-weight blend that moves
//! NDCG@10 within noise on MovieLens (README).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::params::TrainParams;
use super::{Model, train::train_timed};
use crate::domain::{AccountId, DAY_MS, EventAction, Millis, Profile, ProfileId};
use crate::engine::catalog::{Catalog, TitleIdx};
use crate::engine::filters;
use crate::engine::history::{History, WatchState};
use crate::engine::segments::Segments;
use crate::engine::sources::personalized::{
    PersonalScoreCache, Personalized, PersonalizedParams, PopularNowMode,
};
use crate::engine::sources::{CandidateSource, SourceContext};
use crate::engine::training_set::{TrainingRow, TrainingSet};

/// The popular-now knobs of Top Picks that training learns (`PersonalizedParams` has their
/// meaning). All 0: popular-now off.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PopularNowSetting {
    pub trending_weight: f32,
    pub new_release_boost: f32,
    pub history_half_saturation: f32,
}

impl std::fmt::Display for PopularNowSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "trending_weight {}, new_release_boost {}, history_half_saturation {}",
            self.trending_weight, self.new_release_boost, self.history_half_saturation
        )
    }
}

/// The backtest's knobs (`TrainParams::popular_now`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BacktestParams {
    /// h: the backtest trains on what came before T − h and scores [T − h, T). A fortnight:
    /// long enough for a few hundred returning MovieLens profiles, short enough to be "now".
    /// 0 turns the backtest off (popular-now is then never learned).
    pub horizon_days: f64,
    /// With fewer than `min_profiles` returning profiles in the last window, the one before
    /// is added (its own training), and so on, up to this many windows of `horizon_days`:
    /// for the little-history setting only (whole histories are weighed on the last one).
    pub max_windows: usize,
    /// Profiles with fewer interactions before T − h are not scored (the later-sitting rule).
    pub min_train: usize,
    /// Interactions within this long of a profile's last one before T − h belong to that
    /// sitting and are not scored.
    pub same_sitting_minutes: f64,
    /// With fewer returning profiles the figures are noise: popular-now stays off.
    pub min_profiles: usize,
    /// At most this many returning profiles are scored (a deterministic sample), so that the
    /// backtest's cost does not grow with the audience.
    pub max_profiles: usize,
    /// The grid for whole histories: every combination is scored, in this order; a later
    /// setting must score strictly better to be chosen, so ties go to the first (put 0
    /// first: off wins ties).
    pub trending_weights: Vec<f32>,
    pub new_release_boosts: Vec<f32>,
    pub history_half_saturations: Vec<f32>,
    /// Little history: every returning profile is scored again with only its first k titles,
    /// for each k here; empty turns it off. Profiles with at most the largest k titles use
    /// the setting chosen on those.
    pub little_history_titles: Vec<usize>,
    /// The grid for little history (with `new_release_boosts`): trending weights, and the
    /// trust in the personal score (`history_half_saturation`).
    pub little_history_trending_weights: Vec<f32>,
    pub little_history_half_saturations: Vec<f32>,
    /// At most this many returning profiles are scored with little history (the grid is
    /// larger and each profile is scored once per k).
    pub max_little_history_profiles: usize,
    /// Row order: the kinds of row (sources, with their default params) whose first titles
    /// are weighed, in the order that wins ties; empty turns it off.
    pub row_sources: Vec<String>,
    /// How many rows the learned order places (a first screen shows about five).
    pub row_places: usize,
    /// Titles of each row a first screen shows: what a row is judged on.
    pub screen_titles: usize,
    /// Train embeddings in the backtest too (ALS and its index: slower, closer to serving).
    pub embeddings: bool,
}

impl Default for BacktestParams {
    fn default() -> Self {
        Self {
            horizon_days: 14.0,
            max_windows: 4,
            min_train: 5,
            same_sitting_minutes: 30.0,
            min_profiles: 20,
            max_profiles: 5_000,
            trending_weights: vec![0.0, 0.25, 0.5, 1.0, 2.0],
            new_release_boosts: vec![0.0, 1.0],
            history_half_saturations: vec![0.0],
            little_history_titles: vec![1, 3, 5],
            little_history_trending_weights: vec![0.0, 0.25, 0.5, 1.0, 2.0, 4.0],
            little_history_half_saturations: vec![0.0, 1.0, 3.0, 10.0],
            max_little_history_profiles: 1_000,
            row_sources: [
                "personalized",
                "because-you-watched",
                "trending",
                "new-releases",
                "top-genre",
                "popular",
            ]
            .map(String::from)
            .to_vec(),
            row_places: 6,
            screen_titles: 4,
            embeddings: false,
        }
    }
}

/// What the backtest found for profiles with little history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LittleHistory {
    /// Profiles with at most this many history entries use `chosen`.
    pub max_titles: usize,
    /// The truncations scored: each returning profile with only its first k titles.
    pub titles: Vec<usize>,
    /// Returning profiles scored (each once per k).
    pub profiles: usize,
    pub chosen: PopularNowSetting,
    /// Mean NDCG@10 over the truncated profiles of every grid setting, in grid order.
    pub grid: Vec<(PopularNowSetting, f64)>,
}

/// One place of the learned row order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowPlace {
    /// The row's source (`source` in `rows/*.toml`); a source that makes several rows
    /// (Because You Watched) may take several places, its rows in turn.
    pub source: String,
    /// Mean titles the returning profiles watched among the row's first titles, at this
    /// place: after the titles the rows above showed.
    pub hits: f64,
}

/// What the backtest found, kept in the artifact (and shown by `marquee train`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PopularNowBacktest {
    /// The start of the oldest window scored (T − h with one window).
    pub cutoff: Millis,
    /// T: the end of the scored windows (training's "now").
    pub end: Millis,
    /// Windows of `horizon_days` scored (more than one when the last had too few profiles).
    #[serde(default = "one")]
    pub windows: usize,
    /// Returning profiles scored.
    pub profiles: usize,
    /// The setting Top Picks uses when its params say `popular_now = "learned"`.
    pub chosen: PopularNowSetting,
    /// Mean NDCG@10 of every grid setting, in grid order (empty when too few profiles came
    /// back to score).
    pub grid: Vec<(PopularNowSetting, f64)>,
    /// The setting for profiles with little history; None when not learned (too few
    /// profiles, or turned off): they use `chosen`.
    #[serde(default)]
    pub little_history: Option<LittleHistory>,
    /// The row order that showed returning profiles the most titles they went on to watch on
    /// a first screen (`[page] rows = "learned"`), best first; empty when not learned.
    #[serde(default)]
    pub rows: Vec<RowPlace>,
}

fn one() -> usize {
    1
}

impl PopularNowBacktest {
    /// NDCG@10 of a setting, if it was scored.
    pub fn ndcg(&self, setting: &PopularNowSetting) -> Option<f64> {
        self.grid.iter().find(|(s, _)| s == setting).map(|g| g.1)
    }

    /// The setting for a profile with `entries` history entries.
    pub fn setting_for(&self, entries: usize) -> PopularNowSetting {
        match &self.little_history {
            Some(l) if entries <= l.max_titles => l.chosen,
            _ => self.chosen,
        }
    }

    /// One line for `marquee train` and the registry.
    pub fn describe(&self) -> String {
        let windows = if self.windows > 1 {
            format!(" in {} windows", self.windows)
        } else {
            String::new()
        };
        let mut line = if self.grid.is_empty() {
            format!(
                "popular-now: off ({} returning profiles in the backtest fortnight, too few)",
                self.profiles
            )
        } else {
            let off = self.ndcg(&PopularNowSetting::default());
            format!(
                "popular-now learned: {} (backtest over {} returning profiles: NDCG@10 {:.4}{})",
                self.chosen,
                self.profiles,
                self.ndcg(&self.chosen).unwrap_or(0.0),
                off.map_or(String::new(), |o| format!(" vs {o:.4} without")),
            )
        };
        if !self.rows.is_empty() {
            let places: Vec<String> = self
                .rows
                .iter()
                .map(|r| format!("{} {:.3}", r.source, r.hits))
                .collect();
            line.push_str(&format!("; rows: {}", places.join(", ")));
        }
        if let Some(l) = &self.little_history {
            let score = |s: &PopularNowSetting| l.grid.iter().find(|g| g.0 == *s).map(|g| g.1);
            line.push_str(&format!(
                "; up to {} titles: {} (first {:?} titles of {} profiles{windows}: NDCG@10 {:.4} \
                 vs {:.4} without, {:.4} with the setting above)",
                l.max_titles,
                l.chosen,
                l.titles,
                l.profiles,
                score(&l.chosen).unwrap_or(0.0),
                score(&PopularNowSetting::default()).unwrap_or(0.0),
                score(&self.chosen).unwrap_or(0.0),
            ));
        }
        line
    }
}

/// Every combination of the lists, in order, without repeats; a setting without trending
/// weight is "off" whatever else it says (boosts and trust only act through the trending
/// part).
fn combinations(trending: &[f32], boosts: &[f32], trust: &[f32]) -> Vec<PopularNowSetting> {
    let or_zero = |v: &[f32]| if v.is_empty() { vec![0.0] } else { v.to_vec() };
    let mut out = Vec::new();
    for &trending_weight in &or_zero(trending) {
        for &new_release_boost in &or_zero(boosts) {
            for &history_half_saturation in &or_zero(trust) {
                let s = if trending_weight <= 0.0 {
                    PopularNowSetting::default()
                } else {
                    PopularNowSetting {
                        trending_weight,
                        new_release_boost,
                        history_half_saturation,
                    }
                };
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
    }
    out
}

/// The whole-history grid of `params`, in order.
fn grid(params: &BacktestParams) -> Vec<PopularNowSetting> {
    combinations(
        &params.trending_weights,
        &params.new_release_boosts,
        &params.history_half_saturations,
    )
}

/// The little-history grid of `params`, in order; it always holds the whole-history grid's
/// settings too, so the choice can only differ where little history scores better.
fn little_grid(params: &BacktestParams) -> Vec<PopularNowSetting> {
    let mut out = combinations(
        &params.little_history_trending_weights,
        &params.new_release_boosts,
        &params.little_history_half_saturations,
    );
    for s in grid(params) {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// A profile that came back in the scored window.
struct Returning<'a> {
    profile: u32,
    /// Its rows before the window, oldest first.
    before: Vec<&'a TrainingRow>,
    later: HashSet<TitleIdx>,
}

/// The later-sitting rule at `cutoff` over rows before `end` (rows at or after `end` are
/// never looked at).
fn returning<'a>(
    data: &'a TrainingSet,
    cutoff: Millis,
    end: Millis,
    params: &BacktestParams,
) -> Vec<Returning<'a>> {
    // Only profiles active in the window can come back: group just their rows (at scale most
    // profiles are not, and a list per profile would cost more than the backtest).
    let mut active = vec![false; data.profiles()];
    for r in data.rows().iter().filter(|r| r.at >= cutoff && r.at < end) {
        active[r.profile as usize] = true;
    }
    let mut by_profile: Vec<Vec<&TrainingRow>> = vec![Vec::new(); data.profiles()];
    for r in data.rows().iter().filter(|r| r.at < end) {
        if active[r.profile as usize] {
            by_profile[r.profile as usize].push(r);
        }
    }
    let same_sitting = (params.same_sitting_minutes * 60_000.0) as Millis;
    let mut out = Vec::new();
    for (p, rows) in by_profile.into_iter().enumerate() {
        let mut before: Vec<&TrainingRow> =
            rows.iter().copied().filter(|r| r.at < cutoff).collect();
        if before.len() < params.min_train.max(1) {
            continue;
        }
        // Oldest first, so that "the first k titles" is well defined.
        before.sort_by_key(|r| (r.at, r.title));
        let last = before.iter().map(|r| r.at).max().unwrap_or(cutoff);
        let had: HashSet<TitleIdx> = before.iter().map(|r| r.title).collect();
        let later: HashSet<TitleIdx> = rows
            .iter()
            .filter(|r| r.at >= cutoff && r.at - last > same_sitting && !had.contains(&r.title))
            .map(|r| r.title)
            .collect();
        if !later.is_empty() {
            out.push(Returning {
                profile: p as u32,
                before,
                later,
            });
        }
    }
    out
}

/// A deterministic sample of at most `max` units: those whose scrambled profile number is
/// smallest (the same profiles whatever else changes), in profile order.
fn sample<T>(mut units: Vec<T>, max: usize, profile: impl Fn(&T) -> u32) -> Vec<T> {
    if units.len() > max {
        let scramble = |p: u32| (p as u64 ^ 0x9e37_79b9).wrapping_mul(0xff51_afd7_ed55_8ccd);
        units.sort_by_key(|u| scramble(profile(u)));
        units.truncate(max);
        units.sort_by_key(|u| profile(u));
    }
    units
}

/// Binary-gain NDCG@10 of one ranking.
fn ndcg_10(ranking: &[TitleIdx], truth: &HashSet<TitleIdx>) -> f64 {
    let gain = |r: usize| 1.0 / ((r + 2) as f64).log2();
    let dcg: f64 = ranking
        .iter()
        .take(10)
        .enumerate()
        .filter(|(_, t)| truth.contains(t))
        .map(|(r, _)| gain(r))
        .sum();
    let ideal: f64 = (0..truth.len().min(10)).map(gain).sum();
    if ideal > 0.0 { dcg / ideal } else { 0.0 }
}

/// The profile of a returning unit and its history made of `rows` (its past, or the first
/// titles of it).
fn backtest_profile(
    catalog: &Catalog,
    data: &TrainingSet,
    unit: &Returning<'_>,
    rows: &[&TrainingRow],
) -> Option<(Profile, History)> {
    let history = History::new(rows.iter().map(|r| {
        // The training set keeps a row's affinity, not its watch state: every row is read
        // as a finished title, which is what the served weight makes of a rated or
        // finished one (`seen_weight`); exact for MovieLens, where every row is a rating.
        let mut s = WatchState::new(catalog.title(r.title).id.clone());
        s.apply(EventAction::Complete, r.at);
        s
    }));
    let id = ProfileId::parse(&format!("backtest-{}", unit.profile)).ok()?;
    let account_id = AccountId::parse("backtest").ok()?;
    // The country of the profile's latest activity (of its whole past: where it watches).
    let latest = unit.before.iter().max_by_key(|r| r.at);
    let profile = Profile {
        id,
        account_id,
        name: String::new(),
        is_kids: false,
        maturity_limit: None,
        country: latest.and_then(|r| data.country(r)).cloned(),
        onboarding_genres: Vec::new(),
    };
    Some((profile, history))
}

/// Adds, for each setting, the NDCG@10 of the unit's Top Picks under it, its history being
/// `rows` (the unit's past, or the first titles of it), ranked by `model` at `at`.
#[allow(clippy::too_many_arguments)]
fn score_unit(
    catalog: &Catalog,
    data: &TrainingSet,
    model: &Model,
    at: Millis,
    unit: &Returning<'_>,
    rows: &[&TrainingRow],
    settings: &[PopularNowSetting],
    sums: &mut [f64],
) {
    let Some((profile, history)) = backtest_profile(catalog, data, unit, rows) else {
        return;
    };
    let allowed =
        |t: TitleIdx| filters::allowed(&profile, &history, catalog.title(t), false).is_ok();
    // One accumulation per history, shared by every setting (they differ only in
    // popular-now, which is applied after it).
    let personal = PersonalScoreCache::default();
    // Top Picks alone asks for no segment list.
    let segments = Segments::default();
    for (k, setting) in settings.iter().enumerate() {
        let top_picks = PersonalizedParams {
            popular_now: PopularNowMode::Off,
            trending_weight: Some(setting.trending_weight),
            new_release_boost: Some(setting.new_release_boost),
            history_half_saturation: Some(setting.history_half_saturation),
            ..PersonalizedParams::default()
        };
        let ctx = SourceContext {
            catalog,
            model,
            profile: &profile,
            history: &history,
            now: at,
            eligible: &allowed,
            pool: 10,
            top_picks: &top_picks,
            personal: &personal,
            live_trending: None,
            segments: &segments,
        };
        let ranking: Vec<TitleIdx> = Personalized(top_picks.clone())
            .rows(&ctx)
            .into_iter()
            .next()
            .map(|row| row.candidates.into_iter().map(|c| c.title).collect())
            .unwrap_or_default();
        sums[k] += ndcg_10(&ranking, &unit.later);
    }
}

/// One unit's rows of every kind, as the backtest's page would source them: per kind (index
/// into `BacktestParams::row_sources`), its rows' titles best first.
struct UnitRows<'a> {
    rows: Vec<Vec<Vec<TitleIdx>>>,
    later: &'a HashSet<TitleIdx>,
}

/// Sources every kind of row for `unit` (default params; Top Picks and the rows ordered by
/// its score with `setting`), ranked by `model` at `at`.
#[allow(clippy::too_many_arguments)]
fn unit_rows<'a>(
    catalog: &Catalog,
    data: &TrainingSet,
    model: &Model,
    at: Millis,
    unit: &'a Returning<'_>,
    sources: &[Box<dyn CandidateSource>],
    setting: PopularNowSetting,
    segments: &Segments,
) -> UnitRows<'a> {
    let Some((profile, history)) = backtest_profile(catalog, data, unit, &unit.before) else {
        return UnitRows {
            rows: Vec::new(),
            later: &unit.later,
        };
    };
    let allowed =
        |t: TitleIdx| filters::allowed(&profile, &history, catalog.title(t), false).is_ok();
    let top_picks = PersonalizedParams {
        popular_now: PopularNowMode::Off,
        trending_weight: Some(setting.trending_weight),
        new_release_boost: Some(setting.new_release_boost),
        history_half_saturation: Some(setting.history_half_saturation),
        ..PersonalizedParams::default()
    };
    let personal = PersonalScoreCache::default();
    let ctx = SourceContext {
        catalog,
        model,
        profile: &profile,
        history: &history,
        now: at,
        eligible: &allowed,
        pool: 40,
        top_picks: &top_picks,
        personal: &personal,
        live_trending: None,
        segments,
    };
    let rows = sources
        .iter()
        .map(|source| {
            source
                .rows(&ctx)
                .into_iter()
                .filter(|row| {
                    row.anchor
                        .is_none_or(|a| filters::suitable(&profile, catalog.title(a)).is_ok())
                })
                .map(|row| row.candidates.into_iter().map(|c| c.title).collect())
                .collect()
        })
        .collect();
    UnitRows {
        rows,
        later: &unit.later,
    }
}

/// The row order, greedily: at each place, the kind whose next row's first `screen` titles
/// not shown above held the most titles the profiles watched later, on average (ties to the
/// earlier kind).
fn learn_row_order(
    units: &[UnitRows<'_>],
    names: &[String],
    places: usize,
    screen: usize,
) -> Vec<RowPlace> {
    let mut next = vec![vec![0usize; names.len()]; units.len()];
    let mut shown: Vec<HashSet<TitleIdx>> = vec![HashSet::new(); units.len()];
    let first = |u: &UnitRows<'_>, kind: usize, row: usize, shown: &HashSet<TitleIdx>| {
        u.rows
            .get(kind)
            .and_then(|rows| rows.get(row))
            .map(|titles| {
                titles
                    .iter()
                    .filter(|t| !shown.contains(t))
                    .take(screen)
                    .copied()
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let mut order = Vec::new();
    for _ in 0..places {
        let mut best: Option<(usize, f64)> = None;
        for kind in 0..names.len() {
            let (mut hits, mut any) = (0usize, false);
            for ((unit, next), shown) in units.iter().zip(&next).zip(&shown) {
                let titles = first(unit, kind, next[kind], shown);
                any |= !titles.is_empty();
                hits += titles.iter().filter(|t| unit.later.contains(t)).count();
            }
            let mean = hits as f64 / units.len().max(1) as f64;
            if any && best.is_none_or(|b| mean > b.1 + 1e-12) {
                best = Some((kind, mean));
            }
        }
        let Some((kind, hits)) = best else {
            break;
        };
        for (u, unit) in units.iter().enumerate() {
            let titles = first(unit, kind, next[u][kind], &shown[u]);
            shown[u].extend(titles);
            next[u][kind] += 1;
        }
        order.push(RowPlace {
            source: names[kind].clone(),
            hits,
        });
    }
    order
}

/// The grid's means from its sums over `n` rankings, and the best setting (ties to the
/// first).
fn choose(
    settings: Vec<PopularNowSetting>,
    sums: Vec<f64>,
    n: usize,
) -> (PopularNowSetting, Vec<(PopularNowSetting, f64)>) {
    let grid: Vec<(PopularNowSetting, f64)> = settings
        .into_iter()
        .zip(sums)
        .map(|(s, sum)| (s, sum / n.max(1) as f64))
        .collect();
    let mut chosen = grid[0];
    for g in &grid[1..] {
        if g.1 > chosen.1 + 1e-12 {
            chosen = *g;
        }
    }
    (chosen.0, grid)
}

/// Runs the backtest for a model trained with the clock at `now` (see the module docs).
/// `None` when it is turned off or the log is too short to hold a fortnight before `now`.
pub fn backtest(
    catalog: &Catalog,
    data: &TrainingSet,
    now: Millis,
    params: &TrainParams,
) -> Option<PopularNowBacktest> {
    let bt = &params.popular_now;
    if bt.horizon_days <= 0.0 || data.is_empty() {
        return None;
    }
    let horizon = (bt.horizon_days * DAY_MS as f64) as Millis;
    // Windows newest first, until enough profiles came back.
    let mut windows: Vec<(Millis, Vec<Returning<'_>>)> = Vec::new();
    let mut found = 0;
    for w in 0..bt.max_windows.max(1) as Millis {
        let end = now - w * horizon;
        let cutoff = end - horizon;
        let units = returning(data, cutoff, end, bt);
        found += units.len();
        windows.push((cutoff, units));
        if found >= bt.min_profiles.max(1) {
            break;
        }
    }
    let oldest = windows.last().map_or(now - horizon, |w| w.0);
    if found < bt.min_profiles.max(1) {
        return Some(PopularNowBacktest {
            cutoff: oldest,
            end: now,
            windows: windows.len(),
            profiles: found,
            chosen: PopularNowSetting::default(),
            grid: Vec::new(),
            little_history: None,
            rows: Vec::new(),
        });
    }
    // Whole histories are weighed on the last window alone: their personal score is a
    // strong answer already, and only recent evidence should move it (measured: with older
    // windows too, `marquee eval`'s same-sitting Top Picks fell from 0.246 to 0.178 NDCG@10,
    // README). Little history has no such answer, and an older one beats none.
    let last_window = windows.first().map_or(0, |w| w.1.len());
    let whole = last_window >= bt.min_profiles.max(1);
    // The samples: a profile may come back in several windows, each a unit of its own.
    let mut all: Vec<(usize, Returning<'_>)> = Vec::new();
    for (w, (_, units)) in windows.iter_mut().enumerate() {
        all.extend(std::mem::take(units).into_iter().map(|u| (w, u)));
    }
    let key = |u: &(usize, Returning<'_>)| u.1.profile.wrapping_add(u.0 as u32 * 0x8000_0000);
    let all = sample(all, bt.max_profiles, key);
    let little: HashSet<(usize, u32)> = sample(
        all.iter().map(|u| (u.0, u.1.profile)).collect(),
        bt.max_little_history_profiles,
        |u: &(usize, u32)| u.1.wrapping_add(u.0 as u32 * 0x8000_0000),
    )
    .into_iter()
    .collect();
    let mut ks: Vec<usize> = bt
        .little_history_titles
        .iter()
        .copied()
        .filter(|k| *k > 0)
        .collect();
    ks.sort_unstable();
    ks.dedup();
    let settings = grid(bt);
    let little_settings = little_grid(bt);
    let mut sums = vec![0f64; settings.len()];
    let mut little_sums = vec![0f64; little_settings.len()];
    let mut little_rankings = 0;
    let inner = TrainParams {
        als: super::als::AlsParams {
            factors: if bt.embeddings { params.als.factors } else { 0 },
            ..params.als.clone()
        },
        // Top Picks does not read content neighbours.
        content: super::content::ContentParams {
            neighbors: 0,
            ..params.content.clone()
        },
        popular_now: BacktestParams {
            horizon_days: 0.0,
            ..bt.clone()
        },
        ..params.clone()
    };
    // Each window's inner model, kept for the row order (which needs the chosen setting).
    let mut models: Vec<Option<Model>> = Vec::new();
    for (w, (cutoff, _)) in windows.iter().enumerate() {
        let units: Vec<&Returning<'_>> = all.iter().filter(|u| u.0 == w).map(|u| &u.1).collect();
        if units.is_empty() {
            models.push(None);
            continue;
        }
        let before = data.before(*cutoff);
        let (artifact, _) = train_timed(catalog, &before, &[], *cutoff, &inner);
        let model = Model::load("popular-now-backtest", &artifact, catalog);
        for unit in units {
            if whole && w == 0 {
                score_unit(
                    catalog,
                    data,
                    &model,
                    *cutoff,
                    unit,
                    &unit.before,
                    &settings,
                    &mut sums,
                );
            }
            if !little.contains(&(w, unit.profile)) {
                continue;
            }
            for &k in &ks {
                let first = &unit.before[..k.min(unit.before.len())];
                score_unit(
                    catalog,
                    data,
                    &model,
                    *cutoff,
                    unit,
                    first,
                    &little_settings,
                    &mut little_sums,
                );
                little_rankings += 1;
            }
        }
        models.push(Some(model));
    }
    let scored = all.iter().filter(|u| u.0 == 0).count();
    let (chosen, grid, rows) = if whole {
        let (chosen, grid) = choose(settings, sums, scored);
        let rows = row_order(catalog, data, bt, &windows[..1], &all, &models, chosen);
        (chosen, grid, rows)
    } else {
        (PopularNowSetting::default(), Vec::new(), Vec::new())
    };
    let little_history = (!ks.is_empty() && little_rankings > 0).then(|| {
        let (chosen, grid) = choose(little_settings, little_sums, little_rankings);
        LittleHistory {
            max_titles: ks.last().copied().unwrap_or(0),
            titles: ks.clone(),
            profiles: little.len(),
            chosen,
            grid,
        }
    });
    Some(PopularNowBacktest {
        cutoff: oldest,
        end: now,
        windows: windows.len(),
        profiles: if whole { scored } else { last_window },
        chosen,
        grid,
        little_history,
        rows,
    })
}

/// The learned row order over the whole-history units (`learn_row_order`), with Top Picks
/// weighing popular-now as chosen.
fn row_order(
    catalog: &Catalog,
    data: &TrainingSet,
    bt: &BacktestParams,
    windows: &[(Millis, Vec<Returning<'_>>)],
    all: &[(usize, Returning<'_>)],
    models: &[Option<Model>],
    chosen: PopularNowSetting,
) -> Vec<RowPlace> {
    let registry = crate::engine::sources::SourceRegistry::builtin();
    // Sources this build does not know are left out of the order.
    let (names, sources): (Vec<String>, Vec<Box<dyn CandidateSource>>) = bt
        .row_sources
        .iter()
        .filter_map(|name| Some((name.clone(), registry.build(name, toml::Table::new()).ok()?)))
        .unzip();
    if names.is_empty() || bt.row_places == 0 {
        return Vec::new();
    }
    let mut units = Vec::new();
    for (w, (cutoff, _)) in windows.iter().enumerate() {
        let Some(Some(model)) = models.get(w) else {
            continue;
        };
        // Segment lists are per audience, not per profile: one set serves every unit.
        let segments = Segments::default();
        for (_, unit) in all.iter().filter(|u| u.0 == w) {
            units.push(unit_rows(
                catalog, data, model, *cutoff, unit, &sources, chosen, &segments,
            ));
        }
    }
    learn_row_order(&units, &names, bt.row_places, bt.screen_titles.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Country, Title, TitleId};
    use crate::engine::model::Interaction;

    const HOUR: Millis = 3_600_000;
    const MINUTE: Millis = 60_000;

    /// Titles 1–40 from 1990 (four taste groups of ten), 41–50 from 1998 (new).
    fn catalog() -> Catalog {
        Catalog::new(
            (1..=50)
                .map(|i| {
                    let mut t =
                        Title::new(TitleId::parse(&i.to_string()).unwrap(), format!("t{i}"));
                    t.year = Some(if i > 40 { 1998 } else { 1990 });
                    t
                })
                .collect(),
        )
    }

    /// Profile `p`'s history two months before T − h: 8 of its taste group's 10 titles (the
    /// group is `p % 4`). Returns the two titles of the group it has not watched yet.
    fn group_history(log: &mut Vec<Interaction>, p: usize) -> [usize; 2] {
        let group = p % 4;
        let own: Vec<usize> = (0..10).map(|k| group * 10 + 1 + k).collect();
        let skip = [own[p % 10], own[(p + 3) % 10]];
        let start = CUTOFF - 60 * DAY_MS + (p as Millis) * HOUR;
        for (k, t) in own.iter().filter(|t| !skip.contains(t)).enumerate() {
            log.push(ix(p, *t, start + k as Millis * MINUTE));
        }
        skip
    }

    fn ix(p: usize, t: usize, at: Millis) -> Interaction {
        Interaction {
            profile: ProfileId::parse(&format!("p{p}")).unwrap(),
            title: TitleId::parse(&t.to_string()).unwrap(),
            affinity: 1.0,
            at,
            country: Some(Country::parse("US").unwrap()),
        }
    }

    /// T = 1998-03-01, and T − h: the backtest scores the fortnight between.
    const NOW: Millis = 888_710_400_000;
    const CUTOFF: Millis = NOW - 14 * DAY_MS;

    /// 120 profiles, each of one taste group: two months before T − h each watches 8 of its
    /// group's 10 titles. In the fortnight before T − h each watches one more title, and in a
    /// later sitting after T − h two more. Stationary: those are its group's remaining titles
    /// (the same taste as ever). Shifting: new titles, the same few everyone watches (the
    /// recent fortnight is dominated by them, and so is the fortnight after).
    fn log(shifting: bool) -> Vec<Interaction> {
        let mut log = Vec::new();
        for p in 0..120 {
            let skip = group_history(&mut log, p);
            let recent = CUTOFF - 12 * DAY_MS + (p as Millis) * HOUR;
            let back = CUTOFF + DAY_MS + (p as Millis % 12) * DAY_MS;
            let (then, later) = if shifting {
                let first = 41 + p % 3;
                let rest: Vec<usize> = (41..=43).filter(|t| *t != first).collect();
                (first, rest)
            } else {
                (skip[0], vec![skip[1]])
            };
            log.push(ix(p, then, recent));
            for (k, t) in later.into_iter().enumerate() {
                log.push(ix(p, t, back + k as Millis * MINUTE));
            }
        }
        log
    }

    fn run(log: &[Interaction]) -> PopularNowBacktest {
        let catalog = catalog();
        let data = TrainingSet::from_interactions(&catalog, log);
        backtest(&catalog, &data, NOW, &TrainParams::default()).unwrap()
    }

    #[test]
    fn learns_popular_now_when_the_last_fortnight_is_dominated_by_new_titles() {
        let b = run(&log(true));
        assert_eq!(b.profiles, 120);
        assert_eq!((b.cutoff, b.end), (CUTOFF, NOW));
        assert!(b.chosen.trending_weight > 0.0, "{b:?}");
        let off = b.ndcg(&PopularNowSetting::default()).unwrap();
        assert!(b.ndcg(&b.chosen).unwrap() > off + 0.2, "{b:?}");
        assert!(
            b.describe().starts_with("popular-now learned"),
            "{}",
            b.describe()
        );
    }

    #[test]
    fn learns_a_setting_for_little_history_from_the_first_titles() {
        let b = run(&log(true));
        let l = b
            .little_history
            .clone()
            .expect("learned for little history");
        assert_eq!(
            (l.max_titles, l.titles.clone(), l.profiles),
            (5, vec![1, 3, 5], 120)
        );
        assert!(l.chosen.trending_weight > 0.0, "{l:?}");
        let score = |s: &PopularNowSetting| l.grid.iter().find(|g| g.0 == *s).unwrap().1;
        assert!(
            score(&l.chosen) > score(&PopularNowSetting::default()) + 0.2,
            "{l:?}"
        );
        // The little-history grid holds the whole-history one, so it can only do better.
        assert!(score(&l.chosen) >= score(&b.chosen), "{l:?}");
        assert_eq!(b.setting_for(0), l.chosen);
        assert_eq!(b.setting_for(5), l.chosen);
        assert_eq!(b.setting_for(6), b.chosen);
        assert!(b.describe().contains("up to 5 titles"), "{}", b.describe());
        // Turned off: no little-history setting, every profile gets the whole-history one.
        let catalog = catalog();
        let data = TrainingSet::from_interactions(&catalog, &log(true));
        let mut params = TrainParams::default();
        params.popular_now.little_history_titles.clear();
        let without = backtest(&catalog, &data, NOW, &params).unwrap();
        assert_eq!(without.little_history, None);
        assert_eq!((without.chosen, &without.grid), (b.chosen, &b.grid));
        assert_eq!(without.setting_for(1), b.chosen);
    }

    /// How much a setting weighs popular-now against the personal score of a profile with
    /// `n` titles (the ranking is the same under any scaling of the two).
    fn weight_at(s: &PopularNowSetting, n: f32) -> f32 {
        s.trending_weight * (n + s.history_half_saturation) / n
    }

    #[test]
    fn a_short_history_leans_more_on_popular_now_than_a_long_one() {
        // Each profile's taste is clear from its eight group titles, and later it watches
        // the last title of its group and one of the new titles everyone has started on:
        // with the whole history the group title is certain and popular-now only has to
        // place the new one second; from the first title alone the group title is one of
        // nine, and popular-now should weigh more.
        let mut log = Vec::new();
        for p in 0..120 {
            let skip = group_history(&mut log, p);
            let recent = CUTOFF - 12 * DAY_MS + (p as Millis) * HOUR;
            log.push(ix(p, skip[0], recent));
            log.push(ix(p, 41 + p % 3, recent + MINUTE));
            let back = CUTOFF + DAY_MS + (p as Millis % 12) * DAY_MS;
            log.push(ix(p, skip[1], back));
            log.push(ix(p, 41 + (p + 1) % 3, back + MINUTE));
        }
        let b = run(&log);
        let l = b.little_history.clone().unwrap();
        assert!(
            weight_at(&l.chosen, 1.0) > weight_at(&b.chosen, 1.0),
            "{}",
            b.describe()
        );
    }

    #[test]
    fn looks_back_further_when_the_last_window_is_quiet() {
        // The same log a fortnight earlier: nobody came back in the last fortnight.
        let mut log = log(true);
        for i in &mut log {
            i.at -= 14 * DAY_MS;
        }
        let catalog = catalog();
        let data = TrainingSet::from_interactions(&catalog, &log);
        let mut one = TrainParams::default();
        one.popular_now.max_windows = 1;
        let b = backtest(&catalog, &data, NOW, &one).unwrap();
        assert_eq!((b.windows, b.profiles), (1, 0));
        assert_eq!(b.chosen, PopularNowSetting::default());
        // Whole histories keep popular-now off; little history learns from the fortnight
        // before.
        let b = run(&log);
        assert_eq!((b.windows, b.profiles), (2, 0));
        assert_eq!((b.cutoff, b.end), (CUTOFF - 14 * DAY_MS, NOW));
        assert_eq!(b.chosen, PopularNowSetting::default());
        assert!(b.grid.is_empty() && b.rows.is_empty());
        let l = b.little_history.clone().unwrap();
        assert_eq!(l.profiles, 120);
        assert!(l.chosen.trending_weight > 0.0, "{l:?}");
        assert_eq!(b.setting_for(1), l.chosen);
        assert_eq!(b.setting_for(6), PopularNowSetting::default());
        assert!(b.describe().contains("in 2 windows"), "{}", b.describe());
    }

    #[test]
    fn keeps_popular_now_off_when_popularity_is_stationary() {
        let b = run(&log(false));
        assert_eq!(b.profiles, 120);
        assert_eq!(b.chosen, PopularNowSetting::default(), "{b:?}");
        assert!(b.ndcg(&b.chosen).unwrap() > 0.3, "{b:?}");
    }

    #[test]
    fn never_reads_rows_at_or_after_now() {
        // From T on everyone watches the new titles: had the backtest looked, a stationary
        // past would teach it popular-now (or at least change its figures).
        let mut log = log(false);
        let past = run(&log);
        for p in 0..120 {
            log.push(ix(p, 41 + p % 2, NOW));
            for t in 43..=50 {
                log.push(ix(p, t, NOW + (t as Millis) * HOUR));
            }
        }
        assert_eq!(run(&log), past);
        // The same rows a moment earlier do change what it sees.
        let mut earlier = log.clone();
        for i in &mut earlier {
            if i.at >= NOW {
                i.at -= 2 * DAY_MS;
            }
        }
        assert_ne!(run(&earlier).grid, past.grid);
    }

    #[test]
    fn too_few_returning_profiles_keep_popular_now_off() {
        let few: Vec<Interaction> = log(true)
            .into_iter()
            .filter(|i| i.at < CUTOFF || i.profile.as_str().len() == 2) // p0–p9 come back
            .collect();
        let catalog = catalog();
        let data = TrainingSet::from_interactions(&catalog, &few);
        let mut one = TrainParams::default();
        one.popular_now.max_windows = 1;
        let b = backtest(&catalog, &data, NOW, &one).unwrap();
        assert_eq!((b.profiles, b.windows), (10, 1));
        assert_eq!(b.chosen, PopularNowSetting::default());
        assert!(b.grid.is_empty());
        assert_eq!(b.little_history, None);
        assert!(b.describe().contains("too few"), "{}", b.describe());
        // With more windows the fortnight before is added, where all 120 came back (their
        // first new title): enough to learn from for little history, not for whole ones.
        let b = run(&few);
        assert_eq!((b.profiles, b.windows), (10, 2));
        assert!(b.grid.is_empty());
        assert_eq!(b.little_history.map(|l| l.profiles), Some(130));
        let off = TrainParams {
            popular_now: BacktestParams {
                horizon_days: 0.0,
                ..BacktestParams::default()
            },
            ..TrainParams::default()
        };
        let data = TrainingSet::from_interactions(&catalog, &log(true));
        assert_eq!(backtest(&catalog, &data, NOW, &off), None);
    }

    #[test]
    fn the_same_sitting_and_titles_already_had_are_not_scored() {
        let catalog = catalog();
        let mut log: Vec<Interaction> = (1..=5).map(|t| ix(0, t, CUTOFF - HOUR)).collect();
        log.push(ix(0, 6, CUTOFF - 5 * MINUTE)); // the last before T − h
        log.push(ix(0, 7, CUTOFF + 10 * MINUTE)); // 15 min after it: the same sitting
        log.push(ix(0, 8, CUTOFF + DAY_MS)); // a later sitting
        log.push(ix(0, 9, NOW)); // at T: not seen
        log.push(ix(1, 9, CUTOFF + DAY_MS)); // too little history to be scored
        let data = TrainingSet::from_interactions(&catalog, &log);
        let units = returning(&data, CUTOFF, NOW, &BacktestParams::default());
        assert_eq!(units.len(), 1);
        assert_eq!(units[0].before.len(), 6);
        let eight = catalog.idx(&TitleId::parse("8").unwrap()).unwrap();
        assert_eq!(units[0].later, HashSet::from([eight]));
    }
}
