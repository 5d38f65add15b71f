//! K-class losses from logits `y` of shape `[B, K]` and class indices `t`: cross-entropy, hinge
//! and squared hinge, each the mean over the batch.

use core::fmt;

use dfdx::shapes::{Axis, Const, Dim, Dtype, HasShape, Rank0};
use dfdx::tensor::{Tape, Tensor};
use dfdx::tensor_ops::{BroadcastTo, Device, MeanTo, SelectTo, SumTo, TryAdd, TryMul, TrySub};

use super::LossError;

/// Mean cross-entropy of `logits` against class indices:
/// `−(1/B) Σᵢ log softmax(logitsᵢ)[labelsᵢ]`.
///
/// The PyTorch equivalent is `F.cross_entropy(logits, labels)` (mean reduction). It is computed
/// through a log-softmax that subtracts each row's maximum, so large logits neither overflow
/// nor lose precision. `B` may be a `Const` or a run-time `usize`.
///
/// # Panics
/// When `labels.len()` is not the batch size, a label is `≥ K`, or the device fails; see
/// [`try_cross_entropy`].
///
/// ```
/// use typednet::loss::cross_entropy;
/// use typednet::prelude::*;
///
/// let dev = Cpu::default();
/// let logits = dev.tensor([[2.0f32, 0.0, 0.0], [0.0, 0.0, 0.0]]);
/// let loss: Tensor<Rank0, f32, Cpu> = cross_entropy(logits, &[0, 2]);
/// // (−log(e²/(e²+2)) − log(1/3)) / 2
/// assert!((loss.array() - 0.66908).abs() < 1e-5);
/// ```
pub fn cross_entropy<B: Dim, const K: usize, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    logits: Tensor<(B, Const<K>), E, D, T>,
    labels: &[usize],
) -> Tensor<Rank0, E, D, T> {
    unwrap_loss(try_cross_entropy(logits, labels))
}

/// Fallible [`cross_entropy`]: fails, naming both sizes, when `labels.len()` is not the batch
/// size or a label is `≥ K`, and when the device fails.
pub fn try_cross_entropy<B: Dim, const K: usize, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    logits: Tensor<(B, Const<K>), E, D, T>,
    labels: &[usize],
) -> Result<Tensor<Rank0, E, D, T>, LossError<D::Err>> {
    const LOSS: &str = "cross_entropy";
    check_labels(LOSS, logits.shape().0.size(), K, labels)?;
    let target = one_hot(&logits, labels)?;
    // dfdx's loss is `−mean over all B·K elements of (log_softmax · target)`, times K: with a
    // one-hot target that is exactly the mean over the batch, as in PyTorch (checked in tests).
    Ok(dfdx::losses::cross_entropy_with_logits_loss(logits, target))
}

/// Mean K-class hinge loss (Weston–Watkins / Crammer–Singer style multi-class SVM loss):
/// `(1/B) Σᵢ Σ_{j≠tᵢ} max(0, 1 − (yᵢ,tᵢ − yᵢ,ⱼ))`.
///
/// Every wrong class whose score comes within a margin of 1 of the true class's score costs
/// the shortfall.
///
/// **PyTorch**: `nn.MultiMarginLoss(p=1, margin=1)(logits, labels) · K`. PyTorch divides each
/// example's sum by the number of classes `K`; this function does not, following the notes'
/// definition (the tests check it against PyTorch with that factor). Where the margin is
/// exactly met the subgradient 0 is taken, as PyTorch does.
///
/// # Shapes
/// `logits: [B, K]`, `labels: B` indices below `K` → a scalar.
///
/// # Panics
/// As [`try_multiclass_hinge`] fails.
///
/// ```
/// use typednet::loss::multiclass_hinge;
/// use typednet::prelude::*;
///
/// let dev = Cpu::default();
/// let logits = dev.tensor([[3.0f32, 2.5, -1.0]]);
/// // Class 1 is within the margin of class 0 by 0.5; class 2 is far below.
/// assert_eq!(multiclass_hinge(logits, &[0]).array(), 0.5);
/// ```
pub fn multiclass_hinge<B: Dim, const K: usize, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    logits: Tensor<(B, Const<K>), E, D, T>,
    labels: &[usize],
) -> Tensor<Rank0, E, D, T> {
    unwrap_loss(try_multiclass_hinge(logits, labels))
}

/// Fallible [`multiclass_hinge`]: fails, naming the sizes, when `labels.len()` is not the
/// batch size or a label is `≥ K`, and when the device fails.
pub fn try_multiclass_hinge<B: Dim, const K: usize, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    logits: Tensor<(B, Const<K>), E, D, T>,
    labels: &[usize],
) -> Result<Tensor<Rank0, E, D, T>, LossError<D::Err>> {
    multiclass_margin("multiclass_hinge", logits, labels, false)
}

/// Mean K-class squared hinge loss:
/// `(1/B) Σᵢ Σ_{j≠tᵢ} max(0, 1 − (yᵢ,tᵢ − yᵢ,ⱼ))²`.
///
/// Like [`multiclass_hinge`], but a small shortfall costs little and a large one a lot, and the
/// loss is differentiable where the margin is met.
///
/// **PyTorch**: `nn.MultiMarginLoss(p=2, margin=1)(logits, labels) · K` (PyTorch divides by
/// `K`; this function, following the notes, does not).
///
/// # Shapes
/// `logits: [B, K]`, `labels: B` indices below `K` → a scalar.
///
/// # Panics
/// As [`try_multiclass_squared_hinge`] fails.
pub fn multiclass_squared_hinge<B: Dim, const K: usize, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    logits: Tensor<(B, Const<K>), E, D, T>,
    labels: &[usize],
) -> Tensor<Rank0, E, D, T> {
    unwrap_loss(try_multiclass_squared_hinge(logits, labels))
}

/// Fallible [`multiclass_squared_hinge`]: fails, naming the sizes, when `labels.len()` is not
/// the batch size or a label is `≥ K`, and when the device fails.
pub fn try_multiclass_squared_hinge<
    B: Dim,
    const K: usize,
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
>(
    logits: Tensor<(B, Const<K>), E, D, T>,
    labels: &[usize],
) -> Result<Tensor<Rank0, E, D, T>, LossError<D::Err>> {
    multiclass_margin("multiclass_squared_hinge", logits, labels, true)
}

/// `(1/B) Σᵢ Σ_{j≠tᵢ} max(0, 1 − yᵢ,tᵢ + yᵢ,ⱼ)^p` with `p` 2 when `squared`, else 1.
fn multiclass_margin<B: Dim, const K: usize, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    loss: &'static str,
    logits: Tensor<(B, Const<K>), E, D, T>,
    labels: &[usize],
    squared: bool,
) -> Result<Tensor<Rank0, E, D, T>, LossError<D::Err>> {
    let shape = *logits.shape();
    check_labels(loss, shape.0.size(), K, labels)?;
    let dev = logits.device().clone();
    let indices = dev
        .try_tensor_from_vec(labels.to_vec(), (shape.0,))
        .map_err(LossError::Device)?;
    // `yᵢ,tᵢ` is read through a copy of the logits with its own empty tape, merged back by the
    // subtraction, so that the gradient reaches the true class's score too.
    let true_scores = logits
        .retaped::<T>()
        .try_select(indices)
        .and_then(|s| s.try_broadcast_like::<_, Axis<1>>(&shape))
        .map_err(LossError::Device)?;
    let margins = logits
        .try_sub(true_scores)
        .and_then(|m| m.try_add(E::ONE))
        .and_then(|m| m.try_relu())
        .map_err(LossError::Device)?;
    let margins = if squared {
        margins.try_square().map_err(LossError::Device)?
    } else {
        margins
    };
    // The true class's own term is max(0, 1 − 0)^p = 1, not part of the sum: masked out.
    let mut wrong_class = vec![E::ONE; shape.0.size() * K];
    for (row, &label) in labels.iter().enumerate() {
        wrong_class[row * K + label] = E::default();
    }
    let wrong_class = dev
        .try_tensor_from_vec(wrong_class, shape)
        .map_err(LossError::Device)?;
    margins
        .try_mul(wrong_class)
        .and_then(|m| m.try_sum::<(B,), Axis<1>>())
        .and_then(|per_example| per_example.try_mean::<_, Axis<0>>())
        .map_err(LossError::Device)
}

/// The K-class losses by name, for code that lets its user choose one, such as
/// [`Trainer::loss`](crate::train::Trainer::loss).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClassificationLoss {
    /// [`cross_entropy`] (softmax regression), PyTorch `F.cross_entropy`.
    #[default]
    CrossEntropy,
    /// [`multiclass_hinge`], PyTorch `nn.MultiMarginLoss(p=1) · K`.
    Hinge,
    /// [`multiclass_squared_hinge`], PyTorch `nn.MultiMarginLoss(p=2) · K`.
    SquaredHinge,
}

impl ClassificationLoss {
    /// The chosen loss of `logits` against class indices, the mean over the batch.
    pub fn try_loss<B: Dim, const K: usize, E: Dtype, D: Device<E>, T: Tape<E, D>>(
        self,
        logits: Tensor<(B, Const<K>), E, D, T>,
        labels: &[usize],
    ) -> Result<Tensor<Rank0, E, D, T>, LossError<D::Err>> {
        match self {
            Self::CrossEntropy => try_cross_entropy(logits, labels),
            Self::Hinge => try_multiclass_hinge(logits, labels),
            Self::SquaredHinge => try_multiclass_squared_hinge(logits, labels),
        }
    }
}

impl fmt::Display for ClassificationLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CrossEntropy => "cross-entropy",
            Self::Hinge => "hinge",
            Self::SquaredHinge => "squared hinge",
        })
    }
}

/// Checks once, at the boundary, what the types cannot: the label count and range.
fn check_labels<E>(
    loss: &'static str,
    batch: usize,
    classes: usize,
    labels: &[usize],
) -> Result<(), LossError<E>> {
    if labels.len() != batch {
        return Err(LossError::LabelCount {
            loss,
            batch,
            labels: labels.len(),
        });
    }
    if let Some((index, &label)) = labels.iter().enumerate().find(|(_, &l)| l >= classes) {
        return Err(LossError::LabelOutOfRange {
            loss,
            index,
            label,
            classes,
        });
    }
    Ok(())
}

/// `[B, K]` with a 1 at each row's label, built on the logits' device.
fn one_hot<B: Dim, const K: usize, E: Dtype, D: Device<E>, T>(
    logits: &Tensor<(B, Const<K>), E, D, T>,
    labels: &[usize],
) -> Result<Tensor<(B, Const<K>), E, D>, LossError<D::Err>> {
    let mut one_hot = vec![E::default(); labels.len() * K];
    for (row, &label) in labels.iter().enumerate() {
        one_hot[row * K + label] = E::ONE;
    }
    logits
        .device()
        .try_tensor_from_vec(one_hot, *logits.shape())
        .map_err(LossError::Device)
}

/// The value of an infallible-by-contract loss, or a panic with its error's message.
pub(super) fn unwrap_loss<T, E: fmt::Display>(result: Result<T, LossError<E>>) -> T {
    match result {
        Ok(value) => value,
        Err(err) => panic!("{err}"),
    }
}
