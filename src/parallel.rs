//! When the element-wise passes of the CPU kernels (activations, losses, batch norm, padding,
//! Adam) split their work between rayon's threads, and in what pieces: one rule for all, since
//! they all do a few operations per element.

/// Slices at least this long are split between the threads: below it the hand-over costs more
/// than the work (σ over 16,384 `f32` takes about 10 µs on one core).
pub(crate) const PARALLEL_LENGTH: usize = 1 << 15;

/// The piece of a long slice one task takes.
pub(crate) const CHUNK: usize = 1 << 13;
