//! When the element-wise passes of the CPU kernels (activations, losses, batch norm, padding,
//! Adam) split their work between rayon's threads, and in what pieces: one rule for all, since
//! they all do a few operations per element. And how sums over a batch are split, so that they
//! round the same way on every run.

/// Slices at least this long are split between the threads: below it the hand-over costs more
/// than the work (σ over 16,384 `f32` takes about 10 µs on one core).
pub(crate) const PARALLEL_LENGTH: usize = 1 << 15;

/// The piece of a long slice one task takes.
pub(crate) const CHUNK: usize = 1 << 13;

/// Sums over a batch (a weight gradient, summed over the examples) are cut into at most this
/// many groups of consecutive examples, or one per thread on machines with more threads.
const REDUCTION_GROUPS: usize = 8;

/// How many consecutive examples of a batch of `batch` one task of a sum over the batch takes:
/// each group is summed in order on one thread, and the groups' sums are added in order.
///
/// The partition depends on the batch size alone (up to [`REDUCTION_GROUPS`] threads), where
/// rayon's adaptive `fold` groups the items by which thread stole which: its floating-point
/// sums, and the training they feed, would differ in the last bits from run to run.
pub(crate) fn reduction_group_len(batch: usize) -> usize {
    let groups = REDUCTION_GROUPS
        .max(rayon::current_num_threads())
        .min(batch)
        .max(1);
    batch.div_ceil(groups).max(1)
}

/// `len` zeros, written by the pool's threads: a fresh buffer of a few MB is otherwise zeroed
/// by one thread while the others wait (`vec![0.0; len]` is a `memset` unless the allocator
/// hands out fresh pages).
pub(crate) fn zeroed<E: num_traits::Zero + Copy + Send + Sync>(len: usize) -> Vec<E> {
    if len < PARALLEL_LENGTH {
        return vec![E::zero(); len];
    }
    let mut values = Vec::with_capacity(len);
    rayon::iter::ParallelExtend::par_extend(&mut values, rayon::iter::repeat_n(E::zero(), len));
    values
}

/// Asserts that `run` gives the same result on a rayon pool of each of `threads` threads as on
/// one thread: the test that a kernel's sums do not depend on how its work is split.
#[cfg(test)]
pub(crate) fn assert_same_on_threads<R: PartialEq + Send>(
    threads: &[usize],
    run: impl Fn() -> R + Sync,
) {
    let on = |count: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(count)
            .build()
            .unwrap()
            .install(&run)
    };
    let one_thread = on(1);
    for &count in threads {
        assert!(on(count) == one_thread, "{count} threads");
    }
}
