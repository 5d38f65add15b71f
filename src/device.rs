//! The devices networks run on: a dfdx device that also has typednet's own kernels.
//!
//! dfdx picks a kernel per device through traits (`Cpu` and `Cuda` each implement every op's
//! kernel trait); typednet does the same for the ops dfdx lacks on stable Rust. Each op folder
//! under [`crate::ops`] defines its kernel trait; this umbrella names them all, so that generated
//! code and user code need one bound, `D: typednet::Device<E>`.

use crate::network::Element;
use crate::ops::conv2d::Conv2dKernel;
use crate::ops::conv_transpose2d::ConvTranspose2dKernel;
use crate::ops::grouped_conv2d::GroupedConv2dKernel;
use crate::ops::pool2d::Pool2dKernel;
use crate::ops::recurrent_sequence::RecurrentSequenceKernel;

/// A dfdx device with typednet's kernels: [`dfdx::tensor::Cpu`], and `dfdx::tensor::Cuda` with
/// the `cuda` feature. Implemented automatically for every device that has them all.
pub trait Device<E: Element>:
    dfdx::tensor_ops::Device<E>
    + Conv2dKernel<E>
    + ConvTranspose2dKernel<E>
    + GroupedConv2dKernel<E>
    + Pool2dKernel<E>
    + RecurrentSequenceKernel<E>
{
}

impl<E: Element, D> Device<E> for D where
    D: dfdx::tensor_ops::Device<E>
        + Conv2dKernel<E>
        + ConvTranspose2dKernel<E>
        + GroupedConv2dKernel<E>
        + Pool2dKernel<E>
        + RecurrentSequenceKernel<E>
{
}
