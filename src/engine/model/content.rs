//! Content similarity from metadata, so that titles nobody has watched yet still have
//! neighbours: genres, release year and the people of a title (director, actors, writers …,
//! from a knowledge graph, see `movielens::read_dir`).
//!
//! sim(a, b) = genre_weight · cos(G_a, G_b) + entity_weight · cos(E_a, E_b)
//!           + year_weight · max(0, 1 − |year_a − year_b| / year_window)
//!
//! where G and E are sparse IDF-weighted vectors (idf(f) = ln(N / df(f)), N = catalogue size;
//! entity features are also weighted by their relation, a shared director counting more than a
//! shared actor). Only pairs sharing at least one genre or entity are scored, so the year
//! alone never makes two titles neighbours. Candidates come from an inverted index: the cost is
//! Σ df(f)² over the features, fine for MovieLens-sized catalogues; above `max_titles` the
//! content neighbours are skipped.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::ScoredTitle;
use crate::domain::TitleId;
use crate::engine::catalog::{Catalog, TitleIdx};

/// One person or entity of interest linked to a title (`relation` is a role such as
/// `director`, `actor`, `writer`, `producer`, `cinematographer`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TitleEntity {
    pub title: TitleId,
    pub relation: String,
    pub entity: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContentParams {
    /// Content neighbours kept per title (0 turns them off).
    pub neighbors: usize,
    pub genre_weight: f32,
    pub entity_weight: f32,
    pub year_weight: f32,
    /// Years apart at which release-year closeness reaches 0.
    pub year_window: f32,
    /// Above this many titles content neighbours are skipped (the cost is quadratic in the
    /// size of the largest genres).
    pub max_titles: usize,
}

impl Default for ContentParams {
    fn default() -> Self {
        Self {
            neighbors: 50,
            genre_weight: 0.5,
            entity_weight: 1.0,
            year_weight: 0.2,
            year_window: 10.0,
            max_titles: 20_000,
        }
    }
}

/// How much a shared entity of this relation says about two titles, before IDF.
pub fn relation_weight(relation: &str) -> f32 {
    match relation {
        "director" => 2.0,
        "writer" => 1.5,
        _ => 1.0,
    }
}

/// Sparse, L2-normalised IDF vectors (feature id, weight), one per title.
fn vectors(features: &[Vec<(u32, f32)>], n_titles: usize) -> Vec<Vec<(u32, f32)>> {
    let mut df: HashMap<u32, usize> = HashMap::new();
    for fs in features {
        for (f, _) in fs {
            *df.entry(*f).or_default() += 1;
        }
    }
    features
        .iter()
        .map(|fs| {
            let mut v: Vec<(u32, f32)> = fs
                .iter()
                .map(|(f, w)| (*f, w * (n_titles as f32 / df[f] as f32).ln()))
                .filter(|(_, w)| *w > 0.0)
                .collect();
            let norm = v.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
            for (_, w) in &mut v {
                *w /= norm;
            }
            v
        })
        .collect()
}

/// Top-k content neighbours per title, most similar first (ties by catalogue order).
pub fn neighbors(
    catalog: &Catalog,
    entities: &[TitleEntity],
    params: &ContentParams,
) -> BTreeMap<TitleId, Vec<ScoredTitle>> {
    let n = catalog.len();
    if n == 0 || params.neighbors == 0 || n > params.max_titles {
        return BTreeMap::new();
    }
    // Genre and entity features, each interned to dense ids; duplicates counted once.
    let mut genre_ids: HashMap<&str, u32> = HashMap::new();
    let mut genre_features: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n];
    for (t, title) in catalog.titles() {
        for g in &title.genres {
            let next = genre_ids.len() as u32;
            let id = *genre_ids.entry(g.as_str()).or_insert(next);
            if !genre_features[t as usize].iter().any(|(f, _)| *f == id) {
                genre_features[t as usize].push((id, 1.0));
            }
        }
    }
    let mut entity_ids: HashMap<(&str, &str), u32> = HashMap::new();
    let mut entity_features: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n];
    for e in entities {
        let Some(t) = catalog.idx(&e.title) else {
            continue;
        };
        let next = entity_ids.len() as u32;
        let id = *entity_ids
            .entry((e.relation.as_str(), e.entity.as_str()))
            .or_insert(next);
        if !entity_features[t as usize].iter().any(|(f, _)| *f == id) {
            entity_features[t as usize].push((id, relation_weight(&e.relation)));
        }
    }
    let blocks = [
        (vectors(&genre_features, n), params.genre_weight),
        (vectors(&entity_features, n), params.entity_weight),
    ];
    // Inverted indexes: feature → (title, weight).
    let postings: Vec<HashMap<u32, Vec<(TitleIdx, f32)>>> = blocks
        .iter()
        .map(|(vs, _)| {
            let mut index: HashMap<u32, Vec<(TitleIdx, f32)>> = HashMap::new();
            for (t, v) in vs.iter().enumerate() {
                for (f, w) in v {
                    index.entry(*f).or_default().push((t as TitleIdx, *w));
                }
            }
            index
        })
        .collect();

    let year = |t: TitleIdx| catalog.title(t).year;
    let mut acc = vec![0f32; n];
    let mut touched: Vec<TitleIdx> = Vec::new();
    let mut out = BTreeMap::new();
    for a in 0..n {
        for ((vs, weight), index) in blocks.iter().zip(&postings) {
            for (f, wa) in &vs[a] {
                for &(b, wb) in &index[f] {
                    if b as usize == a {
                        continue;
                    }
                    if acc[b as usize] == 0.0 {
                        touched.push(b);
                    }
                    acc[b as usize] += weight * wa * wb;
                }
            }
        }
        let mut sims: Vec<(TitleIdx, f32)> = touched
            .iter()
            .map(|&b| {
                let closeness = match (year(a as TitleIdx), year(b)) {
                    (Some(ya), Some(yb)) if params.year_window > 0.0 => {
                        (1.0 - (ya - yb).abs() as f32 / params.year_window).max(0.0)
                    }
                    _ => 0.0,
                };
                (b, acc[b as usize] + params.year_weight * closeness)
            })
            .filter(|(_, s)| *s > 0.0)
            .collect();
        for &b in &touched {
            acc[b as usize] = 0.0;
        }
        touched.clear();
        if sims.is_empty() {
            continue;
        }
        let order =
            |x: &(TitleIdx, f32), y: &(TitleIdx, f32)| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0));
        let k = params.neighbors.min(sims.len());
        if k < sims.len() {
            sims.select_nth_unstable_by(k, order);
            sims.truncate(k);
        }
        sims.sort_by(order);
        out.insert(
            catalog.title(a as TitleIdx).id.clone(),
            sims.into_iter()
                .map(|(b, s)| ScoredTitle(catalog.title(b).id.clone(), s))
                .collect(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Title;

    fn title(id: &str, year: Option<i32>, genres: &[&str]) -> Title {
        Title {
            year,
            genres: genres.iter().map(|g| g.to_string()).collect(),
            ..Title::new(TitleId::parse(id).unwrap(), format!("t{id}"))
        }
    }

    fn entity(title: &str, relation: &str, entity: &str) -> TitleEntity {
        TitleEntity {
            title: TitleId::parse(title).unwrap(),
            relation: relation.into(),
            entity: entity.into(),
        }
    }

    fn sim(m: &BTreeMap<TitleId, Vec<ScoredTitle>>, a: &str, b: &str) -> Option<f32> {
        m.get(&TitleId::parse(a).unwrap())?
            .iter()
            .find(|s| s.0.as_str() == b)
            .map(|s| s.1)
    }

    #[test]
    fn genre_cosine_is_idf_weighted() {
        // 4 titles: Drama in 1, 2, 3; Comedy in 1, 4. idf(Drama) = ln(4/3), idf(Comedy) = ln 2.
        let c = Catalog::new(vec![
            title("1", None, &["Drama", "Comedy"]),
            title("2", None, &["Drama"]),
            title("3", None, &["Drama"]),
            title("4", None, &["Comedy"]),
        ]);
        let p = ContentParams {
            genre_weight: 1.0,
            year_weight: 0.0,
            ..ContentParams::default()
        };
        let m = neighbors(&c, &[], &p);
        let (d, k) = ((4f32 / 3.0).ln(), 2f32.ln());
        let norm1 = (d * d + k * k).sqrt();
        assert!((sim(&m, "1", "2").unwrap() - d / norm1).abs() < 1e-6);
        assert!((sim(&m, "1", "4").unwrap() - k / norm1).abs() < 1e-6);
        assert!((sim(&m, "2", "3").unwrap() - 1.0).abs() < 1e-6);
        // The rarer genre weighs more: 1's nearest is 4 (ln 2 > ln 4/3).
        assert_eq!(m[&TitleId::parse("1").unwrap()][0].0.as_str(), "4");
        assert_eq!(sim(&m, "2", "4"), None, "nothing shared, no neighbour");
    }

    #[test]
    fn shared_director_and_year_closeness_add_up() {
        // 1 and 2 share a director; 1 and 3 share nothing but a genre that every title has
        // (idf 0), so only the shared director makes neighbours.
        let c = Catalog::new(vec![
            title("1", Some(1995), &["Drama"]),
            title("2", Some(2000), &["Drama"]),
            title("3", Some(1995), &["Drama"]),
            title("4", Some(1995), &["Drama"]),
        ]);
        let entities = [
            entity("1", "director", "d"),
            entity("2", "director", "d"),
            entity("3", "actor", "x"),
            entity("4", "actor", "y"),
        ];
        let p = ContentParams::default();
        let m = neighbors(&c, &entities, &p);
        // E_1 = E_2 = (d) → cosine 1; years 5 apart of a 10-year window → closeness 0.5.
        let expected = p.entity_weight * 1.0 + p.year_weight * 0.5;
        assert!((sim(&m, "2", "1").unwrap() - expected).abs() < 1e-6);
        assert_eq!(m[&TitleId::parse("1").unwrap()].len(), 1);
        assert!(!m.contains_key(&TitleId::parse("3").unwrap()));
        // Unknown titles in the entity list are ignored.
        let extra = [entity("99", "director", "d")];
        assert!(neighbors(&c, &extra, &p).is_empty());
    }

    #[test]
    fn top_k_and_off_switch() {
        let c = Catalog::new(
            (1..=5)
                .map(|i| title(&i.to_string(), Some(1990 + i), &["Drama"]))
                .chain([title("6", None, &["Comedy"])])
                .collect(),
        );
        let p = ContentParams {
            neighbors: 2,
            ..ContentParams::default()
        };
        let m = neighbors(&c, &[], &p);
        let n3: Vec<&str> = m[&TitleId::parse("3").unwrap()]
            .iter()
            .map(|s| s.0.as_str())
            .collect();
        // Same genre everywhere in 1–5: the year decides, ties by catalogue order.
        assert_eq!(n3, vec!["2", "4"]);
        let off = ContentParams {
            neighbors: 0,
            ..p.clone()
        };
        assert!(neighbors(&c, &[], &off).is_empty());
        let small = ContentParams { max_titles: 5, ..p };
        assert!(neighbors(&c, &[], &small).is_empty());
    }
}
