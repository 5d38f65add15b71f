//! `C (+)= A·B` in `f32`: the matrix product under typednet's dense layers on the CPU.
//!
//! dfdx 0.13 multiplies with the `gemm` crate, which reaches about 60% of this machine's
//! oneDNN/MKL `sgemm` (105 against 176 GFLOP/s on 2048³, two threads; `BENCHMARKS.md`), and the
//! dense layers' training steps (MLP, autoencoders, VAE, GAN, RBM) are mostly matrix products.
//! This is the classic Goto/BLIS blocking, written out once:
//!
//! - `B` is cut into blocks of `KC` rows × `NC` columns and each block is packed into panels of
//!   `NR` = 16 columns (`[KC, 16]`, 64-byte aligned), so that the micro-kernel reads it
//!   sequentially from L1;
//! - `A` is cut into strips of `MR` = 6 rows and packed `[KC, 6]`, unless its rows are
//!   contiguous and the block of `B` has at most four panels (a convolution's weights against
//!   the few positions of one example): then each strip is used so few times that packing
//!   costs more than it saves, and the micro-kernel reads the six rows where they lie
//!   (ResNet-18 at batch 1: 34.4 → 33.3 ms);
//! - the micro-kernel keeps a 6 × 16 tile of `C` in twelve AVX registers over the whole `KC`:
//!   per step two loads of `B`, six broadcasts of `A`, twelve fused multiply-adds.
//!
//! Both operands are read through strides, so `Aᵀ` and `Bᵀ` cost nothing beyond their packing
//! (the packing loop follows whichever stride is 1). The work is split over rayon's threads by
//! tiles of `C` (blocks of strips × groups of panels) after both operands are packed in
//! parallel; small products run on the calling thread.
//!
//! The micro-kernel is compiled three times: with AVX-512, and with AVX2 and FMA, on x86-64,
//! chosen at run time, and as plain Rust over fixed-size arrays (which LLVM vectorises for the
//! baseline target) elsewhere. The AVX-512 copy spans two panels: a 6 × 32 tile, a row of each
//! panel per 512-bit register (twelve multiply-adds per step, as in the AVX2 copy; six, with
//! one panel, left the two FMA units waiting on their latency), and gives the AVX2 copy's bits.
//! On the Zen 5 machine of `BENCHMARKS.md` the 2048³ product took 70.4 ms with AVX2, 50.5 ms
//! with a 6 × 16 tile in 512-bit registers and 38.5 ms with 6 × 32 (244 → 340 → 446 GFLOP/s).
//! [`reference_gemm`] is the readable triple loop the tests hold both against.

use rayon::prelude::*;

/// Rows of `C` per micro-kernel tile.
const MR: usize = 6;
/// Columns of `C` per micro-kernel tile: two AVX vectors of `f32`.
const NR: usize = 16;
/// Greatest depth of one packed block: `[KC, NR]` of `B` (24 KiB) stays in L1, `[MC, KC]` of
/// `A` (144 KiB) in L2. Depths are split into equal blocks of at most this.
const KC: usize = 384;
/// Columns of `B` per packed block.
const NC: usize = 1024;
/// Rows of `C` per parallel task, at most (a multiple of `MR`).
const MC: usize = 96;
/// Below this many multiply-adds the product runs on the calling thread: rayon's hand-off
/// (a few µs) costs more than it saves.
const PARALLEL_WORK: usize = 1 << 18;

/// Where the rows (or the columns) of a [`MatrixRef`] start in its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Axis<'a> {
    /// Row (column) `i` starts at `i·stride`.
    Stride(usize),
    /// Row (column) `i` starts at `offsets[i]`: any gather of rows, such as the windows of a
    /// convolution (each tap's row is the input shifted by the tap's offset).
    Offsets(&'a [usize]),
}

impl Axis<'_> {
    #[inline]
    fn start(&self, i: usize) -> usize {
        match self {
            Self::Stride(stride) => i * stride,
            Self::Offsets(offsets) => offsets[i],
        }
    }

    /// The stride when this axis is a plain stride.
    fn stride(&self) -> Option<usize> {
        match self {
            Self::Stride(stride) => Some(*stride),
            Self::Offsets(_) => None,
        }
    }
}

/// A read-only view of an `f32` matrix: element `(i, j)` is `data[row(i) + column(j)]`, where a
/// row or column start is a stride times its index (an ordinary matrix or its transpose) or
/// read from a table of offsets ([`MatrixRef::rows_at`]).
#[derive(Clone, Copy, Debug)]
pub struct MatrixRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_axis: Axis<'a>,
    col_axis: Axis<'a>,
}

impl<'a> MatrixRef<'a> {
    /// A contiguous row-major `[rows, cols]` matrix. Panics if `data` is shorter.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert!(
            data.len() >= rows * cols,
            "matrix [{rows}, {cols}] in {} elements",
            data.len()
        );
        Self {
            data,
            rows,
            cols,
            row_axis: Axis::Stride(cols),
            col_axis: Axis::Stride(1),
        }
    }

    /// A `[row_offsets.len(), cols]` matrix whose row `i` is `data[row_offsets[i]..][..cols]`.
    /// Rows may overlap: with the offsets of a convolution's window taps in a padded input,
    /// this is the im2col matrix without building it. Panics if a row runs past `data`.
    pub fn rows_at(data: &'a [f32], row_offsets: &'a [usize], cols: usize) -> Self {
        if let Some(&last) = row_offsets.iter().max() {
            assert!(
                last + cols <= data.len(),
                "a row at {last} of {cols} elements in {} elements",
                data.len()
            );
        }
        Self {
            data,
            rows: row_offsets.len(),
            cols,
            row_axis: Axis::Offsets(row_offsets),
            col_axis: Axis::Stride(1),
        }
    }

    /// The transpose: a view with rows and columns swapped, no copy.
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_axis: self.col_axis,
            col_axis: self.row_axis,
            ..self
        }
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    #[inline]
    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[self.row_axis.start(i) + self.col_axis.start(j)]
    }

    /// Whether each row is contiguous.
    fn rows_are_contiguous(&self) -> bool {
        self.col_axis == Axis::Stride(1)
    }
}

/// `c = a·b`, or `c += a·b` when `accumulate`, for `a` `[m, k]`, `b` `[k, n]` and `c` a
/// contiguous row-major `[m, n]`. Panics if the sizes disagree.
pub fn gemm(a: MatrixRef<'_>, b: MatrixRef<'_>, c: &mut [f32], accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(
        b.rows, k,
        "gemm: a is [{m}, {k}] but b is [{}, {n}]",
        b.rows
    );
    assert!(
        c.len() >= m * n,
        "gemm: c has {} elements for [{m}, {n}]",
        c.len()
    );
    let c = &mut c[..m * n];
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.fill(0.0);
        }
        return;
    }
    keep_freed_memory_mapped();
    let kernel = MicroKernel::detect();
    let depth_blocks = k.div_ceil(KC);
    // Equal depth blocks (784 = 2 × 392 rather than 256 + 256 + 256 + 16).
    let kc = k.div_ceil(depth_blocks);
    let product = Product {
        a,
        b,
        kc,
        n,
        accumulate,
        kernel,
    };
    let out = SharedOut(c.as_mut_ptr());
    let threads = rayon::current_num_threads();
    if m * k * n < PARALLEL_WORK || threads == 1 {
        // SAFETY: one task covers all of `c`.
        unsafe { product.rectangle(out, 0..m, 0..n) };
        return;
    }
    // One rectangle of `C` per thread, each a whole sequential product of its own (packing its
    // share of `A` and `B`): one fork and join per call, and packing duplicated only across
    // rectangles (`B`'s columns once per row group, `A`'s rows once per column group).
    let (row_groups, column_groups) = split(m, n, threads);
    let rows_per_group = m.div_ceil(row_groups).div_ceil(MR) * MR;
    let columns_per_group = n.div_ceil(column_groups).div_ceil(NR) * NR;
    (0..row_groups * column_groups)
        .into_par_iter()
        .for_each(|task| {
            let (row_group, column_group) = (task / column_groups, task % column_groups);
            let rows = row_group * rows_per_group..m.min((row_group + 1) * rows_per_group);
            let columns =
                column_group * columns_per_group..n.min((column_group + 1) * columns_per_group);
            if !rows.is_empty() && !columns.is_empty() {
                // SAFETY: the rectangles are disjoint.
                unsafe { product.rectangle(out, rows, columns) };
            }
        });
}

/// How many row groups × column groups to cut `C` (`m × n`) into for `threads` threads: the
/// factorisation whose rectangles are closest to square in units of micro-tiles, so that each
/// packs little of the other operand per multiply-add.
fn split(m: usize, n: usize, threads: usize) -> (usize, usize) {
    let (row_tiles, column_tiles) = (
        m.div_ceil(MR) as f64,
        n.div_ceil(NR) as f64 * (NR as f64 / MR as f64),
    );
    (1..=threads)
        .filter(|r| threads.is_multiple_of(*r))
        .map(|r| (r, threads / r))
        .min_by(|&(r1, c1), &(r2, c2)| {
            let shape = |r: usize, c: usize| {
                ((row_tiles / r as f64) / (column_tiles / c as f64))
                    .ln()
                    .abs()
            };
            shape(r1, c1).total_cmp(&shape(r2, c2))
        })
        .unwrap_or((threads, 1))
}

/// [`gemm`] for contiguous operands of any element type: `c` (`[m, k]`) `(+)= op(a)·op(b)` with
/// `op(a)` `[m, k]` stored row-major as `[m, k]`, or as `[k, m]` when `transpose_a` (and likewise
/// `b`). Returns `false`, doing nothing, unless `E` is `f32`.
pub(crate) fn try_gemm<E: 'static>(
    (a, transpose_a): (&[E], bool),
    (b, transpose_b): (&[E], bool),
    c: &mut [E],
    [m, k, n]: [usize; 3],
    accumulate: bool,
) -> bool {
    let (Some(a), Some(b), Some(c)) = (as_f32(a), as_f32(b), as_f32_mut(c)) else {
        return false;
    };
    let a = if transpose_a {
        MatrixRef::row_major(a, k, m).t()
    } else {
        MatrixRef::row_major(a, m, k)
    };
    let b = if transpose_b {
        MatrixRef::row_major(b, n, k).t()
    } else {
        MatrixRef::row_major(b, k, n)
    };
    gemm(a, b, c, accumulate);
    true
}

/// `values` as `f32`, when `E` is `f32`: how code generic over the element type reaches the
/// `f32` kernels.
pub(crate) fn as_f32<E: 'static>(values: &[E]) -> Option<&[f32]> {
    (core::any::TypeId::of::<E>() == core::any::TypeId::of::<f32>())
        // SAFETY: `E` is `f32` (same type id).
        .then(|| unsafe { core::slice::from_raw_parts(values.as_ptr().cast(), values.len()) })
}

/// [`as_f32`] for a mutable slice.
pub(crate) fn as_f32_mut<E: 'static>(values: &mut [E]) -> Option<&mut [f32]> {
    (core::any::TypeId::of::<E>() == core::any::TypeId::of::<f32>())
        // SAFETY: `E` is `f32` (same type id).
        .then(|| unsafe {
            core::slice::from_raw_parts_mut(values.as_mut_ptr().cast(), values.len())
        })
}

/// The plain triple loop, in `f64` accumulators: what [`gemm`] is tested against.
pub fn reference_gemm(a: MatrixRef<'_>, b: MatrixRef<'_>, c: &mut [f32], accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k);
    for i in 0..m {
        for j in 0..n {
            let dot: f64 = (0..k)
                .map(|p| f64::from(a.at(i, p)) * f64::from(b.at(p, j)))
                .sum();
            let out = &mut c[i * n + j];
            *out = if accumulate {
                (f64::from(*out) + dot) as f32
            } else {
                dot as f32
            };
        }
    }
}

/// Raises glibc's thresholds for returning freed memory to the system, once per process.
///
/// glibc `malloc` serves requests above `M_MMAP_THRESHOLD` (128 KiB at start) with a fresh
/// `mmap`, and trims the heap whenever more than `M_TRIM_THRESHOLD` (also 128 KiB at start) lies
/// free at its top. A training step allocates and frees megabytes of activations and gradients,
/// so with the start values every step hands them back and faults them in again, 4 KiB at a
/// time, zeroed by the kernel. glibc raises both thresholds by itself the first time a mapped
/// block is freed (to that block's size, and twice that), which with dfdx's matmul evidently
/// happened (we did not trace which block). With this GEMM, whose packing buffers are kept per
/// thread and whose callers pool their copies, it did not: measured on the deep autoencoder's
/// training step (2 threads), 326,000 page faults in 2 s against 6,900 with dfdx's matmul, and a
/// step 1.4× slower. So the GEMM does it on purpose on its first call: one 16 MiB block,
/// allocated and freed untouched (after which the MLP's steps fault 25,000 times per 2 s).
/// Elsewhere than glibc this is one allocation and one free, and changes nothing.
pub(crate) fn keep_freed_memory_mapped() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let block: Vec<u8> = Vec::with_capacity(16 << 20);
        drop(std::hint::black_box(block));
    });
}

/// One `[KC, NR]` row of a packed `B` panel: 16 floats on a 64-byte boundary (one cache line).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Panel([f32; NR]);

/// Packs rows `depth..depth + kc` and columns `column..column + nc` of `b` into
/// `ceil(nc / NR)` panels, each `kc` rows of [`Panel`], zero past column `nc`.
fn pack_b(
    b: MatrixRef<'_>,
    depth: usize,
    kc: usize,
    column: usize,
    nc: usize,
    out: &mut Vec<Panel>,
    kernel_is_avx2: bool,
) {
    #[cfg(not(target_arch = "x86_64"))]
    let _ = kernel_is_avx2;
    out.clear();
    out.resize(nc.div_ceil(NR) * kc, Panel([0.0; NR]));
    for (index, panel) in out.chunks_exact_mut(kc).enumerate() {
        let first = column + index * NR;
        let width = NR.min(column + nc - first);
        if b.rows_are_contiguous() {
            for (p, row) in panel.iter_mut().enumerate() {
                let start = b.row_axis.start(depth + p) + first;
                row.0[..width].copy_from_slice(&b.data[start..start + width]);
            }
        } else if let (Some(row_stride), Some(col_stride)) =
            (b.row_axis.stride(), b.col_axis.stride())
        {
            // `b` is a transpose: its columns are contiguous. Eight rows of the panel at a
            // time, column by column, so the reads run along the unit stride and the writes
            // stay within eight cache lines.
            let source = &b.data[first * col_stride + depth * row_stride..];
            for (block, rows) in panel.chunks_mut(8).enumerate() {
                let source = &source[block * 8 * row_stride..];
                #[cfg(target_arch = "x86_64")]
                if rows.len() == 8 && row_stride == 1 && kernel_is_avx2 {
                    for half in 0..width / 8 {
                        let first_column = half * 8;
                        let block = &source[first_column * col_stride..][..7 * col_stride + 8];
                        // SAFETY: AVX2 detected; the eight columns of eight contiguous values lie
                        // in `block` (sliced, so checked).
                        unsafe { transpose_8x8_avx2(block, col_stride, rows, first_column) };
                    }
                    for j in width / 8 * 8..width {
                        for (p, row) in rows.iter_mut().enumerate() {
                            row.0[j] = source[j * col_stride + p];
                        }
                    }
                    continue;
                }
                for j in 0..width {
                    let column = &source[j * col_stride..];
                    for (p, row) in rows.iter_mut().enumerate() {
                        row.0[j] = column[p * row_stride];
                    }
                }
            }
        } else if b.row_axis == Axis::Stride(1) {
            // Contiguous columns gathered from a table (the transpose of `MatrixRef::rows_at`):
            // each read along its column; the panel's `kc` rows (24 KiB) stay in L1 meanwhile.
            for j in 0..width {
                let column = &b.data[b.col_axis.start(first + j) + depth..][..kc];
                for (row, &value) in panel.iter_mut().zip(column) {
                    row.0[j] = value;
                }
            }
        } else {
            for (p, row) in panel.iter_mut().enumerate() {
                for (j, slot) in row.0[..width].iter_mut().enumerate() {
                    *slot = b.at(depth + p, first + j);
                }
            }
        }
    }
}

/// Writes the 8 × 8 block `source[j·stride + p]` (`j`, `p` < 8) transposed into
/// `rows[p].0[first_column + j]`.
///
/// # Safety
/// AVX2; `source` holds `7·stride + 8` values; `rows` has 8 panels; `first_column` is 0 or 8.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn transpose_8x8_avx2(
    source: &[f32],
    stride: usize,
    rows: &mut [Panel],
    first_column: usize,
) {
    use core::arch::x86_64::*;
    debug_assert!(source.len() >= 7 * stride + 8 && rows.len() == 8 && first_column <= 8);
    // SAFETY: the caller's contract.
    unsafe {
        let s = source.as_ptr();
        let r: [__m256; 8] = core::array::from_fn(|j| _mm256_loadu_ps(s.add(j * stride)));
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        let out = [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ];
        for (row, value) in rows.iter_mut().zip(out) {
            // 32-byte aligned: a `Panel` is 64-byte aligned and `first_column` is 0 or 8.
            _mm256_store_ps(row.0.as_mut_ptr().add(first_column), value);
        }
    }
}

/// Packs rows `first_row..first_row + mc` and columns `depth..depth + kc` of `a` into
/// `ceil(mc / MR)` strips, each `[kc, MR]` row-major, zero past row `mc`.
fn pack_a(
    a: MatrixRef<'_>,
    first_row: usize,
    mc: usize,
    depth: usize,
    kc: usize,
    out: &mut Vec<f32>,
) {
    out.clear();
    out.resize(mc.div_ceil(MR) * kc * MR, 0.0);
    for (index, strip) in out.chunks_exact_mut(kc * MR).enumerate() {
        let first = first_row + index * MR;
        let height = MR.min(first_row + mc - first);
        if a.rows_are_contiguous() && height == MR {
            // Six rows read side by side, each packed step written whole.
            let rows: [&[f32]; MR] = core::array::from_fn(|i| {
                let start = a.row_axis.start(first + i) + depth;
                &a.data[start..start + kc]
            });
            for (p, step) in strip.chunks_exact_mut(MR).enumerate() {
                step.copy_from_slice(&[
                    rows[0][p], rows[1][p], rows[2][p], rows[3][p], rows[4][p], rows[5][p],
                ]);
            }
        } else if a.rows_are_contiguous() {
            for i in 0..height {
                let start = a.row_axis.start(first + i) + depth;
                for (p, &value) in a.data[start..start + kc].iter().enumerate() {
                    strip[p * MR + i] = value;
                }
            }
        } else {
            for (p, step) in strip.chunks_exact_mut(MR).enumerate() {
                let column = a.col_axis.start(depth + p);
                for (i, slot) in step[..height].iter_mut().enumerate() {
                    *slot = a.data[column + a.row_axis.start(first + i)];
                }
            }
        }
    }
}

thread_local! {
    /// This thread's packing buffers for `A` and `B`, reused from call to call.
    static PACKING: core::cell::Cell<(Vec<f32>, Vec<Panel>)> =
        const { core::cell::Cell::new((Vec::new(), Vec::new())) };
}

/// One product `C (+)= A·B`, to be computed a rectangle of `C` at a time.
struct Product<'a> {
    a: MatrixRef<'a>,
    b: MatrixRef<'a>,
    /// Depth of each packed block.
    kc: usize,
    /// `C`'s row stride.
    n: usize,
    accumulate: bool,
    kernel: MicroKernel,
}

/// `C`'s base pointer, shared by tasks that write disjoint rectangles.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: every task writes a set of `C` elements no other task touches (disjoint rectangles).
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl Product<'_> {
    /// `C[rows, columns] (+)= A[rows, ..]·B[.., columns]`, blocked and packed, on this thread.
    ///
    /// # Safety
    /// No other thread may touch `C[rows, columns]` meanwhile.
    unsafe fn rectangle(
        &self,
        out: SharedOut,
        rows: core::ops::Range<usize>,
        columns: core::ops::Range<usize>,
    ) {
        let k = self.a.cols;
        // The packing buffers (up to a few MiB) are kept per thread: allocated afresh they
        // would be mapped and unmapped by the allocator on every call, and the page faults and
        // TLB shootdowns cost as much as the product (measured: an MLP step twice as slow).
        let (mut packed_a, mut packed_b) = PACKING.with(|buffers| buffers.take());
        for column in columns.clone().step_by(NC) {
            let nc = NC.min(columns.end - column);
            for depth in (0..k).step_by(self.kc) {
                let kc = self.kc.min(k - depth);
                let accumulate = self.accumulate || depth > 0;
                pack_b(
                    self.b,
                    depth,
                    kc,
                    column,
                    nc,
                    &mut packed_b,
                    self.kernel.is_avx2(),
                );
                #[cfg(target_arch = "x86_64")]
                if self.reads_a_in_place(nc) {
                    // SAFETY: as for this function.
                    unsafe {
                        self.with_a_in_place(out, rows.clone(), column, nc, depth, &packed_b)
                    };
                    continue;
                }
                // Two panels at a time for the 512-bit kernel, whose tile is two panels wide.
                let panels_per_tile = self.kernel.panels_per_tile();
                for first_row in rows.clone().step_by(MC) {
                    let mc = MC.min(rows.end - first_row);
                    pack_a(self.a, first_row, mc, depth, kc, &mut packed_a);
                    for (pair, b) in packed_b.chunks(kc * panels_per_tile).enumerate() {
                        let first_column = column + pair * panels_per_tile * NR;
                        let cols = (panels_per_tile * NR).min(column + nc - first_column);
                        for (strip, a) in packed_a.chunks_exact(kc * MR).enumerate() {
                            let row = first_row + strip * MR;
                            let height = MR.min(first_row + mc - row);
                            // SAFETY: the tile lies in `C[rows, columns]`, which the caller
                            // owns.
                            unsafe {
                                let c = out.0.add(row * self.n + first_column);
                                self.kernel.run(a, b, c, self.n, height, cols, accumulate);
                            }
                        }
                    }
                }
            }
        }
        PACKING.with(|buffers| buffers.set((packed_a, packed_b)));
    }
}

impl Product<'_> {
    /// Whether the micro-kernel reads `A`'s rows where they lie rather than from a packed copy:
    /// for an `A` with contiguous rows multiplied into few columns (a convolution's weights at
    /// batch 1: 512 × 4,608 weights against 49 positions in ResNet's last stage), packing costs
    /// a read and a write of every weight for at most [`IN_PLACE_PANELS`] uses of it.
    #[cfg(target_arch = "x86_64")]
    fn reads_a_in_place(&self, nc: usize) -> bool {
        self.kernel.is_avx2() && self.a.rows_are_contiguous() && nc <= IN_PLACE_PANELS * NR
    }

    /// `C[rows, column..column + nc] (+)= A[rows, depth..depth + kc]·B_block` with `B_block`
    /// packed (`panels`) and `A` read in place: six row streams per strip.
    ///
    /// # Safety
    /// As for [`Self::rectangle`]; [`Self::reads_a_in_place`] must hold.
    #[cfg(target_arch = "x86_64")]
    unsafe fn with_a_in_place(
        &self,
        out: SharedOut,
        rows: core::ops::Range<usize>,
        column: usize,
        nc: usize,
        depth: usize,
        panels: &[Panel],
    ) {
        let kc = panels.len() / nc.div_ceil(NR);
        let accumulate = self.accumulate || depth > 0;
        let panels_per_tile = self.kernel.panels_per_tile();
        for first_row in rows.clone().step_by(MC) {
            let mc = MC.min(rows.end - first_row);
            for (pair, b) in panels.chunks(kc * panels_per_tile).enumerate() {
                let first_column = column + pair * panels_per_tile * NR;
                let cols = (panels_per_tile * NR).min(column + nc - first_column);
                for row in (first_row..first_row + mc).step_by(MR) {
                    let height = MR.min(first_row + mc - row);
                    // A short strip repeats its last row; the extra sums are not written.
                    let a_rows: [&[f32]; MR] = core::array::from_fn(|i| {
                        let start = self.a.row_axis.start(row + i.min(height - 1)) + depth;
                        &self.a.data[start..start + kc]
                    });
                    // SAFETY: the tile lies in `C[rows, columns]`, which the caller owns; the
                    // kernel is AVX2 or AVX-512 (`reads_a_in_place`).
                    unsafe {
                        let c = out.0.add(row * self.n + first_column);
                        if let MicroKernel::Avx512 = self.kernel {
                            tile_in_place_avx512(a_rows, b, c, self.n, height, cols, accumulate);
                        } else {
                            tile_in_place_avx2(a_rows, b, c, self.n, height, cols, accumulate);
                        }
                    }
                }
            }
        }
    }
}

/// Most panels of `B` a block may have for [`Product::reads_a_in_place`].
const IN_PLACE_PANELS: usize = 4;

/// Which micro-kernel this CPU runs.
#[derive(Clone, Copy)]
enum MicroKernel {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
    /// The same tile with a row of 16 in one 512-bit register (the same bits as `Avx2Fma`).
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl MicroKernel {
    fn is_avx2(self) -> bool {
        !matches!(self, Self::Portable)
    }

    /// Panels of `B` one tile of [`Self::run`] spans at most.
    fn panels_per_tile(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => 2,
            _ => 1,
        }
    }

    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            if is_x86_feature_detected!("avx512f") {
                return Self::Avx512;
            }
            return Self::Avx2Fma;
        }
        Self::Portable
    }

    /// `C[..rows, ..cols] (+)= A_strip · B_panels`, `C` with row stride `ldc`, for one panel of
    /// `B` or, with the 512-bit kernel, two (`b`: their rows one panel after the other).
    ///
    /// # Safety
    /// `c` must be valid for `rows` rows of `cols` elements at stride `ldc`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn run(
        self,
        a: &[f32],
        b: &[Panel],
        c: *mut f32,
        ldc: usize,
        rows: usize,
        cols: usize,
        accumulate: bool,
    ) {
        #[cfg(target_arch = "x86_64")]
        if let Self::Avx512 = self {
            if b.len() * MR == 2 * a.len() {
                let (b0, b1) = b.split_at(b.len() / 2);
                // SAFETY: `detect` saw AVX-512, AVX2 and FMA; the caller's contract.
                unsafe { pair_avx512(a, [b0, b1], c, ldc, rows, cols, accumulate) };
                return;
            }
        }
        debug_assert_eq!(a.len(), b.len() * MR);
        let tile = match self {
            #[cfg(target_arch = "x86_64")]
            Self::Avx2Fma if rows == MR && cols == NR => {
                // SAFETY: `detect` saw AVX2 and FMA; a whole tile lies at `c` (the caller's
                // contract).
                unsafe { whole_tile_avx2(a, b, c, ldc, accumulate) };
                return;
            }
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `detect` saw AVX2 and FMA.
            Self::Avx2Fma => unsafe { tile_avx2(a, b) },
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 if rows == MR && cols == NR => {
                // SAFETY: `detect` saw AVX-512, AVX2 and FMA; a whole tile lies at `c`.
                unsafe { whole_tile_avx512(a, b, c, ldc, accumulate) };
                return;
            }
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `detect` saw AVX-512, AVX2 and FMA.
            Self::Avx512 => unsafe { tile_avx512(a, b) },
            Self::Portable => tile_portable(a, b),
        };
        // An edge tile: computed whole, written in part.
        // SAFETY: the caller's contract.
        unsafe { store_edge_tile(&tile, c, ldc, rows, cols, accumulate) };
    }
}

/// The 6 × 16 tile `A_strip · B_panel`, over fixed-size arrays LLVM vectorises.
#[inline(always)]
fn tile_portable(a: &[f32], b: &[Panel]) -> [[f32; NR]; MR] {
    let mut acc = [[0.0f32; NR]; MR];
    for (a_step, b_row) in a.chunks_exact(MR).zip(b) {
        for (acc_row, &a_value) in acc.iter_mut().zip(a_step) {
            for (acc, &b_value) in acc_row.iter_mut().zip(&b_row.0) {
                // Not `mul_add`: without FMA in the target that is a slow library call.
                *acc += a_value * b_value;
            }
        }
    }
    acc
}

/// The twelve AVX accumulators of the 6 × 16 tile `A_strip · B_panel`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn accumulate_avx2(a: &[f32], b: &[Panel]) -> [[core::arch::x86_64::__m256; 2]; MR] {
    use core::arch::x86_64::*;
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    for (a_step, b_row) in a.chunks_exact(MR).zip(b) {
        // SAFETY: a `Panel` is 16 floats, 64-byte aligned.
        let (b0, b1) = unsafe {
            let p = b_row.0.as_ptr();
            (_mm256_load_ps(p), _mm256_load_ps(p.add(8)))
        };
        for (acc_row, a_value) in acc.iter_mut().zip(a_step) {
            let a_value = _mm256_set1_ps(*a_value);
            acc_row[0] = _mm256_fmadd_ps(a_value, b0, acc_row[0]);
            acc_row[1] = _mm256_fmadd_ps(a_value, b1, acc_row[1]);
        }
    }
    acc
}

/// [`tile_portable`] with AVX2 and FMA, into an array (for edge tiles).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2(a: &[f32], b: &[Panel]) -> [[f32; NR]; MR] {
    // SAFETY: the caller's CPU has AVX2 and FMA (this function's contract).
    unsafe { spill_avx2(&accumulate_avx2(a, b)) }
}

/// The twelve accumulators of a 6 × 16 tile as an array (for edge tiles).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn spill_avx2(acc: &[[core::arch::x86_64::__m256; 2]; MR]) -> [[f32; NR]; MR] {
    use core::arch::x86_64::*;
    let mut tile = [[0.0f32; NR]; MR];
    for (tile_row, acc_row) in tile.iter_mut().zip(acc) {
        // SAFETY: 16 floats of room.
        unsafe {
            _mm256_storeu_ps(tile_row.as_mut_ptr(), acc_row[0]);
            _mm256_storeu_ps(tile_row.as_mut_ptr().add(8), acc_row[1]);
        }
    }
    tile
}

/// `C[..rows, ..cols] (+)= A_rows · B_panel` with AVX2 and FMA, `A_rows` six rows of `A` read
/// where they lie (each as long as the panel is deep).
///
/// # Safety
/// AVX2 and FMA; `c` valid for `rows` rows of `cols` elements at stride `ldc`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_in_place_avx2(
    a_rows: [&[f32]; MR],
    b: &[Panel],
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    accumulate: bool,
) {
    use core::arch::x86_64::*;
    assert!(a_rows.iter().all(|row| row.len() == b.len()));
    let a = a_rows.map(|row| row.as_ptr());
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    for (p, b_row) in b.iter().enumerate() {
        // SAFETY: a `Panel` is 16 floats, 64-byte aligned; `p` is within every row (asserted).
        unsafe {
            let (b0, b1) = (
                _mm256_load_ps(b_row.0.as_ptr()),
                _mm256_load_ps(b_row.0.as_ptr().add(8)),
            );
            for (acc_row, a_row) in acc.iter_mut().zip(a) {
                let a_value = _mm256_broadcast_ss(&*a_row.add(p));
                acc_row[0] = _mm256_fmadd_ps(a_value, b0, acc_row[0]);
                acc_row[1] = _mm256_fmadd_ps(a_value, b1, acc_row[1]);
            }
        }
    }
    if rows == MR && cols == NR {
        // SAFETY: a whole tile lies at `c` (the caller's contract).
        unsafe { store_whole_tile_avx2(&acc, c, ldc, accumulate) };
        return;
    }
    // SAFETY: the caller's contract.
    unsafe { store_edge_tile(&spill_avx2(&acc), c, ldc, rows, cols, accumulate) };
}

/// Writes (adds, with `accumulate`) the first `rows × cols` of an edge tile into `C`.
///
/// # Safety
/// `c` valid for `rows` rows of `cols` elements at stride `ldc`.
unsafe fn store_edge_tile(
    tile: &[[f32; NR]; MR],
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    accumulate: bool,
) {
    for (i, tile_row) in tile.iter().enumerate().take(rows) {
        // SAFETY: row `i < rows` of `C`, `cols` elements (the caller's contract).
        let c_row = unsafe { core::slice::from_raw_parts_mut(c.add(i * ldc), cols) };
        if accumulate {
            c_row.iter_mut().zip(tile_row).for_each(|(c, t)| *c += t);
        } else {
            c_row.copy_from_slice(&tile_row[..cols]);
        }
    }
}

/// Writes (adds, with `accumulate`) a whole 6 × 16 tile of accumulators into `C`.
///
/// # Safety
/// AVX2; `c` valid for 6 rows of 16 at stride `ldc`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn store_whole_tile_avx2(
    acc: &[[core::arch::x86_64::__m256; 2]; MR],
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    use core::arch::x86_64::*;
    for (i, acc_row) in acc.iter().enumerate() {
        // SAFETY: as promised by the caller.
        unsafe {
            let row = c.add(i * ldc);
            let (mut low, mut high) = (acc_row[0], acc_row[1]);
            if accumulate {
                low = _mm256_add_ps(low, _mm256_loadu_ps(row));
                high = _mm256_add_ps(high, _mm256_loadu_ps(row.add(8)));
            }
            _mm256_storeu_ps(row, low);
            _mm256_storeu_ps(row.add(8), high);
        }
    }
}

/// A whole 6 × 16 tile straight into `C` (row stride `ldc`), added when `accumulate`.
///
/// # Safety
/// AVX2 and FMA; `c` valid for 6 rows of 16 at stride `ldc`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn whole_tile_avx2(a: &[f32], b: &[Panel], c: *mut f32, ldc: usize, accumulate: bool) {
    // SAFETY: as promised by the caller.
    unsafe { store_whole_tile_avx2(&accumulate_avx2(a, b), c, ldc, accumulate) };
}

/// The six 512-bit accumulators of the 6 × 16 tile `A_strip · B_panel`: each lane adds the
/// same products in the same order as [`accumulate_avx2`], so the sums are the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn accumulate_avx512(a: &[f32], b: &[Panel]) -> [core::arch::x86_64::__m512; MR] {
    use core::arch::x86_64::*;
    let mut acc = [_mm512_setzero_ps(); MR];
    for (a_step, b_row) in a.chunks_exact(MR).zip(b) {
        // SAFETY: a `Panel` is 16 floats, 64-byte aligned.
        let b_row = unsafe { _mm512_load_ps(b_row.0.as_ptr()) };
        for (acc, a_value) in acc.iter_mut().zip(a_step) {
            *acc = _mm512_fmadd_ps(_mm512_set1_ps(*a_value), b_row, *acc);
        }
    }
    acc
}

/// The six accumulators of a 6 × 16 tile as an array (for edge tiles).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn spill_avx512(acc: &[core::arch::x86_64::__m512; MR]) -> [[f32; NR]; MR] {
    use core::arch::x86_64::*;
    let mut tile = [[0.0f32; NR]; MR];
    for (tile_row, acc_row) in tile.iter_mut().zip(acc) {
        // SAFETY: 16 floats of room.
        unsafe { _mm512_storeu_ps(tile_row.as_mut_ptr(), *acc_row) };
    }
    tile
}

/// [`tile_portable`] with AVX-512, into an array (for edge tiles).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn tile_avx512(a: &[f32], b: &[Panel]) -> [[f32; NR]; MR] {
    // SAFETY: the caller's CPU has AVX-512 (this function's contract).
    unsafe { spill_avx512(&accumulate_avx512(a, b)) }
}

/// Writes (adds, with `accumulate`) a whole 6 × 16 tile of 512-bit accumulators into `C`.
///
/// # Safety
/// AVX-512; `c` valid for 6 rows of 16 at stride `ldc`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn store_whole_tile_avx512(
    acc: &[core::arch::x86_64::__m512; MR],
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    use core::arch::x86_64::*;
    for (i, &acc_row) in acc.iter().enumerate() {
        // SAFETY: as promised by the caller.
        unsafe {
            let row = c.add(i * ldc);
            let sum = if accumulate {
                _mm512_add_ps(acc_row, _mm512_loadu_ps(row))
            } else {
                acc_row
            };
            _mm512_storeu_ps(row, sum);
        }
    }
}

/// A whole 6 × 16 tile straight into `C` (row stride `ldc`), added when `accumulate`.
///
/// # Safety
/// AVX-512; `c` valid for 6 rows of 16 at stride `ldc`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn whole_tile_avx512(a: &[f32], b: &[Panel], c: *mut f32, ldc: usize, accumulate: bool) {
    // SAFETY: as promised by the caller.
    unsafe { store_whole_tile_avx512(&accumulate_avx512(a, b), c, ldc, accumulate) };
}

/// The twelve 512-bit accumulators of the 6 × 32 tile `A_strip · [B_panel0 B_panel1]`: two
/// multiply-adds per broadcast of `A` (the 6 × 16 tile's six chains of multiply-adds are too
/// few to cover their latency on two FMA units). The same bits as [`accumulate_avx512`] on each
/// panel.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn accumulate_pair_avx512(
    a: &[f32],
    [b0, b1]: [&[Panel]; 2],
) -> [[core::arch::x86_64::__m512; 2]; MR] {
    use core::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    for ((a_step, b0), b1) in a.chunks_exact(MR).zip(b0).zip(b1) {
        // SAFETY: a `Panel` is 16 floats, 64-byte aligned.
        let (b0, b1) = unsafe { (_mm512_load_ps(b0.0.as_ptr()), _mm512_load_ps(b1.0.as_ptr())) };
        for (acc, a_value) in acc.iter_mut().zip(a_step) {
            let a_value = _mm512_set1_ps(*a_value);
            acc[0] = _mm512_fmadd_ps(a_value, b0, acc[0]);
            acc[1] = _mm512_fmadd_ps(a_value, b1, acc[1]);
        }
    }
    acc
}

/// `C[..rows, ..cols] (+)= A_strip · [B_panel0 B_panel1]` with AVX-512: a 6 × 32 tile.
///
/// # Safety
/// AVX-512; `c` valid for `rows` rows of `cols` elements at stride `ldc`; both panels as deep
/// as `a` is.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn pair_avx512(
    a: &[f32],
    b: [&[Panel]; 2],
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    accumulate: bool,
) {
    assert!(b.iter().all(|b| b.len() * MR == a.len()));
    // SAFETY: the caller's CPU has AVX-512; the caller's contract.
    unsafe {
        store_pair_avx512(
            &accumulate_pair_avx512(a, b),
            c,
            ldc,
            rows,
            cols,
            accumulate,
        )
    };
}

/// Writes (adds, with `accumulate`) the first `rows × cols` of a 6 × 32 tile of 512-bit
/// accumulators into `C`.
///
/// # Safety
/// AVX-512; `c` valid for `rows` rows of `cols` elements at stride `ldc`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn store_pair_avx512(
    acc: &[[core::arch::x86_64::__m512; 2]; MR],
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    accumulate: bool,
) {
    let halves: [[_; MR]; 2] = [0, 1].map(|h| acc.map(|row| row[h]));
    if rows == MR && cols == 2 * NR {
        for (h, half) in halves.iter().enumerate() {
            // SAFETY: a whole 6 × 32 tile lies at `c` (the caller's contract).
            unsafe { store_whole_tile_avx512(half, c.add(h * NR), ldc, accumulate) };
        }
        return;
    }
    for (h, half) in halves.iter().enumerate() {
        let cols = cols.saturating_sub(h * NR).min(NR);
        if cols > 0 {
            // SAFETY: the caller's contract; the half's columns lie within `cols`.
            unsafe {
                let tile = spill_avx512(half);
                store_edge_tile(&tile, c.add(h * NR), ldc, rows, cols, accumulate);
            }
        }
    }
}

/// [`tile_in_place_avx2`] with AVX-512, over one panel or two (`b`: their rows one panel after
/// the other; a 6 × 32 tile).
///
/// # Safety
/// AVX-512; `c` valid for `rows` rows of `cols` elements at stride `ldc`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn tile_in_place_avx512(
    a_rows: [&[f32]; MR],
    b: &[Panel],
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    accumulate: bool,
) {
    use core::arch::x86_64::*;
    let depth = a_rows[0].len();
    assert!(a_rows.iter().all(|row| row.len() == depth));
    assert!(b.len() == depth || b.len() == 2 * depth);
    let a = a_rows.map(|row| row.as_ptr());
    if let Some((b0, b1)) = (b.len() == 2 * depth).then(|| b.split_at(depth)) {
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        for (p, (b0, b1)) in b0.iter().zip(b1).enumerate() {
            // SAFETY: a `Panel` is 16 floats, 64-byte aligned; `p` is within every row.
            unsafe {
                let (b0, b1) = (_mm512_load_ps(b0.0.as_ptr()), _mm512_load_ps(b1.0.as_ptr()));
                for (acc, a_row) in acc.iter_mut().zip(a) {
                    let a_value = _mm512_set1_ps(*a_row.add(p));
                    acc[0] = _mm512_fmadd_ps(a_value, b0, acc[0]);
                    acc[1] = _mm512_fmadd_ps(a_value, b1, acc[1]);
                }
            }
        }
        // SAFETY: the caller's contract.
        unsafe { store_pair_avx512(&acc, c, ldc, rows, cols, accumulate) };
        return;
    }
    let mut acc = [_mm512_setzero_ps(); MR];
    for (p, b_row) in b.iter().enumerate() {
        // SAFETY: a `Panel` is 16 floats, 64-byte aligned; `p` is within every row (asserted).
        unsafe {
            let b_row = _mm512_load_ps(b_row.0.as_ptr());
            for (acc, a_row) in acc.iter_mut().zip(a) {
                *acc = _mm512_fmadd_ps(_mm512_set1_ps(*a_row.add(p)), b_row, *acc);
            }
        }
    }
    if rows == MR && cols == NR {
        // SAFETY: a whole tile lies at `c` (the caller's contract).
        unsafe { store_whole_tile_avx512(&acc, c, ldc, accumulate) };
        return;
    }
    // SAFETY: the caller's contract.
    unsafe { store_edge_tile(&spill_avx512(&acc), c, ldc, rows, cols, accumulate) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: usize, cols: usize, seed: u32) -> Vec<f32> {
        // A small LCG: deterministic values in [-1, 1) without a dependency on `rand` here.
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..rows * cols)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    fn check(m: usize, k: usize, n: usize, transpose_a: bool, transpose_b: bool, accumulate: bool) {
        let a_data = matrix(m, k, 1);
        let b_data = matrix(k, n, 2);
        let a = if transpose_a {
            MatrixRef::row_major(&a_data, k, m).t()
        } else {
            MatrixRef::row_major(&a_data, m, k)
        };
        let b = if transpose_b {
            MatrixRef::row_major(&b_data, n, k).t()
        } else {
            MatrixRef::row_major(&b_data, k, n)
        };
        let start = matrix(m, n, 3);
        let (mut fast, mut expected) = (start.clone(), start);
        gemm(a, b, &mut fast, accumulate);
        reference_gemm(a, b, &mut expected, accumulate);
        for (index, (f, e)) in fast.iter().zip(&expected).enumerate() {
            let tolerance = 1e-5 * (k as f32).sqrt() * 4.0 + 1e-6;
            assert!(
                (f - e).abs() <= tolerance,
                "[{m}, {k}] · [{k}, {n}] (ᵀ {transpose_a}/{transpose_b}, += {accumulate}): \
                 element {index} is {f}, expected {e}"
            );
        }
    }

    #[test]
    fn matches_the_triple_loop_on_every_edge_case() {
        // Sizes around the tile (6 × 16), block (KC = 384) and parallel thresholds.
        for &(m, k, n) in &[
            (1, 1, 1),
            (5, 3, 15),
            (6, 16, 16),
            (7, 17, 17),
            (13, 255, 33),
            (64, 257, 10),
            (128, 784, 256),
            (97, 300, 130),
            (200, 64, 513),
            // `A` read in place (few columns), over two depth blocks, a short last strip and
            // two threads: a convolution's weights at batch 1.
            (101, 800, 49),
        ] {
            for transpose_a in [false, true] {
                for transpose_b in [false, true] {
                    for accumulate in [false, true] {
                        check(m, k, n, transpose_a, transpose_b, accumulate);
                    }
                }
            }
        }
    }

    /// Rows gathered from a table of overlapping offsets (a convolution's im2col matrix): as `A`,
    /// as `B`, and transposed on either side, against the same matrix built out.
    #[test]
    fn gathered_rows_match_the_matrix_they_stand_for() {
        let data = matrix(1, 4000, 6);
        for &(rows, cols, other) in &[(7, 33, 5), (288, 300, 32), (25, 1000, 6), (13, 390, 70)] {
            // Overlapping, unordered starts, as window taps are.
            let offsets: Vec<usize> = (0..rows)
                .map(|i| (i * 37 + i * i) % (4000 - cols))
                .collect();
            let gathered = MatrixRef::rows_at(&data, &offsets, cols);
            let built: Vec<f32> = offsets
                .iter()
                .flat_map(|&o| data[o..o + cols].iter().copied())
                .collect();
            let plain = MatrixRef::row_major(&built, rows, cols);
            let other_data = matrix(cols.max(rows), other, 7);
            let right = MatrixRef::row_major(&other_data, cols, other);
            let left = MatrixRef::row_major(&other_data, other, rows);
            let cases = [
                (gathered, right, plain, right),
                (left, gathered, left, plain),
                (gathered.t(), left.t(), plain.t(), left.t()),
                (right.t(), gathered.t(), right.t(), plain.t()),
            ];
            for (a, b, a_plain, b_plain) in cases {
                let mut got = vec![0.5; a.rows() * b.cols()];
                let mut expected = got.clone();
                gemm(a, b, &mut got, true);
                reference_gemm(a_plain, b_plain, &mut expected, true);
                for (g, e) in got.iter().zip(&expected) {
                    assert!(
                        (g - e).abs() <= 1e-4,
                        "{rows}×{cols}·{other}: {g} against {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn empty_depth_zeroes_or_keeps_c() {
        let a = MatrixRef::row_major(&[], 2, 0);
        let b = MatrixRef::row_major(&[], 0, 3);
        let mut c = vec![1.0; 6];
        gemm(a, b, &mut c, true);
        assert_eq!(c, vec![1.0; 6]);
        gemm(a, b, &mut c, false);
        assert_eq!(c, vec![0.0; 6]);
    }

    #[test]
    fn portable_avx2_and_avx512_tiles_agree() {
        let a = matrix(300, MR, 4);
        let b: Vec<Panel> = matrix(300, NR, 5)
            .chunks_exact(NR)
            .map(|row| Panel(row.try_into().unwrap()))
            .collect();
        let portable = tile_portable(&a, &b);
        #[cfg(target_arch = "x86_64")]
        if MicroKernel::detect().is_avx2() {
            // SAFETY: detected.
            let avx2 = unsafe { tile_avx2(&a, &b) };
            for (p, v) in portable.iter().flatten().zip(avx2.iter().flatten()) {
                assert!((p - v).abs() <= 1e-4, "portable {p}, AVX2 {v}");
            }
            if let MicroKernel::Avx512 = MicroKernel::detect() {
                // SAFETY: detected. The same products in the same order: the same bits.
                let avx512 = unsafe { tile_avx512(&a, &b) };
                assert_eq!(
                    avx512.map(|row| row.map(f32::to_bits)),
                    avx2.map(|row| row.map(f32::to_bits))
                );
                // The 6 × 32 tile over `b` and a second panel, against a 6 × 16 tile on each.
                let b1: Vec<Panel> = b.iter().rev().copied().collect();
                // SAFETY: detected.
                let avx2_1 = unsafe { tile_avx2(&a, &b1) };
                let mut c = vec![0.0f32; MR * 2 * NR];
                // SAFETY: detected; `c` holds a whole 6 × 32 tile at stride 32.
                unsafe { pair_avx512(&a, [&b, &b1], c.as_mut_ptr(), 2 * NR, MR, 2 * NR, false) };
                let expected = avx2.iter().zip(&avx2_1);
                let expected = expected.flat_map(|(row0, row1)| row0.iter().chain(row1));
                let bits = |v: &f32| v.to_bits();
                assert!(c.iter().map(bits).eq(expected.map(bits)));
            }
        }
        assert!(portable.iter().flatten().any(|&v| v != 0.0));
    }
}
