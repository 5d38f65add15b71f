//! Checkpoints: a network's tensors (and, for training, the optimiser's state and the step) in
//! a [safetensors] file, written atomically and read back all or nothing.
//!
//! [`Checkpoint`] is implemented for every dfdx `TensorCollection` — every [`network!`] model
//! and composition, and dfdx's own modules — with `f32` or `f64` elements. Tensors are named as
//! the declaration names its layers (`conv1.weight`, `encoder.linear2.bias`), with PyTorch's
//! layouts, so `model.save_safetensors(path)` is `safetensors.torch.save_file(model.state_dict(),
//! path)` and `load_safetensors` is `model.load_state_dict(safetensors.torch.load_file(path))`
//! with `strict=True`. The `_with` variants map each typednet name to the name in the file
//! (e.g. `linear1.weight` → `classifier.0.weight`), for files written by other programs.
//!
//! Loading checks the whole file against the network before it changes anything: a missing or
//! unexpected tensor, a wrong shape or dtype is listed in one [`CheckpointError::Mismatch`]
//! (every offending tensor with its expected and found shape and dtype), and the model is left
//! as it was. Saving writes a temporary file in the target's directory, flushes it to disk and
//! renames it over the target, so a crash leaves the old checkpoint or the new one, never half of one.
//!
//! Training checkpoints ([`save_training_checkpoint`], [`load_training_checkpoint`]) add the
//! state of [`crate::optim::Adam`] / [`crate::optim::Sgd`] (PyTorch's `optimizer.state_dict()`),
//! the step and metadata of your own, so that training resumed from a checkpoint gives the same
//! weights, bit for bit, as training that never stopped.
//!
//! [`network!`]: crate::network!

mod json;
mod names;
pub mod safetensors;
mod training;

use std::any::TypeId;
use std::fmt;
use std::path::{Path, PathBuf};

use dfdx::nn::tensor_collection::{
    ScalarOptions, TensorCollection, TensorOptions, TensorVisitor, ViewTensorMut, ViewTensorName,
    ViewTensorRef,
};
use dfdx::nn::RecursiveWalker;
use dfdx::shapes::{HasShape, Shape};
use dfdx::tensor::Tensor;
use dfdx::tensor_ops::Device;
use num_traits::NumCast;

use crate::network::Element;
pub use names::NameMap;
pub use safetensors::{Dtype, SafeTensors, TensorRecord};
pub use training::{
    load_training_checkpoint, save_training_checkpoint, OptimizerState, TrainingState,
};

/// The dtype and shape of one tensor, as a network expects it or a file holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// The element type.
    pub dtype: Dtype,
    /// The shape, outermost axis first (`[]` for a scalar).
    pub shape: Vec<usize>,
}

impl fmt::Display for TensorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.dtype, self.shape)
    }
}

/// One tensor of a file that does not fit the network (or optimiser) it is loaded into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorMismatch {
    /// The tensor's name in the file.
    pub name: String,
    /// What the network expects; `None` if the network has no such tensor.
    pub expected: Option<TensorSpec>,
    /// What the file holds; `None` if the file lacks the tensor.
    pub found: Option<TensorSpec>,
    /// More about the problem (an unsupported dtype, a value out of range), if any.
    pub note: Option<String>,
}

impl fmt::Display for TensorMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.expected, &self.found) {
            (Some(e), Some(found)) => write!(f, "{}: expected {e}, found {found}", self.name)?,
            (Some(e), None) => write!(f, "{}: missing (expected {e})", self.name)?,
            (None, Some(found)) => write!(f, "{}: unexpected (found {found})", self.name)?,
            (None, None) => write!(f, "{}", self.name)?,
        }
        if let Some(note) = &self.note {
            write!(f, "; {note}")?;
        }
        Ok(())
    }
}

/// What went wrong reading or writing a checkpoint. Every variant names the file.
#[derive(Debug)]
pub enum CheckpointError {
    /// The file could not be read or written.
    Io {
        /// The checkpoint's path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a valid safetensors file (truncated, corrupt header, bad offsets), or
    /// its metadata is not what a training checkpoint holds.
    Format {
        /// The checkpoint's path.
        path: PathBuf,
        /// What is wrong, and where.
        reason: String,
    },
    /// The file is well formed but its tensors do not fit the network: every offending tensor
    /// is listed. Nothing was changed.
    Mismatch {
        /// The checkpoint's path.
        path: PathBuf,
        /// One entry per offending tensor, in the network's order, then the unexpected ones.
        mismatches: Vec<TensorMismatch>,
    },
    /// The network's element type is neither `f32` nor `f64`.
    UnsupportedElement {
        /// The checkpoint's path.
        path: PathBuf,
        /// The element type's name.
        element: &'static str,
    },
    /// The device failed while restoring state (after validation).
    Device {
        /// The checkpoint's path.
        path: PathBuf,
        /// The device's error.
        message: String,
    },
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            CheckpointError::Format { path, reason } => {
                write!(f, "{}: not a valid checkpoint: {reason}", path.display())
            }
            CheckpointError::Mismatch { path, mismatches } => {
                write!(
                    f,
                    "{}: does not fit the network, {} tensor{} differ{}; nothing was loaded:",
                    path.display(),
                    mismatches.len(),
                    if mismatches.len() == 1 { "" } else { "s" },
                    if mismatches.len() == 1 { "s" } else { "" },
                )?;
                for m in mismatches {
                    write!(f, "\n  {m}")?;
                }
                Ok(())
            }
            CheckpointError::UnsupportedElement { path, element } => write!(
                f,
                "{}: checkpoints hold f32 or f64 tensors, the network's elements are {element}",
                path.display()
            ),
            CheckpointError::Device { path, message } => {
                write!(
                    f,
                    "{}: device error while loading: {message}",
                    path.display()
                )
            }
        }
    }
}

impl std::error::Error for CheckpointError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CheckpointError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The path errors about an in-memory [`SafeTensors`] name.
const IN_MEMORY: &str = "<in memory>";

/// The file dtype of the element type `E`: `F32` for `f32`, `F64` for `f64`.
pub fn element_dtype<E: 'static>() -> Option<Dtype> {
    if TypeId::of::<E>() == TypeId::of::<f32>() {
        Some(Dtype::F32)
    } else if TypeId::of::<E>() == TypeId::of::<f64>() {
        Some(Dtype::F64)
    } else {
        None
    }
}

fn checked_dtype<E: 'static>(path: &Path) -> Result<Dtype, CheckpointError> {
    element_dtype::<E>().ok_or_else(|| CheckpointError::UnsupportedElement {
        path: path.to_path_buf(),
        element: std::any::type_name::<E>(),
    })
}

/// A record of `values` in `dtype` (`F32` or `F64`; the conversion is the identity for the
/// element type that dtype names).
pub(crate) fn record_of<E: Element>(dtype: Dtype, shape: Vec<usize>, values: &[E]) -> TensorRecord {
    match dtype {
        Dtype::F32 => {
            let values: Vec<f32> = values
                .iter()
                .map(|v| v.to_f32().unwrap_or(f32::NAN))
                .collect();
            TensorRecord::from_f32(shape, &values)
        }
        Dtype::F64 => {
            let values: Vec<f64> = values
                .iter()
                .map(|v| v.to_f64().unwrap_or(f64::NAN))
                .collect();
            TensorRecord::from_f64(shape, &values)
        }
        other => unreachable!("element dtypes are F32 or F64, not {other}"),
    }
}

/// The values of a record already checked to be `F32` or `F64`, as `E`.
pub(crate) fn values_of<E: Element>(record: &TensorRecord) -> Vec<E> {
    let cast = |v: f64| <E as NumCast>::from(v).unwrap_or_else(E::nan);
    match record.dtype {
        Dtype::F32 => record
            .to_f32()
            .expect("F32")
            .into_iter()
            .map(|v| <E as NumCast>::from(v).unwrap_or_else(E::nan))
            .collect(),
        Dtype::F64 => record
            .to_f64()
            .expect("F64")
            .into_iter()
            .map(cast)
            .collect(),
        other => unreachable!("checked to be F32 or F64, not {other}"),
    }
}

/// A tensor (or scalar) a network or optimiser expects in a file.
pub(crate) struct Expected {
    /// The name in the file.
    pub(crate) file_name: String,
    pub(crate) spec: TensorSpec,
    /// For scalars: whether a value fits the field's type (e.g. not negative for a `usize`).
    pub(crate) fits: Option<fn(f64) -> bool>,
}

fn fits<N: NumCast>(value: f64) -> bool {
    N::from(value).is_some()
}

/// Visits a collection, gathering the expected tensors (with their data when `records` is on).
struct Collect<'a> {
    names: &'a NameMap,
    dtype: Dtype,
    expected: Vec<Expected>,
    records: Option<Vec<(String, TensorRecord)>>,
}

impl<E: Element, D: Device<E>> TensorVisitor<E, D> for Collect<'_> {
    type Viewer = (ViewTensorRef, ViewTensorName);
    type Err = D::Err;
    type E2 = E;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        _: TensorOptions<S, E, D>,
        (t, name): (&Tensor<S, E, D>, String),
    ) -> Result<Option<Tensor<S, E, D>>, D::Err> {
        let Some(file_name) = self.names.file_name(&name) else {
            return Ok(None);
        };
        let shape: Vec<usize> = t.shape().concrete().into_iter().collect();
        if let Some(records) = &mut self.records {
            records.push((
                file_name.clone(),
                record_of(self.dtype, shape.clone(), &t.as_vec()),
            ));
        }
        self.expected.push(Expected {
            file_name,
            spec: TensorSpec {
                dtype: self.dtype,
                shape,
            },
            fits: None,
        });
        Ok(None)
    }

    fn visit_scalar<N: NumCast>(
        &mut self,
        _: ScalarOptions<N>,
        (n, name): (&N, String),
    ) -> Result<Option<N>, D::Err> {
        // As dfdx does: a scalar field (e.g. batch norm's epsilon) is a 0-d F64 tensor.
        let Some(file_name) = self.names.file_name(&name) else {
            return Ok(None);
        };
        if let Some(records) = &mut self.records {
            let value = n.to_f64().unwrap_or(f64::NAN);
            records.push((file_name.clone(), TensorRecord::from_f64(vec![], &[value])));
        }
        self.expected.push(Expected {
            file_name,
            spec: TensorSpec {
                dtype: Dtype::F64,
                shape: vec![],
            },
            fits: Some(fits::<N>),
        });
        Ok(None)
    }
}

/// Copies checked records into a collection.
struct Assign<'a> {
    names: &'a NameMap,
    file: &'a SafeTensors,
}

impl<E: Element, D: Device<E>> TensorVisitor<E, D> for Assign<'_> {
    type Viewer = (ViewTensorMut, ViewTensorName);
    type Err = D::Err;
    type E2 = E;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        _: TensorOptions<S, E, D>,
        (t, name): (&mut Tensor<S, E, D>, String),
    ) -> Result<Option<Tensor<S, E, D>>, D::Err> {
        let Some(file_name) = self.names.file_name(&name) else {
            return Ok(None);
        };
        let record = self.file.get(&file_name).expect("checked");
        t.copy_from(&values_of::<E>(record));
        Ok(None)
    }

    fn visit_scalar<N: NumCast>(
        &mut self,
        _: ScalarOptions<N>,
        (n, name): (&mut N, String),
    ) -> Result<Option<N>, D::Err> {
        let Some(file_name) = self.names.file_name(&name) else {
            return Ok(None);
        };
        let record = self.file.get(&file_name).expect("checked");
        let value = record.to_f64().expect("checked")[0];
        *n = N::from(value).expect("checked");
        Ok(None)
    }
}

/// The tensors a collection expects (and their current values when `with_data`).
pub(crate) fn collect<E: Element, D: Device<E>, M: TensorCollection<E, D>>(
    model: &M,
    names: &NameMap,
    with_data: bool,
    path: &Path,
) -> Result<(Vec<Expected>, Vec<(String, TensorRecord)>), CheckpointError> {
    let mut visitor = Collect {
        names,
        dtype: checked_dtype::<E>(path)?,
        expected: Vec::new(),
        records: with_data.then(Vec::new),
    };
    M::iter_tensors(&mut RecursiveWalker {
        m: (model, String::new()),
        f: &mut visitor,
    })
    .map_err(|e| CheckpointError::Device {
        path: path.to_path_buf(),
        message: format!("{e:?}"),
    })?;
    Ok((visitor.expected, visitor.records.unwrap_or_default()))
}

/// Every way `file` differs from `expected`: missing, wrong dtype or shape, a scalar out of
/// range, then (unless `allow_unexpected` says a name belongs to someone else) unexpected names.
pub(crate) fn mismatches(
    expected: &[Expected],
    file: &SafeTensors,
    allow_unexpected: &dyn Fn(&str) -> bool,
) -> Vec<TensorMismatch> {
    let mut out = Vec::new();
    for e in expected {
        let Some(record) = file.get(&e.file_name) else {
            out.push(TensorMismatch {
                name: e.file_name.clone(),
                expected: Some(e.spec.clone()),
                found: None,
                note: None,
            });
            continue;
        };
        let found = TensorSpec {
            dtype: record.dtype,
            shape: record.shape.clone(),
        };
        let mut note = None;
        if found.dtype != e.spec.dtype && !matches!(found.dtype, Dtype::F32 | Dtype::F64) {
            note = Some(format!(
                "{} is not supported: typednet reads F32 and F64 tensors",
                found.dtype
            ));
        } else if found == e.spec {
            if let (Some(fits), Some(values)) = (e.fits, record.to_f64()) {
                if !fits(values[0]) {
                    note = Some(format!("the value {} does not fit the field", values[0]));
                }
            }
            if note.is_none() {
                continue;
            }
        }
        out.push(TensorMismatch {
            name: e.file_name.clone(),
            expected: Some(e.spec.clone()),
            found: Some(found),
            note,
        });
    }
    let known: std::collections::BTreeSet<&str> =
        expected.iter().map(|e| e.file_name.as_str()).collect();
    for (name, record) in &file.tensors {
        if !known.contains(name.as_str()) && !allow_unexpected(name) {
            out.push(TensorMismatch {
                name: name.clone(),
                expected: None,
                found: Some(TensorSpec {
                    dtype: record.dtype,
                    shape: record.shape.clone(),
                }),
                note: None,
            });
        }
    }
    out
}

/// Copies a checked file into a collection.
pub(crate) fn assign<E: Element, D: Device<E>, M: TensorCollection<E, D>>(
    model: &mut M,
    file: &SafeTensors,
    names: &NameMap,
    path: &Path,
) -> Result<(), CheckpointError> {
    M::iter_tensors(&mut RecursiveWalker {
        m: (model, String::new()),
        f: &mut Assign { names, file },
    })
    .map_err(|e| CheckpointError::Device {
        path: path.to_path_buf(),
        message: format!("{e:?}"),
    })?;
    Ok(())
}

/// Saving and loading a network's tensors as a safetensors file.
///
/// Implemented for every dfdx `TensorCollection` with `f32` or `f64` elements: every
/// [`network!`](crate::network!) model and composition. Tensor names are the ones the
/// declaration gives (`linear1.weight`, `linear1.bias`, …); scalar fields, if a layer has
/// any, are 0-d `F64` tensors, as dfdx writes them.
///
/// PyTorch: `safetensors.torch.save_file(model.state_dict(), path)` and
/// `model.load_state_dict(safetensors.torch.load_file(path), strict=True)`.
///
/// ```
/// use typednet::prelude::*;
///
/// network! {
///     pub struct Digits: [64] -> linear(32) -> relu -> linear(10);
/// }
///
/// let dev = Cpu::seed_from_u64(0);
/// let trained = Digits::<f32, Cpu>::new(&dev);
/// let path = std::env::temp_dir().join(format!("digits-{}.safetensors", std::process::id()));
/// trained.save_safetensors(&path)?;
///
/// let mut restored = Digits::<f32, Cpu>::new(&dev);
/// restored.load_safetensors(&path)?;
/// assert_eq!(restored.linear1.weight.as_vec(), trained.linear1.weight.as_vec());
///
/// // A network with other shapes is refused, and stays as it was.
/// network! {
///     pub struct Wider: [64] -> linear(48) -> relu -> linear(10);
/// }
/// let mut wider = Wider::<f32, Cpu>::new(&dev);
/// let before = wider.linear1.weight.as_vec();
/// let err = wider.load_safetensors(&path).unwrap_err().to_string();
/// assert!(err.contains("linear1.weight: expected F32 [48, 64], found F32 [32, 64]"), "{err}");
/// assert_eq!(wider.linear1.weight.as_vec(), before);
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Checkpoint<E: Element, D: Device<E>>: TensorCollection<E, D> {
    /// The network's tensors as an in-memory file, named by `names` ([`NameMap`]: typednet's
    /// names, or PyTorch's through declared renames; fields it skips are left out).
    fn to_safetensors_with(&self, names: &NameMap) -> Result<SafeTensors, CheckpointError> {
        let (_, tensors) = collect::<E, D, Self>(self, names, true, Path::new(IN_MEMORY))?;
        Ok(SafeTensors {
            tensors,
            metadata: Default::default(),
        })
    }

    /// Loads an in-memory file whose tensor names are given by `names` ([`NameMap`]): all of it
    /// after checking all of it, or nothing (see [`Checkpoint::load_safetensors`]). Fields
    /// `names` skips keep their values.
    fn load_from_safetensors_with(
        &mut self,
        file: &SafeTensors,
        names: &NameMap,
    ) -> Result<(), CheckpointError> {
        load_checked(self, file, names, Path::new(IN_MEMORY))
    }

    /// Saves the network to `path` (atomically: a crash leaves the old file or the new one).
    fn save_safetensors(&self, path: impl AsRef<Path>) -> Result<(), CheckpointError> {
        self.save_safetensors_with(path, &NameMap::identity())
    }

    /// Saves the network to `path`, each tensor under the name `names` gives it, e.g. in
    /// PyTorch's naming (`NameMap::pytorch()` plus layer renames), so that PyTorch's
    /// `load_state_dict(strict=True)` accepts the file.
    fn save_safetensors_with(
        &self,
        path: impl AsRef<Path>,
        names: &NameMap,
    ) -> Result<(), CheckpointError> {
        let path = path.as_ref();
        let (_, tensors) = collect::<E, D, Self>(self, names, true, path)?;
        SafeTensors {
            tensors,
            metadata: Default::default(),
        }
        .write(path)
    }

    /// Loads the network from `path`. Every tensor of the network must be in the file with the
    /// same shape and dtype, and the file must hold nothing else; otherwise the error lists every
    /// offending tensor (expected and found) and the network is unchanged. A training
    /// checkpoint ([`save_training_checkpoint`]) loads too: its optimiser state is skipped.
    fn load_safetensors(&mut self, path: impl AsRef<Path>) -> Result<(), CheckpointError> {
        self.load_safetensors_with(path, &NameMap::identity())
    }

    /// Loads the network from `path`, reading each tensor under the name `names` gives it, e.g.
    /// a PyTorch `state_dict()` saved as safetensors (see `tests/pytorch_interop.rs` for
    /// LeNet-5 and torchvision's ResNet-18).
    fn load_safetensors_with(
        &mut self,
        path: impl AsRef<Path>,
        names: &NameMap,
    ) -> Result<(), CheckpointError> {
        let path = path.as_ref();
        let file = SafeTensors::read(path)?;
        load_checked(self, &file, names, path)
    }
}

impl<E: Element, D: Device<E>, M: TensorCollection<E, D>> Checkpoint<E, D> for M {}

fn load_checked<E: Element, D: Device<E>, M: TensorCollection<E, D>>(
    model: &mut M,
    file: &SafeTensors,
    names: &NameMap,
    path: &Path,
) -> Result<(), CheckpointError> {
    let (expected, _) = collect::<E, D, M>(model, names, false, path)?;
    // A training checkpoint (it names its optimiser in the metadata) also loads as a plain
    // one: its optimiser buffers are then not unexpected, just not wanted.
    let is_training = training::is_training_checkpoint(file);
    let optimizer_buffer = |name: &str| is_training && training::is_optimizer_buffer(name);
    let mismatches = mismatches(&expected, file, &optimizer_buffer);
    if !mismatches.is_empty() {
        return Err(CheckpointError::Mismatch {
            path: path.to_path_buf(),
            mismatches,
        });
    }
    assign::<E, D, M>(model, file, names, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDevice;
    use dfdx::prelude::*;

    crate::network! {
        struct Small: [4] -> linear(3) -> relu -> linear(2);
        struct Other: [4] -> linear(5) -> relu -> linear(2);
        struct WithNorm: [2, 4, 4] -> conv(3, 3) -> batchnorm -> relu -> flatten -> linear(2);
    }

    fn weights<E: Element, D: Device<E>, M: TensorCollection<E, D>>(
        m: &M,
    ) -> Vec<(String, TensorRecord)> {
        m.to_safetensors_with(&NameMap::identity()).unwrap().tensors
    }

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("typednet-ck-{}-{name}", std::process::id()))
    }

    #[test]
    fn checkpoint_round_trip_f32_and_f64() {
        let dev = crate::test_device!();
        let path = temp("rt32.safetensors");
        let a = Small::<f32, TestDevice>::new(&dev);
        a.save_safetensors(&path).unwrap();
        let mut b = Small::<f32, TestDevice>::new(&dev);
        assert_ne!(weights(&a), weights(&b));
        b.load_safetensors(&path).unwrap();
        assert_eq!(weights(&a), weights(&b));
        let names: Vec<_> = weights(&a).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "linear1.weight",
                "linear1.bias",
                "linear2.weight",
                "linear2.bias"
            ]
        );
        assert_eq!(
            SafeTensors::read(&path)
                .unwrap()
                .get("linear1.weight")
                .unwrap()
                .shape,
            [3, 4]
        );

        let path64 = temp("rt64.safetensors");
        let a = Small::<f64, TestDevice>::new(&dev);
        a.save_safetensors(&path64).unwrap();
        let mut b = Small::<f64, TestDevice>::new(&dev);
        b.load_safetensors(&path64).unwrap();
        assert_eq!(a.linear2.weight.as_vec(), b.linear2.weight.as_vec());
        assert_eq!(
            SafeTensors::read(&path64).unwrap().tensors[0].1.dtype,
            safetensors::Dtype::F64
        );

        // An f64 file is not silently narrowed into an f32 network.
        let mut narrow = Small::<f32, TestDevice>::new(&dev);
        let err = narrow.load_safetensors(&path64).unwrap_err().to_string();
        assert!(
            err.contains("linear1.weight: expected F32 [3, 4], found F64 [3, 4]"),
            "{err}"
        );
        std::fs::remove_file(path).unwrap();
        std::fs::remove_file(path64).unwrap();
    }

    #[test]
    fn checkpoint_mismatch_lists_every_tensor_and_changes_nothing() {
        let dev = crate::test_device!();
        let path = temp("other.safetensors");
        Other::<f32, TestDevice>::new(&dev)
            .save_safetensors(&path)
            .unwrap();
        let mut small = Small::<f32, TestDevice>::new(&dev);
        let before = weights(&small);
        let err = small.load_safetensors(&path).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("other.safetensors"), "{text}");
        assert!(
            text.contains("linear1.weight: expected F32 [3, 4], found F32 [5, 4]"),
            "{text}"
        );
        assert!(
            text.contains("linear1.bias: expected F32 [3], found F32 [5]"),
            "{text}"
        );
        assert!(
            text.contains("linear2.weight: expected F32 [2, 3], found F32 [2, 5]"),
            "{text}"
        );
        let CheckpointError::Mismatch { mismatches, .. } = err else {
            panic!("{text}")
        };
        assert_eq!(mismatches.len(), 3, "{text}");
        assert_eq!(weights(&small), before);

        // Missing and unexpected names, and an unsupported dtype.
        let mut file = small.to_safetensors_with(&NameMap::identity()).unwrap();
        file.tensors.retain(|(n, _)| n != "linear2.bias");
        file.tensors
            .push(("extra".into(), TensorRecord::from_f32(vec![1], &[1.0])));
        file.tensors[0].1 = TensorRecord {
            dtype: safetensors::Dtype::F16,
            shape: vec![3, 4],
            bytes: vec![0; 24],
        };
        let err = small
            .load_from_safetensors_with(&file, &NameMap::identity())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("linear2.bias: missing (expected F32 [2])"),
            "{err}"
        );
        assert!(err.contains("extra: unexpected (found F32 [1])"), "{err}");
        assert!(
            err.contains(
                "linear1.weight: expected F32 [3, 4], found F16 [3, 4]; F16 is not supported"
            ),
            "{err}"
        );
        assert_eq!(weights(&small), before);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn checkpoint_name_mapping() {
        let dev = crate::test_device!();
        let a = Small::<f32, TestDevice>::new(&dev);
        let torch = NameMap::identity()
            .layer("linear1", "net.0")
            .layer("linear2", "net.2");
        let file = a.to_safetensors_with(&torch).unwrap();
        assert!(file.get("net.0.weight").is_some() && file.get("net.2.bias").is_some());
        let mut b = Small::<f32, TestDevice>::new(&dev);
        assert!(b
            .load_from_safetensors_with(&file, &NameMap::identity())
            .is_err());
        b.load_from_safetensors_with(&file, &torch).unwrap();
        assert_eq!(weights(&a), weights(&b));
    }

    #[test]
    fn checkpoint_batch_norm_running_statistics() {
        let dev = crate::test_device!();
        let mut a = WithNorm::<f32, TestDevice>::new(&dev);
        let x: Tensor<Rank4<3, 2, 4, 4>, f32, _> = dev.sample_normal();
        let _ = a.forward_mut(x.leaky_trace());
        let file = a.to_safetensors_with(&NameMap::identity()).unwrap();
        let names: Vec<&str> = file.tensors.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"batchnorm1.running_mean"), "{names:?}");
        let mut b = WithNorm::<f32, TestDevice>::new(&dev);
        b.load_from_safetensors_with(&file, &NameMap::identity())
            .unwrap();
        assert_eq!(weights(&a), weights(&b));
    }
}
