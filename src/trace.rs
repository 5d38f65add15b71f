//! Tracing a network's input without asking for its gradient: PyTorch's default
//! (`requires_grad=False` on data), which dfdx cannot express.
//!
//! dfdx records a gradient for every tensor on the tape, the input included: `x.traced(grads)`
//! makes the first layer's backward pass compute `∂L/∂x`, which training never reads (with
//! gradients from `alloc_grads`, dfdx even drops it at the end of `backward`). For a dense first
//! layer that is a third of its backward work: `∂x = ∂y·W` costs as much as `∂W` (likewise a
//! convolution's input gradient). PyTorch skips
//! it because the data tensor does not require a gradient.
//!
//! [`TraceInput::traced_input`] is `traced` plus a note that this tensor's gradient is not
//! wanted. The first layer that reads the input and would compute that gradient (on the CPU,
//! the kernels of the linear layer, the recurrent sequence and the convolution) takes the note when it runs
//! forward and leaves that product out of its backward pass. Everything else is as with
//! `traced`: every parameter gets its gradient, and any other op that reads the input computes
//! what it always did.
//!
//! The note is kept per thread, one at a time: it is taken by the first layer that reads it,
//! and replaced by the next `traced_input`. So it covers one forward pass, and the same tensor
//! traced later with plain `traced` gets its gradient, unless the forward pass after
//! `traced_input` had no such layer (a network whose first op is dfdx's, say) and no other
//! `traced_input` came between.
//!
//! ```
//! use typednet::prelude::*;
//!
//! network! {
//!     pub struct Mlp: [4] -> linear(8) -> relu -> linear(2);
//! }
//! let dev = Cpu::seed_from_u64(0);
//! let net = Mlp::<f32, Cpu>::new(&dev);
//! let x: Tensor<Rank2<3, 4>, f32, Cpu> = dev.sample_normal();
//! // As `x.traced(grads)`, without the input's gradient.
//! let loss = net.forward(x.traced_input(net.alloc_grads())).square().mean();
//! let grads = loss.backward();
//! let _weight_gradient = grads.get(&net.linear1.weight);
//! ```

use std::cell::Cell;

use dfdx::shapes::{Dtype, Shape};
use dfdx::tensor::{Gradients, NoneTape, OwnedTape, Storage, Tensor, Trace, UniqueId};

use crate::optim::id_of;

thread_local! {
    /// The id of the latest input traced with [`TraceInput::traced_input`] whose note no layer
    /// has taken yet.
    static INPUT_WITHOUT_GRADIENT: Cell<Option<UniqueId>> = const { Cell::new(None) };
}

/// [`TraceInput::traced_input`] for every tensor without a tape.
pub trait TraceInput<S: Shape, E: Dtype, D: Storage<E>> {
    /// Puts the tensor on a tape that writes into `gradients`, as dfdx's `traced`, noting that
    /// its own gradient is not wanted; see the [module docs](self).
    fn traced_input(self, gradients: Gradients<E, D>) -> Tensor<S, E, D, OwnedTape<E, D>>;
}

impl<S: Shape, E: Dtype, D: Storage<E>> TraceInput<S, E, D> for Tensor<S, E, D, NoneTape> {
    fn traced_input(self, gradients: Gradients<E, D>) -> Tensor<S, E, D, OwnedTape<E, D>> {
        INPUT_WITHOUT_GRADIENT.with(|note| note.set(Some(id_of(&self))));
        self.traced(gradients)
    }
}

/// Whether `tensor` is the input of the latest [`TraceInput::traced_input`] on this thread and
/// no layer has taken the note yet; taking it if so. A layer calls this once, in a forward pass
/// with a tape, and then leaves out the input's gradient.
pub(crate) fn take_gradient_unwanted<S: Shape, E: Dtype, D: Storage<E>, T>(
    tensor: &Tensor<S, E, D, T>,
) -> bool {
    let id = id_of(tensor);
    INPUT_WITHOUT_GRADIENT.with(|note| {
        let unwanted = note.get() == Some(id);
        if unwanted {
            note.set(None);
        }
        unwanted
    })
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use super::*;

    #[test]
    fn the_note_covers_one_reading_of_the_latest_input() {
        let dev = Cpu::default();
        let first: Tensor<Rank1<2>, f32, Cpu> = dev.zeros();
        let second: Tensor<Rank1<2>, f32, Cpu> = dev.zeros();
        let _ = first.clone().traced_input(Gradients::leaky());
        assert!(!take_gradient_unwanted(&second), "another tensor");
        assert!(take_gradient_unwanted(&first));
        assert!(!take_gradient_unwanted(&first), "taken by the first reader");
        let _ = first.clone().traced_input(Gradients::leaky());
        let _ = second.clone().traced_input(Gradients::leaky());
        assert!(
            !take_gradient_unwanted(&first),
            "replaced by the newer input"
        );
        assert!(take_gradient_unwanted(&second));
        let _ = first.clone().traced(Gradients::<f32, Cpu>::leaky());
        assert!(
            !take_gradient_unwanted(&first),
            "plain `traced` leaves no note"
        );
    }
}
