//! The graph recurrent network: node states updated from their neighbours' states, with
//! weights shared by every node and every step.

use dfdx::nn::modules::{ModuleVisitor, TensorCollection, TensorOptions};
use dfdx::shapes::{Axes2, Axes3, Const, Dim, Dtype, HasShape, Rank1, Rank2, Shape};
use dfdx::tensor::{NoneTape, PutTape, SplitTape, Storage, Tape, Tensor};
use dfdx::tensor_ops::{BroadcastTo, Device, PermuteTo, ReshapeTo, TryAdd, TryMatMul};

use super::reset_uniform;
use crate::network::Element;

/// The cell of a graph recurrent network: every node `v` holds a state, and one step updates
/// all of them from the node's features and its neighbours' states,
///
/// `H^k = tanh(X·W_inᵀ + A·H^{k−1}·W_hᵀ + b)`, for `k = 1, …, K`,
///
/// that is `h_v^k = tanh(W_in·x_v + W_h·Σ_u A_vu·h_u^{k−1} + b)`: row `v` of the adjacency `A`
/// weighs the states of `v`'s neighbours (0/1 for a plain graph; put 1 on the diagonal for a
/// node to see its own state). `H^0` is zero unless given, so after `K` steps a node has heard
/// from the nodes up to `K − 1` edges away (`K` with a given `H^0`). Run it with
/// [`try_run_graph`].
///
/// # Shapes
/// Features `X` `[B, N, F]`, adjacency `A` `[N, N]`, states `[B, N, H]`; parameters:
/// `H·F + H·H + H`.
///
/// No PyTorch equivalent (PyTorch Geometric's `GatedGraphConv` is the gated relative).
/// Initialised as PyTorch's recurrent layers: uniform in `±1/√H`.
#[derive(Debug, Clone)]
pub struct GraphRnnCell<const F: usize, const H: usize, E: Dtype, D: Storage<E>> {
    /// Input weights `W_in`, `[H, F]`.
    pub weight_ih: Tensor<Rank2<H, F>, E, D>,
    /// Weights `W_h` of the neighbours' states, `[H, H]`.
    pub weight_hh: Tensor<Rank2<H, H>, E, D>,
    /// Bias `b`, `[H]`.
    pub bias: Tensor<Rank1<H>, E, D>,
}

impl<const F: usize, const H: usize, E: Element, D: Device<E>> TensorCollection<E, D>
    for GraphRnnCell<F, H, E, D>
{
    type To<E2: Dtype, D2: Device<E2>> = GraphRnnCell<F, H, E2, D2>;

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
                    "bias",
                    |s| &s.bias,
                    |s| &mut s.bias,
                    TensorOptions::reset_with(reset_uniform::<_, E, D, H>),
                ),
            ),
            |(weight_ih, weight_hh, bias)| GraphRnnCell {
                weight_ih,
                weight_hh,
                bias,
            },
        )
    }
}

/// `[B, N, H]` → `[N, B·H]`, the layout in which `A·(…)` is one matrix product.
fn node_major<B: Dim, N: Dim, const H: usize, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    t: Tensor<(B, N, Const<H>), E, D, T>,
) -> Result<Tensor<(N, usize), E, D, T>, D::Err> {
    let (batch, nodes, _) = *t.shape();
    t.try_permute::<_, Axes3<1, 0, 2>>()?
        .try_reshape_like(&(nodes, batch.size() * H))
}

/// Runs a [`GraphRnnCell`] for `steps` steps over a graph and returns the final states `H^K`,
/// `[B, N, H]`, which carry the tape.
///
/// `x` holds the node features, `[B, N, F]` (`N` a `Const` or a run-time `usize`);
/// `adjacency` is `A`, `[N, N]`, shared by the batch (its gradient is recorded too, under its
/// id). `initial_state` is `H^0`, zeros when `None`; given, its gradient is computed along with
/// the rest. With `steps = 0` the result is `H^0`.
///
/// # Panics
/// If `adjacency` is not `[N, N]` for the `N` of `x`.
///
/// No PyTorch equivalent.
pub fn try_run_graph<const F: usize, const H: usize, B: Dim, N: Dim, E, D, T>(
    cell: &GraphRnnCell<F, H, E, D>,
    x: Tensor<(B, N, Const<F>), E, D, T>,
    adjacency: &Tensor<(N, N), E, D>,
    steps: usize,
    initial_state: Option<Tensor<(B, N, Const<H>), E, D, T>>,
) -> Result<Tensor<(B, N, Const<H>), E, D, T>, D::Err>
where
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
{
    let (batch, nodes, _) = *x.shape();
    assert_eq!(
        adjacency.shape().concrete(),
        [nodes.size(); 2],
        "try_run_graph: the adjacency must be [N, N] for N = {} nodes",
        nodes.size()
    );
    let device = x.device().clone();
    // X·W_inᵀ + b, computed once: [B, N, F] → [B, N, H] → [N, B·H].
    let projected = x.try_matmul(
        cell.weight_ih
            .retaped::<T>()
            .try_permute::<_, Axes2<1, 0>>()?,
    )?;
    let bias = cell
        .bias
        .retaped::<T>()
        .try_broadcast_like::<_, Axes2<0, 1>>(&(batch, nodes, Const::<H>))?;
    let (projected, mut tape) = node_major(projected.try_add(bias)?)?.split_tape();
    let mut state: Option<Tensor<(N, usize), E, D, NoneTape>> = match initial_state {
        Some(h0) => {
            let (h0, h0_tape) = node_major(h0)?.split_tape();
            tape = tape.merge(h0_tape);
            Some(h0)
        }
        None => None,
    };
    for _ in 0..steps {
        let z = match state {
            // H^0 = 0: the neighbours contribute nothing.
            None => projected.clone().put_tape(tape),
            Some(h) => {
                // (H·W_hᵀ) in [N, B, H], then A· mixes the rows of [N, B·H].
                let hw = h
                    .put_tape(tape)
                    .try_reshape_like(&(nodes, batch, Const::<H>))?
                    .try_matmul(
                        cell.weight_hh
                            .retaped::<T>()
                            .try_permute::<_, Axes2<1, 0>>()?,
                    )?
                    .try_reshape_like(&(nodes, batch.size() * H))?;
                let mixed = adjacency.retaped::<T>().try_matmul(hw)?;
                projected.retaped::<T>().try_add(mixed)?
            }
        };
        let (h, h_tape) = z.try_tanh()?.split_tape();
        tape = h_tape;
        state = Some(h);
    }
    let state = match state {
        Some(h) => h,
        None => device.try_zeros_like(&(nodes, batch.size() * H))?,
    };
    // [N, B·H] → [N, B, H] → [B, N, H], copied to be contiguous.
    state
        .put_tape(tape)
        .try_reshape_like(&(nodes, batch, Const::<H>))?
        .try_permute::<_, Axes3<1, 0, 2>>()?
        .try_reshape_like(&(batch, nodes, Const::<H>))
}
