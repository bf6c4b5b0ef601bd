//! Offline evaluation, protocol `later-sitting-rolling-v1`: what will a viewer watch when they
//! come back, rather than "finish this rating session" (the default protocol in `eval.rs`).
//!
//! - The whole log is cut at several instants T (a rolling origin): `Schedule::cutoffs`
//!   fortnightly over the last months of the log, every cutoff a separate training run with
//!   the clock at T; profiles are pooled across cutoffs (one profile may be scored at several
//!   cutoffs: each (cutoff, profile) is one *unit*).
//! - At a cutoff, TRAIN is everything before T. A profile with at least `min_train`
//!   interactions before T is scored on the titles it interacted with from T on (up to the
//!   window's end), minus everything within `same_sitting` of its last TRAIN interaction
//!   (the end of that sitting is not a later sitting) and minus titles it already has.
//! - TUNE applies the same rule inside the data before the first TEST cutoff: its cutoffs lie
//!   fortnightly before it and its windows end there, so tuning never sees TEST's period.
//! - `--cold-start K`: scored profiles keep only their first K TRAIN interactions (in training
//!   too), everyone else keeps theirs.
//! - Rankings are made by the served path (`model::train` at T, `page::assemble` at T) and by
//!   baselines on the same units: all-time popular, recent popularity over a window tuned on
//!   TUNE, EASE (the model's weights summed over the whole history, no recency) and implicit
//!   ALS (the model's embeddings, folded in with equal weights).
//! - "Page, … order (served)" ranks the titles a screen shows first: the first `SCREEN_PER_ROW` titles
//!   of each row in page order; single rows are scored on their own first titles, so at the
//!   same depth the page and each row are judged on the same number of titles.
//! - Paired bootstrap intervals resample profiles (all units of a profile together, since a
//!   profile's units at different cutoffs are not independent).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::domain::{Country, DAY_MS, Millis, TitleId};
use crate::engine::catalog::{TitleIdx, natural_cmp};
use crate::engine::history::History;
use crate::engine::model::{self, Model, TrainParams};
use crate::engine::page;
use crate::engine::rows::{PageDefinition, PageOverrides, RowOrder};
use crate::engine::sources::SourceRegistry;
use crate::ingest::movielens::{self, Dataset, InteractionRecord};
use crate::lab::eval::{DEPTH, EvalSet, Metrics};

pub const PROTOCOL: &str = "later-sitting-rolling-v1";

/// Titles of each row a first screen shows (a TV shows about four per row).
pub const SCREEN_PER_ROW: usize = 4;

/// Who is scored at a cutoff, and on what.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplitRule {
    /// Profiles with fewer TRAIN interactions are not scored (they still train the model).
    pub min_train: usize,
    /// Interactions within this long of a profile's last TRAIN interaction belong to that
    /// sitting and are not scored.
    pub same_sitting: Millis,
    /// Scored profiles keep only their first K TRAIN interactions.
    pub cold_start: Option<usize>,
}

impl Default for SplitRule {
    fn default() -> Self {
        Self {
            min_train: 5,
            same_sitting: 30 * 60_000,
            cold_start: None,
        }
    }
}

/// Where the cutoffs fall.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// TEST cutoffs, `spacing` apart, the last one `spacing` before the end of the log.
    pub test_cutoffs: usize,
    /// TUNE cutoffs, `spacing` apart before the first TEST cutoff.
    pub tune_cutoffs: usize,
    pub spacing: Millis,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            test_cutoffs: 8,
            tune_cutoffs: 6,
            spacing: 14 * DAY_MS,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Test,
    Tune,
}

impl Part {
    pub fn name(self) -> &'static str {
        match self {
            Part::Test => "TEST",
            Part::Tune => "TUNE",
        }
    }
}

impl Schedule {
    /// (cutoff T, end of the scored window, exclusive), oldest first, for a log whose newest
    /// interaction is at `last`.
    pub fn cutoffs(&self, last: Millis, part: Part) -> Vec<(Millis, Millis)> {
        let end = last + 1;
        let first_test = end - self.test_cutoffs as Millis * self.spacing;
        match part {
            Part::Test => (0..self.test_cutoffs as Millis)
                .map(|k| (first_test + k * self.spacing, end))
                .collect(),
            Part::Tune => (1..=self.tune_cutoffs as Millis)
                .rev()
                .map(|k| (first_test - k * self.spacing, first_test))
                .collect(),
        }
    }
}

/// One cutoff's data: what trains, and what each scored profile did later.
#[derive(Debug, Clone)]
pub struct CutoffSplit {
    pub cutoff: Millis,
    /// Interactions before the cutoff (scored profiles' cut to their first K with
    /// `cold_start`), grouped by profile, each profile's in time order.
    pub train: Vec<InteractionRecord>,
    /// The scored interactions, one per (profile, title), grouped by profile.
    pub test: Vec<InteractionRecord>,
}

fn by_time(a: &InteractionRecord, b: &InteractionRecord) -> std::cmp::Ordering {
    a.at.cmp(&b.at)
        .then_with(|| natural_cmp(a.item.as_str(), b.item.as_str()))
}

/// The split rule at one cutoff (see the module docs).
pub fn split_at(
    records: &[InteractionRecord],
    cutoff: Millis,
    end: Millis,
    rule: &SplitRule,
) -> CutoffSplit {
    let mut by_user: BTreeMap<&str, Vec<&InteractionRecord>> = BTreeMap::new();
    for r in records {
        by_user.entry(r.user.as_str()).or_default().push(r);
    }
    let mut users: Vec<(&str, Vec<&InteractionRecord>)> = by_user.into_iter().collect();
    users.sort_by(|a, b| natural_cmp(a.0, b.0).then_with(|| a.0.cmp(b.0)));
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (_, mut list) in users {
        list.sort_by(|a, b| by_time(a, b));
        let before: Vec<&InteractionRecord> =
            list.iter().copied().filter(|r| r.at < cutoff).collect();
        let mut later = Vec::new();
        if before.len() >= rule.min_train {
            let last = before.iter().map(|r| r.at).max().unwrap_or(cutoff);
            let mut seen: HashSet<&TitleId> = before.iter().map(|r| &r.item).collect();
            later = list
                .iter()
                .copied()
                .filter(|r| r.at >= cutoff && r.at < end && r.at - last > rule.same_sitting)
                .filter(|r| seen.insert(&r.item))
                .collect();
        }
        let keep = match rule.cold_start {
            Some(k) if !later.is_empty() => k.min(before.len()),
            _ => before.len(),
        };
        train.extend(before[..keep].iter().map(|r| (*r).clone()));
        test.extend(later.into_iter().cloned());
    }
    CutoffSplit {
        cutoff,
        train,
        test,
    }
}

// ---------------------------------------------------------------------------------------------
// Scoring

/// Every ranking of every unit, pooled over cutoffs.
#[derive(Debug, Default)]
pub struct Pooled {
    pub names: Vec<String>,
    /// `rankings[r][u]`: ranking r of unit u.
    pub rankings: Vec<Vec<Vec<TitleIdx>>>,
    pub truth: Vec<HashSet<TitleIdx>>,
    /// The profile of each unit (bootstrap clusters).
    pub profile: Vec<String>,
    pub catalog: usize,
    pub train_seconds: f64,
    pub cutoffs: Vec<(Millis, usize)>,
    /// What each cutoff's training learned for popular-now (`model::popular_now`), in a line.
    pub learned: Vec<(Millis, String)>,
}

impl Pooled {
    fn push(&mut self, name: &str, rankings: Vec<Vec<TitleIdx>>) {
        match self.names.iter().position(|n| n == name) {
            Some(i) => self.rankings[i].extend(rankings),
            None => {
                self.names.push(name.to_owned());
                self.rankings.push(rankings);
            }
        }
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n.starts_with(name))
    }

    pub fn metrics(&self, r: usize) -> Metrics {
        Metrics::compute(&self.rankings[r], &self.truth, self.catalog)
    }

    /// NDCG@k of ranking r, per unit.
    pub fn per_unit(&self, r: usize, k: usize) -> Vec<f64> {
        self.rankings[r]
            .iter()
            .zip(&self.truth)
            .map(|(ranking, truth)| ndcg(ranking, truth, k))
            .collect()
    }
}

/// Binary-gain NDCG@k of one ranking.
pub fn ndcg(ranking: &[TitleIdx], truth: &HashSet<TitleIdx>, k: usize) -> f64 {
    if truth.is_empty() {
        return 0.0;
    }
    let dcg: f64 = ranking
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, t)| truth.contains(t))
        .map(|(r, _)| 1.0 / ((r + 2) as f64).log2())
        .sum();
    let idcg: f64 = (0..truth.len().min(k))
        .map(|r| 1.0 / ((r + 2) as f64).log2())
        .sum();
    dcg / idcg
}

/// Mean of `a − b` over units and its 95% paired bootstrap interval, resampling clusters
/// (profiles) with all their units; deterministic for a seed.
pub fn paired_interval(a: &[f64], b: &[f64], cluster: &[String], rounds: usize) -> (f64, f64, f64) {
    let mut sums: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
    for ((x, y), c) in a.iter().zip(b).zip(cluster) {
        let e = sums.entry(c.as_str()).or_default();
        e.0 += x - y;
        e.1 += 1;
    }
    let groups: Vec<(f64, usize)> = sums.into_values().collect();
    let total = |pick: &mut dyn FnMut() -> usize| {
        let (mut s, mut n) = (0.0, 0usize);
        for _ in 0..groups.len() {
            let g = groups[pick()];
            s += g.0;
            n += g.1;
        }
        if n == 0 { 0.0 } else { s / n as f64 }
    };
    let mut i = 0;
    let mean = total(&mut || {
        i += 1;
        i - 1
    });
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut means: Vec<f64> = (0..rounds)
        .map(|_| {
            total(&mut || {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((state >> 33) % groups.len().max(1) as u64) as usize
            })
        })
        .collect();
    means.sort_by(f64::total_cmp);
    if means.is_empty() {
        return (mean, mean, mean);
    }
    let at = |q: f64| means[((q * rounds as f64) as usize).min(rounds - 1)];
    (mean, at(0.025), at(0.975))
}

/// Windows (days) recent popularity is tuned over.
pub const RECENT_WINDOWS: [f64; 7] = [1.0, 3.0, 7.0, 14.0, 28.0, 56.0, 112.0];

/// The titles with the most interactions in `[cutoff − window, cutoff)`, ties by all-time
/// count then catalogue order, minus the unit's own titles, at most `DEPTH`.
fn recent_popular(
    set: &EvalSet,
    train: &[InteractionRecord],
    window_days: f64,
) -> Vec<Vec<TitleIdx>> {
    let n = set.catalog.len();
    let (mut recent, mut all) = (vec![0usize; n], vec![0usize; n]);
    let from = set.now - (window_days * DAY_MS as f64) as Millis;
    for r in train {
        if let Some(t) = set.catalog.idx(&r.item) {
            all[t as usize] += 1;
            if r.at >= from {
                recent[t as usize] += 1;
            }
        }
    }
    let mut order: Vec<TitleIdx> = (0..n as TitleIdx).collect();
    order.sort_by(|a, b| {
        (recent[*b as usize], all[*b as usize])
            .cmp(&(recent[*a as usize], all[*a as usize]))
            .then(a.cmp(b))
    });
    set.unseen_in_order(&order)
}

/// A unit's own titles, as catalogue indexes.
fn seen(set: &EvalSet, u: usize) -> Vec<TitleIdx> {
    set.users[u]
        .history
        .iter()
        .filter_map(|s| set.catalog.idx(&s.title_id))
        .collect()
}

fn best(scores: &[f32], exclude: &[TitleIdx]) -> Vec<TitleIdx> {
    let mut skip = vec![false; scores.len()];
    for t in exclude {
        skip[*t as usize] = true;
    }
    let mut list: Vec<(TitleIdx, f32)> = scores
        .iter()
        .enumerate()
        .filter(|(t, s)| !skip[*t] && **s > 0.0)
        .map(|(t, s)| (t as TitleIdx, *s))
        .collect();
    list.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    list.into_iter().take(DEPTH).map(|(t, _)| t).collect()
}

/// EASE as published: the model's weights summed over the whole history, every title alike.
fn ease(set: &EvalSet, model: &Model) -> Vec<Vec<TitleIdx>> {
    (0..set.users.len())
        .map(|u| {
            let own = seen(set, u);
            let mut scores = vec![0f32; set.catalog.len()];
            for &h in &own {
                for &(t, w) in model.item_weights(h) {
                    scores[t as usize] += w;
                }
            }
            best(&scores, &own)
        })
        .collect()
}

/// Implicit ALS: the profile folded in from its whole history with equal weights, titles by
/// inner product (exact, over all title vectors, through the index with a wide pool).
fn als(set: &EvalSet, model: &Model) -> Vec<Vec<TitleIdx>> {
    (0..set.users.len())
        .map(|u| {
            let own = seen(set, u);
            let weights: Vec<(TitleIdx, f32)> = own.iter().map(|t| (*t, 1.0)).collect();
            let Some(profile) = model.fold_in(&weights) else {
                return Vec::new();
            };
            let mut scores = vec![0f32; set.catalog.len()];
            for (t, s) in model.nearest_titles(&profile, DEPTH * 5 + own.len()) {
                // Inner products may be negative; shift so that every returned title ranks.
                scores[t as usize] = s + 1e3;
            }
            best(&scores, &own)
        })
        .collect()
}

/// The titles a first screen shows, row by row in page order, `SCREEN_PER_ROW` of each.
fn screen(page: &page::Page) -> Vec<TitleIdx> {
    page.rows
        .iter()
        .flat_map(|r| r.items.iter().take(SCREEN_PER_ROW).map(|i| i.title))
        .take(DEPTH)
        .collect()
}

/// Loads a MovieLens-style directory as one log (the `US` default country, as the demo).
pub fn load(dir: &Path) -> Result<Dataset> {
    let us = Country::parse("US").map_err(|e| anyhow::anyhow!(e.0))?;
    movielens::read_dir(dir, Some(&us)).with_context(|| format!("reading {}", dir.display()))
}

/// What the evaluation runs: the page, its training params, the split.
pub struct Setup<'a> {
    pub data: &'a Dataset,
    pub home: &'a PageDefinition,
    pub params: &'a TrainParams,
    pub rule: SplitRule,
    pub schedule: Schedule,
    /// Page variants (an experiment's overrides, by name) whose Top Picks and page are scored
    /// next to the page's own on the same trained models: a sweep costs one training per
    /// cutoff, not one per setting.
    pub variants: Vec<(String, PageDefinition)>,
}

/// Row ids scored on their own, when the page has them.
const ROWS: [&str; 5] = [
    "top-picks",
    "because-you-watched",
    "trending",
    "new-releases",
    "genre",
];

fn row_name(id: &str) -> String {
    match id {
        "top-picks" => "Top Picks (served)".into(),
        other => format!("row {other} (served)"),
    }
}

/// Scores every ranking on every unit of `part`; `recent_window` is recent popularity's
/// window in days (all of `RECENT_WINDOWS` when `None`, as tuning does).
/// With `popularity_only`, nothing is trained and only the popularity baselines are scored.
pub fn score(
    setup: &Setup<'_>,
    part: Part,
    recent_window: Option<f64>,
    popularity_only: bool,
) -> Result<Pooled> {
    let last = setup
        .data
        .interactions
        .iter()
        .map(|r| r.at)
        .max()
        .context("the log has no interactions")?;
    let mut pooled = Pooled::default();
    for (cutoff, end) in setup.schedule.cutoffs(last, part) {
        let split = split_at(&setup.data.interactions, cutoff, end, &setup.rule);
        let train = Dataset {
            titles: setup.data.titles.clone(),
            users: setup.data.users.clone(),
            interactions: split.train.clone(),
            ..Dataset::default()
        };
        let target = Dataset {
            interactions: split.test.clone(),
            ..Dataset::default()
        };
        let mut set = EvalSet::from_datasets(train, target, false)?;
        set.now = cutoff;
        pooled.cutoffs.push((cutoff, set.users.len()));
        if set.users.is_empty() {
            continue;
        }
        pooled.catalog = set.catalog.len();
        pooled.truth.extend(set.held_out());
        pooled
            .profile
            .extend(set.users.iter().map(|u| u.profile.id.to_string()));
        pooled.push("all-time popular", set.most_popular());
        match recent_window {
            Some(w) => pooled.push("recent popularity", recent_popular(&set, &split.train, w)),
            None => {
                for w in RECENT_WINDOWS {
                    pooled.push(
                        &format!("recent popularity, {w} days"),
                        recent_popular(&set, &split.train, w),
                    );
                }
            }
        }
        if popularity_only {
            continue;
        }
        let started = Instant::now();
        let artifact = model::train(&set.catalog, &set.training_set(), &[], cutoff, setup.params);
        pooled.train_seconds += started.elapsed().as_secs_f64();
        if let Some(b) = &artifact.popular_now {
            pooled.learned.push((cutoff, b.describe()));
        }
        let model = Model::load("eval", &artifact, &set.catalog);
        pooled.push("EASE (whole history, no recency)", ease(&set, &model));
        pooled.push("implicit ALS (equal weights)", als(&set, &model));
        for row in ROWS {
            if setup.home.rows.iter().any(|r| r.id == row) {
                pooled.push(&row_name(row), set.served(&model, setup.home, row)?);
            }
        }
        for (name, home) in &setup.variants {
            pooled.push(
                &format!("variant {name}: Top Picks"),
                set.served(&model, home, "top-picks")?,
            );
            let pages: Vec<Vec<TitleIdx>> = set
                .users
                .iter()
                .map(|u| {
                    let history = History::new(u.history.iter().cloned());
                    screen(&page::assemble(
                        home,
                        &set.catalog,
                        &model,
                        &HashMap::new(),
                        &u.profile,
                        &history,
                        cutoff,
                    ))
                })
                .collect();
            pooled.push(&format!("variant {name}: page"), pages);
        }
        for (name, order) in [
            ("Page, fixed order (served)", RowOrder::Fixed),
            ("Page, engagement order (served)", RowOrder::Engagement),
            ("Page, learned order (served)", RowOrder::Learned),
        ] {
            let home = setup.home.with_overrides(
                &PageOverrides {
                    order: Some(order),
                    ..PageOverrides::default()
                },
                &SourceRegistry::builtin(),
            )?;
            let pages: Vec<Vec<TitleIdx>> = set
                .users
                .iter()
                .map(|u| {
                    let history = History::new(u.history.iter().cloned());
                    screen(&page::assemble(
                        &home,
                        &set.catalog,
                        &model,
                        &HashMap::new(),
                        &u.profile,
                        &history,
                        cutoff,
                    ))
                })
                .collect();
            pooled.push(name, pages);
        }
    }
    Ok(pooled)
}

/// The recent-popularity window that scores best on TUNE.
pub fn tune_recent_window(tuned: &Pooled) -> f64 {
    RECENT_WINDOWS
        .iter()
        .copied()
        .max_by(|a, b| {
            let m = |w: &f64| {
                tuned
                    .index(&format!("recent popularity, {w} days"))
                    .map_or(0.0, |i| tuned.metrics(i).ndcg_10)
            };
            m(a).total_cmp(&m(b))
        })
        .unwrap_or(7.0)
}

pub struct Report {
    pub part: Part,
    pub rule: SplitRule,
    pub recent_window: Option<f64>,
    pub pooled: Pooled,
}

/// Bootstrap rounds of the paired intervals.
pub const ROUNDS: usize = 2000;

/// Rankings each served one is compared with.
const BASELINES: [&str; 4] = [
    "all-time popular",
    "recent popularity",
    "EASE",
    "implicit ALS",
];

impl Report {
    pub fn table(&self) -> String {
        let p = &self.pooled;
        let profiles: HashSet<&String> = p.profile.iter().collect();
        let mut out = format!(
            "protocol {PROTOCOL}, scored on {}: {} cutoffs, {} units ({} profiles), {} titles; \
             ≥{} TRAIN interactions, same sitting {} min{}; training {:.1}s in all\n",
            self.part.name(),
            p.cutoffs.len(),
            p.truth.len(),
            profiles.len(),
            p.catalog,
            self.rule.min_train,
            self.rule.same_sitting / 60_000,
            self.rule
                .cold_start
                .map_or(String::new(), |k| format!(", cold start: first {k} titles")),
            p.train_seconds,
        );
        let dates: Vec<String> = p
            .cutoffs
            .iter()
            .map(|(t, n)| {
                let d = chrono::DateTime::from_timestamp_millis(*t)
                    .map_or_else(|| t.to_string(), |d| d.format("%Y-%m-%d").to_string());
                format!("{d} ({n})")
            })
            .collect();
        out.push_str(&format!("cutoffs (units): {}\n", dates.join(", ")));
        for (t, line) in &p.learned {
            let d = chrono::DateTime::from_timestamp_millis(*t)
                .map_or_else(|| t.to_string(), |d| d.format("%Y-%m-%d").to_string());
            out.push_str(&format!("  trained at {d}: {line}\n"));
        }
        if let Some(w) = self.recent_window {
            out.push_str(&format!(
                "recent popularity window: {w} days (tuned on TUNE)\n"
            ));
        }
        out.push_str(&format!(
            "{:<44} {:>8} {:>9} {:>9} {:>8} {:>8} {:>9}\n",
            "ranking", "NDCG@10", "Recall@10", "Recall@20", "Hit@10", "Cov@10", "NDCG@20"
        ));
        for (i, name) in p.names.iter().enumerate() {
            let m = p.metrics(i);
            let n20 = p.per_unit(i, DEPTH).iter().sum::<f64>() / p.truth.len().max(1) as f64;
            out.push_str(&format!(
                "{:<44} {:>8.4} {:>9.4} {:>9.4} {:>8.4} {:>8.4} {:>9.4}\n",
                name, m.ndcg_10, m.recall_10, m.recall_20, m.hit_rate_10, m.coverage_10, n20
            ));
        }
        let compare = |out: &mut String, a: usize, b: usize, k: usize| {
            let (mean, lo, hi) =
                paired_interval(&p.per_unit(a, k), &p.per_unit(b, k), &p.profile, ROUNDS);
            let verdict = if lo > 0.0 {
                "ahead"
            } else if hi < 0.0 {
                "behind"
            } else {
                "tied"
            };
            out.push_str(&format!(
                "  {:<42} vs {:<38} {:+.4} [{:+.4}, {:+.4}] {verdict}\n",
                p.names[a], p.names[b], mean, lo, hi
            ));
        };
        out.push_str(&format!(
            "paired differences in NDCG@10, 95% bootstrap over profiles ({ROUNDS} rounds):\n"
        ));
        if let Some(tp) = p.index("Top Picks") {
            for b in BASELINES.iter().filter_map(|b| p.index(b)) {
                compare(&mut out, tp, b, 10);
            }
        }
        for page in (0..p.names.len()).filter(|i| p.names[*i].starts_with("Page")) {
            out.push_str(&format!(
                "the first screen (NDCG@{DEPTH}, {SCREEN_PER_ROW} titles per row in page order) vs each row's first {DEPTH}:\n"
            ));
            for r in 0..p.names.len() {
                if p.names[r].starts_with("row ")
                    || p.names[r].starts_with("Top Picks")
                    || (p.names[r].starts_with("Page") && r != page)
                {
                    compare(&mut out, page, r, DEPTH);
                }
            }
        }
        out
    }
}

/// TUNE (recent popularity over every window), or TEST with the window TUNE chose.
pub fn run(setup: &Setup<'_>, part: Part) -> Result<Report> {
    let (recent_window, pooled) = match part {
        Part::Tune => (None, score(setup, Part::Tune, None, false)?),
        Part::Test => {
            let window = tune_recent_window(&score(setup, Part::Tune, None, true)?);
            (Some(window), score(setup, Part::Test, Some(window), false)?)
        }
    };
    Ok(Report {
        part,
        rule: setup.rule,
        recent_window,
        pooled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ProfileId;

    const MIN: Millis = 60_000;

    fn r(user: &str, item: &str, at_min: Millis) -> InteractionRecord {
        InteractionRecord {
            user: ProfileId::parse(user).unwrap(),
            item: TitleId::parse(item).unwrap(),
            rating: None,
            at: at_min * MIN,
        }
    }

    fn ids(list: &[InteractionRecord]) -> Vec<String> {
        list.iter()
            .map(|r| format!("{}:{}", r.user, r.item))
            .collect()
    }

    /// a: five titles before the cutoff (t = 1000), the last at 990, then one at 1010 (same
    /// sitting: 20 min after), one at 1021 (31 min after: a later sitting), one at 2000.
    /// b: four titles before, one after (too little history to be scored).
    /// c: six before, nothing after (trains, not scored).
    fn log() -> Vec<InteractionRecord> {
        let mut log = vec![
            r("a", "1", 100),
            r("a", "2", 200),
            r("a", "3", 300),
            r("a", "4", 400),
            r("a", "5", 990),
            r("a", "6", 1010),
            r("a", "7", 1021),
            r("a", "8", 2000),
        ];
        for (i, t) in [10, 20, 30, 40, 1500].into_iter().enumerate() {
            log.push(r("b", &(i + 1).to_string(), t));
        }
        for i in 0..6 {
            log.push(r("c", &(i + 1).to_string(), 500 + i as Millis));
        }
        // Out of order on purpose: the split sorts.
        log.reverse();
        log
    }

    #[test]
    fn trains_on_the_past_and_scores_later_sittings_only() {
        let s = split_at(&log(), 1000 * MIN, Millis::MAX, &SplitRule::default());
        assert_eq!(ids(&s.test), ["a:7", "a:8"]);
        // Everything before the cutoff trains, scored or not, in time order per profile.
        assert_eq!(s.train.len(), 5 + 4 + 6);
        assert!(s.train.iter().all(|r| r.at < 1000 * MIN));
        assert_eq!(ids(&s.train)[..5], ["a:1", "a:2", "a:3", "a:4", "a:5"]);
        // The window's end is exclusive.
        let s = split_at(&log(), 1000 * MIN, 2000 * MIN, &SplitRule::default());
        assert_eq!(ids(&s.test), ["a:7"]);
        // A later cutoff moves interactions from TEST to TRAIN and the sitting with them.
        let s = split_at(&log(), 1015 * MIN, Millis::MAX, &SplitRule::default());
        assert_eq!(ids(&s.test), ["a:8"], "1021 is within 30 min of 1010");
        // With the minimum at 4, b is scored too.
        let four = SplitRule {
            min_train: 4,
            ..SplitRule::default()
        };
        let s = split_at(&log(), 1000 * MIN, Millis::MAX, &four);
        assert_eq!(ids(&s.test), ["a:7", "a:8", "b:5"]);
    }

    #[test]
    fn the_same_sitting_window_is_a_parameter() {
        let none = SplitRule {
            same_sitting: 0,
            ..SplitRule::default()
        };
        let s = split_at(&log(), 1000 * MIN, Millis::MAX, &none);
        assert_eq!(ids(&s.test), ["a:6", "a:7", "a:8"]);
        let hour = SplitRule {
            same_sitting: 60 * MIN,
            ..SplitRule::default()
        };
        let s = split_at(&log(), 1000 * MIN, Millis::MAX, &hour);
        assert_eq!(ids(&s.test), ["a:8"]);
    }

    #[test]
    fn cold_start_keeps_the_first_titles_of_scored_profiles_only() {
        let rule = SplitRule {
            cold_start: Some(2),
            ..SplitRule::default()
        };
        let s = split_at(&log(), 1000 * MIN, Millis::MAX, &rule);
        // a is scored on the same titles as without truncation (the sitting rule uses its
        // whole history), but trains on its first two titles only.
        assert_eq!(ids(&s.test), ["a:7", "a:8"]);
        let a: Vec<String> = ids(&s.train)
            .into_iter()
            .filter(|x| x.starts_with("a:"))
            .collect();
        assert_eq!(a, ["a:1", "a:2"]);
        // b and c are not scored and keep everything.
        assert_eq!(s.train.len(), 2 + 4 + 6);
    }

    #[test]
    fn titles_already_had_are_not_scored_and_repeats_count_once() {
        let mut log = log();
        log.push(r("a", "3", 3000)); // watched again
        log.push(r("a", "8", 3100)); // a second interaction with a later title
        let s = split_at(&log, 1000 * MIN, Millis::MAX, &SplitRule::default());
        assert_eq!(ids(&s.test), ["a:7", "a:8"]);
    }

    #[test]
    fn cutoffs_roll_fortnightly_and_tuning_ends_where_testing_starts() {
        let s = Schedule {
            test_cutoffs: 3,
            tune_cutoffs: 2,
            spacing: 10,
        };
        assert_eq!(s.cutoffs(99, Part::Test), [(70, 100), (80, 100), (90, 100)]);
        assert_eq!(s.cutoffs(99, Part::Tune), [(50, 70), (60, 70)]);
    }

    #[test]
    fn paired_intervals_resample_profiles() {
        let c: Vec<String> = (0..200).map(|i| (i / 2).to_string()).collect();
        let a: Vec<f64> = (0..200).map(|i| (i % 7) as f64 / 10.0 + 0.1).collect();
        let b: Vec<f64> = (0..200).map(|i| (i % 7) as f64 / 10.0).collect();
        let (mean, lo, hi) = paired_interval(&a, &b, &c, 500);
        assert!(
            (mean - 0.1).abs() < 1e-9 && lo > 0.09 && hi < 0.11,
            "{lo} {hi}"
        );
        let noise: Vec<f64> = (0..200)
            .map(|i| if i % 2 == 0 { 0.5 } else { 0.0 })
            .collect();
        let flipped: Vec<f64> = noise.iter().map(|x| 0.5 - x).collect();
        let (mean, lo, hi) = paired_interval(&noise, &flipped, &c, 500);
        // Each profile's two units cancel: no difference, and a tight interval around 0.
        assert!(mean.abs() < 1e-9 && lo <= 0.0 && hi >= 0.0);
    }

    #[test]
    fn ndcg_matches_hand_computation() {
        let truth = HashSet::from([2, 9]);
        let l3 = 1.0 / 3f64.log2();
        assert!((ndcg(&[1, 2, 3], &truth, 10) - l3 / (1.0 + l3)).abs() < 1e-12);
        assert_eq!(ndcg(&[1, 2, 3], &truth, 1), 0.0);
    }
}
