//! What the autoencoder examples share: the training loop and the squared reconstruction error.

use rand::rngs::StdRng;
use rand::SeedableRng;
use typednet::autoencoder::{Autoencoder, Corruption};
use typednet::data::Dataset;
use typednet::dfdx::losses::mse_loss;
use typednet::dfdx::optim::{Adam, AdamConfig, Optimizer};
use typednet::prelude::*;
use typednet::train::ProgressBar;

use crate::common::{Device, OrDeviceError};

/// A batch of flattened digits, `[B, 784]`.
pub type Digits<T = NoneTape> = Tensor<(usize, Const<784>), f32, Device, T>;

/// An extra loss term computed from the batch's code and the model (a penalty), or nothing.
pub type CodeTerm<'a, M, const Z: usize> = &'a dyn Fn(
    &M,
    &Digits,
    &Tensor<(usize, Const<Z>), f32, Device, OwnedTape<f32, Device>>,
) -> Result<
    Tensor<Rank0, f32, Device, OwnedTape<f32, Device>>,
    Box<dyn std::error::Error>,
>;

/// How long to train, on what, and the name printed beside the loss.
pub struct Recipe<'a> {
    /// Passes over the training digits.
    pub epochs: usize,
    /// Seeds the shuffling and the corruption.
    pub seed: u64,
    /// What the encoder sees: the digit itself ([`Corruption::None`]) or a corrupted copy.
    pub corruption: Corruption,
    /// The model's name in the progress lines.
    pub label: &'a str,
}

/// Trains `model` to reconstruct the clean digits of `train` from their `corruption`
/// (mean squared error over pixels, Adam 1e-3, batch 128), printing the loss per epoch.
pub fn train<M, const Z: usize>(
    model: &mut M,
    dev: &Device,
    train: &Dataset,
    recipe: Recipe<'_>,
    extra: Option<CodeTerm<'_, M, Z>>,
) -> Result<(), Box<dyn std::error::Error>>
where
    M: TensorCollection<f32, Device> + Autoencoder,
    M::Encoder: Module<
        Digits<OwnedTape<f32, Device>>,
        Output = Tensor<(usize, Const<Z>), f32, Device, OwnedTape<f32, Device>>,
        Error = <Device as HasErr>::Err,
    >,
    M::Decoder: Module<
        Tensor<(usize, Const<Z>), f32, Device, OwnedTape<f32, Device>>,
        Output = Digits<OwnedTape<f32, Device>>,
        Error = <Device as HasErr>::Err,
    >,
{
    let Recipe {
        epochs,
        seed,
        corruption,
        label,
    } = recipe;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut optimizer = Adam::new(
        model,
        AdamConfig {
            lr: 1e-3,
            ..Default::default()
        },
    );
    let mut gradients = model.try_alloc_grads().dev()?;
    for epoch in 1..=epochs {
        let start = std::time::Instant::now();
        let (mut total, mut batches) = (0.0f64, 0);
        let shuffled = train.shuffled_batches::<Rank1<784>, _>(128, &mut rng)?;
        let mut bar =
            ProgressBar::stderr(format!("{label}: epoch {epoch}/{epochs}"), shuffled.len());
        for batch in shuffled {
            let clean: Digits = batch.try_to_tensor(dev).dev()?;
            let seen = corruption.try_apply(&clean, &mut rng)?;
            let code = model
                .encoder()
                .try_forward(seen.clone().traced(gradients))
                .dev()?;
            let term = match extra {
                Some(term) => Some(term(model, &seen, &code)?),
                None => None,
            };
            let reconstruction = model.decoder().try_forward(code).dev()?;
            let mut loss = mse_loss(reconstruction, clean);
            if let Some(term) = term {
                loss = loss + term;
            }
            total += f64::from(loss.array());
            batches += 1;
            gradients = loss.backward();
            optimizer
                .update(model, &gradients)
                .map_err(|e| format!("{e:?}"))?;
            model.zero_grads(&mut gradients);
            bar.set(batches, Some(total / batches as f64));
        }
        bar.finish_and_clear();
        println!(
            "{label}: epoch {epoch:>2}/{epochs}  loss {:.5}  ({:.1} s)",
            total / batches as f64,
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Runs `f` over `data` in batches of 500 and gathers its outputs (`[n, width]`, row-major).
pub fn map_batches(
    dev: &Device,
    data: &Dataset,
    width: usize,
    f: impl Fn(Digits) -> Result<Vec<f32>, Box<dyn std::error::Error>>,
) -> Result<Vec<f32>, Box<dyn std::error::Error>> {
    let mut out = Vec::with_capacity(data.len() * width);
    for batch in data.batches::<Rank1<784>>(500)? {
        out.extend(f(batch.try_to_tensor(dev).dev()?)?);
    }
    Ok(out)
}

/// The mean over digits of the sum over pixels of the squared error: the measure PCA's
/// `reconstruction_error` reports.
pub fn squared_error(original: &[f32], reconstruction: &[f32]) -> f64 {
    let digits = original.len() / 784;
    original
        .iter()
        .zip(reconstruction)
        .map(|(a, b)| f64::from(a - b).powi(2))
        .sum::<f64>()
        / digits as f64
}
