//! Training checkpoints: the network, the optimiser's state and the step in one safetensors file.

use std::collections::BTreeMap;
use std::path::Path;

use dfdx::nn::tensor_collection::{
    TensorCollection, TensorOptions, TensorVisitor, ViewTensorName, ViewTensorRef,
};
use dfdx::nn::RecursiveWalker;
use dfdx::shapes::{HasShape, Shape};
use dfdx::tensor::Tensor;
use dfdx::tensor_ops::Device;

use super::{
    assign, checked_dtype, collect, mismatches, record_of, values_of, CheckpointError, Expected,
    NameMap, SafeTensors, TensorRecord, TensorSpec,
};
use crate::network::Element;
pub use crate::optim::OptimizerState;

/// The metadata key of the step.
const STEP: &str = "step";
/// The metadata key of the optimiser's kind, and the prefix of its tensors and scalars.
const OPTIMIZER: &str = "optimizer";

/// What a training checkpoint holds besides the network and the optimiser.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrainingState {
    /// The number of training steps taken (yours to define: updates, or batches seen).
    pub step: u64,
    /// Metadata of your own (seed, epoch, configuration); keys `step`, `optimizer` and
    /// `optimizer.…` are reserved.
    pub metadata: BTreeMap<String, String>,
}

/// Walks the trainable parameters, gathering (and with `with_data`, reading) each optimiser
/// buffer as `optimizer.<param>.<buffer>`.
struct OptimizerTensors<'a, O> {
    optimizer: &'a O,
    dtype: super::Dtype,
    with_data: bool,
    expected: Vec<Expected>,
    records: Vec<(String, TensorRecord)>,
}

fn buffer_name(param: &str, buffer: &str) -> String {
    format!("{OPTIMIZER}.{param}.{buffer}")
}

impl<E: Element, D: Device<E>, O: OptimizerState<E, D>> TensorVisitor<E, D>
    for OptimizerTensors<'_, O>
{
    type Viewer = (ViewTensorRef, ViewTensorName);
    type Err = D::Err;
    type E2 = E;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, E, D>,
        (p, name): (&Tensor<S, E, D>, String),
    ) -> Result<Option<Tensor<S, E, D>>, D::Err> {
        if !opts.do_gradient_update {
            return Ok(None);
        }
        let shape: Vec<usize> = p.shape().concrete().into_iter().collect();
        for (which, buffer) in self.optimizer.buffer_names().iter().enumerate() {
            let file_name = buffer_name(&name, buffer);
            if self.with_data {
                let values = self.optimizer.buffer(which, p);
                self.records.push((
                    file_name.clone(),
                    record_of(self.dtype, shape.clone(), &values),
                ));
            }
            self.expected.push(Expected {
                file_name,
                spec: TensorSpec {
                    dtype: self.dtype,
                    shape: shape.clone(),
                },
                fits: None,
            });
        }
        Ok(None)
    }
}

/// Sets every optimiser buffer from a checked file.
struct RestoreOptimizer<'a, O> {
    optimizer: &'a mut O,
    file: &'a SafeTensors,
}

impl<E: Element, D: Device<E>, O: OptimizerState<E, D>> TensorVisitor<E, D>
    for RestoreOptimizer<'_, O>
{
    type Viewer = (ViewTensorRef, ViewTensorName);
    type Err = D::Err;
    type E2 = E;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, E, D>,
        (p, name): (&Tensor<S, E, D>, String),
    ) -> Result<Option<Tensor<S, E, D>>, D::Err> {
        if !opts.do_gradient_update {
            return Ok(None);
        }
        for (which, buffer) in self.optimizer.buffer_names().iter().enumerate() {
            let record = self.file.get(&buffer_name(&name, buffer)).expect("checked");
            self.optimizer
                .set_buffer(which, p, values_of::<E>(record))?;
        }
        Ok(None)
    }
}

fn device_error(path: &Path, e: impl std::fmt::Debug) -> CheckpointError {
    CheckpointError::Device {
        path: path.to_path_buf(),
        message: format!("{e:?}"),
    }
}

fn optimizer_tensors<
    E: Element,
    D: Device<E>,
    M: TensorCollection<E, D>,
    O: OptimizerState<E, D>,
>(
    model: &M,
    optimizer: &O,
    with_data: bool,
    path: &Path,
) -> Result<(Vec<Expected>, Vec<(String, TensorRecord)>), CheckpointError> {
    let mut visitor = OptimizerTensors {
        optimizer,
        dtype: checked_dtype::<E>(path)?,
        with_data,
        expected: Vec::new(),
        records: Vec::new(),
    };
    M::iter_tensors(&mut RecursiveWalker {
        m: (model, String::new()),
        f: &mut visitor,
    })
    .map_err(|e| device_error(path, e))?;
    Ok((visitor.expected, visitor.records))
}

/// Whether `file` was written by [`save_training_checkpoint`] (its metadata names an optimiser).
pub(crate) fn is_training_checkpoint(file: &SafeTensors) -> bool {
    file.metadata.contains_key(OPTIMIZER)
}

/// Whether `name` is an optimiser buffer's name in a training checkpoint.
pub(crate) fn is_optimizer_buffer(name: &str) -> bool {
    name.starts_with("optimizer.")
}

fn is_reserved(key: &str) -> bool {
    key == STEP || key == OPTIMIZER || key.starts_with("optimizer.")
}

/// Saves a training checkpoint to `path`, atomically: the network's tensors under their names
/// (as [`Checkpoint::save_safetensors`](super::Checkpoint::save_safetensors) writes them), the
/// optimiser's per-parameter buffers as `optimizer.<param>.<buffer>` with PyTorch's buffer names
/// (`exp_avg`, `exp_avg_sq` for Adam, `momentum_buffer` for SGD with momentum), and in the
/// `__metadata__` the step, the optimiser's kind and scalars (`optimizer.t`, Adam's step count)
/// and `metadata`.
///
/// PyTorch: `torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
/// "step": step}, path)`. dfdx's device random number generator (dropout masks, `sample_*`) is
/// not part of the checkpoint: to resume with reproducible randomness, reseed the device after
/// loading from something the checkpoint holds, e.g. `Cpu::seed_from_u64(seed ^ step)`, and do
/// the same in the run you compare with.
pub fn save_training_checkpoint<E, D, M, O>(
    path: impl AsRef<Path>,
    model: &M,
    optimizer: &O,
    state: &TrainingState,
) -> Result<(), CheckpointError>
where
    E: Element,
    D: Device<E>,
    M: TensorCollection<E, D>,
    O: OptimizerState<E, D>,
{
    let path = path.as_ref();
    if let Some(key) = state.metadata.keys().find(|k| is_reserved(k)) {
        return Err(CheckpointError::Format {
            path: path.to_path_buf(),
            reason: format!("the metadata key {key:?} is reserved for the checkpoint itself"),
        });
    }
    let (_, mut tensors) = collect::<E, D, M>(model, &NameMap::identity(), true, path)?;
    let (_, buffers) = optimizer_tensors(model, optimizer, true, path)?;
    tensors.extend(buffers);
    let mut metadata = state.metadata.clone();
    metadata.insert(STEP.into(), state.step.to_string());
    metadata.insert(OPTIMIZER.into(), optimizer.kind().into());
    for (name, value) in optimizer.scalars() {
        metadata.insert(format!("{OPTIMIZER}.{name}"), value.to_string());
    }
    SafeTensors { tensors, metadata }.write(path)
}

/// Loads a training checkpoint written by [`save_training_checkpoint`] into `model` and
/// `optimizer` (an optimiser of the same kind, made with [`Adam::new`](crate::optim::Adam::new)
/// or [`Sgd::new`](crate::optim::Sgd::new) for this model), and returns the step and your metadata.
///
/// All or nothing: the network's tensors, the optimiser's buffers, the step and the optimiser's
/// kind and scalars are all checked first; any mismatch is one error listing every offending
/// tensor, and then neither the model nor the optimiser has changed. (Only a device failure while
/// copying, after every check passed, could leave them partly loaded.)
///
/// PyTorch: `ck = torch.load(path); model.load_state_dict(ck["model"]);
/// optimizer.load_state_dict(ck["optimizer"]); step = ck["step"]`.
pub fn load_training_checkpoint<E, D, M, O>(
    path: impl AsRef<Path>,
    model: &mut M,
    optimizer: &mut O,
) -> Result<TrainingState, CheckpointError>
where
    E: Element,
    D: Device<E>,
    M: TensorCollection<E, D>,
    O: OptimizerState<E, D>,
{
    let path = path.as_ref();
    let file = SafeTensors::read(path)?;
    let format = |reason: String| CheckpointError::Format {
        path: path.to_path_buf(),
        reason,
    };

    // Check everything first.
    let (mut expected, _) = collect::<E, D, M>(model, &NameMap::identity(), false, path)?;
    let (buffers, _) = optimizer_tensors(model, optimizer, false, path)?;
    expected.extend(buffers);
    let found = mismatches(&expected, &file, &|_| false);
    if !found.is_empty() {
        return Err(CheckpointError::Mismatch {
            path: path.to_path_buf(),
            mismatches: found,
        });
    }
    let get = |key: &str| {
        file.metadata
            .get(key)
            .ok_or_else(|| format!("the metadata has no {key:?} (not a training checkpoint?)"))
    };
    let step: u64 = get(STEP)
        .map_err(format)?
        .parse()
        .map_err(|e| format(format!("the step is not a non-negative integer: {e}")))?;
    let kind = get(OPTIMIZER).map_err(format)?;
    if kind != optimizer.kind() {
        return Err(format(format!(
            "the checkpoint holds {kind} state, the optimiser is {}",
            optimizer.kind()
        )));
    }
    let mut scalars = Vec::new();
    for (name, _) in optimizer.scalars() {
        let key = format!("{OPTIMIZER}.{name}");
        let value = get(&key).map_err(format)?;
        scalars.push(
            value
                .parse::<i64>()
                .map_err(|e| format(format!("{key} = {value:?} is not an integer: {e}")))?,
        );
    }
    // `set_scalars` checks before it changes anything; after it nothing can fail but the device.
    optimizer.set_scalars(&scalars).map_err(format)?;

    assign::<E, D, M>(model, &file, &NameMap::identity(), path)?;
    M::iter_tensors(&mut RecursiveWalker {
        m: (&*model, String::new()),
        f: &mut RestoreOptimizer {
            optimizer,
            file: &file,
        },
    })
    .map_err(|e| device_error(path, e))?;

    let metadata = file
        .metadata
        .into_iter()
        .filter(|(k, _)| !is_reserved(k))
        .collect();
    Ok(TrainingState { step, metadata })
}
