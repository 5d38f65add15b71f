//! Helpers for device-generic tests: the same suite runs on the CPU, and on CUDA when the
//! `cuda` feature is on. Tests get their device from [`test_device!`](crate::test_device), which
//! skips the test (returns early, printing why) when built for CUDA on a machine without a GPU.

/// The device tests run on: [`dfdx::tensor::Cpu`], or `dfdx::tensor::Cuda` with `--features cuda`.
#[cfg(not(feature = "cuda"))]
pub type TestDevice = dfdx::tensor::Cpu;
/// The device tests run on: [`dfdx::tensor::Cpu`], or `dfdx::tensor::Cuda` with `--features cuda`.
#[cfg(feature = "cuda")]
pub type TestDevice = dfdx::tensor::Cuda;

/// The device for a device-generic test, seeded with `seed`, or `None` when there is none to run
/// on: always `Some` on the CPU; with `--features cuda`, `None` when the driver reports no CUDA
/// device (`typednet::device::cuda_device_count`, with `--features cuda`; a probe that never panics), after printing one
/// line, `skipping <test>: no CUDA device (<reason>)`, to stderr ([`skip`], past libtest's
/// output capture). The test then returns early and counts as passed.
///
/// Where a GPU is expected (`tools/gpu/run.sh` on the GPU machine), set the environment
/// variable [`REQUIRE_CUDA`]: a missing device then fails the test instead of skipping it, so
/// that a broken driver set-up cannot pass the whole suite vacuously.
///
/// A device that the driver reports but dfdx cannot open (out of memory, cuBLAS failing to load)
/// is a real failure, and panics naming the error. Most tests use [`test_device!`](crate::test_device),
/// which returns from the test for them.
pub fn test_device_seeded(seed: u64) -> Option<TestDevice> {
    #[cfg(not(feature = "cuda"))]
    {
        Some(TestDevice::seed_from_u64(seed))
    }
    #[cfg(feature = "cuda")]
    {
        let reason = match crate::device::cuda_device_count() {
            Ok(0) => "the driver reports 0 devices".to_string(),
            Ok(_) => {
                return Some(TestDevice::try_build(0, seed).unwrap_or_else(|e| {
                    panic!("a CUDA device is present but dfdx cannot open it: {e:?}")
                }))
            }
            Err(reason) => reason,
        };
        if std::env::var_os(REQUIRE_CUDA).is_some() {
            panic!("no CUDA device ({reason}), and {REQUIRE_CUDA} is set");
        }
        skip(&format!("no CUDA device ({reason})"));
        None
    }
}

/// The environment variable that turns [`test_device_seeded`]'s skip into a failure.
pub const REQUIRE_CUDA: &str = "TYPEDNET_REQUIRE_CUDA";

/// [`test_device_seeded`] with seed 0, the seed of dfdx's `Default` devices.
pub fn test_device() -> Option<TestDevice> {
    test_device_seeded(0)
}

/// Prints `skipping <test>: <why>` to stderr, the test named by its thread (libtest names each
/// test's thread after the test). Written to the stderr handle, not through `eprintln!`, so that
/// libtest's capture of a passing test's output does not hide it.
pub fn skip(why: &str) {
    use std::io::Write;
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("this test");
    // Nothing to do if stderr is gone.
    let _ = writeln!(std::io::stderr(), "skipping {test}: {why}");
}

/// The device for a device-generic test, or `return` from the enclosing function (the test)
/// when there is none: `let dev = test_device!();`, or `test_device!(seed)` for a seeded one.
/// See [`testing::test_device_seeded`](crate::testing::test_device_seeded). The enclosing
/// function must return `()`.
#[macro_export]
macro_rules! test_device {
    () => {
        $crate::test_device!(0)
    };
    ($seed:expr) => {
        match $crate::testing::test_device_seeded($seed) {
            ::core::option::Option::Some(dev) => dev,
            ::core::option::Option::None => return,
        }
    };
}

/// Asserts that two sequences of floats are equal within an absolute-plus-relative tolerance,
/// naming the first index that differs.
#[macro_export]
macro_rules! assert_close {
    ($actual:expr, $expected:expr) => {
        $crate::assert_close!($actual, $expected, 1e-5)
    };
    ($actual:expr, $expected:expr, $tolerance:expr) => {{
        let actual: ::std::vec::Vec<f64> = ($actual).iter().map(|&v| v as f64).collect();
        let expected: ::std::vec::Vec<f64> = ($expected).iter().map(|&v| v as f64).collect();
        let tolerance: f64 = $tolerance as f64;
        assert_eq!(actual.len(), expected.len(), "lengths differ");
        for (i, (a, e)) in actual.iter().zip(expected.iter()).enumerate() {
            assert!(
                (a - e).abs() <= tolerance * (1.0 + e.abs()),
                "index {i}: got {a}, expected {e} (tolerance {tolerance})"
            );
        }
    }};
}

/// Reads a fixture of named arrays, one `name v v v …` line each (`#` lines are comments), as
/// the reference scripts under `tools/` write them; panics naming the file when it is missing
/// or a value does not parse.
pub fn named_arrays(path: &str) -> std::collections::HashMap<String, Vec<f64>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let mut fields = line.split(' ');
            let name = fields.next().unwrap_or_default().to_string();
            let values = fields
                .map(|v| {
                    v.parse()
                        .unwrap_or_else(|e| panic!("{path}: {name}: {v:?}: {e}"))
                })
                .collect();
            (name, values)
        })
        .collect()
}

/// Every tensor of `model` by the name dfdx's visitor gives it (`linear1.weight`, and buffers
/// such as batch norm's `running_mean`), as `f64` values, in the visitor's order. With
/// [`named_gradients`], what the device-parity tests (`tests/parity.rs`) compare.
pub fn named_tensors<E, D, M>(model: &M) -> Vec<(String, Vec<f64>)>
where
    E: crate::Element,
    D: dfdx::tensor_ops::Device<E>,
    M: dfdx::nn::tensor_collection::TensorCollection<E, D>,
{
    let mut collector = NamedValues::<E, D> {
        grads: None,
        values: Vec::new(),
    };
    walk_named(model, &mut collector);
    collector.values
}

/// The gradient of every trainable parameter of `model` in `grads`, by name, as `f64` values,
/// in the visitor's order; a parameter the backward pass did not reach gets zeros (allocated
/// in `grads`), so two devices' lists always line up.
pub fn named_gradients<E, D, M>(
    model: &M,
    grads: &mut dfdx::tensor::Gradients<E, D>,
) -> Vec<(String, Vec<f64>)>
where
    E: crate::Element,
    D: dfdx::tensor_ops::Device<E>,
    M: dfdx::nn::tensor_collection::TensorCollection<E, D>,
{
    let mut collector = NamedValues {
        grads: Some(grads),
        values: Vec::new(),
    };
    walk_named(model, &mut collector);
    collector.values
}

fn walk_named<E, D, M>(model: &M, collector: &mut NamedValues<'_, E, D>)
where
    E: crate::Element,
    D: dfdx::tensor_ops::Device<E>,
    M: dfdx::nn::tensor_collection::TensorCollection<E, D>,
{
    use dfdx::nn::tensor_collection::RecursiveWalker;
    M::iter_tensors(&mut RecursiveWalker {
        m: (String::new(), model),
        f: collector,
    })
    .unwrap_or_else(|e| panic!("reading the model's tensors failed: {e:?}"));
}

struct NamedValues<'g, E: crate::Element, D: dfdx::tensor_ops::Device<E>> {
    grads: Option<&'g mut dfdx::tensor::Gradients<E, D>>,
    values: Vec<(String, Vec<f64>)>,
}

impl<E: crate::Element, D: dfdx::tensor_ops::Device<E>>
    dfdx::nn::tensor_collection::TensorVisitor<E, D> for NamedValues<'_, E, D>
{
    type Viewer = (
        dfdx::nn::tensor_collection::ViewTensorName,
        dfdx::nn::tensor_collection::ViewTensorRef,
    );
    type Err = D::Err;
    type E2 = E;
    type D2 = D;

    fn visit<S: dfdx::shapes::Shape>(
        &mut self,
        opts: dfdx::nn::tensor_collection::TensorOptions<S, E, D>,
        (name, tensor): (String, &dfdx::tensor::Tensor<S, E, D>),
    ) -> Result<Option<dfdx::tensor::Tensor<S, E, D>>, Self::Err> {
        let to_f64 = |v: Vec<E>| -> Vec<f64> {
            v.into_iter()
                .map(|x| num_traits::ToPrimitive::to_f64(&x).unwrap_or(f64::NAN))
                .collect()
        };
        match &mut self.grads {
            Some(grads) => {
                if opts.do_gradient_update {
                    grads.try_alloc_for(tensor)?;
                    self.values.push((name, to_f64(grads.get(tensor).as_vec())));
                }
            }
            None => self.values.push((name, to_f64(tensor.as_vec()))),
        }
        Ok(None)
    }
}
