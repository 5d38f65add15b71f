//! The vanishing gradient, measured: the gradient norm of every layer's weights after one
//! backward pass on a batch of MNIST digits, for a 10-layer MLP with sigmoid activations and
//! the same MLP with ReLU.
//!
//! `cargo run --release --example vanishing_gradients` (optional argument: seed).
//!
//! Backpropagation multiplies the gradient, layer by layer from the output down, by each
//! layer's weights and by the derivative of its activation. The sigmoid's derivative
//! `σ(x)(1 − σ(x))` is at most 1/4, so each sigmoid layer shrinks the gradient several times
//! over and the first layers of a deep sigmoid network barely learn. ReLU's derivative is 1
//! wherever a unit is active, so the gradient shrinks only by what the weights do: PyTorch's
//! default initialisation (uniform in `±1/√fan_in`, a variance of `1/(3·fan_in)`, not He's
//! `2/fan_in`) still loses a little per layer, but far less.
//!
//! Measured on 2026-11-23 (`cargo run --release --example vanishing_gradients`, seed 0; both
//! networks start from the same weights; gradient of the mean cross-entropy of the first 64
//! training digits):
//!
//! | layer | sigmoid | ReLU |
//! |---|---|---|
//! | linear1 | 3.341e-8 | 3.703e-4 |
//! | linear2 | 6.170e-8 | 1.066e-4 |
//! | linear3 | 3.572e-7 | 1.049e-4 |
//! | linear4 | 2.715e-6 | 2.101e-4 |
//! | linear5 | 2.344e-5 | 3.119e-4 |
//! | linear6 | 1.698e-4 | 8.416e-4 |
//! | linear7 | 1.480e-3 | 2.302e-3 |
//! | linear8 | 1.010e-2 | 5.035e-3 |
//! | linear9 | 7.095e-2 | 1.511e-2 |
//! | linear10 | 4.630e-1 | 2.981e-2 |
//!
//! From the last layer to the first the sigmoid network's gradient shrinks 13,859,171× (about
//! 6× per layer); the ReLU network's 80×. The first sigmoid layer's gradient is 10,000 times
//! smaller than the first ReLU layer's: with the same learning rate it would hardly move.

use typednet::data::Mnist;
use typednet::loss::cross_entropy;
use typednet::prelude::*;
use typednet::regularize::gradient_norms;

network! {
    /// Ten linear layers with a sigmoid after each hidden one.
    pub struct DeepSigmoid: [784] -> [linear(64) -> sigmoid] * 9 -> linear(10);

    /// The same layers with ReLU.
    pub struct DeepRelu: [784] -> [linear(64) -> relu] * 9 -> linear(10);
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seed: u64 = std::env::args().nth(1).map_or(Ok(0), |a| a.parse())?;
    let (train, _) = Mnist::load_shipped_split()?;
    let batch = train
        .batches::<Rank1<784>>(64)?
        .next()
        .ok_or("the training set is empty")?;
    let labels = batch.labels();

    let dev = Cpu::seed_from_u64(seed);
    let sigmoid_net = DeepSigmoid::<f32, Cpu>::new(&dev);
    let dev = Cpu::seed_from_u64(seed);
    let relu_net = DeepRelu::<f32, Cpu>::new(&dev);

    let x = batch.try_to_tensor::<f32, Cpu>(&dev)?;
    let mut sigmoid_grads = cross_entropy(
        sigmoid_net.forward(x.trace(sigmoid_net.alloc_grads())),
        &labels,
    )
    .backward();
    let mut relu_grads =
        cross_entropy(relu_net.forward(x.trace(relu_net.alloc_grads())), &labels).backward();
    let sigmoid_norms = gradient_norms(&sigmoid_net, &mut sigmoid_grads);
    let relu_norms = gradient_norms(&relu_net, &mut relu_grads);

    println!("gradient norm of each layer's weights, ‖∂L/∂W‖, after one backward pass");
    println!("| layer | sigmoid | ReLU |");
    println!("|---|---|---|");
    let weights = |norms: &[(String, f64)]| -> Vec<(String, f64)> {
        norms
            .iter()
            .filter(|(name, _)| name.ends_with(".weight"))
            .cloned()
            .collect()
    };
    let (sigmoid_w, relu_w) = (weights(&sigmoid_norms), weights(&relu_norms));
    for ((name, sigmoid), (_, relu)) in sigmoid_w.iter().zip(&relu_w) {
        let layer = name.trim_end_matches(".weight");
        println!("| {layer} | {sigmoid:.3e} | {relu:.3e} |");
    }
    let ratio = |w: &[(String, f64)]| w[w.len() - 1].1 / w[0].1;
    println!(
        "last layer / first layer: sigmoid {:.0}×, ReLU {:.1}×",
        ratio(&sigmoid_w),
        ratio(&relu_w)
    );
    Ok(())
}
