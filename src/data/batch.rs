//! Mini-batches of a [`Dataset`] as dfdx tensors whose batch size is known only at run time.

use core::marker::PhantomData;

use dfdx::shapes::{Const, ConstShape, Shape};
use dfdx::tensor::{Tensor, TensorFromVec};
use rand::seq::SliceRandom;
use rand::Rng;

use super::dataset::Dataset;
use super::error::{DataError, DataErrorKind};
use crate::network::Element;

/// The compile-time shape of one example that a batch tensor can hold: `Rank1<F>` (a vector) or
/// `Rank3<C, H, W>` (an image).
pub trait ExampleShape: ConstShape {
    /// The shape of a batch of `n` examples: `(usize, Const<F>)` or
    /// `(usize, Const<C>, Const<H>, Const<W>)`.
    type Batch: Shape;

    /// The batch shape for `n` examples.
    fn batch_of(n: usize) -> Self::Batch;

    /// The shape as a list of sizes, e.g. `[1, 28, 28]`.
    fn dims() -> Vec<usize>;

    /// Whether examples of `data_shape` can be read as this shape.
    fn accepts(data_shape: &[usize]) -> bool;
}

impl<const F: usize> ExampleShape for (Const<F>,) {
    type Batch = (usize, Const<F>);

    fn batch_of(n: usize) -> Self::Batch {
        (n, Const)
    }

    fn dims() -> Vec<usize> {
        vec![F]
    }

    /// Any example with `F` values: flattening images to vectors is what an MLP needs.
    fn accepts(data_shape: &[usize]) -> bool {
        data_shape.iter().product::<usize>() == F
    }
}

impl<const C: usize, const H: usize, const W: usize> ExampleShape
    for (Const<C>, Const<H>, Const<W>)
{
    type Batch = (usize, Const<C>, Const<H>, Const<W>);

    fn batch_of(n: usize) -> Self::Batch {
        (n, Const, Const, Const)
    }

    fn dims() -> Vec<usize> {
        vec![C, H, W]
    }

    /// Images of exactly `[C, H, W]`, or flat vectors of `C·H·W` values (pixels stored in a
    /// table, like the UCI digits); not images of another layout with the same count.
    fn accepts(data_shape: &[usize]) -> bool {
        data_shape == [C, H, W] || data_shape == [C * H * W]
    }
}

impl Dataset {
    /// Mini-batches of `batch_size` examples in order, the last one partial when `batch_size`
    /// does not divide the length; each becomes a tensor of shape `S::Batch`.
    ///
    /// Like `DataLoader(ds, batch_size, shuffle=False, drop_last=False)`. Fails when examples of
    /// this data set cannot be read as `S` (see [`ExampleShape::accepts`]) or `batch_size` is 0.
    pub fn batches<S: ExampleShape>(&self, batch_size: usize) -> Result<Batches<'_, S>, DataError> {
        Batches::new(self, (0..self.len()).collect(), batch_size)
    }

    /// Mini-batches as [`Dataset::batches`], in an order drawn from `rng` (a uniform
    /// permutation, like `DataLoader(ds, batch_size, shuffle=True)`).
    pub fn shuffled_batches<S: ExampleShape, R: Rng + ?Sized>(
        &self,
        batch_size: usize,
        rng: &mut R,
    ) -> Result<Batches<'_, S>, DataError> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(rng);
        Batches::new(self, order, batch_size)
    }

    /// Checks once that examples of this data set can be read as `S`.
    pub fn check_example_shape<S: ExampleShape>(&self, tensor: &str) -> Result<(), DataError> {
        if S::accepts(self.example_shape()) {
            return Ok(());
        }
        Err(DataError::new(
            self.name(),
            DataErrorKind::ShapeMismatch {
                tensor: tensor.into(),
                expected: S::dims(),
                found: self.example_shape().to_vec(),
            },
        ))
    }
}

/// An iterator over the mini-batches of a [`Dataset`]; see [`Dataset::batches`].
#[derive(Debug, Clone)]
pub struct Batches<'a, S> {
    dataset: &'a Dataset,
    order: Vec<usize>,
    batch_size: usize,
    next: usize,
    shape: PhantomData<S>,
}

impl<'a, S: ExampleShape> Batches<'a, S> {
    fn new(dataset: &'a Dataset, order: Vec<usize>, batch_size: usize) -> Result<Self, DataError> {
        dataset.check_example_shape::<S>("batch")?;
        if batch_size == 0 {
            return Err(DataError::new(dataset.name(), DataErrorKind::ZeroBatchSize));
        }
        Ok(Self {
            dataset,
            order,
            batch_size,
            next: 0,
            shape: PhantomData,
        })
    }
}

impl<'a, S> Iterator for Batches<'a, S> {
    type Item = Batch<'a, S>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.order.len() {
            return None;
        }
        let end = (self.next + self.batch_size).min(self.order.len());
        let indices = self.order[self.next..end].to_vec();
        self.next = end;
        Some(Batch {
            dataset: self.dataset,
            indices,
            shape: PhantomData,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.order.len() - self.next).div_ceil(self.batch_size);
        (left, Some(left))
    }
}

impl<S> ExactSizeIterator for Batches<'_, S> {}

/// Some examples of a [`Dataset`], ready to become a tensor of shape `S::Batch`.
#[derive(Debug, Clone)]
pub struct Batch<'a, S> {
    dataset: &'a Dataset,
    indices: Vec<usize>,
    shape: PhantomData<S>,
}

impl<S: ExampleShape> Batch<'_, S> {
    /// Number of examples in the batch (the tensor's run-time batch size).
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
    pub fn labels(&self) -> Vec<usize> {
        self.indices
            .iter()
            .map(|&i| self.dataset.labels()[i])
            .collect()
    }

    /// The examples' features converted to `E`, example after example.
    pub fn features<E: Element>(&self) -> Vec<E> {
        let len = self.dataset.example_len();
        let all = self.dataset.features();
        let mut out = Vec::with_capacity(self.indices.len() * len);
        for &i in &self.indices {
            out.extend(
                all[i * len..(i + 1) * len]
                    .iter()
                    .map(|&v| <E as num_traits::NumCast>::from(v).unwrap_or_else(E::nan)),
            );
        }
        out
    }

    /// The batch as a tensor on `dev`, e.g. `Tensor<(usize, Const<784>), f32, Cpu>`.
    pub fn to_tensor<E: Element, D: TensorFromVec<E>>(&self, dev: &D) -> Tensor<S::Batch, E, D> {
        dev.tensor_from_vec(self.features(), S::batch_of(self.len()))
    }

    /// The batch as a tensor on `dev`; fails only when the device cannot allocate it.
    pub fn try_to_tensor<E: Element, D: TensorFromVec<E>>(
        &self,
        dev: &D,
    ) -> Result<Tensor<S::Batch, E, D>, D::Err> {
        dev.try_tensor_from_vec(self.features(), S::batch_of(self.len()))
    }
}

#[cfg(test)]
mod tests {
    use dfdx::shapes::{HasShape, Rank1, Rank3};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    fn images(n: usize) -> Dataset {
        let features = (0..n * 4).map(|v| v as f32).collect();
        let labels = (0..n).map(|i| i % 3).collect();
        Dataset::new("squares", features, labels, vec![1, 2, 2], 3).unwrap()
    }

    #[test]
    fn keeps_the_last_partial_batch() {
        let data = images(7);
        let sizes: Vec<usize> = data
            .batches::<Rank1<4>>(3)
            .unwrap()
            .map(|b| b.len())
            .collect();
        assert_eq!(sizes, [3, 3, 1]);
        assert_eq!(data.batches::<Rank1<4>>(3).unwrap().len(), 3);
    }

    #[test]
    fn shuffling_visits_every_example_once() {
        let data = images(10);
        let mut rng = StdRng::seed_from_u64(7);
        let mut seen: Vec<usize> = data
            .shuffled_batches::<Rank3<1, 2, 2>, _>(4, &mut rng)
            .unwrap()
            .flat_map(|b| b.indices().to_vec())
            .collect();
        assert_ne!(seen, (0..10).collect::<Vec<_>>(), "not shuffled");
        seen.sort_unstable();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn a_batch_becomes_a_tensor_with_its_examples_and_labels() {
        let dev = crate::test_device!();
        let data = images(5);
        let batch = data.batches::<Rank3<1, 2, 2>>(2).unwrap().nth(1).unwrap();
        let x: Tensor<(usize, Const<1>, Const<2>, Const<2>), f64, _> = batch.to_tensor(&dev);
        assert_eq!(x.shape().0, 2);
        assert_eq!(x.as_vec(), [8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0]);
        assert_eq!(batch.labels(), [2, 0]);
    }

    #[test]
    fn rejects_a_shape_with_another_layout() {
        let err = images(2).batches::<Rank3<2, 1, 2>>(1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "batch of \"squares\": expected examples of shape [2, 1, 2], the data set holds [1, 2, 2]"
        );
    }

    #[test]
    fn rejects_a_zero_batch_size() {
        let err = images(2).batches::<Rank1<4>>(0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "squares: the batch size must be at least 1"
        );
    }
}
