//! Assembling the next mini-batches on a background thread while the current one trains.
//!
//! PyTorch's `DataLoader(ds, batch_size, num_workers=1, prefetch_factor=depth)`: one worker
//! thread runs ahead of the training loop by at most `depth` batches, handing them over through
//! a bounded channel (`std::sync::mpsc::sync_channel(depth)`), so a slow loop never lets the
//! worker fill memory. The worker only gathers and converts host memory (the features of a
//! batch's examples, its labels); the tensor is made on the training thread, so no device
//! handle crosses threads and the order of device operations (and of the device's random
//! numbers) is the same as without prefetching.
//!
//! The worker lives inside [`std::thread::scope`], so it may borrow the data set, and the
//! scope cannot end while it runs: [`prefetch`] hands the consumer to a closure, drops the
//! receiving end when the closure returns (early or not), which makes the worker's next send
//! fail and the worker return, and only then joins it. A panic in the worker reaches the
//! caller when the scope joins it; errors the items carry (`Result` items) arrive in order.

use core::marker::PhantomData;
use std::sync::mpsc::{sync_channel, IntoIter as ChannelIter};

use dfdx::tensor::{Tensor, TensorFromVec};

use super::batch::{Batch, Batches, ExampleShape};
use crate::network::Element;

/// The items of an iterator, produced either on the caller's thread or by a background worker
/// that runs up to `depth` items ahead; see [`prefetch`].
pub struct Prefetch<'a, T> {
    source: Source<'a, T>,
}

enum Source<'a, T> {
    /// `depth` 0: the iterator itself, run on the caller's thread.
    InLine(Box<dyn Iterator<Item = T> + 'a>),
    /// The receiving end of the worker's channel.
    Worker(ChannelIter<T>),
}

impl<T> Iterator for Prefetch<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match &mut self.source {
            Source::InLine(items) => items.next(),
            // `None` once the worker has sent its last item and dropped its sender (or died; a
            // panic then reaches the caller when the scope joins the worker).
            Source::Worker(received) => received.next(),
        }
    }
}

impl<T> core::fmt::Debug for Prefetch<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let source = match self.source {
            Source::InLine(_) => "in line",
            Source::Worker(_) => "worker",
        };
        f.debug_struct("Prefetch").field("source", &source).finish()
    }
}

/// Runs `body` on the items of `items`, which a background thread produces up to `depth`
/// items ahead of `body`'s consumption; `depth` 0 produces them on the caller's thread, with
/// no thread at all. Either way `body` sees the same items in the same order.
///
/// When `body` returns before the items are exhausted (an error, an early stop), the worker
/// stops after the item it is producing: `prefetch` drops the channel's receiving end before
/// joining the worker, so nothing waits forever. An item that is a `Result` carries its error
/// to `body` in order, like any other item. A panic in the worker ends the items `body` sees
/// (as if the iterator had ended there) and is resumed, with the worker's message, on the
/// caller's thread when `body` returns.
///
/// **PyTorch**: `DataLoader(…, num_workers=1, prefetch_factor=depth)`.
///
/// ```
/// use typednet::data::prefetch;
///
/// let squares = (1..=5u64).map(|i| i * i);
/// let firsts: Vec<u64> = prefetch(squares, 2, |items| items.take(3).collect());
/// assert_eq!(firsts, [1, 4, 9]); // and the worker has stopped
/// ```
pub fn prefetch<'a, I, R>(
    items: I,
    depth: usize,
    body: impl FnOnce(&mut Prefetch<'_, I::Item>) -> R,
) -> R
where
    I: Iterator + Send + 'a,
    I::Item: Send,
{
    if depth == 0 {
        let mut in_line = Prefetch {
            source: Source::InLine(Box::new(items)),
        };
        return body(&mut in_line);
    }
    std::thread::scope(|scope| {
        let (sender, receiver) = sync_channel(depth);
        let worker = scope.spawn(move || {
            for item in items {
                if sender.send(item).is_err() {
                    // The consumer is gone: stop producing.
                    return;
                }
            }
        });
        let mut from_worker = Prefetch {
            source: Source::Worker(receiver.into_iter()),
        };
        let result = body(&mut from_worker);
        // Unblocks a worker waiting on a full channel, so that joining it cannot hang.
        drop(from_worker);
        if let Err(payload) = worker.join() {
            // The worker's own message, not the scope's generic one.
            std::panic::resume_unwind(payload);
        }
        result
    })
}

/// A mini-batch assembled on the host: its examples' features converted to `E` (example after
/// example, row-major) and its labels; what [`Batches::prefetch`] hands over from its worker.
/// `S` is the shape one example is read as.
#[derive(Debug, Clone, PartialEq)]
pub struct HostBatch<S, E> {
    indices: Vec<usize>,
    features: Vec<E>,
    labels: Vec<usize>,
    shape: PhantomData<S>,
}

impl<S: ExampleShape, E: Element> HostBatch<S, E> {
    /// Number of examples (the tensor's run-time batch size).
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether the batch holds no example (never, for batches from [`Batches`]).
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Positions in the data set of the batch's examples.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }

    /// The examples' labels, in batch order.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// The examples' features, `len() × S::NUM_ELEMENTS` values.
    pub fn features(&self) -> &[E] {
        &self.features
    }

    /// The batch as a tensor of shape `S::Batch` on `dev`, e.g.
    /// `Tensor<(usize, Const<784>), f32, Cpu>`, and its labels; fails only when the device
    /// cannot allocate it.
    pub fn try_into_tensor<D: TensorFromVec<E>>(
        self,
        dev: &D,
    ) -> Result<(Tensor<S::Batch, E, D>, Vec<usize>), D::Err> {
        let shape = S::batch_of(self.indices.len());
        let x = dev.try_tensor_from_vec(self.features, shape)?;
        Ok((x, self.labels))
    }
}

impl<S: ExampleShape> Batch<'_, S> {
    /// Gathers the batch's features (converted to `E`) and labels into memory of its own; the
    /// work [`Batches::prefetch`] moves to a background thread.
    pub fn assemble<E: Element>(&self) -> HostBatch<S, E> {
        HostBatch {
            indices: self.indices().to_vec(),
            features: self.features(),
            labels: self.labels(),
            shape: PhantomData,
        }
    }
}

impl<S: ExampleShape> Batches<'_, S> {
    /// Runs `body` on these batches assembled ([`Batch::assemble`]) by a background thread that
    /// stays up to `depth` batches ahead; `depth` 0 assembles them on the caller's thread. The
    /// batches are the same, in the same order, as those of the iterator itself (the order was
    /// drawn when the iterator was made); see [`prefetch`] for how the worker stops when
    /// `body` returns early and how a panic is passed on.
    ///
    /// **PyTorch**: `DataLoader(ds, batch_size, shuffle, num_workers=1, prefetch_factor=depth)`.
    ///
    /// ```
    /// use typednet::data::Dataset;
    /// use typednet::prelude::*;
    /// use rand::{rngs::StdRng, SeedableRng};
    ///
    /// let data = Dataset::new("pairs", (0..20).map(|v| v as f32).collect(), vec![0, 1, 0, 1, 0, 1, 0, 1, 0, 1], vec![2], 2)?;
    /// let dev = Cpu::default();
    /// let batches = data.shuffled_batches::<Rank1<2>, _>(4, &mut StdRng::seed_from_u64(0))?;
    /// let sizes = batches.prefetch::<f32, _>(2, |batches| {
    ///     batches
    ///         .map(|batch| {
    ///             let (x, labels) = batch.try_into_tensor(&dev).unwrap();
    ///             let _: &Tensor<(usize, Const<2>), f32, Cpu> = &x;
    ///             labels.len()
    ///         })
    ///         .collect::<Vec<_>>()
    /// });
    /// assert_eq!(sizes, [4, 4, 2]);
    /// # Ok::<(), typednet::data::DataError>(())
    /// ```
    pub fn prefetch<E: Element, R>(
        self,
        depth: usize,
        body: impl FnOnce(&mut Prefetch<'_, HostBatch<S, E>>) -> R,
    ) -> R {
        prefetch(self.map(|batch| batch.assemble::<E>()), depth, body)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use dfdx::shapes::Rank1;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::data::Dataset;

    fn data(n: usize) -> Dataset {
        let features = (0..n * 3).map(|v| v as f32).collect();
        let labels = (0..n).map(|i| i % 4).collect();
        Dataset::new("triples", features, labels, vec![3], 4).unwrap()
    }

    #[test]
    fn prefetched_batches_equal_the_batches_in_order() {
        let data = data(103);
        for depth in [0, 1, 3, 200] {
            let direct: Vec<HostBatch<Rank1<3>, f64>> = data
                .shuffled_batches::<Rank1<3>, _>(10, &mut StdRng::seed_from_u64(5))
                .unwrap()
                .map(|b| b.assemble())
                .collect();
            let prefetched: Vec<HostBatch<Rank1<3>, f64>> = data
                .shuffled_batches::<Rank1<3>, _>(10, &mut StdRng::seed_from_u64(5))
                .unwrap()
                .prefetch(depth, |batches| batches.collect());
            assert_eq!(direct.len(), 11);
            assert_eq!(prefetched, direct, "depth {depth}");
        }
    }

    #[test]
    fn stopping_early_stops_the_worker_without_hanging() {
        // The worker would produce 10,000 items; the body takes two and returns while the
        // worker is blocked on a full channel of depth 1. `prefetch` must return, and the
        // worker must not have produced much more than what was taken plus the channel.
        let produced = AtomicUsize::new(0);
        let items = (0..10_000).inspect(|_| {
            produced.fetch_add(1, Ordering::SeqCst);
        });
        let taken: Vec<i32> = prefetch(items, 1, |items| items.take(2).collect());
        assert_eq!(taken, [0, 1]);
        // Two taken, at most one in the channel and one blocked in `send`.
        assert!(produced.load(Ordering::SeqCst) <= 4, "{produced:?}");
    }

    #[test]
    fn a_body_that_takes_nothing_returns() {
        let data = data(1000);
        let batches = data.batches::<Rank1<3>>(1).unwrap();
        let n = batches.prefetch::<f32, _>(2, |_| 7);
        assert_eq!(n, 7);
    }

    #[test]
    fn errors_carried_by_the_items_arrive_in_order() {
        let items = (0..5).map(|i| {
            if i == 3 {
                Err(format!("item {i}"))
            } else {
                Ok(i)
            }
        });
        let got: Result<Vec<i32>, String> = prefetch(items, 2, |items| items.collect());
        assert_eq!(got, Err("item 3".to_string()));
    }

    #[test]
    fn a_panicking_worker_panics_the_caller() {
        let result = std::panic::catch_unwind(|| {
            let items = (0..5).inspect(|&i| {
                assert!(i < 2, "the worker failed at item {i}");
            });
            prefetch(items, 1, |items| items.count())
        });
        let payload = result.unwrap_err();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        assert_eq!(message, "the worker failed at item 2");
    }
}
