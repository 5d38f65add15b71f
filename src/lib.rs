//! # typednet
//!
//! Neural networks whose every tensor shape is checked when the program compiles.
//!
//! A network is declared once with [`network!`]; the macro infers the shape after every layer,
//! reports a layer that does not fit as a compile error that points at the argument at fault and
//! shows the arithmetic, and generates a struct of [dfdx] tensors with a typed `forward`:
//!
//! ```
//! use typednet::prelude::*;
//!
//! network! {
//!     /// A small classifier for 8×8 digits.
//!     pub struct Digits: [64] -> linear(32) -> relu -> linear(10);
//! }
//!
//! let dev = Cpu::default();
//! let net = Digits::<f32, Cpu>::new(&dev);
//! let logits: Tensor<Rank2<5, 10>, f32, Cpu> = net.forward(dev.zeros::<Rank2<5, 64>>());
//! assert_eq!(<Digits>::PARAMETERS, 64 * 32 + 32 + 32 * 10 + 10);
//! # let _ = logits;
//! ```
//!
//! See `docs/DESIGN.md` for how the pieces fit, and the [`network!`] documentation for the language.
//!
//! # A tour
//!
//! Every model family of the lecture notes is declared with [`network!`] and trained with dfdx's
//! tape and optimisers; the modules below add what the families need beyond a forward pass.
//! Each row names an example (`cargo run --release --example NAME`) that trains it on the MNIST
//! digits shipped in `data/`.
//!
//! | family | declared as | module | example |
//! |---|---|---|---|
//! | multilayer perceptron | `[784] -> linear(256) -> relu -> … -> linear(10)` | [`train`] (the mini-batch loop), [`loss`], [`regularize`] | `mnist_mlp`, `mnist_losses`, `vanishing_gradients` |
//! | convolutional network | `[1, 28, 28] -> conv(6, 5, pad = 2) -> relu -> maxpool(2) -> …` | [`ops`] (the kernels), [`layers`], [`shape`] (the arithmetic) | `mnist_lenet` (the main job), `mnist_resnet`, `zoo_summary` |
//! | the CNN zoo | LeNet-5, AlexNet, ZFNet, VGG-16, GoogLeNet, ResNet-18/50 with `block`, `residual`, `concat`, `head` | — | `zoo_summary` |
//! | recurrent network | `[_, F] -> lstm(h) -> linear(k)`; `rnn`, `lstm_no_forget`, `peephole_lstm`, `gru`, `torch_gru`, `mgu`; `bidirectional`, `output = last` | [`recurrent`] (cells, grid and graph topologies) | `mnist_lstm`, `adding_problem`, `reber`, `seq2seq_reverse` |
//! | autoencoders, PCA | `#[autoencoder] pub struct Ae = Encoder -> Decoder;` | [`autoencoder`] (sparse, contractive, denoising, [`autoencoder::variational`]), [`pca`] | `mnist_autoencoders`, `autoencoder_variants`, `autoencoder_uses`, `mnist_vae` |
//! | GANs | `#[gan] pub struct Gan = G -> D;`, `#[gan(condition = 10)]` | [`gan`] | `mnist_gan` |
//! | Boltzmann machines | weights as tensors, no `network!` (no feed-forward pass) | [`boltzmann`]: [`boltzmann::fully_visible`], [`boltzmann::latent`], [`boltzmann::rbm`], [`boltzmann::ais`], [`boltzmann::dbm`] | `mnist_rbm`, `mnist_dbm` |
//!
//! Around them: [`data`] loads IDX/MNIST files and batches them (seeded shuffles), [`plot`]
//! writes PNG figures, [`checkpoint`] saves and loads networks as safetensors files (and, with
//! the state of [`optim`]'s Adam and SGD, training that resumes exactly), [`gradcheck`] checks
//! any gradient against finite differences, and [`testing`] holds the device-generic test helpers.
//!
//! A training step is dfdx's: trace the input, run the network, take a loss, call `backward`,
//! and let an optimiser update every parameter the network's `TensorCollection` lists:
//!
//! ```
//! use typednet::dfdx::optim::{Adam, AdamConfig, Optimizer};
//! use typednet::prelude::*;
//!
//! network! {
//!     /// An XOR learner.
//!     pub struct Xor: [2] -> linear(8) -> tanh -> linear(2);
//! }
//!
//! let dev = Cpu::seed_from_u64(0);
//! let mut net = Xor::<f32, Cpu>::new(&dev);
//! let mut opt = Adam::new(&net, AdamConfig { lr: 0.05, ..Default::default() });
//! let x = dev.tensor([[0.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]);
//! let y = dev.tensor([[1.0f32, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]);
//! let mut grads = net.alloc_grads();
//! for _ in 0..300 {
//!     let logits = net.forward(x.trace(grads));
//!     let loss = cross_entropy_with_logits_loss(logits, y.clone());
//!     grads = loss.backward();
//!     opt.update(&mut net, &grads).unwrap();
//!     net.zero_grads(&mut grads);
//! }
//! let predicted: Vec<usize> = net.forward(x).array().iter()
//!     .map(|p| if p[1] > p[0] { 1 } else { 0 })
//!     .collect();
//! assert_eq!(predicted, [0, 1, 1, 0]);
//! ```

// dfdx tensor types with their shapes, dtype, device and tape are long by nature.
#![allow(clippy::type_complexity)]
#![warn(missing_docs)]

// Lets code inside this crate (unit tests, doctests) use the macro, which names `::typednet`.
extern crate self as typednet;

pub use dfdx;
pub use typenum;

/// Declares one or more networks whose shapes are checked at compile time.
///
/// # The language
///
/// ```text
/// network! {
///     /// documentation (shown with the shape table in rustdoc)
///     #[exact_fit]                      // optional: windows must tile their input exactly
///     pub struct Name: [input shape] -> layer -> layer -> … ;
///
///     pub struct Composed = First -> Second -> … ;   // networks declared elsewhere, chained
/// }
/// ```
///
/// Input shapes are `[F]` (a vector), `[T, F]` (a sequence of `T` steps of `F` features; `[_, F]`
/// when the length is known only at run time) or `[C, H, W]` (an image). Layers state only their
/// own hyperparameters; the macro infers every shape in between:
///
/// | layer | meaning | PyTorch |
/// |---|---|---|
/// | `linear(out)`, `linear(in, out)` | `y = x·Wᵀ + b`; on a sequence, at every step | `nn.Linear(in, out)` |
/// | `conv(out, k)`, `conv(in, out, k)`, options `stride = s`, `pad = p` or `pad = same`, `bias = false`, `groups = g`, `dilation = d`; `k`, `s`, `p`, `d` may be `(h, w)` pairs | 2-d convolution; with `g` groups each filter sees `in/g` channels (`g` divides `in` and `out`); with dilation `d` the taps are `d` apart, so the kernel spans `d·(k − 1) + 1` cells (not yet with groups or `bias = false`) | `nn.Conv2d(in, out, k, s, p, dilation=d, groups=g, bias=…)` |
/// | `locally_connected(out, k)`, options `stride`, `pad` | a convolution whose filters are not shared: one bank (and bias) per output position, `O_H·O_W·(in·k_h·k_w + 1)·out` parameters | Keras `LocallyConnected2D`; `nn.Unfold` + a matmul per position |
/// | `conv_transpose(out, k)`, `conv_transpose(in, out, k)`, options `stride`, `pad`, `output_pad` | transposed convolution, output `(w − 1)·s − 2p + k + q` | `nn.ConvTranspose2d(in, out, k, s, p, q)` |
/// | `maxpool(f)`, `maxpool(f, s)`, `maxpool(f, stride = s)`, option `pad = p` (at most `f/2`, padded with −∞) | max over each window (stride defaults to `f`) | `nn.MaxPool2d(f, s, p)` |
/// | `avgpool(f)`, `avgpool(f, s)`, option `pad = p` (padded with zeros, which count) | mean over each window | `nn.AvgPool2d(f, s, p)` |
/// | `batchnorm` | per channel (images) or feature (vectors): `(x − μ)/√(σ² + ε)·γ + β`, batch statistics while training, running ones in evaluation | `nn.BatchNorm2d(C)`, `nn.BatchNorm1d(F)` |
/// | `lrn(n)`, options `alpha`, `beta`, `k` (defaults 1e-4, 0.75, 1; `n` odd) | local response normalisation across channels: `x / (k + α/n·Σ x²)^β` | `nn.LocalResponseNorm(n, α, β, k)` |
/// | `global_avgpool` | `[C, H, W]` → `[C]`, the mean of each channel | `nn.AdaptiveAvgPool2d(1)` + `nn.Flatten()` |
/// | `flatten` | `[C, H, W]` → `[C·H·W]` (`[T, F]` → `[T·F]` for a fixed length) | `nn.Flatten()` |
/// | `reshape(d, …)` | any shape with the same number of elements | `x.reshape(B, d, …)` |
/// | `dropout(p)` | inverted dropout, active only while a gradient tape is attached | `nn.Dropout(p)` |
/// | `relu`, `sigmoid`, `tanh` | element-wise | `nn.ReLU()`, … |
/// | `leaky_relu(slope)`, `leaky_relu` (slope 0.01) | `max(0, x) + slope·min(0, x)` | `nn.LeakyReLU(slope)` |
/// | `softmax`, `log_softmax` | over features (channels for images; at every step of a sequence) | `nn.Softmax(dim=1)` (`dim=2` for `[B, T, F]`) |
///
/// # Recurrent layers
///
/// | layer | cell ([`recurrent`]) | PyTorch |
/// |---|---|---|
/// | `rnn(h)` | Elman: `h_t = tanh(W₁x_t + W₂h_{t−1} + b)` | `nn.RNN(F, h)` |
/// | `lstm_no_forget(h)` | the first LSTM, `C_t = C_{t−1} + i_t ∗ C̃_t` | — |
/// | `lstm(h)` | LSTM with forget gate | `nn.LSTM(F, h)` |
/// | `peephole_lstm(h)` | gates also see the cell state | — |
/// | `gru(h)` | the lecture notes' GRU (reset before the matmul) | — |
/// | `torch_gru(h)` | PyTorch's GRU (reset after the matmul) | `nn.GRU(F, h)` |
/// | `mgu(h)` | Minimal Gated Unit (one forget gate) | — |
///
/// Each reads a sequence `[T, F]` from the zero state and gives `[T, h]` (every step's hidden
/// output, as PyTorch's layers return), or `[h]` with `output = last` (the last state, e.g. for a
/// classifier head); `bidirectional = true` runs a second cell from the last step to the first
/// and joins the two along features: `[T, 2h]`, or `[2h]` with `output = last` (the forward cell's
/// last state and the backward cell's first). Stacking is chaining: `lstm(64) -> lstm(64)` (the
/// second one's input size is inferred). `rows` (`[C, H, W]` → `[H, C·W]`) and `columns`
/// (`[C, H, W]` → `[W, C·H]`) read an image as a sequence, so a CNN can feed a recurrent layer;
/// `reshape(T, F)` cuts a vector into steps. Gradients flow through time (BPTT) on dfdx's tape.
///
/// ```
/// use typednet::prelude::*;
///
/// network! {
///     /// MNIST read row by row: 28 steps of 28 pixels.
///     pub struct RowLstm: [1, 28, 28] -> rows -> lstm(128, output = last) -> linear(10);
///     /// One tag distribution per step, for sequences of any length.
///     pub struct Tagger: [_, 16] -> gru(32, bidirectional = true) -> linear(5) -> log_softmax;
/// }
///
/// let dev = Cpu::default();
/// let tagger = Tagger::<f32, Cpu>::new(&dev);
/// let words: Tensor<(usize, usize, Const<16>), f32, Cpu> = dev.sample_normal_like(&(4, 9, Const));
/// let tags = tagger.forward(words);
/// assert_eq!(tags.shape().concrete(), [4, 9, 5]);
/// assert_eq!(RowLstm::<f32, Cpu>::OUTPUT_SHAPE, &[10]);
/// ```
///
/// A layer may be named (`conv1: conv(6, 5)`); unnamed layers are named after their kind and
/// position (`conv1`, `conv2`, `linear1`, …). A group written once and repeated reads
/// `[conv(64, 3, pad = 1) -> relu] * 2`.
///
/// # Branches and blocks
///
/// | construct | meaning | checked at compile time | PyTorch |
/// |---|---|---|---|
/// | `residual(body)` | `body(x) + x` (identity shortcut) | the body gives back its input's shape | `y = f(x) + x` |
/// | `residual(body, shortcut = proj)` | `body(x) + proj(x)` (projection shortcut) | body and shortcut give the same shape | `y = f(x) + g(x)` |
/// | `concat(a, b, …)` | every branch on the same input, joined along channels (images) or features (vectors), in order | images agree on height and width; the macro adds up the channels | `torch.cat([a(x), b(x)], 1)` |
/// | `name: head(chain)` | a side output: the chain reads the value where the head stands, the main chain goes on from that value unchanged | the head's layers, like any; it stands on the main chain | GoogLeNet's auxiliary classifiers (`aux_logits`) |
///
/// `forward` skips the heads (PyTorch's eval mode); `try_forward_with_heads` returns the output
/// and every head's, in the order declared, for a training loss that adds them:
///
/// ```
/// use typednet::prelude::*;
///
/// network! {
///     pub struct WithAux: [1, 28, 28]
///         -> conv(8, 5) -> relu -> maxpool(2)
///         -> aux: head(global_avgpool -> linear(10))
///         -> conv(16, 5) -> relu -> maxpool(2) -> flatten -> linear(10);
/// }
///
/// let dev = Cpu::default();
/// let net = WithAux::<f32, Cpu>::new(&dev);
/// let images: Tensor<Rank4<4, 1, 28, 28>, f32, Cpu> = dev.sample_normal();
/// let (logits, (aux,)) = net.try_forward_with_heads(images.leaky_trace()).unwrap();
/// // The auxiliary loss joins the main one with weight 0.3, as in GoogLeNet.
/// let loss = logits.square().mean() + aux.square().mean() * 0.3;
/// let grads = loss.backward();
/// // The head's classifier (`linear1`, the first linear layer declared) received a gradient.
/// assert!(grads.get(&net.linear1.weight).as_vec().iter().any(|g| *g != 0.0));
/// ```
///
/// A block is a chain declared once with parameters and used by name, like a layer:
///
/// ```
/// use typednet::prelude::*;
///
/// network! {
///     /// ResNet's basic block; `s = 2` halves the size, so the shortcut projects.
///     block Basic(c, s) = residual(
///         conv(c, 3, stride = s, pad = 1) -> relu -> conv(c, 3, pad = 1),
///         shortcut = conv(c, 1, stride = s)
///     ) -> relu;
///
///     pub struct Small: [1, 28, 28]
///         -> conv(16, 3, pad = 1) -> relu
///         -> Basic(16, 1) -> Basic(32, 2) -> Basic(64, 2)
///         -> avgpool(7) -> flatten -> linear(10);
/// }
///
/// assert_eq!(Small::OUTPUT_SHAPE, &[10]);
/// // Each call has layers of its own, named after the block and the call.
/// assert!(Small::LAYERS.iter().any(|l| l.name == "basic3_conv3"));
/// ```
///
/// A block's parameters stand for whole numbers anywhere a layer takes one; a block may use
/// other blocks. A mistake inside a block is reported at the call, naming the layer
/// (`basic3_conv1: …`). The merge of a branch is a row of its own in `LAYERS` and `summary()`
/// (`add1`, `concat1`).
///
/// Output sizes follow PyTorch: `⌊(w − f + 2p)/s⌋ + 1` for conv and `⌊(w − f)/s⌋ + 1` for
/// pooling, for height and width separately. With `#[exact_fit]` a window that does not tile
/// its input is a compile error instead (the rule of cs231n).
///
/// # What is generated
///
/// For `pub struct Mlp: [784] -> …`, a struct `Mlp<E = f32, D = Cpu>` holding one field per layer
/// with parameters, and
/// - `Mlp::new(&dev)` / `try_new`, `forward` / `try_forward` for one example (`[784]`) or a batch
///   (`[B, 784]`, `B` a `Const` or a run-time `usize`), with or without a gradient tape;
/// - `forward_mut` / `try_forward_mut`, the training forward: with a tape it also updates batch
///   normalisation's running statistics (`forward` with a tape normalises by the batch without
///   updating them; without a tape both evaluate with the running statistics);
/// - the [`Network`] trait and inherent consts `INPUT_SHAPE`, `OUTPUT_SHAPE`, `LAYERS`,
///   `PARAMETERS` (equal to PyTorch's count);
/// - dfdx's `TensorCollection` (so optimisers, `reset_params`, `to_device`, saving work) and `Module`;
/// - `summary()`, a Keras-style table, also written into the struct's rustdoc.
///
/// # Composition and autoencoders
///
/// `pub struct Both = First -> Second;` is a struct holding both networks whose `forward` runs
/// them in turn; that `First`'s output shape is `Second`'s input shape is a compile error naming
/// both otherwise. `#[autoencoder] pub struct Ae = Encoder -> Decoder;` also requires the
/// decoder to give back the encoder's input shape, and adds `encode`, `decode`, `reconstruct`
/// (each with a `try_` form) and [`autoencoder::Autoencoder`]:
///
/// ```compile_fail
/// use typednet::prelude::*;
///
/// network! {
///     pub struct Encoder: [784] -> linear(32);
///     pub struct Decoder: [32] -> linear(392); // gives back [392], not [784]
///     #[autoencoder]
///     pub struct Ae = Encoder -> Decoder;
/// }
/// ```
///
/// # GANs
///
/// `#[gan] pub struct Gan = Generator -> Discriminator;` pairs a generator with its
/// discriminator: G's output must be D's input, and D must give one score per example
/// (`linear(1)`, a logit). `#[gan(condition = C)]` declares a conditional GAN: G takes noise
/// followed by a `C`-way condition, D the sample followed by the condition, and the sizes are
/// checked when compiling. It adds `generate`, `discriminate` and [`gan::Gan`]; training is in
/// [`gan::GanTrainer`].
///
/// ```compile_fail
/// use typednet::prelude::*;
///
/// network! {
///     pub struct Generator: [74] -> linear(256) -> relu -> linear(784) -> tanh;
///     pub struct Discriminator: [784] -> linear(256) -> leaky_relu(0.2) -> linear(1);
///     #[gan(condition = 10)] // D must take the sample and its condition: 784 + 10 = 794
///     pub struct ConditionalGan = Generator -> Discriminator;
/// }
/// ```
pub use typednet_macros::network;

pub mod activation;
pub mod autoencoder;
pub mod boltzmann;
pub mod checkpoint;
pub mod data;
pub mod device;
pub mod gan;
pub mod gemm;
pub mod gradcheck;
pub mod layers;
// Small dense linear algebra in `f64`: symmetric eigendecomposition, Gram–Schmidt, principal angles.
pub mod linalg;
pub mod loss;
pub mod network;
pub mod ops;
pub mod optim;
mod parallel;
// Principal component analysis, the linear baseline for autoencoders.
pub mod pca;
// PNG figures without an image crate: digit grids and labelled scatter plots.
pub mod plot;
pub mod recurrent;
pub mod regularize;
pub mod shape;
pub mod testing;
pub mod trace;
pub mod train;

pub use device::Device;
pub use network::{Element, ForwardError, LayerInfo, Network, NetworkInput, SameShape};

/// Everything a typical user needs: the macro, the traits, and dfdx's prelude.
pub mod prelude {
    pub use crate::checkpoint::Checkpoint;
    pub use crate::network;
    pub use crate::network::{Element, Network, NetworkInput};
    pub use crate::trace::TraceInput;
    pub use dfdx::prelude::*;
}

/// Items the generated code names by absolute path. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use core;
    pub use dfdx;
    pub use std;
}
