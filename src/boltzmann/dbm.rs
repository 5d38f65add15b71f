//! The deep Boltzmann machine (DBM): binary visible units `v` and three binary hidden layers
//! `h¹`, `h²`, `h³`, each connected only to the layers next to it.
//!
//! E(v, h¹, h², h³) = −vᵀW¹h¹ − (h¹)ᵀW²h² − (h²)ᵀW³h³ − bᵀv − (c¹)ᵀh¹ − (c²)ᵀh² − (c³)ᵀh³,
//!
//! p(v, h¹, h², h³) = exp(−E) / Z, with W¹ `[V, H1]`, W² `[H1, H2]`, W³ `[H2, H3]` and one bias
//! vector per layer. With no connections inside a layer, each layer's units are independent given
//! its neighbours:
//!
//! p(h¹ = 1 | v, h²) = σ(vW¹ + h²(W²)ᵀ + c¹),  p(h² = 1 | h¹, h³) = σ(h¹W² + h³(W³)ᵀ + c²),
//! p(h³ = 1 | h²) = σ(h²W³ + c³),  p(v = 1 | h¹) = σ(h¹(W¹)ᵀ + b),
//!
//! so Gibbs sampling alternates two blocks, the odd layers {h¹, h³} given the even ones {v, h²}
//! and back ([`Dbm::try_gibbs_step`]). Unlike the RBM, p(h | v) does not factorise; training
//! (Salakhutdinov & Hinton, 2009) replaces it by the factorial mean-field posterior
//! q(h | v) = Πμ, the fixed point of
//!
//! μ¹ = σ(vW¹ + μ²(W²)ᵀ + c¹),  μ² = σ(μ¹W² + μ³(W³)ᵀ + c²),  μ³ = σ(μ²W³ + c³)
//!
//! ([`Dbm::try_mean_field`]), and estimates the model statistics with persistent Gibbs chains:
//! the gradient of the variational lower bound on the log-likelihood is
//! ∂/∂W¹ = E_data\[vμ¹ᵀ\] − E_model\[v(h¹)ᵀ\] and likewise for every weight and bias
//! ([`Dbm::try_joint_training_step`]). Before that, the layers are pretrained greedily as RBMs
//! ([`Dbm::try_pretrain`], composed by [`Dbm::from_rbms`]). For tiny machines log Z, the exact
//! log-likelihood and the joint distribution are computed by enumeration
//! ([`Dbm::exact_log_partition`], [`Dbm::exact_log_likelihood`],
//! [`Dbm::exact_joint_distribution`]).
//!
//! The layer sizes are const generics, so the chaining of the layers is checked by the compiler:
//! [`Dbm::from_rbms`] only accepts RBMs whose sizes chain (`Rbm<V, H1>`, `Rbm<H1, H2>`,
//! `Rbm<H2, H3>`), and a batch of the wrong width does not compile. Every sampler is built from
//! dfdx device ops ([`try_sample_bernoulli`]), so it runs on the CPU and on CUDA and is
//! reproducible from the device's seed. PyTorch has no DBM (nor any Boltzmann machine); a
//! hand-written one keeps the same tensors and calls `torch.sigmoid` and `torch.bernoulli` as here.

use super::exact::{binary_states, log_sum_exp};
use super::numeric::{cast, softplus, to_f64};
use super::rbm::{PersistentChains, Rbm, MAX_ENUMERATED_UNITS};
use super::sample::try_sample_bernoulli;
use crate::network::Element;
use dfdx::prelude::*;

/// A deep Boltzmann machine with `V` visible units and hidden layers of `H1`, `H2` and `H3`
/// units, its parameters as tensors on the device `D`.
///
/// Energy E = −vᵀW¹h¹ − (h¹)ᵀW²h² − (h²)ᵀW³h³ − bᵀv − (c¹)ᵀh¹ − (c²)ᵀh² − (c³)ᵀh³.
pub struct Dbm<
    const V: usize,
    const H1: usize,
    const H2: usize,
    const H3: usize,
    E: Dtype,
    D: Storage<E>,
> {
    /// W¹, `[V, H1]`: `weight1[i][j]` couples visible unit `i` and unit `j` of h¹.
    pub weight1: Tensor<Rank2<V, H1>, E, D>,
    /// W², `[H1, H2]`.
    pub weight2: Tensor<Rank2<H1, H2>, E, D>,
    /// W³, `[H2, H3]`.
    pub weight3: Tensor<Rank2<H2, H3>, E, D>,
    /// b, `[V]`.
    pub visible_bias: Tensor<Rank1<V>, E, D>,
    /// c¹, `[H1]`.
    pub hidden1_bias: Tensor<Rank1<H1>, E, D>,
    /// c², `[H2]`.
    pub hidden2_bias: Tensor<Rank1<H2>, E, D>,
    /// c³, `[H3]`.
    pub hidden3_bias: Tensor<Rank1<H3>, E, D>,
}

impl<
        const V: usize,
        const H1: usize,
        const H2: usize,
        const H3: usize,
        E: Dtype,
        D: Storage<E>,
    > Clone for Dbm<V, H1, H2, H3, E, D>
{
    fn clone(&self) -> Self {
        Self {
            weight1: self.weight1.clone(),
            weight2: self.weight2.clone(),
            weight3: self.weight3.clone(),
            visible_bias: self.visible_bias.clone(),
            hidden1_bias: self.hidden1_bias.clone(),
            hidden2_bias: self.hidden2_bias.clone(),
            hidden3_bias: self.hidden3_bias.clone(),
        }
    }
}

/// A step for the parameters of a [`Dbm`], laid out like it: an estimate of the gradient of the
/// (variational bound on the) mean log-likelihood, data statistics minus model statistics, from
/// [`Dbm::try_joint_gradient`]. Apply it with [`Dbm::try_ascend`].
pub struct DbmGradient<
    const V: usize,
    const H1: usize,
    const H2: usize,
    const H3: usize,
    E: Dtype,
    D: Storage<E>,
> {
    /// ∂/∂W¹ ≈ mean vμ¹ᵀ over the data − mean v(h¹)ᵀ over the chains, `[V, H1]`.
    pub weight1: Tensor<Rank2<V, H1>, E, D>,
    /// ∂/∂W² ≈ mean μ¹μ²ᵀ − mean h¹(h²)ᵀ, `[H1, H2]`.
    pub weight2: Tensor<Rank2<H1, H2>, E, D>,
    /// ∂/∂W³ ≈ mean μ²μ³ᵀ − mean h²(h³)ᵀ, `[H2, H3]`.
    pub weight3: Tensor<Rank2<H2, H3>, E, D>,
    /// ∂/∂b ≈ mean data v − mean chain v, `[V]`.
    pub visible_bias: Tensor<Rank1<V>, E, D>,
    /// ∂/∂c¹ ≈ mean μ¹ − mean chain h¹, `[H1]`.
    pub hidden1_bias: Tensor<Rank1<H1>, E, D>,
    /// ∂/∂c² ≈ mean μ² − mean chain h², `[H2]`.
    pub hidden2_bias: Tensor<Rank1<H2>, E, D>,
    /// ∂/∂c³ ≈ mean μ³ − mean chain h³, `[H3]`.
    pub hidden3_bias: Tensor<Rank1<H3>, E, D>,
}

/// A batch of `B` joint states of a [`Dbm`]'s four layers, one per row: Gibbs chains, or the
/// persistent model-phase chains ("fantasy particles") of joint training.
pub struct DbmState<
    const B: usize,
    const V: usize,
    const H1: usize,
    const H2: usize,
    const H3: usize,
    E: Dtype,
    D: Storage<E>,
> {
    /// v, `[B, V]`.
    pub visible: Tensor<Rank2<B, V>, E, D>,
    /// h¹, `[B, H1]`.
    pub hidden1: Tensor<Rank2<B, H1>, E, D>,
    /// h², `[B, H2]`.
    pub hidden2: Tensor<Rank2<B, H2>, E, D>,
    /// h³, `[B, H3]`.
    pub hidden3: Tensor<Rank2<B, H3>, E, D>,
}

impl<
        const B: usize,
        const V: usize,
        const H1: usize,
        const H2: usize,
        const H3: usize,
        E: Dtype,
        D: Storage<E>,
    > Clone for DbmState<B, V, H1, H2, H3, E, D>
{
    fn clone(&self) -> Self {
        Self {
            visible: self.visible.clone(),
            hidden1: self.hidden1.clone(),
            hidden2: self.hidden2.clone(),
            hidden3: self.hidden3.clone(),
        }
    }
}

impl<
        const B: usize,
        const V: usize,
        const H1: usize,
        const H2: usize,
        const H3: usize,
        E: Element,
        D: Device<E>,
    > DbmState<B, V, H1, H2, H3, E, D>
{
    /// `B` states with every unit 1 with probability ½, reproducible from the device's seed.
    ///
    /// PyTorch: `torch.bernoulli(torch.full((B, n), 0.5))` for each layer.
    pub fn try_random(device: &D) -> Result<Self, D::Err> {
        Ok(Self {
            visible: try_coin_flips(device)?,
            hidden1: try_coin_flips(device)?,
            hidden2: try_coin_flips(device)?,
            hidden3: try_coin_flips(device)?,
        })
    }
}

/// The mean-field posterior q(h | v) = Π Bernoulli(μ) of a batch of `B` visible states, from
/// [`Dbm::try_mean_field`].
pub struct MeanField<
    const B: usize,
    const H1: usize,
    const H2: usize,
    const H3: usize,
    E: Dtype,
    D: Storage<E>,
> {
    /// μ¹, `[B, H1]`.
    pub hidden1: Tensor<Rank2<B, H1>, E, D>,
    /// μ², `[B, H2]`.
    pub hidden2: Tensor<Rank2<B, H2>, E, D>,
    /// μ³, `[B, H3]`.
    pub hidden3: Tensor<Rank2<B, H3>, E, D>,
    /// The number of fixed-point sweeps run so far (the bottom-up initialisation not counted).
    pub iterations: usize,
    /// The largest absolute change of any μ in the last sweep (+∞ before the first).
    pub residual: f64,
}

/// Settings of [`Dbm::try_mean_field`]: sweeps stop when the largest change of any μ falls
/// below `tolerance`, or after `max_iterations` sweeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanFieldConfig {
    /// The most fixed-point sweeps.
    pub max_iterations: usize,
    /// Stop once a sweep changes no μ by more than this (max abs).
    pub tolerance: f64,
}

impl Default for MeanFieldConfig {
    /// 30 sweeps at most, tolerance 1e-5.
    fn default() -> Self {
        Self {
            max_iterations: 30,
            tolerance: 1e-5,
        }
    }
}

/// Settings of greedy layer-wise pretraining ([`Dbm::try_pretrain`]): each RBM is trained by
/// persistent contrastive divergence with these settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PretrainConfig {
    /// Passes over the batches, per RBM.
    pub epochs: usize,
    /// Step size of each PCD update.
    pub learning_rate: f64,
    /// Gibbs steps per update (PCD-k).
    pub gibbs_steps: usize,
    /// Standard deviation of the RBMs' initial weights (Hinton's guide: 0.01).
    pub init_std: f64,
}

/// Settings of joint training ([`Dbm::try_joint_training_step`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JointTrainingConfig {
    /// Step size θ ← θ + lr · gradient.
    pub learning_rate: f64,
    /// The data-dependent phase's mean-field settings.
    pub mean_field: MeanFieldConfig,
    /// Block Gibbs steps the persistent chains advance per update.
    pub gibbs_steps: usize,
}

/// What one joint-training update saw, for monitoring.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JointStepReport {
    /// Mean-field sweeps used on the batch.
    pub mean_field_iterations: usize,
    /// The last sweep's largest change of μ.
    pub mean_field_residual: f64,
}

/// Why an exact (enumerating) quantity or a host-side evaluation could not be computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbmError {
    /// The quantity would enumerate 2^`units` states, more than 2^[`MAX_ENUMERATED_UNITS`].
    TooManyStates {
        /// The quantity asked for.
        quantity: &'static str,
        /// The number of binary units it would enumerate.
        units: usize,
    },
    /// A host-side state has the wrong number of units.
    WrongLength {
        /// The layer.
        layer: &'static str,
        /// Its size in the machine.
        expected: usize,
        /// The length given.
        found: usize,
    },
}

impl std::fmt::Display for DbmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooManyStates { quantity, units } => write!(
                f,
                "{quantity}: 2^{units} states are too many to enumerate (at most 2^{MAX_ENUMERATED_UNITS})"
            ),
            Self::WrongLength {
                layer,
                expected,
                found,
            } => write!(f, "{layer}: expected {expected} units, found {found}"),
        }
    }
}

impl std::error::Error for DbmError {}

impl<
        const V: usize,
        const H1: usize,
        const H2: usize,
        const H3: usize,
        E: Element,
        D: Device<E>,
    > Dbm<V, H1, H2, H3, E, D>
{
    /// A machine with weights drawn from N(0, std²) and zero biases, reproducible from the
    /// device's seed.
    pub fn try_new(device: &D, std: f64) -> Result<Self, D::Err> {
        let scale = cast::<E>(std);
        Ok(Self {
            weight1: try_standard_normal(device)?.try_mul(scale)?,
            weight2: try_standard_normal(device)?.try_mul(scale)?,
            weight3: try_standard_normal(device)?.try_mul(scale)?,
            visible_bias: device.try_zeros()?,
            hidden1_bias: device.try_zeros()?,
            hidden2_bias: device.try_zeros()?,
            hidden3_bias: device.try_zeros()?,
        })
    }

    /// The DBM stacking three RBMs whose sizes chain, `V → H1 → H2 → H3`: W¹, W², W³ are their
    /// weights as they are, b is the first RBM's visible bias and each hidden layer keeps the
    /// hidden bias of the RBM in which it was the hidden layer (the second and third RBMs' visible
    /// biases are dropped). Sizes that do not chain are a compile error.
    ///
    /// [`Self::try_pretrain`] composes with this and then halves W² (see there).
    pub fn from_rbms(
        first: Rbm<V, H1, E, D>,
        second: Rbm<H1, H2, E, D>,
        third: Rbm<H2, H3, E, D>,
    ) -> Self {
        Self {
            weight1: first.weight,
            weight2: second.weight,
            weight3: third.weight,
            visible_bias: first.visible_bias,
            hidden1_bias: first.hidden_bias,
            hidden2_bias: second.hidden_bias,
            hidden3_bias: third.hidden_bias,
        }
    }

    /// Greedy layer-wise pretraining: an RBM `V → H1` is trained on the data batches, then an RBM
    /// `H1 → H2` on the first one's hidden probabilities p(h¹ | v) of every batch, then `H2 → H3`
    /// on the second one's, each by persistent CD-k ([`Rbm::try_persistent_contrastive_divergence`],
    /// `B` chains) with its visible biases initialised to the logits of its data's unit means.
    /// The RBMs are composed by [`Self::from_rbms`] and W² is halved.
    ///
    /// Why the halving: in the DBM, h¹ and h² each receive input from both neighbouring layers,
    /// where in their RBMs each received it from one. Salakhutdinov & Hinton (2009) train the
    /// bottom RBM with doubled bottom-up weights, the top one with doubled top-down weights and the
    /// middle ones with both doubled, and halve the middle weights when composing, so that no
    /// evidence is counted twice. The RBMs here are ordinary (their trainer has no doubled
    /// variant), so only the middle layer's correction is applied; h¹ and h² still over-count
    /// somewhat, which joint training ([`Self::try_joint_training_step`]) corrects.
    ///
    /// With no batches the RBMs are left at their initialisation. Reproducible from the device's
    /// seed.
    pub fn try_pretrain<const B: usize>(
        device: &D,
        batches: &[Tensor<Rank2<B, V>, E, D>],
        config: &PretrainConfig,
    ) -> Result<Self, D::Err> {
        Self::try_pretrain_with_progress(device, batches, config, |_, _| {})
    }

    /// [`try_pretrain`](Self::try_pretrain) that calls `progress(done, total)` after each
    /// CD update, `total` = 3 RBMs × epochs × batches, e.g. to move a
    /// [`ProgressBar`](crate::train::ProgressBar); the library itself prints nothing.
    pub fn try_pretrain_with_progress<const B: usize>(
        device: &D,
        batches: &[Tensor<Rank2<B, V>, E, D>],
        config: &PretrainConfig,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Self, D::Err> {
        let per_rbm = config.epochs * batches.len();
        let total = 3 * per_rbm;
        let first = try_pretrain_rbm::<B, V, H1, E, D>(device, batches, config, &mut |done| {
            progress(done, total)
        })?;
        let hidden1: Vec<Tensor<Rank2<B, H1>, E, D>> = batches
            .iter()
            .map(|batch| first.try_hidden_probabilities(batch))
            .collect::<Result<_, _>>()?;
        let second = try_pretrain_rbm::<B, H1, H2, E, D>(device, &hidden1, config, &mut |done| {
            progress(per_rbm + done, total)
        })?;
        let hidden2: Vec<Tensor<Rank2<B, H2>, E, D>> = hidden1
            .iter()
            .map(|batch| second.try_hidden_probabilities(batch))
            .collect::<Result<_, _>>()?;
        let third = try_pretrain_rbm::<B, H2, H3, E, D>(device, &hidden2, config, &mut |done| {
            progress(2 * per_rbm + done, total)
        })?;
        let mut dbm = Self::from_rbms(first, second, third);
        dbm.weight2 = dbm.weight2.try_mul(cast::<E>(0.5))?;
        Ok(dbm)
    }

    /// p(h¹ = 1 | v, h²) = σ(vW¹ + h²(W²)ᵀ + c¹), `[B, H1]`; h² may be mean-field values μ².
    ///
    /// PyTorch: `torch.sigmoid(v @ W1 + h2 @ W2.T + c1)`.
    pub fn try_hidden1_probabilities<const B: usize>(
        &self,
        visible: &Tensor<Rank2<B, V>, E, D>,
        hidden2: &Tensor<Rank2<B, H2>, E, D>,
    ) -> Result<Tensor<Rank2<B, H1>, E, D>, D::Err> {
        try_up(visible, &self.weight1)?
            .try_add(try_down(hidden2, &self.weight2)?)?
            .try_add(try_rows(&self.hidden1_bias)?)?
            .try_sigmoid()
    }

    /// p(h² = 1 | h¹, h³) = σ(h¹W² + h³(W³)ᵀ + c²), `[B, H2]`.
    ///
    /// PyTorch: `torch.sigmoid(h1 @ W2 + h3 @ W3.T + c2)`.
    pub fn try_hidden2_probabilities<const B: usize>(
        &self,
        hidden1: &Tensor<Rank2<B, H1>, E, D>,
        hidden3: &Tensor<Rank2<B, H3>, E, D>,
    ) -> Result<Tensor<Rank2<B, H2>, E, D>, D::Err> {
        try_up(hidden1, &self.weight2)?
            .try_add(try_down(hidden3, &self.weight3)?)?
            .try_add(try_rows(&self.hidden2_bias)?)?
            .try_sigmoid()
    }

    /// p(h³ = 1 | h²) = σ(h²W³ + c³), `[B, H3]`.
    ///
    /// PyTorch: `torch.sigmoid(h2 @ W3 + c3)`.
    pub fn try_hidden3_probabilities<const B: usize>(
        &self,
        hidden2: &Tensor<Rank2<B, H2>, E, D>,
    ) -> Result<Tensor<Rank2<B, H3>, E, D>, D::Err> {
        try_up(hidden2, &self.weight3)?
            .try_add(try_rows(&self.hidden3_bias)?)?
            .try_sigmoid()
    }

    /// p(v = 1 | h¹) = σ(h¹(W¹)ᵀ + b), `[B, V]`.
    ///
    /// PyTorch: `torch.sigmoid(h1 @ W1.T + b)`.
    pub fn try_visible_probabilities<const B: usize>(
        &self,
        hidden1: &Tensor<Rank2<B, H1>, E, D>,
    ) -> Result<Tensor<Rank2<B, V>, E, D>, D::Err> {
        try_down(hidden1, &self.weight1)?
            .try_add(try_rows(&self.visible_bias)?)?
            .try_sigmoid()
    }

    /// The mean-field posterior of a batch of visible states (`[B, V]`): starts from one
    /// bottom-up pass μ¹ = σ(vW¹ + c¹), μ² = σ(μ¹W² + c²), μ³ = σ(μ²W³ + c³), then runs
    /// [sweeps](Self::try_mean_field_sweep) until the largest change of any μ is below
    /// `config.tolerance` or `config.max_iterations` sweeps have run. The result carries the
    /// sweeps used and the last residual.
    pub fn try_mean_field<const B: usize>(
        &self,
        visible: &Tensor<Rank2<B, V>, E, D>,
        config: &MeanFieldConfig,
    ) -> Result<MeanField<B, H1, H2, H3, E, D>, D::Err> {
        let hidden1 = try_up(visible, &self.weight1)?
            .try_add(try_rows(&self.hidden1_bias)?)?
            .try_sigmoid()?;
        let hidden2 = try_up(&hidden1, &self.weight2)?
            .try_add(try_rows(&self.hidden2_bias)?)?
            .try_sigmoid()?;
        let hidden3 = self.try_hidden3_probabilities(&hidden2)?;
        let mut state = MeanField {
            hidden1,
            hidden2,
            hidden3,
            iterations: 0,
            residual: f64::INFINITY,
        };
        while state.iterations < config.max_iterations && state.residual >= config.tolerance {
            self.try_mean_field_sweep(visible, &mut state)?;
        }
        Ok(state)
    }

    /// One sweep of the mean-field fixed-point updates, layer by layer with the newest values
    /// (each layer's update is exact coordinate ascent on the variational bound, so the sweeps
    /// converge):
    ///
    /// μ¹ ← σ(vW¹ + μ²(W²)ᵀ + c¹),  μ² ← σ(μ¹W² + μ³(W³)ᵀ + c²),  μ³ ← σ(μ²W³ + c³).
    ///
    /// Stores the result in `state`, adds one to its `iterations` and sets its `residual` to the
    /// largest absolute change of any μ, which it also returns.
    pub fn try_mean_field_sweep<const B: usize>(
        &self,
        visible: &Tensor<Rank2<B, V>, E, D>,
        state: &mut MeanField<B, H1, H2, H3, E, D>,
    ) -> Result<f64, D::Err> {
        let hidden1 = self.try_hidden1_probabilities(visible, &state.hidden2)?;
        let hidden2 = self.try_hidden2_probabilities(&hidden1, &state.hidden3)?;
        let hidden3 = self.try_hidden3_probabilities(&hidden2)?;
        let residual = try_max_abs_difference(&hidden1, &state.hidden1)?
            .max(try_max_abs_difference(&hidden2, &state.hidden2)?)
            .max(try_max_abs_difference(&hidden3, &state.hidden3)?);
        state.hidden1 = hidden1;
        state.hidden2 = hidden2;
        state.hidden3 = hidden3;
        state.iterations += 1;
        state.residual = residual;
        Ok(residual)
    }

    /// One step of block Gibbs sampling: the odd layers given the even ones,
    /// h¹ ~ p(h¹ | v, h²) and h³ ~ p(h³ | h²), then the even layers given the new odd ones,
    /// v ~ p(v | h¹) and h² ~ p(h² | h¹, h³). Binary samples throughout.
    pub fn try_gibbs_step<const B: usize>(
        &self,
        state: DbmState<B, V, H1, H2, H3, E, D>,
    ) -> Result<DbmState<B, V, H1, H2, H3, E, D>, D::Err> {
        let hidden1 =
            try_sample_bernoulli(&self.try_hidden1_probabilities(&state.visible, &state.hidden2)?)?;
        let hidden3 = try_sample_bernoulli(&self.try_hidden3_probabilities(&state.hidden2)?)?;
        let visible = try_sample_bernoulli(&self.try_visible_probabilities(&hidden1)?)?;
        let hidden2 = try_sample_bernoulli(&self.try_hidden2_probabilities(&hidden1, &hidden3)?)?;
        Ok(DbmState {
            visible,
            hidden1,
            hidden2,
            hidden3,
        })
    }

    /// `steps` [Gibbs steps](Self::try_gibbs_step) from `state`. Reproducible from the device's
    /// seed.
    pub fn try_gibbs_sample<const B: usize>(
        &self,
        state: DbmState<B, V, H1, H2, H3, E, D>,
        steps: usize,
    ) -> Result<DbmState<B, V, H1, H2, H3, E, D>, D::Err> {
        self.try_gibbs_sample_with_progress(state, steps, |_, _| {})
    }

    /// [`try_gibbs_sample`](Self::try_gibbs_sample) that calls `progress(done, steps)` after
    /// each step, e.g. to move a [`ProgressBar`](crate::train::ProgressBar) (`tqdm` around
    /// the chain's loop); the library itself prints nothing.
    pub fn try_gibbs_sample_with_progress<const B: usize>(
        &self,
        state: DbmState<B, V, H1, H2, H3, E, D>,
        steps: usize,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<DbmState<B, V, H1, H2, H3, E, D>, D::Err> {
        let mut state = state;
        for step in 1..=steps {
            state = self.try_gibbs_step(state)?;
            progress(step, steps);
        }
        Ok(state)
    }

    /// The joint-training estimate of the gradient of the mean log-likelihood's variational
    /// bound on a batch of data `v` (`[B, V]`):
    ///
    /// ∂/∂W¹ ≈ vᵀμ¹ / B − ṽᵀh̃¹ / C,  ∂/∂W² ≈ (μ¹)ᵀμ² / B − (h̃¹)ᵀh̃² / C,
    /// ∂/∂W³ ≈ (μ²)ᵀμ³ / B − (h̃²)ᵀh̃³ / C,  ∂/∂b ≈ mean v − mean ṽ, ∂/∂cˡ ≈ mean μˡ − mean h̃ˡ,
    ///
    /// with μ the data's [mean-field posterior](Self::try_mean_field) (the data-dependent phase)
    /// and (ṽ, h̃) the `C` persistent chains after `config.gibbs_steps` Gibbs steps (the model
    /// phase), which are stored back into `chains`. Also returns the mean-field sweeps used and
    /// their residual.
    pub fn try_joint_gradient<const B: usize, const C: usize>(
        &self,
        data: &Tensor<Rank2<B, V>, E, D>,
        chains: &mut DbmState<C, V, H1, H2, H3, E, D>,
        config: &JointTrainingConfig,
    ) -> Result<(DbmGradient<V, H1, H2, H3, E, D>, JointStepReport), D::Err> {
        let posterior = self.try_mean_field(data, &config.mean_field)?;
        *chains = self.try_gibbs_sample(chains.clone(), config.gibbs_steps)?;
        let positive = 1.0 / B.max(1) as f64;
        let negative = 1.0 / C.max(1) as f64;
        let gradient = DbmGradient {
            weight1: try_correlation(data, &posterior.hidden1, positive)?
                .try_sub(try_correlation(&chains.visible, &chains.hidden1, negative)?)?,
            weight2: try_correlation(&posterior.hidden1, &posterior.hidden2, positive)?
                .try_sub(try_correlation(&chains.hidden1, &chains.hidden2, negative)?)?,
            weight3: try_correlation(&posterior.hidden2, &posterior.hidden3, positive)?
                .try_sub(try_correlation(&chains.hidden2, &chains.hidden3, negative)?)?,
            visible_bias: try_column_mean(data)?.try_sub(try_column_mean(&chains.visible)?)?,
            hidden1_bias: try_column_mean(&posterior.hidden1)?
                .try_sub(try_column_mean(&chains.hidden1)?)?,
            hidden2_bias: try_column_mean(&posterior.hidden2)?
                .try_sub(try_column_mean(&chains.hidden2)?)?,
            hidden3_bias: try_column_mean(&posterior.hidden3)?
                .try_sub(try_column_mean(&chains.hidden3)?)?,
        };
        let report = JointStepReport {
            mean_field_iterations: posterior.iterations,
            mean_field_residual: posterior.residual,
        };
        Ok((gradient, report))
    }

    /// One joint-training update: θ ← θ + lr · [the joint gradient](Self::try_joint_gradient)
    /// (mean-field data statistics minus persistent-chain model statistics), advancing `chains`.
    pub fn try_joint_training_step<const B: usize, const C: usize>(
        &mut self,
        data: &Tensor<Rank2<B, V>, E, D>,
        chains: &mut DbmState<C, V, H1, H2, H3, E, D>,
        config: &JointTrainingConfig,
    ) -> Result<JointStepReport, D::Err> {
        let (gradient, report) = self.try_joint_gradient(data, chains, config)?;
        self.try_ascend(&gradient, config.learning_rate)?;
        Ok(report)
    }

    /// One step of gradient ascent, θ ← θ + lr · gradient, for every weight and bias.
    pub fn try_ascend(
        &mut self,
        gradient: &DbmGradient<V, H1, H2, H3, E, D>,
        learning_rate: f64,
    ) -> Result<(), D::Err> {
        let lr = cast::<E>(learning_rate);
        self.weight1 = step(&self.weight1, &gradient.weight1, lr)?;
        self.weight2 = step(&self.weight2, &gradient.weight2, lr)?;
        self.weight3 = step(&self.weight3, &gradient.weight3, lr)?;
        self.visible_bias = step(&self.visible_bias, &gradient.visible_bias, lr)?;
        self.hidden1_bias = step(&self.hidden1_bias, &gradient.hidden1_bias, lr)?;
        self.hidden2_bias = step(&self.hidden2_bias, &gradient.hidden2_bias, lr)?;
        self.hidden3_bias = step(&self.hidden3_bias, &gradient.hidden3_bias, lr)?;
        Ok(())
    }

    /// The mean squared reconstruction error (1/B) Σ_b ‖v_b − p(v | μ¹_b)‖² of a batch
    /// (`[B, V]`), μ¹ from the [mean-field posterior](Self::try_mean_field): a rough monitor of
    /// training, not the quantity optimised.
    pub fn try_reconstruction_error<const B: usize>(
        &self,
        visible: &Tensor<Rank2<B, V>, E, D>,
        config: &MeanFieldConfig,
    ) -> Result<f64, D::Err> {
        let posterior = self.try_mean_field(visible, config)?;
        let reconstruction = self.try_visible_probabilities(&posterior.hidden1)?;
        let total = visible
            .clone()
            .try_sub(reconstruction)?
            .try_square()?
            .try_sum::<Rank0, _>()?;
        Ok(to_f64(total.as_vec()[0]) / B.max(1) as f64)
    }

    /// E(v, h¹, h², h³) of one joint state, on the host in f64.
    ///
    /// # Errors
    /// [`DbmError::WrongLength`] when a layer's slice does not have that layer's size.
    pub fn exact_energy(
        &self,
        visible: &[f64],
        hidden1: &[f64],
        hidden2: &[f64],
        hidden3: &[f64],
    ) -> Result<f64, DbmError> {
        check_length("visible", V, visible)?;
        check_length("hidden1", H1, hidden1)?;
        check_length("hidden2", H2, hidden2)?;
        check_length("hidden3", H3, hidden3)?;
        Ok(self.host().energy(visible, hidden1, hidden2, hidden3))
    }

    /// log Z, exact in f64. The odd layers are summed out in closed form, so this enumerates only
    /// the 2^(V + H2) states of v and h²:
    ///
    /// log Z = log Σ_{v, h²} exp(bᵀv + (c²)ᵀh² + Σⱼ softplus(c¹ⱼ + (vW¹ + h²(W²)ᵀ)ⱼ)
    ///                                          + Σₖ softplus(c³ₖ + (h²W³)ₖ)).
    ///
    /// # Errors
    /// [`DbmError::TooManyStates`] when V + H2 > [`MAX_ENUMERATED_UNITS`].
    pub fn exact_log_partition(&self) -> Result<f64, DbmError> {
        check_enumerable("exact_log_partition", V + H2)?;
        let host = self.host();
        let terms: Vec<f64> = binary_states(V)
            .flat_map(|v| {
                binary_states(H2)
                    .map(|h2| host.log_odd_marginal(&v, &h2))
                    .collect::<Vec<_>>()
            })
            .collect();
        Ok(log_sum_exp(&terms))
    }

    /// The mean log-likelihood (1/B) Σ_b log p(v_b) of a batch of binary data (`[B, V]`), exact
    /// in f64: log p(v) = log Σ_{h²} exp(…) − log Z, with the odd layers summed out as in
    /// [`Self::exact_log_partition`].
    ///
    /// # Errors
    /// [`DbmError::TooManyStates`] when V + H2 > [`MAX_ENUMERATED_UNITS`].
    pub fn exact_log_likelihood<const B: usize>(
        &self,
        data: &Tensor<Rank2<B, V>, E, D>,
    ) -> Result<f64, DbmError> {
        let log_partition = self.exact_log_partition()?;
        let host = self.host();
        let values: Vec<f64> = data.as_vec().into_iter().map(to_f64).collect();
        let total: f64 = values
            .chunks(V.max(1))
            .map(|v| {
                let terms: Vec<f64> = binary_states(H2)
                    .map(|h2| host.log_odd_marginal(v, &h2))
                    .collect();
                log_sum_exp(&terms)
            })
            .sum();
        Ok(total / B.max(1) as f64 - log_partition)
    }

    /// p(v, h¹, h², h³) for every joint state, exact in f64. State `k` has vᵢ = bit `i` of `k`,
    /// h¹ⱼ = bit `V + j`, h²ⱼ = bit `V + H1 + j` and h³ⱼ = bit `V + H1 + H2 + j` (the order of
    /// [`binary_states`] over the concatenated units); see [`Self::joint_state_index`].
    ///
    /// # Errors
    /// [`DbmError::TooManyStates`] when V + H1 + H2 + H3 > [`MAX_ENUMERATED_UNITS`].
    pub fn exact_joint_distribution(&self) -> Result<Vec<f64>, DbmError> {
        check_enumerable("exact_joint_distribution", V + H1 + H2 + H3)?;
        let host = self.host();
        let negative_energies: Vec<f64> = binary_states(V + H1 + H2 + H3)
            .map(|x| {
                let (v, rest) = x.split_at(V);
                let (h1, rest) = rest.split_at(H1);
                let (h2, h3) = rest.split_at(H2);
                -host.energy(v, h1, h2, h3)
            })
            .collect();
        let log_partition = log_sum_exp(&negative_energies);
        Ok(negative_energies
            .into_iter()
            .map(|e| (e - log_partition).exp())
            .collect())
    }

    /// The index in [`Self::exact_joint_distribution`] of each row of a batch of binary states
    /// (a unit counts as on when it is above ½).
    pub fn joint_state_index<const B: usize>(
        state: &DbmState<B, V, H1, H2, H3, E, D>,
    ) -> Vec<usize> {
        let layers = [
            (state.visible.as_vec(), V, 0),
            (state.hidden1.as_vec(), H1, V),
            (state.hidden2.as_vec(), H2, V + H1),
            (state.hidden3.as_vec(), H3, V + H1 + H2),
        ];
        let mut indices = vec![0usize; B];
        for (values, width, offset) in &layers {
            for (n, index) in indices.iter_mut().enumerate() {
                for i in 0..*width {
                    if to_f64(values[n * width + i]) > 0.5 {
                        *index |= 1 << (offset + i);
                    }
                }
            }
        }
        indices
    }

    fn host(&self) -> HostDbm {
        let convert = |values: Vec<E>| values.into_iter().map(to_f64).collect::<Vec<f64>>();
        HostDbm {
            sizes: [V, H1, H2, H3],
            weights: [
                convert(self.weight1.as_vec()),
                convert(self.weight2.as_vec()),
                convert(self.weight3.as_vec()),
            ],
            biases: [
                convert(self.visible_bias.as_vec()),
                convert(self.hidden1_bias.as_vec()),
                convert(self.hidden2_bias.as_vec()),
                convert(self.hidden3_bias.as_vec()),
            ],
        }
    }
}

/// A DBM's parameters copied to the host in f64, for the exact quantities.
struct HostDbm {
    /// V, H1, H2, H3.
    sizes: [usize; 4],
    /// W¹, W², W³, each row-major `[below, above]`.
    weights: [Vec<f64>; 3],
    /// b, c¹, c², c³.
    biases: [Vec<f64>; 4],
}

impl HostDbm {
    /// xᵀWy for layer pair `l` (x the lower layer).
    fn coupling(&self, l: usize, x: &[f64], y: &[f64]) -> f64 {
        let above = self.sizes[l + 1];
        x.iter()
            .enumerate()
            .map(|(i, xi)| {
                xi * y
                    .iter()
                    .enumerate()
                    .map(|(j, yj)| self.weights[l][i * above + j] * yj)
                    .sum::<f64>()
            })
            .sum()
    }

    fn bias_term(&self, l: usize, x: &[f64]) -> f64 {
        x.iter().zip(&self.biases[l]).map(|(a, b)| a * b).sum()
    }

    fn energy(&self, v: &[f64], h1: &[f64], h2: &[f64], h3: &[f64]) -> f64 {
        -self.coupling(0, v, h1)
            - self.coupling(1, h1, h2)
            - self.coupling(2, h2, h3)
            - self.bias_term(0, v)
            - self.bias_term(1, h1)
            - self.bias_term(2, h2)
            - self.bias_term(3, h3)
    }

    /// log Σ_{h¹, h³} exp(−E(v, h¹, h², h³)), the odd layers summed out in closed form.
    fn log_odd_marginal(&self, v: &[f64], h2: &[f64]) -> f64 {
        let [visible, hidden1, hidden2, hidden3] = self.sizes;
        let hidden1_term: f64 = (0..hidden1)
            .map(|j| {
                let from_below: f64 = (0..visible)
                    .map(|i| v[i] * self.weights[0][i * hidden1 + j])
                    .sum();
                let from_above: f64 = (0..hidden2)
                    .map(|k| self.weights[1][j * hidden2 + k] * h2[k])
                    .sum();
                softplus(self.biases[1][j] + from_below + from_above)
            })
            .sum();
        let hidden3_term: f64 = (0..hidden3)
            .map(|k| {
                let from_below: f64 = (0..hidden2)
                    .map(|j| h2[j] * self.weights[2][j * hidden3 + k])
                    .sum();
                softplus(self.biases[3][k] + from_below)
            })
            .sum();
        self.bias_term(0, v) + self.bias_term(2, h2) + hidden1_term + hidden3_term
    }
}

/// Trains one RBM of the greedy stack on `batches` by persistent CD-k.
fn try_pretrain_rbm<const B: usize, const I: usize, const O: usize, E: Element, D: Device<E>>(
    device: &D,
    batches: &[Tensor<Rank2<B, I>, E, D>],
    config: &PretrainConfig,
    progress: &mut dyn FnMut(usize),
) -> Result<Rbm<I, O, E, D>, D::Err> {
    let mut rbm = Rbm::<I, O, E, D>::try_new(device, config.init_std)?;
    if batches.is_empty() {
        return Ok(rbm);
    }
    // The visible biases start at the logits of the unit means (Hinton's practical guide).
    let mut means = vec![0.0; I];
    for batch in batches {
        for (k, x) in batch.as_vec().into_iter().enumerate() {
            means[k % I.max(1)] += to_f64(x);
        }
    }
    let count = (batches.len() * B).max(1) as f64;
    let bias: Vec<E> = means
        .iter()
        .map(|m| {
            let p = (m / count).clamp(0.001, 0.999);
            cast::<E>((p / (1.0 - p)).ln())
        })
        .collect();
    rbm.visible_bias = device.try_tensor_from_vec(bias, (Const::<I>,))?;
    let mut chains = PersistentChains::<B, I, E, D>::try_new(device)?;
    let mut done = 0;
    for _ in 0..config.epochs {
        for batch in batches {
            rbm.try_persistent_contrastive_divergence(
                batch,
                &mut chains,
                config.gibbs_steps,
                config.learning_rate,
            )?;
            done += 1;
            progress(done);
        }
    }
    Ok(rbm)
}

/// x W: the input a layer sends up, `[B, I]` → `[B, O]`.
fn try_up<const B: usize, const I: usize, const O: usize, E: Element, D: Device<E>>(
    x: &Tensor<Rank2<B, I>, E, D>,
    weight: &Tensor<Rank2<I, O>, E, D>,
) -> Result<Tensor<Rank2<B, O>, E, D>, D::Err> {
    crate::ops::matmul::try_matmul(x, weight)
}

/// y Wᵀ: the input a layer sends down, `[B, O]` → `[B, I]`.
fn try_down<const B: usize, const I: usize, const O: usize, E: Element, D: Device<E>>(
    y: &Tensor<Rank2<B, O>, E, D>,
    weight: &Tensor<Rank2<I, O>, E, D>,
) -> Result<Tensor<Rank2<B, I>, E, D>, D::Err> {
    crate::ops::matmul::try_matmul_transposed_b(y, weight)
}

/// A bias repeated on every row of a batch.
fn try_rows<const B: usize, const N: usize, E: Element, D: Device<E>>(
    bias: &Tensor<Rank1<N>, E, D>,
) -> Result<Tensor<Rank2<B, N>, E, D>, D::Err> {
    bias.clone().try_broadcast::<Rank2<B, N>, Axis<0>>()
}

/// scale · xᵀy, `[I, O]` from `[B, I]` and `[B, O]`.
fn try_correlation<const B: usize, const I: usize, const O: usize, E: Element, D: Device<E>>(
    x: &Tensor<Rank2<B, I>, E, D>,
    y: &Tensor<Rank2<B, O>, E, D>,
    scale: f64,
) -> Result<Tensor<Rank2<I, O>, E, D>, D::Err> {
    crate::ops::matmul::try_matmul_transposed_a(x, y)?.try_mul(cast::<E>(scale))
}

fn try_column_mean<const B: usize, const N: usize, E: Element, D: Device<E>>(
    x: &Tensor<Rank2<B, N>, E, D>,
) -> Result<Tensor<Rank1<N>, E, D>, D::Err> {
    x.clone().try_mean::<Rank1<N>, Axis<0>>()
}

/// max |a − b| over every entry, on the host.
fn try_max_abs_difference<const B: usize, const N: usize, E: Element, D: Device<E>>(
    a: &Tensor<Rank2<B, N>, E, D>,
    b: &Tensor<Rank2<B, N>, E, D>,
) -> Result<f64, D::Err> {
    if B == 0 || N == 0 {
        return Ok(0.0);
    }
    let largest = a
        .clone()
        .try_sub(b.clone())?
        .try_abs()?
        .try_max::<Rank0, _>()?;
    Ok(to_f64(largest.as_vec()[0]))
}

/// θ + lr · g.
fn step<S: Shape, E: Element, D: Device<E>>(
    parameter: &Tensor<S, E, D>,
    gradient: &Tensor<S, E, D>,
    learning_rate: E,
) -> Result<Tensor<S, E, D>, D::Err> {
    parameter
        .clone()
        .try_add(gradient.clone().try_mul(learning_rate)?)
}

/// Binary units, each 1 with probability ½.
fn try_coin_flips<S: ConstShape, E: Element, D: Device<E>>(
    device: &D,
) -> Result<Tensor<S, E, D>, D::Err> {
    let half: Tensor<S, E, D> = device.try_ones()?.try_mul(cast::<E>(0.5))?;
    try_sample_bernoulli(&half)
}

/// Standard normal draws by the Box–Muller transform, from two uniform draws on the device:
/// √(−2 ln(1 − u₁)) cos(2π u₂), u₁, u₂ ~ U[0, 1).
fn try_standard_normal<S: ConstShape, E: Element, D: Device<E>>(
    device: &D,
) -> Result<Tensor<S, E, D>, D::Err> {
    let first: Tensor<S, E, D> =
        device.try_sample(rand::distributions::Uniform::new(E::zero(), E::one()))?;
    let second: Tensor<S, E, D> =
        device.try_sample(rand::distributions::Uniform::new(E::zero(), E::one()))?;
    let radius = first
        .try_negate()?
        .try_add(E::one())?
        .try_ln()?
        .try_mul(cast::<E>(-2.0))?
        .try_sqrt()?;
    let angle = second
        .try_mul(cast::<E>(2.0 * std::f64::consts::PI))?
        .try_cos()?;
    radius.try_mul(angle)
}

fn check_length(layer: &'static str, expected: usize, values: &[f64]) -> Result<(), DbmError> {
    if values.len() == expected {
        Ok(())
    } else {
        Err(DbmError::WrongLength {
            layer,
            expected,
            found: values.len(),
        })
    }
}

fn check_enumerable(quantity: &'static str, units: usize) -> Result<(), DbmError> {
    if units <= MAX_ENUMERATED_UNITS {
        Ok(())
    } else {
        Err(DbmError::TooManyStates { quantity, units })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{chi_square, chi_square_critical};
    use super::*;
    use crate::testing::TestDevice;
    use rand::{Rng, SeedableRng};

    type Tiny = Dbm<3, 2, 2, 2, f64, TestDevice>;

    /// A machine with N(0, std²) weights and N(0, 1) biases.
    fn random_dbm<const V: usize, const H1: usize, const H2: usize, const H3: usize>(
        dev: &TestDevice,
        std: f64,
    ) -> Dbm<V, H1, H2, H3, f64, TestDevice> {
        let mut dbm = Dbm::try_new(dev, std).unwrap();
        dbm.visible_bias = try_standard_normal(dev).unwrap();
        dbm.hidden1_bias = try_standard_normal(dev).unwrap();
        dbm.hidden2_bias = try_standard_normal(dev).unwrap();
        dbm.hidden3_bias = try_standard_normal(dev).unwrap();
        dbm
    }

    fn sigmoid(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// The same mean-field iteration written as plain f64 loops: the bottom-up start, then
    /// `sweeps` layer-by-layer updates. Returns μ¹, μ², μ³ row-major.
    #[allow(clippy::needless_range_loop)]
    fn naive_mean_field(
        host: &HostDbm,
        data: &[f64],
        batch: usize,
        sweeps: usize,
    ) -> [Vec<f64>; 3] {
        let [v_n, h1_n, h2_n, h3_n] = host.sizes;
        let [w1, w2, w3] = &host.weights;
        let [_, c1, c2, c3] = &host.biases;
        let mut mu1 = vec![0.0; batch * h1_n];
        let mut mu2 = vec![0.0; batch * h2_n];
        let mut mu3 = vec![0.0; batch * h3_n];
        for n in 0..batch {
            let v = &data[n * v_n..(n + 1) * v_n];
            let update1 = |mu2: &[f64], j: usize, with_top: bool| {
                let mut x = c1[j];
                for i in 0..v_n {
                    x += v[i] * w1[i * h1_n + j];
                }
                if with_top {
                    for k in 0..h2_n {
                        x += mu2[k] * w2[j * h2_n + k];
                    }
                }
                sigmoid(x)
            };
            let update2 = |mu1: &[f64], mu3: &[f64], k: usize, with_top: bool| {
                let mut x = c2[k];
                for j in 0..h1_n {
                    x += mu1[j] * w2[j * h2_n + k];
                }
                if with_top {
                    for l in 0..h3_n {
                        x += mu3[l] * w3[k * h3_n + l];
                    }
                }
                sigmoid(x)
            };
            let update3 = |mu2: &[f64], l: usize| {
                let mut x = c3[l];
                for k in 0..h2_n {
                    x += mu2[k] * w3[k * h3_n + l];
                }
                sigmoid(x)
            };
            let (mut m1, mut m2, mut m3) = (vec![0.0; h1_n], vec![0.0; h2_n], vec![0.0; h3_n]);
            for sweep in 0..=sweeps {
                let with_top = sweep > 0;
                let next1: Vec<f64> = (0..h1_n).map(|j| update1(&m2, j, with_top)).collect();
                m1 = next1;
                let next2: Vec<f64> = (0..h2_n).map(|k| update2(&m1, &m3, k, with_top)).collect();
                m2 = next2;
                m3 = (0..h3_n).map(|l| update3(&m2, l)).collect();
            }
            mu1[n * h1_n..(n + 1) * h1_n].copy_from_slice(&m1);
            mu2[n * h2_n..(n + 1) * h2_n].copy_from_slice(&m2);
            mu3[n * h3_n..(n + 1) * h3_n].copy_from_slice(&m3);
        }
        [mu1, mu2, mu3]
    }

    #[test]
    fn mean_field_reaches_its_fixed_point() {
        const B: usize = 16;
        let dev = crate::test_device!(4);
        let dbm = random_dbm::<12, 10, 8, 6>(&dev, 0.5);
        let visible: Tensor<Rank2<B, 12>, f64, TestDevice> = try_coin_flips(&dev).unwrap();
        let config = MeanFieldConfig {
            max_iterations: 500,
            tolerance: 1e-9,
        };
        let mut posterior = dbm.try_mean_field(&visible, &config).unwrap();
        eprintln!(
            "mean field: {} sweeps, residual {:.3e}",
            posterior.iterations, posterior.residual
        );
        assert!(posterior.iterations < config.max_iterations);
        assert!(posterior.iterations > 2, "{} sweeps", posterior.iterations);
        assert!(posterior.residual < 1e-9, "residual {}", posterior.residual);
        let (mu1, mu2, mu3) = (
            posterior.hidden1.as_vec(),
            posterior.hidden2.as_vec(),
            posterior.hidden3.as_vec(),
        );
        // One more sweep moves nothing: μ is a fixed point of the update.
        let change = dbm.try_mean_field_sweep(&visible, &mut posterior).unwrap();
        eprintln!("one more sweep changes μ by {change:.3e}");
        assert!(change < 1e-6, "one more sweep changed μ by {change}");
        crate::assert_close!(posterior.hidden1.as_vec(), mu1, 1e-8);
        // The fixed-point equations hold on their own terms, checked against plain loops run for
        // the same number of sweeps.
        let naive = naive_mean_field(&dbm.host(), &visible.as_vec(), B, posterior.iterations);
        crate::assert_close!(posterior.hidden1.as_vec(), naive[0], 1e-12);
        crate::assert_close!(posterior.hidden2.as_vec(), naive[1], 1e-12);
        crate::assert_close!(posterior.hidden3.as_vec(), naive[2], 1e-12);
        crate::assert_close!(mu2, naive[1], 1e-8);
        crate::assert_close!(mu3, naive[2], 1e-8);
        // Not trivially saturated: the posteriors are spread over (0, 1).
        assert!(mu1.iter().any(|&m| m > 0.1 && m < 0.9));
        // Stopping at the iteration cap reports the cap and the last residual.
        let capped = dbm
            .try_mean_field(
                &visible,
                &MeanFieldConfig {
                    max_iterations: 2,
                    tolerance: 0.0,
                },
            )
            .unwrap();
        assert_eq!(capped.iterations, 2);
        assert!(capped.residual > 1e-9);
        let naive = naive_mean_field(&dbm.host(), &visible.as_vec(), B, 2);
        crate::assert_close!(capped.hidden2.as_vec(), naive[1], 1e-12);
    }

    #[test]
    fn exact_log_partition_matches_brute_force_enumeration() {
        let dev = crate::test_device!(8);
        let dbm: Dbm<3, 3, 2, 2, f64, TestDevice> = random_dbm(&dev, 1.0);
        let terms: Vec<f64> = binary_states(10)
            .map(|x| {
                -dbm.exact_energy(&x[..3], &x[3..6], &x[6..8], &x[8..])
                    .unwrap()
            })
            .collect();
        let brute = log_sum_exp(&terms);
        let log_partition = dbm.exact_log_partition().unwrap();
        assert!(
            (log_partition - brute).abs() < 1e-10,
            "{log_partition} vs {brute}"
        );
        let joint = dbm.exact_joint_distribution().unwrap();
        assert!((joint.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // log p(v) against the joint summed over the hidden units.
        let data = dev.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]);
        let marginal = |v: usize| joint.iter().skip(v).step_by(8).sum::<f64>();
        let expected = 0.5 * (marginal(0b101).ln() + marginal(0b110).ln());
        let log_likelihood = dbm.exact_log_likelihood(&data).unwrap();
        assert!((log_likelihood - expected).abs() < 1e-10);
        // A hand-checked energy: only b₀ and the v₀–h¹₀ weight are on.
        let w = dbm.weight1.as_vec()[0];
        let b = dbm.visible_bias.as_vec()[0];
        let c = dbm.hidden1_bias.as_vec()[0];
        let energy = dbm
            .exact_energy(&[1.0, 0.0, 0.0], &[1.0, 0.0, 0.0], &[0.0; 2], &[0.0; 2])
            .unwrap();
        assert!((energy + w + b + c).abs() < 1e-12);
        assert_eq!(
            dbm.exact_energy(&[1.0], &[0.0; 3], &[0.0; 2], &[0.0; 2]),
            Err(DbmError::WrongLength {
                layer: "visible",
                expected: 3,
                found: 1
            })
        );
        let too_big = Dbm::<16, 2, 8, 2, f64, TestDevice>::try_new(&dev, 0.1).unwrap();
        assert!(matches!(
            too_big.exact_log_partition(),
            Err(DbmError::TooManyStates { units: 24, .. })
        ));
    }

    #[test]
    fn gibbs_samples_match_the_exact_joint_distribution() {
        const CHAINS: usize = 20_000;
        let dev = crate::test_device!(21);
        let dbm: Tiny = random_dbm(&dev, 1.0);
        let exact = dbm.exact_joint_distribution().unwrap();
        let start = DbmState::<CHAINS, 3, 2, 2, 2, f64, TestDevice>::try_random(&dev).unwrap();
        let samples = dbm.try_gibbs_sample(start, 50).unwrap();
        let mut counts = vec![0usize; exact.len()];
        for index in Tiny::joint_state_index(&samples) {
            counts[index] += 1;
        }
        let (statistic, dof) = chi_square(&counts, &exact);
        let critical = chi_square_critical(dof, 0.001);
        eprintln!("DBM Gibbs vs exact: χ² {statistic:.1} on {dof} dof (critical {critical:.1})");
        assert!(dof > 100, "{dof} degrees of freedom");
        assert!(
            statistic < critical,
            "χ² {statistic:.1} on {dof} dof ≥ {critical:.1}"
        );
        // The test has power: the same samples are rejected against the machine without W².
        let mut decoupled = dbm.clone();
        decoupled.weight2 = dev.zeros();
        let (wrong, wrong_dof) =
            chi_square(&counts, &decoupled.exact_joint_distribution().unwrap());
        let wrong_critical = chi_square_critical(wrong_dof, 0.001);
        eprintln!("against the machine without W²: χ² {wrong:.1} on {wrong_dof} dof");
        assert!(
            wrong > wrong_critical,
            "χ² {wrong:.1} ≤ {wrong_critical:.1}"
        );
    }

    /// 1000 samples of two prototypes, 110011 and 001100, each bit flipped with probability 0.05.
    fn prototype_data() -> Vec<f64> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2024);
        let prototypes = [
            [1.0, 1.0, 0.0, 0.0, 1.0, 1.0],
            [0.0, 0.0, 1.0, 1.0, 0.0, 0.0],
        ];
        (0..1000)
            .flat_map(|n| prototypes[n % 2])
            .map(|bit| {
                if rng.gen::<f64>() < 0.05 {
                    1.0 - bit
                } else {
                    bit
                }
            })
            .collect()
    }

    #[test]
    fn pretraining_and_joint_training_raise_the_exact_log_likelihood() {
        const BATCH: usize = 50;
        let dev = crate::test_device!(3);
        let values = prototype_data();
        let batches: Vec<Tensor<Rank2<BATCH, 6>, f64, TestDevice>> = values
            .chunks(BATCH * 6)
            .map(|chunk| dev.tensor_from_vec(chunk.to_vec(), (Const::<BATCH>, Const::<6>)))
            .collect();
        let all: Tensor<Rank2<1000, 6>, f64, TestDevice> =
            dev.tensor_from_vec(values, (Const::<1000>, Const::<6>));
        let untrained = Dbm::<6, 4, 3, 2, f64, TestDevice>::try_new(&dev, 0.01).unwrap();
        let initial = untrained.exact_log_likelihood(&all).unwrap();
        let pretrain = PretrainConfig {
            epochs: 30,
            learning_rate: 0.05,
            gibbs_steps: 1,
            init_std: 0.01,
        };
        let mut dbm =
            Dbm::<6, 4, 3, 2, f64, TestDevice>::try_pretrain(&dev, &batches, &pretrain).unwrap();
        let pretrained = dbm.exact_log_likelihood(&all).unwrap();
        let config = JointTrainingConfig {
            learning_rate: 0.02,
            mean_field: MeanFieldConfig::default(),
            gibbs_steps: 1,
        };
        let mut chains = DbmState::<100, 6, 4, 3, 2, f64, TestDevice>::try_random(&dev).unwrap();
        for _ in 0..60 {
            for batch in &batches {
                let report = dbm
                    .try_joint_training_step(batch, &mut chains, &config)
                    .unwrap();
                assert!(report.mean_field_residual.is_finite());
            }
        }
        let trained = dbm.exact_log_likelihood(&all).unwrap();
        // The generating distribution's entropy is ln 2 + 6·H(0.05) = 0.693 + 6·0.199 = 1.88
        // nats, so a log-likelihood near −1.9 is about the best a model can do.
        eprintln!(
            "exact log-likelihood: untrained {initial:.4}, pretrained {pretrained:.4}, joint {trained:.4}"
        );
        assert!((initial + 6.0 * 2f64.ln()).abs() < 0.01, "{initial}");
        assert!(pretrained > initial + 1.0, "{initial} -> {pretrained}");
        assert!(trained > pretrained, "{pretrained} -> {trained}");
    }

    #[test]
    fn sampling_and_training_are_reproducible_from_the_seed() {
        // Skips the test when built for CUDA without a GPU; the closure then opens seeded devices.
        let _ = crate::test_device!();
        let run = |seed| {
            let dev = crate::testing::test_device_seeded(seed).expect("probed above");
            let mut dbm: Tiny = random_dbm(&dev, 1.0);
            let mut chains = DbmState::<8, 3, 2, 2, 2, f64, TestDevice>::try_random(&dev).unwrap();
            let data = dev.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]);
            let config = JointTrainingConfig {
                learning_rate: 0.1,
                mean_field: MeanFieldConfig::default(),
                gibbs_steps: 3,
            };
            dbm.try_joint_training_step(&data, &mut chains, &config)
                .unwrap();
            (
                dbm.weight2.as_vec(),
                chains.visible.as_vec(),
                chains.hidden3.as_vec(),
            )
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }
}
