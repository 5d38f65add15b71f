//! Recurrent cells and the runners that unroll them over a sequence.
//!
//! A cell computes one time step on a batch: from the input `x_t` (`[B, I]`) and the state it
//! carried from the step before (`h_{t−1}`, or `(h_{t−1}, C_{t−1})` for the LSTMs) it computes
//! the next state, whose hidden part `h_t` (`[B, H]`) is the step's output. Every cell here is
//! written with dfdx's tensor ops, so it runs on the CPU and on CUDA, and dfdx records the
//! unrolled computation: backpropagation through time needs nothing more.
//!
//! [`LstmCell`] and [`TorchGruCell`] also have a fused whole-sequence run
//! ([`crate::ops::recurrent_sequence`]): on `Cpu`, when a runner starts from the zero state,
//! the whole sequence is one custom op on the tape with its own backpropagation through time
//! (the input projection of all steps in one matmul, per step one small matmul and one pass of
//! gate arithmetic), several times faster than the unrolled ops; on CUDA, and with a given
//! initial state, they are unrolled like the other cells. Both paths compute the same values
//! and gradients (tested against each other).
//!
//! | cell | state | gates | PyTorch |
//! |---|---|---|---|
//! | [`ElmanCell`] | `h` | — | `nn.RNN` (tanh) |
//! | [`LstmNoForgetCell`] | `(h, C)` | i, C̃, o | none (Hochreiter & Schmidhuber 1997) |
//! | [`LstmCell`] | `(h, C)` | i, f, g, o | `nn.LSTM` |
//! | [`PeepholeLstmCell`] | `(h, C)` | i, f, g, o + peepholes | none (Gers & Schmidhuber 2000) |
//! | [`GruCell`] | `h` | r, z, h̃ | none (the lecture notes' GRU, Cho et al. 2014) |
//! | [`TorchGruCell`] | `h` | r, z, n | `nn.GRU` |
//! | [`MguCell`] | `h` | f, h̃ | none (Zhou et al. 2016) |
//!
//! Parameters follow PyTorch's names and layout: `weight_ih` (`[G, H, I]`), `weight_hh`
//! (`[G, H, H]`), `bias_ih` and `bias_hh` (`[G, H]`), the `G` gates stacked on the first axis in
//! the order of the table. `[G, H, I]` is PyTorch's `[G·H, I]` viewed with the gate axis
//! apart (stable Rust cannot write `G·H` in a type): the same memory, so PyTorch's
//! `weight_ih_l0` loads by copying its values in order. [`ElmanCell`] has one gate and PyTorch's
//! plain `[H, I]`, `[H]` shapes. Initialisation is PyTorch's: every parameter uniform in
//! `±1/√H`. Reference values for all seven cells come from `tools/reference_recurrent.py`.
//!
//! # Running a sequence
//!
//! [`try_run_sequence`] runs a cell over `[B, S, I]` (with `S` a `Const` or a run-time `usize`)
//! and returns every `h_t` as `[B, S, H]` and the last state; [`try_run_last`] returns the last
//! state only; [`try_run_stacked`] runs layers one over the other (PyTorch's `num_layers`),
//! [`try_run_bidirectional`] a forward and a backward cell (PyTorch's `bidirectional=True`);
//! [`try_run_last_hidden`] and [`try_run_bidirectional_last`] give the last hidden output with
//! the tape. The `network!` recurrent layers (`lstm(128)`, `gru(64, bidirectional = true)`, …)
//! lower to these runners; a bidirectional layer's two cells are a [`Bidirectional`].
//!
//! ```
//! use typednet::dfdx::prelude::*;
//! use typednet::recurrent::{try_run_sequence, LstmCell};
//!
//! let dev = Cpu::default();
//! let lstm = LstmCell::<3, 5, f32, Cpu>::build(&dev);
//! let x: Tensor<Rank3<2, 7, 3>, f32, Cpu> = dev.sample_normal();
//! let (out, last) = try_run_sequence(&lstm, x.leaky_trace(), None).unwrap();
//! let _: &Tensor<Rank3<2, 7, 5>, f32, Cpu, _> = &out;
//! // The loss may use the outputs and the last state together (see "Tapes" below).
//! let loss = out.sum() + last.c.sum();
//! let grads = loss.backward();
//! assert!(grads.get(&lstm.weight_hh).as_vec().iter().any(|g| *g != 0.0));
//! ```
//!
//! An output layer `y_t = ψ(W₃·h_t + b′)`, as the lecture notes write the Elman network, is a
//! separate linear layer applied to the outputs: dfdx's `Linear<H, O>` accepts `[B, S, H]`.
//!
//! # Tapes
//!
//! One gradient tape moves through the steps. [`try_run_sequence`] hands it to the outputs; the
//! last state it returns shares its tensors' ids with the computation but carries an empty
//! tape. A loss computed from the outputs, or from the outputs and the last state together,
//! therefore gets every gradient; a loss from the last state alone would get none — use
//! [`try_run_last`] then, which hands the tape to the state (an encoder whose final state starts
//! a decoder, a classifier of whole sequences).

mod cells;
mod graph;
mod grid;
mod sequence;

pub use cells::{
    ElmanCell, GruCell, LstmCell, LstmNoForgetCell, LstmState, MguCell, PeepholeLstmCell,
    TorchGruCell,
};
pub use graph::{try_run_graph, GraphRnnCell};
pub use grid::{try_run_grid, try_run_grid_last, GridRnnCell};
pub(crate) use sequence::unroll;
pub use sequence::{
    try_run_bidirectional, try_run_bidirectional_last, try_run_last, try_run_last_hidden,
    try_run_sequence, try_run_stacked, Bidirectional,
};

use dfdx::shapes::{Const, Dim, Dtype};

use crate::ops::recurrent_sequence::SequenceRun;
use dfdx::tensor::{NoneTape, Tape, Tensor};
use dfdx::tensor_ops::Device;

/// One time step of a recurrent network, for a batch: `(x_t, state_{t−1}) ↦ state_t`.
///
/// `I` is the input size, `H` the hidden size. Implemented by the seven cells of this module;
/// the runners ([`try_run_sequence`] and the others) take any implementation.
pub trait RecurrentCell<const I: usize, const H: usize, E: Dtype, D: Device<E>> {
    /// What the cell carries from step to step, for a batch `B` and a tape `T`:
    /// `Tensor<(B, Const<H>), E, D, T>` (`h`) or [`LstmState`] (`h` and `C`).
    type State<B: Dim, T: Tape<E, D>>;

    /// The state of all zeros, PyTorch's initial state when none is given.
    fn try_zero_state<B: Dim>(&self, batch: B) -> Result<Self::State<B, NoneTape>, D::Err>;

    /// One step: the next state from the input `x_t` (`[B, I]`) and the current state.
    /// The tapes of `x` and of `state` are merged into the new state's.
    fn try_step<B: Dim, T: Tape<E, D>>(
        &self,
        x: Tensor<(B, Const<I>), E, D, T>,
        state: Self::State<B, T>,
    ) -> Result<Self::State<B, T>, D::Err>;

    /// The hidden output `h_t` of a state.
    fn hidden<B: Dim, T: Tape<E, D>>(state: &Self::State<B, T>) -> &Tensor<(B, Const<H>), E, D, T>;

    /// The hidden output `h_t` of a state, with the state's tape (an LSTM's `C` is dropped).
    fn into_hidden<B: Dim, T: Tape<E, D>>(
        state: Self::State<B, T>,
    ) -> Tensor<(B, Const<H>), E, D, T>;

    /// Takes the tapes off a state's tensors, merged into one.
    fn split_state_tape<B: Dim, T: Tape<E, D>>(
        state: Self::State<B, T>,
    ) -> (Self::State<B, NoneTape>, T);

    /// Puts `tape` on a state (on `h`; `C`, if any, gets an empty tape of the same kind).
    fn put_state_tape<B: Dim, T: Tape<E, D>>(
        state: Self::State<B, NoneTape>,
        tape: T,
    ) -> Self::State<B, T>;

    /// The whole sequence `x` (`[B, S, I]`) from the zero state in one op, where the cell and
    /// the device have a fused kernel for it; otherwise `x` is handed back (`Ok(Err(x))`) and
    /// the runners unroll [`try_step`](Self::try_step).
    ///
    /// `reverse` reads the sequence from the last step to the first; `collect` asks for every
    /// step's output. The default has no fused kernel. [`LstmCell`] and [`TorchGruCell`] on
    /// `Cpu` (`f32`, `f64`) run [`crate::ops::recurrent_sequence`]'s kernel: one custom op with
    /// its own backpropagation through time.
    #[allow(clippy::type_complexity)]
    fn try_run_fused<B: Dim, S: Dim, T: Tape<E, D>>(
        &self,
        x: Tensor<(B, S, Const<I>), E, D, T>,
        reverse: bool,
        collect: bool,
    ) -> Result<
        Result<
            SequenceRun<B, S, H, E, D, Self::State<B, NoneTape>, T>,
            Tensor<(B, S, Const<I>), E, D, T>,
        >,
        D::Err,
    > {
        let _ = (reverse, collect);
        Ok(Err(x))
    }
}

/// PyTorch's initialisation of recurrent layers: every parameter uniform in `±1/√H`. (The
/// convolution-like layers' `crate::layers::reset_uniform` takes its fan-in from a trait, since
/// theirs is a product of const parameters; here it is `H` itself.)
fn reset_uniform<
    S: dfdx::shapes::Shape,
    E: crate::network::Element,
    D: dfdx::tensor_ops::Device<E>,
    const H: usize,
>(
    t: &mut dfdx::tensor::Tensor<S, E, D>,
) -> Result<(), D::Err> {
    let bound = E::one() / E::from_usize(H).unwrap().sqrt();
    t.try_fill_with_distr(rand::distributions::Uniform::new(-bound, bound))
}
