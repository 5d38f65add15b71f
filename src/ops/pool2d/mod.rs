//! Max and average pooling (placeholder signatures; the implementation is being written).
use dfdx::shapes::{Const, Dim};
use dfdx::tensor::{Tape, Tensor};
use dfdx::tensor_ops::Device;

use crate::network::Element;

/// Window and stride of a pooling layer, `[height, width]` each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2dGeometry {
    pub window: [usize; 2],
    pub stride: [usize; 2],
}

macro_rules! pool_signature {
    ($try_name:ident, $name:ident) => {
        #[allow(clippy::type_complexity)]
        pub fn $try_name<
            B: Dim,
            const C: usize,
            const H: usize,
            const W: usize,
            const O_H: usize,
            const O_W: usize,
            E: Element,
            D: Device<E>,
            T: Tape<E, D>,
        >(
            x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>,
            geometry: Pool2dGeometry,
        ) -> Result<Tensor<(B, Const<C>, Const<O_H>, Const<O_W>), E, D, T>, D::Err> {
            let _ = (x, geometry);
            unimplemented!("pool")
        }
        #[allow(clippy::type_complexity)]
        pub fn $name<
            B: Dim,
            const C: usize,
            const H: usize,
            const W: usize,
            const O_H: usize,
            const O_W: usize,
            E: Element,
            D: Device<E>,
            T: Tape<E, D>,
        >(
            x: Tensor<(B, Const<C>, Const<H>, Const<W>), E, D, T>,
            geometry: Pool2dGeometry,
        ) -> Tensor<(B, Const<C>, Const<O_H>, Const<O_W>), E, D, T> {
            $try_name(x, geometry).unwrap()
        }
    };
}
pool_signature!(try_max_pool2d, max_pool2d);
pool_signature!(try_avg_pool2d, avg_pool2d);
