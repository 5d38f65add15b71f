//! Principal component analysis, the linear baseline for autoencoders: the best `K`-dimensional
//! linear code of the data in squared error.
//!
//! [`Pca::fit`] centres the data on its mean `m` and takes the top `K` eigenvectors of the
//! scatter matrix
//!
//! ```text
//! S = (1/N) Σ_i (x_i − m)(x_i − m)ᵀ        (dim × dim)
//! ```
//!
//! as the rows of `W` (`K × dim`, orthonormal). A sample is encoded as `z = W (x − m)` and decoded
//! as `x̂ = m + Wᵀ z`; among all rank-`K` affine maps this one has the smallest mean squared
//! reconstruction error, which is the sum of the eigenvalues left out. A linear autoencoder
//! trained to convergence on squared error spans the same subspace (its weights need not be
//! orthonormal; [`crate::linalg::principal_angles`] compares the two subspaces).
//!
//! **scikit-learn**: `PCA(n_components=K).fit(X)`: `mean_`, `components_` (the same rows up to
//! sign), `transform`, `inverse_transform`. Its `explained_variance_` divides by `N − 1`, ours by
//! `N` (multiply ours by `N/(N − 1)` to compare). **PyTorch**: `torch.pca_lowrank(X, q=K)` gives
//! `U, s, V` with `V.T` ≈ `components()` and `s²/N` ≈ `explained_variance()` (randomised, so
//! approximately).
//!
//! ```
//! use typednet::pca::Pca;
//!
//! // Four points on the line y = 2x, plus their mean (1, 2).
//! let data = [0.0, 0.0, 1.0, 2.0, 2.0, 4.0, 1.0, 2.0];
//! let pca = Pca::fit(&data, 4, 2, 1).unwrap();
//! assert_eq!(pca.mean(), &[1.0, 2.0]);
//! let codes = pca.transform(&data, 4);
//! assert!((codes[0].abs() - 5f32.sqrt()).abs() < 1e-6); // |(−1, −2)|
//! assert!(pca.reconstruction_error(&data, 4) < 1e-10);    // the line is one-dimensional
//! ```

use std::fmt;

use rayon::prelude::*;

use crate::linalg::{symmetric_eigen, LinalgError};

/// A fitted principal component analysis: the data's mean and the top `K` principal
/// directions.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    dim: usize,
    mean: Vec<f32>,
    /// `K × dim`, row-major, orthonormal rows.
    components: Vec<f32>,
    explained_variance: Vec<f64>,
}

/// Why a PCA could not be fitted or applied; the message names the argument and both shapes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PcaError {
    /// A slice does not hold `rows × cols` values.
    WrongLength {
        /// The argument, e.g. `data` or `codes`.
        name: &'static str,
        /// The rows it should have (samples).
        rows: usize,
        /// The columns it should have (`dim`, or `K` for codes).
        cols: usize,
        /// The slice's length.
        found: usize,
    },
    /// Fewer than one sample, or zero dimensions.
    Empty {
        /// Samples given.
        samples: usize,
        /// Dimensions given.
        dim: usize,
    },
    /// `K` is 0 or more than `dim`.
    Components {
        /// `K` asked for.
        asked: usize,
        /// The data's dimension.
        dim: usize,
    },
    /// A NaN or infinite value in the data.
    NonFinite {
        /// Sample of the first such value.
        sample: usize,
        /// Its coordinate.
        index: usize,
        /// The value.
        value: f32,
    },
    /// The eigendecomposition of the scatter matrix failed.
    Eigen(LinalgError),
}

impl fmt::Display for PcaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pca: ")?;
        match self {
            PcaError::WrongLength {
                name,
                rows,
                cols,
                found,
            } => write!(
                f,
                "{name}: expected {rows} × {cols} = {} values, found {found}",
                rows * cols
            ),
            PcaError::Empty { samples, dim } => write!(
                f,
                "needs at least one sample of at least one dimension, got {samples} samples of {dim}"
            ),
            PcaError::Components { asked, dim } => write!(
                f,
                "{asked} components asked for data of dimension {dim} (need 1 ≤ K ≤ {dim})"
            ),
            PcaError::NonFinite {
                sample,
                index,
                value,
            } => write!(
                f,
                "data: sample {sample}, coordinate {index} is {value}; every value must be finite"
            ),
            PcaError::Eigen(err) => write!(f, "eigendecomposition of the scatter matrix: {err}"),
        }
    }
}

impl std::error::Error for PcaError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PcaError::Eigen(err) => Some(err),
            _ => None,
        }
    }
}

fn check_length(
    name: &'static str,
    values: &[f32],
    rows: usize,
    cols: usize,
) -> Result<(), PcaError> {
    if values.len() == rows * cols {
        Ok(())
    } else {
        Err(PcaError::WrongLength {
            name,
            rows,
            cols,
            found: values.len(),
        })
    }
}

/// Samples per block when accumulating the scatter matrix: a block of `784`-dimensional samples
/// in `f64` (1.6 MB) stays in cache while every tile of `S` visits it.
const SCATTER_BLOCK: usize = 256;
/// The tile of `S` one step of the scatter kernel accumulates in registers.
const TILE_ROWS: usize = 4;
const TILE_COLS: usize = 8;

impl Pca {
    /// Fits a PCA with `components` (`K`) directions to `n_samples` samples of `dim` values,
    /// row-major in `data` (`n_samples × dim`).
    ///
    /// The mean and the scatter matrix `S = (1/N) Σ (x_i − m)(x_i − m)ᵀ` are accumulated in
    /// `f64` (in parallel over blocks of `S`'s rows), then [`symmetric_eigen`] gives its top
    /// `K` eigenvectors. Each component's sign is fixed so that its entry of largest magnitude
    /// is positive (scikit-learn's `svd_flip` convention for `components_`), which makes the
    /// result deterministic. An `8000 × 784` MNIST fit takes well under a second in an
    /// optimised build.
    ///
    /// # Errors
    /// When `data.len() ≠ n_samples · dim`, there are no samples or no dimensions, `K` is not in
    /// `1..=dim`, a value is not finite, or (not seen in practice) the eigensolver fails.
    pub fn fit(
        data: &[f32],
        n_samples: usize,
        dim: usize,
        components: usize,
    ) -> Result<Pca, PcaError> {
        if n_samples == 0 || dim == 0 {
            return Err(PcaError::Empty {
                samples: n_samples,
                dim,
            });
        }
        check_length("data", data, n_samples, dim)?;
        if components == 0 || components > dim {
            return Err(PcaError::Components {
                asked: components,
                dim,
            });
        }
        if let Some(position) = data.iter().position(|v| !v.is_finite()) {
            return Err(PcaError::NonFinite {
                sample: position / dim,
                index: position % dim,
                value: data[position],
            });
        }

        let mean = column_means(data, n_samples, dim);
        let scatter = scatter_matrix(data, &mean, n_samples, dim);
        let eigen = symmetric_eigen(&scatter, dim).map_err(PcaError::Eigen)?;

        let mut basis = Vec::with_capacity(components * dim);
        for k in 0..components {
            let v = eigen.vector(k);
            let largest = v
                .iter()
                .copied()
                .max_by(|a, b| a.abs().total_cmp(&b.abs()))
                .unwrap_or(1.0);
            let sign = if largest < 0.0 { -1.0 } else { 1.0 };
            basis.extend(v.iter().map(|&x| (sign * x) as f32));
        }
        Ok(Pca {
            dim,
            mean: mean.iter().map(|&m| m as f32).collect(),
            components: basis,
            explained_variance: eigen.values[..components].to_vec(),
        })
    }

    /// The data's dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The number of components `K`.
    pub fn n_components(&self) -> usize {
        self.explained_variance.len()
    }

    /// The mean `m` of the training data (`dim` values).
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }

    /// The principal directions, `K × dim` row-major: row `k` is the unit eigenvector of the
    /// scatter matrix with the `k`-th largest eigenvalue.
    pub fn components(&self) -> &[f32] {
        &self.components
    }

    /// Row `k` of [`components`](Self::components).
    ///
    /// # Panics
    /// When `k ≥ K`.
    pub fn component(&self, k: usize) -> &[f32] {
        &self.components[k * self.dim..(k + 1) * self.dim]
    }

    /// The top `K` eigenvalues of the scatter matrix, descending: the variance of the training
    /// data along each component (divided by `N`; scikit-learn divides by `N − 1`).
    pub fn explained_variance(&self) -> &[f64] {
        &self.explained_variance
    }

    /// The codes `z_i = W (x_i − m)` of `n` samples (`n × dim` → `n × K`).
    ///
    /// **scikit-learn**: `pca.transform(X)`.
    ///
    /// # Panics
    /// As [`try_transform`](Self::try_transform) fails.
    pub fn transform(&self, data: &[f32], n: usize) -> Vec<f32> {
        self.try_transform(data, n)
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// Fallible [`transform`](Self::transform): fails when `data.len() ≠ n · dim`.
    pub fn try_transform(&self, data: &[f32], n: usize) -> Result<Vec<f32>, PcaError> {
        check_length("data", data, n, self.dim)?;
        let k = self.n_components();
        let mut codes = vec![0.0f32; n * k];
        if k == 0 {
            return Ok(codes);
        }
        codes
            .par_chunks_mut(k)
            .zip(data.par_chunks(self.dim))
            .for_each(|(code, x)| self.encode(x, code));
        Ok(codes)
    }

    /// The reconstructions `x̂_i = m + Wᵀ z_i` of `n` codes (`n × K` → `n × dim`).
    ///
    /// **scikit-learn**: `pca.inverse_transform(Z)`.
    ///
    /// # Panics
    /// As [`try_inverse_transform`](Self::try_inverse_transform) fails.
    pub fn inverse_transform(&self, codes: &[f32], n: usize) -> Vec<f32> {
        self.try_inverse_transform(codes, n)
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// Fallible [`inverse_transform`](Self::inverse_transform): fails when
    /// `codes.len() ≠ n · K`.
    pub fn try_inverse_transform(&self, codes: &[f32], n: usize) -> Result<Vec<f32>, PcaError> {
        let k = self.n_components();
        check_length("codes", codes, n, k)?;
        let mut out = vec![0.0f32; n * self.dim];
        let mut decoded = vec![0.0f64; self.dim];
        for (row, code) in out.chunks_exact_mut(self.dim).zip(codes.chunks_exact(k)) {
            self.decode(code.iter().map(|&z| f64::from(z)), &mut decoded);
            for (o, &x) in row.iter_mut().zip(&decoded) {
                *o = x as f32;
            }
        }
        Ok(out)
    }

    /// The projection of `n` samples onto the principal subspace, `m + Wᵀ W (x − m)`
    /// (`inverse_transform(transform(x))`, computed in `f64` without rounding the codes).
    ///
    /// # Panics
    /// As [`try_reconstruct`](Self::try_reconstruct) fails.
    pub fn reconstruct(&self, data: &[f32], n: usize) -> Vec<f32> {
        self.try_reconstruct(data, n)
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// Fallible [`reconstruct`](Self::reconstruct): fails when `data.len() ≠ n · dim`.
    pub fn try_reconstruct(&self, data: &[f32], n: usize) -> Result<Vec<f32>, PcaError> {
        check_length("data", data, n, self.dim)?;
        let mut out = vec![0.0f32; n * self.dim];
        out.par_chunks_mut(self.dim)
            .zip(data.par_chunks(self.dim))
            .for_each(|(row, x)| {
                let decoded = self.project(x);
                for (o, &v) in row.iter_mut().zip(&decoded) {
                    *o = v as f32;
                }
            });
        Ok(out)
    }

    /// The mean over the `n` samples of the squared reconstruction error **summed over the
    /// `dim` coordinates**: `(1/n) Σ_i ‖x_i − x̂_i‖²` (not divided by `dim`; divide by `dim` for
    /// a per-pixel mean). On the training data it equals the sum of the eigenvalues of `S`
    /// left out. Computed in `f64`.
    ///
    /// **scikit-learn**: `((X - pca.inverse_transform(pca.transform(X)))**2).sum(1).mean()`.
    ///
    /// # Panics
    /// As [`try_reconstruction_error`](Self::try_reconstruction_error) fails.
    pub fn reconstruction_error(&self, data: &[f32], n: usize) -> f64 {
        self.try_reconstruction_error(data, n)
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// Fallible [`reconstruction_error`](Self::reconstruction_error): fails when
    /// `data.len() ≠ n · dim` or `n = 0`.
    pub fn try_reconstruction_error(&self, data: &[f32], n: usize) -> Result<f64, PcaError> {
        if n == 0 {
            return Err(PcaError::Empty {
                samples: 0,
                dim: self.dim,
            });
        }
        check_length("data", data, n, self.dim)?;
        // Summed in order, not by rayon's `sum`, whose grouping changes from run to run.
        let errors: Vec<f64> = data
            .par_chunks(self.dim)
            .map(|x| {
                let decoded = self.project(x);
                x.iter()
                    .zip(&decoded)
                    .map(|(&a, &b)| (f64::from(a) - b).powi(2))
                    .sum::<f64>()
            })
            .collect();
        let total: f64 = errors.iter().sum();
        Ok(total / n as f64)
    }

    /// `z = W (x − m)` into `code`.
    fn encode(&self, x: &[f32], code: &mut [f32]) {
        for (z, w) in code.iter_mut().zip(self.components.chunks_exact(self.dim)) {
            let mut acc = 0.0f64;
            for ((&xi, &mi), &wi) in x.iter().zip(&self.mean).zip(w) {
                acc += (f64::from(xi) - f64::from(mi)) * f64::from(wi);
            }
            *z = acc as f32;
        }
    }

    /// `m + Wᵀ z` into `out`.
    fn decode(&self, code: impl Iterator<Item = f64>, out: &mut [f64]) {
        for (o, &m) in out.iter_mut().zip(&self.mean) {
            *o = f64::from(m);
        }
        for (z, w) in code.zip(self.components.chunks_exact(self.dim)) {
            for (o, &wi) in out.iter_mut().zip(w) {
                *o += z * f64::from(wi);
            }
        }
    }

    /// `m + Wᵀ W (x − m)` in `f64`.
    fn project(&self, x: &[f32]) -> Vec<f64> {
        let codes = self.components.chunks_exact(self.dim).map(|w| {
            x.iter()
                .zip(&self.mean)
                .zip(w)
                .map(|((&xi, &mi), &wi)| (f64::from(xi) - f64::from(mi)) * f64::from(wi))
                .sum::<f64>()
        });
        let codes: Vec<f64> = codes.collect();
        let mut out = vec![0.0; self.dim];
        self.decode(codes.into_iter(), &mut out);
        out
    }
}

fn column_means(data: &[f32], n: usize, dim: usize) -> Vec<f64> {
    // The blocks' sums are added in order, not by rayon's `reduce`, whose grouping changes
    // from run to run.
    let block_sums: Vec<Vec<f64>> = data
        .par_chunks(dim * SCATTER_BLOCK)
        .map(|block| {
            let mut sums = vec![0.0f64; dim];
            for row in block.chunks_exact(dim) {
                for (s, &x) in sums.iter_mut().zip(row) {
                    *s += f64::from(x);
                }
            }
            sums
        })
        .collect();
    let mut sums = vec![0.0f64; dim];
    for block in &block_sums {
        for (s, b) in sums.iter_mut().zip(block) {
            *s += b;
        }
    }
    sums.into_iter().map(|s| s / n as f64).collect()
}

/// `S = (1/N) Σ (x_i − m)(x_i − m)ᵀ`, `dim × dim` row-major, exactly symmetric.
///
/// The centred samples are copied in blocks of [`SCATTER_BLOCK`] into `f64` rows padded to a
/// multiple of [`TILE_COLS`]; each rayon task owns [`TILE_ROWS`] rows of `S` and adds, tile by
/// tile, the block's rank-one updates `x[i]·x[j..j + 8]` held in registers (the upper triangle
/// only, mirrored at the end).
fn scatter_matrix(data: &[f32], mean: &[f64], n: usize, dim: usize) -> Vec<f64> {
    let padded = dim.div_ceil(TILE_COLS) * TILE_COLS;
    let mut upper = vec![0.0f64; padded * padded];
    let mut block = vec![0.0f64; SCATTER_BLOCK * padded];
    for samples in data.chunks(SCATTER_BLOCK * dim) {
        let rows = samples.len() / dim;
        for (centred, x) in block
            .chunks_exact_mut(padded)
            .zip(samples.chunks_exact(dim))
        {
            for ((c, &xi), &mi) in centred.iter_mut().zip(x).zip(mean) {
                *c = f64::from(xi) - mi;
            }
        }
        let block = &block[..rows * padded];
        upper
            .par_chunks_mut(TILE_ROWS * padded)
            .enumerate()
            .for_each(|(tile_row, s_rows)| {
                let i0 = tile_row * TILE_ROWS;
                // Tiles starting at the tile column that holds the diagonal.
                let j_start = i0 / TILE_COLS * TILE_COLS;
                for j0 in (j_start..padded).step_by(TILE_COLS) {
                    let mut acc = [[0.0f64; TILE_COLS]; TILE_ROWS];
                    for x in block.chunks_exact(padded) {
                        let xi: [f64; TILE_ROWS] = x[i0..i0 + TILE_ROWS].try_into().unwrap();
                        let xj: [f64; TILE_COLS] = x[j0..j0 + TILE_COLS].try_into().unwrap();
                        for (acc_row, &a) in acc.iter_mut().zip(&xi) {
                            for (s, &b) in acc_row.iter_mut().zip(&xj) {
                                *s += a * b;
                            }
                        }
                    }
                    for (r, acc_row) in acc.iter().enumerate() {
                        let s_row = &mut s_rows[r * padded + j0..r * padded + j0 + TILE_COLS];
                        for (s, &a) in s_row.iter_mut().zip(acc_row) {
                            *s += a;
                        }
                    }
                }
            });
    }
    let mut scatter = vec![0.0f64; dim * dim];
    for i in 0..dim {
        for j in i..dim {
            let value = upper[i * padded + j] / n as f64;
            scatter[i * dim + j] = value;
            scatter[j * dim + i] = value;
        }
    }
    scatter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scatter_kernel_matches_the_definition_for_odd_sizes() {
        // 300 samples (two blocks) of 11 dimensions (padded to 16).
        let (n, dim) = (300, 11);
        let data: Vec<f32> = (0..n * dim)
            .map(|i| ((i * 37 % 101) as f32 / 7.0).sin())
            .collect();
        let mean = column_means(&data, n, dim);
        let s = scatter_matrix(&data, &mean, n, dim);
        for i in 0..dim {
            for j in 0..dim {
                let direct: f64 = (0..n)
                    .map(|k| {
                        (f64::from(data[k * dim + i]) - mean[i])
                            * (f64::from(data[k * dim + j]) - mean[j])
                    })
                    .sum::<f64>()
                    / n as f64;
                assert!((s[i * dim + j] - direct).abs() < 1e-12, "S[{i}][{j}]");
            }
        }
    }

    #[test]
    fn errors_name_the_argument_and_shapes() {
        let err = Pca::fit(&[0.0; 5], 2, 3, 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "pca: data: expected 2 × 3 = 6 values, found 5"
        );
        let err = Pca::fit(&[0.0; 6], 2, 3, 4).unwrap_err();
        assert_eq!(
            err.to_string(),
            "pca: 4 components asked for data of dimension 3 (need 1 ≤ K ≤ 3)"
        );
        let err = Pca::fit(&[0.0, 1.0, f32::NAN, 0.0], 2, 2, 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "pca: data: sample 1, coordinate 0 is NaN; every value must be finite"
        );
        let pca = Pca::fit(&[0.0, 1.0, 2.0, 0.0], 2, 2, 1).unwrap();
        let err = pca.try_inverse_transform(&[0.0; 3], 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "pca: codes: expected 2 × 1 = 2 values, found 3"
        );
        let err = PcaError::Eigen(LinalgError::NoConvergence {
            index: 3,
            iterations: 60,
        });
        assert_eq!(
            err.to_string(),
            "pca: eigendecomposition of the scatter matrix: the symmetric QL iteration did not \
             converge for eigenvalue 3 after 60 iterations"
        );
    }
}
