//! Diversity rerank: maximal marginal relevance over genre similarity.

use std::borrow::Borrow;

use serde::Deserialize;

use crate::domain::{ParseError, in_range};

use crate::engine::catalog::{Catalog, GenreKey, TitleIdx};
use crate::engine::sources::Candidate;

/// How much a row trades relevance for variety, 0 (pure relevance) to 1 (pure variety).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Deserialize)]
#[serde(try_from = "f64")]
pub struct Diversity(f64);

impl Diversity {
    pub const NONE: Diversity = Diversity(0.0);

    pub fn new(strength: f64) -> Result<Self, ParseError> {
        in_range(strength, 0.0..=1.0, "diversity must be between 0 and 1").map(Self)
    }
    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Diversity {
    type Error = ParseError;
    fn try_from(v: f64) -> Result<Self, ParseError> {
        Self::new(v)
    }
}

/// How alike two titles are, from 0 (nothing in common) to 1 (alike in all the rerank sees).
/// `Key` is what a comparison needs of one title, looked up once per candidate of a row, as
/// the rerank compares each candidate with many picks.
pub trait Similarity {
    type Key: Copy;
    fn key(&self, title: TitleIdx) -> Self::Key;
    fn between(&self, a: Self::Key, b: Self::Key) -> f32;
}

/// The page's similarity: genres (`Catalog::genre_similarity`).
impl Similarity for Catalog {
    type Key = GenreKey;
    #[inline]
    fn key(&self, title: TitleIdx) -> GenreKey {
        self.genre_key(title)
    }
    #[inline]
    fn between(&self, a: GenreKey, b: GenreKey) -> f32 {
        self.key_similarity(a, b)
    }
}

/// Any function of two titles, keyed by the title itself.
impl<F: Fn(TitleIdx, TitleIdx) -> f32> Similarity for F {
    type Key = TitleIdx;
    fn key(&self, title: TitleIdx) -> TitleIdx {
        title
    }
    fn between(&self, a: TitleIdx, b: TitleIdx) -> f32 {
        self(a, b)
    }
}

/// Picks `k` candidates greedily, each maximising
/// `(1 - λ) · relevance − λ · max similarity to those already picked`,
/// with relevance the candidate's score divided by the best score; ties go to the earlier
/// candidate. Scores must be finite; `candidates` come sorted best first (any order is picked
/// correctly, sorted is cheaper); with λ = 0 the order is kept.
///
/// Lazily: a candidate's value only falls as titles are picked (its most similar pick can
/// only get more similar), so a value computed against fewer picks bounds it from above. The
/// candidate with the best bound is brought up to date against the picks made since, and is
/// picked if it still leads. The picks are exactly the eager greedy's (a test compares them)
/// for a fraction of the similarity calls: the eager loop compared every pick with every
/// remaining candidate, and was most of a cached page's assembly. A candidate as similar as
/// can be (1) to one pick is compared with no other: nothing can lower its value further.
/// Candidates are owned or borrowed (`&Candidate`: a page reranks kept lists in place).
pub fn mmr<C: Borrow<Candidate>, S: Similarity>(
    mut candidates: Vec<C>,
    strength: Diversity,
    k: usize,
    similarity: &S,
) -> Vec<C> {
    if strength.get() == 0.0 || candidates.len() <= 1 {
        candidates.truncate(k);
        return candidates;
    }
    let lambda = strength.get() as f32;
    let best = candidates
        .iter()
        .map(|c| c.borrow().score)
        .fold(f32::MIN_POSITIVE, f32::max);
    let value = |c: &C, max_sim: f32| (1.0 - lambda) * (c.borrow().score / best) - lambda * max_sim;
    // Per candidate: its most similar pick so far, and how many picks that covers.
    let mut max_sim = vec![0f32; candidates.len()];
    let mut covered = vec![0usize; candidates.len()];
    let keys: Vec<S::Key> = candidates
        .iter()
        .map(|c| similarity.key(c.borrow().title))
        .collect();
    // Bounds against no picks, in candidate order. Candidates come sorted best first, so
    // these are already in the heap's order: `candidates[fresh..]` wait outside the heap, and
    // only the candidates brought up to date go in — a heap of tens instead of the whole
    // list. (Should the list not be sorted, every bound goes into the heap.)
    let initial: Vec<Bound> = candidates
        .iter()
        .enumerate()
        .map(|(index, c)| Bound {
            value: value(c, 0.0),
            index,
        })
        .collect();
    let sorted = initial.windows(2).all(|w| w[0] > w[1]);
    let mut fresh = if sorted { 0 } else { initial.len() };
    let mut bounds: std::collections::BinaryHeap<Bound> = if sorted {
        std::collections::BinaryHeap::new()
    } else {
        initial.iter().copied().collect()
    };
    let mut picked: Vec<usize> = Vec::with_capacity(k.min(candidates.len()));
    while picked.len() < k {
        // The best bound of all: the heap's top or the first fresh one.
        let index = match (bounds.peek(), initial.get(fresh)) {
            (Some(top), Some(next)) if top < next => {
                fresh += 1;
                next.index
            }
            (None, Some(next)) => {
                fresh += 1;
                next.index
            }
            (Some(_), _) => match bounds.pop() {
                Some(top) => top.index,
                None => break,
            },
            (None, None) => break,
        };
        if covered[index] == picked.len() {
            picked.push(index);
            continue;
        }
        let mut most = max_sim[index];
        if most < 1.0 {
            for &p in &picked[covered[index]..] {
                let s = similarity.between(keys[p], keys[index]);
                if s > most {
                    most = s;
                    if most >= 1.0 {
                        break;
                    }
                }
            }
        }
        max_sim[index] = most;
        covered[index] = picked.len();
        bounds.push(Bound {
            value: value(&candidates[index], max_sim[index]),
            index,
        });
    }
    let mut slots: Vec<Option<C>> = candidates.drain(..).map(Some).collect();
    picked.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// A candidate's MMR value as last computed (an upper bound of its current one), ordered so
/// that the heap's top is the highest value and, among equal values, the earliest candidate.
#[derive(Clone, Copy)]
struct Bound {
    value: f32,
    index: usize,
}

impl Ord for Bound {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.value
            .total_cmp(&other.value)
            .then_with(|| other.index.cmp(&self.index))
    }
}

impl PartialOrd for Bound {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Bound {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Bound {}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(title: TitleIdx, score: f32) -> Candidate {
        Candidate {
            title,
            score,
            reason: None,
            evidence: vec![],
            progress: None,
        }
    }

    #[test]
    fn zero_strength_keeps_order() {
        let out = mmr(
            vec![c(0, 3.0), c(1, 2.0), c(2, 1.0)],
            Diversity::NONE,
            2,
            &|_, _| 1.0,
        );
        assert_eq!(out.iter().map(|c| c.title).collect::<Vec<_>>(), vec![0, 1]);
    }

    #[test]
    fn strong_diversity_skips_a_near_duplicate() {
        // 0 and 1 are identical in genre; 2 is different and a little less relevant.
        let sim = |a: TitleIdx, b: TitleIdx| {
            if a.min(b) == 0 && a.max(b) == 1 {
                1.0
            } else {
                0.0
            }
        };
        let out = mmr(
            vec![c(0, 1.0), c(1, 0.95), c(2, 0.8)],
            Diversity::new(0.5).unwrap(),
            2,
            &sim,
        );
        assert_eq!(out.iter().map(|c| c.title).collect::<Vec<_>>(), vec![0, 2]);
    }

    /// The greedy loop as first written: every remaining candidate re-scored after each pick.
    fn mmr_eager(
        candidates: &[Candidate],
        lambda: f32,
        k: usize,
        similarity: impl Fn(TitleIdx, TitleIdx) -> f32,
    ) -> Vec<TitleIdx> {
        let best = candidates
            .iter()
            .map(|c| c.score)
            .fold(f32::MIN_POSITIVE, f32::max);
        let mut max_sim = vec![0f32; candidates.len()];
        let mut picked = Vec::new();
        let mut remaining: Vec<usize> = (0..candidates.len()).collect();
        while picked.len() < k && !remaining.is_empty() {
            let (pos, _) = remaining
                .iter()
                .enumerate()
                .map(|(pos, &c)| {
                    let relevance = candidates[c].score / best;
                    (pos, (1.0 - lambda) * relevance - lambda * max_sim[c])
                })
                .fold((usize::MAX, f32::NEG_INFINITY), |acc, x| {
                    if x.1 > acc.1 { x } else { acc }
                });
            let chosen = remaining.remove(pos);
            for &c in &remaining {
                let s = similarity(candidates[chosen].title, candidates[c].title);
                if s > max_sim[c] {
                    max_sim[c] = s;
                }
            }
            picked.push(candidates[chosen].title);
        }
        picked
    }

    proptest::proptest! {
        /// The lazy greedy picks exactly what the eager one does, ties included (scores and
        /// genre sets drawn from few values, so ties are common) — on rows sorted best first
        /// as sources give them, and on unsorted ones (every bound in the heap).
        #[test]
        fn lazy_picks_what_eager_picks(
            scores in proptest::collection::vec(0u8..6, 2..60),
            genres in proptest::collection::vec(0u64..16, 60),
            lambda in proptest::sample::select(vec![0.1, 0.3, 0.5, 0.7, 1.0]),
            k in 1usize..30,
            sorted in proptest::bool::weighted(0.8),
        ) {
            let mut candidates: Vec<Candidate> = scores
                .iter()
                .enumerate()
                .map(|(i, s)| c(i as TitleIdx, f32::from(*s) / 2.0 + 0.25))
                .collect();
            if sorted {
                candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
            }
            let sim = |a: TitleIdx, b: TitleIdx| {
                let (ga, gb) = (genres[a as usize], genres[b as usize]);
                if ga == 0 || gb == 0 {
                    return 0.0;
                }
                (ga & gb).count_ones() as f32 / (ga | gb).count_ones() as f32
            };
            let eager = mmr_eager(&candidates, lambda as f32, k, sim);
            let lazy: Vec<TitleIdx> = mmr(candidates, Diversity::new(lambda).unwrap(), k, &sim)
                .iter()
                .map(|c| c.title)
                .collect();
            proptest::prop_assert_eq!(lazy, eager);
        }
    }

    #[test]
    fn strength_is_bounded() {
        assert!(Diversity::new(1.5).is_err());
        assert!(Diversity::new(-0.1).is_err());
    }
}
