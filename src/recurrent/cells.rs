//! The seven cells: parameters (dfdx `TensorCollection`s, initialised as PyTorch does) and one
//! step each, written with dfdx ops.

use dfdx::nn::modules::{ModuleVisitor, TensorCollection, TensorOptions};
use dfdx::shapes::{Axes2, Axes3, Axis, Const, Dim, Dtype, HasShape, Rank1, Rank2, Rank3};
use dfdx::tensor::{NoneTape, PutTape, SplitTape, Storage, Tape, Tensor, TensorFrom};
use dfdx::tensor_ops::{
    BroadcastTo, Device, GatherTo, PermuteTo, ReshapeTo, SelectTo, TryAdd, TryMatMul, TryMul,
    TrySub,
};

use super::reset_uniform;
use super::RecurrentCell;
use crate::network::Element;
use crate::ops::recurrent_sequence::{cpu_kernel, try_on_cpu, SequenceRun};
use dfdx::tensor::Cpu;

/// The state of the LSTMs: the hidden output `h` and the cell state `C`, each `[B, H]`.
#[derive(Debug, Clone)]
pub struct LstmState<B: Dim, const H: usize, E: Dtype, D: Storage<E>, T = NoneTape> {
    /// The hidden output `h_t`, the step's output.
    pub h: Tensor<(B, Const<H>), E, D, T>,
    /// The cell state `C_t`.
    pub c: Tensor<(B, Const<H>), E, D, T>,
}

/// Declares a cell with `G` gates: the struct, with PyTorch's four parameters, and its
/// `TensorCollection`.
macro_rules! gated_cell {
    ($(#[$doc:meta])* $name:ident, $gates:literal, $order:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name<const I: usize, const H: usize, E: Dtype, D: Storage<E>> {
            #[doc = concat!("Input weights of the gates ", $order, ", `[", $gates, ", H, I]` (PyTorch's `weight_ih_l0`, `[", $gates, "·H, I]`).")]
            pub weight_ih: Tensor<Rank3<$gates, H, I>, E, D>,
            #[doc = concat!("Recurrent weights of the gates ", $order, ", `[", $gates, ", H, H]` (PyTorch's `weight_hh_l0`).")]
            pub weight_hh: Tensor<Rank3<$gates, H, H>, E, D>,
            #[doc = concat!("Input biases of the gates ", $order, ", `[", $gates, ", H]` (PyTorch's `bias_ih_l0`).")]
            pub bias_ih: Tensor<Rank2<$gates, H>, E, D>,
            #[doc = concat!("Recurrent biases of the gates ", $order, ", `[", $gates, ", H]` (PyTorch's `bias_hh_l0`).")]
            pub bias_hh: Tensor<Rank2<$gates, H>, E, D>,
        }

        impl<const I: usize, const H: usize, E: Element, D: Device<E>> TensorCollection<E, D>
            for $name<I, H, E, D>
        {
            type To<E2: Dtype, D2: Device<E2>> = $name<I, H, E2, D2>;

            fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
                visitor: &mut V,
            ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
                visitor.visit_fields(
                    (
                        Self::tensor(
                            "weight_ih",
                            |s| &s.weight_ih,
                            |s| &mut s.weight_ih,
                            TensorOptions::reset_with(reset_uniform::<_, E, D, H>),
                        ),
                        Self::tensor(
                            "weight_hh",
                            |s| &s.weight_hh,
                            |s| &mut s.weight_hh,
                            TensorOptions::reset_with(reset_uniform::<_, E, D, H>),
                        ),
                        Self::tensor(
                            "bias_ih",
                            |s| &s.bias_ih,
                            |s| &mut s.bias_ih,
                            TensorOptions::reset_with(reset_uniform::<_, E, D, H>),
                        ),
                        Self::tensor(
                            "bias_hh",
                            |s| &s.bias_hh,
                            |s| &mut s.bias_hh,
                            TensorOptions::reset_with(reset_uniform::<_, E, D, H>),
                        ),
                    ),
                    |(weight_ih, weight_hh, bias_ih, bias_hh)| $name {
                        weight_ih,
                        weight_hh,
                        bias_ih,
                        bias_hh,
                    },
                )
            }
        }
    };
}

/// The state methods of [`RecurrentCell`] for cells whose state is `h` alone.
macro_rules! hidden_state_methods {
    () => {
        type State<B: Dim, T: Tape<E, D>> = Tensor<(B, Const<H>), E, D, T>;

        fn try_zero_state<B: Dim>(&self, batch: B) -> Result<Self::State<B, NoneTape>, D::Err> {
            self.weight_hh.device().try_zeros_like(&(batch, Const))
        }

        fn hidden<B: Dim, T: Tape<E, D>>(
            state: &Self::State<B, T>,
        ) -> &Tensor<(B, Const<H>), E, D, T> {
            state
        }

        fn into_hidden<B: Dim, T: Tape<E, D>>(
            state: Self::State<B, T>,
        ) -> Tensor<(B, Const<H>), E, D, T> {
            state
        }

        fn split_state_tape<B: Dim, T: Tape<E, D>>(
            state: Self::State<B, T>,
        ) -> (Self::State<B, NoneTape>, T) {
            state.split_tape()
        }

        fn put_state_tape<B: Dim, T: Tape<E, D>>(
            state: Self::State<B, NoneTape>,
            tape: T,
        ) -> Self::State<B, T> {
            state.put_tape(tape)
        }
    };
}

/// The state methods of [`RecurrentCell`] for the LSTMs, whose state is [`LstmState`].
macro_rules! lstm_state_methods {
    () => {
        type State<B: Dim, T: Tape<E, D>> = LstmState<B, H, E, D, T>;

        fn try_zero_state<B: Dim>(&self, batch: B) -> Result<Self::State<B, NoneTape>, D::Err> {
            let dev = self.weight_hh.device();
            Ok(LstmState {
                h: dev.try_zeros_like(&(batch, Const))?,
                c: dev.try_zeros_like(&(batch, Const))?,
            })
        }

        fn hidden<B: Dim, T: Tape<E, D>>(
            state: &Self::State<B, T>,
        ) -> &Tensor<(B, Const<H>), E, D, T> {
            &state.h
        }

        fn into_hidden<B: Dim, T: Tape<E, D>>(
            state: Self::State<B, T>,
        ) -> Tensor<(B, Const<H>), E, D, T> {
            state.h
        }

        fn split_state_tape<B: Dim, T: Tape<E, D>>(
            state: Self::State<B, T>,
        ) -> (Self::State<B, NoneTape>, T) {
            let (h, tape) = state.h.split_tape();
            let (c, c_tape) = state.c.split_tape();
            (LstmState { h, c }, tape.merge(c_tape))
        }

        fn put_state_tape<B: Dim, T: Tape<E, D>>(
            state: Self::State<B, NoneTape>,
            tape: T,
        ) -> Self::State<B, T> {
            LstmState {
                h: state.h.put_tape(tape),
                c: state.c.put_tape(T::default()),
            }
        }
    };
}

/// `x·Wᵀ + b` for `N` consecutive gates from gate `first` of a `[G, H, K]` weight and a `[G, H]`
/// bias: the `N` gates' pre-activations, each `[B, H]`. One matmul for all `N` gates; the tape of
/// `x` goes to the first gate, the others carry empty tapes that merge when they meet again.
fn project<const N: usize, B: Dim, const G: usize, const H: usize, const K: usize, E, D, T>(
    x: Tensor<(B, Const<K>), E, D, T>,
    weight: &Tensor<Rank3<G, H, K>, E, D>,
    bias: &Tensor<Rank2<G, H>, E, D>,
    first: usize,
) -> Result<[Tensor<(B, Const<H>), E, D, T>; N], D::Err>
where
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
{
    assert!(first + N <= G, "gates {first}..{} of {G}", first + N);
    let batch = x.shape().0;
    // [G, H, K] is [G·H, K] in memory: reshaping a contiguous parameter costs nothing. Fewer
    // gates are gathered (not sliced: dfdx 0.13's slice backward overwrites the gradient
    // instead of adding to it, which loses the other steps' contributions).
    let (w, b) = if N == G {
        (
            weight
                .retaped::<T>()
                .try_reshape_like(&(G * H, Const::<K>))?,
            bias.retaped::<T>().try_reshape_like(&(G * H,))?,
        )
    } else {
        let device = weight.device();
        let gates: Vec<usize> = (first..first + N).collect();
        let w = weight
            .retaped::<T>()
            .try_gather(device.try_tensor_from_vec(gates.clone(), (N,))?)?;
        let b = bias
            .retaped::<T>()
            .try_gather(device.try_tensor_from_vec(gates, (N,))?)?;
        (
            w.try_reshape_like(&(N * H, Const::<K>))?,
            b.try_reshape_like(&(N * H,))?,
        )
    };
    let y = x.try_matmul(w.try_permute::<_, Axes2<1, 0>>()?)?;
    let b = b.try_broadcast_like::<_, Axis<0>>(&(batch, N * H))?;
    // [B, N·H] → [B, N, H] → [N, B, H]; then gate n is a select on the first axis.
    let y = y
        .try_add(b)?
        .try_reshape_like(&(batch, N, Const::<H>))?
        .try_permute::<_, Axes3<1, 0, 2>>()?;
    let (y, tape) = y.split_tape();
    let mut tape = Some(tape);
    let mut gates = Vec::with_capacity(N);
    for n in 0..N {
        let index = y.device().try_tensor(n)?;
        let taped = y.clone().put_tape(tape.take().unwrap_or_default());
        gates.push(taped.try_select(index)?);
    }
    Ok(gates
        .try_into()
        .unwrap_or_else(|_| unreachable!("N gates were made")))
}

/// Row `row` of a `[R, H]` parameter broadcast to `[B, H]`, on an empty tape of kind `T`.
fn row<B: Dim, const R: usize, const H: usize, E, D, T>(
    parameter: &Tensor<Rank2<R, H>, E, D>,
    row: usize,
    batch: B,
) -> Result<Tensor<(B, Const<H>), E, D, T>, D::Err>
where
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
{
    let index = parameter.device().try_tensor(row)?;
    parameter
        .retaped::<T>()
        .try_select::<Rank1<H>, _>(index)?
        .try_broadcast_like::<_, Axis<0>>(&(batch, Const::<H>))
}

/// Gate `gate` of a `[G, H, K]` weight as `[H, K]` and of a `[G, H]` bias as `[H]`, then
/// `v·W_gateᵀ + b_gate` for `v` (`[B, K]`).
fn project_one<B: Dim, const G: usize, const H: usize, const K: usize, E, D, T>(
    v: Tensor<(B, Const<K>), E, D, T>,
    weight: &Tensor<Rank3<G, H, K>, E, D>,
    bias: &Tensor<Rank2<G, H>, E, D>,
    gate: usize,
) -> Result<Tensor<(B, Const<H>), E, D, T>, D::Err>
where
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
{
    let batch = v.shape().0;
    let index = weight.device().try_tensor(gate)?;
    let w = weight.retaped::<T>().try_select::<Rank2<H, K>, _>(index)?;
    v.try_matmul(w.try_permute::<_, Axes2<1, 0>>()?)?
        .try_add(row::<B, G, H, E, D, T>(bias, gate, batch)?)
}

/// `h + z ∗ (h̃ − h)`, which is `(1 − z) ∗ h + z ∗ h̃`.
fn interpolate<S: dfdx::shapes::Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    h: Tensor<S, E, D, T>,
    z: Tensor<S, E, D, T>,
    candidate: Tensor<S, E, D, T>,
) -> Result<Tensor<S, E, D, T>, D::Err> {
    let difference = candidate.try_sub(h.retaped::<T>())?;
    h.try_add(z.try_mul(difference)?)
}

/// The Elman network's recurrent layer: `h_t = tanh(W_ih·x_t + b_ih + W_hh·h_{t−1} + b_hh)`.
///
/// The lecture notes' output `y_t = ψ(W₃·h_t + b′)` is a linear layer (and activation) applied
/// to the outputs of [`try_run_sequence`](super::try_run_sequence) afterwards.
///
/// # Shapes
/// `x_t` `[B, I]`, state `h` `[B, H]`; parameters: `H·I + H·H + 2H`.
///
/// PyTorch: `nn.RNN(I, H)` (tanh), with the same parameter names and shapes; initialised the
/// same way (uniform in `±1/√H`).
#[derive(Debug, Clone)]
pub struct ElmanCell<const I: usize, const H: usize, E: Dtype, D: Storage<E>> {
    /// Input weights `W_ih`, `[H, I]`.
    pub weight_ih: Tensor<Rank2<H, I>, E, D>,
    /// Recurrent weights `W_hh`, `[H, H]`.
    pub weight_hh: Tensor<Rank2<H, H>, E, D>,
    /// Input bias `b_ih`, `[H]`.
    pub bias_ih: Tensor<Rank1<H>, E, D>,
    /// Recurrent bias `b_hh`, `[H]`.
    pub bias_hh: Tensor<Rank1<H>, E, D>,
}

impl<const I: usize, const H: usize, E: Element, D: Device<E>> TensorCollection<E, D>
    for ElmanCell<I, H, E, D>
{
    type To<E2: Dtype, D2: Device<E2>> = ElmanCell<I, H, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::tensor(
                    "weight_ih",
                    |s| &s.weight_ih,
                    |s| &mut s.weight_ih,
                    TensorOptions::reset_with(reset_uniform::<_, E, D, H>),
                ),
                Self::tensor(
                    "weight_hh",
                    |s| &s.weight_hh,
                    |s| &mut s.weight_hh,
                    TensorOptions::reset_with(reset_uniform::<_, E, D, H>),
                ),
                Self::tensor(
                    "bias_ih",
                    |s| &s.bias_ih,
                    |s| &mut s.bias_ih,
                    TensorOptions::reset_with(reset_uniform::<_, E, D, H>),
                ),
                Self::tensor(
                    "bias_hh",
                    |s| &s.bias_hh,
                    |s| &mut s.bias_hh,
                    TensorOptions::reset_with(reset_uniform::<_, E, D, H>),
                ),
            ),
            |(weight_ih, weight_hh, bias_ih, bias_hh)| ElmanCell {
                weight_ih,
                weight_hh,
                bias_ih,
                bias_hh,
            },
        )
    }
}

impl<const I: usize, const H: usize, E: Element, D: Device<E>> RecurrentCell<I, H, E, D>
    for ElmanCell<I, H, E, D>
{
    hidden_state_methods!();

    fn try_step<B: Dim, T: Tape<E, D>>(
        &self,
        x: Tensor<(B, Const<I>), E, D, T>,
        h: Self::State<B, T>,
    ) -> Result<Self::State<B, T>, D::Err> {
        let batch = x.shape().0;
        let linear = |v: Tensor<(B, Const<H>), E, D, T>, b: &Tensor<Rank1<H>, E, D>| {
            v.try_add(
                b.retaped::<T>()
                    .try_broadcast_like::<_, Axis<0>>(&(batch, Const::<H>))?,
            )
        };
        let xw = x.try_matmul(
            self.weight_ih
                .retaped::<T>()
                .try_permute::<_, Axes2<1, 0>>()?,
        )?;
        let hw = h.try_matmul(
            self.weight_hh
                .retaped::<T>()
                .try_permute::<_, Axes2<1, 0>>()?,
        )?;
        linear(xw, &self.bias_ih)?
            .try_add(linear(hw, &self.bias_hh)?)?
            .try_tanh()
    }
}

gated_cell! {
    /// The LSTM without a forget gate, as Hochreiter & Schmidhuber (1997) introduced it:
    ///
    /// `i_t = σ(W_i·x_t + U_i·h_{t−1} + b_i)`, `C̃_t = tanh(W_C·x_t + U_C·h_{t−1} + b_C)`,
    /// `o_t = σ(W_o·x_t + U_o·h_{t−1} + b_o)`; `C_t = C_{t−1} + i_t ∗ C̃_t`,
    /// `h_t = o_t ∗ tanh(C_t)` (each `W·x + U·h + b` is `W_ih·x + b_ih + W_hh·h + b_hh` of the
    /// gate's rows).
    ///
    /// # Shapes
    /// `x_t` `[B, I]`, state [`LstmState`] (`h`, `C`, each `[B, H]`); parameters:
    /// `3·(H·I + H·H + 2H)`.
    ///
    /// No PyTorch equivalent; reference in `tools/reference_recurrent.py`. Parameters laid out
    /// as `nn.LSTM`'s without the forget gate's rows (gates i, C̃, o).
    LstmNoForgetCell, 3, "i, C̃, o"
}

impl<const I: usize, const H: usize, E: Element, D: Device<E>> RecurrentCell<I, H, E, D>
    for LstmNoForgetCell<I, H, E, D>
{
    lstm_state_methods!();

    fn try_step<B: Dim, T: Tape<E, D>>(
        &self,
        x: Tensor<(B, Const<I>), E, D, T>,
        state: Self::State<B, T>,
    ) -> Result<Self::State<B, T>, D::Err> {
        let LstmState { h, c } = state;
        let [xi, xg, xo] = project::<3, _, 3, H, I, E, D, T>(x, &self.weight_ih, &self.bias_ih, 0)?;
        let [hi, hg, ho] = project::<3, _, 3, H, H, E, D, T>(h, &self.weight_hh, &self.bias_hh, 0)?;
        let i = xi.try_add(hi)?.try_sigmoid()?;
        let g = xg.try_add(hg)?.try_tanh()?;
        let o = xo.try_add(ho)?.try_sigmoid()?;
        let c = c.try_add(i.try_mul(g)?)?;
        let h = o.try_mul(c.retaped::<T>().try_tanh()?)?;
        Ok(LstmState { h, c })
    }
}

gated_cell! {
    /// The LSTM with a forget gate, PyTorch's `nn.LSTM`:
    ///
    /// `i_t = σ(W_ii·x_t + b_ii + W_hi·h_{t−1} + b_hi)`, `f_t`, `o_t` likewise with σ,
    /// `g_t = tanh(W_ig·x_t + b_ig + W_hg·h_{t−1} + b_hg)`; `C_t = f_t ∗ C_{t−1} + i_t ∗ g_t`,
    /// `h_t = o_t ∗ tanh(C_t)`.
    ///
    /// # Shapes
    /// `x_t` `[B, I]`, state [`LstmState`] (`h`, `C`, each `[B, H]`); parameters:
    /// `4·(H·I + H·H + 2H)`.
    ///
    /// PyTorch: `nn.LSTM(I, H)`, gates in its order i, f, g, o; its weights load unchanged.
    ///
    /// # How it runs
    /// [`try_step`](RecurrentCell::try_step) is the step in dfdx ops. The runners
    /// ([`try_run_sequence`](super::try_run_sequence) and the others), started from the zero
    /// state on `Cpu`, run the whole sequence as one fused op instead
    /// ([`crate::ops::recurrent_sequence`]), as `nn.LSTM` does; elsewhere they unroll the step.
    LstmCell, 4, "i, f, g, o"
}

impl<const I: usize, const H: usize, E: Element, D: Device<E>> RecurrentCell<I, H, E, D>
    for LstmCell<I, H, E, D>
{
    lstm_state_methods!();

    /// On `Cpu` (`f32` and `f64`) the fused whole-sequence kernel
    /// ([`crate::ops::recurrent_sequence`]); elsewhere `x` is handed back to be unrolled.
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
        macro_rules! on_cpu {
            ($x:expr, $float:ty) => {{
                type F = $float;
                try_on_cpu::<
                    Self,
                    LstmCell<I, H, F, Cpu>,
                    _,
                    LstmState<B, H, F, Cpu>,
                    B,
                    S,
                    I,
                    H,
                    E,
                    D,
                    T,
                    F,
                >(self, $x, reverse, collect, |cell, x, reverse, collect| {
                    cpu_kernel::try_lstm_sequence(cell, x, reverse, collect)
                })?
            }};
        }
        match on_cpu!(x, f32) {
            Ok(run) => Ok(Ok(run)),
            Err(x) => Ok(on_cpu!(x, f64)),
        }
    }

    fn try_step<B: Dim, T: Tape<E, D>>(
        &self,
        x: Tensor<(B, Const<I>), E, D, T>,
        state: Self::State<B, T>,
    ) -> Result<Self::State<B, T>, D::Err> {
        let LstmState { h, c } = state;
        let [xi, xf, xg, xo] =
            project::<4, _, 4, H, I, E, D, T>(x, &self.weight_ih, &self.bias_ih, 0)?;
        let [hi, hf, hg, ho] =
            project::<4, _, 4, H, H, E, D, T>(h, &self.weight_hh, &self.bias_hh, 0)?;
        let i = xi.try_add(hi)?.try_sigmoid()?;
        let f = xf.try_add(hf)?.try_sigmoid()?;
        let g = xg.try_add(hg)?.try_tanh()?;
        let o = xo.try_add(ho)?.try_sigmoid()?;
        let c = f.try_mul(c)?.try_add(i.try_mul(g)?)?;
        let h = o.try_mul(c.retaped::<T>().try_tanh()?)?;
        Ok(LstmState { h, c })
    }
}

/// The peephole LSTM of Gers & Schmidhuber (2000): [`LstmCell`] whose gates also look at the
/// cell state through diagonal (element-wise) weights — the input and forget gates at
/// `C_{t−1}`, the output gate at the new `C_t`:
///
/// `i_t = σ(W_ii·x_t + b_ii + W_hi·h_{t−1} + b_hi + p_i ∗ C_{t−1})`,
/// `f_t = σ(W_if·x_t + b_if + W_hf·h_{t−1} + b_hf + p_f ∗ C_{t−1})`,
/// `g_t = tanh(W_ig·x_t + b_ig + W_hg·h_{t−1} + b_hg)`, `C_t = f_t ∗ C_{t−1} + i_t ∗ g_t`,
/// `o_t = σ(W_io·x_t + b_io + W_ho·h_{t−1} + b_ho + p_o ∗ C_t)`, `h_t = o_t ∗ tanh(C_t)`.
///
/// The peephole weights are one `[3, H]` tensor, rows `p_i`, `p_f`, `p_o` (a diagonal matrix
/// stored as its diagonal, so `3H` parameters rather than `3H²`).
///
/// # Shapes
/// `x_t` `[B, I]`, state [`LstmState`]; parameters: `4·(H·I + H·H + 2H) + 3H`.
///
/// No PyTorch equivalent; reference in `tools/reference_recurrent.py`. The other parameters
/// are laid out as `nn.LSTM`'s.
#[derive(Debug, Clone)]
pub struct PeepholeLstmCell<const I: usize, const H: usize, E: Dtype, D: Storage<E>> {
    /// Input weights of the gates i, f, g, o, `[4, H, I]` (as `nn.LSTM`'s `weight_ih_l0`).
    pub weight_ih: Tensor<Rank3<4, H, I>, E, D>,
    /// Recurrent weights of the gates i, f, g, o, `[4, H, H]`.
    pub weight_hh: Tensor<Rank3<4, H, H>, E, D>,
    /// Input biases of the gates i, f, g, o, `[4, H]`.
    pub bias_ih: Tensor<Rank2<4, H>, E, D>,
    /// Recurrent biases of the gates i, f, g, o, `[4, H]`.
    pub bias_hh: Tensor<Rank2<4, H>, E, D>,
    /// Peephole weights `p_i`, `p_f`, `p_o`, `[3, H]` (diagonals).
    pub weight_peephole: Tensor<Rank2<3, H>, E, D>,
}

impl<const I: usize, const H: usize, E: Element, D: Device<E>> TensorCollection<E, D>
    for PeepholeLstmCell<I, H, E, D>
{
    type To<E2: Dtype, D2: Device<E2>> = PeepholeLstmCell<I, H, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::tensor(
                    "weight_ih",
                    |s| &s.weight_ih,
                    |s| &mut s.weight_ih,
                    TensorOptions::reset_with(reset_uniform::<_, E, D, H>),
                ),
                Self::tensor(
                    "weight_hh",
                    |s| &s.weight_hh,
                    |s| &mut s.weight_hh,
                    TensorOptions::reset_with(reset_uniform::<_, E, D, H>),
                ),
                Self::tensor(
                    "bias_ih",
                    |s| &s.bias_ih,
                    |s| &mut s.bias_ih,
                    TensorOptions::reset_with(reset_uniform::<_, E, D, H>),
                ),
                Self::tensor(
                    "bias_hh",
                    |s| &s.bias_hh,
                    |s| &mut s.bias_hh,
                    TensorOptions::reset_with(reset_uniform::<_, E, D, H>),
                ),
                Self::tensor(
                    "weight_peephole",
                    |s| &s.weight_peephole,
                    |s| &mut s.weight_peephole,
                    TensorOptions::reset_with(reset_uniform::<_, E, D, H>),
                ),
            ),
            |(weight_ih, weight_hh, bias_ih, bias_hh, weight_peephole)| PeepholeLstmCell {
                weight_ih,
                weight_hh,
                bias_ih,
                bias_hh,
                weight_peephole,
            },
        )
    }
}

impl<const I: usize, const H: usize, E: Element, D: Device<E>> RecurrentCell<I, H, E, D>
    for PeepholeLstmCell<I, H, E, D>
{
    lstm_state_methods!();

    fn try_step<B: Dim, T: Tape<E, D>>(
        &self,
        x: Tensor<(B, Const<I>), E, D, T>,
        state: Self::State<B, T>,
    ) -> Result<Self::State<B, T>, D::Err> {
        let batch = x.shape().0;
        let LstmState { h, c } = state;
        let peep = |r: usize| row::<B, 3, H, E, D, T>(&self.weight_peephole, r, batch);
        let [xi, xf, xg, xo] =
            project::<4, _, 4, H, I, E, D, T>(x, &self.weight_ih, &self.bias_ih, 0)?;
        let [hi, hf, hg, ho] =
            project::<4, _, 4, H, H, E, D, T>(h, &self.weight_hh, &self.bias_hh, 0)?;
        let i = xi
            .try_add(hi)?
            .try_add(peep(0)?.try_mul(c.retaped::<T>())?)?
            .try_sigmoid()?;
        let f = xf
            .try_add(hf)?
            .try_add(peep(1)?.try_mul(c.retaped::<T>())?)?
            .try_sigmoid()?;
        let g = xg.try_add(hg)?.try_tanh()?;
        let c = f.try_mul(c)?.try_add(i.try_mul(g)?)?;
        let o = xo
            .try_add(ho)?
            .try_add(peep(2)?.try_mul(c.retaped::<T>())?)?
            .try_sigmoid()?;
        let h = o.try_mul(c.retaped::<T>().try_tanh()?)?;
        Ok(LstmState { h, c })
    }
}

gated_cell! {
    /// The GRU as the lecture notes write it (Cho et al. 2014):
    ///
    /// `r_t = σ(W_r·x_t + U_r·h_{t−1} + b_r)`, `z_t = σ(W_z·x_t + U_z·h_{t−1} + b_z)`,
    /// `h̃_t = tanh(W·x_t + U·(r_t ∗ h_{t−1}) + b)`, `h_t = (1 − z_t) ∗ h_{t−1} + z_t ∗ h̃_t`.
    ///
    /// Each gate's `W·x + b` is `W_ih·x + b_ih` of its rows and `U·v` is `W_hh·v + b_hh`, so
    /// the bias `b` is split in two as in PyTorch (a redundant pair, kept so the parameters,
    /// and their count, match `nn.GRU`'s).
    ///
    /// Two differences from [`TorchGruCell`]: the reset gate multiplies `h_{t−1}` *before* the
    /// recurrent weights `U` (PyTorch multiplies `W_hn·h_{t−1} + b_hn`), and `z_t` weighs the
    /// candidate (PyTorch's `z` weighs the old state).
    ///
    /// # Shapes
    /// `x_t` `[B, I]`, state `h` `[B, H]`; parameters: `3·(H·I + H·H + 2H)`.
    ///
    /// No PyTorch equivalent; reference in `tools/reference_recurrent.py`. Parameters laid out
    /// as `nn.GRU`'s (gates r, z, then the candidate).
    GruCell, 3, "r, z, h̃"
}

impl<const I: usize, const H: usize, E: Element, D: Device<E>> RecurrentCell<I, H, E, D>
    for GruCell<I, H, E, D>
{
    hidden_state_methods!();

    fn try_step<B: Dim, T: Tape<E, D>>(
        &self,
        x: Tensor<(B, Const<I>), E, D, T>,
        h: Self::State<B, T>,
    ) -> Result<Self::State<B, T>, D::Err> {
        let [xr, xz, xn] = project::<3, _, 3, H, I, E, D, T>(x, &self.weight_ih, &self.bias_ih, 0)?;
        let [hr, hz] =
            project::<2, _, 3, H, H, E, D, T>(h.retaped::<T>(), &self.weight_hh, &self.bias_hh, 0)?;
        let r = xr.try_add(hr)?.try_sigmoid()?;
        let z = xz.try_add(hz)?.try_sigmoid()?;
        let reset = r.try_mul(h.retaped::<T>())?;
        let candidate = xn
            .try_add(project_one(reset, &self.weight_hh, &self.bias_hh, 2)?)?
            .try_tanh()?;
        interpolate(h, z, candidate)
    }
}

gated_cell! {
    /// The GRU as PyTorch's `nn.GRU` computes it:
    ///
    /// `r_t = σ(W_ir·x_t + b_ir + W_hr·h_{t−1} + b_hr)`, `z_t` likewise,
    /// `n_t = tanh(W_in·x_t + b_in + r_t ∗ (W_hn·h_{t−1} + b_hn))`,
    /// `h_t = (1 − z_t) ∗ n_t + z_t ∗ h_{t−1}`.
    ///
    /// # Shapes
    /// `x_t` `[B, I]`, state `h` `[B, H]`; parameters: `3·(H·I + H·H + 2H)`.
    ///
    /// PyTorch: `nn.GRU(I, H)`, gates in its order r, z, n; its weights load unchanged. See
    /// [`GruCell`] for the lecture notes' variant.
    ///
    /// # How it runs
    /// As [`LstmCell`]: one fused op per sequence on `Cpu` from the zero state
    /// ([`crate::ops::recurrent_sequence`]), the step in dfdx ops unrolled otherwise.
    TorchGruCell, 3, "r, z, n"
}

impl<const I: usize, const H: usize, E: Element, D: Device<E>> RecurrentCell<I, H, E, D>
    for TorchGruCell<I, H, E, D>
{
    hidden_state_methods!();

    /// On `Cpu` (`f32` and `f64`) the fused whole-sequence kernel
    /// ([`crate::ops::recurrent_sequence`]); elsewhere `x` is handed back to be unrolled.
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
        macro_rules! on_cpu {
            ($x:expr, $float:ty) => {{
                type F = $float;
                try_on_cpu::<
                    Self,
                    TorchGruCell<I, H, F, Cpu>,
                    _,
                    Tensor<(B, Const<H>), F, Cpu>,
                    B,
                    S,
                    I,
                    H,
                    E,
                    D,
                    T,
                    F,
                >(self, $x, reverse, collect, |cell, x, reverse, collect| {
                    cpu_kernel::try_gru_sequence(cell, x, reverse, collect)
                })?
            }};
        }
        match on_cpu!(x, f32) {
            Ok(run) => Ok(Ok(run)),
            Err(x) => Ok(on_cpu!(x, f64)),
        }
    }

    fn try_step<B: Dim, T: Tape<E, D>>(
        &self,
        x: Tensor<(B, Const<I>), E, D, T>,
        h: Self::State<B, T>,
    ) -> Result<Self::State<B, T>, D::Err> {
        let [xr, xz, xn] = project::<3, _, 3, H, I, E, D, T>(x, &self.weight_ih, &self.bias_ih, 0)?;
        let [hr, hz, hn] =
            project::<3, _, 3, H, H, E, D, T>(h.retaped::<T>(), &self.weight_hh, &self.bias_hh, 0)?;
        let r = xr.try_add(hr)?.try_sigmoid()?;
        let z = xz.try_add(hz)?.try_sigmoid()?;
        let n = xn.try_add(r.try_mul(hn)?)?.try_tanh()?;
        // (1 − z) ∗ n + z ∗ h = n + z ∗ (h − n)
        interpolate(n, z, h)
    }
}

gated_cell! {
    /// The minimal gated unit of Zhou et al. (2016), a GRU with one gate:
    ///
    /// `f_t = σ(W_f·x_t + U_f·h_{t−1} + b_f)`, `h̃_t = tanh(W·x_t + U·(f_t ∗ h_{t−1}) + b)`,
    /// `h_t = (1 − f_t) ∗ h_{t−1} + f_t ∗ h̃_t`
    /// (each `W·x + b` is `W_ih·x + b_ih` of the gate's rows, `U·v` is `W_hh·v + b_hh`).
    ///
    /// # Shapes
    /// `x_t` `[B, I]`, state `h` `[B, H]`; parameters: `2·(H·I + H·H + 2H)`.
    ///
    /// No PyTorch equivalent; reference in `tools/reference_recurrent.py`. Parameters laid out
    /// as `nn.GRU`'s with two gates (f, then the candidate).
    MguCell, 2, "f, h̃"
}

impl<const I: usize, const H: usize, E: Element, D: Device<E>> RecurrentCell<I, H, E, D>
    for MguCell<I, H, E, D>
{
    hidden_state_methods!();

    fn try_step<B: Dim, T: Tape<E, D>>(
        &self,
        x: Tensor<(B, Const<I>), E, D, T>,
        h: Self::State<B, T>,
    ) -> Result<Self::State<B, T>, D::Err> {
        let [xf, xn] = project::<2, _, 2, H, I, E, D, T>(x, &self.weight_ih, &self.bias_ih, 0)?;
        let [hf] =
            project::<1, _, 2, H, H, E, D, T>(h.retaped::<T>(), &self.weight_hh, &self.bias_hh, 0)?;
        let f = xf.try_add(hf)?.try_sigmoid()?;
        let forget = f.retaped::<T>().try_mul(h.retaped::<T>())?;
        let candidate = xn
            .try_add(project_one(forget, &self.weight_hh, &self.bias_hh, 1)?)?
            .try_tanh()?;
        interpolate(h, f, candidate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDevice;
    use dfdx::nn::{BuildModule, NumParams};

    #[test]
    fn counts_parameters_like_pytorch() {
        let dev = crate::test_device!();
        // nn.RNN(3, 5), nn.LSTM(3, 5), nn.GRU(3, 5).
        let per_gate = 5 * 3 + 5 * 5 + 2 * 5;
        assert_eq!(
            ElmanCell::<3, 5, f32, TestDevice>::build(&dev).num_trainable_params(),
            per_gate
        );
        assert_eq!(
            LstmCell::<3, 5, f32, TestDevice>::build(&dev).num_trainable_params(),
            4 * per_gate
        );
        assert_eq!(
            TorchGruCell::<3, 5, f32, TestDevice>::build(&dev).num_trainable_params(),
            3 * per_gate
        );
        assert_eq!(
            GruCell::<3, 5, f32, TestDevice>::build(&dev).num_trainable_params(),
            3 * per_gate
        );
        assert_eq!(
            LstmNoForgetCell::<3, 5, f32, TestDevice>::build(&dev).num_trainable_params(),
            3 * per_gate
        );
        assert_eq!(
            MguCell::<3, 5, f32, TestDevice>::build(&dev).num_trainable_params(),
            2 * per_gate
        );
        assert_eq!(
            PeepholeLstmCell::<3, 5, f32, TestDevice>::build(&dev).num_trainable_params(),
            4 * per_gate + 3 * 5
        );
    }

    #[test]
    fn initialises_within_the_pytorch_bound() {
        let dev = crate::test_device!();
        let cell = LstmCell::<3, 16, f32, TestDevice>::build(&dev);
        let bound = 1.0 / 4.0;
        for values in [
            cell.weight_ih.as_vec(),
            cell.weight_hh.as_vec(),
            cell.bias_hh.as_vec(),
        ] {
            assert!(values.iter().all(|w| w.abs() <= bound));
            assert!(values.iter().any(|w| (w - values[0]).abs() > 1e-6));
        }
    }
}
