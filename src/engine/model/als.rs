//! Latent embeddings for titles and profiles: implicit-feedback ALS (Hu, Koren & Volinsky,
//! "Collaborative Filtering for Implicit Feedback Datasets", 2008), each least-squares
//! half-step solved approximately with a few warm-started conjugate-gradient steps (Takács,
//! Pilászy & Tikk, "Applications of the conjugate gradient method for implicit feedback
//! collaborative filtering", 2011), which keeps one iteration linear in the interactions.
//!
//! Every (profile, title) pair is a preference of 1 with confidence `c = 1 + alpha · w`; pairs
//! never seen are preferences of 0 with confidence 1. Each half-step minimises, for one row x,
//!
//!   Σ_j c_j (p_j − x·y_j)² + λ‖x‖²   ⇔   (YᵀY + Σ_{j seen} (c_j − 1) y_j y_jᵀ + λI) x = Σ_{j seen} c_j y_j
//!
//! Profiles are not stored with the model: serving folds a profile in from its current
//! history by solving the same system exactly (`ItemFactors::fold_in`), so a new event
//! changes the profile's vector on the next request without retraining.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::linalg::cholesky_solve;
use crate::rng::SplitMix64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlsParams {
    /// Embedding dimensions. 0 turns embeddings (and the ANN index) off.
    pub factors: usize,
    pub iterations: usize,
    /// λ, the L2 regularisation of every row.
    pub regularization: f32,
    /// Confidence of an interaction of weight w is 1 + alpha · w.
    pub alpha: f32,
    /// Conjugate-gradient steps per row and half-step (warm-started from the last iteration).
    pub cg_steps: usize,
    pub seed: u64,
}

impl Default for AlsParams {
    fn default() -> Self {
        Self {
            factors: 64,
            iterations: 12,
            // Tuned on the VALID split of ml100k-temporal-80-20-v1 (README, "Recommendation
            // quality"): λ 30 and α 20 of {10, 30, 50, 100} × {5, 20, 40, 80}.
            regularization: 30.0,
            alpha: 20.0,
            cg_steps: 3,
            seed: 42,
        }
    }
}

/// A sparse rows × cols matrix of confidence weights, rows sorted and duplicate-free.
#[derive(Debug, Clone)]
pub struct Sparse {
    offsets: Vec<usize>,
    cols: Vec<u32>,
    weights: Vec<f32>,
}

impl Sparse {
    /// Builds from (row, col, weight) triples; a pair seen more than once sums its weights.
    pub fn from_triples(
        rows: usize,
        triples: impl Iterator<Item = (u32, u32, f32)> + Clone,
    ) -> Self {
        let mut offsets = vec![0usize; rows + 1];
        for (r, _, _) in triples.clone() {
            offsets[r as usize + 1] += 1;
        }
        for r in 0..rows {
            offsets[r + 1] += offsets[r];
        }
        let nnz = offsets[rows];
        let mut cols = vec![0u32; nnz];
        let mut weights = vec![0f32; nnz];
        let mut next = offsets.clone();
        for (r, c, w) in triples {
            let at = next[r as usize];
            cols[at] = c;
            weights[at] = w;
            next[r as usize] += 1;
        }
        // Sort each row by column and merge duplicates in place, then compact.
        let mut write = 0;
        let mut new_offsets = vec![0usize; rows + 1];
        let mut row: Vec<(u32, f32)> = Vec::new();
        for r in 0..rows {
            row.clear();
            row.extend((offsets[r]..offsets[r + 1]).map(|k| (cols[k], weights[k])));
            row.sort_unstable_by_key(|e| e.0);
            let mut k = 0;
            while k < row.len() {
                let (c, mut w) = row[k];
                k += 1;
                while k < row.len() && row[k].0 == c {
                    w += row[k].1;
                    k += 1;
                }
                cols[write] = c;
                weights[write] = w;
                write += 1;
            }
            new_offsets[r + 1] = write;
        }
        cols.truncate(write);
        weights.truncate(write);
        Self {
            offsets: new_offsets,
            cols,
            weights,
        }
    }

    pub fn rows(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn nnz(&self) -> usize {
        self.cols.len()
    }

    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let span = self.offsets[r]..self.offsets[r + 1];
        (&self.cols[span.clone()], &self.weights[span])
    }

    /// The same matrix with rows and columns swapped.
    pub fn transpose(&self, cols: usize) -> Self {
        let triples = (0..self.rows()).flat_map(|r| {
            let (cs, ws) = self.row(r);
            cs.iter().zip(ws).map(move |(&c, &w)| (c, r as u32, w))
        });
        Self::from_triples(cols, triples)
    }
}

/// Row-major dense factors: `rows` vectors of `dim` floats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Factors {
    pub dim: usize,
    pub data: Vec<f32>,
}

impl Factors {
    fn random(rows: usize, dim: usize, seed: u64) -> Self {
        let mut rng = SplitMix64(seed);
        let scale = 0.1 / (dim as f64).sqrt();
        let data = (0..rows * dim)
            .map(|_| ((rng.unit() - 0.5) * 2.0 * scale) as f32)
            .collect();
        Self { dim, data }
    }

    pub fn rows(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }

    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.dim..(r + 1) * self.dim]
    }

    /// YᵀY, dim × dim, row-major.
    fn gram(&self) -> Vec<f32> {
        let d = self.dim;
        // Partial sums per chunk of rows, added at the end: parallel, and a million-row
        // running sum in f32 would lose precision.
        self.data
            .par_chunks(d * 4096)
            .map(|chunk| {
                let mut g = vec![0f32; d * d];
                for y in chunk.chunks_exact(d) {
                    for a in 0..d {
                        let ya = y[a];
                        let row = &mut g[a * d..(a + 1) * d];
                        for (gb, yb) in row.iter_mut().zip(y) {
                            *gb += ya * yb;
                        }
                    }
                }
                g
            })
            .reduce(
                || vec![0f32; d * d],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                    a
                },
            )
    }
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent accumulators: a single running sum is a dependency chain the compiler
    // may not vectorise (floating-point addition is not associative).
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8 * 8;
    for (x, y) in a[..chunks].chunks_exact(8).zip(b[..chunks].chunks_exact(8)) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f32 = a[chunks..]
        .iter()
        .zip(&b[chunks..])
        .map(|(x, y)| x * y)
        .sum();
    acc.iter().sum::<f32>() + tail
}

/// The trained embeddings: titles (columns of the interaction matrix) and the profiles they
/// were trained with (discarded after training; serving folds profiles in).
pub struct Trained {
    pub profiles: Factors,
    pub titles: Factors,
}

/// Trains on `by_profile` (profiles × titles, weights w ≥ 0).
pub fn train(by_profile: &Sparse, titles: usize, params: &AlsParams) -> Trained {
    let d = params.factors;
    let by_title = by_profile.transpose(titles);
    let mut profiles = Factors::random(by_profile.rows(), d, params.seed);
    let mut items = Factors::random(titles, d, params.seed ^ 0x5eed);
    for _ in 0..params.iterations {
        half_step(&mut profiles, &items, by_profile, params);
        half_step(&mut items, &profiles, &by_title, params);
    }
    Trained {
        profiles,
        titles: items,
    }
}

/// Re-solves every row of `x` against the fixed `y`.
fn half_step(x: &mut Factors, y: &Factors, matrix: &Sparse, params: &AlsParams) {
    let d = x.dim;
    let mut gram = y.gram();
    for a in 0..d {
        gram[a * d + a] += params.regularization;
    }
    x.data.par_chunks_mut(d).enumerate().for_each_init(
        || Scratch::new(d),
        |scratch, (r, row)| {
            let (cols, weights) = matrix.row(r);
            cg_solve(row, &gram, y, cols, weights, params, scratch);
        },
    );
}

struct Scratch {
    r: Vec<f32>,
    p: Vec<f32>,
    ap: Vec<f32>,
}

impl Scratch {
    fn new(d: usize) -> Self {
        Self {
            r: vec![0.0; d],
            p: vec![0.0; d],
            ap: vec![0.0; d],
        }
    }
}

/// out = (G + Σ (c_j − 1) y_j y_jᵀ) v, where G already includes λI.
fn apply(
    out: &mut [f32],
    v: &[f32],
    gram: &[f32],
    y: &Factors,
    cols: &[u32],
    weights: &[f32],
    alpha: f32,
) {
    let d = v.len();
    for (a, o) in out.iter_mut().enumerate() {
        *o = dot(&gram[a * d..(a + 1) * d], v);
    }
    for (&j, &w) in cols.iter().zip(weights) {
        let yj = y.row(j as usize);
        let s = alpha * w * dot(yj, v);
        for (o, yv) in out.iter_mut().zip(yj) {
            *o += s * yv;
        }
    }
}

/// A few conjugate-gradient steps on one row, starting from its current value.
fn cg_solve(
    x: &mut [f32],
    gram: &[f32],
    y: &Factors,
    cols: &[u32],
    weights: &[f32],
    params: &AlsParams,
    s: &mut Scratch,
) {
    // r = b − A x, with b = Σ c_j y_j.
    apply(&mut s.ap, x, gram, y, cols, weights, params.alpha);
    for (r, ax) in s.r.iter_mut().zip(&s.ap) {
        *r = -ax;
    }
    for (&j, &w) in cols.iter().zip(weights) {
        let c = 1.0 + params.alpha * w;
        for (r, yv) in s.r.iter_mut().zip(y.row(j as usize)) {
            *r += c * yv;
        }
    }
    s.p.copy_from_slice(&s.r);
    let mut rs_old = dot(&s.r, &s.r);
    for _ in 0..params.cg_steps {
        if rs_old < 1e-12 {
            break;
        }
        apply(&mut s.ap, &s.p, gram, y, cols, weights, params.alpha);
        let step = rs_old / dot(&s.p, &s.ap).max(f32::MIN_POSITIVE);
        for ((xk, pk), (rk, apk)) in x.iter_mut().zip(&s.p).zip(s.r.iter_mut().zip(&s.ap)) {
            *xk += step * pk;
            *rk -= step * apk;
        }
        let rs_new = dot(&s.r, &s.r);
        let beta = rs_new / rs_old;
        for (p, r) in s.p.iter_mut().zip(&s.r) {
            *p = r + beta * *p;
        }
        rs_old = rs_new;
    }
}

/// Title embeddings as serving uses them, with YᵀY + λI precomputed for fold-in.
#[derive(Debug, Clone, Default)]
pub struct ItemFactors {
    factors: Option<Factors>,
    gram: Vec<f32>,
    alpha: f32,
}

impl ItemFactors {
    pub fn new(factors: Factors, params: &AlsParams) -> Self {
        let d = factors.dim;
        let mut gram = factors.gram();
        for a in 0..d {
            gram[a * d + a] += params.regularization;
        }
        Self {
            factors: Some(factors),
            gram,
            alpha: params.alpha,
        }
    }

    /// The profile vector that best explains `history` ((title row, weight w) pairs) given the
    /// fixed title vectors: the exact solution of one ALS half-step for this one profile.
    /// `None` without embeddings or without history.
    pub fn fold_in(&self, history: &[(u32, f32)]) -> Option<Vec<f32>> {
        let y = self.factors.as_ref()?;
        let history: Vec<(u32, f32)> = history
            .iter()
            .copied()
            .filter(|(j, w)| (*j as usize) < y.rows() && *w > 0.0)
            .collect();
        if history.is_empty() {
            return None;
        }
        let d = y.dim;
        let mut a: Vec<f64> = self.gram.iter().map(|v| *v as f64).collect();
        let mut b = vec![0f64; d];
        for &(j, w) in &history {
            let yj = y.row(j as usize);
            let c = 1.0 + (self.alpha * w) as f64;
            for p in 0..d {
                b[p] += c * yj[p] as f64;
                let s = (c - 1.0) * yj[p] as f64;
                // The lower triangle only: it is all `cholesky_solve` reads (half the work of
                // the rank-one update, the same values where it matters).
                for (q, v) in a[p * d..=p * d + p].iter_mut().enumerate() {
                    *v += s * yj[q] as f64;
                }
            }
        }
        cholesky_solve(&mut a, &mut b, d)?;
        Some(b.into_iter().map(|v| v as f32).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_merges_duplicates_and_transposes() {
        let m = Sparse::from_triples(
            2,
            [(1, 2, 1.0), (0, 1, 1.0), (1, 0, 0.5), (1, 2, 2.0)].into_iter(),
        );
        assert_eq!(m.nnz(), 3);
        assert_eq!(m.row(0), (&[1u32][..], &[1.0f32][..]));
        assert_eq!(m.row(1), (&[0u32, 2][..], &[0.5f32, 3.0][..]));
        let t = m.transpose(3);
        assert_eq!(t.row(0), (&[1u32][..], &[0.5f32][..]));
        assert_eq!(t.row(1), (&[0u32][..], &[1.0f32][..]));
        assert_eq!(t.row(2), (&[1u32][..], &[3.0f32][..]));
    }

    #[test]
    fn fold_in_matches_the_one_dimensional_closed_form() {
        // d = 1, titles y = [2, 1], λ = 1, α = 1. A profile that watched title 0 with w = 3
        // (c = 4): x = c·y0 / (y0² + y1² + λ + (c − 1)·y0²) = 8 / (4 + 1 + 1 + 12) = 4/9.
        let params = AlsParams {
            factors: 1,
            regularization: 1.0,
            alpha: 1.0,
            ..AlsParams::default()
        };
        let f = ItemFactors::new(
            Factors {
                dim: 1,
                data: vec![2.0, 1.0],
            },
            &params,
        );
        let x = f.fold_in(&[(0, 3.0)]).unwrap();
        assert!((x[0] - 4.0 / 9.0).abs() < 1e-6, "{x:?}");
        assert!(f.fold_in(&[]).is_none());
        assert!(ItemFactors::default().fold_in(&[(0, 1.0)]).is_none());
    }

    #[test]
    fn enough_cg_steps_reach_the_exact_solution() {
        let params = AlsParams {
            factors: 4,
            cg_steps: 4, // CG is exact in d steps (up to rounding)
            ..AlsParams::default()
        };
        let y = Factors::random(6, 4, 7);
        let y = Factors {
            dim: 4,
            data: y.data.iter().map(|v| v * 30.0).collect(),
        };
        let items = ItemFactors::new(y.clone(), &params);
        let cols = [1u32, 4];
        let weights = [1.0f32, 0.5];
        let exact = items.fold_in(&[(1, 1.0), (4, 0.5)]).unwrap();
        let mut x = vec![0f32; 4];
        cg_solve(
            &mut x,
            &items.gram,
            &y,
            &cols,
            &weights,
            &params,
            &mut Scratch::new(4),
        );
        for (a, b) in x.iter().zip(&exact) {
            assert!((a - b).abs() < 1e-3 * (1.0 + b.abs()), "{x:?} vs {exact:?}");
        }
    }

    #[test]
    fn two_taste_groups_separate() {
        // Profiles 0–9 watch titles 0–4, profiles 10–19 watch titles 5–9, each missing one
        // title of its group. Each profile's missing in-group title must outscore every title
        // of the other group.
        let triples: Vec<(u32, u32, f32)> = (0..20u32)
            .flat_map(|p| {
                let base = if p < 10 { 0 } else { 5 };
                (0..5u32)
                    .filter(move |k| k != &(p % 5))
                    .map(move |k| (p, base + k, 1.0))
            })
            .collect();
        let m = Sparse::from_triples(20, triples.into_iter());
        let params = AlsParams {
            factors: 4,
            iterations: 10,
            ..AlsParams::default()
        };
        let t = train(&m, 10, &params);
        for p in 0..20usize {
            let base = if p < 10 { 0 } else { 5 };
            let other = if p < 10 { 5 } else { 0 };
            let x = t.profiles.row(p);
            let missing = dot(x, t.titles.row(base + p % 5));
            for j in other..other + 5 {
                assert!(missing > dot(x, t.titles.row(j)), "profile {p}, title {j}");
            }
        }
        // Training is deterministic for a seed.
        assert_eq!(train(&m, 10, &params).titles, t.titles);
    }
}
