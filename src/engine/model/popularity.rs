//! Popularity and trending: affinity-weighted interaction counts, overall and (decayed with
//! age over a window) per country.

use std::collections::{BTreeMap, HashMap};

use super::artifact::ScoredTitle;
use super::params::TrainParams;
use crate::domain::{Country, DAY_MS, Millis};
use crate::engine::catalog::{Catalog, TitleIdx};
use crate::engine::history::RecencyDecay;
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

/// Trending per country, plus all countries together (under `None`); a country with fewer
/// than `trending_min_interactions` in the window has no list of its own.
pub(super) fn trending(
    catalog: &Catalog,
    data: &TrainingSet,
    now: Millis,
    params: &TrainParams,
) -> BTreeMap<Option<Country>, Vec<ScoredTitle>> {
    let window = (params.trending_window_days * DAY_MS as f64) as Millis;
    // Counted back from training's "now"; trending always decays.
    let decay =
        RecencyDecay::halving_every(params.trending_half_life_days.max(1e-3) * DAY_MS as f64);
    // Keyed by the training set's interned country (None: all countries together), so that
    // counting allocates nothing per interaction.
    let mut by_country: HashMap<Option<u16>, (usize, HashMap<TitleIdx, f32>)> = HashMap::new();
    for r in data.rows() {
        let age = now - r.at;
        if age < 0 || age > window {
            continue;
        }
        let weight = interaction_weight(r.affinity) * decay.factor(age) as f32;
        let mut add = |key: Option<u16>| {
            let (count, scores) = by_country.entry(key).or_default();
            *count += 1;
            *scores.entry(r.title).or_default() += weight;
        };
        add(None);
        if data.country(r).is_some() {
            add(Some(r.country));
        }
    }
    by_country
        .into_iter()
        .filter(|(key, (count, _))| key.is_none() || *count >= params.trending_min_interactions)
        .map(|(key, (_, scores))| {
            let mut list = ranked(catalog, scores.into_iter().map(|(t, s)| (t as usize, s)));
            list.truncate(500);
            (key.and_then(|k| data.country_at(k).cloned()), list)
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
