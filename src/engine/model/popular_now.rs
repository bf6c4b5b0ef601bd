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
//! read. With fewer than `min_profiles` returning profiles popular-now stays off.
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
    /// The grid: every combination is scored, in this order; a later setting must score
    /// strictly better to be chosen, so ties go to the first (put 0 first: off wins ties).
    pub trending_weights: Vec<f32>,
    pub new_release_boosts: Vec<f32>,
    pub history_half_saturations: Vec<f32>,
    /// Train embeddings in the backtest too (ALS and its index: slower, closer to serving).
    pub embeddings: bool,
}

impl Default for BacktestParams {
    fn default() -> Self {
        Self {
            horizon_days: 14.0,
            min_train: 5,
            same_sitting_minutes: 30.0,
            min_profiles: 20,
            max_profiles: 5_000,
            trending_weights: vec![0.0, 0.25, 0.5, 1.0, 2.0],
            new_release_boosts: vec![0.0, 1.0],
            history_half_saturations: vec![0.0],
            embeddings: false,
        }
    }
}

/// What the backtest found, kept in the artifact (and shown by `marquee train`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PopularNowBacktest {
    /// T − h: the backtest's training clock and the start of its scored window.
    pub cutoff: Millis,
    /// T: the end of the scored window (training's "now").
    pub end: Millis,
    /// Returning profiles scored.
    pub profiles: usize,
    /// The setting Top Picks uses when its params say `popular_now = "learned"`.
    pub chosen: PopularNowSetting,
    /// Mean NDCG@10 of every grid setting, in grid order (empty when too few profiles came
    /// back to score).
    pub grid: Vec<(PopularNowSetting, f64)>,
}

impl PopularNowBacktest {
    /// NDCG@10 of a setting, if it was scored.
    pub fn ndcg(&self, setting: &PopularNowSetting) -> Option<f64> {
        self.grid.iter().find(|(s, _)| s == setting).map(|g| g.1)
    }

    /// One line for `marquee train` and the registry.
    pub fn describe(&self) -> String {
        if self.grid.is_empty() {
            return format!(
                "popular-now: off ({} returning profiles in the backtest fortnight, too few)",
                self.profiles
            );
        }
        let off = self.ndcg(&PopularNowSetting::default());
        format!(
            "popular-now learned: {} (backtest over {} returning profiles: NDCG@10 {:.4}{})",
            self.chosen,
            self.profiles,
            self.ndcg(&self.chosen).unwrap_or(0.0),
            off.map_or(String::new(), |o| format!(" vs {o:.4} without")),
        )
    }
}

/// The grid of `params`, in order.
fn grid(params: &BacktestParams) -> Vec<PopularNowSetting> {
    let or_zero = |v: &[f32]| if v.is_empty() { vec![0.0] } else { v.to_vec() };
    let mut out = Vec::new();
    for &trending_weight in &or_zero(&params.trending_weights) {
        for &new_release_boost in &or_zero(&params.new_release_boosts) {
            for &history_half_saturation in &or_zero(&params.history_half_saturations) {
                let s = PopularNowSetting {
                    trending_weight,
                    new_release_boost,
                    history_half_saturation,
                };
                // Boosts and trust only act through the trending part: without it they are 0.
                let s = if trending_weight <= 0.0 {
                    PopularNowSetting::default()
                } else {
                    s
                };
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
    }
    out
}

/// A profile that came back in the scored window.
struct Returning<'a> {
    profile: u32,
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
        let before: Vec<&TrainingRow> = rows.iter().copied().filter(|r| r.at < cutoff).collect();
        if before.len() < params.min_train.max(1) {
            continue;
        }
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
    if out.len() > params.max_profiles {
        // A deterministic sample: the profiles whose scrambled number is smallest.
        let scramble = |p: u32| (p as u64 ^ 0x9e37_79b9).wrapping_mul(0xff51_afd7_ed55_8ccd);
        out.sort_by_key(|r| scramble(r.profile));
        out.truncate(params.max_profiles);
        out.sort_by_key(|r| r.profile);
    }
    out
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
    let end = now;
    let cutoff = end - (bt.horizon_days * DAY_MS as f64) as Millis;
    let units = returning(data, cutoff, end, bt);
    let off = |profiles| PopularNowBacktest {
        cutoff,
        end,
        profiles,
        chosen: PopularNowSetting::default(),
        grid: Vec::new(),
    };
    if units.len() < bt.min_profiles.max(1) {
        return Some(off(units.len()));
    }
    let before = data.before(cutoff);
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
    let (artifact, _) = train_timed(catalog, &before, &[], cutoff, &inner);
    let model = Model::load("popular-now-backtest", &artifact, catalog);
    let settings = grid(bt);
    let mut sums = vec![0f64; settings.len()];
    for unit in &units {
        let history = History::new(unit.before.iter().map(|r| {
            // The training set keeps a row's affinity, not its watch state: every row is read
            // as a finished title, which is what the served weight makes of a rated or
            // finished one (`seen_weight`); exact for MovieLens, where every row is a rating.
            let mut s = WatchState::new(catalog.title(r.title).id.clone());
            s.apply(EventAction::Complete, r.at);
            s
        }));
        let Ok(id) = ProfileId::parse(&format!("backtest-{}", unit.profile)) else {
            continue;
        };
        let Ok(account_id) = AccountId::parse("backtest") else {
            continue;
        };
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
        let allowed =
            |t: TitleIdx| filters::allowed(&profile, &history, catalog.title(t), false).is_ok();
        // One accumulation per profile, shared by every setting (they differ only in
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
                model: &model,
                profile: &profile,
                history: &history,
                now: cutoff,
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
    let grid: Vec<(PopularNowSetting, f64)> = settings
        .into_iter()
        .zip(sums)
        .map(|(s, sum)| (s, sum / units.len() as f64))
        .collect();
    let mut chosen = grid[0];
    for g in &grid[1..] {
        if g.1 > chosen.1 + 1e-12 {
            chosen = *g;
        }
    }
    Some(PopularNowBacktest {
        cutoff,
        end,
        profiles: units.len(),
        chosen: chosen.0,
        grid,
    })
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
            let group = p % 4;
            let own: Vec<usize> = (0..10).map(|k| group * 10 + 1 + k).collect();
            let skip = [own[p % 10], own[(p + 3) % 10]];
            let start = CUTOFF - 60 * DAY_MS + (p as Millis) * HOUR;
            for (k, t) in own.iter().filter(|t| !skip.contains(t)).enumerate() {
                log.push(ix(p, *t, start + k as Millis * MINUTE));
            }
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
        let b = run(&few);
        assert_eq!(b.profiles, 10);
        assert_eq!(b.chosen, PopularNowSetting::default());
        assert!(b.grid.is_empty());
        assert!(b.describe().contains("too few"), "{}", b.describe());
        let off = TrainParams {
            popular_now: BacktestParams {
                horizon_days: 0.0,
                ..BacktestParams::default()
            },
            ..TrainParams::default()
        };
        let catalog = catalog();
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
