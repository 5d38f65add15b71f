//! Recurrent layers declared with `network!`: the shapes the macro computes (fixed and run-time
//! lengths, stacking, bidirectional sums, images read as sequences), parameter counts against
//! PyTorch's formula and the built cells, values against the `typednet::recurrent` runners the
//! layers lower to, and finite-difference gradients through whole declared networks.

use dfdx::prelude::*;
use typednet::gradcheck::{check_gradient, check_parameter_gradient};
use typednet::ops::{try_conv2d, Conv2dGeometry};
use typednet::recurrent::{try_run_bidirectional, try_run_last, try_run_sequence, RecurrentCell};
use typednet::testing::TestDevice;
use typednet::{assert_close, network, ForwardError, Network};

type Dev = TestDevice;

const VALUES: f64 = 1e-12;

network! {
    /// MNIST read row by row: 28 steps of 28 pixels, the last state classified.
    pub struct RowReader: [1, 28, 28] -> rows -> lstm(16, output = last) -> linear(10);

    /// Three recurrent layers stacked; each one's input size is the previous one's hidden size.
    pub struct Stacked: [6, 5] -> lstm(4) -> gru(3) -> rnn(2, output = last) -> linear(3);

    /// A tagger over sequences of any length: one label distribution per step.
    pub struct Tagger: [_, 5] -> lstm(4, bidirectional = true) -> linear(3) -> log_softmax;

    /// Both directions' final states, joined.
    pub struct BothEnds: [7, 5] -> mgu(4, bidirectional = true, output = last);

    /// A CNN feeding a GRU: the pooled feature map is read column by column.
    pub struct CnnGru: [1, 6, 8]
        -> conv(2, 3, pad = 1) -> relu -> maxpool(2)
        -> columns -> torch_gru(3, output = last) -> linear(2);

    /// Parallel recurrent branches over one sequence, joined step by step.
    pub struct TwoReaders: [4, 3] -> concat(peephole_lstm(2), lstm_no_forget(3)) -> flatten -> linear(2);
}

fn values(n: usize, seed: usize) -> Vec<f64> {
    (0..n)
        .map(|i| (((i + seed) * 37 % 101) as f64 / 50.0) - 1.0)
        .collect()
}

#[test]
fn shapes_follow_the_declaration() {
    assert_eq!(<RowReader<f64, Dev> as Network>::INPUT_SHAPE, &[1, 28, 28]);
    let rows: Vec<&[usize]> = <RowReader<f64, Dev> as Network>::LAYERS
        .iter()
        .map(|l| l.output_shape)
        .collect();
    assert_eq!(rows, [&[28, 28][..], &[16], &[10]]);

    let stacked: Vec<&[usize]> = <Stacked<f64, Dev> as Network>::LAYERS
        .iter()
        .map(|l| l.output_shape)
        .collect();
    assert_eq!(stacked, [&[6, 4][..], &[6, 3], &[2], &[3]]);

    // A run-time length is 0 in the tables and `T` in the summary.
    assert_eq!(<Tagger<f64, Dev> as Network>::INPUT_SHAPE, &[0, 5]);
    assert_eq!(
        <Tagger<f64, Dev> as Network>::LAYERS[0].output_shape,
        &[0, 8]
    );
    assert_eq!(<Tagger<f64, Dev> as Network>::OUTPUT_SHAPE, &[0, 3]);
    let summary = Tagger::<f64, Dev>::new(&typednet::test_device!()).summary();
    assert!(summary.contains("[B, T, 8]"), "{summary}");

    assert_eq!(<BothEnds<f64, Dev> as Network>::OUTPUT_SHAPE, &[8]);
    // conv keeps 6×8, pooling halves it to 3×4: 4 columns of 2·3 = 6 values.
    assert_eq!(
        <CnnGru<f64, Dev> as Network>::LAYERS[3].output_shape,
        &[4, 6]
    );
    assert_eq!(
        <TwoReaders<f64, Dev> as Network>::LAYERS[2].output_shape,
        &[4, 5]
    );
}

#[test]
fn parameters_are_pytorchs_count_and_the_built_cells() {
    // nn.LSTM(I, H): 4·(H·I + H·H + 2H); nn.GRU 3·(…); nn.RNN 1·(…).
    let gates = |g: usize, i: usize, h: usize| g * (h * i + h * h + 2 * h);
    assert_eq!(
        RowReader::<f64, Dev>::PARAMETERS,
        gates(4, 28, 16) + 16 * 10 + 10
    );
    assert_eq!(
        Stacked::<f64, Dev>::PARAMETERS,
        gates(4, 5, 4) + gates(3, 4, 3) + gates(1, 3, 2) + 2 * 3 + 3
    );
    assert_eq!(
        Tagger::<f64, Dev>::PARAMETERS,
        2 * gates(4, 5, 4) + 8 * 3 + 3
    );
    assert_eq!(BothEnds::<f64, Dev>::PARAMETERS, 2 * gates(2, 5, 4));
    // The peephole LSTM adds three diagonal vectors of length H.
    assert_eq!(
        TwoReaders::<f64, Dev>::PARAMETERS,
        gates(4, 3, 2) + 3 * 2 + gates(3, 3, 3) + 4 * 5 * 2 + 2
    );

    let dev = typednet::test_device!();
    assert_eq!(
        RowReader::<f64, Dev>::new(&dev).num_trainable_params(),
        RowReader::<f64, Dev>::PARAMETERS
    );
    assert_eq!(
        Stacked::<f64, Dev>::new(&dev).num_trainable_params(),
        Stacked::<f64, Dev>::PARAMETERS
    );
    assert_eq!(
        Tagger::<f64, Dev>::new(&dev).num_trainable_params(),
        Tagger::<f64, Dev>::PARAMETERS
    );
    assert_eq!(
        BothEnds::<f64, Dev>::new(&dev).num_trainable_params(),
        BothEnds::<f64, Dev>::PARAMETERS
    );
    assert_eq!(
        CnnGru::<f64, Dev>::new(&dev).num_trainable_params(),
        CnnGru::<f64, Dev>::PARAMETERS
    );
    assert_eq!(
        TwoReaders::<f64, Dev>::new(&dev).num_trainable_params(),
        TwoReaders::<f64, Dev>::PARAMETERS
    );
}

#[test]
fn rows_then_last_state_is_the_cell_run_over_the_rows() {
    let dev = typednet::test_device!(1);
    let net = RowReader::<f64, Dev>::new(&dev);
    let x: Tensor<Rank4<2, 1, 28, 28>, f64, Dev> = dev.tensor(values(2 * 28 * 28, 3));
    let out = net.forward(x.clone());

    // Row t of the image is step t: [2, 1, 28, 28] → [2, 28, 28] holds the same numbers.
    let sequence: Tensor<Rank3<2, 28, 28>, f64, Dev> = dev.tensor(x.as_vec());
    let state = try_run_last(&net.lstm1, sequence, None).unwrap();
    let expected = net.linear1.forward(state.h);
    assert_close!(out.as_vec(), expected.as_vec(), VALUES);
}

#[test]
fn a_run_time_length_runs_any_length_and_matches_the_runners() {
    let dev = typednet::test_device!(2);
    let net = Tagger::<f64, Dev>::new(&dev);
    for steps in [1, 3, 7] {
        let x: Tensor<(usize, usize, Const<5>), f64, Dev> =
            dev.tensor((values(2 * steps * 5, steps), (2, steps, Const)));
        let out = net.forward(x.clone());
        assert_eq!(out.shape().concrete(), [2, steps, 3]);

        let (both, _) = try_run_bidirectional::<_, 5, 4, 8, _, _, _, _, _>(
            &net.lstm1.forward,
            &net.lstm1.backward,
            x,
            None,
        )
        .unwrap();
        let expected = net.linear1.forward(both).log_softmax::<Axis<2>>();
        assert_close!(out.as_vec(), expected.as_vec(), VALUES);
    }

    // One example of any length: [T, 5] → [T, 3].
    let one: Tensor<(usize, Const<5>), f64, Dev> = dev.tensor((values(4 * 5, 9), (4, Const)));
    assert_eq!(net.forward(one).shape().concrete(), [4, 3]);
}

#[test]
fn a_wrong_feature_count_at_run_time_names_both_shapes() {
    let dev = typednet::test_device!();
    let net = Tagger::<f64, Dev>::new(&dev);
    let x: Tensor<(usize, usize, usize), f64, Dev> = dev.zeros_like(&(2, 3, 6));
    let error = net.try_forward(x).unwrap_err();
    assert!(matches!(error, ForwardError::Shape { .. }));
    let message = error.to_string();
    assert!(message.contains("[B, T, 5]"), "{message}");
    assert!(message.contains("[2, 3, 6]"), "{message}");
}

#[test]
fn bidirectional_last_joins_the_forward_end_and_the_backward_start() {
    let dev = typednet::test_device!(3);
    let net = BothEnds::<f64, Dev>::new(&dev);
    let x: Tensor<Rank3<2, 7, 5>, f64, Dev> = dev.tensor(values(2 * 7 * 5, 5));
    let out = net.forward(x.clone());

    // From the full outputs [2, 7, 8]: the forward half at step 7, the backward half at step 1.
    let (both, _) = try_run_bidirectional::<_, 5, 4, 8, _, _, _, _, _>(
        &net.mgu1.forward,
        &net.mgu1.backward,
        x,
        None,
    )
    .unwrap();
    let both = both.as_vec();
    let mut expected = Vec::new();
    for b in 0..2 {
        let at = |t: usize, k: usize| both[(b * 7 + t) * 8 + k];
        expected.extend((0..4).map(|k| at(6, k)));
        expected.extend((4..8).map(|k| at(0, k)));
    }
    assert_close!(out.as_vec(), expected, VALUES);
}

#[test]
fn columns_read_the_feature_map_left_to_right() {
    let dev = typednet::test_device!(4);
    let net = CnnGru::<f64, Dev>::new(&dev);
    let x: Tensor<Rank4<2, 1, 6, 8>, f64, Dev> = dev.tensor(values(2 * 6 * 8, 7));
    let out = net.forward(x.clone());

    let geometry = Conv2dGeometry {
        stride: [1, 1],
        padding: [1, 1],
    };
    let features: Tensor<Rank4<2, 2, 6, 8>, f64, Dev> =
        try_conv2d(x, &net.conv1, geometry).unwrap().relu();
    let pooled: Tensor<Rank4<2, 2, 3, 4>, f64, Dev> = typednet::ops::max_pool2d(
        features,
        typednet::ops::Pool2dGeometry {
            window: [2, 2],
            stride: [2, 2],
        },
    );
    // [2, 2, 3, 4] → column j holds (channel, row) in order: [2, 4, 6].
    let p = pooled.as_vec();
    let mut columns = Vec::new();
    for b in 0..2 {
        for j in 0..4 {
            for c in 0..2 {
                for i in 0..3 {
                    columns.push(p[((b * 2 + c) * 3 + i) * 4 + j]);
                }
            }
        }
    }
    let sequence: Tensor<Rank3<2, 4, 6>, f64, Dev> = dev.tensor(columns);
    let h = net.torch_gru1.try_step_sequence_last(sequence);
    let expected = net.linear1.forward(h);
    assert_close!(out.as_vec(), expected.as_vec(), VALUES);
}

/// The last hidden state of a cell over a sequence, from the zero state.
trait LastHidden<const I: usize, const H: usize> {
    fn try_step_sequence_last<const B: usize, const S: usize>(
        &self,
        x: Tensor<Rank3<B, S, I>, f64, Dev>,
    ) -> Tensor<Rank2<B, H>, f64, Dev>;
}

impl<const I: usize, const H: usize, C: RecurrentCell<I, H, f64, Dev>> LastHidden<I, H> for C {
    fn try_step_sequence_last<const B: usize, const S: usize>(
        &self,
        x: Tensor<Rank3<B, S, I>, f64, Dev>,
    ) -> Tensor<Rank2<B, H>, f64, Dev> {
        let (outputs, _) = try_run_sequence(self, x, None).unwrap();
        // The last step of every sequence of the batch.
        let dev = outputs.device().clone();
        let outputs = outputs.as_vec();
        let last: Vec<f64> = (0..B)
            .flat_map(|b| (0..H).map(move |k| (b, k)))
            .map(|(b, k)| outputs[(b * S + S - 1) * H + k])
            .collect();
        dev.tensor(last)
    }
}

#[test]
fn gradients_through_a_stacked_network_match_finite_differences() {
    let dev = typednet::test_device!(5);
    let net = Stacked::<f64, Dev>::new(&dev);
    let x: Tensor<Rank3<2, 6, 5>, f64, Dev> = dev.tensor(values(2 * 6 * 5, 11));
    check_gradient(&x, |x| net.forward(x).tanh().sum()).assert_below(1e-7);
    check_parameter_gradient(
        &net,
        |net| &mut net.lstm1.weight_hh,
        |net, gradients| net.forward(x.trace(gradients)).tanh().sum(),
    )
    .assert_below(1e-7);
    check_parameter_gradient(
        &net,
        |net| &mut net.gru1.weight_ih,
        |net, gradients| net.forward(x.trace(gradients)).tanh().sum(),
    )
    .assert_below(1e-7);
}

#[test]
fn gradients_through_bidirectional_and_joined_readers_match_finite_differences() {
    let dev = typednet::test_device!(6);
    let tagger = Tagger::<f64, Dev>::new(&dev);
    let x: Tensor<(usize, usize, Const<5>), f64, Dev> =
        dev.tensor((values(2 * 3 * 5, 13), (2, 3, Const)));
    check_gradient(&x, |x| tagger.forward(x).exp().sum()).assert_below(1e-7);
    check_parameter_gradient(
        &tagger,
        |net| &mut net.lstm1.backward.weight_ih,
        |net, gradients| net.forward(x.trace(gradients)).exp().sum(),
    )
    .assert_below(1e-7);

    let ends = BothEnds::<f64, Dev>::new(&dev);
    let y: Tensor<Rank3<2, 7, 5>, f64, Dev> = dev.tensor(values(2 * 7 * 5, 17));
    check_gradient(&y, |y| ends.forward(y).square().sum()).assert_below(1e-7);
    check_parameter_gradient(
        &ends,
        |net| &mut net.mgu1.backward.weight_hh,
        |net, gradients| net.forward(y.trace(gradients)).square().sum(),
    )
    .assert_below(1e-7);

    let readers = TwoReaders::<f64, Dev>::new(&dev);
    let z: Tensor<Rank3<2, 4, 3>, f64, Dev> = dev.tensor(values(2 * 4 * 3, 19));
    check_gradient(&z, |z| readers.forward(z).tanh().sum()).assert_below(1e-7);
    check_parameter_gradient(
        &readers,
        |net| &mut net.peephole_lstm1.weight_peephole,
        |net, gradients| net.forward(z.trace(gradients)).tanh().sum(),
    )
    .assert_below(1e-7);
}
