//! Tracing a network's input without asking for its gradient: PyTorch's default
//! (`requires_grad=False` on data), which dfdx cannot express.
//!
//! dfdx records a gradient for every tensor on the tape, the input included: `x.traced(grads)`
//! makes the first layer's backward pass compute `∂L/∂x`, which training never reads (with
//! gradients from `alloc_grads`, dfdx even drops it at the end of `backward`). For a dense first
//! layer that is a third of its backward work: `∂x = ∂y·W` costs as much as `∂W`. PyTorch skips
//! it because the data tensor does not require a gradient.
//!
//! [`TraceInput::traced_input`] is `traced` plus a note that this tensor's gradient is not
//! wanted. The layers whose backward pass would compute it (on the CPU, the linear layer's
//! kernel) look the note up when they run forward and skip that product. Everything else is as
//! with `traced`: every parameter gets its gradient, and any other op that reads the input
//! computes what it always did. The note is kept per thread for the last few inputs
//! ([`REMEMBERED`]); tensor ids are never reused, so a stale note matches nothing.
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

use std::cell::RefCell;

use dfdx::shapes::{Dtype, Shape};
use dfdx::tensor::{Gradients, NoneTape, OwnedTape, Storage, Tensor, Trace, UniqueId};

use crate::optim::id_of;

/// How many input ids each thread remembers.
pub const REMEMBERED: usize = 8;

thread_local! {
    /// The ids of the latest inputs traced with [`TraceInput::traced_input`], newest last.
    static INPUTS_WITHOUT_GRADIENT: RefCell<Vec<UniqueId>> = const { RefCell::new(Vec::new()) };
}

/// [`TraceInput::traced_input`] for every tensor without a tape.
pub trait TraceInput<S: Shape, E: Dtype, D: Storage<E>> {
    /// Puts the tensor on a tape that writes into `gradients`, as dfdx's `traced`, noting that
    /// its own gradient is not wanted; see the [module docs](self).
    fn traced_input(self, gradients: Gradients<E, D>) -> Tensor<S, E, D, OwnedTape<E, D>>;
}

impl<S: Shape, E: Dtype, D: Storage<E>> TraceInput<S, E, D> for Tensor<S, E, D, NoneTape> {
    fn traced_input(self, gradients: Gradients<E, D>) -> Tensor<S, E, D, OwnedTape<E, D>> {
        let id = id_of(&self);
        INPUTS_WITHOUT_GRADIENT.with(|ids| {
            let mut ids = ids.borrow_mut();
            // The same batch traced again (`x.clone().traced_input(…)` every step) keeps its
            // one entry, moved to the newest place.
            ids.retain(|known| *known != id);
            if ids.len() == REMEMBERED {
                ids.remove(0);
            }
            ids.push(id);
        });
        self.traced(gradients)
    }
}

/// Whether `tensor` was traced with [`TraceInput::traced_input`] on this thread (lately), so
/// that nothing needs its gradient.
pub(crate) fn gradient_unwanted<S: Shape, E: Dtype, D: Storage<E>, T>(
    tensor: &Tensor<S, E, D, T>,
) -> bool {
    let id = id_of(tensor);
    INPUTS_WITHOUT_GRADIENT.with(|ids| ids.borrow().contains(&id))
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use super::*;

    #[test]
    fn remembers_the_latest_inputs_once_each() {
        let dev = Cpu::default();
        let first: Tensor<Rank1<2>, f32, Cpu> = dev.zeros();
        let _ = first.clone().traced_input(Gradients::leaky());
        let _ = first.clone().traced_input(Gradients::leaky());
        assert!(gradient_unwanted(&first));
        let plain: Tensor<Rank1<2>, f32, Cpu> = dev.zeros();
        let _ = plain.clone().traced(Gradients::<f32, Cpu>::leaky());
        assert!(!gradient_unwanted(&plain));
        for _ in 0..REMEMBERED - 1 {
            let other: Tensor<Rank1<2>, f32, Cpu> = dev.zeros();
            let _ = other.traced_input(Gradients::leaky());
        }
        assert!(gradient_unwanted(&first), "traced twice, remembered once");
        let last: Tensor<Rank1<2>, f32, Cpu> = dev.zeros();
        let _ = last.clone().traced_input(Gradients::leaky());
        assert!(
            !gradient_unwanted(&first),
            "forgotten after {REMEMBERED} newer"
        );
        assert!(gradient_unwanted(&last));
    }
}
