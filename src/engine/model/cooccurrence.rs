//! Co-occurrence: which titles the same profiles watched, as cosine neighbours (Because You
//! Watched, More Like This) and as counts (the neighbourhoods of local EASE).

use rayon::prelude::*;
use std::collections::BTreeMap;

use super::artifact::ScoredTitle;
use super::params::TrainParams;
use crate::domain::TitleId;
use crate::engine::catalog::{Catalog, TitleIdx};
use crate::engine::training_set::TrainingSet;

/// Each title's most similar titles by cosine (most similar first), its most co-watched titles
/// by count (the local EASE neighbourhoods: see `local_ease_weights`), and how many profiles
/// watched each title.
pub(super) struct CoOccurrence {
    lists: Vec<Vec<(TitleIdx, f32)>>,
    pub(super) by_count: Vec<Vec<(u32, u32)>>,
    pub(super) counts: Vec<u32>,
}

impl CoOccurrence {
    /// The first `k` of each list, by id, for the artifact.
    pub(super) fn neighbors(
        &self,
        catalog: &Catalog,
        k: usize,
    ) -> BTreeMap<TitleId, Vec<ScoredTitle>> {
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
pub(super) fn co_occurrence(
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
