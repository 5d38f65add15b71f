//! Reading a CPU tensor's values where dfdx keeps them, without copying them out.
//!
//! dfdx 0.13 keeps a tensor's storage private; its public ways out, `copy_into` and `as_vec`,
//! copy. The kernels used to copy every input and weight they read: for ResNet-18's inference
//! at batch 1 that was 47 MB of weights per call, about a tenth of the time (`perf`). The
//! storage is reachable read-only through dfdx's `Index` impl for CPU tensors, which returns a
//! reference into it: [`contiguous_slice`] checks, through that impl, that the tensor is laid
//! out row-major without gaps and returns the whole slice.

use std::ops::Deref;

use dfdx::shapes::{HasShape, Shape, Unit};
use dfdx::tensor::{Cpu, NoneTape, Tensor};

/// `tensor`'s values in logical (row-major) order, read in place; `None` when the tensor is not
/// laid out that way (a broadcast or permuted view), for the caller to copy instead.
pub(crate) fn contiguous_slice<S: Shape, E: Unit, T>(
    tensor: &Tensor<S, E, Cpu, T>,
) -> Option<&[E]> {
    let shape = tensor.shape();
    let len = shape.num_elements();
    if len == 0 {
        return Some(&[]);
    }
    let (dims, strides) = (shape.concrete(), shape.strides());
    let origin: *const E = &tensor[S::Concrete::default()];
    // Element `index` lies `Σ index·stride` past the origin when the strides are the standard
    // ones; one step along each axis checks them.
    for axis in (0..S::NUM_DIMS).filter(|&axis| dims[axis] > 1) {
        let mut step = S::Concrete::default();
        step[axis] = 1;
        let at: *const E = &tensor[step];
        // SAFETY: both references point into the tensor's one storage vector.
        if unsafe { at.offset_from(origin) } != strides[axis] as isize {
            return None;
        }
    }
    let mut last = dims;
    for axis in 0..S::NUM_DIMS {
        last[axis] -= 1;
    }
    let end: *const E = &tensor[last];
    // SAFETY: as above.
    if unsafe { end.offset_from(origin) } != len as isize - 1 {
        return None;
    }
    // SAFETY: `origin` and `end` are elements of the storage vector, bounds-checked by the
    // indexing, `len − 1` apart, so the `len` values from `origin` are initialised elements of
    // that vector; the borrow of `tensor` keeps its storage alive and unchanged (dfdx mutates a
    // storage only through `&mut` to a tensor, cloning it first while it is shared).
    Some(unsafe { std::slice::from_raw_parts(origin, len) })
}

/// A CPU tensor's values in logical order, for a kernel to read now and its backward pass
/// later: a clone of the tensor (which shares dfdx's storage, as dfdx's own ops keep their
/// inputs) when it is laid out contiguously, else a copy.
#[derive(Debug)]
pub(crate) enum HostValues<S: Shape, E: Unit> {
    /// Read in place through [`contiguous_slice`].
    Shared(Tensor<S, E, Cpu>),
    /// Copied in logical order.
    Copied(Vec<E>),
}

impl<S: Shape, E: Unit> HostValues<S, E> {
    /// The values of `tensor`, shared when it is contiguous.
    pub(crate) fn of<T>(tensor: &Tensor<S, E, Cpu, T>) -> Self {
        if contiguous_slice(tensor).is_some() {
            return HostValues::Shared(tensor.retaped::<NoneTape>());
        }
        // Element by element through dfdx's indexing, in row-major order: slow, but only views
        // come here, and the kernels make their inputs contiguous first.
        let dims = tensor.shape().concrete();
        let len = tensor.shape().num_elements();
        let mut values = Vec::with_capacity(len);
        let mut index = S::Concrete::default();
        for _ in 0..len {
            values.push(tensor[index]);
            for axis in (0..S::NUM_DIMS).rev() {
                index[axis] += 1;
                if index[axis] < dims[axis] {
                    break;
                }
                index[axis] = 0;
            }
        }
        HostValues::Copied(values)
    }
}

impl<S: Shape, E: Unit> Deref for HostValues<S, E> {
    type Target = [E];

    fn deref(&self) -> &[E] {
        match self {
            HostValues::Shared(tensor) => {
                contiguous_slice(tensor).expect("checked contiguous when shared")
            }
            HostValues::Copied(values) => values,
        }
    }
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use super::{contiguous_slice, HostValues};

    #[test]
    fn a_contiguous_tensor_is_read_in_place_in_logical_order() {
        let dev = Cpu::default();
        let x: Tensor<Rank3<2, 3, 4>, f32, Cpu> =
            dev.tensor((0..24).map(|v| v as f32).collect::<Vec<_>>());
        assert_eq!(contiguous_slice(&x).unwrap(), &x.as_vec()[..]);
        let values = HostValues::of(&x);
        assert!(matches!(values, HostValues::Shared(_)));
        assert_eq!(&values[..], &x.as_vec()[..]);
        // Dimensions of size 1 and empty tensors.
        let column: Tensor<Rank2<5, 1>, f32, Cpu> = dev.sample_normal();
        assert_eq!(contiguous_slice(&column).unwrap(), &column.as_vec()[..]);
        let empty: Tensor<(usize, Const<3>), f32, Cpu> = dev.zeros_like(&(0, Const));
        assert_eq!(contiguous_slice(&empty).unwrap(), &[] as &[f32]);
    }

    #[test]
    fn permuted_and_broadcast_views_are_copied_in_logical_order() {
        let dev = Cpu::default();
        let x: Tensor<Rank2<2, 3>, f32, Cpu> = dev.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
        let transposed = x.clone().permute::<Rank2<3, 2>, _>();
        assert!(contiguous_slice(&transposed).is_none());
        let values = HostValues::of(&transposed);
        assert!(matches!(values, HostValues::Copied(_)));
        assert_eq!(&values[..], &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        let row: Tensor<Rank1<3>, f32, Cpu> = dev.tensor([7.0, 8.0, 9.0]);
        let broadcast: Tensor<Rank2<2, 3>, f32, Cpu> = row.broadcast();
        assert!(contiguous_slice(&broadcast).is_none());
        assert_eq!(
            &HostValues::of(&broadcast)[..],
            &[7.0, 8.0, 9.0, 7.0, 8.0, 9.0]
        );
    }

    #[test]
    fn a_shared_tensor_keeps_its_values_when_the_original_changes() {
        let dev = Cpu::default();
        let mut x: Tensor<Rank1<3>, f32, Cpu> = dev.tensor([1.0, 2.0, 3.0]);
        let values = HostValues::of(&x);
        // dfdx copies a shared storage before writing it.
        x.copy_from(&[7.0, 8.0, 9.0]);
        assert_eq!(&values[..], &[1.0, 2.0, 3.0]);
        assert_eq!(x.as_vec(), vec![7.0, 8.0, 9.0]);
    }
}
