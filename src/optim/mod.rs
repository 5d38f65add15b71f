//! Adam and SGD whose state can be saved: the same updates as dfdx's optimisers, bit for bit,
//! with the moments open to [training checkpoints](crate::checkpoint::save_training_checkpoint).
//!
//! dfdx 0.13 keeps `dfdx::optim::Adam`'s and `Sgd`'s state private, so a checkpoint cannot
//! reach it. These two are drop-in replacements: the same configs ([`AdamConfig`],
//! [`SgdConfig`]), the same [`Optimizer`] trait, and the same public update kernels
//! (`AdamConfig::try_update`, `SgdConfig::try_update`), so they give dfdx's results exactly.
//!
//! ```
//! use typednet::optim::{Adam, AdamConfig};
//! use typednet::dfdx::optim::Optimizer;
//! use typednet::prelude::*;
//!
//! network! {
//!     pub struct Line: [1] -> linear(1);
//! }
//! let dev = Cpu::seed_from_u64(0);
//! let mut net = Line::<f32, Cpu>::new(&dev);
//! let mut opt = Adam::new(&net, AdamConfig { lr: 0.1, ..Default::default() });
//! let x = dev.tensor([[1.0f32], [2.0]]);
//! let y = dev.tensor([[3.0f32], [5.0]]);
//! let before = mse_loss(net.forward(x.clone()), y.clone()).array();
//! let mut grads = net.alloc_grads();
//! for _ in 0..200 {
//!     grads = mse_loss(net.forward(x.trace(grads)), y.clone()).backward();
//!     opt.update(&mut net, &grads).unwrap();
//!     net.zero_grads(&mut grads);
//! }
//! assert!(mse_loss(net.forward(x), y).array() < before / 10.0);
//! assert_eq!(opt.t(), 200);
//! ```
//!
//! # How the state is kept
//!
//! The update kernels take the state as the device's raw buffers (`&mut D::Vec`), and the only
//! public way to hold such buffers keyed by parameter is dfdx's [`Gradients`] map
//! (`Gradients::leaky()`, `get_or_alloc_mut`), so the moments live in two such maps, as in dfdx.
//! Two things dfdx does with private API are done here with public API:
//!
//! - **reading the gradient**: `Gradients` gives `&mut D::Vec` only (`get_or_alloc_mut`), so each
//!   update works on a clone of the gradients (one copy of each gradient buffer per step).
//! - **writing an `f32` parameter on the CPU** (`adam_cpu.rs`): Adam's update there is typednet's
//!   own loop, vectorised and split between the threads, on a copy of the parameter read out
//!   with `copy_into` and written back with `copy_from`; the same operations in the same order
//!   as dfdx's kernel, so the results are still dfdx's bit for bit (tested), about twice as
//!   fast. Elsewhere dfdx's kernel runs. A
//!   consequence: a parameter with no gradient entry at all cannot be told apart from one with a
//!   zero gradient — see [`Adam`] on unused parameters.
//! - **writing a restored moment** `m` into a map, on any device: `p` (reshaped to a vector,
//!   which for a contiguous tensor keeps its id) is traced into the map, multiplied by `m`, summed
//!   and backpropagated. `∂ Σ pᵢmᵢ / ∂p = m`, and backward adds it into the entry for `p`, which
//!   is zeroed first, so the entry becomes `0 + 1·m = m` exactly (a stored −0.0 comes back as
//!   +0.0, which no update can tell apart except through the sign of an exactly-zero result).

mod adam_cpu;

use std::collections::BTreeSet;
use std::fmt;
use std::marker::PhantomData;

use dfdx::nn::tensor_collection::{TensorCollection, TensorOptions, TensorVisitor, ViewTensorMut};
use dfdx::nn::RecursiveWalker;
use dfdx::optim::{Optimizer, OptimizerUpdateError, UnusedTensors};
use dfdx::shapes::{Dtype, HasShape, Shape};
use dfdx::tensor::{Gradients, Storage, Tensor, Trace, UniqueId};
use dfdx::tensor_ops::{Backward, Device, ReshapeTo, SumTo, TryMul};

pub use dfdx::optim::{AdamConfig, Momentum, SgdConfig, WeightDecay};

/// The id dfdx keys gradients by. `Tensor::id` is private to dfdx; `UnusedTensors::add` is the
/// public way to read it.
pub(crate) fn id_of<S: Shape, E: dfdx::shapes::Unit, D: Storage<E>, T>(
    t: &Tensor<S, E, D, T>,
) -> UniqueId {
    let mut unused = UnusedTensors::default();
    unused.add(t);
    unused.ids[0]
}

/// State buffers of one kind (Adam's first moment, say), one per parameter.
struct Buffers<E: Dtype, D: Storage<E>> {
    map: Gradients<E, D>,
    /// The parameters that have a buffer in `map`.
    present: BTreeSet<UniqueId>,
}

impl<E: Dtype, D: Device<E>> Buffers<E, D> {
    fn new() -> Self {
        Buffers {
            map: Gradients::leaky(),
            present: BTreeSet::new(),
        }
    }

    fn get_or_alloc_mut<S: Shape>(
        &mut self,
        p: &Tensor<S, E, D>,
    ) -> Result<&mut <D as Storage<E>>::Vec, D::Err> {
        self.present.insert(id_of(p));
        self.map.get_or_alloc_mut(p)
    }

    /// The buffer of `p` on the host; zeros if `p` has none yet (what the first update would
    /// allocate).
    fn values<S: Shape>(&self, p: &Tensor<S, E, D>) -> Vec<E> {
        if self.present.contains(&id_of(p)) {
            self.map.get(p).as_vec()
        } else {
            vec![E::default(); p.shape().num_elements()]
        }
    }

    /// Sets the buffer of `p` to `values` (see the module docs for how).
    fn set<S: Shape>(&mut self, p: &Tensor<S, E, D>, values: Vec<E>) -> Result<(), D::Err> {
        let dev = p.device().clone();
        // Zero an existing entry: backward adds into it.
        let entry = self.get_or_alloc_mut(p)?;
        dev.try_fill_with_zeros(entry)?;
        // Backward drops every entry that is not a leaf: declare all of ours leaves, so that
        // only the temporaries of this product go.
        let ids: Vec<UniqueId> = self.present.iter().copied().collect();
        self.map.retain_leafs(&ids);
        let n = values.len();
        let m = dev.try_tensor_from_vec(values, (n,))?;
        let map = std::mem::replace(&mut self.map, Gradients::leaky());
        let traced = p.clone().traced(map).try_reshape_like(&(n,))?;
        self.map = traced.try_mul(m)?.try_sum::<(), _>()?.try_backward()?;
        Ok(())
    }
}

/// Per-parameter state on the host, for checkpoints: which buffers an optimiser keeps, their
/// values, and its scalars. Implemented by [`Adam`] and [`Sgd`]; the training-checkpoint
/// functions are written against it.
pub trait OptimizerState<E: Dtype, D: Device<E>> {
    /// The optimiser's name in the checkpoint (`"Adam"`, `"SGD"`).
    fn kind(&self) -> &'static str;
    /// The buffers kept per trainable parameter, by PyTorch's names (`exp_avg`, …).
    fn buffer_names(&self) -> &'static [&'static str];
    /// Buffer `which` (an index into [`buffer_names`](Self::buffer_names)) of `param`, on the
    /// host (zeros before the first update, as the update would allocate it).
    fn buffer<S: Shape>(&self, which: usize, param: &Tensor<S, E, D>) -> Vec<E>;
    /// Sets buffer `which` of `param` (`values.len()` is the parameter's size).
    fn set_buffer<S: Shape>(
        &mut self,
        which: usize,
        param: &Tensor<S, E, D>,
        values: Vec<E>,
    ) -> Result<(), D::Err>;
    /// The optimiser's integer scalars (Adam's step count `t`), by name.
    fn scalars(&self) -> Vec<(&'static str, i64)>;
    /// Sets the scalars, given in the order of [`scalars`](Self::scalars); on error (a value
    /// out of range) nothing changes.
    fn set_scalars(&mut self, values: &[i64]) -> Result<(), String>;
}

/// Adam (Kingma & Ba), as `dfdx::optim::Adam`: for each trainable parameter `θ` with gradient
/// `g`, at step `t`,
///
/// `m ← β₁m + (1 − β₁)g`, `v ← β₂v + (1 − β₂)g²`, `θ ← θ − lr · m̂ / (√v̂ + ε)` with
/// `m̂ = m/(1 − β₁ᵗ)`, `v̂ = v/(1 − β₂ᵗ)` (and the config's weight decay, L2 or decoupled = AdamW),
/// computed by dfdx's own kernel, so results equal `dfdx::optim::Adam`'s bit for bit.
///
/// PyTorch: `torch.optim.Adam(model.parameters(), lr, betas, eps)` (`AdamW` for decoupled decay);
/// its `optimizer.state_dict()` state is `exp_avg` (`m`), `exp_avg_sq` (`v`) and `step` (`t`).
///
/// Tensors whose `TensorOptions::do_gradient_update` is false (batch norm's running statistics)
/// are left alone. Unlike dfdx, a parameter with no gradient entry at all (possible only with
/// `Gradients::leaky()`; `alloc_grads` allocates an entry for every parameter) is updated as if
/// its gradient were zero instead of being reported as `OptimizerUpdateError::UnusedParams`:
/// dfdx 0.13 has no public way to ask a `Gradients` whether it holds an entry.
pub struct Adam<M, E: Dtype, D: Storage<E>> {
    /// The hyperparameters (may be changed between steps, e.g. for a learning-rate schedule).
    pub cfg: AdamConfig,
    t: i32,
    moment1: Buffers<E, D>,
    moment2: Buffers<E, D>,
    marker: PhantomData<fn(&M)>,
}

impl<M, E: Dtype, D: Storage<E>> fmt::Debug for Adam<M, E, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Adam")
            .field("cfg", &self.cfg)
            .field("t", &self.t)
            .finish_non_exhaustive()
    }
}

impl<M, E: Dtype, D: Device<E>> Adam<M, E, D> {
    /// A new optimiser for `model`'s parameters, with zero moments and `t = 0`.
    pub fn new(_model: &M, cfg: AdamConfig) -> Self {
        Adam {
            cfg,
            t: 0,
            moment1: Buffers::new(),
            moment2: Buffers::new(),
            marker: PhantomData,
        }
    }

    /// The number of updates made (PyTorch's `state["step"]`).
    pub fn t(&self) -> i32 {
        self.t
    }
}

struct AdamStep<'a, E: Dtype, D: Storage<E>> {
    cfg: AdamConfig,
    t: i32,
    moment1: &'a mut Buffers<E, D>,
    moment2: &'a mut Buffers<E, D>,
    gradients: Gradients<E, D>,
}

impl<E: Dtype, D: Device<E>> TensorVisitor<E, D> for AdamStep<'_, E, D> {
    type Viewer = ViewTensorMut;
    type Err = D::Err;
    type E2 = E;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, E, D>,
        p: &mut Tensor<S, E, D>,
    ) -> Result<Option<Tensor<S, E, D>>, D::Err> {
        if !opts.do_gradient_update {
            return Ok(None);
        }
        let g = self.gradients.get_or_alloc_mut(p)?;
        let m = self.moment1.get_or_alloc_mut(p)?;
        let v = self.moment2.get_or_alloc_mut(p)?;
        if !adam_cpu::try_update(&self.cfg, self.t, p, m, v, g) {
            self.cfg.try_update(self.t, p, m, v, g)?;
        }
        Ok(None)
    }
}

impl<M: TensorCollection<E, D>, E: Dtype, D: Device<E>> Optimizer<M, D, E> for Adam<M, E, D> {
    fn update(
        &mut self,
        module: &mut M,
        gradients: &Gradients<E, D>,
    ) -> Result<(), OptimizerUpdateError<D::Err>> {
        self.t = self
            .t
            .checked_add(1)
            .expect("Adam's step count overflowed i32");
        let mut step = AdamStep {
            cfg: self.cfg,
            t: self.t,
            moment1: &mut self.moment1,
            moment2: &mut self.moment2,
            gradients: gradients.clone(),
        };
        M::iter_tensors(&mut RecursiveWalker {
            m: module,
            f: &mut step,
        })
        .map_err(OptimizerUpdateError::DeviceError)?;
        Ok(())
    }
}

impl<M, E: Dtype, D: Device<E>> OptimizerState<E, D> for Adam<M, E, D> {
    fn kind(&self) -> &'static str {
        "Adam"
    }

    fn buffer_names(&self) -> &'static [&'static str] {
        &["exp_avg", "exp_avg_sq"]
    }

    fn buffer<S: Shape>(&self, which: usize, param: &Tensor<S, E, D>) -> Vec<E> {
        [&self.moment1, &self.moment2][which].values(param)
    }

    fn set_buffer<S: Shape>(
        &mut self,
        which: usize,
        param: &Tensor<S, E, D>,
        values: Vec<E>,
    ) -> Result<(), D::Err> {
        [&mut self.moment1, &mut self.moment2][which].set(param, values)
    }

    fn scalars(&self) -> Vec<(&'static str, i64)> {
        vec![("t", i64::from(self.t))]
    }

    fn set_scalars(&mut self, values: &[i64]) -> Result<(), String> {
        let t = i32::try_from(values[0])
            .ok()
            .filter(|t| *t >= 0)
            .ok_or_else(|| format!("Adam's step count t = {} is out of range", values[0]))?;
        self.t = t;
        Ok(())
    }
}

/// Stochastic gradient descent, as `dfdx::optim::Sgd`: `θ ← θ − lr·g`, with momentum
/// `v ← g + μv` (classic: `θ ← θ − lr·v`; Nesterov: `θ ← θ − lr·(g + μv)`) and weight decay as
/// configured, computed by dfdx's own kernel, so results equal dfdx's bit for bit.
///
/// PyTorch: `torch.optim.SGD(model.parameters(), lr, momentum=μ, nesterov=…)` with
/// `dampening=0`; its `optimizer.state_dict()` state is `momentum_buffer` (`v`), which a
/// checkpoint holds only when momentum is on. Parameters not trained and parameters with no
/// gradient entry are treated as for [`Adam`].
pub struct Sgd<M, E: Dtype, D: Storage<E>> {
    /// The hyperparameters (may be changed between steps).
    pub cfg: SgdConfig,
    velocity: Buffers<E, D>,
    marker: PhantomData<fn(&M)>,
}

impl<M, E: Dtype, D: Storage<E>> fmt::Debug for Sgd<M, E, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sgd")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl<M, E: Dtype, D: Device<E>> Sgd<M, E, D> {
    /// A new optimiser for `model`'s parameters, with zero velocity.
    pub fn new(_model: &M, cfg: SgdConfig) -> Self {
        Sgd {
            cfg,
            velocity: Buffers::new(),
            marker: PhantomData,
        }
    }
}

struct SgdStep<'a, E: Dtype, D: Storage<E>> {
    cfg: SgdConfig,
    velocity: &'a mut Buffers<E, D>,
    gradients: Gradients<E, D>,
}

impl<E: Dtype, D: Device<E>> TensorVisitor<E, D> for SgdStep<'_, E, D> {
    type Viewer = ViewTensorMut;
    type Err = D::Err;
    type E2 = E;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, E, D>,
        p: &mut Tensor<S, E, D>,
    ) -> Result<Option<Tensor<S, E, D>>, D::Err> {
        if !opts.do_gradient_update {
            return Ok(None);
        }
        let g = self.gradients.get_or_alloc_mut(p)?;
        let v = self.velocity.get_or_alloc_mut(p)?;
        self.cfg.try_update(p, v, g)?;
        Ok(None)
    }
}

impl<M: TensorCollection<E, D>, E: Dtype, D: Device<E>> Optimizer<M, D, E> for Sgd<M, E, D> {
    fn update(
        &mut self,
        module: &mut M,
        gradients: &Gradients<E, D>,
    ) -> Result<(), OptimizerUpdateError<D::Err>> {
        let mut step = SgdStep {
            cfg: self.cfg,
            velocity: &mut self.velocity,
            gradients: gradients.clone(),
        };
        M::iter_tensors(&mut RecursiveWalker {
            m: module,
            f: &mut step,
        })
        .map_err(OptimizerUpdateError::DeviceError)?;
        Ok(())
    }
}

impl<M, E: Dtype, D: Device<E>> OptimizerState<E, D> for Sgd<M, E, D> {
    fn kind(&self) -> &'static str {
        "SGD"
    }

    fn buffer_names(&self) -> &'static [&'static str] {
        if self.cfg.momentum.is_some() {
            &["momentum_buffer"]
        } else {
            &[]
        }
    }

    fn buffer<S: Shape>(&self, _which: usize, param: &Tensor<S, E, D>) -> Vec<E> {
        self.velocity.values(param)
    }

    fn set_buffer<S: Shape>(
        &mut self,
        _which: usize,
        param: &Tensor<S, E, D>,
        values: Vec<E>,
    ) -> Result<(), D::Err> {
        self.velocity.set(param, values)
    }

    fn scalars(&self) -> Vec<(&'static str, i64)> {
        Vec::new()
    }

    fn set_scalars(&mut self, _values: &[i64]) -> Result<(), String> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDevice;
    use dfdx::prelude::*;

    crate::network! {
        struct Net: [5] -> linear(7) -> tanh -> batchnorm -> linear(3);
    }

    /// Ten steps of `ours` and `theirs` from the same weights and batches; every weight (and
    /// batch norm's running statistics) must be equal bit for bit after every step.
    fn same_as_dfdx<O1, O2>(
        make_ours: impl Fn(&Net<f32, TestDevice>) -> O1,
        make_theirs: impl Fn(&Net<f32, TestDevice>) -> O2,
    ) where
        O1: Optimizer<Net<f32, TestDevice>, TestDevice, f32>,
        O2: Optimizer<Net<f32, TestDevice>, TestDevice, f32>,
    {
        let dev = crate::test_device!(3);
        let mut a = Net::<f32, TestDevice>::new(&dev);
        let mut b = a.clone();
        let (mut opt_a, mut opt_b) = (make_ours(&a), make_theirs(&b));
        let (mut ga, mut gb) = (a.alloc_grads(), b.alloc_grads());
        for step in 0..10 {
            let x: Tensor<Rank2<8, 5>, f32, _> = dev.sample_normal();
            let y: Tensor<Rank2<8, 3>, f32, _> = dev.sample_normal();
            ga = mse_loss(a.forward_mut(x.trace(ga)), y.clone()).backward();
            gb = mse_loss(b.forward_mut(x.trace(gb)), y).backward();
            opt_a.update(&mut a, &ga).unwrap();
            opt_b.update(&mut b, &gb).unwrap();
            a.zero_grads(&mut ga);
            b.zero_grads(&mut gb);
            assert_eq!(
                a.linear1.weight.as_vec(),
                b.linear1.weight.as_vec(),
                "step {step}"
            );
            assert_eq!(
                a.linear2.weight.as_vec(),
                b.linear2.weight.as_vec(),
                "step {step}"
            );
            assert_eq!(
                a.linear1.bias.as_vec(),
                b.linear1.bias.as_vec(),
                "step {step}"
            );
            assert_eq!(
                a.linear2.bias.as_vec(),
                b.linear2.bias.as_vec(),
                "step {step}"
            );
            assert_eq!(
                a.batchnorm1.scale.as_vec(),
                b.batchnorm1.scale.as_vec(),
                "step {step}"
            );
            assert_eq!(
                a.batchnorm1.running_mean.as_vec(),
                b.batchnorm1.running_mean.as_vec()
            );
        }
        assert_ne!(
            a.linear1.weight.as_vec(),
            Net::<f32, TestDevice>::new(&TestDevice::seed_from_u64(3))
                .linear1
                .weight
                .as_vec()
        );
    }

    #[test]
    fn adam_equals_dfdx_bit_for_bit() {
        let cfg = AdamConfig {
            lr: 0.01,
            weight_decay: Some(WeightDecay::Decoupled(0.01)),
            ..Default::default()
        };
        same_as_dfdx(|m| Adam::new(m, cfg), |m| dfdx::optim::Adam::new(m, cfg));
        let cfg = AdamConfig {
            lr: 0.02,
            weight_decay: Some(WeightDecay::L2(0.05)),
            ..Default::default()
        };
        same_as_dfdx(|m| Adam::new(m, cfg), |m| dfdx::optim::Adam::new(m, cfg));
        let cfg = AdamConfig::default();
        same_as_dfdx(|m| Adam::new(m, cfg), |m| dfdx::optim::Adam::new(m, cfg));
    }

    crate::network! {
        struct Wide: [300] -> linear(200);
    }

    /// A parameter long enough for the `f32` CPU update to split it between threads.
    #[test]
    fn adam_equals_dfdx_bit_for_bit_on_a_long_parameter() {
        let dev = crate::test_device!(5);
        let mut a = Wide::<f32, TestDevice>::new(&dev);
        let mut b = a.clone();
        let cfg = AdamConfig {
            lr: 0.01,
            weight_decay: Some(WeightDecay::Decoupled(0.1)),
            ..Default::default()
        };
        let (mut opt_a, mut opt_b) = (Adam::new(&a, cfg), dfdx::optim::Adam::new(&b, cfg));
        let (mut ga, mut gb) = (a.alloc_grads(), b.alloc_grads());
        let before = a.linear1.weight.as_vec();
        for step in 0..3 {
            let x: Tensor<Rank2<4, 300>, f32, _> = dev.sample_normal();
            ga = a.forward(x.trace(ga)).square().mean().backward();
            gb = b.forward(x.trace(gb)).square().mean().backward();
            opt_a.update(&mut a, &ga).unwrap();
            opt_b.update(&mut b, &gb).unwrap();
            a.zero_grads(&mut ga);
            b.zero_grads(&mut gb);
            let (wa, wb) = (a.linear1.weight.as_vec(), b.linear1.weight.as_vec());
            assert!(wa == wb, "step {step}: the weights differ");
            assert_eq!(
                a.linear1.bias.as_vec(),
                b.linear1.bias.as_vec(),
                "step {step}"
            );
        }
        assert_ne!(a.linear1.weight.as_vec(), before);
    }

    #[test]
    fn sgd_equals_dfdx_bit_for_bit() {
        for momentum in [
            None,
            Some(Momentum::Classic(0.9)),
            Some(Momentum::Nesterov(0.8)),
        ] {
            let cfg = SgdConfig {
                lr: 0.05,
                momentum,
                weight_decay: Some(WeightDecay::L2(1e-3)),
            };
            same_as_dfdx(|m| Sgd::new(m, cfg), |m| dfdx::optim::Sgd::new(m, cfg));
        }
    }

    #[test]
    fn buffers_are_restored_exactly() {
        let dev = crate::test_device!();
        let net = Net::<f32, TestDevice>::new(&dev);
        let mut opt = Adam::new(&net, AdamConfig::default());
        let p = &net.linear1.weight;
        assert_eq!(opt.buffer(0, p), vec![0.0; 35]);
        let values: Vec<f32> = (0..35).map(|i| (i as f32 - 17.0) * 1e-3 + 1e-30).collect();
        opt.set_buffer(0, p, values.clone()).unwrap();
        assert_eq!(opt.buffer(0, p), values);
        // Setting again replaces (backward adds into an entry: it must have been zeroed).
        let twice: Vec<f32> = values.iter().map(|v| v * 2.0).collect();
        opt.set_buffer(0, p, twice.clone()).unwrap();
        opt.set_buffer(1, &net.linear2.bias, vec![1.0, 2.0, 3.0])
            .unwrap();
        assert_eq!(opt.buffer(0, p), twice);
        assert_eq!(opt.buffer(1, &net.linear2.bias), [1.0, 2.0, 3.0]);
        assert_eq!(opt.buffer(1, p), vec![0.0; 35]);
    }
}
