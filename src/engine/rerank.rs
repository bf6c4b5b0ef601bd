//! Diversity rerank: maximal marginal relevance over genre similarity.

use serde::Deserialize;

use crate::domain::{ParseError, in_range};

use crate::engine::catalog::TitleIdx;
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

/// Picks `k` candidates greedily, each maximising
/// `(1 - λ) · relevance − λ · max similarity to those already picked`,
/// with relevance the candidate's score divided by the best score. `candidates` must be
/// sorted best first; with λ = 0 the order is kept.
pub fn mmr(
    mut candidates: Vec<Candidate>,
    strength: Diversity,
    k: usize,
    similarity: impl Fn(TitleIdx, TitleIdx) -> f32,
) -> Vec<Candidate> {
    if strength.get() == 0.0 || candidates.len() <= 1 {
        candidates.truncate(k);
        return candidates;
    }
    let lambda = strength.get() as f32;
    let best = candidates
        .iter()
        .map(|c| c.score)
        .fold(f32::MIN_POSITIVE, f32::max);
    // Most similar already-picked title, per remaining candidate; updated incrementally.
    let mut max_sim = vec![0f32; candidates.len()];
    let mut picked = Vec::with_capacity(k.min(candidates.len()));
    let mut remaining: Vec<usize> = (0..candidates.len()).collect();
    while picked.len() < k && !remaining.is_empty() {
        let (pos, _) = remaining
            .iter()
            .enumerate()
            .map(|(pos, &c)| {
                let relevance = candidates[c].score / best;
                (pos, (1.0 - lambda) * relevance - lambda * max_sim[c])
            })
            // Ties go to the earlier (more relevant) candidate.
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
        picked.push(chosen);
    }
    let mut slots: Vec<Option<Candidate>> = candidates.drain(..).map(Some).collect();
    picked.into_iter().filter_map(|i| slots[i].take()).collect()
}

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
            |_, _| 1.0,
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
            sim,
        );
        assert_eq!(out.iter().map(|c| c.title).collect::<Vec<_>>(), vec![0, 2]);
    }

    #[test]
    fn strength_is_bounded() {
        assert!(Diversity::new(1.5).is_err());
        assert!(Diversity::new(-0.1).is_err());
    }
}
