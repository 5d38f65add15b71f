//! `C (+)= A·B` for `f32` row-major matrices with a register-tiled SIMD loop: the per-step
//! matmuls of the recurrence (`h·W_hhᵀ` forward, `∂P·W_hh` backward), `[B, K]·[K, N]` with a
//! batch of tens of rows, where a general GEMM's packing and dispatch cost as much as the
//! arithmetic. `B` (the weights, laid out once per run) is read where it lies: each 4 × 16
//! block of `C` stays in eight vector registers across all of `K`, per `k` two loads of `B`,
//! four broadcasts of `A` and eight fused multiply-adds.
//!
//! As in the convolution kernel, the loop is written over fixed-size arrays that LLVM turns
//! into SIMD code, compiled a second time with AVX2 and FMA on x86-64 and chosen at run time.
//! On a CPU with AVX-512 the products with a packed `B` (every per-step product) take an
//! 8 × 32 block instead: sixteen 512-bit registers of sums, two panels of `B` per load pair,
//! sixteen multiply-adds per step of `k` (the 4 × 16 block's eight chains, in 512-bit
//! registers, leave the two FMA units waiting on their latency). Each lane adds the same
//! products in the same order as the AVX2 block, so the results are the same bits (tested).

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
    /// The panels' rows, 64-byte aligned for the 512-bit loads.
    panels: Vec<PanelRow>,
}

/// One row of a 16-column panel, aligned to a cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct PanelRow([f32; COLUMNS]);

impl Packed {
    /// The panels as one flat slice of `f32`.
    fn values(&self) -> &[f32] {
        // SAFETY: `PanelRow` is `repr(C)` around `[f32; 16]`, 64 bytes with no padding.
        unsafe {
            core::slice::from_raw_parts(
                self.panels.as_ptr().cast::<f32>(),
                self.panels.len() * COLUMNS,
            )
        }
    }
}

impl Packed {
    /// `b` (`[k, n]`, row-major) packed, when `E` is `f32` and `n` a multiple of 16.
    pub(crate) fn new<E: Element>(b: &[E], k: usize, n: usize) -> Option<Self> {
        let b = as_f32(b)?;
        if !n.is_multiple_of(COLUMNS) || b.len() != k * n {
            return None;
        }
        let mut panels = Vec::with_capacity(k * n / COLUMNS);
        for column in (0..n).step_by(COLUMNS) {
            for row in b.chunks_exact(n) {
                let values = &row[column..column + COLUMNS];
                panels.push(PanelRow(
                    values.try_into().unwrap_or_else(|_| unreachable!()),
                ));
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
    if let Right::Packed(packed) = b {
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX-512, AVX2 and FMA.
            unsafe { avx512::matmul_packed(a, packed, c, dims[0], accumulate) };
            return;
        }
    }
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
    for block in Block::along_depth([k, n], accumulate) {
        let Block { k0, depth, .. } = block;
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
                    &b.values()[at..at + depth * COLUMNS]
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

impl Block {
    /// The depth blocks of a `[·, k]·[k, n]` product, `DEPTH` rows of `b` each, in order:
    /// the first adds to `c` only when `accumulate`, the later ones always. Every copy of the
    /// kernel sums in these blocks, which is what keeps their bits the same.
    fn along_depth([k, n]: [usize; 2], accumulate: bool) -> impl Iterator<Item = Block> {
        (0..k).step_by(DEPTH).map(move |k0| Block {
            k,
            n,
            k0,
            depth: DEPTH.min(k - k0),
            accumulate: accumulate || k0 > 0,
        })
    }
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

/// The products with a packed `B` in 512-bit registers: 8 × 32 blocks of `C` (fewer rows at
/// the bottom, one panel at the right when `N / 16` is odd), over the same depth blocks as
/// [`matmul`], so every sum is the same bits as the AVX2 block's.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use core::arch::x86_64::*;

    use super::{Block, Packed, PanelRow, COLUMNS};

    /// Rows of `C` per block: sixteen registers of sums with two panels.
    const ROWS: usize = 8;

    /// `c = a·b` (or `c += a·b` when `accumulate`) for `a` `[m, k]` and `c` `[m, n]`.
    ///
    /// # Safety
    /// The CPU has AVX-512, AVX2 and FMA.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn matmul_packed(
        a: &[f32],
        b: &Packed,
        c: &mut [f32],
        m: usize,
        accumulate: bool,
    ) {
        let (k, n) = (b.k, b.n);
        assert!(a.len() >= m * k && c.len() >= m * n);
        let panels = n / COLUMNS;
        for block in Block::along_depth([k, n], accumulate) {
            let Block { k0, depth, .. } = block;
            // Within a depth block, every row block for a pair of panels before the next
            // pair: the pair's rows (`depth × 32` values) stay in L1 while the rows pass.
            for first in (0..panels).step_by(2) {
                let panel = |p: usize| &b.panels[p * k + k0..p * k + k0 + depth];
                let column = first * COLUMNS;
                let mut row = 0;
                while row < m {
                    let rows = ROWS.min(m - row);
                    let at = [row, column];
                    // SAFETY: the CPU has AVX-512 (this function's contract); the block lies
                    // in `a` and `c` (asserted above, `row + rows <= m`).
                    unsafe {
                        if first + 1 < panels {
                            let pair = [panel(first), panel(first + 1)];
                            by_rows::<2>(rows, a, pair, c, block, at);
                        } else {
                            by_rows::<1>(rows, a, [panel(first)], c, block, at);
                        }
                    }
                    row += rows;
                }
            }
        }
    }

    /// [`tile`] with its row count chosen at run time.
    #[inline(always)]
    unsafe fn by_rows<const P: usize>(
        rows: usize,
        a: &[f32],
        panels: [&[PanelRow]; P],
        c: &mut [f32],
        block: Block,
        at: [usize; 2],
    ) {
        // SAFETY: the caller's contract.
        unsafe {
            match rows {
                8 => tile::<8, P>(a, panels, c, block, at),
                7 => tile::<7, P>(a, panels, c, block, at),
                6 => tile::<6, P>(a, panels, c, block, at),
                5 => tile::<5, P>(a, panels, c, block, at),
                4 => tile::<4, P>(a, panels, c, block, at),
                3 => tile::<3, P>(a, panels, c, block, at),
                2 => tile::<2, P>(a, panels, c, block, at),
                _ => tile::<1, P>(a, panels, c, block, at),
            }
        }
    }

    /// One `R × 16·P` block of `C` at `[row, column]` over one depth block, from `P` packed
    /// panels of `B` (each `[depth, 16]`).
    ///
    /// # Safety
    /// AVX-512; rows `row..row + R` of `a` and `c` exist.
    #[inline(always)]
    unsafe fn tile<const R: usize, const P: usize>(
        a: &[f32],
        panels: [&[PanelRow]; P],
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
        assert!((row + R) * k <= a.len() && (row + R) * n <= c.len());
        assert!(column + P * COLUMNS <= n && panels.iter().all(|p| p.len() == depth));
        let a_rows: [*const f32; R] = core::array::from_fn(|r| a[(row + r) * k + k0..].as_ptr());
        let mut acc = [[_mm512_setzero_ps(); P]; R];
        // `p` indexes every panel and every row of `a` at once.
        #[allow(clippy::needless_range_loop)]
        for p in 0..depth {
            // SAFETY: a `PanelRow` is 16 floats, 64-byte aligned; `p < depth` lies in every
            // panel (asserted above) and, past `k0`, in every row of `a` (`k0 + depth <= k`
            // for every `Block::along_depth`).
            unsafe {
                let b: [__m512; P] =
                    core::array::from_fn(|i| _mm512_load_ps(panels[i][p].0.as_ptr()));
                for (acc_row, a_row) in acc.iter_mut().zip(a_rows) {
                    let a_value = _mm512_set1_ps(*a_row.add(p));
                    for (acc, b) in acc_row.iter_mut().zip(b) {
                        *acc = _mm512_fmadd_ps(a_value, b, *acc);
                    }
                }
            }
        }
        for (r, acc_row) in acc.iter().enumerate() {
            for (i, &sum) in acc_row.iter().enumerate() {
                let at = (row + r) * n + column + i * COLUMNS;
                let out = &mut c[at..at + COLUMNS];
                // SAFETY: `out` is 16 floats.
                unsafe {
                    let sum = if accumulate {
                        _mm512_add_ps(_mm512_loadu_ps(out.as_ptr()), sum)
                    } else {
                        sum
                    };
                    _mm512_storeu_ps(out.as_mut_ptr(), sum);
                }
            }
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

    /// The 512-bit blocks add the same products in the same order as the AVX2 block: the
    /// same bits, on values whose sums round, for every row count of a block, an odd number of
    /// panels and two depth blocks.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_blocks_give_the_avx2_bits() {
        if !(is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma"))
        {
            eprintln!("skipped: this CPU has no AVX-512");
            return;
        }
        let value =
            |i: usize, seed: usize| (((i * 2654435761 + seed) % 1000) as f32 - 500.0) / 317.0;
        for [m, k, n] in [
            [16, 128, 512],
            [17, 300, 48],
            [5, 7, 16],
            [9, 512, 128],
            [32, 1, 64],
        ] {
            let a: Vec<f32> = (0..m * k).map(|i| value(i, 1)).collect();
            let b: Vec<f32> = (0..k * n).map(|i| value(i, 2)).collect();
            let packed = Packed::new(&b, k, n).unwrap();
            for accumulate in [false, true] {
                let start: Vec<f32> = (0..m * n).map(|i| value(i, 3)).collect();
                let mut wide = start.clone();
                let mut narrow = start.clone();
                // SAFETY: the CPU has AVX-512, AVX2 and FMA (checked above).
                unsafe {
                    avx512::matmul_packed(&a, &packed, &mut wide, m, accumulate);
                    matmul_avx2(
                        &a,
                        Right::Packed(&packed),
                        &mut narrow,
                        [m, k, n],
                        accumulate,
                    );
                }
                let same_bits = wide
                    .iter()
                    .zip(&narrow)
                    .all(|(w, v)| w.to_bits() == v.to_bits());
                assert!(same_bits, "{m}×{k}·{k}×{n}, accumulate {accumulate}");
                assert_ne!(wide, start);
            }
        }
    }
}
