//! The generated code must mean the same whatever the user's scope holds: it names everything by
//! absolute path. Here the prelude is switched off and common names are shadowed.

#![no_implicit_prelude]
#![allow(dead_code, non_camel_case_types)]

mod shadowing {
    // Names a user might well define themselves.
    pub struct Result;
    pub struct Ok;
    pub struct Err;
    pub struct Option;
    pub struct Some;
    pub struct Tensor;
    pub struct Module;
    pub struct Box;
    pub struct String;
    pub struct Vec;
    pub struct f32;
    pub struct usize;
    pub struct E;
    pub struct D;
    pub struct B;
    pub struct T;
    pub mod dfdx {}
    pub mod core {}
    pub mod std {}

    ::typednet::network! {
        /// Every layer kind, declared where the usual names mean something else.
        pub struct Shadowed: [1, 8, 6]
            -> conv(2, 3, pad = 1) -> relu -> maxpool(2) -> avgpool(1)
            -> conv(2, 2, 1, pad = same) -> sigmoid -> tanh
            -> flatten -> dropout(0.25) -> linear(24, 5) -> softmax -> log_softmax
            -> reshape(5) -> linear(2);

        block Res(c) = residual(conv(c, 3, pad = 1, bias = false) -> batchnorm) -> relu;

        /// Branches, blocks, batch norm and padded pooling in the same shadowed scope.
        pub struct Branched: [2, 6, 6]
            -> Res(2)
            -> residual(conv(4, 1, stride = 2), shortcut = conv(4, 1, stride = 2))
            -> concat(conv(2, 1), maxpool(3, stride = 1, pad = 1))
            -> global_avgpool -> batchnorm -> concat(linear(3), linear(2));

        /// Grouped and locally-connected convolutions and heads (with batch norm, so the
        /// `&mut self` variant is generated too).
        pub struct Headed: [4, 6, 6]
            -> conv(4, 3, pad = 1, groups = 2) -> batchnorm
            -> aux: head(global_avgpool -> linear(3))
            -> locally_connected(2, 3) -> flatten -> linear(2);

        pub struct Second: [2] -> linear(2);
        pub struct Both = Shadowed -> Second;

        pub struct Back: [2] -> linear(48) -> reshape(1, 8, 6);
        /// An autoencoder's `encode`, `decode` and `reconstruct` in the same scope.
        #[autoencoder]
        pub struct Round = Shadowed -> Back;
    }
}

#[test]
fn generated_code_ignores_shadowed_names() {
    use ::typednet::dfdx::prelude::{Cpu, Rank4, ZerosTensor};
    let dev: Cpu = ::core::default::Default::default();
    let net = shadowing::Both::<::core::primitive::f32, Cpu>::new(&dev);
    let y = net.forward(dev.zeros::<Rank4<3, 1, 8, 6>>());
    let y: ::std::vec::Vec<[::core::primitive::f32; 2]> =
        ::typednet::dfdx::tensor::AsArray::array(&y).to_vec();
    ::std::assert_eq!(y.len(), 3);
    ::std::assert_eq!(
        <shadowing::Shadowed>::PARAMETERS,
        (2 * 9 + 2) + (2 * 2 + 2) + (24 * 5 + 5) + (5 * 2 + 2)
    );
}

#[test]
fn generated_branches_and_batch_norm_ignore_shadowed_names() {
    use ::typednet::dfdx::prelude::{Cpu, Rank4, Trace, ZerosTensor};
    let dev: Cpu = ::core::default::Default::default();
    let mut net = shadowing::Branched::<::core::primitive::f32, Cpu>::new(&dev);
    let x = dev.zeros::<Rank4<3, 2, 6, 6>>();
    let y = net.forward_mut(x.leaky_trace());
    let y: ::std::vec::Vec<[::core::primitive::f32; 5]> =
        ::typednet::dfdx::tensor::AsArray::array(&y).to_vec();
    ::std::assert_eq!(y.len(), 3);
    let _ = net.forward(x);
}

#[test]
fn generated_groups_local_layers_and_heads_ignore_shadowed_names() {
    use ::typednet::dfdx::prelude::{Cpu, Rank4, Trace, ZerosTensor};
    let dev: Cpu = ::core::default::Default::default();
    let mut net = shadowing::Headed::<::core::primitive::f32, Cpu>::new(&dev);
    let x = dev.zeros::<Rank4<3, 4, 6, 6>>();
    let (y, (aux,)) = net.try_forward_mut_with_heads(x.leaky_trace()).unwrap();
    ::std::assert_eq!(::typednet::dfdx::tensor::AsArray::array(&y).len(), 3);
    ::std::assert_eq!(::typednet::dfdx::tensor::AsArray::array(&aux).len(), 3);
    let (y, (aux,)) = net.try_forward_with_heads(x).unwrap();
    let _ = (y, aux);
    // conv 4·2·9 + 4; batch norm 2·4; head 4·3 + 3; locally connected 4·4·(4·9 + 1)·2; 32·2 + 2.
    ::std::assert_eq!(
        <shadowing::Headed>::PARAMETERS,
        (4 * 2 * 9 + 4) + 8 + 15 + (16 * 37 * 2) + 66
    );
}

#[test]
fn generated_autoencoder_methods_ignore_shadowed_names() {
    use ::typednet::dfdx::prelude::{Cpu, Rank4, ZerosTensor};
    let dev: Cpu = ::core::default::Default::default();
    let net = shadowing::Round::<::core::primitive::f32, Cpu>::new(&dev);
    let x = dev.zeros::<Rank4<3, 1, 8, 6>>();
    let code = net.encode(::core::clone::Clone::clone(&x));
    let back = net.decode(code);
    let again = net.reconstruct(x);
    ::std::assert_eq!(
        ::typednet::dfdx::tensor::AsArray::array(&back),
        ::typednet::dfdx::tensor::AsArray::array(&again)
    );
}
