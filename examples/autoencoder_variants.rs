//! The notes' regularised autoencoders on MNIST, each with the figure that shows its defining
//! property: sparse (how many code units are near zero), denoising (how well it cleans held-out
//! corrupted digits), contractive (how much the code moves when the input does).
//!
//! Trains on the first 8,000 shipped digits and measures on the last 2,000:
//!
//! 1. a plain and a sparse autoencoder (λ Σ|z_j| on a 64-unit ReLU code): the fraction of code
//!    units below 0.01 on test digits, and the reconstruction error each pays;
//! 2. a plain and a denoising autoencoder (trained on masking noise, 30% of pixels zeroed):
//!    the error of their reconstructions of corrupted test digits against the clean ones;
//! 3. a plain and a contractive one-layer sigmoid autoencoder (λ ‖∂h/∂x‖²_F, exact): the mean
//!    Jacobian norm of the code on test digits, and the reconstruction error.
//!
//! ```text
//! cargo run --release --example autoencoder_variants [epochs] [seed]
//! ```
//!
//! Seed 0, 10 epochs (2026-11-24, 2-core CPU, 21 s):
//!
//! | | plain | regularised |
//! |---|--:|--:|
//! | sparse (λ = 1e-4): code units below 0.01 | 37.5% | 65.0% |
//! | sparse: mean Σ\|z_j\| per digit / test error | 219.6 / 13.89 | 30.0 / 15.02 |
//! | denoising (30% masked): error of the reconstructions of corrupted test digits | 20.60 | 17.15 (16.8% lower; the corrupted digits themselves: 26.74) |
//! | contractive (λ = 1e-3): mean ‖∂h/∂x‖²_F on test digits / test error | 2.06 / 42.03 | 0.65 / 44.80 |
//!
//! (With λ = 1e-3 the sparse code was 94.5% zeros at a test error of 35.7.) The one-layer
//! sigmoid autoencoders of part 3 are far from converged after 10 epochs (error ≈ 42, against
//! 13.9 for the ReLU ones): their comparison is of the Jacobian, which the penalty cuts by 3×.

#[path = "common/autoencoder.rs"]
mod autoencoder;
mod common;

use autoencoder::{map_batches, squared_error, train, Digits, Recipe};
use common::{Device, OrDeviceError};
use rand::rngs::StdRng;
use rand::SeedableRng;
use typednet::autoencoder::{
    try_contractive_penalty, try_sparsity_penalty, Corruption, EncoderActivation,
};
use typednet::data::Mnist;
use typednet::prelude::*;

network! {
    /// 784 → 256 → 64, ReLU: a code that can be exactly zero.
    pub struct ReluEncoder: [784] -> linear(256) -> relu -> linear(64) -> relu;
    pub struct ReluDecoder: [64] -> linear(256) -> relu -> linear(784) -> sigmoid;
    #[autoencoder]
    pub struct ReluAutoencoder = ReluEncoder -> ReluDecoder;

    /// 784 → 64 sigmoid units: the encoder whose Jacobian norm has a closed form.
    pub struct SigmoidEncoder: [784] -> linear(64) -> sigmoid;
    pub struct SigmoidDecoder: [64] -> linear(784) -> sigmoid;
    #[autoencoder]
    pub struct SigmoidAutoencoder = SigmoidEncoder -> SigmoidDecoder;
}

/// λ of the sparse autoencoder (the code's mean L1 norm per digit is added to the MSE).
const SPARSITY: f64 = 1e-4;
/// λ of the contractive autoencoder.
const CONTRACTION: f64 = 1e-3;
/// The denoising autoencoder's corruption, also applied to the test digits it is measured on.
const NOISE: Corruption = Corruption::Masking { probability: 0.3 };
/// A code unit counts as off below this.
const NEAR_ZERO: f32 = 0.01;

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let epochs: usize = args.next().map_or(Ok(10), |a| a.parse())?;
    let seed: u64 = args.next().map_or(Ok(0), |a| a.parse())?;
    let (train_set, test_set) = Mnist::load_shipped_split()?;
    let test = test_set.features();
    println!(
        "{} training digits, {} test digits, {epochs} epochs, seed {seed}",
        train_set.len(),
        test_set.len()
    );
    let dev = Device::seed_from_u64(seed);

    // 1. Sparse.
    let mut plain = ReluAutoencoder::<f32, Device>::new(&dev);
    let mut sparse = plain.clone();
    train(
        &mut plain,
        &dev,
        &train_set,
        Recipe {
            epochs,
            seed,
            corruption: Corruption::None,
            label: "plain",
        },
        None,
    )?;
    let l1 = |_: &ReluAutoencoder<f32, Device>,
              _: &Digits,
              z: &Tensor<(usize, Const<64>), f32, Device, OwnedTape<f32, Device>>| {
        Ok(try_sparsity_penalty(z, SPARSITY)?)
    };
    train(
        &mut sparse,
        &dev,
        &train_set,
        Recipe {
            epochs,
            seed,
            corruption: Corruption::None,
            label: "sparse",
        },
        Some(&l1),
    )?;
    println!("\n1. sparse autoencoder (λ = {SPARSITY} on Σ|z_j|, 64 ReLU code units)");
    for (name, model) in [("plain", &plain), ("sparse", &sparse)] {
        let codes = map_batches(&dev, &test_set, 64, |x| {
            Ok(model.try_encode(x).dev()?.as_vec())
        })?;
        let off =
            codes.iter().filter(|&&z| z.abs() < NEAR_ZERO).count() as f64 / codes.len() as f64;
        let mean_l1 = codes.iter().map(|z| f64::from(z.abs())).sum::<f64>() / test_set.len() as f64;
        let back = map_batches(&dev, &test_set, 784, |x| {
            Ok(model.try_reconstruct(x).dev()?.as_vec())
        })?;
        println!(
            "   {name:6}  code units below {NEAR_ZERO}: {:5.1}%   mean Σ|z_j| {mean_l1:7.2}   test error {:6.2}",
            100.0 * off,
            squared_error(test, &back)
        );
    }

    // 2. Denoising: the plain model above against one trained on corrupted digits.
    let mut denoising = ReluAutoencoder::<f32, Device>::new(&dev);
    train(
        &mut denoising,
        &dev,
        &train_set,
        Recipe {
            epochs,
            seed,
            corruption: NOISE,
            label: "denoising",
        },
        None,
    )?;
    let corrupted_test = {
        let clean: Digits = dev.tensor_from_vec(test.to_vec(), (test_set.len(), Const));
        NOISE.try_apply(&clean, &mut StdRng::seed_from_u64(seed + 1000))?
    };
    let corrupted = corrupted_test.as_vec();
    println!(
        "\n2. denoising autoencoder (trained on {NOISE:?}); test digits corrupted the same way:"
    );
    println!(
        "   the corrupted digits themselves: error {:6.2}",
        squared_error(test, &corrupted)
    );
    let mut errors = Vec::new();
    for (name, model) in [("plain", &plain), ("denoising", &denoising)] {
        let back = model
            .try_reconstruct(corrupted_test.clone())
            .dev()?
            .as_vec();
        let error = squared_error(test, &back);
        println!("   {name:9} reconstruction of the corrupted digits: error {error:6.2} (against the clean digits)");
        errors.push(error);
    }
    println!(
        "   the denoising autoencoder's error is {:.1}% lower",
        100.0 * (errors[0] - errors[1]) / errors[0]
    );

    // 3. Contractive.
    let mut plain_one = SigmoidAutoencoder::<f32, Device>::new(&dev);
    let mut contractive = plain_one.clone();
    train(
        &mut plain_one,
        &dev,
        &train_set,
        Recipe {
            epochs,
            seed,
            corruption: Corruption::None,
            label: "plain, one layer",
        },
        None,
    )?;
    let jacobian =
        |m: &SigmoidAutoencoder<f32, Device>,
         _: &Digits,
         h: &Tensor<(usize, Const<64>), f32, Device, OwnedTape<f32, Device>>| {
            Ok(try_contractive_penalty(
                h,
                &m.sigmoid_encoder.linear1.weight,
                EncoderActivation::Sigmoid,
                CONTRACTION,
            )?)
        };
    train(
        &mut contractive,
        &dev,
        &train_set,
        Recipe {
            epochs,
            seed,
            corruption: Corruption::None,
            label: "contractive",
        },
        Some(&jacobian),
    )?;
    println!(
        "\n3. contractive autoencoder (λ = {CONTRACTION} on ‖∂h/∂x‖²_F, one sigmoid layer of 64)"
    );
    for (name, model) in [("plain", &plain_one), ("contractive", &contractive)] {
        let clean: Digits = dev.tensor_from_vec(test.to_vec(), (test_set.len(), Const));
        let h = model.try_encode(clean.clone()).dev()?;
        let norm = try_contractive_penalty(
            &h,
            &model.sigmoid_encoder.linear1.weight,
            EncoderActivation::Sigmoid,
            1.0,
        )?
        .array();
        let back = model.try_reconstruct(clean).dev()?.as_vec();
        println!(
            "   {name:11} mean ‖∂h/∂x‖²_F on test digits {norm:8.2}   test error {:6.2}",
            squared_error(test, &back)
        );
    }
    Ok(())
}
