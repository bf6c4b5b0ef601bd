//! The small dense linear algebra training needs, in f64.

/// Solves A x = b in place (x ends up in `b`) for symmetric positive-definite A. Reads only
/// the lower triangle of `a` (and the diagonal): callers may leave the upper one stale.
pub fn cholesky_solve(a: &mut [f64], b: &mut [f64], n: usize) -> Option<()> {
    for j in 0..n {
        let mut diag = a[j * n + j];
        for k in 0..j {
            diag -= a[j * n + k] * a[j * n + k];
        }
        if diag <= 0.0 {
            return None;
        }
        let diag = diag.sqrt();
        a[j * n + j] = diag;
        for i in j + 1..n {
            let mut v = a[i * n + j];
            for k in 0..j {
                v -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = v / diag;
        }
    }
    for i in 0..n {
        let mut v = b[i];
        for k in 0..i {
            v -= a[i * n + k] * b[k];
        }
        b[i] = v / a[i * n + i];
    }
    for i in (0..n).rev() {
        let mut v = b[i];
        for k in i + 1..n {
            v -= a[k * n + i] * b[k];
        }
        b[i] = v / a[i * n + i];
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_hand_checked_system() {
        // [[4, 2], [2, 3]] x = [2, 5]  →  x = [-0.5, 2].
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let mut b = vec![2.0, 5.0];
        cholesky_solve(&mut a, &mut b, 2).unwrap();
        assert!(
            (b[0] + 0.5).abs() < 1e-12 && (b[1] - 2.0).abs() < 1e-12,
            "{b:?}"
        );
        assert!(cholesky_solve(&mut [0.0], &mut [1.0], 1).is_none());
    }

    #[test]
    fn the_upper_triangle_is_never_read() {
        let a = [4.0, 2.0, 0.5, 2.0, 3.0, 0.25, 0.5, 0.25, 2.0];
        let mut stale = a;
        for (i, j) in [(0, 1), (0, 2), (1, 2)] {
            stale[i * 3 + j] = f64::NAN;
        }
        let (mut x, mut y) = ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]);
        cholesky_solve(&mut a.clone(), &mut x, 3).unwrap();
        cholesky_solve(&mut stale, &mut y, 3).unwrap();
        assert_eq!(x, y);
    }
}
