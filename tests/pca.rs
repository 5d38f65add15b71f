//! `typednet::linalg` and `typednet::pca` against NumPy (`tools/reference_pca.py` writes
//! `tests/fixtures/pca.txt`: `numpy.linalg.eigh`, a float64 PCA cross-checked with
//! `torch.pca_lowrank`, principal angles by SVD), property tests on random matrices, and PCA of
//! the shipped MNIST digits.

use std::collections::HashMap;
use std::f64::consts::FRAC_PI_2;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use typednet::assert_close;
use typednet::data::Mnist;
use typednet::linalg::{orthonormalize_rows, principal_angles, symmetric_eigen, SymmetricEigen};
use typednet::pca::Pca;
use typednet::plot::{digit_grid, scatter};

fn fixture() -> HashMap<String, Vec<f64>> {
    typednet::testing::named_arrays(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/pca.txt"
    ))
}

fn to_f32(values: &[f64]) -> Vec<f32> {
    values.iter().map(|&v| v as f32).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Asserts that each row of `actual` equals the same row of `expected` or its negation, and
/// returns the signs (+1 or −1) that match them.
fn assert_rows_equal_up_to_sign(
    actual: &[f64],
    expected: &[f64],
    n: usize,
    tolerance: f64,
) -> Vec<f64> {
    assert_eq!(actual.len(), expected.len());
    actual
        .chunks_exact(n)
        .zip(expected.chunks_exact(n))
        .enumerate()
        .map(|(row, (a, e))| {
            let sign = if dot(a, e) < 0.0 { -1.0 } else { 1.0 };
            for (j, (&x, &y)) in a.iter().zip(e).enumerate() {
                assert!(
                    (sign * x - y).abs() <= tolerance,
                    "row {row}, column {j}: got {} (sign-corrected), expected {y}",
                    sign * x
                );
            }
            sign
        })
        .collect()
}

fn random_symmetric(n: usize, rng: &mut StdRng) -> Vec<f64> {
    let mut m = vec![0.0; n * n];
    for i in 0..n {
        for j in i..n {
            let v: f64 = rng.gen_range(-1.0..1.0);
            m[i * n + j] = v;
            m[j * n + i] = v;
        }
    }
    m
}

/// The largest `|A v_k − λ_k v_k|` over the checked eigenpairs, and the largest deviation of
/// `V Vᵀ` from the identity over them.
fn eigen_errors(
    matrix: &[f64],
    eigen: &SymmetricEigen,
    pairs: impl Iterator<Item = usize> + Clone,
) -> (f64, f64) {
    let n = eigen.n();
    let mut residual: f64 = 0.0;
    let mut orthogonality: f64 = 0.0;
    for k in pairs.clone() {
        let v = eigen.vector(k);
        for i in 0..n {
            let av = dot(&matrix[i * n..(i + 1) * n], v);
            residual = residual.max((av - eigen.values[k] * v[i]).abs());
        }
        for l in pairs.clone() {
            let expected = if k == l { 1.0 } else { 0.0 };
            orthogonality = orthogonality.max((dot(v, eigen.vector(l)) - expected).abs());
        }
    }
    (residual, orthogonality)
}

#[test]
fn symmetric_eigen_matches_numpy_eigh() {
    let f = fixture();
    let eigen = symmetric_eigen(&f["eigen.matrix"], 6).unwrap();
    assert_close!(eigen.values, f["eigen.values"], 1e-12);
    assert_rows_equal_up_to_sign(&eigen.vectors, &f["eigen.vectors"], 6, 1e-12);
}

#[test]
fn eigenpairs_of_a_random_50_by_50_matrix_satisfy_the_definition() {
    let mut rng = StdRng::seed_from_u64(50);
    let m = random_symmetric(50, &mut rng);
    let eigen = symmetric_eigen(&m, 50).unwrap();
    let (residual, orthogonality) = eigen_errors(&m, &eigen, 0..50);
    assert!(residual < 1e-12, "|S v − λ v| = {residual:e}");
    assert!(orthogonality < 1e-13, "|V Vᵀ − I| = {orthogonality:e}");
    assert!(eigen.values.windows(2).all(|w| w[0] >= w[1]), "descending");
    // The trace is the sum of the eigenvalues.
    let trace: f64 = (0..50).map(|i| m[i * 50 + i]).sum();
    assert!((eigen.values.iter().sum::<f64>() - trace).abs() < 1e-12);
}

#[test]
fn a_diagonal_matrix_has_its_diagonal_as_eigenvalues_and_the_unit_vectors_as_eigenvectors() {
    let diagonal = [3.0, -1.0, 7.5, 0.0, 2.0];
    let mut m = vec![0.0; 25];
    for (i, &d) in diagonal.iter().enumerate() {
        m[i * 5 + i] = d;
    }
    let eigen = symmetric_eigen(&m, 5).unwrap();
    assert_eq!(eigen.values, [7.5, 3.0, 2.0, 0.0, -1.0]);
    for (k, position) in [2, 0, 4, 3, 1].into_iter().enumerate() {
        let v = eigen.vector(k);
        assert_eq!(v[position].abs(), 1.0, "eigenvector {k}");
        assert!(v
            .iter()
            .enumerate()
            .all(|(i, x)| i == position || *x == 0.0));
    }
}

#[test]
fn eigendecomposition_of_784_by_784_in_well_under_a_second() {
    let n = 784;
    let mut rng = StdRng::seed_from_u64(784);
    let m = random_symmetric(n, &mut rng);
    let start = Instant::now();
    let eigen = symmetric_eigen(&m, n).unwrap();
    let elapsed = start.elapsed();
    println!("symmetric_eigen, n = {n}: {:.3} s", elapsed.as_secs_f64());
    let checked = (0..n).step_by(37).chain([n - 1]);
    let (residual, orthogonality) = eigen_errors(&m, &eigen, checked);
    assert!(residual < 1e-11, "|S v − λ v| = {residual:e}");
    assert!(orthogonality < 1e-12, "|V Vᵀ − I| = {orthogonality:e}");
}

#[test]
fn pca_matches_numpy() {
    let f = fixture();
    let (n, dim, k) = (40, 7, 3);
    let data = to_f32(&f["pca.data"]);
    let pca = Pca::fit(&data, n, dim, k).unwrap();
    assert_eq!((pca.dim(), pca.n_components()), (dim, k));
    assert_close!(pca.mean(), f["pca.mean"], 1e-6);
    assert_close!(pca.explained_variance(), f["pca.explained_variance"], 1e-6);
    let components: Vec<f64> = pca.components().iter().map(|&v| f64::from(v)).collect();
    let signs = assert_rows_equal_up_to_sign(&components, &f["pca.components"], dim, 1e-6);
    // The sign convention is the same on both sides (largest |entry| positive).
    assert_eq!(signs, [1.0; 3]);
    assert_close!(pca.transform(&data, n), f["pca.codes"], 1e-5);
    assert_close!(pca.reconstruct(&data, n), f["pca.reconstruction"], 1e-5);
    let codes = pca.transform(&data, n);
    assert_close!(
        pca.inverse_transform(&codes, n),
        f["pca.reconstruction"],
        1e-5
    );
    let error = pca.reconstruction_error(&data, n);
    assert_close!([error], f["pca.error"], 1e-6);
    // … which is the sum of the eigenvalues left out.
    let left_out: f64 = f["pca.all_eigenvalues"][k..].iter().sum();
    assert!((error - left_out).abs() < 1e-6 * left_out);
}

#[test]
fn pca_with_every_component_reconstructs_exactly() {
    let mut rng = StdRng::seed_from_u64(3);
    let (n, dim) = (30, 9);
    let data: Vec<f32> = (0..n * dim).map(|_| rng.gen_range(-2.0..2.0)).collect();
    let pca = Pca::fit(&data, n, dim, dim).unwrap();
    assert_close!(pca.reconstruct(&data, n), data, 1e-5);
    assert!(pca.reconstruction_error(&data, n) < 1e-10);
    // Orthonormal components.
    for a in 0..dim {
        for b in 0..dim {
            let d: f64 = pca
                .component(a)
                .iter()
                .zip(pca.component(b))
                .map(|(&x, &y)| f64::from(x) * f64::from(y))
                .sum();
            assert!(
                (d - if a == b { 1.0 } else { 0.0 }).abs() < 1e-6,
                "⟨w_{a}, w_{b}⟩ = {d}"
            );
        }
    }
}

#[test]
fn principal_angles_match_numpy() {
    let f = fixture();
    let angles = principal_angles(&f["angles.a"], &f["angles.b"], 3, 7);
    assert_close!(angles, f["angles.values"], 1e-10);
}

#[test]
fn a_subspace_is_at_angle_0_to_itself_in_another_basis_and_pi_over_2_to_its_complement() {
    let mut rng = StdRng::seed_from_u64(9);
    let (k, n) = (3, 7);
    let a: Vec<f64> = (0..k * n).map(|_| rng.gen_range(-1.0..1.0)).collect();
    // B = R A for an invertible R: the same row space, another basis.
    let r = [2.0, 0.5, -1.0, 0.3, 1.0, 0.7, -0.4, 0.2, 1.5];
    let mut b = vec![0.0; k * n];
    for i in 0..k {
        for j in 0..n {
            b[i * n + j] = (0..k).map(|l| r[i * k + l] * a[l * n + j]).sum();
        }
    }
    for angle in principal_angles(&a, &b, k, n) {
        assert!(angle.abs() < 1e-7, "angle {angle}");
    }
    // Rows of an orthonormal basis of R⁷ split 3 / 3: orthogonal subspaces.
    let basis = orthonormalize_rows(
        &(0..49)
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect::<Vec<_>>(),
        7,
        7,
    );
    let angles = principal_angles(&basis[..21], &basis[21..42], k, n);
    assert_close!(angles, [FRAC_PI_2; 3], 1e-12);
}

#[test]
fn pca_of_2000_mnist_digits_improves_with_more_components() {
    let mnist = Mnist::load_shipped().expect("the shipped MNIST files load");
    let (n, dim) = (2000, 784);
    let data = &mnist.features()[..n * dim];
    let start = Instant::now();
    let pca30 = Pca::fit(data, n, dim, 30).unwrap();
    let fit_time = start.elapsed();
    let pca10 = Pca::fit(data, n, dim, 10).unwrap();
    let error30 = pca30.reconstruction_error(data, n);
    let error10 = pca10.reconstruction_error(data, n);
    println!(
        "PCA of {n} MNIST digits: reconstruction error (mean over digits of the summed squared \
         error over 784 pixels) {error10:.4} with 10 components, {error30:.4} with 30; fit in {:.3} s",
        fit_time.as_secs_f64()
    );
    assert!(error30 < error10);
    let variances = pca30.explained_variance();
    assert!(variances.iter().all(|&v| v > 0.0));
    assert!(variances.windows(2).all(|w| w[0] >= w[1]));
    // The 10 components are the first 10 of the 30 (same scatter matrix, same signs).
    assert_close!(pca10.explained_variance(), variances[..10], 1e-12);
    assert_close!(pca10.components(), pca30.components()[..10 * dim], 1e-6);

    // With TYPEDNET_FIGURES=<dir>: the first 10 digits above their reconstructions from 10 and
    // 30 components, and the first 500 digits' codes on the top two components.
    if let Some(dir) = std::env::var_os("TYPEDNET_FIGURES") {
        let dir = std::path::PathBuf::from(dir);
        let first = &data[..10 * dim];
        let rows = [
            first,
            &pca10.reconstruct(first, 10)[..],
            &pca30.reconstruct(first, 10)[..],
        ];
        digit_grid(&rows, 28, 28, 2)
            .unwrap()
            .write_png(dir.join("mnist_pca.png"))
            .unwrap();
        let codes = pca10.transform(&data[..500 * dim], 500);
        let points: Vec<[f32; 2]> = codes.chunks_exact(10).map(|c| [c[0], c[1]]).collect();
        scatter(&points, &mnist.labels()[..500], 400)
            .unwrap()
            .write_png(dir.join("mnist_pca_codes.png"))
            .unwrap();
    }
}
