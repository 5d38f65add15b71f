//! `traced_input` (`typednet::trace`): the parameters get exactly the gradients `traced` gives
//! them, and the input gets none (the kernels leave out `∂x`), on networks whose first layer is
//! a linear layer (with a fused activation), a recurrent layer or a convolution (on the direct
//! loops, fewer than 32 output channels, and on the GEMM).

use std::panic::{catch_unwind, AssertUnwindSafe};

use typednet::prelude::*;

network! {
    pub struct Mlp: [12] -> linear(16) -> sigmoid -> linear(5) -> relu -> linear(3);
    pub struct Lstm: [6, 5] -> lstm(7, output = last) -> linear(2);
    pub struct Gru: [6, 5] -> torch_gru(7, output = last) -> linear(2);
    pub struct ConvNarrow: [3, 9, 8] -> conv(4, 3, stride = 2, pad = 1) -> relu -> flatten -> linear(2);
    pub struct ConvWide: [3, 6, 6] -> conv(32, 3, pad = 1) -> relu -> flatten -> linear(2);
}

type Taped<S> = Tensor<S, f32, Cpu, OwnedTape<f32, Cpu>>;

/// The parameters' gradients (every tensor of the collection, in visiting order) under the loss
/// `Σ y²` of the network's output, with the input traced by `traced_input` or by `traced`; and
/// whether the input has a gradient entry afterwards (leaky gradients keep every entry made).
fn parameter_gradients<S: Shape, O: Shape, N>(
    net: &N,
    x: &Tensor<S, f32, Cpu>,
    without_input_gradient: bool,
) -> (Vec<Vec<f32>>, bool)
where
    N: TensorCollection<f32, Cpu> + Module<Taped<S>, Output = Taped<O>>,
{
    let traced = if without_input_gradient {
        x.clone().traced_input(Gradients::leaky())
    } else {
        x.clone().traced(Gradients::leaky())
    };
    let grads = net.forward(traced).square().sum().backward();
    let mut collected = Vec::new();
    let mut visitor = Collect {
        grads: &grads,
        out: &mut collected,
    };
    N::iter_tensors(&mut RecursiveWalker {
        m: net,
        f: &mut visitor,
    })
    .unwrap();
    // `Gradients::get` panics on a missing entry.
    let input_has_gradient = catch_unwind(AssertUnwindSafe(|| grads.get(x))).is_ok();
    (collected, input_has_gradient)
}

struct Collect<'a> {
    grads: &'a Gradients<f32, Cpu>,
    out: &'a mut Vec<Vec<f32>>,
}

impl TensorVisitor<f32, Cpu> for Collect<'_> {
    type Viewer = ViewTensorRef;
    type Err = CpuError;
    type E2 = f32;
    type D2 = Cpu;

    fn visit<S: Shape>(
        &mut self,
        _: TensorOptions<S, f32, Cpu>,
        t: &Tensor<S, f32, Cpu>,
    ) -> Result<Option<Tensor<S, f32, Cpu>>, CpuError> {
        self.out.push(self.grads.get(t).as_vec());
        Ok(None)
    }
}

fn check<S: Shape, O: Shape, N>(name: &str, net: &N, x: Tensor<S, f32, Cpu>)
where
    N: TensorCollection<f32, Cpu> + Module<Taped<S>, Output = Taped<O>>,
{
    let (traced, input_traced) = parameter_gradients(net, &x, false);
    let (untraced, input_untraced) = parameter_gradients(net, &x, true);
    assert!(input_traced, "{name}: `traced` gives the input a gradient");
    assert!(
        !input_untraced,
        "{name}: `traced_input` leaves the input without one"
    );
    assert_eq!(traced.len(), untraced.len());
    for (index, (a, b)) in traced.iter().zip(&untraced).enumerate() {
        assert_eq!(a, b, "{name}: parameter {index}'s gradient");
        assert!(
            a.iter().any(|&g| g != 0.0),
            "{name}: parameter {index} got no gradient"
        );
    }
}

#[test]
fn parameters_get_the_same_gradients_and_the_input_none() {
    let dev = Cpu::seed_from_u64(0);
    let x: Tensor<Rank2<9, 12>, f32, Cpu> = dev.sample_normal();
    check("mlp", &Mlp::<f32, Cpu>::new(&dev), x);
    let x: Tensor<Rank3<4, 6, 5>, f32, Cpu> = dev.sample_normal();
    check("lstm", &Lstm::<f32, Cpu>::new(&dev), x.clone());
    check("gru", &Gru::<f32, Cpu>::new(&dev), x);
    let x: Tensor<Rank4<2, 3, 9, 8>, f32, Cpu> = dev.sample_normal();
    check("conv, direct", &ConvNarrow::<f32, Cpu>::new(&dev), x);
    let x: Tensor<Rank4<2, 3, 6, 6>, f32, Cpu> = dev.sample_normal();
    check("conv, GEMM", &ConvWide::<f32, Cpu>::new(&dev), x);
}
