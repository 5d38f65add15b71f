//! Runners that unroll a [`RecurrentCell`] over a sequence: one direction, the last state only,
//! stacked layers, and both directions.

use dfdx::shapes::{Axes3, Axis, Const, Dim, Dtype, HasShape};
use dfdx::tensor::{NoneTape, PutTape, SplitTape, Tape, Tensor, TensorFrom};
use dfdx::tensor_ops::{
    Device, PermuteTo, RealizeTo, ReshapeTo, SelectTo, TryConcatAlong, TryStack,
};

use dfdx::nn::modules::{ModuleVisitor, TensorCollection};

use super::RecurrentCell;
use crate::ops::recurrent_sequence::SequenceRun;

/// Runs `cell` over the time steps of `x` (forwards, or backwards when `reverse`), moving one
/// tape through the steps: the cell's own step unrolled by dfdx ops. The outputs (when
/// `collect`) are stacked into `[B, S, H]` in time order; they and the last state carry empty
/// tapes and share their ids with the computation, so every operation is recorded once, on the
/// returned tape.
pub(crate) fn unroll<C, const I: usize, const H: usize, B: Dim, S: Dim, E, D, T>(
    cell: &C,
    x: Tensor<(B, S, Const<I>), E, D, T>,
    initial_state: Option<C::State<B, T>>,
    reverse: bool,
    collect: bool,
) -> Result<SequenceRun<B, S, H, E, D, C::State<B, NoneTape>, T>, D::Err>
where
    C: RecurrentCell<I, H, E, D>,
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
{
    let (batch, seq, _) = *x.shape();
    let device = x.device().clone();
    let steps = seq.size();
    // [B, S, I] → [S, B, I] (strides only), so that x_t is a select on the first axis.
    let (xs, mut tape) = x.try_permute::<_, Axes3<1, 0, 2>>()?.split_tape();
    let mut state = match initial_state {
        Some(state) => {
            let (state, state_tape) = C::split_state_tape(state);
            tape = tape.merge(state_tape);
            state
        }
        None => cell.try_zero_state(batch)?,
    };
    let mut outputs = Vec::with_capacity(if collect { steps } else { 0 });
    for step in 0..steps {
        let t = if reverse { steps - 1 - step } else { step };
        let x_t = xs
            .clone()
            .put_tape(tape)
            .try_select(xs.device().try_tensor(t)?)?;
        let next = cell.try_step(x_t, C::put_state_tape(state, T::default()))?;
        let (next, next_tape) = C::split_state_tape(next);
        tape = next_tape;
        if collect {
            outputs.push(C::hidden(&next).retaped::<T>());
        }
        state = next;
    }
    if reverse {
        outputs.reverse();
    }
    let outputs = if collect {
        let (stacked, stack_tape) =
            stack_outputs(outputs, (batch, seq), T::default(), &device)?.split_tape();
        tape = tape.merge(stack_tape);
        Some(stacked)
    } else {
        None
    };
    Ok(SequenceRun {
        outputs,
        last: state,
        tape,
    })
}

/// Runs `cell` over `x`: through the cell's whole-sequence kernel where it has one and starts
/// from the zero state ([`RecurrentCell::try_run_fused`]), else unrolled step by step.
fn run<C, const I: usize, const H: usize, B: Dim, S: Dim, E, D, T>(
    cell: &C,
    x: Tensor<(B, S, Const<I>), E, D, T>,
    initial_state: Option<C::State<B, T>>,
    reverse: bool,
    collect: bool,
) -> Result<SequenceRun<B, S, H, E, D, C::State<B, NoneTape>, T>, D::Err>
where
    C: RecurrentCell<I, H, E, D>,
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
{
    let x = match initial_state {
        Some(state) => return unroll(cell, x, Some(state), reverse, collect),
        None => match cell.try_run_fused(x, reverse, collect)? {
            Ok(run) => return Ok(run),
            Err(x) => x,
        },
    };
    unroll(cell, x, None, reverse, collect)
}

/// The collected outputs of a run with `tape` on them.
fn taped_outputs<B: Dim, S: Dim, const H: usize, E, D, State, T>(
    run: SequenceRun<B, S, H, E, D, State, T>,
) -> (Tensor<(B, S, Const<H>), E, D, T>, State)
where
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
{
    let outputs = run
        .outputs
        .unwrap_or_else(|| unreachable!("the outputs were collected"));
    (outputs.put_tape(run.tape), run.last)
}

/// Stacks the outputs of a run into `[B, S, H]`, on `tape` merged with theirs.
fn stack_outputs<B: Dim, S: Dim, const H: usize, E, D, T>(
    outputs: Vec<Tensor<(B, Const<H>), E, D, T>>,
    shape: (B, S),
    tape: T,
    device: &D,
) -> Result<Tensor<(B, S, Const<H>), E, D, T>, D::Err>
where
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
{
    let (batch, seq) = shape;
    if outputs.is_empty() {
        return Ok(device.try_zeros_like(&(batch, seq, Const))?.put_tape(tape));
    }
    // [S, B, H] (stacked on a new first axis) → [B, S, H], copied to be contiguous.
    let (stacked, stack_tape) = outputs.try_stack()?.split_tape();
    stacked
        .put_tape(tape.merge(stack_tape))
        .try_permute::<_, Axes3<1, 0, 2>>()?
        .try_reshape_like(&(batch, seq, Const::<H>))
}

/// Runs `cell` over a sequence: every hidden output and the last state.
///
/// `x` is `[B, S, I]` with `S` a `Const` or a run-time `usize`; the result is `h_t` for every
/// step, `[B, S, H]`, and the state after the last step. `initial_state` defaults to zeros
/// (PyTorch's default); given, its gradient is computed along with the rest.
///
/// The gradient tape goes to the outputs; the last state shares its tensors' ids with the
/// computation on an empty tape, so a loss that uses the outputs, or the outputs and the last
/// state, backpropagates through every step. For a loss on the last state alone use
/// [`try_run_last`].
///
/// PyTorch: `nn.RNN` / `nn.LSTM` / `nn.GRU` with `batch_first=True` return the same
/// `(output, h_n)` (`(output, (h_n, c_n))`), without the layer axis of `h_n`.
pub fn try_run_sequence<C, const I: usize, const H: usize, B: Dim, S: Dim, E, D, T>(
    cell: &C,
    x: Tensor<(B, S, Const<I>), E, D, T>,
    initial_state: Option<C::State<B, T>>,
) -> Result<(Tensor<(B, S, Const<H>), E, D, T>, C::State<B, T>), D::Err>
where
    C: RecurrentCell<I, H, E, D>,
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
{
    let (outputs, last) = taped_outputs(run(cell, x, initial_state, false, true)?);
    Ok((outputs, C::put_state_tape(last, T::default())))
}

/// Runs `cell` over a sequence and returns only the last state, which carries the gradient
/// tape: for a loss on the final state (a sequence classifier, an encoder that starts a
/// decoder). Cheaper than [`try_run_sequence`], which also gathers every output.
pub fn try_run_last<C, const I: usize, const H: usize, B: Dim, S: Dim, E, D, T>(
    cell: &C,
    x: Tensor<(B, S, Const<I>), E, D, T>,
    initial_state: Option<C::State<B, T>>,
) -> Result<C::State<B, T>, D::Err>
where
    C: RecurrentCell<I, H, E, D>,
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
{
    let result = run(cell, x, initial_state, false, false)?;
    Ok(C::put_state_tape(result.last, result.tape))
}

/// Runs `cell` over a sequence from the zero state and returns the last hidden output `h_T`
/// (`[B, H]`) with the gradient tape: the `output = last` of the `network!` recurrent layers,
/// PyTorch's `h_n[-1]` of a one-layer `nn.RNN`/`nn.LSTM`/`nn.GRU`.
pub fn try_run_last_hidden<C, const I: usize, const H: usize, B: Dim, S: Dim, E, D, T>(
    cell: &C,
    x: Tensor<(B, S, Const<I>), E, D, T>,
) -> Result<Tensor<(B, Const<H>), E, D, T>, D::Err>
where
    C: RecurrentCell<I, H, E, D>,
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
{
    Ok(C::into_hidden(try_run_last(cell, x, None)?))
}

/// Runs stacked layers: `first` reads `x`, each cell of `rest` reads the outputs of the layer
/// below. Returns the top layer's outputs (`[B, S, H]`, with the tape) and every layer's last
/// state, bottom first (on empty tapes, as [`try_run_sequence`]'s).
///
/// `initial_states`, if given, has one state per layer, bottom first.
///
/// # Panics
/// If `initial_states` does not have `1 + rest.len()` states.
///
/// PyTorch: `nn.LSTM(I, H, num_layers=1 + rest.len())` and the like; its `weight_ih_l0` is
/// `first`'s, `weight_ih_l1` `rest[0]`'s, and so on.
pub fn try_run_stacked<C0, C, const I: usize, const H: usize, B: Dim, S: Dim, E, D, T>(
    first: &C0,
    rest: &[C],
    x: Tensor<(B, S, Const<I>), E, D, T>,
    initial_states: Option<Vec<C::State<B, T>>>,
) -> Result<(Tensor<(B, S, Const<H>), E, D, T>, Vec<C::State<B, T>>), D::Err>
where
    C0: RecurrentCell<I, H, E, D, State<B, T> = C::State<B, T>>
        + RecurrentCell<I, H, E, D, State<B, NoneTape> = C::State<B, NoneTape>>,
    C: RecurrentCell<H, H, E, D>,
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
{
    let layers = 1 + rest.len();
    let mut initial: Vec<Option<C::State<B, T>>> = match initial_states {
        Some(states) => {
            assert_eq!(
                states.len(),
                layers,
                "try_run_stacked: {} initial states for {layers} layers",
                states.len()
            );
            states.into_iter().map(Some).collect()
        }
        None => (0..layers).map(|_| None).collect(),
    };
    let mut initial = initial.drain(..);
    let mut last = Vec::with_capacity(layers);
    let (mut outputs, state) =
        try_run_sequence::<C0, I, H, B, S, E, D, T>(first, x, initial.next().unwrap_or(None))?;
    last.push(state);
    for (cell, state) in rest.iter().zip(initial) {
        let (next, state) = try_run_sequence::<C, H, H, B, S, E, D, T>(cell, outputs, state)?;
        outputs = next;
        last.push(state);
    }
    Ok((outputs, last))
}

/// Runs `forward` over the sequence and `backward` over it reversed, and joins their outputs on
/// the feature axis: `[B, S, H2]` with `H2 = 2H`, the forward `h_t` first, then the backward
/// cell's state after it has read `x_{S−1}, …, x_t`. Returns the last states `(forward,
/// backward)` (the backward one after reading `x_0`), on empty tapes as
/// [`try_run_sequence`]'s; `initial_states` is `(forward, backward)` likewise.
///
/// `H2` is stated by the caller because stable Rust cannot compute `2·H` in a type.
///
/// # Panics
/// If `H2 ≠ 2·H`.
///
/// PyTorch: `nn.GRU(I, H, bidirectional=True)` and the like (`weight_ih_l0` is `forward`'s,
/// `weight_ih_l0_reverse` `backward`'s); its `h_n` is `[forward, backward]`.
pub fn try_run_bidirectional<C, const I: usize, const H: usize, const H2: usize, B, S, E, D, T>(
    forward: &C,
    backward: &C,
    x: Tensor<(B, S, Const<I>), E, D, T>,
    initial_states: Option<(C::State<B, T>, C::State<B, T>)>,
) -> Result<
    (
        Tensor<(B, S, Const<H2>), E, D, T>,
        (C::State<B, T>, C::State<B, T>),
    ),
    D::Err,
>
where
    C: RecurrentCell<I, H, E, D>,
    B: Dim,
    S: Dim,
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
{
    assert_eq!(
        H2,
        2 * H,
        "try_run_bidirectional: the output size H2 = {H2} must be twice the hidden size H = {H}"
    );
    let (initial_forward, initial_backward) = match initial_states {
        Some((f, b)) => (Some(f), Some(b)),
        None => (None, None),
    };
    let x_backward = x.retaped::<T>();
    let (out_f, last_f) = taped_outputs(run(forward, x, initial_forward, false, true)?);
    let (out_b, last_b) = taped_outputs(run(backward, x_backward, initial_backward, true, true)?);
    let out_f = out_f
        .try_realize::<(B, S, usize)>()
        .unwrap_or_else(|_| unreachable!("a Const dim realizes as usize"));
    let joined = (out_f, out_b).try_concat_along(Axis::<2>)?;
    let joined = joined
        .try_realize::<(B, S, Const<H2>)>()
        .unwrap_or_else(|_| unreachable!("H + H = H2 was checked"));
    Ok((
        joined,
        (
            C::put_state_tape(last_f, T::default()),
            C::put_state_tape(last_b, T::default()),
        ),
    ))
}

/// A forward and a backward cell of one bidirectional layer: the parameters of a `network!`
/// layer declared with `bidirectional = true` (PyTorch's `bidirectional=True`, whose `_reverse`
/// weights are `backward`'s).
#[derive(Debug, Clone)]
pub struct Bidirectional<C> {
    /// Reads the sequence from the first step to the last.
    pub forward: C,
    /// Reads the sequence from the last step to the first.
    pub backward: C,
}

impl<C: TensorCollection<E, D>, E: Dtype, D: Device<E>> TensorCollection<E, D>
    for Bidirectional<C>
{
    type To<E2: Dtype, D2: Device<E2>> = Bidirectional<C::To<E2, D2>>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::module("forward", |s| &s.forward, |s| &mut s.forward),
                Self::module("backward", |s| &s.backward, |s| &mut s.backward),
            ),
            |(forward, backward)| Bidirectional { forward, backward },
        )
    }
}

/// The last states of a bidirectional layer, joined: `[h→_T, h←_1]` (`[B, H2]`, `H2 = 2·H`),
/// the forward cell's state after the last step and the backward cell's after the first —
/// each direction's summary of the whole sequence. PyTorch: `torch.cat([h_n[0], h_n[1]], 1)`
/// of a one-layer bidirectional `nn.LSTM`. Both carry the gradient tape.
///
/// # Panics
/// If `H2 ≠ 2·H`.
pub fn try_run_bidirectional_last<
    C,
    const I: usize,
    const H: usize,
    const H2: usize,
    B,
    S,
    E,
    D,
    T,
>(
    forward: &C,
    backward: &C,
    x: Tensor<(B, S, Const<I>), E, D, T>,
) -> Result<Tensor<(B, Const<H2>), E, D, T>, D::Err>
where
    C: RecurrentCell<I, H, E, D>,
    B: Dim,
    S: Dim,
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
{
    assert_eq!(
        H2,
        2 * H,
        "try_run_bidirectional_last: the output size H2 = {H2} must be twice the hidden size H = {H}"
    );
    let x_backward = x.retaped::<T>();
    let run_f = run(forward, x, None, false, false)?;
    let run_b = run(backward, x_backward, None, true, false)?;
    let h_f = C::into_hidden(C::put_state_tape(run_f.last, run_f.tape));
    let h_b = C::into_hidden(C::put_state_tape(run_b.last, run_b.tape));
    crate::ops::try_concat_features(h_f, h_b)
}
