//! Small dense linear algebra in `f64`: the eigendecomposition of a symmetric matrix,
//! Gram–Schmidt orthonormalisation and the principal angles between two subspaces.
//!
//! Matrices are row-major `&[f64]` slices with their sizes passed alongside (`matrix[i·n + j]`
//! is row `i`, column `j`), so that a caller's `Vec` works without a matrix type. These are the
//! pieces [`crate::pca`] needs, sized for a few hundred to a thousand dimensions (MNIST's 784);
//! they are not a general linear algebra library.
//!
//! | function | what it computes | NumPy / PyTorch |
//! |---|---|---|
//! | [`symmetric_eigen`] | `A = Σ_k λ_k v_k v_kᵀ`, eigenvalues descending, eigenvectors as rows | `numpy.linalg.eigh` (ascending, vectors as columns), `torch.linalg.eigh` |
//! | [`orthonormalize_rows`] | an orthonormal basis of the row space, row by row (modified Gram–Schmidt, twice) | `numpy.linalg.qr(a.T)[0].T` (up to signs) |
//! | [`principal_angles`] | the angles `θ_1 ≤ … ≤ θ_k` between the row spaces of two `k × n` matrices | `scipy.linalg.subspace_angles` (descending there) |

use std::fmt;

/// The eigendecomposition of a symmetric `n × n` matrix, `A = Σ_k values[k] · v_k v_kᵀ`.
#[derive(Debug, Clone, PartialEq)]
pub struct SymmetricEigen {
    /// The `n` eigenvalues, in descending order.
    pub values: Vec<f64>,
    /// `n × n`, row-major: row `k` (`vectors[k·n..(k + 1)·n]`) is the unit eigenvector of
    /// `values[k]`. The rows are orthonormal; the sign of each is arbitrary.
    pub vectors: Vec<f64>,
}

impl SymmetricEigen {
    /// The matrix's size `n`.
    pub fn n(&self) -> usize {
        self.values.len()
    }

    /// The unit eigenvector of `values[k]` (row `k` of `vectors`).
    ///
    /// # Panics
    /// When `k ≥ n`.
    pub fn vector(&self, k: usize) -> &[f64] {
        let n = self.n();
        &self.vectors[k * n..(k + 1) * n]
    }
}

/// Why a linear algebra function could not run; the message names the argument at fault.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LinalgError {
    /// A slice does not hold `rows × cols` values.
    WrongLength {
        /// The argument, e.g. `matrix`.
        name: &'static str,
        /// The rows it should have.
        rows: usize,
        /// The columns it should have.
        cols: usize,
        /// The slice's length.
        found: usize,
    },
    /// A value is NaN or infinite.
    NonFinite {
        /// The argument, e.g. `matrix`.
        name: &'static str,
        /// Row of the first such value.
        row: usize,
        /// Column of the first such value.
        col: usize,
        /// The value.
        value: f64,
    },
    /// A row lies (numerically) in the span of the rows before it, so the rows have no
    /// orthonormal basis of their own size.
    RankDeficient {
        /// The argument, e.g. `a`.
        name: &'static str,
        /// The first such row.
        row: usize,
    },
    /// The QL iteration did not make an off-diagonal element negligible.
    NoConvergence {
        /// The eigenvalue (in the iteration's order) that did not converge.
        index: usize,
        /// Iterations spent on it.
        iterations: usize,
    },
}

impl fmt::Display for LinalgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinalgError::WrongLength {
                name,
                rows,
                cols,
                found,
            } => write!(
                f,
                "{name}: expected {rows} × {cols} = {} values, found {found}",
                rows * cols
            ),
            LinalgError::NonFinite {
                name,
                row,
                col,
                value,
            } => write!(
                f,
                "{name}: the value at row {row}, column {col} is {value}; every value must be finite"
            ),
            LinalgError::RankDeficient { name, row } => write!(
                f,
                "{name}: row {row} lies in the span of the rows before it (the rows are linearly dependent)"
            ),
            LinalgError::NoConvergence { index, iterations } => write!(
                f,
                "the symmetric QL iteration did not converge for eigenvalue {index} after {iterations} iterations"
            ),
        }
    }
}

impl std::error::Error for LinalgError {}

/// Most QL iterations spent on one eigenvalue before giving up; EISPACK's `tql2` allows 30, and
/// in practice two or three suffice.
const MAX_QL_ITERATIONS: usize = 60;

/// A row whose norm falls below this fraction of its original norm once the earlier rows are
/// projected out counts as linearly dependent on them.
const RANK_TOLERANCE: f64 = 1e-10;

fn check_matrix(
    name: &'static str,
    values: &[f64],
    rows: usize,
    cols: usize,
) -> Result<(), LinalgError> {
    if values.len() != rows * cols {
        return Err(LinalgError::WrongLength {
            name,
            rows,
            cols,
            found: values.len(),
        });
    }
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(LinalgError::NonFinite {
            name,
            row: index / cols,
            col: index % cols,
            value: values[index],
        });
    }
    Ok(())
}

/// The eigenvalues and unit eigenvectors of the symmetric `n × n` matrix `matrix` (row-major),
/// eigenvalues in descending order and eigenvectors as the rows of
/// [`SymmetricEigen::vectors`].
///
/// Householder reduction to tridiagonal form followed by the implicit QL iteration: EISPACK's
/// `tred2`/`tql2` pair as JAMA's `EigenvalueDecomposition` writes it, `O(n³)` (a `784 × 784`
/// matrix takes a fraction of a second in an optimised build). The transformation matrix is
/// kept transposed, so that every inner loop (and every Givens rotation) runs along contiguous
/// memory and the eigenvectors come out as rows.
///
/// Only the upper triangle (`j ≥ i`) is read: the matrix is assumed symmetric, not checked.
///
/// **NumPy**: `numpy.linalg.eigh(matrix)` (ascending, vectors as columns: `w[::-1]`,
/// `v[:, ::-1].T`); **PyTorch**: `torch.linalg.eigh`.
///
/// # Errors
/// [`LinalgError::WrongLength`] when `matrix.len() ≠ n²`, [`LinalgError::NonFinite`] for a
/// NaN or infinite entry, [`LinalgError::NoConvergence`] if the iteration stalls (not seen on
/// finite input).
///
/// ```
/// use typednet::linalg::symmetric_eigen;
///
/// let eigen = symmetric_eigen(&[2.0, 1.0, 1.0, 2.0], 2).unwrap();
/// assert!((eigen.values[0] - 3.0).abs() < 1e-12 && (eigen.values[1] - 1.0).abs() < 1e-12);
/// let v = eigen.vector(0);
/// assert!((v[0].abs() - 0.5f64.sqrt()).abs() < 1e-12 && (v[0] - v[1]).abs() < 1e-12);
/// ```
pub fn symmetric_eigen(matrix: &[f64], n: usize) -> Result<SymmetricEigen, LinalgError> {
    check_matrix("matrix", matrix, n, n)?;
    if n == 0 {
        return Ok(SymmetricEigen {
            values: Vec::new(),
            vectors: Vec::new(),
        });
    }
    // `v` holds the transpose of JAMA's `V` (`V[r][c]` is `v[c·n + r]`); a symmetric input is
    // its own transpose, so it is copied as it is.
    let mut v = matrix.to_vec();
    let mut d = vec![0.0; n];
    let mut e = vec![0.0; n];
    tridiagonalize(&mut v, &mut d, &mut e, n);
    diagonalize_tridiagonal(&mut v, &mut d, &mut e, n)?;

    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| d[b].total_cmp(&d[a]));
    let values = order.iter().map(|&k| d[k]).collect();
    let mut vectors = Vec::with_capacity(n * n);
    for &k in &order {
        vectors.extend_from_slice(&v[k * n..(k + 1) * n]);
    }
    Ok(SymmetricEigen { values, vectors })
}

/// EISPACK `tred2` (after JAMA): Householder reduction of the symmetric matrix in `v` to the
/// tridiagonal matrix with diagonal `d` and subdiagonal `e[1..]`, leaving in `v` the transpose
/// of the orthogonal transformation.
#[allow(clippy::needless_range_loop)] // the indices follow the published algorithm
fn tridiagonalize(v: &mut [f64], d: &mut [f64], e: &mut [f64], n: usize) {
    for j in 0..n {
        d[j] = v[j * n + n - 1];
    }
    for i in (1..n).rev() {
        // Scale to avoid under/overflow.
        let scale: f64 = d[..i].iter().map(|x| x.abs()).sum();
        let mut h = 0.0;
        if scale == 0.0 {
            e[i] = d[i - 1];
            for j in 0..i {
                d[j] = v[j * n + i - 1];
                v[j * n + i] = 0.0;
                v[i * n + j] = 0.0;
            }
        } else {
            // Generate the Householder vector.
            for k in 0..i {
                d[k] /= scale;
                h += d[k] * d[k];
            }
            let mut f = d[i - 1];
            let mut g = h.sqrt();
            if f > 0.0 {
                g = -g;
            }
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            e[..i].fill(0.0);
            // Apply the similarity transformation to the remaining columns.
            for j in 0..i {
                f = d[j];
                v[i * n + j] = f;
                let column = &v[j * n + j + 1..j * n + i];
                g = e[j] + v[j * n + j] * f + dot(column, &d[j + 1..i]);
                for (ek, &vkj) in e[j + 1..i].iter_mut().zip(column) {
                    *ek += vkj * f;
                }
                e[j] = g;
            }
            f = 0.0;
            for j in 0..i {
                e[j] /= h;
                f += e[j] * d[j];
            }
            let hh = f / (h + h);
            for j in 0..i {
                e[j] -= hh * d[j];
            }
            for j in 0..i {
                let (f, g) = (d[j], e[j]);
                let column = &mut v[j * n + j..j * n + i];
                for ((x, &ek), &dk) in column.iter_mut().zip(&e[j..i]).zip(&d[j..i]) {
                    *x -= f * ek + g * dk;
                }
                d[j] = v[j * n + i - 1];
                v[j * n + i] = 0.0;
            }
        }
        d[i] = h;
    }
    // Accumulate the transformations.
    for i in 0..n - 1 {
        v[i * n + n - 1] = v[i * n + i];
        v[i * n + i] = 1.0;
        let h = d[i + 1];
        let (head, tail) = v.split_at_mut((i + 1) * n);
        let householder = &mut tail[..n];
        if h != 0.0 {
            for k in 0..=i {
                d[k] = householder[k] / h;
            }
            for j in 0..=i {
                let column = &mut head[j * n..j * n + i + 1];
                let g = dot(&householder[..=i], column);
                for (x, &dk) in column.iter_mut().zip(&d[..=i]) {
                    *x -= g * dk;
                }
            }
        }
        householder[..=i].fill(0.0);
    }
    for j in 0..n {
        d[j] = v[j * n + n - 1];
        v[j * n + n - 1] = 0.0;
    }
    v[n * n - 1] = 1.0;
    e[0] = 0.0;
}

/// EISPACK `tql2` (after JAMA): the implicit QL iteration with Wilkinson-style shifts on the
/// tridiagonal matrix (`d`, `e`), accumulating the rotations into the rows of `v`. Leaves the
/// eigenvalues in `d` (unsorted) and their eigenvectors in the rows of `v`.
fn diagonalize_tridiagonal(
    v: &mut [f64],
    d: &mut [f64],
    e: &mut [f64],
    n: usize,
) -> Result<(), LinalgError> {
    e.copy_within(1..n, 0);
    e[n - 1] = 0.0;
    let mut f = 0.0;
    let mut tst1: f64 = 0.0;
    let eps = f64::EPSILON;
    for l in 0..n {
        // Find a small subdiagonal element.
        tst1 = tst1.max(d[l].abs() + e[l].abs());
        let mut m = l;
        while m < n - 1 && e[m].abs() > eps * tst1 {
            m += 1;
        }
        // If m == l, d[l] is already an eigenvalue; otherwise iterate.
        if m > l {
            let mut iterations = 0;
            loop {
                iterations += 1;
                if iterations > MAX_QL_ITERATIONS {
                    return Err(LinalgError::NoConvergence {
                        index: l,
                        iterations: MAX_QL_ITERATIONS,
                    });
                }
                // The implicit shift.
                let mut g = d[l];
                let mut p = (d[l + 1] - g) / (2.0 * e[l]);
                let mut r = p.hypot(1.0);
                if p < 0.0 {
                    r = -r;
                }
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let mut h = g - d[l];
                for x in &mut d[l + 2..n] {
                    *x -= h;
                }
                f += h;
                // The implicit QL transformation.
                p = d[m];
                let (mut c, mut c2, mut c3) = (1.0, 1.0, 1.0);
                let el1 = e[l + 1];
                let (mut s, mut s2) = (0.0, 0.0);
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    g = c * e[i];
                    h = c * p;
                    r = p.hypot(e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    // Accumulate the rotation into eigenvector rows i and i + 1.
                    let (head, tail) = v.split_at_mut((i + 1) * n);
                    let row_i = &mut head[i * n..];
                    let row_next = &mut tail[..n];
                    for (a, b) in row_i.iter_mut().zip(row_next.iter_mut()) {
                        let old_next = *b;
                        *b = s * *a + c * old_next;
                        *a = c * *a - s * old_next;
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
                // Converged once the subdiagonal element is negligible (a NaN ends it too,
                // and is reported below).
                if e[l].abs() <= eps * tst1 || e[l].is_nan() {
                    break;
                }
            }
        }
        d[l] += f;
        e[l] = 0.0;
    }
    if let Some(index) = d.iter().position(|x| !x.is_finite()) {
        return Err(LinalgError::NoConvergence {
            index,
            iterations: MAX_QL_ITERATIONS,
        });
    }
    Ok(())
}

/// An orthonormal basis of the row space of the `k × n` matrix `rows`, built row by row:
/// row `i` of the result is row `i` of the input with the earlier basis rows projected out
/// (modified Gram–Schmidt, the projection done twice, which makes the rows orthogonal to
/// working precision even when the input rows are nearly dependent), scaled to unit length.
///
/// **NumPy**: `numpy.linalg.qr(rows.T)[0].T`, up to the sign of each row.
///
/// # Panics
/// As [`try_orthonormalize_rows`] fails.
pub fn orthonormalize_rows(rows: &[f64], k: usize, n: usize) -> Vec<f64> {
    try_orthonormalize_rows(rows, k, n).unwrap_or_else(|err| panic!("{err}"))
}

/// Fallible [`orthonormalize_rows`]: fails when `rows.len() ≠ k·n`, a value is not finite, or a
/// row lies in the span of the earlier ones (its norm drops below `10⁻¹⁰` of its own once they
/// are projected out; this includes a zero row).
pub fn try_orthonormalize_rows(rows: &[f64], k: usize, n: usize) -> Result<Vec<f64>, LinalgError> {
    orthonormalize_named("rows", rows, k, n)
}

fn orthonormalize_named(
    name: &'static str,
    rows: &[f64],
    k: usize,
    n: usize,
) -> Result<Vec<f64>, LinalgError> {
    check_matrix(name, rows, k, n)?;
    let mut basis = rows.to_vec();
    for i in 0..k {
        let (done, rest) = basis.split_at_mut(i * n);
        let row = &mut rest[..n];
        let original_norm = dot(row, row).sqrt();
        for _pass in 0..2 {
            for q in done.chunks_exact(n) {
                let projection = dot(row, q);
                for (x, &qj) in row.iter_mut().zip(q) {
                    *x -= projection * qj;
                }
            }
        }
        let norm = dot(row, row).sqrt();
        if norm == 0.0 || norm <= RANK_TOLERANCE * original_norm {
            return Err(LinalgError::RankDeficient { name, row: i });
        }
        for x in row.iter_mut() {
            *x /= norm;
        }
    }
    Ok(basis)
}

/// `Σ a_i b_i` over the common length, in eight independent partial sums: a single running sum
/// is one long chain of dependent additions that the compiler may not reorder, and the
/// eigensolver's inner loops are these dot products.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let mut partial = [0.0f64; 8];
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for ((p, &xl), &yl) in partial.iter_mut().zip(x).zip(y) {
            *p += xl * yl;
        }
    }
    let tail = len / 8 * 8;
    let rest: f64 = a[tail..].iter().zip(&b[tail..]).map(|(x, y)| x * y).sum();
    partial.iter().sum::<f64>() + rest
}

/// The principal angles, in radians and ascending, between the row spaces of the `k × n`
/// matrices `a` and `b`: `θ_i = acos σ_i`, where `σ_1 ≥ … ≥ σ_k` are the singular values of
/// `Q_a Q_bᵀ` for orthonormal bases `Q_a`, `Q_b` of the two row spaces.
///
/// 0 for a direction the subspaces share, `π/2` for one of `a`'s orthogonal to all of `b`'s. The
/// singular values are the square roots of the eigenvalues of `(Q_a Q_bᵀ)(Q_a Q_bᵀ)ᵀ`
/// ([`symmetric_eigen`]), clamped to `[0, 1]` against rounding. Through the square root and
/// the `acos`, an angle near 0 carries an error of about `10⁻⁸` (use it to compare subspaces,
/// not to measure tiny angles).
///
/// **SciPy**: `scipy.linalg.subspace_angles(a.T, b.T)[::-1]`.
///
/// # Panics
/// As [`try_principal_angles`] fails.
///
/// ```
/// use typednet::linalg::principal_angles;
///
/// // The xy-plane against the xz-plane: they share x, and y ⟂ z.
/// let angles = principal_angles(&[1.0, 0.0, 0.0, 0.0, 1.0, 0.0], &[1.0, 0.0, 0.0, 0.0, 0.0, 1.0], 2, 3);
/// assert!(angles[0].abs() < 1e-7 && (angles[1] - std::f64::consts::FRAC_PI_2).abs() < 1e-12);
/// ```
pub fn principal_angles(a: &[f64], b: &[f64], k: usize, n: usize) -> Vec<f64> {
    try_principal_angles(a, b, k, n).unwrap_or_else(|err| panic!("{err}"))
}

/// Fallible [`principal_angles`]: fails when `a` or `b` does not hold `k·n` finite values or
/// its rows are linearly dependent (see [`try_orthonormalize_rows`]).
pub fn try_principal_angles(
    a: &[f64],
    b: &[f64],
    k: usize,
    n: usize,
) -> Result<Vec<f64>, LinalgError> {
    let qa = orthonormalize_named("a", a, k, n)?;
    let qb = orthonormalize_named("b", b, k, n)?;
    // C = Q_a Q_bᵀ (k × k), then C Cᵀ, whose eigenvalues are the squared singular values.
    let mut c = vec![0.0; k * k];
    for (i, row_a) in qa.chunks_exact(n).enumerate() {
        for (j, row_b) in qb.chunks_exact(n).enumerate() {
            c[i * k + j] = dot(row_a, row_b);
        }
    }
    let mut gram = vec![0.0; k * k];
    for i in 0..k {
        for j in i..k {
            let value = dot(&c[i * k..(i + 1) * k], &c[j * k..(j + 1) * k]);
            gram[i * k + j] = value;
            gram[j * k + i] = value;
        }
    }
    let eigen = symmetric_eigen(&gram, k)?;
    Ok(eigen
        .values
        .iter()
        .map(|&s2| s2.clamp(0.0, 1.0).sqrt().acos())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn residual(matrix: &[f64], eigen: &SymmetricEigen) -> f64 {
        let n = eigen.n();
        let mut worst: f64 = 0.0;
        for k in 0..n {
            let v = eigen.vector(k);
            for i in 0..n {
                let av = dot(&matrix[i * n..(i + 1) * n], v);
                worst = worst.max((av - eigen.values[k] * v[i]).abs());
            }
        }
        worst
    }

    #[test]
    fn a_2_by_2_matrix() {
        let m = [4.0, 1.0, 1.0, 3.0];
        let eigen = symmetric_eigen(&m, 2).unwrap();
        let disc = (0.25f64 + 1.0).sqrt();
        assert!((eigen.values[0] - (3.5 + disc)).abs() < 1e-12);
        assert!((eigen.values[1] - (3.5 - disc)).abs() < 1e-12);
        assert!(residual(&m, &eigen) < 1e-12);
    }

    #[test]
    fn sizes_0_and_1() {
        assert!(symmetric_eigen(&[], 0).unwrap().values.is_empty());
        let eigen = symmetric_eigen(&[-2.5], 1).unwrap();
        assert_eq!((eigen.values, eigen.vectors), (vec![-2.5], vec![1.0]));
    }

    #[test]
    fn repeated_and_zero_eigenvalues() {
        // The identity (tridiagonal from the start) and the all-ones matrix (rank 1).
        let identity = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        let eigen = symmetric_eigen(&identity, 3).unwrap();
        assert_eq!(eigen.values, vec![1.0; 3]);
        let ones = [1.0; 16];
        let eigen = symmetric_eigen(&ones, 4).unwrap();
        assert!((eigen.values[0] - 4.0).abs() < 1e-12);
        assert!(eigen.values[1..].iter().all(|v| v.abs() < 1e-12));
        assert!(residual(&ones, &eigen) < 1e-12);
    }

    #[test]
    fn bad_input_is_an_error_naming_it() {
        let err = symmetric_eigen(&[1.0, 2.0, 3.0], 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "matrix: expected 2 × 2 = 4 values, found 3"
        );
        let err = symmetric_eigen(&[1.0, 0.0, 0.0, f64::NAN], 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "matrix: the value at row 1, column 1 is NaN; every value must be finite"
        );
        let err = try_orthonormalize_rows(&[1.0, 2.0, 2.0, 4.0], 2, 2).unwrap_err();
        assert_eq!(
            err,
            LinalgError::RankDeficient {
                name: "rows",
                row: 1
            }
        );
        let err = try_principal_angles(&[1.0, 0.0], &[0.0; 2], 1, 2).unwrap_err();
        assert!(err.to_string().starts_with("b: row 0 lies in the span"));
    }

    #[test]
    fn gram_schmidt_gives_orthonormal_rows_spanning_the_input() {
        let rows = [1.0, 1.0, 0.0, 1.0, 1.0, 1e-9, 0.0, 2.0, 5.0];
        let q = orthonormalize_rows(&rows, 3, 3);
        for i in 0..3 {
            for j in 0..3 {
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!((dot(&q[i * 3..i * 3 + 3], &q[j * 3..j * 3 + 3]) - expected).abs() < 1e-12);
            }
        }
        // The first row keeps its direction.
        let s = 0.5f64.sqrt();
        assert!((q[0] - s).abs() < 1e-15 && (q[1] - s).abs() < 1e-15 && q[2] == 0.0);
    }
}
