//! A user crate that denies `missing_docs` must be able to declare any network: every public
//! item the macro generates (structs, fields, constants, methods, trait impls' helpers) carries
//! documentation. This file compiling is most of the test.

#![deny(missing_docs)]

/// Networks of every kind the language has, declared where undocumented public items are errors.
pub mod declared {
    use typednet::prelude::*;

    network! {
        /// Convolution, pooling, batch norm, dropout and the element-wise layers.
        pub struct Convolutional: [1, 8, 6]
            -> conv(2, 3, pad = 1) -> batchnorm -> relu -> maxpool(2) -> avgpool(1)
            -> conv(4, 3, pad = 1, groups = 2) -> lrn(3) -> leaky_relu(0.2)
            -> flatten -> dropout(0.25) -> linear(5) -> softmax;

        block Res(c) = residual(conv(c, 3, pad = 1, bias = false) -> batchnorm) -> relu;

        /// Blocks, branches and heads.
        pub struct Branched: [2, 6, 6]
            -> Res(2)
            -> aux: head(global_avgpool -> linear(3))
            -> concat(conv(2, 1), maxpool(3, stride = 1, pad = 1))
            -> locally_connected(2, 3) -> flatten -> linear(2);

        /// Recurrent layers of every kind.
        pub struct Recurrent: [6, 5]
            -> lstm(4) -> gru(3) -> torch_gru(3) -> peephole_lstm(3) -> lstm_no_forget(3)
            -> rnn(2, bidirectional = true) -> mgu(2, output = last) -> linear(3);

        /// A decoder from two numbers back to the image.
        pub struct Decoder: [5] -> linear(48) -> reshape(1, 8, 6) -> conv_transpose(1, 1) -> sigmoid;

        /// A composition.
        pub struct Chained = Convolutional -> Decoder;

        /// An autoencoder.
        #[autoencoder]
        pub struct Auto = Convolutional -> Decoder;

        /// A generator: noise → a vector.
        pub struct Generator: [4] -> linear(8) -> relu -> linear(6);
        /// A discriminator: a vector → one logit.
        pub struct Discriminator: [6] -> linear(8) -> leaky_relu(0.2) -> linear(1);
        /// A GAN.
        #[gan]
        pub struct Adversarial = Generator -> Discriminator;

        /// A conditional generator: noise and a 2-way condition.
        pub struct CondGenerator: [6] -> linear(6);
        /// A conditional discriminator: a vector and its condition.
        pub struct CondDiscriminator: [8] -> linear(1);
        /// A conditional GAN.
        #[gan(condition = 2)]
        pub struct Conditional = CondGenerator -> CondDiscriminator;
    }
}

#[test]
fn documented_networks_build_and_run() {
    use typednet::prelude::*;
    let dev = Cpu::default();
    let net = declared::Chained::<f32, Cpu>::new(&dev);
    let y = net.forward(dev.zeros::<Rank4<2, 1, 8, 6>>());
    assert_eq!(y.array().len(), 2);
    let recurrent = declared::Recurrent::<f32, Cpu>::new(&dev);
    let y = recurrent.forward(dev.zeros::<Rank3<2, 6, 5>>());
    assert_eq!(y.array().len(), 2);
}
