//! Matrix products of untaped tensors, on [`crate::gemm`] for `f32` on the CPU: the sampling and
//! statistics of the Boltzmann machines, which are not backpropagated.
//!
//! | function | computes | PyTorch |
//! |---|---|---|
//! | [`try_matmul`] | `A·B`, `[M, K]·[K, N]` | `a @ b` |
//! | [`try_matmul_transposed_a`] | `Aᵀ·B`, `A` stored `[K, M]` | `a.T @ b` |
//! | [`try_matmul_transposed_b`] | `A·Bᵀ`, `B` stored `[N, K]` | `a @ b.T` |
//! | [`try_sigmoid_affine`] | `σ(A·B + c)` or `σ(A·Bᵀ + c)`, `c` `[N]` on every row | `torch.sigmoid(a @ b + c)` |
//! | [`try_gram_difference`] | `p·AᵀB − q·CᵀD` | `p * a.T @ b - q * c.T @ d` |
//!
//! The last two are what an RBM's conditionals and its CD statistics are made of; on the CPU
//! in `f32` each is one pass (the bias and σ applied where the product lies; the two products
//! accumulated into one output, the scales applied to the thin factors) where dfdx's ops would
//! make three or four passes over the `[V, H]` result, each allocating.
//!
//! On [`Cpu`] in `f32` the operands are copied out in their logical order and multiplied by the
//! GEMM, reading the transposed one through strides. Elsewhere (CUDA, `f64`) the product is dfdx's
//! `matmul` (after a `permute` for the transposed forms), which is also the reference the tests
//! hold the fast path to. The choice is made by type identity at run time (`Any`), so these
//! functions take any dfdx device, as the Boltzmann machines do.

use core::any::Any;

use dfdx::prelude::*;

use crate::gemm;
use crate::network::Element;

/// `A·B` for `a` `[M, K]` and `b` `[K, N]`.
pub fn try_matmul<M: Dim, K: Dim, N: Dim, E: Element, D: Device<E>>(
    a: &Tensor<(M, K), E, D>,
    b: &Tensor<(K, N), E, D>,
) -> Result<Tensor<(M, N), E, D>, D::Err> {
    let (m, k) = *a.shape();
    let n = b.shape().1;
    if let Some(product) = on_cpu_f32(a, false, b, false, (m, n), k.size())? {
        return Ok(product);
    }
    a.clone().try_matmul(b.clone())
}

/// `Aᵀ·B` for `a` `[K, M]` and `b` `[K, N]`, giving `[M, N]`.
pub fn try_matmul_transposed_a<M: Dim, K: Dim, N: Dim, E: Element, D: Device<E>>(
    a: &Tensor<(K, M), E, D>,
    b: &Tensor<(K, N), E, D>,
) -> Result<Tensor<(M, N), E, D>, D::Err> {
    let (k, m) = *a.shape();
    let n = b.shape().1;
    if let Some(product) = on_cpu_f32(a, true, b, false, (m, n), k.size())? {
        return Ok(product);
    }
    a.clone()
        .try_permute::<(M, K), Axes2<1, 0>>()?
        .try_matmul(b.clone())
}

/// `A·Bᵀ` for `a` `[M, K]` and `b` `[N, K]`, giving `[M, N]`.
pub fn try_matmul_transposed_b<M: Dim, K: Dim, N: Dim, E: Element, D: Device<E>>(
    a: &Tensor<(M, K), E, D>,
    b: &Tensor<(N, K), E, D>,
) -> Result<Tensor<(M, N), E, D>, D::Err> {
    let (m, k) = *a.shape();
    let n = b.shape().0;
    if let Some(product) = on_cpu_f32(a, false, b, true, (m, n), k.size())? {
        return Ok(product);
    }
    a.clone()
        .try_matmul(b.clone().try_permute::<(K, N), Axes2<1, 0>>()?)
}

/// `σ(A·B + c)` for `a` `[M, K]` and `b` `[K, N]` (stored `[N, K]` and read transposed when
/// `transpose_b`), with the bias `c` (`[N]`) added to every row. See the [module docs](self).
pub fn try_sigmoid_affine<M: Dim, K: Dim, N: Dim, SB: Shape, E: Element, D: Device<E>>(
    a: &Tensor<(M, K), E, D>,
    b: &Tensor<SB, E, D>,
    transpose_b: bool,
    bias: &Tensor<(N,), E, D>,
) -> Result<Tensor<(M, N), E, D>, D::Err> {
    try_sigmoid_affine_shared(a, (b, None), transpose_b, bias)
}

/// `b`'s values in their logical order, when it is `f32` on the CPU: a copy to hand to several
/// [`try_sigmoid_affine_shared`] calls with the same `b` (an RBM's weights, three times per CD-1
/// step), which would otherwise each copy it out of dfdx's tensor.
pub(crate) fn host_copy<S: Shape, E: Element, D: Device<E>>(
    tensor: &Tensor<S, E, D>,
) -> Option<Vec<f32>> {
    (tensor as &dyn Any)
        .downcast_ref::<Tensor<S, f32, Cpu>>()
        .map(logical_values)
}

/// [`try_sigmoid_affine`] with `b`'s values already on the host (from [`host_copy`] of that `b`),
/// or `None` to copy them.
pub(crate) fn try_sigmoid_affine_shared<
    M: Dim,
    K: Dim,
    N: Dim,
    SB: Shape,
    E: Element,
    D: Device<E>,
>(
    a: &Tensor<(M, K), E, D>,
    (b, b_on_host): (&Tensor<SB, E, D>, Option<&[f32]>),
    transpose_b: bool,
    bias: &Tensor<(N,), E, D>,
) -> Result<Tensor<(M, N), E, D>, D::Err> {
    let (m, k) = *a.shape();
    let n = bias.shape().0;
    if let (Some(a), Some(b), Some(bias)) = (
        (a as &dyn Any).downcast_ref::<Tensor<(M, K), f32, Cpu>>(),
        (b as &dyn Any).downcast_ref::<Tensor<SB, f32, Cpu>>(),
        (bias as &dyn Any).downcast_ref::<Tensor<(N,), f32, Cpu>>(),
    ) {
        let (rows, columns) = (m.size(), n.size());
        let bias_values = logical_values(bias);
        let mut product = Vec::with_capacity(rows * columns);
        for _ in 0..rows {
            product.extend_from_slice(&bias_values);
        }
        let b_values = match b_on_host {
            Some(values) => std::borrow::Cow::Borrowed(values),
            None => std::borrow::Cow::Owned(logical_values(b)),
        };
        gemm::try_gemm(
            (&logical_values(a), false),
            (&b_values, transpose_b),
            &mut product,
            [rows, k.size(), columns],
            true,
        );
        crate::ops::activations::Function::Sigmoid.apply(&mut product);
        return Ok(cast_back(a.device().tensor_from_vec(product, (m, n))));
    }
    let product = if transpose_b {
        let b = (b as &dyn Any)
            .downcast_ref::<Tensor<(N, K), E, D>>()
            .expect("`b` is [N, K] when transposed");
        try_matmul_transposed_b(a, b)?
    } else {
        let b = (b as &dyn Any)
            .downcast_ref::<Tensor<(K, N), E, D>>()
            .expect("`b` is [K, N]");
        try_matmul(a, b)?
    };
    let bias = bias.clone().try_broadcast_like(&(m, n))?;
    product.try_add(bias)?.try_sigmoid()
}

/// `p·AᵀB − q·CᵀD` for `a` `[B, M]`, `b` `[B, N]`, `c` `[C, M]`, `d` `[C, N]`: the difference of
/// two averaged outer-product sums (an RBM's positive and negative statistics, `p = 1/B`,
/// `q = 1/C`). See the [module docs](self).
pub fn try_gram_difference<B: Dim, C: Dim, M: Dim, N: Dim, E: Element, D: Device<E>>(
    (a, b, p): (&Tensor<(B, M), E, D>, &Tensor<(B, N), E, D>, f64),
    (c, d, q): (&Tensor<(C, M), E, D>, &Tensor<(C, N), E, D>, f64),
) -> Result<Tensor<(M, N), E, D>, D::Err> {
    let (rows_ab, m) = *a.shape();
    let (rows_cd, n) = (c.shape().0, d.shape().1);
    if let (Some(a), Some(b), Some(c), Some(d)) = (
        (a as &dyn Any).downcast_ref::<Tensor<(B, M), f32, Cpu>>(),
        (b as &dyn Any).downcast_ref::<Tensor<(B, N), f32, Cpu>>(),
        (c as &dyn Any).downcast_ref::<Tensor<(C, M), f32, Cpu>>(),
        (d as &dyn Any).downcast_ref::<Tensor<(C, N), f32, Cpu>>(),
    ) {
        fn scaled<S: Shape>(t: &Tensor<S, f32, Cpu>, factor: f64) -> Vec<f32> {
            let mut values = logical_values(t);
            values.iter_mut().for_each(|v| *v *= factor as f32);
            values
        }
        let mut product = vec![0.0f32; m.size() * n.size()];
        gemm::try_gemm(
            (&logical_values(a), true),
            (&scaled(b, p), false),
            &mut product,
            [m.size(), rows_ab.size(), n.size()],
            false,
        );
        gemm::try_gemm(
            (&logical_values(c), true),
            (&scaled(d, -q), false),
            &mut product,
            [m.size(), rows_cd.size(), n.size()],
            true,
        );
        return Ok(cast_back(a.device().tensor_from_vec(product, (m, n))));
    }
    let (p, q) = (
        E::from_f64(p).unwrap_or_else(E::nan),
        E::from_f64(q).unwrap_or_else(E::nan),
    );
    try_matmul_transposed_a(a, b)?
        .try_mul(p)?
        .try_sub(try_matmul_transposed_a(c, d)?.try_mul(q)?)
}

/// A tensor built on the `f32` CPU path, as the caller's type (which it is: `E` and `D` were
/// identified by downcasting).
fn cast_back<S: Shape, E: Element, D: Device<E>>(tensor: Tensor<S, f32, Cpu>) -> Tensor<S, E, D> {
    let tensor: Box<dyn Any> = Box::new(tensor);
    *tensor
        .downcast::<Tensor<S, E, D>>()
        .unwrap_or_else(|_| unreachable!("called after `E` and `D` were identified"))
}

/// The product on [`crate::gemm`] when the tensors are `f32` on [`Cpu`]; `None` otherwise.
/// `a` is `[M, K]` (`[K, M]` when `transpose_a`), `b` `[K, N]` (`[N, K]` when `transpose_b`).
fn on_cpu_f32<SA: Shape, SB: Shape, M: Dim, N: Dim, E: Element, D: Device<E>>(
    a: &Tensor<SA, E, D>,
    transpose_a: bool,
    b: &Tensor<SB, E, D>,
    transpose_b: bool,
    shape: (M, N),
    k: usize,
) -> Result<Option<Tensor<(M, N), E, D>>, D::Err> {
    let (Some(a), Some(b)) = (
        (a as &dyn Any).downcast_ref::<Tensor<SA, f32, Cpu>>(),
        (b as &dyn Any).downcast_ref::<Tensor<SB, f32, Cpu>>(),
    ) else {
        return Ok(None);
    };
    let (m, n) = (shape.0.size(), shape.1.size());
    let device = a.device().clone();
    let (a_values, b_values) = (logical_values(a), logical_values(b));
    let mut product = vec![0.0f32; m * n];
    gemm::try_gemm(
        (&a_values, transpose_a),
        (&b_values, transpose_b),
        &mut product,
        [m, k, n],
        false,
    );
    let product: Box<dyn Any> = Box::new(device.tensor_from_vec(product, shape));
    // `Tensor<(M, N), f32, Cpu>` is `Tensor<(M, N), E, D>` here: `E` and `D` were identified above.
    Ok(product
        .downcast::<Tensor<(M, N), E, D>>()
        .ok()
        .map(|product| *product))
}

/// A tensor's values in their logical (row-major) order, whatever its strides.
fn logical_values<S: Shape>(tensor: &Tensor<S, f32, Cpu>) -> Vec<f32> {
    let mut values = vec![0.0; tensor.shape().num_elements()];
    // `copy_into` copies the storage as it lies; a permuted or broadcast view is made
    // contiguous first.
    tensor.clone().contiguous().copy_into(&mut values);
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: u64) -> Vec<f64> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
            })
            .collect()
    }

    /// The `f32` GEMM path against dfdx's matmul in `f64` (which takes the fallback) on the
    /// same values, for each of the three forms, with a run-time and a compile-time dimension.
    #[test]
    fn the_cpu_f32_path_matches_dfdx_in_f64() {
        let dev = Cpu::default();
        const K: usize = 70;
        let (m, n) = (37usize, 129usize);
        let a64 = values(m * K, 1);
        let b64 = values(K * n, 2);
        let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let check = |fast: Vec<f32>, reference: Vec<f64>, what: &str| {
            assert_eq!(fast.len(), reference.len());
            for (index, (f, r)) in fast.iter().zip(&reference).enumerate() {
                assert!(
                    (f64::from(*f) - r).abs() < 1e-4,
                    "{what}[{index}]: {f} against {r}"
                );
            }
            assert!(fast.iter().any(|&v| v != 0.0));
        };

        let a = dev.tensor_from_vec(f32s(&a64), (m, Const::<K>));
        let b = dev.tensor_from_vec(f32s(&b64), (Const::<K>, n));
        let (a_ref, b_ref) = (
            dev.tensor_from_vec(a64.clone(), (m, Const::<K>)),
            dev.tensor_from_vec(b64.clone(), (Const::<K>, n)),
        );
        check(
            try_matmul(&a, &b).unwrap().as_vec(),
            try_matmul(&a_ref, &b_ref).unwrap().as_vec(),
            "A·B",
        );

        // Aᵀ·B with A stored [K, M]: the same numbers laid out transposed.
        let a_t: Vec<f64> = (0..K * m).map(|i| a64[(i % m) * K + i / m]).collect();
        let a_t32 = dev.tensor_from_vec(f32s(&a_t), (Const::<K>, m));
        check(
            try_matmul_transposed_a(&a_t32, &b).unwrap().as_vec(),
            try_matmul(&a_ref, &b_ref).unwrap().as_vec(),
            "Aᵀ·B",
        );

        // A·Bᵀ with B stored [N, K].
        let b_t: Vec<f64> = (0..n * K).map(|i| b64[(i % K) * n + i / K]).collect();
        let b_t32 = dev.tensor_from_vec(f32s(&b_t), (n, Const::<K>));
        let b_t64 = dev.tensor_from_vec(b_t, (n, Const::<K>));
        check(
            try_matmul_transposed_b(&a, &b_t32).unwrap().as_vec(),
            try_matmul(&a_ref, &b_ref).unwrap().as_vec(),
            "A·Bᵀ",
        );
        // The f64 fallbacks of the transposed forms agree with the plain product too.
        let plain = try_matmul(&a_ref, &b_ref).unwrap().as_vec();
        let via_t = try_matmul_transposed_b(&a_ref, &b_t64).unwrap().as_vec();
        assert!(plain.iter().zip(&via_t).all(|(x, y)| (x - y).abs() < 1e-12));
    }

    /// The fused RBM products' `f32` CPU path against their `f64` fallback (dfdx's ops).
    #[test]
    fn fused_products_match_the_dfdx_composition() {
        let dev = Cpu::default();
        const K: usize = 70;
        let (m, n, rows2) = (37usize, 129usize, 23usize);
        let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let close = |fast: Vec<f32>, reference: Vec<f64>, what: &str| {
            assert_eq!(fast.len(), reference.len());
            assert!(
                reference.iter().any(|&r| r.abs() > 0.1),
                "{what}: a trivial case"
            );
            for (index, (f, r)) in fast.iter().zip(&reference).enumerate() {
                assert!(
                    (f64::from(*f) - r).abs() < 1e-5 * (1.0 + r.abs()),
                    "{what}[{index}]: {f} against {r}"
                );
            }
        };
        let (a64, w64, bias64) = (values(m * K, 3), values(K * n, 4), values(n, 5));
        let a = dev.tensor_from_vec(f32s(&a64), (m, Const::<K>));
        let a_ref = dev.tensor_from_vec(a64, (m, Const::<K>));
        let bias = dev.tensor_from_vec(f32s(&bias64), (n,));
        let bias_ref = dev.tensor_from_vec(bias64, (n,));
        // σ(A·W + c) with W stored [K, N], and σ(A·Wᵀ + c) with it stored [N, K].
        let w = dev.tensor_from_vec(f32s(&w64), (Const::<K>, n));
        let w_ref = dev.tensor_from_vec(w64.clone(), (Const::<K>, n));
        close(
            try_sigmoid_affine(&a, &w, false, &bias).unwrap().as_vec(),
            try_sigmoid_affine(&a_ref, &w_ref, false, &bias_ref)
                .unwrap()
                .as_vec(),
            "σ(A·W + c)",
        );
        let w_t: Vec<f64> = (0..n * K).map(|i| w64[(i % K) * n + i / K]).collect();
        let w_t32 = dev.tensor_from_vec(f32s(&w_t), (n, Const::<K>));
        close(
            try_sigmoid_affine(&a, &w_t32, true, &bias)
                .unwrap()
                .as_vec(),
            try_sigmoid_affine(&a_ref, &w_ref, false, &bias_ref)
                .unwrap()
                .as_vec(),
            "σ(A·Wᵀ + c)",
        );
        // p·AᵀB − q·CᵀD with different row counts.
        let (b64, c64, d64) = (values(m * n, 6), values(rows2 * K, 7), values(rows2 * n, 8));
        let b = dev.tensor_from_vec(f32s(&b64), (m, n));
        let c = dev.tensor_from_vec(f32s(&c64), (rows2, Const::<K>));
        let d = dev.tensor_from_vec(f32s(&d64), (rows2, n));
        let (b_ref, c_ref, d_ref) = (
            dev.tensor_from_vec(b64, (m, n)),
            dev.tensor_from_vec(c64, (rows2, Const::<K>)),
            dev.tensor_from_vec(d64, (rows2, n)),
        );
        close(
            try_gram_difference((&a, &b, 0.25), (&c, &d, 0.5))
                .unwrap()
                .as_vec(),
            try_gram_difference((&a_ref, &b_ref, 0.25), (&c_ref, &d_ref, 0.5))
                .unwrap()
                .as_vec(),
            "p·AᵀB − q·CᵀD",
        );
    }

    #[test]
    fn reads_a_permuted_operand_in_its_logical_order() {
        let dev = Cpu::default();
        let stored: Tensor<Rank2<5, 4>, f32, Cpu> =
            dev.tensor_from_vec((0..20).map(|i| i as f32).collect(), (Const, Const));
        let a = stored.clone().permute::<Rank2<4, 5>, _>();
        let b: Tensor<Rank2<5, 3>, f32, Cpu> = dev.tensor_from_vec(
            (0..15).map(|i| (i as f32) * 0.5 - 3.0).collect(),
            (Const, Const),
        );
        let fast = try_matmul(&a, &b).unwrap().as_vec();
        let reference = a.matmul(b).as_vec();
        assert_eq!(fast, reference);
    }
}
