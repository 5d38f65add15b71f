// The zoo of the lecture notes, each with its paper's input size, declared with `network!`.
// Included by `examples/zoo_summary.rs` and `tests/zoo.rs` (`include!`), so the declarations
// that are tested are the ones that are shown.
//
// Where torchvision has the architecture, the declaration follows torchvision's (and its
// parameter count is torchvision's); differences from the papers are noted at each net.

network! {
    /// LeNet-5 (LeCun et al., 1998): 32×32 digits, tanh, average pooling ("subsampling"), C5 as
    /// a 5×5 convolution. 61,706 parameters.
    pub struct LeNet5Classic: [1, 32, 32]
        -> conv(6, 5) -> tanh -> avgpool(2)
        -> conv(16, 5) -> tanh -> avgpool(2)
        -> conv(120, 5) -> tanh
        -> flatten -> linear(84) -> tanh -> linear(10);

    /// AlexNet's first layer as in the paper (Krizhevsky et al., 2012) on 227×227: 96 filters
    /// of 11×11 at stride 4 give 55×55×96 = 290,400 neurons with 34,944 parameters.
    pub struct AlexNetConv1: [3, 227, 227] -> conv(96, 11, stride = 4) -> relu;

    /// AlexNet as torchvision's `alexnet` (one tower: 64-192-384-256-256 filters, no local
    /// response normalisation, no groups; its adaptive 6×6 average pooling is the identity at
    /// 224×224 and is left out). 61,100,840 parameters.
    pub struct AlexNet: [3, 224, 224]
        -> conv(64, 11, stride = 4, pad = 2) -> relu -> maxpool(3, stride = 2)
        -> conv(192, 5, pad = 2) -> relu -> maxpool(3, stride = 2)
        -> conv(384, 3, pad = 1) -> relu
        -> conv(256, 3, pad = 1) -> relu
        -> conv(256, 3, pad = 1) -> relu -> maxpool(3, stride = 2)
        -> flatten
        -> dropout(0.5) -> linear(4096) -> relu
        -> dropout(0.5) -> linear(4096) -> relu
        -> linear(1000);

    /// ZFNet (Zeiler & Fergus, 2013): AlexNet with a 7×7 stride-2 first layer. Their sizes:
    /// 110×110×96 → 55×55×96 → 26×26×256 → 13×13×256 → 13×13×384 → 13×13×384 → 13×13×256 →
    /// 6×6×256. The paper's contrast normalisation across feature maps after the first two
    /// layers is AlexNet's local response normalisation here (n = 5, α = 10⁻⁴, β = 0.75, k = 2).
    pub struct ZfNet: [3, 224, 224]
        -> conv(96, 7, stride = 2, pad = 1) -> relu -> maxpool(3, stride = 2, pad = 1)
        -> lrn(5, alpha = 0.0001, beta = 0.75, k = 2.0)
        -> conv(256, 5, stride = 2) -> relu -> maxpool(3, stride = 2, pad = 1)
        -> lrn(5, alpha = 0.0001, beta = 0.75, k = 2.0)
        -> conv(384, 3, pad = 1) -> relu
        -> conv(384, 3, pad = 1) -> relu
        -> conv(256, 3, pad = 1) -> relu -> maxpool(3, stride = 2)
        -> flatten
        -> dropout(0.5) -> linear(4096) -> relu
        -> dropout(0.5) -> linear(4096) -> relu
        -> linear(1000);

    /// VGG-16 (Simonyan & Zisserman, 2014), configuration D, as torchvision's `vgg16`.
    /// 138,357,544 parameters.
    pub struct Vgg16: [3, 224, 224]
        -> [conv(64, 3, pad = 1) -> relu] * 2 -> maxpool(2)
        -> [conv(128, 3, pad = 1) -> relu] * 2 -> maxpool(2)
        -> [conv(256, 3, pad = 1) -> relu] * 3 -> maxpool(2)
        -> [conv(512, 3, pad = 1) -> relu] * 3 -> maxpool(2)
        -> [conv(512, 3, pad = 1) -> relu] * 3 -> maxpool(2)
        -> flatten
        -> linear(4096) -> relu -> dropout(0.5)
        -> linear(4096) -> relu -> dropout(0.5)
        -> linear(1000);

    /// ResNet's basic block (He et al., 2015), keeping the shape.
    block Basic(c) = residual(
        conv(c, 3, pad = 1, bias = false) -> batchnorm -> relu
            -> conv(c, 3, pad = 1, bias = false) -> batchnorm
    ) -> relu;

    /// The basic block that halves the size and projects the shortcut.
    block BasicDown(c) = residual(
        conv(c, 3, stride = 2, pad = 1, bias = false) -> batchnorm -> relu
            -> conv(c, 3, pad = 1, bias = false) -> batchnorm,
        shortcut = conv(c, 1, stride = 2, bias = false) -> batchnorm
    ) -> relu;

    /// ResNet-18 as torchvision's `resnet18`. 11,689,512 parameters.
    pub struct ResNet18: [3, 224, 224]
        -> conv(64, 7, stride = 2, pad = 3, bias = false) -> batchnorm -> relu
        -> maxpool(3, stride = 2, pad = 1)
        -> Basic(64) -> Basic(64)
        -> BasicDown(128) -> Basic(128)
        -> BasicDown(256) -> Basic(256)
        -> BasicDown(512) -> Basic(512)
        -> global_avgpool -> linear(1000);

    /// ResNet-18 on 64×64 inputs (Tiny ImageNet's size): the same layers, so the same
    /// 11,689,512 parameters (global average pooling makes the head independent of the size);
    /// the stages give 32, 16, 8, 4 and 2 pixels a side.
    pub struct ResNet18At64: [3, 64, 64]
        -> conv(64, 7, stride = 2, pad = 3, bias = false) -> batchnorm -> relu
        -> maxpool(3, stride = 2, pad = 1)
        -> Basic(64) -> Basic(64)
        -> BasicDown(128) -> Basic(128)
        -> BasicDown(256) -> Basic(256)
        -> BasicDown(512) -> Basic(512)
        -> global_avgpool -> linear(1000);

    /// ResNet's bottleneck block: 1×1 down to `w` channels, 3×3, 1×1 up to `c`.
    block Bottleneck(w, c) = residual(
        conv(w, 1, bias = false) -> batchnorm -> relu
            -> conv(w, 3, pad = 1, bias = false) -> batchnorm -> relu
            -> conv(c, 1, bias = false) -> batchnorm
    ) -> relu;

    /// The bottleneck that opens a stage: stride `s` on the 3×3 (torchvision's "v1.5") and a
    /// projected shortcut.
    block BottleneckDown(w, c, s) = residual(
        conv(w, 1, bias = false) -> batchnorm -> relu
            -> conv(w, 3, stride = s, pad = 1, bias = false) -> batchnorm -> relu
            -> conv(c, 1, bias = false) -> batchnorm,
        shortcut = conv(c, 1, stride = s, bias = false) -> batchnorm
    ) -> relu;

    /// ResNet-50 as torchvision's `resnet50`. 25,557,032 parameters.
    pub struct ResNet50: [3, 224, 224]
        -> conv(64, 7, stride = 2, pad = 3, bias = false) -> batchnorm -> relu
        -> maxpool(3, stride = 2, pad = 1)
        -> BottleneckDown(64, 256, 1) -> [Bottleneck(64, 256)] * 2
        -> BottleneckDown(128, 512, 2) -> [Bottleneck(128, 512)] * 3
        -> BottleneckDown(256, 1024, 2) -> [Bottleneck(256, 1024)] * 5
        -> BottleneckDown(512, 2048, 2) -> [Bottleneck(512, 2048)] * 2
        -> global_avgpool -> linear(1000);

    /// torchvision's `BasicConv2d`: convolution, batch norm, ReLU.
    block BasicConv(c, k, p) = conv(c, k, pad = p, bias = false) -> batchnorm -> relu;

    /// An Inception module (Szegedy et al., 2014): four branches joined along channels. As in
    /// torchvision, the "5×5" branch uses a 3×3 convolution.
    block Inception(c1, r3, c3, r5, c5, pool) = concat(
        BasicConv(c1, 1, 0),
        BasicConv(r3, 1, 0) -> BasicConv(c3, 3, 1),
        BasicConv(r5, 1, 0) -> BasicConv(c5, 3, 1),
        maxpool(3, stride = 1, pad = 1) -> BasicConv(pool, 1, 0)
    );

    /// GoogLeNet (Inception v1) as torchvision's `googlenet(aux_logits=False)`. torchvision
    /// pools with `ceil_mode=True`; padding 1 gives the same sizes (112 → 56 → 28 → 14), and the
    /// last 2×2 pool halves 14 exactly. 6,624,904 parameters. With its auxiliary heads:
    /// [`GoogLeNetAux`].
    pub struct GoogLeNet: [3, 224, 224]
        -> conv(64, 7, stride = 2, pad = 3, bias = false) -> batchnorm -> relu
        -> maxpool(3, stride = 2, pad = 1)
        -> BasicConv(64, 1, 0) -> BasicConv(192, 3, 1)
        -> maxpool(3, stride = 2, pad = 1)
        -> Inception(64, 96, 128, 16, 32, 32)
        -> Inception(128, 128, 192, 32, 96, 64)
        -> maxpool(3, stride = 2, pad = 1)
        -> Inception(192, 96, 208, 16, 48, 64)
        -> Inception(160, 112, 224, 24, 64, 64)
        -> Inception(128, 128, 256, 24, 64, 64)
        -> Inception(112, 144, 288, 32, 64, 64)
        -> Inception(256, 160, 320, 32, 128, 128)
        -> maxpool(2, stride = 2)
        -> Inception(256, 160, 320, 32, 128, 128)
        -> Inception(384, 192, 384, 48, 128, 128)
        -> global_avgpool -> dropout(0.2) -> linear(1000);

    /// GoogLeNet's auxiliary classifier (Szegedy et al., 2014, section 5): 5×5 average pooling
    /// at stride 3 (14×14 → 4×4), a 1×1 convolution to 128 channels, a 1024-unit layer, 70%
    /// dropout, the classifier. torchvision pools adaptively to 4×4 instead, which averages
    /// slightly different windows with the same sizes and parameters.
    block AuxHead(classes) = avgpool(5, stride = 3) -> BasicConv(128, 1, 0)
        -> flatten -> linear(1024) -> relu -> dropout(0.7) -> linear(classes);

    /// GoogLeNet with its two auxiliary classifiers, after inception 4a and 4d, as torchvision's
    /// `googlenet(aux_logits=True)`: 13,004,888 parameters. `forward` gives the main logits
    /// (the heads are for training only); `try_forward_mut_with_heads` also returns both heads'
    /// logits, which the paper adds to the loss with weight 0.3.
    pub struct GoogLeNetAux: [3, 224, 224]
        -> conv(64, 7, stride = 2, pad = 3, bias = false) -> batchnorm -> relu
        -> maxpool(3, stride = 2, pad = 1)
        -> BasicConv(64, 1, 0) -> BasicConv(192, 3, 1)
        -> maxpool(3, stride = 2, pad = 1)
        -> Inception(64, 96, 128, 16, 32, 32)
        -> Inception(128, 128, 192, 32, 96, 64)
        -> maxpool(3, stride = 2, pad = 1)
        -> Inception(192, 96, 208, 16, 48, 64)
        -> aux1: head(AuxHead(1000))
        -> Inception(160, 112, 224, 24, 64, 64)
        -> Inception(128, 128, 256, 24, 64, 64)
        -> Inception(112, 144, 288, 32, 64, 64)
        -> aux2: head(AuxHead(1000))
        -> Inception(256, 160, 320, 32, 128, 128)
        -> maxpool(2, stride = 2)
        -> Inception(256, 160, 320, 32, 128, 128)
        -> Inception(384, 192, 384, 48, 128, 128)
        -> global_avgpool -> dropout(0.2) -> linear(1000);

    /// AlexNet as in the paper (Krizhevsky et al., 2012) on 227×227, with its two towers as
    /// grouped convolutions (conv2, conv4 and conv5 see only their own tower's channels; conv3
    /// and the fully connected layers see both) and local response normalisation after the
    /// first two layers (n = 5, α = 10⁻⁴, β = 0.75, k = 2). 60,965,224 parameters — the
    /// paper's "60 million"; torchvision's single-tower [`AlexNet`] has 61,100,840.
    pub struct AlexNetOriginal: [3, 227, 227]
        -> conv(96, 11, stride = 4) -> relu -> lrn(5, alpha = 0.0001, beta = 0.75, k = 2.0)
        -> maxpool(3, stride = 2)
        -> conv(256, 5, pad = 2, groups = 2) -> relu -> lrn(5, alpha = 0.0001, beta = 0.75, k = 2.0)
        -> maxpool(3, stride = 2)
        -> conv(384, 3, pad = 1) -> relu
        -> conv(384, 3, pad = 1, groups = 2) -> relu
        -> conv(256, 3, pad = 1, groups = 2) -> relu -> maxpool(3, stride = 2)
        -> flatten
        -> dropout(0.5) -> linear(4096) -> relu
        -> dropout(0.5) -> linear(4096) -> relu
        -> linear(1000);
}
