//! EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019): the item-item
//! weight matrix that best reconstructs each profile's interactions from its other interactions,
//! in closed form:
//!
//! ```text
//! P = (XᵀX + λI)⁻¹        B = I − P · diag(1 / diag(P)),  diag(B) = 0
//! ```
//!
//! so `B[i][j] = −P[i][j] / P[j][j]` for `i ≠ j`, and a profile with interactions `x` scores
//! title `j` as `Σᵢ xᵢ · B[i][j]`. Row `i` of `B` is what having watched `i` says about every
//! other title, which is the shape the serving side reads (anchor → weighted titles).
//!
//! The inverse is a dense Gauss-Jordan on f64: O(n³) in the number of titles with interactions
//! (≈ 1–2 s for MovieLens' 1,682 in a release build). It is the one place training is cubic, so
//! `TrainParams::ease_max_titles` bounds it. Above that, `local_column` solves each column of
//! B on its own, restricted to the title's nearest co-occurrence neighbours: the same closed
//! form, column j being `B[·][j] = (G_{−j,−j} + λI)⁻¹ G_{−j,j}`, with `−j` narrowed from "every
//! other title" to "the K titles most co-watched with j" — linear in the catalogue.

use super::linalg::cholesky_solve;

/// The Gram matrix `XᵀX` of binary interactions, dense row-major `n × n`, from each profile's
/// distinct item indexes (each `< n`).
pub fn gram(n: usize, profiles: &[Vec<u32>]) -> Vec<f64> {
    let mut g = vec![0f64; n * n];
    for items in profiles {
        for &i in items {
            let row = &mut g[i as usize * n..(i as usize + 1) * n];
            for &j in items {
                row[j as usize] += 1.0;
            }
        }
    }
    g
}

/// Inverts a symmetric positive-definite `n × n` row-major matrix in place (Gauss-Jordan
/// without pivoting, which is stable for SPD matrices: every pivot is a positive Schur
/// complement). Returns `false`, leaving `a` unspecified, if a pivot is not positive.
pub fn invert_spd(a: &mut [f64], n: usize) -> bool {
    assert_eq!(a.len(), n * n, "matrix is not n × n");
    let mut pivot_row = vec![0f64; n];
    for k in 0..n {
        let p = a[k * n + k];
        if p.is_nan() || p <= 0.0 {
            return false;
        }
        // Row k becomes the pivot row divided by the pivot; its column k becomes 1/p.
        a[k * n + k] = 1.0;
        for x in &mut a[k * n..(k + 1) * n] {
            *x /= p;
        }
        pivot_row.copy_from_slice(&a[k * n..(k + 1) * n]);
        for i in 0..n {
            if i == k {
                continue;
            }
            let row = &mut a[i * n..(i + 1) * n];
            let f = row[k];
            if f == 0.0 {
                continue;
            }
            row[k] = 0.0;
            for (x, &pk) in row.iter_mut().zip(&pivot_row) {
                *x -= f * pk;
            }
        }
    }
    true
}

/// The EASE weights for `n` items from each profile's distinct item indexes, dense row-major:
/// `b[i * n + j]` is the weight of having watched `i` towards `j`. `None` if the regularised
/// Gram matrix could not be inverted (only possible for `lambda <= 0`).
pub fn weights(n: usize, profiles: &[Vec<u32>], lambda: f64) -> Option<Vec<f64>> {
    let mut p = gram(n, profiles);
    for i in 0..n {
        p[i * n + i] += lambda;
    }
    if !invert_spd(&mut p, n) {
        return None;
    }
    let diag: Vec<f64> = (0..n).map(|j| p[j * n + j]).collect();
    for i in 0..n {
        let row = &mut p[i * n..(i + 1) * n];
        for (j, x) in row.iter_mut().enumerate() {
            *x = if i == j { 0.0 } else { -*x / diag[j] };
        }
    }
    Some(p)
}

/// One title's column of EASE, restricted to its neighbourhood (see the module comment).
/// `lists[j]` are title j's most co-watched titles as (title, profiles who watched both),
/// `counts[j]` the profiles who watched j. A pair within the neighbourhood that neither's list
/// holds counts as `min(unknown[a], unknown[b])` — what the lists imply at most (see
/// `model::local_ease_weights` for why not 0): the approximation that makes this linear.
/// Returns (i, B[i][j]) for the titles i of j's neighbourhood; empty if the approximated
/// system is not positive-definite.
pub fn local_column(
    j: usize,
    lists: &[Vec<(u32, u32)>],
    counts: &[u32],
    unknown: &[f64],
    lambda: f64,
    position: &mut [u32],
) -> Vec<(u32, f64)> {
    let hood = &lists[j];
    let k = hood.len();
    if k == 0 {
        return Vec::new();
    }
    for (a, (i, _)) in hood.iter().enumerate() {
        position[*i as usize] = a as u32;
    }
    let mut gram = vec![0f64; k * k];
    for (a, (i, _)) in hood.iter().enumerate() {
        for (b, (o, _)) in hood.iter().enumerate() {
            gram[a * k + b] = unknown[*i as usize].min(unknown[*o as usize]);
        }
    }
    for (a, (i, _)) in hood.iter().enumerate() {
        gram[a * k + a] = counts[*i as usize] as f64 + lambda;
        for &(other, both) in &lists[*i as usize] {
            let b = position[other as usize];
            if b != u32::MAX && b as usize != a {
                // Symmetric by nature; either list may be the one that holds the pair.
                let both = both as f64;
                let (ab, ba) = (a * k + b as usize, b as usize * k + a);
                gram[ab] = gram[ab].max(both);
                gram[ba] = gram[ba].max(both);
            }
        }
    }
    for (i, _) in hood {
        position[*i as usize] = u32::MAX;
    }
    let mut rhs: Vec<f64> = hood.iter().map(|(_, both)| *both as f64).collect();
    if cholesky_solve(&mut gram, &mut rhs, k).is_none() {
        return Vec::new();
    }
    hood.iter().map(|(i, _)| *i).zip(rhs).collect()
}

/// The `k` largest weights of one row by magnitude, largest first (ties by index, so the result
/// is deterministic), without the zero diagonal. Negative weights are kept: they carry much of
/// EASE's accuracy (on MovieLens-100K, keeping only positive weights loses a tenth of NDCG).
pub fn top_k_by_magnitude(row: &[f64], k: usize) -> Vec<(u32, f64)> {
    let mut list: Vec<(u32, f64)> = row
        .iter()
        .enumerate()
        .filter(|(_, w)| **w != 0.0)
        .map(|(j, w)| (j as u32, *w))
        .collect();
    let order =
        |a: &(u32, f64), b: &(u32, f64)| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0));
    if k < list.len() {
        list.select_nth_unstable_by(k, order);
        list.truncate(k);
    }
    list.sort_by(order);
    list
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_local_column_is_the_closed_form_over_the_neighbourhood() {
        // Three titles; 0 and 1 co-watched by 4 profiles, 0 and 2 by 2, 1 and 2 never (so the
        // pair is in neither list). Counts 10, 6, 3; λ = 1. Column of title 0 over {1, 2}:
        // [[6 + 1, 0], [0, 3 + 1]] b = [4, 2]  →  b = [4/7, 1/2].
        let lists = vec![vec![(1, 4), (2, 2)], vec![(0, 4)], vec![(0, 2)]];
        let counts = [10, 6, 3];
        let mut position = vec![u32::MAX; 3];
        let col = local_column(0, &lists, &counts, &[0.0; 3], 1.0, &mut position);
        assert_eq!(col.len(), 2);
        assert_eq!((col[0].0, col[1].0), (1, 2));
        assert!((col[0].1 - 4.0 / 7.0).abs() < 1e-12 && (col[1].1 - 0.5).abs() < 1e-12);
        assert!(
            position.iter().all(|p| *p == u32::MAX),
            "scratch is left clean"
        );
        // Column of title 1 over {0}: (10 + 1) b = 4.
        let col = local_column(1, &lists, &counts, &[0.0; 3], 1.0, &mut position);
        assert!((col[0].1 - 4.0 / 11.0).abs() < 1e-12);
        // If the lists say a missing pair was co-watched at most once, (1, 2) counts as 1:
        // [[7, 1], [1, 4]] b = [4, 2]  →  b = [14/27, 10/27].
        let col = local_column(0, &lists, &counts, &[1.0; 3], 1.0, &mut position);
        assert!((col[0].1 - 14.0 / 27.0).abs() < 1e-12 && (col[1].1 - 10.0 / 27.0).abs() < 1e-12);
    }

    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn inverts_a_known_spd_matrix() {
        // [[4,2,0],[2,5,1],[0,1,3]] has determinant 4·14 − 2·6 = 44 and adjugate below.
        let mut a = vec![4.0, 2.0, 0.0, 2.0, 5.0, 1.0, 0.0, 1.0, 3.0];
        assert!(invert_spd(&mut a, 3));
        let expected = [14.0, -6.0, 2.0, -6.0, 12.0, -4.0, 2.0, -4.0, 16.0].map(|x| x / 44.0);
        for (got, want) in a.iter().zip(expected) {
            assert!(close(*got, want), "{a:?}");
        }
    }

    #[test]
    fn refuses_a_singular_matrix() {
        let mut a = vec![1.0, 1.0, 1.0, 1.0];
        assert!(!invert_spd(&mut a, 2));
    }

    #[test]
    fn two_items_reduce_to_ridge_regression_on_the_other_item() {
        // Profiles {0,1} and {0}: XᵀX = [[2,1],[1,1]]. With λ = 1, regressing item 1 on item 0
        // gives 1 / (2 + 1) and item 0 on item 1 gives 1 / (1 + 1).
        let b = weights(2, &[vec![0, 1], vec![0]], 1.0).unwrap();
        assert!(close(b[0], 0.0) && close(b[3], 0.0));
        assert!(close(b[1], 1.0 / 3.0), "{b:?}"); // B[0][1]: watched 0 → score of 1
        assert!(close(b[2], 1.0 / 2.0), "{b:?}"); // B[1][0]: watched 1 → score of 0
    }

    #[test]
    fn three_items_match_the_closed_form() {
        // Profiles {0,1}, {1,2}, {0,1,2}; XᵀX + 1·I = [[3,2,1],[2,4,2],[1,2,3]].
        // Its inverse is adj/det with det = 3·8 − 2·4 + 1·0 = 16 and
        // adj = [[8,-4,0],[-4,8,-4],[0,-4,8]], so P = adj / 16.
        let b = weights(3, &[vec![0, 1], vec![1, 2], vec![0, 1, 2]], 1.0).unwrap();
        // B[i][j] = −P[i][j] / P[j][j].
        assert!(close(b[1], 4.0 / 8.0)); // B[0][1]
        assert!(close(b[2], 0.0)); // B[0][2]: 0 and 2 are independent given 1
        assert!(close(b[3], 4.0 / 8.0)); // B[1][0]
        assert!(close(b[5], 4.0 / 8.0)); // B[1][2]
        assert!(close(b[7], 4.0 / 8.0)); // B[2][1]
    }

    #[test]
    fn top_k_keeps_the_largest_magnitudes_in_order() {
        let row = [0.0, -0.5, 0.2, 0.5, -0.1];
        assert_eq!(
            top_k_by_magnitude(&row, 3),
            vec![(1, -0.5), (3, 0.5), (2, 0.2)]
        );
        assert_eq!(top_k_by_magnitude(&row, 10).len(), 4);
    }
}
