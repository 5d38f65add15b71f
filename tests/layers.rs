//! Pass tests: every layer of the language compiles, produces the shapes the macro inferred, and
//! computes what PyTorch computes for the same parameters.

use typednet::prelude::*;
use typednet::testing::TestDevice;

network! {
    /// Every activation on a vector.
    pub struct Activations: [4] -> relu -> sigmoid -> tanh -> softmax -> log_softmax;

    /// Linear in both forms, dropout, reshape and flatten.
    pub struct Dense: [12] -> linear(6) -> relu -> linear(6, 4) -> dropout(0.5) -> reshape(1, 2, 2) -> flatten -> linear(3);

    /// Every image layer, on a non-square input.
    pub struct Images: [2, 9, 7]
        -> conv(3, 3, pad = 1) -> relu
        -> conv(3, 4, (3, 2), stride = (2, 1))
        -> maxpool(2, stride = 1)
        -> avgpool((2, 1))
        -> conv(5, 1, pad = same)
        -> flatten -> linear(2);

    /// A repeated group, named layers and exact fit.
    #[exact_fit]
    pub struct Repeated: [1, 8, 8]
        -> [[conv(4, 3, pad = 1) -> relu] * 2 -> maxpool(2)] * 2
        -> flatten -> head: linear(10);
}

#[test]
fn shapes_are_inferred() {
    assert_eq!(<Activations>::OUTPUT_SHAPE, &[4]);
    assert_eq!(<Dense>::OUTPUT_SHAPE, &[3]);
    // conv1: 9×7 pad 1 → 9×7; conv2: (9−3)/2+1 = 4, (7−2)/1+1 = 6; maxpool 2 s1: 3×5;
    // avgpool (2,1): 1×5; conv3 same: 1×5 → flatten 25.
    let shapes: Vec<&[usize]> = <Images>::LAYERS.iter().map(|l| l.output_shape).collect();
    assert_eq!(
        shapes,
        vec![
            &[3, 9, 7][..],
            &[3, 9, 7],
            &[4, 4, 6],
            &[4, 3, 5],
            &[4, 1, 5],
            &[5, 1, 5],
            &[25],
            &[2]
        ]
    );
    let names: Vec<&str> = <Repeated>::LAYERS.iter().map(|l| l.name).collect();
    assert_eq!(
        names,
        vec![
            "conv1", "relu1", "conv2", "relu2", "maxpool1", "conv3", "relu3", "conv4", "relu4",
            "maxpool2", "flatten1", "head"
        ]
    );
    assert_eq!(<Repeated>::OUTPUT_SHAPE, &[10]);
}

#[test]
fn parameter_counts_match_pytorch() {
    // torch: sum(p.numel() for p in model.parameters()) for the same layers.
    assert_eq!(
        <Dense>::PARAMETERS,
        (12 * 6 + 6) + (6 * 4 + 4) + (4 * 3 + 3)
    );
    assert_eq!(
        <Images>::PARAMETERS,
        (3 * 2 * 9 + 3) + (4 * 3 * 6 + 4) + (5 * 4 + 5) + (25 * 2 + 2)
    );
    assert_eq!(
        <Repeated>::PARAMETERS,
        (4 * 9 + 4) + 3 * (4 * 4 * 9 + 4) + (4 * 2 * 2 * 10 + 10)
    );
    let dev = typednet::test_device!();
    let net = Images::<f32, TestDevice>::new(&dev);
    assert_eq!(net.num_trainable_params(), <Images>::PARAMETERS);
}

#[test]
fn forward_takes_one_example_or_a_batch_with_or_without_tape() {
    let dev = typednet::test_device!();
    let net = Images::<f32, TestDevice>::new(&dev);
    let one: Tensor<Rank1<2>, f32, TestDevice> = net.forward(dev.sample_normal::<Rank3<2, 9, 7>>());
    let batch: Tensor<Rank2<5, 2>, f32, TestDevice> =
        net.forward(dev.sample_normal::<Rank4<5, 2, 9, 7>>());
    let runtime: Tensor<(usize, Const<2>), f32, TestDevice> =
        net.forward(dev.sample_normal_like(&(3usize, Const::<2>, Const::<9>, Const::<7>)));
    assert_eq!(runtime.shape().0, 3);
    let traced = net.forward(dev.sample_normal::<Rank4<5, 2, 9, 7>>().leaky_trace());
    let grads = traced.sum().backward();
    assert!(grads
        .get(&net.linear1.weight)
        .array()
        .iter()
        .flatten()
        .any(|g| *g != 0.0));
    let _ = (one, batch);
}

#[test]
fn activations_compute_what_pytorch_computes() {
    let dev = typednet::test_device!();
    let net = Activations::<f32, TestDevice>::new(&dev);
    let x = dev.tensor([-1.0f32, 0.5, 2.0, -0.25]);
    let y = net.forward(x);
    // torch.log_softmax(torch.softmax(torch.tanh(torch.sigmoid(torch.relu(x))), 0), 0)
    // for x = [-1.0, 0.5, 2.0, -0.25] (tools/reference_layers.py).
    typednet::assert_close!(
        y.array(),
        [-1.407914f32, -1.3861942, -1.3445045, -1.407914],
        1e-5
    );
}

network! {
    pub struct SmallMlp: [4] -> linear(3) -> tanh -> linear(2) -> softmax;
}

#[test]
fn mlp_with_given_weights_matches_pytorch() {
    let dev = typednet::test_device!();
    let mut net = SmallMlp::<f32, TestDevice>::new(&dev);
    // The same weights as tools/reference_layers.py, in PyTorch's [out, in] layout.
    let w1: Vec<f32> = (0..3)
        .flat_map(|i| (0..4).map(move |j| 0.1 * (i as f32 - j as f32) + 0.05 * j as f32))
        .collect();
    let w2: Vec<f32> = (0..2)
        .flat_map(|i| (0..3).map(move |j| 0.3 - 0.2 * i as f32 + 0.1 * j as f32))
        .collect();
    net.linear1.weight = dev.tensor_from_vec(w1, (Const::<3>, Const::<4>));
    net.linear1.bias = dev.tensor([0.1, -0.2, 0.3]);
    net.linear2.weight = dev.tensor_from_vec(w2, (Const::<2>, Const::<3>));
    net.linear2.bias = dev.tensor([-0.05, 0.05]);
    let x = dev.tensor([[1.0f32, -2.0, 0.5, 3.0], [0.0, 0.25, -1.5, 2.0]]);
    let y = net.forward(x).array();
    typednet::assert_close!(y[0], [0.46268257f32, 0.53731745], 1e-6);
    typednet::assert_close!(y[1], [0.47190866f32, 0.5280913], 1e-6);
}

#[test]
fn dropout_is_identity_without_a_tape() {
    let dev = typednet::test_device!();
    let net = Dense::<f32, TestDevice>::new(&dev);
    let x = dev.sample_normal::<Rank2<8, 12>>();
    let a = net.forward(x.clone()).array();
    let b = net.forward(x).array();
    assert_eq!(a, b);
}

#[test]
fn summary_shows_layers_shapes_and_total() {
    let dev = typednet::test_device!();
    let net = Repeated::<f32, TestDevice>::new(&dev);
    let table = net.summary();
    assert!(table.contains("conv1 (conv(4, 3, pad = 1))"), "{table}");
    assert!(table.contains("[B, 4, 8, 8]"), "{table}");
    assert!(table.contains("head (linear(10))"), "{table}");
    assert!(
        table.contains(&format!(
            "Total params: {}",
            typednet::network::format_count(<Repeated>::PARAMETERS)
        )),
        "{table}"
    );
}

network! {
    pub struct Encoder: [1, 8, 8] -> conv(2, 3) -> relu -> flatten -> linear(4) -> tanh;
    pub struct Decoder: [4] -> linear(64) -> sigmoid -> reshape(1, 8, 8);
    /// An autoencoder made of two networks declared separately.
    pub struct Autoencoder = Encoder -> Decoder;
}

#[test]
fn composed_networks_run_in_turn() {
    assert_eq!(<Autoencoder>::INPUT_SHAPE, &[1, 8, 8]);
    assert_eq!(<Autoencoder>::OUTPUT_SHAPE, &[1, 8, 8]);
    assert_eq!(
        <Autoencoder>::PARAMETERS,
        <Encoder>::PARAMETERS + <Decoder>::PARAMETERS
    );
    assert_eq!(
        <Autoencoder>::LAYERS.len(),
        <Encoder>::LAYERS.len() + <Decoder>::LAYERS.len()
    );
    let dev = typednet::test_device!();
    let net = Autoencoder::<f32, TestDevice>::new(&dev);
    assert_eq!(net.num_trainable_params(), <Autoencoder>::PARAMETERS);
    let x = dev.sample_normal::<Rank4<3, 1, 8, 8>>();
    let through_both = net.forward(x.clone()).array();
    let by_hand = net.decoder.forward(net.encoder.forward(x)).array();
    assert_eq!(through_both, by_hand);
}

#[test]
fn networks_build_in_f64_and_train_through_an_optimiser() {
    use typednet::dfdx::optim::{Optimizer, Sgd, SgdConfig};
    let dev = typednet::test_device!();
    let mut net = Dense::<f64, TestDevice>::new(&dev);
    let mut opt = Sgd::new(
        &net,
        SgdConfig {
            lr: 0.1,
            momentum: Some(typednet::dfdx::optim::Momentum::Classic(0.9)),
            weight_decay: None,
        },
    );
    let x = dev.sample_normal::<Rank2<16, 12>>();
    let target = dev.sample_normal::<Rank2<16, 3>>();
    let mut losses = Vec::new();
    for _ in 0..20 {
        let y = net.forward(x.clone().traced(net.alloc_grads()));
        let loss = typednet::dfdx::losses::mse_loss(y, target.clone());
        losses.push(loss.array());
        let grads = loss.backward();
        opt.update(&mut net, &grads).unwrap();
    }
    // Dropout is active while training (tape attached), so the loss is noisy, but it falls.
    assert!(losses[19] < 0.7 * losses[0], "{losses:?}");
}

network! {
    /// LeNet-5 as in README.md.
    pub struct LeNet5: [1, 28, 28]
        -> conv(6, 5, pad = 2) -> relu -> maxpool(2)
        -> conv(16, 5) -> relu -> maxpool(2)
        -> flatten
        -> [linear(120) -> relu] * 1
        -> linear(84) -> relu
        -> linear(10);
}

#[test]
fn lenet5_has_pytorchs_parameter_count_and_shapes() {
    // sum(p.numel() for p in the same nn.Sequential) = 61,706.
    assert_eq!(<LeNet5>::PARAMETERS, 61_706);
    let flatten = <LeNet5>::LAYERS
        .iter()
        .find(|l| l.name == "flatten1")
        .unwrap();
    assert_eq!(flatten.output_shape, &[400]);
    let dev = typednet::test_device!();
    let net = LeNet5::<f32, TestDevice>::new(&dev);
    let y: Tensor<Rank2<2, 10>, f32, TestDevice> = net.forward(dev.zeros::<Rank4<2, 1, 28, 28>>());
    // Zero input: the logits are the network's response to the biases alone, the same per row.
    let y = y.array();
    assert_eq!(y[0], y[1]);
}

#[test]
fn a_run_time_shaped_batch_is_checked_once_with_an_error_naming_both_shapes() {
    let dev = typednet::test_device!();
    let net = Images::<f32, TestDevice>::new(&dev);
    // Shapes read from data at run time: every dimension a usize.
    let good = dev.zeros_like(&(4usize, 2usize, 9usize, 7usize));
    let y: Tensor<(usize, Const<2>), f32, TestDevice> = net.try_forward(good).unwrap();
    assert_eq!(y.shape().0, 4);

    let bad = dev.zeros_like(&(4usize, 2usize, 7usize, 9usize));
    let error = net.try_forward(bad).unwrap_err();
    assert_eq!(
        error.to_string(),
        "input of `Images`: expected a batch of shape [B, 2, 9, 7], found [4, 2, 7, 9]"
    );
    let dense = Dense::<f32, TestDevice>::new(&dev);
    let error = dense
        .try_forward(dev.zeros_like(&(3usize, 10usize)))
        .unwrap_err();
    assert!(matches!(
        error,
        typednet::ForwardError::Shape {
            network: "Dense",
            expected: [12],
            ..
        }
    ));
}

network! {
    /// A decoder: transposed convolutions double the size (DCGAN's 4/2/1 geometry).
    pub struct Upsampler: [4, 7, 7]
        -> conv_transpose(8, 4, stride = 2, pad = 1) -> relu
        -> conv_transpose(8, 1, 3, stride = 2, pad = 1, output_pad = 1) -> sigmoid;
}

#[test]
fn conv_transpose_layers_grow_the_image_as_pytorch_does() {
    // torch.nn.ConvTranspose2d(4, 8, 4, 2, 1): 7 → 14; ConvTranspose2d(8, 1, 3, 2, 1, 1): 14 → 28.
    assert_eq!(<Upsampler>::LAYERS[0].output_shape, &[8, 14, 14]);
    assert_eq!(<Upsampler>::OUTPUT_SHAPE, &[1, 28, 28]);
    // Weights [C_IN, C_OUT, K, K] plus a bias per output channel, as PyTorch counts them.
    assert_eq!(<Upsampler>::PARAMETERS, (4 * 8 * 16 + 8) + (8 * 9 + 1));
    let dev = typednet::test_device!();
    let net = Upsampler::<f32, TestDevice>::new(&dev);
    let y = net.forward(dev.sample_normal::<Rank4<2, 4, 7, 7>>());
    assert!(y
        .array()
        .iter()
        .flatten()
        .flatten()
        .flatten()
        .all(|v| *v > 0.0 && *v < 1.0));
}

network! {
    /// Global average pooling ends GoogLeNet and ResNet: one mean per channel.
    pub struct GlobalPool: [3, 4, 5] -> conv(6, 3, pad = 1) -> global_avgpool -> linear(2);
}

#[test]
fn global_average_pooling_takes_the_mean_of_each_channel() {
    assert_eq!(GlobalPool::LAYERS[1].output_shape, &[6]);
    let dev = typednet::test_device!(7);
    let x: Tensor<Rank4<2, 6, 4, 5>, f64, TestDevice> = dev.sample_normal();
    let pooled: Tensor<Rank2<2, 6>, f64, TestDevice> =
        typednet::ops::try_global_avg_pool2d(x.clone()).unwrap();
    let values = x.as_vec();
    let expected: Vec<f64> = values
        .chunks(20)
        .map(|plane| plane.iter().sum::<f64>() / 20.0)
        .collect();
    typednet::assert_close!(pooled.as_vec(), expected, 1e-12);
    // Each input cell gets 1/(H·W) of its channel's gradient.
    let g: Tensor<Rank2<2, 6>, f64, TestDevice> = dev.sample_normal();
    typednet::gradcheck::check_gradient(&x, |x| {
        (typednet::ops::try_global_avg_pool2d(x).unwrap() * g.clone()).sum()
    })
    .assert_below(1e-6);
    let net = GlobalPool::<f32, TestDevice>::new(&dev);
    let _: Tensor<Rank2<2, 2>, f32, TestDevice> = net.forward(dev.zeros::<Rank4<2, 3, 4, 5>>());
}

network! {
    /// A convolution without a bias, as before batch normalisation.
    pub struct NoBias: [2, 5, 5] -> conv(3, 3, pad = 1, bias = false) -> flatten;
}

#[test]
fn a_convolution_without_bias_has_only_filters() {
    assert_eq!(<NoBias>::PARAMETERS, 3 * 2 * 9);
    let dev = typednet::test_device!(8);
    let net = NoBias::<f64, TestDevice>::new(&dev);
    let with_zero_bias = typednet::layers::Conv2d {
        weight: net.conv1.weight.clone(),
        bias: dev.zeros(),
    };
    let x: Tensor<Rank4<2, 2, 5, 5>, f64, TestDevice> = dev.sample_normal();
    let expected: Tensor<Rank4<2, 3, 5, 5>, f64, TestDevice> = typednet::ops::try_conv2d(
        x.clone(),
        &with_zero_bias,
        typednet::ops::Conv2dGeometry {
            stride: [1, 1],
            padding: [1, 1],
        },
    )
    .unwrap();
    typednet::assert_close!(net.forward(x.clone()).as_vec(), expected.as_vec(), 1e-12);
    // The filters' gradient reaches the layer's own weight tensor.
    let loss = |net: &NoBias<f64, TestDevice>, grads| net.forward(x.trace(grads)).square().sum();
    typednet::gradcheck::check_parameter_gradient(&net, |n| &mut n.conv1.weight, loss)
        .assert_below(1e-6);
}
