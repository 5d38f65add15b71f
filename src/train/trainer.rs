//! The training loop: mini-batches, forward with a tape, loss (+ penalties), a finiteness
//! check, backward, clipping, update, max-norm.

use std::path::{Path, PathBuf};
use std::time::Instant;

use dfdx::nn::{Module, ModuleMut, TensorCollection, ZeroGrads};
use dfdx::optim::Optimizer;
use dfdx::shapes::{Const, Rank1, Rank3};
use dfdx::tensor::{NoneTape, OwnedTape, Tensor};
use dfdx::tensor_ops::{Backward, Device, TryAdd};
use num_traits::ToPrimitive;
use rand::Rng;

use super::csv::CsvLog;
use super::error::TrainError;
use super::metrics::{EpochMetrics, Evaluation};
use super::progress::ProgressBar;
use crate::data::{DataError, DataErrorKind, Dataset, ExampleShape};
use crate::loss::{argmax_rows, correct_count, ClassificationLoss};
use crate::network::Element;
use crate::regularize::{
    parameter_names, try_apply_max_norm, try_clip_grad_norm, try_clip_grad_value, try_penalty,
    MaxNorm, Penalty,
};
use crate::trace::TraceInput;

/// A model that maps a batch of examples of shape `S` to `K` logits, with a gradient tape (for
/// training, through dfdx's `ModuleMut`: a network's `forward_mut`, which also updates batch
/// normalisation's running statistics) and without (for evaluation), and whose parameters an
/// optimiser can update.
///
/// Implemented for every such model: networks made with [`network!`](crate::network!) and
/// dfdx's built modules alike.
pub trait Classifier<S: ExampleShape, const K: usize, E: Element, D: Device<E>>:
    TensorCollection<E, D>
    + ModuleMut<
        Tensor<S::Batch, E, D, OwnedTape<E, D>>,
        Output = Tensor<(usize, Const<K>), E, D, OwnedTape<E, D>>,
        Error = D::Err,
    > + Module<
        Tensor<S::Batch, E, D, NoneTape>,
        Output = Tensor<(usize, Const<K>), E, D, NoneTape>,
        Error = D::Err,
    >
{
}

impl<S, const K: usize, E, D, M> Classifier<S, K, E, D> for M
where
    S: ExampleShape,
    E: Element,
    D: Device<E>,
    M: TensorCollection<E, D>
        + ModuleMut<
            Tensor<S::Batch, E, D, OwnedTape<E, D>>,
            Output = Tensor<(usize, Const<K>), E, D, OwnedTape<E, D>>,
            Error = D::Err,
        > + Module<
            Tensor<S::Batch, E, D, NoneTape>,
            Output = Tensor<(usize, Const<K>), E, D, NoneTape>,
            Error = D::Err,
        >,
{
}

/// How much a [`Trainer`] prints (on stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbosity {
    /// Nothing.
    Silent,
    /// One line of [`EpochMetrics`] per epoch.
    Epochs,
    /// A progress bar during each epoch ([`ProgressStyle::for_stderr`](super::ProgressStyle::for_stderr)) and the epoch lines.
    #[default]
    Progress,
}

/// Trains a classifier with mini-batch gradient descent and reports per-epoch metrics.
///
/// The loop is PyTorch's usual one: for each epoch, shuffle, and for each mini-batch
/// `loss = F.cross_entropy(model(x), y); loss.backward(); opt.step(); opt.zero_grad()`; then
/// evaluate on the test set without a tape.
///
/// Before the first step the data sets are scanned for NaN and infinite features
/// ([`TrainError::NonFiniteData`]). Each step, in order (every part but the loss optional):
/// 1. the [loss](Self::loss) of the batch (cross-entropy unless another is chosen), plus the
///    [penalties](Self::penalty), on the gradient tape;
/// 2. a check that this total is finite: a NaN or infinite loss stops training with
///    [`TrainError::NonFiniteLoss`], naming the epoch and step, *before* the weights change;
/// 3. backward, then [clipping by value](Self::clip_grad_value) and
///    [by global norm](Self::clip_grad_norm);
/// 4. the optimiser's update, then the [max-norm constraint](Self::max_norm).
///
/// Dropout layers are active during the training steps (the tape is attached) and off during
/// evaluation.
///
/// ```
/// use typednet::data::Dataset;
/// use typednet::dfdx::optim::{Sgd, SgdConfig};
/// use typednet::prelude::*;
/// use typednet::train::{Trainer, Verbosity};
/// use rand::{rngs::StdRng, SeedableRng};
///
/// // Two classes of 2-vectors: is the first value the larger?
/// let points: Vec<[f32; 2]> = (0..64).map(|i| [(i % 8) as f32, (i / 8) as f32]).collect();
/// let labels = points.iter().map(|p| usize::from(p[0] > p[1])).collect();
/// let data = Dataset::new("points", points.concat(), labels, vec![2], 2)?;
///
/// let dev = Cpu::default();
/// let mut model = dev.build_module::<Linear<2, 2>, f32>();
/// let mut opt = Sgd::new(&model, SgdConfig { lr: 0.1, ..Default::default() });
/// let metrics = Trainer::new(&dev)
///     .epochs(20)
///     .batch_size(16)
///     .verbosity(Verbosity::Silent)
///     .fit_vectors(&mut model, &mut opt, &data, &data, &mut StdRng::seed_from_u64(0))?;
/// assert_eq!(metrics.len(), 20);
/// assert!(metrics[19].test_accuracy > 0.9);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Trainer<'d, D> {
    dev: &'d D,
    epochs: usize,
    batch_size: usize,
    verbosity: Verbosity,
    loss: ClassificationLoss,
    penalties: Vec<Penalty>,
    clip_value: Option<f64>,
    clip_norm: Option<f64>,
    max_norm: Option<MaxNorm>,
    metrics_csv: Option<PathBuf>,
    prefetch: usize,
}

impl<'d, D> Trainer<'d, D> {
    /// A trainer that builds its batches on `dev`: one epoch, batches of 64, a progress bar,
    /// cross-entropy, no penalty, clipping or constraint.
    pub fn new(dev: &'d D) -> Self {
        Self {
            dev,
            epochs: 1,
            batch_size: 64,
            verbosity: Verbosity::default(),
            loss: ClassificationLoss::default(),
            penalties: Vec::new(),
            clip_value: None,
            clip_norm: None,
            max_norm: None,
            metrics_csv: None,
            prefetch: 0,
        }
    }

    /// The loss to minimise (and to report): cross-entropy by default, or the K-class hinge or
    /// squared hinge.
    #[must_use]
    pub fn loss(mut self, loss: ClassificationLoss) -> Self {
        self.loss = loss;
        self
    }

    /// Adds a penalty (L2 or L1 on chosen parameters) to the loss that is minimised; several
    /// may be added. The reported losses are the data loss alone, without penalties.
    ///
    /// ```
    /// use typednet::prelude::*;
    /// use typednet::regularize::{Penalty, Select};
    /// use typednet::train::Trainer;
    ///
    /// let dev = Cpu::default();
    /// let trainer = Trainer::new(&dev)
    ///     .penalty(Penalty::l2(1e-4))
    ///     .penalty(Penalty::l1(1e-5).on(Select::layers(["linear1"])));
    /// # let _ = trainer;
    /// ```
    #[must_use]
    pub fn penalty(mut self, penalty: Penalty) -> Self {
        self.penalties.push(penalty);
        self
    }

    /// Clamps every gradient element to `[−v, v]` after backward
    /// (PyTorch `clip_grad_value_`); `v` must be positive.
    #[must_use]
    pub fn clip_grad_value(mut self, v: f64) -> Self {
        self.clip_value = Some(v);
        self
    }

    /// Scales the gradients after backward so that their global norm is at most about
    /// `max_norm` (PyTorch `clip_grad_norm_`); applied after [`clip_grad_value`](Self::clip_grad_value)
    /// when both are set. `max_norm` must be positive.
    #[must_use]
    pub fn clip_grad_norm(mut self, max_norm: f64) -> Self {
        self.clip_norm = Some(max_norm);
        self
    }

    /// Keeps every neuron's incoming weight vector within norm `c` after each optimiser step
    /// (see [`MaxNorm`]; `MaxNorm::new(c)` constrains all weights).
    #[must_use]
    pub fn max_norm(mut self, constraint: MaxNorm) -> Self {
        self.max_norm = Some(constraint);
        self
    }

    /// Passes over the training set.
    #[must_use]
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }

    /// Examples per mini-batch (the last batch of an epoch may be smaller).
    #[must_use]
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// What to print while training.
    #[must_use]
    pub fn verbosity(mut self, verbosity: Verbosity) -> Self {
        self.verbosity = verbosity;
        self
    }

    /// Writes the per-epoch metrics to a CSV file at `path` while training (see [`CsvLog`]:
    /// a header row, then one row per epoch, flushed at once, so a killed run keeps the epochs
    /// it finished). The file is created (or truncated) before the first step, so a path that
    /// cannot be written fails at once, with [`TrainError::MetricsFile`] naming the file.
    ///
    /// **Keras**: `model.fit(…, callbacks=[CSVLogger(path)])`.
    #[must_use]
    pub fn metrics_csv(mut self, path: impl AsRef<Path>) -> Self {
        self.metrics_csv = Some(path.as_ref().to_path_buf());
        self
    }

    /// Assembles the next training batches (gathering the shuffled examples' features and
    /// labels) on a background thread, up to `depth` batches ahead of the step being trained;
    /// 0, the default, assembles each batch when it is needed, on the training thread. The
    /// batches, their order and so the trained weights are the same either way (see
    /// [`Batches::prefetch`](crate::data::Batches::prefetch)); only the time spent waiting
    /// for them changes. Evaluation is not prefetched.
    ///
    /// **PyTorch**: `DataLoader(train, batch_size, shuffle=True, num_workers=1, prefetch_factor=depth)`.
    #[must_use]
    pub fn prefetch(mut self, depth: usize) -> Self {
        self.prefetch = depth;
        self
    }

    /// Trains `model` on `train` for the configured epochs, batches shuffled by `rng`, and
    /// measures it on `test` after each epoch. `S` is the shape the model reads one example as
    /// (see [`ExampleShape`]); [`fit_vectors`](Self::fit_vectors) and
    /// [`fit_images`](Self::fit_images) name it for you.
    ///
    /// Fails before training when examples cannot be read as `S`, the model has fewer than
    /// `classes` outputs, the batch size is 0, a feature of either data set is NaN or infinite
    /// ([`TrainError::NonFiniteData`]), or a penalty, clipping threshold or max-norm is invalid
    /// (a negative strength, a limit ≤ 0, a layer name the model does not have); during
    /// training on a non-finite loss ([`TrainError::NonFiniteLoss`], with the weights as they
    /// were before that step) or a device or optimiser error.
    pub fn fit<S, const K: usize, E, M, O, R>(
        &self,
        model: &mut M,
        optimizer: &mut O,
        train: &Dataset,
        test: &Dataset,
        rng: &mut R,
    ) -> Result<Vec<EpochMetrics>, TrainError<D::Err>>
    where
        S: ExampleShape,
        E: Element,
        D: Device<E>,
        M: Classifier<S, K, E, D>,
        O: Optimizer<M, D, E>,
        R: Rng + ?Sized,
    {
        for data in [train, test] {
            check_fits::<S, K>(data, self.batch_size)?;
            check_finite(data)?;
        }
        self.check_regularizers(model)?;
        let mut csv = self.metrics_csv.as_ref().map(CsvLog::create).transpose()?;
        let mut grads = model.try_alloc_grads().map_err(TrainError::Device)?;
        let mut history = Vec::with_capacity(self.epochs);
        for epoch in 1..=self.epochs {
            let start = Instant::now();
            let batches = train.shuffled_batches::<S, R>(self.batch_size, rng)?;
            let mut bar =
                self.progress_bar(format!("epoch {epoch}/{}", self.epochs), batches.len());
            let (mut loss_sum, mut correct) = (0.0, 0);
            // The gradients move into the epoch's closure and back out of it.
            let trained = batches.prefetch::<E, _>(self.prefetch, |batches| {
                let mut grads = grads;
                for (i, batch) in batches.enumerate() {
                    let (x, labels) = batch
                        .try_into_tensor::<D>(self.dev)
                        .map_err(TrainError::Device)?;
                    let logits = model
                        .try_forward_mut(x.traced_input(grads))
                        .map_err(TrainError::Device)?;
                    correct += correct_count(&argmax_rows(&logits), &labels);
                    let loss = self.loss.try_loss(logits, &labels)?;
                    let data_loss = scalar(&loss);
                    loss_sum += data_loss * labels.len() as f64;
                    let mut objective = loss;
                    for penalty in &self.penalties {
                        objective = objective
                            .try_add(try_penalty(model, penalty)?)
                            .map_err(TrainError::Device)?;
                    }
                    let value = if self.penalties.is_empty() {
                        data_loss
                    } else {
                        scalar(&objective)
                    };
                    if !value.is_finite() {
                        return Err(TrainError::NonFiniteLoss {
                            epoch,
                            step: i + 1,
                            value,
                        });
                    }
                    grads = objective.try_backward().map_err(TrainError::Device)?;
                    if let Some(v) = self.clip_value {
                        try_clip_grad_value(model, &mut grads, v)?;
                    }
                    if let Some(max_norm) = self.clip_norm {
                        try_clip_grad_norm(model, &mut grads, max_norm)?;
                    }
                    optimizer.update(model, &grads)?;
                    if let Some(constraint) = &self.max_norm {
                        try_apply_max_norm(model, constraint)?;
                    }
                    model
                        .try_zero_grads(&mut grads)
                        .map_err(TrainError::Device)?;
                    let seen = (i * self.batch_size + labels.len()) as f64;
                    bar.set(i + 1, Some(loss_sum / seen));
                }
                Ok(grads)
            });
            grads = match trained {
                Ok(grads) => grads,
                Err(err) => {
                    bar.finish_and_clear();
                    return Err(err);
                }
            };
            bar.finish_and_clear();
            let test_result = self.evaluate::<S, K, E, M>(model, test)?;
            let metrics = EpochMetrics {
                epoch,
                train_loss: loss_sum / train.len() as f64,
                train_accuracy: correct as f64 / train.len() as f64,
                test_loss: test_result.loss,
                test_accuracy: test_result.accuracy,
                seconds: start.elapsed().as_secs_f64(),
            };
            if self.verbosity != Verbosity::Silent {
                eprintln!("{metrics}");
            }
            if let Some(csv) = &mut csv {
                csv.append(&metrics)?;
            }
            history.push(metrics);
        }
        Ok(history)
    }

    /// [`fit`](Self::fit) for a model that reads each example as a vector of `F` values (an
    /// image data set is flattened: `[1, 28, 28]` reads as `[784]`).
    pub fn fit_vectors<const F: usize, const K: usize, E, M, O, R>(
        &self,
        model: &mut M,
        optimizer: &mut O,
        train: &Dataset,
        test: &Dataset,
        rng: &mut R,
    ) -> Result<Vec<EpochMetrics>, TrainError<D::Err>>
    where
        E: Element,
        D: Device<E>,
        M: Classifier<Rank1<F>, K, E, D>,
        O: Optimizer<M, D, E>,
        R: Rng + ?Sized,
    {
        self.fit::<Rank1<F>, K, E, M, O, R>(model, optimizer, train, test, rng)
    }

    /// [`fit`](Self::fit) for a model that reads each example as a `[C, H, W]` image.
    pub fn fit_images<const C: usize, const H: usize, const W: usize, const K: usize, E, M, O, R>(
        &self,
        model: &mut M,
        optimizer: &mut O,
        train: &Dataset,
        test: &Dataset,
        rng: &mut R,
    ) -> Result<Vec<EpochMetrics>, TrainError<D::Err>>
    where
        E: Element,
        D: Device<E>,
        M: Classifier<Rank3<C, H, W>, K, E, D>,
        O: Optimizer<M, D, E>,
        R: Rng + ?Sized,
    {
        self.fit::<Rank3<C, H, W>, K, E, M, O, R>(model, optimizer, train, test, rng)
    }

    /// Mean [loss](Self::loss) (cross-entropy unless another was chosen; penalties not
    /// included) and accuracy of `model` on `data`, in batches of the configured size, without
    /// a tape (PyTorch: under `torch.no_grad()`, in `eval()` mode: no dropout). NaN for an
    /// empty data set.
    pub fn evaluate<S, const K: usize, E, M>(
        &self,
        model: &M,
        data: &Dataset,
    ) -> Result<Evaluation, TrainError<D::Err>>
    where
        S: ExampleShape,
        E: Element,
        D: Device<E>,
        M: Module<
            Tensor<S::Batch, E, D, NoneTape>,
            Output = Tensor<(usize, Const<K>), E, D, NoneTape>,
            Error = D::Err,
        >,
    {
        check_fits::<S, K>(data, self.batch_size)?;
        let (mut loss_sum, mut correct) = (0.0, 0);
        for batch in data.batches::<S>(self.batch_size)? {
            let labels = batch.labels();
            let x = batch
                .try_to_tensor::<E, D>(self.dev)
                .map_err(TrainError::Device)?;
            let logits = model.try_forward(x).map_err(TrainError::Device)?;
            correct += correct_count(&argmax_rows(&logits), &labels);
            loss_sum += scalar(&self.loss.try_loss(logits, &labels)?) * labels.len() as f64;
        }
        let n = data.len() as f64;
        Ok(Evaluation {
            loss: loss_sum / n,
            accuracy: correct as f64 / n,
        })
    }

    /// Checks the penalties, clipping thresholds and max-norm against `model` once, before
    /// any step, so that a typo in a layer name fails at once and not at the first step.
    fn check_regularizers<E, M>(&self, model: &M) -> Result<(), TrainError<D::Err>>
    where
        E: Element,
        D: Device<E>,
        M: TensorCollection<E, D>,
    {
        let names = parameter_names(model);
        for penalty in &self.penalties {
            penalty.check(&names)?;
        }
        if let Some(constraint) = &self.max_norm {
            constraint.check(&names)?;
        }
        if let Some(v) = self.clip_value {
            crate::regularize::check_limit("clip_grad_value", v)?;
        }
        if let Some(max_norm) = self.clip_norm {
            crate::regularize::check_limit("clip_grad_norm", max_norm)?;
        }
        Ok(())
    }

    fn progress_bar(&self, label: String, total: usize) -> ProgressBar {
        match self.verbosity {
            Verbosity::Progress => ProgressBar::stderr(label, total),
            Verbosity::Silent | Verbosity::Epochs => ProgressBar::hidden(label, total),
        }
    }
}

/// Checks once, before any work, that `data` can feed a model reading `S` with `K` outputs.
fn check_fits<S: ExampleShape, const K: usize>(
    data: &Dataset,
    batch_size: usize,
) -> Result<(), DataError> {
    data.check_example_shape::<S>("batch")?;
    if batch_size == 0 {
        return Err(DataError::new(data.name(), DataErrorKind::ZeroBatchSize));
    }
    if K < data.classes() {
        return Err(DataError::new(
            data.name(),
            DataErrorKind::TooFewOutputs {
                outputs: K,
                classes: data.classes(),
            },
        ));
    }
    Ok(())
}

/// Fails on the first NaN or infinite feature. The loss check of each step would not always
/// catch it: dfdx's `relu` maps NaN to 0, so behind a ReLU a NaN pixel leaves the loss finite
/// while the first layer's weight gradient (`xᵀ·δ`) turns NaN and, after the update, so do the
/// weights. One pass over the data before training costs little.
fn check_finite<E>(data: &Dataset) -> Result<(), TrainError<E>> {
    let example_len = data.example_len().max(1);
    match data.features().iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(position) => Err(TrainError::NonFiniteData {
            data: data.name().to_string(),
            example: position / example_len,
            feature: position % example_len,
            value: data.features()[position],
        }),
    }
}

/// The value of a one-element tensor as `f64`.
fn scalar<E: Element, D: Device<E>, T>(t: &Tensor<dfdx::shapes::Rank0, E, D, T>) -> f64 {
    t.as_vec()
        .first()
        .and_then(ToPrimitive::to_f64)
        .unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_few_outputs_is_an_error_before_training() {
        let data = Dataset::new("d", vec![0.0; 6], vec![0, 1, 2], vec![2], 3).unwrap();
        let err = check_fits::<Rank1<2>, 2>(&data, 4).unwrap_err();
        assert_eq!(
            err.to_string(),
            "d: the model has 2 outputs but the data set has 3 classes"
        );
    }
}
