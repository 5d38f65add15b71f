//! The devices networks run on: a dfdx device that also has typednet's own kernels.
//!
//! dfdx picks a kernel per device through traits (`Cpu` and `Cuda` each implement every op's
//! kernel trait); typednet does the same for the ops dfdx lacks on stable Rust. Each op folder
//! under [`crate::ops`] defines its kernel trait; this umbrella names them all, so that generated
//! code and user code need one bound, `D: typednet::Device<E>`.

use crate::network::Element;
use crate::ops::batch_norm::BatchNormKernel;
use crate::ops::conv2d::Conv2dKernel;
use crate::ops::conv_transpose2d::ConvTranspose2dKernel;
use crate::ops::grouped_conv2d::GroupedConv2dKernel;
use crate::ops::linear::LinearKernel;
use crate::ops::pad::Pad2dKernel;
use crate::ops::pointwise_loss::PointwiseLossKernel;
use crate::ops::pool2d::Pool2dKernel;
use crate::ops::recurrent_sequence::RecurrentSequenceKernel;

/// A dfdx device with typednet's kernels: [`dfdx::tensor::Cpu`], and `dfdx::tensor::Cuda` with
/// the `cuda` feature. Implemented automatically for every device that has them all.
pub trait Device<E: Element>:
    dfdx::tensor_ops::Device<E>
    + BatchNormKernel<E>
    + Conv2dKernel<E>
    + ConvTranspose2dKernel<E>
    + GroupedConv2dKernel<E>
    + LinearKernel<E>
    + Pad2dKernel<E>
    + PointwiseLossKernel<E>
    + Pool2dKernel<E>
    + RecurrentSequenceKernel<E>
{
}

impl<E: Element, D> Device<E> for D where
    D: dfdx::tensor_ops::Device<E>
        + BatchNormKernel<E>
        + Conv2dKernel<E>
        + ConvTranspose2dKernel<E>
        + GroupedConv2dKernel<E>
        + LinearKernel<E>
        + Pad2dKernel<E>
        + PointwiseLossKernel<E>
        + Pool2dKernel<E>
        + RecurrentSequenceKernel<E>
{
}

/// How many CUDA devices the driver sees, without panicking: `Err` says why there are none to ask
/// about (the driver's `cuInit` failed, e.g. `CUDA_ERROR_NO_DEVICE` on a machine with the driver
/// library but no GPU, or a driver too old for the toolkit).
///
/// dfdx's `Cuda::try_build` *panics* rather than returning `Err` in those cases (cudarc 0.9's
/// `CudaDevice::new` unwraps `cuInit`), so callers that want to degrade gracefully — the tests,
/// through [`crate::testing::test_device`] — ask here first. The answer is computed once per
/// process.
///
/// What this cannot cover: cudarc 0.9 links `libcuda.so.1` at build time, so on a machine with
/// no NVIDIA driver library at all a `--features cuda` binary fails to *start* (the dynamic
/// loader's "cannot open shared object file"), before any code runs.
#[cfg(feature = "cuda")]
pub fn cuda_device_count() -> Result<usize, String> {
    use std::sync::OnceLock;
    static COUNT: OnceLock<Result<usize, String>> = OnceLock::new();
    COUNT
        .get_or_init(|| {
            use cudarc::driver::result;
            result::init().map_err(|e| format!("cuInit failed: {e}"))?;
            let count =
                result::device::get_count().map_err(|e| format!("cuDeviceGetCount failed: {e}"))?;
            usize::try_from(count).map_err(|_| format!("cuDeviceGetCount returned {count}"))
        })
        .clone()
}
