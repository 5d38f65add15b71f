//! Checkpoints end to end: a save killed at random moments never leaves a broken file, and
//! training resumed from a checkpoint ends with the same weights, bit for bit, as training that
//! never stopped.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use typednet::checkpoint::{
    load_training_checkpoint, save_training_checkpoint, CheckpointError, NameMap, OptimizerState,
    SafeTensors, TrainingState,
};
use typednet::data::{Dataset, Mnist};
use typednet::dfdx::optim::Optimizer;
use typednet::optim::{Adam, AdamConfig, Momentum, Sgd, SgdConfig};
use typednet::prelude::*;

typednet::network! {
    /// About 16 MB of f32 weights: big enough that writing it takes a while.
    struct Big: [2048] -> linear(2048);
    /// A small MNIST classifier.
    struct Mlp: [784] -> linear(32) -> relu -> linear(10);
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("typednet-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every tensor of `model`, by name, as raw bytes.
fn snapshot<E: Element, D: typednet::Device<E>, M: Checkpoint<E, D>>(model: &M) -> SafeTensors {
    model.to_safetensors_with(&NameMap::identity()).unwrap()
}

const CHILD_ENV: &str = "TYPEDNET_CHECKPOINT_KILL_TEST_PATH";

/// Not a test on its own: the kill test runs this in a child process (selected by name, with
/// the path in an environment variable), which saves two weight sets in turn to the same path
/// until it is killed.
#[test]
#[ignore]
fn child_saves_two_weight_sets_forever() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (a, b) = (
        Big::<f32, Cpu>::new(&Cpu::seed_from_u64(1)),
        Big::<f32, Cpu>::new(&Cpu::seed_from_u64(2)),
    );
    loop {
        a.save_safetensors(&path).unwrap();
        b.save_safetensors(&path).unwrap();
    }
}

/// Kills a process saving ~16 MB checkpoints at several moments; each time the file at the path
/// loads and equals exactly one of the two weight sets.
#[test]
fn a_killed_save_leaves_the_old_file_or_the_new_one() {
    let dir = temp_dir("kill");
    let path = dir.join("big.safetensors");
    let a = snapshot(&Big::<f32, Cpu>::new(&Cpu::seed_from_u64(1)));
    let b = snapshot(&Big::<f32, Cpu>::new(&Cpu::seed_from_u64(2)));
    assert_ne!(a, b);
    let mut loaded = Big::<f32, Cpu>::new(&Cpu::seed_from_u64(3));

    // Kill moments from a fixed LCG: reproducible, spread over 0–250 ms after the first save.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut outcomes = Vec::new();
    for round in 0..8 {
        let _ = std::fs::remove_file(&path);
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "child_saves_two_weight_sets_forever",
                "--exact",
                "--ignored",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while !path.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the child never saved"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let delay = Duration::from_micros((state >> 33) % 250_000);
        std::thread::sleep(delay);
        child.kill().unwrap();
        child.wait().unwrap();

        loaded
            .load_safetensors(&path)
            .unwrap_or_else(|e| panic!("round {round} (killed after {delay:?}): {e}"));
        let now = snapshot(&loaded);
        let which = if now == a {
            "a"
        } else if now == b {
            "b"
        } else {
            panic!("round {round}: the file is neither weight set")
        };
        outcomes.push(which);
    }
    eprintln!("files found after each kill: {outcomes:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The shipped digits: 400 to train on.
fn digits() -> Dataset {
    let (train, _) = Mnist::load_shipped_split().unwrap();
    train.take(400).with_name("mnist[..400]")
}

const BATCH: usize = 20;

type Images = Tensor<(usize, Const<784>), f32, Cpu>;
type OneHot = Tensor<(usize, Const<10>), f32, Cpu>;
const SEED: u64 = 7;

/// The batch of step `step`: epochs of 400/20 = 20 batches, each epoch's order drawn from a
/// generator seeded by (seed, epoch), so a resumed run can recompute it.
fn batch_at(data: &Dataset, step: usize, dev: &Cpu) -> (Images, OneHot) {
    let per_epoch = data.len() / BATCH;
    let (epoch, index) = (step / per_epoch, step % per_epoch);
    let mut rng = StdRng::seed_from_u64(SEED.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
    let batch = data
        .shuffled_batches::<Rank1<784>, _>(BATCH, &mut rng)
        .unwrap()
        .nth(index)
        .unwrap();
    let labels = batch.labels();
    let mut one_hot = vec![0.0f32; labels.len() * 10];
    for (row, label) in labels.iter().enumerate() {
        one_hot[row * 10 + label] = 1.0;
    }
    let n = labels.len();
    (
        batch.to_tensor(dev),
        dev.tensor_from_vec(one_hot, (n, Const::<10>)),
    )
}

/// Trains `model` from step `from` to step `to` (exclusive).
fn train<O: Optimizer<Mlp<f32, Cpu>, Cpu, f32>>(
    model: &mut Mlp<f32, Cpu>,
    opt: &mut O,
    data: &Dataset,
    from: usize,
    to: usize,
    dev: &Cpu,
) {
    let mut grads = model.alloc_grads();
    for step in from..to {
        let (x, y) = batch_at(data, step, dev);
        let loss = cross_entropy_with_logits_loss(model.forward(x.traced(grads)), y);
        grads = loss.backward();
        opt.update(model, &grads).unwrap();
        model.zero_grads(&mut grads);
    }
}

/// N steps straight versus k steps, save, a fresh model and optimiser, load, N − k steps.
fn resume_gives_identical_weights<O>(make: impl Fn(&Mlp<f32, Cpu>) -> O, name: &str)
where
    O: Optimizer<Mlp<f32, Cpu>, Cpu, f32> + OptimizerState<f32, Cpu>,
{
    const N: usize = 50;
    const K: usize = 27; // mid-epoch
    let data = digits();
    let dev = Cpu::seed_from_u64(0);
    let dir = temp_dir(name);
    let path = dir.join("training.safetensors");

    let mut straight = Mlp::<f32, Cpu>::new(&dev);
    let initial = snapshot(&straight);
    let mut opt = make(&straight);
    train(&mut straight, &mut opt, &data, 0, N, &dev);

    let mut first = Mlp::<f32, Cpu>::new(&dev);
    first
        .load_from_safetensors_with(&initial, &NameMap::identity())
        .unwrap();
    let mut opt = make(&first);
    train(&mut first, &mut opt, &data, 0, K, &dev);
    let metadata = BTreeMap::from([("seed".to_string(), SEED.to_string())]);
    save_training_checkpoint(
        &path,
        &first,
        &opt,
        &TrainingState {
            step: K as u64,
            metadata: metadata.clone(),
        },
    )
    .unwrap();
    drop((first, opt));

    let mut resumed = Mlp::<f32, Cpu>::new(&Cpu::seed_from_u64(99));
    let mut opt = make(&resumed);
    let state = load_training_checkpoint(&path, &mut resumed, &mut opt).unwrap();
    assert_eq!(
        state,
        TrainingState {
            step: K as u64,
            metadata
        }
    );
    train(&mut resumed, &mut opt, &data, state.step as usize, N, &dev);

    let (s, r) = (snapshot(&straight), snapshot(&resumed));
    assert_ne!(s, initial, "training changed nothing");
    for ((name, a), (_, b)) in s.tensors.iter().zip(&r.tensors) {
        assert_eq!(a.to_f32(), b.to_f32(), "{name} differs after resuming");
    }
    assert_eq!(s, r);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn resuming_adam_from_a_checkpoint_gives_identical_weights() {
    resume_gives_identical_weights(
        |m| {
            Adam::new(
                m,
                AdamConfig {
                    lr: 3e-3,
                    ..Default::default()
                },
            )
        },
        "resume-adam",
    );
}

#[test]
fn resuming_sgd_with_momentum_from_a_checkpoint_gives_identical_weights() {
    resume_gives_identical_weights(
        |m| {
            Sgd::new(
                m,
                SgdConfig {
                    lr: 0.05,
                    momentum: Some(Momentum::Nesterov(0.9)),
                    weight_decay: None,
                },
            )
        },
        "resume-sgd",
    );
}

#[test]
fn a_training_checkpoint_holds_pytorch_names_and_refuses_the_wrong_optimiser() {
    let dev = Cpu::seed_from_u64(0);
    let dir = temp_dir("names");
    let path = dir.join("training.safetensors");
    let data = digits();
    let mut model = Mlp::<f32, Cpu>::new(&dev);
    let mut adam = Adam::new(&model, AdamConfig::default());
    train(&mut model, &mut adam, &data, 0, 3, &dev);
    save_training_checkpoint(
        &path,
        &model,
        &adam,
        &TrainingState {
            step: 3,
            ..Default::default()
        },
    )
    .unwrap();

    let file = SafeTensors::read(&path).unwrap();
    let names: Vec<&str> = file.tensors.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"linear1.weight"), "{names:?}");
    assert!(
        names.contains(&"optimizer.linear1.weight.exp_avg"),
        "{names:?}"
    );
    assert!(
        names.contains(&"optimizer.linear2.bias.exp_avg_sq"),
        "{names:?}"
    );
    assert_eq!(names.len(), 4 * 3);
    assert_eq!(file.metadata["step"], "3");
    assert_eq!(file.metadata["optimizer"], "Adam");
    assert_eq!(file.metadata["optimizer.t"], "3");
    // The moments are the optimiser's, not zeros.
    let exp_avg_sq = file
        .get("optimizer.linear1.weight.exp_avg_sq")
        .unwrap()
        .to_f32()
        .unwrap();
    assert!(exp_avg_sq.iter().any(|v| *v > 0.0));

    // An SGD-with-momentum optimiser expects other tensors: one error lists them all, and
    // neither the model nor the optimiser changes.
    let mut other = Mlp::<f32, Cpu>::new(&Cpu::seed_from_u64(5));
    let before = snapshot(&other);
    let mut sgd = Sgd::new(
        &other,
        SgdConfig {
            momentum: Some(Momentum::Classic(0.9)),
            ..Default::default()
        },
    );
    let err = load_training_checkpoint(&path, &mut other, &mut sgd).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("training.safetensors"), "{text}");
    assert!(
        text.contains("optimizer.linear1.weight.momentum_buffer: missing (expected F32 [32, 784])"),
        "{text}"
    );
    assert!(
        text.contains("optimizer.linear1.weight.exp_avg: unexpected (found F32 [32, 784])"),
        "{text}"
    );
    let CheckpointError::Mismatch { mismatches, .. } = err else {
        panic!("{text}")
    };
    assert_eq!(mismatches.len(), 4 + 8, "{text}");
    assert_eq!(snapshot(&other), before);
    assert_eq!(sgd.buffer(0, &other.linear1.weight), vec![0.0; 32 * 784]);

    // A plain SGD optimiser has no buffers, but the kind is still checked.
    let mut plain = Sgd::new(&other, SgdConfig::default());
    let mut file = SafeTensors::read(&path).unwrap();
    file.tensors.retain(|(n, _)| !n.starts_with("optimizer."));
    file.write(&path).unwrap();
    let err = load_training_checkpoint(&path, &mut other, &mut plain)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("holds Adam state, the optimiser is SGD"),
        "{err}"
    );
    assert_eq!(snapshot(&other), before);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn truncated_and_corrupt_checkpoints_are_errors_and_change_nothing() {
    let dev = Cpu::seed_from_u64(0);
    let dir = temp_dir("corrupt");
    let path = dir.join("mlp.safetensors");
    Mlp::<f32, Cpu>::new(&dev).save_safetensors(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let mut model = Mlp::<f32, Cpu>::new(&dev);
    let before = snapshot(&model);
    let broken = dir.join("broken.safetensors");
    for len in [0, 7, 8, 100, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&broken, &bytes[..len]).unwrap();
        let err = model.load_safetensors(&broken).unwrap_err().to_string();
        assert!(err.contains("broken.safetensors"), "{len}: {err}");
        assert_eq!(snapshot(&model), before);
    }
    let mut garbled = bytes.clone();
    garbled[8..16].copy_from_slice(b"[1,2,3] ");
    std::fs::write(&broken, &garbled).unwrap();
    let err = model.load_safetensors(&broken).unwrap_err().to_string();
    assert!(err.contains("not a valid checkpoint"), "{err}");
    assert_eq!(snapshot(&model), before);
    assert!(matches!(
        model.load_safetensors(dir.join("absent.safetensors")),
        Err(CheckpointError::Io { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

typednet::network! {
    /// Batch norm: running statistics (not trained) and two scalars (epsilon, momentum).
    struct Normed: [6] -> linear(4) -> batchnorm -> relu -> linear(3);
}

#[test]
fn batch_norm_scalars_and_statistics_are_saved_but_not_optimised() {
    let dev = Cpu::seed_from_u64(0);
    let dir = temp_dir("normed");
    let path = dir.join("normed.safetensors");
    let mut model = Normed::<f64, Cpu>::new(&dev);
    let mut opt = Adam::new(&model, AdamConfig::default());
    let mut grads = model.alloc_grads();
    for _ in 0..3 {
        let x: Tensor<Rank2<5, 6>, f64, Cpu> = dev.sample_normal();
        grads = model
            .forward_mut(x.traced(grads))
            .square()
            .mean()
            .backward();
        opt.update(&mut model, &grads).unwrap();
        model.zero_grads(&mut grads);
    }
    save_training_checkpoint(&path, &model, &opt, &TrainingState::default()).unwrap();
    let file = SafeTensors::read(&path).unwrap();
    let epsilon = file.get("batchnorm1.epsilon").unwrap();
    assert_eq!(
        (epsilon.dtype, epsilon.shape.as_slice()),
        (typednet::checkpoint::Dtype::F64, &[][..])
    );
    assert_eq!(file.get("batchnorm1.running_mean").unwrap().shape, [4]);
    assert!(file.get("optimizer.batchnorm1.scale.exp_avg").is_some());
    assert!(file
        .get("optimizer.batchnorm1.running_mean.exp_avg")
        .is_none());
    assert!(file.get("optimizer.batchnorm1.epsilon.exp_avg").is_none());

    // A training checkpoint loads as a plain one too (the optimiser state is skipped), scalars
    // included.
    let mut plain = Normed::<f64, Cpu>::new(&Cpu::seed_from_u64(9));
    plain.load_safetensors(&path).unwrap();
    assert_eq!(snapshot(&plain), snapshot(&model));
    let mut edited = file.clone();
    for (name, record) in &mut edited.tensors {
        if name == "batchnorm1.epsilon" {
            *record = typednet::checkpoint::TensorRecord::from_f64(vec![], &[1e-3]);
        }
    }
    plain
        .load_from_safetensors_with(&edited, &NameMap::identity())
        .unwrap();
    assert_eq!(plain.batchnorm1.epsilon, 1e-3);
    assert_eq!(
        plain.batchnorm1.running_var.as_vec(),
        model.batchnorm1.running_var.as_vec()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

typednet::network! {
    /// The network `tools/reference_safetensors.py`'s fixtures fit.
    struct Tiny: [4] -> linear(3) -> relu -> linear(2);
}

/// Files written by Hugging Face's `safetensors` 0.8.0 (`tools/reference_safetensors.py`) load,
/// values and metadata exact; an F16 tensor is reported as unsupported.
#[test]
fn files_written_by_the_reference_implementation_load() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/safetensors");
    let expected = |n: usize| -> Vec<f32> { (0..n).map(|i| 0.25 * i as f32 - 1.0).collect() };
    let dev = Cpu::seed_from_u64(0);
    let mut tiny = Tiny::<f32, Cpu>::new(&dev);
    tiny.load_safetensors(format!("{dir}/tiny_f32.safetensors"))
        .unwrap();
    assert_eq!(tiny.linear1.weight.as_vec(), expected(12));
    assert_eq!(tiny.linear1.bias.as_vec(), expected(3));
    assert_eq!(tiny.linear2.weight.as_vec(), expected(6));
    assert_eq!(tiny.linear2.bias.as_vec(), expected(2));
    let file = SafeTensors::read(format!("{dir}/tiny_f32.safetensors")).unwrap();
    assert_eq!(file.metadata["note"], "é \"quoted\"\n");

    let before = snapshot(&tiny);
    let err = tiny
        .load_safetensors(format!("{dir}/tiny_f16_weight.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("linear1.weight: expected F32 [3, 4], found F16 [3, 4]; F16 is not supported"),
        "{err}"
    );
    assert_eq!(snapshot(&tiny), before);

    // What typednet writes, the reference implementation reads:
    // `python tools/reference_safetensors.py check $TYPEDNET_WRITE_REFERENCE_CHECK` (run by hand).
    if let Ok(path) = std::env::var("TYPEDNET_WRITE_REFERENCE_CHECK") {
        let mut file = tiny.to_safetensors_with(&NameMap::identity()).unwrap();
        file.metadata.insert("note".into(), "é \"quoted\"\n".into());
        file.tensors.push((
            "double".into(),
            typednet::checkpoint::TensorRecord::from_f64(vec![2, 1], &[0.1, -2.5]),
        ));
        file.write(path).unwrap();
    }
}
