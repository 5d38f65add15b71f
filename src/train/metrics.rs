//! What a training run measures.

use core::fmt;

/// The loss and accuracy of a model on a data set; see
/// [`Trainer::evaluate`](super::Trainer::evaluate).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean loss over the examples, the trainer's loss (cross-entropy by default) without
    /// penalties (NaN for an empty data set).
    pub loss: f64,
    /// Fraction of examples whose largest logit is their label (NaN for an empty data set).
    pub accuracy: f64,
}

/// What one epoch of [`Trainer::fit`](super::Trainer::fit) measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochMetrics {
    /// The epoch, counted from 1.
    pub epoch: usize,
    /// Mean loss (the trainer's, without penalties) over the epoch's training examples, each
    /// taken from the forward pass that trained on it (so measured while the weights changed,
    /// as PyTorch loops usually report it).
    pub train_loss: f64,
    /// Training accuracy, measured like `train_loss`.
    pub train_accuracy: f64,
    /// Mean loss on the test set after the epoch (NaN when it is empty).
    pub test_loss: f64,
    /// Accuracy on the test set after the epoch (NaN when it is empty).
    pub test_accuracy: f64,
    /// Wall-clock seconds the epoch took, training and test evaluation together.
    pub seconds: f64,
}

impl fmt::Display for EpochMetrics {
    /// `epoch 2: train loss 0.3121, train accuracy 91.05%, test loss 0.2903, test accuracy 91.60%, 1.52 s`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "epoch {}: train loss {:.4}, train accuracy {:.2}%, test loss {:.4}, test accuracy {:.2}%, {:.2} s",
            self.epoch,
            self.train_loss,
            100.0 * self.train_accuracy,
            self.test_loss,
            100.0 * self.test_accuracy,
            self.seconds
        )
    }
}
