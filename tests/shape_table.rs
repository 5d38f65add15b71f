//! `typednet::shape` against output sizes recorded from real PyTorch layers.
//!
//! `tests/fixtures/pytorch_output_sizes.csv` is written by `tools/pytorch_output_sizes.py`,
//! which runs `torch.nn.Conv2d`, `MaxPool2d` and `AvgPool2d` on zero tensors over a grid of
//! non-square inputs, kernels, strides and paddings and records the output's height and width.

use typednet::shape::type_level::{ConvOut, ExactConvOut, ExactPoolOut, PoolOut};
use typednet::shape::{
    conv_output_size, conv_output_size_exact, pool_output_size, pool_output_size_exact, AxisError,
    ShapeError,
};
use typednet::typenum::{
    Unsigned, U0, U1, U11, U14, U15, U2, U20, U224, U227, U24, U28, U3, U32, U4, U5, U55, U7,
};

const TABLE: &str = include_str!("fixtures/pytorch_output_sizes.csv");
const HEADER: &str = "op,in_h,in_w,kernel_h,kernel_w,stride_h,stride_w,pad_h,pad_w,out_h,out_w";

/// The layers the table records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Conv,
    MaxPool,
    AvgPool,
}

/// One axis (height or width) of one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Axis {
    input: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    /// What PyTorch produced.
    output: usize,
}

impl Axis {
    /// Whether PyTorch's last window ends exactly at the end of the padded input, i.e. the
    /// windows tile it with nothing left over. Read off PyTorch's output, not our formula.
    fn tiles(&self) -> bool {
        (self.output - 1) * self.stride + self.kernel == self.input + 2 * self.padding
    }
}

#[derive(Debug)]
struct Row {
    op: Op,
    height: Axis,
    width: Axis,
}

fn table() -> Vec<Row> {
    let mut lines = TABLE.lines();
    assert_eq!(lines.next(), Some(HEADER));
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 11, "row {line:?}");
            let op = match fields[0] {
                "conv" => Op::Conv,
                "maxpool" => Op::MaxPool,
                "avgpool" => Op::AvgPool,
                other => panic!("unknown op {other:?} in row {line:?}"),
            };
            let n: Vec<usize> = fields[1..]
                .iter()
                .map(|field| field.parse().expect("an unsigned integer"))
                .collect();
            let axis = |offset: usize| Axis {
                input: n[offset],
                kernel: n[2 + offset],
                stride: n[4 + offset],
                padding: n[6 + offset],
                output: n[8 + offset],
            };
            Row {
                op,
                height: axis(0),
                width: axis(1),
            }
        })
        .collect()
}

#[test]
fn table_is_large_and_varied() {
    let rows = table();
    assert!(rows.len() >= 300, "only {} rows", rows.len());
    for op in [Op::Conv, Op::MaxPool, Op::AvgPool] {
        assert!(
            rows.iter().filter(|row| row.op == op).count() >= 50,
            "{op:?}"
        );
    }
    let non_square =
        |row: &&Row| row.height.input != row.width.input && row.height.kernel != row.width.kernel;
    assert!(rows.iter().filter(non_square).count() >= 50);
    let axes = || rows.iter().flat_map(|row| [row.height, row.width]);
    assert!(axes().filter(Axis::tiles).count() >= 50);
    assert!(axes().filter(|axis| !axis.tiles()).count() >= 50);
    assert!(
        axes().any(|axis| axis.kernel > axis.input),
        "padding making room"
    );
}

#[test]
fn output_sizes_match_pytorch() {
    for row in table() {
        for axis in [row.height, row.width] {
            let size = match row.op {
                Op::Conv => conv_output_size(axis.input, axis.kernel, axis.stride, axis.padding),
                Op::MaxPool | Op::AvgPool => {
                    assert_eq!(axis.padding, 0, "pooling has no padding: {row:?}");
                    pool_output_size(axis.input, axis.kernel, axis.stride)
                }
            };
            assert_eq!(size, Ok(axis.output), "{row:?}");
        }
    }
}

#[test]
fn exact_fit_accepts_exactly_the_rows_whose_windows_tile() {
    for row in table() {
        for axis in [row.height, row.width] {
            let size = match row.op {
                Op::Conv => {
                    conv_output_size_exact(axis.input, axis.kernel, axis.stride, axis.padding)
                }
                Op::MaxPool | Op::AvgPool => {
                    pool_output_size_exact(axis.input, axis.kernel, axis.stride)
                }
            };
            match size {
                Ok(size) => {
                    assert!(axis.tiles(), "accepted an axis that does not tile: {row:?}");
                    assert_eq!(size, axis.output, "{row:?}");
                }
                Err(ShapeError::Conv(AxisError::Inexact(_)))
                | Err(ShapeError::Pool(AxisError::Inexact(_))) => {
                    assert!(!axis.tiles(), "rejected an axis that tiles: {row:?}");
                }
                Err(other) => panic!("unexpected {other:?} for {row:?}"),
            }
        }
    }
}

/// The table's row for `op` with these (height, width) numbers.
fn find(
    op: Op,
    input: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Row {
    table()
        .into_iter()
        .find(|row| {
            row.op == op
                && [row.height.input, row.width.input] == input
                && [row.height.kernel, row.width.kernel] == kernel
                && [row.height.stride, row.width.stride] == stride
                && [row.height.padding, row.width.padding] == padding
        })
        .unwrap_or_else(|| panic!("no {op:?} row {input:?} {kernel:?} {stride:?} {padding:?}"))
}

#[test]
fn type_level_sizes_match_pytorch() {
    // AlexNet conv1: 227, kernel 11, stride 4 -> 55.
    let row = find(Op::Conv, [227, 227], [11, 11], [4, 4], [0, 0]);
    assert_eq!(
        <ConvOut<U227, U11, U0, U4> as Unsigned>::USIZE,
        row.height.output
    );
    assert_eq!(
        <ExactConvOut<U227, U11, U0, U4> as Unsigned>::USIZE,
        row.height.output
    );
    typednet::typenum::assert_type_eq!(ConvOut<U227, U11, U0, U4>, U55);

    // The AlexNet paper's 224 does not tile; PyTorch floors to 54.
    let row = find(Op::Conv, [224, 224], [11, 11], [4, 4], [0, 0]);
    assert_eq!(
        <ConvOut<U224, U11, U0, U4> as Unsigned>::USIZE,
        row.height.output
    );

    // LeNet conv1 with padding 2 keeps 28.
    let row = find(Op::Conv, [28, 28], [5, 5], [1, 1], [2, 2]);
    assert_eq!(
        <ConvOut<U28, U5, U2, U1> as Unsigned>::USIZE,
        row.height.output
    );
    assert_eq!(
        <ExactConvOut<U28, U5, U2, U1> as Unsigned>::USIZE,
        row.height.output
    );

    // 2×2 pooling with stride 2: 14 -> 7, max and average alike.
    for op in [Op::MaxPool, Op::AvgPool] {
        let row = find(op, [14, 14], [2, 2], [2, 2], [0, 0]);
        assert_eq!(<PoolOut<U14, U2, U2> as Unsigned>::USIZE, row.height.output);
        assert_eq!(
            <ExactPoolOut<U14, U2, U2> as Unsigned>::USIZE,
            row.height.output
        );
    }

    // Non-square input, kernel, stride and padding: 32×20, kernel 5×3, stride 2×1, padding 1×0.
    let row = find(Op::Conv, [32, 20], [5, 3], [2, 1], [1, 0]);
    assert_eq!(
        <ConvOut<U32, U5, U1, U2> as Unsigned>::USIZE,
        row.height.output
    );
    assert_eq!(
        <ConvOut<U20, U3, U0, U1> as Unsigned>::USIZE,
        row.width.output
    );
    typednet::typenum::assert_type_eq!(ConvOut<U32, U5, U1, U2>, U15);

    // Non-square pooling: 24×15, window 3×2, stride 2×3.
    let row = find(Op::MaxPool, [24, 15], [3, 2], [2, 3], [0, 0]);
    assert_eq!(<PoolOut<U24, U3, U2> as Unsigned>::USIZE, row.height.output);
    assert_eq!(<PoolOut<U15, U2, U3> as Unsigned>::USIZE, row.width.output);

    // A 7×7 window over a 7×7 input: one output.
    let row = find(Op::MaxPool, [7, 7], [7, 7], [1, 1], [0, 0]);
    assert_eq!(
        <ExactPoolOut<U7, U7, U1> as Unsigned>::USIZE,
        row.height.output
    );
}
