//! The training pipeline: a pure function of a `TrainingSet` and title entities to a
//! `ModelArtifact`, stage by stage (popularity and trending, co-occurrence, EASE, content
//! neighbours, ALS embeddings and their ANN index, the popular-now backtest).

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use super::als::{self, Sparse};
use super::artifact::{ARTIFACT_FORMAT, EmbeddingArtifact, ModelArtifact, ScoredTitle};
use super::content::{self, TitleEntity};
use super::cooccurrence::{CoOccurrence, co_occurrence};
use super::ease;
use super::params::TrainParams;
use super::popularity::{interaction_weight, popularity, trending};
use crate::domain::{Millis, TitleId};
use crate::engine::catalog::{Catalog, TitleIdx};
use crate::engine::training_set::TrainingSet;

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
    let mut times = StageTimes::default();
    let (popularity, trending) = times.time("popularity and trending", || {
        (
            popularity(catalog, data),
            trending(catalog, data, now, params),
        )
    });
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
    let popular_now = times.time("popular-now backtest", || {
        super::popular_now::backtest(catalog, data, now, params)
    });
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
        popular_now,
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

/// EASE for catalogues too large for the dense inverse: every column solved over the title's
/// most co-watched titles (`ease::local_column`), then the rows (what having watched a title
/// says about others) cut to the largest weights, as the exact path does. Neighbourhoods are
/// chosen by co-watch count, not cosine (cosine picks rare titles whose Gram rows say little).
/// The solve needs the pairs *within* a neighbourhood, which no list may hold: reading a
/// missing pair as "never co-watched" leaves holes that make many systems not
/// positive-definite (a Gram matrix with holes is not a Gram matrix), so it is read as the
/// most the lists allow, the smaller of the two lists' last counts. The measurements behind
/// these choices: README, "Recommendation quality".
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Country, DAY_MS, ProfileId, Title};
    use crate::engine::model::als::AlsParams;
    use crate::engine::model::{ArtifactError, Interaction, Model};

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
        let global = &m.trending[&None];
        // Title 2: two interactions, each half as fresh (3-day half-life) → equal weight to 1.
        assert_eq!(global.len(), 2);
        assert!((global[0].1 - global[1].1).abs() < 1e-5);
        assert!(
            m.trending
                .contains_key(&Some(Country::parse("US").unwrap()))
        );
    }
}
