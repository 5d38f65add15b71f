//! The zoo: every intermediate shape and every parameter count, checked against the papers and
//! against torchvision (`tools/torchvision_counts.py` prints torchvision's counts and
//! ResNet-18's stage shapes). The declarations are `examples/zoo/nets.rs`.

use typednet::prelude::*;

include!("../examples/zoo/nets.rs");

/// The output shape of the layer named `name`.
fn shape(layers: &[typednet::LayerInfo], name: &str) -> &'static [usize] {
    layers
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no layer {name}"))
        .output_shape
}

#[test]
fn lenet5_classic_has_lecuns_numbers() {
    assert_eq!(<LeNet5Classic>::PARAMETERS, 61_706);
    let l = LeNet5Classic::LAYERS;
    assert_eq!(shape(l, "conv1"), &[6, 28, 28]);
    assert_eq!(shape(l, "avgpool1"), &[6, 14, 14]);
    assert_eq!(shape(l, "conv2"), &[16, 10, 10]);
    assert_eq!(shape(l, "conv3"), &[120, 1, 1]);
}

#[test]
fn alexnet_first_layer_has_the_papers_famous_numbers() {
    let conv1 = AlexNetConv1::LAYERS[0];
    assert_eq!(conv1.output_shape, &[96, 55, 55]);
    assert_eq!(conv1.output_shape.iter().product::<usize>(), 290_400);
    assert_eq!(conv1.parameters, 34_944);
}

#[test]
fn alexnet_matches_torchvision() {
    assert_eq!(<AlexNet>::PARAMETERS, 61_100_840);
    let l = AlexNet::LAYERS;
    assert_eq!(shape(l, "conv1"), &[64, 55, 55]);
    assert_eq!(shape(l, "maxpool1"), &[64, 27, 27]);
    assert_eq!(shape(l, "maxpool2"), &[192, 13, 13]);
    assert_eq!(shape(l, "maxpool3"), &[256, 6, 6]);
    assert_eq!(shape(l, "flatten1"), &[9216]);
}

#[test]
fn zfnet_has_the_papers_sizes() {
    let l = ZfNet::LAYERS;
    assert_eq!(shape(l, "conv1"), &[96, 110, 110]);
    assert_eq!(shape(l, "maxpool1"), &[96, 55, 55]);
    assert_eq!(shape(l, "conv2"), &[256, 26, 26]);
    assert_eq!(shape(l, "maxpool2"), &[256, 13, 13]);
    assert_eq!(shape(l, "conv3"), &[384, 13, 13]);
    assert_eq!(shape(l, "conv4"), &[384, 13, 13]);
    assert_eq!(shape(l, "conv5"), &[256, 13, 13]);
    assert_eq!(shape(l, "maxpool3"), &[256, 6, 6]);
    let conv = |i: usize, o: usize, k: usize| o * i * k * k + o;
    let expected = conv(3, 96, 7)
        + conv(96, 256, 5)
        + conv(256, 384, 3)
        + conv(384, 384, 3)
        + conv(384, 256, 3)
        + (9216 * 4096 + 4096)
        + (4096 * 4096 + 4096)
        + (4096 * 1000 + 1000);
    assert_eq!(<ZfNet>::PARAMETERS, expected);
}

#[test]
fn vgg16_matches_torchvision() {
    assert_eq!(<Vgg16>::PARAMETERS, 138_357_544);
    let l = Vgg16::LAYERS;
    let pools: Vec<&[usize]> = l
        .iter()
        .filter(|x| x.name.starts_with("maxpool"))
        .map(|x| x.output_shape)
        .collect();
    assert_eq!(
        pools,
        [
            &[64, 112, 112][..],
            &[128, 56, 56],
            &[256, 28, 28],
            &[512, 14, 14],
            &[512, 7, 7]
        ]
    );
    assert_eq!(shape(l, "flatten1"), &[25088]);
}

#[test]
fn resnet18_matches_torchvision_stage_by_stage() {
    assert_eq!(<ResNet18>::PARAMETERS, 11_689_512);
    let l = ResNet18::LAYERS;
    // torchvision: conv1 [64, 112, 112], maxpool [64, 56, 56], then layer1..4 end in the
    // second, third, fourth and fifth call of `Basic` (`BasicDown` calls count apart).
    assert_eq!(shape(l, "conv1"), &[64, 112, 112]);
    assert_eq!(shape(l, "maxpool1"), &[64, 56, 56]);
    assert_eq!(shape(l, "basic2_relu2"), &[64, 56, 56]);
    assert_eq!(shape(l, "basic_down1_add1"), &[128, 28, 28]);
    assert_eq!(shape(l, "basic3_relu2"), &[128, 28, 28]);
    assert_eq!(shape(l, "basic4_relu2"), &[256, 14, 14]);
    assert_eq!(shape(l, "basic5_relu2"), &[512, 7, 7]);
    assert_eq!(shape(l, "global_avgpool1"), &[512]);
    assert_eq!(ResNet18::OUTPUT_SHAPE, &[1000]);
    // The same net on 64×64: the same parameters, smaller maps.
    assert_eq!(<ResNet18At64>::PARAMETERS, 11_689_512);
    assert_eq!(shape(ResNet18At64::LAYERS, "basic5_relu2"), &[512, 2, 2]);
}

#[test]
fn resnet50_matches_torchvision() {
    assert_eq!(<ResNet50>::PARAMETERS, 25_557_032);
    let l = ResNet50::LAYERS;
    assert_eq!(shape(l, "bottleneck_down1_add1"), &[256, 56, 56]);
    assert_eq!(shape(l, "bottleneck_down2_add1"), &[512, 28, 28]);
    assert_eq!(shape(l, "bottleneck_down3_add1"), &[1024, 14, 14]);
    assert_eq!(shape(l, "bottleneck_down4_add1"), &[2048, 7, 7]);
    // 3 + 4 + 6 + 3 bottlenecks.
    let adds = l.iter().filter(|x| x.kind == "add").count();
    assert_eq!(adds, 16);
}

#[test]
fn googlenet_matches_torchvision() {
    assert_eq!(<GoogLeNet>::PARAMETERS, 6_624_904);
    let l = GoogLeNet::LAYERS;
    // The Inception modules' outputs (channels summed by the macro), as in the paper's table 1.
    let concats: Vec<&[usize]> = l
        .iter()
        .filter(|x| x.kind == "concat")
        .map(|x| x.output_shape)
        .collect();
    assert_eq!(
        concats,
        [
            &[256, 28, 28][..],
            &[480, 28, 28],
            &[512, 14, 14],
            &[512, 14, 14],
            &[512, 14, 14],
            &[528, 14, 14],
            &[832, 14, 14],
            &[832, 7, 7],
            &[1024, 7, 7],
        ]
    );
}

#[test]
fn googlenet_with_auxiliary_heads_matches_torchvision() {
    assert_eq!(<GoogLeNetAux>::PARAMETERS, 13_004_888);
    let l = GoogLeNetAux::LAYERS;
    // Each head pools inception 4a's and 4d's 14×14 maps to 4×4 and classifies.
    assert_eq!(shape(l, "aux_head1_avgpool1"), &[512, 4, 4]);
    assert_eq!(shape(l, "aux_head2_avgpool1"), &[528, 4, 4]);
    assert_eq!(shape(l, "aux_head1_flatten1"), &[2048]);
    assert_eq!(shape(l, "aux1"), &[1000]);
    assert_eq!(shape(l, "aux2"), &[1000]);
    // The main chain is GoogLeNet's: the heads only add parameters (3,188,968 + 3,191,016).
    assert_eq!(<GoogLeNetAux>::OUTPUT_SHAPE, &[1000]);
    assert_eq!(
        <GoogLeNetAux>::PARAMETERS - <GoogLeNet>::PARAMETERS,
        3_188_968 + 3_191_016
    );
}

#[test]
fn alexnet_original_has_the_papers_towers() {
    // The paper's count: conv2, conv4 and conv5 see half the channels (two groups).
    assert_eq!(<AlexNetOriginal>::PARAMETERS, 60_965_224);
    let l = AlexNetOriginal::LAYERS;
    assert_eq!(shape(l, "conv1"), &[96, 55, 55]);
    assert_eq!(shape(l, "maxpool1"), &[96, 27, 27]);
    assert_eq!(shape(l, "conv2"), &[256, 27, 27]);
    assert_eq!(shape(l, "maxpool3"), &[256, 6, 6]);
    let parameters = |name: &str| l.iter().find(|x| x.name == name).unwrap().parameters;
    assert_eq!(parameters("conv2"), 256 * 48 * 25 + 256);
    assert_eq!(parameters("conv3"), 384 * 256 * 9 + 384);
    assert_eq!(parameters("conv4"), 384 * 192 * 9 + 384);
}

#[test]
fn resnet18_runs_forward_on_one_image() {
    let dev = Cpu::default();
    let net = ResNet18::<f32, Cpu>::new(&dev);
    let image: Tensor<Rank3<3, 224, 224>, f32, Cpu> = dev.sample_normal();
    let logits = net.forward(image);
    assert!(logits.as_vec().iter().all(|v| v.is_finite()));
}
