//! Side outputs (`name: head(…)`, GoogLeNet's auxiliary classifiers): `forward_with_heads`
//! returns each head's output beside the network's, the values are those of the head's layers
//! applied to the value where it branches off, and the gradients of a loss over every output
//! (the heads' tapes merged into the main one) match finite differences.

use dfdx::prelude::*;
use typednet::gradcheck::check_gradient;
use typednet::ops::{try_conv2d, try_global_avg_pool2d, Conv2dGeometry};
use typednet::testing::TestDevice;
use typednet::{assert_close, network, Network};

type Dev = TestDevice;

network! {
    /// A trunk with two side outputs: one after the first convolution, one before the classifier.
    pub struct TwoHeads: [3, 8, 8]
        -> conv(4, 3, pad = 1) -> relu
        -> early: head(global_avgpool -> linear(5))
        -> maxpool(2) -> conv(6, 3)
        -> late: head(flatten -> linear(2) -> tanh)
        -> flatten -> linear(3);
}

fn batch(dev: &Dev) -> Tensor<Rank4<2, 3, 8, 8>, f64, Dev> {
    let values: Vec<f64> = (0..2 * 3 * 8 * 8)
        .map(|i| ((i * 37 % 101) as f64 / 50.0) - 1.0)
        .collect();
    dev.tensor(values)
}

#[test]
fn heads_add_their_parameters_and_keep_the_main_output_shape() {
    // conv 4·3·9 + 4 = 112; early 4·5 + 5 = 25; conv 6·4·9 + 6 = 222; late 6·2·2·2 + 2 = 50;
    // classifier 24·3 + 3 = 75.
    assert_eq!(TwoHeads::<f64, Dev>::PARAMETERS, 112 + 25 + 222 + 50 + 75);
    assert_eq!(<TwoHeads<f64, Dev> as Network>::OUTPUT_SHAPE, &[3]);
    let summary = TwoHeads::<f64, Dev>::new(&typednet::test_device!()).summary();
    assert!(summary.contains("early"), "{summary}");
    assert!(summary.contains("late"), "{summary}");
}

#[test]
fn forward_with_heads_returns_the_output_and_each_heads_value() {
    let dev = typednet::test_device!();
    let net = TwoHeads::<f64, Dev>::new(&dev);
    let x = batch(&dev);
    let (y, (early, late)) = net.try_forward_with_heads(x.clone()).unwrap();
    // The main output is the one `forward` gives, which skips the heads.
    assert_close!(y.as_vec(), net.forward(x.clone()).as_vec(), 1e-15);

    // Each head is its own layers applied to where it branches off.
    let geometry = Conv2dGeometry {
        stride: [1, 1],
        padding: [1, 1],
    };
    let trunk: Tensor<Rank4<2, 4, 8, 8>, f64, Dev> =
        try_conv2d(x, &net.conv1, geometry).unwrap().relu();
    let expected_early = net
        .linear1
        .forward(try_global_avg_pool2d(trunk.clone()).unwrap());
    assert_close!(early.as_vec(), expected_early.as_vec(), 1e-13);
    let pooled: Tensor<Rank4<2, 4, 4, 4>, f64, Dev> = typednet::ops::max_pool2d(
        trunk,
        typednet::ops::Pool2dGeometry {
            window: [2, 2],
            stride: [2, 2],
        },
    );
    let no_padding = Conv2dGeometry {
        stride: [1, 1],
        padding: [0, 0],
    };
    let features: Tensor<Rank4<2, 6, 2, 2>, f64, Dev> =
        try_conv2d(pooled, &net.conv2, no_padding).unwrap();
    let flat: Tensor<Rank2<2, 24>, f64, Dev> = features.reshape();
    let expected_late = net.linear2.forward(flat).tanh();
    assert_close!(late.as_vec(), expected_late.as_vec(), 1e-13);
    assert_eq!(early.shape().concrete(), [2, 5]);
    assert_eq!(late.shape().concrete(), [2, 2]);
}

#[test]
fn a_loss_over_the_output_and_the_heads_has_exact_gradients() {
    let dev = typednet::test_device!();
    let net = TwoHeads::<f64, Dev>::new(&dev);
    let x = batch(&dev);
    // Σ y + 0.3·(Σ early² + Σ late): every output contributes to the input's gradient.
    let loss = |x: Tensor<Rank4<2, 3, 8, 8>, f64, Dev, OwnedTape<f64, Dev>>| {
        let (y, (early, late)) = net.try_forward_with_heads(x).unwrap();
        y.sum() + (early.square().sum() + late.sum()) * 0.3
    };
    check_gradient(&x, loss).assert_below(1e-6);

    // The heads' parameters receive gradients through the merged tape; with the heads left
    // out of the loss, they receive none.
    let grads = loss(x.trace(net.alloc_grads())).backward();
    assert!(grads
        .get(&net.linear1.weight)
        .as_vec()
        .iter()
        .any(|g| g.abs() > 1e-6));
    assert!(grads
        .get(&net.linear2.weight)
        .as_vec()
        .iter()
        .any(|g| g.abs() > 1e-6));
    let (y, _) = net
        .try_forward_with_heads(x.trace(net.alloc_grads()))
        .unwrap();
    let grads = y.sum().backward();
    assert!(grads
        .get(&net.linear1.weight)
        .as_vec()
        .iter()
        .all(|g| *g == 0.0));
}
