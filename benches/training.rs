//! Full training steps and inference of networks declared with `network!`, on the CPU, with
//! random inputs and integer labels (issue #3, part 4; the MLP is issue #2's).
//!
//! A training step is what a training loop does per mini-batch: forward with a tape,
//! cross-entropy from logits against integer labels (`typednet::loss::cross_entropy`, PyTorch's
//! `F.cross_entropy`), backward, an Adam update (lr 1e-3) and zeroing the gradients, whose
//! buffers are reused. Inference is a forward pass without a tape.
//!
//! Every case is one line of [`benches`]; `benches/compare/pytorch_benches.py` holds the PyTorch
//! twin of each under the same name, and `benches/compare/run.sh training` runs both side by side.
//! `train/mlp_by_hand_dfdx_b128` is the MLP written with dfdx's own modules: what `network!`
//! costs over dfdx (its PyTorch twin is the same MLP).
//!
//! `cargo bench --bench training` (all), `cargo bench --bench training -- lenet5` (a subset).
//! Threads: rayon's default, `RAYON_NUM_THREADS` to set it.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode};
use dfdx::nn::{Module, ModuleMut, ZeroGrads};
use dfdx::optim::Optimizer;
use dfdx::shapes::ConstShape;
use dfdx::tensor::OwnedTape;
use typednet::loss::cross_entropy;
use typednet::optim::{Adam, AdamConfig};
use typednet::prelude::*;

network! {
    /// The MLP of the main job (issue #2).
    pub struct Mlp: [784] -> linear(256) -> relu -> linear(128) -> relu -> linear(10);

    /// LeNet-5, as in the CNN main job.
    pub struct LeNet5: [1, 28, 28]
        -> conv(6, 5, pad = 2) -> relu -> maxpool(2)
        -> conv(16, 5) -> relu -> maxpool(2)
        -> flatten
        -> linear(120) -> relu
        -> linear(84) -> relu
        -> linear(10);

    /// A small VGG-style net: two blocks of two 3×3 convolutions and a pool, then two layers.
    pub struct VggSmall: [3, 32, 32]
        -> [conv(32, 3, pad = 1) -> relu] * 2 -> maxpool(2)
        -> [conv(64, 3, pad = 1) -> relu] * 2 -> maxpool(2)
        -> flatten
        -> linear(256) -> relu
        -> linear(10);
}

// The same parameter counts as the PyTorch twins in benches/compare/pytorch_benches.py
// (`sum(p.numel() for p in net.parameters())`): both sides time the same networks.
const _: () = assert!(<Mlp>::PARAMETERS == 235_146);
const _: () = assert!(<LeNet5>::PARAMETERS == 61_706);
const _: () = assert!(<VggSmall>::PARAMETERS == 1_116_970);

/// Many-to-one recurrent classifiers (issue #6, part 6): a cell over 32 steps of 64 features,
/// a linear layer on its last hidden state. PyTorch's twins use the fused `nn.LSTM`/`nn.GRU`.
macro_rules! many_to_one {
    ($name:ident, $cell:ident, |$state:ident| $hidden:expr) => {
        #[derive(Debug, Clone)]
        struct $name<E: Dtype, D: dfdx::tensor::Storage<E>> {
            cell: typednet::recurrent::$cell<64, 128, E, D>,
            head: dfdx::nn::modules::Linear<128, 10, E, D>,
        }

        impl<E: typednet::Element, D: dfdx::tensor_ops::Device<E>> TensorCollection<E, D>
            for $name<E, D>
        {
            type To<E2: Dtype, D2: dfdx::tensor_ops::Device<E2>> = $name<E2, D2>;

            fn iter_tensors<V: dfdx::nn::modules::ModuleVisitor<Self, E, D>>(
                visitor: &mut V,
            ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
                visitor.visit_fields(
                    (
                        Self::module("cell", |s| &s.cell, |s| &mut s.cell),
                        Self::module("head", |s| &s.head, |s| &mut s.head),
                    ),
                    |(cell, head)| $name { cell, head },
                )
            }
        }

        impl<B: Dim, S: Dim, T: dfdx::tensor::Tape<f32, Cpu>>
            Module<Tensor<(B, S, Const<64>), f32, Cpu, T>> for $name<f32, Cpu>
        {
            type Output = Tensor<(B, Const<10>), f32, Cpu, T>;
            type Error = <Cpu as dfdx::tensor::HasErr>::Err;

            fn try_forward(
                &self,
                x: Tensor<(B, S, Const<64>), f32, Cpu, T>,
            ) -> Result<Self::Output, Self::Error> {
                let $state = typednet::recurrent::try_run_last(&self.cell, x, None)?;
                self.head.try_forward($hidden)
            }
        }

        impl<E: Dtype, D: dfdx::tensor::Storage<E>> dfdx::nn::NonMutableModule for $name<E, D> {}
    };
}

many_to_one!(LstmManyToOne, LstmCell, |state| state.h);
many_to_one!(GruManyToOne, TorchGruCell, |state| state);

/// The MLP with dfdx's own modules.
type MlpByHand = (
    dfdx::nn::builders::Linear<784, 256>,
    dfdx::nn::builders::ReLU,
    dfdx::nn::builders::Linear<256, 128>,
    dfdx::nn::builders::ReLU,
    dfdx::nn::builders::Linear<128, 10>,
);

type Traced = OwnedTape<f32, Cpu>;

/// `train/{name}`: the training step of `net` on a batch of `B` random inputs of shape `S`
/// (`(Const<B>, …)`) with `K` classes; labels `0, 7, 4, 1, …` (i·7 mod K).
fn training_step<M, S, const B: usize, const K: usize>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    mut net: M,
    dev: &Cpu,
) where
    S: ConstShape,
    M: TensorCollection<f32, Cpu>
        + ModuleMut<
            Tensor<S, f32, Cpu, Traced>,
            Output = Tensor<(Const<B>, Const<K>), f32, Cpu, Traced>,
        >,
{
    let x: Tensor<S, f32, Cpu> = dev.sample_normal();
    let labels: Vec<usize> = (0..B).map(|i| i * 7 % K).collect();
    // An Option so the closure can move the gradients into the tape and take them back.
    let mut grads = Some(net.alloc_grads());
    let mut opt = Adam::new(
        &net,
        AdamConfig {
            lr: 1e-3,
            ..Default::default()
        },
    );
    group.bench_function(name, |b| {
        b.iter(|| {
            // The training forward (batch norm updates its running statistics), as the
            // Trainer runs it and as PyTorch's `train()` mode does.
            let logits = net.forward_mut(x.clone().traced_input(grads.take().unwrap()));
            let loss = cross_entropy(logits, &labels);
            let mut g = loss.backward();
            opt.update(&mut net, &g).unwrap();
            net.zero_grads(&mut g);
            grads = Some(g);
        })
    });
}

/// `infer/{name}`: the forward pass of `net` without a tape on a batch of random inputs.
fn inference<M, S>(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, net: M, dev: &Cpu)
where
    S: ConstShape,
    M: Module<Tensor<S, f32, Cpu>>,
{
    let x: Tensor<S, f32, Cpu> = dev.sample_normal();
    group.bench_function(name, |b| b.iter(|| black_box(net.forward(x.clone()))));
}

/// The cases. Adding one: a line here and an entry of the same name in
/// `benches/compare/pytorch_benches.py`.
fn benches(c: &mut Criterion) {
    let dev = Cpu::seed_from_u64(0);

    let mut train = c.benchmark_group("train");
    train.sampling_mode(SamplingMode::Flat);
    training_step::<_, Rank2<128, 784>, 128, 10>(
        &mut train,
        "mlp_784-256-128-10_b128",
        Mlp::<f32, Cpu>::new(&dev),
        &dev,
    );
    training_step::<_, Rank2<128, 784>, 128, 10>(
        &mut train,
        "mlp_by_hand_dfdx_b128",
        dev.build_module::<MlpByHand, f32>(),
        &dev,
    );
    training_step::<_, Rank4<64, 1, 28, 28>, 64, 10>(
        &mut train,
        "lenet5_b64",
        LeNet5::<f32, Cpu>::new(&dev),
        &dev,
    );
    training_step::<_, Rank4<32, 3, 32, 32>, 32, 10>(
        &mut train,
        "vgg_small_b32",
        VggSmall::<f32, Cpu>::new(&dev),
        &dev,
    );
    training_step::<_, Rank4<8, 3, 64, 64>, 8, 1000>(
        &mut train,
        "resnet18_64x64_b8",
        zoo::ResNet18At64::<f32, Cpu>::new(&dev),
        &dev,
    );
    training_step::<_, Rank3<32, 32, 64>, 32, 10>(
        &mut train,
        "lstm_t32_i64_h128_b32",
        <LstmManyToOne<f32, Cpu> as dfdx::nn::BuildModule<Cpu, f32>>::build(&dev),
        &dev,
    );
    training_step::<_, Rank3<32, 32, 64>, 32, 10>(
        &mut train,
        "gru_t32_i64_h128_b32",
        <GruManyToOne<f32, Cpu> as dfdx::nn::BuildModule<Cpu, f32>>::build(&dev),
        &dev,
    );
    train.finish();

    let mut infer = c.benchmark_group("infer");
    infer.sampling_mode(SamplingMode::Flat);
    inference::<_, Rank2<128, 784>>(
        &mut infer,
        "mlp_784-256-128-10_b128",
        Mlp::<f32, Cpu>::new(&dev),
        &dev,
    );
    inference::<_, Rank2<128, 784>>(
        &mut infer,
        "mlp_by_hand_dfdx_b128",
        dev.build_module::<MlpByHand, f32>(),
        &dev,
    );
    inference::<_, Rank4<64, 1, 28, 28>>(
        &mut infer,
        "lenet5_b64",
        LeNet5::<f32, Cpu>::new(&dev),
        &dev,
    );
    inference::<_, Rank4<32, 3, 32, 32>>(
        &mut infer,
        "vgg_small_b32",
        VggSmall::<f32, Cpu>::new(&dev),
        &dev,
    );
    inference::<_, Rank4<1, 3, 224, 224>>(
        &mut infer,
        "resnet18_224x224_b1",
        zoo::ResNet18::<f32, Cpu>::new(&dev),
        &dev,
    );
    inference::<_, Rank4<1, 3, 227, 227>>(
        &mut infer,
        "alexnet_conv1_227x227_b1",
        zoo::AlexNetConv1::<f32, Cpu>::new(&dev),
        &dev,
    );
    infer.finish();
}

/// The zoo's declarations (`examples/zoo/nets.rs`), for the cases of issue #5.
#[allow(dead_code)]
mod zoo {
    use typednet::prelude::*;

    include!("../examples/zoo/nets.rs");
}

criterion_group! {
    name = training;
    // Few samples with flat sampling keep the slow cases short; the command line overrides
    // these (`--sample-size`, `--warm-up-time`, `--measurement-time`).
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(training);
