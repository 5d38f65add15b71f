//! Generative adversarial networks: a generator G (noise z → sample x) and a discriminator D
//! (x → the logit of "x is real") trained against each other.
//!
//! # Declaring a GAN
//!
//! Declare the two networks apart and pair them with `#[gan]`:
//!
//! ```
//! use typednet::prelude::*;
//!
//! network! {
//!     pub struct Generator: [64] -> linear(256) -> relu -> linear(784) -> sigmoid;
//!     pub struct Discriminator: [784] -> linear(256) -> leaky_relu(0.2) -> linear(1);
//!     #[gan]
//!     pub struct Gan = Generator -> Discriminator;
//! }
//! ```
//!
//! The pairing is checked when the program compiles: G's output must be D's input, and D must
//! give one score per example (`[1]`, a logit — the losses apply the sigmoid). A conditional
//! GAN (the notes' p(x|y)), `#[gan(condition = 10)]`, feeds the one-hot condition to both
//! networks: G takes the noise followed by the condition (`[Z + 10]`) and D the sample followed
//! by the condition (`[X + 10]`); the macro checks those sizes too.
//!
//! # Training
//!
//! The game of the notes is min_G max_D V(D, G) with
//!
//! ```text
//! V(D, G) = E_x[log D(x)] + E_z[log(1 − D(G(z)))]
//! ```
//!
//! [`GanTrainer`] alternates k discriminator steps, each ascending V on a batch of real data and
//! a batch of generated samples, with one generator step (k is
//! [`GanConfig::discriminator_steps`]). The discriminator minimises −V, which is the binary
//! cross-entropy of its logits against 1 for real and 0 for generated samples.
//!
//! For the generator, [`GeneratorLoss::Minimax`] minimises E_z[log(1 − D(G(z)))], the game as
//! written. Early in training D rejects G's samples with confidence, D(G(z)) ≈ 0, where
//! log(1 − D) is flat: its gradient with respect to D's logit ℓ is −σ(ℓ) ≈ 0, so G barely
//! learns. [`GeneratorLoss::NonSaturating`] (the default, as in Goodfellow et al. 2014 and in
//! practice everywhere) minimises −E_z[log D(G(z))] instead: the same fixed point, but its
//! gradient 1 − σ(ℓ) ≈ 1 is largest exactly when G is losing.
//!
//! Noise is drawn on the device ([`try_noise`], standard normal), so training runs on the CPU
//! and on CUDA and is reproducible from the device's seed.
//!
//! PyTorch has no GAN module; the usual loop is two optimisers and `BCEWithLogitsLoss`, which is
//! what [`GanTrainer`] does (see `tools/pytorch_mnist_gan.py`).

use crate::boltzmann::numeric::{cast, to_f64};
use crate::network::{Element, Network, Vector};
use crate::ops::concat::relabel;
use crate::ops::try_concat_features;
use crate::trace::TraceInput;
use dfdx::nn::{Module, ModuleMut, TensorCollection, ZeroGrads};
use dfdx::optim::{Optimizer, OptimizerUpdateError};
use dfdx::prelude::*;
use std::fmt;

/// A generator paired with its discriminator, implemented by `#[gan]` declarations.
pub trait Gan {
    /// G: noise (followed by the condition, for a conditional GAN) → sample.
    type Generator;
    /// D: sample (followed by the condition) → one logit per example.
    type Discriminator;
    /// The number of condition features (`#[gan(condition = C)]`); 0 for a plain GAN.
    const CONDITION: usize;
    /// The generator.
    fn generator(&self) -> &Self::Generator;
    /// The discriminator.
    fn discriminator(&self) -> &Self::Discriminator;
    /// Both networks, mutably, for a training step.
    fn parts_mut(&mut self) -> (&mut Self::Generator, &mut Self::Discriminator);
}

/// Holds for a discriminator output of one score per example.
#[diagnostic::on_unimplemented(
    message = "a GAN's discriminator must give one score per example (`Vector<1>`), not `{Self}`",
    label = "this discriminator's output is `{Self}`",
    note = "end the discriminator with `linear(1)`: its output is the logit of D(x); the losses apply the sigmoid"
)]
pub trait OneScore {}
impl OneScore for Vector<1> {}

/// Compiles only when `Discriminator` gives one score per example.
#[doc(hidden)]
pub fn assert_scores<Discriminator: Network>()
where
    Discriminator::Output: OneScore,
{
}

/// The generator's check of `#[gan(condition = C)]`, evaluated when the program compiles: it
/// takes a vector longer than `condition` (noise, then the condition) and gives a vector.
#[doc(hidden)]
pub const fn check_conditional_generator(
    input: &[usize],
    output: &[usize],
    condition: usize,
    message: &str,
) {
    if input.len() != 1 || output.len() != 1 || input[0] <= condition {
        panic!("{}", message);
    }
}

/// The discriminator's check of `#[gan(condition = C)]`: it takes the generator's output
/// followed by the `condition` features.
#[doc(hidden)]
pub const fn check_conditional_discriminator(
    generator_output: &[usize],
    input: &[usize],
    condition: usize,
    message: &str,
) {
    if generator_output.len() != 1
        || input.len() != 1
        || input[0] != generator_output[0] + condition
    {
        panic!("{}", message);
    }
}

/// What the generator minimises; see the [module documentation](self) for why the default is
/// [`NonSaturating`](Self::NonSaturating).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GeneratorLoss {
    /// E_z[log(1 − D(G(z)))]: the minimax game as written. Saturates when D wins.
    Minimax,
    /// −E_z[log D(G(z))]: the same fixed point with strong gradients when D wins.
    #[default]
    NonSaturating,
}

/// The training schedule of a GAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GanConfig {
    /// k: discriminator steps per generator step (the notes' inner loop), at least 1.
    pub discriminator_steps: usize,
    /// The generator's loss.
    pub generator_loss: GeneratorLoss,
    /// For a conditional GAN, D also learns to reject real samples paired with a wrong
    /// condition (the matching-aware discriminator of Reed et al., 2016): its loss becomes
    /// −mean log D(x, y) − ½ mean log(1 − D(G(z, y), y)) − ½ mean log(1 − D(x, ŷ)), ŷ ≠ y. D
    /// must then check that a sample fits its condition from the first step, rather than
    /// once G's samples look real, and the conditioning is learnt much sooner. Ignored by a
    /// plain GAN.
    pub mismatched_conditions: bool,
}

impl Default for GanConfig {
    /// One discriminator step per generator step with the non-saturating loss, no mismatched
    /// conditions.
    fn default() -> Self {
        Self {
            discriminator_steps: 1,
            generator_loss: GeneratorLoss::NonSaturating,
            mismatched_conditions: false,
        }
    }
}

/// A failed GAN step.
#[derive(Debug)]
pub enum GanError<DeviceError> {
    /// A setting outside its range, e.g. 0 discriminator steps.
    InvalidSetting(String),
    /// A loss was NaN or infinite; the step stopped before its update.
    NonFiniteLoss {
        /// `"discriminator"` or `"generator"`.
        network: &'static str,
        /// The loss.
        value: f64,
    },
    /// The device failed.
    Device(DeviceError),
    /// The optimiser could not update the network.
    Optimizer(OptimizerUpdateError<DeviceError>),
}

impl<DeviceError: fmt::Debug> fmt::Display for GanError<DeviceError> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidSetting(what) => write!(f, "invalid GAN setting: {what}"),
            Self::NonFiniteLoss { network, value } => {
                write!(f, "the {network} loss is {value}; the step was not applied")
            }
            Self::Device(err) => write!(f, "device error: {err:?}"),
            Self::Optimizer(err) => write!(f, "optimizer update failed: {err:?}"),
        }
    }
}

impl<DeviceError: fmt::Debug> std::error::Error for GanError<DeviceError> {}

impl<DeviceError> From<OptimizerUpdateError<DeviceError>> for GanError<DeviceError> {
    fn from(err: OptimizerUpdateError<DeviceError>) -> Self {
        Self::Optimizer(err)
    }
}

/// What one discriminator step measured, on the batch before the update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiscriminatorStep {
    /// −V(D, G) on the batch: −mean log D(x) − mean log(1 − D(G(z))), nats.
    pub loss: f64,
    /// Mean D(x) over the real examples.
    pub real_score: f64,
    /// Mean D(G(z)) over the generated examples.
    pub fake_score: f64,
    /// Mean D(x, ŷ) over real examples with a wrong condition, when
    /// [`GanConfig::mismatched_conditions`] is on.
    pub mismatched_score: Option<f64>,
}

/// A batch of `batch` standard-normal noise vectors `[batch, Z]`, drawn on the device.
pub fn try_noise<const Z: usize, E: Element, D: crate::Device<E>>(
    device: &D,
    batch: usize,
) -> Result<Tensor<(usize, Const<Z>), E, D>, D::Err> {
    crate::boltzmann::try_sample_standard_normal(device, (batch, Const::<Z>))
}

/// One-hot rows `[labels.len(), C]` for class labels (a label ≥ C gives a row of zeros).
pub fn try_one_hot<const C: usize, E: Element, D: crate::Device<E>>(
    device: &D,
    labels: &[usize],
) -> Result<Tensor<(usize, Const<C>), E, D>, D::Err> {
    let mut values = vec![E::zero(); labels.len() * C];
    for (row, &label) in labels.iter().enumerate() {
        if label < C {
            values[row * C + label] = E::one();
        }
    }
    device.try_tensor_from_vec(values, (labels.len(), Const::<C>))
}

type Batch<const F: usize, E, D, T = NoneTape> = Tensor<(usize, Const<F>), E, D, T>;
type Taped<E, D> = OwnedTape<E, D>;

/// A GAN step's summary: the last discriminator step and the generator's loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GanStep {
    /// The last of the k discriminator steps.
    pub discriminator: DiscriminatorStep,
    /// The generator's loss before its update.
    pub generator_loss: f64,
}

/// Alternates k discriminator steps with one generator step, each network with its own
/// optimiser.
///
/// `GO` and `DO` are the two optimisers, e.g. dfdx's `Adam` over the generator and over the
/// discriminator (`Adam::new(gan.generator(), config)`). The step methods take the two networks
/// apart (from [`Gan::parts_mut`]) so that one is updated while the other is read; [`try_step`]
/// runs a whole round on a `#[gan]`.
///
/// [`try_step`]: GanTrainer::try_step
#[derive(Debug)]
pub struct GanTrainer<GO, DO, E: Dtype, D: Storage<E>> {
    device: D,
    generator_optimizer: GO,
    discriminator_optimizer: DO,
    config: GanConfig,
    generator_gradients: Option<Gradients<E, D>>,
    discriminator_gradients: Option<Gradients<E, D>>,
}

impl<GO, DO, E: Element, D: crate::Device<E>> GanTrainer<GO, DO, E, D> {
    /// A trainer drawing noise on `device`; fails when `config.discriminator_steps` is 0.
    pub fn new(
        device: &D,
        generator_optimizer: GO,
        discriminator_optimizer: DO,
        config: GanConfig,
    ) -> Result<Self, GanError<D::Err>> {
        if config.discriminator_steps == 0 {
            return Err(GanError::InvalidSetting(
                "discriminator_steps is 0; the discriminator needs at least one step per \
                 generator step"
                    .into(),
            ));
        }
        Ok(Self {
            device: device.clone(),
            generator_optimizer,
            discriminator_optimizer,
            config,
            generator_gradients: None,
            discriminator_gradients: None,
        })
    }

    /// The schedule.
    pub fn config(&self) -> GanConfig {
        self.config
    }

    /// A round of a plain GAN: k discriminator steps, one per batch of `real` (which must hold
    /// exactly k batches), then one generator step on a batch the size of the last one.
    pub fn try_step<N, G, Dn, const Z: usize, const X: usize>(
        &mut self,
        gan: &mut N,
        real: Vec<Batch<X, E, D>>,
    ) -> Result<GanStep, GanError<D::Err>>
    where
        N: Gan<Generator = G, Discriminator = Dn>,
        G: Network<Input = Vector<Z>>
            + TensorCollection<E, D>
            + Module<Batch<Z, E, D>, Output = Batch<X, E, D>, Error = D::Err>
            + ModuleMut<
                Batch<Z, E, D, Taped<E, D>>,
                Output = Batch<X, E, D, Taped<E, D>>,
                Error = D::Err,
            >,
        Dn: TensorCollection<E, D>
            + Module<
                Batch<X, E, D, Taped<E, D>>,
                Output = Batch<1, E, D, Taped<E, D>>,
                Error = D::Err,
            > + ModuleMut<
                Batch<X, E, D, Taped<E, D>>,
                Output = Batch<1, E, D, Taped<E, D>>,
                Error = D::Err,
            >,
        GO: Optimizer<G, D, E>,
        DO: Optimizer<Dn, D, E>,
    {
        let k = self.config.discriminator_steps;
        if real.len() != k {
            return Err(GanError::InvalidSetting(format!(
                "a round takes {k} real batches (one per discriminator step), not {}",
                real.len()
            )));
        }
        let (generator, discriminator) = gan.parts_mut();
        let mut last = None;
        let mut batch = 0;
        for real in real {
            batch = real.shape().0;
            last = Some(self.try_discriminator_step(generator, discriminator, real)?);
        }
        let generator_loss = self.try_generator_step(generator, discriminator, batch)?;
        Ok(GanStep {
            discriminator: last.expect("k ≥ 1 batches were checked above"),
            generator_loss,
        })
    }

    /// One discriminator step: G (not updated) turns `real.len()` noise vectors into samples,
    /// and D takes one optimiser step on −V(D, G) over the real batch and those samples.
    pub fn try_discriminator_step<G, Dn, const Z: usize, const X: usize>(
        &mut self,
        generator: &G,
        discriminator: &mut Dn,
        real: Batch<X, E, D>,
    ) -> Result<DiscriminatorStep, GanError<D::Err>>
    where
        G: Network<Input = Vector<Z>>
            + Module<Batch<Z, E, D>, Output = Batch<X, E, D>, Error = D::Err>,
        Dn: TensorCollection<E, D>
            + ModuleMut<
                Batch<X, E, D, Taped<E, D>>,
                Output = Batch<1, E, D, Taped<E, D>>,
                Error = D::Err,
            >,
        DO: Optimizer<Dn, D, E>,
    {
        let noise = try_noise::<Z, E, D>(&self.device, real.shape().0).map_err(GanError::Device)?;
        self.try_discriminator_step_with_noise(generator, discriminator, real, noise)
    }

    /// [`try_discriminator_step`](Self::try_discriminator_step) with G's input given: `noise`
    /// (`[B′, Z]`) rather than drawn, e.g. to reproduce another framework's step exactly.
    pub fn try_discriminator_step_with_noise<G, Dn, const Z: usize, const X: usize>(
        &mut self,
        generator: &G,
        discriminator: &mut Dn,
        real: Batch<X, E, D>,
        noise: Batch<Z, E, D>,
    ) -> Result<DiscriminatorStep, GanError<D::Err>>
    where
        G: Network<Input = Vector<Z>>
            + Module<Batch<Z, E, D>, Output = Batch<X, E, D>, Error = D::Err>,
        Dn: TensorCollection<E, D>
            + ModuleMut<
                Batch<X, E, D, Taped<E, D>>,
                Output = Batch<1, E, D, Taped<E, D>>,
                Error = D::Err,
            >,
        DO: Optimizer<Dn, D, E>,
    {
        let fake = generator.try_forward(noise).map_err(GanError::Device)?;
        self.discriminator_update(discriminator, real, fake, None)
    }

    /// One generator step on `batch` fresh noise vectors (D is read, not updated); returns the
    /// generator's loss before the update.
    pub fn try_generator_step<G, Dn, const Z: usize, const X: usize>(
        &mut self,
        generator: &mut G,
        discriminator: &Dn,
        batch: usize,
    ) -> Result<f64, GanError<D::Err>>
    where
        G: Network<Input = Vector<Z>>
            + TensorCollection<E, D>
            + ModuleMut<
                Batch<Z, E, D, Taped<E, D>>,
                Output = Batch<X, E, D, Taped<E, D>>,
                Error = D::Err,
            >,
        Dn: TensorCollection<E, D>
            + Module<
                Batch<X, E, D, Taped<E, D>>,
                Output = Batch<1, E, D, Taped<E, D>>,
                Error = D::Err,
            >,
        GO: Optimizer<G, D, E>,
    {
        let noise = try_noise::<Z, E, D>(&self.device, batch).map_err(GanError::Device)?;
        self.try_generator_step_with_noise(generator, discriminator, noise)
    }

    /// [`try_generator_step`](Self::try_generator_step) with G's input given (`[B, Z]`).
    pub fn try_generator_step_with_noise<G, Dn, const Z: usize, const X: usize>(
        &mut self,
        generator: &mut G,
        discriminator: &Dn,
        noise: Batch<Z, E, D>,
    ) -> Result<f64, GanError<D::Err>>
    where
        G: Network<Input = Vector<Z>>
            + TensorCollection<E, D>
            + ModuleMut<
                Batch<Z, E, D, Taped<E, D>>,
                Output = Batch<X, E, D, Taped<E, D>>,
                Error = D::Err,
            >,
        Dn: TensorCollection<E, D>
            + Module<
                Batch<X, E, D, Taped<E, D>>,
                Output = Batch<1, E, D, Taped<E, D>>,
                Error = D::Err,
            >,
        GO: Optimizer<G, D, E>,
    {
        let gradients = self.take_generator_gradients(generator)?;
        let fake = generator
            .try_forward_mut(noise.traced_input(gradients))
            .map_err(GanError::Device)?;
        let logits = discriminator.try_forward(fake).map_err(GanError::Device)?;
        self.generator_update(generator, discriminator, logits)
    }

    /// One discriminator step of a conditional GAN. `condition` holds the one-hot conditions
    /// of the real examples (`[B, C]`, see [`try_one_hot`]); G is asked for the same ones.
    /// D sees each sample followed by its condition.
    pub fn try_conditional_discriminator_step<
        G,
        Dn,
        const C: usize,
        const GZ: usize,
        const X: usize,
        const DX: usize,
    >(
        &mut self,
        generator: &G,
        discriminator: &mut Dn,
        real: Batch<X, E, D>,
        condition: Batch<C, E, D>,
    ) -> Result<DiscriminatorStep, GanError<D::Err>>
    where
        G: Network<Input = Vector<GZ>>
            + Module<Batch<GZ, E, D>, Output = Batch<X, E, D>, Error = D::Err>,
        Dn: Network<Input = Vector<DX>>
            + TensorCollection<E, D>
            + ModuleMut<
                Batch<DX, E, D, Taped<E, D>>,
                Output = Batch<1, E, D, Taped<E, D>>,
                Error = D::Err,
            >,
        DO: Optimizer<Dn, D, E>,
    {
        check_condition_sizes(C, GZ, X, DX)?;
        let input = try_noise_then::<C, GZ, E, D>(&self.device, condition.clone())
            .map_err(GanError::Device)?;
        let fake = generator.try_forward(input).map_err(GanError::Device)?;
        let mismatched = if self.config.mismatched_conditions {
            let wrong = self.try_wrong_conditions(&condition)?;
            let pairs: Batch<DX, E, D> =
                try_concat_features(real.clone(), wrong).map_err(GanError::Device)?;
            Some(pairs)
        } else {
            None
        };
        let real: Batch<DX, E, D> =
            try_concat_features(real, condition.clone()).map_err(GanError::Device)?;
        let fake: Batch<DX, E, D> =
            try_concat_features(fake, condition).map_err(GanError::Device)?;
        self.discriminator_update(discriminator, real, fake, mismatched)
    }

    /// One generator step of a conditional GAN, asked for the conditions in `condition`
    /// (`[B, C]` one-hot); returns the generator's loss before the update.
    pub fn try_conditional_generator_step<
        G,
        Dn,
        const C: usize,
        const GZ: usize,
        const X: usize,
        const DX: usize,
    >(
        &mut self,
        generator: &mut G,
        discriminator: &Dn,
        condition: Batch<C, E, D>,
    ) -> Result<f64, GanError<D::Err>>
    where
        G: Network<Input = Vector<GZ>>
            + TensorCollection<E, D>
            + ModuleMut<
                Batch<GZ, E, D, Taped<E, D>>,
                Output = Batch<X, E, D, Taped<E, D>>,
                Error = D::Err,
            >,
        Dn: Network<Input = Vector<DX>>
            + TensorCollection<E, D>
            + Module<
                Batch<DX, E, D, Taped<E, D>>,
                Output = Batch<1, E, D, Taped<E, D>>,
                Error = D::Err,
            >,
        GO: Optimizer<G, D, E>,
    {
        check_condition_sizes(C, GZ, X, DX)?;
        let input = try_noise_then::<C, GZ, E, D>(&self.device, condition.clone())
            .map_err(GanError::Device)?;
        let gradients = self.take_generator_gradients(generator)?;
        let fake = generator
            .try_forward_mut(input.traced_input(gradients))
            .map_err(GanError::Device)?;
        let scored: Batch<DX, E, D, Taped<E, D>> =
            try_concat_features(fake, condition).map_err(GanError::Device)?;
        let logits = discriminator
            .try_forward(scored)
            .map_err(GanError::Device)?;
        self.generator_update(generator, discriminator, logits)
    }

    fn take_generator_gradients<G: TensorCollection<E, D>>(
        &mut self,
        generator: &G,
    ) -> Result<Gradients<E, D>, GanError<D::Err>> {
        match self.generator_gradients.take() {
            Some(gradients) => Ok(gradients),
            None => generator.try_alloc_grads().map_err(GanError::Device),
        }
    }

    /// Each row of `condition` (`[B, C]`, one-hot times any scale) with its value moved to
    /// another class: row i's class k goes to (k + 1 + i mod (C − 1)) mod C, so every row is
    /// wrong and the wrong classes vary.
    fn try_wrong_conditions<const C: usize>(
        &self,
        condition: &Batch<C, E, D>,
    ) -> Result<Batch<C, E, D>, GanError<D::Err>> {
        if C < 2 {
            return Err(GanError::InvalidSetting(format!(
                "mismatched conditions need at least 2 classes, not {C}"
            )));
        }
        let values = condition.as_vec();
        let mut wrong = vec![E::zero(); values.len()];
        for (i, (row, out)) in values.chunks(C).zip(wrong.chunks_mut(C)).enumerate() {
            let class = (0..C)
                .max_by(|&a, &b| {
                    row[a]
                        .partial_cmp(&row[b])
                        .unwrap_or(std::cmp::Ordering::Equal)
                })
                .unwrap_or(0);
            out[(class + 1 + i % (C - 1)) % C] = row[class];
        }
        self.device
            .try_tensor_from_vec(wrong, (values.len() / C, Const::<C>))
            .map_err(GanError::Device)
    }

    /// D's step on `real` (target 1), `fake` (target 0) and, if given, `mismatched` real
    /// samples with wrong conditions (target 0, and the fakes' weight halved), stacked into one
    /// batch.
    fn discriminator_update<Dn, const X: usize>(
        &mut self,
        discriminator: &mut Dn,
        real: Batch<X, E, D>,
        fake: Batch<X, E, D>,
        mismatched: Option<Batch<X, E, D>>,
    ) -> Result<DiscriminatorStep, GanError<D::Err>>
    where
        Dn: TensorCollection<E, D>
            + ModuleMut<
                Batch<X, E, D, Taped<E, D>>,
                Output = Batch<1, E, D, Taped<E, D>>,
                Error = D::Err,
            >,
        DO: Optimizer<Dn, D, E>,
    {
        let (real_count, fake_count) = (real.shape().0, fake.shape().0);
        let mismatched_count = mismatched.as_ref().map_or(0, |m| m.shape().0);
        if real_count == 0 {
            return Err(GanError::InvalidSetting("the real batch is empty".into()));
        }
        let mut stacked = (real, fake)
            .try_concat_along(Axis::<0>)
            .map_err(GanError::Device)?;
        if let Some(mismatched) = mismatched {
            stacked = (stacked, mismatched)
                .try_concat_along(Axis::<0>)
                .map_err(GanError::Device)?;
        }
        let total = real_count + fake_count + mismatched_count;
        let mut targets = vec![E::one(); real_count];
        targets.resize(total, E::zero());
        // Each group's loss is its mean over its own rows; with mismatched pairs the two kinds
        // of negative share the weight of one (½ each), as in Reed et al.
        let negative_weight = if mismatched_count > 0 { 0.5 } else { 1.0 };
        let mut weights = vec![cast::<E>(1.0 / real_count as f64); real_count];
        weights.extend(std::iter::repeat_n(
            cast::<E>(negative_weight / fake_count.max(1) as f64),
            fake_count,
        ));
        weights.extend(std::iter::repeat_n(
            cast::<E>(negative_weight / mismatched_count.max(1) as f64),
            mismatched_count,
        ));
        let shape = (total, Const::<1>);
        let targets = self
            .device
            .try_tensor_from_vec(targets, shape)
            .map_err(GanError::Device)?;
        let weights = self
            .device
            .try_tensor_from_vec(weights, shape)
            .map_err(GanError::Device)?;
        let gradients = match self.discriminator_gradients.take() {
            Some(gradients) => gradients,
            None => discriminator.try_alloc_grads().map_err(GanError::Device)?,
        };
        let logits = discriminator
            .try_forward_mut(stacked.traced_input(gradients))
            .map_err(GanError::Device)?;
        let probabilities: Vec<f64> = logits
            .retaped::<NoneTape>()
            .as_vec()
            .into_iter()
            .map(|logit| sigmoid(to_f64(logit)))
            .collect();
        let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len().max(1) as f64;
        // Σ weight · BCE: mean −log D(x) + mean −log(1 − D(G(z))) = −V without mismatched pairs.
        let loss = logits
            .try_bce_with_logits(targets)
            .and_then(|l| l.try_mul(weights))
            .and_then(|l| l.try_sum::<Rank0, _>())
            .map_err(GanError::Device)?;
        let value = scalar(&loss);
        if !value.is_finite() {
            return Err(GanError::NonFiniteLoss {
                network: "discriminator",
                value,
            });
        }
        let mut gradients = loss.try_backward().map_err(GanError::Device)?;
        self.discriminator_optimizer
            .update(discriminator, &gradients)?;
        discriminator
            .try_zero_grads(&mut gradients)
            .map_err(GanError::Device)?;
        self.discriminator_gradients = Some(gradients);
        Ok(DiscriminatorStep {
            loss: value,
            real_score: mean(&probabilities[..real_count]),
            fake_score: mean(&probabilities[real_count..real_count + fake_count]),
            mismatched_score: (mismatched_count > 0)
                .then(|| mean(&probabilities[real_count + fake_count..])),
        })
    }

    /// G's loss on D's logits for its samples, its backward pass and G's update.
    fn generator_update<G, Dn>(
        &mut self,
        generator: &mut G,
        discriminator: &Dn,
        logits: Batch<1, E, D, Taped<E, D>>,
    ) -> Result<f64, GanError<D::Err>>
    where
        G: TensorCollection<E, D>,
        Dn: TensorCollection<E, D>,
        GO: Optimizer<G, D, E>,
    {
        let loss =
            try_generator_loss(logits, self.config.generator_loss).map_err(GanError::Device)?;
        let value = scalar(&loss);
        if !value.is_finite() {
            return Err(GanError::NonFiniteLoss {
                network: "generator",
                value,
            });
        }
        let mut gradients = loss.try_backward().map_err(GanError::Device)?;
        self.generator_optimizer.update(generator, &gradients)?;
        // The backward pass also filled D's gradients (D is not updated here): clear both.
        generator
            .try_zero_grads(&mut gradients)
            .and_then(|()| discriminator.try_zero_grads(&mut gradients))
            .map_err(GanError::Device)?;
        self.generator_gradients = Some(gradients);
        Ok(value)
    }
}

/// The Inception score of Salimans et al. (2016) with any classifier in place of Inception:
/// exp(E_x[KL(p(y|x) ‖ p(y))]), p(y) the mean of p(y|x) over the samples.
///
/// `class_probabilities` holds one row of `classes` probabilities p(y|x) per sample. The score
/// lies in [1, classes]: near `classes` when every sample is classified with confidence and
/// the classes are used equally (real digits), near 1 when the classifier is unsure or every
/// sample is the same class (noise, or a collapsed generator). Returns `None` for no samples,
/// `classes` = 0 or a row of the wrong length.
///
/// PyTorch: none built in; the same formula in `tools/pytorch_mnist_gan.py`.
pub fn inception_score(class_probabilities: &[f64], classes: usize) -> Option<f64> {
    if classes == 0
        || class_probabilities.is_empty()
        || !class_probabilities.len().is_multiple_of(classes)
    {
        return None;
    }
    let samples = class_probabilities.len() / classes;
    let mut marginal = vec![0.0; classes];
    for row in class_probabilities.chunks(classes) {
        for (m, &p) in marginal.iter_mut().zip(row) {
            *m += p / samples as f64;
        }
    }
    let mean_kl = class_probabilities
        .chunks(classes)
        .map(|row| {
            row.iter()
                .zip(&marginal)
                .filter(|(&p, _)| p > 0.0)
                .map(|(&p, &m)| p * (p / m).ln())
                .sum::<f64>()
        })
        .sum::<f64>()
        / samples as f64;
    Some(mean_kl.exp())
}

/// The generator's loss on D's logits `ℓ` for its samples, averaged over the batch:
/// mean log(1 − σ(ℓ)) for [`GeneratorLoss::Minimax`], −mean log σ(ℓ) for
/// [`GeneratorLoss::NonSaturating`]. Its gradient with respect to each logit is −σ(ℓ)/B and
/// −(1 − σ(ℓ))/B respectively.
///
/// PyTorch: `-F.binary_cross_entropy_with_logits(l, zeros)` and
/// `F.binary_cross_entropy_with_logits(l, ones)`.
pub fn try_generator_loss<S: Shape, E: Element, D: crate::Device<E>, T: Tape<E, D>>(
    logits: Tensor<S, E, D, T>,
    loss: GeneratorLoss,
) -> Result<Tensor<Rank0, E, D, T>, D::Err> {
    // Non-saturating: −mean log σ(ℓ) = BCE(ℓ, 1). Minimax: mean log(1 − σ(ℓ)) = −BCE(ℓ, 0).
    let device = logits.device().clone();
    let (targets, sign) = match loss {
        GeneratorLoss::NonSaturating => (device.try_ones_like(logits.shape())?, 1.0),
        GeneratorLoss::Minimax => (device.try_zeros_like(logits.shape())?, -1.0),
    };
    logits
        .try_bce_with_logits(targets)?
        .try_mean::<Rank0, _>()?
        .try_mul(cast::<E>(sign))
}

/// `[B, GZ]`: standard-normal noise in the first `GZ − C` features, then `condition`.
fn try_noise_then<const C: usize, const GZ: usize, E: Element, D: crate::Device<E>>(
    device: &D,
    condition: Batch<C, E, D>,
) -> Result<Batch<GZ, E, D>, D::Err> {
    let batch = condition.shape().0;
    let noise = crate::boltzmann::try_sample_standard_normal(device, (batch, GZ - C))?;
    let condition = relabel(condition.try_realize::<(usize, usize)>());
    let joined = (noise, condition).try_concat_along(Axis::<1>)?;
    Ok(relabel(joined.try_realize::<(usize, Const<GZ>)>()))
}

/// The sizes a conditional GAN's step needs: G takes noise + C, D takes X + C.
fn check_condition_sizes<DeviceError>(
    condition: usize,
    generator_input: usize,
    sample: usize,
    discriminator_input: usize,
) -> Result<(), GanError<DeviceError>> {
    if generator_input <= condition || sample + condition != discriminator_input {
        return Err(GanError::InvalidSetting(format!(
            "a conditional GAN with {condition} condition features needs a generator taking more \
             than {condition} features (it takes {generator_input}) and a discriminator taking \
             {sample} + {condition} (it takes {discriminator_input})"
        )));
    }
    Ok(())
}

/// The value of a scalar (copied from the device).
fn scalar<E: Element, D: crate::Device<E>, T>(loss: &Tensor<Rank0, E, D, T>) -> f64 {
    loss.as_vec()
        .first()
        .map_or(f64::NAN, |&value| to_f64(value))
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inception_score_spans_one_to_the_number_of_classes() {
        // Confident and balanced over 4 classes: the score is 4.
        let mut confident = Vec::new();
        for k in 0..8 {
            let mut row = vec![0.0; 4];
            row[k % 4] = 1.0;
            confident.extend(row);
        }
        assert!((inception_score(&confident, 4).unwrap() - 4.0).abs() < 1e-12);
        // Unsure (uniform rows), or confident but always the same class: 1.
        assert!((inception_score(&[0.25; 16], 4).unwrap() - 1.0).abs() < 1e-12);
        let collapsed: Vec<f64> = (0..4).flat_map(|_| [0.0, 1.0, 0.0, 0.0]).collect();
        assert!((inception_score(&collapsed, 4).unwrap() - 1.0).abs() < 1e-12);
        // A hand-worked case: rows (0.9, 0.1) and (0.2, 0.8), p(y) = (0.55, 0.45).
        let kl = |p: [f64; 2]| p[0] * (p[0] / 0.55).ln() + p[1] * (p[1] / 0.45).ln();
        let expected = ((kl([0.9, 0.1]) + kl([0.2, 0.8])) / 2.0).exp();
        let score = inception_score(&[0.9, 0.1, 0.2, 0.8], 2).unwrap();
        assert!((score - expected).abs() < 1e-12, "{score} vs {expected}");
        assert_eq!(inception_score(&[0.5; 3], 2), None);
        assert_eq!(inception_score(&[], 2), None);
    }
}
