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
//! `TrainParams::ease_max_titles` bounds it.

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
