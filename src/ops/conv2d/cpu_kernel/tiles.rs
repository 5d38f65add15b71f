//! The register-tiled inner loops of the CPU convolution kernel: every multiply-add of a
//! convolution, forward or backward, runs in one of the two loops here.
//!
//! Both read the source through a [`Window`]: a buffer, an origin, a row stride and a list of
//! *tap offsets*, so that tap `t` at output position `(i, j)` reads
//! `src[origin + taps[t] + i·row_stride + j]`. The caller lays its buffers out so that one row
//! of output positions reads consecutive elements (see `super::layout`); the loops then load
//! whole SIMD vectors and never test a bound or a padding cell.
//!
//! - [`correlate`]: `out[r, i, j] = Σ_t weight[t, r] · window[t, i, j]` for a tile of up to
//!   [`TILE_CHANNELS`] output channels. It keeps a `channels × 2·lanes` block of outputs in
//!   registers for the whole sum over the taps: per tap, two vector loads of the source, one
//!   broadcast per channel and `2·channels` fused multiply-adds (a 6×16 block of `f32` is 12 of
//!   the 16 AVX2 registers; a tile of one or two channels holds four vectors per channel).
//! - [`accumulate_window_dots`]: `out[r, t] += Σ_{i,j} a[r, i, j] · b[t, i, j]`, dot products of
//!   every pair of an `a` tap and a `b` tap over the whole grid, vectorised along `j`: a
//!   [`DOT_ROWS`] × [`DOT_COLS`] block of vector accumulators, summed across lanes once at the end.
//!
//! The loops are written over fixed-size arrays, which LLVM turns into SIMD code (checked in the
//! assembly with the pinned toolchain: broadcasts, unaligned loads and `vfmadd231ps` on
//! registers, no spills); on x86-64 they are compiled a second time with AVX2 and FMA enabled
//! and chosen at run time when the CPU has them (`is_x86_feature_detected!`), so the binary
//! still runs on any x86-64.

use core::mem::size_of;

use num_traits::Float;

/// Output channels a [`correlate`] tile keeps in registers.
pub(crate) const TILE_CHANNELS: usize = 6;
/// `a` taps of one [`accumulate_window_dots`] register block.
pub(crate) const DOT_ROWS: usize = 3;
/// `b` taps of one [`accumulate_window_dots`] register block.
pub(crate) const DOT_COLS: usize = 3;
/// Elements a source buffer must hold past the last element a window covers: the loops load
/// whole blocks of vectors (up to four AVX2 registers) at the end of a row and discard the
/// lanes past it.
pub(crate) const SLACK: usize = 64;

/// Elements of `E` in one 256-bit vector: 8 for `f32`, 4 for `f64` (the loops use no other).
pub(crate) const fn lanes<E>() -> usize {
    if size_of::<E>() <= 4 {
        MAX_LANES
    } else {
        4
    }
}

/// The most lanes of any vector the loops use.
pub(crate) const MAX_LANES: usize = 8;

/// Where a loop reads: tap `t` at position `(i, j)` is `src[origin + taps[t] + i·row_stride + j]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window<'a, E> {
    pub src: &'a [E],
    pub origin: usize,
    pub row_stride: usize,
    pub taps: &'a [usize],
}

impl<E> Window<'_, E> {
    /// Panics unless every read of a `rows × cols` grid, including `overreach` elements past the
    /// end of the last row, lies inside `src`: what makes the unchecked loads below sound.
    fn assert_in_bounds(&self, [rows, cols]: [usize; 2], overreach: usize) {
        let Some(&max_tap) = self.taps.iter().max() else {
            return;
        };
        if rows == 0 || cols == 0 {
            return;
        }
        let last = (rows - 1)
            .checked_mul(self.row_stride)
            .and_then(|rows| rows.checked_add(self.origin + max_tap + cols + overreach));
        assert!(
            last.is_some_and(|last| last <= self.src.len()),
            "conv2d kernel: a {rows}×{cols} window at {} (row stride {}, largest tap {max_tap}) \
             reads past its buffer of {}",
            self.origin,
            self.row_stride,
            self.src.len()
        );
    }
}

/// Where [`correlate`] writes channel `r` of its tile at position `(i, j)`:
/// `out[start + r·channel_stride + i·row_stride + j·col_stride]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutputLayout {
    pub start: usize,
    pub channel_stride: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

/// How [`correlate`] combines its sums with the output.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Store<'a, E> {
    /// `out = sum + bias[r]` (the forward pass).
    Bias(&'a [E]),
    /// `out += sum` (a gradient).
    Accumulate,
}

/// `out[r, i, j] ⊕= Σ_t weights[t·TILE_CHANNELS + r] · window[t, i, j]` for the `channels`
/// channels of one tile and every position of the `grid` (`[rows, cols]`); `⊕` is [`Store`].
///
/// # Panics
/// If `channels` is not in `1..=TILE_CHANNELS`, `weights` holds fewer than
/// `taps·TILE_CHANNELS` values, the window reads outside its buffer (which must extend
/// [`SLACK`] elements past the last one the grid covers), or an output index is out of range.
pub(crate) fn correlate<E: Float>(
    window: Window<'_, E>,
    weights: &[E],
    channels: usize,
    grid: [usize; 2],
    out: &mut [E],
    layout: OutputLayout,
    store: Store<'_, E>,
) {
    assert!(
        (1..=TILE_CHANNELS).contains(&channels),
        "conv2d kernel: a tile of {channels} channels"
    );
    assert!(weights.len() >= window.taps.len() * TILE_CHANNELS);
    if let Store::Bias(bias) = store {
        assert!(bias.len() >= channels);
    }
    debug_assert!(4 * lanes::<E>() <= SLACK);
    window.assert_in_bounds(grid, 4 * lanes::<E>());
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx512f() {
            // SAFETY: the CPU has AVX-512, AVX2 and FMA; the reads were bounds-checked above.
            unsafe { correlate_avx512(window, weights, channels, grid, out, layout, store) };
            return;
        }
        if has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA; the reads were bounds-checked above.
            unsafe { correlate_avx2(window, weights, channels, grid, out, layout, store) };
            return;
        }
    }
    // SAFETY: the reads were bounds-checked above.
    unsafe {
        correlate_with::<E, PORTABLE_FMA>(window, weights, channels, grid, out, layout, store)
    };
}

/// `out[r·out_stride + t] += Σ_{i,j} a[r, i, j] · b[t, i, j]` for every tap `r` of `a` and `t`
/// of `b`, over the positions of `grid` (`[rows, cols]`).
///
/// With `zeros_past_rows`, the caller promises that `a` reads zero at the [`MAX_LANES`]` − 1`
/// positions after every row and that every value `b` reads is finite: the rest of each row is
/// then summed as one more whole vector, the products past the row being exactly zero.
/// Otherwise it is summed one element at a time.
///
/// # Panics
/// If a window reads outside its buffer (which must extend [`SLACK`] elements past the last
/// one the grid covers) or `out` is too short.
pub(crate) fn accumulate_window_dots<E: Float>(
    a: Window<'_, E>,
    b: Window<'_, E>,
    grid: [usize; 2],
    out: &mut [E],
    out_stride: usize,
    zeros_past_rows: bool,
) {
    if a.taps.is_empty() || b.taps.is_empty() {
        return;
    }
    assert!(out.len() >= (a.taps.len() - 1) * out_stride + b.taps.len());
    a.assert_in_bounds(grid, lanes::<E>());
    b.assert_in_bounds(grid, lanes::<E>());
    // Whole vectors per row.
    let vectors = if zeros_past_rows {
        grid[1].div_ceil(lanes::<E>())
    } else {
        grid[1] / lanes::<E>()
    };
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA; the reads were bounds-checked above.
        unsafe { window_dots::<E, true>(a, b, grid, vectors, out, out_stride) };
        return;
    }
    // SAFETY: the reads were bounds-checked above.
    unsafe { window_dots::<E, false>(a, b, grid, vectors, out, out_stride) };
}

/// Whether the portable build fuses multiply and add: AArch64 always has FMA; on a CPU without
/// it, `mul_add` would be a slow library call.
pub(crate) const PORTABLE_FMA: bool = cfg!(target_arch = "aarch64");

#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx2_fma() -> bool {
    // `is_x86_feature_detected!` caches its answer: this is two atomic loads.
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// Whether the CPU has AVX-512 (and AVX2 + FMA, which every AVX-512 CPU has), for the loops
/// that have a 512-bit copy.
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx512f() -> bool {
    is_x86_feature_detected!("avx512f") && has_avx2_fma()
}

#[inline(always)]
fn multiply_add<E: Float, const FMA: bool>(a: E, b: E, acc: E) -> E {
    if FMA {
        a.mul_add(b, acc)
    } else {
        a * b + acc
    }
}

/// The same loops compiled for AVX-512: a block's 16 positions of a channel in one register.
/// Each position's sum adds the same products in the same order, so the bits are the AVX2
/// copy's.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn correlate_avx512<E: Float>(
    window: Window<'_, E>,
    weights: &[E],
    channels: usize,
    grid: [usize; 2],
    out: &mut [E],
    layout: OutputLayout,
    store: Store<'_, E>,
) {
    correlate_with::<E, true>(window, weights, channels, grid, out, layout, store)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn correlate_avx2<E: Float>(
    window: Window<'_, E>,
    weights: &[E],
    channels: usize,
    grid: [usize; 2],
    out: &mut [E],
    layout: OutputLayout,
    store: Store<'_, E>,
) {
    correlate_with::<E, true>(window, weights, channels, grid, out, layout, store)
}

/// Picks the vector width for `E` and the register block for the tile's channel count; every
/// choice is a separate, fully unrolled copy of the loop.
#[inline(always)]
unsafe fn correlate_with<E: Float, const FMA: bool>(
    window: Window<'_, E>,
    weights: &[E],
    channels: usize,
    grid: [usize; 2],
    out: &mut [E],
    layout: OutputLayout,
    store: Store<'_, E>,
) {
    // A tile of one or two channels holds four vectors of positions per channel rather than
    // two: the FMA units need about eight independent sums in flight to stay busy.
    macro_rules! by_channels {
        ($lanes:literal, $wide:literal, $wider:literal) => {
            match channels {
                1 => correlate_grid::<E, 1, $lanes, $wider, FMA>(
                    window, weights, grid, out, layout, store,
                ),
                2 => correlate_grid::<E, 2, $lanes, $wider, FMA>(
                    window, weights, grid, out, layout, store,
                ),
                3 => correlate_grid::<E, 3, $lanes, $wide, FMA>(
                    window, weights, grid, out, layout, store,
                ),
                4 => correlate_grid::<E, 4, $lanes, $wide, FMA>(
                    window, weights, grid, out, layout, store,
                ),
                5 => correlate_grid::<E, 5, $lanes, $wide, FMA>(
                    window, weights, grid, out, layout, store,
                ),
                _ => correlate_grid::<E, TILE_CHANNELS, $lanes, $wide, FMA>(
                    window, weights, grid, out, layout, store,
                ),
            }
        };
    }
    if lanes::<E>() >= 8 {
        by_channels!(8, 16, 32)
    } else {
        by_channels!(4, 8, 16)
    }
}

/// Every position of the grid, row by row, in blocks of `WIDE` positions. A short rest of a
/// row (at most `LANES` positions) is computed together with the rest of the next row, as one
/// block of two vectors: alone it would keep only `ROWS` sums in flight, too few to hide the
/// multiply-add latency (AlexNet's conv1, 55 wide, spends an eighth of its work there).
#[inline(always)]
unsafe fn correlate_grid<
    E: Float,
    const ROWS: usize,
    const LANES: usize,
    const WIDE: usize,
    const FMA: bool,
>(
    window: Window<'_, E>,
    weights: &[E],
    [rows, cols]: [usize; 2],
    out: &mut [E],
    layout: OutputLayout,
    store: Store<'_, E>,
) {
    let src = window.src.as_ptr().add(window.origin);
    let weights = weights.as_ptr();
    // Where the whole `WIDE` blocks of a row end and its short rest begins.
    let rest_start = if cols % WIDE > LANES {
        cols
    } else {
        cols - cols % WIDE
    };
    let rest = cols - rest_start;
    let row_out = |i: usize| layout.start + i * layout.row_stride;
    for i in 0..rows {
        let row_src = src.add(i * window.row_stride);
        let mut j = 0;
        while j < rest_start {
            let sums = correlation_tile::<E, ROWS, WIDE, FMA>(row_src.add(j), window.taps, weights);
            let at = row_out(i) + j * layout.col_stride;
            store_tile(&sums, (cols - j).min(WIDE), out, at, layout, store);
            j += WIDE;
        }
        if rest == 0 {
            continue;
        }
        let at = row_out(i) + rest_start * layout.col_stride;
        if i % 2 == 0 && i + 1 < rows {
            // This row's rest and the next one's, side by side.
            let next_src = row_src.add(window.row_stride);
            let (sums, next) = correlation_tile_pair::<E, ROWS, LANES, FMA>(
                [row_src.add(rest_start), next_src.add(rest_start)],
                window.taps,
                weights,
            );
            store_tile(&sums, rest, out, at, layout, store);
            let next_at = row_out(i + 1) + rest_start * layout.col_stride;
            store_tile(&next, rest, out, next_at, layout, store);
        } else if i % 2 == 0 {
            let sums = correlation_tile::<E, ROWS, LANES, FMA>(
                row_src.add(rest_start),
                window.taps,
                weights,
            );
            store_tile(&sums, rest, out, at, layout, store);
        }
    }
}

/// [`correlation_tile`] over `LANES` positions at each of two places (`src[0]`, `src[1]`):
/// twice the sums in flight of one `LANES`-wide block.
///
/// # Safety
/// As for [`correlation_tile`] with `COLS = LANES`, at both places.
#[inline(always)]
unsafe fn correlation_tile_pair<
    E: Float,
    const ROWS: usize,
    const LANES: usize,
    const FMA: bool,
>(
    src: [*const E; 2],
    taps: &[usize],
    weights: *const E,
) -> ([[E; LANES]; ROWS], [[E; LANES]; ROWS]) {
    let mut sums = [[E::zero(); LANES]; ROWS];
    let mut next = [[E::zero(); LANES]; ROWS];
    for (t, &tap) in taps.iter().enumerate() {
        let x = src[0].add(tap).cast::<[E; LANES]>().read_unaligned();
        let y = src[1].add(tap).cast::<[E; LANES]>().read_unaligned();
        let w = weights
            .add(t * TILE_CHANNELS)
            .cast::<[E; ROWS]>()
            .read_unaligned();
        for r in 0..ROWS {
            for l in 0..LANES {
                sums[r][l] = multiply_add::<E, FMA>(w[r], x[l], sums[r][l]);
                next[r][l] = multiply_add::<E, FMA>(w[r], y[l], next[r][l]);
            }
        }
    }
    (sums, next)
}

/// `sums[r][l] = Σ_t weights[t·TILE_CHANNELS + r] · src[taps[t] + l]`: the register block.
///
/// # Safety
/// `src + taps[t] + l` must be readable for every tap and `l < COLS`, and `weights` must hold
/// `taps.len()·TILE_CHANNELS` values.
#[inline(always)]
unsafe fn correlation_tile<E: Float, const ROWS: usize, const COLS: usize, const FMA: bool>(
    src: *const E,
    taps: &[usize],
    weights: *const E,
) -> [[E; COLS]; ROWS] {
    let mut sums = [[E::zero(); COLS]; ROWS];
    for (t, &tap) in taps.iter().enumerate() {
        let x = src.add(tap).cast::<[E; COLS]>().read_unaligned();
        let w = weights
            .add(t * TILE_CHANNELS)
            .cast::<[E; ROWS]>()
            .read_unaligned();
        for r in 0..ROWS {
            for l in 0..COLS {
                sums[r][l] = multiply_add::<E, FMA>(w[r], x[l], sums[r][l]);
            }
        }
    }
    sums
}

/// Writes the first `n` positions of every channel of a register block.
#[inline(always)]
fn store_tile<E: Float, const ROWS: usize, const COLS: usize>(
    sums: &[[E; COLS]; ROWS],
    n: usize,
    out: &mut [E],
    at: usize,
    layout: OutputLayout,
    store: Store<'_, E>,
) {
    for (r, sums) in sums.iter().enumerate() {
        let start = at + r * layout.channel_stride;
        let sums = &sums[..n];
        match (store, layout.col_stride) {
            (Store::Bias(bias), 1) => {
                for (o, &s) in out[start..start + n].iter_mut().zip(sums) {
                    *o = s + bias[r];
                }
            }
            (Store::Accumulate, 1) => {
                for (o, &s) in out[start..start + n].iter_mut().zip(sums) {
                    *o = *o + s;
                }
            }
            (Store::Bias(bias), stride) => {
                for (l, &s) in sums.iter().enumerate() {
                    out[start + l * stride] = s + bias[r];
                }
            }
            (Store::Accumulate, stride) => {
                for (l, &s) in sums.iter().enumerate() {
                    let o = &mut out[start + l * stride];
                    *o = *o + s;
                }
            }
        }
    }
}

/// Walks the `a` taps in blocks of [`DOT_ROWS`] and, for each, the `b` taps in blocks of
/// [`DOT_COLS`]: the `a` rows of a block stay in L1 while the `b` taps sweep past them.
///
/// # Safety
/// Every read of both windows over `vectors` whole vectors per row must be in bounds; with
/// `AVX2`, the CPU must have AVX2 and FMA.
unsafe fn window_dots<E: Float, const AVX2: bool>(
    a: Window<'_, E>,
    b: Window<'_, E>,
    grid: [usize; 2],
    vectors: usize,
    out: &mut [E],
    out_stride: usize,
) {
    for (block_a, taps_a) in a.taps.chunks(DOT_ROWS).enumerate() {
        for (block_b, taps_b) in b.taps.chunks(DOT_COLS).enumerate() {
            let out = &mut out[block_a * DOT_ROWS * out_stride + block_b * DOT_COLS..];
            let a = Window { taps: taps_a, ..a };
            let b = Window { taps: taps_b, ..b };
            macro_rules! block {
                ($rows:literal, $cols:literal) => {
                    if lanes::<E>() == 8 {
                        let sums = dot_block_for::<E, $rows, $cols, 8, AVX2>(a, b, grid, vectors);
                        add_dots(&sums, a, b, grid, vectors * 8, out, out_stride);
                    } else {
                        let sums = dot_block_for::<E, $rows, $cols, 4, AVX2>(a, b, grid, vectors);
                        add_dots(&sums, a, b, grid, vectors * 4, out, out_stride);
                    }
                };
            }
            match (taps_a.len(), taps_b.len()) {
                (1, 1) => block!(1, 1),
                (1, 2) => block!(1, 2),
                (1, _) => block!(1, 3),
                (2, 1) => block!(2, 1),
                (2, 2) => block!(2, 2),
                (2, _) => block!(2, 3),
                (_, 1) => block!(3, 1),
                (_, 2) => block!(3, 2),
                (_, _) => block!(3, 3),
            }
        }
    }
}

/// [`dot_block`], compiled as a function of its own for each block shape: inlined side by side
/// into one function, LLVM's vectoriser grouped some blocks' accumulators across pairs rather
/// than lanes, turning the loop into shuffles and spills (measured: 4–6× slower).
#[inline(always)]
unsafe fn dot_block_for<
    E: Float,
    const ROWS: usize,
    const COLS: usize,
    const LANES: usize,
    const AVX2: bool,
>(
    a: Window<'_, E>,
    b: Window<'_, E>,
    grid: [usize; 2],
    vectors: usize,
) -> [[[E; LANES]; COLS]; ROWS] {
    #[cfg(target_arch = "x86_64")]
    if AVX2 {
        return dot_block_avx2::<E, ROWS, COLS, LANES>(a, b, grid, vectors);
    }
    dot_block_portable::<E, ROWS, COLS, LANES>(a, b, grid, vectors)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline(never)]
unsafe fn dot_block_avx2<E: Float, const ROWS: usize, const COLS: usize, const LANES: usize>(
    a: Window<'_, E>,
    b: Window<'_, E>,
    grid: [usize; 2],
    vectors: usize,
) -> [[[E; LANES]; COLS]; ROWS] {
    dot_block::<E, ROWS, COLS, LANES, true>(a, b, grid, vectors)
}

#[inline(never)]
unsafe fn dot_block_portable<E: Float, const ROWS: usize, const COLS: usize, const LANES: usize>(
    a: Window<'_, E>,
    b: Window<'_, E>,
    grid: [usize; 2],
    vectors: usize,
) -> [[[E; LANES]; COLS]; ROWS] {
    dot_block::<E, ROWS, COLS, LANES, PORTABLE_FMA>(a, b, grid, vectors)
}

/// The dot products of `ROWS` taps of `a` with `COLS` taps of `b` over the first `vectors`
/// whole vectors of every row of the grid, one vector accumulator per pair, lanes not yet summed.
///
/// The sum across lanes is left to [`add_dots`]: inlined here, it leads the vectoriser astray.
/// Masking the rest of a row here did too, which is why the rest is either read as zeros (see
/// [`accumulate_window_dots`]) or summed by [`add_dots`].
///
/// # Safety
/// Every read of both windows over the vectors must be in bounds; the windows must hold exactly
/// `ROWS` and `COLS` taps.
#[inline(always)]
unsafe fn dot_block<
    E: Float,
    const ROWS: usize,
    const COLS: usize,
    const LANES: usize,
    const FMA: bool,
>(
    a: Window<'_, E>,
    b: Window<'_, E>,
    [rows, _]: [usize; 2],
    vectors: usize,
) -> [[[E; LANES]; COLS]; ROWS] {
    let a_src: [*const E; ROWS] =
        core::array::from_fn(|r| a.src.as_ptr().add(a.origin + a.taps[r]));
    let b_src: [*const E; COLS] =
        core::array::from_fn(|t| b.src.as_ptr().add(b.origin + b.taps[t]));
    let mut acc = [[[E::zero(); LANES]; COLS]; ROWS];
    for i in 0..rows {
        let a_row = i * a.row_stride;
        let b_row = i * b.row_stride;
        for v in 0..vectors {
            let j = v * LANES;
            let mut x = [[E::zero(); LANES]; ROWS];
            for r in 0..ROWS {
                x[r] = a_src[r]
                    .add(a_row + j)
                    .cast::<[E; LANES]>()
                    .read_unaligned();
            }
            let mut y = [[E::zero(); LANES]; COLS];
            for t in 0..COLS {
                y[t] = b_src[t]
                    .add(b_row + j)
                    .cast::<[E; LANES]>()
                    .read_unaligned();
            }
            for r in 0..ROWS {
                for t in 0..COLS {
                    for l in 0..LANES {
                        acc[r][t][l] = multiply_add::<E, FMA>(x[r][l], y[t][l], acc[r][t][l]);
                    }
                }
            }
        }
    }
    acc
}

/// Adds to `out` the lane sums of a [`dot_block`] and the products over the positions of every
/// row from `done` on, one element at a time.
#[inline(never)]
fn add_dots<E: Float, const ROWS: usize, const COLS: usize, const LANES: usize>(
    lanes: &[[[E; LANES]; COLS]; ROWS],
    a: Window<'_, E>,
    b: Window<'_, E>,
    [rows, cols]: [usize; 2],
    done: usize,
    out: &mut [E],
    out_stride: usize,
) {
    for (r, lanes) in lanes.iter().enumerate() {
        for (t, lanes) in lanes.iter().enumerate() {
            let mut sum = lanes.iter().fold(E::zero(), |s, &v| s + v);
            for i in 0..rows {
                let a_row = a.origin + a.taps[r] + i * a.row_stride;
                let b_row = b.origin + b.taps[t] + i * b.row_stride;
                for j in done..cols {
                    sum = sum + a.src[a_row + j] * b.src[b_row + j];
                }
            }
            let o = &mut out[r * out_stride + t];
            *o = *o + sum;
        }
    }
}

/// Both loops against their definition, on random windows, in `f32` and `f64`, in the portable
/// build and (where the CPU has them) with AVX2 and FMA: the kernel's other tests run only the
/// build the CPU picks.
#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// A source buffer, tap offsets and a row stride whose every read over a grid is in bounds.
    struct Case {
        src: Vec<f64>,
        taps: Vec<usize>,
        row_stride: usize,
    }

    fn random_case(rng: &mut StdRng, taps: usize, grid: [usize; 2]) -> Case {
        let row_stride = grid[1] + rng.gen_range(0..=5);
        let area = (grid[0] - 1) * row_stride + grid[1];
        let taps: Vec<usize> = (0..taps).map(|_| rng.gen_range(0..=60)).collect();
        let len = taps.iter().max().unwrap_or(&0) + area + SLACK;
        let src = (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect();
        Case {
            src,
            taps,
            row_stride,
        }
    }

    fn random_grid(rng: &mut StdRng) -> [usize; 2] {
        [rng.gen_range(1..=4), rng.gen_range(1..=37)]
    }

    fn cast<E: Float>(values: &[f64]) -> Vec<E> {
        values.iter().map(|&v| E::from(v).unwrap()).collect()
    }

    fn to_f64<E: Float>(values: &[E]) -> Vec<f64> {
        values.iter().map(|v| v.to_f64().unwrap()).collect()
    }

    impl Case {
        fn window<'a, E>(&'a self, src: &'a [E]) -> Window<'a, E> {
            Window {
                src,
                origin: 0,
                row_stride: self.row_stride,
                taps: &self.taps,
            }
        }

        fn at(&self, t: usize, [i, j]: [usize; 2]) -> f64 {
            self.src[self.taps[t] + i * self.row_stride + j]
        }
    }

    /// `(name, instruction set: 0 portable, 1 AVX2, 2 AVX-512)` for each build of the loops
    /// this CPU can run.
    fn builds() -> Vec<(&'static str, u8)> {
        let mut builds = vec![("portable", 0)];
        #[cfg(target_arch = "x86_64")]
        {
            if has_avx2_fma() {
                builds.push(("avx2", 1));
            }
            if has_avx512f() {
                builds.push(("avx512", 2));
            }
        }
        builds
    }

    fn correlate_case<E: Float + core::fmt::Debug>(rng: &mut StdRng, tolerance: f64) {
        let channels = rng.gen_range(1..=TILE_CHANNELS);
        let taps = rng.gen_range(1..=20);
        let grid @ [rows, cols] = random_grid(rng);
        let case = random_case(rng, taps, grid);
        let weights: Vec<f64> = (0..taps * TILE_CHANNELS)
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let bias: Vec<f64> = (0..channels).map(|_| rng.gen_range(-1.0..1.0)).collect();
        // A column stride of 2 leaves gaps that must stay untouched.
        let col_stride = rng.gen_range(1..=2);
        let layout = OutputLayout {
            start: 1,
            channel_stride: rows * cols * col_stride + 1,
            row_stride: cols * col_stride,
            col_stride,
        };
        let len = 1 + channels * layout.channel_stride;
        // The sums of the definition, at their output index.
        let mut sums = Vec::new();
        for r in 0..channels {
            for i in 0..rows {
                for j in 0..cols {
                    let sum: f64 = (0..taps)
                        .map(|t| weights[t * TILE_CHANNELS + r] * case.at(t, [i, j]))
                        .sum();
                    let at = layout.start
                        + r * layout.channel_stride
                        + i * layout.row_stride
                        + j * layout.col_stride;
                    sums.push((at, r, sum));
                }
            }
        }
        let (src, weights_e, bias_e) =
            (cast::<E>(&case.src), cast::<E>(&weights), cast::<E>(&bias));
        // The outputs of the fused builds (AVX2, AVX-512), which must agree bit for bit.
        let mut fused: Vec<Vec<u64>> = Vec::new();
        for (build, isa) in builds() {
            for store in [Store::Bias(&bias_e), Store::Accumulate] {
                // Cells no sum lands on must keep their 0.25.
                let mut expected = vec![0.25; len];
                for &(at, r, sum) in &sums {
                    expected[at] = match store {
                        Store::Bias(_) => sum + bias[r],
                        Store::Accumulate => sum + 0.25,
                    };
                }
                let mut out = cast::<E>(&vec![0.25; len]);
                let window = case.window(&src);
                // SAFETY: `random_case` leaves `SLACK` past every read; AVX2 only when present.
                unsafe {
                    match isa {
                        #[cfg(target_arch = "x86_64")]
                        1 => correlate_avx2(
                            window, &weights_e, channels, grid, &mut out, layout, store,
                        ),
                        #[cfg(target_arch = "x86_64")]
                        2 => correlate_avx512(
                            window, &weights_e, channels, grid, &mut out, layout, store,
                        ),
                        _ => correlate_with::<E, false>(
                            window, &weights_e, channels, grid, &mut out, layout, store,
                        ),
                    }
                }
                eprintln!("{build}, {store:?}, {channels} channels, grid {grid:?}");
                crate::assert_close!(to_f64(&out), expected, tolerance);
                if isa > 0 {
                    fused.push(to_f64(&out).iter().map(|v| v.to_bits()).collect());
                }
            }
        }
        // Per store, AVX-512 against AVX2.
        if fused.len() == 4 {
            assert_eq!(fused[0], fused[2], "AVX-512 and AVX2 differ, bias");
            assert_eq!(fused[1], fused[3], "AVX-512 and AVX2 differ, accumulate");
        }
    }

    fn window_dots_case<E: Float + core::fmt::Debug>(rng: &mut StdRng, tolerance: f64) {
        let grid @ [rows, cols] = random_grid(rng);
        let (taps_a, taps_b) = (rng.gen_range(1..=7), rng.gen_range(1..=8));
        let a = random_case(rng, taps_a, grid);
        let b = random_case(rng, taps_b, grid);
        let stride = taps_b + 2;
        let mut expected = vec![1.0; taps_a * stride];
        for r in 0..taps_a {
            for t in 0..taps_b {
                for i in 0..rows {
                    for j in 0..cols {
                        expected[r * stride + t] += a.at(r, [i, j]) * b.at(t, [i, j]);
                    }
                }
            }
        }
        let (a_src, b_src) = (cast::<E>(&a.src), cast::<E>(&b.src));
        // The dot products have no 512-bit copy: AVX-512 CPUs run the AVX2 one.
        for (build, isa) in builds() {
            let avx2 = isa >= 1;
            let mut out = cast::<E>(&vec![1.0; expected.len()]);
            let vectors = cols / lanes::<E>();
            let (a, b) = (a.window(&a_src), b.window(&b_src));
            // SAFETY: `random_case` leaves `SLACK` past every read; AVX2 only when present.
            unsafe {
                if avx2 {
                    #[cfg(target_arch = "x86_64")]
                    window_dots::<E, true>(a, b, grid, vectors, &mut out, stride);
                } else {
                    window_dots::<E, false>(a, b, grid, vectors, &mut out, stride);
                }
            }
            eprintln!("{build}: {taps_a} × {taps_b} taps, grid {grid:?}");
            crate::assert_close!(to_f64(&out), expected, tolerance);
        }
    }

    #[test]
    fn correlate_matches_its_definition() {
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..200 {
            correlate_case::<f64>(&mut rng, 1e-12);
            correlate_case::<f32>(&mut rng, 1e-5);
        }
    }

    #[test]
    fn window_dots_match_their_definition() {
        let mut rng = StdRng::seed_from_u64(5);
        for _ in 0..200 {
            window_dots_case::<f64>(&mut rng, 1e-12);
            window_dots_case::<f32>(&mut rng, 1e-5);
        }
    }
}
