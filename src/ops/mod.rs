//! The operations a generated `forward` is lowered to, beyond what dfdx has on stable Rust.
//!
//! Every op takes and returns dfdx tensors whose shapes the [`network!`](crate::network!) macro
//! computed; the op itself works with run-time sizes and records its backward pass on the tape.
//! Ops with kernels of their own live in a folder each (`mod.rs`: API, docs and tests;
//! `reference.rs`: the readable composition of dfdx ops every fast kernel is tested against).

pub(crate) mod activations;
pub mod batch_norm;
pub(crate) mod concat;
pub mod conv2d;
mod conv2d_no_bias;
pub mod conv_transpose2d;
pub mod grouped_conv2d;
pub(crate) mod host;
pub mod linear;
mod local_response_norm;
mod locally_connected2d;
pub mod matmul;
pub mod pad;
pub mod pointwise_loss;
pub mod pool2d;
pub mod recurrent_sequence;
mod reshape;

pub use batch_norm::{
    try_batch_norm1d, try_batch_norm1d_mut, try_batch_norm1d_relu, try_batch_norm1d_relu_mut,
    try_batch_norm2d, try_batch_norm2d_mut, try_batch_norm2d_relu, try_batch_norm2d_relu_mut,
    BatchNormKernel, Normalisation,
};
pub use concat::{try_concat_channels, try_concat_features, try_concat_sequence_features};
pub use conv2d::{
    conv2d, try_conv2d, try_conv2d_relu, try_dilated_conv2d, Conv2dGeometry, Conv2dKernel,
};
pub use conv2d_no_bias::try_conv2d_no_bias;
pub use conv_transpose2d::{
    conv_transpose2d, try_conv_transpose2d, ConvTranspose2dGeometry, ConvTranspose2dKernel,
};
pub use grouped_conv2d::{grouped_conv2d, try_grouped_conv2d, GroupedConv2dKernel};
pub use linear::{try_linear, try_linear_activation, LinearActivation, LinearKernel, LinearShape};
pub use local_response_norm::{try_local_response_norm, LrnWindow};
pub use locally_connected2d::{locally_connected2d, try_locally_connected2d};
pub use pad::{try_pad2d, Pad2dKernel, PadValue};
pub use pointwise_loss::{try_pointwise_loss, PointwiseLoss, PointwiseLossKernel};
pub use pool2d::{
    avg_pool2d, max_pool2d, try_avg_pool2d, try_max_pool2d, Pool2dGeometry, Pool2dKernel, Reduction,
};
pub use reshape::{
    try_columns, try_dropout, try_flatten, try_global_avg_pool2d, try_leaky_relu, try_reshape,
    try_rows,
};
