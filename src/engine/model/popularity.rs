//! Popularity and trending: affinity-weighted interaction counts, overall and (decayed with
//! age over a window) per country.

use std::collections::{BTreeMap, HashMap};

use super::artifact::{ALL_COUNTRIES, ScoredTitle};
use super::params::TrainParams;
use crate::domain::{DAY_MS, Millis};
use crate::engine::catalog::{Catalog, TitleIdx};
use crate::engine::training_set::TrainingSet;

/// How much one interaction counts for popularity and embeddings: watching at all says
/// something, liking it says more.
pub(super) fn interaction_weight(affinity: f32) -> f32 {
    0.2 + 0.8 * affinity
}

/// Every title with interactions, most popular first.
pub(super) fn popularity(catalog: &Catalog, data: &TrainingSet) -> Vec<ScoredTitle> {
    let mut popularity = vec![0f32; catalog.len()];
    for r in data.rows() {
        popularity[r.title as usize] += interaction_weight(r.affinity);
    }
    ranked(catalog, popularity.into_iter().enumerate())
}

/// Trending per country, plus all countries together (`ALL_COUNTRIES`); a country with fewer
/// than `trending_min_interactions` in the window has no list of its own.
pub(super) fn trending(
    catalog: &Catalog,
    data: &TrainingSet,
    now: Millis,
    params: &TrainParams,
) -> BTreeMap<String, Vec<ScoredTitle>> {
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
    by_country
        .into_iter()
        .filter(|(key, (count, _))| {
            key == ALL_COUNTRIES || *count >= params.trending_min_interactions
        })
        .map(|(key, (_, scores))| {
            let mut list = ranked(catalog, scores.into_iter().map(|(t, s)| (t as usize, s)));
            list.truncate(500);
            (key, list)
        })
        .collect()
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
