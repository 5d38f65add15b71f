//! `C (+)= A·B` for `f32` row-major matrices with a register-tiled SIMD loop: the per-step
//! matmuls of the recurrence (`h·W_hhᵀ` forward, `∂P·W_hh` backward), `[B, K]·[K, N]` with a
//! batch of tens of rows, where a general GEMM's packing and dispatch cost as much as the
//! arithmetic. `B` (the weights, laid out once per run) is read where it lies: each 4 × 16
//! block of `C` stays in eight vector registers across all of `K`, per `k` two loads of `B`,
//! four broadcasts of `A` and eight fused multiply-adds.
//!
//! As in the convolution kernel, the loop is written over fixed-size arrays that LLVM turns
//! into SIMD code, compiled a second time with AVX2 and FMA on x86-64 and chosen at run time.

use core::any::TypeId;

use rayon::prelude::*;

use crate::network::Element;

/// Rows of `C` per register tile.
const ROWS: usize = 4;
/// Columns of `C` per register tile (two AVX vectors of `f32`).
const COLUMNS: usize = 16;
/// Below this many multiply-adds one thread does the whole product.
pub(crate) const PARALLEL_WORK: usize = 1 << 19;

/// A right-hand matrix `[k, n]` (`n` a multiple of 16) laid out once for many products: its
/// 16-column panels one after the other, each `[k, 16]` row-major.
pub(crate) struct Packed {
    k: usize,
    n: usize,
    panels: Vec<f32>,
}

impl Packed {
    /// `b` (`[k, n]`, row-major) packed, when `E` is `f32` and `n` a multiple of 16.
    pub(crate) fn new<E: Element>(b: &[E], k: usize, n: usize) -> Option<Self> {
        let b = as_f32(b)?;
        if !n.is_multiple_of(COLUMNS) || b.len() != k * n {
            return None;
        }
        let mut panels = Vec::with_capacity(k * n);
        for column in (0..n).step_by(COLUMNS) {
            for row in b.chunks_exact(n) {
                panels.extend_from_slice(&row[column..column + COLUMNS]);
            }
        }
        Some(Self { k, n, panels })
    }
}

/// Where the kernel reads `b`: row-major (each panel packed on the way), or packed before.
#[derive(Clone, Copy)]
enum Right<'a> {
    Rows(&'a [f32]),
    Packed(&'a Packed),
}

fn as_f32<E: Element>(v: &[E]) -> Option<&[f32]> {
    // SAFETY: `E` is `f32` (same type id).
    (TypeId::of::<E>() == TypeId::of::<f32>())
        .then(|| unsafe { core::slice::from_raw_parts(v.as_ptr().cast::<f32>(), v.len()) })
}

/// `c = a·b` (or `c += a·b` when `accumulate`) for `a` `[m, k]` and `c` `[m, n]` row-major,
/// `b` packed (`[k, n]`), split between two threads when large and `parallel` (callers that
/// already run on one thread of several pass `false`). Returns `false`, doing nothing, unless
/// `E` is `f32`.
pub(crate) fn try_matmul_packed<E: Element>(
    a: &[E],
    b: &Packed,
    c: &mut [E],
    m: usize,
    accumulate: bool,
    parallel: bool,
) -> bool {
    let (k, n) = (b.k, b.n);
    run(a, Right::Packed(b), c, [m, k, n], accumulate, parallel)
}

/// `c = a·b` (or `c += a·b` when `accumulate`) for `a` `[m, k]`, `b` `[k, n]`, `c` `[m, n]`,
/// all row-major and contiguous. Returns `false`, doing nothing, unless `E` is `f32`.
pub(crate) fn try_matmul<E: Element>(
    a: &[E],
    b: &[E],
    c: &mut [E],
    [m, k, n]: [usize; 3],
    accumulate: bool,
) -> bool {
    match as_f32(b) {
        Some(b) => {
            assert!(b.len() >= k * n);
            run(a, Right::Rows(&b[..k * n]), c, [m, k, n], accumulate, true)
        }
        None => false,
    }
}

fn run<E: Element>(
    a: &[E],
    b: Right<'_>,
    c: &mut [E],
    [m, k, n]: [usize; 3],
    accumulate: bool,
    parallel: bool,
) -> bool {
    if TypeId::of::<E>() != TypeId::of::<f32>() {
        return false;
    }
    assert!(a.len() >= m * k && c.len() >= m * n);
    // SAFETY: `E` is `f32` (same type id).
    let (a, c) = unsafe {
        (
            core::slice::from_raw_parts(a.as_ptr().cast::<f32>(), m * k),
            core::slice::from_raw_parts_mut(c.as_mut_ptr().cast::<f32>(), m * n),
        )
    };
    if parallel && m * k * n >= PARALLEL_WORK && m >= 2 * ROWS {
        // Two halves of the rows (whole tiles), one per thread.
        let split = (m / 2).div_ceil(ROWS) * ROWS;
        let (a0, a1) = a.split_at(split * k);
        let (c0, c1) = c.split_at_mut(split * n);
        [(a0, c0, split), (a1, c1, m - split)]
            .into_par_iter()
            .for_each(|(a, c, rows)| dispatch(a, b, c, [rows, k, n], accumulate));
    } else {
        dispatch(a, b, c, [m, k, n], accumulate);
    }
    true
}

fn dispatch(a: &[f32], b: Right<'_>, c: &mut [f32], dims: [usize; 3], accumulate: bool) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA.
        unsafe { matmul_avx2(a, b, c, dims, accumulate) };
        return;
    }
    matmul::<false>(a, b, c, dims, accumulate);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn matmul_avx2(a: &[f32], b: Right<'_>, c: &mut [f32], dims: [usize; 3], accumulate: bool) {
    matmul::<true>(a, b, c, dims, accumulate)
}

#[inline(always)]
fn matmul<const FMA: bool>(
    a: &[f32],
    b: Right<'_>,
    c: &mut [f32],
    [m, k, n]: [usize; 3],
    accumulate: bool,
) {
    let full = n / COLUMNS * COLUMNS;
    let mut panel = [0.0_f32; DEPTH * COLUMNS];
    // Blocks of `DEPTH` along `k`, and within one every row tile for a column panel of `b`
    // before the next panel: the panel's `DEPTH × 16` values stay in L1 while the rows pass.
    for k0 in (0..k).step_by(DEPTH) {
        let depth = DEPTH.min(k - k0);
        let block = Block {
            k,
            n,
            k0,
            depth,
            accumulate: accumulate || k0 > 0,
        };
        for column in (0..full).step_by(COLUMNS) {
            // The panel packed contiguously: `b`'s rows lie `n` apart, and with `n` a multiple
            // of 512 bytes they would fall into a few sets of the L1 cache and evict each other.
            let panel: &[f32] = match b {
                Right::Rows(b) => {
                    for (p, packed) in panel.chunks_exact_mut(COLUMNS).take(depth).enumerate() {
                        let at = (k0 + p) * n + column;
                        packed.copy_from_slice(&b[at..at + COLUMNS]);
                    }
                    &panel[..depth * COLUMNS]
                }
                Right::Packed(b) => {
                    let at = column * k + k0 * COLUMNS;
                    &b.panels[at..at + depth * COLUMNS]
                }
            };
            let mut row = 0;
            while row < m {
                let rows = ROWS.min(m - row);
                match rows {
                    4 => tile::<4, FMA>(a, panel, c, block, [row, column]),
                    3 => tile::<3, FMA>(a, panel, c, block, [row, column]),
                    2 => tile::<2, FMA>(a, panel, c, block, [row, column]),
                    _ => tile::<1, FMA>(a, panel, c, block, [row, column]),
                }
                row += rows;
            }
        }
    }
    // The columns that do not fill a tile, one at a time (never for a packed `b`).
    let Right::Rows(b) = b else { return };
    for r in 0..m {
        for column in full..n {
            let mut sum = 0.0;
            for p in 0..k {
                sum += a[r * k + p] * b[p * n + column];
            }
            let out = &mut c[r * n + column];
            *out = if accumulate { *out + sum } else { sum };
        }
    }
}

/// The rows of `k` a tile sums over at a time.
const DEPTH: usize = 256;

/// Where a tile reads: `a` `[m, k]`, `b` `[k, n]`, the rows `k0..k0 + depth` of `b` (columns
/// of `a`); whether it adds to `c` or overwrites it.
#[derive(Clone, Copy)]
struct Block {
    k: usize,
    n: usize,
    k0: usize,
    depth: usize,
    accumulate: bool,
}

/// One `R × 16` block of `C` at `[row, column]`, over one depth block, from the packed
/// panel of `b` (`[depth, 16]`).
#[inline(always)]
fn tile<const R: usize, const FMA: bool>(
    a: &[f32],
    panel: &[f32],
    c: &mut [f32],
    block: Block,
    [row, column]: [usize; 2],
) {
    let Block {
        k,
        n,
        k0,
        depth,
        accumulate,
    } = block;
    debug_assert_eq!(panel.len(), depth * COLUMNS);
    let a_rows: [&[f32]; R] =
        core::array::from_fn(|r| &a[(row + r) * k + k0..(row + r) * k + k0 + depth]);
    let mut acc = [[0.0_f32; COLUMNS]; R];
    for (p, b_row) in panel.chunks_exact(COLUMNS).enumerate() {
        let b_row: &[f32; COLUMNS] = b_row.try_into().unwrap_or_else(|_| unreachable!());
        for r in 0..R {
            let a_value = a_rows[r][p];
            for l in 0..COLUMNS {
                acc[r][l] = if FMA {
                    a_value.mul_add(b_row[l], acc[r][l])
                } else {
                    a_value * b_row[l] + acc[r][l]
                };
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        let at = (row + r) * n + column;
        let out = &mut c[at..at + COLUMNS];
        if accumulate {
            for (o, v) in out.iter_mut().zip(acc) {
                *o += v;
            }
        } else {
            out.copy_from_slice(acc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_naive_product() {
        for [m, k, n] in [
            [1, 1, 1],
            [3, 5, 16],
            [7, 9, 37],
            [32, 128, 512],
            [9, 3, 33],
            [10, 600, 35],
        ] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 - 5.0).collect();
            let mut expected = vec![1.0_f32; m * n];
            for i in 0..m {
                for j in 0..n {
                    for p in 0..k {
                        expected[i * n + j] += a[i * k + p] * b[p * n + j];
                    }
                }
            }
            let mut c = vec![1.0_f32; m * n];
            assert!(try_matmul(&a, &b, &mut c, [m, k, n], true));
            assert_eq!(c, expected, "{m}×{k}·{k}×{n}, accumulated");
            let mut c = vec![5.0_f32; m * n];
            assert!(try_matmul(&a, &b, &mut c, [m, k, n], false));
            let expected: Vec<f32> = expected.iter().map(|v| v - 1.0).collect();
            assert_eq!(c, expected, "{m}×{k}·{k}×{n}");
            if let Some(packed) = Packed::new(&b, k, n) {
                let mut c = vec![5.0_f32; m * n];
                assert!(try_matmul_packed(&a, &packed, &mut c, m, false, true));
                assert_eq!(c, expected, "{m}×{k}·{k}×{n}, packed");
            }
        }
        assert!(!try_matmul(
            &[1.0_f64],
            &[1.0],
            &mut [0.0],
            [1, 1, 1],
            false
        ));
    }
}
